/*
 * firmware/: the event log parser, its decoded fields, its replay and its
 * JSON, against the real logs in firmware/tests/data (their values as
 * tpm2_eventlog prints them) and against small logs built here for what no
 * real log holds (StartupLocality, each refusal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tether/bytes.h"
#include "tether/eventlog.h"

#ifndef EVENTLOG_DATA_DIR
#error "EVENTLOG_DATA_DIR must name firmware/tests/data"
#endif

/* ---- the real logs ----------------------------------------------------- */

static const struct {
    const char *file;
    tether_eventlog_format_t format;
    size_t events;     /* as tpm2_eventlog counts them */
    uint32_t algorithms; /* declared by the Spec ID */
} real_logs[] = {
    {"event-arch-linux.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 25, 2},
    {"event-bootorder.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 104, 2},
    {"event-gce-ubuntu-2104-log.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 112, 3},
    {"event-moklisttrusted.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 97, 1},
    {"event-postcode.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 59, 2},
    {"event-sd-boot-fedora37.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 28, 1},
    {"event-uefi-sha1-log.bin", TETHER_EVENTLOG_FORMAT_SHA1, 17, 1},
    {"event-uefiaction.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 2, 4},
    {"event-uefiservices.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 2, 2},
    {"event-uefivar.bin", TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, 2, 4},
};
#define REAL_LOG_COUNT (sizeof(real_logs) / sizeof(real_logs[0]))

static void load(const char *file, tether_eventlog_t *log)
{
    char path[512];
    uint8_t *bytes = NULL;
    size_t len = 0;
    tether_eventlog_failure_t failure;

    snprintf(path, sizeof(path), "%s/%s", EVENTLOG_DATA_DIR, file);
    assert_int_equal(tether_eventlog_read_file(path, &bytes, &len), TETHER_OK);
    tether_eventlog_init(log);
    if (tether_eventlog_parse(log, bytes, len, &failure) != TETHER_OK)
        fail_msg("%s: %s at event %zu: %s", file, tether_firmware_error_name(failure.error),
                 failure.event, failure.text);
    free(bytes);
}

static void assert_hex(const uint8_t *bytes, size_t len, const char *hex)
{
    char text[2 * TETHER_EVENTLOG_MAX_DIGEST_SIZE + 1];

    assert_true(len <= TETHER_EVENTLOG_MAX_DIGEST_SIZE);
    assert_int_equal(tether_hex_encode(bytes, len, text, sizeof(text)), TETHER_OK);
    assert_string_equal(text, hex);
}

static void every_real_log_parses(void **state)
{
    (void)state;
    for (size_t i = 0; i < REAL_LOG_COUNT; i++) {
        tether_eventlog_t log;

        load(real_logs[i].file, &log);
        assert_int_equal(log.format, real_logs[i].format);
        assert_int_equal(log.event_count, real_logs[i].events);
        assert_int_equal(log.algorithm_count, real_logs[i].algorithms);
        for (size_t e = 0; e < log.event_count; e++) {
            const tether_eventlog_event_t *ev = &log.events[e];

            assert_int_equal(ev->number, e);
            assert_true(ev->pcr < TETHER_EVENTLOG_PCR_COUNT);
            assert_true(ev->data >= log.bytes && ev->data + ev->data_size <= log.bytes + log.size);
        }
        tether_eventlog_free(&log);
        tether_eventlog_free(&log); /* a freed log is empty and frees again */
    }
}

/* Every event type across the logs, counted as tpm2_eventlog names them. */
static void event_types_as_tpm2_eventlog_counts_them(void **state)
{
    static const struct {
        uint32_t type;
        size_t count;
    } expected[] = {
        {TETHER_EV_EFI_ACTION, 13},
        {TETHER_EV_EFI_BOOT_SERVICES_APPLICATION, 15},
        {TETHER_EV_EFI_BOOT_SERVICES_DRIVER, 9},
        {TETHER_EV_EFI_GPT_EVENT, 5},
        {TETHER_EV_EFI_PLATFORM_FIRMWARE_BLOB, 6},
        {TETHER_EV_EFI_VARIABLE_AUTHORITY, 8},
        {TETHER_EV_EFI_VARIABLE_BOOT, 39},
        {TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG, 36},
        {TETHER_EV_EVENT_TAG, 1},
        {TETHER_EV_IPL, 241},
        {TETHER_EV_NONHOST_INFO, 1},
        {TETHER_EV_NO_ACTION, 9},
        {TETHER_EV_POST_CODE, 2},
        {TETHER_EV_SEPARATOR, 56},
        {TETHER_EV_S_CRTM_VERSION, 7},
    };
    size_t counted[sizeof(expected) / sizeof(expected[0])] = {0}, total = 0;

    (void)state;
    for (size_t i = 0; i < REAL_LOG_COUNT; i++) {
        tether_eventlog_t log;

        load(real_logs[i].file, &log);
        for (size_t e = 0; e < log.event_count; e++, total++) {
            assert_non_null(tether_eventlog_type_name(log.events[e].type));
            for (size_t t = 0; t < sizeof(expected) / sizeof(expected[0]); t++)
                if (expected[t].type == log.events[e].type)
                    counted[t]++;
        }
        tether_eventlog_free(&log);
    }
    for (size_t t = 0; t < sizeof(expected) / sizeof(expected[0]); t++) {
        assert_string_not_equal(tether_eventlog_type_name(expected[t].type), "");
        assert_int_equal(counted[t], expected[t].count);
    }
    assert_int_equal(total, 448);
    assert_null(tether_eventlog_type_name(0x12345678));
}

static void decoded_fields_as_tpm2_eventlog_shows_them(void **state)
{
    tether_eventlog_t log;
    const tether_eventlog_event_t *ev;

    (void)state;
    /* SecureBoot enabled, in PCR 7, with both digests. */
    load("event-uefivar.bin", &log);
    ev = &log.events[1];
    assert_int_equal(ev->pcr, 7);
    assert_int_equal(ev->decoded, TETHER_EVENTLOG_DECODED_VARIABLE);
    assert_string_equal(ev->fields.variable.name, "SecureBoot");
    assert_int_equal(ev->fields.variable.secure_boot, TETHER_EVENTLOG_SECURE_BOOT_ENABLED);
    assert_int_equal(ev->digest_count, 2);
    assert_hex(ev->digests[1].value, ev->digests[1].size,
               "ccfc4bb32888a345bc8aeadaba552b627d99348c767681ab3141f5b01e40a40e");
    tether_eventlog_free(&log);

    /* The SHA-1 format: SecureBoot measured empty; a boot application's
     * image digest and load event. */
    load("event-uefi-sha1-log.bin", &log);
    assert_int_equal(log.events[1].fields.variable.secure_boot,
                     TETHER_EVENTLOG_SECURE_BOOT_ABSENT);
    ev = &log.events[15];
    assert_int_equal(ev->type, TETHER_EV_EFI_BOOT_SERVICES_APPLICATION);
    assert_int_equal(ev->decoded, TETHER_EVENTLOG_DECODED_IMAGE);
    assert_hex(ev->digests[0].value, 20, "d0e6f939f1304a83975f34ff678da573ae2b3ee5");
    assert_int_equal(ev->fields.image.location, 0x9f64d018);
    assert_int_equal(ev->fields.image.length, 1334816);
    assert_int_equal(ev->fields.image.device_path_size, 146);
    ev = &log.events[14];
    assert_int_equal(ev->decoded, TETHER_EVENTLOG_DECODED_GPT);
    assert_int_equal(ev->fields.gpt.partitions, 2);
    tether_eventlog_free(&log);

    /* shim's own variable, a firmware blob, the separators. */
    load("event-postcode.bin", &log);
    ev = &log.events[40];
    assert_int_equal(ev->type, TETHER_EV_EFI_VARIABLE_AUTHORITY);
    assert_string_equal(ev->fields.variable.name, "Shim");
    assert_int_equal(ev->fields.variable.value_size, 1080);
    assert_int_equal(ev->fields.variable.secure_boot, TETHER_EVENTLOG_SECURE_BOOT_NOT_THIS);
    ev = &log.events[2];
    assert_int_equal(ev->decoded, TETHER_EVENTLOG_DECODED_FIRMWARE_BLOB);
    assert_int_equal(ev->fields.firmware_blob.base, 0xff130000);
    assert_int_equal(ev->fields.firmware_blob.length, 0xa7f000);
    ev = &log.events[8];
    assert_int_equal(ev->decoded, TETHER_EVENTLOG_DECODED_SEPARATOR);
    assert_int_equal(ev->fields.separator.value, 0);
    assert_false(ev->fields.separator.is_error);
    tether_eventlog_free(&log);

    load("event-uefiaction.bin", &log);
    assert_int_equal(log.events[1].decoded, TETHER_EVENTLOG_DECODED_TEXT);
    assert_string_equal(log.events[1].fields.text, "Calling EFI Application from Boot Option");
    tether_eventlog_free(&log);

    load("event-moklisttrusted.bin", &log);
    assert_string_equal(log.events[30].fields.text, "MokListTrusted");
    tether_eventlog_free(&log);
}

/* The replayed bank of alg; fails the test when there is none. */
static const tether_eventlog_bank_t *bank_of(const tether_eventlog_pcrs_t *pcrs, uint16_t alg)
{
    for (size_t b = 0; b < pcrs->bank_count; b++)
        if (pcrs->banks[b].algorithm == alg)
            return &pcrs->banks[b];
    fail_msg("no bank of algorithm 0x%04x", (unsigned)alg);
    return &pcrs->banks[0];
}

static void replay_of_real_logs(void **state)
{
    tether_eventlog_t log;
    tether_eventlog_pcrs_t pcrs;
    const tether_eventlog_bank_t *bank;

    (void)state;
    load("event-uefivar.bin", &log);
    assert_int_equal(tether_eventlog_replay(&log, &pcrs), TETHER_OK);
    assert_int_equal(pcrs.bank_count, 3); /* sha512 is declared, not replayed */
    bank = bank_of(&pcrs, TETHER_TPM_ALG_SHA1);
    assert_int_equal(bank->extended, 1u << 7);
    assert_int_equal(bank->events_without_digest, 0);
    assert_hex(bank->pcrs[7], 20, "3a1ea200b8fafe60c290e903c5e6443cfef67f04");
    bank = bank_of(&pcrs, TETHER_TPM_ALG_SHA256);
    assert_hex(bank->pcrs[7], 32,
               "e58ada1ba75f2e4722b539824598ad5e10c55f2e4aeab2033f3b0a8ee3f3eca6");
    /* Declared but never in an event: its values are not the TPM's. */
    bank = bank_of(&pcrs, TETHER_TPM_ALG_SHA384);
    assert_int_equal(bank->extended, 0);
    assert_int_equal(bank->events_without_digest, 1);
    tether_eventlog_free(&log);

    load("event-gce-ubuntu-2104-log.bin", &log);
    assert_int_equal(tether_eventlog_replay(&log, &pcrs), TETHER_OK);
    bank = bank_of(&pcrs, TETHER_TPM_ALG_SHA384);
    assert_int_equal(bank->events_without_digest, 0);
    tether_eventlog_free(&log);
    assert_int_equal(tether_eventlog_replay(&log, &pcrs), TETHER_ERR_INVALID_ARGUMENT);
}

static void json_of_a_log(void **state)
{
    tether_eventlog_t log;
    tether_eventlog_pcrs_t pcrs;
    cJSON *root = NULL;
    const cJSON *ev, *sha256;

    (void)state;
    load("event-uefivar.bin", &log);
    assert_int_equal(tether_eventlog_replay(&log, &pcrs), TETHER_OK);
    assert_int_equal(tether_eventlog_to_json(&log, &pcrs, &root), TETHER_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "format")->valuestring,
                        "crypto_agile");
    ev = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "events"), 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "type")->valuestring,
                        "EV_EFI_VARIABLE_DRIVER_CONFIG");
    ev = cJSON_GetObjectItemCaseSensitive(ev, "variable");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "guid")->valuestring,
                        "8be4df61-93ca-11d2-aa0d-00e098032b8c");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "secure_boot")->valuestring,
                        "enabled");
    sha256 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "replay"),
                                              "sha256");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sha256, "complete")));
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sha256, "pcrs"), "7")
            ->valuestring,
        "e58ada1ba75f2e4722b539824598ad5e10c55f2e4aeab2033f3b0a8ee3f3eca6");
    cJSON_Delete(root);
    tether_eventlog_free(&log);
    assert_int_equal(tether_eventlog_to_json(&log, NULL, &root), TETHER_ERR_INVALID_ARGUMENT);
    assert_null(root);
}

