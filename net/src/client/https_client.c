/*
 * The HTTPS client: one TLS connection per request to the fleet, or one
 * kept for the next request (keep_alive).
 *
 * The socket layer is ours (tether_socket_t, socket_transport.c) rather than
 * mbedtls_net_*: mbedtls_net_connect has no timeout, mbedtls_net_recv_timeout
 * uses select() (undefined for descriptors above FD_SETSIZE) and
 * mbedtls_net_send uses write(), which raises SIGPIPE when the server has
 * gone. Here the socket is non-blocking and every wait is a poll() bounded by
 * the I/O timeout and by the request's deadline, so no server, however slow,
 * holds a request longer than request_timeout_ms. mbedTLS runs over that
 * socket, and the shared request path (http_client.c) over mbedTLS.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>

#include "tether/bytes.h"
#include "tether/http_client.h"
#include "tether/https_client.h"
#include "tether/log.h"
#include "tether/random.h"

#define LOG_COMPONENT "https"

/* TLS 1.2 suites with forward secrecy and AEAD only: no static-RSA key
 * exchange, no CBC. Both ends are tether's, so nothing older is needed. */
static const int ciphersuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

/* ECDHE over P-256 only: fleetd's CA and TLS keys are P-256 (fleetd's pki),
 * and mbedTLS's default list offers P-521 first, whose key exchange cost
 * fleetd most of an exchange's CPU. In mbedTLS 2.28 this list also bounds
 * the curve of the server's certificate key, which for a fleet is P-256. */
static const mbedtls_ecp_group_id curves[] = {
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_NONE,
};

static tether_status_t client_fail(tether_https_client_t *client, tether_status_t rc,
                                   const char *fmt, ...) TETHER_PRINTF(3, 4);

static tether_status_t client_fail(tether_https_client_t *client, tether_status_t rc,
                                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(client->error, sizeof(client->error), fmt, ap);
    va_end(ap);
    return rc;
}

/* "10 s" or "1500 ms", for messages. */
static const char *duration_text(unsigned ms, char *buf, size_t size)
{
    if (ms % 1000u == 0)
        snprintf(buf, size, "%u s", ms / 1000u);
    else
        snprintf(buf, size, "%u ms", ms);
    return buf;
}

/* ---- mbedTLS over the socket transport -------------------------------- */

/* The socket transport's codes in mbedTLS's terms. */
static int bio_code(int ret, int failed)
{
    switch (ret) {
    case TETHER_SOCKET_TIMEOUT: return MBEDTLS_ERR_SSL_TIMEOUT;
    case TETHER_SOCKET_RESET: return MBEDTLS_ERR_NET_CONN_RESET;
    case TETHER_SOCKET_POLL_FAILED: return MBEDTLS_ERR_NET_POLL_FAILED;
    default: return ret >= 0 ? ret : failed;
    }
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    return bio_code(tether_socket_send(ctx, buf, len), MBEDTLS_ERR_NET_SEND_FAILED);
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    return bio_code(tether_socket_recv(ctx, buf, len), MBEDTLS_ERR_NET_RECV_FAILED);
}

/* ---- The HTTP request path over TLS ----------------------------------- */

static int tls_send(void *ctx, const uint8_t *buf, size_t len)
{
    for (;;) {
        int ret = mbedtls_ssl_write(ctx, buf, len);

        /* The socket waited in poll(); no busy loop. */
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
            return ret;
    }
}

static int tls_recv(void *ctx, uint8_t *buf, size_t len)
{
    for (;;) {
        int ret = mbedtls_ssl_read(ctx, buf, len);

        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            return 0;
        /* mbedtls_ssl_read gives 0 for a close without close_notify. */
        if (ret == 0 || ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET)
            return TETHER_TRANSPORT_CUT;
        return ret;
    }
}

/* Connects to the URL's host, trying each address in turn within one
 * connect timeout. Name resolution is bounded by the resolver's own
 * timeouts (resolv.conf), not by ours. */
