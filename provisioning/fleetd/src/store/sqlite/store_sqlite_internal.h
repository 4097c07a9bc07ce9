/*
 * Internal to the SQLite store: what its files share. store_sqlite.c (the
 * schema, open and close, the table of operations) takes every operation
 * from the file of its subject; store_sqlite_db.c runs every statement. Not
 * for any other file: everything else goes through store.h.
 */
#ifndef TETHER_FLEET_STORE_SQLITE_INTERNAL_H
#define TETHER_FLEET_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store_backend.h"

/* One connection; every operation holds lock (see store_sqlite.c). */
/* Prepared statements kept for reuse, by their SQL text: the exchange runs
 * the same few dozen statements every time, and preparing one costs more
 * than running it. */
#define TETHER_SQLITE_CACHED_STATEMENTS 128
/* Slots a text may be kept in, from the one its hash names (open
 * addressing: texts that share a slot each keep a statement). */
#define TETHER_SQLITE_STATEMENT_PROBES 4

typedef struct sqlite_cached_statement {
    sqlite3_stmt *stmt; /* NULL: an empty slot */
    uint32_t hash;      /* of its SQL text */
    bool in_use;        /* stepping now (a list's reader may run another statement) */
} sqlite_cached_statement_t;

typedef struct sqlite_store {
    sqlite3 *db;
    pthread_mutex_t lock;
    sqlite_cached_statement_t statements[TETHER_SQLITE_CACHED_STATEMENTS];
    void (*alert_hook)(void *arg); /* tether_store_set_alert_hook */
    void *alert_hook_arg;
    tether_store_unreported_cursor_t unreported; /* the usage_unreported check's */
} sqlite_store_t;

/* The columns tether_sqlite_device_row reads, in its order. */
#define DEVICE_COLUMNS                                                                        \
    "id, name, ek_sha256, status, status_reason, allow_reenroll, ak_public IS NOT NULL, "    \
    "highest_counter, created_at, updated_at, ak_name, counter_nv_index"
#define SELECT_DEVICE_BY_ID "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = ?"
#define SELECT_DEVICE_BY_EK "SELECT " DEVICE_COLUMNS " FROM devices WHERE ek_sha256 = ?"

/* ---- store_sqlite_db.c: every statement goes through these, with
 * s->lock held ---- */

/* Logs what failed with SQLite's message; TETHER_ERR_STORE. */
tether_status_t tether_sqlite_fail(sqlite_store_t *s, const char *what);
/* Finalizes every cached statement (before the database closes). */
void tether_sqlite_statements_free(sqlite_store_t *s);
/* SQL without parameters or rows (pragmas, migrations, transactions). */
tether_status_t tether_sqlite_exec(sqlite_store_t *s, const char *sql);
/* BEGIN IMMEDIATE. */
tether_status_t tether_sqlite_begin(sqlite_store_t *s);
/* COMMIT when rc is TETHER_OK, else ROLLBACK; returns the outcome. */
tether_status_t tether_sqlite_finish(sqlite_store_t *s, tether_status_t rc);

/* A statement parameter. Text and blobs are borrowed (SQLITE_STATIC):
 * they must not change until the statement is done. */
typedef struct tether_sqlite_value {
    enum {
        TETHER_SQLITE_NULL,
        TETHER_SQLITE_TEXT, /* NUL-terminated; NULL binds NULL */
        TETHER_SQLITE_INT64,
        TETHER_SQLITE_BLOB,
    } type;
    const void *data;
    size_t len; /* blob bytes */
    int64_t number;
} tether_sqlite_value_t;

#define SQL_NULL ((tether_sqlite_value_t){.type = TETHER_SQLITE_NULL})
#define SQL_TEXT(text) ((tether_sqlite_value_t){.type = TETHER_SQLITE_TEXT, .data = (text)})
#define SQL_INT(n) ((tether_sqlite_value_t){.type = TETHER_SQLITE_INT64, .number = (int64_t)(n)})
#define SQL_BLOB(bytes, size)                                                                 \
    ((tether_sqlite_value_t){.type = TETHER_SQLITE_BLOB, .data = (bytes), .len = (size)})
/* A statement's parameters in order (?1, ?2, ...), as the pointer and
 * count the functions below take: SQL_ARGS(SQL_TEXT(id), SQL_INT(now)). */
#define SQL_ARGS(...)                                                                         \
    (const tether_sqlite_value_t[]){__VA_ARGS__},                                            \
        sizeof((const tether_sqlite_value_t[]){__VA_ARGS__}) / sizeof(tether_sqlite_value_t)
#define SQL_NO_ARGS NULL, 0

