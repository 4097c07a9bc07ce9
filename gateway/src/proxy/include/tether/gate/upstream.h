/*
 * tether-gate's client of the upstream AI endpoint, on libcurl.
 *
 * Connections are kept alive through a pool of easy handles: each handle
 * keeps its own connection to the upstream, a transfer takes an idle
 * handle (or makes one, up to max_transfers at once) and puts it back
 * after. A pool rather than one share handle: no lock is held across a
 * transfer, and a handle's options (the provider key, TLS settings) are set
 * once, not at every request.
 *
 * What the upstream receives is written by the gateway alone: the method,
 * the path under base_url, the (inspected) body, and these header fields:
 * Content-Type: application/json, Accept, Authorization: Bearer with the
 * provider key, and the User-Agent. No header of the client's is forwarded
 * (its Authorization and DPoP fields, cookies, anything else): the allow
 * list of client fields is empty.
 *
 * TLS: the upstream's certificate is verified (peer and host name) against
 * ca_file, or the system's trust store when none is given; redirects are
 * not followed, so the key never goes to another host. The provider key is
 * read from key_file at open, kept in memory only, wiped at free, never
 * logged. libcurl keeps its own copy per pooled handle (for the Bearer
 * header) and frees it unwiped when the handle is cleaned up: a limit of
 * the library, bounded by the pool's size.
 */
#ifndef TETHER_GATE_UPSTREAM_H
#define TETHER_GATE_UPSTREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_GATE_MAX_UPSTREAM_URL 512
#define TETHER_GATE_MAX_KEY_BYTES 4096

typedef struct tether_gate_upstream_options {
    const char *base_url; /* the API root as OpenAI clients take it: "https://host/v1" */
    const char *ca_file;  /* PEM; NULL: the system's trust store */
    const char *key_file; /* the provider key; NULL: none (a local vLLM or Ollama) */
    unsigned max_transfers;      /* at once, streams included; > 0 */
    unsigned connect_timeout_ms; /* > 0 */
    unsigned timeout_ms;   /* a whole answer that does not stream; > 0 */
    unsigned idle_timeout_ms; /* a stream that sends nothing for this long is cut; > 0 */
    size_t max_response_bytes; /* an answer that does not stream; > 0 */
} tether_gate_upstream_options_t;

typedef struct tether_gate_upstream {
    char base_url[TETHER_GATE_MAX_UPSTREAM_URL];
    char *key; /* NUL-terminated; wiped at free */
    char *ca_file;
    unsigned connect_timeout_ms;
    unsigned timeout_ms;
    unsigned idle_timeout_ms;
    size_t max_response_bytes;
    pthread_mutex_t lock;
    pthread_cond_t idle; /* a transfer ended */
    bool lock_ready;
    void **pool;  /* idle easy handles (CURL *), pool_count of them */
    unsigned pool_count;
    unsigned active; /* transfers running */
    unsigned max_transfers;
} tether_gate_upstream_t;

/* Called with each piece of a streamed answer as it arrives (from the
 * transfer's thread). Returning false aborts the transfer. */
typedef bool (*tether_gate_upstream_sink_fn)(void *arg, unsigned status, const uint8_t *bytes,
                                             size_t len);
/* Called once, when the answer's head is complete (status known). */
typedef void (*tether_gate_upstream_head_fn)(void *arg, unsigned status);

void tether_gate_upstream_init(tether_gate_upstream_t *upstream);

/* Process-wide libcurl setup: call once before any thread starts. */
TETHER_MUST_CHECK tether_status_t tether_gate_upstream_global_init(void);

/* Checks and copies the options, reads the key (one line; at most
 * TETHER_GATE_MAX_KEY_BYTES of printable ASCII). A sentence in why on
 * failure. */
TETHER_MUST_CHECK tether_status_t tether_gate_upstream_open(
    tether_gate_upstream_t *upstream, const tether_gate_upstream_options_t *opts, char *why,
    size_t why_size);

/* Waits for running transfers, cleans up the pool, wipes the key. Accepts
 * NULL. */
void tether_gate_upstream_free(tether_gate_upstream_t *upstream);

/*
 * One request, answered whole: method "GET" or "POST", path under the API
 * root ("/models", "/chat/completions"), body for POST. *status and *answer
 * (malloc'd, NUL-terminated, answer_len bytes; the caller wipes and frees
 * it) are set on entry. TETHER_ERR_STATE: max_transfers are running.
 * TETHER_ERR_TOO_LARGE: the answer is over max_response_bytes.
 * TETHER_ERR_NETWORK, TETHER_ERR_TIMEOUT, TETHER_ERR_TLS: the transfer
 * failed (why says how, without the key).
 */
TETHER_MUST_CHECK tether_status_t tether_gate_upstream_fetch(tether_gate_upstream_t *upstream,
                                                             const char *method, const char *path,
                                                             const char *body, size_t body_len,
                                                             unsigned *status, char **answer,
                                                             size_t *answer_len, char *why,
                                                             size_t why_size);

/*
 * One POST whose answer streams: head(arg, status) once the head is in,
 * then sink(arg, status, bytes, len) for each piece as it arrives. Blocks
 * the calling thread until the transfer ends; returns TETHER_OK when the
 * answer arrived whole, TETHER_ERR_STATE when max_transfers are running
 * (head is not called), another error when the transfer failed or the sink
 * aborted it (head may not have been called).
 */
TETHER_MUST_CHECK tether_status_t tether_gate_upstream_stream(
    tether_gate_upstream_t *upstream, const char *path, const char *body, size_t body_len,
    tether_gate_upstream_head_fn head, tether_gate_upstream_sink_fn sink, void *arg, char *why,
    size_t why_size);

#endif
