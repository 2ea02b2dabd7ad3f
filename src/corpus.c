/* Corpus reading and batching. zlib's gz* functions read gzip and plain
 * files alike, so the format is detected from the bytes, not the name. */
#include "corpus.h"

#include "placeholder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

int corpus_read_lines(const char *path, char ***lines_out, size_t *n_out, char *err,
                      size_t err_size)
{
    gzFile f = gzopen(path, "rb");
    char **lines = NULL, *line = NULL;
    size_t n = 0, cap = 0, len = 0, line_cap = 0;
    int c;

    if (!f) {
        snprintf(err, err_size, "cannot open %s: %s", path, errno ? strerror(errno) : "gzopen failed");
        return -1;
    }
    gzbuffer(f, 1 << 17);
    for (;;) {
        c = gzgetc(f);
        if (c == -1) {
            int code;
            const char *msg = gzerror(f, &code);

            /* A truncated gzip stream ends with Z_BUF_ERROR, not a clean EOF. */
            if (code != Z_OK && code != Z_STREAM_END) {
                snprintf(err, err_size,
                         "cannot read %s after line %zu: %s (is the file truncated or corrupt?)",
                         path, n, code == Z_ERRNO ? strerror(errno) : msg);
                goto fail;
            }
            if (len == 0)
                break;
        }
        if (c != -1 && c != '\n') {
            if (len + 4 > line_cap) {
                size_t nc = line_cap ? 2 * line_cap : 256;
                char *nl = realloc(line, nc);

                if (!nl)
                    goto oom;
                line = nl;
                line_cap = nc;
            }
            /* A NUL byte would end the C string early: store U+FFFD instead,
             * which normalization then counts as invalid input. */
            if (c == 0) {
                memcpy(line + len, "\xEF\xBF\xBD", 3);
                len += 3;
            } else {
                line[len++] = (char)c;
            }
            continue;
        }
        /* End of a line (or of the file after a last line without '\n'). */
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (n == 0 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            memmove(line, line + 3, len - 3);
            len -= 3;
        }
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 1024;
            char **nl = realloc(lines, nc * sizeof(char *));

            if (!nl)
                goto oom;
            lines = nl;
            cap = nc;
        }
        lines[n] = malloc(len + 1);
        if (!lines[n])
            goto oom;
        if (len)
            memcpy(lines[n], line, len);
        lines[n++][len] = '\0';
        len = 0;
        if (c == -1)
            break;
    }
    gzclose(f);
    free(line);
    *lines_out = lines;
    *n_out = n;
    return 0;

oom:
    snprintf(err, err_size, "out of memory reading %s", path);
fail:
    gzclose(f);
    free(line);
    corpus_free_lines(lines, n);
    return -1;
}

void corpus_free_lines(char **lines, size_t n)
{
    if (!lines)
        return;
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

int corpus_format_parse(const char *s)
{
    static const char *names[] = {"auto", "plain", "tsv", "sgml"};

    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && strncasecmp(s + len - n, suffix, n) == 0;
}

corpus_format corpus_format_of(const char *path, corpus_format format)
{
    size_t len = strlen(path);

    if (format != CORPUS_FORMAT_AUTO)
        return format;
    if (ends_with(path, len, ".gz"))
        len -= 3;
    if (ends_with(path, len, ".tsv"))
        return CORPUS_FORMAT_TSV;
    if (ends_with(path, len, ".sgm") || ends_with(path, len, ".sgml"))
        return CORPUS_FORMAT_SGML;
    return CORPUS_FORMAT_PLAIN;
}

/* Decodes the first n_ents of these entities in place: the five XML ones
 * WMT's SGML files use, then the three more Moses' escaping writes. */
static void decode_entities_n(char *s, size_t n_ents)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'},    {"&gt;", '>'},    {"&quot;", '"'},
                {"&apos;", '\''}, {"&#124;", '|'}, {"&#91;", '['}, {"&#93;", ']'}};
    char *w = s;

    while (*s) {
        size_t k = 0;

        if (*s == '&')
            for (k = 0; k < n_ents; k++)
                if (strncmp(s, ents[k].name, strlen(ents[k].name)) == 0)
                    break;
        if (*s == '&' && k < n_ents) {
            *w++ = ents[k].c;
            s += strlen(ents[k].name);
        } else {
            *w++ = *s++;
        }
    }
    *w = '\0';
}

