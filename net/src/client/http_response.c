/*
 * One HTTP/1.x response (RFC 9112) from a byte buffer.
 *
 * The bytes come from the network, from a server that may be impersonated
 * or broken, so every length is bounded before it is used and every rule
 * that request-smuggling and response-splitting attacks bend (bare CR or
 * LF, folded lines, several or conflicting framing fields, bytes after the
 * end) is enforced rather than repaired.
 *
 * Two passes over the same bytes: the first checks everything and measures
 * the header and body storage, the second, which cannot fail, copies. A
 * response that is not complete yet costs no allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "http_syntax.h"
#include "tether/bytes.h"
#include "tether/http_response.h"

#define MAX_INTERIM_RESPONSES 8
#define MAX_HEADER_FIELDS 128

typedef enum framing {
    FRAMING_NONE = 0, /* 204, 304: no body */
    FRAMING_LENGTH,   /* Content-Length */
    FRAMING_CHUNKED,  /* Transfer-Encoding: chunked */
    FRAMING_CLOSE,    /* until the server closes the connection */
} framing_t;

typedef struct scan {
    const uint8_t *buf;
    size_t len;
    bool closed;
    const tether_http_limits_t *limits;
    bool more;              /* ran out of bytes before the end */
    const char *truncated;  /* what a close at this point cuts short */
    const char *problem;
    /* Found by scan_head(). */
    int status;
    bool http10;
    size_t header_end; /* offset after the empty line */
    size_t headers_size;
    size_t header_count;
    framing_t framing;
    uint64_t content_length;
    bool connection_close; /* the final response's Connection field names "close" */
    /* Found by scan_body(). */
    size_t body_len;
    size_t message_end;
} scan_t;

static tether_status_t scan_fail(scan_t *s, tether_status_t rc, const char *problem)
{
    s->problem = problem;
    return rc;
}

/*
 * Finds the CRLF ending the line that starts at pos; *end gets the offset of
 * its CR. The line, CRLF included, must end at or before limit. When the
 * buffer ends first, sets s->more and returns TETHER_OK.
 */
static tether_status_t find_line(scan_t *s, size_t pos, size_t limit, const char *too_long,
                                 size_t *end)
{
    size_t i;

    for (i = pos; i < s->len && i < limit; i++) {
        if (s->buf[i] == '\n')
            return scan_fail(s, TETHER_ERR_PROTOCOL, "a line ends in a bare LF instead of CRLF");
        if (s->buf[i] != '\r')
            continue;
        if (i + 1 >= s->len)
            break;
        if (s->buf[i + 1] != '\n')
            return scan_fail(s, TETHER_ERR_PROTOCOL, "a CR is not followed by LF");
        if (i + 2 > limit)
            return scan_fail(s, TETHER_ERR_TOO_LARGE, too_long);
        *end = i;
        return TETHER_OK;
    }
    if (i >= limit)
        return scan_fail(s, TETHER_ERR_TOO_LARGE, too_long);
    s->more = true;
    return TETHER_OK;
}

/* RFC 9112 4: HTTP-version SP 3DIGIT SP [reason-phrase]. The reason and the
 * SP before it may be missing, as some servers send "HTTP/1.1 200". */
