/*
 * tether-gate with full authorization, against its upstream called directly
 * (bench/gate.sh runs it): N simulated devices, each with its own P-256
 * key and an access token signed with the fleet's issuer key (as fleetd
 * signs them; the attested exchange needs a TPM per device), and a fresh
 * DPoP proof per request made with lib's signer (tether_dpop_sign_with)
 * over OpenSSL's libcrypto, so the client is not what limits the rate.
 *
 *   bench_gate_load --gate URL --direct URL --fleet URL --issuer-key FILE
 *       --kid KID --devices FILE --gate-pid PID --upstream-pid PID
 *       [--revoke N --tetherctl PATH] [--count N] [--seconds S] [--clients C]
 *
 * --gate and --direct are API roots (".../v1"); --devices holds one fleet
 * device id per line: the first N - revoke load the gateway, the last
 * --revoke are revoked one after another (tetherctl device revoke, with the
 * fleet named by the environment as for tetherctl) while the load goes on.
 * Prints, from one run:
 *   1. latency on one kept-alive connection each, calls interleaved: p50 and
 *      p99 of a non-streamed chat completion and of a stream's first event,
 *      directly and through tether-gate, and the p50 it adds;
 *   2. load with C clients (keep-alive) for S seconds, directly and then
 *      through tether-gate: requests/s, p50/p99, the CPU seconds of the
 *      upstream and of tether-gate (/proc/PID/stat utime + stime), and the
 *      authorized requests per second per core of gateway CPU;
 *   3. revoke to refused at the gateway: from starting tetherctl to the
 *      first 401 device_revoked for that device (p50/p99/max).
 * Figures, never assertions; it exits 1 only when something failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bench_chat.h"
#include "bench_proc.h"
#include "tether/bytes.h"
#include "tether/dpop.h"
#include "tether/file.h"
#include "tether/jose.h"
#include "tether/random.h"

#define MAX_DEVICES 4096
#define MAX_CLIENTS 64
#define DEVICE_ID_MAX 80
#define TOKEN_SECONDS 900      /* longer than any run */
#define SAMPLES_PER_CLIENT 262144 /* latencies kept per load client; the rest are counted */
#define REVOKE_TIMEOUT 10.0    /* seconds a revocation may take before the run fails */
#define AUTHORIZATION "Authorization: DPoP "

extern char **environ;

typedef struct device {
    char id[DEVICE_ID_MAX];
    char *authorization; /* the header field "Authorization: DPoP <token>", malloc'd */
    const char *token;   /* inside authorization */
    size_t token_len;
    tether_ec_key_t key; /* the public part, for the proofs' jwk */
    EVP_PKEY *pkey;      /* the same key pair, for signing with libcrypto */
} device_t;

typedef struct bench {
    const char *gate;   /* API roots */
    const char *direct;
    const char *fleet;
    const char *tetherctl;
    pid_t gate_pid;
    pid_t upstream_pid;
    device_t *devices;
    size_t device_count;
    size_t revoke_count; /* the last revoke_count devices */
    char jti_prefix[17];
    atomic_uint_fast64_t jti_counter;
} bench_t;

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "bench_gate_load: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- devices: keys, tokens, proofs ------------------------------------- */

/* tether_jws_sign_fn over libcrypto: ECDSA of the digest, as R || S. */
static int sign_openssl(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ctx, NULL);
    unsigned char der[80];
    const unsigned char *p = der;
    size_t der_len = sizeof(der);
    ECDSA_SIG *ecdsa = NULL;
    int ok = 0;

    if (pctx != NULL && EVP_PKEY_sign_init(pctx) == 1 &&
        EVP_PKEY_sign(pctx, der, &der_len, digest, 32) == 1 &&
        (ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) != NULL &&
        BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), sig, 32) == 32 &&
        BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), sig + 32, 32) == 32)
        ok = 1;
    ECDSA_SIG_free(ecdsa);
    EVP_PKEY_CTX_free(pctx);
    return ok ? 0 : -1;
}

