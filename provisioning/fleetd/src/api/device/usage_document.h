/*
 * The usage document a device reports with each exchange (the bytes whose
 * SHA-256 is in the TPM-signed qualifying data; agent/README.md, "The
 * usage document"): what it did with each of its recent tokens. Untrusted
 * until the evidence is verified, and parsed strictly either way: only the
 * one canonical byte form of a known version is accepted, so a document
 * has one meaning and one hash.
 *
 *   version 1: {"version":1,"exchanges":E,"token_requests":R,"tokens":[
 *               {"jti":"J","proofs":P,"requests":Q,"bearer":B},...]}
 *   version 0: {"token_requests":R,"exchanges":E} (agents before version
 *               1: no per-token counts, nothing to reconcile)
 *
 * Integers: decimal, no sign, no leading zero, at most 2^53 - 1. jti: 1 to
 * TETHER_USAGE_DOCUMENT_JTI_MAX characters of A-Z a-z 0-9 - _, each jti
 * once. No whitespace, nothing after the closing brace.
 */
#ifndef TETHER_FLEET_USAGE_DOCUMENT_H
#define TETHER_FLEET_USAGE_DOCUMENT_H

#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

/* Tokens per document at most: the agent reports its 8 most recent; twice
 * that leaves room for an agent that keeps more, and no more. */
#define TETHER_USAGE_DOCUMENT_MAX_TOKENS 16
#define TETHER_USAGE_DOCUMENT_JTI_MAX 64
#define TETHER_USAGE_DOCUMENT_COUNT_MAX 9007199254740991LL /* 2^53 - 1 */

typedef struct tether_usage_document_token {
    char jti[TETHER_USAGE_DOCUMENT_JTI_MAX + 1];
    int64_t proofs;   /* DPoP proofs the device signed for the token */
    int64_t requests; /* requests its AI endpoint sent with it (each with a proof) */
    int64_t bearer;   /* times it handed the token out as a bearer token */
} tether_usage_document_token_t;

typedef struct tether_usage_document {
    int version; /* 0 or 1 */
    int64_t exchanges;
    int64_t token_requests;
    tether_usage_document_token_t tokens[TETHER_USAGE_DOCUMENT_MAX_TOKENS];
    size_t token_count;
} tether_usage_document_t;

/* Parses data[0..len) (at most TETHER_EVIDENCE_MAX_USAGE bytes) into *doc,
 * zeroed on entry. TETHER_ERR_PARSE (TETHER_ERR_TOO_LARGE for more bytes
 * or tokens than the bounds) with a sentence in why naming the byte
 * offset. */
TETHER_MUST_CHECK tether_status_t tether_usage_document_parse(const uint8_t *data, size_t len,
                                                              tether_usage_document_t *doc,
                                                              char *why, size_t why_size);

#endif
