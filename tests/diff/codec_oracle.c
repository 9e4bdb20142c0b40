/*
 * The C side of the differential codec test (tests/diff/test_codec_diff.py,
 * which drives an independent AMQP implementation, pamqp). It reads one
 * request per line on stdin and answers one line on stdout ("ok ..." or
 * "err <reply-code> <text>"):
 *
 *   schema             the method table, one "name class method type:field..."
 *                      line per method, then the basic properties, then "end"
 *   mdec HEX           decode a method payload; answer the re-encoding and a
 *                      dump of the fields
 *   menc DUMP          build a method from a dump, encode it
 *   hdec HEX / henc DUMP   the same for a content header frame payload
 *   fdec FRAME_MAX HEX     split a stream (method frame, optionally content
 *                      header and body frames) with amqp_frame_parse, dump it
 *                      and write it again with the frame writers
 *   fenc FRAME_MAX CHANNEL DUMP [| HDUMP BODYHEX]  write such a stream
 *
 * A dump is space-separated tokens: the method name, then field=value in wire
 * order (numbers in decimal, strings in hex, tables as "{ ... }"). A table
 * entry is KEYHEX=T:VALUE with T the RabbitMQ field type octet; floats are
 * their IEEE bits in hex, decimals "scale,value", nested tables "F{ ... }",
 * arrays "A[ ... ]". Tables built from a dump go through amqp_table_builder.
 * Memory: one arena per request, reset before the next; nothing is freed.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "net/amqp_frame.h"
#include "net/amqp_method.h"
#include "net/amqp_props.h"
#include "net/amqp_table.h"

enum { ARENA_BYTES = 16 << 20, TOKEN_BYTES_MAX = 64 };

static uint8_t arena[ARENA_BYTES];
static size_t arena_used;

typedef struct req {
    char *save; /* strtok_r state over the request line */
    const char *why; /* first parse failure */
} req;

static void *arena_take(size_t n)
{
    if (ARENA_BYTES - arena_used < n) {
        fprintf(stderr, "codec_oracle: arena exhausted\n");
        exit(2);
    }
    void *p = arena + arena_used;
    arena_used += n;
    return p;
}

static char *tok(req *r)
{
    char *t = strtok_r(NULL, " \n", &r->save);
    if (t == NULL && r->why == NULL) r->why = "missing token";
    return t;
}

/* The next token, or "" when the line has ended (an empty hex string). */
static const char *opt_tok(req *r)
{
    char *t = strtok_r(NULL, " \n", &r->save);
    return t != NULL ? t : "";
}

static void fail(req *r, const char *why)
{
    if (r->why == NULL) r->why = why;
}

/* ---- hex ---- */

static void put_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 15]);
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes hex text into the arena; NUL-terminated so keys can be C strings. */
static amqp_bytes hex_take(req *r, const char *s)
{
    size_t n = strlen(s);
    uint8_t *p = arena_take(n / 2 + 1);
    if (n % 2 != 0) fail(r, "odd hex length");
    for (size_t i = 0; i + 1 < n; i += 2) {
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) fail(r, "bad hex digit");
        p[i / 2] = (uint8_t)(hi << 4 | (lo & 15));
    }
    p[n / 2] = 0;
    return (amqp_bytes){.data = p, .len = (uint32_t)(n / 2)};
}

/* ---- dumping ---- */

static void dump_table(amqp_table t);
static void dump_array(amqp_array a);

