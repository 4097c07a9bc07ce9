/* tether-gate's configuration file (gate_config.h). */
#include "gate_config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/http_server.h"

#define LINE_MAX_BYTES 512
#define AMOUNT_MAX_UNITS 1000000000000ULL /* 12 digits before the point */

/* ---- single values ---------------------------------------------------- */

static bool is_printable(const char *text, size_t max)
{
    size_t len = strlen(text);

    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f ||
            text[i] == '"' || text[i] == '\\')
            return false;
    return true;
}

/* Model and policy names: [A-Za-z0-9._:/-], 1-64 characters. */
static bool is_name(const char *text, size_t len, bool glob)
{
    if (len == 0 || len > TETHER_GATE_CONFIG_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-' || (glob && c == '*')))
            return false;
    }
    return true;
}

bool tether_gate_config_models_valid(const char *text)
{
    const char *p = text;

    if (text == NULL || strlen(text) > TETHER_GATE_CONFIG_MODELS_MAX)
        return false;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (!is_name(p, n, true))
            return false;
        if (p[n] == '\0')
            return true;
        p += n + 1;
    }
}

bool tether_gate_config_url_valid(const char *text)
{
    size_t len;

    if (text == NULL || !is_printable(text, TETHER_GATE_CONFIG_URL_MAX - 1))
        return false;
    len = strlen(text);
    if (strncmp(text, "https://", 8) != 0 && strncmp(text, "http://", 7) != 0)
        return false;
    return strpbrk(text, "?#@") == NULL && text[len - 1] != '/' && strstr(text, "://")[3] != '\0';
}

