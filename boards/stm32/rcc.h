/* What the STM32F4 and STM32L4 ports share: a bounded wait on a register, and the AHB/APB prescaler codes of
 * RCC_CFGR (the same encoding in both families: RM0390 6.3.3, RM0351 6.4.3). */
#ifndef ONWARD_BOARDS_STM32_RCC_H
#define ONWARD_BOARDS_STM32_RCC_H

#include <stdint.h>

#define STM32_SPINS 100000u /* a bound on every wait: far longer than an oscillator's start or a PLL lock */

/* Nonzero when `bits` of `reg` read as `value` within STM32_SPINS reads. Bounded so that a part whose oscillator
 * does not start (or an emulator without an RCC, whose registers read 0) keeps running on its reset clock. */
static inline int stm32_wait_for(volatile uint32_t *reg, uint32_t bits, uint32_t value)
{
    for (uint32_t i = 0; i < STM32_SPINS; i++) {
        if ((*reg & bits) == value) return 1;
    }
    return 0;
}

/* HCLK from SYSCLK and HPRE (4 bits): 0xxx = /1, 1000 = /2 ... 1011 = /16, 1100 = /64 ... 1111 = /512. */
static inline uint32_t stm32_hclk(uint32_t sysclk, uint32_t hpre)
{
    if (!(hpre & 8u)) return sysclk;
    hpre &= 7u;
    return sysclk >> (hpre < 4u ? hpre + 1u : hpre + 2u);
}

/* PCLKx from HCLK and PPREx (3 bits): 0xx = /1, 100 = /2 ... 111 = /16. */
static inline uint32_t stm32_pclk(uint32_t hclk, uint32_t ppre)
{
    return ppre & 4u ? hclk >> ((ppre & 3u) + 1u) : hclk;
}

#endif
