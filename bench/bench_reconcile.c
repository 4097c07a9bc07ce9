/*
 * The cost of usage reconciliation at fleetd per exchange: the exchange's
 * store transaction (tether_store_exchange_record, on SQLite in a
 * temporary directory, synchronous FULL as fleetd runs it), N exchanges of
 * one device without per-token counts (a version 0 usage document) and N
 * with a document of 8 tokens, interleaved, while a relying party reports
 * the device's last two tokens before each exchange. Prints p50/p99 of
 * both; asserts nothing. With --store, the same on that PostgreSQL
 * database (an empty one: the bench makes its schema and device).
 *
 *   bench_reconcile [--count N] [--dir PARENT] [--store postgresql://...]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_store.h"
#include "files.h"
#include "store.h"

#define DEVICE "dev_111111111111111111111111"
#define DOC_TOKENS 8

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void print(const char *what, double *ms, size_t n)
{
    qsort(ms, n, sizeof(ms[0]), compare_double);
    printf("%-44s p50 %7.3f ms  p99 %7.3f ms  (%zu)\n", what, ms[n / 2], ms[n * 99 / 100], n);
}

static void jti_of(uint64_t counter, char jti[TETHER_STORE_JTI_SIZE])
{
    snprintf(jti, TETHER_STORE_JTI_SIZE, "%032llx", (unsigned long long)counter);
}

/* A relying party's report of the device's last two tokens. */
static int report(tether_store_t *store, uint64_t counter, int64_t now)
{
    tether_store_usage_entry_t entries[2];
    tether_store_usage_report_t r;
    tether_store_usage_result_t result;
    char id[32];

    memset(entries, 0, sizeof(entries));
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 2; i++) {
        jti_of(counter > (uint64_t)i ? counter - (uint64_t)i : 1, entries[i].jti);
        snprintf(entries[i].device_id, sizeof(entries[i].device_id), DEVICE);
        entries[i].requests = 1;
        entries[i].first_seen = entries[i].last_seen = now;
    }
    snprintf(id, sizeof(id), "bench-%020llu", (unsigned long long)counter);
    r.relying_party = 1;
    r.gateway = "bench";
    r.report_id = id;
    r.entries = entries;
    r.entry_count = counter > 1 ? 2 : 1;
    r.usage_action = TETHER_STORE_USAGE_ALERT;
    return tether_store_usage_report_record(store, &r, now, &result) == TETHER_OK ? 0 : -1;
}

/* One exchange of counter at now, with the last DOC_TOKENS tokens'
 * counts when with_usage; its transaction's time into *ms. */
static int exchange(tether_store_t *store, uint64_t counter, int64_t now, int with_usage,
                    double *ms)
{
    tether_store_device_usage_t usage[DOC_TOKENS];
    char jtis[DOC_TOKENS][TETHER_STORE_JTI_SIZE], jti[TETHER_STORE_JTI_SIZE];
    tether_store_exchange_t ex;
    tether_store_exchange_result_t result;
    size_t n = 0;
    double t0;
    tether_status_t rc;

    memset(&ex, 0, sizeof(ex));
    for (uint64_t c = counter > DOC_TOKENS ? counter - DOC_TOKENS : 1; c < counter; c++) {
        jti_of(c, jtis[n]);
        usage[n] = (tether_store_device_usage_t){.jti = jtis[n], .proofs = 1000, .requests = 1000};
        n++;
    }
    jti_of(counter, jti);
    ex.device_id = DEVICE;
    ex.sighting.counter = counter;
    ex.sighting.at = now;
    snprintf(ex.sighting.address, sizeof(ex.sighting.address), "127.0.0.1");
    memcpy(ex.fingerprint, &counter, sizeof(counter));
    memcpy(ex.nonce_hash, &counter, sizeof(counter));
    ex.nonce_expires_at = now + 59;
    ex.nonce_issued_at = now - 1;
    ex.jti = jti;
    ex.kid = "kid";
    ex.scope = "ai.inference";
    ex.audience = "tether";
    ex.exp = now + 300;
    ex.usage = with_usage ? usage : NULL;
    ex.usage_count = with_usage ? n : 0;
    ex.usage_action = TETHER_STORE_USAGE_ALERT;
    t0 = now_ms();
    rc = tether_store_exchange_record(store, &ex, now, &result);
    *ms = now_ms() - t0;
    return rc == TETHER_OK && result.decision == TETHER_STORE_EXCHANGE_ACCEPT ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"count", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},
        {"store", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *parent = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    const char *url = NULL;
    size_t count = 500;
    char dir[512], path[600];
    tether_store_t store;
    tether_store_allow_t row;
    double *plain, *reconciled;
    uint64_t counter = 0;
    int64_t now = 1700000000;
    int c, rc = 1;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'n' && atoi(optarg) > 0)
            count = (size_t)atoi(optarg);
        else if (c == 'd')
            parent = optarg;
        else if (c == 's' && tether_store_is_postgresql(optarg))
            url = optarg;
        else {
            fprintf(stderr, "usage: bench_reconcile [--count N] [--dir PARENT] "
                            "[--store postgresql://...]\n");
            return 2;
        }
    }
    snprintf(dir, sizeof(dir), "%s/tether-bench-reconcile-XXXXXX", parent);
    plain = calloc(count, sizeof(double));
    reconciled = calloc(count, sizeof(double));
    tether_store_init(&store);
    if (plain == NULL || reconciled == NULL || mkdtemp(dir) == NULL)
        goto out;
    if (url != NULL)
        snprintf(path, sizeof(path), "%s", url);
    else
        snprintf(path, sizeof(path), "%s/fleet.db", dir);
    memset(&row, 0, sizeof(row));
    snprintf(row.id, sizeof(row.id), DEVICE);
    memset(row.ek_sha256, '1', 64);
    snprintf(row.name, sizeof(row.name), "bench");
    if (tether_store_open(&store, path, 1) != TETHER_OK ||
        tether_store_device_import(&store, &row, 1, now, NULL, NULL) != TETHER_OK ||
        bench_store_activate(path) != 0)
        goto out;
    /* Interleaved, so that a neighbour's load weighs on both alike. */
    for (size_t i = 0; i < 2 * count; i++) {
        int with_usage = (int)(i % 2);

        now += 200;
        counter++;
        if (report(&store, counter, now - 100) != 0 ||
            exchange(&store, counter, now, with_usage,
                     with_usage ? &reconciled[i / 2] : &plain[i / 2]) != 0) {
            fprintf(stderr, "bench_reconcile: exchange %llu failed\n",
                    (unsigned long long)counter);
            goto out;
        }
    }
    printf("store: %s\n", url != NULL ? "PostgreSQL" : "SQLite");
    print("exchange transaction, no per-token counts", plain, count);
    print("exchange transaction, 8 tokens reconciled", reconciled, count);
    rc = 0;
out:
    tether_store_free(&store);
    tether_fleet_dir_remove(dir);
    free(plain);
    free(reconciled);
    return rc;
}
