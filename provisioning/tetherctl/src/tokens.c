/* tetherctl verbs for secrets and the security team: bootstrap tokens,
 * admin tokens, alerts. A new token goes to stdout alone (scripts capture
 * it) and is wiped from every buffer tetherctl owns. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tetherctl.h"

#define BOOTSTRAP_DEFAULT_TTL "1h"

/* Prints the "token" member of a creation answer (or the whole answer with
 * --json), checking that it has the expected format. */
static int print_new_token(ctl_context_t *ctx, const cJSON *json, tether_secret_kind_t kind)
{
    const char *token = ctl_json_string(json, "token");

    if (token == NULL ||
        tether_secret_token_check_format(token, strlen(token), kind) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "the answer holds no well-formed %s token",
                        tether_secret_token_prefix(kind));
    if (ctx->json)
        return ctl_print_raw_body(ctx);
    return ctl_write_secret(ctx, token, strlen(token));
}

int ctl_bootstrap_create(ctl_context_t *ctx, const char *arg)
{
    const char *ttl_text = ctx->args->value[CTL_OPT_TTL];
    const char *uses_text = ctx->args->value[CTL_OPT_USES];
    unsigned ttl = 0;
    uint64_t uses = 1;
    cJSON *request, *json = NULL;
    int code;

    (void)arg;
    if (ttl_text == NULL)
        ttl_text = BOOTSTRAP_DEFAULT_TTL;
    if (ctl_duration_parse(ttl_text, &ttl) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "--ttl \"%.40s\" is not a duration: use e.g. 90s, 15m, 1h, 2d or 1h30m",
                        ttl_text);
    if (uses_text != NULL &&
        ctl_uint_parse(uses_text, 1, TETHER_FLEET_BOOTSTRAP_MAX_USES, &uses) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE, "--uses must be a number from 1 to %d",
                        TETHER_FLEET_BOOTSTRAP_MAX_USES);
    request = cJSON_CreateObject();
    if (cJSON_AddNumberToObject(request, "ttl_seconds", ttl) == NULL ||
        cJSON_AddNumberToObject(request, "uses", (double)uses) == NULL) {
        cJSON_Delete(request);
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
    }
    if ((code = ctl_post_json(ctx, TETHER_FLEET_PATH_BOOTSTRAP_TOKENS, request, &json)) ==
        CTL_EXIT_OK)
        code = print_new_token(ctx, json, TETHER_SECRET_BOOTSTRAP);
    ctl_json_free(json);
    return code;
}

int ctl_token_create(ctl_context_t *ctx, const char *arg)
{
    const char *roles_text = ctx->args->value[CTL_OPT_ROLE];
    const char *roles[TETHER_ROLE_COUNT];
    size_t role_count = 0;
    cJSON *request, *array, *json = NULL;
    int code;

    (void)arg;
    if (ctl_roles_parse(roles_text, roles, &role_count) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "--role must list roles among read, fleet, security, relying-party, "
                        "separated by commas, each once (e.g. --role fleet,read)");
    request = cJSON_CreateObject();
    if (cJSON_AddStringToObject(request, "name", ctx->args->value[CTL_OPT_NAME]) == NULL ||
        (array = cJSON_AddArrayToObject(request, "roles")) == NULL) {
        cJSON_Delete(request);
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
    }
    for (size_t i = 0; i < role_count; i++)
        cJSON_AddItemToArray(array, cJSON_CreateString(roles[i]));
    if ((code = ctl_post_json(ctx, TETHER_FLEET_PATH_ADMIN_TOKENS, request, &json)) == CTL_EXIT_OK)
        code = print_new_token(ctx, json, TETHER_SECRET_ADMIN);
    ctl_json_free(json);
    return code;
}

int ctl_token_list(ctl_context_t *ctx, const char *arg)
{
    static const ctl_column_t columns[] = {
        {"ID", 0}, {"NAME", 0}, {"ROLES", 0}, {"CREATED", 0}, {"REVOKED", 0},
    };
    ctl_table_t table;
    cJSON *json = NULL;
    const cJSON *tokens, *token;
    int code;

    (void)arg;
    ctl_table_init(&table, columns, sizeof(columns) / sizeof(columns[0]));
    if ((code = ctl_get_list(ctx, TETHER_FLEET_PATH_ADMIN_TOKENS, "tokens", &json, &tokens)) != CTL_EXIT_OK || tokens == NULL)
        goto out;
    cJSON_ArrayForEach(token, tokens)
    {
        char id[32], roles[64], created[40], revoked[40];
        const char *row[5] = {id, NULL, roles, created, revoked};

        ctl_format_value(cJSON_GetObjectItemCaseSensitive(token, "id"), id, sizeof(id));
        row[1] = ctl_json_string(token, "name");
        ctl_format_value(cJSON_GetObjectItemCaseSensitive(token, "roles"), roles, sizeof(roles));
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(token, "created_at"), created,
                        sizeof(created));
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(token, "revoked_at"), revoked,
                        sizeof(revoked));
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

