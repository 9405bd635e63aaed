/* Forward-Forward (Hinton 2022); the twin of host/learn/forward_forward.py, whose docstring is the
 * specification (label appended to the input, Q14 length normalisation, goodness = sum h^2 in Q(ACT_FRAC),
 * softplus' derivative by onw_sigmoid_q15, scores relative to the best label). */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_FF
#include <stddef.h>

#include "onward/fixed.h"
#include "onward/kernels.h"

#define FF_FLOOR (-32768)

/* [pass][ping-pong]: a layer reads one buffer (normalised in place, bias input appended) and writes the other.
 * Inference uses pass 0 only; training runs the positive (0) and negative (1) pass side by side. */
static union {
    int16_t v[2][2][ONW_FF_MAX_IN]; /* ONW_FF_MAX_IN is even: every buffer starts word-aligned */
    uint32_t align;                 /* for the SMLALD kernel's word loads */
} ff_buf;

/* A layer's inputs without the bias: the features and the label entries for layer 0. */
static uint32_t layer_inputs(int layer)
{
    return onw_layers[layer].in_dim + (layer == 0 ? (uint32_t)ONW_NUM_CLASSES : 0u);
}

/* A block's row: the inputs, the bias and one padding column if that makes it even (word-aligned rows). */
static uint32_t row_width(uint32_t inputs)
{
    return (inputs + 2u) & ~1u;
}

/* v <- v / |v| in Q14 (scale-free: any Q format of v), then the bias input 1.0 and the padding 0. */
static void normalise(int16_t *v, uint32_t n)
{
    int64_t sumsq = 0, inv;
    uint32_t i, norm;
    for (i = 0; i < n; i++) {
        sumsq += (int32_t)v[i] * v[i];
    }
    norm = onw_isqrt((uint64_t)sumsq << (2 * ONW_FF_NORM_GUARD));
    inv = ((int64_t)1 << (ONW_FF_NORM_FRAC + ONW_FF_NORM_GUARD + ONW_FF_RECIP_SHIFT)) / ((int64_t)norm + 1);
    for (i = 0; i < n; i++) {
        v[i] = (int16_t)onw_round_shift(v[i] * inv, ONW_FF_RECIP_SHIFT);
    }
    v[n] = (int16_t)(1 << ONW_FF_NORM_FRAC);
    if (row_width(n) > n + 1u) {
        v[n + 1u] = 0;
    }
}

/* The positive or negative sample: x, then the one-hot label (value ONW_FF_LABEL_Q). */
static void embed(const int16_t *x, int32_t label, int16_t *v)
{
    uint32_t i;
    for (i = 0; i < ONW_INPUT_DIM; i++) {
        v[i] = x[i];
    }
    for (i = 0; i < ONW_NUM_CLASSES; i++) {
        v[ONW_INPUT_DIM + i] = (int32_t)i == label ? ONW_FF_LABEL_Q : 0;
    }
}

/* Normalises `in` in place, h = ReLU(W in) into out; returns the goodness sum h^2 in Q(ACT_FRAC). */
static int64_t forward(int layer, int16_t *in, int16_t *out)
{
    uint32_t n = layer_inputs(layer), i;
    int64_t sum = 0;
    normalise(in, n);
    onw_dense(onw_layer_weights(layer), in, (uint16_t)row_width(n), onw_layers[layer].out_dim, ONW_FF_DENSE_SHIFT, 1,
              out, &onw_saturations);
    for (i = 0; i < onw_layers[layer].out_dim; i++) {
        sum += (int32_t)out[i] * out[i];
    }
    return onw_round_shift(sum, ONW_ACT_FRAC);
}

/* W -= round(lr s / 2^15) h in^T: the sigmoid s (Q15) scales the learning rate and delta is h itself. The positive
 * pass negates its input first (in place: it is not needed again) so that its update raises G+. */
static void update(int layer, int16_t *in, const int16_t *h, int32_t s, int negate, uint32_t key)
{
    uint32_t n = row_width(layer_inputs(layer)), i;
    uint32_t lr_s = (uint32_t)onw_round_shift((int64_t)onw_state.lr_q * s, 15);
    if (negate) {
        for (i = 0; i < n; i++) {
            in[i] = (int16_t)-in[i]; /* |in| <= 2^14 + 1; the padding stays 0 */
        }
    }
    onw_dense_update(onw_layer_weights(layer), h, NULL, in, (uint16_t)n, onw_layers[layer].out_dim, lr_s,
                     ONW_FF_UPDATE_SHIFT, key, &onw_saturations);
}

static int16_t relative(int64_t score, int64_t best)
{
    int64_t d = score - best;
    return d < FF_FLOOR ? (int16_t)FF_FLOOR : (int16_t)d;
}

void onw_train(int16_t *x, int32_t target, int16_t *outputs)
{
    uint32_t nkey = onw_derive(onw_derive(onw_state.seed, ONW_STREAM_NEGATIVES), onw_state.steps);
    int32_t neg = (int32_t)(((uint32_t)target + 1u + onw_rand(nkey, 0) % (ONW_NUM_CLASSES - 1u)) % ONW_NUM_CLASSES);
    int16_t *in_pos = ff_buf.v[0][0], *in_neg = ff_buf.v[1][0];
    int64_t score_pos = 0, score_neg = 0, best;
    int layer, c;
    embed(x, target, in_pos);
    embed(x, neg, in_neg);
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *out_pos = ff_buf.v[0][(layer + 1) & 1], *out_neg = ff_buf.v[1][(layer + 1) & 1];
        int64_t g_pos = forward(layer, in_pos, out_pos), g_neg = forward(layer, in_neg, out_neg);
        uint32_t key = onw_rounding_key((uint32_t)layer);
        if (layer >= ONW_FF_FIRST_SCORED) {
            score_pos += g_pos;
            score_neg += g_neg;
        }
        /* both updates at the weights both passes saw: dL/dG+ = -sigmoid(theta - G+), dL/dG- = sigmoid(G- - theta) */
        update(layer, in_pos, out_pos, onw_sigmoid_q15(ONW_FF_THETA_Q - g_pos, ONW_ACT_FRAC), 1, key);
        update(layer, in_neg, out_neg, onw_sigmoid_q15(g_neg - ONW_FF_THETA_Q, ONW_ACT_FRAC), 0, onw_derive(key, 1));
        in_pos = out_pos;
        in_neg = out_neg;
    }
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = (int16_t)FF_FLOOR;
    }
    best = score_pos > score_neg ? score_pos : score_neg;
    outputs[target] = relative(score_pos, best);
    outputs[neg] = relative(score_neg, best);
    onw_state.steps++;
}

void onw_infer(const int16_t *x, int16_t *outputs)
{
    int64_t scores[ONW_NUM_CLASSES], best = 0;
    int c, layer;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        int16_t *in = ff_buf.v[0][0];
        scores[c] = 0;
        embed(x, c, in);
        for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
            int16_t *out = ff_buf.v[0][(layer + 1) & 1];
            int64_t g = forward(layer, in, out);
            if (layer >= ONW_FF_FIRST_SCORED) {
                scores[c] += g;
            }
            in = out;
        }
        if (c == 0 || scores[c] > best) {
            best = scores[c];
        }
    }
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = relative(scores[c], best);
    }
}
#endif
