/* Tests of vocab/text.c: NFC normalization and invalid UTF-8, the
 * Moses-style tokenizer for English and German, the detokenizer, and the
 * tokenize-detokenize round trip on a sentence table and on Multi30k's
 * test_2016_flickr (skipped when the corpus folder is missing). */
#include "testutil.h"
#include "text.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */

/* Records a check under the caller's line with a readable message, which
 * CUnit copies. */
static void check(int ok, int line, const char *fmt, const char *a, const char *b,
                  const char *c)
{
    char msg[1024];

    snprintf(msg, sizeof msg, fmt, a, b, c);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}

/* Returns the tokens of list joined by single spaces (malloc'd). */
static char *join_tokens(const tok_list *list)
{
    size_t len = 1;
    char *s;

    for (size_t i = 0; i < list->count; i++)
        len += strlen(list->items[i]) + 1;
    s = malloc(len);
    s[0] = '\0';
    for (size_t i = 0; i < list->count; i++) {
        if (i > 0)
            strcat(s, " ");
        strcat(s, list->items[i]);
    }
    return s;
}

/* Splits a space-separated token list (test expectations only). */
static void split_spaces(const char *s, tok_list *out)
{
    char *copy = strdup(s);

    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " "))
        tok_list_push(out, t);
    free(copy);
}

/* Checks that text tokenizes to expected, given as tokens separated by
 * single spaces: first the token count, then each token. */
static void expect_tokens_at(int line, const char *lang, const char *text, const char *expected)
{
    tok_list got = {0}, want = {0};
    char *joined;
    int rc = tok_tokenize(text, lang, &got);

    split_spaces(expected, &want);
    joined = join_tokens(&got);
    check(rc == 0, line, "tok_tokenize(\"%s\", %s) returned an error%s", text,
          lang ? lang : "NULL", "");
    check(got.count == want.count, line, "token count of \"%s\": got [%s], expected [%s]", text,
          joined, expected);
    for (size_t i = 0; got.count == want.count && i < got.count; i++) {
        check(strcmp(got.items[i], want.items[i]) == 0, line,
              "token of \"%s\": got [%s], expected [%s]", text, got.items[i], want.items[i]);
    }
    free(joined);
    tok_list_clear(&got);
    tok_list_clear(&want);
}
#define expect_tokens(lang, text, expected) expect_tokens_at(__LINE__, lang, text, expected)

/* Checks that the space-separated tokens detokenize to expected. */
static void expect_detok_at(int line, const char *lang, const char *tokens, const char *expected)
{
    tok_list list = {0};
    char *got;

    split_spaces(tokens, &list);
    got = tok_detokenize((const char *const *)list.items, list.count, lang);
    check(got && strcmp(got, expected) == 0, line, "detokenize [%s]: got \"%s\", expected \"%s\"",
          tokens, got ? got : "(NULL)", expected);
    free(got);
    tok_list_clear(&list);
}
#define expect_detok(lang, tokens, expected) expect_detok_at(__LINE__, lang, tokens, expected)

/* Returns the detokenized tokens of text (malloc'd), or NULL on error. */
static char *round_trip(const char *text, const char *lang)
{
    tok_list list = {0};
    char *out = NULL;

    if (tok_tokenize(text, lang, &list) == 0)
        out = tok_detokenize((const char *const *)list.items, list.count, lang);
    tok_list_clear(&list);
    return out;
}

/* ---- text_normalize ---- */

static void test_normalize_composes_nfc(void)
{
    size_t bad = 0;
    char *s = text_normalize("Cafe\xCC\x81", 6, &bad);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "Caf\xC3\xA9");
    CU_ASSERT_EQUAL(bad, 0);
    free(s);
}

static void test_normalize_keeps_compat_and_case(void)
{
    /* U+FB01 ligature fi and U+FF21 full-width A are compatibility
     * characters that NFKC would fold but NFC keeps. */
    const char *text = "\xEF\xAC\x81 \xEF\xBC\xA1 \xC3\x84rger";
    char *s = text_normalize(text, strlen(text), NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, text);
    free(s);
}

static void test_normalize_replaces_invalid_byte(void)
{
    size_t bad = 0;
    char *s = text_normalize("a\xFF" "b", 3, &bad);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "a" REPLACEMENT "b");
    CU_ASSERT_EQUAL(bad, 1);
    free(s);
}

