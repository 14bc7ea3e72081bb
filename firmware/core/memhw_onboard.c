/*
 * memhw_onboard.c -- on-board write-and-verify (PROGRAM): the C port of memhw/mock/onboard.py
 * around the planner of memhw_tuning.c. The read noise from two reads of at most 512
 * devices evenly spread; verify reads of only the devices a round must see (tuning.py
 * to_verify; only their rows take time) through the board's calibration (SET_CALIBRATION;
 * nominal without one) on the auto-ranged READ_MAP engine; batched SET and RESET rounds
 * applied as PULSE_DEVICES would (levels per channel through the calibration); progress
 * after each verify read, abortable between rounds and between rows.
 *
 * Workspace (memhw_buffers_t.planner): the planner object, per selected device its state
 * and scratch, and the read buffers of the block (codes, gains, sums) and one batch mask.
 */
#include <string.h>

#include "memhw_handlers.h"
#include "memhw_tuning.h"

/* tuning.py G_DEVICE_MAX (S) and conversions.py AUTO_RANGE_FRACTION */
#define G_DEVICE_MAX 400e-6f
#define AUTO_RANGE_FRACTION 0.9f

typedef struct program_ws {
    memhw_tuner_t tuner;
    memhw_device_t *dev;
    float *scratch;
    uint16_t *idx;
    int16_t *codes;
    uint8_t *gains;
    int32_t *totals;
    uint8_t *batch;
} program_ws_t;

/* the sums of averaged reads (MEMHW_BATCH_ORDER 1), also the scratch of the read-noise estimate */
#if MEMHW_BATCH_ORDER
#define TOTALS_BYTES(n, cells) ((cells) * 4u > (n) * 4u ? (cells) * 4u : (n) * 4u)
#else
#define TOTALS_BYTES(n, cells) ((n) * 4u)
#endif

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

/* Bytes of workspace a PROGRAM of n devices over a block of `cells` devices needs. */
static size_t workspace_bytes(uint32_t n, uint32_t cells)
{
    return align8(sizeof(program_ws_t)) + align8(n * sizeof(memhw_device_t)) + align8(2u * n * sizeof(float)) +
           align8(n * sizeof(uint16_t)) + align8(cells * 2u) + align8(cells) + align8(TOTALS_BYTES(n, cells)) +
           align8((cells + 7u) / 8u);
}

uint32_t memhw_program_capacity(const memhw_core_t *c)
{
    uint32_t cells = (uint32_t)c->board.rows * c->board.cols, n;
    for (n = cells; n > 0; n--) { /* the whole array, or as many devices as fit with a block of n devices */
        uint32_t block = n < cells ? ((n + c->board.cols - 1u) / c->board.cols) * c->board.cols : cells;
        if (workspace_bytes(n, block) <= c->buf.planner_size) {
            return n;
        }
    }
    return 0;
}

static program_ws_t *carve(memhw_core_t *c, uint32_t n, uint32_t cells)
{
    uint8_t *p = (uint8_t *)c->buf.planner;
    program_ws_t *ws = (program_ws_t *)p;
    if (workspace_bytes(n, cells) > c->buf.planner_size) {
        return 0;
    }
    p += align8(sizeof *ws);
    ws->dev = (memhw_device_t *)p;
    p += align8(n * sizeof(memhw_device_t));
    ws->scratch = (float *)p;
    p += align8(2u * n * sizeof(float));
    ws->idx = (uint16_t *)p;
    p += align8(n * sizeof(uint16_t));
    ws->codes = (int16_t *)p;
    p += align8(cells * 2u);
    ws->gains = p;
    p += align8(cells);
    ws->totals = (int32_t *)p;
    p += align8(TOTALS_BYTES(n, cells));
    ws->batch = p;
    return ws;
}

typedef struct program_run {
    memhw_op_t *op;
    program_ws_t *ws;
    uint16_t start, count;
    int16_t v_read;
    uint32_t average;
    int16_t gain;              /* the TIA gain of every verify read, or -1: auto-range */
    uint8_t verify_gains[MEMHW_COLS_MAX];
    uint8_t kind;              /* batch being applied */
    uint32_t cursor;           /* device cursor of the batch callbacks */
} program_run_t;

