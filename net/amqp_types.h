/*
 * Types shared by the AMQP 0-9-1 codec (net/amqp_*.c) and its users: byte
 * slices, field values, reply codes and the decode error. Every slice points
 * into the caller's receive buffer; nothing here owns memory.
 */
#ifndef RINGMQ_NET_AMQP_TYPES_H
#define RINGMQ_NET_AMQP_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A borrowed byte string: shortstr, longstr or byte array. */
typedef struct amqp_bytes {
    const uint8_t *data;
    uint32_t len;
} amqp_bytes;

/* A field table as the entries' raw bytes (without the 4-byte length prefix).
 * Decoded tables are validated before they are handed out. */
typedef struct amqp_table {
    const uint8_t *data;
    uint32_t len;
} amqp_table;

/* A field array as its values' raw bytes (without the 4-byte length prefix). */
typedef struct amqp_array {
    const uint8_t *data;
    uint32_t len;
} amqp_array;

/* Field value types, named by their wire octet (RabbitMQ's set). */
typedef enum amqp_field_type {
    AMQP_FIELD_BOOL = 't',
    AMQP_FIELD_INT8 = 'b',
    AMQP_FIELD_UINT8 = 'B',
    AMQP_FIELD_INT16 = 's',
    AMQP_FIELD_UINT16 = 'u',
    AMQP_FIELD_INT32 = 'I',
    AMQP_FIELD_UINT32 = 'i',
    AMQP_FIELD_INT64 = 'l',
    AMQP_FIELD_FLOAT = 'f',
    AMQP_FIELD_DOUBLE = 'd',
    AMQP_FIELD_DECIMAL = 'D',
    AMQP_FIELD_LONGSTR = 'S',
    AMQP_FIELD_BYTES = 'x',
    AMQP_FIELD_ARRAY = 'A',
    AMQP_FIELD_TIMESTAMP = 'T',
    AMQP_FIELD_TABLE = 'F',
    AMQP_FIELD_VOID = 'V',
} amqp_field_type;

typedef struct amqp_decimal {
    uint8_t scale;
    uint32_t value;
} amqp_decimal;

/* One decoded field value; `type` selects the member of `v`. */
typedef struct amqp_field {
    uint8_t type; /* amqp_field_type */
    union {
        bool boolean;
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        float f32;
        double f64;
        amqp_decimal decimal;
        amqp_bytes bytes; /* 'S' and 'x' */
        amqp_array array;
        uint64_t timestamp_s;
        amqp_table table;
    } v;
} amqp_field;

/* C type of each argument type of the method and property tables. */
#define AMQP_CTYPE_bit       bool
#define AMQP_CTYPE_octet     uint8_t
#define AMQP_CTYPE_short     uint16_t
#define AMQP_CTYPE_long      uint32_t
#define AMQP_CTYPE_longlong  uint64_t
#define AMQP_CTYPE_timestamp uint64_t
#define AMQP_CTYPE_shortstr  amqp_bytes
#define AMQP_CTYPE_longstr   amqp_bytes
#define AMQP_CTYPE_table     amqp_table

/* Frame types and the frame-end octet (AMQP constants). */
enum {
    AMQP_FRAME_METHOD = 1,
    AMQP_FRAME_HEADER = 2,
    AMQP_FRAME_BODY = 3,
    AMQP_FRAME_HEARTBEAT = 8,
    AMQP_FRAME_END = 0xCE,
    AMQP_FRAME_HEADER_BYTES = 7,
};

/* Reply codes, every AMQP 0-9-1 constant of the reply-code domain. Soft
 * errors (3xx, 4xx) close a channel; hard errors (5xx, 320, 402) close the
 * connection (amqp_reply_code_is_hard()). */
typedef enum amqp_reply_code {
    AMQP_REPLY_SUCCESS = 200,
    AMQP_REPLY_CONTENT_TOO_LARGE = 311,
    AMQP_REPLY_NO_ROUTE = 312,
    AMQP_REPLY_NO_CONSUMERS = 313,
    AMQP_REPLY_CONNECTION_FORCED = 320,
    AMQP_REPLY_INVALID_PATH = 402,
    AMQP_REPLY_ACCESS_REFUSED = 403,
    AMQP_REPLY_NOT_FOUND = 404,
    AMQP_REPLY_RESOURCE_LOCKED = 405,
    AMQP_REPLY_PRECONDITION_FAILED = 406,
    AMQP_REPLY_FRAME_ERROR = 501,
    AMQP_REPLY_SYNTAX_ERROR = 502,
    AMQP_REPLY_COMMAND_INVALID = 503,
    AMQP_REPLY_CHANNEL_ERROR = 504,
    AMQP_REPLY_UNEXPECTED_FRAME = 505,
    AMQP_REPLY_RESOURCE_ERROR = 506,
    AMQP_REPLY_NOT_ALLOWED = 530,
    AMQP_REPLY_NOT_IMPLEMENTED = 540,
    AMQP_REPLY_INTERNAL_ERROR = 541,
} amqp_reply_code;

/* Why a decode (or encode) failed, as the close the broker will send:
 * reply code, the class/method being decoded (0 when none) and a static text. */
typedef struct amqp_error {
    uint16_t reply_code; /* amqp_reply_code */
    uint16_t class_id;
    uint16_t method_id;
    const char *text; /* static string, never freed */
} amqp_error;

/* The reply code's AMQP name ("FRAME_ERROR"), or "UNKNOWN". */
const char *amqp_reply_code_name(uint16_t reply_code);
/* True for connection-level (hard) errors. */
bool amqp_reply_code_is_hard(uint16_t reply_code);
/* Fills *err (err may be NULL: then nothing is written). Returns false so
 * decoders can `return amqp_error_set(...)`. */
bool amqp_error_set(amqp_error *err, uint16_t reply_code, uint16_t class_id, uint16_t method_id,
                    const char *text);

/* Slice of a NUL-terminated string (for tests and tools). */
amqp_bytes amqp_cstr(const char *s);
bool amqp_bytes_equal(amqp_bytes a, amqp_bytes b);

#ifdef __cplusplus
}
#endif

#endif
