#ifndef TETHER_AGENT_EVENTLOG_CMD_H
#define TETHER_AGENT_EVENTLOG_CMD_H

/* `tether-agent eventlog FILE [--json]`: prints a TCG PC Client firmware
 * event log's events and the PCR values it replays to; returns a process
 * exit code. */
int tether_agent_eventlog_main(int argc, char **argv);

#endif
