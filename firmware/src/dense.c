/* Integer kernels of dense layers; twins of host/nn/dense.py.
 *
 * onw_dense has two implementations that give identical results (outputs and saturation counts):
 *  - the portable C loop (every target; forced with -DONW_PORTABLE_KERNELS), and
 *  - on Arm cores with the DSP extension (Cortex-M4/M7/M33...), SMLALD-based code: two 16x16 products
 *    added to an exact 64-bit accumulator per instruction. No 32-bit accumulation (SMLAD) is used anywhere:
 *    (-32768)*(-32768)*2 = 2^31 already overflows int32.
 * The DSP path has a hand-scheduled Thumb-2 core (onw_dense_pairs, in dense_pairs.S) for the common case (x and W
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

/* The aligned core is assembly, with its design and its registers: dense_pairs.S.
 *
 * The job (struct dense_job) is what the core reads, copied to its stack frame: its layout is the assembly's (words
 * 0-7 reloaded per pair of rows, 8-14 for the requantisation). */
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
