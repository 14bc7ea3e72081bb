/*
 * memhw_pulses.c -- batched SET and RESET pulses: PULSE_SET, PULSE_RESET (the C port of
 * memhw/mock/pulses.py). Row by row: SET grounds the row and pulses each selected column at
 * its amplitude through its gate; RESET drives the row at the row's largest amplitude and
 * biases each column so every device sees its own. Between rows the core looks for ABORT,
 * sends progress and passes the fault point.
 */
#include <string.h>

#include "memhw_handlers.h"

static int row_busy(const memhw_batch_t *b, uint32_t cols, uint32_t i)
{
    uint32_t j;
    for (j = 0; j < cols; j++) {
        if (memhw_bit(b->mask, i * cols + j)) {
            return 1;
        }
    }
    return 0;
}

/* PULSE_DEVICES' progress (pulses.py _batch report): after every progress_every-th row holding
 * selected devices and after the last one; `busy` counts the busy rows so far. */
static void report(memhw_op_t *op, const memhw_batch_t *b, uint32_t done, uint32_t busy, uint32_t last)
{
    uint8_t frame[4];
    if (b->progress_every && !(busy % b->progress_every == 0u || done == last)) {
        return;
    }
    memhw_put16(frame, (uint16_t)done);
    memhw_put16(frame + 2, b->count);
    memhw_progress(op, frame, sizeof frame);
}

int memhw_apply_rows(memhw_op_t *op, const memhw_batch_t *b, uint16_t *rows_done, uint32_t *pulses)
{
    memhw_core_t *c = op->c;
    uint32_t cols = c->board.cols, k = 0, i, j, busy = 0, last = b->count;
    uint8_t selected[MEMHW_COLS_MAX];
    int16_t col_codes[MEMHW_COLS_MAX], gates[MEMHW_COLS_MAX], amps[MEMHW_COLS_MAX];
    uint16_t widths[MEMHW_COLS_MAX];
    *pulses = 0;
    if (b->progress_every) {
        while (last > 0u && !row_busy(b, cols, last - 1u)) {
            last--;
        }
        last = last ? last : b->count;
    }
    for (i = 0; i < b->count; i++) {
        uint32_t n = 0;
        int16_t top = 0;
        uint16_t row = (uint16_t)(b->start + i);
        if (b->progress_every && !row_busy(b, cols, i)) {
            continue; /* no time, no abort check, no fault point */
        }
        busy++;
        if (memhw_should_stop(op)) {
            *rows_done = (uint16_t)i;
            return MEMHW_ABORTED;
        }
        for (j = 0; j < cols; j++) {
            selected[j] = (uint8_t)memhw_bit(b->mask, i * cols + j);
            amps[j] = gates[j] = 0;
            widths[j] = 0;
            if (selected[j]) {
                amps[j] = b->amp(b->ctx, k, row, (uint16_t)j);
                gates[j] = b->gate(b->ctx, k, row, (uint16_t)j);
                widths[j] = b->width(b->ctx, k, row, (uint16_t)j);
                top = (n == 0 || amps[j] > top) ? amps[j] : top;
                n++;
                k++;
            }
        }
        if (n) {
            for (j = 0; j < cols; j++) {
                col_codes[j] = b->kind == MEMHW_HAL_SET ? amps[j] : (int16_t)(top - amps[j]);
            }
            memhw_hal_pulse_row(c->hal, b->kind, row, selected, b->kind == MEMHW_HAL_SET ? 0 : top, col_codes, gates,
                                widths);
            memhw_count_pulses(c, n);
            *pulses += n;
        }
        if (b->progress) {
            report(op, b, i + 1u, busy, last);
        }
        if (memhw_step_done(op, (int32_t)(i + 1u))) {
            return MEMHW_REBOOTED;
        }
    }
    *rows_done = b->count;
    return MEMHW_DONE;
}

/* One per-device array of the request: broadcast (1 entry) or one per selected device. */
typedef struct batch_arrays {
    const memhw_value_t *amp, *gate, *width;
} batch_arrays_t;

static int16_t amp_at(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    const memhw_value_t *v = ((const batch_arrays_t *)ctx)->amp;
    (void)row;
    (void)col;
    return memhw_i16_at(v, v->n == 1 ? 0 : k);
}

static int16_t gate_at(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    const memhw_value_t *v = ((const batch_arrays_t *)ctx)->gate;
    (void)row;
    (void)col;
    return memhw_i16_at(v, v->n == 1 ? 0 : k);
}

static uint16_t width_at(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    const memhw_value_t *v = ((const batch_arrays_t *)ctx)->width;
    (void)row;
    (void)col;
    return memhw_u16_at(v, v->n == 1 ? 0 : k);
}

