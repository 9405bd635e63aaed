/* The fuzzing port's two sides (port.c): the harness feeds the input and reads what the firmware replied. */
#ifndef ONWARD_FUZZ_PORT_H
#define ONWARD_FUZZ_PORT_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_OUT_MAX (1u << 20)
extern uint8_t fuzz_out[FUZZ_OUT_MAX];
extern size_t fuzz_out_len;

void fuzz_port_feed(const uint8_t *data, size_t len);

#endif
