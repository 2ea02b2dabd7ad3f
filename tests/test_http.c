/* Tests of the HTTP daemon over real TCP sockets on 127.0.0.1.
 *
 * The server runs with a test double for the translate callback that
 * upper-cases ASCII, so these tests cover the daemon layer only, not a
 * model. The double blocks on the text "WAIT" until the test opens a gate
 * (at most GATE_TIMEOUT_SECONDS), which keeps translate threads busy on
 * demand. The client below speaks just enough HTTP/1.1 for the tests: one
 * request per connection ("Connection: close"), read to EOF, 5 s socket
 * timeouts, responses up to 1 MiB. Tests that need their own server
 * configuration start one on a free port and stop it before returning.
 */
#include "http.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SOCKET_TIMEOUT_SECONDS 5
#define MAX_RESPONSE_BYTES (1024 * 1024)
#define TEST_MAX_BODY 4096
#define TEST_MAX_TEXTS 8
#define TEST_MAX_CHARS 1000
#define GATE_TIMEOUT_SECONDS 10 /* a blocked callback gives up after this */
#define WAIT_TIMEOUT_MS 5000    /* how long a test waits for the server to reach a state */
#define HEALTH_MAX_MS 500       /* /health while every translate thread is busy */

/* ---- translate test double ---- */

typedef struct {
    atomic_int calls;
    atomic_int waiting;    /* calls blocked at the gate now */
    atomic_int gone_calls; /* calls that saw a text starting with "GONE" */
    atomic_int sentences;  /* sentences over all calls */
    atomic_int largest_call; /* most sentences in one call */
    atomic_int stopped;    /* sentences ended by the stop callback */
    pthread_mutex_t mutex;
    pthread_cond_t gate_changed;
    int gate_open;
} double_state;

/* Blocks while the gate is closed, for at most GATE_TIMEOUT_SECONDS, or
 * until stop(stop_ctx, i) fires. Returns nonzero when stopped. */
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
        stopped = stop(stop_ctx, i);
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

/* Translates each sentence into n_best hypotheses of fake_translation,
 * scored -(k + 1). Blocks at the gate on "WAIT" (and marks the sentence
 * stopped when the stop callback fires there), rejects the input (-2) on
 * "REJECT", fails the call (-1) on "FAIL" and leaves no hypotheses without
 * failing on "NO OUTPUT". */
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

        if (strncmp(s->text, "GONE", 4) == 0)
            atomic_fetch_add(&state->gone_calls, 1);
        if (strcmp(s->text, "WAIT") == 0 && wait_at_gate(state, stop, stop_ctx, i)) {
            atomic_fetch_add(&state->stopped, 1);
            s->stopped = 1;
            continue;
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
            s->hyps[k].text = fake_translation(s->text, pair, (size_t)k);
            if (!s->hyps[k].text)
                return -1;
            s->hyps[k].score = -(float)(k + 1);
            s->count = (size_t)k + 1;
        }
    }
    return 0;
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
        .pairs = en_de,
        .pair_count = 1,
        .translate = upper_case_translate,
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

/* ---- minimal HTTP/1.1 client ---- */

typedef struct {
    int status;       /* -1 when no valid status line arrived */
    char *body;       /* NUL-terminated */
    size_t body_len;
    char content_type[128];
    char retry_after[16];
} http_response;

static void response_free(http_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int connect_to(const char *address, unsigned short to_port)
{
    struct sockaddr_storage storage;
    socklen_t len;
    struct timeval timeout = {SOCKET_TIMEOUT_SECONDS, 0};
    int family = strchr(address, ':') ? AF_INET6 : AF_INET;
    int fd;

    memset(&storage, 0, sizeof(storage));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&storage;

        a->sin_family = AF_INET;
        a->sin_port = htons(to_port);
        inet_pton(AF_INET, address, &a->sin_addr);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&storage;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons(to_port);
        inet_pton(AF_INET6, address, &a->sin6_addr);
        len = sizeof(*a);
    }
    fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, (struct sockaddr *)&storage, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);

        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

