/* Tests of service/html_text.c. Hand cases check how html_split cuts tags,
 * comments, doctypes, CDATA, processing instructions and script and style
 * content from text. Its pieces must give back the input byte for byte on
 * a table of hard cases and on random bytes. The rest covers the decoding
 * and encoding of character references. */
#include "html_text.h"
#include "testutil.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records a check under the caller's line with a readable message, which
 * CUnit copies. */
static void check(int ok, int line, const char *fmt, const char *a, const char *b, const char *c)
{
    char msg[1024];

    snprintf(msg, sizeof msg, fmt, a, b, c);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}

/* ---- html_split ---- */

/* Returns html[0..len) for a failure message: bytes outside printable
 * ASCII as \xHH, cut after 100 input bytes. The buffer is static, so the
 * result is valid until the next call. */
static const char *printable(const char *html, size_t len)
{
    static char buf[512];
    size_t n = 0;

    for (size_t i = 0; i < len && i < 100; i++) {
        unsigned char c = (unsigned char)html[i];

        if (c >= 0x20 && c < 0x7F)
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\\x%02X", c);
    }
    if (len > 100)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "...");
    buf[n] = '\0';
    return buf;
}

/* Checks the contract of a piece list for html[0..len): the pieces are
 * contiguous from 0 to len, none is empty, and no two text pieces are
 * adjacent. Returns the number of failed checks. */
static int check_pieces(int line, const char *html, size_t len, const html_piece *pieces,
                        size_t count)
{
    const char *printable_input = printable(html, len);
    size_t pos = 0;
    int failures = 0;

    for (size_t i = 0; i < count; i++) {
        bool contiguous = pieces[i].start == pos;
        bool non_empty = pieces[i].len > 0;
        bool text_split = i > 0 && pieces[i].is_text && pieces[i - 1].is_text;

        failures += !contiguous + !non_empty + text_split;
        check(contiguous, line, "piece does not start where the last ended in \"%s\"%s%s",
              printable_input, "", "");
        check(non_empty, line, "empty piece in \"%s\"%s%s", printable_input, "", "");
        check(!text_split, line, "adjacent text pieces in \"%s\"%s%s", printable_input, "", "");
        pos = pieces[i].start + pieces[i].len;
    }
    failures += pos != len;
    check(pos == len, line, "pieces do not reach the end of \"%s\"%s%s", printable_input, "", "");
    return failures;
}

/* Returns the pieces concatenated, as a malloc'd buffer of the input's
 * length. */
static char *concatenate(const char *html, const html_piece *pieces, size_t count, size_t *len)
{
    char *out;

    *len = 0;
    for (size_t i = 0; i < count; i++)
        *len += pieces[i].len;
    out = malloc(*len + 1);
    *len = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(out + *len, html + pieces[i].start, pieces[i].len);
        *len += pieces[i].len;
    }
    return out;
}

/* Checks that html splits into expected, which lists the pieces as "T:"
 * (text) or "M:" (markup) followed by the bytes, NULL-terminated. */
static void expect_pieces_at(int line, const char *html, const char *const *expected)
{
    html_piece *pieces = NULL;
    size_t count = 0, want = 0, len = strlen(html);
    char got_count[32], want_count[32];

    while (expected[want])
        want++;
    CU_ASSERT_EQUAL_FATAL(html_split(html, len, &pieces, &count), 0);
    snprintf(got_count, sizeof got_count, "%zu", count);
    snprintf(want_count, sizeof want_count, "%zu", want);
    check(count == want, line, "\"%s\" gave %s pieces, expected %s", html, got_count, want_count);
    for (size_t i = 0; i < count && i < want; i++) {
        char *got = malloc(pieces[i].len + 3);

        got[0] = pieces[i].is_text ? 'T' : 'M';
        got[1] = ':';
        memcpy(got + 2, html + pieces[i].start, pieces[i].len);
        got[pieces[i].len + 2] = '\0';
        check(strcmp(got, expected[i]) == 0, line, "piece of \"%s\": got [%s], expected [%s]",
              html, got, expected[i]);
        free(got);
    }
    check_pieces(line, html, len, pieces, count);
    free(pieces);
}
#define expect_pieces(html, ...) \
    expect_pieces_at(__LINE__, html, (const char *const[]){__VA_ARGS__, NULL})

static void test_split_text_only(void)
{
    expect_pieces("Hello world.", "T:Hello world.");
    expect_pieces("Tom &amp; Jerry", "T:Tom &amp; Jerry");
}

