/* The dense layers' forward-only weight update; twin of update_fixed in host/nn/dense.py, whose docstring is the
 * specification: per row, h = rand(key, i) and g = stochastic_shift(delta lr_q, shift - 16, h); per weight,
 * w <- sat16(w - floor((g x + o) / 2^16)), o the top 16 bits of the row's dither word: the LCG words after h, one
 * per 8 weights.
 *
 * The learning rate is folded into the row once, so when |g| < 2^15 a weight costs 32-bit arithmetic only:
 *  - portable C (every target): one 32-bit multiply-add, a shift and a saturation per weight;
 *  - Cortex-M4/M7 (DSP extension, dense_update_rows.S): eight weights (a dither group) per iteration, each a
 *    SMLABB/SMLABT (g x + o),
 *    two steps packed by one PKHTB (the top halves are the floors) and subtracted by one SSUB16. SSUB16 wraps instead of
 *    saturating; it cannot overflow while every old weight is in [-2^14, 2^14) (|step| <= 2^14), which SSAT16 #15
 *    checks for free: it sets the sticky Q flag otherwise. A row that set Q (rare: a weight past half the int16
 *    range) is undone exactly (the wrap is a bijection) and redone by the saturating loop, which counts.
 * Rows with |g| >= 2^15 (huge learning rates) take the int64 loop. All paths give identical weights and
 * saturation counts (tests/test_dense_update.py, on the emulated ELF against the reference). */
#include "onward/dsp.h"
#include "onward/fixed.h"
#include "onward/dense.h"

#define GROUP ONW_DITHER_GROUP

/* The row's factor: delta lr_q with 16 fractional bits left, stochastically rounded (|result| < 2^47):
 * stochastic_shift(v, s1, r) with s1 = shift - 16 in [0, 32] (host/spec.py keeps shift in [16, 48]), so that the
 * offset is the top s1 bits of r: fixed.h's onw_stochastic_shift_inline without its branch for s1 > 32, which
 * would cost 88 B of flash here. */
static inline int64_t row_factor(int32_t delta, uint32_t lr_q, int s1, uint32_t r)
{
    int64_t v = (int64_t)delta * lr_q;
    return s1 == 0 ? v : (v + (int64_t)(r >> (32 - s1))) >> s1;
}

/* Any g (|g| >= 2^15 takes it: huge learning rates only): the steps in int64. */
static void update_row_wide(int16_t *w, int64_t g, const int16_t *x, uint32_t n, uint32_t u, uint32_t *saturations)
{
    uint32_t j;
    for (j = 0; j < n; j++) {
        if (j > 0 && j % GROUP == 0) {
            u = onw_dither_next(u);
        }
        w[j] = onw_sat16_inline(w[j] - onw_dither_update(x[j], g, u >> (32 - ONW_DITHER_BITS)), saturations);
    }
}

/* floor((g x + o) / 2^16) for |g| < 2^15: |g x| <= 2^30, so the sum and the step fit int32. */
static inline int32_t narrow_step(int32_t g, int16_t x, uint32_t u)
{
    return (g * x + (int32_t)(u >> (32 - ONW_DITHER_BITS))) >> ONW_DITHER_BITS;
}

/* |g| < 2^15: 32-bit steps. Weights [first, n) from the dither word u of weight `first` (a multiple of GROUP); the
 * weights before `wrapped` hold old - step mod 2^16 (the assembly loop's wrap, see update_batch): each old value is
 * recovered first, exactly, since the wrap is a bijection. The portable kernel's loop (first = wrapped = 0), and
 * on DSP cores the rows' tails and the rows redone. */
static void update_row_narrow(int16_t *w, int32_t g, const int16_t *x, uint32_t first, uint32_t wrapped, uint32_t n,
                              uint32_t u, uint32_t *saturations)
{
    uint32_t j;
    for (j = first; j < n; j++) {
        int32_t step, old = w[j];
        if (j > first && j % GROUP == 0) {
            u = onw_dither_next(u);
        }
        step = narrow_step(g, x[j], u);
        if (j < wrapped) {
            old = (int16_t)(uint16_t)((uint32_t)(uint16_t)old + (uint32_t)step);
        }
        w[j] = onw_sat16_inline(old - step, saturations);
    }
}

