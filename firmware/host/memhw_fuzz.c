/*
 * memhw_fuzz.c -- fuzz driver of the core's decoder and dispatcher, for the sanitizer
 * build (-fsanitize=address,undefined; tests/firmware/test_sanitizers.py).
 *
 *     memhw_fuzz CORPUS ITERATIONS SEED
 *
 * CORPUS holds one message per line as hex wire bytes (requests of every message with valid
 * and boundary fields, the golden vectors). Each iteration takes a corpus message, gives it
 * the current session id (so it reaches the handlers), mutates its payload (bit flips,
 * truncation, extension, a huge array count, bytes of another message) and re-frames it
 * with a valid CRC, or damages the wire bytes themselves, then feeds the bytes to the core
 * in random pieces. Sometimes an ABORT waits on the link while an operation runs, or the
 * board reboots mid-batch. Every byte the core sends must decode as a valid frame.
 * Prints "fuzz: N messages fed, R replies, 0 bad replies, K kinds of reply" (K: distinct
 * opcode/status pairs answered) and exits 0, or exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memhw_board_reference.h"
#include "memhw_core.h"
#include "memhw_stub_hal.h"

#ifndef FUZZ_MAX_MESSAGE
#define FUZZ_MAX_MESSAGE 8192u
#endif
#ifndef FUZZ_CACHE
#define FUZZ_CACHE 65536u
#endif
#define MAX_FRAME 1024u
#define CORPUS_MAX 512

static uint8_t frame_buf[2][MEMHW_DECODER_BUFFER_SIZE(0xFFFFu)];
static uint8_t message_buf[2][FUZZ_MAX_MESSAGE];
static uint8_t inbox[FUZZ_MAX_MESSAGE + 256u];
static uint8_t cache[FUZZ_CACHE];
static uint8_t tx[MEMHW_FRAME_MAX_ENCODED(MAX_FRAME)];
static uint64_t planner[65536u / 8u];
static float calibration[MEMHW_CALIBRATION_FLOATS(MEMHW_ROWS_MAX, MEMHW_COLS_MAX, MEMHW_GAINS_MAX)];
static uint8_t tile_lines[4096];
static memhw_core_t core;
static memhw_stub_hal_t hal;

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob_t;

static blob_t corpus[CORPUS_MAX];
static int corpus_n;
static uint32_t rng = 12345u;
static unsigned long replies, bad_replies;
static memhw_decoder_t check;
static uint8_t check_buf[MEMHW_DECODER_BUFFER_SIZE(MAX_FRAME)];
static uint16_t session_seen;
static uint8_t kinds[256][16]; /* (opcode, status) pairs answered */

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* every byte the core sends must be a valid frame */
static void on_write(void *ctx, const uint8_t *data, size_t len)
{
    memhw_frame_t f;
    uint32_t dropped = check.dropped;
    (void)ctx;
    while (memhw_decoder_feed(&check, &data, &len, &f)) {
        replies++;
        kinds[f.header.opcode][f.header.status & 15u] = 1;
        if (!(f.header.flags & MEMHW_FLAG_REPLY) || f.header.length > MAX_FRAME) {
            bad_replies++;
        }
        if (f.header.opcode == 0x01 && f.header.status == 0 && f.header.session) {
            session_seen = f.header.session;
        }
    }
    if (check.dropped != dropped) {
        bad_replies++;
    }
}

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : (ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1);
}

static int load(const char *path)
{
    static char line[300000];
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    while (corpus_n < CORPUS_MAX && fgets(line, sizeof line, f)) {
        size_t n = strlen(line) / 2u, i;
        blob_t *b = &corpus[corpus_n];
        if (n == 0) {
            continue;
        }
        b->p = (uint8_t *)malloc(n);
        b->n = 0;
        for (i = 0; i < n; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                break;
            }
            b->p[b->n++] = (uint8_t)(hi << 4 | lo);
        }
        corpus_n++;
    }
    fclose(f);
    return corpus_n > 0 ? 0 : -1;
}

/* decode a corpus message (one or more frames) to header + payload */
static int unframe(const blob_t *b, memhw_header_t *h, uint8_t *payload, size_t *len)
{
    static uint8_t buf[MEMHW_DECODER_BUFFER_SIZE(0xFFFFu)];
    memhw_decoder_t d;
    memhw_frame_t f;
    const uint8_t *p = b->p;
    size_t n = b->n;
    int frames = 0;
    *len = 0;
    memhw_decoder_init(&d, buf, sizeof buf);
    while (memhw_decoder_feed(&d, &p, &n, &f)) {
        if (frames == 0) {
            *h = f.header;
        }
        if (*len + f.header.length > FUZZ_MAX_MESSAGE * 2u) {
            return -1;
        }
        memcpy(payload + *len, f.payload, f.header.length);
        *len += f.header.length;
        frames++;
    }
    return frames ? 0 : -1;
}

/* frame a message with chunks of at most `chunk` bytes into out */
static size_t reframe(const memhw_header_t *h0, const uint8_t *payload, size_t len, size_t chunk, uint8_t *out)
{
    size_t pos = 0, at = 0;
    uint16_t i = 0;
    do {
        memhw_header_t h = *h0;
        size_t part = len - at < chunk ? len - at : chunk;
        h.chunk = i++;
        h.length = (uint16_t)part;
        h.flags = (uint8_t)((h.flags & ~MEMHW_FLAG_MORE) | (at + part < len ? MEMHW_FLAG_MORE : 0));
        pos += memhw_frame_encode(&h, payload + at, out + pos, MEMHW_FRAME_MAX_ENCODED(0xFFFFu));
        at += part;
    } while (at < len);
    return pos;
}

