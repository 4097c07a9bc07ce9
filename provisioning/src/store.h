/*
 * The fleet store: every piece of fleetd state, behind one small interface
 * (a table of operations) so that SQLite (embedded, the default) and later
 * PostgreSQL (several replicas) can sit behind it. Every operation that
 * changes more than one row runs in one transaction: either all of it is
 * committed durably or nothing is.
 *
 * A store is safe to use from several threads at once. Strings passed in are
 * copied; strings handed to callbacks live until the callback returns.
 * Times are Unix seconds, chosen by the caller (so tests control them).
 */
#ifndef TETHER_FLEET_STORE_H
#define TETHER_FLEET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_STORE_HASH_SIZE 32                  /* SHA-256 of a secret token */
#define TETHER_STORE_DEVICE_ID_SIZE 29             /* "dev_" + 24 hex digits + NUL */
#define TETHER_STORE_EK_SHA256_SIZE 65             /* 64 lowercase hex digits + NUL */
#define TETHER_STORE_NAME_MAX 64                   /* device and token names, bytes */
#define TETHER_STORE_REASON_MAX 256                /* status reasons, bytes */

typedef enum tether_device_status {
    TETHER_DEVICE_ALLOWED = 0, /* may enrol; not enrolled yet */
    TETHER_DEVICE_PENDING,     /* enrolment started, credential not activated */
    TETHER_DEVICE_ACTIVE,      /* enrolled; may exchange evidence for tokens */
    TETHER_DEVICE_REVOKED,     /* by an operator; no tokens */
    TETHER_DEVICE_QUARANTINED, /* suspected clone; no tokens */
} tether_device_status_t;

/* Operator actions on a device's status. */
typedef enum tether_device_action {
    TETHER_DEVICE_REVOKE = 0,
    TETHER_DEVICE_QUARANTINE,
    TETHER_DEVICE_REINSTATE,
} tether_device_action_t;

/* Admin roles, a bit set. */
#define TETHER_ROLE_READ 0x1u
#define TETHER_ROLE_FLEET 0x2u
#define TETHER_ROLE_SECURITY 0x4u
#define TETHER_ROLE_ALL (TETHER_ROLE_READ | TETHER_ROLE_FLEET | TETHER_ROLE_SECURITY)

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
    int64_t created_at;
    int64_t updated_at;
} tether_store_device_t;

/* A device to allow (one row of an import). */
typedef struct tether_store_allow {
    char id[TETHER_STORE_DEVICE_ID_SIZE]; /* used only if the EK is new */
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    char name[TETHER_STORE_NAME_MAX + 1];
} tether_store_allow_t;

typedef struct tether_store_admin_token {
    int64_t id;
    char name[TETHER_STORE_NAME_MAX + 1];
    unsigned roles;
    int64_t created_at;
    int64_t revoked_at; /* 0 when not revoked */
} tether_store_admin_token_t;

typedef struct tether_store_alert {
    int64_t id;
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    const char *kind;
    const char *details_json;
    int64_t created_at;
} tether_store_alert_t;

typedef struct tether_store_revocation {
    int64_t seq;
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    const char *jti; /* NULL: every token of the device */
    const char *reason;
    int64_t created_at;
} tether_store_revocation_t;

/* Row callbacks for listings; a non-zero return stops the listing. They run
 * with the store locked: they must not call the store. */
typedef int (*tether_store_device_cb)(void *arg, const tether_store_device_t *device);
typedef int (*tether_store_admin_token_cb)(void *arg, const tether_store_admin_token_t *token);
typedef int (*tether_store_alert_cb)(void *arg, const tether_store_alert_t *alert);
typedef int (*tether_store_revocation_cb)(void *arg, const tether_store_revocation_t *rev);

