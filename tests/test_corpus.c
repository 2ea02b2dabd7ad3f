/* Corpus reading tests: line ends, byte-order marks, gzip, TSV and SGML
 * formats, pair filtering and its counts, and invalid UTF-8 reported by
 * line. Files are written to a temporary folder. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "corpus.h"
#include "testutil.h"

static char dir[64];

static const char *path_of(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ & 3];

    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *name, const char *data, size_t n)
{
    FILE *f = fopen(path_of(name), "wb");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(data, 1, n, f);
    fclose(f);
}

static void write_text(const char *name, const char *text)
{
    write_bytes(name, text, strlen(text));
}

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/seqmt-corpus-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void read_all(const char *name, char ***lines, size_t *n)
{
    char err[512];

    CU_ASSERT_EQUAL_FATAL(corpus_read_lines(path_of(name), lines, n, err, sizeof(err)), 0);
}

/* A BOM, CRLF ends and a missing final newline change neither the number
 * of lines nor their text. */
static void test_line_ends_and_bom(void)
{
    char **a, **b;
    size_t na, nb;

    write_text("unix.txt", "A dog runs.\nTwo cats.\nEnd");
    write_text("dos.txt", "\xEF\xBB\xBF" "A dog runs.\r\nTwo cats.\r\nEnd\r\n");
    read_all("unix.txt", &a, &na);
    read_all("dos.txt", &b, &nb);
    CU_ASSERT_EQUAL(na, 3);
    CU_ASSERT_EQUAL(nb, 3);
    for (size_t i = 0; i < 3 && i < na && i < nb; i++)
        CU_ASSERT_STRING_EQUAL(a[i], b[i]);
    CU_ASSERT_STRING_EQUAL(b[0], "A dog runs.");
    corpus_free_lines(a, na);
    corpus_free_lines(b, nb);
}

/* U+2028 (line separator) inside a line does not split it, and the first
 * token after a BOM is the first word. */
static void test_unicode_separator_inside_line(void)
{
    char **lines;
    size_t n;
    tok_list toks = {0};

    write_text("sep.txt", "\xEF\xBB\xBF" "Hello\xE2\x80\xA8world\nNext\n");
    read_all("sep.txt", &lines, &n);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(corpus_tokenize(lines[0], "en", &toks, NULL), 0);
    CU_ASSERT(toks.count >= 1);
    CU_ASSERT_EQUAL(strncmp(toks.items[0], "Hello", 5), 0);
    tok_list_clear(&toks);
    corpus_free_lines(lines, n);
}

static void test_gzip_read_like_plain(void)
{
    gzFile f = gzopen(path_of("a.txt.gz"), "wb");
    char **lines;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    gzputs(f, "eins\nzwei\n\ndrei\n");
    gzclose(f);
    read_all("a.txt.gz", &lines, &n);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_STRING_EQUAL(lines[1], "zwei");
    CU_ASSERT_STRING_EQUAL(lines[2], "");
    corpus_free_lines(lines, n);
}

static void test_format_from_name(void)
{
    CU_ASSERT_EQUAL(corpus_format_of("x.tsv", CORPUS_FORMAT_AUTO), CORPUS_FORMAT_TSV);
    CU_ASSERT_EQUAL(corpus_format_of("x.TSV.gz", CORPUS_FORMAT_AUTO), CORPUS_FORMAT_TSV);
    CU_ASSERT_EQUAL(corpus_format_of("newstest2014-deen-src.en.sgm", CORPUS_FORMAT_AUTO),
                    CORPUS_FORMAT_SGML);
    CU_ASSERT_EQUAL(corpus_format_of("train.en.gz", CORPUS_FORMAT_AUTO), CORPUS_FORMAT_PLAIN);
    CU_ASSERT_EQUAL(corpus_format_of("x.tsv", CORPUS_FORMAT_PLAIN), CORPUS_FORMAT_PLAIN);
    CU_ASSERT_EQUAL(corpus_format_parse("sgml"), CORPUS_FORMAT_SGML);
    CU_ASSERT_EQUAL(corpus_format_parse("xml"), -1);
}

