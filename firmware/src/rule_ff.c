/* Forward-Forward (Hinton 2022); the twin of host/rules/ff.py, whose docstring is the
 * specification (label appended to the input, Q14 length normalisation, goodness = sum h^2 in Q(ACT_FRAC),
 * softplus' derivative by onw_sigmoid_q15, scores relative to the best label). */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_FF
#include <stddef.h>

#include "onward/fixed.h"
#include "onward/dsp.h"
#include "onward/dense.h"

#if ONW_DSP_KERNELS
#include <arm_acle.h>
#endif

#define FF_FLOOR (-32768)

/* [pass][ping-pong]: a layer reads one buffer (normalised in place, bias input appended) and writes the other.
 * Training runs the positive (0) and negative (1) pass side by side. Inference uses pass 0's two buffers and, in
 * the place of pass 1's, layer 0's label-independent sums (first_layer_sums), one int64 per unit. */
static union {
    int16_t v[2][2][ONW_FF_MAX_IN]; /* ONW_FF_MAX_IN is even: every buffer starts word-aligned */
    struct {
        int16_t v[2][ONW_FF_MAX_IN];   /* the same bytes as v[0] above */
        int64_t sums[ONW_FF_UNITS_0];
    } infer;
    uint32_t align; /* for the SMLALD kernel's word loads */
} ff_buf;

/* A layer's inputs without the bias: the features and the label entries for layer 0. */
static uint32_t layer_inputs(int layer)
{
    return onw_layers[layer].in_dim + (layer == 0 ? (uint32_t)ONW_NUM_CLASSES : 0u);
}

/* A block's row: the inputs, the bias and one padding column if that makes it even (word-aligned rows). */
static uint32_t row_width(uint32_t inputs)
{
    return (inputs + 2u) & ~1u;
}