/* For a statement run many times (an import): prepare once, then reset,
 * bind and step each time; the caller finalizes it. */
tether_status_t tether_sqlite_prepare(sqlite_store_t *s, const char *sql, sqlite3_stmt **stmt);
/* Binds args to the parameters of a prepared statement, from ?1 on. */
tether_status_t tether_sqlite_bind(sqlite_store_t *s, sqlite3_stmt *stmt,
                                   const tether_sqlite_value_t *args, size_t count);

/* Prepares sql (what names it in log lines), binds args and runs it to
 * the end: a statement that returns no row. A constraint violation (a
 * duplicate) is TETHER_ERR_CONFLICT, not a database failure. */
tether_status_t tether_sqlite_run(sqlite_store_t *s, const char *what, const char *sql,
                                  const tether_sqlite_value_t *args, size_t count);

/* Reads the current row into arg; a status other than TETHER_OK ends the
 * query with it. */
typedef tether_status_t (*tether_sqlite_row_fn)(void *arg, sqlite3_stmt *row);

/* A row_fn for one integer column: arg is an int64_t. */
tether_status_t tether_sqlite_read_int64(void *arg, sqlite3_stmt *row);

/* A query's first row through read (NULL: whether there is a row is the
 * answer); TETHER_ERR_NOT_FOUND without one, TETHER_ERR_CONFLICT on a
 * constraint violation. */
tether_status_t tether_sqlite_query_one(sqlite_store_t *s, const char *what, const char *sql,
                                        const tether_sqlite_value_t *args, size_t count,
                                        tether_sqlite_row_fn read, void *arg);

/* A list: every row of a query to the store callback of its kind, until
 * the callback returns non-zero (a stop, not an error). */
typedef struct tether_sqlite_list {
    tether_status_t (*read)(struct tether_sqlite_list *list, sqlite3_stmt *row, bool *stop);
    union {
        tether_store_admin_token_cb admin_token;
        tether_store_device_cb device;
        tether_store_alert_cb alert;
        tether_store_revocation_cb revocation;
        tether_store_issuer_key_cb issuer_key;
        tether_store_usage_cb usage;
        tether_store_policy_cb policy;
    } cb;
    void *arg;
} tether_sqlite_list_t;

/* Takes s->lock itself: a list is one statement. */
tether_status_t tether_sqlite_list(sqlite_store_t *s, const char *what, const char *sql,
                                   const tether_sqlite_value_t *args, size_t count,
                                   tether_sqlite_list_t *list);

tether_status_t tether_sqlite_copy_text(char *out, size_t out_size, const unsigned char *text);

/* Whether the hash in column is hash, compared in constant time (the index
 * lookup that found the row is not). */
bool tether_sqlite_hash_matches(sqlite3_stmt *row, int column, const uint8_t *hash);

/* ---- store_sqlite_devices.c, shared with the other files ---- */

/* A devices row selected with DEVICE_COLUMNS. */
tether_status_t tether_sqlite_device_row(sqlite3_stmt *stmt, tether_store_device_t *device);
/* The device whose id (SELECT_DEVICE_BY_ID), EK (SELECT_DEVICE_BY_EK) or
 * other key sql selects; TETHER_ERR_NOT_FOUND without one. */
tether_status_t tether_sqlite_device_select(sqlite_store_t *s, const char *sql, const char *key,
                                            tether_store_device_t *device);
/* The columns alerts and feed entries share, 0 to 4: cursor (id, seq),
 * device id, two texts (living until the next step) and the time. */
tether_status_t tether_sqlite_page_columns(sqlite3_stmt *row, int64_t *cursor,
                                          char device_id[TETHER_STORE_DEVICE_ID_SIZE],
                                          const char **first, const char **second,
                                          int64_t *created_at);
/* Marks every unexpired token of the device revoked and appends to the
 * revocation feed (inside the caller's transaction). */
tether_status_t tether_sqlite_revoke_tokens(sqlite_store_t *s, const char *id, const char *reason,
                                            int64_t now);

/* Adds an alert (inside the caller's transaction): the one place alerts
 * are written, tether_store_alert_add's too. */
tether_status_t tether_sqlite_alert_insert(sqlite_store_t *s, const char *device_id,
                                           const char *kind, const char *details_json,
                                           int64_t now);

/* ---- store_sqlite_reconcile.c, inside the caller's transaction ---- */

/* The containment of the clone path: an active device quarantined with
 * reason, its live tokens revoked, the feed appended. *quarantined: the
 * device was active and is now quarantined. */
tether_status_t tether_sqlite_quarantine_tx(sqlite_store_t *s, const char *device_id,
                                            const char *reason, int64_t now, bool *quarantined);

