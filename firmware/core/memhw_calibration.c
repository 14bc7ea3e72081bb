/*
 * memhw_calibration.c -- the host's calibration on the board: SET_CALIBRATION and the
 * board's own conversions through it (the C port of memhw/mock/lines.py set_calibration and
 * memhw.conversions.BoardCalibration). Binary32, one operation per step in the order of
 * PROTOCOL.md SET_CALIBRATION, so the results are the reference's to the bit. Also the
 * reset of every piece of session state protocol 2.1 added (calibration, tiles, network).
 */
#include <string.h>

#include "memhw_handlers.h"
#include "memhw_tuning.h"

/* The arrays of SET_CALIBRATION, in wire (and storage) order. */
static const char *const FIELD_NAMES[8] = {"row_gain", "row_offset", "col_gain", "col_offset",
                                           "gate_gain", "gate_offset", "tia_gain", "tia_offset"};

static uint32_t field_length(const memhw_core_t *c, unsigned k)
{
    const memhw_board_t *b = &c->board;
    return k < 2u ? b->rows : (k < 6u ? b->cols : (uint32_t)b->cols * b->n_gains);
}

/* Where array k starts in the calibration buffer. */
static uint32_t field_offset(const memhw_core_t *c, unsigned k)
{
    uint32_t at = 0;
    unsigned i;
    for (i = 0; i < k; i++) {
        at += field_length(c, i);
    }
    return at;
}

/* The checks of memhw.conversions.Calibrated.from_fields, field by field. */
static int check_field(memhw_op_t *op, unsigned k, const memhw_value_t *v)
{
    uint32_t want = field_length(op->c, k), i;
    int gain = (k % 2u) == 0u;
    if (v->n != want) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "%s has %u entries, expected %u (or all empty)",
                            FIELD_NAMES[k], v->n, want);
    }
    for (i = 0; i < v->n; i++) {
        float x = memhw_f32_at(v, i);
        if (!memhw_finite(x) || (gain && !(x > 0.0f))) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "%s must be finite%s", FIELD_NAMES[k],
                                gain ? " and positive" : "");
        }
    }
    return MEMHW_DONE;
}

int memhw_handle_set_calibration(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    const memhw_value_t *v = &op->v[MEMHW_SET_CALIBRATION_REQUEST_ROW_GAIN];
    uint32_t total = 0, i;
    unsigned k;
    for (k = 0; k < 8u; k++) {
        total += v[k].n;
    }
    if (total) {
        for (k = 0; k < 8u; k++) {
            if (check_field(op, k, &v[k]) != MEMHW_DONE) {
                return MEMHW_REFUSED;
            }
        }
    }
    if (!memhw_reply(op, 0)) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    for (k = 0; total && k < 8u; k++) {
        float *dst = c->buf.calibration + field_offset(c, k);
        for (i = 0; i < v[k].n; i++) {
            dst[i] = memhw_f32_at(&v[k], i);
        }
    }
    c->calibrated = total != 0u;
    return MEMHW_DONE;
}

void memhw_session_reset(memhw_core_t *c)
{
    c->calibrated = 0;
    memset(c->tiles, 0, sizeof c->tiles);
    c->tile_lines = 0;
    memset(&c->net, 0, sizeof c->net);
}

/* gain and offset of channel ch of a group (1 and 0 when nominal) */
static void channel(const memhw_core_t *c, uint8_t group, uint16_t ch, float *gain, float *offset)
{
    unsigned k = group == MEMHW_HAL_ROWS ? 0u : (group == MEMHW_HAL_COLS ? 2u : 4u);
    if (!c->calibrated) {
        *gain = 1.0f;
        *offset = 0.0f;
        return;
    }
    *gain = c->buf.calibration[field_offset(c, k) + ch];
    *offset = c->buf.calibration[field_offset(c, k + 1u) + ch];
}

static float lsb_of(const memhw_core_t *c, uint8_t group)
{
    return group == MEMHW_HAL_GATES ? c->board.dac_gate_lsb : c->board.dac_line_lsb;
}

int16_t memhw_dac_code(const memhw_core_t *c, uint8_t group, uint16_t ch, float volts, int16_t lo, int16_t hi)
{
    float gain, offset, q;
    channel(c, group, ch, &gain, &offset);
    q = (volts - offset) / (lsb_of(c, group) * gain);
    if (!(q == q)) {
        return lo; /* cannot happen with finite levels and calibrations */
    }
    q = q < (float)lo ? (float)lo : (q > (float)hi ? (float)hi : q);
    return (int16_t)memhw_rintf(q);
}

float memhw_dac_volts(const memhw_core_t *c, uint8_t group, uint16_t ch, int16_t code)
{
    float gain, offset;
    channel(c, group, ch, &gain, &offset);
    return (float)code * lsb_of(c, group) * gain + offset;
}

float memhw_current(const memhw_core_t *c, uint16_t j, uint8_t g, int32_t code)
{
    float volts = (float)code * c->board.adc_lsb, gain = 1.0f, offset = 0.0f;
    if (c->calibrated) {
        uint32_t at = (uint32_t)j * c->board.n_gains + g;
        gain = c->buf.calibration[field_offset(c, 6u) + at];
        offset = c->buf.calibration[field_offset(c, 7u) + at];
    }
    return -((volts - offset) / (c->board.tia_gains[g] * gain));
}
