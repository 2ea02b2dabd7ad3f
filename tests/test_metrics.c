/* Tests of the Prometheus registry (metrics.h).
 *
 * Every render is checked by a strict parser of the text exposition format
 * written here: each line is a "# HELP", a "# TYPE" or a sample of the
 * family the last TYPE named; names and label names follow Prometheus'
 * grammar; values are numbers or "+Inf"; every histogram series has
 * ascending le bounds, non-decreasing cumulative counts, a last bucket
 * le="+Inf" equal to its _count, and a _sum. Values are then looked up by
 * name and exact label text.
 */
#include "metrics.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES 2048
#define MAX_FAMILIES 64
#define NAME_SIZE 96
#define LABELS_SIZE 160

/* ---- parser of the text format ---- */

typedef struct {
    char name[NAME_SIZE];
    char labels[LABELS_SIZE]; /* text between the braces, "" without labels */
    double value;
} sample;

typedef struct {
    char name[NAME_SIZE];
    char type[16];
} family;

typedef struct {
    sample samples[MAX_SAMPLES];
    size_t nsamples;
    family families[MAX_FAMILIES];
    size_t nfamilies;
    char error[512]; /* first problem found, "" when the text is valid */
} parsed;

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Copies the metric or label name at *p into out and advances *p. Returns
 * its length, 0 when *p has no name or it does not fit. */
static size_t read_name(const char **p, char *out, size_t size, int allow_colon)
{
    size_t n = 0;

    if (!is_name_start(**p) || (!allow_colon && **p == ':'))
        return 0;
    while (is_name_char((*p)[n]) && (allow_colon || (*p)[n] != ':')) {
        if (n + 1 >= size)
            return 0;
        out[n] = (*p)[n];
        n++;
    }
    out[n] = '\0';
    *p += n;
    return n;
}

/* Parses the label set that starts at *p just after '{' and ends at '}'.
 * Label values may not contain a quote, a backslash or a newline: this
 * registry never needs escapes. Stores the text between the braces. */
static int read_labels(const char **p, char *out, size_t size)
{
    const char *start = *p;
    char label[NAME_SIZE];

    for (;;) {
        if (!read_name(p, label, sizeof(label), 0) || **p != '=' || (*p)[1] != '"')
            return -1;
        *p += 2;
        while (**p && **p != '"' && **p != '\\' && **p != '\n')
            (*p)++;
        if (**p != '"')
            return -1;
        (*p)++;
        if (**p == '}')
            break;
        if (**p != ',')
            return -1;
        (*p)++;
    }
    if ((size_t)(*p - start) >= size)
        return -1;
    memcpy(out, start, (size_t)(*p - start));
    out[*p - start] = '\0';
    (*p)++;
    return 0;
}

static int parse_value(const char *text, double *value)
{
    char *end;

    if (strcmp(text, "+Inf") == 0) {
        *value = INFINITY;
        return 0;
    }
    *value = strtod(text, &end);
    return end == text || *end != '\0' || isnan(*value) ? -1 : 0;
}

/* Returns nonzero when sample name belongs to the family f. */
static int sample_in_family(const char *name, const family *f)
{
    size_t n = strlen(f->name);
    static const char *const histogram_suffixes[] = {"_bucket", "_sum", "_count"};

    if (strcmp(name, f->name) == 0)
        return strcmp(f->type, "histogram") != 0;
    if (strcmp(f->type, "histogram") != 0 || strncmp(name, f->name, n) != 0)
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (strcmp(name + n, histogram_suffixes[i]) == 0)
            return 1;
    return 0;
}

/* Parses a "# HELP" or "# TYPE" line. help_name stores the name of the
 * last HELP line until the TYPE line of that name, which must follow it. */
