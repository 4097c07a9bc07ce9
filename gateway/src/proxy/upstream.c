#include "tether/gate/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tether/bytes.h"
#include "tether/file.h"

#define USER_AGENT "tether-gate"

void tether_gate_upstream_init(tether_gate_upstream_t *upstream)
{
    if (upstream != NULL)
        memset(upstream, 0, sizeof(*upstream));
}

tether_status_t tether_gate_upstream_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? TETHER_OK : TETHER_ERR_NO_MEMORY;
}

/* The key file holds one line of printable ASCII: anything else (a CR or
 * LF inside, a control character) could split the Authorization header. */
static tether_status_t read_key(const char *path, char **key, char *why, size_t why_size)
{
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    *key = NULL;
    if ((rc = tether_file_read(path, TETHER_GATE_MAX_KEY_BYTES + 2, &data, &len)) != TETHER_OK) {
        rc = tether_explain(rc, why, why_size, "cannot read the upstream key file %s: %s", path,
                            tether_strerror(rc));
        goto out;
    }
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (len > 0 && data[len - 1] == '\r')
        len--;
    data[len] = '\0';
    rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                        "the upstream key file %s must hold one line of 1 to %d printable "
                        "characters", path, TETHER_GATE_MAX_KEY_BYTES);
    if (len == 0 || len > TETHER_GATE_MAX_KEY_BYTES)
        goto out;
    for (size_t i = 0; i < len; i++) {
        if (data[i] <= 0x20 || data[i] >= 0x7f)
            goto out;
    }
    *key = (char *)data;
    data = NULL;
    rc = TETHER_OK;
out:
    if (data != NULL) {
        tether_wipe(data, len + 1);
        free(data);
    }
    return rc;
}

tether_status_t tether_gate_upstream_open(tether_gate_upstream_t *upstream,
                                          const tether_gate_upstream_options_t *opts, char *why,
                                          size_t why_size)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    size_t url_len;

    if (upstream == NULL || opts == NULL || upstream->lock_ready || opts->base_url == NULL) {
        rc = tether_explain(rc, why, why_size, "no upstream URL");
        goto out;
    }
    url_len = strnlen(opts->base_url, sizeof(upstream->base_url));
    if (url_len >= sizeof(upstream->base_url) ||
        (strncmp(opts->base_url, "https://", 8) != 0 && strncmp(opts->base_url, "http://", 7) != 0)) {
        rc = tether_explain(rc, why, why_size,
                            "the upstream URL must start with https:// (or http://) and be "
                            "under %d bytes", TETHER_GATE_MAX_UPSTREAM_URL);
        goto out;
    }
    if (opts->max_transfers == 0 || opts->connect_timeout_ms == 0 || opts->timeout_ms == 0 ||
        opts->idle_timeout_ms == 0 || opts->max_response_bytes == 0) {
        rc = tether_explain(rc, why, why_size,
                            "the upstream's transfer limit, timeouts and answer size must be set");
        goto out;
    }
    memcpy(upstream->base_url, opts->base_url, url_len + 1);
    while (url_len > 0 && upstream->base_url[url_len - 1] == '/')
        upstream->base_url[--url_len] = '\0';
    if (opts->key_file != NULL &&
        (rc = read_key(opts->key_file, &upstream->key, why, why_size)) != TETHER_OK)
        goto out;
    rc = TETHER_ERR_NO_MEMORY;
    if (opts->ca_file != NULL && (upstream->ca_file = strdup(opts->ca_file)) == NULL)
        goto out;
    if ((upstream->pool = calloc(opts->max_transfers, sizeof(*upstream->pool))) == NULL)
        goto out;
    upstream->connect_timeout_ms = opts->connect_timeout_ms;
    upstream->timeout_ms = opts->timeout_ms;
    upstream->idle_timeout_ms = opts->idle_timeout_ms;
    upstream->max_response_bytes = opts->max_response_bytes;
    upstream->max_transfers = opts->max_transfers;
    if (pthread_mutex_init(&upstream->lock, NULL) != 0)
        goto out;
    if (pthread_cond_init(&upstream->idle, NULL) != 0) {
        pthread_mutex_destroy(&upstream->lock);
        goto out;
    }
    upstream->lock_ready = true;
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK && upstream != NULL && !upstream->lock_ready)
        tether_gate_upstream_free(upstream);
    return rc;
}

void tether_gate_upstream_free(tether_gate_upstream_t *upstream)
{
    if (upstream == NULL)
        return;
    if (upstream->lock_ready) {
        pthread_mutex_lock(&upstream->lock);
        while (upstream->active > 0)
            pthread_cond_wait(&upstream->idle, &upstream->lock);
        pthread_mutex_unlock(&upstream->lock);
        pthread_cond_destroy(&upstream->idle);
        pthread_mutex_destroy(&upstream->lock);
    }
    for (unsigned i = 0; i < upstream->pool_count; i++)
        curl_easy_cleanup(upstream->pool[i]);
    free(upstream->pool);
    if (upstream->key != NULL) {
        tether_wipe(upstream->key, strlen(upstream->key));
        free(upstream->key);
    }
    free(upstream->ca_file);
    tether_wipe(upstream, sizeof(*upstream));
}

