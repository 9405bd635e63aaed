/* The fuzzing port: the input is the host link's byte stream, the replies go to a buffer the harness reads. */
#include <stddef.h>

#include "fuzz_port.h"
#include "onward/port.h"

static const uint8_t *in;
static size_t in_len, in_at;
uint8_t fuzz_out[FUZZ_OUT_MAX];
size_t fuzz_out_len;

void fuzz_port_feed(const uint8_t *data, size_t len)
{
    in = data;
    in_len = len;
    in_at = 0;
    fuzz_out_len = 0;
}

void onw_port_init(void)
{
}

int onw_port_getc(void)
{
    return in_at < in_len ? in[in_at++] : -1; /* the end of the input closes the link: onw_serve returns */
}

void onw_port_putc(uint8_t byte)
{
    if (fuzz_out_len < FUZZ_OUT_MAX) {
        fuzz_out[fuzz_out_len] = byte;
    }
    fuzz_out_len++; /* counted past the buffer, so that an overflow shows */
}

void onw_port_flush(void)
{
}

uint32_t onw_port_cycles(void)
{
    return 0;
}