#if ONW_DSP_KERNELS
/* Two int16 as one word (p[0] in the low half); an unaligned LDR is allowed on v7-M. */
static inline int16x2_t load_pair(const int16_t *p)
{
    int16x2_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
#endif

/* sum v[i]^2, exact (SMLALD: two squares per instruction, into 64 bits). */
static int64_t sum_squares(const int16_t *v, uint32_t n)
{
    int64_t sum = 0;
    uint32_t i = 0;
#if ONW_DSP_KERNELS
    for (; i + 4u <= n; i += 4u) {
        int16x2_t a = load_pair(v + i), b = load_pair(v + i + 2u);
        sum = __smlald(a, a, sum);
        sum = __smlald(b, b, sum);
    }
#endif
    for (; i < n; i++) {
        sum += (int32_t)v[i] * v[i];
    }
    return sum;
}

/* Two bits of the radicand (the top of `word`) into the remainder, one bit onto the root: the digit-by-digit square
 * root. On Thumb-2 the comparison's carry is the new bit (ADC), which GCC does not find: 8 instructions, not 10. */
#if defined(__thumb2__)
#define FF_SQRT_STEP(word)                                                                                           \
    do {                                                                                                             \
        uint32_t trial_;                                                                                             \
        __asm__("add %[t], %[one], %[root], lsl #2\n\t"                                                              \
                "lsl %[rem], %[rem], #2\n\t"                                                                         \
                "orr %[rem], %[rem], %[w], lsr #30\n\t"                                                              \
                "lsl %[w], %[w], #2\n\t"                                                                             \
                "cmp %[rem], %[t]\n\t"                                                                               \
                "it cs\n\t"                                                                                          \
                "subcs %[rem], %[rem], %[t]\n\t"                                                                     \
                "adc %[root], %[root], %[root]"                                                                      \
                : [rem] "+r"(rem), [root] "+r"(root), [w] "+r"(word), [t] "=&r"(trial_)                             \
                : [one] "r"(1u)                                                                                      \
                : "cc");                                                                                             \
    } while (0)
#else
#define FF_SQRT_STEP(word)                                                                                           \
    do {                                                                                                             \
        uint32_t trial_ = (root << 2) | 1u;                                                                          \
        rem = (rem << 2) | ((word) >> 30);                                                                           \
        (word) <<= 2;                                                                                                \
        root <<= 1;                                                                                                  \
        if (rem >= trial_) {                                                                                         \
            rem -= trial_;                                                                                           \
            root |= 1u;                                                                                              \
        }                                                                                                            \
    } while (0)
#endif

/* floor(sqrt(x)), the value onw_isqrt gives, for x < 2^58 (every sum of squares unit_length sees: below 2^43 << 16)
 * with the remainder in 32 bits: it stays at most 2 root, so before a step it is below 8 root + 4 < 2^32 while the
 * root is below 2^29. Each step is 32-bit arithmetic instead of onw_isqrt's 64-bit compares and shifts, and leading
 * zero pairs are skipped (CLZ): about 60 % of its instructions. Larger x goes to onw_isqrt. */
static uint32_t isqrt_small(uint64_t x)
{
    uint32_t hi = (uint32_t)(x >> 32), lo = (uint32_t)x, rem = 0, root = 0, steps;
    if (hi >> 26) {
        return onw_isqrt(x);
    }
    if (hi != 0) {
        uint32_t skip = (uint32_t)__builtin_clz(hi) & ~1u;
        hi <<= skip;
        for (steps = (32u - skip) / 2u; steps > 0; steps--) {
            FF_SQRT_STEP(hi);
        }
        for (steps = 8; steps > 0; steps--) { /* the low word's 16 steps, two per iteration */
            FF_SQRT_STEP(lo);
            FF_SQRT_STEP(lo);
        }
    } else if (lo != 0) {
        uint32_t skip = (uint32_t)__builtin_clz(lo) & ~1u;
        lo <<= skip;
        for (steps = (32u - skip) / 2u; steps > 0; steps--) {
            FF_SQRT_STEP(lo);
        }
    }
    return root;
}

#define FF_RECIP_BITS (ONW_FF_NORM_FRAC + ONW_FF_NORM_GUARD + ONW_FF_RECIP_SHIFT) /* inv = 2^FF_RECIP_BITS / (|v| + 1) */

#if defined(__ARM_FEATURE_IDIV) && FF_RECIP_BITS >= 32 && FF_RECIP_BITS < 64
/* floor(2^FF_RECIP_BITS / d) for 1 <= d < 2^32 from 32-bit divisions (UDIV): the high word, then the low word's two
 * 16-bit digits as in Hacker's Delight's divlu (d normalised so that each digit's estimate is off by at most 2).
 * About 30 instructions instead of libgcc's 64-bit division (~85); the same quotient (compared with the 64-bit
 * division on 58 million divisors, every power of two +- 3 and the top 5 million included). */
/* One 16-bit quotient digit: un / v's top word estimate un / vn1, corrected (at most twice) against vn0, the low
 * half of the normalised divisor; the dividend's next digits are 0 here (the numerator is a power of two). */
static inline uint32_t quotient_digit(uint32_t un, uint32_t vn1, uint32_t vn0)
{
    uint32_t q = un / vn1, rhat = un - q * vn1;
    while (q >= 65536u || q * vn0 > (rhat << 16)) {
        q--;
        rhat += vn1;
        if (rhat >= 65536u) {
            break;
        }
    }
    return q;
}

static uint64_t reciprocal(uint32_t d)
{
    uint32_t q_hi = (1u << (FF_RECIP_BITS - 32)) / d, r = (1u << (FF_RECIP_BITS - 32)) - q_hi * d;
    uint32_t s = (uint32_t)__builtin_clz(d), v = d << s, vn1 = v >> 16, vn0 = v & 0xFFFFu;
    uint32_t un32 = r << s, q1, q0; /* r < d: r << s < 2^32 */
    q1 = quotient_digit(un32, vn1, vn0);
    q0 = quotient_digit((un32 << 16) - q1 * v, vn1, vn0);
    return (uint64_t)q_hi << 32 | (q1 << 16 | q0);
}
#else
static uint64_t reciprocal(uint32_t d)
{
    return ((uint64_t)1 << FF_RECIP_BITS) / d;
}
#endif

/* v <- v / |v| in Q14 (scale-free: any Q format of v), then the bias input 1.0 and the padding 0. sumsq is
 * sum v[i]^2 (the caller often has it already: a layer's goodness sums the squares of its output). */
static void unit_length(int16_t *v, uint32_t n, int64_t sumsq)
{
    /* norm < 2^30 (sumsq < 2^43), so norm + 1 fits 32 bits */
    uint32_t i, norm = isqrt_small((uint64_t)sumsq << (2 * ONW_FF_NORM_GUARD));
    int64_t inv = (int64_t)reciprocal(norm + 1u);
    /* round(v inv / 2^30) = (v inv4 + 2^31) >> 32 (arithmetic) with inv4 = 4 inv < 2^46. Split inv4 = hi 2^32 + lo with
     * lo a signed word (hi takes the borrow): the result is v hi + ((v lo + 2^31) >> 32), since (v hi) 2^32 is a
     * multiple of 2^32, and |v hi| < 2^30. One 32 x 32 -> 64 multiply and a MUL per entry instead of a 64 x 16
     * multiply and a 64-bit shift. */
    uint64_t inv4 = (uint64_t)inv << (32 - ONW_FF_RECIP_SHIFT);
    int32_t lo = (int32_t)(uint32_t)inv4, hi = (int32_t)(inv4 >> 32) + (lo < 0 ? 1 : 0);
#if ONW_DSP_KERNELS
    /* SMMLAR: ((v hi) 2^32 + v lo + 2^31) >> 32 in one instruction, two entries per word (v is word-aligned) */
    for (i = 0; i + 2u <= n; i += 2u) {
        uint32_t pair;
        int32_t a0, a1, r0, r1;
        __builtin_memcpy(&pair, v + i, sizeof pair);
        a0 = (int16_t)pair;
        a1 = (int32_t)pair >> 16;
        __asm__("smmlar %0, %1, %2, %3" : "=r"(r0) : "r"(a0), "r"(lo), "r"(a0 * hi));
        __asm__("smmlar %0, %1, %2, %3" : "=r"(r1) : "r"(a1), "r"(lo), "r"(a1 * hi));
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(pair) : "r"(r0), "r"(r1));
        __builtin_memcpy(v + i, &pair, sizeof pair);
    }
#else
    i = 0;
#endif
    for (; i < n; i++) {
        int32_t a = v[i];
        v[i] = (int16_t)((int32_t)(((int64_t)a * lo + ((int64_t)1 << 31)) >> 32) + a * hi);
    }
    v[n] = (int16_t)(1 << ONW_FF_NORM_FRAC);
    if (row_width(n) > n + 1u) {
        v[n + 1u] = 0;
    }
}

