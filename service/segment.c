/* Splitting of request texts into sentences and joining of their
 * translations; see segment.h for the rules. */
#include "segment.h"

#include <stdlib.h>
#include <string.h>

#include "html_text.h"
#include "sentence.h"

static int add_piece(segmented_text *st, char *literal, size_t sentence)
{
    if (st->piece_count == st->piece_cap) {
        size_t cap = st->piece_cap ? 2 * st->piece_cap : 8;
        segment_piece *grown = realloc(st->pieces, cap * sizeof(*grown));

        if (!grown)
            return -1;
        st->pieces = grown;
        st->piece_cap = cap;
    }
    st->pieces[st->piece_count++] = (segment_piece){literal, sentence};
    return 0;
}

/* Appends s[0..len) as a literal piece, HTML-escaped when escape is set.
 * Empty text adds nothing. */
static int add_literal(segmented_text *st, const char *s, size_t len, int escape)
{
    char *copy;

    if (len == 0)
        return 0;
    copy = strndup(s, len);
    if (copy && escape) {
        char *escaped = html_text_encode(copy);

        free(copy);
        copy = escaped;
    }
    if (!copy)
        return -1;
    if (add_piece(st, copy, 0) != 0) {
        free(copy);
        return -1;
    }
    return 0;
}

static int add_sentence(segmented_text *st, const char *s, size_t len)
{
    char *copy;

    if (st->sentence_count == st->sentence_cap) {
        size_t cap = st->sentence_cap ? 2 * st->sentence_cap : 8;
        char **grown = realloc(st->sentences, cap * sizeof(*grown));

        if (!grown)
            return -1;
        st->sentences = grown;
        st->sentence_cap = cap;
    }
    copy = strndup(s, len);
    if (!copy)
        return -1;
    st->sentences[st->sentence_count] = copy;
    if (add_piece(st, NULL, st->sentence_count) != 0) {
        free(copy);
        return -1;
    }
    st->sentence_count++;
    return 0;
}

/* Splits one line (no line break) into sentences. keep_edges keeps the
 * whitespace before the first and after the last sentence; escape marks
 * literal text of an HTML text run. */
static int segment_line(segmented_text *st, const char *line, size_t len, int keep_edges,
                        int escape)
{
    sentence_span *spans = NULL;
    size_t count = sentence_split(line, len, &spans), at = 0;
    int rc = -1;

    if (count == (size_t)-1)
        return -1;
    if (count == 0) {
        rc = keep_edges ? add_literal(st, line, len, escape) : 0;
        free(spans);
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        if ((i > 0 || keep_edges) && add_literal(st, line + at, spans[i].start - at, escape))
            goto done;
        if (add_sentence(st, line + spans[i].start, spans[i].len))
            goto done;
        at = spans[i].start + spans[i].len;
    }
    if (keep_edges && add_literal(st, line + at, len - at, escape))
        goto done;
    rc = 0;
done:
    free(spans);
    return rc;
}

/* Splits text[0..len) at line breaks and each line into sentences. */
static int segment_lines(segmented_text *st, const char *text, size_t len, int keep_edges,
                         int escape)
{
    size_t start = 0;

    for (;;) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t line_end = end;

        if (nl && line_end > start && text[line_end - 1] == '\r')
            line_end--;
        if (segment_line(st, text + start, line_end - start, keep_edges, escape))
            return -1;
        if (!nl)
            return 0;
        if (add_literal(st, text + line_end, end + 1 - line_end, 0))
            return -1;
        start = end + 1;
    }
}

static int segment_html(segmented_text *st, const char *html, size_t len)
{
    html_piece *pieces = NULL;
    size_t count = 0;
    int rc = -1;

    if (html_split(html, len, &pieces, &count) != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const char *s = html + pieces[i].start;
        char *decoded;

        if (!pieces[i].is_text) {
            if (add_literal(st, s, pieces[i].len, 0))
                goto done;
            continue;
        }
        decoded = html_text_decode(s, pieces[i].len);
        if (!decoded || segment_lines(st, decoded, strlen(decoded), 1, 1)) {
            free(decoded);
            goto done;
        }
        free(decoded);
    }
    rc = 0;
done:
    free(pieces);
    return rc;
}

int segment_text(const char *text, int html, segmented_text *out)
{
    out->html = html;
    if (html)
        return segment_html(out, text, strlen(text));
    return segment_lines(out, text, strlen(text), 0, 0);
}

char *segment_join(const segmented_text *st, const char *const *translations)
{
    char **escaped = NULL;
    size_t len = 0;
    char *out = NULL, *p;

    /* Step 1: escape the translations of an HTML text. */
    if (st->html) {
        escaped = calloc(st->sentence_count + 1, sizeof(*escaped));
        if (!escaped)
            return NULL;
        for (size_t i = 0; i < st->sentence_count; i++)
            if (!(escaped[i] = html_text_encode(translations[i])))
                goto done;
        translations = (const char *const *)escaped;
    }

    /* Step 2: concatenate the pieces. */
    for (size_t i = 0; i < st->piece_count; i++) {
        const segment_piece *pc = &st->pieces[i];

        len += strlen(pc->literal ? pc->literal : translations[pc->sentence]);
    }
    out = malloc(len + 1);
    if (!out)
        goto done;
    p = out;
    for (size_t i = 0; i < st->piece_count; i++) {
        const segment_piece *pc = &st->pieces[i];
        const char *s = pc->literal ? pc->literal : translations[pc->sentence];
        size_t n = strlen(s);

        memcpy(p, s, n);
        p += n;
    }
    *p = '\0';

done:
    if (escaped)
        for (size_t i = 0; i < st->sentence_count; i++)
            free(escaped[i]);
    free(escaped);
    return out;
}

void segment_free(segmented_text *st)
{
    for (size_t i = 0; i < st->sentence_count; i++)
        free(st->sentences[i]);
    for (size_t i = 0; i < st->piece_count; i++)
        free(st->pieces[i].literal);
    free(st->sentences);
    free(st->pieces);
    memset(st, 0, sizeof(*st));
}
