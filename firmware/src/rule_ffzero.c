/* FFzero (arXiv 2603.24790): layer-local losses on fixed prototypes, learned from directional derivatives.
 * The twin of Fixed in host/learn/ffzero_fixed.py; docs/ffzero.md derives the formats.
 *
 * Only layer onw_state.stage learns; the frozen layers before it are rerun for every sample. A "block" is one
 * layer's parameters, out x (in + 1) int16 Q(ONW_WEIGHT_FRAC), the last column the bias on the constant input
 * 2^ONW_ACT_FRAC. Per step: the clean accumulators A (one MAC pass), and per direction k the additions-only
 * response P_k to Rademacher signs regenerated from the PRNG (stream ONW_STREAM_DIRECTIONS, keyed by step,
 * layer and k), z+- = A +- (P_k << p), the Q24 loss of each, and one update of the block with
 * sum_k dL_k r_k, stochastically rounded. Nothing but the weights persists between steps. */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_FFZERO
#include "onward/fixed.h"

#define LAST (ONW_NUM_LAYERS - 1)
#define ONE_INPUT ((int64_t)1 << ONW_ACT_FRAC) /* the bias's input, 1.0 in Q(ONW_ACT_FRAC) */
#define COSINE_SHIFT (ONW_FFZERO_LOSS_FRAC - ONW_FFZERO_PROTO_FRAC)

extern const int16_t onw_ffzero_protos[];

static int64_t acc[ONW_MAX_WIDTH];            /* A, Q(wf + af) */
static int32_t response[ONW_MAX_WIDTH];       /* P_k: |P| <= (in + 1) 2^15 */
static int64_t z_pair[2][ONW_MAX_WIDTH];      /* z+ and z- (or the clean z), normalised */
static int16_t hidden[2][ONW_MAX_HIDDEN];     /* a frozen layer's output, the next one's input */
static int64_t dloss[ONW_FFZERO_DIRECTIONS];  /* L(z+) - L(z-) per direction, Q24 */

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

/* A = W [h, 1]: exact int64 sums. */
static void block_accumulate(int layer, const int16_t *h)
{
    const int16_t *w = onw_layer_weights(layer);
    uint32_t in = onw_layers[layer].in_dim, out = onw_layers[layer].out_dim, o, j;
    for (o = 0; o < out; o++, w += in + 1) {
        int64_t a = 0;
        for (j = 0; j < in; j++) {
            a += (int32_t)w[j] * h[j];
        }
        acc[o] = a + w[in] * ONE_INPUT;
    }
}

/* P = R [h, 1] with R's signs bit j % 32 of rand(key, j / 32), j the flat block index: additions only
 * (a clear bit negates: (v ^ m) - m with m = 0 or -1, no branch). */
