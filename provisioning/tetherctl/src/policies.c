/* tetherctl verbs for fleet policies: policy create, update, show, list
 * (device set-policy is in devices.c). */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tether/cel.h"
#include "tether/eventlog.h"
#include "tether/fleet_policy.h"
#include "tether/measured_boot.h"
#include "tetherctl.h"

#define PATH_SIZE 256
#define DEFAULT_COST_CEILING "0"
#define DEFAULT_LIFETIME 300u

static int model_order(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* --models: split at commas, sorted, each once. */
static tether_status_t build_models(const char *text, tether_policy_document_t *doc,
                                    char *message, size_t message_size)
{
    size_t kept = 0;

    for (const char *p = text;; p++) {
        size_t n = strcspn(p, ",");

        if (n == 0 || n > TETHER_POLICY_MODEL_MAX)
            return tether_explain(TETHER_ERR_PARSE, message, message_size,
                                  "--models: each model is 1 to %d bytes, comma-separated",
                                  TETHER_POLICY_MODEL_MAX);
        if (doc->model_count == TETHER_POLICY_MAX_MODELS)
            return tether_explain(TETHER_ERR_PARSE, message, message_size,
                                  "--models: at most %d models", TETHER_POLICY_MAX_MODELS);
        memcpy(doc->models[doc->model_count++], p, n);
        p += n;
        if (*p == '\0')
            break;
    }
    qsort(doc->models, doc->model_count, sizeof(doc->models[0]), model_order);
    for (size_t i = 0; i < doc->model_count; i++)
        if (kept == 0 || strcmp(doc->models[kept - 1], doc->models[i]) != 0)
            memmove(doc->models[kept++], doc->models[i], sizeof(doc->models[0]));
    doc->model_count = kept;
    return TETHER_OK;
}

/* A decimal as given (fleetd's reader checks its form). */
static tether_status_t copy_decimal(const char *option, const char *text,
                                    char out[TETHER_POLICY_DECIMAL_MAX], char *message,
                                    size_t message_size)
{
    size_t len = strlen(text);

    if (len == 0 || len >= TETHER_POLICY_DECIMAL_MAX || strspn(text, "0123456789.") != len)
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "%s: \"%.40s\" is not a decimal of at most %d characters", option,
                              text, TETHER_POLICY_DECIMAL_MAX - 1);
    memcpy(out, text, len + 1);
    return TETHER_OK;
}

/* --threshold KIND=VALUE:ACTION. */
static tether_status_t build_threshold(const char *text, tether_policy_document_t *doc,
                                       char *message, size_t message_size)
{
    const char *equals = strchr(text, '='), *colon = strrchr(text, ':');
    tether_policy_threshold_kind_t kind = TETHER_THRESHOLD_REQUESTS_PER_MINUTE;
    tether_policy_threshold_t *t;
    char value[TETHER_POLICY_DECIMAL_MAX + 1];
    size_t value_len;

    if (equals == NULL || colon == NULL || colon < equals ||
        tether_policy_threshold_kind_parse(text, (size_t)(equals - text), &kind) != TETHER_OK)
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "--threshold \"%.60s\": KIND=VALUE:ACTION with a KIND of "
                              "requests_per_minute, tokens_per_minute, spend_per_hour, "
                              "spend_per_day, refused_models, source_networks",
                              text);
    t = &doc->thresholds[kind];
    if (t->set)
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "--threshold: %s is given twice",
                              tether_policy_threshold_kind_name(kind));
    value_len = (size_t)(colon - equals - 1);
    if (value_len >= sizeof(value))
        value_len = sizeof(value) - 1; /* copy_decimal refuses it as too long */
    memcpy(value, equals + 1, value_len);
    value[value_len] = '\0';
    if (copy_decimal("--threshold", value, t->value, message, message_size) != TETHER_OK)
        return TETHER_ERR_PARSE;
    if (strcmp(colon + 1, tether_policy_action_name(TETHER_POLICY_ACTION_ALERT)) == 0)
        t->action = TETHER_POLICY_ACTION_ALERT;
    else if (strcmp(colon + 1, tether_policy_action_name(TETHER_POLICY_ACTION_QUARANTINE)) == 0)
        t->action = TETHER_POLICY_ACTION_QUARANTINE;
    else
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "--threshold \"%.60s\": ACTION is alert or quarantine", text);
    t->set = true;
    return TETHER_OK;
}

