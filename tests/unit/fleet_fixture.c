/* The fleet unit tests' shared fixture (fleet_fixture.h). */
#include "fleet_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "files.h"

/* PostgreSQL's type oid of bytea (catalog/pg_type.dat). */
#define BYTEA_OID 17

const char *fleet_fixture_pg_url(void)
{
    const char *url = getenv("TETHER_TEST_PG_URL");

    return url != NULL && url[0] != '\0' ? url : NULL;
}

/* The test's PostgreSQL database emptied (every table, sequence and
 * function of the schema), so each test starts from migration 1. */
static int pg_reset(const char *url)
{
    PGconn *conn = PQconnectdb(url);
    PGresult *res = NULL;
    int ok = 0;

    if (PQstatus(conn) == CONNECTION_OK) {
        res = PQexec(conn, "SET client_min_messages = warning; "
                           "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "resetting the test database: %s", PQerrorMessage(conn));
    } else {
        fprintf(stderr, "connecting to the test database: %s", PQerrorMessage(conn));
    }
    PQclear(res);
    PQfinish(conn);
    return ok ? 0 : -1;
}

int fleet_fixture_open(const char *name, char dir[FLEET_FIXTURE_DIR_SIZE],
                       char path[FLEET_FIXTURE_PATH_SIZE], tether_store_t *store)
{
    const char *tmp = getenv("TMPDIR");
    const char *url = fleet_fixture_pg_url();

    tether_store_init(store);
    snprintf(dir, FLEET_FIXTURE_DIR_SIZE, "%s/tether-%s-XXXXXX", tmp != NULL ? tmp : "/tmp",
             name);
    if (mkdtemp(dir) == NULL)
        return -1;
    if (url != NULL) {
        if (pg_reset(url) != 0)
            return -1;
        snprintf(path, FLEET_FIXTURE_PATH_SIZE, "%s", url);
    } else {
        snprintf(path, FLEET_FIXTURE_PATH_SIZE, "%s/fleet.db", dir);
    }
    return tether_store_open(store, path, FLEET_FIXTURE_CONNECTIONS) == TETHER_OK ? 0 : -1;
}

void fleet_fixture_close(const char *dir, tether_store_t *store)
{
    tether_store_free(store);
    tether_fleet_dir_remove(dir);
}

void fleet_fixture_admin_token(tether_store_t *store, char token[TETHER_SECRET_TOKEN_SIZE],
                               unsigned roles)
{
    uint8_t hash[TETHER_SECRET_HASH_SIZE];

    assert_int_equal(
        tether_secret_token_generate(TETHER_SECRET_ADMIN, token, TETHER_SECRET_TOKEN_SIZE),
        TETHER_OK);
    assert_int_equal(tether_secret_token_hash(token, strlen(token), hash), TETHER_OK);
    assert_int_equal(tether_store_admin_token_create(store, hash, roles, "t", 1, NULL), TETHER_OK);
}

unsigned fleet_fixture_route(const tether_router_t *router, const tether_http_request_t *request,
                             tether_http_response_t *response, cJSON **json, bool may_park)
{
    cJSON_Delete(*json);
    *json = NULL;
    tether_http_response_clear(response);
    tether_router_handle((void *)router, request, response);
    if (!may_park)
        assert_non_null(response->body);
    if (response->body != NULL) {
        *json = cJSON_Parse(response->body);
        assert_non_null(*json);
    }
    return response->status;
}

/* sql on the PostgreSQL database at url, through a connection of its own:
 * with count parameters (values, lengths, formats as PQexecParams takes
 * them), or none (then sql may hold several statements). Fails unless it
 * succeeds; the result is the caller's to PQclear. */
static PGresult *pg_exec(const char *url, const char *sql, int count, const char *const *values,
                         const int *lengths, const int *formats)
{
    PGconn *conn = PQconnectdb(url);
    PGresult *res = NULL;
    ExecStatusType status;

    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("connecting to the test database: %s", PQerrorMessage(conn));
    res = count == 0 ? PQexec(conn, sql)
                     : PQexecParams(conn, sql, count, NULL, values, lengths, formats, 0);
    status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(conn));
    PQfinish(conn);
    return res;
}

/* sql on the PostgreSQL database at url: the first column of the first
 * row as a number (-1 without a row or for NULL). */
