/* Training: builds vocabularies from the training corpus, then runs SGD
 * with gradient-norm clipping over batches of similar length, validates
 * after every epoch, halves the learning rate when validation perplexity
 * stops improving, checkpoints, and keeps the best model. */
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
    size_t src_vocab_size, tgt_vocab_size; /* maximum entries, special tokens included */
    uint64_t min_count;                    /* tokens seen fewer times become <unk> */
    int batch_size, epochs, max_len;
    float max_ratio; /* skip training pairs whose sides' lengths differ more; 0: keep all */
    float learning_rate, max_grad_norm, init_scale, dropout;
    double time_limit_minutes; /* stop after this much training time; 0 means no limit */
    size_t bpe_merges;      /* learn this many subword merges; 0 keeps word-level tokens */
    int bpe_separate;       /* learn source and target codes apart instead of jointly */
    const char *bpe_codes;  /* use this subword-nmt codes file (both sides) instead */
    int placeholders;       /* replace numbers, URLs, e-mails and emoji by placeholders */
    int decay_after;           /* from this epoch on, halve the learning rate every epoch; 0: never */
    int half_precision_model;  /* write the best model with float16 weights */
    uint64_t seed;
} train_options;

/* Defaults: 2 layers, embedding 256, hidden 512, vocabularies of at most
 * 10000 entries with min count 2, batch 64, 10 epochs, sentences up to 50
 * tokens and a length ratio up to 9, learning rate 1.0, maximum gradient norm 5, initialization
 * [-0.08, 0.08], dropout 0.2, seed 1. */
train_options train_default_options(void);

/* Progress sink: one complete line without newline per call. */
typedef void (*train_log_fn)(void *ctx, const char *line);

/* Trains a model as opt describes. Returns 0, or -1 with a message in err
 * (unreadable or mismatched corpora, invalid options, out of memory, a
 * model that cannot be written). */
int train_run(const train_options *opt, train_log_fn log, void *log_ctx, char *err,
              size_t err_size);

#endif
