/* Forward gradients with K Rademacher tangents; the twin of Fixed in host/rules/fgrad.py.
 *
 * One clean pass keeps every layer's output h_l. Then, per tangent k, a forward-mode pass pushes a tangent
 * through the network in Q(ONW_ACT_FRAC), and the slope d_k = e . t_L (e = softmax - onehot) estimates the
 * directional derivative of the loss along the tangent.
 *  - activity mode (ONW_FGRAD_WEIGHT 0): t_l = W_l t_{l-1} + u_l, u = +-1 on the live units (h_l > 0, and every
 *    output); W_l -= lr * (sum_k d_k u_{k,l} / K) h_{l-1}^T.
 *  - weight mode (ONW_FGRAD_WEIGHT 1): t_l = V_l h_{l-1} + W_l t_{l-1}, V = +-1 on every weight;
 *    W_l -= lr * sum_k d_k V_{k,l} / K.
 * Updates are stochastically rounded. The signs come from the counter-based PRNG (stream ONW_STREAM_TANGENTS,
 * keyed by step and layer) and are regenerated for the update: never stored. */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_FGRAD
#include <stddef.h>

#include "onward/fixed.h"
#include "onward/dense.h"
#include "onward/mlp.h"

#define LAST (ONW_NUM_LAYERS - 1)
#define ONE_TANGENT ((int32_t)1 << ONW_ACT_FRAC)

static int16_t activations[ONW_SUM_WIDTHS];    /* the clean pass: every h_l */
static int16_t tangent[2][ONW_MAX_WIDTH];      /* t_{l-1} and t_l; tangent[0] then holds the update's delta */
static int16_t error_q[ONW_NUM_CLASSES];       /* e = softmax(z) - y, Q(ONW_ACT_FRAC) */
static int16_t slopes[ONW_DIRECTIONS];         /* d_k, Q(ONW_ACT_FRAC) */

static const int16_t *layer_output(int layer)
{
    return activations + onw_layers[layer].act_offset;
}

static uint32_t tangent_key(int layer)
{
    return onw_derive(onw_derive(onw_derive(onw_state.seed, ONW_STREAM_TANGENTS), onw_state.steps),
                      (uint32_t)layer);
}

/* d = e . t_L, Q(2 ONW_ACT_FRAC) -> Q(ONW_ACT_FRAC) */
static int16_t output_slope(const int16_t *t_out)
{
    int64_t acc = 0;
    int c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        acc += (int32_t)error_q[c] * t_out[c];
    }
    return onw_requant(acc, 2 * ONW_ACT_FRAC, ONW_ACT_FRAC, &onw_saturations);
}

#if ONW_FGRAD_WEIGHT
/* Weight-perturbed (Baydin et al. 2022): a +-1 tangent on every weight, 32 signs per hash: the sign of
 * parameter p in tangent k is bit f % 32 of rand(key, f / 32), f = k * size + p (1 means -1). */
static uint32_t sign_words[ONW_DIRECTIONS]; /* the update's current hash word of each tangent */

static int32_t signed_by(uint32_t word, uint32_t f, int32_t value)
{
    return ((word >> (f & 31u)) & 1u) ? -value : value;
}

/* Tangent k's pass: t_l = requant(W_l t_{l-1} + (V_l h_{l-1}) 2^wf), masked by relu'; returns d_k. */
static int16_t slope(const int16_t *x, uint32_t k)
{
    const int16_t *t_in = NULL;
    int layer;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        const int16_t *w = onw_layer_weights(layer), *h_in = layer > 0 ? layer_output(layer - 1) : x;
        int16_t *out = tangent[layer & 1];
        uint32_t i, j, n = onw_layers[layer].out_dim, m = onw_layers[layer].in_dim, key = tangent_key(layer);
        for (i = 0; i < n; i++) {
            uint32_t f = k * n * m + i * m, word = onw_rand(key, f >> 5);
            int64_t acc = 0;
            int32_t vh = 0; /* sum of +-h_j: |vh| < 2^15 * 4096 */
            int16_t v;
            for (j = 0; j < m; j++, f++) {
                if ((f & 31u) == 0) {
                    word = onw_rand(key, f >> 5);
                }
                vh += signed_by(word, f, h_in[j]);
                if (layer > 0) { /* the input carries no tangent */
                    acc += (int32_t)w[i * m + j] * t_in[j];
                }
            }
            v = onw_requant(acc + (int64_t)vh * ((int64_t)1 << ONW_WEIGHT_FRAC), ONW_WEIGHT_FRAC, 0,
                            &onw_saturations);
            out[i] = (layer < LAST && layer_output(layer)[i] <= 0) ? 0 : v;
        }
        t_in = out;
    }
    return output_slope(t_in);
}

