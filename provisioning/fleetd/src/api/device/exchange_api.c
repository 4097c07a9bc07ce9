/* POST /v1/token's steps, and the entry points of both exchange endpoints
 * (exchange_api.h; the files of the exchange: exchange_internal.h). */
#include "exchange_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_mu.h>

#include "tether/bytes.h"
#include "tether/crypto.h"
#include "tether/evidence.h"
#include "tether/fleet_policy.h"
#include "tether/fleet_vocabulary.h"
#include "tether/log.h"
#include "tether/tpm2_public.h"
#include "token_form.h"
#include "usage_document.h"
#include "validate.h"

void tether_exchange_api_init(tether_exchange_api_t *api, tether_store_t *store,
                              tether_issuer_keys_t *keys, const tether_token_policy_t *policy,
                              const uint8_t nonce_key[TETHER_NONCE_KEY_SIZE])
{
    if (api == NULL)
        return;
    memset(api, 0, sizeof(*api));
    api->store = store;
    api->keys = keys;
    api->policy = policy;
    if (nonce_key != NULL)
        memcpy(api->nonce_key, nonce_key, sizeof(api->nonce_key));
}

void tether_exchange_api_free(tether_exchange_api_t *api)
{
    if (api != NULL)
        tether_wipe(api, sizeof(*api));
}

/* ---- POST /v1/token ---- */

/* Steps 1-2: the form, its grant and token type, the scope and audience
 * the device may have. */
static bool form_ok(exchange_call_t *call, token_work_t *w)
{
    const tether_http_request_t *request = call->request;
    const tether_token_policy_t *policy = call->api->policy;
    tether_status_t rc;

    rc = tether_token_form_parse((const char *)request->body, request->body_len, &w->form, w->why,
                                 sizeof(w->why));
    if (rc == TETHER_ERR_TOO_LARGE) {
        exchange_refuse(call, "exchange", NULL, 413, "payload_too_large", "payload_too_large", "%s",
                        w->why);
        return false;
    }
    if (rc != TETHER_OK) {
        exchange_refuse(call, "exchange", NULL, 400, "invalid_request", "malformed_request", "%s",
                        w->why);
        return false;
    }
    if (strcmp(w->form.grant_type, TETHER_GRANT_TOKEN_EXCHANGE) != 0) {
        exchange_refuse(
            call, "exchange", NULL, 400, "unsupported_grant_type", "unsupported_grant_type",
            "this endpoint takes grant_type=" TETHER_GRANT_TOKEN_EXCHANGE " (RFC 8693)");
        return false;
    }
    if (strcmp(w->form.subject_token_type, TETHER_EVIDENCE_TOKEN_TYPE) != 0) {
        exchange_refuse(call, "exchange", NULL, 400, "invalid_request", "unsupported_token_type",
                        "subject_token_type must be " TETHER_EVIDENCE_TOKEN_TYPE
                        " (the TPM evidence of tether-agent)");
        return false;
    }
    if (tether_token_scope_choose(policy, w->form.scope, w->scope, sizeof(w->scope)) !=
        TETHER_OK) {
        exchange_refuse(call, "exchange", NULL, 400, "invalid_scope", "invalid_scope",
                        "a requested scope is not one this fleet grants (%s)", policy->scopes);
        return false;
    }
    if (tether_token_audience_choose(policy, w->form.audience, w->audience, sizeof(w->audience)) !=
        TETHER_OK) {
        exchange_refuse(call, "exchange", NULL, 400, "invalid_target", "invalid_target",
                        "the requested audience is not one this fleet issues tokens for (%s)",
                        policy->audiences);
        return false;
    }
    return true;
}

/* Steps 3-5: the evidence parses; its device is known, active, enrolled. */
static bool device_ok(exchange_call_t *call, token_work_t *w)
{
    const char *id;
    tether_status_t rc;

    if (tether_evidence_parse(w->form.subject_token, w->form.subject_token_len, &w->ev, w->why,
                              sizeof(w->why)) != TETHER_OK) {
        exchange_refuse(call, "exchange", NULL, 400, "invalid_grant",
                        tether_evidence_code_name(TETHER_EVIDENCE_MALFORMED), "the evidence: %s",
                        w->why);
        return false;
    }
    id = w->ev.device_id;
    rc = tether_fleet_device_id_valid(id, strlen(id))
             ? tether_store_exchange_device_get(call->api->store, id, &w->device)
             : TETHER_ERR_NOT_FOUND;
    if (rc == TETHER_ERR_NOT_FOUND) {
        exchange_refuse_unknown(call, "exchange", id);
        return false;
    }
    if (rc != TETHER_OK) {
        exchange_server_error(call, "reading the device", rc);
        return false;
    }
    if (w->device.device.status != TETHER_DEVICE_ACTIVE) {
        exchange_refuse_status(call, "exchange", id, w->device.device.status);
        return false;
    }
    return true;
}

