/* Tests of vocab/sentence.c. Hand cases cover sentence ends in English and
 * German, abbreviations, initials and numbers, URLs and e-mail addresses,
 * quotes and brackets, whitespace between sentences, CJK text, emoji and
 * combining marks. Property tests check the span list's contract on
 * ill-formed UTF-8, on every prefix of a mixed text and on random text.
 * The single-sentence captions of Multi30k's test_2016_flickr must stay
 * whole (skipped when the corpus folder is missing). */
#include "sentence.h"
#include "testutil.h"
#include "text.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

#define NBSP "\xC2\xA0"         /* U+00A0 no-break space */
#define ZWSP "\xE2\x80\x8B"     /* U+200B zero width space */
#define ZWJ "\xE2\x80\x8D"      /* U+200D zero width joiner */
#define ACUTE "\xCC\x81"        /* U+0301 combining acute accent */
#define CIRCLE "\xE2\x83\x9D"   /* U+20DD combining enclosing circle */
#define SKIN_TONE "\xF0\x9F\x8F\xBD" /* U+1F3FD emoji modifier type 4 */

/* Records a check under the caller's line with a readable message, which
 * CUnit copies. */
static void check(int ok, int line, const char *fmt, const char *a, const char *b, const char *c)
{
    char msg[1024];

    snprintf(msg, sizeof msg, fmt, a, b, c);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}

/* Returns the offsets in text[0..len) where an extended grapheme cluster
 * starts, with len itself, as a malloc'd array of flags indexed by byte.
 * An ill-formed byte is read as U+FFFD, as the splitter does. */
static bool *cluster_starts(const char *text, size_t len)
{
    bool *starts = calloc(len + 1, sizeof *starts);
    int32_t prev = 0, state = 0;

    for (size_t pos = 0; pos < len;) {
        int32_t cp;
        utf8proc_ssize_t left = len - pos < 4 ? (utf8proc_ssize_t)(len - pos) : 4;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)text + pos, left, &cp);

        if (k <= 0) {
            cp = 0xFFFD;
            k = 1;
        }
        starts[pos] = pos == 0 || utf8proc_grapheme_break_stateful(prev, cp, &state);
        prev = cp;
        pos += (size_t)k;
    }
    starts[len] = true;
    return starts;
}

/* Returns whether text[start..end) is blank by text_is_blank's rules, which
 * count NUL as a control character. */
static bool is_blank_range(const char *text, size_t start, size_t end)
{
    char *copy = malloc(end - start + 1);
    bool blank;

    for (size_t i = start; i < end; i++)
        copy[i - start] = text[i] ? text[i] : ' ';
    copy[end - start] = '\0';
    blank = text_is_blank(copy);
    free(copy);
    return blank;
}

/* Checks the contract of a span list for text[0..len): spans in order,
 * inside the text, non-empty, on grapheme cluster boundaries, with only
 * whitespace between and around them, and neither starting nor ending with
 * a blank cluster. Returns the number of failed checks. */
static int check_invariants(int line, const char *text, size_t len, const sentence_span *spans,
                            size_t count)
{
    bool *starts = cluster_starts(text, len);
    size_t prev_end = 0;
    int failures = 0;

    for (size_t i = 0; i <= count; i++) {
        size_t start = i < count ? spans[i].start : len;
        size_t end = i < count ? spans[i].start + spans[i].len : len;
        size_t first_end, last_start;
        bool ok;

        ok = start >= prev_end && end <= len && start <= end;
        failures += !ok;
        check(ok, line, "span out of order or out of bounds in \"%s\"%s%s", text, "", "");
        if (!ok)
            break;
        ok = is_blank_range(text, prev_end, start);
        failures += !ok;
        check(ok, line, "non-blank bytes between spans in \"%s\"%s%s", text, "", "");
        prev_end = end;
        if (i == count)
            break;

        ok = spans[i].len > 0 && starts[start] && starts[end];
        failures += !ok;
        check(ok, line, "span empty or inside a grapheme cluster in \"%s\"%s%s", text, "", "");
        if (!ok)
            continue;
        for (first_end = start + 1; !starts[first_end]; first_end++)
            ;
        for (last_start = end - 1; !starts[last_start]; last_start--)
            ;
        ok = !is_blank_range(text, start, first_end) && !is_blank_range(text, last_start, end);
        failures += !ok;
        check(ok, line, "span not trimmed in \"%s\"%s%s", text, "", "");
    }
    free(starts);
    return failures;
}

