/* Usage reports of relying parties in the SQLite store (store_usage.h, "usage
 * reports"; tables token_usage and usage_reports, schema version 6). */
#include <string.h>

#include "store_sqlite_internal.h"

#define ALERT_USAGE_DEVICE_MISMATCH "usage_device_mismatch"

static tether_status_t read_text_device(void *arg, sqlite3_stmt *row)
{
    return tether_sqlite_copy_text(arg, TETHER_STORE_DEVICE_ID_SIZE, sqlite3_column_text(row, 0));
}

/* Whether this report id was counted already, and with which body. */
static tether_status_t report_seen(sqlite_store_t *s, const tether_store_usage_report_t *report,
                                   tether_store_usage_result_t *result, bool *seen)
{
    static const char sql[] =
        "SELECT body_sha256 FROM usage_reports WHERE relying_party = ? AND report_id = ?";
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    *seen = false;
    if ((rc = tether_sqlite_prepare(s, sql, &stmt)) != TETHER_OK ||
        (rc = tether_sqlite_bind(s, stmt,
                                 SQL_ARGS(SQL_INT(report->relying_party),
                                          SQL_TEXT(report->report_id)))) != TETHER_OK)
        goto out;
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *seen = true;
        result->decision = tether_sqlite_hash_matches(stmt, 0, report->body_sha256)
                               ? TETHER_STORE_USAGE_DUPLICATE
                               : TETHER_STORE_USAGE_ID_REUSED;
    } else if (step != SQLITE_DONE) {
        rc = tether_sqlite_fail(s, "read usage report id");
    }
out:
    sqlite3_finalize(stmt);
    return rc;
}

/* Adds one entry to its token's totals; *flagged when the fleet did not
 * issue the jti to the device the entry names (an alert is added), else
 * the device's thresholds are evaluated with it. */
static tether_status_t add_entry(sqlite_store_t *s, const tether_store_usage_report_t *report,
                                 const tether_store_usage_entry_t *e, int64_t now,
                                 tether_store_usage_result_t *result, bool *flagged)
{
    static const char upsert[] =
        "INSERT INTO token_usage (relying_party, jti, device_id, reported_device_id, flagged,"
        " gateway, requests, refused, prompt_tokens, completion_tokens, cost_micros,"
        " first_seen, last_seen, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (relying_party, jti) DO UPDATE SET"
        " flagged = max(flagged, excluded.flagged), gateway = excluded.gateway,"
        " requests = requests + excluded.requests, refused = refused + excluded.refused,"
        " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
        " completion_tokens = completion_tokens + excluded.completion_tokens,"
        " cost_micros = cost_micros + excluded.cost_micros,"
        " first_seen = min(first_seen, excluded.first_seen),"
        " last_seen = max(last_seen, excluded.last_seen), received_at = excluded.received_at";
    /* Reconciliation compares the requests received before a nonce. */
    static const char received[] =
        "INSERT INTO token_usage_received (relying_party, jti, received_at, requests)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (relying_party, jti, received_at) DO UPDATE SET"
        " requests = requests + excluded.requests";
    static const char alert[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES (?, '"
        ALERT_USAGE_DEVICE_MISMATCH "', json_object('relying_party', ?, 'gateway', ?,"
        " 'report_id', ?, 'jti', ?, 'reported_device', ?, 'issued_device', ?), ?)";
    char issued[TETHER_STORE_DEVICE_ID_SIZE] = "";
    const char *device;
    tether_status_t rc;

    *flagged = false;
    rc = tether_sqlite_query_one(s, "read issued token", "SELECT device_id FROM issued_tokens"
                                 " WHERE jti = ?", SQL_ARGS(SQL_TEXT(e->jti)), read_text_device,
                                 issued);
    if (rc != TETHER_OK && rc != TETHER_ERR_NOT_FOUND)
        return rc;
    *flagged = rc == TETHER_ERR_NOT_FOUND || strcmp(issued, e->device_id) != 0;
    device = rc == TETHER_OK ? issued : e->device_id;
    rc = tether_sqlite_run(s, "count token usage", upsert,
                           SQL_ARGS(SQL_INT(report->relying_party), SQL_TEXT(e->jti),
                                    SQL_TEXT(device), SQL_TEXT(e->device_id), SQL_INT(*flagged),
                                    SQL_TEXT(report->gateway), SQL_INT(e->requests),
                                    SQL_INT(e->refused), SQL_INT(e->prompt_tokens),
                                    SQL_INT(e->completion_tokens), SQL_INT(e->cost_micros),
                                    SQL_INT(e->first_seen), SQL_INT(e->last_seen), SQL_INT(now)));
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "count token usage by second", received,
                               SQL_ARGS(SQL_INT(report->relying_party), SQL_TEXT(e->jti),
                                        SQL_INT(now), SQL_INT(e->requests)));
    /* The only constraint an upsert can break: a total past 2^53 - 1. */
    if (rc == TETHER_ERR_CONFLICT)
        return TETHER_ERR_TOO_LARGE;
    if (rc == TETHER_OK && !*flagged)
        rc = tether_sqlite_thresholds_tx(s, issued, e, now, result);
    else if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "add usage alert", alert,
                               SQL_ARGS(issued[0] != '\0' ? SQL_TEXT(issued) : SQL_NULL,
                                        SQL_INT(report->relying_party),
                                        SQL_TEXT(report->gateway), SQL_TEXT(report->report_id),
                                        SQL_TEXT(e->jti), SQL_TEXT(e->device_id),
                                        issued[0] != '\0' ? SQL_TEXT(issued) : SQL_NULL,
                                        SQL_INT(now)));
    return rc;
}

