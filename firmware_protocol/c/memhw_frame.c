/*
 * memhw_frame.c -- portable C99 reference codec for memhw protocol frames.
 * See memhw_frame.h for the interface.
 */
#include "memhw_frame.h"

/* CRC-32 of each nibble value, reflected polynomial 0xEDB88320. */
static const uint32_t crc_nibble[16] = {
    0x00000000UL, 0x1DB71064UL, 0x3B6E20C8UL, 0x26D930ACUL, 0x76DC4190UL, 0x6B6B51F4UL,
    0x4DB26158UL, 0x5005713CUL, 0xEDB88320UL, 0xF00F9344UL, 0xD6D6A3E8UL, 0xCB61B38CUL,
    0x9B64C2B0UL, 0x86D3D2D4UL, 0xA00AE278UL, 0xBDBDF21CUL,
};

uint32_t memhw_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    crc = (uint32_t)~crc;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return (uint32_t)~crc;
}

/* Little-endian access, independent of the host's byte order and alignment. */
static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)((v >> 24) & 0xFFu);
}

/*
 * Streaming COBS encoder, so a frame's header, payload and CRC can be encoded
 * from separate buffers. Each block starts with a code byte (block length + 1)
 * whose position is reserved when the block opens and filled when it closes.
 * A block closes at a zero byte or after 254 data bytes; in the latter case the
 * next block is only opened when more data follows, so a maximal block at the
 * end of the data gets no empty block after it (the encoding the Python cobs
 * package produces). Writes past cap are counted but not stored.
 */
typedef struct cobs_writer {
    uint8_t *dst;
    size_t cap;
    size_t pos;      /* bytes produced so far */
    size_t code_pos; /* where the open block's code byte goes */
    uint8_t code;    /* open block's data bytes + 1 */
} cobs_writer_t;

static void cobs_open(cobs_writer_t *w)
{
    w->code_pos = w->pos++;
    w->code = 1;
}

static void cobs_close(cobs_writer_t *w)
{
    if (w->code_pos < w->cap) {
        w->dst[w->code_pos] = w->code;
    }
}

static void cobs_begin(cobs_writer_t *w, uint8_t *dst, size_t cap)
{
    w->dst = dst;
    w->cap = cap;
    w->pos = 0;
    cobs_open(w);
}

static void cobs_write(cobs_writer_t *w, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (w->code == 0xFFu) {
            cobs_close(w);
            cobs_open(w);
        }
        if (data[i] == 0) {
            cobs_close(w);
            cobs_open(w);
        } else {
            if (w->pos < w->cap) {
                w->dst[w->pos] = data[i];
            }
            w->pos++;
            w->code++;
        }
    }
}

/* Close the last block; the encoded length, or 0 if it did not fit. */
static size_t cobs_end(cobs_writer_t *w)
{
    cobs_close(w);
    return w->pos <= w->cap ? w->pos : 0;
}

size_t memhw_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
    cobs_writer_t w;
    cobs_begin(&w, dst, cap);
    cobs_write(&w, src, len);
    return cobs_end(&w);
}

int memhw_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *out_len)
{
    /* out < in whenever dst is written, so decoding in place never overwrites unread input */
    size_t in = 0, out = 0;
    while (in < len) {
        uint8_t code = src[in++];
        size_t n;
        if (code == 0 || (size_t)code - 1u > len - in) {
            return -1;
        }
        for (n = (size_t)code - 1u; n > 0; n--) {
            if (src[in] == 0 || out == cap) {
                return -1;
            }
            dst[out++] = src[in++];
        }
        if (code != 0xFFu && in < len) { /* a short block, unless last, stands for its data + 0x00 */
            if (out == cap) {
                return -1;
            }
            dst[out++] = 0;
        }
    }
    *out_len = out;
    return 0;
}

void memhw_header_parse(const uint8_t *src, memhw_header_t *h)
{
    h->version = src[MEMHW_HDR_VERSION_OFFSET];
    h->flags = src[MEMHW_HDR_FLAGS_OFFSET];
    h->seq = get_le16(src + MEMHW_HDR_SEQ_OFFSET);
    h->opcode = src[MEMHW_HDR_OPCODE_OFFSET];
    h->status = src[MEMHW_HDR_STATUS_OFFSET];
    h->session = get_le16(src + MEMHW_HDR_SESSION_OFFSET);
    h->chunk = get_le16(src + MEMHW_HDR_CHUNK_OFFSET);
    h->length = get_le16(src + MEMHW_HDR_LENGTH_OFFSET);
}

