/*
 * bench_bulk_devices DB COUNT
 *
 * Adds COUNT enrolled, active devices straight into a fleet's SQLite store
 * (fleet.db of a fleet directory, fleetd stopped or idle): one transaction,
 * one prepared statement stepped COUNT times. Each row has the sizes an
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

/* Binds every column of device i; SQLITE_OK or the first error. */
static int bind_device(sqlite3_stmt *stmt, unsigned long i, int64_t now, uint64_t *state)
{
    static const int sizes[] = {EK_PUBLIC, EK_CERT, AK_PUBLIC, AK_NAME, DEVICE_KEY_PUBLIC,
                                CERTIFY_ATTEST, CERTIFY_SIGNATURE, COUNTER_PUBLIC, DIGEST,
                                DIGEST};
    uint8_t blob[BLOB_MAX];
    char id[32], name[32], ek[65], enrollment[40];
    int rc = SQLITE_OK, column = 1;

    /* "dev_b" + 23 hex digits; EK hash "b...b" + 16 hex digits; "enr_b" + 31. */
    snprintf(id, sizeof(id), "dev_b%023lx", i);
    snprintf(name, sizeof(name), "bulk-%lu", i);
    snprintf(ek, sizeof(ek), "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb%016lx", i);
    snprintf(enrollment, sizeof(enrollment), "enr_b%031lx", i);
    rc = sqlite3_bind_text(stmt, column++, id, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, column++, name, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, column++, ek, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, column++, enrollment, -1, SQLITE_TRANSIENT);
    for (size_t k = 0; rc == SQLITE_OK && k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        fill(state, blob, (size_t)sizes[k]);
        rc = sqlite3_bind_blob(stmt, column++, blob, sizes[k], SQLITE_TRANSIENT);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, column++, (sqlite3_int64)(1 + i % 1000)); /* counter */
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, column++, now);
    return rc;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

int main(int argc, char **argv)
{
    static const char sql[] =
        "INSERT INTO devices (id, name, ek_sha256, enrollment_id, ek_public, ek_cert, "
        "ak_public, ak_name, device_key_public, device_key_certify_attest, "
        "device_key_certify_signature, counter_nv_public, pcr_digest, last_fingerprint, "
        "highest_counter, created_at, updated_at, counter_nv_index, status, last_clock, "
        "last_reset_count, last_restart_count, last_clock_safe, last_address, last_seen_at, "
        "last_nonce_expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
        "?13, ?14, ?15, ?16, ?16, 16777472, 'active', 1000, 0, 0, 1, '127.0.0.1', ?16, "
        "?16 + 60)";
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    unsigned long count, done = 0;
    uint64_t state = 11;
    int64_t now = (int64_t)time(NULL);
    char wal[4096];
    double start, inserted;
    int rc = 1;

    if (argc != 3 || (count = strtoul(argv[2], NULL, 10)) == 0 || count > MAX_COUNT) {
        fprintf(stderr, "usage: bench_bulk_devices FLEET_DB COUNT (1 to %lu)\n", MAX_COUNT);
        return 2;
    }
    snprintf(wal, sizeof(wal), "%s-wal", argv[1]);
    start = bench_now_s();
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous = FULL; BEGIN IMMEDIATE", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    for (; done < count; done++) {
        if (bind_device(stmt, done, now, &state) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE ||
            sqlite3_reset(stmt) != SQLITE_OK)
            goto out;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    inserted = bench_now_s() - start;
    /* Into the main file, so that its size is the store's. */
    if (sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    printf("bulk store: %lu enrolled devices added in one transaction in %.1f s "
           "(%.0f per second; %.1f s with the checkpoint); store %.1f MiB\n",
           count, inserted, (double)count / inserted, bench_now_s() - start,
           (double)(file_size(argv[1]) + file_size(wal)) / (1024.0 * 1024.0));
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_bulk_devices: %s (after %lu devices)\n",
                db != NULL ? sqlite3_errmsg(db) : "cannot open the database", done);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rc;
}
