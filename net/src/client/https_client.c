/*
 * The HTTPS client: one request per TLS connection to the fleet.
 *
 * The socket layer is ours rather than mbedtls_net_*: mbedtls_net_connect
 * has no timeout, mbedtls_net_recv_timeout uses select() (undefined for
 * descriptors above FD_SETSIZE) and mbedtls_net_send uses write(), which
 * raises SIGPIPE when the server has gone. Here the socket is non-blocking
 * and every wait is a poll() bounded by the I/O timeout and by the request's
 * deadline, so no server, however slow, holds a request longer than
 * request_timeout_ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>

#include "http_syntax.h"
#include "tether/bytes.h"
#include "tether/https_client.h"
#include "tether/log.h"
#include "tether/random.h"

#define LOG_COMPONENT "https"
#define MAX_CONTENT_TYPE 256
#define INITIAL_RESPONSE_BUFFER (16u * 1024u)

/* Fields the client sets itself: letting callers add them would allow two
 * conflicting framings in one request (RFC 9112 6.1, 9.6). */
static const char *const reserved_fields[] = {
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
    "TE",   "Trailer",        "Upgrade",           "Expect",     "Content-Type",
};

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

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

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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

/* Waits for events on fd, at most max_wait_ms and never past deadline.
 * 1: ready (or an error the next call reports), 0: timed out, -1: poll
 * failed. */
static int wait_fd(int fd, short events, uint64_t deadline, unsigned max_wait_ms)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
        uint64_t now = now_ms();
        uint64_t wait;
        int n;

        if (now >= deadline)
            return 0;
        wait = deadline - now;
        if (wait > max_wait_ms)
            wait = max_wait_ms;
        n = poll(&pfd, 1, (int)(wait > INT_MAX ? INT_MAX : wait));
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* ---- Transport for mbedTLS: a non-blocking socket with timeouts ------- */

typedef struct transport {
    int fd;
    uint64_t deadline;      /* monotonic ms: the end of the whole request */
    unsigned io_timeout_ms;
    bool deadline_passed;   /* the last timeout was the request's, not the I/O one */
} transport_t;

static int transport_wait(transport_t *t, short events)
{
    int ready = wait_fd(t->fd, events, t->deadline, t->io_timeout_ms);

    if (ready == 0) {
        t->deadline_passed = now_ms() >= t->deadline;
        return MBEDTLS_ERR_SSL_TIMEOUT;
    }
    return ready < 0 ? MBEDTLS_ERR_NET_POLL_FAILED : 0;
}

