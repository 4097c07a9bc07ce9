/* The log, its decoded fields and its replay as JSON (eventlog.h). Numbers
 * that may pass 2^53 (addresses, lengths from the log) are hex strings, as
 * a JSON number is a double. */
#include "tether/eventlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tether/bytes.h"
#include "eventlog_json.h"

/* EFI_GUID (UEFI 2.x appendix A): Data1, Data2, Data3 little-endian, then
 * Data4's eight bytes as stored. */
#define GUID_TEXT_SIZE 37

static void guid_text(const uint8_t *g, char out[GUID_TEXT_SIZE])
{
    snprintf(out, GUID_TEXT_SIZE, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12],
             g[13], g[14], g[15]);
}

/* name: the hex of b[0..n) in obj; false when out of memory. */
bool tether_eventlog_json_add_hex(cJSON *obj, const char *name, const uint8_t *b, size_t n)
{
    char *hex = malloc(2 * n + 1);
    bool ok;

    if (hex == NULL)
        return false;
    ok = tether_hex_encode(b, n, hex, 2 * n + 1) == TETHER_OK &&
         cJSON_AddStringToObject(obj, name, hex) != NULL;
    free(hex);
    return ok;
}

/* A new object at the end of array, or NULL when out of memory. */
static cJSON *append_object(cJSON *array)
{
    cJSON *obj = cJSON_CreateObject();

    if (obj != NULL && !cJSON_AddItemToArray(array, obj)) {
        cJSON_Delete(obj);
        obj = NULL;
    }
    return obj;
}

static bool add_u64(cJSON *obj, const char *name, uint64_t value)
{
    char text[19];

    snprintf(text, sizeof(text), "0x%" PRIx64, value);
    return cJSON_AddStringToObject(obj, name, text) != NULL;
}

static bool add_guid(cJSON *obj, const char *name, const uint8_t *guid)
{
    char text[GUID_TEXT_SIZE];

    guid_text(guid, text);
    return cJSON_AddStringToObject(obj, name, text) != NULL;
}

/* A new {"algorithm": name} at the end of array (the TPM_ALG_ID in hex for
 * an algorithm without a name), or NULL when out of memory. */
cJSON *tether_eventlog_json_append_algorithm(cJSON *array, uint16_t algorithm)
{
    const char *name = tether_eventlog_algorithm_name(algorithm);
    cJSON *obj = append_object(array);
    char text[16];

    snprintf(text, sizeof(text), "0x%04x", (unsigned)algorithm);
    if (obj != NULL && cJSON_AddStringToObject(obj, "algorithm", name != NULL ? name : text) == NULL)
        obj = NULL; /* deleted with the array */
    return obj;
}

static const char *secure_boot_name(tether_eventlog_secure_boot_t value)
{
    switch (value) {
    case TETHER_EVENTLOG_SECURE_BOOT_ABSENT: return "absent";
    case TETHER_EVENTLOG_SECURE_BOOT_DISABLED: return "disabled";
    case TETHER_EVENTLOG_SECURE_BOOT_ENABLED: return "enabled";
    case TETHER_EVENTLOG_SECURE_BOOT_NOT_THIS: break;
    }
    return NULL;
}

static bool add_variable(cJSON *obj, const tether_eventlog_event_t *ev)
{
    cJSON *var = cJSON_AddObjectToObject(obj, "variable");
    const char *secure_boot = secure_boot_name(ev->fields.variable.secure_boot);

    return var != NULL && add_guid(var, "guid", ev->fields.variable.guid) &&
           cJSON_AddStringToObject(var, "name", ev->fields.variable.name) != NULL &&
           tether_eventlog_json_add_hex(var, "data", ev->fields.variable.value,
                   (size_t)ev->fields.variable.value_size) &&
           (secure_boot == NULL ||
            cJSON_AddStringToObject(var, "secure_boot", secure_boot) != NULL);
}

