/*
 * tether-gate's request pipeline and its one route table: every request is
 * matched to a route (404 otherwise), the request its DPoP proof must name
 * is found (the gateway's own URL, or the original request of an nginx
 * auth_request or an Envoy ext_authz call), authorization runs (access.h)
 * and only then the route's stage gets the verified identity and the
 * request and produces the response.
 *
 * The proxy's routes (forward.h: ceilings, upstream, usage) never see a
 * request that authorization refused. One route needs no token: GET
 * /metrics, answered to loopback clients only (TETHER_GATE_TARGET_LOCAL).
 */
#ifndef TETHER_GATE_ROUTER_H
#define TETHER_GATE_ROUTER_H

#include <stdbool.h>

#include "access.h"
#include "monitor.h"
#include "tether/http_handler.h"

struct tether_gate_router;
struct tether_gate_forward;

/* After authorization: identity is verified (NULL for a LOCAL route); the
 * stage fills response. */
typedef void (*tether_gate_stage_fn)(struct tether_gate_router *router,
                                     const tether_gate_identity_t *identity,
                                     const tether_http_request_t *request,
                                     tether_http_response_t *response);

/* Where the request a DPoP proof must name comes from. */
typedef enum tether_gate_target {
    TETHER_GATE_TARGET_SELF,  /* this request: method, public_url + path */
    TETHER_GATE_TARGET_NGINX, /* X-Original-Method, public_url + X-Original-URI */
    TETHER_GATE_TARGET_ENVOY, /* this method, public_url + the path after the route's */
    TETHER_GATE_TARGET_LOCAL, /* no token: answered to a loopback client only */
} tether_gate_target_t;

typedef struct tether_gate_route {
    const char *path;  /* exact, or a prefix ending in '/' */
    bool prefix;
    tether_gate_target_t target;
    tether_gate_stage_fn stage;
} tether_gate_route_t;

typedef struct tether_gate_router {
    tether_gate_access_t *access;         /* borrowed */
    const tether_gate_config_t *config;   /* borrowed */
    struct tether_gate_forward *forward;  /* borrowed: the proxy's stage */
    tether_gate_monitor_t *monitor;       /* borrowed: usage lines, metrics */
} tether_gate_router_t;

/* tether_http_handler_fn over a tether_gate_router_t. */
void tether_gate_router_handle(void *arg, const tether_http_request_t *request,
                               tether_http_response_t *response);

/* Fills response with refusal (status, WWW-Authenticate, DPoP-Nonce when
 * asked, JSON body with the OAuth and tether error codes). */
void tether_gate_respond_refusal(tether_gate_access_t *access, const tether_gate_refusal_t *refusal,
                                 int64_t now, tether_http_response_t *response);

/* The route for path, or NULL. */
const tether_gate_route_t *tether_gate_route_find(const char *path);

#endif
