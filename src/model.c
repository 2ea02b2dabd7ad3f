/* Model parameters, the training loss and its gradient (backpropagation
 * through time), and the model file.
 *
 * Dropout, when enabled, is the non-recurrent kind: it masks the input of
 * every LSTM layer and the input of the output layer, never the recurrent
 * state. The output layer runs only on rows whose target is not padding.
 *
 * NOTE: the model file stores floats in host byte order and the loader
 * assumes a little-endian host, which every supported target (x86-64) is.
 */
#include "model.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

const char *model_config_check(const model_config *cfg)
{
    if (cfg->layers < 1 || cfg->layers > MODEL_MAX_LAYERS)
        return "layers must be between 1 and 8";
    if (cfg->embed < 1 || cfg->embed > 8192)
        return "embedding size must be between 1 and 8192";
    if (cfg->hidden < 1 || cfg->hidden > 8192)
        return "hidden size must be between 1 and 8192";
    if (cfg->src_vocab <= VOCAB_N_SPECIAL || cfg->tgt_vocab <= VOCAB_N_SPECIAL)
        return "a vocabulary holds no token besides the special ones";
    if (cfg->attention != 0 && cfg->attention != 1)
        return "the attention flag must be 0 or 1";
    return NULL;
}

size_t model_param_count(const model_config *cfg)
{
    size_t n = (size_t)cfg->src_vocab * cfg->embed + (size_t)cfg->tgt_vocab * cfg->embed;

    for (int l = 0; l < cfg->layers; l++)
        n += 2 * lstm_param_count(l == 0 ? cfg->embed : cfg->hidden, cfg->hidden);
    n += (size_t)cfg->tgt_vocab * (cfg->hidden + 1);
    return n + (cfg->attention ? attention_param_count(cfg->hidden) : 0);
}

void model_bind(const model_config *cfg, float *block, model_views *v)
{
    float *p = block;

    memset(v, 0, sizeof(*v));
    v->src_embed = p;
    p += (size_t)cfg->src_vocab * cfg->embed;
    v->tgt_embed = p;
    p += (size_t)cfg->tgt_vocab * cfg->embed;
    for (int l = 0; l < cfg->layers; l++)
        p = lstm_bind(&v->enc[l], l == 0 ? cfg->embed : cfg->hidden, cfg->hidden, p);
    for (int l = 0; l < cfg->layers; l++)
        p = lstm_bind(&v->dec[l], l == 0 ? cfg->embed : cfg->hidden, cfg->hidden, p);
    v->out_w = p;
    p += (size_t)cfg->tgt_vocab * cfg->hidden;
    v->out_b = p;
    p += cfg->tgt_vocab;
    if (cfg->attention)
        attention_bind(&v->att, cfg->hidden, p);
}

model *model_new(const model_config *cfg, vocab *src_vocab, vocab *tgt_vocab)
{
    model *m = calloc(1, sizeof(*m));

    if (!m)
        goto fail;
    m->cfg = *cfg;
    m->src_vocab = src_vocab;
    m->tgt_vocab = tgt_vocab;
    m->n_params = model_param_count(cfg);
    m->params = calloc(m->n_params, sizeof(float));
    if (!m->params) {
        free(m);
        goto fail;
    }
    model_bind(cfg, m->params, &m->w);
    return m;

fail:
    vocab_free(src_vocab);
    vocab_free(tgt_vocab);
    return NULL;
}

void model_set_bpe(model *m, bpe *src, bpe *tgt)
{
    m->src_bpe = src;
    m->tgt_bpe = tgt;
}

int model_codes_use_vocab(bpe *codes, const vocab *v)
{
    size_t n = vocab_size(v);
    const char **tokens = malloc((n ? n : 1) * sizeof *tokens);
    int rc;

    if (!tokens)
        return -1;
    for (size_t i = 0; i < n; i++)
        tokens[i] = vocab_token(v, (int32_t)i);
    rc = bpe_set_vocabulary(codes, tokens, n);
    free(tokens);
    return rc;
}

int model_filter_subwords(model *m)
{
    if (!m->src_bpe)
        return 0;
    if (m->tgt_bpe == m->src_bpe && !(m->tgt_bpe = bpe_copy(m->src_bpe))) {
        m->tgt_bpe = m->src_bpe;
        return -1;
    }
    if (model_codes_use_vocab(m->src_bpe, m->src_vocab) ||
        model_codes_use_vocab(m->tgt_bpe, m->tgt_vocab))
        return -1;
    m->subword_filter = 1;
    return 0;
}

void model_init_uniform(model *m, float scale, rng_state *rng)
{
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (2.0f * rng_uniform(rng) - 1.0f) * scale;
}

