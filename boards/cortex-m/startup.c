/* Runs once (startup) or per byte (the port): optimised for size; the board flags give -O2 for the kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif
/* Startup for every Cortex-M board (qemu-m0 on ARMv6-M; the mps2 boards qemu-m3/m4/m7). Freestanding: no libc.
 * Build with -fno-tree-loop-distribute-patterns so the copy/zero loops
 * below are not turned into memcpy/memset calls (there is no libc to provide them). */
#include <stdint.h>

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
int main(void);

void Reset_Handler(void);
void Default_Handler(void);

/* Weak so a board file (port.c) can provide a real handler. */
#define WEAK_DEFAULT __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_DEFAULT;
void HardFault_Handler(void) WEAK_DEFAULT;
void SVC_Handler(void) WEAK_DEFAULT;
#ifndef __ARM_ARCH_6M__
void MemManage_Handler(void) WEAK_DEFAULT;
void BusFault_Handler(void) WEAK_DEFAULT;
void UsageFault_Handler(void) WEAK_DEFAULT;
void DebugMon_Handler(void) WEAK_DEFAULT;
#endif
void PendSV_Handler(void) WEAK_DEFAULT;
void SysTick_Handler(void) WEAK_DEFAULT;

/* Only the 16 core exceptions: no peripheral IRQ is ever enabled. ARMv6-M (Cortex-M0) has no
 * MemManage/BusFault/UsageFault/DebugMon: every fault escalates to HardFault, so those slots are 0.
 * Stored as integers so that the SP entry needs no (non-ISO) object->function cast. */
#define V(f) ((uintptr_t)(f))
__attribute__((section(".isr_vector"), used))
const uintptr_t g_vectors[16] = {
    V(_estack), /* initial SP = top of RAM */
    V(Reset_Handler),
    V(NMI_Handler),
    V(HardFault_Handler),
#ifdef __ARM_ARCH_6M__
    0, 0, 0, 0, 0, 0, 0,
    V(SVC_Handler),
    0, 0,
#else
    V(MemManage_Handler),
    V(BusFault_Handler),
    V(UsageFault_Handler),
    0, 0, 0, 0,
    V(SVC_Handler),
    V(DebugMon_Handler),
    0,
#endif
    V(PendSV_Handler),
    V(SysTick_Handler),
};

void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    uint32_t *src = _sidata, *dst = _sdata;
    while (dst < _edata) *dst++ = *src++;
    for (dst = _sbss; dst < _ebss;) *dst++ = 0;
    main();
    for (;;) {
    }
}
