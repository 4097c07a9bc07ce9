/* tether-fleetd run: configuration, keys and store of a fleet directory,
 * served over HTTPS. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "files.h"
#include "fleet.h"
#include "fleet_policies.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"

#define PEM_FILE_MAX (16 * 1024)
/* Long polls of the revocation feed waiting at once: at most half of the
 * connections, so that waiting relying parties never lock operators out. */
#define FEED_WAITERS_MAX 64

void tether_fleet_service_init(tether_fleet_service_t *service)
{
    if (service == NULL)
        return;
    memset(service, 0, sizeof(*service));
    tether_fleet_config_init(&service->config);
    tether_store_init(&service->store);
    tether_usage_check_init(&service->usage_check);
    tether_issuer_keys_init(&service->issuer_keys);
    tether_cert_set_init(&service->ek_cas);
    tether_http_server_init(&service->server);
    tether_fleet_metrics_init(&service->metrics);
    tether_webhook_sender_init(&service->webhooks);
}

/* TLS session tickets are accepted for an hour: longer than the interval
 * between a device's refreshes (2/3 of a token's life, at most 40 minutes),
 * so each refresh resumes its TLS session; the ticket keys rotate with the
 * same period (tether/http_server.h). */
#define TETHER_FLEET_SESSION_TICKET_SECONDS 3600

tether_status_t tether_fleet_config_load(const char *component, const char *dir,
                                         tether_fleet_config_t *config)
{
    char path[4096];
    tether_fleet_config_error_t error;
    uint8_t *text = NULL;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = tether_fleet_path(path, sizeof(path), dir, TETHER_CONFIG_FILE)) != TETHER_OK)
        return rc;
    rc = tether_file_read(path, TETHER_CONFIG_MAX_SIZE, &text, &len);
    if (rc == TETHER_ERR_NOT_FOUND) {
        tether_error(component, "%s not found: is %s a fleet directory? "
                                "(tether-fleetd init creates one)", path, dir);
        return rc;
    }
    if (rc != TETHER_OK) {
        tether_error(component, "cannot read %s: %s", path, tether_strerror(rc));
        return rc;
    }
    rc = tether_fleet_config_parse((const char *)text, len, config, &error);
    if (rc != TETHER_OK)
        tether_error(component, "%s line %zu: %s", path, error.line, error.message);
    free(text);
    return rc;
}

static tether_status_t load_pem(const char *dir, const char *name, tether_fleet_pem_t *pem)
{
    char path[4096];
    uint8_t *data = NULL;
    tether_status_t rc;

    if ((rc = tether_fleet_path(path, sizeof(path), dir, name)) != TETHER_OK)
        return rc;
    if ((rc = tether_file_read(path, PEM_FILE_MAX, &data, &pem->len)) != TETHER_OK) {
        tether_error("run", "cannot read %s: %s", path, tether_strerror(rc));
        return rc;
    }
    pem->data = (char *)data;
    return TETHER_OK;
}

/* The EK CAs, read once into one chain for enrolment: every certificate of
 * every file is a trust anchor (a manufacturer's intermediate as much as its
 * root). A missing or broken file is reported at start rather than when the
 * first device enrols. */
static tether_status_t load_ek_cas(tether_fleet_service_t *service, const char *dir)
{
    tether_status_t rc = TETHER_OK;

    for (size_t i = 0; rc == TETHER_OK && i < service->config.ek_ca_count; i++) {
        char path[4096];

        rc = tether_fleet_path(path, sizeof(path), dir, service->config.ek_ca[i]);
        if (rc != TETHER_OK)
            break;
        if (tether_cert_set_add_file(&service->ek_cas, path) != TETHER_OK) {
            tether_error("run", "ek_ca %s: cannot read it as X.509 certificates (PEM or DER)",
                         path);
            rc = TETHER_ERR_PARSE;
        }
    }
    if (rc == TETHER_OK && service->config.ek_ca_count == 0)
        tether_warn("run", "no ek_ca in %s: every enrolment will be refused", TETHER_CONFIG_FILE);
    return rc;
}

/* What open and check read first: the configuration, the TLS certificate
 * and key, the EK CAs. */
static tether_status_t load_files(tether_fleet_service_t *service, const char *dir)
{
    tether_status_t rc;

    if ((rc = tether_fleet_config_load("run", dir, &service->config)) != TETHER_OK ||
        (rc = load_pem(dir, TETHER_FLEET_TLS_CERT_FILE, &service->tls_cert)) != TETHER_OK ||
        (rc = load_pem(dir, TETHER_FLEET_TLS_KEY_FILE, &service->tls_key)) != TETHER_OK)
        return rc;
    return load_ek_cas(service, dir);
}

