/* Integer kernels of dense layers; twins of host/nn/dense.py.
 *
 * onw_dense has two implementations that give identical results (outputs and saturation counts):
 *  - the portable C loop (every target; forced with -DONW_PORTABLE_KERNELS), and
 *  - on Arm cores with the DSP extension (Cortex-M4/M7/M33...), SMLALD-based code: two 16x16 products
 *    added to an exact 64-bit accumulator per instruction. No 32-bit accumulation (SMLAD) is used anywhere:
 *    (-32768)*(-32768)*2 = 2^31 already overflows int32.
 * The DSP path has a hand-scheduled Thumb-2 core (onw_dense_pairs, below) for the common case (x and W
 * word-aligned, in_dim even and >= 6, weight_frac in [0, 16]); the rest (an odd last row, odd in_dim, unaligned
 * rows or input) takes the row-at-a-time loop of `dot`, with SMLALD on pairs. tests/test_kernels.py compares both
 * builds with the reference.
 *
 * onw_dense_acc is the same product without the requantisation: the exact int64 sums, rows `stride` int16 apart
 * (FFzero's blocks: the inputs, the bias and a padding column per row). Its fast path is the same assembly core
 * built to store the accumulators and step over each row's tail. */
#include "onward/dense.h"

#include "onward/dsp.h"
#include "onward/fixed.h"

#if ONW_DSP_KERNELS

/* The aligned core, in Thumb-2 assembly: GCC cannot keep the 14 registers it needs live across the loop
 * (it spills and falls back to single loads: ~1.5 instructions per MAC instead of ~0.75).
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
 * The job (struct dense_job) is copied to the stack frame; words 0-7 are what the pair loop reloads, words 8-14
 * what the requantisation needs. */
struct dense_job {
    const int16_t *x, *x_end;
    uint32_t init_lo0, init_hi0, init_lo1, init_hi1; /* the accumulators' start: bias (see above) */
    uint32_t chunk_entry;                            /* where the unrolled chunk loop is entered */
    uint32_t first_entry;                            /* the 1- or 2-word remainder code, or chunk_entry */
    uint32_t floor;                                  /* c: 32768 for ReLU, 0 for a plain layer */
    uint32_t shift16, shift;                         /* s + 16, s (raw: the bytes from a row's end to the next) */
    void *y0, *y1, *y0_end;                          /* outputs i, i + half; y0 ends at y + half */
    uint32_t *saturations;
};

/* Entry addresses (Thumb bit set) of one core: chunks 0-4 of the unrolled loop, then remainder 1, 2. */
#define DENSE_ENTRIES 7
extern const uint32_t onw_dense_pairs_entries[DENSE_ENTRIES], onw_dense_pairs_raw_entries[DENSE_ENTRIES];
void onw_dense_pairs(const struct dense_job *job, const int16_t *w0, const int16_t *w1);
void onw_dense_pairs_raw(const struct dense_job *job, const int16_t *w0, const int16_t *w1);

#define DENSE_UNROLL 5
#define CHUNK_WORDS 3
#define JOB_WORDS 15

