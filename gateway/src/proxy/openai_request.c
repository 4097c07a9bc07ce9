#include "tether/gate/openai_request.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_integer.h"
#include "tether/bytes.h"
#include "tether/json_strict.h"

bool tether_gate_endpoint_from_path(const char *path, tether_gate_endpoint_t *endpoint)
{
    static const struct {
        const char *path;
        tether_gate_endpoint_t endpoint;
    } paths[] = {
        {"/v1/chat/completions", TETHER_GATE_CHAT_COMPLETIONS},
        {"/v1/completions", TETHER_GATE_COMPLETIONS},
        {"/v1/embeddings", TETHER_GATE_EMBEDDINGS},
    };
    bool found = false;

    for (size_t i = 0; path != NULL && endpoint != NULL && i < sizeof(paths) / sizeof(paths[0]) &&
                       !found;
         i++) {
        if (strcmp(path, paths[i].path) == 0) {
            *endpoint = paths[i].endpoint;
            found = true;
        }
    }
    return found;
}

void tether_gate_request_init(tether_gate_request_t *request)
{
    if (request != NULL)
        memset(request, 0, sizeof(*request));
}

void tether_gate_request_free(tether_gate_request_t *request)
{
    if (request == NULL)
        return;
    if (request->body != NULL) {
        tether_wipe(request->body, request->body_len);
        free(request->body);
    }
    tether_wipe(request, sizeof(*request));
}

/* An optional positive integer member up to max; *value untouched when
 * absent. JSON null counts as absent (clients send "max_tokens": null). */
static bool read_count(const cJSON *object, const char *name, uint64_t max, uint64_t *value,
                       bool *present)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);

    *present = item != NULL && !cJSON_IsNull(item);
    return !*present || tether_gate_json_integer(item, 1, max, value);
}

/* Chat content whose token count its bytes do not bound is refused: only
 * strings and "text" parts pass. */
static bool text_only(const cJSON *messages)
{
    const cJSON *message;
    bool ok = cJSON_IsArray(messages) && cJSON_GetArraySize(messages) > 0;

    cJSON_ArrayForEach(message, messages)
    {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(message, "content");
        const cJSON *part;

        if (!cJSON_IsObject(message))
            ok = false;
        if (!cJSON_IsArray(content))
            continue;
        cJSON_ArrayForEach(part, content)
        {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
                ok = false;
        }
    }
    return ok;
}

/* How many prompts a completions or embeddings request batches: an array
 * of strings or of token arrays is one per element; a string or one token
 * array is one. */
static uint64_t prompt_count(const cJSON *prompt)
{
    const cJSON *first = cJSON_IsArray(prompt) ? cJSON_GetArrayItem(prompt, 0) : NULL;

    if (first != NULL && (cJSON_IsString(first) || cJSON_IsArray(first)))
        return (uint64_t)cJSON_GetArraySize(prompt);
    return 1;
}

/* Sets max_tokens (to default_max when the client set no limit) and the
 * completion bound: max_tokens x choices x prompts, each bounded. */
static tether_status_t completion_limits(tether_gate_endpoint_t endpoint, cJSON *root,
                                         uint64_t default_max, tether_gate_request_t *request,
                                         bool *changed, char *why, size_t why_size)
{
    uint64_t max_tokens = 0, max_completion = 0, n = 1, best_of = 1, prompts = 1;
    bool has_max, has_completion, has_n, has_best_of;

    if (!read_count(root, "max_tokens", TETHER_GATE_MAX_COMPLETION_TOKENS, &max_tokens,
                    &has_max) ||
        !read_count(root, "max_completion_tokens", TETHER_GATE_MAX_COMPLETION_TOKENS,
                    &max_completion, &has_completion))
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "max_tokens and max_completion_tokens must be integers from 1 to %u",
                              TETHER_GATE_MAX_COMPLETION_TOKENS);
    if (!read_count(root, "n", TETHER_GATE_MAX_CHOICES, &n, &has_n) ||
        !read_count(root, "best_of", TETHER_GATE_MAX_CHOICES, &best_of, &has_best_of))
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "n and best_of must be integers from 1 to %d",
                              TETHER_GATE_MAX_CHOICES);
    if (endpoint == TETHER_GATE_COMPLETIONS) {
        prompts = prompt_count(cJSON_GetObjectItemCaseSensitive(root, "prompt"));
        if (prompts == 0 || prompts > TETHER_GATE_MAX_CHOICES)
            return tether_explain(TETHER_ERR_PARSE, why, why_size,
                                  "prompt must hold from 1 to %d prompts",
                                  TETHER_GATE_MAX_CHOICES);
    }
    if (!has_max && !has_completion) {
        if (cJSON_HasObjectItem(root, "max_tokens"))
            cJSON_DeleteItemFromObjectCaseSensitive(root, "max_tokens"); /* a null */
        if (default_max > TETHER_GATE_MAX_COMPLETION_TOKENS ||
            cJSON_AddNumberToObject(root, "max_tokens", (double)default_max) == NULL)
            return TETHER_ERR_NO_MEMORY;
        max_tokens = default_max;
        *changed = true;
    }
    /* Both set: upstreams differ on which wins, so the larger bounds it. */
    if (max_completion > max_tokens)
        max_tokens = max_completion;
    /* At most 2^24 x 2^7 x 2^7: no overflow. */
    request->completion_bound = max_tokens * (best_of > n ? best_of : n) * prompts;
    return TETHER_OK;
}

