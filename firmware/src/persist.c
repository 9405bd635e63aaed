/* The learned state in flash, A/B slots: the C twin of host/persist.py (its docstring is the specification). */
#include "onward/runtime.h"

#if ONW_PERSIST
#include "onward/flash.h"
#include "onward/persist.h"
#include "onward/protocol.h"

#define SLOT_PAGES ONW_PERSIST_SLOT_PAGES
#define STATE_WORDS ((ONW_STATE_SIZE + 3u) / 4u)

static uint32_t slot_base(uint32_t slot)
{
    return slot * SLOT_PAGES * ONW_FLASH_PAGE;
}

static uint32_t crc_word(uint32_t crc, uint32_t word)
{
    int i;
    for (i = 0; i < 4; i++) {
        crc = onw_crc32_byte(crc, (uint8_t)(word >> (8 * i)));
    }
    return crc;
}

static uint8_t flash_byte(uint32_t offset)
{
    return (uint8_t)(onw_flash_read(offset & ~3u) >> (8u * (offset & 3u)));
}

/* The slot's seq if it holds a valid record (magic, length and CRC agree), else 0. */
static uint32_t valid_seq(uint32_t slot)
{
    uint32_t base = slot_base(slot), seq, crc, i;
    if (onw_flash_read(base) != ONW_PERSIST_MAGIC || onw_flash_read(base + 8u) != ONW_STATE_SIZE) {
        return 0;
    }
    seq = onw_flash_read(base + 4u);
    crc = crc_word(crc_word(ONW_CRC32_INIT, seq), ONW_STATE_SIZE);
    for (i = 0; i < ONW_STATE_SIZE; i++) {
        crc = onw_crc32_byte(crc, flash_byte(base + ONW_PERSIST_HEADER + i));
    }
    return ~crc == onw_flash_read(base + 12u) && seq != 0xFFFFFFFFu ? seq : 0;
}

/* The slot holding the newest valid record (A on a tie), its seq in *seq (0: none valid). */
static uint32_t newest(uint32_t *seq)
{
    uint32_t a = valid_seq(0), b = valid_seq(1);
    *seq = b > a ? b : a;
    return b > a ? 1u : 0u;
}

uint32_t onw_persist_save(void)
{
    uint32_t seq, slot = newest(&seq), base, i, crc;
    slot = seq ? 1u - slot : 0u;
    seq += 1u;
    base = slot_base(slot);
    for (i = 0; i < SLOT_PAGES; i++) {
        onw_flash_erase(slot * SLOT_PAGES + i);
    }
    crc = crc_word(crc_word(ONW_CRC32_INIT, seq), ONW_STATE_SIZE);
    for (i = 0; i < STATE_WORDS; i++) {
        uint32_t word = 0, k;
        for (k = 0; k < 4u; k++) {
            uint32_t at = 4u * i + k;
            uint8_t byte = at < ONW_STATE_SIZE ? onw_state_get_byte(at) : 0xFFu;
            if (at < ONW_STATE_SIZE) {
                crc = onw_crc32_byte(crc, byte);
            }
            word |= (uint32_t)byte << (8u * k);
        }
        onw_flash_program(base + ONW_PERSIST_HEADER + 4u * i, word);
    }
    onw_flash_program(base + 8u, ONW_STATE_SIZE);
    onw_flash_program(base + 4u, seq);
    onw_flash_program(base + 12u, ~crc);
    onw_flash_program(base, ONW_PERSIST_MAGIC); /* the commit: until this word is whole the slot is invalid */
    return seq;
}

uint32_t onw_persist_restore(void)
{
    uint32_t seq, slot = newest(&seq), i;
    if (seq) {
        for (i = 0; i < ONW_STATE_SIZE; i++) {
            onw_state_set_byte(i, flash_byte(slot_base(slot) + ONW_PERSIST_HEADER + i));
        }
    }
    return seq;
}
#else
typedef int onw_persist_unused; /* ISO C wants a translation unit to declare something */
#endif