/* Parses a raw response into r. Returns 0, or -1 when it is not HTTP. */
static int parse_response(char *raw, size_t len, http_response *r)
{
    char *header_end = strstr(raw, "\r\n\r\n");
    char *line, *save = NULL;
    long content_length = -1;

    if (!header_end || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    *header_end = '\0';
    for (line = strtok_r(raw, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (strncasecmp(line, "Content-Type:", 13) == 0)
            snprintf(r->content_type, sizeof(r->content_type), "%s", line + 13 + strspn(line + 13, " "));
        else if (strncasecmp(line, "Retry-After:", 12) == 0)
            snprintf(r->retry_after, sizeof(r->retry_after), "%s", line + 12 + strspn(line + 12, " "));
        else if (strncasecmp(line, "Content-Length:", 15) == 0)
            content_length = strtol(line + 15, NULL, 10);
    }
    r->body_len = len - (size_t)(header_end + 4 - raw);
    if (content_length >= 0 && (size_t)content_length < r->body_len)
        r->body_len = (size_t)content_length;
    r->body = malloc(r->body_len + 1);
    if (!r->body)
        return -1;
    memcpy(r->body, header_end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    return 0;
}

/* Sends raw bytes to address:to_port and reads the response until the
 * server closes. Returns 0, or -1 on a socket error, timeout or garbage. */
static int exchange_at(const char *address, unsigned short to_port, const char *request,
                       size_t request_len, http_response *r)
{
    char *raw = malloc(MAX_RESPONSE_BYTES + 1);
    size_t len = 0;
    int fd, rc = -1;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    if (!raw)
        return -1;
    fd = connect_to(address, to_port);
    if (fd >= 0 && send_all(fd, request, request_len) == 0) {
        for (;;) {
            ssize_t got = recv(fd, raw + len, MAX_RESPONSE_BYTES - len, 0);

            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            len += (size_t)got;
            if (len == MAX_RESPONSE_BYTES)
                break;
        }
        raw[len] = '\0';
        rc = parse_response(raw, len, r);
    }
    if (fd >= 0)
        close(fd);
    free(raw);
    return rc;
}

/* Reads one response whose body has a Content-Length from fd, which stays
 * open. Returns 0, or -1 on a socket error, timeout or garbage. */
static int read_one_response(int fd, http_response *r)
{
    char raw[8192];
    size_t len = 0;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    while (len < sizeof(raw) - 1) {
        ssize_t got = recv(fd, raw + len, sizeof(raw) - 1 - len, 0);
        char *header_end, *length;

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        len += (size_t)got;
        raw[len] = '\0';
        header_end = strstr(raw, "\r\n\r\n");
        length = strcasestr(raw, "\r\nContent-Length:");
        if (header_end && length && length < header_end &&
            len >= (size_t)(header_end + 4 - raw) + strtoul(length + 17, NULL, 10))
            return parse_response(raw, len, r);
    }
    return -1;
}

static int exchange(const char *request, size_t request_len, http_response *r)
{
    return exchange_at("127.0.0.1", port, request, request_len, r);
}

/* Sends a request with the given method, path, content type and body to
 * the server on to_port. */
static int send_request_at(unsigned short to_port, const char *method, const char *path,
                           const char *content_type, const char *body, size_t body_len,
                           http_response *r)
{
    size_t cap = body_len + 512;
    char *request = malloc(cap);
    int head, rc;

    if (!request)
        return -1;
    head = snprintf(request, cap,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    method, path, content_type, body_len);
    memcpy(request + head, body, body_len);
    rc = exchange_at("127.0.0.1", to_port, request, (size_t)head + body_len, r);
    free(request);
    return rc;
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

static int get_path(unsigned short to_port, const char *path, http_response *r)
{
    char request[256];
    int len = snprintf(request, sizeof(request),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);

    return exchange_at("127.0.0.1", to_port, request, (size_t)len, r);
}

/* Returns the "error" string of a JSON error body, or "" (static). */
static const char *error_text(const http_response *r, cJSON **json)
{
    const cJSON *error;

    *json = cJSON_Parse(r->body ? r->body : "");
    error = cJSON_GetObjectItemCaseSensitive(*json, "error");
    return cJSON_IsString(error) ? error->valuestring : "";
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

/* A client that closes its connection while its job waits is never
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
    close(fd);

    set_gate(&double_calls, 1);
    async_post_join(&running);
    CU_ASSERT_TRUE(is_translation(&running.response, "WAIT"));
    response_free(&running.response);

    /* One translate thread takes jobs in order, so this reply comes after
     * the closed client's job was taken off the queue. */
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

/* Starts a second server on ::1 and checks /health. Skips when the host
 * has no IPv6 loopback. */
static void test_ipv6_loopback(void)
{
    const char request[] = "GET /health HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n";
    http_config config = {
        .address = "::1",
        .port = 0,
        .pairs = en_de,
        .pair_count = 1,
        .translate = upper_case_translate,
        .translate_ctx = &double_calls,
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
    http_server_stop(v6);
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
    CU_add_test(suite, "stop after grace period is 503", test_stop_after_grace_503);
    CU_add_test(suite, "client gone while queued is skipped", test_client_gone_while_queued);
    CU_add_test(suite, "start errors are reported", test_start_errors);
    CU_add_test(suite, "IPv6 loopback", test_ipv6_loopback);
    return test_run_all();
}
