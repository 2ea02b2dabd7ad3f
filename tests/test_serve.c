/* Tests of the daemon with real models over HTTP on 127.0.0.1.
 *
 * Servers run in this process on the bundled English-German model, with
 * translator.h as the translate callback, and every reply is compared with
 * beam_translate_lines on the same model: batched, concurrent and
 * one-sentence-at-a-time translation must give identical text. A tiny
 * German-English model trained here on the first 600 Multi30k pairs (when
 * SEQMT_TEST_DATA has them) gives a second language pair. The last tests
 * run the real seqmt binary and stop it with SIGTERM under load.
 */
#include "beam.h"
#include "exposition.h"
#include "html_text.h"
#include "http.h"
#include "http_client.h"
#include "model.h"
#include "testutil.h"
#include "train.h"
#include "translator.h"
#include "corpus.h"

#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONCURRENT_CLIENTS 32
#define BINARY_START_SECONDS 20 /* time for the binary to load the model and listen */
#define BINARY_STOP_SECONDS 40  /* grace period of 30 s and some slack */

/* English sentences the bundled model translates; some texts hold two. */
static const char *const texts[] = {
    "Two dogs play in the snow.",
    "A man is riding a bike.",
    "A little girl is sitting on a bench.",
    "A group of people are standing in front of a building.",
    "A woman in a red dress is walking down the street.",
    "Three children are playing soccer in a park.",
    "A man in an orange hat starring at something.",
    "The dog is running through the grass.",
    "Two men are working on a roof. A woman watches them.",
    "A boy jumps into the water.",
    "People are sitting at tables in a restaurant.",
    "A black dog carries a stick.",
    "A cyclist rides past a crowd. It is raining.",
    "An old man reads a newspaper.",
    "Children are playing on the beach.",
    "A woman is cooking in the kitchen.",
};
#define TEXT_COUNT (sizeof(texts) / sizeof(texts[0]))

static model *en_de, *de_en;
static char workdir[256];

/* The translator with counts of its calls, to see whether batching
 * happened. */
typedef struct {
    translator t;
    atomic_int calls;
    atomic_int largest_call;
} counting_translator;

static int counting_translate(void *ctx, size_t pair, int beam_size, http_sentence *sentences,
                              size_t n, http_stop_fn stop, void *stop_ctx, char *err,
                              size_t err_size)
{
    counting_translator *c = ctx;
    int largest = atomic_load(&c->largest_call);

    atomic_fetch_add(&c->calls, 1);
    while ((int)n > largest && !atomic_compare_exchange_weak(&c->largest_call, &largest, (int)n))
        ;
    return translator_translate(&c->t, pair, beam_size, sentences, n, stop, stop_ctx, err,
                                err_size);
}

static size_t counting_tokens(void *ctx, size_t pair, const char *sentence)
{
    counting_translator *c = ctx;

    return translator_count_tokens(&c->t, pair, sentence);
}

/* A server on the given models, with the callbacks counting into c. */
static http_server *start_model_server(counting_translator *c, const model *const *models,
                                       const http_language_pair *pairs, size_t count,
                                       size_t max_batch, unsigned timeout_ms)
{
    http_config config = {
        .address = "127.0.0.1",
        .threads = 4,
        .translate_threads = 2,
        .max_batch_sentences = max_batch,
        .batch_wait_ms = 20,
        .timeout_ms = timeout_ms,
        .pairs = pairs,
        .pair_count = count,
        .translate = counting_translate,
        .count_tokens = counting_tokens,
        .translate_ctx = c,
    };
    char err[256] = "";
    http_server *s;

    memset(c, 0, sizeof(*c));
    c->t.models = models;
    c->t.count = count;
    c->t.options = beam_default_options();
    c->t.options.batch_size = (int)(max_batch ? max_batch : 64);
    s = http_server_start(&config, err, sizeof(err));
    if (!s)
        fprintf(stderr, "\n  cannot start server: %s\n", err);
    return s;
}

static http_server *start_en_de(counting_translator *c, size_t max_batch, unsigned timeout_ms)
{
    static const http_language_pair pair[] = {{"en", "de"}};

    return start_model_server(c, (const model *const *)&en_de, pair, 1, max_batch, timeout_ms);
}

/* Returns beam_translate_lines' translation of one line with the default
 * options (malloc'd), or NULL. */
static char *reference(const model *m, const char *line)
{
    beam_options bo = beam_default_options();
    char *out = NULL;

    if (beam_translate_lines(m, &bo, &line, 1, &out) != 0)
        return NULL;
    return out;
}

/* Returns the reference translation of a text of one or two sentences
 * separated by ". ", joined with one space (malloc'd). */
static char *reference_text(const model *m, const char *text)
{
    const char *split = strstr(text, ". ");
    char *first, *joined;
    size_t len;

    if (!split)
        return reference(m, text);
    first = strndup(text, (size_t)(split - text) + 1);
    joined = NULL;
    if (first) {
        char *a = reference(m, first), *b = reference(m, split + 2);

        if (a && b) {
            len = strlen(a) + strlen(b) + 2;
            joined = malloc(len);
            if (joined)
                snprintf(joined, len, "%s %s", a, b);
        }
        free(a);
        free(b);
    }
    free(first);
    return joined;
}

/* Returns the string value of item, or "" when it is not a string. */
static const char *string_of(const cJSON *item)
{
    return cJSON_IsString(item) ? item->valuestring : "";
}

/* POSTs body to path on to_port and returns the parsed 200 reply, or NULL
 * after failing an assertion. */
static cJSON *post_for_json(unsigned short to_port, const char *path, const char *body)
{
    http_response r;
    cJSON *json = NULL;

    if (send_request_at(to_port, "POST", path, "application/json", body, strlen(body), &r) != 0) {
        CU_FAIL("no reply");
        return NULL;
    }
    CU_ASSERT_EQUAL(r.status, 200);
    if (r.status == 200)
        json = cJSON_Parse(r.body);
    else
        fprintf(stderr, "\n  %s answered %d: %s\n", path, r.status, r.body ? r.body : "");
    response_free(&r);
    return json;
}

/* Returns the translatedText of a /translate reply to text as a malloc'd
 * string, or NULL. */
static char *translate_over_http(unsigned short to_port, const char *text)
{
    cJSON *q = cJSON_CreateObject(), *json;
    char *body, *out = NULL;
    const cJSON *result;

    cJSON_AddStringToObject(q, "q", text);
    body = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    json = body ? post_for_json(to_port, "/translate", body) : NULL;
    result = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    if (cJSON_IsString(result))
        out = strdup(result->valuestring);
    cJSON_Delete(json);
    free(body);
    return out;
}

/* Writes the first count lines of data/multi30k/name to path. Returns 0
 * or -1. */
static int write_head(const char *data, const char *name, const char *path, size_t count)
{
    char in[512], err[512], **lines;
    size_t n;
    FILE *f;

    snprintf(in, sizeof(in), "%s/multi30k/%s", data, name);
    if (corpus_read_lines(in, &lines, &n, err, sizeof(err)) != 0)
        return -1;
    f = fopen(path, "w");
    for (size_t k = 0; f && k < n && k < count; k++)
        fprintf(f, "%s\n", lines[k]);
    if (f)
        fclose(f);
    corpus_free_lines(lines, n);
    return f ? 0 : -1;
}

