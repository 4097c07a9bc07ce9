/* POST /v1/enroll and POST /v1/enroll/activate (enroll_api.h). */
#include "enroll_api.h"
#include "fleet_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/md.h>
#include <tss2/tss2_mu.h>

#include "enroll_request.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/credential.h"
#include "tether/enroll.h"
#include "tether/log.h"
#include "tether/secret_token.h"
#include "tether/tpm2_public.h"
#include "validate.h"

#define WHY_SIZE 256
#define LOG_EK_HEX 16   /* hex digits of ek_sha256 in log lines */
#define LOG_ENR_CHARS 12 /* characters of an enrollment id in log lines ("enr_" + 8) */

typedef struct enroll_call {
    tether_enroll_api_t *api;
    const tether_http_request_t *request;
    tether_http_response_t *response;
    int64_t now;
    const char *outcome; /* a refusal's code, for the metrics; NULL: answered */
} enroll_call_t;

/* What POST /v1/enroll works with, on the heap (about 20 KiB) and wiped:
 * the request may hold a bootstrap token. */
typedef struct enroll_work {
    tether_enroll_request_t req;
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    uint8_t token_hash[TETHER_SECRET_HASH_SIZE];
    TPM2B_NAME ak_name;
    TPM2B_ID_OBJECT credential_blob;
    TPM2B_ENCRYPTED_SECRET encrypted_secret;
    tether_store_enrollment_t session;
    /* The session's blobs, TPM marshalled (store_schema.c, migration 2). */
    uint8_t ek_public[sizeof(TPM2B_PUBLIC)];
    uint8_t ak_public[sizeof(TPM2B_PUBLIC)];
    uint8_t device_key_public[sizeof(TPM2B_PUBLIC)];
    uint8_t certify_attest[sizeof(TPM2B_ATTEST)];
    uint8_t certify_signature[sizeof(TPMT_SIGNATURE)];
    uint8_t counter_public[sizeof(TPM2B_NV_PUBLIC)];
    /* The answer's blobs, marshalled and base64url-encoded. */
    uint8_t raw[sizeof(TPM2B_ID_OBJECT) + sizeof(TPM2B_ENCRYPTED_SECRET)];
    char blob_b64[TETHER_BASE64URL_ENCODED_LEN(sizeof(TPM2B_ID_OBJECT)) + 1];
    char secret_b64[TETHER_BASE64URL_ENCODED_LEN(sizeof(TPM2B_ENCRYPTED_SECRET)) + 1];
    char why[WHY_SIZE];
} enroll_work_t;

void tether_enroll_api_init(tether_enroll_api_t *api, tether_store_t *store,
                            const tether_cert_set_t *ek_cas,
                            const uint8_t key[TETHER_ENROLL_KEY_SIZE])
{
    if (api == NULL)
        return;
    memset(api, 0, sizeof(*api));
    tether_source_limit_init(&api->sources);
    api->store = store;
    api->ek_cas = ek_cas;
    if (key != NULL)
        memcpy(api->key, key, sizeof(api->key));
}

tether_status_t tether_enroll_api_set_limits(tether_enroll_api_t *api, unsigned max_pending_per_ek,
                                             unsigned rate_per_minute, unsigned burst)
{
    tether_status_t rc;

    if (api == NULL || max_pending_per_ek == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_source_limit_setup(&api->sources, rate_per_minute, burst)) == TETHER_OK)
        api->max_pending_per_ek = max_pending_per_ek;
    return rc;
}

void tether_enroll_api_free(tether_enroll_api_t *api)
{
    if (api == NULL)
        return;
    tether_source_limit_free(&api->sources);
    tether_wipe(api, sizeof(*api));
}

/* ---- answers and log lines ---- */

/* Responds with an error and logs the decision (never a secret: reasons
 * come from parsers and checks that do not echo token values). */
static void refuse(enroll_call_t *call, unsigned status, const char *code, const char *description,
                   const char *what, const char *subject)
{
    tether_warn("enroll", "%s refused:%s%s outcome=%s status=%u reason=%s", what,
                subject != NULL ? " " : "", subject != NULL ? subject : "", code, status,
                description);
    call->outcome = code;
    tether_http_respond_error(call->response, status, code, description);
}

/* 429 with Retry-After. The header's text must outlive the handler: the
 * server copies it into the answer on this thread before this thread
 * handles another request, so a per-thread buffer holds it. */