/*
 * tuning.py verify_gain: on a calibrated board every verify read uses one TIA gain, the
 * highest whose reading of the largest conductance a device may read (1.5 x the largest
 * target + 5 tolerances, at least G_DEVICE_MAX) stays within the auto-range fraction of
 * full scale (auto-ranging would move a device between gains whose calibrations differ by
 * their residuals); -1 (auto-range) on a nominal board.
 */
static int16_t verify_gain(const memhw_core_t *c, float target_max, float tolerance, int16_t v_read)
{
    const memhw_board_t *b = &c->board;
    float g_high = 1.5f * target_max + 5.0f * tolerance;
    float current, full = AUTO_RANGE_FRACTION * (float)(1ul << (b->adc_bits - 1u)) * b->adc_lsb;
    int16_t g;
    if (!c->calibrated) {
        return -1;
    }
    g_high = g_high > G_DEVICE_MAX ? g_high : G_DEVICE_MAX;
    current = g_high * (float)v_read * b->dac_line_lsb;
    for (g = (int16_t)(b->n_gains - 1u); g > 0; g--) {
        if (current * b->tia_gains[g] <= full) {
            break;
        }
    }
    return g;
}

/*
 * The board's own conductance read of the devices marked MEMHW_DEV_VERIFY, through its
 * calibration (onboard.py read): only the rows holding one take time; the others keep their g.
 */
static void measure(program_run_t *r)
{
    memhw_core_t *c = r->op->c;
    uint32_t cols = c->board.cols, k, n_rows = 0;
    program_ws_t *ws = r->ws;
    uint8_t rows[(MEMHW_ROWS_MAX + 7u) / 8u];
    int32_t row = -1;
    memset(rows, 0, sizeof rows);
    for (k = 0; k < ws->tuner.n; k++) {
        const memhw_device_t *d = &ws->dev[k];
        uint32_t i = (uint32_t)(d->row - r->start);
        if ((d->flags & MEMHW_DEV_VERIFY) && !memhw_bit(rows, i)) {
            rows[i >> 3] |= (uint8_t)(1u << (i & 7u));
            n_rows++;
        }
    }
    if (!n_rows) {
        return;
    }
    memhw_read_row_set(c, r->start, r->count, rows, r->v_read, r->gain >= 0 ? r->verify_gains : 0, r->average,
                       (uint8_t *)ws->codes, ws->gains, (uint8_t *)ws->totals);
    for (k = 0, n_rows = 0; k < ws->tuner.n; k++) { /* n_rows: index of the device's row among those read */
        memhw_device_t *d = &ws->dev[k];
        uint32_t i = (uint32_t)(d->row - r->start), at;
        if (!memhw_bit(rows, i)) {
            continue;
        }
        n_rows += (uint32_t)(row >= 0 && (uint32_t)row != i);
        row = (int32_t)i;
        at = n_rows * cols + d->col;
        if (d->flags & MEMHW_DEV_VERIFY) {
            float current = memhw_current(c, d->col, r->gain >= 0 ? (uint8_t)r->gain : ws->gains[at], ws->codes[at]);
            d->g = current / memhw_dac_volts(c, MEMHW_HAL_ROWS, d->row, r->v_read);
        }
    }
}

/* The verify read of one round: the devices tuning.py to_verify names. */
static void verify(program_run_t *r)
{
    memhw_tuner_to_verify(&r->ws->tuner);
    measure(r);
}

static void progress(program_run_t *r)
{
    const memhw_tuner_t *t = &r->ws->tuner;
    uint32_t pend = 0, conv = 0, k;
    uint8_t report[10];
    for (k = 0; k < t->n; k++) {
        pend += t->dev[k].reason == MEMHW_R_PENDING;
        conv += t->dev[k].reason == MEMHW_R_CONVERGED;
    }
    memhw_put16(report, t->rounds);
    memhw_put32(report + 2, pend);
    memhw_put32(report + 6, conv);
    memhw_progress(r->op, report, sizeof report);
}

