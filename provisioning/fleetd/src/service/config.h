/*
 * fleetd's configuration file (DIR/fleetd.conf): "key = value" lines, '#'
 * comments, unknown keys refused. Parsing is pure (no I/O) and bounded.
 *
 *   listen = 127.0.0.1:8443          IPv4 literal or [IPv6] literal, and port
 *   ek_ca = ek-ca/manufacturer.pem   repeatable; relative to the fleet directory
 *   max_body_bytes = 65536           largest request body (413 above)
 *   max_connections = 1024           in total; checked against the open-file limit
 *   max_connections_per_source = 32  from one IP address
 *   connection_timeout_seconds = 30  idle while a request is read or answered
 *   request_head_timeout_seconds = 10  for the TLS handshake and the request
 *                                    head (slowloris); 1-60; also how long
 *                                    a kept connection may idle
 *   max_requests_per_connection = 100  requests on one kept connection
 *   threads = 4                      HTTP worker threads
 *   bootstrap_max_ttl_seconds = 86400
 *
 * Enrolment (DESIGN.md, "Enrolment"), against callers that prove nothing yet:
 *   enroll_max_pending_per_ek = 8    enrolments in flight for one EK, 1-64
 *   enroll_rate_per_minute = 6       POST /v1/enroll attempts one source
 *   enroll_burst = 20                (IPv4 address, IPv6 /64) may make: a
 *                                    token bucket of enroll_burst refilled at
 *                                    the rate; 429 beyond it
 *
 * The attested token exchange (DESIGN.md, "Attested token exchange"):
 *   pcr_selection = sha256:0,1,2,3,4,5,6,7  PCRs every quote must cover:
 *                                    "sha256:" and ascending PCR numbers 0-23
 *   issuer = https://127.0.0.1:8443  the tokens' "iss" (default: https:// and
 *                                    the listen address); an https URL without
 *                                    query, fragment or trailing '/'
 *   audience = tether                the audiences a device may ask for,
 *                                    comma-separated; the first is the default
 *   scope = ai.inference             the scopes a device may ask for,
 *                                    space-separated (RFC 6749 syntax); all of
 *                                    them by default
 *   token_lifetime_seconds = 300     clamped to 30..3600
 *   models = *                       the "tether.models" claim: comma-separated
 *   cost_ceiling = 0                 the "tether.cost_ceiling" claim (0: none)
 *   usage_mismatch_action = quarantine  alert or quarantine: what a token found
 *                                    used by someone else does to its device
 *
 * Retention (README, "Retention"): the purge in fleetd's service loop
 *   token_retention_hours = 168      issued tokens, their counts and usage
 *                                    alerts, and relying parties' per-token
 *                                    usage, kept this long after the token's
 *                                    usage window closed; 1-87600
 *   alert_retention_days = 30        alerts kept this long (one a webhook
 *                                    still waits for stays); 1-36500
 *   purge_batch_rows = 1000          rows per table per purge transaction
 *   purge_pause_milliseconds = 20    between two purge transactions, so
 *                                    exchanges are not held up; 0-10000
 *
 * The store (README, "The store"):
 *   store = postgresql://fleet@db.example:5432/tether   PostgreSQL, which
 *                                    several fleetd replicas may share; without
 *                                    it, SQLite in DIR/fleet.db. A password in
 *                                    the URL requires this file to be 0600;
 *                                    better, libpq's ~/.pgpass (PGPASSFILE) or
 *                                    a service file (PGSERVICEFILE) holds it
 *
 * Webhooks that get every alert (README, "Webhooks"), repeatable, one line
 * each with space-separated attributes:
 *   webhook = name=security url=https://hooks.example:8443/tether
 *             ca=webhook-ca.pem secret=webhook-security.key timeout=10
 *     name     1-32 of a-z 0-9 _ -, unique: the outbox rows and delivery
 *              ids carry it (renaming makes another webhook)
 *     url      https://HOST[:PORT][/path], or http:// to a loopback address
 *              literal (127.0.0.0/8, [::1]) only
 *     ca       PEM CA file the receiver's certificate must chain to
 *              (https only, required there); relative to the directory
 *     secret   the HMAC key file (relative to the directory; checked and
 *              read by the delivery, webhook.h)
 *     timeout  seconds for one delivery attempt, 1-60 (default 10)
 */
