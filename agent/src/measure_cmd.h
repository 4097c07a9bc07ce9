#ifndef TETHER_AGENT_MEASURE_CMD_H
#define TETHER_AGENT_MEASURE_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "tether/cel.h"
#include "tether/tpm.h"

/* Most files one config names, and the largest file measured (read whole:
 * lib hashes in one call). An agent binary is a few MiB; the AI application
 * a launcher or a script more often than a whole runtime. */
#define TETHER_MEASURE_MAX_FILES 16u
#define TETHER_MEASURE_FILE_MAX (64u * 1024u * 1024u)

/* The default log: beside the agent's state, so the next boot's run finds
 * it (and starts it over, the PCR having been reset). */
#define TETHER_MEASURE_DEFAULT_LOG "/var/lib/tether/measurements.cel"

/* `tether-agent measure`: digests the files a config names for every PCR
 * bank the TPM has allocated, writes each to tether's CEL log (synced)
 * and then extends TETHER_CEL_PCR with it; resolves a run that stopped
 * half-way. Returns a process exit code. */
int tether_agent_measure_main(int argc, char **argv);

/* Reads TETHER_CEL_PCR of the TPM in the given banks into *pcrs (zeroed
 * first; bank b of pcrs is algorithms[b]), as tether_cel_assess takes it.
 * TETHER_ERR_INVALID_ARGUMENT for a bank lib does not hash. */
TETHER_MUST_CHECK tether_status_t tether_agent_read_cel_pcr(tether_tpm_t *tpm,
                                                            const uint16_t *algorithms,
                                                            size_t bank_count,
                                                            tether_eventlog_pcrs_t *pcrs);

/* One sentence for people on where a log stands (tether_cel_assess):
 * what happened and what the operator or the next run does about it. */
void tether_agent_describe_standing(char *out, size_t out_size, const tether_cel_t *log,
                                    tether_cel_standing_t standing);

#endif
