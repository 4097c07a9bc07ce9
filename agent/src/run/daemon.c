/*
 * tether-agent run: keeps a fresh access token in locked memory and hands it
 * to local applications (DESIGN.md, "Agent"). One poll loop serves local
 * callers, signals (through a signalfd) and the deadlines of the next
 * refresh and of the token's expiry; the exchanges with the fleet run on a
 * worker thread (exchange_worker.c), so that a fleet that stalls delays no
 * caller. No busy waiting.
 */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "exchange.h"
#include "local_api.h"
#include "measure_cmd.h"
#include "options.h"
#include "refresh_schedule.h"
#include "state.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"
#include "tether/process.h"
#include "tether/random.h"
#include "tether/secure_memory.h"

static const char *const phase_names[] = {"starting", "ok", "backoff", "refused"};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_usage(FILE *out)
{
    fputs("Usage: tether-agent run --state-dir DIR --socket PATH [OPTIONS]\n"
          "\n"
          "Keeps a fresh access token for this enrolled device in locked memory and\n"
          "serves it over HTTP on a Unix socket: GET /v1/token, GET /v1/status, and\n"
          "POST /v1/dpop (a DPoP proof signed by the TPM, with the token it is bound\n"
          "to). With --ai-listen, also serves apps an OpenAI-compatible endpoint that\n"
          "adds the token and a proof to each request and forwards it to the gateway.\n"
          "Refreshes at about 2/3 of the token's lifetime, backs off (up to 60 s) while\n"
          "the fleet is unreachable, holds no token once it has expired, and stops\n"
          "asking when the fleet refuses the device for good (clone, revocation) until\n"
          "it is sent SIGHUP. SIGTERM or SIGINT stop it; SIGHUP reloads --config and\n"
          "asks the fleet for a new token at once.\n"
          "\n"
          "  --state-dir DIR     the state written by 'tether-agent enroll'\n"
          "  --socket PATH       the local API socket (created with mode 0660)\n"
          "  --tcti TCTI         tpm2-tss TCTI (default: the TSS default)\n"
          "  --allow-uid UID     a user id that may ask for the token (repeatable;\n"
          "                      the agent's own user always may)\n"
          "  --allow-gid GID     a group id that may ask for the token (repeatable)\n"
          "  --config FILE       'allow_uid = N' and 'allow_gid = N' lines, read at start\n"
          "                      and on SIGHUP, added to the options above\n"
          "  --ai-listen ADDR:PORT  serve an OpenAI-compatible endpoint on this loopback\n"
          "                      address: apps set their base URL to http://ADDR:PORT\n"
          "                      followed by the upstream's path, with any API key\n"
          "  --ai-upstream URL   the AI gateway (tether-gate), https://HOST[:PORT]/PATH;\n"
          "                      http:// only for a gateway on a loopback address\n"
          "  --ai-ca FILE        the CA certificate (PEM) of the gateway, the only one\n"
          "                      trusted for it (required with https)\n"
          "  --platform-eventlog FILE  the platform's TCG event log, sent when the\n"
          "                      fleet's policy for this device has measured boot (default\n"
          "                      " TETHER_AGENT_DEFAULT_PLATFORM_EVENTLOG ")\n"
          "  --tether-eventlog FILE  tether's own log, as 'tether-agent measure --log'\n"
          "                      writes it (default " TETHER_MEASURE_DEFAULT_LOG ")\n"
          "  --log-format F      text (default) or json\n"
          "  -h, --help          show this help\n",
          out);
}

/* Decimal digits only: strtoul would also take a sign and wrap a negative
 * number around ("-18446744073709551615" is 1). */
static int parse_id(const char *text, unsigned long *out)
{
    char *end;

    *out = 0;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    *out = strtoul(text, &end, 10);
    return (end != text && *end == '\0' && errno == 0 && *out < 0xffffffffUL) ? 0 : -1;
}