#ifndef TETHER_FLEET_CONFIG_H
#define TETHER_FLEET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"
#include "tether/url.h"

#define TETHER_CONFIG_FILE "fleetd.conf"
#define TETHER_CONFIG_MAX_SIZE 16384
#define TETHER_CONFIG_MAX_EK_CA 16
#define TETHER_CONFIG_PATH_MAX 128
#define TETHER_CONFIG_HOST_MAX 46 /* INET6_ADDRSTRLEN */
#define TETHER_CONFIG_VALUE_MAX 256 /* bytes of a text value of the exchange keys */
#define TETHER_CONFIG_DEFAULT_PCR_SELECTION "sha256:0,1,2,3,4,5,6,7"
#define TETHER_CONFIG_TOKEN_LIFETIME_MIN 30
#define TETHER_CONFIG_TOKEN_LIFETIME_MAX 3600
#define TETHER_CONFIG_DEFAULT_ENROLL_MAX_PENDING_PER_EK 8
#define TETHER_CONFIG_DEFAULT_ENROLL_RATE_PER_MINUTE 6
#define TETHER_CONFIG_DEFAULT_ENROLL_BURST 20
#define TETHER_CONFIG_DEFAULT_TOKEN_RETENTION_HOURS 168 /* 7 days: as long as usage report ids */
#define TETHER_CONFIG_DEFAULT_ALERT_RETENTION_DAYS 30
#define TETHER_CONFIG_DEFAULT_PURGE_BATCH_ROWS 1000
#define TETHER_CONFIG_DEFAULT_PURGE_PAUSE_MILLISECONDS 20
#define TETHER_CONFIG_MAX_WEBHOOKS 8
#define TETHER_CONFIG_WEBHOOK_NAME_MAX 32 /* bytes, as the store's */
#define TETHER_CONFIG_WEBHOOK_URL_MAX 384
#define TETHER_CONFIG_WEBHOOK_TIMEOUT_DEFAULT 10
#define TETHER_CONFIG_WEBHOOK_TIMEOUT_MAX 60

/* One webhook line, validated. */
typedef struct tether_fleet_webhook_config {
    char name[TETHER_CONFIG_WEBHOOK_NAME_MAX + 1];
    char url[TETHER_CONFIG_WEBHOOK_URL_MAX];
    bool https;                         /* else http to a loopback address */
    char ca[TETHER_CONFIG_PATH_MAX];     /* https: required; http: "" */
    char secret[TETHER_CONFIG_PATH_MAX];
    unsigned timeout_seconds;
} tether_fleet_webhook_config_t;

typedef struct tether_fleet_config {
    char listen_host[TETHER_CONFIG_HOST_MAX]; /* without brackets */
    uint16_t listen_port;
    bool listen_ipv6;
    char ek_ca[TETHER_CONFIG_MAX_EK_CA][TETHER_CONFIG_PATH_MAX];
    size_t ek_ca_count;
    size_t max_body_bytes;
    unsigned max_connections;
    unsigned max_connections_per_source;
    unsigned connection_timeout_seconds;
    unsigned request_head_timeout_seconds;
    unsigned max_requests_per_connection;
    unsigned threads;
    unsigned bootstrap_max_ttl_seconds;
    unsigned enroll_max_pending_per_ek;
    unsigned enroll_rate_per_minute;
    unsigned enroll_burst;
    unsigned token_retention_hours; /* retention (README, "Retention") */
    unsigned alert_retention_days;
    unsigned purge_batch_rows;
    unsigned purge_pause_milliseconds;
    /* The exchange: validated text, "" for issuer means the default. */
    char pcr_selection[TETHER_CONFIG_VALUE_MAX];
    char issuer[TETHER_CONFIG_VALUE_MAX];
    char audience[TETHER_CONFIG_VALUE_MAX];
    char scope[TETHER_CONFIG_VALUE_MAX];
    unsigned token_lifetime_seconds; /* as written; tether_fleet_config_token_lifetime() clamps */
    char models[TETHER_CONFIG_VALUE_MAX];
    char cost_ceiling[32];
    char usage_mismatch_action[16]; /* "alert" or "quarantine" */
    char store[TETHER_CONFIG_VALUE_MAX]; /* a PostgreSQL URL; "": SQLite, DIR/fleet.db */
    tether_fleet_webhook_config_t webhooks[TETHER_CONFIG_MAX_WEBHOOKS];
    size_t webhook_count;
} tether_fleet_config_t;

