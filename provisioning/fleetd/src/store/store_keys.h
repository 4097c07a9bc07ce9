/*
 * The store's issuer keys.
 */
#ifndef TETHER_FLEET_STORE_KEYS_H
#define TETHER_FLEET_STORE_KEYS_H

#include "store_types.h"

/* ---- issuer keys (table issuer_keys) ---- */

typedef struct tether_store_issuer_key {
    char kid[TETHER_STORE_KID_SIZE];
    char file[TETHER_STORE_KEY_FILE_MAX]; /* relative to the fleet directory */
    int64_t created_at;
    int64_t retired_at; /* 0: the active (signing) key */
    int64_t not_after;  /* retired keys: published until then; 0 for the active key */
} tether_store_issuer_key_t;

typedef int (*tether_store_issuer_key_cb)(void *arg, const tether_store_issuer_key_t *key);

/* Every key, oldest first. */
TETHER_MUST_CHECK tether_status_t tether_store_issuer_key_list(tether_store_t *store,
                                                               tether_store_issuer_key_cb cb,
                                                               void *arg);

/* Records the first (active) key; TETHER_ERR_CONFLICT when the table holds
 * any key already. */
TETHER_MUST_CHECK tether_status_t tether_store_issuer_key_add_first(
    tether_store_t *store, const tether_store_issuer_key_t *key);

/* In one transaction: the active key is retired at now and stays published
 * until the last token it signed has expired (not_after = the latest exp of
 * issued_tokens with its kid, at least now); key (created_at set, retired_at
 * 0) becomes the active key. retired (may be NULL) gets the retired key.
 * TETHER_ERR_NOT_FOUND when there is no active key. */
TETHER_MUST_CHECK tether_status_t tether_store_issuer_key_rotate(
    tether_store_t *store, const tether_store_issuer_key_t *key, int64_t now,
    tether_store_issuer_key_t *retired);

#endif
