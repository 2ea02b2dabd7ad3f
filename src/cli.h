/* Command-line helpers shared by the subcommands. Each either returns a
 * valid value or prints a message naming the flag and the fix to standard
 * error and exits the process, so only subcommand code may call them. */
#ifndef SEQMT_CLI_H
#define SEQMT_CLI_H

#include <stdio.h>

#include "model.h"

/* One subcommand: its name and the function that runs it. */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} cli_command;

/* Runs the command of table[0..n) named argv[1] with argc - 1 and argv + 1,
 * after replacing argv[1] by "PREFIX NAME" so that getopt's messages name
 * the command ("seqmt vocab learn: unrecognized option ..."). Returns its
 * exit status, or -1 when no command has that name. */
int cli_run_command(const cli_command *table, size_t n, const char *prefix, int argc,
                    char **argv);

/* Parses a whole number in [min, max] or exits (status 2) naming the flag. */
long cli_parse_long(const char *flag, const char *s, long min, long max);

/* Parses a number in [min, max] or exits (status 2) naming the flag. */
double cli_parse_double(const char *flag, const char *s, double min, double max);

/* Sets OpenBLAS's thread count when threads > 0. */
void cli_set_threads(long threads);

/* The model used without --model: $SEQMT_MODEL, or the bundled model. */
const char *cli_default_model_path(void);

/* Loads the model at path or exits (status 1) with the reason. */
model *cli_load_model_or_exit(const char *path);

/* Exits (status 1) unless the subword codes file at path is the one m was
 * trained with, naming both codes' hashes and merge counts. */
void cli_check_codes_or_exit(const model *m, const char *model_path, const char *path);

/* Exits (status 1) unless the vocabulary file at path contains the model's
 * source (target 0) or target (target 1) vocabulary in the same order,
 * naming both sizes and the first entry that differs. */
void cli_check_vocab_or_exit(const model *m, const char *model_path, int target,
                             const char *path);

/* Exits (status 2) when one of the n_out output paths names the same file
 * as one of the n_in input paths or another output, so that writing it
 * cannot destroy data. NULL entries are skipped. */
void cli_check_paths_or_exit(const char *command, const char *const *outputs, size_t n_out,
                             const char *const *inputs, size_t n_in);

/* Opens PATH.tmp (its name goes to tmp) for an output that replaces path
 * only once complete. A path that exists and is not a regular file (a
 * symbolic link, a device such as /dev/stdout, a FIFO) is opened itself,
 * and tmp is set to "". Returns the stream, or NULL after printing why. */
FILE *cli_open_output(const char *path, char *tmp, size_t tmp_size);

/* Closes f and renames tmp to path. On a write error it removes tmp,
 * prints why and returns -1, leaving any earlier file at path as it was. */
int cli_close_output(FILE *f, const char *tmp, const char *path);

#endif
