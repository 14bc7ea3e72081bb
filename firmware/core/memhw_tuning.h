/*
 * memhw_tuning.h -- the write-and-verify planners of memhw.algorithms.tuning, ported to C
 * single precision (Cortex-M4F has a single-precision FPU; no libm needed).
 *
 * The planner sees only the selected devices (a list, row-major), each with its target,
 * its latest verified conductance and its learning state; it answers each round with the
 * devices to SET (and their gate) and to RESET (amplitude, width). Units are SI (S, V, s).
 */
#ifndef MEMHW_TUNING_H
#define MEMHW_TUNING_H

#include <stdint.h>

/* Points of a learned response curve (the gate and RESET amplitude grids step 25 mV):
 * 256 covers any gate window up to 6.4 V; a board may choose fewer (128: 3.2 V windows). */
#ifndef MEMHW_CURVE_MAX
#define MEMHW_CURVE_MAX 256u
#endif

/* TuningReason (protocol enum) */
enum {
    MEMHW_R_PENDING = 0, MEMHW_R_CONVERGED = 1, MEMHW_R_STUCK = 2, MEMHW_R_TOO_HIGH = 3, MEMHW_R_TOO_LOW = 4,
    MEMHW_R_PULSE_CAP = 5, MEMHW_R_ROUND_CAP = 6, MEMHW_R_NOT_SELECTED = 7, MEMHW_R_RAMP_EXHAUSTED = 8
};

/* Device flags */
#define MEMHW_DEV_SET 0x01u     /* in the last plan's SET batch */
#define MEMHW_DEV_RESET 0x02u   /* in the last plan's RESET batch */
#define MEMHW_DEV_FINE 0x04u    /* its last RESET used the short width */
#define MEMHW_DEV_CHANGED 0x08u /* responded to a pulse at least once */
#define MEMHW_DEV_CONFIRMED 0x10u /* settled and seen by a confirmation read since */
#define MEMHW_DEV_PULSED 0x20u  /* pulsed since the last confirmation read */
#define MEMHW_DEV_VERIFY 0x40u  /* the next verify read covers it (memhw_tuner_to_verify) */

typedef struct memhw_tuning_config {
    float tolerance, set_v, set_width, gate_min, gate_max, reset_v_min, reset_v_max, reset_gate;
    float reset_width, reset_width_min, set_noise_prior;
    uint16_t max_pulses, max_rounds, patience;
    uint8_t reopen;
} memhw_tuning_config_t;

typedef struct memhw_device {
    float target, g, g_prev, sigma;
    float a, b;               /* adaptive: gate and RESET offsets; baseline: gate and RESET amplitude */
    float set_gate, reset_v;  /* the last plan: SET gate, RESET amplitude */
    float set_v;              /* the last plan's SET amplitude (baseline ramps it) */
    uint16_t set_pulses, reset_pulses;
    uint16_t row, col;
    uint8_t reason, reopened, tries, exhausted, flags;
} memhw_device_t;

typedef struct memhw_curve {
    float x0, step;           /* grid x_i = x0 + i * step */
    uint16_t n;
    float prior[MEMHW_CURVE_MAX], y[MEMHW_CURVE_MAX], sum[MEMHW_CURVE_MAX], count[MEMHW_CURVE_MAX];
} memhw_curve_t;

typedef struct memhw_tuner {
    uint8_t baseline;         /* 0: adaptive, 1: the published ramps */
    memhw_tuning_config_t cfg;
    memhw_device_t *dev;
    uint32_t n;
    uint16_t rounds;
    uint32_t best_pending, best_round;
    int has_last, has_prev;   /* a plan was made last round; g_prev is set */
    float set_noise;
    memhw_curve_t set_curve, reset_curve;
    float *scratch;           /* 2n floats */
    uint16_t *scratch_idx;    /* n */
} memhw_tuner_t;

/* Bytes of planner workspace per device (device state + scratch). */
#define MEMHW_TUNER_BYTES_PER_DEVICE (sizeof(memhw_device_t) + 2u * sizeof(float) + sizeof(uint16_t))

/* Set the planner up for n devices whose target, row, col and sigma are filled in. 0, or -1 if a curve grid is too long. */
int memhw_tuner_init(memhw_tuner_t *t, int baseline, const memhw_tuning_config_t *cfg, memhw_device_t *dev,
                     uint32_t n, float *scratch, uint16_t *scratch_idx);

/* Take the round's verified conductances (dev[].g); 1 with a plan in the device flags, 0 when settled. */
int memhw_tuner_update(memhw_tuner_t *t);

/*
 * Mark the devices the next verify read must cover (MEMHW_DEV_VERIFY; tuning.py to_verify):
 * every device before the first round, then the pending ones; when none is left, the settled
 * devices no confirmation has seen and every device sharing a row with one pulsed since the
 * last confirmation (every device when that is none). rows_max: rows of the array.
 */
void memhw_tuner_to_verify(memhw_tuner_t *t);

/* Judge the final confirmation read (dev[].g). */
void memhw_tuner_finish(memhw_tuner_t *t);

/* Relative read noise of one read from two reads of the same devices (robust); scratch of n floats. */
float memhw_read_sigma(const float *g1, const float *g2, uint32_t n, float *scratch);

/* Samples per verify read so one reading's sigma is at most a fifth of the tolerance at the largest target. */
uint32_t memhw_verify_average(float sigma_rel, float target_max, float tolerance);

/* Median of n values (reorders them); n > 0. */
float memhw_median(float *v, uint32_t n);

/* Freestanding maths */
float memhw_expf(float x);
float memhw_sqrtf(float x);
float memhw_rintf(float x); /* nearest, ties to even */

#endif /* MEMHW_TUNING_H */
