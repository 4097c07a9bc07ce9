/*
 * The usage document of an exchange (fleetd's POST /v1/token: the bytes
 * the device's TPM signed beside the nonce) on arbitrary bytes. An accepted
 * document is the canonical form: re-encoding what was read gives the same
 * bytes back, every count within 2^53 - 1, jtis distinct and plain. A
 * refusal comes with a sentence and leaves the document zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/evidence.h"
#include "usage_document.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t encode(const tether_usage_document_t *doc, char *out, size_t size)
{
    size_t used;

    if (doc->version == 0)
        return (size_t)snprintf(out, size, "{\"token_requests\":%lld,\"exchanges\":%lld}",
                                (long long)doc->token_requests, (long long)doc->exchanges);
    used = (size_t)snprintf(out, size,
                            "{\"version\":1,\"exchanges\":%lld,\"token_requests\":%lld,"
                            "\"tokens\":[",
                            (long long)doc->exchanges, (long long)doc->token_requests);
    for (size_t i = 0; i < doc->token_count && used < size; i++) {
        const tether_usage_document_token_t *t = &doc->tokens[i];

        used += (size_t)snprintf(out + used, size - used,
                                 "%s{\"jti\":\"%s\",\"proofs\":%lld,\"requests\":%lld,"
                                 "\"bearer\":%lld}",
                                 i == 0 ? "" : ",", t->jti, (long long)t->proofs,
                                 (long long)t->requests, (long long)t->bearer);
    }
    if (used < size)
        used += (size_t)snprintf(out + used, size - used, "]}");
    return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tether_usage_document_t zero;
    static tether_usage_document_t doc;
    static char again[TETHER_EVIDENCE_MAX_USAGE + 1];
    char why[256] = "";
    tether_status_t rc;

    rc = tether_usage_document_parse(data, size, &doc, why, sizeof(why));
    if (rc != TETHER_OK) {
        if (why[0] == '\0' || memcmp(&doc, &zero, sizeof(doc)) != 0)
            abort();
        return 0;
    }
    if (doc.version > 1 || doc.token_count > TETHER_USAGE_DOCUMENT_MAX_TOKENS)
        abort();
    for (size_t i = 0; i < doc.token_count; i++) {
        const tether_usage_document_token_t *t = &doc.tokens[i];

        if (t->proofs < 0 || t->proofs > TETHER_USAGE_DOCUMENT_COUNT_MAX || t->requests < 0 ||
            t->requests > TETHER_USAGE_DOCUMENT_COUNT_MAX || t->bearer < 0 ||
            t->bearer > TETHER_USAGE_DOCUMENT_COUNT_MAX || t->jti[0] == '\0' ||
            strspn(t->jti, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
                strlen(t->jti))
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(doc.tokens[k].jti, t->jti) == 0)
                abort();
    }
    /* One byte form: what was read, written again, is what came. */
    if (encode(&doc, again, sizeof(again)) != size || memcmp(again, data, size) != 0)
        abort();
    return 0;
}
