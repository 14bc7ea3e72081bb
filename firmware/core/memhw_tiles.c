/*
 * memhw_tiles.c -- tiles and their vector-matrix products: DEFINE_TILE, VMM_TILE (the C
 * port of memhw/mock/tiles.py). A tile's line indices lie in the port's tile buffer
 * (memhw_buffers_t.tiles, one byte per line), rows, neg_rows, cols, neg_cols in turn;
 * redefining a tile moves the later tiles down so the buffer stays packed.
 */
#include <string.h>

#include "memhw_handlers.h"

#define LINES_MAX (MEMHW_ROWS_MAX > MEMHW_COLS_MAX ? MEMHW_ROWS_MAX : MEMHW_COLS_MAX)

const uint8_t *memhw_tile_lines(const memhw_core_t *c, const memhw_tile_t *t, unsigned which)
{
    uint32_t at = t->offset;
    uint32_t sizes[4];
    unsigned i;
    sizes[0] = t->k;
    sizes[1] = t->neg_rows ? t->k : 0u;
    sizes[2] = t->m;
    sizes[3] = t->neg_cols ? t->m : 0u;
    for (i = 0; i < which; i++) {
        at += sizes[i];
    }
    return sizes[which] ? c->buf.tiles + at : 0;
}

static uint32_t tile_size(const memhw_tile_t *t)
{
    return t->k ? (uint32_t)t->k * (1u + t->neg_rows) + (uint32_t)t->m * (1u + t->neg_cols) : 0u;
}

/* Distinct indices below n (tiles.py _indices). */
static int check_indices(memhw_op_t *op, const char *name, const memhw_value_t *v, uint32_t n)
{
    uint8_t seen[(LINES_MAX + 7u) / 8u];
    uint32_t i;
    memset(seen, 0, sizeof seen);
    for (i = 0; i < v->n; i++) {
        uint16_t x = memhw_u16_at(v, i);
        if (x >= n || memhw_bit(seen, x)) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "%s must be distinct indices below %u", name, n);
        }
        seen[x >> 3] |= (uint8_t)(1u << (x & 7u));
    }
    return MEMHW_DONE;
}

/* 1 if an index of b is also in a (both checked: distinct, below the line count). */
static int shared(const memhw_value_t *a, const memhw_value_t *b)
{
    uint8_t seen[(LINES_MAX + 7u) / 8u];
    uint32_t i;
    memset(seen, 0, sizeof seen);
    for (i = 0; i < a->n; i++) {
        seen[memhw_u16_at(a, i) >> 3] |= (uint8_t)(1u << (memhw_u16_at(a, i) & 7u));
    }
    for (i = 0; i < b->n; i++) {
        if (memhw_bit(seen, memhw_u16_at(b, i))) {
            return 1;
        }
    }
    return 0;
}

static int network_uses(const memhw_core_t *c, unsigned tile)
{
    unsigned i;
    for (i = 0; c->net.n_layers && i < c->net.n_tiles; i++) {
        if (c->net.tiles[i].tile == tile) {
            return 1;
        }
    }
    return 0;
}

/* Drop tile t's lines from the buffer (the later tiles move down). */
static void release(memhw_core_t *c, memhw_tile_t *t)
{
    uint32_t size = tile_size(t), end = t->offset + size;
    unsigned i;
    if (!size) {
        return;
    }
    memmove(c->buf.tiles + t->offset, c->buf.tiles + end, c->tile_lines - end);
    for (i = 0; i < MEMHW_MAX_TILES; i++) {
        if (c->tiles[i].k && c->tiles[i].offset >= end) {
            c->tiles[i].offset = (uint16_t)(c->tiles[i].offset - size);
        }
    }
    c->tile_lines -= size;
    t->k = t->m = 0;
}

static void append(memhw_core_t *c, const memhw_value_t *v)
{
    unsigned f;
    uint32_t i;
    for (f = 0; f < 4u; f++) {
        for (i = 0; i < v[f].n; i++) {
            c->buf.tiles[c->tile_lines++] = (uint8_t)memhw_u16_at(&v[f], i);
        }
    }
}

