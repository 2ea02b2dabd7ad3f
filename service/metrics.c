/* Prometheus registry of the daemon: fixed arrays of counters indexed by
 * endpoint, status code and error kind, two histograms and two gauges,
 * behind one mutex (see metrics.h).
 *
 * Histograms store the count of each bucket alone and add them up when
 * rendering, so an observation touches one bucket. Numbers are printed
 * with printf's %g family, which writes a '.' decimal point because the
 * daemon never calls setlocale.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const endpoint_labels[] = {
    "/",      "/translate", "/v1/translate", "/languages", "/health",
    "/ready", "/metrics",   "/openapi.json", "other",
};
#define ENDPOINT_COUNT (sizeof(endpoint_labels) / sizeof(endpoint_labels[0]))
#define ENDPOINT_OTHER (ENDPOINT_COUNT - 1)

static const char *const error_labels[METRICS_ERROR_KIND_COUNT] = {
    [METRICS_ERROR_INVALID_REQUEST] = "invalid_request",
    [METRICS_ERROR_FORBIDDEN] = "forbidden",
    [METRICS_ERROR_BODY_TOO_LARGE] = "body_too_large",
    [METRICS_ERROR_RATE_LIMITED] = "rate_limited",
    [METRICS_ERROR_QUEUE_FULL] = "queue_full",
    [METRICS_ERROR_SHUTTING_DOWN] = "shutting_down",
    [METRICS_ERROR_DEADLINE_EXCEEDED] = "deadline_exceeded",
    [METRICS_ERROR_TRANSLATION_FAILED] = "translation_failed",
    [METRICS_ERROR_OUT_OF_MEMORY] = "out_of_memory",
    [METRICS_ERROR_CLIENT_GONE] = "client_gone",
};

/* Upper bounds of the duration buckets in seconds: a cached GET takes
 * milliseconds, one sentence with beam 5 tens of milliseconds, and a full
 * request of 128 texts on a busy server up to a minute. */
static const double duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60};
#define DURATION_BUCKETS (sizeof(duration_bounds) / sizeof(duration_bounds[0]))

/* Upper bounds of the batch-size buckets in sentences. */
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
#define BATCH_BUCKETS (sizeof(batch_bounds) / sizeof(batch_bounds[0]))

#define STATUS_MIN 100
#define STATUS_MAX 599
#define STATUS_COUNT (STATUS_MAX - STATUS_MIN + 1)

/* One histogram series. buckets[i] counts observations in
 * (bounds[i-1], bounds[i]]; buckets[nbounds] counts those above the last
 * bound, the +Inf bucket's own share. */
typedef struct {
    uint64_t buckets[DURATION_BUCKETS + 1];
    uint64_t count;
    double sum;
} histogram;

struct metrics {
    pthread_mutex_t mutex;
    uint64_t requests[ENDPOINT_COUNT][STATUS_COUNT];
    histogram durations[ENDPOINT_COUNT];
    histogram batches; /* uses BATCH_BUCKETS + 1 of the buckets */
    uint64_t errors[METRICS_ERROR_KIND_COUNT];
    uint64_t sentences, tokens;
    uint64_t queue_depth, models;
};

_Static_assert(BATCH_BUCKETS <= DURATION_BUCKETS, "histogram.buckets is sized for durations");

metrics *metrics_create(void)
{
    metrics *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mutex, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mutex);
    free(m);
}

static size_t endpoint_index(const char *path)
{
    for (size_t i = 0; path && i < ENDPOINT_OTHER; i++)
        if (strcmp(path, endpoint_labels[i]) == 0)
            return i;
    return ENDPOINT_OTHER;
}

const char *metrics_endpoint_label(const char *path)
{
    return endpoint_labels[endpoint_index(path)];
}

