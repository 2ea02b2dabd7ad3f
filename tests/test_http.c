/* Tests of the HTTP daemon over real TCP sockets on 127.0.0.1.
 *
 * The server runs with a test double for the translate callback that
 * upper-cases ASCII (lower-cases for the second language pair), so these
 * tests cover the daemon layer only, not a model: routes, limits, batching,
 * deadlines, sentence splitting, formats and stopping. The double blocks on
 * the sentence "WAIT" until the test opens a gate (at most
 * GATE_TIMEOUT_SECONDS) or the daemon's stop callback fires, and on "HOLD"
 * until the gate opens whatever the stop callback would return, which
 * keeps translate threads busy on demand. The client in http_client.h speaks
 * just enough HTTP/1.1 for the tests. Tests that need their own server
 * configuration start one on a free port and stop it before returning.
 */
#include "assets.h"
#include "exposition.h"
#include "http.h"
#include "http_client.h"
#include "testutil.h"
#include "translate_request.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TEST_MAX_BODY 4096
#define TEST_MAX_TEXTS 8
#define TEST_MAX_CHARS 1000
#define TEST_MAX_TOKENS 12
#define TEST_MAX_BEAM 4
#define TEST_MAX_LENGTH 50
#define GATE_TIMEOUT_SECONDS 10 /* a blocked callback gives up after this */
#define WAIT_TIMEOUT_MS 5000    /* how long a test waits for the server to reach a state */
#define HEALTH_MAX_MS 500       /* /health while every translate thread is busy */
#define PAUSE_MS 700            /* how long the double sleeps on "PAUSE" */
#define NAP_MS 15               /* how long the double sleeps on "NAP" */
#define QUEUED_TIMEOUT_MS 300   /* --timeout of the tests of queued deadlines */
#define EXPIRY_SLACK_MS 150     /* the latest a 504 may come after its deadline */
#define RACE_CLIENTS 24         /* concurrent requests per round of the expiry race */
#define RACE_ROUNDS 3
#define IDLE_WATCH_MS 500       /* how long a test watches the CPU time of a waiting server */
#define IDLE_CPU_MAX_MS 100     /* maximum CPU time the process may use meanwhile */
#define STOP_RACE_ROUNDS 200    /* servers stopped while a client connects */
#define STOP_RACE_MAX_MS 15000  /* the stop race ends after this even if rounds are left */
#define FD_HEADROOM 8           /* descriptors above the ones in use that the fd limit test fills */
#define FD_FILLERS_MAX 256      /* maximum descriptors it opens to reach the limit */

/* ---- translate test double ---- */

typedef struct {
    atomic_int calls;
    atomic_int waiting;    /* calls blocked at the gate now */
    atomic_int gone_calls; /* calls that saw a text starting with "GONE" */
    atomic_int sentences;  /* sentences over all calls */
    atomic_int largest_call; /* maximum sentences in one call */
    atomic_int stopped;    /* sentences ended by the stop callback */
    pthread_mutex_t mutex;
    pthread_cond_t gate_changed;
    int gate_open;
} double_state;

/* Blocks while the gate is closed, for at most GATE_TIMEOUT_SECONDS, or
 * until stop(stop_ctx, i) fires. A NULL stop is never asked. Returns
 * nonzero when stopped. */
static int wait_at_gate(double_state *state, http_stop_fn stop, void *stop_ctx, size_t i)
{
    struct timespec deadline, limit;
    int stopped = 0;

    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += GATE_TIMEOUT_SECONDS;
    atomic_fetch_add(&state->waiting, 1);
    pthread_mutex_lock(&state->mutex);
    while (!state->gate_open && !stopped) {
        /* Wake every 5 ms to ask the stop callback, as decoding steps do. */
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 5000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&state->gate_changed, &state->mutex, &deadline);
        stopped = stop ? stop(stop_ctx, i) : 0;
        if (deadline.tv_sec > limit.tv_sec)
            break;
    }
    pthread_mutex_unlock(&state->mutex);
    atomic_fetch_sub(&state->waiting, 1);
    return stopped;
}

static void set_gate(double_state *state, int open)
{
    pthread_mutex_lock(&state->mutex);
    state->gate_open = open;
    pthread_cond_broadcast(&state->gate_changed);
    pthread_mutex_unlock(&state->mutex);
}

/* Returns text upper-cased (pair 0) or lower-cased (other pairs), with
 * " #k" appended for hypothesis k > 0, as a malloc'd string. */
static char *fake_translation(const char *text, size_t pair, size_t k)
{
    size_t len = strlen(text);
    char *out = malloc(len + 24);

    if (!out)
        return NULL;
    for (size_t i = 0; i <= len; i++)
        out[i] = (char)(pair == 0 ? toupper((unsigned char)text[i])
                                  : tolower((unsigned char)text[i]));
    if (k > 0)
        snprintf(out + len, 24, " #%zu", k);
    return out;
}

/* Counts space-separated words, as a stand-in for a tokenizer. */
static size_t count_words(void *ctx, size_t pair, const char *sentence)
{
    size_t words = 0;

    (void)ctx;
    (void)pair;
    for (const char *p = sentence; *p; p++)
        words += *p != ' ' && (p == sentence || p[-1] == ' ');
    return words;
}

/* Translates each sentence into n_best hypotheses of fake_translation,
 * scored -(k + 1) with a normalized score of -(k + 1) / (words + 1), and
 * counts its words as its source tokens. Special sentences: "WAIT" blocks
 * at the gate and marks the sentence stopped when the stop callback fires
 * there. "HOLD" blocks at the gate without calling the stop callback.
 * "PAUSE" sleeps PAUSE_MS and "NAP" NAP_MS without calling the stop
 * callback. "REJECT" rejects the input (-2), "FAIL" fails the call (-1),
 * and "NO OUTPUT" gets no hypotheses without a failure. A sentence
 * starting with "EMPTY FIRST" gets an empty first hypothesis with score
 * -0.5 and normalized score 0, ahead of the rest as a model's raw ranking
 * could put it. */
static int upper_case_translate(void *ctx, size_t pair, int beam_size, http_sentence *sentences,
                                size_t n, http_stop_fn stop, void *stop_ctx, char *err,
                                size_t err_size)
{
    double_state *state = ctx;
    int largest = atomic_load(&state->largest_call);

    (void)beam_size;
    atomic_fetch_add(&state->calls, 1);
    atomic_fetch_add(&state->sentences, (int)n);
    while ((int)n > largest && !atomic_compare_exchange_weak(&state->largest_call, &largest, (int)n))
        ;
    for (size_t i = 0; i < n; i++) {
        http_sentence *s = &sentences[i];

        s->source_tokens = count_words(NULL, pair, s->text);
        if (strncmp(s->text, "GONE", 4) == 0)
            atomic_fetch_add(&state->gone_calls, 1);
        if (strcmp(s->text, "WAIT") == 0 && wait_at_gate(state, stop, stop_ctx, i)) {
            atomic_fetch_add(&state->stopped, 1);
            s->stopped = 1;
            continue;
        }
        if (strcmp(s->text, "HOLD") == 0)
            wait_at_gate(state, NULL, NULL, i);
        if (strcmp(s->text, "PAUSE") == 0 || strcmp(s->text, "NAP") == 0) {
            long ms = strcmp(s->text, "PAUSE") == 0 ? PAUSE_MS : NAP_MS;
            struct timespec pause = {0, ms * 1000000L};

            nanosleep(&pause, NULL);
        }
        if (strcmp(s->text, "REJECT") == 0) {
            snprintf(err, err_size, "test double rejects REJECT at sentence %zu", i);
            return -2;
        }
        if (strcmp(s->text, "FAIL") == 0) {
            snprintf(err, err_size, "test double refuses FAIL");
            return -1;
        }
        if (strcmp(s->text, "NO OUTPUT") == 0)
            continue;
        s->hyps = calloc((size_t)s->n_best, sizeof(*s->hyps));
        if (!s->hyps)
            return -1;
        for (int k = 0; k < s->n_best; k++) {
            int empty = k == 0 && strncmp(s->text, "EMPTY FIRST", 11) == 0;

            s->hyps[k].text = empty ? strdup("") : fake_translation(s->text, pair, (size_t)k);
            if (!s->hyps[k].text)
                return -1;
            s->hyps[k].score = empty ? -0.5f : -(float)(k + 1);
            s->hyps[k].normalized_score =
                empty ? 0.0f : s->hyps[k].score / (float)(s->source_tokens + 1);
            s->count = (size_t)k + 1;
        }
    }
    return 0;
}

/* Stands in for API key checks: the key "blocked" gets 403 and "limited"
 * gets 429 with Retry-After 7; every other request, with or without a key,
 * is served. The last client address seen goes to last_client_address,
 * under address_mutex because HTTP threads call the hook concurrently. */
static char last_client_address[64];
static pthread_mutex_t address_mutex = PTHREAD_MUTEX_INITIALIZER;

static unsigned authorize_key(void *ctx, const char *api_key, const char *endpoint,
                              const char *client_address, unsigned *retry_after_seconds,
                              char *err, size_t err_size)
{
    (void)ctx;
    pthread_mutex_lock(&address_mutex);
    snprintf(last_client_address, sizeof(last_client_address), "%s",
             client_address ? client_address : "(none)");
    pthread_mutex_unlock(&address_mutex);
    if (api_key && strcmp(api_key, "blocked") == 0) {
        snprintf(err, err_size, "api_key is not allowed on %s", endpoint);
        return 403;
    }
    if (api_key && strcmp(api_key, "limited") == 0) {
        snprintf(err, err_size, "too many requests for this api_key");
        *retry_after_seconds = 7;
        return 429;
    }
    return 0;
}

static const http_language_pair en_de[] = {{"en", "de"}};

static double_state double_calls = {
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .gate_changed = PTHREAD_COND_INITIALIZER,
    .gate_open = 1,
};
static http_server *server;
static unsigned short port;

static int start_test_server(void)
{
    http_config config = {
        .address = "127.0.0.1",
        .port = 0,
        .threads = 4,
        .max_body_bytes = TEST_MAX_BODY,
        .max_texts = TEST_MAX_TEXTS,
        .max_chars = TEST_MAX_CHARS,
        .max_tokens = TEST_MAX_TOKENS,
        .max_beam_size = TEST_MAX_BEAM,
        .max_length = TEST_MAX_LENGTH,
        .pairs = en_de,
        .pair_count = 1,
        .translate = upper_case_translate,
        .count_tokens = count_words,
        .authorize = authorize_key,
        .translate_ctx = &double_calls,
    };
    char err[256] = "";

    server = http_server_start(&config, err, sizeof(err));
    if (!server) {
        fprintf(stderr, "cannot start test server: %s\n", err);
        return 1;
    }
    port = http_server_port(server);
    return port == 0;
}

static int stop_test_server(void)
{
    http_server_stop(server);
    server = NULL;
    return 0;
}

static int exchange(const char *request, size_t request_len, http_response *r)
{
    return exchange_at("127.0.0.1", port, request, request_len, r);
}

static int send_request(const char *method, const char *path, const char *content_type,
                        const char *body, size_t body_len, http_response *r)
{
    return send_request_at(port, method, path, content_type, body, body_len, r);
}

static int post_json(const char *body, http_response *r)
{
    return send_request("POST", "/translate", "application/json", body, strlen(body), r);
}

/* Asserts a 400 whose error message contains needle. */
static void check_bad_request(const char *body, const char *needle)
{
    http_response r;
    cJSON *json = NULL;
    const char *message;

    CU_ASSERT_EQUAL_FATAL(post_json(body, &r), 0);
    message = error_text(&r, &json);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    if (!strstr(message, needle))
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", message, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, needle));
    cJSON_Delete(json);
    response_free(&r);
}

