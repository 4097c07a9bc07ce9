/* tetherctl: the verbs, their help, and the checks of a command line that
 * need no server. */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#include "tetherctl.h"

#ifndef TETHERCTL_VERSION
#define TETHERCTL_VERSION "unknown"
#endif

#define B(o) CTL_OPT_BIT(CTL_OPT_##o)

typedef struct ctl_verb {
    const char *group;
    const char *name; /* NULL: the group is the verb (alerts) */
    const char *arg;  /* the positional arguments' names ("ID", "ID NAME"), or NULL */
    unsigned allowed; /* verb options beyond the global ones */
    unsigned required;
    ctl_verb_fn run;
    const char *synopsis;
    const char *summary;
    const char *details; /* the verb's own options, the role it needs */
} ctl_verb_t;

#define POLICY_OPTIONS                                                                       \
    (B(MODELS) | B(COST_CEILING) | B(TOKEN_LIFETIME) | B(THRESHOLD) | B(SOURCE_CIDR) |          \
     B(FROM_EVENTLOG))
#define POLICY_OPTIONS_HELP                                                                  \
    "  --models GLOB,...         the models its tokens allow: names or globs, comma-\n"      \
    "                            separated (sorted, each once, by tetherctl)\n"             \
    "  --cost-ceiling X          the tokens' cost ceiling, a decimal (default 0: none)\n"   \
    "  --token-lifetime S        the tokens' lifetime in seconds, 30-3600 (default 300)\n" \
    "  --threshold KIND=VALUE:ACTION\n"                                                     \
    "                            repeatable: KIND requests_per_minute,\n"                   \
    "                            tokens_per_minute, spend_per_hour, spend_per_day,\n"       \
    "                            refused_models or source_networks; ACTION alert or\n"      \
    "                            quarantine, taken when fleetd sees the threshold\n"      \
    "                            crossed (at exchanges and at gateways' usage reports)\n" \
    "  --source-cidr CIDR        repeatable: a network its devices may be seen from\n"      \
    "                            (canonical, ascending; none: any)\n"                       \
    "  --from-eventlog FILE      repeatable: a golden device's event log (its\n"            \
    "                            binary_bios_measurements, or tether's own log of\n"       \
    "                            'tether-agent measure'); the policy's measured_boot\n"    \
    "                            section then checks devices' logs against it: the PCRs\n" \
    "                            the logs extend, the digests of the boot applications\n"  \
    "                            and IPL events (kernel, initrd, boot loader commands)\n"  \
    "                            seen, SecureBoot required when enabled, PK/KEK/db/dbx\n"  \
    "                            as measured, and tether's files by name\n"                \
    "\n"                                                                                    \
    "tetherctl writes the canonical policy document; fleetd's strict reader refuses\n"     \
    "anything else with its reason (exit 1).\n"                                            \
    "\n"

