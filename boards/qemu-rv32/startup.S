/* Startup for QEMU riscv32 virt with -bios none: QEMU's reset ROM jumps to 0x80000000 in M-mode
 * (a0 = hart id, a1 = device tree; both unused). .text.init is linked first so _start lands there.
 * .data needs no copy: QEMU's ELF loader writes it straight to its run address (RAM is RAM here). */
    .section .text.init, "ax", @progbits
    .globl _start
_start:
    .option push
    .option norelax               /* else `la gp` is relaxed into gp-relative to the not-yet-set gp */
    la      gp, __global_pointer$ /* ld relaxes accesses within +-2 KB of gp to one gp-relative insn */
    .option pop
    la      sp, _estack
    la      t0, trap              /* an exception parks here instead of at mtvec's reset value (0) */
    .option push
    .option arch, +zicsr          /* -march=rv32imac (ISA spec 20191213) leaves CSR instructions out */
    csrw    mtvec, t0
    .option pop
    la      t0, _sbss
    la      t1, _ebss
1:  bgeu    t0, t1, 2f            /* zero .sbss + .bss (word-aligned by link.ld) */
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  call    main
    .balign 4                     /* mtvec's low 2 bits are the mode: the handler must be 4-aligned */
trap:
    j       trap                  /* main never returns; a trap shows up as a hang here (mcause says why) */
