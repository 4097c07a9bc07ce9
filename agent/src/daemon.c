/*
 * tether-agent run: keeps a fresh access token in locked memory and hands it
 * to local applications (DESIGN.md, "Agent"). One process, one poll loop:
 * signals through a signalfd, the local socket, and a deadline for the next
 * refresh or the token's expiry. No busy waiting, no threads.
 */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "exchange.h"
#include "local_api.h"
#include "state.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"
#include "tether/random.h"
#include "tether/secure_memory.h"

#define BACKOFF_FIRST_MS 1000u
#define BACKOFF_CAP_MS 60000u
#define CLIENT_TIMEOUT_MS 1000

typedef enum agent_phase {
    PHASE_STARTING, /* no token yet */
    PHASE_OK,       /* holds a valid token */
    PHASE_BACKOFF,  /* the last exchange failed; retrying later */
    PHASE_REFUSED,  /* the fleet refused for good; not asking until SIGHUP */
} agent_phase_t;

static const char *const phase_names[] = {"starting", "ok", "backoff", "refused"};

typedef struct agent {
    const char *state_dir;
    const char *socket_path;
    const char *config_path;
    const char *tcti;
    tether_local_acl_t acl;
    tether_agent_state_t state;
    tether_https_client_t client;
    tether_tpm_t tpm;
    tether_secure_buffer_t token;
    int has_token;
    int64_t token_expiry_ms;  /* monotonic */
    int64_t next_exchange_ms; /* monotonic; INT64_MAX when refused */
    unsigned backoff_ms;
    agent_phase_t phase;
    tether_usage_t usage;
    char last_error[256];
    int listen_fd;
    int signal_fd;
} agent_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A uniformly random value in [0, n). */
static uint32_t random_below(uint32_t n)
{
    uint32_t r = 0;
    if (n == 0 || tether_random_bytes(&r, sizeof(r)) != TETHER_OK)
        return 0;
    return r % n;
}

static void run_usage(FILE *out)
{
    fputs("Usage: tether-agent run --state-dir DIR --socket PATH [OPTIONS]\n"
          "\n"
          "Keeps a fresh access token for this enrolled device in locked memory and\n"
          "serves it over HTTP on a Unix socket: GET /v1/token, GET /v1/status.\n"
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
          "  --log-format F      text (default) or json\n"
          "  -h, --help          show this help\n",
          out);
}

static int parse_id(const char *text, unsigned long *out)
{
    char *end;
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

/* Reads the config file's allow_uid / allow_gid lines into acl. */
static int load_config(const char *path, tether_local_acl_t *acl)
{
    uint8_t *data = NULL;
    size_t len = 0, line_no = 0;
    char *line, *save = NULL;
    int rc = 0;

    if (tether_file_read(path, 65536, &data, &len) != TETHER_OK) {
        tether_error("agent", "cannot read the config file %s", path);
        return -1;
    }
    for (line = strtok_r((char *)data, "\n", &save); line != NULL && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char key[32], value[32], extra;
        line_no++;
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '#' || *line == '\0')
            continue;
        if (sscanf(line, "%31[a-z_] = %31s %c", key, value, &extra) != 2 ||
            (strcmp(key, "allow_uid") != 0 && strcmp(key, "allow_gid") != 0) ||
            acl_add(acl, strcmp(key, "allow_gid") == 0, value) != 0) {
            tether_error("agent", "%s line %zu: expected 'allow_uid = N' or 'allow_gid = N'", path,
                         line_no);
            rc = -1;
        }
    }
    free(data);
    return rc;
}

static void drop_token(agent_t *a)
{
    if (a->has_token)
        tether_wipe(a->token.data, a->token.size);
    a->has_token = 0;
}

static void schedule_retry(agent_t *a)
{
    a->backoff_ms = a->backoff_ms == 0 ? BACKOFF_FIRST_MS
                                       : (a->backoff_ms >= BACKOFF_CAP_MS / 2 ? BACKOFF_CAP_MS
                                                                              : a->backoff_ms * 2);
    /* Full jitter in the upper half, so a fleet coming back is not hit by
     * every device at once. */
    a->next_exchange_ms = now_ms() + a->backoff_ms / 2 + random_below(a->backoff_ms / 2 + 1);
}

