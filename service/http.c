/* HTTP translation daemon: libmicrohttpd for the protocol, cJSON for bodies.
 *
 * Threading: libmicrohttpd's internal thread pool of config->threads HTTP
 * threads reads requests and writes replies, and never translates. A
 * complete, valid POST /translate becomes a job on a bounded FIFO
 * (job_queue.h), and its connection is suspended. config->translate_threads
 * translate threads pop jobs, run the translate callback, store the reply
 * in the job and resume the connection. The HTTP thread that owns the
 * connection then queues the reply. So /health and other cheap routes
 * reply while every translate thread is busy, and the translate pool size
 * caps how many translations run at once. When max_queue jobs are waiting,
 * a new one gets 503 at once.
 *
 * Request flow: the handler routes on the headers, buffers a POST body up
 * to max_body_bytes (dropping the buffer as soon as the limit is passed),
 * parses it (translate_request.h), checks the language pair and the
 * character limit, and queues the job. Every reply from the handler,
 * errors included, is application/json. One line per reply goes to stderr
 * with method, path, status and milliseconds, never the body.
 *
 * Stopping: http_server_stop stops accepting, replies to the requests in
 * progress within a grace period, then closes what is left (see http.h).
 *
 * Limits: libmicrohttpd 0.9.x cannot reply while a body is still arriving,
 * so a chunked body over the limit is read and discarded to its end before
 * the 413 goes out. A Content-Length over the limit gets 413 at once.
 * libmicrohttpd does not notice a client that disconnects while its
 * connection is suspended, so a translate thread checks the socket before
 * it starts a job and skips the job when the client has closed it.
 * NOTE: requests that fail HTTP parsing inside libmicrohttpd (bad chunk
 * encoding, headers over its per-connection memory) get its own HTML 400 or
 * 431 and never reach the handler, which cannot change that in 0.9.x.
 */
#include "http.h"
#include "job_queue.h"
#include "translate_request.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_THREADS 2
#define DEFAULT_TRANSLATE_THREADS 2
#define DEFAULT_MAX_QUEUE 64
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_TEXTS 128
#define DEFAULT_MAX_CHARS 20000
#define DEFAULT_GRACE_SECONDS 30
#define IDLE_TIMEOUT_SECONDS 30 /* an idle connection is closed after this */
#define FLUSH_TIMEOUT_MS 1000   /* after the grace period, time to send the last replies */
#define RETRY_AFTER_SECONDS "1" /* Retry-After of a 503 */
#define ERROR_SIZE 512

struct http_server {
    struct MHD_Daemon *daemon;
    http_config config; /* string fields point at the copies below */
    char *address, *source_lang, *target_lang;
    char *languages_json; /* the reply of GET /languages */
    unsigned short port;
    atomic_int started;                 /* 0 while MHD_start_daemon runs */
    char start_error[ERROR_SIZE];       /* last libmicrohttpd message before start */

    job_queue queue;
    pthread_t *workers; /* translate threads */
    unsigned worker_count;

    pthread_mutex_t mutex;   /* guards active_requests */
    pthread_cond_t idle;     /* signalled when active_requests drops to 0 */
    size_t active_requests;  /* from the first handler call to the completion callback */
    atomic_int stopping;     /* set by http_server_stop */
    int queue_ready, sync_ready; /* which of the above server_free must destroy */
};

/* Where a request is. The translate thread writes reply and status, then
 * stores PHASE_DONE or PHASE_CLIENT_GONE and resumes the connection. The
 * HTTP thread reads them only after the resume, so only phase is atomic. */
typedef enum {
    PHASE_READING,     /* headers routed, body arriving */
    PHASE_QUEUED,      /* job queued or running, connection suspended */
    PHASE_DONE,        /* reply and status are set */
    PHASE_CLIENT_GONE, /* the client closed the connection before the job started */
} request_phase;

/* State of one request, from its headers to the completion callback. It is
 * also the translation job: node links it into the queue. */