void model_free(model *m)
{
    if (!m)
        return;
    vocab_free(m->src_vocab);
    vocab_free(m->tgt_vocab);
    if (m->tgt_bpe != m->src_bpe)
        bpe_free(m->tgt_bpe);
    bpe_free(m->src_bpe);
    free(m->params);
    free(m);
}

/* ---- loss and gradient ---- */

typedef struct {
    float *x;     /* [steps*B, In] layer input after dropout */
    float *drop;  /* [steps*B, In] dropout multipliers (0 or 1/keep), or NULL */
    lstm_cache cache;
} layer_state;

struct model_workspace {
    float *buf;
    size_t cap;
    layer_state enc[MODEL_MAX_LAYERS], dec[MODEL_MAX_LAYERS];
    float *emb;       /* [max(S,T)*B, E] gathered embeddings before dropout */
    float *top;       /* [N, H] decoder outputs of non-padding rows, after dropout */
    float *top_drop;  /* [N, H] or NULL */
    float *logits;    /* [N, Vt], then the gradient of the loss w.r.t. them */
    float *dtop;      /* [T*B, H] */
    float *dx[2];     /* [max(S,T)*B, max(E,H)] alternating input gradients */
    float *dh0, *dc0; /* [L, B, H] gradients w.r.t. the encoder's final states */
    float *scratch;   /* lstm_backward scratch */
    /* Attention (NULL without): keys [S*B, H], weights [B][T, S] and their
     * gradient, context and output [T*B, H], and backward scratch. */
    float *keys, *att, *datt, *ctx, *att_out;
    float *dctx, *dkeys, *ddec, *denc;
    int32_t *rows;    /* [2N] batch row, then target id, of each output row */
    size_t rows_cap;
};

model_workspace *model_workspace_new(void)
{
    return calloc(1, sizeof(model_workspace));
}

void model_workspace_free(model_workspace *ws)
{
    if (!ws)
        return;
    free(ws->buf);
    free(ws->rows);
    free(ws);
}

/* Cursor over the workspace buffer; with base NULL it only measures. */
typedef struct {
    float *base;
    size_t used;
} arena;

static float *take(arena *a, size_t n)
{
    float *r = a->base ? a->base + a->used : NULL;

    a->used += (n + 15) & ~(size_t)15; /* keep every view 64-byte aligned */
    return r;
}

/* Lays the workspace out for one batch shape; grows the buffer if needed. */
static int workspace_layout(model_workspace *ws, const model_config *cfg, int B, int S, int T,
                            size_t N, int dropout, int backward)
{
    int L = cfg->layers, E = cfg->embed, H = cfg->hidden;
    int steps = S > T ? S : T, width = E > H ? E : H;
    arena a = {NULL, 0}, *p = &a;

    /* The first pass only measures; the second assigns the views. */
    for (int pass = 0; pass < 2; pass++) {
        a.used = 0;
        for (int side = 0; side < 2; side++) {
            int n = side == 0 ? S : T;
            layer_state *ls = side == 0 ? ws->enc : ws->dec;

            for (int l = 0; l < L; l++) {
                size_t in = l == 0 ? E : H, sz = lstm_cache_floats(n, B, H);

                ls[l].x = take(p, (size_t)n * B * in);
                ls[l].drop = dropout ? take(p, (size_t)n * B * in) : NULL;
                lstm_cache_bind(&ls[l].cache, n, B, H, take(p, sz));
            }
        }
        ws->emb = take(p, (size_t)steps * B * E);
        ws->top = take(p, N * H);
        ws->top_drop = dropout ? take(p, N * H) : NULL;
        ws->logits = take(p, N * (size_t)cfg->tgt_vocab);
        ws->keys = ws->att = ws->datt = ws->ctx = ws->att_out = NULL;
        ws->dctx = ws->dkeys = ws->ddec = ws->denc = NULL;
        if (cfg->attention) {
            ws->keys = take(p, (size_t)S * B * H);
            ws->att = take(p, (size_t)B * T * S);
            ws->ctx = take(p, (size_t)T * B * H);
            ws->att_out = take(p, (size_t)T * B * H);
            if (backward) {
                ws->datt = take(p, (size_t)B * T * S);
                ws->dctx = take(p, (size_t)T * B * H);
                ws->dkeys = take(p, (size_t)S * B * H);
                ws->ddec = take(p, (size_t)T * B * H);
                ws->denc = take(p, (size_t)S * B * H);
            }
        }
        if (backward) {
            size_t s1 = lstm_backward_floats(S, B, H), s2 = lstm_backward_floats(T, B, H);

            ws->dtop = take(p, (size_t)T * B * H);
            ws->dx[0] = take(p, (size_t)steps * B * width);
            ws->dx[1] = take(p, (size_t)steps * B * width);
            ws->dh0 = take(p, (size_t)L * B * H);
            ws->dc0 = take(p, (size_t)L * B * H);
            ws->scratch = take(p, s1 > s2 ? s1 : s2);
        }
        if (pass == 0) {
            size_t need = a.used;

            if (need > ws->cap) {
                float *nb = NULL;

                free(ws->buf);
                ws->buf = NULL;
                ws->cap = 0;
                if (posix_memalign((void **)&nb, 64, need * sizeof(float)))
                    return -1;
                ws->buf = nb;
                ws->cap = need;
            }
            a.base = ws->buf;
        }
    }
    if (2 * N + 1 > ws->rows_cap) {
        int32_t *r = realloc(ws->rows, (2 * N + 1) * sizeof(int32_t));

        if (!r)
            return -1;
        ws->rows = r;
        ws->rows_cap = 2 * N + 1;
    }
    return 0;
}

