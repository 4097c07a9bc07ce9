/* The periodic usage_unreported check (usage_check.h). */
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

static void *check_main(void *arg)
{
    tether_usage_check_t *check = arg;
    struct timespec until;

    pthread_mutex_lock(&check->lock);
    while (!check->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += TETHER_USAGE_CHECK_SECONDS;
        while (!check->stopping &&
               pthread_cond_timedwait(&check->wake, &check->lock, &until) != ETIMEDOUT)
            ;
        if (check->stopping)
            break;
        pthread_mutex_unlock(&check->lock);
        run_check(check);
        pthread_mutex_lock(&check->lock);
    }
    pthread_mutex_unlock(&check->lock);
    return NULL;
}

tether_status_t tether_usage_check_start(tether_usage_check_t *check, tether_store_t *store,
                                         int64_t grace)
{
    check->store = store;
    check->grace = grace;
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
