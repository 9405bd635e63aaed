/* PEPITA and MEMPEPITA; twins of host/rules/pepita.py and host/rules/mempepita.py.
 * The rule is fixed at build time (ONW_RULE) so that only its buffers take RAM. */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_PEPITA || ONW_RULE == ONW_RULE_MEMPEPITA
#include <stddef.h>

#include "onward/fixed.h"
#include "onward/dense.h"
#include "onward/mlp.h"
#include "onward/runtime.h"

#define LAST (ONW_NUM_LAYERS - 1)

static int16_t error_q[ONW_NUM_CLASSES]; /* e = softmax(z) - y, Q(ONW_ACT_FRAC) */

static void update(int layer, const int16_t *a, const int16_t *b, const int16_t *x_in)
{
    uint32_t key = onw_rounding_key((uint32_t)layer);
    onw_dense_update(onw_layer_weights(layer), a, b, x_in, onw_layers[layer].in_dim, onw_layers[layer].out_dim,
                     onw_state.lr_q, ONW_UPDATE_SHIFT, key, &onw_saturations);
}

/* x <- sat16(x + F e), F regenerated from the seed: never stored. Row i of F comes from one hash and a dither word
 * per entry (host/model.py's feedback_matrix): F_ic = t_ic - bound, t_ic = (u_ic (2 bound + 1)) >> 32, so
 * F e = t e - bound sum(e), one multiply-accumulate per entry. The sum fits int32 when
 * classes * 2 bound * 2^15 < 2^31 (every digits-sized model); else int64. */
#if (ONW_NUM_CLASSES * 2 * ONW_FEEDBACK_BOUND) < 65536
typedef int32_t feedback_acc_t; /* |acc| <= classes bound 2^15 < 2^30: the rounding's + 2^(ff-1) fits too */
#else
typedef int64_t feedback_acc_t;
#endif
static void modulate(int16_t *x)
{
    uint32_t key = onw_derive(onw_state.seed, ONW_STREAM_FEEDBACK);
    const uint32_t span = 2u * ONW_FEEDBACK_BOUND + 1u;
    feedback_acc_t offset = 0;
    uint32_t i;
    int c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        offset += (feedback_acc_t)ONW_FEEDBACK_BOUND * error_q[c];
    }
    for (i = 0; i < ONW_INPUT_DIM; i++) {
        uint32_t u = onw_rand_inline(key, i);
        feedback_acc_t acc = -offset, fe;
#pragma GCC unroll 16
        for (c = 0; c < ONW_NUM_CLASSES; c++) {
            acc += (feedback_acc_t)(uint32_t)(((uint64_t)u * span) >> 32) * error_q[c];
            u = onw_dither_next(u);
        }
        /* requant(acc, ff, 0) in acc's own width: the same rounding half up and saturation */
#if ONW_FEEDBACK_FRAC > 0
        fe = (acc + ((feedback_acc_t)1 << (ONW_FEEDBACK_FRAC - 1))) >> ONW_FEEDBACK_FRAC;
#else
        fe = acc;
#endif
        fe = onw_sat16_inline(fe, &onw_saturations);
        x[i] = onw_sat16_inline((int32_t)x[i] + (int32_t)fe, &onw_saturations);
    }
}

static void copy_logits(const int16_t *from, int16_t *logits)
{
    int c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        logits[c] = from[c];
    }
}

#if ONW_RULE == ONW_RULE_PEPITA
/* Pass 1 keeps every layer's output; pass 2 needs two layers at a time. */
static int16_t activations[ONW_SUM_WIDTHS];
static int16_t modulated[2][ONW_MAX_HIDDEN];

/* Pass 1 keeps every layer's output in the store for pass 2's updates (onw_mlp_forward_pass). */
static const int16_t *forward_pass(const int16_t *x)
{
    return onw_mlp_forward_pass(x, activations);
}

void onw_train_step(int16_t *x, int32_t label, int16_t *logits)
{
    const int16_t *in;
    int layer;
    copy_logits(forward_pass(x), logits);
    onw_mlp_output_error(logits, label, error_q);
    modulate(x); /* x becomes x_err: the clean input is not needed again */
    in = x;
    for (layer = 0; layer < LAST; layer++) {
        int16_t *out = modulated[layer & 1];
        onw_mlp_forward(layer, in, out);
        update(layer, activations + onw_layers[layer].act_offset, out, in);
        in = out;
    }
    update(LAST, error_q, NULL, in);
}

#elif ONW_RULE == ONW_RULE_MEMPEPITA
/* Pass 1 (error only) and the clean pass share two buffers; the modulated pass has two more. */
static int16_t clean[2][ONW_MAX_WIDTH];
static int16_t modulated[2][ONW_MAX_HIDDEN];
static int16_t x_modulated[ONW_INPUT_DIM];

/* Pass 1 computes the error only: two ping-pong buffers. */
static const int16_t *forward_pass(const int16_t *x)
{
    const int16_t *in = x;
    int layer;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *out = clean[layer & 1];
        onw_mlp_forward(layer, in, out);
        in = out;
    }
    return in;
}

void onw_train_step(int16_t *x, int32_t label, int16_t *logits)
{
    const int16_t *in, *in_err;
    uint32_t i;
    int layer;
    copy_logits(forward_pass(x), logits);
    onw_mlp_output_error(logits, label, error_q);
    for (i = 0; i < ONW_INPUT_DIM; i++) {
        x_modulated[i] = x[i];
    }
    modulate(x_modulated);
    in = x;
    in_err = x_modulated;
    for (layer = 0; layer < LAST; layer++) {
        int16_t *out = clean[layer & 1], *out_err = modulated[layer & 1];
        onw_mlp_forward(layer, in, out);
        onw_mlp_forward(layer, in_err, out_err);
        update(layer, out, out_err, in_err);
        in = out;
        in_err = out_err;
    }
    update(LAST, error_q, NULL, in_err);
}
#endif

void onw_infer(const int16_t *x, int16_t *logits)
{
    copy_logits(forward_pass(x), logits);
}
#endif /* PEPITA or MEMPEPITA */
