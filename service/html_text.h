/* Text runs of an HTML fragment, and character references. */
#ifndef SEQMT_HTML_TEXT_H
#define SEQMT_HTML_TEXT_H

#include <stddef.h>

typedef struct { size_t start, len; int is_text; } html_piece;
/* Splits html[0..len) into pieces in order: markup (tags, comments,
 * doctype, and the content of script and style elements) with is_text 0,
 * copied unchanged, and text runs with is_text 1. Stores a malloc'd array
 * in *pieces and its length in *count. Returns 0, or -1 when out of memory. */
int html_split(const char *html, size_t len, html_piece **pieces, size_t *count);
/* Decodes character references in s[0..len) into malloc'd UTF-8 text; NULL when out of memory. */
char *html_text_decode(const char *s, size_t len);
/* Escapes &, < and > (and quotes) in s for HTML text; malloc'd; NULL when out of memory. */
char *html_text_encode(const char *s);

#endif
