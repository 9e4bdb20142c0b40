/*
 * SHA-256 (FIPS 180-4). Used for password hashes (core/auth.c), not on any
 * hot path. The context is a plain struct so callers keep it on the stack.
 */
#ifndef RINGMQ_CORE_SHA256_H
#define RINGMQ_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32u
#define SHA256_BLOCK_BYTES  64u

typedef struct {
    uint32_t state[8];
    uint64_t message_bytes; /* bytes absorbed so far */
    uint8_t block[SHA256_BLOCK_BYTES];
    uint32_t block_used_bytes; /* bytes of block filled, < SHA256_BLOCK_BYTES */
} sha256_ctx;

void sha256_init(sha256_ctx *ctx);
void sha256_update(sha256_ctx *ctx, const void *data, size_t data_bytes);
/* Writes the digest and wipes the context. */
void sha256_final(sha256_ctx *ctx, uint8_t digest[SHA256_DIGEST_BYTES]);
/* One-shot digest of a buffer. */
void sha256(const void *data, size_t data_bytes, uint8_t digest[SHA256_DIGEST_BYTES]);

#endif
