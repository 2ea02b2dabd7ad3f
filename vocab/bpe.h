/* Byte-pair encoding (BPE) of words into subword units, compatible with
 * subword-nmt, the implementation of Sennrich, Haddow and Birch (2016),
 * "Neural Machine Translation of Rare Words with Subword Units". This module
 * learns merges from word counts, reads and writes subword-nmt's codes
 * files, segments words with the "@@" continuation marker, and joins
 * segmented tokens back into words.
 *
 * Words are tokens as tok_tokenize produces them: NUL-terminated UTF-8.
 * Symbols are Unicode code points, so a word is never split inside a UTF-8
 * sequence. Codes objects are immutable after creation except through
 * bpe_cache_words, so several threads may segment with one object at once.
 *
 * Limits: no byte-level BPE ("#version: 0.2 byte") or glossaries. On
 * valid UTF-8, segmentation differs from
 * subword-nmt only for words whose last subword would end in "@@" (see
 * bpe_segment_word).
 */
#ifndef SEQMT_BPE_H
#define SEQMT_BPE_H

#include "text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Continuation marker appended to every subword but the last of a word. */
#define BPE_MARKER "@@"
/* End-of-word suffix of the last symbol while learning and segmenting.
 * It appears in codes files, and segmentation removes it from the last
 * subword. */
#define BPE_END_OF_WORD "</w>"

typedef struct bpe bpe;
typedef struct bpe_learner bpe_learner;

/* ---- Learning ---- */

/* Returns a new learner with no words counted, or NULL when out of memory. */
bpe_learner *bpe_learner_new(void);

/* Counts count occurrences of word (copied). A word is one token: it must
 * be non-empty, valid UTF-8, and free of spaces, carriage returns and line
 * feeds, which the codes file format cannot hold. Returns 0, or -1 with a
 * message in err (naming the word) when the word is invalid, the total
 * count would exceed INT64_MAX, or memory runs out. Nothing is counted on
 * failure. err may be NULL when err_size is 0. */
int bpe_learner_add_count(bpe_learner *learner, const char *word, uint64_t count, char *err,
                          size_t err_size);

/* Counts one occurrence of word, as bpe_learner_add_count does. */
int bpe_learner_add(bpe_learner *learner, const char *word, char *err, size_t err_size);

/* Counts one occurrence of each token of tokens, as bpe_learner_add does.
 * Returns 0, or -1 with a message at the first failure, in which case the
 * tokens before it stay counted. */
int bpe_learner_add_tokens(bpe_learner *learner, const tok_list *tokens, char *err,
                           size_t err_size);

/* Number of distinct words counted so far. */
size_t bpe_learner_size(const bpe_learner *learner);

/* Learns at most n_merges merges from the counted words the way
 * subword-nmt's learn_bpe.py does (codes version 0.2). Each word starts as
 * its code points with BPE_END_OF_WORD appended to the last one. Each step
 * merges every occurrence of the most frequent adjacent symbol pair. A
 * pair occurring k times in a word counted c times adds k * c to its count.
 *
 * Ties in frequency go to the greatest pair: the greater first symbol,
 * then the greater second symbol, comparing by code point (which is byte
 * order in UTF-8). learn_bpe.py breaks ties the same way.
 *
 * Learning stops early when the most frequent pair occurs fewer than
 * min_frequency times (learn_bpe.py's default is 2) or no pair is left.
 * A pair that no longer occurs is never merged, even with min_frequency 0.
 * Pair counts are exact. learn_bpe.py prunes rare pairs from its
 * statistics, which its comments state affects only speed.
 *
 * The learner is not modified and may learn again. Returns new codes the
 * caller frees with bpe_free, or NULL with a message in err when out of
 * memory. */
bpe *bpe_learner_learn(const bpe_learner *learner, size_t n_merges, uint64_t min_frequency,
                       char *err, size_t err_size);

/* Frees the learner and its word copies. NULL is a no-op. */
void bpe_learner_free(bpe_learner *learner);

/* ---- Codes files ---- */

/* Parses len bytes of codes in subword-nmt's text format: an optional
 * first line "#version: 0.2" (or "0.1"), then one merge per line, lowest
 * rank first, its two symbols separated by one space. Carriage returns at
 * line ends, spaces around a line and empty lines at the end are ignored.
 * Repeated merges are kept, and the first occurrence sets the rank.
 *
 * Without a version line the codes follow version 0.1, as in subword-nmt's
 * apply_bpe.py: BPE_END_OF_WORD is then a symbol of its own after the last
 * character instead of a suffix of it.
 *
 * Model files store codes in this format, so this is also how a model
 * loads them. Returns new codes the caller frees with bpe_free. Returns
 * NULL with a message in err naming name and the line when a line is
 * empty, lacks a single space between two symbols, or contains invalid
 * UTF-8 or a NUL byte. Also returns NULL when the version is not 0.1 or 0.2
 * or memory runs out. */
bpe *bpe_from_text(const char *text, size_t len, const char *name, char *err, size_t err_size);

/* Returns the codes in the format bpe_from_text reads: the version line
 * for version 0.2 (none for 0.1), then each merge on its own line ending in
 * "\n". The string is malloc'd and NUL-terminated, and its length without
 * the NUL is stored in *len when len is not NULL. Returns NULL when out of
 * memory. */
char *bpe_to_text(const bpe *codes, size_t *len);

/* Reads a codes file with bpe_from_text, after a UTF-8 byte-order mark if
 * the file starts with one. Returns new codes, or NULL with a message in
 * err naming path (and the line for format errors) when the file cannot be
 * read, is invalid or contains no merge. */
bpe *bpe_read(const char *path, char *err, size_t err_size);

