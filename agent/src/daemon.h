#ifndef TETHER_AGENT_DAEMON_H
#define TETHER_AGENT_DAEMON_H

/* `tether-agent run`: returns a process exit code. */
int tether_agent_run_main(int argc, char **argv);

/* `tether-agent token`: prints the current token from a running agent. */
int tether_agent_token_main(int argc, char **argv);

#endif