static void dump_field(const amqp_field *f)
{
    uint32_t u32;
    uint64_t u64;
    printf("%c:", f->type);
    switch (f->type) {
    case AMQP_FIELD_BOOL: printf("%d", f->v.boolean); break;
    case AMQP_FIELD_INT8: printf("%d", f->v.i8); break;
    case AMQP_FIELD_UINT8: printf("%u", f->v.u8); break;
    case AMQP_FIELD_INT16: printf("%d", f->v.i16); break;
    case AMQP_FIELD_UINT16: printf("%u", f->v.u16); break;
    case AMQP_FIELD_INT32: printf("%" PRId32, f->v.i32); break;
    case AMQP_FIELD_UINT32: printf("%" PRIu32, f->v.u32); break;
    case AMQP_FIELD_INT64: printf("%" PRId64, f->v.i64); break;
    case AMQP_FIELD_FLOAT:
        memcpy(&u32, &f->v.f32, sizeof(u32));
        printf("%08" PRIx32, u32);
        break;
    case AMQP_FIELD_DOUBLE:
        memcpy(&u64, &f->v.f64, sizeof(u64));
        printf("%016" PRIx64, u64);
        break;
    case AMQP_FIELD_DECIMAL: printf("%u,%" PRIu32, f->v.decimal.scale, f->v.decimal.value); break;
    case AMQP_FIELD_LONGSTR:
    case AMQP_FIELD_BYTES: put_hex(f->v.bytes.data, f->v.bytes.len); break;
    case AMQP_FIELD_TIMESTAMP: printf("%" PRIu64, f->v.timestamp_s); break;
    case AMQP_FIELD_VOID: break;
    case AMQP_FIELD_TABLE: dump_table(f->v.table); break;
    case AMQP_FIELD_ARRAY: dump_array(f->v.array); break;
    default: printf("?"); break;
    }
}

/* "{ k=v ... }"; the field type prefix ("F:" / "A:") was printed by the caller. */
static void dump_table(amqp_table t)
{
    amqp_table_iter it;
    amqp_bytes k;
    amqp_field v;
    printf("{");
    amqp_table_iter_init(&it, t);
    while (amqp_table_iter_next(&it, &k, &v)) {
        putchar(' ');
        put_hex(k.data, k.len);
        putchar('=');
        dump_field(&v);
    }
    printf(" }");
}

static void dump_array(amqp_array a)
{
    amqp_table_iter it;
    amqp_field v;
    printf("[");
    amqp_array_iter_init(&it, a);
    while (amqp_array_iter_next(&it, &v)) {
        putchar(' ');
        dump_field(&v);
    }
    printf(" ]");
}

static void dump_bit(const char *name, bool v) { printf(" %s=%d", name, v); }
static void dump_octet(const char *name, uint8_t v) { printf(" %s=%u", name, v); }
static void dump_short(const char *name, uint16_t v) { printf(" %s=%u", name, v); }
static void dump_long(const char *name, uint32_t v) { printf(" %s=%" PRIu32, name, v); }
static void dump_longlong(const char *name, uint64_t v) { printf(" %s=%" PRIu64, name, v); }
static void dump_timestamp(const char *name, uint64_t v) { dump_longlong(name, v); }
static void dump_shortstr(const char *name, amqp_bytes v)
{
    printf(" %s=", name);
    put_hex(v.data, v.len);
}
static void dump_longstr(const char *name, amqp_bytes v) { dump_shortstr(name, v); }
static void dump_table_arg(const char *name, amqp_table v)
{
    printf(" %s=", name);
    dump_table(v);
}

#define DUMP_FIELD(type, field) DUMP_##type(#field, a->field);
#define DUMP_bit dump_bit
#define DUMP_octet dump_octet
#define DUMP_short dump_short
#define DUMP_long dump_long
#define DUMP_longlong dump_longlong
#define DUMP_timestamp dump_timestamp
#define DUMP_shortstr dump_shortstr
#define DUMP_longstr dump_longstr
#define DUMP_table dump_table_arg
#define DUMP_CASE(E, n, s, c, m, sync, content)                                                    \
    case AMQP_##E: {                                                                               \
        const amqp_##n *a = &meth->a.n;                                                            \
        (void)a;                                                                                   \
        AMQP_ARGS_##n(DUMP_FIELD) break;                                                           \
    }

static void dump_method(const amqp_method *meth)
{
    printf("%s", amqp_method_name(meth->id));
    switch (meth->id) {
        AMQP_METHOD_LIST(DUMP_CASE)
    default: break;
    }
}

#define DUMP_PROP(F, bit, type, field)                                                             \
    if (p->flags & AMQP_PROP_##F) DUMP_##type(#field, p->field);

static void dump_props(const amqp_basic_props *p)
{
    printf(" flags=%u", p->flags);
    AMQP_BASIC_PROPS(DUMP_PROP)
}

/* ---- parsing a dump ---- */

/* The value of the next token, which must be "name=VALUE". */
static char *arg_value(req *r, const char *name)
{
    char *t = tok(r);
    if (t == NULL) return NULL;
    size_t n = strlen(name);
    if (strncmp(t, name, n) != 0 || t[n] != '=') {
        fail(r, "argument name mismatch");
        return NULL;
    }
    return t + n + 1;
}

static uint64_t parse_uint(req *r, const char *s, uint64_t max)
{
    char *end;
    if (s == NULL) return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v > max) fail(r, "bad unsigned number");
    return v;
}