static void gather_embeddings(const float *table, int E, const int32_t *ids, size_t n, float *out)
{
    for (size_t r = 0; r < n; r++)
        memcpy(out + r * E, table + (size_t)ids[r] * E, sizeof(float) * E);
}

static void scatter_embeddings(float *table, int E, const int32_t *ids, size_t n,
                               const float *grad)
{
    for (size_t r = 0; r < n; r++) {
        float *row;

        if (ids[r] == VOCAB_PAD)
            continue;
        row = table + (size_t)ids[r] * E;
        for (int j = 0; j < E; j++)
            row[j] += grad[r * E + j];
    }
}

/* out = in * multiplier, drawing multipliers into drop when drop != NULL;
 * plain copy otherwise. */
static void apply_dropout(const float *in, float *out, float *drop, size_t n, float p,
                          rng_state *rng)
{
    if (!drop) {
        memcpy(out, in, sizeof(float) * n);
        return;
    }
    float scale = 1.0f / (1.0f - p);

    for (size_t i = 0; i < n; i++) {
        drop[i] = rng_uniform(rng) < p ? 0.0f : scale;
        out[i] = in[i] * drop[i];
    }
}

static void mul_inplace(float *x, const float *m, size_t n)
{
    if (m)
        for (size_t i = 0; i < n; i++)
            x[i] *= m[i];
}

/* Row-wise log-softmax cross-entropy on logits [N, V] against targets
 * smoothed by eps: weight 1 - eps on the target, eps / V on every entry.
 * Returns the summed loss; when want_grad, overwrites logits by
 * scale * (softmax - smoothed target). */
static double softmax_xent(float *logits, size_t N, int V, const int32_t *targets, float eps,
                           int want_grad, float scale)
{
    double total = 0.0;

    for (size_t r = 0; r < N; r++) {
        float *z = logits + r * V, mx = z[0];
        double sum = 0.0, shifted = 0.0;
        int y = targets[r];

        for (int j = 1; j < V; j++)
            if (z[j] > mx)
                mx = z[j];
        float zy = z[y] - mx;

        /* z becomes exp(z - max), so the gradient needs no second exp. */
        for (int j = 0; j < V; j++) {
            shifted += z[j] - mx;
            z[j] = expf(z[j] - mx);
            sum += z[j];
        }
        /* -log p_y = log(sum) - zy, and the uniform part's mean -log p_j is
         * log(sum) - shifted / V. */
        total += log(sum) - (1.0 - eps) * zy - eps * shifted / V;
        if (want_grad) {
            float k = (float)(scale / sum), uniform = scale * eps / V;

            for (int j = 0; j < V; j++)
                z[j] = z[j] * k - uniform;
            z[y] -= scale * (1.0f - eps);
        }
    }
    return total;
}

/* Runs the encoder, the decoder and the attention over bt, dropping LSTM
 * inputs with probability dropout. Returns the rows the output layer reads: the
 * attention outputs, or the decoder's top layer without attention. */
