/*
 * The words fleetd and tetherctl share: admin roles, device statuses, the
 * error codes of the fleet's HTTP answers and the well-known paths. One
 * list each, so the server and its CLI cannot drift apart.
 */
#ifndef TETHER_FLEET_VOCABULARY_H
#define TETHER_FLEET_VOCABULARY_H

#include <stddef.h>

#include "tether/error.h"
#include "tether/measured_boot.h"

/* Admin roles, a bit set; role i is bit 1u << i. TETHER_ROLE_ALL is the
 * operators' set (the first token of a fleet); relying-party is the narrow
 * role of relying parties (AI gateways): introspection, the revocation
 * feed and usage reports, nothing else. */
#define TETHER_ROLE_READ 0x1u
#define TETHER_ROLE_FLEET 0x2u
#define TETHER_ROLE_SECURITY 0x4u
#define TETHER_ROLE_RELYING_PARTY 0x8u
#define TETHER_ROLE_COUNT 4
#define TETHER_ROLE_ALL (TETHER_ROLE_READ | TETHER_ROLE_FLEET | TETHER_ROLE_SECURITY)
#define TETHER_ROLE_KNOWN (TETHER_ROLE_ALL | TETHER_ROLE_RELYING_PARTY)

/* The wire name of role bit ("read", "fleet", "security", "relying-party"),
 * a static string; NULL unless bit is exactly one known role. */
const char *tether_role_name(unsigned bit);

/* The bit of the role named by the len bytes at name; 0 when unknown. */
unsigned tether_role_bit(const char *name, size_t len);

/* Roles as "read,fleet,security,relying-party" (canonical order) into out;
 * parse accepts the same names, comma-separated, and refuses unknown ones or
 * an empty set (*roles is 0 then). */
tether_status_t tether_roles_format(unsigned roles, char *out, size_t out_size);
TETHER_MUST_CHECK tether_status_t tether_roles_parse(const char *text, unsigned *roles);

/* A device's life in the fleet. */
typedef enum tether_device_status {
    TETHER_DEVICE_ALLOWED = 0, /* may enrol; not enrolled yet */
    TETHER_DEVICE_PENDING,     /* enrolment started, credential not activated */
    TETHER_DEVICE_ACTIVE,      /* enrolled; may exchange evidence for tokens */
    TETHER_DEVICE_REVOKED,     /* by an operator; no tokens */
    TETHER_DEVICE_QUARANTINED, /* suspected clone; no tokens */
} tether_device_status_t;

/* "allowed", "pending", "active", "revoked", "quarantined"; "unknown" for
 * any other value. */
const char *tether_device_status_name(tether_device_status_t status);
TETHER_MUST_CHECK tether_status_t tether_device_status_parse(const char *name,
                                                             tether_device_status_t *status);

/* The "error" member of the fleet's refusals ({"error", "error_description"}),
 * the codes every endpoint may answer before its own checks. */
#define TETHER_FLEET_ERROR_INVALID_REQUEST "invalid_request"       /* 400 */
#define TETHER_FLEET_ERROR_UNAUTHORIZED "unauthorized"             /* 401, no token */
#define TETHER_FLEET_ERROR_INVALID_TOKEN "invalid_token"           /* 401, bad token */
#define TETHER_FLEET_ERROR_INVALID_CLIENT "invalid_client" /* 401, bad client credentials */
#define TETHER_FLEET_ERROR_INSUFFICIENT_SCOPE "insufficient_scope" /* 403 */
#define TETHER_FLEET_ERROR_NOT_FOUND "not_found"                   /* 404 */
#define TETHER_FLEET_ERROR_METHOD_NOT_ALLOWED "method_not_allowed" /* 405 */
#define TETHER_FLEET_ERROR_PAYLOAD_TOO_LARGE "payload_too_large"   /* 413 */
#define TETHER_FLEET_ERROR_UNSUPPORTED_MEDIA_TYPE "unsupported_media_type" /* 415 */
#define TETHER_FLEET_ERROR_SERVER_ERROR "server_error"             /* 500 */

