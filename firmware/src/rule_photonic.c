/* The photonic chip's controller; the twin of Fixed in host/rules/photonic.py (docs/photonic_controller.md).
 *
 * The learned state (onw_state.weights) is one 15-bit code word per trained phase shifter, every mesh's θ then φ,
 * mesh after mesh; the DAC code is word >> ONW_PHOTONIC_WORD_SHIFT. The chip is not here: every measurement is a
 * query to the host (onw_host_query: a QUERY frame with the DAC codes and the sample, an ANSWER frame with the
 * output detectors' ADC codes), which passes it to the chip, emulated or real.
 *
 * A step: one query at the current codes (its class detectors are the outputs), then per direction k a central
 * difference of the hinge on the class detectors, L = sum_{c != y} max(0, M + a_c - a_y) in ADC codes, from the
 * queries at w + delta d_k and w - delta d_k, d_k's signs regenerated from the PRNG; then
 * w_j -= round(s_j rate / 2^GAIN_FRAC), s_j = sum_k dL_k d_kj, clipped to [0, 2^15 - 1]. If a query fails (the host
 * answered something other than an ANSWER) the step is abandoned before the update: the state stays as it was. */
#include "onward/runtime.h"

#if ONW_RULE == ONW_RULE_PHOTONIC
#include "onward/fixed.h"
#include "onward/protocol.h"

#define CODES ONW_PHOTONIC_CODES
#define WORD_MAX 32767
#define CLASSES ONW_NUM_CLASSES

static uint8_t request[ONW_QUERY_HEADER + ONW_QUERY_BYTES + ONW_QUERY_TRAILER]; /* a QUERY frame, built in place */
static uint8_t answer[ONW_ANSWER_BYTES];                                        /* u16 LE per output detector */
static int32_t sums[CODES];                                                     /* s_j = sum_k dL_k d_kj */

static uint32_t direction_key(uint32_t k)
{
    uint32_t key = onw_derive(onw_derive(onw_state.seed, ONW_STREAM_DIRECTIONS), onw_state.steps);
    return onw_derive(onw_derive(key, 0u), k);
}

/* Bit j of direction `key`: 1 is +1, 0 is -1 (as every rule's Rademacher signs). */
static uint32_t direction_bit(uint32_t key, uint32_t j, uint32_t *word)
{
    if ((j & 31u) == 0u) {
        *word = onw_rand(key, j >> 5);
    }
    return (*word >> (j & 31u)) & 1u;
}

/* One query: the codes of the words moved by `offset` along direction `key` (offset 0: the words themselves), the
 * sample x; the output detectors' ADC codes land in answer. Nonzero: the query failed (the step is abandoned). */
static int measure(const int16_t *x, int32_t offset, uint32_t key)
{
    uint8_t *p = request + ONW_QUERY_HEADER;
    uint32_t j, word = 0;
    for (j = 0; j < CODES; j++) {
        int32_t w = onw_state.weights[j];
        uint32_t code;
        if (offset != 0) {
            w += direction_bit(key, j, &word) ? offset : -offset;
        }
        w = w < 0 ? 0 : w > WORD_MAX ? WORD_MAX : w; /* a word LOAD set outside the range still writes a valid code */
        code = (uint32_t)w >> ONW_PHOTONIC_WORD_SHIFT;
        *p++ = (uint8_t)code;
        *p++ = (uint8_t)(code >> 8);
    }
    for (j = 0; j < ONW_PHOTONIC_FEATURES; j++) {
        uint16_t v = (uint16_t)x[j];
        *p++ = (uint8_t)v;
        *p++ = (uint8_t)(v >> 8);
    }
    return onw_host_query(request, ONW_QUERY_BYTES, answer, ONW_ANSWER_BYTES);
}

static int32_t detector(int c)
{
    return (int32_t)answer[2 * c] | ((int32_t)answer[2 * c + 1] << 8);
}

static int32_t hinge(int32_t label)
{
    int32_t right = detector(label), loss = 0, term;
    int c;
    for (c = 0; c < CLASSES; c++) {
        term = ONW_PHOTONIC_MARGIN + detector(c) - right;
        if (c != label && term > 0) {
            loss += term;
        }
    }
    return loss;
}

static void copy_outputs(int16_t *outputs)
{
    int c;
    for (c = 0; c < CLASSES; c++) {
        outputs[c] = (int16_t)(uint16_t)detector(c);
    }
}

void onw_train_step(int16_t *x, int32_t label, int16_t *outputs)
{
    uint32_t j, k, word = 0;
    int64_t rate;
    if (measure(x, 0, 0) != 0) {
        return;
    }
    copy_outputs(outputs);
    for (j = 0; j < CODES; j++) {
        sums[j] = 0;
    }
    for (k = 0; k < ONW_PHOTONIC_DIRECTIONS; k++) {
        uint32_t key = direction_key(k);
        int32_t plus, dloss;
        if (measure(x, ONW_PHOTONIC_PERTURBATION, key) != 0) {
            return;
        }
        plus = hinge(label);
        if (measure(x, -ONW_PHOTONIC_PERTURBATION, key) != 0) {
            return;
        }
        dloss = plus - hinge(label);
        for (j = 0; j < CODES; j++) {
            sums[j] += direction_bit(key, j, &word) ? dloss : -dloss;
        }
    }
    rate = onw_round_shift_inline((int64_t)onw_state.lr_q * ONW_PHOTONIC_GAIN_Q, ONW_LR_FRAC);
    for (j = 0; j < CODES; j++) {
        int64_t w = onw_state.weights[j] - onw_round_shift_inline(sums[j] * rate, ONW_PHOTONIC_GAIN_FRAC);
        if (w < 0 || w > WORD_MAX) {
            onw_saturations++;
            w = w < 0 ? 0 : WORD_MAX;
        }
        onw_state.weights[j] = (int16_t)w;
    }
}

void onw_infer(const int16_t *x, int16_t *outputs)
{
    if (measure(x, 0, 0) == 0) {
        copy_outputs(outputs);
    }
}
#endif