void memhw_header_build(const memhw_header_t *h, uint8_t *dst)
{
    dst[MEMHW_HDR_VERSION_OFFSET] = h->version;
    dst[MEMHW_HDR_FLAGS_OFFSET] = h->flags;
    put_le16(dst + MEMHW_HDR_SEQ_OFFSET, h->seq);
    dst[MEMHW_HDR_OPCODE_OFFSET] = h->opcode;
    dst[MEMHW_HDR_STATUS_OFFSET] = h->status;
    put_le16(dst + MEMHW_HDR_SESSION_OFFSET, h->session);
    put_le16(dst + MEMHW_HDR_CHUNK_OFFSET, h->chunk);
    put_le16(dst + MEMHW_HDR_LENGTH_OFFSET, h->length);
}

size_t memhw_frame_encode(const memhw_header_t *header, const uint8_t *payload, uint8_t *dst, size_t cap)
{
    uint8_t head[MEMHW_HEADER_SIZE];
    uint8_t crc[MEMHW_CRC_SIZE];
    cobs_writer_t w;
    size_t n;

    if (cap == 0) {
        return 0;
    }
    memhw_header_build(header, head);
    put_le32(crc, memhw_crc32(memhw_crc32(0, head, sizeof head), payload, header->length));
    cobs_begin(&w, dst, cap - 1u); /* keep a byte for the delimiter */
    cobs_write(&w, head, sizeof head);
    cobs_write(&w, payload, header->length);
    cobs_write(&w, crc, sizeof crc);
    n = cobs_end(&w);
    if (n == 0) {
        return 0;
    }
    dst[n] = MEMHW_DELIMITER;
    return n + 1u;
}

void memhw_decoder_init(memhw_decoder_t *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    d->dropped = 0;
    d->last_drop = MEMHW_DROP_NONE;
    memhw_decoder_reset(d);
}

void memhw_decoder_reset(memhw_decoder_t *d)
{
    d->len = 0;
    d->overflow = 0;
}

static int drop(memhw_decoder_t *d, memhw_drop_reason_t why)
{
    d->dropped++;
    d->last_drop = why;
    return 0;
}

/* A delimiter arrived: validate the buffered bytes as a frame. */
static int end_of_frame(memhw_decoder_t *d, memhw_frame_t *frame)
{
    size_t len = d->len, body;
    int overflow = d->overflow;
    memhw_header_t header;

    memhw_decoder_reset(d);
    if (overflow) {
        return drop(d, MEMHW_DROP_OVERFLOW);
    }
    if (len == 0) {
        return 0; /* back-to-back delimiters separate nothing */
    }
    if (memhw_cobs_decode(d->buf, len, d->buf, d->cap, &len) != 0) {
        return drop(d, MEMHW_DROP_BAD_COBS);
    }
    if (len < MEMHW_HEADER_SIZE + MEMHW_CRC_SIZE) {
        return drop(d, MEMHW_DROP_SHORT);
    }
    body = len - MEMHW_CRC_SIZE;
    if (memhw_crc32(0, d->buf, body) != get_le32(d->buf + body)) {
        return drop(d, MEMHW_DROP_BAD_CRC);
    }
    memhw_header_parse(d->buf, &header);
    if (header.length != body - MEMHW_HEADER_SIZE) {
        return drop(d, MEMHW_DROP_BAD_LENGTH);
    }
    frame->header = header;
    frame->payload = d->buf + MEMHW_HEADER_SIZE;
    return 1;
}

int memhw_decoder_push(memhw_decoder_t *d, uint8_t byte, memhw_frame_t *frame)
{
    if (byte == MEMHW_DELIMITER) {
        return end_of_frame(d, frame);
    }
    if (d->len < d->cap) {
        d->buf[d->len++] = byte;
    } else {
        d->overflow = 1;
    }
    return 0;
}

int memhw_decoder_feed(memhw_decoder_t *d, const uint8_t **data, size_t *len, memhw_frame_t *frame)
{
    while (*len > 0) {
        uint8_t byte = **data;
        (*data)++;
        (*len)--;
        if (memhw_decoder_push(d, byte, frame)) {
            return 1;
        }
    }
    return 0;
}
