/*
 * memhw_hal.h -- what a measurement board provides to the memhw firmware core.
 *
 * The core (firmware/core) implements the whole board side of PROTOCOL.md: frames,
 * session, reply cache, dispatch, limits, watchdog, auto-ranging, pulse batches, WAIT
 * and on-board PROGRAM. It touches the hardware only through the functions below,
 * which a board port implements (docs/firmware.md is the porting guide). Every
 * function receives the `hal` pointer the port handed to memhw_core_init(), so one
 * program may run several cores (the host build does).
 *
 * Units: DAC levels are signed DAC codes (volts = code * lsb of the group, nominal);
 * ADC results are signed ADC codes; pulse widths are width-register codes; time is
 * milliseconds of a monotonic clock (memhw_hal_millis) or seconds (WAIT only).
 *
 * Measurements follow a sample-and-hold pattern: one memhw_hal_expose_*() call says
 * what the next conversions measure (a batch of "exposures": samples at the present
 * levels, input vectors, single rows, or the reference bus), memhw_hal_convert()
 * converts exposures of that batch at given TIA gains (any number of times: the core
 * may convert an exposure again at a lower gain when it saturated), and
 * memhw_hal_read_end() closes the batch. A board may drive the lines and convert at
 * convert time (a real ADC converts what is on the line then); the host build draws the
 * array's noise per batch at expose time. Within a batch the core calls convert in
 * increasing exposure order, possibly in several calls.
 *
 * All functions are called from the core's context (the main loop), never from an
 * interrupt. None of them may call back into the core.
 */
#ifndef MEMHW_HAL_H
#define MEMHW_HAL_H

#include <stddef.h>
#include <stdint.h>

/* Largest number of TIA gain settings a board may announce. */
#define MEMHW_GAINS_MAX 8u
/* Largest number of on-board reference resistors. */
#define MEMHW_REFERENCES_MAX 16u
/* Longest serial / chip identifier / firmware name, bytes (without terminator). */
#define MEMHW_ID_MAX 63u

/* Safety limits in codes (SET_LIMITS, PROTOCOL.md §14). */
typedef struct memhw_limits {
    int16_t read_max;   /* largest |DC level| on rows and columns, |VMM input|, READ_MAP v_read */
    int16_t set_max;    /* largest SET amplitude (column DAC code) */
    int16_t reset_max;  /* largest RESET amplitude (row DAC code) */
    int16_t gate_max;   /* largest gate level (gate DAC code); gates are never negative */
    uint16_t width_max; /* largest pulse width code */
} memhw_limits_t;

/*
 * What the board is: filled by the port before memhw_core_init(). The float fields are
 * only announced (HELLO, READ_REFERENCE, READ_DAC) and used by the PROGRAM planner's
 * nominal conversions; every check uses the code fields.
 */
typedef struct memhw_board {
    char serial[MEMHW_ID_MAX + 1];          /* board serial number (HELLO serial) */
    char chip[MEMHW_ID_MAX + 1];            /* chip in the socket, "" if unknown (HELLO chip) */
    uint16_t rows, cols;                    /* array geometry; at most MEMHW_ROWS_MAX x MEMHW_COLS_MAX */
    uint8_t dac_bits, adc_bits;             /* converter resolutions (signed codes) */
    float dac_line_lsb, dac_gate_lsb;       /* V per row/column and per gate DAC code */
    float adc_lsb;                          /* V at the ADC per ADC code */
    uint8_t n_gains;                        /* TIA gain settings, 1 .. MEMHW_GAINS_MAX */
    float tia_gains[MEMHW_GAINS_MAX];       /* ohm per gain index, ascending; the TIA inverts */
    float width_offset, width_lsb;          /* s = width_offset + code * width_lsb */
    uint16_t width_max_code;                /* largest width register code */
    float v_read_max, v_set_max;            /* announced maxima, V (HELLO) */
    float v_reset_max, v_gate_max;
    memhw_limits_t abs_limits;              /* the same maxima in codes: round(V / lsb) */
    int16_t gate_on_code;                   /* gate level of reads and VMM ("fully on") */
    uint8_t n_references;                   /* reference resistors, 1 .. MEMHW_REFERENCES_MAX */
    float reference_ohms[MEMHW_REFERENCES_MAX]; /* nominal values (READ_REFERENCE resistance) */
    float reference_tolerance;              /* relative 1-sigma tolerance of the references */
    float monitor_lsb;                      /* V per monitor ADC code */
    uint16_t max_frame;                     /* payload bytes per frame (>= 240, <= the core's frame buffer) */
    uint32_t max_message;                   /* largest reassembled request (<= the core's buffers) */
    uint32_t watchdog_ms;                   /* host silence that grounds applied levels (0: off) */
} memhw_board_t;

