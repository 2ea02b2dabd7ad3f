/* Tests of corpus BLEU and the 13a tokenizer against hand-computed values.
 *
 * Expected scores are written as the formula they come from, so a failure
 * shows which count or penalty differs. Floating-point checks allow 1e-9
 * absolute error on the 0-100 scale.
 */
#include "bleu.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOLERANCE 1e-9

/* Scores a single segment pair. */
static bleu_result score_pair(const char *hyp, const char *ref)
{
    bleu_result r;

    CU_ASSERT_EQUAL_FATAL(bleu_corpus(&hyp, &ref, 1, &r), 0);
    return r;
}

/* Asserts that bleu_tokenize_13a(input) equals expected. */
static void check_tokens(const char *input, const char *expected)
{
    char *out = bleu_tokenize_13a(input);

    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    if (strcmp(out, expected) != 0)
        fprintf(stderr, "\n  tokenize(\"%s\") = \"%s\", expected \"%s\"\n", input, out, expected);
    CU_ASSERT_STRING_EQUAL(out, expected);
    free(out);
}

/* ---- tokenizer ---- */

static void test_tokenize_punctuation(void)
{
    check_tokens("Hello, world.", "Hello , world .");
    check_tokens("(test)", "( test )");
    check_tokens("a/b", "a / b");
    check_tokens("Why? Because!", "Why ? Because !");
    check_tokens("50% off: $5", "50 % off : $ 5");
    check_tokens("don't", "don't");
}

static void test_tokenize_numbers(void)
{
    check_tokens("It costs 3.5 dollars.", "It costs 3.5 dollars .");
    check_tokens("1,000,000", "1,000,000");
    /* A period is split when either neighbour is not a digit. */
    check_tokens(".5", ". 5");
    check_tokens("5.", "5 .");
    check_tokens("a.b", "a . b");
    check_tokens("a..", "a . .");
}

static void test_tokenize_dash(void)
{
    check_tokens("well-known", "well-known");
    check_tokens("3-4", "3 - 4");
    check_tokens("x-3", "x-3");
}

static void test_tokenize_entities(void)
{
    check_tokens("&quot;Hi&quot; &amp; bye", "\" Hi \" & bye");
    check_tokens("&lt;b&gt;", "< b >");
    /* Replacements run once each, in order, so "&amp;quot;" ends as "&quot;". */
    check_tokens("&amp;quot;", "& quot ;");
}

static void test_tokenize_whitespace(void)
{
    check_tokens("  a \t b  ", "a b");
    check_tokens("a\xc2\xa0" "b", "a b");         /* U+00A0 no-break space */
    check_tokens("a\xe3\x80\x80" "b", "a b");     /* U+3000 ideographic space */
    check_tokens("Gr\xc3\xbc\xc3\x9f" "e.", "Gr\xc3\xbc\xc3\x9f" "e .");
    check_tokens("", "");
    check_tokens("a <skipped> b", "a b");
}

/* ---- scores ---- */

static void test_bleu_perfect_match(void)
{
    bleu_result r = score_pair("The cat sat on the mat.", "The cat sat on the mat.");

    CU_ASSERT_DOUBLE_EQUAL(r.score, 100.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.brevity_penalty, 1.0, TOLERANCE);
    CU_ASSERT_EQUAL(r.hyp_len, 7);
    CU_ASSERT_EQUAL(r.ref_len, 7);
}

/* hyp "the cat sat on the mat" (6 tokens), ref "the cat sat on the red mat"
 * (7 tokens):
 *   1-grams 6/6, all hypothesis words occur in the reference
 *   2-grams 4/5, "the mat" is missing
 *   3-grams 3/4, "on the mat" is missing
 *   4-grams 2/3, "sat on the mat" is missing
 *   BP = exp(1 - 7/6) = 0.846482
 *   BLEU = 100 * BP * (1 * 0.8 * 0.75 * 2/3)^(1/4) = 100 * 0.846482 * 0.795271 = 67.318 */
static void test_bleu_short_hypothesis(void)
{
    bleu_result r = score_pair("the cat sat on the mat", "the cat sat on the red mat");
    double bp = exp(1.0 - 7.0 / 6.0);

    CU_ASSERT_EQUAL(r.correct[0], 6);
    CU_ASSERT_EQUAL(r.total[0], 6);
    CU_ASSERT_EQUAL(r.correct[1], 4);
    CU_ASSERT_EQUAL(r.total[1], 5);
    CU_ASSERT_EQUAL(r.correct[2], 3);
    CU_ASSERT_EQUAL(r.total[2], 4);
    CU_ASSERT_EQUAL(r.correct[3], 2);
    CU_ASSERT_EQUAL(r.total[3], 3);
    CU_ASSERT_DOUBLE_EQUAL(r.brevity_penalty, bp, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.ratio, 6.0 / 7.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.precision[1], 80.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.score, 100.0 * bp * pow(0.4, 0.25), TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.score, 67.318, 1e-3);
}

