/* Measured boot in the token exchange, fleetd's side
 * (exchange_measured_boot.h). */
#include "exchange_measured_boot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/crypto.h"
#include "tether/eventlog_wire.h"

_Static_assert(TETHER_MEASURED_BOOT_PCR_COUNT <= 24, "PCRs fit a 3-byte selection");

uint32_t tether_exchange_pcr_mask(const TPML_PCR_SELECTION *sel)
{
    uint32_t mask = 0;

    for (UINT32 i = 0; i < sel->count && i < TPM2_NUM_PCR_BANKS; i++) {
        const TPMS_PCR_SELECTION *bank = &sel->pcrSelections[i];

        if (bank->hash != TPM2_ALG_SHA256)
            continue;
        for (unsigned b = 0; b < bank->sizeofSelect && b < 3; b++)
            mask |= (uint32_t)bank->pcrSelect[b] << (8 * b);
    }
    return mask;
}

void tether_exchange_pcr_selection(uint32_t mask, TPML_PCR_SELECTION *sel)
{
    memset(sel, 0, sizeof(*sel));
    sel->count = 1;
    sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel->pcrSelections[0].sizeofSelect = 3;
    for (unsigned b = 0; b < 3; b++)
        sel->pcrSelections[0].pcrSelect[b] = (uint8_t)(mask >> (8 * b));
}

tether_status_t tether_exchange_pcr_selection_text(uint32_t mask, char *out, size_t out_size)
{
    size_t at;

    if (out == NULL || out_size < sizeof("sha256:"))
        return TETHER_ERR_INVALID_ARGUMENT;
    at = (size_t)snprintf(out, out_size, "sha256:");
    for (unsigned pcr = 0; pcr < TETHER_MEASURED_BOOT_PCR_COUNT; pcr++) {
        if (!(mask & (1u << pcr)))
            continue;
        int n = snprintf(out + at, out_size - at, "%s%u", out[at - 1] == ':' ? "" : ",", pcr);
        if (n < 0 || (size_t)n >= out_size - at)
            return TETHER_ERR_TOO_LARGE;
        at += (size_t)n;
    }
    return TETHER_OK;
}

/* The hash the store holds for one log, hex, or "". */
static tether_status_t held_hash(tether_store_t *store, const char *device_id,
                                 tether_store_eventlog_kind_t kind,
                                 char out[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1])
{
    tether_store_eventlog_t log;
    tether_status_t rc;

    out[0] = '\0';
    rc = tether_store_eventlog_get(store, device_id, kind, false, &log);
    if (rc == TETHER_OK)
        rc = tether_hex_encode(log.sha256, sizeof(log.sha256), out,
                               TETHER_EVENTLOG_WIRE_SHA256_HEX + 1);
    else if (rc == TETHER_ERR_NOT_FOUND)
        rc = TETHER_OK;
    tether_store_eventlog_free(&log);
    return rc;
}

tether_status_t tether_exchange_measured_boot_challenge(tether_store_t *store,
                                                        const char *device_id,
                                                        const tether_policy_document_t *doc,
                                                        const tether_token_policy_t *fleet,
                                                        cJSON *answer)
{
    char selection[8 + 3 * TETHER_MEASURED_BOOT_PCR_COUNT];
    char platform[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1], tether[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1];
    cJSON *member;
    tether_status_t rc;

    if (!doc->has_measured_boot)
        return cJSON_AddStringToObject(answer, "pcr_selection", fleet->pcr_selection_text) != NULL
                   ? TETHER_OK
                   : TETHER_ERR_NO_MEMORY;
    if ((rc = tether_exchange_pcr_selection_text(tether_exchange_pcr_mask(&fleet->pcr_selection) |
                                                     doc->measured_boot.pcr_mask,
                                                 selection, sizeof(selection))) != TETHER_OK)
        return rc;
    if (cJSON_AddStringToObject(answer, "pcr_selection", selection) == NULL)
        return TETHER_ERR_NO_MEMORY;
    if ((rc = held_hash(store, device_id, TETHER_STORE_EVENTLOG_PLATFORM, platform)) !=
            TETHER_OK ||
        (rc = held_hash(store, device_id, TETHER_STORE_EVENTLOG_TETHER, tether)) != TETHER_OK)
        return rc;
    if ((member = cJSON_AddObjectToObject(answer, TETHER_EVENTLOG_WIRE_CHALLENGE)) == NULL ||
        cJSON_AddStringToObject(member, TETHER_EVENTLOG_WIRE_PLATFORM_SHA256, platform) == NULL ||
        cJSON_AddStringToObject(member, TETHER_EVENTLOG_WIRE_TETHER_SHA256, tether) == NULL)
        return TETHER_ERR_NO_MEMORY;
    return TETHER_OK;
}

