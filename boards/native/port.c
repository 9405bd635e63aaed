/* The native board: the firmware as a host process speaking the protocol on stdin/stdout. */
#include <stdio.h>
#include <time.h>

#include "onward/port.h"

void onw_port_init(void)
{
}

int onw_port_getc(void)
{
    int c = getchar();
    return c == EOF ? -1 : c;
}

void onw_port_putc(uint8_t byte)
{
    putchar(byte);
}

void onw_port_flush(void)
{
    fflush(stdout);
}

uint32_t onw_port_cycles(void)
{
    return (uint32_t)clock(); /* CPU time in clock ticks: the host has no cycle counter we can trust */
}
