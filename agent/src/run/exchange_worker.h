/*
 * The agent's exchanges with the fleet, on a thread of their own, so that
 * a fleet that accepts connections and never answers delays no local caller
 * (the run loop keeps serving the token it holds while an exchange waits).
 *
 * One request at a time: the run loop asks (tether_exchange_worker_request),
 * the worker runs tether_agent_exchange's two halves, then makes its event
 * fd readable; the loop collects the outcome (tether_exchange_worker_collect),
 * and a new token moves from the worker's locked buffer into the loop's by
 * swapping the two buffers under the worker's mutex: the token is never
 * copied, and the one it replaces is wiped at once.
 *
 * The worker is the only thread that uses the fleet's HTTPS client while it
 * runs; the TPM it shares with the loop's DPoP signer, each holding
 * tpm_lock around its TPM commands. The loop must not touch the client
 * until tether_exchange_worker_free has returned.
 */
#ifndef TETHER_AGENT_EXCHANGE_WORKER_H
#define TETHER_AGENT_EXCHANGE_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include "exchange.h"

typedef struct tether_exchange_worker {
    /* Set by _start, then only read, by the worker thread. */
    tether_https_client_t *client;
    tether_tpm_t *tpm;
    pthread_mutex_t *tpm_lock; /* held around the exchange's TPM commands */
    const tether_agent_state_t *state;
    /* The worker thread's own: the nonce of the next refresh, from the
     * last token answer (exchange.h). */
    tether_next_challenge_t next;

    pthread_mutex_t lock; /* guards everything below but thread and running */
    pthread_cond_t wake;  /* a request came, or stopping */
    bool pending;         /* a request waits for the worker */
    bool done;            /* a result waits for collection */
    bool stopping;        /* _free asked the thread to end */
    tether_usage_t usage; /* the usage report of the pending request */
    tether_exchange_result_t result;
    /* The worker's while an exchange runs, handed over by _collect. */
    tether_secure_buffer_t token;

    int event_fd; /* eventfd, readable while a result waits; -1 before _start */
    pthread_t thread;
    bool running; /* the thread was created and not yet joined */
} tether_exchange_worker_t;

/* Cannot fail; leaves a worker that _free accepts. */
void tether_exchange_worker_init(tether_exchange_worker_t *w);

/*
 * Starts the thread. client, tpm, tpm_lock and state must stay valid until
 * _free; the caller uses tpm only with tpm_lock held, and leaves client
 * untouched. token is a buffer of at least
 * TETHER_TOKEN_MAX + 1 bytes, allocated like the caller's own token buffer
 * (the two are swapped): the worker owns it from now on, whatever the
 * result. The caller must have blocked the signals it handles (the thread
 * inherits the mask). TETHER_ERR_IO with the reason in why when the event
 * fd or the thread cannot be made.
 */
TETHER_MUST_CHECK tether_status_t tether_exchange_worker_start(tether_exchange_worker_t *w,
                                                               tether_https_client_t *client,
                                                               tether_tpm_t *tpm,
                                                               pthread_mutex_t *tpm_lock,
                                                               const tether_agent_state_t *state,
                                                               tether_secure_buffer_t *token,
                                                               char *why, size_t why_size);

/* The fd to poll for POLLIN: a result waits for _collect. */
int tether_exchange_worker_fd(const tether_exchange_worker_t *w);

/* Asks for one exchange reporting *usage (copied). The worker must be idle:
 * started, and every earlier request's result collected. */
void tether_exchange_worker_request(tether_exchange_worker_t *w, const tether_usage_t *usage);

/*
 * Takes the result of the last request, if it has come (true; false while
 * the exchange still runs). *result is zeroed on entry. On
 * TETHER_EXCHANGE_OK the new token is swapped into *token (a buffer sized
 * as for _start) and the buffer that held the old one is wiped; on any
 * other outcome *token is left as it was.
 */
bool tether_exchange_worker_collect(tether_exchange_worker_t *w, tether_secure_buffer_t *token,
                                    tether_exchange_result_t *result);

/* Stops the thread and waits for it: an exchange under way ends first
 * (within the client's timeouts; the token request is not sent once
 * stopping), its result is wiped unseen. Frees the buffer and wipes the
 * struct; accepts NULL and a worker that was only initialised. */
void tether_exchange_worker_free(tether_exchange_worker_t *w);

#endif
