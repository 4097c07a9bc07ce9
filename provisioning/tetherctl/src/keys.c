/* tetherctl verbs for the token issuer keys: key list, key rotate. */
#include <stdio.h>
#include <string.h>

#include "tetherctl.h"

int ctl_key_list(ctl_context_t *ctx, const char *arg)
{
    static const ctl_column_t columns[] = {
        {"KID", 0}, {"STATE", 0}, {"CREATED", 0}, {"NOT AFTER", 0},
    };
    ctl_table_t table;
    cJSON *json = NULL;
    const cJSON *keys, *key;
    int code;

    (void)arg;
    ctl_table_init(&table, columns, sizeof(columns) / sizeof(columns[0]));
    if ((code = ctl_get_list(ctx, TETHER_FLEET_PATH_KEYS, "keys", &json, &keys)) != CTL_EXIT_OK || keys == NULL)
        goto out;
    cJSON_ArrayForEach(key, keys)
    {
        char created[40], not_after[40];
        const char *row[4] = {NULL, NULL, created, not_after};

        row[0] = ctl_json_string(key, "kid");
        row[1] = ctl_json_string(key, "state");
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(key, "created_at"), created,
                        sizeof(created));
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(key, "not_after"), not_after,
                        sizeof(not_after));
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

int ctl_key_rotate(ctl_context_t *ctx, const char *arg)
{
    cJSON *json = NULL;
    const cJSON *active, *retired;
    const char *new_kid, *old_kid;
    char until[40];
    int code;

    (void)arg;
    if ((code = ctl_call(ctx, "POST", TETHER_FLEET_PATH_KEYS_ROTATE, NULL, NULL, 0, &json)) !=
        CTL_EXIT_OK)
        goto out;
    active = cJSON_GetObjectItemCaseSensitive(json, "active");
    retired = cJSON_GetObjectItemCaseSensitive(json, "retired");
    new_kid = ctl_json_string(active, "kid");
    old_kid = ctl_json_string(retired, "kid");
    if (new_kid == NULL || old_kid == NULL) {
        code = ctl_fail(ctx, CTL_EXIT_REMOTE, "the answer names no active and retired key");
        goto out;
    }
    if (ctx->json) {
        code = ctl_print_raw_body(ctx);
        goto out;
    }
    ctl_format_time(cJSON_GetObjectItemCaseSensitive(retired, "not_after"), until, sizeof(until));
    {
        char clean_new[64], clean_old[64], clean_until[64];

        ctl_text_shorten(new_kid, 0, clean_new, sizeof(clean_new));
        ctl_text_shorten(old_kid, 0, clean_old, sizeof(clean_old));
        ctl_text_shorten(until, 0, clean_until, sizeof(clean_until));
        fprintf(ctx->io->out, "issuer key %s signs new tokens; %s retired, published until %s\n",
                clean_new, clean_old, clean_until);
    }
out:
    ctl_json_free(json);
    return code;
}