static const ctl_verb_t verbs[] = {
    {"device", "list", NULL, 0, 0, ctl_device_list, "device list", "list the fleet's devices",
     "Prints ID, NAME, STATUS, EK SHA-256 (first 16 hex digits) and UPDATED (UTC)\n"
     "for every device; with --json the server's {\"devices\": [...]}.\n"
     "Needs an admin token with the read role.\n"},
    {"device", "show", "ID", 0, 0, ctl_device_show, "device show ID", "show one device",
     "Prints the device as \"label: value\" lines (id, name, status, status reason,\n"
     "ek sha256, enrolled, re-enrolment allowed, highest counter, created, updated,\n"
     "and enrolment details such as the AK name when the fleet has them); with\n"
     "--json the server's device object.\n"
     "Needs an admin token with the read role.\n"},
    {"device", "allow", NULL, B(EK_SHA256) | B(NAME), B(EK_SHA256) | B(NAME), ctl_device_allow,
     "device allow --ek-sha256 HEX --name NAME", "allow a device to enrol",
     "  --ek-sha256 HEX  SHA-256 of the device's EK public key, 64 hex digits\n"
     "  --name NAME      1-64 characters of A-Z a-z 0-9 . _ : @ + - and inner spaces\n"
     "\n"
     "Idempotent: allowing a known EK again under the same name changes nothing;\n"
     "under another name it is refused (HTTP 409).\n"
     "Needs an admin token with the fleet role.\n"},
    {"device", "import", "FILE", 0, 0, ctl_device_import, "device import FILE.csv",
     "allow many devices from a CSV file",
     "FILE (\"-\": standard input) is CSV with the header line \"ek_sha256,name\" and\n"
     "one device per line. Idempotent. All rows or none: when the fleet refuses\n"
     "any row, nothing is imported and each bad row is printed as FILE:LINE: why.\n"
     "Needs an admin token with the fleet role.\n"},
    {"device", "revoke", "ID", B(REASON), B(REASON), ctl_device_revoke,
     "device revoke ID --reason TEXT", "revoke a device and every token it holds",
     "  --reason TEXT  why (1-256 printable ASCII characters); kept with the device\n"
     "\n"
     "The device gets no more tokens, its unexpired tokens are revoked and the\n"
     "revocation feed tells relying parties, in one transaction.\n"
     "Needs an admin token with the security role.\n"},
    {"device", "quarantine", "ID", B(REASON), 0, ctl_device_quarantine,
     "device quarantine ID [--reason TEXT]", "quarantine a device (suspected clone)",
     "  --reason TEXT  why (default: \"quarantined with tetherctl (no reason given)\")\n"
     "\n"
     "As revoke, with the status quarantined.\n"
     "Needs an admin token with the security role.\n"},
    {"device", "reinstate", "ID", B(REASON), 0, ctl_device_reinstate,
     "device reinstate ID [--reason TEXT]", "let a revoked or quarantined device enrol again",
     "  --reason TEXT  why (default: \"reinstated with tetherctl (no reason given)\")\n"
     "\n"
     "The device goes back to allowed and must enrol again: its old keys are not\n"
     "trusted again.\n"
     "Needs an admin token with the security role.\n"},
    {"bootstrap", "create", NULL, B(TTL) | B(USES), 0, ctl_bootstrap_create,
     "bootstrap create [--ttl 1h] [--uses 1]", "print a new device bootstrap token",
     "  --ttl DURATION  how long the token is valid: 90s, 15m, 1h, 2d, 1h30m...\n"
     "                  (default 1h; the fleet takes 60s up to its configured limit)\n"
     "  --uses N        how many enrolments it allows, 1-1000 (default 1)\n"
     "\n"
     "Prints only the tthr_boot_ token on standard output, for scripts to\n"
     "capture: TOKEN=$(tetherctl bootstrap create). It is shown once.\n"
     "Needs an admin token with the fleet role.\n"},
    {"token", "create", NULL, B(ROLE) | B(NAME), B(ROLE) | B(NAME), ctl_token_create,
     "token create --role ROLES --name NAME", "print a new admin token",
     "  --role ROLES  comma-separated: read, fleet, security, relying-party\n"
     "                (only roles the token in --token-file holds itself; a\n"
     "                security token may also grant relying-party)\n"
     "  --name NAME   what the token is for (1-64 characters)\n"
     "\n"
     "Prints only the new tthr_adm_ token on standard output. It is shown once\n"
     "and stored by the fleet only as a hash: put it in a file with mode 0600.\n"
     "relying-party is for AI gateways: token introspection, the revocation\n"
     "feed and usage reports, nothing else.\n"
     "Needs an admin token with the security role.\n"},
    {"token", "list", NULL, 0, 0, ctl_token_list, "token list", "list admin tokens",
     "Prints ID, NAME, ROLES, CREATED and REVOKED (UTC) for every admin token,\n"
     "never the tokens themselves.\n"
     "Needs an admin token with the security role.\n"},
    {"token", "revoke", "ID", 0, 0, ctl_token_revoke, "token revoke ID",
     "revoke an admin token",
     "ID is the number shown by 'tetherctl token list'. The token stops working\n"
     "at once.\n"
     "Needs an admin token with the security role.\n"},
    {"key", "list", NULL, 0, 0, ctl_key_list, "key list", "list the token issuer keys",
     "Prints KID, STATE (active: signs new tokens; retired), CREATED and NOT AFTER\n"
     "(UTC: until then a retired key stays in /.well-known/jwks.json, for the\n"
     "tokens it signed) for every issuer key; with --json the server's\n"
     "{\"keys\": [...]}.\n"
     "Needs an admin token with the read role.\n"},
    {"key", "rotate", NULL, 0, 0, ctl_key_rotate, "key rotate",
     "make a new issuer key the signing key",
     "A new ES256 key signs every token from now on. The old key is retired but\n"
     "stays published until the last token it signed has expired, so relying\n"
     "parties keep accepting those. Prints the new kid and until when the old\n"
     "key is published.\n"
     "Needs an admin token with the security role.\n"},
    {"alerts", NULL, NULL, B(AFTER) | B(FOLLOW), 0, ctl_alerts, "alerts [--after ID] [--follow]",
     "list security alerts (clones, clock regressions, tokens minted on the host)",
     "  --after ID  only alerts after this one (to read on, or to poll)\n"
     "  --follow    then print each new alert as it is written, until Ctrl-C or\n"
     "              SIGTERM; waits and reconnects while the fleet restarts\n"
     "\n"
     "Prints ID, DEVICE, KIND, CREATED (UTC) and DETAILS, oldest first, at most\n"
     "500 at a time; with --follow every alert, one line each (with --json one\n"
     "alert object per line).\n"
     "Needs an admin token with the security role.\n"},
    {"revocations", NULL, NULL, B(AFTER) | B(WAIT), 0, ctl_revocations,
     "revocations [--after SEQ] [--wait S]", "read the revocation feed",
     "  --after SEQ  only entries after this seq (the last_seq of the last read)\n"
     "  --wait S     when nothing is newer, wait up to S seconds (0-30) for it\n"
     "\n"
     "Prints SEQ, DEVICE, JTI (\"*\": every token of the device), CREATED (UTC)\n"
     "and REASON, oldest first, at most 500 at a time; with --json the fleet's\n"
     "{\"revocations\": [...], \"last_seq\": N}. Relying parties follow the feed\n"
     "with --after set to the last last_seq.\n"
     "Needs an admin token with the relying-party, security or read role.\n"},
    {"revoke-leaked", NULL, "FILE", B(DRY_RUN), 0, ctl_revoke_leaked,
     "revoke-leaked FILE [--dry-run]", "revoke the devices of access tokens found in a text",
     "  --dry-run  only report what would be done\n"
     "\n"
     "FILE (\"-\": standard input; at most 16 MiB) is any text: logs, chat\n"
     "exports, a paste. Every tether access token in it is checked against the\n"
     "keys the fleet publishes (/.well-known/jwks.json) and its issuer; expired\n"
     "tokens count (they still name their device). The device of each token of\n"
     "this fleet is revoked once, with the reason \"leaked token JTI found by\n"
     "revoke-leaked\". Prints one line per token (LINE, TOKEN: its first 12\n"
     "characters, JTI, DEVICE, RESULT), never a whole token; --json prints\n"
     "{\"tokens\": [...], \"devices_revoked\": N}.\n"
     "Needs an admin token with the security role (--dry-run: the read role).\n"},
    {"usage", NULL, NULL, B(DEVICE) | B(SINCE), 0, ctl_usage,
     "usage [--device ID] [--since T]", "usage and spend as AI gateways reported them",
     "  --device ID  that device's tokens, one line each (default: one line per device)\n"
     "  --since T    only usage seen since T: a duration back from now (1h, 2d) or\n"
     "               a UTC time YYYY-MM-DDTHH:MM:SSZ (default: all)\n"
     "\n"
     "Prints DEVICE, TOKENS, REQUESTS (passed the gateways' ceilings), REFUSED (by a\n"
     "ceiling), PROMPT and COMPLETION tokens, COST (in the gateways' price-table\n"
     "currency), LAST SEEN (UTC) and FLAGGED (yes: a gateway reported a token under\n"
     "another device than the fleet issued it to, or a token the fleet never\n"
     "issued; see 'tetherctl alerts'); with --device, JTI and FIRST SEEN instead of\n"
     "DEVICE and TOKENS. At most 1000 lines; with --json the fleet's\n"
     "{\"usage\": [...], \"truncated\": BOOL} (cost as cost_micros, millionths).\n"
     "Needs an admin token with the read role.\n"},
    {"policy", "create", "NAME", POLICY_OPTIONS, B(MODELS), ctl_policy_create,
     "policy create NAME --models GLOB,... [...]", "create a fleet policy (version 1)",
     POLICY_OPTIONS_HELP "NAME: 1-64 of a-z 0-9 . _ -, starting with a letter or digit.\n"
                         "Prints the new version as 'policy show' does; with --json the\n"
                         "fleet's answer.\n"
                         "Needs an admin token with the fleet role.\n"},
    {"policy", "update", "NAME", POLICY_OPTIONS | B(REPLACE_REFERENCE), 0, ctl_policy_update,
     "policy update NAME {--models GLOB,... | --from-eventlog FILE} [...]",
     "write a fleet policy's next version",
     POLICY_OPTIONS_HELP
     "  --replace-reference       the measured_boot section comes from the given\n"
     "                            --from-eventlog logs alone (none given: the\n"
     "                            version has no measured_boot section)\n"
     "\n"
     "The options make the new version's tokens, thresholds and sources (earlier\n"
     "versions stay readable); without --models those of the current version are\n"
     "kept. The current version's measured_boot section is kept, and each\n"
     "--from-eventlog log's digests are added to its allow lists (PK/KEK/db/dbx\n"
     "take the new log's values), so a fleet admits a new kernel before its\n"
     "devices boot it. Devices that follow NAME get the version at their next\n"
     "exchange.\n"
     "Needs an admin token with the fleet and read roles (the current version is\n"
     "read first; with --models and --replace-reference, the fleet role alone).\n"},
    {"policy", "show", "NAME", B(VERSION), 0, ctl_policy_show, "policy show NAME [--version N]",
     "show a fleet policy",
     "  --version N  that version (default: the current one)\n"
     "\n"
     "Prints the name, version, creation time (UTC) and document; with --json the\n"
     "fleet's {\"name\", \"version\", \"created_at\", \"policy\"}.\n"
     "Needs an admin token with the read role.\n"},
    {"policy", "list", NULL, 0, 0, ctl_policy_list, "policy list", "list the fleet's policies",
     "Prints NAME, VERSION (the current one), CREATED (UTC), MODELS and LIFETIME for\n"
     "every policy; with --json the fleet's {\"policies\": [...]}.\n"
     "Needs an admin token with the read role.\n"},
    {"device", "set-policy", "ID NAME", 0, 0, ctl_device_set_policy, "device set-policy ID NAME",
     "make a device follow a fleet policy",
     "The device's next token carries the current version of policy NAME.\n"
     "Needs an admin token with the fleet role.\n"},
};

