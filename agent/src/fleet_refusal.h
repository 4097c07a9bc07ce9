/*
 * A refusal from tether-fleetd: a non-2xx answer whose body is, when the
 * fleet wrote it, {"error": code, "error_description": text} with an
 * optional "tether_error" refining the code (DESIGN.md, "fleetd"). Read the
 * same way by enrolment and by the token exchange.
 */
#ifndef TETHER_AGENT_FLEET_REFUSAL_H
#define TETHER_AGENT_FLEET_REFUSAL_H

#include "tether/http_response.h"

typedef struct tether_fleet_refusal {
    int status;            /* the HTTP status */
    char error[64];        /* "error", or "" (longer codes are cut) */
    char tether_error[64]; /* "tether_error", or "" */
    char description[256]; /* "error_description", or "" (cut if longer) */
} tether_fleet_refusal_t;

/*
 * Reads resp's status and body into refusal (zeroed first). A body that is
 * not a JSON object, or members that are not strings, leave the fields
 * empty: a refusal is reported whatever its body holds.
 */
void tether_fleet_refusal_parse(const tether_https_response_t *resp,
                                tether_fleet_refusal_t *refusal);

/* The most specific code: tether_error, else error, else fallback. */
const char *tether_fleet_refusal_code(const tether_fleet_refusal_t *refusal,
                                      const char *fallback);

/* The description, or "no description". */
const char *tether_fleet_refusal_description(const tether_fleet_refusal_t *refusal);

#endif