/* The marshalled TPM structures of the device row, exactly. */
static bool unmarshal_public(const uint8_t *data, size_t len, TPM2B_PUBLIC *out)
{
    size_t offset = 0;

    return Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, len, &offset, out) == TSS2_RC_SUCCESS &&
           offset == len;
}

static bool unmarshal_nv_public(const uint8_t *data, size_t len, TPM2B_NV_PUBLIC *out)
{
    size_t offset = 0;

    return Tss2_MU_TPM2B_NV_PUBLIC_Unmarshal(data, len, &offset, out) == TSS2_RC_SUCCESS &&
           offset == len;
}

/* Step 7's policy, from what enrolment stored and the last exchange. */
static tether_status_t build_policy(exchange_call_t *call, token_work_t *w)
{
    const tether_store_exchange_device_t *d = &w->device;
    tether_evidence_policy_t *p = &w->policy;
    tether_status_t rc;

    if (!unmarshal_public(d->ek_public, d->ek_public_len, &w->ek) ||
        !unmarshal_public(d->ak_public, d->ak_public_len, &w->ak) ||
        !unmarshal_public(d->device_key_public, d->device_key_public_len, &w->device_key) ||
        !unmarshal_nv_public(d->counter_public, d->counter_public_len, &w->counter))
        return TETHER_ERR_PARSE; /* the row was written by enrolment: the database is damaged */
    if ((rc = tether_evidence_ak_qualified_name(&w->ek.publicArea, &w->ak.publicArea,
                                                &w->ak_qualified_name)) != TETHER_OK ||
        (rc = tether_evidence_counter_name(&w->counter.nvPublic, &w->counter_name)) != TETHER_OK)
        return rc;
    p->ak = &w->ak.publicArea;
    p->ak_qualified_name = &w->ak_qualified_name;
    p->counter_name = &w->counter_name;
    p->pcr_selection = call->api->policy->pcr_selection;
    /* Measured boot: the quote covers the policy's PCRs too, and the
     * reference values take the place of the first digest's (the logs
     * say why the PCRs hold what they hold: a kernel the policy admits
     * changes them). */
    if (w->policy_document.has_measured_boot) {
        tether_exchange_pcr_selection(tether_exchange_pcr_mask(&p->pcr_selection) |
                                          w->policy_document.measured_boot.pcr_mask,
                                      &p->pcr_selection);
    } else if (d->pcr_digest_len > 0) {
        /* Trust on first use: with no reference yet, any digest is
         * accepted and the first accepted one becomes the device's
         * reference. */
        if (d->pcr_digest_len > sizeof(w->reference.buffer))
            return TETHER_ERR_PARSE;
        w->reference.size = (UINT16)d->pcr_digest_len;
        memcpy(w->reference.buffer, d->pcr_digest, d->pcr_digest_len);
        p->pcr_digests = &w->reference;
        p->pcr_digest_count = 1;
    }
    /* A retry of the last accepted exchange carries that exchange's clock:
     * it is not checked against itself (evidence.h). */
    if (d->has_last) {
        w->last_clock.clock = d->last.clock.clock;
        w->last_clock.resetCount = d->last.clock.reset_count;
        w->last_clock.restartCount = d->last.clock.restart_count;
        w->last_clock.safe = d->last.clock.safe ? TPM2_YES : TPM2_NO;
        p->last_clock = &w->last_clock;
        p->retry_of_last = w->retry;
    }
    return TETHER_OK;
}

/* The counter and clockInfo lib's verification read from the evidence
 * (evidence.h: also after a clock_regression refusal). */
static void sighting_from_result(const tether_evidence_result_t *result,
                                 tether_store_sighting_t *s)
{
    s->counter = result->counter;
    s->clock.clock = result->clock.clock;
    s->clock.reset_count = result->clock.resetCount;
    s->clock.restart_count = result->clock.restartCount;
    s->clock.safe = result->clock.safe == TPM2_YES;
}

