/*
 * The fleet's token signing keys, as a relying party learns them: the RFC
 * 8414 metadata at /.well-known/oauth-authorization-server names the issuer
 * (it must be the configured fleet URL), the jwks_uri and the revocation
 * feed; the JWKS holds the keys by kid. A token signed with a kid the
 * gateway does not hold makes it fetch both again, at most once every
 * TETHER_GATE_KEYS_REFRESH_SECONDS (so a key rotation needs no restart, and
 * forged kids cannot make it hammer the fleet).
 */
#ifndef TETHER_GATE_FLEET_KEYS_H
#define TETHER_GATE_FLEET_KEYS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fleet_client.h"
#include "tether/crypto.h"
#include "tether/jose.h"

#define TETHER_GATE_MAX_KEYS 16
#define TETHER_GATE_KID_MAX 64
#define TETHER_GATE_KEYS_REFRESH_SECONDS 5

typedef struct tether_gate_fleet_keys {
    pthread_rwlock_t lock; /* readers verify; a refresh swaps the set */
    pthread_mutex_t refresh_lock;
    bool locks_ready;
    tether_ec_key_t ec[TETHER_GATE_MAX_KEYS];
    char kid[TETHER_GATE_MAX_KEYS][TETHER_GATE_KID_MAX + 1];
    tether_jwt_key_t keys[TETHER_GATE_MAX_KEYS];
    size_t count;
    char feed_path[256]; /* the revocation feed's path under the fleet URL */
    int64_t last_fetch;  /* monotonic seconds of the last fetch attempt; 0: none */
    tether_gate_fleet_client_t client; /* under refresh_lock */
    bool connected;                    /* client set up */
    char issuer[256];
} tether_gate_fleet_keys_t;

void tether_gate_fleet_keys_init(tether_gate_fleet_keys_t *keys);

/* Prepares an empty key set for the issuer fleet_url; fetches nothing. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_keys_open(tether_gate_fleet_keys_t *keys,
                                                              const char *fleet_url);

/* Pins ca_file for the fleet's calls (see tether_https_client_setup; the
 * client's error explains a failure). Until then a refresh is
 * TETHER_ERR_STATE. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_keys_connect(tether_gate_fleet_keys_t *keys,
                                                                 const char *ca_file);

void tether_gate_fleet_keys_free(tether_gate_fleet_keys_t *keys);

/* Fetches the metadata and the JWKS now unless the last attempt was less
 * than TETHER_GATE_KEYS_REFRESH_SECONDS ago (mono_now: monotonic seconds);
 * TETHER_ERR_STATE when it was, or before tether_gate_fleet_keys_connect. On failure the keys held stay. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_keys_refresh(tether_gate_fleet_keys_t *keys,
                                                                 int64_t mono_now);

/* Replaces the key set with the keys of a JWKS document (EC P-256 keys with
 * a kid; others are skipped). Pure apart from the lock; for the unit tests
 * and refresh. TETHER_ERR_PARSE when it holds no usable key. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_keys_set(tether_gate_fleet_keys_t *keys,
                                                             const cJSON *jwks);

/* Reads the fleet's RFC 8414 metadata: it must name the issuer the keys
 * were opened for, and jwks_uri and tether_revocation_feed_endpoint under
 * the client's base URL (the gateway follows no link to another origin).
 * Pure; *jwks_path and *feed_path (NULL on failure) point into metadata.
 * TETHER_ERR_WRONG_ISSUER or TETHER_ERR_PROTOCOL, logged. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_keys_read_metadata(
    const tether_gate_fleet_keys_t *keys, const cJSON *metadata, const char **jwks_path,
    const char **feed_path);

/* tether_jwt_verify against the keys held; on TETHER_ERR_UNKNOWN_KEY (and
 * before any key is held) refreshes (rate-limited) and tries once more. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_keys_verify(tether_gate_fleet_keys_t *keys,
                                                                const char *token, size_t len,
                                                                const tether_jwt_expect_t *expect,
                                                                int64_t mono_now,
                                                                cJSON **claims_out);

/* How many keys are held (0 until the fleet was first reached). */
size_t tether_gate_fleet_keys_count(tether_gate_fleet_keys_t *keys);

/* Copies the feed's path (from the last metadata) into out; TETHER_ERR_STATE
 * before the metadata was read. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_keys_feed_path(tether_gate_fleet_keys_t *keys,
                                                                   char *out, size_t out_size);

#endif
