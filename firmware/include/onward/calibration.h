/* The calibration model's inputs, computed beside the sensor driver from the temperature register alone: the
 * day's temperature swing and the warming rate, each the temperature minus a first-order IIR lag of it. The twin
 * of host/calibration/features.py (features_q): same integers, sample after sample. Model-independent: a
 * sensor's firmware calls it on every sample and hands the three values (1, swing, warming; Q12) to onw_infer /
 * onw_train. */
#ifndef ONWARD_CALIBRATION_H
#define ONWARD_CALIBRATION_H

#include <stdint.h>

#define ONW_CALIB_FEATURE_FRAC 12 /* the features: Q12 */
#define ONW_CALIB_INPUTS 3        /* 1 (the bias input), swing, warming */

typedef struct {
    int32_t day, hour; /* the lagged temperatures, register counts in Q8 */
    uint32_t started;  /* 0 until the first sample (the filters start settled on it) */
} onw_calib_state_t;

/* params: the day and hour coefficients (Q16) and the swing and warming multipliers (Q24), as
 * features.filter_params gives them for the sample period. */
void onw_calib_features(onw_calib_state_t *state, int32_t temp_counts, const int32_t *params, int16_t *inputs);

#endif
