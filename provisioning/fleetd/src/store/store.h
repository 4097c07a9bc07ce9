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

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tether/error.h"
#include "tether/metrics.h"
#include "tether/fleet_policy.h"
#include "tether/fleet_vocabulary.h"

#define TETHER_STORE_HASH_SIZE 32                  /* SHA-256 of a secret token */
#define TETHER_STORE_DEVICE_ID_SIZE 29             /* "dev_" + 24 hex digits + NUL */
#define TETHER_STORE_EK_SHA256_SIZE 65             /* 64 lowercase hex digits + NUL */
#define TETHER_STORE_NAME_MAX 64                   /* device and token names, bytes */
#define TETHER_STORE_REASON_MAX 256                /* status reasons, bytes */
#define TETHER_STORE_ENROLLMENT_ID_SIZE 37         /* "enr_" + 32 hex digits + NUL */
#define TETHER_STORE_AK_NAME_MAX 68                /* bytes: the largest TPM2B_NAME */
#define TETHER_STORE_SOURCE_SIZE 46                /* a source address, text (INET6_ADDRSTRLEN) */
/* The alert kind of an admin token minted on the fleet's host. */
#define TETHER_STORE_ALERT_ADMIN_TOKEN_MINTED "admin_token_minted"

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
    char source[TETHER_STORE_SOURCE_SIZE]; /* who sent it (IPv4 address or IPv6 /64) */
    bool has_bootstrap;
    uint8_t bootstrap_hash[TETHER_STORE_HASH_SIZE];
    int64_t created_at;
    int64_t expires_at;
} tether_store_enrollment_t;

/* The bounds on enrolments in flight (tether_store_enrollment_add). */
typedef struct tether_store_enrollment_bounds {
    unsigned max_per_ek;        /* of one EK, from any source; at least 1 */
    unsigned max_per_source;    /* of one EK from one source; at least 1 */
    int64_t protect_seconds;    /* one younger than this is never displaced */
} tether_store_enrollment_bounds_t;

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

/* Row callbacks for listings; a non-zero return stops the listing. They run
 * with the store locked: they must not call the store. */
typedef int (*tether_store_device_cb)(void *arg, const tether_store_device_t *device);
typedef int (*tether_store_admin_token_cb)(void *arg, const tether_store_admin_token_t *token);
typedef int (*tether_store_alert_cb)(void *arg, const tether_store_alert_t *alert);
typedef int (*tether_store_revocation_cb)(void *arg, const tether_store_revocation_t *rev);

/* A webhook delivery waiting in the outbox: its alert, and when the alert
 * was written (Unix milliseconds). Strings live as for a listing. */
#define TETHER_STORE_WEBHOOK_NAME_MAX 32 /* bytes of a webhook's name */
typedef struct tether_store_delivery {
    tether_store_alert_t alert;
    int64_t created_ms;
} tether_store_delivery_t;
typedef void (*tether_store_delivery_cb)(void *arg, const tether_store_delivery_t *delivery);

/* A webhook's outbox: deliveries waiting, and when the oldest's alert was
 * written (Unix milliseconds; 0 when none waits). */
typedef struct tether_store_webhook_pending {
    uint64_t count;
    int64_t oldest_ms;
} tether_store_webhook_pending_t;

/* Defined with the exchange's functions below. */
struct tether_store_exchange_device;
struct tether_store_exchange;
struct tether_store_exchange_result;
struct tether_store_issued_token;
struct tether_store_issuer_key;
struct tether_store_usage_report;
struct tether_store_usage_result;
struct tether_store_usage_row;
struct tether_store_policy;
struct tether_store_eventlog;

/* One exchange of a group commit (tether_store_ops_t.exchange_batch). */
typedef struct tether_store_exchange_item {
    const struct tether_store_exchange *exchange; /* borrowed for the call */
    int64_t now;
    struct tether_store_exchange_result *result; /* meaningful when status is TETHER_OK */
    tether_status_t status;                      /* set by exchange_batch */
} tether_store_exchange_item_t;

/* The connection pool's metrics (tether_store_set_pool_metrics): series
 * and metrics of the caller's registry that outlive the store; any may be
 * NULL. */
typedef struct tether_store_pool_metrics {
    tether_metric_series_t *in_use; /* gauge: connections running an operation */
    tether_metric_series_t *idle;   /* gauge: connections free */
    tether_metric_series_t *size;   /* gauge: connections opened */
    tether_metric_series_t *waits;  /* counter: operations that waited for a connection */
    tether_metric_t *retries; /* counter by operation: attempts lost to a serialization
                                 failure or a deadlock, tried again */
} tether_store_pool_metrics_t;

