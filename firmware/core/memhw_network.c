/*
 * memhw_network.c -- a recurrent network run by the board itself: LOAD_NETWORK, RUN_NETWORK
 * (the C port of memhw/mock/network.py). Binary32 throughout, the activations interpolated
 * in the generated tables of firmware_protocol/c/memhw_activations.c (no exp() on the
 * board). RUN_NETWORK's per-batch state lives in the planner workspace
 * (memhw_buffers_t.planner); a batch that does not fit is refused TOO_LARGE, naming it.
 */
#include <string.h>

#include "memhw_activations.h"
#include "memhw_handlers.h"
#include "memhw_tuning.h"

/* ------------------------------------------------------------------ LOAD_NETWORK */

static uint32_t out_dim(const memhw_layer_t *l)
{
    return l->kind == MEMHW_LAYER_KIND_LAST_STEP ? l->n_in : l->n_out;
}

static uint32_t matrix_in(const memhw_layer_t *l)
{
    return (uint32_t)l->n_in + (l->kind == MEMHW_LAYER_KIND_LSTM ? l->n_out : 0u) + l->bias;
}

static uint32_t matrix_out(const memhw_layer_t *l)
{
    return l->kind == MEMHW_LAYER_KIND_LSTM ? 4u * l->n_out : l->n_out;
}

/* Layer i of the request (its tiles are tiles[first ..]). */
static void layer_of(const memhw_value_t *v, uint32_t i, uint32_t first, memhw_layer_t *l)
{
    l->kind = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_KINDS], i);
    l->n_in = memhw_u16_at(&v[MEMHW_LOAD_NETWORK_REQUEST_N_IN], i);
    l->n_out = memhw_u16_at(&v[MEMHW_LOAD_NETWORK_REQUEST_N_OUT], i);
    l->bias = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_BIAS], i) != 0u;
    l->activation = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_ACTIVATION], i);
    l->in_volts = memhw_f32_at(&v[MEMHW_LOAD_NETWORK_REQUEST_IN_VOLTS], i);
    l->out_scale = memhw_f32_at(&v[MEMHW_LOAD_NETWORK_REQUEST_OUT_SCALE], i);
    l->n_tiles = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_TILE_COUNT], i);
    l->first_tile = (uint8_t)first;
}

static void net_tile_of(const memhw_value_t *v, uint32_t j, memhw_net_tile_t *t)
{
    t->tile = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_TILES], j);
    t->gain = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_TILE_GAIN], j);
    t->in_start = memhw_u16_at(&v[MEMHW_LOAD_NETWORK_REQUEST_IN_START], j);
    t->out_start = memhw_u16_at(&v[MEMHW_LOAD_NETWORK_REQUEST_OUT_START], j);
}

/* 1 if the rectangles of two tiles of a layer overlap */
static int overlap(const memhw_core_t *c, const memhw_net_tile_t *a, const memhw_net_tile_t *b)
{
    const memhw_tile_t *ta = &c->tiles[a->tile], *tb = &c->tiles[b->tile];
    return a->in_start < b->in_start + tb->k && b->in_start < a->in_start + ta->k &&
           a->out_start < b->out_start + tb->m && b->out_start < a->out_start + ta->m;
}

/* A weighted layer's tiles: inside its matrix, gains, exactly one cover (network.py _check_layers). */
static int check_tiles(memhw_op_t *op, uint32_t i, const memhw_layer_t *l, uint32_t first)
{
    const memhw_core_t *c = op->c;
    uint32_t mi = matrix_in(l), mo = matrix_out(l), j, k;
    uint64_t area = 0;
    for (j = 0; j < l->n_tiles; j++) {
        memhw_net_tile_t t;
        const memhw_tile_t *tile;
        net_tile_of(op->v, first + j, &t);
        tile = &c->tiles[t.tile];
        if ((uint32_t)t.in_start + tile->k > mi || (uint32_t)t.out_start + tile->m > mo) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: a tile reaches beyond the %ux%u matrix", i,
                                mo, mi);
        }
        area += (uint64_t)tile->k * tile->m;
        if (t.gain != MEMHW_AUTO_GAIN && t.gain >= c->board.n_gains) {
            return memhw_refuse(op, MEMHW_STATUS_LIMIT, "layer %u: gain index %u >= %u", i, (uint32_t)t.gain,
                                (uint32_t)c->board.n_gains);
        }
    }
    for (j = 0; j < l->n_tiles && area == (uint64_t)mi * mo; j++) {
        for (k = j + 1u; k < l->n_tiles; k++) {
            memhw_net_tile_t a, b;
            net_tile_of(op->v, first + j, &a);
            net_tile_of(op->v, first + k, &b);
            area += (uint64_t)overlap(c, &a, &b);
        }
    }
    if (area != (uint64_t)mi * mo) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: its tiles must cover the %ux%u matrix exactly "
                            "once", i, mo, mi);
    }
    return MEMHW_DONE;
}

