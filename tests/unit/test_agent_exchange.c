/*
 * The agent's side of one request per refresh (agent/src/run/exchange.c):
 * reading the next challenge of a token answer (its measured-boot member
 * included), when a held one may be used, and which refusals send the
 * refresh back to POST /v1/challenge.
 * Pure functions; the requests themselves run in integration
 * (agent_refresh.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "exchange.h"

#define RECEIVED 1000000 /* any monotonic time */

/* 72 bytes, base64url: the size of a nonce. */
/* A log's SHA-256 as the fleet names it, and the same in capitals. */
#define HELD "abababababababababababababababababababababababababababababababab"
#define HELD_UPPER "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"

#define NONCE "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8AAAAAZVPxAAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"

static tether_status_t read_next(const char *next_json, tether_next_challenge_t *next)
{
    char body[1024];

    snprintf(body, sizeof(body),
             "{\"access_token\":\"a.b.c\",\"token_type\":\"Bearer\",\"expires_in\":300%s%s}",
             next_json != NULL ? ",\"next_challenge\":" : "", next_json != NULL ? next_json : "");
    /* A held value to see that every failure leaves none. */
    memset(next, 0x5a, sizeof(*next));
    return tether_agent_exchange_read_next((const uint8_t *)body, strlen(body), RECEIVED, next);
}

static void next_challenge_read(void **state)
{
    tether_next_challenge_t next;

    (void)state;
    assert_int_equal(read_next("{\"nonce\":\"" NONCE "\",\"expires_in\":253,"
                               "\"pcr_selection\":\"sha256:0,7\",\"valid_in\":193}",
                               &next),
                     TETHER_OK);
    assert_true(next.held);
    assert_int_equal(next.nonce[1], 1);
    assert_int_equal(next.nonce[TETHER_NONCE_SIZE - 1], 31);
    assert_int_equal(next.pcrs.count, 1);
    assert_int_equal(next.pcrs.pcrSelections[0].pcrSelect[0], 0x81);
    assert_int_equal(next.opens_ms, RECEIVED + 193000);
    assert_int_equal(next.closes_ms, RECEIVED + 253000 - TETHER_NEXT_CHALLENGE_MARGIN_MS);
}

/* A next challenge carries a challenge's measured_boot member, read as
 * strictly as in a challenge. */
static void next_challenge_measured_boot(void **state)
{
    tether_next_challenge_t next;

    (void)state;
    assert_int_equal(read_next("{\"nonce\":\"" NONCE "\",\"expires_in\":253,"
                               "\"pcr_selection\":\"sha256:0,7,13\",\"valid_in\":193,"
                               "\"measured_boot\":{\"platform_log_sha256\":\"\","
                               "\"tether_log_sha256\":\"" HELD "\"}}",
                               &next),
                     TETHER_OK);
    assert_true(next.held);
    assert_true(next.measured_boot.asked);
    assert_string_equal(next.measured_boot.platform_held, "");
    assert_string_equal(next.measured_boot.tether_held, HELD);
    assert_int_equal(next.pcrs.pcrSelections[0].pcrSelect[1], 0x20);
    /* Without it: a device whose policy has no measured boot. */
    assert_int_equal(read_next("{\"nonce\":\"" NONCE "\",\"expires_in\":253,"
                               "\"pcr_selection\":\"sha256:0\",\"valid_in\":193}",
                               &next),
                     TETHER_OK);
    assert_false(next.measured_boot.asked);
    assert_string_equal(next.measured_boot.tether_held, "");
}

static void next_challenge_refused(void **state)
{
    static const char *const bad[] = {
        "\"text\"",
        "{\"nonce\":\"AAEC\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\",\"valid_in\":193}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha1:0\",\"valid_in\":193}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\"}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\",\"valid_in\":-1}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":1.5}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":\"253\",\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":193}",
        /* A window shorter than an exchange may take. */
        "{\"nonce\":\"" NONCE "\",\"expires_in\":218,\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":193}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":90000,\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":193}",
        /* A measured_boot member that a challenge could not carry either. */
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":193,\"measured_boot\":true}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":193,\"measured_boot\":{\"platform_log_sha256\":\"\"}}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":193,\"measured_boot\":{\"platform_log_sha256\":\"\","
        "\"tether_log_sha256\":\"" HELD_UPPER "\"}}",
        "{\"nonce\":\"" NONCE "\",\"expires_in\":253,\"pcr_selection\":\"sha256:0\","
        "\"valid_in\":193,\"measured_boot\":{\"platform_log_sha256\":\"\","
        "\"tether_log_sha256\":\"\",\"extra\":\"\"}}",
    };
    tether_next_challenge_t next;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (read_next(bad[i], &next) != TETHER_ERR_PARSE || next.held)
            fail_msg("case %zu taken", i);
        assert_int_equal(next.opens_ms, 0);
        assert_false(next.measured_boot.asked);
        assert_int_equal(next.measured_boot.tether_held[0], 0);
    }
    /* An answer without one (an older fleet): nothing held. */
    assert_int_equal(read_next(NULL, &next), TETHER_ERR_NOT_FOUND);
    assert_false(next.held);
    assert_int_equal(tether_agent_exchange_read_next((const uint8_t *)"not json", 8, RECEIVED,
                                                     &next),
                     TETHER_ERR_PARSE);
    assert_false(next.held);
}

static void next_challenge_window(void **state)
{
    tether_next_challenge_t next;

    (void)state;
    assert_int_equal(read_next("{\"nonce\":\"" NONCE "\",\"expires_in\":253,"
                               "\"pcr_selection\":\"sha256:0\",\"valid_in\":193}",
                               &next),
                     TETHER_OK);
    assert_false(tether_next_challenge_usable(&next, next.opens_ms - 1));
    assert_true(tether_next_challenge_usable(&next, next.opens_ms));
    assert_true(tether_next_challenge_usable(&next, next.closes_ms - 1));
    assert_false(tether_next_challenge_usable(&next, next.closes_ms));
    assert_false(tether_next_challenge_usable(NULL, next.opens_ms));
    /* Forgotten: wiped, never usable again. */
    tether_next_challenge_forget(&next);
    assert_false(tether_next_challenge_usable(&next, next.opens_ms));
    for (size_t i = 0; i < sizeof(next.nonce); i++)
        assert_int_equal(next.nonce[i], 0);
    tether_next_challenge_forget(NULL);
}

/* The refusals after which a new challenge helps, and no other. */
static void stale_challenge_falls_back(void **state)
{
    (void)state;
    assert_true(tether_exchange_code_wants_challenge("nonce_expired"));
    assert_true(tether_exchange_code_wants_challenge("nonce_invalid"));
    assert_true(tether_exchange_code_wants_challenge("nonce_not_yet_valid"));
    assert_true(tether_exchange_code_wants_challenge("nonce_reused"));
    assert_true(tether_exchange_code_wants_challenge("eventlog_unknown"));
    assert_false(tether_exchange_code_wants_challenge("clone_detected"));
    assert_false(tether_exchange_code_wants_challenge("unreachable"));
    assert_false(tether_exchange_code_wants_challenge(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(next_challenge_read),
        cmocka_unit_test(next_challenge_measured_boot),
        cmocka_unit_test(next_challenge_refused),
        cmocka_unit_test(next_challenge_window),
        cmocka_unit_test(stale_challenge_falls_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
