#include "tether/gate/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "tether/bytes.h"
#include "tether/gate/openai_request.h"
#include "tether/gate/sse.h"
#include "tether/gate/usage.h"
#include "tether/http_stream.h"
#include "tether/json_strict.h"
#include "tether/log.h"

#define API_PREFIX "/v1" /* client paths are under it; the upstream URL ends with it */

void tether_gate_proxy_init(tether_gate_proxy_t *proxy)
{
    if (proxy != NULL)
        memset(proxy, 0, sizeof(*proxy));
}

tether_status_t tether_gate_proxy_open(tether_gate_proxy_t *proxy,
                                       const tether_gate_proxy_options_t *opts)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;

    if (proxy == NULL || opts == NULL || proxy->lock_ready || opts->upstream == NULL ||
        opts->policy == NULL || opts->stream_queue_bytes == 0 ||
        opts->stream_queue_bytes > TETHER_HTTP_STREAM_MAX_CAPACITY)
        goto out;
    rc = TETHER_ERR_NO_MEMORY;
    if (pthread_mutex_init(&proxy->lock, NULL) != 0)
        goto out;
    if (pthread_cond_init(&proxy->idle, NULL) != 0) {
        pthread_mutex_destroy(&proxy->lock);
        goto out;
    }
    proxy->opts = *opts;
    proxy->lock_ready = true;
    rc = TETHER_OK;
out:
    return rc;
}

void tether_gate_proxy_free(tether_gate_proxy_t *proxy)
{
    if (proxy == NULL)
        return;
    if (proxy->lock_ready) {
        pthread_mutex_lock(&proxy->lock);
        while (proxy->streams > 0)
            pthread_cond_wait(&proxy->idle, &proxy->lock);
        pthread_mutex_unlock(&proxy->lock);
        pthread_cond_destroy(&proxy->idle);
        pthread_mutex_destroy(&proxy->lock);
    }
    tether_wipe(proxy, sizeof(*proxy));
}

/* Unix time in milliseconds: the policy's day is the UTC day. */
static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic seconds, for the outcome's duration. */
static double mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const tether_gate_proxy_t *proxy, tether_gate_outcome_t *outcome,
                   double started)
{
    outcome->seconds = mono_seconds() - started;
    if (proxy->opts.on_outcome != NULL)
        proxy->opts.on_outcome(proxy->opts.outcome_arg, outcome);
}

/* Charges a 2xx answer: the usage upstream reported, or the worst case
 * reserved when it reported none. */
static void settle(tether_gate_proxy_t *proxy, tether_gate_reservation_t *reservation,
                   const tether_gate_request_t *request, const tether_gate_usage_t *usage,
                   tether_gate_outcome_t *outcome)
{
    uint64_t prompt = usage->found ? usage->prompt_tokens : request->prompt_bound;
    uint64_t completion = usage->found ? usage->completion_tokens : request->completion_bound;
    tether_status_t rc = tether_gate_policy_settle(proxy->opts.policy, reservation, prompt,
                                                   completion, now_ms(), &outcome->cost);

    outcome->settled = rc == TETHER_OK || rc == TETHER_ERR_TOO_LARGE;
    outcome->overrun = rc == TETHER_ERR_TOO_LARGE;
    outcome->usage_reported = usage->found;
    outcome->prompt_tokens = prompt;
    outcome->completion_tokens = completion;
    if (outcome->overrun)
        tether_warn("gate", "device %s: upstream's usage cost more than the reservation "
                            "(max_tokens ignored?); charged in full", outcome->device);
}

static void refuse(tether_http_response_t *response, const tether_gate_policy_refusal_t *refusal)
{
    tether_http_respond_error(response, refusal->status, refusal->code, refusal->description);
    response->retry_after_seconds = refusal->retry_after_seconds;
}

/* Answers a transfer that got no answer from upstream; returns the code. */
static const char *upstream_failed(tether_http_response_t *response, tether_status_t rc,
                                   const char *why)
{
    if (rc == TETHER_ERR_STATE) {
        tether_http_respond_error(response, 503, "upstream_busy", why);
        response->retry_after = "1";
        return "upstream_busy";
    }
    tether_http_respond_error(response, 502, "upstream_unavailable", why);
    return "upstream_unavailable";
}

