/* The emulated boards' flash for persistence: a file on the host, reached by semihosting, with the erase/program
 * semantics applied here (the twin: host/persist.py's Flash). QEMU's mps2 boards have no flash device and the
 * microbit's NVMC keeps its pages in QEMU's memory only (docs/calibration.md): a file is what survives a power
 * cycle, that is a restart of QEMU. The host links it into QEMU's working directory as `onward.flash`
 * (host/targets/run.py, power_on); a missing file is a fresh, erased part.
 *
 * Fault injection, as the native board's (boards/native/flash.c): a file `onward.cut` holding "n seed" interrupts
 * the n-th erase or program of this power-on part way (how far: a xorshift stream of seed) and stops QEMU at once:
 * a cut erase leaves the page's first k words erased, a cut program a torn word.
 *
 * No page buffer: the part is read and written a word or 64 bytes at a time, so that it fits the 16 KB Cortex-M0. */
#include "onward/runtime.h"

#if ONW_PERSIST
#include "onward/flash.h"
#include "onward/persist.h"

#include "semihost.h"

#define MODE_RB 1u   /* fopen "rb" */
#define MODE_RPB 3u  /* "r+b": the part exists */
#define MODE_WPB 7u  /* "w+b": a fresh part */
#define CHUNK 64u

static const char name_flash[] = "onward.flash";
static const char name_cut[] = "onward.cut";
static const uint8_t erased[CHUNK] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
static int32_t handle = -1;
static uint32_t ops, cut_at, cut_seed = 1;

static void fail(void)
{
    semihost_exit(SEMIHOST_EXIT_ERROR);
}

static void seek(uint32_t offset)
{
    uint32_t args[2];
    args[0] = (uint32_t)handle;
    args[1] = offset;
    if (semihost(SYS_SEEK, args) != 0) {
        fail();
    }
}

static void write_at(uint32_t offset, const void *bytes, uint32_t length)
{
    seek(offset);
    if (semihost_transfer(SYS_WRITE, handle, bytes, length) != 0) {
        fail();
    }
}

static uint32_t parse_number(const char **p)
{
    uint32_t n = 0;
    while (**p == ' ') {
        (*p)++;
    }
    while (**p >= '0' && **p <= '9') {
        n = n * 10u + (uint32_t)(**p - '0');
        (*p)++;
    }
    return n;
}

static void read_cut(void)
{
    static char text[32]; /* zeroed at startup (a local's initialiser would call memset) */
    const char *p = text;
    int32_t cut = semihost_open(name_cut, sizeof name_cut - 1, MODE_RB);
    if (cut < 0) {
        return;
    }
    (void)semihost_transfer(SYS_READ, cut, text, sizeof text - 1);
    cut_at = parse_number(&p);
    cut_seed = parse_number(&p);
    if (cut_seed == 0u) {
        cut_seed = 1u;
    }
}

static void open_flash(void)
{
    uint32_t at;
    handle = semihost_open(name_flash, sizeof name_flash - 1, MODE_RPB);
    if (handle < 0) { /* a fresh part: erased */
        handle = semihost_open(name_flash, sizeof name_flash - 1, MODE_WPB);
        if (handle < 0) {
            fail();
        }
        for (at = 0; at < ONW_PERSIST_BYTES; at += CHUNK) {
            write_at(at, erased, ONW_PERSIST_BYTES - at < CHUNK ? ONW_PERSIST_BYTES - at : CHUNK);
        }
    }
    read_cut();
}

static uint32_t next_random(void)
{
    cut_seed ^= cut_seed << 13;
    cut_seed ^= cut_seed >> 17;
    cut_seed ^= cut_seed << 5;
    return cut_seed;
}

/* Count an operation; on the one to cut, return 1 (the caller does part of it, then power_off). */
static int cut_now(void)
{
    if (handle < 0) {
        open_flash();
    }
    ops++;
    return cut_at != 0u && ops == cut_at;
}

static void power_off(void)
{
    semihost_exit(SEMIHOST_EXIT_ERROR);
}

uint32_t onw_flash_read(uint32_t offset)
{
    uint8_t b[4];
    if (handle < 0) {
        open_flash();
    }
    seek(offset);
    if (semihost_transfer(SYS_READ, handle, b, 4) != 0) {
        fail();
    }
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

void onw_flash_erase(uint32_t page)
{
    uint32_t start = page * ONW_FLASH_PAGE, n = ONW_FLASH_PAGE, at;
    int cut = cut_now();
    if (cut) {
        n = 4u * (next_random() % (ONW_FLASH_PAGE / 4u));
    }
    for (at = 0; at < n; at += CHUNK) {
        write_at(start + at, erased, n - at < CHUNK ? n - at : CHUNK);
    }
    if (cut) {
        power_off();
    }
}

void onw_flash_program(uint32_t offset, uint32_t word)
{
    uint32_t old = onw_flash_read(offset), i;
    uint8_t b[4];
    int cut = cut_now();
    if (cut) {
        word |= next_random(); /* only some of the bits being cleared get cleared */
    }
    word &= old;
    for (i = 0; i < 4; i++) {
        b[i] = (uint8_t)(word >> (8 * i));
    }
    write_at(offset, b, 4);
    if (cut) {
        power_off();
    }
}
#else
typedef int onw_flash_semihost_unused;
#endif
