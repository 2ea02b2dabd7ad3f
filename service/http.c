/* HTTP translation daemon: libmicrohttpd for the protocol, cJSON for bodies.
 *
 * Threading: an internal polling thread pool of config->threads workers.
 * Translation is CPU-bound and runs inside the request handler, so the pool
 * size caps how many translations run at once. Thread per connection would
 * start a decoder for every open connection and oversubscribe the cores
 * under load. The cost: a connection waits while the worker it was assigned
 * to is busy translating another request.
 *
 * Request flow: the handler routes on the headers, buffers a POST body up
 * to max_body_bytes (dropping the buffer as soon as the limit is passed),
 * parses it, calls the translate callback and replies with JSON. Every
 * reply from the handler, errors included, is application/json. One line
 * per reply goes to stderr with method, path, status and milliseconds,
 * never the body.
 *
 * Limits: libmicrohttpd 0.9.x cannot reply while a body is still arriving,
 * so a chunked body over the limit is read and discarded to its end before
 * the 413 goes out. A Content-Length over the limit gets 413 at once.
 * NOTE: requests that fail HTTP parsing inside libmicrohttpd (bad chunk
 * encoding, headers over its per-connection memory) get its own HTML 400 or
 * 431 and never reach the handler, which cannot change that in 0.9.x.
 * cJSON 1.7 also writes a process-wide error position on every parse. This
 * file never reads it, but the writes race between worker threads.
 */
#include "http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_THREADS 2
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_TEXTS 128
#define IDLE_TIMEOUT_SECONDS 30 /* an idle connection is closed after this */
#define DRAIN_TIMEOUT_MS 5000   /* http_server_stop waits this long for open connections */
#define ERROR_SIZE 512

struct http_server {
    struct MHD_Daemon *daemon;
    http_config config; /* string fields point at the copies below */
    char *address, *source_lang, *target_lang;
    unsigned short port;
    atomic_int started;                 /* 0 while MHD_start_daemon runs */
    char start_error[ERROR_SIZE];       /* last libmicrohttpd message before start */
};

/* State of one request, from its headers to the completion callback. */
typedef struct {
    struct timespec start;
    char *body;
    size_t len, cap;
    int too_large;     /* body passed max_body_bytes and was dropped */
    int out_of_memory; /* the body buffer could not grow */
} request_state;

/* A parsed /translate request. Strings point into json or into owned. */
typedef struct {
    cJSON *json;
    char **owned;
    size_t owned_count;
    const char **texts;
    size_t count;
    int is_list; /* set when q was an array or a repeated form field */
    const char *source, *target; /* NULL when absent */
} translate_request;

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return 1e3 * (double)(now.tv_sec - start->tv_sec) +
           1e-6 * (double)(now.tv_nsec - start->tv_nsec);
}

/* Copies up to size - 1 bytes of s into buf, with non-printable bytes as
 * '?', so that a path cannot break the log line. */
static void printable_copy(const char *s, char *buf, size_t size)
{
    size_t i = 0;

    for (; s && s[i] && i + 1 < size; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[i] = '\0';
}

static void log_request(const char *method, const char *url, unsigned status,
                        const request_state *req)
{
    char method_text[16], path_text[96];

    printable_copy(method, method_text, sizeof(method_text));
    printable_copy(url, path_text, sizeof(path_text));
    fprintf(stderr, "http: %s %s %u %.1f ms\n", method_text, path_text, status,
            elapsed_ms(&req->start));
}

/* ---- replies ---- */

/* Queues text (malloc'd, taken over) as a JSON reply with the given status.
 * When text is NULL because printing the reply ran out of memory, a fixed
 * 500 goes out instead. allow, when not NULL, is the Allow header of a 405. */
static enum MHD_Result send_text(struct MHD_Connection *conn, const request_state *req,
                                 const char *method, const char *url, unsigned status,
                                 char *text, const char *allow)
{
    static const char oom_body[] = "{\"error\":\"out of memory while building the reply\"}";
    struct MHD_Response *response;
    enum MHD_Result rc;

    if (text) {
        response = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
        if (!response)
            free(text);
    } else {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        response = MHD_create_response_from_buffer(sizeof(oom_body) - 1, (void *)oom_body,
                                                   MHD_RESPMEM_PERSISTENT);
    }
    if (!response)
        return MHD_NO;
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
            MHD_YES ||
        (allow && MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    log_request(method, url, status, req);
    return rc;
}

/* Queues {"error": message} with the given status. */
static enum MHD_Result send_error(struct MHD_Connection *conn, const request_state *req,
                                  const char *method, const char *url, unsigned status,
                                  const char *allow, const char *format, ...)
    __attribute__((format(printf, 7, 8)));

static enum MHD_Result send_error(struct MHD_Connection *conn, const request_state *req,
                                  const char *method, const char *url, unsigned status,
                                  const char *allow, const char *format, ...)
{
    char message[ERROR_SIZE];
    cJSON *body = cJSON_CreateObject();
    char *text = NULL;
    va_list ap;

    va_start(ap, format);
    vsnprintf(message, sizeof(message), format, ap);
    va_end(ap);
    if (body && cJSON_AddStringToObject(body, "error", message))
        text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    return send_text(conn, req, method, url, status, text, allow);
}

/* ---- request parsing ---- */

static void translate_request_free(translate_request *tr)
{
    cJSON_Delete(tr->json);
    for (size_t i = 0; i < tr->owned_count; i++)
        free(tr->owned[i]);
    free(tr->owned);
    free(tr->texts);
    memset(tr, 0, sizeof(*tr));
}

/* Reads an optional string field into *value (NULL when absent or null).
 * Returns -1 with a message in err when the field has another type. */
static int optional_string(const cJSON *object, const char *name, const char **value, char *err,
                           size_t err_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);

    *value = NULL;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item) || !item->valuestring) {
        snprintf(err, err_size, "field \"%s\" must be a string", name);
        return -1;
    }
    *value = item->valuestring;
    return 0;
}

