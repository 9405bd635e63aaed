/* SysTick as the 32-bit free-running counter of onw_port_cycles(), for every Cortex-M port that has no better one. */
#ifndef ONWARD_BOARDS_SYSTICK_H
#define ONWARD_BOARDS_SYSTICK_H

/* Start SysTick on the processor clock, wrapping every 2^24 cycles; returns once it counts. */
void systick_start(void);

#endif
