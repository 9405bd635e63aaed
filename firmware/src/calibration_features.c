/* The calibration model's inputs from the temperature register; the twin of host/calibration/features.py. */
#include "onward/calibration.h"

/* (v * m + 2^(frac - 1)) >> frac in 64 bits: rounded half up (an arithmetic shift floors). */
static int64_t scale(int64_t v, int32_t m, int frac)
{
    return (v * m + ((int64_t)1 << (frac - 1))) >> frac;
}

static int16_t sat16(int64_t v)
{
    return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}

void onw_calib_features(onw_calib_state_t *state, int32_t temp_counts, const int32_t *params, int16_t *inputs)
{
    const int32_t x = temp_counts * 256; /* Q8: |counts| < 2^15, so |x| < 2^23 */
    if (!state->started) {
        state->day = state->hour = x;
        state->started = 1u;
    }
    state->day += (int32_t)scale((int64_t)x - state->day, params[0], 16);
    state->hour += (int32_t)scale((int64_t)x - state->hour, params[1], 16);
    inputs[0] = (int16_t)(1 << ONW_CALIB_FEATURE_FRAC);
    inputs[1] = sat16(scale((int64_t)x - state->day, params[2], 24));
    inputs[2] = sat16(scale((int64_t)x - state->hour, params[3], 24));
}
