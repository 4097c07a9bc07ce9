/*
 * The firmware event log's parser (eventlog.h). A cursor walks the log's
 * copy; every read checks the bytes it needs are there first, so nothing is
 * read past the buffer whatever the lengths in the log say.
 */
#include "tether/eventlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog_text.h"
#include "tether/file.h"

/* PFP section 10.2.1, TCG_PCR_EVENT: pcrIndex, eventType, SHA-1 digest,
 * eventDataSize. */
#define SHA1_EVENT_HEADER_SIZE (4u + 4u + 20u + 4u)
#define SHA1_DIGEST_SIZE 20u
/* PFP section 10.4.5.1, TCG_EfiSpecIDEvent up to its digestSizes. */
#define SPEC_ID_FIXED_SIZE (16u + 4u + 4u + 4u)
#define SPEC_ID_SIGNATURE "Spec ID Event03"
/* PFP section 10.4.5.3: "StartupLocality" with its NUL, then the locality. */
#define STARTUP_LOCALITY_SIGNATURE "StartupLocality"
#define STARTUP_LOCALITY_SIZE 17u
/* UEFI_VARIABLE_DATA: VariableName GUID, UnicodeNameLength, VariableDataLength. */
#define VARIABLE_HEADER_SIZE (16u + 8u + 8u)
/* Bytes a UEFI_VARIABLE_DATA may carry after its value: writers that size
 * the event with sizeof of the C structure (shim, in event-postcode.bin)
 * count its alignment padding, under 8 bytes. No more is accepted. */
#define VARIABLE_PADDING_MAX 7u
/* UEFI_IMAGE_LOAD_EVENT: location, length, link-time address, device path length. */
#define IMAGE_HEADER_SIZE (8u * 4u)
/* UEFI_GPT_DATA: EFI_PARTITION_TABLE_HEADER (92 bytes), NumberOfPartitions. */
#define GPT_HEADER_SIZE 92u
#define GPT_FIXED_SIZE (GPT_HEADER_SIZE + 8u)
#define GPT_DISK_GUID_OFFSET 56u
#define GPT_ENTRY_SIZE_OFFSET 84u
#define GPT_ENTRY_SIZE_MIN 128u /* UEFI 2.x section 5.3.2: 128 x 2^n */
#define UEFI_PLATFORM_FIRMWARE_BLOB_SIZE 16u

/* EFI_GLOBAL_VARIABLE, 8be4df61-93ca-11d2-aa0d-00e098032b8c, as stored. */
static const uint8_t efi_global_variable[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                                0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};

static const char *const error_names[TETHER_FIRMWARE_ERROR_COUNT] = {
    [TETHER_FIRMWARE_OK] = "ok",
    [TETHER_FIRMWARE_TRUNCATED] = "truncated",
    [TETHER_FIRMWARE_LOG_TOO_LARGE] = "log_too_large",
    [TETHER_FIRMWARE_TOO_MANY_EVENTS] = "too_many_events",
    [TETHER_FIRMWARE_EVENT_TOO_LARGE] = "event_too_large",
    [TETHER_FIRMWARE_BAD_SPEC_ID] = "bad_spec_id",
    [TETHER_FIRMWARE_BAD_ALGORITHM] = "bad_algorithm",
    [TETHER_FIRMWARE_BAD_DIGEST_COUNT] = "bad_digest_count",
    [TETHER_FIRMWARE_BAD_PCR] = "bad_pcr",
    [TETHER_FIRMWARE_BAD_EVENT_DATA] = "bad_event_data",
    [TETHER_FIRMWARE_BAD_LOCALITY] = "bad_startup_locality",
    [TETHER_FIRMWARE_EMPTY] = "empty_log",
    [TETHER_FIRMWARE_BAD_RECORD] = "bad_record",
    [TETHER_FIRMWARE_DIGEST_MISMATCH] = "digest_mismatch",
};

