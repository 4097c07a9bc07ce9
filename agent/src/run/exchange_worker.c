#include "exchange_worker.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tether/bytes.h"

void tether_exchange_worker_init(tether_exchange_worker_t *w)
{
    memset(w, 0, sizeof(*w));
    w->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    w->wake = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    w->event_fd = -1;
}

static bool stop_requested(void *arg)
{
    tether_exchange_worker_t *w = arg;
    bool stop;

    pthread_mutex_lock(&w->lock);
    stop = w->stopping;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

/* One refresh into the worker's own buffer, over its next challenge when
 * one is held; the token request is not sent when the agent is stopping by
 * the time the evidence is ready. */
static void run_exchange(tether_exchange_worker_t *w, const tether_usage_t *usage,
                         tether_exchange_result_t *result)
{
    const tether_exchange_context_t ctx = {.client = w->client,
                                           .tpm = w->tpm,
                                           .tpm_lock = w->tpm_lock,
                                           .state = w->state,
                                           .next = &w->next,
                                           .stopping = stop_requested,
                                           .stopping_arg = w};

    tether_wipe(w->token.data, w->token.size);
    tether_agent_refresh(&ctx, usage, &w->token, result);
}

static void *worker_main(void *arg)
{
    tether_exchange_worker_t *w = arg;
    const uint64_t one = 1;
    ssize_t written;

    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        tether_usage_t usage;
        tether_exchange_result_t result;

        if (!w->pending) {
            pthread_cond_wait(&w->wake, &w->lock);
            continue;
        }
        w->pending = false;
        usage = w->usage;
        pthread_mutex_unlock(&w->lock);

        run_exchange(w, &usage, &result);

        pthread_mutex_lock(&w->lock);
        w->result = result;
        w->done = true;
        /* Cannot fail: the counter holds at most 1 (one request at a
         * time), far from an eventfd's overflow. */
        written = write(w->event_fd, &one, sizeof(one));
        (void)written;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

tether_status_t tether_exchange_worker_start(tether_exchange_worker_t *w,
                                             tether_https_client_t *client, tether_tpm_t *tpm,
                                             pthread_mutex_t *tpm_lock,
                                             const tether_agent_state_t *state,
                                             tether_secure_buffer_t *token, char *why,
                                             size_t why_size)
{
    int err;

    w->client = client;
    w->tpm = tpm;
    w->tpm_lock = tpm_lock;
    w->state = state;
    w->token = *token;
    memset(token, 0, sizeof(*token));
    if ((w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        snprintf(why, why_size, "cannot create the exchange's event fd: %s", strerror(errno));
        return TETHER_ERR_IO;
    }
    if ((err = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
        snprintf(why, why_size, "cannot start the exchange thread: %s", strerror(err));
        return TETHER_ERR_IO;
    }
    w->running = true;
    return TETHER_OK;
}

int tether_exchange_worker_fd(const tether_exchange_worker_t *w)
{
    return w->event_fd;
}

void tether_exchange_worker_request(tether_exchange_worker_t *w, const tether_usage_t *usage)
{
    pthread_mutex_lock(&w->lock);
    w->usage = *usage;
    w->pending = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

bool tether_exchange_worker_collect(tether_exchange_worker_t *w, tether_secure_buffer_t *token,
                                    tether_exchange_result_t *result)
{
    uint64_t count;
    ssize_t got;
    bool collected = false;

    memset(result, 0, sizeof(*result));
    /* Resets the eventfd. Non-blocking: EAGAIN when it was not readable,
     * which changes nothing below, since done says whether a result came. */
    got = read(w->event_fd, &count, sizeof(count));
    (void)got;
    pthread_mutex_lock(&w->lock);
    if (w->done) {
        *result = w->result;
        if (result->outcome == TETHER_EXCHANGE_OK) {
            tether_secure_buffer_t held = *token;
            *token = w->token;
            w->token = held;
        }
        /* The token replaced, or whatever a failed attempt left. */
        tether_wipe(w->token.data, w->token.size);
        tether_wipe(&w->result, sizeof(w->result));
        w->done = false;
        collected = true;
    }
    pthread_mutex_unlock(&w->lock);
    return collected;
}

void tether_exchange_worker_free(tether_exchange_worker_t *w)
{
    if (w == NULL)
        return;
    if (w->running) {
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        w->running = false;
    }
    if (w->event_fd >= 0)
        close(w->event_fd);
    tether_secure_buffer_free(&w->token);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    tether_wipe(w, sizeof(*w));
}
