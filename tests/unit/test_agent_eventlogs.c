/* Measured boot in the exchange, the agent's side (exchange_eventlogs.h):
 * the challenge's measured_boot member read strictly, and the token form's
 * event-log parameters, each log's bytes only when the fleet lacks them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "exchange.h"
#include "exchange_eventlogs.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/crypto.h"

/* TETHER_NONCE_SIZE bytes of zeros, base64url. */
#define NONCE                                                                                 \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"                                    \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CHALLENGE(member) "{\"nonce\":\"" NONCE "\",\"pcr_selection\":\"sha256:0,7,13\"" member "}"

static tether_status_t read_challenge(const char *text, tether_agent_measured_boot_t *mb)
{
    uint8_t nonce[TETHER_NONCE_SIZE];
    TPML_PCR_SELECTION pcrs;

    return tether_agent_exchange_read_challenge((const uint8_t *)text, strlen(text), nonce, &pcrs,
                                                mb);
}

static void challenge_member(void **state)
{
    static const char *const refused[] = {
        CHALLENGE(",\"measured_boot\":true"),
        CHALLENGE(",\"measured_boot\":{}"),
        CHALLENGE(",\"measured_boot\":{\"platform_log_sha256\":\"\"}"),
        CHALLENGE(",\"measured_boot\":{\"platform_log_sha256\":\"\",\"tether_log_sha256\":\"\","
                  "\"x\":\"\"}"),
        CHALLENGE(",\"measured_boot\":{\"platform_log_sha256\":\"\",\"other\":\"\"}"),
        CHALLENGE(",\"measured_boot\":{\"platform_log_sha256\":1,\"tether_log_sha256\":\"\"}"),
        CHALLENGE(",\"measured_boot\":{\"platform_log_sha256\":\"" HASH "0\","
                  "\"tether_log_sha256\":\"\"}"),
        CHALLENGE(",\"measured_boot\":{\"platform_log_sha256\":\"\","
                  "\"tether_log_sha256\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef"
                  "0123456789abcdef\"}"),
    };
    tether_agent_measured_boot_t mb;

    (void)state;
    /* Absent: a device whose policy has no measured boot. */
    assert_int_equal(read_challenge(CHALLENGE(""), &mb), TETHER_OK);
    assert_false(mb.asked);
    assert_int_equal(read_challenge(CHALLENGE(",\"measured_boot\":{\"platform_log_sha256\":\"\","
                                              "\"tether_log_sha256\":\"" HASH "\"}"),
                                    &mb),
                     TETHER_OK);
    assert_true(mb.asked);
    assert_string_equal(mb.platform_held, "");
    assert_string_equal(mb.tether_held, HASH);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&mb, 0x55, sizeof(mb));
        if (read_challenge(refused[i], &mb) != TETHER_ERR_PARSE)
            fail_msg("accepted: %s", refused[i]);
        assert_false(mb.asked);
        assert_string_equal(mb.tether_held, "");
    }
}

typedef struct files {
    char dir[64];
    char platform[96];
    char tether[96];
} files_t;

static void files_open(files_t *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/tether-agent-eventlogs.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->platform, sizeof(f->platform), "%s/platform.bin", f->dir);
    snprintf(f->tether, sizeof(f->tether), "%s/tether.cel", f->dir);
}

static void files_close(files_t *f)
{
    (void)unlink(f->platform);
    (void)unlink(f->tether);
    assert_int_equal(rmdir(f->dir), 0);
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *file = fopen(path, "wb");

    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
}

static void hash_hex(const uint8_t *data, size_t len, char out[65])
{
    uint8_t digest[32];

    assert_int_equal(tether_sha256(data, len, digest), TETHER_OK);
    assert_int_equal(tether_hex_encode(digest, sizeof(digest), out, 65), TETHER_OK);
}

static void parameters(void **state)
{
    static const uint8_t log[] = {1, 2, 3, 4, 5};
    tether_agent_measured_boot_t mb = {.asked = true};
    files_t f;
    tether_agent_eventlog_paths_t paths;
    char *params = NULL, why[256], expected[512], log_hash[65], empty_hash[65], b64[16];
    size_t sent = 99;

    (void)state;
    files_open(&f);
    paths = (tether_agent_eventlog_paths_t){.platform = f.platform, .tether = f.tether};
    write_file(f.tether, log, sizeof(log));
    hash_hex(log, sizeof(log), log_hash);
    hash_hex(NULL, 0, empty_hash);
    assert_int_equal(tether_base64url_encode(log, sizeof(log), b64, sizeof(b64), NULL), TETHER_OK);
    /* The fleet holds nothing: tether's bytes go; the absent platform log
     * is the empty log, its hash alone. */
    assert_int_equal(tether_agent_eventlog_params(&mb, &paths, &params, &sent, why, sizeof(why)),
                     TETHER_OK);
    snprintf(expected, sizeof(expected),
             "&platform_log_sha256=%s&tether_log_sha256=%s&tether_log=%s", empty_hash, log_hash,
             b64);
    assert_string_equal(params, expected);
    assert_int_equal(sent, sizeof(log));
    free(params);
    /* The fleet holds it: the hashes only. */
    memcpy(mb.tether_held, log_hash, sizeof(mb.tether_held));
    assert_int_equal(tether_agent_eventlog_params(&mb, &paths, &params, &sent, why, sizeof(why)),
                     TETHER_OK);
    snprintf(expected, sizeof(expected), "&platform_log_sha256=%s&tether_log_sha256=%s",
             empty_hash, log_hash);
    assert_string_equal(params, expected);
    assert_int_equal(sent, 0);
    free(params);
    files_close(&f);
}

static void refusals(void **state)
{
    tether_agent_measured_boot_t mb = {.asked = true};
    files_t f;
    tether_agent_eventlog_paths_t paths;
    uint8_t *big = calloc(1, TETHER_EVENTLOG_WIRE_PLATFORM_MAX + 1);
    char *params = (char *)"untouched", why[256];
    size_t sent = 99;

    (void)state;
    assert_non_null(big);
    files_open(&f);
    paths = (tether_agent_eventlog_paths_t){.platform = f.platform, .tether = f.tether};
    /* A platform log over its wire bound: refused here, naming it. */
    write_file(f.platform, big, TETHER_EVENTLOG_WIRE_PLATFORM_MAX + 1);
    assert_int_equal(tether_agent_eventlog_params(&mb, &paths, &params, &sent, why, sizeof(why)),
                     TETHER_ERR_TOO_LARGE);
    assert_null(params);
    assert_int_equal(sent, 0);
    assert_non_null(strstr(why, "platform log"));
    assert_non_null(strstr(why, f.platform));
    /* At the bound: sent. */
    write_file(f.platform, big, TETHER_EVENTLOG_WIRE_PLATFORM_MAX);
    assert_int_equal(tether_agent_eventlog_params(&mb, &paths, &params, &sent, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(sent, TETHER_EVENTLOG_WIRE_PLATFORM_MAX);
    assert_int_equal(strlen(params),
                     strlen("&platform_log_sha256=&tether_log_sha256=&platform_log=") +
                         2 * TETHER_EVENTLOG_WIRE_SHA256_HEX +
                         TETHER_BASE64URL_ENCODED_LEN(TETHER_EVENTLOG_WIRE_PLATFORM_MAX));
    free(params);
    free(big);
    files_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(challenge_member),
        cmocka_unit_test(parameters),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
