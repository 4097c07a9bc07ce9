/*
 * What the store's implementations (SQLite, PostgreSQL) share: the rules
 * that do not depend on the database, written once (store.c). Not for any
 * other file: everything else goes through store.h.
 */
#ifndef TETHER_FLEET_STORE_BACKEND_H
#define TETHER_FLEET_STORE_BACKEND_H

#include <stdint.h>

#include "store.h"

/* The admin_tokens roles column's text (tether_roles_format's canonical
 * "read,fleet,security") for a valid, non-empty set of known roles, after
 * checking hash and name are given. */
tether_status_t tether_store_admin_token_roles(const uint8_t *hash, unsigned roles,
                                               const char *name, char role_text[64]);

/* Which status an action leads to, or TETHER_ERR_CONFLICT from this one. */
tether_status_t tether_store_status_after(tether_device_action_t action,
                                          tether_device_status_t from,
                                          tether_device_status_t *to);

/* The webhook names (each 1 to TETHER_STORE_WEBHOOK_NAME_MAX bytes) as a
 * JSON array, into *out (malloc'd; the caller frees it), for the one
 * statement of each store that takes the set. */
tether_status_t tether_store_webhook_names_json(const char *const *names, size_t count,
                                                char **out);

/* Logs that the store's implementation does not provide op (an operation
 * not yet written for PostgreSQL); TETHER_ERR_UNSUPPORTED. */
tether_status_t tether_store_unsupported(const char *op);

/* Every dispatch: TETHER_ERR_STATE on a store never opened. */
#define STORE_CALL(store, op, ...)                                                            \
    (((store) == NULL || (store)->ops == NULL) ? TETHER_ERR_STATE                             \
     : (store)->ops->op == NULL               ? tether_store_unsupported(#op)                 \
                                              : (store)->ops->op((store)->impl, __VA_ARGS__))

#endif