static void feed(const uint8_t *p, size_t n)
{
    while (n) {
        size_t k = 1u + rnd() % (n < 300u ? n : 300u);
        memhw_core_receive(&core, 0, p, k);
        p += k;
        n -= k;
    }
}

static void mutate(uint8_t *payload, size_t *len)
{
    size_t n = *len, k;
    switch (rnd() % 7u) {
    case 0: /* bit flips */
        for (k = 0; k < 1u + rnd() % 4u && n; k++) {
            payload[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8u));
        }
        break;
    case 1: /* truncate */
        *len = n ? rnd() % n : 0;
        break;
    case 2: /* extend */
        for (k = 0; k < 1u + rnd() % 16u; k++) {
            payload[(*len)++] = (uint8_t)rnd();
        }
        break;
    case 3: /* a huge or off-by-one array count / string length somewhere */
        if (n >= 4) {
            size_t at = rnd() % (n - 3u);
            uint32_t v = rnd() % 2u ? 0xFFFFFFFFu - rnd() % 3u : (payload[at] + 1u);
            memcpy(payload + at, &v, 4);
        }
        break;
    case 4: /* bytes of another message */
        if (corpus_n) {
            const blob_t *o = &corpus[rnd() % (uint32_t)corpus_n];
            for (k = 0; k < o->n && *len < FUZZ_MAX_MESSAGE; k++) {
                payload[(*len)++] = o->p[k];
            }
        }
        break;
    default: /* unchanged: valid requests reach every handler */
        break;
    }
}

int main(int argc, char **argv)
{
    static uint8_t payload[FUZZ_MAX_MESSAGE * 2u + 64u], wire[MEMHW_FRAME_MAX_ENCODED(0xFFFFu) * 4u];
    static uint8_t abort_wire[64];
    memhw_board_t board;
    memhw_buffers_t buf;
    unsigned long iterations, it, fed = 0;
    unsigned i;
    if (argc != 4 || load(argv[1]) != 0) {
        fprintf(stderr, "usage: memhw_fuzz CORPUS ITERATIONS SEED (corpus: hex lines)\n");
        return 2;
    }
    iterations = strtoul(argv[2], 0, 10);
    rng = (uint32_t)strtoul(argv[3], 0, 10) | 1u;
    memhw_reference_board(&board, 16, MAX_FRAME, FUZZ_MAX_MESSAGE);
    board.watchdog_ms = 50;
    memset(&buf, 0, sizeof buf);
    for (i = 0; i < 2u; i++) {
        buf.conn[i].frame = frame_buf[i];
        buf.conn[i].frame_size = sizeof frame_buf[i];
        buf.conn[i].message = message_buf[i];
        buf.conn[i].message_size = sizeof message_buf[i];
    }
    buf.n_conn = 2;
    buf.inbox = inbox;
    buf.inbox_size = sizeof inbox;
    buf.cache = cache;
    buf.cache_size = sizeof cache;
    buf.tx = tx;
    buf.tx_size = sizeof tx;
    buf.planner = planner;
    buf.planner_size = sizeof planner;
    buf.calibration = calibration;
    buf.calibration_size = sizeof calibration;
    buf.tiles = tile_lines;
    buf.tiles_size = sizeof tile_lines;
    memhw_stub_hal_init(&hal, rng, board.rows, board.cols, board.n_gains);
    hal.on_write = on_write;
    memhw_decoder_init(&check, check_buf, sizeof check_buf);
    if (memhw_core_init(&core, &hal, &board, &buf) != 0 || memhw_core_open(&core, "fuzz") != 0 ||
        memhw_core_open(&core, "other") != 1) {
        fprintf(stderr, "core init failed\n");
        return 1;
    }
    for (it = 0; it < iterations; it++) {
        const blob_t *b = &corpus[rnd() % (uint32_t)corpus_n];
        memhw_header_t h;
        size_t len, n;
        if (unframe(b, &h, payload, &len) != 0) {
            feed(b->p, b->n); /* not decodable: feed it as it is */
            fed++;
            continue;
        }
        if (h.opcode != 0x01 && rnd() % 8u) {
            h.session = session_seen; /* reach the handlers, not only the session check */
        }
        mutate(payload, &len);
        n = reframe(&h, payload, len, rnd() % 4u ? MAX_FRAME : 240u, wire);
        if (rnd() % 16u == 0 && n) { /* damage the wire bytes too */
            wire[rnd() % n] ^= (uint8_t)(1u + rnd() % 255u);
        }
        hal.reboot_every = rnd() % 32u == 0 ? 5u : 0u;
        if (rnd() % 8u == 0) { /* an ABORT waits on the link while an operation runs */
            memhw_header_t a = {MEMHW_PROTOCOL_MAJOR, 0, (uint16_t)rnd(), 0x0A, 0, 0, 0, 0};
            a.session = session_seen;
            hal.in = abort_wire;
            hal.in_len = memhw_frame_encode(&a, 0, abort_wire, sizeof abort_wire);
        }
        if (rnd() % 16u == 0) {
            memhw_core_receive(&core, 1, wire, n); /* from another host */
        } else {
            feed(wire, n);
        }
        hal.in_len = 0;
        if (rnd() % 64u == 0) {
            memhw_core_check_watchdog(&core, hal.ms + 1000u);
        }
        fed++;
    }
    {
        unsigned long n_kinds = 0;
        unsigned o, k;
        for (o = 0; o < 256u; o++) {
            for (k = 0; k < 16u; k++) {
                n_kinds += kinds[o][k];
            }
        }
        printf("fuzz: %lu messages fed, %lu replies, %lu bad replies, %lu kinds of reply\n", fed, replies,
               bad_replies, n_kinds);
    }
    return bad_replies ? 1 : 0;
}
