/*
 * Field tables and arrays (RabbitMQ's type set: t b B s u I i l f d D S x A T
 * F V). Decoding is validation plus slicing: a table stays the raw bytes of
 * its entries, checked once by amqp_table_validate() so the iterator can walk
 * it later without re-checking. Recursion into nested tables and arrays is
 * bounded by LIMIT_TABLE_DEPTH_MAX, so a hostile peer cannot exhaust the
 * stack. The builder writes into a caller's buffer and patches container
 * lengths when they close; it never allocates.
 */
#include "net/amqp_table.h"

#include <string.h>

#include "core/assert.h"
#include "core/limits.h"
#include "net/amqp_wire.h"

STATIC_ASSERT(LIMIT_TABLE_DEPTH_MAX >= 2, "tables must nest at least once");

/* Bytes of the value after the type octet, for fixed-size types; 0 for
 * variable ones ('S' 'x' 'A' 'F', 4-byte length first) and void; -1 unknown. */
static int field_fixed_bytes(uint8_t type)
{
    switch (type) {
    case AMQP_FIELD_BOOL:
    case AMQP_FIELD_INT8:
    case AMQP_FIELD_UINT8:
        return 1;
    case AMQP_FIELD_INT16:
    case AMQP_FIELD_UINT16:
        return 2;
    case AMQP_FIELD_INT32:
    case AMQP_FIELD_UINT32:
    case AMQP_FIELD_FLOAT:
        return 4;
    case AMQP_FIELD_DECIMAL:
        return 5;
    case AMQP_FIELD_INT64:
    case AMQP_FIELD_DOUBLE:
    case AMQP_FIELD_TIMESTAMP:
        return 8;
    case AMQP_FIELD_LONGSTR:
    case AMQP_FIELD_BYTES:
    case AMQP_FIELD_ARRAY:
    case AMQP_FIELD_TABLE:
    case AMQP_FIELD_VOID:
        return 0;
    default:
        return -1;
    }
}

static bool field_is_variable(uint8_t type)
{
    return type == AMQP_FIELD_LONGSTR || type == AMQP_FIELD_BYTES || type == AMQP_FIELD_ARRAY ||
           type == AMQP_FIELD_TABLE;
}

static void field_read_fixed(uint8_t type, const uint8_t *p, amqp_field *out)
{
    uint32_t u32;
    uint64_t u64;
    switch (type) {
    case AMQP_FIELD_BOOL:
        out->v.boolean = p[0] != 0;
        break;
    case AMQP_FIELD_INT8:
        out->v.i8 = (int8_t)p[0];
        break;
    case AMQP_FIELD_UINT8:
        out->v.u8 = p[0];
        break;
    case AMQP_FIELD_INT16:
        out->v.i16 = (int16_t)amqp_wire_get_u16(p);
        break;
    case AMQP_FIELD_UINT16:
        out->v.u16 = amqp_wire_get_u16(p);
        break;
    case AMQP_FIELD_INT32:
        out->v.i32 = (int32_t)amqp_wire_get_u32(p);
        break;
    case AMQP_FIELD_UINT32:
        out->v.u32 = amqp_wire_get_u32(p);
        break;
    case AMQP_FIELD_FLOAT:
        u32 = amqp_wire_get_u32(p);
        memcpy(&out->v.f32, &u32, sizeof(u32));
        break;
    case AMQP_FIELD_DECIMAL:
        out->v.decimal.scale = p[0];
        out->v.decimal.value = amqp_wire_get_u32(p + 1);
        break;
    case AMQP_FIELD_INT64:
        out->v.i64 = (int64_t)amqp_wire_get_u64(p);
        break;
    case AMQP_FIELD_DOUBLE:
        u64 = amqp_wire_get_u64(p);
        memcpy(&out->v.f64, &u64, sizeof(u64));
        break;
    case AMQP_FIELD_TIMESTAMP:
        out->v.timestamp_s = amqp_wire_get_u64(p);
        break;
    default:
        UNREACHABLE();
    }
}