static void refuse_busy(enroll_call_t *call, const char *code, const char *description,
                        const char *subject, int64_t retry_after)
{
    static _Thread_local char retry_text[24];

    refuse(call, 429, code, description, "enrolment", subject);
    snprintf(retry_text, sizeof(retry_text), "%lld", (long long)retry_after);
    call->response->retry_after = retry_text;
}

static void server_error(enroll_call_t *call, const char *what, tether_status_t rc)
{
    tether_error("enroll", "%s failed: %s", what, tether_strerror(rc));
    call->outcome = "server_error";
    tether_http_respond_error(call->response, 500, "server_error",
                              "the fleet could not complete the enrolment; see the server log");
}

/* The HTTP answer to a refusing decision. */
static void refuse_decision(enroll_call_t *call, tether_enroll_decision_t decision,
                            const char *what, const char *subject)
{
    switch (decision) {
    case TETHER_ENROLL_ALREADY_ENROLLED:
        refuse(call, 409, "already_enrolled",
               "this EK is already enrolled, quarantined or revoked; a device enrols once, and "
               "again only after an operator reinstates it",
               what, subject);
        break;
    case TETHER_ENROLL_TOKEN_UNKNOWN:
        refuse(call, 401, "invalid_bootstrap_token",
               "the bootstrap token is not one this fleet issued", what, subject);
        break;
    case TETHER_ENROLL_TOKEN_EXPIRED:
        refuse(call, 403, "bootstrap_token_expired",
               "the bootstrap token has expired; ask an operator for a new one", what, subject);
        break;
    case TETHER_ENROLL_TOKEN_USED:
        refuse(call, 403, "bootstrap_token_used",
               "the bootstrap token has no use left; ask an operator for a new one", what,
               subject);
        break;
    case TETHER_ENROLL_NOT_ALLOWED:
    default:
        refuse(call, 403, "device_not_allowed",
               "this EK is not allowed to enrol: ask an operator to allow its ek_sha256, or "
               "send a bootstrap token",
               what, subject);
        break;
    }
}

static const char *grant_name(tether_enroll_decision_t decision)
{
    return decision == TETHER_ENROLL_GRANT_BOOTSTRAP ? "bootstrap_token" : "allow_list";
}

/* "ek_sha256=<prefix>" for log lines. */
static void ek_subject(char *out, size_t size, const char *ek_sha256)
{
    snprintf(out, size, "ek_sha256=%.*s", LOG_EK_HEX, ek_sha256);
}

/* ---- the activation secret ---- */

/* HMAC-SHA256(enrolment key, enrollment_id): the secret the credential
 * carries, recomputed instead of stored. */
static tether_status_t activation_secret(const tether_enroll_api_t *api, const char *enrollment_id,
                                         uint8_t secret[TETHER_ENROLL_SECRET_SIZE])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

    if (md == NULL || mbedtls_md_hmac(md, api->key, sizeof(api->key),
                                      (const unsigned char *)enrollment_id,
                                      strlen(enrollment_id), secret) != 0) {
        tether_wipe(secret, TETHER_ENROLL_SECRET_SIZE);
        return TETHER_ERR_CRYPTO;
    }
    return TETHER_OK;
}

/* ---- POST /v1/enroll ---- */

/* Steps 1-3: the request parses, its EK certificate chains to a trusted
 * manufacturer, and its TPM structures pass lib's checks. */
static bool request_ok(enroll_call_t *call, enroll_work_t *w)
{
    tether_status_t rc;

    rc = tether_enroll_request_from_json((const char *)call->request->body,
                                         call->request->body_len, &w->req, w->why,
                                         sizeof(w->why));
    if (rc == TETHER_ERR_TOO_LARGE) {
        refuse(call, 413, "payload_too_large", w->why, "enrolment", NULL);
        return false;
    }
    if (rc != TETHER_OK) {
        refuse(call, 400, "invalid_request", w->why, "enrolment", NULL);
        return false;
    }
    if (call->api->ek_cas == NULL) {
        refuse(call, 403, "untrusted_ek_certificate",
               "this fleet trusts no TPM manufacturer CA yet (ek_ca in fleetd.conf)", "enrolment",
               NULL);
        return false;
    }
    if (tether_ek_cert_verify(w->req.ek_cert, w->req.ek_cert_len, call->api->ek_cas, w->why,
                              sizeof(w->why)) != TETHER_OK) {
        refuse(call, 403, "untrusted_ek_certificate", w->why, "enrolment", NULL);
        return false;
    }
    rc = tether_enroll_request_check(&w->req, w->why, sizeof(w->why));
    if (rc == TETHER_ERR_EK_MISMATCH) {
        refuse(call, 400, "ek_certificate_mismatch", w->why, "enrolment", NULL);
        return false;
    }
    if (rc != TETHER_OK) {
        refuse(call, 400, "invalid_attestation", w->why, "enrolment", NULL);
        return false;
    }
    return true;
}