static int parse_comment(parsed *out, const char *line, char *help_name)
{
    char name[NAME_SIZE];
    const char *p = line + 7;

    if (strncmp(line, "# HELP ", 7) == 0) {
        if (help_name[0] || !read_name(&p, name, sizeof(name), 1) || *p != ' ' ||
            p[1] == '\0')
            return -1;
        memcpy(help_name, name, NAME_SIZE);
        return 0;
    }
    if (strncmp(line, "# TYPE ", 7) != 0 || !read_name(&p, name, sizeof(name), 1) || *p != ' ')
        return -1;
    p++;
    if (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 && strcmp(p, "histogram") != 0)
        return -1;

    /* The HELP line of the same name comes just before. */
    if (strcmp(help_name, name) != 0)
        return -1;
    for (size_t i = 0; i < out->nfamilies; i++)
        if (strcmp(out->families[i].name, name) == 0)
            return -1;
    if (out->nfamilies == MAX_FAMILIES)
        return -1;
    if (strcmp(p, "counter") == 0 &&
        (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0))
        return -1;
    snprintf(out->families[out->nfamilies].name, NAME_SIZE, "%s", name);
    snprintf(out->families[out->nfamilies].type, 16, "%s", p);
    out->nfamilies++;
    help_name[0] = '\0';
    return 0;
}

static int parse_sample(parsed *out, const char *line)
{
    sample *s;
    const char *p = line;

    if (out->nsamples == MAX_SAMPLES || out->nfamilies == 0)
        return -1;
    s = &out->samples[out->nsamples];
    if (!read_name(&p, s->name, sizeof(s->name), 1))
        return -1;
    s->labels[0] = '\0';
    if (*p == '{') {
        p++;
        if (read_labels(&p, s->labels, sizeof(s->labels)) != 0)
            return -1;
    }
    if (*p != ' ' || parse_value(p + 1, &s->value) != 0)
        return -1;
    if (!sample_in_family(s->name, &out->families[out->nfamilies - 1]))
        return -1;
    out->nsamples++;
    return 0;
}

/* Parses text into out line by line. Returns 0, or -1 with out->error
 * naming the first invalid line. */
static int parse_exposition(const char *text, parsed *out)
{
    char help_name[NAME_SIZE] = "";
    char line[512];
    size_t number = 0;

    memset(out, 0, sizeof(*out));
    while (*text) {
        const char *newline = strchr(text, '\n');
        size_t len;
        int rc;

        number++;
        if (!newline) {
            snprintf(out->error, sizeof(out->error), "line %zu has no final newline", number);
            return -1;
        }
        len = (size_t)(newline - text);
        if (len == 0 || len >= sizeof(line)) {
            snprintf(out->error, sizeof(out->error), "line %zu is empty or too long", number);
            return -1;
        }
        memcpy(line, text, len);
        line[len] = '\0';
        if (line[0] == '#')
            rc = parse_comment(out, line, help_name);
        else
            rc = help_name[0] ? -1 : parse_sample(out, line);
        if (rc != 0) {
            snprintf(out->error, sizeof(out->error), "line %zu is invalid: %.200s", number, line);
            return -1;
        }
        text = newline + 1;
    }
    if (help_name[0]) {
        snprintf(out->error, sizeof(out->error), "# HELP %s has no # TYPE line", help_name);
        return -1;
    }
    return 0;
}

/* Checks every histogram series in out. Returns 0, or -1 with out->error
 * naming the series. */