static int suite_init(void)
{
    const char *data = test_data_dir();
    char err[1024];

    en_de = model_load(SEQMT_DEFAULT_MODEL, err, sizeof(err));
    if (!en_de) {
        fprintf(stderr, "cannot load %s: %s\n", SEQMT_DEFAULT_MODEL, err);
        return -1;
    }
    snprintf(workdir, sizeof(workdir), "/tmp/seqmt-serve-test-XXXXXX");
    if (!mkdtemp(workdir))
        return -1;
    if (data) {
        /* A German-English model small enough to train in about a second,
         * on the first 600 training and 50 validation pairs. */
        static const char *names[4] = {"train.de.gz", "train.en.gz", "val.de.gz", "val.en.gz"};
        char out[4][320], path[320];
        train_options o = train_default_options();

        for (int i = 0; i < 4; i++) {
            snprintf(out[i], sizeof(out[i]), "%s/%.8s", workdir, names[i]);
            if (write_head(data, names[i], out[i], i < 2 ? 600 : 50) != 0)
                return -1;
        }
        snprintf(path, sizeof(path), "%s/de-en.seqmt", workdir);
        o.train_src = out[0];
        o.train_tgt = out[1];
        o.valid_src = out[2];
        o.valid_tgt = out[3];
        o.output = path;
        o.src_lang = "de";
        o.tgt_lang = "en";
        o.layers = 1;
        o.embed = 16;
        o.hidden = 24;
        o.min_count = 1;
        o.epochs = 1;
        o.batch_size = 32;
        if (train_run(&o, NULL, NULL, err, sizeof(err)) != 0) {
            fprintf(stderr, "training the German-English test model failed: %s\n", err);
            return -1;
        }
        de_en = model_load(path, err, sizeof(err));
        if (!de_en)
            return -1;
    }
    return 0;
}

