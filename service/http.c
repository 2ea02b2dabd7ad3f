/* HTTP translation daemon: libmicrohttpd for the protocol, cJSON for bodies.
 *
 * Threading: the daemon owns the listening socket and one accept thread,
 * which hands each new connection to libmicrohttpd (MHD_add_connection)
 * while fewer than max_connections are open. libmicrohttpd's internal
 * thread pool of config->threads HTTP threads reads requests and writes
 * replies, and never translates. A complete, valid translation request is
 * split into sentences (translate_job.h) and becomes a job on a bounded
 * FIFO (job_queue.h), weighted by its sentence count, and its connection
 * is suspended.
 * config->translate_threads translate threads take jobs off the queue, run
 * the translate callback, store the reply in each job and resume its
 * connection. The HTTP thread that owns the connection then queues the
 * reply. So /health and other cheap routes reply while every translate
 * thread is busy, and the translate pool size caps how many translations
 * run at once. When max_queue jobs are waiting, a new one gets 503 at once.
 *
 * Batching: a translate thread takes every waiting job up to
 * max_batch_sentences sentences in all. When fewer are waiting, it waits
 * up to batch_wait_ms for more. It then translates the sentences of all
 * jobs with the same language pair and beam width in one callback call.
 * The callback's results do not depend on which sentences share a call
 * (see beam.h), so replies equal those of unbatched translation.
 *
 * Deadlines: every request must get its reply within timeout_ms of its
 * arrival. An expiry thread takes jobs off the queue when their deadline
 * passes while they wait and replies 504, so a request behind busy
 * translate threads does not wait for one of them to take it. A job is
 * owned by whichever thread removed it from the queue under the queue's
 * mutex (job_queue.h), so it gets exactly one reply. A translate thread
 * waiting for more jobs to batch stops waiting at the first deadline among
 * the jobs it holds, and replies 504 to the jobs whose deadline has passed
 * by the time it starts them. The callback calls the stop function between
 * decoding steps. That function stops the sentences of a request past its
 * deadline and sends the request its 504 right then, while the rest of the
 * batch carries on.
 *
 * Request flow: the handler routes on the headers, buffers a POST body up
 * to max_body_bytes (dropping the buffer as soon as the limit is passed),
 * parses it (translate_request.h), calls the authorize hook, checks the
 * language pair and the limits, and queues the job. Every reply from the
 * handler is application/json, errors included, except those of
 * GET /metrics and of the page's files, and every reply carries
 * X-Request-Id. One line per reply goes to stderr with
 * the request id, method, path, status, sentence count and milliseconds;
 * request texts are logged only with config->debug. libmicrohttpd's own
 * messages go to stderr too, except those about routine client
 * disconnects, which one summary line a minute at most adds up.
 *
 * Metrics: the daemon owns a registry (metrics.h) that GET /metrics
 * renders. Every queued reply is counted by endpoint and status, and a
 * failed one by its cause as well. A request whose client closed or reset
 * the connection before its reply went out counts as client_gone, and
 * counts only as that when it got no reply at all. Translated
 * sentences and their source tokens (as the translate callback reports
 * them) are counted when a translation request gets its 200.
 *
 * Stopping: http_server_stop closes the listening port to new connections,
 * replies to the requests in progress within a grace period, then stops
 * what is left (see http.h). The daemon owns the listening socket so that
 * it can close it while libmicrohttpd runs, because libmicrohttpd 0.9.75's
 * own way, MHD_quiesce_daemon, races with its epoll loop and can abort the
 * process.
 *
 * Limits: libmicrohttpd 0.9.x cannot reply while a body is still arriving,
 * so a chunked body over the limit is read and discarded to its end before
 * the 413 goes out. A Content-Length over the limit gets 413 at once.
 * libmicrohttpd does not notice a client that disconnects while its
 * connection is suspended, so a translate thread checks the socket before
 * it starts a job and skips the job when the connection is reset or has
 * failed. A job whose client only half-closed the connection still runs.
 * NOTE: libmicrohttpd 0.9.75 closes a connection, without a message, when
 * it reads the client's end of stream after a complete request and before
 * the reply is queued. After a resume it sometimes reads before it calls
 * the handler. In tests that happened only when another suspended
 * connection of the same HTTP thread had been resumed in the meantime, and
 * then not every time. So a half-closed client whose request waited can
 * still lose its reply; the request is then logged as "dropped" and
 * counted as client_gone.
 * NOTE: requests that fail HTTP parsing inside libmicrohttpd (bad chunk
 * encoding, headers over its per-connection memory) get its own HTML 400 or
 * 431 and never reach the handler, which cannot change that in 0.9.x.
 */
#include "assets.h"
#include "http.h"
#include "job_queue.h"
#include "metrics.h"
#include "translate_job.h"
#include "translate_request.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_THREADS 2
#define DEFAULT_TRANSLATE_THREADS 2
#define DEFAULT_MAX_QUEUE 64
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_TEXTS 128
#define DEFAULT_MAX_CHARS 20000
#define DEFAULT_MAX_TOKENS 256
#define DEFAULT_MAX_BATCH_SENTENCES 64
#define DEFAULT_BEAM_SIZE 5
#define DEFAULT_MAX_BEAM_SIZE 16
#define DEFAULT_MAX_LENGTH 256
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_GRACE_SECONDS 30
#define MAX_BATCH_JOBS 256      /* jobs one translate thread takes at once */
#define IDLE_TIMEOUT_SECONDS 30 /* an idle connection is closed after this */
#define FLUSH_TIMEOUT_MS 1000   /* after the grace period, time to send the last replies */
#define ACCEPT_RETRY_MS 100     /* pause of the accept thread after a failed accept4 */
#define RETRY_AFTER_SECONDS "1" /* Retry-After of a 503 */
#define CORS_MAX_AGE_SECONDS "86400"
#define DISCONNECT_SUMMARY_MS 60000 /* minimum time between two summaries of client disconnects */
#define ERROR_SIZE 512
#define REQUEST_ID_SIZE 65 /* 64 characters and the NUL */

struct http_server {
    struct MHD_Daemon *daemon;
    http_config config; /* string fields and pairs point at the copies below */
    char *address;
    http_language_pair *pairs;
    char *languages_json; /* the reply of GET /languages */
    char *pair_list;      /* "en-de, de-en" for error messages */
    unsigned short port;
    int listen_fd;                /* listening socket, or -1 once stop_listening closed it */
    int wake_pipe[2];             /* read end, polled by the accept thread, and write end */
    pthread_t acceptor;           /* accept thread: accepts and hands connections over */
    int acceptor_started;
    atomic_int stop_accepting;    /* set by stop_listening to end the accept thread */
    unsigned connection_limit;    /* max_connections, or HTTP_DEFAULT_MAX_CONNECTIONS */
    atomic_uint open_connections; /* handed to libmicrohttpd and not closed yet */
    unsigned long accept_failures; /* failed accept4 or poll calls in a row; used by the
                                      accept thread alone */
    atomic_int started;           /* 0 while MHD_start_daemon runs */
    char start_error[ERROR_SIZE]; /* last libmicrohttpd message before start */
    char id_prefix[9];            /* makes request ids unique across restarts */
    atomic_ullong next_id;
    metrics *metrics;             /* the registry that GET /metrics renders */

    job_queue queue;
    pthread_t *workers; /* translate threads */
    unsigned worker_count;
    pthread_t expiry;   /* replies 504 to queued jobs at their deadline */
    int expiry_started;

    pthread_mutex_t mutex;   /* guards active_requests and the disconnect summary */
    pthread_cond_t idle;     /* signalled when active_requests drops to 0 */
    size_t active_requests;  /* from the first handler call to the completion callback */
    unsigned long long disconnects; /* libmicrohttpd's disconnect messages not yet summarized */
    struct timespec last_summary;   /* when the last summary was printed, or the start */
    int summary_printed;            /* a summary has been printed */
    atomic_int stopping;     /* set by http_server_stop */
    atomic_int aborting;     /* set when the grace period is over: running
                                translations stop and get 503 */
    int queue_ready, sync_ready; /* which of the above server_free must destroy */
};

typedef enum {
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_LANGUAGES,
    ROUTE_METRICS,
    ROUTE_TRANSLATE,    /* POST /translate, LibreTranslate's shape */
    ROUTE_V1_TRANSLATE, /* POST /v1/translate */
    ROUTE_PREFLIGHT,    /* OPTIONS on a known path with CORS on */
    ROUTE_ASSET,        /* GET or HEAD of an embedded file (assets.h): the page and
                           /openapi.json */
} route;

/* Where a request is. The thread that took the job off the queue (a
 * translate thread, the expiry thread or http_server_stop) writes reply and
 * status, then stores PHASE_DONE or PHASE_CLIENT_GONE and resumes the
 * connection. The HTTP thread reads them only after the resume, so only
 * phase is atomic. */
typedef enum {
    PHASE_READING,     /* headers routed, body arriving */
    PHASE_QUEUED,      /* job queued or running, connection suspended */
    PHASE_DONE,        /* reply and status are set */
    PHASE_CLIENT_GONE, /* the connection was reset or failed before the job started */
} request_phase;

/* State of one request, from its headers to the completion callback. It is
 * also the translation job: node links it into the queue. */
typedef struct {
    job_queue_node node;
    struct timespec start;    /* arrival, CLOCK_MONOTONIC */
    struct timespec deadline; /* start + timeout_ms, copied to node.deadline */
    char id[REQUEST_ID_SIZE];
    route route;
    char *body;
    size_t len, cap;
    int too_large;     /* body passed max_body_bytes and was dropped */
    int out_of_memory; /* the body buffer could not grow */
    translate_body_format format;
    translate_request tr;
    translate_job job;
    size_t pair;       /* index into config.pairs */
    int beam_size, n_best, alternatives;
    double queue_ms, translate_ms;
    struct MHD_Connection *conn; /* set when the job is queued */
    int fd;                      /* the connection's socket, or -1 */
    atomic_int phase;            /* request_phase */
    unsigned status;
    char *reply; /* JSON text, malloc'd; NULL means out of memory */
    int error_kind; /* metrics_error of a failed reply, or ERROR_KIND_BY_STATUS */
    unsigned retry_after; /* Retry-After of a 429 in seconds, 0 for none */
    int replied;          /* record_reply counted a queued reply */
    int resumed;          /* the handler ran after the job was handed back */
    const seqmt_asset *asset; /* the file of ROUTE_ASSET */
} request_state;

