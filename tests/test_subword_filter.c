/* Edge cases of the subword vocabulary filter (bpe_set_vocabulary) and of
 * the model files that store it: codes version 0.1, words ending in "@@",
 * invalid UTF-8, one-character and very long words, and tokenizer flags a
 * model file must not carry. Every segmentation is joined back to its
 * word. */
#include "bpe.h"
#include "model.h"
#include "rng.h"
#include "testutil.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define ERR_SIZE 512

/* Byte offset of the tokenizer flags in a model file: magic (8), format
 * version (4), file size (8), five u32 sizes (20), two languages (16),
 * tokenizer version (4). */
#define FLAGS_OFFSET 60
#define TOKENIZER_VERSION_OFFSET 56

static bpe *codes_from_string(const char *text)
{
    char err[ERR_SIZE] = "";
    bpe *codes = bpe_from_text(text, strlen(text), "test.codes", err, sizeof err);

    if (!codes)
        fprintf(stderr, "bpe_from_text: %s\n", err);
    return codes;
}

/* Returns the subwords of word joined by single spaces (malloc'd), or
 * NULL on failure. */
static char *segment_to_string(const bpe *codes, const char *word)
{
    tok_list out = {0};
    size_t len = 1;
    char *s = NULL;

    if (bpe_segment_word(codes, word, &out) == 0) {
        for (size_t i = 0; i < out.count; i++)
            len += strlen(out.items[i]) + 1;
        s = malloc(len);
        if (s) {
            s[0] = '\0';
            for (size_t i = 0; i < out.count; i++) {
                if (i)
                    strcat(s, " ");
                strcat(s, out.items[i]);
            }
        }
    }
    tok_list_clear(&out);
    return s;
}

/* Returns whether segmenting word with codes, with BPE-dropout when
 * dropout > 0, and joining the subwords gives word back. */
static int round_trips(const bpe *codes, const char *word, double dropout)
{
    tok_list pieces = {0}, joined = {0};
    uint64_t state = 7;
    int ok = bpe_segment_word_dropout(codes, word, dropout, &state, &pieces) == 0 &&
             bpe_join((const char *const *)pieces.items, pieces.count, &joined) == 0 &&
             joined.count == 1 && strcmp(joined.items[0], word) == 0;

    tok_list_clear(&pieces);
    tok_list_clear(&joined);
    return ok;
}

/* ---- Segmentation ---- */

/* Codes without a "#version" line are version 0.1, where the end-of-word
 * mark is a symbol of its own. "lower" merges to low@@ er: "lo w" makes
 * "low", then "e r" and "er </w>" make "er</w>". With "low@@" not allowed,
 * "low" splits into "lo@@" and "w@@". */
static void test_version_01_codes(void)
{
    bpe *codes = codes_from_string("l o\nlo w\nlow </w>\ne r\ner </w>\n");
    const char *allowed[] = {"lo@@", "w@@", "er", "w"};
    char *got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    got = segment_to_string(codes, "lower");
    CU_ASSERT_STRING_EQUAL(got, "low@@ er");
    free(got);
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, allowed, 4), 0);
    got = segment_to_string(codes, "lower");
    CU_ASSERT_STRING_EQUAL(got, "lo@@ w@@ er");
    free(got);

    /* "low" merges with the mark by "low </w>"; the split at the mark
     * leaves "low" at the word's end, which splits into "lo@@" and "w". */
    got = segment_to_string(codes, "low");
    CU_ASSERT_STRING_EQUAL(got, "lo@@ w");
    free(got);
    CU_ASSERT_TRUE(round_trips(codes, "lowlower", 0));
    CU_ASSERT_TRUE(round_trips(codes, "lowlower", 0.5));
    bpe_free(codes);
}

/* Words of "@" characters and words ending in "@@" join back with and
 * without subwords allowed, although "@ @</w>" merges the last two. */
static void test_words_ending_in_marker(void)
{
    static const char *const words[] = {"@", "@@", "@@@", "@@@@", "a@@", "ab@@", "@@a", "a@b@@"};
    bpe *codes = codes_from_string("#version: 0.2\n@ @</w>\na b\nab @\n@ @\n");
    const char *none[] = {"zzz"};
    const char *some[] = {"@@", "ab@@", "@@@", "@"};
    char *got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    for (int pass = 0; pass < 2; pass++) {
        CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, pass ? some : none, pass ? 4 : 1), 0);
        for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
            CU_ASSERT_TRUE(round_trips(codes, words[i], 0));
            CU_ASSERT_TRUE(round_trips(codes, words[i], 0.3));
        }
    }

    /* "ab@@" merges to ab@@ @@</w>; nothing is allowed, so both split
     * down to characters, and the last '@' stays a subword of its own. */
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, none, 1), 0);
    got = segment_to_string(codes, "ab@@");
    CU_ASSERT_STRING_EQUAL(got, "a@@ b@@ @@@ @");
    free(got);
    bpe_free(codes);
}