const char *tether_firmware_error_name(tether_firmware_error_t error)
{
    if ((unsigned)error >= TETHER_FIRMWARE_ERROR_COUNT)
        return "internal_error";
    return error_names[error];
}

/* The parse under way: the log being filled, a cursor over its copy, and
 * the failure to report. */
typedef struct parser {
    tether_eventlog_t *log;
    size_t pos;
    size_t text_used, text_size;
    size_t event_capacity;
    bool pcr0_extended;
    bool locality_seen;
    tether_eventlog_failure_t *failure;
    size_t event_offset; /* of the event being parsed */
} parser_t;

#if defined(__GNUC__)
#define REFUSE_FORMAT __attribute__((format(printf, 3, 4)))
#else
#define REFUSE_FORMAT
#endif

/* Records why parsing stopped at the current event; returns the status. */
REFUSE_FORMAT static tether_status_t refuse(parser_t *p, tether_firmware_error_t error,
                                            const char *fmt, ...);

static tether_status_t refuse(parser_t *p, tether_firmware_error_t error, const char *fmt, ...)
{
    tether_status_t status = error == TETHER_FIRMWARE_LOG_TOO_LARGE ||
                                     error == TETHER_FIRMWARE_TOO_MANY_EVENTS ||
                                     error == TETHER_FIRMWARE_EVENT_TOO_LARGE
                                 ? TETHER_ERR_TOO_LARGE
                                 : TETHER_ERR_PARSE;
    va_list ap;

    if (p->failure != NULL) {
        p->failure->error = error;
        p->failure->offset = p->event_offset;
        p->failure->event = p->log->event_count;
        va_start(ap, fmt);
        vsnprintf(p->failure->text, sizeof(p->failure->text), fmt, ap);
        va_end(ap);
    }
    return status;
}

