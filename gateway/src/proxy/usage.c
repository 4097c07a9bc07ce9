#include "tether/gate/usage.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/json_strict.h"

static bool read_tokens(const cJSON *usage, const char *name, uint64_t *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(usage, name);
    double v;

    *value = 0;
    if (item == NULL)
        return true;
    if (!cJSON_IsNumber(item))
        return false;
    v = item->valuedouble;
    if (!(v >= 0.0 && v <= (double)TETHER_GATE_MAX_USAGE_TOKENS) || floor(v) != v)
        return false;
    *value = (uint64_t)v;
    return true;
}

tether_status_t tether_gate_usage_read(const char *text, size_t len, tether_gate_usage_t *usage)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    cJSON *root = NULL;
    const cJSON *object;
    uint64_t prompt, completion;

    if (usage == NULL || (text == NULL && len > 0))
        goto out;
    if ((rc = tether_json_parse_object(text, len, &root)) != TETHER_OK)
        goto out;
    object = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (object == NULL || cJSON_IsNull(object))
        goto out;
    rc = TETHER_ERR_PARSE;
    if (!cJSON_IsObject(object) || !read_tokens(object, "prompt_tokens", &prompt) ||
        !read_tokens(object, "completion_tokens", &completion) ||
        !cJSON_HasObjectItem(object, "prompt_tokens"))
        goto out;
    usage->found = true;
    usage->prompt_tokens = prompt;
    usage->completion_tokens = completion;
    rc = TETHER_OK;
out:
    cJSON_Delete(root);
    return rc;
}

tether_status_t tether_gate_usage_on_event(void *arg, const char *data, size_t data_len)
{
    tether_gate_usage_t *usage = arg;
    tether_status_t rc = TETHER_ERR_PROTOCOL;

    if (usage->done)
        goto out;
    if (data_len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        usage->done = true;
        rc = TETHER_OK;
        goto out;
    }
    /* Only chunks that name a usage are parsed: the many token chunks cost
     * a scan, not a parse. A usage hidden behind an escaped name is missed,
     * and the request is then charged its worst case. */
    rc = TETHER_OK;
    if (memmem(data, data_len, "\"usage\"", 7) != NULL)
        rc = tether_gate_usage_read(data, data_len, usage);
out:
    return rc;
}
