/*
 * The keys that sign this fleet's access tokens (DESIGN.md, "Revocation and
 * containment": "The issuer's signing keys rotate (kid), with old keys kept
 * in /.well-known/jwks.json until their tokens expire").
 *
 * ES256 (P-256) keys, named by kid = the RFC 7638 thumbprint of the public
 * key. DIR/issuer-key.pem (made by init) is the first; each rotation makes
 * DIR/issuer-keys/KID.pem (0600, directory 0700). The store's issuer_keys
 * table says which one signs (the one without retired_at) and until when a
 * retired one stays published (not_after: the latest exp of the tokens it
 * signed). The store is the truth; this module loads the keys a live token
 * may need and signs with the active one.
 *
 * Several fleetd replicas may share one store (PostgreSQL): a rotation on
 * one is seen by the others, which read the store's active kid again at
 * most every TETHER_ISSUER_KEYS_REFRESH_SECONDS (when they lock the keys)
 * and load the keys again when it changed; the new key's file must be in
 * their fleet directory too (a shared issuer-keys/), else they keep the
 * keys they have and log what to copy.
 *
 * Thread safety: one mutex guards the keys and every use of them (mbedTLS
 * contexts are not to be used from two threads at once). Lock order: this
 * mutex, then the store's; never the other way round.
 *
 * For introspection and other verifiers in fleetd: tether_issuer_keys_acquire
 * gives the verification keys as a tether_jwt_keyset_t (and the issuer
 * string), valid until tether_issuer_keys_release; or
 * tether_issuer_keys_verify does the whole check.
 */
#ifndef TETHER_FLEET_ISSUER_KEYS_H
#define TETHER_FLEET_ISSUER_KEYS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "store.h"
#include "tether/error.h"
#include "tether/jose.h"

#define TETHER_ISSUER_KEYS_DIR "issuer-keys"
#define TETHER_ISSUER_FIRST_KEY_FILE "issuer-key.pem" /* fleet.h's TETHER_FLEET_ISSUER_KEY_FILE */
/* How often a rotation on another replica is looked for, seconds. */
#define TETHER_ISSUER_KEYS_REFRESH_SECONDS 5

typedef struct tether_issuer_key {
    tether_store_issuer_key_t row;
    tether_ec_key_t pk; /* the private key */
} tether_issuer_key_t;

typedef struct tether_issuer_keys {
    pthread_mutex_t lock;
    bool lock_ready;
    char *dir;              /* the fleet directory */
    tether_store_t *store;  /* borrowed: must outlive the keys */
    char issuer[TETHER_CONFIG_VALUE_MAX]; /* the tokens' iss */
    tether_issuer_key_t **keys; /* the active key and the retired ones still published */
    size_t count;
    size_t active;              /* index of the signing key */
    tether_jwt_key_t *jwt;      /* keyset storage for acquire, count entries */
    struct timespec checked_at; /* CLOCK_MONOTONIC: the store's active kid last read */
} tether_issuer_keys_t;

void tether_issuer_keys_init(tether_issuer_keys_t *keys);

/* Loads the keys of the fleet in dir as of now. A fleet whose table is
 * still empty (made before rotation existed) records DIR/issuer-key.pem as
 * its first key. Every file must hold the P-256 private key its kid names;
 * the active key's file must be there (a retired key's missing file is
 * logged and skipped). issuer is the tokens' iss (copied). */
TETHER_MUST_CHECK tether_status_t tether_issuer_keys_open(tether_issuer_keys_t *keys,
                                                          const char *dir, tether_store_t *store,
                                                          const char *issuer, int64_t now);

/* Releases everything and wipes the struct; accepts NULL and unopened. */
void tether_issuer_keys_free(tether_issuer_keys_t *keys);

/* A new P-256 key becomes the signing key: its file is written first
 * (0600), then the store retires the old key and records the new one in one
 * transaction (the file is removed if that fails). active and retired (may
 * be NULL) get the two rows. Waits for exchanges that hold the lock. */
TETHER_MUST_CHECK tether_status_t tether_issuer_keys_rotate(tether_issuer_keys_t *keys,
                                                            int64_t now,
                                                            tether_store_issuer_key_t *active,
                                                            tether_store_issuer_key_t *retired);

/* ---- signing, for the token endpoint ----
 * lock, then active_kid and sign (any number of times), then unlock: the
 * exchange holds the lock from choosing the kid until the token is signed,
 * so that a rotation computes its not_after from every token the old key
 * will ever sign. */
void tether_issuer_keys_lock(tether_issuer_keys_t *keys);
void tether_issuer_keys_unlock(tether_issuer_keys_t *keys);
/* The signing key's kid (lock held; valid until unlock). */
const char *tether_issuer_keys_active_kid(const tether_issuer_keys_t *keys);
/* Signs claims as an at+jwt with the key kid if it is loaded, else with the
 * active key (a retry is re-signed by the key that signed it first);
 * *kid_used (may be NULL) points at the kid used (valid until unlock). Lock
 * held. Output as tether_jwt_sign. */
TETHER_MUST_CHECK tether_status_t tether_issuer_keys_sign_locked(tether_issuer_keys_t *keys,
                                                                 const char *kid,
                                                                 const cJSON *claims, char *out,
                                                                 size_t out_size, size_t *out_len,
                                                                 const char **kid_used);

/* ---- verification, for introspection and relying-party endpoints ---- */

/* Locks and fills *set with every key a live token may be signed with as of
 * now (the active key and the retired ones not past not_after); *issuer
 * (may be NULL) gets the iss to expect. Both stay valid, and no other
 * thread uses the keys, until tether_issuer_keys_release. */
TETHER_MUST_CHECK tether_status_t tether_issuer_keys_acquire(tether_issuer_keys_t *keys,
                                                             int64_t now,
                                                             tether_jwt_keyset_t *set,
                                                             const char **issuer);
void tether_issuer_keys_release(tether_issuer_keys_t *keys);

/* tether_jwt_verify against the published keys and the fleet's issuer;
 * expect->issuer is filled in here (the caller sets audience, now,
 * leeway). */
TETHER_MUST_CHECK tether_status_t tether_issuer_keys_verify(tether_issuer_keys_t *keys,
                                                            const char *token, size_t len,
                                                            tether_jwt_expect_t *expect,
                                                            cJSON **claims_out);

/* {"keys": [JWK...]} of the published keys as of now: public JWKs with
 * kid, "use": "sig", "alg": "ES256" (the caller deletes it). */
TETHER_MUST_CHECK tether_status_t tether_issuer_keys_jwks(tether_issuer_keys_t *keys, int64_t now,
                                                          cJSON **jwks);

#endif