/* Bytes of invalid UTF-8 are symbols of their own; the filter leaves them
 * and splits the merged valid parts around them. */
static void test_invalid_utf8(void)
{
    static const char *const words[] = {"\xff", "\xff\xfe", "ab\xc3", "\xc3" "ab", "a\x80" "b",
                                        "ab\xe2\x82"};
    bpe *codes = codes_from_string("#version: 0.2\na b\nab </w>\na b</w>\n");
    const char *allowed[] = {"q"};
    char *got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, allowed, 1), 0);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        CU_ASSERT_TRUE(round_trips(codes, words[i], 0));
        CU_ASSERT_TRUE(round_trips(codes, words[i], 0.3));
    }
    got = segment_to_string(codes, "ab\xff");
    CU_ASSERT_STRING_EQUAL(got, "a@@ b@@ \xff");
    free(got);
    bpe_free(codes);
}

/* A word of one code point stays whole, allowed or not. */
static void test_one_character_word(void)
{
    bpe *codes = codes_from_string("#version: 0.2\na b\n");
    const char *allowed[] = {"b"};
    static const char *const words[] = {"a", "x", "\xc3\xa4", "\xe6\x97\xa5", "@", "\xff"};

    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, allowed, 1), 0);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        char *got = segment_to_string(codes, words[i]);

        CU_ASSERT_STRING_EQUAL(got, words[i]);
        free(got);
    }
    bpe_free(codes);
}

/* A word of 100,000 characters whose merges nest 16 deep splits back to
 * characters when nothing is allowed, keeps its merged subwords when they
 * are allowed, and joins back either way. The splits use no recursion, so
 * the length cannot overflow the stack. */
static void test_very_long_word(void)
{
    enum { LEN = 100000 };
    char *word = malloc(LEN + 1), *text = malloc(1 << 18), *got;
    const char *none[] = {"zzz"};
    const char *doubled[] = {"abab@@"};
    size_t pos = 0, count = 0;
    bpe *codes;

    CU_ASSERT_PTR_NOT_NULL_FATAL(word);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    for (size_t i = 0; i < LEN; i++)
        word[i] = "ab"[i % 2];
    word[LEN] = '\0';

    /* "a b", then "ab ab", "abab abab" ... up to 2^16 characters. */
    pos += (size_t)sprintf(text + pos, "#version: 0.2\na b\n");
    for (int k = 1; k < 16; k++) {
        for (int side = 0; side < 2; side++) {
            for (int i = 0; i < (1 << k); i++)
                text[pos++] = "ab"[i % 2];
            text[pos++] = side ? '\n' : ' ';
        }
    }
    text[pos] = '\0';
    codes = codes_from_string(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);

    CU_ASSERT_TRUE(round_trips(codes, word, 0));
    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, none, 1), 0);
    CU_ASSERT_TRUE(round_trips(codes, word, 0));
    CU_ASSERT_TRUE(round_trips(codes, word, 0.1));
    got = segment_to_string(codes, word);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    for (const char *p = got; *p; p++)
        count += *p == ' ';
    CU_ASSERT_EQUAL(count + 1, LEN);
    free(got);

    CU_ASSERT_EQUAL(bpe_set_vocabulary(codes, doubled, 1), 0);
    got = segment_to_string(codes, word);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(strncmp(got, "abab@@ abab@@ ", 14), 0);
    free(got);
    CU_ASSERT_TRUE(round_trips(codes, word, 0));
    bpe_free(codes);
    free(text);
    free(word);
}

/* ---- Model files ---- */

/* Returns a small word-level model with random weights: vocabularies of
 * a few English and German words, one layer of 8 units. */
static model *word_level_model(void)
{
    const char *en[] = {"<pad>", "<unk>", "<s>", "</s>", "the", "man", "an"};
    const char *de[] = {"<pad>", "<unk>", "<s>", "</s>", "der", "Mann"};
    model_config cfg = {1, 8, 8, 7, 6, "en", "de", 0};
    vocab *sv = vocab_from_tokens(en, 7), *tv = vocab_from_tokens(de, 6);
    rng_state rng;
    model *m;

    if (!sv || !tv) {
        vocab_free(sv);
        vocab_free(tv);
        return NULL;
    }
    m = model_new(&cfg, sv, tv);
    if (m) {
        rng_seed(&rng, 5);
        model_init_uniform(m, 0.1f, &rng);
    }
    return m;
}