static uint16_t le16(const uint8_t *b)
{
    return (uint16_t)(b[0] | (uint16_t)b[1] << 8);
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t le64(const uint8_t *b)
{
    return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

/* Whether n more bytes are in the log at the cursor. */
static bool have(const parser_t *p, size_t n)
{
    return n <= p->log->size - p->pos;
}

/* The known size of a TPM hash algorithm, 0 for one the parser does not know. */
static uint16_t known_digest_size(uint16_t algorithm)
{
    switch (algorithm) {
    case TETHER_TPM_ALG_SHA1: return 20;
    case TETHER_TPM_ALG_SHA256:
    case TETHER_TPM_ALG_SM3_256:
    case TETHER_TPM_ALG_SHA3_256: return 32;
    case TETHER_TPM_ALG_SHA384:
    case TETHER_TPM_ALG_SHA3_384: return 48;
    case TETHER_TPM_ALG_SHA512:
    case TETHER_TPM_ALG_SHA3_512: return 64;
    default: return 0;
    }
}

/* Copies UTF-8 text into the log's text area; *out points at it. The area
 * is sized for every event's text at once (eventlog_text.h), so a text that
 * does not fit is a bug, reported as TETHER_ERR_STATE. */
static tether_status_t keep_text(parser_t *p, const char *utf8, size_t len, const char **out)
{
    char *dst;

    if (len + 1 > p->text_size - p->text_used)
        return TETHER_ERR_STATE;
    dst = p->log->text + p->text_used;
    memcpy(dst, utf8, len);
    dst[len] = '\0';
    p->text_used += len + 1;
    *out = dst;
    return TETHER_OK;
}

/* Decodes data as text (eventlog_text.h) into the event when it is text;
 * leaves the event undecoded otherwise. */
static tether_status_t decode_text(parser_t *p, tether_eventlog_event_t *ev)
{
    char *utf8 = p->log->text + p->text_used;
    size_t len = 0;

    if (!tether_eventlog_text_decode(ev->data, ev->data_size, utf8, p->text_size - p->text_used,
                                     &len))
        return TETHER_OK;
    ev->decoded = TETHER_EVENTLOG_DECODED_TEXT;
    ev->fields.text = utf8;
    p->text_used += len + 1;
    return TETHER_OK;
}

/* UEFI_VARIABLE_DATA (PFP section 10.2.6), exactly filling the data. */
static tether_status_t decode_variable(parser_t *p, tether_eventlog_event_t *ev)
{
    char name[TETHER_EVENTLOG_VARIABLE_NAME_MAX * 3 + 1];
    size_t name_len = 0;
    uint64_t name_units, value_size;
    const uint8_t *d = ev->data;
    tether_status_t rc;

    if (ev->data_size < VARIABLE_HEADER_SIZE)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a UEFI variable event of %u bytes, shorter than its header",
                      (unsigned)ev->data_size);
    name_units = le64(d + 16);
    value_size = le64(d + 24);
    if (name_units == 0 || name_units > TETHER_EVENTLOG_VARIABLE_NAME_MAX)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a UEFI variable name of %llu characters (1 to %u)",
                      (unsigned long long)name_units, TETHER_EVENTLOG_VARIABLE_NAME_MAX);
    if (name_units * 2 > ev->data_size - VARIABLE_HEADER_SIZE ||
        value_size > ev->data_size - VARIABLE_HEADER_SIZE - name_units * 2 ||
        ev->data_size - VARIABLE_HEADER_SIZE - name_units * 2 - value_size >
            VARIABLE_PADDING_MAX)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a UEFI variable whose name and value lengths do not fill its %u bytes",
                      (unsigned)ev->data_size);
    if (!tether_eventlog_utf16_to_utf8(d + VARIABLE_HEADER_SIZE, (size_t)name_units, false, name,
                                       sizeof(name), &name_len))
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a UEFI variable name that is not valid UTF-16 without NUL");
    if ((rc = keep_text(p, name, name_len, &ev->fields.variable.name)) != TETHER_OK)
        return rc;
    ev->decoded = TETHER_EVENTLOG_DECODED_VARIABLE;
    ev->fields.variable.guid = d;
    ev->fields.variable.value = d + VARIABLE_HEADER_SIZE + name_units * 2;
    ev->fields.variable.value_size = value_size;
    ev->fields.variable.secure_boot = TETHER_EVENTLOG_SECURE_BOOT_NOT_THIS;
    if (memcmp(d, efi_global_variable, sizeof(efi_global_variable)) != 0 ||
        strcmp(ev->fields.variable.name, "SecureBoot") != 0)
        return TETHER_OK;
    /* UEFI 2.x section 3.3: SecureBoot is one byte, 1 enabled, 0 disabled;
     * firmware measures it empty when it is not set. */
    if (value_size == 0)
        ev->fields.variable.secure_boot = TETHER_EVENTLOG_SECURE_BOOT_ABSENT;
    else if (value_size == 1 && ev->fields.variable.value[0] <= 1)
        ev->fields.variable.secure_boot = ev->fields.variable.value[0] == 1
                                              ? TETHER_EVENTLOG_SECURE_BOOT_ENABLED
                                              : TETHER_EVENTLOG_SECURE_BOOT_DISABLED;
    else
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a SecureBoot variable that is not one byte 0 or 1");
    return TETHER_OK;
}

/* UEFI_IMAGE_LOAD_EVENT (PFP section 10.2.3); the device path is kept raw.
 * The device path may end before the data does: real firmware writes a
 * LengthOfDevicePath of 0 followed by stray bytes (event-uefi-sha1-log.bin's
 * last event). Those bytes are not hashed into the image's digest (the PE
 * image's Authenticode hash), so they are kept in the raw data, not refused. */
