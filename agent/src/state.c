#include "state.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/json_strict.h"
#include "tether/tpm2_public.h"

#define STATE_MAX_JSON 16384
#define BLOB_MAX 2048

static const char *const ek_short_names[TETHER_EK_TYPE_COUNT] = {
    [TETHER_EK_ECC_P256] = "p256",
    [TETHER_EK_ECC_P384] = "p384",
    [TETHER_EK_RSA2048] = "rsa",
};

const char *tether_ek_type_short_name(tether_ek_type_t type)
{
    return (unsigned)type < TETHER_EK_TYPE_COUNT ? ek_short_names[type] : "unknown";
}

int tether_ek_type_parse(const char *text, tether_ek_type_t *type)
{
    for (unsigned t = 0; t < TETHER_EK_TYPE_COUNT; t++) {
        if (strcmp(text, ek_short_names[t]) == 0) {
            *type = (tether_ek_type_t)t;
            return 0;
        }
    }
    return -1;
}

static int add_blob(cJSON *obj, const char *member, const tether_tpm_key_blob_t *blob)
{
    uint8_t buf[BLOB_MAX];
    size_t len = 0;

    if (tether_tpm_key_blob_marshal(blob, buf, sizeof(buf), &len) != TETHER_OK ||
        tether_base64url_add_member(obj, member, buf, len) != TETHER_OK)
        return -1;
    return 0;
}

tether_status_t tether_agent_state_to_json(const tether_agent_state_t *state, char **json)
{
    char index[16];
    cJSON *obj;
    int bad = 0;

    if (state == NULL || json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *json = NULL;
    if ((obj = cJSON_CreateObject()) == NULL)
        return TETHER_ERR_NO_MEMORY;
    snprintf(index, sizeof(index), "0x%08x", state->counter_index);
    bad |= cJSON_AddNumberToObject(obj, "version", 1) == NULL;
    bad |= cJSON_AddStringToObject(obj, "device_id", state->device_id) == NULL;
    bad |= cJSON_AddStringToObject(obj, "fleet_url", state->fleet_url) == NULL;
    bad |= cJSON_AddStringToObject(obj, "ek_type", tether_ek_type_short_name(state->ek_type)) ==
           NULL;
    bad |= cJSON_AddStringToObject(obj, "counter_index", index) == NULL;
    bad |= add_blob(obj, "ak", &state->ak);
    bad |= add_blob(obj, "device_key", &state->device_key);
    if (!bad)
        *json = cJSON_Print(obj);
    cJSON_Delete(obj);
    if (bad)
        return TETHER_ERR_INVALID_ARGUMENT;
    return *json != NULL ? TETHER_OK : TETHER_ERR_NO_MEMORY;
}

static const char *get_string(const cJSON *obj, const char *member, size_t max)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, member);

    if (!cJSON_IsString(item) || strlen(item->valuestring) == 0 ||
        strlen(item->valuestring) > max)
        return NULL;
    return item->valuestring;
}

static int get_blob(const cJSON *obj, const char *member, tether_tpm_key_blob_t *blob)
{
    const char *text = get_string(obj, member, TETHER_BASE64URL_ENCODED_LEN(BLOB_MAX));
    uint8_t buf[BLOB_MAX];
    size_t len = 0;

    return text != NULL &&
                   tether_base64url_decode(text, strlen(text), buf, sizeof(buf), &len) ==
                       TETHER_OK &&
                   tether_tpm_key_blob_unmarshal(buf, len, blob) == TETHER_OK
               ? 0
               : -1;
}

