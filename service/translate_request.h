/* Parsing of POST /translate bodies: JSON, application/x-www-form-urlencoded
 * and multipart/form-data, all into one translate_request.
 *
 * Fields follow LibreTranslate: q is one text or several (a JSON array, or
 * the field repeated in a form), source and target name the language pair,
 * format is "text" or "html", alternatives sets the number of alternative
 * translations and api_key identifies the client. POST /v1/translate adds
 * beam_size, max_length and n_best. Other fields are ignored. Parsing
 * checks shape, types, the number of texts and the ranges of the number
 * fields that translate_limits gives. The caller checks the language pair,
 * the character limit and that n_best is at most beam_size. No string may
 * contain a NUL character: a raw NUL byte, a %00 in a form and a \u0000
 * escape in any JSON string, field names included, are all client errors.
 */
#ifndef SEQMT_TRANSLATE_REQUEST_H
#define SEQMT_TRANSLATE_REQUEST_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stddef.h>

typedef enum {
    TRANSLATE_BODY_JSON,
    TRANSLATE_BODY_URLENCODED,
    TRANSLATE_BODY_MULTIPART,
} translate_body_format;

/* A parsed /translate request. Strings point into json or into owned. */
typedef struct {
    cJSON *json;
    char **owned;
    size_t owned_count;
    const char **texts;
    size_t count;
    int is_list; /* set when q was an array or a repeated form field */
    const char *source, *target; /* NULL when absent */
    const char *format;          /* NULL when absent */
    const char *api_key;         /* NULL when absent */
    /* Whole-number fields; TRANSLATE_FIELD_ABSENT when not sent. */
    long long alternatives, beam_size, max_length, n_best;
} translate_request;

#define TRANSLATE_FIELD_ABSENT (-1LL)

/* Maps a Content-Type header value to a body format. A missing header and
 * text/plain are read as JSON, so that JSON sent without a JSON media type
 * still works. Returns 0, or -1 for any other media type. */
int translate_request_format(const char *content_type, translate_body_format *format);

/* Limits that parsing checks, as the server's flags set them. A
 * max_beam_size or max_length of 0 leaves that upper bound to the caller,
 * and error messages then name the flag without its value. */
typedef struct {
    size_t max_texts;  /* texts in q (--max-texts) */
    int max_beam_size; /* beam_size and n_best from 1, alternatives from 0 to
                          one less (--max-beam-size) */
    int max_length;    /* max_length from 1 (--max-length) */
} translate_limits;

/* Parses body[0..len), where body[len] is '\0', into tr (zeroed by the
 * caller). A whole-number field may be a JSON number without a fraction
 * or a string of decimal digits, because HTML forms send strings. It must
 * be within the range that limits gives, and null or "" leaves it absent.
 * An empty format means text, so tr->format is then NULL. The error for a
 * bad value names the range and the flag that sets it. conn is read only
 * for multipart bodies: libmicrohttpd's MHD_PostProcessor takes the
 * boundary from its Content-Type. Returns 0, -1 with a client error in
 * err (reply 400), or -2 when out of memory. tr needs
 * translate_request_free in every case. */
int translate_request_parse_with_limits(translate_request *tr, translate_body_format format,
                                        struct MHD_Connection *conn, const char *body,
                                        size_t len, const translate_limits *limits, char *err,
                                        size_t err_size);

/* Parses as translate_request_parse_with_limits does with only max_texts
 * set, so the caller checks the upper bounds of beam_size, n_best,
 * alternatives and max_length. */
int translate_request_parse(translate_request *tr, translate_body_format format,
                            struct MHD_Connection *conn, const char *body, size_t len,
                            size_t max_texts, char *err, size_t err_size);

/* Frees what tr owns and zeroes it. */
void translate_request_free(translate_request *tr);

/* Number of characters in all texts, counted as UTF-8 code points: every
 * byte except continuation bytes (10xxxxxx) starts one. A stray
 * continuation byte in invalid UTF-8 therefore counts nothing. */
size_t translate_request_chars(const translate_request *tr);

#endif
