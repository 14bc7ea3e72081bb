/*
 * memhw_board_reference.c -- the description of the reference board (the numbers of
 * memhw/mock/params.py: 16-bit converters over +-5 V / +-10 V, four TIA gains, eight
 * reference resistors, the published limits), shared by the example port and the fuzz driver.
 */
#include "memhw_board_reference.h"

/* What the board is (the numbers of the reference board: memhw/mock/params.py). */
void memhw_reference_board(memhw_board_t *b, uint16_t rows, uint16_t max_frame, uint32_t max_message)
{
    static const float gains[4] = {1e3f, 1e4f, 1e5f, 1e6f};
    static const float refs[8] = {2.5e3f, 5e3f, 1e4f, 2.5e4f, 5e4f, 1e5f, 2.5e5f, 1e6f};
    static const char serial[] = "MEMHW-0001";
    unsigned i;
    for (i = 0; i < sizeof serial; i++) {
        b->serial[i] = serial[i];
    }
    b->chip[0] = '\0';
    b->rows = rows;
    b->cols = 64;
    b->dac_bits = 16;
    b->adc_bits = 16;
    b->dac_line_lsb = 10.0f / 65536.0f;
    b->dac_gate_lsb = 20.0f / 65536.0f;
    b->adc_lsb = 10.0f / 65536.0f;
    b->n_gains = MEMHW_REFERENCE_GAINS;
    for (i = 0; i < 4u; i++) {
        b->tia_gains[i] = gains[i];
    }
    b->width_offset = 160e-9f;
    b->width_lsb = 4.14e-9f;
    b->width_max_code = 1023;
    b->v_read_max = 1.0f;
    b->v_set_max = 3.5f;
    b->v_reset_max = 2.5f;
    b->v_gate_max = 5.5f;
    b->abs_limits.read_max = 6554;
    b->abs_limits.set_max = 22938;
    b->abs_limits.reset_max = 16384;
    b->abs_limits.gate_max = 18022;
    b->abs_limits.width_max = 1023;
    b->gate_on_code = 16384;
    b->n_references = 8;
    for (i = 0; i < 8u; i++) {
        b->reference_ohms[i] = refs[i];
    }
    b->reference_tolerance = 1e-3f;
    b->monitor_lsb = 20.48f / 1048576.0f;
    b->max_frame = max_frame;
    b->max_message = max_message;
    b->watchdog_ms = 10000;
}