static void block_respond(int layer, const int16_t *h, uint32_t key)
{
    uint32_t in = onw_layers[layer].in_dim, out = onw_layers[layer].out_dim, o, i, j = 0, word = 0;
    for (o = 0; o < out; o++) {
        int32_t p = 0, m;
        for (i = 0; i < in; i++, j++) {
            if ((j & 31u) == 0) {
                word = onw_rand(key, j >> 5);
            }
            m = (int32_t)(word & 1u) - 1;
            word >>= 1;
            p += (h[i] ^ m) - m;
        }
        if ((j & 31u) == 0) {
            word = onw_rand(key, j >> 5);
        }
        m = (int32_t)(word & 1u) - 1;
        word >>= 1;
        response[o] = p + (((int32_t)ONE_INPUT ^ m) - m);
        j++;
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

/* Shift n vectors by one power of two so that the largest |z| has ONW_FFZERO_Z_BITS bits. */
static void normalise(int n, uint32_t width)
{
    uint64_t top = 0;
    int bits = 0, shift, v;
    uint32_t o;
    for (v = 0; v < n; v++) {
        for (o = 0; o < width; o++) {
            int64_t z = z_pair[v][o];
            uint64_t m = z < 0 ? (uint64_t)0 - (uint64_t)z : (uint64_t)z;
            top = m > top ? m : top;
        }
    }
    while (top >> bits) {
        bits++;
    }
    shift = bits - ONW_FFZERO_Z_BITS;
    for (v = 0; v < n; v++) {
        for (o = 0; o < width; o++) {
            z_pair[v][o] = shift > 0 ? onw_round_shift(z_pair[v][o], shift) : z_pair[v][o] * ((int64_t)1 << -shift);
        }
    }
}

/* z . p for a normalised z (|z| <= 2^24: 32 x 32 -> 64-bit products, one SMULL/SMLAL on v7-M). */
static int64_t dot(const int64_t *z, const int16_t *p, uint32_t width)
{
    int64_t t = 0;
    uint32_t o;
    for (o = 0; o < width; o++) {
        t += (int64_t)(int32_t)z[o] * p[o];
    }
    return t;
}

/* s_c = (z . p_c << 9) / isqrt(z . z), Q24; all 0 when z = 0. */
static void cosines(const int64_t *z, uint32_t width, const int16_t *protos, int count, int64_t *s)
{
    int64_t sq = 0, n;
    uint32_t o;
    int c;
    for (o = 0; o < width; o++) {
        sq += (int64_t)(int32_t)z[o] * (int32_t)z[o];
    }
    n = (int64_t)onw_isqrt((uint64_t)sq);
    for (c = 0; c < count; c++, protos += width) {
        int64_t t = dot(z, protos, width);
        s[c] = n == 0 ? 0 : t * ((int64_t)1 << COSINE_SHIFT) / n;
    }
}

/* Classification: sum_c max(0, m + s_c - s_y); regression: (y - s_0)^2, Q24. z has `width` values and the
 * prototypes are ONW_FFZERO_PROTOTYPES x width. */
static int64_t loss_of(const int64_t *z, uint32_t width, const int16_t *protos, int32_t target)
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
#define STEP_CLAMP ((int64_t)1 << 20) /* any |step| >= 2^17 saturates an int16 weight alike */

/* Halve the block (round half up) if one of its weights reached ONW_FFZERO_RENORM_LIMIT. */
static void renormalise(int16_t *w, uint32_t d, int over)
{
    uint32_t j;
    if (over) {
        for (j = 0; j < d; j++) {
            w[j] = (int16_t)onw_round_shift(w[j], 1);
        }
    }
}

#if ONW_FFZERO_DIRECTIONS == 1
/* One direction: every parameter's step is stochastic_shift(g, S, r) for g = +v or -v. With g = q 2^S + rem
 * (0 <= rem < 2^S) that is q + [offset(r) >= 2^S - rem] = q + [r >= thr]: 32-bit arithmetic per parameter
 * instead of 64-bit. q is clamped (a step beyond 2^17 saturates any int16 weight the same way). */
static void rounded_step(int64_t g, int32_t *q_out, uint32_t *thr_out)
{
    int64_t q = g >> SHIFT; /* floor */
    uint64_t t = ((uint64_t)1 << SHIFT) - (uint64_t)(g - q * ((int64_t)1 << SHIFT)), thr;
#if SHIFT <= 32
    thr = t << (32 - SHIFT); /* offset = r >> (32 - S) >= t */
#else
    thr = (t + ((uint64_t)1 << (SHIFT - 32)) - 1u) >> (SHIFT - 32); /* offset = r << (S - 32) >= t */
#endif
    q = q > STEP_CLAMP ? STEP_CLAMP : q < -STEP_CLAMP ? -STEP_CLAMP : q;
    if (thr > 0xFFFFFFFFu) { /* r >= 2^32 never holds: q + 0 = (q - 1) + [r >= 0] */
        q--;
        thr = 0;
    }
    *q_out = (int32_t)q;
    *thr_out = (uint32_t)thr;
}

/* W -= stochastic_shift(lr_q dL r[j], S), rand(rounding key, j); then halve the block if needed. */
static void update_block(int layer)
{
    int16_t *w = onw_layer_weights(layer);
    uint32_t d = onw_layers[layer].out_dim * (onw_layers[layer].in_dim + 1u), j, word = 0, sats = 0;
    uint32_t key = direction_key(layer, 0), rkey = onw_rounding_key((uint32_t)layer), thr[2];
    int64_t v = (int64_t)onw_state.lr_q * dloss[0];
    int32_t q[2], lo = 0, hi = 0;
    rounded_step(-v, &q[0], &thr[0]); /* r[j] = -1 */
    rounded_step(v, &q[1], &thr[1]);
    for (j = 0; j < d; j++) {
        uint32_t r = onw_mix32_inline(rkey ^ (j * ONW_GOLDEN)), b;
        int32_t nw;
        if ((j & 31u) == 0) {
            word = onw_rand(key, j >> 5);
        }
        b = word & 1u;
        word >>= 1;
        nw = (int32_t)w[j] - q[b] - (int32_t)(r >= thr[b]);
        if (nw > INT16_MAX) {
            nw = INT16_MAX;
            sats++;
        } else if (nw < INT16_MIN) {
            nw = INT16_MIN;
            sats++;
        }
        w[j] = (int16_t)nw;
        hi = nw > hi ? nw : hi;
        lo = nw < lo ? nw : lo;
    }
    onw_saturations += sats;
    renormalise(w, d, hi >= ONW_FFZERO_RENORM_LIMIT || lo <= -ONW_FFZERO_RENORM_LIMIT);
}
#else
/* W -= stochastic_shift(lr_q sum_k dL_k r_k[j], S), rand(rounding key, j); then halve the block if needed. */
static void update_block(int layer)
{
    int16_t *w = onw_layer_weights(layer);
    uint32_t d = onw_layers[layer].out_dim * (onw_layers[layer].in_dim + 1u), j;
    uint32_t keys[ONW_FFZERO_DIRECTIONS], words[ONW_FFZERO_DIRECTIONS];
    int32_t lo = 0, hi = 0;
    uint32_t rkey = onw_rounding_key((uint32_t)layer);
    int64_t scaled[ONW_FFZERO_DIRECTIONS];
    int k;
    for (k = 0; k < ONW_FFZERO_DIRECTIONS; k++) {
        keys[k] = direction_key(layer, k);
        words[k] = 0;
        scaled[k] = (int64_t)onw_state.lr_q * dloss[k];
    }
    for (j = 0; j < d; j++) {
        int64_t g = 0;
        for (k = 0; k < ONW_FFZERO_DIRECTIONS; k++) {
            if ((j & 31u) == 0) {
                words[k] = onw_rand(keys[k], j >> 5);
            }
            g += (words[k] >> (j & 31u)) & 1u ? scaled[k] : -scaled[k];
        }
        g = onw_stochastic_shift(g, SHIFT, onw_mix32_inline(rkey ^ (j * ONW_GOLDEN)));
        w[j] = onw_sat16_inline((int64_t)w[j] - g, &onw_saturations);
        hi = w[j] > hi ? w[j] : hi;
        lo = w[j] < lo ? w[j] : lo;
    }
    renormalise(w, d, hi >= ONW_FFZERO_RENORM_LIMIT || lo <= -ONW_FFZERO_RENORM_LIMIT);
}
#endif

/* dL_k for every direction from the clean accumulators (acc) and the layer's input h; update if any != 0. */
static void learn(int layer, const int16_t *h, int32_t target)
{
    uint32_t width = onw_layers[layer].out_dim, o;
    int k, any = 0;
    for (k = 0; k < ONW_FFZERO_DIRECTIONS; k++) {
        block_respond(layer, h, direction_key(layer, k));
        for (o = 0; o < width; o++) {
            int64_t dz = (int64_t)response[o] * ((int64_t)1 << ONW_FFZERO_PERTURBATION);
            z_pair[0][o] = acc[o] + dz;
            z_pair[1][o] = acc[o] - dz;
        }
        normalise(2, width);
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
        conv_z(layer, c, conv_acc + (uint32_t)c * n, z_pair[0]);
        normalise(1, DIM);
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
    renormalise(w, d, hi >= ONW_FFZERO_RENORM_LIMIT || lo <= -ONW_FFZERO_RENORM_LIMIT);
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
            conv_z(layer, c, conv_pair[0], z_pair[0]);
            conv_z(layer, c, conv_pair[1], z_pair[1]);
            normalise(2, DIM);
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
        uint32_t width = onw_layers[layer].out_dim, o;
#if ONW_FFZERO_CONV_LAYERS > 0
        if (layer < ONW_FFZERO_CONV_LAYERS) {
            int16_t *y = hidden[layer & 1];
            int vote = conv_layer(layer, last, h, target, train, y);
            outputs[vote]++;
            deepest[vote] = (int16_t)(layer + 1);
            h = y;
            continue;
        }
#endif
        block_accumulate(layer, h);
        for (o = 0; o < width; o++) {
            z_pair[0][o] = acc[o];
        }
        normalise(1, width);
#if ONW_REGRESSION
        if (layer == last) {
            int64_t s[ONW_FFZERO_PROTOTYPES];
            cosines(z_pair[0], width, layer_protos(layer), 1, s);
            outputs[0] = onw_requant(s[0], ONW_FFZERO_LOSS_FRAC, ONW_ACT_FRAC, &onw_saturations);
        }
#else
        {
            /* argmax_c z . p_c (first maximum): the norm is not needed to vote */
            const int16_t *p = layer_protos(layer);
            int64_t best = 0;
            int vote = 0;
            for (c = 0; c < ONW_FFZERO_PROTOTYPES; c++, p += width) {
                int64_t t = dot(z_pair[0], p, width);
                if (c == 0 || t > best) {
                    best = t;
                    vote = c;
                }
            }
            outputs[vote]++;
            deepest[vote] = (int16_t)(layer + 1);
        }
#endif
        if (layer < last) {
            int16_t *y = hidden[layer & 1];
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

void onw_train(int16_t *x, int32_t target, int16_t *outputs)
{
    run(x, target, 1, outputs);
    onw_state.steps++;
}

void onw_infer(const int16_t *x, int16_t *outputs)
{
    run(x, 0, 0, outputs);
}

#endif