static void test_split_tags(void)
{
    expect_pieces("<p>Hello <b>world</b>.</p>", "M:<p>", "T:Hello ", "M:<b>", "T:world",
                  "M:</b>", "T:.", "M:</p>");
    expect_pieces("a<br/>b<img src=x.png alt=y>c", "T:a", "M:<br/>", "T:b",
                  "M:<img src=x.png alt=y>", "T:c");
    expect_pieces("<P CLASS=x\n  id=\"y\">z</P>", "M:<P CLASS=x\n  id=\"y\">", "T:z", "M:</P>");
}

static void test_split_quoted_attributes(void)
{
    expect_pieces("<a title=\"x>y\" href='a>b'>link</a>", "M:<a title=\"x>y\" href='a>b'>",
                  "T:link", "M:</a>");
    expect_pieces("<a title = \"1 > 0\">z", "M:<a title = \"1 > 0\">", "T:z");
    expect_pieces("<a data-x=\"q'>\">z", "M:<a data-x=\"q'>\">", "T:z");
    /* A quote that opens no value ends nothing. */
    expect_pieces("<a b\"c>d", "M:<a b\"c>", "T:d");
    expect_pieces("<a b=c\"d>e", "M:<a b=c\"d>", "T:e");
}

static void test_split_comments(void)
{
    expect_pieces("a<!-- <p>b</p> -->c", "T:a", "M:<!-- <p>b</p> -->", "T:c");
    expect_pieces("a<!---->b", "T:a", "M:<!---->", "T:b");
    expect_pieces("a<!-->b", "T:a", "M:<!-->", "T:b");
    expect_pieces("a<!--->b", "T:a", "M:<!--->", "T:b");
    expect_pieces("a<!-- x --!>b", "T:a", "M:<!-- x --!>", "T:b");
    expect_pieces("a<!-- -- > still -->b", "T:a", "M:<!-- -- > still -->", "T:b");
}

static void test_split_doctype_cdata_pi(void)
{
    expect_pieces("<!DOCTYPE html>\n<html>", "M:<!DOCTYPE html>", "T:\n", "M:<html>");
    expect_pieces("a<![CDATA[ x > y ]]>b", "T:a", "M:<![CDATA[ x > y ]]>", "T:b");
    expect_pieces("<?xml version=\"1.0\"?>a", "M:<?xml version=\"1.0\"?>", "T:a");
    expect_pieces("a<!b>c", "T:a", "M:<!b>", "T:c");
}

static void test_split_script_and_style(void)
{
    expect_pieces("<script>if (a < b) x = \"</p>\";</script>after", "M:<script>",
                  "M:if (a < b) x = \"</p>\";", "M:</script>", "T:after");
    expect_pieces("<SCRIPT type=\"x\">a<b</Script >c", "M:<SCRIPT type=\"x\">", "M:a<b",
                  "M:</Script >", "T:c");
    expect_pieces("<style>p > a {}</style>t", "M:<style>", "M:p > a {}", "M:</style>", "T:t");
    expect_pieces("<script>a</scriptx></script>b", "M:<script>", "M:a</scriptx>",
                  "M:</script>", "T:b");
    expect_pieces("<script></script>b", "M:<script>", "M:</script>", "T:b");
    /* Not script elements. */
    expect_pieces("<scripts>t</scripts>", "M:<scripts>", "T:t", "M:</scripts>");
    expect_pieces("<noscript>t</noscript>", "M:<noscript>", "T:t", "M:</noscript>");
}

static void test_split_unterminated(void)
{
    expect_pieces("<script>no end", "M:<script>", "M:no end");
    expect_pieces("x <a href=\"unterminated", "T:x ", "M:<a href=\"unterminated");
    expect_pieces("x <a href=\"y\"", "T:x ", "M:<a href=\"y\"");
    expect_pieces("x <!-- open", "T:x ", "M:<!-- open");
    expect_pieces("x <!DOCTYPE", "T:x ", "M:<!DOCTYPE");
    expect_pieces("x </b", "T:x ", "M:</b");
    expect_pieces("x <b", "T:x ", "M:<b");
}

static void test_split_lone_less_than(void)
{
    expect_pieces("a < b", "T:a < b");
    expect_pieces("a <= b <3 x<", "T:a <= b <3 x<");
    expect_pieces("<<a>", "T:<", "M:<a>");
    expect_pieces("c</", "T:c</");
    expect_pieces("</>a</ b>c", "M:</>", "T:a", "M:</ b>", "T:c");
}

