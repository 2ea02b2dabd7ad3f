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

#include "bpe.h"
#include "model.h"
#include "rng.h"
#include "text.h"
#include "vocab.h"

/* How a corpus file stores its segments. */
typedef enum {
    CORPUS_FORMAT_AUTO,  /* from the name: *.tsv is TSV, *.sgm or *.sgml is SGML, else plain */
    CORPUS_FORMAT_PLAIN, /* one segment per line */
    CORPUS_FORMAT_TSV,   /* one pair per line: source, a tab, target */
    CORPUS_FORMAT_SGML,  /* WMT test sets: the text of every <seg id=...> element, in order */
} corpus_format;

/* Format named by s ("auto", "plain", "tsv", "sgml"); -1 when unknown. */
int corpus_format_parse(const char *s);
/* Resolves CORPUS_FORMAT_AUTO by path's name (a trailing .gz is ignored). */
corpus_format corpus_format_of(const char *path, corpus_format format);

/* Reads every line of a plain or gzip file (detected from its bytes) with
 * the line end, a trailing CR and a leading UTF-8 byte-order mark removed.
 * Only '\n' ends a line, so U+2028 and other separators stay inside it; a
 * NUL byte becomes U+FFFD. A truncated or corrupt gzip stream is an error.
 * Returns 0 with a malloc'd array of n malloc'd strings, or -1 with a
 * message in err naming the path. */
int corpus_read_lines(const char *path, char ***lines, size_t *n, char *err, size_t err_size);
/* Reads the segments of one side: lines for plain files, <seg> texts with
 * &amp; &lt; &gt; &quot; &apos; decoded for SGML (a file without any is
 * an error). TSV holds two sides and is rejected here. Same contract as
 * corpus_read_lines. */
int corpus_read_segments(const char *path, corpus_format format, char ***segs, size_t *n,
                         char *err, size_t err_size);
void corpus_free_lines(char **lines, size_t n);

/* Undoes the escaping of Moses' tokenizer in place: &amp; &lt; &gt; &quot;
 * &apos; &#124; &#91; &#93; become & < > " ' | [ ]. Other text, other
 * entities included, stays as it is. */
void corpus_unescape_moses(char *line);

/* Normalizes and tokenizes one line into out (cleared first). Adds the
 * number of invalid UTF-8 sequences replaced to *n_invalid if not NULL.
 * Returns 0, or -1 when out of memory. */
int corpus_tokenize(const char *line, const char *lang, tok_list *out, size_t *n_invalid);

/* Appends to out the subwords of words under codes, keeping placeholders
 * whole. Returns 0, or -1 when out of memory. */
int corpus_segment(const bpe *codes, const tok_list *words, tok_list *out);

/* Like corpus_segment, but leaves each merge out with probability dropout
 * (bpe_segment_word_dropout), drawing from *state. */
int corpus_segment_dropout(const bpe *codes, const tok_list *words, double dropout,
                           uint64_t *state, tok_list *out);

/* Token ids of a tokenized line; unknown tokens map to VOCAB_UNK. Returns
 * a malloc'd array of list->count ids (at least 1 byte), or NULL. */
int32_t *corpus_ids(const vocab *v, const tok_list *list);

/* Sentence pairs as ids. */
typedef struct {
    size_t n;
    int32_t **src, **tgt;
    int32_t *src_len, *tgt_len;
} corpus;

#define CORPUS_REPORTED_LINES 8

/* Counts of what corpus_load_text kept and skipped. */
typedef struct {
    size_t lines, kept;
    size_t skipped_empty;   /* a side empty or blank */
    size_t skipped_long;    /* a side longer than the maximum length */
    size_t skipped_ratio;   /* sides' token counts differ by more than the maximum ratio */
    size_t skipped_no_tab;  /* TSV lines without exactly one tab */
    size_t invalid_utf8;    /* invalid sequences replaced by U+FFFD */
    size_t invalid_lines[CORPUS_REPORTED_LINES]; /* first 1-based lines holding them */
    size_t n_invalid_lines;                      /* lines holding them, all counted */
} corpus_stats;

/* Which pairs corpus_load_text keeps. */
typedef struct {
    int max_len;     /* tokens per side */
    float max_ratio; /* longer side / shorter side in tokens; 0 keeps every ratio */
    int unescape;    /* undo Moses' escaping (corpus_unescape_moses) before tokenizing */
} corpus_filter;

/* Reads a parallel corpus (a source and a target file of equal segment
 * count, or one TSV file as src_path with tgt_path NULL), tokenizes both
 * sides and keeps the pairs that pass filter; skipped pairs are counted in
 * stats, never shifted. Tokenized text goes to src_tokens/tgt_tokens
 * (arrays of n tok_list) when those are not NULL. Returns 0, or -1 with a
 * message in err (unreadable file, segment counts that differ, out of
 * memory). */
int corpus_load_text(const char *src_path, const char *tgt_path, corpus_format format,
                     const char *src_lang, const char *tgt_lang, const corpus_filter *filter,
                     tok_list **src_tokens, tok_list **tgt_tokens, size_t *n,
                     corpus_stats *stats, char *err, size_t err_size);

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
