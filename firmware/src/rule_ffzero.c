/* FFzero (arXiv 2603.24790): layer-local losses on fixed prototypes, learned from directional derivatives.
 * The twin of Fixed in host/rules/ffzero/fixed.py; docs/ffzero.md derives the formats.
 *
 * Only layer onw_state.stage learns; the frozen layers before it are rerun for every sample. A "block" is one
 * dense layer's parameters, out x stride int16 Q(ONW_WEIGHT_FRAC): the inputs' weights, the bias on the constant
 * input 2^ONW_ACT_FRAC, and a padding column (always 0) when in + 1 is odd, so that every row is word-aligned.
 * Per step: the clean accumulators A (one SMLALD pass, onw_dense_acc), and per direction k the additions-only
 * response P_k to Rademacher signs regenerated from the PRNG (stream ONW_STREAM_DIRECTIONS, keyed by step,
 * layer and k; a row's signs start at a word), z+- = A +- (P_k << p), the Q24 loss of each, and one update of
 * the block with sum_k dL_k r_k, rounded in two unbiased stages (the block's G_k, then an LCG dither per 8
 * weights). Nothing but the weights persists between steps. */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_FFZERO
#include "onward/fixed.h"
#include "onward/dense.h"

#include "onward/dsp.h"

/* With the DSP extension (ONW_DSP_KERNELS) the K = 1 update takes weight pairs with USUB16/SEL/SSUB16. */
#if ONW_DSP_KERNELS
#include <arm_acle.h>
#endif

#define LAST (ONW_NUM_LAYERS - 1)
#define ONE_INPUT ((int64_t)1 << ONW_ACT_FRAC) /* the bias's input, 1.0 in Q(ONW_ACT_FRAC) */
#define COSINE_SHIFT (ONW_FFZERO_LOSS_FRAC - ONW_FFZERO_PROTO_FRAC)

extern const int16_t onw_ffzero_protos[];

static int64_t acc[ONW_MAX_WIDTH];            /* A, Q(wf + af) */
static int32_t response[ONW_MAX_WIDTH];       /* P_k: |P| <= (in + 1) 2^15 */
static int32_t z_pair[2][ONW_MAX_WIDTH];      /* z+ and z- (or the clean z), normalised: |z| <= 2^24 */
static int64_t dloss[ONW_FFZERO_DIRECTIONS];  /* L(z+) - L(z-) per direction, Q24 */
/* a frozen layer's output, the next one's input; word-aligned (the union) and even-sized for onw_dense_acc */
static union {
    int16_t v[2][ONW_FFZERO_HIDDEN_WIDTH];
    uint32_t word;
} hidden;
/* The response's table: per group of 4 inputs, the 16 signed sums (block_respond) */
static int32_t subset_sums[16 * ((ONW_FFZERO_MAX_FAN_IN + 3) / 4)];

/* A dense layer's prototypes: the dense layers' come one after another, after the conv layers. */
static const int16_t *layer_protos(int layer)
{
    uint32_t offset = 0;
    int i;
    for (i = ONW_FFZERO_CONV_LAYERS; i < layer; i++) {
        offset += (uint32_t)ONW_FFZERO_PROTOTYPES * onw_layers[i].out_dim;
    }
    return onw_ffzero_protos + offset;
}

static uint32_t direction_key(int layer, int k)
{
    uint32_t key = onw_derive(onw_derive(onw_state.seed, ONW_STREAM_DIRECTIONS), onw_state.steps);
    return onw_derive(onw_derive(key, (uint32_t)layer), (uint32_t)k);
}

/* --- the block (DenseBlock) --- */

/* int16 per row: the inputs, the bias and, if that makes it even, a padding column (row_stride in Python). */
static uint32_t row_stride(uint32_t in)
{
    return in + 1u + ((in + 1u) & 1u);
}

/* PRNG words per row of a direction: row o's input signs are bits of rand(key, o * row_words + i / 32). */
static uint32_t row_words(uint32_t in)
{
    return (in + 31u) >> 5;
}

/* The sign bit (1: +1) of row o's bias: bit o % 32 of rand(key, out * row_words + o / 32). */
static uint32_t bias_bit(uint32_t key, uint32_t in, uint32_t out, uint32_t o)
{
    return (onw_rand(key, out * row_words(in) + (o >> 5)) >> (o & 31u)) & 1u;
}

/* A = W [h, 1, 0]: exact int64 sums (the SMLALD kernel on the inputs, then the bias on 2^af). */
static void block_accumulate(int layer, const int16_t *h)
{
    const int16_t *w = onw_layer_weights(layer);
    uint32_t in = onw_layers[layer].in_dim, out = onw_layers[layer].out_dim, stride = row_stride(in), o;
    onw_dense_acc(w, stride, h, (uint16_t)in, (uint16_t)out, acc);
    for (o = 0, w += in; o < out; o++, w += stride) {
        acc[o] += (int32_t)*w * (int32_t)ONE_INPUT; /* |w 2^af| <= 2^30 */
    }
}

/* subset_sums[16 g + n] = sum_i (bit i of n ? +h : -h)[4 g + i] (inputs past `in` are 0): every signed sum of a
 * group of 4 inputs, so that a row's response costs one lookup per 4 signs. Built once per step (h is fixed). */