/* ---- logs built here ----------------------------------------------------- */

typedef struct builder {
    uint8_t bytes[4096];
    size_t len;
} builder_t;

static void put(builder_t *b, const void *data, size_t len)
{
    assert_true(len <= sizeof(b->bytes) - b->len);
    memcpy(b->bytes + b->len, data, len);
    b->len += len;
}

static void put_u16(builder_t *b, uint16_t v)
{
    uint8_t le[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, le, sizeof(le));
}

static void put_u32(builder_t *b, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, le, sizeof(le));
}

/* The first event: a Spec ID declaring count algorithms (id, size). */
static void put_spec_id(builder_t *b, size_t count, const uint16_t (*algs)[2])
{
    static const uint8_t zeros[20] = {0};

    put_u32(b, 0);
    put_u32(b, TETHER_EV_NO_ACTION);
    put(b, zeros, sizeof(zeros));
    put_u32(b, (uint32_t)(16 + 4 + 4 + 4 + 4 * count + 1));
    put(b, "Spec ID Event03", 16);
    put_u32(b, 0);             /* platformClass */
    put(b, "\x00\x02\x00\x02", 4); /* minor, major, errata, uintnSize */
    put_u32(b, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        put_u16(b, algs[i][0]);
        put_u16(b, algs[i][1]);
    }
    put(b, "\x00", 1); /* vendorInfoSize */
}