/* Checks that text splits into the NULL-terminated list expected. */
static void expect_split_at(int line, const char *text, const char *const *expected)
{
    sentence_span *spans = NULL;
    size_t len = strlen(text), want = 0;
    size_t count = sentence_split(text, len, &spans);
    char got_count[32], want_count[32];

    while (expected[want])
        want++;
    CU_ASSERT_FATAL(count != (size_t)-1);
    snprintf(got_count, sizeof got_count, "%zu", count);
    snprintf(want_count, sizeof want_count, "%zu", want);
    check(count == want, line, "\"%s\" gave %s spans, expected %s", text, got_count, want_count);
    for (size_t i = 0; i < count && i < want; i++) {
        char *got = strndup(text + spans[i].start, spans[i].len);

        check(strcmp(got, expected[i]) == 0, line, "span of \"%s\": got [%s], expected [%s]", text,
              got, expected[i]);
        free(got);
    }
    check_invariants(line, text, len, spans, count);
    free(spans);
}
#define expect_split(text, ...) \
    expect_split_at(__LINE__, text, (const char *const[]){__VA_ARGS__, NULL})
#define expect_one(text) expect_split(text, text)

/* ---- Sentence ends ---- */

static void test_english_basic(void)
{
    expect_split("Hello world. This is a test.", "Hello world.", "This is a test.");
    expect_split("Is it? Yes! It is.", "Is it?", "Yes!", "It is.");
    expect_split("Wait... What?! Really?? Fine.", "Wait...", "What?!", "Really??", "Fine.");
    expect_split("Wait\xE2\x80\xA6 What\xE2\x80\xBC Fine.", "Wait\xE2\x80\xA6", "What\xE2\x80\xBC",
                 "Fine.");
    expect_split("It was 1990. 2000 came next.", "It was 1990.", "2000 came next.");
    expect_split("Tokenized text . This is it .", "Tokenized text .", "This is it .");
}

static void test_lowercase_continues(void)
{
    expect_one("Hello. world");
    expect_one("What? no way!");
    expect_one("Wait... and then it rained.");
    expect_one("Hello! (see below) more.");
    expect_one("It rained.And then it stopped.");
}

static void test_english_abbreviations(void)
{
    expect_one("Mr. Smith and Mrs. Jones met Dr. Brown.");
    expect_one("Prof. Green lives on St. Mary Street.");
    expect_one("Germany vs. France ended 2:1.");
    expect_one("Fruit, e.g. Apples, and the rest, i.e. Pears.");
    expect_one("Smith et al. (2019) showed it.");
    expect_one("See Fig. 3 and No. 5 on Jan. 12.");
    expect_split("No. That is wrong.", "No.", "That is wrong.");
    expect_split("Apples, pears etc. The end.", "Apples, pears etc.", "The end.");
    expect_one("Apples, pears etc. and more.");
    expect_split("We met Mr. Smith. He was late.", "We met Mr. Smith.", "He was late.");
}

static void test_german_abbreviations(void)
{
    expect_one("Das ist z.B. Obst und z. B. Gem\xC3\xBCse.");
    expect_one("Prof. Dr. Meier, Hr. Kurz und Fr. Lang kamen.");
    expect_one("Sie a\xC3\x9F" "en ca. 5 \xC3\x84pfel bzw. Birnen, u.a. Kirschen.");
    expect_one("Das ist Nr. 5 d.h. Die f\xC3\xBCnfte.");
    expect_one("Das kostet 5 Mio. Euro.");
    expect_split("Wir kaufen \xC3\x84pfel, Birnen usw. Dann gehen wir.",
                 "Wir kaufen \xC3\x84pfel, Birnen usw.", "Dann gehen wir.");
    expect_one("Wir kaufen \xC3\x84pfel, Birnen usw. und gehen.");
    expect_split("Ein Tisch o.\xC3\xA4. Das war alles.", "Ein Tisch o.\xC3\xA4.",
                 "Das war alles.");
}

static void test_initials(void)
{
    expect_one("J. Smith met J. R. R. Tolkien.");
    expect_one("He lives in the U.S. and works there.");
    expect_split("J. Smith left. B. Jones stayed.", "J. Smith left.", "B. Jones stayed.");
}