static void test_sgml_segments(void)
{
    char **segs, err[512];
    size_t n;

    write_text("t.sgm", "<srcset setid=\"x\" srclang=\"any\">\n<doc sysid=\"ref\" docid=\"a\">\n"
                        "<p>\n<seg id=\"1\">Tom &amp; Jerry say &quot;hi&quot;.</seg>\n"
                        "<seg id=\"2\">2 &lt; 3</seg>\n</p>\n</doc>\n</srcset>\n");
    CU_ASSERT_EQUAL_FATAL(corpus_read_segments(path_of("t.sgm"), CORPUS_FORMAT_AUTO, &segs, &n,
                                               err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(segs[0], "Tom & Jerry say \"hi\".");
    CU_ASSERT_STRING_EQUAL(segs[1], "2 < 3");
    corpus_free_lines(segs, n);

    write_text("bad.sgm", "<seg id=\"1\">open\n");
    CU_ASSERT_NOT_EQUAL(corpus_read_segments(path_of("bad.sgm"), CORPUS_FORMAT_AUTO, &segs, &n,
                                             err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 1"));
}

/* TSV pairs: a line without a tab is skipped and counted, not shifted. */
static void test_tsv_pairs_filtered(void)
{
    tok_list *src, *tgt;
    size_t n;
    corpus_stats st;
    corpus_filter filter = {50, 9.0f, 0};
    char err[512];

    write_text("p.tsv", "A dog.\tEin Hund.\nno tab here\nA cat.\tEine Katze.\n\tLeer.\n");
    CU_ASSERT_EQUAL_FATAL(corpus_load_text(path_of("p.tsv"), NULL, CORPUS_FORMAT_AUTO, "en", "de",
                                           &filter, &src, &tgt, &n, &st, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(st.lines, 4);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(st.skipped_no_tab, 1);
    CU_ASSERT_EQUAL(st.skipped_empty, 1);
    CU_ASSERT_STRING_EQUAL(src[1].items[1], "cat");
    CU_ASSERT_STRING_EQUAL(tgt[1].items[1], "Katze");
    corpus_free_tokens(src, n);
    corpus_free_tokens(tgt, n);
}

/* Empty, over-long and extreme-ratio pairs are skipped and counted; the
 * pairs kept stay aligned. */
static void test_filters_keep_alignment(void)
{
    tok_list *src, *tgt;
    size_t n;
    corpus_stats st;
    corpus_filter filter = {6, 3.0f, 0};
    char err[512];

    write_text("f.en", "one\n\nthree words here\na b c d e f g h\nx\nlast one\n");
    write_text("f.de", "eins\nzwei\ndrei Wörter hier\nkurz\nx y z w v\nletzte\n");
    CU_ASSERT_EQUAL_FATAL(corpus_load_text(path_of("f.en"), path_of("f.de"), CORPUS_FORMAT_AUTO,
                                           "en", "de", &filter, &src, &tgt, &n, &st, err,
                                           sizeof(err)), 0);
    CU_ASSERT_EQUAL(st.lines, 6);
    CU_ASSERT_EQUAL(st.skipped_empty, 1);
    CU_ASSERT_EQUAL(st.skipped_long, 1);
    CU_ASSERT_EQUAL(st.skipped_ratio, 1);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_STRING_EQUAL(src[0].items[0], "one");
    CU_ASSERT_STRING_EQUAL(tgt[0].items[0], "eins");
    CU_ASSERT_STRING_EQUAL(src[1].items[0], "three");
    CU_ASSERT_STRING_EQUAL(tgt[1].items[0], "drei");
    CU_ASSERT_STRING_EQUAL(src[2].items[0], "last");
    CU_ASSERT_STRING_EQUAL(tgt[2].items[0], "letzte");
    corpus_free_tokens(src, n);
    corpus_free_tokens(tgt, n);
}

static void test_mismatched_counts_named(void)
{
    size_t n;
    corpus_stats st;
    corpus_filter filter = {50, 0.0f, 0};
    char err[512];

    write_text("m.en", "a\nb\nc\n");
    write_text("m.de", "a\nb\n");
    CU_ASSERT_NOT_EQUAL(corpus_load_text(path_of("m.en"), path_of("m.de"), CORPUS_FORMAT_AUTO,
                                         "en", "de", &filter, NULL, NULL, &n, &st, err,
                                         sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "m.en has 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "m.de has 2"));
}

static void test_invalid_utf8_reported_by_line(void)
{
    tok_list *src, *tgt;
    size_t n;
    corpus_stats st;
    corpus_filter filter = {50, 0.0f, 0};
    char err[512];

    write_text("u.en", "fine\nbad \xFF byte\nfine\nalso \xC3 bad\n");
    write_text("u.de", "gut\ngut\ngut \xFE\ngut\n");
    CU_ASSERT_EQUAL_FATAL(corpus_load_text(path_of("u.en"), path_of("u.de"), CORPUS_FORMAT_AUTO,
                                           "en", "de", &filter, &src, &tgt, &n, &st, err,
                                           sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(st.invalid_utf8, 3);
    CU_ASSERT_EQUAL(st.n_invalid_lines, 3);
    CU_ASSERT_EQUAL(st.invalid_lines[0], 2);
    CU_ASSERT_EQUAL(st.invalid_lines[1], 3);
    CU_ASSERT_EQUAL(st.invalid_lines[2], 4);
    CU_ASSERT_STRING_EQUAL(src[1].items[1], "\xEF\xBF\xBD");
    corpus_free_tokens(src, n);
    corpus_free_tokens(tgt, n);
}

/* A gzip stream cut short is an error, never a shorter corpus. */
static void test_truncated_gzip_rejected(void)
{
    gzFile f = gzopen(path_of("long.gz"), "wb");
    char **lines, err[512], *data;
    size_t n;
    FILE *in;
    long size;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 20000; i++)
        gzprintf(f, "line %d of a corpus that will be cut short\n", i);
    gzclose(f);
    in = fopen(path_of("long.gz"), "rb");
    fseek(in, 0, SEEK_END);
    size = ftell(in);
    fseek(in, 0, SEEK_SET);
    data = malloc(size);
    CU_ASSERT_EQUAL_FATAL(fread(data, 1, size, in), (size_t)size);
    fclose(in);

    write_bytes("cut.gz", data, size / 2);
    CU_ASSERT_NOT_EQUAL(corpus_read_lines(path_of("cut.gz"), &lines, &n, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));

    write_bytes("trailer.gz", data, size - 4); /* only the length trailer missing */
    CU_ASSERT_NOT_EQUAL(corpus_read_lines(path_of("trailer.gz"), &lines, &n, err, sizeof(err)),
                        0);
    free(data);
}

static void test_nul_byte_keeps_rest_of_line(void)
{
    char **lines;
    size_t n;

    write_bytes("nul.txt", "A man\0 is here.\nnext\n", 21);
    read_all("nul.txt", &lines, &n);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(lines[0], "A man\xEF\xBF\xBD is here.");
    corpus_free_lines(lines, n);
}

static void test_sgml_several_segments_per_line(void)
{
    char **segs, err[512];
    size_t n;

    write_text("multi.sgm", "<SEG id=1>one</SEG><seg id=\"2\">two</seg>\n<segment>x</segment>\n"
                            "<seg id=3>three</seg>\n");
    CU_ASSERT_EQUAL_FATAL(corpus_read_segments(path_of("multi.sgm"), CORPUS_FORMAT_AUTO, &segs,
                                               &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_STRING_EQUAL(segs[0], "one");
    CU_ASSERT_STRING_EQUAL(segs[1], "two");
    CU_ASSERT_STRING_EQUAL(segs[2], "three");
    corpus_free_lines(segs, n);

    write_text("plain.txt", "no markup here\n");
    CU_ASSERT_NOT_EQUAL(corpus_read_segments(path_of("plain.txt"), CORPUS_FORMAT_SGML, &segs, &n,
                                             err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no <seg> elements"));
}

static void test_tsv_extra_tab_skipped(void)
{
    size_t n;
    corpus_stats st;
    corpus_filter filter = {50, 0.0f, 0};
    char err[512];

    write_text("tabs.tsv", "a\tb\tc\nA dog.\tEin Hund.\n");
    CU_ASSERT_EQUAL_FATAL(corpus_load_text(path_of("tabs.tsv"), NULL, CORPUS_FORMAT_AUTO, "en",
                                           "de", &filter, NULL, NULL, &n, &st, err, sizeof(err)),
                          0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(st.skipped_no_tab, 1);
}

static void test_missing_file_named(void)
{
    char **lines, err[512];
    size_t n;

    CU_ASSERT_NOT_EQUAL(corpus_read_lines("/nonexistent/x.txt", &lines, &n, err, sizeof(err)),
                        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.txt"));
}

static void test_unescape_moses(void)
{
    char line[] = "Parliament &apos;s &quot;rule&quot; &amp; law &#124; a &#91;b&#93; &lt;c&gt; "
                  "&nbsp; &amp;apos;";

    corpus_unescape_moses(line);
    CU_ASSERT_STRING_EQUAL(line, "Parliament 's \"rule\" & law | a [b] <c> &nbsp; &apos;");
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("corpus", suite_init, suite_clean);
    CU_add_test(s, "line ends and bom", test_line_ends_and_bom);
    CU_add_test(s, "unicode separator inside line", test_unicode_separator_inside_line);
    CU_add_test(s, "gzip read like plain", test_gzip_read_like_plain);
    CU_add_test(s, "format from name", test_format_from_name);
    CU_add_test(s, "sgml segments", test_sgml_segments);
    CU_add_test(s, "tsv pairs filtered", test_tsv_pairs_filtered);
    CU_add_test(s, "filters keep alignment", test_filters_keep_alignment);
    CU_add_test(s, "mismatched counts named", test_mismatched_counts_named);
    CU_add_test(s, "invalid utf8 reported by line", test_invalid_utf8_reported_by_line);
    CU_add_test(s, "missing file named", test_missing_file_named);
    CU_add_test(s, "truncated gzip rejected", test_truncated_gzip_rejected);
    CU_add_test(s, "nul byte keeps rest of line", test_nul_byte_keeps_rest_of_line);
    CU_add_test(s, "sgml several segments per line", test_sgml_several_segments_per_line);
    CU_add_test(s, "tsv extra tab skipped", test_tsv_extra_tab_skipped);
    CU_add_test(s, "unescape Moses", test_unescape_moses);
    return test_run_all();
}
