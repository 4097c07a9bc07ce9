/*
 * Internal to the SQLite store: what store_sqlite.c shares with
 * store_sqlite_exchange.c (the exchange and issuer-key operations). Not for
 * any other file: everything else goes through store.h.
 */
#ifndef TETHER_FLEET_STORE_SQLITE_INTERNAL_H
#define TETHER_FLEET_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

/* One connection; every operation holds lock (see store_sqlite.c). */
typedef struct sqlite_store {
    sqlite3 *db;
    pthread_mutex_t lock;
} sqlite_store_t;

/* The columns tether_sqlite_device_row reads, in its order. */
#define DEVICE_COLUMNS                                                                        \
    "id, name, ek_sha256, status, status_reason, allow_reenroll, ak_public IS NOT NULL, "    \
    "highest_counter, created_at, updated_at, ak_name, counter_nv_index"

/* Helpers of store_sqlite.c, called with s->lock held. */
tether_status_t tether_sqlite_fail(sqlite_store_t *s, const char *what);
tether_status_t tether_sqlite_prepare(sqlite_store_t *s, const char *sql, sqlite3_stmt **stmt);
/* A statement without rows; a constraint violation is TETHER_ERR_CONFLICT. */
tether_status_t tether_sqlite_step_done(sqlite_store_t *s, sqlite3_stmt *stmt, const char *what);
/* BEGIN IMMEDIATE. */
tether_status_t tether_sqlite_begin(sqlite_store_t *s);
/* COMMIT when rc is TETHER_OK, else ROLLBACK; returns the outcome. */
tether_status_t tether_sqlite_finish(sqlite_store_t *s, tether_status_t rc);
tether_status_t tether_sqlite_copy_text(char *out, size_t out_size, const unsigned char *text);
/* A devices row selected with DEVICE_COLUMNS. */
tether_status_t tether_sqlite_device_row(sqlite3_stmt *stmt, tether_store_device_t *device);
/* Marks every unexpired token of the device revoked and appends to the
 * revocation feed (inside the caller's transaction). */
tether_status_t tether_sqlite_revoke_tokens(sqlite_store_t *s, const char *id, const char *reason,
                                            int64_t now);

/* store_sqlite_exchange.c: the tether_store_ops_t entries of the exchange. */
tether_status_t tether_sqlite_exchange_device_get(void *impl, const char *id,
                                                  tether_store_exchange_device_t *device);
tether_status_t tether_sqlite_exchange_record(void *impl, const tether_store_exchange_t *exchange,
                                              int64_t now, tether_store_exchange_result_t *result);
tether_status_t tether_sqlite_issued_token_get(void *impl, const char *jti,
                                               tether_store_issued_token_t *token);
tether_status_t tether_sqlite_issuer_key_list(void *impl, tether_store_issuer_key_cb cb,
                                              void *arg);
tether_status_t tether_sqlite_issuer_key_add_first(void *impl,
                                                   const tether_store_issuer_key_t *key);
tether_status_t tether_sqlite_issuer_key_rotate(void *impl, const tether_store_issuer_key_t *key,
                                                int64_t now, tether_store_issuer_key_t *retired);

#endif
