/* Parallel corpora: reading plain or gzip text files, turning lines into
 * token ids, and grouping sentences of similar length into padded batches.
 *
 * Lines are normalized to NFC and tokenized by the same code path that
 * translate and serve use. Whole corpora are held in memory.
 */
#ifndef SEQMT_CORPUS_H
#define SEQMT_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "rng.h"
#include "text.h"
#include "vocab.h"

/* Reads every line of a plain or gzip file (detected from its bytes) with
 * the line end and a trailing CR removed. Returns 0 with a malloc'd array
 * of n malloc'd strings, or -1 with a message in err naming the path. */
int corpus_read_lines(const char *path, char ***lines, size_t *n, char *err, size_t err_size);
void corpus_free_lines(char **lines, size_t n);

/* Normalizes and tokenizes one line into out (cleared first). Adds the
 * number of invalid UTF-8 sequences replaced to *n_invalid if not NULL.
 * Returns 0, or -1 when out of memory. */
int corpus_tokenize(const char *line, const char *lang, tok_list *out, size_t *n_invalid);

/* Token ids of a tokenized line; unknown tokens map to VOCAB_UNK. Returns
 * a malloc'd array of list->count ids (at least 1 byte), or NULL. */
int32_t *corpus_ids(const vocab *v, const tok_list *list);

/* Sentence pairs as ids. */
typedef struct {
    size_t n;
    int32_t **src, **tgt;
    int32_t *src_len, *tgt_len;
} corpus;

/* Counts of what corpus_load kept and skipped. */
typedef struct {
    size_t lines, kept, skipped_empty, skipped_long, invalid_utf8;
} corpus_stats;

/* Reads a source and a target file of equal line count, tokenizes both
 * and keeps pairs where neither side is empty and both have at most
 * max_len tokens. Tokenized text goes to src_tokens/tgt_tokens (arrays of
 * n tok_list, for building vocabularies) when those are not NULL.
 * Returns 0, or -1 with a message in err (unreadable file, line counts that
 * differ, out of memory). */
int corpus_load_text(const char *src_path, const char *tgt_path, const char *src_lang,
                     const char *tgt_lang, int max_len, tok_list **src_tokens,
                     tok_list **tgt_tokens, size_t *n, corpus_stats *stats, char *err,
                     size_t err_size);

/* Maps tokenized pairs to ids. Returns 0, or -1 when out of memory. */
int corpus_from_tokens(const tok_list *src, const tok_list *tgt, size_t n, const vocab *sv,
                       const vocab *tv, corpus *out);
void corpus_free(corpus *c);
void corpus_free_tokens(tok_list *lists, size_t n);

/* A division of a corpus into batches of similar source length. */
typedef struct {
    size_t n_batches;
    size_t *start;  /* [n_batches + 1] offsets into order */
    size_t *order;  /* [corpus n] sentence indices grouped by batch */
} corpus_batches;

/* Sorts sentences by source then target length (ties broken randomly),
 * cuts the order into batches of at most batch_size and shuffles the
 * batches. Returns 0, or -1 when out of memory. */
int corpus_make_batches(const corpus *c, int batch_size, rng_state *rng, corpus_batches *out);
void corpus_batches_free(corpus_batches *b);

/* Fills batch with sentences idx[0..count-1] of c (see model_batch for
 * the layout); the buffers are grown as needed and freed by
 * corpus_batch_free. Returns 0, or -1 when out of memory. */
int corpus_fill_batch(const corpus *c, const size_t *idx, int count, model_batch *batch);
void corpus_batch_free(model_batch *batch);

#endif
