/* Regression tests for subword vocabularies: the count lines
 * vocab_read_subwords accepts. Files are written to a fresh folder under
 * /tmp. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vocab.h"

static char dir[64];

static int suite_init(void)
{
    strcpy(dir, "/tmp/seqmt-review-XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

static int suite_clean(void)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
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

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("review", suite_init, suite_clean);
    CU_add_test(s, "count may end in blanks", test_count_may_end_in_blanks);
    return test_run_all();
}
