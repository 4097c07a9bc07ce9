/*
 * Kept-alive connections between net's HTTPS client and its server layer,
 * over real TLS on loopback: two requests on one connection, the server's
 * bound on requests per connection ("Connection: close" on the last), an
 * idle connection closed by the server's head deadline and replaced by the
 * client, a kept connection still counted against its source's share, and
 * the TLS session resumed from a session ticket on the next connection.
 * Which connection a request went over is read from the client's local
 * port.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <mbedtls/pk.h>

#include "pki.h"
#include "loopback_port.h"
#include "tether/http_server.h"
#include "tether/https_client.h"

typedef struct fixture {
    tether_fleet_pem_t cert;
    tether_fleet_pem_t key;
    char ca_file[256];
    uint16_t port;
    tether_http_server_t server;
    bool serving;
} fixture_t;

static void answer(void *arg, const tether_http_request_t *request,
                   tether_http_response_t *response)
{
    cJSON *body = cJSON_CreateObject();

    (void)arg;
    cJSON_AddStringToObject(body, "path", request->path);
    tether_http_respond_json(response, 200, body);
}

/* A CA, and a server certificate for 127.0.0.1 it issued. */
static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    mbedtls_pk_context ca_key, server_key;
    tether_fleet_pem_t ca = {NULL, 0};
    const char *dir = getenv("TMPDIR");
    FILE *file;
    int rc = -1;

    mbedtls_pk_init(&ca_key);
    mbedtls_pk_init(&server_key);
    if (f == NULL || tether_fleet_key_generate(&ca_key) != TETHER_OK ||
        tether_fleet_key_generate(&server_key) != TETHER_OK ||
        tether_fleet_ca_create(&ca_key, &ca) != TETHER_OK ||
        tether_fleet_server_cert_create(&ca_key, &server_key, "127.0.0.1", &f->cert) !=
            TETHER_OK ||
        tether_fleet_key_pem(&server_key, &f->key) != TETHER_OK)
        goto out;
    snprintf(f->ca_file, sizeof(f->ca_file), "%s/tether-keep-alive-%ld-ca.pem",
             dir != NULL ? dir : "/tmp", (long)getpid());
    if ((file = fopen(f->ca_file, "w")) == NULL)
        goto out;
    fputs(ca.data, file);
    fclose(file);
    *state = f;
    f = NULL;
    rc = 0;
out:
    tether_fleet_pem_free(&ca);
    mbedtls_pk_free(&ca_key);
    mbedtls_pk_free(&server_key);
    free(f);
    return rc;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    unlink(f->ca_file);
    tether_fleet_pem_free(&f->cert);
    tether_fleet_pem_free(&f->key);
    free(f);
    return 0;
}

static void serve_with(fixture_t *f, unsigned max_requests, unsigned head_timeout_seconds,
                       unsigned max_per_source, unsigned ticket_seconds,
                       tether_metrics_t *metrics)
{
    tether_http_server_options_t opts = {
        .host = "127.0.0.1",
        .cert_pem = f->cert.data,
        .key_pem = f->key.data,
        .max_body_bytes = 4096,
        .max_connections = 16,
        .max_connections_per_source = max_per_source,
        .connection_timeout_seconds = 10,
        .request_head_timeout_seconds = head_timeout_seconds,
        .max_requests_per_connection = max_requests,
        .session_ticket_seconds = ticket_seconds,
        .threads = 2,
        .handler = answer,
        .metrics = metrics};

    f->port = loopback_port_free();
    opts.port = f->port;
    tether_http_server_init(&f->server);
    assert_int_equal(tether_http_server_open(&f->server, &opts), TETHER_OK);
}

static void serve(fixture_t *f, unsigned max_requests, unsigned head_timeout_seconds,
                  unsigned max_per_source)
{
    serve_with(f, max_requests, head_timeout_seconds, max_per_source, 0, NULL);
}

static void client_open(fixture_t *f, tether_https_client_t *client, bool keep_alive)
{
    char url[64];

    snprintf(url, sizeof(url), "https://127.0.0.1:%u", (unsigned)f->port);
    tether_https_client_init(client);
    client->keep_alive = keep_alive;
    client->io_timeout_ms = 5000;
    assert_int_equal(tether_https_client_setup(client, url, f->ca_file), TETHER_OK);
}

/* GET path; the answer's status. */
static int get(tether_https_client_t *client, const char *path, tether_https_response_t *resp)
{
    tether_status_t rc = tether_https_request(client, "GET", path, NULL, NULL, 0, NULL, resp);

    if (rc != TETHER_OK)
        return -(int)rc;
    return resp->status;
}

/* The kept connection's local port (0: none is kept). */
static unsigned local_port(const tether_https_client_t *client)
{
    struct sockaddr_in in4;
    socklen_t len = sizeof(in4);

    if (!client->connected)
        return 0;
    assert_int_equal(getsockname(client->sock.fd, (struct sockaddr *)&in4, &len), 0);
    return ntohs(in4.sin_port);
}

static void two_requests_one_connection(void **state)
{
    fixture_t *f = *state;
    tether_https_client_t client, closing;
    tether_https_response_t resp;
    unsigned port;

    serve(f, 0, 5, 16);
    tether_https_response_init(&resp);
    client_open(f, &client, true);
    assert_int_equal(get(&client, "/first", &resp), 200);
    assert_true(resp.persistent);
    assert_non_null(strstr((const char *)resp.body, "/first"));
    port = local_port(&client);
    assert_int_not_equal(port, 0);
    assert_int_equal(get(&client, "/second", &resp), 200);
    assert_non_null(strstr((const char *)resp.body, "/second"));
    assert_int_equal(local_port(&client), port);
    tether_https_client_close(&client);
    assert_false(client.connected);
    assert_int_equal(get(&client, "/third", &resp), 200);
    assert_int_not_equal(local_port(&client), port);

    /* Without keep_alive: "Connection: close", nothing kept. */
    client_open(f, &closing, false);
    assert_int_equal(get(&closing, "/once", &resp), 200);
    assert_false(resp.persistent);
    assert_false(closing.connected);

    tether_https_response_free(&resp);
    tether_https_client_free(&closing);
    tether_https_client_free(&client);
    tether_http_server_free(&f->server);
}

