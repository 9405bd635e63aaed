/* DEPTHWISE_CONV_2D, int8 per-channel, NHWC; the twin of host/tflite/kernels/depthwise_conv_2d.py. Output channel
 * c reads input channel c / multiplier; the filter is (kh, kw, out channels). Each window is clipped to the input
 * once per output position. */
#include "onward/runtime.h"

#if ONW_FRONTEND
#include "onward/tflite.h"

void onw_tfl_depthwise_conv_2d(const int32_t *op, const int8_t *x, int8_t *y)
{
    const onw_tfl_window_t g = onw_tfl_window(op);
    const int32_t m = op[ONW_TFL_F_MULTIPLIER];
    const int8_t *w = onw_tfl_weights + op[ONW_TFL_F_WEIGHTS];
    const int32_t *bias = onw_tfl_bias + op[ONW_TFL_F_BIAS];
    int32_t oy, ox, c, ky, kx;
    for (oy = 0; oy < g.out_h; oy++) {
        const int32_t y0 = oy * g.sh - g.ph, ky0 = onw_tfl_first_inside(y0, g.dh);
        const int32_t ky1 = onw_tfl_end_inside(y0, g.dh, g.kh, g.in_h);
        for (ox = 0; ox < g.out_w; ox++) {
            const int32_t x0 = ox * g.sw - g.pw, kx0 = onw_tfl_first_inside(x0, g.dw);
            const int32_t kx1 = onw_tfl_end_inside(x0, g.dw, g.kw, g.in_w);
            for (c = 0; c < g.out_c; c++) {
                int32_t acc = bias[c];
                for (ky = ky0; ky < ky1; ky++) {
                    /* offsets from the first tap inside: never before the buffers' starts */
                    const int8_t *xp = x + ((y0 + ky * g.dh) * g.in_w + x0 + kx0 * g.dw) * g.in_c + c / m;
                    const int8_t *wp = w + (ky * g.kw + kx0) * g.out_c + c;
                    for (kx = 0; kx < kx1 - kx0; kx++) {
                        acc += (int32_t)wp[kx * g.out_c] * ((int32_t)xp[kx * g.dw * g.in_c] - g.zp);
                    }
                }
                y[(oy * g.out_w + ox) * g.out_c + c] = onw_tfl_output(op, acc, c);
            }
        }
    }
}
#else
typedef int onw_tflite_depthwise_conv_2d_unused;
#endif