static int suite_clean(void)
{
    char cmd[400];

    model_free(en_de);
    model_free(de_en);
    if (workdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

/* ---- beam search ---- */

/* The best n-best hypothesis equals beam_search's output, and each score
 * equals minus the model's cross-entropy of that output with </s>, which
 * model_loss computes independently of beam search. Tolerance: 1e-4 per
 * target token plus 1e-3 of the score, for float32 sums and products taken
 * in another order (the first hypothesis differs by about 2e-4 in 8 tokens
 * with the bundled model). */
static void test_nbest_scores_equal_loss(void)
{
    beam_options bo = beam_default_options();
    beam_nbest_options nopt = {.n_best = 3};
    beam_source src = {0};
    beam_nbest result = {0};
    int32_t *best = NULL, best_len = 0;
    const int32_t *ids;
    model_workspace *ws = model_workspace_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
    CU_ASSERT_EQUAL_FATAL(beam_source_prepare(en_de, "Two dogs play in the snow.", &src), 0);
    ids = src.ids;
    CU_ASSERT_EQUAL_FATAL(beam_search(en_de, &bo, &ids, &src.len, 1, &best, &best_len), 0);
    CU_ASSERT_EQUAL_FATAL(beam_search_nbest(en_de, &bo, &nopt, &ids, &src.len, 1, &result), 0);
    CU_ASSERT_EQUAL(result.count, 3);
    CU_ASSERT_EQUAL(result.stopped, 0);
    CU_ASSERT_TRUE_FATAL(result.count > 0);
    CU_ASSERT_EQUAL(result.hyps[0].len, best_len);
    CU_ASSERT_EQUAL(memcmp(result.hyps[0].ids, best, sizeof(int32_t) * (size_t)best_len), 0);

    for (int k = 0; k < result.count; k++) {
        int32_t *tgt = result.hyps[k].ids, tgt_len = result.hyps[k].len;
        int32_t *src_ids = src.ids, src_len = src.len;
        corpus one = {1, &src_ids, &tgt, &src_len, &tgt_len};
        size_t index = 0;
        model_batch batch = {0};
        double loss = 0.0, score = result.hyps[k].score, tolerance;

        CU_ASSERT_EQUAL_FATAL(corpus_fill_batch(&one, &index, 1, &batch), 0);
        CU_ASSERT_EQUAL_FATAL(model_loss(en_de, &batch, NULL, 0.0f, 0.0f, NULL, ws, &loss), 0);
        tolerance = 1e-4 * (tgt_len + 1) + 1e-3 * fabs(score);
        if (fabs(score + loss) > tolerance)
            fprintf(stderr, "\n  hypothesis %d: score %.6f, loss %.6f\n", k, score, loss);
        CU_ASSERT_TRUE(fabs(score + loss) <= tolerance);
        corpus_batch_free(&batch);
    }
    free(best);
    beam_nbest_free(&result);
    beam_source_free(&src);
    model_workspace_free(ws);
}

/* An empty hypothesis ranks after every non-empty one even when its
 * normalized score is the highest. A length penalty of -3 multiplies each
 * score by length^3, which puts the empty hypothesis of "Hello" (length 1,
 * </s> alone) ahead of all others by normalized score. The bundled model
 * seldom ends a translation before its first word, so the test raises the
 * bias of </s> for the two searches to bring the empty hypothesis into the
 * beam. */
static void test_nbest_empty_ranks_last(void)
{
    beam_options bo = beam_default_options();
    beam_nbest_options nopt = {.n_best = 5};
    beam_source src = {0};
    beam_nbest result = {0};
    int32_t *best = NULL, best_len = 0;
    const int32_t *ids;
    int empty_at = -1, rc_nbest, rc_best;
    float eos_bias = en_de->w.out_b[VOCAB_EOS];

    bo.length_penalty = -3.0f;
    CU_ASSERT_EQUAL_FATAL(beam_source_prepare(en_de, "Hello", &src), 0);
    ids = src.ids;
    en_de->w.out_b[VOCAB_EOS] += 8.0f;
    rc_nbest = beam_search_nbest(en_de, &bo, &nopt, &ids, &src.len, 1, &result);
    rc_best = beam_search(en_de, &bo, &ids, &src.len, 1, &best, &best_len);
    en_de->w.out_b[VOCAB_EOS] = eos_bias;
    CU_ASSERT_EQUAL_FATAL(rc_nbest, 0);
    CU_ASSERT_EQUAL_FATAL(rc_best, 0);
    CU_ASSERT_TRUE_FATAL(result.count >= 2);
    for (int k = 0; k < result.count; k++)
        if (result.hyps[k].len == 0)
            empty_at = k;

    /* The search must have finished an empty hypothesis for the test to
     * mean anything, and it must be last although its score ranks first. */
    CU_ASSERT_EQUAL_FATAL(empty_at, result.count - 1);
    CU_ASSERT_TRUE(result.hyps[empty_at].normalized_score > result.hyps[0].normalized_score);
    CU_ASSERT_TRUE(result.hyps[0].len > 0);
    for (int k = 1; k < empty_at; k++)
        CU_ASSERT_TRUE(result.hyps[k].normalized_score <= result.hyps[k - 1].normalized_score);

    /* beam_search picks the same best hypothesis. */
    CU_ASSERT_EQUAL(best_len, result.hyps[0].len);
    if (best_len == result.hyps[0].len)
        CU_ASSERT_EQUAL(memcmp(best, result.hyps[0].ids, sizeof(int32_t) * (size_t)best_len), 0);
    free(best);
    beam_nbest_free(&result);
    beam_source_free(&src);
}

/* A stop callback that fires ends only its own sentence. */
static int stop_second(void *ctx, size_t i)
{
    (void)ctx;
    return i == 1;
}

static void test_stop_ends_one_sentence(void)
{
    beam_options bo = beam_default_options();
    beam_nbest_options nopt = {.n_best = 1, .stop = stop_second};
    beam_source src[2] = {{0}};
    beam_nbest result[2] = {{0}};
    const int32_t *ids[2];
    int32_t len[2];
    char *text, *expected = reference(en_de, texts[0]);

    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(beam_source_prepare(en_de, texts[i], &src[i]), 0);
        ids[i] = src[i].ids;
        len[i] = src[i].len;
    }
    CU_ASSERT_EQUAL_FATAL(beam_search_nbest(en_de, &bo, &nopt, ids, len, 2, result), 0);
    CU_ASSERT_EQUAL(result[0].stopped, 0);
    CU_ASSERT_EQUAL(result[1].stopped, 1);
    CU_ASSERT_EQUAL(result[1].count, 0);
    CU_ASSERT_EQUAL_FATAL(result[0].count, 1);
    text = beam_render(en_de, result[0].hyps[0].ids, result[0].hyps[0].len, &src[0]);
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT_PTR_NOT_NULL(expected);
    if (text && expected)
        CU_ASSERT_STRING_EQUAL(text, expected);
    free(text);
    free(expected);
    for (int i = 0; i < 2; i++) {
        beam_nbest_free(&result[i]);
        beam_source_free(&src[i]);
    }
}

/* ---- batching ---- */

typedef struct {
    pthread_t thread;
    unsigned short port;
    const char *text;
    char *translation;
} client;

static void *client_thread(void *arg)
{
    client *c = arg;

    c->translation = translate_over_http(c->port, c->text);
    return NULL;
}

/* Translates every text sequentially on to_port into out[]. */
static void translate_all_sequentially(unsigned short to_port, char **out)
{
    for (size_t i = 0; i < TEXT_COUNT; i++)
        out[i] = translate_over_http(to_port, texts[i]);
}

/* CONCURRENT_CLIENTS requests at once (each text twice) equal the
 * sequential replies, which equal unbatched beam search and the replies of
 * a server that decodes one sentence at a time. */
static void test_batched_equals_unbatched(void)
{
    counting_translator batched, single;
    http_server *s = start_en_de(&batched, 64, 0), *one = start_en_de(&single, 1, 0);
    client clients[CONCURRENT_CLIENTS];
    char *sequential[TEXT_COUNT], *one_at_a_time[TEXT_COUNT];

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);

    /* Step 1: each text alone, and compared with beam search. */
    translate_all_sequentially(http_server_port(s), sequential);
    for (size_t i = 0; i < TEXT_COUNT; i++) {
        char *expected = reference_text(en_de, texts[i]);

        CU_ASSERT_PTR_NOT_NULL(sequential[i]);
        CU_ASSERT_PTR_NOT_NULL(expected);
        if (sequential[i] && expected) {
            if (strcmp(sequential[i], expected) != 0)
                fprintf(stderr, "\n  \"%s\": server \"%s\", beam search \"%s\"\n", texts[i],
                        sequential[i], expected);
            CU_ASSERT_STRING_EQUAL(sequential[i], expected);
        }
        free(expected);
    }

    /* Step 2: all at once, so that translate threads batch them. */
    atomic_store(&batched.largest_call, 0);
    for (int i = 0; i < CONCURRENT_CLIENTS; i++) {
        clients[i].port = http_server_port(s);
        clients[i].text = texts[(size_t)i % TEXT_COUNT];
        clients[i].translation = NULL;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&clients[i].thread, NULL, client_thread,
                                             &clients[i]),
                              0);
    }
    for (int i = 0; i < CONCURRENT_CLIENTS; i++) {
        const char *expected = sequential[(size_t)i % TEXT_COUNT];

        pthread_join(clients[i].thread, NULL);
        CU_ASSERT_PTR_NOT_NULL(clients[i].translation);
        if (clients[i].translation && expected)
            CU_ASSERT_STRING_EQUAL(clients[i].translation, expected);
        free(clients[i].translation);
    }
    fprintf(stderr, "\n  largest batch under load: %d sentences\n",
            atomic_load(&batched.largest_call));
    CU_ASSERT_TRUE(atomic_load(&batched.largest_call) > 2);

    /* Step 3: one request per call, whose sentences beam search decodes
     * one at a time (batch_size 1). The longest text has 2 sentences, so
     * that is the maximum per call. */
    translate_all_sequentially(http_server_port(one), one_at_a_time);
    CU_ASSERT_EQUAL(atomic_load(&single.largest_call), 2);
    for (size_t i = 0; i < TEXT_COUNT; i++) {
        if (sequential[i] && one_at_a_time[i])
            CU_ASSERT_STRING_EQUAL(one_at_a_time[i], sequential[i]);
        free(sequential[i]);
        free(one_at_a_time[i]);
    }
    http_server_stop(s);
    http_server_stop(one);
}

/* ---- texts, formats and options ---- */

static void test_lines_and_sentences(void)
{
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 0);
    char *a = reference(en_de, "Two dogs play in the snow.");
    char *b = reference(en_de, "A man is riding a bike.");
    char *d = reference(en_de, "A little girl is sitting on a bench.");
    char *got, expected[1024];

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE_FATAL(a && b && d);
    got = translate_over_http(http_server_port(s), "Two dogs play in the snow.\n\n"
                                                   "A man is riding a bike.  A little girl is "
                                                   "sitting on a bench.\n   ");
    snprintf(expected, sizeof(expected), "%s\n\n%s  %s\n", a, b, d);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got)
        CU_ASSERT_STRING_EQUAL(got, expected);
    free(got);
    free(a);
    free(b);
    free(d);
    http_server_stop(s);
}

static void test_html_format(void)
{
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 0);
    char *a = reference(en_de, "Two dogs play in the snow.");
    char *b = reference(en_de, "A man is riding a bike.");
    char *a_html = a ? html_text_encode(a) : NULL, *b_html = b ? html_text_encode(b) : NULL;
    char expected[1024];
    cJSON *json;
    const cJSON *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE_FATAL(a_html && b_html);
    json = post_for_json(http_server_port(s), "/translate",
                         "{\"q\": \"<p><b>Two dogs play in the snow.</b> A man is riding a "
                         "bike.</p>\", \"format\": \"html\"}");
    text = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    snprintf(expected, sizeof(expected), "<p><b>%s</b> %s</p>", a_html, b_html);
    CU_ASSERT_TRUE(cJSON_IsString(text));
    if (cJSON_IsString(text))
        CU_ASSERT_STRING_EQUAL(text->valuestring, expected);
    cJSON_Delete(json);
    free(a);
    free(b);
    free(a_html);
    free(b_html);
    http_server_stop(s);
}