/* One layer of network.py _check_layers (after the chain check). */
static int check_layer(memhw_op_t *op, uint32_t i, const memhw_layer_t *l, uint32_t first, int *seen_last)
{
    if (l->kind == MEMHW_LAYER_KIND_LAST_STEP) {
        if (*seen_last || l->n_tiles) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: one LAST_STEP at most, without tiles", i);
        }
        *seen_last = 1;
        return MEMHW_DONE;
    }
    if (*seen_last && l->kind != MEMHW_LAYER_KIND_DENSE) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: only DENSE layers may follow LAST_STEP", i);
    }
    if (l->n_out < 1u || !l->n_tiles) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: needs outputs and at least one tile", i);
    }
    if (l->kind == MEMHW_LAYER_KIND_DENSE && l->activation > MEMHW_ACTIVATION_SOFTMAX) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: unknown activation %u", i,
                            (uint32_t)l->activation);
    }
    if (!(memhw_finite(l->in_volts) && l->in_volts > 0.0f && memhw_finite(l->out_scale))) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: in_volts must be finite and > 0, out_scale finite",
                            i);
    }
    return check_tiles(op, i, l, first);
}

static int check_layers(memhw_op_t *op, uint32_t n)
{
    memhw_layer_t l, prev;
    uint32_t i, first = 0;
    int seen_last = 0;
    if (n < 1u || n > MEMHW_MAX_LAYERS) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "a network has 1 .. %u layers, not %u", MEMHW_MAX_LAYERS, n);
    }
    for (i = 0; i < n; i++) {
        layer_of(op->v, i, first, &l);
        if (i && l.n_in != out_dim(&prev)) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u takes %u inputs, layer %u gives %u", i,
                                (uint32_t)l.n_in, i - 1u, out_dim(&prev));
        }
        if (check_layer(op, i, &l, first, &seen_last) != MEMHW_DONE) {
            return MEMHW_REFUSED;
        }
        first += l.n_tiles;
        prev = l;
    }
    return MEMHW_DONE;
}

/* Field counts, layer kinds and tile ids (network.py load_network, before _check_layers). */
static int check_fields(memhw_op_t *op, uint32_t *n_tiles)
{
    const memhw_value_t *v = op->v;
    uint32_t n = v[MEMHW_LOAD_NETWORK_REQUEST_KINDS].n, i, j, t = 0;
    static const uint8_t per_layer[7] = {MEMHW_LOAD_NETWORK_REQUEST_N_IN, MEMHW_LOAD_NETWORK_REQUEST_N_OUT,
                                         MEMHW_LOAD_NETWORK_REQUEST_BIAS, MEMHW_LOAD_NETWORK_REQUEST_ACTIVATION,
                                         MEMHW_LOAD_NETWORK_REQUEST_IN_VOLTS, MEMHW_LOAD_NETWORK_REQUEST_OUT_SCALE,
                                         MEMHW_LOAD_NETWORK_REQUEST_TILE_COUNT};
    static const uint8_t per_tile[4] = {MEMHW_LOAD_NETWORK_REQUEST_TILES, MEMHW_LOAD_NETWORK_REQUEST_IN_START,
                                        MEMHW_LOAD_NETWORK_REQUEST_OUT_START, MEMHW_LOAD_NETWORK_REQUEST_TILE_GAIN};
    for (i = 0; i < 7u; i++) {
        if (v[per_layer[i]].n != n) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "every per-layer field needs %u entries (one per layer)",
                                n);
        }
    }
    for (i = 0; i < n; i++) {
        t += memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_TILE_COUNT], i);
    }
    for (i = 0; i < 4u; i++) {
        if (v[per_tile[i]].n != t) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "every per-tile field needs %u entries (the sum of "
                                "tile_count)", t);
        }
    }
    for (i = 0, t = 0; i < n; i++) {
        uint32_t kind = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_KINDS], i);
        uint32_t count = memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_TILE_COUNT], i);
        if (kind > MEMHW_LAYER_KIND_LAST_STEP) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "layer %u: unknown kind %u", i, kind);
        }
        for (j = t; j < t + count; j++) {
            if (!memhw_defined_tile(op, memhw_u8_at(&v[MEMHW_LOAD_NETWORK_REQUEST_TILES], j))) {
                return MEMHW_REFUSED;
            }
        }
        t += count;
    }
    *n_tiles = t;
    return MEMHW_DONE;
}

