/*
 * The store's attested token exchange: the clone rule, the record of an
 * exchange and its group commit, issued tokens.
 */
#ifndef TETHER_FLEET_STORE_EXCHANGE_H
#define TETHER_FLEET_STORE_EXCHANGE_H

#include "store_devices.h"
#include "store_types.h"
#include "store_usage.h"
#include "tether/fleet_policy.h"
#include "tether/fleet_vocabulary.h"

/* ---- attested token exchange (DESIGN.md, "Attested token exchange",
 * "Clone detection"; store_sqlite_exchange.c, schema versions 3 and 5) ---- */

/* A TPMS_CLOCK_INFO as the fleet keeps it. */
typedef struct tether_store_clock {
    uint64_t clock;         /* milliseconds */
    uint32_t reset_count;
    uint32_t restart_count;
    bool safe;
} tether_store_clock_t;

/* One exchange as the fleet saw it: what the TPM signed, who sent it, when. */
typedef struct tether_store_sighting {
    uint64_t counter;
    tether_store_clock_t clock;
    char address[TETHER_STORE_ADDRESS_SIZE]; /* "-" when unknown */
    int64_t at;
} tether_store_sighting_t;

/* What the exchange checks need of a device: its enrolment (TPM marshalled
 * as in enrolment_sessions) and its exchange state. */
typedef struct tether_store_exchange_device {
    tether_store_device_t device;
    uint8_t ek_public[TETHER_STORE_BLOB_MAX];         /* TPM2B_PUBLIC */
    size_t ek_public_len;
    uint8_t ak_public[TETHER_STORE_BLOB_MAX];         /* TPM2B_PUBLIC */
    size_t ak_public_len;
    uint8_t device_key_public[TETHER_STORE_BLOB_MAX]; /* TPM2B_PUBLIC */
    size_t device_key_public_len;
    uint8_t counter_public[TETHER_STORE_BLOB_MAX];    /* TPM2B_NV_PUBLIC */
    size_t counter_public_len;
    uint8_t pcr_digest[TETHER_STORE_DIGEST_MAX];      /* the reference quote digest ... */
    size_t pcr_digest_len;                            /* ... 0: none yet (trust on first use) */
    bool has_last;                  /* an exchange was accepted since the enrolment */
    tether_store_sighting_t last;   /* the last accepted exchange */
    uint8_t last_fingerprint[TETHER_STORE_FINGERPRINT_SIZE];
    int64_t last_nonce_expires_at;  /* its nonce's expiry; 0: unknown (before schema 5) */
} tether_store_exchange_device_t;

/* An issued access token (table issued_tokens). */
typedef struct tether_store_issued_token {
    char jti[TETHER_STORE_JTI_SIZE];
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    bool has_counter;
    uint64_t counter;  /* the exchange it was issued for */
    int64_t issued_at; /* iat */
    int64_t exp;
    bool revoked;
    char kid[TETHER_STORE_KID_SIZE];        /* "" for tokens from before schema 3 */
    char scope[TETHER_STORE_CLAIM_MAX + 1];
    char audience[TETHER_STORE_CLAIM_MAX + 1];
    /* The policy version its tether claim was made from; "" and 0 for
     * tokens from before schema 10. */
    char policy[TETHER_POLICY_NAME_MAX + 1];
    int64_t policy_version;
} tether_store_issued_token_t;

/* One verified exchange to record. Strings are borrowed for the call. */
typedef struct tether_store_exchange {
    const char *device_id;
    tether_store_sighting_t sighting;
    uint8_t fingerprint[TETHER_STORE_FINGERPRINT_SIZE];
    /* The challenge nonce the evidence answers (SHA-256 of its bytes) and
     * its expiry: an accepted exchange uses it up until then. */
    uint8_t nonce_hash[TETHER_STORE_NONCE_HASH_SIZE];
    int64_t nonce_expires_at;    /* unix seconds, from the checked nonce */
    const uint8_t *pcr_digest; /* the quote's digest: kept if the device has none yet */
    size_t pcr_digest_len;
    /* Set when tether_evidence_verify() refused the evidence as
     * clock_regression: valid signatures over a clock that went back, the
     * second clone signal. Nothing below is used then. */
    bool clock_regression;
    /* The token to record when the exchange is accepted. */
    const char *jti;
    const char *kid;
    const char *scope;
    const char *audience;
    int64_t exp; /* iat is sighting.at */
    const char *policy; /* the policy version its claims come from; NULL */
    int64_t policy_version; /* and 0: none recorded (its retry is refused) */
    /* The device's usage document (store_usage.h, "usage reconciliation"): its
     * counts per token, reconciled before the exchange is accepted. */
    const struct tether_store_device_usage *usage;
    size_t usage_count;
    int64_t nonce_issued_at; /* when the fleet issued the evidence's nonce */
    tether_store_usage_action_t usage_action;
    /* The policy's source_networks threshold when the exchange comes from
     * an address (sighting.address) outside the policy's sources; NULL
     * otherwise. Alerted; with action quarantine the device is
     * quarantined instead of the token issued. */
    const tether_policy_threshold_t *source_threshold;
} tether_store_exchange_t;