/* What an implementation provides. impl is its private state. */
typedef struct tether_store_ops {
    void (*close)(void *impl);
    tether_status_t (*schema_version)(void *impl, int *version);

    tether_status_t (*admin_token_create)(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                          unsigned roles, const char *name, int64_t now,
                                          int64_t *id);
    tether_status_t (*admin_token_find)(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                        tether_store_admin_token_t *token);
    tether_status_t (*admin_token_recover)(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                           unsigned roles, const char *name, int64_t uid,
                                           int64_t now, int64_t *id);
    tether_status_t (*admin_token_revoke)(void *impl, int64_t id, int64_t now,
                                          unsigned *last_roles);
    tether_status_t (*admin_token_list)(void *impl, tether_store_admin_token_cb cb, void *arg);

    tether_status_t (*device_import)(void *impl, const tether_store_allow_t *rows, size_t count,
                                     int64_t now, size_t *created, size_t *conflict_index);
    tether_status_t (*device_get)(void *impl, const char *id, tether_store_device_t *device);
    tether_status_t (*device_find_ek)(void *impl, const char *ek_sha256,
                                      tether_store_device_t *device);
    tether_status_t (*device_list)(void *impl, tether_store_device_cb cb, void *arg);
    tether_status_t (*device_counts)(void *impl, uint64_t counts[]);
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
                                      int64_t now, const tether_store_enrollment_bounds_t *bounds,
                                      int64_t *retry_after);
    tether_status_t (*enrollment_find)(void *impl, const char *id, int64_t now,
                                       tether_store_enrollment_t *enrollment);
    tether_status_t (*enrollment_delete)(void *impl, const char *id);
    tether_status_t (*enrollment_activate)(void *impl, const char *id, const char *new_device_id,
                                           int64_t now, tether_enroll_decision_t *decision,
                                           tether_store_device_t *device);
    tether_status_t (*enrollment_completed)(void *impl, const char *id,
                                            tether_store_device_t *device);

    tether_status_t (*alert_add)(void *impl, const char *device_id, const char *kind,
                                 const char *details_json, int64_t now);
    tether_status_t (*alert_list)(void *impl, int64_t after_id, unsigned limit,
                                  tether_store_alert_cb cb, void *arg);

    /* The webhook outbox (store_sqlite_webhooks.c). */
    tether_status_t (*webhook_sync)(void *impl, const char *const *names, size_t count,
                                    int64_t now, uint64_t *dropped);
    tether_status_t (*webhook_next)(void *impl, const char *webhook,
                                    tether_store_delivery_cb cb, void *arg);
    tether_status_t (*webhook_delivered)(void *impl, const char *webhook, int64_t alert_id);
    tether_status_t (*webhook_pending)(void *impl, const char *webhook,
                                       tether_store_webhook_pending_t *pending);
    void (*set_alert_hook)(void *impl, void (*fn)(void *arg), void *arg);
    /* NULL for an implementation without a pool (SQLite: one connection,
     * transactions serialised in the process, never retried). */
    void (*set_pool_metrics)(void *impl, const tether_store_pool_metrics_t *metrics);

    tether_status_t (*issued_token_add)(void *impl, const char *jti, const char *device_id,
                                        int64_t exp, int64_t now);
    tether_status_t (*issued_token_revoked)(void *impl, const char *jti, bool *revoked);
    tether_status_t (*revocation_list)(void *impl, int64_t after_seq, unsigned limit,
                                       tether_store_revocation_cb cb, void *arg);
    tether_status_t (*token_state)(void *impl, const char *jti, tether_store_token_state_t *state);
    tether_status_t (*revocation_head)(void *impl, int64_t *seq);

    /* Attested token exchange and issuer keys (store_sqlite_exchange.c). */
    tether_status_t (*exchange_device_get)(void *impl, const char *id,
                                           struct tether_store_exchange_device *device);
    /* count exchanges (1 or more), in one transaction with one durable
     * commit: in order, each decided on what the ones before it wrote, each
     * inside a savepoint of its own so that one failing (status not
     * TETHER_OK) is undone alone. When the transaction cannot begin or
     * commit, nothing is recorded and every status is that error. */
    void (*exchange_batch)(void *impl, tether_store_exchange_item_t *items, size_t count);
    tether_status_t (*issued_token_get)(void *impl, const char *jti,
                                        struct tether_store_issued_token *token);
    tether_status_t (*issuer_key_list)(void *impl,
                                       int (*cb)(void *arg,
                                                 const struct tether_store_issuer_key *key),
                                       void *arg);
    tether_status_t (*issuer_key_add_first)(void *impl, const struct tether_store_issuer_key *key);
    tether_status_t (*issuer_key_rotate)(void *impl, const struct tether_store_issuer_key *key,
                                         int64_t now, struct tether_store_issuer_key *retired);

    /* Usage reports of relying parties (store_sqlite_usage.c). */
    tether_status_t (*usage_report_record)(void *impl,
                                           const struct tether_store_usage_report *report,
                                           int64_t now, struct tether_store_usage_result *result);
    tether_status_t (*usage_unreported_check)(void *impl, int64_t now, int64_t grace,
                                              size_t *alerted);
    tether_status_t (*usage_list)(void *impl, const char *device_id, int64_t since,
                                  unsigned limit,
                                  int (*cb)(void *arg, const struct tether_store_usage_row *row),
                                  void *arg);

    /* Fleet policies (store_sqlite_policies.c). */
    tether_status_t (*policy_write)(void *impl, const char *name, const char *document,
                                    bool create, int64_t now, int64_t *version);
    tether_status_t (*policy_get)(void *impl, const char *name, int64_t version,
                                  struct tether_store_policy *policy);
    tether_status_t (*policy_list)(void *impl,
                                   int (*cb)(void *arg, const struct tether_store_policy *policy),
                                   void *arg);
    tether_status_t (*device_set_policy)(void *impl, const char *id, const char *name,
                                         int64_t now);
    tether_status_t (*device_policy)(void *impl, const char *id,
                                     struct tether_store_policy *policy);

    /* Measured boot's event logs (store_sqlite_eventlogs.c, store_pg_eventlogs.c). */
    tether_status_t (*eventlog_get)(void *impl, const char *device_id, int kind,
                                    bool with_bytes, struct tether_store_eventlog *log);
    tether_status_t (*eventlog_put)(void *impl, const char *device_id, int kind,
                                    const uint8_t *sha256, const uint8_t *bytes, size_t len,
                                    int64_t now);
} tether_store_ops_t;

