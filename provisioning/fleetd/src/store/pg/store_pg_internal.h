/*
 * Internal to the PostgreSQL store: what its files share. store_pg.c (open,
 * close, the table of operations) takes every operation from the file of
 * its subject; store_pg_db.c owns the connection pool and runs every
 * statement; store_pg_schema.c holds the schema. Not for any other file:
 * everything else goes through store.h.
 *
 * Several fleetd replicas may share one database, so nothing here relies on
 * a lock in this process: every change runs in a SERIALIZABLE transaction
 * (tether_pg_transaction), retried when PostgreSQL reports a serialization
 * failure or a deadlock, and the reads that decide a change are made inside
 * that transaction.
 */
#ifndef TETHER_FLEET_STORE_PG_INTERNAL_H
#define TETHER_FLEET_STORE_PG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store_backend.h"

/* How many times a transaction is tried when PostgreSQL aborts it for a
 * serialization failure (40001) or a deadlock (40P01). */
#define TETHER_PG_TRANSACTION_ATTEMPTS 8

/* Advisory lock keys (any constants, distinct): the schema migrations,
 * appends to the revocation feed (tether_pg_revoke_tokens), and the
 * enrolment transactions (tether_pg_transaction_serial). */
#define TETHER_PG_MIGRATION_LOCK 7426531
#define TETHER_PG_FEED_LOCK 7426532
#define TETHER_PG_ENROLMENT_LOCK 7426533

/* The columns tether_pg_device_row reads, in its order. */
#define PG_DEVICE_COLUMNS                                                                     \
    "id, name, ek_sha256, status, status_reason, allow_reenroll, "                            \
    "(ak_public IS NOT NULL)::int, highest_counter, created_at, updated_at, ak_name, "        \
    "counter_nv_index"
#define PG_SELECT_DEVICE_BY_ID "SELECT " PG_DEVICE_COLUMNS " FROM devices WHERE id = $1"
#define PG_SELECT_DEVICE_BY_EK "SELECT " PG_DEVICE_COLUMNS " FROM devices WHERE ek_sha256 = $1"

/* How many statements tether_pg_send holds back before a round trip
 * (more are sent by the same round trip's sync anyway). */
#define TETHER_PG_PIPELINE_MAX 16

/* The pool: count connections opened at tether_store_open_postgresql, each
 * used by one operation at a time. */
typedef struct pg_store {
    PGconn **conns;
    bool *busy;
    size_t count;
    size_t in_use;
    pthread_mutex_t lock; /* guards busy, in_use, the hook and the metrics */
    pthread_cond_t released;
    void (*alert_hook)(void *arg); /* tether_store_set_alert_hook */
    void *alert_hook_arg;
    tether_store_pool_metrics_t metrics; /* tether_store_set_pool_metrics; members may be NULL */
    tether_store_unreported_cursor_t unreported; /* the usage_unreported check's; under lock */
} pg_store_t;

typedef struct tether_pg_row tether_pg_row_t;
typedef tether_status_t (*tether_pg_row_fn)(void *arg, const tether_pg_row_t *row);

/* What became of a statement sent with tether_pg_send, filled in by the
 * round trip that ran it: read (NULL: none) got its first row; status is
 * TETHER_OK, its failure (as tether_pg_query_one's), TETHER_ERR_NOT_FOUND
 * when read was given and there was no row, or TETHER_ERR_STORE when an
 * earlier statement of the round trip failed and PostgreSQL skipped it. */
typedef struct tether_pg_sent {
    tether_pg_row_fn read;
    void *arg;
    tether_status_t status;
} tether_pg_sent_t;

/* One connection taken from the pool for one operation (or one attempt of
 * a transaction). */
typedef struct tether_pg {
    pg_store_t *s;
    PGconn *conn;
    size_t slot;
    bool retry;    /* a statement failed with 40001 or 40P01: the attempt is lost */
    bool alerted;  /* an alert was inserted: the hook runs after the commit */
    /* Statements sent in pipeline mode whose results are read at the next
     * round trip, in order. */
    struct {
        const char *what;
        tether_pg_sent_t *sent; /* NULL: only the round trip's status says */
    } pending[TETHER_PG_PIPELINE_MAX];
    size_t pending_count;
} tether_pg_t;

/* ---- store_pg_db.c ---- */

/* A statement parameter ($1, $2, ...). Text and blobs are borrowed for the
 * call. Integers and text go as text, blobs as binary (bytea). */