static tether_status_t decode_image(parser_t *p, tether_eventlog_event_t *ev)
{
    uint64_t path_size;

    if (ev->data_size < IMAGE_HEADER_SIZE)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "an image load event of %u bytes, shorter than its header",
                      (unsigned)ev->data_size);
    path_size = le64(ev->data + 24);
    if (path_size > ev->data_size - IMAGE_HEADER_SIZE)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "an image load event whose device path length (%llu) runs past it",
                      (unsigned long long)path_size);
    ev->decoded = TETHER_EVENTLOG_DECODED_IMAGE;
    ev->fields.image.location = le64(ev->data);
    ev->fields.image.length = le64(ev->data + 8);
    ev->fields.image.link_time_address = le64(ev->data + 16);
    ev->fields.image.device_path = ev->data + IMAGE_HEADER_SIZE;
    ev->fields.image.device_path_size = path_size;
    return TETHER_OK;
}

/* UEFI_GPT_DATA (PFP section 10.2.5): the header, then NumberOfPartitions
 * entries of the header's SizeOfPartitionEntry, exactly filling the data. */
static tether_status_t decode_gpt(parser_t *p, tether_eventlog_event_t *ev)
{
    uint64_t partitions;
    uint32_t entry_size;

    if (ev->data_size < GPT_FIXED_SIZE || memcmp(ev->data, "EFI PART", 8) != 0)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a GPT event without a GPT header");
    entry_size = le32(ev->data + GPT_ENTRY_SIZE_OFFSET);
    partitions = le64(ev->data + GPT_HEADER_SIZE);
    if (entry_size < GPT_ENTRY_SIZE_MIN || (entry_size & (entry_size - 1)) != 0 ||
        partitions != (ev->data_size - GPT_FIXED_SIZE) / entry_size ||
        (ev->data_size - GPT_FIXED_SIZE) % entry_size != 0)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a GPT event whose %llu partitions of %u bytes do not fill it",
                      (unsigned long long)partitions, (unsigned)entry_size);
    ev->decoded = TETHER_EVENTLOG_DECODED_GPT;
    ev->fields.gpt.disk_guid = ev->data + GPT_DISK_GUID_OFFSET;
    ev->fields.gpt.partitions = partitions;
    ev->fields.gpt.entry_size = entry_size;
    return TETHER_OK;
}

static tether_status_t decode_separator(parser_t *p, tether_eventlog_event_t *ev)
{
    if (ev->data_size != 4)
        return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                      "a separator of %u bytes (4 expected)", (unsigned)ev->data_size);
    ev->decoded = TETHER_EVENTLOG_DECODED_SEPARATOR;
    ev->fields.separator.value = le32(ev->data);
    ev->fields.separator.is_error = ev->fields.separator.value == TETHER_EVENTLOG_SEPARATOR_ERROR ||
                                    ev->fields.separator.value ==
                                        TETHER_EVENTLOG_SEPARATOR_ERROR_TCG12;
    return TETHER_OK;
}

/* EV_NO_ACTION: a Spec ID event anywhere but first is refused (it would
 * change the digest sizes under the parser), StartupLocality is decoded
 * (PFP section 10.4.5.3), the rest kept raw. */
static tether_status_t decode_no_action(parser_t *p, tether_eventlog_event_t *ev)
{
    uint8_t locality;

    if (ev->data_size >= sizeof(SPEC_ID_SIGNATURE) &&
        memcmp(ev->data, SPEC_ID_SIGNATURE, sizeof(SPEC_ID_SIGNATURE)) == 0)
        return refuse(p, TETHER_FIRMWARE_BAD_SPEC_ID,
                      "a Spec ID event that is not the log's first event");
    if (ev->data_size < sizeof(STARTUP_LOCALITY_SIGNATURE) ||
        memcmp(ev->data, STARTUP_LOCALITY_SIGNATURE, sizeof(STARTUP_LOCALITY_SIGNATURE)) != 0)
        return TETHER_OK;
    if (ev->data_size != STARTUP_LOCALITY_SIZE || ev->pcr != 0)
        return refuse(p, TETHER_FIRMWARE_BAD_LOCALITY,
                      "a StartupLocality event of %u bytes in PCR %u (17 bytes in PCR 0)",
                      (unsigned)ev->data_size, (unsigned)ev->pcr);
    locality = ev->data[STARTUP_LOCALITY_SIZE - 1];
    if (p->locality_seen || p->pcr0_extended)
        return refuse(p, TETHER_FIRMWARE_BAD_LOCALITY,
                      "a StartupLocality event after %s",
                      p->locality_seen ? "another one" : "PCR 0 was extended");
    /* TPM2_Startup's locality: 0, 3, or 4 for an H-CRTM (PFP 10.4.5.3). */
    if (locality != 0 && locality != 3 && locality != 4)
        return refuse(p, TETHER_FIRMWARE_BAD_LOCALITY, "a StartupLocality of %u",
                      (unsigned)locality);
    p->locality_seen = true;
    ev->decoded = TETHER_EVENTLOG_DECODED_STARTUP_LOCALITY;
    ev->fields.startup_locality = locality;
    return TETHER_OK;
}