/* Step 4: the EK's identity, the name, the bootstrap token and the decision. */
static bool authorized(enroll_call_t *call, enroll_work_t *w, tether_enroll_decision_t *decision)
{
    uint8_t digest[32];
    char subject[64];
    size_t token_len = strlen(w->req.bootstrap_token);
    tether_status_t rc;

    if (tether_ek_sha256(&w->req.ek_public.publicArea, digest) != TETHER_OK ||
        tether_hex_encode(digest, sizeof(digest), w->ek_sha256, sizeof(w->ek_sha256)) !=
            TETHER_OK) {
        refuse(call, 400, "invalid_attestation", "the EK's key type is not supported",
               "enrolment", NULL);
        return false;
    }
    ek_subject(subject, sizeof(subject), w->ek_sha256);
    if (w->req.name[0] != '\0' && !tether_fleet_name_valid(w->req.name, strlen(w->req.name))) {
        refuse(call, 400, "invalid_request",
               "name must be 1-64 characters of A-Z a-z 0-9 . _ : @ + - and inner spaces",
               "enrolment", subject);
        return false;
    }
    if (token_len > 0) {
        if (tether_secret_token_check_format(w->req.bootstrap_token, token_len,
                                             TETHER_SECRET_BOOTSTRAP) != TETHER_OK) {
            refuse(call, 401, "invalid_bootstrap_token",
                   "the bootstrap token is malformed or mistyped (tthr_boot_..., checksum)",
                   "enrolment", subject);
            return false;
        }
        if (tether_secret_token_hash(w->req.bootstrap_token, token_len, w->token_hash) !=
            TETHER_OK) {
            server_error(call, "hashing the bootstrap token", TETHER_ERR_CRYPTO);
            return false;
        }
    }
    rc = tether_store_enroll_authorize(call->api->store, w->ek_sha256,
                                       token_len > 0 ? w->token_hash : NULL, call->now, decision,
                                       NULL);
    if (rc != TETHER_OK) {
        server_error(call, "the enrolment decision", rc);
        return false;
    }
    if (!tether_enroll_decision_granted(*decision)) {
        refuse_decision(call, *decision, "enrolment", subject);
        return false;
    }
    return true;
}

/* Marshals value into buf and points blob at it. */
#define MARSHAL_INTO(type, value, buf, blob)                                                   \
    ((blob).len = 0, (blob).data = (buf),                                                      \
     Tss2_MU_##type##_Marshal((value), (buf), sizeof(buf), &(blob).len) == TSS2_RC_SUCCESS     \
         ? TETHER_OK                                                                           \
         : TETHER_ERR_INVALID_ARGUMENT)

_Static_assert(TETHER_STORE_NAME_MAX == TETHER_ENROLL_MAX_NAME, "device names have one bound");

/* Step 6: the session row, with what the device sent. */
static tether_status_t fill_session(enroll_call_t *call, enroll_work_t *w)
{
    tether_store_enrollment_t *e = &w->session;
    const tether_enroll_request_t *req = &w->req;
    tether_status_t rc;

    memcpy(e->ek_sha256, w->ek_sha256, sizeof(e->ek_sha256));
    e->ek_cert.data = req->ek_cert;
    e->ek_cert.len = req->ek_cert_len;
    e->ak_name.data = w->ak_name.name;
    e->ak_name.len = w->ak_name.size;
    e->counter_index = req->counter_public.nvPublic.nvIndex;
    memcpy(e->name, req->name, sizeof(e->name));
    _Static_assert(TETHER_STORE_SOURCE_SIZE == TETHER_SOURCE_KEY_SIZE, "one size of a source");
    tether_source_key(call->request->remote, e->source);
    if (req->bootstrap_token[0] != '\0') {
        e->has_bootstrap = true;
        memcpy(e->bootstrap_hash, w->token_hash, sizeof(e->bootstrap_hash));
    }
    e->created_at = call->now;
    e->expires_at = call->now + TETHER_ENROLL_PENDING_SECONDS;
    if ((rc = MARSHAL_INTO(TPM2B_PUBLIC, &req->ek_public, w->ek_public, e->ek_public)) !=
            TETHER_OK ||
        (rc = MARSHAL_INTO(TPM2B_PUBLIC, &req->ak_public, w->ak_public, e->ak_public)) !=
            TETHER_OK ||
        (rc = MARSHAL_INTO(TPM2B_PUBLIC, &req->device_key_public, w->device_key_public,
                           e->device_key_public)) != TETHER_OK ||
        (rc = MARSHAL_INTO(TPM2B_ATTEST, &req->device_key_certify, w->certify_attest,
                           e->certify_attest)) != TETHER_OK ||
        (rc = MARSHAL_INTO(TPMT_SIGNATURE, &req->device_key_signature, w->certify_signature,
                           e->certify_signature)) != TETHER_OK ||
        (rc = MARSHAL_INTO(TPM2B_NV_PUBLIC, &req->counter_public, w->counter_public,
                           e->counter_public)) != TETHER_OK)
        return rc;
    return TETHER_OK;
}