typedef struct tether_fleet_config_error {
    size_t line; /* 0 when not about one line */
    char message[128];
} tether_fleet_config_error_t;

/* The defaults: listen 127.0.0.1:8443 and the limits above. */
void tether_fleet_config_init(tether_fleet_config_t *config);

/* Parses "HOST:PORT" (IPv4) or "[HOST]:PORT" (IPv6) into config's listen
 * fields. Host names are refused: the address is bound and certified. */
TETHER_MUST_CHECK tether_status_t tether_fleet_config_set_listen(tether_fleet_config_t *config,
                                                                 const char *text);

/* Parses len bytes over the defaults already in config (tether_fleet_config_init
 * first). TETHER_ERR_PARSE with error set on a bad line. */
TETHER_MUST_CHECK tether_status_t tether_fleet_config_parse(const char *text, size_t len,
                                                            tether_fleet_config_t *config,
                                                            tether_fleet_config_error_t *error);

/* Writes config as a documented file into a malloc'd string (*out, freed by
 * the caller) that tether_fleet_config_parse reads back unchanged. */
TETHER_MUST_CHECK tether_status_t tether_fleet_config_format(const tether_fleet_config_t *config,
                                                             char **out);

/* "HOST:PORT" or "[HOST]:PORT" for config's listen address. */
tether_status_t tether_fleet_config_listen_text(const tether_fleet_config_t *config, char *out,
                                                size_t out_size);

/* token_lifetime_seconds clamped to TETHER_CONFIG_TOKEN_LIFETIME_MIN..MAX. */
unsigned tether_fleet_config_token_lifetime(const tether_fleet_config_t *config);

/* The tokens' issuer: config->issuer, or "https://" and the listen address. */
tether_status_t tether_fleet_config_issuer(const tether_fleet_config_t *config, char *out,
                                           size_t out_size);

/* Checks of the exchange keys' values (also used on requests): a PCR
 * selection "sha256:N,N,..." (ascending, 0-23, at least one); an https URL
 * without query, fragment or trailing '/'; a comma-separated list of 1-128
 * byte items of printable ASCII without spaces, quotes or backslashes; an
 * RFC 6749 scope (scope-tokens separated by single spaces); a non-negative
 * decimal of up to 12 digits and 6 decimals. */
bool tether_fleet_config_pcr_selection_valid(const char *text);
bool tether_fleet_config_issuer_valid(const char *text);
bool tether_fleet_config_list_valid(const char *text);
bool tether_fleet_config_scope_valid(const char *text);
bool tether_fleet_config_decimal_valid(const char *text);
/* "alert" or "quarantine". */
bool tether_fleet_config_usage_action_valid(const char *text);
/* The store key: a postgresql:// or postgres:// URL of printable ASCII
 * without spaces (libpq checks the rest when it connects). */
bool tether_fleet_config_store_valid(const char *text);

/* A webhook's URL: https://HOST[:PORT][/path] (port 443 by default), or
 * http:// to 127.0.0.0/8 or [::1] (port 80 by default), as tether_url_parse
 * reads a base URL. *https says which. */
TETHER_MUST_CHECK tether_status_t tether_fleet_config_webhook_url(const char *text,
                                                                  tether_url_t *url, bool *https,
                                                                  const char **problem);

/* Parses one webhook line's value into webhook; false with a static
 * sentence in *problem when it is not valid. */
bool tether_fleet_config_webhook_parse(const char *text,
                                       tether_fleet_webhook_config_t *webhook,
                                       const char **problem);

/* A relative path inside the fleet directory: [A-Za-z0-9._/-], no "..", not
 * absolute, at most TETHER_CONFIG_PATH_MAX - 1 bytes. */
bool tether_fleet_config_path_valid(const char *path);

#endif
