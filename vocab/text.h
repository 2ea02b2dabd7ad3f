/* Text handling shared by training, translation and the service: Unicode
 * normalization, Moses-style tokenization and detokenization for English and
 * German.
 *
 * All strings are UTF-8. Invalid input bytes are replaced by U+FFFD and
 * counted, so a bad corpus line never aborts a run. Case is kept.
 */
#ifndef SEQMT_TEXT_H
#define SEQMT_TEXT_H

#include <stddef.h>

/* A list of malloc'd NUL-terminated tokens. */
typedef struct {
    char **items;
    size_t count;
    size_t capacity;
} tok_list;

/* Normalizes len bytes of s to NFC (canonical composition only, no
 * compatibility folding, case kept). Each maximal ill-formed UTF-8
 * sequence and each NUL byte becomes one U+FFFD, and on success their
 * number is added to *n_invalid when n_invalid is not NULL. Returns a
 * malloc'd NUL-terminated string the caller frees, or NULL when out of
 * memory. */
char *text_normalize(const char *s, size_t len, size_t *n_invalid);

/* Splits NUL-terminated NFC text into tokens the way Moses' tokenizer.perl
 * does for English and German, without escaping. Punctuation and symbols
 * are split from words, and so are commas unless inside a number ("1,000").
 * Hyphens stay inside words, and a run of periods ("...") is one token.
 * English apostrophes split as in Moses ("it's" -> "it 's", "don't" ->
 * "don 't"). In other languages an apostrophe between letters stays inside
 * the word ("geht's").
 *
 * A word-final period is split off unless the word is a known abbreviation
 * of the language, contains an inner period ("z.B."), precedes a lowercase
 * word, or is a German ordinal number ("3. Oktober"). The last token always
 * loses its period. Whitespace, including U+00A0 and control characters,
 * separates tokens, and tokens are never empty. Ill-formed UTF-8 is read as
 * U+FFFD.
 *
 * lang is "en" or "de" (a region suffix such as "en-GB" is ignored). NULL
 * or any other code selects language-neutral rules. Appends to *out.
 * Returns 0, or -1 when out of memory, in which case *out is unchanged. */
int tok_tokenize(const char *text, const char *lang, tok_list *out);

/* Joins tokens back into natural text, undoing tok_tokenize's splits as
 * Moses' detokenizer.perl does: no space before closing punctuation
 * (, . ! ? : ; % ) ] } and closing quotes), none after opening brackets,
 * currency signs and opening quotes, English clitics ("'s", "'t", "n't")
 * joined to the previous word. ASCII double quotes alternate between
 * opening and closing; „ opens and “ closes the German pair. Tokens that
 * are NULL or empty are skipped. Returns a malloc'd string the caller
 * frees, or NULL when out of memory. */
char *tok_detokenize(const char *const *tokens, size_t n, const char *lang);

/* Appends a copy of token to list. Returns 0, or -1 when out of memory. */
int tok_list_push(tok_list *list, const char *token);

/* Frees the tokens and the array; the list is left empty and reusable.
 * A zero-initialized list needs no other setup. */
void tok_list_clear(tok_list *list);

#endif