/* What an implementation provides. impl is its private state. */
typedef struct tether_store_ops {
    void (*close)(void *impl);
    tether_status_t (*schema_version)(void *impl, int *version);

    tether_status_t (*admin_token_create)(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                          unsigned roles, const char *name, int64_t now,
                                          int64_t *id);
    tether_status_t (*admin_token_find)(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                        tether_store_admin_token_t *token);
    tether_status_t (*admin_token_revoke)(void *impl, int64_t id, int64_t now);
    tether_status_t (*admin_token_list)(void *impl, tether_store_admin_token_cb cb, void *arg);

    tether_status_t (*device_import)(void *impl, const tether_store_allow_t *rows, size_t count,
                                     int64_t now, size_t *created, size_t *conflict_index);
    tether_status_t (*device_get)(void *impl, const char *id, tether_store_device_t *device);
    tether_status_t (*device_find_ek)(void *impl, const char *ek_sha256,
                                      tether_store_device_t *device);
    tether_status_t (*device_list)(void *impl, tether_store_device_cb cb, void *arg);
    tether_status_t (*device_change_status)(void *impl, const char *id,
                                            tether_device_action_t action, const char *reason,
                                            int64_t now, tether_store_device_t *device);

    tether_status_t (*bootstrap_token_create)(void *impl,
                                              const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                              int64_t expires_at, unsigned uses, int64_t now);

    tether_status_t (*alert_add)(void *impl, const char *device_id, const char *kind,
                                 const char *details_json, int64_t now);
    tether_status_t (*alert_list)(void *impl, int64_t after_id, unsigned limit,
                                  tether_store_alert_cb cb, void *arg);

    tether_status_t (*issued_token_add)(void *impl, const char *jti, const char *device_id,
                                        int64_t exp, int64_t now);
    tether_status_t (*issued_token_revoked)(void *impl, const char *jti, bool *revoked);
    tether_status_t (*revocation_list)(void *impl, int64_t after_seq, unsigned limit,
                                       tether_store_revocation_cb cb, void *arg);
} tether_store_ops_t;

/* A store handle: caller-owned, init / open / free. */
typedef struct tether_store {
    const tether_store_ops_t *ops;
    void *impl;
} tether_store_t;

void tether_store_init(tether_store_t *store);

/* Opens (creating if needed) the SQLite database at path: WAL journal,
 * synchronous FULL, busy timeout, foreign keys, and every pending migration
 * applied in one transaction. path must live only for the call. */
TETHER_MUST_CHECK tether_status_t tether_store_open_sqlite(tether_store_t *store, const char *path);

/* Closes the store and wipes the handle; NULL and never-opened are fine. */
void tether_store_free(tether_store_t *store);

/* The newest schema version this build knows. */
int tether_store_latest_version(void);

TETHER_MUST_CHECK tether_status_t tether_store_schema_version(tether_store_t *store, int *version);

/* Admin tokens are stored as SHA-256 hashes only. find returns
 * TETHER_ERR_NOT_FOUND for an unknown or revoked token; the hash is compared
 * in constant time after the index lookup. */
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_create(
    tether_store_t *store, const uint8_t hash[TETHER_STORE_HASH_SIZE], unsigned roles,
    const char *name, int64_t now, int64_t *id);
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_find(
    tether_store_t *store, const uint8_t hash[TETHER_STORE_HASH_SIZE],
    tether_store_admin_token_t *token);
/* TETHER_ERR_NOT_FOUND for an unknown id, TETHER_ERR_CONFLICT if already revoked. */
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_revoke(tether_store_t *store,
                                                                  int64_t id, int64_t now);
TETHER_MUST_CHECK tether_status_t tether_store_admin_token_list(tether_store_t *store,
                                                                tether_store_admin_token_cb cb,
                                                                void *arg);

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

TETHER_MUST_CHECK tether_status_t tether_store_bootstrap_token_create(
    tether_store_t *store, const uint8_t hash[TETHER_STORE_HASH_SIZE], int64_t expires_at,
    unsigned uses, int64_t now);

/* details_json must be a JSON text (not checked here). */
TETHER_MUST_CHECK tether_status_t tether_store_alert_add(tether_store_t *store,
                                                         const char *device_id, const char *kind,
                                                         const char *details_json, int64_t now);
/* Alerts with id > after_id, oldest first, at most limit. */
TETHER_MUST_CHECK tether_status_t tether_store_alert_list(tether_store_t *store, int64_t after_id,
                                                          unsigned limit, tether_store_alert_cb cb,
                                                          void *arg);

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

/* Names used on the wire and in the database. */
const char *tether_device_status_name(tether_device_status_t status);
TETHER_MUST_CHECK tether_status_t tether_device_status_parse(const char *name,
                                                             tether_device_status_t *status);

/* Roles as "read,fleet,security" (canonical order) into out; parse accepts
 * the same names, comma-separated, and refuses unknown ones or an empty set. */
tether_status_t tether_roles_format(unsigned roles, char *out, size_t out_size);
TETHER_MUST_CHECK tether_status_t tether_roles_parse(const char *text, unsigned *roles);

#endif
