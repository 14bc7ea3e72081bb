/*
 * memhw_tuning.c -- AdaptiveTuner, BaselineTuner and MonotoneCurve of
 * memhw/algorithms/tuning.py and response.py in single precision. The decisions follow the
 * Python line by line; docs/firmware.md states how closely the results agree.
 */
#include <string.h>

#include "memhw_tuning.h"

/* ------------------------------------------------------------------ maths */

float memhw_rintf(float x)
{
    float big = 8388608.0f; /* 2^23: floats this large are integers */
    if (x >= big || x <= -big || x != x) {
        return x;
    }
    return x >= 0.0f ? (x + big) - big : (x - big) + big; /* round to nearest even in the FPU */
}

static float floorf_(float x)
{
    float r = memhw_rintf(x);
    return r > x ? r - 1.0f : r;
}

static float ceilf_(float x)
{
    float r = memhw_rintf(x);
    return r < x ? r + 1.0f : r;
}

float memhw_expf(float x)
{
    /* e^x = 2^k * e^r, r = x - k ln2 in [-ln2/2, ln2/2]; degree-6 Taylor for e^r (rel. error < 2e-7) */
    float k, r, p, scale = 1.0f;
    int32_t i;
    if (x > 88.0f) {
        return 3.4e38f;
    }
    if (x < -87.0f) {
        return 0.0f;
    }
    k = memhw_rintf(x * 1.44269504f);
    r = (x - k * 0.693145752f) - k * 1.42860677e-6f;
    p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    for (i = (int32_t)k; i > 0; i--) {
        scale *= 2.0f;
    }
    for (i = (int32_t)k; i < 0; i++) {
        scale *= 0.5f;
    }
    return p * scale;
}

float memhw_sqrtf(float x)
{
    float y = x > 1.0f ? x : 1.0f;
    int i;
    if (!(x > 0.0f)) {
        return 0.0f;
    }
    for (i = 0; i < 60; i++) { /* Newton from above converges monotonically */
        float next = 0.5f * (y + x / y);
        if (next >= y) {
            break;
        }
        y = next;
    }
    return y;
}

static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

static float maxf(float a, float b)
{
    return a > b ? a : b;
}

static float absf(float a)
{
    return a < 0.0f ? -a : a;
}

/* ------------------------------------------------------------------ median */

static void swapf(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* k-th smallest of v[0..n) (reorders v) */
static float select_k(float *v, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1u;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2u];
        uint32_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                swapf(&v[i], &v[j]);
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) {
            hi = j;
        } else if (k >= i) {
            lo = i;
        } else {
            break;
        }
    }
    return v[k];
}

float memhw_median(float *v, uint32_t n)
{
    float hi = select_k(v, n, n / 2u), lo;
    uint32_t i;
    if (n % 2u) {
        return hi;
    }
    lo = v[0]; /* the largest of the lower half */
    for (i = 1; i < n / 2u; i++) {
        lo = v[i] > lo ? v[i] : lo;
    }
    return 0.5f * (lo + hi);
}

/* ------------------------------------------------------------------ monotone curves (response.py) */

static float grid_x(const memhw_curve_t *c, uint32_t i)
{
    return c->x0 + (float)i * c->step;
}

/* np.interp(x, grid, y) */
static float curve_at(const memhw_curve_t *c, float x)
{
    float pos;
    uint32_t i;
    if (x <= c->x0) {
        return c->y[0];
    }
    pos = (x - c->x0) / c->step;
    if (pos >= (float)(c->n - 1u)) {
        return c->y[c->n - 1u];
    }
    i = (uint32_t)pos;
    return c->y[i] + (c->y[i + 1u] - c->y[i]) * (pos - (float)i);
}