/* The answer's two TPM structures as base64url of their marshalling. */
static tether_status_t encode_challenge(enroll_work_t *w)
{
    size_t len = 0;

    if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(&w->credential_blob, w->raw, sizeof(w->raw), &len) !=
            TSS2_RC_SUCCESS ||
        tether_base64url_encode(w->raw, len, w->blob_b64, sizeof(w->blob_b64), NULL) != TETHER_OK)
        return TETHER_ERR_INVALID_ARGUMENT;
    len = 0;
    if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&w->encrypted_secret, w->raw, sizeof(w->raw),
                                               &len) != TSS2_RC_SUCCESS ||
        tether_base64url_encode(w->raw, len, w->secret_b64, sizeof(w->secret_b64), NULL) !=
            TETHER_OK)
        return TETHER_ERR_INVALID_ARGUMENT;
    return TETHER_OK;
}

/* Steps 5-7: the credential, the session, the answer. */
static void challenge(enroll_call_t *call, enroll_work_t *w, tether_enroll_decision_t decision)
{
    uint8_t secret[TETHER_ENROLL_SECRET_SIZE];
    char subject[64];
    int64_t retry_after = 0;
    tether_status_t rc;
    cJSON *json;

    ek_subject(subject, sizeof(subject), w->ek_sha256);
    if ((rc = tether_fleet_enrollment_id_new(w->session.id)) != TETHER_OK ||
        (rc = activation_secret(call->api, w->session.id, secret)) != TETHER_OK ||
        (rc = tether_tpm2_public_name(&w->req.ak_public.publicArea, &w->ak_name)) != TETHER_OK) {
        server_error(call, "preparing the credential", rc);
        goto out;
    }
    rc = tether_credential_make(&w->req.ek_public, &w->ak_name, secret, sizeof(secret),
                                &w->credential_blob, &w->encrypted_secret);
    if (rc == TETHER_ERR_UNSUPPORTED || rc == TETHER_ERR_INVALID_ARGUMENT) {
        refuse(call, 400, "invalid_attestation",
               "the EK's algorithms are not supported for credential activation (RSA 2048, ECC "
               "P-256 or P-384 with AES-CFB)",
               "enrolment", subject);
        goto out;
    }
    if (rc != TETHER_OK || (rc = fill_session(call, w)) != TETHER_OK ||
        (rc = encode_challenge(w)) != TETHER_OK) {
        server_error(call, "making the credential", rc);
        goto out;
    }
    rc = tether_store_enrollment_add(call->api->store, &w->session, call->now,
                                     &(tether_store_enrollment_bounds_t){
                                         call->api->max_pending_per_ek,
                                         TETHER_ENROLL_MAX_PENDING_PER_SOURCE,
                                         TETHER_ENROLL_PROTECTED_SECONDS},
                                     &retry_after);
    if (rc == TETHER_ERR_TOO_LARGE) {
        refuse_busy(call, "too_many_enrolments",
                    "this EK has as many enrolments in flight as the fleet allows (from this "
                    "address or in all), all started within the last minute; try again after "
                    "Retry-After seconds",
                    subject, retry_after);
        goto out;
    }
    if (rc != TETHER_OK) {
        server_error(call, "recording the enrolment", rc);
        goto out;
    }
    json = cJSON_CreateObject();
    if (json == NULL || cJSON_AddStringToObject(json, "enrollment_id", w->session.id) == NULL ||
        cJSON_AddStringToObject(json, "credential_blob", w->blob_b64) == NULL ||
        cJSON_AddStringToObject(json, "encrypted_secret", w->secret_b64) == NULL ||
        cJSON_AddNumberToObject(json, "expires_in", TETHER_ENROLL_PENDING_SECONDS) == NULL) {
        cJSON_Delete(json);
        server_error(call, "answering", TETHER_ERR_NO_MEMORY);
        goto out;
    }
    tether_info("enroll", "enrolment started: %s enrollment=%.*s via=%s name=%s", subject,
                LOG_ENR_CHARS, w->session.id, grant_name(decision),
                w->session.name[0] != '\0' ? w->session.name : "-");
    tether_http_respond_json(call->response, 200, json);
out:
    tether_wipe(secret, sizeof(secret));
}