static void decode_entities(char *s)
{
    decode_entities_n(s, 5);
}

void corpus_unescape_moses(char *line)
{
    decode_entities_n(line, 8);
}

/* Collects the text of every <seg ...>...</seg> of an SGML file, which
 * WMT writes one per line. */
static int read_sgml(const char *path, char ***segs_out, size_t *n_out, char *err,
                     size_t err_size)
{
    char **lines, **segs = NULL;
    size_t n, m = 0, cap = 0;

    if (corpus_read_lines(path, &lines, &n, err, err_size))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char *p = lines[i];

        for (;;) {
            char *open = strcasestr(p, "<seg"), *text, *close;

            if (!open)
                break;
            if (open[4] != '>' && open[4] != ' ' && open[4] != '\t') {
                p = open + 4;
                continue;
            }
            text = strchr(open, '>');
            close = text ? strcasestr(text + 1, "</seg>") : NULL;
            if (!close) {
                snprintf(err, err_size, "%s line %zu: <seg> without </seg> on the same line",
                         path, i + 1);
                goto fail;
            }
            if (m == cap) {
                size_t nc = cap ? 2 * cap : 256;
                char **ns = realloc(segs, sizeof(char *) * nc);

                if (!ns)
                    goto oom;
                segs = ns;
                cap = nc;
            }
            segs[m] = strndup(text + 1, (size_t)(close - text - 1));
            if (!segs[m])
                goto oom;
            decode_entities(segs[m++]);
            p = close + 6;
        }
    }
    if (m == 0) {
        snprintf(err, err_size, "%s has no <seg> elements; if it is plain text, use --format plain",
                 path);
        goto fail;
    }
    corpus_free_lines(lines, n);
    *segs_out = segs;
    *n_out = m;
    return 0;

oom:
    snprintf(err, err_size, "out of memory reading %s", path);
fail:
    corpus_free_lines(segs, m);
    corpus_free_lines(lines, n);
    return -1;
}

int corpus_read_segments(const char *path, corpus_format format, char ***segs, size_t *n,
                         char *err, size_t err_size)
{
    switch (corpus_format_of(path, format)) {
    case CORPUS_FORMAT_SGML:
        return read_sgml(path, segs, n, err, err_size);
    case CORPUS_FORMAT_TSV:
        snprintf(err, err_size, "%s is named like a TSV file, which holds two sides; "
                                "to read it as one segment per line, use --format plain", path);
        return -1;
    default:
        return corpus_read_lines(path, segs, n, err, err_size);
    }
}

/* Splits each TSV line at its tab into a source and a target segment; a
 * line without exactly one tab gets NULL on both sides. */
static int read_tsv(const char *path, char ***src_out, char ***tgt_out, size_t *n_out,
                    char *err, size_t err_size)
{
    char **lines, **tgt;
    size_t n;

    if (corpus_read_lines(path, &lines, &n, err, err_size))
        return -1;
    tgt = calloc(n + 1, sizeof(char *));
    if (!tgt) {
        corpus_free_lines(lines, n);
        snprintf(err, err_size, "out of memory reading %s", path);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char *tab = strchr(lines[i], '\t');

        if (!tab || strchr(tab + 1, '\t')) {
            free(lines[i]);
            lines[i] = NULL;
            continue;
        }
        *tab = '\0';
        tgt[i] = strdup(tab + 1);
        if (!tgt[i]) {
            corpus_free_lines(lines, n);
            corpus_free_lines(tgt, n);
            snprintf(err, err_size, "out of memory reading %s", path);
            return -1;
        }
    }
    *src_out = lines;
    *tgt_out = tgt;
    *n_out = n;
    return 0;
}

