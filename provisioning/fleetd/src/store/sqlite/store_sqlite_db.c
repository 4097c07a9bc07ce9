/* The SQLite store's statements: prepare, bind, step and finalize in one
 * place (store_sqlite_internal.h). Every function runs with s->lock held,
 * but tether_sqlite_list, which takes it. */
#include <string.h>

#include "store_sqlite_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"

tether_status_t tether_sqlite_fail(sqlite_store_t *s, const char *what)
{
    tether_error("store", "%s: %s", what, sqlite3_errmsg(s->db));
    return TETHER_ERR_STORE;
}

tether_status_t tether_sqlite_exec(sqlite_store_t *s, const char *sql)
{
    char *message = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &message) != SQLITE_OK) {
        tether_error("store", "%s", message != NULL ? message : sqlite3_errmsg(s->db));
        sqlite3_free(message);
        return TETHER_ERR_STORE;
    }
    return TETHER_OK;
}

tether_status_t tether_sqlite_begin(sqlite_store_t *s)
{
    return tether_sqlite_exec(s, "BEGIN IMMEDIATE");
}

tether_status_t tether_sqlite_finish(sqlite_store_t *s, tether_status_t rc)
{
    if (rc == TETHER_OK)
        rc = tether_sqlite_exec(s, "COMMIT");
    if (rc != TETHER_OK && !sqlite3_get_autocommit(s->db))
        (void)tether_sqlite_exec(s, "ROLLBACK");
    return rc;
}

tether_status_t tether_sqlite_bind(sqlite_store_t *s, sqlite3_stmt *stmt,
                                   const tether_sqlite_value_t *args, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const tether_sqlite_value_t *v = &args[i];
        int index = (int)i + 1;
        int rc = SQLITE_MISUSE;

        switch (v->type) {
        case TETHER_SQLITE_NULL:
            rc = sqlite3_bind_null(stmt, index);
            break;
        case TETHER_SQLITE_TEXT:
            rc = sqlite3_bind_text(stmt, index, v->data, -1, SQLITE_STATIC);
            break;
        case TETHER_SQLITE_INT64:
            rc = sqlite3_bind_int64(stmt, index, (sqlite3_int64)v->number);
            break;
        case TETHER_SQLITE_BLOB:
            if (v->len <= (size_t)INT32_MAX)
                rc = sqlite3_bind_blob(stmt, index, v->data, (int)v->len, SQLITE_STATIC);
            break;
        }
        if (rc != SQLITE_OK)
            return tether_sqlite_fail(s, "bind");
    }
    return TETHER_OK;
}

tether_status_t tether_sqlite_prepare(sqlite_store_t *s, const char *sql, sqlite3_stmt **stmt)
{
    *stmt = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return tether_sqlite_fail(s, "prepare");
    return TETHER_OK;
}

/* Gives a statement from prepare() back: a cached one is reset, its
 * bindings cleared (they point into the caller's memory), another is
 * finalized. */
static void release(sqlite_store_t *s, sqlite3_stmt *stmt)
{
    for (size_t i = 0; stmt != NULL && i < TETHER_SQLITE_CACHED_STATEMENTS; i++)
        if (s->statements[i].stmt == stmt) {
            (void)sqlite3_reset(stmt);
            (void)sqlite3_clear_bindings(stmt);
            s->statements[i].in_use = false;
            return;
        }
    sqlite3_finalize(stmt);
}

void tether_sqlite_statements_free(sqlite_store_t *s)
{
    for (size_t i = 0; i < TETHER_SQLITE_CACHED_STATEMENTS; i++) {
        sqlite3_finalize(s->statements[i].stmt);
        s->statements[i].stmt = NULL;
        s->statements[i].in_use = false;
    }
}

/* FNV-1a of the SQL text: where a statement is kept. */
static uint32_t sql_hash(const char *sql)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* A statement for sql with args bound, in *stmt (NULL on failure): the
 * cached one when it is free, else a new one, kept in the first empty slot
 * of its probe sequence (TETHER_SQLITE_STATEMENT_PROBES slots from the one
 * its hash names: with one slot per text, the exchange's statements that
 * shared a slot were prepared anew at every exchange). Give it back with
 * release(). */