int ctl_token_revoke(ctl_context_t *ctx, const char *arg)
{
    char path[64];
    uint64_t id = 0;
    cJSON *json = NULL;
    int code;

    /* fleetd's ids are integers JSON carries exactly (up to 2^53). */
    if (arg == NULL || ctl_uint_parse(arg, 0, 1ULL << 53, &id) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "\"%.40s\" is not an admin token id (a number, as in 'tetherctl token "
                        "list')",
                        arg != NULL ? arg : "");
    snprintf(path, sizeof(path), TETHER_FLEET_PATH_ADMIN_TOKENS "/%llu", (unsigned long long)id);
    if ((code = ctl_call(ctx, "DELETE", path, NULL, NULL, 0, &json)) == CTL_EXIT_OK) {
        if (ctx->json)
            code = ctl_print_raw_body(ctx);
        else
            fprintf(ctx->io->out, "admin token %llu revoked\n", (unsigned long long)id);
    }
    ctl_json_free(json);
    return code;
}

/* ---- alerts --follow ---- */

#define FOLLOW_WAIT 25          /* seconds of each long poll */
#define FOLLOW_RETRY_MAX 30     /* seconds between attempts while the fleet is away */

/* SIGINT or SIGTERM: stop. While a request waits in the fleet, at once:
 * every line printed so far was flushed whole, and nothing else is left to
 * do (the token's memory goes with the process). */
static volatile sig_atomic_t follow_stop;
static volatile sig_atomic_t follow_in_request;

static void follow_signal(int sig)
{
    (void)sig;
    follow_stop = 1;
    if (follow_in_request)
        _exit(CTL_EXIT_OK);
}

/* One alert as a line: compact JSON with --json, else the table's columns
 * at fixed widths (the table cannot be aligned ahead of alerts not yet
 * written). */
static int follow_print(ctl_context_t *ctx, const cJSON *alert)
{
    char id[32], created[40], details[512];
    char cells[5][128];
    char *line;

    if (ctx->json) {
        if ((line = cJSON_PrintUnformatted(alert)) == NULL)
            return ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
        fprintf(ctx->io->out, "%s\n", line);
        free(line);
        return CTL_EXIT_OK;
    }
    ctl_format_value(cJSON_GetObjectItemCaseSensitive(alert, "id"), id, sizeof(id));
    ctl_format_time(cJSON_GetObjectItemCaseSensitive(alert, "created_at"), created,
                    sizeof(created));
    ctl_format_value(cJSON_GetObjectItemCaseSensitive(alert, "details"), details,
                     sizeof(details));
    ctl_text_shorten(id, 8, cells[0], sizeof(cells[0]));
    /* A null device (an alert about the fleet itself) prints as "-". */
    ctl_text_shorten(ctl_json_string(alert, "device_id") != NULL
                         ? ctl_json_string(alert, "device_id")
                         : "-",
                     28, cells[1], sizeof(cells[1]));
    ctl_text_shorten(ctl_json_string(alert, "kind"), 24, cells[2], sizeof(cells[2]));
    ctl_text_shorten(created, 20, cells[3], sizeof(cells[3]));
    ctl_text_shorten(details, 60, cells[4], sizeof(cells[4]));
    fprintf(ctx->io->out, "%-8s  %-28s  %-24s  %-20s  %s\n", cells[0], cells[1], cells[2],
            cells[3], cells[4]);
    return CTL_EXIT_OK;
}

/* Whether a failed call is worth another try: the fleet away (restarting)
 * or failing for now; not a refusal of this request or token. */
static bool follow_retry(const ctl_context_t *ctx, int code)
{
    int status = ctx->response.status;

    return code == CTL_EXIT_CONNECT ||
           (code == CTL_EXIT_REMOTE && (status >= 500 || status == 429 || status == 0));
}