/* Records the exchange's usage document (ex->usage) and compares each of
 * its tokens; result->usage_mismatches and ->mismatch say what was found,
 * *quarantined whether the device was quarantined for it. */
tether_status_t tether_sqlite_usage_exchange_tx(sqlite_store_t *s,
                                                const tether_store_exchange_t *ex, int64_t now,
                                                tether_store_exchange_result_t *result,
                                                bool *quarantined);
/* Compares the token's gateway count with its device's (when the device
 * reported it) after a usage report counted it. */
tether_status_t tether_sqlite_usage_report_tx(sqlite_store_t *s, const char *jti,
                                              tether_store_usage_action_t action, int64_t now,
                                              tether_store_usage_result_t *result);

/* ---- store_sqlite_thresholds.c, inside the caller's transaction ---- */

/* Counts a usage entry of device_id into its per-second usage and
 * evaluates the rate thresholds of the device's policy at the entry's
 * last second; result->thresholds and ->quarantined say what crossed. */
tether_status_t tether_sqlite_thresholds_tx(sqlite_store_t *s, const char *device_id,
                                            const tether_store_usage_entry_t *e, int64_t now,
                                            tether_store_usage_result_t *result);

/* An exchange from outside its policy's sources (ex->source_threshold
 * set): the alert (once an hour per device) and with action quarantine
 * the containment, *quarantined then. */
tether_status_t tether_sqlite_source_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                        int64_t now, tether_store_exchange_result_t *result,
                                        bool *quarantined);

/* ---- the tether_store_ops_t entries, by file ---- */

/* store_sqlite_admin_tokens.c */
tether_status_t tether_sqlite_admin_token_create(void *impl,
                                                 const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                 unsigned roles, const char *name, int64_t now,
                                                 int64_t *id);
tether_status_t tether_sqlite_admin_token_recover(void *impl,
                                                  const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                  unsigned roles, const char *name, int64_t uid,
                                                  int64_t now, int64_t *id);
tether_status_t tether_sqlite_admin_token_find(void *impl,
                                               const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                               tether_store_admin_token_t *token);
tether_status_t tether_sqlite_admin_token_revoke(void *impl, int64_t id, int64_t now,
                                                 unsigned *last_roles);
tether_status_t tether_sqlite_admin_token_list(void *impl, tether_store_admin_token_cb cb,
                                               void *arg);

/* store_sqlite_devices.c: devices, bootstrap tokens, alerts, issued tokens
 * and the revocation feed. */
tether_status_t tether_sqlite_device_get(void *impl, const char *id, tether_store_device_t *device);
tether_status_t tether_sqlite_device_find_ek(void *impl, const char *ek_sha256,
                                             tether_store_device_t *device);
tether_status_t tether_sqlite_device_list(void *impl, tether_store_device_cb cb, void *arg);
tether_status_t tether_sqlite_device_counts(void *impl, uint64_t counts[]);
tether_status_t tether_sqlite_device_import(void *impl, const tether_store_allow_t *rows,
                                            size_t count, int64_t now, size_t *created,
                                            size_t *conflict_index);
tether_status_t tether_sqlite_device_change_status(void *impl, const char *id,
                                                   tether_device_action_t action,
                                                   const char *reason, int64_t now,
                                                   tether_store_device_t *device);
tether_status_t tether_sqlite_bootstrap_token_create(void *impl,
                                                     const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                     int64_t expires_at, unsigned uses, int64_t now);
tether_status_t tether_sqlite_alert_add(void *impl, const char *device_id, const char *kind,
                                        const char *details_json, int64_t now);
tether_status_t tether_sqlite_alert_list(void *impl, int64_t after_id, unsigned limit,
                                         tether_store_alert_cb cb, void *arg);
tether_status_t tether_sqlite_issued_token_add(void *impl, const char *jti, const char *device_id,
                                               int64_t exp, int64_t now);
tether_status_t tether_sqlite_issued_token_revoked(void *impl, const char *jti, bool *revoked);
tether_status_t tether_sqlite_revocation_list(void *impl, int64_t after_seq, unsigned limit,
                                              tether_store_revocation_cb cb, void *arg);
tether_status_t tether_sqlite_token_state(void *impl, const char *jti,
                                          tether_store_token_state_t *state);
tether_status_t tether_sqlite_revocation_head(void *impl, int64_t *seq);

/* store_sqlite_enrollment.c */
tether_status_t tether_sqlite_enroll_authorize(void *impl, const char *ek_sha256,
                                               const uint8_t *bootstrap_hash, int64_t now,
                                               tether_enroll_decision_t *decision,
                                               tether_store_device_t *device);