static int64_t parse_int(req *r, const char *s, int64_t min, int64_t max)
{
    char *end;
    if (s == NULL) return 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) fail(r, "bad signed number");
    return v;
}

static void parse_entries(req *r, amqp_table_builder *b, bool array);

/* One field token "T:VALUE" (a container also takes the tokens up to its close). */
static void parse_field(req *r, amqp_table_builder *b, const char *key, const char *t)
{
    amqp_field f = {.type = (uint8_t)t[0]};
    if (t[0] == '\0' || t[1] != ':') return fail(r, "bad field token");
    const char *v = t + 2;
    uint64_t bits;
    switch (t[0]) {
    case 't': f.v.boolean = parse_uint(r, v, 1); break;
    case 'b': f.v.i8 = (int8_t)parse_int(r, v, INT8_MIN, INT8_MAX); break;
    case 'B': f.v.u8 = (uint8_t)parse_uint(r, v, UINT8_MAX); break;
    case 's': f.v.i16 = (int16_t)parse_int(r, v, INT16_MIN, INT16_MAX); break;
    case 'u': f.v.u16 = (uint16_t)parse_uint(r, v, UINT16_MAX); break;
    case 'I': f.v.i32 = (int32_t)parse_int(r, v, INT32_MIN, INT32_MAX); break;
    case 'i': f.v.u32 = (uint32_t)parse_uint(r, v, UINT32_MAX); break;
    case 'l': f.v.i64 = parse_int(r, v, INT64_MIN, INT64_MAX); break;
    case 'T': f.v.timestamp_s = parse_uint(r, v, UINT64_MAX); break;
    case 'f': {
        uint32_t u32 = (uint32_t)strtoul(v, NULL, 16);
        memcpy(&f.v.f32, &u32, sizeof(u32));
        break;
    }
    case 'd':
        bits = strtoull(v, NULL, 16);
        memcpy(&f.v.f64, &bits, sizeof(bits));
        break;
    case 'D': {
        unsigned scale;
        uint32_t value;
        if (sscanf(v, "%u,%" SCNu32, &scale, &value) != 2 || scale > 255) fail(r, "bad decimal");
        f.v.decimal = (amqp_decimal){.scale = (uint8_t)scale, .value = value};
        break;
    }
    case 'S':
    case 'x': f.v.bytes = hex_take(r, v); break;
    case 'V': break;
    case 'F':
        if (strcmp(v, "{") != 0) return fail(r, "bad table open");
        amqp_table_open_table(b, key);
        parse_entries(r, b, false);
        amqp_table_close(b);
        return;
    case 'A':
        if (strcmp(v, "[") != 0) return fail(r, "bad array open");
        amqp_table_open_array(b, key);
        parse_entries(r, b, true);
        amqp_table_close(b);
        return;
    default: return fail(r, "unknown field type");
    }
    amqp_table_add(b, key, &f);
}

/* Entries up to the closing "}" (table) or "]" (array). */
static void parse_entries(req *r, amqp_table_builder *b, bool array)
{
    for (;;) {
        char *t = tok(r);
        if (t == NULL || r->why != NULL) return;
        if (strcmp(t, array ? "]" : "}") == 0) return;
        if (array) {
            parse_field(r, b, NULL, t);
            continue;
        }
        char *eq = strchr(t, '=');
        if (eq == NULL) return fail(r, "table entry without '='");
        *eq = '\0';
        amqp_bytes key = hex_take(r, t);
        if (strlen((const char *)key.data) != key.len) return fail(r, "NUL in a key");
        parse_field(r, b, (const char *)key.data, eq + 1);
    }
}

static amqp_table parse_table_value(req *r, const char *v)
{
    amqp_table t = {.data = arena, .len = 0};
    if (v == NULL) return t;
    if (strcmp(v, "{") != 0) {
        fail(r, "bad table argument");
        return t;
    }
    size_t cap = (ARENA_BYTES - arena_used) / 2;
    amqp_table_builder b;
    amqp_table_builder_init(&b, arena_take(cap), cap);
    parse_entries(r, &b, false);
    if (r->why != NULL) return t;
    if (!amqp_table_builder_finish(&b, &t)) fail(r, "table builder failed");
    return t;
}