/* A TCG_PCR_EVENT2 with one digest, every byte of it fill. */
static void put_event(builder_t *b, uint32_t pcr, uint32_t type, uint16_t alg, size_t size,
                      uint8_t fill, const void *data, uint32_t data_size)
{
    uint8_t digest[TETHER_EVENTLOG_MAX_DIGEST_SIZE];

    memset(digest, fill, sizeof(digest));
    put_u32(b, pcr);
    put_u32(b, type);
    put_u32(b, 1);
    put_u16(b, alg);
    put(b, digest, size);
    put_u32(b, data_size);
    put(b, data, data_size);
}

static const uint16_t sha256_only[][2] = {{TETHER_TPM_ALG_SHA256, 32}};
static const uint8_t locality3[17] = "StartupLocality\0\x03";

static tether_status_t parse_built(const builder_t *b, tether_eventlog_t *log,
                                   tether_eventlog_failure_t *failure)
{
    tether_eventlog_init(log);
    return tether_eventlog_parse(log, b->bytes, b->len, failure);
}

/* PCR 0 starts with the locality in its last byte; PCRs 17 to 22 start as
 * all ones (checked against the hash of the start value and the digest). */
static void startup_locality_and_drtm_pcrs(void **state)
{
    builder_t b = {.len = 0};
    tether_eventlog_t log;
    tether_eventlog_pcrs_t pcrs;
    uint8_t joined[64], expected[32];

    (void)state;
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 0, TETHER_EV_NO_ACTION, TETHER_TPM_ALG_SHA256, 32, 0, locality3, 17);
    put_event(&b, 0, TETHER_EV_POST_CODE, TETHER_TPM_ALG_SHA256, 32, 0xAB, "ACPI DATA", 9);
    put_event(&b, 17, TETHER_EV_EVENT_TAG, TETHER_TPM_ALG_SHA256, 32, 0xCD, "", 0);
    assert_int_equal(parse_built(&b, &log, NULL), TETHER_OK);
    assert_int_equal(log.events[1].decoded, TETHER_EVENTLOG_DECODED_STARTUP_LOCALITY);
    assert_string_equal(log.events[2].fields.text, "ACPI DATA");
    assert_int_equal(tether_eventlog_replay(&log, &pcrs), TETHER_OK);
    assert_int_equal(pcrs.startup_locality, 3);

    memset(joined, 0, 32);
    joined[31] = 3;
    memset(joined + 32, 0xAB, 32);
    assert_int_equal(tether_hash(TETHER_HASH_SHA256, joined, 64, expected, 32), TETHER_OK);
    assert_memory_equal(pcrs.banks[0].pcrs[0], expected, 32);

    memset(joined, 0xFF, 32);
    memset(joined + 32, 0xCD, 32);
    assert_int_equal(tether_hash(TETHER_HASH_SHA256, joined, 64, expected, 32), TETHER_OK);
    assert_memory_equal(pcrs.banks[0].pcrs[17], expected, 32);
    assert_int_equal(pcrs.banks[0].extended, (1u << 0) | (1u << 17));
    tether_eventlog_free(&log);
}