/* One log of the form: kind, names for messages, the form's hash and span,
 * and the bound of its bytes. */
typedef struct form_log {
    tether_store_eventlog_kind_t kind;
    const char *name;
    const char *hash_hex;
    const tether_token_form_span_t *span;
    size_t max;
} form_log_t;

static tether_status_t resolve_one(tether_store_t *store, const char *device_id,
                                   const form_log_t *in, tether_exchange_eventlog_t *out,
                                   tether_exchange_eventlogs_fault_t *fault, char *why,
                                   size_t why_size)
{
    uint8_t digest[TETHER_SHA256_SIZE], empty[TETHER_SHA256_SIZE];
    tether_store_eventlog_t held;
    size_t decoded = 0, hash_len = 0;
    tether_status_t rc;

    memset(&held, 0, sizeof(held));
    if (in->hash_hex[0] == '\0') {
        *fault = TETHER_EXCHANGE_EVENTLOGS_UNKNOWN;
        return tether_explain(TETHER_ERR_NOT_FOUND, why, why_size,
                              "this device's policy has measured boot and the request names "
                              "no event logs; ask POST /v1/challenge, which says what to send");
    }
    if (tether_hex_decode(in->hash_hex, strlen(in->hash_hex), out->sha256, sizeof(out->sha256),
                          &hash_len) != TETHER_OK ||
        hash_len != sizeof(out->sha256)) {
        *fault = TETHER_EXCHANGE_EVENTLOGS_MALFORMED;
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "%s_sha256 is not a SHA-256",
                              in->name);
    }
    if (in->span->len > 0) {
        /* The span's length bounds the bytes: the form parser bounded it. */
        size_t cap = TETHER_BASE64URL_DECODED_LEN(in->span->len);

        if (cap > in->max || (out->bytes = malloc(cap)) == NULL) {
            *fault = cap > in->max ? TETHER_EXCHANGE_EVENTLOGS_MALFORMED
                                   : TETHER_EXCHANGE_EVENTLOGS_SERVER;
            return tether_explain(cap > in->max ? TETHER_ERR_TOO_LARGE : TETHER_ERR_NO_MEMORY,
                                  why, why_size, "%s is larger than %zu bytes", in->name,
                                  in->max);
        }
        if (tether_base64url_decode(in->span->data, in->span->len, out->bytes, cap, &decoded) !=
                TETHER_OK ||
            tether_sha256(out->bytes, decoded, digest) != TETHER_OK ||
            !tether_ct_equal(digest, out->sha256, sizeof(digest))) {
            *fault = TETHER_EXCHANGE_EVENTLOGS_MALFORMED;
            return tether_explain(TETHER_ERR_PARSE, why, why_size,
                                  "%s is not canonical base64url of bytes whose SHA-256 is "
                                  "%s_sha256",
                                  in->name, in->name);
        }
        out->len = decoded;
        out->sent = true;
        return TETHER_OK;
    }
    /* A hash alone: the empty log, or the one this device sent last. */
    if ((rc = tether_sha256("", 0, empty)) != TETHER_OK) {
        *fault = TETHER_EXCHANGE_EVENTLOGS_SERVER;
        return tether_explain(rc, why, why_size, "cannot hash");
    }
    if (tether_ct_equal(empty, out->sha256, sizeof(empty)))
        return TETHER_OK;
    rc = tether_store_eventlog_get(store, device_id, in->kind, true, &held);
    if (rc == TETHER_OK && tether_ct_equal(held.sha256, out->sha256, sizeof(held.sha256))) {
        out->bytes = held.bytes;
        out->len = held.len;
        held.bytes = NULL;
    } else if (rc == TETHER_OK || rc == TETHER_ERR_NOT_FOUND) {
        *fault = TETHER_EXCHANGE_EVENTLOGS_UNKNOWN;
        rc = tether_explain(TETHER_ERR_NOT_FOUND, why, why_size,
                            "the fleet does not hold the %s whose hash this request names; ask "
                            "POST /v1/challenge, which says which logs it holds, and send that "
                            "log's bytes",
                            in->name);
    } else {
        *fault = TETHER_EXCHANGE_EVENTLOGS_SERVER;
        rc = tether_explain(rc, why, why_size, "reading the %s kept for the device", in->name);
    }
    tether_store_eventlog_free(&held);
    return rc;
}

