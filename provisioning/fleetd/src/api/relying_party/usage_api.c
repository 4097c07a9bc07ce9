/* POST /v1/usage/reports and GET /v1/usage (usage_api.h). */
#include "usage_api.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/crypto.h"
#include "tether/fleet_vocabulary.h"
#include "tether/log.h"
#include "exchange_api.h"
#include "usage_report.h"
#include "validate.h"

static void out_of_memory(tether_http_response_t *response)
{
    tether_http_respond_error(response, 500, TETHER_FLEET_ERROR_SERVER_ERROR, "out of memory");
}

static void store_failed(tether_http_response_t *response)
{
    tether_http_respond_error(response, 500, TETHER_FLEET_ERROR_SERVER_ERROR,
                              "the fleet database failed; see the server log");
}

/* ---- POST /v1/usage/reports ---- */

static void report_answer(tether_http_response_t *response, const tether_usage_report_t *report,
                          const tether_store_usage_result_t *result)
{
    bool duplicate = result->decision == TETHER_STORE_USAGE_DUPLICATE;
    cJSON *json = cJSON_CreateObject();

    if (json == NULL || cJSON_AddStringToObject(json, "report_id", report->report_id) == NULL ||
        cJSON_AddStringToObject(json, "status", duplicate ? "duplicate" : "accepted") == NULL ||
        cJSON_AddNumberToObject(json, "entries", (double)report->entry_count) == NULL ||
        cJSON_AddNumberToObject(json, "flagged", (double)result->flagged) == NULL) {
        cJSON_Delete(json);
        out_of_memory(response);
        return;
    }
    tether_http_respond_json(response, 200, json);
}

void tether_usage_api_report(tether_route_call_t *call)
{
    const tether_http_request_t *request = call->request;
    tether_http_response_t *response = call->response;
    tether_usage_report_t *report = NULL;
    tether_store_usage_report_t record;
    tether_store_usage_result_t result;
    char message[TETHER_USAGE_MESSAGE_SIZE];
    tether_status_t rc;

    memset(&record, 0, sizeof(record));
    memset(&result, 0, sizeof(result));
    /* About 30 KiB: on the heap rather than a worker thread's stack. */
    if ((report = malloc(sizeof(*report))) == NULL) {
        out_of_memory(response);
        return;
    }
    if (tether_usage_report_parse((const char *)request->body, request->body_len, report,
                                  message, sizeof(message)) != TETHER_OK) {
        tether_info("usage", "usage report refused: caller=%lld %s",
                    (long long)call->caller.id, message);
        tether_http_respond_error(response, 400, TETHER_FLEET_ERROR_INVALID_REQUEST, message);
        goto out;
    }
    record.relying_party = call->caller.id;
    record.gateway = report->gateway;
    record.report_id = report->report_id;
    record.entries = report->entries;
    record.entry_count = report->entry_count;
    /* Until policies live in the store: fleetd.conf's, as for exchanges. */
    record.usage_action = call->router->exchange != NULL && call->router->exchange->policy != NULL
                              ? call->router->exchange->policy->usage_mismatch_action
                              : TETHER_STORE_USAGE_QUARANTINE;
    if ((rc = tether_sha256(request->body, request->body_len, record.body_sha256)) != TETHER_OK ||
        (rc = tether_store_usage_report_record(call->router->store, &record, call->now,
                                               &result)) != TETHER_OK) {
        if (rc == TETHER_ERR_TOO_LARGE) {
            tether_warn("usage", "usage report refused: caller=%lld report=%s: a token's "
                                 "totals would pass 2^53 - 1", (long long)call->caller.id,
                        report->report_id);
            tether_http_respond_error(response, 422, TETHER_FLEET_ERROR_USAGE_TOO_LARGE,
                                      "a token's totals would pass 2^53 - 1; nothing was "
                                      "counted");
        } else {
            tether_error("usage", "cannot count usage report %s: %s", report->report_id,
                         tether_strerror(rc));
            store_failed(response);
        }
        goto out;
    }
    if (result.decision == TETHER_STORE_USAGE_ID_REUSED) {
        tether_warn("usage", "usage report refused: caller=%lld report=%s names another report",
                    (long long)call->caller.id, report->report_id);
        tether_http_respond_error(response, 409, TETHER_FLEET_ERROR_REPORT_ID_REUSED,
                                  "this report_id names another report of this relying party; "
                                  "a retry must send the same body, a new report a new id");
        goto out;
    }
    if (result.mismatches > 0)
        tether_error("usage", "usage mismatch: report=%s from caller=%lld puts %zu token(s) above "
                              "their device's final count: %s",
                     report->report_id, (long long)call->caller.id, result.mismatches,
                     result.quarantined ? "device quarantined, its tokens revoked"
                                        : "alerted (usage_mismatch_action = alert, or the "
                                          "device was not active)");
    if (result.thresholds > 0)
        tether_error("usage", "threshold crossed: report=%s from caller=%lld: %zu "
                              "threshold_exceeded alert(s)%s",
                     report->report_id, (long long)call->caller.id, result.thresholds,
                     result.quarantined ? "; a device quarantined by this report" : "");
    if (result.flagged > 0)
        tether_warn("usage", "usage report with tokens the fleet did not issue to the devices "
                             "named: caller=%lld gateway=%s report=%s flagged=%zu (alerts added)",
                    (long long)call->caller.id, report->gateway, report->report_id,
                    result.flagged);
    else
        tether_debug("usage", "usage report %s: caller=%lld gateway=%s report=%s entries=%zu",
                     result.decision == TETHER_STORE_USAGE_DUPLICATE ? "seen again" : "counted",
                     (long long)call->caller.id, report->gateway, report->report_id,
                     report->entry_count);
    report_answer(response, report, &result);
out:
    free(report);
}

