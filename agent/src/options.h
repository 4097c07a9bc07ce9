/*
 * Command-line pieces shared by the agent's commands. --tcti is taken by
 * every command that reaches the TPM (run, enroll, selftest): one option
 * entry, one way to open the TPM with it, one form of its error.
 */
#ifndef TETHER_AGENT_OPTIONS_H
#define TETHER_AGENT_OPTIONS_H

#include <getopt.h>
#include <stddef.h>

#include "tether/error.h"
#include "tether/tpm.h"

/* getopt_long's value for --tcti, and its entry in a long-option table. */
#define TETHER_AGENT_TCTI_OPTION 't'
#define TETHER_AGENT_TCTI_LONG_OPTION {"tcti", required_argument, NULL, TETHER_AGENT_TCTI_OPTION}

/*
 * Opens the TPM through tpm2-tss's TCTI loader with the --tcti value (NULL:
 * the TSS default). tpm must have been initialised. On failure why holds
 * "<status>: <TSS details>" for the caller's message; tpm stays closable.
 */
TETHER_MUST_CHECK tether_status_t tether_agent_tpm_open(tether_tpm_t *tpm, const char *tcti,
                                                        char *why, size_t why_size);

#endif
