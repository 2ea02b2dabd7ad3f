/* Parsing of POST /translate bodies into a translate_request.
 *
 * JSON goes through cJSON, urlencoded forms through the strict decoder
 * below (a bad %-escape or %00 is a 400), and multipart/form-data through
 * libmicrohttpd's MHD_PostProcessor over the buffered body.
 * NOTE: cJSON 1.7 writes a process-wide error position on every parse.
 * Nothing here reads it, but parses on different threads race on it.
 */
#include "translate_request.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POST_PROCESSOR_BUFFER 4096 /* libmicrohttpd documents 256 as the minimum */

void translate_request_free(translate_request *tr)
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

/* Names of the whole-number fields, as number_field maps them. */
static const char *const number_fields[] = {"alternatives", "beam_size", "max_length", "n_best"};

/* Returns where the whole-number field name is stored in tr, or NULL when
 * name is not one. */
static long long *number_field(translate_request *tr, const char *name)
{
    if (strcmp(name, "alternatives") == 0)
        return &tr->alternatives;
    if (strcmp(name, "beam_size") == 0)
        return &tr->beam_size;
    if (strcmp(name, "max_length") == 0)
        return &tr->max_length;
    if (strcmp(name, "n_best") == 0)
        return &tr->n_best;
    return NULL;
}

/* Magnitude at which parsed numbers stop growing, far above every limit,
 * so that a huge value is reported as out of range rather than wrapped. */
#define NUMBER_SATURATION 1000000000000LL

/* Returns the smallest value the whole-number field name accepts. */
static long long number_min(const char *name)
{
    return strcmp(name, "alternatives") == 0 ? 0 : 1;
}

/* Returns the largest value the whole-number field name accepts under
 * limits, or 0 when limits leave it to the caller. */
static long long number_max(const char *name, const translate_limits *limits)
{
    if (strcmp(name, "max_length") == 0)
        return limits->max_length;
    if (limits->max_beam_size <= 0)
        return 0;
    return strcmp(name, "alternatives") == 0 ? limits->max_beam_size - 1 : limits->max_beam_size;
}

/* Writes "field NAME must be a whole number from MIN to MAX (FLAG), not
 * SHOWN" into err, naming the server flag that sets MAX. */
static void number_error(const char *name, const translate_limits *limits, const char *shown,
                         char *err, size_t err_size)
{
    long long max = number_max(name, limits);
    const char *flag = strcmp(name, "max_length") == 0 ? "--max-length" : "--max-beam-size";
    char range[128];

    if (strcmp(name, "alternatives") == 0 && max > 0)
        snprintf(range, sizeof(range), "0 to %lld (one less than the server's %s)", max, flag);
    else if (strcmp(name, "alternatives") == 0)
        snprintf(range, sizeof(range), "0 to one less than the server's %s", flag);
    else if (strcmp(name, "n_best") == 0 && max > 0)
        snprintf(range, sizeof(range), "1 to beam_size (at most %lld, the server's %s)", max,
                 flag);
    else if (strcmp(name, "n_best") == 0)
        snprintf(range, sizeof(range), "1 to beam_size (at most the server's %s)", flag);
    else if (max > 0)
        snprintf(range, sizeof(range), "1 to %lld (the server's %s)", max, flag);
    else
        snprintf(range, sizeof(range), "1 to the server's %s", flag);
    snprintf(err, err_size, "field \"%s\" must be a whole number from %s, not %s", name, range,
             shown);
}

/* Parses text as an optional '-' and decimal digits into *value, which
 * saturates at NUMBER_SATURATION. Returns 0, or -1 for any other text. */
static int parse_whole_text(const char *text, long long *value)
{
    const char *p = text + (text[0] == '-');
    long long v = 0;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if (v < NUMBER_SATURATION)
            v = v * 10 + (*p - '0');
    if (*p)
        return -1;
    *value = text[0] == '-' ? -v : v;
    return 0;
}

/* Checks *value against the range of the whole-number field name and
 * stores it in tr. value is NULL when the client's value is not a whole
 * number, and shown is that value as the error message quotes it. Returns
 * 0, or -1 with a message in err. */