typedef struct {
    job_queue_node node;
    struct timespec start;
    char *body;
    size_t len, cap;
    int too_large;     /* body passed max_body_bytes and was dropped */
    int out_of_memory; /* the body buffer could not grow */
    int is_get_route;  /* GET or HEAD on /health, /ready or /languages */
    translate_body_format format;
    translate_request tr;
    struct MHD_Connection *conn; /* set when the job is queued */
    int fd;                      /* the connection's socket, or -1 */
    atomic_int phase;            /* request_phase */
    unsigned status;
    char *reply; /* JSON text, malloc'd; NULL means out of memory */
} request_state;

static request_state *job_of(job_queue_node *node)
{
    return (request_state *)((char *)node - offsetof(request_state, node));
}

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

static void log_request(const char *method, const char *url, const char *outcome,
                        const request_state *req)
{
    char method_text[16], path_text[96];

    printable_copy(method, method_text, sizeof(method_text));
    printable_copy(url, path_text, sizeof(path_text));
    fprintf(stderr, "http: %s %s %s %.1f ms\n", method_text, path_text, outcome,
            elapsed_ms(&req->start));
}

/* ---- replies ---- */

/* Returns {"error": message} as malloc'd JSON text, or NULL when out of
 * memory. */
static char *error_json(const char *format, ...) __attribute__((format(printf, 1, 2)));

static char *error_json(const char *format, ...)
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
    return text;
}

/* Queues text (malloc'd, taken over) as a JSON reply with the given status
 * and returns the status sent. When text is NULL because printing the reply
 * ran out of memory, a fixed 500 goes out instead. allow, when not NULL, is
 * the Allow header of a 405. A 503 carries Retry-After, and every reply
 * sent while the server stops carries "Connection: close" so that
 * keep-alive clients go elsewhere. Returns 0 when the reply could not be
 * queued. */
static unsigned queue_json(http_server *srv, struct MHD_Connection *conn, unsigned status,
                           char *text, const char *allow)
{
    static const char oom_body[] = "{\"error\":\"out of memory while building the reply\"}";
    struct MHD_Response *response;
    enum MHD_Result rc;
    int header_failed;

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
        return 0;
    header_failed =
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
            MHD_YES ||
        (allow && MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES) ||
        (status == MHD_HTTP_SERVICE_UNAVAILABLE &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_SECONDS) !=
             MHD_YES) ||
        (atomic_load(&srv->stopping) &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES);
    rc = header_failed ? MHD_NO : MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return rc == MHD_YES ? status : 0;
}

/* Queues a JSON reply as queue_json does and logs it. */
static enum MHD_Result send_text(http_server *srv, struct MHD_Connection *conn,
                                 const request_state *req, const char *method, const char *url,
                                 unsigned status, char *text, const char *allow)
{
    char outcome[16];

    status = queue_json(srv, conn, status, text, allow);
    if (status == 0)
        return MHD_NO;
    snprintf(outcome, sizeof(outcome), "%u", status);
    log_request(method, url, outcome, req);
    return MHD_YES;
}

/* Queues {"error": message} with the given status. */
static enum MHD_Result send_error(http_server *srv, struct MHD_Connection *conn,
                                  const request_state *req, const char *method, const char *url,
                                  unsigned status, const char *allow, const char *format, ...)
    __attribute__((format(printf, 8, 9)));

static enum MHD_Result send_error(http_server *srv, struct MHD_Connection *conn,
                                  const request_state *req, const char *method, const char *url,
                                  unsigned status, const char *allow, const char *format, ...)
{
    char message[ERROR_SIZE];
    va_list ap;

    va_start(ap, format);
    vsnprintf(message, sizeof(message), format, ap);
    va_end(ap);
    return send_text(srv, conn, req, method, url, status, error_json("%s", message), allow);
}

/* ---- GET routes ---- */

