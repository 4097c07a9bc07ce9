/*
 * tether-gate's configuration file (DIR/gate.conf): "key = value" lines,
 * '#' comments, "[policy NAME]" sections; unknown keys, repeated keys and
 * values out of range are refused with the line. Parsing is pure (no I/O)
 * and bounded (TETHER_GATE_CONFIG_MAX_SIZE bytes, lines of at most 512).
 *
 * Top level (before the first section):
 *   listen = 127.0.0.1:8480         IPv4:PORT or [IPv6]:PORT
 *   public_url = http://127.0.0.1:8480  the scheme, host and port clients
 *                                   call: the htu of their DPoP proofs (behind
 *                                   nginx: nginx's URL)
 *   tls_cert = FILE, tls_key = FILE  serve HTTPS (both, or neither: HTTP,
 *                                   then only on a loopback address)
 *   fleet = https://fleet:8443      fleetd's base URL: the tokens' issuer
 *   fleet_ca = FILE                 the CA pinned for fleetd's certificate
 *   rp_token_file = FILE            fleetd admin token with the relying-party
 *                                   role (mode 0600 or 0400, owned by the user)
 *   upstream = URL                  the AI endpoint (http or https)
 *   upstream_key_file = FILE        its API key (same mode rule), optional
 *   upstream_ca = FILE              the CA for an https upstream (default:
 *                                   the system's trust store)
 *   upstream_max_transfers = 64     upstream requests at once, streams
 *                                   included (503 upstream_busy beyond)
 *   upstream_timeout_seconds = 300  a whole answer that does not stream
 *   upstream_idle_timeout_seconds = 60  a stream silent this long is cut
 *   max_devices = 65536             devices the ceilings track; spend is
 *                                   never forgotten early: size for the
 *                                   devices active in one day
 *   audience = tether-gate          the aud tokens must carry
 *   dpop_nonce = no                 ask every client for a server nonce
 *   dpop_max_age_seconds = 60       oldest proof iat accepted
 *   clock_leeway_seconds = 5        skew tolerated for iat, exp, nbf
 *   feed_staleness_seconds = 60     refuse everything when the revocation
 *                                   feed was not reached for this long
 *   usage_report_seconds = 5        how often usage per token is reported
 *                                   to the fleet (1-60; the issue asks 5 at most)
 *   replay_cache_entries, token_cache_entries, max_body_bytes,
 *   max_connections, max_connections_per_source, connection_timeout_seconds,
 *   request_head_timeout_seconds, threads
 *   price = MODEL=PROMPT_PER_1K:COMPLETION_PER_1K   repeatable
 * Files are absolute or relative to DIR.
 *
 * [policy NAME] (the token's tether.policy claim names one; "default" first):
 *   models = GLOB,...               allowed models ('*' matches any run)
 *   requests_per_minute = N         per device (0: no ceiling)
 *   tokens_per_minute = N           per device (0: no ceiling)
 *   spend_per_day = AMOUNT          per device, in the price table's
 *                                   currency (0: no ceiling)
 *   max_tokens = N                  injected when a request sends none
 *   allow_bearer = no               accept "Authorization: Bearer" (no proof)
 */
#ifndef TETHER_GATE_CONFIG_H
#define TETHER_GATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_GATE_CONFIG_FILE "gate.conf"
#define TETHER_GATE_CONFIG_MAX_SIZE 65536
#define TETHER_GATE_CONFIG_PATH_MAX 256
#define TETHER_GATE_CONFIG_URL_MAX 256
#define TETHER_GATE_CONFIG_NAME_MAX 64   /* policy and model names, audience */
#define TETHER_GATE_CONFIG_HOST_MAX 46   /* INET6_ADDRSTRLEN */
#define TETHER_GATE_CONFIG_MODELS_MAX 512
#define TETHER_GATE_CONFIG_MAX_POLICIES 32
#define TETHER_GATE_CONFIG_MAX_PRICES 64
#define TETHER_GATE_DEFAULT_POLICY "default"
/* Money in millionths of the price table's currency unit. */
#define TETHER_GATE_MICROS 1000000ULL

typedef struct tether_gate_config_policy {
    char name[TETHER_GATE_CONFIG_NAME_MAX + 1];
    char models[TETHER_GATE_CONFIG_MODELS_MAX + 1]; /* comma-separated globs */
    uint32_t requests_per_minute;
    uint32_t tokens_per_minute;
    uint64_t spend_per_day_micros;
    uint32_t max_tokens;
    bool allow_bearer;
} tether_gate_config_policy_t;

typedef struct tether_gate_config_price {
    char model[TETHER_GATE_CONFIG_NAME_MAX + 1];
    uint64_t prompt_per_1k_micros;
    uint64_t completion_per_1k_micros;
} tether_gate_config_price_t;

