/*
 * What the agent did with each of its recent access tokens, keyed by the
 * token's jti: DPoP proofs signed, requests proxied through its AI
 * endpoint. Reported in GET /v1/status and, later, to the fleet inside the
 * exchange's evidence (DESIGN.md, "Usage counters and reconciliation"), so
 * that more requests accepted at a gateway than the device made shows that
 * someone else holds the token.
 *
 * Bounded: the TETHER_TOKEN_COUNTS_MAX tokens most recently counted; a new
 * one takes the place of the one counted longest ago. In memory only.
 * Not thread-safe: the run loop owns it.
 */
#ifndef TETHER_AGENT_TOKEN_COUNTS_H
#define TETHER_AGENT_TOKEN_COUNTS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tether/error.h"

/* A token lives minutes and is replaced at 2/3 of its life: eight cover
 * every token an exchange could still be asked about. */
#define TETHER_TOKEN_COUNTS_MAX 8
#define TETHER_TOKEN_JTI_MAX 64

typedef enum tether_token_count_kind {
    TETHER_TOKEN_COUNT_PROOF,   /* a DPoP proof signed for the token */
    TETHER_TOKEN_COUNT_REQUEST, /* a request proxied with the token */
    TETHER_TOKEN_COUNT_BEARER,  /* the token handed out as a bearer token (GET /v1/token) */
    TETHER_TOKEN_COUNT_ISSUED,  /* the token arrived: listed, nothing counted */
} tether_token_count_kind_t;

typedef struct tether_token_count {
    char jti[TETHER_TOKEN_JTI_MAX + 1];
    uint64_t proofs;
    uint64_t requests;
    uint64_t bearer;
} tether_token_count_t;

typedef struct tether_token_counts {
    /* entries[0..count), oldest counted first */
    tether_token_count_t entries[TETHER_TOKEN_COUNTS_MAX];
    size_t count;
} tether_token_counts_t;

/* Empty. Cannot fail. */
void tether_token_counts_init(tether_token_counts_t *c);

/* Counts one of kind for the token jti (1 to TETHER_TOKEN_JTI_MAX
 * characters, else TETHER_ERR_INVALID_ARGUMENT and nothing counted). The
 * token becomes the most recently counted; when it is new and the table is
 * full, the least recently counted token is forgotten. Counts stop at
 * UINT64_MAX. */
tether_status_t tether_token_counts_add(tether_token_counts_t *c, const char *jti,
                                        tether_token_count_kind_t kind);

/* The entry for jti, or NULL. */
const tether_token_count_t *tether_token_counts_find(const tether_token_counts_t *c,
                                                     const char *jti);

/* Adds to obj the member name: an array of {"jti","proofs","requests"},
 * oldest first (bearer hand-outs are in the usage document only). TETHER_ERR_NO_MEMORY when cJSON cannot allocate. */
TETHER_MUST_CHECK tether_status_t tether_token_counts_to_json(const tether_token_counts_t *c,
                                                              cJSON *obj, const char *name);

/*
 * The usage document of an exchange (agent/README.md, "The usage
 * document"), version 1, in its one canonical byte form: members in a
 * fixed order, no whitespace, decimal integers without leading zeros (each
 * at most TETHER_USAGE_COUNT_MAX):
 *   {"version":1,"exchanges":E,"token_requests":R,"tokens":[
 *    {"jti":"J","proofs":P,"requests":Q,"bearer":B},...]}
 * tokens are c's entries, oldest counted first; an entry whose jti is not
 * 1 to 64 characters of A-Z a-z 0-9 - _ (nothing to escape) is left out.
 * Written into out[0..size) without a NUL; *len its length.
 * TETHER_ERR_TOO_LARGE when size is too small (TETHER_USAGE_DOCUMENT_MAX
 * always suffices).
 */
#define TETHER_USAGE_DOCUMENT_VERSION 1
#define TETHER_USAGE_COUNT_MAX 9007199254740991ULL /* 2^53 - 1: exact in any JSON reader */
/* The largest document: the head and TETHER_TOKEN_COUNTS_MAX entries of
 * the longest jti and counts (within TETHER_EVIDENCE_MAX_USAGE). */
#define TETHER_USAGE_DOCUMENT_MAX (96 + TETHER_TOKEN_COUNTS_MAX * (TETHER_TOKEN_JTI_MAX + 100))
TETHER_MUST_CHECK tether_status_t tether_usage_document(const tether_token_counts_t *c,
                                                        uint64_t exchanges,
                                                        uint64_t token_requests, uint8_t *out,
                                                        size_t size, size_t *len);

/* The jti claim of an access token the agent holds (token[0..len), a
 * compact JWS), into jti (TETHER_TOKEN_JTI_MAX + 1 bytes). Not a
 * verification: the fleet signed the token and the agent only uses its jti
 * to name it. TETHER_ERR_PARSE when the token has no printable jti of 1 to
 * TETHER_TOKEN_JTI_MAX characters; jti is "" then. */
TETHER_MUST_CHECK tether_status_t tether_token_jti(const char *token, size_t len,
                                                   char jti[TETHER_TOKEN_JTI_MAX + 1]);

#endif