static int check_histograms(parsed *out)
{
    for (size_t i = 0; i < out->nsamples; i++) {
        const sample *first = &out->samples[i];
        const char *le = strstr(first->labels, "le=\"");
        char base[NAME_SIZE], series[LABELS_SIZE], other[LABELS_SIZE];
        double previous_bound = -INFINITY, previous_count = 0;
        size_t n = strlen(first->name), j = i, prefix;
        int has_sum = 0, has_count = 0;

        if (n < 7 || strcmp(first->name + n - 7, "_bucket") != 0)
            continue;
        if (i > 0 && strcmp(out->samples[i - 1].name, first->name) == 0)
            continue; /* not the first bucket of its series */
        if (!le) {
            snprintf(out->error, sizeof(out->error), "%s has no le label", first->name);
            return -1;
        }

        /* The series' labels: everything before le, without its comma. */
        prefix = (size_t)(le - first->labels);
        snprintf(series, sizeof(series), "%.*s", (int)(prefix ? prefix - 1 : 0), first->labels);
        snprintf(base, sizeof(base), "%.*s", (int)(n - 7), first->name);

        /* Buckets: ascending bounds, cumulative counts, ending in +Inf. */
        for (; j < out->nsamples && strcmp(out->samples[j].name, first->name) == 0; j++) {
            const sample *b = &out->samples[j];
            double bound;
            char text[32];

            if (strncmp(b->labels, first->labels, prefix) != 0 ||
                sscanf(b->labels + prefix, "le=\"%31[^\"]\"", text) != 1 ||
                parse_value(text, &bound) != 0 || !(bound > previous_bound) ||
                b->value < previous_count) {
                snprintf(out->error, sizeof(out->error), "%s{%s} breaks the bucket order",
                         b->name, b->labels);
                return -1;
            }
            previous_bound = bound;
            previous_count = b->value;
        }
        if (!isinf(previous_bound)) {
            snprintf(out->error, sizeof(out->error), "%s{%s} has no +Inf bucket", first->name,
                     series);
            return -1;
        }

        /* _sum and _count follow with the series' labels. */
        for (; j < out->nsamples && strncmp(out->samples[j].name, base, strlen(base)) == 0; j++) {
            snprintf(other, sizeof(other), "%s", out->samples[j].labels);
            if (strcmp(other, series) != 0)
                break;
            if (strcmp(out->samples[j].name + strlen(base), "_sum") == 0)
                has_sum = 1;
            if (strcmp(out->samples[j].name + strlen(base), "_count") == 0) {
                has_count = 1;
                if (out->samples[j].value != previous_count) {
                    snprintf(out->error, sizeof(out->error),
                             "%s_count{%s} is %g but the +Inf bucket is %g", base, series,
                             out->samples[j].value, previous_count);
                    return -1;
                }
            }
        }
        if (!has_sum || !has_count) {
            snprintf(out->error, sizeof(out->error), "%s{%s} lacks _sum or _count", base, series);
            return -1;
        }
    }
    return 0;
}

/* Renders m and parses it into out (static: too large for the stack).
 * Fails the calling test with the parser's message on invalid text. */
static parsed *render_and_parse(metrics *m)
{
    static parsed out;
    char *text = metrics_render(m);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (parse_exposition(text, &out) != 0 || check_histograms(&out) != 0) {
        fprintf(stderr, "\ninvalid exposition: %s\n%s\n", out.error, text);
        CU_FAIL("rendered text is not valid exposition format");
    }
    free(text);
    return &out;
}

/* Returns the value of the sample with exactly this name and label text,
 * or NAN when there is none. */
static double value_of(const parsed *p, const char *name, const char *labels)
{
    for (size_t i = 0; i < p->nsamples; i++)
        if (strcmp(p->samples[i].name, name) == 0 && strcmp(p->samples[i].labels, labels) == 0)
            return p->samples[i].value;
    return NAN;
}

static const char *type_of(const parsed *p, const char *name)
{
    for (size_t i = 0; i < p->nfamilies; i++)
        if (strcmp(p->families[i].name, name) == 0)
            return p->families[i].type;
    return "";
}

static size_t count_samples(const parsed *p, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < p->nsamples; i++)
        n += strcmp(p->samples[i].name, name) == 0;
    return n;
}

/* ---- tests ---- */

