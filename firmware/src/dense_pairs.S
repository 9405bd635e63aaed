/* onw_dense_pairs and onw_dense_pairs_raw: the SMLALD core of onw_dense and onw_dense_acc (firmware/src/dense.c: the
 * job they read, struct dense_job, and when the core is taken). In assembly because GCC cannot keep the 14
 * registers it needs live across the loop (it spills and falls back to single loads: ~1.5 instructions per MAC
 * instead of ~0.75).
 *
 * It computes rows i and i + half together for i in [0, half): every loaded word of x (two inputs) serves
 * both rows. Registers in the loop:
 *   r0 x pointer, r1 row i pointer, r2 row i+half pointer, r3 end of x,
 *   r4:r5 and r6:r7 the two 64-bit accumulators, r8-r10 three words of x, r11/r12/lr three words of W.
 * A chunk (3 words = 6 inputs, 12 MACs) is LDM x, LDM w0, 3 SMLALD, LDM w1, 3 SMLALD: 9 instructions.
 * The chunk loop is unrolled 5 times and entered Duff-style; the 1 or 2 words of in_dim/2 mod 3 are done
 * first. Each pair of rows then reloads its state from the job with one LDM (which also jumps: the entry
 * address is its last word, loaded into pc).
 *
 * Requantisation needs no 64-bit shift: the accumulators start at
 * half + 2^(s+15) (half = 2^(s-1) rounds half up; the 2^(s+15) bias maps the int16 range of the result to
 * [0, 2^(s+16)) ), so the result is in range iff hi == 0 and lo >> (s+16) == 0, and u = lo >> s is then
 * v + 32768, v = sat16((acc + half) >> s) (adding a multiple of 2^s commutes with the floor division). Out of
 * range values branch to an out-of-line path that counts the saturation and sets u to 0 or 65535.
 * One core serves ReLU and plain layers: it stores usat16(u - c), c a word of the job. ReLU: c = 32768 gives
 * max(v, 0). Plain: c = 0 stores u itself, v with its bit 15 flipped, which dense_pairs flips back afterwards
 * (one EOR per two outputs: plain layers are the narrow output layers). A ReLU output costs the same two
 * instructions as a core of its own (SUB, USAT) and the firmware carries one core instead of two (430 B).
 * On a 64x64 layer this is 0.975 executed instructions per MAC on a Cortex-M4 (the portable loop: 5.75);
 * `onward report` measures it.
 *
 * The job (struct dense_job in dense.c, JOB_WORDS words) is copied to the stack frame; words 0-7 are what the pair
 * loop reloads, words 8-14 what the requantisation needs: [sp, #32] the floor c, [sp, #44] y0 and y1, [sp, #56]
 * the saturation counter. */
#include "onward/dsp.h"

#if ONW_DSP_KERNELS
  .syntax unified
  .thumb

/* CHUNK: 3 words of x, 3 of each row, 12 MACs */
.macro ONW_CHUNK
  ldmia r0!, {r8, r9, r10}
  ldmia r1!, {r11, r12, lr}
  smlald r4, r5, r8, r11
  smlald r4, r5, r9, r12
  smlald r4, r5, r10, lr
  ldmia r2!, {r11, r12, lr}
  smlald r6, r7, r8, r11
  smlald r6, r7, r9, r12
  smlald r6, r7, r10, lr
.endm
/* REQUANT: accumulator lo/hi -> usat16(u - c) at *yp++ (r3 = c, r8 = s+16, r9 = s; r12 scratch);
 * sathi/satmax: the out-of-line saturation paths, back: where they resume with u in r12 */
.macro ONW_REQUANT lo, hi, yp, sathi, satmax, back
  cbnz \hi, \sathi
  lsrs r12, \lo, r8
  bne \satmax
  lsr r12, \lo, r9
\back:
  sub r12, r12, r3
  usat r12, #16, r12
  strh r12, [\yp], #2
.endm
/* SATURATED: the out-of-line paths of both rows: u = hi < 0 ? 0 : 65535 when hi != 0 (sNh), 65535 (sNm); Z set
 * for row 0, clear for row 1 (MOVS; nothing below touches the flags); then count it (r0 and r3 are free
 * here; r3 = c is reloaded) and resume at the row's back label */