tether_status_t tether_exchange_eventlogs_resolve(tether_store_t *store, const char *device_id,
                                                  const tether_token_form_t *form,
                                                  tether_exchange_eventlogs_t *logs,
                                                  tether_exchange_eventlogs_fault_t *fault,
                                                  char *why, size_t why_size)
{
    const form_log_t in[2] = {
        {TETHER_STORE_EVENTLOG_PLATFORM, TETHER_EVENTLOG_WIRE_PLATFORM_LOG,
         form->platform_log_sha256, &form->platform_log, TETHER_EVENTLOG_WIRE_PLATFORM_MAX},
        {TETHER_STORE_EVENTLOG_TETHER, TETHER_EVENTLOG_WIRE_TETHER_LOG, form->tether_log_sha256,
         &form->tether_log, TETHER_EVENTLOG_WIRE_TETHER_MAX},
    };
    tether_exchange_eventlog_t *out[2] = {&logs->platform, &logs->tether};
    tether_status_t rc = TETHER_OK;

    memset(logs, 0, sizeof(*logs));
    *fault = TETHER_EXCHANGE_EVENTLOGS_OK;
    for (size_t i = 0; i < 2 && rc == TETHER_OK; i++)
        rc = resolve_one(store, device_id, &in[i], out[i], fault, why, why_size);
    return rc;
}

tether_status_t tether_exchange_eventlogs_keep(tether_store_t *store, const char *device_id,
                                               const tether_exchange_eventlogs_t *logs,
                                               int64_t now)
{
    const tether_exchange_eventlog_t *in[2] = {&logs->platform, &logs->tether};
    const tether_store_eventlog_kind_t kinds[2] = {TETHER_STORE_EVENTLOG_PLATFORM,
                                                   TETHER_STORE_EVENTLOG_TETHER};
    tether_status_t rc = TETHER_OK;

    for (size_t i = 0; i < 2 && rc == TETHER_OK; i++)
        if (in[i]->sent)
            rc = tether_store_eventlog_put(store, device_id, kinds[i], in[i]->sha256,
                                           in[i]->bytes, in[i]->len, now);
    return rc;
}

void tether_exchange_eventlogs_free(tether_exchange_eventlogs_t *logs)
{
    if (logs == NULL)
        return;
    free(logs->platform.bytes);
    free(logs->tether.bytes);
    memset(logs, 0, sizeof(*logs));
}

void tether_exchange_measured_boot_name_change(tether_store_t *store, const char *device_id,
                                               const tether_exchange_eventlogs_t *logs,
                                               tether_measured_boot_refusal_t *refusal)
{
    const tether_exchange_eventlog_t *sent[2] = {&logs->platform, &logs->tether};
    const tether_store_eventlog_kind_t kinds[2] = {TETHER_STORE_EVENTLOG_PLATFORM,
                                                   TETHER_STORE_EVENTLOG_TETHER};
    tether_store_eventlog_t held[2];
    bool found = false;

    memset(held, 0, sizeof(held));
    if (!logs->platform.sent && !logs->tether.sent)
        return;
    /* A log that came as a hash is the held one; one the store lacks is
     * compared as empty. */
    for (size_t i = 0; i < 2; i++) {
        tether_status_t rc = tether_store_eventlog_get(store, device_id, kinds[i], true, &held[i]);

        if (rc == TETHER_OK)
            found = true;
        else if (rc != TETHER_ERR_NOT_FOUND)
            goto out;
    }
    if (found)
        (void)tether_measured_boot_name_change(held[0].bytes, held[0].len, held[1].bytes,
                                               held[1].len, sent[0]->bytes, sent[0]->len,
                                               sent[1]->bytes, sent[1]->len, refusal);
out:
    tether_store_eventlog_free(&held[0]);
    tether_store_eventlog_free(&held[1]);
}

char *tether_exchange_measured_boot_alert(const tether_measured_boot_refusal_t *refusal,
                                          const char *policy, int64_t policy_version)
{
    cJSON *json = cJSON_CreateObject();
    char *text = NULL;
    bool ok;

    ok = json != NULL && cJSON_AddStringToObject(json, "code", refusal->code) != NULL &&
         cJSON_AddStringToObject(json, "text", refusal->text) != NULL &&
         cJSON_AddStringToObject(json, "policy", policy) != NULL &&
         cJSON_AddNumberToObject(json, "policy_version", (double)policy_version) != NULL;
    if (ok && refusal->log != NULL)
        ok = cJSON_AddStringToObject(json, "log", refusal->log) != NULL &&
             cJSON_AddNumberToObject(json, "pcr", refusal->pcr) != NULL;
    if (ok && refusal->has_event)
        ok = cJSON_AddNumberToObject(json, "event", (double)refusal->event) != NULL &&
             cJSON_AddNumberToObject(json, "type", refusal->type) != NULL &&
             cJSON_AddStringToObject(json, "digest", refusal->digest_hex) != NULL;
    if (ok)
        text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    return text;
}
