/* Tests of vocab/vocab.c: counting, building with size limit, frequency
 * cut-off and tie order, loading from a token list, lookups, and lookups
 * from several threads at once. */
#include "testutil.h"
#include "vocab.h"

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const specials[] = {
    VOCAB_PAD_TOKEN, VOCAB_UNK_TOKEN, VOCAB_BOS_TOKEN, VOCAB_EOS_TOKEN,
};

/* Adds token to c count times. Returns 0, or -1 on the first failure. */
static int add_times(vocab_counter *c, const char *token, int count)
{
    for (int i = 0; i < count; i++) {
        if (vocab_counter_add(c, token) < 0)
            return -1;
    }
    return 0;
}

/* A counter with "the" x5, "cat" x3, "dog" x3, "bird" x1, "ant" x1. */
static vocab_counter *small_counter(void)
{
    vocab_counter *c = vocab_counter_new();

    if (!c || add_times(c, "the", 5) || add_times(c, "dog", 3) || add_times(c, "cat", 3) ||
        add_times(c, "bird", 1) || add_times(c, "ant", 1)) {
        vocab_counter_free(c);
        return NULL;
    }
    return c;
}

/* ---- Counter ---- */

static void test_counter_counts(void)
{
    vocab_counter *c = small_counter();

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(vocab_counter_size(c), 5);
    CU_ASSERT_EQUAL(vocab_counter_count(c, "the"), 5);
    CU_ASSERT_EQUAL(vocab_counter_count(c, "cat"), 3);
    CU_ASSERT_EQUAL(vocab_counter_count(c, "ant"), 1);
    CU_ASSERT_EQUAL(vocab_counter_count(c, "zebra"), 0);
    vocab_counter_free(c);
    vocab_counter_free(NULL);
}

static void test_counter_grows(void)
{
    vocab_counter *c = vocab_counter_new();
    char token[32];
    int ok = 1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < 20000 && ok; i++) {
        snprintf(token, sizeof token, "w%d", i);
        ok = add_times(c, token, 1 + i % 3) == 0;
    }
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL(vocab_counter_size(c), 20000);
    CU_ASSERT_EQUAL(vocab_counter_count(c, "w0"), 1);
    CU_ASSERT_EQUAL(vocab_counter_count(c, "w19999"), 1 + 19999 % 3);
    CU_ASSERT_EQUAL(vocab_counter_count(c, "w12345"), 1 + 12345 % 3);
    vocab_counter_free(c);
}

/* ---- vocab_build ---- */

static void test_build_specials_first(void)
{
    vocab_counter *c = small_counter();
    vocab *v = c ? vocab_build(c, 0, 1) : NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(vocab_token(v, VOCAB_PAD), "<pad>");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, VOCAB_UNK), "<unk>");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, VOCAB_BOS), "<s>");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, VOCAB_EOS), "</s>");
    CU_ASSERT_EQUAL(vocab_id(v, "<pad>"), VOCAB_PAD);
    CU_ASSERT_EQUAL(vocab_id(v, "</s>"), VOCAB_EOS);
    vocab_free(v);
    vocab_counter_free(c);
}

static void test_build_orders_by_count_then_bytes(void)
{
    vocab_counter *c = small_counter();
    vocab *v = c ? vocab_build(c, 0, 1) : NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(vocab_size(v), VOCAB_N_SPECIAL + 5);
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 4), "the");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 5), "cat"); /* ties with "dog", sorts first */
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 6), "dog");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 7), "ant");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 8), "bird");
    vocab_free(v);
    vocab_counter_free(c);
}

static void test_build_tie_order_is_bytewise(void)
{
    vocab_counter *c = vocab_counter_new();
    vocab *v;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* Bytes compare unsigned: "Z" (0x5A) < "a" (0x61) < "ä" (0xC3 0xA4). */
    CU_ASSERT_EQUAL(vocab_counter_add(c, "\xC3\xA4"), 0);
    CU_ASSERT_EQUAL(vocab_counter_add(c, "a"), 0);
    CU_ASSERT_EQUAL(vocab_counter_add(c, "Z"), 0);
    v = vocab_build(c, 0, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 4), "Z");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 5), "a");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 6), "\xC3\xA4");
    vocab_free(v);
    vocab_counter_free(c);
}

static void test_build_size_limit(void)
{
    vocab_counter *c = small_counter();
    vocab *v = c ? vocab_build(c, VOCAB_N_SPECIAL + 2, 1) : NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), VOCAB_N_SPECIAL + 2);
    CU_ASSERT_EQUAL(vocab_id(v, "the"), 4);
    CU_ASSERT_EQUAL(vocab_id(v, "cat"), 5);
    CU_ASSERT_EQUAL(vocab_id(v, "dog"), VOCAB_UNK);
    vocab_free(v);

    /* A limit below the special tokens keeps the special tokens only. */
    v = vocab_build(c, 2, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), VOCAB_N_SPECIAL);
    vocab_free(v);
    vocab_counter_free(c);
}

