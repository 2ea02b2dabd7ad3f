/* Global attention: forward pieces shared by training and decoding, and
 * the backward pass used by training. See attention.h for the formulas. */
#include "attention.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

size_t attention_param_count(int hidden)
{
    return 3 * (size_t)hidden * hidden + (size_t)hidden;
}

float *attention_bind(attention_weights *w, int hidden, float *block)
{
    size_t hh = (size_t)hidden * hidden;

    w->wa = block;
    w->wc = block + hh;
    w->wd = block + 2 * hh;
    w->b = block + 3 * hh;
    return block + 3 * hh + hidden;
}

void attention_keys(const attention_weights *w, int H, size_t rows, const float *enc,
                    float *keys)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, H, H, 1.0f, enc, H, w->wa, H,
                0.0f, keys, H);
}

/* Replaces each row of a [n, S] by its softmax over the positions the mask
 * keeps, and the other positions by 0. */
static void masked_softmax(float *a, int n, int S, const float *mask, int mask_stride)
{
    for (int t = 0; t < n; t++) {
        float *row = a + (size_t)t * S, mx = -INFINITY;
        double sum = 0.0;

        for (int s = 0; s < S; s++)
            if ((!mask || mask[(size_t)s * mask_stride] != 0.0f) && row[s] > mx)
                mx = row[s];
        for (int s = 0; s < S; s++) {
            if (mask && mask[(size_t)s * mask_stride] == 0.0f) {
                row[s] = 0.0f;
                continue;
            }
            row[s] = expf(row[s] - mx);
            sum += row[s];
        }
        if (sum > 0.0) {
            float k = (float)(1.0 / sum);

            for (int s = 0; s < S; s++)
                row[s] *= k;
        }
    }
}

void attention_attend(int H, int n, int S, const float *q, int ldq, const float *keys,
                      const float *enc, int ldkv, const float *mask, int mask_stride, float *a,
                      float *ctx, int ldc)
{
    if (n < 1)
        return;
    if (S < 1) {
        for (int t = 0; t < n; t++)
            memset(ctx + (size_t)t * ldc, 0, sizeof(float) * H);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, S, H, 1.0f, q, ldq, keys, ldkv, 0.0f,
                a, S);
    masked_softmax(a, n, S, mask, mask_stride);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, H, S, 1.0f, a, S, enc, ldkv, 0.0f,
                ctx, ldc);
}

void attention_output(const attention_weights *w, int H, size_t rows, const float *ctx,
                      const float *dec, float *out)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(out + r * H, w->b, sizeof(float) * H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, H, H, 1.0f, ctx, H, w->wc, H,
                1.0f, out, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, H, H, 1.0f, dec, H, w->wd, H,
                1.0f, out, H);
    for (size_t i = 0; i < rows * H; i++)
        out[i] = tanhf(out[i]);
}

void attention_backward(const attention_weights *w, attention_weights *grad, int H, int B, int S,
                        int T, const float *enc, const float *keys, const float *dec,
                        const float *ctx, const float *out, const float *a, float *dout,
                        float *da, float *dctx, float *dkeys, float *ddec, float *denc)
{
    size_t TB = (size_t)T * B, SB = (size_t)S * B;
    int ld = B * H;

    /* Through the tanh: dout becomes the gradient of the pre-activation. */
    for (size_t i = 0; i < TB * H; i++)
        dout[i] *= 1.0f - out[i] * out[i];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, (int)TB, 1.0f, dout, H, ctx, H,
                1.0f, grad->wc, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, (int)TB, 1.0f, dout, H, dec, H,
                1.0f, grad->wd, H);
    for (size_t r = 0; r < TB; r++)
        for (int j = 0; j < H; j++)
            grad->b[j] += dout[r * H + j];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)TB, H, H, 1.0f, dout, H, w->wd, H,
                0.0f, ddec, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)TB, H, H, 1.0f, dout, H, w->wc, H,
                0.0f, dctx, H);

    memset(denc, 0, sizeof(float) * SB * H);
    if (S < 1)
        return; /* no source position: the context was zero */
    for (int b = 0; b < B; b++) {
        const float *ab = a + (size_t)b * T * S;
        float *d = da + (size_t)b * T * S;

        /* Context = a enc: gradients w.r.t. the weights and the values. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, H, 1.0f, dctx + (size_t)b * H,
                    ld, enc + (size_t)b * H, ld, 0.0f, d, S);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, H, T, 1.0f, ab, S,
                    dctx + (size_t)b * H, ld, 1.0f, denc + (size_t)b * H, ld);
        /* Softmax backward: d = a * (d - sum(a * d)); padding has a = 0. */
        for (int t = 0; t < T; t++) {
            const float *ar = ab + (size_t)t * S;
            float *dr = d + (size_t)t * S;
            double dot = 0.0;

            for (int s = 0; s < S; s++)
                dot += (double)ar[s] * dr[s];
            for (int s = 0; s < S; s++)
                dr[s] = ar[s] * (dr[s] - (float)dot);
        }
        /* Scores = dec keys^T. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, H, S, 1.0f, d, S,
                    keys + (size_t)b * H, ld, 1.0f, ddec + (size_t)b * H, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, H, T, 1.0f, d, S,
                    dec + (size_t)b * H, ld, 0.0f, dkeys + (size_t)b * H, ld);
    }
    /* Keys = enc Wa^T. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, (int)SB, 1.0f, dkeys, H, enc, H,
                1.0f, grad->wa, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)SB, H, H, 1.0f, dkeys, H, w->wa, H,
                1.0f, denc, H);
}