.macro ONW_SATURATED s0h, s0m, b0, s1h, s1m, b1
\s0h:
  mvn r12, r5, asr #31  /* hi < 0: 0; else all ones */
  b 1f
\s0m:
  mov r12, #-1
1:
  movs r0, #0
  b 3f
\s1h:
  mvn r12, r7, asr #31
  b 2f
\s1m:
  mov r12, #-1
2:
  movs r0, #1
3:
  lsr r12, r12, #16
  ldr r3, [sp, #56]  /* job.saturations */
  cbz r3, 4f
  ldr r0, [r3]
  add r0, r0, #1
  str r0, [r3]
4:
  ldr r3, [sp, #32]  /* job.floor */
  beq \b0
  b \b1
.endm
/* raw: store the int64 accumulators (y0, y1 point to int64) and add the row tail (shift16) to both rows */
.macro ONW_DENSE_PAIRS name, raw
  .pushsection .text.\name, "ax", %progbits
  .align 2
  .global \name
  .type \name, %function
  .thumb_func
\name:
  push {r4-r11, lr}
  sub sp, sp, #60  /* the job (60 B): sp stays 8-byte aligned */
  ldmia r0!, {r3-r10}  /* copy the job (15 words) to sp */
  stmia sp, {r3-r10}
  ldmia r0, {r3-r9}
  add r12, sp, #32
  stmia r12, {r3-r9}
.L\name\()_pair:
  ldmia sp, {r0, r3, r4, r5, r6, r7, r10, pc}  /* x, x_end, accumulators, chunk entry; jump */
.L\name\()_rem1:
  ldr r8, [r0], #4
  ldr r11, [r1], #4
  smlald r4, r5, r8, r11
  ldr r11, [r2], #4
  smlald r6, r7, r8, r11
  bx r10
.L\name\()_rem2:
  ldmia r0!, {r8, r9}
  ldmia r1!, {r11, r12}
  smlald r4, r5, r8, r11
  smlald r4, r5, r9, r12
  ldmia r2!, {r11, r12}
  smlald r6, r7, r8, r11
  smlald r6, r7, r9, r12
  bx r10
.L\name\()_c0:
  ONW_CHUNK
.L\name\()_c1:
  ONW_CHUNK
.L\name\()_c2:
  ONW_CHUNK
.L\name\()_c3:
  ONW_CHUNK
.L\name\()_c4:
  ONW_CHUNK
  cmp r0, r3
  bne .L\name\()_c0
  add r12, sp, #32
  ldmia r12, {r3, r8, r9, r10, r11, lr}  /* c, s+16, s, y0, y1, y0_end */
  .if \raw
  strd r4, r5, [r10], #8
  strd r6, r7, [r11], #8
  add r1, r1, r8
  add r2, r2, r8
  .else
  ONW_REQUANT r4, r5, r10, .L\name\()_s0h, .L\name\()_s0m, .L\name\()_b0
  ONW_REQUANT r6, r7, r11, .L\name\()_s1h, .L\name\()_s1m, .L\name\()_b1
  .endif
  strd r10, r11, [sp, #44]
  cmp r10, lr
  bne .L\name\()_pair
  add sp, sp, #60
  pop {r4-r11, pc}
  .if \raw == 0
  ONW_SATURATED .L\name\()_s0h, .L\name\()_s0m, .L\name\()_b0, .L\name\()_s1h, .L\name\()_s1m, .L\name\()_b1
  .endif
  .size \name, . - \name
  .popsection
  .pushsection .rodata.\name\()_entries, "a", %progbits
  .align 2
  .global \name\()_entries
  .type \name\()_entries, %object
\name\()_entries:
  .word .L\name\()_c0 + 1, .L\name\()_c1 + 1, .L\name\()_c2 + 1, .L\name\()_c3 + 1, .L\name\()_c4 + 1
  .word .L\name\()_rem1 + 1, .L\name\()_rem2 + 1
  .size \name\()_entries, . - \name\()_entries
  .popsection
.endm
  ONW_DENSE_PAIRS onw_dense_pairs, 0
  ONW_DENSE_PAIRS onw_dense_pairs_raw, 1
#endif