/* A fresh key pair, as lib's key (the proofs' jwk) and as libcrypto's. */
static void device_key(device_t *device)
{
    char pem[TETHER_EC_KEY_PEM_MAX];
    size_t len = 0;
    BIO *bio = NULL;

    if (tether_ec_key_generate(&device->key) != TETHER_OK ||
        tether_ec_key_write_pem(&device->key, pem, sizeof(pem), &len) != TETHER_OK ||
        (bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
        (device->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
        die("cannot make a device key");
    BIO_free(bio);
    tether_wipe(pem, sizeof(pem));
}

/* A token as fleetd issues it, bound to the device's key. */
static void device_token(const bench_t *bench, device_t *device, const char *kid,
                         const tether_ec_key_t *issuer, size_t index)
{
    char jkt[TETHER_JWK_THUMBPRINT_SIZE], jti[64], token[TETHER_JWS_MAX_LEN + 1];
    cJSON *claims = cJSON_CreateObject(), *cnf, *tether, *models;
    int64_t now = (int64_t)time(NULL);
    size_t len = 0;

    snprintf(jti, sizeof(jti), "bench-%s-%zu", bench->jti_prefix, index);
    if (claims == NULL || tether_jwk_thumbprint_key(&device->key, jkt, sizeof(jkt)) != TETHER_OK ||
        cJSON_AddStringToObject(claims, "iss", bench->fleet) == NULL ||
        cJSON_AddStringToObject(claims, "sub", device->id) == NULL ||
        cJSON_AddStringToObject(claims, "aud", "tether-gate") == NULL ||
        cJSON_AddStringToObject(claims, "client_id", device->id) == NULL ||
        cJSON_AddStringToObject(claims, "scope", "ai.inference") == NULL ||
        cJSON_AddNumberToObject(claims, "iat", (double)now) == NULL ||
        cJSON_AddNumberToObject(claims, "nbf", (double)now) == NULL ||
        cJSON_AddNumberToObject(claims, "exp", (double)(now + TOKEN_SECONDS)) == NULL ||
        cJSON_AddStringToObject(claims, "jti", jti) == NULL ||
        (cnf = cJSON_AddObjectToObject(claims, "cnf")) == NULL ||
        cJSON_AddStringToObject(cnf, "jkt", jkt) == NULL ||
        (tether = cJSON_AddObjectToObject(claims, "tether")) == NULL ||
        cJSON_AddNumberToObject(tether, "counter", 1) == NULL ||
        cJSON_AddStringToObject(tether, "policy", "default") == NULL ||
        (models = cJSON_AddArrayToObject(tether, "models")) == NULL)
        die("cannot make a token's claims");
    cJSON_AddItemToArray(models, cJSON_CreateString("gpt-4o*"));
    if (tether_jwt_sign(kid, claims, issuer, token, sizeof(token), &len) != TETHER_OK ||
        (device->authorization = malloc(sizeof(AUTHORIZATION) + len)) == NULL)
        die("cannot sign a token");
    snprintf(device->authorization, sizeof(AUTHORIZATION) + len, AUTHORIZATION "%s", token);
    device->token = device->authorization + sizeof(AUTHORIZATION) - 1;
    device->token_len = len;
    tether_wipe(token, sizeof(token));
    cJSON_Delete(claims);
}

static void load_devices(bench_t *bench, const char *path, const char *key_file, const char *kid)
{
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    char line[256];
    tether_ec_key_t issuer;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        die("cannot open the devices file");
    if ((bench->devices = calloc(MAX_DEVICES, sizeof(device_t))) == NULL)
        die("out of memory");
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (bench->device_count == MAX_DEVICES || strlen(line) >= DEVICE_ID_MAX)
            die("too many devices, or a device id too long");
        memcpy(bench->devices[bench->device_count++].id, line, strlen(line) + 1);
    }
    fclose(f);
    if (bench->device_count <= bench->revoke_count)
        die("the devices file must hold more devices than --revoke");
    tether_ec_key_init(&issuer);
    if (tether_file_read(key_file, 4096, &pem, &pem_len) != TETHER_OK ||
        tether_ec_key_parse_pem(&issuer, (const char *)pem, pem_len) != TETHER_OK)
        die("cannot read the issuer key");
    tether_wipe(pem, pem_len);
    free(pem);
    for (size_t i = 0; i < bench->device_count; i++) {
        tether_ec_key_init(&bench->devices[i].key);
        device_key(&bench->devices[i]);
        device_token(bench, &bench->devices[i], kid, &issuer, i);
    }
    tether_ec_key_free(&issuer);
}

static void free_devices(bench_t *bench)
{
    for (size_t i = 0; i < bench->device_count; i++) {
        device_t *d = &bench->devices[i];
        tether_wipe(d->authorization, strlen(d->authorization));
        free(d->authorization);
        tether_ec_key_free(&d->key);
        EVP_PKEY_free(d->pkey);
    }
    free(bench->devices);
}

/* The headers of one request: a fresh proof for POST url when device is
 * not NULL (through the gateway), none of tether's when it is (directly). */
static struct curl_slist *request_headers(bench_t *bench, const device_t *device, const char *url)
{
    char jti[48], proof[TETHER_DPOP_MAX_LEN + 8];
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *next;
    tether_dpop_claims_t claims = {"POST", url, jti, (int64_t)time(NULL), NULL, 0, NULL};

    if (headers == NULL || device == NULL)
        return headers;
    snprintf(jti, sizeof(jti), "%s-%" PRIuFAST64, bench->jti_prefix,
             atomic_fetch_add(&bench->jti_counter, 1));
    claims.access_token = device->token;
    claims.access_token_len = device->token_len;
    memcpy(proof, "DPoP: ", 6);
    if (tether_dpop_sign_with(&claims, &device->key, sign_openssl, device->pkey, proof + 6,
                              sizeof(proof) - 6, NULL) != TETHER_OK ||
        (next = curl_slist_append(headers, proof)) == NULL ||
        (next = curl_slist_append(next, device->authorization)) == NULL) {
        curl_slist_free_all(headers);
        return NULL;
    }
    return next;
}

/* ---- one request ------------------------------------------------------- */

typedef struct answer {
    double first;   /* when the first server-sent event ("data:") came; 0 before */
    char body[512]; /* the body's start: the refusal's code, the first event */
    size_t len;
} answer_t;

static size_t collect(char *bytes, size_t size, size_t count, void *arg)
{
    answer_t *a = arg;
    size_t n = size * count, room = sizeof(a->body) - 1 - a->len, kept = n < room ? n : room;

    memcpy(a->body + a->len, bytes, kept);
    a->len += kept;
    a->body[a->len] = '\0';
    if (a->first == 0.0 && strstr(a->body, "data:") != NULL)
        a->first = now_s();
    return n;
}

static CURL *client(void)
{
    CURL *curl = curl_easy_init();

    if (curl != NULL) {
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    }
    return curl;
}

/* POST base/chat/completions, with a proof when device is not NULL. Its
 * latency in seconds (to the end, or to the first event of a stream)
 * and *status (0 when the request failed); a for the body's start. */
static double request(bench_t *bench, CURL *curl, const char *base, const device_t *device,
                      bool stream, long *status, answer_t *a)
{
    char url[512];
    struct curl_slist *headers;
    double start, latency = -1.0;

    *status = 0;
    memset(a, 0, sizeof(*a));
    snprintf(url, sizeof(url), "%s/chat/completions", base);
    if ((headers = request_headers(bench, device, url)) == NULL)
        return -1.0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, stream ? stream_body : chat_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
    start = now_s(); /* the proof is made: the client's cost, not the gateway's */
    if (curl_easy_perform(curl) == CURLE_OK &&
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status) == CURLE_OK)
        latency = (stream ? a->first : now_s()) - start;
    curl_slist_free_all(headers);
    return latency;
}

/* ---- figures ----------------------------------------------------------- */

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* p in [0, 1] of v[0..n), sorted here; milliseconds. */
static double percentile_ms(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), compare);
    return v[(size_t)(p * (double)(n - 1) + 0.5)] * 1e3;
}

