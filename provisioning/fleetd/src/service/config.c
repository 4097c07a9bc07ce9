#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/http_server.h"

#define LINE_MAX_BYTES 512

typedef struct config_limit {
    const char *key;
    unsigned long long min, max;
} config_limit_t;

static const config_limit_t limits[] = {
    {"max_body_bytes", 1024, 1024 * 1024},
    {"max_connections", 1, 10000},
    {"max_connections_per_source", 1, 10000},
    {"connection_timeout_seconds", 1, 3600},
    {"request_head_timeout_seconds", 1, 60},
    {"max_requests_per_connection", 1, 100000},
    {"threads", 1, 64},
    {"bootstrap_max_ttl_seconds", 60, 30 * 86400},
    {"enroll_max_pending_per_ek", 1, 64},
    {"enroll_rate_per_minute", 1, 60000},
    {"enroll_burst", 1, 10000},
    {"token_retention_hours", 1, 87600},
    {"alert_retention_days", 1, 36500},
    {"purge_batch_rows", 100, 100000},
    {"purge_pause_milliseconds", 0, 10000},
    /* Any positive number; tokens use it clamped (config.h). */
    {"token_lifetime_seconds", 1, 366 * 86400},
};

/* The exchange's text keys and their checks. */
typedef struct config_text {
    const char *key;
    size_t offset;
    size_t size;
    bool (*valid)(const char *value);
    const char *expected; /* for the error message */
} config_text_t;

static const config_text_t texts[] = {
    {"pcr_selection", offsetof(tether_fleet_config_t, pcr_selection),
     TETHER_CONFIG_VALUE_MAX, tether_fleet_config_pcr_selection_valid,
     "\"sha256:\" and ascending PCR numbers 0-23, comma-separated"},
    {"issuer", offsetof(tether_fleet_config_t, issuer), TETHER_CONFIG_VALUE_MAX,
     tether_fleet_config_issuer_valid, "an https:// URL without query, fragment or final '/'"},
    {"audience", offsetof(tether_fleet_config_t, audience), TETHER_CONFIG_VALUE_MAX,
     tether_fleet_config_list_valid, "comma-separated names of printable ASCII"},
    {"scope", offsetof(tether_fleet_config_t, scope), TETHER_CONFIG_VALUE_MAX,
     tether_fleet_config_scope_valid, "scope names separated by single spaces (RFC 6749)"},
    {"models", offsetof(tether_fleet_config_t, models), TETHER_CONFIG_VALUE_MAX,
     tether_fleet_config_list_valid, "comma-separated model names of printable ASCII"},
    {"cost_ceiling", offsetof(tether_fleet_config_t, cost_ceiling), 32,
     tether_fleet_config_decimal_valid, "a non-negative number such as 0, 25 or 12.50"},
    {"usage_mismatch_action", offsetof(tether_fleet_config_t, usage_mismatch_action), 16,
     tether_fleet_config_usage_action_valid, "alert or quarantine"},
    {"store", offsetof(tether_fleet_config_t, store), TETHER_CONFIG_VALUE_MAX,
     tether_fleet_config_store_valid, "a postgresql:// URL without spaces"},
};

void tether_fleet_config_init(tether_fleet_config_t *config)
{
    if (config == NULL)
        return;
    memset(config, 0, sizeof(*config));
    strcpy(config->listen_host, "127.0.0.1");
    config->listen_port = 8443;
    config->max_body_bytes = 65536;
    config->max_connections = 1024;
    config->max_connections_per_source = 32;
    config->connection_timeout_seconds = 30;
    config->request_head_timeout_seconds = 10;
    config->max_requests_per_connection = 100;
    config->threads = 4;
    config->bootstrap_max_ttl_seconds = 86400;
    config->enroll_max_pending_per_ek = TETHER_CONFIG_DEFAULT_ENROLL_MAX_PENDING_PER_EK;
    config->enroll_rate_per_minute = TETHER_CONFIG_DEFAULT_ENROLL_RATE_PER_MINUTE;
    config->enroll_burst = TETHER_CONFIG_DEFAULT_ENROLL_BURST;
    config->token_retention_hours = TETHER_CONFIG_DEFAULT_TOKEN_RETENTION_HOURS;
    config->alert_retention_days = TETHER_CONFIG_DEFAULT_ALERT_RETENTION_DAYS;
    config->purge_batch_rows = TETHER_CONFIG_DEFAULT_PURGE_BATCH_ROWS;
    config->purge_pause_milliseconds = TETHER_CONFIG_DEFAULT_PURGE_PAUSE_MILLISECONDS;
    strcpy(config->pcr_selection, TETHER_CONFIG_DEFAULT_PCR_SELECTION);
    strcpy(config->audience, "tether");
    strcpy(config->scope, "ai.inference");
    config->token_lifetime_seconds = 300;
    strcpy(config->models, "*");
    strcpy(config->cost_ceiling, "0");
    strcpy(config->usage_mismatch_action, "quarantine");
}

