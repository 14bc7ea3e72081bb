/*
 * memhw_board_reference.h -- the reference board's description (memhw_board_reference.c).
 */
#ifndef MEMHW_BOARD_REFERENCE_H
#define MEMHW_BOARD_REFERENCE_H

#define MEMHW_REFERENCE_GAINS 4u /* TIA gains of the reference board */

#include "memhw_hal.h"

/* Fill *b for the reference board with `rows` x 64 devices and the given buffer limits. */
void memhw_reference_board(memhw_board_t *b, uint16_t rows, uint16_t max_frame, uint32_t max_message);

#endif /* MEMHW_BOARD_REFERENCE_H */
