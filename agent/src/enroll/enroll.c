/*
 * tether-agent enroll: the device's one-time enrolment with its fleet
 * (DESIGN.md, "Enrolment"). The TPM side is in enroll_device.c; this file
 * holds the options, the two HTTPS exchanges and the state directory.
 */
#include "enroll.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <tss2/tss2_mu.h>

#include "enroll_device.h"
#include "fleet_refusal.h"
#include "options.h"
#include "state.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/https_client.h"
#include "tether/json_strict.h"
#include "tether/secret_token.h"
#include "tether/tpm2_public.h"

/* A step's outcome besides 0 (done) and -1 (failed, reason printed): the
 * fleet has no enrolment to finish, start over with POST /v1/enroll. */
#define ENROLL_START_OVER 1

typedef struct enroll_options {
    const char *tcti;
    const char *state_dir;
    const char *fleet;
    const char *ca;
    const char *bootstrap_token_file;
    const char *name;
    tether_ek_type_t ek_type;
    TPM2_HANDLE counter_index;
} enroll_options_t;

static void enroll_usage(FILE *out)
{
    fputs("Usage: tether-agent enroll --state-dir DIR --fleet URL --ca FILE [OPTIONS]\n"
          "\n"
          "Enrols this device with its fleet, once: creates the attestation key, the\n"
          "device key and the exchange counter in the TPM, proves the TPM's identity\n"
          "with its EK certificate and TPM2_ActivateCredential, and writes the state\n"
          "directory (public data and TPM-wrapped key blobs only). If a run stopped\n"
          "after the fleet's challenge (a crash, a power loss), running it again\n"
          "resumes that enrolment from DIR/enrolment.json, or starts over when the\n"
          "fleet no longer holds it.\n"
          "\n"
          "  --tcti TCTI                 tpm2-tss TCTI, e.g. device:/dev/tpmrm0 or\n"
          "                              swtpm:host=127.0.0.1,port=2321 (default: the TSS default)\n"
          "  --state-dir DIR             where the agent keeps its state (created 0700)\n"
          "  --fleet URL                 the fleet, e.g. https://fleet.example:8443\n"
          "  --ca FILE                   the fleet's CA certificate (PEM); only a server\n"
          "                              certified by it is trusted\n"
          "  --bootstrap-token-file FILE\n"
          "                              a one-time tthr_boot_ token, for a device not on\n"
          "                              the fleet's allow list; wiped and removed after a\n"
          "                              successful enrolment\n"
          "  --name NAME                 a name for the device (default: the allow list's)\n"
          "  --ek TYPE                   EK to use: any (default), p256, p384 or rsa\n"
          "  --counter-index HEX         NV index of the exchange counter (default 0x01000100)\n"
          "  -h, --help                  show this help\n"
          "\n"
          "Exit status: 0 enrolled, 1 refused or failed, 2 bad usage.\n",
          out);
}