/* Asserts a 200 whose translatedText is the string expected. */
static void check_translation(const char *body, const char *expected)
{
    http_response r;
    cJSON *json;
    const cJSON *text;

    CU_ASSERT_EQUAL_FATAL(post_json(body, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    json = cJSON_Parse(r.body);
    text = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    CU_ASSERT_TRUE(cJSON_IsString(text));
    if (cJSON_IsString(text))
        CU_ASSERT_STRING_EQUAL(text->valuestring, expected);
    cJSON_Delete(json);
    response_free(&r);
}

static void check_v1_bad_request(const char *body, const char *needle);

/* Scrapes GET /metrics on to_port into out, or fails the test with the
 * reason. Returns 0 or -1. */
static int scrape_metrics(unsigned short to_port, exposition *out)
{
    if (exposition_scrape(to_port, out) == 0)
        return 0;
    fprintf(stderr, "\n  GET /metrics: %s\n", out->error);
    CU_FAIL("GET /metrics did not return valid exposition text");
    return -1;
}

/* ---- tests ---- */

static void test_translate_single_string(void)
{
    check_translation("{\"q\": \"hello world\", \"source\": \"en\", \"target\": \"de\"}",
                      "HELLO WORLD");
    check_translation("{\"q\": \"no pair given\"}", "NO PAIR GIVEN");
    check_translation("{\"q\": \"auto\", \"source\": \"auto\", \"target\": \"de\"}", "AUTO");
}

static void test_translate_array_keeps_order(void)
{
    http_response r;
    cJSON *json;
    const cJSON *list;
    const char *expected[] = {"ONE", "TWO", "THREE"};

    CU_ASSERT_EQUAL_FATAL(post_json("{\"q\": [\"one\", \"two\", \"three\"], \"target\": \"de\"}", &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    json = cJSON_Parse(r.body);
    list = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    CU_ASSERT_TRUE_FATAL(cJSON_IsArray(list));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(list), 3);
    for (int i = 0; i < 3 && i < cJSON_GetArraySize(list); i++) {
        const cJSON *item = cJSON_GetArrayItem(list, i);

        CU_ASSERT_TRUE(cJSON_IsString(item));
        if (cJSON_IsString(item))
            CU_ASSERT_STRING_EQUAL(item->valuestring, expected[i]);
    }
    cJSON_Delete(json);
    response_free(&r);
}

static void test_translate_empty_array(void)
{
    http_response r;

    CU_ASSERT_EQUAL_FATAL(post_json("{\"q\": []}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"translatedText\":[]}");
    response_free(&r);
}

static void test_health_ok(void)
{
    const char request[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    http_response r;

    CU_ASSERT_EQUAL_FATAL(exchange(request, sizeof(request) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"ok\"}");
    response_free(&r);
}

static void test_malformed_json_then_good(void)
{
    check_bad_request("{\"q\": ", "not valid JSON");
    check_bad_request("{\"q\": \"a\"} trailing", "after the JSON value");
    check_bad_request("[\"q\"]", "JSON object");
    check_translation("{\"q\": \"still serving\"}", "STILL SERVING");
}

static void test_missing_or_invalid_q(void)
{
    check_bad_request("{\"source\": \"en\", \"target\": \"de\"}", "missing field \"q\"");
    check_bad_request("{\"q\": 5}", "string or an array of strings");
    check_bad_request("{\"q\": null}", "string or an array of strings");
    check_bad_request("{\"q\": [\"a\", 3]}", "q[1] is not a string");
    check_bad_request("{\"q\": \"a\", \"target\": 7}", "\"target\" must be a string");
}

static void test_too_many_texts(void)
{
    check_bad_request("{\"q\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
                      "has 9 texts; the maximum is 8");
}

static void test_empty_and_binary_bodies(void)
{
    http_response r;
    const char nul_body[] = "{\"q\": \"a\0b\"}";
    cJSON *json = NULL;
    char deep[3001];

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/json", "", 0, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "empty"));
    cJSON_Delete(json);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/json", nul_body,
                                       sizeof(nul_body) - 1, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "NUL byte"));
    cJSON_Delete(json);
    response_free(&r);

    /* 3000 nested arrays pass cJSON's nesting limit of 1000. */
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    check_bad_request(deep, "not valid JSON");
    check_translation("{\"q\": \"after bad bodies\"}", "AFTER BAD BODIES");
}

/* cJSON decodes \u0000 to a NUL byte that would cut the string short, so
 * the escape is a 400 naming the field, on both translation routes. */
static void test_nul_escape_400(void)
{
    int calls_before = atomic_load(&double_calls.calls);

    check_bad_request("{\"q\": \"A dog runs.\\u0000 Two men are working.\"}",
                      "field \"q\" contains \\u0000 (a NUL character), which is not allowed");
    check_bad_request("{\"q\": \"a\", \"source\": \"en\\u0000xx\"}",
                      "field \"source\" contains \\u0000");
    check_bad_request("{\"q\": \"a\", \"target\": \"de\\u0000\"}",
                      "field \"target\" contains \\u0000");
    check_bad_request("{\"q\": \"a\", \"format\": \"text\\u0000html\"}",
                      "field \"format\" contains \\u0000");
    /* Without the check, the hook would see the key "blocked" and reply 403. */
    check_bad_request("{\"q\": \"a\", \"api_key\": \"blocked\\u0000junk\"}",
                      "field \"api_key\" contains \\u0000");
    check_bad_request("{\"q\": [\"fine\", \"b\\u0000\"]}", "q[1] contains \\u0000");
    check_bad_request("{\"q\": \"a\", \"note\": {\"k\": [\"\\u0000\"]}}",
                      "field \"note\" contains \\u0000");
    check_bad_request("{\"q\\u0000x\": \"a\"}", "a field name contains \\u0000");
    /* An escaped backslash and a \u0000 after it. */
    check_bad_request("{\"q\": \"x\\\\\\u0000\"}", "field \"q\" contains \\u0000");
    check_v1_bad_request("{\"q\": \"A dog runs.\\u0000 Two men.\", \"n_best\": 1}",
                         "field \"q\" contains \\u0000");
    check_v1_bad_request("{\"q\": \"a\", \"source\": \"en\\u0000xx\"}",
                         "field \"source\" contains \\u0000");
    CU_ASSERT_EQUAL(atomic_load(&double_calls.calls), calls_before);

    /* \\u0000 is an escaped backslash followed by the text u0000. */
    check_translation("{\"q\": \"back\\\\u0000slash\"}", "BACK\\U0000SLASH");
    check_translation("{\"q\": \"\\u0041\\u00e9\"}", "A\xc3\xa9");
}

static void test_wrong_language_pair(void)
{
    int calls_before = atomic_load(&double_calls.calls);

    check_bad_request("{\"q\": \"a\", \"source\": \"en\", \"target\": \"fr\"}",
                      "language pair en-fr is not served; this server translates en-de");
    check_bad_request("{\"q\": \"a\", \"source\": \"de\", \"target\": \"de\"}", "de-de");
    CU_ASSERT_EQUAL(atomic_load(&double_calls.calls), calls_before);
}

static void test_unknown_path_404(void)
{
    const char request[] = "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    http_response r;

    CU_ASSERT_EQUAL_FATAL(exchange(request, sizeof(request) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"error\""));
    response_free(&r);
}

static void test_wrong_method_405(void)
{
    const char get_translate[] =
        "GET /translate HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    http_response r;

    CU_ASSERT_EQUAL_FATAL(exchange(get_translate, sizeof(get_translate) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/health", "application/json", "{}", 2, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    response_free(&r);
}

/* A Content-Length over the limit gets 413 before any body is sent. */
static void test_body_too_large_by_length(void)
{
    char request[256];
    http_response r;
    int len = snprintf(request, sizeof(request),
                       "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n"
                       "Connection: close\r\n\r\n",
                       TEST_MAX_BODY * 100);

    CU_ASSERT_EQUAL_FATAL(exchange(request, (size_t)len, &r), 0);
    CU_ASSERT_EQUAL(r.status, 413);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    response_free(&r);
}

/* A chunked body has no length up front: the limit applies while reading. */
static void test_body_too_large_chunked(void)
{
    char request[16384];
    size_t len;
    http_response r;

    len = (size_t)snprintf(request, sizeof(request),
                           "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                           "Connection: close\r\n\r\n");
    for (int chunk = 0; chunk < 5; chunk++) {
        len += (size_t)snprintf(request + len, sizeof(request) - len, "3e8\r\n");
        memset(request + len, ' ', 1000);
        len += 1000;
        len += (size_t)snprintf(request + len, sizeof(request) - len, "\r\n");
    }
    len += (size_t)snprintf(request + len, sizeof(request) - len, "0\r\n\r\n");

    CU_ASSERT_EQUAL_FATAL(exchange(request, len, &r), 0);
    CU_ASSERT_EQUAL(r.status, 413);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    response_free(&r);
    check_translation("{\"q\": \"after 413\"}", "AFTER 413");
}

/* A body close to the limit arrives in several reads and still parses. */
static void test_body_near_limit(void)
{
    char body[TEST_MAX_BODY];
    char expected[400];
    size_t len = 0;

    memset(expected, 'X', 300);
    expected[300] = '\0';
    len += (size_t)snprintf(body + len, sizeof(body) - len, "{\"q\": \"");
    memset(body + len, 'x', 300);
    len += 300;
    len += (size_t)snprintf(body + len, sizeof(body) - len, "\"}");
    memset(body + len, ' ', TEST_MAX_BODY - 1 - len);
    body[TEST_MAX_BODY - 1] = '\0';
    check_translation(body, expected);
}

static void test_callback_failure_500(void)
{
    http_response r;
    cJSON *json = NULL;

    CU_ASSERT_EQUAL_FATAL(post_json("{\"q\": [\"fine\", \"FAIL\"]}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 500);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "test double refuses FAIL"));
    cJSON_Delete(json);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(post_json("{\"q\": [\"fine\", \"NO OUTPUT\"]}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 500);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "no output for a sentence of q[1]"));
    cJSON_Delete(json);
    response_free(&r);
    check_translation("{\"q\": \"after 500\"}", "AFTER 500");
}

static void test_form_encoded_body(void)
{
    const char single[] = "q=hello+w%C3%B6rld%21&source=en&target=de";
    const char repeated[] = "q=one&q=two";
    const char bad_escape[] = "q=50%";
    http_response r;
    cJSON *json;
    const cJSON *text;

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/x-www-form-urlencoded",
                                       single, strlen(single), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    json = cJSON_Parse(r.body);
    text = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    CU_ASSERT_TRUE(cJSON_IsString(text));
    if (cJSON_IsString(text))
        CU_ASSERT_STRING_EQUAL(text->valuestring, "HELLO W\xc3\xb6RLD!");
    cJSON_Delete(json);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate",
                                       "application/x-www-form-urlencoded; charset=utf-8",
                                       repeated, strlen(repeated), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"translatedText\":[\"ONE\",\"TWO\"]}");
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/x-www-form-urlencoded",
                                       bad_escape, strlen(bad_escape), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/x-www-form-urlencoded",
                                       "target=fr&q=x", 13, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    response_free(&r);
}

/* The limit counts UTF-8 code points, not bytes, over all texts. */
static void test_max_chars_400(void)
{
    char body[TEST_MAX_BODY];
    char expected[2 * TEST_MAX_CHARS + 1];
    size_t len = 0;

    /* 1000 two-byte characters are exactly at the limit. */
    len += (size_t)snprintf(body + len, sizeof(body) - len, "{\"q\": \"");
    for (int i = 0; i < TEST_MAX_CHARS; i++) {
        memcpy(body + len, "\xc3\xb6", 2);
        memcpy(expected + 2 * i, "\xc3\xb6", 2);
        len += 2;
    }
    expected[2 * TEST_MAX_CHARS] = '\0';
    snprintf(body + len, sizeof(body) - len, "\"}");
    check_translation(body, expected);

    /* 500 + 501 characters in two texts are one over. */
    len = (size_t)snprintf(body, sizeof(body), "{\"q\": [\"");
    memset(body + len, 'a', 500);
    len += 500;
    len += (size_t)snprintf(body + len, sizeof(body) - len, "\", \"");
    memset(body + len, 'b', 501);
    len += 501;
    snprintf(body + len, sizeof(body) - len, "\"]}");
    check_bad_request(body, "q has 1001 characters; this server accepts at most 1000 per request");
}

static void test_callback_reject_400(void)
{
    check_bad_request("{\"q\": [\"fine\", \"REJECT\"]}", "test double rejects REJECT at sentence 1");
    check_translation("{\"q\": \"after 400\"}", "AFTER 400");
}

static void test_languages_lists_pair(void)
{
    http_response r;

    CU_ASSERT_EQUAL_FATAL(get_path(port, "/languages", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_STRING_EQUAL(r.body, "[{\"code\":\"en\",\"name\":\"English\",\"targets\":[\"de\"]}]");
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/languages", "application/json", "{}", 2, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    response_free(&r);
}

static void test_ready_ok(void)
{
    http_response r;

    CU_ASSERT_EQUAL_FATAL(get_path(port, "/ready", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"ready\"}");
    response_free(&r);
}

static void test_multipart_body(void)
{
    const char type[] = "multipart/form-data; boundary=XyZ42";
    const char single[] = "--XyZ42\r\n"
                          "Content-Disposition: form-data; name=\"q\"\r\n\r\n"
                          "hello multipart\r\n"
                          "--XyZ42\r\n"
                          "Content-Disposition: form-data; name=\"source\"\r\n\r\n"
                          "en\r\n"
                          "--XyZ42\r\n"
                          "Content-Disposition: form-data; name=\"target\"\r\n\r\n"
                          "de\r\n"
                          "--XyZ42--\r\n";
    const char repeated[] = "--XyZ42\r\n"
                            "Content-Disposition: form-data; name=\"q\"\r\n\r\n"
                            "one\r\n"
                            "--XyZ42\r\n"
                            "Content-Disposition: form-data; name=\"api_key\"\r\n\r\n"
                            "ignored\r\n"
                            "--XyZ42\r\n"
                            "Content-Disposition: form-data; name=\"q\"\r\n\r\n"
                            "two\r\n"
                            "--XyZ42--\r\n";
    const char no_q[] = "--XyZ42\r\n"
                        "Content-Disposition: form-data; name=\"target\"\r\n\r\n"
                        "de\r\n"
                        "--XyZ42--\r\n";
    const char wrong_pair[] = "--XyZ42\r\n"
                              "Content-Disposition: form-data; name=\"q\"\r\n\r\n"
                              "x\r\n"
                              "--XyZ42\r\n"
                              "Content-Disposition: form-data; name=\"target\"\r\n\r\n"
                              "fr\r\n"
                              "--XyZ42--\r\n";
    http_response r;
    cJSON *json = NULL;

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", type, single, strlen(single), &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"translatedText\":\"HELLO MULTIPART\"}");
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(
        send_request("POST", "/translate", type, repeated, strlen(repeated), &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"translatedText\":[\"ONE\",\"TWO\"]}");
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", type, no_q, strlen(no_q), &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "missing form field \"q\""));
    cJSON_Delete(json);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(
        send_request("POST", "/translate", type, wrong_pair, strlen(wrong_pair), &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "auto-fr is not served"));
    cJSON_Delete(json);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "multipart/form-data", single,
                                       strlen(single), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "boundary"));
    cJSON_Delete(json);
    response_free(&r);
}

static void test_content_type_checked(void)
{
    const char body[] = "{\"q\": \"plain json\"}";
    http_response r;
    cJSON *json = NULL;

    CU_ASSERT_EQUAL_FATAL(
        send_request("POST", "/translate", "application/xml", body, strlen(body), &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(error_text(&r, &json), "Content-Type application/xml is not supported"));
    cJSON_Delete(json);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(
        send_request("POST", "/translate", "text/plain; charset=utf-8", body, strlen(body), &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"translatedText\":\"PLAIN JSON\"}");
    response_free(&r);
}

/* 300 bodies built from random JSON and form fragments: every reply is
 * 200 or 400 with a JSON body, and the server still responds afterwards. */
static void test_random_bodies(void)
{
    static const char *const pieces[] = {
        "{", "}", "[", "]", "\"q\"", "\"source\"", "\"target\"", ":", ",", "\"en\"", "\"de\"",
        "\"text\"", "null", "true", "1e999", "-0", "\"\\u0000\"", "\"\\ud800\"", "\\", "\"",
        "q=", "&", "%", "%zz", "+", "\xff", "\xc3", " ", "\n", "\x01",
    };
    const size_t piece_count = sizeof(pieces) / sizeof(pieces[0]);
    unsigned state = 2024;
    int replies = 0, json_replies = 0, expected_status = 0;

    for (int i = 0; i < 300; i++) {
        char body[1024];
        size_t len = 0;
        int count;
        const char *type;
        http_response r;
        cJSON *json;

        state = state * 1103515245u + 12345u;
        count = (int)((state >> 16) % 40);
        type = (state >> 8) % 4 == 0 ? "application/x-www-form-urlencoded" : "application/json";
        for (int k = 0; k < count; k++) {
            const char *piece;

            state = state * 1103515245u + 12345u;
            piece = pieces[(state >> 16) % piece_count];
            if (len + strlen(piece) >= sizeof(body))
                break;
            memcpy(body + len, piece, strlen(piece));
            len += strlen(piece);
        }
        if (send_request("POST", "/translate", type, body, len, &r) != 0)
            continue;
        replies++;
        json = cJSON_ParseWithLength(r.body, r.body_len);
        json_replies += json != NULL && strcmp(r.content_type, "application/json") == 0;
        expected_status += r.status == 200 || r.status == 400;
        cJSON_Delete(json);
        response_free(&r);
    }
    CU_ASSERT_EQUAL(replies, 300);
    CU_ASSERT_EQUAL(json_replies, 300);
    CU_ASSERT_EQUAL(expected_status, 300);
    check_translation("{\"q\": \"after random bodies\"}", "AFTER RANDOM BODIES");
}

/* Two translations in a row on one keep-alive connection: the connection
 * is suspended and resumed once for each. */
static void test_keep_alive_two_translations(void)
{
    const char first[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\nContent-Length: 14\r\n\r\n"
                         "{\"q\": \"first\"}";
    const char second[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/json\r\nContent-Length: 15\r\n"
                          "Connection: close\r\n\r\n"
                          "{\"q\": \"second\"}";
    http_response r;
    int fd = connect_to("127.0.0.1", port);

    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, first, sizeof(first) - 1), 0);
    CU_ASSERT_EQUAL(read_one_response(fd, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.body ? r.body : "", "{\"translatedText\":\"FIRST\"}");
    response_free(&r);
    CU_ASSERT_EQUAL(send_all(fd, second, sizeof(second) - 1), 0);
    CU_ASSERT_EQUAL(read_one_response(fd, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.body ? r.body : "", "{\"translatedText\":\"SECOND\"}");
    response_free(&r);
    close(fd);
}

/* ---- concurrency ---- */

enum { CLIENT_THREADS = 8, REQUESTS_PER_THREAD = 10 };

typedef struct {
    int id;
    int correct;
} client_job;

/* Each client sends texts that name its thread and request, so a reply sent
 * to the wrong connection or in the wrong order shows up as a mismatch. */
static void *client_thread(void *arg)
{
    client_job *job = arg;

    for (int i = 0; i < REQUESTS_PER_THREAD; i++) {
        char body[128], first[32], second[32];
        http_response r;
        cJSON *json;
        const cJSON *list, *a, *b;

        snprintf(body, sizeof(body), "{\"q\": [\"t%d-r%d-a\", \"t%d-r%d-b\"]}", job->id, i,
                 job->id, i);
        snprintf(first, sizeof(first), "T%d-R%d-A", job->id, i);
        snprintf(second, sizeof(second), "T%d-R%d-B", job->id, i);
        if (post_json(body, &r) != 0)
            continue;
        json = cJSON_Parse(r.body);
        list = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
        a = cJSON_GetArrayItem(list, 0);
        b = cJSON_GetArrayItem(list, 1);
        if (r.status == 200 && cJSON_IsString(a) && cJSON_IsString(b) &&
            strcmp(a->valuestring, first) == 0 && strcmp(b->valuestring, second) == 0)
            job->correct++;
        cJSON_Delete(json);
        response_free(&r);
    }
    return NULL;
}

static void test_concurrent_clients(void)
{
    pthread_t threads[CLIENT_THREADS];
    client_job jobs[CLIENT_THREADS];
    int started = 0, correct = 0;

    for (int t = 0; t < CLIENT_THREADS; t++) {
        jobs[t].id = t;
        jobs[t].correct = 0;
        if (pthread_create(&threads[t], NULL, client_thread, &jobs[t]) != 0)
            break;
        started++;
    }
    CU_ASSERT_EQUAL(started, CLIENT_THREADS);
    for (int t = 0; t < started; t++) {
        pthread_join(threads[t], NULL);
        correct += jobs[t].correct;
    }
    CU_ASSERT_EQUAL(correct, CLIENT_THREADS * REQUESTS_PER_THREAD);
}

/* ---- translate threads, queue and stop ---- */

/* A POST /translate sent from a thread of its own. */
typedef struct {
    pthread_t thread;
    unsigned short port;
    const char *body;
    http_response response;
    int rc;
    atomic_int done;
    int started;
} async_post;

static void *async_post_thread(void *arg)
{
    async_post *a = arg;

    a->rc = send_request_at(a->port, "POST", "/translate", "application/json", a->body,
                            strlen(a->body), &a->response);
    atomic_store(&a->done, 1);
    return NULL;
}

static void async_post_start(async_post *a, unsigned short to_port, const char *body)
{
    memset(a, 0, sizeof(*a));
    a->port = to_port;
    a->body = body;
    a->rc = -1;
    a->started = pthread_create(&a->thread, NULL, async_post_thread, a) == 0;
    CU_ASSERT_TRUE(a->started);
}

/* Joins the thread; its socket timeouts bound the wait. */
static void async_post_join(async_post *a)
{
    if (a->started)
        pthread_join(a->thread, NULL);
    a->started = 0;
}

static void sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&pause, NULL);
}

static double now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return 1e3 * (double)now.tv_sec + 1e-6 * (double)now.tv_nsec;
}

/* Polls until *value reaches target. Returns 1, or 0 after WAIT_TIMEOUT_MS. */
static int wait_for_count(atomic_int *value, int target)
{
    for (int waited = 0; waited < WAIT_TIMEOUT_MS; waited += 5) {
        if (atomic_load(value) >= target)
            return 1;
        sleep_ms(5);
    }
    return atomic_load(value) >= target;
}

/* Polls until length requests wait in the queue of s. Returns 1, or 0 after
 * WAIT_TIMEOUT_MS. */
static int wait_for_queue(http_server *s, size_t length)
{
    for (int waited = 0; waited < WAIT_TIMEOUT_MS; waited += 5) {
        if (http_server_queue_length(s) == length)
            return 1;
        sleep_ms(5);
    }
    return http_server_queue_length(s) == length;
}

/* Returns 1 when r is a 200 whose translatedText is the string expected. */
static int is_translation(const http_response *r, const char *expected)
{
    cJSON *json = cJSON_Parse(r->body ? r->body : "");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    int ok = r->status == 200 && cJSON_IsString(text) && strcmp(text->valuestring, expected) == 0;

    cJSON_Delete(json);
    return ok;
}

/* Starts a server on a free port with the given translate pool, queue
 * bound, grace period and batch size (0 takes the default). Translate
 * threads do not wait for more jobs. */
static http_server *start_batching_server(unsigned translate_threads, size_t max_queue,
                                          unsigned grace_seconds, size_t max_batch)
{
    http_config config = {
        .address = "127.0.0.1",
        .port = 0,
        .threads = 2,
        .translate_threads = translate_threads,
        .max_queue = max_queue,
        .grace_seconds = grace_seconds,
        .max_batch_sentences = max_batch,
        .pairs = en_de,
        .pair_count = 1,
        .translate = upper_case_translate,
        .translate_ctx = &double_calls,
    };
    char err[256] = "";
    http_server *s = http_server_start(&config, err, sizeof(err));

    if (!s)
        fprintf(stderr, "\n  cannot start server: %s\n", err);
    return s;
}

static http_server *start_server(unsigned translate_threads, size_t max_queue,
                                 unsigned grace_seconds)
{
    return start_batching_server(translate_threads, max_queue, grace_seconds, 0);
}

/* http_server_stop run from a thread of its own. */
typedef struct {
    pthread_t thread;
    http_server *server;
    atomic_int done;
} async_stop;

static void *async_stop_thread(void *arg)
{
    async_stop *a = arg;

    http_server_stop(a->server);
    atomic_store(&a->done, 1);
    return NULL;
}

static void test_health_while_busy(void)
{
    /* One sentence per batch keeps both translate threads busy. */
    http_server *s = start_batching_server(2, 0, 5, 1);
    async_post busy[2];
    http_response r;
    double start, took;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    set_gate(&double_calls, 0);
    async_post_start(&busy[0], http_server_port(s), "{\"q\": \"WAIT\"}");
    async_post_start(&busy[1], http_server_port(s), "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 2));

    start = now_ms();
    CU_ASSERT_EQUAL(get_path(http_server_port(s), "/health", &r), 0);
    took = now_ms() - start;
    CU_ASSERT_EQUAL(r.status, 200);
    if (took >= HEALTH_MAX_MS)
        fprintf(stderr, "\n  /health took %.1f ms while translate threads were busy\n", took);
    CU_ASSERT_TRUE(took < HEALTH_MAX_MS);
    CU_ASSERT_EQUAL(atomic_load(&busy[0].done), 0);
    CU_ASSERT_EQUAL(atomic_load(&busy[1].done), 0);
    response_free(&r);

    set_gate(&double_calls, 1);
    for (int i = 0; i < 2; i++) {
        async_post_join(&busy[i]);
        CU_ASSERT_EQUAL(busy[i].rc, 0);
        CU_ASSERT_TRUE(is_translation(&busy[i].response, "WAIT"));
        response_free(&busy[i].response);
    }
    http_server_stop(s);
}

/* With one translate thread busy and room for one waiting job, one of two
 * further requests waits and the other gets 503 at once. */
static void test_full_queue_503(void)
{
    static exposition scraped;
    http_server *s = start_server(1, 1, 5);
    async_post busy, extra[2];
    async_post *rejected = NULL, *queued = NULL;
    cJSON *json = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    set_gate(&double_calls, 0);
    async_post_start(&busy, http_server_port(s), "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));
    async_post_start(&extra[0], http_server_port(s), "{\"q\": \"first extra\"}");
    async_post_start(&extra[1], http_server_port(s), "{\"q\": \"second extra\"}");
    for (int waited = 0; waited < WAIT_TIMEOUT_MS && !rejected; waited += 5) {
        if (atomic_load(&extra[0].done))
            rejected = &extra[0], queued = &extra[1];
        else if (atomic_load(&extra[1].done))
            rejected = &extra[1], queued = &extra[0];
        else
            sleep_ms(5);
    }
    CU_ASSERT_PTR_NOT_NULL(rejected);
    if (rejected) {
        CU_ASSERT_EQUAL(rejected->response.status, 503);
        CU_ASSERT_STRING_EQUAL(rejected->response.content_type, "application/json");
        CU_ASSERT_STRING_EQUAL(rejected->response.retry_after, "1");
        CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&rejected->response, &json), "overloaded"));
        cJSON_Delete(json);
        CU_ASSERT_EQUAL(atomic_load(&queued->done), 0);
        CU_ASSERT_EQUAL(atomic_load(&busy.done), 0);
    }

    /* One request waits in the queue and one was turned away. */
    if (scrape_metrics(http_server_port(s), &scraped) == 0) {
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_queue_depth", ""), 1);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_errors_total", "kind=\"queue_full\""),
                        1);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_requests_total",
                                         "endpoint=\"/translate\",code=\"503\""),
                        1);
    }

    set_gate(&double_calls, 1);
    async_post_join(&busy);
    CU_ASSERT_TRUE(is_translation(&busy.response, "WAIT"));
    response_free(&busy.response);
    for (int i = 0; i < 2; i++) {
        async_post_join(&extra[i]);
        CU_ASSERT_EQUAL(extra[i].rc, 0);
    }
    if (queued)
        CU_ASSERT_EQUAL(queued->response.status, 200);
    for (int i = 0; i < 2; i++)
        response_free(&extra[i].response);
    http_server_stop(s);
}

/* Sends a request on an open keep-alive connection and reads the reply. */
static int keep_alive_exchange(int fd, const char *request, http_response *r)
{
    if (fd < 0 || send_all(fd, request, strlen(request)) != 0)
        return -1;
    return read_one_response(fd, r);
}

/* A request running and one queued when stop begins both get their 200,
 * and stop returns only afterwards. Meanwhile new requests on open
 * keep-alive connections get 503. */
static void test_stop_delivers_in_flight(void)
{
    const char health[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const char ready[] = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const char translate[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n"
                             "{\"q\": \"x\"}";
    http_server *s = start_server(1, 0, 5);
    unsigned short to_port;
    async_post running, queued;
    async_stop stop = {0};
    http_response r;
    cJSON *json = NULL;
    int fd, idle[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    to_port = http_server_port(s);
    for (int i = 0; i < 2; i++) {
        idle[i] = connect_to("127.0.0.1", to_port);
        CU_ASSERT_EQUAL(keep_alive_exchange(idle[i], health, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        response_free(&r);
    }
    set_gate(&double_calls, 0);
    async_post_start(&running, to_port, "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));
    async_post_start(&queued, to_port, "{\"q\": \"queued during stop\"}");
    CU_ASSERT_TRUE(wait_for_queue(s, 1));

    stop.server = s;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&stop.thread, NULL, async_stop_thread, &stop), 0);
    sleep_ms(200);
    CU_ASSERT_EQUAL(atomic_load(&stop.done), 0);
    CU_ASSERT_EQUAL(atomic_load(&running.done), 0);

    CU_ASSERT_EQUAL(keep_alive_exchange(idle[0], translate, &r), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(&r, &json), "shutting down"));
    cJSON_Delete(json);
    response_free(&r);
    CU_ASSERT_EQUAL(keep_alive_exchange(idle[1], ready, &r), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_STRING_EQUAL(r.body ? r.body : "", "{\"status\":\"stopping\"}");
    response_free(&r);
    for (int i = 0; i < 2; i++)
        if (idle[i] >= 0)
            close(idle[i]);

    set_gate(&double_calls, 1);
    pthread_join(stop.thread, NULL);
    async_post_join(&running);
    async_post_join(&queued);
    CU_ASSERT_EQUAL(running.rc, 0);
    CU_ASSERT_TRUE(is_translation(&running.response, "WAIT"));
    CU_ASSERT_EQUAL(queued.rc, 0);
    CU_ASSERT_TRUE(is_translation(&queued.response, "QUEUED DURING STOP"));
    response_free(&running.response);
    response_free(&queued.response);

    /* The listening socket is closed once stop returns. */
    fd = connect_to("127.0.0.1", to_port);
    CU_ASSERT_EQUAL(fd, -1);
    if (fd >= 0)
        close(fd);
}

/* Connects to 127.0.0.1:to_port and closes the socket again. Returns 0
 * when the connection was made, or connect's errno. */
static int connect_errno(unsigned short to_port)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(to_port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int error = 0;

    if (fd < 0)
        return errno;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0)
        error = errno;
    close(fd);
    return error;
}

/* Once stop begins, the port refuses new connections at once, while the
 * request that runs meanwhile still gets its reply. */
static void test_stop_refuses_new_connections(void)
{
    http_server *s = start_server(1, 0, 5);
    unsigned short to_port;
    async_post running;
    async_stop stop = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    to_port = http_server_port(s);
    CU_ASSERT_EQUAL(connect_errno(to_port), 0);
    set_gate(&double_calls, 0);
    async_post_start(&running, to_port, "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));

    stop.server = s;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&stop.thread, NULL, async_stop_thread, &stop), 0);
    sleep_ms(100);
    CU_ASSERT_EQUAL(atomic_load(&stop.done), 0);
    CU_ASSERT_EQUAL(connect_errno(to_port), ECONNREFUSED);
    CU_ASSERT_EQUAL(atomic_load(&running.done), 0);

    set_gate(&double_calls, 1);
    pthread_join(stop.thread, NULL);
    async_post_join(&running);
    CU_ASSERT_EQUAL(running.rc, 0);
    CU_ASSERT_TRUE(is_translation(&running.response, "WAIT"));
    response_free(&running.response);
}

/* After a grace period of 1 s, a job still queued gets 503, and the
 * running one is stopped at its next decoding step and gets 503 too, so
 * stop returns without the gate opening. */
static void test_stop_after_grace_503(void)
{
    http_server *s = start_server(1, 0, 1);
    async_post running, queued;
    async_stop stop = {0};
    cJSON *json = NULL;
    double start;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    set_gate(&double_calls, 0);
    async_post_start(&running, http_server_port(s), "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));
    async_post_start(&queued, http_server_port(s), "{\"q\": \"left in the queue\"}");
    CU_ASSERT_TRUE(wait_for_queue(s, 1));

    start = now_ms();
    stop.server = s;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&stop.thread, NULL, async_stop_thread, &stop), 0);
    pthread_join(stop.thread, NULL);
    CU_ASSERT_TRUE(now_ms() - start < 3000.0); /* grace 1 s, flush 1 s, and slack */
    async_post_join(&running);
    async_post_join(&queued);
    CU_ASSERT_EQUAL(queued.response.status, 503);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(error_text(&queued.response, &json), "stopped before translating"));
    cJSON_Delete(json);
    CU_ASSERT_EQUAL(running.response.status, 503);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(error_text(&running.response, &json), "stopped before finishing"));
    cJSON_Delete(json);
    set_gate(&double_calls, 1);
    response_free(&running.response);
    response_free(&queued.response);
}

/* Closes fd with a reset (RST) instead of a FIN, as a client that
 * crashed or gave up would: SO_LINGER with a zero timeout makes close()
 * abort the connection. */
static void reset_connection(int fd)
{
    struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};

    CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close,
                               sizeof(abort_on_close)),
                    0);
    close(fd);
}

/* A client that resets its connection while its job waits is never
 * translated, and its connection does not hold up stop. */
static void test_client_gone_while_queued(void)
{
    const char request[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n"
                           "{\"q\": \"GONE 1\"}";
    http_server *s = start_server(1, 0, 5);
    async_post running;
    http_response r;
    double start;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    atomic_store(&double_calls.gone_calls, 0);
    set_gate(&double_calls, 0);
    async_post_start(&running, http_server_port(s), "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));

    fd = connect_to("127.0.0.1", http_server_port(s));
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, request, sizeof(request) - 1), 0);
    CU_ASSERT_TRUE(wait_for_queue(s, 1));
    reset_connection(fd);

    set_gate(&double_calls, 1);
    async_post_join(&running);
    CU_ASSERT_TRUE(is_translation(&running.response, "WAIT"));
    response_free(&running.response);

    /* One translate thread takes jobs in order, so this reply comes after
     * the reset client's job was taken off the queue. */
    CU_ASSERT_EQUAL(send_request_at(http_server_port(s), "POST", "/translate",
                                    "application/json", "{\"q\": \"after\"}", 14, &r),
                    0);
    CU_ASSERT_TRUE(is_translation(&r, "AFTER"));
    response_free(&r);
    CU_ASSERT_EQUAL(atomic_load(&double_calls.gone_calls), 0);

    start = now_ms();
    http_server_stop(s);
    CU_ASSERT_TRUE(now_ms() - start < 1000);
}

typedef struct {
    FILE *file; /* where stderr goes */
    int saved;  /* a duplicate of the real stderr */
} stderr_capture;

/* Returns the value of seqmt_errors_total{kind="client_gone"} of the
 * daemon on to_port, or -1 when the scrape failed. */
static double client_gone_count(unsigned short to_port)
{
    exposition *scraped = malloc(sizeof(*scraped));
    double count = -1;

    if (scraped && scrape_metrics(to_port, scraped) == 0)
        count = exposition_value(scraped, "seqmt_errors_total", "kind=\"client_gone\"");
    free(scraped);
    return count;
}

/* Polls until client_gone on to_port reaches target. Returns its last
 * value, after at most WAIT_TIMEOUT_MS. */
static double wait_for_client_gone(unsigned short to_port, double target)
{
    double count = client_gone_count(to_port);

    for (int waited = 0; waited < WAIT_TIMEOUT_MS && count < target; waited += 10) {
        sleep_ms(10);
        count = client_gone_count(to_port);
    }
    return count;
}

/* Sends stderr to a temporary file until stderr_capture_end. Returns 0,
 * or -1 when it could not. */
static int stderr_capture_start(stderr_capture *capture)
{
    fflush(stderr);
    capture->file = tmpfile();
    capture->saved = capture->file ? dup(STDERR_FILENO) : -1;
    if (capture->saved < 0 || dup2(fileno(capture->file), STDERR_FILENO) < 0) {
        if (capture->saved >= 0)
            close(capture->saved);
        if (capture->file)
            fclose(capture->file);
        return -1;
    }
    return 0;
}

/* Restores stderr and returns what was written to it meanwhile
 * (malloc'd, NUL-terminated, at most 1 MiB), which it also copies to
 * stderr so that the test output shows it as usual. */
static char *stderr_capture_end(stderr_capture *capture)
{
    char *text = calloc(1, 1 << 20);

    fflush(stderr);
    dup2(capture->saved, STDERR_FILENO);
    close(capture->saved);
    rewind(capture->file);
    if (text && fread(text, 1, (1 << 20) - 1, capture->file) > 0)
        fputs(text, stderr);
    fclose(capture->file);
    return text;
}

/* Adds up the counts of the daemon's summaries of client disconnects in
 * log. Returns the sum, and the number of summary lines in *lines. */
static unsigned long long summarized_disconnects(const char *log, int *lines)
{
    const char marker[] = "http: libmicrohttpd reported ";
    unsigned long long sum = 0;

    *lines = 0;
    for (const char *at = strstr(log, marker); at; at = strstr(at + 1, marker)) {
        sum += strtoull(at + sizeof(marker) - 1, NULL, 10);
        (*lines)++;
    }
    return sum;
}

/* Clients that close or reset a connection mid-request, and one reset
 * while its job is queued, count once each as client_gone. libmicrohttpd's
 * messages about them do not go to stderr one by one: a summary line sums
 * them up. Its message about a header too large for the connection's
 * memory, which is no disconnect, is still printed. */
static void test_disconnects_summarized(void)
{
    const char partial[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
                           "{\"q\": ";
    const char queued[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n"
                          "{\"q\": \"GONE 2\"}";
    const char big_start[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ";
    const char big_end[] = "\r\n\r\n";
    size_t big_value = 70000; /* over libmicrohttpd's default of 32 KiB per connection */
    char *big_header = calloc(1, sizeof(big_start) + big_value + sizeof(big_end));
    http_server *s = start_server(1, 0, 5);
    stderr_capture capture;
    char *log;
    unsigned short to_port;
    async_post running;
    http_response r = {0};
    unsigned long long disconnects;
    double client_gone_before;
    int fd, lines;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big_header);
    to_port = http_server_port(s);
    client_gone_before = client_gone_count(to_port);
    CU_ASSERT_EQUAL(client_gone_before, 0);

    /* stderr goes to a file until the server has stopped. */
    CU_ASSERT_EQUAL_FATAL(stderr_capture_start(&capture), 0);

    /* Step 1: a client closes (FIN) and another resets (RST) mid-body. */
    fd = connect_to("127.0.0.1", to_port);
    CU_ASSERT_EQUAL(send_all(fd, partial, sizeof(partial) - 1), 0);
    sleep_ms(50);
    close(fd);
    fd = connect_to("127.0.0.1", to_port);
    CU_ASSERT_EQUAL(send_all(fd, partial, sizeof(partial) - 1), 0);
    sleep_ms(50);
    reset_connection(fd);

    /* Step 2: a client resets while its job waits behind a running one. */
    atomic_store(&double_calls.gone_calls, 0);
    set_gate(&double_calls, 0);
    async_post_start(&running, to_port, "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));
    fd = connect_to("127.0.0.1", to_port);
    CU_ASSERT_EQUAL(send_all(fd, queued, sizeof(queued) - 1), 0);
    CU_ASSERT_TRUE(wait_for_queue(s, 1));
    reset_connection(fd);
    set_gate(&double_calls, 1);
    async_post_join(&running);
    CU_ASSERT_TRUE(is_translation(&running.response, "WAIT"));
    response_free(&running.response);
    CU_ASSERT_EQUAL(atomic_load(&double_calls.gone_calls), 0);

    /* Step 3: a header over libmicrohttpd's memory per connection gets its 431. */
    memcpy(big_header, big_start, sizeof(big_start) - 1);
    memset(big_header + sizeof(big_start) - 1, 'a', big_value);
    memcpy(big_header + sizeof(big_start) - 1 + big_value, big_end, sizeof(big_end));
    CU_ASSERT_EQUAL(exchange_at("127.0.0.1", to_port, big_header, strlen(big_header), &r), 0);
    CU_ASSERT_EQUAL(r.status, 431);
    response_free(&r);

    CU_ASSERT_EQUAL(wait_for_client_gone(to_port, client_gone_before + 3), client_gone_before + 3);
    http_server_stop(s);
    log = stderr_capture_end(&capture);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_PTR_NULL(strstr(log, "Connection was closed by remote side"));
    CU_ASSERT_PTR_NULL(strstr(log, "Socket has been disconnected"));
    CU_ASSERT_PTR_NULL(strstr(log, "Failed to send the response"));
    /* Each mid-body disconnect gets one libmicrohttpd message. The reset
     * queued client gets one when libmicrohttpd tries to send the 400 that
     * ends its request, and none when it reads the reset first. */
    disconnects = summarized_disconnects(log, &lines);
    CU_ASSERT_TRUE(disconnects >= 2);
    CU_ASSERT_TRUE(disconnects <= 3);
    CU_ASSERT_TRUE(lines >= 1);
    CU_ASSERT_TRUE(lines <= 2); /* the first at once, the rest when the server stops */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "http: libmicrohttpd: Error processing request"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "skipped: connection reset or failed while queued"));
    free(log);
    free(big_header);
}

/* ---- start and stop ---- */

static void test_start_errors(void)
{
    http_config config = {
        .address = "127.0.0.1",
        .port = port,
        .pairs = en_de,
        .pair_count = 1,
        .translate = upper_case_translate,
        .translate_ctx = &double_calls,
    };
    char err[256] = "";
    http_server *second;

    /* The test server is already bound to this port. */
    second = http_server_start(&config, err, sizeof(err));
    CU_ASSERT_PTR_NULL(second);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot start"));
    http_server_stop(second);

    config.address = "localhost";
    err[0] = '\0';
    second = http_server_start(&config, err, sizeof(err));
    CU_ASSERT_PTR_NULL(second);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid listen address"));
    http_server_stop(second);

    config.address = "127.0.0.1";
    config.translate = NULL;
    second = http_server_start(&config, err, sizeof(err));
    CU_ASSERT_PTR_NULL(second);
}

/* Starts a second server on ::1, checks /health, and checks that the
 * authorize hook gets the client's address "::1". Skips when the host has
 * no IPv6 loopback. */
static void test_ipv6_loopback(void)
{
    const char request[] = "GET /health HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n";
    const char translate[] = "POST /translate HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n"
                             "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n"
                             "{\"q\": \"x\"}";
    http_config config = {
        .address = "::1",
        .port = 0,
        .pairs = en_de,
        .pair_count = 1,
        .translate = upper_case_translate,
        .translate_ctx = &double_calls,
        .authorize = authorize_key,
    };
    char err[256] = "";
    http_server *v6 = http_server_start(&config, err, sizeof(err));
    http_response r;

    if (!v6) {
        fprintf(stderr, "\n  SKIP: no IPv6 loopback: %s\n", err);
        return;
    }
    CU_ASSERT_EQUAL(exchange_at("::1", http_server_port(v6), request, sizeof(request) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);

    CU_ASSERT_EQUAL(
        exchange_at("::1", http_server_port(v6), translate, sizeof(translate) - 1, &r), 0);
    CU_ASSERT_TRUE(is_translation(&r, "X"));
    response_free(&r);
    pthread_mutex_lock(&address_mutex);
    CU_ASSERT_STRING_EQUAL(last_client_address, "::1");
    pthread_mutex_unlock(&address_mutex);
    http_server_stop(v6);
}

/* ---- sentences, formats and options ---- */

/* Returns the string value of item, or "" when it is not a string. */
static const char *string_of(const cJSON *item)
{
    return cJSON_IsString(item) ? item->valuestring : "";
}

/* Returns the parsed body of a 200 reply to body on the test server, or
 * NULL after failing an assertion. */
static cJSON *post_for_json(const char *path, const char *body)
{
    http_response r;
    cJSON *json;

    CU_ASSERT_EQUAL_FATAL(send_request("POST", path, "application/json", body, strlen(body), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    if (r.status != 200)
        fprintf(stderr, "\n  %s answered %d: %s\n", path, r.status, r.body ? r.body : "");
    json = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    response_free(&r);
    return json;
}

static void test_lines_and_sentences_kept(void)
{
    int sentences_before = atomic_load(&double_calls.sentences);

    /* Four sentences on three lines; the blank line stays empty and the
     * line break with its carriage return is kept. */
    check_translation("{\"q\": \"One. Two!  Three?\\n \\n  four\\r\\nfive\"}",
                      "ONE. TWO!  THREE?\n\nFOUR\r\nFIVE");
    CU_ASSERT_EQUAL(atomic_load(&double_calls.sentences) - sentences_before, 5);

    /* Blank texts need no translation and keep their line count. */
    sentences_before = atomic_load(&double_calls.sentences);
    check_translation("{\"q\": \"  \\n\\n\"}", "\n\n");
    check_translation("{\"q\": \"\"}", "");
    CU_ASSERT_EQUAL(atomic_load(&double_calls.sentences), sentences_before);
}

static void test_html_keeps_markup(void)
{
    check_translation("{\"q\": \"<p class=\\\"x\\\">Fish &amp; chips. <b>Hot</b>!</p>"
                      "<script>var a = 1;</script>\", \"format\": \"html\"}",
                      "<p class=\"x\">FISH &amp; CHIPS. <b>HOT</b>!</p><script>var a = 1;</script>");
    /* As plain text, the same markup is translated like any text. */
    check_translation("{\"q\": \"<b>hot</b>\", \"format\": \"text\"}", "<B>HOT</B>");
    check_bad_request("{\"q\": \"x\", \"format\": \"xml\"}",
                      "format \"xml\" is not supported; use \"text\" or \"html\"");
}

static void test_alternatives_listed(void)
{
    cJSON *json = post_for_json("/translate", "{\"q\": \"One. Two.\", \"alternatives\": 2}");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(json, "translatedText");
    const cJSON *alts = cJSON_GetObjectItemCaseSensitive(json, "alternatives");

    CU_ASSERT_TRUE(cJSON_IsString(text) && strcmp(text->valuestring, "ONE. TWO.") == 0);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(alts), 2);
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetArrayItem(alts, 0)),
                           "ONE. #1 TWO. #1");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetArrayItem(alts, 1)),
                           "ONE. #2 TWO. #2");
    cJSON_Delete(json);

    /* With a list, both fields are lists in the order of q. */
    json = post_for_json("/translate", "{\"q\": [\"a\", \"b\"], \"alternatives\": 1}");
    alts = cJSON_GetObjectItemCaseSensitive(json, "alternatives");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(alts), 2);
    CU_ASSERT_STRING_EQUAL(
        string_of(cJSON_GetArrayItem(cJSON_GetArrayItem(alts, 1), 0)), "B #1");
    cJSON_Delete(json);

    /* No alternatives field unless asked for. */
    json = post_for_json("/translate", "{\"q\": \"a\"}");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(json, "alternatives"));
    cJSON_Delete(json);

    check_bad_request("{\"q\": \"a\", \"alternatives\": 4}",
                      "field \"alternatives\" must be a whole number from 0 to 3 (one less than the server's --max-beam-size), not 4");
}