/* A new easy handle with the options every transfer shares. */
static CURL *make_handle(const tether_gate_upstream_t *upstream)
{
    CURL *curl = curl_easy_init();
    CURLcode rc = CURLE_OK;

    if (curl == NULL)
        return NULL;
    rc |= curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    rc |= curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    rc |= curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(curl, CURLOPT_USERAGENT, USER_AGENT);
    rc |= curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)upstream->connect_timeout_ms);
    if (upstream->ca_file != NULL)
        rc |= curl_easy_setopt(curl, CURLOPT_CAINFO, upstream->ca_file);
    if (upstream->key != NULL) {
        rc |= curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        rc |= curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, upstream->key);
    }
    if (rc != CURLE_OK) {
        curl_easy_cleanup(curl);
        curl = NULL;
    }
    return curl;
}

/* An idle handle, or a new one while fewer than max_transfers run; NULL
 * when all are busy (or out of memory). */
static CURL *take_handle(tether_gate_upstream_t *upstream)
{
    CURL *curl = NULL;
    bool make = false;

    pthread_mutex_lock(&upstream->lock);
    if (upstream->pool_count > 0) {
        curl = upstream->pool[--upstream->pool_count];
        upstream->active++;
    } else if (upstream->active < upstream->max_transfers) {
        make = true;
        upstream->active++;
    }
    pthread_mutex_unlock(&upstream->lock);
    if (make && (curl = make_handle(upstream)) == NULL) {
        pthread_mutex_lock(&upstream->lock);
        upstream->active--;
        pthread_cond_broadcast(&upstream->idle);
        pthread_mutex_unlock(&upstream->lock);
    }
    return curl;
}

/* Back to the pool with its connection; a handle whose transfer failed is
 * dropped, since its connection may be in any state. */
static void put_handle(tether_gate_upstream_t *upstream, CURL *curl, bool reusable)
{
    pthread_mutex_lock(&upstream->lock);
    if (reusable && upstream->pool_count < upstream->max_transfers) {
        upstream->pool[upstream->pool_count++] = curl;
        curl = NULL;
    }
    upstream->active--;
    pthread_cond_broadcast(&upstream->idle);
    pthread_mutex_unlock(&upstream->lock);
    if (curl != NULL)
        curl_easy_cleanup(curl);
}

static tether_status_t status_of(CURLcode code)
{
    tether_status_t rc;

    switch (code) {
    case CURLE_OK:
        rc = TETHER_OK;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        rc = TETHER_ERR_NETWORK;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        rc = TETHER_ERR_TIMEOUT;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        rc = TETHER_ERR_TLS;
        break;
    case CURLE_WRITE_ERROR:
        rc = TETHER_ERR_STATE; /* our callback stopped it */
        break;
    default:
        rc = TETHER_ERR_PROTOCOL;
        break;
    }
    return rc;
}

/* One transfer's state, shared with libcurl's callbacks. */
typedef struct transfer {
    CURL *curl;
    /* fetch: the answer collected */
    char *answer;
    size_t answer_len;
    size_t max;
    bool too_large;
    /* stream: the caller's callbacks */
    tether_gate_upstream_head_fn head;
    tether_gate_upstream_sink_fn sink;
    void *arg;
    bool head_done;
    unsigned status;
} transfer_t;

static unsigned response_code(CURL *curl)
{
    long code = 0;

    if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code < 0 ||
        code > 999)
        code = 0;
    return (unsigned)code;
}

/* The blank line after a final (not 1xx) status line ends the head. */
static size_t on_header(char *line, size_t size, size_t count, void *arg)
{
    transfer_t *t = arg;
    size_t len = size * count;

    if ((len == 2 && line[0] == '\r') || (len == 1 && line[0] == '\n')) {
        unsigned status = response_code(t->curl);

        if (status >= 200 && !t->head_done) {
            t->head_done = true;
            t->status = status;
            if (t->head != NULL)
                t->head(t->arg, status);
        }
    }
    return len;
}

static size_t on_answer(char *bytes, size_t size, size_t count, void *arg)
{
    transfer_t *t = arg;
    size_t len = size * count;
    char *grown;

    if (len > t->max - t->answer_len) {
        t->too_large = true;
        return 0;
    }
    if ((grown = realloc(t->answer, t->answer_len + len + 1)) == NULL)
        return 0;
    t->answer = grown;
    memcpy(t->answer + t->answer_len, bytes, len);
    t->answer_len += len;
    t->answer[t->answer_len] = '\0';
    return len;
}

static size_t on_piece(char *bytes, size_t size, size_t count, void *arg)
{
    transfer_t *t = arg;
    size_t len = size * count;

    return t->sink(t->arg, t->status, (const uint8_t *)bytes, len) ? len : 0;
}