static tether_status_t prepare(sqlite_store_t *s, const char *sql,
                               const tether_sqlite_value_t *args, size_t count,
                               sqlite3_stmt **stmt)
{
    uint32_t hash = sql_hash(sql);
    sqlite_cached_statement_t *slot = NULL;
    tether_status_t rc;

    *stmt = NULL;
    for (size_t i = 0; i < TETHER_SQLITE_STATEMENT_PROBES; i++) {
        sqlite_cached_statement_t *probe =
            &s->statements[(hash + i) % TETHER_SQLITE_CACHED_STATEMENTS];

        if (probe->stmt == NULL) {
            if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) !=
                SQLITE_OK)
                return tether_sqlite_fail(s, "prepare");
            probe->stmt = *stmt;
            probe->hash = hash;
            slot = probe;
            break;
        }
        if (probe->hash == hash && strcmp(sqlite3_sql(probe->stmt), sql) == 0) {
            if (!probe->in_use) {
                *stmt = probe->stmt;
                slot = probe;
            }
            break; /* a text is kept in one slot only: busy, it gets its own */
        }
    }
    /* Busy, or every slot probed holds another text. */
    if (slot == NULL && (rc = tether_sqlite_prepare(s, sql, stmt)) != TETHER_OK)
        return rc;
    if (slot != NULL)
        slot->in_use = true;
    if ((rc = tether_sqlite_bind(s, *stmt, args, count)) != TETHER_OK) {
        release(s, *stmt);
        *stmt = NULL;
    }
    return rc;
}

tether_status_t tether_sqlite_query_one(sqlite_store_t *s, const char *what, const char *sql,
                                        const tether_sqlite_value_t *args, size_t count,
                                        tether_sqlite_row_fn read, void *arg)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    if ((rc = prepare(s, sql, args, count, &stmt)) != TETHER_OK)
        return rc;
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        rc = read != NULL ? read(arg, stmt) : TETHER_OK;
    else if (step == SQLITE_DONE)
        rc = TETHER_ERR_NOT_FOUND;
    else if (step == SQLITE_CONSTRAINT)
        rc = TETHER_ERR_CONFLICT;
    else
        rc = tether_sqlite_fail(s, what);
    release(s, stmt);
    return rc;
}

tether_status_t tether_sqlite_run(sqlite_store_t *s, const char *what, const char *sql,
                                  const tether_sqlite_value_t *args, size_t count)
{
    tether_status_t rc = tether_sqlite_query_one(s, what, sql, args, count, NULL, NULL);

    /* Running to the end without a row is what such a statement does. */
    return rc == TETHER_ERR_NOT_FOUND ? TETHER_OK : rc;
}

tether_status_t tether_sqlite_read_int64(void *arg, sqlite3_stmt *row)
{
    *(int64_t *)arg = sqlite3_column_int64(row, 0);
    return TETHER_OK;
}

tether_status_t tether_sqlite_list(sqlite_store_t *s, const char *what, const char *sql,
                                   const tether_sqlite_value_t *args, size_t count,
                                   tether_sqlite_list_t *list)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    bool stop = false;
    int step = SQLITE_DONE;

    pthread_mutex_lock(&s->lock);
    if ((rc = prepare(s, sql, args, count, &stmt)) != TETHER_OK)
        goto out;
    while (rc == TETHER_OK && !stop && (step = sqlite3_step(stmt)) == SQLITE_ROW)
        rc = list->read(list, stmt, &stop);
    if (rc == TETHER_OK && !stop && step != SQLITE_DONE)
        rc = tether_sqlite_fail(s, what);
out:
    release(s, stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

tether_status_t tether_sqlite_copy_text(char *out, size_t out_size, const unsigned char *text)
{
    size_t len = text != NULL ? strlen((const char *)text) : 0;

    if (len >= out_size)
        return TETHER_ERR_TOO_LARGE;
    if (len > 0)
        memcpy(out, text, len);
    out[len] = '\0';
    return TETHER_OK;
}

/* Whether the hash in column is hash. The index lookup that found the row
 * is not constant-time; this final comparison is. */
bool tether_sqlite_hash_matches(sqlite3_stmt *row, int column, const uint8_t *hash)
{
    return sqlite3_column_bytes(row, column) == TETHER_STORE_HASH_SIZE &&
           tether_ct_equal(sqlite3_column_blob(row, column), hash, TETHER_STORE_HASH_SIZE);
}
