/* fleetd.conf: parsing, limits, listen addresses, and format round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static tether_status_t parse(const char *text, tether_fleet_config_t *config,
                             tether_fleet_config_error_t *error)
{
    tether_fleet_config_init(config);
    return tether_fleet_config_parse(text, strlen(text), config, error);
}

static void defaults(void **state)
{
    tether_fleet_config_t config;
    tether_fleet_config_error_t error;

    (void)state;
    assert_int_equal(parse("", &config, &error), TETHER_OK);
    assert_string_equal(config.listen_host, "127.0.0.1");
    assert_int_equal(config.listen_port, 8443);
    assert_int_equal(config.max_body_bytes, 65536);
    assert_int_equal(config.threads, 4);
    assert_int_equal(config.ek_ca_count, 0);
    /* Sized for a fleet, with one source held to a share and a head deadline. */
    assert_int_equal(config.max_connections, 1024);
    assert_int_equal(config.max_connections_per_source, 32);
    assert_int_equal(config.request_head_timeout_seconds, 10);
    /* Tokens kept as long as usage report ids, alerts a month. */
    assert_int_equal(config.token_retention_hours, 168);
    assert_int_equal(config.alert_retention_days, 30);
    assert_int_equal(config.purge_batch_rows, 1000);
    assert_int_equal(config.purge_pause_milliseconds, 20);
}

static void every_key(void **state)
{
    tether_fleet_config_t config;
    tether_fleet_config_error_t error;

    (void)state;
    assert_int_equal(parse("# comment\n"
                           "  listen = 127.0.0.1:9000  \r\n"
                           "\n"
                           "ek_ca = ek-ca/one.pem\n"
                           "ek_ca=ek-ca/two.der\n"
                           "max_body_bytes = 2048\n"
                           "max_connections = 10\n"
                           "connection_timeout_seconds = 5\n"
                           "max_connections_per_source = 3\n"
                           "request_head_timeout_seconds = 4\n"
                           "threads = 2\n"
                           "bootstrap_max_ttl_seconds = 600\n"
                           "enroll_max_pending_per_ek = 2\n"
                           "enroll_rate_per_minute = 120\n"
                           "enroll_burst = 7\n"
                           "token_retention_hours = 2\n"
                           "alert_retention_days = 90\n"
                           "purge_batch_rows = 500\n"
                           "purge_pause_milliseconds = 0\n",
                           &config, &error),
                     TETHER_OK);
    assert_int_equal(config.listen_port, 9000);
    assert_int_equal(config.ek_ca_count, 2);
    assert_string_equal(config.ek_ca[1], "ek-ca/two.der");
    assert_int_equal(config.max_body_bytes, 2048);
    assert_int_equal(config.max_connections, 10);
    assert_int_equal(config.connection_timeout_seconds, 5);
    assert_int_equal(config.max_connections_per_source, 3);
    assert_int_equal(config.request_head_timeout_seconds, 4);
    assert_int_equal(config.threads, 2);
    assert_int_equal(config.bootstrap_max_ttl_seconds, 600);
    assert_int_equal(config.enroll_max_pending_per_ek, 2);
    assert_int_equal(config.enroll_rate_per_minute, 120);
    assert_int_equal(config.enroll_burst, 7);
    assert_int_equal(config.token_retention_hours, 2);
    assert_int_equal(config.alert_retention_days, 90);
    assert_int_equal(config.purge_batch_rows, 500);
    assert_int_equal(config.purge_pause_milliseconds, 0);
}

static void errors_name_the_line(void **state)
{
    static const struct {
        const char *text;
        size_t line;
    } cases[] = {
        {"listen = 127.0.0.1:8443\nport = 5\n", 2},       /* unknown key */
        {"\n\nthreads\n", 3},                             /* no '=' */
        {"threads = 0\n", 1},                             /* below minimum */
        {"threads = 65\n", 1},                            /* above maximum */
        {"enroll_max_pending_per_ek = 0\n", 1},           /* no enrolment could start */
        {"enroll_max_pending_per_ek = 65\n", 1},
        {"enroll_rate_per_minute = 0\n", 1},
        {"enroll_burst = 0\n", 1},
        {"token_retention_hours = 0\n", 1},              /* inside the usage window */
        {"alert_retention_days = 0\n", 1},
        {"purge_batch_rows = 99\n", 1},
        {"purge_batch_rows = 100001\n", 1},               /* one transaction too long */
        {"purge_pause_milliseconds = 10001\n", 1},
        {"threads = 4x\n", 1},                            /* not a number */
        {"threads = -1\n", 1},                            /* sign */
        {"max_connections_per_source = 0\n", 1},         /* below minimum */
        {"request_head_timeout_seconds = 0\n", 1},       /* below minimum */
        {"request_head_timeout_seconds = 61\n", 1},      /* above maximum */
        {"max_body_bytes = 99999999999999999999999\n", 1}, /* overflow */
        {"listen = example.com:80\n", 1},                 /* host name */
        {"listen = 127.0.0.1:0\n", 1},                    /* port 0 */
        {"listen = 127.0.0.1:65536\n", 1},                /* port range */
        {"listen = ::1:80\n", 1},                         /* IPv6 without brackets */
        {"ek_ca = /etc/ca.pem\n", 1},                     /* absolute */
        {"ek_ca = ek-ca/../../x\n", 1},                   /* escapes the directory */
        {"ek_ca = a b\n", 1},                             /* space */
    };
    tether_fleet_config_t config;
    tether_fleet_config_error_t error;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(cases[i].text, &config, &error), TETHER_ERR_PARSE);
        assert_int_equal(error.line, cases[i].line);
        assert_true(error.message[0] != '\0');
    }
}

