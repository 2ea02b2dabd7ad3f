/* Tests of vocab/bpe.c. Segmentation with the hand-written codes in
 * tests/data/bpe is compared with a golden file derived by hand. Other
 * tests cover the codes file format and its errors, learning on a corpus
 * checked by hand, joining, the segmentation cache, segmenting from
 * several threads, and the segment-join round trip on Multi30k's
 * train.de.gz.
 *
 * The golden test needs SEQMT_SOURCE_DIR and the Multi30k tests need
 * SEQMT_TEST_DATA (ctest sets both). Each prints a skip message and passes
 * when its variable is missing. */
#include "bpe.h"
#include "testutil.h"

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>
#include <zlib.h>

#define ERR_SIZE 256

/* Records a check under the caller's line with a readable message, which
 * CUnit copies. */
static void check(int ok, int line, const char *fmt, const char *a, const char *b,
                  const char *c)
{
    char msg[4096];

    snprintf(msg, sizeof msg, fmt, a, b, c);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}

/* Returns the tokens of list joined by single spaces (malloc'd). */
static char *join_spaces(const tok_list *list)
{
    size_t len = 1;
    char *s;

    for (size_t i = 0; i < list->count; i++)
        len += strlen(list->items[i]) + 1;
    s = malloc(len);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < list->count; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, list->items[i]);
    }
    return s;
}

/* Returns the segmentation of word as space-separated subwords
 * (malloc'd), or NULL on failure. */
static char *segment_to_string(const bpe *codes, const char *word)
{
    tok_list out = {0};
    char *s = NULL;

    if (bpe_segment_word(codes, word, &out) == 0)
        s = join_spaces(&out);
    tok_list_clear(&out);
    return s;
}

static bpe *codes_from_string(const char *text, char *err)
{
    return bpe_from_text(text, strlen(text), "test.codes", err, ERR_SIZE);
}

/* Returns SEQMT_SOURCE_DIR/relative in buf, or NULL with a skip message
 * when the variable is unset. */
static const char *source_path(const char *relative, char *buf, size_t size)
{
    const char *dir = getenv("SEQMT_SOURCE_DIR");

    if (!dir) {
        fprintf(stderr, "SKIP: SEQMT_SOURCE_DIR unset; set it to the source folder "
                        "(ctest sets it) to run this test\n");
        return NULL;
    }
    snprintf(buf, size, "%s/%s", dir, relative);
    return buf;
}

static bool is_valid_utf8(const char *s)
{
    size_t len = strlen(s);

    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(len - i), &cp);

        if (k <= 0)
            return false;
        i += (size_t)k;
    }
    return true;
}

/* Returns whether every subword of pieces (of one or more words), without
 * its marker, is non-empty valid UTF-8. */
static bool pieces_are_whole_characters(const tok_list *pieces)
{
    size_t marker_len = strlen(BPE_MARKER);
    char buf[1024];

    for (size_t i = 0; i < pieces->count; i++) {
        size_t len = strlen(pieces->items[i]);

        if (len >= marker_len && strcmp(pieces->items[i] + len - marker_len, BPE_MARKER) == 0)
            len -= marker_len;
        if (len == 0 || len >= sizeof buf)
            return false;
        memcpy(buf, pieces->items[i], len);
        buf[len] = '\0';
        if (!is_valid_utf8(buf))
            return false;
    }
    return true;
}

/* Creates an empty temporary file and stores its path in buf (at least
 * 32 bytes). Returns 0 or -1. */
static int temp_path(char *buf)
{
    int fd;

    strcpy(buf, "/tmp/seqmt-bpe-XXXXXX");
    fd = mkstemp(buf);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* ---- Golden file ---- */

/* Derivations of two words of small.golden with small.codes, whose ranks
 * are 0 "e r</w>", 1 "l o", 2 "lo w", 3 "t h", 4 "th e</w>", 5 "e s",
 * 6 "s t</w>", 7 "es t</w>", 8 "n e", 9 "ä u", 10 "h äu", 11 "a a",
 * 12 "@ @</w>", 13 "日 本":
 *
 * "best" starts as b e s t</w>. Its pairs with ranks are "e s" (5) and
 * "s t</w>" (6), so "e s" applies first: b es t</w>. Now "es t</w>" (7)
 * applies: b est</w>. "b est</w>" has no rank, so the result is "b@@ est".
 * Applying by position or by pair frequency instead of rank would give
 * b e st</w> and "b@@ e@@ st".
 *
 * "aaaa" starts as a a a a</w>. "a a" (11) occurs at positions 0 and 1,
 * which overlap. Occurrences are merged left to right, so position 0
 * merges and position 1 is skipped: aa a a</w>. "aa a" and "a a</w>" have
 * no rank, so the result is "aa@@ a@@ a", not "aa@@ aa". */
/* Compares the segmentation of every word of the golden file name (under
 * tests/data/bpe) with codes against the subwords written there, and
 * returns the number of words compared. */
static int compare_with_golden(const bpe *codes, const char *name)
{
    char relative[256], golden_path[4096], line[512];
    FILE *golden;
    int n_words = 0;

    snprintf(relative, sizeof relative, "tests/data/bpe/%s", name);
    if (!source_path(relative, golden_path, sizeof golden_path))
        return -1;
    golden = fopen(golden_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(golden);
    while (fgets(line, sizeof line, golden)) {
        char *tab = strchr(line, '\t'), *got;

        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        check(tab != NULL, __LINE__, "golden line without a tab: %s%s%s", line, "", "");
        if (!tab)
            continue;
        *tab = '\0';
        got = segment_to_string(codes, line);
        check(got && strcmp(got, tab + 1) == 0, __LINE__, "%s: expected \"%s\", got \"%s\"", line,
              tab + 1, got ? got : "(failed)");
        free(got);
        n_words++;
    }
    fclose(golden);
    return n_words;
}

/* Reads tests/data/bpe/small.codes, or returns NULL after a skip message. */
static bpe *read_small_codes(void)
{
    char codes_path[4096], err[ERR_SIZE] = "";
    bpe *codes;

    if (!source_path("tests/data/bpe/small.codes", codes_path, sizeof codes_path))
        return NULL;
    codes = bpe_read(codes_path, err, sizeof err);
    check(codes != NULL, __LINE__, "bpe_read(small.codes): %s%s%s", err, "", "");
    return codes;
}

static void test_golden_segmentation(void)
{
    bpe *codes = read_small_codes();

    if (!codes)
        return;
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 14);
    CU_ASSERT_EQUAL(compare_with_golden(codes, "small.golden"), 20);
    bpe_free(codes);
}

/* Derivations with the vocabulary filter, small.codes restricted to
 * small.vocab (lo@@ w@@ er es@@ t th@@ e aa@@ a):
 *
 * "lowest" merges to low@@ est, as in small.golden. "low@@" is not in
 * the vocabulary; rank 2 "lo w" made it, so it splits into "lo@@" and
 * "w@@", both in the vocabulary. The last subword "est" (est</w>) is not
 * either; rank 7 "es t</w>" made it, giving "es@@" and "t", both allowed.
 *
 * "häuser" merges to häu@@ s@@ er. "häu@@" came from rank 10 "h äu".
 * "h@@" is not allowed, but no merge makes "h", so it stays. "äu@@" came
 * from rank 9 "ä u", and its parts stay as characters. "s@@" stays for the
 * same reason, and "er" is allowed.
 *
 * "@@" merges to one symbol @@</w> by rank 12. "@@" is not allowed, so it
 * splits into "@" and "@</w>"; the last subword's final '@' is already a
 * subword of its own, so the result is the same as without the filter. */
static void test_filtered_golden_segmentation(void)
{
    char vocab_path[4096], line[256];
    const char *tokens[32];
    size_t n = 0;
    bpe *codes = read_small_codes();
    FILE *f;

    if (!codes)
        return;
    CU_ASSERT_FALSE(bpe_has_vocabulary(codes));
    if (!source_path("tests/data/bpe/small.vocab", vocab_path, sizeof vocab_path)) {
        bpe_free(codes);
        return;
    }
    f = fopen(vocab_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    while (n < 32 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        tokens[n++] = strdup(line);
    }
    fclose(f);
    CU_ASSERT_EQUAL(n, 9);

    /* A cached word is segmented again once the vocabulary is set. */
    const char *lower = "lower";
    CU_ASSERT_EQUAL(bpe_cache_words(codes, &lower, 1), 0);
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, tokens, n), 0);
    CU_ASSERT_TRUE(bpe_has_vocabulary(codes));
    CU_ASSERT_EQUAL(compare_with_golden(codes, "small.filtered.golden"), 11);

    /* Removing the filter restores the plain segmentation. */
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, NULL, 0), 0);
    CU_ASSERT_FALSE(bpe_has_vocabulary(codes));
    CU_ASSERT_EQUAL(compare_with_golden(codes, "small.golden"), 20);
    for (size_t i = 0; i < n; i++)
        free((char *)tokens[i]);
    bpe_free(codes);
}

