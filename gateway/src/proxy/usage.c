#include "tether/gate/usage.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "json_integer.h"
#include "tether/json_strict.h"

/* An absent count is 0 (embeddings report no completion_tokens). */
static bool read_tokens(const cJSON *usage, const char *name, uint64_t *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(usage, name);

    *value = 0;
    return item == NULL || tether_gate_json_integer(item, 0, TETHER_GATE_MAX_USAGE_TOKENS, value);
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