/* ---- GET /v1/usage ---- */

typedef struct usage_page {
    cJSON *lines;
    size_t count;
    bool failed;
} usage_page_t;

static int add_line(void *arg, const tether_store_usage_row_t *row)
{
    usage_page_t *page = arg;
    cJSON *line = cJSON_CreateObject();

    if (line == NULL || !cJSON_AddItemToArray(page->lines, line)) {
        cJSON_Delete(line);
        page->failed = true;
        return 1;
    }
    page->count++;
    if (cJSON_AddStringToObject(line, "device_id", row->device_id) == NULL ||
        (row->jti != NULL ? cJSON_AddStringToObject(line, "jti", row->jti)
                          : cJSON_AddNumberToObject(line, "tokens", (double)row->tokens)) ==
            NULL ||
        cJSON_AddNumberToObject(line, "requests", (double)row->requests) == NULL ||
        cJSON_AddNumberToObject(line, "refused", (double)row->refused) == NULL ||
        cJSON_AddNumberToObject(line, "prompt_tokens", (double)row->prompt_tokens) == NULL ||
        cJSON_AddNumberToObject(line, "completion_tokens", (double)row->completion_tokens) ==
            NULL ||
        cJSON_AddNumberToObject(line, "cost_micros", (double)row->cost_micros) == NULL ||
        cJSON_AddNumberToObject(line, "first_seen", (double)row->first_seen) == NULL ||
        cJSON_AddNumberToObject(line, "last_seen", (double)row->last_seen) == NULL ||
        cJSON_AddBoolToObject(line, "flagged", row->flagged) == NULL) {
        page->failed = true;
        return 1;
    }
    return 0;
}

void tether_usage_api_list(tether_route_call_t *call)
{
    const tether_http_request_t *request = call->request;
    tether_http_response_t *response = call->response;
    const char *device = NULL;
    uint64_t since = 0;
    usage_page_t page = {NULL, 0, false};
    cJSON *json = NULL;
    tether_status_t rc;

    /* The route allows device and since, each once. */
    for (size_t i = 0; i < request->query_count; i++) {
        const tether_http_query_t *q = &request->query[i];

        if (strcmp(q->key, "device") == 0) {
            if (!tether_fleet_device_id_valid(q->value, strlen(q->value))) {
                tether_http_respond_error(response, 400, TETHER_FLEET_ERROR_INVALID_REQUEST,
                                          "device must be a device id (dev_ and 24 lowercase "
                                          "hex digits)");
                return;
            }
            device = q->value;
        } else if (!tether_fleet_decimal_parse(q->value, TETHER_USAGE_MAX_TIME, &since)) {
            tether_http_respond_error(response, 400, TETHER_FLEET_ERROR_INVALID_REQUEST,
                                      "since must be a time in Unix seconds");
            return;
        }
    }
    if ((json = cJSON_CreateObject()) == NULL ||
        cJSON_AddNumberToObject(json, "since", (double)since) == NULL ||
        (device != NULL && cJSON_AddStringToObject(json, "device_id", device) == NULL) ||
        (page.lines = cJSON_AddArrayToObject(json, "usage")) == NULL) {
        out_of_memory(response);
        goto out;
    }
    /* One line more than a page says whether it was cut. */
    rc = tether_store_usage_list(call->router->store, device, (int64_t)since,
                                 TETHER_FLEET_USAGE_PAGE + 1, add_line, &page);
    if (rc != TETHER_OK) {
        tether_error("usage", "cannot list usage: %s", tether_strerror(rc));
        store_failed(response);
        goto out;
    }
    if (page.failed) {
        out_of_memory(response);
        goto out;
    }
    if (page.count > TETHER_FLEET_USAGE_PAGE)
        cJSON_DeleteItemFromArray(page.lines, TETHER_FLEET_USAGE_PAGE);
    if (cJSON_AddBoolToObject(json, "truncated", page.count > TETHER_FLEET_USAGE_PAGE) == NULL) {
        out_of_memory(response);
        goto out;
    }
    tether_http_respond_json(response, 200, json);
    json = NULL;
out:
    cJSON_Delete(json);
}