static int parse_options(int argc, char **argv, enroll_options_t *o)
{
    static const struct option long_options[] = {
        TETHER_AGENT_TCTI_LONG_OPTION,
        {"state-dir", required_argument, NULL, 's'},
        {"fleet", required_argument, NULL, 'f'},
        {"ca", required_argument, NULL, 'c'},
        {"bootstrap-token-file", required_argument, NULL, 'b'},
        {"name", required_argument, NULL, 'n'},
        {"ek", required_argument, NULL, 'e'},
        {"counter-index", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long index;
    char *end;
    int c;

    memset(o, 0, sizeof(*o));
    o->ek_type = TETHER_EK_ANY;
    o->counter_index = TETHER_DEFAULT_COUNTER_INDEX;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case TETHER_AGENT_TCTI_OPTION: o->tcti = optarg; break;
        case 's': o->state_dir = optarg; break;
        case 'f': o->fleet = optarg; break;
        case 'c': o->ca = optarg; break;
        case 'b': o->bootstrap_token_file = optarg; break;
        case 'n': o->name = optarg; break;
        case 'e':
            if (strcmp(optarg, "any") != 0 && tether_ek_type_parse(optarg, &o->ek_type) != 0) {
                fprintf(stderr, "tether-agent enroll: --ek must be any, p256, p384 or rsa\n");
                return 2;
            }
            break;
        case 'i':
            index = strtoul(optarg, &end, 16);
            if (end == optarg || *end != '\0' || !tether_nv_index_is_owner(index)) {
                fprintf(stderr,
                        "tether-agent enroll: --counter-index must be an owner NV index "
                        "(0x%08x..0x%08x)\n",
                        TETHER_NV_OWNER_FIRST, TETHER_NV_OWNER_LAST);
                return 2;
            }
            o->counter_index = (TPM2_HANDLE)index;
            break;
        case 'h': enroll_usage(stdout); return 0;
        default: enroll_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tether-agent enroll: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o->state_dir == NULL || o->fleet == NULL || o->ca == NULL) {
        fprintf(stderr, "tether-agent enroll: --state-dir, --fleet and --ca are required\n");
        return 2;
    }
    if (o->name != NULL && strlen(o->name) > TETHER_ENROLL_MAX_NAME) {
        fprintf(stderr, "tether-agent enroll: --name is longer than %d bytes\n",
                TETHER_ENROLL_MAX_NAME);
        return 2;
    }
    return -1;
}

/* Reads the bootstrap token: one tthr_boot_ token, a trailing newline allowed. */
static int read_bootstrap_token(const char *path, char *out, size_t out_size)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = -1;

    if (tether_file_read(path, 1024, &data, &len) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: cannot read the bootstrap token file %s\n", path);
        return -1;
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        len--;
    if (len >= out_size ||
        tether_secret_token_check_format((const char *)data, len, TETHER_SECRET_BOOTSTRAP) !=
            TETHER_OK) {
        fprintf(stderr,
                "tether-agent enroll: %s does not hold a valid bootstrap token (tthr_boot_..., "
                "checksum included); ask the fleet operator for a new one\n",
                path);
        goto out;
    }
    memcpy(out, data, len);
    out[len] = '\0';
    rc = 0;
out:
    tether_wipe(data, len);
    free(data);
    return rc;
}

/* Prints the fleet's refusal: its error code and description. */
static void print_refusal(const char *step, const tether_https_response_t *resp)
{
    tether_fleet_refusal_t refusal;

    tether_fleet_refusal_parse(resp, &refusal);
    fprintf(stderr, "tether-agent enroll: the fleet refused the %s (HTTP %d %s): %s\n", step,
            refusal.status, refusal.error[0] != '\0' ? refusal.error : "error",
            tether_fleet_refusal_description(&refusal));
}

tether_status_t tether_agent_enroll_read_challenge(const uint8_t *body_text, size_t body_len,
                                                  tether_agent_pending_t *pending)
{
    uint8_t buf[1024];
    size_t len = 0, offset = 0;
    cJSON *body = NULL;
    const cJSON *id;
    tether_status_t rc = TETHER_ERR_PARSE;

    if (tether_json_parse_object((const char *)body_text, body_len, &body) != TETHER_OK)
        return TETHER_ERR_PARSE;
    id = cJSON_GetObjectItemCaseSensitive(body, "enrollment_id");
    if (!cJSON_IsString(id) || strlen(id->valuestring) == 0 ||
        strlen(id->valuestring) >= sizeof(pending->enrollment_id))
        goto out;
    strcpy(pending->enrollment_id, id->valuestring);
    if (tether_base64url_get_member(body, "credential_blob", buf, sizeof(buf), &len, NULL, 0) !=
            TETHER_OK ||
        Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(buf, len, &offset, &pending->credential_blob) !=
            TSS2_RC_SUCCESS ||
        offset != len)
        goto out;
    offset = 0;
    if (tether_base64url_get_member(body, "encrypted_secret", buf, sizeof(buf), &len, NULL, 0) !=
            TETHER_OK ||
        Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(buf, len, &offset, &pending->encrypted_secret) !=
            TSS2_RC_SUCCESS ||
        offset != len)
        goto out;
    rc = TETHER_OK;
out:
    cJSON_Delete(body);
    return rc;
}

static tether_status_t post_json(tether_https_client_t *client, const char *path,
                                 const char *json, tether_https_response_t *resp)
{
    tether_status_t rc = tether_https_request(client, "POST", path, "application/json",
                                              (const uint8_t *)json, strlen(json), NULL, resp);
    if (rc != TETHER_OK)
        fprintf(stderr, "tether-agent enroll: cannot reach the fleet: %s\n", client->error);
    return rc;
}

/* The fleet holds no enrolment for this activation any more (unknown,
 * expired, displaced, or dropped after a proof that did not match): the
 * only way on is to start over. */
static bool fleet_has_no_session(const tether_https_response_t *resp)
{
    tether_fleet_refusal_t refusal;

    tether_fleet_refusal_parse(resp, &refusal);
    return strcmp(refusal.error, TETHER_ENROLL_ERROR_INVALID_ENROLLMENT) == 0 ||
           strcmp(refusal.error, TETHER_ENROLL_ERROR_ACTIVATION_FAILED) == 0;
}

/* POST /v1/enroll/activate with the proof; fills the device id. 0, -1, or
 * ENROLL_START_OVER. */
static int activate(tether_https_client_t *client, const char *enrollment_id,
                    const uint8_t proof[32], char *device_id, size_t device_id_size)
{
    char proof_b64[TETHER_BASE64URL_ENCODED_LEN(32) + 1];
    tether_https_response_t resp;
    cJSON *req = NULL, *body = NULL;
    const cJSON *id;
    char *json = NULL;
    int rc = -1;

    tether_https_response_init(&resp);
    if (tether_base64url_encode(proof, 32, proof_b64, sizeof(proof_b64), NULL) != TETHER_OK ||
        (req = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(req, "enrollment_id", enrollment_id) == NULL ||
        cJSON_AddStringToObject(req, "proof", proof_b64) == NULL ||
        (json = cJSON_PrintUnformatted(req)) == NULL) {
        fprintf(stderr, "tether-agent enroll: out of memory\n");
        goto out;
    }
    if (post_json(client, "/v1/enroll/activate", json, &resp) != TETHER_OK)
        goto out;
    if (resp.status != 200) {
        print_refusal("activation", &resp);
        if (fleet_has_no_session(&resp))
            rc = ENROLL_START_OVER;
        goto out;
    }
    if (tether_json_parse_object((const char *)resp.body, resp.body_len, &body) != TETHER_OK ||
        !cJSON_IsString(id = cJSON_GetObjectItemCaseSensitive(body, "device_id")) ||
        strlen(id->valuestring) == 0 || strlen(id->valuestring) >= device_id_size) {
        fprintf(stderr, "tether-agent enroll: the fleet's activation answer has no device id\n");
        goto out;
    }
    strcpy(device_id, id->valuestring);
    rc = 0;
out:
    cJSON_Delete(body);
    cJSON_Delete(req);
    if (json != NULL) {
        tether_wipe(json, strlen(json)); /* the proof */
        free(json);
    }
    tether_wipe(proof_b64, sizeof(proof_b64));
    tether_https_response_free(&resp);
    return rc;
}

static int copy_ca(const char *ca, const char *state_dir)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = -1;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, TETHER_STATE_CA_FILE) >=
            sizeof(path) ||
        tether_file_read(ca, 1024 * 1024, &data, &len) != TETHER_OK ||
        tether_file_write_atomic(path, data, len, 0644) != TETHER_OK)
        fprintf(stderr, "tether-agent enroll: cannot copy the fleet CA into %s\n", state_dir);
    else
        rc = 0;
    free(data);
    return rc;
}

