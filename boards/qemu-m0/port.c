/* Port for QEMU's microbit (nRF51822, Cortex-M0): UART0 by polling, TIMER0 as counter. */
#include "onward/port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define UART0 0x40002000u
#define UART_STARTRX  REG(UART0 + 0x000)
#define UART_STARTTX  REG(UART0 + 0x008)
#define UART_RXDRDY   REG(UART0 + 0x108)
#define UART_TXDRDY   REG(UART0 + 0x11C)
#define UART_ENABLE   REG(UART0 + 0x500)
#define UART_PSELTXD  REG(UART0 + 0x50C)
#define UART_PSELRXD  REG(UART0 + 0x514)
#define UART_RXD      REG(UART0 + 0x518)
#define UART_TXD      REG(UART0 + 0x51C)
#define UART_BAUDRATE REG(UART0 + 0x524)

#define TIMER0 0x40008000u
#define TIMER_START    REG(TIMER0 + 0x000)
#define TIMER_CAPTURE0 REG(TIMER0 + 0x040)
#define TIMER_MODE     REG(TIMER0 + 0x504)
#define TIMER_BITMODE  REG(TIMER0 + 0x508)
#define TIMER_PRESCALER REG(TIMER0 + 0x510)
#define TIMER_CC0      REG(TIMER0 + 0x540)

void onw_port_init(void)
{
    /* QEMU ignores pins and baud rate; they are the micro:bit's USB-serial pins at 115200,
     * so the same code is right on the real board. */
    UART_PSELTXD = 24;
    UART_PSELRXD = 25;
    UART_BAUDRATE = 0x01D7E000u;
    UART_ENABLE = 4;    /* QEMU accepts only 4 (UART, not 0 or other values) and ignores every other register until then */
    UART_STARTTX = 1;
    UART_STARTRX = 1;   /* QEMU takes no input from the host until STARTRX */

    /* nRF51 has no SysTick (QEMU models one anyway, but a real micro:bit would fault):
     * TIMER0, 32 bits at 16 MHz (prescaler 0) wraps every 268 s and needs no interrupt. */
    TIMER_MODE = 0;      /* timer, not counter */
    TIMER_BITMODE = 3;   /* 32-bit */
    TIMER_PRESCALER = 0;
    TIMER_START = 1;
}

#ifndef ONW_TRANSPORT_SEMIHOST /* else boards/semihost/port_semihost.c carries the bytes */
int onw_port_getc(void)
{
    /* RXDRDY is not cleared by reading RXD, so clear it BEFORE the read: QEMU re-raises it
     * during the read when more bytes wait in its 6-byte FIFO. Cleared after the read,
     * that re-raise would be lost and, with the FIFO full, no new byte would raise it again. */
    while (!UART_RXDRDY) {
    }
    UART_RXDRDY = 0;
    return (int)(UART_RXD & 0xFF);
}

void onw_port_putc(uint8_t byte)
{
    /* QEMU silently DROPS a TXD write while the previous byte is still pending (host socket
     * busy), and TXDRDY is a sticky event: clear it, write, then wait for it. */
    UART_TXDRDY = 0;
    UART_TXD = byte;
    while (!UART_TXDRDY) {
    }
}

void onw_port_flush(void) {}
#endif

/* 16 MHz TIMER0 ticks (= HCLK on nRF51). QEMU derives the timer from the virtual clock,
 * not from executed instructions: a rough time base, NOT a cycle count. */
uint32_t onw_port_cycles(void)
{
    TIMER_CAPTURE0 = 1;  /* latch the counter into CC[0] */
    return TIMER_CC0;
}
