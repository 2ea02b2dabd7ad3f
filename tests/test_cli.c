/* End-to-end tests of the seqmt binary as a user runs it: train on real
 * Multi30k pairs, translate files and standard input, score with bleu,
 * serve over HTTP on 127.0.0.1 (requests sent with curl), and the bundled
 * model's quality on part of the Multi30k test set. */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "vocab.h"

static const char *bin;
static char dir[256];
static char model[320];
static int have_model;

/* Runs cmd with sh; returns its exit status and its stdout+stderr in out
 * (malloc'd, may be NULL). */
static int run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int status, c;

    if (!p || !buf)
        return -1;
    while ((c = fgetc(p)) != EOF) {
        if (len + 2 > cap)
            buf = realloc(buf, cap *= 2);
        buf[len++] = (char)c;
    }
    buf[len] = '\0';
    status = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int runf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int runf(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return run(cmd, out);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int suite_init(void)
{
    const char *data = test_data_dir();
    char *out = NULL;
    int rc;

    bin = getenv("SEQMT_BIN");
    if (!bin) {
        fprintf(stderr, "SEQMT_BIN is not set; run these tests with ctest\n");
        return -1;
    }
    snprintf(dir, sizeof(dir), "/tmp/seqmt-cli-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (!data)
        return 0;

    /* A small model trained by the CLI on the first 500 training pairs. */
    rc = runf(&out,
              "cd %s && zcat %s/multi30k/train.en.gz | head -500 > train.en && "
              "zcat %s/multi30k/train.de.gz | head -500 > train.de && "
              "zcat %s/multi30k/val.en.gz | head -40 > val.en && "
              "zcat %s/multi30k/val.de.gz | head -40 > val.de && "
              "%s train --train-src train.en --train-tgt train.de --valid-src val.en "
              "--valid-tgt val.de -o small.seqmt --layers 1 --embed-size 32 --hidden-size 32 "
              "--epochs 2 --min-count 1 --threads 1 2>&1",
              dir, data, data, data, data, bin);
    if (rc != 0) {
        fprintf(stderr, "training the test model failed:\n%s\n", out ? out : "");
        free(out);
        return -1;
    }
    free(out);
    snprintf(model, sizeof(model), "%s/small.seqmt", dir);
    have_model = 1;
    return 0;
}

static int suite_clean(void)
{
    if (dir[0])
        runf(NULL, "rm -rf '%s'", dir);
    return 0;
}

/* A tiny model on the test corpus: trains in seconds. */
#define TINY_TRAINING                                                                          \
    "--train-src train.en --train-tgt train.de --valid-src val.en --valid-tgt val.de "         \
    "--layers 1 --embed-size 8 --hidden-size 8"

#define NEED_MODEL()                                                                             \
    do {                                                                                         \
        if (!have_model) {                                                                       \
            fprintf(stderr, "SKIP: no corpus, no test model\n");                                 \
            return;                                                                              \
        }                                                                                        \
    } while (0)

static void test_train_writes_model_and_checkpoint(void)
{
    char path[400];

    NEED_MODEL();
    CU_ASSERT_EQUAL(access(model, R_OK), 0);
    snprintf(path, sizeof(path), "%s.checkpoint", model);
    CU_ASSERT_EQUAL(access(path, R_OK), 0);
    snprintf(path, sizeof(path), "%s.tmp", model);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
}

static void test_train_rejects_mismatched_corpus(void)
{
    char *out = NULL;
    int rc;

    NEED_MODEL();
    rc = runf(&out,
              "cd %s && head -10 train.de > short.de && %s train --train-src train.en "
              "--train-tgt short.de --valid-src val.en --valid-tgt val.de -o never.seqmt 2>&1",
              dir, bin);
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "train.en has 500 segments"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "short.de has 10"));
    CU_ASSERT_NOT_EQUAL(runf(NULL, "test -e %s/never.seqmt", dir), 0);
    free(out);
}

static void test_train_rejects_bad_flag_value(void)
{
    char *out = NULL;

    CU_ASSERT_EQUAL(runf(&out, "%s train --hidden-size -3 2>&1", bin), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'-3' for --hidden-size"));
    free(out);
}

static void test_train_divergence_fails(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_NOT_EQUAL(runf(&out,
                             "cd %s && %s train --train-src train.en --train-tgt train.de "
                             "--valid-src val.en --valid-tgt val.de -o div.seqmt --layers 1 "
                             "--embed-size 16 --hidden-size 16 --epochs 1 --learning-rate 1000 "
                             "--max-grad-norm 1e9 --threads 1 2>&1",
                             dir, bin),
                        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "diverged"));
    free(out);
}

static void test_train_checks_output_first(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src train.en --train-tgt train.de "
                         "--valid-src val.en --valid-tgt val.de -o /nonexistent/m.seqmt 2>&1",
                         dir, bin),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot write the model to /nonexistent/m.seqmt"));
    CU_ASSERT_PTR_NULL(strstr(out, "epoch"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src train.en --train-tgt train.de "
                         "--valid-src val.en --valid-tgt val.de -o . 2>&1",
                         dir, bin),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is a directory"));
    free(out);
}