static void test_numbers(void)
{
    expect_one("It costs 3.5 euros.");
    expect_split("It costs 3.5. Then 4.", "It costs 3.5.", "Then 4.");
    expect_split("Version 2.0. Update now.", "Version 2.0.", "Update now.");
    expect_one("Er kommt am 1. Mai wieder.");
    expect_one("Er wurde am 3. Oktober 1990 geboren.");
    expect_one("Sie lebte im 19. Jahrhundert in Wien.");
    expect_one("Das war am 3. und 4. Juni.");
    expect_split("Es war 1990. Dann kam 2000.", "Es war 1990.", "Dann kam 2000.");
    expect_split("Item 1. 2 apples follow.", "Item 1.", "2 apples follow.");
    expect_split("Er kam um 5. Danach ging er.", "Er kam um 5.", "Danach ging er.");
}

static void test_urls_and_emails(void)
{
    expect_one("See https://example.org/a.b?c=1.2 for details.");
    expect_split("See www.example.org. Then write.", "See www.example.org.", "Then write.");
    expect_split("Write to anna.schmidt@example.de. Thanks!",
                 "Write to anna.schmidt@example.de.", "Thanks!");
    expect_split("Is it at https://example.org/? Yes.", "Is it at https://example.org/?", "Yes.");
}

static void test_quotes_and_brackets(void)
{
    expect_split("He said: \"Stop.\" Then he left.", "He said: \"Stop.\"", "Then he left.");
    expect_split("Er sagte: \xE2\x80\x9EHallo.\xE2\x80\x9C Dann ging er.",
                 "Er sagte: \xE2\x80\x9EHallo.\xE2\x80\x9C", "Dann ging er.");
    expect_split("Er sagte: \xC2\xBBNein.\xC2\xAB Dann ging er.",
                 "Er sagte: \xC2\xBBNein.\xC2\xAB", "Dann ging er.");
    expect_split("It ended. (Not really.) Fine.", "It ended.", "(Not really.)", "Fine.");
    expect_split("The end. \"Next\" starts.", "The end.", "\"Next\" starts.");
    expect_split("Hi! \xC2\xBFQu\xC3\xA9 tal? \xC2\xA1" "Bien!", "Hi!", "\xC2\xBFQu\xC3\xA9 tal?",
                 "\xC2\xA1" "Bien!");
    expect_split("The end. \"... and more\" came.", "The end.", "\"... and more\" came.");
    expect_one("The end. \"and more\" came.");
}

static void test_run_at_sentence_start(void)
{
    expect_split("... and then. Then more.", "... and then.", "Then more.");
    expect_one("!!! Wow");
}

/* ---- Whitespace ---- */

static void test_spaces_kept_between(void)
{
    const char *text = "Done.   Two spaces.\tTab." NBSP "No-break.  ";
    sentence_span *spans;
    size_t n = sentence_split(text, strlen(text), &spans);

    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_EQUAL(spans[0].start, 0);
    CU_ASSERT_EQUAL(spans[0].len, 5);
    CU_ASSERT_EQUAL(spans[1].start, 8);
    CU_ASSERT_EQUAL(spans[1].len, 11);
    CU_ASSERT_EQUAL(spans[2].start, 20);
    CU_ASSERT_EQUAL(spans[2].len, 4);
    CU_ASSERT_EQUAL(spans[3].start, 26);
    CU_ASSERT_EQUAL(spans[3].len, 9);
    CU_ASSERT_EQUAL(spans[3].start + spans[3].len, strlen(text) - 2);
    check_invariants(__LINE__, text, strlen(text), spans, n);
    free(spans);
}

static void test_trims_spans(void)
{
    expect_split("   Leading and trailing.   Next.   ", "Leading and trailing.", "Next.");
    expect_split(ZWSP "Hidden start. Next." ZWSP, "Hidden start.", "Next.");
    expect_one("No terminal punctuation");
}

static void test_blank_text(void)
{
    const char *blanks[] = {"", " ", "   \t ", NBSP, ZWSP, "\xEF\xBB\xBF" " ", "\x01"};
    static sentence_span sentinel;
    sentence_span *spans;

    for (size_t i = 0; i < sizeof blanks / sizeof blanks[0]; i++) {
        size_t n;

        spans = &sentinel;
        n = sentence_split(blanks[i], strlen(blanks[i]), &spans);
        check(n == 0, __LINE__, "blank text \"%s\" gave spans%s%s", blanks[i], "", "");
        check(spans == NULL, __LINE__, "blank text \"%s\" left *spans set%s%s", blanks[i], "", "");
    }
    spans = &sentinel;
    CU_ASSERT_EQUAL(sentence_split(NULL, 0, &spans), 0);
    CU_ASSERT_PTR_NULL(spans);
}