static tether_status_t parse_status_line(scan_t *s, const uint8_t *l, size_t n)
{
    if (n < 5 || memcmp(l, "HTTP/", 5) != 0)
        return scan_fail(s, TETHER_ERR_PROTOCOL,
                         "the answer does not start with an HTTP status line");
    if (n < 12 || l[5] != '1' || l[6] != '.' || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
        return scan_fail(s, TETHER_ERR_PROTOCOL,
                         "the status line is malformed or not HTTP/1.0 or HTTP/1.1");
    if (!syntax_is_digit(l[9]) || !syntax_is_digit(l[10]) || !syntax_is_digit(l[11]))
        return scan_fail(s, TETHER_ERR_PROTOCOL, "the status code is not three digits");
    s->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (s->status < 100 || s->status > 599)
        return scan_fail(s, TETHER_ERR_PROTOCOL, "the status code is outside 100..599");
    if (n > 12 && l[12] != ' ')
        return scan_fail(s, TETHER_ERR_PROTOCOL, "the status code is not followed by a space");
    for (size_t i = 13; i < n; i++) {
        if (!syntax_is_field_char(l[i]))
            return scan_fail(s, TETHER_ERR_PROTOCOL, "the reason phrase holds a control character");
    }
    s->http10 = l[7] == '0';
    return TETHER_OK;
}

typedef struct field {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
} field_t;

/* RFC 9112 5: field-name ":" OWS field-value OWS. */
static tether_status_t parse_field_line(scan_t *s, const uint8_t *l, size_t n, field_t *f)
{
    size_t i = 0, start, stop;

    if (l[0] == ' ' || l[0] == '\t')
        return scan_fail(s, TETHER_ERR_PROTOCOL, "a header line is folded (obs-fold)");
    while (i < n && syntax_is_tchar(l[i]))
        i++;
    if (i == 0 || i == n || l[i] != ':')
        return scan_fail(s, TETHER_ERR_PROTOCOL,
                         "a header line is not \"name: value\" (or has a space before the colon)");
    f->name = l;
    f->name_len = i;
    start = i + 1;
    while (start < n && (l[start] == ' ' || l[start] == '\t'))
        start++;
    stop = n;
    while (stop > start && (l[stop - 1] == ' ' || l[stop - 1] == '\t'))
        stop--;
    for (size_t k = start; k < stop; k++) {
        if (!syntax_is_field_char(l[k]))
            return scan_fail(s, TETHER_ERR_PROTOCOL, "a header value holds a control character");
    }
    f->value = l + start;
    f->value_len = stop - start;
    return TETHER_OK;
}

static bool field_is(const field_t *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && syntax_equal_nocase((const char *)f->name, name, n);
}

/* RFC 9110 7.6.1: Connection = #connection-option, compared without regard
 * to case; only "close" matters to a client that sends one request at a
 * time. */
static bool names_close(const uint8_t *value, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t start, end;

        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        for (start = i; i < len && value[i] != ','; i++)
            ;
        for (end = i; end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'); end--)
            ;
        if (end - start == 5 && syntax_equal_nocase((const char *)value + start, "close", 5))
            return true;
    }
    return false;
}

/* Applies the framing fields of the final response (RFC 9112 6). */
static tether_status_t framing_field(scan_t *s, const field_t *f, bool *seen_length,
                                     bool *seen_encoding)
{
    if (field_is(f, "Content-Length")) {
        uint64_t value = 0;

        /* Even identical repeats are refused: a proxy in between may have
         * picked the other one. */
        if (*seen_length)
            return scan_fail(s, TETHER_ERR_PROTOCOL,
                             "the response has more than one Content-Length");
        *seen_length = true;
        if (f->value_len == 0)
            return scan_fail(s, TETHER_ERR_PROTOCOL, "Content-Length is empty");
        for (size_t i = 0; i < f->value_len; i++) {
            if (!syntax_is_digit(f->value[i]))
                return scan_fail(s, TETHER_ERR_PROTOCOL, "Content-Length is not a decimal number");
            if (value > TETHER_HTTP_LIMIT_MAX_BODY_BYTES)
                return scan_fail(s, TETHER_ERR_TOO_LARGE, "Content-Length exceeds the body limit");
            value = value * 10 + (uint64_t)(f->value[i] - '0');
        }
        s->content_length = value;
    } else if (field_is(f, "Transfer-Encoding")) {
        if (*seen_encoding)
            return scan_fail(s, TETHER_ERR_PROTOCOL,
                             "the response has more than one Transfer-Encoding");
        *seen_encoding = true;
        if (f->value_len != 7 || !syntax_equal_nocase((const char *)f->value, "chunked", 7))
            return scan_fail(s, TETHER_ERR_PROTOCOL,
                             "the response uses a Transfer-Encoding other than chunked");
    } else if (field_is(f, "Connection") && names_close(f->value, f->value_len)) {
        s->connection_close = true;
    }
    return TETHER_OK;
}

/*
 * Status lines and header sections up to the end of the final response's
 * header. With store, writes the final response's fields there as
 * "name\0value\0" pairs (s->headers_size bytes, measured by a first call).
 */
static tether_status_t scan_head(scan_t *s, char *store)
{
    static const char too_long[] = "the response header is larger than the limit";
    size_t limit = s->limits->max_header_bytes;
    size_t pos = 0, end = 0, stored = 0;
    tether_status_t rc;

    for (unsigned interim = 0;; interim++) {
        bool seen_length = false, seen_encoding = false;

        s->truncated = "the connection closed in the middle of the response header";
        s->headers_size = 0;
        s->header_count = 0;
        s->content_length = 0;
        s->connection_close = false;
        if ((rc = find_line(s, pos, limit, too_long, &end)) != TETHER_OK || s->more)
            return rc;
        if ((rc = parse_status_line(s, s->buf + pos, end - pos)) != TETHER_OK)
            return rc;
        pos = end + 2;
        for (;;) {
            field_t f;

            if ((rc = find_line(s, pos, limit, too_long, &end)) != TETHER_OK || s->more)
                return rc;
            if (end == pos)
                break;
            if ((rc = parse_field_line(s, s->buf + pos, end - pos, &f)) != TETHER_OK)
                return rc;
            pos = end + 2;
            if (s->status < 200)
                continue;
            if (++s->header_count > MAX_HEADER_FIELDS)
                return scan_fail(s, TETHER_ERR_TOO_LARGE,
                                 "the response has too many header fields");
            if ((rc = framing_field(s, &f, &seen_length, &seen_encoding)) != TETHER_OK)
                return rc;
            if (store != NULL) {
                memcpy(store + stored, f.name, f.name_len);
                store[stored + f.name_len] = '\0';
                stored += f.name_len + 1;
                memcpy(store + stored, f.value, f.value_len);
                store[stored + f.value_len] = '\0';
                stored += f.value_len + 1;
            }
            s->headers_size += f.name_len + f.value_len + 2;
        }
        pos = end + 2;
        if (s->status >= 200) {
            s->header_end = pos;
            if (s->status == 204 || s->status == 304) {
                s->framing = FRAMING_NONE;
            } else if (seen_encoding) {
                if (s->http10)
                    return scan_fail(s, TETHER_ERR_PROTOCOL,
                                     "an HTTP/1.0 response uses Transfer-Encoding");
                if (seen_length)
                    return scan_fail(s, TETHER_ERR_PROTOCOL,
                                     "the response has both Content-Length and Transfer-Encoding");
                s->framing = FRAMING_CHUNKED;
            } else if (seen_length) {
                if (s->content_length > s->limits->max_body_bytes)
                    return scan_fail(s, TETHER_ERR_TOO_LARGE,
                                     "Content-Length exceeds the body limit");
                s->framing = FRAMING_LENGTH;
            } else {
                s->framing = FRAMING_CLOSE;
            }
            return TETHER_OK;
        }
        /* RFC 9110 15.2: interim responses precede the final one. We never
         * ask to switch protocols. */
        if (s->status == 101)
            return scan_fail(s, TETHER_ERR_PROTOCOL, "the server switched protocols (101)");
        if (interim + 1 >= MAX_INTERIM_RESPONSES)
            return scan_fail(s, TETHER_ERR_PROTOCOL, "the server sent too many 1xx responses");
    }
}

/* RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
 * value a token or a quoted-string. Extensions are checked, then ignored. */
static bool chunk_extensions_valid(const uint8_t *l, size_t n)
{
    size_t i = 0;

#define SKIP_BWS()                                          \
    do {                                                    \
        while (i < n && (l[i] == ' ' || l[i] == '\t'))      \
            i++;                                            \
    } while (0)

    while (i < n) {
        size_t start;

        /* Whitespace only before a ';', never at the end of the line. */
        SKIP_BWS();
        if (i == n || l[i++] != ';')
            return false;
        SKIP_BWS();
        for (start = i; i < n && syntax_is_tchar(l[i]); i++)
            ;
        if (i == start)
            return false;
        start = i;
        SKIP_BWS();
        if (i == n || l[i] != '=') {
            i = start; /* the whitespace belongs to what follows */
            continue;
        }
        i++;
        SKIP_BWS();
        if (i < n && l[i] == '"') {
            for (i++;; i++) {
                if (i >= n)
                    return false;
                if (l[i] == '"')
                    break;
                if (l[i] == '\\') {
                    if (++i >= n || !syntax_is_field_char(l[i]))
                        return false;
                } else if (!syntax_is_field_char(l[i])) {
                    return false;
                }
            }
            i++;
        } else {
            for (start = i; i < n && syntax_is_tchar(l[i]); i++)
                ;
            if (i == start)
                return false;
        }
    }
    return true;
#undef SKIP_BWS
}

/* RFC 9112 7.1: chunks, the last chunk, trailer fields. With out, copies the
 * chunk data there (s->body_len bytes, measured by a first call). */
static tether_status_t scan_chunked(scan_t *s, uint8_t *out)
{
    static const char too_long[] =
        "the chunked encoding's size lines and trailers are larger than the limit";
    size_t pos = s->header_end, end = 0, body = 0, framing = 0;
    size_t max_body = s->limits->max_body_bytes;
    tether_status_t rc;

    for (;;) {
        size_t size = 0, i = pos;

        s->truncated = "the connection closed in the middle of a chunk size line";
        if ((rc = find_line(s, pos, pos + (TETHER_HTTP_MAX_CHUNK_FRAMING - framing), too_long,
                            &end)) != TETHER_OK ||
            s->more)
            return rc;
        for (; i < end && tether_hex_digit(s->buf[i]) >= 0; i++) {
            /* Bounded by max_body (at most 1 GiB), so no overflow. */
            size = size * 16 + (size_t)tether_hex_digit(s->buf[i]);
            if (size > max_body - body)
                return scan_fail(s, TETHER_ERR_TOO_LARGE, "a chunk exceeds the body limit");
        }
        if (i == pos)
            return scan_fail(s, TETHER_ERR_PROTOCOL, "a chunk size is not a hex number");
        if (!chunk_extensions_valid(s->buf + i, end - i))
            return scan_fail(s, TETHER_ERR_PROTOCOL, "a chunk size line is malformed");
        framing += end + 2 - pos;
        pos = end + 2;
        if (size == 0)
            break;
        s->truncated = "the connection closed in the middle of a chunk";
        if (s->len - pos < size + 2) {
            s->more = true;
            return TETHER_OK;
        }
        if (s->buf[pos + size] != '\r' || s->buf[pos + size + 1] != '\n')
            return scan_fail(s, TETHER_ERR_PROTOCOL,
                             "a chunk is longer than its size or lacks its CRLF");
        if (out != NULL)
            memcpy(out + body, s->buf + pos, size);
        body += size;
        pos += size + 2;
        framing += 2;
        if (framing > TETHER_HTTP_MAX_CHUNK_FRAMING)
            return scan_fail(s, TETHER_ERR_TOO_LARGE, too_long);
    }
    /* Trailer fields: checked like header fields, then dropped (RFC 9110
     * 6.5.1: a client may discard them). */
    s->truncated = "the connection closed in the middle of the chunked trailer";
    for (;;) {
        field_t f;

        if ((rc = find_line(s, pos, pos + (TETHER_HTTP_MAX_CHUNK_FRAMING - framing), too_long,
                            &end)) != TETHER_OK ||
            s->more)
            return rc;
        framing += end + 2 - pos;
        if (end == pos)
            break;
        if ((rc = parse_field_line(s, s->buf + pos, end - pos, &f)) != TETHER_OK)
            return rc;
        pos = end + 2;
    }
    s->body_len = body;
    s->message_end = end + 2;
    return TETHER_OK;
}

static tether_status_t scan_body(scan_t *s, uint8_t *out)
{
    size_t available = s->len - s->header_end;

    switch (s->framing) {
    case FRAMING_NONE:
        s->body_len = 0;
        s->message_end = s->header_end;
        return TETHER_OK;
    case FRAMING_LENGTH:
        s->truncated = "the connection closed before the end of the body (Content-Length)";
        if (available < s->content_length) {
            s->more = true;
            return TETHER_OK;
        }
        s->body_len = (size_t)s->content_length;
        break;
    case FRAMING_CHUNKED:
        return scan_chunked(s, out);
    case FRAMING_CLOSE:
        if (available > s->limits->max_body_bytes)
            return scan_fail(s, TETHER_ERR_TOO_LARGE, "the response body exceeds the limit");
        if (!s->closed) {
            s->more = true;
            return TETHER_OK;
        }
        s->body_len = available;
        break;
    }
    if (out != NULL)
        memcpy(out, s->buf + s->header_end, s->body_len);
    s->message_end = s->header_end + s->body_len;
    return TETHER_OK;
}

void tether_https_response_init(tether_https_response_t *resp)
{
    if (resp != NULL)
        memset(resp, 0, sizeof(*resp));
}

void tether_https_response_free(tether_https_response_t *resp)
{
    if (resp == NULL)
        return;
    if (resp->body != NULL) {
        tether_wipe(resp->body, resp->body_len + 1);
        free(resp->body);
    }
    if (resp->headers != NULL) {
        tether_wipe(resp->headers, resp->headers_size);
        free(resp->headers);
    }
    tether_wipe(resp, sizeof(*resp));
}

const char *tether_https_response_header(const tether_https_response_t *resp, const char *name)
{
    const char *p;
    size_t name_len;

    if (resp == NULL || resp->headers == NULL || name == NULL)
        return NULL;
    name_len = strlen(name);
    p = resp->headers;
    for (size_t i = 0; i < resp->header_count; i++) {
        size_t field_len = strlen(p);
        const char *value = p + field_len + 1;

        if (field_len == name_len && syntax_equal_nocase(p, name, name_len))
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

tether_status_t tether_http_response_parse(const uint8_t *buf, size_t len, bool closed,
                                           const tether_http_limits_t *limits,
                                           tether_https_response_t *resp, bool *complete)
{
    scan_t s;
    uint8_t *body = NULL;
    char *headers = NULL;
    tether_status_t rc;

    memset(&s, 0, sizeof(s));
    if (complete != NULL)
        *complete = false;
    if (resp == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    tether_https_response_free(resp);
    if ((buf == NULL && len > 0) || limits == NULL || limits->max_header_bytes == 0 ||
        limits->max_header_bytes > TETHER_HTTP_LIMIT_MAX_HEADER_BYTES ||
        limits->max_body_bytes > TETHER_HTTP_LIMIT_MAX_BODY_BYTES ||
        (!closed && complete == NULL)) {
        s.problem = "invalid arguments";
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    s.buf = buf;
    s.len = len;
    s.closed = closed;
    s.limits = limits;
    if (len == 0 && closed) {
        rc = scan_fail(&s, TETHER_ERR_PROTOCOL,
                       "the server closed the connection without answering");
        goto out;
    }
    if ((rc = scan_head(&s, NULL)) != TETHER_OK || s.more)
        goto out;
    if ((rc = scan_body(&s, NULL)) != TETHER_OK || s.more)
        goto out;
    if (s.message_end != len) {
        rc = scan_fail(&s, TETHER_ERR_PROTOCOL,
                       "the server sent data after the end of the response");
        goto out;
    }

    body = malloc(s.body_len + 1);
    headers = s.headers_size > 0 ? malloc(s.headers_size) : NULL;
    if (body == NULL || (s.headers_size > 0 && headers == NULL)) {
        rc = scan_fail(&s, TETHER_ERR_NO_MEMORY, "out of memory for the response");
        goto out;
    }
    /* The second passes see the same bytes and cannot fail. */
    if ((rc = scan_head(&s, headers)) != TETHER_OK || (rc = scan_body(&s, body)) != TETHER_OK)
        goto out;
    body[s.body_len] = '\0';
    resp->status = s.status;
    resp->body = body;
    resp->body_len = s.body_len;
    resp->headers = headers;
    resp->headers_size = s.headers_size;
    resp->header_count = s.header_count;
    resp->persistent = !s.http10 && !s.connection_close && s.framing != FRAMING_CLOSE;
    body = NULL;
    headers = NULL;

out:
    if (rc == TETHER_OK && s.more && closed)
        rc = scan_fail(&s, TETHER_ERR_PROTOCOL, s.truncated);
    if (rc == TETHER_OK && complete != NULL)
        *complete = !s.more;
    if (rc != TETHER_OK)
        resp->problem = s.problem;
    free(body);
    free(headers);
    return rc;
}
