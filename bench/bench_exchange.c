/*
 * Benchmarks of the attested token exchange. Prints figures; asserts
 * nothing (run.sh starts the fleet and the TPM and calls these modes).
 *
 *   bench_exchange latency --tcti TCTI --state-dir DIR [--count N]
 *                          [--platform-eventlog FILE --tether-eventlog FILE]
 *       N exchanges of an enrolled device against its fleet over loopback
 *       TLS: p50/p99 of the whole exchange (challenge and token on one
 *       connection), of a refresh that holds its nonce already (the next
 *       challenge: one request on a new connection; the nonce is fetched
 *       before the clock starts, as the previous token would have brought
 *       it), and of the TPM's part alone (EK, AK load, counter increment,
 *       NV_Certify, Quote, flush); the token request's variable part (subject_token and, when the
 *       device's policy has measured boot, the event-log parameters made
 *       from the two files) in bytes, of the first exchange and the last.
 *   bench_exchange reconcile --tcti TCTI --state-dir DIR [--count N]
 *       N exchanges, every other one (once the device has 8 tokens)
 *       reporting the per-token counts of its last 8 tokens in its usage
 *       document, which fleetd reconciles with the gateways' reports; the
 *       others report none: p50/p99 of both (reconciliation's cost in a
 *       whole exchange).
 *   bench_exchange dpop --tcti TCTI --state-dir DIR [--count N]
 *       N DPoP proofs signed with the device key as the agent signs them
 *       (tether_dpop_signer_sign): the first, which loads the key, and
 *       p50/p99 of the rest (one TPM2_Sign each).
 *   bench_exchange token --tcti TCTI --state-dir DIR
 *       one exchange; prints the access token (for the revocation timing).
 *   bench_exchange fake-ca OUT.pem
 *       writes the manufacturer CA of the simulated devices' TPMs.
 *   bench_exchange load --fleet URL --ca FILE --bootstrap-token TOKEN
 *                       [--devices N] [--workers W] [--seconds S] [--server-pid PID]
 *                       [--seed K] [--enrol-workers E]
 *       enrols N simulated devices (software TPMs sharing one manufacturer,
 *       made from seeds K to K + N - 1, default K 1000: another K for
 *       other devices in the same fleet) with the bootstrap token, then runs them for S seconds from W
 *       worker threads (default min(N, 16)), each driving its share of the
 *       devices round robin, one exchange at a time: exchanges per second
 *       the fleet sustains, latency percentiles, and this process's own CPU
 *       per exchange and memory per device (so that a load generator that
 *       is the bottleneck shows); with --server-pid, fleetd's CPU time
 *       (utime + stime) over those S seconds per exchange, and its resident
 *       set size after them. The devices enrol from E of the workers (default
 *       W): fewer enrolments at once for a store whose enrolments conflict
 *       (PostgreSQL: every one uses the same bootstrap token).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/pem.h>

#include "bench_proc.h"
#include "bench_time.h"
#include "dpop_signer.h"
#include "enroll.h"
#include "exchange.h"
#include "state.h"
#include "token_counts.h"
#include "tether/log.h"
#include "tether/secure_memory.h"
#include "tether/tpm_fake.h"

#define MANUFACTURER 7
#define COUNTER 0x01000100u
#define MAX_DEVICES 100000
#define MAX_WORKERS 256
#define DEFAULT_WORKERS 16

static void print_percentiles(const char *what, double *ms, size_t n)
{
    if (n == 0) {
        printf("%-34s no samples\n", what);
        return;
    }
    qsort(ms, n, sizeof(*ms), bench_compare_double);
    printf("%-34s p50 %7.2f ms  p99 %7.2f ms  (n=%zu, min %.2f, max %.2f)\n", what,
           ms[n / 2], ms[n * 99 / 100 < n ? n * 99 / 100 : n - 1], n, ms[0], ms[n - 1]);
}

/* The TPM's part of an exchange, without the network. */
static int tpm_part(tether_tpm_t *tpm, const tether_agent_state_t *state)
{
    static const uint8_t qualifying[32] = {1};
    TPML_PCR_SELECTION pcrs = {.count = 1};
    tether_tpm_attestation_t nv, quote;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE;
    tether_ek_t ek;
    int rc = -1;

    pcrs.pcrSelections[0].hash = TPM2_ALG_SHA256;
    pcrs.pcrSelections[0].sizeofSelect = 3;
    pcrs.pcrSelections[0].pcrSelect[0] = 0xff;
    if (tether_ek_open(tpm, state->ek_type, &ek) != TETHER_OK)
        return -1;
    if (tether_tpm_load_key(tpm, ek.handle, &state->ak, &ak) == TETHER_OK &&
        tether_tpm_nv_increment(tpm, state->counter_index) == TETHER_OK &&
        tether_tpm_nv_certify(tpm, ak, state->counter_index, qualifying, sizeof(qualifying), &nv) ==
            TETHER_OK &&
        tether_tpm_quote(tpm, ak, &pcrs, qualifying, sizeof(qualifying), &quote) == TETHER_OK)
        rc = 0;
    (void)tether_tpm_flush(tpm, ak);
    tether_ek_free(tpm, &ek);
    return rc;
}