static void test_build_min_count(void)
{
    vocab_counter *c = small_counter();
    vocab *v = c ? vocab_build(c, 0, 3) : NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), VOCAB_N_SPECIAL + 3);
    CU_ASSERT_EQUAL(vocab_id(v, "dog"), 6);
    CU_ASSERT_EQUAL(vocab_id(v, "bird"), VOCAB_UNK);
    vocab_free(v);

    /* min_count 0 keeps everything counted, like 1. */
    v = vocab_build(c, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), VOCAB_N_SPECIAL + 5);
    vocab_free(v);
    vocab_counter_free(c);
}

static void test_build_drops_counted_specials(void)
{
    vocab_counter *c = small_counter();
    vocab *v;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(add_times(c, "<unk>", 10), 0);
    v = vocab_build(c, 0, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), VOCAB_N_SPECIAL + 5);
    CU_ASSERT_EQUAL(vocab_id(v, "<unk>"), VOCAB_UNK);
    CU_ASSERT_EQUAL(vocab_id(v, "the"), 4);
    vocab_free(v);
    vocab_counter_free(c);
}

static void test_build_large(void)
{
    vocab_counter *c = vocab_counter_new();
    char token[32];
    vocab *v;
    int ok = 1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < 5000 && ok; i++) {
        snprintf(token, sizeof token, "t%05d", i);
        ok = add_times(c, token, 1) == 0;
    }
    CU_ASSERT_FATAL(ok);
    v = vocab_build(c, 0, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), VOCAB_N_SPECIAL + 5000);
    /* Equal counts, so ids follow byte order. */
    CU_ASSERT_EQUAL(vocab_id(v, "t00000"), 4);
    CU_ASSERT_EQUAL(vocab_id(v, "t04999"), 4 + 4999);
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 4 + 1234), "t01234");
    vocab_free(v);
    vocab_counter_free(c);
}

/* ---- vocab_from_tokens ---- */

static void test_from_tokens_keeps_order(void)
{
    const char *tokens[] = {"<pad>", "<unk>", "<s>", "</s>", "Haus", "das", "."};
    vocab *v = vocab_from_tokens(tokens, 7);

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), 7);
    CU_ASSERT_EQUAL(vocab_id(v, "Haus"), 4);
    CU_ASSERT_EQUAL(vocab_id(v, "das"), 5);
    CU_ASSERT_EQUAL(vocab_id(v, "."), 6);
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 6), ".");
    vocab_free(v);
}

static void test_from_tokens_rejects_duplicates(void)
{
    const char *tokens[] = {"<pad>", "<unk>", "<s>", "</s>", "a", "b", "a"};
    const char *dup_special[] = {"<pad>", "<unk>", "<s>", "</s>", "<unk>"};

    CU_ASSERT_PTR_NULL(vocab_from_tokens(tokens, 7));
    CU_ASSERT_PTR_NULL(vocab_from_tokens(dup_special, 5));
}

static void test_from_tokens_rejects_bad_specials(void)
{
    const char *swapped[] = {"<unk>", "<pad>", "<s>", "</s>", "a"};
    const char *missing[] = {"a", "b", "c", "d", "e"};

    CU_ASSERT_PTR_NULL(vocab_from_tokens(swapped, 5));
    CU_ASSERT_PTR_NULL(vocab_from_tokens(missing, 5));
    CU_ASSERT_PTR_NULL(vocab_from_tokens(specials, 3));
}

static void test_from_tokens_rejects_empty_token(void)
{
    const char *empty[] = {"<pad>", "<unk>", "<s>", "</s>", ""};
    const char *null[] = {"<pad>", "<unk>", "<s>", "</s>", NULL};

    CU_ASSERT_PTR_NULL(vocab_from_tokens(empty, 5));
    CU_ASSERT_PTR_NULL(vocab_from_tokens(null, 5));
}

static void test_from_tokens_specials_only(void)
{
    vocab *v = vocab_from_tokens(specials, VOCAB_N_SPECIAL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), VOCAB_N_SPECIAL);
    CU_ASSERT_EQUAL(vocab_id(v, "<s>"), VOCAB_BOS);
    vocab_free(v);
    vocab_free(NULL);
}

/* ---- Lookups ---- */

