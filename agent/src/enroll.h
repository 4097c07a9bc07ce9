#ifndef TETHER_AGENT_ENROLL_H
#define TETHER_AGENT_ENROLL_H

/* `tether-agent enroll`: returns a process exit code. */
int tether_agent_enroll_main(int argc, char **argv);

#endif
