/* libFuzzer harness of the state image: any bytes LOADed as the learned state (weights, step counter, learning
 * rate, stage, seed), then training steps and inferences on samples taken from the input. Whatever the weights, the
 * firmware must not crash or trip a sanitizer (saturation, not overflow, is the integer semantics). */
#include <string.h>

#include "onward/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int16_t x[ONW_INPUT_DIM], outputs[ONW_NUM_OUTPUTS];
    size_t i, at = 0;
    int step;
    onw_reset(ONW_SEED);
    for (i = 0; i < ONW_STATE_SIZE && at < size; i++) {
        onw_state_set_byte((uint32_t)i, data[at++]);
    }
    for (step = 0; step < 3; step++) {
        int32_t target;
        for (i = 0; i < ONW_INPUT_DIM; i++, at += 2) {
            x[i] = at + 1 < size ? (int16_t)(data[at] | data[at + 1] << 8) : (int16_t)(at * 7919);
        }
        target = at < size ? data[at++] : step;
        target = ONW_REGRESSION ? (int16_t)(target * 257) : target % ONW_NUM_CLASSES;
        onw_train(x, target, outputs);
        onw_infer(x, outputs);
    }
    (void)onw_state_digest();
    return 0;
}
