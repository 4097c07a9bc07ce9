/*
 * tether-gate's calls to tether-fleetd: JSON over HTTPS with the fleet's CA
 * pinned, on net's client (tether_https_client_t, mbedTLS). net's client and
 * not libcurl: the fleet calls are a few GETs and the usage reports' POST on
 * one pinned origin, and net's
 * client already pins a CA without the system store, checks the host and
 * bounds every wait and every response; libcurl is kept for the upstream
 * side, where keep-alive pools and streaming matter. A client is used by
 * one thread at a time.
 */
#ifndef TETHER_GATE_FLEET_CLIENT_H
#define TETHER_GATE_FLEET_CLIENT_H

#include <cjson/cJSON.h>

#include "tether/error.h"
#include "tether/https_client.h"

#define TETHER_GATE_FLEET_MAX_BODY (1024 * 1024) /* a feed page of 500 entries fits */

typedef struct tether_gate_fleet_client {
    tether_https_client_t https;
    char base[256]; /* the fleet's base URL, as configured */
} tether_gate_fleet_client_t;

void tether_gate_fleet_client_init(tether_gate_fleet_client_t *client);

/* Pins ca_file for fleet_url (see tether_https_client_setup); io_timeout_ms
 * bounds each wait (a long poll needs more than its wait). client->https.error
 * explains a failure. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_client_open(tether_gate_fleet_client_t *client,
                                                                const char *fleet_url,
                                                                const char *ca_file,
                                                                unsigned io_timeout_ms);

void tether_gate_fleet_client_free(tether_gate_fleet_client_t *client);

/* The path of url under the fleet's base URL ("/.well-known/jwks.json" for
 * "https://fleet:8443/.well-known/jwks.json"), or NULL when url is not
 * under it: the gateway follows no link to another origin. */
const char *tether_gate_fleet_path(const tether_gate_fleet_client_t *client, const char *url);

/* GET path (with its query); bearer, when not NULL, is sent as
 * "Authorization: Bearer" and wiped from the request buffer afterwards.
 * TETHER_OK with *out the parsed JSON object of a 200 answer (freed by the
 * caller); TETHER_ERR_PROTOCOL for another status or a body that is not a
 * JSON object; the client's errors otherwise. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_get_json(tether_gate_fleet_client_t *client,
                                                             const char *path, const char *bearer,
                                                             cJSON **out);

/* POST path with a JSON body (and the bearer token, as for GET). TETHER_OK
 * when the fleet answered, whatever the status: *status gets it and *out
 * the answer's JSON object (NULL when the body is none; freed by the
 * caller). The client's errors otherwise. */
TETHER_MUST_CHECK tether_status_t tether_gate_fleet_post_json(tether_gate_fleet_client_t *client,
                                                              const char *path,
                                                              const char *bearer,
                                                              const char *body, size_t body_len,
                                                              int *status, cJSON **out);

#endif