static void build_subset_sums(const int16_t *h, uint32_t in)
{
    uint32_t g, i, n;
    for (g = 0; g < (in + 3u) / 4u; g++) {
        int32_t *t = subset_sums + 16u * g, v[4];
        for (i = 0; i < 4u; i++) {
            v[i] = 4u * g + i < in ? h[4u * g + i] : 0;
        }
        t[0] = -(v[0] + v[1] + v[2] + v[3]);
        for (i = 0; i < 4u; i++) { /* patterns with bit i set: flip input i from - to + */
            for (n = 0; n < (1u << i); n++) {
                t[n + (1u << i)] = t[n] + 2 * v[i];
            }
        }
    }
}

/* Eight groups (32 inputs) of one row: a lookup per 4 sign bits of `word`. */
static inline int32_t respond_word(const int32_t *t, uint32_t word)
{
    return t[word & 15u] + t[16 + ((word >> 4) & 15u)] + t[32 + ((word >> 8) & 15u)] + t[48 + ((word >> 12) & 15u)] +
           t[64 + ((word >> 16) & 15u)] + t[80 + ((word >> 20) & 15u)] + t[96 + ((word >> 24) & 15u)] + t[112 + (word >> 28)];
}

/* P = R [h, 1, 0] for the direction `key` (dense_directions): per row, a table lookup per 4 inputs
 * (build_subset_sums first), and the bias's sign applied to 2^af ((v ^ m) - m with m = 0 or -1). */
static void block_respond(int layer, uint32_t key)
{
    uint32_t in = onw_layers[layer].in_dim, out = onw_layers[layer].out_dim, wpr = row_words(in);
    uint32_t groups = (in + 3u) / 4u, full = groups / 8u, o, t, g, bias = 0;
    for (o = 0; o < out; o++) {
        const int32_t *tab = subset_sums;
        int32_t p = 0, m;
        uint32_t word;
        for (t = 0; t < full; t++, tab += 128) {
            p += respond_word(tab, onw_rand_inline(key, o * wpr + t));
        }
        if (full < wpr) { /* the last word's groups */
            word = onw_rand_inline(key, o * wpr + full);
            for (g = full * 8u; g < groups; g++, tab += 16, word >>= 4) {
                p += tab[word & 15u];
            }
        }
        if ((o & 31u) == 0) {
            bias = onw_rand(key, out * wpr + (o >> 5));
        }
        m = (int32_t)(bias & 1u) - 1;
        bias >>= 1;
        response[o] = p + (((int32_t)ONE_INPUT ^ m) - m);
    }
}

/* What the next block receives: z in Q(af) (saturations counted), or its ReLU. */
static void block_output(int layer, int16_t *y)
{
    uint32_t o;
    for (o = 0; o < onw_layers[layer].out_dim; o++) {
        int16_t v = onw_requant(acc[o], ONW_WEIGHT_FRAC, 0, &onw_saturations);
        y[o] = (ONW_FFZERO_RELU && v < 0) ? 0 : v;
    }
}

/* --- the loss --- */

/* The bit length of x (0 for 0): the top set bit of the OR of magnitudes is that of the largest. */
static int bit_length(uint64_t x)
{
    uint32_t v = (uint32_t)(x >> 32);
    int bits = 32;
    if (v == 0) {
        v = (uint32_t)x;
        bits = 0;
    }
    while (v) {
        v >>= 1;
        bits++;
    }
    return bits;
}

/* |z| for the normalisation (z is far from INT64_MIN: |A| <= (in + 1) 2^30 and the same for conv z). */
static inline uint64_t magnitude(int64_t z)
{
    return z < 0 ? (uint64_t)0 - (uint64_t)z : (uint64_t)z;
}

/* out[o] = z[o] shifted as rescale shifts it; the result has at most Z_BITS + 1 bits, so only its low word is
 * formed: for 0 < shift < 32 from both words of z + 2^(shift - 1), in 32-bit operations. */
static void shift_into(const int64_t *z, uint32_t width, int shift, int32_t *out)
{
    uint32_t o;
    if (shift <= 0) { /* |z| < 2^(Z_BITS + shift): z fits 32 bits and the left shift is exact */
        for (o = 0; o < width; o++) {
            out[o] = (int32_t)((uint32_t)(int32_t)z[o] << -shift);
        }
    } else if (shift < 32) {
        uint64_t half = (uint64_t)1 << (shift - 1);
        for (o = 0; o < width; o++) {
            uint64_t v = (uint64_t)z[o] + half;
            out[o] = (int32_t)(((uint32_t)v >> shift) | ((uint32_t)(v >> 32) << (32 - shift)));
        }
    } else {
        for (o = 0; o < width; o++) {
            out[o] = (int32_t)onw_round_shift_inline(z[o], shift);
        }
    }
}

/* The shift that gives the largest magnitude (their OR: the same top bit) ONW_FFZERO_Z_BITS bits. */
static int z_shift(uint64_t ored)
{
    return bit_length(ored) - ONW_FFZERO_Z_BITS;
}

