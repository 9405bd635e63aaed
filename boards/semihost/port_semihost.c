/* The fast byte channel of the emulated boards (built with -DONW_TRANSPORT_SEMIHOST): the very same frames as
 * over the UART, carried by semihosting file I/O on two FIFOs that the host makes in QEMU's working directory
 * (QEMU runs with -semihosting-config enable=on,target=native). QEMU's UART moves one byte per main-loop pass
 * (~30 KB/s); one SYS_READ here moves up to a whole buffer, so a TRAIN_BATCH frame costs a few traps.
 *
 * Only the byte functions are replaced: each board's port.c keeps its init and cycle counter and leaves out
 * its UART getc/putc/flush under ONW_TRANSPORT_SEMIHOST. Cortex-M traps with BKPT 0xAB, RISC-V with the
 * slli/ebreak/srai sequence. Run without semihosting, the trap is not served and the firmware parks in its fault
 * (Cortex-M) or trap (RISC-V) handler; the host's timeouts report it. Never on a real board. */
#ifdef ONW_TRANSPORT_SEMIHOST

#include "onward/port.h"

#define SYS_OPEN 0x01u
#define SYS_WRITE 0x05u
#define SYS_READ 0x06u
#define SYS_EXIT 0x18u
#define MODE_RB 1u /* fopen "rb" */
#define MODE_WB 5u /* fopen "wb" */
#define EXIT_OK 0x20026u    /* ADP_Stopped_ApplicationExit: QEMU exits with status 0 */
#define EXIT_ERROR 0x20023u /* ADP_Stopped_RunTimeErrorUnknown: status 1 */

/* Names the host (host/targets/link.py, SemihostLink) gives the FIFOs, relative to QEMU's working directory. */
static const char name_in[] = "onward.in";   /* host -> device */
static const char name_out[] = "onward.out"; /* device -> host */

static uint8_t in_buf[512];
static uint8_t out_buf[256];
static uint32_t in_len, in_pos, out_len;
static int32_t fd_in = -1, fd_out = -1;

static int32_t semihost(uint32_t op, const void *arg)
{
#if defined(__riscv)
    register uint32_t a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    /* QEMU recognises the ebreak as a semihosting call only between these two no-ops, uncompressed and on
     * one page: 16-byte alignment keeps the 12 bytes off a page boundary. */
    __asm__ volatile(".option push\n\t.option norvc\n\t.balign 16\n\t"
                     "slli zero, zero, 0x1f\n\tebreak\n\tsrai zero, zero, 0x7\n\t.option pop"
                     : "+r"(a0)
                     : "r"(a1)
                     : "memory");
    return (int32_t)a0;
#else
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
#endif
}

static void semihost_exit(uint32_t reason)
{
    /* On 32-bit targets SYS_EXIT takes the reason itself, not a pointer to a block. */
    (void)semihost(SYS_EXIT, (const void *)(uintptr_t)reason);
    for (;;) {
    }
}

static int32_t open_file(const char *name, uint32_t length, uint32_t mode)
{
    uint32_t args[3];
    args[0] = (uint32_t)(uintptr_t)name;
    args[1] = mode;
    args[2] = length;
    return semihost(SYS_OPEN, args);
}

/* Output first: the host opens its reading end without blocking before it waits for the device to open the
 * input, so once the host sees the input opened, the output is open too (an early EOF on it means QEMU died). */
static void open_channel(void)
{
    fd_out = open_file(name_out, sizeof name_out - 1, MODE_WB);
    fd_in = open_file(name_in, sizeof name_in - 1, MODE_RB);
    if (fd_out < 0 || fd_in < 0) {
        semihost_exit(EXIT_ERROR);
    }
}

int onw_port_getc(void)
{
    if (in_pos == in_len) {
        uint32_t args[3];
        int32_t left;
        if (fd_in < 0) {
            open_channel();
        }
        args[0] = (uint32_t)fd_in;
        args[1] = (uint32_t)(uintptr_t)in_buf;
        args[2] = sizeof in_buf;
        /* One read(2) on the host: blocks until a byte is there, then takes all that is (up to the buffer). */
        left = semihost(SYS_READ, args);
        if (left < 0 || (uint32_t)left >= sizeof in_buf) {
            semihost_exit(left < 0 ? EXIT_ERROR : EXIT_OK); /* the host closed the channel: done */
        }
        in_len = sizeof in_buf - (uint32_t)left;
        in_pos = 0;
    }
    return in_buf[in_pos++];
}

void onw_port_flush(void)
{
    uint32_t done = 0;
    if (fd_out < 0) {
        open_channel();
    }
    while (done < out_len) {
        uint32_t args[3];
        int32_t left;
        args[0] = (uint32_t)fd_out;
        args[1] = (uint32_t)(uintptr_t)(out_buf + done);
        args[2] = out_len - done;
        left = semihost(SYS_WRITE, args); /* bytes NOT written */
        if (left < 0 || (uint32_t)left >= out_len - done) {
            semihost_exit(EXIT_ERROR); /* nothing written: the host is gone */
        }
        done = out_len - (uint32_t)left;
    }
    out_len = 0;
}

void onw_port_putc(uint8_t byte)
{
    if (out_len == sizeof out_buf) {
        onw_port_flush();
    }
    out_buf[out_len++] = byte;
}

#else
typedef int onw_no_semihosting; /* ISO C wants something in a translation unit */
#endif