static int transport_send(void *ctx, const unsigned char *buf, size_t len)
{
    transport_t *t = ctx;
    ssize_t n;
    int ret;

    if ((ret = transport_wait(t, POLLOUT)) != 0)
        return ret;
    /* MSG_NOSIGNAL: a server that closed early gives EPIPE, not SIGPIPE. */
    n = send(t->fd, buf, len > INT_MAX ? INT_MAX : len, MSG_NOSIGNAL);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    if (errno == EPIPE || errno == ECONNRESET)
        return MBEDTLS_ERR_NET_CONN_RESET;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int transport_recv(void *ctx, unsigned char *buf, size_t len)
{
    transport_t *t = ctx;
    ssize_t n;
    int ret;

    if ((ret = transport_wait(t, POLLIN)) != 0)
        return ret;
    n = recv(t->fd, buf, len > INT_MAX ? INT_MAX : len, 0);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (errno == ECONNRESET || errno == EPIPE)
        return MBEDTLS_ERR_NET_CONN_RESET;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* Connects to the URL's host, trying each address in turn within one
 * connect timeout. Name resolution is bounded by the resolver's own
 * timeouts (resolv.conf), not by ours. */
static tether_status_t tcp_connect(tether_https_client_t *client, transport_t *t)
{
    const tether_url_t *url = &client->url;
    struct addrinfo hints, *list = NULL;
    uint64_t deadline = now_ms() + client->connect_timeout_ms;
    char duration[32];
    int gai, last_errno = 0;
    bool timed_out = false;
    tether_status_t rc;

    if (deadline > t->deadline)
        deadline = t->deadline;
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
        ready = wait_fd(fd, POLLOUT, deadline, UINT_MAX);
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

static tether_status_t timeout_fail(tether_https_client_t *client, const transport_t *t,
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
static tether_status_t tls_fail(tether_https_client_t *client, const transport_t *t, int ret,
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

static bool method_allowed(const char *method)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(method, methods[i]) == 0)
            return true;
    }
    return false;
}

/* RFC 9112 3.2.1 origin-form: absolute-path [ "?" query ], where a query
 * is pchar, '/' and '?'; no fragment, no space, nothing needing encoding. */
static bool path_valid(const char *path)
{
    size_t len = strlen(path);

    if (len == 0 || len > TETHER_HTTPS_MAX_PATH || path[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = path[i];
        if (c == '%') {
            if (tether_hex_digit(path[i + 1]) < 0 || tether_hex_digit(path[i + 2]) < 0)
                return false;
            i += 2;
        } else if (c != '/' && c != '?' && !syntax_is_pchar(c)) {
            return false;
        }
    }
    return true;
}

/* A field value we send: visible characters and inner spaces only. */
static bool value_valid(const char *value, size_t len)
{
    if (len > 0 && (value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' ||
                    value[len - 1] == '\t'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!syntax_is_field_char((unsigned char)value[i]))
            return false;
    }
    return true;
}

/* "Name: value" with a token name, no CR or LF, not a framing field. The
 * value is never put into messages: it may be a credential. */
static tether_status_t header_line_check(tether_https_client_t *client, const char *line)
{
    size_t len = strnlen(line, TETHER_HTTPS_MAX_HEADER_LINE + 1);
    size_t name_len = 0;
    const char *value;

    if (len > TETHER_HTTPS_MAX_HEADER_LINE)
        return client_fail(client, TETHER_ERR_TOO_LARGE,
                           "an extra header line is longer than %d bytes",
                           TETHER_HTTPS_MAX_HEADER_LINE);
    while (name_len < len && syntax_is_tchar((unsigned char)line[name_len]))
        name_len++;
    if (name_len == 0 || name_len == len || line[name_len] != ':')
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                           "an extra header line is not \"Name: value\"");
    for (size_t i = 0; i < sizeof(reserved_fields) / sizeof(reserved_fields[0]); i++) {
        if (strlen(reserved_fields[i]) == name_len &&
            syntax_equal_nocase(line, reserved_fields[i], name_len))
            return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                               "the header %s is set by the HTTPS client, not by callers",
                               reserved_fields[i]);
    }
    value = line + name_len + 1;
    if (*value == ' ')
        value++;
    if (!value_valid(value, strlen(value)))
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                           "the value of the extra header %.*s holds a control character",
                           (int)name_len, line);
    return TETHER_OK;
}

typedef struct text {
    char *buf;
    size_t size;
    size_t len;
} text_t;

static void text_add(text_t *t, const char *s)
{
    size_t n = strlen(s);

    if (n > t->size - t->len)
        n = t->size - t->len; /* cannot happen: the size is computed */
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

/* Builds the request line and header section. It holds the callers'
 * credentials (Authorization), so it lives in memory wiped after use. */
static tether_status_t request_head(tether_https_client_t *client, const char *method,
                                    const char *path, const char *content_type, size_t body_len,
                                    const char *const *extra_headers, text_t *head)
{
    char number[32];
    bool send_length = body_len > 0 || strcmp(method, "POST") == 0 ||
                       strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    size_t size = 256 + strlen(method) + strlen(client->url.prefix) + strlen(path) +
                  strlen(client->url.authority);

    if (content_type != NULL)
        size += strlen(content_type);
    for (size_t i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++)
        size += strlen(extra_headers[i]) + 2;
    head->buf = malloc(size);
    if (head->buf == NULL)
        return client_fail(client, TETHER_ERR_NO_MEMORY, "out of memory for the request");
    head->size = size;
    head->len = 0;

    text_add(head, method);
    text_add(head, " ");
    text_add(head, client->url.prefix);
    text_add(head, path);
    text_add(head, " HTTP/1.1\r\nHost: ");
    text_add(head, client->url.authority);
    text_add(head, "\r\nUser-Agent: tether\r\nConnection: close\r\n");
    if (content_type != NULL) {
        text_add(head, "Content-Type: ");
        text_add(head, content_type);
        text_add(head, "\r\n");
    }
    if (send_length) {
        snprintf(number, sizeof(number), "%zu", body_len);
        text_add(head, "Content-Length: ");
        text_add(head, number);
        text_add(head, "\r\n");
    }
    for (size_t i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++) {
        text_add(head, extra_headers[i]);
        text_add(head, "\r\n");
    }
    text_add(head, "\r\n");
    return TETHER_OK;
}

static tether_status_t request_check(tether_https_client_t *client, const char *method,
                                     const char *path, const char *content_type,
                                     const uint8_t *body, size_t body_len,
                                     const char *const *extra_headers)
{
    tether_status_t rc;
    size_t count = 0;

    if (!client->ready)
        return client_fail(client, TETHER_ERR_STATE, "the HTTPS client is not set up");
    if (method == NULL || !method_allowed(method))
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                           "the HTTP method must be GET, POST, PUT, PATCH or DELETE");
    if (path == NULL || !path_valid(path))
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                           "the request path must start with '/' and hold no space, '#' or "
                           "character that needs encoding");
    if (body == NULL && body_len > 0)
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT, "a body length without a body");
    if (content_type != NULL &&
        (content_type[0] == '\0' ||
         strnlen(content_type, MAX_CONTENT_TYPE + 1) > MAX_CONTENT_TYPE ||
         !value_valid(content_type, strlen(content_type))))
        return client_fail(client, TETHER_ERR_INVALID_ARGUMENT, "the content type is malformed");
    for (; extra_headers != NULL && extra_headers[count] != NULL; count++) {
        if (count >= TETHER_HTTPS_MAX_EXTRA_HEADERS)
            return client_fail(client, TETHER_ERR_INVALID_ARGUMENT,
                               "more than %d extra header lines", TETHER_HTTPS_MAX_EXTRA_HEADERS);
        if ((rc = header_line_check(client, extra_headers[count])) != TETHER_OK)
            return rc;
    }
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

