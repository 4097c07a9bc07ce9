/*
 * What the store's implementations (SQLite, PostgreSQL) share: the rules
 * that do not depend on the database, written once (store.c). Not for any
 * other file: everything else goes through store.h.
 */
#ifndef TETHER_FLEET_STORE_BACKEND_H
#define TETHER_FLEET_STORE_BACKEND_H

#include <stdint.h>

#include "store.h"

/* The admin_tokens roles column's text (tether_roles_format's canonical
 * "read,fleet,security") for a valid, non-empty set of known roles, after
 * checking hash and name are given. */
tether_status_t tether_store_admin_token_roles(const uint8_t *hash, unsigned roles,
                                               const char *name, char role_text[64]);

/* Which status an action leads to, or TETHER_ERR_CONFLICT from this one. */
tether_status_t tether_store_status_after(tether_device_action_t action,
                                          tether_device_status_t from,
                                          tether_device_status_t *to);

/* The webhook names (each 1 to TETHER_STORE_WEBHOOK_NAME_MAX bytes) as a
 * JSON array, into *out (malloc'd; the caller frees it), for the one
 * statement of each store that takes the set. */
tether_status_t tether_store_webhook_names_json(const char *const *names, size_t count,
                                                char **out);

/* Whether an exchange to record is complete and within its bounds. */
bool tether_store_exchange_valid(const tether_store_exchange_t *ex);
/* The alert kind of a clone decision (CLONE or CLOCK_REGRESSION). */
const char *tether_store_clone_alert_kind(tether_store_exchange_decision_t decision);
/* The quarantine's status reason of a clone decision, and its alert's
 * details (malloc'd JSON; the caller frees it). */
tether_status_t tether_store_clone_reason(const tether_store_exchange_t *ex,
                                          const tether_store_exchange_device_t *row,
                                          tether_store_exchange_decision_t decision,
                                          char reason[TETHER_STORE_REASON_MAX + 1],
                                          char **details);
/* Whether an issuer key to record has a thumbprint kid and a file. */
bool tether_store_issuer_key_valid(const tether_store_issuer_key_t *key);

/* ---- usage reconciliation and thresholds (store_usage_rules.c) ---- */

/* Bytes of an alert's details JSON that the rules below write. */
#define TETHER_STORE_DETAILS_MAX 768

/* The usage_mismatch quarantine's status reason and its alert's details,
 * for a comparison that found more accepted than made under action. */
void tether_store_usage_mismatch_text(const tether_store_usage_comparison_t *c,
                                      tether_store_usage_action_t action,
                                      char reason[TETHER_STORE_REASON_MAX + 1],
                                      char details[TETHER_STORE_DETAILS_MAX]);

/* Tokens the usage_unreported check alerts per call at most; the next
 * check goes on. */
#define TETHER_STORE_UNREPORTED_BATCH 100

/* A token whose final usage count never came (usage_unreported). */
typedef struct tether_store_unreported {
    char jti[TETHER_STORE_JTI_SIZE];
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    int64_t exp;
    int64_t last_exchange;
    int64_t gateway_accepted;
} tether_store_unreported_t;

void tether_store_unreported_details(const tether_store_unreported_t *u,
                                     char details[TETHER_STORE_DETAILS_MAX]);

/* Where the usage_unreported check goes on (in each store's memory, under
 * its lock): the tokens whose exp is below from were examined. Unset (the
 * first check after a start), the check begins at the report retention's
 * start. */
typedef struct tether_store_unreported_cursor {
    int64_t from;
    bool set;
} tether_store_unreported_cursor_t;

/* The window of exp the check at now examines: [*from, *to), the tokens
 * expired since the last check by more than grace plus the leeway, within
 * the report retention; empty when *from >= *to. */
void tether_store_unreported_window(const tether_store_unreported_cursor_t *cursor, int64_t now,
                                    int64_t grace, int64_t *from, int64_t *to);

/* After a committed check of [from, to) that alerted count tokens (in
 * order of exp, the last one's last_exp): a full batch goes on from
 * last_exp (those alerted are not alerted again), else from to. */
