/* The periodic usage_unreported check and the retention purge (usage_check.h). */
#include "usage_check.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "tether/log.h"

void tether_usage_check_init(tether_usage_check_t *check)
{
    pthread_condattr_t attr;

    memset(check, 0, sizeof(*check));
    pthread_mutex_init(&check->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&check->wake, &attr);
    pthread_condattr_destroy(&attr);
}

static void run_check(tether_usage_check_t *check)
{
    size_t alerted = 0;
    tether_status_t rc;

    rc = tether_store_usage_unreported_check(check->store, (int64_t)time(NULL), check->grace,
                                             &alerted);
    if (rc != TETHER_OK)
        tether_error("usage", "usage_unreported check failed: %s", tether_strerror(rc));
    else if (alerted > 0)
        tether_warn("usage", "usage_unreported: %zu token(s) used at gateways whose device "
                             "stopped exchanging before they expired (alerted)", alerted);
}

/* Waits ms or until the check stops (check->lock held); whether it
 * stopped. */
static bool pause_or_stop(tether_usage_check_t *check, unsigned ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!check->stopping &&
           pthread_cond_timedwait(&check->wake, &check->lock, &until) != ETIMEDOUT)
        ;
    return check->stopping;
}

static int64_t monotonic_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec;
}

/* Purges batch after batch while a batch was full, pausing between two so
 * that the store's writers (exchanges) get their turns, for at most
 * TETHER_USAGE_CHECK_SECONDS: a backlog does not hold up the next check.
 * Whether the pass ended with rows left past their retention. Called and
 * returning with check->lock held. */
static bool run_purge(tether_usage_check_t *check)
{
    uint64_t total[TETHER_STORE_PURGE_TABLES] = {0};
    uint64_t purged[TETHER_STORE_PURGE_TABLES];
    int64_t until = monotonic_seconds() + TETHER_USAGE_CHECK_SECONDS;
    tether_store_purge_t batch;
    tether_status_t rc;
    bool more = false;

    do {
        pthread_mutex_unlock(&check->lock);
        tether_retention_batch(&check->retention, (int64_t)time(NULL), check->grace, &batch);
        rc = tether_store_purge(check->store, &batch, purged);
        pthread_mutex_lock(&check->lock);
        if (rc != TETHER_OK) {
            tether_error("retention", "purge failed (tried again after the next check): %s",
                         tether_strerror(rc));
            more = false;
            break;
        }
        for (int t = 0; t < TETHER_STORE_PURGE_TABLES; t++) {
            total[t] += purged[t];
            if (purged[t] > 0)
                tether_metric_add(
                    tether_metric_series(check->purged_rows, tether_store_purge_table_name(
                                                                 (tether_store_purge_table_t)t),
                                         NULL),
                    purged[t]);
        }
        more = tether_retention_more(&check->retention, purged);
    } while (more && monotonic_seconds() < until &&
             !pause_or_stop(check, check->retention.pause_ms));
    if (total[TETHER_STORE_PURGE_ISSUED_TOKENS] + total[TETHER_STORE_PURGE_TOKEN_USAGE] +
            total[TETHER_STORE_PURGE_ALERTS] > 0)
        tether_debug("retention", "purged %llu issued tokens (%llu device counts, %llu usage "
                                  "alerts), %llu token usage rows, %llu alerts",
                     (unsigned long long)total[TETHER_STORE_PURGE_ISSUED_TOKENS],
                     (unsigned long long)total[TETHER_STORE_PURGE_DEVICE_USAGE],
                     (unsigned long long)total[TETHER_STORE_PURGE_USAGE_ALERTS],
                     (unsigned long long)total[TETHER_STORE_PURGE_TOKEN_USAGE],
                     (unsigned long long)total[TETHER_STORE_PURGE_ALERTS]);
    return more;
}

static void *check_main(void *arg)
{
    tether_usage_check_t *check = arg;
    bool backlog = false; /* the last purge pass ended with rows left */

    pthread_mutex_lock(&check->lock);
    /* After a pass cut short, the next check and pass come at once. */
    while (backlog ? !check->stopping
                   : !pause_or_stop(check, TETHER_USAGE_CHECK_SECONDS * 1000)) {
        pthread_mutex_unlock(&check->lock);
        run_check(check);
        pthread_mutex_lock(&check->lock);
        backlog = !check->stopping && run_purge(check);
    }
    pthread_mutex_unlock(&check->lock);
    return NULL;
}

tether_status_t tether_usage_check_start(tether_usage_check_t *check, tether_store_t *store,
                                         int64_t grace, const tether_retention_t *retention,
                                         tether_metric_t *purged_rows)
{
    if (retention == NULL || retention->batch == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    check->store = store;
    check->grace = grace;
    check->retention = *retention;
    check->purged_rows = purged_rows;
    if (pthread_create(&check->thread, NULL, check_main, check) != 0)
        return TETHER_ERR_IO;
    check->running = true;
    return TETHER_OK;
}

void tether_usage_check_free(tether_usage_check_t *check)
{
    if (check->running) {
        pthread_mutex_lock(&check->lock);
        check->stopping = true;
        pthread_cond_signal(&check->wake);
        pthread_mutex_unlock(&check->lock);
        pthread_join(check->thread, NULL);
    }
    pthread_cond_destroy(&check->wake);
    pthread_mutex_destroy(&check->lock);
    memset(check, 0, sizeof(*check));
}
