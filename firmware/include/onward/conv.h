/* Integer kernels of FFzero's convolution blocks; twins of host/nn/conv.py (the spec), function for function.
 *
 * Layouts are row-major and channel first: a map is channels x height x width; a 1-D signal is a map of height 1
 * with 1 x k kernels. Filters are out x in x kh x kw; filter c is one contiguous block of in*kh*kw weights.
 * Convolutions are valid (no padding) with stride 1: (height-kh+1) x (width-kw+1) positions. */
#ifndef ONWARD_CONV_H
#define ONWARD_CONV_H

#include <stdint.h>

/* acc[c*positions + i] = sum_j w[c][j] * patch_i[j]: exact int64, Q(weight_frac + activation_frac). */
void onw_conv_acc(const int16_t *x, uint16_t in_ch, uint16_t height, uint16_t width, const int16_t *w,
                  uint16_t out_ch, uint8_t kh, uint8_t kw, int64_t *acc);

/* p[i] = sum_j r_j * patch_i[j] for one filter, r_j = +1 if bit (first+j)%32 of onw_rand(key, (first+j)/32) is
 * set, else -1: additions only. The filter's accumulators perturbed by +-2^s LSB along r are acc +- (p << s). */
void onw_conv_response(const int16_t *x, uint16_t in_ch, uint16_t height, uint16_t width, uint8_t kh, uint8_t kw,
                       uint32_t key, uint32_t first, int32_t *p);

/* One channel's n accumulators (|acc| * n < 2^61, n < 2^16) -> int16 Q(frac), frac <= 14:
 * (acc - mean) / std + beta_q, in integers (host/nn/conv.py standardise); saturations are counted.
 * What ReLU and pooling pass to the next block. */
void onw_conv_normalise(const int64_t *acc, uint32_t n, int frac, int16_t beta_q, int16_t *y,
                        uint32_t *saturations);
/* The same map as int32 Q(frac), frac <= 22, without saturation (|beta_q| <= 2^30 - sqrt(n) 2^frac): the map
 * whose projection the loss uses. */
void onw_conv_normalise_wide(const int64_t *acc, uint32_t n, int frac, int32_t beta_q, int32_t *y);

/* out = max-pool by ph x pw (stride = window, remainder dropped) of max(y, 0); y is ch x height x width. */
void onw_relu_maxpool(const int16_t *y, uint16_t ch, uint16_t height, uint16_t width, uint8_t ph, uint8_t pw,
                      int16_t *out);

/* z[k] = sum_i m[k*n + i] * y[i], k < dim: one channel's wide map (Q(frac)) through its Q15 matrix, int64
 * Q(15+frac), exact for n < 2^16. */
void onw_conv_project(const int16_t *m, const int32_t *y, uint32_t n, uint16_t dim, int64_t *z);

#endif
