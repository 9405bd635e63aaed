/* The framed serial protocol (the host side is host/protocol.py; the README documents it).
 *
 * On the wire every frame is COBS-encoded and ends with a 0x00 byte. Decoded, a frame is
 *   command (u8) | body length (u16 LE) | body | CRC-32 (u32 LE, zlib's, over command+length+body).
 * A reply carries command | 0x80; an error reply is ONW_CMD_ERROR with the body
 *   code (u8) | request command (u8) | expected (u32 LE) | got (u32 LE).
 * A frame that is malformed in any way changes nothing but the bad-frame counter. */
#ifndef ONWARD_PROTOCOL_H
#define ONWARD_PROTOCOL_H

#include <stdint.h>

#include "onward/entry.h"

#define ONW_PROTOCOL_VERSION 5u /* 3: TRAIN_BATCH, HELLO reports the max batch; 4: SAVE, RESTORE; 5: QUERY, ANSWER */

enum {
    ONW_CMD_HELLO = 0x01,  /* -> build info */
    ONW_CMD_RESET = 0x02,  /* [seed u32] -> initial weights, steps 0, stage 0; no body: the spec's seed */
    ONW_CMD_LOAD = 0x03,   /* offset u32 | bytes -> write into the state image */
    ONW_CMD_DUMP = 0x04,   /* offset u32 | length u16 -> bytes of the state image */
    ONW_CMD_TRAIN = 0x05,  /* target int16 | x int16[input] -> outputs int16[ONW_NUM_OUTPUTS] | digest u32 */
    ONW_CMD_INFER = 0x06,  /* x int16[input] -> outputs int16[ONW_NUM_OUTPUTS] */
    ONW_CMD_STATS = 0x07,  /* -> steps, saturations, frames ok, frames bad, cycles, digest (u32 each) */
    ONW_CMD_SET_LR = 0x08, /* lr_q u32 -> (empty) */
    ONW_CMD_SET_STAGE = 0x09, /* stage u32 (0..ONW_NUM_STAGES) -> (empty) */
    /* count u16 (1..ONW_MAX_BATCH) | count x (target int16 | x int16[input])
     *   -> count x (outputs int16[ONW_NUM_OUTPUTS] | digest u32): TRAIN count times, one frame each way */
    ONW_CMD_TRAIN_BATCH = 0x0A,
    ONW_CMD_SAVE = 0x0B,    /* -> seq u32 | digest u32: the state saved to flash (a [persist] build; else COMMAND) */
    ONW_CMD_RESTORE = 0x0C, /* -> seq u32 | digest u32: the newest saved state loaded; NOTHING_SAVED if none */
    /* A rule that measures through an instrument the host holds (host/instrument.py), in the middle of a step:
     * the device sends QUERY (the rule's request), the host answers ANSWER (the instrument's reading). Not replies:
     * no 0x80 bit. ANSWER at any other time is an unknown command. */
    ONW_CMD_QUERY = 0x0D,
    ONW_CMD_ANSWER = 0x0E,
    ONW_CMD_ERROR = 0x7F,
    ONW_REPLY = 0x80
};

enum {
    ONW_ERR_FRAMING = 1,  /* COBS code points past the end: expected = frame length, got = position */
    ONW_ERR_OVERSIZED = 2, /* expected = largest encoded frame accepted, got = bytes received */
    ONW_ERR_SHORT = 3,    /* expected = 7 (minimum decoded frame), got = decoded length */
    ONW_ERR_CRC = 4,      /* expected = CRC computed over the frame, got = CRC carried */
    ONW_ERR_LENGTH = 5,   /* expected = body bytes present, got = length field */
    ONW_ERR_COMMAND = 6,  /* expected = 0, got = the unknown command */
    ONW_ERR_BODY = 7,     /* expected = body length this command takes, got = body length */
    ONW_ERR_ARGUMENT = 8, /* expected = the limit, got = the value (target, offset+length, lr, stage, count) */
    ONW_ERR_NOTHING_SAVED = 9, /* RESTORE: expected = 1 (a valid record), got = 0; the state is unchanged */
    ONW_ERR_ANSWER = 10 /* a QUERY got another frame than ANSWER: expected = 0x0E, got = its command; step abandoned */
};

#define ONW_CRC32_INIT 0xFFFFFFFFu
uint32_t onw_crc32_byte(uint32_t crc, uint8_t byte); /* running, un-inverted CRC-32 (reflected, 0xEDB88320) */

/* Decode a COBS frame in place; returns the decoded length, or -1 - position of the bad code byte. */
int32_t onw_cobs_decode(uint8_t *buf, uint32_t len);

/* A query to the instrument the host holds, from inside a rule's step (host/instrument.py). frame holds the request
 * at frame[ONW_QUERY_HEADER .. + body_len), with room for the header before it and the CRC after it; the frame is
 * sealed and sent as QUERY, then the host's ANSWER (answer_len bytes of body) is copied to answer. Returns 0; or -1
 * when what came back is not that ANSWER (it gets an error frame) or the link closed: the step is then abandoned
 * (onw_step_aborted) and the rule must return before it changes its state. Defined in app.c. */
#define ONW_QUERY_HEADER 3u  /* command, body length */
#define ONW_QUERY_TRAILER 4u /* CRC-32 */
ONW_ENTRY int onw_host_query(uint8_t *frame, uint32_t body_len, uint8_t *answer, uint32_t answer_len);

/* The application loop: read frames from the port, answer them. Returns only when the port closes. */
int onw_serve(void);
/* Port init, RESET to the initial weights, then onw_serve(): main() unless ONW_NO_MAIN is defined. */
int onw_main(void);

#endif
