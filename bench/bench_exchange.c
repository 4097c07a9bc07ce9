/*
 * Benchmarks of the attested token exchange. Prints figures; asserts
 * nothing (run.sh starts the fleet and the TPM and calls these modes).
 *
 *   bench_exchange latency --tcti TCTI --state-dir DIR [--count N]
 *       N exchanges of an enrolled device against its fleet over loopback
 *       TLS: p50/p99 of the whole exchange (challenge and token on one
 *       connection), of a refresh that holds its nonce already (the next
 *       challenge: one request on a new connection; the nonce is fetched
 *       before the clock starts, as the previous token would have brought
 *       it), and of the TPM's part alone (EK, AK load, counter increment,
 *       NV_Certify, Quote, flush).
 *   bench_exchange dpop --tcti TCTI --state-dir DIR [--count N]
 *       N DPoP proofs signed with the device key as the agent signs them
 *       (tether_dpop_signer_sign): the first, which loads the key, and
 *       p50/p99 of the rest (one TPM2_Sign each).
 *   bench_exchange token --tcti TCTI --state-dir DIR
 *       one exchange; prints the access token (for the revocation timing).
 *   bench_exchange fake-ca OUT.pem
 *       writes the manufacturer CA of the simulated devices' TPMs.
 *   bench_exchange load --fleet URL --ca FILE --bootstrap-token TOKEN
 *                       [--devices N] [--seconds S] [--server-pid PID]
 *       enrols N simulated devices (software TPMs sharing one manufacturer)
 *       with the bootstrap token, then runs them concurrently for S seconds:
 *       exchanges per second the fleet sustains, and latency percentiles;
 *       with --server-pid, fleetd's CPU time (utime + stime) over those S
 *       seconds per exchange, and its resident set size after them.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/pem.h>

#include "bench_proc.h"
#include "dpop_signer.h"
#include "enroll.h"
#include "exchange.h"
#include "state.h"
#include "tether/log.h"
#include "tether/secure_memory.h"
#include "tether/tpm_fake.h"

#define MANUFACTURER 7
#define COUNTER 0x01000100u
#define MAX_DEVICES 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_percentiles(const char *what, double *ms, size_t n)
{
    if (n == 0) {
        printf("%-34s no samples\n", what);
        return;
    }
    qsort(ms, n, sizeof(*ms), compare_double);
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
        tether_agent_exchange_read_challenge(resp.body, resp.body_len, next->nonce,
                                             &next->pcrs) == TETHER_OK) {
        next->opens_ms = (int64_t)tether_socket_now_ms();
        next->closes_ms = next->opens_ms + 30000;
        next->held = true;
        rc = 0;
    }
    tether_https_response_free(&resp);
    tether_https_client_close(client);
    return rc;
}

static int latency(const char *tcti, const char *state_dir, size_t count, int print_token)
{
    tether_agent_state_t state;
    tether_https_client_t client;
    tether_tpm_t tpm;
    tether_secure_buffer_t token;
    tether_usage_t usage = {0, 0, NULL, NULL};
    double *total = calloc(count, sizeof(double)), *tpm_ms = calloc(count, sizeof(double));
    double *held_ms = calloc(count, sizeof(double));
    tether_next_challenge_t next;
    const tether_exchange_context_t ctx = {
        .client = &client, .tpm = &tpm, .state = &state, .next = &next};
    size_t held_ok = 0;
    char ca[4096], why[256];
    size_t ok = 0, tpm_ok = 0;
    int rc = 1;

    tether_https_client_init(&client);
    tether_tpm_init(&tpm);
    memset(&token, 0, sizeof(token));
    memset(&next, 0, sizeof(next));
    if (total == NULL || tpm_ms == NULL || held_ms == NULL ||
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
        double t0 = now_s();
        tether_agent_exchange(&client, &tpm, NULL, &state, &usage, &token, &r);
        if (r.outcome != TETHER_EXCHANGE_OK) {
            fprintf(stderr, "bench: exchange %zu: %s %s\n", i, r.code, r.reason);
            continue;
        }
        total[ok++] = (now_s() - t0) * 1000;
        usage.exchanges++;
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
        t0 = now_s();
        tether_agent_refresh(&ctx, &usage, &token, &r);
        if (r.outcome != TETHER_EXCHANGE_OK) {
            fprintf(stderr, "bench: refresh %zu: %s %s\n", i, r.code, r.reason);
            continue;
        }
        held_ms[held_ok++] = (now_s() - t0) * 1000;
        usage.exchanges++;
    }
    for (size_t i = 0; i < count; i++) {
        double t0 = now_s();
        if (tpm_part(&tpm, &state) == 0)
            tpm_ms[tpm_ok++] = (now_s() - t0) * 1000;
    }
    printf("token exchange on swtpm over loopback TLS (%zu of %zu succeeded)\n", ok, count);
    print_percentiles("  whole exchange", total, ok);
    print_percentiles("  refresh, nonce held (1 request)", held_ms, held_ok);
    print_percentiles("  TPM part (swtpm)", tpm_ms, tpm_ok);
    rc = ok == count && held_ok == count ? 0 : 1;
out:
    tether_next_challenge_forget(&next);
    free(total);
    free(held_ms);
    free(tpm_ms);
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

typedef struct device {
    tether_tpm_t tpm;
    tether_https_client_t client;
    tether_agent_state_t state;
    tether_secure_buffer_t token;
    double *ms;
    size_t capacity, done, failed;
    double until;
} device_t;

static void *device_loop(void *arg)
{
    device_t *d = arg;
    tether_usage_t usage = {0, 0, NULL, NULL};

    while (now_s() < d->until) {
        tether_exchange_result_t r;
        double t0 = now_s();
        tether_agent_exchange(&d->client, &d->tpm, NULL, &d->state, &usage, &d->token, &r);
        if (r.outcome != TETHER_EXCHANGE_OK) {
            d->failed++;
            continue;
        }
        if (d->done < d->capacity)
            d->ms[d->done] = (now_s() - t0) * 1000;
        d->done++;
        usage.exchanges++;
    }
    return NULL;
}

/* The server's CPU per exchange over the load phase (cpu_start read as it
 * began) and its memory after it. */
