/*
 * memhw_frame.h -- portable C99 reference codec for memhw protocol frames.
 *
 * A frame on the wire is COBS(header + payload + CRC-32) followed by one 0x00
 * delimiter (see memhw_protocol.h). This module provides the CRC-32, COBS
 * encoding and decoding, explicit little-endian header parsing and building,
 * whole-frame encoding, and an incremental decoder fed byte by byte or in
 * blocks. It uses no dynamic memory and makes no assumption about the host's
 * byte order, alignment or struct packing. Message payloads (the field layouts
 * documented in memhw_protocol.h) are left to the caller.
 */
#ifndef MEMHW_FRAME_H
#define MEMHW_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "memhw_protocol.h"

/* Byte that ends every frame; COBS-encoded data never contains it. */
#define MEMHW_DELIMITER 0x00u

/* Upper bound on the COBS encoding of n bytes (without the delimiter). */
#define MEMHW_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/*
 * Buffer size for a decoder that must accept frames of up to max_payload
 * payload bytes (the encoded bytes between two delimiters).
 */
#define MEMHW_DECODER_BUFFER_SIZE(max_payload) \
    MEMHW_COBS_MAX_ENCODED(MEMHW_HEADER_SIZE + (max_payload) + MEMHW_CRC_SIZE)

/* Upper bound on memhw_frame_encode()'s output for payload_len bytes, delimiter included. */
#define MEMHW_FRAME_MAX_ENCODED(payload_len) (MEMHW_DECODER_BUFFER_SIZE(payload_len) + 1u)

/* The frame header, field for field (see MEMHW_HDR_* in memhw_protocol.h). */
typedef struct memhw_header {
    uint8_t version;  /* protocol major version of the sender */
    uint8_t flags;    /* MEMHW_FLAG_* bits */
    uint16_t seq;     /* sequence number, echoed by replies */
    uint8_t opcode;   /* memhw_opcode_t */
    uint8_t status;   /* memhw_status_t; 0 in requests */
    uint16_t session; /* session id from the HELLO reply; 0 in HELLO requests */
    uint16_t chunk;   /* index of this frame within its message */
    uint16_t length;  /* payload bytes in this frame */
} memhw_header_t;

/* A decoded frame: its header and header.length payload bytes. */
typedef struct memhw_frame {
    memhw_header_t header;
    const uint8_t *payload; /* points into the decoder's buffer */
} memhw_frame_t;

/* Why the decoder discarded a frame. */
typedef enum memhw_drop_reason {
    MEMHW_DROP_NONE = 0,   /* nothing dropped yet */
    MEMHW_DROP_OVERFLOW,   /* more bytes between delimiters than the buffer holds */
    MEMHW_DROP_BAD_COBS,   /* not a valid COBS encoding */
    MEMHW_DROP_SHORT,      /* decoded to fewer than header + CRC bytes */
    MEMHW_DROP_BAD_CRC,    /* CRC-32 mismatch */
    MEMHW_DROP_BAD_LENGTH  /* header length field disagrees with the frame size */
} memhw_drop_reason_t;

/* Incremental frame decoder; treat the members as read-only. */
typedef struct memhw_decoder {
    uint8_t *buf;                  /* caller's buffer for one encoded frame */
    size_t cap;                    /* its size in bytes */
    size_t len;                    /* bytes of the current frame so far */
    int overflow;                  /* current frame did not fit; discard it */
    uint32_t dropped;              /* frames discarded since init */
    memhw_drop_reason_t last_drop; /* why the last one was discarded */
} memhw_decoder_t;

/*
 * CRC-32 (IEEE 802.3, reflected, as zlib's crc32()): pass crc = 0 to start,
 * or a previous result to continue over more data.
 */
uint32_t memhw_crc32(uint32_t crc, const uint8_t *data, size_t len);

/*
 * COBS-encode len bytes of src into dst (no delimiter appended; src and dst
 * must not overlap). Returns the encoded length, or 0 if it exceeds cap
 * (MEMHW_COBS_MAX_ENCODED(len) always suffices).
 */
size_t memhw_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/*
 * COBS-decode len bytes of src (without the delimiter) into dst, which may
 * equal src to decode in place. Stores the decoded length in *out_len and
 * returns 0, or returns -1 if src is not a valid encoding or the result
 * exceeds cap.
 */
int memhw_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *out_len);

/* Read a header from MEMHW_HEADER_SIZE bytes at src. */
void memhw_header_parse(const uint8_t *src, memhw_header_t *header);

/* Write a header as MEMHW_HEADER_SIZE bytes at dst. */
void memhw_header_build(const memhw_header_t *header, uint8_t *dst);

/*
 * Encode one frame, delimiter included: header (whose length field gives the
 * payload size) and header->length bytes of payload (may be NULL if 0).
 * Returns the bytes written to dst, or 0 if they exceed cap
 * (MEMHW_FRAME_MAX_ENCODED(header->length) always suffices).
 */
size_t memhw_frame_encode(const memhw_header_t *header, const uint8_t *payload, uint8_t *dst, size_t cap);

/*
 * Start decoding into buf, cap bytes, which bounds the encoded size of a frame
 * (see MEMHW_DECODER_BUFFER_SIZE). Resets the drop counter.
 */
void memhw_decoder_init(memhw_decoder_t *decoder, uint8_t *buf, size_t cap);

/* Forget any partial frame (e.g. after a UART error); counters are kept. */
void memhw_decoder_reset(memhw_decoder_t *decoder);

/*
 * Feed one received byte. Returns 1 when it completes a valid frame, stored in
 * *frame (its payload stays valid until the next call), else 0. Invalid frames
 * are counted in decoder->dropped and skipped; decoding resumes after the next
 * delimiter.
 */
int memhw_decoder_push(memhw_decoder_t *decoder, uint8_t byte, memhw_frame_t *frame);

/*
 * Feed a block of *len bytes at *data: consumes bytes up to and including the
 * first delimiter that completes a valid frame, advancing *data and *len, and
 * returns 1 with the frame in *frame; returns 0 once all bytes are consumed
 * without completing one. Typical use:
 *
 *     while (memhw_decoder_feed(&dec, &data, &len, &frame)) handle(&frame);
 */
int memhw_decoder_feed(memhw_decoder_t *decoder, const uint8_t **data, size_t *len, memhw_frame_t *frame);

#endif /* MEMHW_FRAME_H */
