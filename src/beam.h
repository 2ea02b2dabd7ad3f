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
#include "text.h"

typedef struct {
    int beam_size;          /* 1 is greedy search */
    float length_penalty;   /* scores are divided by length^length_penalty */
    float max_length_ratio; /* outputs stop at ratio * source length + 10 tokens */
    int batch_size;         /* sentences decoded together */
} beam_options;

/* Defaults: beam 5, length penalty 1.0, ratio 2.0, 32 sentences. */
beam_options beam_default_options(void);

/* Decodes n id sequences. out[i] receives a malloc'd array of out_len[i]
 * target ids (no <s> or </s>) for the best hypothesis: the one with the
 * highest score / length^length_penalty among the non-empty finished
 * hypotheses, or the empty one when no other finished. An empty source
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
 * words. The pieces are translated apart and their translations joined by
 * spaces, so nothing is dropped and time and memory stay bounded.
 * Returns 0, or -1 when out of memory. */
int beam_translate_lines(const model *m, const beam_options *opt, const char *const *lines,
                         size_t n, char **out);

/* ---- n-best search for the service ----
 *
 * The functions below split beam_translate_lines into its steps, so that a
 * caller can check source lengths before decoding, decode sentences of
 * several requests together, stop single sentences between decoding steps
 * and read several scored hypotheses per sentence. */

/* A source sentence in the model's ids, ready for beam_search_nbest. */
typedef struct {
    int32_t *ids;   /* [len] source ids */
    int32_t len;
    tok_list saved; /* originals of the placeholders in ids, for beam_render */
    tok_list unknown; /* source words holding units the vocabulary lacks, for beam_render */
    int32_t *saved_at;   /* [saved.count] position of each one's placeholder in ids */
    int32_t *unknown_at; /* [unknown.count] position of each one's first unknown unit */
    tok_list known;      /* protected words (numbers, URLs, e-mail addresses, emoji) that
                            are one known unit, as in a model without placeholders */
    int32_t *known_at;   /* [known.count] position of each one's unit */
} beam_source;

/* Tokenizes line, masks placeholders and applies subword codes as
 * beam_translate_lines does, into src (zeroed by the caller). A blank line
 * gives len 0. Returns 0, or -1 when out of memory. src needs
 * beam_source_free in either case. */
int beam_source_prepare(const model *m, const char *line, beam_source *src);

/* Frees what src owns and zeroes it. */
void beam_source_free(beam_source *src);

/* One hypothesis of beam_search_nbest. */
typedef struct {
    int32_t *ids; /* [len] target ids, malloc'd, without <s> or </s> */
    int32_t len;
    float score;  /* summed log probability of the ids, and of </s> when
                     the hypothesis emitted it rather than hitting its
                     maximum length */
    float normalized_score; /* score / length^length_penalty, where length
                               is len plus 1 when </s> was emitted: the
                               value beam search ranks by */
} beam_hypothesis;

/* The hypotheses of one sentence, best first: by normalized_score, except
 * that an empty hypothesis (len 0) comes after every non-empty one. */
typedef struct {
    beam_hypothesis *hyps; /* [count], malloc'd */
    int count;
    int stopped; /* nonzero when the stop callback ended this sentence;
                    then count is 0 */
} beam_nbest;

/* Frees the hypotheses of r and zeroes it. */
void beam_nbest_free(beam_nbest *r);

/* Returns nonzero to stop decoding sentence i. Called between decoding
 * steps for every sentence still being decoded. */
typedef int (*beam_stop_fn)(void *ctx, size_t i);

typedef struct {
    int n_best;              /* hypotheses per sentence, 1..beam_size */
    const int32_t *max_len;  /* [n] output token limit per sentence, applied on
                                top of max_length_ratio; 0 or a NULL array
                                means the ratio alone */
    beam_stop_fn stop;       /* NULL never stops */
    void *stop_ctx;
} beam_nbest_options;

/* Decodes n id sequences like beam_search, in groups of opt->batch_size
 * sentences, and stores up to nopt->n_best hypotheses of sentence i in
 * out[i]. The best hypothesis equals beam_search's output for the same
 * options. An empty source gives one empty hypothesis with score 0.
 * Returns 0, or -1 when out of memory; out[0..n) needs beam_nbest_free in
 * either case. */
int beam_search_nbest(const model *m, const beam_options *opt, const beam_nbest_options *nopt,
                      const int32_t *const *src, const int32_t *src_len, size_t n,
                      beam_nbest *out);

/* Returns the detokenized text of target ids, with subwords joined, the
 * placeholders and <unk>s filled with src's saved and unknown tokens and
 * the tokens that must reach the output placed (carry.h), as a malloc'd
 * string, or NULL when out of memory. */
char *beam_render(const model *m, const int32_t *ids, int32_t len, const beam_source *src);

/* Renders the first count hypotheses of r as beam_render does, into
 * texts[0..count) (malloc'd), computing the attention of all of them in
 * one batch. Returns 0, or -1 when out of memory (texts then all NULL). */
int beam_render_nbest(const model *m, const beam_nbest *r, int count, const beam_source *src,
                      char **texts);

#endif
