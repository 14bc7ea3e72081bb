/*
 * memhw_core.c -- frames, one host session, reply cache, dispatch, busy polling, abort,
 * watchdog and reboot: the C port of memhw/peer/core.py (PROTOCOL.md §4-§9).
 *
 * Requests are decoded per connection (frame decoder + chunk assembler), queued in the
 * inbox in arrival order and executed one at a time. While one executes (busy), the
 * core reads every connection between the operation's steps: the owner's ABORT is
 * answered at once and stops the operation, another host's HELLO NEW is answered BUSY
 * and its other requests NO_SESSION at once, everything else waits in the inbox.
 */
#include <string.h>

#include "memhw_internal.h"

#define NO_CONN (-1)
#define PROGRESS_FLAGS MEMHW_FLAG_PROGRESS

/* A queued request: this header, then `len` payload bytes, padded to 4. */
typedef struct inbox_rec {
    uint32_t len;
    uint16_t seq, session, frames;
    uint8_t conn, gen, version, flags, opcode, alive;
} inbox_rec_t;

static uint32_t now_ms(memhw_core_t *c)
{
    return memhw_hal_millis(c->hal);
}

static int find_message(uint8_t opcode)
{
    unsigned i;
    for (i = 0; i < MEMHW_MESSAGE_COUNT; i++) {
        if (memhw_messages[i].opcode == opcode) {
            return (int)i;
        }
    }
    return -1;
}

static int is_peer_message(int msg)
{
    return msg == (int)MEMHW_MSG_HELLO || msg == (int)MEMHW_MSG_STATUS || msg == (int)MEMHW_MSG_ABORT ||
           msg == (int)MEMHW_MSG_BYE;
}

static int implemented(int msg)
{
    return msg >= 0 && (is_peer_message(msg) || memhw_handlers[msg] != 0);
}

/* ------------------------------------------------------------------ hardware state */

uint32_t memhw_line_count(const memhw_core_t *c, uint8_t group)
{
    return group == MEMHW_HAL_ROWS ? c->board.rows : c->board.cols;
}

void memhw_ground(memhw_core_t *c)
{
    memset(c->levels, 0, sizeof c->levels);
    memset(c->driven, 0, sizeof c->driven);
    memhw_hal_ground(c->hal);
}

static int levels_applied(const memhw_core_t *c)
{
    uint8_t g;
    uint32_t i;
    for (g = 0; g < 3; g++) {
        for (i = 0; i < memhw_line_count(c, g); i++) {
            if (c->driven[g][i] && c->levels[g][i] != 0) {
                return 1;
            }
        }
    }
    return 0;
}

void memhw_count_pulses(memhw_core_t *c, uint32_t n)
{
    c->counters.pulses += n;
    c->status_pulses += n;
}

/* ------------------------------------------------------------------ output */

static int conn_alive(const memhw_core_t *c, int conn, uint8_t gen)
{
    return conn >= 0 && conn < (int)c->buf.n_conn && c->conn[conn].open && c->conn[conn].gen == gen;
}

/* Send one message as frames of at most max_frame payload bytes (PROTOCOL.md §5.2). */
static void emit(memhw_core_t *c, int conn, uint8_t gen, const memhw_header_t *h, const uint8_t *payload,
                 uint32_t len)
{
    uint32_t f = c->board.max_frame, n = len <= f ? 1u : (len + f - 1u) / f, i;
    for (i = 0; i < n; i++) {
        memhw_header_t fh = *h;
        uint32_t part = len <= f ? len : (i + 1u < n ? f : len - i * f);
        size_t wire;
        fh.chunk = (uint16_t)i;
        fh.length = (uint16_t)part;
        if (i + 1u < n) {
            fh.flags |= MEMHW_FLAG_MORE;
        }
        wire = memhw_frame_encode(&fh, payload + (size_t)i * f, c->buf.tx, c->buf.tx_size);
        c->counters.bytes_out += (uint32_t)wire;
        if (wire && conn_alive(c, conn, gen)) {
            memhw_hal_write(c->hal, (uint8_t)conn, c->buf.tx, wire);
        }
    }
}

static void reply_to(memhw_core_t *c, int conn, uint8_t gen, const memhw_header_t *req, uint8_t status, uint8_t flags,
                     uint16_t session, const uint8_t *payload, uint32_t len)
{
    memhw_header_t h;
    h.version = MEMHW_PROTOCOL_MAJOR;
    h.flags = (uint8_t)(MEMHW_FLAG_REPLY | flags);
    h.seq = req->seq;
    h.opcode = req->opcode;
    h.status = status;
    h.session = session;
    h.chunk = 0;
    h.length = 0;
    emit(c, conn, gen, &h, payload, len);
}

/* An error reply built in a small buffer (never cached); records last_status / last_error. */
static void refuse_now(memhw_core_t *c, int conn, const memhw_header_t *req, uint8_t status, uint16_t session,
                       const char *reason)
{
    uint8_t buf[2 + MEMHW_REASON_MAX];
    uint16_t n = (uint16_t)strlen(reason);
    c->last_status = status;
    memcpy(c->last_error, reason, (size_t)n + 1u);
    memhw_put16(buf, n);
    memcpy(buf + 2, reason, n);
    reply_to(c, conn, c->conn[conn].gen, req, status, 0, session, buf, 2u + n);
}

/* ------------------------------------------------------------------ reply cache */

static void cache_remove(memhw_core_t *c, unsigned i)
{
    memmove(&c->cache[i], &c->cache[i + 1u], (c->cache_count - i - 1u) * sizeof c->cache[0]);
    c->cache_count--;
}

