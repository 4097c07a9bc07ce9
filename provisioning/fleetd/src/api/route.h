/*
 * fleetd's route table: every endpoint declared once with its method, the
 * media type and size of its body, its query parameters and who may call
 * it, and checked in one place (router.c) before its handler runs. A
 * handler sees only requests that passed those checks.
 */
#ifndef TETHER_FLEET_ROUTE_H
#define TETHER_FLEET_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tether/http_handler.h"

#define TETHER_ROUTE_PARAM_SIZE 64 /* the '*' path segment, with its NUL */

struct tether_admin_api;
struct tether_enroll_api;
struct tether_exchange_api;
struct tether_discovery_api;
struct tether_rp_api;
struct tether_fleet_metrics;

/* The APIs one router serves, all borrowed: each must outlive every
 * request. An API left NULL is not served (its paths answer 404), so a
 * unit test can route to the one API it sets up. */
typedef struct tether_router {
    tether_store_t *store; /* authenticates admin tokens */
    struct tether_admin_api *admin;
    struct tether_enroll_api *enroll;
    struct tether_exchange_api *exchange;
    struct tether_discovery_api *discovery;
    struct tether_rp_api *relying_party;
    struct tether_fleet_metrics *metrics; /* GET /metrics, and what handlers count */
} tether_router_t;

/* A request that passed its route's checks, as its handler sees it. Lives
 * until the handler returns and is wiped then. */
typedef struct tether_route_call {
    const tether_router_t *router;
    const tether_http_request_t *request;
    tether_http_response_t *response;
    tether_store_admin_token_t caller;    /* admin and client routes: the authenticated token */
    char param[TETHER_ROUTE_PARAM_SIZE]; /* the path segment matched by '*'; "" */
    int64_t now;                          /* Unix seconds when routing began */
} tether_route_call_t;

typedef void (*tether_route_handler_fn)(tether_route_call_t *call);

/* Who may call an endpoint. */
typedef enum tether_route_access {
    TETHER_ROUTE_PUBLIC, /* anyone: health and discovery */
    TETHER_ROUTE_DEVICE, /* a device, which proves itself in the body (enrolment, exchange) */
    TETHER_ROUTE_ADMIN,  /* an admin token holding one of the route's roles (relying
                            parties hold the relying-party role) */
    TETHER_ROUTE_CLIENT, /* the same, presented as a bearer token or as OAuth client
                            credentials (RFC 6749 section 2.3.1; client_auth.h), for
                            stock relying parties: introspection */
} tether_route_access_t;

/* Answers request through the route table (the HTTP server's handler;
 * arg is a tether_router_t). */
void tether_router_handle(void *arg, const tether_http_request_t *request,
                          tether_http_response_t *response);

#endif
