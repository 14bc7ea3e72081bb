/*
 * memhw_stub_hal.c -- a hardware-free HAL: deterministic pseudo-random ADC codes (with
 * saturated ones, so auto-ranging steps down), a counting clock and a byte link to the
 * caller. It drives the core in the sanitizer fuzz build (memhw_fuzz.c) and stands in for
 * a board's HAL in the Cortex-M4 size build (memhw_board_example.c). Not a model of a chip.
 */
#include <string.h>

#include "memhw_stub_hal.h"

static uint32_t next(memhw_stub_hal_t *s)
{
    s->rng = s->rng * 1664525u + 1013904223u;
    return s->rng >> 8;
}

void memhw_stub_hal_init(memhw_stub_hal_t *s, uint32_t seed, uint16_t rows, uint16_t cols, uint8_t n_gains)
{
    memset(s, 0, sizeof *s);
    s->rng = seed | 1u;
    s->rows = rows;
    s->cols = cols;
    s->n_gains = n_gains;
}

void memhw_hal_lines(void *hal, uint8_t group, const int16_t *codes, const uint8_t *driven)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    s->last_level = group < 3u ? codes[0] + driven[0] : 0;
}

void memhw_hal_ground(void *hal)
{
    ((memhw_stub_hal_t *)hal)->grounds++;
}

void memhw_hal_expose_levels(void *hal, uint32_t samples)
{
    ((memhw_stub_hal_t *)hal)->exposures = samples;
}

void memhw_hal_expose_vectors(void *hal, uint32_t n)
{
    ((memhw_stub_hal_t *)hal)->exposures = n;
}

void memhw_hal_expose_vector(void *hal, uint32_t index, const int16_t *codes)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    s->last_level = codes[0] + (int32_t)(index < s->exposures ? 0 : 1);
}

void memhw_hal_expose_tile(void *hal, uint32_t n, const uint8_t *read)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    s->exposures = n;
    s->last_level = read[0];
}

void memhw_hal_expose_tile_vector(void *hal, uint32_t index, const int16_t *codes, const uint8_t *driven)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    s->last_level = (driven[0] ? codes[0] : 0) + (int32_t)(index < s->exposures ? 0 : 1);
}

void memhw_hal_expose_rows(void *hal, uint16_t start, uint16_t count, const uint8_t *rows, int16_t v_code,
                           uint32_t repeats)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    uint32_t n = 0, i;
    for (i = 0; i < count; i++) {
        n += rows ? (uint32_t)((rows[i >> 3] >> (i & 7u)) & 1u) : 1u;
    }
    s->exposures = n * repeats;
    s->last_level = start + v_code;
}

void memhw_hal_computed(void *hal, uint32_t values)
{
    ((memhw_stub_hal_t *)hal)->ms += values / 10000u; /* 0.1 us a value */
}

void memhw_hal_expose_reference(void *hal, uint8_t index, int16_t v_ref, uint32_t samples)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    s->exposures = samples;
    s->last_level = index + v_ref;
}

void memhw_hal_range(void *hal, uint32_t exposure, uint8_t *gains)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    uint32_t j;
    (void)exposure;
    for (j = 0; j < s->cols; j++) {
        gains[j] = (uint8_t)(next(s) % s->n_gains);
    }
}

void memhw_hal_convert(void *hal, uint32_t first, uint32_t count, const uint8_t *gains, int32_t *codes)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    uint32_t k;
    (void)first;
    for (k = 0; k < count * s->cols; k++) {
        uint32_t r = next(s);
        /* one in eight saturates at the higher gains */
        codes[k] = (r & 7u) == 0u && gains[k] > 0 ? 32767 : (int32_t)(r % 60000u) - 30000;
    }
    s->conversions += count;
}

void memhw_hal_read_end(void *hal)
{
    ((memhw_stub_hal_t *)hal)->exposures = 0;
}

int32_t memhw_hal_monitor_reference(void *hal, uint32_t average)
{
    return (int32_t)(next((memhw_stub_hal_t *)hal) % 1000u) + (int32_t)average;
}

void memhw_hal_monitor_dac(void *hal, uint8_t group, const int16_t *codes, uint32_t average, int32_t *out)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    uint32_t k, n = group == 0u ? s->rows : s->cols;
    for (k = 0; k < n; k++) {
        out[k] = codes[k] * 8 + (int32_t)(next(s) % 3u) + (int32_t)average;
    }
}

void memhw_hal_pulse_row(void *hal, uint8_t kind, uint16_t row, const uint8_t *selected, int16_t row_code,
                         const int16_t *col_codes, const int16_t *gates, const uint16_t *widths)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    uint32_t j;
    for (j = 0; j < s->cols; j++) {
        s->pulses += selected[j];
        s->last_level = kind + row + row_code + col_codes[j] + gates[j] + widths[j];
    }
}

uint32_t memhw_hal_millis(void *hal)
{
    return ((memhw_stub_hal_t *)hal)->ms += 1u;
}

float memhw_hal_wait(void *hal, float seconds)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    float step = seconds < 0.25f ? seconds : 0.25f;
    s->ms += (uint32_t)(step * 1000.0f);
    return step;
}

uint16_t memhw_hal_random16(void *hal)
{
    return (uint16_t)next((memhw_stub_hal_t *)hal);
}

void memhw_hal_write(void *hal, uint8_t conn, const uint8_t *data, size_t len)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    (void)conn;
    if (s->on_write) {
        s->on_write(s->ctx, data, len);
    }
    s->bytes_out += len;
}

size_t memhw_hal_poll(void *hal, uint8_t conn, uint8_t *buf, size_t cap)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    size_t n = s->in_len < cap ? s->in_len : cap;
    (void)conn;
    if (n) {
        memcpy(buf, s->in, n);
        s->in += n;
        s->in_len -= n;
    }
    return n;
}

int memhw_hal_fault(void *hal, int32_t steps)
{
    memhw_stub_hal_t *s = (memhw_stub_hal_t *)hal;
    return s->reboot_every && steps > 0 && next(s) % s->reboot_every == 0u;
}
