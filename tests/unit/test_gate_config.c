/* tether-gate's configuration file (gateway/src/service/gate_config.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gate_config.h"

#define REQUIRED                                                                                   \
    "fleet = https://fleet.example:8443\n"                                                         \
    "fleet_ca = /etc/tether/fleet-ca.pem\n"                                                        \
    "rp_token_file = rp.token\n"                                                                   \
    "upstream = https://api.example/v1\n"

#define DEFAULT_POLICY "[policy default]\n"

static tether_status_t parse(const char *text, tether_gate_config_t *config,
                             tether_gate_config_error_t *error)
{
    tether_gate_config_init(config);
    return tether_gate_config_parse(text, strlen(text), config, error);
}

static void test_minimal_and_defaults(void **state)
{
    static tether_gate_config_t config;
    tether_gate_config_error_t error;
    const tether_gate_config_policy_t *policy;

    (void)state;
    assert_int_equal(parse(REQUIRED DEFAULT_POLICY, &config, &error), TETHER_OK);
    assert_string_equal(config.listen_host, "127.0.0.1");
    assert_int_equal(config.listen_port, 8480);
    assert_string_equal(config.public_url, "http://127.0.0.1:8480");
    assert_string_equal(config.audience, "tether-gate");
    assert_false(config.dpop_nonce);
    assert_int_equal(config.feed_staleness_seconds, 60);
    assert_int_equal(config.usage_report_seconds, 5);
    assert_string_equal(config.upstream_ca, "");
    assert_int_equal(config.upstream_max_transfers, 64);
    assert_int_equal(config.upstream_timeout_seconds, 300);
    assert_int_equal(config.upstream_idle_timeout_seconds, 60);
    assert_int_equal(config.max_devices, 65536);
    policy = tether_gate_config_policy(&config, "default");
    assert_non_null(policy);
    assert_string_equal(policy->models, "*");
    assert_false(policy->allow_bearer);
    assert_null(tether_gate_config_policy(&config, "other"));
}

static void test_round_trip(void **state)
{
    static tether_gate_config_t config, again;
    tether_gate_config_error_t error;
    char *text = NULL;

    (void)state;
    assert_int_equal(parse(REQUIRED "listen = [::1]:9000\n"
                                    "dpop_nonce = yes\n"
                                    "upstream_ca = upstream-ca.pem\n"
                                    "upstream_max_transfers = 8\n"
                                    "upstream_timeout_seconds = 30\n"
                                    "upstream_idle_timeout_seconds = 10\n"
                                    "max_devices = 100\n"
                                    "usage_report_seconds = 2\n"
                                    "price = gpt-4o-mini=0.15:0.6\n"
                                    "price = llama-3=0:0.000001\n" DEFAULT_POLICY
                                    "models = gpt-4o*,llama-*\n"
                                    "spend_per_day = 12.5\n"
                                    "requests_per_minute = 60\n"
                                    "[policy scripts]\n"
                                    "allow_bearer = yes\n"
                                    "max_tokens = 256\n",
                           &config, &error),
                     TETHER_OK);
    assert_string_equal(config.public_url, "http://[::1]:9000");
    assert_string_equal(config.upstream_ca, "upstream-ca.pem");
    assert_int_equal(config.upstream_max_transfers, 8);
    assert_int_equal(config.upstream_timeout_seconds, 30);
    assert_int_equal(config.upstream_idle_timeout_seconds, 10);
    assert_int_equal(config.max_devices, 100);
    assert_int_equal(config.usage_report_seconds, 2);
    assert_int_equal(config.price_count, 2);
    assert_int_equal(config.prices[0].prompt_per_1k_micros, 150000);
    assert_int_equal(config.prices[1].completion_per_1k_micros, 1);
    assert_int_equal(config.policies[0].spend_per_day_micros, 12500000);
    assert_true(config.policies[1].allow_bearer);
    assert_int_equal(tether_gate_config_format(&config, &text), TETHER_OK);
    assert_int_equal(parse(text, &again, &error), TETHER_OK);
    free(text);
    assert_memory_equal(&config, &again, sizeof(config));
}

static void test_errors_name_the_line(void **state)
{
    static const struct {
        const char *text;
        size_t line;
        const char *message;
    } cases[] = {
        {REQUIRED "bogus = 1\n", 5, "unknown key 'bogus'"},
        {REQUIRED "audience = a\naudience = b\n", 6, "audience is set twice"},
        {REQUIRED "listen = localhost:80\n", 5, "listen must be IPv4:PORT or [IPv6]:PORT"},
        {REQUIRED "threads = 0\n", 5, "threads must be a whole number from 1 to 256"},
        {REQUIRED "dpop_nonce = true\n", 5, "dpop_nonce must be yes or no"},
        {REQUIRED "upstream_max_transfers = 0\n", 5, "upstream_max_transfers must be a whole"},
        {REQUIRED "upstream_timeout_seconds = 3601\n", 5, "upstream_timeout_seconds must be"},
        {REQUIRED "max_devices = 15\n", 5, "max_devices must be a whole number from 16"},
        {REQUIRED "usage_report_seconds = 0\n", 5, "usage_report_seconds must be a whole number "
                                                   "from 1 to 60"},
        {REQUIRED "usage_report_seconds = 61\n", 5, "usage_report_seconds must be a whole number "
                                                    "from 1 to 60"},
        {REQUIRED "public_url = ftp://gate\n", 5, "public_url must be an http:// or"},
        {REQUIRED "public_url = https://gate.example/\n", 5, "public_url must be an http:// or"},
        {REQUIRED "price = m=1\n", 5, "a price is MODEL=PROMPT_PER_1K:COMPLETION_PER_1K"},
        {REQUIRED "price = m=1.1234567:1\n", 5, "prices are non-negative numbers"},
        {REQUIRED "price = m=1:1\nprice = m=2:2\n", 6, "model m has a price already"},
        {REQUIRED "[policy]\n", 5, "a section is [policy NAME]"},
        {REQUIRED DEFAULT_POLICY DEFAULT_POLICY, 6, "[policy default] appears twice"},
        {REQUIRED DEFAULT_POLICY "models = a b\n", 6, "models must be comma-separated"},
        {REQUIRED DEFAULT_POLICY "models = a,,b\n", 6, "models must be comma-separated"},
        {REQUIRED DEFAULT_POLICY "spend_per_day = -1\n", 6, "spend_per_day must be"},
        {REQUIRED DEFAULT_POLICY "listen = 127.0.0.1:1\n", 6, "unknown key 'listen' in [policy"},
        {REQUIRED "no equals sign\n", 5, "expected \"key = value\""},
        {"fleet_ca = a\nrp_token_file = b\nupstream = http://u\n" DEFAULT_POLICY, 0,
         "fleet is required"},
        {"fleet = http://fleet\nfleet_ca = a\nrp_token_file = b\nupstream = http://u\n" DEFAULT_POLICY,
         0, "fleet must be an https:// URL"},
        {REQUIRED, 0, "a [policy default] section is required"},
        {REQUIRED "listen = 10.0.0.1:80\n" DEFAULT_POLICY, 0, "plain HTTP only on a loopback"},
        {REQUIRED "tls_cert = c.pem\n" DEFAULT_POLICY, 0, "tls_cert and tls_key go together"},
    };
    static tether_gate_config_t config;
    tether_gate_config_error_t error;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(cases[i].text, &config, &error), TETHER_ERR_PARSE);
        assert_int_equal(error.line, cases[i].line);
        if (strstr(error.message, cases[i].message) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, error.message, cases[i].message);
    }
}

static void test_bounds(void **state)
{
    static tether_gate_config_t config;
    static char big[TETHER_GATE_CONFIG_MAX_SIZE + 2];
    tether_gate_config_error_t error;
    char line[600];

    (void)state;
    memset(big, '#', sizeof(big) - 1);
    tether_gate_config_init(&config);
    assert_int_equal(tether_gate_config_parse(big, sizeof(big) - 1, &config, &error),
                     TETHER_ERR_TOO_LARGE);
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    assert_int_equal(parse(line, &config, &error), TETHER_ERR_PARSE);
    assert_int_equal(error.line, 1);
    assert_int_equal(tether_gate_config_parse("a\0b", 3, &config, &error), TETHER_ERR_PARSE);
}

static void test_amounts_and_globs(void **state)
{
    uint64_t micros = 1;

    (void)state;
    assert_int_equal(tether_gate_config_parse_amount("0", &micros), TETHER_OK);
    assert_int_equal(micros, 0);
    assert_int_equal(tether_gate_config_parse_amount("999999999999.999999", &micros), TETHER_OK);
    assert_int_equal(micros, 999999999999999999ULL);
    assert_int_equal(tether_gate_config_parse_amount("1000000000000", &micros), TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_config_parse_amount("1.", &micros), TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_config_parse_amount(".5", &micros), TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_config_parse_amount("1e3", &micros), TETHER_ERR_PARSE);
    assert_true(tether_gate_models_allow("*", "anything"));
    assert_true(tether_gate_models_allow("gpt-4o*,llama-*", "llama-3-70b"));
    assert_true(tether_gate_models_allow("gpt-4o*", "gpt-4o"));
    assert_true(tether_gate_models_allow("a*b*c", "aXbYbZc"));
    assert_false(tether_gate_models_allow("gpt-4o*", "gpt-4"));
    assert_false(tether_gate_models_allow("gpt-4o", "gpt-4o-mini"));
    assert_false(tether_gate_models_allow("*", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_and_defaults),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_amounts_and_globs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
