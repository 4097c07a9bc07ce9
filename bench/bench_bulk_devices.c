/*
 * bench_bulk_devices STORE COUNT
 *
 * Adds COUNT enrolled, active devices straight into a fleet's store, fleetd
 * stopped or idle, in one transaction: STORE is fleet.db of a fleet
 * directory (SQLite: one prepared statement stepped COUNT times) or the
 * postgresql:// URL its fleetd.conf names (PostgreSQL: one COPY FROM STDIN,
 * rows sent in large batches). Both make the same rows. Each row has the sizes an
 * enrolled simulated device has (bench_exchange load's software TPMs: EK
 * public area and certificate, AK, device key and its certification, the
 * counter's NV public area, PCR digest, an accepted exchange's state), with
 * bytes from a fixed pseudo-random sequence; ids, EK hashes and enrolment
 * ids are unique and cannot be those of a real device (their own prefix).
 * For the exchange latency of a few real devices against a large store
 * (bench/bulk.sh): prints the time taken and the store's size after.
 * A benchmark tool, never a way to enrol devices.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "bench_time.h"

#define MAX_COUNT 10000000ul

/* Column sizes of an enrolled simulated device, in bytes. */
enum {
    EK_PUBLIC = 124,
    EK_CERT = 410,
    AK_PUBLIC = 90,
    AK_NAME = 34,
    DEVICE_KEY_PUBLIC = 90,
    CERTIFY_ATTEST = 175,
    CERTIFY_SIGNATURE = 72,
    COUNTER_PUBLIC = 16,
    DIGEST = 32,
    BLOB_MAX = EK_CERT,
};

/* splitmix64: filler bytes, not secrets. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(uint64_t *state, uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = next_random(state);
        memcpy(out + i, &r, len - i < 8 ? len - i : 8);
    }
}

static const int blob_sizes[] = {EK_PUBLIC,         EK_CERT,        AK_PUBLIC,
                                  AK_NAME,           DEVICE_KEY_PUBLIC, CERTIFY_ATTEST,
                                  CERTIFY_SIGNATURE, COUNTER_PUBLIC, DIGEST,
                                  DIGEST};
#define BLOBS (sizeof(blob_sizes) / sizeof(blob_sizes[0]))

/* Device i's columns that differ from row to row, in the INSERT's order. */
struct device {
    char id[32], name[32], ek[65], enrollment[40];
    uint8_t blobs[BLOBS][BLOB_MAX];
    int64_t counter;
};

static void make_device(struct device *d, unsigned long i, uint64_t *state)
{
    /* "dev_b" + 23 hex digits; EK hash "b...b" + 16 hex digits; "enr_b" + 31. */
    snprintf(d->id, sizeof(d->id), "dev_b%023lx", i);
    snprintf(d->name, sizeof(d->name), "bulk-%lu", i);
    snprintf(d->ek, sizeof(d->ek), "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb%016lx", i);
    snprintf(d->enrollment, sizeof(d->enrollment), "enr_b%031lx", i);
    for (size_t k = 0; k < BLOBS; k++)
        fill(state, d->blobs[k], (size_t)blob_sizes[k]);
    d->counter = (int64_t)(1 + i % 1000);
}

/* Binds every column of device d; SQLITE_OK or the first error. */
static int bind_device(sqlite3_stmt *stmt, const struct device *d, int64_t now)
{
    int rc = SQLITE_OK, column = 1;

    rc = sqlite3_bind_text(stmt, column++, d->id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, column++, d->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, column++, d->ek, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, column++, d->enrollment, -1, SQLITE_STATIC);
    for (size_t k = 0; rc == SQLITE_OK && k < BLOBS; k++)
        rc = sqlite3_bind_blob(stmt, column++, d->blobs[k], blob_sizes[k], SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, column++, (sqlite3_int64)d->counter);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, column++, now);
    return rc;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

#define COLUMNS                                                                           \
    "id, name, ek_sha256, enrollment_id, ek_public, ek_cert, ak_public, ak_name, "          \
    "device_key_public, device_key_certify_attest, device_key_certify_signature, "          \
    "counter_nv_public, pcr_digest, last_fingerprint, highest_counter, created_at, "        \
    "updated_at, counter_nv_index, status, last_clock, last_reset_count, "                  \
    "last_restart_count, last_clock_safe, last_address, last_seen_at, last_nonce_expires_at"

static void report(unsigned long count, double inserted, double total, double store_bytes,
                   const char *after)
{
    printf("bulk store: %lu enrolled devices added in one transaction in %.1f s "
           "(%.0f per second; %.1f s with the %s); store %.1f MiB\n",
           count, inserted, (double)count / inserted, total, after,
           store_bytes / (1024.0 * 1024.0));
}

