/* onw_update_rows: the Cortex-M4/M7 group loop of onw_dense_update (firmware/src/dense_update.c: the rows it is
 * given, struct update_row, and what happens to a row that sets Q; the README's integer conventions: the update's
 * definition). Eight weights (a dither group) per iteration in 30 instructions: each step is SMLABB/SMLABT
 * (g x + o), two steps are packed by one PKHTB (the top halves are the floors) and subtracted by one SSUB16, which
 * wraps instead of saturating; it cannot overflow while every old weight is in [-2^14, 2^14), which SSAT16 #15
 * checks for free: it sets the sticky Q flag otherwise, and the row's APSR is stored for the C to see.
 *
 * Weights [0, 8 groups) of `count` rows (row and x word-aligned, count >= 1, groups >= 1). Per row: reload the row
 * from the table, clear Q, the group loop, store the APSR. Registers in the group loop: r0 row, r1 x, r2 x end,
 * r3 g, r4 u, r5 A, r6 C, r7 offset, r8/r9 two words of x, r10/r11 two of w, r12/lr products. The frame holds the
 * table pointer, its end, x and the bytes of x the groups cover. */
#include "onward/dsp.h"

#if ONW_DSP_KERNELS
  .syntax unified
  .thumb

  .pushsection .text.onw_update_rows, "ax", %progbits
  .align 2
  .global onw_update_rows
  .type onw_update_rows, %function
  .thumb_func
/* HALF: four weights of the group (two words of x, two of W) with the offset in r7 */
.macro ONW_UPDATE_HALF
  ldmia r1!, {r8, r9}
  ldmia r0, {r10, r11}
  ssat16 r12, #15, r10  /* Q if an old weight is outside [-2^14, 2^14) */
  ssat16 r12, #15, r11
  smlabb r12, r3, r8, r7  /* g x0 + o */
  smlabt lr, r3, r8, r7  /* g x1 + o */
  pkhtb r12, lr, r12, asr #16  /* the two steps: the top halves */
  ssub16 r10, r10, r12
  smlabb r12, r3, r9, r7
  smlabt lr, r3, r9, r7
  pkhtb r12, lr, r12, asr #16
  ssub16 r11, r11, r12
  stmia r0!, {r10, r11}
.endm
onw_update_rows:
  push {r4-r11, lr}
  sub sp, sp, #20  /* 36 + 20 B: sp stays 8-byte aligned */
  add r1, r0, r1, lsl #4  /* the table's end: 16 B a row */
  lsl r3, r3, #4  /* 8 int16 of x a group */
  stmia sp, {r0, r1, r2, r3}
  movw r5, #:lower16:1664525  /* the dither LCG's A and C: fixed.h's ONW_DITHER_A, _C (dense_update.c checks) */
  movt r5, #:upper16:1664525
  movw r6, #:lower16:1013904223
  movt r6, #:upper16:1013904223
1:
  ldr r12, [sp]
  ldmia r12, {r0, r3, r4}  /* w, g, u */
  ldrd r1, r2, [sp, #8]
  add r2, r1, r2  /* x end */
  movs r7, #0
  msr APSR_nzcvq, r7  /* clear Q */
2:
  lsr r7, r4, #16  /* the group's offset */
  mla r4, r4, r5, r6  /* the next dither word */
  ONW_UPDATE_HALF
  ONW_UPDATE_HALF  /* the group's second half: the same offset */
  cmp r1, r2
  bne 2b
  ldr r12, [sp]
  mrs r7, APSR
  str r7, [r12, #12]
  add r12, r12, #16
  str r12, [sp]
  ldr r7, [sp, #4]
  cmp r12, r7
  bne 1b
  add sp, sp, #20
  pop {r4-r11, pc}
  .size onw_update_rows, . - onw_update_rows
  .popsection
#endif
