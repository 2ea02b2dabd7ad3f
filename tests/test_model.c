/* Model tests: the gradient of the whole model against finite differences,
 * the LSTM cell against hand-computed values, source reversal, and padding
 * that leaves the loss unchanged. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "lstm.h"
#include "model.h"
#include "testutil.h"

/* Three sentence pairs of different lengths over tiny vocabularies. */
static int32_t s0[] = {4, 5, 6}, s1[] = {7, 4}, s2[] = {5, 6, 7, 8};
static int32_t t0[] = {4, 5}, t1[] = {6, 7, 4}, t2[] = {5};
static int32_t *srcs[] = {s0, s1, s2}, *tgts[] = {t0, t1, t2};
static int32_t slen[] = {3, 2, 4}, tlen[] = {2, 3, 1};

static corpus tiny_corpus(void)
{
    corpus c = {3, srcs, tgts, slen, tlen};
    return c;
}

static model *tiny_model_with(int layers, int attention, uint64_t seed)
{
    model_config cfg = {layers, 3, 4, 9, 8, "en", "de", attention};
    model *m = model_new(&cfg, NULL, NULL);
    rng_state rng;

    rng_seed(&rng, seed);
    model_init_uniform(m, 0.5f, &rng);
    return m;
}

static model *tiny_model(int layers, uint64_t seed)
{
    return tiny_model_with(layers, 0, seed);
}

static double batch_loss(const model *m, const model_batch *bt, float smoothing,
                         model_workspace *ws)
{
    double loss = 0;

    CU_ASSERT_EQUAL_FATAL(model_loss(m, bt, NULL, 0.0f, smoothing, NULL, ws, &loss), 0);
    return loss;
}

/* Compares the analytic gradient of every parameter with a central
 * difference. A float32 forward pass with eps = 1e-2 gives differences
 * accurate to about 1e-4 relative; a wrong term in any backward formula
 * is off by far more than the 2e-2 tolerance. */
/* Checks the gradient on the first n sentences of the tiny corpus, with
 * targets smoothed by smoothing. */
static void check_gradient(model *m, int n, float smoothing)
{
    corpus c = tiny_corpus();
    size_t idx[] = {0, 1, 2};
    model_batch bt = {0};
    model_workspace *ws = model_workspace_new();
    float *g = calloc(m->n_params, sizeof(float));
    model_views gv;
    double loss, worst = 0;
    size_t checked = 0, bad = 0;
    const float eps = 1e-2f;

    CU_ASSERT_EQUAL_FATAL(corpus_fill_batch(&c, idx, n, &bt), 0);
    model_bind(&m->cfg, g, &gv);
    CU_ASSERT_EQUAL_FATAL(model_loss(m, &bt, &gv, 0.0f, smoothing, NULL, ws, &loss), 0);

    for (size_t i = 0; i < m->n_params; i++) {
        float saved = m->params[i];
        double up, down, numeric, err, scale;

        m->params[i] = saved + eps;
        up = batch_loss(m, &bt, smoothing, ws);
        m->params[i] = saved - eps;
        down = batch_loss(m, &bt, smoothing, ws);
        m->params[i] = saved;
        numeric = (up - down) / (2 * eps) / bt.B;
        scale = fmax(fmax(fabs(numeric), fabs(g[i])), 1e-3);
        err = fabs(numeric - g[i]) / scale;
        if (err > worst)
            worst = err;
        if (err > 2e-2) {
            if (bad < 5)
                fprintf(stderr, "param %zu: analytic %g numeric %g\n", i, g[i], numeric);
            bad++;
        }
        checked++;
    }
    CU_ASSERT_EQUAL(checked, m->n_params);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(worst < 2e-2);

    /* Padding rows of the embeddings must get no gradient. */
    for (int j = 0; j < m->cfg.embed; j++) {
        CU_ASSERT_EQUAL(gv.src_embed[VOCAB_PAD * m->cfg.embed + j], 0.0f);
        CU_ASSERT_EQUAL(gv.tgt_embed[VOCAB_PAD * m->cfg.embed + j], 0.0f);
    }
    corpus_batch_free(&bt);
    model_workspace_free(ws);
    free(g);
    model_free(m);
}

