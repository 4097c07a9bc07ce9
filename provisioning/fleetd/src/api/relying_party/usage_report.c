/* The body of POST /v1/usage/reports, parsed strictly (usage_report.h). */
#include "usage_report.h"

#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/json_strict.h"
#include "validate.h"

static const char *const report_members[] = {"version", "gateway", "report_id", "entries"};
/* The required members first, then the optional ones. */
static const char *const entry_members[] = {
    "jti",           "device",      "requests",  "refused",  "prompt_tokens",
    "completion_tokens", "cost_micros", "first_seen", "last_seen",
    "refused_models", "refused_sources"};
#define ENTRY_REQUIRED 9

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Every member of object is one of names[0..n), and each of the first
 * required is there (the strict parser refused repeated ones). where names
 * the object in the message ("the report", "entry 3"). */
static tether_status_t members_exact(const cJSON *object, const char *const *names, size_t n,
                                     size_t required, const char *where, char *message,
                                     size_t size)
{
    size_t seen = 0;

    if (!cJSON_IsObject(object))
        return tether_explain(TETHER_ERR_PARSE, message, size, "%s must be a JSON object",
                              where);
    for (const cJSON *item = object->child; item != NULL; item = item->next) {
        size_t i = 0;

        while (i < n && strcmp(item->string, names[i]) != 0)
            i++;
        if (i == n)
            return tether_explain(TETHER_ERR_PARSE, message, size,
                                  "%s: unknown field \"%.40s\"", where, item->string);
        seen++;
    }
    for (size_t i = 0; seen < n && i < required; i++) {
        if (cJSON_GetObjectItemCaseSensitive(object, names[i]) == NULL)
            return tether_explain(TETHER_ERR_PARSE, message, size,
                                  "%s: field \"%s\" is required", where, names[i]);
    }
    return TETHER_OK;
}

/* An integer member from 0 to max (exact in a double: max < 2^53). */
static tether_status_t integer_of(const cJSON *object, const char *name, int64_t max,
                                  int64_t *value, const char *where, char *message, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    double d = cJSON_IsNumber(item) ? item->valuedouble : -1.0;

    if (!isfinite(d) || floor(d) != d || d < 0 || d > (double)max)
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "%s: \"%s\" must be an integer from 0 to %lld", where, name,
                              (long long)max);
    *value = (int64_t)d;
    return TETHER_OK;
}

/* An optional count (0 when absent; present, as integer_of). */
static tether_status_t optional_count(const cJSON *object, const char *name, int64_t *value,
                                      const char *where, char *message, size_t size)
{
    *value = 0;
    if (cJSON_GetObjectItemCaseSensitive(object, name) == NULL)
        return TETHER_OK;
    return integer_of(object, name, TETHER_USAGE_MAX_REQUESTS, value, where, message, size);
}

/* A string member into out (out_size with its NUL) when valid says so. */
static tether_status_t string_of(const cJSON *object, const char *name,
                                 bool (*valid)(const char *text, size_t len), char *out,
                                 size_t out_size, const char *what, const char *where,
                                 char *message, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    const char *text = cJSON_IsString(item) ? item->valuestring : NULL;
    size_t len = text != NULL ? strlen(text) : 0;

    if (text == NULL || len >= out_size || !valid(text, len))
        return tether_explain(TETHER_ERR_PARSE, message, size, "%s: \"%s\" must be %s", where,
                              name, what);
    memcpy(out, text, len + 1);
    return TETHER_OK;
}

/* A relying party's name for itself: its audience (tether-gate's
 * "tether-gate", "https://gate.example") or a fleet name without spaces. */
static bool gateway_valid(const char *name, size_t len)
{
    return len >= 1 && len <= TETHER_STORE_NAME_MAX &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/@+-") ==
               len;
}

