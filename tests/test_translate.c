/* Translation tests on a small model trained here on real Multi30k pairs:
 * beam 1 equals an independent greedy decoder, save and load give the same
 * translations, line counts are kept, and bad model files are rejected
 * with a message that says why. */
#include <CUnit/CUnit.h>
#include <utf8proc.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "beam.h"
#include "carry.h"
#include "corpus.h"
#include "model.h"
#include "testutil.h"
#include "train.h"

static char workdir[256];
static char model_path[320];
static char train_files[4][320];
static model *trained;

/* Sentences used for translation checks, from the training side. */
static const char *sample[] = {
    "A man in an orange hat starring at something.",
    "Two dogs play in the snow.",
    "",
    "A little girl is sitting on a bench.",
    "   ",
    "A group of people are standing in front of a building.",
};
#define N_SAMPLE (sizeof(sample) / sizeof(sample[0]))

static int write_head(const char *src, const char *dst, size_t lines)
{
    char **all, err[512];
    size_t n;
    FILE *f;

    if (corpus_read_lines(src, &all, &n, err, sizeof(err)))
        return -1;
    f = fopen(dst, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < n && i < lines; i++)
        fprintf(f, "%s\n", all[i]);
    fclose(f);
    corpus_free_lines(all, n);
    return 0;
}

/* Options for a one-epoch model on the test's training files: one layer,
 * embedding and hidden size 16. */
static train_options quick_options(const char *output)
{
    train_options o = train_default_options();

    o.train_src = train_files[0];
    o.train_tgt = train_files[1];
    o.valid_src = train_files[2];
    o.valid_tgt = train_files[3];
    o.output = output;
    o.layers = 1;
    o.embed = 16;
    o.hidden = 16;
    o.min_count = 1;
    o.epochs = 1;
    return o;
}

