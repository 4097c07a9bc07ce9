/* tetherctl: the command line, the environment and the small values verbs
 * take (durations, numbers, roles, ids). Pure: no I/O. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tetherctl.h"
#include "tether/bytes.h"

static const struct {
    const char *name;
    bool takes_value;
    bool repeatable;
} options[CTL_OPT__COUNT] = {
    [CTL_OPT_FLEET] = {"fleet", true, false},
    [CTL_OPT_CA] = {"ca", true, false},
    [CTL_OPT_TOKEN_FILE] = {"token-file", true, false},
    [CTL_OPT_JSON] = {"json", false, false},
    [CTL_OPT_HELP] = {"help", false, false},
    [CTL_OPT_VERSION] = {"version", false, false},
    [CTL_OPT_EK_SHA256] = {"ek-sha256", true, false},
    [CTL_OPT_NAME] = {"name", true, false},
    [CTL_OPT_REASON] = {"reason", true, false},
    [CTL_OPT_TTL] = {"ttl", true, false},
    [CTL_OPT_USES] = {"uses", true, false},
    [CTL_OPT_ROLE] = {"role", true, false},
    [CTL_OPT_AFTER] = {"after", true, false},
    [CTL_OPT_WAIT] = {"wait", true, false},
    [CTL_OPT_DRY_RUN] = {"dry-run", false, false},
    [CTL_OPT_DEVICE] = {"device", true, false},
    [CTL_OPT_SINCE] = {"since", true, false},
    [CTL_OPT_FOLLOW] = {"follow", false, false},
    [CTL_OPT_MODELS] = {"models", true, false},
    [CTL_OPT_COST_CEILING] = {"cost-ceiling", true, false},
    [CTL_OPT_TOKEN_LIFETIME] = {"token-lifetime", true, false},
    [CTL_OPT_THRESHOLD] = {"threshold", true, true},
    [CTL_OPT_SOURCE_CIDR] = {"source-cidr", true, true},
    [CTL_OPT_FROM_EVENTLOG] = {"from-eventlog", true, true},
    [CTL_OPT_REPLACE_REFERENCE] = {"replace-reference", false, false},
};

/* Whether text is one or more decimal digits. */
static bool all_digits(const char *text)
{
    return text[0] != '\0' && strspn(text, "0123456789") == strlen(text);
}

const char *ctl_option_name(ctl_option_t option)
{
    if ((unsigned)option >= CTL_OPT__COUNT)
        return "?";
    return options[option].name;
}

/* The option named by arg ("--name" or "--name=value"), or CTL_OPT__COUNT. */
static ctl_option_t find_option(const char *arg, const char **inline_value)
{
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");

    *inline_value = name[len] == '=' ? name + len + 1 : NULL;
    for (unsigned i = 0; i < CTL_OPT__COUNT; i++) {
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return (ctl_option_t)i;
    }
    return CTL_OPT__COUNT;
}

tether_status_t ctl_args_parse(int argc, char *const *argv, ctl_args_t *args, char *message,
                               size_t message_size)
{
    bool options_end = false;

    if (args == NULL || argv == NULL || argc < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(args, 0, sizeof(*args));
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *inline_value = NULL, *value;
        ctl_option_t option;

        if (arg == NULL)
            break;
        if (!options_end && strcmp(arg, "--") == 0) {
            options_end = true;
            continue;
        }
        /* "-" alone is a word: standard input for "device import -". */
        if (options_end || arg[0] != '-' || arg[1] == '\0') {
            if (args->word_count >= CTL_MAX_WORDS)
                return tether_explain(TETHER_ERR_PARSE, message, message_size,
                                      "too many arguments (at \"%.40s\")", arg);
            args->words[args->word_count++] = arg;
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            option = CTL_OPT_HELP;
        } else if (arg[1] != '-') {
            return tether_explain(TETHER_ERR_PARSE, message, message_size,
                                  "unknown option %.40s (options are spelt --name)", arg);
        } else if ((option = find_option(arg, &inline_value)) == CTL_OPT__COUNT) {
            return tether_explain(TETHER_ERR_PARSE, message, message_size, "unknown option %.60s",
                                  arg);
        }
        if ((args->given & CTL_OPT_BIT(option)) && !options[option].repeatable)
            return tether_explain(TETHER_ERR_PARSE, message, message_size, "--%s is given twice",
                                  options[option].name);
        if (option == CTL_OPT_VERSION) {
            /* A flag, or a policy version: "--version=2", "--version 2". */
            if (inline_value != NULL)
                value = inline_value;
            else if (i + 1 < argc && argv[i + 1] != NULL && all_digits(argv[i + 1]))
                value = argv[++i];
            else
                value = "";
        } else if (!options[option].takes_value) {
            if (inline_value != NULL)
                return tether_explain(TETHER_ERR_PARSE, message, message_size,
                                      "--%s takes no value", options[option].name);
            value = "";
        } else if (inline_value != NULL) {
            value = inline_value;
        } else if (i + 1 < argc && argv[i + 1] != NULL) {
            value = argv[++i];
        } else {
            return tether_explain(TETHER_ERR_PARSE, message, message_size, "--%s needs a value",
                                  options[option].name);
        }
        if (options[option].repeatable) {
            if (args->repeat_count >= CTL_MAX_REPEATS)
                return tether_explain(TETHER_ERR_PARSE, message, message_size,
                                      "more than %d --threshold, --source-cidr and "
                                      "--from-eventlog values",
                                      CTL_MAX_REPEATS);
            args->repeat_options[args->repeat_count] = option;
            args->repeats[args->repeat_count++] = value;
        }
        if (args->value[option] == NULL)
            args->value[option] = value;
        args->given |= CTL_OPT_BIT(option);
    }
    return TETHER_OK;
}

