/* FULLY_CONNECTED, int8; the twin of host/tflite/kernels/fully_connected.py. */
#include "onward/runtime.h"

#if ONW_FRONTEND
#include "onward/tflite.h"

void onw_tfl_fully_connected(const int32_t *op, const int8_t *x, int8_t *y)
{
    const int32_t in = op[ONW_TFL_F_IN_H] * op[ONW_TFL_F_IN_W] * op[ONW_TFL_F_IN_C], out = op[ONW_TFL_F_OUT_C];
    const int8_t *w = onw_tfl_weights + op[ONW_TFL_F_WEIGHTS];
    const int32_t *bias = onw_tfl_bias + op[ONW_TFL_F_BIAS], zp = op[ONW_TFL_F_IN_ZP];
    int32_t o, j;
    for (o = 0; o < out; o++) {
        int32_t acc = bias[o];
        for (j = 0; j < in; j++) {
            acc += (int32_t)w[o * in + j] * ((int32_t)x[j] - zp);
        }
        y[o] = onw_tfl_output(op, acc, o);
    }
}
#else
typedef int onw_tflite_fully_connected_unused;
#endif