/* utime + stime of pid in seconds (bench_proc.h); the run cannot go on without it. */
static double cpu_seconds(pid_t pid)
{
    double seconds;

    if (bench_proc_cpu_seconds(pid, &seconds) != 0)
        die("cannot read a process's CPU time from /proc/PID/stat (is it running?)");
    return seconds;
}

/* ---- 1. latency, interleaved ------------------------------------------- */

static void latency(bench_t *bench, size_t count)
{
    static const char *names[4] = {"chat, direct", "chat, through tether-gate",
                                   "stream first event, direct",
                                   "stream first event, through tether-gate"};
    CURL *direct = client(), *gated = client();
    const device_t *device = &bench->devices[0];
    double *lat[4], p50[4], p99[4];
    answer_t a;
    long status;

    for (int k = 0; k < 4; k++)
        if ((lat[k] = calloc(count, sizeof(double))) == NULL)
            die("out of memory");
    if (direct == NULL || gated == NULL)
        die("cannot make a libcurl handle");
    for (int i = 0; i < 50; i++) { /* connections, the upstream pool, caches */
        (void)request(bench, direct, bench->direct, NULL, false, &status, &a);
        (void)request(bench, gated, bench->gate, device, false, &status, &a);
    }
    for (size_t i = 0; i < count; i++) {
        for (int k = 0; k < 4; k++) {
            bool gate = k % 2 == 1;
            lat[k][i] = request(bench, gate ? gated : direct, gate ? bench->gate : bench->direct,
                                gate ? device : NULL, k >= 2, &status, &a);
            if (lat[k][i] < 0 || status != 200) {
                fprintf(stderr, "bench_gate_load: %s: status %ld: %s\n", names[k], status, a.body);
                exit(1);
            }
        }
    }
    printf("latency, one kept-alive connection each, calls interleaved (%zu per kind):\n", count);
    for (int k = 0; k < 4; k++) {
        p50[k] = percentile_ms(lat[k], count, 0.50);
        p99[k] = percentile_ms(lat[k], count, 0.99);
        printf("  %-40s p50 %7.3f ms   p99 %7.3f ms\n", names[k], p50[k], p99[k]);
        free(lat[k]);
    }
    printf("  added by tether-gate, p50: %.3f ms per non-streamed request (goal <= 0.25), "
           "%.3f ms to a stream's first event (goal <= 0.5)\n",
           p50[1] - p50[0], p50[3] - p50[2]);
    curl_easy_cleanup(direct);
    curl_easy_cleanup(gated);
}

