/*
 * memhw_board_example.c -- an example port for a 128 x 64 board on a Cortex-M4F MCU: the
 * core's buffers (its whole RAM budget, stack included) and the board description. The
 * HAL here is the hardware-free stub (memhw_stub_hal.c); a real port links its own
 * memhw_hal_* functions instead. CI builds this file for thumb/cortex-m4 and reports its
 * flash and RAM use (tests/firmware/test_cross_build.py; docs/firmware.md).
 */
#include "memhw_board_reference.h"
#include "memhw_core.h"
#include "memhw_stub_hal.h"

#define BOARD_MAX_FRAME 1024u   /* payload bytes per frame */
#define BOARD_MAX_MESSAGE 4096u /* largest request: VMM of 15 vectors, PULSE batches split by the host */
#define BOARD_CACHE 25600u      /* reply cache arena: holds a full-array auto-ranged READ_MAP (24 584 B) */
#define BOARD_PLANNER 12288u    /* PROGRAM planner and RUN_NETWORK workspace */
#define BOARD_TILE_LINES 512u   /* line indices of every tile of a session (DEFINE_TILE) */
#define BOARD_STACK 8192u       /* the main stack (deepest path ~6 kB), reserved here so the RAM figure includes it */

static uint8_t frame_buf[MEMHW_DECODER_BUFFER_SIZE(BOARD_MAX_FRAME)];
static uint8_t message_buf[BOARD_MAX_MESSAGE];
static uint8_t inbox[BOARD_MAX_MESSAGE + 64u];
static uint8_t cache[BOARD_CACHE];
static uint8_t tx[MEMHW_FRAME_MAX_ENCODED(BOARD_MAX_FRAME)];
static uint64_t planner[BOARD_PLANNER / 8u];
static float calibration[MEMHW_CALIBRATION_FLOATS(128u, 64u, MEMHW_REFERENCE_GAINS)];
static uint8_t tile_lines[BOARD_TILE_LINES];
static memhw_core_t core;
static memhw_stub_hal_t hal;
uint64_t memhw_example_stack[BOARD_STACK / 8u]; /* grows down from its end */

int memhw_example_start(void)
{
    memhw_board_t board;
    memhw_buffers_t buf;
    memhw_reference_board(&board, 128, BOARD_MAX_FRAME, BOARD_MAX_MESSAGE);
    buf.conn[0].frame = frame_buf;
    buf.conn[0].frame_size = sizeof frame_buf;
    buf.conn[0].message = message_buf;
    buf.conn[0].message_size = sizeof message_buf;
    buf.n_conn = 1;
    buf.inbox = inbox;
    buf.inbox_size = sizeof inbox;
    buf.cache = cache;
    buf.cache_size = sizeof cache;
    buf.tx = tx;
    buf.tx_size = sizeof tx;
    buf.planner = planner;
    buf.planner_size = sizeof planner;
    buf.calibration = calibration;
    buf.calibration_size = sizeof calibration;
    buf.tiles = tile_lines;
    buf.tiles_size = sizeof tile_lines;
    memhw_stub_hal_init(&hal, 1u, board.rows, board.cols, board.n_gains);
    if (memhw_core_init(&core, &hal, &board, &buf) != 0) {
        return -1;
    }
    return memhw_core_open(&core, "uart");
}

/* The firmware: start, then serve the link forever. */
void memhw_example_main(void)
{
    if (memhw_example_start() >= 0) {
        for (;;) {
            memhw_core_service(&core);
        }
    }
    for (;;) {
    }
}