static void test_train_rejects_bad_language(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_NOT_EQUAL(runf(&out,
                             "cd %s && %s train --train-src train.en --train-tgt train.de "
                             "--valid-src val.en --valid-tgt val.de -o x.seqmt "
                             "--src-lang english_long_name 2>&1",
                             dir, bin),
                        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "invalid --src-lang 'english_long_name'"));
    free(out);
}

static void test_translate_keeps_line_count(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&out,
                         "printf 'A man is walking.\\n\\nTwo dogs run.\\n   \\nA woman.' | "
                         "%s translate --model %s --beam-size 3",
                         bin, model),
                    0);
    CU_ASSERT_EQUAL(count_lines(out), 5);
    /* Lines 2 and 4 (empty and blank input) must be empty. */
    char *l2 = strchr(out, '\n') + 1;
    CU_ASSERT_EQUAL(*l2, '\n');
    char *l4 = strchr(l2 + 1, '\n') + 1;
    CU_ASSERT_EQUAL(*l4, '\n');
    CU_ASSERT_NOT_EQUAL(out[0], '\n');
    free(out);
}

static void test_translate_file_equals_stdin(void)
{
    char *a = NULL, *b = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&a, "cd %s && head -20 val.en | %s translate --model %s", dir, bin,
                         model), 0);
    CU_ASSERT_EQUAL(runf(&b, "cd %s && head -20 val.en > in.txt && %s translate --model %s "
                             "--input in.txt --output out.txt && cat out.txt",
                         dir, bin, model), 0);
    CU_ASSERT_EQUAL(count_lines(a), 20);
    CU_ASSERT_STRING_EQUAL(a, b);
    free(a);
    free(b);
}

static void test_translate_missing_model_fails(void)
{
    char *out = NULL;

    CU_ASSERT_EQUAL(runf(&out, "echo hi | %s translate --model %s/none.seqmt 2>&1", bin, dir), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "none.seqmt"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "No such file"));
    free(out);
}

static void test_translate_rejects_other_codes(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && printf '#version: 0.2\\na b\\n' > other.codes && echo hi | "
                         "%s translate --model small.seqmt --bpe-codes other.codes 2>&1",
                         dir, bin),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no subword codes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "other.codes"));
    free(out);
}

/* Training on the codes and vocabularies of `vocab learn` gives the model
 * the same units as learning them inside training. The exported files
 * match the ones given to training. */
static void test_vocab_learn_matches_train(void)
{
    char *out = NULL;
    const char *small = "--layers 1 --embed-size 8 --hidden-size 8 --epochs 1 --threads 1";

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(
        runf(&out,
             "cd %s && %s vocab learn --train-src train.en --train-tgt train.de --merges 300 "
             "--placeholders --codes v.codes --src-vocab v.en --tgt-vocab v.de 2>&1",
             dir, bin),
        0);
    free(out);
    CU_ASSERT_EQUAL_FATAL(
        runf(&out,
             "cd %s && %s train --train-src train.en --train-tgt train.de --valid-src val.en "
             "--valid-tgt val.de -o inner.seqmt --bpe-merges 300 --placeholders %s 2>&1 && "
             "%s train --train-src train.en --train-tgt train.de --valid-src val.en "
             "--valid-tgt val.de -o outer.seqmt --bpe-codes v.codes --src-vocab v.en "
             "--tgt-vocab v.de --placeholders %s 2>&1",
             dir, bin, small, bin, small),
        0);
    free(out);
    CU_ASSERT_EQUAL(
        runf(&out,
             "cd %s && for m in inner outer; do %s vocab export --model $m.seqmt "
             "--codes $m.codes --src-vocab $m.en --tgt-vocab $m.de || exit 9; done && "
             "cmp inner.codes v.codes && cmp outer.codes v.codes && cmp inner.en v.en && "
             "cmp outer.en v.en && cmp inner.de v.de && cmp outer.de v.de 2>&1",
             dir, bin),
        0);
    free(out);
    /* Training refuses codes and merges together. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src train.en --train-tgt train.de "
                         "--valid-src val.en --valid-tgt val.de -o x.seqmt --bpe-codes v.codes "
                         "--bpe-merges 10 2>&1",
                         dir, bin),
                    2);
    free(out);
}

/* Training with BPE-dropout is reproducible from its seed and differs
 * from training without it; without subwords the flag is refused. */
static void test_train_bpe_dropout(void)
{
    char *out = NULL;
    const char *common = TINY_TRAINING " --epochs 2 --threads 1 --seed 3 --placeholders";

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s train %s --bpe-merges 300 --bpe-dropout 0.1 "
                               "-o drop1.seqmt 2>&1 && %s train %s --bpe-merges 300 "
                               "--bpe-dropout 0.1 -o drop2.seqmt 2>/dev/null && %s train %s "
                               "--bpe-merges 300 -o plain.seqmt 2>/dev/null",
                               dir, bin, common, bin, common, bin, common),
                          0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "BPE-dropout 0.1: training pairs are split anew"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && cmp drop1.seqmt drop2.seqmt 2>&1", dir), 0);
    free(out);
    CU_ASSERT_NOT_EQUAL(runf(&out, "cd %s && cmp -s drop1.seqmt plain.seqmt", dir), 0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && echo 'a man' | %s translate --model drop1.seqmt", dir,
                         bin),
                    0);
    free(out);
    /* `vocab learn` with the same dropout and seed writes the vocabularies
     * training built, which differ from those without dropout, and training
     * on its files gives the same model. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s vocab learn --train-src train.en --train-tgt train.de "
                         "--merges 300 --bpe-dropout 0.1 --seed 3 --placeholders --codes "
                         "d.codes --src-vocab d.en --tgt-vocab d.de 2>&1 && %s vocab export "
                         "--model drop1.seqmt --src-vocab m.en --tgt-vocab m.de && %s vocab "
                         "export --model plain.seqmt --src-vocab p.en --tgt-vocab p.de && "
                         "cmp d.en m.en && cmp d.de m.de && ! cmp -s d.de p.de 2>&1",
                         dir, bin, bin, bin),
                    0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train %s --bpe-codes d.codes --src-vocab d.en --tgt-vocab "
                         "d.de --bpe-dropout 0.1 -o outer-drop.seqmt 2>&1 && "
                         "cmp outer-drop.seqmt drop1.seqmt 2>&1",
                         dir, bin, common),
                    0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src train.en --train-tgt train.de "
                         "--valid-src val.en --valid-tgt val.de -o x.seqmt --bpe-dropout 0.1 2>&1",
                         dir, bin),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "add --bpe-merges N or --bpe-codes FILE"));
    free(out);
}

/* Training 2 epochs and resuming to 3 writes the same model and checkpoint
 * bytes as training 3 epochs at once, with words and with BPE-dropout. */
