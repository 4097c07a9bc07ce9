#include "state.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <tss2/tss2_mu.h>

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

/* The members device.json and the pending enrolment share; device_id only
 * when with_device_id (a pending enrolment has none yet). */
static int add_state_members(cJSON *obj, const tether_agent_state_t *state, bool with_device_id)
{
    char index[16];
    int bad = 0;

    snprintf(index, sizeof(index), "0x%08x", state->counter_index);
    bad |= cJSON_AddNumberToObject(obj, "version", 1) == NULL;
    if (with_device_id)
        bad |= cJSON_AddStringToObject(obj, "device_id", state->device_id) == NULL;
    bad |= cJSON_AddStringToObject(obj, "fleet_url", state->fleet_url) == NULL;
    bad |= cJSON_AddStringToObject(obj, "ek_type", tether_ek_type_short_name(state->ek_type)) ==
           NULL;
    bad |= cJSON_AddStringToObject(obj, "counter_index", index) == NULL;
    bad |= add_blob(obj, "ak", &state->ak);
    bad |= add_blob(obj, "device_key", &state->device_key);
    return bad;
}

/* Prints obj into *json unless bad; deletes obj. */
static tether_status_t print_object(cJSON *obj, int bad, char **json)
{
    if (!bad)
        *json = cJSON_Print(obj);
    cJSON_Delete(obj);
    if (bad)
        return TETHER_ERR_INVALID_ARGUMENT;
    return *json != NULL ? TETHER_OK : TETHER_ERR_NO_MEMORY;
}

tether_status_t tether_agent_state_to_json(const tether_agent_state_t *state, char **json)
{
    cJSON *obj;

    if (state == NULL || json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *json = NULL;
    if ((obj = cJSON_CreateObject()) == NULL)
        return TETHER_ERR_NO_MEMORY;
    return print_object(obj, add_state_members(obj, state, true), json);
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

/* Every member of obj is one of members. */
static bool only_members(const cJSON *obj, const char *const *members, size_t count)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, obj)
    {
        size_t i;
        for (i = 0; i < count; i++)
            if (strcmp(item->string, members[i]) == 0)
                break;
        if (i == count)
            return false;
    }
    return true;
}

/* Reads the members add_state_members writes. */
static tether_status_t read_state_members(const cJSON *obj, tether_agent_state_t *state,
                                          bool with_device_id, char *why, size_t why_size)
{
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(obj, "version");
    const char *s;
    char *end = NULL;
    unsigned long index = 0;

    if (!cJSON_IsNumber(version) || version->valuedouble != 1)
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "\"version\" is not 1");
    if (with_device_id) {
        if ((s = get_string(obj, "device_id", TETHER_DEVICE_ID_MAX)) == NULL)
            return tether_explain(TETHER_ERR_PARSE, why, why_size,
                                  "\"device_id\" is missing or too long");
        strcpy(state->device_id, s);
    }
    if ((s = get_string(obj, "fleet_url", TETHER_URL_MAX)) == NULL)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "\"fleet_url\" is missing or too long");
    strcpy(state->fleet_url, s);
    if ((s = get_string(obj, "ek_type", 8)) == NULL || tether_ek_type_parse(s, &state->ek_type) != 0)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "\"ek_type\" is not p256, p384 or rsa");
    s = get_string(obj, "counter_index", 10);
    if (s != NULL)
        index = strtoul(s, &end, 16);
    if (s == NULL || strncmp(s, "0x", 2) != 0 || end == s || *end != '\0' ||
        !tether_nv_index_is_owner(index))
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "\"counter_index\" is not an owner NV index like 0x01000100");
    state->counter_index = (TPM2_HANDLE)index;
    if (get_blob(obj, "ak", &state->ak) != 0 || get_blob(obj, "device_key", &state->device_key) != 0)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "\"ak\" or \"device_key\" is not a key blob");
    return TETHER_OK;
}

/* Parses text as one strict JSON object of at most STATE_MAX_JSON bytes with
 * only the given members. */