/* rescale: z0 (and z1, unless NULL) shifted by one power of two common to both so that the largest |z| has
 * ONW_FFZERO_Z_BITS bits (left shifts exact, right shifts round half up), into z_pair[0] (and z_pair[1]):
 * |z| <= 2^Z_BITS, so int32 holds them and the loss multiplies in 32 x 16 / 32 x 32 -> 64-bit steps. */
static void rescale(const int64_t *z0, const int64_t *z1, uint32_t width)
{
    uint64_t ored = 0;
    uint32_t o;
    int shift;
    for (o = 0; o < width; o++) {
        ored |= magnitude(z0[o]) | (z1 ? magnitude(z1[o]) : 0u);
    }
    shift = z_shift(ored);
    shift_into(z0, width, shift, z_pair[0]);
    if (z1) {
        shift_into(z1, width, shift, z_pair[1]);
    }
}

/* rescale(A + D, A - D), D = P << p, without forming them: max(|A + D|, |A - D|) = |A| + |D| per output, and
 * the pair's values are shifted as they are formed. */
static void rescale_pair(const int64_t *a, const int32_t *p, uint32_t width, int perturbation)
{
    uint64_t ored = 0;
    uint32_t o;
    int shift;
    for (o = 0; o < width; o++) {
        ored |= magnitude(a[o]) + ((uint64_t)(p[o] < 0 ? (uint32_t)0 - (uint32_t)p[o] : (uint32_t)p[o]) << perturbation);
    }
    shift = z_shift(ored);
    if (shift <= 0) { /* |A +- D| < 2^Z_BITS: their low words, added mod 2^32, are the values */
        for (o = 0; o < width; o++) {
            uint32_t a32 = (uint32_t)a[o], d32 = (uint32_t)p[o] << perturbation;
            z_pair[0][o] = (int32_t)((a32 + d32) << -shift);
            z_pair[1][o] = (int32_t)((a32 - d32) << -shift);
        }
    } else if (shift < 32) {
        uint64_t half = (uint64_t)1 << (shift - 1);
        for (o = 0; o < width; o++) {
            int64_t d = (int64_t)p[o] * ((int64_t)1 << perturbation);
            uint64_t vp = (uint64_t)(a[o] + d) + half, vm = (uint64_t)(a[o] - d) + half;
            z_pair[0][o] = (int32_t)(((uint32_t)vp >> shift) | ((uint32_t)(vp >> 32) << (32 - shift)));
            z_pair[1][o] = (int32_t)(((uint32_t)vm >> shift) | ((uint32_t)(vm >> 32) << (32 - shift)));
        }
    } else {
        for (o = 0; o < width; o++) {
            int64_t d = (int64_t)p[o] * ((int64_t)1 << perturbation);
            z_pair[0][o] = (int32_t)onw_round_shift_inline(a[o] + d, shift);
            z_pair[1][o] = (int32_t)onw_round_shift_inline(a[o] - d, shift);
        }
    }
}

/* t_c = z . p_c for the `count` prototypes (rows of `width`) and a normalised z (|z| <= 2^24): 32 x 16 -> 64-bit
 * products (SMLAL on v7-M), two prototypes per pass so that each z is loaded once for both. */
static void proto_dots(const int32_t *z, uint32_t width, const int16_t *protos, int count, int64_t *t)
{
    uint32_t o;
    int c;
    for (c = 0; c + 2 <= count; c += 2, protos += 2u * width) {
        const int16_t *p1 = protos + width;
        int64_t a0 = 0, a1 = 0;
        for (o = 0; o < width; o++) {
            a0 += (int64_t)z[o] * protos[o];
            a1 += (int64_t)z[o] * p1[o];
        }
        t[c] = a0;
        t[c + 1] = a1;
    }
    if (c < count) {
        int64_t a0 = 0;
        for (o = 0; o < width; o++) {
            a0 += (int64_t)z[o] * protos[o];
        }
        t[c] = a0;
    }
}

/* s_c = (z . p_c << 9) / isqrt(z . z), Q24; all 0 when z = 0. */
static void cosines(const int32_t *z, uint32_t width, const int16_t *protos, int count, int64_t *s)
{
    int64_t sq = 0, n;
    uint32_t o;
    int c;
    for (o = 0; o < width; o++) {
        sq += (int64_t)z[o] * z[o];
    }
    n = (int64_t)onw_isqrt((uint64_t)sq);
    proto_dots(z, width, protos, count, s);
    for (c = 0; c < count; c++) {
        s[c] = n == 0 ? 0 : s[c] * ((int64_t)1 << COSINE_SHIFT) / n;
    }
}

/* Classification: sum_c max(0, m + s_c - s_y); regression: (y - s_0)^2, Q24. z has `width` values and the
 * prototypes are ONW_FFZERO_PROTOTYPES x width. */