static void cache_clear(memhw_core_t *c)
{
    c->cache_count = 0;
}

static int cache_find(const memhw_core_t *c, uint16_t seq)
{
    unsigned i;
    for (i = 0; i < c->cache_count; i++) {
        if (c->cache[i].seq == seq) {
            return (int)i;
        }
    }
    return -1;
}

static int overlaps(const memhw_cache_entry_t *e, uint32_t start, uint32_t size)
{
    return e->length && start < e->offset + e->length && e->offset < start + size;
}

/*
 * Room for a new entry's payload in the ring-ordered arena, evicting the oldest entries
 * until it fits and at most MEMHW_REPLY_CACHE - 1 remain; the block starts at *offset.
 */
static uint8_t *arena_alloc(memhw_core_t *c, uint16_t seq, uint32_t size, uint32_t *offset)
{
    uint32_t start = 0;
    int same = cache_find(c, seq);
    unsigned i;
    if (size > c->buf.cache_size) {
        return 0;
    }
    if (same >= 0) {
        cache_remove(c, (unsigned)same); /* its reply is replaced */
    }
    if (c->cache_count) {
        const memhw_cache_entry_t *newest = &c->cache[c->cache_count - 1u];
        start = newest->offset + newest->length;
    }
    if (start + size > c->buf.cache_size) {
        start = 0;
    }
    for (;;) {
        int clash = c->cache_count >= MEMHW_REPLY_CACHE;
        for (i = 0; !clash && i < c->cache_count; i++) {
            clash = overlaps(&c->cache[i], start, size);
        }
        if (!clash) {
            break;
        }
        cache_remove(c, 0);
    }
    *offset = start;
    return c->buf.cache + start;
}

/* ------------------------------------------------------------------ handler services */

int memhw_refuse(memhw_op_t *op, uint8_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    memhw_vfmt(op->reason, sizeof op->reason, fmt, ap);
    va_end(ap);
    op->status = status;
    return MEMHW_REFUSED;
}

uint8_t *memhw_reply(memhw_op_t *op, uint32_t size)
{
    uint8_t *p = arena_alloc(op->c, op->req.seq, size, &op->out_offset);
    op->in_arena = p != 0;
    op->out = p;
    op->out_len = p ? size : 0;
    op->out_cap = p ? size : 0;
    return p;
}

void memhw_reply_shrink(memhw_op_t *op, uint32_t size)
{
    op->out_len = size;
}

void memhw_progress(memhw_op_t *op, const uint8_t *payload, uint32_t len)
{
    if (op->req.flags & MEMHW_FLAG_WANT_PROGRESS) {
        reply_to(op->c, op->conn, op->gen, &op->req, MEMHW_STATUS_OK, PROGRESS_FLAGS, op->req.session, payload, len);
    }
}

static void poll_connections(memhw_core_t *c);

int memhw_should_stop(memhw_op_t *op)
{
    poll_connections(op->c);
    return op->c->abort;
}

