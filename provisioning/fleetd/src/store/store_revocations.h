/*
 * The store's issued tokens as relying parties see them: revoked or not,
 * and the revocation feed.
 */
#ifndef TETHER_FLEET_STORE_REVOCATIONS_H
#define TETHER_FLEET_STORE_REVOCATIONS_H

#include "store_types.h"
#include "tether/fleet_vocabulary.h"

/* What introspection needs about one issued token, read in one statement:
 * its row in issued_tokens and its device's current status. */
typedef struct tether_store_token_state {
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    int64_t exp;
    bool revoked;
    tether_device_status_t device_status;
} tether_store_token_state_t;

typedef struct tether_store_revocation {
    int64_t seq;
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    const char *jti; /* NULL: every token of the device */
    const char *reason;
    int64_t created_at;
} tether_store_revocation_t;

typedef int (*tether_store_revocation_cb)(void *arg, const tether_store_revocation_t *rev);

/* Records an issued access token (its jti) for later revocation. */
TETHER_MUST_CHECK tether_status_t tether_store_issued_token_add(tether_store_t *store,
                                                                const char *jti,
                                                                const char *device_id,
                                                                int64_t exp, int64_t now);
TETHER_MUST_CHECK tether_status_t tether_store_issued_token_revoked(tether_store_t *store,
                                                                    const char *jti,
                                                                    bool *revoked);
/* Revocation feed entries with seq > after_seq, oldest first, at most limit. */
TETHER_MUST_CHECK tether_status_t tether_store_revocation_list(tether_store_t *store,
                                                               int64_t after_seq, unsigned limit,
                                                               tether_store_revocation_cb cb,
                                                               void *arg);

/* The state of the token with this jti (TETHER_ERR_NOT_FOUND when the
 * fleet never issued it), for introspection: one read, at request time, so
 * that a revocation committed before is always seen. */
TETHER_MUST_CHECK tether_status_t tether_store_token_state(tether_store_t *store, const char *jti,
                                                           tether_store_token_state_t *state);
/* The highest seq of the revocation feed (0 when it is empty). */
TETHER_MUST_CHECK tether_status_t tether_store_revocation_head(tether_store_t *store,
                                                               int64_t *seq);

#endif