/* Adds value to h, whose bucket bounds are bounds[0..nbounds). */
static void histogram_observe(histogram *h, const double *bounds, size_t nbounds, double value)
{
    size_t i = 0;

    while (i < nbounds && value > bounds[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += value;
}

int metrics_observe_request(metrics *m, const char *path, unsigned status, double seconds)
{
    size_t e = endpoint_index(path);

    if (status < STATUS_MIN || status > STATUS_MAX || isnan(seconds) || seconds < 0)
        return -1;
    pthread_mutex_lock(&m->mutex);
    m->requests[e][status - STATUS_MIN]++;
    histogram_observe(&m->durations[e], duration_bounds, DURATION_BUCKETS, seconds);
    pthread_mutex_unlock(&m->mutex);
    return 0;
}

int metrics_count_error(metrics *m, metrics_error kind)
{
    if ((int)kind < 0 || kind >= METRICS_ERROR_KIND_COUNT)
        return -1;
    pthread_mutex_lock(&m->mutex);
    m->errors[kind]++;
    pthread_mutex_unlock(&m->mutex);
    return 0;
}

void metrics_add_translated(metrics *m, uint64_t sentences, uint64_t tokens)
{
    pthread_mutex_lock(&m->mutex);
    m->sentences += sentences;
    m->tokens += tokens;
    pthread_mutex_unlock(&m->mutex);
}

void metrics_observe_batch(metrics *m, size_t sentences)
{
    pthread_mutex_lock(&m->mutex);
    histogram_observe(&m->batches, batch_bounds, BATCH_BUCKETS, (double)sentences);
    pthread_mutex_unlock(&m->mutex);
}

void metrics_set_queue_depth(metrics *m, size_t depth)
{
    pthread_mutex_lock(&m->mutex);
    m->queue_depth = depth;
    pthread_mutex_unlock(&m->mutex);
}

void metrics_set_models(metrics *m, size_t count)
{
    pthread_mutex_lock(&m->mutex);
    m->models = count;
    pthread_mutex_unlock(&m->mutex);
}

/* ---- rendering ---- */

/* Growing output buffer. failed sticks once an allocation fails, so the
 * render functions append without checking and the caller checks once. */
typedef struct {
    char *text;
    size_t len, cap;
    int failed;
} text_buffer;

static void append(text_buffer *b, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void append(text_buffer *b, const char *format, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    va_start(ap, format);
    n = vsnprintf(b->text + b->len, b->cap - b->len, format, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        size_t cap = b->cap * 2;
        char *grown;

        while (cap - b->len <= (size_t)n)
            cap *= 2;
        grown = realloc(b->text, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->text = grown;
        b->cap = cap;
        va_start(ap, format);
        vsnprintf(b->text + b->len, b->cap - b->len, format, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

static void append_header(text_buffer *b, const char *name, const char *type, const char *help)
{
    append(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends the _bucket, _sum and _count samples of one histogram series.
 * labels is the series' own labels followed by a comma ("endpoint=\"/\","),
 * or "" for none. */
static void append_histogram(text_buffer *b, const char *name, const char *labels,
                             const histogram *h, const double *bounds, size_t nbounds)
{
    uint64_t cumulative = 0;
    size_t labels_len = strlen(labels);

    for (size_t i = 0; i < nbounds; i++) {
        cumulative += h->buckets[i];
        append(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, bounds[i],
               (unsigned long long)cumulative);
    }
    cumulative += h->buckets[nbounds];
    append(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cumulative);

    /* _sum and _count take the labels without the trailing comma. */
    if (labels_len > 0) {
        append(b, "%s_sum{%.*s} %.17g\n", name, (int)(labels_len - 1), labels, h->sum);
        append(b, "%s_count{%.*s} %llu\n", name, (int)(labels_len - 1), labels,
               (unsigned long long)h->count);
    } else {
        append(b, "%s_sum %.17g\n", name, h->sum);
        append(b, "%s_count %llu\n", name, (unsigned long long)h->count);
    }
}

static void render_requests(text_buffer *b, const metrics *m)
{
    char labels[64];

    append_header(b, "seqmt_requests_total", "counter",
                  "HTTP requests that got a reply, by endpoint and status code.");
    for (size_t e = 0; e < ENDPOINT_COUNT; e++)
        for (size_t s = 0; s < STATUS_COUNT; s++)
            if (m->requests[e][s] > 0)
                append(b, "seqmt_requests_total{endpoint=\"%s\",code=\"%zu\"} %llu\n",
                       endpoint_labels[e], s + STATUS_MIN, (unsigned long long)m->requests[e][s]);

    append_header(b, "seqmt_request_duration_seconds", "histogram",
                  "Time from a request's headers to its reply, in seconds, by endpoint.");
    for (size_t e = 0; e < ENDPOINT_COUNT; e++) {
        if (m->durations[e].count == 0)
            continue;
        snprintf(labels, sizeof(labels), "endpoint=\"%s\",", endpoint_labels[e]);
        append_histogram(b, "seqmt_request_duration_seconds", labels, &m->durations[e],
                         duration_bounds, DURATION_BUCKETS);
    }

    append_header(b, "seqmt_errors_total", "counter", "Failed requests, by cause.");
    for (size_t k = 0; k < METRICS_ERROR_KIND_COUNT; k++)
        append(b, "seqmt_errors_total{kind=\"%s\"} %llu\n", error_labels[k],
               (unsigned long long)m->errors[k]);
}

static void render_translation(text_buffer *b, const metrics *m)
{
    append_header(b, "seqmt_translated_sentences_total", "counter", "Sentences translated.");
    append(b, "seqmt_translated_sentences_total %llu\n", (unsigned long long)m->sentences);
    append_header(b, "seqmt_translated_tokens_total", "counter",
                  "Source tokens translated, as the model's tokenizer splits them.");
    append(b, "seqmt_translated_tokens_total %llu\n", (unsigned long long)m->tokens);

    append_header(b, "seqmt_batch_sentences", "histogram",
                  "Sentences per call of the translation engine.");
    append_histogram(b, "seqmt_batch_sentences", "", &m->batches, batch_bounds, BATCH_BUCKETS);

    append_header(b, "seqmt_queue_depth", "gauge", "Requests waiting for a translate thread.");
    append(b, "seqmt_queue_depth %llu\n", (unsigned long long)m->queue_depth);
    append_header(b, "seqmt_models_loaded", "gauge", "Models loaded and serving.");
    append(b, "seqmt_models_loaded %llu\n", (unsigned long long)m->models);
}

char *metrics_render(metrics *m)
{
    text_buffer b = {.cap = 4096};

    b.text = malloc(b.cap);
    if (!b.text)
        return NULL;
    b.text[0] = '\0';
    pthread_mutex_lock(&m->mutex);
    render_requests(&b, m);
    render_translation(&b, m);
    pthread_mutex_unlock(&m->mutex);
    if (b.failed) {
        free(b.text);
        return NULL;
    }
    return b.text;
}
