/* Beam search decoding and the text-to-text translation path shared by
 * `translate` and `serve`.
 *
 * Several sentences are decoded together: their live hypotheses are the
 * rows of one batch, so every step is one matrix product per layer. The
 * functions only read the model, so threads may share one model.
 */
#ifndef SEQMT_BEAM_H
#define SEQMT_BEAM_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct {
    int beam_size;          /* 1 is greedy search */
    float length_penalty;   /* scores are divided by length^length_penalty */
    float max_length_ratio; /* outputs stop at ratio * source length + 10 tokens */
    int batch_size;         /* sentences decoded together */
} beam_options;

/* Defaults: beam 5, length penalty 1.0, ratio 2.0, 32 sentences. */
beam_options beam_default_options(void);

/* Decodes n id sequences. out[i] receives a malloc'd array of out_len[i]
 * target ids (no <s> or </s>) for the best hypothesis. An empty source
 * gives an empty output. Returns 0, or -1 when out of memory (outputs
 * already written stay allocated for the caller to free). */
int beam_search(const model *m, const beam_options *opt, const int32_t *const *src,
                const int32_t *src_len, size_t n, int32_t **out, int32_t *out_len);

/* Lines longer than this many words are translated in pieces. */
#define BEAM_MAX_PIECE_WORDS 100

/* Translates n raw lines into out[i], malloc'd detokenized text; an empty
 * or whitespace-only line gives "". A line of more than
 * BEAM_MAX_PIECE_WORDS words (runs between spaces and tabs) is split into
 * sentences, and a sentence still that long into pieces of that many
 * words; the pieces are translated apart and their translations joined by
 * spaces, so nothing is dropped and time and memory stay bounded.
 * Returns 0, or -1 when out of memory. */
int beam_translate_lines(const model *m, const beam_options *opt, const char *const *lines,
                         size_t n, char **out);

#endif