static void set_sighting_origin(exchange_call_t *call, tether_store_sighting_t *s)
{
    snprintf(s->address, sizeof(s->address), "%s", call->remote);
    s->at = call->now;
}

static bool policy_load(exchange_call_t *call, token_work_t *w, const char *name,
                        int64_t version);

/* Steps 6-7: the nonce, then the TPM's evidence against the enrolment and
 * the device's policy (its measured boot decides the PCR selection). A
 * clock regression goes on to the store (the second clone signal). */
static bool evidence_ok(exchange_call_t *call, token_work_t *w, bool *clock_regression)
{
    const char *id = w->ev.device_id;
    tether_status_t rc;

    *clock_regression = false;
    rc = tether_evidence_check_nonce(&w->ev, call->api->nonce_key, NULL,
                                     sizeof(call->api->nonce_key), (uint64_t)call->now, &w->code,
                                     w->why, sizeof(w->why));
    if (rc != TETHER_OK && w->code == TETHER_EVIDENCE_INTERNAL_ERROR) {
        exchange_server_error(call, "checking the nonce", rc);
        return false;
    }
    if (rc != TETHER_OK) {
        exchange_refuse(call, "exchange", id, 400, "invalid_grant",
                        tether_evidence_code_name(w->code),
                        "%s; ask POST /v1/challenge for a new nonce", w->why);
        return false;
    }
    /* The MAC holds, so the expiry is the fleet's own (exchange_challenge_members). */
    if (tether_nonce_expiry(w->ev.nonce) >
        (uint64_t)call->now + TETHER_CHALLENGE_TTL + TETHER_NONCE_WINDOW_LEEWAY) {
        exchange_refuse(
            call, "exchange", id, 400, "invalid_grant", TETHER_FLEET_EXCHANGE_NONCE_NOT_YET_VALID,
            "this evidence answers a next challenge whose window opens in %" PRIu64 " s, at "
            "the device's scheduled refresh; use it then, or ask POST /v1/challenge for a "
            "nonce to use now",
            tether_nonce_expiry(w->ev.nonce) - TETHER_CHALLENGE_TTL - (uint64_t)call->now);
        return false;
    }
    if (tether_evidence_fingerprint(&w->ev, w->fingerprint) != TETHER_OK ||
        tether_sha256(w->ev.nonce, sizeof(w->ev.nonce), w->nonce_hash) != TETHER_OK) {
        exchange_server_error(call, "fingerprinting the evidence", TETHER_ERR_CRYPTO);
        return false;
    }
    w->retry = w->device.has_last &&
               tether_ct_equal(w->device.last_fingerprint, w->fingerprint, sizeof(w->fingerprint));
    if (!policy_load(call, w, NULL, 0))
        return false;
    if ((rc = build_policy(call, w)) != TETHER_OK) {
        exchange_server_error(call, "reading the enrolment of the device", rc);
        return false;
    }
    rc = tether_evidence_verify(&w->ev, &w->policy, &w->result, &w->code, w->why, sizeof(w->why));
    if (rc == TETHER_OK)
        return true;
    if (w->code == TETHER_EVIDENCE_CLOCK_REGRESSION) {
        *clock_regression = true;
        return true;
    }
    if (w->code == TETHER_EVIDENCE_INTERNAL_ERROR) {
        exchange_server_error(call, "verifying the evidence", rc);
        return false;
    }
    exchange_refuse(call, "exchange", id, 400, "invalid_grant", tether_evidence_code_name(w->code),
                    "%s", w->why);
    return false;
}

/* The usage document the TPM signed with the nonce (usage_document.h):
 * strictly parsed, its tokens handed to the exchange's transaction. */
