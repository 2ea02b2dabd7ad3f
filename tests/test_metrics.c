/* Tests of the Prometheus registry (metrics.h).
 *
 * Every render is checked by the strict parser of the text exposition
 * format in exposition.h, histogram rules included. Values are then looked
 * up by name and exact label text.
 */
#include "exposition.h"
#include "metrics.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders m and parses it into out (static: too large for the stack).
 * Fails the calling test with the parser's message on invalid text. */
static exposition *render_and_parse(metrics *m)
{
    static exposition out;
    char *text = metrics_render(m);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (exposition_parse(text, &out) != 0 || exposition_check_histograms(&out) != 0) {
        fprintf(stderr, "\ninvalid exposition: %s\n%s\n", out.error, text);
        CU_FAIL("rendered text is not valid exposition format");
    }
    free(text);
    return &out;
}

/* ---- tests ---- */

static void test_parser_rejects_bad_text(void)
{
    static exposition p;

    /* The parser itself must fail on broken text, or the tests prove nothing. */
    CU_ASSERT_EQUAL(exposition_parse("# HELP a_total x\n# TYPE a_total counter\na_total 1\n", &p),
                    0);
    CU_ASSERT_NOT_EQUAL(exposition_parse("a_total 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(exposition_parse("# TYPE a_total counter\na_total 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(exposition_parse("# HELP a_total x\n# TYPE a_total counter\na_total x\n",
                                         &p),
                        0);
    CU_ASSERT_NOT_EQUAL(exposition_parse("# HELP a x\n# TYPE a counter\na 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(
        exposition_parse("# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v} 1\n", &p), 0);
    CU_ASSERT_NOT_EQUAL(exposition_parse("# HELP a_total x\n# TYPE a_total counter\nb_total 1\n",
                                         &p),
                        0);
    CU_ASSERT_NOT_EQUAL(exposition_parse("# HELP g x\n# TYPE g gauge\ng 1", &p), 0);

    /* And the histogram check on a +Inf bucket that differs from _count. */
    CU_ASSERT_EQUAL(exposition_parse("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                                     "h_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n",
                                     &p),
                    0);
    CU_ASSERT_NOT_EQUAL(exposition_check_histograms(&p), 0);
    CU_ASSERT_EQUAL(exposition_parse("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                                     "h_bucket{le=\"+Inf\"} 1\nh_sum 3\nh_count 1\n",
                                     &p),
                    0);
    CU_ASSERT_NOT_EQUAL(exposition_check_histograms(&p), 0);
}

static void test_empty_registry_renders(void)
{
    metrics *m = metrics_create();
    const exposition *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    p = render_and_parse(m);
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_requests_total"), "counter");
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_request_duration_seconds"), "histogram");
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_errors_total"), "counter");
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_translated_sentences_total"), "counter");
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_translated_tokens_total"), "counter");
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_batch_sentences"), "histogram");
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_queue_depth"), "gauge");
    CU_ASSERT_STRING_EQUAL(exposition_type(p, "seqmt_models_loaded"), "gauge");
    CU_ASSERT_EQUAL(exposition_count(p, "seqmt_requests_total"), 0);
    CU_ASSERT_EQUAL(exposition_count(p, "seqmt_request_duration_seconds_count"), 0);
    CU_ASSERT_EQUAL(exposition_count(p, "seqmt_errors_total"), METRICS_ERROR_KIND_COUNT);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_errors_total", "kind=\"queue_full\""), 0);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_translated_sentences_total", ""), 0);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_count", ""), 0);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_bucket", "le=\"+Inf\""), 0);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_queue_depth", ""), 0);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_models_loaded", ""), 0);
    metrics_free(m);
}

static void test_request_counts_by_code(void)
{
    metrics *m = metrics_create();
    const exposition *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 200, 0.1), 0);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 200, 0.1), 0);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/translate", 400, 0.001), 0);
    CU_ASSERT_EQUAL(metrics_observe_request(m, "/health", 200, 0.0), 0);
    p = render_and_parse(m);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_requests_total",
                                     "endpoint=\"/translate\",code=\"200\""), 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_requests_total",
                                     "endpoint=\"/translate\",code=\"400\""), 1);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_requests_total",
                                     "endpoint=\"/health\",code=\"200\""), 1);
    CU_ASSERT_EQUAL(exposition_count(p, "seqmt_requests_total"), 3);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_count",
                                     "endpoint=\"/translate\""),
                    3);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_count",
                                     "endpoint=\"/health\""), 1);
    CU_ASSERT_EQUAL(exposition_count(p, "seqmt_request_duration_seconds_count"), 2);
    metrics_free(m);
}