tether_status_t tether_sqlite_usage_report_record(void *impl,
                                                  const tether_store_usage_report_t *report,
                                                  int64_t now,
                                                  tether_store_usage_result_t *result)
{
    static const char purge[] = "DELETE FROM usage_reports WHERE received_at < ?";
    static const char insert[] =
        "INSERT INTO usage_reports (relying_party, report_id, body_sha256, entries,"
        " received_at) VALUES (?, ?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    tether_status_t rc;
    bool seen = false;

    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (report == NULL || result == NULL || report->gateway == NULL ||
        report->report_id == NULL || (report->entries == NULL && report->entry_count > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto unlock;
    if ((rc = tether_sqlite_run(s, "purge usage report ids", purge,
                                SQL_ARGS(SQL_INT(now - TETHER_STORE_USAGE_REPORT_RETENTION)))) !=
            TETHER_OK ||
        (rc = report_seen(s, report, result, &seen)) != TETHER_OK || seen)
        goto finish;
    if ((rc = tether_sqlite_run(s, "record usage report id", insert,
                                SQL_ARGS(SQL_INT(report->relying_party),
                                         SQL_TEXT(report->report_id),
                                         SQL_BLOB(report->body_sha256, TETHER_STORE_HASH_SIZE),
                                         SQL_INT(report->entry_count), SQL_INT(now)))) !=
        TETHER_OK)
        goto finish;
    for (size_t i = 0; rc == TETHER_OK && i < report->entry_count; i++) {
        bool flagged = false;

        rc = add_entry(s, report, &report->entries[i], now, result, &flagged);
        result->flagged += flagged ? 1 : 0;
        if (rc == TETHER_OK)
            rc = tether_sqlite_usage_report_tx(s, report->entries[i].jti, report->usage_action,
                                               now, result);
    }
finish:
    rc = tether_sqlite_finish(s, rc);
unlock:
    pthread_mutex_unlock(&s->lock);
    if (rc != TETHER_OK)
        memset(result, 0, sizeof(*result));
    return rc;
}

static tether_status_t usage_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_usage_row_t r = {
        .device_id = (const char *)sqlite3_column_text(row, 0),
        .jti = (const char *)sqlite3_column_text(row, 1),
        .tokens = sqlite3_column_int64(row, 2),
        .requests = sqlite3_column_int64(row, 3),
        .refused = sqlite3_column_int64(row, 4),
        .prompt_tokens = sqlite3_column_int64(row, 5),
        .completion_tokens = sqlite3_column_int64(row, 6),
        .cost_micros = sqlite3_column_int64(row, 7),
        .first_seen = sqlite3_column_int64(row, 8),
        .last_seen = sqlite3_column_int64(row, 9),
        .flagged = sqlite3_column_int64(row, 10) != 0,
    };

    if (r.device_id == NULL)
        return TETHER_ERR_STORE;
    *stop = list->cb.usage(list->arg, &r) != 0;
    return TETHER_OK;
}

#define USAGE_SUMS                                                                            \
    " sum(requests), sum(refused), sum(prompt_tokens), sum(completion_tokens),"              \
    " sum(cost_micros), min(first_seen), max(last_seen), max(flagged) FROM token_usage"

tether_status_t tether_sqlite_usage_list(void *impl, const char *device_id, int64_t since,
                                         unsigned limit, tether_store_usage_cb cb, void *arg)
{
    static const char per_device[] =
        "SELECT device_id, NULL, count(DISTINCT jti)," USAGE_SUMS
        " WHERE last_seen >= ?1 GROUP BY device_id ORDER BY device_id LIMIT ?2";
    static const char per_token[] =
        "SELECT device_id, jti, 1," USAGE_SUMS
        " WHERE device_id = ?3 AND last_seen >= ?1 GROUP BY jti"
        " ORDER BY min(first_seen), jti LIMIT ?2";
    tether_sqlite_list_t list = {.read = usage_item, .cb.usage = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (device_id == NULL)
        return tether_sqlite_list(impl, "list usage", per_device,
                                  SQL_ARGS(SQL_INT(since), SQL_INT(limit)), &list);
    return tether_sqlite_list(impl, "list usage of a device", per_token,
                              SQL_ARGS(SQL_INT(since), SQL_INT(limit), SQL_TEXT(device_id)),
                              &list);
}