static void test_reads_only_len_bytes(void)
{
    const char text[] = "Hello. World.";
    sentence_span *spans;
    size_t n = sentence_split(text, 6, &spans);

    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(spans[0].start, 0);
    CU_ASSERT_EQUAL(spans[0].len, 6);
    free(spans);
}

/* ---- Other scripts, emoji and combining marks ---- */

static void test_cjk(void)
{
    expect_split("\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82\xE6\x88\x91\xE5\xBE\x88\xE5\xA5\xBD"
                 "\xEF\xBC\x81\xE4\xBD\xA0\xE5\x91\xA2\xEF\xBC\x9F",
                 "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82",             /* 你好。 */
                 "\xE6\x88\x91\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x81", /* 我很好！ */
                 "\xE4\xBD\xA0\xE5\x91\xA2\xEF\xBC\x9F");            /* 你呢？ */
    /* 他说：“你好。”我很好。 splits after the closing quote. */
    expect_split("\xE4\xBB\x96\xE8\xAF\xB4\xEF\xBC\x9A\xE2\x80\x9C\xE4\xBD\xA0\xE5\xA5\xBD"
                 "\xE3\x80\x82\xE2\x80\x9D\xE6\x88\x91\xE5\xBE\x88\xE5\xA5\xBD\xE3\x80\x82",
                 "\xE4\xBB\x96\xE8\xAF\xB4\xEF\xBC\x9A\xE2\x80\x9C\xE4\xBD\xA0\xE5\xA5\xBD"
                 "\xE3\x80\x82\xE2\x80\x9D",
                 "\xE6\x88\x91\xE5\xBE\x88\xE5\xA5\xBD\xE3\x80\x82");
    /* 「はい。」と言った。 is one sentence: と continues it. */
    expect_one("\xE3\x80\x8C\xE3\x81\xAF\xE3\x81\x84\xE3\x80\x82\xE3\x80\x8D\xE3\x81\xA8"
               "\xE8\xA8\x80\xE3\x81\xA3\xE3\x81\x9F\xE3\x80\x82");
    /* 你好。Dr. Smith came. The abbreviation starts after the CJK split. */
    expect_split("\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82" "Dr. Smith came.",
                 "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82", "Dr. Smith came.");
    /* はい。これは本です。 splits before the Hiragana without a quote. */
    expect_split("\xE3\x81\xAF\xE3\x81\x84\xE3\x80\x82\xE3\x81\x93\xE3\x82\x8C\xE3\x81\xAF"
                 "\xE6\x9C\xAC\xE3\x81\xA7\xE3\x81\x99\xE3\x80\x82",
                 "\xE3\x81\xAF\xE3\x81\x84\xE3\x80\x82",
                 "\xE3\x81\x93\xE3\x82\x8C\xE3\x81\xAF\xE6\x9C\xAC\xE3\x81\xA7\xE3\x81\x99"
                 "\xE3\x80\x82");
}

static void test_other_scripts(void)
{
    expect_split("\xCE\xA4\xCE\xAD\xCE\xBB\xCE\xBF\xCF\x82. \xCE\x91\xCF\x81\xCF\x87\xCE\xAE.",
                 "\xCE\xA4\xCE\xAD\xCE\xBB\xCE\xBF\xCF\x82.", "\xCE\x91\xCF\x81\xCF\x87\xCE\xAE.");
    expect_split("\xD0\x9A\xD0\xBE\xD0\xBD\xD0\xB5\xD1\x86. \xD0\x9D\xD0\xB0\xD1\x87\xD0\xB0"
                 "\xD0\xBB\xD0\xBE.",
                 "\xD0\x9A\xD0\xBE\xD0\xBD\xD0\xB5\xD1\x86.",
                 "\xD0\x9D\xD0\xB0\xD1\x87\xD0\xB0\xD0\xBB\xD0\xBE.");
    /* Arabic question mark, then a caseless letter. */
    expect_split("\xD9\x85\xD8\xA7\xD8\xB0\xD8\xA7\xD8\x9F \xD9\x84\xD8\xA7.",
                 "\xD9\x85\xD8\xA7\xD8\xB0\xD8\xA7\xD8\x9F", "\xD9\x84\xD8\xA7.");
}

