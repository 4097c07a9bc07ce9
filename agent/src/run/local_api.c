#include "local_api.h"

#include <errno.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tether/json_strict.h"
#include "tether/log.h"

/* New connections taken per round, so that a burst of callers does not
 * hold up those already connected. */
#define ACCEPT_BATCH 64

bool tether_local_header_is(const char *line, const char *end, const char *name,
                            const char **value, size_t *value_len)
{
    size_t n = strlen(name);
    const char *v, *v_end = end;

    if ((size_t)(end - line) <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    for (v = line + n + 1; v < v_end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    *value = v;
    *value_len = (size_t)(v_end - v);
    return true;
}

tether_status_t tether_local_content_length(const char *lines, const char *head_end,
                                            size_t *length, bool *seen)
{
    const char *line = lines, *value;
    size_t value_len;

    *length = 0;
    *seen = false;
    while (line < head_end) {
        const char *end = memmem(line, (size_t)(head_end - line), "\r\n", 2);
        if (end == NULL)
            end = head_end;
        if (tether_local_header_is(line, end, "Transfer-Encoding", &value, &value_len))
            return TETHER_ERR_PARSE;
        if (tether_local_header_is(line, end, "Content-Length", &value, &value_len)) {
            if (*seen || value_len == 0 || value_len > 7)
                return value_len > 7 ? TETHER_ERR_TOO_LARGE : TETHER_ERR_PARSE;
            for (size_t i = 0; i < value_len; i++) {
                if (value[i] < '0' || value[i] > '9')
                    return TETHER_ERR_PARSE;
                *length = *length * 10 + (size_t)(value[i] - '0');
            }
            *seen = true;
        }
        line = end + 2;
    }
    return TETHER_OK;
}

tether_status_t tether_local_head_check(const char *head, size_t head_len)
{
    for (size_t i = 0; i < head_len; i++) {
        if (head[i] == '\0' || (head[i] == '\r' && (i + 1 >= head_len || head[i + 1] != '\n')) ||
            (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')))
            return TETHER_ERR_PARSE;
    }
    return TETHER_OK;
}

tether_status_t tether_local_request_parse_body(const char *buf, size_t len,
                                                tether_local_route_t *route, const char **body,
                                                size_t *body_len)
{
    const char *end, *sp1, *sp2, *line_end;
    size_t head_len, length;
    bool has_length;
    tether_status_t rc;

    if (route != NULL)
        *route = TETHER_LOCAL_NOT_FOUND;
    if (body != NULL)
        *body = NULL;
    if (body_len != NULL)
        *body_len = 0;
    if (buf == NULL || route == NULL || body == NULL || body_len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    end = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
    if (end == NULL)
        return len >= TETHER_LOCAL_MAX_REQUEST ? TETHER_ERR_TOO_LARGE : TETHER_ERR_STATE;
    head_len = (size_t)(end - buf) + 4;
    if (head_len > TETHER_LOCAL_MAX_REQUEST)
        return TETHER_ERR_TOO_LARGE;
    if ((rc = tether_local_head_check(buf, head_len)) != TETHER_OK)
        return rc;
    line_end = memmem(buf, head_len, "\r\n", 2);
    sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
    if (sp1 == NULL)
        return TETHER_ERR_PARSE;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1 || sp1[1] != '/')
        return TETHER_ERR_PARSE;
    if ((size_t)(line_end - sp2 - 1) != 8 ||
        (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
        return TETHER_ERR_PARSE;
    for (const char *p = sp1 + 1; p < sp2; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return TETHER_ERR_PARSE;
    }
#define PATH_IS(s) ((size_t)(sp2 - sp1 - 1) == sizeof(s) - 1 && memcmp(sp1 + 1, s, sizeof(s) - 1) == 0)
#define METHOD_IS(s) ((size_t)(sp1 - buf) == sizeof(s) - 1 && memcmp(buf, s, sizeof(s) - 1) == 0)
    if (PATH_IS("/v1/token"))
        *route = METHOD_IS("GET") ? TETHER_LOCAL_TOKEN : TETHER_LOCAL_BAD_METHOD;
    else if (PATH_IS("/v1/status"))
        *route = METHOD_IS("GET") ? TETHER_LOCAL_STATUS : TETHER_LOCAL_BAD_METHOD;
    else if (PATH_IS("/v1/dpop"))
        *route = METHOD_IS("POST") ? TETHER_LOCAL_DPOP : TETHER_LOCAL_BAD_METHOD;
#undef METHOD_IS
#undef PATH_IS
    if (*route != TETHER_LOCAL_DPOP)
        return TETHER_OK;
    /* A local caller has no reason to chunk: one framing, a length. */
    if ((rc = tether_local_content_length(line_end + 2, end + 2, &length, &has_length)) !=
        TETHER_OK)
        return rc;
    if (!has_length)
        return TETHER_ERR_PARSE;
    if (length > TETHER_LOCAL_MAX_REQUEST - head_len)
        return TETHER_ERR_TOO_LARGE;
    if (len < head_len + length)
        return TETHER_ERR_STATE;
    if (len > head_len + length) /* one request per connection: nothing may follow */
        return TETHER_ERR_PARSE;
    *body = buf + head_len;
    *body_len = length;
    return TETHER_OK;
}

tether_status_t tether_local_request_parse(const char *buf, size_t len, tether_local_route_t *route)
{
    const char *body;
    size_t body_len;

    return tether_local_request_parse_body(buf, len, route, &body, &body_len);
}

/* RFC 9449 section 8.1: a nonce is 1*NQCHAR, %x21 / %x23-5B / %x5D-7E. */
static bool is_nonce(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

static bool is_method(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < 'A' || *s > 'Z')
            return false;
    return true;
}

/* Copies obj's string member name (at most max characters) into out;
 * false when it is absent, not a string or too long. */
static bool copy_member(const cJSON *obj, const char *name, char *out, size_t max)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    size_t n;

    if (!cJSON_IsString(item))
        return false;
    n = strlen(item->valuestring);
    if (n > max)
        return false;
    memcpy(out, item->valuestring, n + 1);
    return true;
}

tether_status_t tether_local_dpop_request_parse(const char *body, size_t len,
                                                tether_local_dpop_request_t *req, char *why,
                                                size_t why_size)
{
    char normalized[TETHER_DPOP_HTU_MAX + 1];
    cJSON *obj = NULL;
    const cJSON *member;
    const char *problem = NULL;

    memset(req, 0, sizeof(*req));
    if (why_size > 0)
        why[0] = '\0';
    if (body == NULL || tether_json_parse_object(body, len, &obj) != TETHER_OK) {
        problem = "the body is not one JSON object";
        goto out;
    }
    cJSON_ArrayForEach(member, obj) {
        if (strcmp(member->string, "method") != 0 && strcmp(member->string, "url") != 0 &&
            strcmp(member->string, "nonce") != 0) {
            problem = "only \"method\", \"url\" and \"nonce\" may be sent";
            goto out;
        }
    }
    if (!copy_member(obj, "method", req->method, TETHER_DPOP_HTM_MAX) || !is_method(req->method))
        problem = "\"method\" must be an HTTP method in upper case, such as \"POST\"";
    else if (!copy_member(obj, "url", req->url, TETHER_DPOP_HTU_MAX) ||
             tether_dpop_htu_normalize(req->url, strlen(req->url), normalized,
                                       sizeof(normalized)) != TETHER_OK)
        problem = "\"url\" must be the absolute http or https URL of the request";
    else if (cJSON_GetObjectItemCaseSensitive(obj, "nonce") != NULL &&
             (!copy_member(obj, "nonce", req->nonce, TETHER_DPOP_NONCE_MAX) ||
              !is_nonce(req->nonce)))
        problem = "\"nonce\" must be the server's DPoP-Nonce value as sent";
out:
    cJSON_Delete(obj);
    if (problem == NULL)
        return TETHER_OK;
    memset(req, 0, sizeof(*req));
    snprintf(why, why_size, "%s", problem);
    return TETHER_ERR_PARSE;
}

tether_status_t tether_local_peer_credentials(int fd, uid_t *uid, gid_t *gid, char *why,
                                              size_t why_size)
{
    struct ucred cred = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
    socklen_t cred_len = sizeof(cred);

    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (why_size > 0)
        why[0] = '\0';
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) {
        snprintf(why, why_size, "cannot read the caller's credentials (SO_PEERCRED): %s",
                 strerror(errno));
        return TETHER_ERR_IO;
    }
    if (cred_len != sizeof(cred)) {
        snprintf(why, why_size, "the caller's credentials (SO_PEERCRED) are incomplete");
        return TETHER_ERR_IO;
    }
    *uid = cred.uid;
    *gid = cred.gid;
    return TETHER_OK;
}

bool tether_local_acl_allows(const tether_local_acl_t *acl, uid_t uid, gid_t gid)
{
    if (uid == geteuid())
        return true;
    for (size_t i = 0; i < acl->uid_count; i++)
        if (acl->uids[i] == uid)
            return true;
    for (size_t i = 0; i < acl->gid_count; i++)
        if (acl->gids[i] == gid)
            return true;
    return false;
}

int tether_local_listen(const char *path, char *why, size_t why_size)
{
    struct sockaddr_un addr;
    struct stat st;
    int fd;

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr.sun_path)) {
        snprintf(why, why_size, "the socket path %s is too long", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(why, why_size, "%s exists and is not a socket; refusing to replace it", path);
            return -1;
        }
        unlink(path); /* a socket left by a previous run */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, why_size, "socket: %s", strerror(errno));
        return -1;
    }
    /* Created with no permission for others, then opened to the group. */
    {
        mode_t old = umask(0177);
        int rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
        umask(old);
        if (rc != 0 || chmod(path, 0660) != 0 || listen(fd, SOMAXCONN) != 0) {
            snprintf(why, why_size, "cannot listen on %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

int tether_local_respond(int fd, int status, const char *json)
{
    char head[256];
    size_t len = strlen(json);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason_phrase(status), len);
    const char *parts[2] = {head, json};
    size_t sizes[2] = {(size_t)n, len};

    for (int i = 0; i < 2; i++) {
        const char *p = parts[i];
        size_t left = sizes[i];
        while (left > 0) {
            ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            p += w;
            left -= (size_t)w;
        }
    }
    return 0;
}

void tether_local_server_init(tether_local_server_t *s, const tether_local_acl_t *acl,
                              tether_local_handler_t handler, void *context)
{
    /* connections[] is left as it is: only [0..count) is ever read, and the
     * pages of a large table stay untouched until callers come. */
    s->listen_fd = -1;
    s->max_connections = TETHER_LOCAL_MAX_CONNECTIONS;
    s->acl = acl;
    s->handler = handler;
    s->context = context;
    s->count = 0;
}

tether_status_t tether_local_server_open(tether_local_server_t *s, const char *path, char *why,
                                         size_t why_size)
{
    s->listen_fd = tether_local_listen(path, why, why_size);
    return s->listen_fd >= 0 ? TETHER_OK : TETHER_ERR_IO;
}

size_t tether_local_server_pollfds(const tether_local_server_t *s, struct pollfd *fds)
{
    size_t n = 0;

    if (s->listen_fd >= 0)
        fds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
    for (size_t i = 0; i < s->count; i++)
        fds[n++] = (struct pollfd){.fd = s->connections[i].fd, .events = POLLIN};
    return n;
}

int64_t tether_local_server_deadline(const tether_local_server_t *s)
{
    int64_t deadline = INT64_MAX;

    for (size_t i = 0; i < s->count; i++)
        if (s->connections[i].deadline_ms < deadline)
            deadline = s->connections[i].deadline_ms;
    return deadline;
}

/* Answers what connection i sent so far (a request cut short or late is a
 * bad request) and closes it; the last connection takes its place. */
static void finish_connection(tether_local_server_t *s, size_t i)
{
    tether_local_connection_t *c = &s->connections[i], *last;
    tether_local_route_t route;
    const char *body;
    size_t body_len;
    tether_status_t rc = tether_local_request_parse_body(c->buf, c->len, &route, &body, &body_len);
    uid_t uid;
    gid_t gid;
    char why[128];
    bool known;

    if (rc == TETHER_ERR_STATE && c->len == sizeof(c->buf))
        rc = TETHER_ERR_TOO_LARGE;
    known = tether_local_peer_credentials(c->fd, &uid, &gid, why, sizeof(why)) == TETHER_OK;
    if (!known || !tether_local_acl_allows(s->acl, uid, gid)) {
        if (!known)
            tether_warn("agent", "refused a local caller: %s", why);
        else
            tether_warn("agent", "refused a local caller (uid %u, gid %u) not in the allowed lists",
                        (unsigned)uid, (unsigned)gid);
        tether_local_respond(c->fd, 403,
                             "{\"error\":\"forbidden\",\"error_description\":\"this user may not "
                             "ask the agent for tokens\"}");
    } else if (rc == TETHER_ERR_TOO_LARGE)
        tether_local_respond(c->fd, 413, "{\"error\":\"request_too_large\"}");
    else if (rc != TETHER_OK)
        tether_local_respond(c->fd, 400, "{\"error\":\"bad_request\"}");
    else if (route == TETHER_LOCAL_TOKEN || route == TETHER_LOCAL_STATUS ||
             route == TETHER_LOCAL_DPOP)
        s->handler(s->context, c->fd, route, body, body_len);
    else if (route == TETHER_LOCAL_BAD_METHOD)
        tether_local_respond(c->fd, 405, "{\"error\":\"method_not_allowed\"}");
    else
        tether_local_respond(c->fd, 404, "{\"error\":\"not_found\"}");
    close(c->fd);
    last = &s->connections[--s->count];
    if (c != last) {
        c->fd = last->fd;
        c->deadline_ms = last->deadline_ms;
        c->len = last->len;
        memcpy(c->buf, last->buf, last->len);
    }
}

/* Reads what connection c has sent. True when the request is complete,
 * malformed, over the bound, or will not come (end of stream, error). */
static bool read_connection(tether_local_connection_t *c)
{
    tether_local_route_t route;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    if (n <= 0)
        return true;
    c->len += (size_t)n;
    return c->len == sizeof(c->buf) ||
           tether_local_request_parse(c->buf, c->len, &route) != TETHER_ERR_STATE;
}

/* A caller beyond max_connections: answered at once, without a slot. What
 * it has already sent is read first, so that the close does not turn into
 * a reset before it reads the answer. */
static void refuse_busy(int fd)
{
    char drained[TETHER_LOCAL_MAX_REQUEST];
    ssize_t n = recv(fd, drained, sizeof(drained), MSG_DONTWAIT);

    (void)n;
    tether_local_respond(fd, 503,
                         "{\"error\":\"busy\",\"error_description\":\"the agent is serving "
                         "too many local connections; try again shortly\"}");
    close(fd);
}

static void accept_connections(tether_local_server_t *s, int64_t now_ms)
{
    size_t refused = 0;

    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        tether_local_connection_t *c;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                tether_warn("agent", "cannot accept a local connection: %s", strerror(errno));
            break;
        }
        if (s->count >= s->max_connections) {
            refuse_busy(fd);
            refused++;
            continue;
        }
        c = &s->connections[s->count++];
        c->fd = fd;
        c->len = 0;
        c->deadline_ms = now_ms + TETHER_LOCAL_REQUEST_TIMEOUT_MS;
    }
    if (refused > 0)
        tether_warn("agent", "refused %zu local connections with 503: %zu are open, the most "
                             "allowed", refused, s->count);
}

void tether_local_server_serve(tether_local_server_t *s, const struct pollfd *fds, size_t nfds,
                               int64_t now_ms)
{
    size_t first = s->listen_fd >= 0 ? 1 : 0;
    size_t polled = nfds > first ? nfds - first : 0;

    if (polled > s->count)
        polled = s->count;
    /* Backwards: finishing connection i moves the last one into its place,
     * one already seen. Connections not polled this round are newer. */
    for (size_t i = polled; i-- > 0;) {
        tether_local_connection_t *c = &s->connections[i];
        if ((fds[first + i].revents != 0 && read_connection(c)) || now_ms >= c->deadline_ms)
            finish_connection(s, i);
    }
    if (first == 1 && nfds > 0 && (fds[0].revents & POLLIN))
        accept_connections(s, now_ms);
}

void tether_local_server_close(tether_local_server_t *s, const char *path)
{
    for (size_t i = 0; i < s->count; i++)
        close(s->connections[i].fd);
    s->count = 0;
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
        if (path != NULL)
            unlink(path);
    }
}
