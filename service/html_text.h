/* Text and markup of an HTML document, so that the service can translate
 * the text runs of a page and copy its tags unchanged.
 *
 * The scanner follows the tokenizer states of the WHATWG HTML standard
 * closely enough to find where markup starts and ends. It builds no tree
 * and never rejects input. See html_text.c for its limits.
 */
#ifndef SEQMT_HTML_TEXT_H
#define SEQMT_HTML_TEXT_H

#include <stddef.h>

/* One piece of a document: bytes [start, start + len), markup or text. */
typedef struct {
    size_t start, len;
    int is_text;
} html_piece;

/* Splits html[0..len) into pieces in order: markup (tags, comments,
 * doctype, and the content of script and style elements) with is_text 0,
 * copied unchanged, and text runs with is_text 1. Stores a malloc'd array
 * in *pieces and its length in *count. Returns 0, or -1 when out of memory.
 *
 * The pieces cover the input exactly: concatenated in order they give back
 * html[0..len) byte for byte, whatever the bytes. No piece is empty. Each
 * tag, comment, doctype, CDATA section, processing instruction and script
 * or style content is a piece of its own, and each text run is maximal, so
 * two text pieces are never adjacent. A '<' that starts no markup ("a < b")
 * is text. Markup left open at the end ("<a href=") runs to the end. Text
 * pieces still contain character references ("&amp;"), which
 * html_text_decode resolves. When len is 0, *pieces is NULL and *count 0;
 * on failure *pieces is NULL. html may be NULL when len is 0. */
int html_split(const char *html, size_t len, html_piece **pieces, size_t *count);

/* Decodes character references in s[0..len) into malloc'd UTF-8 text; NULL
 * when out of memory.
 *
 * Named references cover the 252 entities of HTML 4, "&apos;", and the
 * upper-case "&AMP;", "&LT;", "&GT;", "&QUOT;", "&COPY;" and "&REG;".
 * Without their semicolon only the names that HTML allows so ("&amp",
 * "&copy", the Latin-1 letters) are decoded, and only when no letter or
 * digit follows. An unknown "&name;" and a lone '&' stay as they are.
 * Decimal and hexadecimal references ("&#233;", "&#xE9;") are decoded with
 * or without their semicolon. Zero, surrogates and values above U+10FFFF
 * become U+FFFD, and 0x80 to 0x9F are read as Windows-1252 ("&#146;" is
 * U+2019), as browsers do. A NUL byte becomes U+FFFD, so the NUL-terminated
 * result is never cut short. Other bytes, ill-formed UTF-8 included, are
 * copied unchanged. s may be NULL when len is 0. The caller frees the
 * result. */
char *html_text_decode(const char *s, size_t len);

/* Escapes &, < and > (and quotes) in s for HTML text; malloc'd; NULL when
 * out of memory.
 *
 * The replacements are "&amp;", "&lt;", "&gt;", "&quot;" and "&#39;", so
 * the result is safe both as element text and inside a quoted attribute
 * value. Other bytes are copied. NULL s counts as the empty string. The
 * caller frees the result. */
char *html_text_encode(const char *s);

#endif
