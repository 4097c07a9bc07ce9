/*
 * tether-fleetd: the fleet service.
 *   tether-fleetd init --dir DIR [--listen ADDR:PORT] [--ek-ca FILE]...
 *   tether-fleetd run --dir DIR
 *   tether-fleetd check --dir DIR
 *   tether-fleetd admin-token --dir DIR --roles ROLES [--name NAME]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "fleet.h"
#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/process.h"
#include "validate.h"

#define PROGRAM "tether-fleetd"
#define EXIT_USAGE 2

static const char usage_main[] =
    "usage: " PROGRAM " COMMAND [OPTIONS]\n"
    "\n"
    "The tether fleet service: enrols devices, issues attested access tokens,\n"
    "revokes them.\n"
    "\n"
    "commands:\n"
    "  init          create a new fleet directory (keys, certificates, database)\n"
    "  run           serve a fleet directory over HTTPS\n"
    "  check         check a fleet directory's configuration and the files it names\n"
    "  admin-token   mint an admin token on the fleet's host (recovery)\n"
    "\n"
    "'" PROGRAM " COMMAND --help' describes a command.\n";

static const char usage_init[] =
    "usage: " PROGRAM " init --dir DIR [--listen ADDR:PORT] [--ek-ca FILE]...\n"
    "                    [--store postgresql://...]\n"
    "\n"
    "Creates a fleet in DIR (new, or an empty directory; an existing fleet is\n"
    "never overwritten): the database, the token issuer key, a TLS CA\n"
    "(DIR/ca.pem, which devices and tetherctl pin) and a server certificate for\n"
    "the listen address, and the configuration DIR/" TETHER_CONFIG_FILE ".\n"
    "Prints the first admin token (roles read, fleet, security) as the only\n"
    "line on standard output: it is shown once and stored only as a hash.\n"
    "\n"
    "  --dir DIR            the fleet directory to create\n"
    "  --listen ADDR:PORT   IPv4:PORT or [IPv6]:PORT to serve on (default\n"
    "                       127.0.0.1:8443); the server certificate names it\n"
    "  --ek-ca FILE         a TPM manufacturer CA certificate (PEM or DER) that\n"
    "                       EK certificates must chain to; repeatable\n"
    "  --store URL          keep the fleet's state in this PostgreSQL database\n"
    "                       (postgresql://USER@HOST:PORT/DB; an empty one), which\n"
    "                       several replicas may serve; default: SQLite in\n"
    "                       DIR/fleet.db. Keep the password in ~/.pgpass or\n"
    "                       PGPASSFILE rather than in the URL\n"
    "  --help               this text\n";

static const char usage_run[] =
    "usage: " PROGRAM " run --dir DIR\n"
    "\n"
    "Serves the fleet in DIR over HTTPS until SIGTERM or SIGINT. Logs one JSON\n"
    "object per line on standard error. All state is in DIR/fleet.db, or in\n"
    "the PostgreSQL database that DIR/" TETHER_CONFIG_FILE "'s store line names.\n"
    "\n"
    "  --dir DIR   the fleet directory (made by '" PROGRAM " init')\n"
    "  --help      this text\n";

static const char usage_check[] =
    "usage: " PROGRAM " check --dir DIR\n"
    "\n"
    "Checks DIR/" TETHER_CONFIG_FILE " and every file it names as 'run' would,\n"
    "without serving or opening the database: the TLS certificate and key,\n"
    "the EK CAs, each webhook's secret (owner, mode, size) and CA. Prints\n"
    "'DIR/" TETHER_CONFIG_FILE ": ok', or the problems on standard error and\n"
    "exits 1.\n"
    "\n"
    "  --dir DIR   the fleet directory\n"
    "  --help      this text\n";

static const char usage_admin_token[] =
    "usage: " PROGRAM " admin-token --dir DIR --roles ROLES [--name NAME]\n"
    "\n"
    "Mints a new admin token straight into the fleet's database, without the\n"
    "admin API: the recovery when the tokens with the security or fleet role\n"
    "are lost (or leaked: mint one, then revoke them with it). Prints the\n"
    "token as the only line on standard output: it is shown once and stored\n"
    "only as a hash. Works while '" PROGRAM " run' serves the same directory.\n"
    "\n"
    "Every use is recorded: an alert of kind admin_token_minted (with the\n"
    "token's id, name, roles and the uid that ran it), which 'tetherctl\n"
    "alerts' lists, and a log line on standard error.\n"
    "\n"
    "Run it as the user that owns DIR (the service's user, e.g. 'runuser -u\n"
    "tether-fleetd -- " PROGRAM " admin-token ...'): a directory owned by\n"
    "another user, open to group or others, or a database that group or\n"
    "others may write is refused.\n"
    "\n"
    "  --dir DIR       the fleet directory (made by '" PROGRAM " init')\n"
    "  --roles ROLES   comma-separated: read, fleet, security, relying-party\n"
    "  --name NAME     the token's name (default \"recovery\"); 1-64 of\n"
    "                  A-Z a-z 0-9 . _ : @ + - and inner spaces\n"
    "  --help          this text\n";

static int usage_error(const char *usage, const char *message)
{
    fprintf(stderr, PROGRAM ": %s\n\n%s", message, usage);
    return EXIT_USAGE;
}

/* A new admin token as the only line on stdout (init, admin-token); the
 * token is wiped. */