static bool glob_match(const char *glob, size_t glob_len, const char *text)
{
    size_t g = 0, t = 0, star = (size_t)-1, mark = 0;
    size_t text_len = strlen(text);

    while (t < text_len) {
        if (g < glob_len && glob[g] == '*') {
            star = g++;
            mark = t;
        } else if (g < glob_len && glob[g] == text[t]) {
            g++;
            t++;
        } else if (star != (size_t)-1) {
            g = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (g < glob_len && glob[g] == '*')
        g++;
    return g == glob_len;
}

bool tether_gate_models_allow(const char *models, const char *model)
{
    const char *p = models;

    if (models == NULL || model == NULL || model[0] == '\0')
        return false;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (glob_match(p, n, model))
            return true;
        if (p[n] == '\0')
            return false;
        p += n + 1;
    }
}

/* An unsigned decimal of 1-10 digits, at most max. */
static bool parse_uint(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t value = 0;
    size_t len = strlen(text);

    if (len == 0 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        value = value * 10 + (uint64_t)(text[i] - '0');
    }
    if (value < min || value > max)
        return false;
    *out = (uint32_t)value;
    return true;
}

tether_status_t tether_gate_config_parse_amount(const char *text, uint64_t *micros)
{
    uint64_t units = 0, fraction = 0, scale = TETHER_GATE_MICROS;
    size_t i = 0, digits = 0;

    if (micros == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *micros = 0;
    if (text == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    for (; text[i] >= '0' && text[i] <= '9'; i++, digits++) {
        if (digits == 12)
            return TETHER_ERR_PARSE;
        units = units * 10 + (uint64_t)(text[i] - '0');
    }
    if (digits == 0)
        return TETHER_ERR_PARSE;
    if (text[i] == '.') {
        size_t decimals = 0;
        for (i++; text[i] >= '0' && text[i] <= '9'; i++, decimals++) {
            if (decimals == 6)
                return TETHER_ERR_PARSE;
            scale /= 10;
            fraction += (uint64_t)(text[i] - '0') * scale;
        }
        if (decimals == 0)
            return TETHER_ERR_PARSE;
    }
    if (text[i] != '\0' || units >= AMOUNT_MAX_UNITS)
        return TETHER_ERR_PARSE;
    *micros = units * TETHER_GATE_MICROS + fraction;
    return TETHER_OK;
}

tether_status_t tether_gate_config_set_listen(tether_gate_config_t *config, const char *text)
{
    if (config == NULL || text == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_http_listen_parse(text, config->listen_host, sizeof(config->listen_host),
                                    &config->listen_port, &config->listen_ipv6);
}

bool tether_gate_config_listen_is_loopback(const tether_gate_config_t *config)
{
    unsigned char addr[16];

    if (config->listen_ipv6)
        return strcmp(config->listen_host, "::1") == 0;
    return inet_pton(AF_INET, config->listen_host, addr) == 1 && addr[0] == 127;
}

tether_status_t tether_gate_config_add_price(tether_gate_config_t *config, const char *text,
                                             char *why, size_t why_size)
{
    const char *eq, *colon;
    char number[32];
    tether_gate_config_price_t price;
    size_t n;

    if (config == NULL || text == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(&price, 0, sizeof(price));
    eq = strchr(text, '=');
    colon = eq != NULL ? strchr(eq, ':') : NULL;
    if (eq == NULL || colon == NULL || !is_name(text, (size_t)(eq - text), false))
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "a price is MODEL=PROMPT_PER_1K:COMPLETION_PER_1K, such as "
                              "gpt-4o-mini=0.15:0.6");
    memcpy(price.model, text, (size_t)(eq - text));
    n = (size_t)(colon - eq - 1);
    if (n >= sizeof(number))
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "the prompt price is too long");
    memcpy(number, eq + 1, n);
    number[n] = '\0';
    if (tether_gate_config_parse_amount(number, &price.prompt_per_1k_micros) != TETHER_OK ||
        tether_gate_config_parse_amount(colon + 1, &price.completion_per_1k_micros) != TETHER_OK)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "prices are non-negative numbers with at most 6 decimals");
    for (size_t i = 0; i < config->price_count; i++)
        if (strcmp(config->prices[i].model, price.model) == 0)
            return tether_explain(TETHER_ERR_PARSE, why, why_size, "model %s has a price already",
                                  price.model);
    if (config->price_count >= TETHER_GATE_CONFIG_MAX_PRICES)
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "more than %d prices",
                              TETHER_GATE_CONFIG_MAX_PRICES);
    config->prices[config->price_count++] = price;
    return TETHER_OK;
}

const tether_gate_config_policy_t *tether_gate_config_policy(const tether_gate_config_t *config,
                                                      const char *name)
{
    if (config == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < config->policy_count; i++)
        if (strcmp(config->policies[i].name, name) == 0)
            return &config->policies[i];
    return NULL;
}

/* ---- defaults --------------------------------------------------------- */

void tether_gate_config_policy_init(tether_gate_config_policy_t *policy, const char *name)
{
    memset(policy, 0, sizeof(*policy));
    snprintf(policy->name, sizeof(policy->name), "%s", name);
    strcpy(policy->models, "*");
    policy->max_tokens = 1024;
}

void tether_gate_config_init(tether_gate_config_t *config)
{
    if (config == NULL)
        return;
    memset(config, 0, sizeof(*config));
    strcpy(config->listen_host, "127.0.0.1");
    config->listen_port = 8480;
    strcpy(config->audience, "tether-gate");
    config->dpop_max_age_seconds = 60;
    config->clock_leeway_seconds = 5;
    config->feed_staleness_seconds = 60;
    config->usage_report_seconds = 5;
    config->replay_cache_entries = 65536;
    config->token_cache_entries = 8192;
    config->max_body_bytes = 1024 * 1024;
    config->max_connections = 1024;
    config->max_connections_per_source = 64;
    config->connection_timeout_seconds = 60;
    config->request_head_timeout_seconds = 10;
    config->threads = 4;
    config->upstream_max_transfers = 64;
    config->upstream_timeout_seconds = 300;
    config->upstream_idle_timeout_seconds = 60;
    config->max_devices = 65536;
}

/* ---- the file --------------------------------------------------------- */

typedef enum value_kind { KIND_UINT, KIND_BOOL, KIND_PATH, KIND_URL, KIND_NAME } value_kind_t;

/* One key of the top level or of a policy: where its value goes and its
 * bounds. offset is into tether_gate_config_t (top level) or
 * tether_gate_config_policy_t (policy). */
typedef struct config_key {
    const char *key;
    value_kind_t kind;
    size_t offset;
    size_t size; /* of a text field */
    uint32_t min, max;
} config_key_t;

#define TEXT(name, kind) {#name, kind, offsetof(tether_gate_config_t, name), \
                          sizeof(((tether_gate_config_t *)0)->name), 0, 0}