/* Writes the codes to path in the format of bpe_to_text, replacing the
 * file only once the new one is complete (written as PATH.tmp, then
 * renamed). Returns 0, or -1 with a message in err naming path when the file
 * cannot be written or memory runs out. */
int bpe_write(const bpe *codes, const char *path, char *err, size_t err_size);

/* Number of merges, repeated merges included. */
size_t bpe_n_merges(const bpe *codes);

/* Stores the two symbols of the merge of rank rank (0 is applied first) in
 * *first and *second. The strings belong to codes. Returns 0, or -1 when
 * rank is out of range. */
int bpe_merge(const bpe *codes, size_t rank, const char **first, const char **second);

/* Returns the 64-bit FNV-1a hash of the bytes bpe_to_text returns: the
 * version line, then the merges in rank order. Equal hashes tell a model
 * that it is given the codes it was trained with. */
uint64_t bpe_hash(const bpe *codes);

/* Returns new codes with the merges of codes but no cache or vocabulary,
 * or NULL when out of memory. */
bpe *bpe_copy(const bpe *codes);

/* Restricts segmentation to a vocabulary, as apply_bpe.py's --vocabulary
 * option does. A subword outside tokens[0..n) is split back into the two
 * symbols that the lowest-ranked merge making it joined. Each part outside
 * the vocabulary is split again, until every part is in the vocabulary or
 * no merge makes it. Tokens are written as segmentation emits them:
 * "low@@" inside a word, "er" at its end. NULL tokens are skipped; tokens
 * NULL removes the filter. Clears the cache, so call it before
 * bpe_cache_words. Not thread-safe, like bpe_cache_words. Returns 0, or -1
 * when out of memory, in which case the codes are left without a filter.
 *
 * NOTE: with codes version 0.1, a word's last subword that did not merge
 * with the end-of-word symbol is split here by the merges that made it,
 * where apply_bpe.py keeps it whole. */
int bpe_set_vocabulary(bpe *codes, const char *const *tokens, size_t n);

/* Returns whether a and b hold the same merges in the same order and
 * version, whatever their vocabularies. */
bool bpe_same_merges(const bpe *a, const bpe *b);

/* Returns whether the codes have a vocabulary (bpe_set_vocabulary). */
bool bpe_has_vocabulary(const bpe *codes);

/* Frees the codes and their cache. NULL is a no-op. */
void bpe_free(bpe *codes);

/* ---- Segmentation ---- */

/* Stores the segmentation of each of the n words in a cache that
 * bpe_segment_word consults before segmenting. Meant for the most
 * frequent words, before the codes are shared. Not thread-safe: no other
 * call may use codes meanwhile, but once it returns, any number of threads
 * may segment with codes at once. Words already cached, NULL and empty
 * words are skipped. Returns 0, or -1 when out of memory, in which case
 * the words cached before the failure stay cached. */
int bpe_cache_words(bpe *codes, const char *const *words, size_t n);

/* Splits word into subwords the way subword-nmt's apply_bpe.py does and
 * appends them to *out, every subword but the last followed by BPE_MARKER
 * ("lower" may become "low@@", "er"). Starting from the code points, with
 * BPE_END_OF_WORD on the last, the merge of lowest rank among the word's
 * adjacent pairs is applied to all of its occurrences left to right, until
 * no adjacent pair has a merge. A word of one code point stays whole.
 * Codes with a vocabulary (bpe_set_vocabulary) then split the subwords
 * outside it.
 *
 * NOTE: subword-nmt gives a word whose last subword ends in "@@" (the word
 * "@@" itself, say) a last token that looks like a continuation. Here the
 * final "@" of such a subword becomes a subword of its own ("@@" becomes
 * "@@@", "@"), so that bpe_join restores every word.
 *
 * Bytes that are not valid UTF-8 are symbols of one byte each, which no
 * merge read from a file can match. An empty word appends nothing.
 * Thread-safe for concurrent calls with the same codes. Returns 0, or -1
 * when out of memory, in which case *out is unchanged. */
int bpe_segment_word(const bpe *codes, const char *word, tok_list *out);

/* Segments word as bpe_segment_word does, but with BPE-dropout (Provilkov,
 * Emelianenko and Voita, 2020) when dropout > 0: at every merge step each
 * adjacent pair of symbols is ignored with probability dropout, the merge
 * of lowest rank among the other pairs applies to their occurrences, and
 * segmentation stops when no remaining pair has a merge. A word thus splits
 * into smaller subwords at random, down to its characters when dropout is
 * 1. Draws come from *state, a 64-bit generator state the call advances, so
 * equal states give equal segmentations. The cache is not consulted. With
 * dropout <= 0 this is bpe_segment_word and state is not used. Training
 * uses it to show a model many segmentations of each word. Thread-safe for
 * concurrent calls with distinct states. Returns 0, or -1 when out of
 * memory, in which case *out is unchanged. */
int bpe_segment_word_dropout(const bpe *codes, const char *word, double dropout,
                             uint64_t *state, tok_list *out);

/* Appends the segmentation of each token of tokens to *out, as
 * bpe_segment_word does. Returns 0, or -1 when out of memory, in which case
 * *out is unchanged. */
int bpe_segment(const bpe *codes, const tok_list *tokens, tok_list *out);

/* Undoes segmentation: appends to *out the words formed by joining each
 * token that ends in BPE_MARKER, without the marker, to the tokens after
 * it up to and including the first token without the marker. A marker on
 * the last token is dropped (a hypothesis may stop inside a word), and no
 * empty word is appended. NULL and empty tokens are skipped. Returns 0, or
 * -1 when out of memory, in which case *out is unchanged. */
int bpe_join(const char *const *tokens, size_t n, tok_list *out);

#endif