static void ipv6_listen(void **state)
{
    tether_fleet_config_t config;
    char text[64];

    (void)state;
    tether_fleet_config_init(&config);
    assert_int_equal(tether_fleet_config_set_listen(&config, "[::1]:8443"), TETHER_OK);
    assert_true(config.listen_ipv6);
    assert_string_equal(config.listen_host, "::1");
    assert_int_equal(tether_fleet_config_listen_text(&config, text, sizeof(text)), TETHER_OK);
    assert_string_equal(text, "[::1]:8443");
    assert_int_equal(tether_fleet_config_set_listen(&config, "[::1]8443"), TETHER_ERR_PARSE);
    assert_int_equal(tether_fleet_config_set_listen(&config, "[]:8443"), TETHER_ERR_PARSE);
}

static void limits(void **state)
{
    tether_fleet_config_t config;
    tether_fleet_config_error_t error;
    char *big = malloc(TETHER_CONFIG_MAX_SIZE + 2);
    char text[64 * (TETHER_CONFIG_MAX_EK_CA + 2)];
    size_t used = 0;

    (void)state;
    assert_non_null(big);
    memset(big, '#', TETHER_CONFIG_MAX_SIZE + 1);
    big[TETHER_CONFIG_MAX_SIZE + 1] = '\0';
    assert_int_equal(parse(big, &config, &error), TETHER_ERR_TOO_LARGE);
    /* A comment line past the line limit is refused too. */
    big[1000] = '\0';
    assert_int_equal(parse(big, &config, &error), TETHER_ERR_PARSE);
    free(big);
    for (int i = 0; i <= TETHER_CONFIG_MAX_EK_CA; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "ek_ca = ek-ca/%d.pem\n", i);
    assert_int_equal(parse(text, &config, &error), TETHER_ERR_PARSE);
    assert_int_equal(error.line, TETHER_CONFIG_MAX_EK_CA + 1);
}

static void format_round_trip(void **state)
{
    tether_fleet_config_t config, again;
    tether_fleet_config_error_t error;
    char *text = NULL;

    (void)state;
    tether_fleet_config_init(&config);
    assert_int_equal(tether_fleet_config_set_listen(&config, "127.0.0.1:18443"), TETHER_OK);
    strcpy(config.ek_ca[0], "ek-ca/swtpm.pem");
    config.ek_ca_count = 1;
    config.threads = 8;
    config.max_connections_per_source = 7;
    config.request_head_timeout_seconds = 5;
    config.enroll_max_pending_per_ek = 3;
    config.enroll_rate_per_minute = 90;
    config.enroll_burst = 11;
    config.token_retention_hours = 24;
    config.alert_retention_days = 365;
    config.purge_batch_rows = 2000;
    config.purge_pause_milliseconds = 50;
    assert_true(tether_fleet_config_webhook_parse(
        "name=soc url=https://hooks.example/tether ca=soc-ca.pem secret=soc.key",
        &config.webhooks[0], &(const char *){NULL}));
    assert_true(tether_fleet_config_webhook_parse(
        "name=local url=http://127.0.0.1:9000 secret=local.key timeout=3", &config.webhooks[1],
        &(const char *){NULL}));
    config.webhook_count = 2;
    assert_int_equal(tether_fleet_config_format(&config, &text), TETHER_OK);
    assert_int_equal(parse(text, &again, &error), TETHER_OK);
    assert_memory_equal(&config, &again, sizeof(config));
    free(text);
}

/* The store line: a PostgreSQL URL only, written back as read; without
 * it, SQLite. */
static void store_url(void **state)
{
    tether_fleet_config_t config, again;
    tether_fleet_config_error_t error;
    char *text = NULL;

    (void)state;
    assert_int_equal(parse("", &config, &error), TETHER_OK);
    assert_string_equal(config.store, "");
    assert_int_equal(parse("store = postgresql://fleet@db.example:5432/tether\n", &config, &error),
                     TETHER_OK);
    assert_string_equal(config.store, "postgresql://fleet@db.example:5432/tether");
    assert_int_equal(tether_fleet_config_format(&config, &text), TETHER_OK);
    assert_non_null(strstr(text, "\nstore = postgresql://fleet@db.example:5432/tether\n"));
    assert_int_equal(parse(text, &again, &error), TETHER_OK);
    assert_memory_equal(&config, &again, sizeof(config));
    free(text);
    assert_int_equal(parse("store = postgres://h/db\n", &config, &error), TETHER_OK);
    assert_int_equal(parse("store = /var/lib/fleet.db\n", &config, &error), TETHER_ERR_PARSE);
    assert_int_equal(error.line, 1);
    /* The message names the key, never the value (it may hold a password). */
    assert_null(strstr(error.message, "/var/lib"));
    assert_int_equal(parse("store = postgresql://a b@h/db\n", &config, &error), TETHER_ERR_PARSE);
    assert_int_equal(parse("store = mysql://h/db\n", &config, &error), TETHER_ERR_PARSE);
}