/* ---- JSON answers ------------------------------------------------------------ */

static void forward_whole(tether_gate_proxy_t *proxy, const char *path,
                          tether_gate_request_t *request, tether_gate_reservation_t *reservation,
                          tether_gate_outcome_t *outcome, tether_http_response_t *response)
{
    char why[256] = "";
    char *answer = NULL;
    size_t answer_len = 0;
    unsigned status = 0;
    tether_gate_usage_t usage;
    tether_status_t rc;

    memset(&usage, 0, sizeof(usage));
    rc = tether_gate_upstream_fetch(proxy->opts.upstream, "POST", path, request->body,
                                    request->body_len, &status, &answer, &answer_len, why,
                                    sizeof(why));
    if (rc != TETHER_OK || status < 200 || status > 299) {
        tether_gate_policy_release(proxy->opts.policy, reservation);
        if (rc != TETHER_OK) {
            outcome->code = upstream_failed(response, rc, why);
        } else {
            /* upstream's own refusal (its JSON error), passed on */
            response->status = status;
            response->body = answer;
            answer = NULL;
        }
        goto out;
    }
    /* A 2xx answer whose usage cannot be read is charged its worst case. */
    if (tether_gate_usage_read(answer, answer_len, &usage) != TETHER_OK)
        memset(&usage, 0, sizeof(usage));
    settle(proxy, reservation, request, &usage, outcome);
    response->status = status;
    response->body = answer;
    answer = NULL;
out:
    outcome->status = response->status;
    if (answer != NULL) {
        tether_wipe(answer, answer_len);
        free(answer);
    }
}

/* ---- streams ---------------------------------------------------------------------- */

/* One stream, shared by the handler (until the head is in) and its thread. */
typedef struct stream_job {
    tether_gate_proxy_t *proxy;
    tether_gate_request_t request;
    tether_gate_reservation_t reservation;
    char path[32]; /* the client's */
    char device[TETHER_GATE_MAX_DEVICE_BYTES + 1];
    char jti[TETHER_GATE_MAX_DEVICE_BYTES + 1]; /* "" when the caller gave none */
    double started;                             /* mono_seconds() at the stage's start */
    tether_http_stream_t *stream;
    tether_sse_parser_t sse;
    tether_gate_usage_t usage;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool head;  /* upstream's head is in: status holds its status */
    bool ended; /* the transfer is over */
    unsigned status;
    tether_status_t result;
    char why[256];
    unsigned holders;
} stream_job_t;

static void drop_job(stream_job_t *job)
{
    bool last;

    pthread_mutex_lock(&job->lock);
    last = --job->holders == 0;
    pthread_mutex_unlock(&job->lock);
    if (!last)
        return;
    tether_gate_request_free(&job->request);
    tether_sse_parser_free(&job->sse);
    pthread_cond_destroy(&job->changed);
    pthread_mutex_destroy(&job->lock);
    tether_wipe(job, sizeof(*job));
    free(job);
}

static void on_head(void *arg, unsigned status)
{
    stream_job_t *job = arg;

    pthread_mutex_lock(&job->lock);
    job->head = true;
    job->status = status;
    pthread_cond_broadcast(&job->changed);
    pthread_mutex_unlock(&job->lock);
}

/* Each piece goes to the client at once; a 200's pieces are read for the
 * usage on the way. A failed SSE read only loses the usage (the worst case
 * is charged); a client gone aborts the upstream transfer. */
static bool on_piece(void *arg, unsigned status, const uint8_t *bytes, size_t len)
{
    stream_job_t *job = arg;

    /* A failure sticks in job->sse.failed, read when the stream ends. */
    if (status == 200 && tether_sse_parser_feed(&job->sse, bytes, len) != TETHER_OK)
        tether_debug("gate", "device %s: the stream's usage cannot be read", job->device);
    return tether_http_stream_write(job->stream, bytes, len) == TETHER_OK;
}

