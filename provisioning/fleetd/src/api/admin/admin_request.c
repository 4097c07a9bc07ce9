#include "admin_request.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/json_strict.h"
#include "validate.h"

typedef enum field_type {
    FIELD_STRING,
    FIELD_INTEGER,
    FIELD_STRING_ARRAY,
} field_type_t;

typedef struct field_spec {
    const char *name;
    field_type_t type;
    bool required;
} field_spec_t;

static bool type_ok(const cJSON *item, field_type_t type)
{
    switch (type) {
    case FIELD_STRING:
        return cJSON_IsString(item) && item->valuestring != NULL;
    case FIELD_INTEGER:
        return cJSON_IsNumber(item);
    case FIELD_STRING_ARRAY:
        return cJSON_IsArray(item);
    }
    return false;
}

static const char *type_name(field_type_t type)
{
    return type == FIELD_STRING ? "a string" : type == FIELD_INTEGER ? "an integer" : "an array";
}

/* Checks every member of object against specs. */
static tether_status_t check_members(const cJSON *object, const field_spec_t *specs, size_t n,
                                     char *message, size_t size)
{
    unsigned seen = 0;

    for (const cJSON *item = object->child; item != NULL; item = item->next) {
        size_t i = 0;
        while (i < n && (item->string == NULL || strcmp(item->string, specs[i].name) != 0))
            i++;
        if (i == n)
            return tether_explain(TETHER_ERR_PARSE, message, size, "unknown field \"%.40s\"",
                                  item->string != NULL ? item->string : "");
        seen |= 1u << i;
        if (!type_ok(item, specs[i].type))
            return tether_explain(TETHER_ERR_PARSE, message, size, "field \"%s\" must be %s",
                                  specs[i].name, type_name(specs[i].type));
    }
    for (size_t i = 0; i < n; i++) {
        if (specs[i].required && !(seen & (1u << i)))
            return tether_explain(TETHER_ERR_PARSE, message, size, "field \"%s\" is required",
                                  specs[i].name);
    }
    return TETHER_OK;
}

/* Parses body as one strict JSON object (lib's tether_json_parse_object:
 * valid UTF-8, no NUL or "\u0000", no repeated member) whose members match
 * specs. *out is deleted by the caller. */
static tether_status_t parse_object(const char *body, size_t len, const field_spec_t *specs,
                                    size_t n, cJSON **out, char *message, size_t size)
{
    cJSON *json = NULL;
    tether_status_t rc;

    *out = NULL;
    if (body == NULL || len == 0)
        return tether_explain(TETHER_ERR_PARSE, message, size, "the body must be a JSON object");
    if (tether_json_parse_object(body, len, &json) != TETHER_OK)
        return tether_explain(
            TETHER_ERR_PARSE, message, size,
            "the body must be exactly one JSON object in UTF-8, without NUL characters "
            "or repeated fields");
    if ((rc = check_members(json, specs, n, message, size)) != TETHER_OK) {
        cJSON_Delete(json);
        return rc;
    }
    *out = json;
    return TETHER_OK;
}

static const char *string_of(const cJSON *json, const char *name, size_t *len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, name);

    if (item == NULL || item->valuestring == NULL) {
        *len = 0;
        return NULL;
    }
    *len = strlen(item->valuestring);
    return item->valuestring;
}

/* An integer member within [min, max]; *value untouched when absent. */
static tether_status_t integer_of(const cJSON *json, const char *name, double min, double max,
                                  unsigned *value, char *message, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, name);
    double d;

    if (item == NULL)
        return TETHER_OK;
    d = item->valuedouble;
    if (!isfinite(d) || floor(d) != d || d < min || d > max)
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "field \"%s\" must be an integer from %.0f to %.0f", name, min, max);
    *value = (unsigned)d;
    return TETHER_OK;
}

static tether_status_t name_of(const cJSON *json, char out[TETHER_STORE_NAME_MAX + 1],
                               char *message, size_t size)
{
    size_t len;
    const char *name = string_of(json, "name", &len);

    if (!tether_fleet_name_valid(name, len))
        return tether_explain(
            TETHER_ERR_PARSE, message, size,
            "name must be 1-%d characters of A-Z a-z 0-9 . _ : @ + - and inner spaces",
            TETHER_STORE_NAME_MAX);
    memcpy(out, name, len + 1);
    return TETHER_OK;
}

tether_status_t tether_admin_parse_allow(const char *body, size_t len,
                                         tether_admin_allow_request_t *req, char *message,
                                         size_t message_size)
{
    static const field_spec_t specs[] = {
        {"ek_sha256", FIELD_STRING, true},
        {"name", FIELD_STRING, true},
    };
    cJSON *json = NULL;
    const char *ek;
    size_t ek_len;
    tether_status_t rc;

    if (req == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(req, 0, sizeof(*req));
    if ((rc = parse_object(body, len, specs, 2, &json, message, message_size)) != TETHER_OK)
        return rc;
    ek = string_of(json, "ek_sha256", &ek_len);
    if (tether_fleet_ek_sha256_normalize(ek, ek_len, req->ek_sha256) != TETHER_OK)
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "ek_sha256 must be 64 hex digits");
    else
        rc = name_of(json, req->name, message, message_size);
    cJSON_Delete(json);
    return rc;
}