/* The batch's device at (row, col): devices are row-major, callbacks come in row-major order. */
static const memhw_device_t *batch_device(program_run_t *r, uint16_t row, uint16_t col)
{
    const memhw_device_t *dev = r->ws->dev;
    while (dev[r->cursor].row != row || dev[r->cursor].col != col) {
        r->cursor++;
    }
    return &dev[r->cursor];
}

/* Pulse levels per channel through the calibration, clipped to the limits (onboard.py apply). */
static int16_t amp_of(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    program_run_t *r = (program_run_t *)ctx;
    const memhw_core_t *c = r->op->c;
    const memhw_device_t *d = batch_device(r, row, col);
    (void)k;
    if (r->kind == MEMHW_HAL_SET) {
        return memhw_dac_code(c, MEMHW_HAL_COLS, col, d->set_v, 1, c->limits.set_max);
    }
    return memhw_dac_code(c, MEMHW_HAL_ROWS, row, d->reset_v, 1, c->limits.reset_max);
}

static int16_t gate_of(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    program_run_t *r = (program_run_t *)ctx;
    const memhw_core_t *c = r->op->c;
    const memhw_device_t *d = batch_device(r, row, col);
    (void)k;
    return memhw_dac_code(c, MEMHW_HAL_GATES, col, r->kind == MEMHW_HAL_SET ? d->set_gate : r->ws->tuner.cfg.reset_gate,
                          0, c->limits.gate_max);
}

static uint16_t width_of(const void *ctx, uint32_t k, uint16_t row, uint16_t col)
{
    program_run_t *r = (program_run_t *)ctx;
    const memhw_board_t *b = &r->op->c->board;
    const memhw_tuning_config_t *cfg = &r->ws->tuner.cfg;
    const memhw_device_t *d = batch_device(r, row, col);
    float w = r->kind == MEMHW_HAL_SET ? cfg->set_width
                                       : ((d->flags & MEMHW_DEV_FINE) ? cfg->reset_width_min : cfg->reset_width);
    float code = memhw_rintf((w - b->width_offset) / b->width_lsb);
    (void)k;
    return (uint16_t)(code < 0.0f ? 0.0f : (code > (float)b->width_max_code ? (float)b->width_max_code : code));
}

/* Apply one round: the SET batch, then the RESET batch (PROTOCOL.md PROGRAM). */
static int apply(program_run_t *r)
{
    memhw_tuner_t *t = &r->ws->tuner;
    uint32_t cols = r->op->c->board.cols, cells = (uint32_t)r->count * cols, k;
    static const uint8_t kinds[2] = {MEMHW_HAL_SET, MEMHW_HAL_RESET};
    static const uint8_t flag[2] = {MEMHW_DEV_SET, MEMHW_DEV_RESET};
    unsigned i;
    for (i = 0; i < 2u; i++) {
        memhw_batch_t b;
        uint16_t rows_done;
        uint32_t pulses, any = 0;
        int result;
        memset(r->ws->batch, 0, (cells + 7u) / 8u);
        for (k = 0; k < t->n; k++) {
            const memhw_device_t *d = &t->dev[k];
            if (d->flags & flag[i]) {
                uint32_t at = (uint32_t)(d->row - r->start) * cols + d->col;
                r->ws->batch[at >> 3] |= (uint8_t)(1u << (at & 7u));
                any = 1;
            }
        }
        if (!any) {
            continue;
        }
        r->kind = kinds[i];
        r->cursor = 0;
        b.kind = kinds[i];
        b.start = r->start;
        b.count = r->count;
        b.mask = r->ws->batch;
        b.amp = amp_of;
        b.gate = gate_of;
        b.width = width_of;
        b.ctx = r;
        b.progress = 0;
        result = memhw_apply_rows(r->op, &b, &rows_done, &pulses);
        if (result == MEMHW_ABORTED) {
            /* the planner counted the whole round; take back what was never applied */
            uint16_t cut = (uint16_t)(r->start + rows_done);
            for (k = 0; k < t->n; k++) {
                memhw_device_t *d = &t->dev[k];
                if ((d->flags & MEMHW_DEV_SET) && i == 0 && d->row >= cut) {
                    d->set_pulses--;
                }
                if ((d->flags & MEMHW_DEV_RESET) && (i == 1 ? d->row >= cut : 1)) {
                    d->reset_pulses--;
                }
            }
        }
        if (result != MEMHW_DONE) {
            return result;
        }
    }
    return MEMHW_DONE;
}

