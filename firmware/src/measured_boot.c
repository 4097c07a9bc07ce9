/* The measured-boot check at the fleet and the reference values it checks
 * against (measured_boot.h). */
#include "tether/measured_boot.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"
#include "tether/cel.h"
#include "tether/crypto.h"
#include "tether/eventlog.h"

#define DIGEST TETHER_MEASURED_BOOT_DIGEST_SIZE
#define PCR_SECURE_BOOT 7u /* PFP section 3.3.4.8: Secure Boot policy */

/* UEFI 2.x: EFI_GLOBAL_VARIABLE (8be4df61-93ca-11d2-aa0d-00e098032b8c) and
 * EFI_IMAGE_SECURITY_DATABASE_GUID (d719b2cb-3d3a-4596-a3bc-dad00e67656f),
 * as EFI_GUID is stored (first three fields little-endian). */
static const uint8_t efi_global_variable[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                                0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
static const uint8_t efi_image_security_database[16] = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d,
                                                        0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0,
                                                        0x0e, 0x67, 0x65, 0x6f};

static const char *const variable_names[TETHER_MEASURED_BOOT_VARIABLE_COUNT] = {
    [TETHER_MEASURED_BOOT_PK] = "PK",
    [TETHER_MEASURED_BOOT_KEK] = "KEK",
    [TETHER_MEASURED_BOOT_DB] = "db",
    [TETHER_MEASURED_BOOT_DBX] = "dbx",
};

const char *tether_measured_boot_variable_name(tether_measured_boot_variable_t variable)
{
    if ((unsigned)variable >= TETHER_MEASURED_BOOT_VARIABLE_COUNT)
        return NULL;
    return variable_names[variable];
}