/* The enrolment key; a fleet made before enrolment existed gets one now. */
static tether_status_t load_enroll_key(tether_fleet_service_t *service, const char *dir)
{
    uint8_t key[TETHER_ENROLL_KEY_SIZE];
    tether_status_t rc =
        tether_fleet_key_file_load(dir, TETHER_FLEET_ENROLL_KEY_FILE, key, sizeof(key), true);

    if (rc == TETHER_OK) {
        tether_enroll_api_init(&service->enroll, &service->store,
                               service->config.ek_ca_count > 0 ? &service->ek_cas : NULL, key);
        rc = tether_enroll_api_set_limits(&service->enroll,
                                          service->config.enroll_max_pending_per_ek,
                                          service->config.enroll_rate_per_minute,
                                          service->config.enroll_burst);
    }
    tether_wipe(key, sizeof(key));
    return rc;
}

/* Introspection verifies with the issuer keys (issuer_keys.h). */
static tether_status_t rp_keys_acquire(void *arg, int64_t now, tether_jwt_keyset_t *keys,
                                       const char **issuer)
{
    return tether_issuer_keys_acquire(arg, now, keys, issuer);
}

static void rp_keys_release(void *arg)
{
    tether_issuer_keys_release(arg);
}

/* The exchange (DESIGN.md, "Attested token exchange"): the token policy,
 * the nonce key (made like the enrolment key for a fleet made before the
 * exchange existed) and the issuer keys, with the store open. */
static tether_status_t open_exchange(tether_fleet_service_t *service, const char *dir)
{
    uint8_t key[TETHER_NONCE_KEY_SIZE];
    tether_status_t rc;

    if ((rc = tether_token_policy_from_config(&service->config, &service->token_policy)) !=
        TETHER_OK) {
        tether_error("run", "%s: the exchange settings are invalid", TETHER_CONFIG_FILE);
        return rc;
    }
    if (service->token_policy.lifetime_seconds != service->config.token_lifetime_seconds)
        tether_warn("run", "token_lifetime_seconds = %u is outside %d-%d: tokens live %u s",
                    service->config.token_lifetime_seconds, TETHER_CONFIG_TOKEN_LIFETIME_MIN,
                    TETHER_CONFIG_TOKEN_LIFETIME_MAX, service->token_policy.lifetime_seconds);
    if ((rc = tether_fleet_policy_default_ensure(&service->store, &service->token_policy,
                                                 (int64_t)time(NULL))) != TETHER_OK ||
        (rc = tether_fleet_key_file_load(dir, TETHER_FLEET_NONCE_KEY_FILE, key, sizeof(key),
                                         true)) != TETHER_OK)
        return rc;
    rc = tether_issuer_keys_open(&service->issuer_keys, dir, &service->store,
                                 service->token_policy.issuer, (int64_t)time(NULL));
    if (rc == TETHER_OK) {
        tether_exchange_api_init(&service->exchange, &service->store, &service->issuer_keys,
                                 &service->token_policy, key);
        tether_discovery_api_init(&service->discovery, &service->issuer_keys,
                                  &service->token_policy);
        service->api.issuer_keys = &service->issuer_keys;
        tether_rp_api_set_keys(&service->relying_party,
                               &(tether_introspect_keys_t){rp_keys_acquire, rp_keys_release,
                                                           &service->issuer_keys});
    }
    tether_wipe(key, sizeof(key));
    return rc;
}

/* The store's hook: a revocation was committed here; waiting feed requests
 * look at once, and it is counted. */
static void on_revocation(void *arg)
{
    tether_fleet_service_t *service = arg;

    tether_metric_add(service->metrics.revocations, 1);
    tether_rp_api_revoked(&service->relying_party);
    tether_http_server_wake(&service->server);
}

static unsigned feed_waiters_max(unsigned max_connections)
{
    unsigned half = max_connections / 2;

    return half == 0 ? 1 : half > FEED_WAITERS_MAX ? FEED_WAITERS_MAX : half;
}

/* The connections of a PostgreSQL store: one per HTTP worker thread, and
 * one each for the background tasks (webhook deliveries, the usage check). */
#define STORE_BACKGROUND_CONNECTIONS 2

/* Opens the existing database only: a mistyped --dir must not start an
 * empty fleet. A PostgreSQL store was made by init (its schema is migrated
 * as SQLite's is); a URL with a password needs fleetd.conf closed to group
 * and others. */
static tether_status_t open_store(tether_fleet_service_t *service, const char *dir)
{
    static const tether_fleet_owned_hints_t config_hints = {
        .missing = "",
        .owner = "chown it to the user running tether-fleetd",
        .mode = "it holds the database password: chmod 600 it, or move the password to "
                "~/.pgpass (PGPASSFILE)",
    };
    const char *url = service->config.store;
    char path[4096];
    struct stat st;
    tether_status_t rc;

    if (url[0] != '\0') {
        if (tether_store_url_has_password(url) &&
            ((rc = tether_fleet_path(path, sizeof(path), dir, TETHER_CONFIG_FILE)) != TETHER_OK ||
             (rc = tether_fleet_check_owned("run", path, S_IFREG, 0077, &config_hints)) !=
                 TETHER_OK))
            return rc;
        return tether_store_open_postgresql(&service->store, url,
                                            service->config.threads +
                                                STORE_BACKGROUND_CONNECTIONS);
    }
    if ((rc = tether_fleet_path(path, sizeof(path), dir, TETHER_FLEET_DB_FILE)) != TETHER_OK)
        return rc;
    if (stat(path, &st) != 0) {
        tether_error("run", "%s not found: the fleet directory is incomplete", path);
        return TETHER_ERR_NOT_FOUND;
    }
    return tether_store_open_sqlite(&service->store, path);
}

