#include "ai_proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "local_api.h"
#include "tether/url.h"
#include "tether/bytes.h"
#include "tether/log.h"

/* An app has this long to send its request; a write to an app that stops
 * reading gives up after this long (the stream is then cut). */
#define APP_IO_TIMEOUT_S 30
#define CONNECT_TIMEOUT_MS 10000L

/* ---- pure parts: the app's request, the upstream URL, the challenge ----- */

/* Copies the value of header line [line, end) named name (case-insensitive)
 * into out; true when the line is that header. */
static bool header_value(const char *line, const char *end, const char *name, char *out,
                         size_t out_size, bool *too_long)
{
    const char *value;
    size_t value_len;

    if (!tether_local_header_is(line, end, name, &value, &value_len))
        return false;
    *too_long = value_len >= out_size;
    if (!*too_long) {
        memcpy(out, value, value_len);
        out[value_len] = '\0';
    }
    return true;
}

tether_status_t tether_ai_request_parse(const char *buf, size_t len, tether_ai_request_t *req)
{
    const char *end, *line_end, *sp1, *sp2, *line;
    size_t target_len;
    bool too_long = false, seen_length = false;
    tether_status_t rc;

    memset(req, 0, sizeof(*req));
    end = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
    if (end == NULL)
        return len >= TETHER_AI_MAX_HEAD ? TETHER_ERR_TOO_LARGE : TETHER_ERR_STATE;
    req->head_len = (size_t)(end - buf) + 4;
    if (req->head_len > TETHER_AI_MAX_HEAD)
        return TETHER_ERR_TOO_LARGE;
    if ((rc = tether_local_head_check(buf, req->head_len)) != TETHER_OK)
        return rc;
    line_end = memmem(buf, req->head_len, "\r\n", 2);
    sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
    sp2 = sp1 == NULL ? NULL : memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
    if (sp2 == NULL || (size_t)(sp1 - buf) > TETHER_DPOP_HTM_MAX || sp1 == buf ||
        sp1[1] != '/' || (size_t)(line_end - sp2 - 1) != 8 ||
        (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
        return TETHER_ERR_PARSE;
    for (const char *p = buf; p < sp1; p++)
        if (*p < 'A' || *p > 'Z')
            return TETHER_ERR_PARSE;
    target_len = (size_t)(sp2 - sp1 - 1);
    if (target_len > TETHER_AI_URL_MAX)
        return TETHER_ERR_TOO_LARGE;
    for (const char *p = sp1 + 1; p < sp2; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '#')
            return TETHER_ERR_PARSE;
    memcpy(req->method, buf, (size_t)(sp1 - buf));
    memcpy(req->target, sp1 + 1, target_len);
    for (line = line_end + 2; line < end + 2;) {
        const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (header_value(line, eol, "Content-Type", req->content_type, sizeof(req->content_type),
                         &too_long) ||
            header_value(line, eol, "Accept", req->accept, sizeof(req->accept), &too_long)) {
            if (too_long)
                return TETHER_ERR_PARSE;
        }
        line = eol + 2;
    }
    rc = tether_local_content_length(line_end + 2, end + 2, &req->body_len, &seen_length);
    if (rc == TETHER_OK && req->body_len > TETHER_AI_MAX_BODY)
        rc = TETHER_ERR_TOO_LARGE;
    if (rc != TETHER_OK)
        memset(req, 0, sizeof(*req));
    return rc;
}

static bool is_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;

    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

tether_status_t tether_ai_upstream_parse(const char *url, char *origin, size_t origin_size,
                                         char *prefix, size_t prefix_size, char *why,
                                         size_t why_size)
{
    static const char http[] = "http://", https[] = "https://";
    char as_https[TETHER_URL_MAX_LENGTH + 2];
    const char *problem = NULL;
    bool plain = strncmp(url, http, sizeof(http) - 1) == 0;
    tether_url_t parsed;
    int n;

    origin[0] = prefix[0] = '\0';
    /* The one URL parser of net reads https; a plain URL is read as one
     * and then held to a loopback host. */
    n = snprintf(as_https, sizeof(as_https), "%s%s", https,
                 plain ? url + sizeof(http) - 1
                       : (strncmp(url, https, sizeof(https) - 1) == 0 ? url + sizeof(https) - 1
                                                                      : "-"));
    if (n < 0 || (size_t)n >= sizeof(as_https) ||
        tether_url_parse(as_https, (size_t)n, &parsed, &problem) != TETHER_OK) {
        snprintf(why, why_size, "--ai-upstream %s: %s", url,
                 problem != NULL ? problem : "expected https://HOST[:PORT]/PATH");
        return TETHER_ERR_PARSE;
    }
    if (plain && !is_loopback(parsed.host)) {
        snprintf(why, why_size, "--ai-upstream %s: plain http is only for a gateway on a loopback "
                                "address (tests, demos); use https:// with --ai-ca", url);
        return TETHER_ERR_PARSE;
    }
    if (plain && parsed.port == TETHER_URL_DEFAULT_PORT && strstr(url, ":443") == NULL)
        snprintf(parsed.authority, sizeof(parsed.authority), "%s%s%s:80",
                 parsed.host_type == TETHER_URL_HOST_IPV6 ? "[" : "", parsed.host,
                 parsed.host_type == TETHER_URL_HOST_IPV6 ? "]" : "");
    n = snprintf(origin, origin_size, "%s%s", plain ? http : https, parsed.authority);
    if (n < 0 || (size_t)n >= origin_size ||
        (size_t)snprintf(prefix, prefix_size, "%s", parsed.prefix) >= prefix_size) {
        origin[0] = prefix[0] = '\0';
        snprintf(why, why_size, "--ai-upstream %s: too long", url);
        return TETHER_ERR_PARSE;
    }
    return TETHER_OK;
}

void tether_ai_challenge_header(tether_ai_challenge_t *c, const char *line, size_t len)
{
    const char *end = line + len, *value;
    size_t value_len;

    while (end > line && (end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (tether_local_header_is(line, end, "DPoP-Nonce", &value, &value_len)) {
        bool ok = value_len > 0 && value_len <= TETHER_DPOP_NONCE_MAX;
        /* RFC 9449 section 8.1: 1*NQCHAR */
        for (size_t i = 0; ok && i < value_len; i++)
            ok = value[i] >= 0x21 && value[i] <= 0x7e && value[i] != '"' && value[i] != '\\';
        memcpy(c->nonce, value, ok ? value_len : 0);
        c->nonce[ok ? value_len : 0] = '\0';
    } else if (tether_local_header_is(line, end, "WWW-Authenticate", &value, &value_len)) {
        if (value_len > 5 && strncasecmp(value, "DPoP ", 5) == 0 &&
            memmem(value, value_len, "error=\"use_dpop_nonce\"", 22) != NULL)
            c->use_dpop_nonce = true;
    }
}

bool tether_ai_challenge_retry(int status, const tether_ai_challenge_t *c)
{
    return status == 401 && c->use_dpop_nonce && c->nonce[0] != '\0';
}

bool tether_ai_retry_after_header(const char *line, size_t len,
                                  char out[TETHER_AI_RETRY_AFTER_MAX + 1])
{
    const char *end = line + len, *value;
    size_t value_len;
    bool ok;

    while (end > line && (end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (!tether_local_header_is(line, end, "Retry-After", &value, &value_len))
        return false;
    ok = value_len > 0 && value_len <= TETHER_AI_RETRY_AFTER_MAX;
    for (size_t i = 0; ok && i < value_len; i++)
        ok = isalnum((unsigned char)value[i]) || value[i] == ' ' || value[i] == ',' ||
             value[i] == ':';
    if (ok) {
        memcpy(out, value, value_len);
        out[value_len] = '\0';
    }
    return ok;
}

/* ---- one app connection ------------------------------------------------- */

/* A whole buffer to the app; false when it stopped reading. */
static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        data += w;
        len -= (size_t)w;
    }
    return true;
}

/* An answer the agent makes itself, in the OpenAI error shape that clients
 * read ({"error":{"message","type","code"}}). */
static void respond_app_error(int fd, int status, const char *code, const char *message)
{
    char body[512], head[256];
    int body_len = snprintf(body, sizeof(body),
                            "{\"error\":{\"message\":\"%s\",\"type\":\"tether_agent\","
                            "\"code\":\"%s\"}}",
                            message, code);
    int head_len = snprintf(head, sizeof(head),
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %d\r\nConnection: close\r\n\r\n",
                            status, status == 503 ? "Service Unavailable" : "Error", body_len);

    if (send_all(fd, head, (size_t)head_len))
        (void)send_all(fd, body, (size_t)body_len);
}

/* The state of one upstream attempt, shared by curl's callbacks. */
typedef struct transfer transfer_t;

/* Whether the response so far is a nonce challenge the agent answers
 * itself (its body is for the agent, not the app). */
static bool answer_challenge(const transfer_t *t);

struct transfer {
    tether_ai_proxy_t *proxy;
    int fd;               /* the app */
    bool may_retry;       /* a nonce challenge may still be answered */
    int status;           /* of the final response so far */
    char content_type[128];
    char retry_after[TETHER_AI_RETRY_AFTER_MAX + 1]; /* "" when the gateway sent none */
    tether_ai_challenge_t challenge;
    bool unsigned_proof;  /* the TPM could not sign: nothing was sent */
    bool head_sent;       /* the app has the response head */
    bool app_gone;
};

static bool answer_challenge(const transfer_t *t)
{
    return t->may_retry && !t->head_sent && tether_ai_challenge_retry(t->status, &t->challenge);
}

static size_t on_header(char *data, size_t size, size_t count, void *ctx)
{
    transfer_t *t = ctx;
    size_t len = size * count;
    const char *value;
    size_t value_len;
    const char *end = data + len;

    if (len > 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx): its status, nothing of the last. */
        const char *sp = memchr(data, ' ', len);
        t->status = sp != NULL && end - sp > 3 ? atoi(sp + 1) : 0;
        t->content_type[0] = '\0';
        t->retry_after[0] = '\0';
        memset(&t->challenge, 0, sizeof(t->challenge));
        return len;
    }
    tether_ai_challenge_header(&t->challenge, data, len);
    (void)tether_ai_retry_after_header(data, len, t->retry_after);
    while (end > data && (end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (tether_local_header_is(data, end, "Content-Type", &value, &value_len) &&
        value_len < sizeof(t->content_type)) {
        memcpy(t->content_type, value, value_len);
        t->content_type[value_len] = '\0';
    }
    return len;
}

/* The response head to the app: the gateway's status, media type and
 * Retry-After, the body re-framed in chunks as it comes (an SSE stream is
 * never held). */
static bool send_head(transfer_t *t)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%sTransfer-Encoding: chunked\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     t->status, t->status < 400 ? "OK" : "Error",
                     t->content_type[0] != '\0' ? t->content_type : "application/json",
                     t->retry_after[0] != '\0' ? "Retry-After: " : "", t->retry_after,
                     t->retry_after[0] != '\0' ? "\r\n" : "");

    t->head_sent = true;
    return n > 0 && (size_t)n < sizeof(head) && send_all(t->fd, head, (size_t)n);
}

static size_t on_body(char *data, size_t size, size_t count, void *ctx)
{
    transfer_t *t = ctx;
    size_t len = size * count;
    char chunk_head[24];
    int n;

    if (answer_challenge(t))
        return len;
    if (len == 0)
        return 0;
    n = snprintf(chunk_head, sizeof(chunk_head), "%zx\r\n", len);
    if ((!t->head_sent && !send_head(t)) || !send_all(t->fd, chunk_head, (size_t)n) ||
        !send_all(t->fd, data, len) || !send_all(t->fd, "\r\n", 2)) {
        t->app_gone = true;
        return 0; /* aborts the transfer */
    }
    return len;
}

/* Aborts the transfer once the agent is stopping. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    transfer_t *t = ctx;
    bool stopping;

    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    pthread_mutex_lock(&t->proxy->lock);
    stopping = t->proxy->stopping;
    pthread_mutex_unlock(&t->proxy->lock);
    return stopping ? 1 : 0;
}

/* Wipes and frees a header list that held the token and the proof. */
static void free_headers(struct curl_slist *headers)
{
    for (struct curl_slist *h = headers; h != NULL; h = h->next)
        tether_wipe(h->data, strlen(h->data));
    curl_slist_free_all(headers);
}

/* Appends "name: <scheme>value" to *list; false when out of memory. The
 * line is built in line (line_size bytes, locked memory for the token),
 * wiped after. */
static bool add_header(struct curl_slist **list, char *line, size_t line_size, const char *name,
                       const char *value, const char *scheme)
{
    struct curl_slist *next;
    int n = snprintf(line, line_size, "%s: %s%s", name, scheme, value);

    next = n > 0 && (size_t)n < line_size ? curl_slist_append(*list, line) : NULL;
    tether_wipe(line, line_size);
    if (next == NULL)
        return false;
    *list = next;
    return true;
}

/* One upstream attempt with a fresh proof (nonce: the gateway's, or ""). */
static CURLcode forward_once(transfer_t *t, const tether_ai_request_t *req, const char *body,
                             const char *url, const char *htu, const char *token, const char *jti,
                             const char *nonce, tether_secure_buffer_t *scratch)
{
    tether_ai_proxy_t *p = t->proxy;
    struct curl_slist *headers = NULL;
    char proof[TETHER_DPOP_MAX_LEN + 1], why[256];
    size_t proof_len;
    CURL *curl = NULL;
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    bool ok;

    if (tether_dpop_signer_sign(p->signer, req->method, htu, nonce[0] != '\0' ? nonce : NULL,
                                token, strlen(token), (int64_t)time(NULL), proof, sizeof(proof),
                                &proof_len, why, sizeof(why)) != TETHER_OK) {
        tether_error("agent", "AI endpoint: cannot sign a DPoP proof: %s", why);
        t->unsigned_proof = true;
        return CURLE_ABORTED_BY_CALLBACK;
    }
    p->agent.count(p->agent.ctx, jti, TETHER_TOKEN_COUNT_PROOF);
    /* "Expect:" with no value stops libcurl's 100-continue wait. */
    ok = add_header(&headers, (char *)scratch->data, scratch->size, "Authorization", token,
                    "DPoP ") &&
         add_header(&headers, (char *)scratch->data, scratch->size, "DPoP", proof, "") &&
         (req->content_type[0] == '\0' ||
          add_header(&headers, (char *)scratch->data, scratch->size, "Content-Type",
                     req->content_type, "")) &&
         (req->accept[0] == '\0' ||
          add_header(&headers, (char *)scratch->data, scratch->size, "Accept", req->accept,
                     "")) &&
         add_header(&headers, (char *)scratch->data, scratch->size, "Expect", "", "");
    tether_wipe(proof, sizeof(proof));
    if (!ok || (curl = curl_easy_init()) == NULL)
        goto out;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, strncmp(url, "https:", 6) == 0 ? "https" : "http");
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body_len > 0 || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (p->ca_file[0] != '\0') {
        /* Only the gateway's CA: not the system's store. */
        curl_easy_setopt(curl, CURLOPT_CAINFO, p->ca_file);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    }
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
    rc = curl_easy_perform(curl);
    p->agent.count(p->agent.ctx, jti, TETHER_TOKEN_COUNT_REQUEST);
out:
    curl_easy_cleanup(curl);
    free_headers(headers);
    return rc;
}

/* Reads the app's request: the head, then the body its Content-Length
 * names. *body is heap (body_len bytes and a NUL), freed by the caller.
 * 0, or the HTTP status to answer with. */
static int read_request(int fd, tether_ai_request_t *req, char **body)
{
    char *buf = malloc(TETHER_AI_MAX_HEAD);
    size_t len = 0, have;
    tether_status_t rc = TETHER_ERR_STATE;
    int status = 400;

    *body = NULL;
    if (buf == NULL)
        return 503;
    while (rc == TETHER_ERR_STATE && len < TETHER_AI_MAX_HEAD) {
        ssize_t n = recv(fd, buf + len, TETHER_AI_MAX_HEAD - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        len += (size_t)n;
        rc = tether_ai_request_parse(buf, len, req);
    }
    if (rc != TETHER_OK) {
        status = rc == TETHER_ERR_TOO_LARGE || rc == TETHER_ERR_STATE ? 413 : 400;
        goto out;
    }
    have = len - req->head_len;
    if (have > req->body_len || (*body = malloc(req->body_len + 1)) == NULL) {
        status = have > req->body_len ? 400 : 503;
        goto out;
    }
    memcpy(*body, buf + req->head_len, have);
    while (have < req->body_len) {
        ssize_t n = recv(fd, *body + have, req->body_len - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    (*body)[req->body_len] = '\0';
    status = 0;
out:
    if (status != 0) {
        free(*body);
        *body = NULL;
    }
    free(buf);
    return status;
}

/* Whether target lies under the upstream's path: "/v1" takes "/v1/..."
 * and "/v1?...", not "/v10". */
static bool under_prefix(const char *target, const char *prefix)
{
    size_t n = strlen(prefix);

    return strncmp(target, prefix, n) == 0 &&
           (target[n] == '/' || target[n] == '?' || target[n] == '\0');
}

/* Forwards one request with the held token, answering a nonce challenge
 * once; the answer goes to the app as it comes. */
static void proxy_request(tether_ai_proxy_t *p, int fd, const tether_ai_request_t *req,
                          const char *body)
{
    char url[2 * TETHER_AI_URL_MAX + 2], htu[2 * TETHER_AI_URL_MAX + 2];
    char jti[TETHER_TOKEN_JTI_MAX + 1], nonce[TETHER_DPOP_NONCE_MAX + 1];
    tether_secure_buffer_t token, scratch;
    transfer_t t;
    CURLcode rc = CURLE_OK;

    memset(&token, 0, sizeof(token));
    memset(&scratch, 0, sizeof(scratch));
    snprintf(url, sizeof(url), "%s%s", p->origin, req->target);
    snprintf(htu, sizeof(htu), "%s%.*s", p->origin, (int)strcspn(req->target, "?"), req->target);
    if (tether_secure_buffer_alloc(&token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK ||
        tether_secure_buffer_alloc(&scratch, TETHER_TOKEN_MAX + TETHER_DPOP_MAX_LEN + 64, 1) !=
            TETHER_OK) {
        respond_app_error(fd, 503, "no_memory", "the agent is out of memory");
        goto out;
    }
    if (!p->agent.get_token(p->agent.ctx, &token, jti)) {
        respond_app_error(fd, 503, "no_token",
                          "the agent holds no valid token; see tether-agent token --status");
        goto out;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        memset(&t, 0, sizeof(t));
        t.proxy = p;
        t.fd = fd;
        t.may_retry = attempt == 0;
        pthread_mutex_lock(&p->nonce.lock);
        memcpy(nonce, p->nonce.value, sizeof(nonce));
        pthread_mutex_unlock(&p->nonce.lock);
        rc = forward_once(&t, req, body, url, htu, (const char *)token.data, jti, nonce, &scratch);
        /* A nonce the gateway gives is for the next proofs (RFC 9449 8). */
        if (t.challenge.nonce[0] != '\0') {
            pthread_mutex_lock(&p->nonce.lock);
            memcpy(p->nonce.value, t.challenge.nonce, sizeof(p->nonce.value));
            pthread_mutex_unlock(&p->nonce.lock);
        }
        if (rc != CURLE_OK || !answer_challenge(&t))
            break;
    }
    if (t.unsigned_proof) {
        respond_app_error(fd, 503, "tpm_error", "the TPM could not sign the proof; see the agent's log");
    } else if (rc != CURLE_OK && !t.head_sent) {
        if (!t.app_gone)
            tether_warn("agent", "AI endpoint: %s %s: %s", req->method, url,
                        curl_easy_strerror(rc));
        respond_app_error(fd, 502, "upstream_unreachable",
                          "the agent could not reach its AI gateway; see its log");
    } else if (rc == CURLE_OK && (t.head_sent || send_head(&t))) {
        (void)send_all(fd, "0\r\n\r\n", 5);
    }
out:
    tether_secure_buffer_free(&scratch);
    tether_secure_buffer_free(&token);
}

typedef struct connection {
    tether_ai_proxy_t *proxy;
    int fd;
} connection_t;

static void *connection_main(void *arg)
{
    connection_t *c = arg;
    tether_ai_proxy_t *p = c->proxy;
    struct timeval timeout = {.tv_sec = APP_IO_TIMEOUT_S};
    tether_ai_request_t req;
    char *body = NULL;
    int status;

    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    status = read_request(c->fd, &req, &body);
    if (status == 413)
        respond_app_error(c->fd, 413, "request_too_large", "the request is over the agent's bound");
    else if (status != 0)
        respond_app_error(c->fd, status, "bad_request", "the agent could not read the request");
    else if (!under_prefix(req.target, p->prefix))
        respond_app_error(c->fd, 404, "not_found", "the path is not under the gateway's base URL");
    else
        proxy_request(p, c->fd, &req, body);
    free(body);
    close(c->fd);
    free(c);
    pthread_mutex_lock(&p->lock);
    if (--p->active == 0)
        pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Starts a thread for the app on fd, or answers 503 beyond the bound. */
static void start_connection(tether_ai_proxy_t *p, int fd)
{
    connection_t *c = malloc(sizeof(*c));
    pthread_attr_t attr;
    pthread_t thread;
    bool started = false;

    pthread_mutex_lock(&p->lock);
    if (c != NULL && p->active < TETHER_AI_MAX_CONNECTIONS && !p->stopping) {
        *c = (connection_t){.proxy = p, .fd = fd};
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attr, connection_main, c) == 0;
        pthread_attr_destroy(&attr);
        if (started)
            p->active++;
    }
    pthread_mutex_unlock(&p->lock);
    if (!started) {
        free(c);
        respond_app_error(fd, 503, "busy", "the agent serves too many AI requests; try again");
        close(fd);
    }
}

static void *listener_main(void *arg)
{
    tether_ai_proxy_t *p = arg;

    for (;;) {
        struct pollfd fds[2] = {{.fd = p->listen_fd, .events = POLLIN},
                                {.fd = p->stop_fd, .events = POLLIN}};
        int fd;

        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents != 0)
            break;
        if (!(fds[0].revents & POLLIN))
            continue;
        fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_connection(p, fd);
        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            tether_warn("agent", "AI endpoint: cannot accept: %s", strerror(errno));
    }
    return NULL;
}

void tether_ai_proxy_init(tether_ai_proxy_t *p)
{
    memset(p, 0, sizeof(*p));
    p->listen_fd = -1;
    p->stop_fd = -1;
    p->nonce.lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    p->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    p->idle = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
}

/* "127.0.0.1:PORT" or "[::1]:PORT", loopback only. -1 with a reason. */
static int listen_loopback(const char *text, char *why, size_t why_size)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[64];
    const char *colon = strrchr(text, ':');
    unsigned long port;
    char *end;
    int fd, one = 1;

    memset(&addr, 0, sizeof(addr));
    port = colon != NULL ? strtoul(colon + 1, &end, 10) : 0;
    if (colon == NULL || colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535 ||
        (size_t)(colon - text) >= sizeof(host)) {
        snprintf(why, why_size, "--ai-listen %s: expected 127.0.0.1:PORT", text);
        return -1;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    if (!is_loopback(host)) {
        snprintf(why, why_size, "--ai-listen %s: only a loopback address may be used, since "
                                "whoever connects spends this device's credential", text);
        return -1;
    }
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        (void)inet_pton(AF_INET6, host, &a6->sin6_addr);
        addr_len = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        (void)inet_pton(AF_INET, host, &a4->sin_addr);
        addr_len = sizeof(*a4);
    }
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(why, why_size, "--ai-listen %s: %s", text, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

tether_status_t tether_ai_proxy_open(tether_ai_proxy_t *p, const char *listen,
                                     const char *upstream, const char *ca_file,
                                     tether_dpop_signer_t *signer, const tether_ai_agent_t *agent,
                                     char *why, size_t why_size)
{
    tether_status_t rc;
    int err;

    p->signer = signer;
    p->agent = *agent;
    if ((rc = tether_ai_upstream_parse(upstream, p->origin, sizeof(p->origin), p->prefix,
                                       sizeof(p->prefix), why, why_size)) != TETHER_OK)
        return rc;
    if (strncmp(p->origin, "https:", 6) == 0) {
        if (ca_file == NULL || access(ca_file, R_OK) != 0 ||
            (size_t)snprintf(p->ca_file, sizeof(p->ca_file), "%s", ca_file) >= sizeof(p->ca_file)) {
            snprintf(why, why_size, "--ai-upstream %s needs --ai-ca FILE, the CA certificate (PEM) "
                                    "that signed the gateway's certificate%s%s",
                     upstream, ca_file != NULL ? ": cannot read " : "",
                     ca_file != NULL ? ca_file : "");
            return TETHER_ERR_PARSE;
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(why, why_size, "cannot initialise libcurl");
        return TETHER_ERR_IO;
    }
    p->curl_ready = true;
    if ((p->listen_fd = listen_loopback(listen, why, why_size)) < 0)
        return TETHER_ERR_IO;
    if ((p->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        snprintf(why, why_size, "cannot create the AI endpoint's event fd: %s", strerror(errno));
        return TETHER_ERR_IO;
    }
    if ((err = pthread_create(&p->listener, NULL, listener_main, p)) != 0) {
        snprintf(why, why_size, "cannot start the AI endpoint's thread: %s", strerror(err));
        return TETHER_ERR_IO;
    }
    p->listening = true;
    tether_info("agent", "AI endpoint on %s, forwarding to %s%s", listen, p->origin, p->prefix);
    return TETHER_OK;
}

void tether_ai_proxy_close(tether_ai_proxy_t *p)
{
    const uint64_t one = 1;

    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_mutex_unlock(&p->lock);
    if (p->listening) {
        if (write(p->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            tether_warn("agent", "AI endpoint: cannot wake its thread: %s", strerror(errno));
        pthread_join(p->listener, NULL);
        p->listening = false;
    }
    /* Transfers under way abort at their next progress call. */
    pthread_mutex_lock(&p->lock);
    while (p->active > 0)
        pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    if (p->stop_fd >= 0)
        close(p->stop_fd);
    p->listen_fd = p->stop_fd = -1;
    if (p->curl_ready)
        curl_global_cleanup();
    p->curl_ready = false;
}