static bool usage_ok(exchange_call_t *call, token_work_t *w)
{
    tether_store_exchange_t *ex = &w->exchange;
    tether_status_t rc;

    rc = tether_usage_document_parse(w->ev.usage, w->ev.usage_len, &w->usage, w->why,
                                     sizeof(w->why));
    if (rc != TETHER_OK) {
        exchange_refuse(call, "exchange", w->ev.device_id, 400, "invalid_grant",
                        TETHER_FLEET_EXCHANGE_USAGE_INVALID,
                        "%s; the usage document must be the canonical form of version 1 "
                        "(agent/README.md)",
                        w->why);
        return false;
    }
    for (size_t i = 0; i < w->usage.token_count; i++) {
        const tether_usage_document_token_t *t = &w->usage.tokens[i];

        w->usage_tokens[i] = (tether_store_device_usage_t){
            .jti = t->jti, .proofs = t->proofs, .requests = t->requests, .bearer = t->bearer};
    }
    ex->usage = w->usage_tokens;
    ex->usage_count = w->usage.token_count;
    ex->usage_action = call->api->policy->usage_mismatch_action;
    return true;
}

/* Measured boot (exchange_measured_boot.h), for a device whose policy has
 * it: the logs named by the form replay to the verified quote's PCRs and
 * keep to the reference values. A refusal is answered as a pcr_mismatch
 * (400 invalid_grant: what the evidence proves is not what the policy
 * allows), changes no device state (the counter the device incremented
 * stays unaccepted, a gap) and is written as an alert. */
static bool measured_boot_ok(exchange_call_t *call, token_work_t *w)
{
    const char *id = w->ev.device_id;
    tether_measured_boot_quote_t quote;
    tether_exchange_eventlogs_fault_t fault;
    tether_measured_boot_refusal_t *refusal = &w->refusal;
    char *details;
    tether_status_t rc;

    if (!w->policy_document.has_measured_boot)
        return true;
    rc = tether_exchange_eventlogs_resolve(call->api->store, id, &w->form, &w->eventlogs, &fault,
                                           w->why, sizeof(w->why));
    if (fault == TETHER_EXCHANGE_EVENTLOGS_SERVER) {
        exchange_server_error(call, w->why, rc);
        return false;
    }
    if (fault == TETHER_EXCHANGE_EVENTLOGS_MALFORMED) {
        exchange_refuse(call, "exchange", id, 400, "invalid_request", "malformed_request", "%s",
                        w->why);
        return false;
    }
    if (fault == TETHER_EXCHANGE_EVENTLOGS_UNKNOWN) {
        exchange_refuse(call, "exchange", id, 400, "invalid_grant",
                        TETHER_FLEET_EXCHANGE_EVENTLOG_UNKNOWN, "%s", w->why);
        return false;
    }
    /* The selection lib verified the quote against, and its digest. */
    memset(&quote, 0, sizeof(quote));
    quote.pcr_mask = tether_exchange_pcr_mask(&w->policy.pcr_selection);
    if (w->result.pcr_digest.size != sizeof(quote.pcr_digest)) {
        exchange_refuse(call, "exchange", id, 400, "invalid_grant",
                        tether_evidence_code_name(TETHER_EVIDENCE_PCR_MISMATCH),
                        "the quote's PCR digest is not a SHA-256");
        return false;
    }
    memcpy(quote.pcr_digest, w->result.pcr_digest.buffer, sizeof(quote.pcr_digest));
    rc = tether_measured_boot_check(&w->policy_document.measured_boot, w->eventlogs.platform.bytes,
                                    w->eventlogs.platform.len, w->eventlogs.tether.bytes,
                                    w->eventlogs.tether.len, &quote, refusal);
    if (rc == TETHER_OK)
        return true;
    if (rc != TETHER_ERR_VERIFY || refusal->code == NULL) {
        exchange_server_error(call, "checking the event logs", rc);
        return false;
    }
    if (strcmp(refusal->code, TETHER_MEASURED_BOOT_REPLAY_MISMATCH) == 0)
        tether_exchange_measured_boot_name_change(call->api->store, id, &w->eventlogs, refusal);
    details = tether_exchange_measured_boot_alert(refusal, w->stored_policy.name,
                                                  w->stored_policy.version);
    if (details == NULL ||
        (rc = tether_store_alert_add(call->api->store, id, TETHER_FLEET_ALERT_MEASURED_BOOT_REFUSED,
                                     details, call->now)) != TETHER_OK) {
        cJSON_free(details);
        exchange_server_error(call, "recording the measured-boot alert",
                              details == NULL ? TETHER_ERR_NO_MEMORY : rc);
        return false;
    }
    cJSON_free(details);
    if (refusal->has_event)
        exchange_refuse(call, "exchange", id, 400, "invalid_grant", refusal->code,
                        "measured boot: %s (%s log, PCR %u, event %zu, type 0x%" PRIx32
                        ", digest %s); "
                        "policy %s version %lld",
                        refusal->text, refusal->log, refusal->pcr, refusal->event, refusal->type,
                        refusal->digest_hex[0] != '\0' ? refusal->digest_hex : "-",
                        w->stored_policy.name, (long long)w->stored_policy.version);
    else
        exchange_refuse(call, "exchange", id, 400, "invalid_grant", refusal->code,
                        "measured boot: %s; policy %s version %lld", refusal->text,
                        w->stored_policy.name, (long long)w->stored_policy.version);
    return false;
}

