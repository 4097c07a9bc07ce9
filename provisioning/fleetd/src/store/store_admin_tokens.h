/*
 * The store's admin tokens (tetherctl's credentials).
 */
#ifndef TETHER_FLEET_STORE_ADMIN_TOKENS_H
#define TETHER_FLEET_STORE_ADMIN_TOKENS_H

#include "store_types.h"

/* The alert kind of an admin token minted on the fleet's host. */
#define TETHER_STORE_ALERT_ADMIN_TOKEN_MINTED "admin_token_minted"

typedef struct tether_store_admin_token {
    int64_t id;
    char name[TETHER_STORE_NAME_MAX + 1];
    unsigned roles;
    int64_t created_at;
    int64_t revoked_at; /* 0 when not revoked */
} tether_store_admin_token_t;

typedef int (*tether_store_admin_token_cb)(void *arg, const tether_store_admin_token_t *token);

/* Admin tokens are stored as SHA-256 hashes only. find returns
 * TETHER_ERR_NOT_FOUND for an unknown or revoked token; the hash is compared
 * in constant time after the index lookup. */
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_create(
    tether_store_t *store, const uint8_t hash[TETHER_STORE_HASH_SIZE], unsigned roles,
    const char *name, int64_t now, int64_t *id);
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_find(
    tether_store_t *store, const uint8_t hash[TETHER_STORE_HASH_SIZE],
    tether_store_admin_token_t *token);
/* The offline recovery (tether-fleetd admin-token): creates the token as
 * admin_token_create does and, in the same transaction, an alert of kind
 * TETHER_STORE_ALERT_ADMIN_TOKEN_MINTED without a device, details
 * {"reason", "token_id", "name", "roles", "uid"} (uid: who ran it). *id
 * gets the new token's id. */
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_recover(
    tether_store_t *store, const uint8_t hash[TETHER_STORE_HASH_SIZE], unsigned roles,
    const char *name, int64_t uid, int64_t now, int64_t *id);
/* TETHER_ERR_NOT_FOUND for an unknown id, TETHER_ERR_CONFLICT if already
 * revoked. The fleet must stay administrable: TETHER_ERR_STATE, with
 * nothing changed, when no other unrevoked token would hold the security
 * role or the fleet role that this one holds; *last_roles gets those roles
 * (0 otherwise). The check and the revocation are one transaction. */
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_revoke(tether_store_t *store,
                                                                  int64_t id, int64_t now,
                                                                  unsigned *last_roles);
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_list(tether_store_t *store,
                                                                tether_store_admin_token_cb cb,
                                                                void *arg);

#endif