static int64_t loss_of(const int32_t *z, uint32_t width, const int16_t *protos, int32_t target)
{
    int64_t s[ONW_FFZERO_PROTOTYPES];
    cosines(z, width, protos, ONW_FFZERO_PROTOTYPES, s);
#if ONW_REGRESSION
    {
        int64_t e = (int64_t)target * ((int64_t)1 << (ONW_FFZERO_LOSS_FRAC - ONW_ACT_FRAC)) - s[0];
        return onw_round_shift(e * e, ONW_FFZERO_LOSS_FRAC);
    }
#else
    {
        int64_t loss = 0;
        int c;
        for (c = 0; c < ONW_FFZERO_PROTOTYPES; c++) {
            int64_t term = ONW_FFZERO_MARGIN_Q + s[c] - s[target];
            loss += term > 0 ? term : 0;
        }
        return loss;
    }
#endif
}

/* --- learning --- */

#define SHIFT ONW_FFZERO_UPDATE_SHIFT
#define FOLD ONW_FFZERO_FOLD_BITS
#define LIMIT ONW_FFZERO_RENORM_LIMIT
#define K ONW_FFZERO_DIRECTIONS

/* Halve the block (round half up) if a weight left [-LIMIT, LIMIT). */
static void renormalise(int16_t *w, uint32_t d, int over)
{
    uint32_t j;
    if (over) {
        for (j = 0; j < d; j++) {
            w[j] = (int16_t)onw_round_shift(w[j], 1);
        }
    }
}

/* One row of a dense block, exactly: w[j] -= floor((sum_k r_k[j] G_k + o_j) / 2^16) for columns from..in (the
 * bias is column in; the padding never moves), saturated and counted. o_j: the top 16 bits of LCG word 1 + j / 8
 * from u0 = rand(rounding key, row). Columns below `undo` hold the pair path's wrapped results: each original is
 * (w + step) mod 2^16. Returns whether a weight left [-LIMIT, LIMIT). Every K; the K = 1 pair path's fallback. */
static int update_row(int16_t *w, uint32_t in, uint32_t out, uint32_t o, const uint32_t *keys, const int64_t *g,
                      uint32_t u0, uint32_t from, uint32_t undo)
{
    uint32_t words[K], wpr = row_words(in), j, i, u = u0;
    int over = 0, k;
    for (k = 0; k < K; k++) {
        words[k] = 0; /* loaded at column `from` */
    }
    for (i = 0; i <= from / ONW_DITHER_GROUP; i++) {
        u = onw_dither_next(u); /* the group of column `from` */
    }
    for (j = from; j <= in; j++) {
        int64_t step = 0;
        int32_t nw, old = w[j];
        if (j > from && (j % ONW_DITHER_GROUP) == 0) {
            u = onw_dither_next(u);
        }
        for (k = 0; k < K; k++) {
            uint32_t bit;
            if (j == in) {
                bit = bias_bit(keys[k], in, out, o);
            } else {
                if (j == from || (j & 31u) == 0) {
                    words[k] = onw_rand(keys[k], o * wpr + (j >> 5));
                }
                bit = (words[k] >> (j & 31u)) & 1u;
            }
            step += bit ? g[k] : -g[k];
        }
        step = (step + (int64_t)(u >> (32 - FOLD))) >> FOLD;
        if (j < undo) {
            old = (int16_t)(uint16_t)(uint32_t)((int64_t)old + step); /* mod 2^16 */
        }
        nw = onw_sat16_inline((int64_t)old - step, &onw_saturations);
        w[j] = (int16_t)nw;
        over |= nw >= LIMIT || nw < -LIMIT;
    }
    return over;
}

#if K == 1 && ONW_DSP_KERNELS
/* K = 1, two weights at a time. A weight's step is floor((+-G + o) / 2^16) = q_b + [o >= t_b] for its sign b,
 * with q_b = floor(+-G / 2^16) and t_b = 2^16 - (+-G mod 2^16) (t = 2^16 is written as q - 1, t = 0). A pair's two
 * signs index a 4-entry table of (t, q, q + 1) packed in halfwords: USUB16 of the pair's offsets against t sets
 * the GE flags where o >= t, SEL picks q + 1 or q, SSUB16 subtracts. The subtraction wraps; with |step| <= 2^14 a
 * result outside int16 wraps into [-2^15, -2^14) or [2^14, 2^15), so it shows, as a legitimate weight outside
 * [-LIMIT, LIMIT) does, in bits 15 and 14 differing (SSAT16 to 15 bits in the group loop, EOR/ORR pair by pair
 * in C): that flags the row, and a flagged row is redone by update_row from the wrapped values (exact, saturating,
 * counting). */
struct pair_step {
    uint32_t thr, q, q1, unused; /* 16 bytes: entry (b1 b0) is at index << 4 */
};

/* The table for G; 0 when a step may exceed 2^14 in magnitude (update_row then does the block). */
static int pair_table(int64_t g, struct pair_step *tab)
{
    int32_t q[2];
    uint32_t thr[2], e;
    int b;
    for (b = 0; b < 2; b++) {
        int64_t v = b ? g : -g, qb = v >> FOLD; /* floor */
        uint32_t t = (1u << FOLD) - (uint32_t)(v - qb * ((int64_t)1 << FOLD));
        if (t == 1u << FOLD) {
            qb--;
            t = 0;
        }
        if (qb < -(1 << 14) || qb > (1 << 14) - 2) {
            return 0;
        }
        q[b] = (int32_t)qb;
        thr[b] = t;
    }
    for (e = 0; e < 4u; e++) {
        uint32_t b0 = e & 1u, b1 = e >> 1;
        tab[e].thr = thr[b0] | thr[b1] << 16;
        tab[e].q = ((uint32_t)q[b0] & 0xFFFFu) | (uint32_t)q[b1] << 16;
        tab[e].q1 = ((uint32_t)(q[b0] + 1) & 0xFFFFu) | (uint32_t)(q[b1] + 1) << 16;
        tab[e].unused = 0;
    }
    return 1;
}

