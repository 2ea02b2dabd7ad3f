/* Parser of the text exposition format for the tests. See exposition.h. */
#include "exposition.h"
#include "http_client.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char label[EXPOSITION_NAME_SIZE];

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
static int sample_in_family(const char *name, const exposition_family *f)
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
static int parse_comment(exposition *out, const char *line, char *help_name)
{
    char name[EXPOSITION_NAME_SIZE];
    const char *p = line + 7;

    if (strncmp(line, "# HELP ", 7) == 0) {
        if (help_name[0] || !read_name(&p, name, sizeof(name), 1) || *p != ' ' ||
            p[1] == '\0')
            return -1;
        memcpy(help_name, name, EXPOSITION_NAME_SIZE);
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
    if (out->nfamilies == EXPOSITION_MAX_FAMILIES)
        return -1;
    if (strcmp(p, "counter") == 0 &&
        (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0))
        return -1;
    snprintf(out->families[out->nfamilies].name, EXPOSITION_NAME_SIZE, "%s", name);
    snprintf(out->families[out->nfamilies].type, 16, "%s", p);
    out->nfamilies++;
    help_name[0] = '\0';
    return 0;
}

static int parse_sample(exposition *out, const char *line)
{
    exposition_sample *s;
    const char *p = line;

    if (out->nsamples == EXPOSITION_MAX_SAMPLES || out->nfamilies == 0)
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

int exposition_parse(const char *text, exposition *out)
{
    char help_name[EXPOSITION_NAME_SIZE] = "";
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

int exposition_check_histograms(exposition *out)
{
    for (size_t i = 0; i < out->nsamples; i++) {
        const exposition_sample *first = &out->samples[i];
        const char *le = strstr(first->labels, "le=\"");
        char base[EXPOSITION_NAME_SIZE], series[EXPOSITION_LABELS_SIZE], other[EXPOSITION_LABELS_SIZE];
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
            const exposition_sample *b = &out->samples[j];
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

double exposition_value(const exposition *p, const char *name, const char *labels)
{
    for (size_t i = 0; i < p->nsamples; i++)
        if (strcmp(p->samples[i].name, name) == 0 && strcmp(p->samples[i].labels, labels) == 0)
            return p->samples[i].value;
    return NAN;
}

const char *exposition_type(const exposition *p, const char *name)
{
    for (size_t i = 0; i < p->nfamilies; i++)
        if (strcmp(p->families[i].name, name) == 0)
            return p->families[i].type;
    return "";
}

size_t exposition_count(const exposition *p, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < p->nsamples; i++)
        n += strcmp(p->samples[i].name, name) == 0;
    return n;
}

double exposition_growth(const exposition *before, const exposition *after, const char *name,
                         const char *labels)
{
    double old_value = exposition_value(before, name, labels);
    double new_value = exposition_value(after, name, labels);

    return (isnan(new_value) ? 0 : new_value) - (isnan(old_value) ? 0 : old_value);
}

int exposition_scrape(unsigned short to_port, exposition *out)
{
    static const char content_type[] = "text/plain; version=0.0.4; charset=utf-8";
    http_response r;
    int rc = -1;

    if (get_path(to_port, "/metrics", &r) != 0) {
        snprintf(out->error, sizeof(out->error), "no reply from port %u", to_port);
        return -1;
    }
    if (r.status != 200)
        snprintf(out->error, sizeof(out->error), "status %d", r.status);
    else if (strcmp(r.content_type, content_type) != 0)
        snprintf(out->error, sizeof(out->error), "Content-Type %s, expected %s", r.content_type,
                 content_type);
    else if (exposition_parse(r.body, out) == 0 && exposition_check_histograms(out) == 0)
        rc = 0;
    response_free(&r);
    return rc;
}
