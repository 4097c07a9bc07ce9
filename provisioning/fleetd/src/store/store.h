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
#include "store_admin_tokens.h"
#include "store_alerts.h"
#include "store_devices.h"
#include "store_enrollment.h"
#include "store_eventlogs.h"
#include "store_exchange.h"
#include "store_keys.h"
#include "store_policies.h"
#include "store_retention.h"
#include "store_revocations.h"
#include "store_types.h"
#include "store_usage.h"
#include "store_webhooks.h"

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
    tether_status_t (*webhook_claim)(void *impl, const char *webhook, int64_t now_ms,
                                     int64_t lease_ms, tether_store_delivery_cb cb, void *arg);
    tether_status_t (*webhook_retry_at)(void *impl, const char *webhook, int64_t alert_id,
                                        int64_t until_ms);
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

    /* Retention (store_sqlite_retention.c, store_pg_retention.c). */
    tether_status_t (*purge)(void *impl, const struct tether_store_purge *purge,
                             uint64_t *purged);
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

#endif