/* Trains a small model on the first 600 Multi30k training pairs. */
static int suite_init(void)
{
    const char *data = test_data_dir();
    char in[512], err[1024];
    char(*out)[320] = train_files;
    static const char *names[4] = {"train.en.gz", "train.de.gz", "val.en.gz", "val.de.gz"};
    train_options o;

    if (!data)
        return 0;
    snprintf(workdir, sizeof(workdir), "/tmp/seqmt-test-XXXXXX");
    if (!mkdtemp(workdir))
        return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(in, sizeof(in), "%s/multi30k/%s", data, names[i]);
        snprintf(out[i], sizeof(out[i]), "%s/%.*s", workdir, 8, names[i]);
        if (write_head(in, out[i], i < 2 ? 600 : 50))
            return -1;
    }
    snprintf(model_path, sizeof(model_path), "%s/small.seqmt", workdir);
    o = quick_options(model_path);
    o.layers = 2;
    o.embed = 32;
    o.hidden = 48;
    o.epochs = 2;
    o.batch_size = 32;
    if (train_run(&o, NULL, NULL, err, sizeof(err))) {
        fprintf(stderr, "training the test model failed: %s\n", err);
        return -1;
    }
    trained = model_load(model_path, err, sizeof(err));
    return trained ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[400];

    model_free(trained);
    if (workdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

#define NEED_MODEL()                                                                             \
    do {                                                                                         \
        if (!trained) {                                                                          \
            fprintf(stderr, "SKIP: no corpus, no test model\n");                                 \
            return;                                                                              \
        }                                                                                        \
    } while (0)

/* Attention written out with plain loops, independent of attention.c:
 * o = tanh(Wc c + Wd h + b) with c the softmax(h . Wa e_s)-weighted mean
 * of the encoder states e. */
static void attend_by_hand(const model *m, const float *enc, int len, const float *h, float *o)
{
    const attention_weights *a = &m->w.att;
    int H = m->cfg.hidden;
    double score[128], ctx[512], sum = 0, mx = -DBL_MAX;

    CU_ASSERT_FATAL(len <= 128 && H <= 512);

    for (int s = 0; s < len; s++) {
        score[s] = 0;
        for (int i = 0; i < H; i++) {
            double k = 0;

            for (int j = 0; j < H; j++)
                k += a->wa[(size_t)i * H + j] * enc[(size_t)s * H + j];
            score[s] += h[i] * k;
        }
        if (score[s] > mx)
            mx = score[s];
    }
    for (int s = 0; s < len; s++)
        sum += score[s] = exp(score[s] - mx);
    for (int j = 0; j < H; j++) {
        ctx[j] = 0;
        for (int s = 0; s < len; s++)
            ctx[j] += score[s] / sum * enc[(size_t)s * H + j];
    }
    for (int i = 0; i < H; i++) {
        double z = a->b[i];

        for (int j = 0; j < H; j++)
            z += a->wc[(size_t)i * H + j] * ctx[j] + a->wd[(size_t)i * H + j] * h[j];
        o[i] = (float)tanh(z);
    }
}

/* Greedy decoding written out step by step, independent of beam.c. Stores
 * the summed log probability of the output (and of </s> when emitted) in
 * *score. */
static int greedy(const model *m, const int32_t *src, int len, int max_len, int32_t *out,
                  double *score)
{
    const model_config *cfg = &m->cfg;
    int L = cfg->layers, E = cfg->embed, H = cfg->hidden, V = cfg->tgt_vocab, n = 0;
    float *x = malloc(sizeof(float) * (E > H ? E : H)), *gates = malloc(sizeof(float) * 4 * H);
    float *h = calloc((size_t)L * H, sizeof(float)), *c = calloc((size_t)L * H, sizeof(float));
    float *h2 = malloc(sizeof(float) * L * H), *c2 = malloc(sizeof(float) * L * H);
    float *logit = malloc(sizeof(float) * V), *enc = malloc(sizeof(float) * (len + 1) * H);
    int32_t tok = VOCAB_BOS;

    *score = 0;

    /* Encoder: the source from its last word to its first. */
    for (int t = len - 1; t >= 0; t--) {
        memcpy(x, m->w.src_embed + (size_t)src[t] * E, sizeof(float) * E);
        for (int l = 0; l < L; l++) {
            lstm_step(&m->w.enc[l], 1, x, h + l * H, c + l * H, h2 + l * H, c2 + l * H, gates);
            memcpy(x, h2 + l * H, sizeof(float) * H);
        }
        memcpy(enc + (size_t)(len - 1 - t) * H, x, sizeof(float) * H);
        memcpy(h, h2, sizeof(float) * L * H);
        memcpy(c, c2, sizeof(float) * L * H);
    }
    while (n < max_len) {
        int best = -1;

        memcpy(x, m->w.tgt_embed + (size_t)tok * E, sizeof(float) * E);
        for (int l = 0; l < L; l++) {
            lstm_step(&m->w.dec[l], 1, x, h + l * H, c + l * H, h2 + l * H, c2 + l * H, gates);
            memcpy(x, h2 + l * H, sizeof(float) * H);
        }
        memcpy(h, h2, sizeof(float) * L * H);
        memcpy(c, c2, sizeof(float) * L * H);
        if (cfg->attention)
            attend_by_hand(m, enc, len, h + (size_t)(L - 1) * H, x);
        for (int v = 0; v < V; v++) {
            float z = m->w.out_b[v];

            for (int j = 0; j < H; j++)
                z += m->w.out_w[(size_t)v * H + j] * x[j];
            logit[v] = z;
        }
        double mx = -DBL_MAX, sum = 0;
        for (int v = 0; v < V; v++)
            mx = fmax(mx, logit[v]);
        for (int v = 0; v < V; v++)
            sum += exp(logit[v] - mx);
        for (int v = VOCAB_EOS; v < V; v++)
            if (v == VOCAB_EOS || v >= VOCAB_N_SPECIAL)
                if (best < 0 || logit[v] > logit[best])
                    best = v;
        *score += logit[best] - mx - log(sum);
        if (best == VOCAB_EOS)
            break;
        out[n++] = tok = best;
    }
    free(x);
    free(gates);
    free(h);
    free(c);
    free(h2);
    free(c2);
    free(logit);
    free(enc);
    return n;
}

static void check_beam_one_equals_greedy(const model *trained)
{
    beam_options bo = beam_default_options();
    tok_list toks = {0};

    beam_nbest_options no = {1, NULL, NULL, NULL};

    bo.beam_size = 1;
    for (size_t i = 0; i < N_SAMPLE; i++) {
        int32_t *src, len, ref[128];
        int ref_len;
        double ref_score;
        beam_nbest got = {0};

        corpus_tokenize(sample[i], "en", &toks, NULL);
        if (toks.count == 0)
            continue;
        src = corpus_ids(trained->src_vocab, &toks);
        len = (int32_t)toks.count;
        CU_ASSERT_EQUAL_FATAL(beam_search_nbest(trained, &bo, &no, (const int32_t *const *)&src,
                                                &len, 1, &got), 0);
        CU_ASSERT_EQUAL_FATAL(got.count, 1);
        ref_len = greedy(trained, src, len, (int)(bo.max_length_ratio * len) + 10, ref,
                         &ref_score);
        CU_ASSERT_EQUAL(got.hyps[0].len, ref_len);
        CU_ASSERT(got.hyps[0].len == ref_len &&
                  memcmp(got.hyps[0].ids, ref, sizeof(int32_t) * ref_len) == 0);
        /* Equal scores show the attention (or its absence) matches too,
         * even where it does not change the argmax. */
        CU_ASSERT_DOUBLE_EQUAL(got.hyps[0].score, ref_score, 1e-3 * fabs(ref_score) + 1e-4);
        free(src);
        beam_nbest_free(&got);
    }
    tok_list_clear(&toks);
}

static void test_beam_one_equals_greedy(void)
{
    NEED_MODEL();
    check_beam_one_equals_greedy(trained);
}

/* Decoding sentences together must give what decoding each alone gives. */
static void check_batched_equals_single(const model *trained)
{
    beam_options bo = beam_default_options();
    char *together[N_SAMPLE], *alone[1];

    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(trained, &bo, sample, N_SAMPLE, together), 0);
    for (size_t i = 0; i < N_SAMPLE; i++) {
        CU_ASSERT_EQUAL_FATAL(beam_translate_lines(trained, &bo, &sample[i], 1, alone), 0);
        CU_ASSERT_STRING_EQUAL(together[i], alone[0]);
        free(alone[0]);
        free(together[i]);
    }
}

static void test_batched_equals_single(void)
{
    NEED_MODEL();
    check_batched_equals_single(trained);
}



