#include "tether/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "http_connections.h"
#include "http_stream_server.h"
#include "http_tls_input.h"
#include "tether/bytes.h"
#include "tether/log.h"

#define LOG_PATH_MAX 128
#define PARK_POLL_INTERVAL_MS 1000 /* parked requests are polled at least this often */
#define DRAIN_MS 2000              /* at stop, how long answered long polls may take to go out */
#define BODY_FIRST_CAPACITY 16384  /* a request body's first buffer; it doubles up to the limit */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* Per-request state, from the request line (on_request_line) to the
 * completion callback. */
typedef struct request_state {
    tether_http_server_t *server;
    struct timespec start;
    bool head_seen;   /* on_request has been called */
    bool uri_too_long; /* over TETHER_HTTP_MAX_URI_BYTES */
    bool uri_has_nul;  /* "%00" in the raw path or query */
    char method[16];
    char path[LOG_PATH_MAX + 1]; /* sanitised copy, for the log only */
    uint8_t *body;
    size_t body_len;
    size_t body_capacity;
    bool too_large;
    bool last_on_connection; /* the connection's bound on requests: answered with close */
    unsigned status;
    const char *route; /* the handler's response->route, for the metrics */
    tether_http_request_t request;
    char remote[INET6_ADDRSTRLEN]; /* request.remote */
    /* While parked (suspended): owned by the waker thread, in server->parked
     * or in the waker's batch. Once answered, the waker resumes the
     * connection and never touches the state again. */
    struct request_state *park_next;
    struct MHD_Connection *connection;
    tether_http_park_t park;
    struct timespec deadline; /* CLOCK_MONOTONIC */
    bool answered;            /* parked_response holds the answer to send */
    bool counted;             /* in server->resumed until completed */
    tether_http_response_t parked_response;
} request_state_t;

void tether_http_server_init(tether_http_server_t *server)
{
    if (server != NULL)
        memset(server, 0, sizeof(*server));
}

/* Keeps the log line printable whatever the client sent. */
static void sanitise(char *out, size_t out_size, const char *in)
{
    size_t i = 0;

    for (; in != NULL && in[i] != '\0' && i + 1 < out_size; i++)
        out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
}

/* Only body[0..body_len) was ever written: that is what holds the
 * client's bytes (tokens, prompts) and is wiped. */
static void free_body(request_state_t *state)
{
    if (state->body != NULL) {
        tether_wipe(state->body, state->body_len);
        free(state->body);
    }
    state->body = NULL;
    state->body_len = 0;
    state->body_capacity = 0;
}

static void free_response_body(void *body)
{
    if (body != NULL) {
        tether_wipe(body, strlen(body));
        free(body);
    }
}