static int print_token(char token[TETHER_SECRET_TOKEN_SIZE])
{
    printf("%s\n", token);
    tether_wipe(token, TETHER_SECRET_TOKEN_SIZE);
    return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int command_init(int argc, char **argv)
{
    static const struct option options[] = {
        {"dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"ek-ca", required_argument, NULL, 'e'},
        {"store", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *ek_ca[TETHER_CONFIG_MAX_EK_CA];
    tether_fleet_init_options_t opts;
    char token[TETHER_SECRET_TOKEN_SIZE];
    tether_status_t rc;
    int c;

    memset(&opts, 0, sizeof(opts));
    opts.ek_ca_files = ek_ca;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            opts.dir = optarg;
            break;
        case 'l':
            opts.listen = optarg;
            break;
        case 'e':
            if (opts.ek_ca_count >= TETHER_CONFIG_MAX_EK_CA)
                return usage_error(usage_init, "too many --ek-ca files");
            ek_ca[opts.ek_ca_count++] = optarg;
            break;
        case 's':
            opts.store = optarg;
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
    if (opts.dir == NULL)
        return usage_error(usage_init, "--dir is required");
    tether_log_setup(PROGRAM, TETHER_LOG_TEXT, TETHER_LOG_WARN);
    rc = tether_fleet_init(&opts, token);
    if (rc != TETHER_OK) {
        fprintf(stderr, PROGRAM ": init failed: %s; nothing was created\n", tether_strerror(rc));
        return EXIT_FAILURE;
    }
    return print_token(token);
}

static int command_admin_token(int argc, char **argv)
{
    static const struct option options[] = {
        {"dir", required_argument, NULL, 'd'},
        {"roles", required_argument, NULL, 'r'},
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *role_list = NULL, *name = "recovery";
    char token[TETHER_SECRET_TOKEN_SIZE];
    unsigned roles = 0;
    int64_t id = 0;
    tether_status_t rc;
    int c;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'r':
            role_list = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            fputs(usage_admin_token, stdout);
            return EXIT_SUCCESS;
        default:
            return usage_error(usage_admin_token, "unknown option");
        }
    }
    if (optind < argc)
        return usage_error(usage_admin_token, "unexpected argument");
    if (dir == NULL || role_list == NULL)
        return usage_error(usage_admin_token, "--dir and --roles are required");
    if (tether_roles_parse(role_list, &roles) != TETHER_OK)
        return usage_error(usage_admin_token,
                           "--roles: comma-separated read, fleet, security, relying-party");
    if (!tether_fleet_name_valid(name, strlen(name)))
        return usage_error(usage_admin_token,
                           "--name: 1-64 of A-Z a-z 0-9 . _ : @ + - and inner spaces");
    tether_log_setup(PROGRAM, TETHER_LOG_TEXT, TETHER_LOG_WARN);
    rc = tether_fleet_admin_token_mint(dir, roles, name, token, &id);
    if (rc != TETHER_OK) {
        fprintf(stderr, PROGRAM ": admin-token failed: %s; no token was made\n",
                tether_strerror(rc));
        return EXIT_FAILURE;
    }
    return print_token(token);
}

/* The --dir (and --help) of run and check: the directory, or NULL with
 * *exit_code set (usage printed). */
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
        *exit_code =
            usage_error(usage, optind < argc ? "unexpected argument" : "--dir is required");
        return NULL;
    }
    return dir;
}

static int command_check(int argc, char **argv)
{
    static tether_fleet_service_t service;
    const char *dir;
    int code = EXIT_FAILURE;

    if ((dir = dir_option(argc, argv, usage_check, &code)) == NULL)
        return code;
    tether_log_setup(PROGRAM, TETHER_LOG_TEXT, TETHER_LOG_WARN);
    tether_fleet_service_init(&service);
    if (tether_fleet_service_check(&service, dir) == TETHER_OK) {
        printf("%s/%s: ok\n", dir, TETHER_CONFIG_FILE);
        code = EXIT_SUCCESS;
    }
    tether_fleet_service_free(&service);
    return code;
}

/* Waits in the main thread for SIGTERM or SIGINT, which every thread blocks
 * (so the server's threads never take them). */
static int command_run(int argc, char **argv)
{
    static tether_fleet_service_t service;
    const char *dir;
    sigset_t stop;
    tether_status_t rc;
    int code = EXIT_FAILURE, sig;

    if ((dir = dir_option(argc, argv, usage_run, &code)) == NULL)
        return code;
    tether_log_setup(PROGRAM, TETHER_LOG_JSON, TETHER_LOG_INFO);
    tether_process_block_stop_signals(&stop);
    tether_fleet_service_init(&service);
    if ((rc = tether_fleet_service_open(&service, dir)) != TETHER_OK) {
        tether_error("run", "cannot start: %s", tether_strerror(rc));
        tether_fleet_service_free(&service);
        return EXIT_FAILURE;
    }
    tether_info("run", "serving fleet %s on https://%s%s%s:%u", dir,
                service.config.listen_ipv6 ? "[" : "", service.config.listen_host,
                service.config.listen_ipv6 ? "]" : "", (unsigned)service.config.listen_port);
    sig = tether_process_wait_stop(&stop);
    tether_info("run", "stopping on %s", tether_process_signal_name(sig));
    tether_fleet_service_free(&service);
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
    if (strcmp(argv[1], "admin-token") == 0)
        return command_admin_token(argc - 1, argv + 1);
    return usage_error(usage_main, "unknown command");
}