/* An unknown algorithm declared with its size is carried, not replayed. */
static void unknown_algorithm_declared_with_a_size(void **state)
{
    static const uint16_t algs[][2] = {{TETHER_TPM_ALG_SHA256, 32}, {0x7777, 24}};
    builder_t b = {.len = 0};
    tether_eventlog_t log;
    tether_eventlog_pcrs_t pcrs;

    (void)state;
    put_spec_id(&b, 2, algs);
    put_event(&b, 4, TETHER_EV_IPL, 0x7777, 24, 0x11, "x", 1);
    assert_int_equal(parse_built(&b, &log, NULL), TETHER_OK);
    assert_int_equal(log.events[1].digests[0].size, 24);
    assert_null(tether_eventlog_algorithm_name(0x7777));
    assert_int_equal(tether_eventlog_replay(&log, &pcrs), TETHER_OK);
    assert_int_equal(pcrs.bank_count, 1);
    assert_int_equal(pcrs.banks[0].events_without_digest, 1);
    tether_eventlog_free(&log);
}

/* Each malformed log is refused with its own error, and the log stays empty. */
static void refusals(void **state)
{
    static const uint16_t wrong_size[][2] = {{TETHER_TPM_ALG_SHA256, 20}};
    static const uint16_t twice[][2] = {{TETHER_TPM_ALG_SHA256, 32}, {TETHER_TPM_ALG_SHA256, 32}};
    static const uint8_t secure_boot_2[] = {
        0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b,
        0x8c, 10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'S', 0, 'e', 0, 'c', 0, 'u', 0,
        'r', 0, 'e', 0, 'B', 0, 'o', 0, 'o', 0, 't', 0, 2};
    builder_t b;
    tether_eventlog_t log;
    tether_eventlog_failure_t failure;

    (void)state;
#define EXPECT_REFUSAL(status, code, event_number)                                                 \
    do {                                                                                           \
        assert_int_equal(parse_built(&b, &log, &failure), status);                                \
        assert_int_equal(failure.error, code);                                                     \
        assert_int_equal(failure.event, event_number);                                             \
        assert_true(strlen(failure.text) > 0);                                                     \
        assert_null(log.events);                                                                   \
        assert_null(log.bytes);                                                                    \
    } while (0)

    b.len = 0; /* a digest of an algorithm the Spec ID does not declare */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 0, TETHER_EV_POST_CODE, TETHER_TPM_ALG_SHA1, 20, 0, "x", 1);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_ALGORITHM, 1);

    b.len = 0; /* a known algorithm declared with another size */
    put_spec_id(&b, 1, wrong_size);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_ALGORITHM, 0);

    b.len = 0; /* an algorithm declared twice */
    put_spec_id(&b, 2, twice);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_ALGORITHM, 0);

    b.len = 0; /* PCR 24 */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 24, TETHER_EV_IPL, TETHER_TPM_ALG_SHA256, 32, 0, "x", 1);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_PCR, 1);

    b.len = 0; /* no digest */
    put_spec_id(&b, 1, sha256_only);
    put_u32(&b, 0);
    put_u32(&b, TETHER_EV_IPL);
    put_u32(&b, 0);
    put_u32(&b, 0);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_DIGEST_COUNT, 1);

    b.len = 0; /* event data over its bound */
    put_spec_id(&b, 1, sha256_only);
    put_u32(&b, 0);
    put_u32(&b, TETHER_EV_IPL);
    put_u32(&b, 1);
    put_u16(&b, TETHER_TPM_ALG_SHA256);
    put(&b, secure_boot_2, 32);
    put_u32(&b, TETHER_EVENTLOG_MAX_EVENT_DATA + 1);
    EXPECT_REFUSAL(TETHER_ERR_TOO_LARGE, TETHER_FIRMWARE_EVENT_TOO_LARGE, 1);

    b.len = 0; /* a second Spec ID event */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 0, TETHER_EV_NO_ACTION, TETHER_TPM_ALG_SHA256, 32, 0, "Spec ID Event03", 16);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_SPEC_ID, 1);

    b.len = 0; /* StartupLocality after PCR 0 was extended */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 0, TETHER_EV_POST_CODE, TETHER_TPM_ALG_SHA256, 32, 0, "x", 1);
    put_event(&b, 0, TETHER_EV_NO_ACTION, TETHER_TPM_ALG_SHA256, 32, 0, locality3, 17);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_LOCALITY, 2);

    b.len = 0; /* SecureBoot of value 2 */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 7, TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG, TETHER_TPM_ALG_SHA256, 32, 0,
              secure_boot_2, sizeof(secure_boot_2));
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_EVENT_DATA, 1);

    b.len = 0; /* the same variable, its value length past its data */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 7, TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG, TETHER_TPM_ALG_SHA256, 32, 0,
              secure_boot_2, sizeof(secure_boot_2) - 1);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_EVENT_DATA, 1);

    b.len = 0; /* a separator of 2 bytes */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 7, TETHER_EV_SEPARATOR, TETHER_TPM_ALG_SHA256, 32, 0, "\0\0", 2);
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_BAD_EVENT_DATA, 1);

    b.len = 0; /* cut inside the second event's digest */
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 0, TETHER_EV_IPL, TETHER_TPM_ALG_SHA256, 32, 0, "x", 1);
    b.len -= 10;
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_TRUNCATED, 1);

    b.len = 0;
    EXPECT_REFUSAL(TETHER_ERR_PARSE, TETHER_FIRMWARE_EMPTY, 0);
