/* LSTM layer kernels. Every matrix product goes through OpenBLAS; the
 * input projections of all T steps (forward) and the weight gradients of
 * all T steps (backward) are single large products, so only the recurrent
 * product h_{t-1} Wh^T is done step by step. */
#include "lstm.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

size_t lstm_param_count(int input, int hidden)
{
    return (size_t)4 * hidden * (input + hidden + 1);
}

float *lstm_bind(lstm_weights *w, int input, int hidden, float *block)
{
    w->input = input;
    w->hidden = hidden;
    w->wx = block;
    w->wh = w->wx + (size_t)4 * hidden * input;
    w->b = w->wh + (size_t)4 * hidden * hidden;
    return w->b + (size_t)4 * hidden;
}

size_t lstm_cache_floats(int T, int B, int hidden)
{
    size_t tb = (size_t)T * B, h = (size_t)hidden;

    return tb * 4 * h + tb * h + 2 * (tb + B) * h;
}

void lstm_cache_bind(lstm_cache *cache, int T, int B, int hidden, float *buf)
{
    size_t tb = (size_t)T * B, h = (size_t)hidden;

    cache->gates = buf;
    cache->tanh_c = cache->gates + tb * 4 * h;
    cache->c = cache->tanh_c + tb * h;
    cache->h = cache->c + (tb + B) * h;
}

static inline float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Turns pre-activations a [rows, 4H] into gates in place and computes the
 * new cell and hidden state; rows whose mask is 0 keep the previous state. */
static void cell_forward(int rows, int H, float *a, const float *c_prev, const float *h_prev,
                         const float *mask, float *tanh_c, float *c, float *h)
{
    for (int r = 0; r < rows; r++) {
        float *ar = a + (size_t)r * 4 * H;
        const float *cp = c_prev + (size_t)r * H, *hp = h_prev + (size_t)r * H;
        float *tc = tanh_c + (size_t)r * H, *cr = c + (size_t)r * H, *hr = h + (size_t)r * H;
        int keep = !mask || mask[r] != 0.0f;

        for (int j = 0; j < H; j++) {
            float i = sigmoid(ar[j]);
            float f = sigmoid(ar[H + j]);
            float g = tanhf(ar[2 * H + j]);
            float o = sigmoid(ar[3 * H + j]);
            float cn = f * cp[j] + i * g;
            float t = tanhf(cn);

            ar[j] = i;
            ar[H + j] = f;
            ar[2 * H + j] = g;
            ar[3 * H + j] = o;
            tc[j] = t;
            cr[j] = keep ? cn : cp[j];
            hr[j] = keep ? o * t : hp[j];
        }
    }
}

/* Broadcasts bias b [4H] into every row of a [rows, 4H]. */
static void fill_bias(float *a, const float *b, int rows, int H)
{
    for (int r = 0; r < rows; r++)
        memcpy(a + (size_t)r * 4 * H, b, sizeof(float) * 4 * H);
}