/* Reads the file at path into a malloc'd buffer and stores its size. */
static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n)) && fread(data, 1, (size_t)n, f) == (size_t)n) {
        *size = (size_t)n;
    } else {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

/* Writes data to path with the u32 at offset set to value and the CRC-32
 * trailer recomputed, so that only the field is wrong. */
static int write_patched(const char *path, unsigned char *data, size_t size, size_t offset,
                         uint32_t value)
{
    FILE *f = fopen(path, "wb");
    uint32_t crc;
    int ok;

    if (!f)
        return -1;
    memcpy(data + offset, &value, 4);
    crc = (uint32_t)crc32(0L, data, (uInt)(size - 4));
    memcpy(data + size - 4, &crc, 4);
    ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Loads the model at path, expecting failure with a message containing
 * expected. */
static void expect_load_error(const char *path, const char *expected)
{
    char err[ERR_SIZE] = "";
    model *m = model_load(path, err, sizeof err);

    CU_ASSERT_PTR_NULL(m);
    if (!strstr(err, expected))
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err, expected);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, expected));
    model_free(m);
}

/* A word-level model loads without a filter. Given codes and
 * the filter, it is saved and loaded with the filter on both sides. Flags
 * outside the known ones, and the filter without codes, are rejected. */
static void test_model_filter_flag(void)
{
    char src[4096], path[] = "/tmp/seqmt-filter-XXXXXX", bad[64], err[ERR_SIZE] = "";
    unsigned char *data;
    size_t size;
    uint32_t flags, version;
    model *m, *loaded;
    bpe *codes;
    int fd;

    fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    close(fd);
    snprintf(src, sizeof src, "%s.word", path);
    m = word_level_model();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(model_save(m, src, MODEL_F32, err, sizeof err), 0);
    model_free(m);
    m = model_load(src, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_FALSE(m->subword_filter);
    CU_ASSERT_PTR_NULL(m->src_bpe);

    /* A word-level model file with the filter flag is corrupt, with the
     * tokenizer version of filtered models (2) or without it. */
    data = read_all(src, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    snprintf(bad, sizeof bad, "%s.bad", path);
    CU_ASSERT_EQUAL(write_patched(bad, data, size, FLAGS_OFFSET, 2), 0);
    expect_load_error(bad, "tokenizer version 1 does not match its subword filter flag");
    CU_ASSERT_EQUAL(write_patched(bad, data, size, TOKENIZER_VERSION_OFFSET, 2), 0);
    expect_load_error(bad, "a subword filter without codes");
    free(data);

    /* With codes and the filter, the flag survives a save and load, and the
     * sides get codes objects of their own. */
    codes = codes_from_string("#version: 0.2\nt h\nth e</w>\na n</w>\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    model_set_bpe(m, codes, codes);
    CU_ASSERT_EQUAL_FATAL(model_filter_subwords(m), 0);
    CU_ASSERT_EQUAL(model_save(m, path, MODEL_F32, err, sizeof err), 0);
    loaded = model_load(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loaded);
    CU_ASSERT_TRUE(loaded->subword_filter);
    CU_ASSERT_PTR_NOT_EQUAL(loaded->src_bpe, loaded->tgt_bpe);
    CU_ASSERT_TRUE(bpe_has_vocabulary(loaded->src_bpe));
    CU_ASSERT_TRUE(bpe_has_vocabulary(loaded->tgt_bpe));
    model_free(loaded);

    /* Unknown flag bits are named in the message. */
    data = read_all(path, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    memcpy(&flags, data + FLAGS_OFFSET, 4);
    CU_ASSERT_EQUAL(flags, 2);
    memcpy(&version, data + TOKENIZER_VERSION_OFFSET, 4);
    CU_ASSERT_EQUAL(version, 2);

    /* Builds without the filter reject tokenizer version 2, so a filtered
     * model never loads there; a version 2 file without the flag is corrupt. */
    CU_ASSERT_EQUAL(write_patched(bad, data, size, FLAGS_OFFSET, 0), 0);
    expect_load_error(bad, "tokenizer version 2 does not match its subword filter flag");
    CU_ASSERT_EQUAL(write_patched(bad, data, size, FLAGS_OFFSET, 6), 0);
    expect_load_error(bad, "tokenizer flags 0x4");
    CU_ASSERT_EQUAL(write_patched(bad, data, size, FLAGS_OFFSET, 0x80000002u), 0);
    expect_load_error(bad, "tokenizer flags 0x80000000");
    free(data);

    unlink(bad);
    unlink(path);
    unlink(src);
    model_free(m);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("subword filter segmentation", NULL, NULL);
    CU_add_test(s, "version 0.1 codes", test_version_01_codes);
    CU_add_test(s, "words ending in the marker", test_words_ending_in_marker);
    CU_add_test(s, "invalid UTF-8", test_invalid_utf8);
    CU_add_test(s, "one-character word", test_one_character_word);
    CU_add_test(s, "very long word", test_very_long_word);
    s = CU_add_suite("subword filter model files", NULL, NULL);
    CU_add_test(s, "filter flag", test_model_filter_flag);
    return test_run_all();
}