static const char *language_name(const char *code)
{
    static const char *const names[][2] = {
        {"en", "English"}, {"de", "German"}, {"fr", "French"}, {"cs", "Czech"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(code, names[i][0]) == 0)
            return names[i][1];
    return code;
}

/* Builds the reply of GET /languages in LibreTranslate's shape: the served
 * source language with its targets. The list is empty when no source
 * language is configured, and so are the targets without a target
 * language. Returns malloc'd JSON text, or NULL when out of memory. */
static char *build_languages_json(const http_config *cfg)
{
    cJSON *list = cJSON_CreateArray();
    cJSON *entry = NULL, *targets = NULL;
    char *text = NULL;

    if (!list)
        return NULL;
    if (cfg->source_lang) {
        entry = cJSON_CreateObject();
        if (!entry || !cJSON_AddItemToArray(list, entry)) {
            cJSON_Delete(entry);
            goto cleanup;
        }
        if (!cJSON_AddStringToObject(entry, "code", cfg->source_lang) ||
            !cJSON_AddStringToObject(entry, "name", language_name(cfg->source_lang)))
            goto cleanup;
        targets = cJSON_AddArrayToObject(entry, "targets");
        if (!targets || (cfg->target_lang &&
                         !cJSON_AddItemToArray(targets, cJSON_CreateString(cfg->target_lang))))
            goto cleanup;
    }
    text = cJSON_PrintUnformatted(list);
cleanup:
    cJSON_Delete(list);
    return text;
}

/* Replies to GET or HEAD on /health, /ready or /languages. /ready turns to
 * 503 once the server stops, so that load balancers stop sending requests.
 * It needs no other check because the daemon starts after the model has
 * loaded. */
static enum MHD_Result reply_get_route(http_server *srv, struct MHD_Connection *conn,
                                       const request_state *req, const char *method,
                                       const char *url)
{
    if (strcmp(url, "/health") == 0)
        return send_text(srv, conn, req, method, url, MHD_HTTP_OK,
                         strdup("{\"status\":\"ok\"}"), NULL);
    if (strcmp(url, "/languages") == 0)
        return send_text(srv, conn, req, method, url, MHD_HTTP_OK, strdup(srv->languages_json),
                         NULL);
    if (atomic_load(&srv->stopping))
        return send_text(srv, conn, req, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
                         strdup("{\"status\":\"stopping\"}"), NULL);
    return send_text(srv, conn, req, method, url, MHD_HTTP_OK, strdup("{\"status\":\"ready\"}"),
                     NULL);
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

/* Runs the translate callback on the job in req and stores the reply and
 * its status in req. Runs on a translate thread. */
static void run_job(http_server *srv, request_state *req)
{
    const http_config *cfg = &srv->config;
    const translate_request *tr = &req->tr;
    char err[ERROR_SIZE] = "";
    char **out = calloc(tr->count, sizeof(*out));
    size_t missing = tr->count;
    int rc;

    if (!out) {
        req->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        req->reply = error_json("out of memory before translating");
        return;
    }
    rc = cfg->translate(cfg->translate_ctx, tr->texts, tr->count, out, err, sizeof(err));
    err[sizeof(err) - 1] = '\0';
    for (size_t i = 0; rc == 0 && i < tr->count && missing == tr->count; i++)
        if (!out[i])
            missing = i;

    if (rc == -2) {
        req->status = MHD_HTTP_BAD_REQUEST;
        req->reply = error_json("%s", err[0] ? err : "the translator rejected the input");
    } else if (rc != 0) {
        req->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        req->reply = error_json("translation failed: %s", err[0] ? err : "no reason given");
    } else if (missing < tr->count) {
        req->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        req->reply = error_json("translation failed: no output for q[%zu]", missing);
    } else {
        req->status = MHD_HTTP_OK;
        req->reply = build_translation_reply(out, tr->count, tr->is_list);
    }

    /* Free every output, also after a failure. */
    for (size_t i = 0; i < tr->count; i++)
        free(out[i]);
    free(out);
}

/* Returns nonzero when the client has closed or reset the connection. A
 * client that only shut down its sending side (a half-close) counts as gone
 * too. HTTP would let it still read the reply, but clients rarely do that. */
static int client_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

    if (fd < 0 || poll(&p, 1, 0) <= 0)
        return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Body of a translate thread: runs jobs until the queue closes.
 * NOTE: one job per callback call. job_queue_pop can return several jobs,
 * so dynamic batching only needs to join their texts into one call. */
static void *translate_thread(void *arg)
{
    http_server *srv = arg;
    job_queue_node *node;

    while (job_queue_pop(&srv->queue, &node, 1) == 1) {
        request_state *req = job_of(node);
        struct MHD_Connection *conn = req->conn;

        if (client_closed(req->fd)) {
            atomic_store(&req->phase, PHASE_CLIENT_GONE);
        } else {
            run_job(srv, req);
            atomic_store(&req->phase, PHASE_DONE);
        }
        /* req may be freed as soon as the connection resumes. */
        MHD_resume_connection(conn);
    }
    return NULL;
}

/* Queues req as a translation job and suspends its connection until a
 * translate thread resumes it with the reply. When the queue is full or
 * closed, the connection resumes at once with 503. */
static enum MHD_Result queue_job(http_server *srv, struct MHD_Connection *conn,
                                 request_state *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int rc;

    req->conn = conn;
    req->fd = info ? info->connect_fd : -1;
    atomic_store(&req->phase, PHASE_QUEUED);

    /* Suspend before pushing: a translate thread may resume the connection
     * as soon as the job is on the queue, and libmicrohttpd leaves resuming
     * a connection that is not suspended undefined. */
    MHD_suspend_connection(conn);
    rc = job_queue_push(&srv->queue, &req->node);
    if (rc == 0)
        return MHD_YES;
    req->status = MHD_HTTP_SERVICE_UNAVAILABLE;
    if (rc == JOB_QUEUE_FULL)
        req->reply = error_json("server is overloaded: %zu translation requests are already "
                                "waiting; retry later",
                                srv->config.max_queue);
    else
        req->reply = error_json("server is shutting down; retry later");
    atomic_store(&req->phase, PHASE_DONE);
    MHD_resume_connection(conn);
    return MHD_YES;
}

/* Checks a fully received POST /translate body and queues its translation,
 * or replies at once with an error or an empty result. */
static enum MHD_Result handle_translate(http_server *srv, struct MHD_Connection *conn,
                                        request_state *req, const char *method, const char *url)
{
    const http_config *cfg = &srv->config;
    translate_request *tr = &req->tr;
    char err[ERROR_SIZE] = "";
    size_t chars;
    int parsed;

    /* Step 1: reject what cannot be parsed. */
    if (req->out_of_memory)
        return send_error(srv, conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                          "out of memory while reading the request body");
    if (req->len == 0)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "request body is empty; send {\"q\": \"text\"}");

    /* Step 2: parse the JSON or form body. */
    parsed = translate_request_parse(tr, req->format, conn, req->body, req->len, cfg->max_texts,
                                     err, sizeof(err));
    if (parsed == -2)
        return send_error(srv, conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                          "out of memory while parsing the request");
    if (parsed != 0)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);

    /* Step 3: check the language pair. */
    if (!pair_matches(srv, tr)) {
        char source[33], target[33];

        printable_copy(tr->source && tr->source[0] ? tr->source : "auto", source, sizeof(source));
        printable_copy(tr->target ? tr->target : "?", target, sizeof(target));
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "language pair %s-%s is not served; this server translates "
                          "%.32s-%.32s",
                          source, target, cfg->source_lang ? cfg->source_lang : "?",
                          cfg->target_lang ? cfg->target_lang : "?");
    }

    /* Step 4: check the size of the input. */
    chars = translate_request_chars(tr);
    if (chars > cfg->max_chars)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "q has %zu characters; this server accepts at most %zu per request",
                          chars, cfg->max_chars);

    /* Step 5: an empty q array needs no translation. */
    if (tr->count == 0)
        return send_text(srv, conn, req, method, url, MHD_HTTP_OK,
                         build_translation_reply(NULL, 0, tr->is_list), NULL);

    /* Step 6: queue the job. The texts live in tr, so the raw body can go. */
    free(req->body);
    req->body = NULL;
    req->len = req->cap = 0;
    return queue_job(srv, conn, req);
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