/* One exchange as tether_agent_exchange makes it, in its two halves so
 * that the token request's variable part can be counted (*form_bytes),
 * and its connection closed at the end as the agent's refresh does. */
static void exchange_counted(tether_https_client_t *client, tether_tpm_t *tpm,
                             const tether_agent_state_t *state, const tether_usage_t *usage,
                             tether_secure_buffer_t *token, tether_exchange_result_t *r,
                             size_t *form_bytes)
{
    char *subject_token = NULL, *eventlog_params = NULL;

    *form_bytes = 0;
    if (tether_agent_exchange_evidence(client, tpm, NULL, state, usage, &subject_token,
                                       &eventlog_params, r) == 0) {
        *form_bytes = strlen(subject_token) +
                      (eventlog_params != NULL ? strlen(eventlog_params) : 0);
        (void)tether_agent_exchange_token(client, subject_token, eventlog_params, NULL, token,
                                          r);
    }
    tether_https_client_close(client);
    free(subject_token);
    free(eventlog_params);
}

/* A challenge asked for now, held as if the last token had brought it
 * with its window open; the connection is closed, as between refreshes. */
static int hold_challenge(tether_https_client_t *client, const tether_agent_state_t *state,
                          tether_next_challenge_t *next)
{
    char body[128];
    tether_https_response_t resp;
    int rc = -1;

    tether_https_response_init(&resp);
    memset(next, 0, sizeof(*next));
    snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", state->device_id);
    if (tether_https_request(client, "POST", "/v1/challenge", "application/json",
                             (const uint8_t *)body, strlen(body), NULL, &resp) == TETHER_OK &&
        resp.status == 200 &&
        tether_agent_exchange_read_challenge(resp.body, resp.body_len, next->nonce, &next->pcrs,
                                             &next->measured_boot) == TETHER_OK) {
        next->opens_ms = (int64_t)tether_socket_now_ms();
        next->closes_ms = next->opens_ms + 30000;
        next->held = true;
        rc = 0;
    }
    tether_https_response_free(&resp);
    tether_https_client_close(client);
    return rc;
}

/* The per-token counts the device reports (tether_usage_t.counts). */
static void copy_counts(void *ctx, tether_token_counts_t *out)
{
    *out = *(const tether_token_counts_t *)ctx;
}

/* The token just received counted as used PER_TOKEN_USES times (a proof
 * and a proxied request each), so that the usage document names the
 * device's last TETHER_TOKEN_COUNTS_MAX tokens, all issued to it. */
#define PER_TOKEN_USES 5
static void count_token(tether_token_counts_t *counts, const tether_secure_buffer_t *token)
{
    char jti[TETHER_TOKEN_JTI_MAX + 1];

    if (tether_token_jti((const char *)token->data, strlen((const char *)token->data), jti) !=
        TETHER_OK)
        return;
    for (int i = 0; i < PER_TOKEN_USES; i++)
        if (tether_token_counts_add(counts, jti, TETHER_TOKEN_COUNT_PROOF) != TETHER_OK ||
            tether_token_counts_add(counts, jti, TETHER_TOKEN_COUNT_REQUEST) != TETHER_OK)
            return;
}

/* count exchanges; with_counts: every other one reports the counts of the
 * device's last tokens (reconciliation at fleetd), the others none, and
 * both are printed. */
