/* Word vocabularies: counting tokens of a corpus, choosing the kept set by
 * size limit and frequency cut-off, and mapping tokens to ids and back.
 *
 * Ids 0-3 are reserved for padding, unknown, start and end of sentence in
 * every vocabulary. Lookups are hash based and read-only once built, so
 * several threads may share one vocabulary.
 */
#ifndef SEQMT_VOCAB_H
#define SEQMT_VOCAB_H

#include <stddef.h>
#include <stdint.h>

enum { VOCAB_PAD = 0, VOCAB_UNK = 1, VOCAB_BOS = 2, VOCAB_EOS = 3, VOCAB_N_SPECIAL = 4 };

/* Spellings of the special tokens, ids VOCAB_PAD to VOCAB_EOS in order. */
#define VOCAB_PAD_TOKEN "<pad>"
#define VOCAB_UNK_TOKEN "<unk>"
#define VOCAB_BOS_TOKEN "<s>"
#define VOCAB_EOS_TOKEN "</s>"

typedef struct vocab vocab;
typedef struct vocab_counter vocab_counter;

/* Returns a new empty counter, or NULL when out of memory. */
vocab_counter *vocab_counter_new(void);
/* Counts one occurrence of token (copied). Returns 0, or -1 when out of
 * memory, in which case the occurrence is not counted. */
int vocab_counter_add(vocab_counter *counter, const char *token);
/* Returns how often token was counted so far, 0 when never. */
uint64_t vocab_counter_count(const vocab_counter *counter, const char *token);
/* Number of distinct tokens counted so far. */
size_t vocab_counter_size(const vocab_counter *counter);
/* Frees the counter and its token copies. NULL is a no-op. */
void vocab_counter_free(vocab_counter *counter);

/* Builds a vocabulary of the special tokens plus the most frequent counted
 * tokens that occur at least min_count times, at most max_size entries in
 * all. A max_size of 0 means no limit, and one below VOCAB_N_SPECIAL keeps
 * the special tokens only. Ties in frequency are broken by byte order of
 * the token (strcmp), so the result is deterministic. Counted tokens
 * spelled like a special token are dropped. The counter may be freed
 * afterwards. Returns NULL when out of memory. */
vocab *vocab_build(const vocab_counter *counter, size_t max_size, uint64_t min_count);

/* Builds a vocabulary from an ordered token list whose first
 * VOCAB_N_SPECIAL entries are the special tokens, as stored in a model
 * file. Id i is a copy of tokens[i]. Returns NULL on duplicates, a missing
 * or wrong special token, a NULL or empty token, more than INT32_MAX
 * tokens, or out of memory. */
vocab *vocab_from_tokens(const char *const *tokens, size_t n);

/* Id of token, or VOCAB_UNK when absent or NULL. */
int32_t vocab_id(const vocab *v, const char *token);
/* Token of id; NULL when id is out of range. The string belongs to v. */
const char *vocab_token(const vocab *v, int32_t id);
/* Number of entries, special tokens included. */
size_t vocab_size(const vocab *v);
/* Frees v and its tokens. NULL is a no-op. */
void vocab_free(vocab *v);

/* ---- Files (vocab_file.c) ---- */

/* Writes v to path, one token per line in id order, special tokens first.
 * The file is written under a temporary name and renamed, so a failure
 * never leaves a half-written vocabulary. Returns 0, or -1 with a message
 * in err naming the path. */
int vocab_write(const vocab *v, const char *path, char *err, size_t err_size);

/* Reads a vocabulary file: one token per line, each optionally followed by
 * a tab and anything (a count, say), which is ignored. A file that starts
 * with the four special tokens keeps its ids; a file without them gets them
 * in front. Returns a new vocabulary, or NULL with a message in err naming
 * the path and line (empty line, space in a token, invalid UTF-8, misplaced special token,
 * a token listed twice, nothing but special tokens, unreadable file). */
vocab *vocab_read(const char *path, char *err, size_t err_size);

/* Reads the subwords a segmentation may keep whole (bpe_set_vocabulary)
 * from a file of one token per line, each optionally followed by a space or
 * tab and its count, as subword-nmt's get_vocab.py and `seqmt vocab learn`
 * write. With threshold > 0 every line needs a count, and only tokens
 * counted at least threshold times are kept. Sets *tokens to a new array of
 * *n new strings (free each and the array). Returns 0, or -1 with a message
 * in err naming the path and line (missing or malformed count, empty token,
 * invalid UTF-8, unreadable file). */
int vocab_read_subwords(const char *path, uint64_t threshold, char ***tokens, size_t *n,
                        char *err, size_t err_size);

/* Compares a and b entry by entry. Returns 0 when they contain the same
 * tokens in the same order. Otherwise writes both sizes and the first entry
 * that differs to msg and returns 1. */
int vocab_compare(const vocab *a, const vocab *b, char *msg, size_t msg_size);

#endif
