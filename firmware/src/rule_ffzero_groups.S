/* onw_ffzero_update_groups(w, word, groups, st), FFzero's dense update loop (firmware/src/rule_ffzero.c: its C side,
 * struct group_state and the pair table): `groups` (1-4) dither groups of 8 weights from w (word-aligned), their sign
 * bits from bit 0 of `word`: per group u = A u + C, then per pair what step_pair does with st->tab; st->u is left
 * at the last group's word, and st->flag gets bit 15 if a result left [-2^14, 2^14). Hand-scheduled (GCC spills
 * the table's base and recomputes it per pair: 68 instructions a group, here 38): a table entry's three words
 * come in one LDM (thr, q, q + 1 in r10-r12), the weights two words at a time (LDRD/STRD), and the range test is
 * SSAT16 to 15 bits, which sets the sticky Q flag when a half does not fit (read once per call). */
#include "onward/dsp.h"

#if ONW_DSP_KERNELS
  .syntax unified
  .thumb

  .pushsection .text.onw_ffzero_update_groups, "ax", %progbits
  .align 2
  .global onw_ffzero_update_groups
  .thumb_func
  .type onw_ffzero_update_groups, %function
onw_ffzero_update_groups:
  push {r3-r11, lr}
  ldm r3, {r4, r5, r6}  /* u, flag (kept on the stack), tab */
  movw r7, #:lower16:1664525  /* the dither LCG's A and C: fixed.h's ONW_DITHER_A, _C (rule_ffzero.c checks) */
  movt r7, #:upper16:1664525
  movw r8, #:lower16:1013904223
  movt r8, #:upper16:1013904223
  movs r3, #0
  msr APSR_nzcvq, r3  /* Q = 0 */
.macro ONW_FFZERO_PAIR bit, reg
  ubfx r3, r1, #\bit, #2  /* the pair's two sign bits */
  add r3, r6, r3, lsl #4  /* its table entry */
  ldm r3, {r10, r11, r12}  /* thr, q, q + 1 */
  usub16 r10, r9, r10  /* GE per half: o >= t */
  sel r10, r12, r11  /* the steps */
  ssub16 \reg, \reg, r10
  ssat16 r10, #15, \reg  /* Q |= a half outside [-2^14, 2^14) */
.endm
1:
  mla r4, r4, r7, r8  /* the group's dither word */
  pkhtb r9, r4, r4, asr #16  /* its top 16 bits in both halves */
  ldrd r5, lr, [r0]
  ONW_FFZERO_PAIR 0, r5
  ONW_FFZERO_PAIR 2, lr
  strd r5, lr, [r0], #8
  ldrd r5, lr, [r0]
  ONW_FFZERO_PAIR 4, r5
  ONW_FFZERO_PAIR 6, lr
  strd r5, lr, [r0], #8
  lsr r1, r1, #8
  subs r2, r2, #1
  bne 1b
  pop {r3}
  mrs r2, APSR
  ldr r5, [r3, #4]
  tst r2, #(1 << 27)  /* Q */
  it ne
  orrne r5, r5, #0x8000
  stm r3, {r4, r5}
  pop {r4-r11, pc}
  .size onw_ffzero_update_groups, . - onw_ffzero_update_groups
  .popsection
#endif