/* x at which the curve reaches y (clipped to the grid): the first crossing of a non-decreasing curve */
static float curve_inverse(const memhw_curve_t *c, float y)
{
    uint32_t i;
    if (y <= c->y[0]) {
        return c->x0;
    }
    for (i = 1; i < c->n; i++) {
        if (c->y[i] >= y) {
            float d = c->y[i] - c->y[i - 1u];
            float f = d > 0.0f ? (y - c->y[i - 1u]) / d : 1.0f;
            return grid_x(c, i - 1u) + f * c->step;
        }
    }
    return grid_x(c, c->n - 1u);
}

/* Weighted pool-adjacent-violators: the non-decreasing fit (in place). */
static void isotonic(float *y, const float *w, uint32_t n, float *val, float *wt, uint16_t *size)
{
    uint32_t m = 0, i, k, at = 0;
    for (i = 0; i < n; i++) {
        val[m] = y[i];
        wt[m] = w[i];
        size[m] = 1;
        m++;
        while (m > 1u && val[m - 2u] > val[m - 1u]) {
            float v = (val[m - 2u] * wt[m - 2u] + val[m - 1u] * wt[m - 1u]) / (wt[m - 2u] + wt[m - 1u]);
            wt[m - 2u] += wt[m - 1u];
            size[m - 2u] = (uint16_t)(size[m - 2u] + size[m - 1u]);
            val[m - 2u] = v;
            m--;
        }
    }
    for (i = 0; i < m; i++) {
        for (k = 0; k < size[i]; k++) {
            y[at++] = val[i];
        }
    }
}

static int curve_init(memhw_curve_t *c, float x0, float stop, float step)
{
    uint32_t n = (uint32_t)floorf_((stop - x0) / step + 1e-4f) + 1u, i;
    float run = -3.4e38f;
    if (n > MEMHW_CURVE_MAX || n < 2u) {
        return -1;
    }
    c->x0 = x0;
    c->step = step;
    c->n = (uint16_t)n;
    for (i = 0; i < n; i++) {
        c->sum[i] = 0.0f;
        c->count[i] = 0.0f;
    }
    (void)run;
    return 0;
}

static void curve_prior_done(memhw_curve_t *c)
{
    uint32_t i;
    for (i = 1; i < c->n; i++) { /* maximum.accumulate */
        c->prior[i] = maxf(c->prior[i], c->prior[i - 1u]);
    }
    memcpy(c->y, c->prior, c->n * sizeof c->y[0]);
}

/*
 * Add observations (x[k], y[k]), k < m: each to its nearest grid point, the median of a
 * point's new values weighted by their number; then blend with the prior (weight 3) and
 * keep the curve non-decreasing. `idx` is scratch of m entries; x is reordered.
 */
static void curve_observe(memhw_curve_t *c, float *x, float *y, uint32_t m, uint16_t *idx)
{
    float val[MEMHW_CURVE_MAX], wt[MEMHW_CURVE_MAX], w[MEMHW_CURVE_MAX];
    uint16_t size[MEMHW_CURVE_MAX];
    uint32_t k, i;
    if (m == 0) {
        return;
    }
    for (k = 0; k < m; k++) {
        float pos = clampf((x[k] - c->x0) / c->step, 0.0f, (float)(c->n - 1u));
        idx[k] = (uint16_t)clampf(memhw_rintf(pos), 0.0f, (float)(c->n - 1u));
    }
    for (i = 0; i < c->n; i++) {
        uint32_t cnt = 0;
        for (k = 0; k < m; k++) { /* gather this point's values at the front of x */
            if (idx[k] == i) {
                x[cnt] = y[k];
                cnt++;
            }
        }
        if (cnt) {
            /* x[0..cnt) now holds the values; y and idx of later points are untouched */
            float med = memhw_median(x, cnt);
            c->sum[i] += med * (float)cnt;
            c->count[i] += (float)cnt;
        }
    }
    for (i = 0; i < c->n; i++) {
        float est = c->count[i] > 0.0f ? c->sum[i] / maxf(c->count[i], 1.0f) : c->prior[i];
        w[i] = c->count[i] + 3.0f;
        c->y[i] = (est * c->count[i] + c->prior[i] * 3.0f) / w[i];
    }
    isotonic(c->y, w, c->n, val, wt, size);
}