/* ---- 2. load ----------------------------------------------------------- */

typedef struct loader {
    bench_t *bench;
    const char *base;
    const device_t *device; /* NULL: directly */
    double until;
    atomic_bool *stop;      /* ends the load before until when set */
    double *samples;
    size_t kept;
    unsigned long done;
    unsigned long failed;
    long last_status;
    char last_body[sizeof(((answer_t *)0)->body)];
} loader_t;

static void *loader_main(void *arg)
{
    loader_t *l = arg;
    CURL *curl = client();
    answer_t a;
    long status;

    while (curl != NULL && now_s() < l->until && !atomic_load(l->stop)) {
        double t = request(l->bench, curl, l->base, l->device, false, &status, &a);
        if (t < 0 || status != 200) {
            l->failed++;
            l->last_status = status;
            snprintf(l->last_body, sizeof(l->last_body), "%s", a.body);
            continue;
        }
        l->done++;
        if (l->kept < SAMPLES_PER_CLIENT)
            l->samples[l->kept++] = t;
    }
    curl_easy_cleanup(curl);
    return NULL;
}

typedef struct load_run {
    loader_t loaders[MAX_CLIENTS];
    pthread_t threads[MAX_CLIENTS];
    unsigned clients;
    atomic_bool stop;
    double started;
} load_run_t;

/* Starts clients loaders on base (through the gateway with the load
 * devices when gated) until `until` or load_stop. */
static void load_start(load_run_t *run, bench_t *bench, bool gated, unsigned clients,
                       double until)
{
    size_t load_devices = bench->device_count - bench->revoke_count;

    memset(run, 0, sizeof(*run));
    run->clients = clients;
    run->started = now_s();
    for (unsigned t = 0; t < clients; t++) {
        loader_t *l = &run->loaders[t];
        l->bench = bench;
        l->base = gated ? bench->gate : bench->direct;
        l->device = gated ? &bench->devices[t % load_devices] : NULL;
        l->until = until;
        l->stop = &run->stop;
        if ((l->samples = malloc(SAMPLES_PER_CLIENT * sizeof(double))) == NULL ||
            pthread_create(&run->threads[t], NULL, loader_main, l) != 0)
            die("cannot start a load client");
    }
}

/* Joins the loaders (at their end, or at once when stop); prints their
 * figures under name; the seconds they ran. */
static double load_finish(load_run_t *run, const char *name, bool stop)
{
    unsigned long done = 0, failed = 0;
    size_t kept = 0, o = 0;
    double *all, seconds;

    atomic_store(&run->stop, stop);
    for (unsigned t = 0; t < run->clients; t++) {
        pthread_join(run->threads[t], NULL);
        done += run->loaders[t].done;
        failed += run->loaders[t].failed;
        kept += run->loaders[t].kept;
    }
    seconds = now_s() - run->started;
    if ((all = malloc((kept + 1) * sizeof(double))) == NULL)
        die("out of memory");
    for (unsigned t = 0; t < run->clients; t++) {
        loader_t *l = &run->loaders[t];
        memcpy(all + o, l->samples, l->kept * sizeof(double));
        o += l->kept;
        free(l->samples);
        if (l->failed > 0)
            fprintf(stderr, "bench_gate_load: %s: %lu failed, the last with status %ld: %s\n",
                    name, l->failed, l->last_status, l->last_body);
    }
    if (kept == 0)
        die("no request of the load succeeded");
    printf("  %-22s %8.0f requests/s   p50 %7.3f ms   p99 %7.3f ms   (%lu in %.1f s, %lu failed)\n",
           name, (double)done / seconds, percentile_ms(all, kept, 0.50),
           percentile_ms(all, kept, 0.99), done, seconds, failed);
    free(all);
    return seconds;
}

