/*
 * memhw_measure.c -- the measurement chain: READ_CURRENTS, VMM, READ_MAP (the C port of
 * memhw/mock/measure.py) and the auto-range rule (PROTOCOL.md §10.2).
 *
 * Auto-ranging, per column and sample: start from the board's analog range estimate
 * (memhw_hal_range), convert, and while a code sits at a rail step that element one gain
 * down and convert the whole batch again, taking the new code where it was saturated.
 * The batches and their order are the reference's, so that a board model drawing noise
 * per conversion gives the reference's codes for the same seed.
 */
#include <string.h>

#include "memhw_handlers.h"

/* exposures per vectorised read of the reference when averaging (memhw/mock/measure.py) */
#define SAMPLES_PER_CALL 4096u

/* Native int16 / int32 storage at any alignment. */
static int16_t ld16(const uint8_t *p, uint32_t k)
{
    int16_t v;
    memcpy(&v, p + 2u * k, sizeof v);
    return v;
}

static void st16(uint8_t *p, uint32_t k, int16_t v)
{
    memcpy(p + 2u * k, &v, sizeof v);
}

static int32_t ld32(const uint8_t *p, uint32_t k)
{
    int32_t v;
    memcpy(&v, p + 4u * k, sizeof v);
    return v;
}

static void st32(uint8_t *p, uint32_t k, int32_t v)
{
    memcpy(p + 4u * k, &v, sizeof v);
}

/* Codes of a batch: int16 (replies) or int32 (sums), either way at any alignment. */
typedef struct codes {
    uint8_t *p;
    int wide; /* int32 elements */
} codes_t;

static int32_t get_code(const codes_t *s, uint32_t k)
{
    return s->wide ? ld32(s->p, k) : ld16(s->p, k);
}

static void set_code(const codes_t *s, uint32_t k, int32_t v)
{
    if (s->wide) {
        st32(s->p, k, v);
    } else {
        st16(s->p, k, (int16_t)v);
    }
}

static int at_rail(const memhw_core_t *c, int32_t code)
{
    int32_t top = (int32_t)((1u << (c->board.adc_bits - 1u)) - 1u);
    return code <= -top - 1 || code >= top;
}

