/*
 * A forged enrolment request, for the tests of what a forger can and cannot
 * do to enrolment (DESIGN.md, "Enrolment"). A forger holds the victim's
 * public EK and its certificate (both public) but not the EK's private key.
 * It can make an AK in software that claims to be the EK's child: the
 * device key's certification names the AK's qualified name under the
 * victim's EK (qualifiedSigner) and is signed by the software key. Such a
 * request passes every check the fleet can make before activation; only
 * TPM2_ActivateCredential, which needs the EK, tells it apart.
 */
#ifndef TETHER_TEST_ENROLL_FORGERY_H
#define TETHER_TEST_ENROLL_FORGERY_H

#include "tether/enroll.h"
#include "tether/error.h"

/* Turns req, a genuine request of another TPM with an ECC P-256 AK, into a
 * forgery against victim's EK: the EK public area and certificate are
 * victim's, the AK is a new software key each call (the same template),
 * and the device key's certification is re-signed to match. The device
 * key and counter stay req's. */
TETHER_MUST_CHECK tether_status_t tether_enroll_forge(tether_enroll_request_t *req,
                                                      const tether_enroll_request_t *victim);

#endif
