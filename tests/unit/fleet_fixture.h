/*
 * What the fleet unit tests share: a fleet directory with its store, admin
 * tokens, requests through the route table, and the database read and
 * written beside the store (as an operator would). Failures are cmocka
 * assertions, except in fleet_fixture_open, which cmocka setups call.
 */
#ifndef TETHER_TEST_FLEET_FIXTURE_H
#define TETHER_TEST_FLEET_FIXTURE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "route.h"
#include "store.h"
#include "tether/http_handler.h"
#include "tether/secret_token.h"

#define FLEET_FIXTURE_DIR_SIZE 256
#define FLEET_FIXTURE_PATH_SIZE 300

/* The connections of a PostgreSQL store the fixture opens. */
#define FLEET_FIXTURE_CONNECTIONS 4

/* The PostgreSQL database the tests run against (TETHER_TEST_PG_URL, set
 * by tests/integration/postgres.sh run), or NULL: SQLite. */
const char *fleet_fixture_pg_url(void);

/* A new directory $TMPDIR/tether-<name>-XXXXXX (/tmp without TMPDIR) into
 * dir, and store opened: on the SQLite file dir/fleet.db, or with
 * TETHER_TEST_PG_URL on that PostgreSQL database, emptied first. path gets
 * the file or the URL (what fleet_db_* take). 0, or -1 when any step
 * fails. */
int fleet_fixture_open(const char *name, char dir[FLEET_FIXTURE_DIR_SIZE],
                       char path[FLEET_FIXTURE_PATH_SIZE], tether_store_t *store);

/* Frees store and removes dir with everything in it. */
void fleet_fixture_close(const char *dir, tether_store_t *store);

/* A new admin token with roles into token, its hash in store. */
void fleet_fixture_admin_token(tether_store_t *store, char token[TETHER_SECRET_TOKEN_SIZE],
                               unsigned roles);

/* Routes request, replacing *response and *json; *json gets the answer's
 * body parsed (NULL when there is none, which only a parked request may
 * have). Returns the status. */
unsigned fleet_fixture_route(const tether_router_t *router, const tether_http_request_t *request,
                             tether_http_response_t *response, cJSON **json, bool may_park);

/* On the database at path (a file, or a PostgreSQL URL) through a second
 * connection: runs sql; the first column of the first row as a number (-1
 * without a row). */
void fleet_db_exec(const char *path, const char *sql);
long long fleet_db_count(const char *path, const char *sql);

/* On the database at path: how many alerts match where (a condition on
 * the alerts table in SQL both stores read alike) and have in their details
 * every member of members (a JSON object) with an equal value. Alert
 * details are JSON text, which the two stores' SQL reads differently. */
long long fleet_db_alerts(const char *path, const char *where, const char *members);

/* On the database at path: the first column of the first row of sql as
 * text (malloc'd; "" for NULL), a blob (bytea) in lowercase hex; fails
 * without a row. */
char *fleet_db_text(const char *path, const char *sql);

/* On the database at path: column of table's row id set to the bytes data. */
void fleet_db_set_blob(const char *path, const char *table, const char *column, const char *id,
                       const uint8_t *data, size_t len);

/* Every row of every table, as text (malloc'd): a refusal must not change it. */
char *fleet_db_snapshot(const char *path);

/* An exchange of device_id at now, its counter and its bytes (fingerprint,
 * nonce hash) from n, from address, over a nonce issued at now - 1, that
 * records token jti (kept by the caller) valid for lifetime seconds; no
 * usage document. */
void fleet_fixture_exchange(tether_store_exchange_t *ex, const char *device_id, uint64_t n,
                            const char *address, int64_t now, const char *jti,
                            int64_t lifetime);

/* A usage report of gateway (relying party 1), report id report_id, of
 * requests on jti by device_id, received at now, recorded and accepted
 * (asserted); its result into *result. */
void fleet_fixture_usage_report(tether_store_t *store, const char *gateway,
                                const char *report_id, const char *jti, const char *device_id,
                                int64_t requests, int64_t now, tether_store_usage_action_t action,
                                tether_store_usage_result_t *result);

#endif
