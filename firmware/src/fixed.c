/* The integer semantics; see fixed.h and host/fixed.py (the reference these must equal). */
#include "onward/fixed.h"

int16_t onw_sat16(int64_t x, uint32_t *saturations)
{
    return onw_sat16_inline(x, saturations);
}

int64_t onw_round_shift(int64_t x, int shift)
{
    return onw_round_shift_inline(x, shift);
}

int64_t onw_div_trunc(int64_t a, int64_t b)
{
    return a / b;
}

int64_t onw_stochastic_shift(int64_t x, int shift, uint32_t r)
{
    return onw_stochastic_shift_inline(x, shift, r);
}

int64_t onw_dither_update(int16_t x, int64_t row, uint32_t offset)
{
    return (row * x + (int64_t)offset) >> ONW_DITHER_BITS;
}

uint32_t onw_dither_next_word(uint32_t u)
{
    return onw_dither_next(u);
}

/* Bit by bit (two bits of x per iteration): no division, no multiplication, 32 iterations at most. */
uint32_t onw_isqrt(uint64_t x)
{
    uint64_t root = 0, bit = (uint64_t)1 << 62;
    while (bit > x) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (x >= root + bit) {
            x -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)root;
}

uint32_t onw_mix32(uint32_t x)
{
    return onw_mix32_inline(x);
}

uint32_t onw_rand(uint32_t key, uint32_t index)
{
    return onw_rand_inline(key, index);
}

/* From here on, functions that run a few times per step, or once per output, not per weight: optimised for size
 * (GCC; with link-time optimisation -O2 would copy them into every caller). The helpers above stay -O2, to be
 * inlined into the loops that call them per weight. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("Os")
#endif

int16_t onw_requant(int64_t x, int from_frac, int to_frac, uint32_t *saturations)
{
    return onw_requant_inline(x, from_frac, to_frac, saturations);
}

uint32_t onw_derive(uint32_t key, uint32_t n)
{
    return onw_mix32(key ^ onw_mix32(n + ONW_GOLDEN));
}

int32_t onw_uniform_int(uint32_t key, uint32_t index, int32_t bound)
{
    uint64_t span = (uint64_t)(2 * (int64_t)bound + 1);
    return (int32_t)(((uint64_t)onw_rand(key, index) * span) >> 32) - bound;
}

/* In 32 bits (the softmax and sigmoid call it per class): 0 <= f15 < 2^15 and every coefficient is below 2^15, so
 * each product is below 2^30 and each sum below 2^31; p < 2^16, and n <= 30 keeps p + 2^(n-1) in range. */
int32_t onw_exp2_q15(int32_t t, int frac)
{
    int32_t k = t >> frac; /* floor */
    int32_t f = (int32_t)((uint32_t)t - ((uint32_t)k << frac)); /* in [0, 2^frac) */
    int32_t f15 = frac >= 15 ? f >> (frac - 15) : f << (15 - frac);
    int32_t a, p, n = -k;
    a = ONW_EXP2_C2 + ((ONW_EXP2_C3 * f15 + (1 << 14)) >> 15);
    a = ONW_EXP2_C1 + ((a * f15 + (1 << 14)) >> 15);
    p = ONW_ONE_Q15 + ((a * f15 + (1 << 14)) >> 15);
    if (n >= 31) {
        return 0;
    }
    return n == 0 ? p : (p + (1 << (n - 1))) >> n;
}

void onw_softmax_q15(const int16_t *z, int n, int frac, int32_t *prob_q15)
{
    int16_t zmax = z[0];
    uint32_t sum = 0; /* n <= 255 (HELLO carries the output count in a byte) probabilities of at most 2^15 */
    int i;
    for (i = 1; i < n; i++) {
        if (z[i] > zmax) {
            zmax = z[i];
        }
    }
    for (i = 0; i < n; i++) {
        /* round_shift((z - zmax) log2e, 14) in 32 bits: -65535 <= z - zmax <= 0, so the product is above -2^31 */
        int32_t t = ((int32_t)z[i] - zmax) * ONW_LOG2E_Q14;
        prob_q15[i] = onw_exp2_q15((t + (1 << 13)) >> 14, frac);
        sum += (uint32_t)prob_q15[i];
    }
    for (i = 0; i < n; i++) {
        /* 0 <= p << 15 <= 2^30 and 2^15 <= sum < 2^32: a 32-bit division (one UDIV on v7-M, not libgcc's
         * 64-bit one) gives div_trunc's quotient */
        prob_q15[i] = (int32_t)(((uint32_t)prob_q15[i] << 15) / sum);
    }
}

int32_t onw_sigmoid_q15(int64_t t, int frac)
{
    int64_t a = t < 0 ? -t : t;
    int32_t e;
    if (a > ((int64_t)32 << frac)) {
        a = (int64_t)32 << frac; /* e^-32 is 0 in Q15: the clamp changes nothing but keeps exp2's int32 */
    }
    e = onw_exp2_q15(-(int32_t)onw_round_shift(a * ONW_LOG2E_Q14, 14), frac);
    return t >= 0 ? (int32_t)(((int64_t)1 << 30) / (ONW_ONE_Q15 + e))
                  : (int32_t)(((int64_t)e << 15) / (ONW_ONE_Q15 + e));
}

void onw_softmax_error(const int16_t *z, int n, int frac, int32_t label, int32_t *prob_q15, int16_t *error,
                       uint32_t *saturations)
{
    int c;
    onw_softmax_q15(z, n, frac, prob_q15);
    prob_q15[label] -= ONW_ONE_Q15;
    for (c = 0; c < n; c++) {
        /* requant(p, 15, frac) for frac <= 14 (host/spec.py): a rounding right shift in 32 bits (|p| <= 2^15) */
        error[c] = onw_sat16_inline((prob_q15[c] + (1 << (14 - frac))) >> (15 - frac), saturations);
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