/* Keys and counter in the TPM, POST /v1/enroll, the challenge into pending
 * (all but fleet_url). 0 or -1. */
static int enroll_start(tether_tpm_t *tpm, tether_https_client_t *client,
                        const tether_agent_enroll_params_t *params,
                        tether_agent_pending_t *pending)
{
    tether_enroll_request_t *req = calloc(1, sizeof(*req));
    tether_https_response_t resp;
    char *json = NULL;
    tether_status_t rc;
    int code = -1;

    tether_https_response_init(&resp);
    memset(pending, 0, sizeof(*pending));
    if (req == NULL) {
        fprintf(stderr, "tether-agent enroll: out of memory\n");
        return -1;
    }
    if ((rc = tether_agent_enroll_prepare(tpm, params->ek_type, params->counter_index, req,
                                          &pending->state)) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: %s: %s\n", tether_strerror(rc), tpm->last_error);
        goto out;
    }
    if (params->name != NULL)
        strcpy(req->name, params->name);
    if (params->bootstrap_token != NULL)
        strcpy(req->bootstrap_token, params->bootstrap_token);
    if (tether_enroll_request_to_json(req, &json) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: cannot encode the enrolment request\n");
        goto out;
    }
    if (post_json(client, "/v1/enroll", json, &resp) != TETHER_OK)
        goto out;
    if (resp.status != 200) {
        print_refusal("enrolment", &resp);
        goto out;
    }
    if (tether_agent_enroll_read_challenge(resp.body, resp.body_len, pending) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: the fleet's answer is not a credential challenge\n");
        goto out;
    }
    code = 0;
out:
    if (json != NULL) {
        tether_wipe(json, strlen(json));
        free(json);
    }
    tether_enroll_request_wipe(req);
    free(req);
    tether_https_response_free(&resp);
    return code;
}

