#ifndef TETHER_AGENT_SELFTEST_H
#define TETHER_AGENT_SELFTEST_H

/* `tether-agent selftest`: reports what TPM is reachable and runs a quote
 * round trip. Returns a process exit code. */
int tether_agent_selftest_main(int argc, char **argv);

#endif