/* Called after a change that appended to the revocation feed was committed
 * (from the thread that made it; it must not block). */
typedef void (*tether_store_revocation_hook_fn)(void *arg);

/* Exchanges waiting for a group commit (store_exchange.c). */
struct tether_store_exchange_waiter;
typedef struct tether_store_group_commit {
    pthread_mutex_t lock;
    pthread_cond_t finished;                   /* a batch was committed (or failed) */
    struct tether_store_exchange_waiter *head; /* waiting, in arrival order */
    struct tether_store_exchange_waiter *tail;
    size_t waiting;  /* in the queue */
    bool committing; /* a thread is running a batch */
    uint64_t batches, exchanges; /* counted since the store was initialised */
} tether_store_group_commit_t;

/* A store handle: caller-owned, init / open / free. */
typedef struct tether_store {
    const tether_store_ops_t *ops;
    void *impl;
    tether_store_revocation_hook_fn revocation_hook; /* NULL: none */
    void *revocation_hook_arg;
    tether_metric_t *transaction_seconds; /* NULL: not timed; else a histogram
                                             labelled by operation, outliving the store */
    tether_store_group_commit_t group_commit;
} tether_store_t;

void tether_store_init(tether_store_t *store);

/* Opens (creating if needed) the SQLite database at path: WAL journal,
 * synchronous FULL, busy timeout, foreign keys, and every pending migration
 * applied in one transaction. path must live only for the call. */
TETHER_MUST_CHECK tether_status_t tether_store_open_sqlite(tether_store_t *store, const char *path);

/* Whether location names a PostgreSQL database (a postgresql:// or
 * postgres:// URL) rather than a SQLite file. */
bool tether_store_is_postgresql(const char *location);

/* Opens the PostgreSQL database url names (libpq's URL syntax; a password
 * may come from the URL, ~/.pgpass or PGPASSFILE, a service file): a pool
 * of connections, each used by one operation at a time, and every pending
 * migration applied (store_pg_schema.c). Several fleetd replicas may open
 * the same database. url must live only for the call and is never logged. */
TETHER_MUST_CHECK tether_status_t tether_store_open_postgresql(tether_store_t *store,
                                                               const char *url,
                                                               unsigned connections);

/* Whether a PostgreSQL URL carries a password (in its user part or a
 * password parameter): the file that holds it must then be closed to
 * group and others. */
bool tether_store_url_has_password(const char *url);

/* tether_store_open_postgresql for a PostgreSQL URL, else
 * tether_store_open_sqlite on the file location names (connections is
 * then unused: SQLite has one). */
TETHER_MUST_CHECK tether_status_t tether_store_open(tether_store_t *store, const char *location,
                                                   unsigned connections);

/* Closes the store and wipes the handle; NULL and never-opened are fine. */
void tether_store_free(tether_store_t *store);

/* How many group commits recorded how many exchanges since the store was
 * initialised (their ratio is the mean batch size). */
void tether_store_group_commit_counts(tether_store_t *store, uint64_t *batches,
                                      uint64_t *exchanges);

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