static bool report_id_valid(const char *id, size_t len)
{
    if (len < TETHER_USAGE_REPORT_ID_MIN || len >= TETHER_USAGE_REPORT_ID_SIZE)
        return false;
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

/* What fleetd issues (token_issuer.c): 16 random bytes in lowercase hex. */
static bool jti_valid(const char *jti, size_t len)
{
    return len == TETHER_STORE_JTI_SIZE - 1 && strspn(jti, "0123456789abcdef") == len;
}

static tether_status_t parse_entry(const cJSON *item, size_t index, tether_store_usage_entry_t *entry,
                                   char *message, size_t size)
{
    char where[32];
    tether_status_t rc;

    snprintf(where, sizeof(where), "entry %zu", index);
    if ((rc = members_exact(item, entry_members, COUNT(entry_members), ENTRY_REQUIRED, where,
                            message, size)) != TETHER_OK ||
        (rc = string_of(item, "jti", jti_valid, entry->jti, sizeof(entry->jti),
                        "a token id of this fleet (32 lowercase hex digits)", where, message,
                        size)) != TETHER_OK ||
        (rc = string_of(item, "device", tether_fleet_device_id_valid, entry->device_id,
                        sizeof(entry->device_id), "a device id (dev_ and 24 lowercase hex digits)",
                        where, message, size)) != TETHER_OK ||
        (rc = integer_of(item, "requests", TETHER_USAGE_MAX_REQUESTS, &entry->requests, where,
                         message, size)) != TETHER_OK ||
        (rc = integer_of(item, "refused", TETHER_USAGE_MAX_REQUESTS, &entry->refused, where,
                         message, size)) != TETHER_OK ||
        (rc = integer_of(item, "prompt_tokens", TETHER_USAGE_MAX_TOKENS, &entry->prompt_tokens,
                         where, message, size)) != TETHER_OK ||
        (rc = integer_of(item, "completion_tokens", TETHER_USAGE_MAX_TOKENS,
                         &entry->completion_tokens, where, message, size)) != TETHER_OK ||
        (rc = integer_of(item, "cost_micros", TETHER_USAGE_MAX_COST, &entry->cost_micros, where,
                         message, size)) != TETHER_OK ||
        (rc = integer_of(item, "first_seen", TETHER_USAGE_MAX_TIME, &entry->first_seen, where,
                         message, size)) != TETHER_OK ||
        (rc = integer_of(item, "last_seen", TETHER_USAGE_MAX_TIME, &entry->last_seen, where,
                         message, size)) != TETHER_OK)
        return rc;
    if (entry->first_seen > entry->last_seen)
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "%s: first_seen is after last_seen", where);
    if ((rc = optional_count(item, "refused_models", &entry->refused_models, where, message,
                             size)) != TETHER_OK ||
        (rc = optional_count(item, "refused_sources", &entry->refused_sources, where, message,
                             size)) != TETHER_OK)
        return rc;
    /* Both are refusals the relying party counted in refused too. */
    if (entry->refused_models + entry->refused_sources > entry->refused)
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "%s: refused_models and refused_sources add up to more than "
                              "refused",
                              where);
    return TETHER_OK;
}

tether_status_t tether_usage_report_parse(const char *body, size_t len,
                                          tether_usage_report_t *report, char *message,
                                          size_t message_size)
{
    cJSON *json = NULL;
    const cJSON *entries;
    int64_t version = 0;
    size_t index = 0;
    tether_status_t rc;

    if (report == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(report, 0, sizeof(*report));
    if (body == NULL || len == 0 || len > TETHER_USAGE_REPORT_MAX_BODY ||
        tether_json_parse_object(body, len, &json) != TETHER_OK) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the body must be one JSON object in UTF-8 of at most %d bytes, "
                            "without NUL characters or repeated fields",
                            TETHER_USAGE_REPORT_MAX_BODY);
        goto out;
    }
    if ((rc = members_exact(json, report_members, COUNT(report_members),
                            COUNT(report_members), "the report", message, message_size)) !=
            TETHER_OK ||
        (rc = integer_of(json, "version", TETHER_USAGE_MAX_REQUESTS, &version, "the report",
                         message, message_size)) != TETHER_OK)
        goto out;
    if (version != TETHER_USAGE_REPORT_VERSION) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the report: version must be %d (the only version this fleet reads)",
                            TETHER_USAGE_REPORT_VERSION);
        goto out;
    }
    if ((rc = string_of(json, "gateway", gateway_valid, report->gateway,
                        sizeof(report->gateway), "a name (1-64 of A-Z a-z 0-9 . _ : / @ + -)",
                        "the report", message, message_size)) != TETHER_OK ||
        (rc = string_of(json, "report_id", report_id_valid, report->report_id,
                        sizeof(report->report_id), "16-64 characters of A-Z a-z 0-9 _ -",
                        "the report", message, message_size)) != TETHER_OK)
        goto out;
    entries = cJSON_GetObjectItemCaseSensitive(json, "entries");
    if (!cJSON_IsArray(entries) || cJSON_GetArraySize(entries) < 1 ||
        cJSON_GetArraySize(entries) > TETHER_USAGE_REPORT_MAX_ENTRIES) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the report: \"entries\" must be an array of 1 to %d entries",
                            TETHER_USAGE_REPORT_MAX_ENTRIES);
        goto out;
    }
    for (const cJSON *item = entries->child; item != NULL; item = item->next, index++) {
        tether_store_usage_entry_t *entry = &report->entries[index];

        if ((rc = parse_entry(item, index, entry, message, message_size)) != TETHER_OK)
            goto out;
        /* One entry per token: a second one would be counted twice. */
        for (size_t j = 0; j < index; j++) {
            if (strcmp(report->entries[j].jti, entry->jti) == 0) {
                rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                    "entry %zu: jti repeats entry %zu", index, j);
                goto out;
            }
        }
    }
    report->entry_count = index;
out:
    cJSON_Delete(json);
    if (rc != TETHER_OK)
        memset(report, 0, sizeof(*report));
    return rc;
}