int memhw_handle_define_tile(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    uint32_t ident = op->v[MEMHW_DEFINE_TILE_REQUEST_TILE].u, need, rows = c->board.rows, cols = c->board.cols;
    const memhw_value_t *v = &op->v[MEMHW_DEFINE_TILE_REQUEST_ROWS]; /* rows, neg_rows, cols, neg_cols */
    static const char *const names[4] = {"rows", "neg_rows", "cols", "neg_cols"};
    memhw_tile_t *t;
    unsigned f;
    if (ident >= MEMHW_MAX_TILES) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "tile %u outside 0..%u", ident, MEMHW_MAX_TILES - 1u);
    }
    for (f = 0; f < 4u; f++) {
        if (check_indices(op, names[f], &v[f], f < 2u ? rows : cols) != MEMHW_DONE) {
            return MEMHW_REFUSED;
        }
    }
    if (!v[0].n || !v[2].n) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "a tile needs at least one row and one column");
    }
    if ((v[1].n && v[1].n != v[0].n) || (v[3].n && v[3].n != v[2].n)) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD,
                            "neg_rows and neg_cols must be empty or as long as rows and cols");
    }
    if (shared(&v[0], &v[1]) || shared(&v[2], &v[3])) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "a row (column) cannot be both positive and negated");
    }
    t = &c->tiles[ident];
    if (t->k && network_uses(c, ident) && (t->k != v[0].n || t->m != v[2].n)) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "tile %u holds part of the loaded network: redefine it "
                            "with %u rows and %u columns, or load the network again after", ident, (uint32_t)t->k,
                            (uint32_t)t->m);
    }
    need = v[0].n + v[1].n + v[2].n + v[3].n;
    if (c->tile_lines - tile_size(t) + need > c->buf.tiles_size) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "tile %u needs %u line indices: this board keeps %u for "
                            "all tiles of a session (its tile buffer), %u of them in use by other tiles", ident,
                            need, (uint32_t)c->buf.tiles_size, c->tile_lines - tile_size(t));
    }
    if (!memhw_reply(op, 0)) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    release(c, t);
    t->offset = (uint16_t)c->tile_lines;
    t->k = (uint16_t)v[0].n;
    t->m = (uint16_t)v[2].n;
    t->neg_rows = v[1].n != 0u;
    t->neg_cols = v[3].n != 0u;
    append(c, v);
    return MEMHW_DONE;
}

/* ------------------------------------------------------------------ the tile VMM engine */

uint32_t memhw_tile_scratch(const memhw_core_t *c, uint32_t n)
{
    return 3u * n * c->board.cols; /* int16 codes and gains of every column */
}

void memhw_tile_vmm(memhw_core_t *c, const memhw_tile_t *t, uint32_t n, memhw_tile_input_t volts, const void *ctx,
                    const uint8_t *gains, int16_t *codes, uint8_t *used, void *scratch)
{
    const uint8_t *rows = memhw_tile_lines(c, t, 0), *neg_rows = memhw_tile_lines(c, t, 1);
    const uint8_t *cols = memhw_tile_lines(c, t, 2), *neg_cols = memhw_tile_lines(c, t, 3);
    uint32_t n_cols = c->board.cols, mm = (uint32_t)t->m * (1u + t->neg_cols), e, k;
    int16_t top = c->limits.read_max, *all = (int16_t *)scratch;
    uint8_t read[MEMHW_COLS_MAX], fixed[MEMHW_COLS_MAX], *all_gains = (uint8_t *)scratch + 2u * n * n_cols;
    memset(read, 0, sizeof read);
    memset(fixed, 0, sizeof fixed);
    for (k = 0; k < mm; k++) { /* the columns read, in reply order: cols then neg_cols */
        uint8_t j = k < t->m ? cols[k] : neg_cols[k - t->m];
        read[j] = 1;
        fixed[j] = gains ? gains[k] : 0u;
    }
    memhw_hal_expose_tile(c->hal, n, read);
    for (e = 0; e < n; e++) {
        int16_t line[MEMHW_ROWS_MAX];
        uint8_t driven[MEMHW_ROWS_MAX];
        memset(line, 0, sizeof line);
        memset(driven, 0, sizeof driven);
        for (k = 0; k < t->k; k++) {
            float v = volts(ctx, e, k);
            line[rows[k]] = memhw_dac_code(c, MEMHW_HAL_ROWS, rows[k], v, (int16_t)-top, top);
            driven[rows[k]] = 1;
            if (neg_rows) {
                line[neg_rows[k]] = memhw_dac_code(c, MEMHW_HAL_ROWS, neg_rows[k], -v, (int16_t)-top, top);
                driven[neg_rows[k]] = 1;
            }
        }
        memhw_hal_expose_tile_vector(c->hal, e, line, driven);
    }
    memhw_convert_batch(c, n, gains ? fixed : 0, all_gains, all);
    memhw_hal_read_end(c->hal);
    for (e = 0; e < n; e++) {
        for (k = 0; k < mm; k++) {
            uint8_t j = k < t->m ? cols[k] : neg_cols[k - t->m];
            codes[e * mm + k] = all[e * n_cols + j];
            if (!gains) {
                used[e * mm + k] = all_gains[e * n_cols + j];
            }
        }
    }
}