#define UINT(name, lo, hi) {#name, KIND_UINT, offsetof(tether_gate_config_t, name), 0, lo, hi}

static const config_key_t top_keys[] = {
    TEXT(public_url, KIND_URL),
    TEXT(tls_cert, KIND_PATH),
    TEXT(tls_key, KIND_PATH),
    TEXT(fleet, KIND_URL),
    TEXT(fleet_ca, KIND_PATH),
    TEXT(rp_token_file, KIND_PATH),
    TEXT(upstream, KIND_URL),
    TEXT(upstream_key_file, KIND_PATH),
    TEXT(upstream_ca, KIND_PATH),
    UINT(upstream_max_transfers, 1, 4096),
    UINT(upstream_timeout_seconds, 1, 3600),
    UINT(upstream_idle_timeout_seconds, 1, 3600),
    UINT(max_devices, 16, 10000000),
    TEXT(audience, KIND_NAME),
    {"dpop_nonce", KIND_BOOL, offsetof(tether_gate_config_t, dpop_nonce), 0, 0, 0},
    UINT(dpop_max_age_seconds, 5, 300),
    UINT(clock_leeway_seconds, 0, 60),
    UINT(feed_staleness_seconds, 5, 3600),
    UINT(usage_report_seconds, 1, 60),
    UINT(replay_cache_entries, 1024, 4194304),
    UINT(token_cache_entries, 64, 1048576),
    UINT(max_body_bytes, 1024, 64 * 1024 * 1024),
    UINT(max_connections, 1, 100000),
    UINT(max_connections_per_source, 1, 100000),
    UINT(connection_timeout_seconds, 1, 3600),
    UINT(request_head_timeout_seconds, 1, 60),
    UINT(threads, 1, 256),
};

#define POLICY_UINT(name, lo, hi) {#name, KIND_UINT, offsetof(tether_gate_config_policy_t, name), 0, lo, hi}

/* seen_top has a bit per top key below the SEEN_ flags. */
_Static_assert(sizeof(top_keys) / sizeof(top_keys[0]) <= 29, "too many top-level keys");

static const config_key_t policy_keys[] = {
    POLICY_UINT(requests_per_minute, 0, 1000000),
    POLICY_UINT(tokens_per_minute, 0, 100000000),
    POLICY_UINT(max_tokens, 1, 1000000),
    {"allow_bearer", KIND_BOOL, offsetof(tether_gate_config_policy_t, allow_bearer), 0, 0, 0},
};

/* Parser state: which keys were seen in the current scope. */
typedef struct parse_state {
    tether_gate_config_t *config;
    tether_gate_config_policy_t *policy; /* NULL at the top level */
    uint32_t seen_top;            /* bit per top_keys entry, +listen */
    uint32_t seen_policy;         /* bit per policy key (policy_keys, models, spend) */
    tether_gate_config_error_t *error;
    size_t line;
} parse_state_t;

#define SEEN_LISTEN (1u << 31)
#define SEEN_MODELS (1u << 30)
#define SEEN_SPEND (1u << 29)

