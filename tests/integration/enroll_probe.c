/*
 * enroll_probe: builds enrolment requests with a real TPM the way
 * tether-agent does, then bends them the way an attacker or a broken device
 * would, so that enroll.sh can check fleetd's refusals end to end.
 *
 *   enroll_probe request MODE [EK]   prints the request JSON on stdout
 *
 * MODE: ok | ak-unrestricted (the device key presented as the AK) |
 *       ak-exportable (the AK's fixedTPM cleared) |
 *       ek-cert-mismatch (the RSA EK certificate sent with the ECC EK) |
 *       certify-other-key (the certification of another key)
 * EK: any (default), p384 or rsa. The TPM is TETHER_TEST_TCTI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll_device.h"
#include "tether/enroll.h"
#include "tether/tpm.h"

#define COUNTER 0x01000100u

static int die(tether_tpm_t *tpm, const char *what)
{
    fprintf(stderr, "enroll_probe: %s: %s\n", what, tpm->last_error);
    return 1;
}

int main(int argc, char **argv)
{
    const char *tcti = getenv("TETHER_TEST_TCTI");
    tether_ek_type_t ek_type = TETHER_EK_ANY;
    tether_tpm_t tpm;
    tether_enroll_request_t req;
    tether_agent_state_t state;
    char *json = NULL;
    const char *mode;
    int rc = 1;

    if (argc < 3 || strcmp(argv[1], "request") != 0 || tcti == NULL) {
        fprintf(stderr, "usage: enroll_probe request MODE [any|p384|rsa] (TETHER_TEST_TCTI set)\n");
        return 2;
    }
    mode = argv[2];
    if (argc > 3 && strcmp(argv[3], "any") != 0 && tether_ek_type_parse(argv[3], &ek_type) != 0)
        return 2;
    tether_tpm_init(&tpm);
    if (tether_tpm_open_esapi(&tpm, tcti) != TETHER_OK)
        return die(&tpm, "open TPM");
    if (tether_agent_enroll_prepare(&tpm, ek_type, COUNTER, &req, &state) != TETHER_OK) {
        rc = die(&tpm, "prepare");
        goto out;
    }
    if (strcmp(mode, "ak-unrestricted") == 0) {
        req.ak_public = req.device_key_public;
    } else if (strcmp(mode, "ak-exportable") == 0) {
        req.ak_public.publicArea.objectAttributes &= ~(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT);
    } else if (strcmp(mode, "ek-cert-mismatch") == 0) {
        tether_ek_t rsa;
        if (tether_ek_open(&tpm, TETHER_EK_RSA2048, &rsa) != TETHER_OK) {
            rc = die(&tpm, "open the RSA EK");
            goto out;
        }
        memcpy(req.ek_cert, rsa.cert_der, rsa.cert_len);
        req.ek_cert_len = rsa.cert_len;
        tether_ek_free(&tpm, &rsa);
    } else if (strcmp(mode, "certify-other-key") == 0) {
        tether_enroll_request_t other;
        tether_agent_state_t other_state;
        if (tether_agent_enroll_prepare(&tpm, ek_type, COUNTER, &other, &other_state) != TETHER_OK) {
            rc = die(&tpm, "prepare another request");
            goto out;
        }
        req.device_key_certify = other.device_key_certify;
        req.device_key_signature = other.device_key_signature;
    } else if (strcmp(mode, "ok") != 0) {
        fprintf(stderr, "enroll_probe: unknown mode %s\n", mode);
        goto out;
    }
    if (tether_enroll_request_to_json(&req, &json) != TETHER_OK) {
        fprintf(stderr, "enroll_probe: cannot encode\n");
        goto out;
    }
    fputs(json, stdout);
    fputc('\n', stdout);
    free(json);
    rc = 0;
out:
    tether_tpm_close(&tpm);
    return rc;
}
