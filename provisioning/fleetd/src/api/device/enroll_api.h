/*
 * Device enrolment (DESIGN.md, "Enrolment"): the two endpoints a device
 * calls once, over TLS and without an admin token. Its TPM proves it holds
 * the EK that a trusted manufacturer certified and that the AK it sent lives
 * beside that EK; the fleet's allow list or a bootstrap token says whether
 * that EK may join.
 *
 *   POST /v1/enroll           the request of lib's tether/enroll.h
 *                             -> a credential for the EK, bound to the AK's name
 *   POST /v1/enroll/activate  {"enrollment_id", "proof"} -> the device is active
 *                             (again, unchanged, for a repeated activation)
 *
 * The activation secret is never stored: it is HMAC-SHA256(enrolment key,
 * enrollment_id), recomputed at activation, so a database leak reveals no
 * secret of an enrolment in flight. Bodies, answers and errors:
 * provisioning/fleetd/README.md.
 */
#ifndef TETHER_FLEET_ENROLL_API_H
#define TETHER_FLEET_ENROLL_API_H

#include <stdbool.h>
#include <stdint.h>

#include "route.h"
#include "source_limit.h"
#include "tether/crypto.h"
#include "tether/http_handler.h"
#include "store.h"

#define TETHER_ENROLL_KEY_SIZE 32
#define TETHER_ENROLL_PENDING_SECONDS 300 /* from POST /v1/enroll to its activation */
/* An enrolment in flight younger than this is never displaced by a newer
 * one of its EK (store_enrollment.h, tether_store_enrollment_add): far more than a
 * genuine device needs to activate, far less than the enrolment's life. */
#define TETHER_ENROLL_PROTECTED_SECONDS 60
/* Enrolments in flight of one EK from one source (IPv4 address, IPv6 /64):
 * a device that restarted has two; a forger at one address can never take
 * all of an EK's places. */
#define TETHER_ENROLL_MAX_PENDING_PER_SOURCE 2

typedef struct tether_enroll_api {
    tether_store_t *store;    /* borrowed: must outlive every request */
    const tether_cert_set_t *ek_cas; /* borrowed; NULL: no manufacturer is trusted */
    uint8_t key[TETHER_ENROLL_KEY_SIZE]; /* a copy of the enrolment key */
    int64_t (*clock)(void);   /* Unix seconds; NULL: the system clock (tests set one) */
    unsigned max_pending_per_ek;   /* enrolments in flight for one EK */
    tether_source_limit_t sources; /* POST /v1/enroll attempts per source */
} tether_enroll_api_t;

/* Every trust anchor in ek_cas (roots and intermediates alike) may certify
 * an EK. key is copied; tether_enroll_api_free wipes the copy. Until
 * tether_enroll_api_set_limits succeeds, every POST /v1/enroll is refused
 * (429): the limits have no unbounded default. */
void tether_enroll_api_init(tether_enroll_api_t *api, tether_store_t *store,
                            const tether_cert_set_t *ek_cas,
                            const uint8_t key[TETHER_ENROLL_KEY_SIZE]);

/* The bounds on what callers who have proven nothing yet may cause
 * (fleetd.conf: enroll_max_pending_per_ek, enroll_rate_per_minute,
 * enroll_burst; each at least 1). Once, after init. */
TETHER_MUST_CHECK tether_status_t tether_enroll_api_set_limits(tether_enroll_api_t *api,
                                                               unsigned max_pending_per_ek,
                                                               unsigned rate_per_minute,
                                                               unsigned burst);

/* Wipes the struct (the key with it); accepts NULL. */
void tether_enroll_api_free(tether_enroll_api_t *api);

/* POST /v1/enroll and POST /v1/enroll/activate, routed by router.c (which
 * has checked the method, the media type and the body's size); the API is
 * call->router->enroll. */
void tether_enroll_api_enroll(tether_route_call_t *call);
void tether_enroll_api_activate(tether_route_call_t *call);

#endif