/* Posts body to path and asserts a 400 whose message contains field, flag
 * and value, each checked on its own. */
static void check_number_error(const char *path, const char *body, const char *field,
                               const char *flag, const char *value)
{
    const char *needles[] = {field, flag, value};
    http_response r;
    cJSON *json = NULL;
    const char *message;

    CU_ASSERT_EQUAL_FATAL(send_request("POST", path, "application/json", body, strlen(body), &r),
                          0);
    message = error_text(&r, &json);
    CU_ASSERT_EQUAL(r.status, 400);
    for (size_t i = 0; i < 3; i++) {
        if (!strstr(message, needles[i]))
            fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", message, needles[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(message, needles[i]));
    }
    cJSON_Delete(json);
    response_free(&r);
}

/* Whole-number fields accept numeric strings, as HTML forms send them, and
 * a bad value gets a message with the field's range and the server flag
 * that sets it. Empty form values leave a field unset. */
static void test_number_fields_checked(void)
{
    cJSON *json = post_for_json("/translate", "{\"q\": \"One.\", \"alternatives\": \"2\"}");
    const char form[] = "q=One.&alternatives=2&format=&beam_size=&source=en";
    http_response r;

    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(json, "alternatives")), 2);
    cJSON_Delete(json);
    json = post_for_json("/v1/translate", "{\"q\": \"One.\", \"beam_size\": \"3\", "
                                          "\"n_best\": \"3\", \"max_length\": \"7\"}");
    CU_ASSERT_EQUAL(
        cJSON_GetArraySize(cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(json, "translations"), 0), "n_best")),
        3);
    cJSON_Delete(json);

    /* An empty format= means text, and an empty number field is unset. */
    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/x-www-form-urlencoded",
                                       form, strlen(form), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"translatedText\":\"ONE.\",\"alternatives\":"
                                   "[\"ONE. #1\",\"ONE. #2\"]}");
    response_free(&r);
    check_translation("{\"q\": \"<b>x</b>\", \"format\": \"\"}", "<B>X</B>");
    check_translation("{\"q\": \"x\", \"alternatives\": \"\", \"beam_size\": null}", "X");

    /* Each message names the field with its range, the server flag that
     * sets the range, and the value as sent. */
    check_number_error("/translate", "{\"q\": \"a\", \"alternatives\": -1}",
                       "field \"alternatives\" must be a whole number from 0 to ",
                       "one less than the server's --max-beam-size", "not -1");
    check_number_error("/translate", "{\"q\": \"a\", \"alternatives\": \"two\"}",
                       "field \"alternatives\"", "--max-beam-size", "not \"two\"");
    check_number_error("/translate", "{\"q\": \"a\", \"alternatives\": true}",
                       "field \"alternatives\"", "--max-beam-size", "not true");
    check_number_error("/translate", "{\"q\": \"a\", \"alternatives\": [2]}",
                       "field \"alternatives\"", "--max-beam-size", "not [2]");
    check_number_error("/translate", "{\"q\": \"a\", \"alternatives\": \" 2\"}",
                       "field \"alternatives\"", "--max-beam-size", "not \" 2\"");
    check_number_error("/v1/translate", "{\"q\": \"a\", \"beam_size\": \"4x\"}",
                       "field \"beam_size\" must be a whole number from 1 to ", "--max-beam-size",
                       "not \"4x\"");
    check_number_error("/v1/translate", "{\"q\": \"a\", \"max_length\": 2.5}",
                       "field \"max_length\" must be a whole number from 1 to ", "--max-length",
                       "not 2.5");
    check_number_error("/v1/translate", "{\"q\": \"a\", \"n_best\": 0}",
                       "field \"n_best\" must be a whole number from 1 to beam_size",
                       "--max-beam-size", "not 0");
    check_number_error("/v1/translate", "{\"q\": \"a\", \"beam_size\": 1e300}",
                       "field \"beam_size\"", "--max-beam-size", "not 1e+300");
    check_number_error("/v1/translate",
                       "{\"q\": \"a\", \"beam_size\": \"99999999999999999999999\"}",
                       "field \"beam_size\"", "--max-beam-size",
                       "not \"99999999999999999999999\"");
    check_number_error("/v1/translate",
                       "{\"q\": \"a\", \"max_length\": \"-99999999999999999999999\"}",
                       "field \"max_length\"", "--max-length",
                       "not \"-99999999999999999999999\"");

    /* Form values are quoted in the message too. */
    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/x-www-form-urlencoded",
                                       "q=a&alternatives=2.5", 20, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "field \\\"alternatives\\\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "not \\\"2.5\\\""));
    response_free(&r);
}