/* Parses a JSON body into tr. Returns 0, or -1 with a client error in err
 * (400), or -2 when out of memory. */
static int parse_json_body(const char *body, size_t len, size_t max_texts, translate_request *tr,
                           char *err, size_t err_size)
{
    const char *end = NULL;
    const cJSON *q;

    /* body[len] is '\0', which cJSON needs past the parsed length. */
    tr->json = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!tr->json) {
        size_t at = (end && end >= body && end <= body + len) ? (size_t)(end - body) : 0;

        snprintf(err, err_size, "request body is not valid JSON (error near byte %zu)", at);
        return -1;
    }
    for (const char *p = end; p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            snprintf(err, err_size, "request body has data after the JSON value at byte %zu",
                     (size_t)(p - body));
            return -1;
        }
    }
    if (!cJSON_IsObject(tr->json)) {
        snprintf(err, err_size, "request body must be a JSON object such as {\"q\": \"text\"}");
        return -1;
    }

    q = cJSON_GetObjectItemCaseSensitive(tr->json, "q");
    if (!q) {
        snprintf(err, err_size,
                 "missing field \"q\": send the text as a string or an array of strings");
        return -1;
    }
    if (cJSON_IsString(q) && q->valuestring) {
        tr->texts = malloc(sizeof(*tr->texts));
        if (!tr->texts)
            return -2;
        tr->texts[0] = q->valuestring;
        tr->count = 1;
    } else if (cJSON_IsArray(q)) {
        size_t n = (size_t)cJSON_GetArraySize(q), i = 0;
        const cJSON *item;

        if (n > max_texts) {
            snprintf(err, err_size, "field \"q\" has %zu texts; the maximum is %zu per request",
                     n, max_texts);
            return -1;
        }
        tr->texts = malloc((n ? n : 1) * sizeof(*tr->texts));
        if (!tr->texts)
            return -2;
        cJSON_ArrayForEach(item, q) {
            if (!cJSON_IsString(item) || !item->valuestring) {
                snprintf(err, err_size, "q[%zu] is not a string", i);
                return -1;
            }
            tr->texts[i++] = item->valuestring;
        }
        tr->count = i;
        tr->is_list = 1;
    } else {
        snprintf(err, err_size, "field \"q\" must be a string or an array of strings");
        return -1;
    }

    if (optional_string(tr->json, "source", &tr->source, err, err_size) != 0 ||
        optional_string(tr->json, "target", &tr->target, err, err_size) != 0)
        return -1;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..len) from application/x-www-form-urlencoded into a malloc'd
 * string. Returns NULL with *invalid set on a bad escape or a %00, or with
 * *invalid clear when out of memory. */
static char *form_decode(const char *s, size_t len, int *invalid)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    *invalid = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                *invalid = 1;
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Parses a form body (q repeated for several texts, source, target) into
 * tr. Returns 0, -1 with a client error in err, or -2 when out of memory. */