static void parse_bit(req *r, const char *n, bool *v) { *v = parse_uint(r, arg_value(r, n), 1); }
static void parse_octet(req *r, const char *n, uint8_t *v)
{
    *v = (uint8_t)parse_uint(r, arg_value(r, n), UINT8_MAX);
}
static void parse_short(req *r, const char *n, uint16_t *v)
{
    *v = (uint16_t)parse_uint(r, arg_value(r, n), UINT16_MAX);
}
static void parse_long(req *r, const char *n, uint32_t *v)
{
    *v = (uint32_t)parse_uint(r, arg_value(r, n), UINT32_MAX);
}
static void parse_longlong(req *r, const char *n, uint64_t *v)
{
    *v = parse_uint(r, arg_value(r, n), UINT64_MAX);
}
static void parse_timestamp(req *r, const char *n, uint64_t *v) { parse_longlong(r, n, v); }
static void parse_longstr(req *r, const char *n, amqp_bytes *v)
{
    const char *s = arg_value(r, n);
    *v = s != NULL ? hex_take(r, s) : (amqp_bytes){0};
}
static void parse_shortstr(req *r, const char *n, amqp_bytes *v) { parse_longstr(r, n, v); }
static void parse_table(req *r, const char *n, amqp_table *v)
{
    *v = parse_table_value(r, arg_value(r, n));
}

#define PARSE_FIELD(type, field) parse_##type(r, #field, &a->field);
#define PARSE_CASE(E, n, s, c, m, sync, content)                                                   \
    case AMQP_##E: {                                                                               \
        amqp_##n *a = &meth->a.n;                                                                  \
        (void)a;                                                                                   \
        AMQP_ARGS_##n(PARSE_FIELD) break;                                                          \
    }

static void parse_method(req *r, amqp_method *meth)
{
    const char *name = tok(r);
    if (name == NULL) return;
    memset(meth, 0, sizeof(*meth));
    uint32_t i;
    for (i = 0; i < AMQP_METHOD_COUNT; i++)
        if (strcmp(amqp_method_name(amqp_method_at(i)), name) == 0) break;
    if (i == AMQP_METHOD_COUNT) return fail(r, "unknown method name");
    meth->id = amqp_method_at(i);
    switch (meth->id) {
        AMQP_METHOD_LIST(PARSE_CASE)
    default: break;
    }
}