static int latency(const char *tcti, const char *state_dir, size_t count, int print_token,
                   int with_counts, const tether_agent_eventlog_paths_t *eventlogs)
{
    tether_agent_state_t state;
    tether_https_client_t client;
    tether_tpm_t tpm;
    tether_secure_buffer_t token;
    tether_usage_t usage = {0, 0, NULL, NULL, *eventlogs};
    tether_token_counts_t counts;
    double *total = calloc(count, sizeof(double)), *tpm_ms = calloc(count, sizeof(double));
    double *counted = calloc(count, sizeof(double)), *held_ms = calloc(count, sizeof(double));
    tether_next_challenge_t next;
    const tether_exchange_context_t ctx = {
        .client = &client, .tpm = &tpm, .state = &state, .next = &next};
    size_t held_ok = 0;
    char ca[4096], why[256];
    size_t ok = 0, tpm_ok = 0, counted_ok = 0, first_bytes = 0, last_bytes = 0;
    int rc = 1;

    tether_https_client_init(&client);
    tether_tpm_init(&tpm);
    memset(&token, 0, sizeof(token));
    tether_token_counts_init(&counts);
    memset(&next, 0, sizeof(next));
    if (total == NULL || tpm_ms == NULL || counted == NULL || held_ms == NULL ||
        tether_agent_state_load(state_dir, &state, why, sizeof(why)) != TETHER_OK)
        goto out;
    snprintf(ca, sizeof(ca), "%s/%s", state_dir, TETHER_STATE_CA_FILE);
    client.keep_alive = true; /* as the agent: one connection per exchange */
    if (tether_https_client_setup(&client, state.fleet_url, ca) != TETHER_OK ||
        tether_tpm_open_esapi(&tpm, tcti) != TETHER_OK ||
        tether_secure_buffer_alloc(&token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK)
        goto out;
    for (size_t i = 0; i < count; i++) {
        tether_exchange_result_t r;
        int reports = with_counts && i % 2 == 1 && counts.count == TETHER_TOKEN_COUNTS_MAX;
        size_t bytes = 0;
        double t0;

        usage.counts = reports ? copy_counts : NULL;
        usage.counts_ctx = reports ? &counts : NULL;
        t0 = bench_now_s();
        exchange_counted(&client, &tpm, &state, &usage, &token, &r, &bytes);
        if (r.outcome != TETHER_EXCHANGE_OK) {
            fprintf(stderr, "bench: exchange %zu: %s %s\n", i, r.code, r.reason);
            continue;
        }
        if (reports)
            counted[counted_ok++] = (bench_now_s() - t0) * 1000;
        else
            total[ok++] = (bench_now_s() - t0) * 1000;
        if (i == 0)
            first_bytes = bytes;
        last_bytes = bytes;
        usage.exchanges++;
        if (with_counts)
            count_token(&counts, &token);
    }
    if (with_counts) {
        printf("token exchange on swtpm, interleaved: without per-token counts, and with the "
               "counts of the device's last %d tokens\n",
               TETHER_TOKEN_COUNTS_MAX);
        print_percentiles("  without counts", total, ok);
        print_percentiles("  with 8 tokens' counts", counted, counted_ok);
        rc = ok + counted_ok == count ? 0 : 1;
        goto out;
    }
    if (print_token) {
        printf("%s\n", ok == 1 ? (const char *)token.data : "");
        rc = ok == 1 ? 0 : 1;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        tether_exchange_result_t r;
        double t0;

        if (hold_challenge(&client, &state, &next) != 0) {
            fprintf(stderr, "bench: challenge %zu: %s\n", i, client.error);
            continue;
        }
        t0 = bench_now_s();
        tether_agent_refresh(&ctx, &usage, &token, &r);
        if (r.outcome != TETHER_EXCHANGE_OK) {
            fprintf(stderr, "bench: refresh %zu: %s %s\n", i, r.code, r.reason);
            continue;
        }
        held_ms[held_ok++] = (bench_now_s() - t0) * 1000;
        usage.exchanges++;
    }
    for (size_t i = 0; i < count; i++) {
        double t0 = bench_now_s();
        if (tpm_part(&tpm, &state) == 0)
            tpm_ms[tpm_ok++] = (bench_now_s() - t0) * 1000;
    }
    printf("token exchange on swtpm over loopback TLS (%zu of %zu succeeded)\n", ok, count);
    print_percentiles("  whole exchange", total, ok);
    print_percentiles("  refresh, nonce held (1 request)", held_ms, held_ok);
    print_percentiles("  TPM part (swtpm)", tpm_ms, tpm_ok);
    printf("  token request's variable part     first %zu bytes, last %zu bytes\n", first_bytes,
           last_bytes);
    rc = ok == count && held_ok == count ? 0 : 1;
out:
    tether_next_challenge_forget(&next);
    free(total);
    free(held_ms);
    free(tpm_ms);
    free(counted);
    tether_secure_buffer_free(&token);
    tether_https_client_free(&client);
    tether_tpm_close(&tpm);
    return rc;
}

static int fake_ca(const char *out)
{
    tether_tpm_fake_config_t config = {.ek_cert_types = 1u << TETHER_EK_ECC_P256,
                                       .seed = 1, .manufacturer = MANUFACTURER};
    tether_tpm_t tpm;
    const uint8_t *der;
    size_t len, olen = 0;
    unsigned char pem[4096];
    FILE *f;
    int rc = 1;

    tether_tpm_init(&tpm);
    if (tether_tpm_open_fake(&tpm, &config) == TETHER_OK &&
        tether_tpm_fake_ca_cert(&tpm, &der, &len) == TETHER_OK &&
        mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                 der, len, pem, sizeof(pem), &olen) == 0 &&
        (f = fopen(out, "w")) != NULL) {
        rc = fputs((const char *)pem, f) >= 0 ? 0 : 1;
        rc |= fclose(f) != 0;
    }
    tether_tpm_close(&tpm);
    return rc;
}

