/* The daemon's translate callbacks (http.h) on loaded models: one model per
 * language pair, decoded with beam search (beam.h).
 *
 * Every model is only read, so the translate threads share them. Sentences
 * of one callback call are decoded together, opt.batch_size at a time.
 */
#ifndef SEQMT_TRANSLATOR_H
#define SEQMT_TRANSLATOR_H

#include "beam.h"
#include "http.h"
#include "model.h"

typedef struct {
    const model *const *models; /* [count]; pair i of the daemon is models[i] */
    size_t count;
    beam_options options;       /* beam_size is set per call */
} translator;

/* http_translate_fn with ctx a translator: decodes the sentences of one
 * pair together, and stops a sentence when stop returns nonzero. Sets
 * source_tokens of each sentence to the count translator_count_tokens
 * returns. Returns 0, or -1 with a message in err when out of memory. */
int translator_translate(void *ctx, size_t pair, int beam_size, http_sentence *sentences,
                         size_t n, http_stop_fn stop, void *stop_ctx, char *err,
                         size_t err_size);

/* http_count_tokens_fn with ctx a translator: the number of source units
 * (tokens, or subwords for models with codes) of sentence. */
size_t translator_count_tokens(void *ctx, size_t pair, const char *sentence);

#endif