size_t amqp_field_decode(const uint8_t *p, size_t len, amqp_field *out)
{
    ASSERT(p != NULL || len == 0);
    ASSERT(out != NULL);
    if (len < 1) return 0;
    uint8_t type = p[0];
    int fixed = field_fixed_bytes(type);
    if (fixed < 0) return 0;
    out->type = type;
    if (type == AMQP_FIELD_VOID) return 1;
    if (!field_is_variable(type)) {
        if (len - 1 < (size_t)fixed) return 0;
        field_read_fixed(type, p + 1, out);
        return 1 + (size_t)fixed;
    }
    if (len - 1 < 4) return 0;
    uint32_t n = amqp_wire_get_u32(p + 1);
    if (len - 5 < n) return 0;
    /* amqp_bytes, amqp_table and amqp_array share one layout. */
    out->v.bytes = (amqp_bytes){.data = p + 5, .len = n};
    return 5 + (size_t)n;
}

static size_t field_encoded_bytes(const amqp_field *f)
{
    int fixed = field_fixed_bytes(f->type);
    if (fixed < 0) return 0;
    if (!field_is_variable(f->type)) return 1 + (size_t)fixed;
    return 5 + (size_t)f->v.bytes.len;
}

static void field_write_fixed(const amqp_field *f, uint8_t *p)
{
    uint32_t u32;
    uint64_t u64;
    switch (f->type) {
    case AMQP_FIELD_BOOL:
        p[0] = f->v.boolean ? 1 : 0;
        break;
    case AMQP_FIELD_INT8:
        p[0] = (uint8_t)f->v.i8;
        break;
    case AMQP_FIELD_UINT8:
        p[0] = f->v.u8;
        break;
    case AMQP_FIELD_INT16:
        amqp_wire_put_u16(p, (uint16_t)f->v.i16);
        break;
    case AMQP_FIELD_UINT16:
        amqp_wire_put_u16(p, f->v.u16);
        break;
    case AMQP_FIELD_INT32:
        amqp_wire_put_u32(p, (uint32_t)f->v.i32);
        break;
    case AMQP_FIELD_UINT32:
        amqp_wire_put_u32(p, f->v.u32);
        break;
    case AMQP_FIELD_FLOAT:
        memcpy(&u32, &f->v.f32, sizeof(u32));
        amqp_wire_put_u32(p, u32);
        break;
    case AMQP_FIELD_DECIMAL:
        p[0] = f->v.decimal.scale;
        amqp_wire_put_u32(p + 1, f->v.decimal.value);
        break;
    case AMQP_FIELD_INT64:
        amqp_wire_put_u64(p, (uint64_t)f->v.i64);
        break;
    case AMQP_FIELD_DOUBLE:
        memcpy(&u64, &f->v.f64, sizeof(u64));
        amqp_wire_put_u64(p, u64);
        break;
    case AMQP_FIELD_TIMESTAMP:
        amqp_wire_put_u64(p, f->v.timestamp_s);
        break;
    default:
        UNREACHABLE();
    }
}

size_t amqp_field_encode(const amqp_field *f, uint8_t *out, size_t cap)
{
    ASSERT(f != NULL);
    ASSERT(out != NULL || cap == 0);
    size_t n = field_encoded_bytes(f);
    if (n == 0 || n > cap) return 0;
    out[0] = f->type;
    if (f->type == AMQP_FIELD_VOID) return 1;
    if (!field_is_variable(f->type)) {
        field_write_fixed(f, out + 1);
        return n;
    }
    ASSERT(f->v.bytes.data != NULL || f->v.bytes.len == 0);
    amqp_wire_put_u32(out + 1, f->v.bytes.len);
    if (f->v.bytes.len > 0) memcpy(out + 5, f->v.bytes.data, f->v.bytes.len);
    return n;
}

/* ---- validation ---- */