/* request_state.error_kind when the status alone gives the cause. */
#define ERROR_KIND_BY_STATUS (-1)

static request_state *job_of(job_queue_node *node)
{
    return (request_state *)((char *)node - offsetof(request_state, node));
}

static double ms_between(const struct timespec *from, const struct timespec *to)
{
    return 1e3 * (double)(to->tv_sec - from->tv_sec) +
           1e-6 * (double)(to->tv_nsec - from->tv_nsec);
}

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return ms_between(start, &now);
}

static int deadline_passed(const request_state *req)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > req->deadline.tv_sec ||
           (now.tv_sec == req->deadline.tv_sec && now.tv_nsec >= req->deadline.tv_nsec);
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
    fprintf(stderr, "http: id=%s %s %s %s sentences=%zu %.1f ms\n", req->id, method_text,
            path_text, outcome, req->job.sentence_count, elapsed_ms(&req->start));
}

/* Logs the texts of a translation request as JSON strings, one line each.
 * Only called with config.debug. */
static void log_request_texts(const request_state *req)
{
    for (size_t i = 0; i < req->tr.count; i++) {
        cJSON *s = cJSON_CreateString(req->tr.texts[i]);
        char *quoted = s ? cJSON_PrintUnformatted(s) : NULL;

        fprintf(stderr, "http: id=%s q[%zu] %s\n", req->id, i, quoted ? quoted : "(no memory)");
        free(quoted);
        cJSON_Delete(s);
    }
}

/* Sets the request id: the client's X-Request-Id when it is 1 to 64
 * characters of [A-Za-z0-9._-], else one made here. */
static void assign_request_id(http_server *srv, struct MHD_Connection *conn, request_state *req)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t len = given ? strlen(given) : 0;
    int valid = len > 0 && len < REQUEST_ID_SIZE;

    for (size_t i = 0; valid && i < len; i++) {
        char c = given[i];

        valid = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
    }
    if (valid)
        memcpy(req->id, given, len + 1);
    else
        snprintf(req->id, sizeof(req->id), "%s-%llu", srv->id_prefix,
                 (unsigned long long)atomic_fetch_add(&srv->next_id, 1));
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

/* Adds the headers every reply carries: X-Request-Id, CORS when on, and
 * "Connection: close" while the server stops, so that keep-alive clients go
 * elsewhere. Browsers let a page read only the response headers that
 * Access-Control-Expose-Headers names beyond the CORS-safelisted ones, so
 * it names Retry-After (of a 429 or 503) and X-Request-Id. Returns 0, or -1
 * when a header could not be added. */
static int add_common_headers(http_server *srv, struct MHD_Response *response,
                              const request_state *req)
{
    if (MHD_add_response_header(response, "X-Request-Id", req->id) != MHD_YES)
        return -1;
    if (srv->config.cors &&
        (MHD_add_response_header(response, "Access-Control-Allow-Origin", "*") != MHD_YES ||
         MHD_add_response_header(response, "Access-Control-Expose-Headers",
                                 "Retry-After, X-Request-Id") != MHD_YES))
        return -1;
    if (atomic_load(&srv->stopping) &&
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)
        return -1;
    return 0;
}

/* Adds the headers of a reply to response and queues it with status, then
 * releases response. content_type, when not NULL, is the Content-Type, and
 * allow, when not NULL, the Allow header of a 405. A 503 carries
 * Retry-After, and so does a 429 when req->retry_after is set. Returns the
 * status, or 0 when the reply could not be queued. */
static unsigned queue_response(http_server *srv, struct MHD_Connection *conn,
                               const request_state *req, unsigned status,
                               struct MHD_Response *response, const char *content_type,
                               const char *allow)
{
    enum MHD_Result rc;
    char retry_after[16];
    int header_failed;

    header_failed =
        (content_type &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) !=
             MHD_YES) ||
        (allow && MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES) ||
        (status == MHD_HTTP_SERVICE_UNAVAILABLE &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_SECONDS) !=
             MHD_YES) ||
        add_common_headers(srv, response, req) != 0;
    if (!header_failed && status == MHD_HTTP_TOO_MANY_REQUESTS && req->retry_after > 0) {
        snprintf(retry_after, sizeof(retry_after), "%u", req->retry_after);
        header_failed = MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER,
                                                retry_after) != MHD_YES;
    }
    rc = header_failed ? MHD_NO : MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return rc == MHD_YES ? status : 0;
}

/* Queues text (malloc'd, taken over) as a reply with the given status and
 * Content-Type, as queue_response does, and returns the status sent. When
 * text is NULL because building the reply ran out of memory, a fixed JSON
 * 500 goes out instead. Returns 0 when the reply could not be queued. */
static unsigned queue_text(http_server *srv, struct MHD_Connection *conn,
                           const request_state *req, unsigned status, char *text,
                           const char *content_type, const char *allow)
{
    static const char oom_body[] = "{\"error\":\"out of memory while building the reply\"}";
    struct MHD_Response *response;

    if (text) {
        response = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
        if (!response)
            free(text);
    } else {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        content_type = "application/json";
        response = MHD_create_response_from_buffer(sizeof(oom_body) - 1, (void *)oom_body,
                                                   MHD_RESPMEM_PERSISTENT);
    }
    if (!response)
        return 0;
    return queue_response(srv, conn, req, status, response, content_type, allow);
}

/* Queues text (malloc'd, taken over) as a JSON reply; see queue_text. */
static unsigned queue_json(http_server *srv, struct MHD_Connection *conn,
                           const request_state *req, unsigned status, char *text,
                           const char *allow)
{
    return queue_text(srv, conn, req, status, text, "application/json", allow);
}

/* Returns the cause of a failed reply for seqmt_errors_total, or -1 when
 * the reply did not fail or its status has no cause of its own: 404 and
 * 405 are counted by status alone, and each 503 sets its cause. */
static int error_kind_of(const request_state *req, unsigned status)
{
    if (status < 400)
        return -1;
    if (req->error_kind != ERROR_KIND_BY_STATUS)
        return req->error_kind;
    switch (status) {
    case MHD_HTTP_BAD_REQUEST:
        return METRICS_ERROR_INVALID_REQUEST;
    case MHD_HTTP_FORBIDDEN:
        return METRICS_ERROR_FORBIDDEN;
    case MHD_HTTP_CONTENT_TOO_LARGE:
        return METRICS_ERROR_BODY_TOO_LARGE;
    case MHD_HTTP_TOO_MANY_REQUESTS:
        return METRICS_ERROR_RATE_LIMITED;
    case MHD_HTTP_INTERNAL_SERVER_ERROR:
        return METRICS_ERROR_TRANSLATION_FAILED;
    case MHD_HTTP_GATEWAY_TIMEOUT:
        return METRICS_ERROR_DEADLINE_EXCEEDED;
    default:
        return -1;
    }
}

/* Logs a queued reply and counts it in the metrics. */
static void record_reply(http_server *srv, request_state *req, const char *method,
                         const char *url, unsigned status)
{
    char outcome[16];
    int kind = error_kind_of(req, status);

    req->replied = 1;
    snprintf(outcome, sizeof(outcome), "%u", status);
    log_request(method, url, outcome, req);

    /* The files of the page count under "/", the page's endpoint. */
    if (req->route == ROUTE_ASSET && strcmp(metrics_endpoint_label(url), "other") == 0)
        url = "/";
    metrics_observe_request(srv->metrics, url, status, elapsed_ms(&req->start) / 1e3);
    if (kind >= 0)
        metrics_count_error(srv->metrics, (metrics_error)kind);
}

/* Queues a JSON reply as queue_json does, logs it and counts it. */
static enum MHD_Result send_text(http_server *srv, struct MHD_Connection *conn,
                                 request_state *req, const char *method, const char *url,
                                 unsigned status, char *text, const char *allow)
{
    if (!text)
        req->error_kind = METRICS_ERROR_OUT_OF_MEMORY; /* queue_json sends 500 */
    status = queue_json(srv, conn, req, status, text, allow);
    if (status == 0)
        return MHD_NO;
    record_reply(srv, req, method, url, status);
    return MHD_YES;
}

/* Queues {"error": message} with the given status. */
static enum MHD_Result send_error(http_server *srv, struct MHD_Connection *conn,
                                  request_state *req, const char *method, const char *url,
                                  unsigned status, const char *allow, const char *format, ...)
    __attribute__((format(printf, 8, 9)));

static enum MHD_Result send_error(http_server *srv, struct MHD_Connection *conn,
                                  request_state *req, const char *method, const char *url,
                                  unsigned status, const char *allow, const char *format, ...)
{
    char message[ERROR_SIZE];
    va_list ap;

    va_start(ap, format);
    vsnprintf(message, sizeof(message), format, ap);
    va_end(ap);
    return send_text(srv, conn, req, method, url, status, error_json("%s", message), allow);
}

/* Queues a 500 for an allocation that failed while doing what. */
static enum MHD_Result send_out_of_memory(http_server *srv, struct MHD_Connection *conn,
                                          request_state *req, const char *method,
                                          const char *url, const char *what)
{
    req->error_kind = METRICS_ERROR_OUT_OF_MEMORY;
    return send_error(srv, conn, req, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                      "out of memory while %s", what);
}

/* Replies to a CORS preflight request with 204 and the allowed methods and
 * headers. */
static enum MHD_Result send_preflight(http_server *srv, struct MHD_Connection *conn,
                                      request_state *req, const char *method,
                                      const char *url, const char *allow)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_NO;

    if (!response)
        return MHD_NO;
    if (MHD_add_response_header(response, "Access-Control-Allow-Methods", allow) == MHD_YES &&
        MHD_add_response_header(response, "Access-Control-Allow-Headers",
                                "Content-Type, Authorization, X-Request-Id") == MHD_YES &&
        MHD_add_response_header(response, "Access-Control-Max-Age", CORS_MAX_AGE_SECONDS) ==
            MHD_YES &&
        add_common_headers(srv, response, req) == 0)
        rc = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, response);
    MHD_destroy_response(response);
    if (rc == MHD_YES)
        record_reply(srv, req, method, url, MHD_HTTP_NO_CONTENT);
    return rc;
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