/* out_offset: empty, or one finite value per matrix output of every weighted layer (network.py _with_offsets);
 * *need: that number */
static int check_offsets(memhw_op_t *op, uint32_t n, uint32_t *need)
{
    const memhw_value_t *off = &op->v[MEMHW_LOAD_NETWORK_REQUEST_OUT_OFFSET];
    memhw_layer_t l;
    uint32_t i, first = 0;
    *need = 0;
    for (i = 0; i < n; i++) {
        layer_of(op->v, i, first, &l);
        first += l.n_tiles;
        *need += l.kind == MEMHW_LAYER_KIND_LAST_STEP ? 0u : matrix_out(&l);
    }
    if (off->n == 0u) {
        return MEMHW_DONE;
    }
    if (off->n != *need) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "out_offset has %u values, expected 0 or %u (the weighted "
                            "layers' matrix outputs)", off->n, *need);
    }
    for (i = 0; i < off->n; i++) {
        if (!memhw_finite(memhw_f32_at(off, i))) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "out_offset must be finite");
        }
    }
    return MEMHW_DONE;
}

int memhw_handle_load_network(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    memhw_network_t *net = &c->net;
    uint32_t n = op->v[MEMHW_LOAD_NETWORK_REQUEST_KINDS].n, n_tiles, i, first = 0;
    int per_step = 1;
    uint8_t *p;
    const memhw_value_t *off = &op->v[MEMHW_LOAD_NETWORK_REQUEST_OUT_OFFSET];
    uint32_t outputs, at = 0;
    if (check_fields(op, &n_tiles) != MEMHW_DONE || check_layers(op, n) != MEMHW_DONE ||
        check_offsets(op, n, &outputs) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    if (off->n && outputs > MEMHW_NETWORK_OUTPUTS) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "out_offset of %u matrix outputs: this board keeps at most %u "
                            "(MEMHW_NETWORK_OUTPUTS)", outputs, (uint32_t)MEMHW_NETWORK_OUTPUTS);
    }
    if (n_tiles > MEMHW_NETWORK_TILES) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "a network of %u tiles: this board keeps at most %u "
                            "(MEMHW_NETWORK_TILES)", n_tiles, (uint32_t)MEMHW_NETWORK_TILES);
    }
    p = memhw_reply(op, 5);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_INTERNAL, "reply does not fit the reply buffer");
    }
    for (i = 0; i < n; i++) {
        layer_of(op->v, i, first, &net->layer[i]);
        first += net->layer[i].n_tiles;
        per_step &= net->layer[i].kind != MEMHW_LAYER_KIND_LAST_STEP;
        net->layer[i].offset_at = (uint16_t)at;
        at += net->layer[i].kind == MEMHW_LAYER_KIND_LAST_STEP ? 0u : matrix_out(&net->layer[i]);
    }
    net->has_offset = off->n != 0u;
    for (i = 0; i < off->n; i++) {
        net->offset[i] = memhw_f32_at(off, i);
    }
    for (i = 0; i < n_tiles; i++) {
        net_tile_of(op->v, i, &net->tiles[i]);
    }
    net->n_layers = (uint8_t)n;
    net->n_tiles = (uint8_t)n_tiles;
    memhw_put16(p, net->layer[0].n_in);
    memhw_put16(p + 2, (uint16_t)out_dim(&net->layer[n - 1u]));
    p[4] = (uint8_t)per_step;
    return MEMHW_DONE;
}

/* ------------------------------------------------------------------ RUN_NETWORK */