static unsigned long load_done(const load_run_t *run)
{
    unsigned long done = 0;

    for (unsigned t = 0; t < run->clients; t++)
        done += run->loaders[t].done;
    return done;
}

static void load(bench_t *bench, unsigned clients, double seconds)
{
    static load_run_t run;
    double gate_cpu, upstream_cpu, gate_used, upstream_used, elapsed;
    unsigned long done;

    printf("load, %u clients (keep-alive) for %.0f s each; %zu devices through tether-gate:\n",
           clients, seconds, bench->device_count - bench->revoke_count);
    upstream_cpu = cpu_seconds(bench->upstream_pid);
    load_start(&run, bench, false, clients, now_s() + seconds);
    elapsed = load_finish(&run, "directly", false);
    upstream_used = cpu_seconds(bench->upstream_pid) - upstream_cpu;
    printf("  %-22s upstream CPU %.2f s (%.0f%% of a core)\n", "", upstream_used,
           100.0 * upstream_used / elapsed);

    gate_cpu = cpu_seconds(bench->gate_pid);
    upstream_cpu = cpu_seconds(bench->upstream_pid);
    load_start(&run, bench, true, clients, now_s() + seconds);
    elapsed = load_finish(&run, "through tether-gate", false);
    done = load_done(&run);
    gate_used = cpu_seconds(bench->gate_pid) - gate_cpu;
    upstream_used = cpu_seconds(bench->upstream_pid) - upstream_cpu;
    printf("  %-22s tether-gate CPU %.2f s (%.0f%% of a core), upstream CPU %.2f s\n", "",
           gate_used, 100.0 * gate_used / elapsed, upstream_used);
    printf("  authorized requests per second per core of gateway CPU: %.0f (goal >= 5000)\n",
           gate_used > 0 ? (double)done / gate_used : 0.0);
}

/* ---- 3. revoke to refused ---------------------------------------------- */

static pid_t spawn_revoke(const bench_t *bench, const char *device_id)
{
    char *argv[] = {(char *)bench->tetherctl, "device", "revoke", (char *)device_id, "--reason",
                    "tether-gate benchmark", NULL};
    posix_spawn_file_actions_t actions;
    pid_t pid = -1;

    if (posix_spawn_file_actions_init(&actions) != 0 ||
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) != 0 ||
        posix_spawn(&pid, bench->tetherctl, &actions, NULL, argv, environ) != 0)
        die("cannot start tetherctl device revoke");
    posix_spawn_file_actions_destroy(&actions);
    return pid;
}

static void revocations(bench_t *bench, unsigned clients)
{
    static load_run_t run;
    size_t n = bench->revoke_count, first = bench->device_count - n;
    double *refused = calloc(n, sizeof(double)), *returned = calloc(n, sizeof(double));
    CURL *curl = client();
    answer_t a;
    long status;

    if (refused == NULL || returned == NULL || curl == NULL)
        die("out of memory");
    load_start(&run, bench, true, clients, now_s() + 3600.0);
    for (size_t i = 0; i < n; i++) {
        const device_t *device = &bench->devices[first + i];
        double start;
        int wstatus;
        pid_t pid;

        if (request(bench, curl, bench->gate, device, false, &status, &a) < 0 || status != 200) {
            fprintf(stderr, "bench_gate_load: device %s before its revocation: status %ld: %s\n",
                    device->id, status, a.body);
            exit(1);
        }
        start = now_s();
        pid = spawn_revoke(bench, device->id);
        for (;;) {
            if (returned[i] == 0.0 && waitpid(pid, &wstatus, WNOHANG) == pid) {
                if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
                    die("tetherctl device revoke failed");
                returned[i] = now_s() - start;
            }
            (void)request(bench, curl, bench->gate, device, false, &status, &a);
            if (status == 401 && strstr(a.body, "\"device_revoked\"") != NULL)
                break;
            if (status != 200) {
                fprintf(stderr, "bench_gate_load: device %s being revoked: status %ld: %s\n",
                        device->id, status, a.body);
                exit(1);
            }
            if (now_s() - start > REVOKE_TIMEOUT)
                die("a revoked device was still let through after 10 s");
        }
        refused[i] = now_s() - start;
        if (returned[i] == 0.0) {
            if (waitpid(pid, &wstatus, 0) != pid || !WIFEXITED(wstatus) ||
                WEXITSTATUS(wstatus) != 0)
                die("tetherctl device revoke failed");
            returned[i] = now_s() - start;
        }
    }
    printf("revoke to refused at tether-gate, %zu devices one after another, under the load of "
           "%u clients:\n",
           n, clients);
    (void)load_finish(&run, "the load meanwhile", true);
    printf("  tetherctl device revoke returned      p50 %7.1f ms   p99 %7.1f ms\n",
           percentile_ms(returned, n, 0.50), percentile_ms(returned, n, 0.99));
    printf("  first 401 device_revoked at the gate  p50 %7.1f ms   p99 %7.1f ms   max %7.1f ms "
           "(goal p99 <= 1000)\n",
           percentile_ms(refused, n, 0.50), percentile_ms(refused, n, 0.99),
           percentile_ms(refused, n, 1.0));
    printf("  (from starting tetherctl: its process start and the fleet's TLS handshake "
           "included)\n");
    curl_easy_cleanup(curl);
    free(refused);
    free(returned);
}

