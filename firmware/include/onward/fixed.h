/* The integer semantics of onward: the C twin of host/fixed.py, function for function.
 * Rounding is half up (add half, arithmetic shift right); saturation is to int16 and counted;
 * division is C99's (truncates toward zero); randomness is a counter-based hash. */
#ifndef ONWARD_FIXED_H
#define ONWARD_FIXED_H

#include <stdint.h>

#define ONW_GOLDEN 0x9E3779B9u
#define ONW_LOG2E_Q14 23637
#define ONW_EXP2_C1 22792
#define ONW_EXP2_C2 7411
#define ONW_EXP2_C3 2561
#define ONW_ONE_Q15 32768
/* The weight update's dither (host/fixed.py): an LCG word per DITHER_GROUP weights, its top DITHER_BITS bits */
#define ONW_DITHER_A 1664525u
#define ONW_DITHER_C 1013904223u
#define ONW_DITHER_BITS 16
#define ONW_DITHER_GROUP 8

/* Clamp to int16; increments *saturations when it clamps (saturations may be NULL). */
int16_t onw_sat16(int64_t x, uint32_t *saturations);
static inline int16_t onw_sat16_inline(int64_t x, uint32_t *saturations)
{
    if (x > INT16_MAX || x < INT16_MIN) {
        if (saturations) {
            (*saturations)++;
        }
        return x > INT16_MAX ? INT16_MAX : INT16_MIN;
    }
    return (int16_t)x;
}
/* x / 2^shift rounded half up; shift in [0, 62], |x| < 2^62. */
int64_t onw_round_shift(int64_t x, int shift);
static inline int64_t onw_round_shift_inline(int64_t x, int shift)
{
    if (shift == 0) {
        return x;
    }
    /* >> of a negative int64 is arithmetic with GCC on every target we build for (tested). */
    return (x + ((int64_t)1 << (shift - 1))) >> shift;
}
/* Q(from_frac) -> int16 Q(to_frac): rounding shift or exact left shift, then saturate. */
int16_t onw_requant(int64_t x, int from_frac, int to_frac, uint32_t *saturations);
static inline int16_t onw_requant_inline(int64_t x, int from_frac, int to_frac, uint32_t *saturations)
{
    if (from_frac >= to_frac) {
        return onw_sat16_inline(onw_round_shift_inline(x, from_frac - to_frac), saturations);
    }
    /* Left shift through uint64: shifting a negative signed value left is undefined in C99. */
    return onw_sat16_inline((int64_t)((uint64_t)x << (to_frac - from_frac)), saturations);
}
/* C99 division, truncating toward zero (exists so that the tests can hold it against Python). */
int64_t onw_div_trunc(int64_t a, int64_t b);
/* floor((x + u) / 2^shift) with u in [0, 2^shift) taken from the random word r. */
int64_t onw_stochastic_shift(int64_t x, int shift, uint32_t r);
static inline int64_t onw_stochastic_shift_inline(int64_t x, int shift, uint32_t r)
{
    int64_t offset;
    if (shift == 0) {
        return x;
    }
    offset = shift <= 32 ? (int64_t)(r >> (32 - shift)) : (int64_t)((uint64_t)r << (shift - 32));
    return (x + offset) >> shift;
}

/* floor((row * x + offset) / 2^16): the update's step, offset in [0, 2^16). */
int64_t onw_dither_update(int16_t x, int64_t row, uint32_t offset);
/* The dither word after u: A u + C mod 2^32. */
static inline uint32_t onw_dither_next(uint32_t u)
{
    return u * ONW_DITHER_A + ONW_DITHER_C;
}
uint32_t onw_dither_next_word(uint32_t u); /* the same, callable (the tests call it) */

/* floor(sqrt(x)) for 0 <= x < 2^63, exactly. */
uint32_t onw_isqrt(uint64_t x);

/* Wellons' lowbias32 hash. The _inline twins are the definitions; the hot loops (dense.c) inline them. */
uint32_t onw_mix32(uint32_t x);
static inline uint32_t onw_mix32_inline(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}
uint32_t onw_derive(uint32_t key, uint32_t n);
uint32_t onw_rand(uint32_t key, uint32_t index);
static inline uint32_t onw_rand_inline(uint32_t key, uint32_t index)
{
    return onw_mix32_inline(key ^ (index * ONW_GOLDEN));
}
/* Uniform in [-bound, bound], 0 <= bound <= 32767. */
int32_t onw_uniform_int(uint32_t key, uint32_t index, int32_t bound);

/* 2^(t / 2^frac) for t <= 0, Q15. */
int32_t onw_exp2_q15(int32_t t, int frac);
/* Softmax of n int16 logits in Q(frac) into Q15 probabilities (int32 so that 1.0 = 32768 fits). */
void onw_softmax_q15(const int16_t *z, int n, int frac, int32_t *prob_q15);
/* The softmax cross-entropy error e = softmax(z) - onehot(label), in the logits' Q(frac) (saturated, counted);
 * prob_q15 is n int32 of scratch. Twin of onward.rules.pepita.output_error_fixed. */
void onw_softmax_error(const int16_t *z, int n, int frac, int32_t label, int32_t *prob_q15, int16_t *error,
                       uint32_t *saturations);

/* The logistic 1 / (1 + e^(-t / 2^frac)) as Q15 in [0, 32768]; |t| < 2^62, frac in [0, 24]. */
int32_t onw_sigmoid_q15(int64_t t, int frac);

#endif