/* ---- Codes files ---- */

static void test_read_keeps_file_order(void)
{
    char path[4096], err[ERR_SIZE] = "";
    const char *first, *second;
    bpe *codes;

    if (!source_path("tests/data/bpe/small.codes", path, sizeof path))
        return;
    codes = bpe_read(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_merge(codes, 0, &first, &second), 0);
    CU_ASSERT_STRING_EQUAL(first, "e");
    CU_ASSERT_STRING_EQUAL(second, "r</w>");
    CU_ASSERT_EQUAL(bpe_merge(codes, 9, &first, &second), 0);
    CU_ASSERT_STRING_EQUAL(first, "ä");
    CU_ASSERT_STRING_EQUAL(second, "u");
    CU_ASSERT_EQUAL(bpe_merge(codes, 13, &first, &second), 0);
    CU_ASSERT_STRING_EQUAL(first, "日");
    CU_ASSERT_STRING_EQUAL(second, "本");
    CU_ASSERT_EQUAL(bpe_merge(codes, 14, &first, &second), -1);
    bpe_free(codes);
}

static void test_write_then_read_identical(void)
{
    char path[4096], tmp[64], err[ERR_SIZE] = "";
    char *text_a, *text_b;
    size_t len_a, len_b;
    bpe *a, *b;

    if (!source_path("tests/data/bpe/small.codes", path, sizeof path))
        return;
    a = bpe_read(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(temp_path(tmp), 0);
    CU_ASSERT_EQUAL(bpe_write(a, tmp, err, sizeof err), 0);
    b = bpe_read(tmp, err, sizeof err);
    unlink(tmp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);

    text_a = bpe_to_text(a, &len_a);
    text_b = bpe_to_text(b, &len_b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text_a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text_b);
    CU_ASSERT_EQUAL(len_a, len_b);
    CU_ASSERT_STRING_EQUAL(text_a, text_b);
    CU_ASSERT_EQUAL(bpe_hash(a), bpe_hash(b));
    CU_ASSERT_EQUAL(bpe_n_merges(b), 14);
    CU_ASSERT_EQUAL(strncmp(text_a, "#version: 0.2\ne r</w>\nl o\n", 26), 0);
    free(text_a);
    free(text_b);
    bpe_free(a);
    bpe_free(b);
}

static void test_hash_is_fnv1a_of_text(void)
{
    char err[ERR_SIZE] = "";
    bpe *a = codes_from_string("#version: 0.2\ne r</w>\nl o\n", err);
    bpe *b = codes_from_string("#version: 0.2\nl o\ne r</w>\n", err);
    bpe *c = codes_from_string("e r</w>\nl o\n", err);
    const char *text = "#version: 0.2\ne r</w>\nl o\n";
    uint64_t expected = 0xcbf29ce484222325u;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (const char *p = text; *p; p++) {
        expected ^= (unsigned char)*p;
        expected *= 0x100000001b3u;
    }
    CU_ASSERT_EQUAL(bpe_hash(a), expected);
    CU_ASSERT_NOT_EQUAL(bpe_hash(a), bpe_hash(b)); /* same merges, other order */
    CU_ASSERT_NOT_EQUAL(bpe_hash(a), bpe_hash(c)); /* same merges, version 0.1 */
    bpe_free(a);
    bpe_free(b);
    bpe_free(c);
}

static void test_headerless_codes_are_version_0_1(void)
{
    char err[ERR_SIZE] = "";
    bpe *v2 = codes_from_string("#version: 0.2\ne r</w>\nl o\n", err);
    bpe *v1 = codes_from_string("e r</w>\nl o\n", err);
    bpe *v1_eow = codes_from_string("r </w>\ne r</w>\n", err);
    char *s;
    size_t len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(v2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v1_eow);

    /* In 0.2 "r</w>" is the last symbol of "lower", in 0.1 "r" and "</w>"
     * are two symbols and "r </w>" must merge first. */
    s = segment_to_string(v2, "lower");
    CU_ASSERT_STRING_EQUAL(s, "lo@@ w@@ er");
    free(s);
    s = segment_to_string(v1, "lower");
    CU_ASSERT_STRING_EQUAL(s, "lo@@ w@@ e@@ r");
    free(s);
    s = segment_to_string(v1_eow, "lower");
    CU_ASSERT_STRING_EQUAL(s, "l@@ o@@ w@@ er");
    free(s);

    /* Written back without a version line. */
    s = bpe_to_text(v1, &len);
    CU_ASSERT_STRING_EQUAL(s, "e r</w>\nl o\n");
    CU_ASSERT_EQUAL(len, strlen("e r</w>\nl o\n"));
    free(s);
    bpe_free(v1);
    bpe_free(v2);
    bpe_free(v1_eow);
}

static void test_crlf_and_trailing_blank_lines(void)
{
    char err[ERR_SIZE] = "";
    bpe *codes = codes_from_string("#version: 0.2\r\ne r</w>\r\n l o \r\n\r\n\n", err);
    const char *first, *second;
    char *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 2);
    CU_ASSERT_EQUAL(bpe_merge(codes, 0, &first, &second), 0);
    CU_ASSERT_STRING_EQUAL(second, "r</w>");
    CU_ASSERT_EQUAL(bpe_merge(codes, 1, &first, &second), 0);
    CU_ASSERT_STRING_EQUAL(first, "l");
    CU_ASSERT_STRING_EQUAL(second, "o");
    s = bpe_to_text(codes, NULL);
    CU_ASSERT_STRING_EQUAL(s, "#version: 0.2\ne r</w>\nl o\n");
    free(s);
    bpe_free(codes);
}

