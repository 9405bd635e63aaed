/* Forward gradients, activity-perturbed (Ren et al. 2022) with K Rademacher tangents; the twin of Fixed in
 * host/learn/forward_gradient.py.
 *
 * One clean pass keeps every layer's output h_l. Then, per tangent k, a forward-mode pass pushes a tangent
 * t_l = W_l t_{l-1} + u_l (u = +-1 on the live units: h_l > 0, and every output) through the network in
 * Q(ONW_ACT_FRAC), and the slope d_k = e . t_L (e = softmax - onehot) estimates grad_z L . u. The update is
 * W_l -= lr * (sum_k d_k u_{k,l} / K) h_{l-1}^T, stochastically rounded. The signs come from the counter-based
 * PRNG (stream ONW_STREAM_TANGENTS, keyed by step and layer) and are regenerated for the update: never stored. */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_FGRAD
#include <stddef.h>

#include "onward/fixed.h"
#include "onward/kernels.h"

#define LAST (ONW_NUM_LAYERS - 1)
#define ONE_TANGENT ((int32_t)1 << ONW_ACT_FRAC)

static int16_t activations[ONW_SUM_WIDTHS];    /* the clean pass: every h_l */
static int16_t tangent[2][ONW_MAX_WIDTH];      /* t_{l-1} and t_l; tangent[0] then holds the update's delta */
static int16_t error_q[ONW_NUM_CLASSES];       /* e = softmax(z) - y, Q(ONW_ACT_FRAC) */
static int16_t slopes[ONW_DIRECTIONS];         /* d_k, Q(ONW_ACT_FRAC) */

static int16_t *layer_weights(int layer)
{
    return onw_state.weights + onw_layers[layer].offset;
}

static const int16_t *layer_output(int layer)
{
    return activations + onw_layers[layer].act_offset;
}

static const int16_t *forward_pass(const int16_t *x)
{
    const int16_t *in = x;
    int layer;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *out = activations + onw_layers[layer].act_offset;
        onw_dense(layer_weights(layer), in, onw_layers[layer].in_dim, onw_layers[layer].out_dim, ONW_WEIGHT_FRAC,
                  layer < LAST, out, &onw_saturations);
        in = out;
    }
    return in;
}

static void output_error(const int16_t *logits, int32_t label)
{
    int32_t prob[ONW_NUM_CLASSES];
    int c;
    onw_softmax_q15(logits, ONW_NUM_CLASSES, ONW_ACT_FRAC, prob);
    prob[label] -= ONW_ONE_Q15;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        error_q[c] = onw_requant(prob[c], 15, ONW_ACT_FRAC, &onw_saturations);
    }
}

static uint32_t tangent_key(int layer)
{
    return onw_derive(onw_derive(onw_derive(onw_state.seed, ONW_STREAM_TANGENTS), onw_state.steps),
                      (uint32_t)layer);
}

/* Unit i's sign in tangent k: 0 for a dead ReLU unit (it carries no tangent), else +-1 from the top bit. */
static int32_t sign(int layer, uint32_t key, uint32_t k, uint32_t i)
{
    uint32_t n = onw_layers[layer].out_dim;
    if (layer < LAST && layer_output(layer)[i] <= 0) {
        return 0;
    }
    return (onw_rand(key, k * n + i) >> 31) ? -1 : 1;
}

/* Tangent k's pass; returns d_k = e . t_L in Q(ONW_ACT_FRAC). */
static int16_t slope(uint32_t k)
{
    const int16_t *in = NULL;
    int64_t acc = 0;
    int layer, c;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *out = tangent[layer & 1];
        uint32_t i, n = onw_layers[layer].out_dim, key = tangent_key(layer);
        if (layer > 0) { /* the input carries no tangent */
            onw_dense(layer_weights(layer), in, onw_layers[layer].in_dim, (uint16_t)n, ONW_WEIGHT_FRAC, 0, out,
                      &onw_saturations);
        }
        for (i = 0; i < n; i++) {
            int32_t s = sign(layer, key, k, i);
            int32_t wt = layer > 0 ? out[i] : 0;
            out[i] = s == 0 ? 0 : onw_sat16((int64_t)wt + s * ONE_TANGENT, &onw_saturations);
        }
        in = out;
    }
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        acc += (int32_t)error_q[c] * in[c];
    }
    return onw_requant(acc, 2 * ONW_ACT_FRAC, ONW_ACT_FRAC, &onw_saturations);
}

void onw_train(int16_t *x, int32_t target, int16_t *outputs)
{
    const int16_t *logits = forward_pass(x);
    int16_t *delta = tangent[0]; /* free once the tangent passes are done */
    uint32_t k;
    int layer, c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = logits[c];
    }
    output_error(logits, target);
    for (k = 0; k < ONW_DIRECTIONS; k++) {
        slopes[k] = slope(k);
    }
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        uint32_t i, key = tangent_key(layer);
        for (i = 0; i < onw_layers[layer].out_dim; i++) {
            int32_t sum = 0; /* |sum| <= 64 * 2^15: no overflow */
            for (k = 0; k < ONW_DIRECTIONS; k++) {
                sum += slopes[k] * sign(layer, key, k, i);
            }
            delta[i] = onw_sat16(sum / ONW_DIRECTIONS, &onw_saturations); /* C division: fixed.div_trunc */
        }
        onw_dense_update(layer_weights(layer), delta, NULL, layer > 0 ? layer_output(layer - 1) : x,
                         onw_layers[layer].in_dim, onw_layers[layer].out_dim, onw_state.lr_q, ONW_UPDATE_SHIFT,
                         onw_rounding_key((uint32_t)layer), &onw_saturations);
    }
    onw_state.steps++;
}

void onw_infer(const int16_t *x, int16_t *outputs)
{
    const int16_t *logits = forward_pass(x);
    int c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = logits[c];
    }
}
#endif