static void test_split_empty(void)
{
    static html_piece sentinel;
    html_piece *pieces = &sentinel;
    size_t count = 7;

    CU_ASSERT_EQUAL(html_split("", 0, &pieces, &count), 0);
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_PTR_NULL(pieces);
    pieces = &sentinel;
    count = 7;
    CU_ASSERT_EQUAL(html_split(NULL, 0, &pieces, &count), 0);
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_PTR_NULL(pieces);
}

static void test_split_reads_only_len_bytes(void)
{
    const char html[] = "ab<b>cd";
    html_piece *pieces;
    size_t count;

    CU_ASSERT_EQUAL_FATAL(html_split(html, 4, &pieces, &count), 0);
    CU_ASSERT_EQUAL_FATAL(count, 2);
    CU_ASSERT_EQUAL(pieces[1].start, 2);
    CU_ASSERT_EQUAL(pieces[1].len, 2);
    CU_ASSERT_EQUAL(pieces[1].is_text, 0);
    free(pieces);
}

/* Returns the number of checks that failed for html[0..len): the piece
 * contract, and that the pieces concatenate to the input. */
static int check_round_trip(int line, const char *html, size_t len)
{
    html_piece *pieces;
    size_t count, out_len;
    char *out;
    int failures;
    bool same;

    if (html_split(html, len, &pieces, &count) != 0) {
        check(false, line, "html_split failed on \"%s\"%s%s", printable(html, len), "", "");
        return 1;
    }
    failures = check_pieces(line, html, len, pieces, count);
    out = concatenate(html, pieces, count, &out_len);
    same = out_len == len && memcmp(out, html, len) == 0;
    failures += !same;
    check(same, line, "pieces of \"%s\" do not give back the input%s%s", printable(html, len),
          "", "");
    free(out);
    free(pieces);
    return failures;
}

static void test_split_round_trip_table(void)
{
    /* Literals may hold NUL bytes, so each case carries its length. */
#define CASE(literal) {literal, sizeof(literal) - 1}
    static const struct {
        const char *html;
        size_t len;
    } cases[] = {
        CASE(""),
        CASE("<"),
        CASE(">"),
        CASE("<>"),
        CASE("<<<<"),
        CASE("</"),
        CASE("</>"),
        CASE("<!"),
        CASE("<!-"),
        CASE("<!--"),
        CASE("<!--->"),
        CASE("<![CDATA["),
        CASE("<?"),
        CASE("<a"),
        CASE("<a "),
        CASE("<a b"),
        CASE("<a b="),
        CASE("<a b='"),
        CASE("<a b=\"c>"),
        CASE("<a b=\"c\"/"),
        CASE("<script"),
        CASE("<script>"),
        CASE("<script></script"),
        CASE("<style>a</sty"),
        CASE("&"),
        CASE("&amp"),
        CASE("Tom &amp; Jerry &lt;3"),
        CASE("<!DOCTYPE html><html lang=\"de\"><head><title>T &amp; T</title>"
             "<style>p>a{color:red}</style><script>var s = \"<!--\"; if (1<2) {}</script>"
             "</head><body><p class='x>y'>Hallo <b>Welt</b>!<br/>a < b</p><!-- c -->"
             "</body></html>"),
        CASE("\xC3\xA4<b>\xF0\x9F\x98\x80</b>\xFF\xFE<"),
        CASE("a\0b<\0>c"),
        CASE("<a\tb\n=\r'c'\f>"),
        CASE("<p>one</p>\n\n<p>two</p>\n"),
    };
#undef CASE

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CU_ASSERT_EQUAL(check_round_trip(__LINE__, cases[i].html, cases[i].len), 0);
}

/* xorshift64: a fixed, portable random sequence. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Random strings made half of random bytes and half of HTML fragments, so
 * that tags, quotes, comments and script elements open and close at
 * random. Each string lies in an allocation of its exact length, so a
 * read past its end shows under a memory checker. */