/* The table activations of memhw/algorithms/activations.py, binary32. */
static float interpolate(const float *table, float x)
{
    const float range = MEMHW_ACTIVATION_RANGE;
    const float scale = (float)MEMHW_ACTIVATION_SEGMENTS / (2.0f * range);
    float u = ((x < -range ? -range : (x > range ? range : x)) + range) * scale, lo;
    uint32_t k;
    if (!(u == u)) {
        u = 0.0f; /* NaN: defined, not the reference's (which has none to give) */
    }
    k = (uint32_t)u;
    k = k > MEMHW_ACTIVATION_SEGMENTS - 1u ? MEMHW_ACTIVATION_SEGMENTS - 1u : k;
    lo = table[k];
    return lo + (u - (float)k) * (table[k + 1u] - lo);
}

static float sigmoid(float x)
{
    return interpolate(memhw_sigmoid_table, x);
}

static float tanh_(float x)
{
    return interpolate(memhw_tanh_table, x);
}

/* Where a batch of B sequences keeps its state in the workspace. */
typedef struct run_ws {
    uint32_t *starts;        /* B: first input row of each sequence */
    float *state;            /* per LSTM layer of the body: h (B*H) then c (B*H) */
    float *x, *y;            /* B * feat: a layer's input and output (running rows) */
    float *z;                /* B * max matrix_in: product inputs, then volts */
    float *a;                /* B * max matrix_out */
    float *last;             /* B * feat: outputs at each sequence's last step */
    int16_t *codes;          /* B * max(M + M-) */
    uint8_t *used;           /* B * max(M + M-) */
    void *scratch;           /* memhw_tile_scratch(B) */
} run_ws_t;

typedef struct run {
    memhw_op_t *op;
    const memhw_network_t *net;
    run_ws_t ws;
    uint32_t batch, cut;     /* cut: index of LAST_STEP, or n_layers */
    uint32_t clipped;
    float limit;
} run_t;

static uint32_t feat_max(const memhw_network_t *net)
{
    uint32_t f = net->layer[0].n_in, i;
    for (i = 0; i < net->n_layers; i++) {
        f = out_dim(&net->layer[i]) > f ? out_dim(&net->layer[i]) : f;
    }
    return f;
}

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

/* Carve the workspace for B sequences (base NULL: only measure); bytes needed. */
static size_t carve(const memhw_core_t *c, const memhw_network_t *net, uint32_t b, uint8_t *base, run_ws_t *ws)
{
    uint32_t i, j, mi = 1, mo = 1, mm = 1, state = 0, feat = feat_max(net);
    size_t at = 0;
    for (i = 0; i < net->n_layers; i++) {
        const memhw_layer_t *l = &net->layer[i];
        mi = matrix_in(l) > mi ? matrix_in(l) : mi;
        mo = matrix_out(l) > mo ? matrix_out(l) : mo;
        state += l->kind == MEMHW_LAYER_KIND_LSTM ? 2u * l->n_out : 0u;
        for (j = 0; j < l->n_tiles; j++) {
            const memhw_tile_t *t = &c->tiles[net->tiles[l->first_tile + j].tile];
            mm = (uint32_t)t->m * (1u + t->neg_cols) > mm ? (uint32_t)t->m * (1u + t->neg_cols) : mm;
        }
    }
#define TAKE(field, type, count) \
    do { ws->field = base ? (type *)(void *)(base + at) : 0; at += align8((size_t)(count) * sizeof(type)); } while (0)
    TAKE(starts, uint32_t, b);
    TAKE(state, float, (size_t)b * state);
    TAKE(x, float, (size_t)b * feat);
    TAKE(y, float, (size_t)b * feat);
    TAKE(z, float, (size_t)b * mi);
    TAKE(a, float, (size_t)b * mo);
    TAKE(last, float, (size_t)b * feat);
    TAKE(codes, int16_t, (size_t)b * mm);
    TAKE(used, uint8_t, (size_t)b * mm);
    TAKE(scratch, uint8_t, memhw_tile_scratch(c, b));
#undef TAKE
    return at;
}

typedef struct tile_in {
    const float *volts;      /* r * mi */
    uint32_t mi, first;
} tile_in_t;

static float tile_input(const void *ctx, uint32_t e, uint32_t k)
{
    const tile_in_t *in = (const tile_in_t *)ctx;
    return in->volts[e * in->mi + in->first + k];
}