static int parse_form_body(const char *body, size_t len, size_t max_texts, translate_request *tr,
                           char *err, size_t err_size)
{
    size_t fields = 1, q_count = 0;
    const char *p = body, *end = body + len;

    for (size_t i = 0; i < len; i++)
        fields += body[i] == '&';
    tr->owned = calloc(fields, sizeof(*tr->owned));
    tr->texts = calloc(fields, sizeof(*tr->texts));
    if (!tr->owned || !tr->texts)
        return -2;

    for (;;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t name_len = (size_t)((eq ? eq : stop) - p);
        const char *value = eq ? eq + 1 : stop;
        char *decoded;
        int invalid;

        /* Names are matched undecoded: q, source and target need no escapes. */
        if ((name_len == 1 && p[0] == 'q') || (name_len == 6 && !memcmp(p, "source", 6)) ||
            (name_len == 6 && !memcmp(p, "target", 6))) {
            decoded = form_decode(value, (size_t)(stop - value), &invalid);
            if (!decoded && invalid) {
                snprintf(err, err_size, "form field \"%.*s\" has an invalid %%-escape or %%00",
                         (int)name_len, p);
                return -1;
            }
            if (!decoded)
                return -2;
            tr->owned[tr->owned_count++] = decoded;
            if (p[0] == 'q')
                tr->texts[q_count++] = decoded;
            else if (p[0] == 's')
                tr->source = decoded;
            else
                tr->target = decoded;
        }
        if (!amp)
            break;
        p = amp + 1;
    }

    if (q_count == 0) {
        snprintf(err, err_size, "missing form field \"q\" with the text to translate");
        return -1;
    }
    if (q_count > max_texts) {
        snprintf(err, err_size, "form has %zu \"q\" fields; the maximum is %zu per request",
                 q_count, max_texts);
        return -1;
    }
    tr->count = q_count;
    tr->is_list = q_count > 1;
    return 0;
}

static int is_form_body(struct MHD_Connection *conn)
{
    const char *type =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    static const char form[] = "application/x-www-form-urlencoded";

    return type && strncasecmp(type, form, sizeof(form) - 1) == 0;
}

/* ---- /translate ---- */

/* Builds {"translatedText": ...} from out[0..count). Returns the printed
 * JSON (malloc'd), or NULL when out of memory. */
static char *build_translation_reply(char *const *out, size_t count, int is_list)
{
    cJSON *reply = cJSON_CreateObject();
    cJSON *value = NULL;
    char *text = NULL;

    if (!reply)
        return NULL;
    if (is_list) {
        value = cJSON_AddArrayToObject(reply, "translatedText");
        for (size_t i = 0; value && i < count; i++) {
            cJSON *item = cJSON_CreateString(out[i]);

            if (!item || !cJSON_AddItemToArray(value, item)) {
                cJSON_Delete(item);
                value = NULL;
            }
        }
    } else {
        value = cJSON_AddStringToObject(reply, "translatedText", out[0]);
    }
    if (value)
        text = cJSON_PrintUnformatted(reply);
    cJSON_Delete(reply);
    return text;
}

static int pair_matches(const http_server *srv, const translate_request *tr)
{
    const char *served_source = srv->config.source_lang;
    const char *served_target = srv->config.target_lang;
    int source_ok = !tr->source || !tr->source[0] || strcmp(tr->source, "auto") == 0 ||
                    !served_source || strcmp(tr->source, served_source) == 0;
    int target_ok = !tr->target || !served_target || strcmp(tr->target, served_target) == 0;

    return source_ok && target_ok;
}