/* Queues response (taking its body); state records the status for the log. */
static enum MHD_Result send_response(struct MHD_Connection *connection, request_state_t *state,
                                     tether_http_response_t *response)
{
    struct MHD_Response *mhd;
    enum MHD_Result ret;
    char *body = response->body;
    if (response->stream != NULL && body == NULL) {
        tether_http_stream_t *stream = response->stream;

        response->stream = NULL;
        if ((mhd = tether_http_stream_attach(stream, state->server, connection)) == NULL)
            return MHD_NO;
    } else {
        if (body == NULL)
            tether_http_respond_error(response, 500, "server_error", "no response");
        body = response->body;
        response->body = NULL;
        mhd = MHD_create_response_from_buffer_with_free_callback(
            body != NULL ? strlen(body) : 0, body, free_response_body);
        if (mhd == NULL) {
            free_response_body(body);
            return MHD_NO;
        }
    }
    MHD_add_response_header(mhd, MHD_HTTP_HEADER_CONTENT_TYPE,
                            response->content_type != NULL ? response->content_type
                                                           : "application/json");
    MHD_add_response_header(mhd, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(mhd, "X-Content-Type-Options", "nosniff");
    if (response->www_authenticate != NULL)
        MHD_add_response_header(mhd, MHD_HTTP_HEADER_WWW_AUTHENTICATE, response->www_authenticate);
    if (response->allow != NULL)
        MHD_add_response_header(mhd, MHD_HTTP_HEADER_ALLOW, response->allow);
    /* libmicrohttpd closes the connection after a response that says so. */
    if (state->last_on_connection)
        MHD_add_response_header(mhd, MHD_HTTP_HEADER_CONNECTION, "close");
    if (response->retry_after != NULL) {
        MHD_add_response_header(mhd, MHD_HTTP_HEADER_RETRY_AFTER, response->retry_after);
    } else if (response->retry_after_seconds > 0) {
        char seconds[24];

        snprintf(seconds, sizeof(seconds), "%llu",
                 (unsigned long long)response->retry_after_seconds);
        MHD_add_response_header(mhd, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    for (size_t i = 0; i < response->header_count && i < TETHER_HTTP_MAX_RESPONSE_HEADERS; i++)
        MHD_add_response_header(mhd, response->headers[i].name, response->headers[i].value);
    state->status = response->status;
    ret = MHD_queue_response(connection, response->status, mhd);
    MHD_destroy_response(mhd);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *connection, request_state_t *state,
                                  unsigned status, const char *code, const char *description)
{
    tether_http_response_t response;
    enum MHD_Result ret;

    memset(&response, 0, sizeof(response));
    tether_http_respond_error(&response, status, code, description);
    ret = send_response(connection, state, &response);
    tether_http_response_clear(&response);
    return ret;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    tether_http_request_t *request = cls;

    (void)kind;
    if (request->query_count >= TETHER_HTTP_MAX_QUERY) {
        request->query_overflow = true;
        return MHD_NO;
    }
    request->query[request->query_count].key = key;
    request->query[request->query_count].value = value != NULL ? value : "";
    request->query_count++;
    return MHD_YES;
}

/* Makes room for need bytes of body (need <= the server's limit): the
 * buffer doubles from BODY_FIRST_CAPACITY up to the limit, so a small
 * request neither allocates nor wipes the whole limit. The old buffer is
 * copied, then wiped and freed, never left to realloc unwiped. false when
 * out of memory (the body is freed then). */
static bool grow_body(const tether_http_server_t *server, request_state_t *state, size_t need)
{
    size_t capacity = state->body_capacity > 0 ? state->body_capacity : BODY_FIRST_CAPACITY;
    size_t len = state->body_len;
    uint8_t *body;

    while (capacity < need)
        capacity = capacity > server->max_body_bytes / 2 ? server->max_body_bytes : capacity * 2;
    if (capacity > server->max_body_bytes)
        capacity = server->max_body_bytes;
    if ((body = malloc(capacity)) == NULL) {
        free_body(state);
        return false;
    }
    if (len > 0)
        memcpy(body, state->body, len);
    free_body(state);
    state->body = body;
    state->body_len = len;
    state->body_capacity = capacity;
    return true;
}

/* Appends a chunk of the body; past the limit the body is dropped (and the
 * rest of the upload discarded) so that memory stays bounded. */
static void append_body(tether_http_server_t *server, request_state_t *state, const char *data,
                        size_t len)
{
    if (state->too_large)
        return;
    if (len > server->max_body_bytes - state->body_len) {
        state->too_large = true;
        free_body(state);
        return;
    }
    if (len > state->body_capacity - state->body_len &&
        !grow_body(server, state, state->body_len + len)) {
        state->too_large = true;
        return;
    }
    memcpy(state->body + state->body_len, data, len);
    state->body_len += len;
}

static bool declared_too_large(struct MHD_Connection *connection, size_t max)
{
    const char *length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end = NULL;
    unsigned long long value;

    if (length == NULL)
        return false;
    errno = 0;
    value = strtoull(length, &end, 10);
    return errno != 0 || end == length || value > max;
}

static enum MHD_Result add_header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    size_t *total = cls;

    (void)kind;
    *total += strlen(key) + (value != NULL ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static bool head_too_large(struct MHD_Connection *connection)
{
    size_t total = 0;

    MHD_get_connection_values(connection, MHD_HEADER_KIND, add_header_bytes, &total);
    return total > TETHER_HTTP_MAX_HEAD_BYTES;
}

/* libmicrohttpd's URI log callback: the request line has arrived, the raw
 * target is not decoded yet. Its return value becomes the request's
 * *con_cls. A decoded %00 would end the path or a query value early (C
 * strings), so that "/x%00" and "?after=1%00" would pass for "/x" and
 * "?after=1": any "%00" in the raw target is refused. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *connection)
{
    request_state_t *state = calloc(1, sizeof(*state));

    (void)connection;
    if (state == NULL)
        return NULL;
    state->server = cls;
    clock_gettime(CLOCK_MONOTONIC, &state->start);
    state->uri_too_long = strlen(uri) > TETHER_HTTP_MAX_URI_BYTES;
    state->uri_has_nul = strstr(uri, "%00") != NULL;
    return state;
}

static tether_http_watched_t *watched_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

/* Counts the handshake of a TLS connection at its first request. */
static void count_handshake(tether_http_server_t *server, struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);

    if (info == NULL || info->tls_session == NULL)
        return;
    tether_metric_add(gnutls_session_is_resumed(info->tls_session) ? server->metrics.tls_resumed
                                                                   : server->metrics.tls_full,
                      1);
}

/* The first call for a request: its head is complete. Records it, and
 * refuses what no handler may see. */
static enum MHD_Result start_request(tether_http_server_t *server,
                                     struct MHD_Connection *connection, request_state_t *state,
                                     const char *url, const char *method)
{
    tether_http_watched_t *watched = watched_of(connection);

    if (watched != NULL) {
        unsigned requests = tether_http_reaper_head_received(server->reaper, watched);

        state->last_on_connection = server->max_requests_per_connection != 0 &&
                                    requests >= server->max_requests_per_connection;
        if (requests == 1)
            count_handshake(server, connection);
    }
    state->head_seen = true;
    sanitise(state->method, sizeof(state->method), method);
    sanitise(state->path, sizeof(state->path), url);
    state->request.method = method;
    state->request.path = url;
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, collect_query, &state->request);
    if (state->uri_too_long)
        return send_error(connection, state, 414, "uri_too_long",
                          "the request target exceeds the server's limit of "
                          STRINGIFY(TETHER_HTTP_MAX_URI_BYTES) " bytes");
    if (head_too_large(connection))
        return send_error(connection, state, 431, "request_header_fields_too_large",
                          "the header fields exceed the server's limit of "
                          STRINGIFY(TETHER_HTTP_MAX_HEAD_BYTES) " bytes");
    if (state->uri_has_nul)
        return send_error(connection, state, 400, "invalid_request",
                          "the path or query holds an encoded NUL byte (%00)");
    /* Refuse a declared oversized body before reading any of it. */
    if (declared_too_large(connection, server->max_body_bytes)) {
        state->too_large = true;
        return send_error(connection, state, 413, "payload_too_large",
                          "the request body exceeds the server's limit");
    }
    return MHD_YES;
}

/* Polls a batch of parked requests (the waker's, or everything at stop
 * with final forced): the answered ones are resumed and counted in
 * *answered, the others returned as a list. */
static request_state_t *poll_parked(tether_http_server_t *server, request_state_t *batch,
                                    bool force_final, unsigned *answered)
{
    request_state_t *waiting = NULL;
    request_state_t *next;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    for (request_state_t *state = batch; state != NULL; state = next) {
        bool final = force_final || !tether_http_timespec_before(&now, &state->deadline);
        struct MHD_Connection *connection = state->connection;

        next = state->park_next;
        if (!state->park.poll(state->park.arg, final, &state->parked_response) && !final) {
            state->park_next = waiting;
            waiting = state;
            continue;
        }
        if (state->parked_response.body == NULL)
            tether_http_respond_error(&state->parked_response, 500, "server_error",
                                      "no answer");
        state->park.release(state->park.arg);
        memset(&state->park, 0, sizeof(state->park));
        state->park_next = NULL;
        state->answered = true;
        state->counted = true;
        atomic_fetch_add(&server->resumed, 1u);
        (*answered)++;
        /* From here on the connection's thread owns state (and may free it). */
        MHD_resume_connection(connection);
    }
    return waiting;
}

/* The waker: polls the parked requests after each wake-up, at least every
 * PARK_POLL_INTERVAL_MS while any waits, and at each one's deadline. The
 * polls run without park_lock held (they may read the store). */
static void *waker_main(void *arg)
{
    tether_http_server_t *server = arg;
    struct timespec last_round;
    uint64_t seen = 0;

    clock_gettime(CLOCK_MONOTONIC, &last_round);
    pthread_mutex_lock(&server->park_lock);
    while (!server->closing) {
        request_state_t *batch;
        unsigned answered = 0;

        if (server->wakeups == seen) {
            struct timespec now, until = last_round;

            if (server->parked == NULL) {
                pthread_cond_wait(&server->park_cond, &server->park_lock);
                continue;
            }
            tether_http_timespec_add_ms(&until, PARK_POLL_INTERVAL_MS);
            for (request_state_t *p = server->parked; p != NULL; p = p->park_next) {
                if (tether_http_timespec_before(&p->deadline, &until))
                    until = p->deadline;
            }
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (tether_http_timespec_before(&now, &until) &&
                pthread_cond_timedwait(&server->park_cond, &server->park_lock, &until) !=
                    ETIMEDOUT)
                continue; /* woken: look again (a wake-up, a new request, the stop) */
        }
        seen = server->wakeups;
        batch = server->parked;
        server->parked = NULL;
        pthread_mutex_unlock(&server->park_lock);
        batch = poll_parked(server, batch, false, &answered);
        clock_gettime(CLOCK_MONOTONIC, &last_round);
        pthread_mutex_lock(&server->park_lock);
        while (batch != NULL) {
            request_state_t *next = batch->park_next;
            batch->park_next = server->parked;
            server->parked = batch;
            batch = next;
        }
        server->parked_count -= answered;
        tether_metric_gauge_add(server->metrics.long_polls_waiting, -(int64_t)answered);
    }
    pthread_mutex_unlock(&server->park_lock);
    return NULL;
}

/* The handler asked to answer later: suspend the connection and hand the
 * request to the waker; when stopping, answer now; over the limit, 503. */
static enum MHD_Result park_request(tether_http_server_t *server,
                                    struct MHD_Connection *connection, request_state_t *state,
                                    tether_http_response_t *response)
{
    tether_http_park_t park = response->park;

    memset(&response->park, 0, sizeof(response->park));
    pthread_mutex_lock(&server->park_lock);
    if (server->closing || server->parked_count >= server->max_parked) {
        bool closing = server->closing;

        pthread_mutex_unlock(&server->park_lock);
        if (closing) {
            if (!park.poll(park.arg, true, response) || response->body == NULL)
                tether_http_respond_error(response, 500, "server_error", "no answer");
        } else {
            tether_warn("http", "%u long polls are waiting already: refused one",
                        server->max_parked);
            tether_http_respond_error(response, 503, "temporarily_unavailable",
                                      "too many clients are waiting; retry in a second");
            response->retry_after = "1";
        }
        park.release(park.arg);
        return send_response(connection, state, response);
    }
    state->connection = connection;
    state->park = park;
    clock_gettime(CLOCK_MONOTONIC, &state->deadline);
    tether_http_timespec_add_ms(&state->deadline, park.timeout_ms);
    /* Suspended under park_lock: the waker cannot see (and resume) the
     * request before it is suspended. */
    MHD_suspend_connection(connection);
    state->park_next = server->parked;
    server->parked = state;
    server->parked_count++;
    tether_metric_gauge_add(server->metrics.long_polls_waiting, 1);
    server->wakeups++; /* a first poll at once closes the race with a wake-up just before */
    pthread_cond_broadcast(&server->park_cond);
    pthread_mutex_unlock(&server->park_lock);
    return MHD_YES;
}

static void peer_address(struct MHD_Connection *connection, char *out, size_t out_size);

/* tether_http_header_fn over the request's libmicrohttpd connection. */
static const char *connection_header(const tether_http_request_t *request, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)request->header_ctx,
                                       MHD_HEADER_KIND, name);
}

