#ifndef TETHER_AGENT_TOKEN_CMD_H
#define TETHER_AGENT_TOKEN_CMD_H

/* `tether-agent token`: prints the current token (or, with --status, the
 * status) of a running agent; returns a process exit code. */
int tether_agent_token_main(int argc, char **argv);

#endif
