/*
 * The request path shared by every transport: request checks, the request
 * head, and the bounded read of one response.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_syntax.h"
#include "tether/bytes.h"
#include "tether/http_client.h"
#include "tether/log.h"

#define MAX_CONTENT_TYPE 256
#define INITIAL_RESPONSE_BUFFER (16u * 1024u)

/* Fields the client sets itself: letting callers add them would allow two
 * conflicting framings in one request (RFC 9112 6.1, 9.6). */
static const char *const reserved_fields[] = {
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
    "TE",   "Trailer",        "Upgrade",           "Expect",     "Content-Type",
};

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

static tether_status_t fail(tether_http_client_failure_t *failure, tether_status_t rc,
                            const char *fmt, ...) TETHER_PRINTF(3, 4);

static tether_status_t fail(tether_http_client_failure_t *failure, tether_status_t rc,
                            const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(failure->text, sizeof(failure->text), fmt, ap);
    va_end(ap);
    return rc;
}

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

    if (len == 0 || len > TETHER_HTTP_CLIENT_MAX_PATH || path[0] != '/')
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
static tether_status_t header_line_check(tether_http_client_failure_t *failure, const char *line)
{
    size_t len = strnlen(line, TETHER_HTTP_CLIENT_MAX_HEADER_LINE + 1);
    size_t name_len = 0;
    const char *value;

    if (len > TETHER_HTTP_CLIENT_MAX_HEADER_LINE)
        return fail(failure, TETHER_ERR_TOO_LARGE,
                           "an extra header line is longer than %d bytes",
                           TETHER_HTTP_CLIENT_MAX_HEADER_LINE);
    while (name_len < len && syntax_is_tchar((unsigned char)line[name_len]))
        name_len++;
    if (name_len == 0 || name_len == len || line[name_len] != ':')
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT,
                           "an extra header line is not \"Name: value\"");
    for (size_t i = 0; i < sizeof(reserved_fields) / sizeof(reserved_fields[0]); i++) {
        if (strlen(reserved_fields[i]) == name_len &&
            syntax_equal_nocase(line, reserved_fields[i], name_len))
            return fail(failure, TETHER_ERR_INVALID_ARGUMENT,
                               "the header %s is set by the HTTP client, not by callers",
                               reserved_fields[i]);
    }
    value = line + name_len + 1;
    if (*value == ' ')
        value++;
    if (!value_valid(value, strlen(value)))
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT,
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
static tether_status_t request_head(const tether_http_client_request_t *req, text_t *head,
                                    tether_http_client_failure_t *failure)
{
    char number[32];
    bool send_length = req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
                       strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;
    size_t size = 256 + strlen(req->method) + strlen(req->prefix) + strlen(req->path) +
                  strlen(req->authority);

    if (req->content_type != NULL)
        size += strlen(req->content_type);
    for (size_t i = 0; req->extra_headers != NULL && req->extra_headers[i] != NULL; i++)
        size += strlen(req->extra_headers[i]) + 2;
    head->buf = malloc(size);
    if (head->buf == NULL)
        return fail(failure, TETHER_ERR_NO_MEMORY, "out of memory for the request");
    head->size = size;
    head->len = 0;

    text_add(head, req->method);
    text_add(head, " ");
    text_add(head, req->prefix);
    text_add(head, req->path);
    text_add(head, " HTTP/1.1\r\nHost: ");
    text_add(head, req->authority);
    text_add(head, req->keep_alive ? "\r\nUser-Agent: tether\r\n"
                                   : "\r\nUser-Agent: tether\r\nConnection: close\r\n");
    if (req->content_type != NULL) {
        text_add(head, "Content-Type: ");
        text_add(head, req->content_type);
        text_add(head, "\r\n");
    }
    if (send_length) {
        snprintf(number, sizeof(number), "%zu", req->body_len);
        text_add(head, "Content-Length: ");
        text_add(head, number);
        text_add(head, "\r\n");
    }
    for (size_t i = 0; req->extra_headers != NULL && req->extra_headers[i] != NULL; i++) {
        text_add(head, req->extra_headers[i]);
        text_add(head, "\r\n");
    }
    text_add(head, "\r\n");
    return TETHER_OK;
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

static tether_status_t limits_check(const tether_http_limits_t *limits,
                                    tether_http_client_failure_t *failure)
{
    if (limits == NULL || limits->max_header_bytes == 0 ||
        limits->max_header_bytes > TETHER_HTTP_LIMIT_MAX_HEADER_BYTES ||
        limits->max_body_bytes > TETHER_HTTP_LIMIT_MAX_BODY_BYTES)
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT, "the response limits are out of range");
    return TETHER_OK;
}

tether_status_t tether_http_client_check(const tether_http_client_request_t *req,
                                         tether_http_client_failure_t *failure)
{
    tether_status_t rc;
    size_t count = 0;

    if (req->method == NULL || !method_allowed(req->method))
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT,
                    "the HTTP method must be GET, POST, PUT, PATCH or DELETE");
    if (req->path == NULL || !path_valid(req->path))
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT,
                    "the request path must start with '/' and hold no space, '#' or "
                    "character that needs encoding");
    if (req->authority == NULL || req->prefix == NULL ||
        !value_valid(req->authority, strlen(req->authority)))
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT, "no or a malformed Host for the request");
    if (req->body == NULL && req->body_len > 0)
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT, "a body length without a body");
    if (req->content_type != NULL &&
        (req->content_type[0] == '\0' ||
         strnlen(req->content_type, MAX_CONTENT_TYPE + 1) > MAX_CONTENT_TYPE ||
         !value_valid(req->content_type, strlen(req->content_type))))
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT, "the content type is malformed");
    for (; req->extra_headers != NULL && req->extra_headers[count] != NULL; count++) {
        if (count >= TETHER_HTTP_CLIENT_MAX_EXTRA_HEADERS)
            return fail(failure, TETHER_ERR_INVALID_ARGUMENT, "more than %d extra header lines",
                        TETHER_HTTP_CLIENT_MAX_EXTRA_HEADERS);
        if ((rc = header_line_check(failure, req->extra_headers[count])) != TETHER_OK)
            return rc;
    }
    return TETHER_OK;
}

