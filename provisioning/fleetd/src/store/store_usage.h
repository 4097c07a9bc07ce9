/*
 * The store's usage counts: the devices' (reconciliation) and the
 * relying parties' reports.
 */
#ifndef TETHER_FLEET_STORE_USAGE_H
#define TETHER_FLEET_STORE_USAGE_H

#include "store_types.h"

/* ---- usage reconciliation (DESIGN.md, "Usage counters and
 * reconciliation"; schema version 7, store_sqlite_reconcile.c) ----
 *
 * Each exchange carries the device's counts per recent token (its usage
 * document). Gateways only accept a request the device signed a proof for
 * (or proxied) first, so the requests gateways reported before the fleet
 * issued an exchange's nonce are at most what the device counted at that
 * exchange (the agent copies its counts after the nonce came): that is the
 * comparison made at the exchange. The requests are kept per second of
 * receipt (token_usage_received, schema version 17), so a token reported
 * again after the nonce, as a stolen token in use during the exchange is,
 * keeps its earlier requests compared. Once a token has expired (plus
 * TETHER_STORE_USAGE_LEEWAY, the longest clock leeway a gateway allows)
 * before the nonce, the device's count is final, and every gateway report,
 * however late, is compared with it when it arrives. More accepted than
 * made: someone else holds the token. */

/* Seconds a gateway may accept a token past its exp (tether-gate's
 * clock_leeway_seconds is at most 60). */
#define TETHER_STORE_USAGE_LEEWAY 60

typedef enum tether_store_usage_action {
    TETHER_STORE_USAGE_QUARANTINE = 0, /* alert, and quarantine the device (the clone path) */
    TETHER_STORE_USAGE_ALERT,          /* alert only */
} tether_store_usage_action_t;

/* One token of a usage document. */
typedef struct tether_store_device_usage {
    const char *jti; /* tokens the fleet did not issue to the device are ignored */
    int64_t proofs;
    int64_t requests;
    int64_t bearer;
} tether_store_device_usage_t;

/* A comparison that found more accepted than made. */
typedef struct tether_store_usage_comparison {
    char jti[TETHER_STORE_JTI_SIZE];
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    int64_t device_made;      /* max(proofs, requests): each request carries its own proof */
    int64_t gateway_accepted; /* requests the gateways reported, as compared */
    int64_t bearer;           /* times the device handed the token out as a bearer token */
    bool final;               /* the device's count came after the token expired */
} tether_store_usage_comparison_t;

/* ---- usage reports of relying parties (table token_usage, usage_reports;
 * schema version 6, store_sqlite_usage.c) ---- */

#define TETHER_STORE_USAGE_REPORT_ID_SIZE 65 /* 16 to 64 characters + NUL */
/* How long a report id is remembered: a relying party's retry of a report
 * whose answer it lost (within seconds or minutes) is counted once. */
#define TETHER_STORE_USAGE_REPORT_RETENTION (7 * 24 * 3600)
/* A total of token_usage stays a number a JSON double carries exactly. */
#define TETHER_STORE_USAGE_TOTAL_MAX 9007199254740991LL /* 2^53 - 1 */

/* What a relying party counted for one token since its last report. */
typedef struct tether_store_usage_entry {
    char jti[TETHER_STORE_JTI_SIZE];
    char device_id[TETHER_STORE_DEVICE_ID_SIZE]; /* as the relying party read it in the token */
    int64_t requests;          /* forwarded (answered or failed upstream) */
    int64_t refused;           /* refused by a ceiling after authorization */
    int64_t refused_models;    /* of refused: a model outside the allow lists */
    int64_t refused_sources;   /* of refused: a client outside the token's sources */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micros;       /* millionths of the relying party's currency */
    int64_t first_seen;        /* Unix seconds */
    int64_t last_seen;
} tether_store_usage_entry_t;

/* One report, borrowed for the call. */
typedef struct tether_store_usage_report {
    int64_t relying_party;  /* the admin token id of the caller */
    const char *gateway;    /* the name it gives itself */
    const char *report_id;
    uint8_t body_sha256[TETHER_STORE_HASH_SIZE]; /* tells a retry from another report */
    const tether_store_usage_entry_t *entries;
    size_t entry_count;
    tether_store_usage_action_t usage_action; /* for a token found used by someone else */
} tether_store_usage_report_t;