/* min and max of the first n (or the broadcast) entries of an i16 / u16 array */
static void span(const memhw_value_t *v, uint32_t n, int is_u16, int32_t *lo, int32_t *hi)
{
    uint32_t k, m = v->n == 1 ? 1u : n;
    for (k = 0; k < m; k++) {
        int32_t x = is_u16 ? (int32_t)memhw_u16_at(v, k) : memhw_i16_at(v, k);
        *lo = (k == 0 || x < *lo) ? x : *lo;
        *hi = (k == 0 || x > *hi) ? x : *hi;
    }
}

static int batch(memhw_op_t *op, uint8_t kind)
{
    memhw_core_t *c = op->c;
    uint32_t start = op->v[MEMHW_PULSE_SET_REQUEST_ROW_START].u, count = op->v[MEMHW_PULSE_SET_REQUEST_ROW_COUNT].u;
    const memhw_value_t *mask = &op->v[MEMHW_PULSE_SET_REQUEST_MASK];
    static const char *const names[3] = {"amplitude", "gate", "width"};
    const memhw_value_t *arrays[3];
    batch_arrays_t ctx;
    memhw_batch_t b;
    uint32_t n_sel = 0, k, pulses;
    int32_t lo, hi, amp_limit = kind == MEMHW_HAL_SET ? c->limits.set_max : c->limits.reset_max;
    uint16_t rows_done;
    uint8_t *p;
    int result;
    arrays[0] = &op->v[MEMHW_PULSE_SET_REQUEST_AMPLITUDE];
    arrays[1] = &op->v[MEMHW_PULSE_SET_REQUEST_GATE];
    arrays[2] = &op->v[MEMHW_PULSE_SET_REQUEST_WIDTH];
    if (memhw_check_rows(op, start, count) != MEMHW_DONE ||
        memhw_check_mask(op, mask, count * c->board.cols) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    for (k = 0; k < count * c->board.cols; k++) {
        n_sel += (uint32_t)memhw_bit(mask->p, k);
    }
    for (k = 0; k < 3u; k++) {
        if (arrays[k]->n != 1u && arrays[k]->n != n_sel) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "%s has %u entries; expected 1 or %u", names[k],
                                arrays[k]->n, n_sel);
        }
    }
    if (n_sel) {
        span(arrays[0], n_sel, 0, &lo, &hi);
        if (lo <= 0 || hi > amp_limit) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "%s amplitude outside 1..%d codes",
                                kind == MEMHW_HAL_SET ? "SET" : "RESET", amp_limit);
        }
        span(arrays[1], n_sel, 0, &lo, &hi);
        if (lo < 0 || hi > c->limits.gate_max) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "gate outside 0..%d codes", (int32_t)c->limits.gate_max);
        }
        span(arrays[2], n_sel, 1, &lo, &hi);
        if (hi > c->limits.width_max) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "width code outside 0..%u", (uint32_t)c->limits.width_max);
        }
    }
    p = memhw_reply(op, 6);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    ctx.amp = arrays[0];
    ctx.gate = arrays[1];
    ctx.width = arrays[2];
    b.kind = kind;
    b.start = (uint16_t)start;
    b.count = (uint16_t)count;
    b.mask = mask->p;
    b.amp = amp_at;
    b.gate = gate_at;
    b.width = width_at;
    b.ctx = &ctx;
    b.progress = 1;
    b.progress_every = 0;
    result = memhw_apply_rows(op, &b, &rows_done, &pulses);
    memhw_put16(p, rows_done);
    memhw_put32(p + 2, pulses);
    return result;
}

int memhw_handle_pulse_set(memhw_op_t *op)
{
    return batch(op, MEMHW_HAL_SET);
}

int memhw_handle_pulse_reset(memhw_op_t *op)
{
    return batch(op, MEMHW_HAL_RESET);
}

/* ------------------------------------------------------------------ PULSE_DEVICES */

/* Nominal levels converted per channel through the calibration (pulses.py pulse_devices). */
typedef struct device_levels {
    const memhw_core_t *c;
    const memhw_value_t *amp, *gate, *width;
    uint8_t kind;
} device_levels_t;

static int16_t device_amp(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    const device_levels_t *d = (const device_levels_t *)ctx;
    const memhw_core_t *c = d->c;
    int16_t code = memhw_i16_at(d->amp, d->amp->n == 1 ? 0 : k);
    float volts = (float)code * c->board.dac_line_lsb;
    if (d->kind == MEMHW_HAL_SET) {
        return memhw_dac_code(c, MEMHW_HAL_COLS, col, volts, 1, c->limits.set_max);
    }
    return memhw_dac_code(c, MEMHW_HAL_ROWS, row, volts, 1, c->limits.reset_max);
}

