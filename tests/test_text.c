/* Tests of vocab/text.c: NFC normalization and invalid UTF-8, the
 * Moses-style tokenizer for English and German with its grapheme clusters
 * and protected spans (numbers, URLs, e-mail addresses, emoji), token
 * classification, blank text, the detokenizer, and the
 * tokenize-detokenize round trip on sentence tables and on Multi30k's
 * test_2016_flickr (skipped when the corpus folder is missing). */
#include "testutil.h"
#include "text.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

/* Invisible and combining characters in UTF-8. A string literal that
 * follows one of these must start anew ("10" NBSP "000"), or the hex
 * escape would swallow its digits. */
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define NBSP "\xC2\xA0"             /* U+00A0 no-break space */
#define NNBSP "\xE2\x80\xAF"        /* U+202F narrow no-break space */
#define ZWNJ "\xE2\x80\x8C"         /* U+200C zero width non-joiner */
#define ZWJ "\xE2\x80\x8D"          /* U+200D zero width joiner */
#define LRM "\xE2\x80\x8E"          /* U+200E left-to-right mark */
#define RLM "\xE2\x80\x8F"          /* U+200F right-to-left mark */
#define VS16 "\xEF\xB8\x8F"         /* U+FE0F emoji presentation selector */
#define KEYCAP "\xE2\x83\xA3"       /* U+20E3 combining enclosing keycap */
#define ACUTE "\xCC\x81"             /* U+0301 combining acute accent */
#define CIRCLE "\xE2\x83\x9D"       /* U+20DD combining enclosing circle */
#define FAMILY "👩" ZWJ "👩" ZWJ "👧"    /* one emoji ZWJ sequence */

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
    /* Moses splits "10 : 30" and "50 %", but numbers are protected. */
    expect_tokens("en", "at 10:30 today", "at 10:30 today");
    expect_tokens("en", "1, 2, 3", "1 , 2 , 3");
    expect_tokens("en", "number 5,", "number 5 ,");
    expect_tokens("en", "It costs $5.", "It costs $ 5 .");
    expect_tokens("en", "50% off", "50% off");
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

static void test_tokenize_protected_numbers(void)
{
    expect_tokens("en", "It was 3.5.", "It was 3.5 .");
    expect_tokens("en", "1.5e3 or 2E-7 or 1.5e+3", "1.5e3 or 2E-7 or 1.5e+3");
    expect_tokens("en", "in 2014-2015, at 10:30.", "in 2014-2015 , at 10:30 .");
    expect_tokens("en", "a 3:2 win, 5%.", "a 3:2 win , 5% .");
    expect_tokens("en", "10" NBSP "000 people", "10" NBSP "000 people");
    expect_tokens("en", "1" NNBSP "000" NNBSP "000!", "1" NNBSP "000" NNBSP "000 !");
    expect_tokens("de", "Rabatt von 50" NBSP "%.", "Rabatt von 50" NBSP "% .");
    /* A no-break space elsewhere separates tokens as before. */
    expect_tokens("de", "Nummer" NBSP "28 und 2" NBSP "Finger", "Nummer 28 und 2 Finger");
    expect_tokens("en", "12" NBSP "1234", "12 1234");
    /* Numbers add no splits of their own. */
    expect_tokens("de", "ein 3-jähriger Junge", "ein 3-jähriger Junge");
    expect_tokens("de", "am 3. Oktober", "am 3. Oktober");
    expect_tokens("en", "A4 paper", "A4 paper");
}

static void test_tokenize_urls(void)
{
    expect_tokens("en", "see https://example.org/a?b=1&c=2.", "see https://example.org/a?b=1&c=2 .");
    expect_tokens("en", "(see http://www.example.com/path_(x)/)",
                  "( see http://www.example.com/path_(x)/ )");
    expect_tokens("en", "Visit www.example.org, now", "Visit www.example.org , now");
    expect_tokens("en", "Try HTTPS://Example.org/%C3%BC!", "Try HTTPS://Example.org/%C3%BC !");
    expect_tokens("en", "\"https://example.org/\"", "\" https://example.org/ \"");
    expect_tokens("en", "see ftp://example.org...", "see ftp://example.org ...");
    expect_tokens("en", "mailto:anna@example.de", "mailto:anna@example.de");
    /* A scheme with nothing after it is no URL. */
    expect_tokens("en", "http:// alone", "http : / / alone");
}