static int tls_write_all(mbedtls_ssl_context *ssl, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        int ret = mbedtls_ssl_write(ssl, buf, len);

        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue; /* the transport waited in poll(); no busy loop */
        if (ret < 0)
            return ret;
        buf += ret;
        len -= (size_t)ret;
    }
    return 0;
}

/* Replaces *buf by a buffer twice as large (at most cap), wiping the old
 * one: it may already hold a token. */
static bool buffer_grow(uint8_t **buf, size_t *size, size_t used, size_t cap)
{
    size_t new_size = *size == 0 ? INITIAL_RESPONSE_BUFFER : *size * 2;
    uint8_t *grown;

    if (new_size > cap)
        new_size = cap;
    if (new_size <= *size || (grown = malloc(new_size)) == NULL)
        return false;
    if (used > 0)
        memcpy(grown, *buf, used);
    tether_wipe(*buf, *size);
    free(*buf);
    *buf = grown;
    *size = new_size;
    return true;
}

static tether_status_t parse_fail(tether_https_client_t *client, tether_status_t rc,
                                  const tether_https_response_t *resp)
{
    const char *problem = resp->problem != NULL ? resp->problem : "unknown problem";

    if (rc == TETHER_ERR_TOO_LARGE)
        return client_fail(client, rc, "the response from %s is too large: %s",
                           client->url.authority, problem);
    if (rc == TETHER_ERR_PROTOCOL)
        return client_fail(client, rc, "malformed HTTP response from %s: %s",
                           client->url.authority, problem);
    return client_fail(client, rc, "cannot read the response from %s: %s", client->url.authority,
                       problem);
}

/* Reads until the response is complete or the server closes. A close
 * without TLS close_notify may be a truncation attack: it only ends a
 * response whose framing (length or chunks) already ended it. */
