#include "fleet_refusal.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/json_strict.h"

static void copy_member(const cJSON *body, const char *name, char *out, size_t out_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(body, name);

    if (cJSON_IsString(item))
        snprintf(out, out_size, "%s", item->valuestring);
}

void tether_fleet_refusal_parse(const tether_https_response_t *resp,
                                tether_fleet_refusal_t *refusal)
{
    cJSON *body = NULL;

    memset(refusal, 0, sizeof(*refusal));
    refusal->status = resp->status;
    if (resp->body == NULL ||
        tether_json_parse_object((const char *)resp->body, resp->body_len, &body) != TETHER_OK)
        return;
    copy_member(body, "error", refusal->error, sizeof(refusal->error));
    copy_member(body, "tether_error", refusal->tether_error, sizeof(refusal->tether_error));
    copy_member(body, "error_description", refusal->description, sizeof(refusal->description));
    cJSON_Delete(body);
}

const char *tether_fleet_refusal_code(const tether_fleet_refusal_t *refusal, const char *fallback)
{
    if (refusal->tether_error[0] != '\0')
        return refusal->tether_error;
    return refusal->error[0] != '\0' ? refusal->error : fallback;
}

const char *tether_fleet_refusal_description(const tether_fleet_refusal_t *refusal)
{
    return refusal->description[0] != '\0' ? refusal->description : "no description";
}