static void test_tokenize_emails(void)
{
    expect_tokens("en", "Write to anna.schmidt+news@example.co.uk.",
                  "Write to anna.schmidt+news@example.co.uk .");
    expect_tokens("de", "Kontakt:info@example.de", "Kontakt : info@example.de");
    expect_tokens("en", "(first_last@mail.example.com)", "( first_last@mail.example.com )");
    expect_tokens("en", "ask me@example.com's owner", "ask me@example.com 's owner");
    /* A domain needs two labels. */
    expect_tokens("en", "root@localhost", "root @ localhost");
}

static void test_tokenize_graphemes(void)
{
    expect_tokens("en", "Family: " FAMILY "!", "Family : " FAMILY " !");
    expect_tokens("en", "Nice👍🏽.", "Nice 👍🏽 .");
    expect_tokens("en", "🇩🇪🇫🇷 and 🇩🇪 🇫🇷", "🇩🇪🇫🇷 and 🇩🇪 🇫🇷");
    expect_tokens("en", "I ❤" VS16 "😀😀, yes", "I ❤" VS16 "😀😀 , yes");
    expect_tokens("en", "press 1" VS16 KEYCAP " or #" VS16 KEYCAP,
                  "press 1" VS16 KEYCAP " or #" VS16 KEYCAP);
    /* Punctuation keeps the combining marks it carries. */
    expect_tokens("en", "Really?" CIRCLE " (" ACUTE "x)", "Really ?" CIRCLE " (" ACUTE " x )");
    expect_tokens(NULL, "Приве" ACUTE "т, мир.", "Приве" ACUTE "т , мир .");
    expect_tokens(NULL, "Ẹ kú àárọ̀, ọ̀rẹ́!", "Ẹ kú àárọ̀ , ọ̀rẹ́ !");
    expect_tokens(NULL, "नमस्ते, दुनिया", "नमस्ते , दुनिया");
    expect_tokens(NULL, "אמר: " RLM "שָׁלוֹם" RLM ".", "אמר : " RLM "שָׁלוֹם" RLM " .");
    expect_tokens(NULL, "می" ZWNJ "خواهم بروم.", "می" ZWNJ "خواهم بروم .");
    expect_tokens("de", "Auf" ZWNJ "lage, a" ZWJ "b", "Auf" ZWNJ "lage , a" ZWJ "b");
    /* A mark after whitespace starts a token, since tokens never contain
     * whitespace. */
    expect_tokens("en", "a " ACUTE "b", "a " ACUTE "b");
    expect_tokens("en", "10" NBSP ACUTE "000", "10 " ACUTE "000");
}

/* Whitespace of every kind, alone or mixed, and text that is not blank. */
static const char *const blank_texts[] = {
    "", " ", "\t\n\r", NBSP, NNBSP, "\xE2\x80\xA8\xE2\x80\xA9" /* U+2028 U+2029 */,
    "\xE3\x80\x80" /* U+3000 */, "\xE2\x80\x8B" /* U+200B */, "\xEF\xBB\xBF" /* U+FEFF */,
    " \t" NBSP "\xE3\x80\x80\n" NNBSP " ",
};
static const char *const non_blank_texts[] = {
    "a", " . ", NBSP "1" NBSP, RLM, "\xFF", " " ACUTE, "😀", "\t-\t",
};

static void test_tokenize_whitespace_only(void)
{
    static const char *const langs[] = {"en", "de", NULL};

    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < sizeof blank_texts / sizeof blank_texts[0]; i++) {
            tok_list list = {0};
            char which[64];

            CU_ASSERT_EQUAL(tok_tokenize(blank_texts[i], langs[l], &list), 0);
            snprintf(which, sizeof which, "blank_texts[%zu]", i);
            check(list.count == 0, __LINE__, "%s gave tokens (lang %s)%s", which,
                  langs[l] ? langs[l] : "NULL", "");
            tok_list_clear(&list);
        }
    }
}

/* ---- tok_classify and text_is_blank ---- */