static void do_exchange(agent_t *a)
{
    tether_exchange_result_t r;
    int64_t start = now_ms();

    tether_agent_exchange(&a->client, &a->tpm, &a->state, &a->usage, &a->token, &r);
    switch (r.outcome) {
    case TETHER_EXCHANGE_OK: {
        uint32_t lifetime_ms = r.expires_in * 1000u;
        a->has_token = 1;
        a->usage.exchanges++;
        a->token_expiry_ms = start + lifetime_ms;
        /* About 2/3 of the lifetime, give or take 5 %. */
        a->next_exchange_ms = start + lifetime_ms * 2 / 3 - lifetime_ms / 20 +
                              random_below(lifetime_ms / 10 + 1);
        a->backoff_ms = 0;
        a->phase = PHASE_OK;
        a->last_error[0] = '\0';
        tether_info("agent", "new access token, valid for %u s", r.expires_in);
        break;
    }
    case TETHER_EXCHANGE_RETRY:
        snprintf(a->last_error, sizeof(a->last_error), "%s", r.reason);
        schedule_retry(a);
        if (a->phase != PHASE_OK || !a->has_token)
            a->phase = PHASE_BACKOFF;
        tether_warn("agent", "token exchange failed (%s): %s; next try in %lld ms", r.code,
                    r.reason, (long long)(a->next_exchange_ms - now_ms()));
        break;
    case TETHER_EXCHANGE_REFUSED:
    case TETHER_EXCHANGE_FAILED:
        /* Neither a refusal for good nor a TPM lockout heals by asking
         * again: stop until an operator acts and sends SIGHUP. */
        snprintf(a->last_error, sizeof(a->last_error), "%.60s: %.180s", r.code, r.reason);
        drop_token(a);
        a->phase = PHASE_REFUSED;
        a->next_exchange_ms = INT64_MAX;
        tether_error("agent", "%s (%s): %s. No token will be requested until an operator "
                     "resolves it and the agent gets SIGHUP.",
                     r.outcome == TETHER_EXCHANGE_REFUSED ? "the fleet refused this device"
                                                          : "the TPM refuses to work",
                     r.code, r.reason);
        break;
    }
}

static char *status_json(const agent_t *a)
{
    cJSON *obj = cJSON_CreateObject();
    int64_t left = a->has_token ? (a->token_expiry_ms - now_ms()) / 1000 : 0;
    char *json;

    if (obj == NULL)
        return NULL;
    cJSON_AddStringToObject(obj, "device_id", a->state.device_id);
    cJSON_AddStringToObject(obj, "fleet", a->state.fleet_url);
    cJSON_AddStringToObject(obj, "state", phase_names[a->phase]);
    cJSON_AddBoolToObject(obj, "has_token", a->has_token);
    cJSON_AddNumberToObject(obj, "expires_in", (double)(left > 0 ? left : 0));
    cJSON_AddNumberToObject(obj, "exchanges", (double)a->usage.exchanges);
    cJSON_AddNumberToObject(obj, "token_requests", (double)a->usage.token_requests);
    if (a->last_error[0] != '\0')
        cJSON_AddStringToObject(obj, "last_error", a->last_error);
    json = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return json;
}

/* The token response is built in locked memory and wiped after sending. */
static void respond_token(agent_t *a, int fd)
{
    static const char fmt[] = "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%lld}";
    tether_secure_buffer_t body;
    int64_t left = (a->token_expiry_ms - now_ms()) / 1000;

    if (!a->has_token || left <= 0) {
        tether_local_respond(fd, 503,
                             "{\"error\":\"no_token\",\"error_description\":\"the agent holds no "
                             "valid token; see GET /v1/status\"}");
        return;
    }
    if (tether_secure_buffer_alloc(&body, TETHER_TOKEN_MAX + 128, 1) != TETHER_OK) {
        tether_local_respond(fd, 503, "{\"error\":\"no_memory\"}");
        return;
    }
    snprintf((char *)body.data, body.size, fmt, (const char *)a->token.data, (long long)left);
    if (tether_local_respond(fd, 200, (const char *)body.data) == 0)
        a->usage.token_requests++;
    tether_secure_buffer_free(&body);
}