static tether_status_t parse_object(const char *text, size_t len, const char *const *members,
                                    size_t count, cJSON **obj, char *why, size_t why_size)
{
    *obj = NULL;
    if (len > STATE_MAX_JSON || tether_json_parse_object(text, len, obj) != TETHER_OK)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "not one JSON object of at most 16 KiB");
    if (!only_members(*obj, members, count)) {
        cJSON_Delete(*obj);
        *obj = NULL;
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "unknown member");
    }
    return TETHER_OK;
}

tether_status_t tether_agent_state_from_json(const char *text, size_t len,
                                             tether_agent_state_t *state, char *why,
                                             size_t why_size)
{
    static const char *const members[] = {"version", "device_id", "fleet_url", "ek_type",
                                          "counter_index", "ak", "device_key"};
    cJSON *obj = NULL;
    tether_status_t rc;

    if (text == NULL || state == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(state, 0, sizeof(*state));
    rc = parse_object(text, len, members, sizeof(members) / sizeof(members[0]), &obj, why,
                      why_size);
    if (rc == TETHER_OK)
        rc = read_state_members(obj, state, true, why, why_size);
    cJSON_Delete(obj);
    if (rc != TETHER_OK)
        memset(state, 0, sizeof(*state));
    return rc;
}

/* ---- the enrolment in progress ---- */

/* The fleet's challenge: the TPM structures as unpadded base64url of their
 * marshalling, as the fleet sent them. */
static int add_challenge(cJSON *obj, const tether_agent_pending_t *pending)
{
    uint8_t buf[sizeof(TPM2B_ID_OBJECT) + sizeof(TPM2B_ENCRYPTED_SECRET)];
    size_t len = 0;

    if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(&pending->credential_blob, buf, sizeof(buf), &len) !=
            TSS2_RC_SUCCESS ||
        tether_base64url_add_member(obj, "credential_blob", buf, len) != TETHER_OK)
        return -1;
    len = 0;
    if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&pending->encrypted_secret, buf, sizeof(buf),
                                               &len) != TSS2_RC_SUCCESS ||
        tether_base64url_add_member(obj, "encrypted_secret", buf, len) != TETHER_OK)
        return -1;
    return 0;
}

tether_status_t tether_agent_pending_to_json(const tether_agent_pending_t *pending, char **json)
{
    cJSON *obj;
    int bad;

    if (pending == NULL || json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *json = NULL;
    if ((obj = cJSON_CreateObject()) == NULL)
        return TETHER_ERR_NO_MEMORY;
    bad = add_state_members(obj, &pending->state, false);
    bad |= cJSON_AddStringToObject(obj, "enrollment_id", pending->enrollment_id) == NULL;
    bad |= add_challenge(obj, pending);
    return print_object(obj, bad, json);
}

tether_status_t tether_agent_pending_from_json(const char *text, size_t len,
                                               tether_agent_pending_t *pending, char *why,
                                               size_t why_size)
{
    static const char *const members[] = {"version",     "fleet_url",     "ek_type",
                                          "counter_index", "ak",          "device_key",
                                          "enrollment_id", "credential_blob",
                                          "encrypted_secret"};
    uint8_t buf[sizeof(TPM2B_ID_OBJECT) + sizeof(TPM2B_ENCRYPTED_SECRET)];
    size_t raw_len = 0, offset = 0;
    const char *s;
    cJSON *obj = NULL;
    tether_status_t rc;

    if (text == NULL || pending == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(pending, 0, sizeof(*pending));
    rc = parse_object(text, len, members, sizeof(members) / sizeof(members[0]), &obj, why,
                      why_size);
    if (rc == TETHER_OK)
        rc = read_state_members(obj, &pending->state, false, why, why_size);
    if (rc != TETHER_OK)
        goto out;
    if ((s = get_string(obj, "enrollment_id", TETHER_ENROLLMENT_ID_MAX)) == NULL) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "\"enrollment_id\" is missing or too long");
        goto out;
    }
    strcpy(pending->enrollment_id, s);
    if (tether_base64url_get_member(obj, "credential_blob", buf, sizeof(buf), &raw_len, NULL,
                                    0) != TETHER_OK ||
        Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(buf, raw_len, &offset, &pending->credential_blob) !=
            TSS2_RC_SUCCESS ||
        offset != raw_len) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "\"credential_blob\" is not a TPM2B_ID_OBJECT");
        goto out;
    }
    offset = 0;
    if (tether_base64url_get_member(obj, "encrypted_secret", buf, sizeof(buf), &raw_len, NULL,
                                    0) != TETHER_OK ||
        Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(buf, raw_len, &offset,
                                                 &pending->encrypted_secret) != TSS2_RC_SUCCESS ||
        offset != raw_len) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "\"encrypted_secret\" is not a TPM2B_ENCRYPTED_SECRET");
        goto out;
    }