/* A stream asks upstream for its final usage chunk. */
static tether_status_t ask_usage(cJSON *root, bool *changed, char *why, size_t why_size)
{
    cJSON *options = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    cJSON *include;

    if (options == NULL || cJSON_IsNull(options)) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "stream_options");
        if ((options = cJSON_AddObjectToObject(root, "stream_options")) == NULL)
            return TETHER_ERR_NO_MEMORY;
    } else if (!cJSON_IsObject(options)) {
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "stream_options must be an object");
    }
    include = cJSON_GetObjectItemCaseSensitive(options, "include_usage");
    if (cJSON_IsTrue(include))
        return TETHER_OK;
    if (include != NULL && !cJSON_IsBool(include) && !cJSON_IsNull(include))
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "stream_options.include_usage must be true or false");
    cJSON_DeleteItemFromObjectCaseSensitive(options, "include_usage");
    if (cJSON_AddTrueToObject(options, "include_usage") == NULL)
        return TETHER_ERR_NO_MEMORY;
    *changed = true;
    return TETHER_OK;
}

static tether_status_t copy_body(const char *text, size_t len, tether_gate_request_t *request)
{
    if ((request->body = malloc(len + 1)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    memcpy(request->body, text, len);
    request->body[len] = '\0';
    request->body_len = len;
    return TETHER_OK;
}

tether_status_t tether_gate_request_inspect(tether_gate_endpoint_t endpoint, const uint8_t *body,
                                            size_t len, uint64_t default_max_tokens,
                                            tether_gate_request_t *request, char *why,
                                            size_t why_size)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    cJSON *root = NULL;
    const cJSON *model, *stream;
    char *printed = NULL;
    bool changed = false;

    if (request != NULL)
        memset(request, 0, sizeof(*request));
    if (request == NULL || (body == NULL && len > 0) || default_max_tokens == 0 ||
        endpoint > TETHER_GATE_EMBEDDINGS)
        goto out;
    if (tether_json_parse_object((const char *)body, len, &root) != TETHER_OK) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "the body is not one JSON object (valid UTF-8, no repeated names)");
        goto out;
    }
    rc = TETHER_ERR_PARSE;
    model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0' ||
        strlen(model->valuestring) >= sizeof(request->model)) {
        rc = tether_explain(rc, why, why_size, "model must be a name of 1 to %zu bytes",
                            sizeof(request->model) - 1);
        goto out;
    }
    memcpy(request->model, model->valuestring, strlen(model->valuestring) + 1);
    stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream != NULL && !cJSON_IsBool(stream) && !cJSON_IsNull(stream)) {
        rc = tether_explain(rc, why, why_size, "stream must be true or false");
        goto out;
    }
    request->stream = cJSON_IsTrue(stream);
    request->prompt_bound = len;
    if (endpoint == TETHER_GATE_CHAT_COMPLETIONS &&
        !text_only(cJSON_GetObjectItemCaseSensitive(root, "messages"))) {
        rc = tether_explain(rc, why, why_size,
                            "messages must be a non-empty array of messages with text content "
                            "only (the gateway cannot bound the cost of images, audio or files)");
        goto out;
    }
    if (endpoint == TETHER_GATE_EMBEDDINGS) {
        if (request->stream) {
            rc = tether_explain(rc, why, why_size, "embeddings do not stream");
            goto out;
        }
    } else {
        if ((rc = completion_limits(endpoint, root, default_max_tokens, request, &changed, why,
                                    why_size)) != TETHER_OK)
            goto out;
        if (request->stream && (rc = ask_usage(root, &changed, why, why_size)) != TETHER_OK)
            goto out;
    }
    if (!changed) {
        rc = copy_body((const char *)body, len, request);
        goto out;
    }
    rc = TETHER_ERR_NO_MEMORY;
    if ((printed = cJSON_PrintUnformatted(root)) == NULL)
        goto out;
    rc = copy_body(printed, strlen(printed), request);
out:
    if (printed != NULL) {
        tether_wipe(printed, strlen(printed));
        cJSON_free(printed);
    }
    cJSON_Delete(root);
    if (rc != TETHER_OK)
        tether_gate_request_free(request);
    return rc;
}
