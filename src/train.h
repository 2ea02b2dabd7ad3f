/* Training: builds vocabularies from the training corpus, then runs SGD
 * with gradient-norm clipping over batches of similar length, validates
 * after every epoch, halves the learning rate when validation perplexity
 * stops improving, checkpoints, and keeps the best model.
 *
 * After every completed epoch the float32 model goes to OUTPUT.checkpoint
 * and what the next epoch needs (counters, learning rate, best perplexity,
 * random generator states, options) to OUTPUT.checkpoint.state
 * (train_state.h). A run with resume set continues from there with the
 * next epoch, and gives files byte-identical to an uninterrupted run as
 * long as OpenBLAS sums in the same order (the same thread count). A run
 * stopped by the time limit in the middle of an epoch leaves the checkpoint
 * of the last completed epoch, so resuming repeats the unfinished epoch.
 * An epoch's checkpoint is written as OUTPUT.checkpoint.next and renamed
 * once its state is written, and resuming finishes a rename a stop cut off,
 * so a run killed at any point resumes. */
#ifndef SEQMT_TRAIN_H
#define SEQMT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "corpus.h"

typedef struct {
    const char *train_src, *train_tgt; /* train_tgt NULL: train_src is a TSV file */
    const char *valid_src, *valid_tgt; /* likewise */
    corpus_format format;              /* of all four files; AUTO decides by name */
    const char *output;                /* best model; the checkpoint is OUTPUT.checkpoint */
    const char *src_lang, *tgt_lang;
    int layers, embed, hidden;
    int attention; /* global attention over the encoder's states (attention.h) */
    size_t src_vocab_size, tgt_vocab_size; /* maximum entries, special tokens included */
    uint64_t min_count;                    /* tokens seen fewer times become <unk> */
    int batch_size, epochs, max_len;
    float max_ratio; /* skip training pairs whose sides' lengths differ more; 0: keep all */
    float learning_rate, max_grad_norm, init_scale, dropout;
    double label_smoothing; /* weight of the uniform distribution in each training target
                               (model_loss); 0: off */
    double time_limit_minutes; /* stop after this much training time in this process, 0 means
                                  no limit; a resumed run starts counting again */
    size_t bpe_merges;      /* learn this many subword merges; 0 keeps word-level tokens */
    int bpe_separate;       /* learn source and target codes apart instead of jointly */
    const char *bpe_codes;  /* use this subword-nmt codes file instead (both sides, or the
                               source when bpe_codes_tgt is set) */
    const char *bpe_codes_tgt; /* subword-nmt codes file for the target side */
    double bpe_dropout;        /* BPE-dropout probability for the training pairs; 0: off */
    uint64_t bpe_threshold;    /* split subwords seen fewer times on their side back
                                  (train_filter_rare_subwords); 0: off */
    const char *src_vocab_file, *tgt_vocab_file; /* fixed vocabularies (vocab_read) instead of
                                                    ones built from the corpus */
    int placeholders;       /* replace numbers, URLs, e-mails and emoji by placeholders */
    int moses_escaped;      /* corpora hold Moses' escapes (&apos; ...): decode them first */
    int decay_after;           /* from this epoch on, halve the learning rate every epoch; 0: never */
    int half_precision_model;  /* write the best model with float16 weights */
    uint64_t seed;
    int resume; /* continue from OUTPUT.checkpoint and its state; every option but epochs
                   and time_limit_minutes must equal the interrupted run's */
} train_options;

/* Defaults: 2 layers, embedding 256, hidden 512, vocabularies of at most
 * 10000 entries with min count 2, batch 64, 10 epochs, sentences up to 50
 * tokens and a length ratio up to 9, learning rate 1.0, maximum gradient norm 5, initialization
 * [-0.08, 0.08], dropout 0.2, seed 1. */
train_options train_default_options(void);

/* Progress sink: one complete line without newline per call. */
typedef void (*train_log_fn)(void *ctx, const char *line);

/* Trains a model as opt describes, or with opt->resume continues the run
 * whose checkpoint and state are at OUTPUT.checkpoint. Returns 0, also
 * when a resumed run had already completed opt->epochs epochs (it logs so
 * and trains nothing), or -1 with a message in err (unreadable or
 * mismatched corpora, invalid options, out of memory, a model that cannot
 * be written, a missing checkpoint or state, an option or file that
 * differs from the interrupted run's). */
int train_run(const train_options *opt, train_log_fn log, void *log_ctx, char *err,
              size_t err_size);