static const char *pick(const char *flag, ctl_getenv_fn getenv_fn, const char *variable)
{
    const char *value;

    if (flag != NULL)
        return flag;
    if (getenv_fn == NULL)
        return NULL;
    value = getenv_fn(variable);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

void ctl_settings_resolve(const ctl_args_t *args, ctl_getenv_fn getenv_fn,
                          ctl_settings_t *settings)
{
    settings->fleet_url = pick(args->value[CTL_OPT_FLEET], getenv_fn, CTL_ENV_FLEET);
    settings->ca_file = pick(args->value[CTL_OPT_CA], getenv_fn, CTL_ENV_CA);
    settings->token_file = pick(args->value[CTL_OPT_TOKEN_FILE], getenv_fn, CTL_ENV_TOKEN_FILE);
}

/* Digits at *p (advanced past them) as a number up to limit. */
static tether_status_t digits(const char **p, uint64_t limit, uint64_t *value)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return TETHER_ERR_PARSE;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10u + (uint64_t)(*s - '0');
        if (v > limit)
            return TETHER_ERR_TOO_LARGE;
    }
    *p = s;
    *value = v;
    return TETHER_OK;
}

tether_status_t ctl_duration_parse(const char *text, unsigned *seconds)
{
    static const struct {
        char unit;
        uint64_t seconds;
    } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    const char *p = text;
    uint64_t total = 0;
    size_t next_unit = 0; /* units must come from largest to smallest, once each */
    tether_status_t rc;

    if (text == NULL || seconds == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *seconds = 0;
    if (*p == '\0')
        return TETHER_ERR_PARSE;
    while (*p != '\0') {
        uint64_t n = 0;
        size_t u;

        if ((rc = digits(&p, CTL_DURATION_MAX, &n)) != TETHER_OK)
            return rc;
        if (*p == '\0' && next_unit == 0) {
            total = n; /* a bare number: seconds */
            break;
        }
        for (u = next_unit; u < sizeof(units) / sizeof(units[0]); u++) {
            if (units[u].unit == *p)
                break;
        }
        if (u == sizeof(units) / sizeof(units[0]))
            return TETHER_ERR_PARSE;
        total += n * units[u].seconds;
        if (total > CTL_DURATION_MAX)
            return TETHER_ERR_TOO_LARGE;
        next_unit = u + 1;
        p++;
    }
    if (total == 0)
        return TETHER_ERR_PARSE;
    *seconds = (unsigned)total;
    return TETHER_OK;
}

tether_status_t ctl_uint_parse(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    const char *p = text;
    uint64_t v = 0;
    tether_status_t rc;

    if (text == NULL || value == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (text[0] == '0' && text[1] != '\0')
        return TETHER_ERR_PARSE;
    if ((rc = digits(&p, max, &v)) != TETHER_OK)
        return rc;
    if (*p != '\0')
        return TETHER_ERR_PARSE;
    if (v < min)
        return TETHER_ERR_PARSE;
    *value = v;
    return TETHER_OK;
}

tether_status_t ctl_roles_parse(const char *text, const char *names[TETHER_ROLE_COUNT],
                                size_t *count)
{
    unsigned seen = 0;
    const char *p = text;

    if (text == NULL || names == NULL || count == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *count = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        unsigned bit = tether_role_bit(p, len);

        if (bit == 0 || (seen & bit))
            return TETHER_ERR_PARSE;
        seen |= bit;
        names[(*count)++] = tether_role_name(bit);
        if (p[len] == '\0')
            return TETHER_OK;
        p += len + 1;
    }
}

bool ctl_ek_sha256_valid(const char *text)
{
    if (text == NULL || strlen(text) != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        if (tether_hex_digit((unsigned char)text[i]) < 0)
            return false;
    }
    return true;
}

bool ctl_path_id_valid(const char *text)
{
    size_t len;

    if (text == NULL || (len = strlen(text)) == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

tether_status_t ctl_since_parse(const char *text, int64_t now, int64_t *since)
{
    unsigned seconds = 0;
    struct tm tm;
    const char *end;

    if (text == NULL || since == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *since = 0;
    if (ctl_duration_parse(text, &seconds) == TETHER_OK) {
        *since = now > (int64_t)seconds ? now - (int64_t)seconds : 0;
        return TETHER_OK;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0' || strlen(text) != 20 || tm.tm_year < 70)
        return TETHER_ERR_PARSE;
    *since = (int64_t)timegm(&tm);
    return TETHER_OK;
}