/* One weight pair: signs = its 2 bits, off = its offset in both halves; returns the flag bits (see above). */
static inline __attribute__((always_inline)) uint32_t step_pair(int16_t *w, uint32_t signs, uint32_t off,
                                                                const struct pair_step *tab)
{
    const struct pair_step *e = tab + (signs & 3u);
    int16x2_t v;
    uint32_t r;
    (void)__usub16(off, e->thr); /* the GE flags: o >= t per half */
    __builtin_memcpy(&v, w, sizeof v);
    v = __ssub16(v, (int16x2_t)__sel(e->q1, e->q));
    __builtin_memcpy(w, &v, sizeof v);
    r = (uint32_t)v;
    return r ^ (r << 1);
}

/* update_groups(w, word, groups, st), in assembly (rule_ffzero_groups.S: what it does, and its registers): `groups`
 * (1-4) dither groups of 8 weights from w, their sign bits from `word`; st->u is left at the last group's word and
 * st->flag gets bit 15 if a result left [-2^14, 2^14). */
struct group_state {
    uint32_t u, flag;
    const struct pair_step *tab;
};
void onw_ffzero_update_groups(int16_t *w, uint32_t word, uint32_t groups, struct group_state *st);

/* rule_ffzero_groups.S spells the LCG's constants out: they must be fixed.h's */
typedef char onw_check_dither_constants[ONW_DITHER_A == 1664525u && ONW_DITHER_C == 1013904223u ? 1 : -1];

/* Columns [0, 2 pairs) of row o, *u its dither word (left at the last group used): returns the OR of the pairs'
 * flag bits (bits 31 and 15 matter). A sign word covers 4 groups; a last partial group goes pair by pair. */
static uint32_t update_pairs(int16_t *w, uint32_t pairs, uint32_t key, uint32_t first_word, uint32_t *u_io,
                             const struct pair_step *tab)
{
    struct group_state st;
    uint32_t groups = pairs / 4u, m, p, word = 0, off;
    st.u = *u_io;
    st.flag = 0;
    st.tab = tab;
    for (m = 0; 4u * m < groups; m++) {
        word = onw_rand_inline(key, first_word + m);
        onw_ffzero_update_groups(w + 32u * m, word, groups - 4u * m < 4u ? groups - 4u * m : 4u, &st);
    }
    p = 4u * groups;
    if (p < pairs) {
        word = (p & 15u) == 0 ? onw_rand(key, first_word + (p >> 4)) : word >> (2u * (p & 15u));
        st.u = onw_dither_next(st.u);
        off = (st.u & 0xFFFF0000u) | (st.u >> 16);
        for (w += 2u * p; p < pairs; p++, w += 2, word >>= 2) {
            st.flag |= step_pair(w, word, off, tab);
        }
    }
    *u_io = st.u;
    return st.flag;
}

/* One weight, K = 1: w -= floor((+-G + o) / 2^16) = q_b + [o >= t_b] for its sign bit b, o the top 16 bits of u,
 * in 32-bit arithmetic from the low halves of table entry b; saturated and counted as update_row. */
static int weight_step(int16_t *w, uint32_t bit, const struct pair_step *tab, uint32_t u)
{
    const struct pair_step *e = tab + bit;
    int32_t nw = *w - (int16_t)(uint16_t)e->q - (int32_t)((u >> 16) >= (e->thr & 0xFFFFu));
    if (nw > INT16_MAX || nw < INT16_MIN) {
        onw_saturations++;
        nw = nw > INT16_MAX ? INT16_MAX : INT16_MIN;
    }
    *w = (int16_t)nw;
    return nw >= LIMIT || nw < -LIMIT;
}
#endif

/* W -= floor((sum_k r_k G_k + o) / 2^16), G_k = stochastic_shift(lr_q dL_k, S - 16, rand(rounding key, out + k));
 * then halve the block if needed. */