/* A body of one required string member, name, that valid accepts, copied
 * into out (out_size bytes, zeroed on entry); rule says what valid wants. */
static tether_status_t one_string(const char *body, size_t len, const char *name,
                                  bool (*valid)(const char *text, size_t len), const char *rule,
                                  char *out, size_t out_size, char *message, size_t message_size)
{
    const field_spec_t specs[] = {{name, FIELD_STRING, true}};
    cJSON *json = NULL;
    const char *text;
    size_t text_len;
    tether_status_t rc;

    memset(out, 0, out_size);
    if ((rc = parse_object(body, len, specs, 1, &json, message, message_size)) != TETHER_OK)
        return rc;
    text = string_of(json, name, &text_len);
    if (text == NULL || text_len >= out_size || !valid(text, text_len))
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size, "%s must be %s", name, rule);
    else
        memcpy(out, text, text_len + 1);
    cJSON_Delete(json);
    return rc;
}

tether_status_t tether_admin_parse_reason(const char *body, size_t len,
                                          tether_admin_reason_request_t *req, char *message,
                                          size_t message_size)
{
    char rule[64];

    if (req == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    snprintf(rule, sizeof(rule), "1-%d printable ASCII characters", TETHER_STORE_REASON_MAX);
    return one_string(body, len, "reason", tether_fleet_reason_valid, rule, req->reason,
                      sizeof(req->reason), message, message_size);
}

static bool policy_name_valid(const char *text, size_t len)
{
    return len <= TETHER_POLICY_NAME_MAX && tether_policy_name_valid(text);
}

tether_status_t tether_admin_parse_policy(const char *body, size_t len,
                                          tether_admin_policy_request_t *req, char *message,
                                          size_t message_size)
{
    char rule[96];

    if (req == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    snprintf(rule, sizeof(rule),
             "a policy name: 1-%d of a-z 0-9 . _ -, starting with a letter or digit",
             TETHER_POLICY_NAME_MAX);
    return one_string(body, len, "policy", policy_name_valid, rule, req->policy,
                      sizeof(req->policy), message, message_size);
}

tether_status_t tether_admin_parse_bootstrap(const char *body, size_t len, unsigned max_ttl,
                                             tether_admin_bootstrap_request_t *req,
                                             char *message, size_t message_size)
{
    static const field_spec_t specs[] = {
        {"ttl_seconds", FIELD_INTEGER, true},
        {"uses", FIELD_INTEGER, false},
    };
    cJSON *json = NULL;
    tether_status_t rc;

    if (req == NULL || max_ttl < TETHER_ADMIN_MIN_TTL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(req, 0, sizeof(*req));
    req->uses = 1;
    if ((rc = parse_object(body, len, specs, 2, &json, message, message_size)) != TETHER_OK)
        return rc;
    rc = integer_of(json, "ttl_seconds", TETHER_ADMIN_MIN_TTL, max_ttl, &req->ttl_seconds, message,
                    message_size);
    if (rc == TETHER_OK)
        rc = integer_of(json, "uses", 1, TETHER_FLEET_BOOTSTRAP_MAX_USES, &req->uses, message,
                        message_size);
    cJSON_Delete(json);
    return rc;
}

static tether_status_t roles_of(const cJSON *json, unsigned *roles, char *message, size_t size)
{
    const cJSON *array = cJSON_GetObjectItemCaseSensitive(json, "roles");
    const cJSON *item;
    char known[64];

    *roles = 0;
    cJSON_ArrayForEach(item, array)
    {
        unsigned bit = 0;
        if (!cJSON_IsString(item) || item->valuestring == NULL ||
            (bit = tether_role_bit(item->valuestring, strlen(item->valuestring))) == 0) {
            /* 64 bytes hold every name; out is a string whatever it returns. */
            (void)tether_roles_format(TETHER_ROLE_KNOWN, known, sizeof(known));
            return tether_explain(TETHER_ERR_PARSE, message, size,
                                  "roles must hold only these role names: %s", known);
        }
        if (*roles & bit)
            return tether_explain(TETHER_ERR_PARSE, message, size, "role \"%s\" appears twice",
                                  item->valuestring);
        *roles |= bit;
    }
    if (*roles == 0)
        return tether_explain(TETHER_ERR_PARSE, message, size, "roles must name at least one role");
    return TETHER_OK;
}

tether_status_t tether_admin_parse_token(const char *body, size_t len,
                                         tether_admin_token_request_t *req, char *message,
                                         size_t message_size)
{
    static const field_spec_t specs[] = {
        {"name", FIELD_STRING, true},
        {"roles", FIELD_STRING_ARRAY, true},
    };
    cJSON *json = NULL;
    tether_status_t rc;

    if (req == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(req, 0, sizeof(*req));
    if ((rc = parse_object(body, len, specs, 2, &json, message, message_size)) != TETHER_OK)
        return rc;
    rc = name_of(json, req->name, message, message_size);
    if (rc == TETHER_OK)
        rc = roles_of(json, &req->roles, message, message_size);
    cJSON_Delete(json);
    return rc;
}
