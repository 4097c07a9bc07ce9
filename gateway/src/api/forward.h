/*
 * The proxy's stage in tether-gate's pipeline: a request authorization let
 * through goes to the ceilings of the token's policy (tether/gate/policy.h)
 * and to the upstream (tether/gate/proxy.h), with one set of ceilings and
 * one proxy per configured policy over one upstream connection pool.
 * Outcomes go to the monitor (the usage line, the metrics).
 */
#ifndef TETHER_GATE_FORWARD_H
#define TETHER_GATE_FORWARD_H

#include <stddef.h>

#include "access.h"
#include "gate_config.h"
#include "monitor.h"
#include "tether/gate/policy.h"
#include "tether/gate/proxy.h"
#include "tether/gate/upstream.h"

/* Bytes queued per stream between upstream and the client. */
#define TETHER_GATE_STREAM_QUEUE_BYTES (64 * 1024)

typedef struct tether_gate_forward {
    const tether_gate_config_t *config; /* borrowed */
    tether_gate_upstream_t upstream;
    tether_gate_policy_t ceilings[TETHER_GATE_CONFIG_MAX_POLICIES]; /* as config->policies */
    tether_gate_proxy_t proxies[TETHER_GATE_CONFIG_MAX_POLICIES];
    size_t count; /* policies opened */
} tether_gate_forward_t;

void tether_gate_forward_init(tether_gate_forward_t *forward);

/* Opens the upstream pool (key_file and ca_file: resolved paths, or NULL)
 * and the ceilings and proxy of each of config's policies. config and
 * monitor must outlive the forwarder. A sentence in why on failure. */
TETHER_MUST_CHECK tether_status_t tether_gate_forward_open(tether_gate_forward_t *forward,
                                                           const tether_gate_config_t *config,
                                                           const char *key_file,
                                                           const char *ca_file,
                                                           tether_gate_monitor_t *monitor,
                                                           char *why, size_t why_size);

/* Waits for running streams; stop the HTTP server first. Accepts NULL. */
void tether_gate_forward_free(tether_gate_forward_t *forward);

/* The stage: identity's policy's proxy handles request. */
void tether_gate_forward_handle(tether_gate_forward_t *forward,
                                const tether_gate_identity_t *identity,
                                const tether_http_request_t *request,
                                tether_http_response_t *response);

#endif