/* Handles a fully received POST /translate body. */
static enum MHD_Result handle_translate(http_server *srv, struct MHD_Connection *conn,
                                        request_state *req, const char *method, const char *url)
{
    const http_config *cfg = &srv->config;
    translate_request tr = {0};
    char err[ERROR_SIZE] = "";
    char **out = NULL;
    enum MHD_Result rc;
    int parsed;

    /* Step 1: reject what cannot be parsed. */
    if (req->out_of_memory)
        return send_error(conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                          "out of memory while reading the request body");
    if (req->len == 0)
        return send_error(conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "request body is empty; send {\"q\": \"text\"}");
    if (memchr(req->body, '\0', req->len))
        return send_error(conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "request body contains a NUL byte at byte %zu",
                          (size_t)((char *)memchr(req->body, '\0', req->len) - req->body));

    /* Step 2: parse the JSON or form body. */
    if (is_form_body(conn))
        parsed = parse_form_body(req->body, req->len, cfg->max_texts, &tr, err, sizeof(err));
    else
        parsed = parse_json_body(req->body, req->len, cfg->max_texts, &tr, err, sizeof(err));
    if (parsed != 0) {
        rc = parsed == -2 ? send_error(conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                       NULL, "out of memory while parsing the request")
                          : send_error(conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL, "%s",
                                       err);
        translate_request_free(&tr);
        return rc;
    }

    /* Step 3: check the language pair. */
    if (!pair_matches(srv, &tr)) {
        char source[33], target[33];

        printable_copy(tr.source && tr.source[0] ? tr.source : "auto", source, sizeof(source));
        printable_copy(tr.target ? tr.target : "?", target, sizeof(target));
        rc = send_error(conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                        "language pair %s-%s is not served; this server translates %.32s-%.32s",
                        source, target, cfg->source_lang ? cfg->source_lang : "?",
                        cfg->target_lang ? cfg->target_lang : "?");
        translate_request_free(&tr);
        return rc;
    }

    /* Step 4: translate. An empty q array needs no call. */
    out = calloc(tr.count ? tr.count : 1, sizeof(*out));
    if (!out) {
        translate_request_free(&tr);
        return send_error(conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                          "out of memory before translating");
    }
    if (tr.count > 0 &&
        cfg->translate(cfg->translate_ctx, tr.texts, tr.count, out, err, sizeof(err)) != 0) {
        err[sizeof(err) - 1] = '\0';
        rc = send_error(conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                        "translation failed: %s", err[0] ? err : "no reason given");
    } else {
        size_t missing = tr.count;

        for (size_t i = 0; i < tr.count && missing == tr.count; i++)
            if (!out[i])
                missing = i;
        if (missing < tr.count)
            rc = send_error(conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                            "translation failed: no output for q[%zu]", missing);
        else
            rc = send_text(conn, req, method, url, MHD_HTTP_OK,
                           build_translation_reply(out, tr.count, tr.is_list), NULL);
    }

    /* Step 5: free every output, also after a failure. */
    for (size_t i = 0; i < tr.count; i++)
        free(out[i]);
    free(out);
    translate_request_free(&tr);
    return rc;
}

/* ---- libmicrohttpd callbacks ---- */

/* Appends a body chunk, or drops the body once it passes the limit. */
static void buffer_body(const http_server *srv, request_state *req, const char *data, size_t size)
{
    size_t max = srv->config.max_body_bytes;

    if (req->too_large || req->out_of_memory)
        return;
    if (size > max - req->len) {
        req->too_large = 1;
        free(req->body);
        req->body = NULL;
        req->len = req->cap = 0;
        return;
    }
    if (req->len + size + 1 > req->cap) {
        size_t cap = req->cap ? req->cap : 4096;
        char *grown;

        while (cap < req->len + size + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        grown = realloc(req->body, cap);
        if (!grown) {
            req->out_of_memory = 1;
            return;
        }
        req->body = grown;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, size);
    req->len += size;
    req->body[req->len] = '\0';
}

/* Routes a request once its headers are in. Returns with a reply queued,
 * or with none for a POST /translate whose body is still to come. */
static enum MHD_Result route_headers(http_server *srv, struct MHD_Connection *conn,
                                     request_state *req, const char *url, const char *method)
{
    char method_text[16], path_text[96];

    /* Method and path reach error messages only through these copies. */
    printable_copy(method, method_text, sizeof(method_text));
    printable_copy(url, path_text, sizeof(path_text));

    if (strcmp(url, "/health") == 0) {
        char *text;

        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return send_error(conn, req, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                              "method %s is not allowed on /health; use GET", method_text);
        text = strdup("{\"status\":\"ok\"}");
        return send_text(conn, req, method, url, MHD_HTTP_OK, text, NULL);
    }
    if (strcmp(url, "/translate") == 0) {
        const char *length;

        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return send_error(conn, req, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "POST",
                              "method %s is not allowed on /translate; use POST", method_text);
        length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > srv->config.max_body_bytes)
            return send_error(conn, req, method, url, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                              "request body of %.20s bytes is over the limit of %zu bytes",
                              length, srv->config.max_body_bytes);
        return MHD_YES;
    }
    return send_error(conn, req, method, url, MHD_HTTP_NOT_FOUND, NULL,
                      "no route for %s; use POST /translate or GET /health", path_text);
}

static enum MHD_Result handle_access(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    http_server *srv = cls;
    request_state *req = *con_cls;

    (void)version;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &req->start);
        *con_cls = req;
        return route_headers(srv, conn, req, url, method);
    }
    if (*upload_data_size > 0) {
        buffer_body(srv, req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->too_large)
        return send_error(conn, req, method, url, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                          "request body is over the limit of %zu bytes",
                          srv->config.max_body_bytes);
    return handle_translate(srv, conn, req, method, url);
}