#define VERB_COUNT (sizeof(verbs) / sizeof(verbs[0]))

static const char global_options[] =
    "options (before or after the command):\n"
    "  --fleet URL        the fleet: https://HOST[:PORT]        (env " CTL_ENV_FLEET ")\n"
    "  --ca FILE          PEM CA certificate(s) the fleet's certificate must\n"
    "                     chain to, e.g. the fleet's ca.pem      (env " CTL_ENV_CA ")\n"
    "  --token-file FILE  file holding one tthr_adm_ admin token; a file its\n"
    "                     group or others may access is refused (env\n"
    "                     " CTL_ENV_TOKEN_FILE ")\n"
    "  --json             print the fleet's JSON answer, unchanged, on stdout\n"
    "  --help, -h         help; 'tetherctl COMMAND --help' for one command\n"
    "  --version          the version\n"
    "A flag wins over its environment variable.\n";

static const char exit_codes[] =
    "exit status: 0 done; 1 the fleet refused or failed (its HTTP status and\n"
    "error are printed); 2 bad command line, settings or local file (nothing\n"
    "was sent); 3 the fleet could not be reached (connection, TLS).\n";

static void print_synopses(FILE *out, const char *group)
{
    for (size_t i = 0; i < VERB_COUNT; i++) {
        if (group != NULL && strcmp(verbs[i].group, group) != 0)
            continue;
        fprintf(out, "  %-42s %s\n", verbs[i].synopsis, verbs[i].summary);
    }
}