static void test_parser_rejects_bad_text(void)
{
    static parsed p;

    /* The parser itself must fail on broken text, or the tests prove nothing. */
    CU_ASSERT_EQUAL(parse_exposition("# HELP a_total x\n# TYPE a_total counter\na_total 1\n", &p),
                    0);
    CU_ASSERT_NOT_EQUAL(parse_exposition("a_total 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(parse_exposition("# TYPE a_total counter\na_total 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(parse_exposition("# HELP a_total x\n# TYPE a_total counter\na_total x\n",
                                         &p),
                        0);
    CU_ASSERT_NOT_EQUAL(parse_exposition("# HELP a x\n# TYPE a counter\na 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(
        parse_exposition("# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v} 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(parse_exposition("# HELP a_total x\n# TYPE a_total counter\nb_total 1\n",
                                         &p),
                        0);
    CU_ASSERT_NOT_EQUAL(parse_exposition("# HELP g x\n# TYPE g gauge\ng 1", &p), 0);

    /* And the histogram check on a +Inf bucket that differs from _count. */
    CU_ASSERT_EQUAL(parse_exposition("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                                     "h_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n",
                                     &p),
                    0);
    CU_ASSERT_NOT_EQUAL(check_histograms(&p), 0);
    CU_ASSERT_EQUAL(parse_exposition("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                                     "h_bucket{le=\"+Inf\"} 1\nh_sum 3\nh_count 1\n",
                                     &p),
                    0);
    CU_ASSERT_NOT_EQUAL(check_histograms(&p), 0);
}

static void test_empty_registry_renders(void)
{
    metrics *m = metrics_create();
    const parsed *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    p = render_and_parse(m);
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_requests_total"), "counter");
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_request_duration_seconds"), "histogram");
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_errors_total"), "counter");
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_translated_sentences_total"), "counter");
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_translated_tokens_total"), "counter");
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_batch_sentences"), "histogram");
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_queue_depth"), "gauge");
    CU_ASSERT_STRING_EQUAL(type_of(p, "seqmt_models_loaded"), "gauge");
    CU_ASSERT_EQUAL(count_samples(p, "seqmt_requests_total"), 0);
    CU_ASSERT_EQUAL(count_samples(p, "seqmt_request_duration_seconds_count"), 0);
    CU_ASSERT_EQUAL(count_samples(p, "seqmt_errors_total"), METRICS_ERROR_KIND_COUNT);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_errors_total", "kind=\"queue_full\""), 0);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_translated_sentences_total", ""), 0);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_count", ""), 0);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_bucket", "le=\"+Inf\""), 0);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_queue_depth", ""), 0);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_models_loaded", ""), 0);
    metrics_free(m);
}

static void test_request_counts_by_code(void)
{
    metrics *m = metrics_create();
    const parsed *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 200, 0.1), 0);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 200, 0.1), 0);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 400, 0.001), 0);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/health", 200, 0.0), 0);
    p = render_and_parse(m);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_requests_total", "endpoint=\"/translate\",code=\"200\""), 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_requests_total", "endpoint=\"/translate\",code=\"400\""), 1);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_requests_total", "endpoint=\"/health\",code=\"200\""), 1);
    CU_ASSERT_EQUAL(count_samples(p, "seqmt_requests_total"), 3);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_count", "endpoint=\"/translate\""),
                    3);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_count", "endpoint=\"/health\""), 1);
    CU_ASSERT_EQUAL(count_samples(p, "seqmt_request_duration_seconds_count"), 2);
    metrics_free(m);
}

static void test_duration_buckets(void)
{
    metrics *m = metrics_create();
    const char *name = "seqmt_request_duration_seconds_bucket";
    const parsed *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_observe_request(m, "/translate", 200, 0.003);
    metrics_observe_request(m, "/translate", 200, 0.005); /* a bound is inclusive */
    metrics_observe_request(m, "/translate", 200, 0.2);
    metrics_observe_request(m, "/translate", 200, 100.0); /* above the last bound */
    p = render_and_parse(m);
    CU_ASSERT_EQUAL(value_of(p, name, "endpoint=\"/translate\",le=\"0.005\""), 2);
    CU_ASSERT_EQUAL(value_of(p, name, "endpoint=\"/translate\",le=\"0.1\""), 2);
    CU_ASSERT_EQUAL(value_of(p, name, "endpoint=\"/translate\",le=\"0.25\""), 3);
    CU_ASSERT_EQUAL(value_of(p, name, "endpoint=\"/translate\",le=\"60\""), 3);
    CU_ASSERT_EQUAL(value_of(p, name, "endpoint=\"/translate\",le=\"+Inf\""), 4);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_count", "endpoint=\"/translate\""),
                    4);
    /* 0.003 + 0.005 + 0.2 + 100 to within rounding of %.17g. */
    CU_ASSERT_DOUBLE_EQUAL(
        value_of(p, "seqmt_request_duration_seconds_sum", "endpoint=\"/translate\""), 100.208,
        1e-9);
    metrics_free(m);
}

