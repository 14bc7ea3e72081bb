/*
 * test_vectors.c -- check the C reference codec against the golden vectors.
 *
 *     gcc -std=c99 -Wall -Wextra -Werror -O1 memhw_frame.c test_vectors.c -o test_vectors
 *     ./test_vectors ../vectors/vectors.txt
 *
 * For every vector (format described in firmware_protocol/goldens.py) the wire
 * bytes are decoded in one block and again byte by byte: the decoder must emit
 * exactly the expected frames (header fields and payload) and drop the expected
 * number of frames for the expected reason. Every expected frame must encode
 * back to its wire bytes, and COBS-decode and re-encode identically. Prints
 * "N passed, M failed" and exits 1 if anything failed, 2 on a malformed file.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "memhw_frame.h"

#define MAX_WIRE 8192
#define MAX_FRAMES 8
#define MAX_PAYLOAD 2048
#define MAX_FRAME_WIRE MEMHW_FRAME_MAX_ENCODED(MAX_PAYLOAD)

typedef struct expected_frame {
    memhw_header_t header;
    uint8_t payload[MAX_PAYLOAD];
    uint8_t wire[MAX_FRAME_WIRE];
    size_t wire_len;
} expected_frame_t;

typedef struct vector {
    char name[64];
    unsigned long drops;
    memhw_drop_reason_t drop_reason;
    uint8_t wire[MAX_WIRE];
    size_t wire_len;
    size_t n_frames;
    expected_frame_t frames[MAX_FRAMES];
} vector_t;

static const char *const drop_names[] = {"none", "overflow", "bad_cobs", "short", "bad_crc", "bad_length"};

static vector_t vec;                    /* the vector being checked (too big for the stack) */
static uint8_t decoder_buf[MAX_WIRE];   /* decoder storage; decoder_size bytes are used */
static size_t decoder_size;
static char failure[256];               /* why the current check failed */

/* ------------------------------------------------------------------ parsing */

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Read one hex token ("-" = no bytes) of at most cap bytes; 0 on success. */
static int read_hex(FILE *f, uint8_t *dst, size_t cap, size_t *len)
{
    int c;
    size_t n = 0;
    do {
        c = fgetc(f);
    } while (c == ' ' || c == '\t');
    if (c == '-') {
        *len = 0;
        return 0;
    }
    while (c != EOF && !isspace(c)) {
        int hi = hex_digit(c), lo = hex_digit(fgetc(f));
        if (hi < 0 || lo < 0 || n == cap) {
            return -1;
        }
        dst[n++] = (uint8_t)(hi << 4 | lo);
        c = fgetc(f);
    }
    *len = n;
    return n > 0 ? 0 : -1;
}

static int parse_drop_reason(const char *word, memhw_drop_reason_t *reason)
{
    size_t i;
    for (i = 0; i < sizeof drop_names / sizeof drop_names[0]; i++) {
        if (strcmp(word, drop_names[i]) == 0) {
            *reason = (memhw_drop_reason_t)i;
            return 0;
        }
    }
    return -1;
}