void tether_store_unreported_advance(tether_store_unreported_cursor_t *cursor, int64_t to,
                                     size_t count, int64_t last_exp);

/* Per-second usage is kept a day's window plus a margin for late reports. */
#define TETHER_STORE_USAGE_SECONDS_KEPT (2 * 24 * 3600)

/* A rate threshold: the usage_seconds column it sums over its window. */
typedef struct tether_store_rate_kind {
    tether_policy_threshold_kind_t kind;
    const char *column; /* of usage_seconds, a constant */
    int64_t window;     /* seconds */
    bool money;         /* the value is in millionths (spend) */
    /* A count of refusals ("tried N times"): crosses when the figure
     * reaches the value, and only at an entry that adds to it; what names
     * one in the alert's reason. NULL for rates (above the value, at
     * every entry). */
    const char *tries;
    /* The key of threshold_alerts when not the kind's name: gateways'
     * source refusals alert apart from the exchange's (an exchange from
     * outside must not hide a gateway's sightings within its hour). */
    const char *mark;
} tether_store_rate_kind_t;

#define TETHER_STORE_RATE_KIND_COUNT 6
extern const tether_store_rate_kind_t tether_store_rate_kinds[TETHER_STORE_RATE_KIND_COUNT];

/* Whether kind k is evaluated at entry e: rates at every entry, a tries
 * kind only at an entry that adds to its figure. */
bool tether_store_rate_applies(const tether_store_rate_kind_t *k,
                               const tether_store_usage_entry_t *e);
/* Whether observed crosses t. A count kind's value is a whole number: its
 * micros / 10^6. */
bool tether_store_rate_crosses(const tether_store_rate_kind_t *k,
                               const tether_policy_threshold_t *t, int64_t observed);

/* What crossed: the threshold, the observed figure (JSON), the window
 * and the sentence that becomes the alert's and the quarantine's reason. */
typedef struct tether_store_crossing {
    const char *device_id;
    tether_policy_threshold_kind_t kind;
    const tether_policy_threshold_t *threshold;
    const char *observed; /* a JSON value */
    int64_t window;       /* seconds */
    int64_t end;          /* the window's last second */
    const char *reason;
    const char *mark;     /* threshold_alerts' key; NULL: the kind's name */
} tether_store_crossing_t;

/* The key of threshold_alerts that a crossing marks. */
const char *tether_store_crossing_mark(const tether_store_crossing_t *c);

/* How long an exchange from outside the policy's sources is not alerted
 * again (a device exchanges every few minutes). */
#define TETHER_STORE_SOURCE_ALERT_WINDOW 3600

/* The crossing of rate k over its window ending at end: figure (32 bytes)
 * and reason get its texts, which c points to. */
void tether_store_rate_crossing(tether_store_crossing_t *c, const char *device_id,
                                const tether_store_rate_kind_t *k,
                                const tether_policy_threshold_t *t, int64_t observed, int64_t end,
                                char figure[32], char reason[TETHER_STORE_REASON_MAX + 1]);
/* The crossing of an exchange from outside the policy's sources. */
void tether_store_source_crossing(tether_store_crossing_t *c, const tether_store_exchange_t *ex,
                                  int64_t now, char address[TETHER_STORE_ADDRESS_SIZE + 2],
                                  char reason[TETHER_STORE_REASON_MAX + 1]);
/* The threshold_exceeded alert's details of a crossing. */
void tether_store_crossing_details(const tether_store_crossing_t *c,
                                   char details[TETHER_STORE_DETAILS_MAX]);

/* device_eventlogs' name of an event log kind (tether_store_eventlog_kind_t);
 * NULL for any other value. */
const char *tether_store_eventlog_kind_name(int kind);

/* Every dispatch: TETHER_ERR_STATE on a store never opened. */
#define STORE_CALL(store, op, ...)                                                            \
    (((store) == NULL || (store)->ops == NULL || (store)->ops->op == NULL)                   \
         ? TETHER_ERR_STATE                                                                   \
         : (store)->ops->op((store)->impl, __VA_ARGS__))

#endif
