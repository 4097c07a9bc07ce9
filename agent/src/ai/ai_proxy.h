/*
 * The device's local AI endpoint (`tether-agent run --ai-listen`): an app
 * points its OpenAI client at http://127.0.0.1:PORT plus the upstream's
 * path (e.g. /v1) with any API key; the agent drops the app's credentials,
 * adds `Authorization: DPoP <token>` and a fresh proof signed by the TPM
 * for the upstream request, answers a `use_dpop_nonce` challenge by itself
 * (retried once with the server's nonce, which is kept for the next
 * requests), forwards over TLS with the gateway's CA pinned (plain HTTP
 * only to a loopback gateway) and streams the answer back as it arrives.
 * Apps on the device never hold a credential (DESIGN.md, "AI endpoint
 * access").
 *
 * A listener thread accepts; each app connection has its own thread (one
 * request per connection), so streams run side by side and none waits on
 * the run loop, the fleet or another stream. The upstream side is libcurl.
 */
#ifndef TETHER_AGENT_AI_PROXY_H
#define TETHER_AGENT_AI_PROXY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dpop_signer.h"
#include "exchange.h"
#include "tether/error.h"
#include "tether/secure_memory.h"
#include "token_counts.h"

#define TETHER_AI_MAX_HEAD 16384         /* an app's request head */
#define TETHER_AI_MAX_BODY (1024 * 1024) /* an app's request body */
#define TETHER_AI_MAX_CONNECTIONS 64     /* app connections at once; 503 beyond */
#define TETHER_AI_URL_MAX 1024

/* What the proxy asks of the agent that runs it, from its own threads. */
typedef struct tether_ai_agent {
    /* Copies the held token (NUL-terminated) into token (at least
     * TETHER_TOKEN_MAX + 1 bytes) and its jti into jti. False when the
     * agent holds no valid token. */
    bool (*get_token)(void *ctx, tether_secure_buffer_t *token, char jti[TETHER_TOKEN_JTI_MAX + 1]);
    /* Counts one of kind for the token jti. */
    void (*count)(void *ctx, const char *jti, tether_token_count_kind_t kind);
    void *ctx;
} tether_ai_agent_t;

/* The parts of an app's request head the proxy uses. */
typedef struct tether_ai_request {
    char method[TETHER_DPOP_HTM_MAX + 1];
    char target[TETHER_AI_URL_MAX + 1]; /* origin-form: "/v1/...", query kept */
    size_t head_len;                    /* bytes of the head, "\r\n\r\n" included */
    size_t body_len;                    /* Content-Length, 0 when absent */
    char content_type[128];             /* "" when absent */
    char accept[128];                   /* "" when absent */
} tether_ai_request_t;

/* Parses an app's request head in buf[0..len): an upper-case method, an
 * origin-form target of printable ASCII, HTTP/1.1 or 1.0, header lines
 * without bare CR or LF, at most one Content-Length of at most
 * TETHER_AI_MAX_BODY, no Transfer-Encoding. TETHER_OK with *req filled,
 * TETHER_ERR_STATE while the head is incomplete, TETHER_ERR_TOO_LARGE past
 * TETHER_AI_MAX_HEAD or for a larger body, TETHER_ERR_PARSE otherwise. Only
 * Content-Type and Accept are kept of the app's headers: Authorization,
 * Cookie, DPoP and the rest never go upstream. Pure. */
TETHER_MUST_CHECK tether_status_t tether_ai_request_parse(const char *buf, size_t len,
                                                          tether_ai_request_t *req);

/* The upstream base URL: "https://HOST[:PORT]/path", or "http://" with a
 * loopback address (127.0.0.0/8, [::1]) as HOST. origin gets
 * "scheme://authority", prefix the path without a trailing '/'.
 * TETHER_ERR_PARSE with a sentence in why otherwise. */
TETHER_MUST_CHECK tether_status_t tether_ai_upstream_parse(const char *url, char *origin,
                                                           size_t origin_size, char *prefix,
                                                           size_t prefix_size, char *why,
                                                           size_t why_size);