static void test_split_round_trip_random(void)
{
    static const char *const fragments[] = {
        "<", ">", "</", "/", "<!--", "-->", "--!>", "<!", "<?", "<![CDATA[", "]]>", "'", "\"",
        "=", " ", "\n", "a", "b", "<script>", "</script>", "<SCRIPT ", "</ScRiPt ", "<style>",
        "</style", "&amp;", "&", "<p>", "</p>", "<a href=\"", "x",
    };
    const size_t n_fragments = sizeof fragments / sizeof fragments[0];
    uint64_t state = 0x0DDBA11C0FFEE123ULL;
    int failures = 0;
    size_t markup = 0, text = 0;

    for (int round = 0; round < 5000 && failures == 0; round++) {
        char buffer[1024];
        size_t len = 0, n_parts = next_random(&state) % 60;
        html_piece *pieces;
        size_t count;
        char *exact;

        for (size_t i = 0; i < n_parts; i++) {
            uint64_t r = next_random(&state);

            if (r % 2 == 0) {
                buffer[len++] = (char)(r >> 8);
            } else {
                const char *f = fragments[(r >> 8) % n_fragments];

                memcpy(buffer + len, f, strlen(f));
                len += strlen(f);
            }
        }
        exact = malloc(len ? len : 1);
        memcpy(exact, buffer, len);
        failures += check_round_trip(__LINE__, exact, len);

        /* Count the kinds of pieces, to show that both occur. */
        if (html_split(exact, len, &pieces, &count) == 0) {
            for (size_t i = 0; i < count; i++) {
                markup += !pieces[i].is_text;
                text += pieces[i].is_text;
            }
            free(pieces);
        }
        free(exact);
    }
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT(markup > 5000);
    CU_ASSERT(text > 5000);
}

/* ---- html_text_decode ---- */

static void expect_decode_at(int line, const char *s, size_t len, const char *expected)
{
    char *got = html_text_decode(s, len);

    const char *printable_input = s ? s : "(NULL)";

    check(got != NULL, line, "html_text_decode(\"%s\") failed%s%s", printable_input, "", "");
    if (got)
        check(strcmp(got, expected) == 0, line, "decode \"%s\": got \"%s\", expected \"%s\"",
              printable_input, got, expected);
    free(got);
}
#define expect_decode(s, expected) expect_decode_at(__LINE__, s, strlen(s), expected)

static void test_decode_named(void)
{
    expect_decode("Tom &amp; Jerry", "Tom & Jerry");
    expect_decode("&lt;b&gt; &quot;x&quot; &apos;y&apos;", "<b> \"x\" 'y'");
    expect_decode("a&nbsp;b", "a\xC2\xA0" "b");
    expect_decode("Caf&eacute; &uuml;ber Stra&szlig;e &copy; &Auml;", "Caf\xC3\xA9 \xC3\xBC"
                  "ber Stra\xC3\x9F" "e \xC2\xA9 \xC3\x84");
    expect_decode("&euro;5 &hellip; &mdash; &ndash; &bdquo;&ldquo; &trade;",
                  "\xE2\x82\xAC" "5 \xE2\x80\xA6 \xE2\x80\x94 \xE2\x80\x93 \xE2\x80\x9E"
                  "\xE2\x80\x9C \xE2\x84\xA2");
    expect_decode("&alpha;&Omega;&sigmaf;&yuml;&Yuml;", "\xCE\xB1\xCE\xA9\xCF\x82\xC3\xBF\xC5\xB8");
    expect_decode("&AMP;&LT;&GT;&QUOT;&COPY;&REG;", "&<>\"\xC2\xA9\xC2\xAE");
    /* HTML5 values of the angle brackets, U+27E8 and U+27E9. */
    expect_decode("&lang;x&rang;", "\xE2\x9F\xA8x\xE2\x9F\xA9");
}

static void test_decode_without_semicolon(void)
{
    expect_decode("Tom &amp Jerry", "Tom & Jerry");
    expect_decode("&copy 2020", "\xC2\xA9 2020");
    expect_decode("&lt&gt", "<>");
    expect_decode("AT&T", "AT&T");
    expect_decode("&copy2020", "&copy2020");
    expect_decode("&ampx", "&ampx");
    /* Only the names HTML lets go without the semicolon. */
    expect_decode("&hellip more", "&hellip more");
    expect_decode("&apos", "&apos");
}

static void test_decode_unknown_unchanged(void)
{
    expect_decode("&foo; &Amp; &AElig2;", "&foo; &Amp; &AElig2;");
    expect_decode("& &; &&amp; a&", "& &; && a&");
    expect_decode("&#; &#x; &#xZ; &#a;", "&#; &#x; &#xZ; &#a;");
}

static void test_decode_numeric(void)
{
    expect_decode("&#65;&#x42;&#X43;&#x00044;", "ABCD");
    expect_decode("&#233;t&#xE9;", "\xC3\xA9t\xC3\xA9");
    expect_decode("&#x1F600;", "\xF0\x9F\x98\x80");
    expect_decode("&#65B &#x41G", "AB AG");
    expect_decode("&#8364;", "\xE2\x82\xAC");
}