static tether_status_t tcp_connect(tether_https_client_t *client, tether_socket_t *t)
{
    const tether_url_t *url = &client->url;
    struct addrinfo hints, *list = NULL;
    uint64_t deadline = tether_socket_now_ms() + client->connect_timeout_ms;
    char duration[32];
    int gai, last_errno = 0;
    bool timed_out = false;
    tether_status_t rc;

    if (deadline > t->deadline_ms)
        deadline = t->deadline_ms;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (url->host_type == TETHER_URL_HOST_DNS ? 0 : AI_NUMERICHOST);
    gai = getaddrinfo(url->host, url->port_text, &hints, &list);
    if (gai != 0) {
        rc = client_fail(client, TETHER_ERR_NETWORK, "cannot resolve the host name %s: %s",
                         url->host, gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        goto out;
    }
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        int ready, error = 0;
        socklen_t error_len = sizeof(error);

        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        /* The request head and body go out in separate TLS records; with
         * Nagle's algorithm the second waits for the server's delayed ACK
         * (about 40 ms on Linux) on every request. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            t->fd = fd;
            rc = TETHER_OK;
            goto out;
        }
        if (errno != EINPROGRESS) {
            last_errno = errno;
            close(fd);
            continue;
        }
        ready = tether_socket_wait(fd, POLLOUT, deadline, UINT_MAX);
        if (ready == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) == 0 &&
            error == 0) {
            t->fd = fd;
            rc = TETHER_OK;
            goto out;
        }
        if (ready == 0)
            timed_out = true;
        else if (ready < 0 || error == 0) /* poll or getsockopt failed */
            last_errno = errno;
        else
            last_errno = error;
        close(fd);
    }
    if (timed_out)
        rc = client_fail(client, TETHER_ERR_TIMEOUT,
                         "connecting to %s timed out after %s: is the host up, and the port open "
                         "in its firewall?",
                         url->authority,
                         duration_text(client->connect_timeout_ms, duration, sizeof(duration)));
    else if (last_errno == ECONNREFUSED)
        rc = client_fail(client, TETHER_ERR_NETWORK,
                         "connection to %s refused: is tether-fleetd running and listening there?",
                         url->authority);
    else
        rc = client_fail(client, TETHER_ERR_NETWORK, "cannot connect to %s: %s", url->authority,
                         strerror(last_errno));

out:
    if (list != NULL)
        freeaddrinfo(list);
    return rc;
}

/* ---- Error sentences -------------------------------------------------- */

static tether_status_t timeout_fail(tether_https_client_t *client, const tether_socket_t *t,
                                    const char *what)
{
    char duration[32];
    unsigned ms = t->deadline_passed ? client->request_timeout_ms : client->io_timeout_ms;

    return client_fail(client, TETHER_ERR_TIMEOUT, "%s %s within %s%s", client->url.authority,
                       what, duration_text(ms, duration, sizeof(duration)),
                       t->deadline_passed ? " (the whole request's time limit)" : "");
}

static tether_status_t certificate_fail(tether_https_client_t *client, uint32_t flags)
{
    char info[512], joined[256];
    const char *what;
    size_t o = 0;

    client->verify_flags = flags;
    /* mbedtls_x509_crt_verify_info gives one line per flag. */
    if (mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags) < 0)
        info[0] = '\0';
    for (const char *p = info; *p != '\0' && o + 3 < sizeof(joined); p++) {
        if (*p != '\n') {
            joined[o++] = *p;
        } else if (p[1] != '\0') {
            joined[o++] = ';';
            joined[o++] = ' ';
        }
    }
    joined[o] = '\0';

    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
        return client_fail(client, TETHER_ERR_TLS,
                           "TLS handshake with %s failed: the fleet's certificate is not signed by "
                           "the CA in %s (%s)",
                           client->url.authority, client->ca_file, joined);
    }
    if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        return client_fail(client, TETHER_ERR_TLS,
                           "TLS handshake with %s failed: the fleet's certificate is not issued "
                           "for the name %s (neither its subject CN nor a DNS subjectAltName) (%s)",
                           client->url.authority, client->url.host, joined);
    }
    if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
        what = "the fleet's certificate has expired (or this machine's clock is wrong)";
    else if (flags & MBEDTLS_X509_BADCERT_FUTURE)
        what = "the fleet's certificate is not valid yet (or this machine's clock is wrong)";
    else
        what = "the fleet's certificate was rejected";
    return client_fail(client, TETHER_ERR_TLS, "TLS handshake with %s failed: %s (%s)",
                       client->url.authority, what, joined);
}