#undef EXPECT_REFUSAL

    assert_string_equal(tether_firmware_error_name(TETHER_FIRMWARE_BAD_LOCALITY),
                        "bad_startup_locality");
    assert_string_equal(tether_firmware_error_name(TETHER_FIRMWARE_ERROR_COUNT), "internal_error");
}

static void error_separator_and_log_bounds(void **state)
{
    builder_t b = {.len = 0};
    tether_eventlog_t log;
    tether_eventlog_failure_t failure;
    uint8_t *big;

    (void)state;
    put_spec_id(&b, 1, sha256_only);
    put_event(&b, 4, TETHER_EV_SEPARATOR, TETHER_TPM_ALG_SHA256, 32, 0, "\x01\0\0\0", 4);
    assert_int_equal(parse_built(&b, &log, NULL), TETHER_OK);
    assert_true(log.events[1].fields.separator.is_error);
    /* A log that is not empty is not parsed into. */
    assert_int_equal(tether_eventlog_parse(&log, b.bytes, b.len, &failure),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_eventlog_free(&log);

    assert_non_null(big = calloc(1, TETHER_EVENTLOG_MAX_SIZE + 1));
    tether_eventlog_init(&log);
    assert_int_equal(tether_eventlog_parse(&log, big, TETHER_EVENTLOG_MAX_SIZE + 1, &failure),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(failure.error, TETHER_FIRMWARE_LOG_TOO_LARGE);
    free(big);
}

/* The file reader reads to the end and stops past the bound. */
static void read_file_bounds(void **state)
{
    char path[] = "/tmp/tether-eventlog-XXXXXX";
    uint8_t *data = (uint8_t *)"x", *chunk;
    size_t len = 1;
    int fd;

    (void)state;
    assert_int_equal(tether_eventlog_read_file("/nonexistent/eventlog", &data, &len),
                     TETHER_ERR_NOT_FOUND);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_true((fd = mkstemp(path)) >= 0);
    assert_non_null(chunk = calloc(1, TETHER_EVENTLOG_MAX_SIZE));
    assert_int_equal(write(fd, chunk, TETHER_EVENTLOG_MAX_SIZE), TETHER_EVENTLOG_MAX_SIZE);
    assert_int_equal(tether_eventlog_read_file(path, &data, &len), TETHER_OK);
    assert_int_equal(len, TETHER_EVENTLOG_MAX_SIZE);
    free(data);
    assert_int_equal(write(fd, "y", 1), 1);
    assert_int_equal(tether_eventlog_read_file(path, &data, &len), TETHER_ERR_TOO_LARGE);
    assert_null(data);
    free(chunk);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_real_log_parses),
        cmocka_unit_test(event_types_as_tpm2_eventlog_counts_them),
        cmocka_unit_test(decoded_fields_as_tpm2_eventlog_shows_them),
        cmocka_unit_test(replay_of_real_logs),
        cmocka_unit_test(json_of_a_log),
        cmocka_unit_test(startup_locality_and_drtm_pcrs),
        cmocka_unit_test(unknown_algorithm_declared_with_a_size),
        cmocka_unit_test(refusals),
        cmocka_unit_test(error_separator_and_log_bounds),
        cmocka_unit_test(read_file_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
