#include "tether/nonce.h"

#include <stdbool.h>
#include <string.h>

#include <mbedtls/md.h>

#include "tether/bytes.h"
#include "tether/random.h"

#define EXPIRY_OFFSET TETHER_NONCE_RANDOM_SIZE
#define MAC_OFFSET (TETHER_NONCE_RANDOM_SIZE + TETHER_NONCE_EXPIRY_SIZE)

/* HMAC-SHA256(key, label || random || expiry): the label keeps these MACs
 * apart from anything else the same key might ever be used for. */
static tether_status_t nonce_mac(const uint8_t *key, const uint8_t *body,
                                 uint8_t mac[TETHER_NONCE_MAC_SIZE])
{
    static const char label[] = TETHER_NONCE_LABEL;
    mbedtls_md_context_t ctx;
    int ok;

    mbedtls_md_init(&ctx);
    ok = mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1) == 0 &&
         mbedtls_md_hmac_starts(&ctx, key, TETHER_NONCE_KEY_SIZE) == 0 &&
         mbedtls_md_hmac_update(&ctx, (const unsigned char *)label, sizeof(label) - 1) == 0 &&
         mbedtls_md_hmac_update(&ctx, body, MAC_OFFSET) == 0 &&
         mbedtls_md_hmac_finish(&ctx, mac) == 0;
    mbedtls_md_free(&ctx);
    return ok ? TETHER_OK : TETHER_ERR_CRYPTO;
}

tether_status_t tether_nonce_issue(const uint8_t *key, size_t key_len, uint64_t now,
                                   uint32_t ttl_seconds, uint8_t out[TETHER_NONCE_SIZE])
{
    uint64_t expiry;
    tether_status_t rc;

    if (key == NULL || key_len != TETHER_NONCE_KEY_SIZE || out == NULL || ttl_seconds == 0 ||
        now > UINT64_MAX - ttl_seconds)
        return TETHER_ERR_INVALID_ARGUMENT;
    expiry = now + ttl_seconds;
    if ((rc = tether_random_bytes(out, TETHER_NONCE_RANDOM_SIZE)) != TETHER_OK)
        goto out;
    for (unsigned i = 0; i < TETHER_NONCE_EXPIRY_SIZE; i++)
        out[EXPIRY_OFFSET + i] = (uint8_t)(expiry >> (56 - 8 * i));
    rc = nonce_mac(key, out, out + MAC_OFFSET);
out:
    if (rc != TETHER_OK)
        tether_wipe(out, TETHER_NONCE_SIZE);
    return rc;
}

tether_status_t tether_nonce_check_rotating(const uint8_t *current, const uint8_t *previous,
                                            size_t key_len, const uint8_t *nonce, size_t len,
                                            uint64_t now)
{
    uint8_t mac[TETHER_NONCE_MAC_SIZE];
    uint64_t expiry = 0;
    bool valid;
    tether_status_t rc;

    if (current == NULL || key_len != TETHER_NONCE_KEY_SIZE || (nonce == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len != TETHER_NONCE_SIZE)
        return TETHER_ERR_PARSE;
    if ((rc = nonce_mac(current, nonce, mac)) != TETHER_OK)
        goto out;
    valid = tether_ct_equal(mac, nonce + MAC_OFFSET, sizeof(mac));
    if (previous != NULL) {
        /* Both keys are always tried, so timing does not tell which one a
         * nonce was made with. */
        if ((rc = nonce_mac(previous, nonce, mac)) != TETHER_OK)
            goto out;
        valid = tether_ct_equal(mac, nonce + MAC_OFFSET, sizeof(mac)) | valid;
    }
    if (!valid) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    expiry = tether_nonce_expiry(nonce);
    rc = now < expiry ? TETHER_OK : TETHER_ERR_EXPIRED;
out:
    tether_wipe(mac, sizeof(mac));
    return rc;
}

uint64_t tether_nonce_expiry(const uint8_t nonce[TETHER_NONCE_SIZE])
{
    uint64_t expiry = 0;

    for (unsigned i = 0; i < TETHER_NONCE_EXPIRY_SIZE; i++)
        expiry = expiry << 8 | nonce[EXPIRY_OFFSET + i];
    return expiry;
}

tether_status_t tether_nonce_check(const uint8_t *key, size_t key_len, const uint8_t *nonce,
                                   size_t len, uint64_t now)
{
    return tether_nonce_check_rotating(key, NULL, key_len, nonce, len, now);
}