/* Failures of the socket under TLS (as opposed to TLS itself). */
static bool socket_error(int ret)
{
    return ret == MBEDTLS_ERR_NET_RECV_FAILED || ret == MBEDTLS_ERR_NET_SEND_FAILED ||
           ret == MBEDTLS_ERR_NET_POLL_FAILED || ret == MBEDTLS_ERR_NET_CONN_RESET;
}

/* stage names what failed, with its preposition: "TLS handshake with". */
static tether_status_t tls_fail(tether_https_client_t *client, const tether_socket_t *t, int ret,
                                const char *stage, bool handshake)
{
    char text[160];

    client->tls_error = ret;
    if (ret == MBEDTLS_ERR_SSL_TIMEOUT)
        return timeout_fail(client, t,
                            handshake ? "accepted the connection but did not complete the TLS "
                                        "handshake"
                                      : "did not answer");
    if (ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET)
        return client_fail(client, handshake ? TETHER_ERR_TLS : TETHER_ERR_IO,
                           "%s %s failed: the server closed the connection%s", stage,
                           client->url.authority,
                           handshake ? " (is it an HTTPS server that accepts TLS 1.2?)" : "");
    mbedtls_strerror(ret, text, sizeof(text));
    return client_fail(client, socket_error(ret) ? TETHER_ERR_IO : TETHER_ERR_TLS,
                       "%s %s failed: %s (-0x%04x)%s", stage, client->url.authority, text,
                       (unsigned)-ret,
                       ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
                           ? "; the server refused the handshake: does it accept TLS 1.2?"
                           : "");
}

/* ---- Request ---------------------------------------------------------- */

/* Everything that can be refused before connecting. */
static tether_status_t request_check(tether_https_client_t *client,
                                     const tether_http_client_request_t *req)
{
    tether_http_client_failure_t failure;
    tether_status_t rc;

    if (!client->ready)
        return client_fail(client, TETHER_ERR_STATE, "the HTTPS client is not set up");
    memset(&failure, 0, sizeof(failure));
    if ((rc = tether_http_client_check(req, &failure)) != TETHER_OK)
        return client_fail(client, rc, "%s", failure.text);
    if (client->connect_timeout_ms == 0 || client->io_timeout_ms == 0 ||
        client->request_timeout_ms == 0)
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                           "a timeout of the HTTPS client is 0");
    if (client->limits.max_header_bytes == 0 ||
        client->limits.max_header_bytes > TETHER_HTTP_LIMIT_MAX_HEADER_BYTES ||
        client->limits.max_body_bytes > TETHER_HTTP_LIMIT_MAX_BODY_BYTES)
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                           "the response limits of the HTTPS client are out of range");
    return TETHER_OK;
}

/* ---- The connection, kept between requests with keep_alive ------------ */

/* Drops the session kept for resumption (mbedTLS wipes its secrets). */
static void session_forget(tether_https_client_t *client)
{
    mbedtls_ssl_session_free(&client->session);
    mbedtls_ssl_session_init(&client->session);
    client->has_session = false;
}

/* Keeps the session of the handshake just made, for the next connection. */
static void session_keep(tether_https_client_t *client)
{
    session_forget(client);
    client->has_session = mbedtls_ssl_get_session(&client->ssl, &client->session) == 0;
}

