/*
 * enroll_probe: builds enrolment requests with a real TPM the way
 * tether-agent does, then bends them the way an attacker or a broken device
 * would, so that enroll.sh can check fleetd's refusals end to end.
 *
 *   enroll_probe request MODE [EK]   prints the request JSON on stdout
 *   enroll_probe forge VICTIM        prints a forged request against the EK of
 *                                    VICTIM (a file holding a request): this
 *                                    TPM's device key and counter, a software
 *                                    AK posing as the victim EK's child
 *   enroll_probe die-after-activation STATE-DIR FLEET-URL CA
 *                                    runs tether-agent enroll's steps up to the
 *                                    fleet's answer to the activation
 *                                    (tether_agent_enroll_to_active), then
 *                                    SIGKILLs itself before device.json is
 *                                    written: the crash the pending state
 *                                    file is for
 *
 * MODE: ok | ak-unrestricted (the device key presented as the AK) |
 *       ak-exportable (the AK's fixedTPM cleared) |
 *       ek-cert-mismatch (the RSA EK certificate sent with the ECC EK) |
 *       certify-other-key (the certification of another key)
 * EK: any (default), p384 or rsa. The TPM is TETHER_TEST_TCTI.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"

#include "enroll_device.h"
#include "tether/enroll.h"
#include "tether/enroll_forgery.h"
#include "tether/file.h"
#include "tether/tpm.h"

#define COUNTER 0x01000100u

static int die(tether_tpm_t *tpm, const char *what)
{
    fprintf(stderr, "enroll_probe: %s: %s\n", what, tpm->last_error);
    return 1;
}

/* Prints json (freed here) and a newline. */
static int print_request(const tether_enroll_request_t *req)
{
    char *json = NULL;

    if (tether_enroll_request_to_json(req, &json) != TETHER_OK) {
        fprintf(stderr, "enroll_probe: cannot encode\n");
        return 1;
    }
    fputs(json, stdout);
    fputc('\n', stdout);
    free(json);
    return 0;
}

static int forge(const char *tcti, const char *victim_file)
{
    static tether_enroll_request_t req, victim;
    tether_agent_state_t state;
    tether_tpm_t tpm;
    uint8_t *data = NULL;
    size_t len = 0;
    char why[256];
    int rc = 1;

    if (tether_file_read(victim_file, TETHER_ENROLL_MAX_JSON, &data, &len) != TETHER_OK ||
        tether_enroll_request_from_json((const char *)data, len, &victim, why, sizeof(why)) !=
            TETHER_OK) {
        fprintf(stderr, "enroll_probe: %s is not an enrolment request\n", victim_file);
        free(data);
        return 1;
    }
    free(data);
    tether_tpm_init(&tpm);
    if (tether_tpm_open_esapi(&tpm, tcti) != TETHER_OK)
        return die(&tpm, "open TPM");
    if (tether_agent_enroll_prepare(&tpm, TETHER_EK_ANY, COUNTER, &req, &state) != TETHER_OK)
        rc = die(&tpm, "prepare");
    else if (tether_enroll_forge(&req, &victim) != TETHER_OK)
        fprintf(stderr, "enroll_probe: cannot forge the request\n");
    else
        rc = print_request(&req);
    tether_tpm_close(&tpm);
    return rc;
}

static int die_after_activation(const char *tcti, const char *state_dir, const char *fleet,
                                const char *ca)
{
    static tether_agent_state_t state;
    tether_agent_enroll_params_t params = {fleet, TETHER_EK_ANY, COUNTER, NULL, NULL};
    tether_https_client_t client;
    tether_tpm_t tpm;

    tether_tpm_init(&tpm);
    tether_https_client_init(&client);
    if (tether_tpm_open_esapi(&tpm, tcti) != TETHER_OK)
        return die(&tpm, "open TPM");
    if (tether_https_client_setup(&client, fleet, ca) != TETHER_OK ||
        tether_dir_ensure_private(state_dir) != TETHER_OK) {
        fprintf(stderr, "enroll_probe: cannot set up the client or %s\n", state_dir);
        return 1;
    }
    if (tether_agent_enroll_to_active(&tpm, &client, &params, state_dir, &state) != 0)
        return 1;
    printf("activated: device %s\n", state.device_id);
    fflush(stdout);
    raise(SIGKILL);
    return 1;
}

int main(int argc, char **argv)
{
    const char *tcti = getenv("TETHER_TEST_TCTI");
    tether_ek_type_t ek_type = TETHER_EK_ANY;
    tether_tpm_t tpm;
    tether_enroll_request_t req;
    tether_agent_state_t state;
    const char *mode;
    int rc = 1;

    if (argc < 3 || tcti == NULL ||
        (strcmp(argv[1], "request") != 0 && strcmp(argv[1], "forge") != 0 &&
         !(strcmp(argv[1], "die-after-activation") == 0 && argc == 5))) {
        fprintf(stderr, "usage: enroll_probe request MODE [any|p384|rsa] | forge VICTIM-FILE | "
                        "die-after-activation STATE-DIR FLEET-URL CA (TETHER_TEST_TCTI set)\n");
        return 2;
    }
    if (strcmp(argv[1], "forge") == 0)
        return forge(tcti, argv[2]);
    if (strcmp(argv[1], "die-after-activation") == 0)
        return die_after_activation(tcti, argv[2], argv[3], argv[4]);
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
    rc = print_request(&req);
out:
    tether_tpm_close(&tpm);
    return rc;
}
