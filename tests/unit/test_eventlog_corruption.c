/*
 * firmware/: every truncation of every real log in firmware/tests/data, and
 * a flip of every byte of each, is either refused with an error that names
 * why or parses into a log that stays inside its bounds and replays and
 * prints. Run it under ASan/UBSan too: a read past the buffer or an
 * overflow anywhere here is a failure even when the asserts hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tether/eventlog.h"

#ifndef EVENTLOG_DATA_DIR
#error "EVENTLOG_DATA_DIR must name firmware/tests/data"
#endif

static const char *const logs[] = {
    "event-arch-linux.bin",   "event-bootorder.bin",        "event-gce-ubuntu-2104-log.bin",
    "event-moklisttrusted.bin", "event-postcode.bin",       "event-sd-boot-fedora37.bin",
    "event-uefi-sha1-log.bin", "event-uefiaction.bin",      "event-uefiservices.bin",
    "event-uefivar.bin",
};

/* Bytes XORed into the positions in turn: every bit, the top bit of a
 * length byte, and the low bit that turns a length or count a little up
 * or down (a log misframed by one). */
static const uint8_t flips[] = {0xFF, 0x80, 0x01};

typedef struct tally {
    size_t accepted, refused;
} tally_t;

/* Every accepted log is checked against its bounds; one in this many is
 * also replayed and printed as JSON (all of them take a minute, and the
 * replay and the JSON only read what the bounds checked). */
#define DEEP_CHECK_EVERY 8

/* Whether [p, p + n) lies inside the log's copy. */
static bool inside(const tether_eventlog_t *log, const uint8_t *p, uint64_t n)
{
    return p >= log->bytes && n <= log->size && (size_t)(p - log->bytes) <= log->size - n;
}

/* A log that parsed: every event and decoded field inside the copy and
 * its bounds; every DEEP_CHECK_EVERY-th, the replay and the JSON work. */
static void check_bounded(const tether_eventlog_t *log, tally_t *tally)
{
    tether_eventlog_pcrs_t pcrs;
    cJSON *json = NULL;

    assert_true(log->event_count > 0 && log->event_count <= TETHER_EVENTLOG_MAX_EVENTS);
    assert_true(log->size <= TETHER_EVENTLOG_MAX_SIZE);
    for (size_t e = 0; e < log->event_count; e++) {
        const tether_eventlog_event_t *ev = &log->events[e];

        assert_true(ev->pcr < TETHER_EVENTLOG_PCR_COUNT);
        assert_true(ev->data_size <= TETHER_EVENTLOG_MAX_EVENT_DATA);
        assert_true(ev->digest_count >= 1 && ev->digest_count <= TETHER_EVENTLOG_MAX_ALGORITHMS);
        assert_true(ev->offset < log->size);
        assert_true(inside(log, ev->data, ev->data_size));
        for (uint32_t d = 0; d < ev->digest_count; d++)
            assert_true(inside(log, ev->digests[d].value, ev->digests[d].size));
        if (ev->decoded == TETHER_EVENTLOG_DECODED_VARIABLE)
            assert_true(inside(log, ev->fields.variable.guid, 16) &&
                        inside(log, ev->fields.variable.value, ev->fields.variable.value_size));
        if (ev->decoded == TETHER_EVENTLOG_DECODED_IMAGE)
            assert_true(inside(log, ev->fields.image.device_path,
                               ev->fields.image.device_path_size));
        if (ev->decoded == TETHER_EVENTLOG_DECODED_GPT)
            assert_true(inside(log, ev->fields.gpt.disk_guid, 16));
    }
    if (tally->accepted % DEEP_CHECK_EVERY != 0)
        return;
    assert_int_equal(tether_eventlog_replay(log, &pcrs), TETHER_OK);
    assert_int_equal(tether_eventlog_to_json(log, &pcrs, &json), TETHER_OK);
    cJSON_Delete(json);
}

static void parse_one(const uint8_t *bytes, size_t len, tally_t *tally)
{
    tether_eventlog_t log;
    tether_eventlog_failure_t failure;
    tether_status_t rc;

    tether_eventlog_init(&log);
    rc = tether_eventlog_parse(&log, bytes, len, &failure);
    if (rc == TETHER_OK) {
        check_bounded(&log, tally);
        tally->accepted++;
    } else {
        assert_true(rc == TETHER_ERR_PARSE || rc == TETHER_ERR_TOO_LARGE);
        assert_true(failure.error > TETHER_FIRMWARE_OK &&
                    failure.error < TETHER_FIRMWARE_ERROR_COUNT);
        assert_true(failure.offset <= len);
        assert_true(strlen(failure.text) > 0);
        assert_null(log.events);
        tally->refused++;
    }
    tether_eventlog_free(&log);
}

/* Calls mutate on each real log, in a buffer of its own. */
static void each_log(void (*mutate)(uint8_t *bytes, size_t len, tally_t *tally), tally_t *tally)
{
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
        char path[512];
        uint8_t *bytes = NULL;
        size_t len = 0;

        snprintf(path, sizeof(path), "%s/%s", EVENTLOG_DATA_DIR, logs[i]);
        assert_int_equal(tether_eventlog_read_file(path, &bytes, &len), TETHER_OK);
        mutate(bytes, len, tally);
        free(bytes);
    }
}

/* Every length from 0 to the whole log. Each copy is a buffer of exactly
 * that length, so ASan sees any read past it. */
static void truncate_all(uint8_t *bytes, size_t len, tally_t *tally)
{
    for (size_t cut = 0; cut <= len; cut++) {
        uint8_t *copy = malloc(cut > 0 ? cut : 1);

        assert_non_null(copy);
        memcpy(copy, bytes, cut);
        parse_one(copy, cut, tally);
        free(copy);
    }
}

/* Each byte XORed once, with flips[position % 3], one byte at a time. */
static void flip_each_byte(uint8_t *bytes, size_t len, tally_t *tally)
{
    for (size_t at = 0; at < len; at++) {
        uint8_t flip = flips[at % sizeof(flips)];

        bytes[at] ^= flip;
        parse_one(bytes, len, tally);
        bytes[at] ^= flip;
    }
}

static void every_truncation(void **state)
{
    tally_t tally = {0, 0};

    (void)state;
    each_log(truncate_all, &tally);
    print_message("truncations: %zu, accepted %zu (cut at an event's end), refused %zu\n",
                  tally.accepted + tally.refused, tally.accepted, tally.refused);
    /* A cut is accepted only at an event's end: once per event. */
    assert_int_equal(tally.accepted, 448);
    assert_true(tally.refused > 0);
}

static void every_byte_flipped(void **state)
{
    tally_t tally = {0, 0};

    (void)state;
    each_log(flip_each_byte, &tally);
    print_message("byte flips: %zu, accepted %zu, refused %zu\n", tally.accepted + tally.refused,
                  tally.accepted, tally.refused);
    assert_true(tally.refused > 0 && tally.accepted > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_truncation),
        cmocka_unit_test(every_byte_flipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