tether_status_t tether_agent_state_from_json(const char *text, size_t len,
                                             tether_agent_state_t *state, char *why,
                                             size_t why_size)
{
    static const char *const members[] = {"version", "device_id", "fleet_url", "ek_type",
                                          "counter_index", "ak", "device_key"};
    const cJSON *item, *version;
    const char *s;
    cJSON *obj = NULL;
    char *end = NULL;
    unsigned long index;
    tether_status_t rc;

    if (text == NULL || state == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(state, 0, sizeof(*state));
    if (len > STATE_MAX_JSON || tether_json_parse_object(text, len, &obj) != TETHER_OK)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "not one JSON object of at most 16 KiB");
    cJSON_ArrayForEach(item, obj)
    {
        size_t i;
        for (i = 0; i < sizeof(members) / sizeof(members[0]); i++)
            if (strcmp(item->string, members[i]) == 0)
                break;
        if (i == sizeof(members) / sizeof(members[0])) {
            rc = tether_explain(TETHER_ERR_PARSE, why, why_size, "unknown member");
            goto out;
        }
    }
    version = cJSON_GetObjectItemCaseSensitive(obj, "version");
    if (!cJSON_IsNumber(version) || version->valuedouble != 1) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size, "\"version\" is not 1");
        goto out;
    }
    if ((s = get_string(obj, "device_id", TETHER_DEVICE_ID_MAX)) == NULL) {
        rc =
            tether_explain(TETHER_ERR_PARSE, why, why_size, "\"device_id\" is missing or too long");
        goto out;
    }
    strcpy(state->device_id, s);
    if ((s = get_string(obj, "fleet_url", TETHER_URL_MAX)) == NULL) {
        rc =
            tether_explain(TETHER_ERR_PARSE, why, why_size, "\"fleet_url\" is missing or too long");
        goto out;
    }
    strcpy(state->fleet_url, s);
    if ((s = get_string(obj, "ek_type", 8)) == NULL || tether_ek_type_parse(s, &state->ek_type) != 0) {
        rc =
            tether_explain(TETHER_ERR_PARSE, why, why_size, "\"ek_type\" is not p256, p384 or rsa");
        goto out;
    }
    s = get_string(obj, "counter_index", 10);
    if (s != NULL)
        index = strtoul(s, &end, 16);
    if (s == NULL || strncmp(s, "0x", 2) != 0 || end == s || *end != '\0' ||
        !tether_nv_index_is_owner(index)) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "\"counter_index\" is not an owner NV index like 0x01000100");
        goto out;
    }
    state->counter_index = (TPM2_HANDLE)index;
    if (get_blob(obj, "ak", &state->ak) != 0 || get_blob(obj, "device_key", &state->device_key) != 0) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "\"ak\" or \"device_key\" is not a key blob");
        goto out;
    }
    rc = TETHER_OK;
out:
    cJSON_Delete(obj);
    if (rc != TETHER_OK)
        memset(state, 0, sizeof(*state));
    return rc;
}

static tether_status_t state_path(char *out, size_t size, const char *dir, const char *name)
{
    return (size_t)snprintf(out, size, "%s/%s", dir, name) < size ? TETHER_OK : TETHER_ERR_TOO_LARGE;
}

tether_status_t tether_agent_state_save(const char *dir, const tether_agent_state_t *state)
{
    char path[PATH_MAX];
    char *json = NULL;
    tether_status_t rc;

    if ((rc = tether_dir_ensure_private(dir)) != TETHER_OK ||
        (rc = state_path(path, sizeof(path), dir, TETHER_STATE_FILE)) != TETHER_OK ||
        (rc = tether_agent_state_to_json(state, &json)) != TETHER_OK)
        goto out;
    rc = tether_file_write_atomic(path, json, strlen(json), 0600);
out:
    free(json);
    return rc;
}

tether_status_t tether_agent_state_load(const char *dir, tether_agent_state_t *state, char *why,
                                        size_t why_size)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = state_path(path, sizeof(path), dir, TETHER_STATE_FILE)) != TETHER_OK)
        return rc;
    if ((rc = tether_file_read(path, STATE_MAX_JSON, &data, &len)) != TETHER_OK)
        return rc == TETHER_ERR_TOO_LARGE
                   ? tether_explain(TETHER_ERR_PARSE, why, why_size, "device.json is too large")
                   : rc;
    rc = tether_agent_state_from_json((const char *)data, len, state, why, why_size);
    free(data);
    return rc;
}
