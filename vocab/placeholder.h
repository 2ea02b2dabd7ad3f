/* Placeholders for tokens that must reach the output unchanged: numbers,
 * URLs, e-mail addresses and emoji (the classes tok_classify recognizes).
 *
 * Before training and translation each such token is replaced by its
 * class placeholder ("<num>", "<url>", "<email>", "<emoji>"), so the model
 * learns where they go without learning the values. After translation the
 * placeholders of each class are filled with the source's tokens of that
 * class, in source order. The tokenizer never produces a token that looks
 * like a placeholder, because it splits '<' and '>' from words.
 */
#ifndef SEQMT_PLACEHOLDER_H
#define SEQMT_PLACEHOLDER_H

#include "text.h"

/* Returns 1 when token is one of the placeholders, else 0. */
int placeholder_is(const char *token);

/* Returns the kind whose placeholder token is, or TOK_PLAIN when token is
 * not a placeholder. */
tok_kind placeholder_kind(const char *token);

/* Returns the placeholder of a protected kind, or NULL for TOK_PLAIN. */
const char *placeholder_of(tok_kind kind);

/* Replaces every protected token of list by its placeholder, appending the
 * originals in order to saved when saved is not NULL. Returns the number
 * of tokens replaced, or -1 when out of memory. */
int placeholder_mask(tok_list *list, tok_list *saved);

/* Fills the placeholders of list with saved's tokens of the same class in
 * order. A placeholder with no token of its class left is removed, so no
 * placeholder reaches the output; saved tokens that no placeholder asked
 * for are dropped. Returns 0, or -1 when out of memory. */
int placeholder_unmask(tok_list *list, const tok_list *saved);

#endif
