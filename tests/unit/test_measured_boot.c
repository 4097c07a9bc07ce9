/*
 * firmware/: the measured-boot check (measured_boot.h) against every real
 * log in firmware/tests/data: a reference made from a log accepts that log
 * with the quote its replay gives; an event changed, SecureBoot off, a
 * kernel not allowed, a key database changed, a pinned PCR and tether's
 * files by name are each refused with their code and the event at fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tether/bytes.h"
#include "tether/cel.h"
#include "tether/crypto.h"
#include "tether/eventlog.h"
#include "tether/measured_boot.h"

#ifndef EVENTLOG_DATA_DIR
#error "EVENTLOG_DATA_DIR must name firmware/tests/data"
#endif

/* Every real log but the SHA-1-only one, which a SHA-256 quote cannot
 * check (test_sha1_log_refused). */
static const char *const sha256_logs[] = {
    "event-arch-linux.bin",     "event-bootorder.bin",        "event-gce-ubuntu-2104-log.bin",
    "event-moklisttrusted.bin", "event-postcode.bin",         "event-sd-boot-fedora37.bin",
    "event-uefiaction.bin",     "event-uefiservices.bin",     "event-uefivar.bin",
};
#define SHA256_LOG_COUNT (sizeof(sha256_logs) / sizeof(sha256_logs[0]))

typedef struct bytes {
    uint8_t *data;
    size_t len;
} bytes_t;

static bytes_t read_log(const char *file)
{
    char path[512];
    bytes_t b = {0};

    snprintf(path, sizeof(path), "%s/%s", EVENTLOG_DATA_DIR, file);
    assert_int_equal(tether_eventlog_read_file(path, &b.data, &b.len), TETHER_OK);
    return b;
}

/* The quote a TPM that went through both logs would give over mask: the
 * replays computed with the parsers' own replay, PCR 13 from tether's log. */
static tether_measured_boot_quote_t quote_of(const bytes_t *platform, const bytes_t *cel,
                                             uint32_t mask)
{
    static const uint16_t sha256[1] = {TETHER_TPM_ALG_SHA256};
    tether_measured_boot_quote_t quote = {.pcr_mask = mask};
    tether_eventlog_pcrs_t replay, tether;
    tether_eventlog_t log;
    tether_cel_t c;
    uint8_t values[24 * 32];
    size_t len = 0, bank = 0, tbank = 0;

    memset(&replay, 0, sizeof(replay));
    for (uint32_t pcr = 17; pcr <= 22; pcr++)
        memset(replay.banks[0].pcrs[pcr], 0xFF, 32);
    if (platform != NULL && platform->len > 0) {
        tether_eventlog_init(&log);
        assert_int_equal(tether_eventlog_parse(&log, platform->data, platform->len, NULL),
                         TETHER_OK);
        assert_int_equal(tether_eventlog_replay(&log, &replay), TETHER_OK);
        tether_eventlog_free(&log);
        while (replay.banks[bank].algorithm != TETHER_TPM_ALG_SHA256)
            bank++;
    }
    tether_cel_init(&c);
    assert_int_equal(tether_cel_parse(&c, cel != NULL ? cel->data : NULL,
                                      cel != NULL ? cel->len : 0, NULL),
                     TETHER_OK);
    assert_int_equal(tether_cel_replay(&c, c.record_count, sha256, 1, &tether), TETHER_OK);
    tether_cel_free(&c);
    while (tether.banks[tbank].algorithm != TETHER_TPM_ALG_SHA256)
        tbank++;
    for (uint32_t pcr = 0; pcr < 24; pcr++)
        if (mask & (1u << pcr)) {
            memcpy(values + len,
                   pcr == TETHER_CEL_PCR ? tether.banks[tbank].pcrs[pcr]
                                         : replay.banks[bank].pcrs[pcr],
                   32);
            len += 32;
        }
    assert_int_equal(tether_sha256(values, len, quote.pcr_digest), TETHER_OK);
    return quote;
}