/* ------------------------------------------------------------------ shared bookkeeping */

static uint32_t pulses_of(const memhw_device_t *d)
{
    return (uint32_t)d->set_pulses + d->reset_pulses;
}

static int pending(const memhw_device_t *d)
{
    return d->reason == MEMHW_R_PENDING;
}

/* _judge: converge, reopen, cap; marks LOW (bit 0x40) / HIGH (0x80) in lh[] */
#define LOW 1u
#define HIGH 2u
static float inner_of(const memhw_tuning_config_t *c, const memhw_device_t *d)
{
    return maxf(c->tolerance - 2.0f * d->sigma, 0.5f * c->tolerance);
}

/* Converge devices inside the inner window, reopen converged ones that drifted out; 1 if any was reopened. */
static int converge(memhw_tuner_t *t)
{
    const memhw_tuning_config_t *c = &t->cfg;
    uint32_t k;
    int drifted = 0;
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        float err = absf(d->g - d->target);
        if (pending(d) && err <= inner_of(c, d)) {
            d->reason = MEMHW_R_CONVERGED;
        }
        if (d->reason == MEMHW_R_CONVERGED && err > c->tolerance && d->reopened < c->reopen) {
            d->reopened++;
            d->reason = MEMHW_R_PENDING;
            d->flags &= (uint8_t)~MEMHW_DEV_CONFIRMED;
            drifted = 1;
        }
    }
    return drifted;
}

static void judge(memhw_tuner_t *t, uint8_t *lh)
{
    const memhw_tuning_config_t *c = &t->cfg;
    uint32_t k;
    if (converge(t)) { /* reopened devices get their own patience, not the run's best so far */
        uint32_t n_pending = 0;
        for (k = 0; k < t->n; k++) {
            n_pending += (uint32_t)pending(&t->dev[k]);
        }
        t->best_pending = n_pending + 1u;
        t->best_round = t->rounds;
    }
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        float inner = inner_of(c, d);
        lh[k] = 0;
        if (pending(d) && pulses_of(d) >= c->max_pulses) {
            d->reason = MEMHW_R_PULSE_CAP;
        }
        if (pending(d)) {
            lh[k] = (uint8_t)((d->g < d->target - inner ? LOW : 0u) | (d->g > d->target + inner ? HIGH : 0u));
        }
    }
}

/* _plan: count the round, stop on budget or stall; 1 when pulses are planned (flags set) */
static int plan(memhw_tuner_t *t, const uint8_t *lh)
{
    const memhw_tuning_config_t *c = &t->cfg;
    uint32_t n_pending = 0, k, any = 0, patience;
    t->rounds++;
    for (k = 0; k < t->n; k++) {
        n_pending += (uint32_t)pending(&t->dev[k]);
    }
    if (n_pending < t->best_pending) {
        t->best_pending = n_pending;
        t->best_round = t->rounds;
    }
    /* the last few devices (<= 1 %) get less patience than a large batch */
    patience = (float)n_pending > 0.01f * (float)t->n ? c->patience : c->patience / 3u;
    if (t->rounds > c->max_rounds || t->rounds - t->best_round > patience) {
        for (k = 0; k < t->n; k++) {
            if (pending(&t->dev[k])) {
                t->dev[k].reason = MEMHW_R_ROUND_CAP;
            }
            t->dev[k].flags &= (uint8_t)~(MEMHW_DEV_SET | MEMHW_DEV_RESET);
        }
        t->has_last = 0;
        return 0;
    }
    for (k = 0; k < t->n; k++) {
        any |= lh[k];
    }
    if (!any) {
        for (k = 0; k < t->n; k++) {
            t->dev[k].flags &= (uint8_t)~(MEMHW_DEV_SET | MEMHW_DEV_RESET);
        }
        t->has_last = 0;
        return 0;
    }
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        d->flags &= (uint8_t)~(MEMHW_DEV_SET | MEMHW_DEV_RESET);
        if (lh[k] & LOW) {
            d->flags |= MEMHW_DEV_SET | MEMHW_DEV_PULSED;
            d->set_pulses++;
        }
        if (lh[k] & HIGH) {
            d->flags |= MEMHW_DEV_RESET | MEMHW_DEV_PULSED;
            d->reset_pulses++;
        }
    }
    t->has_last = 1;
    return 1;
}