static enum MHD_Result dispatch(tether_http_server_t *server, struct MHD_Connection *connection,
                                request_state_t *state)
{
    tether_http_request_t *request = &state->request;
    tether_http_response_t response;
    enum MHD_Result ret;

    request->authorization =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    request->content_type =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    request->header = connection_header;
    request->header_ctx = connection;
    request->body = state->body;
    request->body_len = state->body_len;
    peer_address(connection, state->remote, sizeof(state->remote));
    request->remote = state->remote;
    memset(&response, 0, sizeof(response));
    server->handler(server->handler_arg, request, &response);
    state->route = response.route;
    if (response.park.poll != NULL && response.park.release != NULL && response.body == NULL)
        ret = park_request(server, connection, state, &response);
    else
        ret = send_response(connection, state, &response);
    tether_http_response_clear(&response);
    free_body(state);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    tether_http_server_t *server = cls;
    request_state_t *state = *con_cls;

    (void)version;
    if (state != NULL && state->answered) {
        /* Resumed by the waker: send what it prepared. */
        enum MHD_Result ret = send_response(connection, state, &state->parked_response);

        state->answered = false;
        tether_http_response_clear(&state->parked_response);
        return ret;
    }
    if (state == NULL)
        return MHD_NO; /* out of memory in on_request_line */
    if (!state->head_seen)
        return start_request(server, connection, state, url, method);
    if (state->status != 0) {
        *upload_data_size = 0; /* already answered on the first call: drop the body */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        append_body(server, state, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (state->too_large)
        return send_error(connection, state, 413, "payload_too_large",
                          "the request body exceeds the server's limit");
    return dispatch(server, connection, state);
}

static void peer_address(struct MHD_Connection *connection, char *out, size_t out_size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info != NULL ? info->client_addr : NULL;

    snprintf(out, out_size, "-");
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)out_size);
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)out_size);
}

