#include "exchange.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fleet_refusal.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/evidence.h"
#include "tether/json_strict.h"
#include "tether/log.h"

_Static_assert(TETHER_USAGE_DOCUMENT_MAX <= TETHER_EVIDENCE_MAX_USAGE,
               "the usage document fits the evidence");

/* Fleet answers that mean the device must stop asking until an operator
 * acts (DESIGN.md, "Clone detection", "Revocation and containment"). */
static const char *const final_codes[] = {
    "clone_detected", "device_revoked", "device_quarantined", "device_not_active", "unknown_device",
    "usage_mismatch",
};

int tether_exchange_code_is_final(const char *code)
{
    for (size_t i = 0; i < sizeof(final_codes) / sizeof(final_codes[0]); i++)
        if (strcmp(code, final_codes[i]) == 0)
            return 1;
    return 0;
}

static void set_result(tether_exchange_result_t *r, tether_exchange_outcome_t outcome,
                       const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_result(tether_exchange_result_t *r, tether_exchange_outcome_t outcome,
                       const char *code, const char *fmt, ...)
{
    va_list ap;

    r->outcome = outcome;
    snprintf(r->code, sizeof(r->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

/* A refusal from the fleet: final codes stop the agent, the rest are retried. */
static void fleet_refused(tether_exchange_result_t *r, const char *step,
                          const tether_https_response_t *resp)
{
    tether_fleet_refusal_t refusal;
    const char *code;

    tether_fleet_refusal_parse(resp, &refusal);
    code = tether_fleet_refusal_code(&refusal, "http_error");
    set_result(r,
               refusal.status >= 400 && refusal.status < 500 && tether_exchange_code_is_final(code)
                   ? TETHER_EXCHANGE_REFUSED
                   : TETHER_EXCHANGE_RETRY,
               code, "%s: HTTP %d %s: %s", step, refusal.status, code,
               tether_fleet_refusal_description(&refusal));
}

/* Parses "sha256:0,1,2" (the fleet's PCR policy) into a selection. */
static int parse_pcr_selection(const char *text, TPML_PCR_SELECTION *sel)
{
    const char *p;
    char *end;

    memset(sel, 0, sizeof(*sel));
    if (strncmp(text, "sha256:", 7) != 0)
        return -1;
    sel->count = 1;
    sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel->pcrSelections[0].sizeofSelect = 3;
    for (p = text + 7; *p != '\0'; p = *end == ',' ? end + 1 : end) {
        unsigned long pcr = strtoul(p, &end, 10);
        if (end == p || pcr > 23 || (*end != ',' && *end != '\0'))
            return -1;
        sel->pcrSelections[0].pcrSelect[pcr / 8] |= (uint8_t)(1u << (pcr % 8));
    }
    return 0;
}

tether_status_t tether_agent_exchange_read_challenge(const uint8_t *body, size_t len,
                                                     uint8_t nonce[TETHER_NONCE_SIZE],
                                                     TPML_PCR_SELECTION *pcrs)
{
    cJSON *json = NULL;
    const cJSON *nonce_item, *pcrs_item;
    size_t nonce_len = 0;
    tether_status_t rc = TETHER_ERR_PARSE;

    memset(nonce, 0, TETHER_NONCE_SIZE);
    memset(pcrs, 0, sizeof(*pcrs));
    if (tether_json_parse_object((const char *)body, len, &json) != TETHER_OK ||
        !cJSON_IsString(nonce_item = cJSON_GetObjectItemCaseSensitive(json, "nonce")) ||
        tether_base64url_decode(nonce_item->valuestring, strlen(nonce_item->valuestring), nonce,
                                TETHER_NONCE_SIZE, &nonce_len) != TETHER_OK ||
        nonce_len != TETHER_NONCE_SIZE ||
        !cJSON_IsString(pcrs_item = cJSON_GetObjectItemCaseSensitive(json, "pcr_selection")) ||
        parse_pcr_selection(pcrs_item->valuestring, pcrs) != 0)
        goto out;
    rc = TETHER_OK;
out:
    cJSON_Delete(json);
    return rc;
}

typedef struct challenge {
    uint8_t nonce[TETHER_NONCE_SIZE];
    TPML_PCR_SELECTION pcrs;
} challenge_t;

static int get_challenge(tether_https_client_t *client, const tether_agent_state_t *state,
                         challenge_t *ch, tether_exchange_result_t *r)
{
    tether_https_response_t resp;
    cJSON *req = NULL;
    char *json = NULL;
    int rc = -1;

    tether_https_response_init(&resp);
    if ((req = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(req, "device_id", state->device_id) == NULL ||
        (json = cJSON_PrintUnformatted(req)) == NULL) {
        set_result(r, TETHER_EXCHANGE_RETRY, "no_memory", "out of memory");
        goto out;
    }
    /* A challenge changes nothing at the fleet (the nonce is stateless):
     * sending it twice is harmless. */
    if (tether_https_request_resendable(client, "POST", "/v1/challenge", "application/json",
                                        (const uint8_t *)json, strlen(json), NULL,
                                        &resp) != TETHER_OK) {
        set_result(r, TETHER_EXCHANGE_RETRY, "unreachable", "challenge: %s", client->error);
        goto out;
    }
    if (resp.status != 200) {
        fleet_refused(r, "challenge", &resp);
        goto out;
    }
    if (tether_agent_exchange_read_challenge(resp.body, resp.body_len, ch->nonce, &ch->pcrs) !=
        TETHER_OK) {
        set_result(r, TETHER_EXCHANGE_RETRY, "bad_challenge",
                   "challenge: the fleet's answer is not a nonce and a PCR selection");
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(req);
    free(json);
    tether_https_response_free(&resp);
    return rc;
}

/* The TPM part: counter incremented and certified, PCRs quoted, both over
 * SHA-256(nonce || SHA-256(usage)). */
static int attest(tether_tpm_t *tpm, pthread_mutex_t *tpm_lock, const tether_agent_state_t *state,
                  const challenge_t *ch, tether_evidence_t *ev, tether_exchange_result_t *r)
{
    tether_ek_t ek;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE;
    tether_tpm_attestation_t nv, quote;
    uint8_t qualifying[TETHER_EVIDENCE_QUALIFYING_SIZE];
    tether_status_t rc;

    memset(&ek, 0, sizeof(ek));
    if (tpm_lock != NULL)
        pthread_mutex_lock(tpm_lock);
    if ((rc = tether_evidence_qualifying(ch->nonce, ev->usage, ev->usage_len, qualifying)) !=
            TETHER_OK ||
        (rc = tether_ek_open(tpm, state->ek_type, &ek)) != TETHER_OK ||
        (rc = tether_tpm_load_key(tpm, ek.handle, &state->ak, &ak)) != TETHER_OK ||
        (rc = tether_tpm_nv_increment(tpm, state->counter_index)) != TETHER_OK ||
        (rc = tether_tpm_nv_certify(tpm, ak, state->counter_index, qualifying, sizeof(qualifying),
                                    &nv)) != TETHER_OK ||
        (rc = tether_tpm_quote(tpm, ak, &ch->pcrs, qualifying, sizeof(qualifying), &quote)) !=
            TETHER_OK)
        goto out;
    ev->nv_certify = nv.attest;
    ev->nv_signature = nv.signature;
    ev->quote = quote.attest;
    ev->quote_signature = quote.signature;
out:
    (void)tether_tpm_flush(tpm, ak);
    tether_ek_free(tpm, &ek);
    if (tpm_lock != NULL)
        pthread_mutex_unlock(tpm_lock);
    if (rc == TETHER_OK)
        return 0;
    /* Lockout and authorisation failures do not heal by retrying. */
    set_result(r,
               rc == TETHER_ERR_TPM_LOCKOUT || rc == TETHER_ERR_TPM_AUTH ? TETHER_EXCHANGE_FAILED
                                                                         : TETHER_EXCHANGE_RETRY,
               "tpm_error", "TPM: %s: %s", tether_strerror(rc), tpm->last_error);
    return -1;
}

tether_status_t tether_agent_exchange_read_token(const uint8_t *body, size_t len,
                                                 tether_secure_buffer_t *token,
                                                 unsigned *expires_in)
{
    cJSON *json = NULL;
    const cJSON *access, *expires;
    tether_status_t rc = TETHER_ERR_PARSE;

    *expires_in = 0;
    if (tether_json_parse_object((const char *)body, len, &json) != TETHER_OK ||
        !cJSON_IsString(access = cJSON_GetObjectItemCaseSensitive(json, "access_token")) ||
        !cJSON_IsNumber(expires = cJSON_GetObjectItemCaseSensitive(json, "expires_in")) ||
        strlen(access->valuestring) == 0 || strlen(access->valuestring) > TETHER_TOKEN_MAX ||
        token->size < TETHER_TOKEN_MAX + 1 || expires->valuedouble < 1 ||
        expires->valuedouble > 86400)
        goto out;
    tether_wipe(token->data, token->size);
    memcpy(token->data, access->valuestring, strlen(access->valuestring) + 1);
    *expires_in = (unsigned)expires->valuedouble;
    rc = TETHER_OK;
out:
    /* The parsed copy of the token is wiped; the response buffer is the
     * caller's. */
    access = cJSON_GetObjectItemCaseSensitive(json, "access_token");
    if (cJSON_IsString(access))
        tether_wipe(access->valuestring, strlen(access->valuestring));
    cJSON_Delete(json);
    return rc;
}

int tether_agent_exchange_token(tether_https_client_t *client, const char *subject_token,
                                tether_secure_buffer_t *token, tether_exchange_result_t *r)
{
    static const char prefix[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
        "&subject_token_type=";
    tether_https_response_t resp;
    size_t type_len = strlen(TETHER_EVIDENCE_TOKEN_TYPE), len;
    char *form;
    int rc = -1;

    tether_https_response_init(&resp);
    /* base64url and the token type's characters need no escaping but ':'. */
    len = sizeof(prefix) + 3 * type_len + strlen("&subject_token=") + strlen(subject_token) + 1;
    if ((form = malloc(len)) == NULL) {
        set_result(r, TETHER_EXCHANGE_RETRY, "no_memory", "out of memory");
        return -1;
    }
    {
        size_t o = strlen(prefix);
        memcpy(form, prefix, o);
        for (size_t i = 0; i < type_len; i++) {
            if (TETHER_EVIDENCE_TOKEN_TYPE[i] == ':') {
                memcpy(form + o, "%3A", 3);
                o += 3;
            } else {
                form[o++] = TETHER_EVIDENCE_TOKEN_TYPE[i];
            }
        }
        form[o] = '\0';
        strcat(form, "&subject_token=");
        strcat(form, subject_token);
    }
    /* The same evidence sent twice is one exchange: fleetd answers the
     * retry of the device's last accepted exchange (same fingerprint, same
     * counter) with the token it issued for it, and evidence it never
     * recorded is simply checked then. */
    if (tether_https_request_resendable(client, "POST", "/v1/token",
                                        "application/x-www-form-urlencoded",
                                        (const uint8_t *)form, strlen(form), NULL,
                                        &resp) != TETHER_OK) {
        set_result(r, TETHER_EXCHANGE_RETRY, "unreachable", "token: %s", client->error);
        goto out;
    }
    if (resp.status != 200) {
        fleet_refused(r, "token", &resp);
        goto out;
    }
    if (tether_agent_exchange_read_token(resp.body, resp.body_len, token, &r->expires_in) !=
        TETHER_OK) {
        set_result(r, TETHER_EXCHANGE_RETRY, "bad_token_response",
                   "token: the fleet's answer holds no usable access token");
        goto out;
    }
    set_result(r, TETHER_EXCHANGE_OK, "ok", "token issued");
    rc = 0;
out:
    free(form);
    tether_https_response_free(&resp);
    return rc;
}

int tether_agent_exchange_evidence(tether_https_client_t *client, tether_tpm_t *tpm,
                                   pthread_mutex_t *tpm_lock,
                                   const tether_agent_state_t *state, const tether_usage_t *usage,
                                   char **subject_token, tether_exchange_result_t *result)
{
    tether_evidence_t *ev = calloc(1, sizeof(*ev));
    challenge_t ch;
    tether_token_counts_t counts;
    int rc = -1;

    *subject_token = NULL;
    memset(result, 0, sizeof(*result));
    memset(&ch, 0, sizeof(ch));
    if (ev == NULL) {
        set_result(result, TETHER_EXCHANGE_RETRY, "no_memory", "out of memory");
        return -1;
    }
    if (get_challenge(client, state, &ch, result) != 0)
        goto out;
    strcpy(ev->device_id, state->device_id);
    memcpy(ev->nonce, ch.nonce, sizeof(ev->nonce));
    /* After the nonce: see tether_usage_t. */
    tether_token_counts_init(&counts);
    if (usage->counts != NULL)
        usage->counts(usage->counts_ctx, &counts);
    if (tether_usage_document(&counts, usage->exchanges, usage->token_requests, ev->usage,
                              sizeof(ev->usage), &ev->usage_len) != TETHER_OK) {
        set_result(result, TETHER_EXCHANGE_RETRY, "encode", "cannot encode the usage document");
        goto out;
    }
    if (attest(tpm, tpm_lock, state, &ch, ev, result) != 0)
        goto out;
    if (tether_evidence_encode(ev, subject_token) != TETHER_OK) {
        set_result(result, TETHER_EXCHANGE_RETRY, "encode", "cannot encode the evidence");
        goto out;
    }
    rc = 0;
out:
    free(ev);
    return rc;
}

void tether_agent_exchange(tether_https_client_t *client, tether_tpm_t *tpm,
                           pthread_mutex_t *tpm_lock,
                           const tether_agent_state_t *state, const tether_usage_t *usage,
                           tether_secure_buffer_t *token, tether_exchange_result_t *result)
{
    char *subject_token = NULL;

    if (tether_agent_exchange_evidence(client, tpm, tpm_lock, state, usage, &subject_token, result) == 0)
        (void)tether_agent_exchange_token(client, subject_token, token, result);
    tether_https_client_close(client);
    free(subject_token);
}
