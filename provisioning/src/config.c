#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 512

typedef struct config_limit {
    const char *key;
    unsigned long long min, max;
} config_limit_t;

static const config_limit_t limits[] = {
    {"max_body_bytes", 1024, 1024 * 1024},
    {"max_connections", 1, 10000},
    {"connection_timeout_seconds", 1, 3600},
    {"threads", 1, 64},
    {"bootstrap_max_ttl_seconds", 60, 30 * 86400},
};

void tether_fleet_config_init(tether_fleet_config_t *config)
{
    if (config == NULL)
        return;
    memset(config, 0, sizeof(*config));
    strcpy(config->listen_host, "127.0.0.1");
    config->listen_port = 8443;
    config->max_body_bytes = 65536;
    config->max_connections = 64;
    config->connection_timeout_seconds = 30;
    config->threads = 4;
    config->bootstrap_max_ttl_seconds = 86400;
}

static tether_status_t parse_port(const char *text, uint16_t *port)
{
    char *end = NULL;
    unsigned long value;

    if (text[0] < '0' || text[0] > '9')
        return TETHER_ERR_PARSE;
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || value == 0 || value > 65535)
        return TETHER_ERR_PARSE;
    *port = (uint16_t)value;
    return TETHER_OK;
}

tether_status_t tether_fleet_config_set_listen(tether_fleet_config_t *config, const char *text)
{
    char host[TETHER_CONFIG_HOST_MAX];
    unsigned char addr[16];
    const char *port;
    size_t host_len;
    bool ipv6;

    if (config == NULL || text == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    ipv6 = text[0] == '[';
    if (ipv6) {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return TETHER_ERR_PARSE;
        host_len = (size_t)(close - text - 1);
        port = close + 2;
        text++;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            return TETHER_ERR_PARSE;
        host_len = (size_t)(colon - text);
        port = colon + 1;
    }
    if (host_len == 0 || host_len >= sizeof(host))
        return TETHER_ERR_PARSE;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (inet_pton(ipv6 ? AF_INET6 : AF_INET, host, addr) != 1)
        return TETHER_ERR_PARSE;
    if (parse_port(port, &config->listen_port) != TETHER_OK)
        return TETHER_ERR_PARSE;
    memcpy(config->listen_host, host, host_len + 1);
    config->listen_ipv6 = ipv6;
    return TETHER_OK;
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

static tether_status_t set_number(tether_fleet_config_t *config, const config_limit_t *limit,
                                  unsigned long long value)
{
    if (strcmp(limit->key, "max_body_bytes") == 0)
        config->max_body_bytes = (size_t)value;
    else if (strcmp(limit->key, "max_connections") == 0)
        config->max_connections = (unsigned)value;
    else if (strcmp(limit->key, "connection_timeout_seconds") == 0)
        config->connection_timeout_seconds = (unsigned)value;
    else if (strcmp(limit->key, "threads") == 0)
        config->threads = (unsigned)value;
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
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (strcmp(key, limits[i].key) == 0)
            return parse_number_value(config, &limits[i], value, line, error);
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
    fprintf(f, "\n# Limits.\nmax_body_bytes = %zu\nmax_connections = %u\n"
               "connection_timeout_seconds = %u\nthreads = %u\nbootstrap_max_ttl_seconds = %u\n",
            config->max_body_bytes, config->max_connections, config->connection_timeout_seconds,
            config->threads, config->bootstrap_max_ttl_seconds);
    if (fclose(f) != 0) {
        free(buf);
        return TETHER_ERR_NO_MEMORY;
    }
    *out = buf;
    return TETHER_OK;
}