/* Numbers, a URL and an emoji of the source reach the translation and
 * every alternative exactly once, whether the model's vocabulary contains
 * them or not. */
static void test_protected_tokens_over_http(void)
{
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 0);
    static const char *const kept[] = {"2", "3", "https://example.org/x?y=1", "\xF0\x9F\x98\x80"};
    cJSON *json;
    const cJSON *text, *alternatives, *alt;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    json = post_for_json(http_server_port(s), "/translate",
                         "{\"q\": \"A man with 2 dogs and 3 cats visits https://example.org/x?y=1 "
                         "\xF0\x9F\x98\x80\", \"alternatives\": 2}");
    text = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    alternatives = cJSON_GetObjectItemCaseSensitive(json, "alternatives");
    CU_ASSERT_TRUE_FATAL(cJSON_IsString(text));
    CU_ASSERT_TRUE(cJSON_IsArray(alternatives));
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        CU_ASSERT_EQUAL(test_count_occurrences(text->valuestring, kept[i]), 1);
        cJSON_ArrayForEach(alt, alternatives)
        {
            CU_ASSERT_TRUE_FATAL(cJSON_IsString(alt));
            CU_ASSERT_EQUAL(test_count_occurrences(alt->valuestring, kept[i]), 1);
        }
    }
    cJSON_Delete(json);
    http_server_stop(s);
}

static void test_v1_nbest_from_model(void)
{
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 0);
    char *best = reference(en_de, "Two dogs play in the snow.");
    cJSON *json;
    const cJSON *entry, *list, *hyp;
    int index = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(best);
    json = post_for_json(http_server_port(s), "/v1/translate",
                         "{\"q\": \"Two dogs play in the snow.\", \"source\": \"en\", "
                         "\"target\": \"de\", \"beam_size\": 5, \"n_best\": 3}");
    entry = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "translations"), 0);
    list = cJSON_GetObjectItem(entry, "n_best");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(entry, "text")), best);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(list), 3);
    cJSON_ArrayForEach(hyp, list)
    {
        double score = cJSON_GetNumberValue(cJSON_GetObjectItem(hyp, "score"));
        const char *text = string_of(cJSON_GetObjectItem(hyp, "text"));

        /* A log probability is negative and finite; hypotheses differ. */
        CU_ASSERT_TRUE(isfinite(score) && score < 0.0);
        CU_ASSERT_TRUE(text[0] != '\0');
        if (index == 0) {
            CU_ASSERT_DOUBLE_EQUAL(
                score, cJSON_GetNumberValue(cJSON_GetObjectItem(entry, "score")), 1e-9);
        } else {
            CU_ASSERT_STRING_NOT_EQUAL(
                text, string_of(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "text")));
        }
        index++;
    }
    cJSON_Delete(json);

    /* max_length caps the output tokens. */
    json = post_for_json(http_server_port(s), "/v1/translate",
                         "{\"q\": \"Two dogs play in the snow.\", \"max_length\": 2}");
    entry = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "translations"), 0);
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(entry, "text")),
                           "Zwei Hunde");
    cJSON_Delete(json);
    free(best);
    http_server_stop(s);
}

/* Checks the ranked n-best list of a /v1/translate entry. The list is
 * sorted by normalized_score with empty texts last. The server decodes with
 * a length penalty of 1.0, so normalized_score is score / length and
 * score / normalized_score is a whole number of tokens. Tolerance: 1e-3
 * tokens, for the float32 division. */
static void check_ranked_list(const cJSON *entry)
{
    const cJSON *list = cJSON_GetObjectItem(entry, "n_best"), *hyp;
    double previous = INFINITY;
    int seen_empty = 0;

    CU_ASSERT_TRUE_FATAL(cJSON_GetArraySize(list) > 0);
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(entry, "text")),
                           string_of(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "text")));
    CU_ASSERT_DOUBLE_EQUAL(
        cJSON_GetNumberValue(cJSON_GetObjectItem(entry, "normalized_score")),
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "normalized_score")),
        1e-9);
    cJSON_ArrayForEach(hyp, list)
    {
        const cJSON *normalized_item = cJSON_GetObjectItem(hyp, "normalized_score");
        double score = cJSON_GetNumberValue(cJSON_GetObjectItem(hyp, "score"));
        double normalized = cJSON_GetNumberValue(normalized_item);
        double length = score / normalized;
        int empty = string_of(cJSON_GetObjectItem(hyp, "text"))[0] == '\0';

        CU_ASSERT_TRUE(cJSON_IsNumber(normalized_item));
        CU_ASSERT_TRUE(isfinite(normalized) && normalized < 0.0);
        CU_ASSERT_TRUE(length >= 1.0 - 1e-3);
        CU_ASSERT_TRUE(fabs(length - round(length)) < 1e-3);
        if (empty) {
            seen_empty = 1;
            continue;
        }
        CU_ASSERT_FALSE(seen_empty); /* nothing non-empty after an empty text */
        CU_ASSERT_TRUE(normalized <= previous);
        previous = normalized;
    }
}

/* /v1/translate ranks by normalized_score and reports it with score, and
 * the alternatives of /translate follow the same ranking. */