/* A POST code event is either a UEFI_PLATFORM_FIRMWARE_BLOB or an ASCII
 * string (PFP section 10.4.1). */
static tether_status_t decode_post_code(parser_t *p, tether_eventlog_event_t *ev)
{
    if (ev->data_size != UEFI_PLATFORM_FIRMWARE_BLOB_SIZE)
        return decode_text(p, ev);
    ev->decoded = TETHER_EVENTLOG_DECODED_FIRMWARE_BLOB;
    ev->fields.firmware_blob.base = le64(ev->data);
    ev->fields.firmware_blob.length = le64(ev->data + 8);
    return TETHER_OK;
}

/* Decodes the fields a policy looks at. A type whose structure the
 * specification fixes must parse; text is decoded when it is text. */
static tether_status_t decode_event(parser_t *p, tether_eventlog_event_t *ev)
{
    switch (ev->type) {
    case TETHER_EV_NO_ACTION: return decode_no_action(p, ev);
    case TETHER_EV_SEPARATOR: return decode_separator(p, ev);
    case TETHER_EV_POST_CODE: return decode_post_code(p, ev);
    case TETHER_EV_EFI_PLATFORM_FIRMWARE_BLOB:
        if (ev->data_size != UEFI_PLATFORM_FIRMWARE_BLOB_SIZE)
            return refuse(p, TETHER_FIRMWARE_BAD_EVENT_DATA,
                          "a firmware blob event of %u bytes (16 expected)",
                          (unsigned)ev->data_size);
        return decode_post_code(p, ev);
    case TETHER_EV_S_CRTM_VERSION:
    case TETHER_EV_EFI_ACTION:
    case TETHER_EV_ACTION:
    case TETHER_EV_IPL: return decode_text(p, ev);
    case TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG:
    case TETHER_EV_EFI_VARIABLE_BOOT:
    case TETHER_EV_EFI_VARIABLE_BOOT2:
    case TETHER_EV_EFI_VARIABLE_AUTHORITY: return decode_variable(p, ev);
    case TETHER_EV_EFI_BOOT_SERVICES_APPLICATION:
    case TETHER_EV_EFI_BOOT_SERVICES_DRIVER:
    case TETHER_EV_EFI_RUNTIME_SERVICES_DRIVER: return decode_image(p, ev);
    case TETHER_EV_EFI_GPT_EVENT: return decode_gpt(p, ev);
    default: return TETHER_OK;
    }
}

/* The algorithm the Spec ID declared, or NULL. */
static const tether_eventlog_algorithm_t *declared(const tether_eventlog_t *log, uint16_t id)
{
    for (uint32_t i = 0; i < log->algorithm_count; i++)
        if (log->algorithms[i].id == id)
            return &log->algorithms[i];
    return NULL;
}

