/*
 * SASL response parsing for connection.start-ok: PLAIN (RFC 4616) and
 * RabbitMQ's AMQPLAIN. Pure functions over byte spans, no allocation and no
 * global state, so shards call them concurrently and fuzzers call them
 * directly. Every read is bounds-checked against the span before it is made;
 * the whole response is refused above LIMIT_SASL_RESPONSE_BYTES_MAX, so the
 * loops are bounded too. On success the credentials point into the response;
 * on failure *out is left untouched.
 */
#include "core/auth.h"

#include "core/assert.h"
#include "core/limits.h"

#include <string.h>

auth_sasl_result auth_sasl_plain_parse(const uint8_t *response, size_t response_len,
                                       auth_credentials *out)
{
    ASSERT(response != NULL || response_len == 0);
    ASSERT(out != NULL);
    if (response_len > LIMIT_SASL_RESPONSE_BYTES_MAX) return AUTH_SASL_TOO_LONG;
    const uint8_t *end = response + response_len;
    const uint8_t *nul1 = response_len > 0 ? memchr(response, 0, response_len) : NULL;
    if (nul1 == NULL) return AUTH_SASL_MALFORMED;
    const uint8_t *user = nul1 + 1;
    const uint8_t *nul2 = memchr(user, 0, (size_t)(end - user));
    if (nul2 == NULL) return AUTH_SASL_MALFORMED;
    const uint8_t *pass = nul2 + 1;
    if (memchr(pass, 0, (size_t)(end - pass)) != NULL) return AUTH_SASL_MALFORMED;

    size_t authzid_len = (size_t)(nul1 - response);
    size_t user_len = (size_t)(nul2 - user), pass_len = (size_t)(end - pass);
    if (authzid_len > LIMIT_USER_NAME_BYTES_MAX || user_len > LIMIT_USER_NAME_BYTES_MAX ||
        pass_len > LIMIT_PASSWORD_BYTES_MAX)
        return AUTH_SASL_TOO_LONG;
    ASSERT(authzid_len + user_len + pass_len + 2 == response_len);
    *out = (auth_credentials){.user = (const char *)user,
                              .user_len = user_len,
                              .pass = (const char *)pass,
                              .pass_len = pass_len};
    return AUTH_SASL_OK;
}

static bool auth_key_is(const uint8_t *key, size_t key_len, const char *want)
{
    return key_len == strlen(want) && memcmp(key, want, key_len) == 0;
}

auth_sasl_result auth_sasl_amqplain_parse(const uint8_t *response, size_t response_len,
                                          auth_credentials *out)
{
    ASSERT(response != NULL || response_len == 0);
    ASSERT(out != NULL);
    if (response_len > LIMIT_SASL_RESPONSE_BYTES_MAX) return AUTH_SASL_TOO_LONG;
    auth_credentials found = {0};
    bool have_user = false, have_pass = false;
    size_t pos = 0;
    while (pos < response_len) {
        /* shortstr key: length octet, then 1..255 bytes. */
        size_t key_len = response[pos++];
        if (key_len == 0 || key_len > response_len - pos) return AUTH_SASL_MALFORMED;
        const uint8_t *key = response + pos;
        pos += key_len;
        /* 'S' then a longstr: 32-bit big-endian length, then the bytes. */
        if (response_len - pos < 5 || response[pos] != 'S') return AUTH_SASL_MALFORMED;
        const uint8_t *p = response + pos + 1;
        size_t value_len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        pos += 5;
        if (value_len > response_len - pos) return AUTH_SASL_MALFORMED;
        const char *value = (const char *)response + pos;
        pos += value_len;
        if (auth_key_is(key, key_len, "LOGIN")) {
            if (have_user) return AUTH_SASL_MALFORMED;
            if (value_len > LIMIT_USER_NAME_BYTES_MAX) return AUTH_SASL_TOO_LONG;
            have_user = true;
            found.user = value, found.user_len = value_len;
        } else if (auth_key_is(key, key_len, "PASSWORD")) {
            if (have_pass) return AUTH_SASL_MALFORMED;
            if (value_len > LIMIT_PASSWORD_BYTES_MAX) return AUTH_SASL_TOO_LONG;
            have_pass = true;
            found.pass = value, found.pass_len = value_len;
        }
    }
    ASSERT(pos == response_len);
    if (!have_user || !have_pass) return AUTH_SASL_MALFORMED;
    *out = found;
    return AUTH_SASL_OK;
}

const char *auth_sasl_result_name(auth_sasl_result result)
{
    switch (result) {
    case AUTH_SASL_OK:
        return "ok";
    case AUTH_SASL_MALFORMED:
        return "malformed";
    case AUTH_SASL_TOO_LONG:
        return "too long";
    }
    UNREACHABLE();
}
