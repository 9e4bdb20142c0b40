/*
 * AMQP field tables and arrays: validation on decode, an iterator to walk a
 * validated table, and a builder to write one into a caller's buffer.
 *
 * A table (amqp_table) is kept as the raw bytes of its entries; each entry
 * is a shortstr name, a type octet and a value. Nested tables and arrays are
 * also raw slices, so decode never copies and never allocates. Nesting is
 * bounded by LIMIT_TABLE_DEPTH_MAX, a top-level table counting as depth 1.
 */
#ifndef RINGMQ_NET_AMQP_TABLE_H
#define RINGMQ_NET_AMQP_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "net/amqp_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Validates the entries bytes of a table (or the values of an array): every
 * name a well-formed shortstr, every type known, every value inside the
 * span, nesting within bounds. On failure fills *err with 502 SYNTAX_ERROR. */
bool amqp_table_validate(amqp_table t, amqp_error *err);
bool amqp_array_validate(amqp_array a, amqp_error *err);

/* Reads a length-prefixed table at p[0..len): validates it, sets *out to
 * its entries and returns the bytes consumed (4 + entries), 0 on error. */
size_t amqp_table_read(const uint8_t *p, size_t len, amqp_table *out, amqp_error *err);

/* Decodes one field value (type octet then value) at p[0..len) without
 * descending into nested tables/arrays. Returns bytes consumed, 0 if the
 * type is unknown or the value overruns the span. */
size_t amqp_field_decode(const uint8_t *p, size_t len, amqp_field *out);
/* Encodes one field value (type octet then value) into out[0..cap).
 * Returns bytes written, 0 if it does not fit or the type is unknown. */
size_t amqp_field_encode(const amqp_field *f, uint8_t *out, size_t cap);

/* Walks a validated table's entries or an array's values in wire order. A
 * malformed span (never the case after validation) ends the walk early. */
typedef struct amqp_table_iter {
    const uint8_t *pos;
    const uint8_t *end;
} amqp_table_iter;

void amqp_table_iter_init(amqp_table_iter *it, amqp_table t);
bool amqp_table_iter_next(amqp_table_iter *it, amqp_bytes *key, amqp_field *value);
void amqp_array_iter_init(amqp_table_iter *it, amqp_array a);
bool amqp_array_iter_next(amqp_table_iter *it, amqp_field *value);
/* First entry named key; false if none. */
bool amqp_table_get(amqp_table t, amqp_bytes key, amqp_field *value);
/* An integer field of any width as int64 (unsigned 64-bit values do not occur:
 * 'l' is signed); false for other types. */
bool amqp_field_int64(const amqp_field *f, int64_t *out);
/* RabbitMQ's name of a field type ("signedint", "longstr", ...), as its reply texts quote it. */
const char *amqp_field_type_name(uint8_t type);
/* Entry count of a validated table. */
uint32_t amqp_table_count(amqp_table t);

/*
 * Writes a table into buf[0..cap). Entries go into the innermost open
 * container: with a key in a table, with key NULL in an array. Running out
 * of space or a key over 255 bytes marks the builder failed; later calls do
 * nothing and finish reports false. Misuse (key in an array, unbalanced
 * close, nesting over the bound) is a programmer error and asserts.
 */
typedef struct amqp_table_builder {
    uint8_t *buf;
    uint32_t cap;
    uint32_t len;
    uint32_t depth; /* open nested containers; the top-level table is not counted */
    uint32_t open_at[LIMIT_TABLE_DEPTH_MAX];  /* offset of each open container's length */
    uint8_t open_type[LIMIT_TABLE_DEPTH_MAX]; /* AMQP_FIELD_TABLE or AMQP_FIELD_ARRAY */
    bool failed;
} amqp_table_builder;

void amqp_table_builder_init(amqp_table_builder *b, uint8_t *buf, size_t cap);
void amqp_table_add(amqp_table_builder *b, const char *key, const amqp_field *value);
void amqp_table_add_bool(amqp_table_builder *b, const char *key, bool value);
void amqp_table_add_int32(amqp_table_builder *b, const char *key, int32_t value);
void amqp_table_add_int64(amqp_table_builder *b, const char *key, int64_t value);
void amqp_table_add_longstr(amqp_table_builder *b, const char *key, amqp_bytes value);
void amqp_table_add_cstr(amqp_table_builder *b, const char *key, const char *value);
void amqp_table_open_table(amqp_table_builder *b, const char *key);
void amqp_table_open_array(amqp_table_builder *b, const char *key);
void amqp_table_close(amqp_table_builder *b);
/* All containers closed and nothing failed: *out is the table written. */
bool amqp_table_builder_finish(amqp_table_builder *b, amqp_table *out);

#ifdef __cplusplus
}
#endif

#endif
