/* Admin handlers for devices: list, show, allow, import, status changes. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin_internal.h"
#include "csv.h"
#include "tether/log.h"
#include "validate.h"

cJSON *admin_device_json(const tether_store_device_t *device)
{
    cJSON *json = cJSON_CreateObject();
    char counter_index[16];

    if (json == NULL)
        return NULL;
    /* NV indices are written in hex everywhere else (tpm2-tools, TCG specs). */
    snprintf(counter_index, sizeof(counter_index), "0x%08x", (unsigned)device->counter_index);
    if (cJSON_AddStringToObject(json, "id", device->id) == NULL ||
        cJSON_AddStringToObject(json, "name", device->name) == NULL ||
        cJSON_AddStringToObject(json, "ek_sha256", device->ek_sha256) == NULL ||
        cJSON_AddStringToObject(json, "status", tether_device_status_name(device->status)) ==
            NULL ||
        cJSON_AddStringToObject(json, "status_reason", device->status_reason) == NULL ||
        cJSON_AddBoolToObject(json, "allow_reenroll", device->allow_reenroll) == NULL ||
        cJSON_AddBoolToObject(json, "enrolled", device->enrolled) == NULL ||
        (device->has_counter
             ? cJSON_AddNumberToObject(json, "highest_counter", (double)device->highest_counter)
             : cJSON_AddNullToObject(json, "highest_counter")) == NULL ||
        (device->ak_name[0] != '\0' ? cJSON_AddStringToObject(json, "ak_name", device->ak_name)
                                    : cJSON_AddNullToObject(json, "ak_name")) == NULL ||
        (device->has_counter_index
             ? cJSON_AddStringToObject(json, "counter_index", counter_index)
             : cJSON_AddNullToObject(json, "counter_index")) == NULL ||
        cJSON_AddNumberToObject(json, "created_at", (double)device->created_at) == NULL ||
        cJSON_AddNumberToObject(json, "updated_at", (double)device->updated_at) == NULL) {
        cJSON_Delete(json);
        return NULL;
    }
    return json;
}

static int add_device(void *arg, const tether_store_device_t *device)
{
    cJSON *item = admin_device_json(device);

    if (item == NULL || !cJSON_AddItemToArray(arg, item)) {
        cJSON_Delete(item);
        return 1;
    }
    return 0;
}

void admin_devices_list(tether_route_call_t *call)
{
    cJSON *json = cJSON_CreateObject();
    cJSON *devices = cJSON_AddArrayToObject(json, "devices");
    tether_status_t rc;

    if (devices == NULL) {
        cJSON_Delete(json);
        admin_store_error(call, TETHER_ERR_NO_MEMORY, NULL, NULL);
        return;
    }
    rc = tether_store_device_list(call->router->admin->store, add_device, devices);
    if (rc != TETHER_OK) {
        cJSON_Delete(json);
        admin_store_error(call, rc, NULL, NULL);
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}

static void respond_device(tether_route_call_t *call, unsigned status,
                           const tether_store_device_t *device)
{
    cJSON *json = admin_device_json(device);

    if (json == NULL)
        admin_store_error(call, TETHER_ERR_NO_MEMORY, NULL, NULL);
    else
        tether_http_respond_json(call->response, status, json);
}

void admin_device_show(tether_route_call_t *call)
{
    tether_store_device_t device;
    tether_status_t rc = TETHER_ERR_NOT_FOUND;

    if (tether_fleet_device_id_valid(call->param, strlen(call->param)))
        rc = tether_store_device_get(call->router->admin->store, call->param, &device);
    if (rc != TETHER_OK)
        admin_store_error(call, rc, "no device with this id", NULL);
    else
        respond_device(call, 200, &device);
}

void admin_device_allow(tether_route_call_t *call)
{
    tether_admin_allow_request_t req;
    tether_store_allow_t row;
    tether_store_device_t device;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    size_t created = 0;
    tether_status_t rc;

    rc = tether_admin_parse_allow((const char *)call->request->body, call->request->body_len,
                                  &req, message, sizeof(message));
    if (rc != TETHER_OK) {
        admin_bad_request(call, message);
        return;
    }
    memset(&row, 0, sizeof(row));
    memcpy(row.ek_sha256, req.ek_sha256, sizeof(row.ek_sha256));
    memcpy(row.name, req.name, sizeof(row.name));
    if ((rc = tether_fleet_device_id_new(row.id)) == TETHER_OK)
        rc = tether_store_device_import(call->router->admin->store, &row, 1, call->now, &created,
                                        NULL);
    if (rc == TETHER_OK)
        rc = tether_store_device_find_ek(call->router->admin->store, row.ek_sha256, &device);
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, NULL, "a device with this ek_sha256 exists under another name");
        return;
    }
    if (created > 0)
        tether_info("admin", "device %s (%s) allowed by admin token %lld", device.id, device.name,
                    (long long)call->caller.id);
    respond_device(call, created > 0 ? 201 : 200, &device);
}

/* {"error": ..., "errors": [{"line": n, "message": "..."}]} for a bad import. */
static void respond_import_errors(tether_route_call_t *call, unsigned status, const char *code,
                                  const tether_csv_devices_t *csv, const char *description)
{
    cJSON *json = cJSON_CreateObject();
    cJSON *errors;

    cJSON_AddStringToObject(json, "error", code);
    cJSON_AddStringToObject(json, "error_description", description);
    cJSON_AddNumberToObject(json, "error_count", (double)csv->errors_total);
    errors = cJSON_AddArrayToObject(json, "errors");
    for (size_t i = 0; errors != NULL && i < csv->error_count; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "line", (double)csv->errors[i].line);
        cJSON_AddStringToObject(item, "message", csv->errors[i].message);
        cJSON_AddItemToArray(errors, item);
    }
    tether_http_respond_json(call->response, status, json);
}