/* ------------------------------------------------------------------ adaptive */

static void learn(memhw_tuner_t *t)
{
    const memhw_tuning_config_t *c = &t->cfg;
    float *xs = t->scratch, *ys = t->scratch + t->n;
    uint32_t k, m = 0, rose_n = 0;
    if (!t->has_last || !t->has_prev) {
        return;
    }
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        float sig = 3.0f * maxf(d->sigma, 0.2e-6f);
        if (absf(d->g - d->g_prev) > sig && (d->flags & (MEMHW_DEV_SET | MEMHW_DEV_RESET))) {
            d->flags |= MEMHW_DEV_CHANGED;
        }
    }
    /* SET: a clean observation of the compliance level when the device rose */
    for (k = 0; k < t->n; k++) {
        const memhw_device_t *d = &t->dev[k];
        if ((d->flags & MEMHW_DEV_SET) && d->g > d->g_prev + 3.0f * maxf(d->sigma, 0.2e-6f)) {
            xs[rose_n] = d->g - curve_at(&t->set_curve, d->set_gate - d->a); /* residual */
            rose_n++;
        }
    }
    if (rose_n) {
        if (rose_n >= 20u) {
            float med = memhw_median(xs, rose_n);
            for (k = 0; k < rose_n; k++) {
                xs[k] = absf(xs[k] - med);
            }
            t->set_noise = clampf(1.4826f * memhw_median(xs, rose_n), 1e-7f, 20e-6f);
        }
        for (k = 0; k < t->n; k++) {
            const memhw_device_t *d = &t->dev[k];
            if ((d->flags & MEMHW_DEV_SET) && d->g > d->g_prev + 3.0f * maxf(d->sigma, 0.2e-6f)) {
                xs[m] = d->set_gate - d->a;
                ys[m] = d->g;
                m++;
            }
        }
        curve_observe(&t->set_curve, xs, ys, m, t->scratch_idx);
        for (k = 0; k < t->n; k++) {
            memhw_device_t *d = &t->dev[k];
            if ((d->flags & MEMHW_DEV_SET) && d->g > d->g_prev + 3.0f * maxf(d->sigma, 0.2e-6f)) {
                float off = d->set_gate - curve_inverse(&t->set_curve, d->g);
                d->a = clampf(0.5f * d->a + 0.5f * off, -0.5f, 0.5f);
            }
        }
    }
    /* SET that left the device below its target: its compliance there is lower than the curve says */
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        int rose = d->g > d->g_prev + 3.0f * maxf(d->sigma, 0.2e-6f);
        if ((d->flags & MEMHW_DEV_SET) && !rose && d->g < d->target - c->tolerance) {
            float bound = d->set_gate - curve_inverse(&t->set_curve, d->g) + 0.02f;
            d->a = clampf(maxf(d->a, bound), -0.5f, 0.8f);
        }
    }
    /* RESET: fraction removed (small steps scale with width) */
    m = 0;
    for (k = 0; k < t->n; k++) {
        const memhw_device_t *d = &t->dev[k];
        if ((d->flags & MEMHW_DEV_RESET) && d->g_prev > 0.0f) {
            float width = (d->flags & MEMHW_DEV_FINE) ? c->reset_width_min : c->reset_width;
            float frac = clampf((1.0f - d->g / d->g_prev) * (c->reset_width / width), 0.0f, 1.0f);
            if (frac > 0.002f) {
                xs[m] = d->reset_v - d->b;
                ys[m] = frac;
                m++;
            }
        }
    }
    curve_observe(&t->reset_curve, xs, ys, m, t->scratch_idx);
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        if ((d->flags & MEMHW_DEV_RESET) && d->g_prev > 0.0f) {
            float width = (d->flags & MEMHW_DEV_FINE) ? c->reset_width_min : c->reset_width;
            float frac = clampf((1.0f - d->g / d->g_prev) * (c->reset_width / width), 0.0f, 1.0f);
            float inv = curve_inverse(&t->reset_curve, clampf(frac, 1e-4f, 0.999f));
            float off = frac < 1e-3f ? d->b + 0.05f : d->reset_v - inv;
            d->b = clampf(0.5f * d->b + 0.5f * off, -0.5f, 1.0f);
        }
    }
}

