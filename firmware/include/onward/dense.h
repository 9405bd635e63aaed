/* Integer kernels of dense layers (dense.c, dense_update.c); the twins of host/nn/dense.py, named by one rule:
 * onw_<module>_<name> here is <name>_fixed in onward.nn.<module> (onw_dense: dense_fixed; onw_dense_acc: acc_fixed;
 * onw_dense_update: update_fixed), as onw_mlp_forward is onward.nn.mlp.forward_fixed. */
#ifndef ONWARD_DENSE_H
#define ONWARD_DENSE_H

#include <stdint.h>

#include "onward/entry.h"

/* y = requant(W x) to the input's format, ReLU if relu; W is out x in, Q(weight_frac). */
ONW_ENTRY void onw_dense(const int16_t *w, const int16_t *x, uint16_t in_dim, uint16_t out_dim, int weight_frac,
               int relu, int16_t *y, uint32_t *saturations);

/* acc[i] = sum_j W[i * stride + j] x[j] for j < in_dim, exact int64 sums (no requantisation): rows `stride`
 * int16 apart (stride >= in_dim). The SMLALD fast path needs W and x word-aligned, stride and in_dim even. */
void onw_dense_acc(const int16_t *w, uint32_t stride, const int16_t *x, uint16_t in_dim, uint16_t out_dim,
                   int64_t *acc);

/* W <- sat16(W - lr_q delta x^T / 2^shift), stochastically rounded as host/nn/dense.py's update_fixed defines
 * (firmware/src/dense_update.c), shift in [16, 48], where delta = sat16(a - b), or a itself when b is NULL. */
void onw_dense_update(int16_t *w, const int16_t *a, const int16_t *b, const int16_t *x, uint16_t in_dim,
                      uint16_t out_dim, uint32_t lr_q, int shift, uint32_t key, uint32_t *saturations);

#endif