/* A token of the device used by someone else: the device is quarantined
 * (usage_mismatch_action quarantine) or only alerted. */
static void log_usage_mismatch(exchange_call_t *call, const token_work_t *w)
{
    const tether_store_usage_comparison_t *m = &w->recorded.mismatch;

    tether_error("exchange", "usage mismatch: device=%s jti=%.8s gateway_accepted=%" PRId64
                             " device_made=%" PRId64 " bearer_handouts=%" PRId64 " tokens=%zu "
                             "remote=%s: %s",
                 w->ev.device_id, m->jti, m->gateway_accepted, m->device_made, m->bearer,
                 w->recorded.usage_mismatches, call->remote,
                 w->recorded.decision == TETHER_STORE_EXCHANGE_USAGE_MISMATCH
                     ? "device quarantined, its tokens revoked"
                     : "alert only (usage_mismatch_action = alert)");
}

/* Loads into w the version version of the policy name, or the current
 * version of the policy the device follows when name is NULL, and reads
 * its document (a database row: read strictly). Answers 500 on failure. */
static bool policy_load(exchange_call_t *call, token_work_t *w, const char *name,
                        int64_t version)
{
    tether_store_policy_t *p = &w->stored_policy;
    tether_status_t rc;

    rc = name == NULL ? tether_store_device_policy(call->api->store, w->ev.device_id, p)
                      : tether_store_policy_get(call->api->store, name, version, p);
    if (rc == TETHER_OK)
        rc = tether_policy_document_parse((const uint8_t *)p->document, strlen(p->document),
                                          &w->policy_document, w->why, sizeof(w->why));
    if (rc != TETHER_OK) {
        tether_error("exchange", "policy %s version %lld of device %s: %s",
                     name != NULL ? name : "(current)", (long long)version, w->ev.device_id,
                     rc == TETHER_ERR_PARSE || rc == TETHER_ERR_TOO_LARGE ? w->why
                                                                           : tether_strerror(rc));
        exchange_server_error(call, "reading the device's policy", rc);
        return false;
    }
    w->policy_current = name == NULL;
    return true;
}

static void clone_detected(exchange_call_t *call, token_work_t *w)
{
    const tether_store_exchange_result_t *r = &w->recorded;
    const char *id = w->ev.device_id;
    uint64_t highest = r->has_last ? r->last.counter : 0;
    const char *signal = r->decision == TETHER_STORE_EXCHANGE_CLONE ? "counter_not_increasing"
                                                                    : "clock_regression";

    tether_error("exchange", "clone detected: device=%s signal=%s counter=%" PRIu64
                             " highest_accepted=%" PRIu64 " remote=%s last_remote=%s: device "
                             "quarantined, its tokens revoked",
                 id, signal, w->exchange.sighting.counter, highest, call->remote,
                 r->has_last ? r->last.address : "-");
    if (call->metrics != NULL)
        tether_fleet_metrics_count(call->metrics->clone_alerts, signal, NULL);
    if (r->decision == TETHER_STORE_EXCHANGE_CLONE)
        exchange_refuse(
            call, "exchange", id, 403, "invalid_grant", "clone_detected",
            "clone detected: this evidence's counter (%" PRIu64 ") is not above the highest "
            "this fleet accepted (%" PRIu64 "), so two TPM states hold this device's keys; "
            "the device is quarantined and its tokens revoked",
            w->exchange.sighting.counter, highest);
    else
        exchange_refuse(
            call, "exchange", id, 403, "invalid_grant", "clone_detected",
            "clone detected: the TPM clock went back (clock_regression: %s), so two TPM "
            "states hold this device's keys; the device is quarantined and its tokens "
            "revoked",
            w->why);
}

/* The logs whose bytes an accepted exchange brought become the ones the
 * challenge names. A failure costs the device its next exchange's bytes
 * again (the challenge names the older log), never a token. */