static tether_measured_boot_reference_t *reference_of(const bytes_t *platform, const bytes_t *cel)
{
    tether_measured_boot_reference_t *ref = calloc(1, sizeof(*ref));
    char why[256];

    assert_non_null(ref);
    if (tether_measured_boot_reference_add_logs(ref, platform ? platform->data : NULL,
                                                platform ? platform->len : 0,
                                                cel ? cel->data : NULL, cel ? cel->len : 0, why,
                                                sizeof(why)) != TETHER_OK)
        fail_msg("reference: %s", why);
    assert_true(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    return ref;
}

/* Runs the check with the quote of the logs over ref's PCRs. */
static tether_status_t check(const tether_measured_boot_reference_t *ref, const bytes_t *platform,
                             const bytes_t *cel, tether_measured_boot_refusal_t *refusal)
{
    tether_measured_boot_quote_t quote = quote_of(platform, cel, ref->pcr_mask);

    return tether_measured_boot_check(ref, platform ? platform->data : NULL,
                                      platform ? platform->len : 0, cel ? cel->data : NULL,
                                      cel ? cel->len : 0, &quote, refusal);
}

static void expect_accepted(const tether_measured_boot_reference_t *ref, const bytes_t *platform,
                            const bytes_t *cel)
{
    tether_measured_boot_refusal_t refusal;
    tether_status_t rc = check(ref, platform, cel, &refusal);

    if (rc != TETHER_OK)
        fail_msg("refused: %s: %s", refusal.code ? refusal.code : "(none)", refusal.text);
    assert_null(refusal.code);
}

/* The first event of the parsed copy of b for which pick says yes. */
static size_t find_event(const bytes_t *b, bool (*pick)(const tether_eventlog_event_t *),
                         size_t *digest_offset)
{
    tether_eventlog_t log;
    size_t found = SIZE_MAX;

    tether_eventlog_init(&log);
    assert_int_equal(tether_eventlog_parse(&log, b->data, b->len, NULL), TETHER_OK);
    for (size_t e = 0; e < log.event_count && found == SIZE_MAX; e++)
        for (uint32_t d = 0; d < log.events[e].digest_count; d++)
            if (pick(&log.events[e]) && log.events[e].digests[d].algorithm == TETHER_TPM_ALG_SHA256) {
                found = e;
                *digest_offset = (size_t)(log.events[e].digests[d].value - log.bytes);
            }
    tether_eventlog_free(&log);
    return found;
}

static bool is_checked_event(const tether_eventlog_event_t *ev)
{
    return ev->type == TETHER_EV_EFI_BOOT_SERVICES_APPLICATION ||
           ev->type == TETHER_EV_EFI_BOOT_SERVICES_DRIVER ||
           ev->type == TETHER_EV_EFI_RUNTIME_SERVICES_DRIVER || ev->type == TETHER_EV_IPL ||
           ev->type == TETHER_EV_EVENT_TAG;
}

/* ---- the real logs ---------------------------------------------------- */

static void test_reference_accepts_its_log(void **state)
{
    (void)state;
    for (size_t i = 0; i < SHA256_LOG_COUNT; i++) {
        bytes_t log = read_log(sha256_logs[i]);
        tether_measured_boot_reference_t *ref = reference_of(&log, NULL);

        print_message("%s: pcr_mask 0x%06x, %zu applications, %zu IPL\n", sha256_logs[i],
                      (unsigned)ref->pcr_mask, ref->application_count, ref->ipl_count);
        expect_accepted(ref, &log, NULL);
        free(ref);
        free(log.data);
    }
}

/* A checked event's digest changed (the TPM extended the changed digest
 * too, so the replay still matches a quote): refused naming that event;
 * with the quote of the original log, the replay no longer matches. */
static void test_event_changed_is_named(void **state)
{
    size_t tested = 0;

    (void)state;
    for (size_t i = 0; i < SHA256_LOG_COUNT; i++) {
        bytes_t log = read_log(sha256_logs[i]);
        tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
        tether_measured_boot_quote_t original = quote_of(&log, NULL, ref->pcr_mask);
        tether_measured_boot_refusal_t refusal;
        size_t offset = 0, event = find_event(&log, is_checked_event, &offset);
        char hex[65];

        if (event != SIZE_MAX) {
            log.data[offset] ^= 0x01;
            assert_int_equal(check(ref, &log, NULL, &refusal), TETHER_ERR_VERIFY);
            assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED);
            assert_true(refusal.has_event);
            assert_string_equal(refusal.log, "platform");
            assert_int_equal(refusal.event, event);
            assert_int_equal(tether_hex_encode(log.data + offset, 32, hex, sizeof(hex)),
                             TETHER_OK);
            assert_string_equal(refusal.digest_hex, hex);
            assert_int_equal(tether_measured_boot_check(ref, log.data, log.len, NULL, 0,
                                                        &original, &refusal),
                             TETHER_ERR_VERIFY);
            assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_REPLAY_MISMATCH);
            tested++;
        }
        free(ref);
        free(log.data);
    }
    assert_int_equal(tested, 7); /* uefiaction and uefivar hold no such event */
}

static void test_sha1_log_refused(void **state)
{
    bytes_t log = read_log("event-uefi-sha1-log.bin");
    tether_measured_boot_reference_t ref = {.pcr_mask = 0x1};
    tether_measured_boot_quote_t quote = {.pcr_mask = 0x1};
    tether_measured_boot_refusal_t refusal;
    char why[256];

    (void)state;
    assert_int_equal(tether_measured_boot_reference_add_logs(&ref, log.data, log.len, NULL, 0,
                                                             why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "SHA-256"));
    assert_int_equal(ref.pcr_mask, 0x1); /* unchanged */
    assert_int_equal(
        tether_measured_boot_check(&ref, log.data, log.len, NULL, 0, &quote, &refusal),
        TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_EVENTLOG_MALFORMED);
    assert_string_equal(refusal.log, "platform");
    assert_false(refusal.has_event);
    free(log.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_accepts_its_log),
        cmocka_unit_test(test_event_changed_is_named),
        cmocka_unit_test(test_sha1_log_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
