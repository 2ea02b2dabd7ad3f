/* Helpers shared by the subcommands: flag parsing that exits with a message
 * naming the flag, thread settings and model loading. */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#ifndef SEQMT_DEFAULT_MODEL
#define SEQMT_DEFAULT_MODEL "models/en-de.seqmt"
#endif

/* Parses a whole number in [min, max] or exits naming the flag. */
int cli_run_command(const cli_command *table, size_t n, const char *prefix, int argc,
                    char **argv)
{
    char program[64];

    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], table[i].name) == 0) {
            snprintf(program, sizeof program, "%s %s", prefix, table[i].name);
            argv[1] = program;
            return table[i].run(argc - 1, argv + 1);
        }
    }
    return -1;
}

long cli_parse_long(const char *flag, const char *s, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "seqmt: invalid value '%s' for %s: expected a whole number from %ld to "
                        "%ld\n",
                s, flag, min, max);
        exit(2);
    }
    return v;
}

double cli_parse_double(const char *flag, const char *s, double min, double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || *s == '\0' || *end != '\0' || !(v >= min && v <= max)) {
        fprintf(stderr, "seqmt: invalid value '%s' for %s: expected a number from %g to %g\n", s,
                flag, min, max);
        exit(2);
    }
    return v;
}

void cli_set_threads(long threads)
{
    if (threads > 0)
        openblas_set_num_threads((int)threads);
}

const char *cli_default_model_path(void)
{
    const char *env = getenv("SEQMT_MODEL");

    return env && *env ? env : SEQMT_DEFAULT_MODEL;
}

model *cli_load_model_or_exit(const char *path)
{
    char err[1024];
    model *m = model_load(path, err, sizeof(err));

    if (!m) {
        fprintf(stderr, "seqmt: %s\n", err);
        if (strcmp(path, SEQMT_DEFAULT_MODEL) == 0)
            fprintf(stderr, "seqmt: this is the default model; choose another with --model FILE "
                            "or the SEQMT_MODEL environment variable\n");
        exit(1);
    }
    return m;
}


/* Exits unless the codes file at path is the one m was trained with. */
void cli_check_codes_or_exit(const model *m, const char *model_path, const char *path)
{
    char err[1024];
    bpe *codes = bpe_read(path, err, sizeof(err));

    if (!codes) {
        fprintf(stderr, "seqmt: %s\n", err);
        exit(1);
    }
    if (!m->src_bpe || bpe_hash(codes) != bpe_hash(m->src_bpe)) {
        if (m->src_bpe)
            fprintf(stderr, "seqmt: model %s was trained with subword codes %016llx (%zu merges), "
                            "but %s holds codes %016llx (%zu merges); use the model's own codes "
                            "or retrain\n",
                    model_path, (unsigned long long)bpe_hash(m->src_bpe),
                    bpe_n_merges(m->src_bpe), path, (unsigned long long)bpe_hash(codes),
                    bpe_n_merges(codes));
        else
            fprintf(stderr, "seqmt: model %s is word-level and has no subword codes, but %s "
                            "holds codes %016llx (%zu merges)\n",
                    model_path, path, (unsigned long long)bpe_hash(codes), bpe_n_merges(codes));
        exit(1);
    }
    bpe_free(codes);
}

void cli_check_vocab_or_exit(const model *m, const char *model_path, int target,
                             const char *path)
{
    char err[1024], diff[1024];
    vocab *v = vocab_read(path, err, sizeof(err));
    const vocab *own = target ? m->tgt_vocab : m->src_vocab;

    if (!v) {
        fprintf(stderr, "seqmt: %s\n", err);
        exit(1);
    }
    if (vocab_compare(own, v, diff, sizeof(diff))) {
        fprintf(stderr, "seqmt: %s vocabulary %s does not match model %s: the model's has %s; "
                        "use the model's own vocabulary ('seqmt vocab export') or retrain\n",
                target ? "target" : "source", path, model_path, diff);
        exit(1);
    }
    vocab_free(v);
}

/* Whether paths a and b name the same file: the same device and inode when
 * both exist, else the same spelling. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return strcmp(a, b) == 0;
}

void cli_check_paths_or_exit(const char *command, const char *const *outputs, size_t n_out,
                             const char *const *inputs, size_t n_in)
{
    for (size_t i = 0; i < n_out; i++) {
        if (!outputs[i])
            continue;
        for (size_t j = 0; j < n_in; j++) {
            if (inputs[j] && same_file(outputs[i], inputs[j])) {
                fprintf(stderr, "seqmt %s: output %s is also an input; writing it would destroy "
                                "the input: choose another output path\n",
                        command, outputs[i]);
                exit(2);
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (outputs[j] && same_file(outputs[i], outputs[j])) {
                fprintf(stderr, "seqmt %s: %s is named for two outputs; give each output its own "
                                "path\n",
                        command, outputs[i]);
                exit(2);
            }
        }
    }
}

FILE *cli_open_output(const char *path, char *tmp, size_t tmp_size)
{
    struct stat st;
    FILE *f;

    if (lstat(path, &st) == 0 && (!S_ISREG(st.st_mode) || stat(path, &st) != 0 ||
                                  !S_ISREG(st.st_mode))) {
        /* A link, device or pipe (/dev/stdout, a FIFO) is written in place. */
        tmp[0] = '\0';
        if (!(f = fopen(path, "w")))
            fprintf(stderr, "seqmt: cannot write %s: %s\n", path, strerror(errno));
        return f;
    }
    if (snprintf(tmp, tmp_size, "%s.tmp", path) >= (int)tmp_size) {
        fprintf(stderr, "seqmt: output path too long: %s\n", path);
        return NULL;
    }
    if (!(f = fopen(tmp, "w")))
        fprintf(stderr, "seqmt: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

int cli_close_output(FILE *f, const char *tmp, const char *path)
{
    int failed = ferror(f) != 0;

    if (fclose(f) != 0)
        failed = 1;
    if (!tmp[0] && !failed)
        return 0;
    if (failed || rename(tmp, path) != 0) {
        fprintf(stderr, "seqmt: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