static void test_decode_invalid_numeric(void)
{
    expect_decode("&#0;", "\xEF\xBF\xBD");
    expect_decode("&#xD800;&#xDFFF;", "\xEF\xBF\xBD\xEF\xBF\xBD");
    expect_decode("&#x110000;", "\xEF\xBF\xBD");
    expect_decode("&#99999999999999999999999;", "\xEF\xBF\xBD");
    expect_decode("&#xFFFFFFFFFFFFFFFFFFFF41;", "\xEF\xBF\xBD");
    expect_decode("&#x10FFFF;", "\xF4\x8F\xBF\xBF");
}

static void test_decode_windows_1252(void)
{
    expect_decode("&#146;&#150;&#128;", "\xE2\x80\x99\xE2\x80\x93\xE2\x82\xAC");
    /* Undefined in Windows-1252: the C1 control is kept. */
    expect_decode("&#129;", "\xC2\x81");
}

static void test_decode_nul_and_bytes(void)
{
    expect_decode_at(__LINE__, "a\0b", 3, "a\xEF\xBF\xBD" "b");
    expect_decode("\xFF\xC3 &amp;", "\xFF\xC3 &");
    expect_decode("", "");
    expect_decode_at(__LINE__, NULL, 0, "");
}

static void test_decode_reads_only_len_bytes(void)
{
    expect_decode_at(__LINE__, "&amp;", 3, "&am");
    expect_decode_at(__LINE__, "&amp;", 4, "&");
    expect_decode_at(__LINE__, "&#65;", 4, "A");
    expect_decode_at(__LINE__, "&#65;", 3, "\x06");
    expect_decode_at(__LINE__, "x&", 2, "x&");
}

/* ---- html_text_encode ---- */

static void test_encode_escapes(void)
{
    char *got = html_text_encode("<a href=\"x\">Tom & Jerry's</a>");

    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
    free(got);

    got = html_text_encode("Gr\xC3\xBC\xC3\x9F" "e \xF0\x9F\x98\x80");
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, "Gr\xC3\xBC\xC3\x9F" "e \xF0\x9F\x98\x80");
    free(got);

    got = html_text_encode("");
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, "");
    free(got);

    got = html_text_encode(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, "");
    free(got);
}

static void test_encode_decode_round_trip(void)
{
    static const char *const cases[] = {
        "a < b && c > d",
        "\"quoted\" and 'single'",
        "&amp; stays &amp; after a round trip",
        "&#65; &copy &lt",
        "Stra\xC3\x9F" "e \xE2\x80\x9EZitat\xE2\x80\x9C \xF0\x9F\x91\x8D",
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *encoded = html_text_encode(cases[i]);
        char *decoded = encoded ? html_text_decode(encoded, strlen(encoded)) : NULL;

        check(decoded && strcmp(decoded, cases[i]) == 0, __LINE__,
              "round trip of \"%s\" gave \"%s\"%s", cases[i], decoded ? decoded : "(NULL)", "");
        free(encoded);
        free(decoded);
    }
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;

    s = CU_add_suite("html_split", NULL, NULL);
    CU_add_test(s, "text only", test_split_text_only);
    CU_add_test(s, "tags", test_split_tags);
    CU_add_test(s, "quoted attributes", test_split_quoted_attributes);
    CU_add_test(s, "comments", test_split_comments);
    CU_add_test(s, "doctype, CDATA, processing instructions", test_split_doctype_cdata_pi);
    CU_add_test(s, "script and style", test_split_script_and_style);
    CU_add_test(s, "unterminated markup", test_split_unterminated);
    CU_add_test(s, "lone less-than is text", test_split_lone_less_than);
    CU_add_test(s, "empty input", test_split_empty);
    CU_add_test(s, "reads only len bytes", test_split_reads_only_len_bytes);
    CU_add_test(s, "round trip on hard cases", test_split_round_trip_table);
    CU_add_test(s, "round trip on random bytes", test_split_round_trip_random);

    s = CU_add_suite("html_text_decode", NULL, NULL);
    CU_add_test(s, "named references", test_decode_named);
    CU_add_test(s, "without semicolon", test_decode_without_semicolon);
    CU_add_test(s, "unknown names unchanged", test_decode_unknown_unchanged);
    CU_add_test(s, "numeric references", test_decode_numeric);
    CU_add_test(s, "invalid code points", test_decode_invalid_numeric);
    CU_add_test(s, "Windows-1252 range", test_decode_windows_1252);
    CU_add_test(s, "NUL and other bytes", test_decode_nul_and_bytes);
    CU_add_test(s, "reads only len bytes", test_decode_reads_only_len_bytes);

    s = CU_add_suite("html_text_encode", NULL, NULL);
    CU_add_test(s, "escapes", test_encode_escapes);
    CU_add_test(s, "round trip through decode", test_encode_decode_round_trip);

    return test_run_all();
}