static int bulk_sqlite(const char *path, unsigned long count, int64_t now)
{
    static const char sql[] = "INSERT INTO devices (" COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, "
                              "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, "
                              "16777472, 'active', 1000, 0, 0, 1, '127.0.0.1', ?16, ?16 + 60)";
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    struct device *d = malloc(sizeof(*d));
    unsigned long done = 0;
    uint64_t state = 11;
    char wal[4096];
    double start, inserted;
    int rc = 1;

    snprintf(wal, sizeof(wal), "%s-wal", path);
    start = bench_now_s();
    if (d == NULL || sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous = FULL; BEGIN IMMEDIATE", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    for (; done < count; done++) {
        make_device(d, done, &state);
        if (bind_device(stmt, d, now) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE ||
            sqlite3_reset(stmt) != SQLITE_OK)
            goto out;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    inserted = bench_now_s() - start;
    /* Into the main file, so that its size is the store's. */
    if (sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    report(count, inserted, bench_now_s() - start,
           (double)(file_size(path) + file_size(wal)), "checkpoint");
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_bulk_devices: %s (after %lu devices)\n",
                d == NULL ? "out of memory"
                : db != NULL ? sqlite3_errmsg(db)
                             : "cannot open the database",
                done);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    free(d);
    return rc;
}

/* One COPY text-format line of device d (bytea in hex): its length. */
static size_t copy_line(char *out, const struct device *d, int64_t now)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = (size_t)sprintf(out, "%s\t%s\t%s\t%s", d->id, d->name, d->ek, d->enrollment);

    for (size_t k = 0; k < BLOBS; k++) {
        memcpy(out + n, "\t\\\\x", 4);
        n += 4;
        for (int j = 0; j < blob_sizes[k]; j++) {
            out[n++] = hex[d->blobs[k][j] >> 4];
            out[n++] = hex[d->blobs[k][j] & 0xf];
        }
    }
    n += (size_t)sprintf(out + n,
                         "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
                         "\t16777472\tactive\t1000\t0\t0\t1\t127.0.0.1\t%" PRId64 "\t%" PRId64
                         "\n",
                         d->counter, now, now, now, now + 60);
    return n;
}

/* True when res succeeded with status; res is cleared either way. */
static int pg_ok(PGresult *res, ExecStatusType status)
{
    int ok = PQresultStatus(res) == status;

    PQclear(res);
    return ok;
}

enum { COPY_BATCH = 1 << 20, COPY_LINE_MAX = 128 + BLOBS * (4 + 2 * BLOB_MAX) + 128 };

static int bulk_postgresql(const char *url, unsigned long count, int64_t now)
{
    PGconn *conn = PQconnectdb(url);
    PGresult *res = NULL;
    struct device *d = malloc(sizeof(*d));
    char *batch = malloc(COPY_BATCH + COPY_LINE_MAX);
    unsigned long done = 0;
    uint64_t state = 11;
    size_t used = 0;
    double start = bench_now_s(), inserted, bytes;
    int rc = 1;

    if (d == NULL || batch == NULL || PQstatus(conn) != CONNECTION_OK ||
        !pg_ok(PQexec(conn, "BEGIN"), PGRES_COMMAND_OK) ||
        !pg_ok(PQexec(conn, "COPY devices (" COLUMNS ") FROM STDIN"), PGRES_COPY_IN))
        goto out;
    for (; done < count; done++) {
        make_device(d, done, &state);
        used += copy_line(batch + used, d, now);
        if (used >= COPY_BATCH || done + 1 == count) {
            if (PQputCopyData(conn, batch, (int)used) != 1)
                goto out;
            used = 0;
        }
    }
    if (PQputCopyEnd(conn, NULL) != 1 || !pg_ok(PQgetResult(conn), PGRES_COMMAND_OK) ||
        !pg_ok(PQexec(conn, "COMMIT"), PGRES_COMMAND_OK))
        goto out;
    inserted = bench_now_s() - start;
    /* Statistics for the planner, as autovacuum would make them later. */
    if (!pg_ok(PQexec(conn, "ANALYZE devices"), PGRES_COMMAND_OK))
        goto out;
    res = PQexec(conn, "SELECT pg_database_size(current_database())");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        goto out;
    bytes = strtod(PQgetvalue(res, 0, 0), NULL);
    report(count, inserted, bench_now_s() - start, bytes, "ANALYZE");
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_bulk_devices: %s (after %lu devices)\n",
                d == NULL || batch == NULL ? "out of memory" : PQerrorMessage(conn), done);
    PQclear(res);
    PQfinish(conn);
    free(batch);
    free(d);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned long count;
    int64_t now = (int64_t)time(NULL);

    if (argc != 3 || (count = strtoul(argv[2], NULL, 10)) == 0 || count > MAX_COUNT) {
        fprintf(stderr, "usage: bench_bulk_devices FLEET_DB|POSTGRESQL_URL COUNT (1 to %lu)\n",
                MAX_COUNT);
        return 2;
    }
    if (strncmp(argv[1], "postgresql://", 13) == 0 || strncmp(argv[1], "postgres://", 11) == 0)
        return bulk_postgresql(argv[1], count, now);
    return bulk_sqlite(argv[1], count, now);
}
