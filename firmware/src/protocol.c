/* CRC and COBS run per byte of a frame, not per MAC: optimised for size (GCC; -O2 stays for the kernels). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif
/* CRC-32 and COBS: the byte-level pieces of the protocol (see protocol.h). */
#include "onward/protocol.h"

uint32_t onw_crc32_byte(uint32_t crc, uint8_t byte)
{
    /* Nibble table: 64 bytes of flash, two lookups per byte. */
    static const uint32_t table[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    crc ^= byte;
    crc = (crc >> 4) ^ table[crc & 15];
    crc = (crc >> 4) ^ table[crc & 15];
    return crc;
}

int32_t onw_cobs_decode(uint8_t *buf, uint32_t len)
{
    uint32_t in = 0, out = 0;
    while (in < len) {
        uint8_t code = buf[in];
        uint32_t i;
        if (code == 0 || in + code > len) {
            return -1 - (int32_t)in; /* a zero inside a frame, or a block running past its end */
        }
        in++;
        for (i = 1; i < code; i++) {
            buf[out++] = buf[in++];
        }
        if (code != 0xFF && in < len) {
            buf[out++] = 0;
        }
    }
    return (int32_t)out;
}