int memhw_step_done(memhw_op_t *op, int32_t steps)
{
    if (memhw_hal_fault(op->c->hal, steps)) {
        memhw_core_reboot(op->c);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ inbox */

static size_t rec_size(uint32_t len)
{
    return (sizeof(inbox_rec_t) + len + 3u) & ~(size_t)3u;
}

static void inbox_push(memhw_core_t *c, int conn, const memhw_header_t *h, const uint8_t *payload, uint32_t len,
                       uint16_t frames)
{
    inbox_rec_t r;
    size_t need = rec_size(len);
    if (c->inbox_tail + need > c->buf.inbox_size && !c->busy && c->inbox_head > 0) {
        memmove(c->buf.inbox, c->buf.inbox + c->inbox_head, c->inbox_tail - c->inbox_head);
        c->inbox_tail -= c->inbox_head;
        c->inbox_head = 0;
    }
    if (c->inbox_tail + need > c->buf.inbox_size) {
        c->counters.inbox_drops++; /* lost like a dropped frame: the host's retry recovers */
        return;
    }
    r.len = len;
    r.seq = h->seq;
    r.session = h->session;
    r.frames = frames;
    r.conn = (uint8_t)conn;
    r.gen = c->conn[conn].gen;
    r.version = h->version;
    r.flags = (uint8_t)(h->flags & ~MEMHW_FLAG_MORE);
    r.opcode = h->opcode;
    r.alive = 1;
    memcpy(c->buf.inbox + c->inbox_tail, &r, sizeof r);
    if (len) {
        memcpy(c->buf.inbox + c->inbox_tail + sizeof r, payload, len);
    }
    c->inbox_tail += need;
}

static void inbox_clear(memhw_core_t *c)
{
    c->inbox_head = c->inbox_tail = 0;
}

/* ------------------------------------------------------------------ sessions */

static void take(memhw_core_t *c, int conn, const char *client, uint32_t n)
{
    c->owner = (int8_t)conn;
    memcpy(c->client, client, n);
    c->client[n] = '\0';
    memhw_ground(c);
}

enum { MEMHW_ENDED_BYE = 1, MEMHW_ENDED_TAKEOVER = 2, MEMHW_ENDED_REPLACED = 3 };

/* Remember why `session` ended (the latest MEMHW_ENDED_MAX, as memhw.peer's _remember_end). */
static void remember_end(memhw_core_t *c, uint16_t session, uint8_t why, const char *client)
{
    unsigned i, used = 0;
    memhw_ended_t *e = 0;
    size_t len = strlen(client);
    for (i = 0; i < MEMHW_ENDED_MAX; i++) { /* used entries are packed at the front, oldest first */
        e = c->ended[i].session == session ? &c->ended[i] : e;
        used += c->ended[i].session != 0;
    }
    if (!e) {
        if (used == MEMHW_ENDED_MAX) {
            memmove(&c->ended[0], &c->ended[1], (MEMHW_ENDED_MAX - 1u) * sizeof c->ended[0]);
            used--;
        }
        e = &c->ended[used];
    }
    len = len > MEMHW_ENDED_CLIENT ? MEMHW_ENDED_CLIENT : len;
    e->session = session;
    e->why = why;
    e->ms = now_ms(c);
    memcpy(e->client, client, len);
    e->client[len] = '\0';
}

static const memhw_ended_t *find_ended(const memhw_core_t *c, uint16_t session)
{
    unsigned i;
    for (i = 0; i < MEMHW_ENDED_MAX; i++) {
        if (session && c->ended[i].session == session) {
            return &c->ended[i];
        }
    }
    return 0;
}

static void end_session(memhw_core_t *c)
{
    remember_end(c, c->session, MEMHW_ENDED_BYE, "");
    c->opening.conn = NO_CONN;
    memhw_ground(c);
    c->limits = c->board.abs_limits;
    memhw_session_reset(c);
    cache_clear(c);
    c->session = 0;
    c->owner = NO_CONN;
    c->client[0] = '\0';
}

/* Python's repr() of a str (ASCII escapes; other characters kept). */
static size_t repr(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    const char *p;
#define PUT(ch) do { if (n + 1u < cap) dst[n] = (ch); n++; } while (0)
    PUT(q);
    for (p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\' || ch == (unsigned char)q) {
            PUT('\\');
            PUT((char)ch);
        } else if (ch == '\n') {
            PUT('\\'); PUT('n');
        } else if (ch == '\r') {
            PUT('\\'); PUT('r');
        } else if (ch == '\t') {
            PUT('\\'); PUT('t');
        } else if (ch < 0x20u || ch == 0x7Fu) {
            static const char hex[] = "0123456789abcdef";
            PUT('\\'); PUT('x'); PUT(hex[ch >> 4]); PUT(hex[ch & 15u]);
        } else {
            PUT((char)ch);
        }
    }
    PUT(q);
#undef PUT
    if (cap) {
        dst[n < cap ? n : cap - 1u] = '\0';
    }
    return n;
}

static void hello_reply(memhw_core_t *c, int conn, const memhw_header_t *req)
{
    uint8_t buf[512];
    memhw_writer_t w = {buf, 0, sizeof buf};
    const memhw_board_t *b = &c->board;
    uint8_t *ops;
    unsigned i, n_ops = 0;
    for (i = 0; i < MEMHW_MESSAGE_COUNT; i++) {
        n_ops += (unsigned)implemented((int)i);
    }
    memhw_w_u8(&w, MEMHW_PROTOCOL_MAJOR);
    memhw_w_u8(&w, MEMHW_CORE_MINOR);
    memhw_w_u32(&w, (uint32_t)MEMHW_SCHEMA_HASH);
    memhw_w_str(&w, MEMHW_FIRMWARE_NAME);
    memhw_w_str(&w, b->serial);
    memhw_w_str(&w, b->chip);
    memhw_w_u16(&w, c->boot_id);
    ops = memhw_w_array(&w, n_ops, 1);
    /* ascending opcodes: the schema lists messages in opcode order, but sort to be sure */
    {
        unsigned k = 0, op;
        for (op = 0; op < 256u; op++) {
            int m = find_message((uint8_t)op);
            if (implemented(m)) {
                ops[k++] = (uint8_t)op;
            }
        }
    }
    memhw_w_u16(&w, b->rows);
    memhw_w_u16(&w, b->cols);
    memhw_w_u8(&w, b->dac_bits);
    memhw_w_u8(&w, b->adc_bits);
    memhw_w_f32(&w, b->dac_line_lsb);
    memhw_w_f32(&w, b->dac_gate_lsb);
    memhw_w_f32(&w, b->adc_lsb);
    memhw_w_u32(&w, b->n_gains);
    for (i = 0; i < b->n_gains; i++) {
        memhw_w_f32(&w, b->tia_gains[i]);
    }
    memhw_w_f32(&w, b->width_offset);
    memhw_w_f32(&w, b->width_lsb);
    memhw_w_u16(&w, b->width_max_code);
    memhw_w_f32(&w, b->v_read_max);
    memhw_w_f32(&w, b->v_set_max);
    memhw_w_f32(&w, b->v_reset_max);
    memhw_w_f32(&w, b->v_gate_max);
    memhw_w_u16(&w, b->max_frame);
    memhw_w_u32(&w, b->max_message);
    reply_to(c, conn, c->conn[conn].gen, req, MEMHW_STATUS_OK, 0, c->session, buf, w.len);
}

/* 1 when the HELLO is a retry of the one that opened or resumed the session (§7.2): answered again. */
static int hello_retry(memhw_core_t *c, int conn, const memhw_header_t *req, const uint8_t *payload, uint32_t len)
{
    const memhw_opening_t *o = &c->opening;
    if (!c->session || o->conn != conn || c->owner != conn || o->gen != c->conn[conn].gen || o->seq != req->seq ||
        o->crc != memhw_crc32(0, payload, len)) {
        return 0;
    }
    c->counters.cache_hits++;
    hello_reply(c, conn, req);
    return 1;
}

/* The BUSY reason of a HELLO NEW meeting an open session (§7.2, §7.4). */
static void busy_reason(memhw_core_t *c, int conn, char *reason, size_t cap)
{
    char who[2 * MEMHW_CLIENT_MAX + 3];
    repr(who, sizeof who, c->client);
    if (c->owner == NO_CONN) { /* detached, its operation still running */
        memhw_fmt(reason, cap, "board busy: session %4x of %s lost its connection while an operation ran, which "
                  "finishes first; try again when it ends, or resume that session (HELLO mode RESUME)",
                  (uint32_t)c->session, who);
    } else if (c->owner == conn) {
        memhw_fmt(reason, cap, "this connection already owns session %4x of %s: a HELLO NEW that is not a retry "
                  "of the one that opened it (same seq and payload) opens no second session; end it with BYE "
                  "first, or replace it with HELLO mode TAKEOVER", (uint32_t)c->session, who);
    } else {
        const memhw_conn_t *o = &c->conn[c->owner];
        memhw_fmt(reason, cap,
                  "board in use by %s (%s) since uptime %f s, idle %f s; if that host is gone, take the board "
                  "over (HELLO mode TAKEOVER)",
                  c->client[0] ? c->client : "an unnamed host", o->address[0] ? o->address : "unknown address",
                  memhw_f32_bits((float)(c->since_ms - c->boot_ms) / 1000.0f),
                  memhw_f32_bits((float)(now_ms(c) - o->last_rx) / 1000.0f));
    }
}

/* A new session for `conn` (HELLO NEW or TAKEOVER): the old one, if any, is remembered as ended. */
static void open_session(memhw_core_t *c, int conn, uint32_t mode, const char *client)
{
    uint16_t old = c->session;
    if (old && mode == MEMHW_HELLO_MODE_TAKEOVER && c->owner != NO_CONN) {
        char who[2 * MEMHW_CLIENT_MAX + 3], whom[2 * MEMHW_CLIENT_MAX + 3];
        repr(who, sizeof who, c->client);
        repr(whom, sizeof whom, client);
        c->counters.takeovers++;
        memhw_fmt(c->last_error, sizeof c->last_error, "takeover: session %4x of %s ended by %s from %s",
                  (uint32_t)old, who, whom, c->conn[conn].address[0] ? c->conn[conn].address : "?");
        remember_end(c, old, MEMHW_ENDED_TAKEOVER, client);
    } else if (old) {
        remember_end(c, old, MEMHW_ENDED_REPLACED, client);
    }
    while (c->session == 0 || c->session == old) {
        c->session = memhw_hal_random16(c->hal);
    }
    cache_clear(c);
    c->since_ms = now_ms(c);
    c->limits = c->board.abs_limits;
    memhw_session_reset(c);
    c->counters.sessions++;
}

/* HELLO: open, resume or take over the session (PROTOCOL.md §7.2); never cached. */
static void hello(memhw_core_t *c, int conn, const memhw_header_t *req, const uint8_t *payload, uint32_t len)
{
    memhw_value_t v[MEMHW_MAX_FIELDS];
    char reason[MEMHW_REASON_MAX + 1], client[MEMHW_CLIENT_MAX + 1];
    const memhw_message_t *m = &memhw_messages[MEMHW_MSG_HELLO];
    uint32_t mode, n_client;
    if (hello_retry(c, conn, req, payload, len)) {
        return;
    }
    if (memhw_decode(&m->request, "HELLO.request", payload, len, v, reason, sizeof reason) != 0) {
        refuse_now(c, conn, req, MEMHW_STATUS_BAD_PAYLOAD, 0, reason);
        return;
    }
    n_client = v[MEMHW_HELLO_REQUEST_CLIENT].n;
    if (n_client > MEMHW_CLIENT_MAX) {
        memhw_fmt(reason, sizeof reason, "client name longer than %u bytes", (uint32_t)MEMHW_CLIENT_MAX);
        refuse_now(c, conn, req, MEMHW_STATUS_BAD_PAYLOAD, 0, reason);
        return;
    }
    memcpy(client, v[MEMHW_HELLO_REQUEST_CLIENT].p, n_client);
    client[n_client] = '\0';
    mode = v[MEMHW_HELLO_REQUEST_MODE].u;
    if (mode == MEMHW_HELLO_MODE_RESUME) {
        uint32_t s = v[MEMHW_HELLO_REQUEST_SESSION].u;
        if (!(c->session && s == c->session)) {
            memhw_fmt(reason, sizeof reason, "session %4x cannot be resumed: %s", s,
                      !c->session ? "the board has no open session (it rebooted or the session ended)"
                                  : "another session is open now (a takeover)");
            refuse_now(c, conn, req, MEMHW_STATUS_NO_SESSION, 0, reason);
            return;
        }
        c->counters.resumes++;
    } else if (mode == MEMHW_HELLO_MODE_NEW && c->session && c->owner == NO_CONN && c->busy) {
        c->counters.busy_answers++;
        busy_reason(c, conn, reason, sizeof reason);
        refuse_now(c, conn, req, MEMHW_STATUS_BUSY, 0, reason);
        return;
    } else if (mode == MEMHW_HELLO_MODE_TAKEOVER || (mode == MEMHW_HELLO_MODE_NEW && c->owner == NO_CONN)) {
        open_session(c, conn, mode, client);
    } else if (mode == MEMHW_HELLO_MODE_NEW) {
        c->counters.busy_answers++;
        busy_reason(c, conn, reason, sizeof reason);
        refuse_now(c, conn, req, MEMHW_STATUS_BUSY, 0, reason);
        return;
    } else {
        memhw_fmt(reason, sizeof reason, "unknown HELLO mode %u", mode);
        refuse_now(c, conn, req, MEMHW_STATUS_BAD_PAYLOAD, 0, reason);
        return;
    }
    take(c, conn, client, n_client);
    c->opening.conn = (int8_t)conn;
    c->opening.gen = c->conn[conn].gen;
    c->opening.seq = req->seq;
    c->opening.crc = memhw_crc32(0, payload, len);
    c->counters.executed[MEMHW_MSG_HELLO]++;
    hello_reply(c, conn, req);
}

/* " (why it ended)" for a session that ended recently, else "" (memhw.peer's _ended). */
static void ended_reason(const memhw_core_t *c, uint16_t session, char *out, size_t cap)
{
    const memhw_ended_t *e = find_ended(c, session);
    char who[2 * MEMHW_ENDED_CLIENT + 3];
    out[0] = '\0';
    if (!e) {
        return;
    }
    repr(who, sizeof who, e->client);
    if (e->why == MEMHW_ENDED_BYE) {
        memhw_fmt(out, cap, " (ended by BYE)");
    } else if (e->why == MEMHW_ENDED_TAKEOVER) {
        memhw_fmt(out, cap, " (taken over by %s at uptime %f s)", who,
                  memhw_f32_bits((float)(e->ms - c->boot_ms) / 1000.0f));
    } else {
        memhw_fmt(out, cap, " (replaced by a new session of %s after its host disconnected)", who);
    }
}

static void refuse_session(memhw_core_t *c, int conn, const memhw_header_t *req)
{
    char reason[MEMHW_REASON_MAX + 1];
    c->counters.session_refusals++;
    if (!c->session) {
        memhw_fmt(reason, sizeof reason, "no session is open: send HELLO first; nothing was applied");
    } else if (req->session != c->session) {
        if (req->session) {
            char why[MEMHW_REASON_MAX + 1];
            ended_reason(c, req->session, why, sizeof why);
            memhw_fmt(reason, sizeof reason, "session %4x is not the board's session%s; nothing was applied",
                      (uint32_t)req->session, why);
        } else {
            memhw_fmt(reason, sizeof reason, "the request carries no session id (0): every request after HELLO "
                                             "must carry the session id of the HELLO reply; nothing was applied");
        }
    } else {
        memhw_fmt(reason, sizeof reason,
                  "this connection does not own the session: resume it with HELLO RESUME; nothing was applied");
    }
    refuse_now(c, conn, req, MEMHW_STATUS_NO_SESSION, 0, reason);
}

/* ------------------------------------------------------------------ the messages the core answers itself */

static int handle_status(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    uint8_t *p = memhw_reply(op, (uint32_t)(1 + 1 + 2 + strlen(c->last_error) + 4 + 4 + 4));
    memhw_writer_t w = {p, 0, op->out_cap};
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    memhw_w_u8(&w, 0);
    memhw_w_u8(&w, c->last_status);
    memhw_w_str(&w, c->last_error);
    memhw_w_u32(&w, c->status_requests);
    memhw_w_u32(&w, c->status_pulses);
    memhw_w_f32(&w, (float)(now_ms(c) - c->boot_ms) / 1000.0f);
    return MEMHW_DONE;
}

static int handle_abort_idle(memhw_op_t *op)
{
    memhw_ground(op->c);
    op->small[0] = 0; /* was_busy */
    op->out = op->small;
    op->out_len = 1;
    return MEMHW_DONE;
}

static int handle_bye(memhw_op_t *op)
{
    end_session(op->c);
    op->out = op->small;
    op->out_len = 0;
    return MEMHW_DONE;
}

/* ------------------------------------------------------------------ dispatch */

static void finish(memhw_core_t *c, memhw_op_t *op, uint8_t status, const uint8_t *payload, uint32_t len,
                   uint32_t key, int cacheable, uint32_t offset)
{
    reply_to(c, op->conn, op->gen, &op->req, status, 0, op->req.session, payload, len);
    if (cacheable && op->req.session == c->session && c->cache_count < MEMHW_REPLY_CACHE) {
        memhw_cache_entry_t *e = &c->cache[c->cache_count++];
        e->seq = op->req.seq;
        e->opcode = op->req.opcode;
        e->status = status;
        e->key = key;
        e->offset = offset;
        e->length = len;
    }
}

/* A refusal of a request of the session: built in the arena, so it is cached like any reply. */
static void finish_refusal(memhw_core_t *c, memhw_op_t *op, uint32_t key, int cacheable)
{
    uint32_t n = (uint32_t)strlen(op->reason), offset = 0;
    uint8_t *p = cacheable ? arena_alloc(c, op->req.seq, 2u + n, &offset) : 0;
    c->last_status = op->status;
    memcpy(c->last_error, op->reason, (size_t)n + 1u);
    if (!p) {
        refuse_now(c, op->conn, &op->req, op->status, op->req.session, op->reason);
        return;
    }
    memhw_put16(p, (uint16_t)n);
    memcpy(p + 2, op->reason, n);
    finish(c, op, op->status, p, 2u + n, key, cacheable, offset);
}

static void execute(memhw_core_t *c, memhw_op_t *op, uint32_t key, int cacheable)
{
    const memhw_message_t *m = &memhw_messages[op->msg];
    char label[40];
    int result;
    memhw_fmt(label, sizeof label, "%s.request", m->name);
    if (memhw_decode(&m->request, label, op->payload, op->len, op->v, op->reason, sizeof op->reason) != 0) {
        op->status = MEMHW_STATUS_BAD_PAYLOAD;
        finish_refusal(c, op, key, cacheable);
        return;
    }
    c->busy = 1;
    c->abort = 0;
    c->rebooted = 0;
    op->out = 0;
    op->out_len = 0;
    op->out_offset = 0;
    op->in_arena = 0;
    switch (op->msg) {
    case MEMHW_MSG_STATUS: result = handle_status(op); break;
    case MEMHW_MSG_ABORT: result = handle_abort_idle(op); break;
    case MEMHW_MSG_BYE: result = handle_bye(op); break;
    default: result = memhw_handlers[op->msg](op); break;
    }
    if (result == MEMHW_DONE && op->msg != MEMHW_MSG_BYE && memhw_step_done(op, -1)) {
        result = MEMHW_REBOOTED;
    }
    c->busy = 0;
    switch (result) {
    case MEMHW_DONE:
        c->counters.executed[op->msg]++;
        finish(c, op, MEMHW_STATUS_OK, op->out, op->out_len, key, cacheable && op->in_arena, op->out_offset);
        break;
    case MEMHW_ABORTED:
        memhw_ground(c);
        c->counters.executed[op->msg]++;
        finish(c, op, MEMHW_STATUS_ABORTED, op->out, op->out_len, key, cacheable && op->in_arena, op->out_offset);
        break;
    case MEMHW_REBOOTED:
        c->counters.executed[op->msg]++; /* the reply died with the old boot */
        return;
    default:
        finish_refusal(c, op, key, cacheable);
        break;
    }
    if (c->owner == NO_CONN && c->session) { /* the owner left while this ran */
        memhw_ground(c);
    }
}

static void dispatch(memhw_core_t *c, const inbox_rec_t *r, const uint8_t *payload)
{
    memhw_op_t op;
    uint32_t key;
    int hit, msg, cacheable;
    if (!conn_alive(c, r->conn, r->gen)) {
        return;
    }
    memset(&op.req, 0, sizeof op.req);
    op.req.version = r->version;
    op.req.flags = r->flags;
    op.req.seq = r->seq;
    op.req.opcode = r->opcode;
    op.req.session = r->session;
    if (r->opcode == memhw_messages[MEMHW_MSG_HELLO].opcode) {
        hello(c, r->conn, &op.req, payload, r->len);
        return;
    }
    if (!c->session || r->session != c->session || r->conn != (uint8_t)c->owner || c->owner == NO_CONN) {
        refuse_session(c, r->conn, &op.req);
        return;
    }
    key = memhw_crc32(r->opcode, payload, r->len);
    hit = cache_find(c, r->seq);
    if (hit >= 0 && c->cache[hit].key == key && r->opcode != memhw_messages[MEMHW_MSG_ABORT].opcode) {
        const memhw_cache_entry_t *e = &c->cache[hit];
        memhw_header_t h = op.req;
        c->counters.cache_hits++;
        h.opcode = e->opcode;
        reply_to(c, r->conn, r->gen, &h, e->status, 0, c->session, c->buf.cache + e->offset, e->length);
        return;
    }
    op.c = c;
    op.conn = r->conn;
    op.gen = r->gen;
    op.payload = payload;
    op.len = r->len;
    msg = find_message(r->opcode);
    cacheable = msg != (int)MEMHW_MSG_ABORT && msg != (int)MEMHW_MSG_BYE;
    if (!implemented(msg)) {
        op.status = MEMHW_STATUS_UNKNOWN_OPCODE;
        memhw_fmt(op.reason, sizeof op.reason, "opcode %2x not implemented", (uint32_t)r->opcode);
        finish_refusal(c, &op, key, 1);
        return;
    }
    op.msg = (uint8_t)msg;
    if (r->version != MEMHW_PROTOCOL_MAJOR) {
        op.status = MEMHW_STATUS_BAD_VERSION;
        memhw_fmt(op.reason, sizeof op.reason, "board speaks protocol %u, request is %u",
                  (uint32_t)MEMHW_PROTOCOL_MAJOR, (uint32_t)r->version);
        finish_refusal(c, &op, key, cacheable);
        return;
    }
    execute(c, &op, key, cacheable);
}

/* Execute queued requests while idle (PROTOCOL.md §9.1: in arrival order). */
static void pump(memhw_core_t *c)
{
    while (!c->busy && c->inbox_head < c->inbox_tail) {
        inbox_rec_t r;
        size_t head = c->inbox_head;
        uint32_t boots = c->counters.reboots;
        memcpy(&r, c->buf.inbox + head, sizeof r);
        if (r.alive) {
            dispatch(c, &r, c->buf.inbox + head + sizeof r);
        }
        if (c->counters.reboots != boots) {
            continue; /* the inbox died with the reboot */
        }
        c->inbox_head = head + rec_size(r.len);
        if (c->inbox_head >= c->inbox_tail) {
            inbox_clear(c);
        }
    }
}

/* ------------------------------------------------------------------ input */

static void asm_reset(memhw_assembler_t *a)
{
    a->len = 0;
    a->parts = 0;
}

static void asm_drop(memhw_assembler_t *a)
{
    a->dropped++;
    asm_reset(a);
}

/* Add a frame (PROTOCOL.md §5.2); 1 when it completes a message (in a->buf, header a->first). */
static int asm_add(memhw_assembler_t *a, const memhw_frame_t *f, uint32_t max_message)
{
    const memhw_header_t *h = &f->header;
    uint8_t kind = MEMHW_FLAG_REPLY | MEMHW_FLAG_PROGRESS;
    if (h->chunk == 0) {
        if (a->parts) {
            a->dropped++; /* message abandoned mid-way */
        }
        a->first = *h;
        a->len = 0;
        a->parts = 0;
    } else if (!a->parts || h->seq != a->first.seq || h->opcode != a->first.opcode ||
               (h->flags & kind) != (a->first.flags & kind) || h->chunk != a->parts) {
        asm_drop(a); /* chunk out of sequence */
        return 0;
    }
    if (a->len + h->length > max_message || a->len + h->length > a->cap) {
        asm_drop(a); /* message larger than max_message */
        a->oversize = 1;
        return 0;
    }
    memcpy(a->buf + a->len, f->payload, h->length);
    a->len += h->length;
    a->parts++;
    return (h->flags & MEMHW_FLAG_MORE) ? 0 : 1;
}

static void update_bad_frames(memhw_core_t *c)
{
    uint32_t n = 0;
    unsigned i;
    for (i = 0; i < c->buf.n_conn; i++) {
        if (c->conn[i].open) {
            n += c->conn[i].dec.dropped + c->conn[i].asm_.dropped;
        }
    }
    c->counters.bad_frames = n;
}

static int may_wait(const memhw_header_t *h, const uint8_t *payload, uint32_t len)
{
    memhw_value_t v[MEMHW_MAX_FIELDS];
    char reason[MEMHW_REASON_MAX + 1];
    uint32_t mode;
    if (h->opcode != memhw_messages[MEMHW_MSG_HELLO].opcode ||
        memhw_decode(&memhw_messages[MEMHW_MSG_HELLO].request, "HELLO.request", payload, len, v, reason,
                     sizeof reason) != 0) {
        return 0;
    }
    mode = v[MEMHW_HELLO_REQUEST_MODE].u;
    return mode == MEMHW_HELLO_MODE_RESUME || mode == MEMHW_HELLO_MODE_TAKEOVER;
}

/* A complete request arrived while an operation runs (PROTOCOL.md §9.1). */
static void arrived_while_busy(memhw_core_t *c, int conn, const memhw_header_t *h, const uint8_t *payload,
                               uint32_t len, uint16_t frames)
{
    if (conn == c->owner && h->session == c->session && h->opcode == memhw_messages[MEMHW_MSG_ABORT].opcode) {
        uint8_t was_busy = 1;
        c->abort = 1;
        reply_to(c, conn, c->conn[conn].gen, h, MEMHW_STATUS_OK, 0, h->session, &was_busy, 1);
    } else if (conn == c->owner || may_wait(h, payload, len)) {
        inbox_push(c, conn, h, payload, len, frames);
    } else if (h->opcode == memhw_messages[MEMHW_MSG_HELLO].opcode) {
        hello(c, conn, h, payload, len); /* BUSY now: the session is open and busy */
    } else {
        refuse_session(c, conn, h);
    }
}

/* Decode bytes of one connection; complete requests are queued (idle) or sorted out (busy). */
static void feed(memhw_core_t *c, int conn, const uint8_t *data, size_t len)
{
    memhw_conn_t *k = &c->conn[conn];
    memhw_frame_t frame;
    while (k->open && memhw_decoder_feed(&k->dec, &data, &len, &frame)) {
        memhw_assembler_t *a = &k->asm_;
        if (asm_add(a, &frame, c->board.max_message)) {
            memhw_header_t h = a->first;
            uint16_t frames = a->parts;
            a->parts = 0;
            if (!(h.flags & MEMHW_FLAG_REPLY)) {
                c->counters.requests++;
                c->status_requests++;
                h.flags = (uint8_t)(h.flags & ~MEMHW_FLAG_MORE);
                if (c->busy) {
                    arrived_while_busy(c, conn, &h, a->buf, (uint32_t)a->len, frames);
                } else {
                    inbox_push(c, conn, &h, a->buf, (uint32_t)a->len, frames);
                }
            }
        }
        if (a->oversize) {
            char reason[80];
            a->oversize = 0;
            c->counters.requests++;
            c->status_requests++;
            memhw_fmt(reason, sizeof reason, "request exceeds max_message = %u bytes", c->board.max_message);
            refuse_now(c, conn, &a->first, MEMHW_STATUS_TOO_LARGE, a->first.session, reason);
        }
    }
    update_bad_frames(c);
}

static void poll_connections(memhw_core_t *c)
{
    uint8_t buf[256];
    unsigned i;
    for (i = 0; i < c->buf.n_conn; i++) {
        size_t n;
        while (c->conn[i].open && (n = memhw_hal_poll(c->hal, (uint8_t)i, buf, sizeof buf)) > 0) {
            c->conn[i].last_rx = c->last_rx = now_ms(c);
            c->counters.bytes_in += (uint32_t)n;
            feed(c, (int)i, buf, n);
        }
    }
}

void memhw_core_receive(memhw_core_t *c, int conn, const uint8_t *data, size_t len)
{
    uint32_t t;
    if (conn < 0 || conn >= (int)c->buf.n_conn || !c->conn[conn].open) {
        return;
    }
    memhw_core_check_watchdog(c, now_ms(c));
    t = now_ms(c);
    c->conn[conn].last_rx = c->last_rx = t;
    c->counters.bytes_in += (uint32_t)len;
    feed(c, conn, data, len);
    pump(c);
}

void memhw_core_service(memhw_core_t *c)
{
    uint8_t buf[256];
    unsigned i;
    for (i = 0; i < c->buf.n_conn; i++) {
        size_t n;
        while (c->conn[i].open && (n = memhw_hal_poll(c->hal, (uint8_t)i, buf, sizeof buf)) > 0) {
            memhw_core_receive(c, (int)i, buf, n);
        }
    }
    memhw_core_check_watchdog(c, now_ms(c));
}

/* ------------------------------------------------------------------ connections */

int memhw_core_open(memhw_core_t *c, const char *address)
{
    unsigned i;
    for (i = 0; i < c->buf.n_conn; i++) {
        memhw_conn_t *k = &c->conn[i];
        if (!k->open) {
            size_t n = strlen(address);
            if (n > MEMHW_ADDRESS_MAX) {
                n = MEMHW_ADDRESS_MAX;
            }
            k->open = 1;
            k->gen++;
            memcpy(k->address, address, n);
            k->address[n] = '\0';
            k->last_rx = now_ms(c);
            memhw_decoder_init(&k->dec, c->buf.conn[i].frame, c->buf.conn[i].frame_size);
            k->asm_.buf = c->buf.conn[i].message;
            k->asm_.cap = c->buf.conn[i].message_size;
            k->asm_.dropped = 0;
            k->asm_.oversize = 0;
            asm_reset(&k->asm_);
            return (int)i;
        }
    }
    return -1;
}

void memhw_core_disconnect(memhw_core_t *c, int conn)
{
    size_t at;
    if (conn < 0 || conn >= (int)c->buf.n_conn || !c->conn[conn].open) {
        return;
    }
    c->conn[conn].open = 0;
    for (at = c->inbox_head; at < c->inbox_tail;) { /* its queued requests never run */
        inbox_rec_t r;
        memcpy(&r, c->buf.inbox + at, sizeof r);
        if (r.conn == (uint8_t)conn) {
            r.alive = 0;
            memcpy(c->buf.inbox + at, &r, sizeof r);
        }
        at += rec_size(r.len);
    }
    if (conn == c->owner) {
        c->owner = NO_CONN;
        if (!c->busy) {
            memhw_ground(c);
        }
    }
    update_bad_frames(c);
}

int memhw_core_pending(const memhw_core_t *c, int conn)
{
    return conn >= 0 && conn < (int)c->buf.n_conn && c->conn[conn].open && c->conn[conn].asm_.parts > 0;
}

/* ------------------------------------------------------------------ watchdog, reboot, init */

int memhw_core_check_watchdog(memhw_core_t *c, uint32_t now)
{
    uint32_t silent;
    int levels, partial = 0;
    unsigned i;
    if (!c->board.watchdog_ms || c->busy) {
        return 0;
    }
    silent = now - (c->owner != NO_CONN ? c->conn[c->owner].last_rx : c->last_rx);
    if (silent <= c->board.watchdog_ms || silent > 0x80000000u) {
        return 0;
    }
    levels = levels_applied(c);
    for (i = 0; i < c->buf.n_conn; i++) {
        partial |= memhw_core_pending(c, (int)i);
    }
    if (!(levels || partial)) {
        return 0;
    }
    memhw_ground(c);
    for (i = 0; i < c->buf.n_conn; i++) {
        asm_reset(&c->conn[i].asm_);
        memhw_decoder_reset(&c->conn[i].dec);
    }
    c->counters.watchdog_trips++;
    memhw_fmt(c->last_error, sizeof c->last_error, "watchdog: host silent for %f s with %s; every line grounded",
              memhw_f32_bits((float)silent / 1000.0f),
              levels && partial ? "DC levels applied and a request half sent"
                                : (levels ? "DC levels applied" : "a request half sent"));
    return 1;
}

static void power_up(memhw_core_t *c)
{
    unsigned i;
    c->boot_id = memhw_hal_random16(c->hal);
    if (c->boot_id == 0) {
        c->boot_id = 1; /* as the reference: randbits(16) or 1 */
    }
    memhw_ground(c);
    c->limits = c->board.abs_limits;
    cache_clear(c);
    inbox_clear(c);
    for (i = 0; i < c->buf.n_conn; i++) {
        memhw_decoder_reset(&c->conn[i].dec);
        asm_reset(&c->conn[i].asm_);
    }
    c->session = 0;
    c->owner = NO_CONN;
    c->opening.conn = NO_CONN;
    c->client[0] = '\0';
    memhw_session_reset(c);
    c->last_status = 0;
    c->last_error[0] = '\0';
    c->boot_ms = now_ms(c);
    c->status_requests = 0;
    c->status_pulses = 0;
}

void memhw_core_reboot(memhw_core_t *c)
{
    power_up(c);
    c->counters.reboots++;
}

int memhw_core_init(memhw_core_t *c, void *hal, const memhw_board_t *board, const memhw_buffers_t *buf)
{
    unsigned i;
    memset(c, 0, sizeof *c);
    c->hal = hal;
    c->board = *board;
    c->buf = *buf;
    if (board->rows == 0 || board->cols == 0 || board->rows > MEMHW_ROWS_MAX || board->cols > MEMHW_COLS_MAX ||
        board->n_gains == 0 || board->adc_bits < 2 || board->adc_bits > 16 || board->n_gains > MEMHW_GAINS_MAX || board->n_references == 0 ||
        board->n_references > MEMHW_REFERENCES_MAX || board->max_frame < MEMHW_MIN_FRAME_PAYLOAD ||
        buf->n_conn == 0 || buf->n_conn > MEMHW_CONNECTIONS_MAX ||
        buf->tx_size < MEMHW_FRAME_MAX_ENCODED(board->max_frame) ||
        buf->inbox_size < board->max_message + sizeof(inbox_rec_t) + 4u || !buf->calibration || !buf->tiles ||
        buf->calibration_size < 4u * MEMHW_CALIBRATION_FLOATS(board->rows, board->cols, board->n_gains)) {
        return -1;
    }
    for (i = 0; i < buf->n_conn; i++) {
        if (buf->conn[i].frame_size < MEMHW_DECODER_BUFFER_SIZE(board->max_frame) ||
            buf->conn[i].message_size < board->max_message) {
            return -1;
        }
    }
    c->owner = NO_CONN;
    power_up(c);
    return 0;
}
