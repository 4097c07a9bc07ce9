/*
 * DPoP proofs (RFC 9449) signed inside the TPM with the device key, the key
 * whose RFC 7638 thumbprint the fleet puts in each token's cnf.jkt
 * (DESIGN.md, "AI endpoint access"). lib's tether_dpop_sign_with builds the
 * proof; this file only holds the key in the TPM and signs its digest.
 *
 * The TPM is used by one thread at a time: every sequence of hal calls in
 * the agent (here: load the device key, sign; in the exchange: the counter
 * increment, certify and quote) runs under the one mutex the caller passes,
 * taken for the TPM commands only and never across network I/O.
 *
 * The device key is loaded at the first proof and stays loaded, so that a
 * proof costs one TPM2_Sign; tether_dpop_signer_free (or tether_tpm_close)
 * flushes it. A failed signature flushes it too, and the next proof loads
 * it again (a TPM that was reset has lost it).
 */
#ifndef TETHER_AGENT_DPOP_SIGNER_H
#define TETHER_AGENT_DPOP_SIGNER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"
#include "tether/crypto.h"
#include "tether/dpop.h"
#include "tether/error.h"
#include "tether/tpm.h"

typedef struct tether_dpop_signer {
    tether_tpm_t *tpm;           /* borrowed, shared with the exchange worker */
    pthread_mutex_t *tpm_lock;   /* borrowed: held around each sequence of TPM calls */
    const tether_agent_state_t *state; /* borrowed: the device key's blob and EK type */
    tether_ec_key_t public_key;  /* the device key's public half, for the proof's jwk */
    tether_tpm_handle_t key;     /* loaded device key, TETHER_TPM_HANDLE_NONE when not */
} tether_dpop_signer_t;

/* Empty: _free accepts it. Cannot fail. */
void tether_dpop_signer_init(tether_dpop_signer_t *s);

/* Reads the device key's public half from state (no TPM call). tpm,
 * tpm_lock and state must outlive the signer. TETHER_ERR_UNSUPPORTED or
 * TETHER_ERR_PARSE when the enrolled device key is not a P-256 key. */
TETHER_MUST_CHECK tether_status_t tether_dpop_signer_setup(tether_dpop_signer_t *s,
                                                           tether_tpm_t *tpm,
                                                           pthread_mutex_t *tpm_lock,
                                                           const tether_agent_state_t *state);

/*
 * Signs a proof for one request: htm, htu (sent as given), nonce (NULL or
 * the server's DPoP-Nonce), ath over access_token[0..token_len), iat now
 * (seconds since the Unix epoch), and a fresh jti of 128 random bits.
 * Output as for tether_dpop_sign_with (out_size bytes, NUL-terminated,
 * *out_len its length, wiped on error). On a TPM failure the TPM's sentence
 * is copied to why. Takes the TPM mutex for the TPM commands.
 */
TETHER_MUST_CHECK tether_status_t tether_dpop_signer_sign(tether_dpop_signer_t *s, const char *htm,
                                                          const char *htu, const char *nonce,
                                                          const char *access_token,
                                                          size_t token_len, int64_t iat, char *out,
                                                          size_t out_size, size_t *out_len,
                                                          char *why, size_t why_size);

/* Flushes the device key (under the mutex) and releases the public key;
 * accepts NULL and an initialised signer. The TPM must still be open. */
void tether_dpop_signer_free(tether_dpop_signer_t *s);

#endif