/* Convert exposures first..first+n-1 at gains[] (one per element), in chunks, into s. */
static void convert(memhw_core_t *c, uint32_t first, uint32_t n, const uint8_t *gains, const codes_t *s,
                    uint32_t out_first)
{
    int32_t tmp[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
    uint32_t cols = c->board.cols, done = 0, k;
    while (done < n) {
        uint32_t m = n - done < MEMHW_CONVERT_CHUNK ? n - done : MEMHW_CONVERT_CHUNK;
        memhw_hal_convert(c->hal, first + done, m, gains + (size_t)done * cols, tmp);
        for (k = 0; k < m * cols; k++) {
            set_code(s, (out_first + done) * cols + k, tmp[k]);
        }
        done += m;
    }
}

/* Convert at fixed per-column gains (the same for every exposure). */
static void convert_fixed(memhw_core_t *c, uint32_t first, uint32_t n, const uint8_t *fixed, const codes_t *s,
                          uint32_t out_first)
{
    uint8_t g[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
    uint32_t cols = c->board.cols, done = 0, k;
    for (k = 0; k < MEMHW_CONVERT_CHUNK; k++) {
        memcpy(g + k * cols, fixed, cols);
    }
    while (done < n) {
        uint32_t m = n - done < MEMHW_CONVERT_CHUNK ? n - done : MEMHW_CONVERT_CHUNK;
        convert(c, first + done, m, g, s, out_first + done);
        done += m;
    }
}

/*
 * Auto-range exposures 0..n-1 of the present batch: gains (n*cols) and codes (n*cols).
 * As the reference's digitise(): every element starts at its estimate; then, while a
 * code sits at a rail with a gain above 0, saturated elements step one gain down and the
 * whole batch is converted again, saturated elements taking the new code (in the first
 * round also those already at gain 0).
 */
static void auto_range(memhw_core_t *c, uint32_t n, uint8_t *gains, const codes_t *s)
{
    uint32_t cols = c->board.cols, k, e;
    int first = 1, again = 0;
    for (e = 0; e < n; e++) {
        memhw_hal_range(c->hal, e, gains + (size_t)e * cols);
    }
    convert(c, 0, n, gains, s, 0);
    for (k = 0; k < n * cols; k++) {
        again |= at_rail(c, get_code(s, k)) && gains[k] > 0;
    }
    while (again) {
        int32_t tmp[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
        uint8_t sat[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
        again = 0;
        for (e = 0; e < n; e += MEMHW_CONVERT_CHUNK) {
            uint32_t m = n - e < MEMHW_CONVERT_CHUNK ? n - e : MEMHW_CONVERT_CHUNK;
            for (k = 0; k < m * cols; k++) {
                uint32_t at = e * cols + k;
                sat[k] = (uint8_t)(at_rail(c, get_code(s, at)) && (first || gains[at] > 0));
                if (sat[k] && gains[at] > 0) {
                    gains[at]--;
                }
            }
            memhw_hal_convert(c->hal, e, m, gains + (size_t)e * cols, tmp);
            for (k = 0; k < m * cols; k++) {
                uint32_t at = e * cols + k;
                if (sat[k]) {
                    set_code(s, at, tmp[k]);
                }
                again |= at_rail(c, get_code(s, at)) && gains[at] > 0;
            }
        }
        first = 0;
    }
}

int memhw_requested_gains(memhw_op_t *op, const memhw_value_t *gains, uint8_t *fixed_buf, const uint8_t **fixed)
{
    uint32_t cols = op->c->board.cols, k, top = 0;
    *fixed = 0;
    if (gains->n == 0 || (gains->n == 1 && gains->p[0] == MEMHW_AUTO_GAIN)) {
        return MEMHW_DONE;
    }
    if (gains->n != 1 && gains->n != cols) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "gains must have 0, 1 or %u entries, not %u", cols, gains->n);
    }
    for (k = 0; k < gains->n; k++) {
        top = gains->p[k] > top ? gains->p[k] : top;
    }
    if (top >= op->c->board.n_gains) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "gain index %u >= %u", top, (uint32_t)op->c->board.n_gains);
    }
    for (k = 0; k < cols; k++) {
        fixed_buf[k] = gains->p[gains->n == 1 ? 0 : k];
    }
    *fixed = fixed_buf;
    return MEMHW_DONE;
}

int memhw_check_average(memhw_op_t *op, uint32_t average)
{
    if (average < 1u) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "average must be >= 1");
    }
    return MEMHW_DONE;
}

/* round(total / n) to the nearest, ties to even (numpy.rint of the mean) */
static int32_t mean_code(int32_t total, uint32_t n)
{
    int32_t q = total / (int32_t)n, r = total % (int32_t)n;
    int32_t twice = 2 * (r < 0 ? -r : r);
    if (twice > (int32_t)n || (twice == (int32_t)n && (q & 1))) {
        q += total < 0 ? -1 : 1;
    }
    return q;
}

void memhw_convert_batch(memhw_core_t *c, uint32_t n, const uint8_t *fixed, uint8_t *gains, int16_t *codes)
{
    codes_t s;
    s.p = (uint8_t *)codes;
    s.wide = 0;
    if (fixed) {
        convert_fixed(c, 0, n, fixed, &s, 0);
    } else {
        auto_range(c, n, gains, &s);
    }
}

static uint32_t rows_selected(uint16_t count, const uint8_t *rows)
{
    uint32_t n = 0, i;
    for (i = 0; i < count; i++) {
        n += rows ? (uint32_t)memhw_bit(rows, i) : 1u;
    }
    return n;
}