/* Line groups (protocol enum LineGroup). */
#define MEMHW_HAL_ROWS 0u
#define MEMHW_HAL_COLS 1u
#define MEMHW_HAL_GATES 2u

/* Pulse kinds of memhw_hal_pulse_row(). */
#define MEMHW_HAL_SET 0u
#define MEMHW_HAL_RESET 1u

/* ------------------------------------------------------------------ DC levels */

/*
 * Drive the lines of `group` (rows: n = rows; columns and gates: n = cols): line i at
 * DAC code codes[i] where driven[i] is 1, switched to ground (exactly 0 V) where 0.
 * Called after every change of a group's levels (SET_LEVELS) with the whole group.
 */
void memhw_hal_lines(void *hal, uint8_t group, const int16_t *codes, const uint8_t *driven);

/* Ground every row, column and gate line at once (GROUND_ALL, ABORT, watchdog, session changes). */
void memhw_hal_ground(void *hal);

/* ------------------------------------------------------------------ measurements */

/*
 * READ_CURRENTS: `samples` exposures of the array at the present DC levels (rows, columns
 * and gates as last set by memhw_hal_lines), every column's TIA holding its column level.
 */
void memhw_hal_expose_levels(void *hal, uint32_t samples);

/*
 * VMM: n input vectors, each applied to the rows in turn (columns at virtual ground,
 * gates at gate_on_code). The core then gives each vector with memhw_hal_expose_vector
 * (index 0 .. n-1, `rows` codes), before the first conversion.
 */
void memhw_hal_expose_vectors(void *hal, uint32_t n);
void memhw_hal_expose_vector(void *hal, uint32_t index, const int16_t *codes);

/*
 * VMM_TILE and RUN_NETWORK: n input vectors on a tile. The core gives each vector with
 * memhw_hal_expose_tile_vector (index 0 .. n-1): row i at codes[i] where driven[i] is 1,
 * switched to ground where 0; columns at virtual ground, gates at gate_on_code. Only the
 * columns with read[j] = 1 matter (the core discards the others' codes; the host build
 * counts their current as 0 A, as the reference does).
 */
void memhw_hal_expose_tile(void *hal, uint32_t n, const uint8_t *read);
void memhw_hal_expose_tile_vector(void *hal, uint32_t index, const int16_t *codes, const uint8_t *driven);

/*
 * READ_MAP, READ_DEVICES and PROGRAM's verify reads: the rows of start .. start+count-1
 * that `rows` selects (count packed bits, LSB first; NULL: every one) driven one at a time
 * at v_code (the other rows grounded, columns at virtual ground, gates at gate_on_code),
 * in increasing order, the whole sequence `repeats` times: with n rows selected, exposure
 * k is the (k % n)-th of them.
 */
void memhw_hal_expose_rows(void *hal, uint16_t start, uint16_t count, const uint8_t *rows, int16_t v_code,
                           uint32_t repeats);

/*
 * READ_REFERENCE: every column's TIA input switched from the array to reference resistor
 * `index`, the reference bus at DAC code v_ref; `samples` exposures.
 */