/* One answered request in the metrics: by route and status class. */
static void observe_request(tether_http_server_t *server, const request_state_t *state,
                            long long micros)
{
    static const char *const classes[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    const char *route = state->route != NULL ? state->route : "unmatched";
    unsigned class = state->status / 100;

    if (server->metrics.requests == NULL)
        return;
    tether_metric_add(tether_metric_series(server->metrics.requests, route,
                                           classes[class <= 5 ? class : 0]),
                      1);
    tether_metric_observe(tether_metric_series(server->metrics.duration, route, NULL),
                          (double)micros / 1e6);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    tether_http_server_t *server = cls;
    request_state_t *state = *con_cls;
    tether_http_watched_t *watched = watched_of(connection);
    struct timespec end;
    char peer[INET6_ADDRSTRLEN];
    long long micros;

    if (watched != NULL)
        tether_http_reaper_request_done(server->reaper, watched);
    if (state == NULL)
        return;
    if (state->counted)
        atomic_fetch_sub(&server->resumed, 1u);
    clock_gettime(CLOCK_MONOTONIC, &end);
    micros = (long long)(end.tv_sec - state->start.tv_sec) * 1000000LL +
             (end.tv_nsec - state->start.tv_nsec) / 1000;
    observe_request(server, state, micros);
    peer_address(connection, peer, sizeof(peer));
    tether_info("http", "method=%s path=%s status=%u duration_ms=%lld.%03lld remote=%s%s",
                state->method, state->path, state->status, micros / 1000, micros % 1000, peer,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " incomplete=1");
    free_body(state);
    tether_http_response_clear(&state->parked_response);
    tether_wipe(state, sizeof(*state));
    free(state);
    *con_cls = NULL;
}

/* ---- TLS session tickets ---- */

struct tether_http_tickets {
    gnutls_datum_t key; /* gnutls_session_ticket_key_generate's; wiped at free */
    unsigned seconds;
};

static tether_status_t tickets_open(tether_http_server_t *server, unsigned seconds)
{
    int ret;

    if ((server->tickets = calloc(1, sizeof(*server->tickets))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    server->tickets->seconds = seconds;
    if ((ret = gnutls_session_ticket_key_generate(&server->tickets->key)) < 0) {
        tether_error("http", "cannot make the TLS session ticket key: %s", gnutls_strerror(ret));
        return TETHER_ERR_CRYPTO;
    }
    return TETHER_OK;
}

static void tickets_free(struct tether_http_tickets *tickets)
{
    if (tickets == NULL)
        return;
    if (tickets->key.data != NULL) {
        gnutls_memset(tickets->key.data, 0, tickets->key.size);
        gnutls_free(tickets->key.data);
    }
    free(tickets);
}

/* Before the connection's handshake (libmicrohttpd made its session and
 * runs the handshake later, on the connection's first events): session
 * tickets, and the read-ahead under GnuTLS's reads (http_tls_input.h; GnuTLS
 * still writes to the descriptor itself). Without either the connection
 * works as it would have: a full handshake, a read per record piece. */
static void tls_setup(tether_http_server_t *server, struct MHD_Connection *connection,
                      tether_http_watched_t *watched, int fd)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t session;

    if (info == NULL || (session = info->tls_session) == NULL)
        return;
    if (server->tickets != NULL &&
        gnutls_session_ticket_enable_server(session, &server->tickets->key) == 0)
        gnutls_db_set_cache_expiration(session, (int)server->tickets->seconds);
    if ((watched->tls_input = malloc(sizeof(*watched->tls_input))) == NULL)
        return;
    tether_http_tls_input_init(watched->tls_input, fd);
    gnutls_transport_set_ptr2(session, watched->tls_input, (gnutls_transport_ptr_t)(intptr_t)fd);
    gnutls_transport_set_pull_function(session, tether_http_tls_input_pull);
    gnutls_transport_set_pull_timeout_function(session, tether_http_tls_input_pull_timeout);
}

/* libmicrohttpd's connection callback: every accepted connection is
 * held to its source's share and watched for its head deadline until it
 * closes (before its descriptor is closed). */
static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    tether_http_server_t *server = cls;
    const union MHD_ConnectionInfo *info;
    int fd;
    tether_http_source_t source;
    tether_http_watched_t *watched = NULL;
    tether_status_t rc;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        watched = *socket_context;
        if (watched != NULL) {
            tether_metric_gauge_add(server->metrics.connections_open, -1);
            /* libmicrohttpd reads nothing more: it ends the TLS session next. */
            free(watched->tls_input);
        }
        tether_http_reaper_forget(server->reaper, watched);
        *socket_context = NULL;
        return;
    }
    *socket_context = NULL;
    info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL)
        return;
    fd = info->connect_fd;
    info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    tether_http_source_from(info != NULL ? info->client_addr : NULL, &source);
    rc = tether_http_reaper_watch(server->reaper, fd, &source, &watched);
    if (rc == TETHER_OK) {
        *socket_context = watched;
        tether_metric_gauge_add(server->metrics.connections_open, 1);
        tls_setup(server, connection, watched, fd);
        return;
    }
    /* Over its source's share (counted by the reaper), or unwatched and
     * so able to stay open for good: refused. */
    if (rc == TETHER_ERR_NO_MEMORY)
        tether_warn("http", "out of memory: refused a connection");
    (void)shutdown(fd, SHUT_RDWR);
}

