/* Splitting of a request text into the sentences that are translated, and
 * joining their translations back into a text of the same shape.
 *
 * Plain text is split at line breaks ("\n", with a "\r" before it kept as
 * part of the break), and each line into sentences with sentence_split.
 * The joined text has the same line breaks: a blank line gives an empty
 * line, and the whitespace between sentences of a line is kept while the
 * whitespace before the first and after the last sentence is dropped.
 * HTML is split into markup and text runs with html_split. Markup is copied
 * unchanged; each text run is decoded (character references), split into
 * lines and sentences as above, and its translations are escaped again. In
 * HTML all whitespace around sentences is kept, because it separates words
 * from neighbouring markup.
 */
#ifndef SEQMT_SEGMENT_H
#define SEQMT_SEGMENT_H

#include <stddef.h>

/* One piece of the output: literal text, or the translation of a sentence. */
typedef struct {
    char *literal;   /* malloc'd text copied as it is, or NULL for a sentence */
    size_t sentence; /* index into sentences when literal is NULL */
} segment_piece;

typedef struct {
    char **sentences;      /* [sentence_count] malloc'd, NUL-terminated, each
                              non-blank and free of line breaks */
    size_t sentence_count;
    segment_piece *pieces; /* [piece_count] the output in order */
    size_t piece_count;
    int html;              /* translations are HTML-escaped when joined */
    size_t sentence_cap, piece_cap;
} segmented_text;

/* Splits text (NUL-terminated UTF-8) into out, which the caller zeroes.
 * html selects HTML handling. Returns 0, or -1 when out of memory; out
 * needs segment_free in either case. */
int segment_text(const char *text, int html, segmented_text *out);

/* Returns the joined text as a malloc'd string, with translations[i] (one
 * per sentence, NUL-terminated) in place of sentence i, or NULL when out of
 * memory. */
char *segment_join(const segmented_text *st, const char *const *translations);

/* Frees what st owns and zeroes it. */
void segment_free(segmented_text *st);

#endif
