/* A strict parser of Prometheus' text exposition format (version 0.0.4)
 * for the tests of the metrics registry and of GET /metrics.
 *
 * Each line must be a "# HELP", a "# TYPE" or a sample of the family the
 * last TYPE named. Names and label names follow Prometheus' grammar, and
 * values are numbers or "+Inf". Label values may not contain escapes,
 * which the daemon never writes. exposition_check_histograms adds the
 * histogram rules: ascending le bounds, non-decreasing cumulative counts,
 * a last bucket le="+Inf" equal to _count, and a _sum.
 */
#ifndef SEQMT_TEST_EXPOSITION_H
#define SEQMT_TEST_EXPOSITION_H

#include <stddef.h>

#define EXPOSITION_MAX_SAMPLES 2048
#define EXPOSITION_MAX_FAMILIES 64
#define EXPOSITION_NAME_SIZE 96
#define EXPOSITION_LABELS_SIZE 160

typedef struct {
    char name[EXPOSITION_NAME_SIZE];
    char labels[EXPOSITION_LABELS_SIZE]; /* text between the braces, "" without labels */
    double value;
} exposition_sample;

typedef struct {
    char name[EXPOSITION_NAME_SIZE];
    char type[16];
} exposition_family;

typedef struct {
    exposition_sample samples[EXPOSITION_MAX_SAMPLES];
    size_t nsamples;
    exposition_family families[EXPOSITION_MAX_FAMILIES];
    size_t nfamilies;
    char error[512]; /* first problem found, "" when the text is valid */
} exposition;

/* Parses text into out line by line. Returns 0, or -1 with out->error
 * naming the first invalid line. */
int exposition_parse(const char *text, exposition *out);

/* Checks every histogram series in out. Returns 0, or -1 with out->error
 * naming the series. */
int exposition_check_histograms(exposition *out);

/* Returns the value of the sample with exactly this name and label text
 * (the text between the braces, "" for none), or NAN when there is none. */
double exposition_value(const exposition *p, const char *name, const char *labels);

/* Returns the type of the family name ("counter", "gauge", "histogram"),
 * or "" when there is none. */
const char *exposition_type(const exposition *p, const char *name);

/* Returns the number of samples named name. */
size_t exposition_count(const exposition *p, const char *name);

/* Returns how much the sample grew from before to after. A sample missing
 * from a scrape counts as 0, because the daemon lists a series of requests
 * only after its first request. */
double exposition_growth(const exposition *before, const exposition *after, const char *name,
                         const char *labels);

/* GETs /metrics from the daemon on 127.0.0.1:to_port and parses the reply
 * into out, with the histogram checks. Returns 0, or -1 with the problem
 * in out->error: no reply, a status other than 200, a Content-Type other
 * than the text format's, or invalid text. */
int exposition_scrape(unsigned short to_port, exposition *out);

#endif
