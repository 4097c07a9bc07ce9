/*
 * tether-gate's stage after authorization: a request from a verified device
 * goes through its ceilings (tether/gate/policy.h) to the upstream
 * (tether/gate/upstream.h) and back, usage settled.
 *
 *   POST /v1/chat/completions, /v1/completions, /v1/embeddings: the body is
 *     inspected (tether/gate/openai_request.h), the worst case reserved,
 *     the rewritten body forwarded; a JSON answer is passed back whole
 *     (bounded), a stream chunk by chunk as it arrives (tether/http_stream.h).
 *     A 2xx answer settles the reservation with its usage, or with the
 *     worst case when it reports none or the stream was cut; any other
 *     answer, or a failure before upstream answered, releases it.
 *   GET /v1/models: the upstream's list, keeping the models this device may
 *     use (the token's list and the policy's).
 *
 * Answers it makes itself are JSON errors {"error", "error_description"}:
 * 400 invalid_request, 403 model_not_allowed / model_not_priced, 429
 * rate_limited / token_limit_reached / spend_limit_reached with
 * Retry-After, 404, 405, 502 upstream_unavailable, 503 upstream_busy.
 *
 * A JSON answer holds the server's thread until upstream has answered; a
 * stream holds it until upstream's head is in, then runs on a thread of its
 * own (one per stream, at most the upstream's max_transfers).
 */
#ifndef TETHER_GATE_PROXY_H
#define TETHER_GATE_PROXY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tether/error.h"
#include "tether/gate/policy.h"
#include "tether/gate/upstream.h"
#include "tether/http_handler.h"

/* Who is asking, as authorization verified it; lives for the call. */
typedef struct tether_gate_caller {
    const char *device;
    const char *jti;           /* the access token's jti: usage per token; may be NULL */
    const char *const *models; /* the token's tether.models claim */
    size_t model_count;
} tether_gate_caller_t;

/* What one forwarded request came to, for the usage log and reports: never
 * prompt text, never a token. Pointers live for the callback only. */
typedef struct tether_gate_outcome {
    const char *device;
    const char *jti;         /* NULL when the caller gave none */
    const char *model;       /* NULL when the body could not be read */
    const char *path;
    unsigned status;         /* what the client was answered */
    const char *code;        /* static: why the gateway refused or failed; NULL otherwise */
    double seconds;          /* from the stage's start to the answer's end */
    bool stream;
    bool settled;            /* charged (false: released, nothing charged) */
    bool usage_reported;     /* upstream reported the usage (false: worst case charged) */
    uint64_t prompt_tokens;  /* charged */
    uint64_t completion_tokens;
    uint64_t cost;           /* micro-units */
    bool overrun;            /* the usage cost more than was reserved */
} tether_gate_outcome_t;

typedef void (*tether_gate_outcome_fn)(void *arg, const tether_gate_outcome_t *outcome);

typedef struct tether_gate_proxy_options {
    tether_gate_upstream_t *upstream; /* opened; outlives the proxy */
    tether_gate_policy_t *policy;     /* opened; outlives the proxy */
    size_t stream_queue_bytes;        /* per stream, between upstream and client; > 0 */
    tether_gate_outcome_fn on_outcome; /* may be NULL; called from any thread */
    void *outcome_arg;
} tether_gate_proxy_options_t;

typedef struct tether_gate_proxy {
    tether_gate_proxy_options_t opts;
    pthread_mutex_t lock;
    pthread_cond_t idle; /* a stream ended */
    unsigned streams;    /* stream threads running */
    bool lock_ready;
} tether_gate_proxy_t;

void tether_gate_proxy_init(tether_gate_proxy_t *proxy);
TETHER_MUST_CHECK tether_status_t tether_gate_proxy_open(tether_gate_proxy_t *proxy,
                                                         const tether_gate_proxy_options_t *opts);
/* Waits for the running streams to end; accepts NULL. Stop the HTTP
 * server first, so that every stream's client side is gone. */
void tether_gate_proxy_free(tether_gate_proxy_t *proxy);

/* Reads an upstream's GET /models answer ({"data": [{"id": ...}, ...]})
 * and keeps in data the entries whose id the policy and the token's model
 * globs both allow. Pure: *out (NULL first; freed by the caller) is the
 * answer with data filtered. TETHER_ERR_PARSE for an answer of another
 * shape, TETHER_ERR_NO_MEMORY. */
TETHER_MUST_CHECK tether_status_t tether_gate_models_filter(const tether_gate_policy_t *policy,
                                                            const char *const *token_models,
                                                            size_t token_model_count,
                                                            const char *answer, size_t answer_len,
                                                            cJSON **out);

/* The stage itself; from the server's threads. */
void tether_gate_proxy_handle(tether_gate_proxy_t *proxy, const tether_gate_caller_t *who,
                              const tether_http_request_t *request,
                              tether_http_response_t *response);

#endif