static tether_status_t read_response(tether_https_client_t *client, mbedtls_ssl_context *ssl,
                                     const transport_t *t, tether_https_response_t *resp)
{
    size_t cap = client->limits.max_header_bytes + client->limits.max_body_bytes +
                 TETHER_HTTP_MAX_CHUNK_FRAMING + 1;
    uint8_t *raw = NULL;
    size_t size = 0, used = 0;
    bool complete = false;
    tether_status_t rc;

    for (;;) {
        int ret;

        if (used == size && !buffer_grow(&raw, &size, used, cap)) {
            rc = size >= cap ? client_fail(client, TETHER_ERR_TOO_LARGE,
                                           "the response from %s is too large",
                                           client->url.authority)
                             : client_fail(client, TETHER_ERR_NO_MEMORY,
                                           "out of memory for the response");
            goto out;
        }
        ret = mbedtls_ssl_read(ssl, raw + used, size - used);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (ret > 0) {
            used += (size_t)ret;
            rc = tether_http_response_parse(raw, used, false, &client->limits, resp, &complete);
            if (rc != TETHER_OK) {
                rc = parse_fail(client, rc, resp);
                goto out;
            }
            if (complete)
                break;
            continue;
        }
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            if ((rc = tether_http_response_parse(raw, used, true, &client->limits, resp, NULL)) !=
                TETHER_OK) {
                rc = parse_fail(client, rc, resp);
                goto out;
            }
            break;
        }
        /* mbedtls_ssl_read gives 0 for a close without close_notify. */
        if (ret == 0 || ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET) {
            rc = tether_http_response_parse(raw, used, false, &client->limits, resp, &complete);
            if (rc != TETHER_OK) {
                rc = parse_fail(client, rc, resp);
                goto out;
            }
            if (!complete) {
                rc = client_fail(client, TETHER_ERR_PROTOCOL,
                                 used == 0 ? "%s closed the connection without answering"
                                           : "%s closed the connection before the end of the "
                                             "response (without TLS close_notify)",
                                 client->url.authority);
                goto out;
            }
            break;
        }
        rc = tls_fail(client, t, ret, "reading the response from", false);
        goto out;
    }
    rc = TETHER_OK;

out:
    tether_wipe(raw, size);
    free(raw);
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
    transport_t t = {.fd = -1, .deadline = 0, .io_timeout_ms = 0, .deadline_passed = false};
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    text_t head = {.buf = NULL, .size = 0, .len = 0};
    tether_status_t rc;
    int ret;

    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    if (client == NULL || resp == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    tether_https_response_free(resp);
    client->error[0] = '\0';
    client->tls_error = 0;
    client->verify_flags = 0;
    if ((rc = request_check(client, method, path, content_type, body, body_len, extra_headers)) !=
        TETHER_OK)
        goto out;
    if ((rc = request_head(client, method, path, content_type, body_len, extra_headers, &head)) !=
        TETHER_OK)
        goto out;
    tether_debug(LOG_COMPONENT, "%s https://%s%s%s", method, client->url.authority,
                 client->url.prefix, path);

    t.deadline = now_ms() + client->request_timeout_ms;
    t.io_timeout_ms = client->io_timeout_ms;
    if ((rc = tcp_connect(client, &t)) != TETHER_OK)
        goto out;
    net.fd = t.fd; /* closed by mbedtls_net_free */

    if ((ret = mbedtls_ssl_setup(&ssl, &client->tls)) != 0 ||
        (ret = mbedtls_ssl_set_hostname(&ssl, client->url.host)) != 0) {
        rc = tls_fail(client, &t, ret, "setting up TLS for", false);
        goto out;
    }
    mbedtls_ssl_set_bio(&ssl, &t, transport_send, transport_recv, NULL);
    do {
        ret = mbedtls_ssl_handshake(&ssl);
    } while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        client->tls_error = ret;
        rc = certificate_fail(client, mbedtls_ssl_get_verify_result(&ssl));
        goto out;
    }
    if (ret != 0) {
        rc = tls_fail(client, &t, ret, "TLS handshake with", true);
        goto out;
    }

    if ((ret = tls_write_all(&ssl, (const uint8_t *)head.buf, head.len)) != 0 ||
        (ret = tls_write_all(&ssl, body, body_len)) != 0) {
        rc = tls_fail(client, &t, ret, "sending the request to", false);
        goto out;
    }
    if ((rc = read_response(client, &ssl, &t, resp)) != TETHER_OK)
        goto out;
    (void)mbedtls_ssl_close_notify(&ssl); /* courtesy only; the response is complete */
    tether_debug(LOG_COMPONENT, "%s https://%s%s%s: HTTP %d, %zu body bytes", method,
                 client->url.authority, client->url.prefix, path, resp->status, resp->body_len);
    rc = TETHER_OK;

out:
    mbedtls_ssl_free(&ssl);
    mbedtls_net_free(&net);
    if (head.buf != NULL) {
        tether_wipe(head.buf, head.size);
        free(head.buf);
    }
    if (rc != TETHER_OK)
        tether_https_response_free(resp);
    return rc;
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
    mbedtls_ssl_conf_ca_chain(&client->tls, &client->ca, NULL);
    mbedtls_ssl_conf_rng(&client->tls, tether_random_mbedtls, NULL);
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
    mbedtls_ssl_config_free(&client->tls);
    mbedtls_x509_crt_free(&client->ca);
    tether_wipe(client, sizeof(*client));
}