static int acl_add(tether_local_acl_t *acl, int is_gid, const char *text)
{
    unsigned long id;

    if (parse_id(text, &id) != 0)
        return -1;
    if (is_gid) {
        if (acl->gid_count == TETHER_LOCAL_MAX_IDS)
            return -1;
        acl->gids[acl->gid_count++] = (gid_t)id;
    } else {
        if (acl->uid_count == TETHER_LOCAL_MAX_IDS)
            return -1;
        acl->uids[acl->uid_count++] = (uid_t)id;
    }
    return 0;
}

tether_status_t tether_agent_config_parse(const char *text, size_t len, tether_local_acl_t *acl,
                                          size_t *bad_line)
{
    size_t at = 0, line_no = 0;

    *bad_line = 0;
    while (at < len) {
        const char *end = memchr(text + at, '\n', len - at);
        size_t n = end != NULL ? (size_t)(end - (text + at)) : len - at;
        char line[96], key[32], value[32], extra;
        const char *p = line;

        line_no++;
        /* A NUL in a line (a config file is text) or a line longer than any
         * valid one is refused, never cut short. */
        if (n >= sizeof(line) || memchr(text + at, '\0', n) != NULL)
            goto bad;
        memcpy(line, text + at, n);
        line[n] = '\0';
        at += n + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        if (sscanf(p, "%31[a-z_] = %31s %c", key, value, &extra) != 2 ||
            (strcmp(key, "allow_uid") != 0 && strcmp(key, "allow_gid") != 0) ||
            acl_add(acl, strcmp(key, "allow_gid") == 0, value) != 0)
            goto bad;
    }
    return TETHER_OK;
bad:
    *bad_line = line_no;
    return TETHER_ERR_PARSE;
}

/* Reads the config file's allow_uid / allow_gid lines into acl. */
static int load_config(const char *path, tether_local_acl_t *acl)
{
    uint8_t *data = NULL;
    size_t len = 0, bad_line = 0;
    tether_status_t rc;

    if (tether_file_read(path, 65536, &data, &len) != TETHER_OK) {
        tether_error("agent", "cannot read the config file %s", path);
        return -1;
    }
    rc = tether_agent_config_parse((const char *)data, len, acl, &bad_line);
    free(data);
    if (rc == TETHER_ERR_PARSE)
        tether_error("agent", "%s line %zu: expected 'allow_uid = N' or 'allow_gid = N'", path,
                     bad_line);
    else if (rc != TETHER_OK)
        tether_error("agent", "cannot read the config file %s: %s", path, tether_strerror(rc));
    return rc == TETHER_OK ? 0 : -1;
}

static void drop_token(tether_agent_t *a)
{
    pthread_mutex_lock(&a->token_lock);
    if (a->has_token)
        tether_wipe(a->token.data, a->token.size);
    a->has_token = false;
    a->token_jti[0] = '\0';
    pthread_mutex_unlock(&a->token_lock);
}

static void count_for_token(void *ctx, const char *jti, tether_token_count_kind_t kind)
{
    tether_agent_t *a = ctx;

    pthread_mutex_lock(&a->token_lock);
    if (jti[0] != '\0')
        tether_token_counts_add(&a->counts, jti, kind);
    pthread_mutex_unlock(&a->token_lock);
}

/* The exchange worker's copy of the counts, for the usage document. */
static void copy_counts(void *ctx, tether_token_counts_t *out)
{
    tether_agent_t *a = ctx;

    pthread_mutex_lock(&a->token_lock);
    *out = a->counts;
    pthread_mutex_unlock(&a->token_lock);
}

/* The AI endpoint's copy of the held token, taken under the lock. */
static bool copy_token(void *ctx, tether_secure_buffer_t *token,
                       char jti[TETHER_TOKEN_JTI_MAX + 1])
{
    tether_agent_t *a = ctx;
    bool valid;

    pthread_mutex_lock(&a->token_lock);
    valid = a->has_token && a->token_expiry_ms > now_ms();
    if (valid) {
        memcpy(token->data, a->token.data, TETHER_TOKEN_MAX + 1);
        memcpy(jti, a->token_jti, TETHER_TOKEN_JTI_MAX + 1);
    }
    pthread_mutex_unlock(&a->token_lock);
    return valid;
}

