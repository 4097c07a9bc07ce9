/*
 * A gateway directory served: the configuration, its files, the fleet's
 * keys, the revocation feed's thread, authorization and the HTTP(S) server.
 */
#ifndef TETHER_GATE_SERVICE_H
#define TETHER_GATE_SERVICE_H

#include <stddef.h>

#include "access.h"
#include "fleet_keys.h"
#include "forward.h"
#include "gate_config.h"
#include "gate_files.h"
#include "monitor.h"
#include "revocations.h"
#include "router.h"
#include "tether/http_server.h"
#include "usage_reporter.h"

#define TETHER_GATE_DIR_MAX 200

typedef struct tether_gate_service {
    char dir[TETHER_GATE_DIR_MAX];
    tether_gate_config_t config;
    char fleet_ca[TETHER_GATE_DIR_MAX + TETHER_GATE_CONFIG_PATH_MAX];
    char rp_token[TETHER_GATE_RP_TOKEN_MAX + 1];   /* secret */
    char upstream_key[TETHER_GATE_SECRET_MAX + 1]; /* secret; "" when none: checked here,
                                                      read again by the upstream pool */
    char upstream_key_path[TETHER_GATE_DIR_MAX + TETHER_GATE_CONFIG_PATH_MAX]; /* "" : none */
    char upstream_ca_path[TETHER_GATE_DIR_MAX + TETHER_GATE_CONFIG_PATH_MAX];  /* "" : system */
    char *tls_cert_pem;                            /* NUL-terminated, or NULL */
    char *tls_key_pem;                             /* secret, or NULL */
    tether_gate_fleet_keys_t keys;
    tether_gate_revocations_t revocations;
    tether_gate_feed_follower_t follower;
    tether_gate_usage_reporter_t usage;
    tether_gate_access_t access;
    tether_gate_monitor_t monitor;
    tether_gate_forward_t forward;
    tether_gate_router_t router;
    tether_http_server_t server;
} tether_gate_service_t;

/* What a failed load says: "FILE:LINE: message" or "FILE: message". */
typedef struct tether_gate_load_error {
    char message[TETHER_GATE_DIR_MAX + 320];
} tether_gate_load_error_t;

void tether_gate_service_init(tether_gate_service_t *service);

/* Reads and checks DIR's configuration and every file it names (the secret
 * files' owner and mode, the fleet CA, the TLS certificate and key); starts
 * nothing. What tether-gate check runs. */
TETHER_MUST_CHECK tether_status_t tether_gate_service_load(tether_gate_service_t *service,
                                                           const char *dir,
                                                           tether_gate_load_error_t *error);

/* After a load: starts the feed's thread, the usage reporter's and the
 * server. */
TETHER_MUST_CHECK tether_status_t tether_gate_service_start(tether_gate_service_t *service);

/* Stops everything (the server first; the usage reports are sent a last
 * time then) and wipes the secrets; accepts NULL. */
void tether_gate_service_free(tether_gate_service_t *service);

#endif
