/*
 * firmware/: tether's own log in the TCG Canonical Event Log's TLV encoding
 * (cel.h). Records written by tether_cel_encode parse back to what was
 * written and replay to H(H(0 || d0) || d1)...; every truncation is refused
 * (or accepted at a record's end) with the cut record's offset, every byte
 * flip is refused with a named error, and each rule of the format has its
 * refusal. Run it under ASan/UBSan too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tether/cel.h"
#include "tether/file.h"

#ifndef CEL_SEED_DIR
#error "CEL_SEED_DIR must name tests/fuzz/corpus/fuzz_cel"
#endif

#define RECORDS 3

static const char *const names[RECORDS] = {"agent", "agent-config", "ai-app"};
static const char *const paths[RECORDS] = {"/usr/bin/tether-agent", "/etc/tether/agent.conf",
                                           "/opt/app/bin/app"};

typedef struct built {
    uint8_t bytes[RECORDS * TETHER_CEL_RECORD_MAX];
    size_t len;
    size_t ends[RECORDS];
    uint8_t event_digests[RECORDS][TETHER_CEL_MAX_BANKS][TETHER_HASH_MAX_SIZE];
} built_t;

/* Three records over SHA-1, SHA-256 and SHA-384, each file's digest the
 * hash of a made-up content. */
static void build(built_t *b, uint32_t bank_count)
{
    static const uint16_t algorithms[] = {TETHER_TPM_ALG_SHA1, TETHER_TPM_ALG_SHA256,
                                          TETHER_TPM_ALG_SHA384};
    tether_cel_measurement_t m;
    size_t len = 0;

    memset(b, 0, sizeof(*b));
    for (size_t r = 0; r < RECORDS; r++) {
        memset(&m, 0, sizeof(m));
        m.name = names[r];
        m.path = paths[r];
        m.bank_count = bank_count;
        for (uint32_t i = 0; i < bank_count; i++) {
            tether_hash_alg_t hash;

            m.algorithms[i] = algorithms[i];
            assert_true(tether_cel_hash_of(algorithms[i], &hash));
            assert_int_equal(tether_hash(hash, paths[r], strlen(paths[r]), m.file_digests[i],
                                         sizeof(m.file_digests[i])),
                             TETHER_OK);
        }
        assert_int_equal(tether_cel_encode(r, &m, b->bytes + b->len, TETHER_CEL_RECORD_MAX, &len,
                                           b->event_digests[r]),
                         TETHER_OK);
        b->len += len;
        b->ends[r] = b->len;
    }
}