static void *run_stream(void *arg)
{
    stream_job_t *job = arg;
    tether_gate_proxy_t *proxy = job->proxy;
    tether_gate_outcome_t outcome;
    tether_status_t rc;
    bool ok_answer;

    rc = tether_gate_upstream_stream(proxy->opts.upstream, job->path + strlen(API_PREFIX),
                                     job->request.body,
                                     job->request.body_len, on_head, on_piece, job, job->why,
                                     sizeof(job->why));
    pthread_mutex_lock(&job->lock);
    job->ended = true;
    job->result = rc;
    ok_answer = job->head && job->status >= 200 && job->status <= 299;
    pthread_cond_broadcast(&job->changed);
    pthread_mutex_unlock(&job->lock);
    memset(&outcome, 0, sizeof(outcome));
    outcome.device = job->device;
    outcome.jti = job->jti[0] != '\0' ? job->jti : NULL;
    outcome.model = job->request.model;
    outcome.path = job->path;
    outcome.stream = true;
    outcome.status = job->head ? job->status : 502;
    if (!job->head)
        outcome.code = rc == TETHER_ERR_STATE ? "upstream_busy" : "upstream_unavailable";
    /* Settled before the client sees the end: whoever reads the spend
     * after the stream finds it charged. A stream cut after its head may
     * have cost upstream anything up to the worst case. */
    if (ok_answer) {
        tether_gate_usage_t usage = job->usage;

        if (rc != TETHER_OK || job->sse.failed != TETHER_OK)
            usage.found = false;
        settle(proxy, &job->reservation, &job->request, &usage, &outcome);
    } else {
        tether_gate_policy_release(proxy->opts.policy, &job->reservation);
    }
    tether_http_stream_finish(job->stream, rc == TETHER_OK);
    report(proxy, &outcome, job->started);
    drop_job(job);
    pthread_mutex_lock(&proxy->lock);
    proxy->streams--;
    pthread_cond_broadcast(&proxy->idle);
    pthread_mutex_unlock(&proxy->lock);
    return NULL;
}

static stream_job_t *make_job(tether_gate_proxy_t *proxy, const char *path,
                              const tether_gate_caller_t *who, double started,
                              tether_gate_request_t *request,
                              tether_gate_reservation_t *reservation)
{
    stream_job_t *job = calloc(1, sizeof(*job));
    bool lock = false, cond = false;

    if (job == NULL)
        return NULL;
    tether_sse_parser_init(&job->sse);
    if ((lock = pthread_mutex_init(&job->lock, NULL) == 0) &&
        (cond = pthread_cond_init(&job->changed, NULL) == 0) &&
        tether_sse_parser_setup(&job->sse, tether_gate_usage_on_event, &job->usage) == TETHER_OK &&
        tether_http_stream_create(proxy->opts.stream_queue_bytes, &job->stream) == TETHER_OK) {
        job->proxy = proxy;
        job->request = *request; /* takes the body */
        memset(request, 0, sizeof(*request));
        job->reservation = *reservation;
        memset(reservation, 0, sizeof(*reservation));
        snprintf(job->path, sizeof(job->path), "%s", path);
        snprintf(job->device, sizeof(job->device), "%s", who->device);
        snprintf(job->jti, sizeof(job->jti), "%s", who->jti != NULL ? who->jti : "");
        job->started = started;
        job->holders = 2; /* the handler and the thread */
        return job;
    }
    tether_sse_parser_free(&job->sse);
    if (cond)
        pthread_cond_destroy(&job->changed);
    if (lock)
        pthread_mutex_destroy(&job->lock);
    free(job);
    return NULL;
}