static void write_reply(program_run_t *r)
{
    const memhw_tuner_t *t = &r->ws->tuner;
    memhw_writer_t w;
    uint8_t *achieved, *set, *reset, *reasons;
    uint32_t k;
    w.p = r->op->out;
    w.len = 0;
    w.cap = r->op->out_cap;
    memhw_w_u16(&w, t->rounds);
    achieved = memhw_w_array(&w, t->n, 2);
    set = memhw_w_array(&w, t->n, 2);
    reset = memhw_w_array(&w, t->n, 2);
    reasons = memhw_w_array(&w, t->n, 1);
    for (k = 0; k < t->n; k++) {
        const memhw_device_t *d = &t->dev[k];
        float g = memhw_rintf(d->g / 1e-8f);
        memhw_put16(achieved + 2u * k, (uint16_t)(g < 0.0f ? 0.0f : (g > 65535.0f ? 65535.0f : g)));
        memhw_put16(set + 2u * k, d->set_pulses);
        memhw_put16(reset + 2u * k, d->reset_pulses);
        reasons[k] = d->reason;
    }
}

/* Every voltage and width the loop may use, against the limits in force (onboard.py _check). */
static int check(memhw_op_t *op)
{
    const memhw_limits_t *lim = &op->c->limits;
    const memhw_value_t *v = op->v;
    static const char *const names[7] = {"set_v", "reset_v_max", "reset_v_min", "gate_max", "gate_min", "reset_gate",
                                         "v_read"};
    static const char *const widths[3] = {"set_width", "reset_width", "reset_width_min"};
    int32_t code[7], high[7];
    uint32_t width[3];
    unsigned k;
    if (v[MEMHW_PROGRAM_REQUEST_ALGORITHM].u > 1u) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "unknown tuning algorithm %u",
                            v[MEMHW_PROGRAM_REQUEST_ALGORITHM].u);
    }
    if (v[MEMHW_PROGRAM_REQUEST_TOLERANCE].u < 1u) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "tolerance must be >= 1");
    }
    code[0] = v[MEMHW_PROGRAM_REQUEST_SET_V].i;
    high[0] = lim->set_max;
    code[1] = v[MEMHW_PROGRAM_REQUEST_RESET_V_MAX].i;
    high[1] = lim->reset_max;
    code[2] = v[MEMHW_PROGRAM_REQUEST_RESET_V_MIN].i;
    high[2] = v[MEMHW_PROGRAM_REQUEST_RESET_V_MAX].i;
    code[3] = v[MEMHW_PROGRAM_REQUEST_GATE_MAX].i;
    high[3] = lim->gate_max;
    code[4] = v[MEMHW_PROGRAM_REQUEST_GATE_MIN].i;
    high[4] = v[MEMHW_PROGRAM_REQUEST_GATE_MAX].i;
    code[5] = v[MEMHW_PROGRAM_REQUEST_RESET_GATE].i;
    high[5] = lim->gate_max;
    code[6] = v[MEMHW_PROGRAM_REQUEST_V_READ].i;
    high[6] = lim->read_max;
    for (k = 0; k < 7u; k++) {
        if (!(code[k] > 0 && code[k] <= high[k])) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "%s = %d codes outside 1..%d", names[k], code[k], high[k]);
        }
    }
    width[0] = v[MEMHW_PROGRAM_REQUEST_SET_WIDTH].u;
    width[1] = v[MEMHW_PROGRAM_REQUEST_RESET_WIDTH].u;
    width[2] = v[MEMHW_PROGRAM_REQUEST_RESET_WIDTH_MIN].u;
    for (k = 0; k < 3u; k++) {
        if (width[k] > lim->width_max) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "%s code above %u", widths[k], (uint32_t)lim->width_max);
        }
    }
    return MEMHW_DONE;
}