/* Builds the reply of GET /languages in LibreTranslate's shape: every
 * source language served, in the order of the pairs, with its targets.
 * Returns malloc'd JSON text, or NULL when out of memory. */
static char *build_languages_json(const http_language_pair *pairs, size_t count)
{
    cJSON *list = cJSON_CreateArray();
    char *text = NULL;

    if (!list)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        cJSON *entry = NULL, *targets;
        size_t first = 0;

        while (strcmp(pairs[first].source, pairs[i].source) != 0)
            first++;
        if (first < i)
            continue; /* listed with an earlier pair */
        entry = cJSON_CreateObject();
        if (!entry || !cJSON_AddItemToArray(list, entry)) {
            cJSON_Delete(entry);
            goto cleanup;
        }
        if (!cJSON_AddStringToObject(entry, "code", pairs[i].source) ||
            !cJSON_AddStringToObject(entry, "name", language_name(pairs[i].source)) ||
            !(targets = cJSON_AddArrayToObject(entry, "targets")))
            goto cleanup;
        for (size_t k = i; k < count; k++) {
            cJSON *code;

            if (strcmp(pairs[k].source, pairs[i].source) != 0)
                continue;
            code = cJSON_CreateString(pairs[k].target);
            if (!code || !cJSON_AddItemToArray(targets, code)) {
                cJSON_Delete(code);
                goto cleanup;
            }
        }
    }
    text = cJSON_PrintUnformatted(list);
cleanup:
    cJSON_Delete(list);
    return text;
}

/* Returns nonzero when the If-None-Match value header names etag (a quoted
 * strong tag) or is "*". A weak tag W/"x" matches "x", because
 * If-None-Match uses the weak comparison (RFC 9110, section 13.1.2). */
static int etag_matches(const char *header, const char *etag)
{
    size_t etag_len = strlen(etag);
    const char *p = header + strspn(header, " \t");

    if (p[0] == '*' && p[1 + strspn(p + 1, " \t")] == '\0')
        return 1;
    while (*p) {
        p += strspn(p, " \t,");
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, etag_len) == 0 && strchr(" \t,", p[etag_len]))
            return 1; /* strchr also finds the final NUL */

        /* Skip this tag: a quoted string may contain commas. */
        if (*p == '"') {
            p = strchr(p + 1, '"');
            if (!p)
                return 0;
            p++;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

/* Replies to GET or HEAD on an embedded file with the headers assets.h
 * lists, or with 304 and no body when If-None-Match names its ETag.
 * NOTE: libmicrohttpd 0.9.75 adds "Content-Length: 0" to the 304, and a
 * Content-Length set here is sent as a second header, so the 304 cannot
 * carry the 200's length that RFC 9110 (section 8.6) requires. */
static enum MHD_Result send_asset(http_server *srv, struct MHD_Connection *conn,
                                  request_state *req, const char *method, const char *url)
{
    const seqmt_asset *asset = req->asset;
    const char *if_none_match =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    int not_modified = if_none_match && etag_matches(if_none_match, asset->etag);
    unsigned status = not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    struct MHD_Response *response = MHD_create_response_from_buffer(
        not_modified ? 0 : asset->size, (void *)asset->data, MHD_RESPMEM_PERSISTENT);

    if (!response)
        return MHD_NO;
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, asset->etag) != MHD_YES ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") !=
            MHD_YES ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff") !=
            MHD_YES ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY,
                                "default-src 'self'") != MHD_YES) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    status = queue_response(srv, conn, req, status, response,
                            not_modified ? NULL : asset->content_type, NULL);
    if (status == 0)
        return MHD_NO;
    record_reply(srv, req, method, url, status);
    return MHD_YES;
}

/* Replies to GET or HEAD on /metrics with the registry in Prometheus'
 * text format. The queue depth is read at the scrape. */
static enum MHD_Result send_metrics(http_server *srv, struct MHD_Connection *conn,
                                    request_state *req, const char *method, const char *url)
{
    char *text;
    unsigned status;

    metrics_set_queue_depth(srv->metrics, job_queue_length(&srv->queue));
    text = metrics_render(srv->metrics);
    if (!text)
        req->error_kind = METRICS_ERROR_OUT_OF_MEMORY; /* queue_text sends 500 */
    status = queue_text(srv, conn, req, MHD_HTTP_OK, text, METRICS_CONTENT_TYPE, NULL);
    if (status == 0)
        return MHD_NO;
    record_reply(srv, req, method, url, status);
    return MHD_YES;
}

/* Replies to GET or HEAD on /health, /ready, /languages, /metrics or an
 * embedded file. /ready turns to 503 once the server stops, so that load
 * balancers stop sending requests. It needs no other check because the
 * daemon starts after the models have loaded. */
static enum MHD_Result reply_get_route(http_server *srv, struct MHD_Connection *conn,
                                       request_state *req, const char *method, const char *url)
{
    switch (req->route) {
    case ROUTE_HEALTH:
        return send_text(srv, conn, req, method, url, MHD_HTTP_OK,
                         strdup("{\"status\":\"ok\"}"), NULL);
    case ROUTE_LANGUAGES:
        return send_text(srv, conn, req, method, url, MHD_HTTP_OK, strdup(srv->languages_json),
                         NULL);
    case ROUTE_METRICS:
        return send_metrics(srv, conn, req, method, url);
    case ROUTE_ASSET:
        return send_asset(srv, conn, req, method, url);
    default:
        break;
    }
    if (atomic_load(&srv->stopping))
        return send_text(srv, conn, req, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
                         strdup("{\"status\":\"stopping\"}"), NULL);
    return send_text(srv, conn, req, method, url, MHD_HTTP_OK, strdup("{\"status\":\"ready\"}"),
                     NULL);
}

/* ---- translation requests ---- */

static int is_auto(const char *code)
{
    return !code || !code[0] || strcmp(code, "auto") == 0;
}

/* Picks the served pair that matches source and target of tr, where a
 * missing source, "" or "auto" matches any source and a missing or empty
 * target any target. Returns 0 with *pair set, or -1 with a client error
 * in err when no pair or more than one matches. */
static int resolve_pair(const http_server *srv, const translate_request *tr, size_t *pair,
                        char *err, size_t err_size)
{
    size_t matches = 0;
    char source[33], target[33];

    for (size_t i = 0; i < srv->config.pair_count; i++) {
        const http_language_pair *p = &srv->pairs[i];

        if ((is_auto(tr->source) || strcmp(tr->source, p->source) == 0) &&
            (!tr->target || !tr->target[0] || strcmp(tr->target, p->target) == 0)) {
            if (matches++ == 0)
                *pair = i;
        }
    }
    if (matches == 1)
        return 0;
    printable_copy(is_auto(tr->source) ? "auto" : tr->source, source, sizeof(source));
    printable_copy(tr->target && tr->target[0] ? tr->target : "auto", target, sizeof(target));
    if (matches == 0)
        snprintf(err, err_size,
                 "language pair %s-%s is not served; this server translates %s", source,
                 target, srv->pair_list);
    else
        snprintf(err, err_size,
                 "language pair %s-%s is ambiguous: it matches several of %s; name the "
                 "source and target languages",
                 source, target, srv->pair_list);
    return -1;
}

/* Checks the decoding options of a request and stores them in req.
 * LibreTranslate's route reads alternatives; /v1/translate reads beam_size,
 * n_best and max_length. Returns 0, or -1 with a client error in err. */
static int check_options(const http_server *srv, request_state *req, char *err, size_t err_size)
{
    const http_config *cfg = &srv->config;
    const translate_request *tr = &req->tr;

    req->beam_size = cfg->default_beam_size;
    req->n_best = 1;
    req->alternatives = 0;
    if (req->route == ROUTE_TRANSLATE) {
        if (tr->alternatives != TRANSLATE_FIELD_ABSENT) {
            if (tr->alternatives + 1 > cfg->max_beam_size) {
                snprintf(err, err_size,
                         "alternatives %lld needs a beam of %lld, over the limit of %d; ask "
                         "for at most %d alternatives",
                         tr->alternatives, tr->alternatives + 1, cfg->max_beam_size,
                         cfg->max_beam_size - 1);
                return -1;
            }
            req->alternatives = (int)tr->alternatives;
        }
        req->n_best = req->alternatives + 1;
        if (req->beam_size < req->n_best)
            req->beam_size = req->n_best;
        return 0;
    }

    if (tr->beam_size != TRANSLATE_FIELD_ABSENT) {
        if (tr->beam_size < 1 || tr->beam_size > cfg->max_beam_size) {
            snprintf(err, err_size, "beam_size %lld is outside the limits of 1 to %d",
                     tr->beam_size, cfg->max_beam_size);
            return -1;
        }
        req->beam_size = (int)tr->beam_size;
    }
    if (tr->n_best != TRANSLATE_FIELD_ABSENT) {
        if (tr->n_best < 1 || tr->n_best > req->beam_size) {
            snprintf(err, err_size,
                     "n_best %lld is outside 1 to beam_size %d; raise beam_size (at most %d) "
                     "or lower n_best",
                     tr->n_best, req->beam_size, cfg->max_beam_size);
            return -1;
        }
        req->n_best = (int)tr->n_best;
    }
    if (tr->max_length != TRANSLATE_FIELD_ABSENT &&
        (tr->max_length < 1 || tr->max_length > cfg->max_length)) {
        snprintf(err, err_size, "max_length %lld is outside the limits of 1 to %d tokens",
                 tr->max_length, cfg->max_length);
        return -1;
    }
    return 0;
}

/* Returns 0 for text, 1 for html, or -1 with a client error in err. */
static int check_format(const char *format, char *err, size_t err_size)
{
    char shown[33];

    if (!format || strcmp(format, "text") == 0)
        return 0;
    if (strcmp(format, "html") == 0)
        return 1;
    printable_copy(format, shown, sizeof(shown));
    snprintf(err, err_size, "format \"%s\" is not supported; use \"text\" or \"html\"", shown);
    return -1;
}

/* Checks every sentence of the job against max_tokens. Returns 0, 1 with a
 * client error in err, or -1 when out of memory. */
