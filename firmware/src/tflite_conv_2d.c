/* CONV_2D, int8 per-channel, NHWC; the twin of host/tflite/kernels/conv_2d.py. Window positions outside the input
 * are skipped (TFLite pads with the input zero point, which contributes nothing after the offset). For each
 * output position the window is clipped to the input once; with dilation 1 a window row is then one contiguous
 * run of (kx_end - kx_start) * in_c values in both the input and the filter. */
#include "onward/runtime.h"

#if ONW_FRONTEND
#include "onward/tflite.h"

void onw_tfl_conv_2d(const int32_t *op, const int8_t *x, int8_t *y)
{
    const int32_t in_h = op[ONW_TFL_F_IN_H], in_w = op[ONW_TFL_F_IN_W], in_c = op[ONW_TFL_F_IN_C];
    const int32_t out_h = op[ONW_TFL_F_OUT_H], out_w = op[ONW_TFL_F_OUT_W], out_c = op[ONW_TFL_F_OUT_C];
    const int32_t kh = op[ONW_TFL_F_KH], kw = op[ONW_TFL_F_KW], zp = op[ONW_TFL_F_IN_ZP];
    /* the geometry in locals: y is int8_t, which may alias anything, so the compiler would reload op[] */
    const int32_t sh = op[ONW_TFL_F_STRIDE_H], sw = op[ONW_TFL_F_STRIDE_W], ph = op[ONW_TFL_F_PAD_H];
    const int32_t pw = op[ONW_TFL_F_PAD_W], dh = op[ONW_TFL_F_DIL_H], dw = op[ONW_TFL_F_DIL_W];
    const int8_t *w = onw_tfl_weights + op[ONW_TFL_F_WEIGHTS];
    const int32_t *bias = onw_tfl_bias + op[ONW_TFL_F_BIAS];
    int32_t oy, ox, c, ky, kx, i;
    for (oy = 0; oy < out_h; oy++) {
        const int32_t y0 = oy * sh - ph, ky0 = onw_tfl_first_inside(y0, dh);
        const int32_t ky1 = onw_tfl_end_inside(y0, dh, kh, in_h);
        for (ox = 0; ox < out_w; ox++) {
            const int32_t x0 = ox * sw - pw, kx0 = onw_tfl_first_inside(x0, dw);
            const int32_t kx1 = onw_tfl_end_inside(x0, dw, kw, in_w);
            for (c = 0; c < out_c; c++) {
                int32_t acc = bias[c];
                for (ky = ky0; ky < ky1; ky++) {
                    /* offsets from the first tap inside: never before the buffers' starts */
                    const int8_t *xp = x + ((y0 + ky * dh) * in_w + x0 + kx0 * dw) * in_c;
                    const int8_t *wp = w + ((c * kh + ky) * kw + kx0) * in_c;
                    if (dw == 1) { /* one contiguous run */
                        const int32_t n = (kx1 - kx0) * in_c;
                        for (i = 0; i < n; i++) {
                            acc += (int32_t)wp[i] * ((int32_t)xp[i] - zp);
                        }
                        continue;
                    }
                    for (kx = 0; kx < kx1 - kx0; kx++) {
                        for (i = 0; i < in_c; i++) {
                            acc += (int32_t)wp[kx * in_c + i] * ((int32_t)xp[kx * dw * in_c + i] - zp);
                        }
                    }
                }
                y[(oy * out_w + ox) * out_c + c] = onw_tfl_output(op, acc, c);
            }
        }
    }
}
#else
typedef int onw_tflite_conv_2d_unused;
#endif