static int store_number(translate_request *tr, const char *name, const long long *value,
                        const char *shown, const translate_limits *limits, char *err,
                        size_t err_size)
{
    long long max = number_max(name, limits);

    /* A saturated value is out of every range and would hide the client's. */
    if (!value || *value < number_min(name) || (max > 0 && *value > max) ||
        *value >= NUMBER_SATURATION) {
        number_error(name, limits, shown, err, err_size);
        return -1;
    }
    *number_field(tr, name) = *value;
    return 0;
}

/* Reads an optional whole-number field of a JSON body into tr (left as it
 * is when absent, null or ""). A JSON number without a fraction and a
 * string of decimal digits, as HTML forms send, are both accepted.
 * Returns 0, -1 with a message in err when the value is not a whole number
 * in the field's range, or -2 when out of memory. */
static int json_number(translate_request *tr, const cJSON *object, const char *name,
                       const translate_limits *limits, char *err, size_t err_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    long long value = 0;
    int whole = 0;
    char *printed, shown[48];

    if (!item || cJSON_IsNull(item) ||
        (cJSON_IsString(item) && item->valuestring && !item->valuestring[0]))
        return 0;
    if (cJSON_IsNumber(item) && isfinite(item->valuedouble) &&
        item->valuedouble == floor(item->valuedouble)) {
        double v = item->valuedouble;

        whole = 1;
        value = v > (double)NUMBER_SATURATION    ? NUMBER_SATURATION
                : v < -(double)NUMBER_SATURATION ? -NUMBER_SATURATION
                                                 : (long long)v;
    } else if (cJSON_IsString(item) && item->valuestring) {
        whole = parse_whole_text(item->valuestring, &value) == 0;
    }

    /* The message shows the value as JSON, cut to fit. */
    printed = cJSON_PrintUnformatted(item);
    if (!printed)
        return -2;
    snprintf(shown, sizeof(shown), "%.40s%s", printed, strlen(printed) > 40 ? "..." : "");
    free(printed);
    return store_number(tr, name, whole ? &value : NULL, shown, limits, err, err_size);
}

/* Parses the form value of the whole-number field name into tr. An empty
 * value leaves the field absent. Returns 0, or -1 with a message in err
 * when value is not a whole number in the field's range. */
static int form_number(translate_request *tr, const char *name, const char *value,
                       const translate_limits *limits, char *err, size_t err_size)
{
    long long parsed;
    char shown[48];
    size_t i = 0;

    if (!value[0])
        return 0;
    shown[i++] = '"';
    for (const char *p = value; *p && i < 41; p++)
        shown[i++] = (*p >= 0x20 && *p < 0x7f && *p != '"') ? *p : '?';
    snprintf(shown + i, sizeof(shown) - i, "%s\"", strlen(value) > 40 ? "..." : "");
    return store_number(tr, name, parse_whole_text(value, &parsed) == 0 ? &parsed : NULL, shown,
                        limits, err, err_size);
}

/* Stores a form field value, owned by tr, by name: q is appended to the
 * texts, whole-number fields are parsed, other known fields are pointed at.
 * Returns 0, or -1 with a client error in err. */
static int set_form_field(translate_request *tr, const char *name, char *value, size_t *q_count,
                          const translate_limits *limits, char *err, size_t err_size)
{
    if (strcmp(name, "q") == 0)
        tr->texts[(*q_count)++] = value;
    else if (number_field(tr, name))
        return form_number(tr, name, value, limits, err, err_size);
    else if (strcmp(name, "source") == 0)
        tr->source = value;
    else if (strcmp(name, "target") == 0)
        tr->target = value;
    else if (strcmp(name, "format") == 0)
        tr->format = value;
    else if (strcmp(name, "api_key") == 0)
        tr->api_key = value;
    return 0;
}

/* Names of the form fields that set_form_field stores. */
static const char *const form_field_names[] = {
    "q", "source", "target", "format", "api_key", "alternatives", "beam_size", "max_length",
    "n_best",
};
#define FORM_FIELD_COUNT (sizeof(form_field_names) / sizeof(form_field_names[0]))