/* A uniform 32-bit draw for the scheduler's jitter; 0 (no jitter) if the
 * DRBG fails, which only makes the schedule predictable, not wrong. */
static uint32_t random_draw(void)
{
    uint32_t r = 0;

    if (tether_random_bytes(&r, sizeof(r)) != TETHER_OK)
        return 0;
    return r;
}

/* Hands one exchange to the worker; its result comes through
 * exchange_done. */
static void start_exchange(tether_agent_t *a)
{
    a->exchange_started_ms = now_ms();
    a->exchanging = true;
    tether_exchange_worker_request(&a->worker, &a->usage);
}

/* SIGHUP's request for a token now: after an operator resolved a refusal,
 * or to pick up a changed policy. */
static void refresh_now(tether_agent_t *a)
{
    if (a->phase == TETHER_AGENT_REFUSED)
        a->phase = TETHER_AGENT_STARTING;
    tether_info("agent", "SIGHUP: asking the fleet for a token now");
    a->next_exchange_ms = now_ms();
    a->failures = 0;
}

/* The worker's result: the token it brought, or the failure, and when to
 * ask next. */
static void exchange_done(tether_agent_t *a)
{
    tether_exchange_result_t r;
    tether_refresh_input_t in;
    tether_refresh_plan_t plan;
    int64_t start = a->exchange_started_ms;

    pthread_mutex_lock(&a->token_lock);
    if (!tether_exchange_worker_collect(&a->worker, &a->token, &r)) {
        pthread_mutex_unlock(&a->token_lock);
        return;
    }
    a->exchanging = false;
    memset(&in, 0, sizeof(in));
    in.now_ms = now_ms();
    in.random = random_draw();
    switch (r.outcome) {
    case TETHER_EXCHANGE_OK:
        a->has_token = true;
        /* Only names the token in the counts: a token without a jti is
         * still served, and its proofs go uncounted (logged). */
        if (tether_token_jti((const char *)a->token.data, strlen((const char *)a->token.data),
                             a->token_jti) != TETHER_OK)
            tether_warn("agent", "the new token has no jti; its DPoP proofs are not counted");
        else /* listed from now on, used or not: a copy used elsewhere shows */
            (void)tether_token_counts_add(&a->counts, a->token_jti, TETHER_TOKEN_COUNT_ISSUED);
        a->usage.exchanges++;
        a->token_issued_ms = start;
        a->token_expiry_ms = start + (int64_t)r.expires_in * 1000;
        a->failures = 0;
        a->phase = TETHER_AGENT_OK;
        a->last_error[0] = '\0';
        in.last_outcome = TETHER_REFRESH_TOKEN;
        break;
    case TETHER_EXCHANGE_RETRY:
        snprintf(a->last_error, sizeof(a->last_error), "%s", r.reason);
        if (a->failures < UINT_MAX)
            a->failures++;
        if (a->phase != TETHER_AGENT_OK || !a->has_token)
            a->phase = TETHER_AGENT_BACKOFF;
        in.last_outcome = TETHER_REFRESH_RETRY;
        in.failures = a->failures;
        break;
    case TETHER_EXCHANGE_REFUSED:
    case TETHER_EXCHANGE_FAILED:
    default:
        snprintf(a->last_error, sizeof(a->last_error), "%.60s: %.180s", r.code, r.reason);
        a->phase = TETHER_AGENT_REFUSED;
        in.last_outcome = TETHER_REFRESH_REFUSED;
        break;
    }
    pthread_mutex_unlock(&a->token_lock);
    in.has_token = a->has_token;
    in.issued_ms = a->token_issued_ms;
    in.expiry_ms = a->token_expiry_ms;
    in.next_challenge_ms = r.next_refresh_ms;
    tether_refresh_schedule(&in, &plan);
    a->next_exchange_ms = plan.next_exchange_ms;
    a->drop_token_ms = plan.drop_token_ms;

    if (in.last_outcome == TETHER_REFRESH_TOKEN) {
        tether_info("agent", "new access token, valid for %u s", r.expires_in);
    } else if (in.last_outcome == TETHER_REFRESH_RETRY) {
        tether_warn("agent", "token exchange failed (%s): %s; next try in %lld ms", r.code,
                    r.reason, (long long)(a->next_exchange_ms - now_ms()));
    } else {
        drop_token(a);
        tether_error("agent", "%s (%s): %s. No token will be requested until an operator "
                     "resolves it and the agent gets SIGHUP.",
                     r.outcome == TETHER_EXCHANGE_REFUSED ? "the fleet refused this device"
                                                          : "the TPM refuses to work",
                     r.code, r.reason);
    }
    if (a->refresh_after_exchange) {
        a->refresh_after_exchange = false;
        refresh_now(a);
    }
}

