/*
 * memhw_selfcal.c -- board self-calibration: READ_REFERENCE (column read-out through the
 * on-board reference resistors) and READ_DAC (DAC read-back through the monitor ADC); the
 * C port of memhw/mock/selfcal.py.
 */
#include "memhw_handlers.h"

int memhw_handle_read_reference(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    const memhw_board_t *b = &c->board;
    uint32_t k = op->v[MEMHW_READ_REFERENCE_REQUEST_INDEX].u, avg = op->v[MEMHW_READ_REFERENCE_REQUEST_AVERAGE].u;
    uint32_t cols = b->cols;
    uint8_t buf[MEMHW_COLS_MAX], *p, *g, *codes;
    const uint8_t *fixed;
    memhw_writer_t w;
    if (k >= b->n_references) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "reference index %u outside 0..%u", k,
                            (uint32_t)b->n_references - 1u);
    }
    if (memhw_check_average(op, avg) != MEMHW_DONE ||
        memhw_requested_gains(op, &op->v[MEMHW_READ_REFERENCE_REQUEST_GAINS], buf, &fixed) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    p = memhw_reply(op, 1u + 4u * 3u + 4u + 8u + 5u * cols);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    w.p = p;
    w.len = 0;
    w.cap = op->out_cap;
    memhw_hal_expose_reference(c->hal, (uint8_t)k, (int16_t)op->v[MEMHW_READ_REFERENCE_REQUEST_V_REF].i, avg);
    memhw_w_u8(&w, b->n_references);
    memhw_w_f32(&w, b->reference_ohms[k]);
    memhw_w_f32(&w, b->reference_tolerance);
    memhw_w_f32(&w, b->monitor_lsb);
    w.len += 4u; /* monitor, below */
    g = memhw_w_array(&w, cols, 1);
    codes = memhw_w_array(&w, cols, 4);
    memhw_read_samples(c, fixed, avg, g, codes);
    memhw_put32(p + 13, (uint32_t)memhw_hal_monitor_reference(c->hal, avg));
    memhw_hal_read_end(c->hal);
    return MEMHW_DONE;
}

int memhw_handle_read_dac(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    const memhw_limits_t *top = &c->board.abs_limits;
    const memhw_value_t *in = &op->v[MEMHW_READ_DAC_REQUEST_CODES];
    uint32_t group = op->v[MEMHW_READ_DAC_REQUEST_GROUP].u, avg = op->v[MEMHW_READ_DAC_REQUEST_AVERAGE].u, n, k;
    int16_t codes[MEMHW_ROWS_MAX > MEMHW_COLS_MAX ? MEMHW_ROWS_MAX : MEMHW_COLS_MAX];
    int32_t out[sizeof codes / sizeof codes[0]], lo, hi, min = 0, max = 0;
    uint8_t *p, *arr;
    memhw_writer_t w;
    if (memhw_check_group(op, group, &n) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    if (in->n != 1u && in->n != n) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "codes has %u entries; expected 1 or %u", in->n, n);
    }
    if (memhw_check_average(op, avg) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    /* the largest level the group ever drives: reads, and RESET (rows) or SET (columns) pulses */
    if (group == MEMHW_HAL_GATES) {
        lo = 0;
        hi = top->gate_max;
    } else {
        int32_t pulse = group == MEMHW_HAL_ROWS ? top->reset_max : top->set_max;
        lo = -(int32_t)top->read_max;
        hi = top->read_max > pulse ? top->read_max : pulse;
    }
    for (k = 0; k < in->n; k++) {
        int32_t x = memhw_i16_at(in, k);
        min = (k == 0 || x < min) ? x : min;
        max = (k == 0 || x > max) ? x : max;
    }
    if (min < lo || max > hi) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "code outside %d..%d for this group", lo, hi);
    }
    p = memhw_reply(op, 8u + 4u * n);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    for (k = 0; k < n; k++) {
        codes[k] = memhw_i16_at(in, in->n == 1u ? 0 : k);
    }
    memhw_hal_monitor_dac(c->hal, (uint8_t)group, codes, avg, out);
    w.p = p;
    w.len = 0;
    w.cap = op->out_cap;
    memhw_w_f32(&w, c->board.monitor_lsb);
    arr = memhw_w_array(&w, n, 4);
    for (k = 0; k < n; k++) {
        memhw_put32(arr + 4u * k, (uint32_t)out[k]);
    }
    return MEMHW_DONE;
}