static void test_v1_ranked_by_normalized_score(void)
{
    static const char *const sentences[] = {"Hello", "A dog runs.", "?", "Yes.",
                                            "Two dogs play in the snow."};
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 0);
    char body[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (size_t i = 0; i < sizeof(sentences) / sizeof(sentences[0]); i++) {
        cJSON *v1, *libre;
        const cJSON *entry, *list, *alternatives, *hyp;
        cJSON *expected = cJSON_CreateArray();
        const char *best;

        /* /translate with 3 alternatives decodes with beam 5 and 4 hypotheses. */
        snprintf(body, sizeof(body), "{\"q\": \"%s\", \"beam_size\": 5, \"n_best\": 4}",
                 sentences[i]);
        v1 = post_for_json(http_server_port(s), "/v1/translate", body);
        snprintf(body, sizeof(body), "{\"q\": \"%s\", \"alternatives\": 3}", sentences[i]);
        libre = post_for_json(http_server_port(s), "/translate", body);
        entry = cJSON_GetArrayItem(cJSON_GetObjectItem(v1, "translations"), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(entry);
        CU_ASSERT_PTR_NOT_NULL_FATAL(libre);
        check_ranked_list(entry);

        /* The translation is the first entry and never empty; the
         * alternatives are the distinct non-empty entries after it. */
        list = cJSON_GetObjectItem(entry, "n_best");
        best = string_of(cJSON_GetObjectItem(entry, "text"));
        CU_ASSERT_TRUE(best[0] != '\0');
        CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(libre, "translatedText")), best);
        cJSON_ArrayForEach(hyp, list)
        {
            const char *text = string_of(cJSON_GetObjectItem(hyp, "text"));
            const cJSON *item;
            int seen = text[0] == '\0' || strcmp(text, best) == 0;

            cJSON_ArrayForEach(item, expected) seen |= strcmp(item->valuestring, text) == 0;
            if (!seen)
                cJSON_AddItemToArray(expected, cJSON_CreateString(text));
        }
        alternatives = cJSON_GetObjectItem(libre, "alternatives");
        CU_ASSERT_TRUE(cJSON_Compare(alternatives, expected, 1));
        if (!cJSON_Compare(alternatives, expected, 1)) {
            char *got = cJSON_PrintUnformatted(alternatives);
            char *want = cJSON_PrintUnformatted(expected);

            fprintf(stderr, "\n  %s: alternatives %s, expected %s\n", sentences[i], got, want);
            free(got);
            free(want);
        }
        cJSON_Delete(expected);
        cJSON_Delete(v1);
        cJSON_Delete(libre);
    }

    /* The normalized score of a text of two sentences is the sum of theirs. */
    {
        cJSON *v1 = post_for_json(http_server_port(s), "/v1/translate",
                                  "{\"q\": \"Hello. A dog runs.\", \"n_best\": 3}");
        cJSON *one = post_for_json(http_server_port(s), "/v1/translate",
                                   "{\"q\": [\"Hello.\", \"A dog runs.\"]}");
        const cJSON *entry = cJSON_GetArrayItem(cJSON_GetObjectItem(v1, "translations"), 0);
        const cJSON *parts = cJSON_GetObjectItem(one, "translations");
        double sum = 0.0;

        CU_ASSERT_PTR_NOT_NULL_FATAL(entry);
        for (int k = 0; k < 2; k++)
            sum += cJSON_GetNumberValue(
                cJSON_GetObjectItem(cJSON_GetArrayItem(parts, k), "normalized_score"));
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(entry, "normalized_score")),
                               sum, 1e-6);
        cJSON_Delete(v1);
        cJSON_Delete(one);
    }
    http_server_stop(s);
}

static void test_token_limit_of_model(void)
{
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 0);
    char body[4096];
    size_t len = 0;
    http_response r;
    cJSON *json = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    len += (size_t)snprintf(body, sizeof(body), "{\"q\": \"");
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len, "dog ");
    snprintf(body + len, sizeof(body) - len, "\"}");
    CU_ASSERT_EQUAL_FATAL(send_request_at(http_server_port(s), "POST", "/translate",
                                          "application/json", body, strlen(body), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(error_text(&r, &json), "has 300 tokens, over the limit of 256"));
    cJSON_Delete(json);
    response_free(&r);
    CU_ASSERT_EQUAL(atomic_load(&c.calls), 0);
    http_server_stop(s);
}

/* A request that would decode for seconds gets 504 soon after its
 * deadline, because decoding checks it between steps. */
static void test_timeout_stops_decoding(void)
{
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 100);
    cJSON *q = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(q, "q");
    char *body;
    http_response r;
    struct timespec start, end;
    double took;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (int i = 0; i < 48; i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(texts[(size_t)i % TEXT_COUNT]));
    cJSON_AddNumberToObject(q, "beam_size", 16);
    body = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    clock_gettime(CLOCK_MONOTONIC, &start);
    CU_ASSERT_EQUAL_FATAL(send_request_at(http_server_port(s), "POST", "/v1/translate",
                                          "application/json", body, strlen(body), &r),
                          0);
    clock_gettime(CLOCK_MONOTONIC, &end);
    took = 1e3 * (double)(end.tv_sec - start.tv_sec) + 1e-6 * (double)(end.tv_nsec - start.tv_nsec);
    CU_ASSERT_EQUAL(r.status, 504);
    if (took >= 1500.0)
        fprintf(stderr, "\n  504 came after %.0f ms\n", took);
    CU_ASSERT_TRUE(took < 1500.0);
    response_free(&r);
    free(body);
    http_server_stop(s);
}

/* ---- several models ---- */

static void test_two_models_two_pairs(void)
{
    static const http_language_pair pairs[] = {{"en", "de"}, {"de", "en"}};
    const char unserved[] = "{\"q\": \"x\", \"source\": \"en\", \"target\": \"fr\"}";
    const model *models[2] = {en_de, de_en};
    counting_translator c;
    http_server *s;
    char *expected_de, *expected_en;
    http_response r;
    cJSON *json;

    if (!de_en) {
        fprintf(stderr, "SKIP: no corpus, no German-English test model\n");
        return;
    }
    CU_ASSERT_STRING_EQUAL(de_en->cfg.src_lang, "de");
    s = start_model_server(&c, models, pairs, 2, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    expected_de = reference(en_de, "Two dogs play in the snow.");
    expected_en = reference(de_en, "Zwei Hunde spielen im Schnee.");

    json = post_for_json(http_server_port(s), "/translate",
                         "{\"q\": \"Zwei Hunde spielen im Schnee.\", \"source\": \"de\", "
                         "\"target\": \"en\"}");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "translatedText")),
                           expected_en);
    cJSON_Delete(json);
    json = post_for_json(http_server_port(s), "/translate",
                         "{\"q\": \"Zwei Hunde spielen im Schnee.\", \"source\": \"auto\", "
                         "\"target\": \"en\"}");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "translatedText")),
                           expected_en);
    CU_ASSERT_STRING_EQUAL(
        string_of(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "detectedLanguage"), "language")),
        "de");
    cJSON_Delete(json);
    json = post_for_json(http_server_port(s), "/translate",
                         "{\"q\": \"Two dogs play in the snow.\", \"source\": \"en\", "
                         "\"target\": \"de\"}");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "translatedText")),
                           expected_de);
    cJSON_Delete(json);

    CU_ASSERT_EQUAL_FATAL(get_path(http_server_port(s), "/languages", &r), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "[{\"code\":\"en\",\"name\":\"English\",\"targets\":[\"de\"]},"
                                   "{\"code\":\"de\",\"name\":\"German\",\"targets\":[\"en\"]}]");
    response_free(&r);
    CU_ASSERT_EQUAL_FATAL(send_request_at(http_server_port(s), "POST", "/translate",
                                          "application/json", unserved, sizeof(unserved) - 1,
                                          &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body ? r.body : "", "en-fr is not served"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body ? r.body : "", "en-de, de-en"));
    response_free(&r);
    free(expected_de);
    free(expected_en);
    http_server_stop(s);
}

/* ---- metrics ---- */

/* seqmt_translated_tokens_total adds up the tokens that the model's own
 * tokenizer makes of every sentence translated, and the batch histogram
 * counts every callback call. */