/* a (r x matrix_out) = the layer's matrix applied to z (r x matrix_in), through its tiles (network.py matmul). */
static void matmul(run_t *run, const memhw_layer_t *l, uint32_t r)
{
    memhw_core_t *c = run->op->c;
    uint32_t mi = matrix_in(l), mo = matrix_out(l), e, k, j;
    float *z = run->ws.z;
    for (k = 0; k < r * mi; k++) { /* the product inputs become row volts, clipped to the read limit */
        float v = z[k] * l->in_volts;
        run->clipped += (uint32_t)(v > run->limit || v < -run->limit);
        z[k] = v < -run->limit ? -run->limit : (v > run->limit ? run->limit : v);
    }
    memset(run->ws.a, 0, (size_t)r * mo * sizeof(float));
    for (j = 0; j < l->n_tiles; j++) {
        const memhw_net_tile_t *nt = &run->net->tiles[l->first_tile + j];
        const memhw_tile_t *t = &c->tiles[nt->tile];
        const uint8_t *cols = memhw_tile_lines(c, t, 2), *neg = memhw_tile_lines(c, t, 3);
        uint32_t m = t->m, mm = m * (1u + t->neg_cols);
        uint8_t gains[2u * MEMHW_COLS_MAX];
        tile_in_t in;
        in.volts = z;
        in.mi = mi;
        in.first = nt->in_start;
        memset(gains, nt->gain, sizeof gains);
        memhw_tile_vmm(c, t, r, tile_input, &in, nt->gain == MEMHW_AUTO_GAIN ? 0 : gains, run->ws.codes,
                       run->ws.used, run->ws.scratch);
        for (e = 0; e < r; e++) {
            for (k = 0; k < m; k++) {
                const int16_t *code = run->ws.codes + e * mm;
                const uint8_t *g = nt->gain == MEMHW_AUTO_GAIN ? run->ws.used + e * mm : gains;
                float current = memhw_current(c, cols[k], g[k], code[k]);
                float *a = &run->ws.a[e * mo + nt->out_start + k];
                if (neg) {
                    current = current - memhw_current(c, neg[k], g[m + k], code[m + k]);
                }
                *a = *a + current * l->out_scale;
            }
        }
    }
    if (run->net->has_offset) { /* after every tile: the products' zero-input outputs, measured by the host */
        const float *off = run->net->offset + l->offset_at;
        for (e = 0; e < r; e++) {
            for (k = 0; k < mo; k++) {
                run->ws.a[e * mo + k] = run->ws.a[e * mo + k] - off[k];
            }
        }
    }
}

/* One LSTM layer for the running rows: x (r x n_in) -> the new h in y; state rows by sequence. */
static void lstm(run_t *run, const memhw_layer_t *l, float *state, uint32_t t, uint32_t r)
{
    const memhw_value_t *lengths = &run->op->v[MEMHW_RUN_NETWORK_REQUEST_LENGTHS];
    uint32_t hidden = l->n_out, mi = matrix_in(l), b, e = 0, k;
    float *h = state, *cell = state + (size_t)run->batch * hidden;
    for (b = 0; b < run->batch; b++) { /* z = [x, h, 1] */
        if (memhw_u16_at(lengths, b) <= t) {
            continue;
        }
        memcpy(run->ws.z + e * mi, run->ws.x + e * l->n_in, (size_t)l->n_in * sizeof(float));
        memcpy(run->ws.z + e * mi + l->n_in, h + b * hidden, (size_t)hidden * sizeof(float));
        if (l->bias) {
            run->ws.z[e * mi + mi - 1u] = 1.0f;
        }
        e++;
    }
    matmul(run, l, r);
    for (b = 0, e = 0; b < run->batch; b++) {
        const float *a = run->ws.a + e * 4u * hidden;
        if (memhw_u16_at(lengths, b) <= t) {
            continue;
        }
        for (k = 0; k < hidden; k++) {
            float g = tanh_(a[k]), i = sigmoid(a[hidden + k]), f = sigmoid(a[2u * hidden + k]);
            float o = sigmoid(a[3u * hidden + k]);
            float cn = i * g + f * cell[b * hidden + k];
            cell[b * hidden + k] = cn;
            h[b * hidden + k] = o * tanh_(cn);
            run->ws.y[e * hidden + k] = h[b * hidden + k];
        }
        e++;
    }
    memhw_hal_computed(run->op->c->hal, r * 6u * hidden);
}