static void test_empty_codes_split_characters(void)
{
    char err[ERR_SIZE] = "";
    bpe *codes = codes_from_string("#version: 0.2\n", err);
    bpe *none = codes_from_string("", err);
    char *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(none);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 0);
    s = segment_to_string(codes, "Bär");
    CU_ASSERT_STRING_EQUAL(s, "B@@ ä@@ r");
    free(s);
    bpe_free(codes);
    bpe_free(none);
}

static void test_repeated_merge_keeps_first_rank(void)
{
    char err[ERR_SIZE] = "";
    /* "b c" ranks below "a b" by its first line, so "abc" becomes a bc. */
    bpe *codes = codes_from_string("#version: 0.2\nb c</w>\na b\nb c</w>\n", err);
    char *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 3);
    s = segment_to_string(codes, "abc");
    CU_ASSERT_STRING_EQUAL(s, "a@@ bc");
    free(s);
    bpe_free(codes);
}

typedef struct {
    const char *text;
    const char *message; /* expected part of the error message */
} bad_codes;

static void test_rejects_malformed_lines(void)
{
    static const bad_codes cases[] = {
        {"#version: 0.2\ne r\nlo\n", "test.codes:3: invalid merge \"lo\""},
        {"a b c\n", "test.codes:1: invalid merge \"a b c\""},
        {"#version: 0.2\na  b\n", "test.codes:2: invalid merge"},
        {"#version: 0.2\na b\n\nc d\n", "test.codes:3: empty line"},
        {"#version: 0.2\na b\n \nc d\n", "test.codes:3: empty line"},
        {"#version: 0.2\na b\n\xff b\n", "test.codes:3: invalid merge: not valid UTF-8"},
        {"#version: 0.3\na b\n", "test.codes:1: unsupported codes version \"0.3\""},
        {"#version: 0.2 byte\na b\n", "test.codes:1: unsupported codes version"},
        {"a\tb\n", "test.codes:1: invalid merge"},
    };
    char err[ERR_SIZE];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bpe *codes;

        err[0] = '\0';
        codes = codes_from_string(cases[i].text, err);
        check(codes == NULL, __LINE__, "accepted %s%s%s", cases[i].text, "", "");
        check(strstr(err, cases[i].message) != NULL, __LINE__,
              "message \"%s\" lacks \"%s\"%s", err, cases[i].message, "");
        bpe_free(codes);
    }

    /* A NUL byte inside a line. */
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(bpe_from_text("a b\nc\0 d\n", 9, "nul.codes", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nul.codes:2: invalid merge: NUL byte"));
}

static void test_read_missing_file(void)
{
    char err[ERR_SIZE] = "";

    CU_ASSERT_PTR_NULL(bpe_read("/nonexistent/seqmt.codes", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "failed to open /nonexistent/seqmt.codes"));
    CU_ASSERT_PTR_NULL(bpe_read("/nonexistent/seqmt.codes", NULL, 0)); /* no buffer */
    bpe_free(NULL);
}

/* ---- Learning ---- */

/* A learner fed the classic example: "low" 5, "lower" 2, "newest" 6 and
 * "widest" 3 times. */
static bpe_learner *classic_learner(void)
{
    static const char *const words[] = {"low", "lower", "newest", "widest"};
    static const uint64_t counts[] = {5, 2, 6, 3};
    bpe_learner *learner = bpe_learner_new();
    char err[ERR_SIZE];

    for (int i = 0; learner && i < 4; i++) {
        if (bpe_learner_add_count(learner, words[i], counts[i], err, sizeof err) < 0) {
            bpe_learner_free(learner);
            return NULL;
        }
    }
    return learner;
}

/* The merges of the classic example, derived by hand. Initial pair counts:
 * "e s" 9, "s t</w>" 9, "w e" 8, "l o" 7, "n e" 6, "e w" 6, "o w</w>" 5,
 * and 3 or 2 for the rest. Ties go to the greater pair, so "s t</w>" beats
 * "e s" (s > e). Then "e st</w>" 9, "l o" 7, and a three-way tie at 6 that
 * "w est</w>" wins over "n e" and "e w" (the last now 0). "n e" beats
 * "e west</w>", then "ne west</w>" 6, "lo w</w>" 5, the "widest" merges at
 * 3 ("w i" beats "i d" and "d est</w>", then "wi d" and "wid est</w>"),
 * and the "lower" merges at 2 ("w e" beats "lo w" and "e r</w>"). */
static const char *const classic_merges =
    "#version: 0.2\n"
    "s t</w>\n"
    "e st</w>\n"
    "l o\n"
    "w est</w>\n"
    "n e\n"
    "ne west</w>\n"
    "lo w</w>\n"
    "w i\n"
    "wi d\n"
    "wid est</w>\n"
    "w e\n"
    "we r</w>\n"
    "lo wer</w>\n";

static void test_learn_classic_example(void)
{
    bpe_learner *learner = classic_learner();
    char err[ERR_SIZE] = "";
    bpe *codes;
    char *text, *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(learner);
    CU_ASSERT_EQUAL(bpe_learner_size(learner), 4);
    codes = bpe_learner_learn(learner, 100, 2, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 13); /* then no pair is left */
    text = bpe_to_text(codes, NULL);
    CU_ASSERT_STRING_EQUAL(text, classic_merges);
    free(text);

    s = segment_to_string(codes, "lowest");
    CU_ASSERT_STRING_EQUAL(s, "lo@@ west");
    free(s);
    s = segment_to_string(codes, "newer");
    CU_ASSERT_STRING_EQUAL(s, "ne@@ wer");
    free(s);
    bpe_free(codes);
    bpe_learner_free(learner);
}

static void test_learn_stops_at_limits(void)
{
    bpe_learner *learner = classic_learner();
    char err[ERR_SIZE] = "";
    bpe *codes;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(learner);

    /* The 11th merge occurs twice: min_frequency 3 stops before it. */
    codes = bpe_learner_learn(learner, 100, 3, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 10);
    bpe_free(codes);

    /* The 7th merge occurs 5 times. */
    codes = bpe_learner_learn(learner, 100, 6, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 6);
    bpe_free(codes);

    /* The learner is unchanged by learning: a prefix of the full list. */
    codes = bpe_learner_learn(learner, 4, 2, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    text = bpe_to_text(codes, NULL);
    CU_ASSERT_STRING_EQUAL(text, "#version: 0.2\ns t</w>\ne st</w>\nl o\nw est</w>\n");
    free(text);
    bpe_free(codes);

    codes = bpe_learner_learn(learner, 0, 2, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 0);
    bpe_free(codes);
    bpe_learner_free(learner);
}

static void test_learned_codes_file_round_trip(void)
{
    bpe_learner *learner = classic_learner();
    char tmp[64], err[ERR_SIZE] = "";
    bpe *learned, *read;
    char *text;
    FILE *f;
    char file[1024];
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(learner);
    learned = bpe_learner_learn(learner, 100, 2, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(learned);
    CU_ASSERT_EQUAL_FATAL(temp_path(tmp), 0);
    CU_ASSERT_EQUAL(bpe_write(learned, tmp, err, sizeof err), 0);

    /* The file is exactly subword-nmt's format. */
    f = fopen(tmp, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    n = fread(file, 1, sizeof file - 1, f);
    file[n] = '\0';
    fclose(f);
    CU_ASSERT_STRING_EQUAL(file, classic_merges);

    read = bpe_read(tmp, err, sizeof err);
    unlink(tmp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(read);
    text = bpe_to_text(read, NULL);
    CU_ASSERT_STRING_EQUAL(text, classic_merges);
    CU_ASSERT_EQUAL(bpe_hash(read), bpe_hash(learned));
    free(text);
    bpe_free(read);
    bpe_free(learned);
    bpe_learner_free(learner);
}

static void test_learn_unicode_symbols(void)
{
    static const char *const words[] = {"über", "Über", "Mädchen", "Männer", "東京",
                                        "京都", "😀👍", "👍😀", "naïve"};
    bpe_learner *learner = bpe_learner_new();
    char err[ERR_SIZE] = "";
    const char *first, *second;
    bpe *codes;
    tok_list pieces = {0}, joined = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(learner);
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(bpe_learner_add_count(learner, words[i], 3, err, sizeof err), 0);
    codes = bpe_learner_learn(learner, 1000, 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT(bpe_n_merges(codes) > 10);
    for (size_t r = 0; bpe_merge(codes, r, &first, &second) == 0; r++) {
        CU_ASSERT(is_valid_utf8(first));
        CU_ASSERT(is_valid_utf8(second));
    }

    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(bpe_segment_word(codes, words[i], &pieces), 0);
    CU_ASSERT(pieces_are_whole_characters(&pieces));
    CU_ASSERT_EQUAL(bpe_join((const char *const *)pieces.items, pieces.count, &joined), 0);
    CU_ASSERT_EQUAL_FATAL(joined.count, 9);
    for (int i = 0; i < 9; i++)
        CU_ASSERT_STRING_EQUAL(joined.items[i], words[i]);
    tok_list_clear(&pieces);
    tok_list_clear(&joined);
    bpe_free(codes);
    bpe_learner_free(learner);
}

static void test_learner_rejects_invalid_words(void)
{
    bpe_learner *learner = bpe_learner_new();
    char err[ERR_SIZE];

    CU_ASSERT_PTR_NOT_NULL_FATAL(learner);
    err[0] = '\0';
    CU_ASSERT_EQUAL(bpe_learner_add(learner, "a b", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"a b\": contains a space"));
    err[0] = '\0';
    CU_ASSERT_EQUAL(bpe_learner_add(learner, "", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty"));
    err[0] = '\0';
    CU_ASSERT_EQUAL(bpe_learner_add(learner, "a\xff", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not valid UTF-8"));
    CU_ASSERT_EQUAL(bpe_learner_add(learner, "line\n", err, sizeof err), -1);
    CU_ASSERT_EQUAL(bpe_learner_add_count(learner, "big", UINT64_MAX / 2, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too large"));
    CU_ASSERT_EQUAL(bpe_learner_size(learner), 0);
    CU_ASSERT_EQUAL(bpe_learner_add(learner, "ok", err, sizeof err), 0);
    CU_ASSERT_EQUAL(bpe_learner_size(learner), 1);
    bpe_learner_free(learner);
    bpe_learner_free(NULL);
}

static void test_learn_without_words(void)
{
    bpe_learner *learner = bpe_learner_new();
    char err[ERR_SIZE] = "";
    bpe *codes;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(learner);
    /* Words of one character have no pairs. */
    CU_ASSERT_EQUAL(bpe_learner_add(learner, "a", err, sizeof err), 0);
    codes = bpe_learner_learn(learner, 10, 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 0);
    text = bpe_to_text(codes, NULL);
    CU_ASSERT_STRING_EQUAL(text, "#version: 0.2\n");
    free(text);
    bpe_free(codes);
    bpe_learner_free(learner);
}

/* ---- Segmentation and joining ---- */

static void test_segment_token_list(void)
{
    char err[ERR_SIZE] = "";
    bpe *codes = codes_from_string(classic_merges, err);
    tok_list in = {0}, out = {0};
    char *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(tok_list_push(&in, "the"), 0);
    CU_ASSERT_EQUAL(tok_list_push(&in, "lowest"), 0);
    CU_ASSERT_EQUAL(tok_list_push(&in, "a"), 0);
    CU_ASSERT_EQUAL(tok_list_push(&in, "widest"), 0);
    CU_ASSERT_EQUAL(tok_list_push(&out, "kept"), 0);
    CU_ASSERT_EQUAL(bpe_segment(codes, &in, &out), 0);
    s = join_spaces(&out);
    CU_ASSERT_STRING_EQUAL(s, "kept t@@ h@@ e lo@@ west a widest");
    free(s);
    CU_ASSERT_EQUAL(bpe_segment_word(codes, "", &out), 0); /* appends nothing */
    CU_ASSERT_EQUAL(out.count, 8);
    tok_list_clear(&in);
    tok_list_clear(&out);
    bpe_free(codes);
}

static void test_invalid_bytes_are_symbols(void)
{
    char err[ERR_SIZE] = "";
    bpe *codes = codes_from_string("#version: 0.2\na b\n", err);
    tok_list pieces = {0}, joined = {0};
    const char *word = "ab\xff\xfe" "ab";

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    /* The final "b</w>" does not match "a b". */
    CU_ASSERT_EQUAL(bpe_segment_word(codes, word, &pieces), 0);
    CU_ASSERT_EQUAL_FATAL(pieces.count, 5);
    CU_ASSERT_STRING_EQUAL(pieces.items[0], "ab@@");
    CU_ASSERT_STRING_EQUAL(pieces.items[1], "\xff@@");
    CU_ASSERT_STRING_EQUAL(pieces.items[2], "\xfe@@");
    CU_ASSERT_STRING_EQUAL(pieces.items[3], "a@@");
    CU_ASSERT_STRING_EQUAL(pieces.items[4], "b");
    CU_ASSERT_EQUAL(bpe_join((const char *const *)pieces.items, pieces.count, &joined), 0);
    CU_ASSERT_EQUAL_FATAL(joined.count, 1);
    CU_ASSERT_STRING_EQUAL(joined.items[0], word);
    tok_list_clear(&pieces);
    tok_list_clear(&joined);
    bpe_free(codes);
}

static void test_join_words(void)
{
    const char *tokens[] = {"low@@", "er", "the", "ne@@", "w@@", "est", "."};
    tok_list out = {0};
    char *s;

    CU_ASSERT_EQUAL(bpe_join(tokens, 7, &out), 0);
    s = join_spaces(&out);
    CU_ASSERT_STRING_EQUAL(s, "lower the newest .");
    free(s);
    tok_list_clear(&out);
    CU_ASSERT_EQUAL(bpe_join(tokens, 0, &out), 0);
    CU_ASSERT_EQUAL(out.count, 0);
}

static void test_join_drops_trailing_marker(void)
{
    const char *cut[] = {"the", "low@@"};
    const char *bare[] = {"a", "@@"};
    const char *both[] = {"b", "low@@", "@@"};
    const char *only[] = {"@@"};
    const char *with_empty[] = {"lo@@", "", NULL, "w"};
    tok_list out = {0};

    CU_ASSERT_EQUAL(bpe_join(cut, 2, &out), 0);
    CU_ASSERT_EQUAL_FATAL(out.count, 2);
    CU_ASSERT_STRING_EQUAL(out.items[1], "low");
    tok_list_clear(&out);

    CU_ASSERT_EQUAL(bpe_join(bare, 2, &out), 0);
    CU_ASSERT_EQUAL_FATAL(out.count, 1);
    CU_ASSERT_STRING_EQUAL(out.items[0], "a");
    tok_list_clear(&out);

    CU_ASSERT_EQUAL(bpe_join(both, 3, &out), 0);
    CU_ASSERT_EQUAL_FATAL(out.count, 2);
    CU_ASSERT_STRING_EQUAL(out.items[1], "low");
    tok_list_clear(&out);

    CU_ASSERT_EQUAL(bpe_join(only, 1, &out), 0);
    CU_ASSERT_EQUAL(out.count, 0);

    CU_ASSERT_EQUAL(bpe_join(with_empty, 4, &out), 0);
    CU_ASSERT_EQUAL_FATAL(out.count, 1);
    CU_ASSERT_STRING_EQUAL(out.items[0], "low");
    tok_list_clear(&out);
}

/* Words with a marker of their own come back from the round trip. */
static void test_marker_in_words_round_trip(void)
{
    static const char *const words[] = {"@@", "a@@", "@@b", "a@@b", "@", "@@@", "x@@@@"};
    char err[ERR_SIZE] = "";
    bpe *codes = codes_from_string("#version: 0.2\n@ @</w>\n@ @\na @@\n@@ @</w>\n", err);
    tok_list pieces = {0}, joined = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    for (int i = 0; i < 7; i++)
        CU_ASSERT_EQUAL(bpe_segment_word(codes, words[i], &pieces), 0);
    CU_ASSERT_EQUAL(bpe_join((const char *const *)pieces.items, pieces.count, &joined), 0);
    CU_ASSERT_EQUAL_FATAL(joined.count, 7);
    for (int i = 0; i < 7; i++)
        check(strcmp(joined.items[i], words[i]) == 0, __LINE__, "\"%s\" came back as \"%s\"%s",
              words[i], joined.items[i], "");
    tok_list_clear(&pieces);
    tok_list_clear(&joined);
    bpe_free(codes);
}

/* ---- Cache and threads ---- */

#define N_GENERATED 3000

/* Fills words with N_GENERATED deterministic words of 1 to 5 syllables,
 * some with umlauts, CJK and emoji, and returns the strings' storage. */
static char *generate_words(const char **words)
{
    static const char *const syllables[] = {"lo", "w", "er", "ne", "st", "wi", "de",
                                            "ä", "ch", "en", "日", "本", "😀", "s", "t"};
    char *storage = malloc(N_GENERATED * 64);
    uint32_t state = 12345;

    if (!storage)
        return NULL;
    for (int i = 0; i < N_GENERATED; i++) {
        char *w = storage + i * 64;
        int n;

        w[0] = '\0';
        state = state * 1103515245u + 12345u;
        n = 1 + (int)((state >> 16) % 5);
        for (int k = 0; k < n; k++) {
            state = state * 1103515245u + 12345u;
            strcat(w, syllables[(state >> 16) % 15]);
        }
        words[i] = w;
    }
    return storage;
}

/* Learns 200 merges from words, each counted once. */
static bpe *learn_generated(const char *const *words)
{
    bpe_learner *learner = bpe_learner_new();
    char err[ERR_SIZE];
    bpe *codes = NULL;

    if (!learner)
        return NULL;
    for (int i = 0; i < N_GENERATED; i++) {
        if (bpe_learner_add(learner, words[i], err, sizeof err) < 0)
            goto cleanup;
    }
    codes = bpe_learner_learn(learner, 200, 2, err, sizeof err);
cleanup:
    bpe_learner_free(learner);
    return codes;
}

/* Segments all words into out. Returns 0 or -1. */
static int segment_all(const bpe *codes, const char *const *words, tok_list *out)
{
    for (int i = 0; i < N_GENERATED; i++) {
        if (bpe_segment_word(codes, words[i], out) < 0)
            return -1;
    }
    return 0;
}

static bool lists_equal(const tok_list *a, const tok_list *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->items[i], b->items[i]) != 0)
            return false;
    }
    return true;
}

/* Segments word with BPE-dropout into a space-separated string
 * (malloc'd), or NULL on failure. */
static char *dropout_to_string(const bpe *codes, const char *word, double p, uint64_t *state)
{
    tok_list out = {0};
    char *s = NULL;

    if (bpe_segment_word_dropout(codes, word, p, state, &out) == 0)
        s = join_spaces(&out);
    tok_list_clear(&out);
    return s;
}

/* BPE-dropout only ever leaves merges out: every subword is one the codes
 * can build, the subwords join back into the word, the same state gives
 * the same segmentations, probability 0 is plain segmentation and
 * probability 1 leaves the characters. */
static void test_dropout_segmentation(void)
{
    static const char *const built[] = {"l", "o", "w", "e", "r", "lo", "low", "er", "lower"};
    char err[ERR_SIZE];
    bpe *codes = codes_from_string("#version: 0.2\nl o\nlo w\ne r</w>\nlow er</w>\n", err);
    uint64_t state = 42, again = 42;
    size_t whole = 0, chars = 0, other = 0;
    char *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    s = dropout_to_string(codes, "lower", 0, &state);
    CU_ASSERT_STRING_EQUAL(s, "lower");
    free(s);
    CU_ASSERT_EQUAL(state, 42); /* probability 0 draws nothing */
    s = dropout_to_string(codes, "lower", 1, &state);
    CU_ASSERT_STRING_EQUAL(s, "l@@ o@@ w@@ e@@ r");
    free(s);
    s = dropout_to_string(codes, "a", 1, &state);
    CU_ASSERT_STRING_EQUAL(s, "a");
    free(s);

    state = again = 7;
    for (int i = 0; i < 2000; i++) {
        tok_list pieces = {0}, joined = {0};
        char *first = dropout_to_string(codes, "lower", 0.3, &state);
        char *second = dropout_to_string(codes, "lower", 0.3, &again);

        CU_ASSERT_PTR_NOT_NULL_FATAL(first);
        CU_ASSERT_PTR_NOT_NULL_FATAL(second);
        check(strcmp(first, second) == 0, __LINE__, "equal states gave '%s' and '%s'%s", first,
              second, "");
        CU_ASSERT_EQUAL_FATAL(bpe_segment_word_dropout(codes, "lower", 0.3, &state, &pieces), 0);
        for (size_t k = 0; k < pieces.count; k++) {
            size_t len = strlen(pieces.items[k]);
            int known = 0;

            if (k + 1 < pieces.count && len > 2)
                len -= 2; /* the continuation marker */
            for (size_t b = 0; b < sizeof built / sizeof *built; b++)
                known |= strlen(built[b]) == len && strncmp(built[b], pieces.items[k], len) == 0;
            check(known, __LINE__, "subword '%s' of '%s' is no merge of the codes%s",
                  pieces.items[k], first, "");
        }
        CU_ASSERT_EQUAL(bpe_join((const char *const *)pieces.items, pieces.count, &joined), 0);
        CU_ASSERT_TRUE(joined.count == 1 && strcmp(joined.items[0], "lower") == 0);
        if (strcmp(first, "lower") == 0)
            whole++;
        else if (strcmp(first, "l@@ o@@ w@@ e@@ r") == 0)
            chars++;
        else
            other++;
        /* Keep the two streams in step after the extra call. */
        tok_list_clear(&pieces);
        CU_ASSERT_EQUAL(bpe_segment_word_dropout(codes, "lower", 0.3, &again, &pieces), 0);
        tok_list_clear(&pieces);
        tok_list_clear(&joined);
        free(first);
        free(second);
    }
    /* Probability 0.3 keeps the full merge most often and sometimes leaves
     * every merge out. */
    CU_ASSERT_TRUE(whole > other / 2 && whole > chars);
    CU_ASSERT_TRUE(chars > 0 && other > 0);
    bpe_free(codes);
}

/* "abc" (abc</w>) is made by rank 1 "ab c</w>" and by rank 3 "a bc</w>".
 * With only "bc" allowed, the lower rank splits it into "ab@@" and "c",
 * and rank 0 splits "ab@@", giving a@@ b@@ c. The higher rank would give
 * a@@ bc. */
static void test_filter_splits_by_lowest_rank(void)
{
    char err[ERR_SIZE] = "";
    bpe *codes = codes_from_string("#version: 0.2\na b\nab c</w>\nb c</w>\na bc</w>\n", err);
    const char *allowed[] = {"bc"};
    char *got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    got = segment_to_string(codes, "abc");
    CU_ASSERT_STRING_EQUAL(got, "abc");
    free(got);
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, allowed, 1), 0);
    got = segment_to_string(codes, "abc");
    CU_ASSERT_STRING_EQUAL(got, "a@@ b@@ c");
    free(got);
    bpe_free(codes);
}

/* With a filter, every subword, with BPE-dropout too, is in the
 * vocabulary or one code point, and joining gives the word back. A copy
 * has the same merges and hash but no filter. */
static void test_filter_keeps_vocabulary(void)
{
    char err[ERR_SIZE] = "";
    bpe *codes = codes_from_string("#version: 0.2\ne r</w>\nl o\nlo w\nlow er</w>\nn e\n"
                                   "ne w\nnew er</w>\ne s\nes t</w>\n",
                                   err);
    const char *allowed[] = {"low@@", "lo@@", "er", "new@@", "t", "e@@"};
    const char *words[] = {"lower", "newer", "newest", "lowest", "slower", "renew", "ee"};
    bpe *copy;
    uint64_t state = 42;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, allowed, 6), 0);
    copy = bpe_copy(codes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    CU_ASSERT_FALSE(bpe_has_vocabulary(copy));
    CU_ASSERT_EQUAL(bpe_hash(copy), bpe_hash(codes));
    CU_ASSERT_TRUE(bpe_same_merges(copy, codes));
    {
        bpe *other = codes_from_string("#version: 0.2\ne r</w>\n", err);

        CU_ASSERT_PTR_NOT_NULL_FATAL(other);
        CU_ASSERT_FALSE(bpe_same_merges(other, codes));
        bpe_free(other);
    }
    for (int round = 0; round < 50; round++) {
        for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
            tok_list pieces = {0}, joined = {0};
            double dropout = round == 0 ? 0.0 : 0.3;

            CU_ASSERT_EQUAL(bpe_segment_word_dropout(codes, words[w], dropout, &state, &pieces),
                            0);
            for (size_t i = 0; i < pieces.count; i++) {
                const char *p = pieces.items[i];
                size_t len = strlen(p), core = len;
                bool in_vocab = false;

                for (size_t k = 0; k < 6; k++)
                    in_vocab |= strcmp(p, allowed[k]) == 0;
                if (i + 1 < pieces.count)
                    core -= strlen(BPE_MARKER);
                check(in_vocab || utf8proc_iterate((const utf8proc_uint8_t *)p,
                                                   (utf8proc_ssize_t)core,
                                                   &(utf8proc_int32_t){0}) == (utf8proc_ssize_t)core,
                      __LINE__, "%s: subword %s is neither allowed nor one character%s",
                      words[w], p, "");
            }
            CU_ASSERT_EQUAL(bpe_join((const char *const *)pieces.items, pieces.count, &joined), 0);
            CU_ASSERT_EQUAL(joined.count, 1);
            if (joined.count == 1)
                CU_ASSERT_STRING_EQUAL(joined.items[0], words[w]);
            tok_list_clear(&pieces);
            tok_list_clear(&joined);
        }
    }
    {
        char *got = segment_to_string(codes, "newest"), *plain = segment_to_string(copy, "newest");

        /* new@@ est: rank 8 "es t</w>" splits "est" into es@@ and t, and
         * rank 7 "e s" splits es@@ into e@@ and s@@. */
        CU_ASSERT_STRING_EQUAL(plain, "new@@ est");
        CU_ASSERT_STRING_EQUAL(got, "new@@ e@@ s@@ t");
        free(got);
        free(plain);
    }
    bpe_free(copy);
    bpe_free(codes);
}

/* Dropout decides per occurrence: in "ababa" one "a b" can merge while the
 * other stays apart, in either order. */
static void test_dropout_per_occurrence(void)
{
    char err[ERR_SIZE];
    bpe *codes = codes_from_string("#version: 0.2\na b\n", err);
    uint64_t state = 11;
    int left = 0, right = 0, both = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    for (int i = 0; i < 500; i++) {
        char *s = dropout_to_string(codes, "ababa", 0.5, &state);

        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        left += strcmp(s, "ab@@ a@@ b@@ a") == 0;
        right += strcmp(s, "a@@ b@@ ab@@ a") == 0;
        both += strcmp(s, "ab@@ ab@@ a") == 0;
        free(s);
    }
    CU_ASSERT_TRUE(left > 0);
    CU_ASSERT_TRUE(right > 0);
    CU_ASSERT_TRUE(both > 0);
    bpe_free(codes);
}

static void test_cache_gives_same_segmentation(void)
{
    const char *words[N_GENERATED];
    char *storage = generate_words(words);
    bpe *codes = storage ? learn_generated(words) : NULL;
    tok_list uncached = {0}, cached = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT(bpe_n_merges(codes) > 50);
    CU_ASSERT_EQUAL(segment_all(codes, words, &uncached), 0);
    CU_ASSERT(pieces_are_whole_characters(&uncached));
    /* Cache every other word, twice to skip words already cached. */
    CU_ASSERT_EQUAL(bpe_cache_words(codes, words, N_GENERATED / 2), 0);
    CU_ASSERT_EQUAL(bpe_cache_words(codes, words, N_GENERATED), 0);
    CU_ASSERT_EQUAL(segment_all(codes, words, &cached), 0);
    CU_ASSERT(lists_equal(&uncached, &cached));
    tok_list_clear(&uncached);
    tok_list_clear(&cached);
    bpe_free(codes);
    free(storage);
}

#define N_THREADS 4

typedef struct {
    const bpe *codes;
    const char *const *words;
    tok_list out;
    int rc;
} segment_job;

static void *segment_job_run(void *arg)
{
    segment_job *job = arg;

    for (int round = 0; round < 5 && job->rc == 0; round++) {
        tok_list_clear(&job->out);
        job->rc = segment_all(job->codes, job->words, &job->out);
    }
    return NULL;
}

static void test_segment_from_threads(void)
{
    const char *words[N_GENERATED];
    char *storage = generate_words(words);
    bpe *codes = storage ? learn_generated(words) : NULL;
    tok_list expected = {0};
    segment_job jobs[N_THREADS];
    pthread_t threads[N_THREADS];

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(segment_all(codes, words, &expected), 0);
    /* Half the words come from the cache, half are segmented per call. */
    CU_ASSERT_EQUAL(bpe_cache_words(codes, words, N_GENERATED / 2), 0);

    for (int t = 0; t < N_THREADS; t++) {
        jobs[t] = (segment_job){codes, words, {0}, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[t], NULL, segment_job_run, &jobs[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        CU_ASSERT_EQUAL(pthread_join(threads[t], NULL), 0);
        CU_ASSERT_EQUAL(jobs[t].rc, 0);
        CU_ASSERT(lists_equal(&jobs[t].out, &expected));
        tok_list_clear(&jobs[t].out);
    }
    tok_list_clear(&expected);
    bpe_free(codes);
    free(storage);
}

/* ---- Multi30k ---- */

#define MAX_LINES 40000

/* Reads the whitespace-separated tokens of each line of a gzip file into
 * lines[0..*n_lines). Returns 0, or -1 when the file cannot be read or has
 * more than MAX_LINES lines. */
static int read_token_lines(const char *path, tok_list *lines, size_t *n_lines)
{
    gzFile f = gzopen(path, "rb");
    char line[8192];

    *n_lines = 0;
    if (!f)
        return -1;
    while (gzgets(f, line, sizeof line)) {
        tok_list *tokens = &lines[*n_lines];

        if (*n_lines == MAX_LINES) {
            gzclose(f);
            return -1;
        }
        *tokens = (tok_list){0};
        for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
            if (tok_list_push(tokens, tok) < 0) {
                gzclose(f);
                return -1;
            }
        }
        (*n_lines)++;
    }
    gzclose(f);
    return 0;
}

/* Learns 10,000 merges on train.de.gz, then segments and joins every line
 * and checks that the tokens come back unchanged, with no subword split
 * inside a UTF-8 sequence. Also checks words absent from the corpus in
 * other scripts. */
static void test_multi30k_round_trip(void)
{
    static const char *const unseen[] = {"Straßenmädchen", "Größenwahn", "👍🏽👍🏽", "日本語テキスト",
                                         "naïveté", "Ärgernisse", "über-über", "中文分词"};
    const char *dir = test_data_dir();
    char path[4096], err[ERR_SIZE] = "";
    tok_list *lines = NULL, pieces = {0}, joined = {0};
    bpe_learner *learner = NULL;
    bpe *codes = NULL;
    size_t n_lines = 0, n_split = 0, n_tokens = 0, bad_lines = 0, bad_chars = 0;
    clock_t start;

    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/multi30k/train.de.gz", dir);
    lines = calloc(MAX_LINES, sizeof *lines);
    learner = bpe_learner_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(lines);
    CU_ASSERT_PTR_NOT_NULL_FATAL(learner);
    CU_ASSERT_EQUAL_FATAL(read_token_lines(path, lines, &n_lines), 0);
    CU_ASSERT_EQUAL(n_lines, 29000);

    for (size_t i = 0; i < n_lines; i++)
        CU_ASSERT_EQUAL(bpe_learner_add_tokens(learner, &lines[i], err, sizeof err), 0);
    start = clock();
    codes = bpe_learner_learn(learner, 10000, 2, err, sizeof err);
    fprintf(stderr, "\n  learned %zu merges on %zu German word types in %.2f s CPU\n",
            codes ? bpe_n_merges(codes) : 0, bpe_learner_size(learner),
            (double)(clock() - start) / CLOCKS_PER_SEC);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_n_merges(codes), 10000);

    for (size_t i = 0; i < n_lines; i++) {
        tok_list_clear(&pieces);
        tok_list_clear(&joined);
        CU_ASSERT_EQUAL_FATAL(bpe_segment(codes, &lines[i], &pieces), 0);
        CU_ASSERT_EQUAL_FATAL(
            bpe_join((const char *const *)pieces.items, pieces.count, &joined), 0);
        n_tokens += lines[i].count;
        n_split += pieces.count - lines[i].count;
        bad_chars += !pieces_are_whole_characters(&pieces);
        if (!lists_equal(&joined, &lines[i]) && bad_lines++ == 0) {
            char *want = join_spaces(&lines[i]), *got = join_spaces(&joined);

            check(0, __LINE__, "round trip changed \"%s\" into \"%s\"%s", want, got, "");
            free(want);
            free(got);
        }
    }
    CU_ASSERT_EQUAL(bad_lines, 0);
    CU_ASSERT_EQUAL(bad_chars, 0);
    /* Rare words are split: the test is not vacuous. */
    CU_ASSERT(n_split > n_tokens / 100);

    for (int i = 0; i < 8; i++) {
        tok_list_clear(&pieces);
        tok_list_clear(&joined);
        CU_ASSERT_EQUAL(bpe_segment_word(codes, unseen[i], &pieces), 0);
        check(pieces_are_whole_characters(&pieces), __LINE__, "%s split inside a character%s%s",
              unseen[i], "", "");
        CU_ASSERT_EQUAL(bpe_join((const char *const *)pieces.items, pieces.count, &joined), 0);
        CU_ASSERT_EQUAL(joined.count, 1);
        if (joined.count == 1)
            CU_ASSERT_STRING_EQUAL(joined.items[0], unseen[i]);
    }

    tok_list_clear(&pieces);
    tok_list_clear(&joined);
    for (size_t i = 0; i < n_lines; i++)
        tok_list_clear(&lines[i]);
    free(lines);
    bpe_free(codes);
    bpe_learner_free(learner);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;

    s = CU_add_suite("bpe golden", NULL, NULL);
    CU_add_test(s, "small.codes matches small.golden", test_golden_segmentation);
    CU_add_test(s, "small.vocab filter matches small.filtered.golden",
                test_filtered_golden_segmentation);

    s = CU_add_suite("bpe codes files", NULL, NULL);
    CU_add_test(s, "read keeps file order", test_read_keeps_file_order);
    CU_add_test(s, "write then read identical", test_write_then_read_identical);
    CU_add_test(s, "hash is FNV-1a of text", test_hash_is_fnv1a_of_text);
    CU_add_test(s, "headerless codes are version 0.1", test_headerless_codes_are_version_0_1);
    CU_add_test(s, "CRLF and trailing blank lines", test_crlf_and_trailing_blank_lines);
    CU_add_test(s, "empty codes split characters", test_empty_codes_split_characters);
    CU_add_test(s, "repeated merge keeps first rank", test_repeated_merge_keeps_first_rank);
    CU_add_test(s, "rejects malformed lines", test_rejects_malformed_lines);
    CU_add_test(s, "read missing file", test_read_missing_file);

    s = CU_add_suite("bpe learning", NULL, NULL);
    CU_add_test(s, "classic example", test_learn_classic_example);
    CU_add_test(s, "stops at limits", test_learn_stops_at_limits);
    CU_add_test(s, "learned codes file round trip", test_learned_codes_file_round_trip);
    CU_add_test(s, "unicode symbols", test_learn_unicode_symbols);
    CU_add_test(s, "rejects invalid words", test_learner_rejects_invalid_words);
    CU_add_test(s, "without words", test_learn_without_words);

    s = CU_add_suite("bpe segmentation", NULL, NULL);
    CU_add_test(s, "token list", test_segment_token_list);
    CU_add_test(s, "invalid bytes are symbols", test_invalid_bytes_are_symbols);
    CU_add_test(s, "join words", test_join_words);
    CU_add_test(s, "join drops trailing marker", test_join_drops_trailing_marker);
    CU_add_test(s, "marker in words round trip", test_marker_in_words_round_trip);
    CU_add_test(s, "cache gives same segmentation", test_cache_gives_same_segmentation);
    CU_add_test(s, "dropout segmentation", test_dropout_segmentation);
    CU_add_test(s, "dropout per occurrence", test_dropout_per_occurrence);
    CU_add_test(s, "filter splits by lowest rank", test_filter_splits_by_lowest_rank);
    CU_add_test(s, "filter keeps vocabulary", test_filter_keeps_vocabulary);
    CU_add_test(s, "segment from threads", test_segment_from_threads);

    s = CU_add_suite("bpe on Multi30k", NULL, NULL);
    CU_add_test(s, "round trip on train.de", test_multi30k_round_trip);

    return test_run_all();
}