static void test_train_resume_matches_straight(void)
{
    /* The third variant's values have no exact binary form, so its state
     * must store them to the last bit. */
    const char *variants[] = {"", "--bpe-merges 300 --bpe-dropout 0.1",
                              "--dropout 0.3 --label-smoothing 0.1 --learning-rate 0.7 "
                              "--init-scale 0.07"};
    const char *common = TINY_TRAINING " --threads 1 --seed 3";
    char *out = NULL;

    NEED_MODEL();
    for (int v = 0; v < 3; v++) {
        CU_ASSERT_EQUAL_FATAL(runf(&out,
                                   "cd %s && %s train %s %s --epochs 3 -o straight%d.seqmt 2>&1 "
                                   "&& %s train %s %s --epochs 2 -o resumed%d.seqmt 2>&1",
                                   dir, bin, common, variants[v], v, bin, common, variants[v],
                                   v),
                              0);
        free(out);
        CU_ASSERT_EQUAL(runf(&out,
                             "cd %s && %s train %s %s --epochs 3 -o resumed%d.seqmt --resume 2>&1",
                             dir, bin, common, variants[v], v),
                        0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "resuming from checkpoint"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "after epoch 2 of 3"));
        CU_ASSERT_PTR_NULL(strstr(out, "epoch 2 validation"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "epoch 3 validation"));
        free(out);
        CU_ASSERT_EQUAL(runf(&out, "cd %s && cmp straight%d.seqmt resumed%d.seqmt 2>&1", dir, v,
                             v),
                        0);
        free(out);
        CU_ASSERT_EQUAL(runf(&out,
                             "cd %s && cmp straight%d.seqmt.checkpoint "
                             "resumed%d.seqmt.checkpoint 2>&1",
                             dir, v, v),
                        0);
        free(out);
    }

    /* A time limit that ends epoch 2 after its first batch leaves epoch 1's
     * checkpoint, and resuming repeats epoch 2 from it. A run that never
     * completes an epoch writes no checkpoint. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train %s --epochs 1 -o limited.seqmt 2>&1 && cp "
                         "limited.seqmt.checkpoint epoch1.checkpoint && %s train %s --epochs 3 "
                         "--time-limit 0.000001 -o limited.seqmt --resume 2>&1",
                         dir, bin, common, bin, common),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "time limit of 0.0 minutes reached in epoch 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "checkpoint limited.seqmt.checkpoint stays at epoch 1"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && cmp epoch1.checkpoint limited.seqmt.checkpoint 2>&1",
                         dir),
                    0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train %s --epochs 3 -o limited.seqmt --resume 2>&1 && cmp "
                         "straight0.seqmt.checkpoint limited.seqmt.checkpoint 2>&1",
                         dir, bin, common),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "after epoch 1 of 3"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train %s --epochs 2 --time-limit 0.000001 -o cut.seqmt "
                         "2>&1",
                         dir, bin, common),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no epoch completed"));
    free(out);
    CU_ASSERT_NOT_EQUAL(runf(&out, "test -e %s/cut.seqmt.checkpoint", dir), 0);
    free(out);

    /* A run that stopped after writing an epoch's state but before renaming
     * its checkpoint into place resumes from that checkpoint. One that
     * stopped before writing the state resumes from the epoch before. Both
     * end with the model of a run without a break. */
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s train %s --epochs 1 -o stop.seqmt 2>&1 && "
                               "cp stop.seqmt.checkpoint e1.ckpt && "
                               "cp stop.seqmt.checkpoint.state e1.state && "
                               "%s train %s --epochs 2 -o stop.seqmt --resume 2>&1 && "
                               "cp stop.seqmt.checkpoint e2.ckpt && "
                               "test ! -e stop.seqmt.checkpoint.next",
                               dir, bin, common, bin, common),
                          0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && cp e1.ckpt stop.seqmt.checkpoint && cp e2.ckpt "
                         "stop.seqmt.checkpoint.next && %s train %s --epochs 3 -o stop.seqmt "
                         "--resume 2>&1",
                         dir, bin, common),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "renamed it to stop.seqmt.checkpoint"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "after epoch 2 of 3"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && cmp straight0.seqmt.checkpoint stop.seqmt.checkpoint 2>&1 && "
                         "test ! -e stop.seqmt.checkpoint.next",
                         dir),
                    0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && cp e1.ckpt stop.seqmt.checkpoint && cp e1.state "
                         "stop.seqmt.checkpoint.state && cp e2.ckpt stop.seqmt.checkpoint.next && "
                         "%s train %s --epochs 3 -o stop.seqmt --resume 2>&1 && cmp "
                         "straight0.seqmt.checkpoint stop.seqmt.checkpoint 2>&1",
                         dir, bin, common),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "after epoch 1 of 3"));
    CU_ASSERT_PTR_NULL(strstr(out, "renamed it to"));
    free(out);

    /* Resuming a run that finished its epochs trains nothing and changes
     * no file. */
    CU_ASSERT_EQUAL(runf(&out, "cd %s && %s train %s --epochs 3 -o resumed0.seqmt --resume 2>&1",
                         dir, bin, common),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "training already finished"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "raise --epochs"));
    CU_ASSERT_PTR_NULL(strstr(out, "validation ppl"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && cmp straight0.seqmt resumed0.seqmt && cmp "
                         "straight0.seqmt.checkpoint resumed0.seqmt.checkpoint 2>&1",
                         dir),
                    0);
    free(out);
}