static void give_up(memhw_tuner_t *t, uint8_t *lh)
{
    const memhw_tuning_config_t *c = &t->cfg;
    uint32_t k;
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        int at_gate = (d->flags & MEMHW_DEV_SET) && d->set_gate >= c->gate_max - 1e-6f && (lh[k] & LOW);
        int at_amp = (d->flags & MEMHW_DEV_RESET) && d->reset_v >= c->reset_v_max - 1e-6f && (lh[k] & HIGH);
        int dead;
        if (at_gate || at_amp) {
            d->tries++;
        }
        dead = d->tries >= 2u;
        if (dead && !(d->flags & MEMHW_DEV_CHANGED) && pending(d)) {
            d->reason = MEMHW_R_STUCK;
        }
        if (dead && (lh[k] & LOW) && pending(d)) {
            d->reason = MEMHW_R_TOO_HIGH;
        }
        if (dead && (lh[k] & HIGH) && pending(d)) {
            d->reason = MEMHW_R_TOO_LOW;
        }
        if (pending(d) && !(d->flags & MEMHW_DEV_CHANGED) && pulses_of(d) >= 8u) {
            d->reason = MEMHW_R_STUCK; /* never moved after many pulses of every kind */
        }
        if (!pending(d)) {
            lh[k] = 0;
        }
    }
}

static int adaptive_update(memhw_tuner_t *t, uint8_t *lh)
{
    const memhw_tuning_config_t *c = &t->cfg;
    float floor_ratio = c->reset_width_min / c->reset_width;
    uint32_t k;
    learn(t);
    judge(t, lh);
    if (t->has_last && t->has_prev) {
        give_up(t, lh);
    }
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        /* SET aims above the target, so that it mostly lands high, where gentle RESETs finish */
        float aim = d->target + maxf(0.5f * c->tolerance, t->set_noise);
        float want = clampf(1.0f - (d->target + 0.3f * c->tolerance) / maxf(d->g, 1e-12f), 1e-5f, 0.999f);
        float floor = curve_at(&t->reset_curve, c->reset_v_min - d->b);
        int fine = want < floor;
        if (fine) {
            want = want / floor_ratio < 0.999f ? want / floor_ratio : 0.999f;
        }
        if (lh[k] & LOW) {
            d->set_gate = clampf(curve_inverse(&t->set_curve, aim) + d->a, c->gate_min, c->gate_max);
            d->set_v = c->set_v;
        }
        if (lh[k] & HIGH) {
            d->reset_v = clampf(curve_inverse(&t->reset_curve, want) + d->b, c->reset_v_min, c->reset_v_max);
            d->flags = (uint8_t)(fine ? (d->flags | MEMHW_DEV_FINE) : (d->flags & ~MEMHW_DEV_FINE));
        }
        d->g_prev = d->g;
    }
    t->has_prev = 1;
    return plan(t, lh);
}

/* ------------------------------------------------------------------ baseline (DOMAIN.md ramps) */

#define GATE_START 0.5f
#define GATE_STOP 1.4f
#define GATE_STEP 0.05f
#define RESET_START 0.3f
#define RESET_STOP 1.5f
#define RESET_STEP 0.05f
#define EXHAUSTIONS 5u
static const float SET_AMPS[3] = {1.0f, 2.0f, 3.0f};

