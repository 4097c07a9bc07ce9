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
            if (pick(&log.events[e]) &&
                log.events[e].digests[d].algorithm == TETHER_TPM_ALG_SHA256) {
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

static bytes_t cel_of(const char *const *names, const uint8_t *fills, size_t count,
                      bool sha256);

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

/* tether_measured_boot_quote_digest gives the digest computed here from
 * the parsers' replays, for every log and a CEL; a log the check would call
 * malformed is refused with the reason. */
static void test_quote_digest(void **state)
{
    static const char *const names[] = {"tether-agent"};
    static const uint8_t fill[] = {0x5a};
    bytes_t sha1 = read_log("event-uefi-sha1-log.bin");
    uint8_t digest[32];
    char why[256];

    (void)state;
    for (size_t i = 0; i < SHA256_LOG_COUNT; i++) {
        bytes_t log = read_log(sha256_logs[i]), cel = cel_of(names, fill, 1, true);
        uint32_t mask = 0xffffff;
        tether_measured_boot_quote_t quote = quote_of(&log, &cel, mask);

        assert_int_equal(tether_measured_boot_quote_digest(log.data, log.len, cel.data, cel.len,
                                                           mask, digest, why, sizeof(why)),
                         TETHER_OK);
        assert_memory_equal(digest, quote.pcr_digest, 32);
        free(log.data);
        free(cel.data);
    }
    assert_int_equal(tether_measured_boot_quote_digest(sha1.data, sha1.len, NULL, 0, 0x1, digest,
                                                       why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "SHA-256"));
    assert_int_equal(tether_measured_boot_quote_digest(NULL, 0, NULL, 0, 1u << 24, digest, why,
                                                       sizeof(why)),
                     TETHER_ERR_INVALID_ARGUMENT);
    free(sha1.data);
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
        bytes_t held;
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
            assert_false(refusal.has_event);
            /* against the log accepted last, the change is named */
            held = read_log(sha256_logs[i]);
            assert_false(tether_measured_boot_name_change(held.data, held.len, NULL, 0,
                                                          held.data, held.len, NULL, 0,
                                                          &refusal));
            assert_false(refusal.has_event);
            assert_true(tether_measured_boot_name_change(held.data, held.len, NULL, 0, log.data,
                                                         log.len, NULL, 0, &refusal));
            assert_true(refusal.has_event);
            assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_REPLAY_MISMATCH);
            assert_string_equal(refusal.log, "platform");
            assert_int_equal(refusal.event, event);
            assert_string_equal(refusal.digest_hex, hex);
            assert_non_null(strstr(refusal.text, "; first difference from the log accepted last"));
            free(held.data);
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

/* The PCR 9 EV_IPL event (a kernel, initrd or grub file) of the GCE log:
 * a reference without its digest refuses it by number; with the digest
 * added (the rollout of a new kernel), the log is accepted. */
static bool is_pcr9_ipl(const tether_eventlog_event_t *ev)
{
    return ev->type == TETHER_EV_IPL && ev->pcr == 9;
}

static void test_kernel_not_allowed_then_allowed(void **state)
{
    bytes_t log = read_log("event-gce-ubuntu-2104-log.bin");
    tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
    tether_measured_boot_refusal_t refusal;
    size_t offset = 0, event = find_event(&log, is_pcr9_ipl, &offset), at = 0;
    uint8_t kernel[32];

    (void)state;
    assert_int_not_equal(event, SIZE_MAX);
    memcpy(kernel, log.data + offset, 32);
    while (memcmp(ref->ipl[at], kernel, 32) != 0)
        at++;
    memmove(ref->ipl[at], ref->ipl[at + 1], (ref->ipl_count - at - 1) * 32);
    ref->ipl_count--;
    assert_int_equal(check(ref, &log, NULL, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED);
    assert_int_equal(refusal.event, event);
    assert_int_equal(refusal.pcr, 9);
    assert_int_equal(refusal.type, TETHER_EV_IPL);
    assert_non_null(strstr(refusal.text, "EV_IPL in PCR 9"));
    assert_int_equal(tether_measured_boot_digest_add(ref->ipl, &ref->ipl_count,
                                                     TETHER_MEASURED_BOOT_MAX_IPL, kernel),
                     TETHER_OK);
    expect_accepted(ref, &log, NULL);
    free(ref);
    free(log.data);
}

/* SecureBoot: disabled in the GCE log, absent in systemd-boot's, enabled
 * in moklisttrusted's; a value flipped to enabled without its digest is
 * still refused (the digest must cover the data shown). */
static bool is_secure_boot_event(const tether_eventlog_event_t *ev)
{
    return ev->decoded == TETHER_EVENTLOG_DECODED_VARIABLE &&
           ev->fields.variable.secure_boot != TETHER_EVENTLOG_SECURE_BOOT_NOT_THIS;
}

static void test_secure_boot_required(void **state)
{
    static const struct {
        const char *file;
        bool enabled;
        const char *words;
    } cases[] = {
        {"event-gce-ubuntu-2104-log.bin", false, "SecureBoot is measured disabled"},
        {"event-sd-boot-fedora37.bin", false, "SecureBoot is measured absent"},
        {"event-moklisttrusted.bin", true, NULL},
        {"event-uefivar.bin", true, NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bytes_t log = read_log(cases[i].file);
        tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
        tether_measured_boot_refusal_t refusal;
        size_t offset = 0, event = find_event(&log, is_secure_boot_event, &offset);

        assert_int_equal(ref->require_secure_boot, cases[i].enabled);
        ref->require_secure_boot = true;
        if (cases[i].enabled) {
            expect_accepted(ref, &log, NULL);
        } else {
            assert_int_equal(check(ref, &log, NULL, &refusal), TETHER_ERR_VERIFY);
            assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_SECURE_BOOT_DISABLED);
            assert_int_equal(refusal.event, event);
            assert_int_equal(refusal.pcr, 7);
            assert_non_null(strstr(refusal.text, cases[i].words));
        }
        free(ref);
        free(log.data);
    }
}

static void test_secure_boot_value_not_covered(void **state)
{
    bytes_t log = read_log("event-gce-ubuntu-2104-log.bin");
    tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
    tether_measured_boot_refusal_t refusal;
    tether_eventlog_t parsed;
    size_t offset = 0, event = find_event(&log, is_secure_boot_event, &offset);
    size_t value_at;

    (void)state;
    tether_eventlog_init(&parsed);
    assert_int_equal(tether_eventlog_parse(&parsed, log.data, log.len, NULL), TETHER_OK);
    value_at = (size_t)(parsed.events[event].fields.variable.value - parsed.bytes);
    tether_eventlog_free(&parsed);
    assert_int_equal(log.data[value_at], 0);
    log.data[value_at] = 1; /* enabled, over the digest of disabled */
    ref->require_secure_boot = true;
    assert_int_equal(check(ref, &log, NULL, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_SECURE_BOOT_DISABLED);
    assert_int_equal(refusal.event, event);
    assert_non_null(strstr(refusal.text, "enabled over data its digest does not cover"));
    free(ref);
    free(log.data);
}

/* A key database with another digest is named; one the log does not
 * measure is refused without an event. */
static void test_variables(void **state)
{
    bytes_t log = read_log("event-moklisttrusted.bin"), small = read_log("event-uefivar.bin");
    tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
    tether_measured_boot_reference_t *only = reference_of(&small, NULL);
    tether_measured_boot_refusal_t refusal;

    (void)state;
    assert_int_equal(ref->variable_mask, 0xf);
    ref->variables[TETHER_MEASURED_BOOT_DBX][0] ^= 0xff;
    assert_int_equal(check(ref, &log, NULL, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_VARIABLE_NOT_ALLOWED);
    assert_true(refusal.has_event);
    assert_int_equal(refusal.pcr, 7);
    assert_int_equal(refusal.type, TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG);
    assert_non_null(strstr(refusal.text, "variable dbx"));

    assert_int_equal(only->variable_mask, 0); /* SecureBoot alone */
    only->variable_mask = 1u << TETHER_MEASURED_BOOT_KEK;
    assert_int_equal(check(only, &small, NULL, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_VARIABLE_NOT_ALLOWED);
    assert_false(refusal.has_event);
    assert_non_null(strstr(refusal.text, "does not measure the Secure Boot variable KEK"));
    free(ref);
    free(only);
    free(log.data);
    free(small.data);
}

/* A pinned PCR: its replayed value passes, another is refused with the
 * value replayed. */
static void test_exact_pcr(void **state)
{
    bytes_t log = read_log("event-postcode.bin");
    tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
    tether_measured_boot_refusal_t refusal;
    tether_eventlog_pcrs_t replay;
    tether_eventlog_t parsed;
    size_t bank = 0;
    char hex[65];

    (void)state;
    tether_eventlog_init(&parsed);
    assert_int_equal(tether_eventlog_parse(&parsed, log.data, log.len, NULL), TETHER_OK);
    assert_int_equal(tether_eventlog_replay(&parsed, &replay), TETHER_OK);
    tether_eventlog_free(&parsed);
    while (replay.banks[bank].algorithm != TETHER_TPM_ALG_SHA256)
        bank++;
    ref->exact_mask = 0x1 | 0x80;
    memcpy(ref->exact[0], replay.banks[bank].pcrs[0], 32);
    memcpy(ref->exact[7], replay.banks[bank].pcrs[7], 32);
    expect_accepted(ref, &log, NULL);
    ref->exact[7][3] ^= 0x10;
    assert_int_equal(check(ref, &log, NULL, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_PCR_VALUE_NOT_ALLOWED);
    assert_false(refusal.has_event);
    assert_int_equal(refusal.pcr, 7);
    assert_string_equal(refusal.log, "platform");
    assert_int_equal(tether_hex_encode(replay.banks[bank].pcrs[7], 32, hex, sizeof(hex)),
                     TETHER_OK);
    assert_string_equal(refusal.digest_hex, hex);
    free(ref);
    free(log.data);
}

/* The quote must select every PCR of the reference, and its digest is over
 * every PCR it selects (one more selected than the reference: still the
 * replay's). */
static void test_quote_selection(void **state)
{
    bytes_t log = read_log("event-arch-linux.bin");
    tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
    tether_measured_boot_quote_t quote = quote_of(&log, NULL, ref->pcr_mask & ~0x2u);
    tether_measured_boot_refusal_t refusal;

    (void)state;
    assert_int_equal(tether_measured_boot_check(ref, log.data, log.len, NULL, 0, &quote, &refusal),
                     TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_REPLAY_MISMATCH);
    assert_non_null(strstr(refusal.text, "not all of the policy's"));
    quote = quote_of(&log, NULL, ref->pcr_mask | 1u << 16 | 1u << 17);
    assert_int_equal(tether_measured_boot_check(ref, log.data, log.len, NULL, 0, &quote, &refusal),
                     TETHER_OK);
    assert_null(refusal.code);
    quote.pcr_mask |= 1u << 24;
    assert_int_equal(tether_measured_boot_check(ref, log.data, log.len, NULL, 0, &quote, &refusal),
                     TETHER_ERR_VERIFY);
    assert_non_null(strstr(refusal.text, "above 23"));
    free(ref);
    free(log.data);
}

/* A platform event in PCR 13 (its index rewritten): refused by name at the
 * check, and by the reference builder. */
static void test_platform_in_tether_pcr(void **state)
{
    bytes_t log = read_log("event-sd-boot-fedora37.bin");
    tether_measured_boot_reference_t *ref = reference_of(&log, NULL), copy;
    tether_measured_boot_refusal_t refusal;
    tether_eventlog_t parsed;
    size_t at;
    char why[256];

    (void)state;
    tether_eventlog_init(&parsed);
    assert_int_equal(tether_eventlog_parse(&parsed, log.data, log.len, NULL), TETHER_OK);
    at = parsed.events[5].offset; /* TCG_PCR_EVENT2 starts with its PCR index */
    assert_int_equal(parsed.events[5].pcr, 7);
    tether_eventlog_free(&parsed);
    log.data[at] = 13;
    ref->pcr_mask |= 1u << 13;
    assert_int_equal(check(ref, &log, NULL, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED);
    assert_int_equal(refusal.event, 5);
    assert_int_equal(refusal.pcr, 13);
    assert_non_null(strstr(refusal.text, "only tether's log may extend"));
    copy = *ref;
    assert_int_equal(tether_measured_boot_reference_add_logs(ref, log.data, log.len, NULL, 0, why,
                                                             sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "event 5 extends PCR 13"));
    assert_memory_equal(ref, &copy, sizeof(copy));
    free(ref);
    free(log.data);
}

/* A log cut short: eventlog_malformed, with the parser's reason. */
static void test_malformed_logs(void **state)
{
    bytes_t log = read_log("event-bootorder.bin");
    tether_measured_boot_reference_t *ref = reference_of(&log, NULL);
    tether_measured_boot_quote_t quote = quote_of(&log, NULL, ref->pcr_mask);
    tether_measured_boot_refusal_t refusal;
    static const uint8_t not_cel[12] = {0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0};

    (void)state;
    assert_int_equal(tether_measured_boot_check(ref, log.data, log.len - 3, NULL, 0, &quote,
                                                &refusal),
                     TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_EVENTLOG_MALFORMED);
    assert_string_equal(refusal.log, "platform");
    assert_non_null(strstr(refusal.text, "the platform log does not parse: event 103"));
    assert_non_null(strstr(refusal.text, "(truncated)"));
    assert_int_equal(tether_measured_boot_check(ref, log.data, log.len, not_cel, sizeof(not_cel),
                                                &quote, &refusal),
                     TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_EVENTLOG_MALFORMED);
    assert_string_equal(refusal.log, "tether");
    assert_non_null(strstr(refusal.text, "tether's log does not parse"));
    free(ref);
    free(log.data);
}

/* ---- tether's files by name ------------------------------------------ */

/* Tether's log of files (name, fill byte of its SHA-256 digest) over the
 * SHA-256 bank, and SHA-1 too when both. */
static bytes_t cel_of(const char *const *names, const uint8_t *fills, size_t count, bool sha256)
{
    bytes_t b = {calloc(count, TETHER_CEL_RECORD_MAX), 0};

    assert_non_null(b.data);
    for (size_t r = 0; r < count; r++) {
        tether_cel_measurement_t m = {.name = names[r], .path = "/usr/bin/x", .bank_count = 0};
        uint8_t digests[2][TETHER_HASH_MAX_SIZE];
        size_t len = 0;

        m.algorithms[m.bank_count++] = TETHER_TPM_ALG_SHA1;
        if (sha256)
            m.algorithms[m.bank_count++] = TETHER_TPM_ALG_SHA256;
        memset(m.file_digests, fills[r], sizeof(m.file_digests));
        assert_int_equal(tether_cel_encode(r, &m, b.data + b.len, TETHER_CEL_RECORD_MAX, &len,
                                           digests),
                         TETHER_OK);
        b.len += len;
    }
    return b;
}

static void test_tether_files(void **state)
{
    static const char *const names[] = {"tether-agent", "agent.conf", "app"};
    static const char *const strangers[] = {"tether-agent", "agent.conf", "other"};
    static const uint8_t fills[] = {0x11, 0x22, 0x33}, changed[] = {0x11, 0x22, 0x44};
    bytes_t platform = read_log("event-sd-boot-fedora37.bin");
    bytes_t cel = cel_of(names, fills, 3, true), next = cel_of(names, changed, 3, true);
    bytes_t two = cel_of(names, fills, 2, true), stranger = cel_of(strangers, fills, 3, true);
    bytes_t sha1 = cel_of(names, fills, 1, false);
    tether_measured_boot_reference_t *ref = reference_of(&platform, &cel);
    tether_measured_boot_refusal_t refusal;
    char why[256];

    (void)state;
    assert_int_equal(ref->file_count, 3);
    assert_string_equal(ref->files[0].name, "agent.conf"); /* by name */
    assert_string_equal(ref->files[2].name, "tether-agent");
    assert_true((ref->pcr_mask & 1u << 13) != 0);
    expect_accepted(ref, &platform, &cel);

    /* the application changed: refused, naming record 2 and its digest */
    assert_int_equal(check(ref, &platform, &next, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED);
    assert_string_equal(refusal.log, "tether");
    assert_int_equal(refusal.event, 2);
    assert_int_equal(refusal.pcr, 13);
    assert_int_equal(refusal.type, 0);
    assert_string_equal(refusal.digest_hex,
                        "4444444444444444444444444444444444444444444444444444444444444444");
    assert_non_null(strstr(refusal.text, "file app with a digest the policy does not allow"));
    /* after a replay mismatch, the record that differs from the log held */
    memset(&refusal, 0, sizeof(refusal));
    assert_true(tether_measured_boot_name_change(platform.data, platform.len, cel.data, cel.len,
                                                 platform.data, platform.len, next.data, next.len,
                                                 &refusal));
    assert_string_equal(refusal.log, "tether");
    assert_int_equal(refusal.event, 2);
    assert_int_equal(refusal.pcr, 13);
    /* a log cut short differs in no record both hold: nothing to name */
    assert_false(tether_measured_boot_name_change(platform.data, platform.len, cel.data, cel.len,
                                                  platform.data, platform.len, two.data, two.len,
                                                  &refusal));
    /* admitted by adding its new digest: both versions pass */
    assert_int_equal(tether_measured_boot_reference_add_logs(ref, NULL, 0, next.data, next.len,
                                                             why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(ref->files[1].digest_count, 2);
    expect_accepted(ref, &platform, &next);
    expect_accepted(ref, &platform, &cel);

    /* a file the policy does not list; one it lists missing */
    assert_int_equal(check(ref, &platform, &stranger, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED);
    assert_int_equal(refusal.event, 2);
    assert_non_null(strstr(refusal.text, "a file named other"));
    assert_int_equal(check(ref, &platform, &two, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_MEASUREMENT_MISSING);
    assert_false(refusal.has_event);
    assert_non_null(strstr(refusal.text, "does not measure file app"));
    assert_int_equal(check(ref, &platform, NULL, &refusal), TETHER_ERR_VERIFY);
    assert_string_equal(refusal.code, TETHER_MEASURED_BOOT_MEASUREMENT_MISSING);

    /* tether's log without the SHA-256 bank */
    assert_int_equal(tether_measured_boot_reference_add_logs(ref, NULL, 0, sha1.data, sha1.len,
                                                             why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "no SHA-256 digests"));
    free(ref);
    free(platform.data);
    free(cel.data);
    free(next.data);
    free(two.data);
    free(stranger.data);
    free(sha1.data);
}

/* ---- the reference's own rules and the arguments ---------------------- */

static void test_reference_rules(void **state)
{
    static const uint8_t low[32] = {1}, high[32] = {2};
    tether_measured_boot_reference_t *ref = calloc(1, sizeof(*ref));
    tether_measured_boot_quote_t quote = {.pcr_mask = 0x10};
    tether_measured_boot_refusal_t refusal;
    char why[128];

    (void)state;
    assert_non_null(ref);
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    assert_non_null(strstr(why, "pcr_mask must name"));
    ref->pcr_mask = 1u << 24;
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    ref->pcr_mask = 0x10;
    assert_true(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    ref->exact_mask = 0x1;
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    assert_non_null(strstr(why, "pinned PCR"));
    ref->exact_mask = 0;
    ref->variable_mask = 1;
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    assert_non_null(strstr(why, "need PCR 7"));
    ref->pcr_mask |= 0x80;
    ref->variable_mask = 1u << TETHER_MEASURED_BOOT_VARIABLE_COUNT;
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    ref->variable_mask = 0;
    memcpy(ref->applications[0], high, 32);
    memcpy(ref->applications[1], low, 32);
    ref->application_count = 2;
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    assert_non_null(strstr(why, "strictly ascending"));
    ref->application_count = 0;
    ref->file_count = 1;
    snprintf(ref->files[0].name, sizeof(ref->files[0].name), "agent");
    ref->files[0].digest_count = 1;
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    assert_non_null(strstr(why, "PCR 13"));
    ref->pcr_mask |= 1u << 13;
    assert_true(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    snprintf(ref->files[0].name, sizeof(ref->files[0].name), "a/b");
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    snprintf(ref->files[0].name, sizeof(ref->files[0].name), "agent");
    ref->files[0].digest_count = 0;
    assert_false(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    assert_non_null(strstr(why, "1 to 8 digests"));

    /* an invalid reference or argument is not the device's fault */
    memset(&refusal, 0xa5, sizeof(refusal));
    assert_int_equal(tether_measured_boot_check(ref, NULL, 0, NULL, 0, &quote, &refusal),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_null(refusal.code);
    ref->files[0].digest_count = 1;
    assert_int_equal(tether_measured_boot_check(ref, NULL, 5, NULL, 0, &quote, &refusal),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_measured_boot_check(NULL, NULL, 0, NULL, 0, &quote, &refusal),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_measured_boot_check(ref, NULL, 0, NULL, 0, NULL, &refusal),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_string_equal(tether_measured_boot_variable_name(TETHER_MEASURED_BOOT_DBX), "dbx");
    assert_null(tether_measured_boot_variable_name(TETHER_MEASURED_BOOT_VARIABLE_COUNT));
    free(ref);
}

/* The allow lists' bound, and the list kept sorted and each once. */
static void test_digest_add(void **state)
{
    uint8_t list[3][32], d[32];
    size_t count = 0;

    (void)state;
    for (int i = 3; i >= 1; i--) {
        memset(d, i, sizeof(d));
        assert_int_equal(tether_measured_boot_digest_add(list, &count, 3, d), TETHER_OK);
        assert_int_equal(tether_measured_boot_digest_add(list, &count, 3, d), TETHER_OK);
    }
    assert_int_equal(count, 3);
    assert_int_equal(list[0][0], 1);
    assert_int_equal(list[2][0], 3);
    memset(d, 9, sizeof(d));
    assert_int_equal(tether_measured_boot_digest_add(list, &count, 3, d), TETHER_ERR_TOO_LARGE);
    assert_int_equal(count, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_accepts_its_log),
        cmocka_unit_test(test_event_changed_is_named),
        cmocka_unit_test(test_sha1_log_refused),
        cmocka_unit_test(test_quote_digest),
        cmocka_unit_test(test_kernel_not_allowed_then_allowed),
        cmocka_unit_test(test_secure_boot_required),
        cmocka_unit_test(test_secure_boot_value_not_covered),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_exact_pcr),
        cmocka_unit_test(test_quote_selection),
        cmocka_unit_test(test_platform_in_tether_pcr),
        cmocka_unit_test(test_malformed_logs),
        cmocka_unit_test(test_tether_files),
        cmocka_unit_test(test_reference_rules),
        cmocka_unit_test(test_digest_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
