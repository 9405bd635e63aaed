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

#include "semihost.h"

#define MODE_RB 1u /* fopen "rb" */
#define MODE_WB 5u /* fopen "wb" */

/* Names the host (host/targets/link.py, SemihostLink) gives the FIFOs, relative to QEMU's working directory. */
static const char name_in[] = "onward.in";   /* host -> device */
static const char name_out[] = "onward.out"; /* device -> host */

static uint8_t in_buf[512];
static uint8_t out_buf[256];
static uint32_t in_len, in_pos, out_len;
static int32_t fd_in = -1, fd_out = -1;

/* Output first: the host opens its reading end without blocking before it waits for the device to open the
 * input, so once the host sees the input opened, the output is open too (an early EOF on it means QEMU died). */
static void open_channel(void)
{
    fd_out = semihost_open(name_out, sizeof name_out - 1, MODE_WB);
    fd_in = semihost_open(name_in, sizeof name_in - 1, MODE_RB);
    if (fd_out < 0 || fd_in < 0) {
        semihost_exit(SEMIHOST_EXIT_ERROR);
    }
}

int onw_port_getc(void)
{
    if (in_pos == in_len) {
        int32_t left;
        if (fd_in < 0) {
            open_channel();
        }
        /* One read(2) on the host: blocks until a byte is there, then takes all that is (up to the buffer). */
        left = semihost_transfer(SYS_READ, fd_in, in_buf, sizeof in_buf);
        if (left < 0 || (uint32_t)left >= sizeof in_buf) {
            /* the host closed the channel: done */
            semihost_exit(left < 0 ? SEMIHOST_EXIT_ERROR : SEMIHOST_EXIT_OK);
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
        int32_t left = semihost_transfer(SYS_WRITE, fd_out, out_buf + done, out_len - done);
        if (left < 0 || (uint32_t)left >= out_len - done) {
            semihost_exit(SEMIHOST_EXIT_ERROR); /* nothing written: the host is gone */
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