static void bound_on_requests_per_connection(void **state)
{
    fixture_t *f = *state;
    tether_https_client_t client;
    tether_https_response_t resp;
    unsigned port;
    const char *connection;

    serve(f, 2, 5, 16);
    tether_https_response_init(&resp);
    client_open(f, &client, true);
    assert_int_equal(get(&client, "/1", &resp), 200);
    assert_null(tether_https_response_header(&resp, "Connection"));
    port = local_port(&client);
    assert_int_not_equal(port, 0);
    /* The second and last: the server says it closes, the client lets go. */
    assert_int_equal(get(&client, "/2", &resp), 200);
    connection = tether_https_response_header(&resp, "Connection");
    assert_non_null(connection);
    assert_string_equal(connection, "close");
    assert_false(resp.persistent);
    assert_false(client.connected);
    /* The next request opens a new connection, which again carries two. */
    assert_int_equal(get(&client, "/3", &resp), 200);
    assert_int_not_equal(local_port(&client), 0);
    assert_int_not_equal(local_port(&client), port);
    assert_true(resp.persistent);

    tether_https_response_free(&resp);
    tether_https_client_free(&client);
    tether_http_server_free(&f->server);
}

static void idle_connection_closed_by_server(void **state)
{
    fixture_t *f = *state;
    tether_https_client_t client;
    tether_https_response_t resp;
    struct pollfd pfd;
    unsigned port;

    serve(f, 0, 1, 16);
    tether_https_response_init(&resp);
    client_open(f, &client, true);
    assert_int_equal(get(&client, "/1", &resp), 200);
    port = local_port(&client);
    assert_int_not_equal(port, 0);
    /* The head deadline (1 s from the end of the request) closes the idle
     * connection: it becomes readable (end of stream) well within 10 s. */
    pfd = (struct pollfd){.fd = client.sock.fd, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    /* The client sees it closed and sends on a new connection. */
    assert_int_equal(get(&client, "/2", &resp), 200);
    assert_non_null(strstr((const char *)resp.body, "/2"));
    assert_int_not_equal(local_port(&client), 0);
    assert_int_not_equal(local_port(&client), port);

    tether_https_response_free(&resp);
    tether_https_client_free(&client);
    tether_http_server_free(&f->server);
}

static void kept_connection_holds_its_source_share(void **state)
{
    fixture_t *f = *state;
    tether_https_client_t kept, other;
    tether_https_response_t resp;
    int status = 0;

    serve(f, 0, 5, 1);
    tether_https_response_init(&resp);
    client_open(f, &kept, true);
    client_open(f, &other, false);
    assert_int_equal(get(&kept, "/1", &resp), 200);
    assert_true(kept.connected);
    /* The one place of 127.0.0.1 is taken by the kept connection. */
    assert_true(get(&other, "/refused", &resp) < 0);
    /* Once it is closed the place is free again (the server learns of the
     * close asynchronously: a few tries). */
    tether_https_client_close(&kept);
    for (int i = 0; i < 50 && status != 200; i++) {
        struct timespec pause = {0, 100 * 1000000L};

        if ((status = get(&other, "/admitted", &resp)) != 200)
            nanosleep(&pause, NULL);
    }
    assert_int_equal(status, 200);

    tether_https_response_free(&resp);
    tether_https_client_free(&other);
    tether_https_client_free(&kept);
    tether_http_server_free(&f->server);
}

/* The metrics' text has this sample line. */
static void expect_sample(tether_metrics_t *metrics, const char *line)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(tether_metrics_write(metrics, &text, &len), TETHER_OK);
    if (strstr(text, line) == NULL)
        fail_msg("no \"%s\" in:\n%s", line, text);
    free(text);
}

/* With session tickets, the client's next connection resumes the TLS
 * session of its last one (an abbreviated handshake), as a refresh does
 * minutes after the last. */
static void session_resumed_on_next_connection(void **state)
{
    fixture_t *f = *state;
    tether_https_client_t client;
    tether_https_response_t resp;
    tether_metrics_t metrics;

    tether_metrics_init(&metrics);
    serve_with(f, 0, 5, 16, 3600, &metrics);
    tether_https_response_init(&resp);
    client_open(f, &client, true);
    assert_int_equal(get(&client, "/1", &resp), 200);
    assert_true(client.has_session);
    tether_https_client_close(&client);
    assert_int_equal(get(&client, "/2", &resp), 200);
    tether_https_client_close(&client);
    assert_int_equal(get(&client, "/3", &resp), 200);
    expect_sample(&metrics, "tether_http_tls_sessions_total{handshake=\"full\"} 1\n");
    expect_sample(&metrics, "tether_http_tls_sessions_total{handshake=\"resumed\"} 2\n");

    tether_https_response_free(&resp);
    tether_https_client_free(&client);
    tether_http_server_free(&f->server);
    tether_metrics_free(&metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_requests_one_connection),
        cmocka_unit_test(bound_on_requests_per_connection),
        cmocka_unit_test(idle_connection_closed_by_server),
        cmocka_unit_test(kept_connection_holds_its_source_share),
        cmocka_unit_test(session_resumed_on_next_connection),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
