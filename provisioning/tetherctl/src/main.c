/*
 * tetherctl: the command line client of tether-fleetd's admin API, for
 * fleet scripts and security teams. See provisioning/tetherctl/README.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tether/process.h"
#include "tetherctl.h"

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    const ctl_io_t io = {env_lookup, stdout, stderr};

    /* tetherctl holds an admin token: no core dump or ptrace shows it. */
    if (tether_process_protect() != TETHER_OK)
        fputs("tetherctl: warning: cannot turn off core dumps and ptrace\n", stderr);
    /* A closed output pipe is an error to report, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    tether_log_setup(CTL_PROGRAM, TETHER_LOG_TEXT, TETHER_LOG_WARN);
    return ctl_run(argc, argv, &io);
}