static bool table_validate_at(const uint8_t *p, size_t len, uint32_t depth, amqp_error *err);
static bool array_validate_at(const uint8_t *p, size_t len, uint32_t depth, amqp_error *err);

/* Checks one value (type octet first) at depth; returns bytes or 0. */
static size_t field_validate_at(const uint8_t *p, size_t len, uint32_t depth, amqp_error *err)
{
    ASSERT(len > 0);
    ASSERT(depth >= 1 && depth <= LIMIT_TABLE_DEPTH_MAX);
    if (field_fixed_bytes(p[0]) < 0) {
        amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "unknown field type");
        return 0;
    }
    amqp_field f;
    size_t n = amqp_field_decode(p, len, &f);
    if (n == 0) {
        amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "truncated field value");
        return 0;
    }
    if (f.type == AMQP_FIELD_TABLE &&
        !table_validate_at(f.v.table.data, f.v.table.len, depth + 1, err))
        return 0;
    if (f.type == AMQP_FIELD_ARRAY &&
        !array_validate_at(f.v.array.data, f.v.array.len, depth + 1, err))
        return 0;
    return n;
}

static bool depth_ok(uint32_t depth, amqp_error *err)
{
    if (depth <= LIMIT_TABLE_DEPTH_MAX) return true;
    return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "field table nesting too deep");
}

static bool table_validate_at(const uint8_t *p, size_t len, uint32_t depth, amqp_error *err)
{
    ASSERT(p != NULL || len == 0);
    ASSERT(depth >= 1);
    if (!depth_ok(depth, err)) return false;
    size_t off = 0;
    while (off < len) {
        size_t name_len = p[off];
        if (len - off < 1 + name_len + 1)
            return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "truncated field name");
        off += 1 + name_len;
        size_t n = field_validate_at(p + off, len - off, depth, err);
        if (n == 0) return false;
        off += n;
    }
    ASSERT(off == len);
    return true;
}

static bool array_validate_at(const uint8_t *p, size_t len, uint32_t depth, amqp_error *err)
{
    ASSERT(p != NULL || len == 0);
    ASSERT(depth >= 1);
    if (!depth_ok(depth, err)) return false;
    size_t off = 0;
    while (off < len) {
        size_t n = field_validate_at(p + off, len - off, depth, err);
        if (n == 0) return false;
        off += n;
    }
    ASSERT(off == len);
    return true;
}

bool amqp_table_validate(amqp_table t, amqp_error *err)
{
    return table_validate_at(t.data, t.len, 1, err);
}

bool amqp_array_validate(amqp_array a, amqp_error *err)
{
    return array_validate_at(a.data, a.len, 1, err);
}

size_t amqp_table_read(const uint8_t *p, size_t len, amqp_table *out, amqp_error *err)
{
    ASSERT(p != NULL || len == 0);
    ASSERT(out != NULL);
    if (len < 4) {
        amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "truncated field table");
        return 0;
    }
    uint32_t n = amqp_wire_get_u32(p);
    if (len - 4 < n) {
        amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "truncated field table");
        return 0;
    }
    amqp_table t = {.data = p + 4, .len = n};
    if (!amqp_table_validate(t, err)) return 0;
    *out = t;
    return 4 + (size_t)n;
}

/* ---- iteration ---- */

void amqp_table_iter_init(amqp_table_iter *it, amqp_table t)
{
    ASSERT(it != NULL);
    ASSERT(t.data != NULL || t.len == 0);
    it->pos = t.data;
    it->end = t.data + t.len;
}

void amqp_array_iter_init(amqp_table_iter *it, amqp_array a)
{
    amqp_table_iter_init(it, (amqp_table){.data = a.data, .len = a.len});
}