static bool add_image(cJSON *obj, const tether_eventlog_event_t *ev)
{
    cJSON *image = cJSON_AddObjectToObject(obj, "image");

    return image != NULL && add_u64(image, "location", ev->fields.image.location) &&
           add_u64(image, "length", ev->fields.image.length) &&
           add_u64(image, "link_time_address", ev->fields.image.link_time_address) &&
           tether_eventlog_json_add_hex(image, "device_path", ev->fields.image.device_path,
                   (size_t)ev->fields.image.device_path_size);
}

/* The decoded fields of ev, one member named for their kind. */
static bool add_decoded(cJSON *obj, const tether_eventlog_event_t *ev)
{
    cJSON *sub;

    switch (ev->decoded) {
    case TETHER_EVENTLOG_DECODED_NONE:
    case TETHER_EVENTLOG_DECODED_SPEC_ID: return true;
    case TETHER_EVENTLOG_DECODED_STARTUP_LOCALITY:
        return cJSON_AddNumberToObject(obj, "startup_locality", ev->fields.startup_locality) !=
               NULL;
    case TETHER_EVENTLOG_DECODED_TEXT:
        return cJSON_AddStringToObject(obj, "text", ev->fields.text) != NULL;
    case TETHER_EVENTLOG_DECODED_FIRMWARE_BLOB:
        return (sub = cJSON_AddObjectToObject(obj, "firmware_blob")) != NULL &&
               add_u64(sub, "base", ev->fields.firmware_blob.base) &&
               add_u64(sub, "length", ev->fields.firmware_blob.length);
    case TETHER_EVENTLOG_DECODED_VARIABLE: return add_variable(obj, ev);
    case TETHER_EVENTLOG_DECODED_IMAGE: return add_image(obj, ev);
    case TETHER_EVENTLOG_DECODED_GPT:
        return (sub = cJSON_AddObjectToObject(obj, "gpt")) != NULL &&
               add_guid(sub, "disk_guid", ev->fields.gpt.disk_guid) &&
               add_u64(sub, "partitions", ev->fields.gpt.partitions) &&
               cJSON_AddNumberToObject(sub, "entry_size", ev->fields.gpt.entry_size) != NULL;
    case TETHER_EVENTLOG_DECODED_SEPARATOR:
        return (sub = cJSON_AddObjectToObject(obj, "separator")) != NULL &&
               add_u64(sub, "value", ev->fields.separator.value) &&
               cJSON_AddBoolToObject(sub, "error", ev->fields.separator.is_error) != NULL;
    }
    return false;
}

static bool add_event(cJSON *events, const tether_eventlog_event_t *ev)
{
    cJSON *obj = append_object(events), *digests;
    const char *type = tether_eventlog_type_name(ev->type);
    char type_text[16];

    if (obj == NULL)
        return false;
    snprintf(type_text, sizeof(type_text), "0x%08" PRIx32, ev->type);
    if (cJSON_AddNumberToObject(obj, "number", (double)ev->number) == NULL ||
        cJSON_AddNumberToObject(obj, "pcr", ev->pcr) == NULL ||
        cJSON_AddStringToObject(obj, "type", type != NULL ? type : type_text) == NULL ||
        cJSON_AddStringToObject(obj, "type_value", type_text) == NULL ||
        (digests = cJSON_AddArrayToObject(obj, "digests")) == NULL)
        return false;
    for (uint32_t i = 0; i < ev->digest_count; i++) {
        cJSON *d = tether_eventlog_json_append_algorithm(digests, ev->digests[i].algorithm);

        if (d == NULL || !tether_eventlog_json_add_hex(d, "digest", ev->digests[i].value, ev->digests[i].size))
            return false;
    }
    return cJSON_AddNumberToObject(obj, "data_size", ev->data_size) != NULL &&
           tether_eventlog_json_add_hex(obj, "data", ev->data, ev->data_size) && add_decoded(obj, ev);
}