static char *status_json(tether_agent_t *a)
{
    tether_status_t counted;
    cJSON *obj = cJSON_CreateObject();
    int64_t left = a->has_token ? (a->token_expiry_ms - now_ms()) / 1000 : 0;
    char *json;

    if (obj == NULL)
        return NULL;
    cJSON_AddStringToObject(obj, "device_id", a->state.device_id);
    cJSON_AddStringToObject(obj, "fleet", a->state.fleet_url);
    cJSON_AddStringToObject(obj, "state", phase_names[a->phase]);
    cJSON_AddBoolToObject(obj, "has_token", a->has_token);
    cJSON_AddBoolToObject(obj, "exchanging", a->exchanging);
    cJSON_AddNumberToObject(obj, "expires_in", (double)(left > 0 ? left : 0));
    cJSON_AddNumberToObject(obj, "exchanges", (double)a->usage.exchanges);
    cJSON_AddNumberToObject(obj, "token_requests", (double)a->usage.token_requests);
    if (a->last_error[0] != '\0')
        cJSON_AddStringToObject(obj, "last_error", a->last_error);
    pthread_mutex_lock(&a->token_lock);
    counted = tether_token_counts_to_json(&a->counts, obj, "tokens");
    pthread_mutex_unlock(&a->token_lock);
    json = counted == TETHER_OK ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return json;
}

/* An error answer {"error","error_description"}, the description escaped. */
static void respond_error(int fd, int status, const char *error, const char *description)
{
    cJSON *obj = cJSON_CreateObject();
    char *json = NULL;

    if (obj != NULL && cJSON_AddStringToObject(obj, "error", error) != NULL &&
        cJSON_AddStringToObject(obj, "error_description", description) != NULL)
        json = cJSON_PrintUnformatted(obj);
    tether_local_respond(fd, status, json != NULL ? json : "{\"error\":\"no_memory\"}");
    cJSON_free(json);
    cJSON_Delete(obj);
}

/* Seconds the held token has left; 0 after answering 503 no_token (the
 * agent fails closed: no token, no proof). */
static int64_t token_left(const tether_agent_t *a, int fd)
{
    int64_t left = (a->token_expiry_ms - now_ms()) / 1000;

    if (a->has_token && left > 0)
        return left;
    respond_error(fd, 503, "no_token", "the agent holds no valid token; see GET /v1/status");
    return 0;
}

/* Sends fmt's answer, built in locked memory (it holds the token) and wiped
 * after sending. 0 when the caller took it all. */
static int respond_secret(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int respond_secret(int fd, const char *fmt, ...)
{
    tether_secure_buffer_t body;
    va_list ap;
    int n, rc;

    if (tether_secure_buffer_alloc(&body, TETHER_TOKEN_MAX + TETHER_DPOP_MAX_LEN + 256, 1) !=
        TETHER_OK) {
        tether_local_respond(fd, 503, "{\"error\":\"no_memory\"}");
        return -1;
    }
    va_start(ap, fmt);
    n = vsnprintf((char *)body.data, body.size, fmt, ap);
    va_end(ap);
    rc = n >= 0 && (size_t)n < body.size ? tether_local_respond(fd, 200, (const char *)body.data)
                                         : -1;
    tether_secure_buffer_free(&body);
    return rc;
}

static void respond_token(tether_agent_t *a, int fd)
{
    int64_t left = token_left(a, fd);

    if (left > 0 &&
        respond_secret(fd, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%lld}",
                       (const char *)a->token.data, (long long)left) == 0) {
        a->usage.token_requests++;
        count_for_token(a, a->token_jti, TETHER_TOKEN_COUNT_BEARER);
    }
}