typedef struct tether_pg_value {
    enum {
        TETHER_PG_NULL,
        TETHER_PG_TEXT, /* NUL-terminated; NULL binds NULL */
        TETHER_PG_INT64,
        TETHER_PG_BLOB,
    } type;
    const void *data;
    size_t len; /* blob bytes */
    int64_t number;
} tether_pg_value_t;

#define PG_NULL ((tether_pg_value_t){.type = TETHER_PG_NULL})
#define PG_TEXT(text) ((tether_pg_value_t){.type = TETHER_PG_TEXT, .data = (text)})
#define PG_INT(n) ((tether_pg_value_t){.type = TETHER_PG_INT64, .number = (int64_t)(n)})
#define PG_BLOB(bytes, size)                                                                  \
    ((tether_pg_value_t){.type = TETHER_PG_BLOB, .data = (bytes), .len = (size)})
#define PG_ARGS(...)                                                                          \
    (const tether_pg_value_t[]){__VA_ARGS__},                                                \
        sizeof((const tether_pg_value_t[]){__VA_ARGS__}) / sizeof(tether_pg_value_t)
#define PG_NO_ARGS NULL, 0

/* A row of a result, read with the accessors below (text format). */
struct tether_pg_row {
    const PGresult *res;
    int row;
};

bool tether_pg_is_null(const tether_pg_row_t *row, int column);
/* The column's text; NULL for SQL NULL. Lives as long as the row. */
const char *tether_pg_text(const tether_pg_row_t *row, int column);
/* The column as an integer; 0 for NULL (as sqlite3_column_int64). */
int64_t tether_pg_int64(const tether_pg_row_t *row, int column);
/* A bytea column into out (at most size bytes); *len its length, 0 for
 * NULL. TETHER_ERR_TOO_LARGE when it does not fit. */
tether_status_t tether_pg_blob(const tether_pg_row_t *row, int column, uint8_t *out,
                               size_t size, size_t *len);
/* Copies the column's text (NULL: "") into out. */
tether_status_t tether_pg_copy_text(const tether_pg_row_t *row, int column, char *out,
                                    size_t out_size);
/* Whether the bytea in column is hash, compared in constant time (the
 * index lookup that found the row is not). */
bool tether_pg_hash_matches(const tether_pg_row_t *row, int column, const uint8_t *hash);

/* A row_fn for one integer column: arg is an int64_t. */
tether_status_t tether_pg_read_int64(void *arg, const tether_pg_row_t *row);

/* Runs sql (what names it in log lines) with args and reads its first
 * row through read (NULL: whether there is a row is the answer).
 * TETHER_ERR_NOT_FOUND without a row, TETHER_ERR_CONFLICT on a constraint
 * violation (SQLSTATE class 23), TETHER_ERR_STORE on any other failure,
 * logged without parameters. */
tether_status_t tether_pg_query_one(tether_pg_t *db, const char *what, const char *sql,
                                    const tether_pg_value_t *args, size_t count,
                                    tether_pg_row_fn read, void *arg);
/* A statement that returns no row; *changed (may be NULL) gets the number
 * of rows it inserted, updated or deleted. */
tether_status_t tether_pg_run(tether_pg_t *db, const char *what, const char *sql,
                              const tether_pg_value_t *args, size_t count, uint64_t *changed);

/* PostgreSQL's text form of a one-dimensional array of items (text, each
 * quoted and escaped; or integers), for a parameter cast to text[] or
 * bigint[]: one statement for many rows. *out is the caller's to free. */
tether_status_t tether_pg_text_array(const char *const *items, size_t count, char **out);
tether_status_t tether_pg_int_array(const int64_t *items, size_t count, char **out);

/* Pipeline mode (libpq 14+): sends a statement whose result decides no
 * statement after it, without waiting for it. It runs, in order, with the
 * next statement that waits for its result (tether_pg_query_one, _run,
 * _list_in) or at tether_pg_flush, in one round trip; sent (may be NULL;
 * it must live until then) gets its outcome. A failure aborts the
 * statements after it in that round trip, as it aborts the transaction.
 * sql is one statement. Returns TETHER_OK, or the status of the round trip
 * it had to make first when TETHER_PG_PIPELINE_MAX statements wait. */
tether_status_t tether_pg_send(tether_pg_t *db, const char *what, const char *sql,
                               const tether_pg_value_t *args, size_t count,
                               tether_pg_sent_t *sent);
/* Runs what tether_pg_send holds: TETHER_OK, or the first failure among
 * them (logged as their own). TETHER_OK when nothing waits. */
tether_status_t tether_pg_flush(tether_pg_t *db);

