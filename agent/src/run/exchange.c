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

/* A challenge's "nonce", "pcr_selection" and optional "measured_boot", in
 * the challenge answer or in a token answer's next challenge. */
static bool challenge_read(const cJSON *json, uint8_t nonce[TETHER_NONCE_SIZE],
                           TPML_PCR_SELECTION *pcrs, tether_agent_measured_boot_t *mb)
{
    const cJSON *nonce_item, *pcrs_item;
    size_t nonce_len = 0;

    return cJSON_IsString(nonce_item = cJSON_GetObjectItemCaseSensitive(json, "nonce")) &&
           tether_base64url_decode(nonce_item->valuestring, strlen(nonce_item->valuestring),
                                   nonce, TETHER_NONCE_SIZE, &nonce_len) == TETHER_OK &&
           nonce_len == TETHER_NONCE_SIZE &&
           cJSON_IsString(pcrs_item = cJSON_GetObjectItemCaseSensitive(json, "pcr_selection")) &&
           parse_pcr_selection(pcrs_item->valuestring, pcrs) == 0 &&
           tether_agent_measured_boot_read(json, mb) == TETHER_OK;
}

tether_status_t tether_agent_exchange_read_challenge(const uint8_t *body, size_t len,
                                                     uint8_t nonce[TETHER_NONCE_SIZE],
                                                     TPML_PCR_SELECTION *pcrs,
                                                     tether_agent_measured_boot_t *mb)
{
    cJSON *json = NULL;
    tether_status_t rc = TETHER_ERR_PARSE;

    memset(nonce, 0, TETHER_NONCE_SIZE);
    memset(pcrs, 0, sizeof(*pcrs));
    memset(mb, 0, sizeof(*mb));
    if (tether_json_parse_object((const char *)body, len, &json) != TETHER_OK ||
        !challenge_read(json, nonce, pcrs, mb))
        goto out;
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK) {
        memset(nonce, 0, TETHER_NONCE_SIZE);
        memset(pcrs, 0, sizeof(*pcrs));
    }
    cJSON_Delete(json);
    return rc;
}

bool tether_next_challenge_usable(const tether_next_challenge_t *next, int64_t now_ms)
{
    return next != NULL && next->held && now_ms >= next->opens_ms && now_ms < next->closes_ms;
}

void tether_next_challenge_forget(tether_next_challenge_t *next)
{
    if (next != NULL)
        tether_wipe(next, sizeof(*next));
}

/* Seconds in a next challenge: whole, within a day. */
static bool seconds_read(const cJSON *json, const char *name, int64_t *seconds)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, name);

    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 86400 ||
        item->valuedouble != (double)(int64_t)item->valuedouble)
        return false;
    *seconds = (int64_t)item->valuedouble;
    return true;
}

tether_status_t tether_agent_exchange_read_next(const uint8_t *body, size_t len,
                                                int64_t received_ms,
                                                tether_next_challenge_t *next)
{
    cJSON *json = NULL;
    const cJSON *item;
    int64_t valid_in = 0, expires_in = 0;
    tether_status_t rc = TETHER_ERR_PARSE;

    tether_next_challenge_forget(next);
    if (tether_json_parse_object((const char *)body, len, &json) != TETHER_OK)
        goto out;
    if ((item = cJSON_GetObjectItemCaseSensitive(json, "next_challenge")) == NULL) {
        rc = TETHER_ERR_NOT_FOUND;
        goto out;
    }
    if (!cJSON_IsObject(item) ||
        !challenge_read(item, next->nonce, &next->pcrs, &next->measured_boot) ||
        !seconds_read(item, "valid_in", &valid_in) ||
        !seconds_read(item, "expires_in", &expires_in) ||
        expires_in * 1000 - TETHER_NEXT_CHALLENGE_MARGIN_MS <= valid_in * 1000)
        goto out;
    next->opens_ms = received_ms + valid_in * 1000;
    next->closes_ms = received_ms + expires_in * 1000 - TETHER_NEXT_CHALLENGE_MARGIN_MS;
    next->held = true;
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK)
        tether_next_challenge_forget(next);
    cJSON_Delete(json);
    return rc;
}

