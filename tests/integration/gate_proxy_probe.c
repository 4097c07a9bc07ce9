/*
 * tether-gate's proxy stage served over net's server layer, without
 * authorization, for tests and the bench: every request is the device
 * "probe-device" with a token allowing every model.
 *
 *   gate_proxy_probe CERT KEY PORT UPSTREAM_URL KEY_FILE SPEND_PER_DAY
 *
 * HTTPS on 127.0.0.1:PORT with the certificate and key (PEM files). The
 * policy allows gpt-4o* and text-embedding-*, prices gpt-4o-mini at
 * 150:600, gpt-4o at 2500:10000 and text-embedding-* at 20:0 micro-units
 * per 1000 tokens, injects max_tokens 64, and stops each day at
 * SPEND_PER_DAY micro-units (0: no ceiling). Besides the proxy's paths it
 * answers GET /probe/spend with {"spent", "reserved"} for the device.
 * One line per outcome on stderr ("outcome status=... settled=...
 * prompt=... completion=... cost=... usage_reported=..."). Runs until
 * SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/gate/policy.h"
#include "tether/gate/proxy.h"
#include "tether/gate/upstream.h"
#include "tether/http_server.h"
#include "tether/log.h"

#define DEVICE "probe-device"

typedef struct probe {
    tether_gate_proxy_t proxy;
    tether_gate_policy_t policy;
} probe_t;

static const char *const every_model[] = {"*"};

static void on_outcome(void *arg, const tether_gate_outcome_t *o)
{
    (void)arg;
    fprintf(stderr,
            "outcome device=%s model=%s path=%s stream=%d status=%u settled=%d "
            "usage_reported=%d prompt=%llu completion=%llu cost=%llu overrun=%d\n",
            o->device, o->model, o->path, o->stream, o->status, o->settled, o->usage_reported,
            (unsigned long long)o->prompt_tokens, (unsigned long long)o->completion_tokens,
            (unsigned long long)o->cost, o->overrun);
}

static void handle(void *arg, const tether_http_request_t *request,
                   tether_http_response_t *response)
{
    probe_t *probe = arg;
    tether_gate_caller_t who = {DEVICE, NULL, every_model, 1};

    if (strcmp(request->path, "/probe/spend") == 0) {
        struct timespec ts;
        uint64_t spent = 0, reserved = 0;
        cJSON *json = cJSON_CreateObject();

        clock_gettime(CLOCK_REALTIME, &ts);
        if (tether_gate_policy_spend(&probe->policy, DEVICE,
                                     (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &spent,
                                     &reserved) != TETHER_OK)
            spent = reserved = 0;
        cJSON_AddNumberToObject(json, "spent", (double)spent);
        cJSON_AddNumberToObject(json, "reserved", (double)reserved);
        tether_http_respond_json(response, 200, json);
        return;
    }
    tether_gate_proxy_handle(&probe->proxy, &who, request, response);
}

int main(int argc, char **argv)
{
    static const char *const models[] = {"gpt-4o*", "text-embedding-*"};
    static const tether_gate_price_t prices[] = {
        {"gpt-4o-mini", 150, 600}, {"gpt-4o*", 2500, 10000}, {"text-embedding-*", 20, 0}};
    probe_t probe;
    tether_gate_upstream_t upstream;
    tether_http_server_t server;
    tether_http_server_options_t sopts;
    tether_gate_policy_options_t popts;
    tether_gate_upstream_options_t uopts;
    tether_gate_proxy_options_t xopts;
    uint8_t *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    sigset_t signals;
    char why[256] = "";
    int sig = 0, status = 1;

    if (argc != 7) {
        fprintf(stderr, "usage: gate_proxy_probe CERT KEY PORT UPSTREAM_URL KEY_FILE "
                        "SPEND_PER_DAY\n");
        return 2;
    }
    tether_log_setup("gate_proxy_probe", TETHER_LOG_TEXT, TETHER_LOG_WARN);
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    tether_gate_policy_init(&probe.policy);
    tether_gate_proxy_init(&probe.proxy);
    tether_gate_upstream_init(&upstream);
    tether_http_server_init(&server);

    memset(&popts, 0, sizeof(popts));
    popts.models = models;
    popts.model_count = 2;
    popts.prices = prices;
    popts.price_count = 3;
    popts.spend_per_day = strtoull(argv[6], NULL, 10);
    popts.default_max_tokens = 64;
    popts.max_devices = 16;
    memset(&uopts, 0, sizeof(uopts));
    uopts.base_url = argv[4];
    uopts.key_file = argv[5];
    uopts.max_transfers = 32;
    uopts.connect_timeout_ms = 2000;
    uopts.timeout_ms = 30000;
    uopts.idle_timeout_ms = 30000;
    uopts.max_response_bytes = 1024 * 1024;
    if (tether_gate_upstream_global_init() != TETHER_OK ||
        tether_gate_policy_open(&probe.policy, &popts, why, sizeof(why)) != TETHER_OK ||
        tether_gate_upstream_open(&upstream, &uopts, why, sizeof(why)) != TETHER_OK) {
        fprintf(stderr, "gate_proxy_probe: %s\n", why);
        goto out;
    }
    memset(&xopts, 0, sizeof(xopts));
    xopts.upstream = &upstream;
    xopts.policy = &probe.policy;
    xopts.stream_queue_bytes = 64 * 1024;
    xopts.on_outcome = on_outcome;
    if (tether_gate_proxy_open(&probe.proxy, &xopts) != TETHER_OK ||
        tether_file_read(argv[1], 65536, &cert, &cert_len) != TETHER_OK ||
        tether_file_read(argv[2], 65536, &key, &key_len) != TETHER_OK) {
        fprintf(stderr, "gate_proxy_probe: cannot set up the proxy or read the certificate\n");
        goto out;
    }
    memset(&sopts, 0, sizeof(sopts));
    sopts.host = "127.0.0.1";
    sopts.port = (uint16_t)strtoul(argv[3], NULL, 10);
    sopts.cert_pem = (const char *)cert;
    sopts.key_pem = (const char *)key;
    sopts.max_body_bytes = 256 * 1024;
    sopts.max_connections = 256;
    sopts.max_connections_per_source = 256;
    sopts.connection_timeout_seconds = 60;
    sopts.request_head_timeout_seconds = 10;
    sopts.threads = 4;
    sopts.handler = handle;
    sopts.handler_arg = &probe;
    if (tether_http_server_open(&server, &sopts) != TETHER_OK)
        goto out;
    fprintf(stderr, "listening\n");
    sigwait(&signals, &sig);
    status = 0;
out:
    tether_http_server_free(&server);
    tether_gate_proxy_free(&probe.proxy);
    tether_gate_upstream_free(&upstream);
    tether_gate_policy_free(&probe.policy);
    if (key != NULL) {
        tether_wipe(key, key_len);
        free(key);
    }
    free(cert);
    return status;
}