/* W -= stochastic_round(lr * sum_k d_k V_k / K), the rounding bits from rand(rounding key, p) as
 * onw_dense_update's. */
static void update_all(const int16_t *x)
{
    int layer;
    (void)x;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *w = onw_layer_weights(layer);
        uint32_t p, k, size = (uint32_t)onw_layers[layer].out_dim * onw_layers[layer].in_dim;
        uint32_t key = tangent_key(layer), rkey = onw_rounding_key((uint32_t)layer);
        for (p = 0; p < size; p++) {
            int32_t sum = 0; /* |sum| <= 64 * 2^15 */
            for (k = 0; k < ONW_DIRECTIONS; k++) {
                uint32_t f = k * size + p;
                if (p == 0 || (f & 31u) == 0) {
                    sign_words[k] = onw_rand(key, f >> 5);
                }
                sum += signed_by(sign_words[k], f, slopes[k]);
            }
            /* C division truncates: fixed.div_trunc */
            w[p] = onw_sat16(w[p] - onw_stochastic_shift((int64_t)(sum / ONW_DIRECTIONS) * onw_state.lr_q,
                                                         ONW_FGRAD_SHIFT, onw_rand(rkey, p)),
                             &onw_saturations);
        }
    }
}

#else
/* Activity-perturbed (Ren et al. 2022): unit i's sign in tangent k, 0 for a dead ReLU unit (it carries no
 * tangent), else +-1 from the top bit of rand(key, k * units + i). */
static int32_t sign(int layer, uint32_t key, uint32_t k, uint32_t i)
{
    uint32_t n = onw_layers[layer].out_dim;
    if (layer < LAST && layer_output(layer)[i] <= 0) {
        return 0;
    }
    return (onw_rand(key, k * n + i) >> 31) ? -1 : 1;
}

/* Tangent k's pass: t_l = W_l t_{l-1} + u_l on the live units; returns d_k. */
static int16_t slope(const int16_t *x, uint32_t k)
{
    const int16_t *in = NULL;
    int layer;
    (void)x;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *out = tangent[layer & 1];
        uint32_t i, n = onw_layers[layer].out_dim, key = tangent_key(layer);
        if (layer > 0) { /* the input carries no tangent */
            onw_dense(onw_layer_weights(layer), in, onw_layers[layer].in_dim, (uint16_t)n, ONW_WEIGHT_FRAC, 0, out,
                      &onw_saturations);
        }
        for (i = 0; i < n; i++) {
            int32_t s = sign(layer, key, k, i);
            int32_t wt = layer > 0 ? out[i] : 0;
            out[i] = s == 0 ? 0 : onw_sat16((int64_t)wt + s * ONE_TANGENT, &onw_saturations);
        }
        in = out;
    }
    return output_slope(in);
}

/* W_l -= lr * delta_l h_{l-1}^T, delta_l = sum_k d_k u_{k,l} / K (stochastic rounding: onw_dense_update) */
static void update_all(const int16_t *x)
{
    int16_t *delta = tangent[0]; /* free once the tangent passes are done */
    int layer;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        uint32_t i, k, key = tangent_key(layer);
        for (i = 0; i < onw_layers[layer].out_dim; i++) {
            int32_t sum = 0; /* |sum| <= 64 * 2^15: no overflow */
            for (k = 0; k < ONW_DIRECTIONS; k++) {
                sum += slopes[k] * sign(layer, key, k, i);
            }
            delta[i] = onw_sat16(sum / ONW_DIRECTIONS, &onw_saturations); /* C division: fixed.div_trunc */
        }
        onw_dense_update(onw_layer_weights(layer), delta, NULL, layer > 0 ? layer_output(layer - 1) : x,
                         onw_layers[layer].in_dim, onw_layers[layer].out_dim, onw_state.lr_q, ONW_UPDATE_SHIFT,
                         onw_rounding_key((uint32_t)layer), &onw_saturations);
    }
}
#endif

void onw_train_step(int16_t *x, int32_t target, int16_t *outputs)
{
    const int16_t *logits = onw_mlp_forward_pass(x, activations);
    uint32_t k;
    int c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = logits[c];
    }
    onw_mlp_output_error(logits, target, error_q);
    for (k = 0; k < ONW_DIRECTIONS; k++) {
        slopes[k] = slope(x, k);
    }
    update_all(x);
}

void onw_infer(const int16_t *x, int16_t *outputs)
{
    const int16_t *logits = onw_mlp_forward_pass(x, activations);
    int c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = logits[c];
    }
}
#endif
