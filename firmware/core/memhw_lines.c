/*
 * memhw_lines.c -- DC levels, grounding, session limits and idling: SET_LEVELS,
 * GROUND_ALL, SET_LIMITS, WAIT (the C port of memhw/mock/lines.py).
 */
#include <string.h>

#include "memhw_handlers.h"

#define WAIT_MAX 3600.0f

int memhw_check_group(memhw_op_t *op, uint32_t group, uint32_t *lines)
{
    if (group > MEMHW_HAL_GATES) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "unknown line group %u", group);
    }
    *lines = memhw_line_count(op->c, (uint8_t)group);
    return MEMHW_DONE;
}

int memhw_check_mask(memhw_op_t *op, const memhw_value_t *mask, uint32_t n)
{
    uint32_t bytes = (n + 7u) / 8u;
    if (mask->n != bytes) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "mask has %u bytes, expected %u", mask->n, bytes);
    }
    return MEMHW_DONE;
}

int memhw_check_rows(memhw_op_t *op, uint32_t start, uint32_t count)
{
    uint32_t rows = op->c->board.rows;
    if (start + count > rows) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "rows %u..%d outside 0..%u", start,
                            (int32_t)(start + count) - 1, rows - 1u);
    }
    return MEMHW_DONE;
}

int memhw_handle_set_levels(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    uint32_t group = op->v[MEMHW_SET_LEVELS_REQUEST_GROUP].u, n, i;
    const memhw_value_t *codes = &op->v[MEMHW_SET_LEVELS_REQUEST_CODES];
    const memhw_value_t *mask = &op->v[MEMHW_SET_LEVELS_REQUEST_MASK];
    int16_t next[MEMHW_ROWS_MAX > MEMHW_COLS_MAX ? MEMHW_ROWS_MAX : MEMHW_COLS_MAX];
    uint8_t selected[sizeof next / sizeof next[0]];
    int32_t limit, top = 0, bottom = 0;
    if (memhw_check_group(op, group, &n) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    limit = group == MEMHW_HAL_GATES ? c->limits.gate_max : c->limits.read_max;
    if (codes->n) {
        if (codes->n != n) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "codes has %u entries, group has %u lines", codes->n, n);
        }
        for (i = 0; i < n; i++) {
            next[i] = memhw_i16_at(codes, i);
            selected[i] = 1;
        }
    } else {
        if (memhw_check_mask(op, mask, n) != MEMHW_DONE) {
            return MEMHW_REFUSED;
        }
        for (i = 0; i < n; i++) {
            selected[i] = (uint8_t)memhw_bit(mask->p, i);
            next[i] = selected[i] ? (int16_t)op->v[MEMHW_SET_LEVELS_REQUEST_VALUE].i : c->levels[group][i];
        }
    }
    for (i = 0; i < n; i++) {
        int32_t a = next[i] < 0 ? -(int32_t)next[i] : next[i];
        top = a > top ? a : top;
        bottom = next[i] < bottom ? next[i] : bottom;
    }
    if (top > limit || (group == MEMHW_HAL_GATES && bottom < 0)) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "level outside the board's limit of %d codes", limit);
    }
    if (!memhw_reply(op, 0)) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    for (i = 0; i < n; i++) {
        c->levels[group][i] = next[i];
        c->driven[group][i] |= selected[i];
    }
    memhw_hal_lines(c->hal, (uint8_t)group, c->levels[group], c->driven[group]);
    return MEMHW_DONE;
}

int memhw_handle_ground_all(memhw_op_t *op)
{
    uint32_t mode = op->v[MEMHW_GROUND_ALL_REQUEST_MODE].u;
    if (mode > 1u) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "mode must be 0 (ground) or 1 (float), not %u", mode);
    }
    if (!memhw_reply(op, 0)) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    memhw_ground(op->c);
    return MEMHW_DONE;
}

int memhw_handle_set_limits(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    const memhw_limits_t *top = &c->board.abs_limits;
    static const char *const names[5] = {"read_max", "set_max", "reset_max", "gate_max", "width_max"};
    int32_t value[5], high[5];
    static const int32_t low[5] = {0, 1, 1, 0, 0};
    uint8_t *p;
    memhw_writer_t w;
    unsigned k;
    value[0] = op->v[MEMHW_SET_LIMITS_REQUEST_READ_MAX].i;
    value[1] = op->v[MEMHW_SET_LIMITS_REQUEST_SET_MAX].i;
    value[2] = op->v[MEMHW_SET_LIMITS_REQUEST_RESET_MAX].i;
    value[3] = op->v[MEMHW_SET_LIMITS_REQUEST_GATE_MAX].i;
    value[4] = op->v[MEMHW_SET_LIMITS_REQUEST_WIDTH_MAX].i;
    high[0] = top->read_max;
    high[1] = top->set_max;
    high[2] = top->reset_max;
    high[3] = top->gate_max;
    high[4] = top->width_max;
    for (k = 0; k < 5u; k++) {
        if (value[k] < low[k] || value[k] > high[k]) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT,
                                "%s = %d codes outside %d..%d (limits can only be tightened below the board's maxima)",
                                names[k], value[k], low[k], high[k]);
        }
    }
    p = memhw_reply(op, 10);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    c->limits.read_max = (int16_t)value[0];
    c->limits.set_max = (int16_t)value[1];
    c->limits.reset_max = (int16_t)value[2];
    c->limits.gate_max = (int16_t)value[3];
    c->limits.width_max = (uint16_t)value[4];
    w.p = p;
    w.len = 0;
    w.cap = 10;
    for (k = 0; k < 5u; k++) {
        memhw_w_u16(&w, (uint16_t)value[k]);
    }
    return MEMHW_DONE;
}

int memhw_handle_wait(memhw_op_t *op)
{
    float seconds = op->v[MEMHW_WAIT_REQUEST_SECONDS].f, waited = 0.0f;
    uint8_t *p;
    if (!(seconds >= 0.0f && seconds <= WAIT_MAX)) { /* NaN fails too */
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "wait of %g s outside 0..%g s", memhw_f32_bits(seconds),
                            memhw_f32_bits(WAIT_MAX));
    }
    p = memhw_reply(op, 4);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    memhw_ground(op->c);
    while (waited < seconds) { /* in steps, so an abort is seen */
        float dt;
        if (memhw_should_stop(op)) {
            memhw_put32(p, memhw_f32_bits(waited));
            return MEMHW_ABORTED;
        }
        dt = memhw_hal_wait(op->c->hal, seconds - waited);
        waited += dt;
        if (!(dt > 0.0f)) {
            break;
        }
    }
    memhw_put32(p, memhw_f32_bits(waited));
    return MEMHW_DONE;
}
