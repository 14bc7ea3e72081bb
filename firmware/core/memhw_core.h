/*
 * memhw_core.h -- the memhw board firmware core: the whole board side of PROTOCOL.md over
 * a hardware abstraction (../hal/memhw_hal.h).
 *
 * Freestanding C99: no heap, no stdio, no libc beyond <stdint.h>, <stddef.h>, <stdarg.h>
 * and <string.h>. All memory is the memhw_core_t object and the buffers the port hands to
 * memhw_core_init() (static arrays on a board); docs/firmware.md gives the budget.
 *
 * A board's main loop:
 *
 *     static memhw_core_t core;            // + its buffers, see memhw_buffers_t
 *     memhw_core_init(&core, &my_hal, &board, &buffers);
 *     int uart = memhw_core_open(&core, "uart");
 *     for (;;) memhw_core_service(&core);  // polls every connection, runs the watchdog
 *
 * The host build (memhw.cfirmware) calls memhw_core_receive() with the bytes of each
 * connection instead, as memhw.peer.Peer does.
 */
#ifndef MEMHW_CORE_H
#define MEMHW_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "memhw_frame.h"
#include "memhw_hal.h"
#include "memhw_layouts.h"

/* ------------------------------------------------------------------ compile-time limits */

#ifndef MEMHW_ROWS_MAX
#define MEMHW_ROWS_MAX 128u /* largest array the core is built for */
#endif
#ifndef MEMHW_COLS_MAX
#define MEMHW_COLS_MAX 64u
#endif
#ifndef MEMHW_CONNECTIONS_MAX
#define MEMHW_CONNECTIONS_MAX 8u /* host connections served at once (a UART board: 1) */
#endif
#ifndef MEMHW_CONVERT_CHUNK
#define MEMHW_CONVERT_CHUNK 8u /* exposures per memhw_hal_convert() call (scratch on the stack) */
#endif
/*
 * 1: averaged reads of several rows convert in the reference's batch order (every row's
 * first sample, then repeats of the whole block), needing a sum per device; the host build
 * uses it so the emulator's noise streams line up with the Python peer's. 0: one row at a
 * time, sums for one row only (a board: the order of conversions does not matter there).
 */
#ifndef MEMHW_BATCH_ORDER
#define MEMHW_BATCH_ORDER 1
#endif

/* sessions whose end is remembered (for the NO_SESSION reasons their hosts get), and the
 * bytes of the ending host's client name kept for each (longer names are cut) */
#ifndef MEMHW_ENDED_MAX
#define MEMHW_ENDED_MAX 8u
#endif
#ifndef MEMHW_ENDED_CLIENT
#define MEMHW_ENDED_CLIENT 120u
#endif

/* tile references of a loaded network (LOAD_NETWORK: the sum of tile_count) */
#ifndef MEMHW_NETWORK_TILES
#define MEMHW_NETWORK_TILES 32u
#endif
/* matrix outputs of a loaded network's out_offset (LOAD_NETWORK: 4H per LSTM, n_out per DENSE) */
#ifndef MEMHW_NETWORK_OUTPUTS
#define MEMHW_NETWORK_OUTPUTS 128u
#endif

/* floats of calibration a board of rows x cols with n_gains TIA gains needs (SET_CALIBRATION) */
#define MEMHW_CALIBRATION_FLOATS(rows, cols, n_gains) (2u * (rows) + 4u * (cols) + 2u * (cols) * (n_gains))

#define MEMHW_FIRMWARE_NAME "memhw-core 2.1"
/* the protocol minor version this core implements (HELLO `minor`; it offers only that version's messages) */
#define MEMHW_CORE_MINOR 1u
#define MEMHW_CLIENT_MAX 120u   /* longest HELLO client string, bytes */
#define MEMHW_REASON_MAX 255u   /* longest refusal reason / last_error, bytes */
#define MEMHW_ADDRESS_MAX 63u   /* longest connection description */

/* ------------------------------------------------------------------ buffers */

/* One connection's buffers: a frame (encoded, between delimiters) and a request message. */
typedef struct memhw_conn_buffers {
    uint8_t *frame;    /* at least MEMHW_DECODER_BUFFER_SIZE(max_frame) bytes */
    size_t frame_size;
    uint8_t *message;  /* at least max_message bytes: one reassembled request */
    size_t message_size;
} memhw_conn_buffers_t;

