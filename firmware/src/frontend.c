/* The frozen feature extractor: the operators of onw_tfl_ops in order on two ping-pong int8 buffers, then the cut
 * tensor rescaled to the head's Q(ONW_ACT_FRAC) inputs; the twin of host/tflite/frontend.py (Frontend.features_q). */
#include "onward/runtime.h"

#if ONW_FRONTEND
#include "onward/fixed.h"
#include "onward/tflite.h"

static int8_t frontend_buffers[2][ONW_FRONTEND_MAX_TENSOR];

/* Neither inlined nor specialised (GCC's noclone): app.c calls it for TRAIN, TRAIN_BATCH and INFER, and `onward
 * report` calls it by name to count it. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noclone))
#else
__attribute__((noinline))
#endif
void onw_frontend(const int16_t *raw, int16_t *features)
{
    int8_t *in = frontend_buffers[0];
    int32_t i, k, which = 0;
    for (i = 0; i < ONW_SAMPLE_DIM; i++) { /* the wire's values, clamped to int8 */
        in[i] = (int8_t)(raw[i] < -128 ? -128 : raw[i] > 127 ? 127 : raw[i]);
    }
    for (k = 0; k < ONW_FRONTEND_OPS; k++) {
        const int32_t *op = onw_tfl_ops + k * ONW_TFL_FIELDS;
        int8_t *out = frontend_buffers[which ^ 1];
        switch (op[ONW_TFL_F_KIND]) {
        case ONW_TFL_FULLY_CONNECTED:
            onw_tfl_fully_connected(op, in, out);
            break;
        case ONW_TFL_CONV_2D:
            onw_tfl_conv_2d(op, in, out);
            break;
        case ONW_TFL_DEPTHWISE_CONV_2D:
            onw_tfl_depthwise_conv_2d(op, in, out);
            break;
        case ONW_TFL_AVERAGE_POOL_2D:
        case ONW_TFL_MAX_POOL_2D:
            onw_tfl_pool_2d(op, in, out);
            break;
        default: /* RESHAPE: the same bytes */
            continue;
        }
        in = out;
        which ^= 1;
    }
    for (i = 0; i < ONW_INPUT_DIM; i++) {
        int32_t v = onw_tfl_multiply((int32_t)in[i] - ONW_FRONTEND_ZP, ONW_FRONTEND_Q, ONW_FRONTEND_SHIFT,
                                     ONW_TFL_ROUND_DOUBLE_HALF_UP);
        features[i] = onw_sat16_inline(v, &onw_saturations);
    }
}
#else
typedef int onw_frontend_unused;
#endif
