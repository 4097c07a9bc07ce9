/*
 * Anomaly thresholds on PostgreSQL (schema version 12): the rules of
 * store_sqlite_thresholds.c, inside a usage report's transaction. Replicas
 * counting reports of one device at once serialize on its usage_seconds
 * and threshold_alerts rows, so a window alerts once.
 */
#include <stdio.h>
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"
#include "tether/fleet_vocabulary.h"

/* The observed figure over (end - window, end] of one column. */
static tether_status_t window_sum(tether_pg_t *db, const char *device_id,
                                  const tether_store_rate_kind_t *k, int64_t end,
                                  int64_t *observed)
{
    char sql[160];

    *observed = 0;
    /* k->column is a constant of tether_store_rate_kinds, never input. */
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(%s), 0) FROM usage_seconds"
             " WHERE device_id = $1 AND second > $2 AND second <= $3",
             k->column);
    return tether_pg_query_one(db, "sum usage window", sql,
                               PG_ARGS(PG_TEXT(device_id), PG_INT(end - k->window), PG_INT(end)),
                               tether_pg_read_int64, observed);
}

/* The alert once per device, kind and window, and with action quarantine
 * the containment at every crossing (store_sqlite_thresholds.c). */
static tether_status_t crossed_tx(tether_pg_t *db, const tether_store_crossing_t *c, int64_t now,
                                  bool *alerted, bool *quarantined)
{
    static const char mark[] =
        "INSERT INTO threshold_alerts (device_id, kind, window_end) VALUES ($1, $2, $3)"
        " ON CONFLICT (device_id, kind) DO UPDATE SET window_end = excluded.window_end"
        " WHERE threshold_alerts.window_end <= excluded.window_end - $4";
    char details[TETHER_STORE_DETAILS_MAX];
    uint64_t changed = 0;
    tether_status_t rc;

    *alerted = false;
    *quarantined = false;
    rc = tether_pg_run(db, "mark threshold alerted", mark,
                       PG_ARGS(PG_TEXT(c->device_id), PG_TEXT(tether_store_crossing_mark(c)),
                               PG_INT(c->end), PG_INT(c->window)),
                       &changed);
    if (rc == TETHER_OK && changed == 1) {
        tether_store_crossing_details(c, details);
        rc = tether_pg_alert_insert(db, c->device_id, TETHER_FLEET_ALERT_THRESHOLD_EXCEEDED,
                                    details, now);
        *alerted = rc == TETHER_OK;
    }
    if (rc == TETHER_OK && c->threshold->action == TETHER_POLICY_ACTION_QUARANTINE)
        rc = tether_pg_quarantine_tx(db, c->device_id, c->reason, now, quarantined);
    return rc;
}

tether_status_t tether_pg_source_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                    int64_t now, tether_store_exchange_result_t *result,
                                    bool *quarantined)
{
    char reason[TETHER_STORE_REASON_MAX + 1], address[TETHER_STORE_ADDRESS_SIZE + 2];
    tether_store_crossing_t c;

    tether_store_source_crossing(&c, ex, now, address, reason);
    return crossed_tx(db, &c, now, &result->source_alerted, quarantined);
}

static tether_status_t read_policy_document(void *arg, const tether_pg_row_t *row)
{
    const char *text = tether_pg_text(row, 0);
    char why[128];

    if (text == NULL)
        return TETHER_ERR_STORE;
    return tether_policy_document_parse((const uint8_t *)text, strlen(text), arg, why,
                                        sizeof(why));
}

tether_status_t tether_pg_thresholds_tx(tether_pg_t *db, const char *device_id,
                                        const tether_store_usage_entry_t *e, int64_t now,
                                        tether_store_usage_result_t *result)
{
    static const char add[] =
        "INSERT INTO usage_seconds (device_id, second, requests, tokens, cost_micros,"
        " refused_models, refused_sources)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, second) DO UPDATE SET"
        " requests = usage_seconds.requests + excluded.requests,"
        " tokens = usage_seconds.tokens + excluded.tokens,"
        " cost_micros = usage_seconds.cost_micros + excluded.cost_micros,"
        " refused_models = usage_seconds.refused_models + excluded.refused_models,"
        " refused_sources = usage_seconds.refused_sources + excluded.refused_sources";
    static const char policy[] =
        "SELECT p.document FROM devices d JOIN policies p ON p.name = d.policy"
        " WHERE d.id = $1 ORDER BY p.version DESC LIMIT 1";
    tether_policy_document_t doc;
    tether_status_t rc;

    memset(&doc, 0, sizeof(doc));
    rc = tether_pg_run(db, "purge usage seconds",
                       "DELETE FROM usage_seconds WHERE device_id = $1 AND second < $2",
                       PG_ARGS(PG_TEXT(device_id), PG_INT(now - TETHER_STORE_USAGE_SECONDS_KEPT)),
                       NULL);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "count usage second", add,
                           PG_ARGS(PG_TEXT(device_id), PG_INT(e->last_seen), PG_INT(e->requests),
                                   PG_INT(e->prompt_tokens + e->completion_tokens),
                                   PG_INT(e->cost_micros), PG_INT(e->refused_models),
                                   PG_INT(e->refused_sources)),
                           NULL);
    if (rc == TETHER_OK)
        rc = tether_pg_query_one(db, "read device policy", policy, PG_ARGS(PG_TEXT(device_id)),
                                 read_policy_document, &doc);
    if (rc == TETHER_ERR_NOT_FOUND) /* a device without a policy row: no threshold */
        rc = TETHER_OK;
    for (size_t i = 0; rc == TETHER_OK && i < TETHER_STORE_RATE_KIND_COUNT; i++) {
        const tether_store_rate_kind_t *k = &tether_store_rate_kinds[i];
        const tether_policy_threshold_t *t = &doc.thresholds[k->kind];
        char reason[TETHER_STORE_REASON_MAX + 1], figure[32];
        tether_store_crossing_t c;
        bool alerted = false, quarantined = false;
        int64_t observed = 0;

        if (!t->set || !tether_store_rate_applies(k, e))
            continue;
        rc = window_sum(db, device_id, k, e->last_seen, &observed);
        if (rc != TETHER_OK || !tether_store_rate_crosses(k, t, observed))
            continue;
        tether_store_rate_crossing(&c, device_id, k, t, observed, e->last_seen, figure, reason);
        rc = crossed_tx(db, &c, now, &alerted, &quarantined);
        result->thresholds += alerted ? 1 : 0;
        result->quarantined = result->quarantined || quarantined;
    }
    return rc;
}
