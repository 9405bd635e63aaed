#include "onward/kernels.h"

#include "onward/fixed.h"

void onw_dense(const int16_t *w, const int16_t *x, uint16_t in_dim, uint16_t out_dim, int weight_frac,
               int relu, int16_t *y, uint32_t *saturations)
{
    uint16_t i, j;
    for (i = 0; i < out_dim; i++) {
        const int16_t *row = w + (uint32_t)i * in_dim;
        int64_t acc = 0;
        int16_t v;
        for (j = 0; j < in_dim; j++) {
            acc += (int32_t)row[j] * x[j];
        }
        v = onw_requant(acc, weight_frac, 0, saturations);
        y[i] = (relu && v < 0) ? 0 : v;
    }
}

void onw_dense_update(int16_t *w, const int16_t *a, const int16_t *b, const int16_t *x, uint16_t in_dim,
                      uint16_t out_dim, uint32_t lr_q, int shift, uint32_t key, uint32_t *saturations)
{
    uint16_t i, j;
    for (i = 0; i < out_dim; i++) {
        int32_t delta = b ? onw_sat16((int32_t)a[i] - b[i], saturations) : a[i];
        uint32_t base = (uint32_t)i * in_dim;
        int16_t *row = w + base;
        if (delta == 0) {
            continue; /* the update is exactly 0 whatever the rounding bits: skip the row */
        }
        for (j = 0; j < in_dim; j++) {
            int64_t product;
            if (x[j] == 0) {
                continue; /* likewise (ReLU zeros are common) */
            }
            product = (int64_t)(delta * x[j]) * (int64_t)lr_q;
            row[j] = onw_sat16(row[j] - onw_stochastic_shift(product, shift, onw_rand(key, base + j)),
                               saturations);
        }
    }
}