/* Rows whose EK the fleet knows under another name: reported by line, and
 * the whole import refused. The store checks again inside its transaction. */
static tether_status_t find_conflicts(tether_route_call_t *call, tether_csv_devices_t *csv)
{
    tether_store_device_t device;

    for (size_t i = 0; i < csv->count; i++) {
        tether_status_t rc = tether_store_device_find_ek(call->router->admin->store,
                                                         csv->rows[i].ek_sha256, &device);
        if (rc == TETHER_ERR_NOT_FOUND)
            continue;
        if (rc != TETHER_OK)
            return rc;
        if (strcmp(device.name, csv->rows[i].name) == 0)
            continue;
        csv->errors_total++;
        if (csv->error_count < TETHER_CSV_MAX_ERRORS) {
            csv->errors[csv->error_count].line = csv->lines[i];
            snprintf(csv->errors[csv->error_count].message,
                     sizeof(csv->errors[csv->error_count].message),
                     "ek_sha256 already allowed as device %s under another name", device.id);
            csv->error_count++;
        }
    }
    return csv->errors_total > 0 ? TETHER_ERR_CONFLICT : TETHER_OK;
}

static void import_rows(tether_route_call_t *call, tether_csv_devices_t *csv)
{
    size_t created = 0;
    size_t conflict = 0;
    tether_status_t rc = find_conflicts(call, csv);
    cJSON *json;

    if (rc == TETHER_ERR_CONFLICT) {
        respond_import_errors(call, 409, "conflict", csv,
                              "some devices are known under other names; nothing was imported");
        return;
    }
    for (size_t i = 0; rc == TETHER_OK && i < csv->count; i++)
        rc = tether_fleet_device_id_new(csv->rows[i].id);
    if (rc == TETHER_OK)
        rc = tether_store_device_import(call->router->admin->store, csv->rows, csv->count,
                                        call->now, &created, &conflict);
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, NULL,
                          "a device changed during the import; nothing was imported");
        return;
    }
    tether_info("admin", "import: %zu devices allowed, %zu already known, by admin token %lld",
                created, csv->count - created, (long long)call->caller.id);
    json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "created", (double)created);
    cJSON_AddNumberToObject(json, "unchanged", (double)(csv->count - created));
    tether_http_respond_json(call->response, 200, json);
}

void admin_devices_import(tether_route_call_t *call)
{
    tether_csv_devices_t csv;
    tether_status_t rc;

    tether_csv_devices_init(&csv);
    rc = tether_csv_devices_parse((const char *)call->request->body, call->request->body_len, &csv);
    if (rc == TETHER_ERR_PARSE)
        respond_import_errors(call, 400, "invalid_request", &csv,
                              "the CSV has errors; nothing was imported");
    else if (rc != TETHER_OK)
        admin_store_error(call, rc, NULL, NULL);
    else
        import_rows(call, &csv);
    tether_csv_devices_free(&csv);
}

static void change_status(tether_route_call_t *call, tether_device_action_t action,
                          const char *done)
{
    static const char *const conflicts[] = {
        [TETHER_DEVICE_REVOKE] = "the device is already revoked",
        [TETHER_DEVICE_QUARANTINE] = "the device is already revoked or quarantined",
        [TETHER_DEVICE_REINSTATE] = "only a revoked or quarantined device can be reinstated",
    };
    tether_admin_reason_request_t req;
    tether_store_device_t device;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    tether_status_t rc = TETHER_ERR_NOT_FOUND;

    if (tether_admin_parse_reason((const char *)call->request->body, call->request->body_len, &req,
                                  message, sizeof(message)) != TETHER_OK) {
        admin_bad_request(call, message);
        return;
    }
    if (tether_fleet_device_id_valid(call->param, strlen(call->param)))
        rc = tether_store_device_change_status(call->router->admin->store, call->param, action,
                                               req.reason, call->now, &device);
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, "no device with this id", conflicts[action]);
        return;
    }
    tether_warn("admin", "device %s %s by admin token %lld: %s", device.id, done,
                (long long)call->caller.id, req.reason);
    respond_device(call, 200, &device);
}

void admin_device_revoke(tether_route_call_t *call)
{
    change_status(call, TETHER_DEVICE_REVOKE, "revoked");
}

void admin_device_quarantine(tether_route_call_t *call)
{
    change_status(call, TETHER_DEVICE_QUARANTINE, "quarantined");
}

/* Gateways refuse a device's tokens issued at or before the second of its
 * last revocation feed entry (a token's iat has whole seconds; the entry
 * was written at or before this request's second). A device reinstated in
 * that same second could get its next token in it too, refused until its
 * next refresh. So a reinstatement waits until the clock has passed the
 * request's second (at most one second, for an operator's action) and is
 * recorded in the next: every token after it is newer than every entry
 * before it. */
static void pass_the_second(tether_route_call_t *call)
{
    struct timespec ts;

    /* Bounded: a clock set back must not hold the request for longer. */
    for (int round = 0; round < 3 && clock_gettime(CLOCK_REALTIME, &ts) == 0 &&
                        (int64_t)ts.tv_sec <= call->now;
         round++) {
        struct timespec rest = {0, 1000000000L - ts.tv_nsec};

        (void)nanosleep(&rest, NULL); /* a signal only shortens a round */
    }
    call->now += 1;
}

void admin_device_reinstate(tether_route_call_t *call)
{
    pass_the_second(call);
    change_status(call, TETHER_DEVICE_REINSTATE, "reinstated");
}