static void test_unknown_paths_are_other(void)
{
    metrics *m = metrics_create();
    const char *hostile = "/x\"} 1\nseqmt_requests_total{endpoint=\"/evil";
    char *text;
    const parsed *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(metrics_endpoint_label("/translate"), "/translate");
    CU_ASSERT_STRING_EQUAL(metrics_endpoint_label("/"), "/");
    CU_ASSERT_STRING_EQUAL(metrics_endpoint_label("/translate/"), "other");
    CU_ASSERT_STRING_EQUAL(metrics_endpoint_label("/translate?q=x"), "other");
    CU_ASSERT_STRING_EQUAL(metrics_endpoint_label(""), "other");
    CU_ASSERT_STRING_EQUAL(metrics_endpoint_label(NULL), "other");

    metrics_observe_request(m, "/wp-login.php", 404, 0.001);
    metrics_observe_request(m, hostile, 404, 0.001);
    metrics_observe_request(m, NULL, 404, 0.001);
    text = metrics_render(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NULL(strstr(text, "wp-login"));
    CU_ASSERT_PTR_NULL(strstr(text, "evil"));
    free(text);
    p = render_and_parse(m);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_requests_total", "endpoint=\"other\",code=\"404\""), 3);
    CU_ASSERT_EQUAL(count_samples(p, "seqmt_requests_total"), 1);
    metrics_free(m);
}

static void test_invalid_observations_ignored(void)
{
    metrics *m = metrics_create();
    const parsed *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 99, 0.1), -1);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 600, 0.1), -1);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 0, 0.1), -1);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 200, -0.5), -1);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 200, NAN), -1);
    CU_ASSERT_EQUAL(metrics_count_error(m, METRICS_ERROR_KIND_COUNT), -1);
    CU_ASSERT_EQUAL(metrics_count_error(m, (metrics_error)-1), -1);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 100, 0.1), 0);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 599, 0.1), 0);
    p = render_and_parse(m);
    CU_ASSERT_EQUAL(count_samples(p, "seqmt_requests_total"), 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_count", "endpoint=\"/translate\""),
                    2);
    metrics_free(m);
}

static void test_translated_batches_gauges(void)
{
    metrics *m = metrics_create();
    const char *bucket = "seqmt_batch_sentences_bucket";
    const parsed *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_add_translated(m, 3, 40);
    metrics_add_translated(m, 1, 2);
    metrics_observe_batch(m, 1);
    metrics_observe_batch(m, 3);
    metrics_observe_batch(m, 4);
    metrics_observe_batch(m, 1000);
    metrics_set_queue_depth(m, 7);
    metrics_set_queue_depth(m, 5);
    metrics_set_models(m, 2);
    CU_ASSERT_EQUAL(metrics_count_error(m, METRICS_ERROR_QUEUE_FULL), 0);
    CU_ASSERT_EQUAL(metrics_count_error(m, METRICS_ERROR_QUEUE_FULL), 0);
    CU_ASSERT_EQUAL(metrics_count_error(m, METRICS_ERROR_CLIENT_GONE), 0);
    p = render_and_parse(m);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_translated_sentences_total", ""), 4);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_translated_tokens_total", ""), 42);
    CU_ASSERT_EQUAL(value_of(p, bucket, "le=\"1\""), 1);
    CU_ASSERT_EQUAL(value_of(p, bucket, "le=\"2\""), 1);
    CU_ASSERT_EQUAL(value_of(p, bucket, "le=\"4\""), 3);
    CU_ASSERT_EQUAL(value_of(p, bucket, "le=\"512\""), 3);
    CU_ASSERT_EQUAL(value_of(p, bucket, "le=\"+Inf\""), 4);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_sum", ""), 1008);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_count", ""), 4);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_queue_depth", ""), 5);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_models_loaded", ""), 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_errors_total", "kind=\"queue_full\""), 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_errors_total", "kind=\"client_gone\""), 1);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_errors_total", "kind=\"rate_limited\""), 0);
    metrics_free(m);
}

/* ---- concurrency ---- */

#define WRITER_THREADS 8
#define OPS_PER_THREAD 20000

typedef struct {
    metrics *m;
    int stop;            /* set by the main thread when the writers are done */
    int renders;         /* renders checked by the reader */
    int invalid_renders; /* renders that did not parse */
    pthread_mutex_t mutex;
} shared_state;

/* Each writer makes the same fixed sequence of updates, so the totals are
 * known exactly. Durations 0.25 and 0.5 add up without rounding. */
