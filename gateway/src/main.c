/*
 * tether-gate: the relying party in front of AI endpoints.
 *   tether-gate init --dir DIR --listen ADDR:PORT --fleet URL --fleet-ca FILE
 *                    --rp-token-file FILE --upstream URL [...]
 *   tether-gate run --dir DIR
 *   tether-gate check --dir DIR
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gate_config.h"
#include "gate_files.h"
#include "gate_service.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"
#include "tether/process.h"

#define PROGRAM "tether-gate"
#define EXIT_USAGE 2

static const char usage_main[] =
    "usage: " PROGRAM " COMMAND [OPTIONS]\n"
    "\n"
    "The tether gateway: lets a device's requests pass to an AI endpoint only\n"
    "with a valid tether access token and a DPoP proof of the device's key.\n"
    "\n"
    "commands:\n"
    "  init    write a new gateway directory's configuration\n"
    "  run     serve a gateway directory\n"
    "  check   validate a gateway directory's configuration and files\n"
    "\n"
    "'" PROGRAM " COMMAND --help' describes a command.\n";

static const char usage_init[] =
    "usage: " PROGRAM " init --dir DIR --listen ADDR:PORT --fleet URL [OPTIONS]\n"
    "\n"
    "Writes DIR/" TETHER_GATE_CONFIG_FILE " (DIR is created if needed; an existing\n"
    "configuration is never overwritten), documented, with safe defaults. The\n"
    "flags set the default policy; edit the file for other policies.\n"
    "\n"
    "--dir, --listen, --fleet, --fleet-ca, --rp-token-file and --upstream are\n"
    "required.\n"
    "\n"
    "  --dir DIR                 the gateway directory\n"
    "  --listen ADDR:PORT        IPv4:PORT or [IPv6]:PORT (plain HTTP only on\n"
    "                            loopback; set tls_cert and tls_key otherwise)\n"
    "  --fleet URL               tether-fleetd's base URL (the tokens' issuer)\n"
    "  --fleet-ca FILE           the fleet's CA certificate (PEM), pinned\n"
    "  --rp-token-file FILE      a fleetd admin token with the relying-party\n"
    "                            role (mode 0600 or 0400, owned by this user)\n"
    "  --upstream URL            the AI endpoint\n"
    "  --upstream-key-file FILE  its API key (same mode rule)\n"
    "  --audience AUD            the aud tokens must carry (default tether-gate)\n"
    "  --models GLOB,...         models of the default policy (default *)\n"
    "  --requests-per-minute N   per device (default 0: no ceiling)\n"
    "  --spend-per-day AMOUNT    per device (default 0: no ceiling)\n"
    "  --price MODEL=PROMPT_PER_1K:COMPLETION_PER_1K\n"
    "                            a price (repeatable)\n"
    "  --help                    this text\n";

static const char usage_run[] =
    "usage: " PROGRAM " run --dir DIR\n"
    "\n"
    "Serves the gateway in DIR until SIGTERM or SIGINT. Logs one JSON object\n"
    "per line on standard error, never a token, proof or key.\n"
    "\n"
    "  --dir DIR   the gateway directory (made by '" PROGRAM " init')\n"
    "  --help      this text\n";

static const char usage_check[] =
    "usage: " PROGRAM " check --dir DIR\n"
    "\n"
    "Validates DIR/" TETHER_GATE_CONFIG_FILE " and the files it names (the secret\n"
    "files' owner and mode, the fleet CA, TLS certificate and key). Prints\n"
    "FILE:LINE: message and exits 1 on the first problem, exits 0 when all is\n"
    "well.\n"
    "\n"
    "  --dir DIR   the gateway directory\n"
    "  --help      this text\n";

static int usage_error(const char *usage, const char *message)
{
    fprintf(stderr, PROGRAM ": %s\n\n%s", message, usage);
    return EXIT_USAGE;
}

/* Copies an absolute form of path (made against the working directory) into
 * out: the file is named from the gateway directory later. */
static bool absolute_path(const char *path, char *out, size_t out_size)
{
    char resolved[PATH_MAX];
    int n;

    if (realpath(path, resolved) == NULL)
        return false;
    n = snprintf(out, out_size, "%s", resolved);
    return n > 0 && (size_t)n < out_size;
}

typedef struct init_args {
    const char *dir, *listen, *fleet, *fleet_ca, *rp_token_file, *upstream, *upstream_key_file;
    const char *audience, *models, *requests_per_minute, *spend_per_day;
} init_args_t;