static void round_trip_and_replay(void **state)
{
    built_t *b = malloc(sizeof(*b));
    tether_cel_t log;
    tether_eventlog_failure_t failure;
    tether_eventlog_pcrs_t pcrs;
    uint8_t expected[TETHER_HASH_MAX_SIZE] = {0}, joined[2 * TETHER_HASH_MAX_SIZE];
    cJSON *json = NULL;
    char *text;

    (void)state;
    assert_non_null(b);
    build(b, 3);
    tether_cel_init(&log);
    assert_true(tether_cel_recognise(b->bytes, b->len));
    assert_int_equal(tether_cel_parse(&log, b->bytes, b->len, &failure), TETHER_OK);
    assert_int_equal(log.record_count, RECORDS);
    for (size_t r = 0; r < RECORDS; r++) {
        assert_int_equal(log.records[r].recnum, r);
        assert_int_equal(log.records[r].pcr, TETHER_CEL_PCR);
        assert_string_equal(log.records[r].name, names[r]);
        assert_string_equal(log.records[r].path, paths[r]);
        assert_int_equal(log.records[r].bank_count, 3);
        assert_int_equal(log.records[r].algorithms[1], TETHER_TPM_ALG_SHA256);
        assert_memory_equal(log.records[r].digests[1], b->event_digests[r][1], 32);
        assert_int_equal(log.records[r].end, b->ends[r]);
    }
    /* SHA-256 bank by hand: PCR = H(PCR || digest), from zeros. */
    for (size_t r = 0; r < RECORDS; r++) {
        memcpy(joined, expected, 32);
        memcpy(joined + 32, b->event_digests[r][1], 32);
        assert_int_equal(tether_hash(TETHER_HASH_SHA256, joined, 64, expected, sizeof(expected)),
                         TETHER_OK);
    }
    assert_int_equal(tether_cel_replay(&log, RECORDS, NULL, 0, &pcrs), TETHER_OK);
    assert_int_equal(pcrs.bank_count, 3);
    assert_int_equal(pcrs.banks[1].algorithm, TETHER_TPM_ALG_SHA256);
    assert_memory_equal(pcrs.banks[1].pcrs[TETHER_CEL_PCR], expected, 32);
    /* A prefix replays to less; no record, to zeros. */
    assert_int_equal(tether_cel_replay(&log, RECORDS - 1, NULL, 0, &pcrs), TETHER_OK);
    assert_memory_not_equal(pcrs.banks[1].pcrs[TETHER_CEL_PCR], expected, 32);
    assert_int_equal(tether_cel_replay(&log, RECORDS + 1, NULL, 0, &pcrs),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_cel_to_json(&log, &pcrs, &json), TETHER_OK);
    text = cJSON_PrintUnformatted(json);
    assert_non_null(strstr(text, "\"format\":\"tcg_cel_tlv\""));
    assert_non_null(strstr(text, "\"name\":\"agent-config\",\"path\":\"/etc/tether/agent.conf\""));
    cJSON_free(text);
    cJSON_Delete(json);
    tether_cel_free(&log);
    free(b);
}

static void empty_log_replays_to_zeros(void **state)
{
    static const uint16_t sha256[] = {TETHER_TPM_ALG_SHA256};
    static const uint8_t zeros[32] = {0};
    tether_cel_t log;
    tether_eventlog_pcrs_t pcrs;

    (void)state;
    tether_cel_init(&log);
    assert_int_equal(tether_cel_parse(&log, NULL, 0, NULL), TETHER_OK);
    assert_int_equal(log.record_count, 0);
    assert_int_equal(tether_cel_replay(&log, 0, NULL, 0, &pcrs), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_cel_replay(&log, 0, sha256, 1, &pcrs), TETHER_OK);
    assert_int_equal(pcrs.bank_count, 1);
    assert_memory_equal(pcrs.banks[0].pcrs[TETHER_CEL_PCR], zeros, 32);
    tether_cel_free(&log);
    tether_cel_free(NULL);
}

static void every_truncation(void **state)
{
    built_t *b = malloc(sizeof(*b));
    tether_eventlog_failure_t failure;
    size_t accepted = 0;

    (void)state;
    assert_non_null(b);
    build(b, 2);
    for (size_t cut = 1; cut < b->len; cut++) {
        tether_cel_t log;
        size_t whole = 0;
        tether_status_t rc;

        while (whole < RECORDS && b->ends[whole] <= cut)
            whole++;
        tether_cel_init(&log);
        rc = tether_cel_parse(&log, b->bytes, cut, &failure);
        if (whole > 0 && b->ends[whole - 1] == cut) {
            assert_int_equal(rc, TETHER_OK);
            assert_int_equal(log.record_count, whole);
            accepted++;
        } else {
            /* Cut inside a record: refused where that record starts. */
            assert_int_equal(rc, TETHER_ERR_PARSE);
            assert_null(log.records);
            assert_int_equal(failure.error, TETHER_FIRMWARE_TRUNCATED);
            assert_int_equal(failure.event, whole);
            assert_int_equal(failure.offset, whole == 0 ? 0 : b->ends[whole - 1]);
        }
        tether_cel_free(&log);
    }
    assert_int_equal(accepted, RECORDS - 1);
    free(b);
}

/* A record's every byte matters: its fields are typed and sized, its
 * number and PCR fixed, its digests the hash of its content. */
