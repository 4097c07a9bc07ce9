/*
 * Measured boot's cost at fleetd per exchange: tether_measured_boot_check
 * (both logs parsed, replayed in the SHA-256 bank, the replay compared with
 * the quote, every event checked against the reference) on a platform log
 * (default: the largest real log in firmware/tests/data) and a tether log
 * of three files, against a reference made from those logs. Prints p50/p99
 * over N runs of the wall time and of the thread's CPU time (on a loaded
 * machine the wall time's tail is the scheduler's); asserts nothing but
 * that each run accepts.
 *
 *   bench_measured_boot [--count N] [--log FILE]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tether/cel.h"
#include "tether/eventlog.h"
#include "tether/measured_boot.h"

#ifndef EVENTLOG_DATA_DIR
#error "EVENTLOG_DATA_DIR must name firmware/tests/data"
#endif

#define TETHER_FILES 3

static double now_ms(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void die(const char *what, const char *why) __attribute__((noreturn));
static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_measured_boot: %s: %s\n", what, why);
    exit(1);
}

/* tether's log of TETHER_FILES files, SHA-1 and SHA-256 banks, as
 * tether-agent measure writes it. */
static size_t tether_log_build(uint8_t *out, size_t size)
{
    static const char *const names[TETHER_FILES] = {"tether-agent", "agent.conf", "app"};
    uint8_t digests[2][TETHER_HASH_MAX_SIZE];
    size_t used = 0;

    for (size_t r = 0; r < TETHER_FILES; r++) {
        tether_cel_measurement_t m = {.name = names[r], .path = "/usr/bin/tether-agent",
                                      .bank_count = 2,
                                      .algorithms = {TETHER_TPM_ALG_SHA1, TETHER_TPM_ALG_SHA256}};
        size_t len = 0;

        memset(m.file_digests, (int)(0x10 + r), sizeof(m.file_digests));
        if (tether_cel_encode(r, &m, out + used, size - used, &len, digests) != TETHER_OK)
            die("tether's log", "does not encode");
        used += len;
    }
    return used;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"count", required_argument, NULL, 'c'}, {"log", required_argument, NULL, 'l'}, {0}};
    static uint8_t cel[TETHER_FILES * TETHER_CEL_RECORD_MAX];
    static tether_measured_boot_reference_t ref;
    const char *file = EVENTLOG_DATA_DIR "/event-gce-ubuntu-2104-log.bin";
    tether_measured_boot_quote_t quote = {0};
    tether_measured_boot_refusal_t refusal;
    tether_eventlog_t parsed;
    uint8_t *log = NULL;
    size_t len = 0, cel_len, count = 1000;
    char why[256];
    double *ms, *cpu;
    int opt;

    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        if (opt == 'c')
            count = strtoul(optarg, NULL, 10);
        else if (opt == 'l')
            file = optarg;
        else
            return 2;
    }
    if (count == 0 || (ms = calloc(count, sizeof(*ms))) == NULL ||
        (cpu = calloc(count, sizeof(*cpu))) == NULL)
        die("--count", "a number of runs, at least 1");
    if (tether_eventlog_read_file(file, &log, &len) != TETHER_OK)
        die(file, "cannot be read");
    cel_len = tether_log_build(cel, sizeof(cel));
    if (tether_measured_boot_reference_add_logs(&ref, log, len, cel, cel_len, why,
                                                sizeof(why)) != TETHER_OK)
        die(file, why);
    quote.pcr_mask = ref.pcr_mask;
    if (tether_measured_boot_quote_digest(log, len, cel, cel_len, quote.pcr_mask,
                                          quote.pcr_digest, why, sizeof(why)) != TETHER_OK)
        die(file, why);
    for (size_t i = 0; i < count; i++) {
        double start = now_ms(CLOCK_MONOTONIC), start_cpu = now_ms(CLOCK_THREAD_CPUTIME_ID);
        tether_status_t rc =
            tether_measured_boot_check(&ref, log, len, cel, cel_len, &quote, &refusal);

        cpu[i] = now_ms(CLOCK_THREAD_CPUTIME_ID) - start_cpu;
        ms[i] = now_ms(CLOCK_MONOTONIC) - start;
        if (rc != TETHER_OK)
            die(file, refusal.code != NULL ? refusal.text : tether_strerror(rc));
    }
    tether_eventlog_init(&parsed);
    if (tether_eventlog_parse(&parsed, log, len, NULL) != TETHER_OK)
        die(file, "does not parse");
    qsort(ms, count, sizeof(ms[0]), compare_double);
    qsort(cpu, count, sizeof(cpu[0]), compare_double);
    printf("measured boot check (%zu bytes, %zu events, %d files)  p50 %7.3f ms  p99 %7.3f ms  "
           "cpu p50 %7.3f ms  p99 %7.3f ms  (%zu)\n",
           len, parsed.event_count, TETHER_FILES, ms[count / 2], ms[count * 99 / 100],
           cpu[count / 2], cpu[count * 99 / 100], count);
    tether_eventlog_free(&parsed);
    free(log);
    free(ms);
    free(cpu);
    return 0;
}