#define PARSE_PROP(F, bit, type, field)                                                            \
    if (p->flags & AMQP_PROP_##F) parse_##type(r, #field, &p->field);

/* "class=C weight=W body_size=N flags=F" then the present properties. */
static void parse_header(req *r, uint16_t *class_id, uint64_t *body_size, amqp_basic_props *p)
{
    memset(p, 0, sizeof(*p));
    *class_id = (uint16_t)parse_uint(r, arg_value(r, "class"), UINT16_MAX);
    (void)parse_uint(r, arg_value(r, "weight"), 0);
    *body_size = parse_uint(r, arg_value(r, "body_size"), UINT64_MAX);
    p->flags = (uint16_t)parse_uint(r, arg_value(r, "flags"), AMQP_PROP_ALL);
    AMQP_BASIC_PROPS(PARSE_PROP)
}

/* ---- requests ---- */

static void answer_err(const amqp_error *err)
{
    printf("err %u %s\n", err->reply_code, err->text);
}

static void answer_parse_err(const req *r) { printf("err 0 %s\n", r->why); }

/* Encodes a method into the arena; NULL with *err on failure. */
static uint8_t *method_encode(const amqp_method *m, size_t *len, amqp_error *err)
{
    size_t n = amqp_method_size(m);
    uint8_t *out = arena_take(n);
    ssize_t w = amqp_method_encode(m, out, n, err);
    if (w < 0) return NULL;
    *len = (size_t)w;
    return out;
}

static void req_mdec(req *r, const char *hex)
{
    amqp_bytes in = hex_take(r, hex);
    if (r->why != NULL) return answer_parse_err(r);
    amqp_method m;
    amqp_error err;
    size_t len;
    if (!amqp_method_decode(in.data, in.len, &m, &err)) return answer_err(&err);
    uint8_t *enc = method_encode(&m, &len, &err);
    if (enc == NULL) return answer_err(&err);
    printf("ok ");
    put_hex(enc, len);
    putchar(' ');
    dump_method(&m);
    putchar('\n');
}

static void req_menc(req *r)
{
    amqp_method m;
    amqp_error err;
    size_t len;
    parse_method(r, &m);
    if (r->why != NULL) return answer_parse_err(r);
    uint8_t *enc = method_encode(&m, &len, &err);
    if (enc == NULL) return answer_err(&err);
    printf("ok ");
    put_hex(enc, len);
    putchar('\n');
}

/* Re-encodes a content header payload from its full property decode. */
static uint8_t *header_encode(uint16_t class_id, uint64_t body_size, const amqp_basic_props *p,
                              size_t *len, amqp_error *err)
{
    size_t n = 12 + amqp_props_size(p);
    uint8_t *out = arena_take(n);
    out[0] = (uint8_t)(class_id >> 8);
    out[1] = (uint8_t)class_id;
    out[2] = out[3] = 0; /* weight */
    for (int i = 0; i < 8; i++) out[4 + i] = (uint8_t)(body_size >> (56 - 8 * i));
    if (amqp_props_encode(p, out + 12, n - 12, err) < 0) return NULL;
    *len = n;
    return out;
}

static void dump_header(const amqp_content_header *h, const amqp_basic_props *p)
{
    printf("class=%u weight=0 body_size=%" PRIu64, h->class_id, h->body_size);
    dump_props(p);
}

/* Decodes a header payload both ways; the broker's view must match the full one. */
static bool header_decode(const amqp_bytes in, amqp_content_header *h, amqp_basic_props *p,
                          amqp_error *err)
{
    if (!amqp_content_header_decode(in.data, in.len, h, err)) return false;
    if (!amqp_props_decode(h->props_raw.data, h->props_raw.len, p, err)) {
        fprintf(stderr, "codec_oracle: content header decoded but its properties did not\n");
        exit(2);
    }
    bool same = h->flags == p->flags && h->delivery_mode == p->delivery_mode &&
                h->priority == p->priority && amqp_bytes_equal(h->expiration, p->expiration) &&
                amqp_bytes_equal(h->reply_to, p->reply_to) &&
                amqp_bytes_equal(h->user_id, p->user_id) && h->headers.len == p->headers.len;
    if (!same) {
        fprintf(stderr, "codec_oracle: content header view differs from the full decode\n");
        exit(2);
    }
    return true;
}

static void req_hdec(req *r, const char *hex)
{
    amqp_bytes in = hex_take(r, hex);
    if (r->why != NULL) return answer_parse_err(r);
    amqp_content_header h;
    amqp_basic_props p;
    amqp_error err;
    size_t len;
    if (!header_decode(in, &h, &p, &err)) return answer_err(&err);
    uint8_t *enc = header_encode(h.class_id, h.body_size, &p, &len, &err);
    if (enc == NULL) return answer_err(&err);
    printf("ok ");
    put_hex(enc, len);
    putchar(' ');
    dump_header(&h, &p);
    putchar('\n');
}

static void req_henc(req *r)
{
    uint16_t class_id;
    uint64_t body_size;
    amqp_basic_props p;
    amqp_error err;
    size_t len;
    parse_header(r, &class_id, &body_size, &p);
    if (r->why != NULL) return answer_parse_err(r);
    uint8_t *enc = header_encode(class_id, body_size, &p, &len, &err);
    if (enc == NULL) return answer_err(&err);
    printf("ok ");
    put_hex(enc, len);
    putchar('\n');
}

/* ---- frame streams ---- */

enum { UNITS_MAX = 64 };

/* A heartbeat, a method without content, or a method with its content. */
typedef struct unit {
    uint8_t kind; /* AMQP_FRAME_HEARTBEAT or AMQP_FRAME_METHOD */
    uint16_t channel;
    amqp_method method;
    bool has_content;
    amqp_content_header header;
    amqp_basic_props props;
    amqp_bytes body;
} unit;

static unit units[UNITS_MAX];

/* Writes the units with the frame writers into the arena. */
static uint8_t *units_write(const unit *u, size_t count, uint32_t frame_max, size_t *len,
                            amqp_error *err)
{
    size_t cap = (ARENA_BYTES - arena_used) / 2;
    uint8_t *out = arena_take(cap);
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        ssize_t n;
        if (u[i].kind == AMQP_FRAME_HEARTBEAT) {
            n = amqp_frame_write_heartbeat(out + at, cap - at, err);
        } else {
            n = amqp_frame_write_method(out + at, cap - at, u[i].channel, &u[i].method, err);
            if (n >= 0 && u[i].has_content) {
                at += (size_t)n;
                n = amqp_frame_write_content(out + at, cap - at, u[i].channel, frame_max,
                                             u[i].header.class_id, u[i].header.props_raw,
                                             u[i].body.data, u[i].body.len, err);
            }
        }
        if (n < 0) return NULL;
        at += (size_t)n;
    }
    *len = at;
    return out;
}

