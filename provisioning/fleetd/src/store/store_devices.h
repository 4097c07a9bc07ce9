/*
 * The store's devices: the allow list, import, status changes.
 */
#ifndef TETHER_FLEET_STORE_DEVICES_H
#define TETHER_FLEET_STORE_DEVICES_H

#include "store_types.h"
#include "tether/fleet_vocabulary.h"

/* Operator actions on a device's status. */
typedef enum tether_device_action {
    TETHER_DEVICE_REVOKE = 0,
    TETHER_DEVICE_QUARANTINE,
    TETHER_DEVICE_REINSTATE,
} tether_device_action_t;

/* The administrative view of a device (enrolment blobs are not included). */
typedef struct tether_store_device {
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char name[TETHER_STORE_NAME_MAX + 1];
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    tether_device_status_t status;
    char status_reason[TETHER_STORE_REASON_MAX + 1];
    bool allow_reenroll;
    bool enrolled;            /* an AK is bound to the EK */
    bool has_counter;         /* highest_counter is meaningful */
    uint64_t highest_counter; /* highest exchange counter accepted */
    char ak_name[2 * TETHER_STORE_AK_NAME_MAX + 1]; /* hex of nameAlg || digest; "" if none */
    bool has_counter_index;   /* counter_index is meaningful (enrolled) */
    uint32_t counter_index;   /* the exchange counter's NV index */
    int64_t created_at;
    int64_t updated_at;
} tether_store_device_t;

/* A device to allow (one row of an import). */
typedef struct tether_store_allow {
    char id[TETHER_STORE_DEVICE_ID_SIZE]; /* used only if the EK is new */
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    char name[TETHER_STORE_NAME_MAX + 1];
} tether_store_allow_t;

typedef int (*tether_store_device_cb)(void *arg, const tether_store_device_t *device);

/* Allows count devices in one transaction, idempotently: a row whose EK is
 * already known under the same name changes nothing; one known under another
 * name is TETHER_ERR_CONFLICT with *conflict_index set and nothing applied.
 * *created (may be NULL) gets the number of new devices. */
TETHER_MUST_CHECK tether_status_t tether_store_device_import(tether_store_t *store,
                                                             const tether_store_allow_t *rows,
                                                             size_t count, int64_t now,
                                                             size_t *created,
                                                             size_t *conflict_index);
TETHER_MUST_CHECK tether_status_t tether_store_device_get(tether_store_t *store, const char *id,
                                                          tether_store_device_t *device);
TETHER_MUST_CHECK tether_status_t tether_store_device_find_ek(tether_store_t *store,
                                                              const char *ek_sha256,
                                                              tether_store_device_t *device);
TETHER_MUST_CHECK tether_status_t tether_store_device_list(tether_store_t *store,
                                                           tether_store_device_cb cb, void *arg);

/* The devices of each status: counts[status] for every tether_device_status_t
 * (TETHER_STORE_DEVICE_STATUSES entries, zeroed first). One pass over the
 * devices: for a periodic gauge, not for every request. */
#define TETHER_STORE_DEVICE_STATUSES (TETHER_DEVICE_QUARANTINED + 1)
TETHER_MUST_CHECK tether_status_t tether_store_device_counts(
    tether_store_t *store, uint64_t counts[TETHER_STORE_DEVICE_STATUSES]);

/* Revoke, quarantine or reinstate, in one transaction:
 * - revoke / quarantine: the status changes, every unexpired token issued to
 *   the device is marked revoked and the revocation feed gets an entry;
 *   TETHER_ERR_CONFLICT if the device is already revoked (or, for quarantine,
 *   already quarantined).
 * - reinstate: a revoked or quarantined device goes back to "allowed" with
 *   re-enrolment allowed (its old keys are not trusted again);
 *   TETHER_ERR_CONFLICT for any other status.
 * device (may be NULL) gets the device after the change. */
TETHER_MUST_CHECK tether_status_t tether_store_device_change_status(
    tether_store_t *store, const char *id, tether_device_action_t action, const char *reason,
    int64_t now, tether_store_device_t *device);

#endif
