/* Runs once (startup) or per byte (the port): optimised for size; the board flags give -O2 for the kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif
/* Port for the QEMU mps2 boards (an385 M3, an386 M4, an500 M7): CMSDK APB UART0 by polling, SysTick as counter
 * (boards/cortex-m/systick.c). */
#include "onward/port.h"
#include "../cortex-m/systick.h"

#define UART0_BASE 0x40004000u
#define UART_DATA     (*(volatile uint32_t *)(UART0_BASE + 0x00))
#define UART_STATE    (*(volatile uint32_t *)(UART0_BASE + 0x04))
#define UART_CTRL     (*(volatile uint32_t *)(UART0_BASE + 0x08))
#define UART_BAUDDIV  (*(volatile uint32_t *)(UART0_BASE + 0x10))
#define STATE_TXFULL 1u
#define STATE_RXFULL 2u

void onw_port_init(void)
{
    UART_BAUDDIV = 16; /* QEMU ignores a divisor < 16; there is no baud-rate pacing */
    UART_CTRL = 3;     /* TX + RX enable */
    systick_start();
}

#ifndef ONW_TRANSPORT_SEMIHOST /* else boards/semihost/port_semihost.c carries the bytes */
int onw_port_getc(void)
{
    /* QEMU holds further input back until DATA is read (1-byte RX buffer +
     * chardev back-pressure), so polling loses no bytes. QEMU 7.2 delivers
     * ~30 KB/s (one main-loop pass per byte); WFI+IRQ instead of polling does not help. */
    while (!(UART_STATE & STATE_RXFULL)) {
    }
    return (int)(UART_DATA & 0xFF);
}

void onw_port_putc(uint8_t byte)
{
    while (UART_STATE & STATE_TXFULL) {
    }
    UART_DATA = byte;
}

void onw_port_flush(void) {}
#endif