#if ONW_DSP_KERNELS
/* A row for the assembly loop: its weights, factor and first dither word; the loop leaves the APSR it ended with
 * (its Q bit set if an old weight was outside [-2^14, 2^14): the row must then be undone and redone). */
struct update_row {
    int16_t *w;
    int32_t g;
    uint32_t u;
    uint32_t apsr;
};
#define APSR_Q (1u << 27)
#define BATCH 8 /* rows per call: 128 B of stack */

/* The group loop, in assembly (dense_update_rows.S, with its registers): weights [0, 8 groups) of `count` rows (row
 * and x word-aligned, count >= 1, groups >= 1); each row's APSR is stored in the table. */
void onw_update_rows(struct update_row *rows, uint32_t count, const int16_t *x, uint32_t groups);
/* dense_update_rows.S spells the LCG's constants out: they must be fixed.h's */
typedef char onw_check_dither_constants[ONW_DITHER_A == 1664525u && ONW_DITHER_C == 1013904223u ? 1 : -1];

/* The batch's whole groups in assembly; then each row's tail (weights [groups * GROUP, n), from its dither word), or
 * for a row that set Q the whole row again, the wrapped groups recovered first. */
static void update_batch(struct update_row *rows, uint32_t count, const int16_t *x, uint32_t n,
                         uint32_t *saturations)
{
    uint32_t k, groups = n / GROUP;
    onw_update_rows(rows, count, x, groups);
    for (k = 0; k < count; k++) {
        struct update_row *r = &rows[k];
        uint32_t u = r->u, first = groups * GROUP, j;
        if (r->apsr & APSR_Q) {
            first = 0;
        } else if (first == n) {
            continue; /* no tail */
        } else {
            for (j = 0; j < groups; j++) {
                u = onw_dither_next(u);
            }
        }
        update_row_narrow(r->w, r->g, x, first, groups * GROUP, n, u, saturations);
    }
}
#endif

void onw_dense_update(int16_t *w, const int16_t *a, const int16_t *b, const int16_t *x, uint16_t in_dim,
                      uint16_t out_dim, uint32_t lr_q, int shift, uint32_t key, uint32_t *saturations)
{
    const int s1 = shift - ONW_DITHER_BITS;
    uint32_t i;
    int16_t *row = w;
#if ONW_DSP_KERNELS
    struct update_row batch[BATCH];
    uint32_t count = 0;
    /* every row is word-aligned when W is and rows are an even number of int16 */
    const int fast = in_dim >= GROUP && (in_dim & 1u) == 0 && (((uintptr_t)w | (uintptr_t)x) & 3u) == 0;
#endif
    for (i = 0; i < out_dim; i++, row += in_dim) {
        int32_t delta = b ? onw_sat16_inline((int32_t)a[i] - b[i], saturations) : a[i];
        int64_t g;
        uint32_t u;
        if (delta == 0) {
            continue; /* g = 0 and every step floor(o / 2^16) = 0: nothing moves */
        }
        u = onw_rand_inline(key, i);
        g = row_factor(delta, lr_q, s1, u);
        u = onw_dither_next(u); /* word 0 rounded g; the groups take words 1, 2, ... */
        if (g < INT16_MIN || g > INT16_MAX) {
            update_row_wide(row, g, x, in_dim, u, saturations);
            continue;
        }
#if ONW_DSP_KERNELS
        if (fast) {
            batch[count].w = row;
            batch[count].g = (int32_t)g;
            batch[count].u = u;
            if (++count == BATCH) {
                update_batch(batch, count, x, in_dim, saturations);
                count = 0;
            }
            continue;
        }
#endif
        update_row_narrow(row, (int32_t)g, x, 0, 0, in_dim, u, saturations);
    }
#if ONW_DSP_KERNELS
    if (count > 0) {
        update_batch(batch, count, x, in_dim, saturations);
    }
#endif
}
