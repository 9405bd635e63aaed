/* The state image: seed, steps, lr_q (uint32 LE) then the int16 weights (LE), as host/reference.py. */
#include "onward/protocol.h"
#include "onward/runtime.h"

static uint32_t header_word(uint32_t index)
{
    return index == 0 ? onw_state.seed : index == 1 ? onw_state.steps : onw_state.lr_q;
}

uint8_t onw_state_get_byte(uint32_t index)
{
    if (index < ONW_STATE_HEADER) {
        return (uint8_t)(header_word(index / 4) >> (8 * (index % 4)));
    }
    index -= ONW_STATE_HEADER;
    return (uint8_t)((uint16_t)onw_state.weights[index / 2] >> (8 * (index % 2)));
}

void onw_state_set_byte(uint32_t index, uint8_t value)
{
    if (index < ONW_STATE_HEADER) {
        uint32_t *word = index < 4 ? &onw_state.seed : index < 8 ? &onw_state.steps : &onw_state.lr_q;
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