void memhw_hal_expose_reference(void *hal, uint8_t index, int16_t v_ref, uint32_t samples);

/*
 * Analog range estimate of exposure `exposure`: per column the highest gain index whose
 * reading stays within 90 % of the ADC's full scale (0 if none), e.g. from window
 * comparators on the TIA output. A board without one writes n_gains - 1 everywhere
 * (PROTOCOL.md §10.2: "firmware without an analog estimate starts from the highest gain").
 */
void memhw_hal_range(void *hal, uint32_t exposure, uint8_t *gains);

/*
 * Convert exposures first .. first+count-1 of the present batch: all columns in parallel,
 * column j of exposure k at gain index gains[k*cols + j], result in codes[k*cols + j]
 * (signed ADC codes, saturating at the rails).
 */
void memhw_hal_convert(void *hal, uint32_t first, uint32_t count, const uint8_t *gains, int32_t *codes);

/* The present batch is done (lines back to their DC levels, reference bus at 0). */
void memhw_hal_read_end(void *hal);

/* The reference bus voltage of the present READ_REFERENCE batch: mean of `average` monitor samples. */
int32_t memhw_hal_monitor_reference(void *hal, uint32_t average);

/*
 * READ_DAC: each line of `group` disconnected from the array, its DAC set to codes[i],
 * its output measured through the monitor multiplexer: mean of `average` samples in out[i];
 * then the previous levels restored and the lines reconnected.
 */
void memhw_hal_monitor_dac(void *hal, uint8_t group, const int16_t *codes, uint32_t average, int32_t *out);

/* ------------------------------------------------------------------ pulses */

/*
 * One row of a pulse batch: the devices of `row` whose selected[j] is 1 get one pulse of
 * width code widths[j] through gate level gates[j].
 *   SET:   row grounded (row_code 0), column j driven at col_codes[j] (the amplitude);
 *   RESET: row driven at row_code (the row's largest amplitude), column j biased at
 *          col_codes[j] = row_code - amplitude[j], so device j sees its own amplitude.
 * Unselected columns carry no pulse (SET: grounded; RESET: biased at row_code). The
 * lines return to their DC levels afterwards.
 */
void memhw_hal_pulse_row(void *hal, uint8_t kind, uint16_t row, const uint8_t *selected, int16_t row_code,
                         const int16_t *col_codes, const int16_t *gates, const uint16_t *widths);

/* ------------------------------------------------------------------ time, randomness, link */

/*
 * RUN_NETWORK computed `values` activation and state values on the MCU (the time passes by
 * itself on a board, which does nothing here; the host build advances its virtual clock).
 */
void memhw_hal_computed(void *hal, uint32_t values);

/* Milliseconds of a monotonic clock (wrapping at 2^32). */
uint32_t memhw_hal_millis(void *hal);

/*
 * Idle with every line grounded for at most `seconds` (> 0) and return the seconds actually
 * waited (> 0). The core calls it in a loop and looks for ABORT between calls, so a board
 * should return after a short time (e.g. 10 ms) for long waits.
 */
float memhw_hal_wait(void *hal, float seconds);

/* A random 16-bit number (boot id, session ids): a hardware RNG or a seeded generator. */
uint16_t memhw_hal_random16(void *hal);

/* Send bytes to the host on connection `conn` (blocking until queued). */
void memhw_hal_write(void *hal, uint8_t conn, const uint8_t *data, size_t len);

/* Bytes that arrived on connection `conn` (non-blocking): at most cap into buf; 0 if none. */
size_t memhw_hal_poll(void *hal, uint8_t conn, uint8_t *buf, size_t cap);

/*
 * Fault-injection point (test builds): called after each step of a long operation (`steps`
 * = steps done, >= 1) and after each executed request (steps = -1). Return 1 to make the
 * core reboot there (as a power cycle would); a board returns 0.
 */
int memhw_hal_fault(void *hal, int32_t steps);

#endif /* MEMHW_HAL_H */