static bool add_spec_id(cJSON *root, const tether_eventlog_t *log)
{
    cJSON *spec, *algs;

    if (log->format != TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE)
        return true;
    if ((spec = cJSON_AddObjectToObject(root, "spec_id")) == NULL ||
        cJSON_AddNumberToObject(spec, "platform_class", log->platform_class) == NULL ||
        cJSON_AddNumberToObject(spec, "spec_version_major", log->spec_version_major) == NULL ||
        cJSON_AddNumberToObject(spec, "spec_version_minor", log->spec_version_minor) == NULL ||
        cJSON_AddNumberToObject(spec, "spec_errata", log->spec_errata) == NULL ||
        cJSON_AddNumberToObject(spec, "uintn_size", log->uintn_size) == NULL ||
        (algs = cJSON_AddArrayToObject(spec, "algorithms")) == NULL)
        return false;
    for (uint32_t i = 0; i < log->algorithm_count; i++) {
        cJSON *a = tether_eventlog_json_append_algorithm(algs, log->algorithms[i].id);

        if (a == NULL ||
            cJSON_AddNumberToObject(a, "digest_size", log->algorithms[i].size) == NULL)
            return false;
    }
    return true;
}

/* "replay": {bank: {"complete", "events_without_digest", "pcrs": {"N": hex}}},
 * the PCRs the log extended. */
bool tether_eventlog_json_add_replay(cJSON *root, const tether_eventlog_pcrs_t *pcrs)
{
    cJSON *replay = cJSON_AddObjectToObject(root, "replay");

    if (replay == NULL || cJSON_AddNumberToObject(replay, "startup_locality",
                                                  pcrs->startup_locality) == NULL)
        return false;
    for (size_t b = 0; b < pcrs->bank_count; b++) {
        const tether_eventlog_bank_t *bank = &pcrs->banks[b];
        cJSON *obj = cJSON_AddObjectToObject(
                  replay, tether_eventlog_algorithm_name(bank->algorithm)),
              *values;

        if (obj == NULL ||
            cJSON_AddBoolToObject(obj, "complete", bank->events_without_digest == 0) == NULL ||
            cJSON_AddNumberToObject(obj, "events_without_digest",
                                    (double)bank->events_without_digest) == NULL ||
            (values = cJSON_AddObjectToObject(obj, "pcrs")) == NULL)
            return false;
        for (uint32_t pcr = 0; pcr < TETHER_EVENTLOG_PCR_COUNT; pcr++) {
            char index[4];

            if ((bank->extended & UINT32_C(1) << pcr) == 0)
                continue;
            snprintf(index, sizeof(index), "%u", (unsigned)pcr);
            if (!tether_eventlog_json_add_hex(values, index, bank->pcrs[pcr], bank->size))
                return false;
        }
    }
    return true;
}

tether_status_t tether_eventlog_json_finish(cJSON *root, const tether_eventlog_pcrs_t *pcrs,
                                            cJSON **out)
{
    if (pcrs != NULL && !tether_eventlog_json_add_replay(root, pcrs)) {
        cJSON_Delete(root);
        return TETHER_ERR_NO_MEMORY;
    }
    *out = root;
    return TETHER_OK;
}

tether_status_t tether_eventlog_to_json(const tether_eventlog_t *log,
                                        const tether_eventlog_pcrs_t *pcrs, cJSON **out)
{
    cJSON *root = NULL, *events;
    tether_status_t rc = TETHER_ERR_NO_MEMORY;

    if (out != NULL)
        *out = NULL;
    if (log == NULL || out == NULL || log->events == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((root = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(root, "format", log->format == TETHER_EVENTLOG_FORMAT_SHA1
                                                    ? "sha1"
                                                    : "crypto_agile") == NULL ||
        !add_spec_id(root, log) || (events = cJSON_AddArrayToObject(root, "events")) == NULL)
        goto out;
    for (size_t e = 0; e < log->event_count; e++)
        if (!add_event(events, &log->events[e]))
            goto out;
    rc = tether_eventlog_json_finish(root, pcrs, out);
    root = NULL;
out:
    cJSON_Delete(root);
    return rc;
}