/* The event's data size and data, bounded; the cursor moves past it. */
static tether_status_t read_data(parser_t *p, tether_eventlog_event_t *ev)
{
    uint32_t size;

    if (!have(p, 4))
        return refuse(p, TETHER_FIRMWARE_TRUNCATED, "the log ends inside an event");
    size = le32(p->log->bytes + p->pos);
    p->pos += 4;
    if (size > TETHER_EVENTLOG_MAX_EVENT_DATA)
        return refuse(p, TETHER_FIRMWARE_EVENT_TOO_LARGE,
                      "event data of %lu bytes (at most %u)", (unsigned long)size,
                      TETHER_EVENTLOG_MAX_EVENT_DATA);
    if (!have(p, size))
        return refuse(p, TETHER_FIRMWARE_TRUNCATED,
                      "event data of %lu bytes runs past the end of the log",
                      (unsigned long)size);
    ev->data = p->log->bytes + p->pos;
    ev->data_size = size;
    p->pos += size;
    return TETHER_OK;
}

/* A TCG_PCR_EVENT (SHA-1 layout): the first event of either format, and
 * every event of the SHA-1 format. */
static tether_status_t read_sha1_event(parser_t *p, tether_eventlog_event_t *ev)
{
    const uint8_t *b = p->log->bytes + p->pos;

    if (!have(p, SHA1_EVENT_HEADER_SIZE - 4))
        return refuse(p, TETHER_FIRMWARE_TRUNCATED, "the log ends inside an event header");
    ev->pcr = le32(b);
    ev->type = le32(b + 4);
    ev->digest_count = 1;
    ev->digests[0].algorithm = TETHER_TPM_ALG_SHA1;
    ev->digests[0].size = SHA1_DIGEST_SIZE;
    ev->digests[0].value = b + 8;
    p->pos += SHA1_EVENT_HEADER_SIZE - 4;
    return read_data(p, ev);
}

/* A TCG_PCR_EVENT2 (PFP section 10.2.2): each digest of an algorithm the
 * Spec ID declared, with the declared size, none twice. */
static tether_status_t read_agile_event(parser_t *p, tether_eventlog_event_t *ev)
{
    const uint8_t *b = p->log->bytes + p->pos;
    uint32_t count;

    if (!have(p, 12))
        return refuse(p, TETHER_FIRMWARE_TRUNCATED, "the log ends inside an event header");
    ev->pcr = le32(b);
    ev->type = le32(b + 4);
    count = le32(b + 8);
    p->pos += 12;
    if (count == 0 || count > p->log->algorithm_count)
        return refuse(p, TETHER_FIRMWARE_BAD_DIGEST_COUNT,
                      "an event with %lu digests (1 to the %lu algorithms declared)",
                      (unsigned long)count, (unsigned long)p->log->algorithm_count);
    for (uint32_t i = 0; i < count; i++) {
        const tether_eventlog_algorithm_t *alg;
        uint16_t id;

        if (!have(p, 2))
            return refuse(p, TETHER_FIRMWARE_TRUNCATED, "the log ends inside a digest");
        id = le16(p->log->bytes + p->pos);
        p->pos += 2;
        if ((alg = declared(p->log, id)) == NULL)
            return refuse(p, TETHER_FIRMWARE_BAD_ALGORITHM,
                          "a digest of algorithm 0x%04x, which the Spec ID does not declare",
                          (unsigned)id);
        for (uint32_t j = 0; j < i; j++)
            if (ev->digests[j].algorithm == id)
                return refuse(p, TETHER_FIRMWARE_BAD_ALGORITHM,
                              "two digests of algorithm 0x%04x in one event", (unsigned)id);
        if (!have(p, alg->size))
            return refuse(p, TETHER_FIRMWARE_TRUNCATED, "the log ends inside a digest");
        ev->digests[i].algorithm = id;
        ev->digests[i].size = alg->size;
        ev->digests[i].value = p->log->bytes + p->pos;
        p->pos += alg->size;
    }
    ev->digest_count = count;
    return read_data(p, ev);
}

/* The Spec ID event (PFP section 10.4.5.1) in the first event's data:
 * algorithms with their sizes; a known algorithm must have its size, an
 * unknown one is accepted with the size it declares (and never replayed). */