static void forward_stream(tether_gate_proxy_t *proxy, const char *path,
                           const tether_gate_caller_t *who, double stage_start,
                           tether_gate_request_t *request, tether_gate_reservation_t *reservation,
                           tether_gate_outcome_t *outcome, tether_http_response_t *response)
{
    stream_job_t *job = make_job(proxy, path, who, stage_start, request, reservation);
    pthread_attr_t attr;
    pthread_t thread;
    bool started = false;

    if (job == NULL) {
        tether_gate_policy_release(proxy->opts.policy, reservation);
        tether_http_respond_error(response, 503, "server_error", "out of memory");
        outcome->status = response->status;
        outcome->code = "server_error";
        return;
    }
    /* The response holds the stream from here on, whatever happens. */
    response->stream = job->stream;
    pthread_mutex_lock(&proxy->lock);
    proxy->streams++;
    pthread_mutex_unlock(&proxy->lock);
    if (pthread_attr_init(&attr) == 0) {
        started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                  pthread_create(&thread, &attr, run_stream, job) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        pthread_mutex_lock(&proxy->lock);
        proxy->streams--;
        pthread_mutex_unlock(&proxy->lock);
        tether_gate_policy_release(proxy->opts.policy, &job->reservation);
        tether_http_stream_finish(job->stream, false);
        job->holders = 1;
        drop_job(job);
        tether_http_respond_error(response, 503, "upstream_busy", "cannot start a stream");
        response->retry_after = "1";
        outcome->status = response->status;
        outcome->code = "upstream_busy";
        return;
    }
    /* The thread reports the outcome; here only the answer's head. */
    outcome->status = 0;
    pthread_mutex_lock(&job->lock);
    while (!job->head && !job->ended)
        pthread_cond_wait(&job->changed, &job->lock);
    if (job->head) {
        response->status = job->status;
        response->content_type =
            job->status == 200 ? "text/event-stream" : "application/json";
    } else {
        /* No answer at all: the stream, still in the response, is given up
         * when the server sends this error instead. */
        (void)upstream_failed(response, job->result, job->why);
    }
    pthread_mutex_unlock(&job->lock);
    drop_job(job);
}

/* ---- /v1/models ------------------------------------------------------------------- */