/* --source-cidr ADDRESS/PREFIX, IPv4 or IPv6. */
static tether_status_t build_source(const char *text, tether_policy_document_t *doc,
                                    char *message, size_t message_size)
{
    char address[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    tether_policy_cidr_t *c;
    uint64_t prefix = 0;
    size_t len = slash != NULL ? (size_t)(slash - text) : 0;

    if (doc->source_count == TETHER_POLICY_MAX_SOURCES)
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "--source-cidr: at most %d networks", TETHER_POLICY_MAX_SOURCES);
    c = &doc->sources[doc->source_count];
    if (len > 0 && len < sizeof(address)) {
        memcpy(address, text, len);
        address[len] = '\0';
        c->family = strchr(address, ':') != NULL ? AF_INET6 : AF_INET;
    }
    if (len == 0 || len >= sizeof(address) || inet_pton(c->family, address, c->address) != 1 ||
        ctl_uint_parse(slash + 1, 0, c->family == AF_INET ? 32 : 128, &prefix) != TETHER_OK) {
        memset(c, 0, sizeof(*c));
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "--source-cidr \"%.60s\" is not ADDRESS/PREFIX (IPv4 or IPv6)",
                              text);
    }
    c->prefix = (unsigned)prefix;
    doc->source_count++;
    return TETHER_OK;
}

/* --models, --cost-ceiling, --token-lifetime. */
static tether_status_t build_tokens(const ctl_args_t *args, tether_policy_document_t *doc,
                                    char *message, size_t message_size)
{
    const char *cost = args->value[CTL_OPT_COST_CEILING];
    const char *lifetime = args->value[CTL_OPT_TOKEN_LIFETIME];
    uint64_t seconds = DEFAULT_LIFETIME;
    tether_status_t rc;

    if ((rc = build_models(args->value[CTL_OPT_MODELS], doc, message, message_size)) !=
            TETHER_OK ||
        (rc = copy_decimal("--cost-ceiling", cost != NULL ? cost : DEFAULT_COST_CEILING,
                           doc->cost_ceiling, message, message_size)) != TETHER_OK)
        return rc;
    if (lifetime != NULL && ctl_uint_parse(lifetime, 1, UINT_MAX, &seconds) != TETHER_OK)
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "--token-lifetime \"%.40s\" is not a number of seconds", lifetime);
    doc->lifetime_seconds = (unsigned)seconds;
    return TETHER_OK;
}

/* The tokens, thresholds and sources of current, as they stand. */
static void keep_current(tether_policy_document_t *doc, const tether_policy_document_t *current)
{
    memcpy(doc->models, current->models, sizeof(doc->models));
    doc->model_count = current->model_count;
    memcpy(doc->cost_ceiling, current->cost_ceiling, sizeof(doc->cost_ceiling));
    doc->lifetime_seconds = current->lifetime_seconds;
    memcpy(doc->thresholds, current->thresholds, sizeof(doc->thresholds));
    memcpy(doc->sources, current->sources, sizeof(doc->sources));
    doc->source_count = current->source_count;
}

/* Each --from-eventlog FILE's reference values added to doc's
 * measured_boot section. */
static tether_status_t add_eventlogs(const ctl_args_t *args, tether_policy_document_t *doc,
                                     char *message, size_t message_size)
{
    tether_measured_boot_reference_t *ref = &doc->measured_boot;
    char why[256];
    tether_status_t rc = TETHER_OK;

    for (size_t i = 0; i < args->repeat_count && rc == TETHER_OK; i++) {
        const char *file = args->repeats[i];
        uint8_t *data = NULL;
        size_t len = 0;

        if (args->repeat_options[i] != CTL_OPT_FROM_EVENTLOG)
            continue;
        if ((rc = tether_eventlog_read_file(file, &data, &len)) != TETHER_OK) {
            rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                "--from-eventlog %.200s: %s (at most %u bytes)", file,
                                tether_strerror(rc), TETHER_EVENTLOG_MAX_SIZE);
            break;
        }
        if (tether_cel_recognise(data, len))
            rc = tether_measured_boot_reference_add_logs(ref, NULL, 0, data, len, why,
                                                         sizeof(why));
        else
            rc = tether_measured_boot_reference_add_logs(ref, data, len, NULL, 0, why,
                                                         sizeof(why));
        free(data);
        if (rc != TETHER_OK)
            rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                "--from-eventlog %.200s: %s", file, why);
        else
            doc->has_measured_boot = true;
    }
    return rc;
}