/* The positive or negative sample: x, then the one-hot label (value ONW_FF_LABEL_Q). */
static void embed(const int16_t *x, int32_t label, int16_t *v)
{
    uint32_t i;
    for (i = 0; i < ONW_INPUT_DIM; i++) {
        v[i] = x[i];
    }
    for (i = 0; i < ONW_NUM_CLASSES; i++) {
        v[ONW_INPUT_DIM + i] = (int32_t)i == label ? ONW_FF_LABEL_Q : 0;
    }
}

/* sum h^2 rounded to Q(ACT_FRAC): a layer's goodness, from the exact sum of squares. */
static int64_t goodness(int64_t sumsq)
{
    return onw_round_shift_inline(sumsq, ONW_ACT_FRAC);
}

/* Normalises `in` (whose sum of squares is in_sumsq) in place, h = ReLU(W in) into out; returns sum h^2, exact: the
 * layer's goodness before rounding and the next layer's in_sumsq. */
static int64_t forward(int layer, int16_t *in, int64_t in_sumsq, int16_t *out)
{
    uint32_t n = layer_inputs(layer);
    unit_length(in, n, in_sumsq);
    onw_dense(onw_layer_weights(layer), in, (uint16_t)row_width(n), onw_layers[layer].out_dim, ONW_FF_DENSE_SHIFT, 1,
              out, &onw_saturations);
    return sum_squares(out, onw_layers[layer].out_dim);
}

#define FF_HALF (ONW_FF_DENSE_SHIFT > 0 ? (int64_t)1 << (ONW_FF_DENSE_SHIFT - 1) : 0) /* requant's rounding */

/* Inference, layer 0 without its label. x is embedded with label 0 and normalised in `in`: every label's one-hot
 * has the one entry ONW_FF_LABEL_Q, so |v|, every feature's x^ and the label entry's x^ are the same for every
 * label. With the label entry then set to 0, sums = W in (onw_dense_acc: exact int64) is W x^ over the features and
 * the bias, the part every label shares; each sum also gets the requantisation's rounding half. Returns the label
 * entry's x^. *quiet: no label's column can take any sum out of the int16 range after the shift (|w| <= 2^15), so
 * first_layer_label may work in 32 bits and count nothing. */
