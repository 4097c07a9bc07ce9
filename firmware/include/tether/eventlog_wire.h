/*
 * The event logs in the token exchange (DESIGN.md, "Measured boot"): the
 * names and bounds the agent and fleetd share.
 *
 * When the device's policy has a measured_boot section, fleetd's answer to
 * POST /v1/challenge carries
 *   "measured_boot": {"platform_log_sha256": "<hex>" or "",
 *                     "tether_log_sha256": "<hex>" or ""}
 * (the SHA-256 of each log fleetd holds for the device from its last
 * accepted exchange, "" for none), and its pcr_selection covers the
 * policy's pcr_mask. The agent's POST /v1/token then carries
 * platform_log_sha256 and tether_log_sha256 (64 lowercase hex digits, the
 * SHA-256 of each log as the device reads it now; an absent file is the
 * empty log) and, only for a log whose hash differs from the one fleetd
 * holds, its bytes: platform_log / tether_log, base64url without padding.
 * An unchanged log costs no bytes and no extra round trip.
 *
 * The logs are not in the TPM-signed qualifying data: the quote's
 * pcrDigest binds them, since fleetd accepts a log only if it replays to
 * the quoted PCRs.
 */
#ifndef TETHER_EVENTLOG_WIRE_H
#define TETHER_EVENTLOG_WIRE_H

#include "tether/cel.h"
#include "tether/eventlog.h"

/* The challenge's member, and its members. */
#define TETHER_EVENTLOG_WIRE_CHALLENGE "measured_boot"
#define TETHER_EVENTLOG_WIRE_PLATFORM_SHA256 "platform_log_sha256"
#define TETHER_EVENTLOG_WIRE_TETHER_SHA256 "tether_log_sha256"
/* The form parameters with a log's bytes. */
#define TETHER_EVENTLOG_WIRE_PLATFORM_LOG "platform_log"
#define TETHER_EVENTLOG_WIRE_TETHER_LOG "tether_log"

/* Characters of a log's hash: SHA-256 in lowercase hex. */
#define TETHER_EVENTLOG_WIRE_SHA256_HEX 64

/* The platform log's bound on the wire, bytes. The parser takes up to
 * TETHER_EVENTLOG_MAX_SIZE (1 MiB), but the logs of real firmware are 2 to
 * 40 KiB (firmware/tests/data; a machine with many boot entries and a
 * large dbx stays under 100 KiB), so a quarter of that keeps every
 * exchange's body, which fleetd buffers before it reads a byte, small
 * while leaving room for the largest logs seen. */
#define TETHER_EVENTLOG_WIRE_PLATFORM_MAX (256u * 1024u)
/* tether's CEL: as large as tether-agent measure can write it. */
#define TETHER_EVENTLOG_WIRE_TETHER_MAX TETHER_CEL_MAX_SIZE

_Static_assert(TETHER_EVENTLOG_WIRE_PLATFORM_MAX <= TETHER_EVENTLOG_MAX_SIZE,
               "a platform log the agent sends is one fleetd's parser takes");

#endif
