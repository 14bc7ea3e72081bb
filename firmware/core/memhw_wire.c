/*
 * memhw_wire.c -- payload decoding by the generated layout tables, little-endian access,
 * a reply writer and a small formatter (no stdio on a board).
 */
#include <string.h>

#include "memhw_internal.h"

uint16_t memhw_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t memhw_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void memhw_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void memhw_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

uint32_t memhw_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float memhw_f32_at(const memhw_value_t *v, uint32_t k)
{
    uint32_t bits = memhw_get32(v->p + 4u * k);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int memhw_finite(float x)
{
    return x == x && x - x == 0.0f; /* not NaN, not infinite; no libm */
}

uint8_t memhw_u8_at(const memhw_value_t *v, uint32_t k)
{
    return v->p[k];
}

uint16_t memhw_u16_at(const memhw_value_t *v, uint32_t k)
{
    return memhw_get16(v->p + 2u * k);
}

int16_t memhw_i16_at(const memhw_value_t *v, uint32_t k)
{
    return (int16_t)memhw_get16(v->p + 2u * k);
}

int memhw_bit(const uint8_t *mask, uint32_t k)
{
    return (mask[k >> 3] >> (k & 7u)) & 1;
}

/* ------------------------------------------------------------------ decoding */

static uint32_t scalar_size(uint8_t base)
{
    switch (base) {
    case MEMHW_T_U8: return 1;
    case MEMHW_T_U16: case MEMHW_T_I16: return 2;
    default: return 4;
    }
}

int memhw_utf8_valid(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        uint32_t need, cp, min;
        if (b < 0x80u) {
            i++;
            continue;
        }
        if (b >= 0xC2u && b <= 0xDFu) {
            need = 1; cp = b & 0x1Fu; min = 0x80u;
        } else if (b >= 0xE0u && b <= 0xEFu) {
            need = 2; cp = b & 0x0Fu; min = 0x800u;
        } else if (b >= 0xF0u && b <= 0xF4u) {
            need = 3; cp = b & 0x07u; min = 0x10000u;
        } else {
            return 0;
        }
        if (n - i - 1u < need) {
            return 0;
        }
        for (uint32_t k = 1; k <= need; k++) {
            uint8_t cb = s[i + k];
            if ((cb & 0xC0u) != 0x80u) {
                return 0;
            }
            cp = (cp << 6) | (cb & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) {
            return 0;
        }
        i += need + 1u;
    }
    return 1;
}

int memhw_decode(const memhw_layout_t *layout, const char *label, const uint8_t *payload, uint32_t len,
                 memhw_value_t *values, char *reason, size_t reason_cap)
{
    uint32_t pos = 0;
    uint8_t i = 0;
    while (i < layout->count) {
        const memhw_field_t *f = &layout->fields[i];
        uint8_t base = MEMHW_T_BASE(f->type);
        if (f->type & MEMHW_T_ARRAY) {
            uint32_t count, size = scalar_size(base);
            if (len - pos < 4u) {
                memhw_fmt(reason, reason_cap, "%s.%s: payload too short", label, f->name);
                return -1;
            }
            count = memhw_get32(payload + pos);
            pos += 4u;
            if (count > (len - pos) / size) {
                memhw_fmt(reason, reason_cap, "%s.%s: array of %u runs past the payload", label, f->name, count);
                return -1;
            }
            values[i].n = count;
            values[i].p = payload + pos;
            pos += count * size;
            i++;
        } else if (base == MEMHW_T_STR) {
            uint32_t n;
            if (len - pos < 2u) {
                memhw_fmt(reason, reason_cap, "%s.%s: payload too short", label, f->name);
                return -1;
            }
            n = memhw_get16(payload + pos);
            pos += 2u;
            if (n > len - pos) {
                memhw_fmt(reason, reason_cap, "%s.%s: string runs past the payload", label, f->name);
                return -1;
            }
            if (!memhw_utf8_valid(payload + pos, n)) {
                memhw_fmt(reason, reason_cap, "%s: string is not UTF-8", label);
                return -1;
            }
            values[i].n = n;
            values[i].p = payload + pos;
            pos += n;
            i++;
        } else {
            /* a run of scalars is checked as one block, as the Python codec's struct does */
            uint32_t run = 0;
            uint8_t j;
            for (j = i; j < layout->count && !(layout->fields[j].type & MEMHW_T_ARRAY) &&
                        MEMHW_T_BASE(layout->fields[j].type) != MEMHW_T_STR; j++) {
                run += scalar_size(MEMHW_T_BASE(layout->fields[j].type));
            }
            if (len - pos < run) {
                memhw_fmt(reason, reason_cap, "%s: payload too short", label);
                return -1;
            }
            for (; i < j; i++) {
                const uint8_t *p = payload + pos;
                memhw_value_t *v = &values[i];
                base = MEMHW_T_BASE(layout->fields[i].type);
                v->n = 0;
                v->p = p;
                switch (base) {
                case MEMHW_T_U8: v->u = p[0]; v->i = (int32_t)v->u; break;
                case MEMHW_T_U16: v->u = memhw_get16(p); v->i = (int32_t)v->u; break;
                case MEMHW_T_I16: v->i = (int16_t)memhw_get16(p); v->u = (uint32_t)v->i; break;
                case MEMHW_T_U32: v->u = memhw_get32(p); v->i = (int32_t)v->u; break;
                case MEMHW_T_I32: v->u = memhw_get32(p); v->i = (int32_t)v->u; break;
                default: { uint32_t bits = memhw_get32(p); memcpy(&v->f, &bits, sizeof bits); v->u = bits; } break;
                }
                pos += scalar_size(base);
            }
        }
    }
    if (pos != len) {
        memhw_fmt(reason, reason_cap, "%s: %u unexpected trailing bytes", label, len - pos);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ writer */

static uint8_t *w_take(memhw_writer_t *w, uint32_t n)
{
    uint8_t *p = w->p + w->len;
    w->len += n; /* the caller sized the buffer (memhw_reply); a self-check compares lengths */
    return p;
}

void memhw_w_u8(memhw_writer_t *w, uint8_t v)
{
    *w_take(w, 1) = v;
}

void memhw_w_u16(memhw_writer_t *w, uint16_t v)
{
    memhw_put16(w_take(w, 2), v);
}

void memhw_w_u32(memhw_writer_t *w, uint32_t v)
{
    memhw_put32(w_take(w, 4), v);
}

void memhw_w_f32(memhw_writer_t *w, float v)
{
    memhw_put32(w_take(w, 4), memhw_f32_bits(v));
}

void memhw_w_str(memhw_writer_t *w, const char *s)
{
    uint16_t n = (uint16_t)strlen(s);
    memhw_put16(w_take(w, 2), n);
    memcpy(w_take(w, n), s, n);
}

uint8_t *memhw_w_array(memhw_writer_t *w, uint32_t n, uint32_t size)
{
    memhw_put32(w_take(w, 4), n);
    return w_take(w, n * size);
}

/* ------------------------------------------------------------------ formatter */

typedef struct out {
    char *p;
    size_t cap, len;
} out_t;

static void put_c(out_t *o, char ch)
{
    if (o->len + 1u < o->cap) {
        o->p[o->len] = ch;
    }
    o->len++;
}

static void put_s(out_t *o, const char *s)
{
    while (*s) {
        put_c(o, *s++);
    }
}

static void put_u(out_t *o, uint32_t v, unsigned base, unsigned width)
{
    char tmp[12];
    unsigned n = 0;
    do {
        unsigned d = v % base;
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n < width) {
        tmp[n++] = '0';
    }
    while (n) {
        put_c(o, tmp[--n]);
    }
}

/* Decimal digits of a 64-bit value by long division of 16-bit limbs (no 64-bit division helper needed). */
static void put_u64(out_t *o, uint64_t v)
{
    uint32_t limb[4];
    char tmp[21];
    unsigned n = 0, i;
    for (i = 0; i < 4u; i++) {
        limb[i] = (uint32_t)(v >> (48u - 16u * i)) & 0xFFFFu;
    }
    do {
        uint32_t r = 0, any = 0;
        for (i = 0; i < 4u; i++) {
            uint32_t cur = (r << 16) | limb[i];
            limb[i] = cur / 10u;
            r = cur % 10u;
            any |= limb[i];
        }
        tmp[n++] = (char)('0' + r);
        if (!any) {
            break;
        }
    } while (n < sizeof tmp);
    while (n) {
        put_c(o, tmp[--n]);
    }
}

/*
 * Python's format(x, "g") of a float32 value: 6 significant digits, trailing zeros stripped,
 * exponent form below 1e-4 and from 1e6. Single precision arithmetic (the values are f32).
 */
static void put_g(out_t *o, float x)
{
    char digits[8];
    int exp10 = 0, n, last;
    float m;
    uint32_t q;
    if (x != x) {
        put_s(o, "nan");
        return;
    }
    if (x < 0.0f || (x == 0.0f && 1.0f / x < 0.0f)) {
        put_c(o, '-');
        x = -x;
    }
    if (x > 3.40282347e38f) {
        put_s(o, "inf");
        return;
    }
    if (x == 0.0f) {
        put_c(o, '0');
        return;
    }
    m = x;
    while (m >= 10.0f) { m /= 10.0f; exp10++; }
    while (m < 1.0f) { m *= 10.0f; exp10--; }
    q = (uint32_t)(m * 100000.0f + 0.5f); /* 6 digits, rounded */
    if (q >= 1000000u) {
        q /= 10u;
        exp10++;
    }
    for (n = 5; n >= 0; n--) {
        digits[n] = (char)('0' + q % 10u);
        q /= 10u;
    }
    for (last = 5; last > 0 && digits[last] == '0'; last--) {
    }
    if (exp10 < -4 || exp10 >= 6) {
        put_c(o, digits[0]);
        if (last > 0) {
            put_c(o, '.');
            for (n = 1; n <= last; n++) put_c(o, digits[n]);
        }
        put_c(o, 'e');
        put_c(o, exp10 < 0 ? '-' : '+');
        put_u(o, (uint32_t)(exp10 < 0 ? -exp10 : exp10), 10, 2);
    } else if (exp10 >= 0) {
        for (n = 0; n <= exp10; n++) put_c(o, digits[n]);
        if (last > exp10) {
            put_c(o, '.');
            for (n = exp10 + 1; n <= last; n++) put_c(o, digits[n]);
        }
    } else {
        put_s(o, "0.");
        for (n = -1; n > exp10; n--) put_c(o, '0');
        for (n = 0; n <= last; n++) put_c(o, digits[n]);
    }
}

/* One decimal, rounded half away from zero (timing texts only). */
static void put_f1(out_t *o, float x)
{
    uint32_t tenths;
    if (x < 0.0f) {
        put_c(o, '-');
        x = -x;
    }
    tenths = (uint32_t)(x * 10.0f + 0.5f);
    put_u(o, tenths / 10u, 10, 1);
    put_c(o, '.');
    put_u(o, tenths % 10u, 10, 1);
}

static float bits_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

size_t memhw_vfmt(char *dst, size_t cap, const char *fmt, va_list ap)
{
    out_t o = {dst, cap, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put_c(&o, *fmt);
            continue;
        }
        unsigned width = 0;
        while (fmt[1] >= '0' && fmt[1] <= '9') {
            width = width * 10u + (unsigned)(*++fmt - '0');
        }
        switch (*++fmt) {
        case 's': put_s(&o, va_arg(ap, const char *)); break;
        case 'c': put_c(&o, (char)va_arg(ap, int)); break;
        case 'u': put_u(&o, va_arg(ap, uint32_t), 10, 1); break;
        case 'U': put_u64(&o, va_arg(ap, uint64_t)); break;
        case 'd': {
            int32_t v = va_arg(ap, int32_t);
            if (v < 0) {
                put_c(&o, '-');
                put_u(&o, (uint32_t)0 - (uint32_t)v, 10, 1);
            } else {
                put_u(&o, (uint32_t)v, 10, 1);
            }
        } break;
        case 'x': put_s(&o, "0x"); put_u(&o, va_arg(ap, uint32_t), 16, width); break;
        case 'g': put_g(&o, bits_float(va_arg(ap, uint32_t))); break;
        case 'f': put_f1(&o, bits_float(va_arg(ap, uint32_t))); break; /* one decimal */
        case '%': put_c(&o, '%'); break;
        default: return 0;
        }
    }
    if (cap) {
        dst[o.len < cap ? o.len : cap - 1u] = '\0';
    }
    return o.len < cap ? o.len : (cap ? cap - 1u : 0);
}

size_t memhw_fmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    va_start(ap, fmt);
    n = memhw_vfmt(dst, cap, fmt, ap);
    va_end(ap);
    return n;
}