/* Parses body as JSON (or a form when form is set) with the limits
 * --max-texts 8, --max-beam-size 16, --max-length 256 and asserts an error
 * message equal to expected. */
static void check_parse_error(int form, const char *body, const char *expected)
{
    translate_limits limits = {.max_texts = 8, .max_beam_size = 16, .max_length = 256};
    translate_request tr = {0};
    char err[256] = "";
    int rc = translate_request_parse_with_limits(
        &tr, form ? TRANSLATE_BODY_URLENCODED : TRANSLATE_BODY_JSON, NULL, body, strlen(body),
        &limits, err, sizeof(err));

    CU_ASSERT_EQUAL(rc, -1);
    if (strcmp(err, expected) != 0)
        fprintf(stderr, "\n  %s: error \"%s\", expected \"%s\"\n", body, err, expected);
    CU_ASSERT_STRING_EQUAL(err, expected);
    translate_request_free(&tr);
}

/* With the server's limits, the parser names each field's exact range. */
static void test_parse_names_ranges(void)
{
    translate_limits limits = {.max_texts = 8, .max_beam_size = 16, .max_length = 256};
    translate_request tr = {0};
    const char body[] = "{\"q\": \"a\", \"alternatives\": \"15\", \"beam_size\": 16, "
                        "\"n_best\": \"16\", \"max_length\": 256, \"format\": \"\"}";
    char err[256] = "";

    check_parse_error(0, "{\"q\": \"a\", \"beam_size\": \"4x\"}",
                      "field \"beam_size\" must be a whole number from 1 to 16 (the server's "
                      "--max-beam-size), not \"4x\"");
    check_parse_error(0, "{\"q\": \"a\", \"beam_size\": 17}",
                      "field \"beam_size\" must be a whole number from 1 to 16 (the server's "
                      "--max-beam-size), not 17");
    check_parse_error(0, "{\"q\": \"a\", \"max_length\": 2.5}",
                      "field \"max_length\" must be a whole number from 1 to 256 (the server's "
                      "--max-length), not 2.5");
    check_parse_error(0, "{\"q\": \"a\", \"alternatives\": -1}",
                      "field \"alternatives\" must be a whole number from 0 to 15 (one less "
                      "than the server's --max-beam-size), not -1");
    check_parse_error(0, "{\"q\": \"a\", \"alternatives\": \"16\"}",
                      "field \"alternatives\" must be a whole number from 0 to 15 (one less "
                      "than the server's --max-beam-size), not \"16\"");
    check_parse_error(0, "{\"q\": \"a\", \"n_best\": 0}",
                      "field \"n_best\" must be a whole number from 1 to beam_size (at most "
                      "16, the server's --max-beam-size), not 0");
    check_parse_error(1, "q=a&max_length=257",
                      "field \"max_length\" must be a whole number from 1 to 256 (the server's "
                      "--max-length), not \"257\"");

    /* The largest values pass, and numeric strings count as numbers. */
    CU_ASSERT_EQUAL(translate_request_parse_with_limits(&tr, TRANSLATE_BODY_JSON, NULL, body,
                                                        strlen(body), &limits, err,
                                                        sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(tr.alternatives, 15);
    CU_ASSERT_EQUAL(tr.beam_size, 16);
    CU_ASSERT_EQUAL(tr.n_best, 16);
    CU_ASSERT_EQUAL(tr.max_length, 256);
    CU_ASSERT_PTR_NULL(tr.format);
    translate_request_free(&tr);
}

static void test_v1_reply_shape(void)
{
    cJSON *json = post_for_json("/v1/translate", "{\"q\": [\"One. Two.\", \"three\"], "
                                                 "\"beam_size\": 3, \"n_best\": 2}");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(json, "translations");
    const cJSON *first = cJSON_GetArrayItem(list, 0), *second = cJSON_GetArrayItem(list, 1);
    const cJSON *nbest = cJSON_GetObjectItemCaseSensitive(first, "n_best");
    const cJSON *timing = cJSON_GetObjectItemCaseSensitive(json, "timing");
    const char *timing_fields[] = {"queue_ms", "translate_ms", "total_ms"};

    CU_ASSERT_EQUAL(cJSON_GetArraySize(list), 2);
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(first, "text")),
                           "ONE. TWO.");
    /* Each sentence scores -1 for its best hypothesis, -2 for the next. */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "score")), -2.0, 1e-9);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(nbest), 2);
    CU_ASSERT_STRING_EQUAL(
        string_of(cJSON_GetObjectItem(cJSON_GetArrayItem(nbest, 0), "text")),
        "ONE. TWO.");
    CU_ASSERT_STRING_EQUAL(
        string_of(cJSON_GetObjectItem(cJSON_GetArrayItem(nbest, 1), "text")),
        "ONE. #1 TWO. #1");
    CU_ASSERT_DOUBLE_EQUAL(
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(nbest, 1), "score")), -4.0,
        1e-9);
    /* Normalized scores are summed too: -1/2 per one-word sentence, then -2/2. */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "normalized_score")),
                           -1.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(nbest, 0),
                                                                    "normalized_score")),
                           -1.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(nbest, 1),
                                                                    "normalized_score")),
                           -2.0, 1e-6);
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(second, "text")),
                           "THREE");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "source")), "en");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "target")), "de");
    for (size_t i = 0; i < 3; i++) {
        const cJSON *value = cJSON_GetObjectItem(timing, timing_fields[i]);

        CU_ASSERT_TRUE(cJSON_IsNumber(value) && value->valuedouble >= 0.0);
    }
    CU_ASSERT_TRUE(cJSON_GetNumberValue(cJSON_GetObjectItem(timing, "total_ms")) >=
                   cJSON_GetNumberValue(cJSON_GetObjectItem(timing, "queue_ms")));
    cJSON_Delete(json);

    /* A single string still gives a list of one translation. */
    json = post_for_json("/v1/translate", "{\"q\": \"x\"}");
    list = cJSON_GetObjectItemCaseSensitive(json, "translations");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(list), 1);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "n_best")),
                    1);
    cJSON_Delete(json);
}

/* Returns the "text" of entry k of the n-best list of translation t in a
 * /v1/translate reply, or "". */
static const char *nbest_text(const cJSON *reply, int t, int k)
{
    const cJSON *translation = cJSON_GetArrayItem(cJSON_GetObjectItem(reply, "translations"), t);

    return string_of(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(translation, "n_best"), k),
                            "text"));
}

