/*
 * libFuzzer target for field tables and arrays (net/amqp_table.c). The
 * input (exact-size heap copy) is tried three ways: as the entries of a
 * table (amqp_table_validate, then a recursive walk of every entry), as the
 * values of an array (amqp_array_validate, then a walk), and as a
 * length-prefixed table (amqp_table_read, which must agree with validating
 * the slice it names). A table that validates is rebuilt with the builder
 * from its walk; the copy must be the same bytes (bool octets normalised to
 * 0/1) — which also checks that the builder's nesting bound admits every
 * table the validator accepts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/amqp_table.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rebuild_array(amqp_table_builder *b, amqp_array a, bool *ok);

/* Adds one value under key (NULL inside an array), containers recursively. */
static void rebuild_value(amqp_table_builder *b, const char *key, const amqp_field *f, bool *ok)
{
    if (f->type == AMQP_FIELD_TABLE) {
        amqp_table_open_table(b, key);
        amqp_table_iter it;
        amqp_bytes k;
        amqp_field v;
        amqp_table_iter_init(&it, f->v.table);
        while (*ok && amqp_table_iter_next(&it, &k, &v)) {
            char name[LIMIT_SHORTSTR_BYTES_MAX + 1];
            memcpy(name, k.data, k.len);
            name[k.len] = '\0';
            /* The builder takes C strings: a name with a NUL cannot be rebuilt. */
            if (strlen(name) != k.len) *ok = false;
            rebuild_value(b, name, &v, ok);
        }
        amqp_table_close(b);
    } else if (f->type == AMQP_FIELD_ARRAY) {
        amqp_table_open_array(b, key);
        rebuild_array(b, f->v.array, ok);
        amqp_table_close(b);
    } else {
        amqp_table_add(b, key, f);
    }
}

static void rebuild_array(amqp_table_builder *b, amqp_array a, bool *ok)
{
    amqp_table_iter it;
    amqp_field v;
    amqp_array_iter_init(&it, a);
    while (*ok && amqp_array_iter_next(&it, &v)) rebuild_value(b, NULL, &v, ok);
}

/* Normalises bool octets in place (walking a copy of a validated table). */
static void normalise_bools(uint8_t *p, size_t len, bool is_table)
{
    size_t off = 0;
    while (off < len) {
        if (is_table) off += 1 + (size_t)p[off];
        amqp_field f;
        size_t n = amqp_field_decode(p + off, len - off, &f);
        FUZZ_CHECK(n > 0);
        if (f.type == AMQP_FIELD_BOOL) p[off + 1] = p[off + 1] != 0;
        if (f.type == AMQP_FIELD_TABLE || f.type == AMQP_FIELD_ARRAY)
            normalise_bools(p + off + 5, f.v.table.len, f.type == AMQP_FIELD_TABLE);
        off += n;
    }
    FUZZ_CHECK(off == len);
}

static void table_rebuild(const uint8_t *in, size_t size)
{
    uint8_t *out = malloc(size ? size : 1);
    FUZZ_CHECK(out != NULL);
    amqp_table_builder b;
    amqp_table_builder_init(&b, out, size);
    bool ok = true;
    /* The top level by hand: the builder's top-level table is implicit. */
    amqp_table_iter it;
    amqp_bytes k;
    amqp_field v;
    amqp_table_iter_init(&it, (amqp_table){in, (uint32_t)size});
    while (ok && amqp_table_iter_next(&it, &k, &v)) {
        char name[LIMIT_SHORTSTR_BYTES_MAX + 1];
        memcpy(name, k.data, k.len);
        name[k.len] = '\0';
        if (strlen(name) != k.len) ok = false;
        rebuild_value(&b, name, &v, &ok);
    }
    amqp_table built;
    bool finished = amqp_table_builder_finish(&b, &built);
    if (ok) {
        FUZZ_CHECK(finished && built.len == size);
        uint8_t *norm = fuzz_dup(in, size);
        normalise_bools(norm, size, true);
        FUZZ_CHECK(memcmp(norm, out, size) == 0);
        FUZZ_CHECK(amqp_table_validate(built, NULL));
        free(norm);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > UINT32_MAX) return 0;
    uint8_t *in = fuzz_dup(data, size);
    amqp_error err;
    amqp_table t = {.data = in, .len = (uint32_t)size};
    if (amqp_table_validate(t, &err)) {
        fuzz_walk_table(t, 1);
        table_rebuild(in, size);
    } else {
        FUZZ_CHECK(err.reply_code == AMQP_REPLY_SYNTAX_ERROR);
    }
    amqp_array a = {.data = in, .len = (uint32_t)size};
    if (amqp_array_validate(a, &err)) fuzz_walk_array(a, 1);
    else FUZZ_CHECK(err.reply_code == AMQP_REPLY_SYNTAX_ERROR);
    amqp_table read;
    size_t n = amqp_table_read(in, size, &read, &err);
    if (n > 0) {
        FUZZ_CHECK(n >= 4 && n <= size);
        FUZZ_CHECK(read.data == in + 4 && read.len == n - 4);
        FUZZ_CHECK(amqp_table_validate(read, NULL));
        fuzz_walk_table(read, 1);
    } else if (size >= 4) {
        uint32_t len = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
        if (len <= size - 4)
            FUZZ_CHECK(!amqp_table_validate((amqp_table){in + 4, len}, NULL));
    }
    free(in);
    return 0;
}
