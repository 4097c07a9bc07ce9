#include "dpop_signer.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tether/base64url.h"
#include "tether/random.h"
#include "tether/tpm2_public.h"

#define JTI_BYTES 16

void tether_dpop_signer_init(tether_dpop_signer_t *s)
{
    memset(s, 0, sizeof(*s));
    tether_ec_key_init(&s->public_key);
    s->key = TETHER_TPM_HANDLE_NONE;
}

tether_status_t tether_dpop_signer_setup(tether_dpop_signer_t *s, tether_tpm_t *tpm,
                                         pthread_mutex_t *tpm_lock,
                                         const tether_agent_state_t *state)
{
    s->tpm = tpm;
    s->tpm_lock = tpm_lock;
    s->state = state;
    return tether_tpm2_public_to_ec_key(&state->device_key.public_area.publicArea, &s->public_key);
}

/* The signing callback lib's JWS code calls with the proof's digest. */
typedef struct tpm_sign_context {
    tether_dpop_signer_t *signer;
    tether_status_t rc; /* what the TPM said, for the caller's message */
} tpm_sign_context_t;

static int sign_in_tpm(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
    tpm_sign_context_t *c = ctx;

    c->rc = tether_tpm_sign_digest(c->signer->tpm, c->signer->key, digest, sig);
    return c->rc == TETHER_OK ? 0 : -1;
}

/* Loads the device key under the EK (flushed again at once: a loaded child
 * stays loaded without its parent). Called with the TPM mutex held. */
static tether_status_t load_device_key(tether_dpop_signer_t *s)
{
    tether_ek_t ek;
    tether_status_t rc;

    memset(&ek, 0, sizeof(ek));
    if ((rc = tether_ek_open(s->tpm, s->state->ek_type, &ek)) == TETHER_OK)
        rc = tether_tpm_load_key(s->tpm, ek.handle, &s->state->device_key, &s->key);
    tether_ek_free(s->tpm, &ek);
    return rc;
}

static void flush_device_key(tether_dpop_signer_t *s)
{
    if (s->key != TETHER_TPM_HANDLE_NONE)
        (void)tether_tpm_flush(s->tpm, s->key);
    s->key = TETHER_TPM_HANDLE_NONE;
}

tether_status_t tether_dpop_signer_sign(tether_dpop_signer_t *s, const char *htm, const char *htu,
                                        const char *nonce, const char *access_token,
                                        size_t token_len, int64_t iat, char *out,
                                        size_t out_size, size_t *out_len, char *why,
                                        size_t why_size)
{
    uint8_t jti_bytes[JTI_BYTES];
    char jti[TETHER_DPOP_JTI_MAX + 1];
    tether_dpop_claims_t claims;
    tpm_sign_context_t ctx = {.signer = s, .rc = TETHER_OK};
    bool tpm_failed = false;
    tether_status_t rc;

    *out_len = 0;
    if (out_size > 0)
        out[0] = '\0';
    if (why_size > 0)
        why[0] = '\0';
    if ((rc = tether_random_bytes(jti_bytes, sizeof(jti_bytes))) != TETHER_OK ||
        (rc = tether_base64url_encode(jti_bytes, sizeof(jti_bytes), jti, sizeof(jti), NULL)) !=
            TETHER_OK)
        goto out;
    claims = (tether_dpop_claims_t){.htm = htm,
                                    .htu = htu,
                                    .jti = jti,
                                    .iat = iat,
                                    .access_token = access_token,
                                    .access_token_len = token_len,
                                    .nonce = nonce};
    pthread_mutex_lock(s->tpm_lock);
    if (s->key == TETHER_TPM_HANDLE_NONE && (rc = load_device_key(s)) != TETHER_OK) {
        tpm_failed = true;
    } else {
        rc = tether_dpop_sign_with(&claims, &s->public_key, sign_in_tpm, &ctx, out, out_size,
                                   out_len);
        if (ctx.rc != TETHER_OK) {
            rc = ctx.rc;
            tpm_failed = true;
        }
    }
    if (tpm_failed) {
        snprintf(why, why_size, "%s", s->tpm->last_error);
        flush_device_key(s);
    }
    pthread_mutex_unlock(s->tpm_lock);
out:
    return rc;
}

void tether_dpop_signer_free(tether_dpop_signer_t *s)
{
    if (s == NULL)
        return;
    if (s->key != TETHER_TPM_HANDLE_NONE) {
        pthread_mutex_lock(s->tpm_lock);
        flush_device_key(s);
        pthread_mutex_unlock(s->tpm_lock);
    }
    tether_ec_key_free(&s->public_key);
    memset(s, 0, sizeof(*s));
    s->key = TETHER_TPM_HANDLE_NONE;
}
