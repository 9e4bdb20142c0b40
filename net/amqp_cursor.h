/*
 * Cursors shared by the method and property codecs (internal to net/): a
 * bounds-checked reader, a sizer and a writer, one inline function per AMQP
 * argument type so X-macro expansions can call rd_<type>/sz_<type>/wr_<type>.
 * Each carries the bit-packing state (consecutive bits share an octet, least
 * significant bit first; any other type ends the run) and a sticky failure,
 * so callers check once at the end.
 */
#ifndef RINGMQ_NET_AMQP_CURSOR_H
#define RINGMQ_NET_AMQP_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/assert.h"
#include "core/limits.h"
#include "net/amqp_table.h"
#include "net/amqp_types.h"
#include "net/amqp_wire.h"

enum { AMQP_BITS_NONE = 8 }; /* bit cursor value meaning "no octet open" */

typedef struct amqp_reader {
    const uint8_t *p;
    const uint8_t *end;
    const char *why; /* first failure, NULL while all is well */
    uint8_t bits;
    uint8_t bit_n;
} amqp_reader;

static inline bool rd_take(amqp_reader *r, size_t n, const char *why)
{
    r->bit_n = AMQP_BITS_NONE;
    if (r->why != NULL) return false;
    if ((size_t)(r->end - r->p) < n) {
        r->why = why;
        return false;
    }
    return true;
}

static inline void rd_octet(amqp_reader *r, uint8_t *v)
{
    if (!rd_take(r, 1, "truncated octet argument")) return;
    *v = r->p[0];
    r->p += 1;
}

static inline void rd_short(amqp_reader *r, uint16_t *v)
{
    if (!rd_take(r, 2, "truncated short argument")) return;
    *v = amqp_wire_get_u16(r->p);
    r->p += 2;
}

static inline void rd_long(amqp_reader *r, uint32_t *v)
{
    if (!rd_take(r, 4, "truncated long argument")) return;
    *v = amqp_wire_get_u32(r->p);
    r->p += 4;
}

static inline void rd_longlong(amqp_reader *r, uint64_t *v)
{
    if (!rd_take(r, 8, "truncated longlong argument")) return;
    *v = amqp_wire_get_u64(r->p);
    r->p += 8;
}

static inline void rd_timestamp(amqp_reader *r, uint64_t *v)
{
    rd_longlong(r, v);
}

static inline void rd_shortstr(amqp_reader *r, amqp_bytes *v)
{
    if (!rd_take(r, 1, "truncated shortstr argument")) return;
    uint8_t n = r->p[0];
    if ((size_t)(r->end - r->p) - 1 < n) {
        r->why = "shortstr longer than the frame";
        return;
    }
    *v = (amqp_bytes){.data = r->p + 1, .len = n};
    r->p += 1 + (size_t)n;
}

static inline void rd_longstr(amqp_reader *r, amqp_bytes *v)
{
    if (!rd_take(r, 4, "truncated longstr argument")) return;
    uint32_t n = amqp_wire_get_u32(r->p);
    if ((size_t)(r->end - r->p) - 4 < n) {
        r->why = "longstr longer than the frame";
        return;
    }
    *v = (amqp_bytes){.data = r->p + 4, .len = n};
    r->p += 4 + (size_t)n;
}

static inline void rd_table(amqp_reader *r, amqp_table *v)
{
    if (!rd_take(r, 0, NULL)) return;
    amqp_error terr;
    size_t n = amqp_table_read(r->p, (size_t)(r->end - r->p), v, &terr);
    if (n == 0) {
        r->why = terr.text;
        return;
    }
    r->p += n;
}

static inline void rd_bit(amqp_reader *r, bool *v)
{
    if (r->bit_n == AMQP_BITS_NONE) {
        if (!rd_take(r, 1, "truncated bit argument")) return;
        r->bits = r->p[0];
        r->p += 1;
        r->bit_n = 0;
    }
    if (r->why != NULL) return;
    *v = (r->bits >> r->bit_n) & 1u;
    r->bit_n++;
}

typedef struct amqp_sizer {
    size_t n;
    uint8_t bit_n;
} amqp_sizer;