static void handle_enroll(enroll_call_t *call)
{
    enroll_work_t *w = NULL;
    tether_enroll_decision_t decision = TETHER_ENROLL_NOT_ALLOWED;
    int64_t retry_after = 0;
    char subject[64];

    /* Before any work: the attempt itself is what a source is limited in. */
    if (!tether_source_limit_take(&call->api->sources, call->request->remote, call->now,
                                  &retry_after)) {
        snprintf(subject, sizeof(subject), "remote=%s",
                 call->request->remote != NULL ? call->request->remote : "unknown");
        refuse_busy(call, "rate_limited",
                    "too many enrolment attempts from this address; try again after "
                    "Retry-After seconds",
                    subject, retry_after);
        return;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        server_error(call, "enrolment", TETHER_ERR_NO_MEMORY);
        return;
    }
    if (request_ok(call, w) && authorized(call, w, &decision))
        challenge(call, w, decision);
    tether_wipe(w, sizeof(*w));
    free(w);
}

/* ---- POST /v1/enroll/activate ---- */

static void invalid_enrollment(enroll_call_t *call, const char *subject)
{
    refuse(call, 400, TETHER_ENROLL_ERROR_INVALID_ENROLLMENT,
           "no enrolment in progress with this id (unknown, expired, displaced, dropped, or "
           "completed by a device that is no longer active with it); start again with POST "
           "/v1/enroll",
           "activation", subject);
}

/* Step 2: the device's proof against the one the secret gives. */
static tether_status_t proof_matches(enroll_call_t *call,
                                     const tether_enroll_activate_request_t *req, bool *matches)
{
    uint8_t secret[TETHER_ENROLL_SECRET_SIZE];
    uint8_t expected[TETHER_ENROLL_PROOF_SIZE];
    tether_status_t rc;

    *matches = false;
    rc = activation_secret(call->api, req->enrollment_id, secret);
    if (rc == TETHER_OK)
        rc = tether_enroll_activation_proof(secret, sizeof(secret), req->enrollment_id, expected);
    if (rc == TETHER_OK)
        *matches = tether_ct_equal(expected, req->proof, sizeof(expected));
    tether_wipe(secret, sizeof(secret));
    tether_wipe(expected, sizeof(expected));
    return rc;
}