__asm__(
    /* CHUNK: 3 words of x, 3 of each row, 12 MACs */
    ".macro ONW_CHUNK\n"
    "  ldmia r0!, {r8, r9, r10}\n"
    "  ldmia r1!, {r11, r12, lr}\n"
    "  smlald r4, r5, r8, r11\n"
    "  smlald r4, r5, r9, r12\n"
    "  smlald r4, r5, r10, lr\n"
    "  ldmia r2!, {r11, r12, lr}\n"
    "  smlald r6, r7, r8, r11\n"
    "  smlald r6, r7, r9, r12\n"
    "  smlald r6, r7, r10, lr\n"
    ".endm\n"
    /* REQUANT: accumulator lo/hi -> usat16(u - c) at *yp++ (r3 = c, r8 = s+16, r9 = s; r12 scratch);
     * sathi/satmax: the out-of-line saturation paths, back: where they resume with u in r12 */
    ".macro ONW_REQUANT lo, hi, yp, sathi, satmax, back\n"
    "  cbnz \\hi, \\sathi\n"
    "  lsrs r12, \\lo, r8\n"
    "  bne \\satmax\n"
    "  lsr r12, \\lo, r9\n"
    "\\back:\n"
    "  sub r12, r12, r3\n"
    "  usat r12, #16, r12\n"
    "  strh r12, [\\yp], #2\n"
    ".endm\n"
    /* SATURATED: the out-of-line paths of both rows: u = hi < 0 ? 0 : 65535 when hi != 0 (sNh), 65535 (sNm); Z set
     * for row 0, clear for row 1 (MOVS; nothing below touches the flags); then count it (r0 and r3 are free
     * here; r3 = c is reloaded) and resume at the row's back label */
    ".macro ONW_SATURATED s0h, s0m, b0, s1h, s1m, b1\n"
    "\\s0h:\n"
    "  mvn r12, r5, asr #31\n" /* hi < 0: 0; else all ones */
    "  b 1f\n"
    "\\s0m:\n"
    "  mov r12, #-1\n"
    "1:\n"
    "  movs r0, #0\n"
    "  b 3f\n"
    "\\s1h:\n"
    "  mvn r12, r7, asr #31\n"
    "  b 2f\n"
    "\\s1m:\n"
    "  mov r12, #-1\n"
    "2:\n"
    "  movs r0, #1\n"
    "3:\n"
    "  lsr r12, r12, #16\n"
    "  ldr r3, [sp, #56]\n" /* job.saturations */
    "  cbz r3, 4f\n"
    "  ldr r0, [r3]\n"
    "  add r0, r0, #1\n"
    "  str r0, [r3]\n"
    "4:\n"
    "  ldr r3, [sp, #32]\n" /* job.floor */
    "  beq \\b0\n"
    "  b \\b1\n"
    ".endm\n"
    /* raw: store the int64 accumulators (y0, y1 point to int64) and add the row tail (shift16) to both rows */
    ".macro ONW_DENSE_PAIRS name, raw\n"
    "  .pushsection .text.\\name, \"ax\", %progbits\n"
    "  .align 2\n"
    "  .global \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #60\n" /* the job (60 B): sp stays 8-byte aligned */
    "  ldmia r0!, {r3-r10}\n" /* copy the job (15 words) to sp */
    "  stmia sp, {r3-r10}\n"
    "  ldmia r0, {r3-r9}\n"
    "  add r12, sp, #32\n"
    "  stmia r12, {r3-r9}\n"
    ".L\\name\\()_pair:\n"
    "  ldmia sp, {r0, r3, r4, r5, r6, r7, r10, pc}\n" /* x, x_end, accumulators, chunk entry; jump */
    ".L\\name\\()_rem1:\n"
    "  ldr r8, [r0], #4\n"
    "  ldr r11, [r1], #4\n"
    "  smlald r4, r5, r8, r11\n"
    "  ldr r11, [r2], #4\n"
    "  smlald r6, r7, r8, r11\n"
    "  bx r10\n"
    ".L\\name\\()_rem2:\n"
    "  ldmia r0!, {r8, r9}\n"
    "  ldmia r1!, {r11, r12}\n"
    "  smlald r4, r5, r8, r11\n"
    "  smlald r4, r5, r9, r12\n"
    "  ldmia r2!, {r11, r12}\n"
    "  smlald r6, r7, r8, r11\n"
    "  smlald r6, r7, r9, r12\n"
    "  bx r10\n"
    ".L\\name\\()_c0:\n"
    "  ONW_CHUNK\n"
    ".L\\name\\()_c1:\n"
    "  ONW_CHUNK\n"
    ".L\\name\\()_c2:\n"
    "  ONW_CHUNK\n"
    ".L\\name\\()_c3:\n"
    "  ONW_CHUNK\n"
    ".L\\name\\()_c4:\n"
    "  ONW_CHUNK\n"
    "  cmp r0, r3\n"
    "  bne .L\\name\\()_c0\n"
    "  add r12, sp, #32\n"
    "  ldmia r12, {r3, r8, r9, r10, r11, lr}\n" /* c, s+16, s, y0, y1, y0_end */
    "  .if \\raw\n"
    "  strd r4, r5, [r10], #8\n"
    "  strd r6, r7, [r11], #8\n"
    "  add r1, r1, r8\n"
    "  add r2, r2, r8\n"
    "  .else\n"
    "  ONW_REQUANT r4, r5, r10, .L\\name\\()_s0h, .L\\name\\()_s0m, .L\\name\\()_b0\n"
    "  ONW_REQUANT r6, r7, r11, .L\\name\\()_s1h, .L\\name\\()_s1m, .L\\name\\()_b1\n"
    "  .endif\n"
    "  strd r10, r11, [sp, #44]\n"
    "  cmp r10, lr\n"
    "  bne .L\\name\\()_pair\n"
    "  add sp, sp, #60\n"
    "  pop {r4-r11, pc}\n"
    "  .if \\raw == 0\n"
    "  ONW_SATURATED .L\\name\\()_s0h, .L\\name\\()_s0m, .L\\name\\()_b0, .L\\name\\()_s1h, .L\\name\\()_s1m, "
    ".L\\name\\()_b1\n"
    "  .endif\n"
    "  .size \\name, . - \\name\n"
    "  .popsection\n"
    "  .pushsection .rodata.\\name\\()_entries, \"a\", %progbits\n"
    "  .align 2\n"
    "  .global \\name\\()_entries\n"
    "  .type \\name\\()_entries, %object\n"
    "\\name\\()_entries:\n"
    "  .word .L\\name\\()_c0 + 1, .L\\name\\()_c1 + 1, .L\\name\\()_c2 + 1, .L\\name\\()_c3 + 1, .L\\name\\()_c4 + 1\n"
    "  .word .L\\name\\()_rem1 + 1, .L\\name\\()_rem2 + 1\n"
    "  .size \\name\\()_entries, . - \\name\\()_entries\n"
    "  .popsection\n"
    ".endm\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  ONW_DENSE_PAIRS onw_dense_pairs, 0\n"
    "  ONW_DENSE_PAIRS onw_dense_pairs_raw, 1\n"
    "  .purgem ONW_DENSE_PAIRS\n"
    "  .purgem ONW_CHUNK\n"
    "  .purgem ONW_REQUANT\n"
    "  .purgem ONW_SATURATED\n");