static void serve_client(agent_t *a)
{
    char buf[TETHER_LOCAL_MAX_REQUEST];
    size_t len = 0;
    struct ucred cred;
    socklen_t cred_len = sizeof(cred);
    tether_local_route_t route = TETHER_LOCAL_NOT_FOUND;
    tether_status_t rc = TETHER_ERR_STATE;
    int64_t deadline;
    int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    /* The request is read before any answer, refusals included, so that the
     * caller is never cut off while it is still sending. A slow client gets
     * one second in all, so it cannot stall the loop. */
    deadline = now_ms() + CLIENT_TIMEOUT_MS;
    while (rc == TETHER_ERR_STATE && len < sizeof(buf)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t wait = deadline - now_ms();
        ssize_t n;
        if (wait <= 0 || poll(&p, 1, (int)wait) <= 0)
            break;
        n = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        rc = tether_local_request_parse(buf, len, &route);
    }
    if (rc == TETHER_ERR_STATE && len == sizeof(buf))
        rc = TETHER_ERR_TOO_LARGE;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0 ||
        !tether_local_acl_allows(&a->acl, cred.uid, cred.gid)) {
        tether_warn("agent", "refused a local caller (uid %u, gid %u) not in the allowed lists",
                    (unsigned)cred.uid, (unsigned)cred.gid);
        tether_local_respond(fd, 403,
                             "{\"error\":\"forbidden\",\"error_description\":\"this user may not "
                             "ask the agent for tokens\"}");
    } else if (rc == TETHER_ERR_TOO_LARGE)
        tether_local_respond(fd, 413, "{\"error\":\"request_too_large\"}");
    else if (rc != TETHER_OK)
        tether_local_respond(fd, 400, "{\"error\":\"bad_request\"}");
    else if (route == TETHER_LOCAL_TOKEN)
        respond_token(a, fd);
    else if (route == TETHER_LOCAL_STATUS) {
        char *json = status_json(a);
        tether_local_respond(fd, json != NULL ? 200 : 503, json != NULL ? json : "{}");
        free(json);
    } else if (route == TETHER_LOCAL_BAD_METHOD)
        tether_local_respond(fd, 405, "{\"error\":\"method_not_allowed\"}");
    else
        tether_local_respond(fd, 404, "{\"error\":\"not_found\"}");
    close(fd);
}

