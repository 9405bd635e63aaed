/* The learned state: reset, the step counter, and the state image: seed, steps, lr_q, stage (uint32 LE) then the
 * int16 weights (LE), as host/reference.py. */
#include <stddef.h>

#include "onward/fixed.h"
#include "onward/protocol.h"
#include "onward/runtime.h"

onw_state_t onw_state;
uint32_t onw_saturations;
uint8_t onw_step_aborted;

void onw_reset(uint32_t seed)
{
    uint32_t i;
    for (i = 0; i < ONW_NUM_WEIGHTS; i++) {
        onw_state.weights[i] = onw_weights_init[i];
    }
    onw_state.seed = seed;
    onw_state.steps = 0;
    onw_state.lr_q = ONW_LR_Q;
    onw_state.stage = 0;
    onw_saturations = 0;
}

void onw_train(int16_t *x, int32_t target, int16_t *outputs)
{
    onw_step_aborted = 0;
    onw_train_step(x, target, outputs);
    if (!onw_step_aborted) {
        onw_state.steps++;
    }
}

uint32_t onw_rounding_key(uint32_t layer)
{
    return onw_derive(onw_derive(onw_derive(onw_state.seed, ONW_STREAM_ROUNDING), onw_state.steps), layer);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* On a little-endian core the state image is onw_state's own bytes: the header words, then the weights, with no
 * gap (checked below). Byte access through an unsigned char pointer is allowed for any object. This saves the
 * per-byte header/weight dispatch: flash, and most of the digest's work, which runs after every training step. */
typedef char onw_check_state_layout[offsetof(onw_state_t, weights) == ONW_STATE_HEADER ? 1 : -1];

uint8_t onw_state_get_byte(uint32_t index)
{
    return ((const uint8_t *)&onw_state)[index];
}

void onw_state_set_byte(uint32_t index, uint8_t value)
{
    ((uint8_t *)&onw_state)[index] = value;
}

uint32_t onw_state_digest(void)
{
    const uint8_t *p = (const uint8_t *)&onw_state;
    uint32_t crc = ONW_CRC32_INIT, i;
    for (i = 0; i < ONW_STATE_SIZE; i++) {
        crc = onw_crc32_byte(crc, p[i]);
    }
    return ~crc;
}
#else
static uint32_t *header_word(uint32_t index)
{
    uint32_t *words[4] = {&onw_state.seed, &onw_state.steps, &onw_state.lr_q, &onw_state.stage};
    return words[index];
}

uint8_t onw_state_get_byte(uint32_t index)
{
    if (index < ONW_STATE_HEADER) {
        return (uint8_t)(*header_word(index / 4) >> (8 * (index % 4)));
    }
    index -= ONW_STATE_HEADER;
    return (uint8_t)((uint16_t)onw_state.weights[index / 2] >> (8 * (index % 2)));
}

void onw_state_set_byte(uint32_t index, uint8_t value)
{
    if (index < ONW_STATE_HEADER) {
        uint32_t *word = header_word(index / 4);
        uint32_t shift = 8 * (index % 4);
        *word = (*word & ~((uint32_t)0xFF << shift)) | ((uint32_t)value << shift);
        return;
    }
    index -= ONW_STATE_HEADER;
    {
        uint16_t w = (uint16_t)onw_state.weights[index / 2];
        uint32_t shift = 8 * (index % 2);
        w = (uint16_t)((w & ~(0xFFu << shift)) | ((uint32_t)value << shift));
        onw_state.weights[index / 2] = (int16_t)w;
    }
}

uint32_t onw_state_digest(void)
{
    uint32_t crc = ONW_CRC32_INIT, i;
    for (i = 0; i < ONW_STATE_SIZE; i++) {
        crc = onw_crc32_byte(crc, onw_state_get_byte(i));
    }
    return ~crc;
}
#endif