static const float *forward(const model *m, const model_batch *bt, float dropout,
                            rng_state *rng, model_workspace *ws)
{
    const model_config *cfg = &m->cfg;
    const model_views *w = &m->w;
    int L = cfg->layers, E = cfg->embed, H = cfg->hidden;
    int B = bt->B, S = bt->S, T = bt->T;
    size_t SB = (size_t)S * B, TB = (size_t)T * B, BH = (size_t)B * H;

    /* Encoder: embeddings of the reversed source through L layers. */
    gather_embeddings(w->src_embed, E, bt->src, SB, ws->emb);
    for (int l = 0; l < L; l++) {
        layer_state *ls = &ws->enc[l];
        const float *in = l == 0 ? ws->emb : ws->enc[l - 1].cache.h + BH;

        apply_dropout(in, ls->x, ls->drop, SB * (l == 0 ? E : H), dropout, rng);
        lstm_forward(&w->enc[l], S, B, ls->x, NULL, NULL, bt->src_mask, &ls->cache);
    }

    /* Decoder: layer l starts from encoder layer l's final (h, c). */
    gather_embeddings(w->tgt_embed, E, bt->tgt_in, TB, ws->emb);
    for (int l = 0; l < L; l++) {
        layer_state *ls = &ws->dec[l];
        const lstm_cache *enc = &ws->enc[l].cache;
        const float *in = l == 0 ? ws->emb : ws->dec[l - 1].cache.h + BH;

        apply_dropout(in, ls->x, ls->drop, TB * (l == 0 ? E : H), dropout, rng);
        lstm_forward(&w->dec[l], T, B, ls->x, enc->h + SB * H, enc->c + SB * H, NULL, &ls->cache);
    }

    /* Attention over the encoder's top layer, for every decoder row. */
    const float *dec_out = ws->dec[L - 1].cache.h + BH;
    const float *enc_out = ws->enc[L - 1].cache.h + BH;
    if (!cfg->attention)
        return dec_out;
    attention_keys(&w->att, H, SB, enc_out, ws->keys);
    for (int b = 0; b < B; b++)
        attention_attend(H, T, S, dec_out + (size_t)b * H, B * H, ws->keys + (size_t)b * H,
                         enc_out + (size_t)b * H, B * H, bt->src_mask + b, B,
                         ws->att + (size_t)b * T * S, ws->ctx + (size_t)b * H, B * H);
    attention_output(&w->att, H, TB, ws->ctx, dec_out, ws->att_out);
    return ws->att_out;
}

int model_attention(const model *m, const model_batch *bt, model_workspace *ws, float *a)
{
    if (!m->cfg.attention)
        return 1;
    if (workspace_layout(ws, &m->cfg, bt->B, bt->S, bt->T, 0, 0, 0))
        return -1;
    forward(m, bt, 0.0f, NULL, ws);
    memcpy(a, ws->att, sizeof(float) * (size_t)bt->B * bt->T * bt->S);
    return 0;
}

int model_loss(const model *m, const model_batch *bt, const model_views *grad, float dropout,
               float smoothing, rng_state *rng, model_workspace *ws, double *loss)
{
    const model_config *cfg = &m->cfg;
    const model_views *w = &m->w;
    int L = cfg->layers, E = cfg->embed, H = cfg->hidden, V = cfg->tgt_vocab;
    int B = bt->B, S = bt->S, T = bt->T;
    size_t N = 0, SB = (size_t)S * B, TB = (size_t)T * B, BH = (size_t)B * H;
    int use_drop = dropout > 0.0f;
    int32_t *rows, *ids;

    for (size_t r = 0; r < TB; r++)
        N += bt->tgt_out[r] != VOCAB_PAD;
    if (workspace_layout(ws, cfg, B, S, T, N, use_drop, grad != NULL))
        return -1;

    const float *top_in = forward(m, bt, dropout, rng, ws);
    const float *dec_out = ws->dec[L - 1].cache.h + BH;
    const float *enc_out = ws->enc[L - 1].cache.h + BH;

    /* Output layer on the rows that have a real target. */
    rows = ws->rows;
    ids = ws->rows + N;
    for (size_t r = 0, k = 0; r < TB; r++) {
        if (bt->tgt_out[r] == VOCAB_PAD)
            continue;
        memcpy(ws->top + k * H, top_in + r * H, sizeof(float) * H);
        rows[k] = (int32_t)r;
        ids[k++] = bt->tgt_out[r];
    }
    if (use_drop)
        apply_dropout(ws->top, ws->top, ws->top_drop, N * H, dropout, rng);
    for (size_t k = 0; k < N; k++)
        memcpy(ws->logits + k * V, w->out_b, sizeof(float) * V);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, V, H, 1.0f, ws->top, H, w->out_w,
                H, 1.0f, ws->logits, V);

    *loss = softmax_xent(ws->logits, N, V, ids, smoothing, grad != NULL, 1.0f / B);
    if (!grad)
        return 0;

    /* Output layer backward: dW_out += dZ^T top, db += colsum dZ,
     * dtop = dZ W_out, then undo the compaction into dtop [T*B, H]. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, H, (int)N, 1.0f, ws->logits, V,
                ws->top, H, 1.0f, grad->out_w, H);
    for (size_t k = 0; k < N; k++)
        for (int j = 0; j < V; j++)
            grad->out_b[j] += ws->logits[k * V + j];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, H, V, 1.0f, ws->logits, V,
                w->out_w, H, 0.0f, ws->top, H);
    mul_inplace(ws->top, ws->top_drop, N * H);
    memset(ws->dtop, 0, sizeof(float) * TB * H);
    for (size_t k = 0; k < N; k++)
        memcpy(ws->dtop + (size_t)rows[k] * H, ws->top + k * H, sizeof(float) * H);

    /* Attention backward turns dtop into the gradient w.r.t. the decoder's
     * top layer (ddec) and the encoder's (denc). */
    const float *dh_out = ws->dtop;
    if (cfg->attention) {
        attention_backward(&w->att, (attention_weights *)&grad->att, H, B, S, T, enc_out,
                           ws->keys, dec_out, ws->ctx, ws->att_out, ws->att, ws->dtop, ws->datt,
                           ws->dctx, ws->dkeys, ws->ddec, ws->denc);
        dh_out = ws->ddec;
    }

    /* Decoder backward, top layer first. dx of layer l is the gradient
     * w.r.t. its dropped-out input; the dropout multipliers turn it into
     * the gradient w.r.t. layer l-1's outputs (or the embeddings). */
    for (int l = L - 1; l >= 0; l--) {
        layer_state *ls = &ws->dec[l];
        float *dx = ws->dx[l & 1];
        size_t in = l == 0 ? E : H;

        lstm_backward(&w->dec[l], (lstm_weights *)&grad->dec[l], T, B, ls->x, NULL, &ls->cache,
                      dh_out, NULL, NULL, dx, ws->dh0 + l * BH, ws->dc0 + l * BH, ws->scratch);
        mul_inplace(dx, ls->drop, TB * in);
        dh_out = dx;
    }
    scatter_embeddings(grad->tgt_embed, E, bt->tgt_in, TB, dh_out);

    /* Encoder backward: its final states receive the decoder's
     * initial-state gradients, and its top layer's outputs the attention's. */
    dh_out = cfg->attention ? ws->denc : NULL;
    for (int l = L - 1; l >= 0; l--) {
        layer_state *ls = &ws->enc[l];
        float *dx = ws->dx[l & 1];
        size_t in = l == 0 ? E : H;

        lstm_backward(&w->enc[l], (lstm_weights *)&grad->enc[l], S, B, ls->x, bt->src_mask,
                      &ls->cache, dh_out, ws->dh0 + l * BH, ws->dc0 + l * BH, dx, NULL, NULL,
                      ws->scratch);
        mul_inplace(dx, ls->drop, SB * in);
        dh_out = dx;
    }
    scatter_embeddings(grad->src_embed, E, bt->src, SB, dh_out);
    return 0;
}

