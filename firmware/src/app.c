/* The application: frames in, commands run, replies out. One static receive and one reply buffer. */
/* Frame handling runs once per frame, not per MAC: optimise it for size (GCC; -O2 stays for the kernels). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif
#include "onward/persist.h"
#include "onward/port.h"
#include "onward/protocol.h"
#include "onward/runtime.h"

#ifndef ONW_BOARD_NAME
#define ONW_BOARD_NAME "unknown"
#endif

#define MIN_FRAME 7u /* command, length, CRC */
#define STATS_BODY 24u
#define REPLY_MAX (3u + ONW_MAX_REPLY_BODY + 4u)
#define SAMPLE_BYTES (2u + 2u * ONW_SAMPLE_DIM) /* target int16, x int16[sample] */

static uint8_t rx[ONW_RX_MAX];
static uint8_t tx[REPLY_MAX];
static int16_t sample[ONW_SAMPLE_DIM]; /* the head's inputs, or the frozen extractor's int8 input */
static int16_t outputs[ONW_NUM_OUTPUTS];
static uint32_t frames_ok, frames_bad;

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint8_t *put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    return put_u16(put_u16(p, v & 0xFFFFu), v >> 16);
}

static void read_sample(const uint8_t *p)
{
    uint32_t i;
    for (i = 0; i < ONW_SAMPLE_DIM; i++) {
        sample[i] = (int16_t)(uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
    }
}

#if ONW_FRONTEND
#include "onward/tflite.h"
static int16_t frontend_features[ONW_INPUT_DIM];

/* What the rule learns from: the frozen extractor's features of the sample. */
static int16_t *model_input(void)
{
    onw_frontend(sample, frontend_features);
    return frontend_features;
}
#else
static int16_t *model_input(void)
{
    return sample;
}
#endif

static int32_t get_target(const uint8_t *p)
{
    return (int16_t)(uint16_t)(p[0] | (p[1] << 8));
}

/* A class index must name a class; a regression target is any int16. */
static int target_ok(int32_t target)
{
    return ONW_REGRESSION || (target >= 0 && target < ONW_NUM_CLASSES);
}

/* One training step, then the save policy ([persist] every = N: after every N-th step). */
static void train_step(int32_t target)
{
    onw_train(model_input(), target, outputs);
    if (onw_step_aborted) {
        return; /* an instrument query failed: nothing learned, nothing to save */
    }
#if ONW_PERSIST
    if (ONW_PERSIST_EVERY != 0u && onw_state.steps % ONW_PERSIST_EVERY == 0u) {
        (void)onw_persist_save();
    }
#endif
}

static uint8_t *put_outputs(uint8_t *p)
{
    int c;
    for (c = 0; c < ONW_NUM_OUTPUTS; c++) {
        p = put_u16(p, (uint16_t)outputs[c]);
    }
    return p;
}

/* COBS-encode frame[0..len) straight to the port, then the 0x00 delimiter. */
static void send_frame(const uint8_t *frame, uint32_t len)
{
    uint32_t start = 0;
    for (;;) {
        uint32_t end = start, i;
        while (end < len && frame[end] != 0 && end - start < 254) {
            end++;
        }
        onw_port_putc((uint8_t)(end - start + 1));
        for (i = start; i < end; i++) {
            onw_port_putc(frame[i]);
        }
        if (end == len) {
            break;
        }
        /* a block shorter than 254 bytes implies the zero that ended it; a full one (code 0xFF) implies none, so a
         * zero right after it starts the next block */
        start = frame[end] == 0 && end - start < 254 ? end + 1 : end;
    }
    onw_port_putc(0);
    onw_port_flush();
}

/* Write the header and the CRC around frame[3 .. 3 + body_len), and send it. */
static void seal_and_send(uint8_t *frame, uint8_t command, uint32_t body_len)
{
    uint32_t crc = ONW_CRC32_INIT, i;
    frame[0] = command;
    put_u16(frame + 1, body_len);
    for (i = 0; i < 3 + body_len; i++) {
        crc = onw_crc32_byte(crc, frame[i]);
    }
    put_u32(frame + 3 + body_len, ~crc);
    send_frame(frame, 3 + body_len + 4);
}

static void reply(uint8_t command, uint8_t *body_end)
{
    seal_and_send(tx, command, (uint32_t)(body_end - (tx + 3)));
}

static void error_reply(uint8_t code, uint8_t command, uint32_t expected, uint32_t got)
{
    uint8_t *p = tx + 3;
    frames_bad++;
    *p++ = code;
    *p++ = command;
    p = put_u32(p, expected);
    p = put_u32(p, got);
    reply(ONW_CMD_ERROR, p);
}

static uint8_t *hello(uint8_t *p)
{
    const char *name = ONW_MODEL_NAME "@" ONW_BOARD_NAME;
    int layer;
    *p++ = ONW_PROTOCOL_VERSION;
    *p++ = ONW_RULE;
    *p++ = ONW_NUM_LAYERS;
    *p++ = ONW_ACT_FRAC;
    *p++ = ONW_WEIGHT_FRAC;
    *p++ = ONW_FEEDBACK_FRAC;
    *p++ = ONW_LR_FRAC;
    *p++ = ONW_NUM_OUTPUTS;
    p = put_u32(p, ONW_MODEL_HASH);
    p = put_u32(p, ONW_STATE_SIZE);
    p = put_u16(p, ONW_RX_MAX);
    p = put_u16(p, ONW_CHUNK);
    p = put_u16(p, ONW_MAX_BATCH);
    p = put_u16(p, onw_layers[0].in_dim);
    for (layer = 0; layer < ONW_NUM_LAYERS; layer++) {
        p = put_u16(p, onw_layers[layer].out_dim);
    }
    while (*name) {
        *p++ = (uint8_t)*name++;
    }
    return p;
}

/* Run one well-formed frame: command cmd with body[0..len). Checks every argument before acting. */
static void dispatch(uint8_t cmd, const uint8_t *body, uint32_t len)
{
    uint8_t *out = tx + 3;
    uint32_t i;
#define NEED_BODY(n)                                         \
    if (len != (n)) {                                        \
        error_reply(ONW_ERR_BODY, cmd, (uint32_t)(n), len); \
        return;                                              \
    }
    switch (cmd) {
    case ONW_CMD_HELLO:
        NEED_BODY(0);
        out = hello(out);
        break;
    case ONW_CMD_RESET:
        if (len != 0 && len != 4) {
            error_reply(ONW_ERR_BODY, cmd, 4, len);
            return;
        }
        onw_reset(len == 4 ? get_u32(body) : ONW_SEED);
        break;
    case ONW_CMD_LOAD: {
        uint32_t offset;
        if (len < 4 || len > 4 + ONW_CHUNK) {
            error_reply(ONW_ERR_BODY, cmd, 4 + ONW_CHUNK, len);
            return;
        }
        offset = get_u32(body);
        if (offset > ONW_STATE_SIZE || len - 4 > ONW_STATE_SIZE - offset) {
            error_reply(ONW_ERR_ARGUMENT, cmd, ONW_STATE_SIZE, offset + (len - 4));
            return;
        }
        for (i = 0; i < len - 4; i++) {
            onw_state_set_byte(offset + i, body[4 + i]);
        }
        break;
    }
    case ONW_CMD_DUMP: {
        uint32_t offset, count;
        NEED_BODY(6);
        offset = get_u32(body);
        count = (uint32_t)body[4] | ((uint32_t)body[5] << 8);
        if (count > ONW_CHUNK || offset > ONW_STATE_SIZE || count > ONW_STATE_SIZE - offset) {
            error_reply(ONW_ERR_ARGUMENT, cmd, count > ONW_CHUNK ? ONW_CHUNK : ONW_STATE_SIZE,
                        count > ONW_CHUNK ? count : offset + count);
            return;
        }
        for (i = 0; i < count; i++) {
            *out++ = onw_state_get_byte(offset + i);
        }
        break;
    }
    case ONW_CMD_TRAIN: {
        int32_t target;
        NEED_BODY(SAMPLE_BYTES);
        target = get_target(body);
        if (!target_ok(target)) {
            error_reply(ONW_ERR_ARGUMENT, cmd, ONW_NUM_CLASSES - 1, (uint32_t)target);
            return;
        }
        read_sample(body + 2);
        train_step(target);
        if (onw_step_aborted) {
            return; /* the failed query's frame got the error reply */
        }
        out = put_u32(put_outputs(out), onw_state_digest());
        break;
    }
    case ONW_CMD_TRAIN_BATCH: {
        uint32_t count, k;
        if (len < 2) {
            error_reply(ONW_ERR_BODY, cmd, 2 + SAMPLE_BYTES, len);
            return;
        }
        count = (uint32_t)body[0] | ((uint32_t)body[1] << 8);
        if (count == 0 || count > ONW_MAX_BATCH) {
            error_reply(ONW_ERR_ARGUMENT, cmd, ONW_MAX_BATCH, count);
            return;
        }
        NEED_BODY(2 + count * SAMPLE_BYTES);
        /* Every target is checked before the first step: a bad frame changes nothing. */
        for (k = 0; k < count; k++) {
            int32_t target = get_target(body + 2 + k * SAMPLE_BYTES);
            if (!target_ok(target)) {
                error_reply(ONW_ERR_ARGUMENT, cmd, ONW_NUM_CLASSES - 1, (uint32_t)target);
                return;
            }
        }
        for (k = 0; k < count; k++) {
            const uint8_t *s = body + 2 + k * SAMPLE_BYTES;
            read_sample(s + 2);
            train_step(get_target(s));
            if (onw_step_aborted) {
                return; /* the rest of the batch is dropped: the host saw the error reply */
            }
            out = put_u32(put_outputs(out), onw_state_digest());
        }
        break;
    }
    case ONW_CMD_INFER:
        NEED_BODY(2 * ONW_SAMPLE_DIM);
        read_sample(body);
        onw_step_aborted = 0;
        onw_infer(model_input(), outputs);
        if (onw_step_aborted) {
            return;
        }
        out = put_outputs(out);
        break;
    case ONW_CMD_STATS:
        NEED_BODY(0);
        out = put_u32(out, onw_state.steps);
        out = put_u32(out, onw_saturations);
        out = put_u32(out, frames_ok + 1); /* this frame included */
        out = put_u32(out, frames_bad);
        out = put_u32(out, onw_port_cycles());
        out = put_u32(out, onw_state_digest());
        break;
    case ONW_CMD_SET_LR: {
        uint32_t lr_q;
        NEED_BODY(4);
        lr_q = get_u32(body);
        if (lr_q == 0 || lr_q > 0x7FFFFFFFu) {
            error_reply(ONW_ERR_ARGUMENT, cmd, 0x7FFFFFFFu, lr_q);
            return;
        }
        onw_state.lr_q = lr_q;
        break;
    }
    case ONW_CMD_SET_STAGE: {
        uint32_t stage;
        NEED_BODY(4);
        stage = get_u32(body);
        if (stage > ONW_NUM_STAGES) {
            error_reply(ONW_ERR_ARGUMENT, cmd, ONW_NUM_STAGES, stage);
            return;
        }
        onw_state.stage = stage;
        break;
    }
#if ONW_PERSIST
    case ONW_CMD_SAVE:
        NEED_BODY(0);
        out = put_u32(out, onw_persist_save());
        out = put_u32(out, onw_state_digest());
        break;
    case ONW_CMD_RESTORE: {
        uint32_t seq;
        NEED_BODY(0);
        seq = onw_persist_restore();
        if (seq == 0u) {
            error_reply(ONW_ERR_NOTHING_SAVED, cmd, 1, 0);
            return;
        }
        out = put_u32(out, seq);
        out = put_u32(out, onw_state_digest());
        break;
    }
#endif
    default:
        error_reply(ONW_ERR_COMMAND, cmd, 0, cmd);
        return;
    }
#undef NEED_BODY
    frames_ok++;
    reply((uint8_t)(cmd | ONW_REPLY), out);
}

/* Decode and check a received frame in buf (`capacity` bytes; `received` bytes arrived, more if it overflowed).
 * Returns the body length (the body is at buf + 3), or -1 after answering the damage with an error frame. */
static int32_t check_frame(uint8_t *buf, uint32_t capacity, uint32_t received, int overflow)
{
    int32_t n;
    uint32_t len, crc = ONW_CRC32_INIT, i, body_len;
    if (overflow) {
        error_reply(ONW_ERR_OVERSIZED, 0, capacity, received);
        return -1;
    }
    n = onw_cobs_decode(buf, received);
    if (n < 0) {
        error_reply(ONW_ERR_FRAMING, 0, received, (uint32_t)(-1 - n));
        return -1;
    }
    len = (uint32_t)n;
    if (len < MIN_FRAME) {
        error_reply(ONW_ERR_SHORT, len ? buf[0] : 0, MIN_FRAME, len);
        return -1;
    }
    for (i = 0; i < len - 4; i++) {
        crc = onw_crc32_byte(crc, buf[i]);
    }
    crc = ~crc;
    if (crc != get_u32(buf + len - 4)) {
        error_reply(ONW_ERR_CRC, buf[0], crc, get_u32(buf + len - 4));
        return -1;
    }
    body_len = (uint32_t)buf[1] | ((uint32_t)buf[2] << 8);
    if (body_len != len - MIN_FRAME) {
        error_reply(ONW_ERR_LENGTH, buf[0], len - MIN_FRAME, body_len);
        return -1;
    }
    return (int32_t)body_len;
}

/* Read one frame's bytes (up to its 0x00; empty frames skipped) into buf. Returns the bytes received (counting
 * those past `capacity`, which set *overflow), or -1 when the port closed. */
static int32_t receive_frame(uint8_t *buf, uint32_t capacity, int *overflow)
{
    uint32_t received = 0;
    *overflow = 0;
    for (;;) {
        int c = onw_port_getc();
        if (c < 0) {
            return -1;
        }
        if (c == 0) {
            if (received > 0 || *overflow) {
                return (int32_t)received;
            }
        } else if (received < capacity) {
            buf[received++] = (uint8_t)c;
        } else {
            *overflow = 1;
            received++;
        }
    }
}

#if ONW_ANSWER_BYTES
static uint8_t answer_rx[ONW_ANSWER_RX_MAX];

ONW_ENTRY int onw_host_query(uint8_t *frame, uint32_t body_len, uint8_t *answer, uint32_t answer_len)
{
    int overflow;
    int32_t received, body;
    uint32_t i;
    seal_and_send(frame, ONW_CMD_QUERY, body_len);
    received = receive_frame(answer_rx, sizeof answer_rx, &overflow);
    body = received < 0 ? -1 : check_frame(answer_rx, sizeof answer_rx, (uint32_t)received, overflow);
    if (body >= 0 && answer_rx[0] != ONW_CMD_ANSWER) {
        error_reply(ONW_ERR_ANSWER, answer_rx[0], ONW_CMD_ANSWER, answer_rx[0]);
        body = -1;
    } else if (body >= 0 && (uint32_t)body != answer_len) {
        error_reply(ONW_ERR_BODY, ONW_CMD_ANSWER, answer_len, (uint32_t)body);
        body = -1;
    }
    if (body < 0) {
        onw_step_aborted = 1;
        return -1;
    }
    for (i = 0; i < answer_len; i++) {
        answer[i] = answer_rx[3 + i];
    }
    frames_ok++;
    return 0;
}
#endif

int onw_serve(void)
{
    for (;;) {
        int overflow;
        int32_t received = receive_frame(rx, ONW_RX_MAX, &overflow), body;
        if (received < 0) {
            return 0;
        }
        body = check_frame(rx, ONW_RX_MAX, (uint32_t)received, overflow);
        if (body >= 0) {
            dispatch(rx[0], rx + 3, (uint32_t)body);
        }
    }
}

/* Bring the port up, load the initial weights, then serve frames until the link closes (boards: never).
 * It is main() unless the build defines ONW_NO_MAIN: then the framework's main runs it (Arduino: from
 * setup(), see boards/platformio/arduino/arduino_port.cpp). */
int onw_main(void)
{
    onw_port_init();
    onw_reset(ONW_SEED);
#if ONW_PERSIST
    (void)onw_persist_restore(); /* the newest saved state, if any: a power cut loses at most the unsaved steps */
#endif
    return onw_serve();
}

#ifndef ONW_NO_MAIN
int main(void)
{
    return onw_main();
}
#endif