/* TuningConfig from the request's codes (memhw.algorithms.program_codec.decode_config). */
static void config_of(const memhw_op_t *op, memhw_tuning_config_t *cfg)
{
    const memhw_board_t *b = &op->c->board;
    const memhw_value_t *v = op->v;
    float line = b->dac_line_lsb, gate = b->dac_gate_lsb;
#define WIDTH(f) (b->width_offset + (float)v[f].u * b->width_lsb)
    cfg->tolerance = (float)v[MEMHW_PROGRAM_REQUEST_TOLERANCE].u * 1e-8f;
    cfg->set_v = (float)v[MEMHW_PROGRAM_REQUEST_SET_V].i * line;
    cfg->set_width = WIDTH(MEMHW_PROGRAM_REQUEST_SET_WIDTH);
    cfg->gate_min = (float)v[MEMHW_PROGRAM_REQUEST_GATE_MIN].i * gate;
    cfg->gate_max = (float)v[MEMHW_PROGRAM_REQUEST_GATE_MAX].i * gate;
    cfg->reset_v_min = (float)v[MEMHW_PROGRAM_REQUEST_RESET_V_MIN].i * line;
    cfg->reset_v_max = (float)v[MEMHW_PROGRAM_REQUEST_RESET_V_MAX].i * line;
    cfg->reset_gate = (float)v[MEMHW_PROGRAM_REQUEST_RESET_GATE].i * gate;
    cfg->reset_width = WIDTH(MEMHW_PROGRAM_REQUEST_RESET_WIDTH);
    cfg->reset_width_min = WIDTH(MEMHW_PROGRAM_REQUEST_RESET_WIDTH_MIN);
    cfg->set_noise_prior = (float)v[MEMHW_PROGRAM_REQUEST_SET_NOISE_PRIOR].u * 1e-8f;
    cfg->max_pulses = (uint16_t)v[MEMHW_PROGRAM_REQUEST_MAX_PULSES].u;
    cfg->max_rounds = (uint16_t)v[MEMHW_PROGRAM_REQUEST_MAX_ROUNDS].u;
    cfg->patience = (uint16_t)v[MEMHW_PROGRAM_REQUEST_PATIENCE].u;
    cfg->reopen = (uint8_t)v[MEMHW_PROGRAM_REQUEST_REOPEN].u;
#undef WIDTH
}

/* The loop of memhw.algorithms.tuning.run_tuning; MEMHW_DONE, MEMHW_ABORTED or MEMHW_REBOOTED. */
static int run(program_run_t *r)
{
    memhw_tuner_t *t = &r->ws->tuner;
    for (;;) {
        int result;
        verify(r);
        progress(r);
        if (memhw_should_stop(r->op)) {
            break;
        }
        if (!memhw_tuner_update(t)) {
            /* settled: confirm with a fresh read; devices found out of tolerance are re-tuned */
            verify(r);
            if (!memhw_tuner_update(t)) {
                memhw_tuner_finish(t);
                return MEMHW_DONE;
            }
        }
        result = apply(r);
        if (result != MEMHW_DONE) {
            return result;
        }
    }
    verify(r);
    memhw_tuner_finish(t);
    return MEMHW_DONE;
}

/* The read noise from two reads of at most MEMHW_NOISE_SAMPLE devices evenly spread (tuning.py noise_sample). */
#define MEMHW_NOISE_SAMPLE 512u
static float read_noise(program_run_t *r)
{
    program_ws_t *ws = r->ws;
    uint32_t n = ws->tuner.n, every = (n + MEMHW_NOISE_SAMPLE - 1u) / MEMHW_NOISE_SAMPLE, k, m = 0;
    every = n <= MEMHW_NOISE_SAMPLE ? 1u : every;
    for (k = 0; k < n; k++) {
        memhw_device_t *d = &ws->dev[k];
        d->flags = (uint8_t)(k % every == 0u ? MEMHW_DEV_VERIFY : 0u);
    }
    measure(r);
    for (k = 0; k < n; k += every) {
        ws->scratch[n + m++] = ws->dev[k].g;
    }
    measure(r);
    for (k = 0, m = 0; k < n; k += every) {
        ws->scratch[m++] = ws->dev[k].g;
    }
    return memhw_read_sigma(ws->scratch + n, ws->scratch, m, (float *)ws->totals);
}