static void test_lookup_unknown_is_unk(void)
{
    const char *tokens[] = {"<pad>", "<unk>", "<s>", "</s>", "Hund"};
    vocab *v = vocab_from_tokens(tokens, 5);

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_id(v, "Katze"), VOCAB_UNK);
    CU_ASSERT_EQUAL(vocab_id(v, "hund"), VOCAB_UNK); /* case matters */
    CU_ASSERT_EQUAL(vocab_id(v, ""), VOCAB_UNK);
    CU_ASSERT_EQUAL(vocab_id(v, NULL), VOCAB_UNK);
    CU_ASSERT_EQUAL(vocab_id(v, "Hund"), 4);
    vocab_free(v);
}

static void test_lookup_id_out_of_range(void)
{
    vocab *v = vocab_from_tokens(specials, VOCAB_N_SPECIAL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_PTR_NULL(vocab_token(v, -1));
    CU_ASSERT_PTR_NULL(vocab_token(v, VOCAB_N_SPECIAL));
    CU_ASSERT_PTR_NOT_NULL(vocab_token(v, VOCAB_N_SPECIAL - 1));
    vocab_free(v);
}

#define N_THREADS 4
#define N_LOOKUP_TOKENS 2000

typedef struct {
    const vocab *v;
    int mismatches;
} lookup_job;

static void *lookup_all(void *arg)
{
    lookup_job *job = arg;
    char token[32];

    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N_LOOKUP_TOKENS; i++) {
            snprintf(token, sizeof token, "w%d", i);
            job->mismatches += vocab_id(job->v, token) != VOCAB_N_SPECIAL + i;
        }
        job->mismatches += vocab_id(job->v, "absent") != VOCAB_UNK;
    }
    return NULL;
}

static void test_lookup_from_threads(void)
{
    static char names[N_LOOKUP_TOKENS][16];
    const char *tokens[VOCAB_N_SPECIAL + N_LOOKUP_TOKENS];
    lookup_job jobs[N_THREADS];
    pthread_t threads[N_THREADS];
    vocab *v;

    for (int i = 0; i < VOCAB_N_SPECIAL; i++)
        tokens[i] = specials[i];
    for (int i = 0; i < N_LOOKUP_TOKENS; i++) {
        snprintf(names[i], sizeof names[i], "w%d", i);
        tokens[VOCAB_N_SPECIAL + i] = names[i];
    }
    v = vocab_from_tokens(tokens, VOCAB_N_SPECIAL + N_LOOKUP_TOKENS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);

    for (int t = 0; t < N_THREADS; t++) {
        jobs[t].v = v;
        jobs[t].mismatches = 0;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[t], NULL, lookup_all, &jobs[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        CU_ASSERT_EQUAL(pthread_join(threads[t], NULL), 0);
        CU_ASSERT_EQUAL(jobs[t].mismatches, 0);
    }
    vocab_free(v);
}

/* ---- files ---- */

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text)
{
    static char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/seqmt-vocab-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_file_round_trip(void)
{
    const char *const tokens[] = {"<pad>", "<unk>", "<s>", "</s>", "Haus", "\xC3\xA9t\xC3\xA9", "@@"};
    vocab *v = vocab_from_tokens(tokens, 7), *back;
    char err[256], diff[256];
    const char *path = temp_file("");

    CU_ASSERT_EQUAL_FATAL(vocab_write(v, path, err, sizeof(err)), 0);
    back = vocab_read(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_EQUAL(vocab_compare(v, back, diff, sizeof(diff)), 0);
    vocab_free(back);
    vocab_free(v);
    remove(path);
}

static void test_file_without_specials_and_counts(void)
{
    const char *path = temp_file("\xEF\xBB\xBF" "der\t120\r\ndie\t90\nHaus\n");
    char err[256];
    vocab *v = vocab_read(path, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vocab_size(v), 7);
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 0), VOCAB_PAD_TOKEN);
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 4), "der");
    CU_ASSERT_STRING_EQUAL(vocab_token(v, 6), "Haus");
    vocab_free(v);
    remove(path);
}

static void expect_read_error(const char *text, const char *needle)
{
    const char *path = temp_file(text);
    char err[512] = "";
    vocab *v = vocab_read(path, err, sizeof(err));

    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    vocab_free(v);
    remove(path);
}

