/*
 * tether-agent: the device side of tether. Subcommands dispatch to their own
 * files; each parses its own options and has its own --help.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "enroll.h"
#include "eventlog_cmd.h"
#include "measure_cmd.h"
#include "selftest.h"
#include "token_cmd.h"
#include "tether/log.h"

static void usage(FILE *out)
{
    fputs("Usage: tether-agent COMMAND [OPTIONS]\n"
          "\n"
          "Commands:\n"
          "  enroll     enrol this device with its fleet (once)\n"
          "  run        keep a fresh access token and serve it on a Unix socket\n"
          "  token      print the token held by a running agent\n"
          "  dpop       print a DPoP proof signed by this device's TPM for one request\n"
          "  selftest   report the TPM's identity and run a quote round trip\n"
          "  eventlog   print a firmware or tether event log's events and the PCRs it\n"
          "             replays to; --check compares tether's log with the TPM\n"
          "  measure    measure tether's own files into PCR 13 and its log (once a boot)\n"
          "\n"
          "Run 'tether-agent COMMAND --help' for a command's options.\n",
          out);
}

int main(int argc, char **argv)
{
    tether_log_setup("tether-agent", TETHER_LOG_TEXT, TETHER_LOG_INFO);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "enroll") == 0)
        return tether_agent_enroll_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return tether_agent_run_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0)
        return tether_agent_token_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "dpop") == 0)
        return tether_agent_dpop_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "selftest") == 0)
        return tether_agent_selftest_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "eventlog") == 0)
        return tether_agent_eventlog_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "measure") == 0)
        return tether_agent_measure_main(argc - 1, argv + 1);
    fprintf(stderr, "tether-agent: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
