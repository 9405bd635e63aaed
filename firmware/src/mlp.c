/* The MLP pieces shared by the rules that learn one (see mlp.h); the twin of host/nn/mlp.py. */
#include "onward/mlp.h"

#include "onward/fixed.h"
#include "onward/dense.h"
#include "onward/runtime.h"

#define LAST (ONW_NUM_LAYERS - 1)

void onw_mlp_forward(int layer, const int16_t *x, int16_t *y)
{
    onw_dense(onw_layer_weights(layer), x, onw_layers[layer].in_dim, onw_layers[layer].out_dim, ONW_WEIGHT_FRAC,
              layer < LAST, y, &onw_saturations);
}

/* Not inlined: a rule calls it from both onw_train_step and onw_infer (48 B of flash with LTO). */
__attribute__((noinline)) const int16_t *onw_mlp_forward_pass(const int16_t *x, int16_t *store)
{
    const int16_t *in = x;
    int layer;
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *out = store + onw_layers[layer].act_offset;
        onw_mlp_forward(layer, in, out);
        in = out;
    }
    return in;
}

void onw_mlp_output_error(const int16_t *logits, int32_t label, int16_t *error)
{
#if ONW_REGRESSION
    /* the squared error's gradient z - y: label is the Q(ACT_FRAC) target */
    error[0] = onw_sat16_inline((int32_t)logits[0] - label, &onw_saturations);
#else
    int32_t prob[ONW_NUM_CLASSES];
    onw_softmax_error(logits, ONW_NUM_CLASSES, ONW_ACT_FRAC, label, prob, error, &onw_saturations);
#endif
}