static void test_file_errors(void)
{
    expect_read_error("der\ndie\nder\n", "token 'der' twice");
    expect_read_error("der\n\ndie\n", "line 2: empty token");
    expect_read_error("der die\n", "line 1: token holds a space");
    expect_read_error("der\nab\xFF\xFE" "cd\n", "line 2: the token is not valid UTF-8");
    expect_read_error("der\n<unk>\n", "line 2: special token <unk> must be on line 2");
    expect_read_error("<pad>\n<unk>\nder\n", "must all come first");
    expect_read_error("<pad>\n<unk>\n<s>\n</s>\n", "no token besides");

    char err[256];
    CU_ASSERT_PTR_NULL(vocab_read("/nonexistent/seqmt.vocab", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/seqmt.vocab"));
}

static void test_compare_names_first_difference(void)
{
    const char *const a[] = {"<pad>", "<unk>", "<s>", "</s>", "x", "y", "z"};
    const char *const b[] = {"<pad>", "<unk>", "<s>", "</s>", "x", "z", "y"};
    vocab *va = vocab_from_tokens(a, 7), *vb = vocab_from_tokens(b, 7),
          *vc = vocab_from_tokens(a, 6);
    char msg[256];

    CU_ASSERT_EQUAL(vocab_compare(va, va, msg, sizeof(msg)), 0);
    CU_ASSERT_EQUAL(vocab_compare(va, vb, msg, sizeof(msg)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "entry 5 (line 6 of a vocabulary file) is 'y' against 'z'"));
    CU_ASSERT_EQUAL(vocab_compare(va, vc, msg, sizeof(msg)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "7 entries against 6"));
    vocab_free(va);
    vocab_free(vb);
    vocab_free(vc);
}

/* Spaces and tabs after a count are ignored, as after a token alone and as
 * subword-nmt's reader strips them. */
static void test_subwords_count_may_end_in_blanks(void)
{
    char err[512] = "", **tokens = NULL;
    size_t n = 0;
    const char *path = temp_file("lo@@ 2 \nw@@\t3\t\r\ner 9  \nst \n");

    CU_ASSERT_EQUAL(vocab_read_subwords(path, 0, &tokens, &n, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(n, 4);
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);

    /* With a threshold, "st" has no count. */
    remove(path);
    path = temp_file("lo@@ 2 \nw@@\t3\t\r\ner 9  \n");
    CU_ASSERT_EQUAL(vocab_read_subwords(path, 3, &tokens, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(tokens[0], "w@@");
    CU_ASSERT_STRING_EQUAL(tokens[1], "er");
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);

    /* Anything else after the count is still an error. */
    remove(path);
    path = temp_file("lo@@ 2 x\n");
    CU_ASSERT_EQUAL(vocab_read_subwords(path, 0, &tokens, &n, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 1: the count '2 x' is not a whole number"));
    CU_ASSERT_PTR_NULL(tokens);
    remove(path);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;

    s = CU_add_suite("vocab_counter", NULL, NULL);
    CU_add_test(s, "counts tokens", test_counter_counts);
    CU_add_test(s, "grows past initial size", test_counter_grows);

    s = CU_add_suite("vocab_build", NULL, NULL);
    CU_add_test(s, "special tokens first", test_build_specials_first);
    CU_add_test(s, "orders by count then bytes", test_build_orders_by_count_then_bytes);
    CU_add_test(s, "tie order is bytewise", test_build_tie_order_is_bytewise);
    CU_add_test(s, "size limit", test_build_size_limit);
    CU_add_test(s, "min count", test_build_min_count);
    CU_add_test(s, "drops counted special tokens", test_build_drops_counted_specials);
    CU_add_test(s, "5000 tokens", test_build_large);

    s = CU_add_suite("vocab_from_tokens", NULL, NULL);
    CU_add_test(s, "keeps order", test_from_tokens_keeps_order);
    CU_add_test(s, "rejects duplicates", test_from_tokens_rejects_duplicates);
    CU_add_test(s, "rejects wrong special tokens", test_from_tokens_rejects_bad_specials);
    CU_add_test(s, "rejects empty token", test_from_tokens_rejects_empty_token);
    CU_add_test(s, "special tokens only", test_from_tokens_specials_only);

    s = CU_add_suite("vocab lookups", NULL, NULL);
    CU_add_test(s, "unknown is VOCAB_UNK", test_lookup_unknown_is_unk);
    CU_add_test(s, "id out of range", test_lookup_id_out_of_range);
    CU_add_test(s, "lookups from threads", test_lookup_from_threads);

    s = CU_add_suite("vocab files", NULL, NULL);
    CU_add_test(s, "round trip", test_file_round_trip);
    CU_add_test(s, "without special tokens, with counts", test_file_without_specials_and_counts);
    CU_add_test(s, "errors name path and line", test_file_errors);
    CU_add_test(s, "compare names the first difference", test_compare_names_first_difference);
    CU_add_test(s, "subword counts may end in blanks", test_subwords_count_may_end_in_blanks);

    return test_run_all();
}
