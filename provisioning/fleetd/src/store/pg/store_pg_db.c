/* The PostgreSQL store's connections and statements (store_pg_internal.h):
 * the pool, parameters bound with PQexecParams (never SQL built from
 * values), results read in one place, and transactions retried when
 * PostgreSQL aborts them for a serialization failure or a deadlock. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_pg_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"

#define MAX_PARAMS 32
#define INT_TEXT_SIZE 24 /* "-9223372036854775808" and its NUL */

/* ---- results ---- */

bool tether_pg_is_null(const tether_pg_row_t *row, int column)
{
    return PQgetisnull(row->res, row->row, column) != 0;
}

const char *tether_pg_text(const tether_pg_row_t *row, int column)
{
    return tether_pg_is_null(row, column) ? NULL : PQgetvalue(row->res, row->row, column);
}

int64_t tether_pg_int64(const tether_pg_row_t *row, int column)
{
    const char *text = tether_pg_text(row, column);

    /* The column is a BIGINT, in PostgreSQL's own decimal text. */
    return text != NULL ? (int64_t)strtoll(text, NULL, 10) : 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* bytea comes as text in the hex output format: "\x" and two lowercase
 * digits a byte (the server's default since PostgreSQL 9.0). */
tether_status_t tether_pg_blob(const tether_pg_row_t *row, int column, uint8_t *out,
                               size_t size, size_t *len)
{
    const char *text = tether_pg_text(row, column);
    size_t digits;

    *len = 0;
    if (text == NULL)
        return TETHER_OK;
    if (text[0] != '\\' || text[1] != 'x')
        return TETHER_ERR_PARSE;
    digits = strlen(text + 2);
    if (digits % 2 != 0)
        return TETHER_ERR_PARSE;
    if (digits / 2 > size)
        return TETHER_ERR_TOO_LARGE;
    for (size_t i = 0; i < digits / 2; i++) {
        int high = hex_value(text[2 + 2 * i]);
        int low = hex_value(text[3 + 2 * i]);
        if (high < 0 || low < 0)
            return TETHER_ERR_PARSE;
        out[i] = (uint8_t)(high << 4 | low);
    }
    *len = digits / 2;
    return TETHER_OK;
}

tether_status_t tether_pg_copy_text(const tether_pg_row_t *row, int column, char *out,
                                    size_t out_size)
{
    const char *text = tether_pg_text(row, column);
    size_t len = text != NULL ? strlen(text) : 0;

    if (len >= out_size)
        return TETHER_ERR_TOO_LARGE;
    if (len > 0)
        memcpy(out, text, len);
    out[len] = '\0';
    return TETHER_OK;
}

bool tether_pg_hash_matches(const tether_pg_row_t *row, int column, const uint8_t *hash)
{
    uint8_t stored[TETHER_STORE_HASH_SIZE];
    size_t len = 0;
    bool match = tether_pg_blob(row, column, stored, sizeof(stored), &len) == TETHER_OK &&
                 len == TETHER_STORE_HASH_SIZE &&
                 tether_ct_equal(stored, hash, TETHER_STORE_HASH_SIZE);

    tether_wipe(stored, sizeof(stored));
    return match;
}

tether_status_t tether_pg_read_int64(void *arg, const tether_pg_row_t *row)
{
    *(int64_t *)arg = tether_pg_int64(row, 0);
    return TETHER_OK;
}

/* ---- array parameters ---- */

tether_status_t tether_pg_text_array(const char *const *items, size_t count, char **out)
{
    size_t size = 3; /* the braces and the NUL */
    char *p;

    *out = NULL;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(items[i]);

        if (len > (SIZE_MAX - size) / 2 - 3)
            return TETHER_ERR_TOO_LARGE;
        size += 2 * len + 3; /* every byte escaped, the quotes and a comma */
    }
    if ((*out = malloc(size)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    p = *out;
    *p++ = '{';
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            *p++ = ',';
        /* Quoted, so that no element reads as NULL or splits at a comma;
         * a quote or a backslash inside is escaped (PostgreSQL, "Array
         * Value Input"). */
        *p++ = '"';
        for (const char *c = items[i]; *c != '\0'; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return TETHER_OK;
}

tether_status_t tether_pg_int_array(const int64_t *items, size_t count, char **out)
{
    size_t size = 3, used = 1;

    *out = NULL;
    if (count > (SIZE_MAX - size) / INT_TEXT_SIZE)
        return TETHER_ERR_TOO_LARGE;
    size += count * INT_TEXT_SIZE;
    if ((*out = malloc(size)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    (*out)[0] = '{';
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(*out + used, size - used, "%s%" PRId64, i > 0 ? "," : "",
                                 items[i]);
    snprintf(*out + used, size - used, "}");
    return TETHER_OK;
}

/* ---- statements ---- */

/* What a failed statement means: a constraint violation is the caller's
 * conflict; a serialization failure or deadlock loses the attempt (the
 * transaction is tried again, so it is not an error yet); anything else
 * is logged with PostgreSQL's primary message, which names no parameter
 * value (the DETAIL field may, and is left out). */
static tether_status_t statement_failed(tether_pg_t *db, const char *what, const PGresult *res)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *message = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (state != NULL && strncmp(state, "23", 2) == 0)
        return TETHER_ERR_CONFLICT;
    if (state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
        db->retry = true;
        tether_debug("store", "%s: %s (SQLSTATE %s); the transaction is tried again", what,
                     message != NULL ? message : "", state);
        return TETHER_ERR_STORE;
    }
    tether_error("store", "%s: %s (SQLSTATE %s)", what,
                 message != NULL ? message : PQerrorMessage(db->conn),
                 state != NULL ? state : "none");
    return TETHER_ERR_STORE;
}

/* The parameters as libpq takes them; numbers holds the integers' text. */
typedef struct bound {
    char numbers[MAX_PARAMS][INT_TEXT_SIZE];
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int formats[MAX_PARAMS];
} bound_t;

static tether_status_t bind(const tether_pg_value_t *args, size_t count, bound_t *b)
{
    if (count > MAX_PARAMS)
        return TETHER_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++) {
        const tether_pg_value_t *v = &args[i];

        b->values[i] = NULL;
        b->lengths[i] = 0;
        b->formats[i] = 0;
        switch (v->type) {
        case TETHER_PG_NULL:
            break;
        case TETHER_PG_TEXT:
            b->values[i] = v->data;
            break;
        case TETHER_PG_INT64:
            snprintf(b->numbers[i], sizeof(b->numbers[i]), "%" PRId64, v->number);
            b->values[i] = b->numbers[i];
            break;
        case TETHER_PG_BLOB:
            if (v->len > (size_t)INT32_MAX)
                return TETHER_ERR_TOO_LARGE;
            b->values[i] = v->data;
            b->lengths[i] = (int)v->len;
            b->formats[i] = 1;
            break;
        }
    }
    return TETHER_OK;
}

/* Whether res is a statement that succeeded; else its failure, through
 * statement_failed. */
static tether_status_t result_status(tether_pg_t *db, const char *what, const PGresult *res)
{
    ExecStatusType status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return TETHER_OK;
    return statement_failed(db, what, res);
}

/* Queues sql in pipeline mode, entering it first. */
static tether_status_t send_one(tether_pg_t *db, const char *what, const char *sql,
                                const tether_pg_value_t *args, size_t count)
{
    bound_t b;
    tether_status_t rc = bind(args, count, &b);

    if (rc != TETHER_OK)
        return rc;
    if (PQpipelineStatus(db->conn) == PQ_PIPELINE_OFF && PQenterPipelineMode(db->conn) != 1)
        return statement_failed(db, what, NULL);
    if (PQsendQueryParams(db->conn, sql, (int)count, NULL, b.values, b.lengths, b.formats, 0) !=
        1)
        return statement_failed(db, what, NULL);
    return TETHER_OK;
}

/* The next statement's result in a pipeline: its one result (NULL when
 * the connection failed), the NULL that ends it consumed. */
static PGresult *next_result(tether_pg_t *db)
{
    PGresult *res = PQgetResult(db->conn);
    PGresult *extra;

    while (res != NULL && (extra = PQgetResult(db->conn)) != NULL)
        PQclear(extra); /* one statement, one result: never more */
    return res;
}

/* One held statement's outcome: its status (a skipped statement is
 * TETHER_ERR_STORE, not logged again), and its first row through the
 * reader it was sent with. */
static tether_status_t pending_outcome(tether_pg_t *db, size_t i, PGresult *res)
{
    tether_pg_sent_t *sent = db->pending[i].sent;
    tether_status_t rc;

    if (res != NULL && PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
        rc = TETHER_ERR_STORE;
    else
        rc = result_status(db, db->pending[i].what, res);
    if (rc == TETHER_OK && sent != NULL && sent->read != NULL) {
        tether_pg_row_t row = {res, 0};

        rc = PQntuples(res) == 0 ? TETHER_ERR_NOT_FOUND : sent->read(sent->arg, &row);
    }
    if (sent != NULL)
        sent->status = rc;
    return rc;
}

/* The round trip: a sync after what was sent, then every held statement's
 * result in order, then (when last is not NULL) the result of the
 * statement sent last, which the caller clears; the first failure is the
 * status. Leaves pipeline mode; a connection that cannot is reset, as its
 * state is unknown. */
static tether_status_t round_trip(tether_pg_t *db, const char *what, PGresult **last)
{
    tether_status_t rc = TETHER_OK, one;
    PGresult *res = NULL;
    size_t held = db->pending_count;
    /* Without the sync the server sends nothing back: no result to wait for. */
    bool synced = PQpipelineSync(db->conn) == 1;

    db->pending_count = 0;
    if (!synced)
        rc = statement_failed(db, what, NULL);
    for (size_t i = 0; i < held; i++) {
        res = synced ? next_result(db) : NULL;
        one = pending_outcome(db, i, res);
        rc = rc == TETHER_OK ? one : rc;
        PQclear(res);
    }
    if (last != NULL) {
        res = synced ? next_result(db) : NULL;
        one = res != NULL && PQresultStatus(res) == PGRES_PIPELINE_ABORTED
                  ? TETHER_ERR_STORE
                  : result_status(db, what, res);
        rc = rc == TETHER_OK ? one : rc;
        if (rc == TETHER_OK)
            *last = res;
        else
            PQclear(res);
    }
    res = synced ? PQgetResult(db->conn) : NULL;
    if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC ||
        PQexitPipelineMode(db->conn) != 1) {
        tether_error("store", "%s: the connection left its pipeline in an unknown state (%s); "
                              "reconnecting",
                     what, PQerrorMessage(db->conn));
        PQreset(db->conn);
        rc = rc == TETHER_OK ? TETHER_ERR_STORE : rc;
        if (last != NULL && *last != NULL) {
            PQclear(*last);
            *last = NULL;
        }
    }
    PQclear(res);
    return rc;
}

tether_status_t tether_pg_send(tether_pg_t *db, const char *what, const char *sql,
                               const tether_pg_value_t *args, size_t count,
                               tether_pg_sent_t *sent)
{
    tether_status_t rc = TETHER_OK;

    if (sent != NULL)
        sent->status = TETHER_ERR_STORE; /* until its round trip says */
    if (db->pending_count == TETHER_PG_PIPELINE_MAX)
        rc = tether_pg_flush(db);
    if (rc == TETHER_OK)
        rc = send_one(db, what, sql, args, count);
    if (rc == TETHER_OK) {
        db->pending[db->pending_count].what = what;
        db->pending[db->pending_count].sent = sent;
        db->pending_count++;
    }
    return rc;
}

tether_status_t tether_pg_flush(tether_pg_t *db)
{
    return db->pending_count == 0 ? TETHER_OK : round_trip(db, "send statements", NULL);
}

/* Runs sql with args; *res gets the result of a statement that succeeded
 * (the caller clears it), NULL otherwise. Statements held by
 * tether_pg_send go first, in the same round trip. */
static tether_status_t execute(tether_pg_t *db, const char *what, const char *sql,
                               const tether_pg_value_t *args, size_t count, PGresult **res)
{
    bound_t b;
    tether_status_t rc;

    *res = NULL;
    if (db->pending_count > 0) {
        rc = send_one(db, what, sql, args, count);
        if (rc != TETHER_OK) {
            (void)tether_pg_flush(db);
            return rc;
        }
        return round_trip(db, what, res);
    }
    if ((rc = bind(args, count, &b)) != TETHER_OK)
        return rc;
    /* Without parameters, PQexec: a migration is several statements in one
     * string (a constant of this program, never built from values). */
    *res = count == 0 ? PQexec(db->conn, sql)
                      : PQexecParams(db->conn, sql, (int)count, NULL, b.values, b.lengths,
                                     b.formats, 0);
    rc = result_status(db, what, *res);
    if (rc != TETHER_OK) {
        PQclear(*res);
        *res = NULL;
    }
    return rc;
}

tether_status_t tether_pg_query_one(tether_pg_t *db, const char *what, const char *sql,
                                    const tether_pg_value_t *args, size_t count,
                                    tether_pg_row_fn read, void *arg)
{
    PGresult *res = NULL;
    tether_status_t rc = execute(db, what, sql, args, count, &res);

    if (rc == TETHER_OK) {
        tether_pg_row_t row = {res, 0};
        if (PQntuples(res) == 0)
            rc = TETHER_ERR_NOT_FOUND;
        else if (read != NULL)
            rc = read(arg, &row);
    }
    PQclear(res);
    return rc;
}

tether_status_t tether_pg_run(tether_pg_t *db, const char *what, const char *sql,
                              const tether_pg_value_t *args, size_t count, uint64_t *changed)
{
    PGresult *res = NULL;
    tether_status_t rc = execute(db, what, sql, args, count, &res);

    if (changed != NULL)
        *changed = rc == TETHER_OK ? strtoull(PQcmdTuples(res), NULL, 10) : 0;
    PQclear(res);
    return rc;
}

tether_status_t tether_pg_list_in(tether_pg_t *db, const char *what, const char *sql,
                                  const tether_pg_value_t *args, size_t count,
                                  tether_pg_list_t *list)
{
    PGresult *res = NULL;
    bool stop = false;
    tether_status_t rc = execute(db, what, sql, args, count, &res);

    for (int i = 0; rc == TETHER_OK && !stop && i < PQntuples(res); i++) {
        tether_pg_row_t row = {res, i};
        rc = list->read(list, &row, &stop);
    }
    PQclear(res);
    return rc;
}

tether_status_t tether_pg_list(pg_store_t *s, const char *what, const char *sql,
                               const tether_pg_value_t *args, size_t count,
                               tether_pg_list_t *list)
{
    tether_pg_t db;
    tether_status_t rc;

    if ((rc = tether_pg_acquire(s, &db)) != TETHER_OK)
        return rc;
    rc = tether_pg_list_in(&db, what, sql, args, count, list);
    tether_pg_release(&db);
    return rc;
}

tether_status_t tether_pg_query_once(pg_store_t *s, const char *what, const char *sql,
                                     const tether_pg_value_t *args, size_t count,
                                     tether_pg_row_fn read, void *arg)
{
    tether_pg_t db;
    tether_status_t rc;

    if ((rc = tether_pg_acquire(s, &db)) != TETHER_OK)
        return rc;
    rc = tether_pg_query_one(&db, what, sql, args, count, read, arg);
    tether_pg_release(&db);
    return rc;
}

tether_status_t tether_pg_run_once(pg_store_t *s, const char *what, const char *sql,
                                   const tether_pg_value_t *args, size_t count, uint64_t *changed)
{
    tether_pg_t db;
    tether_status_t rc;

    if (changed != NULL)
        *changed = 0;
    if ((rc = tether_pg_acquire(s, &db)) != TETHER_OK)
        return rc;
    rc = tether_pg_run(&db, what, sql, args, count, changed);
    tether_pg_release(&db);
    return rc;
}

/* ---- transactions ---- */

/* A short pause before another attempt, longer each time and jittered, so
 * that two replicas colliding on one row do not collide again in step. */
static void backoff(unsigned attempt)
{
    struct timespec pause = {0, 0};
    long base = 1000000L << (attempt < 5 ? attempt : 5); /* 2 ms .. 32 ms */

    pause.tv_nsec = base + (long)(rand() % 1000) * (base / 1000);
    nanosleep(&pause, NULL);
}

static tether_status_t simple(tether_pg_t *db, const char *sql)
{
    return tether_pg_run(db, sql, sql, PG_NO_ARGS, NULL);
}

/* Takes (lock) or gives back the session advisory lock key of db's
 * connection. A lock that cannot be given back would stay with the pooled
 * connection and stop every other holder of the key: the connection is
 * reset instead, which ends its session and every lock of it. */
static tether_status_t session_lock(tether_pg_t *db, int64_t key, bool lock)
{
    tether_status_t rc;

    rc = tether_pg_run(db, lock ? "take an advisory lock" : "give back an advisory lock",
                       lock ? "SELECT pg_advisory_lock($1::bigint)"
                            : "SELECT pg_advisory_unlock($1::bigint)",
                       PG_ARGS(PG_INT(key)), NULL);
    if (rc != TETHER_OK && !lock)
        PQreset(db->conn);
    return rc;
}

/* serial: NULL, or the key of the session advisory lock held through every
 * attempt (tether_pg_transaction_serial). */
/* One attempt of the transaction what lost and tried again, counted. */
static void retried(pg_store_t *s, const char *what)
{
    pthread_mutex_lock(&s->lock);
    tether_metric_add(tether_metric_series(s->metrics.retries, what, NULL), 1);
    pthread_mutex_unlock(&s->lock);
}

static tether_status_t transaction(pg_store_t *s, const char *what, const char *begin,
                                   const int64_t *serial, tether_pg_body_fn body, void *arg)
{
    tether_pg_t db;
    tether_status_t rc;
    unsigned attempt = 0;
    bool alerted = false;

    if ((rc = tether_pg_acquire(s, &db)) != TETHER_OK)
        return rc;
    if (serial != NULL && (rc = session_lock(&db, *serial, true)) != TETHER_OK) {
        tether_pg_release(&db);
        return rc;
    }
    for (;;) {
        db.retry = false;
        db.alerted = false;
        /* BEGIN goes with the body's first statement, in its round trip. */
        rc = tether_pg_send(&db, begin, begin, PG_NO_ARGS, NULL);
        if (rc == TETHER_OK)
            rc = body(&db, arg);
        if (rc == TETHER_OK)
            rc = simple(&db, "COMMIT");
        if (rc == TETHER_OK) {
            alerted = db.alerted;
            break;
        }
        /* What the body sent and no statement ran yet: run, then undone. */
        (void)tether_pg_flush(&db);
        if (PQtransactionStatus(db.conn) != PQTRANS_IDLE)
            (void)simple(&db, "ROLLBACK");
        if (!db.retry)
            break;
        retried(s, what);
        if (++attempt >= TETHER_PG_TRANSACTION_ATTEMPTS) {
            tether_error("store", "%s: still conflicting with concurrent transactions after %u "
                                  "attempts; try again",
                         what, attempt);
            break;
        }
        backoff(attempt);
    }
    if (serial != NULL)
        (void)session_lock(&db, *serial, false);
    tether_pg_release(&db);
    if (alerted) {
        void (*hook)(void *arg);
        void *hook_arg;

        pthread_mutex_lock(&s->lock);
        hook = s->alert_hook;
        hook_arg = s->alert_hook_arg;
        pthread_mutex_unlock(&s->lock);
        if (hook != NULL)
            hook(hook_arg);
    }
    return rc;
}

/* ---- the pool ---- */

/* Names the server of conn for a log line: host, port and database, never
 * the URL (it may hold a password). */
static void log_connection_failure(PGconn *conn, const char *what)
{
    const char *message = conn != NULL ? PQerrorMessage(conn) : "out of memory";
    size_t len = strlen(message);

    /* libpq ends its messages with a newline; a log line does not. */
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
        len--;
    tether_error("store", "%s PostgreSQL database %s on %s port %s: %.*s", what,
                 conn != NULL && PQdb(conn) != NULL ? PQdb(conn) : "?",
                 conn != NULL && PQhost(conn) != NULL ? PQhost(conn) : "?",
                 conn != NULL && PQport(conn) != NULL ? PQport(conn) : "?", (int)len, message);
}

/* The pool's gauges after a connection was taken or given back; with
 * s->lock held. */
static void count_in_use(pg_store_t *s, bool taken)
{
    s->in_use = taken ? s->in_use + 1 : s->in_use - 1;
    tether_metric_gauge_set(s->metrics.in_use, (int64_t)s->in_use);
    tether_metric_gauge_set(s->metrics.idle, (int64_t)(s->count - s->in_use));
}

tether_status_t tether_pg_acquire(pg_store_t *s, tether_pg_t *db)
{
    size_t slot = 0;
    bool waited = false;

    memset(db, 0, sizeof(*db));
    pthread_mutex_lock(&s->lock);
    for (;;) {
        for (slot = 0; slot < s->count && s->busy[slot]; slot++)
            ;
        if (slot < s->count)
            break;
        if (!waited)
            tether_metric_add(s->metrics.waits, 1);
        waited = true;
        pthread_cond_wait(&s->released, &s->lock);
    }
    s->busy[slot] = true;
    count_in_use(s, true);
    pthread_mutex_unlock(&s->lock);
    db->s = s;
    db->slot = slot;
    db->conn = s->conns[slot];
    /* A server restart or a dropped connection: one reconnection, then
     * the statement fails with the reason in the log. */
    if (PQstatus(db->conn) != CONNECTION_OK) {
        PQreset(db->conn);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            log_connection_failure(db->conn, "cannot reconnect to the");
            tether_pg_release(db);
            return TETHER_ERR_STORE;
        }
    }
    return TETHER_OK;
}

void tether_pg_release(tether_pg_t *db)
{
    pg_store_t *s = db->s;

    if (s == NULL)
        return;
    /* Every caller reads its statements' results before it gives the
     * connection back; a statement still held is a mistake, run here so
     * that the next user finds the connection out of pipeline mode. */
    if (db->pending_count > 0) {
        tether_error("store", "%s: sent, and the connection given back before its result",
                     db->pending[0].what);
        (void)tether_pg_flush(db);
    }
    pthread_mutex_lock(&s->lock);
    s->busy[db->slot] = false;
    count_in_use(s, false);
    pthread_cond_signal(&s->released);
    pthread_mutex_unlock(&s->lock);
    memset(db, 0, sizeof(*db));
}

/* The server's notices (a CREATE ... IF NOT EXISTS that skipped) go to the
 * debug log, not to standard error. */
static void notice(void *arg, const char *message)
{
    size_t len = strlen(message);

    (void)arg;
    while (len > 0 && message[len - 1] == '\n')
        len--;
    tether_debug("store", "PostgreSQL: %.*s", (int)len, message);
}

tether_status_t tether_pg_pool_open(pg_store_t *s, const char *conninfo, size_t count)
{
    if (count == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((s->conns = calloc(count, sizeof(*s->conns))) == NULL ||
        (s->busy = calloc(count, sizeof(*s->busy))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    s->count = count;
    for (size_t i = 0; i < count; i++) {
        s->conns[i] = PQconnectdb(conninfo);
        if (s->conns[i] == NULL || PQstatus(s->conns[i]) != CONNECTION_OK) {
            log_connection_failure(s->conns[i], "cannot connect to the");
            return TETHER_ERR_STORE;
        }
        (void)PQsetNoticeProcessor(s->conns[i], notice, NULL);
    }
    return TETHER_OK;
}

void tether_pg_pool_close(pg_store_t *s)
{
    for (size_t i = 0; s->conns != NULL && i < s->count; i++)
        PQfinish(s->conns[i]);
    free(s->conns);
    free(s->busy);
    s->conns = NULL;
    s->busy = NULL;
    s->count = 0;
}

tether_status_t tether_pg_transaction(pg_store_t *s, const char *what, tether_pg_body_fn body,
                                      void *arg)
{
    return transaction(s, what, "BEGIN ISOLATION LEVEL SERIALIZABLE", NULL, body, arg);
}

tether_status_t tether_pg_transaction_serial(pg_store_t *s, const char *what, int64_t lock_key,
                                             tether_pg_body_fn body, void *arg)
{
    return transaction(s, what, "BEGIN ISOLATION LEVEL SERIALIZABLE", &lock_key, body, arg);
}

tether_status_t tether_pg_transaction_read_committed(pg_store_t *s, const char *what,
                                                     tether_pg_body_fn body, void *arg)
{
    return transaction(s, what, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, body, arg);
}