static void log_mhd(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    char message[256];
    size_t len;

    (void)cls;
    vsnprintf(message, sizeof(message), fmt, ap);
    len = strlen(message);
    while (len > 0 && message[len - 1] == '\n')
        message[--len] = '\0';
    tether_warn("http", "%s", message);
}

static tether_status_t bind_address(const tether_http_server_options_t *opts,
                                     struct sockaddr_storage *addr)
{
    memset(addr, 0, sizeof(*addr));
    if (opts->ipv6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(opts->port);
        return inet_pton(AF_INET6, opts->host, &in6->sin6_addr) == 1 ? TETHER_OK : TETHER_ERR_PARSE;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(opts->port);
    return inet_pton(AF_INET, opts->host, &in4->sin_addr) == 1 ? TETHER_OK : TETHER_ERR_PARSE;
}

tether_status_t tether_http_server_open(tether_http_server_t *server,
                                        const tether_http_server_options_t *opts)
{
    struct sockaddr_storage addr;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_TLS |
                         MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    tether_status_t rc;

    /* TLS with both a certificate and a key; plain HTTP with neither. */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)opts->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)opts->key_pem},
        {MHD_OPTION_END, 0, NULL},
    };

    if (server == NULL || opts == NULL || opts->handler == NULL ||
        (opts->cert_pem == NULL) != (opts->key_pem == NULL) || opts->max_body_bytes == 0 || opts->threads == 0 ||
        opts->max_connections == 0 || opts->max_connections_per_source == 0 ||
        opts->request_head_timeout_seconds == 0 || server->park_ready || server->reaper != NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = bind_address(opts, &addr)) != TETHER_OK ||
        (rc = tether_http_fd_limit_check(opts->max_connections)) != TETHER_OK)
        return rc;
    if (opts->metrics != NULL &&
        (rc = tether_http_server_metrics_add(opts->metrics, &server->metrics)) != TETHER_OK)
        return rc;
    if ((server->reaper = malloc(sizeof(*server->reaper))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    tether_http_reaper_init(server->reaper);
    server->reaper->refused_per_source = server->metrics.refused_per_source;
    server->reaper->closed_head_deadline = server->metrics.closed_head_deadline;
    if ((rc = tether_http_reaper_open(server->reaper, opts->request_head_timeout_seconds * 1000u,
                                      opts->max_connections_per_source)) != TETHER_OK)
        return rc;
    if (opts->ipv6)
        flags |= MHD_USE_IPv6;
    if (opts->cert_pem == NULL) {
        flags &= ~(unsigned int)MHD_USE_TLS;
        tls[0].option = MHD_OPTION_END;
    } else if (opts->session_ticket_seconds > 0 &&
               (rc = tickets_open(server, opts->session_ticket_seconds)) != TETHER_OK) {
        return rc;
    }
    server->max_body_bytes = opts->max_body_bytes;
    server->max_requests_per_connection = opts->max_requests_per_connection;
    server->handler = opts->handler;
    server->handler_arg = opts->handler_arg;
    server->max_parked = opts->max_parked;
    if ((rc = tether_http_lock_init(&server->park_lock, &server->park_cond)) != TETHER_OK)
        return rc;
    server->park_ready = true;
    if (pthread_create(&server->waker, NULL, waker_main, server) != 0) {
        tether_error("http", "cannot start the long-poll thread");
        return TETHER_ERR_NO_MEMORY;
    }
    server->waker_running = true;
    server->daemon = MHD_start_daemon(
        flags, opts->port, NULL, NULL, on_request, server,
        MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, /* first, so every message goes through it */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)opts->threads,
        /* The per-source share is the reaper's (counted), not libmicrohttpd's. */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)opts->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)opts->connection_timeout_seconds,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TETHER_HTTP_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, server,
        MHD_OPTION_URI_LOG_CALLBACK, on_request_line, server,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
        MHD_OPTION_END);
    if (server->daemon == NULL) {
        tether_error("http", "cannot serve %s on %s port %u (address in use, or a bad "
                             "certificate or key?)", opts->cert_pem != NULL ? "HTTPS" : "HTTP",
                     opts->host, (unsigned)opts->port);
        return TETHER_ERR_IO;
    }
    return TETHER_OK;
}

