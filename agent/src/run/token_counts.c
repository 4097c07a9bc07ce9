#include "token_counts.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/base64url.h"
#include "tether/json_strict.h"
#include "tether/jose.h"

void tether_token_counts_init(tether_token_counts_t *c)
{
    memset(c, 0, sizeof(*c));
}

static size_t jti_length(const char *jti)
{
    return jti == NULL ? 0 : strnlen(jti, TETHER_TOKEN_JTI_MAX + 1);
}

tether_status_t tether_token_counts_add(tether_token_counts_t *c, const char *jti,
                                        tether_token_count_kind_t kind)
{
    size_t n = jti_length(jti), i;
    tether_token_count_t entry;

    if (n == 0 || n > TETHER_TOKEN_JTI_MAX)
        return TETHER_ERR_INVALID_ARGUMENT;
    for (i = 0; i < c->count && strcmp(c->entries[i].jti, jti) != 0; i++)
        ;
    if (i < c->count) {
        entry = c->entries[i];
    } else {
        memset(&entry, 0, sizeof(entry));
        memcpy(entry.jti, jti, n + 1);
        if (c->count == TETHER_TOKEN_COUNTS_MAX)
            i = 0; /* the least recently counted goes */
        else
            c->count++;
    }
    /* The entry moves to the end: the most recently counted. */
    memmove(&c->entries[i], &c->entries[i + 1], (c->count - 1 - i) * sizeof(c->entries[0]));
    if (kind == TETHER_TOKEN_COUNT_PROOF && entry.proofs < UINT64_MAX)
        entry.proofs++;
    else if (kind == TETHER_TOKEN_COUNT_REQUEST && entry.requests < UINT64_MAX)
        entry.requests++;
    else if (kind == TETHER_TOKEN_COUNT_BEARER && entry.bearer < UINT64_MAX)
        entry.bearer++;
    c->entries[c->count - 1] = entry;
    return TETHER_OK;
}

const tether_token_count_t *tether_token_counts_find(const tether_token_counts_t *c,
                                                     const char *jti)
{
    for (size_t i = 0; jti != NULL && i < c->count; i++)
        if (strcmp(c->entries[i].jti, jti) == 0)
            return &c->entries[i];
    return NULL;
}

tether_status_t tether_token_counts_to_json(const tether_token_counts_t *c, cJSON *obj,
                                            const char *name)
{
    cJSON *array = cJSON_AddArrayToObject(obj, name);

    if (array == NULL)
        return TETHER_ERR_NO_MEMORY;
    for (size_t i = 0; i < c->count; i++) {
        cJSON *item = cJSON_CreateObject();
        if (item == NULL || !cJSON_AddItemToArray(array, item) ||
            cJSON_AddStringToObject(item, "jti", c->entries[i].jti) == NULL ||
            cJSON_AddNumberToObject(item, "proofs", (double)c->entries[i].proofs) == NULL ||
            cJSON_AddNumberToObject(item, "requests", (double)c->entries[i].requests) == NULL)
            return TETHER_ERR_NO_MEMORY;
    }
    return TETHER_OK;
}

/* Whether jti goes into a JSON string as it is, and the fleet's parser
 * takes it. */
static bool jti_plain(const char *jti)
{
    size_t n = jti_length(jti);

    if (n == 0 || n > TETHER_TOKEN_JTI_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)jti[i]) && jti[i] != '-' && jti[i] != '_')
            return false;
    return true;
}

static unsigned long long capped(uint64_t n)
{
    return n > TETHER_USAGE_COUNT_MAX ? TETHER_USAGE_COUNT_MAX : (unsigned long long)n;
}

tether_status_t tether_usage_document(const tether_token_counts_t *c, uint64_t exchanges,
                                      uint64_t token_requests, uint8_t *out, size_t size,
                                      size_t *len)
{
    char *text = (char *)out;
    size_t used;
    int n;
    bool first = true;

    *len = 0;
    n = snprintf(text, size, "{\"version\":%d,\"exchanges\":%llu,\"token_requests\":%llu,"
                             "\"tokens\":[",
                 TETHER_USAGE_DOCUMENT_VERSION, capped(exchanges), capped(token_requests));
    if (n < 0 || (size_t)n >= size)
        return TETHER_ERR_TOO_LARGE;
    used = (size_t)n;
    for (size_t i = 0; i < c->count; i++) {
        const tether_token_count_t *e = &c->entries[i];

        if (!jti_plain(e->jti))
            continue;
        n = snprintf(text + used, size - used,
                     "%s{\"jti\":\"%s\",\"proofs\":%llu,\"requests\":%llu,\"bearer\":%llu}",
                     first ? "" : ",", e->jti, capped(e->proofs), capped(e->requests),
                     capped(e->bearer));
        if (n < 0 || (size_t)n >= size - used)
            return TETHER_ERR_TOO_LARGE;
        used += (size_t)n;
        first = false;
    }
    if (size - used < 3)
        return TETHER_ERR_TOO_LARGE;
    memcpy(text + used, "]}", 2);
    *len = used + 2;
    return TETHER_OK;
}

tether_status_t tether_token_jti(const char *token, size_t len, char jti[TETHER_TOKEN_JTI_MAX + 1])
{
    const char *dot1, *dot2;
    uint8_t *payload = NULL;
    size_t payload_len = 0, n;
    cJSON *claims = NULL;
    const cJSON *item;
    tether_status_t rc = TETHER_ERR_PARSE;

    jti[0] = '\0';
    if (token == NULL || len > TETHER_JWS_MAX_LEN)
        goto out;
    dot1 = memchr(token, '.', len);
    dot2 = dot1 == NULL ? NULL : memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL || (payload = malloc(len)) == NULL)
        goto out;
    if (tether_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, len,
                                &payload_len) != TETHER_OK ||
        tether_json_parse_object((const char *)payload, payload_len, &claims) != TETHER_OK)
        goto out;
    item = cJSON_GetObjectItemCaseSensitive(claims, "jti");
    if (!cJSON_IsString(item) || (n = strlen(item->valuestring)) == 0 ||
        n > TETHER_TOKEN_JTI_MAX)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (item->valuestring[i] < 0x21 || item->valuestring[i] > 0x7e)
            goto out;
    memcpy(jti, item->valuestring, n + 1);
    rc = TETHER_OK;
out:
    cJSON_Delete(claims);
    free(payload);
    return rc;
}
