/* Board port: the only functions the runtime needs from a board.
 * Each folder under boards/ implements them (plus startup and linker script where bare-metal). */
#ifndef ONWARD_PORT_H
#define ONWARD_PORT_H

#include <stdint.h>

/* Bring up the clock/UART so that getc/putc work. Called once from main(). */
void onw_port_init(void);

/* Block until one byte arrives on the host link; return it (0..255).
 * Return -1 only when the link is closed for good (native stdin EOF); boards never return -1. */
int onw_port_getc(void);

/* Send one byte to the host link (blocking). */
void onw_port_putc(uint8_t byte);

/* Flush buffered output (no-op on boards that write straight to the UART). */
void onw_port_flush(void);

/* A free-running counter for STATS (cycles, instructions or 0 where the board has none). */
uint32_t onw_port_cycles(void);

#endif
