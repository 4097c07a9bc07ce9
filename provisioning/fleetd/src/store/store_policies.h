/*
 * The store's fleet policies.
 */
#ifndef TETHER_FLEET_STORE_POLICIES_H
#define TETHER_FLEET_STORE_POLICIES_H

#include "store_types.h"
#include "tether/fleet_policy.h"

/* ---- fleet policies (store_sqlite_policies.c; schema version 9) ---- */

/* One version of a named policy. The document is fleet_policy.h's
 * canonical form, checked by the caller before it is written. */
typedef struct tether_store_policy {
    char name[TETHER_POLICY_NAME_MAX + 1];
    int64_t version;
    int64_t created_at;
    char document[TETHER_POLICY_DOCUMENT_MAX + 1];
} tether_store_policy_t;

typedef int (*tether_store_policy_cb)(void *arg, const tether_store_policy_t *policy);

/* Writes a new version of the policy name (tether_policy_name_valid) in
 * one transaction: version 1 when create (TETHER_ERR_CONFLICT if the name
 * exists), else the current version + 1 (TETHER_ERR_NOT_FOUND if it does
 * not). Earlier versions are kept. *version gets the new version (0 on
 * entry). */
TETHER_MUST_CHECK tether_status_t tether_store_policy_write(tether_store_t *store,
                                                           const char *name,
                                                           const char *document, bool create,
                                                           int64_t now, int64_t *version);

/* Version version of the policy name, or its current one when version is
 * 0; TETHER_ERR_NOT_FOUND without it. *policy is zeroed on entry. */
TETHER_MUST_CHECK tether_status_t tether_store_policy_get(tether_store_t *store,
                                                         const char *name, int64_t version,
                                                         tether_store_policy_t *policy);

/* The current version of each policy, by name, to cb until it returns
 * non-zero. */
TETHER_MUST_CHECK tether_status_t tether_store_policy_list(tether_store_t *store,
                                                          tether_store_policy_cb cb, void *arg);

/* Makes device id follow the policy name: TETHER_ERR_NOT_FOUND when the
 * device or the policy does not exist (nothing changed then). */
TETHER_MUST_CHECK tether_status_t tether_store_device_set_policy(tether_store_t *store,
                                                                const char *id,
                                                                const char *name, int64_t now);

/* The current version of the policy device id follows;
 * TETHER_ERR_NOT_FOUND without the device (or its policy). */
TETHER_MUST_CHECK tether_status_t tether_store_device_policy(tether_store_t *store,
                                                            const char *id,
                                                            tether_store_policy_t *policy);

#endif