bool amqp_table_iter_next(amqp_table_iter *it, amqp_bytes *key, amqp_field *value)
{
    ASSERT(it != NULL && key != NULL && value != NULL);
    ASSERT(it->pos <= it->end);
    size_t left = (size_t)(it->end - it->pos);
    if (left == 0) return false;
    size_t name_len = it->pos[0];
    size_t n = 0;
    if (left > 1 + name_len)
        n = amqp_field_decode(it->pos + 1 + name_len, left - 1 - name_len, value);
    if (n == 0) {
        it->pos = it->end; /* malformed: stop the walk */
        return false;
    }
    *key = (amqp_bytes){.data = it->pos + 1, .len = (uint32_t)name_len};
    it->pos += 1 + name_len + n;
    return true;
}

bool amqp_array_iter_next(amqp_table_iter *it, amqp_field *value)
{
    ASSERT(it != NULL && value != NULL);
    ASSERT(it->pos <= it->end);
    size_t left = (size_t)(it->end - it->pos);
    if (left == 0) return false;
    size_t n = amqp_field_decode(it->pos, left, value);
    if (n == 0) {
        it->pos = it->end;
        return false;
    }
    it->pos += n;
    return true;
}

bool amqp_table_get(amqp_table t, amqp_bytes key, amqp_field *value)
{
    ASSERT(value != NULL);
    ASSERT(key.data != NULL || key.len == 0);
    amqp_table_iter it;
    amqp_bytes k;
    amqp_table_iter_init(&it, t);
    while (amqp_table_iter_next(&it, &k, value))
        if (amqp_bytes_equal(k, key)) return true;
    return false;
}

uint32_t amqp_table_count(amqp_table t)
{
    amqp_table_iter it;
    amqp_bytes k;
    amqp_field v;
    uint32_t count = 0;
    amqp_table_iter_init(&it, t);
    while (amqp_table_iter_next(&it, &k, &v)) count++;
    ASSERT(count <= t.len);
    return count;
}

/* ---- building ---- */

void amqp_table_builder_init(amqp_table_builder *b, uint8_t *buf, size_t cap)
{
    ASSERT(b != NULL);
    ASSERT(buf != NULL || cap == 0);
    ASSERT(cap <= UINT32_MAX);
    memset(b, 0, sizeof(*b));
    b->buf = buf;
    b->cap = (uint32_t)cap;
}

static bool builder_in_array(const amqp_table_builder *b)
{
    return b->depth > 0 && b->open_type[b->depth - 1] == AMQP_FIELD_ARRAY;
}

/* Writes the entry name (tables) after checking it matches the container. */
static bool builder_put_key(amqp_table_builder *b, const char *key)
{
    ASSERT(builder_in_array(b) == (key == NULL));
    ASSERT(b->len <= b->cap);
    if (b->failed) return false;
    if (key == NULL) return true;
    size_t n = strlen(key);
    if (n > LIMIT_SHORTSTR_BYTES_MAX || b->cap - b->len < 1 + n) {
        b->failed = true;
        return false;
    }
    b->buf[b->len] = (uint8_t)n;
    memcpy(b->buf + b->len + 1, key, n);
    b->len += 1 + (uint32_t)n;
    return true;
}

void amqp_table_add(amqp_table_builder *b, const char *key, const amqp_field *value)
{
    ASSERT(b != NULL && value != NULL);
    ASSERT(field_fixed_bytes(value->type) >= 0);
    if (!builder_put_key(b, key)) return;
    size_t n = amqp_field_encode(value, b->buf + b->len, b->cap - b->len);
    if (n == 0) {
        b->failed = true;
        return;
    }
    b->len += (uint32_t)n;
}

void amqp_table_add_bool(amqp_table_builder *b, const char *key, bool value)
{
    amqp_field f = {.type = AMQP_FIELD_BOOL, .v.boolean = value};
    amqp_table_add(b, key, &f);
}

void amqp_table_add_int32(amqp_table_builder *b, const char *key, int32_t value)
{
    amqp_field f = {.type = AMQP_FIELD_INT32, .v.i32 = value};
    amqp_table_add(b, key, &f);
}

void amqp_table_add_int64(amqp_table_builder *b, const char *key, int64_t value)
{
    amqp_field f = {.type = AMQP_FIELD_INT64, .v.i64 = value};
    amqp_table_add(b, key, &f);
}