/* ---- model file ---- */

static const char model_magic[8] = {'S', 'E', 'Q', 'M', 'T', 'M', 'D', 'L'};

/* Growable byte buffer for serializing. */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    int failed;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *d;

        while (cap < b->len + n)
            cap *= 2;
        d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v)
{
    put(b, &v, 4);
}

static void put_vocab(bytes *b, const vocab *v)
{
    size_t n = vocab_size(v);

    put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const char *tok = vocab_token(v, (int32_t)i);
        uint32_t len = (uint32_t)strlen(tok);

        put_u32(b, len);
        put(b, tok, len);
    }
}

/* Bits of the tokenizer flags in a model file. */
enum { TOKENIZER_PLACEHOLDERS = 1, TOKENIZER_SUBWORD_FILTER = 2 };

/* Tokenizer version written for models with TOKENIZER_SUBWORD_FILTER.
 * Builds from before the filter ignore flag bits they do not know, and
 * would split such a model's input without the filter. They reject this
 * version instead. Other models keep MODEL_TOKENIZER_VERSION. */
#define TOKENIZER_VERSION_FILTERED (MODEL_TOKENIZER_VERSION + 1)

/* How the codes section of a model file is laid out. */
enum { CODES_NONE = 0, CODES_JOINT = 1, CODES_SEPARATE = 2 };

/* Bits of the architecture flags in a model file. */
enum { ARCH_ATTENTION = 1 };

/* Codes as their 64-bit hash, length and subword-nmt text. */
static void put_codes(bytes *b, const bpe *codes)
{
    size_t len;
    char *text;
    uint64_t hash;

    if (!codes)
        return;
    text = bpe_to_text(codes, &len);
    if (!text) {
        b->failed = 1;
        return;
    }
    hash = bpe_hash(codes);
    put(b, &hash, 8);
    put_u32(b, (uint32_t)len);
    put(b, text, len);
    free(text);
}

