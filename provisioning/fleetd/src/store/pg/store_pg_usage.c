/* Usage reports of relying parties in the PostgreSQL store (store_usage.h, "usage
 * reports"; tables token_usage and usage_reports, schema version 6): the
 * rules of store_sqlite_usage.c. A report id is counted once across
 * replicas: the report's transaction reads it and inserts it, and of two
 * replicas counting the same report at once one commits and the other is
 * retried and finds it counted. */
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"

#define ALERT_USAGE_DEVICE_MISMATCH "usage_device_mismatch"

static tether_status_t read_text_device(void *arg, const tether_pg_row_t *row)
{
    return tether_pg_copy_text(row, 0, arg, TETHER_STORE_DEVICE_ID_SIZE);
}

typedef struct report_call {
    const tether_store_usage_report_t *report;
    int64_t now;
    tether_store_usage_result_t *result;
} report_call_t;

static tether_status_t read_seen(void *arg, const tether_pg_row_t *row)
{
    report_call_t *call = arg;

    call->result->decision = tether_pg_hash_matches(row, 0, call->report->body_sha256)
                                 ? TETHER_STORE_USAGE_DUPLICATE
                                 : TETHER_STORE_USAGE_ID_REUSED;
    return TETHER_OK;
}

/* Adds one entry to its token's totals; *flagged when the fleet did not
 * issue the jti to the device the entry names (an alert is added), else
 * the device's thresholds are evaluated with it. */