static long long pg_count(const char *url, const char *sql)
{
    PGresult *res = pg_exec(url, sql, 0, NULL, NULL, NULL);
    long long n = -1;

    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

/* sql prepared on a connection of its own to the SQLite file at path, which
 * *db gets (the caller finalizes the statement, then closes *db). */
static sqlite3_stmt *sqlite_prepare(const char *path, const char *sql, sqlite3 **db)
{
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(sqlite3_open(path, db), SQLITE_OK);
    sqlite3_busy_timeout(*db, 5000);
    if (sqlite3_prepare_v2(*db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(*db));
    return stmt;
}

void fleet_db_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    if (tether_store_is_postgresql(path)) {
        (void)pg_count(path, sql);
        return;
    }

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

long long fleet_db_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    long long n = -1;

    if (tether_store_is_postgresql(path))
        return pg_count(path, sql);
    stmt = sqlite_prepare(path, sql, &db);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

/* data as lowercase hex (malloc'd). */
static char *hex_text(const uint8_t *data, size_t len)
{
    char *out = malloc(2 * len + 1);

    assert_non_null(out);
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", data[i]);
    out[2 * len] = '\0';
    return out;
}

char *fleet_db_text(const char *path, const char *sql)
{
    char *out = NULL;

    if (tether_store_is_postgresql(path)) {
        PGresult *res = pg_exec(path, sql, 0, NULL, NULL, NULL);
        const char *value;

        assert_true(PQntuples(res) > 0);
        value = PQgetvalue(res, 0, 0);
        /* bytea's text form (bytea_output = hex) is \x and lowercase hex. */
        if (PQftype(res, 0) == BYTEA_OID && strncmp(value, "\\x", 2) == 0)
            value += 2;
        out = strdup(value);
        PQclear(res);
    } else {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = sqlite_prepare(path, sql, &db);

        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        if (sqlite3_column_type(stmt, 0) == SQLITE_BLOB)
            out = hex_text(sqlite3_column_blob(stmt, 0), (size_t)sqlite3_column_bytes(stmt, 0));
        else
            out = strdup(sqlite3_column_text(stmt, 0) != NULL
                             ? (const char *)sqlite3_column_text(stmt, 0)
                             : "");
        sqlite3_finalize(stmt);
        sqlite3_close(db);
    }
    assert_non_null(out);
    return out;
}

void fleet_db_set_blob(const char *path, const char *table, const char *column, const char *id,
                       const uint8_t *data, size_t len)
{
    char sql[160];
    const bool pg = tether_store_is_postgresql(path);

    assert_true((size_t)snprintf(sql, sizeof(sql), "UPDATE %s SET %s = %s WHERE id = %s", table,
                                 column, pg ? "$1" : "?", pg ? "$2" : "?") < sizeof(sql));
    if (pg) {
        const char *values[2] = {(const char *)data, id};
        const int lengths[2] = {(int)len, 0};
        const int formats[2] = {1, 0}; /* the bytes as they are, the id as text */
        PGresult *res = pg_exec(path, sql, 2, values, lengths, formats);

        assert_string_equal(PQcmdTuples(res), "1");
        PQclear(res);
    } else {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = sqlite_prepare(path, sql, &db);

        assert_int_equal(sqlite3_bind_blob(stmt, 1, data, (int)len, SQLITE_STATIC), SQLITE_OK);
        assert_int_equal(sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
        assert_int_equal(sqlite3_changes(db), 1);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
    }
}

/* details (an alert's, JSON text) has every member of want with an equal value. */
static bool details_match(const char *details, const cJSON *want)
{
    cJSON *have = cJSON_Parse(details);
    const cJSON *member = NULL;
    bool match = cJSON_IsObject(have);

    cJSON_ArrayForEach(member, want)
    {
        if (!match)
            break;
        match = cJSON_Compare(member, cJSON_GetObjectItemCaseSensitive(have, member->string),
                              true);
    }
    cJSON_Delete(have);
    return match;
}

long long fleet_db_alerts(const char *path, const char *where, const char *members)
{
    cJSON *want = cJSON_Parse(members);
    char sql[1024];
    long long n = 0;

    if (!cJSON_IsObject(want))
        fail_msg("not a JSON object: %s", members);
    assert_true((size_t)snprintf(sql, sizeof(sql), "SELECT details FROM alerts WHERE %s", where) <
                sizeof(sql));
    if (tether_store_is_postgresql(path)) {
        PGresult *res = pg_exec(path, sql, 0, NULL, NULL, NULL);

        for (int r = 0; r < PQntuples(res); r++)
            n += details_match(PQgetvalue(res, r, 0), want);
        PQclear(res);
    } else {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = sqlite_prepare(path, sql, &db);

        while (sqlite3_step(stmt) == SQLITE_ROW)
            n += details_match((const char *)sqlite3_column_text(stmt, 0), want);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
    }
    cJSON_Delete(want);
    return n;
}

/* Every row of every table of the PostgreSQL database at url, each table's
 * rows as text in sorted order (a heap's order is not the data's). */
static void pg_snapshot(const char *url, FILE *mem)
{
    PGconn *conn = PQconnectdb(url);
    PGresult *tables = NULL;

    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("connecting to the test database: %s", PQerrorMessage(conn));
    tables = PQexec(conn, "SELECT table_name FROM information_schema.tables "
                          "WHERE table_schema = 'public' ORDER BY table_name");
    assert_int_equal(PQresultStatus(tables), PGRES_TUPLES_OK);
    for (int t = 0; t < PQntuples(tables); t++) {
        char sql[160];
        PGresult *rows = NULL;

        snprintf(sql, sizeof(sql), "SELECT r::text FROM \"%s\" r ORDER BY 1",
                 PQgetvalue(tables, t, 0));
        fprintf(mem, "[%s]\n", PQgetvalue(tables, t, 0));
        rows = PQexec(conn, sql);
        assert_int_equal(PQresultStatus(rows), PGRES_TUPLES_OK);
        for (int r = 0; r < PQntuples(rows); r++)
            fprintf(mem, "%s\n", PQgetvalue(rows, r, 0));
        PQclear(rows);
    }
    PQclear(tables);
    PQfinish(conn);
}

char *fleet_db_snapshot(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *tables = NULL;
    char *out = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&out, &size);

    assert_non_null(mem);
    if (tether_store_is_postgresql(path)) {
        pg_snapshot(path, mem);
        assert_int_equal(fclose(mem), 0);
        return out;
    }
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "ORDER BY name",
                                        -1, &tables, NULL),
                     SQLITE_OK);
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char sql[128];
        sqlite3_stmt *rows = NULL;

        snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", sqlite3_column_text(tables, 0));
        fprintf(mem, "[%s]\n", sqlite3_column_text(tables, 0));
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &rows, NULL), SQLITE_OK);
        while (sqlite3_step(rows) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(rows); c++) {
                const uint8_t *bytes = sqlite3_column_blob(rows, c);
                int n = sqlite3_column_bytes(rows, c);
                fprintf(mem, "%d:", sqlite3_column_type(rows, c));
                for (int i = 0; i < n; i++)
                    fprintf(mem, "%02x", bytes[i]);
                fputc(',', mem);
            }
            fputc('\n', mem);
        }
        sqlite3_finalize(rows);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    assert_int_equal(fclose(mem), 0);
    return out;
}

