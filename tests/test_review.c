/* Regression tests for subword vocabularies and resumed training. They
 * cover the count lines vocab_read_subwords accepts and `vocab apply`
 * rejecting two inputs on one pipe. They also cover the threshold log line
 * for a given vocabulary file and the error of a resume without its
 * checkpoint.
 *
 * Files are written to a fresh folder under /tmp. The command tests run the
 * binary named by SEQMT_BIN, the apply test with the codes in tests/data/bpe
 * under SEQMT_SOURCE_DIR and the training tests on Multi30k from
 * SEQMT_TEST_DATA (ctest sets all three). A test prints a skip message and
 * passes when its variable is missing. */
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "vocab.h"

static const char *bin;
static char dir[64];

static int suite_init(void)
{
    strcpy(dir, "/tmp/seqmt-review-XXXXXX");
    bin = getenv("SEQMT_BIN");
    return mkdtemp(dir) ? 0 : 1;
}

static int suite_clean(void)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

/* Runs the command fmt describes with sh. Returns its exit status (-1 when
 * it did not exit) and sets *out to its standard output (malloc'd, NULL
 * when out of memory). */
static int runf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int runf(char **out, const char *fmt, ...)
{
    char cmd[4096];
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    va_list ap;
    FILE *p;
    int c, status;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    *out = NULL;
    if (!buf || !(p = popen(cmd, "r"))) {
        free(buf);
        return -1;
    }
    while ((c = fgetc(p)) != EOF) {
        if (len + 2 > cap) {
            char *bigger = realloc(buf, cap *= 2);

            if (!bigger)
                break;
            buf = bigger;
        }
        buf[len++] = (char)c;
    }
    buf[len] = '\0';
    status = pclose(p);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Writes text to the file name under the test folder and returns its path
 * in a static buffer. */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Spaces and tabs after a count are ignored, as after a token alone and as
 * subword-nmt's reader strips them. */
static void test_count_may_end_in_blanks(void)
{
    char err[512] = "", **tokens = NULL;
    size_t n = 0;
    const char *path = write_file("blanks.vocab", "lo@@ 2 \nw@@\t3\t\r\ner 9  \nst \n");

    CU_ASSERT_EQUAL(vocab_read_subwords(path, 0, &tokens, &n, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(n, 4);
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);

    /* With a threshold, "st" has no count. */
    path = write_file("blanks.vocab", "lo@@ 2 \nw@@\t3\t\r\ner 9  \n");
    CU_ASSERT_EQUAL(vocab_read_subwords(path, 3, &tokens, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(tokens[0], "w@@");
    CU_ASSERT_STRING_EQUAL(tokens[1], "er");
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);

    /* Anything else after the count is still an error. */
    path = write_file("extra.vocab", "lo@@ 2 x\n");
    CU_ASSERT_EQUAL(vocab_read_subwords(path, 0, &tokens, &n, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 1: the count '2 x' is not a whole number"));
    CU_ASSERT_PTR_NULL(tokens);
}

/* `vocab apply` reads the text from standard input when --input is not
 * given. A vocabulary or codes file on the same pipe would leave it no
 * text, so apply rejects them. It used to print nothing and succeed. */
static void test_apply_rejects_pipe_read_twice(void)
{
    const char *src = getenv("SEQMT_SOURCE_DIR");
    char *out = NULL;

    if (!bin || !src) {
        fprintf(stderr, "SKIP: SEQMT_BIN or SEQMT_SOURCE_DIR unset\n");
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
    write_file("lower.txt", "lower\n");
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

/* Writes 300 Multi30k training pairs (t.en, t.de) and the first 50 of
 * them as validation pairs (v.en, v.de) to the test folder, once. Returns
 * the exit status of the shell command. */
static int write_corpus(const char *data)
{
    char *out = NULL;
    int rc = runf(&out,
                  "cd %s && test -s v.de || { zcat %s/multi30k/train.en.gz | head -300 > t.en "
                  "&& zcat %s/multi30k/train.de.gz | head -300 > t.de && head -50 t.en > v.en "
                  "&& head -50 t.de > v.de; }",
                  dir, data, data);

    free(out);
    return rc;
}

/* The threshold log line counts the subwords of a side's vocabulary file,
 * as it counts those a side keeps by counting: the file's lines less the
 * special tokens. */
static void test_threshold_log_counts_file_subwords(void)
{
    const char *data = test_data_dir();
    char *out = NULL, expect[160];
    long src_lines = 0, tgt_lines = 0;

    if (!data)
        return;
    if (!bin) {
        fprintf(stderr, "SKIP: SEQMT_BIN unset\n");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(write_corpus(data), 0);
    CU_ASSERT_EQUAL_FATAL(
        runf(&out,
             "cd %s && %s vocab learn --train-src t.en --train-tgt t.de --merges 200 "
             "--bpe-threshold 3 --codes f.codes --src-vocab f.en --tgt-vocab f.de >/dev/null "
             "2>&1 && wc -l < f.en && wc -l < f.de",
             dir, bin),
        0);
    CU_ASSERT_EQUAL(out ? sscanf(out, "%ld %ld", &src_lines, &tgt_lines) : 0, 2);
    free(out);
    CU_ASSERT_EQUAL_FATAL(
        runf(&out,
             "cd %s && %s train --train-src t.en --train-tgt t.de --valid-src v.en "
             "--valid-tgt v.de --layers 1 --embed-size 8 --hidden-size 8 --epochs 1 "
             "--threads 1 --bpe-codes f.codes --src-vocab f.en --tgt-vocab f.de "
             "--bpe-threshold 3 -o f.seqmt 2>&1",
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
    const char *data = test_data_dir();
    const char *common = "--train-src t.en --train-tgt t.de --valid-src v.en --valid-tgt v.de "
                         "--layers 1 --embed-size 8 --hidden-size 8 --threads 1 --bpe-merges 100";
    char *out = NULL;

    if (!data)
        return;
    if (!bin) {
        fprintf(stderr, "SKIP: SEQMT_BIN unset\n");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(write_corpus(data), 0);
    CU_ASSERT_EQUAL_FATAL(runf(&out,
                               "cd %s && %s train %s --epochs 1 -o r.seqmt 2>&1 && "
                               "cp r.seqmt.checkpoint e1.ckpt && "
                               "%s train %s --epochs 2 -o r.seqmt --resume 2>&1",
                               dir, bin, common, bin, common),
                          0);
    free(out);

    /* The state names epoch 2's checkpoint, which is gone, and epoch 1's
     * waits at .next. */
    CU_ASSERT_EQUAL(runf(&out,
                         "cd %s && rm r.seqmt.checkpoint && mv e1.ckpt r.seqmt.checkpoint.next && "
                         "%s train %s --epochs 3 -o r.seqmt --resume 2>&1",
                         dir, bin, common),
                    1);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "checkpoint r.seqmt.checkpoint not found"));
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "r.seqmt.checkpoint.next is not the one"));
    free(out);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("review", suite_init, suite_clean);
    CU_add_test(s, "count may end in blanks", test_count_may_end_in_blanks);
    CU_add_test(s, "apply rejects pipe read twice", test_apply_rejects_pipe_read_twice);
    CU_add_test(s, "threshold log counts file subwords",
                test_threshold_log_counts_file_subwords);
    CU_add_test(s, "resume names missing checkpoint", test_resume_names_missing_checkpoint);
    return test_run_all();
}
