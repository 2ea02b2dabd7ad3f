/* One LSTM layer: forward and backward through time over a padded batch,
 * and a single step for decoding.
 *
 * Shapes use T steps, B sentences, I input size and H hidden size; every
 * matrix is row-major and row t*B+b is step t of sentence b. Gates are
 * ordered input, forget, candidate, output:
 *   a = Wx x_t + Wh h_{t-1} + b
 *   i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
 *   c' = f * c_{t-1} + i * g      h' = o * tanh(c')
 *   c_t = m_t c' + (1 - m_t) c_{t-1}      h_t = m_t h' + (1 - m_t) h_{t-1}
 * The mask m_t is 1 for real tokens and 0 for padding, so a padded step
 * carries the state through unchanged; with left padding, h_T is every
 * sentence's final state.
 */
#ifndef SEQMT_LSTM_H
#define SEQMT_LSTM_H

#include <stddef.h>
#include <stdint.h>

/* Views into a parameter (or gradient) block. */
typedef struct {
    int input, hidden;
    float *wx; /* [4H, I] */
    float *wh; /* [4H, H] */
    float *b;  /* [4H] */
} lstm_weights;

/* Number of floats lstm_bind takes from a block. */
size_t lstm_param_count(int input, int hidden);
/* Points w's views at block; returns the first float after them. */
float *lstm_bind(lstm_weights *w, int input, int hidden, float *block);

/* Activations kept by the forward pass for the backward pass. The caller
 * owns the buffers (see lstm_cache_floats for their total size). */
typedef struct {
    float *gates;  /* [T*B, 4H] post-activation i, f, g, o */
    float *tanh_c; /* [T*B, H] tanh of the unmasked new cell c' */
    float *c;      /* [(T+1)*B, H] c_0 then c_1..c_T */
    float *h;      /* [(T+1)*B, H] h_0 then h_1..h_T; rows B.. are the outputs */
} lstm_cache;

/* Floats needed by a cache for T steps of B sentences. */
size_t lstm_cache_floats(int T, int B, int hidden);
/* Points the cache views at buf, which has room for lstm_cache_floats floats. */
void lstm_cache_bind(lstm_cache *cache, int T, int B, int hidden, float *buf);

/* Runs T steps. x: [T*B, I]; h0, c0: [B, H] or NULL for zeros; mask: [T*B]
 * or NULL for all ones. Outputs are cache->h rows B..(T+1)*B. */
void lstm_forward(const lstm_weights *w, int T, int B, const float *x, const float *h0,
                  const float *c0, const float *mask, lstm_cache *cache);

/* Backward through time of lstm_forward with the same arguments.
 * dh_out: [T*B, H] loss gradient w.r.t. the outputs h_1..h_T, or NULL;
 * dh_last, dc_last: [B, H] gradient w.r.t. h_T and c_T, or NULL.
 * Accumulates into grad's views; writes dx [T*B, I] (may be NULL) and
 * dh0, dc0 [B, H] (may be NULL). scratch has room for lstm_backward_floats floats. */
void lstm_backward(const lstm_weights *w, lstm_weights *grad, int T, int B, const float *x,
                   const float *mask, const lstm_cache *cache, const float *dh_out,
                   const float *dh_last, const float *dc_last, float *dx, float *dh0,
                   float *dc0, float *scratch);
size_t lstm_backward_floats(int T, int B, int hidden);

/* One step for K rows: x [K, I], h_prev and c_prev [K, H] -> h, c [K, H].
 * gates is scratch of [K, 4H]. h may not alias h_prev, nor c alias c_prev. */
void lstm_step(const lstm_weights *w, int K, const float *x, const float *h_prev,
               const float *c_prev, float *h, float *c, float *gates);

#endif