/* A simulated device: its software TPM and what enrolment gave it. The
 * TLS client and the token buffer belong to the worker that drives it. */
typedef struct device {
    tether_tpm_t tpm;
    tether_agent_state_t state;
    tether_usage_t usage;
} device_t;

/* One of the few threads that drive every device: worker w owns devices
 * w, w + workers, w + 2 * workers, ... and runs one exchange at a time,
 * round robin over them. */
typedef struct worker {
    pthread_t thread;
    tether_https_client_t client;
    tether_secure_buffer_t token;
    device_t *devices;
    size_t first, stride, n; /* its devices: first, first + stride, ... below n */
    const char *bootstrap;   /* set for the enrolment phase */
    unsigned long seed;      /* device i's software TPM is made from seed + i */
    double until;            /* end of the load phase */
    double *ms;              /* latency of each exchange done, up to capacity */
    size_t capacity, done, failed;
    size_t enrol_retries;    /* enrolments tried again after a refusal */
} worker_t;

static void record_latency(worker_t *w, double ms)
{
    if (w->done == w->capacity) {
        size_t capacity = w->capacity > 0 ? w->capacity * 2 : 4096;
        double *grown = realloc(w->ms, capacity * sizeof(double));
        if (grown == NULL)
            return; /* counted in done, not sampled */
        w->ms = grown;
        w->capacity = capacity;
    }
    w->ms[w->done] = ms;
}

/* Each device enrols as the agent does, tried again (as an agent's next
 * start would) after a refusal, up to ENROL_ATTEMPTS times: on PostgreSQL
 * enrolments at once conflict on the bootstrap token's row, and one that
 * loses more than the store's attempts is answered 500. */
#define ENROL_ATTEMPTS 5
static void *worker_enrol(void *arg)
{
    worker_t *w = arg;

    for (size_t i = w->first; i < w->n; i += w->stride) {
        tether_tpm_fake_config_t config = {.ek_cert_types = 1u << TETHER_EK_ECC_P256,
                                           .seed = w->seed + i, .manufacturer = MANUFACTURER};
        device_t *d = &w->devices[i];
        int enrolled = -1;

        if (tether_tpm_open_fake(&d->tpm, &config) == TETHER_OK)
            for (int attempt = 0; attempt < ENROL_ATTEMPTS && enrolled != 0; attempt++) {
                w->enrol_retries += attempt > 0;
                enrolled = tether_agent_enroll_with(&d->tpm, &w->client, TETHER_EK_ECC_P256,
                                                    COUNTER, NULL, w->bootstrap, &d->state);
            }
        if (enrolled != 0) {
            fprintf(stderr, "bench: simulated device %zu could not enrol\n", i);
            w->failed++;
        }
    }
    return NULL;
}

