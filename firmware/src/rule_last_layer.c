/* Last-layer-only SGD; the twin of Fixed in host/rules/last_layer.py.
 *
 * One forward pass keeps every layer's output (onw_mlp_forward_pass); the output error e = softmax(z) - onehot(y);
 * one update of the output layer, W_L -= lr e h_{L-1}^T, stochastically rounded (onw_dense_update). The hidden
 * layers never change: they are fixed random features. */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_LAST_LAYER
#include <stddef.h>

#include "onward/dense.h"
#include "onward/mlp.h"

#define LAST (ONW_NUM_LAYERS - 1)

static int16_t activations[ONW_SUM_WIDTHS]; /* every layer's output, the logits last */
static int16_t error_q[ONW_NUM_CLASSES];    /* e = softmax(z) - y, Q(ONW_ACT_FRAC) */

static void copy_outputs(const int16_t *logits, int16_t *outputs)
{
    int c;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = logits[c];
    }
}

void onw_train_step(int16_t *x, int32_t label, int16_t *outputs)
{
    const int16_t *logits = onw_mlp_forward_pass(x, activations);
#if LAST > 0
    const int16_t *features = activations + onw_layers[LAST - 1].act_offset; /* the last hidden layer's output */
#else
    const int16_t *features = x; /* no hidden layer: logistic regression */
#endif
    copy_outputs(logits, outputs);
    onw_mlp_output_error(logits, label, error_q);
    onw_dense_update(onw_layer_weights(LAST), error_q, NULL, features, onw_layers[LAST].in_dim,
                     onw_layers[LAST].out_dim, onw_state.lr_q, ONW_UPDATE_SHIFT, onw_rounding_key(LAST),
                     &onw_saturations);
}

void onw_infer(const int16_t *x, int16_t *outputs)
{
    copy_outputs(onw_mlp_forward_pass(x, activations), outputs);
}
#endif