static int16_t first_layer_sums(const int16_t *x, int16_t *in, int64_t *sums, int *quiet)
{
    const int16_t *w = onw_layer_weights(0);
    uint32_t n = layer_inputs(0), width = row_width(n), units = onw_layers[0].out_dim, r;
    int16_t label_value;
    int64_t bound;
    int fits = ONW_FF_DENSE_SHIFT < 16; /* and then every sum fits int32 with room for the column */
    embed(x, 0, in);
    unit_length(in, n, sum_squares(in, n));
    label_value = in[ONW_INPUT_DIM];
    in[ONW_INPUT_DIM] = 0;
    /* the features (an even count for the SMLALD path: an odd one takes label 0's column, whose input is now 0);
     * the bias below */
    onw_dense_acc(w, width, in, (uint16_t)((ONW_INPUT_DIM + 1u) & ~1u), (uint16_t)units, sums);
    /* t >> shift lies in the int16 range iff t is in [-2^(shift+15), 2^(shift+15)) */
    bound = ((int64_t)1 << (ONW_FF_DENSE_SHIFT + 15)) - ((int64_t)32768 * (label_value < 0 ? -label_value : label_value));
    for (r = 0; r < units; r++) {
        int64_t t = sums[r] + (int32_t)w[r * width + n] * in[n] + FF_HALF;
        sums[r] = t;
        if ((uint64_t)(t + bound) >= (uint64_t)(2 * bound)) { /* t < -bound or t >= bound, in one comparison */
            fits = 0;
        }
    }
    *quiet = fits;
    return label_value;
}

#if ONW_FF_DENSE_SHIFT < 16
/* min(max(t >> ONW_FF_DENSE_SHIFT, 0), 32767) for t in the int16 range after the shift: the ReLU. */
static inline int32_t relu_shift(int32_t t)
{
#if ONW_DSP_KERNELS && ONW_FF_DENSE_SHIFT > 0
    int32_t r;
    __asm__("usat %0, #15, %1, asr %2" : "=r"(r) : "r"(t), "i"(ONW_FF_DENSE_SHIFT)); /* GCC does not find it */
    return r;
#else
    int32_t v = t >> ONW_FF_DENSE_SHIFT;
    return v < 0 ? 0 : v;
#endif
}
#endif

/* sum + h^2 for h in [0, 2^15): the pair (h, 0) for SMLALD, one instruction (GCC's 64-bit add of h * h takes five). */
static inline int64_t add_square(int64_t sum, int32_t h)
{
#if ONW_DSP_KERNELS
    return __smlald(h, h, sum);
#else
    return sum + (int32_t)(h * h);
#endif
}

/* Inference, layer 0 for one label: h = ReLU(sat16((sums + W[:, label column] x^_label) >> shift)), what onw_dense
 * gives on the full input, saturations counted alike. Returns sum h^2 (exact), for the goodness and the next
 * layer's normalisation. */
static int64_t first_layer_label(const int64_t *sums, int quiet, int16_t label_value, int32_t label, int16_t *out)
{
    const int16_t *w = onw_layer_weights(0) + ONW_INPUT_DIM + label;
    uint32_t width = row_width(layer_inputs(0)), units = onw_layers[0].out_dim, r;
    int64_t sumsq = 0;
#if ONW_FF_DENSE_SHIFT < 16
    if (quiet) {
        /* nothing saturates and every sum is its low word: 32-bit arithmetic; two units per iteration */
        const int64_t *end = sums + (units & ~1u);
        for (; sums != end; sums += 2, w += 2u * width, out += 2) {
            int32_t h0 = relu_shift((int32_t)sums[0] + w[0] * label_value);
            int32_t h1 = relu_shift((int32_t)sums[1] + w[width] * label_value);
            uint32_t pair = (uint32_t)h0 | (uint32_t)h1 << 16; /* out is word-aligned: one store for both */
            __builtin_memcpy(out, &pair, sizeof pair);
            sumsq = add_square(sumsq, h0);
            sumsq = add_square(sumsq, h1);
        }
        if (units & 1u) {
            int32_t h = relu_shift((int32_t)sums[0] + w[0] * label_value);
            out[0] = (int16_t)h;
            sumsq = add_square(sumsq, h);
        }
        return sumsq;
    }
#endif
    (void)quiet;
    for (r = 0; r < units; r++, w += width) {
        int16_t v = onw_sat16_inline((sums[r] + (int32_t)*w * label_value) >> ONW_FF_DENSE_SHIFT, &onw_saturations);
        v = v < 0 ? 0 : v;
        out[r] = v;
        sumsq += (int32_t)v * v;
    }
    return sumsq;
}

/* W -= round(lr s / 2^15) h in^T: the sigmoid s (Q15) scales the learning rate and delta is h itself. The positive
 * pass negates its input first (in place: it is not needed again) so that its update raises G+. */