static int check_sentence_tokens(const http_server *srv, const request_state *req, char *err,
                                 size_t err_size)
{
    const http_config *cfg = &srv->config;

    if (!cfg->count_tokens)
        return 0;
    for (size_t i = 0; i < req->job.sentence_count; i++) {
        const char *text = req->job.sentences[i].text;
        size_t tokens = cfg->count_tokens(cfg->translate_ctx, req->pair, text);
        char shown[64];

        if (tokens == (size_t)-1)
            return -1;
        if (tokens <= cfg->max_tokens)
            continue;
        printable_copy(text, shown, sizeof(shown));
        snprintf(err, err_size,
                 "a sentence of q[%zu] has %zu tokens, over the limit of %zu: \"%s%s\"; split "
                 "it into shorter sentences",
                 translate_job_text_of(&req->job, i), tokens, cfg->max_tokens, shown,
                 strlen(text) >= sizeof(shown) ? "..." : "");
        return 1;
    }
    return 0;
}

/* Builds the reply of req from the hypotheses of its sentences. */
static char *build_reply(const http_server *srv, const request_state *req)
{
    translate_job_timing timing;

    /* As LibreTranslate does for source "auto", name the source language
     * picked. An empty or missing source picks one too but gets no
     * detectedLanguage, which LibreTranslate has no reply for. */
    if (req->route == ROUTE_TRANSLATE)
        return translate_job_reply_libre(&req->job, req->tr.is_list, req->alternatives,
                                         req->tr.source && strcmp(req->tr.source, "auto") == 0
                                             ? srv->pairs[req->pair].source
                                             : NULL);
    timing.queue_ms = req->queue_ms;
    timing.translate_ms = req->translate_ms;
    timing.total_ms = elapsed_ms(&req->start);
    return translate_job_reply_v1(&req->job, req->n_best, srv->pairs[req->pair].source,
                                  srv->pairs[req->pair].target, &timing);
}

/* Returns nonzero when the connection is gone: the socket has an error
 * (such as ECONNRESET after the client reset it) or a hang-up. A read EOF
 * alone does not count, because a client that shut down only its sending
 * side (shutdown(SHUT_WR)) can still read its reply.
 * NOTE: TCP shows a client that closed its socket normally (with a FIN)
 * exactly like such a half-close, so its job is translated, and its kernel
 * discards the reply with a reset. */
static int client_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0}; /* POLLERR and POLLHUP are always reported */

    if (fd < 0 || poll(&p, 1, 0) <= 0)
        return 0;
    return (p.revents & (POLLHUP | POLLERR)) != 0;
}

/* Hands a finished job back to its HTTP thread. The caller has set the
 * reply or PHASE_CLIENT_GONE. From the resume on, req may be freed. */
static void hand_back(request_state *req, request_phase phase)
{
    struct MHD_Connection *conn = req->conn;

    atomic_store(&req->phase, phase);
    MHD_resume_connection(conn);
}

/* Sets the reply of a job that produced no translation, and its cause for
 * seqmt_errors_total. */
static void fail_job(request_state *req, unsigned status, metrics_error kind, char *reply)
{
    req->status = status;
    req->error_kind = (int)kind;
    req->reply = reply;
}

/* Sets the 504 reply of a job whose deadline passed before its
 * translation started. */
static void fail_expired_job(const http_server *srv, request_state *req)
{
    fail_job(req, MHD_HTTP_GATEWAY_TIMEOUT, METRICS_ERROR_DEADLINE_EXCEEDED,
             error_json("request waited longer than the timeout of %u ms for a translate "
                        "thread; retry later",
                        srv->config.timeout_ms));
}

/* The sentences of a group of jobs in one callback call. The stop
 * callback replies at once to a job whose deadline passes during the call,
 * so that its client does not wait for the rest of the batch. answered[j]
 * records that group[j] has its reply and must not be read again. */
typedef struct {
    http_server *srv;
    request_state **group;    /* [job_count] */
    size_t job_count;
    unsigned char *answered;  /* [job_count] */
    http_sentence *sentences; /* [count] copies of the jobs' sentences */
    size_t *owner;            /* [count] index into group */
    size_t count;
} batch;

/* Replies to group[j] with 504 or, once the server stops, 503, because
 * its sentences are being stopped. */
static void answer_stopped(batch *b, size_t j)
{
    request_state *req = b->group[j];
    const http_server *srv = b->srv;

    if (atomic_load(&srv->aborting))
        fail_job(req, MHD_HTTP_SERVICE_UNAVAILABLE, METRICS_ERROR_SHUTTING_DOWN,
                 error_json("server stopped before finishing this translation; retry later"));
    else
        fail_job(req, MHD_HTTP_GATEWAY_TIMEOUT, METRICS_ERROR_DEADLINE_EXCEEDED,
                 error_json("translation took longer than the timeout of %u ms; send shorter "
                            "texts or fewer of them",
                            srv->config.timeout_ms));
    b->answered[j] = 1;
    hand_back(req, PHASE_DONE);
}

/* http_stop_fn: stops the sentences of a job whose deadline has passed, or
 * of every job once the grace period of a stop is over. The job gets its
 * reply when its first sentence stops. */
static int stop_sentence(void *ctx, size_t i)
{
    batch *b = ctx;
    size_t j = b->owner[i];

    if (b->answered[j])
        return 1;
    if (!atomic_load(&b->srv->aborting) && !deadline_passed(b->group[j]))
        return 0;
    answer_stopped(b, j);
    return 1;
}

/* Frees the outputs the callback left in b's sentences. */
static void free_batch_outputs(batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        http_sentence *s = &b->sentences[i];

        for (size_t k = 0; s->hyps && k < s->count; k++)
            free(s->hyps[k].text);
        free(s->hyps);
        s->hyps = NULL;
        s->count = 0;
    }
}

/* Stores the outcome of a callback call in req: an error, a timeout for a
 * sentence that the stop callback ended, or the translation. */
static void finish_job(http_server *srv, request_state *req, int rc, const char *err)
{
    size_t missing = SIZE_MAX;
    int stopped = 0;

    for (size_t i = 0; i < req->job.sentence_count; i++) {
        stopped |= req->job.sentences[i].stopped;
        if (missing == SIZE_MAX && req->job.sentences[i].count == 0)
            missing = i;
    }
    if (rc == -2)
        fail_job(req, MHD_HTTP_BAD_REQUEST, METRICS_ERROR_INVALID_REQUEST,
                 error_json("%s", err[0] ? err : "the translator rejected the input"));
    else if (rc != 0)
        fail_job(req, MHD_HTTP_INTERNAL_SERVER_ERROR, METRICS_ERROR_TRANSLATION_FAILED,
                 error_json("translation failed: %s", err[0] ? err : "no reason given"));
    else if (stopped)
        fail_job(req, MHD_HTTP_GATEWAY_TIMEOUT, METRICS_ERROR_DEADLINE_EXCEEDED,
                 error_json("translation took longer than the timeout of %u ms; send shorter "
                            "texts or fewer of them",
                            srv->config.timeout_ms));
    else if (missing != SIZE_MAX)
        fail_job(req, MHD_HTTP_INTERNAL_SERVER_ERROR, METRICS_ERROR_TRANSLATION_FAILED,
                 error_json("translation failed: no output for a sentence of q[%zu]",
                            translate_job_text_of(&req->job, missing)));
    else {
        size_t tokens = 0;

        for (size_t i = 0; i < req->job.sentence_count; i++)
            tokens += req->job.sentences[i].source_tokens;
        req->status = MHD_HTTP_OK;
        req->reply = build_reply(srv, req);
        metrics_add_translated(srv->metrics, req->job.sentence_count, tokens);
    }
    translate_job_clear_results(&req->job);
}

/* Translates the sentences of group[0..count), jobs with one language pair
 * and beam width, in one callback call, and hands every job back with its
 * reply. When the call fails for several jobs, each job still unanswered
 * is translated alone, so that only the job at fault gets the error. */
static void run_group(http_server *srv, request_state **group, size_t count)
{
    const http_config *cfg = &srv->config;
    batch b = {.srv = srv, .group = group, .job_count = count};
    char err[ERROR_SIZE] = "";
    struct timespec before, after;
    size_t at = 0, retry = 0;
    int rc;

    /* Step 1: copy the sentences of all jobs into one array. */
    for (size_t j = 0; j < count; j++)
        b.count += group[j]->job.sentence_count;
    b.answered = calloc(count, 1);
    b.sentences = calloc(b.count ? b.count : 1, sizeof(*b.sentences));
    b.owner = calloc(b.count ? b.count : 1, sizeof(*b.owner));
    if (!b.answered || !b.sentences || !b.owner) {
        for (size_t j = 0; j < count; j++) {
            fail_job(group[j], MHD_HTTP_INTERNAL_SERVER_ERROR, METRICS_ERROR_OUT_OF_MEMORY,
                     error_json("out of memory before translating"));
            hand_back(group[j], PHASE_DONE);
        }
        goto done;
    }
    for (size_t j = 0; j < count; j++)
        for (size_t i = 0; i < group[j]->job.sentence_count; i++, at++) {
            b.sentences[at] = group[j]->job.sentences[i];
            b.owner[at] = j;
        }

    /* Step 2: translate. */
    clock_gettime(CLOCK_MONOTONIC, &before);
    rc = cfg->translate(cfg->translate_ctx, group[0]->pair, group[0]->beam_size, b.sentences,
                        b.count, stop_sentence, &b, err, sizeof(err));
    err[sizeof(err) - 1] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &after);
    metrics_observe_batch(srv->metrics, b.count);
    if (rc != 0 && count > 1) {
        free_batch_outputs(&b);
        for (size_t j = 0; j < count; j++)
            if (!b.answered[j])
                group[retry++] = group[j];
        for (size_t j = 0; j < retry; j++)
            run_group(srv, &group[j], 1);
        goto done;
    }

    /* Step 3: hand each unanswered job its sentences' outputs and reply. */
    at = 0;
    for (size_t j = 0; j < count; j++) {
        request_state *req = group[j];

        if (b.answered[j]) {
            while (at < b.count && b.owner[at] == j)
                at++;
            continue;
        }
        req->translate_ms += ms_between(&before, &after);
        for (size_t i = 0; i < req->job.sentence_count; i++, at++) {
            http_sentence *s = &req->job.sentences[i];

            s->hyps = b.sentences[at].hyps;
            s->count = b.sentences[at].hyps ? b.sentences[at].count : 0;
            s->stopped = b.sentences[at].stopped;
            s->source_tokens = b.sentences[at].source_tokens;
            b.sentences[at].hyps = NULL;
        }
        finish_job(srv, req, rc, err);
        hand_back(req, PHASE_DONE);
    }
    free_batch_outputs(&b); /* outputs of jobs that got their reply */