int model_save(const model *m, const char *path, model_dtype dtype, char *err, size_t err_size)
{
    bytes b = {0};
    char tmp[4096];
    FILE *f = NULL;
    uint32_t crc;
    uint64_t n = m->n_params, file_size = 0;

    put(&b, model_magic, sizeof(model_magic));
    /* A model without attention is written as version 2, which older
     * builds read too. */
    put_u32(&b, m->cfg.attention ? MODEL_FILE_VERSION : 2);
    put(&b, &file_size, 8); /* patched below, once the size is known */
    put_u32(&b, (uint32_t)m->cfg.layers);
    put_u32(&b, (uint32_t)m->cfg.embed);
    put_u32(&b, (uint32_t)m->cfg.hidden);
    put_u32(&b, (uint32_t)m->cfg.src_vocab);
    put_u32(&b, (uint32_t)m->cfg.tgt_vocab);
    put(&b, m->cfg.src_lang, sizeof(m->cfg.src_lang));
    put(&b, m->cfg.tgt_lang, sizeof(m->cfg.tgt_lang));
    put_u32(&b, m->subword_filter ? TOKENIZER_VERSION_FILTERED : MODEL_TOKENIZER_VERSION);
    put_u32(&b, (m->placeholders ? TOKENIZER_PLACEHOLDERS : 0) |
                    (m->subword_filter ? TOKENIZER_SUBWORD_FILTER : 0));
    uint32_t codes_mode = CODES_SEPARATE;

    /* Filtered sides hold equal codes in two objects; they are stored once. */
    if (!m->src_bpe)
        codes_mode = CODES_NONE;
    else if (m->src_bpe == m->tgt_bpe || bpe_same_merges(m->src_bpe, m->tgt_bpe))
        codes_mode = CODES_JOINT;
    put_u32(&b, codes_mode);
    put_codes(&b, m->src_bpe);
    if (codes_mode == CODES_SEPARATE)
        put_codes(&b, m->tgt_bpe);
    if (m->cfg.attention)
        put_u32(&b, ARCH_ATTENTION);
    put_vocab(&b, m->src_vocab);
    put_vocab(&b, m->tgt_vocab);
    put(&b, &n, 8);
    put_u32(&b, (uint32_t)dtype);
    if (dtype == MODEL_F16) {
        for (size_t i = 0; i < m->n_params; i++) {
            _Float16 h = (_Float16)m->params[i];

            put(&b, &h, sizeof(h));
        }
    } else {
        put(&b, m->params, m->n_params * sizeof(float));
    }
    if (b.failed) {
        snprintf(err, err_size, "out of memory while writing model %s", path);
        free(b.data);
        return -1;
    }
    file_size = b.len + 4;
    memcpy(b.data + sizeof(model_magic) + 4, &file_size, 8);
    crc = (uint32_t)crc32(0L, b.data, (uInt)b.len);
    put_u32(&b, crc);

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err, err_size, "model path too long: %s", path);
        free(b.data);
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "cannot write model %s: it exists and is not a regular file "
                                "(a link, device or folder); give a file name", path);
        free(b.data);
        return -1;
    }
    f = fopen(tmp, "wb");
    int write_failed = !f || fwrite(b.data, 1, b.len, f) != b.len || fflush(f) != 0;
    if (f && fclose(f) != 0)
        write_failed = 1;
    if (write_failed) {
        snprintf(err, err_size, "cannot write model %s: %s", path, strerror(errno));
        remove(tmp);
        free(b.data);
        return -1;
    }
    free(b.data);
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Bounds-checked reader over a loaded file. */
typedef struct {
    const unsigned char *p, *end;
} reader;

static int get(reader *r, void *dst, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return -1;
    memcpy(dst, r->p, n);
    r->p += n;
    return 0;
}

static int get_u32(reader *r, uint32_t *v)
{
    return get(r, v, 4);
}

static vocab *get_vocab(reader *r, uint32_t expected)
{
    uint32_t n, len;
    char **toks;
    vocab *v = NULL;
    size_t i;

    if (get_u32(r, &n) || n != expected)
        return NULL;
    toks = calloc(n, sizeof(char *));
    if (!toks)
        return NULL;
    for (i = 0; i < n; i++) {
        if (get_u32(r, &len) || (size_t)(r->end - r->p) < len)
            goto done;
        toks[i] = malloc(len + 1);
        if (!toks[i])
            goto done;
        memcpy(toks[i], r->p, len);
        toks[i][len] = '\0';
        r->p += len;
    }
    v = vocab_from_tokens((const char *const *)toks, n);
done:
    for (i = 0; i < n; i++)
        free(toks[i]);
    free(toks);
    return v;
}

/* Reads codes written by put_codes; NULL with a message in err when they
 * are unreadable or their hash does not match. */
static bpe *get_codes(reader *r, const char *path, char *err, size_t err_size)
{
    uint64_t hash;
    uint32_t len;
    bpe *codes;

    if (get(r, &hash, 8) || get_u32(r, &len) || (size_t)(r->end - r->p) < len) {
        snprintf(err, err_size, "model %s is truncated (subword codes)", path);
        return NULL;
    }
    codes = bpe_from_text((const char *)r->p, len, path, err, err_size);
    r->p += len;
    if (codes && bpe_hash(codes) != hash) {
        snprintf(err, err_size, "model %s is corrupt: subword codes do not match their hash",
                 path);
        bpe_free(codes);
        return NULL;
    }
    return codes;
}

