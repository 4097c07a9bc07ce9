/*
 * tether-gate's proxy overhead (bench/gate_proxy.sh runs it): the same
 * requests sent to the upstream directly and through the proxy, in one
 * run, interleaved so that both see the same machine.
 *
 *   bench_gate_proxy DIRECT_BASE PROXY_BASE CA_FILE COUNT SECONDS THREADS
 *
 * Prints the p50 and p99 of a non-streamed chat completion and of a
 * stream's time to its first event, each direct and through the proxy,
 * the p50 added, and the requests per second directly and through the
 * proxy with THREADS clients for SECONDS each. Each client keeps its
 * connection alive.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "bench_chat.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct first_event {
    double start;
    double first; /* when the first "data:" arrived; 0 before */
} first_event_t;

static size_t discard(char *bytes, size_t size, size_t count, void *arg)
{
    (void)bytes;
    (void)arg;
    return size * count;
}

static size_t note_first(char *bytes, size_t size, size_t count, void *arg)
{
    first_event_t *f = arg;

    if (f->first == 0.0 && memmem(bytes, size * count, "data:", 5) != NULL)
        f->first = now_s();
    return size * count;
}

static CURL *client(const char *ca_file, struct curl_slist *headers)
{
    CURL *curl = curl_easy_init();

    if (curl == NULL)
        return NULL;
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    return curl;
}

/* One request; its latency in seconds (to the end, or to the first event
 * for a stream), or -1 when it failed. */
static double request(CURL *curl, const char *base, bool stream)
{
    char url[512];
    first_event_t f = {now_s(), 0.0};
    long status = 0;

    snprintf(url, sizeof(url), "%s/chat/completions", base);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, stream ? stream_body : chat_body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, stream ? note_first : discard);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &f);
    if (curl_easy_perform(curl) != CURLE_OK ||
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200)
        return -1.0;
    return (stream ? f.first : now_s()) - f.start;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), compare);
    return v[(size_t)(p * (double)(n - 1))];
}

typedef struct load {
    const char *base;
    const char *ca_file;
    struct curl_slist *headers;
    double until;
    atomic_ulong done;
    atomic_ulong failed;
} load_t;

static void *load_main(void *arg)
{
    load_t *load = arg;
    CURL *curl = client(load->ca_file, load->headers);

    while (curl != NULL && now_s() < load->until) {
        if (request(curl, load->base, false) < 0)
            atomic_fetch_add(&load->failed, 1);
        else
            atomic_fetch_add(&load->done, 1);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

int main(int argc, char **argv)
{
    struct curl_slist *headers = NULL;
    size_t count;
    double seconds, *lat[4];
    unsigned threads;
    CURL *direct, *proxied;
    const char *names[4] = {"chat, direct", "chat, proxied", "stream first event, direct",
                            "stream first event, proxied"};
    load_t load;
    pthread_t *tids;

    if (argc != 7) {
        fprintf(stderr, "usage: bench_gate_proxy DIRECT_BASE PROXY_BASE CA_FILE COUNT SECONDS "
                        "THREADS\n");
        return 2;
    }
    count = strtoul(argv[4], NULL, 10);
    seconds = strtod(argv[5], NULL);
    threads = (unsigned)strtoul(argv[6], NULL, 10);
    if (count < 10 || threads == 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    direct = client(argv[3], headers);
    proxied = client(argv[3], headers);
    for (int k = 0; k < 4; k++)
        lat[k] = calloc(count, sizeof(double));
    tids = calloc(threads, sizeof(*tids));
    if (headers == NULL || direct == NULL || proxied == NULL || tids == NULL)
        return 1;
    /* warm up: connections, the pool, the stand-in */
    for (int i = 0; i < 20; i++) {
        (void)request(direct, argv[1], false);
        (void)request(proxied, argv[2], false);
    }
    for (size_t i = 0; i < count; i++) {
        lat[0][i] = request(direct, argv[1], false);
        lat[1][i] = request(proxied, argv[2], false);
        lat[2][i] = request(direct, argv[1], true);
        lat[3][i] = request(proxied, argv[2], true);
        for (int k = 0; k < 4; k++) {
            if (lat[k][i] < 0) {
                fprintf(stderr, "bench_gate_proxy: a request failed (%s)\n", names[k]);
                return 1;
            }
        }
    }
    {
        double p50[4], p99[4];

        for (int k = 0; k < 4; k++) {
            p50[k] = percentile(lat[k], count, 0.50) * 1e3;
            p99[k] = percentile(lat[k], count, 0.99) * 1e3;
            printf("%-30s p50 %7.3f ms   p99 %7.3f ms   (%zu requests)\n", names[k], p50[k],
                   p99[k], count);
        }
        printf("added by the proxy, p50: %.3f ms per non-streamed request (goal <= 0.25), "
               "%.3f ms to a stream's first event (goal <= 0.5)\n",
               p50[1] - p50[0], p50[3] - p50[2]);
    }
    /* the same load directly, then through the proxy */
    for (int k = 0; k < 2; k++) {
        memset(&load, 0, sizeof(load));
        load.base = argv[1 + k];
        load.ca_file = argv[3];
        load.headers = headers;
        load.until = now_s() + seconds;
        for (unsigned t = 0; t < threads; t++)
            pthread_create(&tids[t], NULL, load_main, &load);
        for (unsigned t = 0; t < threads; t++)
            pthread_join(tids[t], NULL);
        printf("%s: %.0f requests/s with %u clients for %.0f s (%lu failed)\n",
               k == 0 ? "directly         " : "through the proxy",
               (double)atomic_load(&load.done) / seconds, threads, seconds,
               atomic_load(&load.failed));
    }
    curl_easy_cleanup(direct);
    curl_easy_cleanup(proxied);
    curl_slist_free_all(headers);
    for (int k = 0; k < 4; k++)
        free(lat[k]);
    free(tids);
    curl_global_cleanup();
    return 0;
}