static int print_server_use(pid_t pid, double cpu_start, size_t exchanges)
{
    double cpu_end;
    unsigned long rss, peak;

    if (bench_proc_cpu_seconds(pid, &cpu_end) != 0 || bench_proc_rss_kib(pid, &rss, &peak) != 0) {
        fprintf(stderr, "bench: cannot read fleetd's /proc/%ld (is it running?)\n", (long)pid);
        return -1;
    }
    printf("  fleetd CPU over the load          %.2f s (utime + stime)\n", cpu_end - cpu_start);
    if (exchanges > 0)
        printf("  fleetd CPU per exchange           %.3f ms\n",
               (cpu_end - cpu_start) * 1000 / (double)exchanges);
    printf("  fleetd RSS after the load         %.1f MiB (peak %.1f MiB)\n", (double)rss / 1024,
           (double)peak / 1024);
    return 0;
}

static int load(const char *fleet, const char *ca, const char *bootstrap, size_t n, double seconds,
                pid_t server)
{
    device_t *devs = calloc(n, sizeof(*devs));
    pthread_t threads[MAX_DEVICES];
    double *all = NULL, start, elapsed, server_cpu = 0;
    size_t total = 0, failed = 0, samples = 0;
    int rc = 1;

    if (devs == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) {
        tether_tpm_fake_config_t config = {.ek_cert_types = 1u << TETHER_EK_ECC_P256,
                                           .seed = 1000 + i, .manufacturer = MANUFACTURER};
        device_t *d = &devs[i];
        tether_tpm_init(&d->tpm);
        tether_https_client_init(&d->client);
        d->client.keep_alive = true; /* as the agent: one connection per exchange */
        d->capacity = 100000;
        if ((d->ms = calloc(d->capacity, sizeof(double))) == NULL ||
            tether_tpm_open_fake(&d->tpm, &config) != TETHER_OK ||
            tether_https_client_setup(&d->client, fleet, ca) != TETHER_OK ||
            tether_secure_buffer_alloc(&d->token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK ||
            tether_agent_enroll_with(&d->tpm, &d->client, TETHER_EK_ECC_P256, COUNTER, NULL,
                                     bootstrap, &d->state) != 0) {
            fprintf(stderr, "bench: simulated device %zu could not enrol\n", i);
            goto out;
        }
    }
    if (server > 0 && bench_proc_cpu_seconds(server, &server_cpu) != 0) {
        fprintf(stderr, "bench: cannot read fleetd's /proc/%ld/stat (is it running?)\n",
                (long)server);
        goto out;
    }
    start = now_s();
    for (size_t i = 0; i < n; i++) {
        devs[i].until = start + seconds;
        if (pthread_create(&threads[i], NULL, device_loop, &devs[i]) != 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    elapsed = now_s() - start;
    for (size_t i = 0; i < n; i++) {
        total += devs[i].done;
        failed += devs[i].failed;
    }
    if ((all = calloc(total + 1, sizeof(double))) == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        size_t k = devs[i].done < devs[i].capacity ? devs[i].done : devs[i].capacity;
        memcpy(all + samples, devs[i].ms, k * sizeof(double));
        samples += k;
    }
    printf("fleetd with %zu concurrent simulated devices for %.1f s\n", n, elapsed);
    printf("  exchanges per second              %.1f (%zu done, %zu failed)\n",
           (double)total / elapsed, total, failed);
    print_percentiles("  exchange latency under load", all, samples);
    if (server > 0 && print_server_use(server, server_cpu, total) != 0)
        goto out;
    rc = failed == 0 ? 0 : 1;
out:
    free(all);
    for (size_t i = 0; i < n; i++) {
        free(devs[i].ms);
        tether_secure_buffer_free(&devs[i].token);
        tether_https_client_free(&devs[i].client);
        tether_tpm_close(&devs[i].tpm);
    }
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
        double t0 = now_s();
        if (tether_dpop_signer_sign(&signer, "POST", "https://gate.example/v1/chat/completions",
                                    NULL, token, sizeof(token) - 1, (int64_t)time(NULL), proof,
                                    sizeof(proof), &len, why, sizeof(why)) != TETHER_OK) {
            fprintf(stderr, "bench: proof %zu: %s\n", i, why);
            continue;
        }
        if (i == 0)
            first = (now_s() - t0) * 1000;
        else
            ms[ok++] = (now_s() - t0) * 1000;
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
        {"server-pid", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *tcti = NULL, *state_dir = NULL, *fleet = NULL, *ca = NULL, *bootstrap = NULL;
    unsigned long count = 100, devices = 8;
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
        default: return 2;
        }
    }
    if (strcmp(argv[1], "latency") == 0 && tcti != NULL && state_dir != NULL && count > 0 &&
        count <= 100000)
        return latency(tcti, state_dir, count, 0);
    if (strcmp(argv[1], "dpop") == 0 && tcti != NULL && state_dir != NULL && count > 0 &&
        count <= 100000)
        return dpop(tcti, state_dir, count);
    if (strcmp(argv[1], "token") == 0 && tcti != NULL && state_dir != NULL)
        return latency(tcti, state_dir, 1, 1);
    if (strcmp(argv[1], "load") == 0 && fleet != NULL && ca != NULL && bootstrap != NULL &&
        devices > 0 && devices <= MAX_DEVICES && seconds > 0 && seconds <= 600 && server >= 0)
        return load(fleet, ca, bootstrap, devices, seconds, (pid_t)server);
    fprintf(stderr, "bench_exchange: bad command line\n");
    return 2;
}