/* Returns 1 to go on, 0 to stop. */
static int handle_signal(agent_t *a, const char *const *argv_acl, int argc_acl)
{
    struct signalfd_siginfo si;

    if (read(a->signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return 1;
    if (si.ssi_signo == SIGHUP) {
        tether_local_acl_t acl;
        memset(&acl, 0, sizeof(acl));
        for (int i = 0; i + 1 < argc_acl; i += 2)
            (void)acl_add(&acl, argv_acl[i][0] == 'g', argv_acl[i + 1]);
        if (a->config_path == NULL || load_config(a->config_path, &acl) == 0) {
            a->acl = acl;
            tether_info("agent", "SIGHUP: configuration reloaded (%zu uids, %zu gids allowed)",
                        acl.uid_count, acl.gid_count);
        } else {
            tether_error("agent", "SIGHUP: the configuration has errors; keeping the old one");
        }
        /* A reload also asks the fleet at once: after an operator resolved
         * a refusal, or to pick up a changed policy. */
        if (a->phase == PHASE_REFUSED)
            a->phase = PHASE_STARTING;
        tether_info("agent", "SIGHUP: asking the fleet for a token now");
        a->next_exchange_ms = now_ms();
        a->backoff_ms = 0;
        return 1;
    }
    tether_info("agent", "stopping on signal %u", si.ssi_signo);
    return 0;
}

int tether_agent_run_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"state-dir", required_argument, NULL, 's'}, {"socket", required_argument, NULL, 'S'},
        {"tcti", required_argument, NULL, 't'},      {"allow-uid", required_argument, NULL, 'u'},
        {"allow-gid", required_argument, NULL, 'g'}, {"config", required_argument, NULL, 'c'},
        {"log-format", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* The command-line ids, kept as ("u"|"g", id) pairs for SIGHUP reloads. */
    const char *acl_args[4 * TETHER_LOCAL_MAX_IDS];
    int acl_argc = 0;
    agent_t *a = calloc(1, sizeof(*a));
    char ca_path[PATH_MAX], why[256];
    sigset_t mask;
    int code = 1, c, running = 1;
    tether_status_t rc;

    if (a == NULL)
        return 1;
    a->listen_fd = a->signal_fd = -1;
    tether_https_client_init(&a->client);
    tether_tpm_init(&a->tpm);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 's': a->state_dir = optarg; break;
        case 'S': a->socket_path = optarg; break;
        case 't': a->tcti = optarg; break;
        case 'c': a->config_path = optarg; break;
        case 'u':
        case 'g':
            if (acl_add(&a->acl, c == 'g', optarg) != 0 || acl_argc + 2 > (int)(sizeof(acl_args) / sizeof(acl_args[0]))) {
                fprintf(stderr, "tether-agent run: bad --allow-%s '%s'\n", c == 'g' ? "gid" : "uid", optarg);
                code = 2;
                goto out;
            }
            acl_args[acl_argc++] = c == 'g' ? "g" : "u";
            acl_args[acl_argc++] = optarg;
            break;
        case 'l':
            if (strcmp(optarg, "json") == 0)
                tether_log_setup("tether-agent", TETHER_LOG_JSON, TETHER_LOG_INFO);
            else if (strcmp(optarg, "text") != 0) {
                fprintf(stderr, "tether-agent run: --log-format is text or json\n");
                code = 2;
                goto out;
            }
            break;
        case 'h': run_usage(stdout); code = 0; goto out;
        default: run_usage(stderr); code = 2; goto out;
        }
    }
    if (optind != argc || a->state_dir == NULL || a->socket_path == NULL) {
        fprintf(stderr, "tether-agent run: --state-dir and --socket are required\n");
        code = 2;
        goto out;
    }
    if (tether_secure_process_setup() != TETHER_OK)
        tether_warn("agent", "could not disable core dumps and ptrace attach");
    if (a->config_path != NULL && load_config(a->config_path, &a->acl) != 0)
        goto out;
    if ((rc = tether_agent_state_load(a->state_dir, &a->state, why, sizeof(why))) != TETHER_OK) {
        tether_error("agent", "%s: %s; enrol first with 'tether-agent enroll'", a->state_dir,
                     rc == TETHER_ERR_NOT_FOUND ? "not enrolled" : why);
        goto out;
    }
    snprintf(ca_path, sizeof(ca_path), "%s/%s", a->state_dir, TETHER_STATE_CA_FILE);
    /* Short network timeouts: the loop serves local callers in between. */
    a->client.connect_timeout_ms = 5000;
    a->client.io_timeout_ms = 10000;
    a->client.request_timeout_ms = 20000;
    if (tether_https_client_setup(&a->client, a->state.fleet_url, ca_path) != TETHER_OK) {
        tether_error("agent", "%s", a->client.error);
        goto out;
    }
    if (tether_secure_buffer_alloc(&a->token, TETHER_TOKEN_MAX + 1, 0) != TETHER_OK) {
        tether_warn("agent", "cannot lock memory for the token (RLIMIT_MEMLOCK); using "
                             "unlocked memory");
        if (tether_secure_buffer_alloc(&a->token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK)
            goto out;
    }
    if ((rc = tether_tpm_open_esapi(&a->tpm, a->tcti)) != TETHER_OK) {
        tether_error("agent", "%s: %s", tether_strerror(rc), a->tpm.last_error);
        goto out;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (a->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        tether_error("agent", "cannot set up signal handling");
        goto out;
    }
    if ((a->listen_fd = tether_local_listen(a->socket_path, why, sizeof(why))) < 0) {
        tether_error("agent", "%s", why);
        goto out;
    }
    tether_info("agent", "device %s, fleet %s, serving on %s", a->state.device_id,
                a->state.fleet_url, a->socket_path);
    a->next_exchange_ms = now_ms();

    while (running) {
        struct pollfd fds[2] = {{.fd = a->signal_fd, .events = POLLIN},
                                {.fd = a->listen_fd, .events = POLLIN}};
        int64_t now = now_ms(), deadline = a->next_exchange_ms, wait;

        if (now >= a->next_exchange_ms) {
            do_exchange(a);
            continue;
        }
        if (a->has_token && now >= a->token_expiry_ms) {
            drop_token(a);
            if (a->phase == PHASE_OK)
                a->phase = PHASE_BACKOFF;
            tether_warn("agent", "the access token expired before a new one came; failing closed");
        }
        if (a->has_token && a->token_expiry_ms < deadline)
            deadline = a->token_expiry_ms;
        wait = deadline == INT64_MAX ? -1 : deadline - now;
        if (wait > INT_MAX)
            wait = INT_MAX;
        if (poll(fds, 2, (int)wait) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN)
            running = handle_signal(a, acl_args, acl_argc);
        if (running && (fds[1].revents & POLLIN))
            serve_client(a);
    }
    code = 0;
out:
    drop_token(a);
    tether_secure_buffer_free(&a->token);
    if (a->listen_fd >= 0) {
        close(a->listen_fd);
        unlink(a->socket_path);
    }
    if (a->signal_fd >= 0)
        close(a->signal_fd);
    tether_https_client_free(&a->client);
    tether_tpm_close(&a->tpm);
    tether_wipe(a, sizeof(*a));
    free(a);
    return code;
}