static tether_status_t fail(parse_state_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static tether_status_t fail(parse_state_t *st, const char *fmt, ...)
{
    va_list ap;

    if (st->error != NULL) {
        st->error->line = st->line;
        va_start(ap, fmt);
        vsnprintf(st->error->message, sizeof(st->error->message), fmt, ap);
        va_end(ap);
    }
    return TETHER_ERR_PARSE;
}

static tether_status_t set_value(parse_state_t *st, const config_key_t *k, void *base,
                                 const char *value)
{
    char *field = (char *)base + k->offset;

    switch (k->kind) {
    case KIND_UINT:
        if (!parse_uint(value, k->min, k->max, (uint32_t *)(void *)field))
            return fail(st, "%s must be a whole number from %u to %u", k->key, k->min, k->max);
        return TETHER_OK;
    case KIND_BOOL:
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
            return fail(st, "%s must be yes or no", k->key);
        *(bool *)(void *)field = strcmp(value, "yes") == 0;
        return TETHER_OK;
    case KIND_URL:
        if (!tether_gate_config_url_valid(value))
            return fail(st, "%s must be an http:// or https:// URL without query, fragment, "
                            "user or final '/'", k->key);
        break;
    case KIND_PATH:
        if (!is_printable(value, k->size - 1))
            return fail(st, "%s must be a file name without spaces or quotes, at most %zu bytes",
                        k->key, k->size - 1);
        break;
    case KIND_NAME:
        if (!is_name(value, strlen(value), false))
            return fail(st, "%s must be 1-64 characters of [A-Za-z0-9._:/-]", k->key);
        break;
    }
    memcpy(field, value, strlen(value) + 1);
    return TETHER_OK;
}

static tether_status_t parse_policy_key(parse_state_t *st, const char *key, const char *value)
{
    tether_gate_config_policy_t *policy = st->policy;

    if (strcmp(key, "models") == 0) {
        if (st->seen_policy & SEEN_MODELS)
            return fail(st, "models is set twice in [policy %s]", policy->name);
        st->seen_policy |= SEEN_MODELS;
        if (!tether_gate_config_models_valid(value))
            return fail(st, "models must be comma-separated names or globs of [A-Za-z0-9._:/-*]");
        memcpy(policy->models, value, strlen(value) + 1);
        return TETHER_OK;
    }
    if (strcmp(key, "spend_per_day") == 0) {
        if (st->seen_policy & SEEN_SPEND)
            return fail(st, "spend_per_day is set twice in [policy %s]", policy->name);
        st->seen_policy |= SEEN_SPEND;
        if (tether_gate_config_parse_amount(value, &policy->spend_per_day_micros) != TETHER_OK)
            return fail(st, "spend_per_day must be a non-negative amount such as 25 or 12.50");
        return TETHER_OK;
    }
    for (size_t i = 0; i < sizeof(policy_keys) / sizeof(policy_keys[0]); i++) {
        if (strcmp(key, policy_keys[i].key) != 0)
            continue;
        if (st->seen_policy & (1u << i))
            return fail(st, "%s is set twice in [policy %s]", key, policy->name);
        st->seen_policy |= 1u << i;
        return set_value(st, &policy_keys[i], policy, value);
    }
    return fail(st, "unknown key '%s' in [policy %s]", key, policy->name);
}

static tether_status_t parse_top_key(parse_state_t *st, const char *key, const char *value)
{
    tether_gate_config_t *config = st->config;
    char why[120];

    if (strcmp(key, "price") == 0) {
        if (tether_gate_config_add_price(config, value, why, sizeof(why)) != TETHER_OK)
            return fail(st, "%s", why);
        return TETHER_OK;
    }
    if (strcmp(key, "listen") == 0) {
        if (st->seen_top & SEEN_LISTEN)
            return fail(st, "listen is set twice");
        st->seen_top |= SEEN_LISTEN;
        if (tether_gate_config_set_listen(config, value) != TETHER_OK)
            return fail(st, "listen must be IPv4:PORT or [IPv6]:PORT");
        return TETHER_OK;
    }
    for (size_t i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++) {
        if (strcmp(key, top_keys[i].key) != 0)
            continue;
        if (st->seen_top & (1u << i))
            return fail(st, "%s is set twice", key);
        st->seen_top |= 1u << i;
        return set_value(st, &top_keys[i], config, value);
    }
    return fail(st, "unknown key '%s'", key);
}

static tether_status_t parse_section(parse_state_t *st, char *line)
{
    tether_gate_config_t *config = st->config;
    size_t len = strlen(line);
    const char *name;

    if (strncmp(line, "[policy ", 8) != 0 || line[len - 1] != ']')
        return fail(st, "a section is [policy NAME]");
    line[len - 1] = '\0';
    name = line + 8;
    if (!is_name(name, strlen(name), false))
        return fail(st, "a policy name is 1-64 characters of [A-Za-z0-9._:/-]");
    if (tether_gate_config_policy(config, name) != NULL)
        return fail(st, "[policy %s] appears twice", name);
    if (config->policy_count >= TETHER_GATE_CONFIG_MAX_POLICIES)
        return fail(st, "more than %d policies", TETHER_GATE_CONFIG_MAX_POLICIES);
    st->policy = &config->policies[config->policy_count++];
    tether_gate_config_policy_init(st->policy, name);
    st->seen_policy = 0;
    return TETHER_OK;
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

static tether_status_t parse_line(parse_state_t *st, char *line)
{
    char *key, *value, *eq;

    line = trim(line);
    if (line[0] == '\0' || line[0] == '#')
        return TETHER_OK;
    if (line[0] == '[')
        return parse_section(st, line);
    if ((eq = strchr(line, '=')) == NULL)
        return fail(st, "expected \"key = value\"");
    *eq = '\0';
    key = trim(line);
    value = trim(eq + 1);
    if (key[0] == '\0' || value[0] == '\0')
        return fail(st, "expected \"key = value\" with both parts");
    return st->policy != NULL ? parse_policy_key(st, key, value) : parse_top_key(st, key, value);
}

/* Checks of the whole file, after its last line. */
static tether_status_t check_whole(parse_state_t *st)
{
    tether_gate_config_t *config = st->config;
    static const char *const required[] = {"fleet", "fleet_ca", "rp_token_file", "upstream"};
    const char *const values[] = {config->fleet, config->fleet_ca, config->rp_token_file,
                                  config->upstream};
    bool tls = config->tls_cert[0] != '\0';

    st->line = 0;
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (values[i][0] == '\0')
            return fail(st, "%s is required", required[i]);
    if (strncmp(config->fleet, "https://", 8) != 0)
        return fail(st, "fleet must be an https:// URL (fleetd serves HTTPS only)");
    if (tls != (config->tls_key[0] != '\0'))
        return fail(st, "tls_cert and tls_key go together");
    if (!tls && !tether_gate_config_listen_is_loopback(config))
        return fail(st, "plain HTTP only on a loopback address: set tls_cert and tls_key to "
                        "listen on %s", config->listen_host);
    if (tether_gate_config_policy(config, TETHER_GATE_DEFAULT_POLICY) == NULL)
        return fail(st, "a [policy " TETHER_GATE_DEFAULT_POLICY "] section is required");
    if (config->public_url[0] == '\0')
        tether_gate_config_default_public_url(config);
    return TETHER_OK;
}

void tether_gate_config_default_public_url(tether_gate_config_t *config)
{
    snprintf(config->public_url, sizeof(config->public_url),
             config->listen_ipv6 ? "%s://[%s]:%u" : "%s://%s:%u",
             config->tls_cert[0] != '\0' ? "https" : "http", config->listen_host,
             (unsigned)config->listen_port);
}

tether_status_t tether_gate_config_parse(const char *text, size_t len,
                                         tether_gate_config_t *config,
                                         tether_gate_config_error_t *error)
{
    char buf[LINE_MAX_BYTES + 1];
    parse_state_t st;
    size_t pos = 0;
    tether_status_t rc = TETHER_OK;

    memset(&st, 0, sizeof(st));
    st.config = config;
    st.error = error;
    if (error != NULL)
        memset(error, 0, sizeof(*error));
    if (config == NULL || (text == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len > TETHER_GATE_CONFIG_MAX_SIZE) {
        (void)fail(&st, "the file is larger than %d bytes", TETHER_GATE_CONFIG_MAX_SIZE);
        return TETHER_ERR_TOO_LARGE;
    }
    while (rc == TETHER_OK && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;

        st.line++;
        if (line_len > LINE_MAX_BYTES || memchr(text + pos, '\0', line_len) != NULL)
            return fail(&st, "line longer than %d bytes or holding a NUL byte", LINE_MAX_BYTES);
        memcpy(buf, text + pos, line_len);
        buf[line_len] = '\0';
        rc = parse_line(&st, buf);
        pos += line_len + (nl != NULL ? 1 : 0);
    }
    return rc != TETHER_OK ? rc : check_whole(&st);
}

/* "12.5" for 12500000 micros: the shortest text that parses back. */
static void format_amount(uint64_t micros, char *out, size_t out_size)
{
    uint64_t fraction = micros % TETHER_GATE_MICROS;
    int decimals = 6;

    if (fraction == 0) {
        snprintf(out, out_size, "%llu", (unsigned long long)(micros / TETHER_GATE_MICROS));
        return;
    }
    while (fraction % 10 == 0) {
        fraction /= 10;
        decimals--;
    }
    snprintf(out, out_size, "%llu.%0*llu", (unsigned long long)(micros / TETHER_GATE_MICROS),
             decimals, (unsigned long long)fraction);
}

static void format_policy(FILE *f, const tether_gate_config_policy_t *p)
{
    char spend[32];

    format_amount(p->spend_per_day_micros, spend, sizeof(spend));
    fprintf(f,
            "\n[policy %s]\n"
            "# Models the policy's devices may call: comma-separated names, '*' matches\n"
            "# any run of characters.\n"
            "models = %s\n"
            "# Ceilings per device (0: none). Spend is in the price table's currency.\n"
            "requests_per_minute = %u\ntokens_per_minute = %u\nspend_per_day = %s\n"
            "# max_tokens injected into a request that sends none (the worst case\n"
            "# reserved against spend_per_day).\n"
            "max_tokens = %u\n"
            "# Accept \"Authorization: Bearer\" tokens without a DPoP proof: a token\n"
            "# copied off the device then works anywhere until it expires.\n"
            "allow_bearer = %s\n",
            p->name, p->models, p->requests_per_minute, p->tokens_per_minute, spend,
            p->max_tokens, p->allow_bearer ? "yes" : "no");
}

static void format_optional(FILE *f, const char *key, const char *value, const char *example)
{
    if (value[0] != '\0')
        fprintf(f, "%s = %s\n", key, value);
    else
        fprintf(f, "# %s = %s\n", key, example);
}

tether_status_t tether_gate_config_format(const tether_gate_config_t *config, char **out)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f;

    if (config == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((f = open_memstream(&buf, &size)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    fprintf(f,
            "# tether-gate configuration (written by tether-gate init; checked by\n"
            "# tether-gate check). One \"key = value\" per line, '#' starts a comment,\n"
            "# [policy NAME] starts a policy. Files are absolute or relative to this\n"
            "# directory.\n\n"
            "# Address to serve on: IPv4:PORT or [IPv6]:PORT. Plain HTTP only on\n"
            "# loopback; elsewhere set tls_cert and tls_key (PEM).\n");
    fprintf(f, config->listen_ipv6 ? "listen = [%s]:%u\n" : "listen = %s:%u\n",
            config->listen_host, (unsigned)config->listen_port);
    format_optional(f, "tls_cert", config->tls_cert, "gate-cert.pem");
    format_optional(f, "tls_key", config->tls_key, "gate-key.pem");
    fprintf(f,
            "# The scheme, host and port clients call (behind nginx: nginx's); the\n"
            "# htu of every DPoP proof starts with it.\n");
    format_optional(f, "public_url", config->public_url, "http://127.0.0.1:8480");
    fprintf(f,
            "\n# The fleet: its base URL (the tokens' issuer), its CA (pinned, no system\n"
            "# store) and a relying-party admin token for the revocation feed (a file\n"
            "# of mode 0600 or 0400 owned by the user tether-gate runs as).\n"
            "fleet = %s\nfleet_ca = %s\nrp_token_file = %s\n"
            "# The audience tokens must name.\naudience = %s\n",
            config->fleet, config->fleet_ca, config->rp_token_file, config->audience);
    fprintf(f, "\n# The AI endpoint and its API key file (same mode rule; never logged,\n"
               "# never sent to clients).\nupstream = %s\n",
            config->upstream);
    format_optional(f, "upstream_key_file", config->upstream_key_file, "upstream.key");
    format_optional(f, "upstream_ca", config->upstream_ca, "upstream-ca.pem");
    fprintf(f,
            "# Upstream requests at once, streams included (503 beyond); the time a\n"
            "# whole answer may take; a stream silent this long is cut.\n"
            "upstream_max_transfers = %u\nupstream_timeout_seconds = %u\n"
            "upstream_idle_timeout_seconds = %u\n"
            "# Devices the ceilings track. Spend is never forgotten early: size it\n"
            "# for the devices active in one day (beyond: 503 too_many_devices).\n"
            "max_devices = %u\n",
            config->upstream_max_transfers, config->upstream_timeout_seconds,
            config->upstream_idle_timeout_seconds, config->max_devices);
    fprintf(f,
            "\n# DPoP (RFC 9449): ask every client for a server nonce (yes/no), the\n"
            "# oldest proof accepted, and the clock skew tolerated for iat, exp, nbf.\n"
            "dpop_nonce = %s\ndpop_max_age_seconds = %u\nclock_leeway_seconds = %u\n"
            "# Refuse everything (503) when the revocation feed was not reached for\n"
            "# this long.\nfeed_staleness_seconds = %u\n"
            "# How often the usage per token is reported to the fleet (seconds).\n"
            "usage_report_seconds = %u\n"
            "# Bounded caches: proofs seen (replay), verified access tokens. A full\n"
            "# replay cache refuses new proofs (503) rather than forget one early.\n"
            "replay_cache_entries = %u\ntoken_cache_entries = %u\n",
            config->dpop_nonce ? "yes" : "no", config->dpop_max_age_seconds,
            config->clock_leeway_seconds, config->feed_staleness_seconds,
            config->usage_report_seconds,
            config->replay_cache_entries, config->token_cache_entries);
    fprintf(f,
            "\n# Limits.\nmax_body_bytes = %u\nmax_connections = %u\n"
            "max_connections_per_source = %u\nconnection_timeout_seconds = %u\n"
            "request_head_timeout_seconds = %u\nthreads = %u\n",
            config->max_body_bytes, config->max_connections, config->max_connections_per_source,
            config->connection_timeout_seconds, config->request_head_timeout_seconds,
            config->threads);
    fprintf(f, "\n# Prices per 1000 tokens: price = MODEL=PROMPT:COMPLETION (repeatable).\n");
    for (size_t i = 0; i < config->price_count; i++) {
        char prompt[32], completion[32];
        format_amount(config->prices[i].prompt_per_1k_micros, prompt, sizeof(prompt));
        format_amount(config->prices[i].completion_per_1k_micros, completion,
                      sizeof(completion));
        fprintf(f, "price = %s=%s:%s\n", config->prices[i].model, prompt, completion);
    }
    for (size_t i = 0; i < config->policy_count; i++)
        format_policy(f, &config->policies[i]);
    if (fclose(f) != 0) {
        free(buf);
        return TETHER_ERR_NO_MEMORY;
    }
    *out = buf;
    return TETHER_OK;
}