int memhw_handle_program(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    const memhw_value_t *mask = &op->v[MEMHW_PROGRAM_REQUEST_MASK], *targets = &op->v[MEMHW_PROGRAM_REQUEST_TARGETS];
    uint32_t start = op->v[MEMHW_PROGRAM_REQUEST_ROW_START].u, count = op->v[MEMHW_PROGRAM_REQUEST_ROW_COUNT].u;
    uint32_t cols = c->board.cols, n = 0, k, at;
    memhw_tuning_config_t cfg;
    program_run_t r;
    float target_max = 0.0f, sigma_rel;
    int result;
    if (memhw_check_rows(op, start, count) != MEMHW_DONE || memhw_check_mask(op, mask, count * cols) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    for (k = 0; k < count * cols; k++) {
        n += (uint32_t)memhw_bit(mask->p, k);
    }
    if (targets->n != n) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "targets has %u entries, mask selects %u", targets->n, n);
    }
    if (check(op) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    r.op = op;
    r.ws = carve(c, n, count * cols);
    if (!r.ws) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "PROGRAM of %u devices over %u rows exceeds this board's "
                            "planner memory (at most %u devices): program fewer rows at a time", n, count,
                            memhw_program_capacity(c));
    }
    if (!memhw_reply(op, 2u + 3u * (4u + 2u * n) + 4u + n)) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "PROGRAM reply of %u devices does not fit the reply buffer", n);
    }
    config_of(op, &cfg);
    r.start = (uint16_t)start;
    r.count = (uint16_t)count;
    r.v_read = (int16_t)op->v[MEMHW_PROGRAM_REQUEST_V_READ].i;
    r.average = 1;
    for (k = 0, at = 0; at < count * cols; at++) {
        if (memhw_bit(mask->p, at)) {
            memhw_device_t *d = &r.ws->dev[k];
            d->row = (uint16_t)(start + at / cols);
            d->col = (uint16_t)(at % cols);
            d->target = (float)memhw_u16_at(targets, k) * 1e-8f;
            target_max = d->target > target_max ? d->target : target_max;
            d->reason = MEMHW_R_PENDING;
            k++;
        }
    }
    r.ws->tuner.n = n;
    r.ws->tuner.dev = r.ws->dev;
    for (k = 0; k < n; k++) {
        r.ws->dev[k].g = 0.0f;
    }
    r.gain = verify_gain(c, target_max, cfg.tolerance, r.v_read);
    memset(r.verify_gains, r.gain >= 0 ? r.gain : 0, sizeof r.verify_gains);
    sigma_rel = read_noise(&r);
    r.average = op->v[MEMHW_PROGRAM_REQUEST_VERIFY_AVERAGE].u;
    if (!r.average) {
        r.average = memhw_verify_average(sigma_rel, target_max, cfg.tolerance);
    }
    for (k = 0; k < n; k++) {
        memhw_device_t *d = &r.ws->dev[k];
        d->sigma = sigma_rel * (d->target > 1e-6f ? d->target : 1e-6f) / memhw_sqrtf((float)r.average);
    }
    if (memhw_tuner_init(&r.ws->tuner, op->v[MEMHW_PROGRAM_REQUEST_ALGORITHM].u == 1u, &cfg, r.ws->dev, n,
                         r.ws->scratch, r.ws->idx) != 0) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "gate or RESET range too wide for the planner's curves");
    }
    result = run(&r);
    if (result == MEMHW_REBOOTED) {
        return result;
    }
    write_reply(&r);
    if (result == MEMHW_ABORTED || memhw_should_stop(op)) {
        return MEMHW_ABORTED;
    }
    return MEMHW_DONE;
}