static void *writer(void *arg)
{
    shared_state *s = arg;

    for (int i = 0; i < OPS_PER_THREAD; i++) {
        metrics_observe_request(s->m, "/translate", 200, 0.25);
        metrics_observe_request(s->m, "/health", i % 2 ? 200 : 503, 0.5);
        metrics_add_translated(s->m, 2, 15);
        metrics_observe_batch(s->m, (size_t)(i % 4) + 1);
        metrics_count_error(s->m, METRICS_ERROR_RATE_LIMITED);
        metrics_set_queue_depth(s->m, (size_t)i);
    }
    return NULL;
}

/* Renders and parses until the writers stop, so that rendering runs
 * concurrently with updates. Uses its own parse buffer. */
static void *reader(void *arg)
{
    shared_state *s = arg;
    parsed *p = malloc(sizeof(*p));
    int stop = 0;

    while (p && !stop) {
        char *text = metrics_render(s->m);
        int invalid = !text || parse_exposition(text, p) != 0 || check_histograms(p) != 0;

        free(text);
        pthread_mutex_lock(&s->mutex);
        s->renders++;
        s->invalid_renders += invalid;
        stop = s->stop;
        pthread_mutex_unlock(&s->mutex);
    }
    free(p);
    return NULL;
}

static void test_concurrent_updates_exact(void)
{
    shared_state s = {.m = metrics_create()};
    pthread_t writers[WRITER_THREADS], reader_thread;
    const double total = (double)WRITER_THREADS * OPS_PER_THREAD;
    const parsed *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s.m);
    pthread_mutex_init(&s.mutex, NULL);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&reader_thread, NULL, reader, &s), 0);
    for (int i = 0; i < WRITER_THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&writers[i], NULL, writer, &s), 0);
    for (int i = 0; i < WRITER_THREADS; i++)
        pthread_join(writers[i], NULL);
    pthread_mutex_lock(&s.mutex);
    s.stop = 1;
    pthread_mutex_unlock(&s.mutex);
    pthread_join(reader_thread, NULL);

    CU_ASSERT(s.renders > 0);
    CU_ASSERT_EQUAL(s.invalid_renders, 0);
    p = render_and_parse(s.m);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_requests_total", "endpoint=\"/translate\",code=\"200\""),
                    total);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_requests_total", "endpoint=\"/health\",code=\"200\""),
                    total / 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_requests_total", "endpoint=\"/health\",code=\"503\""),
                    total / 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_sum", "endpoint=\"/translate\""),
                    total * 0.25);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_bucket",
                             "endpoint=\"/translate\",le=\"0.25\""),
                    total);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_bucket",
                             "endpoint=\"/translate\",le=\"0.1\""),
                    0);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_request_duration_seconds_sum", "endpoint=\"/health\""),
                    total * 0.5);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_translated_sentences_total", ""), total * 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_translated_tokens_total", ""), total * 15);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_count", ""), total);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_sum", ""), total * 2.5);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_bucket", "le=\"1\""), total / 4);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_batch_sentences_bucket", "le=\"2\""), total / 2);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_errors_total", "kind=\"rate_limited\""), total);
    CU_ASSERT_EQUAL(value_of(p, "seqmt_queue_depth", ""), OPS_PER_THREAD - 1);
    pthread_mutex_destroy(&s.mutex);
    metrics_free(s.m);
}

static void test_free_null(void)
{
    metrics_free(NULL);
    CU_PASS("metrics_free(NULL) returned");
}

int main(void)
{
    CU_pSuite suite;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("metrics", NULL, NULL);
    if (!suite)
        return 1;
    CU_add_test(suite, "parser rejects bad text", test_parser_rejects_bad_text);
    CU_add_test(suite, "empty registry renders", test_empty_registry_renders);
    CU_add_test(suite, "request counts by code", test_request_counts_by_code);
    CU_add_test(suite, "duration buckets are cumulative", test_duration_buckets);
    CU_add_test(suite, "unknown paths count as other", test_unknown_paths_are_other);
    CU_add_test(suite, "invalid observations ignored", test_invalid_observations_ignored);
    CU_add_test(suite, "translated, batches and gauges", test_translated_batches_gauges);
    CU_add_test(suite, "concurrent updates are exact", test_concurrent_updates_exact);
    CU_add_test(suite, "free NULL", test_free_null);
    return test_run_all();
}