static void update_block(int layer)
{
    int16_t *w = onw_layer_weights(layer);
    uint32_t in = onw_layers[layer].in_dim, out = onw_layers[layer].out_dim, stride = row_stride(in), o;
    uint32_t rkey = onw_rounding_key((uint32_t)layer), keys[K];
    int64_t g[K];
    int over = 0, k;
    for (k = 0; k < K; k++) {
        keys[k] = direction_key(layer, k);
        g[k] = onw_stochastic_shift((int64_t)onw_state.lr_q * dloss[k], SHIFT - FOLD,
                                    onw_rand(rkey, out + (uint32_t)k));
    }
#if K == 1 && ONW_DSP_KERNELS
    {
        struct pair_step tab[4];
        if (pair_table(g[0], tab)) {
            uint32_t pairs = in / 2u, wpr = row_words(in), bias = 0;
            for (o = 0; o < out; o++, bias >>= 1) {
                int16_t *row = w + o * stride;
                uint32_t u0 = onw_rand_inline(rkey, o), u = u0;
                if ((o & 31u) == 0) {
                    bias = onw_rand(keys[0], out * wpr + (o >> 5)); /* the rows' bias signs, as bias_bit */
                }
                if (update_pairs(row, pairs, keys[0], o * wpr, &u, tab) & 0x80008000u) {
                    over |= update_row(row, in, out, o, keys, g, u0, 0, 2u * pairs);
                } else if (in & 1u) {
                    over |= update_row(row, in, out, o, keys, g, u0, 2u * pairs, 0); /* the odd input, the bias */
                } else { /* the bias (column in) alone: its group is in / 8, the pairs used ceil(in / 8) */
                    if ((in % ONW_DITHER_GROUP) == 0) {
                        u = onw_dither_next(u);
                    }
                    over |= weight_step(row + in, bias & 1u, tab, u);
                }
            }
            renormalise(w, out * stride, over);
            return;
        }
    }
#endif
    for (o = 0; o < out; o++) {
        over |= update_row(w + o * stride, in, out, o, keys, g, onw_rand(rkey, o), 0, 0);
    }
    renormalise(w, out * stride, over);
}

/* dL_k for every direction from the clean accumulators (acc) and the layer's input h; update if any != 0. */
static void learn(int layer, const int16_t *h, int32_t target)
{
    uint32_t width = onw_layers[layer].out_dim;
    int k, any = 0;
    build_subset_sums(h, onw_layers[layer].in_dim);
    for (k = 0; k < ONW_FFZERO_DIRECTIONS; k++) {
        block_respond(layer, direction_key(layer, k));
        rescale_pair(acc, response, width, ONW_FFZERO_PERTURBATION);
        dloss[k] = loss_of(z_pair[0], width, layer_protos(layer), target)
                   - loss_of(z_pair[1], width, layer_protos(layer), target);
        any |= dloss[k] != 0;
    }
    if (any) {
        update_block(layer);
    }
}

/* --- conv blocks (layers 0 .. ONW_FFZERO_CONV_LAYERS - 1; host/nn/conv.py ConvLayerQ) ---
 * A conv layer's block is its filters (out x in*kh*kw, no bias). The estimator is block-diagonal: per filter c
 * and direction k, the pair of losses of channel c alone (its standardised map through its fixed projection M_c,
 * cosines with its own prototypes); every filter's dL comes from the same clean accumulators, then one pass
 * updates the whole layer. The layer votes argmax_k sum_c s_{c,k}; it passes pool(ReLU(standardise + beta)). */
#if ONW_FFZERO_CONV_LAYERS > 0
#include "onward/conv.h"

extern const int16_t onw_ffzero_conv_shapes[]; /* per conv layer: the fields below */
extern const int16_t onw_ffzero_conv_maps[];   /* M_c (out x dim x positions), Q15, layer after layer */
extern const int16_t onw_ffzero_conv_protos[]; /* (out x classes x dim), Q15, layer after layer */

enum { IN_CH, IN_H, IN_W, OUT_CH, KH, KW, PH, PW, BETA_Q };
#define DIM ONW_FFZERO_CONV_DIM
#define BETA_WIDE_SHIFT (ONW_FFZERO_Z_MAP_FRAC - ONW_ACT_FRAC)

static int64_t conv_acc[ONW_FFZERO_MAX_CONV_ACC];                        /* A, out x positions, Q(wf + af) */
static int64_t conv_pair[2][ONW_FFZERO_MAX_POSITIONS];                   /* one filter's A +- (P << p) */
static int32_t conv_response[ONW_FFZERO_MAX_POSITIONS];                  /* P for one filter */
static int32_t conv_wide[ONW_FFZERO_MAX_POSITIONS];                      /* a standardised map, Q20 */
static int16_t conv_map[ONW_FFZERO_MAX_POSITIONS];                       /* the same, Q(af), to pool */
static int64_t conv_dloss[ONW_FFZERO_MAX_CHANNELS][ONW_FFZERO_DIRECTIONS]; /* per filter and direction */
static int64_t conv_z_wide[2][DIM];                                      /* z of A+ and A- before rescale */

static const int16_t *conv_shape(int layer)
{
    return onw_ffzero_conv_shapes + layer * ONW_FFZERO_CONV_FIELDS;
}

static uint32_t conv_positions(const int16_t *sh)
{
    return (uint32_t)(sh[IN_H] - sh[KH] + 1) * (uint32_t)(sh[IN_W] - sh[KW] + 1);
}

static uint32_t conv_fan(const int16_t *sh)
{
    return (uint32_t)sh[IN_CH] * (uint32_t)sh[KH] * (uint32_t)sh[KW];
}

