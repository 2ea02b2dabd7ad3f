/* Sentence splitting of one line of text. */
#ifndef SEQMT_SENTENCE_H
#define SEQMT_SENTENCE_H

#include <stddef.h>

typedef struct { size_t start, len; } sentence_span;
/* Splits text[0..len) (one line, UTF-8, no line breaks) into sentences.
 * Stores a malloc'd array of spans in *spans (caller frees) and returns the
 * count; blank text gives 0 spans. Spans are trimmed of surrounding
 * whitespace; the bytes between spans are whitespace, which the caller
 * keeps when joining. Returns (size_t)-1 when out of memory. */
size_t sentence_split(const char *text, size_t len, sentence_span **spans);

#endif
