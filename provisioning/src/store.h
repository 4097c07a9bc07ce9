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
#define TETHER_STORE_ENROLLMENT_ID_SIZE 37         /* "enr_" + 32 hex digits + NUL */
#define TETHER_STORE_AK_NAME_MAX 68                /* bytes: the largest TPM2B_NAME */

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

/* Bytes borrowed for the length of one call. */
typedef struct tether_store_blob {
    const uint8_t *data;
    size_t len;
} tether_store_blob_t;

/* A started enrolment (table enrolment_sessions; encodings in
 * store_schema.c). The blobs are only read by enrollment_add; find leaves
 * them empty. */
typedef struct tether_store_enrollment {
    char id[TETHER_STORE_ENROLLMENT_ID_SIZE];
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    tether_store_blob_t ek_public;         /* TPM2B_PUBLIC, marshalled */
    tether_store_blob_t ek_cert;           /* DER */
    tether_store_blob_t ak_public;         /* TPM2B_PUBLIC, marshalled */
    tether_store_blob_t ak_name;           /* nameAlg || digest */
    tether_store_blob_t device_key_public; /* TPM2B_PUBLIC, marshalled */
    tether_store_blob_t certify_attest;    /* TPM2B_ATTEST, marshalled */
    tether_store_blob_t certify_signature; /* TPMT_SIGNATURE, marshalled */
    tether_store_blob_t counter_public;    /* TPM2B_NV_PUBLIC, marshalled */
    uint32_t counter_index;
    char name[TETHER_STORE_NAME_MAX + 1]; /* "" when the device sent none */
    bool has_bootstrap;
    uint8_t bootstrap_hash[TETHER_STORE_HASH_SIZE];
    int64_t created_at;
    int64_t expires_at;
} tether_store_enrollment_t;

/* A bootstrap token's state, for the enrolment decision. */
typedef struct tether_store_bootstrap {
    int64_t id;
    int64_t expires_at;
    int64_t uses_left;
} tether_store_bootstrap_t;

/* Whether an EK may enrol (DESIGN.md, "Enrolment"), decided the same way
 * when the enrolment starts and again, inside the activation's transaction,
 * when it completes. */
typedef enum tether_enroll_decision {
    TETHER_ENROLL_GRANT_ALLOW_LIST = 0, /* its device row is allowed (allow list or reinstate) */
    TETHER_ENROLL_GRANT_BOOTSTRAP,      /* no device row; a valid bootstrap token */
    TETHER_ENROLL_ALREADY_ENROLLED,     /* active, quarantined, or revoked and not reinstated */
    TETHER_ENROLL_NOT_ALLOWED,          /* no device row and no bootstrap token */
    TETHER_ENROLL_TOKEN_UNKNOWN,        /* the bootstrap token was never issued */
    TETHER_ENROLL_TOKEN_EXPIRED,
    TETHER_ENROLL_TOKEN_USED,           /* no use left */
} tether_enroll_decision_t;

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

    tether_status_t (*enroll_authorize)(void *impl, const char *ek_sha256,
                                        const uint8_t *bootstrap_hash, int64_t now,
                                        tether_enroll_decision_t *decision,
                                        tether_store_device_t *device);
    tether_status_t (*enrollment_add)(void *impl, const tether_store_enrollment_t *enrollment,
                                      int64_t now);
    tether_status_t (*enrollment_find)(void *impl, const char *id, int64_t now,
                                       tether_store_enrollment_t *enrollment);
    tether_status_t (*enrollment_delete)(void *impl, const char *id);
    tether_status_t (*enrollment_activate)(void *impl, const char *id, const char *new_device_id,
                                           int64_t now, tether_enroll_decision_t *decision,
                                           tether_store_device_t *device);

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

/* ---- enrolment ---- */

/* The enrolment rule, pure: device is the row with the EK's hash (NULL when
 * there is none); token_presented says whether the device sent a bootstrap
 * token and token is its row (NULL when unknown). A device row decides
 * alone (a token neither helps a device that is already enrolled nor is used
 * up by one that is allowed); a token must be unexpired with a use left. */
tether_enroll_decision_t tether_enroll_decide(const tether_store_device_t *device,
                                              bool token_presented,
                                              const tether_store_bootstrap_t *token, int64_t now);
bool tether_enroll_decision_granted(tether_enroll_decision_t decision);

/* Reads what tether_enroll_decide needs for ek_sha256 and the SHA-256 of a
 * bootstrap token (NULL when none was sent; compared in constant time after
 * the index lookup) and decides. Changes nothing. device (may be NULL) gets
 * the device row, or an empty id when there is none. */
TETHER_MUST_CHECK tether_status_t tether_store_enroll_authorize(
    tether_store_t *store, const char *ek_sha256, const uint8_t *bootstrap_hash, int64_t now,
    tether_enroll_decision_t *decision, tether_store_device_t *device);

/* Records a started enrolment, in one transaction with the removal of every
 * expired one and of any other started for the same EK (a device has one
 * enrolment in flight; the table stays bounded by the allowed EKs). */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_add(
    tether_store_t *store, const tether_store_enrollment_t *enrollment, int64_t now);

/* TETHER_ERR_NOT_FOUND for an unknown id; TETHER_ERR_EXPIRED for one past
 * its expires_at, which is deleted. Fills all but the blobs. */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_find(
    tether_store_t *store, const char *id, int64_t now, tether_store_enrollment_t *enrollment);

/* TETHER_ERR_NOT_FOUND when already gone. */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_delete(tether_store_t *store,
                                                                 const char *id);

/*
 * Completes an enrolment whose proof the caller checked, in one transaction
 * (BEGIN IMMEDIATE): the session is read again (TETHER_ERR_NOT_FOUND, or
 * TETHER_ERR_EXPIRED after deleting it), the decision is made again from the
 * current rows, and only if it grants:
 * - a bootstrap grant consumes one use of the token;
 * - the device row is created (id new_device_id, the session's name or else
 *   the id) or updated (keeps its id and name) to status active, with the
 *   session's EK, AK, device key, certification and counter, allow_reenroll
 *   cleared, highest_counter 0 and the clockInfo fields reset;
 * - the session is deleted.
 * A refusal is TETHER_OK with *decision saying why, and changes nothing.
 * device (may be NULL) gets the device row after a grant.
 */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_activate(
    tether_store_t *store, const char *id, const char *new_device_id, int64_t now,
    tether_enroll_decision_t *decision, tether_store_device_t *device);

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
