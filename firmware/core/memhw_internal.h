/*
 * memhw_internal.h -- what the core offers its message handlers (not for ports).
 *
 * A handler is `int fn(memhw_op_t *op)`: it reads the decoded request in op->v (slots
 * MEMHW_<MESSAGE>_REQUEST_<FIELD> of memhw_layouts.h), makes every check first
 * (memhw_refuse), then allocates its reply (memhw_reply) and executes, looking for ABORT
 * between steps (memhw_should_stop) and passing the fault point after each step
 * (memhw_step_done). It returns MEMHW_DONE, MEMHW_REFUSED, MEMHW_ABORTED (the reply holds
 * the state so far) or MEMHW_REBOOTED (nothing more may be sent). Handlers are listed in
 * memhw_handlers[] (memhw_dispatch.c), one per message of the schema or NULL.
 */
#ifndef MEMHW_INTERNAL_H
#define MEMHW_INTERNAL_H

#include <stdarg.h>

#include "memhw_core.h"

enum { MEMHW_DONE = 0, MEMHW_REFUSED = 1, MEMHW_ABORTED = 2, MEMHW_REBOOTED = 3 };

/* A decoded field: a scalar, or an array / string as (count, little-endian bytes). */
typedef struct memhw_value {
    uint32_t u;               /* unsigned scalars */
    int32_t i;                /* signed scalars */
    float f;                  /* f32 */
    uint32_t n;               /* array elements / string bytes */
    const uint8_t *p;         /* array or string data (in the request) */
} memhw_value_t;

typedef struct memhw_op {
    memhw_core_t *c;
    int conn;
    uint8_t gen;
    memhw_header_t req;       /* the request's header (chunk 0, MORE cleared); length unused */
    const uint8_t *payload;
    uint32_t len;
    uint8_t msg;              /* index in memhw_messages */
    memhw_value_t v[MEMHW_MAX_FIELDS];
    uint8_t status;           /* refusal status */
    char reason[MEMHW_REASON_MAX + 1];
    uint8_t *out;             /* reply payload being built (in the cache arena) */
    uint32_t out_len;
    uint32_t out_cap;
    uint32_t out_offset;      /* where it lies in the arena */
    uint8_t in_arena;         /* the reply was allocated there (memhw_reply): it can be cached */
    uint8_t small[4];         /* replies of ABORT and BYE (never cached) */
} memhw_op_t;

typedef int (*memhw_handler_t)(memhw_op_t *op);
extern const memhw_handler_t memhw_handlers[MEMHW_MESSAGE_COUNT];

/* ------------------------------------------------------------------ wire helpers (memhw_wire.c) */

uint16_t memhw_get16(const uint8_t *p);
uint32_t memhw_get32(const uint8_t *p);
void memhw_put16(uint8_t *p, uint16_t v);
void memhw_put32(uint8_t *p, uint32_t v);
uint32_t memhw_f32_bits(float f);

/* Element k of an array field. */
uint8_t memhw_u8_at(const memhw_value_t *v, uint32_t k);
uint16_t memhw_u16_at(const memhw_value_t *v, uint32_t k);
int16_t memhw_i16_at(const memhw_value_t *v, uint32_t k);
float memhw_f32_at(const memhw_value_t *v, uint32_t k);
/* 1 unless x is NaN or infinite (no libm) */
int memhw_finite(float x);
/* Bit k of a packed mask (LSB first). */
int memhw_bit(const uint8_t *mask, uint32_t k);

/*
 * Decode `len` bytes as `layout` into values[]; 0, or -1 with the reason in `reason`
 * (the same text as the Python codec's ProtocolError). `label` is e.g. "VMM.request".
 */
int memhw_decode(const memhw_layout_t *layout, const char *label, const uint8_t *payload, uint32_t len,
                 memhw_value_t *values, char *reason, size_t reason_cap);

/* 1 if n bytes are valid UTF-8 (as Python's strict decoder: no overlongs, no surrogates). */
int memhw_utf8_valid(const uint8_t *s, uint32_t n);

/* snprintf subset: %s %c %d %u (32-bit), %U (uint64_t), %Nx as Python's {:#0(N+2)x} (N digits, "0x" prefix),
 * %g (a float, as Python's {:g} of an f32), %f (a float, one decimal); floats are passed as their
 * bits (memhw_f32_bits), so no double arithmetic is ever needed. Always terminates; returns the length. */
size_t memhw_vfmt(char *dst, size_t cap, const char *fmt, va_list ap);
size_t memhw_fmt(char *dst, size_t cap, const char *fmt, ...);