done:
    free(b.answered);
    free(b.sentences);
    free(b.owner);
}

/* Translates the jobs jobs[0..count) taken off the queue together: hands
 * back at once those whose client left or whose deadline passed, then runs
 * one callback call per language pair and beam width. */
static void run_batch(http_server *srv, request_state **jobs, size_t count)
{
    request_state **group = malloc(count * sizeof(*group));
    size_t active = 0;

    /* Step 1: drop jobs whose client left or whose deadline passed. */
    for (size_t j = 0; j < count; j++) {
        request_state *req = jobs[j];

        req->queue_ms = elapsed_ms(&req->start);
        if (client_closed(req->fd)) {
            hand_back(req, PHASE_CLIENT_GONE);
        } else if (deadline_passed(req)) {
            fail_expired_job(srv, req);
            hand_back(req, PHASE_DONE);
        } else if (!group) {
            fail_job(req, MHD_HTTP_INTERNAL_SERVER_ERROR, METRICS_ERROR_OUT_OF_MEMORY,
                     error_json("out of memory before translating"));
            hand_back(req, PHASE_DONE);
        } else {
            jobs[active++] = req;
        }
    }

    /* Step 2: one call per language pair and beam width, in queue order. */
    while (active > 0) {
        size_t in_group = 0, rest = 0, pair = jobs[0]->pair;
        int beam_size = jobs[0]->beam_size;

        for (size_t j = 0; j < active; j++) {
            if (jobs[j]->pair == pair && jobs[j]->beam_size == beam_size)
                group[in_group++] = jobs[j];
            else
                jobs[rest++] = jobs[j];
        }
        run_group(srv, group, in_group);
        active = rest;
    }
    free(group);
}

/* Body of a translate thread: runs batches of jobs until the queue closes. */
static void *translate_thread(void *arg)
{
    http_server *srv = arg;
    job_queue_node *nodes[MAX_BATCH_JOBS];
    request_state *jobs[MAX_BATCH_JOBS];
    size_t count;

    while ((count = job_queue_pop_batch(&srv->queue, nodes, MAX_BATCH_JOBS,
                                        srv->config.max_batch_sentences,
                                        srv->config.batch_wait_ms)) > 0) {
        for (size_t j = 0; j < count; j++)
            jobs[j] = job_of(nodes[j]);
        run_batch(srv, jobs, count);
    }
    return NULL;
}

/* Body of the expiry thread: takes each job off the queue once its
 * deadline passes while it waits and replies 504, or skips the reply when
 * the client has left. Runs until the queue closes. */
static void *expiry_thread(void *arg)
{
    http_server *srv = arg;
    job_queue_node *node;

    while ((node = job_queue_take_expired(&srv->queue)) != NULL) {
        while (node) {
            job_queue_node *next = node->next; /* read before the hand-back frees it */
            request_state *req = job_of(node);

            if (client_closed(req->fd)) {
                hand_back(req, PHASE_CLIENT_GONE);
            } else {
                fail_expired_job(srv, req);
                hand_back(req, PHASE_DONE);
            }
            node = next;
        }
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
    req->node.weight = req->job.sentence_count;
    req->node.deadline = req->deadline;
    atomic_store(&req->phase, PHASE_QUEUED);

    /* Suspend before pushing: a translate thread or the expiry thread may
     * resume the connection as soon as the job is on the queue, and
     * libmicrohttpd leaves resuming a connection that is not suspended
     * undefined. */
    MHD_suspend_connection(conn);
    rc = job_queue_push(&srv->queue, &req->node);
    if (rc == 0)
        return MHD_YES;
    if (rc == JOB_QUEUE_FULL)
        fail_job(req, MHD_HTTP_SERVICE_UNAVAILABLE, METRICS_ERROR_QUEUE_FULL,
                 error_json("server is overloaded: %zu translation requests are already "
                            "waiting; retry later",
                            srv->config.max_queue));
    else
        fail_job(req, MHD_HTTP_SERVICE_UNAVAILABLE, METRICS_ERROR_SHUTTING_DOWN,
                 error_json("server is shutting down; retry later"));
    atomic_store(&req->phase, PHASE_DONE);
    MHD_resume_connection(conn);
    return MHD_YES;
}

/* Returns the API key of a request: its api_key field, or else the token of
 * an "Authorization: Bearer TOKEN" header, or NULL when it has neither. */
static const char *request_api_key(struct MHD_Connection *conn, const translate_request *tr)
{
    const char *header;

    if (tr->api_key && tr->api_key[0])
        return tr->api_key;
    header = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    header += 7;
    while (*header == ' ')
        header++;
    return header[0] ? header : NULL;
}

/* Writes the IP address of addr into buf as inet_ntop does. Returns buf,
 * or NULL when addr is NULL or of another family. */
static const char *sockaddr_text(const struct sockaddr *addr, char *buf, size_t size)
{
    if (!addr)
        return NULL;
    if (addr->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, buf,
                         (socklen_t)size);
    if (addr->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, buf,
                         (socklen_t)size);
    return NULL;
}

/* Writes the peer's address of conn, which accept_connection passed to
 * MHD_add_connection, into buf as inet_ntop does. Returns buf, or NULL
 * when the address is unknown or of another family. */
static const char *client_address(struct MHD_Connection *conn, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    return sockaddr_text(info ? info->client_addr : NULL, buf, size);
}

/* Checks a fully received translation request and queues its translation,
 * or replies at once with an error or an empty result. */
static enum MHD_Result handle_translate(http_server *srv, struct MHD_Connection *conn,
                                        request_state *req, const char *method, const char *url)
{
    const http_config *cfg = &srv->config;
    translate_request *tr = &req->tr;
    char err[ERROR_SIZE] = "";
    size_t chars;
    int rc, html;

    /* Step 1: reject what cannot be parsed. */
    if (req->out_of_memory)
        return send_out_of_memory(srv, conn, req, method, url, "reading the request body");
    if (req->len == 0)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "request body is empty; send {\"q\": \"text\"}");

    /* Step 2: parse the JSON or form body. */
    translate_limits limits = {cfg->max_texts, (int)cfg->max_beam_size, (int)cfg->max_length};
    rc = translate_request_parse_with_limits(tr, req->format, conn, req->body, req->len, &limits,
                                             err, sizeof(err));
    if (rc == -2)
        return send_out_of_memory(srv, conn, req, method, url, "parsing the request");
    if (rc != 0)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
    if (cfg->debug)
        log_request_texts(req);

    /* Step 3: the hook for API keys and rate limits. */
    if (cfg->authorize) {
        char address[INET6_ADDRSTRLEN];
        unsigned retry_after = 0;
        unsigned status = cfg->authorize(cfg->authorize_ctx, request_api_key(conn, tr), url,
                                         client_address(conn, address, sizeof(address)),
                                         &retry_after, err, sizeof(err));

        if (status != 0) {
            if (status < 400 || status > 599)
                status = MHD_HTTP_INTERNAL_SERVER_ERROR; /* a hook that breaks its contract */
            req->retry_after = retry_after;
            return send_error(srv, conn, req, method, url, status, NULL, "%s",
                              err[0] ? err : "request not authorized");
        }
    }

    /* Step 4: check the language pair, the options and the input size. */
    if (resolve_pair(srv, tr, &req->pair, err, sizeof(err)) != 0 ||
        check_options(srv, req, err, sizeof(err)) != 0 ||
        (html = check_format(tr->format, err, sizeof(err))) < 0)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
    chars = translate_request_chars(tr);
    if (chars > cfg->max_chars)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "q has %zu characters; this server accepts at most %zu per request",
                          chars, cfg->max_chars);

    /* Step 5: split the texts into sentences and check their lengths. */
    if (translate_job_init(&req->job, tr->texts, tr->count, html, req->n_best,
                           tr->max_length != TRANSLATE_FIELD_ABSENT ? (int)tr->max_length
                                                                    : cfg->max_length) != 0)
        return send_out_of_memory(srv, conn, req, method, url,
                                  "splitting the texts into sentences");
    rc = check_sentence_tokens(srv, req, err, sizeof(err));
    if (rc < 0)
        return send_out_of_memory(srv, conn, req, method, url, "counting tokens");
    if (rc > 0)
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);

    /* Step 6: texts without sentences need no translation. */
    if (req->job.sentence_count == 0)
        return send_text(srv, conn, req, method, url, MHD_HTTP_OK, build_reply(srv, req), NULL);

    /* Step 7: queue the job. The texts live in tr, so the raw body can go. */
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

/* Routes a POST translation request once its headers are in. */
static enum MHD_Result route_translate_headers(http_server *srv, struct MHD_Connection *conn,
                                               request_state *req, const char *url,
                                               const char *method)
{
    const char *type, *length;
    char type_text[64];

    if (atomic_load(&srv->stopping)) {
        req->error_kind = METRICS_ERROR_SHUTTING_DOWN;
        return send_error(srv, conn, req, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                          "server is shutting down; retry later");
    }
    type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (translate_request_format(type, &req->format) != 0) {
        printable_copy(type, type_text, sizeof(type_text));
        return send_error(srv, conn, req, method, url, MHD_HTTP_BAD_REQUEST, NULL,
                          "Content-Type %s is not supported; send application/json, "
                          "application/x-www-form-urlencoded or multipart/form-data",
                          type_text);
    }
    length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > srv->config.max_body_bytes)
        return send_error(srv, conn, req, method, url, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                          "request body of %.20s bytes is over the limit of %zu bytes; send "
                          "fewer or shorter texts per request",
                          length, srv->config.max_body_bytes);
    return MHD_YES;
}

/* Routes a request once its headers are in. Returns with an error reply
 * queued, or with none for a valid route. Valid routes reply on a later
 * call: libmicrohttpd 0.9.75 closes the connection after a reply queued
 * in this first call, which would end keep-alive connections. */
