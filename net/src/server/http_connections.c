#include "http_connections.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "tether/log.h"

#define SWEEP_INTERVAL_MS 250 /* how late past its deadline a connection may be closed */

void tether_http_timespec_add_ms(struct timespec *t, unsigned ms)
{
    t->tv_sec += (time_t)(ms / 1000);
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

bool tether_http_timespec_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

tether_status_t tether_http_lock_init(pthread_mutex_t *lock, pthread_cond_t *cond)
{
    pthread_condattr_t cond_attr;
    tether_status_t rc = TETHER_ERR_NO_MEMORY;

    if (pthread_condattr_init(&cond_attr) != 0)
        return TETHER_ERR_NO_MEMORY;
    if (pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(cond, &cond_attr) != 0)
        goto out;
    if (pthread_mutex_init(lock, NULL) != 0) {
        pthread_cond_destroy(cond);
        goto out;
    }
    rc = TETHER_OK;
out:
    pthread_condattr_destroy(&cond_attr);
    return rc;
}

tether_status_t tether_http_fd_limit_check(unsigned max_connections)
{
    rlim_t needed = (rlim_t)max_connections + TETHER_HTTP_FD_RESERVE;
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        tether_error("http", "cannot read the open-file limit: %s", strerror(errno));
        return TETHER_ERR_IO;
    }
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
        if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
            tether_error("http",
                         "%u connections need %llu open files but the process may open only "
                         "%llu: lower max_connections or raise the limit (ulimit -n, "
                         "LimitNOFILE= in a systemd unit)",
                         max_connections, (unsigned long long)needed,
                         (unsigned long long)limit.rlim_max);
            return TETHER_ERR_INVALID_ARGUMENT;
        }
        limit.rlim_cur = needed;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            tether_error("http", "cannot raise the open-file limit to %llu: %s",
                         (unsigned long long)needed, strerror(errno));
            return TETHER_ERR_IO;
        }
    }
    return TETHER_OK;
}

void tether_http_reaper_init(tether_http_reaper_t *reaper)
{
    if (reaper != NULL)
        memset(reaper, 0, sizeof(*reaper));
}

static void *reaper_main(void *arg)
{
    tether_http_reaper_t *reaper = arg;
    struct timespec now, until;

    pthread_mutex_lock(&reaper->lock);
    while (!reaper->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        tether_http_timespec_add_ms(&until, SWEEP_INTERVAL_MS);
        if (pthread_cond_timedwait(&reaper->cond, &reaper->lock, &until) != ETIMEDOUT)
            continue; /* the stop, or a spurious wake-up: look again */
        pthread_mutex_unlock(&reaper->lock);
        clock_gettime(CLOCK_MONOTONIC, &now);
        (void)tether_http_reaper_sweep(reaper, &now);
        pthread_mutex_lock(&reaper->lock);
    }
    pthread_mutex_unlock(&reaper->lock);
    return NULL;
}

tether_status_t tether_http_reaper_open(tether_http_reaper_t *reaper, unsigned head_timeout_ms,
                                        unsigned max_per_source)
{
    tether_status_t rc;

    if (reaper == NULL || head_timeout_ms == 0 || max_per_source == 0 || reaper->ready)
        return TETHER_ERR_INVALID_ARGUMENT;
    reaper->head_timeout_ms = head_timeout_ms;
    reaper->max_per_source = max_per_source;
    if ((rc = tether_http_lock_init(&reaper->lock, &reaper->cond)) != TETHER_OK)
        return rc;
    reaper->ready = true;
    if (pthread_create(&reaper->thread, NULL, reaper_main, reaper) != 0) {
        tether_error("http", "cannot start the request-deadline thread");
        return TETHER_ERR_NO_MEMORY;
    }
    reaper->running = true;
    return TETHER_OK;
}