tether_status_t tether_fleet_config_set_listen(tether_fleet_config_t *config, const char *text)
{
    if (config == NULL || text == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_http_listen_parse(text, config->listen_host, sizeof(config->listen_host),
                                    &config->listen_port, &config->listen_ipv6);
}

tether_status_t tether_fleet_config_listen_text(const tether_fleet_config_t *config, char *out,
                                                size_t out_size)
{
    int n;

    if (config == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(out, out_size, config->listen_ipv6 ? "[%s]:%u" : "%s:%u", config->listen_host,
                 (unsigned)config->listen_port);
    return n < 0 || (size_t)n >= out_size ? TETHER_ERR_TOO_LARGE : TETHER_OK;
}

bool tether_fleet_config_path_valid(const char *path)
{
    size_t len;

    if (path == NULL || (len = strlen(path)) == 0 || len >= TETHER_CONFIG_PATH_MAX ||
        path[0] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = path[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/'))
            return false;
    }
    /* No ".." component: the file must stay inside the fleet directory. */
    for (const char *p = path; p != NULL; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
            return false;
    }
    return true;
}

unsigned tether_fleet_config_token_lifetime(const tether_fleet_config_t *config)
{
    if (config->token_lifetime_seconds < TETHER_CONFIG_TOKEN_LIFETIME_MIN)
        return TETHER_CONFIG_TOKEN_LIFETIME_MIN;
    if (config->token_lifetime_seconds > TETHER_CONFIG_TOKEN_LIFETIME_MAX)
        return TETHER_CONFIG_TOKEN_LIFETIME_MAX;
    return config->token_lifetime_seconds;
}

tether_status_t tether_fleet_config_issuer(const tether_fleet_config_t *config, char *out,
                                           size_t out_size)
{
    char listen[TETHER_CONFIG_HOST_MAX + 16];
    tether_status_t rc;
    int n;

    if (config == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (config->issuer[0] != '\0')
        n = snprintf(out, out_size, "%s", config->issuer);
    else if ((rc = tether_fleet_config_listen_text(config, listen, sizeof(listen))) != TETHER_OK)
        return rc;
    else
        n = snprintf(out, out_size, "https://%s", listen);
    return n < 0 || (size_t)n >= out_size ? TETHER_ERR_TOO_LARGE : TETHER_OK;
}

bool tether_fleet_config_pcr_selection_valid(const char *text)
{
    static const char prefix[] = "sha256:";
    const char *p;
    int last = -1;

    if (text == NULL || strncmp(text, prefix, sizeof(prefix) - 1) != 0)
        return false;
    p = text + sizeof(prefix) - 1;
    for (;;) {
        const char *start = p;
        int pcr = 0;
        for (; *p >= '0' && *p <= '9' && p - start < 3; p++)
            pcr = pcr * 10 + (*p - '0');
        /* Canonical: no leading zeros, ascending, each once. */
        if (p == start || (p - start > 1 && *start == '0') || pcr > 23 || pcr <= last)
            return false;
        last = pcr;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

bool tether_fleet_config_issuer_valid(const char *text)
{
    static const char prefix[] = "https://";
    size_t len;

    if (text == NULL || strncmp(text, prefix, sizeof(prefix) - 1) != 0)
        return false;
    len = strlen(text);
    if (len == sizeof(prefix) - 1 || len >= TETHER_CONFIG_VALUE_MAX || text[len - 1] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        /* RFC 8414 section 2: no query or fragment. */
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '"' || c == '\\')
            return false;
    }
    return true;
}

bool tether_fleet_config_list_valid(const char *text)
{
    size_t item = 0;

    if (text == NULL || text[0] == '\0')
        return false;
    for (const char *p = text;; p++) {
        if (*p == ',' || *p == '\0') {
            if (item == 0 || item > 128)
                return false;
            if (*p == '\0')
                return true;
            item = 0;
            continue;
        }
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            return false;
        item++;
    }
}

bool tether_fleet_config_scope_valid(const char *text)
{
    size_t token = 0;

    if (text == NULL || text[0] == '\0')
        return false;
    /* scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), RFC 6749 section 3.3. */
    for (const char *p = text;; p++) {
        if (*p == ' ' || *p == '\0') {
            if (token == 0)
                return false;
            if (*p == '\0')
                return true;
            token = 0;
            continue;
        }
        if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
            return false;
        token++;
    }
}

bool tether_fleet_config_usage_action_valid(const char *text)
{
    return text != NULL && (strcmp(text, "alert") == 0 || strcmp(text, "quarantine") == 0);
}

bool tether_fleet_config_store_valid(const char *text)
{
    if (text == NULL ||
        (strncmp(text, "postgresql://", 13) != 0 && strncmp(text, "postgres://", 11) != 0))
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p <= ' ' || *p > '~')
            return false;
    }
    return true;
}

bool tether_fleet_config_decimal_valid(const char *text)
{
    size_t whole = 0, fraction = 0;
    const char *p = text;

    if (text == NULL)
        return false;
    for (; *p >= '0' && *p <= '9'; p++)
        whole++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            fraction++;
    return *p == '\0' && whole >= 1 && whole <= 12 && fraction <= 6 &&
           (p[-1] != '.') && (whole == 1 || text[0] != '0');
}

tether_status_t tether_fleet_config_webhook_url(const char *text, tether_url_t *url, bool *https,
                                               const char **problem)
{
    static const char secure[] = "https://", plain[] = "http://";
    char as_https[TETHER_CONFIG_WEBHOOK_URL_MAX + 1];
    const char *authority, *bracket;
    size_t authority_len;
    tether_status_t rc;
    int n;

    *problem = "the url must be https://HOST[:PORT][/path] or http:// to a loopback address";
    if (url != NULL)
        memset(url, 0, sizeof(*url));
    if (https != NULL)
        *https = false;
    if (text == NULL || url == NULL || https == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (strlen(text) >= TETHER_CONFIG_WEBHOOK_URL_MAX) {
        *problem = "the url is too long";
        return TETHER_ERR_TOO_LARGE;
    }
    if (strncmp(text, secure, sizeof(secure) - 1) == 0) {
        *https = true;
        return tether_url_parse(text, strlen(text), url, problem);
    }
    if (strncmp(text, plain, sizeof(plain) - 1) != 0)
        return TETHER_ERR_PARSE;
    /* The same grammar over plain HTTP: parsed as https, port 80 when none
     * is written. */
    n = snprintf(as_https, sizeof(as_https), "https://%s", text + sizeof(plain) - 1);
    if (n < 0 || (size_t)n >= sizeof(as_https))
        return TETHER_ERR_TOO_LARGE;
    if ((rc = tether_url_parse(as_https, (size_t)n, url, problem)) != TETHER_OK)
        return rc;
    authority = text + sizeof(plain) - 1;
    authority_len = strcspn(authority, "/");
    bracket = memchr(authority, ']', authority_len);
    if (bracket != NULL ? bracket + 1 == authority + authority_len
                        : memchr(authority, ':', authority_len) == NULL) {
        url->port = 80;
        strcpy(url->port_text, "80");
        n = snprintf(url->authority, sizeof(url->authority),
                     url->host_type == TETHER_URL_HOST_IPV6 ? "[%s]:80" : "%s:80", url->host);
        if (n < 0 || (size_t)n >= sizeof(url->authority))
            return TETHER_ERR_TOO_LARGE;
    }
    /* Plain HTTP never leaves the host: the body and its signature would
     * cross the network in clear. */
    if (!(url->host_type == TETHER_URL_HOST_IPV4 && strncmp(url->host, "127.", 4) == 0) &&
        !(url->host_type == TETHER_URL_HOST_IPV6 && strcmp(url->host, "::1") == 0)) {
        *problem = "http:// is only for a loopback address (127.0.0.0/8 or [::1]); "
                   "use https:// with a ca file";
        memset(url, 0, sizeof(*url));
        return TETHER_ERR_PARSE;
    }
    return TETHER_OK;
}

static bool webhook_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > TETHER_CONFIG_WEBHOOK_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_' || name[i] == '-'))
            return false;
    return true;
}

/* One "key=value" attribute of a webhook line into webhook; seen counts
 * each key so that none is given twice. */
static bool webhook_attribute(char *attribute, tether_fleet_webhook_config_t *webhook,
                              unsigned seen[5], const char **problem)
{
    static const char *const keys[] = {"name", "url", "ca", "secret", "timeout"};
    char *equals = strchr(attribute, '=');
    const char *value;
    size_t key = 0;

    if (equals == NULL) {
        *problem = "each attribute is key=value (name, url, ca, secret, timeout)";
        return false;
    }
    *equals = '\0';
    value = equals + 1;
    while (key < 5 && strcmp(attribute, keys[key]) != 0)
        key++;
    if (key == 5) {
        *problem = "unknown attribute: a webhook takes name, url, ca, secret and timeout";
        return false;
    }
    if (seen[key]++ > 0) {
        *problem = "an attribute is given twice";
        return false;
    }
    switch (key) {
    case 0:
        *problem = "name must be 1-32 of a-z 0-9 _ -";
        if (!webhook_name_valid(value))
            return false;
        strcpy(webhook->name, value);
        return true;
    case 1:
        *problem = "the url is too long";
        if (strlen(value) >= sizeof(webhook->url))
            return false;
        strcpy(webhook->url, value);
        return true;
    case 2:
    case 3:
        *problem = "ca and secret must be relative paths inside the fleet directory";
        if (!tether_fleet_config_path_valid(value))
            return false;
        strcpy(key == 2 ? webhook->ca : webhook->secret, value);
        return true;
    default: {
        char *end = NULL;
        unsigned long timeout = value[0] >= '1' && value[0] <= '9' ? strtoul(value, &end, 10) : 0;

        *problem = "timeout must be a number of seconds from 1 to 60";
        webhook->timeout_seconds = (unsigned)timeout;
        return end != NULL && *end == '\0' && timeout <= TETHER_CONFIG_WEBHOOK_TIMEOUT_MAX;
    }
    }
}

bool tether_fleet_config_webhook_parse(const char *text, tether_fleet_webhook_config_t *webhook,
                                       const char **problem)
{
    char copy[LINE_MAX_BYTES + 1];
    unsigned seen[5] = {0, 0, 0, 0, 0};
    tether_url_t url;
    bool ok = true;

    *problem = "";
    memset(webhook, 0, sizeof(*webhook));
    webhook->timeout_seconds = TETHER_CONFIG_WEBHOOK_TIMEOUT_DEFAULT;
    if (strlen(text) >= sizeof(copy)) {
        *problem = "the line is too long";
        return false;
    }
    strcpy(copy, text);
    for (char *save = NULL, *a = strtok_r(copy, " \t", &save); ok && a != NULL;
         a = strtok_r(NULL, " \t", &save))
        ok = webhook_attribute(a, webhook, seen, problem);
    if (ok && (seen[0] == 0 || seen[1] == 0 || seen[3] == 0)) {
        *problem = "a webhook needs name=, url= and secret=";
        ok = false;
    }
    if (ok && tether_fleet_config_webhook_url(webhook->url, &url, &webhook->https, problem) !=
                  TETHER_OK)
        ok = false;
    if (ok && webhook->https != (webhook->ca[0] != '\0')) {
        *problem = webhook->https ? "an https webhook needs ca= (the receiver's CA file)"
                                  : "ca= is for https webhooks only";
        ok = false;
    }
    if (!ok)
        memset(webhook, 0, sizeof(*webhook));
    return ok;
}

static tether_status_t set_number(tether_fleet_config_t *config, const config_limit_t *limit,
                                  unsigned long long value)
{
    if (strcmp(limit->key, "max_body_bytes") == 0)
        config->max_body_bytes = (size_t)value;
    else if (strcmp(limit->key, "max_connections") == 0)
        config->max_connections = (unsigned)value;
    else if (strcmp(limit->key, "max_connections_per_source") == 0)
        config->max_connections_per_source = (unsigned)value;
    else if (strcmp(limit->key, "connection_timeout_seconds") == 0)
        config->connection_timeout_seconds = (unsigned)value;
    else if (strcmp(limit->key, "request_head_timeout_seconds") == 0)
        config->request_head_timeout_seconds = (unsigned)value;
    else if (strcmp(limit->key, "max_requests_per_connection") == 0)
        config->max_requests_per_connection = (unsigned)value;
    else if (strcmp(limit->key, "threads") == 0)
        config->threads = (unsigned)value;
    else if (strcmp(limit->key, "token_lifetime_seconds") == 0)
        config->token_lifetime_seconds = (unsigned)value;
    else if (strcmp(limit->key, "enroll_max_pending_per_ek") == 0)
        config->enroll_max_pending_per_ek = (unsigned)value;
    else if (strcmp(limit->key, "enroll_rate_per_minute") == 0)
        config->enroll_rate_per_minute = (unsigned)value;
    else if (strcmp(limit->key, "enroll_burst") == 0)
        config->enroll_burst = (unsigned)value;
    else if (strcmp(limit->key, "token_retention_hours") == 0)
        config->token_retention_hours = (unsigned)value;
    else if (strcmp(limit->key, "alert_retention_days") == 0)
        config->alert_retention_days = (unsigned)value;
    else if (strcmp(limit->key, "purge_batch_rows") == 0)
        config->purge_batch_rows = (unsigned)value;
    else if (strcmp(limit->key, "purge_pause_milliseconds") == 0)
        config->purge_pause_milliseconds = (unsigned)value;
    else
        config->bootstrap_max_ttl_seconds = (unsigned)value;
    return TETHER_OK;
}

static void set_error(tether_fleet_config_error_t *error, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(tether_fleet_config_error_t *error, size_t line, const char *fmt, ...)
{
    va_list ap;

    if (error == NULL)
        return;
    error->line = line;
    va_start(ap, fmt);
    vsnprintf(error->message, sizeof(error->message), fmt, ap);
    va_end(ap);
}

static tether_status_t parse_number_value(tether_fleet_config_t *config,
                                          const config_limit_t *limit, const char *value,
                                          size_t line, tether_fleet_config_error_t *error)
{
    unsigned long long number;
    char *end = NULL;

    errno = 0;
    number = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno != 0 || number < limit->min || number > limit->max) {
        set_error(error, line, "%s must be a number from %llu to %llu", limit->key, limit->min,
                  limit->max);
        return TETHER_ERR_PARSE;
    }
    return set_number(config, limit, number);
}

static tether_status_t parse_pair(tether_fleet_config_t *config, const char *key,
                                  const char *value, size_t line,
                                  tether_fleet_config_error_t *error)
{
    if (strcmp(key, "listen") == 0) {
        if (tether_fleet_config_set_listen(config, value) == TETHER_OK)
            return TETHER_OK;
        set_error(error, line, "listen must be IPv4:PORT or [IPv6]:PORT");
        return TETHER_ERR_PARSE;
    }
    if (strcmp(key, "ek_ca") == 0) {
        if (config->ek_ca_count >= TETHER_CONFIG_MAX_EK_CA) {
            set_error(error, line, "more than %d ek_ca lines", TETHER_CONFIG_MAX_EK_CA);
            return TETHER_ERR_PARSE;
        }
        if (!tether_fleet_config_path_valid(value)) {
            set_error(error, line, "ek_ca must be a relative path inside the fleet directory");
            return TETHER_ERR_PARSE;
        }
        strcpy(config->ek_ca[config->ek_ca_count++], value);
        return TETHER_OK;
    }
    if (strcmp(key, "webhook") == 0) {
        tether_fleet_webhook_config_t *webhook = &config->webhooks[config->webhook_count];
        const char *problem = NULL;

        if (config->webhook_count >= TETHER_CONFIG_MAX_WEBHOOKS) {
            set_error(error, line, "more than %d webhook lines", TETHER_CONFIG_MAX_WEBHOOKS);
            return TETHER_ERR_PARSE;
        }
        if (!tether_fleet_config_webhook_parse(value, webhook, &problem)) {
            set_error(error, line, "webhook: %s", problem);
            return TETHER_ERR_PARSE;
        }
        for (size_t i = 0; i < config->webhook_count; i++) {
            if (strcmp(config->webhooks[i].name, webhook->name) == 0) {
                set_error(error, line, "webhook: another webhook is named %s", webhook->name);
                memset(webhook, 0, sizeof(*webhook));
                return TETHER_ERR_PARSE;
            }
        }
        config->webhook_count++;
        return TETHER_OK;
    }
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (strcmp(key, limits[i].key) == 0)
            return parse_number_value(config, &limits[i], value, line, error);
    }
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (strcmp(key, texts[i].key) != 0)
            continue;
        if (strlen(value) >= texts[i].size || !texts[i].valid(value)) {
            set_error(error, line, "%s must be %s", texts[i].key, texts[i].expected);
            return TETHER_ERR_PARSE;
        }
        strcpy((char *)config + texts[i].offset, value);
        return TETHER_OK;
    }
    set_error(error, line, "unknown key \"%.40s\"", key);
    return TETHER_ERR_PARSE;
}

static char *strip(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

static tether_status_t parse_line(tether_fleet_config_t *config, char *text, size_t line,
                                  tether_fleet_config_error_t *error)
{
    char *equals;
    char *key;

    text = strip(text);
    if (text[0] == '\0' || text[0] == '#')
        return TETHER_OK;
    if ((equals = strchr(text, '=')) == NULL) {
        set_error(error, line, "expected key = value");
        return TETHER_ERR_PARSE;
    }
    *equals = '\0';
    key = strip(text);
    return parse_pair(config, key, strip(equals + 1), line, error);
}

tether_status_t tether_fleet_config_parse(const char *text, size_t len,
                                          tether_fleet_config_t *config,
                                          tether_fleet_config_error_t *error)
{
    char buf[LINE_MAX_BYTES + 1];
    size_t pos = 0;
    size_t line = 0;
    tether_status_t rc = TETHER_OK;

    if (error != NULL)
        memset(error, 0, sizeof(*error));
    if (config == NULL || (text == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len > TETHER_CONFIG_MAX_SIZE) {
        set_error(error, 0, "the file is larger than %d bytes", TETHER_CONFIG_MAX_SIZE);
        return TETHER_ERR_TOO_LARGE;
    }
    while (rc == TETHER_OK && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        line++;
        if (line_len > LINE_MAX_BYTES || memchr(text + pos, '\0', line_len) != NULL) {
            set_error(error, line, "line too long or holds a NUL byte");
            return TETHER_ERR_PARSE;
        }
        memcpy(buf, text + pos, line_len);
        buf[line_len] = '\0';
        rc = parse_line(config, buf, line, error);
        pos += line_len + (nl != NULL ? 1 : 0);
    }
    return rc;
}

tether_status_t tether_fleet_config_format(const tether_fleet_config_t *config, char **out)
{
    char listen[TETHER_CONFIG_HOST_MAX + 16];
    char *buf = NULL;
    size_t size = 0;
    FILE *f;
    tether_status_t rc;

    if (config == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((rc = tether_fleet_config_listen_text(config, listen, sizeof(listen))) != TETHER_OK)
        return rc;
    if ((f = open_memstream(&buf, &size)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    fprintf(f, "# tether-fleetd configuration (written by tether-fleetd init).\n"
               "# One \"key = value\" per line; lines starting with '#' are comments.\n\n"
               "# Address to serve HTTPS on: IPv4:PORT or [IPv6]:PORT. The TLS server\n"
               "# certificate names this host: run init again for another address.\n"
               "listen = %s\n\n"
               "# TPM manufacturer CAs that EK certificates must chain to (repeatable;\n"
               "# paths relative to this directory).\n",
            listen);
    for (size_t i = 0; i < config->ek_ca_count; i++)
        fprintf(f, "ek_ca = %s\n", config->ek_ca[i]);
    fprintf(f, "\n# Limits.\nmax_body_bytes = %zu\n"
               "# Connections in total (the open-file limit must allow them) and from\n"
               "# one IP address.\nmax_connections = %u\nmax_connections_per_source = %u\n"
               "# Seconds a connection may stay idle while a request is read or answered,\n"
               "# and may take for its TLS handshake and complete request head.\n"
               "connection_timeout_seconds = %u\nrequest_head_timeout_seconds = %u\n"
               "threads = %u\nbootstrap_max_ttl_seconds = %u\n",
            config->max_body_bytes, config->max_connections, config->max_connections_per_source,
            config->connection_timeout_seconds, config->request_head_timeout_seconds,
            config->threads, config->bootstrap_max_ttl_seconds);
    fprintf(f, "\n# Enrolment (provisioning/fleetd/README.md). Enrolments in flight for one\n"
               "# EK, side by side until one proves its secret; POST /v1/enroll attempts\n"
               "# from one IP address (IPv6: one /64): a bucket of enroll_burst refilled\n"
               "# at enroll_rate_per_minute, 429 beyond it. Raise both for a site whose\n"
               "# devices enrol through one NAT.\n"
               "enroll_max_pending_per_ek = %u\nenroll_rate_per_minute = %u\nenroll_burst = %u\n",
            config->enroll_max_pending_per_ek, config->enroll_rate_per_minute,
            config->enroll_burst);
    fprintf(f, "\n# Attested token exchange (provisioning/fleetd/README.md).\n"
               "# PCRs every quote must cover; the first accepted quote's digest is the\n"
               "# device's reference from then on.\n"
               "pcr_selection = %s\n"
               "# The tokens' iss claim; without it, https:// and the listen address.\n"
               "%sissuer = %s\n"
               "# Audiences (comma-separated) and scopes (space-separated) a device may\n"
               "# ask for; by default the first audience and every scope.\n"
               "audience = %s\nscope = %s\n"
               "# Seconds a token lives (clamped to %d-%d).\n"
               "token_lifetime_seconds = %u\n"
               "# The tether claim: allowed models (comma-separated) and cost ceiling (0: none).\n"
               "models = %s\ncost_ceiling = %s\n"
               "# A token that relying parties accepted more requests on than its device\n"
               "# made (usage reconciliation): alert, or quarantine the device as well.\n"
               "usage_mismatch_action = %s\n",
            config->pcr_selection, config->issuer[0] == '\0' ? "# " : "",
            config->issuer[0] == '\0' ? "https://HOST:PORT" : config->issuer, config->audience,
            config->scope, TETHER_CONFIG_TOKEN_LIFETIME_MIN, TETHER_CONFIG_TOKEN_LIFETIME_MAX,
            config->token_lifetime_seconds, config->models, config->cost_ceiling,
            config->usage_mismatch_action);
    fprintf(f, "\n# Retention (provisioning/fleetd/README.md, \"Retention\"). Issued tokens,\n"
               "# their device counts and usage alerts, and relying parties' usage per\n"
               "# token are kept token_retention_hours after the token's usage window\n"
               "# closed (exp + 60 s + one token lifetime); a usage report later than that\n"
               "# names a token the fleet no longer knows (flagged). Alerts are kept\n"
               "# alert_retention_days (one a webhook still waits for stays). The purge\n"
               "# deletes purge_batch_rows per table per transaction, pausing\n"
               "# purge_pause_milliseconds between them.\n"
               "token_retention_hours = %u\nalert_retention_days = %u\n"
               "purge_batch_rows = %u\npurge_pause_milliseconds = %u\n",
            config->token_retention_hours, config->alert_retention_days,
            config->purge_batch_rows, config->purge_pause_milliseconds);
    fprintf(f, "\n# The store: a PostgreSQL URL, which several fleetd replicas may share;\n"
               "# without it, SQLite in fleet.db here. Keep a password out of the URL:\n"
               "# libpq reads it from ~/.pgpass (or PGPASSFILE) or a service file\n"
               "# (provisioning/fleetd/README.md, \"The store\").\n"
               "%sstore = %s\n",
            config->store[0] == '\0' ? "# " : "",
            config->store[0] == '\0' ? "postgresql://fleet@db.example:5432/tether" : config->store);
    fprintf(f, "\n# Webhooks that get every alert, signed (provisioning/fleetd/README.md,\n"
               "# \"Webhooks\"); repeatable, at most %d. secret is a file of 32-256 bytes\n"
               "# (mode 0600, yours) that the receiver shares; ca the receiver's CA\n"
               "# (https only); http:// only to a loopback address; timeout 1-60 s.\n"
               "# webhook = name=security url=https://hooks.example:8443/tether"
               " ca=webhook-ca.pem secret=webhook-security.key timeout=10\n",
            TETHER_CONFIG_MAX_WEBHOOKS);
    for (size_t i = 0; i < config->webhook_count; i++) {
        const tether_fleet_webhook_config_t *w = &config->webhooks[i];

        fprintf(f, "webhook = name=%s url=%s%s%s secret=%s timeout=%u\n", w->name, w->url,
                w->ca[0] != '\0' ? " ca=" : "", w->ca, w->secret, w->timeout_seconds);
    }
    if (fclose(f) != 0) {
        free(buf);
        return TETHER_ERR_NO_MEMORY;
    }
    *out = buf;
    return TETHER_OK;
}
