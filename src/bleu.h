/* Corpus BLEU as sacreBLEU 2.x computes it by default: 13a tokenization,
 * cased, up to 4-grams, one reference per segment, exponential brevity
 * penalty, "exp" smoothing of orders without matches, no effective order. */
#ifndef SEQMT_BLEU_H
#define SEQMT_BLEU_H

#include <stddef.h>

typedef struct {
    double score;          /* 0-100 */
    double precision[4];   /* n-gram precisions, 0-100 */
    double brevity_penalty;
    double ratio;          /* hyp_len / ref_len, 0 when ref_len is 0 */
    size_t hyp_len, ref_len;
    size_t correct[4], total[4];
} bleu_result;

/* Splits one segment as sacreBLEU's "13a" tokenizer does (mteval-v13a).
 * Returns a malloc'd string with tokens separated by single spaces, or
 * NULL when out of memory. segment NULL counts as "". */
char *bleu_tokenize_13a(const char *segment);

/* Scores n hypothesis segments against n references. Each segment loses its
 * trailing whitespace and is tokenized with bleu_tokenize_13a. A NULL
 * entry counts as an empty segment. Returns 0, or -1 when out of memory. */
int bleu_corpus(const char *const *hyps, const char *const *refs, size_t n, bleu_result *out);

/* Writes sacreBLEU's one-line summary of r, e.g.
 * "BLEU = 20.12 55.1/27.3/15.0/8.5 (BP = 1.000 ratio = 1.012 hyp_len = 12345 ref_len = 12200)".
 * Returns what snprintf returns: the full length, which is >= size when the
 * line was truncated. */
int bleu_format(const bleu_result *r, char *buf, size_t size);

#endif