/* TPM2_ActivateCredential on pending's challenge and POST /v1/enroll/activate
 * with the proof; state gets pending's state and the device id. 0, -1 or
 * ENROLL_START_OVER. */
static int enroll_finish(tether_tpm_t *tpm, tether_https_client_t *client,
                         const tether_agent_pending_t *pending, tether_agent_state_t *state)
{
    uint8_t proof[32];
    tether_status_t rc;
    int code;

    *state = pending->state;
    if ((rc = tether_agent_enroll_activate(tpm, state, &pending->credential_blob,
                                           &pending->encrypted_secret, pending->enrollment_id,
                                           proof)) != TETHER_OK) {
        fprintf(stderr,
                "tether-agent enroll: TPM2_ActivateCredential failed (%s: %s): the fleet's "
                "challenge was not made for this TPM's EK and AK\n",
                tether_strerror(rc), tpm->last_error);
        code = -1;
    } else {
        code = activate(client, pending->enrollment_id, proof, state->device_id,
                        sizeof(state->device_id));
    }
    tether_wipe(proof, sizeof(proof));
    return code;
}

int tether_agent_enroll_with(tether_tpm_t *tpm, tether_https_client_t *client,
                             tether_ek_type_t ek_type, TPM2_HANDLE counter_index,
                             const char *name, const char *bootstrap_token,
                             tether_agent_state_t *state)
{
    tether_agent_enroll_params_t params = {NULL, ek_type, counter_index, name, bootstrap_token};
    tether_agent_pending_t *pending = calloc(1, sizeof(*pending));
    int code = -1;

    if (pending == NULL)
        return -1;
    if (enroll_start(tpm, client, &params, pending) == 0 &&
        enroll_finish(tpm, client, pending, state) == 0)
        code = 0;
    tether_wipe(pending, sizeof(*pending));
    free(pending);
    return code;
}

/* Finishes the enrolment pending in state_dir, if there is one for this
 * fleet. 0 done, -1 failed (the file is kept, to try again),
 * ENROLL_START_OVER when there is none or the fleet has forgotten it (the
 * file is removed). */
static int resume(tether_tpm_t *tpm, tether_https_client_t *client,
                  const tether_agent_enroll_params_t *params, const char *state_dir,
                  tether_agent_pending_t *pending, tether_agent_state_t *state)
{
    char why[256];
    tether_status_t rc = tether_agent_pending_load(state_dir, pending, why, sizeof(why));
    int code;

    if (rc == TETHER_ERR_NOT_FOUND)
        return ENROLL_START_OVER;
    if (rc != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: %s/%s is damaged (%s); move it away to start over\n",
                state_dir, TETHER_STATE_PENDING_FILE,
                rc == TETHER_ERR_PARSE ? why : tether_strerror(rc));
        return -1;
    }
    if (strcmp(pending->state.fleet_url, params->fleet) != 0) {
        fprintf(stderr,
                "tether-agent enroll: %s holds an enrolment in progress with %s; finish it with "
                "--fleet %s, or move %s away to enrol with another fleet\n",
                state_dir, pending->state.fleet_url, pending->state.fleet_url,
                TETHER_STATE_PENDING_FILE);
        return -1;
    }
    fprintf(stderr, "tether-agent enroll: resuming the enrolment started earlier (%.12s...)\n",
            pending->enrollment_id);
    code = enroll_finish(tpm, client, pending, state);
    if (code != ENROLL_START_OVER)
        return code;
    fprintf(stderr, "tether-agent enroll: the fleet has no such enrolment any more; starting "
                    "over\n");
    if ((rc = tether_agent_pending_remove(state_dir)) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: cannot remove %s/%s: %s\n", state_dir,
                TETHER_STATE_PENDING_FILE, tether_strerror(rc));
        return -1;
    }
    return ENROLL_START_OVER;
}

int tether_agent_enroll_to_active(tether_tpm_t *tpm, tether_https_client_t *client,
                                  const tether_agent_enroll_params_t *params,
                                  const char *state_dir, tether_agent_state_t *state)
{
    tether_agent_pending_t *pending = calloc(1, sizeof(*pending));
    tether_status_t rc;
    int code = -1;

    memset(state, 0, sizeof(*state));
    if (pending == NULL) {
        fprintf(stderr, "tether-agent enroll: out of memory\n");
        return -1;
    }
    if ((code = resume(tpm, client, params, state_dir, pending, state)) != ENROLL_START_OVER)
        goto out;
    code = -1;
    if (enroll_start(tpm, client, params, pending) != 0)
        goto out;
    strcpy(pending->state.fleet_url, params->fleet);
    /* Saved before activating: once the fleet has activated the device,
     * this file is what lets a new run finish if this one dies. */
    if ((rc = tether_agent_pending_save(state_dir, pending)) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: cannot write %s/%s: %s\n", state_dir,
                TETHER_STATE_PENDING_FILE, tether_strerror(rc));
        goto out;
    }
    code = enroll_finish(tpm, client, pending, state) == 0 ? 0 : -1;