static void test_gradient_matches_finite_differences(void)
{
    check_gradient(tiny_model(2, 1), 3, 0.0f);
}

/* Label smoothing moves part of each target's weight to the uniform
 * distribution, so the loss is linear in the smoothing: 0.1 gives 0.9 times
 * the plain loss plus 0.1 times the loss against the uniform target. The
 * gradient must follow the smoothed loss. */
static void test_smoothed_gradient_matches_finite_differences(void)
{
    model *m = tiny_model_with(2, 1, 5);
    corpus c = tiny_corpus();
    size_t idx[] = {0, 1, 2};
    model_batch bt = {0};
    model_workspace *ws = model_workspace_new();

    CU_ASSERT_EQUAL_FATAL(corpus_fill_batch(&c, idx, 3, &bt), 0);
    double plain = batch_loss(m, &bt, 0.0f, ws), uniform = batch_loss(m, &bt, 1.0f, ws);
    double smoothed = batch_loss(m, &bt, 0.1f, ws);

    CU_ASSERT(fabs(plain - uniform) > 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(smoothed, 0.9 * plain + 0.1 * uniform, 1e-5 * plain);
    corpus_batch_free(&bt);
    model_workspace_free(ws);
    model_free(m);
    check_gradient(tiny_model(2, 1), 3, 0.1f);
    check_gradient(tiny_model_with(2, 1, 5), 2, 0.3f);
}

/* With attention the gradient also flows through the attention weights
 * into every encoder state, not only the final one. Two sentences give 3
 * source and 4 target steps, so a mix-up of the two counts shows. */
static void test_attention_gradient_matches_finite_differences(void)
{
    check_gradient(tiny_model_with(2, 1, 5), 2, 0.0f);
    check_gradient(tiny_model_with(2, 1, 8), 3, 0.0f);
}

/* Dropout changes the forward pass but the gradient must still match the
 * loss computed with the same dropout masks (same seed). */
static void test_gradient_with_dropout_matches(void)
{
    model *m = tiny_model(2, 2);
    corpus c = tiny_corpus();
    size_t idx[] = {0, 1, 2};
    model_batch bt = {0};
    model_workspace *ws = model_workspace_new();
    float *g = calloc(m->n_params, sizeof(float));
    model_views gv;
    rng_state rng;
    double loss, up, down;
    size_t bad = 0;
    const float eps = 1e-2f;

    CU_ASSERT_EQUAL_FATAL(corpus_fill_batch(&c, idx, 3, &bt), 0);
    model_bind(&m->cfg, g, &gv);
    rng_seed(&rng, 7);
    CU_ASSERT_EQUAL_FATAL(model_loss(m, &bt, &gv, 0.3f, 0.0f, &rng, ws, &loss), 0);
    for (size_t i = 0; i < m->n_params; i += 7) {
        float saved = m->params[i];

        m->params[i] = saved + eps;
        rng_seed(&rng, 7);
        model_loss(m, &bt, NULL, 0.3f, 0.0f, &rng, ws, &up);
        m->params[i] = saved - eps;
        rng_seed(&rng, 7);
        model_loss(m, &bt, NULL, 0.3f, 0.0f, &rng, ws, &down);
        m->params[i] = saved;
        double numeric = (up - down) / (2 * eps) / bt.B;
        double scale = fmax(fmax(fabs(numeric), fabs(g[i])), 1e-3);

        bad += fabs(numeric - g[i]) / scale > 2e-2;
    }
    CU_ASSERT_EQUAL(bad, 0);
    corpus_batch_free(&bt);
    model_workspace_free(ws);
    free(g);
    model_free(m);
}

/* One step of a cell with H = 1, I = 1, worked by hand:
 * Wx = (0.5, -0.5, 1.0, 0.25), Wh = (0.1, 0.2, -0.3, 0.4), b = 0,
 * x = 1, h0 = 0.5, c0 = -1:
 *   a = (0.55, -0.4, 0.85, 0.45)
 *   i = 0.634136, f = 0.401312, g = 0.691069, o = 0.610639
 *   c = f c0 + i g = -0.401312 + 0.438231 = 0.036919
 *   h = o tanh(c) = 0.610639 * 0.036902 = 0.022534 */
static void test_lstm_cell_matches_hand_values(void)
{
    float block[12] = {0.5f, -0.5f, 1.0f, 0.25f, 0.1f, 0.2f, -0.3f, 0.4f, 0, 0, 0, 0};
    lstm_weights w;
    float x = 1.0f, h0 = 0.5f, c0 = -1.0f, h, c, gates[4];

    lstm_bind(&w, 1, 1, block);
    lstm_step(&w, 1, &x, &h0, &c0, &h, &c, gates);
    CU_ASSERT_DOUBLE_EQUAL(gates[0], 0.634136, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(gates[1], 0.401312, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(gates[2], 0.691069, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(gates[3], 0.610639, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(c, 0.036919, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(h, 0.022534, 1e-5);
}

/* The batch stores each source reversed, padded on the left. */
static void test_batch_source_is_reversed(void)
{
    corpus c = tiny_corpus();
    size_t idx[] = {1, 2};
    model_batch bt = {0};

    CU_ASSERT_EQUAL_FATAL(corpus_fill_batch(&c, idx, 2, &bt), 0);
    CU_ASSERT_EQUAL(bt.S, 4);
    /* Sentence 1 is (7, 4): two padding steps, then 4, 7. */
    CU_ASSERT_EQUAL(bt.src[0 * 2 + 0], VOCAB_PAD);
    CU_ASSERT_EQUAL(bt.src[1 * 2 + 0], VOCAB_PAD);
    CU_ASSERT_EQUAL(bt.src[2 * 2 + 0], 4);
    CU_ASSERT_EQUAL(bt.src[3 * 2 + 0], 7);
    CU_ASSERT_EQUAL(bt.src_mask[1 * 2 + 0], 0.0f);
    CU_ASSERT_EQUAL(bt.src_mask[2 * 2 + 0], 1.0f);
    /* Sentence 2 is (5, 6, 7, 8): read as 8, 7, 6, 5. */
    CU_ASSERT_EQUAL(bt.src[0 * 2 + 1], 8);
    CU_ASSERT_EQUAL(bt.src[1 * 2 + 1], 7);
    CU_ASSERT_EQUAL(bt.src[2 * 2 + 1], 6);
    CU_ASSERT_EQUAL(bt.src[3 * 2 + 1], 5);
    /* Target of sentence 2 is (5): <s> 5 then padding; 5 </s> then padding. */
    CU_ASSERT_EQUAL(bt.tgt_in[0 * 2 + 1], VOCAB_BOS);
    CU_ASSERT_EQUAL(bt.tgt_in[1 * 2 + 1], 5);
    CU_ASSERT_EQUAL(bt.tgt_out[0 * 2 + 1], 5);
    CU_ASSERT_EQUAL(bt.tgt_out[1 * 2 + 1], VOCAB_EOS);
    CU_ASSERT_EQUAL(bt.tgt_out[2 * 2 + 1], VOCAB_PAD);
    CU_ASSERT_EQUAL(bt.n_tokens, 4 + 2); /* (6, 7, 4) </s> and (5) </s> */
    corpus_batch_free(&bt);
}

/* Reading the source backwards matters: the same words in the other order
 * must change the loss, and swapping the reversal by hand must restore it. */
static void test_source_order_changes_loss(void)
{
    model *m = tiny_model(1, 3);
    int32_t fwd[] = {4, 5, 6, 7}, rev[] = {7, 6, 5, 4}, y[] = {4, 5};
    int32_t *s1[] = {fwd}, *s2[] = {rev}, *t[] = {y};
    int32_t ls[] = {4}, lt[] = {2};
    corpus a = {1, s1, t, ls, lt}, b = {1, s2, t, ls, lt};
    size_t idx[] = {0};
    model_batch ba = {0}, bb = {0};
    model_workspace *ws = model_workspace_new();

    corpus_fill_batch(&a, idx, 1, &ba);
    corpus_fill_batch(&b, idx, 1, &bb);
    /* The encoder's first step sees the last source word. */
    CU_ASSERT_EQUAL(ba.src[0], 7);
    CU_ASSERT_EQUAL(bb.src[0], 4);
    CU_ASSERT(fabs(batch_loss(m, &ba, 0.0f, ws) - batch_loss(m, &bb, 0.0f, ws)) > 1e-6);
    corpus_batch_free(&ba);
    corpus_batch_free(&bb);
    model_workspace_free(ws);
    model_free(m);
}

/* Padding must not leak into the loss: one batch of three sentences of
 * different lengths scores the same as the three sentences alone. */
static void check_padding(model *m)
{
    corpus c = tiny_corpus();
    size_t all[] = {0, 1, 2};
    model_batch bt = {0};
    model_workspace *ws = model_workspace_new();
    double together, alone = 0;

    corpus_fill_batch(&c, all, 3, &bt);
    together = batch_loss(m, &bt, 0.0f, ws);
    for (size_t i = 0; i < 3; i++) {
        corpus_fill_batch(&c, &all[i], 1, &bt);
        alone += batch_loss(m, &bt, 0.0f, ws);
    }
    CU_ASSERT_DOUBLE_EQUAL(together, alone, 1e-4 * fabs(alone));
    corpus_batch_free(&bt);
    model_workspace_free(ws);
    model_free(m);
}

static void test_padded_batch_equals_single(void)
{
    check_padding(tiny_model(2, 4));
}

/* Attention must give padded source positions no weight. */
static void test_attention_padded_batch_equals_single(void)
{
    check_padding(tiny_model_with(2, 1, 6));
}

/* model_attention gives each decoder step of each sentence a distribution
 * over its real source positions, the same batched as alone, and declines
 * models without attention. */
static void test_attention_weights_are_distributions(void)
{
    model *m = tiny_model_with(2, 1, 7), *plain = tiny_model(1, 8);
    corpus c = tiny_corpus();
    size_t all[] = {0, 1, 2};
    model_batch bt = {0}, one = {0};
    model_workspace *ws = model_workspace_new();
    float a[3 * 16 * 16], alone[16 * 16];

    CU_ASSERT_EQUAL_FATAL(corpus_fill_batch(&c, all, 3, &bt), 0);
    CU_ASSERT_FATAL(bt.T * bt.S <= 16 * 16);
    CU_ASSERT_EQUAL_FATAL(model_attention(m, &bt, ws, a), 0);
    for (int b = 0; b < 3; b++) {
        CU_ASSERT_EQUAL_FATAL(corpus_fill_batch(&c, &all[b], 1, &one), 0);
        CU_ASSERT_EQUAL_FATAL(model_attention(m, &one, ws, alone), 0);
        int pad = bt.S - one.S;

        for (int t = 0; t < one.T; t++) {
            const float *row = a + ((size_t)b * bt.T + t) * bt.S;
            double sum = 0;

            for (int p = 0; p < bt.S; p++) {
                if (p < pad) {
                    CU_ASSERT_EQUAL(row[p], 0.0f);
                    continue;
                }
                sum += row[p];
                CU_ASSERT_DOUBLE_EQUAL(row[p], alone[t * one.S + p - pad], 1e-5);
            }
            CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-5);
        }
    }
    CU_ASSERT_EQUAL(model_attention(plain, &bt, ws, a), 1);
    corpus_batch_free(&bt);
    corpus_batch_free(&one);
    model_workspace_free(ws);
    model_free(m);
    model_free(plain);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("model", NULL, NULL);
    CU_add_test(s, "gradient matches finite differences", test_gradient_matches_finite_differences);
    CU_add_test(s, "smoothed gradient matches", test_smoothed_gradient_matches_finite_differences);
    CU_add_test(s, "gradient with dropout matches", test_gradient_with_dropout_matches);
    CU_add_test(s, "lstm cell matches hand values", test_lstm_cell_matches_hand_values);
    CU_add_test(s, "batch source is reversed", test_batch_source_is_reversed);
    CU_add_test(s, "source order changes loss", test_source_order_changes_loss);
    CU_add_test(s, "padded batch equals single", test_padded_batch_equals_single);
    CU_add_test(s, "attention gradient matches finite differences",
                test_attention_gradient_matches_finite_differences);
    CU_add_test(s, "attention padded batch equals single",
                test_attention_padded_batch_equals_single);
    CU_add_test(s, "attention weights are distributions",
                test_attention_weights_are_distributions);
    return test_run_all();
}