/* Applies the flags to config and its default policy; a message on error. */
static const char *init_config(const init_args_t *a, tether_gate_config_t *config,
                               tether_gate_config_policy_t *policy)
{
    char secret[TETHER_GATE_SECRET_MAX + 1], why[300];
    static char message[360];
    const char *files[][2] = {{a->fleet_ca, config->fleet_ca},
                              {a->rp_token_file, config->rp_token_file},
                              {a->upstream_key_file, config->upstream_key_file}};
    size_t sizes[] = {sizeof(config->fleet_ca), sizeof(config->rp_token_file),
                      sizeof(config->upstream_key_file)};
    uint32_t rpm = 0;

    if (tether_gate_config_set_listen(config, a->listen) != TETHER_OK)
        return "--listen must be IPv4:PORT or [IPv6]:PORT";
    tether_gate_config_default_public_url(config);
    if (!tether_gate_config_url_valid(a->fleet) || strncmp(a->fleet, "https://", 8) != 0)
        return "--fleet must be an https:// URL without query, fragment or final '/'";
    if (!tether_gate_config_url_valid(a->upstream))
        return "--upstream must be an http:// or https:// URL without query or final '/'";
    snprintf(config->fleet, sizeof(config->fleet), "%s", a->fleet);
    snprintf(config->upstream, sizeof(config->upstream), "%s", a->upstream);
    for (size_t i = 0; i < 3; i++) {
        if (files[i][0] == NULL)
            continue;
        if (!absolute_path(files[i][0], (char *)files[i][1], sizes[i])) {
            snprintf(message, sizeof(message), "%s: %s", files[i][0], strerror(errno));
            return message;
        }
    }
    /* The secret files must pass the checks run will make. */
    for (size_t i = 1; i < 3; i++) {
        if (files[i][0] == NULL)
            continue;
        if (tether_gate_secret_file_read(files[i][1], secret, sizeof(secret), why, sizeof(why)) !=
            TETHER_OK) {
            snprintf(message, sizeof(message), "%s", why);
            return message;
        }
        tether_wipe(secret, sizeof(secret));
    }
    if (a->audience != NULL) {
        if (strlen(a->audience) >= sizeof(config->audience))
            return "--audience is too long";
        snprintf(config->audience, sizeof(config->audience), "%s", a->audience);
    }
    if (a->models != NULL) {
        if (!tether_gate_config_models_valid(a->models))
            return "--models must be comma-separated names or globs of [A-Za-z0-9._:/-*]";
        snprintf(policy->models, sizeof(policy->models), "%s", a->models);
    }
    if (a->requests_per_minute != NULL) {
        char *end = NULL;
        unsigned long v = strtoul(a->requests_per_minute, &end, 10);
        if (a->requests_per_minute[0] < '0' || a->requests_per_minute[0] > '9' || *end != '\0' ||
            v > 1000000)
            return "--requests-per-minute must be a whole number up to 1000000";
        rpm = (uint32_t)v;
    }
    policy->requests_per_minute = rpm;
    if (a->spend_per_day != NULL &&
        tether_gate_config_parse_amount(a->spend_per_day, &policy->spend_per_day_micros) !=
            TETHER_OK)
        return "--spend-per-day must be a non-negative amount such as 25 or 12.50";
    return NULL;
}