static int help_global(const ctl_io_t *io)
{
    fputs("usage: " CTL_PROGRAM " [OPTIONS] COMMAND [ARGS]\n"
          "\n"
          "Administers a tether fleet through tether-fleetd's admin API over HTTPS.\n"
          "\n"
          "commands:\n",
          io->out);
    print_synopses(io->out, NULL);
    fputs("\n", io->out);
    fputs(global_options, io->out);
    fputs("\n", io->out);
    fputs(exit_codes, io->out);
    return CTL_EXIT_OK;
}

static int help_group(const ctl_io_t *io, const char *group)
{
    fprintf(io->out, "usage: " CTL_PROGRAM " %s COMMAND [ARGS] [OPTIONS]\n\ncommands:\n", group);
    print_synopses(io->out, group);
    fprintf(io->out, "\n'" CTL_PROGRAM " %s COMMAND --help' describes a command; '" CTL_PROGRAM
                     " --help' the global options.\n",
            group);
    return CTL_EXIT_OK;
}

static int help_verb(const ctl_io_t *io, const ctl_verb_t *verb)
{
    /* The summary as a sentence: "List the fleet's devices." */
    fprintf(io->out, "usage: " CTL_PROGRAM " %s [--json]\n\n%c%s.\n\n%s\n%s\n%s",
            verb->synopsis, toupper((unsigned char)verb->summary[0]), verb->summary + 1,
            verb->details, global_options, exit_codes);
    return CTL_EXIT_OK;
}