static void test_classify_kinds(void)
{
    static const struct {
        const char *token;
        tok_kind kind;
    } cases[] = {
        {"42", TOK_NUMBER},
        {"-3.5", TOK_NUMBER},
        {"1,000", TOK_NUMBER},
        {"1.000,50", TOK_NUMBER},
        {"10:30", TOK_NUMBER},
        {"2014-2015", TOK_NUMBER},
        {"1.5e3", TOK_NUMBER},
        {"2E-7", TOK_NUMBER},
        {"50%", TOK_NUMBER},
        {"10" NBSP "000", TOK_NUMBER},
        {"50" NBSP "%", TOK_NUMBER},
        {"https://example.org/a?b=1&c=2", TOK_URL},
        {"www.example.org", TOK_URL},
        {"mailto:anna@example.de", TOK_URL},
        {"anna.schmidt+news@example.co.uk", TOK_EMAIL},
        {"😀😀", TOK_EMOJI},
        {FAMILY, TOK_EMOJI},
        {"👍🏽", TOK_EMOJI},
        {"🇩🇪", TOK_EMOJI},
        {"1" VS16 KEYCAP, TOK_EMOJI},
        {"dog", TOK_PLAIN},
        {".", TOK_PLAIN},
        {"3.", TOK_PLAIN},
        {"10:30am", TOK_PLAIN},
        {"A4", TOK_PLAIN},
        {"-", TOK_PLAIN},
        {"1990er", TOK_PLAIN},
        {"http://", TOK_PLAIN},
        {"root@localhost", TOK_PLAIN},
        {"😀a", TOK_PLAIN},
        {"", TOK_PLAIN},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[16], want[16];

        snprintf(got, sizeof got, "%d", (int)tok_classify(cases[i].token));
        snprintf(want, sizeof want, "%d", (int)cases[i].kind);
        check(strcmp(got, want) == 0, __LINE__, "tok_classify(\"%s\") = %s, expected %s",
              cases[i].token, got, want);
    }
    CU_ASSERT_EQUAL(tok_classify(NULL), TOK_PLAIN);
}

static void test_classify_protected(void)
{
    CU_ASSERT_TRUE(tok_is_protected("10:30"));
    CU_ASSERT_TRUE(tok_is_protected("www.example.org"));
    CU_ASSERT_TRUE(tok_is_protected("anna@example.de"));
    CU_ASSERT_TRUE(tok_is_protected("🇩🇪"));
    CU_ASSERT_FALSE(tok_is_protected("Haus"));
    CU_ASSERT_FALSE(tok_is_protected(","));
    CU_ASSERT_FALSE(tok_is_protected(NULL));
}

/* text_is_blank(s) is 1 exactly when s tokenizes to nothing. */
static void test_is_blank_matches_tokenizer(void)
{
    for (size_t i = 0; i < sizeof blank_texts / sizeof blank_texts[0]; i++) {
        check(text_is_blank(blank_texts[i]) == 1, __LINE__, "text_is_blank(\"%s\") is not 1%s%s",
              blank_texts[i], "", "");
    }
    for (size_t i = 0; i < sizeof non_blank_texts / sizeof non_blank_texts[0]; i++) {
        tok_list list = {0};

        check(text_is_blank(non_blank_texts[i]) == 0, __LINE__,
              "text_is_blank(\"%s\") is not 0%s%s", non_blank_texts[i], "", "");
        CU_ASSERT_EQUAL(tok_tokenize(non_blank_texts[i], "en", &list), 0);
        check(list.count > 0, __LINE__, "\"%s\" gave no tokens%s%s", non_blank_texts[i], "", "");
        tok_list_clear(&list);
    }
    CU_ASSERT_EQUAL(text_is_blank(NULL), 1);
}

/* ---- tok_detokenize ---- */