/* Fills the job's loop part (words 0-7) for rows of in_dim inputs: x, its end, the accumulators' start, the entries. */
static void job_loop(struct dense_job *job, const uint32_t *entries, const int16_t *x, uint16_t in_dim,
                     uint32_t init)
{
    uint32_t words = in_dim / 2u, chunks = words / CHUNK_WORDS, rem = words % CHUNK_WORDS;
    job->x = x;
    job->x_end = x + in_dim;
    job->init_lo0 = job->init_lo1 = init;
    job->init_hi0 = job->init_hi1 = 0;
    job->chunk_entry = entries[(DENSE_UNROLL - chunks % DENSE_UNROLL) % DENSE_UNROLL];
    job->first_entry = rem ? entries[DENSE_UNROLL - 1 + rem] : job->chunk_entry;
}

/* Rows [0, 2*half) through the assembly core; the caller checked alignment, in_dim and weight_frac. */
static void dense_pairs(const int16_t *w, const int16_t *x, uint16_t in_dim, uint32_t half, int weight_frac,
                        int relu, int16_t *y, uint32_t *saturations)
{
    uint32_t s = (uint32_t)weight_frac, i;
    struct dense_job job;
    job_loop(&job, onw_dense_pairs_entries, x, in_dim, (s > 0 ? (uint32_t)1 << (s - 1) : 0) + ((uint32_t)1 << (s + 15)));
    job.floor = relu ? 32768u : 0u;
    job.shift16 = s + 16;
    job.shift = s;
    job.y0 = y;
    job.y1 = y + half;
    job.y0_end = y + half;
    job.saturations = saturations;
    onw_dense_pairs(&job, w, w + half * in_dim);
    if (!relu) { /* the core stored v + 32768 mod 2^16: flip bit 15 back, two outputs a word (LDR/STR: any alignment) */
        for (i = 0; i < half; i++) {
            uint32_t pair;
            __builtin_memcpy(&pair, y + 2 * i, sizeof pair);
            pair ^= 0x80008000u;
            __builtin_memcpy(y + 2 * i, &pair, sizeof pair);
        }
    }
}