tether_status_t tether_fleet_service_open(tether_fleet_service_t *service, const char *dir)
{
    tether_http_server_options_t opts;
    tether_retention_t retention;
    tether_status_t rc;

    if (service == NULL || dir == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = load_files(service, dir)) != TETHER_OK ||
        (rc = load_enroll_key(service, dir)) != TETHER_OK ||
        (rc = open_store(service, dir)) != TETHER_OK ||
        (rc = tether_fleet_metrics_open(&service->metrics, (int64_t)time(NULL))) != TETHER_OK)
        return rc;
    tether_store_set_metrics(&service->store, service->metrics.store_transaction_seconds);
    if (service->config.store[0] != '\0') { /* PostgreSQL: its pool */
        tether_store_pool_metrics_t pool;

        if ((rc = tether_fleet_metrics_store_pool(&service->metrics, &pool)) != TETHER_OK)
            return rc;
        tether_store_set_pool_metrics(&service->store, &pool);
    }
    tether_admin_api_init(&service->api, &service->store,
                          service->config.bootstrap_max_ttl_seconds);
    tether_rp_api_init(&service->relying_party, &service->store);
    if ((rc = open_exchange(service, dir)) != TETHER_OK)
        return rc;
    tether_store_set_revocation_hook(&service->store, on_revocation, service);
    if ((rc = tether_webhook_sender_start(&service->webhooks, dir, &service->config,
                                          &service->store, &service->metrics)) != TETHER_OK)
        return rc;
    if (service->webhooks.count > 0)
        tether_store_set_alert_hook(&service->store, tether_webhook_sender_notify,
                                    &service->webhooks);
    memset(&opts, 0, sizeof(opts));
    opts.host = service->config.listen_host;
    opts.ipv6 = service->config.listen_ipv6;
    opts.port = service->config.listen_port;
    opts.cert_pem = service->tls_cert.data;
    opts.key_pem = service->tls_key.data;
    opts.max_body_bytes = service->config.max_body_bytes;
    opts.max_connections = service->config.max_connections;
    opts.max_connections_per_source = service->config.max_connections_per_source;
    opts.connection_timeout_seconds = service->config.connection_timeout_seconds;
    opts.request_head_timeout_seconds = service->config.request_head_timeout_seconds;
    opts.max_requests_per_connection = service->config.max_requests_per_connection;
    opts.session_ticket_seconds = TETHER_FLEET_SESSION_TICKET_SECONDS;
    opts.threads = service->config.threads;
    opts.max_parked = feed_waiters_max(service->config.max_connections);
    service->router = (tether_router_t){
        .store = &service->store,
        .admin = &service->api,
        .enroll = &service->enroll,
        .exchange = &service->exchange,
        .discovery = &service->discovery,
        .relying_party = &service->relying_party,
        .metrics = &service->metrics,
    };
    opts.handler = tether_router_handle;
    opts.handler_arg = &service->router;
    opts.metrics = &service->metrics.registry;
    if ((rc = tether_http_server_open(&service->server, &opts)) != TETHER_OK)
        return rc;
    retention = (tether_retention_t){
        .token_seconds = (int64_t)service->config.token_retention_hours * 3600,
        .alert_seconds = (int64_t)service->config.alert_retention_days * 86400,
        .batch = service->config.purge_batch_rows,
        .pause_ms = service->config.purge_pause_milliseconds,
    };
    /* Grace: one token lifetime, within which an honest device's next
     * exchange after a token's expiry comes (it refreshes at 2/3 of it). */
    return tether_usage_check_start(&service->usage_check, &service->store,
                                    (int64_t)service->token_policy.lifetime_seconds, &retention,
                                    service->metrics.purged_rows);
}

tether_status_t tether_fleet_service_check(tether_fleet_service_t *service, const char *dir)
{
    tether_status_t rc;

    if (service == NULL || dir == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = load_files(service, dir)) != TETHER_OK)
        return rc;
    return tether_webhook_sender_open(&service->webhooks, dir, &service->config, NULL);
}

void tether_fleet_service_free(tether_fleet_service_t *service)
{
    if (service == NULL)
        return;
    /* The server and the check first: nothing may reach a closed store. */
    tether_http_server_free(&service->server);
    tether_usage_check_free(&service->usage_check);
    tether_store_set_alert_hook(&service->store, NULL, NULL);
    tether_webhook_sender_free(&service->webhooks);
    tether_rp_api_free(&service->relying_party);
    tether_exchange_api_free(&service->exchange);
    tether_issuer_keys_free(&service->issuer_keys);
    tether_store_free(&service->store);
    tether_enroll_api_free(&service->enroll);
    tether_cert_set_free(&service->ek_cas);
    tether_fleet_pem_free(&service->tls_cert);
    tether_fleet_pem_free(&service->tls_key);
    tether_fleet_metrics_free(&service->metrics);
    tether_wipe(service, sizeof(*service));
}