static enum MHD_Result route_headers(http_server *srv, struct MHD_Connection *conn,
                                     request_state *req, const char *url, const char *method)
{
    static const struct {
        const char *path;
        route route;
        const char *allow;
    } routes[] = {
        {"/health", ROUTE_HEALTH, "GET, HEAD"},
        {"/ready", ROUTE_READY, "GET, HEAD"},
        {"/languages", ROUTE_LANGUAGES, "GET, HEAD"},
        {"/metrics", ROUTE_METRICS, "GET, HEAD"},
        {"/translate", ROUTE_TRANSLATE, "POST"},
        {"/v1/translate", ROUTE_V1_TRANSLATE, "POST"},
    };
    char method_text[16], path_text[96];
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

    /* Method and path reach error messages only through these copies. */
    printable_copy(method, method_text, sizeof(method_text));
    printable_copy(url, path_text, sizeof(path_text));

    /* The page, its files and the OpenAPI document. */
    req->asset = assets_find(url);
    if (req->asset) {
        req->route = ROUTE_ASSET;
        if (srv->config.cors && strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
            req->route = ROUTE_PREFLIGHT;
            return MHD_YES;
        }
        if (is_get)
            return MHD_YES;
        return send_error(srv, conn, req, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                          "method %s is not allowed on %s; use GET", method_text, path_text);
    }

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int is_post_route = routes[i].route == ROUTE_TRANSLATE ||
                            routes[i].route == ROUTE_V1_TRANSLATE;

        if (strcmp(url, routes[i].path) != 0)
            continue;
        req->route = routes[i].route;
        if (srv->config.cors && strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
            req->route = ROUTE_PREFLIGHT;
            return MHD_YES;
        }
        if (is_post_route && strcmp(method, MHD_HTTP_METHOD_POST) == 0)
            return route_translate_headers(srv, conn, req, url, method);
        if (!is_post_route && is_get)
            return MHD_YES;
        return send_error(srv, conn, req, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                          routes[i].allow, "method %s is not allowed on %s; use %s",
                          method_text, path_text, is_post_route ? "POST" : "GET");
    }
    return send_error(srv, conn, req, method, url, MHD_HTTP_NOT_FOUND, NULL,
                      "no route for %s; use POST /translate, POST /v1/translate, "
                      "GET /languages, GET /health, GET /ready, GET /metrics, "
                      "GET /openapi.json or GET / (the translation page)",
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

/* Creates the state of a new request, or returns NULL when out of memory. */
static request_state *new_request(http_server *srv, struct MHD_Connection *conn)
{
    request_state *req = calloc(1, sizeof(*req));
    unsigned timeout_ms = srv->config.timeout_ms;

    if (!req)
        return NULL;
    req->fd = -1;
    req->error_kind = ERROR_KIND_BY_STATUS;
    atomic_init(&req->phase, PHASE_READING);
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    req->deadline = req->start;
    req->deadline.tv_sec += timeout_ms / 1000;
    req->deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (req->deadline.tv_nsec >= 1000000000L) {
        req->deadline.tv_sec++;
        req->deadline.tv_nsec -= 1000000000L;
    }
    assign_request_id(srv, conn, req);
    return req;
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
        req = new_request(srv, conn);
        if (!req)
            return MHD_NO;
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
        if (req->route == ROUTE_PREFLIGHT)
            return send_preflight(srv, conn, req, method, url,
                                  strcmp(url, "/translate") == 0 ||
                                          strcmp(url, "/v1/translate") == 0
                                      ? "POST, OPTIONS"
                                      : "GET, HEAD, OPTIONS");
        if (req->route != ROUTE_TRANSLATE && req->route != ROUTE_V1_TRANSLATE)
            return reply_get_route(srv, conn, req, method, url);
        if (req->too_large)
            return send_error(srv, conn, req, method, url, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                              "request body is over the limit of %zu bytes; send fewer or "
                              "shorter texts per request",
                              srv->config.max_body_bytes);
        return handle_translate(srv, conn, req, method, url);
    case PHASE_DONE:
        req->resumed = 1;
        reply = req->reply;
        req->reply = NULL;
        return send_text(srv, conn, req, method, url, req->status, reply, NULL);
    case PHASE_CLIENT_GONE:
        req->resumed = 1;
        /* The reply only lets libmicrohttpd finish the request quietly;
         * MHD_NO would make it log an internal error. free_request logs
         * and counts the request. */
        return queue_json(srv, conn, req, MHD_HTTP_BAD_REQUEST,
                          error_json("connection lost before the translation started"),
                          NULL)
                   ? MHD_YES
                   : MHD_NO;
    default:
        return MHD_YES; /* queued: libmicrohttpd calls again after the resume */
    }
}

/* Counts req as client_gone when its client left before its reply went
 * out, and logs a translation job whose reply never went out. A skipped
 * job's 400 only ends the request, so it counts as client_gone alone. */
static void count_client_gone(http_server *srv, const request_state *req,
                              enum MHD_RequestTerminationCode toe)
{
    const char *path = req->route == ROUTE_V1_TRANSLATE ? "/v1/translate" : "/translate";
    request_phase phase = atomic_load(&req->phase);
    int closed_by_client =
        toe == MHD_REQUEST_TERMINATED_READ_ERROR || toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT;
    int closed_on_error = toe == MHD_REQUEST_TERMINATED_WITH_ERROR;

    if (phase == PHASE_CLIENT_GONE) {
        log_request("POST", path, "skipped: connection reset or failed while queued", req);
    } else if (phase == PHASE_DONE && !req->resumed) {
        /* The reply was ready, but libmicrohttpd closed the connection
         * before calling the handler again (see the NOTE on half-closed
         * connections in the file header). */
        if (!closed_by_client && !closed_on_error)
            return;
        log_request("POST", path, "dropped: connection closed before the reply was sent", req);
    } else if (!closed_by_client && !(closed_on_error && req->replied)) {
        return; /* completed, timed out, stopped, or failed inside the daemon */
    }
    metrics_count_error(srv->metrics, METRICS_ERROR_CLIENT_GONE);
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
    if (!req)
        return;
    count_client_gone(srv, req, toe);
    translate_job_free(&req->job);
    translate_request_free(&req->tr);
    free(req->reply);
    free(req->body);
    free(req);
    *con_cls = NULL;
    request_finished(srv);
}

/* Returns nonzero when line, a message of libmicrohttpd, reports only that
 * a client closed or reset its connection, which happens in routine
 * traffic. The texts are those of libmicrohttpd 0.9.75. A read or send
 * failure counts only with a cause that means a lost connection, so one
 * such as "Not enough system resources" is still printed.
 * NOTE: other libmicrohttpd versions may word these messages differently;
 * theirs are printed one by one as before. */
static int is_client_disconnect(const char *line)
{
    static const char *const disconnects[] = {
        "Connection was closed by remote side with incomplete request",
        "Socket has been disconnected when reading request",
    };
    static const char *const failures[] = {
        "Connection socket is closed when reading request due to the error: ",
        "Failed to send the response headers for the request",
        "Failed to send the response body for the request",
        "Failed to send the chunked response body for the request",
        "Failed to send the footers for the request",
    };
    static const char *const lost_connection_causes[] = {
        "The connection was forcibly closed by remote peer",
        "The socket is no longer available for sending",
        "The socket is not connected",
    };

    for (size_t i = 0; i < sizeof(disconnects) / sizeof(disconnects[0]); i++)
        if (strncmp(line, disconnects[i], strlen(disconnects[i])) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        if (strncmp(line, failures[i], strlen(failures[i])) != 0)
            continue;
        for (size_t k = 0; k < sizeof(lost_connection_causes) / sizeof(lost_connection_causes[0]);
             k++)
            if (strstr(line, lost_connection_causes[k]))
                return 1;
    }
    return 0;
}

/* Prints how many disconnect messages were held back since the previous
 * summary, if any. Unless force is set, it prints only the first summary
 * or one DISCONNECT_SUMMARY_MS after the previous one, so a flood of
 * disconnects costs one line a minute. The caller holds srv->mutex. */
static void summarize_disconnects(http_server *srv, int force)
{
    double period_ms = elapsed_ms(&srv->last_summary);

    if (srv->disconnects == 0)
        return;
    if (!force && srv->summary_printed && period_ms < DISCONNECT_SUMMARY_MS)
        return;
    fprintf(stderr, "http: libmicrohttpd reported %llu client disconnect%s in the last %.0f s "
                    "(connections closed or reset mid-request or mid-reply); such reports "
                    "are summarized at most once a minute\n",
            srv->disconnects, srv->disconnects == 1 ? "" : "s", period_ms / 1e3);
    srv->disconnects = 0;
    srv->summary_printed = 1;
    clock_gettime(CLOCK_MONOTONIC, &srv->last_summary);
}

/* Stores libmicrohttpd's message for http_server_start's error while the
 * daemon starts, and prints it to stderr as one line after that, except
 * routine client disconnects, which summarize_disconnects sums up. */
static void log_daemon_message(void *cls, const char *format, va_list ap)
{
    http_server *srv = cls;
    char line[ERROR_SIZE];
    size_t len;

    vsnprintf(line, sizeof(line), format, ap);
    len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (!atomic_load(&srv->started)) {
        memcpy(srv->start_error, line, len + 1);
    } else if (is_client_disconnect(line)) {
        pthread_mutex_lock(&srv->mutex);
        srv->disconnects++;
        summarize_disconnects(srv, 0);
        pthread_mutex_unlock(&srv->mutex);
    } else {
        fprintf(stderr, "http: libmicrohttpd: %s\n", line);
    }
}

/* ---- listening socket and accept thread ---- */

/* Opens a non-blocking TCP socket listening on addr with the settings
 * libmicrohttpd 0.9.75 gives its own: SO_REUSEADDR, IPV6_V6ONLY on an IPv6
 * address (what MHD_USE_IPv6 without MHD_USE_DUAL_STACK sets), and a
 * backlog of SOMAXCONN. Non-blocking, because a connection can be reset
 * between poll and accept4, which must then fail with EAGAIN instead of
 * waiting. Returns the socket, or -1 with a message in err naming address
 * and port. */
static int open_listening_socket(const struct sockaddr *addr, socklen_t addr_len,
                                 const char *address, unsigned short port, char *err,
                                 size_t err_size)
{
    const char *call = "socket";
    int on = 1;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int error;

    if (fd < 0)
        goto fail;
    call = "setsockopt SO_REUSEADDR";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0)
        goto fail;
    call = "setsockopt IPV6_V6ONLY";
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0)
        goto fail;
    call = "bind";
    if (bind(fd, addr, addr_len) != 0)
        goto fail;
    call = "listen";
    if (listen(fd, SOMAXCONN) != 0)
        goto fail;
    return fd;