static tether_status_t read_spec_id(parser_t *p, const tether_eventlog_event_t *ev)
{
    tether_eventlog_t *log = p->log;
    const uint8_t *d = ev->data;
    uint32_t count;
    size_t at;

    if (ev->pcr != 0 || ev->data_size < SPEC_ID_FIXED_SIZE)
        return refuse(p, TETHER_FIRMWARE_BAD_SPEC_ID, "a Spec ID event %s",
                      ev->pcr != 0 ? "outside PCR 0" : "shorter than its fixed part");
    for (size_t i = 0; i < SHA1_DIGEST_SIZE; i++)
        if (ev->digests[0].value[i] != 0)
            return refuse(p, TETHER_FIRMWARE_BAD_SPEC_ID,
                          "a Spec ID event whose digest is not zero");
    log->platform_class = le32(d + 16);
    log->spec_version_minor = d[20];
    log->spec_version_major = d[21];
    log->spec_errata = d[22];
    log->uintn_size = d[23];
    count = le32(d + 24);
    log->algorithm_count = 0; /* the SHA-1 default gives way to the declared ones */
    if (count == 0 || count > TETHER_EVENTLOG_MAX_ALGORITHMS)
        return refuse(p, TETHER_FIRMWARE_BAD_SPEC_ID,
                      "a Spec ID with %lu algorithms (1 to %u)", (unsigned long)count,
                      TETHER_EVENTLOG_MAX_ALGORITHMS);
    if (ev->data_size - SPEC_ID_FIXED_SIZE < count * 4u + 1u)
        return refuse(p, TETHER_FIRMWARE_BAD_SPEC_ID,
                      "a Spec ID shorter than its %lu algorithms", (unsigned long)count);
    at = SPEC_ID_FIXED_SIZE;
    for (uint32_t i = 0; i < count; i++, at += 4) {
        uint16_t id = le16(d + at), size = le16(d + at + 2), known = known_digest_size(id);

        if (size == 0 || size > TETHER_EVENTLOG_MAX_DIGEST_SIZE || (known != 0 && size != known))
            return refuse(p, TETHER_FIRMWARE_BAD_ALGORITHM,
                          "a Spec ID declaring algorithm 0x%04x with %u-byte digests",
                          (unsigned)id, (unsigned)size);
        if (declared(log, id) != NULL)
            return refuse(p, TETHER_FIRMWARE_BAD_ALGORITHM,
                          "a Spec ID declaring algorithm 0x%04x twice", (unsigned)id);
        log->algorithms[i].id = id;
        log->algorithms[i].size = size;
        log->algorithm_count = i + 1;
    }
    /* vendorInfoSize, then vendorInfo, exactly to the end. */
    if ((size_t)d[at] != ev->data_size - at - 1)
        return refuse(p, TETHER_FIRMWARE_BAD_SPEC_ID,
                      "a Spec ID whose vendor information does not fill it");
    log->format = TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE;
    return TETHER_OK;
}

static bool is_spec_id(const tether_eventlog_event_t *ev)
{
    return ev->type == TETHER_EV_NO_ACTION && ev->data_size >= sizeof(SPEC_ID_SIGNATURE) &&
           memcmp(ev->data, SPEC_ID_SIGNATURE, sizeof(SPEC_ID_SIGNATURE)) == 0;
}

/* A new slot at the end of the event table, zeroed. */
static tether_status_t next_slot(parser_t *p, tether_eventlog_event_t **out)
{
    tether_eventlog_t *log = p->log;

    if (log->event_count == TETHER_EVENTLOG_MAX_EVENTS)
        return refuse(p, TETHER_FIRMWARE_TOO_MANY_EVENTS, "more than %u events",
                      TETHER_EVENTLOG_MAX_EVENTS);
    if (log->event_count == p->event_capacity) {
        size_t capacity = p->event_capacity == 0 ? 64 : p->event_capacity * 2;
        tether_eventlog_event_t *grown;

        if (capacity > TETHER_EVENTLOG_MAX_EVENTS)
            capacity = TETHER_EVENTLOG_MAX_EVENTS;
        if ((grown = realloc(log->events, capacity * sizeof(*grown))) == NULL)
            return TETHER_ERR_NO_MEMORY;
        log->events = grown;
        p->event_capacity = capacity;
    }
    *out = &log->events[log->event_count];
    memset(*out, 0, sizeof(**out));
    (*out)->number = log->event_count;
    (*out)->offset = p->pos;
    return TETHER_OK;
}

