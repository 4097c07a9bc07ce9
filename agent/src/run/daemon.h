/*
 * tether-agent run (DESIGN.md, "Agent"). The loop is a function over a
 * context, so that unit tests drive it with a poll of their choosing.
 */
#ifndef TETHER_AGENT_DAEMON_H
#define TETHER_AGENT_DAEMON_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "ai_proxy.h"
#include "dpop_signer.h"
#include "exchange_worker.h"
#include "local_api.h"
#include "state.h"
#include "token_counts.h"

/* `tether-agent run`: returns a process exit code. */
int tether_agent_run_main(int argc, char **argv);

/* Reads the config file's text (len bytes): lines "allow_uid = N" or
 * "allow_gid = N", comments from '#', blank lines. The ids are added to
 * acl. Pure. TETHER_ERR_PARSE with *bad_line (1 for the first line) the
 * first line that is none of these, holds a NUL byte or is over 95 bytes,
 * or whose id is not a decimal below 2^32 - 1, or when acl is full. */
TETHER_MUST_CHECK tether_status_t tether_agent_config_parse(const char *text, size_t len,
                                                            tether_local_acl_t *acl,
                                                            size_t *bad_line);

typedef enum tether_agent_phase {
    TETHER_AGENT_STARTING, /* no token yet */
    TETHER_AGENT_OK,       /* holds a valid token */
    TETHER_AGENT_BACKOFF,  /* the last exchange failed; retrying later */
    TETHER_AGENT_REFUSED,  /* the fleet refused for good; not asking until SIGHUP */
} tether_agent_phase_t;

/* The command line of `tether-agent run`; the strings are argv's. */
typedef struct tether_agent_options {
    const char *state_dir;
    const char *socket_path;
    const char *config_path;
    const char *tcti;
    const char *ai_listen;   /* --ai-listen, or NULL: no AI endpoint */
    const char *ai_upstream; /* --ai-upstream */
    const char *ai_ca;       /* --ai-ca */
    /* --platform-eventlog, --tether-eventlog (NULL: the defaults) */
    tether_agent_eventlog_paths_t eventlogs;
    tether_local_acl_t acl; /* the ids of --allow-uid and --allow-gid */
} tether_agent_options_t;

typedef int (*tether_agent_poll_t)(struct pollfd *fds, nfds_t nfds, int timeout_ms);

typedef struct tether_agent {
    tether_agent_options_t opts;
    tether_local_acl_t acl;
    tether_agent_state_t state;
    tether_https_client_t client; /* the worker's while it runs */
    tether_tpm_t tpm;             /* shared by the worker and the signer, under tpm_lock */
    pthread_mutex_t tpm_lock;     /* held around every sequence of TPM commands */
    tether_dpop_signer_t signer;  /* DPoP proofs with the TPM device key */
    /* token_lock guards token, has_token, token_expiry_ms, token_jti and
     * counts: the loop writes them, the AI endpoint's threads read the
     * token and count. The loop's own reads need no lock. */
    pthread_mutex_t token_lock;
    tether_secure_buffer_t token; /* locked; the held token, NUL-terminated */
    bool has_token;
    char token_jti[TETHER_TOKEN_JTI_MAX + 1]; /* the held token's jti, "" when unknown */
    tether_token_counts_t counts; /* proofs signed and requests proxied per token */
    tether_ai_proxy_t ai;         /* the AI endpoint, with --ai-listen */
    int64_t token_issued_ms;  /* monotonic: when the exchange that gave it began */
    int64_t token_expiry_ms;  /* monotonic */
    int64_t drop_token_ms;    /* monotonic: when the held token must go (fail closed) */
    int64_t next_exchange_ms; /* monotonic; TETHER_REFRESH_NEVER when refused */
    bool exchanging;          /* the worker runs an exchange asked at exchange_started_ms */
    int64_t exchange_started_ms;
    bool refresh_after_exchange; /* SIGHUP came during the exchange: ask again after it */
    unsigned failures;           /* consecutive failed exchanges */
    tether_agent_phase_t phase;
    tether_usage_t usage;
    char last_error[256];
    int signal_fd;            /* read for struct signalfd_siginfo records */
    tether_agent_poll_t poll; /* poll(2) but in tests */
    tether_exchange_worker_t worker;
    tether_local_server_t server;
    struct pollfd pollfds[2 + TETHER_LOCAL_POLLFDS];
} tether_agent_t;

/* Nothing open, poll(2) as poll. Cannot fail. */
void tether_agent_init(tether_agent_t *a);

/*
 * Serves until SIGTERM or SIGINT arrive on signal_fd (0) or poll fails for
 * another reason than EINTR (1, logged). The worker must have been started
 * and the server opened (or left closed, for tests). Exchanges run on the
 * worker; the loop itself never waits but in poll.
 */
int tether_agent_loop(tether_agent_t *a);

/* Stops serving (the socket file goes), wipes the token, waits for the
 * worker, releases everything and wipes *a (not freed). */
void tether_agent_free(tether_agent_t *a);

#endif