/* Read a "frame" line's fields (after the keyword) into *e; 0 on success. */
static int read_frame(FILE *f, expected_frame_t *e)
{
    unsigned v[8];
    size_t payload_len;
    if (fscanf(f, "%x %x %x %x %x %x %x %x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8
        || read_hex(f, e->payload, sizeof e->payload, &payload_len) != 0
        || read_hex(f, e->wire, sizeof e->wire, &e->wire_len) != 0 || payload_len != v[7]) {
        return -1;
    }
    e->header.version = (uint8_t)v[0];
    e->header.flags = (uint8_t)v[1];
    e->header.seq = (uint16_t)v[2];
    e->header.opcode = (uint8_t)v[3];
    e->header.status = (uint8_t)v[4];
    e->header.session = (uint16_t)v[5];
    e->header.chunk = (uint16_t)v[6];
    e->header.length = (uint16_t)v[7];
    return 0;
}

/* Read a "vector" line (after the keyword) and its frame lines into vec; 0 on success. */
static int read_vector(FILE *f)
{
    char reason[16], keyword[16];
    size_t i;
    if (fscanf(f, "%63s %lu %lu %15s", vec.name, (unsigned long *)&i, &vec.drops, reason) != 4
        || i > MAX_FRAMES || parse_drop_reason(reason, &vec.drop_reason) != 0
        || read_hex(f, vec.wire, sizeof vec.wire, &vec.wire_len) != 0) {
        return -1;
    }
    vec.n_frames = i;
    for (i = 0; i < vec.n_frames; i++) {
        if (fscanf(f, "%15s", keyword) != 1 || strcmp(keyword, "frame") != 0 || read_frame(f, &vec.frames[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------- checks */

static int fail(const char *what, size_t index)
{
    snprintf(failure, sizeof failure, "%s (frame %lu)", what, (unsigned long)index);
    return -1;
}

static int same_header(const memhw_header_t *a, const memhw_header_t *b)
{
    return a->version == b->version && a->flags == b->flags && a->seq == b->seq && a->opcode == b->opcode
           && a->status == b->status && a->session == b->session && a->chunk == b->chunk && a->length == b->length;
}

/* Decode vec.wire in one block or byte by byte and compare with the expectations. */
static int check_decode(int bytewise)
{
    memhw_decoder_t dec;
    memhw_frame_t frame;
    const uint8_t *data = vec.wire;
    size_t len = vec.wire_len, got = 0;

    memhw_decoder_init(&dec, decoder_buf, decoder_size);
    while (len > 0) {
        int have;
        if (bytewise) {
            have = memhw_decoder_push(&dec, *data++, &frame);
            len--;
        } else {
            have = memhw_decoder_feed(&dec, &data, &len, &frame);
        }
        if (!have) {
            continue;
        }
        if (got == vec.n_frames) {
            return fail("unexpected extra frame", got);
        }
        if (!same_header(&frame.header, &vec.frames[got].header)) {
            return fail("header differs", got);
        }
        if (memcmp(frame.payload, vec.frames[got].payload, frame.header.length) != 0) {
            return fail("payload differs", got);
        }
        got++;
    }
    if (got != vec.n_frames) {
        return fail("missing frame", got);
    }
    if (dec.dropped != vec.drops || dec.last_drop != vec.drop_reason) {
        snprintf(failure, sizeof failure, "dropped %lu (last: %s), expected %lu (%s)", (unsigned long)dec.dropped,
                 drop_names[dec.last_drop], vec.drops, drop_names[vec.drop_reason]);
        return -1;
    }
    return 0;
}

/* Encode every expected frame and compare with its wire bytes; round-trip its COBS body. */
static int check_encode(void)
{
    static uint8_t out[MAX_FRAME_WIRE], body[MAX_FRAME_WIRE];
    size_t i, n, body_len;
    for (i = 0; i < vec.n_frames; i++) {
        const expected_frame_t *e = &vec.frames[i];
        n = memhw_frame_encode(&e->header, e->payload, out, sizeof out);
        if (n != e->wire_len || memcmp(out, e->wire, n) != 0) {
            return fail("memhw_frame_encode differs from the wire bytes", i);
        }
        if (memhw_frame_encode(&e->header, e->payload, out, n - 1u) != 0) {
            return fail("memhw_frame_encode ignored its capacity", i);
        }
        if (memhw_cobs_decode(e->wire, e->wire_len - 1u, body, sizeof body, &body_len) != 0
            || body_len != MEMHW_HEADER_SIZE + e->header.length + MEMHW_CRC_SIZE) {
            return fail("memhw_cobs_decode failed", i);
        }
        n = memhw_cobs_encode(body, body_len, out, sizeof out);
        if (n != e->wire_len - 1u || memcmp(out, e->wire, n) != 0) {
            return fail("memhw_cobs_encode differs from the wire bytes", i);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    FILE *f;
    char keyword[32];
    int passed = 0, failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s vectors.txt\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    while (fscanf(f, "%31s", keyword) == 1) {
        if (keyword[0] == '#') {
            int c;
            do {
                c = fgetc(f);
            } while (c != '\n' && c != EOF);
        } else if (strcmp(keyword, "decoder_buffer") == 0) {
            unsigned long size;
            if (fscanf(f, "%lu", &size) != 1 || size > sizeof decoder_buf) {
                fprintf(stderr, "%s: bad decoder_buffer\n", argv[1]);
                return 2;
            }
            decoder_size = (size_t)size;
        } else if (strcmp(keyword, "vector") == 0 && decoder_size > 0) {
            if (read_vector(f) != 0) {
                fprintf(stderr, "%s: malformed vector after '%s'\n", argv[1], vec.name);
                return 2;
            }
            if (check_decode(0) == 0 && check_decode(1) == 0 && check_encode() == 0) {
                passed++;
            } else {
                failed++;
                printf("FAIL %s: %s\n", vec.name, failure);
            }
        } else {
            fprintf(stderr, "%s: unexpected '%s'\n", argv[1], keyword);
            return 2;
        }
    }
    fclose(f);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
