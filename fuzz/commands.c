/* libFuzzer harness of the command dispatch: the frames harness (frames.c, whose checks it runs unchanged) after
 * every frame of the input has had its length field and CRC-32 made right. Random mutations almost never keep a
 * CRC valid, so the frames harness mostly exercises the framing; this one reaches every command's argument checks
 * (a body of the wrong length, an offset past the state, a target out of range, a batch count of 0, ...). */
#include <stdint.h>
#include <string.h>

#define LLVMFuzzerTestOneInput frames_test_one_input
#include "frames.c"
#undef LLVMFuzzerTestOneInput

#define MAX_INPUT 8192

/* COBS-encode src[0..len) to dst, then the 0x00 delimiter; returns the bytes written (at most len + len/254 + 2). */
static size_t cobs_encode(const uint8_t *src, size_t len, uint8_t *dst)
{
    size_t out = 1, code_at = 0, i;
    uint8_t code = 1;
    for (i = 0; i < len; i++) {
        if (src[i] == 0) {
            dst[code_at] = code;
            code_at = out++;
            code = 1;
            continue;
        }
        dst[out++] = src[i];
        if (++code == 0xFF) {
            dst[code_at] = code;
            code_at = out++;
            code = 1;
        }
    }
    dst[code_at] = code;
    dst[out++] = 0;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t fixed[2 * MAX_INPUT + 16], frame[MAX_INPUT];
    size_t start = 0, i, out = 0;
    if (size > MAX_INPUT) {
        return -1; /* not added to the corpus */
    }
    for (i = 0; i <= size; i++) {
        long n;
        if (i < size && data[i] != 0) {
            continue;
        }
        n = i > start ? cobs_decode_copy(data + start, i - start, frame) : -1;
        if (n >= 7) {
            uint32_t crc = ONW_CRC32_INIT;
            size_t k, body = (size_t)n - 7;
            frame[1] = (uint8_t)body;
            frame[2] = (uint8_t)(body >> 8);
            for (k = 0; k < (size_t)n - 4; k++) {
                crc = onw_crc32_byte(crc, frame[k]);
            }
            crc = ~crc;
            memcpy(frame + n - 4, &crc, 4);
            out += cobs_encode(frame, (size_t)n, fixed + out);
        } else if (i > start || i < size) { /* a frame that does not decode, or an empty one: as it came */
            memcpy(fixed + out, data + start, i - start + (i < size));
            out += i - start + (i < size);
        }
        start = i + 1;
    }
    return frames_test_one_input(fixed, out);
}