tether_status_t ctl_policy_document_build(const ctl_args_t *args,
                                          const tether_policy_document_t *current, char *out,
                                          size_t size, size_t *len, char *message,
                                          size_t message_size)
{
    tether_policy_document_t *doc = NULL;
    tether_status_t rc;

    if (len != NULL)
        *len = 0;
    if (args == NULL || out == NULL || len == NULL || message == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (args->value[CTL_OPT_MODELS] == NULL && current == NULL) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size, "--models is required");
        goto out;
    }
    if ((doc = calloc(1, sizeof(*doc))) == NULL) {
        rc = tether_explain(TETHER_ERR_NO_MEMORY, message, message_size, "out of memory");
        goto out;
    }
    rc = TETHER_OK;
    if (current != NULL && args->value[CTL_OPT_REPLACE_REFERENCE] == NULL) {
        doc->has_measured_boot = current->has_measured_boot;
        doc->measured_boot = current->measured_boot;
    }
    if (args->value[CTL_OPT_MODELS] == NULL) /* policy update --from-eventlog alone */
        keep_current(doc, current);
    else
        rc = build_tokens(args, doc, message, message_size);
    for (size_t i = 0; i < args->repeat_count && rc == TETHER_OK; i++) {
        if (args->repeat_options[i] == CTL_OPT_THRESHOLD)
            rc = build_threshold(args->repeats[i], doc, message, message_size);
        else if (args->repeat_options[i] == CTL_OPT_SOURCE_CIDR)
            rc = build_source(args->repeats[i], doc, message, message_size);
    }
    if (rc == TETHER_OK)
        rc = add_eventlogs(args, doc, message, message_size);
    if (rc == TETHER_OK && (rc = tether_policy_document_write(doc, out, size, len)) != TETHER_OK)
        tether_explain(rc, message, message_size, "the policy does not fit in %zu bytes",
                       size - 1);
out:
    free(doc);
    return rc;
}

/* TETHER_FLEET_PATH_POLICIES/NAME[suffix], or a usage error for a name
 * that is not a policy name. */
static int policy_path(ctl_context_t *ctx, const char *name, const char *suffix, char *path,
                       size_t size)
{
    if (!tether_policy_name_valid(name))
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "\"%.80s\" is not a policy name (1-%d of a-z 0-9 . _ -, starting with a "
                        "letter or digit)",
                        name != NULL ? name : "", TETHER_POLICY_NAME_MAX);
    snprintf(path, size, TETHER_FLEET_PATH_POLICIES "/%s%s", name, suffix);
    return CTL_EXIT_OK;
}

/* The policy object {"name", "version", "created_at", "policy"} as lines. */
static void print_policy(FILE *out, const cJSON *policy)
{
    char value[TETHER_POLICY_DOCUMENT_MAX + 1];
    char *document = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(policy, "policy"));

    ctl_print_field(out, "name", ctl_json_string(policy, "name"));
    ctl_format_value(cJSON_GetObjectItemCaseSensitive(policy, "version"), value, sizeof(value));
    ctl_print_field(out, "version", value);
    ctl_format_time(cJSON_GetObjectItemCaseSensitive(policy, "created_at"), value, sizeof(value));
    ctl_print_field(out, "created", value);
    ctl_print_field(out, "policy", document);
    cJSON_free(document);
}

/* The current version of policy name (path its URL) read into *current
 * with the strict reader, for policy update. */
static int policy_current(ctl_context_t *ctx, const char *path,
                          tether_policy_document_t *current)
{
    char why[256];
    char *document = NULL;
    cJSON *json = NULL;
    int code;

    if ((code = ctl_call(ctx, "GET", path, NULL, NULL, 0, &json)) != CTL_EXIT_OK)
        goto out;
    document = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(json, "policy"));
    if (document == NULL ||
        tether_policy_document_parse((const uint8_t *)document, strlen(document), current, why,
                                     sizeof(why)) != TETHER_OK)
        code = ctl_fail(ctx, CTL_EXIT_REMOTE,
                        "the current version of %s does not read back as a policy document "
                        "(%s); give the whole version with --models and the other options",
                        path, document == NULL ? "no policy in the answer" : why);
out:
    cJSON_free(document);
    ctl_json_free(json);
    return code;
}