/* One DENSE layer of r rows: x (r x n_in) -> y (r x n_out). */
static void dense(run_t *run, const memhw_layer_t *l, uint32_t r)
{
    uint32_t mi = matrix_in(l), e, k;
    for (e = 0; e < r; e++) {
        memcpy(run->ws.z + e * mi, run->ws.x + e * l->n_in, (size_t)l->n_in * sizeof(float));
        if (l->bias) {
            run->ws.z[e * mi + mi - 1u] = 1.0f;
        }
    }
    matmul(run, l, r);
    for (k = 0; k < r * l->n_out; k++) {
        float a = run->ws.a[k];
        run->ws.y[k] = l->activation == MEMHW_ACTIVATION_SIGMOID ? sigmoid(a) : a; /* SOFTMAX: the logits */
    }
    memhw_hal_computed(run->op->c->hal, r * l->n_out);
}

/* Layers first..end-1 over r rows; the result in ws.x (features: *feat). */
static void layers(run_t *run, uint32_t first, uint32_t end, uint32_t t, uint32_t r, uint32_t *feat)
{
    uint32_t i;
    float *state = run->ws.state;
    for (i = 0; i < first; i++) {
        state += run->net->layer[i].kind == MEMHW_LAYER_KIND_LSTM ? 2u * run->batch * run->net->layer[i].n_out : 0u;
    }
    for (i = first; i < end; i++) {
        const memhw_layer_t *l = &run->net->layer[i];
        float *swap;
        if (l->kind == MEMHW_LAYER_KIND_LSTM) {
            lstm(run, l, state, t, r);
            state += 2u * run->batch * l->n_out;
        } else {
            dense(run, l, r);
        }
        swap = run->ws.x;
        run->ws.x = run->ws.y;
        run->ws.y = swap;
        *feat = l->n_out;
    }
}

static void put_f32(uint8_t *p, float f)
{
    memhw_put32(p, memhw_f32_bits(f));
}

/* One time step of the body for the running sequences; outputs to the reply or to `last`. */
static void step(run_t *run, uint32_t t, uint8_t *outputs)
{
    const memhw_value_t *lengths = &run->op->v[MEMHW_RUN_NETWORK_REQUEST_LENGTHS];
    const memhw_value_t *inputs = &run->op->v[MEMHW_RUN_NETWORK_REQUEST_INPUTS];
    uint32_t n_in = run->net->layer[0].n_in, feat = n_in, b, e = 0, k, r;
    float scale = run->op->v[MEMHW_RUN_NETWORK_REQUEST_INPUT_SCALE].f;
    for (b = 0; b < run->batch; b++) {
        if (memhw_u16_at(lengths, b) > t) {
            for (k = 0; k < n_in; k++) { /* input = code * input_scale, binary32 */
                int16_t code = (int16_t)memhw_get16(inputs->p + 2u * ((run->ws.starts[b] + t) * n_in + k));
                run->ws.x[e * n_in + k] = (float)code * scale;
            }
            e++;
        }
    }
    r = e;
    layers(run, 0, run->cut, t, r, &feat);
    for (b = 0, e = 0; b < run->batch; b++) {
        uint32_t len = memhw_u16_at(lengths, b);
        if (len <= t) {
            continue;
        }
        for (k = 0; k < feat; k++) {
            if (run->cut == run->net->n_layers) {
                put_f32(outputs + 4u * ((run->ws.starts[b] + t) * feat + k), run->ws.x[e * feat + k]);
            } else if (len == t + 1u) {
                run->ws.last[b * feat + k] = run->ws.x[e * feat + k];
            }
        }
        e++;
    }
}

static uint32_t cut_of(const memhw_network_t *net)
{
    uint32_t i;
    for (i = 0; i < net->n_layers; i++) {
        if (net->layer[i].kind == MEMHW_LAYER_KIND_LAST_STEP) {
            return i;
        }
    }
    return net->n_layers;
}