static void test_metrics_count_model_tokens(void)
{
    static const char *const sentences[] = {
        "Two men are working on a roof.",
        "A woman watches them.",
        "A boy jumps into the water.",
    };
    static exposition before, after;
    counting_translator c;
    http_server *s = start_en_de(&c, 0, 0);
    size_t tokens = 0;
    cJSON *json;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (size_t i = 0; i < 3; i++)
        tokens += translator_count_tokens(&c.t, 0, sentences[i]);
    CU_ASSERT(tokens > 10);
    CU_ASSERT_EQUAL_FATAL(exposition_scrape(http_server_port(s), &before), 0);
    json = post_for_json(http_server_port(s), "/translate",
                         "{\"q\": [\"Two men are working on a roof. A woman watches them.\", "
                         "\"A boy jumps into the water.\"]}");
    CU_ASSERT_PTR_NOT_NULL(json);
    cJSON_Delete(json);
    if (exposition_scrape(http_server_port(s), &after) != 0)
        fprintf(stderr, "\n  GET /metrics: %s\n", after.error);
    CU_ASSERT_EQUAL(exposition_growth(&before, &after, "seqmt_translated_sentences_total", ""), 3);
    CU_ASSERT_EQUAL(exposition_growth(&before, &after, "seqmt_translated_tokens_total", ""),
                    (double)tokens);
    CU_ASSERT_EQUAL(exposition_growth(&before, &after, "seqmt_batch_sentences_sum", ""), 3);
    CU_ASSERT_EQUAL(exposition_growth(&before, &after, "seqmt_batch_sentences_count", ""),
                    atomic_load(&c.calls));
    CU_ASSERT_EQUAL(exposition_value(&after, "seqmt_models_loaded", ""), 1);
    http_server_stop(s);
}

/* ---- the seqmt binary ---- */

typedef struct {
    pid_t pid;
    unsigned short port;
    char log_path[320];
} daemon_process;

/* Reads the whole log file (malloc'd, NUL-terminated), or "" copy. */
static char *read_log(const daemon_process *d)
{
    FILE *f = fopen(d->log_path, "rb");
    char *text = calloc(1, 1 << 20);
    size_t len = 0;

    if (f && text) {
        len = fread(text, 1, (1 << 20) - 1, f);
        text[len] = '\0';
    }
    if (f)
        fclose(f);
    return text;
}

#define MAX_EXTRA_FLAGS 8

/* Starts the seqmt binary on a free port with the extra flags (a NULL-ended
 * list of at most MAX_EXTRA_FLAGS), logging to a file. Returns 0, or -1
 * when it could not be started. */
static int spawn_binary(daemon_process *d, const char *const *extra_flags)
{
    const char *bin = getenv("SEQMT_BIN");
    const char *argv[14 + MAX_EXTRA_FLAGS] = {
        bin, "serve", "--model", SEQMT_DEFAULT_MODEL, "--host", "127.0.0.1", "--port", "0",
        "--translate-threads", "1", "--max-batch-sentences", "4",
    };
    size_t argc = 12;
    static int runs;

    if (!bin) {
        fprintf(stderr, "SKIP: SEQMT_BIN is not set\n");
        return -1;
    }
    for (size_t i = 0; extra_flags[i]; i++) {
        if (i == MAX_EXTRA_FLAGS)
            return -1;
        argv[argc++] = extra_flags[i];
    }
    argv[argc] = NULL;
    snprintf(d->log_path, sizeof(d->log_path), "%s/serve-%d.log", workdir, runs++);
    d->port = 0;
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        FILE *log = freopen(d->log_path, "w", stderr);

        if (!log)
            _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return 0;
}

/* Starts the seqmt binary as spawn_binary does and waits until it listens.
 * Returns 0, or -1. */
static int start_binary(daemon_process *d, const char *const *extra_flags)
{
    if (spawn_binary(d, extra_flags) != 0)
        return -1;
    for (int waited = 0; waited < BINARY_START_SECONDS * 20 && d->port == 0; waited++) {
        char *log = read_log(d);
        const char *at = log ? strstr(log, "listening on http://127.0.0.1:") : NULL;

        if (at)
            d->port = (unsigned short)atoi(at + strlen("listening on http://127.0.0.1:"));
        free(log);
        if (d->port == 0)
            usleep(50000);
    }
    if (d->port == 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        return -1;
    }
    return 0;
}

/* Waits up to BINARY_STOP_SECONDS for the process to exit. Returns its
 * exit status, or -1 after killing it. */
static int wait_binary(daemon_process *d)
{
    int status;

    for (int waited = 0; waited < BINARY_STOP_SECONDS * 20; waited++) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(50000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    return -1;
}

typedef struct {
    pthread_t thread;
    unsigned short port;
    int status;
    int rc;
} load_client;

static void *load_thread(void *arg)
{
    load_client *c = arg;
    const char body[] = "{\"q\": \"Two dogs play in the snow. A man is riding a bike.\"}";
    http_response r;

    c->rc = send_request_at(c->port, "POST", "/translate", "application/json", body,
                            sizeof(body) - 1, &r);
    c->status = r.status;
    response_free(&r);
    return NULL;
}

/* SIGTERM while requests run and wait: every one gets its 200, the
 * process exits 0, and the log names requests without their text. */
static void test_sigterm_under_load(void)
{
    daemon_process d;
    load_client clients[12];
    char *log;
    int answered = 0;

    if (start_binary(&d, (const char *[]){"--grace-period=30", NULL}) != 0) {
        CU_FAIL("the seqmt binary did not start");
        return;
    }
    for (int i = 0; i < 12; i++) {
        clients[i].port = d.port;
        clients[i].rc = -1;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&clients[i].thread, NULL, load_thread, &clients[i]),
                              0);
    }
    usleep(150000);
    CU_ASSERT_EQUAL(kill(d.pid, SIGTERM), 0);
    for (int i = 0; i < 12; i++) {
        pthread_join(clients[i].thread, NULL);
        answered += clients[i].rc == 0 && clients[i].status == 200;
    }
    CU_ASSERT_EQUAL(answered, 12);
    CU_ASSERT_EQUAL(wait_binary(&d), 0);

    log = read_log(&d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "seqmt serve: model "));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "seqmt serve: limits: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "POST /translate 200 sentences=2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "seqmt serve: stopped"));
    CU_ASSERT_PTR_NULL(strstr(log, "Two dogs"));
    free(log);
}

static void test_debug_logs_text(void)
{
    daemon_process d;
    load_client one = {.port = 0};
    char *log;

    if (start_binary(&d, (const char *[]){"--debug", NULL}) != 0) {
        CU_FAIL("the seqmt binary did not start");
        return;
    }
    one.port = d.port;
    load_thread(&one);
    CU_ASSERT_EQUAL(one.status, 200);
    kill(d.pid, SIGTERM);
    CU_ASSERT_EQUAL(wait_binary(&d), 0);
    log = read_log(&d);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "Two dogs play in the snow.") : NULL);
    free(log);
}

/* ---- API keys and rate limits of the seqmt binary ---- */

/* POSTs a JSON body to path on to_port with extra_header (one header line
 * ending in \r\n, or ""). Returns as exchange_at does. */
