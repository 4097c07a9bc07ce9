/*
 * The authorization-only answer for proxies people already run (nginx
 * auth_request, Envoy ext_authz HTTP): 200 with the verified device and
 * policy in X-Tether-Device and X-Tether-Policy. What needs the request
 * body (the model, token counts, spend) cannot be checked here.
 */
#ifndef TETHER_GATE_AUTHZ_H
#define TETHER_GATE_AUTHZ_H

#include "access.h"
#include "tether/http_handler.h"

struct tether_gate_router;

/* tether_gate_stage_fn: the request passed authorization. */
void tether_gate_authz_allow(struct tether_gate_router *router,
                             const tether_gate_identity_t *identity,
                             const tether_http_request_t *request,
                             tether_http_response_t *response);

#endif