static void test_detok_punctuation(void)
{
    expect_detok("en", "Hello , world !", "Hello, world!");
    expect_detok("en", "A man ( in red ) runs .", "A man (in red) runs.");
    expect_detok("en", "Wait ... what ?", "Wait... what?");
    expect_detok("en", "50 % off", "50% off");
    expect_detok("en", "It costs $ 5 .", "It costs $5.");
    expect_detok("de", "Kapitel 3 : 12 Hunde", "Kapitel 3: 12 Hunde");
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

static void test_detok_marks_and_emoji(void)
{
    /* Punctuation with combining marks joins like the bare punctuation. */
    expect_detok("en", "Really ?" CIRCLE " Yes", "Really?" CIRCLE " Yes");
    expect_detok("en", "( " ACUTE "x )", "(" ACUTE "x)");
    /* Emoji, URLs and e-mail addresses stand apart like words. */
    expect_detok("en", "press #" VS16 KEYCAP " now", "press #" VS16 KEYCAP " now");
    expect_detok("en", "Great 👍🏽 !", "Great 👍🏽!");
    expect_detok("en", "( see https://example.org/a_(b) ) .", "(see https://example.org/a_(b)).");
}

/* A currency sign after one amount and before another belongs to the
 * first ("20 €"), so the space before the second amount stays. */
static void test_detok_currency_between_amounts(void)
{
    expect_detok("de", "Der Hut kostet 20 € 25 € mehr", "Der Hut kostet 20 € 25 € mehr");
    expect_detok("en", "It costs 1,000.50 $ 3 times", "It costs 1,000.50 $ 3 times");
    expect_detok("de", "Es kostet € 20", "Es kostet €20");
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

/* Texts that must survive tokenize-detokenize byte for byte, all in NFC. */
static const struct {
    const char *lang, *text;
} hard_cases[] = {
    /* Emoji: ZWJ sequences, skin tones, flags, keycaps, runs. */
    {"en", "Family time " FAMILY " and a thumbs up 👍🏽!"},
    {"en", "Go 🇩🇪🇩🇪 go, and press 1" VS16 KEYCAP " or #" VS16 KEYCAP " now."},
    {"en", "I ❤" VS16 " NY 😀😀, really."},
    /* Combining marks that NFC cannot compose, on letters and on
     * punctuation. */
    {NULL, "Ẹ kú àárọ̀, ọ̀rẹ́! Приве" ACUTE "т, мир."},
    {"en", "Really?" CIRCLE " Yes (x\xE2\x83\x9E)."},
    {NULL, "नमस्ते दुनिया, क्या हाल है?"},
    /* Right-to-left text with marks, and joiners inside words. */
    {NULL, "הוא אמר: " RLM "שָׁלוֹם" RLM "."},
    {"en", "Visit " LRM "www.example.org" LRM " today."},
    {NULL, "می" ZWNJ "خواهم بروم."},
    {"de", "Die Auf" ZWNJ "lage ist neu."},
    /* Numbers, with no-break spaces between digit groups. */
    {"en", "Population: 10" NBSP "000 people, or 10" NNBSP "000."},
    {"de", "Ein Rabatt von 50" NBSP "% für 1" NNBSP "000" NNBSP "000 Menschen."},
    {"en", "It costs 3.5 or 1,000 euros at 10:30 in 2014-2015, about 1.5e3 or 50% more."},
    {"de", "Es kostet 3,50 Euro, also 1.000,00 Euro für 10.000 Stück."},
    /* Currency signs before and after amounts. */
    {"de", "Es kostet 20 € für zwei, $5 für einen und 3 £ mehr."},
    {"en", "The $ sign and the € sign cost $5.50 or €20 each."},
    /* URLs and e-mail addresses next to punctuation. */
    {"en", "see https://example.org/a?b=1&c=2."},
    {"en", "(see http://www.example.com/path_(x)/)"},
    {"en", "Visit www.example.org, or https://example.org/?q=a,b;c."},
    {"en", "Write to anna.schmidt+news@example.co.uk."},
    {"de", "Schreib an (info@example.de) oder mailto:a@b.de heute."},
    /* Quotes, ellipses and apostrophes. */
    {"en", "He said \"hi\" and 'bye' and “yes” and ‘no’ and «oui»."},
    {"de", "Er sagte: „Das ist gut…“ und ging."},
    {"de", "Ein „Open“-Schild und ‚einfache‘ Zeichen."},
    {"en", "Wait... what?! Hmm…"},
    {"en", "It's the dogs' toys, don’t you think?"},
};

static void test_round_trip_hard_cases(void)
{
    for (size_t i = 0; i < sizeof hard_cases / sizeof hard_cases[0]; i++) {
        const char *text = hard_cases[i].text, *lang = hard_cases[i].lang;
        char *nfc = text_normalize(text, strlen(text), NULL);
        char *got = round_trip(text, lang);

        check(nfc && strcmp(nfc, text) == 0, __LINE__, "not NFC: \"%s\"%s%s", text, "", "");
        check(got && strcmp(got, text) == 0, __LINE__, "round trip (%s): got \"%s\"%s",
              lang ? lang : "NULL", got ? got : "(NULL)", "");
        free(nfc);
        free(got);
    }
}

/* Marks in is_break[0..len] the byte offsets of s where an extended
 * grapheme cluster starts, plus len. */
static void grapheme_breaks(const char *s, size_t len, bool *is_break)
{
    utf8proc_int32_t prev = -1, cp, state = 0;

    memset(is_break, 0, (len + 1) * sizeof *is_break);
    for (size_t i = 0; i < len;) {
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, -1, &cp);

        CU_ASSERT_FATAL(k > 0);
        is_break[i] = prev < 0 || utf8proc_grapheme_break_stateful(prev, cp, &state);
        prev = cp;
        i += (size_t)k;
    }
    is_break[len] = true;
}

/* Checks that the tokens of text are, in order, substrings of text with
 * only whitespace between them, and that each starts and ends on a
 * grapheme cluster boundary. */
static void check_token_boundaries(const char *text, const char *lang)
{
    size_t len = strlen(text), pos = 0;
    bool *is_break = malloc(len + 1);
    tok_list list = {0};

    CU_ASSERT_FATAL(is_break != NULL);
    grapheme_breaks(text, len, is_break);
    CU_ASSERT_EQUAL(tok_tokenize(text, lang, &list), 0);
    for (size_t k = 0; k < list.count; k++) {
        const char *t = list.items[k], *found = strstr(text + pos, t);
        size_t start = found ? (size_t)(found - text) : len, t_len = strlen(t);
        char *gap = strndup(text + pos, start - pos);

        check(found != NULL, __LINE__, "token [%s] not found in order in \"%s\"%s", t, text, "");
        check(text_is_blank(gap), __LINE__, "text [%s] before token [%s] was dropped in \"%s\"",
              gap, t, text);
        free(gap);
        if (!found)
            break;
        check(is_break[start], __LINE__, "token [%s] starts inside a cluster of \"%s\"%s", t,
              text, "");
        check(is_break[start + t_len], __LINE__, "token [%s] ends inside a cluster of \"%s\"%s",
              t, text, "");
        pos = start + t_len;
    }
    check(text_is_blank(text + pos), __LINE__, "text after the last token dropped in \"%s\"%s%s",
          text, "", "");
    tok_list_clear(&list);
    free(is_break);
}

static void test_tokens_keep_graphemes(void)
{
    static const char *const extra[] = {
        FAMILY FAMILY "!" FAMILY,
        "(👍🏽)",
        "'?" CIRCLE "'",
        "\"" ACUTE "x\"" ACUTE,
        ".." ACUTE ".",
        "x." ACUTE,
        "🇩🇪🇫🇷🇮",
        "a" ZWJ "," ZWNJ "b",
        "5" ACUTE "%",
    };

    for (size_t i = 0; i < sizeof hard_cases / sizeof hard_cases[0]; i++)
        check_token_boundaries(hard_cases[i].text, hard_cases[i].lang);
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        check_token_boundaries(extra[i], "en");
        check_token_boundaries(extra[i], "de");
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
    CU_add_test(s, "protected numbers", test_tokenize_protected_numbers);
    CU_add_test(s, "URLs", test_tokenize_urls);
    CU_add_test(s, "e-mail addresses", test_tokenize_emails);
    CU_add_test(s, "grapheme clusters", test_tokenize_graphemes);
    CU_add_test(s, "whitespace only", test_tokenize_whitespace_only);

    s = CU_add_suite("tok_classify and text_is_blank", NULL, NULL);
    CU_add_test(s, "token kinds", test_classify_kinds);
    CU_add_test(s, "tok_is_protected", test_classify_protected);
    CU_add_test(s, "blank iff no tokens", test_is_blank_matches_tokenizer);

    s = CU_add_suite("tok_detokenize", NULL, NULL);
    CU_add_test(s, "punctuation", test_detok_punctuation);
    CU_add_test(s, "quotes", test_detok_quotes);
    CU_add_test(s, "English clitics", test_detok_clitics);
    CU_add_test(s, "hyphen keeps spaces", test_detok_hyphen_keeps_spaces);
    CU_add_test(s, "marks and emoji", test_detok_marks_and_emoji);
    CU_add_test(s, "skips empty tokens", test_detok_skips_empty_tokens);
    CU_add_test(s, "currency between amounts", test_detok_currency_between_amounts);

    s = CU_add_suite("round trip", NULL, NULL);
    CU_add_test(s, "sentence table", test_round_trip_table);
    CU_add_test(s, "hard cases", test_round_trip_hard_cases);
    CU_add_test(s, "tokens keep grapheme clusters", test_tokens_keep_graphemes);
    CU_add_test(s, "Multi30k test_2016 en", test_round_trip_multi30k_en);
    CU_add_test(s, "Multi30k test_2016 de", test_round_trip_multi30k_de);

    return test_run_all();
}