/* Every row of a query through read, until it returns a status other than
 * TETHER_OK or sets *stop. */
typedef struct tether_pg_list {
    tether_status_t (*read)(struct tether_pg_list *list, const tether_pg_row_t *row, bool *stop);
    union {
        tether_store_admin_token_cb admin_token;
        tether_store_device_cb device;
        tether_store_alert_cb alert;
        tether_store_revocation_cb revocation;
        tether_store_policy_cb policy;
        tether_store_issuer_key_cb issuer_key;
        tether_store_usage_cb usage;
    } cb;
    void *arg;
} tether_pg_list_t;

/* On db (inside its transaction). */
tether_status_t tether_pg_list_in(tether_pg_t *db, const char *what, const char *sql,
                                  const tether_pg_value_t *args, size_t count,
                                  tether_pg_list_t *list);
/* Takes a connection for the one statement. */
tether_status_t tether_pg_list(pg_store_t *s, const char *what, const char *sql,
                               const tether_pg_value_t *args, size_t count,
                               tether_pg_list_t *list);

/* tether_pg_query_one on a connection of its own, outside a transaction
 * (one statement is atomic by itself). */
tether_status_t tether_pg_query_once(pg_store_t *s, const char *what, const char *sql,
                                     const tether_pg_value_t *args, size_t count,
                                     tether_pg_row_fn read, void *arg);
/* tether_pg_run likewise. */
tether_status_t tether_pg_run_once(pg_store_t *s, const char *what, const char *sql,
                                   const tether_pg_value_t *args, size_t count, uint64_t *changed);

/* The body of a transaction: it may run several times (a retried attempt
 * starts from nothing), so it sets its outputs afresh each time. */
typedef tether_status_t (*tether_pg_body_fn)(tether_pg_t *db, void *arg);

/* Runs body in a SERIALIZABLE transaction, committed when it returns
 * TETHER_OK and rolled back otherwise; an attempt lost to a serialization
 * failure or deadlock is tried again, up to TETHER_PG_TRANSACTION_ATTEMPTS
 * times. Runs the alert hook after a commit that inserted an alert. */
tether_status_t tether_pg_transaction(pg_store_t *s, const char *what, tether_pg_body_fn body,
                                      void *arg);

/* tether_pg_transaction, every attempt run while this connection holds the
 * session advisory lock lock_key, taken before BEGIN: the transactions of
 * one key, in every process on the database, run one after another, each
 * with a snapshot taken after the previous one's commit, so they never
 * conflict with each other. For transactions that would (a shared row, or
 * predicate locks on a small table's few index pages: PostgreSQL's are
 * page-grained), which run concurrently would fail each other until some
 * ran out of attempts. */
tether_status_t tether_pg_transaction_serial(pg_store_t *s, const char *what, int64_t lock_key,
                                             tether_pg_body_fn body, void *arg);

/* The same at READ COMMITTED: each statement sees what was committed
 * before it, so one that waited on a lock reads what its holder wrote
 * (the schema migrations, serialized by an advisory lock). */
tether_status_t tether_pg_transaction_read_committed(pg_store_t *s, const char *what,
                                                     tether_pg_body_fn body, void *arg);

/* Takes a free connection from the pool (waiting for one), reconnecting a
 * broken one; release gives it back. */
tether_status_t tether_pg_acquire(pg_store_t *s, tether_pg_t *db);
void tether_pg_release(tether_pg_t *db);

/* Opens count connections to the database conninfo names (a postgresql://
 * URL or key=value words); the URL is never logged. */
tether_status_t tether_pg_pool_open(pg_store_t *s, const char *conninfo, size_t count);
void tether_pg_pool_close(pg_store_t *s);

/* ---- store_pg_schema.c ---- */

extern const char *const tether_pg_migrations[];
extern const size_t tether_pg_migration_count;

/* Applies every pending migration, each in its own transaction under an
 * advisory lock, so replicas starting together migrate once. */
tether_status_t tether_pg_migrate(pg_store_t *s);
tether_status_t tether_pg_read_version(tether_pg_t *db, int *version);

/* ---- store_pg_devices.c, shared with the other files ---- */

/* A devices row selected with PG_DEVICE_COLUMNS. */
tether_status_t tether_pg_device_row(const tether_pg_row_t *row, tether_store_device_t *device);
/* The device whose id (PG_SELECT_DEVICE_BY_ID), EK (PG_SELECT_DEVICE_BY_EK)
 * or other key sql selects; TETHER_ERR_NOT_FOUND without one. */