static void webhooks(void **state)
{
    tether_fleet_config_t config;
    tether_fleet_config_error_t error;
    static const struct {
        const char *line;
        const char *problem; /* a part of the message */
    } refused[] = {
        {"webhook = url=https://h/x ca=c.pem secret=s.key", "needs name="},
        {"webhook = name=a url=https://h/x secret=s.key", "needs ca="},
        {"webhook = name=a url=http://127.0.0.1:1/ ca=c.pem secret=s.key", "https webhooks only"},
        {"webhook = name=a url=http://10.1.2.3/ secret=s.key", "loopback"},
        {"webhook = name=a url=http://localhost:80/ secret=s.key", "loopback"},
        {"webhook = name=a url=ftp://h/ secret=s.key", "https://"},
        {"webhook = name=a url=https://h/?q=1 ca=c.pem secret=s.key", ""},
        {"webhook = name=A url=http://127.0.0.1/ secret=s.key", "name must be"},
        {"webhook = name=a url=http://127.0.0.1/ secret=../s.key", "inside the fleet"},
        {"webhook = name=a url=http://127.0.0.1/ secret=s.key timeout=0", "timeout"},
        {"webhook = name=a url=http://127.0.0.1/ secret=s.key timeout=61", "timeout"},
        {"webhook = name=a name=b url=http://127.0.0.1/ secret=s.key", "twice"},
        {"webhook = name=a url=http://127.0.0.1/ secret=s.key colour=red", "unknown attribute"},
        {"webhook = name=a url=http://127.0.0.1/ secret", "key=value"},
    };
    tether_url_t url;
    bool https = true;
    const char *problem = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(parse(refused[i].line, &config, &error), TETHER_ERR_PARSE);
        assert_int_equal(error.line, 1);
        if (strstr(error.message, refused[i].problem) == NULL)
            fail_msg("%s: %s", refused[i].line, error.message);
        assert_int_equal(config.webhook_count, 0);
    }
    assert_int_equal(parse("webhook = name=a url=http://127.0.0.1/ secret=s.key\n"
                           "webhook = name=a url=http://127.0.0.1:81/ secret=t.key\n",
                           &config, &error),
                     TETHER_ERR_PARSE);
    assert_int_equal(error.line, 2);
    assert_int_equal(parse("webhook = name=soc url=https://hooks.example:8443/a/b ca=c.pem "
                           "secret=s.key\n"
                           "webhook  =  name=local\turl=http://[::1]/x secret=l.key timeout=60\n",
                           &config, &error),
                     TETHER_OK);
    assert_int_equal(config.webhook_count, 2);
    assert_true(config.webhooks[0].https);
    assert_int_equal(config.webhooks[0].timeout_seconds, 10);
    assert_string_equal(config.webhooks[0].ca, "c.pem");
    assert_false(config.webhooks[1].https);
    assert_int_equal(config.webhooks[1].timeout_seconds, 60);
    /* Plain HTTP defaults to port 80, https to 443. */
    assert_int_equal(tether_fleet_config_webhook_url("http://[::1]/x", &url, &https, &problem),
                     TETHER_OK);
    assert_false(https);
    assert_int_equal(url.port, 80);
    assert_string_equal(url.authority, "[::1]:80");
    assert_string_equal(url.prefix, "/x");
    assert_int_equal(tether_fleet_config_webhook_url("http://127.0.0.9:8080", &url, &https,
                                                     &problem),
                     TETHER_OK);
    assert_int_equal(url.port, 8080);
    assert_int_equal(tether_fleet_config_webhook_url("https://h.example/y", &url, &https,
                                                     &problem),
                     TETHER_OK);
    assert_true(https);
    assert_int_equal(url.port, 443);
}

static void at_most_eight_webhooks(void **state)
{
    tether_fleet_config_t config;
    tether_fleet_config_error_t error;
    char text[2048];
    size_t used = 0;

    (void)state;
    for (int i = 0; i <= TETHER_CONFIG_MAX_WEBHOOKS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used,
                                 "webhook = name=w%d url=http://127.0.0.1/ secret=s.key\n", i);
    assert_int_equal(parse(text, &config, &error), TETHER_ERR_PARSE);
    assert_int_equal(error.line, TETHER_CONFIG_MAX_WEBHOOKS + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),    cmocka_unit_test(every_key),
        cmocka_unit_test(errors_name_the_line), cmocka_unit_test(ipv6_listen),
        cmocka_unit_test(limits),      cmocka_unit_test(format_round_trip),
        cmocka_unit_test(webhooks),    cmocka_unit_test(at_most_eight_webhooks),
        cmocka_unit_test(store_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