/* An empty hypothesis ranks after the non-empty ones in the translation,
 * the alternatives and the n-best list, although the callback put it first
 * with the highest normalized score. Joined texts are re-sorted too. */
static void test_empty_hypothesis_last(void)
{
    cJSON *json = post_for_json("/v1/translate", "{\"q\": \"EMPTY FIRST\", \"beam_size\": 3, "
                                                 "\"n_best\": 3}");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "translations"), 0);
    const cJSON *nbest = cJSON_GetObjectItem(first, "n_best");

    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(first, "text")), "EMPTY FIRST #1");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "score")), -2.0, 1e-9);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(nbest), 3);
    CU_ASSERT_STRING_EQUAL(nbest_text(json, 0, 0), "EMPTY FIRST #1");
    CU_ASSERT_STRING_EQUAL(nbest_text(json, 0, 1), "EMPTY FIRST #2");
    CU_ASSERT_STRING_EQUAL(nbest_text(json, 0, 2), "");
    cJSON_Delete(json);

    /* Entry 0 of "EMPTY FIRST. Two." joins the empty hypothesis with
     * "TWO." and has the highest normalized sum (0 - 1/2); it goes last. */
    json = post_for_json("/v1/translate", "{\"q\": \"EMPTY FIRST. Two.\", \"beam_size\": 3, "
                                          "\"n_best\": 3}");
    CU_ASSERT_STRING_EQUAL(nbest_text(json, 0, 0), "EMPTY FIRST. #1 TWO. #1");
    CU_ASSERT_STRING_EQUAL(nbest_text(json, 0, 1), "EMPTY FIRST. #2 TWO. #2");
    CU_ASSERT_STRING_EQUAL(nbest_text(json, 0, 2), " TWO.");
    cJSON_Delete(json);

    /* /translate leaves the empty hypothesis out of the alternatives. */
    json = post_for_json("/translate", "{\"q\": \"EMPTY FIRST\", \"alternatives\": 2}");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "translatedText")),
                           "EMPTY FIRST #1");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(json, "alternatives")), 1);
    CU_ASSERT_STRING_EQUAL(
        string_of(cJSON_GetArrayItem(cJSON_GetObjectItem(json, "alternatives"), 0)),
        "EMPTY FIRST #2");
    cJSON_Delete(json);

    /* With one hypothesis there is no other choice than the empty one. */
    check_translation("{\"q\": \"EMPTY FIRST\"}", "");
}

/* Sends body to /v1/translate and asserts a 400 naming needle. */
static void check_v1_bad_request(const char *body, const char *needle)
{
    http_response r;
    cJSON *json = NULL;
    const char *message;

    CU_ASSERT_EQUAL_FATAL(
        send_request("POST", "/v1/translate", "application/json", body, strlen(body), &r), 0);
    message = error_text(&r, &json);
    CU_ASSERT_EQUAL(r.status, 400);
    if (!strstr(message, needle))
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", message, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, needle));
    cJSON_Delete(json);
    response_free(&r);
}

static void test_v1_limits_400(void)
{
    check_v1_bad_request("{\"q\": \"a\", \"beam_size\": 5}",
                         "field \"beam_size\" must be a whole number from 1 to 4 (the server's --max-beam-size), not 5");
    check_v1_bad_request("{\"q\": \"a\", \"beam_size\": 0}",
                         "field \"beam_size\" must be a whole number from 1 to ");
    check_v1_bad_request("{\"q\": \"a\", \"beam_size\": 2, \"n_best\": 3}",
                         "n_best 3 is outside 1 to beam_size 2");
    check_v1_bad_request("{\"q\": \"a\", \"max_length\": 51}",
                         "field \"max_length\" must be a whole number from 1 to 50 (the server's --max-length), not 51");
    check_v1_bad_request("{\"q\": 7}", "field \"q\" must be a string");
}

static void test_sentence_token_limit(void)
{
    /* 12 words pass, 13 in the second text are one over. */
    check_translation("{\"q\": \"a b c d e f g h i j k l\"}", "A B C D E F G H I J K L");
    check_bad_request("{\"q\": [\"short\", \"Fine. A b c d e f g h i j k l m\"]}",
                      "a sentence of q[1] has 13 tokens, over the limit of 12: "
                      "\"A b c d e f g h i j k l m\"");
}

static void test_api_key_hook(void)
{
    http_response r;
    cJSON *json = NULL;
    const char blocked[] = "{\"q\": \"a\", \"api_key\": \"blocked\"}";
    const char limited[] = "q=a&api_key=limited";
    const char bearer[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Authorization: Bearer blocked\r\nContent-Type: application/json\r\n"
                          "Content-Length: 10\r\nConnection: close\r\n\r\n{\"q\": \"a\"}";
    const char body_wins[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Authorization: Bearer blocked\r\n"
                             "Content-Type: application/json\r\nContent-Length: 29\r\n"
                             "Connection: close\r\n\r\n{\"q\": \"a\", \"api_key\": \"fine\"}";

    CU_ASSERT_EQUAL_FATAL(post_json(blocked, &r), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_STRING_EQUAL(error_text(&r, &json), "api_key is not allowed on /translate");
    CU_ASSERT_STRING_EQUAL(r.retry_after, "");
    pthread_mutex_lock(&address_mutex);
    CU_ASSERT_STRING_EQUAL(last_client_address, "127.0.0.1");
    pthread_mutex_unlock(&address_mutex);
    cJSON_Delete(json);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/v1/translate",
                                       "application/x-www-form-urlencoded", limited,
                                       strlen(limited), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_STRING_EQUAL(r.retry_after, "7");
    CU_ASSERT_STRING_EQUAL(error_text(&r, &json), "too many requests for this api_key");
    cJSON_Delete(json);
    response_free(&r);
    check_translation("{\"q\": \"a\", \"api_key\": \"any other\"}", "A");

    /* A Bearer token is used when the api_key field is missing, never in
     * place of a present one. */
    CU_ASSERT_EQUAL_FATAL(exchange(bearer, sizeof(bearer) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    response_free(&r);
    CU_ASSERT_EQUAL_FATAL(exchange(body_wins, sizeof(body_wins) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);
}

static void test_request_id_header(void)
{
    const char given[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: "
                         "client-id_1.2\r\nConnection: close\r\n\r\n";
    const char invalid[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: "
                           "has space\r\nConnection: close\r\n\r\n";
    http_response first, second;

    CU_ASSERT_EQUAL_FATAL(get_path(port, "/health", &first), 0);
    CU_ASSERT_EQUAL_FATAL(post_json("{\"q\": \"a\"}", &second), 0);
    CU_ASSERT_TRUE(first.request_id[0] != '\0');
    CU_ASSERT_TRUE(second.request_id[0] != '\0');
    CU_ASSERT_STRING_NOT_EQUAL(first.request_id, second.request_id);
    response_free(&first);
    response_free(&second);

    CU_ASSERT_EQUAL_FATAL(exchange(given, sizeof(given) - 1, &first), 0);
    CU_ASSERT_STRING_EQUAL(first.request_id, "client-id_1.2");
    response_free(&first);
    CU_ASSERT_EQUAL_FATAL(exchange(invalid, sizeof(invalid) - 1, &first), 0);
    CU_ASSERT_TRUE(first.request_id[0] != '\0');
    CU_ASSERT_STRING_NOT_EQUAL(first.request_id, "has space");
    response_free(&first);
}

/* Sends a whole request one byte per TCP segment. */
static void test_body_one_byte_at_a_time(void)
{
    const char body[] = "{\"q\": \"byte by byte. ok\"}";
    char request[512], raw[4096];
    size_t len = 0;
    int fd = connect_to("127.0.0.1", port), one = 1;
    int request_len = snprintf(request, sizeof(request),
                               "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                               "Connection: close\r\n\r\n%s",
                               sizeof(body) - 1, body);
    http_response r = {0};
    cJSON *json;

    CU_ASSERT_TRUE_FATAL(fd >= 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (int i = 0; i < request_len; i++) {
        CU_ASSERT_EQUAL_FATAL(send_all(fd, request + i, 1), 0);
        sleep_ms(1);
    }
    for (;;) {
        ssize_t got = recv(fd, raw + len, sizeof(raw) - 1 - len, 0);

        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    raw[len] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(raw, "HTTP/1.1 200"));
    json = cJSON_Parse(strstr(raw, "\r\n\r\n") ? strstr(raw, "\r\n\r\n") + 4 : "");
    CU_ASSERT_STRING_EQUAL(
        string_of(cJSON_GetObjectItem(json, "translatedText")),
        "BYTE BY BYTE. OK");
    cJSON_Delete(json);
    response_free(&r);
}

/* ---- batching, deadlines and other server configurations ---- */

/* The configuration of a server on a free port with the test double. */
static http_config test_config(void)
{
    http_config config = {
        .address = "127.0.0.1",
        .threads = 2,
        .translate_threads = 1,
        .pairs = en_de,
        .pair_count = 1,
        .translate = upper_case_translate,
        .translate_ctx = &double_calls,
    };

    return config;
}

static http_server *start_config(const http_config *config)
{
    char err[256] = "";
    http_server *s = http_server_start(config, err, sizeof(err));

    if (!s)
        fprintf(stderr, "\n  cannot start server: %s\n", err);
    return s;
}

/* Occupies the only translate thread of s with "WAIT", queues the bodies,
 * then opens the gate and checks every reply. Returns the number of
 * callback calls made for the queued bodies. */
static int calls_for_queued(http_server *s, const char *const *bodies,
                            const char *const *expected, size_t count)
{
    async_post busy, queued[8];
    int calls_before;

    set_gate(&double_calls, 0);
    async_post_start(&busy, http_server_port(s),
                     "{\"q\": \"WAIT\", \"source\": \"en\", \"target\": \"de\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));
    for (size_t i = 0; i < count; i++) {
        async_post_start(&queued[i], http_server_port(s), bodies[i]);
        CU_ASSERT_TRUE(wait_for_queue(s, i + 1));
    }
    calls_before = atomic_load(&double_calls.calls);
    set_gate(&double_calls, 1);
    async_post_join(&busy);
    CU_ASSERT_TRUE(is_translation(&busy.response, "WAIT"));
    response_free(&busy.response);
    for (size_t i = 0; i < count; i++) {
        async_post_join(&queued[i]);
        if (!is_translation(&queued[i].response, expected[i]))
            fprintf(stderr, "\n  %s got %d %s\n", bodies[i], queued[i].response.status,
                    queued[i].response.body ? queued[i].response.body : "");
        CU_ASSERT_TRUE(is_translation(&queued[i].response, expected[i]));
        response_free(&queued[i].response);
    }
    return atomic_load(&double_calls.calls) - calls_before;
}

static void test_queued_requests_share_call(void)
{
    const char *bodies[] = {"{\"q\": \"one\"}", "{\"q\": \"Two. Three.\"}", "{\"q\": \"four\"}"};
    const char *expected[] = {"ONE", "TWO. THREE.", "FOUR"};
    http_config config = test_config();
    http_server *s;

    /* Four sentences of three requests fit one call. */
    config.max_batch_sentences = 64;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    atomic_store(&double_calls.largest_call, 0);
    CU_ASSERT_EQUAL(calls_for_queued(s, bodies, expected, 3), 1);
    CU_ASSERT_EQUAL(atomic_load(&double_calls.largest_call), 4);
    http_server_stop(s);

    /* A cap of 3 sentences splits them before the request that passes it. */
    config.max_batch_sentences = 3;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    atomic_store(&double_calls.largest_call, 0);
    CU_ASSERT_EQUAL(calls_for_queued(s, bodies, expected, 3), 2);
    CU_ASSERT_EQUAL(atomic_load(&double_calls.largest_call), 3);
    http_server_stop(s);

    /* A cap of 1 translates one request per call. */
    config.max_batch_sentences = 1;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(calls_for_queued(s, bodies, expected, 3), 3);
    http_server_stop(s);
}

/* Requests for different pairs or beams queued together get one call
 * each, and each gets its own pair's translation. */
static void test_batch_groups_by_pair(void)
{
    static const http_language_pair pairs[] = {{"en", "de"}, {"de", "en"}};
    const char *bodies[] = {
        "{\"q\": \"Mixed\", \"source\": \"en\", \"target\": \"de\"}",
        "{\"q\": \"Mixed\", \"source\": \"de\", \"target\": \"en\"}",
        "{\"q\": \"Alts\", \"source\": \"en\", \"target\": \"de\", \"alternatives\": 6}",
        "{\"q\": \"Again\", \"source\": \"de\", \"target\": \"en\"}",
    };
    const char *expected[] = {"MIXED", "mixed", "ALTS", "again"};
    http_config config = test_config();
    http_server *s;

    config.pairs = pairs;
    config.pair_count = 2;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(calls_for_queued(s, bodies, expected, 4), 3);
    http_server_stop(s);
}

/* The request both half-closed client tests send before shutting down. */
static const char half_closed_request[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                          "Content-Type: application/json\r\n"
                                          "Content-Length: 20\r\n\r\n"
                                          "{\"q\": \"half closed\"}";

/* A client that shuts down its sending side (shutdown(SHUT_WR)) right
 * after a complete request can still read, so it gets its translation,
 * not an error. The batch wait keeps the job from starting until the end
 * of stream has arrived, so the check before the job finds it. No other
 * connection is open, because libmicrohttpd may drop a half-closed one
 * otherwise (see the NOTE in http.c). */
static void test_half_closed_client_gets_reply(void)
{
    http_config config = test_config();
    http_server *s;
    http_response r = {0};
    int fd;

    config.batch_wait_ms = 200;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    fd = connect_to("127.0.0.1", http_server_port(s));
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, half_closed_request, sizeof(half_closed_request) - 1), 0);
    CU_ASSERT_EQUAL(shutdown(fd, SHUT_WR), 0);

    CU_ASSERT_EQUAL(read_one_response(fd, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_TRUE(is_translation(&r, "HALF CLOSED"));
    response_free(&r);
    close(fd);
    http_server_stop(s);
}

/* libmicrohttpd may close a half-closed connection before its reply goes
 * out when another suspended connection of the same HTTP thread was
 * resumed first, and does so in about half of the runs of this test (see
 * the NOTE in http.c). The request must not vanish then: either the client
 * gets its 200, or the daemon logs the request as dropped and counts it as
 * client_gone. */
static void test_half_closed_drop_accounted(void)
{
    http_config config = test_config();
    stderr_capture capture;
    http_server *s;
    async_post running;
    http_response r = {0};
    unsigned short to_port;
    double client_gone;
    char *log;
    int fd, answered;

    config.threads = 1; /* both connections on one HTTP thread */
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    to_port = http_server_port(s);
    CU_ASSERT_EQUAL_FATAL(stderr_capture_start(&capture), 0);
    set_gate(&double_calls, 0);
    async_post_start(&running, to_port, "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));

    fd = connect_to("127.0.0.1", to_port);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, half_closed_request, sizeof(half_closed_request) - 1), 0);
    CU_ASSERT_TRUE(wait_for_queue(s, 1));
    CU_ASSERT_EQUAL(shutdown(fd, SHUT_WR), 0);
    sleep_ms(20);
    set_gate(&double_calls, 1);
    async_post_join(&running);
    CU_ASSERT_TRUE(is_translation(&running.response, "WAIT"));
    response_free(&running.response);

    answered = read_one_response(fd, &r) == 0;
    close(fd);
    client_gone = answered ? client_gone_count(to_port) : wait_for_client_gone(to_port, 1);
    http_server_stop(s);
    log = stderr_capture_end(&capture);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    if (answered) {
        CU_ASSERT_TRUE(is_translation(&r, "HALF CLOSED"));
        CU_ASSERT_EQUAL(client_gone, 0);
        CU_ASSERT_PTR_NULL(strstr(log, "dropped:"));
    } else {
        CU_ASSERT_EQUAL(client_gone, 1);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(log, "POST /translate dropped: connection closed before the reply was sent"));
    }
    response_free(&r);
    free(log);
}

/* A translate thread with fewer sentences than the cap waits for more, and
 * starts as soon as the cap is reached. */
static void test_batch_wait_joins_late_request(void)
{
    http_config config = test_config();
    http_server *s;
    async_post first, second;
    double start, took;
    int calls_before;

    config.max_batch_sentences = 2;
    config.batch_wait_ms = 3000;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    calls_before = atomic_load(&double_calls.calls);
    start = now_ms();
    async_post_start(&first, http_server_port(s), "{\"q\": \"early\"}");
    sleep_ms(200);
    CU_ASSERT_EQUAL(atomic_load(&first.done), 0);
    async_post_start(&second, http_server_port(s), "{\"q\": \"late\"}");
    async_post_join(&first);
    async_post_join(&second);
    took = now_ms() - start;
    CU_ASSERT_TRUE(is_translation(&first.response, "EARLY"));
    CU_ASSERT_TRUE(is_translation(&second.response, "LATE"));
    CU_ASSERT_EQUAL(atomic_load(&double_calls.calls) - calls_before, 1);
    CU_ASSERT_TRUE(took < 2500.0);
    response_free(&first.response);
    response_free(&second.response);
    http_server_stop(s);

    /* Alone, a request waits out the batch wait. */
    config.batch_wait_ms = 300;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    start = now_ms();
    async_post_start(&first, http_server_port(s), "{\"q\": \"alone\"}");
    async_post_join(&first);
    CU_ASSERT_TRUE(is_translation(&first.response, "ALONE"));
    CU_ASSERT_TRUE(now_ms() - start >= 290.0);
    response_free(&first.response);
    http_server_stop(s);
}

/* A request over its deadline gets 504 while running or while queued, and
 * the translate thread is free for the next request at once. */
static void test_timeout_504_frees_thread(void)
{
    static exposition scraped;
    http_config config = test_config();
    http_server *s;
    async_post running, queued;
    cJSON *json = NULL;
    http_response r;
    int stopped_before = atomic_load(&double_calls.stopped);
    double start;

    config.timeout_ms = 300;
    config.max_batch_sentences = 1;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    set_gate(&double_calls, 0);
    start = now_ms();
    async_post_start(&running, http_server_port(s), "{\"q\": \"WAIT\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));
    async_post_start(&queued, http_server_port(s), "{\"q\": \"WAIT\"}");
    async_post_join(&running);
    async_post_join(&queued);
    CU_ASSERT_TRUE(now_ms() - start < 2000.0);
    CU_ASSERT_EQUAL(running.response.status, 504);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(error_text(&running.response, &json), "longer than the timeout of 300 ms"));
    cJSON_Delete(json);
    CU_ASSERT_EQUAL(queued.response.status, 504);
    CU_ASSERT_TRUE(atomic_load(&double_calls.stopped) > stopped_before);
    response_free(&running.response);
    response_free(&queued.response);

    /* The gate is still closed, but only "WAIT" blocks on it. */
    CU_ASSERT_EQUAL(send_request_at(http_server_port(s), "POST", "/translate",
                                    "application/json", "{\"q\": \"next\"}", 13, &r),
                    0);
    CU_ASSERT_TRUE(is_translation(&r, "NEXT"));
    response_free(&r);

    /* Both timeouts count as deadline_exceeded; only "next" was translated. */
    if (scrape_metrics(http_server_port(s), &scraped) == 0) {
        CU_ASSERT_EQUAL(
            exposition_value(&scraped, "seqmt_errors_total", "kind=\"deadline_exceeded\""), 2);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_requests_total",
                                         "endpoint=\"/translate\",code=\"504\""),
                        2);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_translated_sentences_total", ""), 1);
    }
    set_gate(&double_calls, 1);
    http_server_stop(s);
}

/* Two requests that share a callback call have different deadlines. The
 * first gets its 504 at its own deadline, not when the call returns at the
 * second one's. */
static void test_timeout_answers_before_batch_ends(void)
{
    http_config config = test_config();
    http_server *s;
    async_post pause, first, second;
    double start, first_ms;

    config.timeout_ms = 1000;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    set_gate(&double_calls, 0);
    start = now_ms();
    async_post_start(&pause, http_server_port(s), "{\"q\": \"PAUSE\"}");
    sleep_ms(10);
    async_post_start(&first, http_server_port(s), "{\"q\": \"WAIT\"}");
    sleep_ms(590);
    async_post_start(&second, http_server_port(s), "{\"q\": \"WAIT\"}");
    async_post_join(&first);
    first_ms = now_ms() - start;
    async_post_join(&second);
    async_post_join(&pause);
    set_gate(&double_calls, 1);

    CU_ASSERT_TRUE(is_translation(&pause.response, "PAUSE"));
    CU_ASSERT_EQUAL(first.response.status, 504);
    CU_ASSERT_EQUAL(second.response.status, 504);
    /* The first deadline is at about 1010 ms, the second at about 1600 ms. */
    if (first_ms >= 1400.0)
        fprintf(stderr, "\n  first 504 came after %.0f ms\n", first_ms);
    CU_ASSERT_TRUE(first_ms < 1400.0);
    response_free(&pause.response);
    response_free(&first.response);
    response_free(&second.response);
    http_server_stop(s);
}

/* Returns the number of threads of this process from /proc/self/status,
 * or -1 when it cannot be read. */
static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int count = -1;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &count) == 1)
            break;
    if (f)
        fclose(f);
    return count;
}

/* Polls until this process has at most target threads. A joined thread
 * may leave the kernel's count a moment later. Returns 1, or 0 after
 * WAIT_TIMEOUT_MS. */
static int wait_for_threads(int target)
{
    for (int waited = 0; waited < WAIT_TIMEOUT_MS; waited += 5) {
        if (thread_count() <= target)
            return 1;
        sleep_ms(5);
    }
    fprintf(stderr, "\n  %d threads remain, expected %d\n", thread_count(), target);
    return 0;
}

/* Asserts that a request sent at start_ms got its 504 no earlier than
 * QUEUED_TIMEOUT_MS later (its deadline counts from its arrival, after
 * start_ms) and at most EXPIRY_SLACK_MS after that. */
static void check_timely_504(const http_response *r, double start_ms)
{
    double took = now_ms() - start_ms;
    cJSON *json = NULL;
    char expected[96];

    snprintf(expected, sizeof(expected), "waited longer than the timeout of %d ms",
             QUEUED_TIMEOUT_MS);
    CU_ASSERT_EQUAL(r->status, 504);
    CU_ASSERT_PTR_NOT_NULL(strstr(error_text(r, &json), expected));
    cJSON_Delete(json);
    if (took < QUEUED_TIMEOUT_MS || took > QUEUED_TIMEOUT_MS + EXPIRY_SLACK_MS)
        fprintf(stderr, "\n  504 came %.1f ms after the request, deadline %d ms\n", took,
                QUEUED_TIMEOUT_MS);
    CU_ASSERT_TRUE(took >= QUEUED_TIMEOUT_MS);
    CU_ASSERT_TRUE(took <= QUEUED_TIMEOUT_MS + EXPIRY_SLACK_MS);
}

/* A request that waits in the queue behind a busy translate thread gets
 * 504 at its deadline, not when the thread becomes free, is counted once
 * as deadline_exceeded and never reaches the callback. Every thread of the
 * server ends on stop. */
static void test_queued_deadline_504_on_time(void)
{
    static exposition scraped;
    http_config config = test_config();
    http_server *s;
    async_post hold, late;
    http_response r;
    int threads_before = thread_count(), calls_before;
    double start;

    CU_ASSERT_TRUE_FATAL(threads_before > 0);
    config.timeout_ms = QUEUED_TIMEOUT_MS;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    calls_before = atomic_load(&double_calls.calls);
    set_gate(&double_calls, 0);
    async_post_start(&hold, http_server_port(s), "{\"q\": \"HOLD\"}");
    CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));

    /* The second request waits behind HOLD and expires in the queue. */
    start = now_ms();
    async_post_start(&late, http_server_port(s), "{\"q\": \"late\"}");
    async_post_join(&late);
    CU_ASSERT_EQUAL(late.rc, 0);
    check_timely_504(&late.response, start);
    response_free(&late.response);
    CU_ASSERT_EQUAL(atomic_load(&hold.done), 0);
    CU_ASSERT_EQUAL(http_server_queue_length(s), 0);
    if (scrape_metrics(http_server_port(s), &scraped) == 0) {
        CU_ASSERT_EQUAL(
            exposition_value(&scraped, "seqmt_errors_total", "kind=\"deadline_exceeded\""), 1);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_requests_total",
                                         "endpoint=\"/translate\",code=\"504\""),
                        1);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_queue_depth", ""), 0);
    }

    /* HOLD ignores the stop callback and finishes once the gate opens. The
     * translate thread then finds no job left of the expired request. */
    set_gate(&double_calls, 1);
    async_post_join(&hold);
    CU_ASSERT_TRUE(is_translation(&hold.response, "HOLD"));
    response_free(&hold.response);
    CU_ASSERT_EQUAL(send_request_at(http_server_port(s), "POST", "/translate",
                                    "application/json", "{\"q\": \"next\"}", 13, &r),
                    0);
    CU_ASSERT_TRUE(is_translation(&r, "NEXT"));
    response_free(&r);
    CU_ASSERT_EQUAL(atomic_load(&double_calls.calls) - calls_before, 2);
    if (scrape_metrics(http_server_port(s), &scraped) == 0) {
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_requests_total",
                                         "endpoint=\"/translate\",code=\"504\""),
                        1);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_requests_total",
                                         "endpoint=\"/translate\",code=\"200\""),
                        2);
    }
    http_server_stop(s);
    CU_ASSERT_TRUE(wait_for_threads(threads_before));
}