static void update(int layer, int16_t *in, const int16_t *h, int32_t s, int negate, uint32_t key)
{
    uint32_t n = row_width(layer_inputs(layer)), i;
    uint32_t lr_s = (uint32_t)onw_round_shift((int64_t)onw_state.lr_q * s, 15);
    if (negate) {
        for (i = 0; i < n; i++) {
            in[i] = (int16_t)-in[i]; /* |in| <= 2^14 + 1; the padding stays 0 */
        }
    }
    onw_dense_update(onw_layer_weights(layer), h, NULL, in, (uint16_t)n, onw_layers[layer].out_dim, lr_s,
                     ONW_FF_UPDATE_SHIFT, key, &onw_saturations);
}

static int16_t relative(int64_t score, int64_t best)
{
    int64_t d = score - best;
    return d < FF_FLOOR ? (int16_t)FF_FLOOR : (int16_t)d;
}

void onw_train_step(int16_t *x, int32_t target, int16_t *outputs)
{
    uint32_t nkey = onw_derive(onw_derive(onw_state.seed, ONW_STREAM_NEGATIVES), onw_state.steps);
    int32_t neg = (int32_t)(((uint32_t)target + 1u + onw_rand(nkey, 0) % (ONW_NUM_CLASSES - 1u)) % ONW_NUM_CLASSES);
    int16_t *in_pos = ff_buf.v[0][0], *in_neg = ff_buf.v[1][0];
    int64_t score_pos = 0, score_neg = 0, best, sumsq_pos, sumsq_neg;
    int layer, c;
    embed(x, target, in_pos);
    embed(x, neg, in_neg);
    sumsq_pos = sum_squares(in_pos, layer_inputs(0));
    sumsq_neg = sum_squares(in_neg, layer_inputs(0));
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        int16_t *out_pos = ff_buf.v[0][(layer + 1) & 1], *out_neg = ff_buf.v[1][(layer + 1) & 1];
        int64_t g_pos, g_neg;
        uint32_t key = onw_rounding_key((uint32_t)layer);
        sumsq_pos = forward(layer, in_pos, sumsq_pos, out_pos); /* now the output's: the next layer's input's */
        sumsq_neg = forward(layer, in_neg, sumsq_neg, out_neg);
        g_pos = goodness(sumsq_pos);
        g_neg = goodness(sumsq_neg);
        if (layer >= ONW_FF_FIRST_SCORED) {
            score_pos += g_pos;
            score_neg += g_neg;
        }
        /* both updates at the weights both passes saw: dL/dG+ = -sigmoid(theta - G+), dL/dG- = sigmoid(G- - theta) */
        update(layer, in_pos, out_pos, onw_sigmoid_q15(ONW_FF_THETA_Q - g_pos, ONW_ACT_FRAC), 1, key);
        update(layer, in_neg, out_neg, onw_sigmoid_q15(g_neg - ONW_FF_THETA_Q, ONW_ACT_FRAC), 0, onw_derive(key, 1));
        in_pos = out_pos;
        in_neg = out_neg;
    }
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = (int16_t)FF_FLOOR;
    }
    best = score_pos > score_neg ? score_pos : score_neg;
    outputs[target] = relative(score_pos, best);
    outputs[neg] = relative(score_neg, best);
}

/* Every label's goodness: layer 0's label-independent part once (first_layer_sums), then per label its column
 * and the deeper layers. */
void onw_infer(const int16_t *x, int16_t *outputs)
{
    int64_t scores[ONW_NUM_CLASSES], best = 0;
    int quiet;
    int16_t label_value = first_layer_sums(x, ff_buf.infer.v[0], ff_buf.infer.sums, &quiet);
    int c, layer;
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        int16_t *in = ff_buf.infer.v[1];
        int64_t sumsq = first_layer_label(ff_buf.infer.sums, quiet, label_value, c, in);
        scores[c] = ONW_FF_FIRST_SCORED == 0 ? goodness(sumsq) : 0;
        for (layer = 1; layer < ONW_NUM_LAYERS; layer++) {
            int16_t *out = ff_buf.infer.v[(layer + 1) & 1];
            sumsq = forward(layer, in, sumsq, out);
            if (layer >= ONW_FF_FIRST_SCORED) {
                scores[c] += goodness(sumsq);
            }
            in = out;
        }
        if (c == 0 || scores[c] > best) {
            best = scores[c];
        }
    }
    for (c = 0; c < ONW_NUM_CLASSES; c++) {
        outputs[c] = relative(scores[c], best);
    }
}
#endif