static void keep_eventlogs(exchange_call_t *call, const token_work_t *w)
{
    const tether_exchange_eventlogs_t *logs = &w->eventlogs;
    tether_status_t rc;

    if (!w->policy_document.has_measured_boot)
        return;
    rc = tether_exchange_eventlogs_keep(call->api->store, w->ev.device_id, logs, call->now);
    if (rc != TETHER_OK)
        tether_warn("exchange", "measured boot: device=%s: keeping its event logs failed (%s); "
                                "its next exchange sends them again",
                    w->ev.device_id, tether_strerror(rc));
    else
        tether_info("exchange", "measured boot: device=%s platform_log=%s (%zu bytes) "
                                "tether_log=%s (%zu bytes)",
                    w->ev.device_id, logs->platform.sent ? "received" : "held",
                    logs->platform.len, logs->tether.sent ? "received" : "held",
                    logs->tether.len);
}

/* Steps 8-9: one transaction decides, then the token is signed. */
static void record_and_issue(exchange_call_t *call, token_work_t *w, bool clock_regression)
{
    tether_exchange_api_t *api = call->api;
    tether_store_exchange_t *ex = &w->exchange;
    tether_store_exchange_result_t *r = &w->recorded;
    tether_token_facts_t facts;
    const char *id = w->ev.device_id;
    tether_status_t rc;

    memset(&facts, 0, sizeof(facts));
    ex->device_id = id;
    memcpy(ex->fingerprint, w->fingerprint, sizeof(ex->fingerprint));
    memcpy(ex->nonce_hash, w->nonce_hash, sizeof(ex->nonce_hash));
    /* Checked by tether_evidence_check_nonce: the fleet's own word. */
    ex->nonce_expires_at = (int64_t)tether_nonce_expiry(w->ev.nonce);
    ex->nonce_issued_at = ex->nonce_expires_at - TETHER_CHALLENGE_TTL;
    set_sighting_origin(call, &ex->sighting);
    sighting_from_result(&w->result, &ex->sighting);
    ex->clock_regression = clock_regression;
    if (!clock_regression) {
        tether_status_t jkt_rc;
        tether_ec_key_t pk;

        /* A device under measured boot keeps no first digest: its
         * reference values decide (build_policy). */
        if (!w->policy_document.has_measured_boot) {
            ex->pcr_digest = w->result.pcr_digest.buffer;
            ex->pcr_digest_len = w->result.pcr_digest.size;
        }
        /* cnf.jkt: the device key enrolment certified with the AK. */
        tether_ec_key_init(&pk);
        jkt_rc = tether_tpm2_public_to_ec_key(&w->device_key.publicArea, &pk);
        if (jkt_rc == TETHER_OK)
            jkt_rc = tether_jwk_thumbprint_key(&pk, w->jkt, sizeof(w->jkt));
        tether_ec_key_free(&pk);
        if (jkt_rc != TETHER_OK || (rc = tether_token_jti_new(w->jti)) != TETHER_OK) {
            exchange_server_error(call, "preparing the token", jkt_rc != TETHER_OK ? jkt_rc : rc);
            return;
        }
        ex->jti = w->jti;
        ex->scope = w->scope;
        ex->audience = w->audience;
        ex->policy = w->stored_policy.name;
        ex->policy_version = w->stored_policy.version;
        ex->exp = call->now + (int64_t)w->policy_document.lifetime_seconds;
        if (w->policy_document.thresholds[TETHER_THRESHOLD_SOURCE_NETWORKS].set &&
            !tether_policy_source_allowed(&w->policy_document, call->remote))
            ex->source_threshold =
                &w->policy_document.thresholds[TETHER_THRESHOLD_SOURCE_NETWORKS];
    }
    /* From the kid's choice to the signature: a rotation meanwhile would
     * not see this token when it computes the old key's not_after. */
    tether_issuer_keys_lock(api->keys);
    ex->kid = tether_issuer_keys_active_kid(api->keys);
    rc = tether_store_exchange_record(api->store, ex, call->now, r);
    if (rc != TETHER_OK) {
        exchange_server_error(call, "recording the exchange", rc);
        goto out;
    }
    facts.device_id = id;
    facts.jkt = w->jkt;
    facts.policy_name = w->stored_policy.name;
    facts.policy_version = w->stored_policy.version;
    facts.policy_document = &w->policy_document;
    if (r->usage_mismatches > 0)
        log_usage_mismatch(call, w);
    if (r->source_alerted)
        tether_warn("exchange", "source outside the policy: device=%s remote=%s policy=%s "
                                "version=%lld: %s",
                    id, call->remote, w->stored_policy.name,
                    (long long)w->stored_policy.version,
                    r->decision == TETHER_STORE_EXCHANGE_SOURCE_REFUSED
                        ? "device quarantined, its tokens revoked"
                        : "alert only, token issued");
    switch (r->decision) {
    case TETHER_STORE_EXCHANGE_SOURCE_REFUSED:
        exchange_refuse(
            call, "exchange", id, 403, "invalid_grant", TETHER_FLEET_EXCHANGE_SOURCE_REFUSED,
            "this exchange comes from %s, outside the sources of policy %s: the device is "
            "quarantined and its tokens revoked",
            call->remote != NULL ? call->remote : "an unknown address", w->stored_policy.name);
        break;
    case TETHER_STORE_EXCHANGE_USAGE_MISMATCH:
        exchange_refuse(
            call, "exchange", id, 403, "invalid_grant", TETHER_FLEET_EXCHANGE_USAGE_MISMATCH,
            "relying parties accepted %" PRId64 " requests on token %.8s..., this device "
            "made %" PRId64 ": another party holds its token; the device is quarantined and "
            "its tokens revoked",
            r->mismatch.gateway_accepted, r->mismatch.jti, r->mismatch.device_made);
        break;
    case TETHER_STORE_EXCHANGE_ACCEPT:
        facts.jti = ex->jti;
        facts.scope = ex->scope;
        facts.audience = ex->audience;
        facts.iat = call->now;
        facts.exp = ex->exp;
        facts.counter = ex->sighting.counter;
        exchange_answer_issue(call, w, &facts, ex->kid, "token issued");
        break;
    case TETHER_STORE_EXCHANGE_RETRY:
        /* The same token again: same jti, iat, exp and claims, signed by
         * the key that signed it if it is still loaded. */
        if (r->token.revoked || r->token.exp <= call->now) {
            exchange_refuse(
                call, "exchange", id, 400, "invalid_grant",
                tether_evidence_code_name(TETHER_EVIDENCE_NONCE_EXPIRED),
                "the token issued for this evidence is %s; start a new exchange with POST "
                "/v1/challenge",
                r->token.revoked ? "revoked" : "expired");
            break;
        }
        if (r->token.policy_version == 0) {
            exchange_refuse(
                call, "exchange", id, 400, "invalid_grant",
                tether_evidence_code_name(TETHER_EVIDENCE_NONCE_EXPIRED),
                "the token issued for this evidence predates the record of its policy, so "
                "it cannot be issued again; start a new exchange with POST /v1/challenge");
            break;
        }
        /* The claims of the policy version it was issued under, even if
         * the device has been moved or its policy updated since. */
        if ((strcmp(r->token.policy, w->stored_policy.name) != 0 ||
             r->token.policy_version != w->stored_policy.version) &&
            !policy_load(call, w, r->token.policy, r->token.policy_version))
            break;
        facts.jti = r->token.jti;
        facts.scope = r->token.scope;
        facts.audience = r->token.audience;
        facts.iat = r->token.issued_at;
        facts.exp = r->token.exp;
        facts.counter = r->token.counter;
        call->outcome = "retry"; /* a failure in exchange_answer_issue() says server_error */
        exchange_answer_issue(call, w, &facts, r->token.kid[0] != '\0' ? r->token.kid : NULL,
                              "token issued again for a retry");
        break;
    case TETHER_STORE_EXCHANGE_CLONE:
    case TETHER_STORE_EXCHANGE_CLOCK_REGRESSION:
        clone_detected(call, w);
        break;
    case TETHER_STORE_EXCHANGE_NOT_ACTIVE:
        exchange_refuse_status(call, "exchange", id, r->status);
        break;
    case TETHER_STORE_EXCHANGE_NONCE_REUSED:
        exchange_refuse(
            call, "exchange", id, 400, "invalid_grant", TETHER_FLEET_EXCHANGE_NONCE_REUSED,
            "this nonce was used by an accepted exchange already (a replayed evidence); "
            "start a new exchange with POST /v1/challenge");
        break;
    case TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED:
        exchange_refuse(
            call, "exchange", id, 400, "invalid_grant",
            tether_evidence_code_name(TETHER_EVIDENCE_NONCE_EXPIRED),
            "this evidence answers a nonce issued before the device's last accepted "
            "exchange, so it is older than that exchange; start a new exchange with POST "
            "/v1/challenge");
        break;
    }
out:
    tether_issuer_keys_unlock(api->keys);
    /* Outside the keys' lock; before the answer's next challenge is made
     * (exchange_answer_send), so that it names these logs, as the device's next
     * challenge asked for would. */
    if (rc == TETHER_OK && r->decision == TETHER_STORE_EXCHANGE_ACCEPT)
        keep_eventlogs(call, w);
    if (w->answer != NULL)
        exchange_answer_send(call, w);
}

