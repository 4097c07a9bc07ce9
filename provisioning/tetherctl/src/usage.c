/* tetherctl usage: usage and spend per device, or per token of one device,
 * as AI gateways reported them (GET /v1/usage). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tetherctl.h"

#define COLUMN_COUNT 9

/* A whole JSON number as text ("-" when it is none). */
static void format_count(const cJSON *line, const char *name, char *out, size_t size)
{
    ctl_format_value(cJSON_GetObjectItemCaseSensitive(line, name), out, size);
}

/* Millionths as a decimal amount: 2500 -> "0.002500". */
static void format_cost(const cJSON *line, char *out, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(line, "cost_micros");
    double micros = cJSON_IsNumber(item) ? item->valuedouble : -1.0;

    if (micros < 0 || micros > 9007199254740991.0) {
        snprintf(out, size, "-");
        return;
    }
    snprintf(out, size, "%" PRIu64 ".%06" PRIu64, (uint64_t)micros / 1000000u,
             (uint64_t)micros % 1000000u);
}

int ctl_usage(ctl_context_t *ctx, const char *arg)
{
    static const ctl_column_t per_device[COLUMN_COUNT] = {
        {"DEVICE", 0}, {"TOKENS", 0},     {"REQUESTS", 0},  {"REFUSED", 0}, {"PROMPT", 0},
        {"COMPLETION", 0}, {"COST", 0}, {"LAST SEEN", 0}, {"FLAGGED", 0},
    };
    static const ctl_column_t per_token[COLUMN_COUNT] = {
        {"JTI", 0},        {"REQUESTS", 0}, {"REFUSED", 0},    {"PROMPT", 0},    {"COMPLETION", 0},
        {"COST", 0},       {"FIRST SEEN", 0}, {"LAST SEEN", 0}, {"FLAGGED", 0},
    };
    const char *device = ctx->args->value[CTL_OPT_DEVICE];
    const char *since_text = ctx->args->value[CTL_OPT_SINCE];
    char path[160];
    int64_t since = 0;
    size_t used;
    ctl_table_t table;
    cJSON *json = NULL;
    const cJSON *lines, *line;
    int code;

    (void)arg;
    if (device != NULL && !ctl_path_id_valid(device))
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "--device must be a device id (dev_ and 24 hex digits)");
    if (since_text != NULL && ctl_since_parse(since_text, (int64_t)time(NULL), &since) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "--since must be a duration (1h, 2d) or a UTC time "
                        "YYYY-MM-DDTHH:MM:SSZ");
    used = (size_t)snprintf(path, sizeof(path), TETHER_FLEET_PATH_USAGE "?since=%" PRId64, since);
    if (device != NULL)
        snprintf(path + used, sizeof(path) - used, "&device=%s", device);
    ctl_table_init(&table, device != NULL ? per_token : per_device, COLUMN_COUNT);
    if ((code = ctl_get_list(ctx, path, "usage", &json, &lines)) != CTL_EXIT_OK || lines == NULL)
        goto out;
    cJSON_ArrayForEach(line, lines)
    {
        char tokens[24], requests[24], refused[24], prompt[24], completion[24], cost[32];
        char first[40], last[40], flagged[8];
        const char *by_device[COLUMN_COUNT] = {ctl_json_string(line, "device_id"), tokens,
                                               requests, refused, prompt, completion, cost,
                                               last, flagged};
        const char *by_token[COLUMN_COUNT] = {ctl_json_string(line, "jti"), requests, refused,
                                              prompt, completion, cost, first, last, flagged};

        format_count(line, "tokens", tokens, sizeof(tokens));
        format_count(line, "requests", requests, sizeof(requests));
        format_count(line, "refused", refused, sizeof(refused));
        format_count(line, "prompt_tokens", prompt, sizeof(prompt));
        format_count(line, "completion_tokens", completion, sizeof(completion));
        format_count(line, "flagged", flagged, sizeof(flagged));
        format_cost(line, cost, sizeof(cost));
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(line, "first_seen"), first,
                        sizeof(first));
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(line, "last_seen"), last, sizeof(last));
        if (ctl_table_add_row(&table, device != NULL ? by_token : by_device) != TETHER_OK) {
            code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
            goto out;
        }
    }
    ctl_table_print(&table, ctx->io->out);
    /* A cut list: say so on stderr, so that stdout stays the table. */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "truncated"))) {
        fflush(ctx->io->out);
        fprintf(ctx->io->err,
                CTL_PROGRAM ": usage: only the first %d lines; narrow with --since or --device\n",
                TETHER_FLEET_USAGE_PAGE);
    }
out:
    ctl_table_free(&table);
    ctl_json_free(json);
    return code;
}