/* Channel c's projection (dim x positions) or prototypes (classes x dim) in the constants. */
static const int16_t *conv_matrix(int layer, int c, int protos)
{
    uint32_t offset = 0, per;
    int i;
    for (i = 0; i <= layer; i++) {
        const int16_t *sh = conv_shape(i);
        per = protos ? (uint32_t)ONW_FFZERO_PROTOTYPES * DIM : (uint32_t)DIM * conv_positions(sh);
        offset += i < layer ? (uint32_t)sh[OUT_CH] * per : (uint32_t)c * per;
    }
    return (protos ? onw_ffzero_conv_protos : onw_ffzero_conv_maps) + offset;
}

/* z = M_c (standardise(a) + beta), int64 Q(15 + 20): what channel c's cosines are taken of. */
static void conv_z(int layer, int c, const int64_t *a, int64_t *z)
{
    const int16_t *sh = conv_shape(layer);
    uint32_t n = conv_positions(sh);
    onw_conv_normalise_wide(a, n, ONW_FFZERO_Z_MAP_FRAC, (int32_t)sh[BETA_Q] * (1 << BETA_WIDE_SHIFT), conv_wide);
    onw_conv_project(conv_matrix(layer, c, 0), conv_wide, n, DIM, z);
}

/* argmax_k sum_c s_{c,k} (first maximum), from conv_acc. */
static int conv_vote(int layer)
{
    const int16_t *sh = conv_shape(layer);
    uint32_t n = conv_positions(sh);
    int64_t total[ONW_FFZERO_PROTOTYPES], s[ONW_FFZERO_PROTOTYPES];
    int c, k, vote = 0;
    for (k = 0; k < ONW_FFZERO_PROTOTYPES; k++) {
        total[k] = 0;
    }
    for (c = 0; c < sh[OUT_CH]; c++) {
        conv_z(layer, c, conv_acc + (uint32_t)c * n, conv_z_wide[0]);
        rescale(conv_z_wide[0], 0, DIM);
        cosines(z_pair[0], DIM, conv_matrix(layer, c, 1), ONW_FFZERO_PROTOTYPES, s);
        for (k = 0; k < ONW_FFZERO_PROTOTYPES; k++) {
            total[k] += s[k];
        }
    }
    for (k = 1; k < ONW_FFZERO_PROTOTYPES; k++) {
        vote = total[k] > total[vote] ? k : vote;
    }
    return vote;
}

/* What the next block receives, channel after channel: pool(ReLU(sat16(standardise(A) + beta))), Q(af). */
static void conv_output(int layer, int16_t *y)
{
    const int16_t *sh = conv_shape(layer);
    uint32_t n = conv_positions(sh), oh = (uint32_t)(sh[IN_H] - sh[KH] + 1), ow = (uint32_t)(sh[IN_W] - sh[KW] + 1);
    uint32_t pooled = (oh / (uint32_t)sh[PH]) * (ow / (uint32_t)sh[PW]);
    int c;
    for (c = 0; c < sh[OUT_CH]; c++) {
        onw_conv_normalise(conv_acc + (uint32_t)c * n, n, ONW_ACT_FRAC, sh[BETA_Q], conv_map, &onw_saturations);
        onw_relu_maxpool(conv_map, 1, (uint16_t)oh, (uint16_t)ow, (uint8_t)sh[PH], (uint8_t)sh[PW], y + (uint32_t)c * pooled);
    }
}

/* W -= stochastic_shift(lr_q sum_k dL_{c(j),k} r_k[j], S), filter c(j) = j / fan; then halve if needed. */
static void update_conv(int layer, uint32_t fan, uint32_t d)
{
    int16_t *w = onw_layer_weights(layer);
    uint32_t keys[ONW_FFZERO_DIRECTIONS], words[ONW_FFZERO_DIRECTIONS], j, c = 0, in_filter = 0;
    uint32_t rkey = onw_rounding_key((uint32_t)layer);
    int32_t lo = 0, hi = 0;
    int k;
    for (k = 0; k < ONW_FFZERO_DIRECTIONS; k++) {
        keys[k] = direction_key(layer, k);
        words[k] = 0;
    }
    for (j = 0; j < d; j++, in_filter++) {
        int64_t g = 0;
        if (in_filter == fan) {
            c++;
            in_filter = 0;
        }
        for (k = 0; k < ONW_FFZERO_DIRECTIONS; k++) {
            int64_t v = (int64_t)onw_state.lr_q * conv_dloss[c][k];
            if ((j & 31u) == 0) {
                words[k] = onw_rand(keys[k], j >> 5);
            }
            g += (words[k] >> (j & 31u)) & 1u ? v : -v;
        }
        g = onw_stochastic_shift(g, ONW_FFZERO_CONV_UPDATE_SHIFT, onw_mix32_inline(rkey ^ (j * ONW_GOLDEN)));
        w[j] = onw_sat16_inline((int64_t)w[j] - g, &onw_saturations);
        hi = w[j] > hi ? w[j] : hi;
        lo = w[j] < lo ? w[j] : lo;
    }
    renormalise(w, d, hi >= LIMIT || lo < -LIMIT);
}

