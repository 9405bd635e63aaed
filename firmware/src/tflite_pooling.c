/* AVERAGE_POOL_2D and MAX_POOL_2D, int8, NHWC; the twin of host/tflite/kernels/pooling.py. Only the window's
 * positions inside the input count; the average rounds half away from zero (C division of sum +- count / 2). */
#include "onward/runtime.h"

#if ONW_FRONTEND
#include "onward/tflite.h"

void onw_tfl_pool_2d(const int32_t *op, const int8_t *x, int8_t *y)
{
    const int32_t in_h = op[ONW_TFL_F_IN_H], in_w = op[ONW_TFL_F_IN_W], ch = op[ONW_TFL_F_IN_C];
    const int32_t out_h = op[ONW_TFL_F_OUT_H], out_w = op[ONW_TFL_F_OUT_W];
    const int average = op[ONW_TFL_F_KIND] == ONW_TFL_AVERAGE_POOL_2D;
    /* the geometry in locals: y is int8_t, which may alias anything, so the compiler would reload op[] */
    const int32_t kh = op[ONW_TFL_F_KH], kw = op[ONW_TFL_F_KW], sh = op[ONW_TFL_F_STRIDE_H];
    const int32_t sw = op[ONW_TFL_F_STRIDE_W], ph = op[ONW_TFL_F_PAD_H], pw = op[ONW_TFL_F_PAD_W];
    const int32_t lo = op[ONW_TFL_F_ACT_MIN], hi = op[ONW_TFL_F_ACT_MAX];
    int32_t oy, ox, c, ky, kx;
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            for (c = 0; c < ch; c++) {
                int32_t acc = average ? 0 : -128, count = 0, v;
                for (ky = 0; ky < kh; ky++) {
                    int32_t iy = oy * sh - ph + ky;
                    for (kx = 0; kx < kw; kx++) {
                        int32_t ix = ox * sw - pw + kx;
                        if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
                            continue;
                        }
                        v = x[(iy * in_w + ix) * ch + c];
                        acc = average ? acc + v : (v > acc ? v : acc);
                        count++;
                    }
                }
                if (average) {
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                acc = acc < lo ? lo : acc;
                acc = acc > hi ? hi : acc;
                y[(oy * out_w + ox) * ch + c] = (int8_t)acc;
            }
        }
    }
}
#else
typedef int onw_tflite_pooling_unused;
#endif