typedef struct challenge {
    uint8_t nonce[TETHER_NONCE_SIZE];
    TPML_PCR_SELECTION pcrs;
    tether_agent_measured_boot_t measured_boot;
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
    if (tether_agent_exchange_read_challenge(resp.body, resp.body_len, ch->nonce, &ch->pcrs,
                                             &ch->measured_boot) != TETHER_OK) {
        set_result(r, TETHER_EXCHANGE_RETRY, "bad_challenge",
                   "challenge: the fleet's answer is not a nonce, a PCR selection and an "
                   "optional measured_boot member");
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
                                const char *eventlog_params, tether_next_challenge_t *next,
                                tether_secure_buffer_t *token,
                                tether_exchange_result_t *r)
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
    len = sizeof(prefix) + 3 * type_len + strlen("&subject_token=") + strlen(subject_token) +
          (eventlog_params != NULL ? strlen(eventlog_params) : 0) + 1;
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
        if (eventlog_params != NULL)
            strcat(form, eventlog_params);
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
    if (next != NULL) {
        /* Without one (an older fleet) or with a malformed one, the next
         * refresh asks POST /v1/challenge: nothing is lost. */
        if (tether_agent_exchange_read_next(resp.body, resp.body_len,
                                            (int64_t)tether_socket_now_ms(), next) == TETHER_OK)
            r->next_refresh_ms = next->opens_ms;
        else
            tether_debug("exchange", "the token answer holds no usable next challenge");
    }
    set_result(r, TETHER_EXCHANGE_OK, "ok", "token issued");
    rc = 0;
out:
    free(form);
    tether_https_response_free(&resp);
    return rc;
}

/* The event logs the fleet asked for, read before the TPM part so that
 * the TPM lock is never held while files are read. */
static int eventlogs(const challenge_t *ch, const tether_usage_t *usage, char **params,
                     tether_exchange_result_t *r)
{
    char why[sizeof(r->reason)];
    size_t sent = 0;

    if (!ch->measured_boot.asked)
        return 0;
    if (tether_agent_eventlog_params(&ch->measured_boot, &usage->eventlogs, params, &sent, why,
                                     sizeof(why)) != TETHER_OK) {
        set_result(r, TETHER_EXCHANGE_RETRY, "eventlog", "measured boot: %s", why);
        return -1;
    }
    tether_info("exchange", "measured boot: the fleet asked for the event logs: %s",
                sent > 0 ? "sending the ones it does not hold" : "it holds both, hashes only");
    return 0;
}

/* The TPM's evidence over ch, encoded as the subject_token, and the event
 * logs ch asks for as the form's parameters (*eventlog_params, NULL when
 * it asks for none). */
static int evidence_over(tether_tpm_t *tpm, pthread_mutex_t *tpm_lock,
                         const tether_agent_state_t *state, const tether_usage_t *usage,
                         const challenge_t *ch, char **subject_token, char **eventlog_params,
                         tether_exchange_result_t *result)
{
    tether_evidence_t *ev = calloc(1, sizeof(*ev));
    tether_token_counts_t counts;
    int rc = -1;

    if (ev == NULL) {
        set_result(result, TETHER_EXCHANGE_RETRY, "no_memory", "out of memory");
        return -1;
    }
    strcpy(ev->device_id, state->device_id);
    memcpy(ev->nonce, ch->nonce, sizeof(ev->nonce));
    /* After the nonce: see tether_usage_t. */
    tether_token_counts_init(&counts);
    if (usage->counts != NULL)
        usage->counts(usage->counts_ctx, &counts);
    if (tether_usage_document(&counts, usage->exchanges, usage->token_requests, ev->usage,
                              sizeof(ev->usage), &ev->usage_len) != TETHER_OK) {
        set_result(result, TETHER_EXCHANGE_RETRY, "encode", "cannot encode the usage document");
        goto out;
    }
    if (eventlogs(ch, usage, eventlog_params, result) != 0 ||
        attest(tpm, tpm_lock, state, ch, ev, result) != 0)
        goto out;
    if (tether_evidence_encode(ev, subject_token) != TETHER_OK) {
        set_result(result, TETHER_EXCHANGE_RETRY, "encode", "cannot encode the evidence");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        free(*eventlog_params);
        *eventlog_params = NULL;
    }
    free(ev);
    return rc;
}

int tether_agent_exchange_evidence(tether_https_client_t *client, tether_tpm_t *tpm,
                                   pthread_mutex_t *tpm_lock,
                                   const tether_agent_state_t *state, const tether_usage_t *usage,
                                   char **subject_token, char **eventlog_params,
                                   tether_exchange_result_t *result)
{
    challenge_t ch;
    int rc;

    *subject_token = NULL;
    *eventlog_params = NULL;
    memset(result, 0, sizeof(*result));
    memset(&ch, 0, sizeof(ch));
    rc = get_challenge(client, state, &ch, result) == 0
             ? evidence_over(tpm, tpm_lock, state, usage, &ch, subject_token, eventlog_params,
                             result)
             : -1;
    tether_wipe(&ch, sizeof(ch));
    return rc;
}

