/* Sentence splitting of one line of text, so that a line holding several
 * sentences can be translated one sentence at a time and joined again with
 * its original spacing.
 *
 * The rules are made for English and German and use Unicode character
 * classes and grapheme clusters. sentence.c lists what they cover and what
 * they miss.
 */
#ifndef SEQMT_SENTENCE_H
#define SEQMT_SENTENCE_H

#include <stddef.h>

/* One sentence: bytes [start, start + len) of the text. */
typedef struct {
    size_t start, len;
} sentence_span;

/* Splits text[0..len) (one line, UTF-8, no line breaks) into sentences.
 * Stores a malloc'd array of spans in *spans (caller frees) and returns the
 * count; blank text gives 0 spans. Spans are trimmed of surrounding
 * whitespace; the bytes between spans are whitespace, which the caller
 * keeps when joining. Returns (size_t)-1 when out of memory.
 *
 * Spans are in text order, never empty, never overlap, and start and end
 * on grapheme cluster boundaries. "Whitespace" here means the characters
 * text_is_blank ignores: Zs, Zl and Zp characters, control characters,
 * U+200B and U+FEFF. When the count is 0 or on failure, *spans is set to
 * NULL. Ill-formed UTF-8 is read one byte at a time as U+FFFD and ends up
 * inside a span. text may be NULL when len is 0; spans must not be NULL. */
size_t sentence_split(const char *text, size_t len, sentence_span **spans);

#endif