static void test_normalize_truncated_sequence(void)
{
    size_t bad = 0;
    /* The first two bytes of the euro sign, then "x": one replacement for
     * the incomplete sequence. */
    char *s = text_normalize("\xE2\x82x", 3, &bad);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, REPLACEMENT "x");
    CU_ASSERT_EQUAL(bad, 1);
    free(s);

    bad = 0;
    s = text_normalize("ok\xF0\x9F\x98", 5, &bad);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "ok" REPLACEMENT);
    CU_ASSERT_EQUAL(bad, 1);
    free(s);
}

static void test_normalize_overlong_and_surrogate(void)
{
    size_t bad = 0;
    /* Overlong "/" (C0 AF): two bytes that start no valid sequence. */
    char *s = text_normalize("\xC0\xAF", 2, &bad);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, REPLACEMENT REPLACEMENT);
    CU_ASSERT_EQUAL(bad, 2);
    free(s);

    /* Encoded surrogate U+D800 (ED A0 80): ED cannot be followed by A0. */
    bad = 0;
    s = text_normalize("\xED\xA0\x80", 3, &bad);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, REPLACEMENT REPLACEMENT REPLACEMENT);
    CU_ASSERT_EQUAL(bad, 3);
    free(s);
}

static void test_normalize_nul_byte(void)
{
    size_t bad = 0;
    char *s = text_normalize("a\0b", 3, &bad);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "a" REPLACEMENT "b");
    CU_ASSERT_EQUAL(bad, 1);
    free(s);
}

static void test_normalize_adds_to_count(void)
{
    size_t bad = 5;
    char *s = text_normalize("\x80\x80", 2, &bad);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(bad, 7);
    free(s);

    s = text_normalize("\x80", 1, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, REPLACEMENT);
    free(s);
}

static void test_normalize_empty(void)
{
    size_t bad = 0;
    char *s = text_normalize("", 0, &bad);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "");
    CU_ASSERT_EQUAL(bad, 0);
    free(s);
}

/* ---- tok_tokenize ---- */

static void test_tokenize_en_punctuation(void)
{
    expect_tokens("en", "Hello, world!", "Hello , world !");
    expect_tokens("en", "A man (in red) runs.", "A man ( in red ) runs .");
    expect_tokens("en", "What?!", "What ? !");
    expect_tokens("en", "Wait... what", "Wait ... what");
    expect_tokens("en", "dogs; cats: birds", "dogs ; cats : birds");
    expect_tokens("en", "a well-known T-shirt - cheap", "a well-known T-shirt - cheap");
    expect_tokens("en", "and/or", "and / or");
}

static void test_tokenize_en_clitics(void)
{
    expect_tokens("en", "It's a dog's life.", "It 's a dog 's life .");
    expect_tokens("en", "I don't know.", "I don 't know .");
    expect_tokens("en", "We're sure they'll go, I'm told.",
                  "We 're sure they 'll go , I 'm told .");
    expect_tokens("en", "the dogs' toys", "the dogs ' toys");
    expect_tokens("en", "music of the 1990's", "music of the 1990 's");
    expect_tokens("en", "It\xE2\x80\x99s here", "It \xE2\x80\x99s here");
}

static void test_tokenize_numbers(void)
{
    expect_tokens("en", "It weighs 3.5 kg.", "It weighs 3.5 kg .");
    expect_tokens("en", "1,000 people", "1,000 people");
    expect_tokens("en", "at 10:30 today", "at 10 : 30 today");
    expect_tokens("en", "1, 2, 3", "1 , 2 , 3");
    expect_tokens("en", "number 5,", "number 5 ,");
    expect_tokens("en", "It costs $5.", "It costs $ 5 .");
    expect_tokens("en", "50% off", "50 % off");
    expect_tokens("en", "jersey #8", "jersey # 8");
    expect_tokens("de", "Es kostet 3,50 Euro.", "Es kostet 3,50 Euro .");
}

static void test_tokenize_en_abbreviations(void)
{
    expect_tokens("en", "Mr. Smith met Dr. Jones.", "Mr. Smith met Dr. Jones .");
    expect_tokens("en", "He lives in the U.S. now.", "He lives in the U.S. now .");
    expect_tokens("en", "J. R. Smith", "J. R. Smith");
    expect_tokens("en", "Dogs, cats, etc. are pets", "Dogs , cats , etc. are pets");
    expect_tokens("en", "No. 5 wins", "No. 5 wins");
    expect_tokens("en", "No. Way", "No . Way");
    expect_tokens("en", "It ended. then more", "It ended. then more");
    /* The last token always loses its period, abbreviation or not. */
    expect_tokens("en", "Ask Mr.", "Ask Mr .");
}