/* 200 {"device_id", "status"}. */
static void answer_active(enroll_call_t *call, const tether_store_device_t *device)
{
    cJSON *json = cJSON_CreateObject();

    if (json == NULL || cJSON_AddStringToObject(json, "device_id", device->id) == NULL ||
        cJSON_AddStringToObject(json, "status", tether_device_status_name(device->status)) ==
            NULL) {
        cJSON_Delete(json);
        server_error(call, "answering", TETHER_ERR_NO_MEMORY);
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}

static void complete(enroll_call_t *call, const tether_enroll_activate_request_t *req,
                     const char *subject)
{
    char new_id[TETHER_STORE_DEVICE_ID_SIZE];
    tether_enroll_decision_t decision = TETHER_ENROLL_NOT_ALLOWED;
    tether_store_device_t device;
    tether_status_t rc;

    if ((rc = tether_fleet_device_id_new(new_id)) != TETHER_OK) {
        server_error(call, "activation", rc);
        return;
    }
    rc = tether_store_enrollment_activate(call->api->store, req->enrollment_id, new_id, call->now,
                                          &decision, &device);
    if (rc == TETHER_ERR_NOT_FOUND || rc == TETHER_ERR_EXPIRED) {
        invalid_enrollment(call, subject);
        return;
    }
    if (rc != TETHER_OK) {
        server_error(call, "activation", rc);
        return;
    }
    if (!tether_enroll_decision_granted(decision)) {
        refuse_decision(call, decision, "activation", subject);
        return;
    }
    tether_info("enroll", "device enrolled: device=%s %s via=%s name=%s", device.id, subject,
                grant_name(decision), device.name);
    answer_active(call, &device);
}

/* An activation whose enrolment is no longer in flight: the one its device
 * completed last, repeated because the answer was lost (the agent died
 * before saving it). With the right proof it is answered as before and
 * nothing changes: no second bootstrap use, no new device. */
static void completed_again(enroll_call_t *call, const tether_enroll_activate_request_t *req,
                            const char *subject)
{
    tether_store_device_t device;
    bool matches = false;
    tether_status_t rc;

    rc = tether_store_enrollment_completed(call->api->store, req->enrollment_id, &device);
    if (rc == TETHER_ERR_NOT_FOUND) {
        invalid_enrollment(call, subject);
        return;
    }
    if (rc != TETHER_OK || (rc = proof_matches(call, req, &matches)) != TETHER_OK) {
        server_error(call, "activation", rc);
        return;
    }
    if (!matches) {
        refuse(call, 403, TETHER_ENROLL_ERROR_ACTIVATION_FAILED,
               "the proof does not match the credential of this enrolment", "activation",
               subject);
        return;
    }
    tether_info("enroll", "activation repeated: device=%s %s ek_sha256=%.*s", device.id, subject,
                LOG_EK_HEX, device.ek_sha256);
    answer_active(call, &device);
}

static void handle_activate(enroll_call_t *call)
{
    tether_enroll_activate_request_t req;
    tether_store_enrollment_t session;
    char message[TETHER_ENROLL_MESSAGE_SIZE];
    char subject[96];
    bool matches = false;
    tether_status_t rc;

    if (tether_enroll_parse_activate((const char *)call->request->body, call->request->body_len,
                                     &req, message, sizeof(message)) != TETHER_OK) {
        refuse(call, 400, "invalid_request", message, "activation", NULL);
        return;
    }
    snprintf(subject, sizeof(subject), "enrollment=%.*s", LOG_ENR_CHARS, req.enrollment_id);
    rc = tether_store_enrollment_find(call->api->store, req.enrollment_id, call->now, &session);
    if (rc == TETHER_ERR_NOT_FOUND) {
        completed_again(call, &req, subject);
        goto out;
    }
    if (rc == TETHER_ERR_EXPIRED) {
        invalid_enrollment(call, subject);
        goto out;
    }
    if (rc != TETHER_OK) {
        server_error(call, "activation", rc);
        goto out;
    }
    snprintf(subject, sizeof(subject), "enrollment=%.*s ek_sha256=%.*s", LOG_ENR_CHARS,
             req.enrollment_id, LOG_EK_HEX, session.ek_sha256);
    if ((rc = proof_matches(call, &req, &matches)) != TETHER_OK) {
        server_error(call, "activation", rc);
        goto out;
    }
    if (!matches) {
        /* One try: a device whose TPM could not recover the secret (another
         * EK, another AK) starts over, and nobody can guess proofs. */
        rc = tether_store_enrollment_delete(call->api->store, req.enrollment_id);
        if (rc != TETHER_OK && rc != TETHER_ERR_NOT_FOUND) {
            server_error(call, "activation", rc);
            goto out;
        }
        refuse(call, 403, TETHER_ENROLL_ERROR_ACTIVATION_FAILED,
               "the proof does not match the credential: this TPM could not activate it; the "
               "enrolment is dropped, start again with POST /v1/enroll",
               "activation", subject);
        goto out;
    }
    complete(call, &req, subject);
out:
    tether_wipe(&req, sizeof(req));
    tether_wipe(&session, sizeof(session));
}

/* ---- entry points (router.c has checked method, media type and size) ---- */

static void run(tether_route_call_t *route, void (*handle)(enroll_call_t *call),
                const char *step)
{
    enroll_call_t call;

    memset(&call, 0, sizeof(call));
    call.api = route->router->enroll;
    call.request = route->request;
    call.response = route->response;
    call.now = call.api->clock != NULL ? call.api->clock() : (int64_t)time(NULL);
    handle(&call);
    if (route->router->metrics != NULL)
        tether_fleet_metrics_count(route->router->metrics->enrolments, step,
                                   call.outcome != NULL             ? call.outcome
                                   : route->response->status < 300 ? "ok"
                                                                   : "server_error");
    tether_wipe(&call, sizeof(call));
}

void tether_enroll_api_enroll(tether_route_call_t *call)
{
    run(call, handle_enroll, "enroll");
}

void tether_enroll_api_activate(tether_route_call_t *call)
{
    run(call, handle_activate, "activate");
}