/* Returns the index of name[0..len) in form_field_names, or -1. */
static int form_field_index(const char *name, size_t len)
{
    for (size_t i = 0; i < FORM_FIELD_COUNT; i++)
        if (strlen(form_field_names[i]) == len && memcmp(form_field_names[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* Returns nonzero when the 4 characters at p are the hex digits 0000. */
static int is_nul_escape(const char *p)
{
    return p[0] == '0' && p[1] == '0' && p[2] == '0' && p[3] == '0';
}

/* Rejects a \u0000 escape anywhere in a JSON string of body[0..len), the
 * text of the object json that cJSON parsed from it. cJSON decodes the
 * escape to a NUL byte and cuts the C string there, so "en\u0000xx" would
 * read as "en". The scan runs over the raw text because the parsed
 * strings no longer show the escape. It tracks the top-level member and,
 * for an array member, the element, to name them in err. Returns 0, or -1
 * with a client error in err. */
static int reject_nul_escapes(const cJSON *json, const char *body, size_t len, char *err,
                              size_t err_size)
{
    size_t depth = 0, member = 0, element = 0;
    int expect_key = 0, in_string = 0, in_key = 0, member_is_array = 0;
    const cJSON *field;

    for (size_t i = 0; i < len; i++) {
        char c = body[i];

        if (in_string) {
            if (c == '"') {
                in_string = 0;
            } else if (c == '\\' && i + 1 < len) {
                /* Skipping the escaped character keeps the backslash
                 * parity: in \\u0000 the u is literal text. */
                if (body[i + 1] == 'u' && i + 5 < len && is_nul_escape(body + i + 2))
                    goto found;
                i++;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_string = 1;
            in_key = depth == 1 && expect_key;
            if (in_key) {
                member++;
                expect_key = 0;
            }
            break;
        case '{':
        case '[':
            depth++;
            if (depth == 1)
                expect_key = 1;
            if (depth == 2) {
                member_is_array = c == '[';
                element = 0;
            }
            break;
        case '}':
        case ']':
            depth--;
            break;
        case ',':
            if (depth == 1)
                expect_key = 1;
            else if (depth == 2)
                element++;
            break;
        default:
            break;
        }
    }
    return 0;

found:
    field = member > 0 ? cJSON_GetArrayItem(json, (int)member - 1) : NULL;
    if (in_key || !field || !field->string)
        snprintf(err, err_size,
                 "a field name contains \\u0000 (a NUL character), which is not allowed");
    else if (depth == 2 && member_is_array)
        snprintf(err, err_size,
                 "%.32s[%zu] contains \\u0000 (a NUL character), which is not allowed",
                 field->string, element);
    else
        snprintf(err, err_size,
                 "field \"%.32s\" contains \\u0000 (a NUL character), which is not allowed",
                 field->string);
    return -1;
}

/* Parses a JSON body into tr. Returns 0, or -1 with a client error in err
 * (400), or -2 when out of memory. */
static int parse_json_body(const char *body, size_t len, const translate_limits *limits,
                           translate_request *tr, char *err, size_t err_size)
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
    if (reject_nul_escapes(tr->json, body, len, err, err_size) != 0)
        return -1;

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

        if (n > limits->max_texts) {
            snprintf(err, err_size, "field \"q\" has %zu texts; the maximum is %zu per request",
                     n, limits->max_texts);
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
        optional_string(tr->json, "target", &tr->target, err, err_size) != 0 ||
        optional_string(tr->json, "format", &tr->format, err, err_size) != 0 ||
        optional_string(tr->json, "api_key", &tr->api_key, err, err_size) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(number_fields) / sizeof(number_fields[0]); i++) {
        int rc = json_number(tr, tr->json, number_fields[i], limits, err, err_size);

        if (rc != 0)
            return rc;
    }
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

/* Checks the number of "q" fields a form body had and records it in tr.
 * Returns 0, or -1 with a client error in err. */
static int finish_form(translate_request *tr, size_t q_count, size_t max_texts, char *err,
                       size_t err_size)
{
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

/* Parses a form body (q repeated for several texts, and the other fields)
 * into tr. Returns 0, -1 with a client error in err, or -2 when out of memory. */
static int parse_form_body(const char *body, size_t len, const translate_limits *limits,
                           translate_request *tr, char *err, size_t err_size)
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

        /* Names are matched undecoded: the known names need no escapes. */
        if (form_field_index(p, name_len) >= 0) {
            char name[16];

            decoded = form_decode(value, (size_t)(stop - value), &invalid);
            if (!decoded && invalid) {
                snprintf(err, err_size, "form field \"%.*s\" has an invalid %%-escape or %%00",
                         (int)name_len, p);
                return -1;
            }
            if (!decoded)
                return -2;
            tr->owned[tr->owned_count++] = decoded;
            memcpy(name, p, name_len);
            name[name_len] = '\0';
            if (set_form_field(tr, name, decoded, &q_count, limits, err, err_size) != 0)
                return -1;
        }
        if (!amp)
            break;
        p = amp + 1;
    }

    return finish_form(tr, q_count, limits->max_texts, err, err_size);
}

/* ---- multipart/form-data ---- */

/* Values of the known fields in body order, collected by collect_field. */
typedef struct {
    char **values;
    size_t *lengths;
    unsigned char *kinds; /* index into form_field_names */
    size_t count, cap;
    size_t open;          /* index that the next chunk extends, or SIZE_MAX */
    int out_of_memory;
    int has_nul;          /* a value contained a NUL byte */
} multipart_fields;

static int field_kind(const char *key)
{
    return key ? form_field_index(key, strlen(key)) : -1;
}

static int add_field(multipart_fields *f, int kind)
{
    if (f->count == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        char **values = realloc(f->values, cap * sizeof(*values));
        size_t *lengths;
        unsigned char *kinds;

        if (!values)
            return -1;
        f->values = values;
        lengths = realloc(f->lengths, cap * sizeof(*lengths));
        if (!lengths)
            return -1;
        f->lengths = lengths;
        kinds = realloc(f->kinds, cap * sizeof(*kinds));
        if (!kinds)
            return -1;
        f->kinds = kinds;
        f->cap = cap;
    }
    f->values[f->count] = calloc(1, 1);
    if (!f->values[f->count])
        return -1;
    f->lengths[f->count] = 0;
    f->kinds[f->count] = (unsigned char)kind;
    f->open = f->count++;
    return 0;
}

/* MHD_PostDataIterator: appends a chunk of a field value. A value arrives as
 * chunks at increasing offsets starting at 0. libmicrohttpd may first
 * report a value as an empty chunk at offset 0 and then send its data at
 * offset 0 again, so an empty open value of the same field is extended, not
 * repeated. The cost: an empty q directly followed by another q reads as
 * one text. */
static enum MHD_Result collect_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size)
{
    multipart_fields *f = cls;
    int field = field_kind(key);
    char *grown;
    size_t at;

    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    if (field < 0) {
        f->open = SIZE_MAX;
        return MHD_YES;
    }
    if (off == 0) {
        int extends_empty = f->open != SIZE_MAX && f->kinds[f->open] == field &&
                            f->lengths[f->open] == 0;

        if (!extends_empty && add_field(f, field) != 0) {
            f->out_of_memory = 1;
            return MHD_NO;
        }
    } else if (f->open == SIZE_MAX || f->kinds[f->open] != field) {
        return MHD_NO; /* a continuation without its start: malformed */
    }
    if (size == 0)
        return MHD_YES;
    if (memchr(data, '\0', size)) {
        f->has_nul = 1;
        return MHD_NO;
    }
    at = f->open;
    grown = realloc(f->values[at], f->lengths[at] + size + 1);
    if (!grown) {
        f->out_of_memory = 1;
        return MHD_NO;
    }
    memcpy(grown + f->lengths[at], data, size);
    f->lengths[at] += size;
    grown[f->lengths[at]] = '\0';
    f->values[at] = grown;
    return MHD_YES;
}

/* Moves the collected values into tr. Returns 0, -1 with a client error
 * in err, or -2 when out of memory. */
static int take_fields(multipart_fields *f, const translate_limits *limits,
                       translate_request *tr, char *err, size_t err_size)
{
    size_t q_count = 0;

    tr->owned = f->values;
    tr->owned_count = f->count;
    f->values = NULL;
    f->count = 0;
    tr->texts = malloc((tr->owned_count ? tr->owned_count : 1) * sizeof(*tr->texts));
    if (!tr->texts)
        return -2;
    for (size_t i = 0; i < tr->owned_count; i++)
        if (set_form_field(tr, form_field_names[f->kinds[i]], tr->owned[i], &q_count, limits,
                           err, err_size) != 0)
            return -1;
    return finish_form(tr, q_count, limits->max_texts, err, err_size);
}

/* Parses a multipart/form-data body into tr. Returns 0, -1 with a client
 * error in err, or -2 when out of memory. */
static int parse_multipart_body(struct MHD_Connection *conn, const char *body, size_t len,
                                const translate_limits *limits, translate_request *tr,
                                char *err, size_t err_size)
{
    multipart_fields f = {.open = SIZE_MAX};
    struct MHD_PostProcessor *pp;
    int rc = 0;

    pp = MHD_create_post_processor(conn, POST_PROCESSOR_BUFFER, collect_field, &f);
    if (!pp) {
        snprintf(err, err_size, "cannot read the multipart/form-data body: the Content-Type "
                                "header needs a boundary parameter");
        return -1;
    }
    if (MHD_post_process(pp, body, len) != MHD_YES)
        rc = -1;
    if (MHD_destroy_post_processor(pp) != MHD_YES)
        rc = -1;

    if (f.out_of_memory)
        rc = -2;
    else if (f.has_nul)
        snprintf(err, err_size, "a form field of the multipart/form-data body contains a NUL "
                                "byte");
    else if (rc != 0)
        snprintf(err, err_size, "multipart/form-data body is malformed or incomplete; check "
                                "the boundary lines");
    else
        rc = take_fields(&f, limits, tr, err, err_size);

    for (size_t i = 0; i < f.count; i++)
        free(f.values[i]);
    free(f.values);
    free(f.lengths);
    free(f.kinds);
    return rc;
}

/* ---- entry points ---- */

/* Compares the media type of a Content-Type value, without parameters,
 * case-insensitively. */
static int media_type_is(const char *content_type, const char *media_type)
{
    size_t n = strlen(media_type);
    char next;

    if (strncasecmp(content_type, media_type, n) != 0)
        return 0;
    next = content_type[n];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

int translate_request_format(const char *content_type, translate_body_format *format)
{
    if (!content_type || media_type_is(content_type, "application/json") ||
        media_type_is(content_type, "text/plain"))
        *format = TRANSLATE_BODY_JSON;
    else if (media_type_is(content_type, "application/x-www-form-urlencoded"))
        *format = TRANSLATE_BODY_URLENCODED;
    else if (media_type_is(content_type, "multipart/form-data"))
        *format = TRANSLATE_BODY_MULTIPART;
    else
        return -1;
    return 0;
}

int translate_request_parse_with_limits(translate_request *tr, translate_body_format format,
                                        struct MHD_Connection *conn, const char *body,
                                        size_t len, const translate_limits *limits, char *err,
                                        size_t err_size)
{
    const char *nul;
    int rc;

    tr->alternatives = tr->beam_size = tr->max_length = tr->n_best = TRANSLATE_FIELD_ABSENT;
    if (format == TRANSLATE_BODY_MULTIPART) {
        rc = parse_multipart_body(conn, body, len, limits, tr, err, err_size);
    } else {
        /* JSON and urlencoded text never contains a raw NUL. */
        nul = memchr(body, '\0', len);
        if (nul) {
            snprintf(err, err_size, "request body contains a NUL byte at byte %zu",
                     (size_t)(nul - body));
            return -1;
        }
        rc = format == TRANSLATE_BODY_URLENCODED
                 ? parse_form_body(body, len, limits, tr, err, err_size)
                 : parse_json_body(body, len, limits, tr, err, err_size);
    }

    /* An empty format, as an HTML form sends for an unset field, means text. */
    if (rc == 0 && tr->format && !tr->format[0])
        tr->format = NULL;
    return rc;
}

int translate_request_parse(translate_request *tr, translate_body_format format,
                            struct MHD_Connection *conn, const char *body, size_t len,
                            size_t max_texts, char *err, size_t err_size)
{
    translate_limits limits = {.max_texts = max_texts};

    return translate_request_parse_with_limits(tr, format, conn, body, len, &limits, err,
                                               err_size);
}

size_t translate_request_chars(const translate_request *tr)
{
    size_t chars = 0;

    for (size_t i = 0; i < tr->count; i++)
        for (const unsigned char *p = (const unsigned char *)tr->texts[i]; *p; p++)
            chars += (*p & 0xC0) != 0x80;
    return chars;
}