out:
    cJSON_Delete(obj);
    if (rc != TETHER_OK)
        memset(pending, 0, sizeof(*pending));
    return rc;
}

static tether_status_t state_path(char *out, size_t size, const char *dir, const char *name)
{
    return (size_t)snprintf(out, size, "%s/%s", dir, name) < size ? TETHER_OK : TETHER_ERR_TOO_LARGE;
}

/* Writes json (freed here) to dir/name atomically, mode 0600, dir 0700,
 * when rc (the serialisation's outcome) is TETHER_OK. */
static tether_status_t save_json(const char *dir, const char *name, tether_status_t rc,
                                 char *json)
{
    char path[PATH_MAX];

    if (rc == TETHER_OK && (rc = tether_dir_ensure_private(dir)) == TETHER_OK &&
        (rc = state_path(path, sizeof(path), dir, name)) == TETHER_OK)
        rc = tether_file_write_atomic(path, json, strlen(json), 0600);
    free(json);
    return rc;
}

/* Reads dir/name (at most STATE_MAX_JSON bytes) into *data. */
static tether_status_t load_bytes(const char *dir, const char *name, uint8_t **data, size_t *len,
                                  char *why, size_t why_size)
{
    char path[PATH_MAX];
    tether_status_t rc;

    if ((rc = state_path(path, sizeof(path), dir, name)) != TETHER_OK)
        return rc;
    rc = tether_file_read(path, STATE_MAX_JSON, data, len);
    if (rc == TETHER_ERR_TOO_LARGE)
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "%s is too large", name);
    return rc;
}

tether_status_t tether_agent_state_save(const char *dir, const tether_agent_state_t *state)
{
    char *json = NULL;
    tether_status_t rc = tether_agent_state_to_json(state, &json);

    return save_json(dir, TETHER_STATE_FILE, rc, json);
}

tether_status_t tether_agent_state_load(const char *dir, tether_agent_state_t *state, char *why,
                                        size_t why_size)
{
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = load_bytes(dir, TETHER_STATE_FILE, &data, &len, why, why_size)) != TETHER_OK)
        return rc;
    rc = tether_agent_state_from_json((const char *)data, len, state, why, why_size);
    free(data);
    return rc;
}

tether_status_t tether_agent_pending_save(const char *dir, const tether_agent_pending_t *pending)
{
    char *json = NULL;
    tether_status_t rc = tether_agent_pending_to_json(pending, &json);

    return save_json(dir, TETHER_STATE_PENDING_FILE, rc, json);
}

tether_status_t tether_agent_pending_load(const char *dir, tether_agent_pending_t *pending,
                                          char *why, size_t why_size)
{
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = load_bytes(dir, TETHER_STATE_PENDING_FILE, &data, &len, why, why_size)) !=
        TETHER_OK)
        return rc;
    rc = tether_agent_pending_from_json((const char *)data, len, pending, why, why_size);
    free(data);
    return rc;
}

tether_status_t tether_agent_pending_remove(const char *dir)
{
    char path[PATH_MAX];
    tether_status_t rc;

    if ((rc = state_path(path, sizeof(path), dir, TETHER_STATE_PENDING_FILE)) != TETHER_OK)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return TETHER_ERR_IO;
    return tether_dir_sync(dir);
}