/* Ends the connection: a close_notify when the last response was complete
 * (a courtesy; nothing depends on it), then the socket. */
static void connection_close(tether_https_client_t *client, bool notify)
{
    if (client->connected && notify)
        (void)mbedtls_ssl_close_notify(&client->ssl);
    mbedtls_ssl_free(&client->ssl);
    mbedtls_ssl_init(&client->ssl);
    tether_socket_close(&client->sock);
    client->connected = false;
}

/* Connects and runs the TLS handshake; the request's deadline starts here. */
static tether_status_t connection_open(tether_https_client_t *client)
{
    tether_status_t rc;
    int ret;

    tether_socket_init(&client->sock, client->io_timeout_ms, client->request_timeout_ms);
    if ((rc = tcp_connect(client, &client->sock)) != TETHER_OK)
        goto out;
    if ((ret = mbedtls_ssl_setup(&client->ssl, &client->tls)) != 0 ||
        (ret = mbedtls_ssl_set_hostname(&client->ssl, client->url.host)) != 0) {
        rc = tls_fail(client, &client->sock, ret, "setting up TLS for", false);
        goto out;
    }
    mbedtls_ssl_set_bio(&client->ssl, &client->sock, bio_send, bio_recv, NULL);
    /* A session the server may resume (RFC 5077 ticket); refused or
     * unknown, the handshake is a full one. */
    if (client->has_session && mbedtls_ssl_set_session(&client->ssl, &client->session) != 0)
        session_forget(client);
    do {
        ret = mbedtls_ssl_handshake(&client->ssl);
    } while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        client->tls_error = ret;
        rc = certificate_fail(client, mbedtls_ssl_get_verify_result(&client->ssl));
        goto out;
    }
    if (ret != 0) {
        rc = tls_fail(client, &client->sock, ret, "TLS handshake with", true);
        goto out;
    }
    client->connected = true;
    session_keep(client);
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK) {
        session_forget(client);
        connection_close(client, false);
    }
    return rc;
}

/* A kept connection may take the next request: nothing is waiting to be
 * read on it (an idle connection receives nothing; a readable one is the
 * server's close_notify or end of stream) and nothing is left in TLS's
 * buffer. The request's deadline starts again. */
static bool connection_reusable(tether_https_client_t *client)
{
    struct pollfd pfd = {.fd = client->sock.fd, .events = POLLIN, .revents = 0};

    if (!client->connected || mbedtls_ssl_get_bytes_avail(&client->ssl) > 0 ||
        poll(&pfd, 1, 0) != 0)
        return false;
    client->sock.io_timeout_ms = client->io_timeout_ms;
    client->sock.deadline_ms = tether_socket_now_ms() + client->request_timeout_ms;
    client->sock.deadline_passed = false;
    return true;
}

/* One request and its response over the open connection. */
static tether_status_t exchange_once(tether_https_client_t *client,
                                     const tether_http_client_request_t *req,
                                     tether_https_response_t *resp,
                                     tether_http_client_failure_t *failure)
{
    tether_transport_t tls = {.send = tls_send, .recv = tls_recv, .context = &client->ssl};

    return tether_http_client_exchange(&tls, req, &client->limits, resp, failure);
}

/* RFC 9110 9.2.2: methods whose effect is the same sent once or twice. */
static bool method_idempotent(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "DELETE") == 0;
}

/* A request on a kept connection that got no byte of an answer, because
 * the connection broke or ended (not because the server was slow): the
 * server closed the idle connection before it read the request (its idle
 * timeout, or its bound on requests per connection, racing ours). */
static bool lost_on_kept_connection(tether_status_t rc,
                                    const tether_http_client_failure_t *failure)
{
    return (rc == TETHER_ERR_IO || rc == TETHER_ERR_PROTOCOL) && failure->nothing_received &&
           failure->transport_error != MBEDTLS_ERR_SSL_TIMEOUT;
}