out:
    if (code == 0)
        strcpy(state->fleet_url, params->fleet);
    tether_wipe(pending, sizeof(*pending));
    free(pending);
    return code;
}

int tether_agent_enroll_main(int argc, char **argv)
{
    enroll_options_t o;
    tether_tpm_t tpm;
    tether_https_client_t client;
    tether_agent_state_t *state = NULL;
    tether_agent_enroll_params_t params;
    char bootstrap_token[TETHER_ENROLL_MAX_BOOTSTRAP + 1] = "";
    char why[256];
    tether_status_t rc;
    int code;

    if ((code = parse_options(argc, argv, &o)) >= 0)
        return code;
    memset(&params, 0, sizeof(params));
    tether_tpm_init(&tpm);
    tether_https_client_init(&client);
    code = 1;
    state = calloc(1, sizeof(*state));
    if (state == NULL)
        goto out;

    rc = tether_agent_state_load(o.state_dir, state, why, sizeof(why));
    if (rc == TETHER_OK) {
        fprintf(stderr,
                "tether-agent enroll: %s already holds an enrolment (device %s with %s); to "
                "enrol again, move that folder away first\n",
                o.state_dir, state->device_id, state->fleet_url);
        goto out;
    }
    if (rc != TETHER_ERR_NOT_FOUND) {
        fprintf(stderr, "tether-agent enroll: %s/%s is damaged (%s); move it away first\n",
                o.state_dir, TETHER_STATE_FILE, rc == TETHER_ERR_PARSE ? why : tether_strerror(rc));
        goto out;
    }
    if (strlen(o.fleet) > TETHER_URL_MAX ||
        tether_https_client_setup(&client, o.fleet, o.ca) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: %s\n",
                client.error[0] ? client.error : "the fleet URL is too long");
        goto out;
    }
    if (tether_dir_ensure_private(o.state_dir) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: cannot use %s as the state folder (it must be a "
                        "folder that only its owner can write)\n", o.state_dir);
        goto out;
    }
    if (o.bootstrap_token_file != NULL &&
        read_bootstrap_token(o.bootstrap_token_file, bootstrap_token, sizeof(bootstrap_token)) != 0)
        goto out;
    if (tether_agent_tpm_open(&tpm, o.tcti, why, sizeof(why)) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: %s\n", why);
        goto out;
    }
    params.fleet = o.fleet;
    params.ek_type = o.ek_type;
    params.counter_index = o.counter_index;
    params.name = o.name;
    params.bootstrap_token = o.bootstrap_token_file != NULL ? bootstrap_token : NULL;
    if (tether_agent_enroll_to_active(&tpm, &client, &params, o.state_dir, state) != 0)
        goto out;
    if (copy_ca(o.ca, o.state_dir) != 0)
        goto out;
    if ((rc = tether_agent_state_save(o.state_dir, state)) != TETHER_OK) {
        fprintf(stderr, "tether-agent enroll: cannot write %s/%s: %s; run this command again to "
                        "finish\n", o.state_dir, TETHER_STATE_FILE, tether_strerror(rc));
        goto out;
    }
    if (tether_agent_pending_remove(o.state_dir) != TETHER_OK)
        fprintf(stderr, "tether-agent enroll: warning: could not remove %s/%s; remove it by "
                        "hand\n", o.state_dir, TETHER_STATE_PENDING_FILE);
    if (o.bootstrap_token_file != NULL && tether_file_wipe_remove(o.bootstrap_token_file) != TETHER_OK)
        fprintf(stderr, "tether-agent enroll: warning: could not remove the bootstrap token file "
                        "%s; remove it by hand\n", o.bootstrap_token_file);
    printf("enrolled: device %s with %s (EK %s, exchange counter at NV 0x%08x)\n",
           state->device_id, state->fleet_url, tether_ek_type_name(state->ek_type),
           state->counter_index);
    code = 0;
out:
    tether_wipe(bootstrap_token, sizeof(bootstrap_token));
    if (state != NULL) {
        tether_wipe(state, sizeof(*state));
        free(state);
    }
    tether_https_client_free(&client);
    tether_tpm_close(&tpm);
    return code;
}