static void say(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;

    if (why_size == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

/* ---- the lists -------------------------------------------------------- */

static int digest_compare(const void *a, const void *b)
{
    return memcmp(a, b, DIGEST);
}

static bool digest_listed(const uint8_t (*list)[DIGEST], size_t count, const uint8_t *digest)
{
    return count > 0 && bsearch(digest, list, count, DIGEST, digest_compare) != NULL;
}

static bool digests_ascending(const uint8_t (*list)[DIGEST], size_t count)
{
    for (size_t i = 1; i < count; i++)
        if (memcmp(list[i - 1], list[i], DIGEST) >= 0)
            return false;
    return true;
}

tether_status_t tether_measured_boot_digest_add(uint8_t (*list)[DIGEST], size_t *count,
                                                size_t max, const uint8_t digest[DIGEST])
{
    size_t at = 0;

    while (at < *count && memcmp(list[at], digest, DIGEST) < 0)
        at++;
    if (at < *count && memcmp(list[at], digest, DIGEST) == 0)
        return TETHER_OK;
    if (*count == max)
        return TETHER_ERR_TOO_LARGE;
    memmove(list[at + 1], list[at], (*count - at) * DIGEST);
    memcpy(list[at], digest, DIGEST);
    (*count)++;
    return TETHER_OK;
}

static int file_compare(const void *name, const void *file)
{
    return strcmp(name, ((const tether_measured_boot_file_t *)file)->name);
}

/* The index of ref's file named name; ref->file_count when none is. */
static size_t file_index(const tether_measured_boot_reference_t *ref, const char *name)
{
    const tether_measured_boot_file_t *f = NULL;

    if (ref->file_count > 0)
        f = bsearch(name, ref->files, ref->file_count, sizeof(ref->files[0]), file_compare);
    return f == NULL ? ref->file_count : (size_t)(f - ref->files);
}

bool tether_measured_boot_reference_valid(const tether_measured_boot_reference_t *ref, char *why,
                                          size_t why_size)
{
    const uint32_t pcr_bit_7 = UINT32_C(1) << PCR_SECURE_BOOT;

    if (why_size > 0)
        why[0] = '\0';
    if (ref->pcr_mask == 0 || ref->pcr_mask >> TETHER_MEASURED_BOOT_PCR_COUNT != 0) {
        say(why, why_size, "pcr_mask must name 1 to 24 PCRs, 0 to 23");
        return false;
    }
    if ((ref->exact_mask & ~ref->pcr_mask) != 0) {
        say(why, why_size, "a pinned PCR is not among the PCRs the quote covers");
        return false;
    }
    if ((ref->require_secure_boot || ref->variable_mask != 0) && (ref->pcr_mask & pcr_bit_7) == 0) {
        say(why, why_size, "SecureBoot and its key databases need PCR 7 in pcr_mask");
        return false;
    }
    if (ref->variable_mask >> TETHER_MEASURED_BOOT_VARIABLE_COUNT != 0) {
        say(why, why_size, "a variable other than PK, KEK, db and dbx");
        return false;
    }
    if (ref->application_count > TETHER_MEASURED_BOOT_MAX_APPLICATIONS ||
        ref->ipl_count > TETHER_MEASURED_BOOT_MAX_IPL ||
        ref->file_count > TETHER_MEASURED_BOOT_MAX_FILES) {
        say(why, why_size, "a list over its bound");
        return false;
    }
    if (!digests_ascending(ref->applications, ref->application_count) ||
        !digests_ascending(ref->ipl, ref->ipl_count)) {
        say(why, why_size, "a digest list is not strictly ascending");
        return false;
    }
    if (ref->file_count > 0 && (ref->pcr_mask & (UINT32_C(1) << TETHER_CEL_PCR)) == 0) {
        say(why, why_size, "tether's files need PCR %u in pcr_mask", TETHER_CEL_PCR);
        return false;
    }
    for (size_t i = 0; i < ref->file_count; i++) {
        const tether_measured_boot_file_t *f = &ref->files[i];

        if (memchr(f->name, '\0', sizeof(f->name)) == NULL || !tether_cel_name_valid(f->name) ||
            (i > 0 && strcmp(ref->files[i - 1].name, f->name) >= 0)) {
            say(why, why_size, "file %zu's name is not a measured file's name in ascending order",
                i);
            return false;
        }
        if (f->digest_count == 0 || f->digest_count > TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS ||
            !digests_ascending(f->digests, f->digest_count)) {
            say(why, why_size, "file %s needs 1 to %u digests, strictly ascending", f->name,
                TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS);
            return false;
        }
    }
    return true;
}

/* ---- the logs --------------------------------------------------------- */

/* Both logs parsed, and the SHA-256 value of each PCR they replay to
 * (tether's log for PCR 13, the platform's for every other). */
typedef struct logs {
    tether_eventlog_t platform;
    tether_cel_t tether;
    size_t tether_bank; /* the SHA-256 bank's index in tether's records */
    uint8_t pcrs[TETHER_MEASURED_BOOT_PCR_COUNT][DIGEST];
} logs_t;

static void logs_init(logs_t *logs)
{
    memset(logs, 0, sizeof(*logs));
    tether_eventlog_init(&logs->platform);
    tether_cel_init(&logs->tether);
}

static void logs_free(logs_t *logs)
{
    tether_eventlog_free(&logs->platform);
    tether_cel_free(&logs->tether);
}

/* The SHA-256 digest an event carries, or NULL. */
static const uint8_t *event_sha256(const tether_eventlog_event_t *ev)
{
    for (uint32_t i = 0; i < ev->digest_count; i++)
        if (ev->digests[i].algorithm == TETHER_TPM_ALG_SHA256)
            return ev->digests[i].value;
    return NULL;
}

/* Parses and replays both logs into *logs (logs_init'ed): the SHA-256 value
 * of every PCR, PCR 13 from tether's log. TETHER_ERR_PARSE with the reason
 * in why for a log that does not parse or lacks SHA-256 digests; *log_name
 * then names the log at fault. */
static tether_status_t logs_open(logs_t *logs, const uint8_t *platform_log, size_t platform_len,
                                 const uint8_t *tether_log, size_t tether_len,
                                 const char **log_name, char *why, size_t why_size)
{
    static const uint16_t sha256_bank[1] = {TETHER_TPM_ALG_SHA256};
    tether_eventlog_pcrs_t *replay = NULL;
    tether_eventlog_failure_t failure;
    const tether_eventlog_bank_t *bank = NULL;
    tether_status_t rc;

    *log_name = "platform";
    memset(&failure, 0, sizeof(failure));
    if ((replay = calloc(1, sizeof(*replay))) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    /* PC Client Platform TPM Profile: PCRs 17 to 22 start as all ones, the
     * others as zeros; the platform log's replay overwrites them. */
    for (uint32_t pcr = 17; pcr <= 22; pcr++)
        memset(logs->pcrs[pcr], 0xFF, DIGEST);
    if (platform_len > 0) {
        rc = tether_eventlog_parse(&logs->platform, platform_log, platform_len, &failure);
        if (rc == TETHER_ERR_PARSE || rc == TETHER_ERR_TOO_LARGE) {
            say(why, why_size, "the platform log does not parse: event %zu at byte %zu: %s (%s)",
                failure.event, failure.offset, failure.text,
                tether_firmware_error_name(failure.error));
            rc = TETHER_ERR_PARSE;
            goto out;
        }
        if (rc != TETHER_OK || (rc = tether_eventlog_replay(&logs->platform, replay)) != TETHER_OK)
            goto out;
        for (size_t b = 0; b < replay->bank_count; b++)
            if (replay->banks[b].algorithm == TETHER_TPM_ALG_SHA256)
                bank = &replay->banks[b];
        if (bank == NULL || bank->events_without_digest > 0) {
            say(why, why_size,
                "the platform log does not carry a SHA-256 digest for every event (%zu without): "
                "its replay cannot be compared with a SHA-256 quote",
                bank == NULL ? logs->platform.event_count : bank->events_without_digest);
            rc = TETHER_ERR_PARSE;
            goto out;
        }
        for (uint32_t pcr = 0; pcr < TETHER_MEASURED_BOOT_PCR_COUNT; pcr++)
            memcpy(logs->pcrs[pcr], bank->pcrs[pcr], DIGEST);
    }
    *log_name = "tether";
    rc = tether_cel_parse(&logs->tether, tether_log, tether_len, &failure);
    if (rc == TETHER_ERR_PARSE || rc == TETHER_ERR_TOO_LARGE) {
        say(why, why_size, "tether's log does not parse: record %zu at byte %zu: %s (%s)",
            failure.event, failure.offset, failure.text,
            tether_firmware_error_name(failure.error));
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if (rc != TETHER_OK)
        goto out;
    logs->tether_bank = TETHER_CEL_MAX_BANKS;
    for (size_t b = 0; logs->tether.record_count > 0 && b < logs->tether.records[0].bank_count; b++)
        if (logs->tether.records[0].algorithms[b] == TETHER_TPM_ALG_SHA256)
            logs->tether_bank = b;
    if (logs->tether.record_count > 0 && logs->tether_bank == TETHER_CEL_MAX_BANKS) {
        say(why, why_size, "tether's log carries no SHA-256 digests (measure with the SHA-256 "
                           "bank allocated)");
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if ((rc = tether_cel_replay(&logs->tether, logs->tether.record_count, sha256_bank, 1,
                                replay)) != TETHER_OK)
        goto out;
    for (size_t b = 0; b < replay->bank_count; b++)
        if (replay->banks[b].algorithm == TETHER_TPM_ALG_SHA256)
            memcpy(logs->pcrs[TETHER_CEL_PCR], replay->banks[b].pcrs[TETHER_CEL_PCR], DIGEST);
    *log_name = NULL;
out:
    free(replay);
    return rc;
}

/* A new logs_t with both logs opened (logs_open) in *out; free it with
 * logs_delete. TETHER_ERR_NO_MEMORY, or logs_open's result (*out is set
 * whenever it was allocated, so the caller frees it on every path). */
static tether_status_t logs_new(logs_t **out, const uint8_t *platform_log, size_t platform_len,
                                const uint8_t *tether_log, size_t tether_len,
                                const char **log_name, char *why, size_t why_size)
{
    *log_name = NULL;
    if ((*out = malloc(sizeof(**out))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    logs_init(*out);
    return logs_open(*out, platform_log, platform_len, tether_log, tether_len, log_name, why,
                     why_size);
}

/* Frees what logs_new made (NULL accepted). */
static void logs_delete(logs_t *logs)
{
    if (logs == NULL)
        return;
    logs_free(logs);
    free(logs);
}

/* The first platform event that extends tether's PCR, or NULL. */
static const tether_eventlog_event_t *platform_in_tether_pcr(const tether_eventlog_t *log)
{
    for (size_t e = 0; e < log->event_count; e++)
        if (log->events[e].pcr == TETHER_CEL_PCR && log->events[e].type != TETHER_EV_NO_ACTION)
            return &log->events[e];
    return NULL;
}

/* Which key database an event measures, or TETHER_MEASURED_BOOT_VARIABLE_COUNT. */
static tether_measured_boot_variable_t key_database(const tether_eventlog_event_t *ev)
{
    if (ev->pcr != PCR_SECURE_BOOT || ev->type != TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG ||
        ev->decoded != TETHER_EVENTLOG_DECODED_VARIABLE)
        return TETHER_MEASURED_BOOT_VARIABLE_COUNT;
    for (unsigned v = 0; v < TETHER_MEASURED_BOOT_VARIABLE_COUNT; v++) {
        const uint8_t *guid = v <= TETHER_MEASURED_BOOT_KEK ? efi_global_variable
                                                            : efi_image_security_database;

        if (memcmp(ev->fields.variable.guid, guid, 16) == 0 &&
            strcmp(ev->fields.variable.name, variable_names[v]) == 0)
            return (tether_measured_boot_variable_t)v;
    }
    return TETHER_MEASURED_BOOT_VARIABLE_COUNT;
}

static bool is_application(uint32_t type)
{
    return type == TETHER_EV_EFI_BOOT_SERVICES_APPLICATION ||
           type == TETHER_EV_EFI_BOOT_SERVICES_DRIVER ||
           type == TETHER_EV_EFI_RUNTIME_SERVICES_DRIVER;
}

static bool is_ipl(uint32_t type)
{
    return type == TETHER_EV_IPL || type == TETHER_EV_EVENT_TAG;
}

/* Whether ev is the SecureBoot variable's event in PCR 7. */
static bool is_secure_boot(const tether_eventlog_event_t *ev)
{
    return ev->pcr == PCR_SECURE_BOOT && ev->type == TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG &&
           ev->decoded == TETHER_EVENTLOG_DECODED_VARIABLE &&
           ev->fields.variable.secure_boot != TETHER_EVENTLOG_SECURE_BOOT_NOT_THIS;
}

/* Whether SecureBoot's event says enabled, and says so of the bytes its
 * digest covers: the parser shows the data as logged, and PFP measures
 * UEFI_VARIABLE_DATA whole, so a log whose data is not what was hashed
 * cannot vouch for the value. */
static tether_status_t secure_boot_enabled(const tether_eventlog_event_t *ev,
                                           const uint8_t *digest, bool *enabled)
{
    uint8_t hash[DIGEST];
    tether_status_t rc;

    *enabled = false;
    if ((rc = tether_sha256(ev->data, ev->data_size, hash)) != TETHER_OK)
        return rc;
    *enabled = ev->fields.variable.secure_boot == TETHER_EVENTLOG_SECURE_BOOT_ENABLED &&
               memcmp(hash, digest, DIGEST) == 0;
    return TETHER_OK;
}

/* ---- the reference from a golden device's logs ------------------------ */

tether_status_t tether_measured_boot_reference_add_logs(tether_measured_boot_reference_t *ref,
                                                        const uint8_t *platform_log,
                                                        size_t platform_len,
                                                        const uint8_t *tether_log,
                                                        size_t tether_len, char *why,
                                                        size_t why_size)
{
    tether_measured_boot_reference_t *next = NULL;
    const tether_eventlog_event_t *in_tether_pcr;
    const char *log_name = NULL;
    logs_t *logs = NULL;
    tether_status_t rc;

    if (why_size > 0)
        why[0] = '\0';
    if (ref == NULL || (platform_log == NULL && platform_len > 0) ||
        (tether_log == NULL && tether_len > 0)) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((next = malloc(sizeof(*next))) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(next, ref, sizeof(*next));
    if ((rc = logs_new(&logs, platform_log, platform_len, tether_log, tether_len, &log_name, why,
                       why_size)) != TETHER_OK)
        goto out;
    if ((in_tether_pcr = platform_in_tether_pcr(&logs->platform)) != NULL) {
        say(why, why_size, "the platform log's event %zu extends PCR %u, tether's",
            in_tether_pcr->number, TETHER_CEL_PCR);
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    for (size_t e = 0; e < logs->platform.event_count && rc == TETHER_OK; e++) {
        const tether_eventlog_event_t *ev = &logs->platform.events[e];
        const uint8_t *digest = event_sha256(ev);
        tether_measured_boot_variable_t v = key_database(ev);
        bool enabled = false;

        if (ev->type == TETHER_EV_NO_ACTION || digest == NULL)
            continue;
        next->pcr_mask |= UINT32_C(1) << ev->pcr;
        if (is_application(ev->type))
            rc = tether_measured_boot_digest_add(next->applications, &next->application_count,
                                                 TETHER_MEASURED_BOOT_MAX_APPLICATIONS, digest);
        else if (is_ipl(ev->type))
            rc = tether_measured_boot_digest_add(next->ipl, &next->ipl_count,
                                                 TETHER_MEASURED_BOOT_MAX_IPL, digest);
        else if (v != TETHER_MEASURED_BOOT_VARIABLE_COUNT) {
            next->variable_mask |= UINT32_C(1) << v;
            memcpy(next->variables[v], digest, DIGEST);
        } else if (is_secure_boot(ev) &&
                   (rc = secure_boot_enabled(ev, digest, &enabled)) == TETHER_OK && enabled)
            next->require_secure_boot = true;
        if (rc == TETHER_ERR_TOO_LARGE)
            say(why, why_size, "event %zu: more than %u %s digests in the reference", e,
                is_application(ev->type) ? TETHER_MEASURED_BOOT_MAX_APPLICATIONS
                                         : TETHER_MEASURED_BOOT_MAX_IPL,
                is_application(ev->type) ? "boot application" : "IPL");
    }
    for (size_t r = 0; r < logs->tether.record_count && rc == TETHER_OK; r++) {
        const tether_cel_record_t *record = &logs->tether.records[r];
        size_t at = file_index(next, record->name);
        tether_measured_boot_file_t *f = &next->files[at];

        next->pcr_mask |= UINT32_C(1) << TETHER_CEL_PCR;
        if (at == next->file_count) {
            at = 0;

            if (next->file_count == TETHER_MEASURED_BOOT_MAX_FILES) {
                say(why, why_size, "tether's log: more than %u files in the reference",
                    TETHER_MEASURED_BOOT_MAX_FILES);
                rc = TETHER_ERR_TOO_LARGE;
                break;
            }
            while (at < next->file_count && strcmp(next->files[at].name, record->name) < 0)
                at++;
            memmove(&next->files[at + 1], &next->files[at],
                    (next->file_count - at) * sizeof(next->files[0]));
            f = &next->files[at];
            memset(f, 0, sizeof(*f));
            memcpy(f->name, record->name, strlen(record->name) + 1);
            next->file_count++;
        }
        rc = tether_measured_boot_digest_add(f->digests, &f->digest_count,
                                             TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS,
                                             record->file_digests[logs->tether_bank]);
        if (rc == TETHER_ERR_TOO_LARGE)
            say(why, why_size, "tether's log: file %s would have more than %u digests allowed",
                record->name, TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS);
    }
    if (rc == TETHER_OK && next->pcr_mask == 0) {
        say(why, why_size, "the logs extend no PCR");
        rc = TETHER_ERR_PARSE;
    }
    if (rc == TETHER_OK)
        memcpy(ref, next, sizeof(*ref));
out:
    free(next);
    logs_delete(logs);
    return rc;
}

/* ---- the check -------------------------------------------------------- */

/* Fills *refusal with code and a sentence; names no event. */
static void refuse(tether_measured_boot_refusal_t *refusal, const char *code, const char *log,
                   uint32_t pcr, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refuse(tether_measured_boot_refusal_t *refusal, const char *code, const char *log,
                   uint32_t pcr, const char *fmt, ...)
{
    va_list ap;

    refusal->code = code;
    refusal->log = log;
    refusal->pcr = pcr;
    va_start(ap, fmt);
    (void)vsnprintf(refusal->text, sizeof(refusal->text), fmt, ap);
    va_end(ap);
}

/* Names the event (log, PCR, number, type, digest) in *refusal. */
static void name_event(tether_measured_boot_refusal_t *refusal, size_t number, uint32_t type,
                       const uint8_t *digest)
{
    refusal->has_event = true;
    refusal->event = number;
    refusal->type = type;
    if (digest != NULL)
        (void)tether_hex_encode(digest, DIGEST, refusal->digest_hex, sizeof(refusal->digest_hex));
}

/* The type's name for a sentence. */
static const char *type_text(uint32_t type)
{
    const char *name = tether_eventlog_type_name(type);

    return name != NULL ? name : "an event of unnamed type";
}

/* SHA-256 over the replayed values of the PCRs of mask, in ascending order:
 * the pcrDigest TPM2_Quote computes (TPM2 Part 3, TPM2_Quote). mask has no
 * bit above 23. */
static tether_status_t composite(const logs_t *logs, uint32_t mask, uint8_t digest[DIGEST])
{
    uint8_t selected[TETHER_MEASURED_BOOT_PCR_COUNT * DIGEST];
    size_t len = 0;

    for (uint32_t pcr = 0; pcr < TETHER_MEASURED_BOOT_PCR_COUNT; pcr++)
        if ((mask & (UINT32_C(1) << pcr)) != 0) {
            memcpy(selected + len, logs->pcrs[pcr], DIGEST);
            len += DIGEST;
        }
    return tether_sha256(selected, len, digest);
}

/* The quote against the logs' replay: it must cover ref's PCRs and its
 * pcrDigest must be the replay's over the PCRs it selects. */
static tether_status_t check_replay(const tether_measured_boot_reference_t *ref,
                                    const logs_t *logs, const tether_measured_boot_quote_t *quote,
                                    tether_measured_boot_refusal_t *refusal)
{
    uint8_t digest[DIGEST];
    tether_status_t rc;

    if ((quote->pcr_mask & ref->pcr_mask) != ref->pcr_mask) {
        refuse(refusal, TETHER_MEASURED_BOOT_REPLAY_MISMATCH, NULL, 0,
               "the quote selects PCRs 0x%06x of the SHA-256 bank, not all of the policy's "
               "0x%06x",
               (unsigned)quote->pcr_mask, (unsigned)ref->pcr_mask);
        return TETHER_ERR_VERIFY;
    }
    if (quote->pcr_mask >> TETHER_MEASURED_BOOT_PCR_COUNT != 0) {
        refuse(refusal, TETHER_MEASURED_BOOT_REPLAY_MISMATCH, NULL, 0,
               "the quote selects a PCR above 23, which no log replays");
        return TETHER_ERR_VERIFY;
    }
    if ((rc = composite(logs, quote->pcr_mask, digest)) != TETHER_OK)
        return rc;
    if (!tether_ct_equal(digest, quote->pcr_digest, DIGEST)) {
        refuse(refusal, TETHER_MEASURED_BOOT_REPLAY_MISMATCH, NULL, 0,
               "the logs replay to PCR values other than the quote's (PCRs 0x%06x): a log is "
               "incomplete, altered, or not this boot's",
               (unsigned)quote->pcr_mask);
        return TETHER_ERR_VERIFY;
    }
    return TETHER_OK;
}

tether_status_t tether_measured_boot_quote_digest(const uint8_t *platform_log,
                                                  size_t platform_len,
                                                  const uint8_t *tether_log, size_t tether_len,
                                                  uint32_t pcr_mask,
                                                  uint8_t digest[TETHER_MEASURED_BOOT_DIGEST_SIZE],
                                                  char *why, size_t why_size)
{
    const char *log_name = NULL;
    logs_t *logs = NULL;
    tether_status_t rc;

    if (why_size > 0)
        why[0] = '\0';
    if (digest != NULL)
        memset(digest, 0, DIGEST);
    if (digest == NULL || pcr_mask >> TETHER_MEASURED_BOOT_PCR_COUNT != 0 ||
        (platform_log == NULL && platform_len > 0) || (tether_log == NULL && tether_len > 0)) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((rc = logs_new(&logs, platform_log, platform_len, tether_log, tether_len, &log_name, why,
                       why_size)) == TETHER_OK)
        rc = composite(logs, pcr_mask, digest);
out:
    logs_delete(logs);
    return rc;
}

/* What the platform log's events have shown so far. */
typedef struct seen {
    bool secure_boot;
    uint32_t variables;
} seen_t;

/* One platform event against ref. */
static tether_status_t check_platform_event(const tether_measured_boot_reference_t *ref,
                                            const tether_eventlog_event_t *ev, seen_t *seen,
                                            tether_measured_boot_refusal_t *refusal)
{
    const uint8_t *digest = event_sha256(ev);
    tether_measured_boot_variable_t v;
    bool enabled = false;
    tether_status_t rc;

    if (ev->type == TETHER_EV_NO_ACTION)
        return TETHER_OK;
    if (ev->pcr == TETHER_CEL_PCR) {
        refuse(refusal, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED, "platform", ev->pcr,
               "the platform log extends PCR %u, which only tether's log may extend",
               TETHER_CEL_PCR);
        name_event(refusal, ev->number, ev->type, digest);
        return TETHER_ERR_VERIFY;
    }
    if ((ref->pcr_mask & (UINT32_C(1) << ev->pcr)) == 0)
        return TETHER_OK;
    if ((is_application(ev->type) &&
         !digest_listed(ref->applications, ref->application_count, digest)) ||
        (is_ipl(ev->type) && !digest_listed(ref->ipl, ref->ipl_count, digest))) {
        refuse(refusal, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED, "platform", ev->pcr,
               "%s in PCR %u measures a digest the policy does not allow", type_text(ev->type),
               ev->pcr);
        name_event(refusal, ev->number, ev->type, digest);
        return TETHER_ERR_VERIFY;
    }
    v = key_database(ev);
    if (v != TETHER_MEASURED_BOOT_VARIABLE_COUNT && (ref->variable_mask & (1u << v)) != 0) {
        if (memcmp(digest, ref->variables[v], DIGEST) != 0) {
            refuse(refusal, TETHER_MEASURED_BOOT_VARIABLE_NOT_ALLOWED, "platform", ev->pcr,
                   "the Secure Boot variable %s is measured with another digest than the "
                   "policy's",
                   variable_names[v]);
            name_event(refusal, ev->number, ev->type, digest);
            return TETHER_ERR_VERIFY;
        }
        seen->variables |= 1u << v;
    }
    if (ref->require_secure_boot && is_secure_boot(ev)) {
        if ((rc = secure_boot_enabled(ev, digest, &enabled)) != TETHER_OK)
            return rc;
        if (!enabled) {
            refuse(refusal, TETHER_MEASURED_BOOT_SECURE_BOOT_DISABLED, "platform", ev->pcr,
                   "SecureBoot is measured %s, and the policy requires it enabled",
                   ev->fields.variable.secure_boot == TETHER_EVENTLOG_SECURE_BOOT_ENABLED
                       ? "enabled over data its digest does not cover"
                   : ev->fields.variable.secure_boot == TETHER_EVENTLOG_SECURE_BOOT_DISABLED
                       ? "disabled"
                       : "absent (not set)");
            name_event(refusal, ev->number, ev->type, digest);
            return TETHER_ERR_VERIFY;
        }
        seen->secure_boot = true;
    }
    return TETHER_OK;
}

/* One record of tether's log against ref's files. */
static tether_status_t check_record(const tether_measured_boot_reference_t *ref,
                                    const logs_t *logs, size_t r, uint32_t *files_seen,
                                    tether_measured_boot_refusal_t *refusal)
{
    const tether_cel_record_t *record = &logs->tether.records[r];
    const uint8_t *digest = record->file_digests[logs->tether_bank];
    size_t at = file_index(ref, record->name);
    const tether_measured_boot_file_t *f = at < ref->file_count ? &ref->files[at] : NULL;

    if (f == NULL || !digest_listed(f->digests, f->digest_count, digest)) {
        refuse(refusal, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED, "tether", record->pcr,
               f == NULL ? "tether measured a file named %s, which the policy does not list"
                         : "tether measured file %s with a digest the policy does not allow",
               record->name);
        name_event(refusal, r, 0, digest);
        return TETHER_ERR_VERIFY;
    }
    *files_seen |= UINT32_C(1) << at;
    return TETHER_OK;
}

/* What the policy requires that no event showed, and the pinned PCRs. */
static tether_status_t check_complete(const tether_measured_boot_reference_t *ref,
                                      const logs_t *logs, const seen_t *seen, uint32_t files_seen,
                                      tether_measured_boot_refusal_t *refusal)
{
    for (size_t i = 0; i < ref->file_count; i++)
        if ((files_seen & (UINT32_C(1) << i)) == 0) {
            refuse(refusal, TETHER_MEASURED_BOOT_MEASUREMENT_MISSING, "tether", TETHER_CEL_PCR,
                   "tether's log does not measure file %s, which the policy requires",
                   ref->files[i].name);
            return TETHER_ERR_VERIFY;
        }
    if (ref->require_secure_boot && !seen->secure_boot) {
        refuse(refusal, TETHER_MEASURED_BOOT_SECURE_BOOT_DISABLED, "platform", PCR_SECURE_BOOT,
               "the platform log does not measure SecureBoot, which the policy requires enabled");
        return TETHER_ERR_VERIFY;
    }
    for (unsigned v = 0; v < TETHER_MEASURED_BOOT_VARIABLE_COUNT; v++)
        if ((ref->variable_mask & ~seen->variables & (1u << v)) != 0) {
            refuse(refusal, TETHER_MEASURED_BOOT_VARIABLE_NOT_ALLOWED, "platform",
                   PCR_SECURE_BOOT,
                   "the platform log does not measure the Secure Boot variable %s, which the "
                   "policy pins",
                   variable_names[v]);
            return TETHER_ERR_VERIFY;
        }
    for (uint32_t pcr = 0; pcr < TETHER_MEASURED_BOOT_PCR_COUNT; pcr++)
        if ((ref->exact_mask & (UINT32_C(1) << pcr)) != 0 &&
            memcmp(logs->pcrs[pcr], ref->exact[pcr], DIGEST) != 0) {
            refuse(refusal, TETHER_MEASURED_BOOT_PCR_VALUE_NOT_ALLOWED,
                   pcr == TETHER_CEL_PCR ? "tether" : "platform", pcr,
                   "PCR %u replays to another value than the one the policy pins", pcr);
            (void)tether_hex_encode(logs->pcrs[pcr], DIGEST, refusal->digest_hex,
                                    sizeof(refusal->digest_hex));
            return TETHER_ERR_VERIFY;
        }
    return TETHER_OK;
}

tether_status_t tether_measured_boot_check(const tether_measured_boot_reference_t *ref,
                                           const uint8_t *platform_log, size_t platform_len,
                                           const uint8_t *tether_log, size_t tether_len,
                                           const tether_measured_boot_quote_t *quote,
                                           tether_measured_boot_refusal_t *refusal)
{
    const char *log_name = NULL;
    uint32_t files_seen = 0;
    seen_t seen = {0};
    logs_t *logs = NULL;
    tether_status_t rc;

    if (refusal != NULL)
        memset(refusal, 0, sizeof(*refusal));
    if (ref == NULL || quote == NULL || refusal == NULL ||
        (platform_log == NULL && platform_len > 0) || (tether_log == NULL && tether_len > 0) ||
        !tether_measured_boot_reference_valid(ref, NULL, 0)) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    rc = logs_new(&logs, platform_log, platform_len, tether_log, tether_len, &log_name,
                  refusal->text, sizeof(refusal->text));
    if (rc == TETHER_ERR_PARSE) {
        refusal->code = TETHER_MEASURED_BOOT_EVENTLOG_MALFORMED;
        refusal->log = log_name;
        rc = TETHER_ERR_VERIFY;
    }
    if (rc != TETHER_OK || (rc = check_replay(ref, logs, quote, refusal)) != TETHER_OK)
        goto out;
    for (size_t e = 0; e < logs->platform.event_count && rc == TETHER_OK; e++)
        rc = check_platform_event(ref, &logs->platform.events[e], &seen, refusal);
    for (size_t r = 0; (ref->pcr_mask & (UINT32_C(1) << TETHER_CEL_PCR)) != 0 &&
                       r < logs->tether.record_count && rc == TETHER_OK;
         r++)
        rc = check_record(ref, logs, r, &files_seen, refusal);
    if (rc == TETHER_OK)
        rc = check_complete(ref, logs, &seen, files_seen, refusal);
out:
    logs_delete(logs);
    if (rc != TETHER_OK && rc != TETHER_ERR_VERIFY && refusal != NULL)
        memset(refusal, 0, sizeof(*refusal));
    return rc;
}

/* ---- naming a change after a replay mismatch --------------------------- */

/* The first platform event of sent that differs from held's event of the
 * same number (PCR, type, SHA-256 digest), or NULL. */
static const tether_eventlog_event_t *first_platform_change(const tether_eventlog_t *held,
                                                            const tether_eventlog_t *sent)
{
    for (size_t e = 0; e < sent->event_count && e < held->event_count; e++) {
        const tether_eventlog_event_t *a = &held->events[e], *b = &sent->events[e];
        const uint8_t *da = event_sha256(a), *db = event_sha256(b);

        if (a->pcr != b->pcr || a->type != b->type || (da == NULL) != (db == NULL) ||
            (da != NULL && memcmp(da, db, DIGEST) != 0))
            return b;
    }
    return NULL;
}

/* The number of tether's first record in sent that differs from held's of
 * the same number (PCR, name, SHA-256 digest extended), or SIZE_MAX. */
static size_t first_record_change(const logs_t *held, const logs_t *sent)
{
    for (size_t r = 0; r < sent->tether.record_count && r < held->tether.record_count; r++) {
        const tether_cel_record_t *a = &held->tether.records[r], *b = &sent->tether.records[r];

        if (a->pcr != b->pcr || strcmp(a->name, b->name) != 0 ||
            memcmp(a->digests[held->tether_bank], b->digests[sent->tether_bank], DIGEST) != 0)
            return r;
    }
    return SIZE_MAX;
}

/* Names the event and says in the text why it is named (the text stays
 * short enough for the sentence before it: the event's fields are the
 * caller's to print). */
static void add_change(tether_measured_boot_refusal_t *refusal, const char *log, uint32_t pcr,
                       size_t number, uint32_t type, const uint8_t *digest)
{
    size_t len = strlen(refusal->text);

    refusal->log = log;
    refusal->pcr = pcr;
    name_event(refusal, number, type, digest);
    (void)snprintf(refusal->text + len, sizeof(refusal->text) - len, "%s",
                   "; first difference from the log accepted last");
}

bool tether_measured_boot_name_change(const uint8_t *held_platform, size_t held_platform_len,
                                      const uint8_t *held_tether, size_t held_tether_len,
                                      const uint8_t *platform_log, size_t platform_len,
                                      const uint8_t *tether_log, size_t tether_len,
                                      tether_measured_boot_refusal_t *refusal)
{
    logs_t *held = NULL, *sent = NULL;
    const tether_eventlog_event_t *ev;
    const char *log_name;
    char why[8];
    size_t record;
    bool named = false;

    if (refusal == NULL ||
        logs_new(&held, held_platform, held_platform_len, held_tether, held_tether_len,
                 &log_name, why, sizeof(why)) != TETHER_OK ||
        logs_new(&sent, platform_log, platform_len, tether_log, tether_len, &log_name, why,
                 sizeof(why)) != TETHER_OK)
        goto out;
    if ((ev = first_platform_change(&held->platform, &sent->platform)) != NULL) {
        add_change(refusal, "platform", ev->pcr, ev->number, ev->type, event_sha256(ev));
        named = true;
    } else if ((record = first_record_change(held, sent)) != SIZE_MAX) {
        const tether_cel_record_t *r = &sent->tether.records[record];

        add_change(refusal, "tether", r->pcr, record, 0, r->digests[sent->tether_bank]);
        named = true;
    }
out:
    logs_delete(held);
    logs_delete(sent);
    return named;
}