typedef enum tether_store_usage_decision {
    TETHER_STORE_USAGE_ACCEPTED = 0, /* counted */
    TETHER_STORE_USAGE_DUPLICATE,    /* this report (same id, same body) was counted already */
    TETHER_STORE_USAGE_ID_REUSED,    /* the id names another report of this relying party:
                                        nothing changed */
} tether_store_usage_decision_t;

typedef struct tether_store_usage_result {
    tether_store_usage_decision_t decision;
    size_t flagged; /* ACCEPTED: entries whose jti the fleet did not issue to that device */
    size_t mismatches; /* ACCEPTED: tokens now above their device's final count (alerted) */
    bool quarantined;  /* a device was quarantined for one (usage_action quarantine) or
                          for a threshold with action quarantine */
    size_t thresholds; /* ACCEPTED: rate thresholds newly crossed (alerted) */
} tether_store_usage_result_t;

/* A line of tether_store_usage_list: one device (device_id NULL), or one
 * token of a device. Strings live until the callback returns. */
typedef struct tether_store_usage_row {
    const char *device_id;
    const char *jti;       /* per-token lines; NULL for a device's line */
    int64_t tokens;        /* distinct tokens (per-device lines) */
    int64_t requests;
    int64_t refused;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micros;
    int64_t first_seen;
    int64_t last_seen;
    bool flagged;          /* some usage reported under another device or an unknown jti */
} tether_store_usage_row_t;

typedef int (*tether_store_usage_cb)(void *arg, const tether_store_usage_row_t *row);

/*
 * Counts a report in one transaction, or nothing of it:
 * - a report id this relying party sent within the retention is not
 *   counted again: DUPLICATE when the body is the same (a retry after a
 *   lost answer), ID_REUSED otherwise;
 * - else each entry is added to its token's totals for this relying party
 *   (first_seen the earliest, last_seen the latest). The usage belongs to
 *   the device the fleet issued the jti to; an entry whose jti the fleet
 *   never issued, or issued to another device than the entry names, is
 *   counted too (under the fleet's device, or the named one when the jti
 *   is unknown), flagged, and raises an alert "usage_device_mismatch":
 *   the relying party served those requests, and hiding them would hide
 *   a token used where it should not be. result->flagged counts them;
 * - report ids older than TETHER_STORE_USAGE_REPORT_RETENTION are purged.
 * A total past TETHER_STORE_USAGE_TOTAL_MAX is TETHER_ERR_TOO_LARGE with
 * nothing changed.
 */
TETHER_MUST_CHECK tether_status_t tether_store_usage_report_record(
    tether_store_t *store, const tether_store_usage_report_t *report, int64_t now,
    tether_store_usage_result_t *result);

/* The usage_unreported check (fleetd's service loop): every token that
 * gateways reported requests on, of an active device that has made no
 * exchange since the token expired, now more than grace seconds after its
 * exp (plus TETHER_STORE_USAGE_LEEWAY; tokens expired within
 * TETHER_STORE_USAGE_REPORT_RETENTION, at most 100 per call), gets one
 * alert "usage_unreported"
 * {"jti", "gateway_accepted", "exp", "last_exchange"}: the device stopped
 * reporting while its tokens were in use. Alert only: a device switched off
 * is no thief. *alerted counts the new alerts. Each call examines the
 * tokens whose window (exp + leeway + grace) closed since the store's last
 * check (a cursor in the store's memory; after a start, the retention's
 * window), by issued_tokens' exp index and token_usage's jti index, never
 * a whole table: a token that did not qualify when its window closed (the
 * device exchanged after exp, was not active, or no gateway had reported
 * on it yet) is not examined again. */
TETHER_MUST_CHECK tether_status_t tether_store_usage_unreported_check(tether_store_t *store,
                                                                     int64_t now, int64_t grace,
                                                                     size_t *alerted);

/* Usage with last_seen >= since, summed over relying parties, at most
 * limit lines: per device (device_id NULL; ordered by device), or per token
 * of device_id (ordered by first_seen). */
TETHER_MUST_CHECK tether_status_t tether_store_usage_list(tether_store_t *store,
                                                          const char *device_id, int64_t since,
                                                          unsigned limit,
                                                          tether_store_usage_cb cb, void *arg);

#endif
