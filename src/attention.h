/* Global attention over the encoder's top-layer states, with a bilinear
 * score (h . Wa e) and without feeding the attention output back into the
 * decoder.
 *
 * For a decoder top-layer state h_t and encoder states e_1..e_S of its
 * sentence:
 *   k_s = Wa e_s                      (keys, computed once per sentence)
 *   a_ts = softmax_s(h_t . k_s)       (padding positions get 0)
 *   c_t = sum_s a_ts e_s              (context)
 *   o_t = tanh(Wc c_t + Wd h_t + b)   (the output layer's input)
 * Because o_t does not feed back into the decoder, training runs the
 * decoder over all steps first and attends afterwards. Decoding attends
 * after every step.
 *
 * Rows use the model's layout: step t of sentence b is row t*B+b, so one
 * sentence's rows are strided by B*H floats, which BLAS takes as a
 * leading dimension. No function here allocates memory or can fail: the
 * caller passes every buffer.
 */
#ifndef SEQMT_ATTENTION_H
#define SEQMT_ATTENTION_H

#include <stddef.h>

/* Views of the attention parameters (or their gradients). */
typedef struct {
    float *wa; /* [H, H] key projection */
    float *wc; /* [H, H] context part of the output projection */
    float *wd; /* [H, H] decoder-state part */
    float *b;  /* [H] */
} attention_weights;

/* Returns the number of floats the attention parameters take for hidden
 * size H. */
size_t attention_param_count(int hidden);
/* Points w's views at block and returns the first float after them. */
float *attention_bind(attention_weights *w, int hidden, float *block);

/* Computes the keys: keys [rows, H] = enc [rows, H] Wa^T. */
void attention_keys(const attention_weights *w, int H, size_t rows, const float *enc,
                    float *keys);

/* Computes the attention of n query rows of one sentence over its S
 * encoder positions.
 * q: query rows with stride ldq; keys and enc: S rows with stride ldkv;
 * mask: S values with stride mask_stride, 0 for padding (NULL: all real).
 * Writes the weights to a [n, S] and the context to ctx (stride ldc). A
 * sentence with no real position gets zero weights and a zero context. */
void attention_attend(int H, int n, int S, const float *q, int ldq, const float *keys,
                      const float *enc, int ldkv, const float *mask, int mask_stride, float *a,
                      float *ctx, int ldc);

/* Computes the output: out [rows, H] = tanh(ctx Wc^T + dec Wd^T + b). */
void attention_output(const attention_weights *w, int H, size_t rows, const float *ctx,
                      const float *dec, float *out);

/* Runs the backward pass of attention_attend and attention_output for a
 * batch of B sentences, T decoder steps and S encoder steps (model layout).
 * dout [T*B, H] is the gradient w.r.t. out and is overwritten. a [B][T, S]
 * contains each sentence's weights from attend, and da of the same size is
 * scratch. Accumulates into grad's views and writes the gradient w.r.t. the
 * decoder states to ddec [T*B, H] and w.r.t. the encoder states to
 * denc [S*B, H]. dctx [T*B, H] and dkeys [S*B, H] are scratch. */
void attention_backward(const attention_weights *w, attention_weights *grad, int H, int B, int S,
                        int T, const float *enc, const float *keys, const float *dec,
                        const float *ctx, const float *out, const float *a, float *dout,
                        float *da, float *dctx, float *dkeys, float *ddec, float *denc);

#endif
