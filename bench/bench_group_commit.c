/*
 * The exchange's store transaction from several server threads at once
 * (tether_store_exchange_record on SQLite in a temporary directory,
 * synchronous FULL as fleetd runs it): T threads, a device each, recording
 * accepted exchanges back to back for S seconds. Prints exchanges per
 * second, the mean number of exchanges per durable commit (the group
 * commit's batches) and p50/p99 of a call, for 1 thread (one commit per
 * exchange, what every exchange paid before group commit, whatever the
 * number of threads: the store's lock serialised them) and for T threads.
 * With --store, the same on that PostgreSQL database (an empty one: the
 * bench makes its schema and devices; a pool of T connections). Asserts
 * nothing.
 *
 *   bench_group_commit [--threads T] [--seconds S] [--dir PARENT]
 *                      [--store postgresql://...]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_store.h"
#include "bench_time.h"
#include "files.h"
#include "store.h"
#include "tether/log.h"

#define MAX_THREADS 256
#define NOW 1700000000

typedef struct writer {
    pthread_t thread;
    tether_store_t *store;
    char device[TETHER_STORE_DEVICE_ID_SIZE];
    unsigned index;
    double until;
    double *ms;
    size_t capacity, done;
    int failed;
} writer_t;

/* Accepted exchanges of the writer's device until its time is up: counter
 * 1, 2, ...; fingerprint and nonce unique per writer and counter. */
static void *write_exchanges(void *arg)
{
    writer_t *w = arg;
    tether_store_exchange_result_t result;
    tether_store_exchange_t ex;
    char jti[TETHER_STORE_JTI_SIZE];

    for (uint64_t counter = 1; bench_now_s() < w->until && w->done < w->capacity; counter++) {
        double t0;

        memset(&ex, 0, sizeof(ex));
        snprintf(jti, sizeof(jti), "%08x%024llx", w->index, (unsigned long long)counter);
        ex.device_id = w->device;
        ex.sighting.counter = counter;
        ex.sighting.at = NOW;
        snprintf(ex.sighting.address, sizeof(ex.sighting.address), "127.0.0.1");
        memcpy(ex.fingerprint, jti, sizeof(ex.fingerprint));
        memcpy(ex.nonce_hash, jti, sizeof(ex.nonce_hash));
        ex.nonce_expires_at = NOW + 59;
        ex.nonce_issued_at = NOW - 1;
        ex.jti = jti;
        ex.kid = "kid";
        ex.scope = "ai.inference";
        ex.audience = "tether";
        ex.exp = NOW + 300;
        t0 = bench_now_s();
        if (tether_store_exchange_record(w->store, &ex, NOW, &result) != TETHER_OK ||
            result.decision != TETHER_STORE_EXCHANGE_ACCEPT) {
            w->failed = 1;
            break;
        }
        w->ms[w->done++] = (bench_now_s() - t0) * 1000;
    }
    return NULL;
}

/* A store in a new directory under parent (or the PostgreSQL database at
 * url) with one active device per writer, written to from every writer at
 * once for seconds. first numbers the run's devices: a database keeps the
 * devices of the runs before. */
static int run(const char *parent, const char *url, size_t first, size_t threads, double seconds)
{
    writer_t *writers = calloc(threads, sizeof(*writers));
    tether_store_allow_t *rows = calloc(threads, sizeof(*rows));
    double *all = NULL, start, elapsed;
    char dir[512], path[600];
    tether_store_t store;
    uint64_t batches = 0, exchanges = 0;
    size_t started = 0, total = 0;
    int rc = -1;

    tether_store_init(&store);
    snprintf(dir, sizeof(dir), "%s/tether-bench-group-commit-XXXXXX", parent);
    if (writers == NULL || rows == NULL || mkdtemp(dir) == NULL)
        goto out;
    if (url != NULL)
        snprintf(path, sizeof(path), "%s", url);
    else
        snprintf(path, sizeof(path), "%s/fleet.db", dir);
    for (size_t i = 0; i < threads; i++) {
        snprintf(rows[i].id, sizeof(rows[i].id), "dev_%024zu", first + i);
        snprintf(rows[i].ek_sha256, sizeof(rows[i].ek_sha256), "%064zu", first + i);
        snprintf(rows[i].name, sizeof(rows[i].name), "bench-%zu", first + i);
    }
    if (tether_store_open(&store, path, (unsigned)threads) != TETHER_OK ||
        tether_store_device_import(&store, rows, threads, NOW, NULL, NULL) != TETHER_OK ||
        bench_store_activate(path) != 0)
        goto out;
    start = bench_now_s();
    for (; started < threads; started++) {
        writer_t *w = &writers[started];

        memcpy(w->device, rows[started].id, sizeof(w->device));
        w->store = &store;
        w->index = (unsigned)(first + started);
        w->until = start + seconds;
        w->capacity = (size_t)(seconds * 20000);
        if ((w->ms = calloc(w->capacity, sizeof(double))) == NULL ||
            pthread_create(&w->thread, NULL, write_exchanges, w) != 0)
            break;
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(writers[i].thread, NULL);
    elapsed = bench_now_s() - start;
    if (started < threads)
        goto out;
    for (size_t i = 0; i < threads; i++) {
        if (writers[i].failed)
            goto out;
        total += writers[i].done;
    }
    if ((all = calloc(total + 1, sizeof(double))) == NULL)
        goto out;
    total = 0;
    for (size_t i = 0; i < threads; i++) {
        memcpy(all + total, writers[i].ms, writers[i].done * sizeof(double));
        total += writers[i].done;
    }
    qsort(all, total, sizeof(double), bench_compare_double);
    tether_store_group_commit_counts(&store, &batches, &exchanges);
    printf("%3zu threads: %7.0f exchanges/s, %5.1f per commit, call p50 %6.2f ms p99 %6.2f ms\n",
           threads, (double)total / elapsed, batches > 0 ? (double)exchanges / (double)batches : 0,
           all[total / 2], all[total * 99 / 100]);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_group_commit: the run with %zu threads failed\n", threads);
    tether_store_free(&store);
    tether_fleet_dir_remove(dir);
    for (size_t i = 0; writers != NULL && i < threads; i++)
        free(writers[i].ms);
    free(writers);
    free(rows);
    free(all);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},
        {"store", required_argument, NULL, 'u'},
        {NULL, 0, NULL, 0},
    };
    const char *parent = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    const char *url = NULL;
    size_t threads = 16;
    double seconds = 5;
    int c;

    tether_log_setup("bench", TETHER_LOG_TEXT, TETHER_LOG_WARN);
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 't' && atoi(optarg) > 0 && atoi(optarg) <= MAX_THREADS)
            threads = (size_t)atoi(optarg);
        else if (c == 's' && atof(optarg) > 0 && atof(optarg) <= 600)
            seconds = atof(optarg);
        else if (c == 'd')
            parent = optarg;
        else if (c == 'u' && tether_store_is_postgresql(optarg))
            url = optarg;
        else {
            fprintf(stderr, "usage: bench_group_commit [--threads T] [--seconds S] [--dir PARENT] "
                            "[--store postgresql://...]\n");
            return 2;
        }
    }
    printf("exchange store transactions on %s, %.0f s each\n",
           url != NULL ? "PostgreSQL" : "SQLite (synchronous FULL)", seconds);
    return run(parent, url, 0, 1, seconds) == 0 && run(parent, url, 1, threads, seconds) == 0 ? 0
                                                                                            : 1;
}
