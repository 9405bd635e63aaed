/* The semihosting trap of the emulated boards (QEMU -semihosting-config enable=on,target=native): an operation
 * number and a pointer to its argument block, served by QEMU on the host. Cortex-M traps with BKPT 0xAB, RISC-V
 * with the slli/ebreak/srai sequence. Used by the byte channel (port_semihost.c) and the file-backed flash
 * (flash_semihost.c). Never on a real board: there the trap is not served and the firmware parks in its fault or
 * trap handler. */
#ifndef ONWARD_SEMIHOST_H
#define ONWARD_SEMIHOST_H

#include <stdint.h>

#define SYS_OPEN 0x01u
#define SYS_WRITE 0x05u
#define SYS_READ 0x06u
#define SYS_SEEK 0x0Au
#define SYS_EXIT 0x18u
#define SEMIHOST_EXIT_OK 0x20026u    /* ADP_Stopped_ApplicationExit: QEMU exits with status 0 */
#define SEMIHOST_EXIT_ERROR 0x20023u /* ADP_Stopped_RunTimeErrorUnknown: status 1 */

static inline int32_t semihost(uint32_t op, const void *arg)
{
#if defined(__riscv)
    register uint32_t a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    /* QEMU recognises the ebreak as a semihosting call only between these two no-ops, uncompressed and on
     * one page: 16-byte alignment keeps the 12 bytes off a page boundary. */
    __asm__ volatile(".option push\n\t.option norvc\n\t.balign 16\n\t"
                     "slli zero, zero, 0x1f\n\tebreak\n\tsrai zero, zero, 0x7\n\t.option pop"
                     : "+r"(a0)
                     : "r"(a1)
                     : "memory");
    return (int32_t)a0;
#else
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
#endif
}

static inline __attribute__((noreturn)) void semihost_exit(uint32_t reason)
{
    /* On 32-bit targets SYS_EXIT takes the reason itself, not a pointer to a block. */
    (void)semihost(SYS_EXIT, (const void *)(uintptr_t)reason);
    for (;;) {
    }
}

/* SYS_OPEN: a handle, or -1. mode: fopen's, as ISO C modes numbered 0 "r" .. 11 "a+b". */
static inline int32_t semihost_open(const char *name, uint32_t length, uint32_t mode)
{
    uint32_t args[3];
    args[0] = (uint32_t)(uintptr_t)name;
    args[1] = mode;
    args[2] = length;
    return semihost(SYS_OPEN, args);
}

/* SYS_READ / SYS_WRITE: the bytes NOT moved (0: all of them), or -1. */
static inline int32_t semihost_transfer(uint32_t op, int32_t handle, const void *buffer, uint32_t length)
{
    uint32_t args[3];
    args[0] = (uint32_t)handle;
    args[1] = (uint32_t)(uintptr_t)buffer;
    args[2] = length;
    return semihost(op, args);
}

#endif