/* The nonce a gateway asked for last (RFC 9449 section 8), shared by the
 * proxy's threads. */
typedef struct tether_ai_nonce {
    pthread_mutex_t lock;
    char value[TETHER_DPOP_NONCE_MAX + 1]; /* "" when none yet */
} tether_ai_nonce_t;

/* What a gateway's answer asks of the next proof. The header callback
 * feeds each response header line to tether_ai_challenge_header. */
typedef struct tether_ai_challenge {
    bool use_dpop_nonce; /* WWW-Authenticate: DPoP error="use_dpop_nonce" */
    char nonce[TETHER_DPOP_NONCE_MAX + 1]; /* DPoP-Nonce, "" when absent or malformed */
} tether_ai_challenge_t;

/* Reads one response header line [line, line + len) (CRLF optional) into c.
 * Pure. */
void tether_ai_challenge_header(tether_ai_challenge_t *c, const char *line, size_t len);

/* Whether a response of this status with challenge c must be retried with
 * c->nonce: a 401 asking for use_dpop_nonce with a well-formed nonce. */
bool tether_ai_challenge_retry(int status, const tether_ai_challenge_t *c);

/* A gateway's Retry-After (RFC 9110 section 10.2.3: delta-seconds or an
 * HTTP-date), passed on to the app with a 429 or 503 so that its client
 * waits as long as the gateway asked. */
#define TETHER_AI_RETRY_AFTER_MAX 31

/* Reads one response header line [line, line + len) (CRLF optional): when
 * it is Retry-After with a value of 1 to TETHER_AI_RETRY_AFTER_MAX letters,
 * digits, spaces, commas and colons (nothing that could end the header
 * line the agent writes), copies the value into out and returns true;
 * otherwise returns false and leaves out alone. Pure. */
bool tether_ai_retry_after_header(const char *line, size_t len,
                                  char out[TETHER_AI_RETRY_AFTER_MAX + 1]);

typedef struct tether_ai_proxy {
    /* Set by _open, read by every thread. */
    char origin[TETHER_AI_URL_MAX + 1];
    char prefix[TETHER_AI_URL_MAX + 1];
    char ca_file[TETHER_AI_URL_MAX + 1]; /* "" for plain HTTP */
    tether_dpop_signer_t *signer;
    tether_ai_agent_t agent;
    int listen_fd;
    int stop_fd; /* eventfd: readable once stopping */
    tether_ai_nonce_t nonce;

    pthread_mutex_t lock; /* guards the two below */
    pthread_cond_t idle;  /* active reached 0 */
    unsigned active;      /* connection threads running */
    bool stopping;

    pthread_t listener;
    bool listening;  /* the listener thread was started */
    bool curl_ready; /* curl_global_init succeeded: cleaned up at close */
} tether_ai_proxy_t;

/* Nothing open. Cannot fail. */
void tether_ai_proxy_init(tether_ai_proxy_t *p);

/* Checks listen ("127.0.0.1:PORT" or "[::1]:PORT": loopback only, since
 * whoever can connect spends the device's credential), upstream (as
 * tether_ai_upstream_parse) and ca_file (required for https, a readable
 * file; ignored for a loopback http upstream), binds the listening socket
 * and starts the listener thread. signer and agent's ctx must outlive the
 * proxy. TETHER_ERR_PARSE or TETHER_ERR_IO with the reason in why. The
 * caller must have blocked the signals it handles (the threads inherit the
 * mask). */
TETHER_MUST_CHECK tether_status_t tether_ai_proxy_open(tether_ai_proxy_t *p, const char *listen,
                                                       const char *upstream, const char *ca_file,
                                                       tether_dpop_signer_t *signer,
                                                       const tether_ai_agent_t *agent, char *why,
                                                       size_t why_size);

/* Stops accepting, aborts the transfers under way and waits for every
 * connection thread; accepts an initialised proxy. */
void tether_ai_proxy_close(tether_ai_proxy_t *p);

#endif