static int post_with_header(unsigned short to_port, const char *path, const char *extra_header,
                            const char *body, http_response *r)
{
    char request[1024];
    int len = snprintf(request, sizeof(request),
                       "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json"
                       "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       path, extra_header, strlen(body), body);

    if (len < 0 || (size_t)len >= sizeof(request))
        return -1;
    return exchange_at("127.0.0.1", to_port, request, (size_t)len, r);
}

/* Asserts that the reply has status and an error message containing
 * needle, and that the message does not repeat secret (when not NULL). */
static void check_error_reply(const http_response *r, int status, const char *needle,
                              const char *secret)
{
    cJSON *json = NULL;
    const char *message = error_text(r, &json);

    if (r->status != status || !strstr(message, needle))
        fprintf(stderr, "\n  expected %d with \"%s\", got %d: %s\n", status, needle, r->status,
                r->body ? r->body : "");
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_STRING_EQUAL(r->content_type, "application/json");
    CU_ASSERT_PTR_NOT_NULL(strstr(message, needle));
    if (secret)
        CU_ASSERT_PTR_NULL(strstr(r->body ? r->body : "", secret));
    cJSON_Delete(json);
}

/* Asserts that GET path on to_port returns 200 without any key. */
static void check_open_path(unsigned short to_port, const char *path)
{
    http_response r;

    CU_ASSERT_EQUAL_FATAL(get_path(to_port, path, &r), 0);
    if (r.status != 200)
        fprintf(stderr, "\n  GET %s without a key returned %d\n", path, r.status);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);
}

/* With --api-keys, translations need a key from the file. A request gets
 * 403 without one or with a wrong one, and 200 with a good one (in the body
 * or as a Bearer token). It gets 429 with Retry-After once the key's bucket
 * of 3 requests per minute is empty. Health, readiness, languages, metrics,
 * the OpenAPI document and the page stay open. */
static void test_api_keys_required(void)
{
    static const char good[] = "good-key-0123456789abcdef";
    static const char open_key[] = "open-key-0123456789abcdef";
    static const char wrong[] = "wrong-key-0123456789abcdef";
    static const char *const open_paths[] = {"/health", "/ready",   "/languages",
                                             "/openapi.json", "/", "/app.js"};
    static exposition scraped;
    char keys_path[400], body[256], header[128], *expected, *log;
    daemon_process d;
    http_response r;
    cJSON *json;
    FILE *f;
    unsigned retry_after;

    snprintf(keys_path, sizeof(keys_path), "%s/keys.txt", workdir);
    f = fopen(keys_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "# keys of the access test\n%s 3\n%s unlimited  # no limit\n", good, open_key);
    fclose(f);
    if (start_binary(&d, (const char *[]){"--api-keys", keys_path, NULL}) != 0) {
        CU_FAIL("the seqmt binary did not start");
        return;
    }

    /* No key, a wrong key in the body or as a Bearer token: 403. */
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", "{\"q\": \"A dog.\"}", &r), 0);
    check_error_reply(&r, 403, "missing api_key", NULL);
    response_free(&r);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/v1/translate", "", "{\"q\": \"A dog.\"}", &r), 0);
    check_error_reply(&r, 403, "missing api_key", NULL);
    response_free(&r);
    snprintf(body, sizeof(body), "{\"q\": \"A dog.\", \"api_key\": \"%s\"}", wrong);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", body, &r), 0);
    check_error_reply(&r, 403, "invalid api_key", wrong);
    response_free(&r);
    snprintf(header, sizeof(header), "Authorization: Bearer %s\r\n", wrong);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", header, "{\"q\": \"A dog.\"}", &r), 0);
    check_error_reply(&r, 403, "invalid api_key", wrong);
    response_free(&r);

    /* The good key: a real translation, then two more requests. */
    snprintf(body, sizeof(body), "{\"q\": \"Two dogs play in the snow.\", \"api_key\": \"%s\"}",
             good);
    json = post_for_json(d.port, "/translate", body);
    expected = reference(en_de, "Two dogs play in the snow.");
    CU_ASSERT_PTR_NOT_NULL(expected);
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "translatedText")),
                           expected ? expected : "");
    cJSON_Delete(json);
    free(expected);
    snprintf(header, sizeof(header), "Authorization: Bearer %s\r\n", good);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", header, "{\"q\": \"\"}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);
    snprintf(body, sizeof(body), "{\"q\": \"\", \"api_key\": \"%s\"}", good);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", body, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);

    /* The fourth request within a minute: 429 with Retry-After of 1 to 20
     * seconds, the time one request takes to refill at 3 per minute. */
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", body, &r), 0);
    check_error_reply(&r, 429, "rate limit exceeded for this API key", good);
    retry_after = (unsigned)strtoul(r.retry_after, NULL, 10);
    CU_ASSERT(retry_after >= 1 && retry_after <= 20);
    response_free(&r);

    /* A good key followed by \u0000 and more text is no key: 400. */
    snprintf(body, sizeof(body), "{\"q\": \"A dog.\", \"api_key\": \"%s\\u0000junk\"}",
             open_key);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", body, &r), 0);
    check_error_reply(&r, 400, "field \"api_key\" contains \\u0000", open_key);
    response_free(&r);

    /* Another key has its own bucket, and its line lifts the limit. */
    snprintf(body, sizeof(body), "{\"q\": \"\", \"api_key\": \"%s\"}", open_key);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", body, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        response_free(&r);
    }

    /* Routes other than translation need no key. */
    for (size_t i = 0; i < sizeof(open_paths) / sizeof(open_paths[0]); i++)
        check_open_path(d.port, open_paths[i]);
    if (exposition_scrape(d.port, &scraped) == 0) {
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_errors_total", "kind=\"forbidden\""),
                        4);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_errors_total",
                                         "kind=\"rate_limited\""),
                        1);
    } else {
        fprintf(stderr, "\n  GET /metrics: %s\n", scraped.error);
        CU_FAIL("GET /metrics without a key failed");
    }

    /* The log states that keys are required but never shows one. */
    kill(d.pid, SIGTERM);
    CU_ASSERT_EQUAL(wait_binary(&d), 0);
    log = read_log(&d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "seqmt serve: API keys required (2 keys from "));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "POST /translate 403"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "POST /translate 429"));
    CU_ASSERT_PTR_NULL(strstr(log, "0123456789abcdef"));
    free(log);
}

/* Without --api-keys, --rate-limit gives each client address a bucket:
 * the third translation request within a minute at 2 per minute is 429,
 * and an api_key field does not lift it. /health is not limited. */
static void test_rate_limit_per_address(void)
{
    daemon_process d;
    http_response r;
    char *log;
    unsigned retry_after;

    if (start_binary(&d, (const char *[]){"--rate-limit", "2", NULL}) != 0) {
        CU_FAIL("the seqmt binary did not start");
        return;
    }
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", "{\"q\": \"\"}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/v1/translate", "", "{\"q\": \"\"}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "",
                                     "{\"q\": \"\", \"api_key\": \"any-key-0123456789abc\"}", &r),
                    0);
    check_error_reply(&r, 429, "rate limit exceeded for this client address", NULL);
    retry_after = (unsigned)strtoul(r.retry_after, NULL, 10);
    CU_ASSERT(retry_after >= 1 && retry_after <= 30);
    response_free(&r);
    check_open_path(d.port, "/health");
    check_open_path(d.port, "/metrics");

    kill(d.pid, SIGTERM);
    CU_ASSERT_EQUAL(wait_binary(&d), 0);
    log = read_log(&d);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "seqmt serve: no API keys required, rate limit 2 "
                                             "requests per minute per client address")
                               : NULL);
    free(log);
}

