/*
 * What every tether program does to its own process: keep the secrets it
 * holds (tokens, keys) out of core dumps and away from ptrace, and, for the
 * servers, stop on SIGTERM or SIGINT by waiting for them in one place
 * instead of in signal handlers. Plain POSIX and Linux prctl; no sockets,
 * no TPM.
 */
#ifndef TETHER_PROCESS_H
#define TETHER_PROCESS_H

#include <signal.h>

#include "tether/error.h"

/* PR_SET_DUMPABLE 0 (no core dump, no ptrace attach by other processes of
 * the same user) and RLIMIT_CORE 0. Call first thing in main().
 * TETHER_ERR_IO when either is refused. */
TETHER_MUST_CHECK tether_status_t tether_process_protect(void);

/* Blocks SIGTERM and SIGINT in the calling thread (and so in every thread
 * it starts afterwards) and ignores SIGPIPE, so that a closed connection is
 * an error to handle, not a death. Sets *stop to the blocked pair, for
 * tether_process_wait_stop. Call before any thread starts. */
void tether_process_block_stop_signals(sigset_t *stop);

/* Waits for one of the signals in *stop and returns it. */
int tether_process_wait_stop(const sigset_t *stop);

/* "SIGTERM", "SIGINT" or "a signal", for the log line that says why a
 * server stops. */
const char *tether_process_signal_name(int sig);

#endif