static void units_dump(const unit *u, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (u[i].kind == AMQP_FRAME_HEARTBEAT) {
            printf(" heartbeat");
            continue;
        }
        printf(" method ch=%u ", u[i].channel);
        dump_method(&u[i].method);
        if (!u[i].has_content) continue;
        printf(" content ");
        dump_header(&u[i].header, &u[i].props);
        printf(" body=");
        put_hex(u[i].body.data, u[i].body.len);
    }
}

/* Next frame of the stream; false with *err (a truncated stream is 501 too). */
static bool next_frame(const amqp_bytes in, size_t *off, uint32_t frame_max, amqp_frame *f,
                       amqp_error *err)
{
    ssize_t n = amqp_frame_parse(in.data + *off, in.len - *off, frame_max, f, err);
    if (n == 0) amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, 0, 0, "truncated stream");
    if (n <= 0) return false;
    *off += (size_t)n;
    return true;
}

/* Reads the content of u (header frame, then body frames up to body_size). */
static bool content_read(const amqp_bytes in, size_t *off, uint32_t frame_max, unit *u,
                         amqp_error *err)
{
    amqp_frame f;
    if (!next_frame(in, off, frame_max, &f, err)) return false;
    if (f.type != AMQP_FRAME_HEADER || f.channel != u->channel)
        return amqp_error_set(err, AMQP_REPLY_UNEXPECTED_FRAME, 0, 0, "expected a header");
    if (!header_decode((amqp_bytes){f.payload, f.payload_len}, &u->header, &u->props, err))
        return false;
    if (u->header.body_size > in.len)
        return amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, 0, 0, "body larger than stream");
    uint8_t *body = arena_take(u->header.body_size + 1);
    uint64_t got = 0;
    while (got < u->header.body_size) {
        if (!next_frame(in, off, frame_max, &f, err)) return false;
        if (f.type != AMQP_FRAME_BODY || f.channel != u->channel ||
            f.payload_len > u->header.body_size - got)
            return amqp_error_set(err, AMQP_REPLY_UNEXPECTED_FRAME, 0, 0, "bad body frame");
        memcpy(body + got, f.payload, f.payload_len);
        got += f.payload_len;
    }
    u->body = (amqp_bytes){body, (uint32_t)got};
    return true;
}

static void req_fdec(req *r, const char *frame_max_s, const char *hex)
{
    uint32_t frame_max =
        (uint32_t)parse_uint(r, frame_max_s, LIMIT_FRAME_BYTES_MAX);
    amqp_bytes in = hex_take(r, hex);
    if (r->why == NULL && frame_max < LIMIT_FRAME_BYTES_MIN) fail(r, "frame_max too small");
    if (r->why != NULL) return answer_parse_err(r);
    size_t off = 0, count = 0;
    amqp_error err;
    while (off < in.len) {
        amqp_frame f;
        if (count == UNITS_MAX) return fail(r, "too many frames"), answer_parse_err(r);
        unit *u = &units[count++];
        memset(u, 0, sizeof(*u));
        if (!next_frame(in, &off, frame_max, &f, &err)) return answer_err(&err);
        u->kind = f.type;
        u->channel = f.channel;
        if (f.type == AMQP_FRAME_HEARTBEAT) continue;
        if (f.type != AMQP_FRAME_METHOD) return fail(r, "expected a method"), answer_parse_err(r);
        if (!amqp_method_decode(f.payload, f.payload_len, &u->method, &err))
            return answer_err(&err);
        u->has_content = amqp_method_has_content(u->method.id);
        if (u->has_content && !content_read(in, &off, frame_max, u, &err)) return answer_err(&err);
    }
    size_t len;
    uint8_t *enc = units_write(units, count, frame_max, &len, &err);
    if (enc == NULL) return answer_err(&err);
    printf("ok ");
    put_hex(enc, len);
    units_dump(units, count);
    putchar('\n');
}

