/*
 * Internal to the token exchange (exchange_api.h): what its files share.
 *   exchange_api.c        POST /v1/token's steps, and both entry points
 *   exchange_challenge.c  POST /v1/challenge, and the members of every
 *                         challenge (the next one comes with each token)
 *   exchange_answer.c     refusals and errors as answered and logged, and
 *                         the token answer: built, then sent with its next
 *                         challenge
 */
#ifndef TETHER_FLEET_EXCHANGE_INTERNAL_H
#define TETHER_FLEET_EXCHANGE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <tss2/tss2_tpm2_types.h>

#include "exchange_api.h"
#include "exchange_measured_boot.h"
#include "fleet_metrics.h"
#include "store.h"
#include "tether/crypto.h"
#include "tether/error.h"
#include "tether/evidence.h"
#include "tether/fleet_policy.h"
#include "tether/fleet_vocabulary.h"
#include "token_form.h"
#include "token_issuer.h"
#include "usage_document.h"

#define EXCHANGE_WHY_SIZE 256

typedef struct exchange_call {
    tether_exchange_api_t *api;
    const tether_http_request_t *request;
    tether_http_response_t *response;
    const char *remote; /* for log lines and the sighting */
    int64_t now;
    tether_fleet_metrics_t *metrics; /* NULL: not counted */
    const char *outcome; /* retry, or a refusal's tether_error; NULL: issued */
} exchange_call_t;

/* What POST /v1/token works with, on the heap (about 122 KiB, kept per
 * thread: exchange_api.c's work_get) and wiped after each request: the
 * evidence is a bearer credential while its nonce lives, and the answer a
 * token. */
typedef struct token_work {
    tether_token_form_t form;
    tether_evidence_t ev;
    tether_store_exchange_device_t device;
    TPM2B_PUBLIC ek;
    TPM2B_PUBLIC ak;
    TPM2B_PUBLIC device_key;
    TPM2B_NV_PUBLIC counter;
    TPM2B_NAME ak_qualified_name;
    TPM2B_NAME counter_name;
    TPM2B_DIGEST reference;
    TPMS_CLOCK_INFO last_clock;
    tether_evidence_policy_t policy;
    tether_evidence_result_t result;
    tether_evidence_code_t code;
    uint8_t fingerprint[TETHER_STORE_FINGERPRINT_SIZE];
    uint8_t nonce_hash[TETHER_STORE_NONCE_HASH_SIZE];
    bool retry;
    char jkt[TETHER_JWK_THUMBPRINT_SIZE];
    char scope[TETHER_TOKEN_FORM_VALUE_MAX + 1];
    char audience[TETHER_TOKEN_FORM_VALUE_MAX + 1];
    char jti[TETHER_STORE_JTI_SIZE];
    tether_usage_document_t usage;
    tether_store_device_usage_t usage_tokens[TETHER_USAGE_DOCUMENT_MAX_TOKENS];
    tether_store_exchange_t exchange;
    tether_store_exchange_result_t recorded;
    /* The fleet policy version the token's tether claim is made from. */
    tether_store_policy_t stored_policy;
    tether_policy_document_t policy_document;
    bool policy_current; /* policy_document is the device's policy now */
    /* Measured boot: the device's logs, and why they were refused. */
    tether_exchange_eventlogs_t eventlogs;
    tether_measured_boot_refusal_t refusal;
    char token[TETHER_JWS_MAX_LEN + 1];
    /* The 200 answer exchange_answer_issue() made, sent by exchange_answer_send(). */
    cJSON *answer;
    int64_t answer_exp;
    char why[EXCHANGE_WHY_SIZE];
} token_work_t;

/* The device's policy document (a database row: read strictly), for the
 * challenge's PCR selection and measured boot. */
typedef struct exchange_challenge_policy {
    tether_store_policy_t stored;
    tether_policy_document_t document;
    char why[EXCHANGE_WHY_SIZE];
} exchange_challenge_policy_t;

/* ---- exchange_answer.c ---- */

/* Answers a refusal and logs it; what names the endpoint or step. */
void exchange_refuse(exchange_call_t *call, const char *what, const char *device_id,
                     unsigned status, const char *error, const char *tether_error, const char *fmt,
                     ...) __attribute__((format(printf, 7, 8)));
/* Logs rc and answers 500. */
void exchange_server_error(exchange_call_t *call, const char *what, tether_status_t rc);
/* 403 for a device that is not active, saying why. */
void exchange_refuse_status(exchange_call_t *call, const char *what, const char *device_id,
                            tether_device_status_t status);
void exchange_refuse_unknown(exchange_call_t *call, const char *what, const char *device_id);
/* The 200 answer with a signed token into w->answer; called with the keys
 * locked. */
void exchange_answer_issue(exchange_call_t *call, token_work_t *w,
                           const tether_token_facts_t *facts, const char *kid, const char *what);
/* Sends w->answer with its next challenge; called without the keys' lock. */
void exchange_answer_send(exchange_call_t *call, token_work_t *w);

/* ---- exchange_challenge.c ---- */

/* The device's policy document into *p (its errors logged). */
TETHER_MUST_CHECK tether_status_t exchange_challenge_policy_load(exchange_call_t *call,
                                                                 const char *id,
                                                                 exchange_challenge_policy_t *p);
/* The members of a challenge whose window opens at opens_at, into json. */
TETHER_MUST_CHECK tether_status_t exchange_challenge_members(exchange_call_t *call,
                                                             const char *device_id,
                                                             const tether_policy_document_t *doc,
                                                             int64_t opens_at, cJSON *json);
/* POST /v1/challenge. */
void exchange_challenge_handle(exchange_call_t *call);

#endif