/*
 * Records a started enrolment, in one transaction with the removal of every
 * expired one. Nothing is proven before activation (anyone may send a
 * victim's public EK and certificate with an AK of their own), so a new
 * enrolment never replaces one in flight: an EK holds several side by side,
 * each keyed by its own id, and the first to prove its secret wins. Two
 * bounds, checked in this order: max_per_source of the EK from the
 * enrolment's source (one forger's address cannot take every place), then
 * max_per_ek. At a bound, the oldest enrolment within it is dropped if it is
 * at least protect_seconds old (a genuine device answers in seconds; one
 * that old is abandoned or a forger's); otherwise the new one is refused
 * with TETHER_ERR_TOO_LARGE, nothing changes but the sweep, and
 * *retry_after (may be NULL) gets the seconds until the oldest may be
 * dropped (at least 1).
 */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_add(
    tether_store_t *store, const tether_store_enrollment_t *enrollment, int64_t now,
    const tether_store_enrollment_bounds_t *bounds, int64_t *retry_after);

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
 *   cleared, highest_counter 0 and the clockInfo fields reset, and the
 *   enrolment's id recorded (tether_store_enrollment_completed);
 * - every enrolment in flight for the EK is deleted (the others can only be
 *   a forger's or abandoned: the device is active now).
 * A refusal is TETHER_OK with *decision saying why, and changes nothing.
 * device (may be NULL) gets the device row after a grant.
 */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_activate(
    tether_store_t *store, const char *id, const char *new_device_id, int64_t now,
    tether_enroll_decision_t *decision, tether_store_device_t *device);

/* The active device whose last completed enrolment is id, for an activation
 * repeated after its answer was lost; TETHER_ERR_NOT_FOUND when there is
 * none (unknown id, or the device was revoked, quarantined or enrolled
 * again since). Changes nothing. */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_completed(
    tether_store_t *store, const char *id, tether_store_device_t *device);

/* details_json must be a JSON text (not checked here). */
TETHER_MUST_CHECK tether_status_t tether_store_alert_add(tether_store_t *store,
                                                         const char *device_id, const char *kind,
                                                         const char *details_json, int64_t now);
/* Alerts with id > after_id, oldest first, at most limit. */
TETHER_MUST_CHECK tether_status_t tether_store_alert_list(tether_store_t *store, int64_t after_id,
                                                          unsigned limit, tether_store_alert_cb cb,
                                                          void *arg);

/*
 * The webhook outbox (schema version 8). Every alert written, by any
 * operation or process, gets one delivery per webhook in the store, in the
 * alert's own transaction; a delivery stays until it is marked delivered.
 */

/* Makes names (count of them, each 1 to TETHER_STORE_WEBHOOK_NAME_MAX
 * bytes) the store's webhooks, in one transaction: new ones are added (they
 * get the alerts written from now on) and every other one is removed with
 * the deliveries it still had, counted in *dropped. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_sync(tether_store_t *store,
                                                            const char *const *names,
                                                            size_t count, int64_t now,
                                                            uint64_t *dropped);
/* The oldest delivery waiting for webhook (by alert id) to cb, which runs
 * with the store locked; TETHER_ERR_NOT_FOUND when none waits. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_next(tether_store_t *store,
                                                            const char *webhook,
                                                            tether_store_delivery_cb cb,
                                                            void *arg);
/* The delivery of alert_id to webhook is done: its row goes.
 * TETHER_ERR_NOT_FOUND when there was none. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_delivered(tether_store_t *store,
                                                                 const char *webhook,
                                                                 int64_t alert_id);
TETHER_MUST_CHECK tether_status_t tether_store_webhook_pending(
    tether_store_t *store, const char *webhook, tether_store_webhook_pending_t *pending);

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

/* Sets the function called after this process commits a change that
 * appends to the revocation feed (revoke, quarantine), so that waiting
 * relying parties hear of it at once. Set it before the store is shared
 * between threads. Other processes' changes are not seen here: poll
 * tether_store_revocation_head for those. */
void tether_store_set_revocation_hook(tether_store_t *store, tether_store_revocation_hook_fn fn,
                                      void *arg);

/* Sets the function called when this process inserts an alert, whichever
 * operation does (inside its transaction, with the store locked: it must
 * only signal, e.g. wake the webhook senders, which then wait for the store
 * and so for the commit). NULL clears it. Other processes' alerts are not
 * seen here: poll for those. */
void tether_store_set_alert_hook(tether_store_t *store, void (*fn)(void *arg), void *arg);

/* Times the write transactions (exchange, device_status,
 * enrollment_activate, usage_report) into histogram, whatever the
 * implementation. */
void tether_store_set_metrics(tether_store_t *store, tether_metric_t *histogram);

/* Counts the pool's connections, waits and retried transactions into
 * metrics (copied) when the implementation has a pool (PostgreSQL). */
void tether_store_set_pool_metrics(tether_store_t *store,
                                   const tether_store_pool_metrics_t *metrics);

/* Since start (CLOCK_MONOTONIC), one transaction of operation in the
 * store's histogram; for the dispatch layer. */
void tether_store_observe_since(tether_store_t *store, const char *operation,
                                const struct timespec *start);

/* ---- attested token exchange (DESIGN.md, "Attested token exchange",
 * "Clone detection"; store_sqlite_exchange.c, schema versions 3 and 5) ---- */

#define TETHER_STORE_BLOB_MAX 2048      /* a marshalled TPM structure of the device row */
#define TETHER_STORE_DIGEST_MAX 64      /* the PCR reference digest */
#define TETHER_STORE_FINGERPRINT_SIZE 32 /* tether_evidence_fingerprint() */
#define TETHER_STORE_NONCE_HASH_SIZE 32  /* SHA-256 of a challenge nonce */
#define TETHER_STORE_ADDRESS_SIZE 46    /* INET6_ADDRSTRLEN */
#define TETHER_STORE_JTI_SIZE 33        /* 32 lowercase hex digits + NUL */
#define TETHER_STORE_KID_SIZE 44        /* an RFC 7638 thumbprint (43 characters) + NUL */
#define TETHER_STORE_CLAIM_MAX 512      /* scope and audience of an issued token, bytes */
#define TETHER_STORE_KEY_FILE_MAX 128   /* an issuer key's file, relative to the fleet dir */

/* ---- usage reconciliation (DESIGN.md, "Usage counters and
 * reconciliation"; schema version 7, store_sqlite_reconcile.c) ----
 *
 * Each exchange carries the device's counts per recent token (its usage
 * document). Gateways only accept a request the device signed a proof for
 * (or proxied) first, so the requests gateways reported before the fleet
 * issued an exchange's nonce are at most what the device counted at that
 * exchange (the agent copies its counts after the nonce came): that is the
 * comparison made at the exchange. Once a token has expired (plus
 * TETHER_STORE_USAGE_LEEWAY, the longest clock leeway a gateway allows)
 * before the nonce, the device's count is final, and every gateway report,
 * however late, is compared with it when it arrives. More accepted than
 * made: someone else holds the token. */

/* Seconds a gateway may accept a token past its exp (tether-gate's
 * clock_leeway_seconds is at most 60). */
#define TETHER_STORE_USAGE_LEEWAY 60

typedef enum tether_store_usage_action {
    TETHER_STORE_USAGE_QUARANTINE = 0, /* alert, and quarantine the device (the clone path) */
    TETHER_STORE_USAGE_ALERT,          /* alert only */
} tether_store_usage_action_t;

/* One token of a usage document. */
typedef struct tether_store_device_usage {
    const char *jti; /* tokens the fleet did not issue to the device are ignored */
    int64_t proofs;
    int64_t requests;
    int64_t bearer;
} tether_store_device_usage_t;

/* A comparison that found more accepted than made. */
typedef struct tether_store_usage_comparison {
    char jti[TETHER_STORE_JTI_SIZE];
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    int64_t device_made;      /* max(proofs, requests): each request carries its own proof */
    int64_t gateway_accepted; /* requests the gateways reported, as compared */
    int64_t bearer;           /* times the device handed the token out as a bearer token */
    bool final;               /* the device's count came after the token expired */
} tether_store_usage_comparison_t;

/* A TPMS_CLOCK_INFO as the fleet keeps it. */
typedef struct tether_store_clock {
    uint64_t clock;         /* milliseconds */
    uint32_t reset_count;
    uint32_t restart_count;
    bool safe;
} tether_store_clock_t;

/* One exchange as the fleet saw it: what the TPM signed, who sent it, when. */
typedef struct tether_store_sighting {
    uint64_t counter;
    tether_store_clock_t clock;
    char address[TETHER_STORE_ADDRESS_SIZE]; /* "-" when unknown */
    int64_t at;
} tether_store_sighting_t;

/* What the exchange checks need of a device: its enrolment (TPM marshalled
 * as in enrolment_sessions) and its exchange state. */
typedef struct tether_store_exchange_device {
    tether_store_device_t device;
    uint8_t ek_public[TETHER_STORE_BLOB_MAX];         /* TPM2B_PUBLIC */
    size_t ek_public_len;
    uint8_t ak_public[TETHER_STORE_BLOB_MAX];         /* TPM2B_PUBLIC */
    size_t ak_public_len;
    uint8_t device_key_public[TETHER_STORE_BLOB_MAX]; /* TPM2B_PUBLIC */
    size_t device_key_public_len;
    uint8_t counter_public[TETHER_STORE_BLOB_MAX];    /* TPM2B_NV_PUBLIC */
    size_t counter_public_len;
    uint8_t pcr_digest[TETHER_STORE_DIGEST_MAX];      /* the reference quote digest ... */
    size_t pcr_digest_len;                            /* ... 0: none yet (trust on first use) */
    bool has_last;                  /* an exchange was accepted since the enrolment */
    tether_store_sighting_t last;   /* the last accepted exchange */
    uint8_t last_fingerprint[TETHER_STORE_FINGERPRINT_SIZE];
    int64_t last_nonce_expires_at;  /* its nonce's expiry; 0: unknown (before schema 5) */
} tether_store_exchange_device_t;

/* An issued access token (table issued_tokens). */
typedef struct tether_store_issued_token {
    char jti[TETHER_STORE_JTI_SIZE];
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    bool has_counter;
    uint64_t counter;  /* the exchange it was issued for */
    int64_t issued_at; /* iat */
    int64_t exp;
    bool revoked;
    char kid[TETHER_STORE_KID_SIZE];        /* "" for tokens from before schema 3 */
    char scope[TETHER_STORE_CLAIM_MAX + 1];
    char audience[TETHER_STORE_CLAIM_MAX + 1];
    /* The policy version its tether claim was made from; "" and 0 for
     * tokens from before schema 10. */
    char policy[TETHER_POLICY_NAME_MAX + 1];
    int64_t policy_version;
} tether_store_issued_token_t;

/* One verified exchange to record. Strings are borrowed for the call. */
typedef struct tether_store_exchange {
    const char *device_id;
    tether_store_sighting_t sighting;
    uint8_t fingerprint[TETHER_STORE_FINGERPRINT_SIZE];
    /* The challenge nonce the evidence answers (SHA-256 of its bytes) and
     * its expiry: an accepted exchange uses it up until then. */
    uint8_t nonce_hash[TETHER_STORE_NONCE_HASH_SIZE];
    int64_t nonce_expires_at;    /* unix seconds, from the checked nonce */
    const uint8_t *pcr_digest; /* the quote's digest: kept if the device has none yet */
    size_t pcr_digest_len;
    /* Set when tether_evidence_verify() refused the evidence as
     * clock_regression: valid signatures over a clock that went back, the
     * second clone signal. Nothing below is used then. */
    bool clock_regression;
    /* The token to record when the exchange is accepted. */
    const char *jti;
    const char *kid;
    const char *scope;
    const char *audience;
    int64_t exp; /* iat is sighting.at */
    const char *policy; /* the policy version its claims come from; NULL */
    int64_t policy_version; /* and 0: none recorded (its retry is refused) */
    /* The device's usage document (store.h, "usage reconciliation"): its
     * counts per token, reconciled before the exchange is accepted. */
    const struct tether_store_device_usage *usage;
    size_t usage_count;
    int64_t nonce_issued_at; /* when the fleet issued the evidence's nonce */
    tether_store_usage_action_t usage_action;
    /* The policy's source_networks threshold when the exchange comes from
     * an address (sighting.address) outside the policy's sources; NULL
     * otherwise. Alerted; with action quarantine the device is
     * quarantined instead of the token issued. */
    const tether_policy_threshold_t *source_threshold;
} tether_store_exchange_t;

typedef enum tether_store_exchange_decision {
    TETHER_STORE_EXCHANGE_ACCEPT = 0,       /* counter above the highest: recorded */
    TETHER_STORE_EXCHANGE_RETRY,            /* retry of the last accepted one (same fingerprint) */
    TETHER_STORE_EXCHANGE_CLONE,            /* counter not above the highest: quarantined */
    TETHER_STORE_EXCHANGE_CLOCK_REGRESSION, /* the clock went back: quarantined */
    TETHER_STORE_EXCHANGE_NOT_ACTIVE,       /* the device is no longer active: nothing changed */
    TETHER_STORE_EXCHANGE_NONCE_REUSED,     /* the nonce was used up: a replay, nothing changed */
    TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED, /* counter not above the highest over a nonce issued
                                               before the last accepted one: older evidence
                                               (lost, withheld, replayed), nothing changed */
    TETHER_STORE_EXCHANGE_USAGE_MISMATCH,   /* gateways accepted more on a token than the
                                               device made, action quarantine: quarantined */
    TETHER_STORE_EXCHANGE_SOURCE_REFUSED,   /* from outside the policy's sources, action
                                               quarantine: quarantined */
} tether_store_exchange_decision_t;

typedef struct tether_store_exchange_result {
    tether_store_exchange_decision_t decision;
    tether_device_status_t status; /* the device's status after the transaction */
    bool has_last;                 /* the last accepted sighting, as read in the transaction */
    tether_store_sighting_t last;
    tether_store_issued_token_t token; /* RETRY: the token issued for the retried exchange */
    size_t usage_mismatches; /* tokens found used by someone else (alerted) */
    tether_store_usage_comparison_t mismatch; /* the first of them */
    bool source_alerted; /* a source_networks alert was added (not repeated within an hour) */
} tether_store_exchange_result_t;

/* The clone rule, pure (DESIGN.md, "Clone detection"): row is the device and
 * nonce_used whether an accepted exchange used the evidence's nonce, both as
 * read inside the transaction. In this order: a device not active is
 * NOT_ACTIVE; the same counter with the fingerprint of the last accepted
 * exchange is a retry (its nonce is used, by that exchange); any other
 * evidence over a used nonce is a replay, NONCE_REUSED; a counter not above
 * the highest over a nonce that expires before the last accepted exchange's
 * (so was issued before it, in an earlier second: one TTL for all) is older
 * evidence, NONCE_SUPERSEDED. A clone answers a fresh nonce: a replay or a
 * late copy of an exchange proves nothing about a second TPM state, and
 * anyone who saw one must not take the device down. Then a clock that went
 * back is CLOCK_REGRESSION; a counter strictly above the highest accepted
 * one is accepted (gaps are normal); anything else is a clone. */
tether_store_exchange_decision_t tether_store_exchange_decide(
    const tether_store_exchange_device_t *row, const tether_store_exchange_t *exchange,
    bool nonce_used);

/* The alert details of a clone sighting, a malloc'd JSON text:
 * {"reason", "last_accepted": sighting|null, "this": sighting} with each
 * sighting {"counter", "clock_info": {"clock", "resetCount", "restartCount",
 * "safe"}, "source_address", "time"}; counters and clocks as exact integers. */
TETHER_MUST_CHECK tether_status_t tether_store_sighting_details(
    const char *reason, const tether_store_sighting_t *last, const tether_store_sighting_t *now,
    char **json);

/* The device with its enrolment and exchange state. TETHER_ERR_NOT_FOUND for
 * an unknown id. */
TETHER_MUST_CHECK tether_status_t tether_store_exchange_device_get(
    tether_store_t *store, const char *id, tether_store_exchange_device_t *device);

/*
 * Records a verified exchange in one transaction (BEGIN IMMEDIATE; committed
 * durably before the caller answers): the device row and whether the nonce
 * was used are read again and tether_store_exchange_decide()d on.
 * - ACCEPT: highest_counter, the clock, the PCR reference (if none yet), the
 *   fingerprint, address and time of this sighting are stored, the token
 *   is recorded in issued_tokens, and the nonce is used up (table
 *   used_nonces, until it expires; expired entries are purged);
 * - RETRY: nothing changes; result->token is the token issued for it
 *   (TETHER_ERR_NOT_FOUND if that row is gone);
 * - CLONE and CLOCK_REGRESSION: the device is quarantined with a status
 *   reason naming the sighting, every unexpired token of it is revoked, the
 *   revocation feed gets an entry and an alert ("clone_detected" or
 *   "clock_regression", details from tether_store_sighting_details) is added;
 * - NOT_ACTIVE, NONCE_REUSED and NONCE_SUPERSEDED: nothing changes.
 *
 * Group commit: exchanges recorded from several threads while a commit is
 * in flight wait for it to end, then the first of them records all that
 * are waiting (up to TETHER_STORE_GROUP_COMMIT_MAX, in arrival order) in
 * one transaction and one durable commit, each in a savepoint of its own
 * (exchange_batch): every exchange is decided as if alone and in that
 * order, one failing or quarantining never undoes another, and no caller
 * returns before the commit that holds its exchange (a failed commit fails
 * every exchange in it). No exchange waits for company: one alone is
 * committed at once. The store's "exchange" duration is timed from the
 * call, so it includes the wait for the commit in flight.
 */
#define TETHER_STORE_GROUP_COMMIT_MAX 64

TETHER_MUST_CHECK tether_status_t tether_store_exchange_record(
    tether_store_t *store, const tether_store_exchange_t *exchange, int64_t now,
    tether_store_exchange_result_t *result);

/* The issued token with this jti (for introspection and retries);
 * TETHER_ERR_NOT_FOUND when unknown. */
TETHER_MUST_CHECK tether_status_t tether_store_issued_token_get(tether_store_t *store,
                                                                const char *jti,
                                                                tether_store_issued_token_t *token);

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

/* ---- usage reports of relying parties (table token_usage, usage_reports;
 * schema version 6, store_sqlite_usage.c) ---- */

#define TETHER_STORE_USAGE_REPORT_ID_SIZE 65 /* 16 to 64 characters + NUL */
/* How long a report id is remembered: a relying party's retry of a report
 * whose answer it lost (within seconds or minutes) is counted once. */
#define TETHER_STORE_USAGE_REPORT_RETENTION (7 * 24 * 3600)
/* A total of token_usage stays a number a JSON double carries exactly. */
#define TETHER_STORE_USAGE_TOTAL_MAX 9007199254740991LL /* 2^53 - 1 */

/* What a relying party counted for one token since its last report. */
typedef struct tether_store_usage_entry {
    char jti[TETHER_STORE_JTI_SIZE];
    char device_id[TETHER_STORE_DEVICE_ID_SIZE]; /* as the relying party read it in the token */
    int64_t requests;          /* forwarded (answered or failed upstream) */
    int64_t refused;           /* refused by a ceiling after authorization */
    int64_t refused_models;    /* of refused: a model outside the allow lists */
    int64_t refused_sources;   /* of refused: a client outside the token's sources */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micros;       /* millionths of the relying party's currency */
    int64_t first_seen;        /* Unix seconds */
    int64_t last_seen;
} tether_store_usage_entry_t;

/* One report, borrowed for the call. */
typedef struct tether_store_usage_report {
    int64_t relying_party;  /* the admin token id of the caller */
    const char *gateway;    /* the name it gives itself */
    const char *report_id;
    uint8_t body_sha256[TETHER_STORE_HASH_SIZE]; /* tells a retry from another report */
    const tether_store_usage_entry_t *entries;
    size_t entry_count;
    tether_store_usage_action_t usage_action; /* for a token found used by someone else */
} tether_store_usage_report_t;

typedef enum tether_store_usage_decision {
    TETHER_STORE_USAGE_ACCEPTED = 0, /* counted */
    TETHER_STORE_USAGE_DUPLICATE,    /* this report (same id, same body) was counted already */
    TETHER_STORE_USAGE_ID_REUSED,    /* the id names another report of this relying party:
                                        nothing changed */
} tether_store_usage_decision_t;

typedef struct tether_store_usage_result {
    tether_store_usage_decision_t decision;
    size_t flagged; /* ACCEPTED: entries whose jti the fleet did not issue to that device */
    size_t mismatches; /* ACCEPTED: tokens now above their device's final count (alerted) */
    bool quarantined;  /* a device was quarantined for one (usage_action quarantine) or
                          for a threshold with action quarantine */
    size_t thresholds; /* ACCEPTED: rate thresholds newly crossed (alerted) */
} tether_store_usage_result_t;

/* A line of tether_store_usage_list: one device (device_id NULL), or one
 * token of a device. Strings live until the callback returns. */
typedef struct tether_store_usage_row {
    const char *device_id;
    const char *jti;       /* per-token lines; NULL for a device's line */
    int64_t tokens;        /* distinct tokens (per-device lines) */
    int64_t requests;
    int64_t refused;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micros;
    int64_t first_seen;
    int64_t last_seen;
    bool flagged;          /* some usage reported under another device or an unknown jti */
} tether_store_usage_row_t;

typedef int (*tether_store_usage_cb)(void *arg, const tether_store_usage_row_t *row);

/*
 * Counts a report in one transaction, or nothing of it:
 * - a report id this relying party sent within the retention is not
 *   counted again: DUPLICATE when the body is the same (a retry after a
 *   lost answer), ID_REUSED otherwise;
 * - else each entry is added to its token's totals for this relying party
 *   (first_seen the earliest, last_seen the latest). The usage belongs to
 *   the device the fleet issued the jti to; an entry whose jti the fleet
 *   never issued, or issued to another device than the entry names, is
 *   counted too (under the fleet's device, or the named one when the jti
 *   is unknown), flagged, and raises an alert "usage_device_mismatch":
 *   the relying party served those requests, and hiding them would hide
 *   a token used where it should not be. result->flagged counts them;
 * - report ids older than TETHER_STORE_USAGE_REPORT_RETENTION are purged.
 * A total past TETHER_STORE_USAGE_TOTAL_MAX is TETHER_ERR_TOO_LARGE with
 * nothing changed.
 */
TETHER_MUST_CHECK tether_status_t tether_store_usage_report_record(
    tether_store_t *store, const tether_store_usage_report_t *report, int64_t now,
    tether_store_usage_result_t *result);

/* The usage_unreported check (fleetd's service loop): every token that
 * gateways reported requests on, of an active device that has made no
 * exchange since the token expired, now more than grace seconds after its
 * exp (plus TETHER_STORE_USAGE_LEEWAY; tokens expired within
 * TETHER_STORE_USAGE_REPORT_RETENTION, at most 100 per call), gets one
 * alert "usage_unreported"
 * {"jti", "gateway_accepted", "exp", "last_exchange"}: the device stopped
 * reporting while its tokens were in use. Alert only: a device switched off
 * is no thief. *alerted counts the new alerts. */
TETHER_MUST_CHECK tether_status_t tether_store_usage_unreported_check(tether_store_t *store,
                                                                     int64_t now, int64_t grace,
                                                                     size_t *alerted);

/* Usage with last_seen >= since, summed over relying parties, at most
 * limit lines: per device (device_id NULL; ordered by device), or per token
 * of device_id (ordered by first_seen). */
TETHER_MUST_CHECK tether_status_t tether_store_usage_list(tether_store_t *store,
                                                          const char *device_id, int64_t since,
                                                          unsigned limit,
                                                          tether_store_usage_cb cb, void *arg);

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

/* ---- measured boot's event logs (store_sqlite_eventlogs.c,
 * store_pg_eventlogs.c; schema version 14) ---- */

/* The logs a device sends when its policy has a measured_boot section. */
typedef enum tether_store_eventlog_kind {
    TETHER_STORE_EVENTLOG_PLATFORM = 0, /* the platform's TCG PC Client log */
    TETHER_STORE_EVENTLOG_TETHER = 1,   /* tether's Canonical Event Log */
} tether_store_eventlog_kind_t;

/* The last accepted log of one kind of a device. */
typedef struct tether_store_eventlog {
    uint8_t sha256[32]; /* SHA-256 of bytes */
    uint8_t *bytes;     /* heap (tether_store_eventlog_free); NULL when not asked or empty */
    size_t len;
} tether_store_eventlog_t;

/* The device's last accepted log of kind, with its bytes when with_bytes;
 * TETHER_ERR_NOT_FOUND without one. *log is zeroed on entry; release it
 * with tether_store_eventlog_free. */
TETHER_MUST_CHECK tether_status_t tether_store_eventlog_get(tether_store_t *store,
                                                           const char *device_id,
                                                           tether_store_eventlog_kind_t kind,
                                                           bool with_bytes,
                                                           tether_store_eventlog_t *log);

/* Keeps bytes[0..len) (sha256 its SHA-256, which the caller computed) as
 * the device's last accepted log of kind, replacing the one before. */
TETHER_MUST_CHECK tether_status_t tether_store_eventlog_put(tether_store_t *store,
                                                           const char *device_id,
                                                           tether_store_eventlog_kind_t kind,
                                                           const uint8_t sha256[32],
                                                           const uint8_t *bytes, size_t len,
                                                           int64_t now);

/* Frees log->bytes and zeroes *log; accepts NULL. */
void tether_store_eventlog_free(tether_store_eventlog_t *log);

#endif
