/* The translate callbacks of the daemon on loaded models. */
#include "translator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Forwards beam search's stop check to the daemon's. */
typedef struct {
    http_stop_fn stop;
    void *stop_ctx;
} stop_forward;

static int forward_stop(void *ctx, size_t i)
{
    const stop_forward *f = ctx;

    return f->stop(f->stop_ctx, i);
}

/* Renders the hypotheses of r into s. Returns 0, or -1 when out of memory. */
static int render_sentence(const model *m, const beam_source *src, const beam_nbest *r,
                           http_sentence *s)
{
    int count = r->count < s->n_best ? r->count : s->n_best;
    char **texts;

    s->stopped = r->stopped;
    if (r->stopped)
        return 0;
    s->hyps = calloc(count > 0 ? count : 1, sizeof(*s->hyps));
    texts = calloc(count > 0 ? count : 1, sizeof(char *));
    if (!s->hyps || !texts || beam_render_nbest(m, r, count, src, texts)) {
        free(texts);
        return -1;
    }
    for (int k = 0; k < count; k++) {
        s->hyps[k].text = texts[k];
        s->hyps[k].score = r->hyps[k].score;
        s->hyps[k].normalized_score = r->hyps[k].normalized_score;
    }
    s->count = (size_t)count;
    free(texts);
    return 0;
}

int translator_translate(void *ctx, size_t pair, int beam_size, http_sentence *sentences,
                         size_t n, http_stop_fn stop, void *stop_ctx, char *err,
                         size_t err_size)
{
    const translator *t = ctx;
    const model *m = t->models[pair];
    beam_options opt = t->options;
    beam_nbest_options nopt = {0};
    stop_forward forward = {stop, stop_ctx};
    beam_source *src = calloc(n + 1, sizeof(*src));
    const int32_t **ids = calloc(n + 1, sizeof(*ids));
    int32_t *len = calloc(n + 1, sizeof(*len)), *max_len = calloc(n + 1, sizeof(*max_len));
    beam_nbest *results = calloc(n + 1, sizeof(*results));
    int rc = -1;

    if (!src || !ids || !len || !max_len || !results)
        goto done;

    /* Step 1: sentences to ids. */
    opt.beam_size = beam_size;
    nopt.n_best = 1;
    for (size_t i = 0; i < n; i++) {
        if (beam_source_prepare(m, sentences[i].text, &src[i]) != 0)
            goto done;
        ids[i] = src[i].ids;
        len[i] = src[i].len;
        sentences[i].source_tokens = (size_t)src[i].len;
        max_len[i] = sentences[i].max_length;
        if (sentences[i].n_best > nopt.n_best)
            nopt.n_best = sentences[i].n_best;
    }
    if (nopt.n_best > beam_size)
        nopt.n_best = beam_size;
    nopt.max_len = max_len;
    nopt.stop = stop ? forward_stop : NULL;
    nopt.stop_ctx = &forward;

    /* Step 2: decode all sentences together, then render the text. */
    if (beam_search_nbest(m, &opt, &nopt, ids, len, n, results) != 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (render_sentence(m, &src[i], &results[i], &sentences[i]) != 0)
            goto done;
    rc = 0;

done:
    if (rc != 0)
        snprintf(err, err_size, "out of memory translating %zu sentences", n);
    for (size_t i = 0; src && results && i < n; i++) {
        beam_source_free(&src[i]);
        beam_nbest_free(&results[i]);
    }
    free(src);
    free(ids);
    free(len);
    free(max_len);
    free(results);
    return rc;
}

size_t translator_count_tokens(void *ctx, size_t pair, const char *sentence)
{
    const translator *t = ctx;
    beam_source src = {0};
    size_t count = (size_t)-1;

    if (beam_source_prepare(t->models[pair], sentence, &src) == 0)
        count = (size_t)src.len;
    beam_source_free(&src);
    return count;
}