model *model_load(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    long size;
    model *m = NULL;
    struct stat st = {0};
    model_config cfg = {0};
    uint32_t version, stored_crc, u[5], dtype, tok_version = MODEL_TOKENIZER_VERSION;
    uint32_t codes_mode = CODES_NONE, tok_flags = 0;
    bpe *src_codes = NULL, *tgt_codes = NULL;
    size_t width;
    uint64_t n_params;
    reader r;
    vocab *sv = NULL, *tv = NULL;
    const char *why;

    if (!f) {
        snprintf(err, err_size, "cannot open model %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "cannot read model %s: %s", path,
                 S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file");
        fclose(f);
        return NULL;
    }
    size = (long)st.st_size;
    if (size == 0) {
        snprintf(err, err_size, "model %s is empty (0 bytes); is it an interrupted download?",
                 path);
        fclose(f);
        return NULL;
    }
    data = malloc(size > 0 ? (size_t)size : 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, err_size, "cannot read model %s", path);
        goto fail;
    }
    r.p = data;
    r.end = data + size;

    if (size < (long)sizeof(model_magic) || memcmp(data, model_magic, sizeof(model_magic)) != 0) {
        snprintf(err, err_size, "%s is not a seqmt model file (bad magic bytes)", path);
        goto fail;
    }
    r.p += sizeof(model_magic);
    if (get_u32(&r, &version)) {
        snprintf(err, err_size, "model %s is truncated (%ld bytes)", path, size);
        goto fail;
    }
    if (version < 1 || version > MODEL_FILE_VERSION) {
        snprintf(err, err_size,
                 "model %s has format version %u, but this seqmt reads versions 1 to %d; "
                 "retrain it or use a matching seqmt",
                 path, version, MODEL_FILE_VERSION);
        goto fail;
    }
    /* From version 2 on the header stores the file's size, so the loader can
     * report a short file as truncated instead of as a checksum mismatch. */
    if (version >= 2) {
        uint64_t expected = 0;

        if (get(&r, &expected, 8)) {
            snprintf(err, err_size, "model %s is truncated (%ld bytes)", path, size);
            goto fail;
        }
        if ((uint64_t)size < expected) {
            snprintf(err, err_size,
                     "model %s is truncated: %ld of %llu bytes; copy it again or retrain it",
                     path, size, (unsigned long long)expected);
            goto fail;
        }
        if ((uint64_t)size > expected) {
            snprintf(err, err_size, "model %s is corrupt: %llu bytes past its end", path,
                     (unsigned long long)((uint64_t)size - expected));
            goto fail;
        }
    }
    if (get(&r, u, sizeof(u)) || get(&r, cfg.src_lang, 8) || get(&r, cfg.tgt_lang, 8)) {
        snprintf(err, err_size, "model %s is truncated (%ld bytes)", path, size);
        goto fail;
    }
    cfg.layers = (int32_t)u[0];
    cfg.embed = (int32_t)u[1];
    cfg.hidden = (int32_t)u[2];
    cfg.src_vocab = (int32_t)u[3];
    cfg.tgt_vocab = (int32_t)u[4];
    cfg.src_lang[7] = cfg.tgt_lang[7] = '\0';
    if ((why = model_config_check(&cfg)) != NULL || u[3] > 10000000 || u[4] > 10000000) {
        snprintf(err, err_size, "model %s is corrupt: %s", path,
                 why ? why : "vocabulary size out of range");
        goto fail;
    }

    /* Everything but the last 4 bytes is covered by the checksum. */
    if (size < (long)(r.p - data) + 4 + 8) {
        snprintf(err, err_size, "model %s is truncated (%ld bytes)", path, size);
        goto fail;
    }
    memcpy(&stored_crc, data + size - 4, 4);
    r.end = data + size - 4;
    if ((uint32_t)crc32(0L, data, (uInt)(size - 4)) != stored_crc) {
        snprintf(err, err_size,
                 "model %s is corrupt: checksum mismatch; copy it again or retrain it", path);
        goto fail;
    }
    if (version >= 2) {
        if (get_u32(&r, &tok_version) || get_u32(&r, &tok_flags) || get_u32(&r, &codes_mode)) {
            snprintf(err, err_size, "model %s is truncated (tokenizer settings)", path);
            goto fail;
        }
        if (tok_version != MODEL_TOKENIZER_VERSION && tok_version != TOKENIZER_VERSION_FILTERED) {
            snprintf(err, err_size,
                     "model %s was trained with tokenizer version %u, but this seqmt has "
                     "versions %d and %d; retrain it or use a matching seqmt",
                     path, tok_version, MODEL_TOKENIZER_VERSION, TOKENIZER_VERSION_FILTERED);
            goto fail;
        }
        if (tok_flags & ~(uint32_t)(TOKENIZER_PLACEHOLDERS | TOKENIZER_SUBWORD_FILTER)) {
            snprintf(err, err_size,
                     "model %s uses tokenizer flags 0x%x that this seqmt does not know; use a "
                     "newer seqmt",
                     path, tok_flags & ~(uint32_t)(TOKENIZER_PLACEHOLDERS |
                                                   TOKENIZER_SUBWORD_FILTER));
            goto fail;
        }
        if (((tok_flags & TOKENIZER_SUBWORD_FILTER) != 0) !=
            (tok_version == TOKENIZER_VERSION_FILTERED)) {
            snprintf(err, err_size,
                     "model %s is corrupt: tokenizer version %u does not match its subword "
                     "filter flag",
                     path, tok_version);
            goto fail;
        }
        if ((tok_flags & TOKENIZER_SUBWORD_FILTER) && codes_mode == CODES_NONE) {
            snprintf(err, err_size, "model %s is corrupt: a subword filter without codes", path);
            goto fail;
        }
        if (codes_mode > CODES_SEPARATE) {
            snprintf(err, err_size, "model %s is corrupt: unknown subword mode %u", path,
                     codes_mode);
            goto fail;
        }
        if (codes_mode != CODES_NONE && !(src_codes = get_codes(&r, path, err, err_size)))
            goto fail;
        tgt_codes = src_codes;
        if (codes_mode == CODES_SEPARATE && !(tgt_codes = get_codes(&r, path, err, err_size)))
            goto fail;
    }
    if (version >= 3) {
        uint32_t arch;

        if (get_u32(&r, &arch)) {
            snprintf(err, err_size, "model %s is truncated (architecture flags)", path);
            goto fail;
        }
        if (arch & ~(uint32_t)ARCH_ATTENTION) {
            snprintf(err, err_size,
                     "model %s uses architecture flags 0x%x that this seqmt does not know; "
                     "use a newer seqmt",
                     path, arch & ~(uint32_t)ARCH_ATTENTION);
            goto fail;
        }
        cfg.attention = (arch & ARCH_ATTENTION) != 0;
    }
    sv = get_vocab(&r, u[3]);
    tv = sv ? get_vocab(&r, u[4]) : NULL;
    if (!sv || !tv || get(&r, &n_params, 8) || get_u32(&r, &dtype)) {
        snprintf(err, err_size, "model %s is truncated or corrupt (vocabulary unreadable)", path);
        goto fail;
    }
    if (n_params != model_param_count(&cfg)) {
        snprintf(err, err_size, "model %s is corrupt: %llu weights for a configuration of %zu",
                 path, (unsigned long long)n_params, model_param_count(&cfg));
        goto fail;
    }
    if (dtype != MODEL_F32 && dtype != MODEL_F16) {
        snprintf(err, err_size, "model %s is corrupt: unknown weight precision %u", path, dtype);
        goto fail;
    }
    width = dtype == MODEL_F16 ? sizeof(_Float16) : sizeof(float);
    if ((uint64_t)(r.end - r.p) < n_params * width) {
        snprintf(err, err_size, "model %s is truncated: %zu bytes of weights, expected %llu",
                 path, (size_t)(r.end - r.p), (unsigned long long)(n_params * width));
        goto fail;
    }
    m = model_new(&cfg, sv, tv);
    sv = tv = NULL;
    if (!m) {
        snprintf(err, err_size, "out of memory loading model %s", path);
        goto fail;
    }
    model_set_bpe(m, src_codes, tgt_codes);
    src_codes = tgt_codes = NULL;
    m->placeholders = (tok_flags & TOKENIZER_PLACEHOLDERS) != 0;
    if ((tok_flags & TOKENIZER_SUBWORD_FILTER) && model_filter_subwords(m)) {
        snprintf(err, err_size, "out of memory loading model %s", path);
        model_free(m);
        m = NULL;
        goto fail;
    }
    if (dtype == MODEL_F16) {
        for (size_t i = 0; i < n_params; i++) {
            _Float16 h;

            memcpy(&h, r.p + i * sizeof(h), sizeof(h));
            m->params[i] = (float)h;
        }
    } else {
        memcpy(m->params, r.p, n_params * sizeof(float));
    }
    free(data);
    fclose(f);
    return m;

fail:
    if (tgt_codes != src_codes)
        bpe_free(tgt_codes);
    bpe_free(src_codes);
    vocab_free(sv);
    vocab_free(tv);
    free(data);
    fclose(f);
    return NULL;
}
