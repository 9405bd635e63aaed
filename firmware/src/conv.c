/* Integer kernels of FFzero's convolution blocks; twins of host/nn/conv.py, tested bit for bit by
 * tests/test_conv.py. Loops run weight-major (each weight, or its sign, is read once and swept over every
 * position), so the +-1 response regenerates one random word per 32 weights. */
#include "onward/conv.h"

#include "onward/fixed.h"

#define ONW_NORM_BITS 15  /* the centred map is scaled to |c| <= 2^15 before its variance is taken */
#define ONW_STD_BITS 8    /* fractional bits of the integer std */
#define ONW_RECIP_BITS 24 /* fractional bits of the reciprocal of the std */

void onw_conv_acc(const int16_t *x, uint16_t in_ch, uint16_t height, uint16_t width, const int16_t *w,
                  uint16_t out_ch, uint8_t kh, uint8_t kw, int64_t *acc)
{
    uint32_t oh = (uint32_t)(height - kh + 1), ow = (uint32_t)(width - kw + 1), n = oh * ow;
    uint32_t c, i, ci, ky, kx, oy, ox;
    for (i = 0; i < (uint32_t)out_ch * n; i++) {
        acc[i] = 0;
    }
    for (c = 0; c < out_ch; c++) {
        int64_t *a = acc + c * n;
        for (ci = 0; ci < in_ch; ci++) {
            for (ky = 0; ky < kh; ky++) {
                for (kx = 0; kx < kw; kx++) {
                    int32_t wj = *w++;
                    const int16_t *row = x + ((uint32_t)ci * height + ky) * width + kx;
                    if (wj == 0) {
                        continue;
                    }
                    for (oy = 0; oy < oh; oy++, row += width) {
                        for (ox = 0; ox < ow; ox++) {
                            a[oy * ow + ox] += (int64_t)(wj * (int32_t)row[ox]);
                        }
                    }
                }
            }
        }
    }
}

void onw_conv_response(const int16_t *x, uint16_t in_ch, uint16_t height, uint16_t width, uint8_t kh, uint8_t kw,
                       uint32_t key, uint32_t first, int32_t *p)
{
    uint32_t oh = (uint32_t)(height - kh + 1), ow = (uint32_t)(width - kw + 1), n = oh * ow;
    uint32_t i, ci, ky, kx, oy, ox, j = first, word = onw_rand(key, first >> 5);
    for (i = 0; i < n; i++) {
        p[i] = 0;
    }
    for (ci = 0; ci < in_ch; ci++) {
        for (ky = 0; ky < kh; ky++) {
            for (kx = 0; kx < kw; kx++, j++) {
                const int16_t *row = x + ((uint32_t)ci * height + ky) * width + kx;
                if (j != first && (j & 31u) == 0) {
                    word = onw_rand(key, j >> 5);
                }
                if ((word >> (j & 31u)) & 1u) {
                    for (oy = 0; oy < oh; oy++, row += width) {
                        for (ox = 0; ox < ow; ox++) {
                            p[oy * ow + ox] += row[ox];
                        }
                    }
                } else {
                    for (oy = 0; oy < oh; oy++, row += width) {
                        for (ox = 0; ox < ow; ox++) {
                            p[oy * ow + ox] -= row[ox];
                        }
                    }
                }
            }
        }
    }
}

/* The per-channel constants of standardise (host/nn/conv.py): the sum, the power-of-two scaling of the
 * centred map and the reciprocal of its std. Returns 0 for a constant map (every standardised value is 0). */
static int standardise_setup(const int64_t *acc, uint32_t n, int frac, int64_t *sum_out, int *shift_out,
                             int64_t *inv_out)
{
    int64_t sum = 0, var;
    uint64_t m = 0, sq = 0;
    uint32_t i;
    int bits = 0, shift;
    for (i = 0; i < n; i++) {
        sum += acc[i];
    }
    for (i = 0; i < n; i++) {
        int64_t c = acc[i] * (int64_t)n - sum; /* n times the centred value: exact */
        uint64_t mag = c < 0 ? (uint64_t)(-c) : (uint64_t)c;
        m = mag > m ? mag : m;
    }
    if (m == 0) {
        return 0;
    }
    while (bits < 64 && (m >> bits) != 0) {
        bits++;
    }
    shift = bits - ONW_NORM_BITS;
    /* Two passes over the centred map (no buffer): the scaled values are recomputed, which is cheap. */
    for (i = 0; i < n; i++) {
        int64_t c = acc[i] * (int64_t)n - sum;
        c = shift > 0 ? onw_round_shift(c, shift) : c * ((int64_t)1 << -shift);
        sq += (uint64_t)(c * c);
    }
    var = (int64_t)(sq << (2 * ONW_STD_BITS)) / (int64_t)n;
    *inv_out = ((int64_t)1 << (frac + ONW_STD_BITS + ONW_RECIP_BITS)) / (int64_t)onw_isqrt((uint64_t)var);
    *sum_out = sum;
    *shift_out = shift;
    return 1;
}

static inline int64_t standardised(int64_t a, uint32_t n, int64_t sum, int shift, int64_t inv)
{
    int64_t c = a * (int64_t)n - sum;
    c = shift > 0 ? onw_round_shift(c, shift) : c * ((int64_t)1 << -shift);
    return onw_round_shift(c * inv, ONW_RECIP_BITS);
}

void onw_conv_normalise(const int64_t *acc, uint32_t n, int frac, int16_t beta_q, int16_t *y,
                        uint32_t *saturations)
{
    int64_t sum = 0, inv = 0;
    int shift = 0, varies = standardise_setup(acc, n, frac, &sum, &shift, &inv);
    uint32_t i;
    for (i = 0; i < n; i++) {
        int64_t v = varies ? standardised(acc[i], n, sum, shift, inv) : 0;
        y[i] = onw_sat16_inline(v + beta_q, saturations);
    }
}

void onw_conv_normalise_wide(const int64_t *acc, uint32_t n, int frac, int32_t beta_q, int32_t *y)
{
    int64_t sum = 0, inv = 0;
    int shift = 0, varies = standardise_setup(acc, n, frac, &sum, &shift, &inv);
    uint32_t i;
    for (i = 0; i < n; i++) {
        y[i] = (int32_t)((varies ? standardised(acc[i], n, sum, shift, inv) : 0) + beta_q);
    }
}

void onw_relu_maxpool(const int16_t *y, uint16_t ch, uint16_t height, uint16_t width, uint8_t ph, uint8_t pw,
                      int16_t *out)
{
    uint32_t c, py, px, dy, dx, qh = height / ph, qw = width / pw;
    for (c = 0; c < ch; c++) {
        const int16_t *map = y + (uint32_t)c * height * width;
        for (py = 0; py < qh; py++) {
            for (px = 0; px < qw; px++) {
                int16_t best = 0; /* ReLU: the max of the window and 0 */
                for (dy = 0; dy < ph; dy++) {
                    for (dx = 0; dx < pw; dx++) {
                        int16_t v = map[(py * ph + dy) * width + px * pw + dx];
                        best = v > best ? v : best;
                    }
                }
                *out++ = best;
            }
        }
    }
}

void onw_conv_project(const int16_t *m, const int32_t *y, uint32_t n, uint16_t dim, int64_t *z)
{
    uint32_t k, i;
    for (k = 0; k < dim; k++, m += n) {
        int64_t s = 0;
        for (i = 0; i < n; i++) {
            s += (int64_t)m[i] * y[i];
        }
        z[k] = s;
    }
}
