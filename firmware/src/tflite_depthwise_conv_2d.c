/* DEPTHWISE_CONV_2D, int8 per-channel, NHWC; the twin of host/tflite/kernels/depthwise_conv_2d.py. Output channel
 * c reads input channel c / multiplier; the filter is (kh, kw, out channels). */
#include "onward/runtime.h"

#if ONW_FRONTEND
#include "onward/tflite.h"

void onw_tfl_depthwise_conv_2d(const int32_t *op, const int8_t *x, int8_t *y)
{
    const int32_t in_h = op[ONW_TFL_F_IN_H], in_w = op[ONW_TFL_F_IN_W], in_c = op[ONW_TFL_F_IN_C];
    const int32_t out_h = op[ONW_TFL_F_OUT_H], out_w = op[ONW_TFL_F_OUT_W], out_c = op[ONW_TFL_F_OUT_C];
    const int32_t kh = op[ONW_TFL_F_KH], kw = op[ONW_TFL_F_KW], zp = op[ONW_TFL_F_IN_ZP];
    /* the geometry in locals: y is int8_t, which may alias anything, so the compiler would reload op[] */
    const int32_t sh = op[ONW_TFL_F_STRIDE_H], sw = op[ONW_TFL_F_STRIDE_W], ph = op[ONW_TFL_F_PAD_H];
    const int32_t pw = op[ONW_TFL_F_PAD_W], dh = op[ONW_TFL_F_DIL_H], dw = op[ONW_TFL_F_DIL_W];
    const int32_t m = op[ONW_TFL_F_MULTIPLIER];
    const int8_t *w = onw_tfl_weights + op[ONW_TFL_F_WEIGHTS];
    const int32_t *bias = onw_tfl_bias + op[ONW_TFL_F_BIAS];
    int32_t oy, ox, c, ky, kx;
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            for (c = 0; c < out_c; c++) {
                int32_t acc = bias[c];
                for (ky = 0; ky < kh; ky++) {
                    int32_t iy = oy * sh - ph + ky * dh;
                    if (iy < 0 || iy >= in_h) {
                        continue;
                    }
                    for (kx = 0; kx < kw; kx++) {
                        int32_t ix = ox * sw - pw + kx * dw;
                        if (ix < 0 || ix >= in_w) {
                            continue;
                        }
                        acc += (int32_t)w[(ky * kw + kx) * out_c + c] * ((int32_t)x[(iy * in_w + ix) * in_c + c / m] - zp);
                    }
                }
                y[(oy * out_w + ox) * out_c + c] = onw_tfl_output(op, acc, c);
            }
        }
    }
}
#else
typedef int onw_tflite_depthwise_conv_2d_unused;
#endif