/* Sequential writer over a reply buffer. */
typedef struct memhw_writer {
    uint8_t *p;
    uint32_t len, cap;
} memhw_writer_t;
void memhw_w_u8(memhw_writer_t *w, uint8_t v);
void memhw_w_u16(memhw_writer_t *w, uint16_t v);
void memhw_w_u32(memhw_writer_t *w, uint32_t v);
void memhw_w_f32(memhw_writer_t *w, float v);
void memhw_w_str(memhw_writer_t *w, const char *s);
/* An array of n elements of `size` bytes: writes the count, returns where the elements go. */
uint8_t *memhw_w_array(memhw_writer_t *w, uint32_t n, uint32_t size);

/* ------------------------------------------------------------------ core services (memhw_core.c) */

/* Refuse the request: status and formatted reason; returns MEMHW_REFUSED. */
int memhw_refuse(memhw_op_t *op, uint8_t status, const char *fmt, ...);
/* Allocate the reply payload (`size` bytes) in the cache arena; NULL if it cannot fit. */
uint8_t *memhw_reply(memhw_op_t *op, uint32_t size);
/* Shrink the reply just allocated to `size` bytes. */
void memhw_reply_shrink(memhw_op_t *op, uint32_t size);
/* Send a progress frame (when the request asked for them). */
void memhw_progress(memhw_op_t *op, const uint8_t *payload, uint32_t len);
/* Between steps: read every connection; 1 once the owner sent ABORT. */
int memhw_should_stop(memhw_op_t *op);
/* Fault point after `steps` steps; 1 when the board rebooted there (return MEMHW_REBOOTED). */
int memhw_step_done(memhw_op_t *op, int32_t steps);

/* Hardware state kept by the core. */
void memhw_ground(memhw_core_t *c);
uint32_t memhw_line_count(const memhw_core_t *c, uint8_t group);
void memhw_count_pulses(memhw_core_t *c, uint32_t n);

/* ------------------------------------------------------------------ shared checks and reads */

/* "rows a..b outside 0..rows-1" (LIMIT) when start + count > rows. */
int memhw_check_rows(memhw_op_t *op, uint32_t start, uint32_t count);
/* A packed mask of n elements must have ceil(n/8) bytes (BAD_PAYLOAD). */
int memhw_check_mask(memhw_op_t *op, const memhw_value_t *mask, uint32_t n);
/* `average` >= 1 (BAD_PAYLOAD). */
int memhw_check_average(memhw_op_t *op, uint32_t average);
/* A `gains` field: *fixed = NULL for auto-range, else cols gain indices in `fixed_buf`. */
int memhw_requested_gains(memhw_op_t *op, const memhw_value_t *gains, uint8_t *fixed_buf, const uint8_t **fixed);
/* Line group value -> lines; BAD_PAYLOAD for an unknown group. */
int memhw_check_group(memhw_op_t *op, uint32_t group, uint32_t *lines);

/*
 * The measurement engine of READ_MAP and PROGRAM (memhw_measure.c): rows start.. one at a
 * time at v_code, `average` samples, fixed gains or auto-ranged (fixed == NULL). Writes
 * count*cols mean codes (native int16 at any alignment, rounded half to even) and, when
 * auto-ranged, count*cols gains (fixed: cols). `totals` is scratch of count*cols int32 (any
 * alignment; used when average > 1 with MEMHW_BATCH_ORDER 1).
 */
void memhw_read_rows(memhw_core_t *c, uint16_t start, uint16_t count, int16_t v_code, const uint8_t *fixed,
                     uint32_t average, uint8_t *codes, uint8_t *gains, uint8_t *totals);

/*
 * READ_CURRENTS and READ_REFERENCE: convert `samples` exposures of the present batch at the
 * fixed gains, or at the gains auto-ranged on the first sample (written to gains), and
 * write the per-column sums as little-endian int32 to sums_le.
 */
void memhw_read_samples(memhw_core_t *c, const uint8_t *fixed, uint32_t samples, uint8_t *gains, uint8_t *sums_le);

/*
 * READ_MAP's engine over the rows of a block that `rows` selects (count bits, NULL: every
 * row): the selected rows in increasing order, codes and gains as memhw_read_rows for them.
 */
void memhw_read_row_set(memhw_core_t *c, uint16_t start, uint16_t count, const uint8_t *rows, int16_t v_code,
                        const uint8_t *fixed, uint32_t average, uint8_t *codes, uint8_t *gains, uint8_t *totals);