static void free_request(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request_state *req = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* Stores libmicrohttpd's message for http_server_start's error while the
 * daemon starts, and prints it to stderr as one line after that. */
static void log_daemon_message(void *cls, const char *format, va_list ap)
{
    http_server *srv = cls;
    char line[ERROR_SIZE];
    size_t len;

    vsnprintf(line, sizeof(line), format, ap);
    len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (!atomic_load(&srv->started))
        memcpy(srv->start_error, line, len + 1);
    else
        fprintf(stderr, "http: libmicrohttpd: %s\n", line);
}

/* ---- public API ---- */

static void server_free(http_server *srv)
{
    free(srv->address);
    free(srv->source_lang);
    free(srv->target_lang);
    free(srv);
}

static char *copy_or_null(const char *s, int *failed)
{
    char *copy = s ? strdup(s) : NULL;

    if (s && !copy)
        *failed = 1;
    return copy;
}

http_server *http_server_start(const http_config *config, char *err, size_t err_size)
{
    struct sockaddr_in addr4;
    struct sockaddr_in6 addr6;
    struct sockaddr *addr;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    http_server *srv;
    int copy_failed = 0;

    if (!config || !config->address || !config->translate) {
        snprintf(err, err_size, "invalid HTTP configuration: address and translate are required");
        return NULL;
    }

    /* Step 1: parse the listen address. */
    memset(&addr4, 0, sizeof(addr4));
    memset(&addr6, 0, sizeof(addr6));
    if (inet_pton(AF_INET, config->address, &addr4.sin_addr) == 1) {
        addr4.sin_family = AF_INET;
        addr4.sin_port = htons(config->port);
        addr = (struct sockaddr *)&addr4;
    } else if (inet_pton(AF_INET6, config->address, &addr6.sin6_addr) == 1) {
        addr6.sin6_family = AF_INET6;
        addr6.sin6_port = htons(config->port);
        addr = (struct sockaddr *)&addr6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, err_size, "invalid listen address \"%.64s\": expected an IPv4 or IPv6 "
                 "literal such as 127.0.0.1 or ::1", config->address);
        return NULL;
    }

    /* Step 2: copy the configuration and fill in defaults. */
    srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, err_size, "out of memory starting the HTTP server");
        return NULL;
    }
    srv->config = *config;
    srv->address = copy_or_null(config->address, &copy_failed);
    srv->source_lang = copy_or_null(config->source_lang, &copy_failed);
    srv->target_lang = copy_or_null(config->target_lang, &copy_failed);
    if (copy_failed) {
        server_free(srv);
        snprintf(err, err_size, "out of memory starting the HTTP server");
        return NULL;
    }
    srv->config.address = srv->address;
    srv->config.source_lang = srv->source_lang;
    srv->config.target_lang = srv->target_lang;
    if (srv->config.threads == 0)
        srv->config.threads = DEFAULT_THREADS;
    if (srv->config.max_body_bytes == 0)
        srv->config.max_body_bytes = DEFAULT_MAX_BODY;
    if (srv->config.max_body_bytes > SIZE_MAX / 4)
        srv->config.max_body_bytes = SIZE_MAX / 4; /* keeps buffer sizes from overflowing */
    if (srv->config.max_texts == 0)
        srv->config.max_texts = DEFAULT_MAX_TEXTS;

    /* Step 3: start the daemon. The port argument is unused with SOCK_ADDR. */
    srv->daemon = MHD_start_daemon(
        flags, config->port, NULL, NULL, handle_access, srv, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_THREAD_POOL_SIZE, srv->config.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_SECONDS, MHD_OPTION_NOTIFY_COMPLETED, free_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, log_daemon_message, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, err_size, "cannot start HTTP server on %.64s port %u: %s", config->address,
                 config->port, srv->start_error[0] ? srv->start_error : "libmicrohttpd failed");
        server_free(srv);
        return NULL;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : config->port;
    atomic_store(&srv->started, 1);
    return srv;
}

unsigned short http_server_port(const http_server *server)
{
    return server->port;
}

void http_server_stop(http_server *server)
{
    MHD_socket listen_fd;
    struct timespec start, pause = {0, 10 * 1000 * 1000};

    if (!server)
        return;

    /* Stop accepting, then let open connections finish for a bounded time. */
    listen_fd = MHD_quiesce_daemon(server->daemon);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

        if (!info || info->num_connections == 0 || elapsed_ms(&start) > DRAIN_TIMEOUT_MS)
            break;
        nanosleep(&pause, NULL);
    }
    MHD_stop_daemon(server->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    server_free(server);
}
