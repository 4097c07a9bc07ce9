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
#include "tether/crypto.h"
#include "tether/http_handler.h"
#include "store.h"

#define TETHER_ENROLL_KEY_SIZE 32
#define TETHER_ENROLL_PENDING_SECONDS 300 /* from POST /v1/enroll to its activation */

typedef struct tether_enroll_api {
    tether_store_t *store;    /* borrowed: must outlive every request */
    const tether_cert_set_t *ek_cas; /* borrowed; NULL: no manufacturer is trusted */
    uint8_t key[TETHER_ENROLL_KEY_SIZE]; /* a copy of the enrolment key */
    int64_t (*clock)(void);   /* Unix seconds; NULL: the system clock (tests set one) */
} tether_enroll_api_t;

/* Every trust anchor in ek_cas (roots and intermediates alike) may certify
 * an EK. key is copied; tether_enroll_api_free wipes the copy. */
void tether_enroll_api_init(tether_enroll_api_t *api, tether_store_t *store,
                            const tether_cert_set_t *ek_cas,
                            const uint8_t key[TETHER_ENROLL_KEY_SIZE]);

/* Wipes the struct (the key with it); accepts NULL. */
void tether_enroll_api_free(tether_enroll_api_t *api);

/* POST /v1/enroll and POST /v1/enroll/activate, routed by router.c (which
 * has checked the method, the media type and the body's size); the API is
 * call->router->enroll. */
void tether_enroll_api_enroll(tether_route_call_t *call);
void tether_enroll_api_activate(tether_route_call_t *call);

#endif