/* Routes a request once its headers are in. Returns with an error reply
 * queued, or with none for a valid route. Valid routes reply on a later
 * call: libmicrohttpd 0.9.75 closes the connection after a reply queued
 * in this first call, which would end keep-alive connections. */
static enum MHD_Result route_headers(http_server *srv, struct MHD_Connection *conn,
                                     request_state *req, const char *url, const char *method)
{
    char method_text[16], path_text[96];
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

    /* Method and path reach error messages only through these copies. */
    printable_copy(method, method_text, sizeof(method_text));
    printable_copy(url, path_text, sizeof(path_text));

    if (strcmp(url, "/health") == 0 || strcmp(url, "/ready") == 0 ||
        strcmp(url, "/languages") == 0) {
        if (!is_get)
            return send_error(srv, conn, req, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "GET, HEAD", "method %s is not allowed on %s; use GET",
                              method_text, path_text);
        req->is_get_route = 1;
        return MHD_YES;
    }
    if (strcmp(url, "/translate") == 0) {
        const char *type, *length;
        char type_text[64];

        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return send_error(srv, conn, req, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "POST",
                              "method %s is not allowed on /translate; use POST", method_text);
        if (atomic_load(&srv->stopping))
            return send_error(srv, conn, req, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                              "server is shutting down; retry later");
        type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (translate_request_format(type, &req->format) != 0) {
            printable_copy(type, type_text, sizeof(type_text));
            return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                              "Content-Type %s is not supported; send application/json, "
                              "application/x-www-form-urlencoded or multipart/form-data",
                              type_text);
        }
        length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > srv->config.max_body_bytes)
            return send_error(srv, conn, req, method, url, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                              "request body of %.20s bytes is over the limit of %zu bytes",
                              length, srv->config.max_body_bytes);
        return MHD_YES;
    }
    return send_error(srv, conn, req, method, url, MHD_HTTP_NOT_FOUND, NULL,
                      "no route for %s; use POST /translate, GET /languages, GET /health or "
                      "GET /ready",
                      path_text);
}