/* POST /v1/dpop: a proof signed by the TPM device key for the caller's
 * request, with the token it is bound to (ath), so that a refresh between
 * two calls can never pair a proof with another token. */
static void respond_dpop(tether_agent_t *a, int fd, const char *body, size_t body_len)
{
    tether_local_dpop_request_t req;
    char proof[TETHER_DPOP_MAX_LEN + 1], why[256];
    size_t proof_len;
    int64_t left;
    tether_status_t rc;

    if (tether_local_dpop_request_parse(body, body_len, &req, why, sizeof(why)) != TETHER_OK) {
        respond_error(fd, 400, "bad_request", why);
        return;
    }
    if ((left = token_left(a, fd)) == 0)
        return;
    rc = tether_dpop_signer_sign(&a->signer, req.method, req.url,
                                 req.nonce[0] != '\0' ? req.nonce : NULL,
                                 (const char *)a->token.data, strlen((const char *)a->token.data),
                                 (int64_t)time(NULL), proof, sizeof(proof), &proof_len, why,
                                 sizeof(why));
    if (rc != TETHER_OK) {
        tether_error("agent", "cannot sign a DPoP proof: %s%s%s", tether_strerror(rc),
                     why[0] != '\0' ? ": " : "", why);
        respond_error(fd, 503, "tpm_error", "the TPM could not sign the proof; see the agent's log");
        return;
    }
    count_for_token(a, a->token_jti, TETHER_TOKEN_COUNT_PROOF);
    (void)respond_secret(fd,
                         "{\"proof\":\"%s\",\"access_token\":\"%s\",\"token_type\":\"DPoP\","
                         "\"expires_in\":%lld}",
                         proof, (const char *)a->token.data, (long long)left);
}

/* The local server's handler for its routes (local_api.c admitted the
 * caller and checked the request). */
static void serve_route(void *context, int fd, tether_local_route_t route, const char *body,
                        size_t body_len)
{
    tether_agent_t *a = context;
    char *json;

    if (route == TETHER_LOCAL_TOKEN) {
        respond_token(a, fd);
        return;
    }
    if (route == TETHER_LOCAL_DPOP) {
        respond_dpop(a, fd, body, body_len);
        return;
    }
    json = status_json(a);
    tether_local_respond(fd, json != NULL ? 200 : 503, json != NULL ? json : "{}");
    free(json);
}

/* The access list from the command line and the config file: what the
 * agent starts with and what SIGHUP reloads. 0, or -1 after logging. */
static int acl_load(const tether_agent_options_t *o, tether_local_acl_t *acl)
{
    *acl = o->acl;
    return o->config_path == NULL ? 0 : load_config(o->config_path, acl);
}