/* --resume rejects a changed option, a changed corpus, a missing
 * checkpoint and a checkpoint that is not the state's, naming the cause. */
static void test_train_resume_rejects_changes(void)
{
    const char *common = "--train-tgt train.de --valid-src val.en --valid-tgt val.de "
                         "--layers 1 --embed-size 8 --hidden-size 8 --threads 1 --seed 3";
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && cp train.en resume.en && %s train --train-src resume.en "
                               "%s --epochs 1 -o changes.seqmt 2>&1",
                               dir, bin, common),
                          0);
    free(out);

    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src resume.en %s --hidden-size 16 --epochs 2 "
                         "-o changes.seqmt --resume 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--hidden-size is 16 now but was 8"));
    free(out);

    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src resume.en %s --label-smoothing 0.1 "
                         "--epochs 2 -o changes.seqmt --resume 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--label-smoothing is 0.1 now"));
    free(out);

    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src train.en %s --epochs 2 -o changes.seqmt "
                         "--resume 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--train-src is train.en now but was resume.en"));
    free(out);

    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && sed -i '1s/^./X/' resume.en && %s train --train-src "
                         "resume.en %s --epochs 2 -o changes.seqmt --resume 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "resume.en (--train-src) has changed"));
    free(out);

    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src resume.en %s --epochs 2 -o never.seqmt "
                         "--resume 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "checkpoint never.seqmt.checkpoint not found"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "drop --resume"));
    free(out);
    CU_ASSERT_NOT_EQUAL(runf(&out, "test -e %s/never.seqmt", dir), 0);
    free(out);

    /* The state records its checkpoint's CRC-32, so a checkpoint from
     * another epoch is rejected. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src resume.en %s --epochs 2 -o pair.seqmt "
                         "2>&1 && cp changes.seqmt.checkpoint pair.seqmt.checkpoint && %s train "
                         "--train-src resume.en %s --epochs 3 -o pair.seqmt --resume 2>&1",
                         dir, bin, common, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is not the one training state"));
    free(out);
}

/* --label-smoothing changes what training learns but not what validation
 * measures, and the log states this. A weight of 1 or more is rejected. */
static void test_train_label_smoothing(void)
{
    const char *common = TINY_TRAINING " --epochs 1 --threads 1 --seed 3";
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s train %s --label-smoothing 0.1 -o smooth.seqmt 2>&1 "
                               "&& %s train %s -o plain.seqmt 2>&1",
                               dir, bin, common, bin, common),
                          0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "label smoothing 0.1: the loss and ppl of training"));
    free(out);
    CU_ASSERT_NOT_EQUAL(runf(&out, "cd %s && cmp -s smooth.seqmt plain.seqmt", dir), 0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && %s train %s --label-smoothing 1 -o bad.seqmt 2>&1",
                         dir, bin, common),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--label-smoothing"));
    free(out);
}

/* --bpe-threshold splits rare subwords back: the vocabularies shrink,
 * `vocab learn` with the same threshold writes them, training on its files
 * gives the same model, and the model translates. */