/* An invalid keys file stops the binary before it listens, with exit
 * status 2 and a message that names the file and line but not the key. */
static void test_invalid_keys_file(void)
{
    char keys_path[400], *log;
    daemon_process d;
    FILE *f;

    snprintf(keys_path, sizeof(keys_path), "%s/bad-keys.txt", workdir);
    f = fopen(keys_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "good-key-0123456789abcdef\nshort-secret\n");
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(spawn_binary(&d, (const char *[]){"--api-keys", keys_path, NULL}), 0);
    CU_ASSERT_EQUAL(wait_binary(&d), 2);
    log = read_log(&d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "bad-keys.txt line 2"));
    CU_ASSERT_PTR_NULL(strstr(log, "short-secret"));
    CU_ASSERT_PTR_NULL(strstr(log, "listening on"));
    free(log);
}

/* ---- request limits of the seqmt binary ---- */

#define SMALL_BODY_LIMIT 200 /* --max-body-bytes of test_max_body_bytes_flag */

/* Sends a POST /translate with a chunked body of size bytes (a JSON text
 * padded with spaces) to to_port. Returns as exchange_at does. */
static int post_chunked(unsigned short to_port, size_t size, http_response *r)
{
    static const char head[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    static const char json[] = "{\"q\": \"A dog.\"}";
    char request[1024];
    size_t len = sizeof(head) - 1;

    if (size < sizeof(json) - 1 || len + size + 32 > sizeof(request))
        return -1;
    memcpy(request, head, len);
    len += (size_t)snprintf(request + len, sizeof(request) - len, "%zx\r\n", size);
    memcpy(request + len, json, sizeof(json) - 1);
    memset(request + len + sizeof(json) - 1, ' ', size - (sizeof(json) - 1));
    len += size;
    len += (size_t)snprintf(request + len, sizeof(request) - len, "\r\n0\r\n\r\n");
    return exchange_at("127.0.0.1", to_port, request, len, r);
}

/* Returns what `seqmt serve --help` prints to stdout (malloc'd), or NULL
 * when it cannot run or exits with a status other than 0. */
static char *serve_help(void)
{
    const char *bin = getenv("SEQMT_BIN");
    char command[512];
    char *text = calloc(1, 1 << 16);
    FILE *p;
    size_t len = 0;

    if (!bin || !text) {
        free(text);
        return NULL;
    }
    snprintf(command, sizeof(command), "'%s' serve --help", bin);
    p = popen(command, "r");
    if (p)
        len = fread(text, 1, (1 << 16) - 1, p);
    text[len] = '\0';
    if (!p || pclose(p) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* --max-body-bytes sets the 413 limit. A Content-Length over it gets 413
 * from the headers alone, since the body is never sent here, and so does
 * a chunked body over it. Bodies within the limit are translated. --help
 * and the startup log name the flag, and 0 is rejected. */
static void test_max_body_bytes_flag(void)
{
    char request[512], limit[32], expected[96], *log;
    const char *const flags[] = {"--max-body-bytes", limit, NULL};
    daemon_process d;
    http_response r;
    int len;

    snprintf(limit, sizeof(limit), "%d", SMALL_BODY_LIMIT);
    snprintf(expected, sizeof(expected), "over the limit of %d bytes", SMALL_BODY_LIMIT);
    if (start_binary(&d, flags) != 0) {
        CU_FAIL("the seqmt binary did not start");
        return;
    }

    /* Headers only: a server that waited for the body would time out. */
    len = snprintf(request, sizeof(request),
                   "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n",
                   SMALL_BODY_LIMIT + 1);
    CU_ASSERT_EQUAL(exchange_at("127.0.0.1", d.port, request, (size_t)len, &r), 0);
    check_error_reply(&r, 413, expected, NULL);
    response_free(&r);

    /* Chunked bodies: one byte over the limit and exactly at it. */
    CU_ASSERT_EQUAL(post_chunked(d.port, SMALL_BODY_LIMIT + 1, &r), 0);
    check_error_reply(&r, 413, expected, NULL);
    response_free(&r);
    CU_ASSERT_EQUAL(post_chunked(d.port, SMALL_BODY_LIMIT, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);

    /* A Content-Length body within the limit. */
    CU_ASSERT_EQUAL(post_with_header(d.port, "/translate", "", "{\"q\": \"A dog.\"}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);

    kill(d.pid, SIGTERM);
    CU_ASSERT_EQUAL(wait_binary(&d), 0);
    log = read_log(&d);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "limits: max-body-bytes 200,") : NULL);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "POST /translate 413") : NULL);
    free(log);

    /* --help lists the flag with its default, and 0 stops the binary. */
    log = serve_help();
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "--max-body-bytes N") : NULL);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "in bytes; larger bodies get 413 (1048576)") : NULL);
    free(log);
    CU_ASSERT_EQUAL_FATAL(spawn_binary(&d, (const char *[]){"--max-body-bytes", "0", NULL}), 0);
    CU_ASSERT_EQUAL(wait_binary(&d), 2);
    log = read_log(&d);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "invalid value '0' for --max-body-bytes") : NULL);
    free(log);
}

int main(void)
{
    CU_pSuite suite;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("serve", suite_init, suite_clean);
    if (!suite)
        return 1;
    CU_add_test(suite, "n-best scores equal model loss", test_nbest_scores_equal_loss);
    CU_add_test(suite, "n-best empty ranks last", test_nbest_empty_ranks_last);
    CU_add_test(suite, "stop ends one sentence", test_stop_ends_one_sentence);
    CU_add_test(suite, "batched equals unbatched", test_batched_equals_unbatched);
    CU_add_test(suite, "lines and sentences", test_lines_and_sentences);
    CU_add_test(suite, "html format", test_html_format);
    CU_add_test(suite, "protected tokens over HTTP", test_protected_tokens_over_http);
    CU_add_test(suite, "v1 n-best from the model", test_v1_nbest_from_model);
    CU_add_test(suite, "v1 ranked by normalized score", test_v1_ranked_by_normalized_score);
    CU_add_test(suite, "token limit of the model", test_token_limit_of_model);
    CU_add_test(suite, "timeout stops decoding", test_timeout_stops_decoding);
    CU_add_test(suite, "two models, two pairs", test_two_models_two_pairs);
    CU_add_test(suite, "metrics count model tokens", test_metrics_count_model_tokens);
    CU_add_test(suite, "SIGTERM under load", test_sigterm_under_load);
    CU_add_test(suite, "debug logs request text", test_debug_logs_text);
    CU_add_test(suite, "API keys required", test_api_keys_required);
    CU_add_test(suite, "rate limit per address", test_rate_limit_per_address);
    CU_add_test(suite, "invalid keys file", test_invalid_keys_file);
    CU_add_test(suite, "max body bytes flag", test_max_body_bytes_flag);
    return test_run_all();
}