void lstm_forward(const lstm_weights *w, int T, int B, const float *x, const float *h0,
                  const float *c0, const float *mask, lstm_cache *cache)
{
    int H = w->hidden, In = w->input;
    size_t bh = (size_t)B * H;

    if (h0)
        memcpy(cache->h, h0, sizeof(float) * bh);
    else
        memset(cache->h, 0, sizeof(float) * bh);
    if (c0)
        memcpy(cache->c, c0, sizeof(float) * bh);
    else
        memset(cache->c, 0, sizeof(float) * bh);

    /* A = X Wx^T + b for all steps at once: [T*B, I] x [I, 4H]. */
    fill_bias(cache->gates, w->b, T * B, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T * B, 4 * H, In, 1.0f, x, In, w->wx, In,
                1.0f, cache->gates, 4 * H);

    for (int t = 0; t < T; t++) {
        float *a = cache->gates + (size_t)t * B * 4 * H;
        const float *hp = cache->h + (size_t)t * bh, *cp = cache->c + (size_t)t * bh;

        /* A_t += h_{t-1} Wh^T: [B, H] x [H, 4H]. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, 4 * H, H, 1.0f, hp, H, w->wh, H,
                    1.0f, a, 4 * H);
        cell_forward(B, H, a, cp, hp, mask ? mask + (size_t)t * B : NULL,
                     cache->tanh_c + (size_t)t * bh, cache->c + (size_t)(t + 1) * bh,
                     cache->h + (size_t)(t + 1) * bh);
    }
}

size_t lstm_backward_floats(int T, int B, int hidden)
{
    return (size_t)T * B * 4 * hidden + (size_t)2 * B * hidden;
}

void lstm_backward(const lstm_weights *w, lstm_weights *grad, int T, int B, const float *x,
                   const float *mask, const lstm_cache *cache, const float *dh_out,
                   const float *dh_last, const float *dc_last, float *dx, float *dh0,
                   float *dc0, float *scratch)
{
    int H = w->hidden, In = w->input;
    size_t bh = (size_t)B * H;
    float *da_all = scratch;                          /* [T*B, 4H] */
    float *dh = da_all + (size_t)T * B * 4 * H;       /* [B, H] gradient w.r.t. h_t */
    float *dc = dh + bh;                              /* [B, H] gradient w.r.t. c_t */

    if (dh_last)
        memcpy(dh, dh_last, sizeof(float) * bh);
    else
        memset(dh, 0, sizeof(float) * bh);
    if (dc_last)
        memcpy(dc, dc_last, sizeof(float) * bh);
    else
        memset(dc, 0, sizeof(float) * bh);

    for (int t = T - 1; t >= 0; t--) {
        const float *gates = cache->gates + (size_t)t * B * 4 * H;
        const float *tanh_c = cache->tanh_c + (size_t)t * bh;
        const float *c_prev = cache->c + (size_t)t * bh;
        float *da = da_all + (size_t)t * B * 4 * H;

        /* Per element: with dh = dL/dh_t and dc = dL/dc_t,
         *   dc' = dc + dh o (1 - tanh^2 c'),  do = dh tanh c',
         *   di = dc' g, dg = dc' i, df = dc' c_{t-1}, dc_{t-1} = dc' f,
         * and da = (di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)). Masked
         * rows pass dh and dc to step t-1 unchanged and get da = 0. */
        for (int r = 0; r < B; r++) {
            const float *gr = gates + (size_t)r * 4 * H;
            const float *tc = tanh_c + (size_t)r * H, *cp = c_prev + (size_t)r * H;
            const float *dho = dh_out ? dh_out + ((size_t)t * B + r) * H : NULL;
            float *dar = da + (size_t)r * 4 * H;
            float *dhr = dh + (size_t)r * H, *dcr = dc + (size_t)r * H;
            int keep = !mask || mask[(size_t)t * B + r] != 0.0f;

            if (!keep) {
                memset(dar, 0, sizeof(float) * 4 * H);
                if (dho)
                    for (int j = 0; j < H; j++)
                        dhr[j] += dho[j];
                continue;
            }
            for (int j = 0; j < H; j++) {
                float i = gr[j], f = gr[H + j], g = gr[2 * H + j], o = gr[3 * H + j];
                float dhj = dhr[j] + (dho ? dho[j] : 0.0f);
                float dcn = dcr[j] + dhj * o * (1.0f - tc[j] * tc[j]);

                dar[j] = dcn * g * i * (1.0f - i);
                dar[H + j] = dcn * cp[j] * f * (1.0f - f);
                dar[2 * H + j] = dcn * i * (1.0f - g * g);
                dar[3 * H + j] = dhj * tc[j] * o * (1.0f - o);
                dcr[j] = dcn * f;
                dhr[j] = 0.0f;
            }
        }

        /* dh_{t-1} += dA_t Wh: [B, 4H] x [4H, H]. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, 4 * H, 1.0f, da, 4 * H,
                    w->wh, H, 1.0f, dh, H);
    }
    if (dh0)
        memcpy(dh0, dh, sizeof(float) * bh);
    if (dc0)
        memcpy(dc0, dc, sizeof(float) * bh);

    /* Weight gradients of all steps at once:
     * dWx += dA^T X, dWh += dA^T H_prev, db += column sums of dA. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 4 * H, In, T * B, 1.0f, da_all, 4 * H, x,
                In, 1.0f, grad->wx, In);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 4 * H, H, T * B, 1.0f, da_all, 4 * H,
                cache->h, H, 1.0f, grad->wh, H);
    for (size_t r = 0; r < (size_t)T * B; r++) {
        const float *dar = da_all + r * 4 * H;

        for (int j = 0; j < 4 * H; j++)
            grad->b[j] += dar[j];
    }
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T * B, In, 4 * H, 1.0f, da_all,
                    4 * H, w->wx, In, 0.0f, dx, In);
}

void lstm_step(const lstm_weights *w, int K, const float *x, const float *h_prev,
               const float *c_prev, float *h, float *c, float *gates)
{
    int H = w->hidden, In = w->input;
    float *tanh_c = h; /* overwritten by cell_forward's h output below */

    fill_bias(gates, w->b, K, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, 4 * H, In, 1.0f, x, In, w->wx, In, 1.0f,
                gates, 4 * H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, 4 * H, H, 1.0f, h_prev, H, w->wh, H,
                1.0f, gates, 4 * H);
    cell_forward(K, H, gates, c_prev, h_prev, NULL, tanh_c, c, h);
}