void fleet_fixture_usage_report(tether_store_t *store, const char *gateway,
                                const char *report_id, const char *jti, const char *device_id,
                                int64_t requests, int64_t now, tether_store_usage_action_t action,
                                tether_store_usage_result_t *result)
{
    tether_store_usage_entry_t entry;
    tether_store_usage_report_t r;

    memset(&entry, 0, sizeof(entry));
    memset(&r, 0, sizeof(r));
    snprintf(entry.jti, sizeof(entry.jti), "%s", jti);
    snprintf(entry.device_id, sizeof(entry.device_id), "%s", device_id);
    entry.requests = requests;
    entry.first_seen = entry.last_seen = now;
    r.relying_party = 1;
    r.gateway = gateway;
    r.report_id = report_id;
    r.entries = &entry;
    r.entry_count = 1;
    r.usage_action = action;
    assert_int_equal(tether_store_usage_report_record(store, &r, now, result), TETHER_OK);
    assert_int_equal(result->decision, TETHER_STORE_USAGE_ACCEPTED);
}

void fleet_fixture_exchange(tether_store_exchange_t *ex, const char *device_id, uint64_t n,
                            const char *address, int64_t now, const char *jti,
                            int64_t lifetime)
{
    memset(ex, 0, sizeof(*ex));
    ex->device_id = device_id;
    ex->sighting.counter = n;
    ex->sighting.at = now;
    snprintf(ex->sighting.address, sizeof(ex->sighting.address), "%s", address);
    memset(ex->fingerprint, (int)n, sizeof(ex->fingerprint));
    memset(ex->nonce_hash, (int)n, sizeof(ex->nonce_hash));
    ex->nonce_expires_at = now + 59;
    ex->nonce_issued_at = now - 1;
    ex->jti = jti;
    ex->kid = "kid";
    ex->scope = "ai.inference";
    ex->audience = "tether";
    ex->exp = now + lifetime;
}
