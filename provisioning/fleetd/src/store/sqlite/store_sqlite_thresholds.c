/*
 * Anomaly thresholds on SQLite (schema versions 11 and 12;
 * provisioning/fleetd README, "Anomaly thresholds"): inside a usage
 * report's transaction, each entry's figures are added to its device's
 * second of last_seen, and the thresholds of the device's policy are
 * evaluated over the window that ends at that second: the rates, and the
 * refusals gateways counted (refused_models, source_networks).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store_backend.h"
#include "store_sqlite_internal.h"
#include "tether/fleet_vocabulary.h"

/* The observed figure over (end - window, end] of one column. */
static tether_status_t window_sum(sqlite_store_t *s, const char *device_id,
                                  const tether_store_rate_kind_t *k, int64_t end, int64_t *observed)
{
    char sql[160];

    *observed = 0;
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(%s), 0) FROM usage_seconds"
             " WHERE device_id = ?1 AND second > ?2 AND second <= ?3",
             k->column);
    return tether_sqlite_query_one(s, "sum usage window", sql,
                                   SQL_ARGS(SQL_TEXT(device_id), SQL_INT(end - k->window),
                                            SQL_INT(end)),
                                   tether_sqlite_read_int64, observed);
}

/* The alert (once per device, kind and window: a window overlapping the
 * one that last alerted does not alert again) and, at every crossing, the
 * action quarantine through the clone path's containment (a device put
 * back to active within the window is quarantined again). */
static tether_status_t crossed_tx(sqlite_store_t *s, const tether_store_crossing_t *c, int64_t now,
                                  bool *alerted, bool *quarantined)
{
    static const char mark[] =
        "INSERT INTO threshold_alerts (device_id, kind, window_end) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (device_id, kind) DO UPDATE SET window_end = excluded.window_end"
        " WHERE threshold_alerts.window_end <= excluded.window_end - ?4";
    char details[TETHER_STORE_DETAILS_MAX];
    tether_status_t rc;

    *alerted = false;
    *quarantined = false;
    rc = tether_sqlite_run(s, "mark threshold alerted", mark,
                           SQL_ARGS(SQL_TEXT(c->device_id), SQL_TEXT(tether_store_crossing_mark(c)),
                                    SQL_INT(c->end), SQL_INT(c->window)));
    if (rc == TETHER_OK && sqlite3_changes(s->db) == 1) {
        tether_store_crossing_details(c, details);
        rc = tether_sqlite_alert_insert(s, c->device_id, TETHER_FLEET_ALERT_THRESHOLD_EXCEEDED,
                                        details, now);
        *alerted = rc == TETHER_OK;
    }
    if (rc == TETHER_OK && c->threshold->action == TETHER_POLICY_ACTION_QUARANTINE)
        rc = tether_sqlite_quarantine_tx(s, c->device_id, c->reason, now, quarantined);
    return rc;
}

/* A rate over its window crossed. */
static tether_status_t rate_crossed_tx(sqlite_store_t *s, const char *device_id,
                                       const tether_store_rate_kind_t *k,
                                       const tether_policy_threshold_t *t,
                                       int64_t observed, int64_t end, int64_t now,
                                       tether_store_usage_result_t *result)
{
    char reason[TETHER_STORE_REASON_MAX + 1], figure[32];
    tether_store_crossing_t c;
    bool alerted = false, quarantined = false;
    tether_status_t rc;

    tether_store_rate_crossing(&c, device_id, k, t, observed, end, figure, reason);
    rc = crossed_tx(s, &c, now, &alerted, &quarantined);
    result->thresholds += alerted ? 1 : 0;
    result->quarantined = result->quarantined || quarantined;
    return rc;
}

tether_status_t tether_sqlite_source_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                        int64_t now, tether_store_exchange_result_t *result,
                                        bool *quarantined)
{
    char reason[TETHER_STORE_REASON_MAX + 1], address[TETHER_STORE_ADDRESS_SIZE + 2];
    tether_store_crossing_t c;

    tether_store_source_crossing(&c, ex, now, address, reason);
    return crossed_tx(s, &c, now, &result->source_alerted, quarantined);
}

static tether_status_t read_policy_document(void *arg, sqlite3_stmt *row)
{
    const void *text = sqlite3_column_text(row, 0);
    char why[128];

    if (text == NULL)
        return TETHER_ERR_STORE;
    return tether_policy_document_parse(text, (size_t)sqlite3_column_bytes(row, 0), arg, why,
                                        sizeof(why));
}

tether_status_t tether_sqlite_thresholds_tx(sqlite_store_t *s, const char *device_id,
                                            const tether_store_usage_entry_t *e, int64_t now,
                                            tether_store_usage_result_t *result)
{
    static const char add[] =
        "INSERT INTO usage_seconds (device_id, second, requests, tokens, cost_micros,"
        " refused_models, refused_sources)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (device_id, second) DO UPDATE SET"
        " requests = requests + excluded.requests, tokens = tokens + excluded.tokens,"
        " cost_micros = cost_micros + excluded.cost_micros,"
        " refused_models = refused_models + excluded.refused_models,"
        " refused_sources = refused_sources + excluded.refused_sources";
    static const char policy[] =
        "SELECT p.document FROM devices d JOIN policies p ON p.name = d.policy"
        " WHERE d.id = ? ORDER BY p.version DESC LIMIT 1";
    tether_policy_document_t doc;
    tether_status_t rc;

    memset(&doc, 0, sizeof(doc));
    rc = tether_sqlite_run(s, "purge usage seconds",
                           "DELETE FROM usage_seconds WHERE device_id = ? AND second < ?",
                           SQL_ARGS(SQL_TEXT(device_id),
                                    SQL_INT(now - TETHER_STORE_USAGE_SECONDS_KEPT)));
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "count usage second", add,
                               SQL_ARGS(SQL_TEXT(device_id), SQL_INT(e->last_seen),
                                        SQL_INT(e->requests),
                                        SQL_INT(e->prompt_tokens + e->completion_tokens),
                                        SQL_INT(e->cost_micros), SQL_INT(e->refused_models),
                                        SQL_INT(e->refused_sources)));
    if (rc == TETHER_OK)
        rc = tether_sqlite_query_one(s, "read device policy", policy, SQL_ARGS(SQL_TEXT(device_id)),
                                     read_policy_document, &doc);
    if (rc == TETHER_ERR_NOT_FOUND) /* a device without a policy row: no threshold */
        rc = TETHER_OK;
    for (size_t i = 0; rc == TETHER_OK && i < TETHER_STORE_RATE_KIND_COUNT; i++) {
        const tether_store_rate_kind_t *k = &tether_store_rate_kinds[i];
        const tether_policy_threshold_t *t = &doc.thresholds[k->kind];
        int64_t observed = 0;

        if (!t->set || !tether_store_rate_applies(k, e))
            continue;
        rc = window_sum(s, device_id, k, e->last_seen, &observed);
        if (rc == TETHER_OK && tether_store_rate_crosses(k, t, observed))
            rc = rate_crossed_tx(s, device_id, k, t, observed, e->last_seen, now, result);
    }
    return rc;
}