/* The checks of network.py run_network; the steps and the output count. */
static int check_run(memhw_op_t *op, uint32_t *steps, uint32_t *total)
{
    const memhw_network_t *net = &op->c->net;
    const memhw_value_t *lengths = &op->v[MEMHW_RUN_NETWORK_REQUEST_LENGTHS];
    const memhw_value_t *inputs = &op->v[MEMHW_RUN_NETWORK_REQUEST_INPUTS];
    uint32_t b, n_in;
    if (!net->n_layers) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "no network is loaded in this session (LOAD_NETWORK)");
    }
    *steps = *total = 0;
    for (b = 0; b < lengths->n; b++) {
        uint32_t len = memhw_u16_at(lengths, b);
        *steps = len > *steps ? len : *steps;
        *total += len;
        if (len < 1u) {
            *steps = 0;
            break;
        }
    }
    if (!lengths->n || !*steps) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "lengths: at least one sequence, each of at least one step");
    }
    n_in = net->layer[0].n_in;
    if (inputs->n != *total * n_in) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "inputs has %u values, expected sum(lengths) * %u = %u",
                            inputs->n, n_in, *total * n_in);
    }
    {
        float scale = op->v[MEMHW_RUN_NETWORK_REQUEST_INPUT_SCALE].f;
        if (!(memhw_finite(scale) && scale > 0.0f)) {
            return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "input_scale must be finite and > 0");
        }
    }
    return MEMHW_DONE;
}

int memhw_handle_run_network(memhw_op_t *op)
{
    memhw_core_t *c = op->c;
    run_t run;
    uint32_t steps, total, t, b, k, n_out, every = op->v[MEMHW_RUN_NETWORK_REQUEST_PROGRESS_STEPS].u, outs, feat;
    size_t need;
    uint8_t *p;
    if (check_run(op, &steps, &total) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    run.op = op;
    run.net = &c->net;
    run.batch = op->v[MEMHW_RUN_NETWORK_REQUEST_LENGTHS].n;
    run.cut = cut_of(run.net);
    run.clipped = 0;
    run.limit = (float)c->limits.read_max * c->board.dac_line_lsb;
    need = carve(c, run.net, run.batch, 0, &run.ws);
    if (need > c->buf.planner_size) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "RUN_NETWORK of %u sequences needs %u bytes of state; this "
                            "board's network workspace holds %u: send fewer sequences per request", run.batch,
                            (uint32_t)need, (uint32_t)c->buf.planner_size);
    }
    n_out = out_dim(&run.net->layer[run.net->n_layers - 1u]);
    outs = (run.cut == run.net->n_layers ? total : run.batch) * n_out;
    p = memhw_reply(op, 10u + 4u * outs);
    if (!p) {
        return memhw_refuse(op, MEMHW_STATUS_TOO_LARGE, "reply of %u outputs does not fit the board's reply buffer",
                            outs);
    }
    carve(c, run.net, run.batch, (uint8_t *)c->buf.planner, &run.ws);
    memset(run.ws.state, 0, (size_t)((uint8_t *)run.ws.x - (uint8_t *)run.ws.state));
    memset(run.ws.last, 0, (size_t)((uint8_t *)run.ws.codes - (uint8_t *)run.ws.last));
    for (b = 0, k = 0; b < run.batch; b++) {
        run.ws.starts[b] = k;
        k += memhw_u16_at(&op->v[MEMHW_RUN_NETWORK_REQUEST_LENGTHS], b);
    }
    memhw_put32(p + 6, outs);
    for (t = 0; t < steps; t++) {
        if (memhw_should_stop(op)) {
            memhw_put16(p, (uint16_t)t);
            memhw_put32(p + 2, run.clipped);
            memhw_put32(p + 6, 0);
            memhw_reply_shrink(op, 10);
            return MEMHW_ABORTED;
        }
        step(&run, t, p + 10);
        if (every && ((t + 1u) % every == 0u || t + 1u == steps)) {
            uint8_t frame[4];
            memhw_put16(frame, (uint16_t)(t + 1u));
            memhw_put16(frame + 2, (uint16_t)steps);
            memhw_progress(op, frame, sizeof frame);
        }
        if (memhw_step_done(op, (int32_t)(t + 1u))) {
            return MEMHW_REBOOTED;
        }
    }
    if (run.cut < run.net->n_layers) { /* the head: once per sequence, on the outputs at each last step */
        feat = out_dim(&run.net->layer[run.cut]);
        memcpy(run.ws.x, run.ws.last, (size_t)run.batch * feat * sizeof(float));
        layers(&run, run.cut + 1u, run.net->n_layers, steps, run.batch, &feat);
        for (k = 0; k < run.batch * feat; k++) {
            put_f32(p + 10 + 4u * k, run.ws.x[k]);
        }
    }
    memhw_put16(p, (uint16_t)steps);
    memhw_put32(p + 2, run.clipped);
    return MEMHW_DONE;
}
