/* Alert delivery to webhooks (webhook.h). */
#include "webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/md.h>

#include "admin_api.h"
#include "files.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/http_client.h"
#include "tether/https_client.h"
#include "tether/log.h"
#include "tether/transport.h"

#define COMPONENT "webhook"
#define MEDIA_TYPE "application/json"
#define STORE_RETRY_MS 1000u
/* A receiver's answer is not read beyond its status: small bounds. */
#define RESPONSE_MAX_HEADER 16384u
#define RESPONSE_MAX_BODY 65536u

/* ---- pure parts ---- */

tether_status_t tether_webhook_sign(const uint8_t *secret, size_t secret_len, int64_t timestamp,
                                    const char *body, size_t body_len, char *out, size_t out_size)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    uint8_t mac[32];
    char prefix[24];
    char hex[2 * sizeof(mac) + 1];
    mbedtls_md_context_t ctx;
    tether_status_t rc = TETHER_OK;
    int n;

    if (out != NULL && out_size > 0)
        out[0] = '\0';
    if (secret == NULL || secret_len == 0 || (body == NULL && body_len > 0) || out == NULL ||
        timestamp < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", timestamp);
    mbedtls_md_init(&ctx);
    if (md == NULL || mbedtls_md_setup(&ctx, md, 1) != 0 ||
        mbedtls_md_hmac_starts(&ctx, secret, secret_len) != 0 ||
        mbedtls_md_hmac_update(&ctx, (const unsigned char *)prefix, (size_t)n) != 0 ||
        (body_len > 0 &&
         mbedtls_md_hmac_update(&ctx, (const unsigned char *)body, body_len) != 0) ||
        mbedtls_md_hmac_finish(&ctx, mac) != 0)
        rc = TETHER_ERR_CRYPTO;
    if (rc == TETHER_OK)
        rc = tether_hex_encode(mac, sizeof(mac), hex, sizeof(hex));
    if (rc == TETHER_OK) {
        n = snprintf(out, out_size, "t=%" PRId64 ",v1=%s", timestamp, hex);
        if (n < 0 || (size_t)n >= out_size) {
            out[0] = '\0';
            rc = TETHER_ERR_TOO_LARGE;
        }
    }
    mbedtls_md_free(&ctx);
    tether_wipe(mac, sizeof(mac));
    return rc;
}

uint64_t tether_webhook_backoff_ms(unsigned failures)
{
    uint64_t wait = TETHER_WEBHOOK_BACKOFF_FIRST_MS;

    for (unsigned i = 1; i < failures && wait < TETHER_WEBHOOK_BACKOFF_CAP_MS; i++)
        wait *= 2;
    return wait < TETHER_WEBHOOK_BACKOFF_CAP_MS ? wait : TETHER_WEBHOOK_BACKOFF_CAP_MS;
}