/* Each thread keeps its token_work_t (122 KiB) from its first POST
 * /v1/token to its exit, zeroed between requests by the wipe that ends each
 * one: a calloc and free per exchange zeroed it a second time, and glibc
 * returned its pages to the kernel at each free, so every request faulted
 * them in again. */
static pthread_key_t work_key;
static pthread_once_t work_once = PTHREAD_ONCE_INIT;
static bool work_key_ready; /* pthread_key_create succeeded */

static void work_release(void *arg)
{
    tether_wipe(arg, sizeof(token_work_t));
    free(arg);
}

static void work_key_create(void)
{
    work_key_ready = pthread_key_create(&work_key, work_release) == 0;
}

/* A zeroed token_work_t for this request: this thread's, or (when no
 * thread key can be had) one of its own, which *kept says the caller
 * releases. NULL without memory. */
static token_work_t *work_get(bool *kept)
{
    token_work_t *w;

    *kept = pthread_once(&work_once, work_key_create) == 0 && work_key_ready;
    if (*kept && (w = pthread_getspecific(work_key)) != NULL)
        return w;
    if ((w = calloc(1, sizeof(*w))) != NULL && *kept)
        *kept = pthread_setspecific(work_key, w) == 0;
    return w;
}

static void handle_token(exchange_call_t *call)
{
    bool clock_regression = false, kept;
    token_work_t *w = work_get(&kept);

    if (w == NULL) {
        exchange_server_error(call, "exchange", TETHER_ERR_NO_MEMORY);
        return;
    }
    if (form_ok(call, w) && device_ok(call, w) && evidence_ok(call, w, &clock_regression) &&
        (clock_regression || (usage_ok(call, w) && measured_boot_ok(call, w))))
        record_and_issue(call, w, clock_regression);
    tether_exchange_eventlogs_free(&w->eventlogs);
    if (kept)
        tether_wipe(w, sizeof(*w)); /* and zeroed for this thread's next request */
    else
        work_release(w);
}