int corpus_tokenize(const char *line, const char *lang, tok_list *out, size_t *n_invalid)
{
    char *norm = text_normalize(line, strlen(line), n_invalid);
    int rc;

    tok_list_clear(out);
    if (!norm)
        return -1;
    rc = tok_tokenize(norm, lang, out);
    free(norm);
    return rc;
}

int corpus_segment_dropout(const bpe *codes, const tok_list *words, double dropout,
                           uint64_t *state, tok_list *out)
{
    for (size_t i = 0; i < words->count; i++) {
        const char *w = words->items[i];
        int rc = placeholder_is(w) ? tok_list_push(out, w)
                                   : bpe_segment_word_dropout(codes, w, dropout, state, out);

        if (rc)
            return -1;
    }
    return 0;
}

int corpus_segment(const bpe *codes, const tok_list *words, tok_list *out)
{
    return corpus_segment_dropout(codes, words, 0, NULL, out);
}

int32_t *corpus_ids(const vocab *v, const tok_list *list)
{
    int32_t *ids = malloc(list->count * sizeof(int32_t) + 1);

    if (!ids)
        return NULL;
    for (size_t i = 0; i < list->count; i++)
        ids[i] = vocab_id(v, list->items[i]);
    return ids;
}

void corpus_free_tokens(tok_list *lists, size_t n)
{
    if (!lists)
        return;
    for (size_t i = 0; i < n; i++)
        tok_list_clear(&lists[i]);
    free(lists);
}

/* Tokenizes one side of a pair, noting the line when it held invalid
 * UTF-8. */
static int tokenize_side(const char *text, const char *lang, size_t line, tok_list *out,
                         corpus_stats *stats, int *line_noted)
{
    size_t before = stats->invalid_utf8;

    if (corpus_tokenize(text, lang, out, &stats->invalid_utf8))
        return -1;
    if (stats->invalid_utf8 != before && !*line_noted) {
        if (stats->n_invalid_lines < CORPUS_REPORTED_LINES)
            stats->invalid_lines[stats->n_invalid_lines] = line;
        stats->n_invalid_lines++;
        *line_noted = 1;
    }
    return 0;
}