/*
 * The memory a port gives the core (typically static arrays). Sizes decide capacities:
 * the inbox queues complete requests (>= max_message + 16), the cache arena holds the
 * session's cached replies and is where every cacheable reply is built (the largest
 * reply must fit; 16 replies are kept while they fit together), the transmit buffer
 * holds one encoded frame (MEMHW_FRAME_MAX_ENCODED(max_frame)), the planner workspace
 * bounds the devices of one PROGRAM request (memhw_program_capacity()).
 */
typedef struct memhw_buffers {
    memhw_conn_buffers_t conn[MEMHW_CONNECTIONS_MAX];
    uint8_t n_conn;           /* connection slots provided (>= 1) */
    uint8_t *inbox;
    size_t inbox_size;
    uint8_t *cache;
    size_t cache_size;
    uint8_t *tx;
    size_t tx_size;
    void *planner;            /* aligned to 8 bytes; also RUN_NETWORK's workspace */
    size_t planner_size;
    float *calibration;       /* MEMHW_CALIBRATION_FLOATS(rows, cols, n_gains) floats (SET_CALIBRATION) */
    size_t calibration_size;  /* bytes */
    uint8_t *tiles;           /* the line indices of every defined tile (DEFINE_TILE): capacity in lines */
    size_t tiles_size;
} memhw_buffers_t;

/* ------------------------------------------------------------------ state */

/* Counters since the core was made (instrumentation; they survive reboots). */
typedef struct memhw_counters {
    uint32_t requests;        /* complete request messages, of every kind and connection */
    uint32_t executed[MEMHW_MESSAGE_COUNT]; /* executions per message (index as memhw_messages) */
    uint32_t cache_hits;
    uint32_t bad_frames;      /* frames and chunks dropped by decoders and assemblers */
    uint32_t inbox_drops;     /* complete requests dropped for lack of inbox space */
    uint32_t bytes_in, bytes_out;
    uint32_t reboots, watchdog_trips, sessions, takeovers, resumes, busy_answers, session_refusals;
    uint32_t pulses;          /* device pulses applied (never reset) */
} memhw_counters_t;

typedef struct memhw_assembler {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint16_t parts;           /* chunks received of the pending message (0: none pending) */
    memhw_header_t first;     /* header of chunk 0 */
    uint32_t dropped;
    uint8_t oversize;         /* the last message overflowed: answer TOO_LARGE for `first` */
} memhw_assembler_t;

typedef struct memhw_conn {
    uint8_t open;
    uint8_t gen;              /* bumped when the slot is reused, so queued requests of an old connection die */
    char address[MEMHW_ADDRESS_MAX + 1];
    uint32_t last_rx;         /* ms of the last bytes received */
    memhw_decoder_t dec;
    memhw_assembler_t asm_;
} memhw_conn_t;

/* Why a session ended (PROTOCOL.md §7.3), for the NO_SESSION reasons of its host. */
typedef struct memhw_ended {
    uint16_t session;         /* 0: free slot */
    uint8_t why;              /* MEMHW_ENDED_BYE, _TAKEOVER, _REPLACED */
    uint32_t ms;              /* when (board clock) */
    char client[MEMHW_ENDED_CLIENT + 1]; /* the host that ended it (takeover, replacement) */
} memhw_ended_t;

/* The HELLO that opened or resumed the session: a retry of it gets the same answer (§7.2). */
typedef struct memhw_opening {
    int8_t conn;              /* -1: none */
    uint8_t gen;
    uint16_t seq;
    uint32_t crc;             /* crc32 of its payload */
} memhw_opening_t;

/* A defined tile: its line indices lie at `offset` in the tile buffer: rows, neg_rows, cols, neg_cols. */
typedef struct memhw_tile {
    uint16_t offset;
    uint16_t k, m;            /* rows (inputs) and columns (outputs); 0: not defined */
    uint8_t neg_rows, neg_cols; /* 1: present (as long as rows / cols) */
} memhw_tile_t;

/* A layer of the loaded network (LOAD_NETWORK); its tiles are net.tiles[first_tile ..]. */
typedef struct memhw_layer {
    uint8_t kind, bias, activation, n_tiles, first_tile;
    uint16_t n_in, n_out;
    float in_volts, out_scale;
    uint16_t offset_at;       /* its out_offset values start at net.offset[offset_at] (if net.has_offset) */
} memhw_layer_t;

/* A tile of a layer: which tile, where it sits in the layer's matrix, its gain (255: auto). */
typedef struct memhw_net_tile {
    uint8_t tile, gain;
    uint16_t in_start, out_start;
} memhw_net_tile_t;

