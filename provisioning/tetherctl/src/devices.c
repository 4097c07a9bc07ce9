/* tetherctl device verbs: list, show, allow, import, revoke, quarantine,
 * reinstate, set-policy. Checks what it can before connecting (exit 2),
 * leaves every other judgement to fleetd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/fleet_policy.h"
#include "tetherctl.h"

#define PATH_SIZE 160

static const ctl_column_t device_columns[] = {
    {"ID", 0}, {"NAME", 0}, {"STATUS", 0}, {"EK SHA-256", 17}, {"UPDATED", 0},
};

int ctl_device_list(ctl_context_t *ctx, const char *arg)
{
    ctl_table_t table;
    cJSON *json = NULL;
    const cJSON *devices, *device;
    int code;

    (void)arg;
    ctl_table_init(&table, device_columns, sizeof(device_columns) / sizeof(device_columns[0]));
    if ((code = ctl_get_list(ctx, TETHER_FLEET_PATH_DEVICES, "devices", &json, &devices)) != CTL_EXIT_OK || devices == NULL)
        goto out;
    cJSON_ArrayForEach(device, devices)
    {
        char updated[40];
        const char *row[5];

        ctl_format_time(cJSON_GetObjectItemCaseSensitive(device, "updated_at"), updated,
                        sizeof(updated));
        row[0] = ctl_json_string(device, "id");
        row[1] = ctl_json_string(device, "name");
        row[2] = ctl_json_string(device, "status");
        row[3] = ctl_json_string(device, "ek_sha256");
        row[4] = updated;
        if (ctl_table_add_row(&table, row) != TETHER_OK) {
            code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
            goto out;
        }
    }
    ctl_table_print(&table, ctx->io->out);
out:
    ctl_table_free(&table);
    ctl_json_free(json);
    return code;
}

/* TETHER_FLEET_PATH_DEVICES/ID[suffix], or a usage error for an id that is not one
 * path segment. */
static int device_path(ctl_context_t *ctx, const char *id, const char *suffix, char *path,
                       size_t size)
{
    if (!ctl_path_id_valid(id))
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "\"%.80s\" is not a device id (dev_ and 24 hex digits, as in "
                        "'tetherctl device list')",
                        id != NULL ? id : "");
    snprintf(path, size, TETHER_FLEET_PATH_DEVICES "/%s%s", id, suffix);
    return CTL_EXIT_OK;
}

int ctl_device_show(ctl_context_t *ctx, const char *arg)
{
    char path[PATH_SIZE];
    cJSON *json = NULL;
    int code;

    if ((code = device_path(ctx, arg, "", path, sizeof(path))) != CTL_EXIT_OK)
        return code;
    if ((code = ctl_call(ctx, "GET", path, NULL, NULL, 0, &json)) == CTL_EXIT_OK) {
        if (ctx->json)
            code = ctl_print_raw_body(ctx);
        else
            ctl_print_device(ctx->io->out, json);
    }
    ctl_json_free(json);
    return code;
}

int ctl_device_allow(ctl_context_t *ctx, const char *arg)
{
    const char *ek = ctx->args->value[CTL_OPT_EK_SHA256];
    const char *name = ctx->args->value[CTL_OPT_NAME];
    cJSON *request = cJSON_CreateObject();
    cJSON *json = NULL;
    char clean_id[80], clean_name[80];
    int code;

    (void)arg;
    if (!ctl_ek_sha256_valid(ek)) {
        cJSON_Delete(request);
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "--ek-sha256 must be the 64 hex digits of the SHA-256 of the device's EK "
                        "public key");
    }
    if (cJSON_AddStringToObject(request, "ek_sha256", ek) == NULL ||
        cJSON_AddStringToObject(request, "name", name) == NULL) {
        cJSON_Delete(request);
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
    }
    if ((code = ctl_post_json(ctx, TETHER_FLEET_PATH_DEVICES, request, &json)) != CTL_EXIT_OK)
        goto out;
    if (ctx->json) {
        code = ctl_print_raw_body(ctx);
        goto out;
    }
    ctl_text_shorten(ctl_json_string(json, "id"), 0, clean_id, sizeof(clean_id));
    ctl_text_shorten(ctl_json_string(json, "name"), 0, clean_name, sizeof(clean_name));
    if (ctx->response.status == 201)
        fprintf(ctx->io->out, "device %s (%s) allowed to enrol\n", clean_id, clean_name);
    else
        fprintf(ctx->io->out, "device %s (%s) was already allowed; nothing changed\n", clean_id,
                clean_name);
out:
    ctl_json_free(json);
    return code;
}

/* The server's per-line errors of a refused import, as FILE:LINE: message. */
static void print_import_errors(ctl_context_t *ctx, const char *file, const cJSON *answer)
{
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(answer, "errors");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(answer, "error_count");
    const cJSON *error;
    const char *verb = ctx->verb;
    const char *name = strcmp(file, "-") == 0 ? "<stdin>" : file;
    int shown = 0;

    /* "tetherctl: FILE:LINE: message", as compilers print, for editors. */
    ctx->verb = NULL;
    cJSON_ArrayForEach(error, errors)
    {
        const cJSON *line = cJSON_GetObjectItemCaseSensitive(error, "line");
        const char *message = ctl_json_string(error, "message");

        if (!cJSON_IsNumber(line) || message == NULL)
            continue;
        ctl_fail(ctx, CTL_EXIT_REMOTE, "%s:%.0f: %s", name, line->valuedouble, message);
        shown++;
    }
    if (cJSON_IsNumber(total) && total->valuedouble > shown)
        ctl_fail(ctx, CTL_EXIT_REMOTE, "%s: %.0f more errors not shown", name,
                 total->valuedouble - shown);
    ctx->verb = verb;
}