static int command_init(int argc, char **argv)
{
    static const struct option options[] = {
        {"dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"fleet", required_argument, NULL, 'f'},
        {"fleet-ca", required_argument, NULL, 'c'},
        {"rp-token-file", required_argument, NULL, 'r'},
        {"upstream", required_argument, NULL, 'u'},
        {"upstream-key-file", required_argument, NULL, 'k'},
        {"audience", required_argument, NULL, 'a'},
        {"models", required_argument, NULL, 'm'},
        {"requests-per-minute", required_argument, NULL, 'q'},
        {"spend-per-day", required_argument, NULL, 's'},
        {"price", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static tether_gate_config_t config;
    tether_gate_config_error_t parse_error;
    char path[TETHER_GATE_DIR_MAX + 32], why[160];
    init_args_t a;
    const char *message;
    char *text = NULL;
    tether_status_t rc;
    int c;

    memset(&a, 0, sizeof(a));
    tether_gate_config_init(&config);
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'd': a.dir = optarg; break;
        case 'l': a.listen = optarg; break;
        case 'f': a.fleet = optarg; break;
        case 'c': a.fleet_ca = optarg; break;
        case 'r': a.rp_token_file = optarg; break;
        case 'u': a.upstream = optarg; break;
        case 'k': a.upstream_key_file = optarg; break;
        case 'a': a.audience = optarg; break;
        case 'm': a.models = optarg; break;
        case 'q': a.requests_per_minute = optarg; break;
        case 's': a.spend_per_day = optarg; break;
        case 'p':
            if (tether_gate_config_add_price(&config, optarg, why, sizeof(why)) != TETHER_OK)
                return usage_error(usage_init, why);
            break;
        case 'h':
            fputs(usage_init, stdout);
            return EXIT_SUCCESS;
        default:
            return usage_error(usage_init, "unknown option");
        }
    }
    if (optind < argc)
        return usage_error(usage_init, "unexpected argument");
    if (a.dir == NULL || a.listen == NULL || a.fleet == NULL || a.fleet_ca == NULL ||
        a.rp_token_file == NULL || a.upstream == NULL)
        return usage_error(usage_init, "--dir, --listen, --fleet, --fleet-ca, --rp-token-file "
                                       "and --upstream are required");
    if (strlen(a.dir) >= TETHER_GATE_DIR_MAX)
        return usage_error(usage_init, "--dir is too long");
    config.policy_count = 1;
    tether_gate_config_policy_init(&config.policies[0], TETHER_GATE_DEFAULT_POLICY);
    if ((message = init_config(&a, &config, &config.policies[0])) != NULL)
        return usage_error(usage_init, message);
    /* What init writes, check accepts: parse it back before writing. */
    if ((rc = tether_gate_config_format(&config, &text)) != TETHER_OK) {
        fprintf(stderr, PROGRAM ": init failed: %s\n", tether_strerror(rc));
        return EXIT_FAILURE;
    }
    {
        static tether_gate_config_t reread;
        tether_gate_config_init(&reread);
        rc = tether_gate_config_parse(text, strlen(text), &reread, &parse_error);
    }
    if (rc != TETHER_OK) {
        fprintf(stderr, PROGRAM ": init: %s: %s\n", a.dir, parse_error.message);
        free(text);
        return EXIT_FAILURE;
    }
    snprintf(path, sizeof(path), "%s/%s", a.dir, TETHER_GATE_CONFIG_FILE);
    if ((rc = tether_dir_ensure_private(a.dir)) != TETHER_OK ||
        (rc = tether_gate_file_create_new(path, text, strlen(text))) != TETHER_OK) {
        fprintf(stderr, PROGRAM ": init: cannot write %s: %s\n", path,
                rc == TETHER_ERR_CONFLICT ? "it exists, and an existing configuration is never "
                                            "replaced"
                                          : tether_strerror(rc));
        free(text);
        return EXIT_FAILURE;
    }
    free(text);
    printf("%s\n", path);
    return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* --dir DIR [--help] for run and check; NULL with *exit_code set when the
 * command should end now. */
static const char *dir_option(int argc, char **argv, const char *usage, int *exit_code)
{
    static const struct option options[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            *exit_code = EXIT_SUCCESS;
            return NULL;
        default:
            *exit_code = usage_error(usage, "unknown option");
            return NULL;
        }
    }
    if (optind < argc || dir == NULL) {
        *exit_code = usage_error(usage, optind < argc ? "unexpected argument" : "--dir is required");
        return NULL;
    }
    return dir;
}

static int command_check(int argc, char **argv)
{
    static tether_gate_service_t service;
    tether_gate_load_error_t error;
    const char *dir;
    int code = EXIT_FAILURE;

    if ((dir = dir_option(argc, argv, usage_check, &code)) == NULL)
        return code;
    tether_log_setup(PROGRAM, TETHER_LOG_TEXT, TETHER_LOG_WARN);
    tether_gate_service_init(&service);
    if (tether_gate_service_load(&service, dir, &error) != TETHER_OK) {
        fprintf(stderr, "%s\n", error.message);
        code = EXIT_FAILURE;
    } else {
        printf("%s/%s: ok\n", dir, TETHER_GATE_CONFIG_FILE);
        code = EXIT_SUCCESS;
    }
    tether_gate_service_free(&service);
    return code;
}

/* Waits in the main thread for SIGTERM or SIGINT, which every thread blocks. */
static int command_run(int argc, char **argv)
{
    static tether_gate_service_t service;
    tether_gate_load_error_t error;
    const char *dir;
    sigset_t stop;
    tether_status_t rc;
    int code = EXIT_FAILURE, sig;

    if ((dir = dir_option(argc, argv, usage_run, &code)) == NULL)
        return code;
    tether_log_setup(PROGRAM, TETHER_LOG_JSON, TETHER_LOG_INFO);
    tether_process_block_stop_signals(&stop);
    tether_gate_service_init(&service);
    if (tether_gate_service_load(&service, dir, &error) != TETHER_OK) {
        tether_error("run", "cannot start: %s", error.message);
        tether_gate_service_free(&service);
        return EXIT_FAILURE;
    }
    if ((rc = tether_gate_service_start(&service)) != TETHER_OK) {
        tether_error("run", "cannot start: %s", tether_strerror(rc));
        tether_gate_service_free(&service);
        return EXIT_FAILURE;
    }
    tether_info("run", "serving %s on %s", dir, service.config.public_url);
    sig = tether_process_wait_stop(&stop);
    tether_info("run", "stopping on %s", tether_process_signal_name(sig));
    tether_gate_service_free(&service);
    tether_info("run", "stopped");
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    umask(077);
    /* Core dumps and ptrace would expose the keys and tokens it holds. */
    if (tether_process_protect() != TETHER_OK)
        fprintf(stderr, PROGRAM ": warning: cannot turn off core dumps and ptrace\n");
    if (argc < 2)
        return usage_error(usage_main, "a command is required");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_main, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(argv[1], "init") == 0)
        return command_init(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return command_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0)
        return command_check(argc - 1, argv + 1);
    return usage_error(usage_main, "unknown command");
}