static void test_duration_buckets(void)
{
    metrics *m = metrics_create();
    const char *name = "seqmt_request_duration_seconds_bucket";
    const exposition *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_observe_request(m, "/translate", 200, 0.003);
    metrics_observe_request(m, "/translate", 200, 0.005); /* a bound is inclusive */
    metrics_observe_request(m, "/translate", 200, 0.2);
    metrics_observe_request(m, "/translate", 200, 100.0); /* above the last bound */
    p = render_and_parse(m);
    CU_ASSERT_EQUAL(exposition_value(p, name, "endpoint=\"/translate\",le=\"0.005\""), 2);
    CU_ASSERT_EQUAL(exposition_value(p, name, "endpoint=\"/translate\",le=\"0.1\""), 2);
    CU_ASSERT_EQUAL(exposition_value(p, name, "endpoint=\"/translate\",le=\"0.25\""), 3);
    CU_ASSERT_EQUAL(exposition_value(p, name, "endpoint=\"/translate\",le=\"60\""), 3);
    CU_ASSERT_EQUAL(exposition_value(p, name, "endpoint=\"/translate\",le=\"+Inf\""), 4);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_count",
                                     "endpoint=\"/translate\""),
                    4);
    /* 0.003 + 0.005 + 0.2 + 100 to within rounding of %.17g. */
    CU_ASSERT_DOUBLE_EQUAL(
        exposition_value(p, "seqmt_request_duration_seconds_sum",
                         "endpoint=\"/translate\""), 100.208,
        1e-9);
    metrics_free(m);
}

static void test_unknown_paths_are_other(void)
{
    metrics *m = metrics_create();
    const char *hostile = "/x\"} 1\nseqmt_requests_total{endpoint=\"/evil";
    char *text;
    const exposition *p;

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
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_requests_total",
                                     "endpoint=\"other\",code=\"404\""), 3);
    CU_ASSERT_EQUAL(exposition_count(p, "seqmt_requests_total"), 1);
    metrics_free(m);
}

static void test_invalid_observations_ignored(void)
{
    metrics *m = metrics_create();
    const exposition *p;

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
    CU_ASSERT_EQUAL(exposition_count(p, "seqmt_requests_total"), 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_count",
                                     "endpoint=\"/translate\""),
                    2);
    metrics_free(m);
}

static void test_translated_batches_gauges(void)
{
    metrics *m = metrics_create();
    const char *bucket = "seqmt_batch_sentences_bucket";
    const exposition *p;

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
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_translated_sentences_total", ""), 4);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_translated_tokens_total", ""), 42);
    CU_ASSERT_EQUAL(exposition_value(p, bucket, "le=\"1\""), 1);
    CU_ASSERT_EQUAL(exposition_value(p, bucket, "le=\"2\""), 1);
    CU_ASSERT_EQUAL(exposition_value(p, bucket, "le=\"4\""), 3);
    CU_ASSERT_EQUAL(exposition_value(p, bucket, "le=\"512\""), 3);
    CU_ASSERT_EQUAL(exposition_value(p, bucket, "le=\"+Inf\""), 4);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_sum", ""), 1008);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_count", ""), 4);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_queue_depth", ""), 5);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_models_loaded", ""), 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_errors_total", "kind=\"queue_full\""), 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_errors_total", "kind=\"client_gone\""), 1);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_errors_total", "kind=\"rate_limited\""), 0);
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
    exposition *p = malloc(sizeof(*p));
    int stop = 0;

    while (p && !stop) {
        char *text = metrics_render(s->m);
        int invalid =
            !text || exposition_parse(text, p) != 0 || exposition_check_histograms(p) != 0;

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
    const exposition *p;

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
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_requests_total",
                                     "endpoint=\"/translate\",code=\"200\""),
                    total);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_requests_total",
                                     "endpoint=\"/health\",code=\"200\""),
                    total / 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_requests_total",
                                     "endpoint=\"/health\",code=\"503\""),
                    total / 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_sum",
                                     "endpoint=\"/translate\""),
                    total * 0.25);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_bucket",
                             "endpoint=\"/translate\",le=\"0.25\""),
                    total);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_bucket",
                             "endpoint=\"/translate\",le=\"0.1\""),
                    0);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_request_duration_seconds_sum",
                                     "endpoint=\"/health\""),
                    total * 0.5);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_translated_sentences_total", ""), total * 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_translated_tokens_total", ""), total * 15);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_count", ""), total);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_sum", ""), total * 2.5);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_bucket", "le=\"1\""), total / 4);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_batch_sentences_bucket", "le=\"2\""), total / 2);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_errors_total", "kind=\"rate_limited\""), total);
    CU_ASSERT_EQUAL(exposition_value(p, "seqmt_queue_depth", ""), OPS_PER_THREAD - 1);
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
