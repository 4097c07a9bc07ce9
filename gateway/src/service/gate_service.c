/* A gateway directory served (gate_service.h). */
#include "gate_service.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"

#define PEM_MAX (64 * 1024)

void tether_gate_service_init(tether_gate_service_t *service)
{
    if (service == NULL)
        return;
    memset(service, 0, sizeof(*service));
    tether_gate_config_init(&service->config);
    tether_gate_fleet_keys_init(&service->keys);
    tether_gate_revocations_init(&service->revocations);
    tether_gate_feed_follower_init(&service->follower);
    tether_gate_usage_reporter_init(&service->usage);
    tether_gate_access_init(&service->access);
    tether_gate_monitor_init(&service->monitor);
    tether_gate_forward_init(&service->forward);
    tether_http_server_init(&service->server);
}

static tether_status_t load_fail(tether_gate_load_error_t *error, tether_status_t rc,
                                 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static tether_status_t load_fail(tether_gate_load_error_t *error, tether_status_t rc,
                                 const char *fmt, ...)
{
    va_list ap;

    if (error != NULL) {
        va_start(ap, fmt);
        vsnprintf(error->message, sizeof(error->message), fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Reads a PEM file named by the configuration into a NUL-terminated heap
 * string. */
static tether_status_t read_pem(const char *dir, const char *name, char **out,
                                tether_gate_load_error_t *error)
{
    char path[TETHER_GATE_DIR_MAX + TETHER_GATE_CONFIG_PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    *out = NULL;
    if ((rc = tether_gate_file_resolve(dir, name, path, sizeof(path))) != TETHER_OK)
        return load_fail(error, rc, "%s: path too long", name);
    if ((rc = tether_file_read(path, PEM_MAX, &data, &len)) != TETHER_OK)
        return load_fail(error, rc, "%s: cannot read: %s", path, tether_strerror(rc));
    if ((*out = malloc(len + 1)) == NULL) {
        tether_wipe(data, len);
        free(data);
        return load_fail(error, TETHER_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    memcpy(*out, data, len);
    (*out)[len] = '\0';
    tether_wipe(data, len);
    free(data);
    return TETHER_OK;
}

static tether_status_t read_secret(const char *dir, const char *name, char *out, size_t out_size,
                                   tether_gate_load_error_t *error)
{
    char path[TETHER_GATE_DIR_MAX + TETHER_GATE_CONFIG_PATH_MAX], why[300];
    tether_status_t rc;

    if ((rc = tether_gate_file_resolve(dir, name, path, sizeof(path))) != TETHER_OK)
        return load_fail(error, rc, "%s: path too long", name);
    if ((rc = tether_gate_secret_file_read(path, out, out_size, why, sizeof(why))) != TETHER_OK)
        return load_fail(error, rc, "%s", why);
    return TETHER_OK;
}

tether_status_t tether_gate_service_load(tether_gate_service_t *service, const char *dir,
                                         tether_gate_load_error_t *error)
{
    char path[TETHER_GATE_DIR_MAX + 32];
    tether_gate_config_error_t config_error;
    tether_gate_config_t *config;
    uint8_t *text = NULL;
    size_t len = 0;
    tether_status_t rc;
    int n;

    if (error != NULL)
        error->message[0] = '\0';
    if (service == NULL || dir == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    config = &service->config;
    n = snprintf(service->dir, sizeof(service->dir), "%s", dir);
    if (n < 0 || (size_t)n >= sizeof(service->dir))
        return load_fail(error, TETHER_ERR_TOO_LARGE, "%s: directory name too long", dir);
    snprintf(path, sizeof(path), "%s/%s", dir, TETHER_GATE_CONFIG_FILE);
    if ((rc = tether_file_read(path, TETHER_GATE_CONFIG_MAX_SIZE, &text, &len)) != TETHER_OK)
        return load_fail(error, rc, "%s: cannot read: %s", path, tether_strerror(rc));
    rc = tether_gate_config_parse((const char *)text, len, config, &config_error);
    free(text);
    if (rc != TETHER_OK) {
        if (config_error.line > 0)
            return load_fail(error, rc, "%s:%zu: %s", path, config_error.line,
                             config_error.message);
        return load_fail(error, rc, "%s: %s", path, config_error.message);
    }
    if ((rc = tether_gate_file_resolve(dir, config->fleet_ca, service->fleet_ca,
                                       sizeof(service->fleet_ca))) != TETHER_OK)
        return load_fail(error, rc, "%s: fleet_ca: path too long", path);
    /* The CA must load as the fleet client will load it. */
    if ((rc = tether_gate_fleet_keys_open(&service->keys, config->fleet)) != TETHER_OK ||
        (rc = tether_gate_fleet_keys_connect(&service->keys, service->fleet_ca)) != TETHER_OK)
        return load_fail(error, rc, "%s: fleet %s with fleet_ca %s: %s", path, config->fleet,
                         service->fleet_ca,
                         service->keys.client.https.error[0] != '\0'
                             ? service->keys.client.https.error
                             : tether_strerror(rc));
    if ((rc = read_secret(dir, config->rp_token_file, service->rp_token,
                          sizeof(service->rp_token), error)) != TETHER_OK)
        return rc;
    if (config->upstream_key_file[0] != '\0') {
        if ((rc = tether_gate_file_resolve(dir, config->upstream_key_file,
                                           service->upstream_key_path,
                                           sizeof(service->upstream_key_path))) != TETHER_OK)
            return load_fail(error, rc, "%s: upstream_key_file: path too long", path);
        if ((rc = read_secret(dir, config->upstream_key_file, service->upstream_key,
                              sizeof(service->upstream_key), error)) != TETHER_OK)
            return rc;
    }
    if (config->upstream_ca[0] != '\0') {
        char *ca_pem = NULL;

        if ((rc = tether_gate_file_resolve(dir, config->upstream_ca, service->upstream_ca_path,
                                           sizeof(service->upstream_ca_path))) != TETHER_OK)
            return load_fail(error, rc, "%s: upstream_ca: path too long", path);
        /* Read once here so that check names a missing or unreadable CA. */
        if ((rc = read_pem(dir, config->upstream_ca, &ca_pem, error)) != TETHER_OK)
            return rc;
        free(ca_pem);
    }
    if (config->tls_cert[0] != '\0' &&
        ((rc = read_pem(dir, config->tls_cert, &service->tls_cert_pem, error)) != TETHER_OK ||
         (rc = read_pem(dir, config->tls_key, &service->tls_key_pem, error)) != TETHER_OK))
        return rc;
    return TETHER_OK;
}

tether_status_t tether_gate_service_start(tether_gate_service_t *service)
{
    char why[256] = "";
    tether_gate_config_t *config;
    tether_http_server_options_t opts;
    tether_status_t rc;

    if (service == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    config = &service->config;
    if ((rc = tether_gate_upstream_global_init()) != TETHER_OK ||
        (rc = tether_gate_monitor_open(&service->monitor, &service->revocations)) != TETHER_OK ||
        (rc = tether_gate_usage_reporter_open(&service->usage, &service->monitor.registry,
                                              config->audience)) != TETHER_OK)
        return rc;
    service->monitor.usage = &service->usage;
    if ((rc = tether_gate_forward_open(
             &service->forward, config,
             service->upstream_key_path[0] != '\0' ? service->upstream_key_path : NULL,
             service->upstream_ca_path[0] != '\0' ? service->upstream_ca_path : NULL,
             &service->monitor, why, sizeof(why))) != TETHER_OK) {
        tether_error("run", "upstream %s: %s", config->upstream, why);
        return rc;
    }
    /* Both the feed follower and the token checks use the revocation lists;
     * they are as large as the replay cache. */
    if ((rc = tether_gate_revocations_open(&service->revocations, config->replay_cache_entries,
                                           config->feed_staleness_seconds)) != TETHER_OK ||
        (rc = tether_gate_access_open(&service->access, config, &service->keys,
                                      &service->revocations)) != TETHER_OK)
        return rc;
    if (tether_gate_fleet_keys_refresh(&service->keys, tether_gate_mono_seconds()) != TETHER_OK)
        tether_warn("run", "the fleet's keys are not fetched yet: requests get 503 until they are");
    if ((rc = tether_gate_feed_follower_start(&service->follower, &service->revocations,
                                              &service->keys, config->fleet, service->fleet_ca,
                                              service->rp_token)) != TETHER_OK ||
        (rc = tether_gate_usage_reporter_start(&service->usage, config->fleet, service->fleet_ca,
                                               service->rp_token,
                                               config->usage_report_seconds)) != TETHER_OK)
        return rc;
    service->router.access = &service->access;
    service->router.config = config;
    service->router.forward = &service->forward;
    service->router.monitor = &service->monitor;
    memset(&opts, 0, sizeof(opts));
    opts.host = config->listen_host;
    opts.ipv6 = config->listen_ipv6;
    opts.port = config->listen_port;
    opts.cert_pem = service->tls_cert_pem;
    opts.key_pem = service->tls_key_pem;
    opts.max_body_bytes = config->max_body_bytes;
    opts.max_connections = config->max_connections;
    opts.max_connections_per_source = config->max_connections_per_source;
    opts.connection_timeout_seconds = config->connection_timeout_seconds;
    opts.request_head_timeout_seconds = config->request_head_timeout_seconds;
    opts.threads = config->threads;
    opts.max_parked = 0;
    opts.handler = tether_gate_router_handle;
    opts.handler_arg = &service->router;
    opts.metrics = &service->monitor.registry;
    return tether_http_server_open(&service->server, &opts);
}

static void free_secret_text(char *text)
{
    if (text == NULL)
        return;
    tether_wipe(text, strlen(text));
    free(text);
}

void tether_gate_service_free(tether_gate_service_t *service)
{
    if (service == NULL)
        return;
    tether_http_server_free(&service->server);
    tether_gate_forward_free(&service->forward);
    /* No request counts any more: the last usage report. */
    tether_gate_usage_reporter_stop(&service->usage);
    tether_gate_feed_follower_stop(&service->follower);
    tether_gate_access_free(&service->access);
    tether_gate_revocations_free(&service->revocations);
    tether_gate_fleet_keys_free(&service->keys);
    tether_gate_monitor_free(&service->monitor);
    free_secret_text(service->tls_cert_pem);
    free_secret_text(service->tls_key_pem);
    tether_wipe(service->rp_token, sizeof(service->rp_token));
    tether_wipe(service->upstream_key, sizeof(service->upstream_key));
    memset(service, 0, sizeof(*service));
}
