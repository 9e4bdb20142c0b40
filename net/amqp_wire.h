/*
 * Big-endian load/store helpers for the AMQP codec. Internal to net/amqp_*.c:
 * callers check bounds before calling; these only move bytes.
 */
#ifndef RINGMQ_NET_AMQP_WIRE_H
#define RINGMQ_NET_AMQP_WIRE_H

#include <stdint.h>
#include <string.h>

static inline uint16_t amqp_wire_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t amqp_wire_get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return __builtin_bswap32(v);
}

static inline uint64_t amqp_wire_get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return __builtin_bswap64(v);
}

static inline void amqp_wire_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void amqp_wire_put_u32(uint8_t *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, sizeof(v));
}

static inline void amqp_wire_put_u64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, sizeof(v));
}

#endif