/*
 * the rows of start.. that `rows` selects (NULL: all), one at a time at v_code; codes:
 * n*cols int16 (native, any alignment); gains: n*cols (auto) or cols (fixed); totals: n*cols
 * int32 scratch when average > 1.
 */
static void read_rows(memhw_core_t *c, uint16_t start, uint16_t count, const uint8_t *rows, int16_t v_code,
                      const uint8_t *fixed, uint32_t average, uint8_t *codes16, uint8_t *gains, uint8_t *totals)
{
    uint32_t cols = c->board.cols, n = rows_selected(count, rows), k;
    codes_t first = {codes16, 0};
    memhw_hal_expose_rows(c->hal, start, count, rows, v_code, 1);
    if (fixed) {
        memcpy(gains, fixed, cols);
        convert_fixed(c, 0, n, fixed, &first, 0);
    } else {
        auto_range(c, n, gains, &first);
    }
    if (average > 1u && n > 0u) {
        uint32_t per_call = SAMPLES_PER_CALL / n ? SAMPLES_PER_CALL / n : 1u, done;
        for (k = 0; k < n * cols; k++) {
            st32(totals, k, ld16(codes16, k));
        }
        for (done = 1; done < average; done += per_call) {
            uint32_t reps = average - done < per_call ? average - done : per_call, r, e;
            memhw_hal_expose_rows(c->hal, start, count, rows, v_code, reps);
            for (r = 0; r < reps; r++) {
                for (e = 0; e < n; e += MEMHW_CONVERT_CHUNK) {
                    int32_t tmp[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
                    uint32_t m = n - e < MEMHW_CONVERT_CHUNK ? n - e : MEMHW_CONVERT_CHUNK, j;
                    const uint8_t *g = fixed ? 0 : gains + (size_t)e * cols;
                    uint8_t row_gains[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
                    if (fixed) {
                        for (j = 0; j < m; j++) {
                            memcpy(row_gains + j * cols, fixed, cols);
                        }
                        g = row_gains;
                    }
                    memhw_hal_convert(c->hal, r * n + e, m, g, tmp);
                    for (j = 0; j < m * cols; j++) {
                        uint32_t at = e * cols + j;
                        st32(totals, at, ld32(totals, at) + tmp[j]);
                    }
                }
            }
        }
        for (k = 0; k < n * cols; k++) {
            st16(codes16, k, (int16_t)mean_code(ld32(totals, k), average));
        }
    }
    memhw_hal_read_end(c->hal);
}

#if !MEMHW_BATCH_ORDER
/* rows one at a time (MEMHW_BATCH_ORDER 0): sums for one row only */
static void read_rows_by_row(memhw_core_t *c, uint16_t start, uint16_t count, const uint8_t *rows, int16_t v_code,
                             const uint8_t *fixed, uint32_t average, uint8_t *codes16, uint8_t *gains)
{
    int32_t totals[MEMHW_COLS_MAX];
    uint32_t cols = c->board.cols, i, k = 0;
    for (i = 0; i < count; i++) {
        if (!rows || memhw_bit(rows, i)) {
            read_rows(c, (uint16_t)(start + i), 1, 0, v_code, fixed, average, codes16 + 2u * k * cols,
                      fixed ? gains : gains + k * cols, (uint8_t *)totals);
            k++;
        }
    }
}
#endif

void memhw_read_row_set(memhw_core_t *c, uint16_t start, uint16_t count, const uint8_t *rows, int16_t v_code,
                        const uint8_t *fixed, uint32_t average, uint8_t *codes, uint8_t *gains, uint8_t *totals)
{
#if MEMHW_BATCH_ORDER
    read_rows(c, start, count, rows, v_code, fixed, average, codes, gains, totals);
#else
    (void)totals;
    read_rows_by_row(c, start, count, rows, v_code, fixed, average, codes, gains);
#endif
}

void memhw_read_rows(memhw_core_t *c, uint16_t start, uint16_t count, int16_t v_code, const uint8_t *fixed,
                     uint32_t average, uint8_t *codes, uint8_t *gains, uint8_t *totals)
{
    memhw_read_row_set(c, start, count, 0, v_code, fixed, average, codes, gains, totals);
}

/* Write native int16 codes as little-endian in place. */
static void to_le16(uint8_t *p, uint32_t n)
{
    uint32_t k;
    for (k = 0; k < n; k++) {
        memhw_put16(p + 2u * k, (uint16_t)ld16(p, k));
    }
}

/* ------------------------------------------------------------------ handlers */

static void range_first(memhw_core_t *c, uint8_t *gains)
{
    int32_t probe[MEMHW_COLS_MAX];
    codes_t s;
    s.p = (uint8_t *)probe;
    s.wide = 1;
    auto_range(c, 1, gains, &s);
}

static void sum_samples(memhw_core_t *c, uint32_t samples, const uint8_t *gains, int32_t *sums)
{
    uint32_t cols = c->board.cols, e, j;
    for (j = 0; j < cols; j++) {
        sums[j] = 0;
    }
    for (e = 0; e < samples; e += MEMHW_CONVERT_CHUNK) {
        int32_t tmp[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
        uint8_t gg[MEMHW_CONVERT_CHUNK * MEMHW_COLS_MAX];
        uint32_t m = samples - e < MEMHW_CONVERT_CHUNK ? samples - e : MEMHW_CONVERT_CHUNK;
        for (j = 0; j < m; j++) {
            memcpy(gg + j * cols, gains, cols);
        }
        memhw_hal_convert(c->hal, e, m, gg, tmp);
        for (j = 0; j < m * cols; j++) {
            sums[j % cols] += tmp[j];
        }
    }
}

void memhw_read_samples(memhw_core_t *c, const uint8_t *fixed, uint32_t samples, uint8_t *gains, uint8_t *sums_le)
{
    int32_t sums[MEMHW_COLS_MAX];
    uint32_t cols = c->board.cols, k;
    if (fixed) {
        memcpy(gains, fixed, cols);
    } else { /* range on the first sample, keep that gain for the others */
        range_first(c, gains);
    }
    sum_samples(c, samples, gains, sums);
    for (k = 0; k < cols; k++) {
        memhw_put32(sums_le + 4u * k, (uint32_t)sums[k]);
    }
}

int memhw_handle_read_currents(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    uint32_t avg = op->v[MEMHW_READ_CURRENTS_REQUEST_AVERAGE].u, cols = c->board.cols;
    uint8_t buf[MEMHW_COLS_MAX], *p, *g, *sum;
    const uint8_t *fixed;
    memhw_writer_t w;
    if (memhw_check_average(op, avg) != MEMHW_DONE ||
        memhw_requested_gains(op, &op->v[MEMHW_READ_CURRENTS_REQUEST_GAINS], buf, &fixed) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    p = memhw_reply(op, 8u + 5u * cols);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    w.p = p;
    w.len = 0;
    w.cap = op->out_cap;
    g = memhw_w_array(&w, cols, 1);
    sum = memhw_w_array(&w, cols, 4);
    memhw_hal_expose_levels(c->hal, avg);
    memhw_read_samples(c, fixed, avg, g, sum);
    memhw_hal_read_end(c->hal);
    return MEMHW_DONE;
}

int memhw_handle_vmm(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    const memhw_value_t *in = &op->v[MEMHW_VMM_REQUEST_INPUTS];
    uint32_t n = op->v[MEMHW_VMM_REQUEST_N].u, rows = c->board.rows, cols = c->board.cols, k, e;
    uint8_t buf[MEMHW_COLS_MAX], *p, *g, *codes;
    const uint8_t *fixed;
    int32_t top = 0;
    memhw_writer_t w;
    codes_t s;
    if (in->n != n * rows) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "inputs has %u codes, expected n*rows = %u", in->n, n * rows);
    }
    if (memhw_requested_gains(op, &op->v[MEMHW_VMM_REQUEST_GAINS], buf, &fixed) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    for (k = 0; k < in->n; k++) {
        int32_t v = memhw_i16_at(in, k);
        v = v < 0 ? -v : v;
        top = v > top ? v : top;
    }
    if (n && top > c->limits.read_max) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "VMM input beyond the read limit of %d codes",
                            (int32_t)c->limits.read_max);
    }
    p = memhw_reply(op, 8u + (fixed ? cols : n * cols) + 2u * n * cols);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "reply of %u vectors does not fit the board's reply buffer", n);
    }
    w.p = p;
    w.len = 0;
    w.cap = op->out_cap;
    g = memhw_w_array(&w, fixed ? cols : n * cols, 1);
    codes = memhw_w_array(&w, n * cols, 2);
    s.p = codes;
    s.wide = 0;
    memhw_hal_expose_vectors(c->hal, n);
    for (e = 0; e < n; e++) {
        int16_t vec[MEMHW_ROWS_MAX];
        for (k = 0; k < rows; k++) {
            vec[k] = memhw_i16_at(in, e * rows + k);
        }
        memhw_hal_expose_vector(c->hal, e, vec);
    }
    if (fixed) {
        memcpy(g, fixed, cols);
        convert_fixed(c, 0, n, fixed, &s, 0);
    } else {
        auto_range(c, n, g, &s);
    }
    memhw_hal_read_end(c->hal);
    to_le16(codes, n * cols);
    return MEMHW_DONE;
}

