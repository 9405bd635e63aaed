/* The board's flash for persistence (boards/<board>/flash.c; the host's twin is host/persist.py's Flash).
 * A region of pages of ONW_FLASH_PAGE bytes at offset 0: erasing a page sets every byte to 0xFF; programming a
 * 32-bit word can only clear bits (the cell keeps old & new). Offsets are bytes from the region's start, words
 * aligned to 4. Boards whose board.json has "flash_page" provide these three. */
#ifndef ONWARD_FLASH_H
#define ONWARD_FLASH_H

#include <stdint.h>

void onw_flash_erase(uint32_t page);
void onw_flash_program(uint32_t offset, uint32_t word);
uint32_t onw_flash_read(uint32_t offset);

#endif