static void test_train_bpe_threshold(void)
{
    char *out = NULL;
    const char *common = TINY_TRAINING " --epochs 1 --threads 1 --seed 3";

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s train %s --bpe-merges 300 --bpe-threshold 20 "
                               "-o thr.seqmt 2>&1 && %s train %s --bpe-merges 300 "
                               "-o thr-plain.seqmt 2>/dev/null",
                               dir, bin, common, bin, common),
                          0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "subwords seen fewer than 20 times are split back"));
    const char *kept_text = strstr(out, "the target keeps ");
    long kept_tgt = -1;

    CU_ASSERT_PTR_NOT_NULL(kept_text);
    if (kept_text)
        kept_tgt = strtol(kept_text + strlen("the target keeps "), NULL, 10);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s vocab export --model thr.seqmt --codes te.codes "
                         "--src-vocab te.en --tgt-vocab te.de && %s vocab export --model "
                         "thr-plain.seqmt --codes pe.codes --tgt-vocab pe.de && "
                         "cmp te.codes pe.codes && test $(wc -l < te.de) -lt $(wc -l < pe.de) "
                         "2>&1",
                         dir, bin, bin),
                    0);
    free(out);
    /* The log counts the target subwords kept whole. The vocabulary
     * contains them, the special tokens and the single characters of the
     * splits. */
    CU_ASSERT_EQUAL(runf(&out, "cd %s && wc -l < te.de", dir), 0);
    CU_ASSERT(kept_tgt > 0);
    if (out)
        CU_ASSERT(kept_tgt <= strtol(out, NULL, 10) - VOCAB_N_SPECIAL);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s vocab learn --train-src train.en --train-tgt train.de "
                         "--merges 300 --bpe-threshold 20 --codes t.codes --src-vocab t.en "
                         "--tgt-vocab t.de 2>&1 && cmp t.en te.en && cmp t.de te.de && "
                         "%s train %s --bpe-codes t.codes --src-vocab t.en --tgt-vocab t.de "
                         "--bpe-threshold 20 -o thr-outer.seqmt 2>&1 && "
                         "cmp thr-outer.seqmt thr.seqmt 2>&1",
                         dir, bin, bin, common),
                    0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && echo 'a man in a blue shirt' | %s translate --model "
                               "thr.seqmt",
                         dir, bin),
                    0);
    free(out);

    /* A vocabulary too small for the kept subwords stops `vocab learn`
     * before it writes any file. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s vocab learn --train-src train.en --train-tgt train.de "
                         "--merges 300 --bpe-threshold 20 --tgt-vocab-size 40 --codes s.codes "
                         "--src-vocab s.en --tgt-vocab s.de 2>&1",
                         dir, bin),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "raise --tgt-vocab-size or --bpe-threshold"));
    free(out);
    CU_ASSERT_NOT_EQUAL(runf(&out, "cd %s && ls s.codes s.en s.de 2>/dev/null", dir), 0);
    free(out);

    /* A threshold below --min-count keeps subwords the vocabulary drops. */
    CU_ASSERT_EQUAL(runf(&out, "cd %s && %s train %s --bpe-merges 300 --bpe-threshold 1 "
                               "--min-count 2 -o thr1.seqmt 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "raise --bpe-threshold"));
    free(out);
    CU_ASSERT_NOT_EQUAL(runf(&out, "test -e %s/thr1.seqmt", dir), 0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && %s train %s --bpe-threshold 20 -o x.seqmt 2>&1", dir,
                         bin, common),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "add --bpe-merges N or --bpe-codes FILE"));
    free(out);
}

/* Option errors name the command, as getopt prints them. */
static void test_option_errors_name_command(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&out, "%s train --bogus 2>&1", bin), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "seqmt train: unrecognized option '--bogus'"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "%s vocab learn --bogus 2>&1", bin), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "seqmt vocab learn: unrecognized option '--bogus'"));
    free(out);
}

/* `vocab apply` splits text into the subwords the codes give. */
static void test_vocab_apply_segments(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && printf '#version: 0.2\nl o\nlo w</w>\ne r</w>\n' > "
                         "tiny.codes && printf 'lower low\n\nnewer 42\n' | %s vocab apply "
                         "--codes tiny.codes --placeholders",
                         dir, bin),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "lo@@ w@@ er low\n\nn@@ e@@ w@@ er <num>\n");
    free(out);
}

/* `vocab apply --vocab` splits the subwords outside a vocabulary back as
 * subword-nmt's --vocabulary does, so it gives small.filtered.golden.
 * --vocab-threshold keeps only the tokens counted often enough. With the
 * files `vocab learn --bpe-threshold` writes, it splits only into tokens of
 * the target vocabulary, where the codes alone do not. */