static void test_tokenize_quotes(void)
{
    expect_tokens("en", "A sign that says \"Hello.\"", "A sign that says \" Hello . \"");
    expect_tokens("en", "a 'Grand Opening' sign", "a ' Grand Opening ' sign");
    expect_tokens("en", "a patio-type cafe'.", "a patio-type cafe ' .");
    expect_tokens("de", "\xE2\x80\x9EHallo\xE2\x80\x9C, sagt er.",
                  "\xE2\x80\x9E Hallo \xE2\x80\x9C , sagt er .");
    expect_tokens("de", "ein \xE2\x80\x9EOpen\xE2\x80\x9C-Schild",
                  "ein \xE2\x80\x9E Open \xE2\x80\x9C -Schild");
}

static void test_tokenize_de(void)
{
    expect_tokens("de", "Ein Mädchen läuft über saftig-grünes Gras.",
                  "Ein Mädchen läuft über saftig-grünes Gras .");
    expect_tokens("de", "Hunde, z.B. Pudel, bellen.", "Hunde , z.B. Pudel , bellen .");
    expect_tokens("de", "Nr. 5 und ca. 3 Hunde", "Nr. 5 und ca. 3 Hunde");
    expect_tokens("de", "Katzen bzw. Hunde usw. sind Tiere", "Katzen bzw. Hunde usw. sind Tiere");
    expect_tokens("de", "am 3. Oktober", "am 3. Oktober");
    expect_tokens("de", "Er trägt die Nummer 10.", "Er trägt die Nummer 10 .");
    expect_tokens("de", "Dr. Müller kommt.", "Dr. Müller kommt .");
    expect_tokens("de", "ihr McDonald's-Menü", "ihr McDonald's-Menü");
    expect_tokens("de", "So geht's.", "So geht's .");
    expect_tokens("de", "für \"Kids' Food Basket\".", "für \" Kids ' Food Basket \" .");
}

static void test_tokenize_whitespace(void)
{
    expect_tokens("en", "  a\xC2\xA0" "b\tc \n d  ", "a b c d");
    expect_tokens(NULL, "a\xE2\x80\x8B" "b", "a b"); /* zero width space */
}

static void test_tokenize_empty_input(void)
{
    tok_list list = {0};

    CU_ASSERT_EQUAL(tok_tokenize("", "en", &list), 0);
    CU_ASSERT_EQUAL(list.count, 0);
    CU_ASSERT_EQUAL(tok_tokenize(" \t\xC2\xA0 ", "de", &list), 0);
    CU_ASSERT_EQUAL(list.count, 0);
    tok_list_clear(&list);
}

static void test_tokenize_other_scripts(void)
{
    expect_tokens(NULL, "Привет, мир.", "Привет , мир .");
    expect_tokens(NULL, "Καλημέρα! (φίλε)", "Καλημέρα ! ( φίλε )");
    /* A combining mark NFC cannot compose stays inside its word. */
    expect_tokens(NULL, "q\xCC\x81x, y", "q\xCC\x81x , y");
}

static void test_tokenize_invalid_utf8(void)
{
    /* Ill-formed bytes read as U+FFFD, a symbol, so it becomes a token. */
    expect_tokens("en", "a\xFF" "b c", "a " REPLACEMENT " b c");
}

static void test_tokenize_appends(void)
{
    tok_list list = {0};

    tok_list_push(&list, "first");
    CU_ASSERT_EQUAL(tok_tokenize("two words", "en", &list), 0);
    CU_ASSERT_EQUAL_FATAL(list.count, 3);
    CU_ASSERT_STRING_EQUAL(list.items[0], "first");
    CU_ASSERT_STRING_EQUAL(list.items[1], "two");
    CU_ASSERT_STRING_EQUAL(list.items[2], "words");
    tok_list_clear(&list);
    CU_ASSERT_EQUAL(list.count, 0);
    CU_ASSERT_PTR_NULL(list.items);
}

static void test_tokenize_no_empty_tokens(void)
{
    static const char *const texts[] = {
        "...", ". . .", "'", "''", "' '", ",,", "a,", ",a", "-", "--", "\"\"", "a.", ".a",
        "x'", "'x", "1,", ",1", "A.B.", "\xE2\x80\x9E", "a\xFF\xFE", "..a..b..",
    };
    static const char *const langs[] = {"en", "de", NULL};

    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            tok_list list = {0};

            CU_ASSERT_EQUAL(tok_tokenize(texts[i], langs[l], &list), 0);
            for (size_t k = 0; k < list.count; k++) {
                check(list.items[k][0] != '\0', __LINE__, "empty token in \"%s\"%s%s", texts[i],
                      "", "");
                check(strpbrk(list.items[k], " \t\n") == NULL, __LINE__,
                      "token [%s] of \"%s\" holds whitespace%s", list.items[k], texts[i], "");
            }
            tok_list_clear(&list);
        }
    }
}