int corpus_load_text(const char *src_path, const char *tgt_path, corpus_format format,
                     const char *src_lang, const char *tgt_lang, const corpus_filter *filter,
                     tok_list **src_tokens, tok_list **tgt_tokens, size_t *n_out,
                     corpus_stats *stats, char *err, size_t err_size)
{
    char **sl = NULL, **tl = NULL;
    size_t ns = 0, nt = 0, kept = 0;
    tok_list *st = NULL, *tt = NULL;
    int rc = -1;

    memset(stats, 0, sizeof(*stats));
    if (!tgt_path || corpus_format_of(src_path, format) == CORPUS_FORMAT_TSV) {
        if (read_tsv(src_path, &sl, &tl, &ns, err, err_size))
            return -1;
        nt = ns;
    } else {
        if (corpus_read_segments(src_path, format, &sl, &ns, err, err_size))
            return -1;
        if (corpus_read_segments(tgt_path, format, &tl, &nt, err, err_size))
            goto done;
        if (ns != nt) {
            snprintf(err, err_size,
                     "source %s has %zu segments but target %s has %zu; a parallel corpus "
                     "needs one target segment per source segment",
                     src_path, ns, tgt_path, nt);
            goto done;
        }
    }
    st = calloc(ns + 1, sizeof(tok_list));
    tt = calloc(ns + 1, sizeof(tok_list));
    if (!st || !tt)
        goto oom;
    stats->lines = ns;
    for (size_t i = 0; i < ns; i++) {
        int noted = 0;
        size_t a, b;

        if (!sl[i] || !tl[i]) {
            stats->skipped_no_tab++;
            continue;
        }
        if (filter->unescape) {
            corpus_unescape_moses(sl[i]);
            corpus_unescape_moses(tl[i]);
        }
        if (tokenize_side(sl[i], src_lang, i + 1, &st[kept], stats, &noted) ||
            tokenize_side(tl[i], tgt_lang, i + 1, &tt[kept], stats, &noted))
            goto oom;
        a = st[kept].count;
        b = tt[kept].count;
        if (a == 0 || b == 0) {
            stats->skipped_empty++;
            continue;
        }
        if ((int)a > filter->max_len || (int)b > filter->max_len) {
            stats->skipped_long++;
            continue;
        }
        if (filter->max_ratio > 0 &&
            (a > filter->max_ratio * b || b > filter->max_ratio * a)) {
            stats->skipped_ratio++;
            continue;
        }
        kept++;
    }
    tok_list_clear(&st[kept]);
    tok_list_clear(&tt[kept]);
    stats->kept = kept;
    *n_out = kept;
    if (src_tokens) {
        *src_tokens = st;
        st = NULL;
    }
    if (tgt_tokens) {
        *tgt_tokens = tt;
        tt = NULL;
    }
    rc = 0;
    goto done;

oom:
    snprintf(err, err_size, "out of memory tokenizing %s", src_path);
done:
    corpus_free_tokens(st, kept + 1);
    corpus_free_tokens(tt, kept + 1);
    corpus_free_lines(sl, ns);
    corpus_free_lines(tl, nt);
    return rc;
}

int corpus_from_tokens(const tok_list *src, const tok_list *tgt, size_t n, const vocab *sv,
                       const vocab *tv, corpus *out)
{
    memset(out, 0, sizeof(*out));
    out->src = calloc(n + 1, sizeof(int32_t *));
    out->tgt = calloc(n + 1, sizeof(int32_t *));
    out->src_len = calloc(n + 1, sizeof(int32_t));
    out->tgt_len = calloc(n + 1, sizeof(int32_t));
    if (!out->src || !out->tgt || !out->src_len || !out->tgt_len)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        out->src[i] = corpus_ids(sv, &src[i]);
        out->tgt[i] = corpus_ids(tv, &tgt[i]);
        out->n = i + 1;
        if (!out->src[i] || !out->tgt[i])
            goto fail;
        out->src_len[i] = (int32_t)src[i].count;
        out->tgt_len[i] = (int32_t)tgt[i].count;
    }
    out->n = n;
    return 0;

fail:
    corpus_free(out);
    return -1;
}

void corpus_free(corpus *c)
{
    if (c->src)
        for (size_t i = 0; i < c->n; i++)
            free(c->src[i]);
    if (c->tgt)
        for (size_t i = 0; i < c->n; i++)
            free(c->tgt[i]);
    free(c->src);
    free(c->tgt);
    free(c->src_len);
    free(c->tgt_len);
    memset(c, 0, sizeof(*c));
}

/* Sort key: source length, target length, then a random tie-breaker. */
typedef struct {
    int32_t s, t;
    uint32_t noise;
    size_t idx;
} sort_key;

static int cmp_key(const void *a, const void *b)
{
    const sort_key *x = a, *y = b;

    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->noise != y->noise)
        return x->noise < y->noise ? -1 : 1;
    return 0;
}

