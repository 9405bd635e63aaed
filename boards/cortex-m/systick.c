/* Runs once (startup) or per STATS frame: optimised for size; the board flags give -O2 for the kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif
/* SysTick (ARMv7-M ARM B3.3, the same on ARMv6-M) as onw_port_cycles(): processor-clock ticks, 32 bits. */
#include "onward/port.h"
#include "systick.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static volatile uint32_t systick_wraps;

/* SysTick is only 24 bits (wraps in 0.1 s at 168 MHz, < 1 s at QEMU's 25 MHz); count wraps to get 32 bits. */
void SysTick_Handler(void) { systick_wraps++; }

void systick_start(void)
{
    SYST_RVR = 0xFFFFFF;
    SYST_CVR = 0;
    SYST_CSR = 7;      /* processor clock, interrupt on wrap, enable */
    while (SYST_CVR == 0) { /* until the first reload: else cycles() would start at 0xFFFFFF and go back to 0 */
    }
}

/* On a real part, core clock cycles. Under QEMU SysTick follows the virtual clock, not executed instructions:
 * NOT cycle-accurate there, only a rough time base. */
uint32_t onw_port_cycles(void)
{
    uint32_t hi, lo;
    do {
        hi = systick_wraps;
        lo = 0xFFFFFFu - SYST_CVR;
    } while (hi != systick_wraps);
    return (hi << 24) | lo;
}