tether_status_t tether_sqlite_enrollment_add(void *impl, const tether_store_enrollment_t *e,
                                             int64_t now,
                                             const tether_store_enrollment_bounds_t *bounds,
                                             int64_t *retry_after);
tether_status_t tether_sqlite_enrollment_find(void *impl, const char *id, int64_t now,
                                              tether_store_enrollment_t *e);
tether_status_t tether_sqlite_enrollment_delete(void *impl, const char *id);
tether_status_t tether_sqlite_enrollment_activate(void *impl, const char *id,
                                                  const char *new_device_id, int64_t now,
                                                  tether_enroll_decision_t *decision,
                                                  tether_store_device_t *device);
tether_status_t tether_sqlite_enrollment_completed(void *impl, const char *id,
                                                   tether_store_device_t *device);

/* store_sqlite_exchange.c: the exchange and the issuer keys. */
tether_status_t tether_sqlite_exchange_device_get(void *impl, const char *id,
                                                  tether_store_exchange_device_t *device);
void tether_sqlite_exchange_batch(void *impl, tether_store_exchange_item_t *items, size_t count);
tether_status_t tether_sqlite_issued_token_get(void *impl, const char *jti,
                                               tether_store_issued_token_t *token);
tether_status_t tether_sqlite_issuer_key_list(void *impl, tether_store_issuer_key_cb cb,
                                              void *arg);
tether_status_t tether_sqlite_issuer_key_add_first(void *impl,
                                                   const tether_store_issuer_key_t *key);
tether_status_t tether_sqlite_issuer_key_rotate(void *impl, const tether_store_issuer_key_t *key,
                                                int64_t now, tether_store_issuer_key_t *retired);

/* store_sqlite_webhooks.c: the webhook outbox. */
tether_status_t tether_sqlite_webhook_sync(void *impl, const char *const *names, size_t count,
                                           int64_t now, uint64_t *dropped);
tether_status_t tether_sqlite_webhook_claim(void *impl, const char *webhook, int64_t now_ms,
                                            int64_t lease_ms, tether_store_delivery_cb cb,
                                            void *arg);
tether_status_t tether_sqlite_webhook_retry_at(void *impl, const char *webhook, int64_t alert_id,
                                               int64_t until_ms);
tether_status_t tether_sqlite_webhook_delivered(void *impl, const char *webhook, int64_t alert_id);
tether_status_t tether_sqlite_webhook_pending(void *impl, const char *webhook,
                                              tether_store_webhook_pending_t *pending);
void tether_sqlite_set_alert_hook(void *impl, void (*fn)(void *arg), void *arg);

/* store_sqlite_usage.c: usage reports of relying parties. */
tether_status_t tether_sqlite_usage_report_record(void *impl,
                                                  const tether_store_usage_report_t *report,
                                                  int64_t now,
                                                  tether_store_usage_result_t *result);
/* store_sqlite_reconcile.c; the check's statement (?1, ?2: the window of
 * exp, ?3 the leeway, ?4 the batch), which its test plans. */
extern const char tether_sqlite_unreported_sql[];
tether_status_t tether_sqlite_usage_unreported_check(void *impl, int64_t now, int64_t grace,
                                                     size_t *alerted);
tether_status_t tether_sqlite_usage_list(void *impl, const char *device_id, int64_t since,
                                         unsigned limit, tether_store_usage_cb cb, void *arg);
/* store_sqlite_policies.c */
tether_status_t tether_sqlite_policy_write(void *impl, const char *name, const char *document,
                                           bool create, int64_t now, int64_t *version);
tether_status_t tether_sqlite_policy_get(void *impl, const char *name, int64_t version,
                                         tether_store_policy_t *policy);
tether_status_t tether_sqlite_policy_list(void *impl, tether_store_policy_cb cb, void *arg);
tether_status_t tether_sqlite_device_set_policy(void *impl, const char *id, const char *name,
                                                int64_t now);
tether_status_t tether_sqlite_device_policy(void *impl, const char *id,
                                            tether_store_policy_t *policy);

/* store_sqlite_eventlogs.c */
tether_status_t tether_sqlite_eventlog_get(void *impl, const char *device_id, int kind,
                                           bool with_bytes, tether_store_eventlog_t *log);
tether_status_t tether_sqlite_eventlog_put(void *impl, const char *device_id, int kind,
                                           const uint8_t *sha256, const uint8_t *bytes,
                                           size_t len, int64_t now);

/* store_sqlite_retention.c */
tether_status_t tether_sqlite_purge(void *impl, const tether_store_purge_t *purge,
                                    uint64_t *purged);

#endif