int ctl_device_import(ctl_context_t *ctx, const char *arg)
{
    char message[CTL_MESSAGE_SIZE];
    char *csv = NULL;
    size_t len = 0;
    cJSON *json = NULL;
    const cJSON *created, *unchanged;
    int code;

    if (ctl_input_read(arg, CTL_INPUT_FILE_MAX, &csv, &len, message, sizeof(message)) !=
        TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE, "%s", message);
    code = ctl_call(ctx, "POST", TETHER_FLEET_PATH_DEVICES_IMPORT, "text/csv", csv, len, &json);
    if (code == CTL_EXIT_REMOTE && json != NULL) {
        /* "nothing applied": the server imports all rows or none. */
        print_import_errors(ctx, arg, json);
        goto out;
    }
    if (code != CTL_EXIT_OK)
        goto out;
    if (ctx->json) {
        code = ctl_print_raw_body(ctx);
        goto out;
    }
    created = cJSON_GetObjectItemCaseSensitive(json, "created");
    unchanged = cJSON_GetObjectItemCaseSensitive(json, "unchanged");
    if (!cJSON_IsNumber(created) || !cJSON_IsNumber(unchanged)) {
        code = ctl_fail(ctx, CTL_EXIT_REMOTE, "the answer has no created and unchanged counts");
        goto out;
    }
    fprintf(ctx->io->out, "imported %s: %.0f devices newly allowed, %.0f already allowed\n",
            strcmp(arg, "-") == 0 ? "standard input" : arg, created->valuedouble,
            unchanged->valuedouble);
out:
    ctl_json_free(json);
    free(csv);
    return code;
}

/* POSTs {member: value} to path (ctl_post_json's exit code and answer). */
static int post_string(ctl_context_t *ctx, const char *path, const char *member,
                       const char *value, cJSON **json)
{
    cJSON *request = cJSON_CreateObject();

    if (cJSON_AddStringToObject(request, member, value) == NULL) {
        cJSON_Delete(request);
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
    }
    return ctl_post_json(ctx, path, request, json);
}

static int change_status(ctl_context_t *ctx, const char *id, const char *action,
                         const char *default_reason)
{
    const char *reason = ctx->args->value[CTL_OPT_REASON];
    char path[PATH_SIZE], clean_id[80], clean_name[80], clean_status[40];
    cJSON *json = NULL;
    int code;

    if ((code = device_path(ctx, id, action, path, sizeof(path))) != CTL_EXIT_OK)
        return code;
    if (reason == NULL)
        reason = default_reason;
    if (reason == NULL || reason[0] == '\0')
        return ctl_fail(ctx, CTL_EXIT_USAGE, "--reason TEXT is required");
    if ((code = post_string(ctx, path, "reason", reason, &json)) != CTL_EXIT_OK)
        goto out;
    if (ctx->json) {
        code = ctl_print_raw_body(ctx);
        goto out;
    }
    ctl_text_shorten(ctl_json_string(json, "id"), 0, clean_id, sizeof(clean_id));
    ctl_text_shorten(ctl_json_string(json, "name"), 0, clean_name, sizeof(clean_name));
    ctl_text_shorten(ctl_json_string(json, "status"), 0, clean_status, sizeof(clean_status));
    fprintf(ctx->io->out, "device %s (%s) is now %s\n", clean_id, clean_name, clean_status);
out:
    ctl_json_free(json);
    return code;
}

int ctl_device_revoke(ctl_context_t *ctx, const char *arg)
{
    return change_status(ctx, arg, "/revoke", NULL);
}

int ctl_device_quarantine(ctl_context_t *ctx, const char *arg)
{
    return change_status(ctx, arg, "/quarantine", "quarantined with tetherctl (no reason given)");
}

int ctl_device_reinstate(ctl_context_t *ctx, const char *arg)
{
    return change_status(ctx, arg, "/reinstate", "reinstated with tetherctl (no reason given)");
}

int ctl_device_set_policy(ctl_context_t *ctx, const char *arg)
{
    const char *name = ctx->second_arg;
    char path[PATH_SIZE], clean_id[80], clean_policy[80], version[24];
    cJSON *json = NULL;
    int code;

    if ((code = device_path(ctx, arg, "/policy", path, sizeof(path))) != CTL_EXIT_OK)
        return code;
    if (!tether_policy_name_valid(name))
        return ctl_fail(ctx, CTL_EXIT_USAGE, "\"%.80s\" is not a policy name",
                        name != NULL ? name : "");
    if ((code = post_string(ctx, path, "policy", name, &json)) != CTL_EXIT_OK)
        goto out;
    if (ctx->json) {
        code = ctl_print_raw_body(ctx);
        goto out;
    }
    ctl_text_shorten(ctl_json_string(json, "device_id"), 0, clean_id, sizeof(clean_id));
    ctl_text_shorten(ctl_json_string(json, "policy"), 0, clean_policy, sizeof(clean_policy));
    ctl_format_value(cJSON_GetObjectItemCaseSensitive(json, "version"), version, sizeof(version));
    fprintf(ctx->io->out, "device %s follows policy %s (version %s from its next exchange)\n",
            clean_id, clean_policy, version);
out:
    ctl_json_free(json);
    return code;
}