/* Sets the per-request options and runs the transfer. */
static tether_status_t perform(tether_gate_upstream_t *upstream, transfer_t *t, const char *method,
                               const char *path, const char *body, size_t body_len, bool stream,
                               char *why, size_t why_size)
{
    char url[TETHER_GATE_MAX_UPSTREAM_URL + 64];
    char error[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *more;
    CURLcode code = CURLE_OK;
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    int n = snprintf(url, sizeof(url), "%s%s", upstream->base_url, path);

    if (n < 0 || (size_t)n >= sizeof(url))
        goto out;
    rc = TETHER_ERR_NO_MEMORY;
    /* "Expect:" off: no round trip waiting for 100 Continue on big bodies. */
    if ((headers = curl_slist_append(NULL, "Expect:")) == NULL ||
        (more = curl_slist_append(headers, stream ? "Accept: text/event-stream"
                                                  : "Accept: application/json")) == NULL ||
        (body != NULL && curl_slist_append(more, "Content-Type: application/json") == NULL))
        goto out;
    code |= curl_easy_setopt(t->curl, CURLOPT_URL, url);
    code |= curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, headers);
    code |= curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, error);
    if (strcmp(method, "POST") == 0) {
        code |= curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        code |= curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        code |= curl_easy_setopt(t->curl, CURLOPT_HTTPGET, 1L);
    }
    code |= curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, on_header);
    code |= curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, t);
    code |= curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, stream ? on_piece : on_answer);
    code |= curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
    /* A stream may last long: it is cut when idle, not by its length. */
    code |= curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, stream ? 0L : (long)upstream->timeout_ms);
    code |= curl_easy_setopt(t->curl, CURLOPT_LOW_SPEED_LIMIT, stream ? 1L : 0L);
    code |= curl_easy_setopt(t->curl, CURLOPT_LOW_SPEED_TIME,
                             stream ? (long)((upstream->idle_timeout_ms + 999u) / 1000u) : 0L);
    if (code != CURLE_OK) {
        rc = tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                            "libcurl refused an option for the upstream request");
        goto out;
    }
    code = curl_easy_perform(t->curl);
    if (t->status == 0)
        t->status = response_code(t->curl);
    if ((rc = status_of(code)) != TETHER_OK && !t->too_large)
        rc = tether_explain(rc, why, why_size, "the upstream request failed: %s",
                            error[0] != '\0' ? error : curl_easy_strerror(code));
    if (t->too_large)
        rc = tether_explain(TETHER_ERR_TOO_LARGE, why, why_size,
                            "the upstream's answer is over the gateway's limit of %zu bytes",
                            t->max);
out:
    /* The handle goes back to the pool: no pointer to this frame may stay. */
    curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(headers);
    return rc;
}

tether_status_t tether_gate_upstream_fetch(tether_gate_upstream_t *upstream, const char *method,
                                           const char *path, const char *body, size_t body_len,
                                           unsigned *status, char **answer, size_t *answer_len,
                                           char *why, size_t why_size)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    transfer_t t;

    memset(&t, 0, sizeof(t));
    if (status != NULL)
        *status = 0;
    if (answer != NULL)
        *answer = NULL;
    if (answer_len != NULL)
        *answer_len = 0;
    if (upstream == NULL || !upstream->lock_ready || method == NULL || path == NULL ||
        status == NULL || answer == NULL || answer_len == NULL)
        goto out;
    if ((t.curl = take_handle(upstream)) == NULL) {
        rc = tether_explain(TETHER_ERR_STATE, why, why_size,
                            "all %u upstream transfers are in use", upstream->max_transfers);
        goto out;
    }
    t.max = upstream->max_response_bytes;
    rc = perform(upstream, &t, method, path, body, body_len, false, why, why_size);
    put_handle(upstream, t.curl, rc == TETHER_OK);
    if (rc != TETHER_OK)
        goto out;
    if (t.answer == NULL && (t.answer = calloc(1, 1)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    *status = t.status;
    *answer = t.answer;
    *answer_len = t.answer_len;
    t.answer = NULL;
out:
    if (t.answer != NULL) {
        tether_wipe(t.answer, t.answer_len);
        free(t.answer);
    }
    return rc;
}

tether_status_t tether_gate_upstream_stream(tether_gate_upstream_t *upstream, const char *path,
                                            const char *body, size_t body_len,
                                            tether_gate_upstream_head_fn head,
                                            tether_gate_upstream_sink_fn sink, void *arg,
                                            char *why, size_t why_size)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    transfer_t t;

    memset(&t, 0, sizeof(t));
    if (upstream == NULL || !upstream->lock_ready || path == NULL || head == NULL ||
        sink == NULL)
        goto out;
    if ((t.curl = take_handle(upstream)) == NULL) {
        rc = tether_explain(TETHER_ERR_STATE, why, why_size,
                            "all %u upstream transfers are in use", upstream->max_transfers);
        goto out;
    }
    t.head = head;
    t.sink = sink;
    t.arg = arg;
    rc = perform(upstream, &t, "POST", path, body, body_len, true, why, why_size);
    put_handle(upstream, t.curl, rc == TETHER_OK);
out:
    return rc;
}