/* Returns 1 to go on, 0 to stop. */
static int handle_signal(tether_agent_t *a)
{
    struct signalfd_siginfo si;

    if (read(a->signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return 1;
    if (si.ssi_signo == SIGHUP) {
        tether_local_acl_t acl;
        if (acl_load(&a->opts, &acl) == 0) {
            a->acl = acl;
            tether_info("agent", "SIGHUP: configuration reloaded (%zu uids, %zu gids allowed)",
                        acl.uid_count, acl.gid_count);
        } else {
            tether_error("agent", "SIGHUP: the configuration has errors; keeping the old one");
        }
        /* A reload also asks the fleet at once; during an exchange, as
         * soon as it ends, as when the exchange held up the signal. */
        if (a->exchanging) {
            a->refresh_after_exchange = true;
            tether_info("agent", "SIGHUP: an exchange is under way; asking again when it ends");
        } else {
            refresh_now(a);
        }
        return 1;
    }
    tether_info("agent", "stopping on signal %u", si.ssi_signo);
    return 0;
}

/* Parses the command line into o (zeroed first). -1 to go on, else the exit
 * code (0 after --help, 2 for bad usage). */
static int parse_options(int argc, char **argv, tether_agent_options_t *o)
{
    static const struct option long_options[] = {
        {"state-dir", required_argument, NULL, 's'}, {"socket", required_argument, NULL, 'S'},
        TETHER_AGENT_TCTI_LONG_OPTION,               {"allow-uid", required_argument, NULL, 'u'},
        {"allow-gid", required_argument, NULL, 'g'}, {"config", required_argument, NULL, 'c'},
        {"log-format", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"ai-listen", required_argument, NULL, 'A'}, {"ai-upstream", required_argument, NULL, 'U'},
        {"ai-ca", required_argument, NULL, 'C'},
        {"platform-eventlog", required_argument, NULL, 'P'},
        {"tether-eventlog", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 's': o->state_dir = optarg; break;
        case 'S': o->socket_path = optarg; break;
        case TETHER_AGENT_TCTI_OPTION: o->tcti = optarg; break;
        case 'c': o->config_path = optarg; break;
        case 'A': o->ai_listen = optarg; break;
        case 'U': o->ai_upstream = optarg; break;
        case 'C': o->ai_ca = optarg; break;
        case 'P': o->eventlogs.platform = optarg; break;
        case 'T': o->eventlogs.tether = optarg; break;
        case 'u':
        case 'g':
            if (acl_add(&o->acl, c == 'g', optarg) != 0) {
                fprintf(stderr, "tether-agent run: bad --allow-%s '%s'\n", c == 'g' ? "gid" : "uid", optarg);
                return 2;
            }
            break;
        case 'l':
            if (strcmp(optarg, "json") == 0)
                tether_log_setup("tether-agent", TETHER_LOG_JSON, TETHER_LOG_INFO);
            else if (strcmp(optarg, "text") != 0) {
                fprintf(stderr, "tether-agent run: --log-format is text or json\n");
                return 2;
            }
            break;
        case 'h': run_usage(stdout); return 0;
        default: run_usage(stderr); return 2;
        }
    }
    if (optind != argc || o->state_dir == NULL || o->socket_path == NULL) {
        fprintf(stderr, "tether-agent run: --state-dir and --socket are required\n");
        return 2;
    }
    if ((o->ai_listen == NULL) != (o->ai_upstream == NULL)) {
        fprintf(stderr, "tether-agent run: --ai-listen and --ai-upstream go together\n");
        return 2;
    }
    return -1;
}

/* The loop's token buffer and the worker's, which are swapped: both locked
 * if the memlock limit allows, else both unlocked (with a warning); never
 * in a core dump, wiped when freed. */
static tether_status_t token_buffers_alloc(tether_secure_buffer_t *held,
                                           tether_secure_buffer_t *incoming)
{
    tether_status_t rc;

    if (tether_secure_buffer_alloc(held, TETHER_TOKEN_MAX + 1, 0) == TETHER_OK &&
        tether_secure_buffer_alloc(incoming, TETHER_TOKEN_MAX + 1, 0) == TETHER_OK)
        return TETHER_OK;
    tether_secure_buffer_free(held);
    tether_secure_buffer_free(incoming);
    tether_warn("agent", "cannot lock memory for the token (RLIMIT_MEMLOCK); using "
                         "unlocked memory");
    if ((rc = tether_secure_buffer_alloc(held, TETHER_TOKEN_MAX + 1, 1)) != TETHER_OK ||
        (rc = tether_secure_buffer_alloc(incoming, TETHER_TOKEN_MAX + 1, 1)) != TETHER_OK)
        tether_error("agent", "cannot allocate memory for the token: %s", tether_strerror(rc));
    return rc;
}

/* Everything the loop needs: state, fleet client, locked token memory, TPM,
 * signals, the exchange worker and the listening socket. TETHER_OK, or an
 * error already logged; what was set up is released by tether_agent_free
 * either way. */
static tether_status_t agent_setup(tether_agent_t *a)
{
    char ca_path[PATH_MAX], why[256];
    tether_secure_buffer_t worker_token;
    sigset_t mask;
    tether_status_t rc;

    memset(&worker_token, 0, sizeof(worker_token));
    if (tether_process_protect() != TETHER_OK)
        tether_warn("agent", "could not disable core dumps and ptrace attach");
    a->usage.eventlogs = a->opts.eventlogs;
    if (acl_load(&a->opts, &a->acl) != 0) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    rc = tether_agent_state_load(a->opts.state_dir, &a->state, why, sizeof(why));
    if (rc != TETHER_OK) {
        tether_error("agent", "%s: %s; enrol first with 'tether-agent enroll'", a->opts.state_dir,
                     rc == TETHER_ERR_NOT_FOUND ? "not enrolled" : why);
        goto out;
    }
    snprintf(ca_path, sizeof(ca_path), "%s/%s", a->opts.state_dir, TETHER_STATE_CA_FILE);
    /* An exchange holds up no local caller (it runs on the worker); these
     * bound how long a stalled fleet delays the next try and a stop. */
    a->client.connect_timeout_ms = 5000;
    a->client.io_timeout_ms = 10000;
    a->client.request_timeout_ms = 20000;
    /* An exchange's challenge and token share one connection (closed after
     * the exchange). */
    a->client.keep_alive = true;
    if ((rc = tether_https_client_setup(&a->client, a->state.fleet_url, ca_path)) != TETHER_OK) {
        tether_error("agent", "%s", a->client.error);
        goto out;
    }
    if ((rc = token_buffers_alloc(&a->token, &worker_token)) != TETHER_OK)
        goto out;
    if ((rc = tether_agent_tpm_open(&a->tpm, a->opts.tcti, why, sizeof(why))) != TETHER_OK) {
        tether_error("agent", "%s", why);
        goto out;
    }
    if ((rc = tether_dpop_signer_setup(&a->signer, &a->tpm, &a->tpm_lock, &a->state)) !=
        TETHER_OK) {
        tether_error("agent", "the enrolled device key is not a P-256 key (%s); enrol again",
                     tether_strerror(rc));
        goto out;
    }
    /* Blocked before the worker starts, so that it inherits the mask and
     * every one of these signals comes through the signalfd. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (a->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        tether_error("agent", "cannot set up signal handling: %s", strerror(errno));
        rc = TETHER_ERR_IO;
        goto out;
    }
    /* The worker takes worker_token, whatever the outcome. */
    if ((rc = tether_exchange_worker_start(&a->worker, &a->client, &a->tpm, &a->tpm_lock, &a->state,
                                           &worker_token, why, sizeof(why))) != TETHER_OK) {
        tether_error("agent", "%s", why);
        goto out;
    }
    if (a->opts.ai_listen != NULL) {
        const tether_ai_agent_t agent = {.get_token = copy_token, .count = count_for_token,
                                         .ctx = a};
        if ((rc = tether_ai_proxy_open(&a->ai, a->opts.ai_listen, a->opts.ai_upstream,
                                       a->opts.ai_ca, &a->signer, &agent, why, sizeof(why))) !=
            TETHER_OK) {
            tether_error("agent", "%s", why);
            goto out;
        }
    }
    if ((rc = tether_local_server_open(&a->server, a->opts.socket_path, why, sizeof(why))) !=
        TETHER_OK) {
        tether_error("agent", "%s", why);
        goto out;
    }
    tether_info("agent", "device %s, fleet %s, serving on %s", a->state.device_id,
                a->state.fleet_url, a->opts.socket_path);
out:
    tether_secure_buffer_free(&worker_token); /* emptied if the worker took it */
    return rc;
}

void tether_agent_init(tether_agent_t *a)
{
    memset(a, 0, offsetof(tether_agent_t, server));
    a->signal_fd = -1;
    a->poll = poll;
    tether_https_client_init(&a->client);
    tether_tpm_init(&a->tpm);
    a->tpm_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    a->token_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    tether_ai_proxy_init(&a->ai);
    tether_dpop_signer_init(&a->signer);
    tether_token_counts_init(&a->counts);
    a->usage.counts = copy_counts;
    a->usage.counts_ctx = a;
    tether_exchange_worker_init(&a->worker);
    tether_local_server_init(&a->server, &a->acl, serve_route, a);
}

int tether_agent_loop(tether_agent_t *a)
{
    a->next_exchange_ms = now_ms();
    for (;;) {
        struct pollfd *fds = a->pollfds;
        int64_t now = now_ms(), deadline, wait;
        size_t nfds;

        if (!a->exchanging && now >= a->next_exchange_ms)
            start_exchange(a);
        if (a->has_token && now >= a->drop_token_ms) {
            drop_token(a);
            if (a->phase == TETHER_AGENT_OK)
                a->phase = TETHER_AGENT_BACKOFF;
            tether_warn("agent", "the access token expired before a new one came; failing closed");
        }
        deadline = a->exchanging ? TETHER_REFRESH_NEVER : a->next_exchange_ms;
        if (a->has_token && a->drop_token_ms < deadline)
            deadline = a->drop_token_ms;
        if (tether_local_server_deadline(&a->server) < deadline)
            deadline = tether_local_server_deadline(&a->server);
        wait = deadline == TETHER_REFRESH_NEVER ? -1 : deadline > now ? deadline - now : 0;
        if (wait > INT_MAX)
            wait = INT_MAX;
        fds[0] = (struct pollfd){.fd = a->signal_fd, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = tether_exchange_worker_fd(&a->worker), .events = POLLIN};
        nfds = 2 + tether_local_server_pollfds(&a->server, fds + 2);
        if (a->poll(fds, (nfds_t)nfds, (int)wait) < 0) {
            if (errno == EINTR)
                continue;
            tether_error("agent", "poll failed: %s; stopping", strerror(errno));
            return 1;
        }
        if ((fds[0].revents & POLLIN) && !handle_signal(a))
            return 0;
        if (fds[1].revents & POLLIN)
            exchange_done(a);
        tether_local_server_serve(&a->server, fds + 2, nfds - 2, now_ms());
    }
}

void tether_agent_free(tether_agent_t *a)
{
    /* Callers first: no one is served once stopping has begun. */
    tether_ai_proxy_close(&a->ai);
    tether_local_server_close(&a->server, a->opts.socket_path);
    drop_token(a);
    tether_secure_buffer_free(&a->token);
    if (a->exchanging)
        tether_info("agent", "waiting for the exchange under way to end (its request times "
                             "out after %u s)", a->client.request_timeout_ms / 1000);
    tether_exchange_worker_free(&a->worker);
    if (a->signal_fd >= 0)
        close(a->signal_fd);
    tether_https_client_free(&a->client);
    tether_dpop_signer_free(&a->signer); /* flushes the device key: the TPM is still open */
    tether_tpm_close(&a->tpm);
    pthread_mutex_destroy(&a->tpm_lock);
    pthread_mutex_destroy(&a->token_lock);
    /* The server's table holds no secret (requests for a token, not
     * tokens) and is large: left as it is. */
    tether_wipe(a, offsetof(tether_agent_t, server));
}

int tether_agent_run_main(int argc, char **argv)
{
    tether_agent_t *a = calloc(1, sizeof(*a));
    int code = 1;

    if (a == NULL) {
        fprintf(stderr, "tether-agent run: out of memory\n");
        return 1;
    }
    tether_agent_init(a);
    if ((code = parse_options(argc, argv, &a->opts)) >= 0)
        goto out;
    code = 1;
    if (agent_setup(a) != TETHER_OK)
        goto out;
    code = tether_agent_loop(a);
out:
    tether_agent_free(a);
    free(a);
    return code;
}
