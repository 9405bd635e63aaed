/* The learned state in flash, in two slots (A/B), safe against a power cut at any point: host/persist.py is the
 * specification (the record, the write order, what restore accepts). Compiled when the spec has [persist]. */
#ifndef ONWARD_PERSIST_H
#define ONWARD_PERSIST_H

#include <stdint.h>

#define ONW_PERSIST_MAGIC 0x4F4E5731u /* "ONW1" */
#define ONW_PERSIST_HEADER 16u        /* magic | seq | length | crc */
/* Pages of one slot, and the flash region both slots take (the board's ONW_FLASH_PAGE, from board.json) */
#define ONW_PERSIST_SLOT_PAGES ((ONW_PERSIST_HEADER + ONW_STATE_SIZE + ONW_FLASH_PAGE - 1u) / ONW_FLASH_PAGE)
#define ONW_PERSIST_BYTES (2u * ONW_PERSIST_SLOT_PAGES * ONW_FLASH_PAGE)

/* Save the state image to the slot not holding the newest record; returns the new record's seq (>= 1). */
uint32_t onw_persist_save(void);

/* Load the newest valid record into the state; returns its seq, or 0 (the state untouched) when there is none. */
uint32_t onw_persist_restore(void);

#endif
