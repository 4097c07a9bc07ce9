/*
 * One attested token exchange with the fleet (DESIGN.md, "Attested token
 * exchange"): POST /v1/challenge for a nonce, the counter incremented and
 * certified and the PCRs quoted by the TPM, POST /v1/token with the
 * evidence as an RFC 8693 subject_token.
 *
 * Each token answer also brings the next challenge (fleetd's
 * "next_challenge"), whose window opens at the refresh the fleet scheduled:
 * held, it makes the next refresh one request (POST /v1/token only). It is
 * kept in memory only and used at most once; an agent that restarted, or
 * whose next challenge has closed or is refused as a nonce, asks POST
 * /v1/challenge (agent/README.md, "One request per refresh").
 */
#ifndef TETHER_AGENT_EXCHANGE_H
#define TETHER_AGENT_EXCHANGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "exchange_eventlogs.h"
#include "state.h"
#include "tether/https_client.h"
#include "tether/nonce.h"
#include "tether/secure_memory.h"
#include "tether/tpm.h"
#include "token_counts.h"

#define TETHER_TOKEN_MAX 8192 /* bytes of an access token */

typedef enum tether_exchange_outcome {
    TETHER_EXCHANGE_OK = 0,
    TETHER_EXCHANGE_RETRY,   /* unreachable, timeout, 5xx, busy TPM: try again later */
    TETHER_EXCHANGE_REFUSED, /* the fleet said no for good (clone, revoked, ...): stop asking */
    TETHER_EXCHANGE_FAILED,  /* a local fault that retrying will not fix (TPM lockout, auth) */
} tether_exchange_outcome_t;

/* What the agent reports with each exchange, signed by the TPM through the
 * qualifying data: the usage document (token_counts.h). */
typedef struct tether_usage {
    uint64_t token_requests; /* tokens handed to local applications */
    uint64_t exchanges;      /* exchanges completed */
    /* Copies the per-token counts into *out; NULL: none are reported. Called
     * on the exchange's thread once the fleet's nonce has come and before
     * the TPM signs, so that every request a gateway accepted and reported
     * before the fleet issued that nonce is in the copy (the fleet compares
     * on that ground). counts_ctx must outlive the exchange. */
    void (*counts)(void *counts_ctx, tether_token_counts_t *out);
    void *counts_ctx;
    /* Where the device's event logs are: read and sent (or their hashes)
     * when the fleet's challenge asks for measured boot. The paths must
     * outlive the exchange. */
    tether_agent_eventlog_paths_t eventlogs;
} tether_usage_t;

typedef struct tether_exchange_result {
    tether_exchange_outcome_t outcome;
    unsigned expires_in;  /* seconds, on TETHER_EXCHANGE_OK */
    /* On TETHER_EXCHANGE_OK with a next challenge held: when its window
     * opens (CLOCK_MONOTONIC ms), the refresh to schedule; else 0. */
    int64_t next_refresh_ms;
    char code[64];        /* the fleet's tether_error / error code, or a local one */
    char reason[256];     /* a sentence for the log */
} tether_exchange_result_t;

/* The nonce of the next exchange, from the last token answer. */
typedef struct tether_next_challenge {
    bool held;
    uint8_t nonce[TETHER_NONCE_SIZE];
    TPML_PCR_SELECTION pcrs;
    tether_agent_measured_boot_t measured_boot; /* as in a challenge */
    int64_t opens_ms;  /* CLOCK_MONOTONIC ms: the window opens (the scheduled refresh) */
    int64_t closes_ms; /* ... and closes, less the time an exchange may take */
} tether_next_challenge_t;

/* Milliseconds kept from the end of a next challenge's window: the TPM
 * part and the token request (the agent's request timeout) fit in it. */
#define TETHER_NEXT_CHALLENGE_MARGIN_MS 25000

/* Whether next is held and its window is open at now_ms (monotonic). */
bool tether_next_challenge_usable(const tether_next_challenge_t *next, int64_t now_ms);

/* Wipes next (held false); accepts NULL. */
void tether_next_challenge_forget(tether_next_challenge_t *next);

/* Whether the fleet's refusal code says that the held next challenge was
 * the problem (its nonce expired, not yet valid, used, not the fleet's; or
 * event logs the fleet does not hold): a fresh challenge helps. */
bool tether_exchange_code_wants_challenge(const char *code);

/* The first half of an exchange: a nonce from the fleet, then the TPM's
 * evidence over it, encoded as the subject_token (*subject_token is heap,
 * freed by the caller). When the challenge asks for measured boot,
 * *eventlog_params gets the form's event-log parameters
 * (exchange_eventlogs.h; heap, freed by the caller), else NULL. 0 on
 * success; otherwise result says why. tpm_lock, when not NULL, is held
 * around the TPM commands only (never while the fleet is asked); NULL when
 * the caller is the TPM's only user. */