tether_status_t tether_webhook_body(const char *webhook, const tether_store_alert_t *alert,
                                    char **body, char id[TETHER_WEBHOOK_DELIVERY_ID_SIZE])
{
    cJSON *json = NULL;
    cJSON *item = NULL;
    tether_status_t rc = TETHER_ERR_NO_MEMORY;
    int n;

    if (body != NULL)
        *body = NULL;
    if (id != NULL)
        id[0] = '\0';
    if (webhook == NULL || alert == NULL || body == NULL || id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(id, TETHER_WEBHOOK_DELIVERY_ID_SIZE, "%s:%" PRId64, webhook, alert->id);
    if (n < 0 || n >= TETHER_WEBHOOK_DELIVERY_ID_SIZE) {
        id[0] = '\0';
        return TETHER_ERR_TOO_LARGE;
    }
    if ((json = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(json, "delivery_id", id) == NULL ||
        cJSON_AddStringToObject(json, "webhook", webhook) == NULL ||
        (item = tether_admin_alert_json(alert)) == NULL)
        goto out;
    cJSON_AddItemToObject(json, "alert", item);
    if ((*body = cJSON_PrintUnformatted(json)) != NULL)
        rc = TETHER_OK;
out:
    cJSON_Delete(json);
    if (rc != TETHER_OK)
        id[0] = '\0';
    return rc;
}

/* ---- one webhook's sender ---- */

typedef struct tether_webhook_worker {
    tether_webhook_sender_t *sender;
    const tether_fleet_webhook_config_t *config;
    tether_store_t *store;
    tether_url_t url;
    char path[TETHER_URL_MAX_PREFIX + 2]; /* the URL's path, "/" when it has none */
    tether_https_client_t https;          /* https webhooks */
    uint8_t secret[TETHER_WEBHOOK_SECRET_MAX];
    size_t secret_len;
    pthread_t thread;
    bool running;
    tether_metric_series_t *delivered, *refused, *failed, *depth, *latency;
    unsigned failures;          /* consecutive failed attempts */
    uint64_t down_since_ms;     /* monotonic: the first of them */
    uint64_t down_logged_ms;    /* monotonic: the last warning about them */
} tether_webhook_worker_t;

/* The delivery at the head of the outbox, copied out of the store's lock. */
typedef struct head {
    tether_status_t rc;
    char *body;
    char id[TETHER_WEBHOOK_DELIVERY_ID_SIZE];
    int64_t alert_id;
    int64_t created_ms;
    const char *webhook;
} head_t;

static void take_head(void *arg, const tether_store_delivery_t *delivery)
{
    head_t *head = arg;

    head->alert_id = delivery->alert.id;
    head->created_ms = delivery->created_ms;
    head->rc = tether_webhook_body(head->webhook, &delivery->alert, &head->body, head->id);
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP connection to the loopback address of url, within s's timeouts. */
static tether_status_t connect_loopback(tether_socket_t *s, const tether_url_t *url, char *why,
                                        size_t why_size)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int error = 0;
    socklen_t error_len = sizeof(error);
    int fd;

    memset(&addr, 0, sizeof(addr));
    if (url->host_type == TETHER_URL_HOST_IPV6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(url->port);
        addr_len = sizeof(*in6);
        error = inet_pton(AF_INET6, url->host, &in6->sin6_addr) == 1 ? 0 : EINVAL;
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;

        in4->sin_family = AF_INET;
        in4->sin_port = htons(url->port);
        addr_len = sizeof(*in4);
        error = inet_pton(AF_INET, url->host, &in4->sin_addr) == 1 ? 0 : EINVAL;
    }
    if (error != 0) {
        snprintf(why, why_size, "%.64s is not an address", url->host);
        return TETHER_ERR_INVALID_ARGUMENT;
    }
    if ((fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        error = errno;
    else if (connect(fd, (const struct sockaddr *)&addr, addr_len) != 0 && errno != EINPROGRESS)
        error = errno;
    else if (tether_socket_wait(fd, POLLOUT, s->deadline_ms, s->io_timeout_ms) != 1)
        error = ETIMEDOUT;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0)
        error = errno;
    if (error != 0) {
        snprintf(why, why_size, "cannot connect to %.80s: %.100s", url->authority,
                 strerror(error));
        if (fd >= 0)
            close(fd);
        return TETHER_ERR_NETWORK;
    }
    s->fd = fd;
    return TETHER_OK;
}

/* One POST of body; *status is the answer's (0 without one), why says
 * what failed when there was none. */
static tether_status_t post(tether_webhook_worker_t *w, const char *body, const char *id,
                            const char *signature, int *status, char *why, size_t why_size)
{
    /* "Name: value" */
    char delivery_header[sizeof(TETHER_WEBHOOK_DELIVERY_HEADER) + 2 +
                         TETHER_WEBHOOK_DELIVERY_ID_SIZE];
    char signature_header[sizeof(TETHER_WEBHOOK_SIGNATURE_HEADER) + 2 +
                          TETHER_WEBHOOK_SIGNATURE_SIZE];
    const char *headers[] = {delivery_header, signature_header, NULL};
    unsigned timeout_ms = w->config->timeout_seconds * 1000u;
    tether_https_response_t resp;
    tether_status_t rc;

    *status = 0;
    snprintf(delivery_header, sizeof(delivery_header), TETHER_WEBHOOK_DELIVERY_HEADER ": %s", id);
    snprintf(signature_header, sizeof(signature_header), TETHER_WEBHOOK_SIGNATURE_HEADER ": %s",
             signature);
    tether_https_response_init(&resp);
    if (w->config->https) {
        rc = tether_https_request(&w->https, "POST", w->path, MEDIA_TYPE, (const uint8_t *)body,
                                  strlen(body), headers, &resp);
        if (rc != TETHER_OK)
            snprintf(why, why_size, "%s", w->https.error);
    } else {
        const tether_http_limits_t limits = {RESPONSE_MAX_HEADER, RESPONSE_MAX_BODY};
        const tether_http_client_request_t req = {
            "POST", w->url.authority, "", w->path, MEDIA_TYPE, (const uint8_t *)body,
            strlen(body), headers, false};
        tether_http_client_failure_t failure;
        tether_socket_t sock;
        tether_transport_t transport;

        tether_socket_init(&sock, timeout_ms, timeout_ms);
        rc = connect_loopback(&sock, &w->url, why, why_size);
        if (rc == TETHER_OK) {
            transport = tether_socket_transport(&sock);
            rc = tether_http_client_exchange(&transport, &req, &limits, &resp, &failure);
            if (rc != TETHER_OK)
                snprintf(why, why_size, "%s", failure.text);
        }
        tether_socket_close(&sock);
    }
    if (rc == TETHER_OK)
        *status = resp.status;
    tether_https_response_free(&resp);
    return rc;
}

static void update_depth(tether_webhook_worker_t *w)
{
    tether_store_webhook_pending_t pending;

    if (tether_store_webhook_pending(w->store, w->config->name, &pending) == TETHER_OK)
        tether_metric_gauge_set(w->depth, (int64_t)pending.count);
}

/* A failed attempt: counted, its claim held through the backoff (no other
 * replica tries it sooner), logged when it starts an outage and then at
 * most every TETHER_WEBHOOK_DOWN_LOG_INTERVAL_MS; the wait before the next. */
static uint64_t attempt_failed(tether_webhook_worker_t *w, const head_t *head, int status,
                               const char *why)
{
    uint64_t now = tether_socket_now_ms();
    uint64_t wait;
    tether_store_webhook_pending_t pending;
    tether_status_t rc;

    tether_metric_add(status != 0 ? w->refused : w->failed, 1);
    if (w->failures++ == 0)
        w->down_since_ms = now;
    wait = tether_webhook_backoff_ms(w->failures);
    rc = tether_store_webhook_retry_at(w->store, w->config->name, head->alert_id,
                                       wall_ms() + (int64_t)wait);
    if (rc != TETHER_OK && rc != TETHER_ERR_NOT_FOUND)
        tether_error(COMPONENT, "%s: cannot hold delivery %s for its retry (%s): another "
                     "replica may try it before the backoff ends", w->config->name, head->id,
                     tether_strerror(rc));
    if (tether_store_webhook_pending(w->store, w->config->name, &pending) != TETHER_OK)
        memset(&pending, 0, sizeof(pending));
    tether_metric_gauge_set(w->depth, (int64_t)pending.count);
    if (w->failures == 1) {
        w->down_logged_ms = now;
        if (status != 0)
            tether_warn(COMPONENT, "%s: delivery %s answered %d; retrying in %" PRIu64
                        " ms, %" PRIu64 " waiting", w->config->name, head->id, status, wait,
                        pending.count);
        else
            tether_warn(COMPONENT, "%s: delivery %s failed: %s; retrying in %" PRIu64
                        " ms, %" PRIu64 " waiting", w->config->name, head->id, why, wait,
                        pending.count);
    } else if (now - w->down_logged_ms >= TETHER_WEBHOOK_DOWN_LOG_INTERVAL_MS) {
        int64_t oldest_age = pending.oldest_ms > 0 ? (wall_ms() - pending.oldest_ms) / 1000 : 0;

        w->down_logged_ms = now;
        tether_warn(COMPONENT,
                    "%s: failing for %" PRIu64 " s (%u attempts): %" PRIu64 " alerts waiting, "
                    "the oldest written %" PRId64 " s ago; they stay in the outbox until the "
                    "webhook answers 2xx",
                    w->config->name, (now - w->down_since_ms) / 1000, w->failures,
                    pending.count, oldest_age);
    }
    return wait;
}

/* Claims the head of the outbox and sends it once; the wait before looking
 * again, and *idle when there was nothing to send (a new alert may end that
 * wait): the outbox was empty, or its head is claimed (another replica is
 * sending it, or a failed attempt's backoff runs). */
static uint64_t deliver_next(tether_webhook_worker_t *w, bool *idle)
{
    const int64_t lease_ms =
        (int64_t)w->config->timeout_seconds * 1000 + TETHER_WEBHOOK_CLAIM_MARGIN_MS;
    head_t head;
    char signature[TETHER_WEBHOOK_SIGNATURE_SIZE];
    char why[256] = "";
    int status = 0;
    uint64_t wait = 0;
    tether_status_t rc;

    memset(&head, 0, sizeof(head));
    head.webhook = w->config->name;
    rc = tether_store_webhook_claim(w->store, w->config->name, wall_ms(), lease_ms, take_head,
                                    &head);
    if (rc == TETHER_ERR_NOT_FOUND)
        tether_metric_gauge_set(w->depth, 0);
    if (rc == TETHER_ERR_NOT_FOUND || rc == TETHER_ERR_CONFLICT) {
        *idle = true;
        return TETHER_WEBHOOK_IDLE_POLL_MS;
    }
    if (rc == TETHER_OK)
        rc = head.rc;
    if (rc == TETHER_OK)
        rc = tether_webhook_sign(w->secret, w->secret_len, (int64_t)time(NULL), head.body,
                                 strlen(head.body), signature, sizeof(signature));
    if (rc != TETHER_OK) {
        tether_error(COMPONENT, "%s: cannot prepare the next delivery: %s", w->config->name,
                     tether_strerror(rc));
        wait = STORE_RETRY_MS;
        goto out;
    }
    rc = post(w, head.body, head.id, signature, &status, why, sizeof(why));
    if (rc != TETHER_OK || status < 200 || status > 299) {
        wait = attempt_failed(w, &head, status, why);
        goto out;
    }
    /* Marked at once: only a crash between the 2xx and this line sends the
     * delivery again (same id), after the claim's lease. */
    rc = tether_store_webhook_delivered(w->store, w->config->name, head.alert_id);
    if (rc != TETHER_OK && rc != TETHER_ERR_NOT_FOUND) {
        tether_error(COMPONENT, "%s: delivery %s answered %d but cannot be marked delivered "
                     "(%s): it will be sent again", w->config->name, head.id, status,
                     tether_strerror(rc));
        wait = STORE_RETRY_MS;
    }
    tether_metric_add(w->delivered, 1);
    tether_metric_observe(w->latency, (double)(wall_ms() - head.created_ms) / 1000.0);
    if (w->failures > 0)
        tether_info(COMPONENT, "%s: delivering again after %u failed attempts over %" PRIu64
                    " s", w->config->name, w->failures,
                    (tether_socket_now_ms() - w->down_since_ms) / 1000);
    w->failures = 0;
    update_depth(w);
out:
    free(head.body);
    return wait;
}

static void *worker_main(void *arg)
{
    tether_webhook_worker_t *w = arg;
    tether_webhook_sender_t *sender = w->sender;

    pthread_mutex_lock(&sender->lock);
    while (!sender->stopping) {
        /* Read before looking: an alert written after the look moves it. */
        uint64_t seen = sender->alerts_written;
        uint64_t wait;
        bool idle = false;
        struct timespec until;

        pthread_mutex_unlock(&sender->lock);
        wait = deliver_next(w, &idle);
        pthread_mutex_lock(&sender->lock);
        if (wait == 0 || sender->stopping)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(wait / 1000);
        until.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        /* Idle: until an alert is written here or the poll is due (other
         * processes' alerts). After a failure: the whole backoff. */
        while (!sender->stopping && !(idle && sender->alerts_written != seen) &&
               pthread_cond_timedwait(&sender->wake, &sender->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&sender->lock);
    return NULL;
}

/* ---- the senders ---- */

void tether_webhook_sender_notify(void *arg)
{
    tether_webhook_sender_t *sender = arg;

    pthread_mutex_lock(&sender->lock);
    sender->alerts_written++;
    pthread_cond_broadcast(&sender->wake);
    pthread_mutex_unlock(&sender->lock);
}

void tether_webhook_sender_init(tether_webhook_sender_t *sender)
{
    pthread_condattr_t attr;

    if (sender == NULL)
        return;
    memset(sender, 0, sizeof(*sender));
    pthread_mutex_init(&sender->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sender->wake, &attr);
    pthread_condattr_destroy(&attr);
}

static const tether_fleet_owned_hints_t secret_hints = {
    " (make it: 'openssl rand -hex 32 > FILE', mode 600, and give the receiver a copy)",
    "give it to the user tether-fleetd runs as (chown)", "chmod 600 it"};

/* The secret file: owned by this user, closed to group and others, 32-256
 * bytes once one final newline is dropped (a key written by `openssl rand
 * -hex 32 > FILE` is its 64 hex characters). */
static tether_status_t load_secret(tether_webhook_worker_t *w, const char *dir)
{
    char path[4096];
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = tether_fleet_path(path, sizeof(path), dir, w->config->secret)) != TETHER_OK ||
        (rc = tether_fleet_check_owned(COMPONENT, path, S_IFREG, 0077, &secret_hints)) !=
            TETHER_OK)
        return rc;
    if ((rc = tether_file_read(path, TETHER_WEBHOOK_SECRET_MAX + 1, &data, &len)) != TETHER_OK) {
        tether_error(COMPONENT, "%s: cannot read the secret %s: %s", w->config->name, path,
                     tether_strerror(rc));
        return rc;
    }
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (len < TETHER_WEBHOOK_SECRET_MIN || len > TETHER_WEBHOOK_SECRET_MAX) {
        tether_error(COMPONENT, "%s: the secret %s must hold %d to %d bytes (e.g. 'openssl "
                     "rand -hex 32 > %s')", w->config->name, path, TETHER_WEBHOOK_SECRET_MIN,
                     TETHER_WEBHOOK_SECRET_MAX, w->config->secret);
        rc = TETHER_ERR_PARSE;
    } else {
        memcpy(w->secret, data, len);
        w->secret_len = len;
    }
    tether_wipe(data, len);
    free(data);
    return rc;
}

/* The URL, the HTTPS client with its CA, the secret and the metrics (none
 * when metrics is NULL). */
static tether_status_t worker_open(tether_webhook_worker_t *w, const char *dir,
                                   tether_fleet_metrics_t *metrics)
{
    char origin[TETHER_URL_MAX_HOST + 20];
    char ca[4096];
    const char *problem = NULL;
    bool https = false;
    tether_status_t rc;

    if ((rc = tether_fleet_config_webhook_url(w->config->url, &w->url, &https, &problem)) !=
        TETHER_OK) {
        tether_error(COMPONENT, "%s: %s", w->config->name, problem);
        return rc;
    }
    snprintf(w->path, sizeof(w->path), "%s", w->url.prefix[0] != '\0' ? w->url.prefix : "/");
    if ((rc = load_secret(w, dir)) != TETHER_OK)
        return rc;
    if (https) {
        unsigned timeout_ms = w->config->timeout_seconds * 1000u;

        w->https.connect_timeout_ms = timeout_ms;
        w->https.io_timeout_ms = timeout_ms;
        w->https.request_timeout_ms = timeout_ms;
        w->https.limits = (tether_http_limits_t){RESPONSE_MAX_HEADER, RESPONSE_MAX_BODY};
        snprintf(origin, sizeof(origin), "https://%s", w->url.authority);
        if ((rc = tether_fleet_path(ca, sizeof(ca), dir, w->config->ca)) != TETHER_OK)
            return rc;
        if ((rc = tether_https_client_setup(&w->https, origin, ca)) != TETHER_OK) {
            tether_error(COMPONENT, "%s: %s", w->config->name, w->https.error);
            return rc;
        }
    }
    if (metrics != NULL) {
        const char *name = w->config->name;

        w->delivered = tether_metric_series(metrics->webhook_deliveries, name, "delivered");
        w->refused = tether_metric_series(metrics->webhook_deliveries, name, "refused");
        w->failed = tether_metric_series(metrics->webhook_deliveries, name, "failed");
        w->depth = tether_metric_series(metrics->webhook_outbox, name, NULL);
        w->latency = tether_metric_series(metrics->webhook_latency, name, NULL);
    }
    return TETHER_OK;
}

static tether_status_t sync_store(const tether_fleet_config_t *config, tether_store_t *store)
{
    const char *names[TETHER_CONFIG_MAX_WEBHOOKS];
    uint64_t dropped = 0;
    tether_status_t rc;

    for (size_t i = 0; i < config->webhook_count; i++)
        names[i] = config->webhooks[i].name;
    rc = tether_store_webhook_sync(store, names, config->webhook_count, (int64_t)time(NULL),
                                   &dropped);
    if (rc != TETHER_OK)
        tether_error(COMPONENT, "cannot record the configured webhooks: %s", tether_strerror(rc));
    else if (dropped > 0)
        tether_warn(COMPONENT, "%" PRIu64 " deliveries to webhooks no longer configured were "
                    "dropped", dropped);
    return rc;
}

tether_status_t tether_webhook_sender_open(tether_webhook_sender_t *sender, const char *dir,
                                           const tether_fleet_config_t *config,
                                           tether_fleet_metrics_t *metrics)
{
    tether_status_t rc = TETHER_OK;

    if (sender == NULL || dir == NULL || config == NULL || sender->workers != NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (config->webhook_count == 0)
        return TETHER_OK;
    if ((sender->workers = calloc(config->webhook_count, sizeof(*sender->workers))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    sender->count = config->webhook_count;
    for (size_t i = 0; i < sender->count; i++)
        tether_https_client_init(&sender->workers[i].https);
    for (size_t i = 0; rc == TETHER_OK && i < sender->count; i++) {
        tether_webhook_worker_t *w = &sender->workers[i];

        w->sender = sender;
        w->config = &config->webhooks[i];
        rc = worker_open(w, dir, metrics);
    }
    return rc;
}

tether_status_t tether_webhook_sender_start(tether_webhook_sender_t *sender, const char *dir,
                                            const tether_fleet_config_t *config,
                                            tether_store_t *store,
                                            tether_fleet_metrics_t *metrics)
{
    tether_status_t rc;

    if (sender == NULL || dir == NULL || config == NULL || store == NULL || metrics == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = sync_store(config, store)) != TETHER_OK ||
        (rc = tether_webhook_sender_open(sender, dir, config, metrics)) != TETHER_OK)
        return rc;
    for (size_t i = 0; rc == TETHER_OK && i < sender->count; i++) {
        tether_webhook_worker_t *w = &sender->workers[i];

        w->store = store;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            rc = TETHER_ERR_NO_MEMORY;
        else
            w->running = true;
    }
    if (rc == TETHER_OK && sender->count > 0)
        tether_info(COMPONENT, "delivering alerts to %zu webhook(s)", sender->count);
    return rc;
}

void tether_webhook_sender_free(tether_webhook_sender_t *sender)
{
    if (sender == NULL)
        return;
    pthread_mutex_lock(&sender->lock);
    sender->stopping = true;
    pthread_cond_broadcast(&sender->wake);
    pthread_mutex_unlock(&sender->lock);
    for (size_t i = 0; i < sender->count; i++) {
        tether_webhook_worker_t *w = &sender->workers[i];

        if (w->running)
            pthread_join(w->thread, NULL);
        tether_https_client_free(&w->https);
    }
    if (sender->workers != NULL)
        tether_wipe(sender->workers, sender->count * sizeof(*sender->workers));
    free(sender->workers);
    pthread_cond_destroy(&sender->wake);
    pthread_mutex_destroy(&sender->lock);
    tether_wipe(sender, sizeof(*sender));
}