static int alerts_follow(ctl_context_t *ctx, uint64_t after)
{
    struct sigaction action;
    unsigned retry = 1;
    int code = CTL_EXIT_OK;

    memset(&action, 0, sizeof(action));
    action.sa_handler = follow_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    /* The fleet says nothing while it waits: give it the wait and more. */
    if (ctx->client.io_timeout_ms < (FOLLOW_WAIT + 15) * 1000u)
        ctx->client.io_timeout_ms = (FOLLOW_WAIT + 15) * 1000u;
    if (ctx->client.request_timeout_ms < (FOLLOW_WAIT + 30) * 1000u)
        ctx->client.request_timeout_ms = (FOLLOW_WAIT + 30) * 1000u;
    if (!ctx->json) {
        fprintf(ctx->io->out, "%-8s  %-28s  %-24s  %-20s  %s\n", "ID", "DEVICE", "KIND",
                "CREATED", "DETAILS");
        fflush(ctx->io->out);
    }
    while (!follow_stop) {
        char path[96];
        cJSON *json = NULL;
        const cJSON *alerts, *alert;

        snprintf(path, sizeof(path), TETHER_FLEET_PATH_ALERTS "?after=%llu&wait=%d",
                 (unsigned long long)after, FOLLOW_WAIT);
        follow_in_request = 1;
        code = ctl_request(ctx, "GET", path, NULL, NULL, 0, CTL_CALL_QUIET, &json);
        follow_in_request = 0;
        if (follow_stop) {
            ctl_json_free(json);
            code = CTL_EXIT_OK;
            break;
        }
        if (code != CTL_EXIT_OK && !follow_retry(ctx, code)) {
            /* A refusal (the token revoked, say) stays one: say it and stop. */
            if (code == CTL_EXIT_REMOTE)
                ctl_fail(ctx, code, "HTTP %d: %s", ctx->response.status,
                         ctl_json_string(json, "error_description") != NULL
                             ? ctl_json_string(json, "error_description")
                             : "no description");
            ctl_json_free(json);
            return code;
        }
        if (code != CTL_EXIT_OK) {
            ctl_json_free(json);
            fprintf(ctx->io->err, CTL_PROGRAM ": alerts: the fleet is unavailable; trying "
                                  "again in %u s\n", retry);
            for (unsigned i = 0; i < retry * 10 && !follow_stop; i++)
                nanosleep(&(struct timespec){0, 100000000L}, NULL);
            retry = retry * 2 > FOLLOW_RETRY_MAX ? FOLLOW_RETRY_MAX : retry * 2;
            continue;
        }
        retry = 1;
        alerts = cJSON_GetObjectItemCaseSensitive(json, "alerts");
        if (!cJSON_IsArray(alerts)) {
            ctl_json_free(json);
            return ctl_fail(ctx, CTL_EXIT_REMOTE, "the answer has no \"alerts\" list");
        }
        cJSON_ArrayForEach(alert, alerts)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(alert, "id");

            if (!cJSON_IsNumber(id) || id->valuedouble <= (double)after) {
                ctl_json_free(json);
                return ctl_fail(ctx, CTL_EXIT_REMOTE, "an alert without a newer id");
            }
            after = (uint64_t)id->valuedouble;
            if ((code = follow_print(ctx, alert)) != CTL_EXIT_OK)
                break;
        }
        ctl_json_free(json);
        if (code != CTL_EXIT_OK || fflush(ctx->io->out) != 0)
            return code != CTL_EXIT_OK ? code
                                       : ctl_fail(ctx, CTL_EXIT_REMOTE, "cannot write the output");
    }
    return code;
}

int ctl_alerts(ctl_context_t *ctx, const char *arg)
{
    static const ctl_column_t columns[] = {
        {"ID", 0}, {"DEVICE", 0}, {"KIND", 0}, {"CREATED", 0}, {"DETAILS", 60},
    };
    const char *after_text = ctx->args->value[CTL_OPT_AFTER];
    char path[64];
    uint64_t after = 0;
    ctl_table_t table;
    cJSON *json = NULL;
    const cJSON *alerts, *alert;
    char last_id[32] = "";
    int count = 0;
    int code;

    (void)arg;
    if (after_text != NULL && ctl_uint_parse(after_text, 0, 1ULL << 53, &after) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE, "--after must be an alert id (a number)");
    if (ctx->args->value[CTL_OPT_FOLLOW] != NULL)
        return alerts_follow(ctx, after);
    if (after_text != NULL)
        snprintf(path, sizeof(path), TETHER_FLEET_PATH_ALERTS "?after=%llu",
                 (unsigned long long)after);
    else
        snprintf(path, sizeof(path), TETHER_FLEET_PATH_ALERTS);
    ctl_table_init(&table, columns, sizeof(columns) / sizeof(columns[0]));
    if ((code = ctl_get_list(ctx, path, "alerts", &json, &alerts)) != CTL_EXIT_OK || alerts == NULL)
        goto out;
    cJSON_ArrayForEach(alert, alerts)
    {
        char created[40], details[512];
        const char *row[5] = {last_id, NULL, NULL, created, details};

        ctl_format_value(cJSON_GetObjectItemCaseSensitive(alert, "id"), last_id,
                         sizeof(last_id));
        row[1] = ctl_json_string(alert, "device_id");
        row[2] = ctl_json_string(alert, "kind");
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(alert, "created_at"), created,
                        sizeof(created));
        ctl_format_value(cJSON_GetObjectItemCaseSensitive(alert, "details"), details,
                         sizeof(details));
        if (ctl_table_add_row(&table, row) != TETHER_OK) {
            code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
            goto out;
        }
        count++;
    }
    ctl_table_print(&table, ctx->io->out);
    /* A full page: tell people how to read on (on stderr, so that stdout
     * stays the table). */
    if (count >= TETHER_FLEET_ALERTS_PAGE) {
        fflush(ctx->io->out);
        fprintf(ctx->io->err,
                CTL_PROGRAM ": alerts: more may follow: tetherctl alerts --after %s\n", last_id);
    }
out:
    ctl_table_free(&table);
    ctl_json_free(json);
    return code;
}
