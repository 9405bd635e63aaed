/* The pieces every MLP rule shares (bias-free dense layers, ReLU between them, softmax cross-entropy); the twin
 * of host/nn/mlp.py, function for function. */
#ifndef ONWARD_MLP_H
#define ONWARD_MLP_H

#include <stdint.h>

/* y = layer's dense product of x, requantised to Q(ONW_ACT_FRAC), ReLU unless it is the output layer. */
void onw_mlp_forward(int layer, const int16_t *x, int16_t *y);
/* Every layer on x, layer l's output kept at store + onw_layers[l].act_offset (store: ONW_SUM_WIDTHS int16);
 * returns the logits (the output layer's part of the store). */
const int16_t *onw_mlp_forward_pass(const int16_t *x, int16_t *store);
/* e = softmax(logits) - onehot(label) in Q(ONW_ACT_FRAC), saturations counted. */
void onw_mlp_output_error(const int16_t *logits, int32_t label, int16_t *error);

#endif