static void test_vocab_apply_filter(void)
{
    const char *src = getenv("SEQMT_SOURCE_DIR");
    char *out = NULL, *words = NULL, *expected = NULL;

    NEED_MODEL();
    if (!src) {
        fprintf(stderr, "SKIP: SEQMT_SOURCE_DIR unset\n");
        return;
    }
    /* The golden words on one line, and their subwords on another; "@@"
     * is left out, since the tokenizer splits it. */
    CU_ASSERT_EQUAL_FATAL(runf(&words,
                               "grep -v '^#' %s/tests/data/bpe/small.filtered.golden | "
                               "grep -v '^@@' | cut -f1 | paste -sd' '",
                               src),
                          0);
    CU_ASSERT_EQUAL_FATAL(runf(&expected,
                               "grep -v '^#' %s/tests/data/bpe/small.filtered.golden | "
                               "grep -v '^@@' | cut -f2 | paste -sd' '",
                               src),
                          0);
    CU_ASSERT_EQUAL(runf(&out,
                         "printf '%%s' '%s' | %s vocab apply --codes "
                         "%s/tests/data/bpe/small.codes --vocab %s/tests/data/bpe/small.vocab",
                         strtok(words, "\n"), bin, src, src),
                    0);
    CU_ASSERT_STRING_EQUAL(out, expected);
    free(out);
    free(words);
    free(expected);

    /* lo@@ counted 2 times: kept at threshold 2, split at 3. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && printf 'lo@@ 2\nw@@\t3\ner 9\n' > counted.vocab && "
                         "for t in 2 3; do echo lower | %s vocab apply --codes "
                         "%s/tests/data/bpe/small.codes --vocab counted.vocab "
                         "--vocab-threshold $t; done",
                         dir, bin, src),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "lo@@ w@@ er\nl@@ o@@ w@@ er\n");
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && printf 'lo@@ 2\nw@@\n' > uncounted.vocab && echo lower | %s "
                         "vocab apply --codes %s/tests/data/bpe/small.codes --vocab "
                         "uncounted.vocab --vocab-threshold 2 2>&1",
                         dir, bin, src),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "uncounted.vocab, line 2: no count after the token"));
    free(out);

    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s vocab learn --train-src train.en --train-tgt "
                               "train.de --merges 300 --bpe-threshold 20 --codes f.codes "
                               "--src-vocab f.en --tgt-vocab f.de 2>&1",
                               dir, bin),
                          0);
    free(out);
    /* The output tokens outside the vocabulary, less single characters
     * (seen too rarely to enter it): none with the vocabulary, some
     * without. */
    const char *outside = "tr ' ' '\\n' | grep -v '^$' | sort -u | comm -23 - f.de.sorted | "
                          "LC_ALL=C.UTF-8 grep -vxE '.(@@)?' | wc -l";
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && sort -u f.de > f.de.sorted && %s vocab apply --codes f.codes "
                         "--vocab f.de --lang de --input train.de | %s",
                         dir, bin, outside),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "0\n");
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s vocab apply --codes f.codes --lang de --input train.de | %s",
                         dir, bin, outside),
                    0);
    CU_ASSERT(out && strtol(out, NULL, 10) > 0);
    free(out);
}

/* `vocab apply` reads the text from standard input when --input is not
 * given. A vocabulary or codes file on the same pipe would leave it no
 * text, so apply rejects them instead of printing nothing. */
static void test_apply_rejects_pipe_read_twice(void)
{
    const char *src = getenv("SEQMT_SOURCE_DIR");
    char *out = NULL;

    NEED_MODEL();
    if (!src) {
        fprintf(stderr, "SKIP: SEQMT_SOURCE_DIR unset\n");
        return;
    }
    CU_ASSERT_EQUAL(runf(&out,
                         "printf 'lo@@\\n' | %s vocab apply --codes %s/tests/data/bpe/small.codes "
                         "--vocab /dev/stdin 2>&1",
                         bin, src),
                    2);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "--vocab /dev/stdin and the text to split both "
                                              "read standard input"));
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "--input FILE"));
    free(out);

    CU_ASSERT_EQUAL(runf(&out, "printf '#version: 0.2\\nl o\\n' | %s vocab apply --codes "
                               "/dev/stdin 2>&1",
                         bin),
                    2);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "--codes /dev/stdin and the text to split both "
                                              "read standard input"));
    free(out);

    /* One pipe for the vocabulary and a file for the text work together:
     * only lo@@ is kept, so low@@ and er split back. */
    CU_ASSERT_EQUAL_FATAL(runf(NULL, "printf 'lower\\n' > %s/lower.txt", dir), 0);
    CU_ASSERT_EQUAL(runf(&out,
                         "printf 'lo@@\\n' | %s vocab apply --codes %s/tests/data/bpe/small.codes "
                         "--vocab /dev/stdin --input %s/lower.txt 2>&1",
                         bin, src, dir),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "lo@@ w@@ e@@ r\n");
    free(out);

    /* A regular file redirected to standard input can be read twice. */
    CU_ASSERT_EQUAL(runf(&out,
                         "%s vocab apply --codes %s/tests/data/bpe/small.codes --vocab "
                         "/dev/stdin < %s/lower.txt 2>&1",
                         bin, src, dir),
                    0);
    CU_ASSERT(out && strlen(out) > 1);
    free(out);
}

/* The threshold log line counts the subwords of a side's vocabulary file,
 * as it counts those a side keeps by counting: the file's lines less the
 * special tokens. */