/* hyp "the cat sat on the mat", ref "the cat is on the mat" (6 tokens each):
 *   1-grams 5/6 ("sat" is missing), 2-grams 3/5, 3-grams 1/4, 4-grams 0/3.
 *   exp smoothing gives the first order without matches 100 / (2 * 3).
 *   BLEU = (83.333 * 60 * 25 * 16.667)^(1/4) = 2083333.3^(1/4) = 37.992 */
static void test_bleu_exp_smoothing(void)
{
    bleu_result r = score_pair("the cat sat on the mat", "the cat is on the mat");
    double expected = pow(100.0 * 5 / 6 * 60.0 * 25.0 * (100.0 / 6), 0.25);

    CU_ASSERT_EQUAL(r.correct[3], 0);
    CU_ASSERT_EQUAL(r.total[3], 3);
    CU_ASSERT_DOUBLE_EQUAL(r.precision[3], 100.0 / 6.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.brevity_penalty, 1.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.score, expected, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.score, 37.992, 1e-3);
}

/* Two orders without matches: the second gets 100 / (4 * total).
 * hyp "a b c d e" vs ref "a x c y e": 1-grams 3/5, 2-grams 0/4 -> 100/8,
 * 3-grams 0/3 -> 100/12, 4-grams 0/2 -> 100/16. */
static void test_bleu_exp_smoothing_doubles(void)
{
    bleu_result r = score_pair("a b c d e", "a x c y e");
    double expected = pow(60.0 * (100.0 / 8) * (100.0 / 12) * (100.0 / 16), 0.25);

    CU_ASSERT_DOUBLE_EQUAL(r.precision[1], 100.0 / 8.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.precision[2], 100.0 / 12.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.precision[3], 100.0 / 16.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.score, expected, TOLERANCE);
}

/* Counts published in sacreBLEU's own tests for this pair: matches
 * 4/2/1/0 of 6/5/4/3 hypothesis n-grams. The repeated "a a" in the reference
 * checks clipping. */
static void test_bleu_clipped_counts(void)
{
    bleu_result r = score_pair("am I am a character sequence", "I am a symbol string sequence a a");
    const size_t correct[4] = {4, 2, 1, 0}, total[4] = {6, 5, 4, 3};
    double expected = 100.0 * exp(1.0 - 8.0 / 6.0) *
                      pow((4.0 / 6) * (2.0 / 5) * (1.0 / 4) * (1.0 / 6), 0.25);

    for (int n = 0; n < 4; n++) {
        CU_ASSERT_EQUAL(r.correct[n], correct[n]);
        CU_ASSERT_EQUAL(r.total[n], total[n]);
    }
    CU_ASSERT_DOUBLE_EQUAL(r.score, expected, TOLERANCE);
}

static void test_bleu_empty_hypothesis(void)
{
    bleu_result r = score_pair("", "a b c d");

    CU_ASSERT_EQUAL(r.hyp_len, 0);
    CU_ASSERT_EQUAL(r.ref_len, 4);
    CU_ASSERT_DOUBLE_EQUAL(r.brevity_penalty, 0.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.score, 0.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.precision[0], 0.0, TOLERANCE);
}

/* Without effective order a corpus with no 4-grams scores 0 even when
 * every word matches, as sacreBLEU's corpus BLEU does. */
static void test_bleu_no_four_grams(void)
{
    bleu_result r = score_pair("a b c", "a b c");

    CU_ASSERT_EQUAL(r.total[3], 0);
    CU_ASSERT_DOUBLE_EQUAL(r.precision[0], 100.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.precision[3], 0.0, TOLERANCE);
    CU_ASSERT_DOUBLE_EQUAL(r.score, 0.0, TOLERANCE);
}

/* Corpus counts are sums over segments, not a mean of segment scores. */
static void test_bleu_corpus_sums_counts(void)
{
    const char *hyps[] = {"the cat sat on the mat", "the cat sat on the mat"};
    const char *refs[] = {"the cat sat on the red mat", "the cat is on the mat"};
    bleu_result r;

    CU_ASSERT_EQUAL_FATAL(bleu_corpus(hyps, refs, 2, &r), 0);
    CU_ASSERT_EQUAL(r.correct[0], 6 + 5);
    CU_ASSERT_EQUAL(r.correct[3], 2 + 0);
    CU_ASSERT_EQUAL(r.total[3], 3 + 3);
    CU_ASSERT_EQUAL(r.hyp_len, 12);
    CU_ASSERT_EQUAL(r.ref_len, 13);
    CU_ASSERT_DOUBLE_EQUAL(r.score,
                           100.0 * exp(1.0 - 13.0 / 12.0) *
                               pow((11.0 / 12) * (7.0 / 10) * (4.0 / 8) * (2.0 / 6), 0.25),
                           TOLERANCE);
}