static void test_emoji_near_punctuation(void)
{
    expect_split("Great \xF0\x9F\x91\x8D" SKIN_TONE ". See you.",
                 "Great \xF0\x9F\x91\x8D" SKIN_TONE ".", "See you.");
    expect_split("Family \xF0\x9F\x91\xA9" ZWJ "\xF0\x9F\x91\xA9" ZWJ "\xF0\x9F\x91\xA7! Nice.",
                 "Family \xF0\x9F\x91\xA9" ZWJ "\xF0\x9F\x91\xA9" ZWJ "\xF0\x9F\x91\xA7!", "Nice.");
    expect_split("Wow!\xF0\x9F\x98\x80 Next one.", "Wow!\xF0\x9F\x98\x80", "Next one.");
    expect_split("Flag \xF0\x9F\x87\xA9\xF0\x9F\x87\xAA. Next.",
                 "Flag \xF0\x9F\x87\xA9\xF0\x9F\x87\xAA.", "Next.");
    expect_one("Thanks! \xF0\x9F\x98\x80");
}

static void test_combining_marks(void)
{
    /* A mark on the terminator: the cluster ends the sentence as a whole. */
    expect_split("End." ACUTE " Next.", "End." ACUTE, "Next.");
    expect_split("Really?" CIRCLE " Yes.", "Really?" CIRCLE, "Yes.");
    /* Decomposed letters before and after the break. */
    expect_split("Cafe" ACUTE ". E" ACUTE "clair.", "Cafe" ACUTE ".", "E" ACUTE "clair.");
    /* A space carrying a mark is one cluster, which no split may cut. */
    expect_one("End. " ACUTE "Next.");
    expect_split("End.  " ACUTE "Next.", "End.  " ACUTE "Next.");
}

/* ---- Ill-formed input and invariants ---- */

static void test_invalid_utf8(void)
{
    const char *cases[] = {
        "Bad \xFF\xFE. Next \xC3. Last.",
        "\xC3",
        "\xE2\x80",
        ". \xF0\x9F\x98",
        "Ende.\xE2\x80 \xC3\x84rger.",
        "\xED\xA0\x80. Surrogate.",
        "\xC0\xAE. Overlong dot.",
        "\x80\x80\x80 ... \xBF.",
    };

    expect_split("Bad \xFF\xFE. Next \xC3. Last.", "Bad \xFF\xFE.", "Next \xC3.", "Last.");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sentence_span *spans;
        size_t n = sentence_split(cases[i], strlen(cases[i]), &spans);

        CU_ASSERT_FATAL(n != (size_t)-1);
        CU_ASSERT_EQUAL(check_invariants(__LINE__, cases[i], strlen(cases[i]), spans, n), 0);
        free(spans);
    }
}

/* Every prefix of a text that mixes multi-byte characters and sentence
 * ends, so that sequences are cut at every byte. */
static void test_every_prefix(void)
{
    const char *text = "Dr. M\xC3\xBCller kam. \xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82 Er "
                       "sagte \xE2\x80\x9EJa!\xE2\x80\x9C \xF0\x9F\x91\x8D" SKIN_TONE " Gut" ACUTE
                       "." NBSP "Ende\xE2\x80\xA6";
    size_t len = strlen(text);

    for (size_t n = 0; n <= len; n++) {
        char *prefix = malloc(n ? n : 1);
        sentence_span *spans;
        size_t count;

        /* An exact-size copy, so that reading past n would read outside
         * the allocation and show under a memory checker. */
        memcpy(prefix, text, n);
        count = sentence_split(prefix, n, &spans);
        CU_ASSERT_FATAL(count != (size_t)-1);
        CU_ASSERT_EQUAL(check_invariants(__LINE__, text, n, spans, count), 0);
        free(spans);
        free(prefix);
    }
}