static void request_started(http_server *srv)
{
    pthread_mutex_lock(&srv->mutex);
    srv->active_requests++;
    pthread_mutex_unlock(&srv->mutex);
}

static void request_finished(http_server *srv)
{
    pthread_mutex_lock(&srv->mutex);
    if (--srv->active_requests == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->mutex);
}

static enum MHD_Result handle_access(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    http_server *srv = cls;
    request_state *req = *con_cls;
    char *reply;

    (void)version;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->fd = -1;
        atomic_init(&req->phase, PHASE_READING);
        clock_gettime(CLOCK_MONOTONIC, &req->start);
        *con_cls = req;
        request_started(srv);
        return route_headers(srv, conn, req, url, method);
    }
    if (*upload_data_size > 0) {
        buffer_body(srv, req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    switch (atomic_load(&req->phase)) {
    case PHASE_READING:
        if (req->is_get_route)
            return reply_get_route(srv, conn, req, method, url);
        if (req->too_large)
            return send_error(srv, conn, req, method, url, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                              "request body is over the limit of %zu bytes",
                              srv->config.max_body_bytes);
        return handle_translate(srv, conn, req, method, url);
    case PHASE_DONE:
        reply = req->reply;
        req->reply = NULL;
        return send_text(srv, conn, req, method, url, req->status, reply, NULL);
    case PHASE_CLIENT_GONE:
        /* The reply only lets libmicrohttpd finish the request quietly;
         * MHD_NO would make it log an internal error. */
        log_request(method, url, "skipped: client closed the connection while queued", req);
        return queue_json(srv, conn, MHD_HTTP_BAD_REQUEST,
                          error_json("connection closed before the translation started"),
                          NULL)
                   ? MHD_YES
                   : MHD_NO;
    default:
        return MHD_YES; /* queued: libmicrohttpd calls again after the resume */
    }
}

/* Completion callback: frees the request. libmicrohttpd never calls it for
 * a suspended connection, so a queued or running job is never freed under
 * its translate thread. */
static void free_request(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    request_state *req = *con_cls;

    (void)conn;
    (void)toe;
    if (!req)
        return;
    translate_request_free(&req->tr);
    free(req->reply);
    free(req->body);
    free(req);
    *con_cls = NULL;
    request_finished(srv);
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

/* Closes the queue and joins the translate threads. Each finishes the job
 * it is running first. */
static void stop_translate_threads(http_server *srv)
{
    job_queue_close(&srv->queue);
    for (unsigned i = 0; i < srv->worker_count; i++)
        pthread_join(srv->workers[i], NULL);
    srv->worker_count = 0;
}

static void server_free(http_server *srv)
{
    if (srv->queue_ready)
        job_queue_destroy(&srv->queue);
    if (srv->sync_ready) {
        pthread_cond_destroy(&srv->idle);
        pthread_mutex_destroy(&srv->mutex);
    }
    free(srv->workers);
    free(srv->languages_json);
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


/* Creates the mutex and the condition variable that http_server_stop waits
 * on, which measures its timeouts on CLOCK_MONOTONIC. Returns 0 or -1. */
static int init_sync(http_server *srv)
{
    pthread_condattr_t attr;
    int failed;

    if (pthread_condattr_init(&attr) != 0)
        return -1;
    failed = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
             pthread_cond_init(&srv->idle, &attr) != 0;
    pthread_condattr_destroy(&attr);
    if (failed)
        return -1;
    if (pthread_mutex_init(&srv->mutex, NULL) != 0) {
        pthread_cond_destroy(&srv->idle);
        return -1;
    }
    return 0;
}

/* Fills in the defaults of the fields left 0. */
static void apply_defaults(http_config *cfg)
{
    if (cfg->threads == 0)
        cfg->threads = DEFAULT_THREADS;
    if (cfg->translate_threads == 0)
        cfg->translate_threads = DEFAULT_TRANSLATE_THREADS;
    if (cfg->max_queue == 0)
        cfg->max_queue = DEFAULT_MAX_QUEUE;
    if (cfg->max_body_bytes == 0)
        cfg->max_body_bytes = DEFAULT_MAX_BODY;
    if (cfg->max_body_bytes > SIZE_MAX / 4)
        cfg->max_body_bytes = SIZE_MAX / 4; /* keeps buffer sizes from overflowing */
    if (cfg->max_texts == 0)
        cfg->max_texts = DEFAULT_MAX_TEXTS;
    if (cfg->max_chars == 0)
        cfg->max_chars = DEFAULT_MAX_CHARS;
    if (cfg->grace_seconds == 0)
        cfg->grace_seconds = DEFAULT_GRACE_SECONDS;
}

http_server *http_server_start(const http_config *config, char *err, size_t err_size)
{
    struct sockaddr_in addr4;
    struct sockaddr_in6 addr6;
    struct sockaddr *addr;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
    srv->config.address = srv->address;
    srv->config.source_lang = srv->source_lang;
    srv->config.target_lang = srv->target_lang;
    apply_defaults(&srv->config);
    srv->languages_json = build_languages_json(&srv->config);
    srv->workers = calloc(srv->config.translate_threads, sizeof(*srv->workers));
    if (copy_failed || !srv->languages_json || !srv->workers) {
        server_free(srv);
        snprintf(err, err_size, "out of memory starting the HTTP server");
        return NULL;
    }

    /* Step 3: create the job queue and start the translate threads. */
    srv->sync_ready = init_sync(srv) == 0;
    srv->queue_ready = srv->sync_ready && job_queue_init(&srv->queue, srv->config.max_queue) == 0;
    if (!srv->queue_ready) {
        server_free(srv);
        snprintf(err, err_size, "cannot create the locks of the HTTP server");
        return NULL;
    }
    while (srv->worker_count < srv->config.translate_threads) {
        int rc = pthread_create(&srv->workers[srv->worker_count], NULL, translate_thread, srv);

        if (rc != 0) {
            snprintf(err, err_size, "cannot start translate thread %u of %u: %s",
                     srv->worker_count + 1, srv->config.translate_threads, strerror(rc));
            stop_translate_threads(srv);
            server_free(srv);
            return NULL;
        }
        srv->worker_count++;
    }

    /* Step 4: start the daemon. The port argument is unused with SOCK_ADDR. */
    srv->daemon = MHD_start_daemon(
        flags, config->port, NULL, NULL, handle_access, srv, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_THREAD_POOL_SIZE, srv->config.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_SECONDS, MHD_OPTION_NOTIFY_COMPLETED, free_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, log_daemon_message, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, err_size, "cannot start HTTP server on %.64s port %u: %s", config->address,
                 config->port, srv->start_error[0] ? srv->start_error : "libmicrohttpd failed");
        stop_translate_threads(srv);
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

size_t http_server_queue_length(http_server *server)
{
    return job_queue_length(&server->queue);
}

/* Waits until no request is in progress or timeout_ms has passed. Returns
 * the number of requests still in progress. */
static size_t wait_until_idle(http_server *srv, long long timeout_ms)
{
    struct timespec deadline;
    size_t active;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->mutex);
    while (srv->active_requests > 0 &&
           pthread_cond_timedwait(&srv->idle, &srv->mutex, &deadline) != ETIMEDOUT)
        ;
    active = srv->active_requests;
    pthread_mutex_unlock(&srv->mutex);
    return active;
}

/* Closes the queue and replies 503 to every job still waiting. Returns how
 * many there were. */
static size_t reject_waiting_jobs(http_server *srv)
{
    job_queue_node *node = job_queue_close(&srv->queue);
    size_t count = 0;

    while (node) {
        job_queue_node *next = node->next;
        request_state *req = job_of(node);
        struct MHD_Connection *conn = req->conn;

        req->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        req->reply = error_json("server stopped before translating this request; retry later");
        atomic_store(&req->phase, PHASE_DONE);
        MHD_resume_connection(conn); /* req may be freed from here on */
        node = next;
        count++;
    }
    return count;
}

void http_server_stop(http_server *server)
{
    MHD_socket listen_fd;
    size_t active, rejected;

    if (!server)
        return;

    /* Step 1: stop accepting. Requests that arrive on open connections from
     * now on get 503 and "Connection: close". */
    atomic_store(&server->stopping, 1);
    listen_fd = MHD_quiesce_daemon(server->daemon);

    /* Step 2: let every request in progress, queued ones included, get its
     * reply within the grace period. */
    active = wait_until_idle(server, 1000LL * server->config.grace_seconds);

    /* Step 3: reply 503 to the jobs still queued, and wait for the
     * running ones, because the translate callback cannot be interrupted.
     * Afterwards no connection is suspended, as MHD_stop_daemon requires. */
    rejected = reject_waiting_jobs(server);
    stop_translate_threads(server);
    if (active > 0) {
        fprintf(stderr, "http: grace period of %u s over with %zu requests in progress; %zu "
                        "queued translations got 503\n",
                server->config.grace_seconds, active, rejected);
        wait_until_idle(server, FLUSH_TIMEOUT_MS);
    }

    /* Step 4: close the remaining connections. */
    MHD_stop_daemon(server->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    server_free(server);
}