static int usage_error(const ctl_io_t *io, const char *help, const char *fmt, ...)
    TETHER_PRINTF(3, 4);

/* One line: the problem, and where the help is. */
static int usage_error(const ctl_io_t *io, const char *help, const char *fmt, ...)
{
    char message[CTL_MESSAGE_SIZE];
    char clean[CTL_MESSAGE_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    ctl_text_shorten(message, 0, clean, sizeof(clean));
    fflush(io->out);
    fprintf(io->err, CTL_PROGRAM ": %s (see '" CTL_PROGRAM "%s%s --help')\n", clean,
            help[0] != '\0' ? " " : "", help);
    return CTL_EXIT_USAGE;
}

static bool group_known(const char *group)
{
    for (size_t i = 0; i < VERB_COUNT; i++) {
        if (strcmp(verbs[i].group, group) == 0)
            return true;
    }
    return false;
}

/* The verb named by the first words, and how many words that took. */
static const ctl_verb_t *find_verb(const ctl_args_t *args, size_t *words)
{
    for (size_t i = 0; i < VERB_COUNT; i++) {
        if (strcmp(verbs[i].group, args->words[0]) != 0)
            continue;
        if (verbs[i].name == NULL) {
            *words = 1;
            return &verbs[i];
        }
        if (args->word_count > 1 && strcmp(verbs[i].name, args->words[1]) == 0) {
            *words = 2;
            return &verbs[i];
        }
    }
    return NULL;
}

/* The verb's name as typed in its help: "device revoke", "alerts". */
static void verb_label(const ctl_verb_t *verb, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s", verb->group, verb->name != NULL ? " " : "",
             verb->name != NULL ? verb->name : "");
}

