/*
 * memhw_dispatch.c -- the handler of each message, indexed as memhw_messages[] (generated
 * from protocol.toml). HELLO, STATUS, ABORT and BYE are the core's own; a NULL entry is a
 * message this firmware does not implement (answered UNKNOWN_OPCODE, left out of HELLO's
 * opcodes). Adding a message: regenerate the tables, write its handler, list it here.
 */
#include "memhw_handlers.h"

const memhw_handler_t memhw_handlers[MEMHW_MESSAGE_COUNT] = {
    [MEMHW_MSG_SET_LEVELS] = memhw_handle_set_levels,
    [MEMHW_MSG_READ_CURRENTS] = memhw_handle_read_currents,
    [MEMHW_MSG_VMM] = memhw_handle_vmm,
    [MEMHW_MSG_READ_MAP] = memhw_handle_read_map,
    [MEMHW_MSG_PULSE_SET] = memhw_handle_pulse_set,
    [MEMHW_MSG_PULSE_RESET] = memhw_handle_pulse_reset,
    [MEMHW_MSG_GROUND_ALL] = memhw_handle_ground_all,
    [MEMHW_MSG_WAIT] = memhw_handle_wait,
    [MEMHW_MSG_PROGRAM] = memhw_handle_program,
    [MEMHW_MSG_READ_REFERENCE] = memhw_handle_read_reference,
    [MEMHW_MSG_READ_DAC] = memhw_handle_read_dac,
    [MEMHW_MSG_SET_LIMITS] = memhw_handle_set_limits,
    [MEMHW_MSG_SET_CALIBRATION] = memhw_handle_set_calibration,
    [MEMHW_MSG_DEFINE_TILE] = memhw_handle_define_tile,
    [MEMHW_MSG_VMM_TILE] = memhw_handle_vmm_tile,
    [MEMHW_MSG_LOAD_NETWORK] = memhw_handle_load_network,
    [MEMHW_MSG_RUN_NETWORK] = memhw_handle_run_network,
    [MEMHW_MSG_READ_DEVICES] = memhw_handle_read_devices,
    [MEMHW_MSG_PULSE_DEVICES] = memhw_handle_pulse_devices,
};