/* A translate thread that waits to fill a batch stops waiting at the
 * deadline of the job it holds, which then gets 504 rather than after the
 * whole batch wait. */
static void test_batch_wait_ends_at_deadline(void)
{
    http_config config = test_config();
    http_server *s;
    http_response r;
    double start;

    config.timeout_ms = QUEUED_TIMEOUT_MS;
    config.max_batch_sentences = 2;
    config.batch_wait_ms = 3000;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    start = now_ms();
    CU_ASSERT_EQUAL_FATAL(send_request_at(http_server_port(s), "POST", "/translate",
                                          "application/json", "{\"q\": \"alone\"}", 14, &r),
                          0);
    check_timely_504(&r, start);
    response_free(&r);
    http_server_stop(s);
}

/* Queued jobs expire while two translate threads take jobs off the same
 * queue, so expiry and pops race for jobs. Every request gets exactly one
 * reply, 200 or 504, and the counters agree with the replies. */
static void test_expiry_races_with_pops(void)
{
    static exposition scraped;
    static async_post clients[RACE_CLIENTS];
    http_config config = test_config();
    http_server *s;
    int ok = 0, timed_out = 0, other = 0;

    config.translate_threads = 2;
    config.max_batch_sentences = 1;
    config.timeout_ms = 60; /* each NAP takes NAP_MS, so most jobs expire queued */
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        for (int i = 0; i < RACE_CLIENTS; i++)
            async_post_start(&clients[i], http_server_port(s), "{\"q\": \"NAP\"}");
        for (int i = 0; i < RACE_CLIENTS; i++) {
            async_post_join(&clients[i]);
            CU_ASSERT_EQUAL(clients[i].rc, 0);
            if (is_translation(&clients[i].response, "NAP"))
                ok++;
            else if (clients[i].response.status == 504)
                timed_out++;
            else
                other++;
            response_free(&clients[i].response);
        }
    }
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT_TRUE(ok > 0);
    CU_ASSERT_TRUE(timed_out > 0);
    if (scrape_metrics(http_server_port(s), &scraped) == 0) {
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_requests_total",
                                         "endpoint=\"/translate\",code=\"200\""),
                        ok);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_requests_total",
                                         "endpoint=\"/translate\",code=\"504\""),
                        timed_out);
        CU_ASSERT_EQUAL(
            exposition_value(&scraped, "seqmt_errors_total", "kind=\"deadline_exceeded\""),
            timed_out);
        CU_ASSERT_EQUAL(exposition_value(&scraped, "seqmt_queue_depth", ""), 0);
    }
    http_server_stop(s);
}

static void test_several_pairs(void)
{
    static const http_language_pair pairs[] = {{"en", "de"}, {"de", "en"}, {"en", "fr"}};
    http_config config = test_config();
    http_server *s;
    unsigned short saved_port = port;
    http_response r;
    cJSON *json;

    config.pairs = pairs;
    config.pair_count = 3;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    port = http_server_port(s); /* check_translation and friends use port */

    check_translation("{\"q\": \"Hallo\", \"source\": \"de\", \"target\": \"en\"}", "hallo");
    check_translation("{\"q\": \"Hello\", \"source\": \"en\", \"target\": \"de\"}", "HELLO");
    check_translation("{\"q\": \"Hello\", \"source\": \"en\", \"target\": \"fr\"}", "hello");
    /* auto picks the only source for a target. */
    check_translation("{\"q\": \"Hallo\", \"source\": \"auto\", \"target\": \"en\"}", "hallo");
    check_translation("{\"q\": \"Hello\", \"target\": \"de\"}", "HELLO");
    check_bad_request("{\"q\": \"Hello\", \"source\": \"en\"}",
                      "language pair en-auto is ambiguous: it matches several of en-de, "
                      "de-en, en-fr");
    check_bad_request("{\"q\": \"Hello\", \"source\": \"fr\", \"target\": \"de\"}",
                      "language pair fr-de is not served; this server translates en-de, "
                      "de-en, en-fr");

    json = post_for_json("/v1/translate", "{\"q\": \"Hallo\", \"source\": \"auto\", "
                                          "\"target\": \"en\"}");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "source")), "de");
    cJSON_Delete(json);

    CU_ASSERT_EQUAL_FATAL(get_path(port, "/languages", &r), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "[{\"code\":\"en\",\"name\":\"English\",\"targets\":[\"de\","
                                   "\"fr\"]},{\"code\":\"de\",\"name\":\"German\","
                                   "\"targets\":[\"en\"]}]");
    response_free(&r);
    port = saved_port;
    http_server_stop(s);
}

/* Asserts that value is LibreTranslate's {"confidence": 100, "language":
 * language}. */
static void check_detected(const cJSON *value, const char *language)
{
    const cJSON *confidence = cJSON_GetObjectItemCaseSensitive(value, "confidence");

    CU_ASSERT_TRUE(cJSON_IsObject(value));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(value), 2);
    CU_ASSERT_TRUE(cJSON_IsNumber(confidence));
    CU_ASSERT_EQUAL(cJSON_IsNumber(confidence) ? confidence->valuedouble : -1.0, 100.0);
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItemCaseSensitive(value, "language")),
                           language);
}

/* A /translate request whose source is "auto" gets detectedLanguage
 * naming the source of the pair picked: one object, or one per text for a
 * list. A named, empty or missing source and /v1/translate get none. */
static void test_detected_language_for_auto(void)
{
    static const http_language_pair pairs[] = {{"en", "de"}, {"de", "en"}, {"en", "fr"}};
    static const char *const picked_en[] = {
        "{\"q\": \"Hello\", \"source\": \"auto\", \"target\": \"fr\"}",
        "{\"q\": \"\", \"source\": \"auto\", \"target\": \"fr\"}",
        "{\"q\": \"Hello\", \"source\": \"auto\", \"target\": \"de\", \"alternatives\": 1}",
    };
    static const char *const not_auto[] = {
        "{\"q\": \"Hallo\", \"source\": \"de\", \"target\": \"en\"}",
        "{\"q\": \"Hello\", \"source\": \"\", \"target\": \"fr\"}",
        "{\"q\": [\"Hello\"], \"target\": \"fr\"}",
    };
    static const char form[] = "q=Hallo&source=auto&target=en";
    http_config config = test_config();
    http_server *s;
    unsigned short saved_port = port;
    const cJSON *list;
    http_response r;
    cJSON *json;

    config.pairs = pairs;
    config.pair_count = 3;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    port = http_server_port(s); /* post_for_json uses port */

    /* One text: the source of the only pair with target en is de. */
    json = post_for_json("/translate",
                         "{\"q\": \"Hallo\", \"source\": \"auto\", \"target\": \"en\"}");
    CU_ASSERT_STRING_EQUAL(string_of(cJSON_GetObjectItem(json, "translatedText")), "hallo");
    check_detected(cJSON_GetObjectItemCaseSensitive(json, "detectedLanguage"), "de");
    cJSON_Delete(json);
    for (size_t i = 0; i < sizeof(picked_en) / sizeof(picked_en[0]); i++) {
        json = post_for_json("/translate", picked_en[i]);
        check_detected(cJSON_GetObjectItemCaseSensitive(json, "detectedLanguage"), "en");
        cJSON_Delete(json);
    }

    /* A list gets one object per text, and an empty list an empty array. */
    json = post_for_json("/translate", "{\"q\": [\"Hallo\", \"Welt\", \"\"], \"source\": "
                                       "\"auto\", \"target\": \"en\"}");
    list = cJSON_GetObjectItemCaseSensitive(json, "detectedLanguage");
    CU_ASSERT_TRUE(cJSON_IsArray(list));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(list), 3);
    for (int i = 0; i < cJSON_GetArraySize(list); i++)
        check_detected(cJSON_GetArrayItem(list, i), "de");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(json, "translatedText")), 3);
    cJSON_Delete(json);
    json = post_for_json("/translate", "{\"q\": [], \"source\": \"auto\", \"target\": \"en\"}");
    list = cJSON_GetObjectItemCaseSensitive(json, "detectedLanguage");
    CU_ASSERT_TRUE(cJSON_IsArray(list));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(list), 0);
    cJSON_Delete(json);

    /* A form body with source=auto. */
    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/translate", "application/x-www-form-urlencoded",
                                       form, sizeof(form) - 1, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    json = cJSON_Parse(r.body ? r.body : "");
    check_detected(cJSON_GetObjectItemCaseSensitive(json, "detectedLanguage"), "de");
    cJSON_Delete(json);
    response_free(&r);

    /* Other sources, and /v1/translate, which has "source" instead. */
    for (size_t i = 0; i < sizeof(not_auto) / sizeof(not_auto[0]); i++) {
        json = post_for_json("/translate", not_auto[i]);
        CU_ASSERT_PTR_NOT_NULL(json);
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(json, "detectedLanguage"));
        cJSON_Delete(json);
    }
    json = post_for_json("/v1/translate",
                         "{\"q\": \"Hallo\", \"source\": \"auto\", \"target\": \"en\"}");
    CU_ASSERT_PTR_NOT_NULL(json);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(json, "detectedLanguage"));
    cJSON_Delete(json);

    port = saved_port;
    http_server_stop(s);
}