/* xorshift64: a fixed, portable random sequence. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void test_random_text_invariants(void)
{
    /* Pieces that meet at sentence ends, plus random single bytes. */
    static const char *const pieces[] = {
        ".", "!", "?", "...", " ", "  ", "\t", NBSP, ZWSP, "A", "a", "Dr", "z.B", "1", "19",
        "\"", "\xE2\x80\x9C", "(", ")", "\xE3\x80\x82", "\xEF\xBC\x81", ACUTE, CIRCLE, ZWJ,
        "\xF0\x9F\x91\x8D", SKIN_TONE, "\xF0\x9F\x87\xA9", "\xC3\x89", "Mai", "www.x.de",
        "\xE4\xBD\xA0", "\xC2\xBF",
    };
    const size_t n_pieces = sizeof pieces / sizeof pieces[0];
    uint64_t state = 0x5EED5EED12345678ULL;
    int failures = 0;
    size_t total_spans = 0;

    for (int round = 0; round < 3000 && failures == 0; round++) {
        char text[512];
        size_t len = 0, n_parts = next_random(&state) % 40;
        sentence_span *spans;
        size_t count;

        for (size_t i = 0; i < n_parts; i++) {
            uint64_t r = next_random(&state);

            if (r % 8 == 0) {
                text[len++] = (char)(r >> 8);
            } else {
                const char *p = pieces[(r >> 8) % n_pieces];

                memcpy(text + len, p, strlen(p));
                len += strlen(p);
            }
        }
        text[len] = '\0'; /* for failure messages; sentence_split reads len bytes */
        count = sentence_split(text, len, &spans);
        CU_ASSERT_FATAL(count != (size_t)-1);
        failures += check_invariants(__LINE__, text, len, spans, count);
        total_spans += count;
        free(spans);
    }
    CU_ASSERT_EQUAL(failures, 0);
    /* The generator must reach sentence ends, or the test checks little. */
    CU_ASSERT(total_spans > 3000);
}

/* ---- Corpus ---- */

/* Multi30k's test captions are one sentence each, so a split in one of
 * them is almost always a false sentence end. */
static void check_multi30k(const char *lang)
{
    const char *dir = test_data_dir();
    char path[4096], line[8192];
    size_t lines = 0, single = 0;
    gzFile in;

    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/multi30k/test_2016_flickr.%s.gz", dir, lang);
    in = gzopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    while (gzgets(in, line, sizeof line)) {
        size_t len = strcspn(line, "\r\n");
        sentence_span *spans;
        size_t n = sentence_split(line, len, &spans);

        lines++;
        single += n == 1;
        if (n != 1)
            fprintf(stderr, "\n  %zu spans: %.*s", n, (int)len, line);
        free(spans);
    }
    gzclose(in);
    fprintf(stderr, "\n  %s: %zu of %zu lines are one sentence\n", path, single, lines);
    CU_ASSERT_EQUAL(lines, 1000);
    CU_ASSERT(single >= lines * 99 / 100);
}

static void test_multi30k_en(void)
{
    check_multi30k("en");
}

static void test_multi30k_de(void)
{
    check_multi30k("de");
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;

    s = CU_add_suite("sentence_split ends", NULL, NULL);
    CU_add_test(s, "English basics", test_english_basic);
    CU_add_test(s, "lowercase continues", test_lowercase_continues);
    CU_add_test(s, "English abbreviations", test_english_abbreviations);
    CU_add_test(s, "German abbreviations", test_german_abbreviations);
    CU_add_test(s, "initials", test_initials);
    CU_add_test(s, "numbers and ordinals", test_numbers);
    CU_add_test(s, "URLs and e-mail addresses", test_urls_and_emails);
    CU_add_test(s, "quotes and brackets", test_quotes_and_brackets);
    CU_add_test(s, "run at sentence start", test_run_at_sentence_start);

    s = CU_add_suite("sentence_split whitespace", NULL, NULL);
    CU_add_test(s, "spaces kept between", test_spaces_kept_between);
    CU_add_test(s, "trims spans", test_trims_spans);
    CU_add_test(s, "blank text", test_blank_text);
    CU_add_test(s, "reads only len bytes", test_reads_only_len_bytes);

    s = CU_add_suite("sentence_split scripts", NULL, NULL);
    CU_add_test(s, "CJK", test_cjk);
    CU_add_test(s, "Greek, Cyrillic, Arabic", test_other_scripts);
    CU_add_test(s, "emoji near punctuation", test_emoji_near_punctuation);
    CU_add_test(s, "combining marks", test_combining_marks);

    s = CU_add_suite("sentence_split robustness", NULL, NULL);
    CU_add_test(s, "invalid UTF-8", test_invalid_utf8);
    CU_add_test(s, "every prefix", test_every_prefix);
    CU_add_test(s, "random text invariants", test_random_text_invariants);

    s = CU_add_suite("sentence_split corpus", NULL, NULL);
    CU_add_test(s, "Multi30k test_2016 en", test_multi30k_en);
    CU_add_test(s, "Multi30k test_2016 de", test_multi30k_de);

    return test_run_all();
}
