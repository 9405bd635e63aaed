/* libFuzzer harness of the firmware's frame decoder and command dispatch (app.c, protocol.c, the rule), built with
 * AddressSanitizer and UndefinedBehaviorSanitizer by onward.fuzz. The input is the byte stream of the host link,
 * served by onw_serve until it ends. After every input it checks the firmware's promises:
 *  - every frame (bytes up to a 0x00 delimiter, not empty) got exactly one reply, and every reply is a well-formed
 *    frame (COBS, length, CRC-32);
 *  - the learned state (its digest) changed only if a state-changing command (RESET, LOAD, TRAIN, TRAIN_BATCH,
 *    SET_LR, SET_STAGE) was answered with success.
 * A broken promise aborts, which libFuzzer reports as a crash with the input that caused it. Every input starts from
 * the same state (RESET with the spec's seed), so that a finding replays alone. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_port.h"
#include "onward/protocol.h"
#include "onward/runtime.h"

/* Decode one COBS frame of `len` bytes into out (at most len bytes); -1 if malformed. */
static long cobs_decode_copy(const uint8_t *src, size_t len, uint8_t *out)
{
    size_t in = 0, n = 0;
    while (in < len) {
        uint8_t code = src[in++];
        size_t i;
        if (code == 0 || in + code - 1 > len) {
            return -1;
        }
        for (i = 1; i < code; i++) {
            out[n++] = src[in++];
        }
        if (code != 0xFF && in < len) {
            out[n++] = 0;
        }
    }
    return (long)n;
}

static int state_changing(uint8_t cmd)
{
    return cmd == ONW_CMD_RESET || cmd == ONW_CMD_LOAD || cmd == ONW_CMD_TRAIN || cmd == ONW_CMD_TRAIN_BATCH ||
           cmd == ONW_CMD_SET_LR || cmd == ONW_CMD_SET_STAGE;
}

/* The replies: counts them, checks each frame, and whether a state-changing command succeeded. */
static size_t check_replies(int *changed_ok)
{
    static uint8_t frame[FUZZ_OUT_MAX];
    size_t start = 0, i, replies = 0;
    if (fuzz_out_len > FUZZ_OUT_MAX) {
        abort(); /* more reply bytes than any sequence of replies to this input could hold */
    }
    for (i = 0; i < fuzz_out_len; i++) {
        long n;
        uint32_t crc = ONW_CRC32_INIT, got;
        size_t k;
        if (fuzz_out[i] != 0) {
            continue;
        }
        n = cobs_decode_copy(fuzz_out + start, i - start, frame);
        if (n < 7) {
            abort(); /* a reply that is not a frame */
        }
        for (k = 0; k < (size_t)n - 4; k++) {
            crc = onw_crc32_byte(crc, frame[k]);
        }
        memcpy(&got, frame + n - 4, 4);
        if (~crc != got || (size_t)(frame[1] | frame[2] << 8) != (size_t)n - 7) {
            abort(); /* a reply with a wrong CRC or length field */
        }
        if ((frame[0] & ONW_REPLY) && state_changing((uint8_t)(frame[0] & ~ONW_REPLY))) {
            *changed_ok = 1;
        }
        replies++;
        start = i + 1;
    }
    if (start != fuzz_out_len) {
        abort(); /* a reply without its delimiter */
    }
    return replies;
}

/* Frames the firmware must answer: runs of bytes ended by a 0x00 (a 0x00 alone delimits nothing). */
static size_t count_frames(const uint8_t *data, size_t size)
{
    size_t i, frames = 0, run = 0;
    for (i = 0; i < size; i++) {
        if (data[i] == 0) {
            frames += run > 0;
            run = 0;
        } else {
            run++;
        }
    }
    return frames;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t before;
    int changed_ok = 0;
    onw_reset(ONW_SEED);
    before = onw_state_digest();
    fuzz_port_feed(data, size);
    onw_serve();
    if (check_replies(&changed_ok) != count_frames(data, size)) {
        abort(); /* a frame without a reply, or a reply without a frame */
    }
    if (onw_state_digest() != before && !changed_ok) {
        abort(); /* the learned state changed without a successful state-changing command */
    }
    return 0;
}