static void every_byte_flipped(void **state)
{
    static const uint8_t flips[] = {0xFF, 0x80, 0x01};
    built_t *b = malloc(sizeof(*b));
    tether_eventlog_failure_t failure;

    (void)state;
    assert_non_null(b);
    build(b, 3);
    for (size_t f = 0; f < sizeof(flips); f++) {
        for (size_t pos = 0; pos < b->len; pos++) {
            tether_cel_t log;

            b->bytes[pos] ^= flips[f];
            tether_cel_init(&log);
            if (tether_cel_parse(&log, b->bytes, b->len, &failure) == TETHER_OK)
                fail_msg("flip 0x%02x at byte %zu accepted", flips[f], pos);
            assert_null(log.records);
            assert_true(failure.error > TETHER_FIRMWARE_OK &&
                        failure.error < TETHER_FIRMWARE_ERROR_COUNT);
            b->bytes[pos] ^= flips[f];
        }
    }
    free(b);
}

static void refusals_name_their_rule(void **state)
{
    built_t *b = malloc(sizeof(*b));
    uint8_t *copy;
    tether_cel_t log;
    tether_eventlog_failure_t failure;
    size_t name_at;

    (void)state;
    assert_non_null(b);
    build(b, 1);
    copy = malloc(b->len + 1);
    assert_non_null(copy);
    tether_cel_init(&log);

    /* A name changed in place, lengths intact: its digest no longer holds. */
    memcpy(copy, b->bytes, b->len);
    name_at = (size_t)((uint8_t *)memmem(copy, b->len, "agent-config", 12) - copy);
    copy[name_at] = 'b';
    assert_int_equal(tether_cel_parse(&log, copy, b->len, &failure), TETHER_ERR_PARSE);
    assert_int_equal(failure.error, TETHER_FIRMWARE_DIGEST_MISMATCH);
    assert_int_equal(failure.event, 1);
    assert_string_equal(tether_firmware_error_name(failure.error), "digest_mismatch");

    /* Records out of turn: the second record first. */
    memcpy(copy, b->bytes + b->ends[0], b->ends[1] - b->ends[0]);
    assert_int_equal(tether_cel_parse(&log, copy, b->ends[1] - b->ends[0], &failure),
                     TETHER_ERR_PARSE);
    assert_int_equal(failure.error, TETHER_FIRMWARE_BAD_RECORD);
    assert_string_equal(tether_firmware_error_name(failure.error), "bad_record");

    /* A byte after the last record. */
    memcpy(copy, b->bytes, b->len);
    copy[b->len] = 0;
    assert_int_equal(tether_cel_parse(&log, copy, b->len + 1, &failure), TETHER_ERR_PARSE);
    assert_int_equal(failure.error, TETHER_FIRMWARE_TRUNCATED);
    assert_int_equal(failure.event, RECORDS);

    /* Over the size bound, before anything is read. */
    assert_int_equal(tether_cel_parse(&log, copy, TETHER_CEL_MAX_SIZE + 1, &failure),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(failure.error, TETHER_FIRMWARE_LOG_TOO_LARGE);
    assert_null(log.records);
    free(copy);
    free(b);
}

static void too_many_records(void **state)
{
    tether_cel_measurement_t m = {.name = "f", .path = "/f", .bank_count = 1,
                                  .algorithms = {TETHER_TPM_ALG_SHA256}};
    size_t size = (TETHER_CEL_MAX_RECORDS + 1) * 200, len = 0, used = 0;
    uint8_t *bytes = malloc(size + TETHER_CEL_RECORD_MAX), digests[1][TETHER_HASH_MAX_SIZE];
    tether_cel_t log;
    tether_eventlog_failure_t failure;

    (void)state;
    assert_non_null(bytes);
    for (uint64_t r = 0; r <= TETHER_CEL_MAX_RECORDS; r++) {
        assert_int_equal(tether_cel_encode(r, &m, bytes + used, TETHER_CEL_RECORD_MAX, &len,
                                           digests),
                         TETHER_OK);
        used += len;
    }
    tether_cel_init(&log);
    assert_int_equal(tether_cel_parse(&log, bytes, used, &failure), TETHER_ERR_TOO_LARGE);
    assert_int_equal(failure.error, TETHER_FIRMWARE_TOO_MANY_EVENTS);
    assert_int_equal(failure.event, TETHER_CEL_MAX_RECORDS);
    free(bytes);
}

static void encode_refuses_what_no_record_holds(void **state)
{
    uint8_t out[TETHER_CEL_RECORD_MAX], digests[TETHER_CEL_MAX_BANKS][TETHER_HASH_MAX_SIZE];
    char long_name[TETHER_CEL_NAME_MAX + 2];
    tether_cel_measurement_t m = {.name = "agent", .path = "/usr/bin/tether-agent",
                                  .bank_count = 1, .algorithms = {TETHER_TPM_ALG_SHA256}};
    size_t len = 1;

    (void)state;
    assert_int_equal(tether_cel_encode(0, &m, out, sizeof(out), &len, digests), TETHER_OK);
    m.path = "usr/bin/tether-agent"; /* relative */
    assert_int_equal(tether_cel_encode(0, &m, out, sizeof(out), &len, digests),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(len, 0);
    m.path = "/usr/bin/tether\nagent";
    assert_int_equal(tether_cel_encode(0, &m, out, sizeof(out), &len, digests),
                     TETHER_ERR_INVALID_ARGUMENT);
    m.path = "/usr/bin/tether-agent";
    m.name = "agent config";
    assert_int_equal(tether_cel_encode(0, &m, out, sizeof(out), &len, digests),
                     TETHER_ERR_INVALID_ARGUMENT);
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    m.name = long_name;
    assert_int_equal(tether_cel_encode(0, &m, out, sizeof(out), &len, digests),
                     TETHER_ERR_INVALID_ARGUMENT);
    m.name = "agent";
    m.algorithms[0] = TETHER_TPM_ALG_SHA512; /* a bank lib does not hash */
    assert_int_equal(tether_cel_encode(0, &m, out, sizeof(out), &len, digests),
                     TETHER_ERR_INVALID_ARGUMENT);
    m.bank_count = 2;
    m.algorithms[0] = m.algorithms[1] = TETHER_TPM_ALG_SHA256; /* twice */
    assert_int_equal(tether_cel_encode(0, &m, out, sizeof(out), &len, digests),
                     TETHER_ERR_INVALID_ARGUMENT);
}

/* The standing of a log against the TPM's PCR: the TPM's values stand in
 * as replays of a prefix of the log. */
static void standing_against_the_pcr(void **state)
{
    built_t *b = malloc(sizeof(*b));
    tether_cel_t log, one;
    tether_eventlog_pcrs_t tpm;
    tether_cel_standing_t standing;
    size_t covered;

    (void)state;
    assert_non_null(b);
    build(b, 2);
    tether_cel_init(&log);
    tether_cel_init(&one);
    assert_int_equal(tether_cel_parse(&log, b->bytes, b->len, NULL), TETHER_OK);
    assert_int_equal(tether_cel_parse(&one, b->bytes, b->ends[0], NULL), TETHER_OK);

    assert_int_equal(tether_cel_replay(&log, RECORDS, NULL, 0, &tpm), TETHER_OK);
    assert_int_equal(tether_cel_assess(&log, &tpm, &standing, &covered), TETHER_OK);
    assert_int_equal(standing, TETHER_CEL_IN_STEP);
    assert_int_equal(covered, RECORDS);

    /* Stopped between writing the last record and extending it. */
    assert_int_equal(tether_cel_replay(&log, RECORDS - 1, NULL, 0, &tpm), TETHER_OK);
    assert_int_equal(tether_cel_assess(&log, &tpm, &standing, &covered), TETHER_OK);
    assert_int_equal(standing, TETHER_CEL_LAST_PENDING);
    assert_int_equal(covered, RECORDS - 1);
    assert_string_equal(tether_cel_standing_name(standing), "last_pending");

    /* PCR reset under a log of three: an earlier boot's; under a log of
     * one, the first record pending (both mean: none is in the PCR). */
    assert_int_equal(tether_cel_replay(&log, 0, NULL, 0, &tpm), TETHER_OK);
    assert_int_equal(tether_cel_assess(&log, &tpm, &standing, &covered), TETHER_OK);
    assert_int_equal(standing, TETHER_CEL_EARLIER_BOOT);
    assert_int_equal(covered, 0);
    assert_int_equal(tether_cel_assess(&one, &tpm, &standing, &covered), TETHER_OK);
    assert_int_equal(standing, TETHER_CEL_LAST_PENDING);

    /* Two records the PCR lacks: no interrupted run does that. */
    assert_int_equal(tether_cel_replay(&log, 1, NULL, 0, &tpm), TETHER_OK);
    assert_int_equal(tether_cel_assess(&log, &tpm, &standing, &covered), TETHER_OK);
    assert_int_equal(standing, TETHER_CEL_OUT_OF_STEP);

    /* Something else extended the PCR. */
    assert_int_equal(tether_cel_replay(&log, RECORDS, NULL, 0, &tpm), TETHER_OK);
    tpm.banks[1].pcrs[TETHER_CEL_PCR][0] ^= 1;
    assert_int_equal(tether_cel_assess(&log, &tpm, &standing, &covered), TETHER_OK);
    assert_int_equal(standing, TETHER_CEL_OUT_OF_STEP);

    /* The TPM's banks are not the log's. */
    tpm.banks[1].algorithm = TETHER_TPM_ALG_SHA384;
    assert_int_equal(tether_cel_assess(&log, &tpm, &standing, &covered),
                     TETHER_ERR_INVALID_ARGUMENT);
    tpm.bank_count = 1;
    assert_int_equal(tether_cel_assess(&log, &tpm, &standing, &covered),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_cel_free(&one);
    tether_cel_free(&log);
    free(b);
}

/* The fuzz seeds come from a second writer (Python, hashlib): this parser
 * reads them, and the file digests are what that writer hashed. */
static void second_writer_logs_parse(void **state)
{
    uint8_t *bytes = NULL, expected[32];
    size_t len = 0;
    tether_cel_t log;

    (void)state;
    assert_int_equal(tether_file_read(CEL_SEED_DIR "/three-records-three-banks.cel",
                                      TETHER_CEL_MAX_SIZE, &bytes, &len),
                     TETHER_OK);
    tether_cel_init(&log);
    assert_int_equal(tether_cel_parse(&log, bytes, len, NULL), TETHER_OK);
    assert_int_equal(log.record_count, RECORDS);
    for (size_t r = 0; r < RECORDS; r++) {
        assert_string_equal(log.records[r].name, names[r]);
        assert_string_equal(log.records[r].path, paths[r]);
        assert_int_equal(log.records[r].bank_count, 3);
        assert_int_equal(tether_sha256(paths[r], strlen(paths[r]), expected), TETHER_OK);
        assert_memory_equal(log.records[r].file_digests[1], expected, 32);
    }
    tether_cel_free(&log);
    free(bytes);
}

/* A firmware event log (crypto-agile: PCR 0, EV_NO_ACTION) is not taken
 * for tether's log. */
static void firmware_log_not_recognised(void **state)
{
    static const uint8_t firmware_start[32] = {0, 0, 0, 0, 3, 0, 0, 0};

    (void)state;
    assert_false(tether_cel_recognise(firmware_start, sizeof(firmware_start)));
    assert_false(tether_cel_recognise(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_replay),
        cmocka_unit_test(empty_log_replays_to_zeros),
        cmocka_unit_test(every_truncation),
        cmocka_unit_test(every_byte_flipped),
        cmocka_unit_test(refusals_name_their_rule),
        cmocka_unit_test(too_many_records),
        cmocka_unit_test(encode_refuses_what_no_record_holds),
        cmocka_unit_test(standing_against_the_pcr),
        cmocka_unit_test(second_writer_logs_parse),
        cmocka_unit_test(firmware_log_not_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
