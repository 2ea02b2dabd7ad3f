/* The training state stored beside the checkpoint, so that `seqmt train
 * --resume` continues a run where its last completed epoch left it.
 *
 * The state is a small JSON file, OUTPUT.checkpoint.state. It contains the
 * counters and random generator states after an epoch and the size and
 * stored CRC-32 of the checkpoint written after that epoch. It also
 * contains every option that must not change on resume, and the size and
 * CRC-32 of each input file. A state only matches the checkpoint
 * whose CRC it records, so a checkpoint and a state from different epochs
 * or runs are rejected, never mixed. Both files are replaced atomically
 * (temporary file, then rename), but one after the other, so a crash
 * between the two renames leaves a pair that resume rejects. */
#ifndef SEQMT_TRAIN_STATE_H
#define SEQMT_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "rng.h"
#include "train.h"

typedef struct {
    int epoch;                /* epochs completed; a resumed run starts at epoch + 1 */
    double learning_rate;     /* for the next epoch, after any halving */
    double best_ppl;          /* best validation perplexity so far, the model at OUTPUT */
    rng_state rng;            /* batch order and dropout */
    uint64_t seg_state;       /* BPE-dropout segmentation (train_dropout_state) */
    uint64_t done_tokens;     /* target tokens trained on, for the estimate of the time left */
    double elapsed_seconds;   /* training time of every process of the run so far */
    uint64_t checkpoint_size; /* bytes of the checkpoint this state belongs to */
    uint32_t checkpoint_crc;  /* the CRC-32 that file stores (train_state_model_crc) */
} train_state;

/* Number of input files a run may name: the four corpora, two codes
 * files and two vocabulary files. */
#define TRAIN_STATE_INPUTS 8

/* Sizes and CRC-32s of the input files a run names, taken once when the
 * run starts, in the order train_state.c lists the files. */
typedef struct {
    uint64_t size[TRAIN_STATE_INPUTS];
    uint32_t crc[TRAIN_STATE_INPUTS];
} train_inputs;

/* Computes the size and CRC-32 of every input file opt names into *in.
 * Returns 0, or -1 with a message in err naming the file. */
int train_inputs_read(const train_options *opt, train_inputs *in, char *err,
                      size_t err_size);

/* Computes the CRC-32 (zlib's) and size of the file at path. Returns 0, or
 * -1 with a message in err naming the path. */
int train_state_file_crc(const char *path, uint32_t *crc, uint64_t *size, char *err,
                         size_t err_size);

/* Reads the CRC-32 that a model file stores in its last 4 bytes (model.h),
 * and the file's size. A CRC-32 over the whole file would not do: it is
 * the same for every file that ends with the CRC-32 of what precedes it.
 * Returns 0, or -1 with a message in err naming the path. */
int train_state_model_crc(const char *path, uint32_t *crc, uint64_t *size, char *err,
                          size_t err_size);

/* Writes st, the options of opt and the input fingerprint in to path as
 * JSON, through path.tmp and a rename. Returns 0, or -1 with a message in
 * err. */
int train_state_write(const char *path, const train_options *opt, const train_inputs *in,
                      const train_state *st, char *err, size_t err_size);

/* Reads the state at path into *st and checks that it was written for the
 * same options as opt (every option but --epochs, --time-limit, --output
 * and --threads) and the same input files, whose fingerprint is in.
 * Returns 0, or -1 with a message in err when the file is missing or
 * invalid, or naming the first option or file that differs with both
 * values. */
int train_state_read(const char *path, const train_options *opt, const train_inputs *in,
                     train_state *st, char *err, size_t err_size);

/* Checks that the checkpoint model ckpt (loaded from path) has the
 * configuration, vocabularies, subword codes and flags of built, the model
 * the corpus and options give now. Returns 0, or -1 with a message in err
 * naming the first difference. */
int train_state_check_model(const model *ckpt, const model *built, const char *path, char *err,
                            size_t err_size);

#endif