static void test_threshold_log_counts_file_subwords(void)
{
    char *out = NULL, expect[160];
    long src_lines = 0, tgt_lines = 0;

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(
        runf(&out,
             "cd %s && %s vocab learn --train-src train.en --train-tgt train.de --merges 200 "
             "--bpe-threshold 3 --codes f.codes --src-vocab f.en --tgt-vocab f.de >/dev/null "
             "2>&1 && wc -l < f.en && wc -l < f.de",
             dir, bin),
        0);
    CU_ASSERT_EQUAL(out ? sscanf(out, "%ld %ld", &src_lines, &tgt_lines) : 0, 2);
    free(out);
    CU_ASSERT_EQUAL_FATAL(
        runf(&out,
             "cd %s && %s train " TINY_TRAINING " --epochs 1 --threads 1 --bpe-codes f.codes "
             "--src-vocab f.en --tgt-vocab f.de --bpe-threshold 3 -o f.seqmt 2>&1",
             dir, bin),
        0);
    snprintf(expect, sizeof expect,
             "the source keeps the %ld subwords of its vocabulary file, the target keeps "
             "the %ld subwords of its vocabulary file",
             src_lines - VOCAB_N_SPECIAL, tgt_lines - VOCAB_N_SPECIAL);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, expect));
    if (out && !strstr(out, expect))
        fprintf(stderr, "expected '%s' in:\n%s", expect, out);
    free(out);
}

/* A resumed run whose checkpoint is missing says so, also when a
 * checkpoint of another epoch waits at OUTPUT.checkpoint.next, instead of
 * blaming the missing file's size or CRC-32. */
static void test_resume_names_missing_checkpoint(void)
{
    const char *common = TINY_TRAINING " --threads 1 --bpe-merges 100";
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s train %s --epochs 1 -o gone.seqmt 2>&1 && "
                               "cp gone.seqmt.checkpoint e1.ckpt && "
                               "%s train %s --epochs 2 -o gone.seqmt --resume 2>&1",
                               dir, bin, common, bin, common),
                          0);
    free(out);

    /* The state names epoch 2's checkpoint, which is gone, and epoch 1's
     * waits at .next. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && rm gone.seqmt.checkpoint && mv e1.ckpt gone.seqmt.checkpoint.next && "
                         "%s train %s --epochs 3 -o gone.seqmt --resume 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "checkpoint gone.seqmt.checkpoint not found"));
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "gone.seqmt.checkpoint.next is not the one"));
    free(out);
}

/* A vocabulary of another size or order is refused, naming both. */
static void test_translate_rejects_other_vocab(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s vocab export --model small.seqmt --src-vocab own.en "
                               "--tgt-vocab own.de 2>&1 && echo 'A man.' | %s translate --model "
                               "small.seqmt --src-vocab own.en --tgt-vocab own.de",
                               dir, bin, bin),
                          0);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && head -20 own.de > few.de && echo hi | %s translate "
                         "--model small.seqmt --tgt-vocab few.de 2>&1",
                         dir, bin),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "target vocabulary few.de does not match"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "against 20"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && sed '6{h;d};7G' own.en > swapped.en && echo hi | %s "
                         "translate --model small.seqmt --src-vocab swapped.en 2>&1",
                         dir, bin),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "entry 5 (line 6 of a vocabulary file) is"));
    free(out);
}

/* Outputs never destroy inputs or earlier outputs on failure. */
static void test_outputs_never_destroy_data(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && cp val.en same.txt && %s translate --model small.seqmt "
                         "--input same.txt --output same.txt 2>&1",
                         dir, bin),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "also an input"));
    free(out);
    CU_ASSERT_EQUAL(runf(NULL, "cd %s && cmp same.txt val.en", dir), 0);
    CU_ASSERT_EQUAL(runf(NULL,
                         "cd %s && echo precious > keep.txt && %s translate --model small.seqmt "
                         "--input missing.txt --output keep.txt 2>/dev/null",
                         dir, bin),
                    1);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && cat keep.txt && ls keep.txt.tmp 2>&1", dir), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "precious"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s train --train-src train.en --train-tgt train.de "
                         "--valid-src val.en --valid-tgt val.de -o train.en 2>&1",
                         dir, bin),
                    2);
    free(out);
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && %s vocab learn --train-src train.en --train-tgt train.de "
                         "--merges 10 --codes x.codes --src-vocab x.codes 2>&1",
                         dir, bin),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "named for two outputs"));
    free(out);
    CU_ASSERT_EQUAL(runf(NULL, "cd %s && test ! -e x.codes", dir), 0);
}

static void test_bleu_command_output(void)
{
    char *out = NULL;

    NEED_MODEL();
    CU_ASSERT_EQUAL(runf(&out, "cd %s && %s bleu val.de val.de", dir, bin), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "BLEU = 100.00"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "BP = 1.000"));
    free(out);
    CU_ASSERT_EQUAL(runf(&out, "cd %s && %s bleu short.de val.de 2>&1", dir, bin), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "10 lines"));
    free(out);
}

/* Waits up to 10 s for the daemon's health check to succeed. */
static int wait_healthy(int port)
{
    for (int i = 0; i < 100; i++) {
        if (runf(NULL, "curl -sf -m 2 http://127.0.0.1:%d/health > /dev/null", port) == 0)
            return 0;
        usleep(100000);
    }
    return -1;
}

