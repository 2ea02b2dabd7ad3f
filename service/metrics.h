/* Prometheus metrics of the translation daemon, rendered in the text
 * exposition format (version 0.0.4) for GET /metrics.
 *
 * Every label value comes from a fixed list in this module: endpoints from
 * metrics_endpoint_label, status codes 100-599, error kinds from
 * metrics_error. No client address, API key, path or text ever becomes a
 * label, so the number of series stays bounded whatever clients send.
 *
 * Thread safety: every function may be called from any thread at once.
 * One mutex guards the registry. Each update locks it for a few additions,
 * and metrics_render keeps it locked while it formats, so a scrape sees
 * one consistent snapshot.
 */
#ifndef SEQMT_METRICS_H
#define SEQMT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Media type of metrics_render's text, for the Content-Type header. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Causes of failed requests, each a value of seqmt_errors_total's kind
 * label. The status codes themselves are in seqmt_requests_total. These
 * kinds separate causes that share a status, such as the two kinds of
 * 503, and causes without a reply, such as a client that left. */
typedef enum {
    METRICS_ERROR_INVALID_REQUEST,    /* "invalid_request": 400, bad body or language pair */
    METRICS_ERROR_FORBIDDEN,          /* "forbidden": 403, missing or unknown API key */
    METRICS_ERROR_BODY_TOO_LARGE,     /* "body_too_large": 413 */
    METRICS_ERROR_RATE_LIMITED,       /* "rate_limited": 429 */
    METRICS_ERROR_QUEUE_FULL,         /* "queue_full": 503, max_queue requests waiting */
    METRICS_ERROR_SHUTTING_DOWN,      /* "shutting_down": 503 while the daemon stops */
    METRICS_ERROR_DEADLINE_EXCEEDED,  /* "deadline_exceeded": the request's deadline passed */
    METRICS_ERROR_TRANSLATION_FAILED, /* "translation_failed": the translate callback failed */
    METRICS_ERROR_OUT_OF_MEMORY,      /* "out_of_memory": an allocation failed */
    METRICS_ERROR_CLIENT_GONE,        /* "client_gone": the client closed before its reply */
    METRICS_ERROR_KIND_COUNT
} metrics_error;

typedef struct metrics metrics;

/* Creates an empty registry: every counter, histogram and gauge at 0.
 * Returns NULL when out of memory. Free it with metrics_free. */
metrics *metrics_create(void);

/* Frees the registry. metrics_free(NULL) does nothing. No other thread may
 * use m during or after the call. */
void metrics_free(metrics *m);

/* Returns the endpoint label for a request path: the path itself when it is
 * one of "/", "/translate", "/v1/translate", "/languages", "/health",
 * "/ready", "/metrics" and "/openapi.json", otherwise "other". NULL gives
 * "other". The match is exact: no query string, no trailing slash. The
 * returned string is static. */
const char *metrics_endpoint_label(const char *path);

/* Counts one request that got a reply: adds 1 to
 * seqmt_requests_total{endpoint, code} and observes seconds in
 * seqmt_request_duration_seconds{endpoint}. path goes through
 * metrics_endpoint_label, so callers may pass the raw path. Call it once
 * per request, when the reply is queued, with the time since the request's
 * headers arrived. Returns 0, or -1 without counting anything when status
 * is outside 100-599 or seconds is negative or not a number. */
int metrics_observe_request(metrics *m, const char *path, unsigned status, double seconds);

/* Adds 1 to seqmt_errors_total{kind}. Returns 0, or -1 when kind is not a
 * metrics_error value. */
int metrics_count_error(metrics *m, metrics_error kind);

/* Adds to seqmt_translated_sentences_total and
 * seqmt_translated_tokens_total. tokens counts the source tokens after
 * tokenization (and BPE for subword models), the unit the encoder reads. */
void metrics_add_translated(metrics *m, uint64_t sentences, uint64_t tokens);

/* Observes the number of sentences in one call of the translate callback
 * in the seqmt_batch_sentences histogram. With dynamic batching one call
 * carries the texts of several requests. */
void metrics_observe_batch(metrics *m, size_t sentences);

/* Sets the seqmt_queue_depth gauge: requests waiting for a translate
 * thread now. */
void metrics_set_queue_depth(metrics *m, size_t depth);

/* Sets the seqmt_models_loaded gauge. */
void metrics_set_models(metrics *m, size_t count);

/* Renders every metric in the text exposition format: for each metric a
 * "# HELP" and a "# TYPE" line, then its samples. Counters and gauges
 * without labels always appear. seqmt_errors_total lists every kind,
 * zeros included. Requests and durations list only the endpoints and codes
 * seen so far. Returns a malloc'd NUL-terminated string that the caller
 * frees, or NULL when out of memory. */
char *metrics_render(metrics *m);

#endif
