/* Port for QEMU riscv32 virt: NS16550A UART at 0x10000000 by polling, mtime as counter. */
#include "onward/port.h"

#define UART_BASE 0x10000000u
#define UART_RBR (*(volatile uint8_t *)(UART_BASE + 0))   /* read: receive buffer */
#define UART_THR (*(volatile uint8_t *)(UART_BASE + 0))   /* write: transmit holding */
#define UART_LSR (*(volatile uint8_t *)(UART_BASE + 5))
#define LSR_DR   0x01u   /* data ready */
#define LSR_THRE 0x20u   /* transmit holding register empty */

/* QEMU's 16550 needs no set-up: no baud-rate pacing, FIFO off is fine for polling. */
void onw_port_init(void) {}

#ifndef ONW_TRANSPORT_SEMIHOST /* else boards/semihost/port_semihost.c carries the bytes */
int onw_port_getc(void)
{
    /* QEMU holds further input back until RBR is read (chardev back-pressure), so polling loses no bytes. */
    while (!(UART_LSR & LSR_DR)) {
    }
    return (int)UART_RBR;
}

void onw_port_putc(uint8_t byte)
{
    while (!(UART_LSR & LSR_THRE)) {
    }
    UART_THR = byte;
}

void onw_port_flush(void) {}
#endif

/* Low 32 bits of the time CSR: QEMU's ACLINT mtime, 10 MHz of virtual time (readable in M-mode).
 * Not cycles: rdcycle would work too, but without -icount QEMU 7.2 returns the host's TSC there
 * (GHz, wraps in ~1.6 s, depends on the host); mtime is a steadier time base, like the mps2 SysTick. */
uint32_t onw_port_cycles(void)
{
    uint32_t t;
    __asm__ volatile("rdtime %0" : "=r"(t));
    return t;
}
