/* Text handling shared by training, translation and the service: Unicode
 * normalization, Moses-style tokenization and detokenization for English and
 * German, and the classification of tokens that translation copies unchanged
 * (numbers, URLs, e-mail addresses, emoji).
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
 * separates tokens (except a no-break space inside a number, see below),
 * and tokens are never empty. Ill-formed UTF-8 is read as U+FFFD.
 *
 * Unlike Moses, splits fall only between extended grapheme clusters, so
 * emoji sequences, flags, keycaps and characters with their combining marks
 * stay whole. The one exception is a combining mark after whitespace: the
 * whitespace is dropped and the mark starts the next token. These spans are
 * never split and come out as single tokens that tok_classify recognizes:
 *  - numbers: digit groups joined by '.', ',', ':' or '-' ("3.5", "1,000",
 *    "10:30", "2014-2015"), an optional exponent ("1.5e3") and '%' ("50%");
 *  - a no-break space (U+00A0, U+202F or U+2007) before a group of exactly
 *    three digits or before '%' ("10 000", "50 %"), which stays inside the
 *    number token, unlike other whitespace;
 *  - URLs starting with http://, https://, ftp://, mailto: or www., without
 *    the punctuation that ends a sentence after them;
 *  - e-mail addresses;
 *  - runs of adjacent emoji clusters ("😀😀", "👍🏽").
 * A URL or e-mail address is recognized only at the start of a
 * whitespace-separated chunk or after punctuation such as '(' or a quote.
 *
 * lang is "en" or "de" (a region suffix such as "en-GB" is ignored). NULL
 * or any other code selects language-neutral rules. Appends to *out.
 * Returns 0, or -1 when out of memory, in which case *out is unchanged. */
int tok_tokenize(const char *text, const char *lang, tok_list *out);

/* Joins tokens back into natural text, undoing tok_tokenize's splits as
 * Moses' detokenizer.perl does: no space before closing punctuation
 * (, . ! ? : ; % ) ] } and closing quotes), none after opening brackets
 * and opening quotes, nor after a currency sign followed by a digit ("$5"),
 * English clitics ("'s", "'t", "n't") joined to the previous word. ASCII double quotes alternate between
 * opening and closing; „ opens and “ closes the German pair. Punctuation
 * that carries combining marks ("?⃝") joins like the bare punctuation, and
 * numbers, URLs, e-mail addresses and emoji are spaced like words. Tokens
 * that are NULL or empty are skipped. Returns a malloc'd string the caller
 * frees, or NULL when out of memory. */
char *tok_detokenize(const char *const *tokens, size_t n, const char *lang);

/* Kinds of tokens. All kinds except TOK_PLAIN are protected: translation
 * should copy them from the source to the output unchanged. */
typedef enum {
    TOK_PLAIN,  /* words, punctuation and everything else */
    TOK_NUMBER, /* "42", "-3.5", "1,000", "10:30", "2014-2015", "1.5e3", "50%" */
    TOK_URL,    /* "https://example.org/a?b=1", "www.example.org" */
    TOK_EMAIL,  /* "anna.schmidt@example.de" */
    TOK_EMOJI,  /* one or more emoji clusters, including flags and keycaps */
} tok_kind;

/* Classifies one token, using the rules by which tok_tokenize keeps
 * protected spans whole. The whole token must match, so "10:30am" and
 * "3." are TOK_PLAIN. Returns TOK_PLAIN for NULL, and also when out of
 * memory. */
tok_kind tok_classify(const char *token);

/* Returns 1 when tok_classify(token) is not TOK_PLAIN, else 0. */
int tok_is_protected(const char *token);

/* Returns 1 when NUL-terminated s contains no token, that is when
 * tok_tokenize would append nothing: s is empty or contains only
 * whitespace (spaces, tabs, line breaks, U+00A0, U+2028, U+2029, U+3000 and
 * the other Zs characters), control characters, U+200B or U+FEFF. Returns
 * 0 otherwise, so ill-formed UTF-8 and U+200E or U+200F marks count as
 * text. NULL counts as blank. */
int text_is_blank(const char *s);

/* Appends a copy of token to list. Returns 0, or -1 when out of memory. */
int tok_list_push(tok_list *list, const char *token);

/* Frees the tokens and the array; the list is left empty and reusable.
 * A zero-initialized list needs no other setup. */
void tok_list_clear(tok_list *list);

#endif