static void test_cors_headers(void)
{
    const char preflight[] = "OPTIONS /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Origin: http://example.test\r\n"
                             "Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n";
    const char limited[] = "{\"q\": \"c\", \"api_key\": \"limited\"}";
    http_config config = test_config();
    char exposed[64];
    http_server *s;
    http_response r;

    /* Off by default: no header, and OPTIONS is not allowed. */
    CU_ASSERT_EQUAL_FATAL(exchange(preflight, sizeof(preflight) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT_STRING_EQUAL(r.allow_origin, "");
    response_free(&r);
    CU_ASSERT_EQUAL_FATAL(get_path(port, "/health", &r), 0);
    CU_ASSERT_STRING_EQUAL(r.allow_origin, "");
    CU_ASSERT_EQUAL(response_header_count(&r, "Access-Control-Expose-Headers"), 0);
    response_free(&r);

    config.cors = 1;
    config.authorize = authorize_key;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(
        exchange_at("127.0.0.1", http_server_port(s), preflight, sizeof(preflight) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 204);
    CU_ASSERT_STRING_EQUAL(r.allow_origin, "*");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.allow_methods, "POST"));
    response_free(&r);
    CU_ASSERT_EQUAL_FATAL(send_request_at(http_server_port(s), "POST", "/translate",
                                          "application/json", "{\"q\": \"c\"}", 10, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.allow_origin, "*");
    CU_ASSERT_STRING_EQUAL(response_header(&r, "Access-Control-Expose-Headers", exposed,
                                           sizeof(exposed))
                               ? exposed
                               : "",
                           "Retry-After, X-Request-Id");
    response_free(&r);

    /* A 429 carries Retry-After, which a page can read because it is exposed. */
    CU_ASSERT_EQUAL_FATAL(send_request_at(http_server_port(s), "POST", "/translate",
                                          "application/json", limited, strlen(limited), &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_STRING_EQUAL(r.retry_after, "7");
    CU_ASSERT_STRING_EQUAL(response_header(&r, "Access-Control-Expose-Headers", exposed,
                                           sizeof(exposed))
                               ? exposed
                               : "",
                           "Retry-After, X-Request-Id");
    response_free(&r);
    http_server_stop(s);
}

/* At the connection limit, the daemon stops accepting. A new connection
 * completes its handshake in the kernel's listen backlog and gets no reply
 * until an open connection closes, and then gets it. */
static void test_max_connections(void)
{
    const char health[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    http_config config = test_config();
    struct pollfd waiting;
    http_server *s;
    http_response r;
    int open_fds[2];

    config.threads = 1;
    config.max_connections = 2;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (int i = 0; i < 2; i++) {
        open_fds[i] = connect_to("127.0.0.1", http_server_port(s));
        CU_ASSERT_EQUAL(keep_alive_exchange(open_fds[i], health, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        response_free(&r);
    }

    /* The third connection is made, but its request waits unanswered. */
    waiting.fd = connect_to("127.0.0.1", http_server_port(s));
    waiting.events = POLLIN;
    CU_ASSERT_TRUE_FATAL(waiting.fd >= 0);
    CU_ASSERT_EQUAL(send_all(waiting.fd, health, sizeof(health) - 1), 0);
    CU_ASSERT_EQUAL(poll(&waiting, 1, 300), 0);

    /* Closing one open connection lets the daemon accept it and reply. */
    close(open_fds[0]);
    CU_ASSERT_EQUAL(read_one_response(waiting.fd, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);
    close(waiting.fd);
    close(open_fds[1]);
    http_server_stop(s);
}

/* Returns the CPU time of this process, all threads together, in ms. */
static double process_cpu_ms(void)
{
    struct timespec used;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
    return 1e3 * (double)used.tv_sec + 1e-6 * (double)used.tv_nsec;
}

/* Asserts that the process uses less than IDLE_CPU_MAX_MS of CPU time in
 * IDLE_WATCH_MS, as it should while the server only waits. A thread that
 * spins uses about IDLE_WATCH_MS when it gets a core. */
static void check_idle_cpu(const char *state)
{
    double start = process_cpu_ms();
    double used;

    sleep_ms(IDLE_WATCH_MS);
    used = process_cpu_ms() - start;
    if (used >= IDLE_CPU_MAX_MS)
        fprintf(stderr, "\n  %s: %.1f ms of CPU time in %d ms\n", state, used, IDLE_WATCH_MS);
    CU_ASSERT_TRUE(used < IDLE_CPU_MAX_MS);
}

/* At the connection limit, with a third connection waiting in the listen
 * backlog, the server waits without using CPU time. Once stop begins, the
 * waiting connection is reset, new ones are refused, an idle connection
 * closed during the grace period leaves the server idle, and the request
 * in progress still gets its reply. Runs with one and two HTTP threads. */
static void test_stop_at_connection_limit(void)
{
    const char health[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    for (unsigned threads = 1; threads <= 2; threads++) {
        http_config config = test_config();
        struct pollfd waiting = {.events = POLLIN};
        async_stop stop = {0};
        async_post running;
        unsigned short to_port;
        http_response r;
        http_server *s;
        int idle;

        config.threads = threads;
        config.max_connections = 2;
        config.grace_seconds = 5;
        s = start_config(&config);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        to_port = http_server_port(s);

        /* Step 1: an idle keep-alive connection and a request held at the
         * gate reach the limit. */
        idle = connect_to("127.0.0.1", to_port);
        CU_ASSERT_EQUAL(keep_alive_exchange(idle, health, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        response_free(&r);
        set_gate(&double_calls, 0);
        async_post_start(&running, to_port, "{\"q\": \"WAIT\"}");
        CU_ASSERT_TRUE(wait_for_count(&double_calls.waiting, 1));

        /* Step 2: a third connection waits in the backlog, unanswered,
         * while the server idles. */
        waiting.fd = connect_to("127.0.0.1", to_port);
        CU_ASSERT_TRUE_FATAL(waiting.fd >= 0);
        CU_ASSERT_EQUAL(send_all(waiting.fd, health, sizeof(health) - 1), 0);
        check_idle_cpu(threads == 1 ? "at the limit, 1 thread" : "at the limit, 2 threads");
        CU_ASSERT_EQUAL(poll(&waiting, 1, 0), 0);

        /* Step 3: stop. The waiting connection is reset with the backlog,
         * and a new one is refused. */
        stop.server = s;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&stop.thread, NULL, async_stop_thread, &stop), 0);
        sleep_ms(100);
        CU_ASSERT_EQUAL(atomic_load(&stop.done), 0);
        CU_ASSERT_EQUAL(connect_errno(to_port), ECONNREFUSED);
        CU_ASSERT_NOT_EQUAL(read_one_response(waiting.fd, &r), 0);
        response_free(&r);
        close(waiting.fd);

        /* Step 4: the idle connection closes during the grace period. */
        if (idle >= 0)
            close(idle);
        check_idle_cpu(threads == 1 ? "stopping, 1 thread" : "stopping, 2 threads");
        CU_ASSERT_EQUAL(atomic_load(&running.done), 0);

        /* Step 5: the request in progress gets its reply, then stop returns. */
        set_gate(&double_calls, 1);
        pthread_join(stop.thread, NULL);
        async_post_join(&running);
        CU_ASSERT_EQUAL(running.rc, 0);
        CU_ASSERT_TRUE(is_translation(&running.response, "WAIT"));
        response_free(&running.response);
    }
}

/* A client of test_stop_while_connecting, which opens two connections,
 * sends GET /health on the first and reads until the reply, a reset or the
 * close. The second one waits in the listen backlog when the first one
 * fills the limit of one connection. */
typedef struct {
    pthread_t thread;
    unsigned short port;
    atomic_int connecting; /* set just before the first connect */
} racing_client;

static void *racing_client_thread(void *arg)
{
    const char health[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    racing_client *client = arg;
    http_response r;
    int fds[2];

    atomic_store(&client->connecting, 1);
    fds[0] = connect_to("127.0.0.1", client->port);
    fds[1] = connect_to("127.0.0.1", client->port);
    if (fds[0] >= 0 && send_all(fds[0], health, sizeof(health) - 1) == 0 &&
        read_one_response(fds[0], &r) == 0)
        response_free(&r);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return NULL;
}

/* Stops a server with one HTTP thread and a limit of one connection while
 * a client connects, STOP_RACE_ROUNDS times (or for STOP_RACE_MAX_MS at
 * most), with the stop 0 to 200 microseconds after the client starts. The
 * process must survive every stop, and no accept failure may be logged. */
static void test_stop_while_connecting(void)
{
    static const char *const unexpected[] = {
        "Error accepting connection",   /* libmicrohttpd's accept failed */
        "accept4 failed",               /* the accept thread's */
        "poll failed",
        "could not take the connection",
        "Failed to start serving new connection",
        "Server reached connection limit",
    };
    http_config config = test_config();
    stderr_capture capture;
    double start = now_ms();
    int rounds = 0;
    char *log;

    config.threads = 1;
    config.max_connections = 1;
    config.grace_seconds = 1;
    CU_ASSERT_EQUAL_FATAL(stderr_capture_start(&capture), 0);
    for (; rounds < STOP_RACE_ROUNDS && now_ms() - start < STOP_RACE_MAX_MS; rounds++) {
        http_server *s = start_config(&config);
        racing_client client = {.port = 0};
        double delay_ms = 0.025 * (rounds % 9);

        if (!s) {
            CU_FAIL("server did not start");
            break;
        }
        client.port = http_server_port(s);
        atomic_init(&client.connecting, 0);
        if (pthread_create(&client.thread, NULL, racing_client_thread, &client) != 0) {
            CU_FAIL("cannot start the client thread");
            http_server_stop(s);
            break;
        }
        while (!atomic_load(&client.connecting))
            sched_yield();
        for (double until = now_ms() + delay_ms; now_ms() < until;)
            ;
        http_server_stop(s);
        pthread_join(client.thread, NULL);
    }
    log = stderr_capture_end(&capture);
    fprintf(stderr, "\n  %d stops while connecting in %.0f ms\n", rounds, now_ms() - start);
    CU_ASSERT_TRUE(rounds > 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    for (size_t i = 0; i < sizeof(unexpected) / sizeof(unexpected[0]); i++) {
        if (strstr(log, unexpected[i]))
            fprintf(stderr, "  logged: %s\n", unexpected[i]);
        CU_ASSERT_PTR_NULL(strstr(log, unexpected[i]));
    }
    free(log);
}

/* Returns how many times needle occurs in text. */
static int count_occurrences(const char *text, const char *needle)
{
    int count = 0;

    for (const char *at = strstr(text, needle); at; at = strstr(at + 1, needle))
        count++;
    return count;
}

/* When the process runs out of file descriptors, the accept thread logs
 * the failure of accept4 once and retries every 100 ms without spinning.
 * Once descriptors are free again, it accepts the waiting connection,
 * which gets its reply, and logs that it accepts again. */
static void test_accept_at_descriptor_limit(void)
{
    const char health[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    http_config config = test_config();
    int fillers[FD_FILLERS_MAX];
    int filled = 0, source, client;
    struct rlimit saved, lowered;
    stderr_capture capture;
    http_response r;
    http_server *s;
    char *log;

    config.threads = 1;
    s = start_config(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    source = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CU_ASSERT_TRUE_FATAL(source >= 0);
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &saved), 0);
    CU_ASSERT_EQUAL_FATAL(stderr_capture_start(&capture), 0);

    /* Step 1: lower the limit a few descriptors above the ones in use, take
     * every free one but the last, and let the client's socket take that. */
    lowered = saved;
    lowered.rlim_cur = (rlim_t)source + FD_HEADROOM;
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    while (filled < FD_FILLERS_MAX && (fillers[filled] = dup(source)) >= 0)
        filled++;
    CU_ASSERT_TRUE(filled < FD_FILLERS_MAX); /* dup failed with EMFILE */
    if (filled > 0)
        close(fillers[--filled]);
    client = connect_to("127.0.0.1", http_server_port(s));
    CU_ASSERT_TRUE(client >= 0);
    CU_ASSERT_EQUAL(send_all(client, health, sizeof(health) - 1), 0);

    /* Step 2: accept4 fails with EMFILE, and the server idles meanwhile. */
    check_idle_cpu("out of file descriptors");

    /* Step 3: with descriptors free again, the connection gets its reply. */
    while (filled > 0)
        close(fillers[--filled]);
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &saved), 0);
    CU_ASSERT_EQUAL(read_one_response(client, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    response_free(&r);
    if (client >= 0)
        close(client);
    close(source);
    http_server_stop(s);

    log = stderr_capture_end(&capture);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_EQUAL(count_occurrences(log, "http: accept4 failed: Too many open files"), 1);
    CU_ASSERT_EQUAL(count_occurrences(log, "http: accepting connections again after"), 1);
    free(log);
}

/* Every path and method of the embedded OpenAPI document replies with one
 * of its documented statuses. */
static void test_openapi_paths_answer(void)
{
    http_response r;
    cJSON *doc;
    const cJSON *path;
    int checked = 0;

    CU_ASSERT_EQUAL_FATAL(get_path(port, "/openapi.json", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    doc = cJSON_Parse(r.body);
    response_free(&r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(strncmp(string_of(cJSON_GetObjectItem(doc, "openapi")),
                            "3.0.", 4),
                    0);
    cJSON_ArrayForEach(path, cJSON_GetObjectItem(doc, "paths"))
    {
        const cJSON *operation;

        cJSON_ArrayForEach(operation, path)
        {
            char status[8];
            int is_post = strcmp(operation->string, "post") == 0;

            CU_ASSERT_TRUE(is_post || strcmp(operation->string, "get") == 0);
            if (is_post) {
                CU_ASSERT_EQUAL(send_request("POST", path->string, "application/json",
                                             "{\"q\": \"doc\"}", 12, &r),
                                0);
            } else {
                CU_ASSERT_EQUAL(get_path(port, path->string, &r), 0);
            }
            snprintf(status, sizeof(status), "%d", r.status);
            if (!cJSON_GetObjectItem(cJSON_GetObjectItem(operation, "responses"), status))
                fprintf(stderr, "\n  %s %s answered %d\n", operation->string, path->string,
                        r.status);
            CU_ASSERT_EQUAL(r.status, 200);
            CU_ASSERT_PTR_NOT_NULL(
                cJSON_GetObjectItem(cJSON_GetObjectItem(operation, "responses"), status));
            response_free(&r);
            checked++;
        }
    }
    CU_ASSERT_EQUAL(checked, 8);
    cJSON_Delete(doc);
}

/* Returns the number of "$ref" values under item that do not name an
 * existing "#/components/KIND/NAME" of doc, and prints each. */
static int count_broken_refs(const cJSON *doc, const cJSON *item)
{
    const cJSON *child;
    int broken = 0;

    if (item->string && strcmp(item->string, "$ref") == 0) {
        char kind[64], name[64];
        const cJSON *components = cJSON_GetObjectItem(doc, "components");

        if (!cJSON_IsString(item) ||
            sscanf(item->valuestring, "#/components/%63[^/]/%63s", kind, name) != 2 ||
            !cJSON_GetObjectItem(cJSON_GetObjectItem(components, kind), name)) {
            fprintf(stderr, "\n  broken $ref %s\n", string_of(item));
            return 1;
        }
        return 0;
    }
    cJSON_ArrayForEach(child, item)
    {
        broken += count_broken_refs(doc, child);
    }
    return broken;
}

/* The OpenAPI document resolves every $ref and documents /metrics, and the
 * 403 and 429 of the API key check on both translation routes. */
static void test_openapi_documents_access(void)
{
    static const char *const translate_paths[] = {"/translate", "/v1/translate"};
    http_response r;
    cJSON *doc;
    const cJSON *paths, *metrics_get;

    CU_ASSERT_EQUAL_FATAL(get_path(port, "/openapi.json", &r), 0);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    doc = cJSON_Parse(r.body);
    response_free(&r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(count_broken_refs(doc, doc), 0);
    paths = cJSON_GetObjectItem(doc, "paths");
    for (size_t i = 0; i < 2; i++) {
        const cJSON *post = cJSON_GetObjectItem(cJSON_GetObjectItem(paths, translate_paths[i]),
                                                "post");
        const cJSON *responses = cJSON_GetObjectItem(post, "responses");

        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(responses, "403"));
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(responses, "429"));
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(post, "security"));
    }
    metrics_get = cJSON_GetObjectItem(cJSON_GetObjectItem(paths, "/metrics"), "get");
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(metrics_get, "responses"),
                                                "200"),
                            "content"),
        "text/plain; version=0.0.4; charset=utf-8"));
    cJSON_Delete(doc);
}

/* Asserts that object has every property that schema lists as required,
 * and no property that schema does not list. */
static void check_matches_schema(const cJSON *object, const cJSON *schema, const char *name)
{
    const cJSON *required = cJSON_GetObjectItem(schema, "required");
    const cJSON *properties = cJSON_GetObjectItem(schema, "properties");
    const cJSON *item;

    CU_ASSERT_TRUE_FATAL(cJSON_IsObject(object));
    cJSON_ArrayForEach(item, required)
    {
        if (!cJSON_GetObjectItem(object, string_of(item)))
            fprintf(stderr, "\n  %s lacks required \"%s\"\n", name, string_of(item));
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(object, string_of(item)));
    }
    cJSON_ArrayForEach(item, object)
    {
        if (!cJSON_GetObjectItem(properties, item->string))
            fprintf(stderr, "\n  %s has undocumented \"%s\"\n", name, item->string);
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(properties, item->string));
    }
}

/* The OpenAPI schemas of /v1/translate list exactly the fields that its
 * reply has, and state the formula of normalized_score. */
static void test_openapi_matches_v1_reply(void)
{
    http_response r;
    cJSON *doc, *reply;
    const cJSON *schemas, *translation, *hypothesis, *normalized;

    CU_ASSERT_EQUAL_FATAL(get_path(port, "/openapi.json", &r), 0);
    doc = cJSON_Parse(r.body);
    response_free(&r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    schemas = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "components"), "schemas");
    reply = post_for_json("/v1/translate", "{\"q\": \"One. Two.\", \"beam_size\": 2, "
                                           "\"n_best\": 2}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(reply);
    translation = cJSON_GetArrayItem(cJSON_GetObjectItem(reply, "translations"), 0);
    hypothesis = cJSON_GetArrayItem(cJSON_GetObjectItem(translation, "n_best"), 1);
    check_matches_schema(reply, cJSON_GetObjectItem(schemas, "V1TranslateResponse"),
                         "the reply");
    check_matches_schema(translation, cJSON_GetObjectItem(schemas, "V1Translation"),
                         "a translation");
    check_matches_schema(hypothesis, cJSON_GetObjectItem(schemas, "Hypothesis"),
                         "a hypothesis");
    normalized = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(schemas, "Hypothesis"), "properties"),
        "normalized_score");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(string_of(cJSON_GetObjectItem(normalized, "description")),
               "score / length^length_penalty"));
    cJSON_Delete(reply);
    cJSON_Delete(doc);
}

/* ---- metrics ---- */

/* The two scrapes of test_metrics_count_requests. */
static exposition metrics_before, metrics_after;

/* Returns how much a sample grew between metrics_before and metrics_after. */
static double grown(const char *name, const char *labels)
{
    return exposition_growth(&metrics_before, &metrics_after, name, labels);
}

/* Counters grow by exactly the requests made between two scrapes, and the
 * duration histogram counts each of them once. */
static void test_metrics_count_requests(void)
{
    const char too_large[] = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Type: application/json\r\nContent-Length: 999999\r\n"
                             "Connection: close\r\n\r\n";
    const char *requests = "seqmt_requests_total";
    const char *durations = "seqmt_request_duration_seconds_count";
    http_response r;
    int calls;

    CU_ASSERT_EQUAL_FATAL(scrape_metrics(port, &metrics_before), 0);
    calls = atomic_load(&double_calls.calls);

    /* Three sentences of six words in two requests, then three failures. */
    check_translation("{\"q\": \"One two. Three\"}", "ONE TWO. THREE");
    check_translation("{\"q\": \"four five six\"}", "FOUR FIVE SIX");
    check_bad_request("{\"q\": 5}", "q");
    CU_ASSERT_EQUAL(exchange(too_large, sizeof(too_large) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 413);
    response_free(&r);
    CU_ASSERT_EQUAL(get_path(port, "/health", &r), 0);
    response_free(&r);
    CU_ASSERT_EQUAL(get_path(port, "/no/such/path", &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    response_free(&r);

    CU_ASSERT_EQUAL_FATAL(scrape_metrics(port, &metrics_after), 0);
    CU_ASSERT_EQUAL(grown(requests, "endpoint=\"/translate\",code=\"200\""), 2);
    CU_ASSERT_EQUAL(grown(requests, "endpoint=\"/translate\",code=\"400\""), 1);
    CU_ASSERT_EQUAL(grown(requests, "endpoint=\"/translate\",code=\"413\""), 1);
    CU_ASSERT_EQUAL(grown(requests, "endpoint=\"/health\",code=\"200\""), 1);
    CU_ASSERT_EQUAL(grown(requests, "endpoint=\"other\",code=\"404\""), 1);
    /* The first scrape is counted once its reply is queued. */
    CU_ASSERT_EQUAL(grown(requests, "endpoint=\"/metrics\",code=\"200\""), 1);

    CU_ASSERT_EQUAL(grown(durations, "endpoint=\"/translate\""), 4);
    CU_ASSERT_EQUAL(grown("seqmt_request_duration_seconds_bucket",
                          "endpoint=\"/translate\",le=\"+Inf\""),
                    4);
    CU_ASSERT_EQUAL(grown(durations, "endpoint=\"/health\""), 1);
    CU_ASSERT_EQUAL(grown(durations, "endpoint=\"other\""), 1);
    CU_ASSERT(grown("seqmt_request_duration_seconds_sum", "endpoint=\"/translate\"") > 0);

    CU_ASSERT_EQUAL(grown("seqmt_errors_total", "kind=\"invalid_request\""), 1);
    CU_ASSERT_EQUAL(grown("seqmt_errors_total", "kind=\"body_too_large\""), 1);
    CU_ASSERT_EQUAL(grown("seqmt_errors_total", "kind=\"queue_full\""), 0);
    CU_ASSERT_EQUAL(grown("seqmt_translated_sentences_total", ""), 3);
    CU_ASSERT_EQUAL(grown("seqmt_translated_tokens_total", ""), 6);
    CU_ASSERT_EQUAL(grown("seqmt_batch_sentences_count", ""),
                    atomic_load(&double_calls.calls) - calls);
    CU_ASSERT_EQUAL(grown("seqmt_batch_sentences_sum", ""), 3);
    CU_ASSERT_EQUAL(exposition_value(&metrics_after, "seqmt_queue_depth", ""), 0);
    CU_ASSERT_EQUAL(exposition_value(&metrics_after, "seqmt_models_loaded", ""), 1);
}

/* HEAD /metrics has the headers of GET and no body; POST is 405. */
static void test_metrics_methods(void)
{
    const char head[] = "HEAD /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    http_response r;

    CU_ASSERT_EQUAL_FATAL(exchange(head, sizeof(head) - 1, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    CU_ASSERT_EQUAL(r.body_len, 0);
    response_free(&r);
    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/metrics", "application/json", "{}", 2, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    response_free(&r);
}

/* ---- the page ---- */

/* Sends a GET or HEAD for path with an extra header line (ending in \r\n,
 * or ""). */
static int request_with_header(const char *method, const char *path, const char *header,
                               http_response *r)
{
    char request[512];
    int len = snprintf(request, sizeof(request),
                       "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
                       method, path, header);

    return exchange(request, (size_t)len, r);
}

/* Asserts the headers that every embedded file is served with. */
static void check_asset_headers(const http_response *r, const seqmt_asset *asset)
{
    char value[128];

    CU_ASSERT_STRING_EQUAL(response_header(r, "ETag", value, sizeof(value)) ? value : "",
                           asset->etag);
    CU_ASSERT_STRING_EQUAL(response_header(r, "Cache-Control", value, sizeof(value)) ? value : "",
                           "no-cache");
    CU_ASSERT_STRING_EQUAL(
        response_header(r, "X-Content-Type-Options", value, sizeof(value)) ? value : "",
        "nosniff");
    CU_ASSERT_STRING_EQUAL(
        response_header(r, "Content-Security-Policy", value, sizeof(value)) ? value : "",
        "default-src 'self'");
    CU_ASSERT_TRUE(r->request_id[0] != '\0');
}

/* Every embedded file is served byte for byte at its path, with its
 * Content-Type and the caching and security headers; / is index.html. */
static void test_page_files_served(void)
{
    const seqmt_asset *index = assets_find("/index.html");
    http_response r;

    CU_ASSERT_TRUE_FATAL(assets_count() >= 4);
    for (size_t i = 0; i < assets_count(); i++) {
        const seqmt_asset *asset = assets_at(i);

        CU_ASSERT_EQUAL_FATAL(get_path(port, asset->path, &r), 0);
        if (r.status != 200)
            fprintf(stderr, "\n  GET %s returned %d\n", asset->path, r.status);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_STRING_EQUAL(r.content_type, asset->content_type);
        CU_ASSERT_EQUAL(r.body_len, asset->size);
        CU_ASSERT(r.body_len == asset->size && memcmp(r.body, asset->data, asset->size) == 0);
        check_asset_headers(&r, asset);
        response_free(&r);
    }

    CU_ASSERT_PTR_NOT_NULL_FATAL(index);
    CU_ASSERT_EQUAL_FATAL(get_path(port, "/", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "text/html; charset=utf-8");
    CU_ASSERT(r.body_len == index->size && memcmp(r.body, index->data, index->size) == 0);
    check_asset_headers(&r, index);
    response_free(&r);
}

/* HEAD has the headers and length of GET without a body. */
static void test_page_head(void)
{
    const seqmt_asset *index = assets_find("/index.html");
    http_response r;
    char length[32];

    CU_ASSERT_PTR_NOT_NULL_FATAL(index);
    CU_ASSERT_EQUAL_FATAL(request_with_header("HEAD", "/", "", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "text/html; charset=utf-8");
    CU_ASSERT_EQUAL(r.body_len, 0);
    CU_ASSERT_EQUAL(strtoul(response_header(&r, "Content-Length", length, sizeof(length))
                                ? length
                                : "0",
                            NULL, 10),
                    index->size);
    check_asset_headers(&r, index);
    response_free(&r);
}

/* If-None-Match that names the file's ETag (alone, in a list, weak, or
 * "*") gets 304 without a body; another ETag gets the file. */
static void test_page_etag_304(void)
{
    const seqmt_asset *script = assets_find("/app.js");
    char header[160];
    const char *const matching[] = {"%s", "\"0123\", %s", "W/%s", "*"};
    const char *const other[] = {"\"0123\"", "W/\"0123\", \"4567\"", "\"\""};
    http_response r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(script);
    for (size_t i = 0; i < sizeof(matching) / sizeof(matching[0]); i++) {
        char value[96];

        snprintf(value, sizeof(value), matching[i], script->etag);
        snprintf(header, sizeof(header), "If-None-Match: %s\r\n", value);
        CU_ASSERT_EQUAL_FATAL(request_with_header("GET", "/app.js", header, &r), 0);
        if (r.status != 304)
            fprintf(stderr, "\n  If-None-Match: %s returned %d\n", value, r.status);
        CU_ASSERT_EQUAL(r.status, 304);
        CU_ASSERT_EQUAL(r.body_len, 0);
        check_asset_headers(&r, script);
        response_free(&r);
    }
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        snprintf(header, sizeof(header), "If-None-Match: %s\r\n", other[i]);
        CU_ASSERT_EQUAL_FATAL(request_with_header("GET", "/app.js", header, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.body_len, script->size);
        response_free(&r);
    }
}

/* Other methods on the page get 405, and near misses of its paths 404. */
static void test_page_methods_and_paths(void)
{
    static const char *const missing[] = {"/index.html/", "/INDEX.HTML", "/service/web/app.js",
                                          "/app", "//app.js"};
    http_response r;
    char allow[32];

    CU_ASSERT_EQUAL_FATAL(send_request("POST", "/", "application/json", "{}", 2, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT_STRING_EQUAL(response_header(&r, "Allow", allow, sizeof(allow)) ? allow : "",
                           "GET, HEAD");
    response_free(&r);
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(get_path(port, missing[i], &r), 0);
        if (r.status != 404)
            fprintf(stderr, "\n  GET %s returned %d\n", missing[i], r.status);
        CU_ASSERT_EQUAL(r.status, 404);
        response_free(&r);
    }
}

/* Requests for the page and its files count under the endpoint "/". */
static void test_page_in_metrics(void)
{
    http_response r;

    CU_ASSERT_EQUAL_FATAL(scrape_metrics(port, &metrics_before), 0);
    CU_ASSERT_EQUAL(get_path(port, "/", &r), 0);
    response_free(&r);
    CU_ASSERT_EQUAL(get_path(port, "/style.css", &r), 0);
    response_free(&r);
    CU_ASSERT_EQUAL(request_with_header("GET", "/app.js", "If-None-Match: *\r\n", &r), 0);
    response_free(&r);
    CU_ASSERT_EQUAL_FATAL(scrape_metrics(port, &metrics_after), 0);
    CU_ASSERT_EQUAL(grown("seqmt_requests_total", "endpoint=\"/\",code=\"200\""), 2);
    CU_ASSERT_EQUAL(grown("seqmt_requests_total", "endpoint=\"/\",code=\"304\""), 1);
    CU_ASSERT_EQUAL(grown("seqmt_request_duration_seconds_count", "endpoint=\"/\""), 3);
    CU_ASSERT_EQUAL(grown("seqmt_requests_total", "endpoint=\"other\",code=\"200\""), 0);
}

int main(void)
{
    CU_pSuite suite;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("http_server", start_test_server, stop_test_server);
    if (!suite)
        return 1;

    CU_add_test(suite, "translate single string", test_translate_single_string);
    CU_add_test(suite, "translate array keeps order", test_translate_array_keeps_order);
    CU_add_test(suite, "translate empty array", test_translate_empty_array);
    CU_add_test(suite, "health returns ok", test_health_ok);
    CU_add_test(suite, "malformed JSON then good request", test_malformed_json_then_good);
    CU_add_test(suite, "missing or invalid q is 400", test_missing_or_invalid_q);
    CU_add_test(suite, "too many texts is 400", test_too_many_texts);
    CU_add_test(suite, "empty and binary bodies are 400", test_empty_and_binary_bodies);
    CU_add_test(suite, "NUL escape in JSON is 400", test_nul_escape_400);
    CU_add_test(suite, "wrong language pair is 400", test_wrong_language_pair);
    CU_add_test(suite, "unknown path is 404", test_unknown_path_404);
    CU_add_test(suite, "wrong method is 405", test_wrong_method_405);
    CU_add_test(suite, "Content-Length over limit is 413", test_body_too_large_by_length);
    CU_add_test(suite, "chunked body over limit is 413", test_body_too_large_chunked);
    CU_add_test(suite, "body near limit is accepted", test_body_near_limit);
    CU_add_test(suite, "callback failure is 500", test_callback_failure_500);
    CU_add_test(suite, "form-encoded body", test_form_encoded_body);
    CU_add_test(suite, "max_chars over limit is 400", test_max_chars_400);
    CU_add_test(suite, "callback rejection is 400", test_callback_reject_400);
    CU_add_test(suite, "languages lists the pair", test_languages_lists_pair);
    CU_add_test(suite, "ready returns ready", test_ready_ok);
    CU_add_test(suite, "multipart body", test_multipart_body);
    CU_add_test(suite, "unsupported Content-Type is 400", test_content_type_checked);
    CU_add_test(suite, "random bodies get JSON replies", test_random_bodies);
    CU_add_test(suite, "keep-alive connection, two translations",
                test_keep_alive_two_translations);
    CU_add_test(suite, "8 concurrent clients", test_concurrent_clients);
    CU_add_test(suite, "health replies while translators busy", test_health_while_busy);
    CU_add_test(suite, "full queue is 503", test_full_queue_503);
    CU_add_test(suite, "stop delivers in-flight replies", test_stop_delivers_in_flight);
    CU_add_test(suite, "stop refuses new connections", test_stop_refuses_new_connections);
    CU_add_test(suite, "stop after grace period is 503", test_stop_after_grace_503);
    CU_add_test(suite, "client gone while queued is skipped", test_client_gone_while_queued);
    CU_add_test(suite, "half-closed client gets its reply", test_half_closed_client_gets_reply);
    CU_add_test(suite, "half-closed drop is accounted", test_half_closed_drop_accounted);
    CU_add_test(suite, "disconnects summarized, not logged", test_disconnects_summarized);
    CU_add_test(suite, "start errors are reported", test_start_errors);
    CU_add_test(suite, "IPv6 loopback", test_ipv6_loopback);
    CU_add_test(suite, "lines and sentences kept", test_lines_and_sentences_kept);
    CU_add_test(suite, "html keeps markup", test_html_keeps_markup);
    CU_add_test(suite, "alternatives listed", test_alternatives_listed);
    CU_add_test(suite, "number fields checked", test_number_fields_checked);
    CU_add_test(suite, "parser names field ranges", test_parse_names_ranges);
    CU_add_test(suite, "v1 reply shape", test_v1_reply_shape);
    CU_add_test(suite, "empty hypothesis ranks last", test_empty_hypothesis_last);
    CU_add_test(suite, "v1 limits are 400", test_v1_limits_400);
    CU_add_test(suite, "sentence token limit is 400", test_sentence_token_limit);
    CU_add_test(suite, "api_key hook statuses", test_api_key_hook);
    CU_add_test(suite, "X-Request-Id header", test_request_id_header);
    CU_add_test(suite, "body one byte at a time", test_body_one_byte_at_a_time);
    CU_add_test(suite, "queued requests share a call", test_queued_requests_share_call);
    CU_add_test(suite, "batch groups by pair and beam", test_batch_groups_by_pair);
    CU_add_test(suite, "batch wait joins a late request", test_batch_wait_joins_late_request);
    CU_add_test(suite, "timeout is 504 and frees the thread", test_timeout_504_frees_thread);
    CU_add_test(suite, "timeout answers before batch ends",
                test_timeout_answers_before_batch_ends);
    CU_add_test(suite, "queued deadline is 504 on time", test_queued_deadline_504_on_time);
    CU_add_test(suite, "batch wait ends at deadline", test_batch_wait_ends_at_deadline);
    CU_add_test(suite, "expiry races with pops", test_expiry_races_with_pops);
    CU_add_test(suite, "several language pairs", test_several_pairs);
    CU_add_test(suite, "detectedLanguage for auto source", test_detected_language_for_auto);
    CU_add_test(suite, "CORS headers only with cors", test_cors_headers);
    CU_add_test(suite, "max connections", test_max_connections);
    CU_add_test(suite, "stop at the connection limit", test_stop_at_connection_limit);
    CU_add_test(suite, "stop while clients connect", test_stop_while_connecting);
    CU_add_test(suite, "accept at the descriptor limit", test_accept_at_descriptor_limit);
    CU_add_test(suite, "OpenAPI paths answer", test_openapi_paths_answer);
    CU_add_test(suite, "OpenAPI documents access", test_openapi_documents_access);
    CU_add_test(suite, "OpenAPI matches v1 reply", test_openapi_matches_v1_reply);
    CU_add_test(suite, "metrics count requests", test_metrics_count_requests);
    CU_add_test(suite, "metrics HEAD and POST", test_metrics_methods);
    CU_add_test(suite, "page files served", test_page_files_served);
    CU_add_test(suite, "page HEAD", test_page_head);
    CU_add_test(suite, "page ETag gives 304", test_page_etag_304);
    CU_add_test(suite, "page methods and paths", test_page_methods_and_paths);
    CU_add_test(suite, "page counted in metrics", test_page_in_metrics);
    return test_run_all();
}