/* Tokenization happens before counting: "mat." and "mat ." score alike. */
static void test_bleu_tokenizes_segments(void)
{
    bleu_result r = score_pair("The cat sat on the mat.", "The cat sat on the mat .\n");

    CU_ASSERT_DOUBLE_EQUAL(r.score, 100.0, TOLERANCE);
}

static void test_bleu_format_line(void)
{
    bleu_result r = score_pair("the cat sat on the mat", "the cat sat on the red mat");
    char line[256];
    int len = bleu_format(&r, line, sizeof(line));

    CU_ASSERT(len > 0 && (size_t)len < sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "BLEU = 67.32 100.0/80.0/75.0/66.7 (BP = 0.846 ratio = 0.857 "
                                 "hyp_len = 6 ref_len = 7)");
}

/* 3000 segments of 30 tokens (setup included) took under 0.07 s at -O2 on a
 * loaded 2-core build machine, so 1 s leaves room for slower machines and
 * sanitizer builds. */
static void test_bleu_speed(void)
{
    enum { SEGMENTS = 3000, WORDS = 30 };
    char **hyps = calloc(SEGMENTS, sizeof(*hyps));
    char **refs = calloc(SEGMENTS, sizeof(*refs));
    unsigned state = 12345;
    struct timespec t0, t1;
    bleu_result r;
    double seconds;

    CU_ASSERT_PTR_NOT_NULL_FATAL(hyps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(refs);
    for (int i = 0; i < SEGMENTS; i++) {
        hyps[i] = malloc(WORDS * 8 + 1);
        refs[i] = malloc(WORDS * 8 + 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hyps[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(refs[i]);
        hyps[i][0] = refs[i][0] = '\0';
        for (int w = 0; w < WORDS; w++) {
            char word[8];

            state = state * 1103515245u + 12345u;
            snprintf(word, sizeof(word), "w%u ", (state >> 16) % 200);
            strcat(refs[i], word);
            if ((state >> 8) % 4 != 0)
                snprintf(word, sizeof(word), "v%u ", (state >> 20) % 200);
            strcat(hyps[i], word);
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(bleu_corpus((const char *const *)hyps, (const char *const *)refs, SEGMENTS, &r),
                    0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CU_ASSERT(seconds < 1.0);
    CU_ASSERT_EQUAL(r.hyp_len, (size_t)SEGMENTS * WORDS);
    CU_ASSERT(r.score > 0.0 && r.score < 100.0);

    for (int i = 0; i < SEGMENTS; i++) {
        free(hyps[i]);
        free(refs[i]);
    }
    free(hyps);
    free(refs);
}

int main(void)
{
    CU_pSuite tok, score;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    tok = CU_add_suite("bleu_tokenize_13a", NULL, NULL);
    score = CU_add_suite("bleu_corpus", NULL, NULL);
    if (!tok || !score)
        return 1;

    CU_add_test(tok, "punctuation split", test_tokenize_punctuation);
    CU_add_test(tok, "numbers keep inner period and comma", test_tokenize_numbers);
    CU_add_test(tok, "dash split after digit", test_tokenize_dash);
    CU_add_test(tok, "entities unescaped", test_tokenize_entities);
    CU_add_test(tok, "whitespace collapsed", test_tokenize_whitespace);

    CU_add_test(score, "perfect match is 100", test_bleu_perfect_match);
    CU_add_test(score, "short hypothesis brevity penalty", test_bleu_short_hypothesis);
    CU_add_test(score, "exp smoothing of 4-grams", test_bleu_exp_smoothing);
    CU_add_test(score, "exp smoothing doubles per order", test_bleu_exp_smoothing_doubles);
    CU_add_test(score, "clipped counts match sacreBLEU", test_bleu_clipped_counts);
    CU_add_test(score, "empty hypothesis scores 0", test_bleu_empty_hypothesis);
    CU_add_test(score, "no 4-grams scores 0", test_bleu_no_four_grams);
    CU_add_test(score, "corpus sums segment counts", test_bleu_corpus_sums_counts);
    CU_add_test(score, "segments are tokenized", test_bleu_tokenizes_segments);
    CU_add_test(score, "summary line format", test_bleu_format_line);
    CU_add_test(score, "3000 segments under 1 s", test_bleu_speed);
    return test_run_all();
}
