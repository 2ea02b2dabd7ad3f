/* The encoder-decoder model: configuration, parameters, the training loss
 * with its gradient, and the self-contained model file.
 *
 * Letters: B sentences in a batch, S source steps, T target steps, E
 * embedding size, H hidden size, L layers, V vocabulary size. The encoder
 * reads the source reversed; decoder layer l starts from encoder layer l's
 * final (h, c). With attention, the output layer reads the attention
 * output instead of the decoder's top layer. Parameters live in one float
 * block with named views, and gradients in a second block with the same
 * layout, so clipping and the SGD step are loops over one array.
 */
#ifndef SEQMT_MODEL_H
#define SEQMT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "attention.h"
#include "bpe.h"
#include "lstm.h"
#include "rng.h"
#include "vocab.h"

#define MODEL_MAX_LAYERS 8

typedef struct {
    int32_t layers, embed, hidden;
    int32_t src_vocab, tgt_vocab; /* sizes, special tokens included */
    char src_lang[8], tgt_lang[8];
    int32_t attention; /* 1: global attention over the encoder (attention.h) */
} model_config;

/* Named views into a parameter or gradient block. */
typedef struct {
    float *src_embed; /* [Vs, E] */
    float *tgt_embed; /* [Vt, E] */
    lstm_weights enc[MODEL_MAX_LAYERS];
    lstm_weights dec[MODEL_MAX_LAYERS];
    float *out_w; /* [Vt, H] */
    float *out_b; /* [Vt] */
    attention_weights att; /* NULL views without attention */
} model_views;

/* Version of the tokenization rules a model was trained with; stored in
 * the model file so a model never meets text split another way. */
#define MODEL_TOKENIZER_VERSION 1

typedef struct {
    model_config cfg;
    vocab *src_vocab, *tgt_vocab;
    /* Subword codes applied after tokenization, or NULL for word-level
     * models. With joint codes both point at one object. */
    bpe *src_bpe, *tgt_bpe;
    /* Nonzero when numbers, URLs, e-mail addresses and emoji were replaced
     * by placeholders in training (see placeholder.h). */
    int placeholders;
    /* Nonzero when segmentation splits subwords outside the vocabularies
     * (bpe_set_vocabulary); the two sides then have codes objects of their
     * own even when their merges are equal. */
    int subword_filter;
    float *params; /* n_params floats */
    size_t n_params;
    model_views w;
} model;

/* A padded batch of id sequences. Row t*B+b is step t of sentence b. */
typedef struct {
    int B, S, T;
    int32_t *src;     /* [S*B] source reversed, padding first (left) */
    float *src_mask;  /* [S*B] 1 for tokens, 0 for padding */
    int32_t *tgt_in;  /* [T*B] <s> y_1 .. y_n, then padding */
    int32_t *tgt_out; /* [T*B] y_1 .. y_n </s>, then padding */
    size_t n_tokens;  /* target tokens counted by the loss, </s> included */
} model_batch;

/* Checks a configuration; returns NULL when valid, else a static message. */
const char *model_config_check(const model_config *cfg);
/* Floats in a parameter block of this configuration. */
size_t model_param_count(const model_config *cfg);
/* Points views at block, laid out as model_param_count describes. */
void model_bind(const model_config *cfg, float *block, model_views *views);

/* Allocates a model for cfg and takes ownership of both vocabularies
 * (freed with the model, also on failure). Parameters are zero. Returns
 * NULL when out of memory. */
model *model_new(const model_config *cfg, vocab *src_vocab, vocab *tgt_vocab);
/* Gives m the subword codes of its source and target side (either may be
 * NULL; src == tgt for joint codes) and takes ownership of them. */
void model_set_bpe(model *m, bpe *src, bpe *tgt);

/* Restricts codes to the tokens of v (bpe_set_vocabulary). Returns 0, or
 * -1 when out of memory. */
int model_codes_use_vocab(bpe *codes, const vocab *v);

/* Makes segmentation split subwords outside the model's vocabularies:
 * gives the target side codes of its own when the two sides share them,
 * restricts each side to its vocabulary and sets subword_filter. A model
 * without codes is left alone. Returns 0, or -1 when out of memory. */
int model_filter_subwords(model *m);

/* Draws every parameter uniformly from [-scale, scale]. */
void model_init_uniform(model *m, float scale, rng_state *rng);
void model_free(model *m);

/* Scratch memory for model_loss, grown on demand. */
typedef struct model_workspace model_workspace;
model_workspace *model_workspace_new(void);
void model_workspace_free(model_workspace *ws);

/* Computes the summed cross-entropy (natural log) of batch's target tokens.
 * When grad is not NULL, also adds the gradient of (sum / batch->B) to the
 * views in grad. dropout is the probability of zeroing an LSTM input or the
 * output layer's input (0 disables it; rng is only used when it is > 0).
 * With smoothing > 0 (label smoothing, below 1) each target is the mix of
 * its one-hot vector, weighted 1 - smoothing, and the uniform distribution
 * over the vocabulary, and the loss and gradient are those of that target.
 * Returns 0 and the loss in *loss, or -1 when out of memory. */
int model_loss(const model *m, const model_batch *batch, const model_views *grad,
               float dropout, float smoothing, rng_state *rng, model_workspace *ws,
               double *loss);

/* Writes the attention weights of an attention model over bt to a, in
 * the layout [B][T, S]: row t of sentence b contains the weights of decoder
 * step t (the step that predicts tgt_out) over the reversed source
 * positions of bt->src, 0 on padding. No dropout. Returns 0, 1 when the
 * model has no attention (a untouched), or -1 when out of memory. */
int model_attention(const model *m, const model_batch *batch, model_workspace *ws, float *a);

/* Storage precision of the weights in a model file. Models always compute
 * in float32; float16 files are half the size and are widened on load. */
typedef enum { MODEL_F32 = 0, MODEL_F16 = 1 } model_dtype;

/* Model file: "SEQMTMDL", format version, configuration, the tokenizer
 * version, the subword codes of each side with their hash (version 2 on),
 * the architecture flags (version 3, written only for attention models),
 * both vocabularies, the weight precision and the weights (little-endian),
 * then a CRC-32 of everything before it. Version 1 files (word-level, no
 * codes section) and version 2 files (no attention) still load. Writing
 * goes to PATH.tmp and renames it over PATH, so a crash never leaves a
 * half-written model. Both return 0, or -1 with a message in err naming
 * the path and what is wrong (missing, truncated, corrupt, wrong version). */
#define MODEL_FILE_VERSION 3
int model_save(const model *m, const char *path, model_dtype dtype, char *err, size_t err_size);
model *model_load(const char *path, char *err, size_t err_size);

#endif