int memhw_handle_read_map(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    uint32_t start = op->v[MEMHW_READ_MAP_REQUEST_ROW_START].u, count = op->v[MEMHW_READ_MAP_REQUEST_ROW_COUNT].u;
    uint32_t avg = op->v[MEMHW_READ_MAP_REQUEST_AVERAGE].u, cols = c->board.cols, size, extra;
    int32_t vr = op->v[MEMHW_READ_MAP_REQUEST_V_READ].i;
    uint8_t buf[MEMHW_COLS_MAX], *p, *g, *codes;
    const uint8_t *fixed;
    memhw_writer_t w;
    if (memhw_check_rows(op, start, count) != MEMHW_DONE || memhw_check_average(op, avg) != MEMHW_DONE ||
        memhw_requested_gains(op, &op->v[MEMHW_READ_MAP_REQUEST_GAINS], buf, &fixed) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    if (!(vr > 0 && vr <= c->limits.read_max)) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "v_read = %d codes outside 1..%d (the read limit)", vr,
                            (int32_t)c->limits.read_max);
    }
    size = 8u + (fixed ? cols : count * cols) + 2u * count * cols;
    extra = (MEMHW_BATCH_ORDER && avg > 1u) ? 4u * count * cols : 0u; /* room for the sums, released afterwards */
    p = memhw_reply(op, size + extra);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "reply of %u rows does not fit the board's reply buffer",
                            count);
    }
    w.p = p;
    w.len = 0;
    w.cap = op->out_cap;
    g = memhw_w_array(&w, fixed ? cols : count * cols, 1);
    codes = memhw_w_array(&w, count * cols, 2);
    memhw_read_rows(c, (uint16_t)start, (uint16_t)count, (int16_t)vr, fixed, avg, codes, g, p + size);
    to_le16(codes, count * cols);
    memhw_reply_shrink(op, size);
    return MEMHW_DONE;
}