static int baseline_update(memhw_tuner_t *t, uint8_t *lh)
{
    uint32_t k;
    judge(t, lh);
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        if (t->has_last) {
            if (d->flags & MEMHW_DEV_SET) { /* advance the ramps of the devices pulsed last round */
                d->tries++;
                if (d->tries >= 3u) {
                    d->tries = 0;
                    d->a += GATE_STEP;
                    if (d->a > GATE_STOP + 1e-6f) {
                        d->a = GATE_START;
                        d->exhausted++;
                    }
                }
            }
            if (d->flags & MEMHW_DEV_RESET) {
                d->b += RESET_STEP;
                if (d->b > RESET_STOP + 1e-6f) {
                    d->b = RESET_START;
                    d->exhausted++;
                }
            }
            /* a device that changes direction starts the other ramp afresh */
            if (lh[k] & HIGH) {
                d->tries = 0;
            }
            if (lh[k] & LOW) {
                d->b = RESET_START;
            }
        }
        if (pending(d) && d->exhausted >= EXHAUSTIONS) {
            d->reason = MEMHW_R_RAMP_EXHAUSTED;
        }
        if (!pending(d)) {
            lh[k] = 0;
        }
        if (lh[k] & LOW) {
            d->set_gate = d->a;
            d->set_v = SET_AMPS[d->tries];
        }
        if (lh[k] & HIGH) {
            d->reset_v = d->b;
            d->flags &= (uint8_t)~MEMHW_DEV_FINE;
        }
    }
    return plan(t, lh);
}

/* ------------------------------------------------------------------ API */

int memhw_tuner_init(memhw_tuner_t *t, int baseline, const memhw_tuning_config_t *cfg, memhw_device_t *dev,
                     uint32_t n, float *scratch, uint16_t *scratch_idx)
{
    uint32_t k, i;
    memset(t, 0, sizeof *t);
    t->baseline = (uint8_t)baseline;
    t->cfg = *cfg;
    t->dev = dev;
    t->n = n;
    t->scratch = scratch;
    t->scratch_idx = scratch_idx;
    t->best_pending = n + 1u;
    t->set_noise = cfg->set_noise_prior;
    for (k = 0; k < n; k++) {
        memhw_device_t *d = &dev[k];
        d->reason = MEMHW_R_PENDING;
        d->set_pulses = d->reset_pulses = 0;
        d->reopened = d->tries = d->exhausted = d->flags = 0;
        d->a = baseline ? GATE_START : 0.0f;
        d->b = baseline ? RESET_START : 0.0f;
        d->g_prev = 0.0f;
        d->set_gate = d->reset_v = d->set_v = 0.0f;
    }
    if (baseline) {
        return 0;
    }
    /* DOMAIN.md §1: G ~ 98 uS/V * Vg + 120 uS in the used window (0.7-1.6 V), falling to ~0 towards 0.4 V */
    if (curve_init(&t->set_curve, cfg->gate_min, cfg->gate_max, 0.025f) != 0 ||
        curve_init(&t->reset_curve, 0.0f, cfg->reset_v_max + 0.2f, 0.025f) != 0) {
        return -1;
    }
    for (i = 0; i < t->set_curve.n; i++) {
        float x = grid_x(&t->set_curve, i);
        float p = x >= 0.7f ? 98e-6f * x + 120e-6f : (98e-6f * 0.7f + 120e-6f) * (x - 0.4f) / 0.3f;
        t->set_curve.prior[i] = maxf(p, 0.0f);
    }
    curve_prior_done(&t->set_curve);
    /* DOMAIN.md §1/§2.2: ~full RESET at 1.7 V, partial steps for 0.3-1.5 V */
    for (i = 0; i < t->reset_curve.n; i++) {
        float x = grid_x(&t->reset_curve, i);
        t->reset_curve.prior[i] = 1.0f - memhw_expf(-memhw_expf((x - 1.2f) / 0.2f));
    }
    curve_prior_done(&t->reset_curve);
    return 0;
}