/* The steps that turn tokenized corpora into training units, shared with
 * `seqmt vocab` so that codes and vocabularies made there match training. */

/* Logs what corpus_load_text read, kept and skipped from the corpus at
 * path, and where it replaced invalid UTF-8; what names the corpus
 * ("training", "validation"). */
void train_log_corpus_stats(train_log_fn log, void *ctx, const char *what, const char *path,
                            const corpus_stats *st, const corpus_filter *filter);

/* Replaces protected tokens (numbers, URLs, e-mail addresses, emoji) by
 * placeholders in each of the n lists. Returns 0, or -1 when out of memory. */
int train_mask_placeholders(tok_list *lists, size_t n);

/* Learns merges subword codes from the words of a[0..n) and, when b is
 * not NULL, of b[0..n) too (joint codes); placeholders are not counted.
 * Returns new codes, or NULL with a message in err. */
bpe *train_learn_codes(const tok_list *a, const tok_list *b, size_t n, size_t merges,
                       char *err, size_t err_size);

/* Replaces each of the n lists by its subwords under codes. Returns 0, or
 * -1 when out of memory. */
int train_segment_all(const bpe *codes, tok_list *lists, size_t n);

/* Builds the vocabulary training would: the tokens of lists[0..n) seen at
 * least min_count times, at most max_size entries. NULL when out of memory. */
vocab *train_build_vocab(const tok_list *lists, size_t n, size_t max_size, uint64_t min_count);

/* Returns n new lists holding the subwords of words[0..n) under codes, or
 * NULL when out of memory. Each merge is left out with probability dropout,
 * drawing from *state, as bpe_segment_word_dropout does. Dropout 0 applies
 * every merge and draws nothing. Placeholders stay whole. The caller frees
 * the lists with corpus_free_tokens. */
tok_list *train_segment_copy(const bpe *codes, const tok_list *words, size_t n, double dropout,
                             uint64_t *state);

/* Returns the generator state BPE-dropout starts from for a training seed.
 * It differs from the seed because rng_seed derives the training generator
 * from the seed with the same splitmix64 steps, and equal states would
 * repeat those draws. With dropout, training splits the source words once
 * and then the target words once from this state, adds those splits to the
 * vocabulary counts (train_build_vocab_pair), and goes on drawing from it
 * for every epoch. */
uint64_t train_dropout_state(uint64_t seed);

/* Builds a vocabulary as train_build_vocab does, counting the tokens of
 * a[0..n) and b[0..n) together. With BPE-dropout, a and b are the two
 * splits of the corpus, and a token needs min_count occurrences in both
 * together. NULL when out of memory. */
vocab *train_build_vocab_pair(const tok_list *a, const tok_list *b, size_t n, size_t max_size,
                              uint64_t min_count);

/* Makes the codes split rare subwords back, as subword-nmt's apply_bpe.py
 * with --vocabulary-threshold does. It splits the words of src[0..n) and
 * tgt[0..n) under the codes and counts the subwords of each side. Each
 * side's codes are then restricted to its subwords seen at least threshold
 * times, or to the tokens of a given vocabulary (src_vocab, tgt_vocab;
 * NULL to count). Joint codes
 * get a copy for the target side first, so *tgt_codes may change. The
 * subwords kept by counting are stored in *src_kept and *tgt_kept (NULL
 * for a side with a given vocabulary), which the caller checks with
 * train_check_kept and frees with vocab_free. Returns 0, or -1 when out of
 * memory. */
int train_filter_rare_subwords(bpe **src_codes, bpe **tgt_codes, const tok_list *src,
                               const tok_list *tgt, size_t n, uint64_t threshold,
                               const vocab *src_vocab, const vocab *tgt_vocab, vocab **src_kept,
                               vocab **tgt_kept);

/* Writes "LOW to HIGH times", or "LOW time(s)" when they are equal, to
 * buf for messages about counts. */
void train_count_range(uint64_t low, uint64_t high, char *buf, size_t size);

/* Checks that the vocabulary v built for one side (side: "source" or
 * "target") contains every subword that side's filter kept, so that the
 * codes may take v as their filter from then on and split as they did.
 * Returns 0, or -1 with a message in err naming the first missing subword
 * and the fix. A NULL kept passes. */
int train_check_kept(const vocab *kept, const vocab *v, const char *side, uint64_t threshold,
                     char *err, size_t err_size);

#endif