typedef struct tether_gate_config {
    char listen_host[TETHER_GATE_CONFIG_HOST_MAX]; /* without brackets */
    uint16_t listen_port;
    bool listen_ipv6;
    char public_url[TETHER_GATE_CONFIG_URL_MAX]; /* "" until set: http(s):// and listen */
    char tls_cert[TETHER_GATE_CONFIG_PATH_MAX];
    char tls_key[TETHER_GATE_CONFIG_PATH_MAX];
    char fleet[TETHER_GATE_CONFIG_URL_MAX];
    char fleet_ca[TETHER_GATE_CONFIG_PATH_MAX];
    char rp_token_file[TETHER_GATE_CONFIG_PATH_MAX];
    char upstream[TETHER_GATE_CONFIG_URL_MAX];
    char upstream_key_file[TETHER_GATE_CONFIG_PATH_MAX];
    char upstream_ca[TETHER_GATE_CONFIG_PATH_MAX]; /* "" : the system's trust store */
    uint32_t upstream_max_transfers;
    uint32_t upstream_timeout_seconds;
    uint32_t upstream_idle_timeout_seconds;
    uint32_t max_devices;
    char audience[TETHER_GATE_CONFIG_NAME_MAX + 1];
    bool dpop_nonce;
    uint32_t dpop_max_age_seconds;
    uint32_t clock_leeway_seconds;
    uint32_t feed_staleness_seconds;
    uint32_t usage_report_seconds;
    uint32_t replay_cache_entries;
    uint32_t token_cache_entries;
    uint32_t max_body_bytes;
    uint32_t max_connections;
    uint32_t max_connections_per_source;
    uint32_t connection_timeout_seconds;
    uint32_t request_head_timeout_seconds;
    uint32_t threads;
    tether_gate_config_price_t prices[TETHER_GATE_CONFIG_MAX_PRICES];
    size_t price_count;
    tether_gate_config_policy_t policies[TETHER_GATE_CONFIG_MAX_POLICIES];
    size_t policy_count;
} tether_gate_config_t;

typedef struct tether_gate_config_error {
    size_t line; /* 0 when not about one line */
    char message[160];
} tether_gate_config_error_t;

/* The defaults (listen 127.0.0.1:8480, the limits above) and no policy. */
void tether_gate_config_init(tether_gate_config_t *config);

/* Defaults of a new policy named name (no ceilings but the ones written by
 * init: models "*", max_tokens 1024, no bearer). */
void tether_gate_config_policy_init(tether_gate_config_policy_t *policy, const char *name);

/* Parses len bytes over the defaults in config (tether_gate_config_init
 * first), then checks the whole: fleet, fleet_ca, rp_token_file and upstream
 * set; a policy "default"; tls_cert and tls_key together; plain HTTP only on
 * a loopback address. TETHER_ERR_PARSE (or TETHER_ERR_TOO_LARGE) with error
 * set. */
TETHER_MUST_CHECK tether_status_t tether_gate_config_parse(const char *text, size_t len,
                                                           tether_gate_config_t *config,
                                                           tether_gate_config_error_t *error);

/* Writes config as a documented file (malloc'd, *out freed by the caller)
 * that tether_gate_config_parse reads back unchanged. */
TETHER_MUST_CHECK tether_status_t tether_gate_config_format(const tether_gate_config_t *config,
                                                            char **out);

/* Single values, as the command line gives them (also used by the parser).
 * Each returns TETHER_ERR_PARSE with a sentence in why (why_size bytes). */
TETHER_MUST_CHECK tether_status_t tether_gate_config_set_listen(tether_gate_config_t *config,
                                                                const char *text);
TETHER_MUST_CHECK tether_status_t tether_gate_config_add_price(tether_gate_config_t *config,
                                                               const char *text, char *why,
                                                               size_t why_size);
TETHER_MUST_CHECK tether_status_t tether_gate_config_parse_amount(const char *text,
                                                                  uint64_t *micros);
bool tether_gate_config_models_valid(const char *text);
bool tether_gate_config_url_valid(const char *text);

/* The policy named name, or NULL. */
const tether_gate_config_policy_t *tether_gate_config_policy(const tether_gate_config_t *config,
                                                      const char *name);

/* Whether model matches one of the comma-separated globs of models ('*'
 * matches any run of characters, everything else itself). */
bool tether_gate_models_allow(const char *models, const char *model);

/* Sets public_url to the listen address: http:// (https:// with tls_cert)
 * and the address. */
void tether_gate_config_default_public_url(tether_gate_config_t *config);

/* Whether the listen address is a loopback address (127.0.0.0/8, ::1). */
bool tether_gate_config_listen_is_loopback(const tether_gate_config_t *config);

#endif