/* How many positional arguments the verb takes: the words of its arg. */
static size_t arg_count(const ctl_verb_t *verb)
{
    size_t n = 0;

    for (const char *p = verb->arg; p != NULL; p = strchr(p + 1, ' '))
        n++;
    return n;
}

static int check_verb_line(const ctl_io_t *io, const ctl_args_t *args, const ctl_verb_t *verb,
                           const char *label, size_t words)
{
    size_t expected = arg_count(verb);
    const char *version = args->value[CTL_OPT_VERSION];

    for (unsigned o = 0; o < CTL_OPT__COUNT; o++) {
        unsigned bit = CTL_OPT_BIT(o);
        if ((args->given & bit) && !((CTL_OPTS_GLOBAL | verb->allowed) & bit))
            return usage_error(io, label, "--%s does not apply to '%s'",
                               ctl_option_name((ctl_option_t)o), label);
        if ((verb->required & bit) && !(args->given & bit))
            return usage_error(io, label, "%s: --%s is required", label,
                               ctl_option_name((ctl_option_t)o));
    }
    if (version != NULL && version[0] != '\0' && !(verb->allowed & B(VERSION)))
        return usage_error(io, label, "--version takes no value with '%s'", label);
    if (args->word_count - words < expected)
        return usage_error(io, label, "%s: %s is missing", label, verb->arg);
    if (args->word_count - words > expected)
        return usage_error(io, label, "%s: unexpected argument \"%.60s\"", label,
                           args->words[words + expected]);
    return CTL_EXIT_OK;
}

static int run(const ctl_io_t *io, const ctl_args_t *args)
{
    char label[64];
    const ctl_verb_t *verb;
    ctl_context_t ctx;
    size_t words = 0;
    bool help = (args->given & CTL_OPT_BIT(CTL_OPT_HELP)) != 0;
    int code;

    if (args->value[CTL_OPT_VERSION] != NULL && args->value[CTL_OPT_VERSION][0] == '\0') {
        fputs(CTL_PROGRAM " " TETHERCTL_VERSION "\n", io->out);
        return CTL_EXIT_OK;
    }
    if (args->word_count == 0) {
        if (help)
            return help_global(io);
        return usage_error(io, "", "a command is required");
    }
    if (!group_known(args->words[0]))
        return usage_error(io, "", "unknown command \"%.40s\"", args->words[0]);
    verb = find_verb(args, &words);
    if (verb == NULL) {
        if (help && args->word_count == 1)
            return help_group(io, args->words[0]);
        if (args->word_count == 1)
            return usage_error(io, args->words[0], "'%s' needs a command", args->words[0]);
        return usage_error(io, args->words[0], "unknown command \"%s %.40s\"", args->words[0],
                           args->words[1]);
    }
    verb_label(verb, label, sizeof(label));
    if (help)
        return help_verb(io, verb);
    if ((code = check_verb_line(io, args, verb, label, words)) != CTL_EXIT_OK)
        return code;

    ctl_context_init(&ctx, io, args, label);
    if (arg_count(verb) == 2)
        ctx.second_arg = args->words[words + 1];
    code = verb->run(&ctx, verb->arg != NULL ? args->words[words] : NULL);
    ctl_context_free(&ctx);
    return code;
}

int ctl_run(int argc, char *const *argv, const ctl_io_t *io)
{
    char message[CTL_MESSAGE_SIZE];
    ctl_args_t args;

    if (ctl_args_parse(argc, argv, &args, message, sizeof(message)) != TETHER_OK)
        return usage_error(io, "", "%s", message);
    return ctl_finish_output(io, run(io, &args));
}