static tether_status_t request_run(tether_https_client_t *client, const char *method,
                                   const char *path, const char *content_type,
                                   const uint8_t *body, size_t body_len,
                                   const char *const *extra_headers, bool resendable,
                                   tether_https_response_t *resp)
{
    tether_http_client_request_t req;
    tether_http_client_failure_t failure;
    bool reused;
    tether_status_t rc;

    if (client == NULL || resp == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    tether_https_response_free(resp);
    client->error[0] = '\0';
    client->tls_error = 0;
    client->verify_flags = 0;
    memset(&failure, 0, sizeof(failure));
    req = (tether_http_client_request_t){.method = method,
                                         .authority = client->url.authority,
                                         .prefix = client->url.prefix,
                                         .path = path,
                                         .content_type = content_type,
                                         .body = body,
                                         .body_len = body_len,
                                         .extra_headers = extra_headers,
                                         .keep_alive = client->keep_alive};
    if ((rc = request_check(client, &req)) != TETHER_OK)
        goto out;
    tether_debug(LOG_COMPONENT, "%s https://%s%s%s", method, client->url.authority,
                 client->url.prefix, path);

    reused = connection_reusable(client);
    if (!reused && client->connected)
        connection_close(client, false);
    if (!client->connected && (rc = connection_open(client)) != TETHER_OK)
        goto out;
    rc = exchange_once(client, &req, resp, &failure);
    if (rc != TETHER_OK && reused && lost_on_kept_connection(rc, &failure) &&
        (resendable || method_idempotent(method))) {
        tether_debug(LOG_COMPONENT, "%s closed the kept connection; sending %s %s again on a new "
                                    "one", client->url.authority, method, path);
        connection_close(client, false);
        if ((rc = connection_open(client)) != TETHER_OK)
            goto out;
        rc = exchange_once(client, &req, resp, &failure);
    }
    if (rc != TETHER_OK) {
        if (failure.transport_error != 0)
            rc = tls_fail(client, &client->sock, failure.transport_error,
                          failure.while_sending ? "sending the request to"
                                                : "reading the response from",
                          false);
        else
            rc = client_fail(client, rc, "%s", failure.text);
        goto out;
    }
    tether_debug(LOG_COMPONENT, "%s https://%s%s%s: HTTP %d, %zu body bytes", method,
                 client->url.authority, client->url.prefix, path, resp->status, resp->body_len);
    rc = TETHER_OK;

out:
    if (rc != TETHER_OK || !client->keep_alive || !resp->persistent)
        connection_close(client, rc == TETHER_OK);
    if (rc != TETHER_OK)
        tether_https_response_free(resp);
    return rc;
}

tether_status_t tether_https_request(tether_https_client_t *client, const char *method,
                                     const char *path, const char *content_type,
                                     const uint8_t *body, size_t body_len,
                                     const char *const *extra_headers,
                                     tether_https_response_t *resp)
{
    return request_run(client, method, path, content_type, body, body_len, extra_headers, false,
                       resp);
}

tether_status_t tether_https_request_resendable(tether_https_client_t *client, const char *method,
                                                const char *path, const char *content_type,
                                                const uint8_t *body, size_t body_len,
                                                const char *const *extra_headers,
                                                tether_https_response_t *resp)
{
    return request_run(client, method, path, content_type, body, body_len, extra_headers, true,
                       resp);
}

void tether_https_client_close(tether_https_client_t *client)
{
    if (client != NULL)
        connection_close(client, client->connected);
}

/* ---- Life cycle ------------------------------------------------------- */

void tether_https_client_init(tether_https_client_t *client)
{
    if (client == NULL)
        return;
    memset(client, 0, sizeof(*client));
    client->connect_timeout_ms = TETHER_HTTPS_DEFAULT_CONNECT_TIMEOUT_MS;
    client->io_timeout_ms = TETHER_HTTPS_DEFAULT_IO_TIMEOUT_MS;
    client->request_timeout_ms = TETHER_HTTPS_DEFAULT_REQUEST_TIMEOUT_MS;
    client->limits.max_header_bytes = TETHER_HTTP_DEFAULT_MAX_HEADER_BYTES;
    client->limits.max_body_bytes = TETHER_HTTP_DEFAULT_MAX_BODY_BYTES;
    mbedtls_x509_crt_init(&client->ca);
    mbedtls_ssl_config_init(&client->tls);
    mbedtls_ssl_init(&client->ssl);
    mbedtls_ssl_session_init(&client->session);
    tether_socket_init(&client->sock, 0, 0);
}

tether_status_t tether_https_client_setup(tether_https_client_t *client, const char *base_url,
                                          const char *ca_file)
{
    const char *why = NULL;
    char text[160];
    tether_status_t rc;
    int ret;

    if (client == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    client->error[0] = '\0';
    client->tls_error = 0;
    client->verify_flags = 0;
    if (base_url == NULL || ca_file == NULL)
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT, "no fleet URL or no CA file given");
    if (client->ready)
        return client_fail(client, TETHER_ERR_STATE, "the HTTPS client is already set up");

    if ((rc = tether_url_parse(base_url, strlen(base_url), &client->url, &why)) != TETHER_OK) {
        rc = client_fail(client, rc, "invalid fleet URL \"%.80s\": %s", base_url, why);
        goto out;
    }
    snprintf(client->ca_file, sizeof(client->ca_file), "%s", ca_file);
    errno = 0;
    ret = mbedtls_x509_crt_parse_file(&client->ca, ca_file);
    if (ret == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
        rc = client_fail(client, TETHER_ERR_IO, "cannot read the CA file %s: %s", client->ca_file,
                         errno != 0 ? strerror(errno) : "read error");
        goto out;
    }
    if (ret != 0) {
        if (ret > 0)
            snprintf(text, sizeof(text), "%d certificate(s) could not be parsed", ret);
        else
            mbedtls_strerror(ret, text, sizeof(text));
        rc = client_fail(client, TETHER_ERR_PARSE,
                         "the CA file %s does not hold only PEM certificates: %s", client->ca_file,
                         text);
        goto out;
    }

    if ((ret = mbedtls_ssl_config_defaults(&client->tls, MBEDTLS_SSL_IS_CLIENT,
                                           MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        mbedtls_strerror(ret, text, sizeof(text));
        rc = client_fail(client, TETHER_ERR_TLS, "cannot configure TLS: %s", text);
        goto out;
    }
    /* TLS 1.2 (3.3) at least; pinned CA only; the name is checked against
     * the URL's host (mbedtls_ssl_set_hostname per connection). */
    mbedtls_ssl_conf_min_version(&client->tls, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(&client->tls, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ciphersuites(&client->tls, ciphersuites);
    mbedtls_ssl_conf_curves(&client->tls, curves);
    mbedtls_ssl_conf_ca_chain(&client->tls, &client->ca, NULL);
    mbedtls_ssl_conf_rng(&client->tls, tether_random_mbedtls, NULL);
    mbedtls_ssl_conf_session_tickets(&client->tls, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    client->ready = true;
    rc = TETHER_OK;

out:
    if (rc != TETHER_OK) {
        /* Back to the initialised state, so that setup may be tried again. */
        mbedtls_ssl_config_free(&client->tls);
        mbedtls_x509_crt_free(&client->ca);
        mbedtls_ssl_config_init(&client->tls);
        mbedtls_x509_crt_init(&client->ca);
        memset(&client->url, 0, sizeof(client->url));
    }
    return rc;
}

void tether_https_client_free(tether_https_client_t *client)
{
    if (client == NULL)
        return;
    connection_close(client, client->connected);
    session_forget(client);
    mbedtls_ssl_config_free(&client->tls);
    mbedtls_x509_crt_free(&client->ca);
    tether_wipe(client, sizeof(*client));
}