typedef struct memhw_network {
    uint8_t n_layers;         /* 0: none loaded */
    uint8_t n_tiles;
    uint8_t has_offset;       /* 1: LOAD_NETWORK gave out_offset */
    memhw_layer_t layer[MEMHW_MAX_LAYERS];
    memhw_net_tile_t tiles[MEMHW_NETWORK_TILES];
    float offset[MEMHW_NETWORK_OUTPUTS];
} memhw_network_t;

/* One cached reply: its key and where its payload lies in the cache arena. */
typedef struct memhw_cache_entry {
    uint16_t seq;
    uint8_t opcode;
    uint8_t status;
    uint32_t key;             /* crc32(payload, opcode) of the request */
    uint32_t offset, length;  /* reply payload in the arena */
} memhw_cache_entry_t;

typedef struct memhw_core {
    void *hal;
    memhw_board_t board;
    memhw_buffers_t buf;
    memhw_conn_t conn[MEMHW_CONNECTIONS_MAX];
    /* session */
    uint16_t boot_id;
    uint16_t session;
    int8_t owner;             /* connection owning the session, -1: none (detached or no session) */
    char client[MEMHW_CLIENT_MAX + 1];
    uint32_t since_ms;        /* when the session was opened */
    memhw_opening_t opening;
    memhw_ended_t ended[MEMHW_ENDED_MAX]; /* oldest first */
    uint32_t boot_ms;
    uint32_t last_rx;         /* last bytes from any connection */
    uint8_t last_status;
    char last_error[MEMHW_REASON_MAX + 1];
    uint32_t status_requests; /* requests since boot (STATUS) */
    uint32_t status_pulses;   /* pulses since boot (STATUS) */
    /* reply cache */
    memhw_cache_entry_t cache[MEMHW_REPLY_CACHE];
    uint8_t cache_count;      /* entries, oldest first */
    /* inbox: complete requests waiting (FIFO) */
    size_t inbox_head, inbox_tail;
    /* operation in progress */
    uint8_t busy, abort, rebooted;
    /* session state of protocol 2.1: calibration (in buf.calibration), tiles, network */
    uint8_t calibrated;       /* 0: nominal transfer functions */
    memhw_tile_t tiles[MEMHW_MAX_TILES];
    uint32_t tile_lines;      /* line indices in use in buf.tiles */
    memhw_network_t net;
    /* hardware state */
    memhw_limits_t limits;
    int16_t levels[3][MEMHW_ROWS_MAX > MEMHW_COLS_MAX ? MEMHW_ROWS_MAX : MEMHW_COLS_MAX];
    uint8_t driven[3][MEMHW_ROWS_MAX > MEMHW_COLS_MAX ? MEMHW_ROWS_MAX : MEMHW_COLS_MAX];
    memhw_counters_t counters;
} memhw_core_t;

/* ------------------------------------------------------------------ API */

/*
 * Start the core (power-up): check the board description against the build and the
 * buffers, draw a boot id, ground every line. Returns 0, or -1 if the board does not fit
 * (geometry above MEMHW_ROWS_MAX/MEMHW_COLS_MAX, frame or message buffers too small).
 */
int memhw_core_init(memhw_core_t *c, void *hal, const memhw_board_t *board, const memhw_buffers_t *buf);

/* A new host connection described by `address` (shown in BUSY answers); its index, or -1 if none is free. */
int memhw_core_open(memhw_core_t *c, const char *address);

/* Bytes from the host on connection `conn`: decode, answer, execute (as memhw.peer.Peer.receive). */
void memhw_core_receive(memhw_core_t *c, int conn, const uint8_t *data, size_t len);

/* The connection is gone: its partial and queued requests are discarded; an owner's lines are grounded. */
void memhw_core_disconnect(memhw_core_t *c, int conn);

/* Poll every open connection once (memhw_hal_poll) and run the watchdog: a board's main loop body. */
void memhw_core_service(memhw_core_t *c);

/* Ground the lines if the owner has been silent too long (PROTOCOL.md §9.4); 1 when it tripped. */
int memhw_core_check_watchdog(memhw_core_t *c, uint32_t now_ms);

/* Power-cycle: new boot id, lines grounded, session, cache, queued requests and partial frames lost. */
void memhw_core_reboot(memhw_core_t *c);

/* 1 while the connection has a chunked request half received. */
int memhw_core_pending(const memhw_core_t *c, int conn);

/* Devices one PROGRAM request may select with the planner workspace given. */
uint32_t memhw_program_capacity(const memhw_core_t *c);

#endif /* MEMHW_CORE_H */