int corpus_make_batches(const corpus *c, int batch_size, rng_state *rng, corpus_batches *out)
{
    size_t nb = (c->n + batch_size - 1) / batch_size;
    sort_key *keys = malloc((c->n + 1) * sizeof(sort_key));
    size_t *perm = malloc((nb + 1) * sizeof(size_t));

    memset(out, 0, sizeof(*out));
    out->start = malloc((nb + 1) * sizeof(size_t));
    out->order = malloc((c->n + 1) * sizeof(size_t));
    if (!keys || !perm || !out->start || !out->order) {
        free(keys);
        free(perm);
        corpus_batches_free(out);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++)
        keys[i] = (sort_key){c->src_len[i], c->tgt_len[i], rng_next(rng), i};
    qsort(keys, c->n, sizeof(sort_key), cmp_key);

    /* Shuffle whole batches (Fisher-Yates), keeping each batch together. */
    for (size_t i = 0; i < nb; i++)
        perm[i] = i;
    for (size_t i = nb; i > 1; i--) {
        size_t j = rng_below(rng, (uint32_t)i), t = perm[i - 1];

        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    size_t pos = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t first = perm[b] * batch_size, last = first + batch_size;

        if (last > c->n)
            last = c->n;
        out->start[b] = pos;
        for (size_t i = first; i < last; i++)
            out->order[pos++] = keys[i].idx;
    }
    out->start[nb] = pos;
    out->n_batches = nb;
    free(keys);
    free(perm);
    return 0;
}

void corpus_batches_free(corpus_batches *b)
{
    free(b->start);
    free(b->order);
    memset(b, 0, sizeof(*b));
}

int corpus_fill_batch(const corpus *c, const size_t *idx, int count, model_batch *bt)
{
    int S = 0, T = 0;

    for (int b = 0; b < count; b++) {
        if (c->src_len[idx[b]] > S)
            S = c->src_len[idx[b]];
        if (c->tgt_len[idx[b]] + 1 > T)
            T = c->tgt_len[idx[b]] + 1;
    }
    /* Buffers are sized for the largest shape seen so far. */
    size_t ns = (size_t)S * count, nt = (size_t)T * count;
    int32_t *src = realloc(bt->src, (ns + 1) * sizeof(int32_t));

    if (src)
        bt->src = src;
    float *mask = realloc(bt->src_mask, (ns + 1) * sizeof(float));
    if (mask)
        bt->src_mask = mask;
    int32_t *ti = realloc(bt->tgt_in, (nt + 1) * sizeof(int32_t));
    if (ti)
        bt->tgt_in = ti;
    int32_t *to = realloc(bt->tgt_out, (nt + 1) * sizeof(int32_t));
    if (to)
        bt->tgt_out = to;
    if (!src || !mask || !ti || !to)
        return -1;

    bt->B = count;
    bt->S = S;
    bt->T = T;
    bt->n_tokens = 0;
    for (int b = 0; b < count; b++) {
        const int32_t *s = c->src[idx[b]], *y = c->tgt[idx[b]];
        int ls = c->src_len[idx[b]], lt = c->tgt_len[idx[b]], pad = S - ls;

        /* Source reversed and left-padded: step t is s[S-1-t]. */
        for (int t = 0; t < S; t++) {
            size_t r = (size_t)t * count + b;

            bt->src[r] = t < pad ? VOCAB_PAD : s[S - 1 - t];
            bt->src_mask[r] = t < pad ? 0.0f : 1.0f;
        }
        for (int t = 0; t < T; t++) {
            size_t r = (size_t)t * count + b;

            /* Input: <s> y_1 .. y_n; output: y_1 .. y_n </s>; then padding. */
            bt->tgt_in[r] = VOCAB_PAD;
            if (t == 0)
                bt->tgt_in[r] = VOCAB_BOS;
            else if (t <= lt)
                bt->tgt_in[r] = y[t - 1];
            bt->tgt_out[r] = VOCAB_PAD;
            if (t < lt)
                bt->tgt_out[r] = y[t];
            else if (t == lt)
                bt->tgt_out[r] = VOCAB_EOS;
        }
        bt->n_tokens += (size_t)lt + 1;
    }
    return 0;
}

void corpus_batch_free(model_batch *bt)
{
    free(bt->src);
    free(bt->src_mask);
    free(bt->tgt_in);
    free(bt->tgt_out);
    memset(bt, 0, sizeof(*bt));
}