/* The "tether_error" of POST /v1/token that only the fleet's store can
 * decide (the evidence's own codes are tether_evidence_code_name()'s):
 * evidence over a nonce an accepted exchange used already, a replay. 400,
 * "error" invalid_grant; nothing changes; a new challenge starts over. */
#define TETHER_FLEET_EXCHANGE_NONCE_REUSED "nonce_reused"
/* ... and for evidence over a next challenge (the nonce that comes with a
 * token) used before its window opens at the device's scheduled refresh:
 * 400 invalid_grant, nothing changes; the agent asks POST /v1/challenge. */
#define TETHER_FLEET_EXCHANGE_NONCE_NOT_YET_VALID "nonce_not_yet_valid"

/* The "tether_error" of POST /v1/token for a usage document (the bytes the
 * TPM signed beside the nonce) that is not the canonical form of a known
 * version, or is too large: 400 invalid_grant, nothing changes. */
#define TETHER_FLEET_EXCHANGE_USAGE_INVALID "usage_document_invalid"
/* ... and for a device quarantined at this exchange because gateways
 * accepted more requests on one of its tokens than it made (403). */
#define TETHER_FLEET_EXCHANGE_USAGE_MISMATCH "usage_mismatch"
/* ... and for a device quarantined at this exchange because it came from
 * outside its policy's sources (source_networks threshold, action
 * quarantine; 403). */
#define TETHER_FLEET_EXCHANGE_SOURCE_REFUSED "source_network_refused"

/* The "tether_error" of POST /v1/token for a device whose policy has a
 * measured_boot section and whose event logs its reference values refuse
 * (tether_measured_boot_check; the strings are firmware's, named once in
 * measured_boot.h): a log that does not parse or lacks SHA-256 digests; a
 * replay other than the quoted PCRs, or a quote that does not cover the
 * policy's; a boot application, IPL event or file of tether's whose digest
 * no allow list holds; a file of the policy's not measured; SecureBoot not
 * enabled; PK, KEK, db or dbx with another digest; a pinned PCR with
 * another value. Nothing changes. */
#define TETHER_FLEET_EXCHANGE_EVENTLOG_MALFORMED TETHER_MEASURED_BOOT_EVENTLOG_MALFORMED
#define TETHER_FLEET_EXCHANGE_EVENTLOG_REPLAY_MISMATCH TETHER_MEASURED_BOOT_REPLAY_MISMATCH
#define TETHER_FLEET_EXCHANGE_MEASUREMENT_NOT_ALLOWED TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED
#define TETHER_FLEET_EXCHANGE_MEASUREMENT_MISSING TETHER_MEASURED_BOOT_MEASUREMENT_MISSING
#define TETHER_FLEET_EXCHANGE_SECURE_BOOT_DISABLED TETHER_MEASURED_BOOT_SECURE_BOOT_DISABLED
#define TETHER_FLEET_EXCHANGE_VARIABLE_NOT_ALLOWED TETHER_MEASURED_BOOT_VARIABLE_NOT_ALLOWED
#define TETHER_FLEET_EXCHANGE_PCR_VALUE_NOT_ALLOWED TETHER_MEASURED_BOOT_PCR_VALUE_NOT_ALLOWED
/* ... and for a request of such a device that names no event logs, or a
 * log by a hash the fleet does not hold (it holds the last accepted one):
 * 400 invalid_grant, nothing changes; the challenge says which logs the
 * fleet holds, so the agent's next exchange sends the bytes. */
#define TETHER_FLEET_EXCHANGE_EVENTLOG_UNKNOWN "eventlog_unknown"

/* Alert kinds of usage reconciliation (DESIGN.md, "Usage counters and
 * reconciliation"): gateways accepted more requests on a token than its
 * device made; a device stopped reporting while gateways saw its tokens. */