/* The raw core: acc[i] and acc[i + half] for rows [0, 2*half), `stride` int16 apart; the caller checked alignment,
 * stride (even) and in_dim (even, >= 6). */
static void dense_acc_pairs(const int16_t *w, uint32_t stride, const int16_t *x, uint16_t in_dim, uint32_t half,
                            int64_t *acc)
{
    struct dense_job job;
    job_loop(&job, onw_dense_pairs_raw_entries, x, in_dim, 0);
    job.floor = 0;
    job.shift16 = 2u * (stride - in_dim); /* bytes from the end of a row's inputs to the next row */
    job.shift = 0;
    job.y0 = acc;
    job.y1 = acc + half;
    job.y0_end = acc + half;
    job.saturations = 0;
    onw_dense_pairs_raw(&job, w, w + half * stride);
}

typedef char onw_check_job_size[sizeof(struct dense_job) == 4 * JOB_WORDS ? 1 : -1];
#endif /* ONW_DSP_KERNELS */

/* One row's exact sum, one MAC at a time: the readable definition of both kernels below. (SMLALD on pairs here
 * would be larger, and slower on the short rows that take this path: f1_ffzero_regression's 2-input layer.) */
static int64_t dot(const int16_t *row, const int16_t *x, uint32_t in_dim)
{
    int64_t acc = 0;
    uint32_t j;
    for (j = 0; j < in_dim; j++) {
        acc += (int32_t)row[j] * x[j];
    }
    return acc;
}

/* Rows [first, out_dim) one at a time: the portable kernel, and the DSP cores' odd last row and odd or unaligned
 * shapes (small models only: every example's layers take the assembly cores). */
static void dense_acc_rows(const int16_t *w, uint32_t stride, const int16_t *x, uint16_t in_dim, uint32_t first,
                           uint16_t out_dim, int64_t *acc)
{
    uint32_t i;
    for (i = first; i < out_dim; i++) {
        acc[i] = dot(w + i * stride, x, in_dim);
    }
}

static void dense_rows(const int16_t *w, const int16_t *x, uint16_t in_dim, uint32_t first, uint16_t out_dim,
                       int weight_frac, int relu, int16_t *y, uint32_t *saturations)
{
    uint32_t i;
    for (i = first; i < out_dim; i++) {
        int16_t v = onw_requant(dot(w + i * in_dim, x, in_dim), weight_frac, 0, saturations);
        y[i] = (relu && v < 0) ? 0 : v;
    }
}

void onw_dense_acc(const int16_t *w, uint32_t stride, const int16_t *x, uint16_t in_dim, uint16_t out_dim,
                   int64_t *acc)
{
    uint32_t first = 0;
#if ONW_DSP_KERNELS
    uint32_t half = out_dim / 2u;
    if (half > 0 && in_dim >= 2 * CHUNK_WORDS && (in_dim & 1u) == 0 && (stride & 1u) == 0 &&
        (((uintptr_t)w | (uintptr_t)x) & 3u) == 0) {
        dense_acc_pairs(w, stride, x, in_dim, half, acc);
        first = 2u * half;
    }
#endif
    dense_acc_rows(w, stride, x, in_dim, first, out_dim, acc);
}

void onw_dense(const int16_t *w, const int16_t *x, uint16_t in_dim, uint16_t out_dim, int weight_frac,
               int relu, int16_t *y, uint32_t *saturations)
{
    uint32_t first = 0;
#if ONW_DSP_KERNELS
    uint32_t half = out_dim / 2u;
    if (half > 0 && in_dim >= 2 * CHUNK_WORDS && (in_dim & 1u) == 0 && weight_frac >= 0 && weight_frac <= 16 &&
        (((uintptr_t)w | (uintptr_t)x) & 3u) == 0) {
        dense_pairs(w, x, in_dim, half, weight_frac, relu, y, saturations);
        first = 2u * half;
    }
#endif
    dense_rows(w, x, in_dim, first, out_dim, weight_frac, relu, y, saturations);
}
