# onward's runtime for MicroPython: the integer semantics of onward.fixed and firmware/src, and the framed protocol
# of firmware/src/app.c, so that a MicroPython board learns the same bits as the C firmware and the host reference.
#
# Twins, function for function (same names): mix32/derive/rand, sat16, round_shift, requant, div_trunc,
# stochastic_shift, exp2_q15, softmax_q15 (fixed.py / fixed.c); dense (nn/dense.py dense_fixed / dense.c);
# update (nn/dense.py update_fixed / dense_update.c); forward, forward_pass, output_error (nn/mlp.py / mlp.c);
# the rules' train steps (rules/<rule>.py / rule_<rule>.c); serve (app.c).
#
# Every value is a Python int: MicroPython's ints grow past the machine word (the unix port and the rp2/stm32/esp32
# ports all build with arbitrary-precision integers), so the int64 sums and uint32 hashes of the C are exact here
# without emulating a width; 32-bit wrap-around is written out as `& MASK32` where the C relies on it.
# A model module (written by `onward generate --micropython`) holds the constants and the initial weights.

import sys
from array import array

_CRC = (0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
        0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C)


def crc32_nibbles(data, crc=0):
    """CRC-32 by nibbles, as firmware/src/protocol.c: for a port built without binascii.crc32."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        crc = (crc >> 4) ^ _CRC[crc & 15]
        crc = (crc >> 4) ^ _CRC[crc & 15]
    return crc ^ 0xFFFFFFFF


try:
    import binascii

    _crc32_native = getattr(binascii, "crc32", None)
except ImportError:
    _crc32_native = None


def crc32(data, crc=0):
    """zlib's CRC-32 of data, continuing from crc: binascii's C code where the port has it."""
    if _crc32_native is not None:
        return _crc32_native(data, crc) & 0xFFFFFFFF
    return crc32_nibbles(data, crc)


PROTOCOL_VERSION = 3
MASK32 = 0xFFFFFFFF
I16_MIN = -32768
I16_MAX = 32767
GOLDEN = 0x9E3779B9
LOG2E_Q14 = 23637
EXP2_C1 = 22792
EXP2_C2 = 7411
EXP2_C3 = 2561
ONE_Q15 = 1 << 15
DITHER_A = 1664525
DITHER_C = 1013904223
DITHER_BITS = 16
DITHER_GROUP = 8
STREAM_FEEDBACK = 1
STREAM_ROUNDING = 2
REPLY = 0x80
CMD_HELLO = 0x01
CMD_RESET = 0x02
CMD_LOAD = 0x03
CMD_DUMP = 0x04
CMD_TRAIN = 0x05
CMD_INFER = 0x06
CMD_STATS = 0x07
CMD_SET_LR = 0x08
CMD_SET_STAGE = 0x09
CMD_TRAIN_BATCH = 0x0A
CMD_ERROR = 0x7F
ERR_FRAMING = 1
ERR_OVERSIZED = 2
ERR_SHORT = 3
ERR_CRC = 4
ERR_LENGTH = 5
ERR_COMMAND = 6
ERR_BODY = 7
ERR_ARGUMENT = 8
MIN_FRAME = 7
RULE_PEPITA = 1
RULE_MEMPEPITA = 2
RULE_FFZERO = 3
RULE_FF = 4
RULE_FGRAD = 5
RULE_LAST_LAYER = 6


# --- counter-based random numbers (fixed.py: mix32, derive, rand) ---------------------------------------------

def mix32(x):
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def derive(key, n):
    return mix32((key & MASK32) ^ mix32((n + GOLDEN) & MASK32))


def rand(key, index):
    return mix32((key & MASK32) ^ ((index * GOLDEN) & MASK32))


# --- rounding, saturation, division ---------------------------------------------------------------------------

class State:
    """The learned state (seed, steps, lr_q, stage, every layer's int16 weights in one array) and the counters."""

    def __init__(self, model):
        self.model = model
        self.weights = array("h", model.WEIGHTS)
        self.seed = model.SEED
        self.steps = 0
        self.lr_q = model.LR_Q
        self.stage = 0
        self.saturations = 0
        self.strides = model.STRIDES  # a row's length in the state image (FFzero: inputs, bias, padding)
        self.protos = array("h", getattr(model, "ONW_FFZERO_PROTOS", b""))  # FFzero's prototypes, Q15
        self.proto_offsets = []  # where each layer's prototypes start
        at = 0
        for layer in range(len(model.DIMS) - 1):
            self.proto_offsets.append(at)
            at += getattr(model, "FFZERO_PROTOTYPES", 0) * model.DIMS[layer + 1]
        self.offsets = []  # where each layer's weights start in the flat array
        at = 0
        for layer in range(len(model.DIMS) - 1):
            self.offsets.append(at)
            at += model.STRIDES[layer] * model.DIMS[layer + 1]

    def reset(self, seed):
        self.weights = array("h", self.model.WEIGHTS)
        self.seed = seed & MASK32
        self.steps = 0
        self.lr_q = self.model.LR_Q
        self.stage = 0
        self.saturations = 0

    def header(self):
        return (_u32(self.seed) + _u32(self.steps) + _u32(self.lr_q) + _u32(self.stage))

    def image(self):
        return self.header() + bytes(self.weights)

    def digest(self):
        return crc32(bytes(self.weights), crc32(self.header())) & MASK32

    def set_byte(self, index, value):
        """LOAD: one byte of the state image (header words, then the weights, little-endian)."""
        if index < 16:
            fields = [self.seed, self.steps, self.lr_q, self.stage]
            word, shift = index // 4, 8 * (index % 4)
            fields[word] = (fields[word] & ~(0xFF << shift) & MASK32) | (value << shift)
            self.seed, self.steps, self.lr_q, self.stage = fields
            return
        index -= 16
        w = self.weights[index // 2] & 0xFFFF
        shift = 8 * (index % 2)
        w = (w & ~(0xFF << shift) & 0xFFFF) | (value << shift)
        self.weights[index // 2] = w - 0x10000 if w & 0x8000 else w


def _u32(v):
    v &= MASK32
    return bytes((v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, v >> 24))


def sat16(st, v):
    """Clamp to int16, counting a saturation in st."""
    if v > I16_MAX:
        st.saturations += 1
        return I16_MAX
    if v < I16_MIN:
        st.saturations += 1
        return I16_MIN
    return v


def round_shift(x, shift):
    return x if shift == 0 else (x + (1 << (shift - 1))) >> shift


def requant(st, x, from_frac, to_frac):
    if from_frac >= to_frac:
        return sat16(st, round_shift(x, from_frac - to_frac))
    return sat16(st, x << (to_frac - from_frac))


def div_trunc(a, b):
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def stochastic_shift(x, shift, r):
    r &= MASK32
    if shift == 0:
        return x
    offset = (r >> (32 - shift)) if shift <= 32 else (r << (shift - 32))
    return (x + offset) >> shift


# --- softmax in integers ----------------------------------------------------------------------------------------

def exp2_q15(t, frac):
    k = t >> frac
    f = t - (k << frac)
    f15 = f >> (frac - 15) if frac >= 15 else f << (15 - frac)
    a = EXP2_C2 + round_shift(EXP2_C3 * f15, 15)
    a = EXP2_C1 + round_shift(a * f15, 15)
    p = ONE_Q15 + round_shift(a * f15, 15)
    n = min(-k, 62)
    return 0 if n >= 31 else (p + ((1 << n) >> 1)) >> n


def softmax_q15(z, frac):
    top = max(z)
    e = [exp2_q15(round_shift((v - top) * LOG2E_Q14, 14), frac) for v in z]
    total = sum(e)
    return [div_trunc(v << 15, total) for v in e]


def sigmoid_q15(t, frac):
    """1 / (1 + e^(-t / 2**frac)) in Q15, |t| clamped at 32 (fixed.sigmoid_q15)."""
    a = min(abs(t), 32 << frac)
    e = exp2_q15(-round_shift(a * LOG2E_Q14, 14), frac)
    return div_trunc(1 << 30, ONE_Q15 + e) if t >= 0 else div_trunc(e << 15, ONE_Q15 + e)


# --- layers (nn/dense.py, nn/mlp.py) ------------------------------------------------------------------------------

# --- the hot loops: @micropython.viper where the port has it, exact on a 32-bit word -----------------------------
#
# Viper's ints are machine words (32 bits on a microcontroller, 64 on the unix port), so these kernels only ever
# form values that fit 32 bits, whatever the port: the unix port then runs exactly the arithmetic a board runs.
# ptr16 loads are unsigned: (v ^ 0x8000) - 0x8000 sign-extends an int16.

VIPER = False  # the tests turn it off to check the plain loops (the same results)
CHUNK_TERMS = 255  # a dot product's partial sums stay below 2**31 for at most this many terms (dot_row)
G_LIMIT = 1 << 15  # update_row's g * x + o fits 32 bits while |g| < this (the C's SMLABB condition too)

try:
    import micropython

    @micropython.viper
    def dot_chunk(w: ptr16, w_at: int, x: ptr16, x_at: int, n: int) -> int:
        """Sum of int16 w[w_at + j] times x[x_at + j], j < n, where |x| <= 255 and n <= CHUNK_TERMS: each term is
        below 2**23 and the sum below 2**31."""
        acc = 0
        j = 0
        while j < n:
            acc += ((int(w[w_at + j]) ^ 0x8000) - 0x8000) * ((int(x[x_at + j]) ^ 0x8000) - 0x8000)
            j += 1
        return acc

    @micropython.viper
    def update_row(w: ptr16, at: int, x: ptr16, n: int, g: int, offsets: ptr16) -> int:
        """w[at + j] = sat16(w[at + j] - ((g x_j + o) >> 16)) for j < n, o = offsets[j >> 3] (unsigned 16 bits),
        |g| < G_LIMIT so that g x_j + o < 2**31. Returns how many weights saturated."""
        sats = 0
        j = 0
        while j < n:
            step = (g * ((int(x[j]) ^ 0x8000) - 0x8000) + int(offsets[j >> 3])) >> 16
            v = ((int(w[at + j]) ^ 0x8000) - 0x8000) - step
            if v > 32767:
                v = 32767
                sats += 1
            elif v < -32768:
                v = -32768
                sats += 1
            w[at + j] = v
            j += 1
        return sats

    VIPER = True
except (ImportError, AttributeError, SyntaxError, NameError):  # a port without viper: the plain loops
    pass


def split_bytes(x):
    """x as its high bytes (-128..127) and low bytes (0..255): x = 256 hi + lo, so that a dot product of int16
    weights with either part stays below 2**31 for CHUNK_TERMS terms."""
    return array("h", [v >> 8 for v in x]), array("h", [v & 0xFF for v in x])


def dot_row(w, row, hi, lo, n):
    """The exact sum of w[row + j] x_j, from the viper chunks of the high and low bytes (Python ints add them)."""
    total = 0
    at = 0
    while at < n:
        count = min(CHUNK_TERMS, n - at)
        total += (dot_chunk(w, row + at, hi, at, count) << 8) + dot_chunk(w, row + at, lo, at, count)
        at += count
    return total


def row_sums(st, layer, x):
    """onw_dense_acc: the exact sums of every row of the layer's block with the int16 vector x (its first len(x)
    columns: a padded row's padding is left out, or meets a 0 in x)."""
    m = st.model
    w, base, n, stride = st.weights, st.offsets[layer], len(x), st.strides[layer]
    fast = VIPER
    if fast:
        hi, lo = split_bytes(x)
    out = []
    for i in range(m.DIMS[layer + 1]):
        row = base + i * stride
        if fast:
            out.append(dot_row(w, row, hi, lo, n))
        else:
            acc = 0
            for j in range(n):
                acc += w[row + j] * x[j]
            out.append(acc)
    return out


def dense(st, layer, x, relu, shift=-1):
    """onw_dense: int16 W (Q wf) times int16 x, exact sums, one rounding (by `shift`, default weight_frac) back to
    Q af, saturate, ReLU."""
    if shift < 0:
        shift = st.model.WEIGHT_FRAC
    half = (1 << (shift - 1)) if shift else 0
    out = []
    for acc in row_sums(st, layer, x):
        y = sat16(st, (acc + half) >> shift)
        out.append(y if y > 0 or not relu else 0)
    return out


def forward(st, layer, x):
    """onw_mlp_forward: ReLU unless it is the output layer."""
    return dense(st, layer, x, layer < len(st.model.DIMS) - 2)


def forward_pass(st, x):
    h = []
    for layer in range(len(st.model.DIMS) - 1):
        x = forward(st, layer, x)
        h.append(x)
    return h


def output_error(st, logits, label):
    """onw_mlp_output_error: softmax(z) - onehot(label), Q15 back to Q af; regression: sat16(z - target)."""
    if st.model.REGRESSION:
        return [sat16(st, logits[0] - label)]
    p = softmax_q15(logits, st.model.ACT_FRAC)
    p[label] -= ONE_Q15
    return [requant(st, v, 15, st.model.ACT_FRAC) for v in p]


def rounding_key(st, layer):
    return derive(derive(derive(st.seed, STREAM_ROUNDING), st.steps), layer)


def update(st, layer, delta, x, lr_q=-1, shift=-1, key=-1):
    """onw_dense_update: W -= lr * delta x^T / 2**shift over len(x) columns, the row factor
    g_i = stochastic_shift(delta_i lr_q, shift - 16, h_i) with h_i = rand(key, i), then per weight
    floor((g_i x_j + o) / 2**16), o the top 16 bits of word 1 + j // 8 of the LCG stream from h_i. Rows with
    delta_i == 0 do not change (every step is 0). Defaults: the state's lr_q, the model's UPDATE_SHIFT and the
    step's rounding key of the layer."""
    m = st.model
    w, base, n, stride = st.weights, st.offsets[layer], len(x), st.strides[layer]
    key = rounding_key(st, layer) if key < 0 else key
    shift = (m.UPDATE_SHIFT if shift < 0 else shift) - DITHER_BITS
    lr_q = st.lr_q if lr_q < 0 else lr_q
    groups = (n + DITHER_GROUP - 1) // DITHER_GROUP
    fast = VIPER
    xs = array("h", x) if fast else x
    offsets = array("H", bytes(2 * groups))
    for i in range(len(delta)):
        d = delta[i]
        if d == 0:
            continue
        h = rand(key, i)
        g = stochastic_shift(d * lr_q, shift, h)
        row = base + i * stride
        u = h
        if fast and -G_LIMIT < g < G_LIMIT:
            for k in range(groups):
                u = (u * DITHER_A + DITHER_C) & MASK32
                offsets[k] = u >> (32 - DITHER_BITS)
            # viper's ptr16 takes any buffer; the stubs' ptr16 type does not know array
            st.saturations += update_row(w, row, xs, n, g, offsets)  # pyright: ignore[reportArgumentType]
            continue
        for j in range(n):
            if j % DITHER_GROUP == 0:
                u = (u * DITHER_A + DITHER_C) & MASK32
                o = u >> (32 - DITHER_BITS)
            v = w[row + j] - ((g * x[j] + o) >> DITHER_BITS)
            w[row + j] = sat16(st, v)


# --- the rules ----------------------------------------------------------------------------------------------------

def feedback_row(st, i):
    """Row i of PEPITA's F (rules/pepita.py feedback_matrix): the LCG stream from rand(key, i), scaled."""
    m = st.model
    bound = m.FEEDBACK_BOUND
    u = rand(derive(st.seed, STREAM_FEEDBACK), i)
    row = []
    for _ in range(m.DIMS[-1]):
        row.append(((u * (2 * bound + 1)) >> 32) - bound)
        u = (u * DITHER_A + DITHER_C) & MASK32
    return row


def modulate(st, x, e):
    """x + requant(F e): F (Q ff) times e (Q af), back to Q af, saturated. F's rows are drawn as they are used
    (feedback_row's stream, inline: no list per row)."""
    m = st.model
    ff, bound = m.FEEDBACK_FRAC, m.FEEDBACK_BOUND
    span = 2 * bound + 1
    key = derive(st.seed, STREAM_FEEDBACK)
    out = []
    for i in range(len(x)):
        u = rand(key, i)
        acc = 0
        for c in range(len(e)):
            acc += (((u * span) >> 32) - bound) * e[c]
            u = (u * DITHER_A + DITHER_C) & MASK32
        out.append(sat16(st, x[i] + requant(st, acc, ff, 0)))
    return out


def hidden_delta(st, h, h_err):
    return [sat16(st, h[k] - h_err[k]) for k in range(len(h))]


def train_pepita(st, x, label):
    last = len(st.model.DIMS) - 2
    h = forward_pass(st, x)
    e = output_error(st, h[-1], label)
    h_err = modulate(st, x, e)
    for layer in range(last + 1):
        if layer < last:
            h_next = forward(st, layer, h_err)
            update(st, layer, hidden_delta(st, h[layer], h_next), h_err)
            h_err = h_next
        else:
            update(st, layer, e, h_err)
    return h[-1]


def train_mempepita(st, x, label):
    last = len(st.model.DIMS) - 2
    h = x
    for layer in range(last + 1):
        h = forward(st, layer, h)
    logits = h
    e = output_error(st, logits, label)
    h_clean, h_err = x, modulate(st, x, e)
    for layer in range(last + 1):
        if layer < last:
            next_clean, next_err = forward(st, layer, h_clean), forward(st, layer, h_err)
            update(st, layer, hidden_delta(st, next_clean, next_err), h_err)
            h_clean, h_err = next_clean, next_err
        else:
            update(st, layer, e, h_err)
    return logits


def train_last_layer(st, x, label):
    h = forward_pass(st, x)
    last = len(h) - 1
    update(st, last, output_error(st, h[-1], label), h[-2] if last > 0 else x)
    return h[-1]


# --- FFzero (rules/ffzero/fixed.py, rule_ffzero.c): dense blocks, layer-local losses, directional derivatives ---

LOSS_FRAC = 24
PROTO_FRAC = 15
Z_BITS = 24
RENORM_LIMIT = 1 << 14
STREAM_DIRECTIONS = 3


def bit_length(x):
    """Bits of x >= 0 (MicroPython's int has no bit_length)."""
    n = 0
    while x >= 0x10000:
        x >>= 16
        n += 16
    while x:
        x >>= 1
        n += 1
    return n


def isqrt(x):
    """floor(sqrt(x)) of x >= 0, exactly (Newton's method from above)."""
    if x < 2:
        return x
    r = 1 << ((bit_length(x) + 1) // 2)
    while True:
        y = (r + x // r) >> 1
        if y >= r:
            return r
        r = y


def accumulate(st, layer, h):
    """A = W [h, 2**af]: exact sums, Q(wf + af); the padding column meets 0."""
    m = st.model
    w, base, n_in, stride = st.weights, st.offsets[layer], m.DIMS[layer], st.strides[layer]
    one = 1 << m.ACT_FRAC
    out = []
    for o in range(m.DIMS[layer + 1]):
        row = base + o * stride
        acc = w[row + n_in] * one
        for i in range(n_in):
            acc += w[row + i] * h[i]
        out.append(acc)
    return out


def direction_key(st, layer, k):
    return derive(derive(derive(derive(st.seed, STREAM_DIRECTIONS), st.steps), layer), k)


def row_words(key, o, n_in, n_out):
    """Row o of a dense block's direction as its PRNG words: the inputs' signs are bit i % 32 of word i // 32
    (a row starts at word o * wpr), the bias's sign is the last entry's bit o % 32. 1 -> +1, 0 -> -1."""
    wpr = (n_in + 31) >> 5
    words = [rand(key, o * wpr + w) for w in range(wpr)]
    words.append(rand(key, n_out * wpr + (o >> 5)) >> (o & 31))
    return words


def direction_row(key, o, n_in, n_out):
    """Row o of a dense block's direction as ±1 values, the inputs then the bias (the padding's 0 left out):
    the twin of rules/ffzero/fixed.py dense_directions, for the tests."""
    words = row_words(key, o, n_in, n_out)
    row = [1 if (words[i >> 5] >> (i & 31)) & 1 else -1 for i in range(n_in)]
    row.append(1 if words[-1] & 1 else -1)
    return row


def rescale(zs):
    """The vectors shifted by one common power of two so that the largest |z| has Z_BITS bits."""
    top = 0
    for z in zs:
        for v in z:
            if abs(v) > top:
                top = abs(v)
    shift = bit_length(top) - Z_BITS
    if shift > 0:
        return [[round_shift(v, shift) for v in z] for z in zs]
    return [[v << -shift for v in z] for z in zs]


def projections(st, layer, z):
    """t_c = z . p_c with the layer's Q15 prototypes: the vote's scores (the cosines' argmax) and their numerators."""
    protos, count, width, base = st.protos, st.model.FFZERO_PROTOTYPES, len(z), st.proto_offsets[layer]
    out = []
    for c in range(count):
        at = base + c * width
        t = 0
        for i in range(width):
            t += protos[at + i] * z[i]
        out.append(t)
    return out


def cosines(st, layer, z):
    """s_c = (t_c << 9) / isqrt(z . z), C division, Q24; 0 when z = 0."""
    n = isqrt(sum(v * v for v in z))
    return [0 if n == 0 else div_trunc(t << (LOSS_FRAC - PROTO_FRAC), n) for t in projections(st, layer, z)]


def ffzero_loss(st, layer, z, target):
    s = cosines(st, layer, z)
    m = st.model
    if m.REGRESSION:
        e = (target << (LOSS_FRAC - m.ACT_FRAC)) - s[0]
        return round_shift(e * e, LOSS_FRAC)
    margin = m.FFZERO_MARGIN_Q
    return sum(max(0, margin + v - s[target]) for v in s)


def ffzero_learn(st, layer, h, a, target):
    """ΔL_k = L(z+) - L(z-) along K Rademacher directions, then the block's two-stage rounded step."""
    m = st.model
    n_in, n_out, stride = m.DIMS[layer], m.DIMS[layer + 1], st.strides[layer]
    p, one = m.FFZERO_PERTURBATION, 1 << m.ACT_FRAC
    keys = [direction_key(st, layer, k) for k in range(m.FFZERO_DIRECTIONS)]
    dl = []
    for key in keys:
        zp, zm = [], []
        for o in range(n_out):
            words = row_words(key, o, n_in, n_out)
            resp = one if words[-1] & 1 else -one
            for i in range(n_in):
                if (words[i >> 5] >> (i & 31)) & 1:
                    resp += h[i]
                else:
                    resp -= h[i]
            zp.append(a[o] + (resp << p))
            zm.append(a[o] - (resp << p))
        zp, zm = rescale([zp, zm])
        dl.append(ffzero_loss(st, layer, zp, target) - ffzero_loss(st, layer, zm, target))
    if not any(dl):
        return
    rkey = rounding_key(st, layer)
    shift = m.FFZERO_UPDATE_SHIFT - DITHER_BITS
    g = [stochastic_shift(st.lr_q * dl[k], shift, rand(rkey, n_out + k)) for k in range(len(dl))]
    n_dirs = len(g)
    w, base = st.weights, st.offsets[layer]
    big = False
    for o in range(n_out):
        rows = [row_words(key, o, n_in, n_out) for key in keys]
        u = rand(rkey, o)
        at = base + o * stride
        for j in range(stride):
            if j % DITHER_GROUP == 0:
                u = (u * DITHER_A + DITHER_C) & MASK32
                off = u >> (32 - DITHER_BITS)
            total = off
            if j <= n_in:  # the inputs and the bias; the padding column's direction is 0
                word = j >> 5 if j < n_in else -1
                bit = j & 31 if j < n_in else 0
                k = 0
                while k < n_dirs:  # a while loop: no iterator object per weight (the heap of a board)
                    total += g[k] if (rows[k][word] >> bit) & 1 else -g[k]
                    k += 1
            v = sat16(st, w[at + j] - (total >> DITHER_BITS))
            w[at + j] = v
            if v >= RENORM_LIMIT or v < -RENORM_LIMIT:
                big = True
    if big:  # the overflow guard: halve the block, rounding half up
        for j in range(base, base + n_out * stride):
            w[j] = (w[j] + 1) >> 1


def ffzero_run(st, x, target):
    """Layers 0 .. min(stage, L - 1) vote (or give s_0); the stage's layer learns when a target is given."""
    m = st.model
    layers = len(m.DIMS) - 1
    last = min(st.stage, layers - 1)
    h = x
    votes = []
    s0 = 0
    for layer in range(last + 1):
        a = accumulate(st, layer, h)
        z = rescale([a])[0]
        if m.REGRESSION:
            if layer == last:
                s0 = cosines(st, layer, z)[0]
        else:
            s = projections(st, layer, z)
            votes.append(s.index(max(s)))
        if layer < last:
            h = []
            for v in a:
                y = requant(st, v, m.WEIGHT_FRAC, 0)
                h.append(y if y > 0 or not m.FFZERO_RELU else 0)
        elif target is not None and st.stage < layers:
            ffzero_learn(st, layer, h, a, target)
    if m.REGRESSION:
        return [requant(st, s0, LOSS_FRAC, m.ACT_FRAC)]
    classes = m.NUM_OUTPUTS
    out, deepest = [0] * classes, [0] * classes
    for layer in range(len(votes)):
        out[votes[layer]] += 1
        deepest[votes[layer]] = layer + 1
    return [out[c] * (len(votes) + 1) + deepest[c] for c in range(classes)]


def train_ffzero(st, x, target):
    return ffzero_run(st, x, target)


# --- Forward-Forward (rules/ff.py, rule_ff.c) -----------------------------------------------------------------

STREAM_NEGATIVES = 4
FF_FLOOR = I16_MIN


def unit_length(st, v):
    """x^ in Q14: v / |v| (isqrt of the sum of squares with 8 guard bits, a reciprocal with 30 extra bits), then
    the bias input 2**14 and, if the row is padded, a 0."""
    m = st.model
    guard, recip, nf = m.FF_NORM_GUARD, m.FF_RECIP_SHIFT, m.FF_NORM_FRAC
    norm = isqrt(sum(a * a for a in v) << (2 * guard))
    inv = (1 << (nf + guard + recip)) // (norm + 1)
    out = [round_shift(a * inv, recip) for a in v]
    out.append(1 << nf)
    if len(out) & 1:
        out.append(0)
    return out


def ff_embed(st, x, label):
    v = list(x) + [0] * st.model.NUM_OUTPUTS
    v[len(x) + label] = st.model.FF_LABEL_Q
    return v


def ff_goodness(st, h):
    return round_shift(sum(a * a for a in h), st.model.ACT_FRAC)


def ff_forward(st, layer, v):
    """(x^, h, goodness in Q af) of one layer on its raw input v."""
    a = unit_length(st, v)
    h = dense(st, layer, a, True, st.model.FF_DENSE_SHIFT)
    return a, h, ff_goodness(st, h)


def ff_relative(scores):
    top = max(scores)
    return [max(s - top, FF_FLOOR) for s in scores]


def train_ff(st, x, label):
    m = st.model
    classes, layers, af = m.NUM_OUTPUTS, len(m.DIMS) - 1, m.ACT_FRAC
    key = derive(derive(st.seed, STREAM_NEGATIVES), st.steps)
    neg = (label + 1 + rand(key, 0) % (classes - 1)) % classes
    v_pos, v_neg = ff_embed(st, x, label), ff_embed(st, x, neg)
    score_pos = score_neg = 0
    for layer in range(layers):
        a_pos, h_pos, g_pos = ff_forward(st, layer, v_pos)
        a_neg, h_neg, g_neg = ff_forward(st, layer, v_neg)
        if layer >= m.FF_FIRST_SCORED:
            score_pos += g_pos
            score_neg += g_neg
        s_pos = sigmoid_q15(m.FF_THETA_Q - g_pos, af)
        s_neg = sigmoid_q15(g_neg - m.FF_THETA_Q, af)
        rkey = rounding_key(st, layer)
        update(st, layer, h_pos, [-a for a in a_pos], round_shift(st.lr_q * s_pos, 15), m.FF_UPDATE_SHIFT, rkey)
        update(st, layer, h_neg, a_neg, round_shift(st.lr_q * s_neg, 15), m.FF_UPDATE_SHIFT, derive(rkey, 1))
        v_pos, v_neg = h_pos, h_neg
    out = [FF_FLOOR] * classes
    both = ff_relative([score_pos, score_neg])
    out[label], out[neg] = both[0], both[1]
    return out


def infer_ff(st, x):
    """Every label's goodness: layer 0's sums over the features and the bias are the same for every label, and
    so is x^ of the label entry; each label adds its own column."""
    m = st.model
    n, layers = len(x), len(m.DIMS) - 1
    a = unit_length(st, ff_embed(st, x, 0))
    label_value = a[n]
    for c in range(m.NUM_OUTPUTS):
        a[n + c] = 0
    sums = row_sums(st, 0, a)
    w, stride, shift = st.weights, st.strides[0], m.FF_DENSE_SHIFT
    scores = []
    for c in range(m.NUM_OUTPUTS):
        h = []
        for o in range(len(sums)):
            y = requant(st, sums[o] + w[o * stride + n + c] * label_value, shift, 0)
            h.append(y if y > 0 else 0)
        total = ff_goodness(st, h) if m.FF_FIRST_SCORED == 0 else 0
        for layer in range(1, layers):
            _, h, g = ff_forward(st, layer, h)
            if layer >= m.FF_FIRST_SCORED:
                total += g
        scores.append(total)
    return ff_relative(scores)


# --- forward gradients (rules/fgrad.py, rule_fgrad.c) -----------------------------------------------------------

STREAM_TANGENTS = 5


def tangent_key(st, layer):
    return derive(derive(derive(st.seed, STREAM_TANGENTS), st.steps), layer)


def slope(st, e, t):
    """d = e . t_L, Q(2 af) -> Q(af)."""
    af = st.model.ACT_FRAC
    return requant(st, sum(e[c] * t[c] for c in range(len(e))), 2 * af, af)


def fgrad_activity(st, h, e):
    """Activity-perturbed tangents: per tangent k, unit signs (the top bit of rand(key, k * units + i): 1 -> -1)
    on the live units, pushed forward through the layers; each layer's delta is the mean of slope x signs."""
    m = st.model
    af, last, dirs = m.ACT_FRAC, len(m.DIMS) - 2, m.DIRECTIONS
    live = [[v > 0 for v in h[layer + 1]] if layer < last else [True] * m.DIMS[-1] for layer in range(last + 1)]
    keys = [tangent_key(st, layer) for layer in range(last + 1)]
    sums = [[0] * m.DIMS[layer + 1] for layer in range(last + 1)]
    for k in range(dirs):
        signs = []
        t = []
        for layer in range(last + 1):
            units = m.DIMS[layer + 1]
            s = [(-1 if rand(keys[layer], k * units + i) >> 31 else 1) if live[layer][i] else 0 for i in range(units)]
            signs.append(s)
            wt = dense(st, layer, t, False) if layer > 0 else [0] * units
            t = [sat16(st, wt[i] + (s[i] << af)) for i in range(units)]  # every unit counts its saturation
            t = [t[i] if live[layer][i] else 0 for i in range(units)]
        d = slope(st, e, t)
        for layer in range(last + 1):
            for i in range(len(sums[layer])):
                sums[layer][i] += d * signs[layer][i]
    for layer in range(last + 1):
        update(st, layer, [sat16(st, div_trunc(v, dirs)) for v in sums[layer]], h[layer])


def fgrad_weight(st, h, e):
    """Weight-perturbed tangents: sign of parameter p of tangent k is bit f % 32 of rand(key, f // 32) with
    f = k * size + p (1 -> -1); the tangent's forward pass, its slope, then W -= stochastic_shift(lr_q mean_k
    d_k V_k, FGRAD_SHIFT) with a hash per weight."""
    m = st.model
    wf, last, dirs = m.WEIGHT_FRAC, len(m.DIMS) - 2, m.DIRECTIONS
    sizes = [m.DIMS[layer] * m.DIMS[layer + 1] for layer in range(last + 1)]
    keys = [tangent_key(st, layer) for layer in range(last + 1)]
    sums = [[0] * sizes[layer] for layer in range(last + 1)]
    for k in range(dirs):
        t = []
        for layer in range(last + 1):
            n_in, n_out = m.DIMS[layer], m.DIMS[layer + 1]
            first, word, bits = k * sizes[layer], -1, 0
            vt = []
            for o in range(n_out):
                acc = 0
                for i in range(n_in):
                    f = first + o * n_in + i
                    if f >> 5 != word:
                        word = f >> 5
                        bits = rand(keys[layer], word)
                    acc += -h[layer][i] if (bits >> (f & 31)) & 1 else h[layer][i]
                vt.append(acc << wf)
            if layer > 0:
                wt = row_sums(st, layer, t)
                vt = [vt[o] + wt[o] for o in range(n_out)]
            t = [requant(st, v, wf, 0) for v in vt]
            if layer < last:
                t = [t[o] if h[layer + 1][o] > 0 else 0 for o in range(n_out)]
        d = slope(st, e, t)
        if d:
            for layer in range(last + 1):
                first, word, bits, acc = k * sizes[layer], -1, 0, sums[layer]
                for q in range(sizes[layer]):
                    f = first + q
                    if f >> 5 != word:
                        word = f >> 5
                        bits = rand(keys[layer], word)
                    acc[q] += -d if (bits >> (f & 31)) & 1 else d
    w, lr_q = st.weights, st.lr_q
    for layer in range(last + 1):
        base, rkey = st.offsets[layer], rounding_key(st, layer)
        for q in range(sizes[layer]):
            step = stochastic_shift(div_trunc(sums[layer][q], dirs) * lr_q, m.FGRAD_SHIFT, rand(rkey, q))
            w[base + q] = sat16(st, w[base + q] - step)


def train_fgrad(st, x, target):
    h = [x] + forward_pass(st, x)
    e = output_error(st, h[-1], target)
    if st.model.FGRAD_WEIGHT:
        fgrad_weight(st, h, e)
    else:
        fgrad_activity(st, h, e)
    return h[-1]


TRAIN_STEPS = {RULE_PEPITA: train_pepita, RULE_MEMPEPITA: train_mempepita, RULE_LAST_LAYER: train_last_layer,
               RULE_FFZERO: train_ffzero, RULE_FF: train_ff, RULE_FGRAD: train_fgrad}


def infer(st, x):
    if st.model.RULE == RULE_FFZERO:
        return ffzero_run(st, x, None)
    if st.model.RULE == RULE_FF:
        return infer_ff(st, x)
    for layer in range(len(st.model.DIMS) - 1):
        x = forward(st, layer, x)
    return x


def train(st, x, target):
    outputs = TRAIN_STEPS[st.model.RULE](st, x, target)
    st.steps = (st.steps + 1) & MASK32
    return outputs


# --- the protocol (app.c) -------------------------------------------------------------------------------------------

def cobs_decode(buf):
    """The decoded frame, or -1 - position of the bad code byte (onw_cobs_decode)."""
    out = bytearray()
    at, n = 0, len(buf)
    while at < n:
        code = buf[at]
        if code == 0 or at + code > n:
            return -1 - at
        out += buf[at + 1:at + code]
        at += code
        if code != 0xFF and at < n:
            out.append(0)
    return out


def cobs_encode(data):
    out = bytearray()
    start, n = 0, len(data)
    while True:
        end = start
        while end < n and data[end] != 0 and end - start < 254:
            end += 1
        out.append(end - start + 1)
        out += data[start:end]
        if end == n:
            break
        start = end + 1 if data[end] == 0 and end - start < 254 else end
    out.append(0)
    return out


def _i16(b, at):
    v = b[at] | (b[at + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _u32_at(b, at):
    return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)


def _u16(v):
    return bytes((v & 0xFF, (v >> 8) & 0xFF))


class Server:
    """firmware/src/app.c: frames in, commands run, replies out; malformed frames get an error frame and change
    nothing. `read` returns one byte (an int) or -1 when the link is closed; `write` sends bytes."""

    def __init__(self, model, read, write):
        self.model = model
        self.state = State(model)
        self.read, self.write = read, write
        self.frames_ok = 0
        self.frames_bad = 0
        self.sample_bytes = 2 + 2 * model.DIMS[0]

    def reply(self, command, body):
        raw = bytes((command,)) + _u16(len(body)) + body
        self.write(cobs_encode(raw + _u32(crc32(raw))))

    def error(self, code, command, expected, got):
        self.frames_bad += 1
        self.reply(CMD_ERROR, bytes((code, command)) + _u32(expected) + _u32(got))

    def target_ok(self, target):
        return self.model.REGRESSION or 0 <= target < self.model.NUM_CLASSES

    def sample(self, body, at):
        return [_i16(body, at + 2 * i) for i in range(self.model.DIMS[0])]

    def outputs_bytes(self, outputs):
        return b"".join(_u16(v & 0xFFFF) for v in outputs)

    def hello(self):
        m = self.model
        name = (m.NAME + "@" + m.BOARD).encode()
        body = bytes((PROTOCOL_VERSION, m.RULE, len(m.DIMS) - 1, m.ACT_FRAC, m.WEIGHT_FRAC, m.FEEDBACK_FRAC,
                      m.LR_FRAC, m.NUM_OUTPUTS))
        body += _u32(m.MODEL_HASH) + _u32(m.STATE_SIZE) + _u16(m.RX_MAX) + _u16(m.CHUNK) + _u16(m.MAX_BATCH)
        return body + b"".join(_u16(d) for d in m.DIMS) + name

    def dispatch(self, cmd, body):
        m, st, n = self.model, self.state, len(body)
        out = b""
        if cmd == CMD_HELLO:
            if n != 0:
                return self.error(ERR_BODY, cmd, 0, n)
            out = self.hello()
        elif cmd == CMD_RESET:
            if n not in (0, 4):
                return self.error(ERR_BODY, cmd, 4, n)
            st.reset(_u32_at(body, 0) if n == 4 else m.SEED)
        elif cmd == CMD_LOAD:
            if n < 4 or n > 4 + m.CHUNK:
                return self.error(ERR_BODY, cmd, 4 + m.CHUNK, n)
            offset = _u32_at(body, 0)
            if offset > m.STATE_SIZE or n - 4 > m.STATE_SIZE - offset:
                return self.error(ERR_ARGUMENT, cmd, m.STATE_SIZE, (offset + n - 4) & MASK32)
            for i in range(n - 4):
                st.set_byte(offset + i, body[4 + i])
        elif cmd == CMD_DUMP:
            if n != 6:
                return self.error(ERR_BODY, cmd, 6, n)
            offset, count = _u32_at(body, 0), body[4] | (body[5] << 8)
            if count > m.CHUNK or offset > m.STATE_SIZE or count > m.STATE_SIZE - offset:
                big = count > m.CHUNK
                return self.error(ERR_ARGUMENT, cmd, m.CHUNK if big else m.STATE_SIZE,
                                  count if big else (offset + count) & MASK32)
            out = st.image()[offset:offset + count]
        elif cmd == CMD_TRAIN:
            if n != self.sample_bytes:
                return self.error(ERR_BODY, cmd, self.sample_bytes, n)
            target = _i16(body, 0)
            if not self.target_ok(target):
                return self.error(ERR_ARGUMENT, cmd, m.NUM_CLASSES - 1, target & MASK32)
            out = self.outputs_bytes(train(st, self.sample(body, 2), target)) + _u32(st.digest())
        elif cmd == CMD_TRAIN_BATCH:
            if n < 2:
                return self.error(ERR_BODY, cmd, 2 + self.sample_bytes, n)
            count = body[0] | (body[1] << 8)
            if count == 0 or count > m.MAX_BATCH:
                return self.error(ERR_ARGUMENT, cmd, m.MAX_BATCH, count)
            if n != 2 + count * self.sample_bytes:
                return self.error(ERR_BODY, cmd, 2 + count * self.sample_bytes, n)
            for k in range(count):  # every target checked before the first step: a bad frame changes nothing
                target = _i16(body, 2 + k * self.sample_bytes)
                if not self.target_ok(target):
                    return self.error(ERR_ARGUMENT, cmd, m.NUM_CLASSES - 1, target & MASK32)
            parts = []
            for k in range(count):
                at = 2 + k * self.sample_bytes
                outputs = train(st, self.sample(body, at + 2), _i16(body, at))
                parts.append(self.outputs_bytes(outputs) + _u32(st.digest()))
            out = b"".join(parts)
        elif cmd == CMD_INFER:
            if n != 2 * m.DIMS[0]:
                return self.error(ERR_BODY, cmd, 2 * m.DIMS[0], n)
            out = self.outputs_bytes(infer(st, self.sample(body, 0)))
        elif cmd == CMD_STATS:
            if n != 0:
                return self.error(ERR_BODY, cmd, 0, n)
            out = (_u32(st.steps) + _u32(st.saturations) + _u32(self.frames_ok + 1) + _u32(self.frames_bad)
                   + _u32(cycles()) + _u32(st.digest()))
        elif cmd == CMD_SET_LR:
            if n != 4:
                return self.error(ERR_BODY, cmd, 4, n)
            lr_q = _u32_at(body, 0)
            if lr_q == 0 or lr_q > 0x7FFFFFFF:
                return self.error(ERR_ARGUMENT, cmd, 0x7FFFFFFF, lr_q)
            st.lr_q = lr_q
        elif cmd == CMD_SET_STAGE:
            if n != 4:
                return self.error(ERR_BODY, cmd, 4, n)
            stage = _u32_at(body, 0)
            if stage > m.NUM_STAGES:
                return self.error(ERR_ARGUMENT, cmd, m.NUM_STAGES, stage)
            st.stage = stage
        else:
            return self.error(ERR_COMMAND, cmd, 0, cmd)
        self.frames_ok += 1
        self.reply(cmd | REPLY, out)

    def handle(self, frame, received, overflow):
        if overflow:
            return self.error(ERR_OVERSIZED, 0, self.model.RX_MAX, received)
        raw = cobs_decode(frame)
        if isinstance(raw, int):
            return self.error(ERR_FRAMING, 0, received, -1 - raw)
        n = len(raw)
        if n < MIN_FRAME:
            return self.error(ERR_SHORT, raw[0] if n else 0, MIN_FRAME, n)
        crc = crc32(bytes(raw[:n - 4])) & MASK32
        carried = _u32_at(raw, n - 4)
        if crc != carried:
            return self.error(ERR_CRC, raw[0], crc, carried)
        length = raw[1] | (raw[2] << 8)
        if length != n - MIN_FRAME:
            return self.error(ERR_LENGTH, raw[0], n - MIN_FRAME, length)
        self.dispatch(raw[0], bytes(raw[3:n - 4]))

    def serve(self):
        """Frames until the link closes (boards: never)."""
        rx_max = self.model.RX_MAX
        frame = bytearray()
        received, overflow = 0, False
        while True:
            c = self.read()
            if c < 0:
                return
            if c == 0:
                if received or overflow:
                    self.handle(frame, received, overflow)
                frame = bytearray()
                received, overflow = 0, False
            elif received < rx_max:
                frame.append(c)
                received += 1
            else:
                overflow = True
                received += 1


try:
    import time

    _T0 = time.ticks_us()
except (ImportError, AttributeError):  # a port without ticks_us
    time = None
    _T0 = 0


def cycles():
    """A free-running counter for STATS: microseconds since the module loaded where the port has time.ticks_us
    (it wraps sooner than 2**32 on some ports: only a rough time base, as the emulated boards' SysTick), else 0."""
    if time is None:
        return 0
    return time.ticks_diff(time.ticks_us(), _T0) & MASK32


def stdio_link():
    """The unix port's stdin/stdout (or a board's USB-CDC REPL port), raw bytes; Ctrl-C must not interrupt."""
    try:
        import micropython

        micropython.kbd_intr(-1)  # a 0x03 byte in a frame is data, not a KeyboardInterrupt
    except (ImportError, AttributeError):
        pass
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def read():
        b = stdin.read(1)
        return b[0] if b else -1

    def write(data):
        stdout.write(data)
        if hasattr(stdout, "flush"):
            stdout.flush()

    return read, write


def main(model):
    """Serve the protocol for `model` (a generated model module) on stdin/stdout."""
    read, write = stdio_link()
    Server(model, read, write).serve()