tether_status_t tether_gate_models_filter(const tether_gate_policy_t *policy,
                                          const char *const *token_models,
                                          size_t token_model_count, const char *answer,
                                          size_t answer_len, cJSON **out)
{
    cJSON *root = NULL, *data, *kept = NULL, *entry, *next;
    tether_status_t rc = TETHER_ERR_PARSE;

    *out = NULL;
    if (tether_json_parse_object(answer, answer_len, &root) != TETHER_OK ||
        !cJSON_IsArray(data = cJSON_GetObjectItemCaseSensitive(root, "data")))
        goto out;
    if ((kept = cJSON_CreateArray()) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    /* Entries move from data to kept; the others are deleted. */
    for (entry = data->child; entry != NULL; entry = next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(entry, "id");

        next = entry->next;
        cJSON_DetachItemViaPointer(data, entry);
        if (cJSON_IsString(id) &&
            tether_gate_policy_model_allowed(policy, id->valuestring, token_models,
                                             token_model_count))
            cJSON_AddItemToArray(kept, entry);
        else
            cJSON_Delete(entry);
    }
    cJSON_ReplaceItemInObjectCaseSensitive(root, "data", kept);
    kept = NULL;
    *out = root;
    root = NULL;
    rc = TETHER_OK;
out:
    cJSON_Delete(kept);
    cJSON_Delete(root);
    return rc;
}

/* Answers the list; returns NULL, or the code of a failure. */
static const char *list_models(tether_gate_proxy_t *proxy, const tether_gate_caller_t *who,
                               tether_http_response_t *response)
{
    const char *code = "upstream_unavailable";
    char why[256] = "";
    char *answer = NULL;
    size_t answer_len = 0;
    unsigned status = 0;
    cJSON *root = NULL;
    tether_status_t rc;

    rc = tether_gate_upstream_fetch(proxy->opts.upstream, "GET", "/models", NULL, 0, &status,
                                    &answer, &answer_len, why, sizeof(why));
    if (rc != TETHER_OK) {
        code = upstream_failed(response, rc, why);
        goto out;
    }
    if (status != 200 ||
        tether_gate_models_filter(proxy->opts.policy, who->models, who->model_count, answer,
                                  answer_len, &root) != TETHER_OK) {
        tether_http_respond_error(response, 502, "upstream_unavailable",
                                  "the upstream's model list could not be read");
        goto out;
    }
    tether_http_respond_json(response, 200, root);
    root = NULL;
    code = NULL;
out:
    cJSON_Delete(root);
    if (answer != NULL) {
        tether_wipe(answer, answer_len);
        free(answer);
    }
    return code;
}

/* ---- the stage ---------------------------------------------------------------------- */

void tether_gate_proxy_handle(tether_gate_proxy_t *proxy, const tether_gate_caller_t *who,
                              const tether_http_request_t *request,
                              tether_http_response_t *response)
{
    tether_gate_endpoint_t endpoint;
    tether_gate_request_t inspected;
    tether_gate_reservation_t reservation;
    tether_gate_policy_refusal_t refusal;
    tether_gate_demand_t demand;
    tether_gate_outcome_t outcome;
    char why[256] = "";
    const char *path;
    double started = mono_seconds();

    tether_gate_request_init(&inspected);
    memset(&reservation, 0, sizeof(reservation));
    memset(&outcome, 0, sizeof(outcome));
    if (proxy == NULL || !proxy->lock_ready || who == NULL || who->device == NULL ||
        request == NULL || response == NULL) {
        if (response != NULL)
            tether_http_respond_error(response, 500, "server_error", "the proxy is not set up");
        return;
    }
    path = request->path;
    outcome.device = who->device;
    outcome.jti = who->jti;
    outcome.path = path;
    if (strcmp(path, API_PREFIX "/models") == 0) {
        if (strcmp(request->method, "GET") != 0) {
            tether_http_respond_error(response, 405, "method_not_allowed", "use GET");
            response->allow = "GET";
            outcome.code = "method_not_allowed";
        } else {
            outcome.code = list_models(proxy, who, response);
        }
        goto answered;
    }
    if (!tether_gate_endpoint_from_path(path, &endpoint)) {
        tether_http_respond_error(response, 404, "not_found", "no such endpoint");
        outcome.code = "not_found";
        goto answered;
    }
    if (strcmp(request->method, "POST") != 0) {
        tether_http_respond_error(response, 405, "method_not_allowed", "use POST");
        response->allow = "POST";
        outcome.code = "method_not_allowed";
        goto answered;
    }
    if (tether_gate_request_inspect(endpoint, request->body, request->body_len,
                                    proxy->opts.policy->default_max_tokens, &inspected, why,
                                    sizeof(why)) != TETHER_OK) {
        tether_http_respond_error(response, 400, "invalid_request",
                                  why[0] != '\0' ? why : "the request could not be read");
        outcome.code = "invalid_request";
        goto answered;
    }
    memset(&demand, 0, sizeof(demand));
    demand.device = who->device;
    demand.model = inspected.model;
    demand.token_models = who->models;
    demand.token_model_count = who->model_count;
    demand.prompt_bound = inspected.prompt_bound;
    demand.completion_bound = inspected.completion_bound;
    outcome.model = inspected.model;
    outcome.stream = inspected.stream;
    if (tether_gate_policy_reserve(proxy->opts.policy, &demand, now_ms(), &reservation,
                                   &refusal) != TETHER_OK) {
        if (refusal.status != 0) {
            refuse(response, &refusal);
            outcome.code = refusal.code;
        } else {
            tether_http_respond_error(response, 400, "invalid_request", "unusable request");
            outcome.code = "invalid_request";
        }
        goto answered;
    }
    if (inspected.stream) {
        /* The stream's thread reports it, unless it never started. */
        forward_stream(proxy, path, who, started, &inspected, &reservation, &outcome, response);
        if (outcome.status != 0)
            report(proxy, &outcome, started);
    } else {
        forward_whole(proxy, path + strlen(API_PREFIX), &inspected, &reservation, &outcome, response);
        report(proxy, &outcome, started);
    }
    goto out;
answered: /* answered in this call, reported here */
    outcome.status = response->status;
    report(proxy, &outcome, started);
out:
    tether_gate_request_free(&inspected);
}