/* ------------------------------------------------------------------ READ_DEVICES */

/* The rows of the block holding a selected device, as count packed bits; how many. */
static uint32_t busy_rows(const uint8_t *bits, uint32_t count, uint32_t cols, uint8_t *rows)
{
    uint32_t i, j, n = 0;
    memset(rows, 0, (count + 7u) / 8u);
    for (i = 0; i < count; i++) {
        for (j = 0; j < cols; j++) {
            if (memhw_bit(bits, i * cols + j)) {
                rows[i >> 3] |= (uint8_t)(1u << (i & 7u));
                n++;
                break;
            }
        }
    }
    return n;
}

int memhw_handle_read_devices(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    uint32_t start = op->v[MEMHW_READ_DEVICES_REQUEST_ROW_START].u;
    uint32_t count = op->v[MEMHW_READ_DEVICES_REQUEST_ROW_COUNT].u;
    uint32_t avg = op->v[MEMHW_READ_DEVICES_REQUEST_AVERAGE].u, cols = c->board.cols, cells = count * cols;
    int32_t vr = op->v[MEMHW_READ_DEVICES_REQUEST_V_READ].i;
    const memhw_value_t *gv = &op->v[MEMHW_READ_DEVICES_REQUEST_GAINS];
    const memhw_value_t *index = &op->v[MEMHW_READ_DEVICES_REQUEST_INDEX];
    uint8_t buf[MEMHW_COLS_MAX], rows[(MEMHW_ROWS_MAX + 7u) / 8u], *p, *g, *codes, *scratch;
    const uint8_t *fixed;
    uint32_t size, n_rows, i, j, k = 0;
    memhw_selection_t sel;
    memhw_writer_t w;
    if (memhw_check_rows(op, start, count) != MEMHW_DONE || memhw_check_average(op, avg) != MEMHW_DONE ||
        memhw_requested_gains(op, gv, buf, &fixed) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    if (fixed && gv->n != 1u) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "gains must be empty, [255] (auto) or one fixed gain");
    }
    if (!(vr > 0 && vr <= c->limits.read_max)) {
        return memhw_refuse(op, MEMHW_STATUS_LIMIT, "v_read = %d codes outside 1..%d (the read limit)", vr,
                            (int32_t)c->limits.read_max);
    }
    if (memhw_check_selection(op, &op->v[MEMHW_READ_DEVICES_REQUEST_MASK], index, cells, &sel) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    size = 8u + (fixed ? 1u : sel.n) + 2u * sel.n;
    /* scratch after the reply: the selection bitmap, then the rows' codes, gains and sums */
    p = memhw_reply(op, size + (cells + 7u) / 8u + 8u * cells + 8u);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "reply of %u devices over %u rows does not fit the "
                            "board's reply buffer", sel.n, count);
    }
    scratch = p + size;
    memhw_selection_bits(index, cells, &sel, scratch);
    n_rows = busy_rows(sel.bits, count, cols, rows);
    {
        uint8_t *row_codes = scratch + (cells + 7u) / 8u, *row_gains = row_codes + 2u * n_rows * cols;
        w.p = p;
        w.len = 0;
        w.cap = op->out_cap;
        g = memhw_w_array(&w, fixed ? 1u : sel.n, 1);
        codes = memhw_w_array(&w, sel.n, 2);
        if (n_rows) {
            memhw_read_row_set(c, (uint16_t)start, (uint16_t)count, rows, (int16_t)vr, fixed, avg, row_codes,
                               row_gains, row_gains + n_rows * cols);
        }
        if (fixed) {
            g[0] = fixed[0];
        }
        for (i = 0, n_rows = 0; i < count; i++) { /* the selected devices, row-major */
            if (!memhw_bit(rows, i)) {
                continue;
            }
            for (j = 0; j < cols; j++) {
                if (memhw_bit(sel.bits, i * cols + j)) {
                    int16_t code;
                    memcpy(&code, row_codes + 2u * (n_rows * cols + j), sizeof code);
                    memhw_put16(codes + 2u * k, (uint16_t)code);
                    if (!fixed) {
                        g[k] = row_gains[n_rows * cols + j];
                    }
                    k++;
                }
            }
            n_rows++;
        }
    }
    memhw_reply_shrink(op, size);
    return MEMHW_DONE;
}