void amqp_table_add_longstr(amqp_table_builder *b, const char *key, amqp_bytes value)
{
    amqp_field f = {.type = AMQP_FIELD_LONGSTR, .v.bytes = value};
    amqp_table_add(b, key, &f);
}

void amqp_table_add_cstr(amqp_table_builder *b, const char *key, const char *value)
{
    amqp_table_add_longstr(b, key, amqp_cstr(value));
}

static void builder_open(amqp_table_builder *b, const char *key, uint8_t type)
{
    /* The top-level table is depth 1, so at most DEPTH_MAX - 1 open inside it. */
    ASSERT(b->depth + 1 < LIMIT_TABLE_DEPTH_MAX);
    ASSERT(type == AMQP_FIELD_TABLE || type == AMQP_FIELD_ARRAY);
    bool ok = builder_put_key(b, key);
    b->open_type[b->depth] = type;
    b->open_at[b->depth] = b->len + 1;
    b->depth++;
    if (!ok) return;
    if (b->cap - b->len < 5) {
        b->failed = true;
        return;
    }
    b->buf[b->len] = type;
    b->len += 5; /* type octet + length patched by close */
}

void amqp_table_open_table(amqp_table_builder *b, const char *key)
{
    builder_open(b, key, AMQP_FIELD_TABLE);
}

void amqp_table_open_array(amqp_table_builder *b, const char *key)
{
    builder_open(b, key, AMQP_FIELD_ARRAY);
}

void amqp_table_close(amqp_table_builder *b)
{
    ASSERT(b != NULL);
    ASSERT(b->depth > 0);
    b->depth--;
    if (b->failed) return;
    uint32_t at = b->open_at[b->depth];
    ASSERT(at + 4 <= b->len);
    amqp_wire_put_u32(b->buf + at, b->len - at - 4);
}

bool amqp_table_builder_finish(amqp_table_builder *b, amqp_table *out)
{
    ASSERT(b != NULL && out != NULL);
    ASSERT(b->depth == 0);
    if (b->failed) return false;
    *out = (amqp_table){.data = b->buf, .len = b->len};
    return true;
}

bool amqp_field_int64(const amqp_field *f, int64_t *out)
{
    ASSERT(f != NULL && out != NULL);
    switch (f->type) {
    case AMQP_FIELD_INT8: *out = f->v.i8; return true;
    case AMQP_FIELD_UINT8: *out = f->v.u8; return true;
    case AMQP_FIELD_INT16: *out = f->v.i16; return true;
    case AMQP_FIELD_UINT16: *out = f->v.u16; return true;
    case AMQP_FIELD_INT32: *out = f->v.i32; return true;
    case AMQP_FIELD_UINT32: *out = f->v.u32; return true;
    case AMQP_FIELD_INT64: *out = f->v.i64; return true;
    default: return false;
    }
}

const char *amqp_field_type_name(uint8_t type)
{
    switch (type) {
    case AMQP_FIELD_LONGSTR: return "longstr";
    case AMQP_FIELD_INT32: return "signedint";
    case AMQP_FIELD_UINT32: return "unsignedint";
    case AMQP_FIELD_INT64: return "long";
    case AMQP_FIELD_INT8: return "byte";
    case AMQP_FIELD_UINT8: return "unsignedbyte";
    case AMQP_FIELD_INT16: return "short";
    case AMQP_FIELD_UINT16: return "unsignedshort";
    case AMQP_FIELD_FLOAT: return "float";
    case AMQP_FIELD_DOUBLE: return "double";
    case AMQP_FIELD_DECIMAL: return "decimal";
    case AMQP_FIELD_BOOL: return "bool";
    case AMQP_FIELD_BYTES: return "binary";
    case AMQP_FIELD_ARRAY: return "array";
    case AMQP_FIELD_TIMESTAMP: return "timestamp";
    case AMQP_FIELD_TABLE: return "table";
    default: return "void";
    }
}