fail:
    error = errno;
    snprintf(err, err_size, "cannot start HTTP server on %.64s port %u: %s failed: %s%s", address,
             port, call, strerror(error),
             error == EADDRINUSE ? "; stop the server on that port or choose another port" : "");
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Writes a byte to the wake pipe, so that the accept thread checks the
 * connection count and the stop flag again. The pipe is non-blocking, and
 * a full pipe already holds a wake-up, so a failed write is ignored. */
static void wake_acceptor(http_server *srv)
{
    const char byte = 0;
    ssize_t written;

    do
        written = write(srv->wake_pipe[1], &byte, 1);
    while (written < 0 && errno == EINTR);
}

/* Reads the wake pipe empty. */
static void drain_wake_pipe(http_server *srv)
{
    char bytes[64];
    ssize_t got;

    do
        got = read(srv->wake_pipe[0], bytes, sizeof(bytes));
    while (got > 0 || (got < 0 && errno == EINTR));
}

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback, run on its HTTP
 * threads. A closed connection no longer counts against the limit, so it
 * wakes the accept thread, which may be waiting for room. */
static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    http_server *srv = cls;

    (void)conn;
    (void)socket_context;
    if (code != MHD_CONNECTION_NOTIFY_CLOSED)
        return;
    atomic_fetch_sub(&srv->open_connections, 1);
    wake_acceptor(srv);
}

/* Waits timeout_ms, or less when the wake pipe becomes readable. */
static void pause_acceptor(http_server *srv, int timeout_ms)
{
    struct pollfd wake = {.fd = srv->wake_pipe[0], .events = POLLIN};

    poll(&wake, 1, timeout_ms);
}

/* Returns nonzero for an errno of accept4 after which the next connection
 * may be accepted at once. These mean that none is waiting (EAGAIN), that
 * a signal came, or that the connection was aborted, was reset or hit a
 * network error that Linux reports through accept (see accept(2)). */
static int is_transient_accept_error(int error)
{
    switch (error) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* a firewall rule rejected the connection */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return 1;
    default:
        return 0;
    }
}

/* Logs the first failure in a run of failed accept4 or poll calls, such as
 * EMFILE, ENFILE, ENOBUFS or ENOMEM. The accept thread retries every
 * ACCEPT_RETRY_MS, and accept_connection logs the end of the run. */
static void report_accept_failure(http_server *srv, const char *call, const char *cause)
{
    if (srv->accept_failures++ == 0)
        fprintf(stderr, "http: %s failed: %s; new connections wait in the listen backlog, "
                        "retrying every %d ms\n",
                call, cause, ACCEPT_RETRY_MS);
}

/* Accepts one connection and hands it to libmicrohttpd, which picks an HTTP
 * thread for it. Returns 0, or -1 when accept4 failed for a reason that
 * calls for a pause before the next try. */
static int accept_connection(http_server *srv)
{
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    char address[INET6_ADDRSTRLEN];
    int fd = accept4(srv->listen_fd, (struct sockaddr *)&peer, &peer_len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    int error;

    if (fd < 0) {
        error = errno;
        if (is_transient_accept_error(error))
            return 0;
        report_accept_failure(srv, "accept4", strerror(error));
        return -1;
    }
    if (srv->accept_failures > 0) {
        fprintf(stderr, "http: accepting connections again after %lu failed attempt%s\n",
                srv->accept_failures, srv->accept_failures == 1 ? "" : "s");
        srv->accept_failures = 0;
    }

    /* Count the connection before the hand-over, because notify_connection
     * may subtract it on an HTTP thread before MHD_add_connection returns.
     * NOTE: a connection that libmicrohttpd drops after MHD_add_connection
     * returned MHD_YES, which happens when its HTTP thread cannot allocate
     * the connection's memory pool, gets no close notification and stays
     * counted. */
    atomic_fetch_add(&srv->open_connections, 1);
    if (MHD_add_connection(srv->daemon, fd, (const struct sockaddr *)&peer, peer_len) != MHD_YES) {
        error = errno;
        atomic_fetch_sub(&srv->open_connections, 1);
        fprintf(stderr, "http: libmicrohttpd could not take the connection from %s and closed "
                        "it: %s\n",
                sockaddr_text((const struct sockaddr *)&peer, address, sizeof(address))
                    ? address
                    : "an unknown address",
                strerror(error));
    }
    return 0;
}

/* Runs the accept loop. While fewer than connection_limit connections are
 * open, it polls the listening socket and the wake pipe, and accepts. At
 * the limit it polls the wake pipe alone, so new connections wait in the
 * kernel's listen backlog until notify_connection reports a close. The
 * limit is counted here because libmicrohttpd 0.9.75 counts a connection
 * from MHD_add_connection only when an HTTP thread takes it up, and closes
 * it if that thread is full by then ("Failed to start serving new
 * connection"). In trials MHD_stop_daemon then hung. The loop ends when
 * stop_listening sets stop_accepting and wakes it. */
static void *accept_thread(void *arg)
{
    http_server *srv = arg;

    for (;;) {
        struct pollfd fds[2] = {
            {.fd = srv->wake_pipe[0], .events = POLLIN},
            {.fd = -1, .events = POLLIN}, /* poll skips a negative fd */
        };

        /* Drain before checking, so that a wake-up sent after the checks
         * stays in the pipe and ends the poll below. */
        drain_wake_pipe(srv);
        if (atomic_load(&srv->stop_accepting))
            break;
        if (atomic_load(&srv->open_connections) < srv->connection_limit)
            fds[1].fd = srv->listen_fd;

        if (poll(fds, 2, -1) < 0) {
            if (errno != EINTR) {
                report_accept_failure(srv, "poll", strerror(errno));
                pause_acceptor(srv, ACCEPT_RETRY_MS);
            }
            continue;
        }
        if (fds[1].revents & POLLIN) {
            if (accept_connection(srv) != 0)
                pause_acceptor(srv, ACCEPT_RETRY_MS);
        } else if (fds[1].revents != 0) {
            /* POLLERR, POLLHUP or POLLNVAL, none of which a listening
             * socket is expected to report. The pause keeps an unexpected
             * one from becoming a busy loop. */
            const char *event = "POLLERR";

            if (fds[1].revents & POLLHUP)
                event = "POLLHUP";
            if (fds[1].revents & POLLNVAL)
                event = "POLLNVAL";
            report_accept_failure(srv, "poll on the listening socket", event);
            pause_acceptor(srv, ACCEPT_RETRY_MS);
        }
    }
    return NULL;
}

/* ---- public API ---- */

/* Closes the queue and joins the translate threads and the expiry thread.
 * Each translate thread finishes the batch it is running first. */
static void stop_translate_threads(http_server *srv)
{
    job_queue_close(&srv->queue);
    for (unsigned i = 0; i < srv->worker_count; i++)
        pthread_join(srv->workers[i], NULL);
    srv->worker_count = 0;
    if (srv->expiry_started)
        pthread_join(srv->expiry, NULL);
    srv->expiry_started = 0;
}

/* Frees srv and closes its sockets. The accept thread and the daemon must
 * have stopped. */
static void server_free(http_server *srv)
{
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    for (int i = 0; i < 2; i++)
        if (srv->wake_pipe[i] >= 0)
            close(srv->wake_pipe[i]);
    if (srv->queue_ready)
        job_queue_destroy(&srv->queue);
    if (srv->sync_ready) {
        pthread_cond_destroy(&srv->idle);
        pthread_mutex_destroy(&srv->mutex);
    }
    for (size_t i = 0; srv->pairs && i < srv->config.pair_count; i++) {
        free((char *)srv->pairs[i].source);
        free((char *)srv->pairs[i].target);
    }
    free(srv->pairs);
    free(srv->pair_list);
    free(srv->workers);
    free(srv->languages_json);
    free(srv->address);
    metrics_free(srv->metrics);
    free(srv);
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
    if (cfg->max_tokens == 0)
        cfg->max_tokens = DEFAULT_MAX_TOKENS;
    if (cfg->max_batch_sentences == 0)
        cfg->max_batch_sentences = DEFAULT_MAX_BATCH_SENTENCES;
    if (cfg->max_beam_size <= 0)
        cfg->max_beam_size = DEFAULT_MAX_BEAM_SIZE;
    if (cfg->default_beam_size <= 0)
        cfg->default_beam_size = DEFAULT_BEAM_SIZE;
    if (cfg->default_beam_size > cfg->max_beam_size)
        cfg->default_beam_size = cfg->max_beam_size;
    if (cfg->max_length <= 0)
        cfg->max_length = DEFAULT_MAX_LENGTH;
    if (cfg->timeout_ms == 0)
        cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (cfg->grace_seconds == 0)
        cfg->grace_seconds = DEFAULT_GRACE_SECONDS;
}

/* Copies the language pairs into srv and builds the texts derived from
 * them. Returns 0, or -1 when out of memory. */
static int copy_pairs(http_server *srv, const http_config *config)
{
    size_t list_len = 1;

    srv->pairs = calloc(config->pair_count, sizeof(*srv->pairs));
    if (!srv->pairs)
        return -1;
    srv->config.pairs = srv->pairs;
    for (size_t i = 0; i < config->pair_count; i++) {
        srv->pairs[i].source = strdup(config->pairs[i].source);
        srv->pairs[i].target = strdup(config->pairs[i].target);
        if (!srv->pairs[i].source || !srv->pairs[i].target)
            return -1;
        list_len += strlen(config->pairs[i].source) + strlen(config->pairs[i].target) + 3;
    }
    srv->pair_list = malloc(list_len);
    if (!srv->pair_list)
        return -1;
    srv->pair_list[0] = '\0';
    for (size_t i = 0; i < config->pair_count; i++) {
        if (i > 0)
            strcat(srv->pair_list, ", ");
        strcat(srv->pair_list, srv->pairs[i].source);
        strcat(srv->pair_list, "-");
        strcat(srv->pair_list, srv->pairs[i].target);
    }
    srv->languages_json = build_languages_json(srv->pairs, config->pair_count);
    return srv->languages_json ? 0 : -1;
}

/* Checks that config names an address, a translate callback and at least
 * one complete language pair. Returns 0, or -1 with a message in err. */
static int check_config(const http_config *config, char *err, size_t err_size)
{
    if (!config || !config->address || !config->translate) {
        snprintf(err, err_size, "invalid HTTP configuration: address and translate are required");
        return -1;
    }
    if (!config->pairs || config->pair_count == 0) {
        snprintf(err, err_size, "invalid HTTP configuration: no language pair to serve");
        return -1;
    }
    for (size_t i = 0; i < config->pair_count; i++)
        if (!config->pairs[i].source || !config->pairs[i].target) {
            snprintf(err, err_size, "invalid HTTP configuration: language pair %zu lacks a "
                     "source or target code", i);
            return -1;
        }
    return 0;
}

/* Opens the listening socket and the wake pipe of the accept thread, and
 * sets srv->port to the bound port. Returns 0, or -1 with a message in
 * err. */
static int open_sockets(http_server *srv, const struct sockaddr *addr, socklen_t addr_len,
                        char *err, size_t err_size)
{
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);

    srv->listen_fd = open_listening_socket(addr, addr_len, srv->address, srv->config.port, err,
                                           err_size);
    if (srv->listen_fd < 0)
        return -1;
    if (getsockname(srv->listen_fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        snprintf(err, err_size, "cannot start HTTP server on %.64s port %u: getsockname failed: %s",
                 srv->address, srv->config.port, strerror(errno));
        return -1;
    }
    srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    if (pipe2(srv->wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        srv->wake_pipe[0] = srv->wake_pipe[1] = -1;
        snprintf(err, err_size, "cannot start HTTP server: pipe2 failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Starts libmicrohttpd without a listening socket of its own, because the
 * accept thread hands it every connection. Returns 0, or -1 with a message
 * in err. */
static int start_daemon(http_server *srv, char *err, size_t err_size)
{
    /* MHD_USE_ITC wakes an HTTP thread for a connection from
     * MHD_add_connection, to resume suspended connections and to stop.
     * libmicrohttpd 0.9.75 implies it with MHD_ALLOW_SUSPEND_RESUME and
     * MHD_USE_NO_LISTEN_SOCKET, but documents that only in its header. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem options[8];
    size_t option_count = 0;
    unsigned long long daemon_limit;

    /* libmicrohttpd gives each HTTP thread an even share of its connection
     * limit, and MHD_add_connection hands a connection to a thread below
     * its share (daemon.c). The accept thread keeps the total at most
     * connection_limit, so a share of connection_limit + 1 per thread
     * always has room. The extra one covers a thread that has reported a
     * close to notify_connection but not yet subtracted it. */
    daemon_limit = (srv->connection_limit + 1ULL) * srv->config.threads;
    if (daemon_limit > UINT_MAX)
        daemon_limit = UINT_MAX;

    /* libmicrohttpd warns about a pool of one thread, so that option is
     * left out then. */
    options[option_count++] = (struct MHD_OptionItem){
        MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)IDLE_TIMEOUT_SECONDS, NULL};
    options[option_count++] = (struct MHD_OptionItem){
        MHD_OPTION_CONNECTION_LIMIT, (intptr_t)daemon_limit, NULL};
    options[option_count++] = (struct MHD_OptionItem){
        MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)free_request, srv};
    options[option_count++] = (struct MHD_OptionItem){
        MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_connection, srv};
    options[option_count++] = (struct MHD_OptionItem){
        MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)log_daemon_message, srv};
    if (srv->config.threads > 1)
        options[option_count++] = (struct MHD_OptionItem){
            MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)srv->config.threads, NULL};
    options[option_count++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle_access, srv, MHD_OPTION_ARRAY,
                                   options, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, err_size, "cannot start HTTP server on %.64s port %u: %s", srv->address,
                 srv->config.port,
                 srv->start_error[0] ? srv->start_error : "libmicrohttpd failed");
        return -1;
    }
    atomic_store(&srv->started, 1);
    return 0;
}

