#ifndef TETHER_AGENT_TOKEN_CMD_H
#define TETHER_AGENT_TOKEN_CMD_H

/* `tether-agent token`: prints the current token (or, with --status, the
 * status) of a running agent; returns a process exit code. */
int tether_agent_token_main(int argc, char **argv);

/* `tether-agent dpop`: prints a DPoP proof the running agent signed with
 * the TPM device key for one request (or, with --json, the agent's whole
 * answer, with the token the proof is bound to); returns an exit code. */
int tether_agent_dpop_main(int argc, char **argv);

#endif