/* ------------------------------------------------------------------ VMM_TILE */

typedef struct vmm_inputs {
    const memhw_value_t *inputs;
    uint32_t k;
    float lsb;
} vmm_inputs_t;

/* input k of vector e: a nominal code's volts, code * dac_line_lsb in binary32 */
static float nominal_volts(const void *ctx, uint32_t e, uint32_t k)
{
    const vmm_inputs_t *in = (const vmm_inputs_t *)ctx;
    return (float)memhw_i16_at(in->inputs, e * in->k + k) * in->lsb;
}

/* The gains field: 1 with *fixed for fixed gains (checked), 0 for auto-range; MEMHW_REFUSED. */
static int tile_gains(memhw_op_t *op, const memhw_value_t *g, uint32_t mm, int *fixed)
{
    uint32_t k, top = 0;
    int is_auto = g->n == 0 || (g->n == 1 && g->p[0] == MEMHW_AUTO_GAIN);
    if (g->n != 0 && g->n != 1 && g->n != mm) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "gains must have 0, 1 or %u entries, not %u", mm, g->n);
    }
    *fixed = !is_auto;
    for (k = 0; !is_auto && k < g->n; k++) {
        top = g->p[k] > top ? g->p[k] : top;
    }
    if (!is_auto && top >= op->c->board.n_gains) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "gain index %u >= %u", top, (uint32_t)op->c->board.n_gains);
    }
    return MEMHW_DONE;
}

const memhw_tile_t *memhw_defined_tile(memhw_op_t *op, uint32_t ident)
{
    if (ident >= MEMHW_MAX_TILES || !op->c->tiles[ident].k) {
        memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "tile %u is not defined in this session (DEFINE_TILE)", ident);
        return 0;
    }
    return &op->c->tiles[ident];
}

int memhw_handle_vmm_tile(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    const memhw_tile_t *t = memhw_defined_tile(op, op->v[MEMHW_VMM_TILE_REQUEST_TILE].u);
    const memhw_value_t *in = &op->v[MEMHW_VMM_TILE_REQUEST_INPUTS], *g = &op->v[MEMHW_VMM_TILE_REQUEST_GAINS];
    uint32_t n = op->v[MEMHW_VMM_TILE_REQUEST_N].u, mm, size, k;
    uint8_t per_col[2u * MEMHW_COLS_MAX], *p, *gains_out, *codes_out;
    int32_t top = 0;
    int fixed;
    memhw_writer_t w;
    vmm_inputs_t ctx;
    if (!t) {
        return MEMHW_REFUSED;
    }
    mm = (uint32_t)t->m * (1u + t->neg_cols);
    if (in->n != n * t->k) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "inputs has %u codes, expected n*K = %u", in->n, n * t->k);
    }
    for (k = 0; k < in->n; k++) {
        int32_t x = memhw_i16_at(in, k);
        x = x < 0 ? -x : x;
        top = x > top ? x : top;
    }
    if (n && top > c->limits.read_max) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "VMM input beyond the read limit of %d codes",
                            (int32_t)c->limits.read_max);
    }
    if (tile_gains(op, g, mm, &fixed) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    size = 8u + (fixed ? g->n : n * mm) + 2u * n * mm;
    p = memhw_reply(op, size + 2u * n * mm + memhw_tile_scratch(c, n) + 1u);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "reply of %u vectors does not fit the board's reply buffer", n);
    }
    for (k = 0; fixed && k < mm; k++) {
        per_col[k] = g->p[g->n == 1 ? 0 : k];
    }
    w.p = p;
    w.len = 0;
    w.cap = op->out_cap;
    gains_out = memhw_w_array(&w, fixed ? g->n : n * mm, 1);
    codes_out = memhw_w_array(&w, n * mm, 2);
    if (fixed) {
        memcpy(gains_out, g->p, g->n);
    }
    ctx.inputs = in;
    ctx.k = t->k;
    ctx.lsb = c->board.dac_line_lsb;
    {
        int16_t *codes = (int16_t *)(void *)(((uintptr_t)(p + size) + 1u) & ~(uintptr_t)1u);
        memhw_tile_vmm(c, t, n, nominal_volts, &ctx, fixed ? per_col : 0, codes, gains_out,
                       (uint8_t *)(codes + n * mm));
        for (k = 0; k < n * mm; k++) {
            memhw_put16(codes_out + 2u * k, (uint16_t)codes[k]);
        }
    }
    memhw_reply_shrink(op, size);
    return MEMHW_DONE;
}