/* dL_{c,k} for every filter and direction from conv_acc and the layer's input h; update if any != 0. */
static void learn_conv(int layer, const int16_t *h, int32_t target)
{
    const int16_t *sh = conv_shape(layer);
    uint32_t n = conv_positions(sh), fan = conv_fan(sh), i;
    int c, k, any = 0;
    for (c = 0; c < sh[OUT_CH]; c++) {
        const int64_t *a = conv_acc + (uint32_t)c * n;
        const int16_t *protos = conv_matrix(layer, c, 1);
        for (k = 0; k < ONW_FFZERO_DIRECTIONS; k++) {
            onw_conv_response(h, (uint16_t)sh[IN_CH], (uint16_t)sh[IN_H], (uint16_t)sh[IN_W], (uint8_t)sh[KH],
                              (uint8_t)sh[KW], direction_key(layer, k), (uint32_t)c * fan, conv_response);
            for (i = 0; i < n; i++) {
                int64_t dz = (int64_t)conv_response[i] * ((int64_t)1 << ONW_FFZERO_CONV_PERTURBATION);
                conv_pair[0][i] = a[i] + dz;
                conv_pair[1][i] = a[i] - dz;
            }
            conv_z(layer, c, conv_pair[0], conv_z_wide[0]);
            conv_z(layer, c, conv_pair[1], conv_z_wide[1]);
            rescale(conv_z_wide[0], conv_z_wide[1], DIM);
            conv_dloss[c][k] = loss_of(z_pair[0], DIM, protos, target) - loss_of(z_pair[1], DIM, protos, target);
            any |= conv_dloss[c][k] != 0;
        }
    }
    if (any) {
        update_conv(layer, fan, (uint32_t)sh[OUT_CH] * fan);
    }
}

/* One conv layer of the forward pass: accumulate, vote, then pass on (frozen) or learn (the stage's layer). */
static int conv_layer(int layer, int last, const int16_t *h, int32_t target, int train, int16_t *y)
{
    const int16_t *sh = conv_shape(layer);
    int vote;
    onw_conv_acc(h, (uint16_t)sh[IN_CH], (uint16_t)sh[IN_H], (uint16_t)sh[IN_W], onw_layer_weights(layer),
                 (uint16_t)sh[OUT_CH], (uint8_t)sh[KH], (uint8_t)sh[KW], conv_acc);
    vote = conv_vote(layer);
    if (layer < last) {
        conv_output(layer, y);
    } else if (train && onw_state.stage < (uint32_t)ONW_NUM_LAYERS) {
        learn_conv(layer, h, target);
    }
    return vote;
}
#endif

/* --- the stage's forward pass: predictions of layers 0..min(stage, L-1), learning at the stage's layer --- */

static void run(const int16_t *x, int32_t target, int train, int16_t *outputs)
{
    int last = onw_state.stage < (uint32_t)ONW_NUM_LAYERS ? (int)onw_state.stage : LAST;
    const int16_t *h = x;
    int layer;
#if !ONW_REGRESSION
    int16_t deepest[ONW_NUM_OUTPUTS];
    int c;
    for (c = 0; c < ONW_NUM_OUTPUTS; c++) {
        outputs[c] = 0;
        deepest[c] = 0;
    }
#endif
    for (layer = 0; layer <= last; layer++) {
        uint32_t width = onw_layers[layer].out_dim;
#if ONW_FFZERO_CONV_LAYERS > 0
        if (layer < ONW_FFZERO_CONV_LAYERS) {
            int16_t *y = hidden.v[layer & 1];
            int vote = conv_layer(layer, last, h, target, train, y);
            outputs[vote]++;
            deepest[vote] = (int16_t)(layer + 1);
            h = y;
            continue;
        }
#endif
        block_accumulate(layer, h);
        rescale(acc, 0, width);
#if ONW_REGRESSION
        if (layer == last) {
            int64_t s[ONW_FFZERO_PROTOTYPES];
            cosines(z_pair[0], width, layer_protos(layer), 1, s);
            outputs[0] = onw_requant(s[0], ONW_FFZERO_LOSS_FRAC, ONW_ACT_FRAC, &onw_saturations);
        }
#else
        {
            /* argmax_c z . p_c (first maximum): the norm is not needed to vote */
            int64_t t[ONW_FFZERO_PROTOTYPES];
            int vote = 0;
            proto_dots(z_pair[0], width, layer_protos(layer), ONW_FFZERO_PROTOTYPES, t);
            for (c = 1; c < ONW_FFZERO_PROTOTYPES; c++) {
                vote = t[c] > t[vote] ? c : vote;
            }
            outputs[vote]++;
            deepest[vote] = (int16_t)(layer + 1);
        }
#endif
        if (layer < last) {
            int16_t *y = hidden.v[layer & 1];
            block_output(layer, y);
            h = y;
        } else if (train && onw_state.stage < (uint32_t)ONW_NUM_LAYERS) {
            learn(layer, h, target);
        }
    }
#if !ONW_REGRESSION
    for (c = 0; c < ONW_NUM_OUTPUTS; c++) {
        outputs[c] = (int16_t)(outputs[c] * (last + 2) + deepest[c]);
    }
#endif
}

void onw_train_step(int16_t *x, int32_t target, int16_t *outputs)
{
    run(x, target, 1, outputs);
}

void onw_infer(const int16_t *x, int16_t *outputs)
{
    run(x, 0, 0, outputs);
}

#endif