int tether_agent_exchange_evidence_next(tether_tpm_t *tpm, pthread_mutex_t *tpm_lock,
                                        const tether_agent_state_t *state,
                                        const tether_usage_t *usage,
                                        const tether_next_challenge_t *next, char **subject_token,
                                        char **eventlog_params, tether_exchange_result_t *result)
{
    challenge_t ch;
    int rc;

    *subject_token = NULL;
    *eventlog_params = NULL;
    memset(result, 0, sizeof(*result));
    memcpy(ch.nonce, next->nonce, sizeof(ch.nonce));
    ch.pcrs = next->pcrs;
    ch.measured_boot = next->measured_boot;
    rc = evidence_over(tpm, tpm_lock, state, usage, &ch, subject_token, eventlog_params, result);
    tether_wipe(&ch, sizeof(ch));
    return rc;
}

/* The fleet's codes that say a held next challenge went stale: a nonce it
 * will not take (the evidence's own and the store's:
 * provisioning/fleetd/README.md, "POST /v1/token"), or event logs it does
 * not hold (the device's policy gained measured boot, or the fleet lost
 * the logs, after the challenge was handed out). */
static const char *const stale_challenge_codes[] = {
    "nonce_expired",
    "nonce_invalid",
    "nonce_not_yet_valid",
    "nonce_reused",
    "eventlog_unknown",
};

bool tether_exchange_code_wants_challenge(const char *code)
{
    for (size_t i = 0; i < sizeof(stale_challenge_codes) / sizeof(stale_challenge_codes[0]); i++)
        if (strcmp(code, stale_challenge_codes[i]) == 0)
            return true;
    return false;
}

/* Evidence over the held next challenge or a new one, and its token
 * request. */
static void refresh_once(const tether_exchange_context_t *ctx, const tether_usage_t *usage,
                         const tether_next_challenge_t *held, tether_secure_buffer_t *token,
                         tether_exchange_result_t *result)
{
    char *subject_token = NULL, *eventlog_params = NULL;
    int rc;

    rc = held != NULL
             ? tether_agent_exchange_evidence_next(ctx->tpm, ctx->tpm_lock, ctx->state, usage, held,
                                                   &subject_token, &eventlog_params, result)
             : tether_agent_exchange_evidence(ctx->client, ctx->tpm, ctx->tpm_lock, ctx->state,
                                              usage, &subject_token, &eventlog_params, result);
    if (rc != 0)
        goto out;
    if (ctx->stopping != NULL && ctx->stopping(ctx->stopping_arg)) {
        set_result(result, TETHER_EXCHANGE_RETRY, "stopping", "the agent is stopping");
        goto out;
    }
    (void)tether_agent_exchange_token(ctx->client, subject_token, eventlog_params, ctx->next,
                                      token, result);
out:
    free(subject_token);
    free(eventlog_params);
}

void tether_agent_refresh(const tether_exchange_context_t *ctx, const tether_usage_t *usage,
                          tether_secure_buffer_t *token, tether_exchange_result_t *result)
{
    tether_next_challenge_t held;

    memset(&held, 0, sizeof(held));
    /* Used once whatever happens: taken out of ctx->next, which the answer
     * refills. */
    if (tether_next_challenge_usable(ctx->next, (int64_t)tether_socket_now_ms()))
        held = *ctx->next;
    tether_next_challenge_forget(ctx->next);
    refresh_once(ctx, usage, held.held ? &held : NULL, token, result);
    if (held.held && result->outcome == TETHER_EXCHANGE_RETRY &&
        tether_exchange_code_wants_challenge(result->code)) {
        tether_info("exchange", "the fleet refused the next challenge (%s); asking for a new one",
                    result->code);
        refresh_once(ctx, usage, NULL, token, result);
    }
    tether_next_challenge_forget(&held);
    tether_https_client_close(ctx->client);
}

void tether_agent_exchange(tether_https_client_t *client, tether_tpm_t *tpm,
                           pthread_mutex_t *tpm_lock,
                           const tether_agent_state_t *state, const tether_usage_t *usage,
                           tether_secure_buffer_t *token, tether_exchange_result_t *result)
{
    const tether_exchange_context_t ctx = {.client = client,
                                           .tpm = tpm,
                                           .tpm_lock = tpm_lock,
                                           .state = state,
                                           .next = NULL,
                                           .stopping = NULL,
                                           .stopping_arg = NULL};

    tether_agent_refresh(&ctx, usage, token, result);
}