/* ---- main -------------------------------------------------------------- */

static unsigned long number(const char *text, unsigned long min, unsigned long max,
                            const char *what)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench_gate_load: %s must be a number from %lu to %lu\n", what, min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"gate", required_argument, NULL, 'g'},       {"direct", required_argument, NULL, 'd'},
        {"fleet", required_argument, NULL, 'f'},      {"issuer-key", required_argument, NULL, 'i'},
        {"kid", required_argument, NULL, 'k'},        {"devices", required_argument, NULL, 'D'},
        {"gate-pid", required_argument, NULL, 'G'},   {"upstream-pid", required_argument, NULL, 'U'},
        {"revoke", required_argument, NULL, 'r'},     {"tetherctl", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},      {"seconds", required_argument, NULL, 's'},
        {"clients", required_argument, NULL, 'c'},    {NULL, 0, NULL, 0}};
    static bench_t bench;
    const char *key_file = NULL, *kid = NULL, *devices = NULL;
    size_t count = 300;
    unsigned long seconds = 5;
    unsigned clients = 8;
    uint8_t prefix[8];
    int opt;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'g': bench.gate = optarg; break;
        case 'd': bench.direct = optarg; break;
        case 'f': bench.fleet = optarg; break;
        case 'i': key_file = optarg; break;
        case 'k': kid = optarg; break;
        case 'D': devices = optarg; break;
        case 'G': bench.gate_pid = (pid_t)number(optarg, 1, 4194304, "--gate-pid"); break;
        case 'U': bench.upstream_pid = (pid_t)number(optarg, 1, 4194304, "--upstream-pid"); break;
        case 'r': bench.revoke_count = number(optarg, 0, MAX_DEVICES - 1, "--revoke"); break;
        case 't': bench.tetherctl = optarg; break;
        case 'n': count = number(optarg, 10, 1000000, "--count"); break;
        case 's': seconds = number(optarg, 1, 3600, "--seconds"); break;
        case 'c': clients = (unsigned)number(optarg, 1, MAX_CLIENTS, "--clients"); break;
        default: exit(2);
        }
    }
    if (bench.gate == NULL || bench.direct == NULL || bench.fleet == NULL || key_file == NULL ||
        kid == NULL || devices == NULL || bench.gate_pid == 0 || bench.upstream_pid == 0 ||
        (bench.revoke_count > 0 && bench.tetherctl == NULL)) {
        fprintf(stderr, "usage: bench_gate_load --gate URL --direct URL --fleet URL --issuer-key "
                        "FILE --kid KID --devices FILE --gate-pid PID --upstream-pid PID "
                        "[--revoke N --tetherctl PATH] [--count N] [--seconds S] [--clients C]\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        tether_random_bytes(prefix, sizeof(prefix)) != TETHER_OK)
        die("cannot start libcurl or the random generator");
    for (size_t i = 0; i < sizeof(prefix); i++)
        snprintf(bench.jti_prefix + 2 * i, 3, "%02x", prefix[i]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    load_devices(&bench, devices, key_file, kid);

    latency(&bench, count);
    load(&bench, clients, (double)seconds);
    if (bench.revoke_count > 0)
        revocations(&bench, clients);

    free_devices(&bench);
    curl_global_cleanup();
    return 0;
}