/* ---- tok_detokenize ---- */

static void test_detok_punctuation(void)
{
    expect_detok("en", "Hello , world !", "Hello, world!");
    expect_detok("en", "A man ( in red ) runs .", "A man (in red) runs.");
    expect_detok("en", "Wait ... what ?", "Wait... what?");
    expect_detok("en", "50 % off", "50% off");
    expect_detok("en", "It costs $ 5 .", "It costs $5.");
    expect_detok("en", "at 10 : 30", "at 10:30");
    expect_detok("en", "Note : it rains", "Note: it rains");
    expect_detok("en", "and / or", "and/or");
    expect_detok("en", "jersey # 8", "jersey #8");
    expect_detok("de", "Die # 8 gewinnt", "Die # 8 gewinnt");
    expect_detok("en", "a Q & A session", "a Q&A session");
    expect_detok("de", "eine Texas-A & M-Spielerin", "eine Texas-A&M-Spielerin");
    expect_detok("en", "Tom & Jerry", "Tom & Jerry");
}

static void test_detok_quotes(void)
{
    expect_detok("en", "He said , \" hello \" .", "He said, \"hello\".");
    expect_detok("en", "\" a \" and \" b \"", "\"a\" and \"b\"");
    expect_detok("en", "a ' Grand Opening ' sign", "a 'Grand Opening' sign");
    expect_detok("en", "the dogs ' toys", "the dogs' toys");
    expect_detok("en", "a cafe ' .", "a cafe'.");
    expect_detok("de", "\xE2\x80\x9E Hallo \xE2\x80\x9C , sagt er .",
                  "\xE2\x80\x9EHallo\xE2\x80\x9C, sagt er.");
    expect_detok("en", "\xE2\x80\x9C Hello \xE2\x80\x9D , he said .",
                  "\xE2\x80\x9CHello\xE2\x80\x9D, he said.");
    expect_detok("de", "ein \xE2\x80\x9E Open \xE2\x80\x9C -Schild",
                  "ein \xE2\x80\x9EOpen\xE2\x80\x9C-Schild");
}

static void test_detok_clitics(void)
{
    expect_detok("en", "It 's a dog 's life .", "It's a dog's life.");
    expect_detok("en", "I don 't know", "I don't know");
    expect_detok("en", "I do n't know", "I don't know");
    expect_detok("en", "the 1990 's", "the 1990's");
}

static void test_detok_hyphen_keeps_spaces(void)
{
    expect_detok("en", "cats - and dogs", "cats - and dogs");
    expect_detok("de", "Zwei Kerle \xE2\x80\x93 einer in Rot", "Zwei Kerle \xE2\x80\x93 einer in Rot");
}

static void test_detok_skips_empty_tokens(void)
{
    const char *tokens[] = {"a", "", NULL, "b", "."};
    char *s = tok_detokenize(tokens, 5, "en");

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "a b.");
    free(s);

    s = tok_detokenize(NULL, 0, "en");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
}

/* ---- Round trips ---- */

static void test_round_trip_table(void)
{
    static const struct {
        const char *lang, *text;
    } cases[] = {
        {"en", "A man in an orange hat starring at something."},
        {"en", "Two girls (one dressed in blue, and one dressed in pink) are racing."},
        {"en", "A woman on a boat named \"El Corazon\" drops black weights into the water."},
        {"en", "A man in a red shirt walks past a food place called \"32 De Neude.\""},
        {"en", "A man trimming a palm tree inside a patio-type cafe'."},
        {"en", "It's 10:30, and the kids' toys cost $5.50 - not 1,000 dollars!"},
        {"en", "Mr. Smith doesn't like the U.S. team's 'Grand Opening' sign."},
        {"en", "Texas A&M's player wears #5; the Q&A starts... now?"},
        {"de", "Ein Boston Terrier läuft über saftig-grünes Gras vor einem weißen Zaun."},
        {"de", "Zwei Jungen essen ihr McDonald's-Menü im Außenbereich, umgeben von Leuten."},
        {"de", "Eine Frau hält einen großen Scheck für \"Kids' Food Basket\"."},
        {"de", "Auf dem Schild steht: \xE2\x80\x9EWelcome Bikers\xE2\x80\x9C."},
        {"de", "Ein Mann mit einem \xE2\x80\x9Eslow\xE2\x80\x9C-Schild lächelt, z.B. am 3. Oktober."},
        {"de", "Die # 8 von Iowa State streckt den Arm aus (ca. 3,5 Meter)."},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = round_trip(cases[i].text, cases[i].lang);

        check(got && strcmp(got, cases[i].text) == 0, __LINE__, "round trip (%s): got \"%s\"%s",
              cases[i].lang, got ? got : "(NULL)", "");
        free(got);
    }
}