/* Sends all of buf; 0, or the transport's code. */
static int send_all(const tether_transport_t *transport, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        int n = transport->send(transport->context, buf, len);

        if (n <= 0)
            return n < 0 ? n : TETHER_TRANSPORT_CUT; /* 0: a transport that broke its contract */
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static tether_status_t parse_fail(const tether_http_client_request_t *req, tether_status_t rc,
                                  const tether_https_response_t *resp,
                                  tether_http_client_failure_t *failure)
{
    const char *problem = resp->problem != NULL ? resp->problem : "unknown problem";

    if (rc == TETHER_ERR_TOO_LARGE)
        return fail(failure, rc, "the response from %s is too large: %s", req->authority, problem);
    if (rc == TETHER_ERR_PROTOCOL)
        return fail(failure, rc, "malformed HTTP response from %s: %s", req->authority, problem);
    return fail(failure, rc, "cannot read the response from %s: %s", req->authority, problem);
}

/* Reads until the response is complete or the stream ends. An end that is
 * not proven (TETHER_TRANSPORT_CUT: no TLS close_notify) may be a
 * truncation attack: it only ends a response whose framing (length or
 * chunks) already ended it. */
static tether_status_t read_response(const tether_transport_t *transport,
                                     const tether_http_client_request_t *req,
                                     const tether_http_limits_t *limits,
                                     tether_https_response_t *resp,
                                     tether_http_client_failure_t *failure)
{
    size_t cap = limits->max_header_bytes + limits->max_body_bytes +
                 TETHER_HTTP_MAX_CHUNK_FRAMING + 1;
    uint8_t *raw = NULL;
    size_t size = 0, used = 0;
    bool complete = false;
    tether_status_t rc;

    for (;;) {
        int n;

        failure->nothing_received = used == 0;
        if (used == size && !buffer_grow(&raw, &size, used, cap)) {
            rc = size >= cap ? fail(failure, TETHER_ERR_TOO_LARGE,
                                    "the response from %s is too large", req->authority)
                             : fail(failure, TETHER_ERR_NO_MEMORY,
                                    "out of memory for the response");
            goto out;
        }
        n = transport->recv(transport->context, raw + used, size - used);
        if (n > 0) {
            used += (size_t)n;
            rc = tether_http_response_parse(raw, used, false, limits, resp, &complete);
            if (rc != TETHER_OK) {
                rc = parse_fail(req, rc, resp, failure);
                goto out;
            }
            if (complete)
                break;
            continue;
        }
        if (n == 0) {
            if ((rc = tether_http_response_parse(raw, used, true, limits, resp, NULL)) !=
                TETHER_OK) {
                rc = parse_fail(req, rc, resp, failure);
                goto out;
            }
            break;
        }
        if (n == TETHER_TRANSPORT_CUT) {
            rc = tether_http_response_parse(raw, used, false, limits, resp, &complete);
            if (rc != TETHER_OK) {
                rc = parse_fail(req, rc, resp, failure);
                goto out;
            }
            if (!complete) {
                rc = fail(failure, TETHER_ERR_PROTOCOL,
                          used == 0 ? "%s closed the connection without answering"
                                    : "%s closed the connection before the end of the "
                                      "response (without TLS close_notify)",
                          req->authority);
                goto out;
            }
            break;
        }
        failure->transport_error = n;
        rc = fail(failure, TETHER_ERR_IO, "reading the response from %s failed", req->authority);
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

tether_status_t tether_http_client_exchange(const tether_transport_t *transport,
                                            const tether_http_client_request_t *req,
                                            const tether_http_limits_t *limits,
                                            tether_https_response_t *resp,
                                            tether_http_client_failure_t *failure)
{
    text_t head = {.buf = NULL, .size = 0, .len = 0};
    tether_status_t rc;
    int ret;

    if (failure == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(failure, 0, sizeof(*failure));
    if (transport == NULL || req == NULL || resp == NULL)
        return fail(failure, TETHER_ERR_INVALID_ARGUMENT, "no transport, request or response");
    tether_https_response_free(resp);
    if ((rc = tether_http_client_check(req, failure)) != TETHER_OK ||
        (rc = limits_check(limits, failure)) != TETHER_OK ||
        (rc = request_head(req, &head, failure)) != TETHER_OK)
        goto out;
    if ((ret = send_all(transport, (const uint8_t *)head.buf, head.len)) != 0 ||
        (ret = send_all(transport, req->body, req->body_len)) != 0) {
        failure->transport_error = ret;
        failure->while_sending = true;
        failure->nothing_received = true;
        rc = fail(failure, TETHER_ERR_IO, "sending the request to %s failed", req->authority);
        goto out;
    }
    rc = read_response(transport, req, limits, resp, failure);

out:
    if (head.buf != NULL) {
        tether_wipe(head.buf, head.size);
        free(head.buf);
    }
    return rc;
}