/* One event at the cursor into the table. */
static tether_status_t parse_event(parser_t *p)
{
    tether_eventlog_event_t *ev = NULL;
    tether_status_t rc;
    bool first = p->log->event_count == 0;

    p->event_offset = p->pos;
    if ((rc = next_slot(p, &ev)) != TETHER_OK)
        goto out;
    rc = first || p->log->format == TETHER_EVENTLOG_FORMAT_SHA1 ? read_sha1_event(p, ev)
                                                                 : read_agile_event(p, ev);
    if (rc != TETHER_OK)
        goto out;
    if (ev->pcr >= TETHER_EVENTLOG_PCR_COUNT) {
        rc = refuse(p, TETHER_FIRMWARE_BAD_PCR, "an event in PCR %lu (0 to %u)",
                    (unsigned long)ev->pcr, TETHER_EVENTLOG_PCR_COUNT - 1);
        goto out;
    }
    if (first && is_spec_id(ev)) {
        rc = read_spec_id(p, ev);
        ev->decoded = TETHER_EVENTLOG_DECODED_SPEC_ID;
    } else {
        rc = decode_event(p, ev);
    }
    if (rc != TETHER_OK)
        goto out;
    if (ev->pcr == 0 && ev->type != TETHER_EV_NO_ACTION)
        p->pcr0_extended = true;
    p->log->event_count++;
out:
    return rc;
}

void tether_eventlog_init(tether_eventlog_t *log)
{
    if (log != NULL)
        memset(log, 0, sizeof(*log));
}

void tether_eventlog_free(tether_eventlog_t *log)
{
    if (log == NULL)
        return;
    free(log->bytes);
    free(log->text);
    free(log->events);
    memset(log, 0, sizeof(*log));
}

tether_status_t tether_eventlog_parse(tether_eventlog_t *log, const uint8_t *data, size_t len,
                                      tether_eventlog_failure_t *failure)
{
    parser_t p = {.log = log, .failure = failure};
    tether_status_t rc;

    if (failure != NULL)
        memset(failure, 0, sizeof(*failure));
    if (log == NULL || (data == NULL && len > 0) || log->bytes != NULL || log->events != NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len > TETHER_EVENTLOG_MAX_SIZE) {
        rc = refuse(&p, TETHER_FIRMWARE_LOG_TOO_LARGE,
                    "a log of %zu bytes (at most %u)", len, TETHER_EVENTLOG_MAX_SIZE);
        goto out;
    }
    if (len == 0) {
        rc = refuse(&p, TETHER_FIRMWARE_EMPTY, "an empty log");
        goto out;
    }
    p.text_size = tether_eventlog_text_capacity(len);
    if ((log->bytes = malloc(len)) == NULL || (log->text = malloc(p.text_size)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(log->bytes, data, len);
    log->size = len;
    /* Until a Spec ID says otherwise: the SHA-1 format, one SHA-1 bank. */
    log->format = TETHER_EVENTLOG_FORMAT_SHA1;
    log->algorithm_count = 1;
    log->algorithms[0].id = TETHER_TPM_ALG_SHA1;
    log->algorithms[0].size = SHA1_DIGEST_SIZE;
    while (p.pos < log->size)
        if ((rc = parse_event(&p)) != TETHER_OK)
            goto out;
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK)
        tether_eventlog_free(log);
    return rc;
}

tether_status_t tether_eventlog_read_file(const char *path, uint8_t **data, size_t *len)
{
    return tether_file_read_to_end(path, TETHER_EVENTLOG_MAX_SIZE, data, len);
}
