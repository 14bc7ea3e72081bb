/*
 * memhw_handlers.h -- the message handlers, one group per file (as the modules of memhw/mock):
 * memhw_lines.c, memhw_measure.c, memhw_pulses.c, memhw_onboard.c, memhw_selfcal.c,
 * memhw_calibration.c, memhw_tiles.c, memhw_network.c.
 */
#ifndef MEMHW_HANDLERS_H
#define MEMHW_HANDLERS_H

#include "memhw_internal.h"

int memhw_handle_set_levels(memhw_op_t *op);
int memhw_handle_ground_all(memhw_op_t *op);
int memhw_handle_set_limits(memhw_op_t *op);
int memhw_handle_wait(memhw_op_t *op);
int memhw_handle_read_currents(memhw_op_t *op);
int memhw_handle_vmm(memhw_op_t *op);
int memhw_handle_read_map(memhw_op_t *op);
int memhw_handle_pulse_set(memhw_op_t *op);
int memhw_handle_pulse_reset(memhw_op_t *op);
int memhw_handle_program(memhw_op_t *op);
int memhw_handle_read_reference(memhw_op_t *op);
int memhw_handle_read_dac(memhw_op_t *op);
int memhw_handle_set_calibration(memhw_op_t *op);
int memhw_handle_define_tile(memhw_op_t *op);
int memhw_handle_vmm_tile(memhw_op_t *op);
int memhw_handle_load_network(memhw_op_t *op);
int memhw_handle_run_network(memhw_op_t *op);
int memhw_handle_read_devices(memhw_op_t *op);
int memhw_handle_pulse_devices(memhw_op_t *op);

#endif /* MEMHW_HANDLERS_H */