/* Returns the share of lines of a gzip corpus that survive
 * normalize-tokenize-detokenize unchanged, or -1 when the file cannot be
 * read. */
static double corpus_round_trip_rate(const char *path, const char *lang)
{
    gzFile f = gzopen(path, "rb");
    char line[8192];
    size_t total = 0, same = 0;

    if (!f)
        return -1;
    while (gzgets(f, line, sizeof line)) {
        size_t len = strcspn(line, "\r\n");
        char *norm, *back;

        line[len] = '\0';
        norm = text_normalize(line, len, NULL);
        back = norm ? round_trip(norm, lang) : NULL;
        total++;
        same += back && strcmp(back, line) == 0;
        free(norm);
        free(back);
    }
    gzclose(f);
    return total ? (double)same / (double)total : -1;
}

static void check_multi30k(const char *lang)
{
    const char *dir = test_data_dir();
    char path[4096];
    double rate;

    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/multi30k/test_2016_flickr.%s.gz", dir, lang);
    rate = corpus_round_trip_rate(path, lang);
    fprintf(stderr, "\n  round trip %s: %.2f%% of lines unchanged\n", path, 100 * rate);
    CU_ASSERT(rate >= 0);
    CU_ASSERT(rate >= 0.99);
}

static void test_round_trip_multi30k_en(void)
{
    check_multi30k("en");
}

static void test_round_trip_multi30k_de(void)
{
    check_multi30k("de");
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;

    s = CU_add_suite("text_normalize", NULL, NULL);
    CU_add_test(s, "composes NFC", test_normalize_composes_nfc);
    CU_add_test(s, "keeps compatibility forms and case", test_normalize_keeps_compat_and_case);
    CU_add_test(s, "replaces invalid byte", test_normalize_replaces_invalid_byte);
    CU_add_test(s, "truncated sequence", test_normalize_truncated_sequence);
    CU_add_test(s, "overlong and surrogate", test_normalize_overlong_and_surrogate);
    CU_add_test(s, "NUL byte", test_normalize_nul_byte);
    CU_add_test(s, "adds to invalid count", test_normalize_adds_to_count);
    CU_add_test(s, "empty input", test_normalize_empty);

    s = CU_add_suite("tok_tokenize", NULL, NULL);
    CU_add_test(s, "English punctuation", test_tokenize_en_punctuation);
    CU_add_test(s, "English clitics", test_tokenize_en_clitics);
    CU_add_test(s, "numbers", test_tokenize_numbers);
    CU_add_test(s, "English abbreviations", test_tokenize_en_abbreviations);
    CU_add_test(s, "quotes", test_tokenize_quotes);
    CU_add_test(s, "German", test_tokenize_de);
    CU_add_test(s, "whitespace", test_tokenize_whitespace);
    CU_add_test(s, "empty input", test_tokenize_empty_input);
    CU_add_test(s, "other scripts", test_tokenize_other_scripts);
    CU_add_test(s, "invalid UTF-8", test_tokenize_invalid_utf8);
    CU_add_test(s, "appends to list", test_tokenize_appends);
    CU_add_test(s, "no empty tokens", test_tokenize_no_empty_tokens);

    s = CU_add_suite("tok_detokenize", NULL, NULL);
    CU_add_test(s, "punctuation", test_detok_punctuation);
    CU_add_test(s, "quotes", test_detok_quotes);
    CU_add_test(s, "English clitics", test_detok_clitics);
    CU_add_test(s, "hyphen keeps spaces", test_detok_hyphen_keeps_spaces);
    CU_add_test(s, "skips empty tokens", test_detok_skips_empty_tokens);

    s = CU_add_suite("round trip", NULL, NULL);
    CU_add_test(s, "sentence table", test_round_trip_table);
    CU_add_test(s, "Multi30k test_2016 en", test_round_trip_multi30k_en);
    CU_add_test(s, "Multi30k test_2016 de", test_round_trip_multi30k_de);

    return test_run_all();
}
