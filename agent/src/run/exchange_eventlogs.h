/*
 * Measured boot in the exchange, the agent's side (firmware/include/tether/
 * eventlog_wire.h): what the fleet's challenge says it holds, and the token
 * form's parameters with the device's two event logs, each log's bytes only
 * when the fleet does not hold that log already.
 */
#ifndef TETHER_AGENT_EXCHANGE_EVENTLOGS_H
#define TETHER_AGENT_EXCHANGE_EVENTLOGS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "tether/error.h"
#include "tether/eventlog_wire.h"

/* The platform's log where Linux shows it (securityfs). */
#define TETHER_AGENT_DEFAULT_PLATFORM_EVENTLOG "/sys/kernel/security/tpm0/binary_bios_measurements"

/* The challenge's "measured_boot" member. */
typedef struct tether_agent_measured_boot {
    bool asked; /* the device's policy has measured boot */
    /* The SHA-256 (lowercase hex) of each log the fleet holds for this
     * device, "" for none. */
    char platform_held[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1];
    char tether_held[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1];
} tether_agent_measured_boot_t;

/* Reads the challenge's optional "measured_boot" member of challenge (a
 * parsed JSON object) into *mb (zeroed first): absent, asked false;
 * present, exactly the two hash members, each "" or 64 lowercase hex
 * digits. TETHER_ERR_PARSE for anything else. Pure. */
TETHER_MUST_CHECK tether_status_t tether_agent_measured_boot_read(const cJSON *challenge,
                                                                  tether_agent_measured_boot_t *mb);

/* Where the device's logs are: NULL for the defaults
 * (TETHER_AGENT_DEFAULT_PLATFORM_EVENTLOG, TETHER_MEASURE_DEFAULT_LOG). */
typedef struct tether_agent_eventlog_paths {
    const char *platform;
    const char *tether;
} tether_agent_eventlog_paths_t;

/* The form parameters for mb (asked): "&platform_log_sha256=...
 * &tether_log_sha256=..." and, for each log whose hash is not the one the
 * fleet holds and that is not empty, "&platform_log=..." / "&tether_log=..."
 * (base64url). *params is heap, freed by the caller; NULL on error. A log
 * file that does not exist is the empty log (a device without firmware
 * measurements, or before `tether-agent measure` ran: the fleet's policy
 * decides). *sent_bytes gets the logs' bytes sent. TETHER_ERR_TOO_LARGE for
 * a log over its wire bound, TETHER_ERR_IO when one cannot be read; why
 * says which. */
TETHER_MUST_CHECK tether_status_t tether_agent_eventlog_params(
    const tether_agent_measured_boot_t *mb, const tether_agent_eventlog_paths_t *paths,
    char **params, size_t *sent_bytes, char *why, size_t why_size);

#endif
