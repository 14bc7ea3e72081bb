/*
 * memhw_stub_hal.h -- the hardware-free HAL of memhw_stub_hal.c (fuzzing, size builds).
 */
#ifndef MEMHW_STUB_HAL_H
#define MEMHW_STUB_HAL_H

#include <stddef.h>
#include <stdint.h>

#include "memhw_hal.h"

typedef struct memhw_stub_hal {
    uint32_t rng, ms;
    uint16_t rows, cols;
    uint8_t n_gains;
    uint32_t exposures, conversions, pulses, grounds, reboot_every;
    int32_t last_level;
    size_t bytes_out;
    const uint8_t *in; /* bytes memhw_hal_poll hands out (while the core is busy) */
    size_t in_len;
    void (*on_write)(void *ctx, const uint8_t *data, size_t len);
    void *ctx;
} memhw_stub_hal_t;

void memhw_stub_hal_init(memhw_stub_hal_t *s, uint32_t seed, uint16_t rows, uint16_t cols, uint8_t n_gains);

#endif /* MEMHW_STUB_HAL_H */