static void *worker_load(void *arg)
{
    worker_t *w = arg;

    while (bench_now_s() < w->until) {
        for (size_t i = w->first; i < w->n && bench_now_s() < w->until; i += w->stride) {
            device_t *d = &w->devices[i];
            tether_exchange_result_t r;
            double t0 = bench_now_s();

            tether_agent_exchange(&w->client, &d->tpm, NULL, &d->state, &d->usage, &w->token,
                                  &r);
            if (r.outcome != TETHER_EXCHANGE_OK) {
                w->failed++;
                continue;
            }
            record_latency(w, (bench_now_s() - t0) * 1000);
            w->done++;
            d->usage.exchanges++;
        }
    }
    return NULL;
}

/* Runs fn on every worker and waits for them; -1 when a thread cannot be
 * started (those started are joined). */
static int run_workers(worker_t *workers, size_t count, void *(*fn)(void *))
{
    size_t started = 0;

    while (started < count && pthread_create(&workers[started].thread, NULL, fn,
                                             &workers[started]) == 0)
        started++;
    for (size_t i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    return started == count ? 0 : -1;
}

/* A process's CPU time over the load phase, per exchange and as a share of
 * one core. */
static void print_cpu(const char *who, double cpu, double elapsed, size_t exchanges)
{
    printf("  %-10s CPU over the load       %.2f s (%.0f%% of a core)\n", who, cpu,
           100 * cpu / elapsed);
    if (exchanges > 0)
        printf("  %-10s CPU per exchange        %.3f ms\n", who, cpu * 1000 / (double)exchanges);
}

/* The server's memory after the load. */
static int print_server_memory(pid_t pid)
{
    unsigned long rss, peak;

    if (bench_proc_rss_kib(pid, &rss, &peak) != 0) {
        fprintf(stderr, "bench: cannot read fleetd's /proc/%ld (is it running?)\n", (long)pid);
        return -1;
    }
    printf("  fleetd RSS after the load         %.1f MiB (peak %.1f MiB)\n", (double)rss / 1024,
           (double)peak / 1024);
    return 0;
}

static int load(const char *fleet, const char *ca, const char *bootstrap, unsigned long seed,
                size_t n, size_t nworkers, size_t nenrol, double seconds, pid_t server)
{
    device_t *devs = calloc(n, sizeof(*devs));
    worker_t *workers = calloc(nworkers, sizeof(*workers));
    double *all = NULL, start, elapsed = 0, server_cpu[2] = {0, 0}, own_cpu[2] = {0, 0};
    size_t total = 0, failed = 0, samples = 0, retries = 0;
    unsigned long rss, peak;
    int rc = 1;

    if (devs == NULL || workers == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        tether_tpm_init(&devs[i].tpm);
    for (size_t w = 0; w < nworkers; w++) {
        worker_t *k = &workers[w];
        *k = (worker_t){.devices = devs, .first = w, .stride = nenrol, .n = n,
                        .bootstrap = bootstrap, .seed = seed};
        tether_https_client_init(&k->client);
        k->client.keep_alive = true; /* as the agent: one connection per exchange */
        if (tether_https_client_setup(&k->client, fleet, ca) != TETHER_OK ||
            tether_secure_buffer_alloc(&k->token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK) {
            fprintf(stderr, "bench: worker %zu: no TLS client or token buffer\n", w);
            goto out;
        }
    }
    start = bench_now_s();
    if (run_workers(workers, nenrol, worker_enrol) != 0)
        goto out;
    for (size_t w = 0; w < nworkers; w++) {
        failed += workers[w].failed;
        retries += workers[w].enrol_retries;
        workers[w].stride = nworkers; /* the load: every worker */
    }
    if (failed > 0)
        goto out;
    printf("%zu simulated devices enrolled by %zu workers in %.1f s (%zu tried again after a "
           "refusal)\n",
           n, nenrol, bench_now_s() - start, retries);
    if ((server > 0 && bench_proc_cpu_seconds(server, &server_cpu[0]) != 0) ||
        bench_proc_cpu_seconds(getpid(), &own_cpu[0]) != 0) {
        fprintf(stderr, "bench: cannot read /proc/PID/stat (is fleetd running?)\n");
        goto out;
    }
    start = bench_now_s();
    for (size_t w = 0; w < nworkers; w++)
        workers[w].until = start + seconds;
    if (run_workers(workers, nworkers, worker_load) != 0)
        goto out;
    elapsed = bench_now_s() - start;
    if ((server > 0 && bench_proc_cpu_seconds(server, &server_cpu[1]) != 0) ||
        bench_proc_cpu_seconds(getpid(), &own_cpu[1]) != 0) {
        fprintf(stderr, "bench: cannot read /proc/PID/stat (is fleetd running?)\n");
        goto out;
    }
    for (size_t w = 0; w < nworkers; w++) {
        total += workers[w].done;
        failed += workers[w].failed;
    }
    if ((all = calloc(total + 1, sizeof(double))) == NULL)
        goto out;
    for (size_t w = 0; w < nworkers; w++) {
        size_t k = workers[w].done < workers[w].capacity ? workers[w].done : workers[w].capacity;
        memcpy(all + samples, workers[w].ms, k * sizeof(double));
        samples += k;
    }
    printf("fleetd with %zu simulated devices, %zu exchanging at a time, for %.1f s\n", n,
           nworkers, elapsed);
    printf("  exchanges per second              %.1f (%zu done, %zu failed)\n",
           (double)total / elapsed, total, failed);
    print_percentiles("  exchange latency under load", all, samples);
    if (server > 0)
        print_cpu("fleetd", server_cpu[1] - server_cpu[0], elapsed, total);
    /* The load generator's own share: if it takes the cores, the figures
     * above measure it, not fleetd. */
    print_cpu("load", own_cpu[1] - own_cpu[0], elapsed, total);
    if (bench_proc_rss_kib(getpid(), &rss, &peak) == 0)
        printf("  load RSS                          %.1f MiB (%.1f KiB per device)\n",
               (double)rss / 1024, (double)rss / (double)n);
    if (server > 0 && print_server_memory(server) != 0)
        goto out;
    rc = failed == 0 ? 0 : 1;
out:
    free(all);
    for (size_t w = 0; workers != NULL && w < nworkers; w++) {
        free(workers[w].ms);
        tether_secure_buffer_free(&workers[w].token);
        tether_https_client_free(&workers[w].client);
    }
    for (size_t i = 0; devs != NULL && i < n; i++)
        tether_tpm_close(&devs[i].tpm);
    free(workers);
    free(devs);
    return rc;
}

static int dpop(const char *tcti, const char *state_dir, size_t count)
{
    static const char token[] = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJiZW5jaCJ9.c2ln";
    tether_agent_state_t state;
    tether_tpm_t tpm;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    tether_dpop_signer_t signer;
    double *ms = calloc(count, sizeof(double)), first = 0;
    char proof[TETHER_DPOP_MAX_LEN + 1], why[256];
    size_t len, ok = 0;
    int rc = 1;

    tether_tpm_init(&tpm);
    tether_dpop_signer_init(&signer);
    if (ms == NULL || tether_agent_state_load(state_dir, &state, why, sizeof(why)) != TETHER_OK ||
        tether_tpm_open_esapi(&tpm, tcti) != TETHER_OK ||
        tether_dpop_signer_setup(&signer, &tpm, &lock, &state) != TETHER_OK)
        goto out;
    for (size_t i = 0; i <= count; i++) {
        double t0 = bench_now_s();
        if (tether_dpop_signer_sign(&signer, "POST", "https://gate.example/v1/chat/completions",
                                    NULL, token, sizeof(token) - 1, (int64_t)time(NULL), proof,
                                    sizeof(proof), &len, why, sizeof(why)) != TETHER_OK) {
            fprintf(stderr, "bench: proof %zu: %s\n", i, why);
            continue;
        }
        if (i == 0)
            first = (bench_now_s() - t0) * 1000;
        else
            ms[ok++] = (bench_now_s() - t0) * 1000;
    }
    printf("DPoP proof signed by the TPM device key on swtpm (%zu of %zu succeeded)\n", ok, count);
    printf("  first proof, loading the key       %7.2f ms\n", first);
    print_percentiles("  each proof after (TPM2_Sign)", ms, ok);
    rc = ok == count ? 0 : 1;
out:
    tether_dpop_signer_free(&signer);
    tether_tpm_close(&tpm);
    free(ms);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"tcti", required_argument, NULL, 't'},      {"state-dir", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},     {"fleet", required_argument, NULL, 'f'},
        {"ca", required_argument, NULL, 'c'},        {"bootstrap-token", required_argument, NULL, 'b'},
        {"devices", required_argument, NULL, 'd'},   {"seconds", required_argument, NULL, 'S'},
        {"server-pid", required_argument, NULL, 'p'}, {"workers", required_argument, NULL, 'w'},
        {"platform-eventlog", required_argument, NULL, 'P'},
        {"tether-eventlog", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 'e'},
        {"enrol-workers", required_argument, NULL, 'E'},
        {NULL, 0, NULL, 0},
    };
    const char *tcti = NULL, *state_dir = NULL, *fleet = NULL, *ca = NULL, *bootstrap = NULL;
    unsigned long count = 100, devices = 8, workers = 0, enrol_workers = 0, seed = 1000;
    tether_agent_eventlog_paths_t eventlogs = {NULL, NULL};
    long server = 0;
    double seconds = 10;
    int c;

    tether_log_setup("bench", TETHER_LOG_TEXT, TETHER_LOG_WARN);
    if (argc < 2) {
        fprintf(stderr, "usage: see the comment at the top of bench/bench_exchange.c\n");
        return 2;
    }
    if (strcmp(argv[1], "fake-ca") == 0 && argc == 3)
        return fake_ca(argv[2]);
    optind = 2;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 't': tcti = optarg; break;
        case 's': state_dir = optarg; break;
        case 'n': count = strtoul(optarg, NULL, 10); break;
        case 'f': fleet = optarg; break;
        case 'c': ca = optarg; break;
        case 'b': bootstrap = optarg; break;
        case 'd': devices = strtoul(optarg, NULL, 10); break;
        case 'S': seconds = strtod(optarg, NULL); break;
        case 'p': server = strtol(optarg, NULL, 10); break;
        case 'P': eventlogs.platform = optarg; break;
        case 'T': eventlogs.tether = optarg; break;
        case 'w': workers = strtoul(optarg, NULL, 10); break;
        case 'e': seed = strtoul(optarg, NULL, 10); break;
        case 'E': enrol_workers = strtoul(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (strcmp(argv[1], "latency") == 0 && tcti != NULL && state_dir != NULL && count > 0 &&
        count <= 100000)
        return latency(tcti, state_dir, count, 0, 0, &eventlogs);
    if (strcmp(argv[1], "reconcile") == 0 && tcti != NULL && state_dir != NULL && count > 1 &&
        count <= 100000)
        return latency(tcti, state_dir, count, 0, 1, &eventlogs);
    if (strcmp(argv[1], "dpop") == 0 && tcti != NULL && state_dir != NULL && count > 0 &&
        count <= 100000)
        return dpop(tcti, state_dir, count);
    if (strcmp(argv[1], "token") == 0 && tcti != NULL && state_dir != NULL)
        return latency(tcti, state_dir, 1, 1, 0, &eventlogs);
    if (workers == 0) /* by default a thread per device up to DEFAULT_WORKERS */
        workers = devices < DEFAULT_WORKERS ? devices : DEFAULT_WORKERS;
    if (enrol_workers == 0)
        enrol_workers = workers;
    if (strcmp(argv[1], "load") == 0 && fleet != NULL && ca != NULL && bootstrap != NULL &&
        devices > 0 && devices <= MAX_DEVICES && workers <= devices && workers <= MAX_WORKERS &&
        enrol_workers <= workers &&
        seconds > 0 && seconds <= 3600 && server >= 0)
        return load(fleet, ca, bootstrap, seed, devices, workers, enrol_workers, seconds,
                    (pid_t)server);
    fprintf(stderr, "bench_exchange: bad command line\n");
    return 2;
}