tether_status_t tether_pg_device_select(tether_pg_t *db, const char *sql, const char *key,
                                        tether_store_device_t *device);
/* The columns alerts and feed entries share, 0 to 4: cursor (id, seq),
 * device id, two texts (living as long as the row) and the time. */
tether_status_t tether_pg_page_columns(const tether_pg_row_t *row, int64_t *cursor,
                                      char device_id[TETHER_STORE_DEVICE_ID_SIZE],
                                      const char **first, const char **second,
                                      int64_t *created_at);
/* Marks every unexpired token of the device revoked and appends to the
 * revocation feed (inside the caller's transaction). */
tether_status_t tether_pg_revoke_tokens(tether_pg_t *db, const char *id, const char *reason,
                                        int64_t now);
/* Adds an alert (inside the caller's transaction); the alert hook runs
 * after the commit. */
tether_status_t tether_pg_alert_insert(tether_pg_t *db, const char *device_id, const char *kind,
                                       const char *details_json, int64_t now);

/* ---- store_pg_reconcile.c and store_pg_thresholds.c, inside the
 * caller's transaction (the rules of their SQLite counterparts) ---- */

/* An active device quarantined with reason, its live tokens revoked, the
 * feed appended; *quarantined: it was active and now is quarantined. */
tether_status_t tether_pg_quarantine_tx(tether_pg_t *db, const char *device_id,
                                        const char *reason, int64_t now, bool *quarantined);
tether_status_t tether_pg_usage_exchange_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                            int64_t now, tether_store_exchange_result_t *result,
                                            bool *quarantined);
tether_status_t tether_pg_usage_report_tx(tether_pg_t *db, const char *jti,
                                          tether_store_usage_action_t action, int64_t now,
                                          tether_store_usage_result_t *result);
tether_status_t tether_pg_thresholds_tx(tether_pg_t *db, const char *device_id,
                                        const tether_store_usage_entry_t *e, int64_t now,
                                        tether_store_usage_result_t *result);
tether_status_t tether_pg_source_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                    int64_t now, tether_store_exchange_result_t *result,
                                    bool *quarantined);

/* ---- the tether_store_ops_t entries, by file ---- */

/* store_pg_admin_tokens.c */
tether_status_t tether_pg_admin_token_create(void *impl,
                                             const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                             unsigned roles, const char *name, int64_t now,
                                             int64_t *id);
tether_status_t tether_pg_admin_token_recover(void *impl,
                                              const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                              unsigned roles, const char *name, int64_t uid,
                                              int64_t now, int64_t *id);
tether_status_t tether_pg_admin_token_find(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                           tether_store_admin_token_t *token);
tether_status_t tether_pg_admin_token_revoke(void *impl, int64_t id, int64_t now,
                                             unsigned *last_roles);
tether_status_t tether_pg_admin_token_list(void *impl, tether_store_admin_token_cb cb, void *arg);

/* store_pg_devices.c: devices, bootstrap tokens, alerts, issued tokens and
 * the revocation feed. */
tether_status_t tether_pg_device_get(void *impl, const char *id, tether_store_device_t *device);
tether_status_t tether_pg_device_find_ek(void *impl, const char *ek_sha256,
                                         tether_store_device_t *device);
tether_status_t tether_pg_device_list(void *impl, tether_store_device_cb cb, void *arg);
tether_status_t tether_pg_device_counts(void *impl, uint64_t counts[]);
tether_status_t tether_pg_device_import(void *impl, const tether_store_allow_t *rows, size_t count,
                                        int64_t now, size_t *created, size_t *conflict_index);
tether_status_t tether_pg_device_change_status(void *impl, const char *id,
                                               tether_device_action_t action, const char *reason,
                                               int64_t now, tether_store_device_t *device);
tether_status_t tether_pg_bootstrap_token_create(void *impl,
                                                 const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                 int64_t expires_at, unsigned uses, int64_t now);
tether_status_t tether_pg_alert_add(void *impl, const char *device_id, const char *kind,
                                    const char *details_json, int64_t now);
tether_status_t tether_pg_alert_list(void *impl, int64_t after_id, unsigned limit,
                                     tether_store_alert_cb cb, void *arg);
tether_status_t tether_pg_issued_token_add(void *impl, const char *jti, const char *device_id,
                                           int64_t exp, int64_t now);
tether_status_t tether_pg_issued_token_revoked(void *impl, const char *jti, bool *revoked);
tether_status_t tether_pg_revocation_list(void *impl, int64_t after_seq, unsigned limit,
                                          tether_store_revocation_cb cb, void *arg);
