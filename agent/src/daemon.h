#ifndef TETHER_AGENT_DAEMON_H
#define TETHER_AGENT_DAEMON_H

/* `tether-agent run`: returns a process exit code. */
int tether_agent_run_main(int argc, char **argv);

#endif
