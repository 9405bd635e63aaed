/* TFLite's requantisation; the twin of host/tflite/quantization.py. */
#include "onward/runtime.h"

#if ONW_FRONTEND
#include "onward/tflite.h"

/* gemmlowp's SaturatingRoundingDoublingHighMul: a * b / 2^31, rounded half up; INT32_MIN * INT32_MIN saturates. */
static int32_t high_mul(int32_t a, int32_t b)
{
    int64_t ab = (int64_t)a * b;
    int64_t num = ab + (ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30)));
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    /* C's division by 2^31 truncates toward zero: shift the magnitude (no 64-bit divide on the M0) */
    return (int32_t)(num >= 0 ? num >> 31 : -((-num) >> 31));
}

int32_t onw_tfl_multiply(int32_t acc, int32_t q, int32_t shift, int32_t rounding)
{
    int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int32_t x = high_mul((int32_t)((uint32_t)acc << left), q);
    if (right == 0) {
        return x;
    }
    if (rounding == ONW_TFL_ROUND_DOUBLE_HALF_UP) {
        return (int32_t)(((int64_t)x + ((int64_t)1 << (right - 1))) >> right);
    } else {
        int32_t mask = (int32_t)((1u << right) - 1u), remainder = x & mask;
        int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
        return (x >> right) + (remainder > threshold ? 1 : 0);
    }
}

int8_t onw_tfl_output(const int32_t *op, int32_t acc, int32_t c)
{
    const int32_t *q = onw_tfl_quant + op[ONW_TFL_F_QUANT] + 2 * (op[ONW_TFL_F_CHANNELS_Q] == 1 ? 0 : c);
    int32_t y = onw_tfl_multiply(acc, q[0], q[1], op[ONW_TFL_F_ROUNDING]) + op[ONW_TFL_F_OUT_ZP];
    y = y < op[ONW_TFL_F_ACT_MIN] ? op[ONW_TFL_F_ACT_MIN] : y;
    y = y > op[ONW_TFL_F_ACT_MAX] ? op[ONW_TFL_F_ACT_MAX] : y;
    return (int8_t)y;
}
#else
typedef int onw_tflite_quantization_unused;
#endif