int tether_agent_exchange_evidence(tether_https_client_t *client, tether_tpm_t *tpm,
                                   pthread_mutex_t *tpm_lock,
                                   const tether_agent_state_t *state, const tether_usage_t *usage,
                                   char **subject_token, char **eventlog_params,
                                   tether_exchange_result_t *result);

/* The same over the held next challenge (no request): next must be usable;
 * *eventlog_params as for tether_agent_exchange_evidence(), from the
 * next challenge's measured-boot member. */
int tether_agent_exchange_evidence_next(tether_tpm_t *tpm, pthread_mutex_t *tpm_lock,
                                        const tether_agent_state_t *state,
                                        const tether_usage_t *usage,
                                        const tether_next_challenge_t *next, char **subject_token,
                                        char **eventlog_params, tether_exchange_result_t *result);

/* The second half: POST /v1/token with the evidence and the event-log
 * parameters (NULL: none); the access token goes into token as for
 * tether_agent_exchange(), and the answer's next challenge into *next
 * (when not NULL; forgotten when the answer has none). 0 on success. */
int tether_agent_exchange_token(tether_https_client_t *client, const char *subject_token,
                                const char *eventlog_params, tether_next_challenge_t *next,
                                tether_secure_buffer_t *token,
                                tether_exchange_result_t *result);

/* Reads the fleet's answer to POST /v1/challenge ({"nonce": base64url of
 * TETHER_NONCE_SIZE bytes, "pcr_selection": "sha256:0,1,...", and for a
 * device whose policy has measured boot "measured_boot": {...}
 * (exchange_eventlogs.h)}). Pure; the outputs are zeroed first, and again on
 * error. TETHER_ERR_PARSE for any other answer. */
TETHER_MUST_CHECK tether_status_t tether_agent_exchange_read_challenge(
    const uint8_t *body, size_t len, uint8_t nonce[TETHER_NONCE_SIZE], TPML_PCR_SELECTION *pcrs,
    tether_agent_measured_boot_t *mb);

/* Reads the "next_challenge" of the fleet's 200 answer to POST /v1/token
 * ({"nonce", "pcr_selection" and "measured_boot" as in a challenge,
 * "valid_in" and "expires_in" in seconds from the answer}) received at received_ms
 * (monotonic) into *next. Pure; *next is forgotten first.
 * TETHER_ERR_NOT_FOUND without one (a fleet that sends none),
 * TETHER_ERR_PARSE for a malformed one or a window too short to use. */
TETHER_MUST_CHECK tether_status_t tether_agent_exchange_read_next(const uint8_t *body, size_t len,
                                                                  int64_t received_ms,
                                                                  tether_next_challenge_t *next);

/* Reads the fleet's 200 answer to POST /v1/token: the access token goes
 * into token (as for tether_agent_exchange()), its lifetime into
 * *expires_in (0 first). Pure; the parsed copy of the token is wiped.
 * TETHER_ERR_PARSE for an answer without a usable token (token untouched). */
TETHER_MUST_CHECK tether_status_t tether_agent_exchange_read_token(const uint8_t *body,
                                                                   size_t len,
                                                                   tether_secure_buffer_t *token,
                                                                   unsigned *expires_in);

/* What one refresh works with. */
typedef struct tether_exchange_context {
    tether_https_client_t *client;
    tether_tpm_t *tpm;
    pthread_mutex_t *tpm_lock; /* as for tether_agent_exchange_evidence */
    const tether_agent_state_t *state;
    /* The held next challenge, replaced by the answer's; NULL: every
     * exchange asks POST /v1/challenge. */
    tether_next_challenge_t *next;
    /* Asked before the token request: true stops the exchange there
     * (TETHER_EXCHANGE_RETRY "stopping"); NULL: never. */
    bool (*stopping)(void *arg);
    void *stopping_arg;
} tether_exchange_context_t;

/* One refresh: over the held next challenge when its window is open (it
 * is used once, whatever the outcome), else over a challenge asked for;
 * when the fleet refuses the next challenge's evidence as a nonce
 * (tether_exchange_code_wants_challenge), once more over a challenge. The
 * connection is closed at the end. On success the access token is written
 * NUL-terminated into token (a locked buffer of at least TETHER_TOKEN_MAX
 * + 1 bytes); it is never copied anywhere else. */
void tether_agent_refresh(const tether_exchange_context_t *ctx, const tether_usage_t *usage,
                          tether_secure_buffer_t *token, tether_exchange_result_t *result);

/* One exchange over a challenge asked for (tether_agent_refresh without a
 * next challenge). */
void tether_agent_exchange(tether_https_client_t *client, tether_tpm_t *tpm,
                           pthread_mutex_t *tpm_lock,
                           const tether_agent_state_t *state, const tether_usage_t *usage,
                           tether_secure_buffer_t *token, tether_exchange_result_t *result);

/* Whether the fleet's error code means "stop asking" (clone detected,
 * revoked, quarantined, unknown device). */
int tether_exchange_code_is_final(const char *code);

#endif