typedef enum tether_store_exchange_decision {
    TETHER_STORE_EXCHANGE_ACCEPT = 0,       /* counter above the highest: recorded */
    TETHER_STORE_EXCHANGE_RETRY,            /* retry of the last accepted one (same fingerprint) */
    TETHER_STORE_EXCHANGE_CLONE,            /* counter not above the highest: quarantined */
    TETHER_STORE_EXCHANGE_CLOCK_REGRESSION, /* the clock went back: quarantined */
    TETHER_STORE_EXCHANGE_NOT_ACTIVE,       /* the device is no longer active: nothing changed */
    TETHER_STORE_EXCHANGE_NONCE_REUSED,     /* the nonce was used up: a replay, nothing changed */
    TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED, /* counter not above the highest over a nonce issued
                                               before the last accepted one: older evidence
                                               (lost, withheld, replayed), nothing changed */
    TETHER_STORE_EXCHANGE_USAGE_MISMATCH,   /* gateways accepted more on a token than the
                                               device made, action quarantine: quarantined */
    TETHER_STORE_EXCHANGE_SOURCE_REFUSED,   /* from outside the policy's sources, action
                                               quarantine: quarantined */
} tether_store_exchange_decision_t;

typedef struct tether_store_exchange_result {
    tether_store_exchange_decision_t decision;
    tether_device_status_t status; /* the device's status after the transaction */
    bool has_last;                 /* the last accepted sighting, as read in the transaction */
    tether_store_sighting_t last;
    tether_store_issued_token_t token; /* RETRY: the token issued for the retried exchange */
    size_t usage_mismatches; /* tokens found used by someone else (alerted) */
    tether_store_usage_comparison_t mismatch; /* the first of them */
    bool source_alerted; /* a source_networks alert was added (not repeated within an hour) */
} tether_store_exchange_result_t;

/* The clone rule, pure (DESIGN.md, "Clone detection"): row is the device and
 * nonce_used whether an accepted exchange used the evidence's nonce, both as
 * read inside the transaction. In this order: a device not active is
 * NOT_ACTIVE; the same counter with the fingerprint of the last accepted
 * exchange is a retry (its nonce is used, by that exchange); any other
 * evidence over a used nonce is a replay, NONCE_REUSED; a counter not above
 * the highest over a nonce that expires before the last accepted exchange's
 * (so was issued before it, in an earlier second: one TTL for all) is older
 * evidence, NONCE_SUPERSEDED. A clone answers a fresh nonce: a replay or a
 * late copy of an exchange proves nothing about a second TPM state, and
 * anyone who saw one must not take the device down. Then a clock that went
 * back is CLOCK_REGRESSION; a counter strictly above the highest accepted
 * one is accepted (gaps are normal); anything else is a clone. */
tether_store_exchange_decision_t tether_store_exchange_decide(
    const tether_store_exchange_device_t *row, const tether_store_exchange_t *exchange,
    bool nonce_used);

/* The alert details of a clone sighting, a malloc'd JSON text:
 * {"reason", "last_accepted": sighting|null, "this": sighting} with each
 * sighting {"counter", "clock_info": {"clock", "resetCount", "restartCount",
 * "safe"}, "source_address", "time"}; counters and clocks as exact integers. */
TETHER_MUST_CHECK tether_status_t tether_store_sighting_details(
    const char *reason, const tether_store_sighting_t *last, const tether_store_sighting_t *now,
    char **json);

/* The device with its enrolment and exchange state. TETHER_ERR_NOT_FOUND for
 * an unknown id. */
TETHER_MUST_CHECK tether_status_t tether_store_exchange_device_get(
    tether_store_t *store, const char *id, tether_store_exchange_device_t *device);

/*
 * Records a verified exchange in one transaction (BEGIN IMMEDIATE; committed
 * durably before the caller answers): the device row and whether the nonce
 * was used are read again and tether_store_exchange_decide()d on.
 * - ACCEPT: highest_counter, the clock, the PCR reference (if none yet), the
 *   fingerprint, address and time of this sighting are stored, the token
 *   is recorded in issued_tokens, and the nonce is used up (table
 *   used_nonces, until it expires; expired entries are purged);
 * - RETRY: nothing changes; result->token is the token issued for it
 *   (TETHER_ERR_NOT_FOUND if that row is gone);
 * - CLONE and CLOCK_REGRESSION: the device is quarantined with a status
 *   reason naming the sighting, every unexpired token of it is revoked, the
 *   revocation feed gets an entry and an alert ("clone_detected" or
 *   "clock_regression", details from tether_store_sighting_details) is added;
 * - NOT_ACTIVE, NONCE_REUSED and NONCE_SUPERSEDED: nothing changes.
 *
 * Group commit: exchanges recorded from several threads while a commit is
 * in flight wait for it to end, then the first of them records all that
 * are waiting (up to TETHER_STORE_GROUP_COMMIT_MAX, in arrival order) in
 * one transaction and one durable commit, each in a savepoint of its own
 * (exchange_batch): every exchange is decided as if alone and in that
 * order, one failing or quarantining never undoes another, and no caller
 * returns before the commit that holds its exchange (a failed commit fails
 * every exchange in it). No exchange waits for company: one alone is
 * committed at once. The store's "exchange" duration is timed from the
 * call, so it includes the wait for the commit in flight.
 */
#define TETHER_STORE_GROUP_COMMIT_MAX 64

TETHER_MUST_CHECK tether_status_t tether_store_exchange_record(
    tether_store_t *store, const tether_store_exchange_t *exchange, int64_t now,
    tether_store_exchange_result_t *result);

/* The issued token with this jti (for introspection and retries);
 * TETHER_ERR_NOT_FOUND when unknown. */
TETHER_MUST_CHECK tether_status_t tether_store_issued_token_get(tether_store_t *store,
                                                                const char *jti,
                                                                tether_store_issued_token_t *token);

/* One exchange of a group commit (tether_store_ops_t.exchange_batch). */
typedef struct tether_store_exchange_item {
    const struct tether_store_exchange *exchange; /* borrowed for the call */
    int64_t now;
    struct tether_store_exchange_result *result; /* meaningful when status is TETHER_OK */
    tether_status_t status;                      /* set by exchange_batch */
} tether_store_exchange_item_t;

#endif