#define TETHER_FLEET_ALERT_USAGE_MISMATCH "usage_mismatch"
#define TETHER_FLEET_ALERT_USAGE_UNREPORTED "usage_unreported"
/* A policy threshold crossed (provisioning/fleetd/README.md, "Anomaly
 * thresholds"). */
#define TETHER_FLEET_ALERT_THRESHOLD_EXCEEDED "threshold_exceeded"
/* An exchange refused by measured boot (the refusal's code, log, PCR,
 * event, type and digest in its details). */
#define TETHER_FLEET_ALERT_MEASURED_BOOT_REFUSED "measured_boot_refused"

/* Refusals of POST /v1/usage/reports beyond invalid_request (a malformed
 * report, 400) and payload_too_large (413); nothing changes. 409: the
 * report_id names another report this relying party sent (a retry must be
 * byte-identical). 422: a token's totals would pass 2^53 - 1. */
#define TETHER_FLEET_ERROR_REPORT_ID_REUSED "report_id_reused"
#define TETHER_FLEET_ERROR_USAGE_TOO_LARGE "usage_total_too_large"

/* Bounds a client checks before it asks: the pages and waits of the lists
 * (it pages on after a full page) and the uses of a bootstrap token. */
#define TETHER_FLEET_ALERTS_PAGE 500  /* alerts per answer at most */
#define TETHER_FLEET_FEED_PAGE 500    /* revocation feed entries per answer at most */
#define TETHER_FLEET_FEED_MAX_WAIT 30 /* seconds a feed request may wait (longer is capped) */
#define TETHER_FLEET_ALERTS_MAX_WAIT 30 /* seconds GET /v1/admin/alerts may wait (capped) */
#define TETHER_FLEET_BOOTSTRAP_MAX_USES 1000 /* uses of one bootstrap token at most */
#define TETHER_FLEET_USAGE_PAGE 1000  /* lines of GET /v1/usage at most ("truncated" past it) */

/* Well-known paths of tether-fleetd. */
#define TETHER_FLEET_PATH_HEALTH "/v1/health"
#define TETHER_FLEET_PATH_ENROLL "/v1/enroll"
#define TETHER_FLEET_PATH_ACTIVATE "/v1/enroll/activate"
#define TETHER_FLEET_PATH_CHALLENGE "/v1/challenge"
#define TETHER_FLEET_PATH_TOKEN "/v1/token"
#define TETHER_FLEET_PATH_INTROSPECT "/v1/introspect"
#define TETHER_FLEET_PATH_REVOCATIONS "/v1/revocations"
#define TETHER_FLEET_PATH_JWKS "/.well-known/jwks.json"
#define TETHER_FLEET_PATH_METADATA "/.well-known/oauth-authorization-server"
#define TETHER_FLEET_PATH_METRICS "/metrics" /* Prometheus text format */
#define TETHER_FLEET_PATH_USAGE "/v1/usage" /* ?device=ID&since=T: what relying parties saw */
#define TETHER_FLEET_PATH_USAGE_REPORTS "/v1/usage/reports" /* relying parties report usage */
#define TETHER_FLEET_PATH_ADMIN "/v1/admin/" /* the prefix of the admin API */
#define TETHER_FLEET_PATH_DEVICES "/v1/admin/devices" /* + "/<id>", "/<id>/revoke", ... */
#define TETHER_FLEET_PATH_DEVICES_IMPORT "/v1/admin/devices/import"
#define TETHER_FLEET_PATH_BOOTSTRAP_TOKENS "/v1/admin/bootstrap-tokens"
#define TETHER_FLEET_PATH_ADMIN_TOKENS "/v1/admin/tokens" /* + "/<id>" */
#define TETHER_FLEET_PATH_ALERTS "/v1/admin/alerts"
#define TETHER_FLEET_PATH_POLICIES "/v1/admin/policies" /* + "/<name>", "/<name>/versions" */
#define TETHER_FLEET_PATH_KEYS "/v1/admin/keys"
#define TETHER_FLEET_PATH_KEYS_ROTATE "/v1/admin/keys/rotate"

#endif