/* ---- entry points (router.c has checked method, query, media type and size) ---- */

/* Counts the answer: a token endpoint's "issued" is a new token signed. */
static void count(exchange_call_t *call, bool token_endpoint)
{
    const char *outcome = call->outcome;

    if (call->metrics == NULL)
        return;
    if (outcome == NULL)
        outcome = call->response->status < 300 ? "issued" : "server_error";
    tether_fleet_metrics_count(token_endpoint ? call->metrics->exchanges
                                              : call->metrics->challenges,
                               outcome, NULL);
    if (token_endpoint && strcmp(outcome, "issued") == 0)
        tether_metric_add(call->metrics->tokens_issued, 1);
}

static void run(tether_route_call_t *route, void (*handle)(exchange_call_t *call))
{
    exchange_call_t call;
    const char *remote = route->request->remote;

    memset(&call, 0, sizeof(call));
    call.api = route->router->exchange;
    call.request = route->request;
    call.response = route->response;
    call.remote = remote != NULL && remote[0] != '\0' ? remote : "-";
    call.now = call.api->clock != NULL ? call.api->clock() : (int64_t)time(NULL);
    call.metrics = route->router->metrics;
    handle(&call);
    count(&call, handle == handle_token);
    tether_wipe(&call, sizeof(call));
}

void tether_exchange_api_challenge(tether_route_call_t *call)
{
    run(call, exchange_challenge_handle);
}

void tether_exchange_api_token(tether_route_call_t *call)
{
    run(call, handle_token);
}
