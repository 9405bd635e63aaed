/* The frozen int8 feature extractor: TFLite's integer kernels (firmware/src/tflite_*.c, one operator a file, as
 * TFLM's reference kernels) and the runner (frontend.c). The twins: host/tflite/kernels/ and frontend.py.
 * Each operator is a row of ONW_TFL_FIELDS int32 values in onw_tfl_ops (model.c, flash); ONW_TFL_F_* index it,
 * in the order of onward.tflite.frontend.FIELDS (tests/test_tflite_device.py holds them together). */
#ifndef ONWARD_TFLITE_H
#define ONWARD_TFLITE_H

#include <stdint.h>

#define ONW_TFL_FULLY_CONNECTED 1
#define ONW_TFL_CONV_2D 2
#define ONW_TFL_DEPTHWISE_CONV_2D 3
#define ONW_TFL_AVERAGE_POOL_2D 4
#define ONW_TFL_MAX_POOL_2D 5
#define ONW_TFL_RESHAPE 6

#define ONW_TFL_ROUND_DOUBLE 0         /* gemmlowp: the shift rounds half away from zero */
#define ONW_TFL_ROUND_DOUBLE_HALF_UP 1 /* ruy: the shift rounds half up */

#define ONW_TFL_F_KIND 0
#define ONW_TFL_F_ROUNDING 1
#define ONW_TFL_F_IN_H 2
#define ONW_TFL_F_IN_W 3
#define ONW_TFL_F_IN_C 4
#define ONW_TFL_F_OUT_H 5
#define ONW_TFL_F_OUT_W 6
#define ONW_TFL_F_OUT_C 7
#define ONW_TFL_F_KH 8
#define ONW_TFL_F_KW 9
#define ONW_TFL_F_STRIDE_H 10
#define ONW_TFL_F_STRIDE_W 11
#define ONW_TFL_F_PAD_H 12
#define ONW_TFL_F_PAD_W 13
#define ONW_TFL_F_DIL_H 14
#define ONW_TFL_F_DIL_W 15
#define ONW_TFL_F_MULTIPLIER 16
#define ONW_TFL_F_IN_ZP 17
#define ONW_TFL_F_OUT_ZP 18
#define ONW_TFL_F_ACT_MIN 19
#define ONW_TFL_F_ACT_MAX 20
#define ONW_TFL_F_WEIGHTS 21
#define ONW_TFL_F_BIAS 22
#define ONW_TFL_F_QUANT 23
#define ONW_TFL_F_CHANNELS_Q 24

extern const int32_t onw_tfl_ops[];
extern const int8_t onw_tfl_weights[];
extern const int32_t onw_tfl_bias[];
extern const int32_t onw_tfl_quant[]; /* (multiplier, shift) per channel, operator after operator */

/* A convolution's geometry, read once from its table row into locals: the output is int8_t, which may alias
 * anything, so a kernel reading op[] in its loops would reload it for every MAC. */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, kh, kw, zp, sh, sw, ph, pw, dh, dw;
} onw_tfl_window_t;

static inline onw_tfl_window_t onw_tfl_window(const int32_t *op)
{
    onw_tfl_window_t g;
    g.in_h = op[ONW_TFL_F_IN_H], g.in_w = op[ONW_TFL_F_IN_W], g.in_c = op[ONW_TFL_F_IN_C];
    g.out_h = op[ONW_TFL_F_OUT_H], g.out_w = op[ONW_TFL_F_OUT_W], g.out_c = op[ONW_TFL_F_OUT_C];
    g.kh = op[ONW_TFL_F_KH], g.kw = op[ONW_TFL_F_KW], g.zp = op[ONW_TFL_F_IN_ZP];
    g.sh = op[ONW_TFL_F_STRIDE_H], g.sw = op[ONW_TFL_F_STRIDE_W], g.ph = op[ONW_TFL_F_PAD_H];
    g.pw = op[ONW_TFL_F_PAD_W], g.dh = op[ONW_TFL_F_DIL_H], g.dw = op[ONW_TFL_F_DIL_W];
    return g;
}

/* A window's taps inside the input: the first k with origin + k * dilation >= 0, and one past the last with
 * origin + k * dilation < size (the window is clipped once per output position, not tested per tap). */
static inline int32_t onw_tfl_first_inside(int32_t origin, int32_t dilation)
{
    int32_t k = 0;
    while (origin + k * dilation < 0) {
        k++;
    }
    return k;
}

static inline int32_t onw_tfl_end_inside(int32_t origin, int32_t dilation, int32_t kernel, int32_t size)
{
    int32_t k = kernel;
    while (k > 0 && origin + (k - 1) * dilation >= size) {
        k--;
    }
    return k;
}

/* acc * q * 2^(shift - 31), rounded as `rounding` (host/tflite/quantization.py). */
int32_t onw_tfl_multiply(int32_t acc, int32_t q, int32_t shift, int32_t rounding);
/* The output stage: requantise channel c's accumulator, add the output zero point, clamp to the activation. */
int8_t onw_tfl_output(const int32_t *op, int32_t acc, int32_t c);

void onw_tfl_fully_connected(const int32_t *op, const int8_t *x, int8_t *y);
void onw_tfl_conv_2d(const int32_t *op, const int8_t *x, int8_t *y);
void onw_tfl_depthwise_conv_2d(const int32_t *op, const int8_t *x, int8_t *y);
void onw_tfl_pool_2d(const int32_t *op, const int8_t *x, int8_t *y);

/* The extractor on one raw sample (int8 values in int16, clamped), its features in Q(ONW_ACT_FRAC). */
void onw_frontend(const int16_t *raw, int16_t *features);

#endif