static void test_serve_matches_translate(void)
{
    char *cli = NULL, *http = NULL, *health = NULL, *bad = NULL;
    int port = 20000 + (int)(getpid() % 20000), status;
    pid_t pid;

    NEED_MODEL();
    pid = fork();
    if (pid == 0) {
        char p[16];

        snprintf(p, sizeof(p), "%d", port);
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "serve", "--model", model, "--port", p, (char *)NULL);
        _exit(127);
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_EQUAL(wait_healthy(port), 0);
    runf(&health, "curl -s -m 5 http://127.0.0.1:%d/health", port);
    CU_ASSERT_PTR_NOT_NULL(strstr(health, "\"ok\""));
    runf(&cli, "printf 'Two dogs run.\\nA man is walking.\\n' | %s translate --model %s", bin,
         model);
    runf(&http,
         "curl -s -m 30 -H 'Content-Type: application/json' -d '{\"q\": [\"Two dogs run.\", "
         "\"A man is walking.\"], \"source\": \"en\", \"target\": \"de\"}' "
         "http://127.0.0.1:%d/translate",
         port);
    /* The CLI's two lines must appear in the JSON array in order. */
    char *nl = strchr(cli, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    *nl = '\0';
    char *first = strstr(http, cli);
    CU_ASSERT_PTR_NOT_NULL(first);
    nl[1 + strcspn(nl + 1, "\n")] = '\0';
    CU_ASSERT(first && strstr(first + strlen(cli), nl + 1) != NULL);

    runf(&bad, "curl -s -m 5 -o /dev/null -w '%%{http_code}' -d '{oops' "
               "http://127.0.0.1:%d/translate", port);
    CU_ASSERT_STRING_EQUAL(bad, "400");
    CU_ASSERT_EQUAL(runf(NULL, "curl -sf -m 5 http://127.0.0.1:%d/health >/dev/null", port), 0);

    kill(pid, SIGTERM);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(cli);
    free(http);
    free(health);
    free(bad);
}

/* The bundled model on the first 200 sentences of Multi30k
 * test_2016_flickr. The floor is well below its full-test score, so only a
 * broken model, tokenizer or decoder fails it. */
static void test_bundled_model_quality(void)
{
    const char *src = getenv("SEQMT_SOURCE_DIR");
    char *out = NULL;
    double bleu = 0;

    if (!src || runf(NULL, "test -f %s/models/en-de.seqmt", src) != 0) {
        fprintf(stderr, "SKIP: no bundled model in models/\n");
        return;
    }
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && zcat %s/data/multi30k/test_2016_flickr.en.gz | head -200 > "
                         "t.en && zcat %s/data/multi30k/test_2016_flickr.de.gz | head -200 > "
                         "t.de && %s translate --model %s/models/en-de.seqmt --input t.en "
                         "--output t.hyp && %s bleu t.hyp t.de",
                         dir, src, src, bin, src, bin),
                    0);
    CU_ASSERT_EQUAL(sscanf(out, "BLEU = %lf", &bleu), 1);
    fprintf(stderr, "bundled model, 200 test sentences: %s", out);
    CU_ASSERT(bleu >= 18.0);
    free(out);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("cli", suite_init, suite_clean);
    CU_add_test(s, "train writes model and checkpoint", test_train_writes_model_and_checkpoint);
    CU_add_test(s, "train rejects mismatched corpus", test_train_rejects_mismatched_corpus);
    CU_add_test(s, "train rejects bad flag value", test_train_rejects_bad_flag_value);
    CU_add_test(s, "train divergence fails", test_train_divergence_fails);
    CU_add_test(s, "train checks output first", test_train_checks_output_first);
    CU_add_test(s, "train rejects bad language", test_train_rejects_bad_language);
    CU_add_test(s, "translate keeps line count", test_translate_keeps_line_count);
    CU_add_test(s, "translate file equals stdin", test_translate_file_equals_stdin);
    CU_add_test(s, "translate missing model fails", test_translate_missing_model_fails);
    CU_add_test(s, "translate rejects other codes", test_translate_rejects_other_codes);
    CU_add_test(s, "vocab learn matches train", test_vocab_learn_matches_train);
    CU_add_test(s, "vocab apply segments", test_vocab_apply_segments);
    CU_add_test(s, "train with label smoothing", test_train_label_smoothing);
    CU_add_test(s, "vocab apply with a vocabulary", test_vocab_apply_filter);
    CU_add_test(s, "vocab apply rejects pipe read twice", test_apply_rejects_pipe_read_twice);
    CU_add_test(s, "threshold log counts file subwords", test_threshold_log_counts_file_subwords);
    CU_add_test(s, "resume names missing checkpoint", test_resume_names_missing_checkpoint);
    CU_add_test(s, "train with BPE-dropout", test_train_bpe_dropout);
    CU_add_test(s, "train with a BPE threshold", test_train_bpe_threshold);
    CU_add_test(s, "train resume matches straight", test_train_resume_matches_straight);
    CU_add_test(s, "train resume rejects changes", test_train_resume_rejects_changes);
    CU_add_test(s, "option errors name command", test_option_errors_name_command);
    CU_add_test(s, "translate rejects other vocab", test_translate_rejects_other_vocab);
    CU_add_test(s, "outputs never destroy data", test_outputs_never_destroy_data);
    CU_add_test(s, "bleu command output", test_bleu_command_output);
    CU_add_test(s, "serve matches translate", test_serve_matches_translate);
    CU_add_test(s, "bundled model quality", test_bundled_model_quality);
    return test_run_all();
}