static int policy_write(ctl_context_t *ctx, const char *name, bool create)
{
    char path[PATH_SIZE], current_path[PATH_SIZE], message[CTL_MESSAGE_SIZE];
    const ctl_args_t *args = ctx->args;
    tether_policy_document_t *current = NULL;
    char *document = NULL;
    cJSON *json = NULL;
    size_t len = 0;
    int code;

    if ((code = policy_path(ctx, name, create ? "" : "/versions", path, sizeof(path))) !=
            CTL_EXIT_OK ||
        (code = policy_path(ctx, name, "", current_path, sizeof(current_path))) != CTL_EXIT_OK)
        return code;
    if (!create && args->value[CTL_OPT_FROM_EVENTLOG] == NULL &&
        args->value[CTL_OPT_MODELS] == NULL)
        return ctl_fail(ctx, CTL_EXIT_USAGE, "--models or --from-eventlog is required");
    if (!create && args->value[CTL_OPT_MODELS] == NULL &&
        (args->given & (CTL_OPT_BIT(CTL_OPT_COST_CEILING) | CTL_OPT_BIT(CTL_OPT_TOKEN_LIFETIME) |
                        CTL_OPT_BIT(CTL_OPT_THRESHOLD) | CTL_OPT_BIT(CTL_OPT_SOURCE_CIDR))) != 0)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "without --models, --from-eventlog changes only the measured_boot "
                        "section: give --models to rewrite the rest");
    /* An update keeps the current version's measured_boot section (and
     * --from-eventlog adds to it, so a fleet admits a new kernel while
     * devices still boot the old one): a new models list must not turn
     * measured boot off unsaid. --replace-reference writes the section from
     * the given logs alone, so it needs the current version only for what
     * --models does not give. */
    if ((document = malloc(TETHER_POLICY_DOCUMENT_MAX + 1)) == NULL ||
        (!create &&
         (args->value[CTL_OPT_REPLACE_REFERENCE] == NULL || args->value[CTL_OPT_MODELS] == NULL) &&
         (current = malloc(sizeof(*current))) == NULL)) {
        code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
        goto out;
    }
    if (current != NULL && (code = policy_current(ctx, current_path, current)) != CTL_EXIT_OK)
        goto out;
    if (ctl_policy_document_build(args, current, document, TETHER_POLICY_DOCUMENT_MAX + 1, &len,
                                  message, sizeof(message)) != TETHER_OK) {
        code = ctl_fail(ctx, CTL_EXIT_USAGE, "%s", message);
        goto out;
    }
    if ((code = ctl_call(ctx, "POST", path, "application/json", document, len, &json)) !=
        CTL_EXIT_OK)
        goto out;
    if (ctx->json)
        code = ctl_print_raw_body(ctx);
    else
        print_policy(ctx->io->out, json);
out:
    ctl_json_free(json);
    free(current);
    free(document);
    return code;
}

int ctl_policy_create(ctl_context_t *ctx, const char *arg)
{
    return policy_write(ctx, arg, true);
}

int ctl_policy_update(ctl_context_t *ctx, const char *arg)
{
    return policy_write(ctx, arg, false);
}

int ctl_policy_show(ctl_context_t *ctx, const char *arg)
{
    const char *version = ctx->args->value[CTL_OPT_VERSION];
    char path[PATH_SIZE], query[40] = "";
    cJSON *json = NULL;
    uint64_t number = 0;
    int code;

    if (version != NULL && version[0] != '\0') {
        if (ctl_uint_parse(version, 1, INT64_MAX, &number) != TETHER_OK)
            return ctl_fail(ctx, CTL_EXIT_USAGE, "--version \"%.40s\" is not a version (1, 2, ...)",
                            version);
        snprintf(query, sizeof(query), "?version=%llu", (unsigned long long)number);
    }
    if ((code = policy_path(ctx, arg, query, path, sizeof(path))) != CTL_EXIT_OK)
        return code;
    if ((code = ctl_call(ctx, "GET", path, NULL, NULL, 0, &json)) == CTL_EXIT_OK) {
        if (ctx->json)
            code = ctl_print_raw_body(ctx);
        else
            print_policy(ctx->io->out, json);
    }
    ctl_json_free(json);
    return code;
}

int ctl_policy_list(ctl_context_t *ctx, const char *arg)
{
    static const ctl_column_t columns[] = {
        {"NAME", 0}, {"VERSION", 0}, {"CREATED", 0}, {"MODELS", 60}, {"LIFETIME", 0},
    };
    ctl_table_t table;
    cJSON *json = NULL;
    const cJSON *policies, *policy;
    int code;

    (void)arg;
    ctl_table_init(&table, columns, sizeof(columns) / sizeof(columns[0]));
    if ((code = ctl_get_list(ctx, TETHER_FLEET_PATH_POLICIES, "policies", &json, &policies)) !=
            CTL_EXIT_OK ||
        policies == NULL)
        goto out;
    cJSON_ArrayForEach(policy, policies)
    {
        const cJSON *tokens =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(policy, "policy"),
                                             "tokens");
        char version[24], created[40], models[TETHER_POLICY_MAX_MODELS * 130], lifetime[24];
        const char *row[5] = {ctl_json_string(policy, "name"), version, created, models,
                              lifetime};

        ctl_format_value(cJSON_GetObjectItemCaseSensitive(policy, "version"), version,
                         sizeof(version));
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(policy, "created_at"), created,
                        sizeof(created));
        ctl_format_value(cJSON_GetObjectItemCaseSensitive(tokens, "models"), models,
                         sizeof(models));
        ctl_format_value(cJSON_GetObjectItemCaseSensitive(tokens, "lifetime_seconds"), lifetime,
                         sizeof(lifetime));
        if (ctl_table_add_row(&table, row) != TETHER_OK) {
            code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
            goto out;
        }
    }
    ctl_table_print(&table, ctx->io->out);
out:
    ctl_table_free(&table);
    ctl_json_free(json);
    return code;
}
