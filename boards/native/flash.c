/* The native board's flash: a file (ONWARD_FLASH=path; without it, memory that dies with the process) with real
 * erase/program semantics, and a fault injector for the power-cut tests: ONWARD_FLASH_CUT=n interrupts the n-th
 * erase or program part way (how far: a xorshift stream of ONWARD_FLASH_CUT_SEED) and ends the process at once,
 * as a brown-out would: a cut erase leaves the page's first k words erased, a cut program a torn word. */
#include "onward/runtime.h"

#if ONW_PERSIST
#include <stdio.h>
#include <stdlib.h>

#include "onward/flash.h"
#include "onward/persist.h"

static uint8_t memory[ONW_PERSIST_BYTES];
static FILE *file;
static int ready;
static unsigned long ops, cut_at, cut_seed;

static void open_flash(void)
{
    const char *path = getenv("ONWARD_FLASH"), *cut = getenv("ONWARD_FLASH_CUT"),
               *seed = getenv("ONWARD_FLASH_CUT_SEED");
    uint32_t i;
    ready = 1;
    cut_at = cut ? strtoul(cut, NULL, 10) : 0;
    cut_seed = seed ? strtoul(seed, NULL, 10) : 1;
    for (i = 0; i < ONW_PERSIST_BYTES; i++) {
        memory[i] = 0xFFu; /* a fresh part is erased */
    }
    if (!path) {
        return;
    }
    file = fopen(path, "r+b");
    if (file) {
        size_t got = fread(memory, 1, ONW_PERSIST_BYTES, file); /* a shorter file: the rest is erased */
        (void)got;
    } else {
        file = fopen(path, "w+b");
    }
    if (!file) {
        fprintf(stderr, "onward native flash: cannot open %s\n", path);
        exit(2);
    }
    fseek(file, 0, SEEK_SET); /* the whole region, so that the file is the flash's image */
    fwrite(memory, 1, ONW_PERSIST_BYTES, file);
    fflush(file);
}

static void write_back(uint32_t offset, uint32_t len)
{
    if (file) {
        fseek(file, (long)offset, SEEK_SET);
        fwrite(memory + offset, 1, len, file);
        fflush(file);
    }
}

static uint32_t next_random(void)
{
    cut_seed ^= cut_seed << 13;
    cut_seed ^= cut_seed >> 17;
    cut_seed ^= cut_seed << 5;
    return (uint32_t)cut_seed;
}

/* Count an operation; on the one to cut, return 1 (the caller does part of it, then power_off). */
static int cut_now(void)
{
    if (!ready) {
        open_flash();
    }
    ops++;
    return cut_at != 0 && ops == cut_at;
}

static void power_off(void)
{
    _Exit(99);
}

uint32_t onw_flash_read(uint32_t offset)
{
    if (!ready) {
        open_flash();
    }
    return (uint32_t)memory[offset] | ((uint32_t)memory[offset + 1] << 8) | ((uint32_t)memory[offset + 2] << 16) |
           ((uint32_t)memory[offset + 3] << 24);
}

void onw_flash_erase(uint32_t page)
{
    uint32_t start = page * ONW_FLASH_PAGE, n = ONW_FLASH_PAGE, i;
    int cut = cut_now();
    if (cut) {
        n = 4u * (next_random() % (ONW_FLASH_PAGE / 4u));
    }
    for (i = 0; i < n; i++) {
        memory[start + i] = 0xFFu;
    }
    write_back(start, ONW_FLASH_PAGE);
    if (cut) {
        power_off();
    }
}

void onw_flash_program(uint32_t offset, uint32_t word)
{
    uint32_t old = onw_flash_read(offset), i;
    int cut = cut_now();
    if (cut) {
        word |= next_random(); /* only some of the bits being cleared get cleared */
    }
    word &= old;
    for (i = 0; i < 4; i++) {
        memory[offset + i] = (uint8_t)(word >> (8 * i));
    }
    write_back(offset, 4);
    if (cut) {
        power_off();
    }
}
#else
typedef int onw_flash_unused;
#endif