void tether_http_server_wake(tether_http_server_t *server)
{
    if (server == NULL || !server->park_ready)
        return;
    pthread_mutex_lock(&server->park_lock);
    server->wakeups++;
    pthread_cond_broadcast(&server->park_cond);
    pthread_mutex_unlock(&server->park_lock);
}

void tether_http_server_free(tether_http_server_t *server)
{
    request_state_t *batch = NULL;
    unsigned answered = 0;

    if (server == NULL)
        return;
    if (server->park_ready) {
        /* Nothing is parked from here on; the waker hands back its batch
         * and ends, then every parked request gets its final answer and is
         * resumed, so that libmicrohttpd finds none suspended. */
        pthread_mutex_lock(&server->park_lock);
        server->closing = true;
        pthread_cond_broadcast(&server->park_cond);
        pthread_mutex_unlock(&server->park_lock);
        if (server->waker_running)
            pthread_join(server->waker, NULL);
        pthread_mutex_lock(&server->park_lock);
        batch = server->parked;
        server->parked = NULL;
        pthread_mutex_unlock(&server->park_lock);
        (void)poll_parked(server, batch, true, &answered);
        /* Streams end cut short; their connections are resumed to say so. */
        tether_http_stream_stop_all(server, DRAIN_MS);
        /* Let the answers go out before the connections are closed. */
        for (unsigned waited = 0; atomic_load(&server->resumed) > 0 && waited < DRAIN_MS;
             waited += 10) {
            struct timespec tick = {0, 10 * 1000000L};
            nanosleep(&tick, NULL);
        }
    }
    if (server->daemon != NULL)
        MHD_stop_daemon(server->daemon);
    /* After the daemon: it closes (and forgets) every connection first. */
    tether_http_reaper_free(server->reaper);
    free(server->reaper);
    tickets_free(server->tickets);
    if (server->park_ready) {
        pthread_cond_destroy(&server->park_cond);
        pthread_mutex_destroy(&server->park_lock);
    }
    tether_wipe(server, sizeof(*server));
}