static int16_t device_gate(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    const device_levels_t *d = (const device_levels_t *)ctx;
    int16_t code = memhw_i16_at(d->gate, d->gate->n == 1 ? 0 : k);
    (void)row;
    return memhw_dac_code(d->c, MEMHW_HAL_GATES, col, (float)code * d->c->board.dac_gate_lsb, 0,
                          d->c->limits.gate_max);
}

static uint16_t device_width(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    const device_levels_t *d = (const device_levels_t *)ctx;
    (void)row;
    (void)col;
    return memhw_u16_at(d->width, d->width->n == 1 ? 0 : k);
}

/* amplitude, then gate: count 1 or n, nominal codes within lo..top (pulses.py pulse_devices) */
static int check_levels(memhw_op_t *op, const char *kind, const char *name, const memhw_value_t *v, uint32_t n,
                        int32_t lo, int32_t top)
{
    int32_t min, max;
    if (v->n != 1u && v->n != n) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "%s has %u entries; expected 1 or %u", name, v->n, n);
    }
    if (n && v->n) {
        span(v, n, 0, &min, &max);
        if (min < lo || max > top) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "%s %s outside %d..%d codes", kind, name, lo, top);
        }
    }
    return MEMHW_DONE;
}

int memhw_handle_pulse_devices(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    uint32_t kind = op->v[MEMHW_PULSE_DEVICES_REQUEST_KIND].u, start = op->v[MEMHW_PULSE_DEVICES_REQUEST_ROW_START].u;
    uint32_t count = op->v[MEMHW_PULSE_DEVICES_REQUEST_ROW_COUNT].u, cells, pulses;
    const memhw_value_t *index = &op->v[MEMHW_PULSE_DEVICES_REQUEST_INDEX];
    const char *name = kind == MEMHW_PULSE_KIND_SET ? "SET" : "RESET";
    device_levels_t levels;
    memhw_selection_t sel;
    memhw_batch_t b;
    uint16_t rows_done, every = (uint16_t)op->v[MEMHW_PULSE_DEVICES_REQUEST_PROGRESS_ROWS].u;
    int32_t lo, hi;
    uint8_t *p;
    int result;
    if (kind > MEMHW_PULSE_KIND_RESET) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "unknown pulse kind %u", kind);
    }
    cells = count * c->board.cols;
    levels.c = c;
    levels.kind = (uint8_t)kind;
    levels.amp = &op->v[MEMHW_PULSE_DEVICES_REQUEST_AMPLITUDE];
    levels.gate = &op->v[MEMHW_PULSE_DEVICES_REQUEST_GATE];
    levels.width = &op->v[MEMHW_PULSE_DEVICES_REQUEST_WIDTH];
    if (memhw_check_rows(op, start, count) != MEMHW_DONE ||
        memhw_check_selection(op, &op->v[MEMHW_PULSE_DEVICES_REQUEST_MASK], index, cells, &sel) != MEMHW_DONE ||
        check_levels(op, name, "amplitude", levels.amp, sel.n, 1,
                     kind == MEMHW_PULSE_KIND_SET ? c->limits.set_max : c->limits.reset_max) != MEMHW_DONE ||
        check_levels(op, name, "gate", levels.gate, sel.n, 0, c->limits.gate_max) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    if (levels.width->n != 1u && levels.width->n != sel.n) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "width has %u entries; expected 1 or %u", levels.width->n,
                            sel.n);
    }
    if (sel.n) {
        span(levels.width, sel.n, 1, &lo, &hi);
        if (hi > c->limits.width_max) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "width code outside 0..%u", (uint32_t)c->limits.width_max);
        }
    }
    p = memhw_reply(op, 6u + (cells + 7u) / 8u);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    memhw_selection_bits(index, cells, &sel, p + 6);
    b.kind = kind == MEMHW_PULSE_KIND_SET ? MEMHW_HAL_SET : MEMHW_HAL_RESET;
    b.start = (uint16_t)start;
    b.count = (uint16_t)count;
    b.mask = sel.bits;
    b.amp = device_amp;
    b.gate = device_gate;
    b.width = device_width;
    b.ctx = &levels;
    b.progress = 1;
    b.progress_every = every ? every : 1u;
    result = memhw_apply_rows(op, &b, &rows_done, &pulses);
    memhw_put16(p, rows_done);
    memhw_put32(p + 2, pulses);
    memhw_reply_shrink(op, 6);
    return result;
}
