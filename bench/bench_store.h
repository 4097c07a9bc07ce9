/*
 * What the store benchmarks share: making the devices they import active,
 * as enrolment leaves a device (no store operation does that without an
 * enrolment), through a second connection to the store's location (a
 * SQLite file or a PostgreSQL URL).
 */
#ifndef TETHER_BENCH_STORE_H
#define TETHER_BENCH_STORE_H

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"

/* Every device of the store at location active; 0, or -1. */
static inline int bench_store_activate(const char *location)
{
    static const char sql[] = "UPDATE devices SET status = 'active'";
    int rc = -1;

    if (tether_store_is_postgresql(location)) {
        PGconn *conn = PQconnectdb(location);
        PGresult *res = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, sql) : NULL;

        rc = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear(res);
        PQfinish(conn);
    } else {
        sqlite3 *db = NULL;

        rc = sqlite3_open(location, &db) == SQLITE_OK &&
                     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK
                 ? 0
                 : -1;
        sqlite3_close(db);
    }
    return rc;
}

#endif