int memhw_tuner_update(memhw_tuner_t *t)
{
    uint8_t *lh = (uint8_t *)t->scratch_idx; /* n bytes; the index scratch is free here */
    int more = t->baseline ? baseline_update(t, lh) : adaptive_update(t, lh);
    return more;
}

static void verify_where(memhw_tuner_t *t, uint8_t flag, int all)
{
    uint32_t k;
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        d->flags = (uint8_t)((all || (d->flags & flag)) ? (d->flags | MEMHW_DEV_VERIFY) : (d->flags & ~MEMHW_DEV_VERIFY));
    }
}

void memhw_tuner_to_verify(memhw_tuner_t *t)
{
    uint32_t k, any_pending = 0, any = 0;
    uint16_t row = 0;
    int row_pulsed = 0;
    for (k = 0; k < t->n; k++) {
        any_pending |= (uint32_t)pending(&t->dev[k]);
    }
    if (!t->rounds || any_pending) {
        for (k = 0; k < t->n; k++) {
            memhw_device_t *d = &t->dev[k];
            d->flags = (uint8_t)((!t->rounds || pending(d)) ? (d->flags | MEMHW_DEV_VERIFY)
                                                            : (d->flags & ~MEMHW_DEV_VERIFY));
        }
        return;
    }
    for (k = 0; k < t->n; k++) { /* devices are row-major: a row's devices are consecutive */
        memhw_device_t *d = &t->dev[k];
        uint32_t j;
        if (k == 0 || d->row != row) {
            row = d->row;
            row_pulsed = 0;
            for (j = k; j < t->n && t->dev[j].row == row; j++) {
                row_pulsed |= (t->dev[j].flags & MEMHW_DEV_PULSED) != 0;
            }
        }
        d->flags = (uint8_t)((!(d->flags & MEMHW_DEV_CONFIRMED) || row_pulsed) ? (d->flags | MEMHW_DEV_VERIFY)
                                                                               : (d->flags & ~MEMHW_DEV_VERIFY));
        any |= (d->flags & MEMHW_DEV_VERIFY) != 0;
    }
    verify_where(t, MEMHW_DEV_VERIFY, !any);
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        d->flags = (uint8_t)((d->flags & MEMHW_DEV_VERIFY) ? (d->flags | MEMHW_DEV_CONFIRMED) : d->flags);
        d->flags &= (uint8_t)~MEMHW_DEV_PULSED;
    }
}

void memhw_tuner_finish(memhw_tuner_t *t)
{
    uint32_t k;
    for (k = 0; k < t->n; k++) {
        memhw_device_t *d = &t->dev[k];
        int within = absf(d->g - d->target) <= t->cfg.tolerance;
        if (within && d->reason != MEMHW_R_STUCK) {
            d->reason = MEMHW_R_CONVERGED;
        }
        if (d->reason == MEMHW_R_CONVERGED && !within) {
            d->reason = MEMHW_R_ROUND_CAP;
        }
    }
}

float memhw_read_sigma(const float *g1, const float *g2, uint32_t n, float *scratch)
{
    uint32_t k, m = 0;
    float med;
    for (k = 0; k < n; k++) {
        float g = 0.5f * (g1[k] + g2[k]);
        if (g > 1e-6f) {
            scratch[m++] = (g1[k] - g2[k]) / g;
        }
    }
    if (!m) {
        return 0.0f;
    }
    med = memhw_median(scratch, m);
    for (k = 0; k < m; k++) {
        scratch[k] = absf(scratch[k] - med);
    }
    return 1.4826f * memhw_median(scratch, m) / 1.41421356f;
}

uint32_t memhw_verify_average(float sigma_rel, float target_max, float tolerance)
{
    float worst = sigma_rel * target_max, x;
    if (!(worst > 0.0f)) {
        return 1;
    }
    x = 5.0f * worst / tolerance;
    x = ceilf_(x * x);
    return (uint32_t)clampf(x, 1.0f, 32.0f);
}