static tether_status_t add_entry(tether_pg_t *db, const tether_store_usage_report_t *report,
                                 const tether_store_usage_entry_t *e, int64_t now,
                                 tether_store_usage_result_t *result, bool *flagged)
{
    static const char upsert[] =
        "INSERT INTO token_usage (relying_party, jti, device_id, reported_device_id, flagged,"
        " gateway, requests, refused, prompt_tokens, completion_tokens, cost_micros,"
        " first_seen, last_seen, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
        " $11, $12, $13, $14) ON CONFLICT (relying_party, jti) DO UPDATE SET"
        " flagged = greatest(token_usage.flagged, excluded.flagged), gateway = excluded.gateway,"
        " requests = token_usage.requests + excluded.requests,"
        " refused = token_usage.refused + excluded.refused,"
        " prompt_tokens = token_usage.prompt_tokens + excluded.prompt_tokens,"
        " completion_tokens = token_usage.completion_tokens + excluded.completion_tokens,"
        " cost_micros = token_usage.cost_micros + excluded.cost_micros,"
        " first_seen = least(token_usage.first_seen, excluded.first_seen),"
        " last_seen = greatest(token_usage.last_seen, excluded.last_seen),"
        " received_at = excluded.received_at";
    /* Reconciliation compares the requests received before a nonce. */
    static const char received[] =
        "INSERT INTO token_usage_received (relying_party, jti, received_at, requests)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (relying_party, jti, received_at) DO UPDATE SET"
        " requests = token_usage_received.requests + excluded.requests";
    static const char alert[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES ($1, '"
        ALERT_USAGE_DEVICE_MISMATCH "', json_build_object('relying_party', $2::bigint,"
        " 'gateway', $3::text, 'report_id', $4::text, 'jti', $5::text,"
        " 'reported_device', $6::text, 'issued_device', $7::text)::text, $8)";
    char issued[TETHER_STORE_DEVICE_ID_SIZE] = "";
    const char *device;
    tether_status_t rc;

    *flagged = false;
    rc = tether_pg_query_one(db, "read issued token",
                             "SELECT device_id FROM issued_tokens WHERE jti = $1",
                             PG_ARGS(PG_TEXT(e->jti)), read_text_device, issued);
    if (rc != TETHER_OK && rc != TETHER_ERR_NOT_FOUND)
        return rc;
    *flagged = rc == TETHER_ERR_NOT_FOUND || strcmp(issued, e->device_id) != 0;
    device = rc == TETHER_OK ? issued : e->device_id;
    rc = tether_pg_run(db, "count token usage", upsert,
                       PG_ARGS(PG_INT(report->relying_party), PG_TEXT(e->jti), PG_TEXT(device),
                               PG_TEXT(e->device_id), PG_INT(*flagged), PG_TEXT(report->gateway),
                               PG_INT(e->requests), PG_INT(e->refused), PG_INT(e->prompt_tokens),
                               PG_INT(e->completion_tokens), PG_INT(e->cost_micros),
                               PG_INT(e->first_seen), PG_INT(e->last_seen), PG_INT(now)),
                       NULL);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "count token usage by second", received,
                           PG_ARGS(PG_INT(report->relying_party), PG_TEXT(e->jti), PG_INT(now),
                                   PG_INT(e->requests)),
                           NULL);
    /* The only constraint an upsert can break: a total past 2^53 - 1. */
    if (rc == TETHER_ERR_CONFLICT)
        return TETHER_ERR_TOO_LARGE;
    if (rc == TETHER_OK && !*flagged)
        return tether_pg_thresholds_tx(db, issued, e, now, result);
    if (rc == TETHER_OK) {
        rc = tether_pg_run(db, "add usage alert", alert,
                           PG_ARGS(issued[0] != '\0' ? PG_TEXT(issued) : PG_NULL,
                                   PG_INT(report->relying_party), PG_TEXT(report->gateway),
                                   PG_TEXT(report->report_id), PG_TEXT(e->jti),
                                   PG_TEXT(e->device_id),
                                   issued[0] != '\0' ? PG_TEXT(issued) : PG_NULL, PG_INT(now)),
                           NULL);
        db->alerted |= rc == TETHER_OK;
    }
    return rc;
}

static tether_status_t report_tx(tether_pg_t *db, void *arg)
{
    static const char seen[] = "SELECT body_sha256 FROM usage_reports "
                               "WHERE relying_party = $1 AND report_id = $2";
    static const char insert[] =
        "INSERT INTO usage_reports (relying_party, report_id, body_sha256, entries,"
        " received_at) VALUES ($1, $2, $3, $4, $5)";
    report_call_t *call = arg;
    const tether_store_usage_report_t *report = call->report;
    tether_store_usage_result_t *result = call->result;
    tether_status_t rc;

    memset(result, 0, sizeof(*result));
    if ((rc = tether_pg_run(db, "purge usage report ids",
                            "DELETE FROM usage_reports WHERE received_at < $1",
                            PG_ARGS(PG_INT(call->now - TETHER_STORE_USAGE_REPORT_RETENTION)),
                            NULL)) != TETHER_OK)
        return rc;
    rc = tether_pg_query_one(db, "read usage report id", seen,
                             PG_ARGS(PG_INT(report->relying_party), PG_TEXT(report->report_id)),
                             read_seen, call);
    if (rc != TETHER_ERR_NOT_FOUND) /* counted already (the decision says how), or failed */
        return rc;
    if ((rc = tether_pg_run(db, "record usage report id", insert,
                            PG_ARGS(PG_INT(report->relying_party), PG_TEXT(report->report_id),
                                    PG_BLOB(report->body_sha256, TETHER_STORE_HASH_SIZE),
                                    PG_INT(report->entry_count), PG_INT(call->now)),
                            NULL)) != TETHER_OK)
        return rc;
    for (size_t i = 0; rc == TETHER_OK && i < report->entry_count; i++) {
        bool flagged = false;

        rc = add_entry(db, report, &report->entries[i], call->now, result, &flagged);
        result->flagged += flagged ? 1 : 0;
        if (rc == TETHER_OK)
            rc = tether_pg_usage_report_tx(db, report->entries[i].jti, report->usage_action,
                                           call->now, result);
    }
    return rc;
}

tether_status_t tether_pg_usage_report_record(void *impl, const tether_store_usage_report_t *report,
                                              int64_t now, tether_store_usage_result_t *result)
{
    report_call_t call = {report, now, result};
    tether_status_t rc;

    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (report == NULL || result == NULL || report->gateway == NULL ||
        report->report_id == NULL || (report->entries == NULL && report->entry_count > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_transaction(impl, "record usage report", report_tx, &call);
    if (rc != TETHER_OK)
        memset(result, 0, sizeof(*result));
    return rc;
}

static tether_status_t usage_item(tether_pg_list_t *list, const tether_pg_row_t *row, bool *stop)
{
    tether_store_usage_row_t r = {
        .device_id = tether_pg_text(row, 0),
        .jti = tether_pg_text(row, 1),
        .tokens = tether_pg_int64(row, 2),
        .requests = tether_pg_int64(row, 3),
        .refused = tether_pg_int64(row, 4),
        .prompt_tokens = tether_pg_int64(row, 5),
        .completion_tokens = tether_pg_int64(row, 6),
        .cost_micros = tether_pg_int64(row, 7),
        .first_seen = tether_pg_int64(row, 8),
        .last_seen = tether_pg_int64(row, 9),
        .flagged = tether_pg_int64(row, 10) != 0,
    };

    if (r.device_id == NULL)
        return TETHER_ERR_STORE;
    *stop = list->cb.usage(list->arg, &r) != 0;
    return TETHER_OK;
}

#define USAGE_SUMS                                                                            \
    " sum(requests), sum(refused), sum(prompt_tokens), sum(completion_tokens),"              \
    " sum(cost_micros), min(first_seen), max(last_seen), max(flagged) FROM token_usage"

tether_status_t tether_pg_usage_list(void *impl, const char *device_id, int64_t since,
                                     unsigned limit, tether_store_usage_cb cb, void *arg)
{
    static const char per_device[] =
        "SELECT device_id, NULL, count(DISTINCT jti)," USAGE_SUMS
        " WHERE last_seen >= $1 GROUP BY device_id ORDER BY device_id LIMIT $2";
    static const char per_token[] =
        "SELECT device_id, jti, 1," USAGE_SUMS
        " WHERE device_id = $3 AND last_seen >= $1 GROUP BY device_id, jti"
        " ORDER BY min(first_seen), jti LIMIT $2";
    tether_pg_list_t list = {.read = usage_item, .cb.usage = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (device_id == NULL)
        return tether_pg_list(impl, "list usage", per_device,
                              PG_ARGS(PG_INT(since), PG_INT(limit)), &list);
    return tether_pg_list(impl, "list usage of a device", per_token,
                          PG_ARGS(PG_INT(since), PG_INT(limit), PG_TEXT(device_id)), &list);
}