static void req_fenc(req *r)
{
    uint32_t frame_max = (uint32_t)parse_uint(r, tok(r), LIMIT_FRAME_BYTES_MAX);
    size_t count = 0;
    char *t;
    while (r->why == NULL && (t = strtok_r(NULL, " \n", &r->save)) != NULL) {
        if (count == UNITS_MAX) return fail(r, "too many units"), answer_parse_err(r);
        unit *u = &units[count++];
        memset(u, 0, sizeof(*u));
        if (strcmp(t, "heartbeat") == 0) {
            u->kind = AMQP_FRAME_HEARTBEAT;
            continue;
        }
        if (strcmp(t, "method") != 0) return fail(r, "expected a unit"), answer_parse_err(r);
        u->kind = AMQP_FRAME_METHOD;
        u->channel = (uint16_t)parse_uint(r, arg_value(r, "ch"), UINT16_MAX);
        parse_method(r, &u->method);
        u->has_content = r->why == NULL && amqp_method_has_content(u->method.id);
        if (!u->has_content) continue;
        if ((t = tok(r)) == NULL || strcmp(t, "content") != 0) fail(r, "expected content");
        uint64_t body_size;
        parse_header(r, &u->header.class_id, &body_size, &u->props);
        const char *body = arg_value(r, "body");
        u->body = hex_take(r, body != NULL ? body : "");
        size_t n;
        amqp_error err;
        uint8_t *raw = header_encode(u->header.class_id, body_size, &u->props, &n, &err);
        if (raw == NULL) return answer_err(&err);
        u->header.props_raw = (amqp_bytes){raw + 12, (uint32_t)(n - 12)};
        if (body_size != u->body.len) fail(r, "body_size differs from the body");
    }
    if (r->why != NULL) return answer_parse_err(r);
    size_t len;
    amqp_error err;
    uint8_t *enc = units_write(units, count, frame_max, &len, &err);
    if (enc == NULL) return answer_err(&err);
    printf("ok ");
    put_hex(enc, len);
    putchar('\n');
}

/* ---- the table's shape, so the test can check it against pamqp's ---- */

#define SCHEMA_FIELD(type, field) printf(" %s:%s", #type, #field);
#define SCHEMA_CASE(E, n, s, c, m, sync, content)                                                  \
    printf("%s %d %d", s, c, m);                                                                   \
    AMQP_ARGS_##n(SCHEMA_FIELD) putchar('\n');
#define SCHEMA_PROP(F, bit, type, field) printf(" %s:%s:%d", #type, #field, bit);

static void req_schema(void)
{
    AMQP_METHOD_LIST(SCHEMA_CASE)
    printf("properties");
    AMQP_BASIC_PROPS(SCHEMA_PROP)
    printf("\nend\n");
}

int main(void)
{
    char *line = NULL;
    size_t line_cap = 0;
    while (getline(&line, &line_cap, stdin) > 0) {
        req r = {.save = NULL, .why = NULL};
        arena_used = 0;
        char *verb = strtok_r(line, " \n", &r.save);
        if (verb == NULL) continue;
        if (strcmp(verb, "schema") == 0) req_schema();
        else if (strcmp(verb, "mdec") == 0) req_mdec(&r, opt_tok(&r));
        else if (strcmp(verb, "menc") == 0) req_menc(&r);
        else if (strcmp(verb, "hdec") == 0) req_hdec(&r, opt_tok(&r));
        else if (strcmp(verb, "henc") == 0) req_henc(&r);
        else if (strcmp(verb, "fdec") == 0) {
            const char *frame_max = opt_tok(&r);
            req_fdec(&r, frame_max, opt_tok(&r));
        } else if (strcmp(verb, "fenc") == 0) req_fenc(&r);
        else if (strcmp(verb, "quit") == 0) break;
        else printf("err 0 unknown request\n");
        fflush(stdout);
    }
    free(line);
    return 0;
}