void tether_http_source_from(const struct sockaddr *sa, tether_http_source_t *source)
{
    memset(source, 0, sizeof(*source));
    if (sa != NULL && sa->sa_family == AF_INET) {
        source->family = AF_INET;
        memcpy(source->address, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        source->family = AF_INET6;
        memcpy(source->address, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    }
}

static bool same_source(const tether_http_source_t *a, const tether_http_source_t *b)
{
    return a->family != 0 && a->family == b->family &&
           memcmp(a->address, b->address, sizeof(a->address)) == 0;
}

tether_status_t tether_http_reaper_watch(tether_http_reaper_t *reaper, int fd,
                                         const tether_http_source_t *source,
                                         tether_http_watched_t **watched)
{
    tether_http_watched_t *entry;
    unsigned held = 0;
    tether_status_t rc = TETHER_OK;

    *watched = NULL;
    if ((entry = calloc(1, sizeof(*entry))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    entry->fd = fd;
    if (source != NULL)
        entry->source = *source;
    clock_gettime(CLOCK_MONOTONIC, &entry->deadline);
    tether_http_timespec_add_ms(&entry->deadline, reaper->head_timeout_ms);
    /* Counted and added under one lock: two connections from one source
     * accepted at once by two threads cannot both take the last place. */
    pthread_mutex_lock(&reaper->lock);
    for (const tether_http_watched_t *w = reaper->watched; w != NULL; w = w->next)
        if (same_source(&w->source, &entry->source))
            held++;
    if (held >= reaper->max_per_source) {
        rc = TETHER_ERR_TOO_LARGE;
    } else {
        entry->next = reaper->watched;
        if (reaper->watched != NULL)
            reaper->watched->prev = entry;
        reaper->watched = entry;
    }
    pthread_mutex_unlock(&reaper->lock);
    if (rc != TETHER_OK) {
        tether_metric_add(reaper->refused_per_source, 1);
        free(entry);
        return rc;
    }
    *watched = entry;
    return TETHER_OK;
}

unsigned tether_http_reaper_head_received(tether_http_reaper_t *reaper,
                                          tether_http_watched_t *watched)
{
    unsigned requests;

    pthread_mutex_lock(&reaper->lock);
    watched->in_request = true;
    requests = ++watched->requests;
    pthread_mutex_unlock(&reaper->lock);
    return requests;
}

void tether_http_reaper_request_done(tether_http_reaper_t *reaper,
                                     tether_http_watched_t *watched)
{
    struct timespec deadline;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    tether_http_timespec_add_ms(&deadline, reaper->head_timeout_ms);
    pthread_mutex_lock(&reaper->lock);
    watched->deadline = deadline;
    watched->in_request = false;
    watched->served = true;
    pthread_mutex_unlock(&reaper->lock);
}

void tether_http_reaper_forget(tether_http_reaper_t *reaper, tether_http_watched_t *watched)
{
    if (watched == NULL)
        return;
    pthread_mutex_lock(&reaper->lock);
    if (watched->prev != NULL)
        watched->prev->next = watched->next;
    else
        reaper->watched = watched->next;
    if (watched->next != NULL)
        watched->next->prev = watched->prev;
    pthread_mutex_unlock(&reaper->lock);
    free(watched);
}

unsigned tether_http_reaper_sweep(tether_http_reaper_t *reaper, const struct timespec *now)
{
    unsigned closed = 0, stalled = 0;

    pthread_mutex_lock(&reaper->lock);
    for (tether_http_watched_t *w = reaper->watched; w != NULL; w = w->next) {
        if (w->in_request || w->reaped || tether_http_timespec_before(now, &w->deadline))
            continue;
        /* Under the lock: forget() has not run, so fd is still this
         * connection's. libmicrohttpd then reads end of stream and closes. */
        (void)shutdown(w->fd, SHUT_RDWR);
        w->reaped = true;
        closed++;
        if (!w->served)
            stalled++;
    }
    pthread_mutex_unlock(&reaper->lock);
    tether_metric_add(reaper->closed_head_deadline, stalled);
    if (stalled > 0)
        tether_warn("http", "closed %u connection(s) that sent no complete request head within "
                            "%u ms", stalled, reaper->head_timeout_ms);
    return closed;
}

void tether_http_reaper_free(tether_http_reaper_t *reaper)
{
    tether_http_watched_t *next;

    if (reaper == NULL || !reaper->ready)
        return;
    if (reaper->running) {
        pthread_mutex_lock(&reaper->lock);
        reaper->stopping = true;
        pthread_cond_broadcast(&reaper->cond);
        pthread_mutex_unlock(&reaper->lock);
        pthread_join(reaper->thread, NULL);
    }
    for (tether_http_watched_t *w = reaper->watched; w != NULL; w = next) {
        next = w->next;
        free(w);
    }
    pthread_cond_destroy(&reaper->cond);
    pthread_mutex_destroy(&reaper->lock);
    memset(reaper, 0, sizeof(*reaper));
}
