/*
 * SHA-256 as specified in FIPS 180-4, section 6.2, written for clarity over
 * speed: it hashes a few dozen bytes per login. Invariant between calls:
 * block_used_bytes < SHA256_BLOCK_BYTES, so a full block is always compressed
 * as soon as it fills. The message length is tracked in bytes and limited to
 * 2^61 - 1 so the bit length fits the 64-bit trailer.
 */
#include "core/sha256.h"

#include "core/assert.h"

#include <string.h>

/* FIPS 180-4, 4.2.2: first 32 bits of the fractional parts of the cube roots of the first 64
 * primes. */
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* FIPS 180-4, 5.3.3: first 32 bits of the fractional parts of the square roots of the first 8
 * primes. */
static const uint32_t sha256_h0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t sha256_rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32u - n));
}

static inline uint32_t sha256_load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void sha256_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* FIPS 180-4, 6.2.2: one 512-bit block into the state. */
static void sha256_compress(uint32_t state[8], const uint8_t block[SHA256_BLOCK_BYTES])
{
    uint32_t w[64];
    for (unsigned t = 0; t < 16; t++) w[t] = sha256_load_be32(block + 4 * t);
    for (unsigned t = 16; t < 64; t++) {
        uint32_t s0 = sha256_rotr(w[t - 15], 7) ^ sha256_rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = sha256_rotr(w[t - 2], 17) ^ sha256_rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }

    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (unsigned t = 0; t < 64; t++) {
        uint32_t sum1 = sha256_rotr(e, 6) ^ sha256_rotr(e, 11) ^ sha256_rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + sum1 + ch + sha256_k[t] + w[t];
        uint32_t sum0 = sha256_rotr(a, 2) ^ sha256_rotr(a, 13) ^ sha256_rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = sum0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

void sha256_init(sha256_ctx *ctx)
{
    ASSERT(ctx != NULL);
    memcpy(ctx->state, sha256_h0, sizeof(ctx->state));
    ctx->message_bytes = 0;
    ctx->block_used_bytes = 0;
}

void sha256_update(sha256_ctx *ctx, const void *data, size_t data_bytes)
{
    ASSERT(ctx != NULL);
    ASSERT(data != NULL || data_bytes == 0);
    ASSERT(ctx->block_used_bytes < SHA256_BLOCK_BYTES);
    /* The bit length must fit in 64 bits (FIPS 180-4, 5.1.1). */
    ASSERT(data_bytes <= (UINT64_C(1) << 61) - 1 - ctx->message_bytes);

    const uint8_t *in = data;
    ctx->message_bytes += data_bytes;
    while (data_bytes > 0) {
        size_t take = SHA256_BLOCK_BYTES - ctx->block_used_bytes;
        if (take > data_bytes) take = data_bytes;
        memcpy(ctx->block + ctx->block_used_bytes, in, take);
        ctx->block_used_bytes += (uint32_t)take;
        in += take;
        data_bytes -= take;
        if (ctx->block_used_bytes == SHA256_BLOCK_BYTES) {
            sha256_compress(ctx->state, ctx->block);
            ctx->block_used_bytes = 0;
        }
    }
    ASSERT(ctx->block_used_bytes < SHA256_BLOCK_BYTES);
}

void sha256_final(sha256_ctx *ctx, uint8_t digest[SHA256_DIGEST_BYTES])
{
    ASSERT(ctx != NULL);
    ASSERT(ctx->block_used_bytes < SHA256_BLOCK_BYTES);

    /* FIPS 180-4, 5.1.1: a 1 bit, zeros to 56 mod 64 bytes, the bit length big-endian. */
    uint64_t message_bits = ctx->message_bytes * 8u;
    uint32_t used = ctx->block_used_bytes;
    ctx->block[used++] = 0x80;
    if (used > SHA256_BLOCK_BYTES - 8u) {
        memset(ctx->block + used, 0, SHA256_BLOCK_BYTES - used);
        sha256_compress(ctx->state, ctx->block);
        used = 0;
    }
    memset(ctx->block + used, 0, SHA256_BLOCK_BYTES - 8u - used);
    sha256_store_be32(ctx->block + 56, (uint32_t)(message_bits >> 32));
    sha256_store_be32(ctx->block + 60, (uint32_t)message_bits);
    sha256_compress(ctx->state, ctx->block);

    for (unsigned i = 0; i < 8; i++) sha256_store_be32(digest + 4 * i, ctx->state[i]);
    /* The context held password bytes: leave nothing behind. */
    explicit_bzero(ctx, sizeof(*ctx));
}

void sha256(const void *data, size_t data_bytes, uint8_t digest[SHA256_DIGEST_BYTES])
{
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, data, data_bytes);
    sha256_final(&ctx, digest);
}
