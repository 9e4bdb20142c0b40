/*
 * AMQP reply codes and the codec's error value. The codec never logs: it
 * reports what went wrong as the close the broker will send (reply code,
 * class/method, static text) and the connection state machine sends it.
 */
#include "net/amqp_types.h"

#include <string.h>

#include "core/assert.h"

const char *amqp_reply_code_name(uint16_t reply_code)
{
    switch (reply_code) {
    case AMQP_REPLY_SUCCESS:
        return "REPLY_SUCCESS";
    case AMQP_REPLY_CONTENT_TOO_LARGE:
        return "CONTENT_TOO_LARGE";
    case AMQP_REPLY_NO_ROUTE:
        return "NO_ROUTE";
    case AMQP_REPLY_NO_CONSUMERS:
        return "NO_CONSUMERS";
    case AMQP_REPLY_CONNECTION_FORCED:
        return "CONNECTION_FORCED";
    case AMQP_REPLY_INVALID_PATH:
        return "INVALID_PATH";
    case AMQP_REPLY_ACCESS_REFUSED:
        return "ACCESS_REFUSED";
    case AMQP_REPLY_NOT_FOUND:
        return "NOT_FOUND";
    case AMQP_REPLY_RESOURCE_LOCKED:
        return "RESOURCE_LOCKED";
    case AMQP_REPLY_PRECONDITION_FAILED:
        return "PRECONDITION_FAILED";
    case AMQP_REPLY_FRAME_ERROR:
        return "FRAME_ERROR";
    case AMQP_REPLY_SYNTAX_ERROR:
        return "SYNTAX_ERROR";
    case AMQP_REPLY_COMMAND_INVALID:
        return "COMMAND_INVALID";
    case AMQP_REPLY_CHANNEL_ERROR:
        return "CHANNEL_ERROR";
    case AMQP_REPLY_UNEXPECTED_FRAME:
        return "UNEXPECTED_FRAME";
    case AMQP_REPLY_RESOURCE_ERROR:
        return "RESOURCE_ERROR";
    case AMQP_REPLY_NOT_ALLOWED:
        return "NOT_ALLOWED";
    case AMQP_REPLY_NOT_IMPLEMENTED:
        return "NOT_IMPLEMENTED";
    case AMQP_REPLY_INTERNAL_ERROR:
        return "INTERNAL_ERROR";
    default:
        return "UNKNOWN";
    }
}

bool amqp_reply_code_is_hard(uint16_t reply_code)
{
    ASSERT(reply_code != 0);
    return reply_code == AMQP_REPLY_CONNECTION_FORCED || reply_code == AMQP_REPLY_INVALID_PATH ||
           reply_code >= 500;
}

bool amqp_error_set(amqp_error *err, uint16_t reply_code, uint16_t class_id, uint16_t method_id,
                    const char *text)
{
    ASSERT(reply_code >= 300);
    ASSERT(text != NULL);
    if (err == NULL) return false;
    err->reply_code = reply_code;
    err->class_id = class_id;
    err->method_id = method_id;
    err->text = text;
    return false;
}

amqp_bytes amqp_cstr(const char *s)
{
    ASSERT(s != NULL);
    size_t n = strlen(s);
    ASSERT(n <= UINT32_MAX);
    return (amqp_bytes){.data = (const uint8_t *)s, .len = (uint32_t)n};
}

bool amqp_bytes_equal(amqp_bytes a, amqp_bytes b)
{
    ASSERT(a.data != NULL || a.len == 0);
    ASSERT(b.data != NULL || b.len == 0);
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}