static void test_empty_lines_stay_empty(void)
{
    beam_options bo = beam_default_options();
    char *out[N_SAMPLE];

    NEED_MODEL();
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(trained, &bo, sample, N_SAMPLE, out), 0);
    CU_ASSERT_STRING_EQUAL(out[2], "");
    CU_ASSERT_STRING_EQUAL(out[4], "");
    CU_ASSERT(strlen(out[0]) > 0);
    CU_ASSERT(strlen(out[1]) > 0);
    for (size_t i = 0; i < N_SAMPLE; i++) {
        CU_ASSERT_PTR_NULL(strstr(out[i], "<unk>"));
        CU_ASSERT_PTR_NULL(strstr(out[i], "</s>"));
        CU_ASSERT_PTR_NULL(strchr(out[i], '\n'));
        free(out[i]);
    }
}

static void test_save_load_same_translations(void)
{
    beam_options bo = beam_default_options();
    char path[400], err[1024], *a[N_SAMPLE], *b[N_SAMPLE];
    model *copy;

    NEED_MODEL();
    snprintf(path, sizeof(path), "%s/copy.seqmt", workdir);
    CU_ASSERT_EQUAL_FATAL(model_save(trained, path, MODEL_F32, err, sizeof(err)), 0);
    copy = model_load(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    CU_ASSERT_EQUAL(copy->n_params, trained->n_params);
    CU_ASSERT(memcmp(copy->params, trained->params, sizeof(float) * copy->n_params) == 0);
    CU_ASSERT_EQUAL(vocab_size(copy->src_vocab), vocab_size(trained->src_vocab));
    CU_ASSERT_STRING_EQUAL(vocab_token(copy->tgt_vocab, 10), vocab_token(trained->tgt_vocab, 10));
    CU_ASSERT_EQUAL(beam_translate_lines(trained, &bo, sample, N_SAMPLE, a), 0);
    CU_ASSERT_EQUAL(beam_translate_lines(copy, &bo, sample, N_SAMPLE, b), 0);
    for (size_t i = 0; i < N_SAMPLE; i++) {
        CU_ASSERT_STRING_EQUAL(a[i], b[i]);
        free(a[i]);
        free(b[i]);
    }
    CU_ASSERT_PTR_NULL(strstr(path, ".tmp"));
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    model_free(copy);
}

/* float16 files are half the size and keep weights within float16's
 * relative precision (2^-11). */
static void test_half_precision_file(void)
{
    char path[400], err[1024];
    model *half;
    size_t bad = 0;

    NEED_MODEL();
    snprintf(path, sizeof(path), "%s/half.seqmt", workdir);
    CU_ASSERT_EQUAL_FATAL(model_save(trained, path, MODEL_F16, err, sizeof(err)), 0);
    half = model_load(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(half);
    for (size_t i = 0; i < half->n_params; i++) {
        float a = trained->params[i], b = half->params[i];

        bad += fabsf(a - b) > 1e-3f * fabsf(a) + 1e-7f;
    }
    CU_ASSERT_EQUAL(bad, 0);
    model_free(half);
}

/* Writes bytes to path; returns 0 on success. */
static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;

    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *d;
    long size;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    d = malloc(size);
    *n = fread(d, 1, size, f);
    fclose(f);
    return d;
}

static void expect_load_error(const char *path, const char *needle)
{
    char err[1024] = "";
    model *m = model_load(path, err, sizeof(err));

    CU_ASSERT_PTR_NULL(m);
    if (!strstr(err, needle))
        fprintf(stderr, "expected '%s' in: %s\n", needle, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    model_free(m);
}

static void test_bad_model_files_rejected(void)
{
    char path[400];
    unsigned char *d;
    size_t n = 0;

    NEED_MODEL();
    d = read_file(model_path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    snprintf(path, sizeof(path), "%s/bad.seqmt", workdir);

    expect_load_error("/nonexistent/model.seqmt", "cannot open");

    write_file(path, d, n / 2);
    expect_load_error(path, "truncated");

    write_file(path, d, n - 100);
    expect_load_error(path, "truncated");

    {
        unsigned char *longer = calloc(n + 7, 1);

        memcpy(longer, d, n);
        write_file(path, longer, n + 7);
        expect_load_error(path, "7 bytes past its end");
        free(longer);
    }

    d[n / 2] ^= 0x40;
    write_file(path, d, n);
    expect_load_error(path, "checksum");
    d[n / 2] ^= 0x40;

    unsigned char version = d[8];
    d[8] = 99; /* format version */
    write_file(path, d, n);
    expect_load_error(path, "format version 99");
    d[8] = version;

    d[0] = 'X';
    write_file(path, d, n);
    expect_load_error(path, "not a seqmt model");

    write_file(path, "", 0);
    expect_load_error(path, "empty");

    expect_load_error(workdir, "directory");
    free(d);
}

/* Whether piece, without a trailing continuation marker, is one code
 * point. */
static int is_one_character(const char *piece)
{
    size_t len = strlen(piece);
    utf8proc_int32_t cp;

    if (len > 2 && strcmp(piece + len - 2, "@@") == 0)
        len -= 2;
    return utf8proc_iterate((const utf8proc_uint8_t *)piece, (utf8proc_ssize_t)len, &cp) ==
           (utf8proc_ssize_t)len;
}

/* A model trained with a subword threshold stores the filter: after
 * loading, both sides split rare subwords back, so every source subword
 * of the sample is in the vocabulary or one character, where the plain
 * codes make subwords outside it. */
static void test_subword_threshold_model(void)
{
    beam_options bo = beam_default_options();
    char path[400] = "", copy_path[400], err[1024], *out[N_SAMPLE];
    train_options o = quick_options(path);
    model *m, *copy;
    bpe *plain;
    int outside_plain = 0;

    NEED_MODEL();
    snprintf(path, sizeof(path), "%s/thr.seqmt", workdir);
    snprintf(copy_path, sizeof(copy_path), "%s/thr-copy.seqmt", workdir);
    o.bpe_merges = 300;
    o.bpe_threshold = 30;
    CU_ASSERT_EQUAL_FATAL(train_run(&o, NULL, NULL, err, sizeof(err)), 0);
    m = model_load(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_TRUE(m->subword_filter);
    CU_ASSERT_PTR_NOT_EQUAL(m->src_bpe, m->tgt_bpe);
    CU_ASSERT_EQUAL(bpe_hash(m->src_bpe), bpe_hash(m->tgt_bpe));
    CU_ASSERT_TRUE(bpe_has_vocabulary(m->src_bpe) && bpe_has_vocabulary(m->tgt_bpe));
    plain = bpe_copy(m->src_bpe);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    for (size_t i = 0; i < N_SAMPLE; i++) {
        tok_list words = {0}, pieces = {0}, plain_pieces = {0};

        CU_ASSERT_EQUAL(tok_tokenize(sample[i], "en", &words), 0);
        CU_ASSERT_EQUAL(bpe_segment(m->src_bpe, &words, &pieces), 0);
        CU_ASSERT_EQUAL(bpe_segment(plain, &words, &plain_pieces), 0);
        for (size_t k = 0; k < pieces.count; k++)
            CU_ASSERT(vocab_id(m->src_vocab, pieces.items[k]) != VOCAB_UNK ||
                      is_one_character(pieces.items[k]));
        for (size_t k = 0; k < plain_pieces.count; k++)
            outside_plain += vocab_id(m->src_vocab, plain_pieces.items[k]) == VOCAB_UNK &&
                             !is_one_character(plain_pieces.items[k]);
        tok_list_clear(&words);
        tok_list_clear(&pieces);
        tok_list_clear(&plain_pieces);
    }
    CU_ASSERT(outside_plain > 0);
    bpe_free(plain);
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(m, &bo, sample, N_SAMPLE, out), 0);
    for (size_t i = 0; i < N_SAMPLE; i++) {
        CU_ASSERT_PTR_NULL(strstr(out[i], "@@"));
        free(out[i]);
    }
    CU_ASSERT_EQUAL(model_save(m, copy_path, MODEL_F32, err, sizeof(err)), 0);
    copy = model_load(copy_path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    CU_ASSERT_TRUE(copy->subword_filter && bpe_has_vocabulary(copy->tgt_bpe));
    model_free(copy);
    model_free(m);
}

/* A subword model: codes stored in the file with their hash, outputs
 * joined back into words without continuation markers. */
/* Makes m prefer <unk> at every step, so that copying is observable. */
static void favor_unknown(model *m)
{
    m->w.out_b[VOCAB_UNK] += 1000.0f;
}

/* A source word the vocabulary lacks is copied into the output where the
 * model emits <unk>; <unk> itself never appears, and sources without
 * unknown words never produce it. */
static void test_unknown_words_copied(void)
{
    beam_options bo = beam_default_options();
    const char *in[] = {"Two dogs play in the \xE9\xBE\x8D\xE9\xBE\x8D snow.",
                        "Two dogs play in the snow.", "Zyxqv and Qwrtz play."};
    char err[512], *out[3];
    model *m = NULL;

    NEED_MODEL();
    m = model_load(model_path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    favor_unknown(m);
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(m, &bo, in, 3, out), 0);
    /* Every step wants <unk>: the one unknown word comes out once. */
    CU_ASSERT_STRING_EQUAL(out[0], "\xE9\xBE\x8D\xE9\xBE\x8D");
    CU_ASSERT_PTR_NULL(strstr(out[1], "<unk>"));
    CU_ASSERT(strlen(out[1]) > 0);
    CU_ASSERT_STRING_EQUAL(out[2], "Zyxqv Qwrtz");
    for (int i = 0; i < 3; i++)
        free(out[i]);
    bo.beam_size = 1;
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(m, &bo, in, 1, out), 0);
    CU_ASSERT_STRING_EQUAL(out[0], "\xE9\xBE\x8D\xE9\xBE\x8D");
    free(out[0]);
    model_free(m);
}

static void test_subword_model_round_trip(void)
{
    beam_options bo = beam_default_options();
    char path[400] = "", copy_path[400], err[1024], *out[N_SAMPLE];
    train_options o = quick_options(path);
    model *m, *copy;

    NEED_MODEL();
    snprintf(path, sizeof(path), "%s/bpe.seqmt", workdir);
    snprintf(copy_path, sizeof(copy_path), "%s/bpe-copy.seqmt", workdir);
    o.bpe_merges = 300;
    CU_ASSERT_EQUAL_FATAL(train_run(&o, NULL, NULL, err, sizeof(err)), 0);
    m = model_load(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL(m->src_bpe);
    CU_ASSERT_PTR_EQUAL(m->src_bpe, m->tgt_bpe);
    CU_ASSERT_EQUAL(bpe_n_merges(m->src_bpe), 300);
    /* Subwords of the vocabulary carry the marker; outputs never do. */
    int marked = 0;
    for (size_t i = 0; i < vocab_size(m->tgt_vocab); i++)
        marked += strstr(vocab_token(m->tgt_vocab, (int32_t)i), "@@") != NULL;
    CU_ASSERT(marked > 0);
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(m, &bo, sample, N_SAMPLE, out), 0);
    for (size_t i = 0; i < N_SAMPLE; i++) {
        CU_ASSERT_PTR_NULL(strstr(out[i], "@@"));
        free(out[i]);
    }
    CU_ASSERT_EQUAL(model_save(m, copy_path, MODEL_F32, err, sizeof(err)), 0);
    copy = model_load(copy_path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    CU_ASSERT_EQUAL(bpe_hash(copy->src_bpe), bpe_hash(m->src_bpe));
    model_free(copy);
    /* A word with a character no subword covers is copied whole. */
    const char *odd[] = {"Two dogs\xCE\xA9x play."};
    favor_unknown(m);
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(m, &bo, odd, 1, out), 0);
    CU_ASSERT_STRING_EQUAL(out[0], "dogs\xCE\xA9x");
    free(out[0]);
    model_free(m);
}


/* ---- carrying protected and unknown source tokens ---- */

/* Carriers take the items of their kind in source order, even where
 * attention points the other way. With fewer carriers than items,
 * attention picks the items taken, and the others keep their order. */
static void test_carry_plan_carriers(void)
{
    /* Output "<num> x <num>" for source "2 a 5" (positions 0 and 2). */
    const int kinds[] = {TOK_NUMBER, -1, TOK_NUMBER};
    const carry_item items[] = {{0, TOK_NUMBER, 1}, {2, TOK_NUMBER, 1}};
    const float swapped[] = {0.1f, 0.1f, 0.8f, /* unit 0 looks at position 2 */
                             0.1f, 0.8f, 0.1f, /* unit 1 at position 1 */
                             0.8f, 0.1f, 0.1f}; /* unit 2 at position 0 */
    int take[3], at[2];

    CU_ASSERT_EQUAL_FATAL(carry_plan(3, 3, kinds, NULL, swapped, items, 2, take, at), 0);
    CU_ASSERT_EQUAL(take[0], 0);
    CU_ASSERT_EQUAL(take[1], -1);
    CU_ASSERT_EQUAL(take[2], 1);
    CU_ASSERT_EQUAL(at[0], -1);
    CU_ASSERT_EQUAL(at[1], -1);

    /* Output "x <num>": the carrier looks at position 2, so it takes "5";
     * unit 0 and position 0 are each other's best, so "2" replaces x. */
    const int one_carrier[] = {-1, TOK_NUMBER};
    const float align[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.1f, 0.8f};
    int take2[2];

    CU_ASSERT_EQUAL_FATAL(carry_plan(2, 3, one_carrier, NULL, align, items, 2, take2, at), 0);
    CU_ASSERT_EQUAL(take2[1], 1);
    CU_ASSERT_EQUAL(take2[0], 0);
    CU_ASSERT_EQUAL(at[0], -1);
    CU_ASSERT_EQUAL(at[1], -1);

    /* Output "<num> x <num>" for source "1 2 3": the carriers look at 2
     * and 3 and take them. "1" goes before the carrier of "2", not where
     * attention puts it (after x), so the three keep their order. */
    const carry_item three[] = {{0, TOK_NUMBER, 1}, {1, TOK_NUMBER, 1}, {2, TOK_NUMBER, 1}};
    const float late[] = {0.2f, 0.7f, 0.1f, /* unit 0 looks at "2" */
                          0.6f, 0.2f, 0.2f, /* x at "1" */
                          0.1f, 0.1f, 0.8f}; /* unit 2 at "3" */
    int at3[3];

    CU_ASSERT_EQUAL_FATAL(carry_plan(3, 3, kinds, NULL, late, three, 3, take, at3), 0);
    CU_ASSERT_EQUAL(take[0], 1);
    CU_ASSERT_EQUAL(take[1], -1);
    CU_ASSERT_EQUAL(take[2], 2);
    CU_ASSERT_EQUAL(at3[0], 0);
    CU_ASSERT_EQUAL(at3[1], -1);
    CU_ASSERT_EQUAL(at3[2], -1);
}

/* An item no carrier took goes before the word of the output unit aligned
 * with it best. When that unit is aligned best with the item too, the item
 * replaces the whole word. Items not to insert are left out. */
static void test_carry_plan_insertion(void)
{
    /* Units "a b@@ c d": b@@ c is one word. Source positions 0..3. */
    const int kinds[] = {-1, -1, -1, -1};
    const unsigned char joins[] = {0, 1, 0, 0};
    const float align[] = {0.9f, 0.0f, 0.1f, 0.0f,  /* a: position 0 */
                           0.0f, 0.2f, 0.0f, 0.8f,  /* b@@: position 3 */
                           0.0f, 0.45f, 0.55f, 0.0f, /* c: position 2 */
                           0.0f, 0.3f, 0.1f, 0.6f}; /* d: position 3 */
    /* Position 1 is aligned best with c, whose own best is position 2:
     * it goes before the word b@@ c. Position 2 and c are each other's
     * best: it replaces b@@ c. A plain word at position 0 is left out. */
    const carry_item before[] = {{1, TOK_EMOJI, 1}, {0, TOK_PLAIN, 0}};
    const carry_item replace[] = {{2, TOK_URL, 1}};
    int take[4], at[2];

    CU_ASSERT_EQUAL_FATAL(carry_plan(4, 4, kinds, joins, align, before, 2, take, at), 0);
    CU_ASSERT_EQUAL(at[0], 1);
    CU_ASSERT_EQUAL(at[1], -1);
    for (int j = 0; j < 4; j++)
        CU_ASSERT_EQUAL(take[j], -1);

    CU_ASSERT_EQUAL_FATAL(carry_plan(4, 4, kinds, joins, align, replace, 1, take, at), 0);
    CU_ASSERT_EQUAL(at[0], -1);
    CU_ASSERT_EQUAL(take[0], -1);
    CU_ASSERT_EQUAL(take[1], 0);
    CU_ASSERT_EQUAL(take[2], CARRY_DROP);
    CU_ASSERT_EQUAL(take[3], -1);

    /* Without attention: the relative position, never a replacement. The
     * last of 4 source positions goes before the last of 4 units. */
    const carry_item last[] = {{3, TOK_NUMBER, 1}};

    CU_ASSERT_EQUAL_FATAL(carry_plan(4, 4, kinds, NULL, NULL, last, 1, take, at), 0);
    CU_ASSERT_EQUAL(at[0], 3);
    CU_ASSERT_EQUAL(take[3], -1);
    /* An empty output takes every item at its start. */
    CU_ASSERT_EQUAL_FATAL(carry_plan(0, 4, kinds, NULL, NULL, last, 1, take, at), 0);
    CU_ASSERT_EQUAL(at[0], 0);
}

/* carry_plan on random plans keeps its promises. Every item to insert is
 * placed once: taken by a unit of its kind, given a word, or inserted at
 * a word start. CARRY_DROP only continues a word given to an item, and
 * inserted items keep their source order. */
static void test_carry_plan_random(void)
{
    unsigned int seed = 12345;

    for (int round = 0; round < 2000; round++) {
        int n = rand_r(&seed) % 12, S = 1 + rand_r(&seed) % 10, n_items = rand_r(&seed) % 7;
        int kinds[12], take[12], at[7], placed[7] = {0};
        unsigned char joins[12];
        carry_item items[7];
        float align[12 * 10];
        int use_align = rand_r(&seed) % 4 != 0;

        /* Carriers (placeholders, <unk>, protected words) never end in the
         * continuation marker, but may follow a unit that does. */
        for (int j = 0; j < n; j++) {
            kinds[j] = rand_r(&seed) % 3 == 0 ? rand_r(&seed) % 3 : -1;
            joins[j] = kinds[j] < 0 && j + 1 < n && rand_r(&seed) % 3 == 0;
        }
        for (int i = 0; i < n * S; i++)
            align[i] = (float)(rand_r(&seed) % 1000) / 1000.0f;
        for (int k = 0; k < n_items; k++)
            items[k] = (carry_item){rand_r(&seed) % S, rand_r(&seed) % 3, rand_r(&seed) % 4 != 0};
        CU_ASSERT_EQUAL_FATAL(carry_plan(n, S, kinds, joins, use_align ? align : NULL, items,
                                         n_items, take, at),
                              0);
        for (int j = 0; j < n; j++) {
            if (take[j] >= 0) {
                CU_ASSERT_TRUE_FATAL(take[j] < n_items);
                placed[take[j]]++;
                CU_ASSERT(kinds[j] < 0 || kinds[j] == items[take[j]].kind);
            } else if (take[j] == CARRY_DROP) {
                CU_ASSERT_TRUE(j > 0 && joins[j - 1] && (take[j - 1] >= 0 || take[j - 1] == CARRY_DROP));
                CU_ASSERT(kinds[j] < 0);
            } else {
                CU_ASSERT_EQUAL(take[j], -1);
            }
        }
        for (int k = 0; k < n_items; k++) {
            if (at[k] >= 0) {
                CU_ASSERT(at[k] <= n);
                CU_ASSERT(at[k] == 0 || at[k] == n || !joins[at[k] - 1]);
                placed[k]++;
            }
            CU_ASSERT(placed[k] <= 1);
            if (items[k].insert)
                CU_ASSERT_EQUAL(placed[k], 1);
            for (int i = 0; i < n_items; i++)
                if (at[k] >= 0 && at[i] >= 0 && items[i].pos < items[k].pos)
                    CU_ASSERT(at[i] <= at[k]);
        }
    }
}

/* Translation never loses a protected source token (number, URL, e-mail
 * address, emoji) that the vocabulary lacks, even from a model that never
 * emits <unk>. An unknown plain word of a word-level model appears only
 * where the model emits <unk>. */
static void check_protected_tokens_kept(model *m)
{
    beam_options bo = beam_default_options();
    const char *in[] = {"Zyxqv and two dogs play at \xF0\x9F\x98\x80 with 31337 balls near "
                        "https://example.org/a?b=1 and anna@example.org."};
    const char *kept[] = {"\xF0\x9F\x98\x80", "31337", "https://example.org/a?b=1",
                          "anna@example.org"};
    char *out[1];

    m->w.out_b[VOCAB_UNK] -= 1000.0f;
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(m, &bo, in, 1, out), 0);
    m->w.out_b[VOCAB_UNK] += 1000.0f;
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        if (test_count_occurrences(out[0], kept[i]) != 1)
            fprintf(stderr, "\n  \"%s\" occurs %d times in \"%s\", expected once\n", kept[i],
                    test_count_occurrences(out[0], kept[i]), out[0]);
        CU_ASSERT_EQUAL(test_count_occurrences(out[0], kept[i]), 1);
    }
    if (!m->tgt_bpe)
        CU_ASSERT_EQUAL(test_count_occurrences(out[0], "Zyxqv"), 0);
    CU_ASSERT_PTR_NULL(strstr(out[0], "<"));
    free(out[0]);
}

/* A placeholder the model emits right after an open subword ("Ch@@ <num>")
 * still gets a number of the source: the output keeps each of "5", "7"
 * and "8" once and shows no "<num>". */
static void check_placeholder_after_open_subword(const model *m)
{
    beam_source src = {0};
    int32_t ids[2] = {VOCAB_UNK, vocab_id(m->tgt_vocab, "<num>")};
    char *text;

    CU_ASSERT_NOT_EQUAL_FATAL(ids[1], VOCAB_UNK);
    for (size_t id = 0; id < vocab_size(m->tgt_vocab) && ids[0] == VOCAB_UNK; id++) {
        const char *token = vocab_token(m->tgt_vocab, (int32_t)id);
        size_t len = strlen(token);

        if (len > 2 && strcmp(token + len - 2, "@@") == 0 && !strpbrk(token, "0123456789<"))
            ids[0] = (int32_t)id;
    }
    CU_ASSERT_NOT_EQUAL_FATAL(ids[0], VOCAB_UNK);
    CU_ASSERT_EQUAL_FATAL(beam_source_prepare(m, "5 < 7 & 8", &src), 0);
    text = beam_render(m, ids, 2, &src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (strstr(text, "<num>"))
        fprintf(stderr, "\n  \"%s\" followed by <num> rendered as \"%s\"\n",
                vocab_token(m->tgt_vocab, ids[0]), text);
    CU_ASSERT_PTR_NULL(strstr(text, "<num>"));
    CU_ASSERT_EQUAL(test_count_occurrences(text, "5"), 1);
    CU_ASSERT_EQUAL(test_count_occurrences(text, "7"), 1);
    CU_ASSERT_EQUAL(test_count_occurrences(text, "8"), 1);
    free(text);
    beam_source_free(&src);
}

/* beam_render_nbest, which aligns all hypotheses in one batch, renders
 * each as beam_render does alone. */
static void check_nbest_render_equals_single(const model *m)
{
    beam_options bo = beam_default_options();
    beam_nbest_options nopt = {.n_best = 4};
    beam_source src = {0};
    beam_nbest r = {0};
    char *texts[4];
    const int32_t *ids;

    CU_ASSERT_EQUAL_FATAL(
        beam_source_prepare(m, "Two dogs with 3 balls play near https://example.org/x \xF0\x9F\x98\x80.",
                            &src),
        0);
    ids = src.ids;
    CU_ASSERT_EQUAL_FATAL(beam_search_nbest(m, &bo, &nopt, &ids, &src.len, 1, &r), 0);
    CU_ASSERT_TRUE_FATAL(r.count >= 2);
    CU_ASSERT_EQUAL_FATAL(beam_render_nbest(m, &r, r.count, &src, texts), 0);
    for (int k = 0; k < r.count; k++) {
        char *alone = beam_render(m, r.hyps[k].ids, r.hyps[k].len, &src);

        CU_ASSERT_PTR_NOT_NULL_FATAL(alone);
        CU_ASSERT_STRING_EQUAL(texts[k], alone);
        CU_ASSERT_EQUAL(test_count_occurrences(texts[k], "https://example.org/x"), 1);
        free(alone);
        free(texts[k]);
    }
    beam_nbest_free(&r);
    beam_source_free(&src);
}

static void test_protected_tokens_kept(void)
{
    char path[400] = "", err[1024];
    train_options o = quick_options(path);
    model *m;

    NEED_MODEL();
    check_protected_tokens_kept(trained);
    /* Subwords, placeholders and attention: the originals of placeholders
     * the model did not emit are placed by attention. */
    snprintf(path, sizeof(path), "%s/placeholders.seqmt", workdir);
    o.bpe_merges = 300;
    o.placeholders = 1;
    o.attention = 1;
    CU_ASSERT_EQUAL_FATAL(train_run(&o, NULL, NULL, err, sizeof(err)), 0);
    m = model_load(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT(m->placeholders && m->cfg.attention && m->tgt_bpe);
    check_protected_tokens_kept(m);
    check_placeholder_after_open_subword(m);
    check_nbest_render_equals_single(m);
    model_free(m);
}

/* Loads the bundled word-level attention model from SEQMT_SOURCE_DIR, or
 * returns NULL with a skip message. The caller frees the model. */
static model *load_bundled_model(void)
{
    const char *dir = getenv("SEQMT_SOURCE_DIR");
    char path[512], err[512];
    model *m;

    if (!dir) {
        fprintf(stderr, "SKIP: SEQMT_SOURCE_DIR unset; run this test through ctest\n");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/models/en-de.seqmt", dir);
    m = model_load(path, err, sizeof(err));
    if (!m)
        fprintf(stderr, "loading %s failed: %s\n", path, err);
    CU_ASSERT_PTR_NOT_NULL(m);
    return m;
}

/* Returns how often token occurs among the tokens of text. */
static int token_count(const char *text, const char *token)
{
    tok_list tokens = {0};
    int n = 0;

    CU_ASSERT_EQUAL_FATAL(corpus_tokenize(text, NULL, &tokens, NULL), 0);
    for (size_t i = 0; i < tokens.count; i++)
        n += strcmp(tokens.items[i], token) == 0;
    tok_list_clear(&tokens);
    return n;
}

/* Two carried numbers with a colon between them in the output stay two
 * numbers: "Chapter 3: 12 dogs run." must not come out with the time
 * "3:12", which the source never had. */
static void test_carried_numbers_around_colon(void)
{
    beam_options bo = beam_default_options();
    const char *in[] = {"Chapter 3: 12 dogs run."};
    char *out[1];
    model *m = load_bundled_model();

    if (!m)
        return;
    CU_ASSERT_EQUAL_FATAL(beam_translate_lines(m, &bo, in, 1, out), 0);
    if (token_count(out[0], "3") != 1 || token_count(out[0], "12") != 1)
        fprintf(stderr, "\n  \"%s\" translated as \"%s\"\n", in[0], out[0]);
    CU_ASSERT_EQUAL(token_count(out[0], "3"), 1);
    CU_ASSERT_EQUAL(token_count(out[0], "12"), 1);
    CU_ASSERT_EQUAL(token_count(out[0], "3:12"), 0);
    free(out[0]);
    model_free(m);
}

/* An attention model: trains, keeps its architecture through the model
 * file, decodes greedily as the hand-written attention does, and gives
 * the same translations batched and alone. */
static void test_attention_model(void)
{
    char path[400] = "", copy_path[400], err[1024];
    train_options o = quick_options(path);
    model *m, *copy;

    NEED_MODEL();
    snprintf(path, sizeof(path), "%s/attention.seqmt", workdir);
    snprintf(copy_path, sizeof(copy_path), "%s/attention-copy.seqmt", workdir);
    o.layers = 2;
    o.hidden = 24;
    o.attention = 1;
    CU_ASSERT_EQUAL_FATAL(train_run(&o, NULL, NULL, err, sizeof(err)), 0);
    m = model_load(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->cfg.attention, 1);
    CU_ASSERT_EQUAL(m->n_params, model_param_count(&m->cfg));
    check_beam_one_equals_greedy(m);
    check_batched_equals_single(m);
    check_protected_tokens_kept(m);
    CU_ASSERT_EQUAL_FATAL(model_save(m, copy_path, MODEL_F32, err, sizeof(err)), 0);
    copy = model_load(copy_path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    CU_ASSERT_EQUAL(copy->cfg.attention, 1);
    CU_ASSERT(memcmp(copy->params, m->params, sizeof(float) * m->n_params) == 0);
    model_free(copy);
    model_free(m);

    /* Architecture bits this build does not know are rejected by name. The
     * flags word of a word-level model sits at byte 68, after the header,
     * the configuration and the tokenizer settings. */
    size_t n;
    unsigned char *d = read_file(copy_path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d[8], 3);
    CU_ASSERT_EQUAL_FATAL(d[68], 1);
    d[68] |= 2;
    uint32_t crc = (uint32_t)crc32(0L, d, (uInt)(n - 4));
    memcpy(d + n - 4, &crc, 4);
    write_file(copy_path, d, n);
    expect_load_error(copy_path, "architecture flags 0x2");
    free(d);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("translate", suite_init, suite_clean);
    CU_add_test(s, "beam one equals greedy", test_beam_one_equals_greedy);
    CU_add_test(s, "batched equals single", test_batched_equals_single);
    CU_add_test(s, "empty lines stay empty", test_empty_lines_stay_empty);
    CU_add_test(s, "save load same translations", test_save_load_same_translations);
    CU_add_test(s, "half precision file", test_half_precision_file);
    CU_add_test(s, "bad model files rejected", test_bad_model_files_rejected);
    CU_add_test(s, "unknown words copied", test_unknown_words_copied);
    CU_add_test(s, "subword model round trip", test_subword_model_round_trip);
    CU_add_test(s, "subword threshold model", test_subword_threshold_model);
    CU_add_test(s, "attention model", test_attention_model);
    CU_add_test(s, "carry plan carriers", test_carry_plan_carriers);
    CU_add_test(s, "carry plan insertion", test_carry_plan_insertion);
    CU_add_test(s, "carry plan random", test_carry_plan_random);
    CU_add_test(s, "carried numbers around colon", test_carried_numbers_around_colon);
    CU_add_test(s, "protected tokens kept", test_protected_tokens_kept);
    return test_run_all();
}