tether_status_t tether_pg_token_state(void *impl, const char *jti,
                                      tether_store_token_state_t *state);
tether_status_t tether_pg_revocation_head(void *impl, int64_t *seq);

/* store_pg_policies.c */
tether_status_t tether_pg_policy_write(void *impl, const char *name, const char *document,
                                       bool create, int64_t now, int64_t *version);
tether_status_t tether_pg_policy_get(void *impl, const char *name, int64_t version,
                                     tether_store_policy_t *policy);
tether_status_t tether_pg_policy_list(void *impl, tether_store_policy_cb cb, void *arg);
tether_status_t tether_pg_device_set_policy(void *impl, const char *id, const char *name,
                                            int64_t now);
tether_status_t tether_pg_device_policy(void *impl, const char *id, tether_store_policy_t *policy);

/* store_pg_webhooks.c: the webhook outbox. */
tether_status_t tether_pg_webhook_sync(void *impl, const char *const *names, size_t count,
                                       int64_t now, uint64_t *dropped);
tether_status_t tether_pg_webhook_claim(void *impl, const char *webhook, int64_t now_ms,
                                        int64_t lease_ms, tether_store_delivery_cb cb, void *arg);
tether_status_t tether_pg_webhook_retry_at(void *impl, const char *webhook, int64_t alert_id,
                                           int64_t until_ms);
tether_status_t tether_pg_webhook_delivered(void *impl, const char *webhook, int64_t alert_id);
tether_status_t tether_pg_webhook_pending(void *impl, const char *webhook,
                                          tether_store_webhook_pending_t *pending);

/* store_pg_enrollment.c */
tether_status_t tether_pg_enroll_authorize(void *impl, const char *ek_sha256,
                                           const uint8_t *bootstrap_hash, int64_t now,
                                           tether_enroll_decision_t *decision,
                                           tether_store_device_t *device);
tether_status_t tether_pg_enrollment_add(void *impl, const tether_store_enrollment_t *e,
                                         int64_t now,
                                         const tether_store_enrollment_bounds_t *bounds,
                                         int64_t *retry_after);
tether_status_t tether_pg_enrollment_find(void *impl, const char *id, int64_t now,
                                          tether_store_enrollment_t *e);
tether_status_t tether_pg_enrollment_delete(void *impl, const char *id);
tether_status_t tether_pg_enrollment_activate(void *impl, const char *id,
                                              const char *new_device_id, int64_t now,
                                              tether_enroll_decision_t *decision,
                                              tether_store_device_t *device);
tether_status_t tether_pg_enrollment_completed(void *impl, const char *id,
                                               tether_store_device_t *device);

/* store_pg_exchange.c: the exchange and the issuer keys. */
tether_status_t tether_pg_exchange_device_get(void *impl, const char *id,
                                              tether_store_exchange_device_t *device);
void tether_pg_exchange_batch(void *impl, tether_store_exchange_item_t *items, size_t count);
tether_status_t tether_pg_issued_token_get(void *impl, const char *jti,
                                           tether_store_issued_token_t *token);
tether_status_t tether_pg_issuer_key_list(void *impl, tether_store_issuer_key_cb cb, void *arg);
tether_status_t tether_pg_issuer_key_add_first(void *impl, const tether_store_issuer_key_t *key);
tether_status_t tether_pg_issuer_key_rotate(void *impl, const tether_store_issuer_key_t *key,
                                            int64_t now, tether_store_issuer_key_t *retired);

/* store_pg_usage.c and store_pg_reconcile.c: usage reports. */
tether_status_t tether_pg_usage_report_record(void *impl, const tether_store_usage_report_t *report,
                                              int64_t now, tether_store_usage_result_t *result);
tether_status_t tether_pg_usage_unreported_check(void *impl, int64_t now, int64_t grace,
                                                 size_t *alerted);
tether_status_t tether_pg_usage_list(void *impl, const char *device_id, int64_t since,
                                     unsigned limit, tether_store_usage_cb cb, void *arg);

/* store_pg_eventlogs.c */
tether_status_t tether_pg_eventlog_get(void *impl, const char *device_id, int kind,
                                       bool with_bytes, tether_store_eventlog_t *log);
tether_status_t tether_pg_eventlog_put(void *impl, const char *device_id, int kind,
                                       const uint8_t *sha256, const uint8_t *bytes, size_t len,
                                       int64_t now);

/* store_pg_retention.c */
tether_status_t tether_pg_purge(void *impl, const tether_store_purge_t *purge, uint64_t *purged);

#endif