static inline void sz_fixed(amqp_sizer *s, size_t n)
{
    s->bit_n = AMQP_BITS_NONE;
    s->n += n;
}
static inline void sz_octet(amqp_sizer *s, uint8_t v)
{
    (void)v, sz_fixed(s, 1);
}
static inline void sz_short(amqp_sizer *s, uint16_t v)
{
    (void)v, sz_fixed(s, 2);
}
static inline void sz_long(amqp_sizer *s, uint32_t v)
{
    (void)v, sz_fixed(s, 4);
}
static inline void sz_longlong(amqp_sizer *s, uint64_t v)
{
    (void)v, sz_fixed(s, 8);
}
static inline void sz_timestamp(amqp_sizer *s, uint64_t v)
{
    (void)v, sz_fixed(s, 8);
}
static inline void sz_shortstr(amqp_sizer *s, amqp_bytes v)
{
    sz_fixed(s, 1 + (size_t)v.len);
}
static inline void sz_longstr(amqp_sizer *s, amqp_bytes v)
{
    sz_fixed(s, 4 + (size_t)v.len);
}
static inline void sz_table(amqp_sizer *s, amqp_table v)
{
    sz_fixed(s, 4 + (size_t)v.len);
}
static inline void sz_bit(amqp_sizer *s, bool v)
{
    (void)v;
    if (s->bit_n == AMQP_BITS_NONE || s->bit_n == 8) {
        s->n += 1;
        s->bit_n = 0;
    }
    s->bit_n++;
}

typedef struct amqp_writer {
    uint8_t *p;
    uint8_t *end;
    uint8_t *bits; /* octet holding the open bit run */
    uint8_t bit_n;
    bool no_space;
    bool bad_shortstr;
} amqp_writer;

static inline bool wr_take(amqp_writer *w, size_t n)
{
    w->bit_n = AMQP_BITS_NONE;
    if (w->no_space || (size_t)(w->end - w->p) < n) {
        w->no_space = true;
        return false;
    }
    return true;
}

static inline void wr_octet(amqp_writer *w, uint8_t v)
{
    if (!wr_take(w, 1)) return;
    *w->p++ = v;
}

static inline void wr_short(amqp_writer *w, uint16_t v)
{
    if (!wr_take(w, 2)) return;
    amqp_wire_put_u16(w->p, v);
    w->p += 2;
}

static inline void wr_long(amqp_writer *w, uint32_t v)
{
    if (!wr_take(w, 4)) return;
    amqp_wire_put_u32(w->p, v);
    w->p += 4;
}

static inline void wr_longlong(amqp_writer *w, uint64_t v)
{
    if (!wr_take(w, 8)) return;
    amqp_wire_put_u64(w->p, v);
    w->p += 8;
}

static inline void wr_timestamp(amqp_writer *w, uint64_t v)
{
    wr_longlong(w, v);
}

static inline void wr_shortstr(amqp_writer *w, amqp_bytes v)
{
    ASSERT(v.data != NULL || v.len == 0);
    if (v.len > LIMIT_SHORTSTR_BYTES_MAX) {
        w->bad_shortstr = true;
        w->bit_n = AMQP_BITS_NONE;
        return;
    }
    if (!wr_take(w, 1 + (size_t)v.len)) return;
    *w->p++ = (uint8_t)v.len;
    if (v.len > 0) memcpy(w->p, v.data, v.len);
    w->p += v.len;
}

static inline void wr_longstr(amqp_writer *w, amqp_bytes v)
{
    ASSERT(v.data != NULL || v.len == 0);
    if (!wr_take(w, 4 + (size_t)v.len)) return;
    amqp_wire_put_u32(w->p, v.len);
    if (v.len > 0) memcpy(w->p + 4, v.data, v.len);
    w->p += 4 + (size_t)v.len;
}

static inline void wr_table(amqp_writer *w, amqp_table v)
{
    wr_longstr(w, (amqp_bytes){.data = v.data, .len = v.len});
}

static inline void wr_bit(amqp_writer *w, bool v)
{
    if (w->bit_n == AMQP_BITS_NONE || w->bit_n == 8) {
        if (!wr_take(w, 1)) return;
        w->bits = w->p++;
        *w->bits = 0;
        w->bit_n = 0;
    }
    if (w->no_space) return;
    if (v) *w->bits |= (uint8_t)(1u << w->bit_n);
    w->bit_n++;
}

#endif