/* Auto-range or convert at fixed per-column gains n exposures of the present batch into int16 codes. */
void memhw_convert_batch(memhw_core_t *c, uint32_t n, const uint8_t *fixed, uint8_t *gains, int16_t *codes);

/* ------------------------------------------------------------------ calibration (memhw_calibration.c) */

/* Forget the session state of protocol 2.1: calibration, tiles, network (a new session, BYE, reboot). */
void memhw_session_reset(memhw_core_t *c);
/* Volts on channel ch of a group -> its code through the calibration, clipped to lo..hi (binary32). */
int16_t memhw_dac_code(const memhw_core_t *c, uint8_t group, uint16_t ch, float volts, int16_t lo, int16_t hi);
/* Code on channel ch of a group -> volts through the calibration. */
float memhw_dac_volts(const memhw_core_t *c, uint8_t group, uint16_t ch, int16_t code);
/* ADC code of column j at gain g -> amperes through the calibration. */
float memhw_current(const memhw_core_t *c, uint16_t j, uint8_t g, int32_t code);

/* ------------------------------------------------------------------ selections (memhw_select.c) */

/* A device selection of a row block (READ_DEVICES, PULSE_DEVICES): a mask or an index (§10.5). */
typedef struct memhw_selection {
    const uint8_t *bits;      /* count*cols packed bits (the request's mask, or decoded into scratch) */
    uint32_t n;               /* selected devices */
} memhw_selection_t;
/* Check the request's mask / index fields for a block of `cells` devices (BAD_PAYLOAD); counts the devices. */
int memhw_check_selection(memhw_op_t *op, const memhw_value_t *mask, const memhw_value_t *index, uint32_t cells,
                          memhw_selection_t *sel);
/* Make sel->bits point at a bitmap of the selection, decoding an index into `scratch` ((cells + 7) / 8 bytes). */
void memhw_selection_bits(const memhw_value_t *index, uint32_t cells, memhw_selection_t *sel, uint8_t *scratch);

/* ------------------------------------------------------------------ tiles (memhw_tiles.c) */

/*
 * One tile VMM of n vectors: volts(ctx, e, k) is input k of vector e (nominal volts, before
 * calibration); gains: NULL auto-range (used gains per element into used[n*(M+M-)]), else
 * one per column read. Codes of the columns read (cols then neg_cols) into codes[n*(M+M-)].
 */
typedef float (*memhw_tile_input_t)(const void *ctx, uint32_t e, uint32_t k);
void memhw_tile_vmm(memhw_core_t *c, const memhw_tile_t *t, uint32_t n, memhw_tile_input_t volts, const void *ctx,
                    const uint8_t *gains, int16_t *codes, uint8_t *used, void *scratch);
/* The tile `ident` of this session, or NULL with the request refused (BAD_PAYLOAD, as tiles.py get_tile). */
const memhw_tile_t *memhw_defined_tile(memhw_op_t *op, uint32_t ident);
/* Bytes of scratch memhw_tile_vmm needs for n vectors. */
uint32_t memhw_tile_scratch(const memhw_core_t *c, uint32_t n);
/* The line indices of a tile: rows, neg_rows, cols, neg_cols (NULL when absent). */
const uint8_t *memhw_tile_lines(const memhw_core_t *c, const memhw_tile_t *t, unsigned which);

/* Pulse the masked devices of a batch row by row (memhw_pulses.c); see PULSE_SET. */
typedef struct memhw_batch {
    uint8_t kind;             /* MEMHW_HAL_SET or MEMHW_HAL_RESET */
    uint16_t start, count;
    const uint8_t *mask;      /* count*cols packed bits */
    /* per selected device, in mask order: element (k) of each array, or a broadcast value */
    int16_t (*amp)(const void *ctx, uint32_t k, uint16_t row, uint16_t col);
    int16_t (*gate)(const void *ctx, uint32_t k, uint16_t row, uint16_t col);
    uint16_t (*width)(const void *ctx, uint32_t k, uint16_t row, uint16_t col);
    const void *ctx;
    int progress;             /* send PULSE progress frames */
    uint16_t progress_every;  /* 0: after every row; n: rows without selected devices are skipped (no time,
                                 no abort check, no fault point) and progress comes after every n-th row
                                 holding selected devices and after the last (PULSE_DEVICES) */
} memhw_batch_t;
/* Returns MEMHW_DONE, MEMHW_ABORTED or MEMHW_REBOOTED; rows done and pulses in *rows_done, *pulses. */
int memhw_apply_rows(memhw_op_t *op, const memhw_batch_t *b, uint16_t *rows_done, uint32_t *pulses);

#endif /* MEMHW_INTERNAL_H */