http_server *http_server_start(const http_config *config, char *err, size_t err_size)
{
    struct sockaddr_in addr4;
    struct sockaddr_in6 addr6;
    struct sockaddr *addr;
    socklen_t addr_len;
    struct timespec now;
    http_server *srv;
    int rc;

    if (check_config(config, err, err_size) != 0)
        return NULL;

    /* Step 1: parse the listen address. */
    memset(&addr4, 0, sizeof(addr4));
    memset(&addr6, 0, sizeof(addr6));
    if (inet_pton(AF_INET, config->address, &addr4.sin_addr) == 1) {
        addr4.sin_family = AF_INET;
        addr4.sin_port = htons(config->port);
        addr = (struct sockaddr *)&addr4;
        addr_len = sizeof(addr4);
    } else if (inet_pton(AF_INET6, config->address, &addr6.sin6_addr) == 1) {
        addr6.sin6_family = AF_INET6;
        addr6.sin6_port = htons(config->port);
        addr = (struct sockaddr *)&addr6;
        addr_len = sizeof(addr6);
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
    srv->config.pairs = NULL;
    srv->listen_fd = -1;
    srv->wake_pipe[0] = srv->wake_pipe[1] = -1;
    srv->address = strdup(config->address);
    srv->config.address = srv->address;
    apply_defaults(&srv->config);
    srv->connection_limit =
        srv->config.max_connections ? srv->config.max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    srv->workers = calloc(srv->config.translate_threads, sizeof(*srv->workers));
    srv->metrics = metrics_create();
    if (!srv->address || copy_pairs(srv, config) != 0 || !srv->workers || !srv->metrics) {
        server_free(srv);
        snprintf(err, err_size, "out of memory starting the HTTP server");
        return NULL;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(srv->id_prefix, sizeof(srv->id_prefix), "%08lx",
             (unsigned long)(((unsigned long)now.tv_sec * 2654435761UL) ^
                             (unsigned long)now.tv_nsec ^ (unsigned long)getpid()) &
                 0xffffffffUL);
    atomic_init(&srv->next_id, 1);
    atomic_init(&srv->open_connections, 0);
    clock_gettime(CLOCK_MONOTONIC, &srv->last_summary);
    metrics_set_models(srv->metrics, srv->config.pair_count);

    /* Step 3: bind the port, before any thread starts, so that a port in
     * use fails fast. */
    if (open_sockets(srv, addr, addr_len, err, err_size) != 0) {
        server_free(srv);
        return NULL;
    }

    /* Step 4: create the job queue and start the translate threads and the
     * expiry thread. */
    srv->sync_ready = init_sync(srv) == 0;
    srv->queue_ready = srv->sync_ready && job_queue_init(&srv->queue, srv->config.max_queue) == 0;
    if (!srv->queue_ready) {
        server_free(srv);
        snprintf(err, err_size, "cannot create the locks of the HTTP server");
        return NULL;
    }
    while (srv->worker_count < srv->config.translate_threads) {
        rc = pthread_create(&srv->workers[srv->worker_count], NULL, translate_thread, srv);

        if (rc != 0) {
            snprintf(err, err_size, "cannot start translate thread %u of %u: %s",
                     srv->worker_count + 1, srv->config.translate_threads, strerror(rc));
            stop_translate_threads(srv);
            server_free(srv);
            return NULL;
        }
        srv->worker_count++;
    }
    rc = pthread_create(&srv->expiry, NULL, expiry_thread, srv);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the expiry thread: %s", strerror(rc));
        stop_translate_threads(srv);
        server_free(srv);
        return NULL;
    }
    srv->expiry_started = 1;

    /* Step 5: start libmicrohttpd, then the accept thread that feeds it. */
    if (start_daemon(srv, err, err_size) != 0) {
        stop_translate_threads(srv);
        server_free(srv);
        return NULL;
    }
    rc = pthread_create(&srv->acceptor, NULL, accept_thread, srv);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the accept thread: %s", strerror(rc));
        MHD_stop_daemon(srv->daemon);
        stop_translate_threads(srv);
        server_free(srv);
        return NULL;
    }
    srv->acceptor_started = 1;
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

        fail_job(req, MHD_HTTP_SERVICE_UNAVAILABLE, METRICS_ERROR_SHUTTING_DOWN,
                 error_json("server stopped before translating this request; retry later"));
        atomic_store(&req->phase, PHASE_DONE);
        MHD_resume_connection(conn); /* req may be freed from here on */
        node = next;
        count++;
    }
    return count;
}

/* Stops accepting: ends the accept thread and closes the listening
 * socket. The kernel then refuses new connections (connect fails with
 * ECONNREFUSED) and resets those still waiting in the listen backlog,
 * while libmicrohttpd carries on with the open ones. */
static void stop_listening(http_server *srv)
{
    if (srv->acceptor_started) {
        atomic_store(&srv->stop_accepting, 1);
        wake_acceptor(srv);
        pthread_join(srv->acceptor, NULL);
        srv->acceptor_started = 0;
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
}

void http_server_stop(http_server *server)
{
    size_t active, rejected;

    if (!server)
        return;

    /* Step 1: stop accepting. Requests that arrive on open connections from
     * now on get 503 and "Connection: close". */
    atomic_store(&server->stopping, 1);
    stop_listening(server);

    /* Step 2: let every request in progress, queued ones included, get its
     * reply within the grace period. */
    active = wait_until_idle(server, 1000LL * server->config.grace_seconds);

    /* Step 3: reply 503 to the jobs still queued, and stop the running
     * ones at their next decoding step with 503. Afterwards no connection
     * is suspended, as MHD_stop_daemon requires. */
    atomic_store(&server->aborting, 1);
    rejected = reject_waiting_jobs(server);
    stop_translate_threads(server);
    if (active > 0) {
        fprintf(stderr, "http: grace period of %u s over with %zu request%s in progress; %zu "
                        "queued translation%s got 503\n",
                server->config.grace_seconds, active, active == 1 ? "" : "s", rejected,
                rejected == 1 ? "" : "s");
        wait_until_idle(server, FLUSH_TIMEOUT_MS);
    }

    /* Step 4: close the remaining connections, and print the disconnects
     * that no summary has reported yet. */
    MHD_stop_daemon(server->daemon);
    pthread_mutex_lock(&server->mutex);
    summarize_disconnects(server, 1);
    pthread_mutex_unlock(&server->mutex);
    server_free(server);
}
