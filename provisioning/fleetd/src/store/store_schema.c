#include "store_schema.h"

/*
 * Version 1: the fleet's foundation.
 * - devices: one row per EK (ek_sha256 = SHA-256 of the EK public area, hex).
 *   The enrolment columns stay NULL until the device enrols; highest_counter
 *   and the last_* clockInfo fields feed clone detection at token exchange.
 * - admin_tokens / bootstrap_tokens: only SHA-256 hashes of the secrets.
 * - alerts: clone sightings and the like, details as JSON.
 * - revocations: the feed relying parties follow (seq only grows); jti NULL
 *   means every token of the device.
 * - issued_tokens: every access token issued, so revocation can mark them.
 * - enrolment_sessions is left to the enrolment migration.
 */
static const char migration_1[] =
    "CREATE TABLE devices ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " ek_sha256 TEXT NOT NULL UNIQUE CHECK (length(ek_sha256) = 64),"
    " ek_public BLOB,"
    " ek_cert BLOB,"
    " ak_public BLOB,"
    " ak_name BLOB,"
    " device_key_public BLOB,"
    " device_key_certify_attest BLOB,"
    " device_key_certify_signature BLOB,"
    " counter_nv_index INTEGER,"
    " counter_nv_public BLOB,"
    " status TEXT NOT NULL CHECK (status IN"
    "  ('allowed', 'pending', 'active', 'revoked', 'quarantined')),"
    " status_reason TEXT NOT NULL DEFAULT '',"
    " allow_reenroll INTEGER NOT NULL DEFAULT 0 CHECK (allow_reenroll IN (0, 1)),"
    " highest_counter INTEGER,"
    " last_clock INTEGER,"
    " last_reset_count INTEGER,"
    " last_restart_count INTEGER,"
    " last_clock_safe INTEGER,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE admin_tokens ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    " roles TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " revoked_at INTEGER"
    ");"
    "CREATE TABLE bootstrap_tokens ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    " expires_at INTEGER NOT NULL,"
    " uses_left INTEGER NOT NULL CHECK (uses_left >= 0),"
    " created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE alerts ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " device_id TEXT REFERENCES devices (id),"
    " kind TEXT NOT NULL,"
    " details TEXT NOT NULL CHECK (json_valid(details)),"
    " created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX alerts_device ON alerts (device_id);"
    "CREATE TABLE revocations ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " jti TEXT,"
    " reason TEXT NOT NULL,"
    " created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE issued_tokens ("
    " jti TEXT PRIMARY KEY NOT NULL,"
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " counter INTEGER,"
    " issued_at INTEGER NOT NULL,"
    " exp INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))"
    ");"
    "CREATE INDEX issued_tokens_device_exp ON issued_tokens (device_id, exp);";

/*
 * Version 2: enrolment (DESIGN.md, "Enrolment").
 * - enrolment_sessions: a started enrolment waiting for the device's proof
 *   that it activated the credential (POST /v1/enroll/activate). Its rows
 *   never make a device visible: the devices row is only created or updated
 *   when the proof arrives. No secret is stored: the activation secret is
 *   HMAC-SHA256(the fleet's enrolment key, id). Blobs are what the device
 *   sent, decoded from base64url: TPM marshalled TPM2B_PUBLIC (ek_public,
 *   ak_public, device_key_public), TPM2B_ATTEST and TPMT_SIGNATURE (the
 *   device key's certification), TPM2B_NV_PUBLIC (counter_nv_public), the EK
 *   certificate as DER; ak_name is the AK's name (nameAlg || digest). The
 *   devices row gets the same encodings. bootstrap_hash is the SHA-256 of the
 *   bootstrap token the device presented, if any: a use is consumed only at
 *   activation.
 */
static const char migration_2[] =
    "CREATE TABLE enrolment_sessions ("
    " id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),"
    " ek_sha256 TEXT NOT NULL CHECK (length(ek_sha256) = 64),"
    " ek_public BLOB NOT NULL,"
    " ek_cert BLOB NOT NULL,"
    " ak_public BLOB NOT NULL,"
    " ak_name BLOB NOT NULL,"
    " device_key_public BLOB NOT NULL,"
    " device_key_certify_attest BLOB NOT NULL,"
    " device_key_certify_signature BLOB NOT NULL,"
    " counter_nv_index INTEGER NOT NULL,"
    " counter_nv_public BLOB NOT NULL,"
    " name TEXT,"
    " bootstrap_hash BLOB CHECK (bootstrap_hash IS NULL OR length(bootstrap_hash) = 32),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX enrolment_sessions_ek ON enrolment_sessions (ek_sha256);"
    "CREATE INDEX enrolment_sessions_expires ON enrolment_sessions (expires_at);";

/*
 * Version 3: the attested token exchange (DESIGN.md, "Attested token
 * exchange", "Clone detection", "Revocation and containment").
 * - devices: pcr_digest, the quote's PCR digest accepted for the device (trust
 *   on first use: the first accepted exchange stores it); last_fingerprint
 *   (tether_evidence_fingerprint of the last accepted exchange, to tell a
 *   byte-identical retry from a clone), last_address and last_seen_at: the
 *   last accepted sighting, with highest_counter and the last_* clockInfo
 *   columns of version 1. Enrolment resets them all.
 * - issued_tokens: kid (the issuer key that signed it), scope and audience,
 *   so that a retry gets the same token and a retired key stays published
 *   until its last token has expired.
 * - issuer_keys: the ES256 keys that sign access tokens. Exactly one has no
 *   retired_at: the signing key. A retired key stays in the JWKS until
 *   not_after. file is the PEM file relative to the fleet directory
 *   (issuer-key.pem for the key made at init, issuer-keys/KID.pem after).
 */
static const char migration_3[] =
    "ALTER TABLE devices ADD COLUMN pcr_digest BLOB;"
    "ALTER TABLE devices ADD COLUMN last_fingerprint BLOB"
    " CHECK (last_fingerprint IS NULL OR length(last_fingerprint) = 32);"
    "ALTER TABLE devices ADD COLUMN last_address TEXT;"
    "ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;"
    "ALTER TABLE issued_tokens ADD COLUMN kid TEXT;"
    "ALTER TABLE issued_tokens ADD COLUMN scope TEXT;"
    "ALTER TABLE issued_tokens ADD COLUMN audience TEXT;"
    "CREATE INDEX issued_tokens_device_counter ON issued_tokens (device_id, counter);"
    "CREATE INDEX issued_tokens_kid_exp ON issued_tokens (kid, exp);"
    "CREATE TABLE issuer_keys ("
    " kid TEXT PRIMARY KEY NOT NULL CHECK (length(kid) = 43),"
    " file TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL,"
    " retired_at INTEGER,"
    " not_after INTEGER,"
    " CHECK ((retired_at IS NULL) = (not_after IS NULL))"
    ");"
    "CREATE UNIQUE INDEX issuer_keys_one_active ON issuer_keys (retired_at IS NULL)"
    " WHERE retired_at IS NULL;";

/*
 * Version 4: enrolment that a forger cannot disturb and a crash cannot break
 * (DESIGN.md, "Enrolment").
 * - devices: enrollment_id, the id of the enrolment the device completed
 *   last, so that an activation repeated with its proof (the device lost
 *   the answer) is answered again without changing anything. Cleared by
 *   nothing but the next enrolment; only an active device is matched.
 * - enrolment_sessions: several per EK now (bounded per EK, fleetd.conf's
 *   enroll_max_pending_per_ek, and per EK and source), looked up by EK,
 *   source and age when one is added. source is the sender's IPv4 address
 *   or IPv6 /64 ('' in rows from before).
 */
static const char migration_4[] =
    "ALTER TABLE devices ADD COLUMN enrollment_id TEXT"
    " CHECK (enrollment_id IS NULL OR length(enrollment_id) = 36);"
    "CREATE UNIQUE INDEX devices_enrollment_id ON devices (enrollment_id);"
    "ALTER TABLE enrolment_sessions ADD COLUMN source TEXT NOT NULL DEFAULT '';"
    "DROP INDEX enrolment_sessions_ek;"
    "CREATE INDEX enrolment_sessions_ek_source ON enrolment_sessions"
    " (ek_sha256, source, created_at);";

/*
 * Version 5: single-use challenge nonces (DESIGN.md, "Attested token
 * exchange"). used_nonces holds the SHA-256 of each nonce an accepted
 * exchange answered, until the nonce's own expiry (then it is refused as
 * expired anyway, and purged), so evidence replayed within its nonce's life
 * is refused as nonce_reused by every replica sharing the store.
 * devices.last_nonce_expires_at is the expiry of the last accepted
 * exchange's nonce: evidence over a nonce issued before that one is older
 * than the last accepted exchange, not a clone's answer to a fresh nonce.
 * Enrolment resets it with the other last_* columns. For an exchange
 * accepted before this version it is last_seen_at + 61: its nonce was
 * issued at or before last_seen_at and lived 60 s (TETHER_CHALLENGE_TTL),
 * so a retry of it, whose fingerprint was computed another way then, is
 * refused as older evidence instead of being taken for a clone.
 */
static const char migration_5[] =
    "ALTER TABLE devices ADD COLUMN last_nonce_expires_at INTEGER;"
    "UPDATE devices SET last_nonce_expires_at = last_seen_at + 61"
    " WHERE last_fingerprint IS NOT NULL AND last_seen_at IS NOT NULL;"
    "CREATE TABLE used_nonces ("
    " hash BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),"
    " expires_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX used_nonces_expires ON used_nonces (expires_at);";

/*
 * Version 6: usage reports of relying parties (POST /v1/usage/reports;
 * DESIGN.md, "AI endpoint access").
 * - token_usage: per relying party (its admin token id) and token, the
 *   totals it reported. device_id is the device the fleet issued the jti
 *   to (the one the relying party named when the fleet never issued it);
 *   reported_device_id what the relying party named first; flagged is 1
 *   once an entry did not match the fleet's record (usage_device_mismatch
 *   alert). Totals are bounded to 2^53 - 1 so a JSON number carries them.
 * - usage_reports: the report ids counted, with the SHA-256 of the body
 *   (a retry is the same body), kept TETHER_STORE_USAGE_REPORT_RETENTION.
 */
static const char migration_6[] =
    "CREATE TABLE token_usage ("
    " relying_party INTEGER NOT NULL,"
    " jti TEXT NOT NULL CHECK (length(jti) = 32),"
    " device_id TEXT NOT NULL,"
    " reported_device_id TEXT NOT NULL,"
    " flagged INTEGER NOT NULL CHECK (flagged IN (0, 1)),"
    " gateway TEXT NOT NULL,"
    " requests INTEGER NOT NULL CHECK (requests BETWEEN 0 AND 9007199254740991),"
    " refused INTEGER NOT NULL CHECK (refused BETWEEN 0 AND 9007199254740991),"
    " prompt_tokens INTEGER NOT NULL CHECK (prompt_tokens BETWEEN 0 AND 9007199254740991),"
    " completion_tokens INTEGER NOT NULL"
    "  CHECK (completion_tokens BETWEEN 0 AND 9007199254740991),"
    " cost_micros INTEGER NOT NULL CHECK (cost_micros BETWEEN 0 AND 9007199254740991),"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " PRIMARY KEY (relying_party, jti)"
    ") WITHOUT ROWID;"
    "CREATE INDEX token_usage_device ON token_usage (device_id, last_seen);"
    "CREATE INDEX token_usage_last_seen ON token_usage (last_seen);"
    "CREATE TABLE usage_reports ("
    " relying_party INTEGER NOT NULL,"
    " report_id TEXT NOT NULL,"
    " body_sha256 BLOB NOT NULL CHECK (length(body_sha256) = 32),"
    " entries INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " PRIMARY KEY (relying_party, report_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX usage_reports_received ON usage_reports (received_at);";

/*
 * Version 7: usage reconciliation (DESIGN.md, "Usage counters and
 * reconciliation"; store_usage.h).
 * - device_usage: per token, the counts its device reported in the usage
 *   document of its last exchange (only tokens the fleet issued to that
 *   device): DPoP proofs signed, requests proxied, bearer hand-outs; the
 *   time the fleet issued that exchange's nonce (gateway reports received
 *   before it are covered by the counts), and final once a document came
 *   after the token expired (plus the gateways' leeway). Counts only grow.
 * - token_usage.received_at: when a relying party last reported the token,
 *   to tell the reports an exchange's counts cover. NULL in rows from
 *   before: those reports are older than any exchange from now on.
 * - usage_alerts: the tokens alerted (usage_mismatch, usage_unreported),
 *   so each is alerted once.
 */
static const char migration_7[] =
    "CREATE TABLE device_usage ("
    " jti TEXT PRIMARY KEY NOT NULL REFERENCES issued_tokens (jti),"
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " proofs INTEGER NOT NULL CHECK (proofs BETWEEN 0 AND 9007199254740991),"
    " requests INTEGER NOT NULL CHECK (requests BETWEEN 0 AND 9007199254740991),"
    " bearer INTEGER NOT NULL CHECK (bearer BETWEEN 0 AND 9007199254740991),"
    " nonce_issued_at INTEGER NOT NULL,"
    " final INTEGER NOT NULL CHECK (final IN (0, 1)),"
    " reported_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX device_usage_device ON device_usage (device_id);"
    "ALTER TABLE token_usage ADD COLUMN received_at INTEGER;"
    "CREATE INDEX token_usage_jti ON token_usage (jti);"
    "CREATE TABLE usage_alerts ("
    " jti TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (jti, kind)"
    ") WITHOUT ROWID;";

/*
 * Version 8: alerts delivered to webhooks from a durable outbox (README,
 * "Webhooks").
 * - webhooks: the webhooks fleetd.conf configures, by name, written by
 *   tether-fleetd run at start (tether_store_webhook_sync).
 * - webhook_outbox: one row per alert and webhook still to deliver; the
 *   row goes when the webhook answered 2xx. created_ms is when the alert
 *   was written (Unix milliseconds, for the delivery latency).
 * - the trigger makes the rows in the transaction that inserts the alert,
 *   whoever inserts it (every store operation, tether-fleetd admin-token
 *   in another process): no alert is written without its deliveries.
 */
static const char migration_8[] =
    "CREATE TABLE webhooks ("
    " name TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 32),"
    " created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE webhook_outbox ("
    " webhook TEXT NOT NULL,"
    " alert_id INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (webhook, alert_id)"
    ") WITHOUT ROWID;"
    "CREATE TRIGGER alerts_webhook_outbox AFTER INSERT ON alerts BEGIN"
    " INSERT INTO webhook_outbox (webhook, alert_id, created_ms)"
    "  SELECT name, NEW.id,"
    "   CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM webhooks;"
    " END;";

/*
 * Version 9: fleet policies.
 * - policies: every version of every named policy (fleet_policy.h's
 *   canonical document), none ever changed or dropped; a name's current
 *   version is its highest.
 * - devices.policy: the name of the policy a device follows. No foreign
 *   key (SQLite cannot add one with a default); the store checks the name
 *   exists when it is set, and fleetd creates "default" at start.
 */
static const char migration_9[] =
    "CREATE TABLE policies ("
    " name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " document TEXT NOT NULL CHECK (length(document) BETWEEN 1 AND 8192),"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (name, version)"
    ") WITHOUT ROWID;"
    "ALTER TABLE devices ADD COLUMN policy TEXT NOT NULL DEFAULT 'default';";

/*
 * Version 10: the policy version each issued token's tether claim was made
 * from, so a byte-identical retry gets the same claims after the device's
 * policy changed. NULL for tokens issued before.
 */
static const char migration_10[] =
    "ALTER TABLE issued_tokens ADD COLUMN policy TEXT;"
    "ALTER TABLE issued_tokens ADD COLUMN policy_version INTEGER;";

/*
 * Version 11: anomaly thresholds (store_sqlite_thresholds.c).
 * - usage_seconds: what gateways reported per device, by the second of an
 *   entry's last_seen (a day and a margin kept), the sliding windows'
 *   source.
 * - threshold_alerts: per device and threshold kind, the end of the
 *   window that last alerted: one alert per crossing window.
 */
static const char migration_11[] =
    "CREATE TABLE usage_seconds ("
    " device_id TEXT NOT NULL,"
    " second INTEGER NOT NULL,"
    " requests INTEGER NOT NULL DEFAULT 0,"
    " tokens INTEGER NOT NULL DEFAULT 0,"
    " cost_micros INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (device_id, second)"
    ") WITHOUT ROWID;"
    "CREATE TABLE threshold_alerts ("
    " device_id TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " window_end INTEGER NOT NULL,"
    " PRIMARY KEY (device_id, kind)"
    ") WITHOUT ROWID;";

/*
 * Version 12: what gateways refused per device and second, for the
 * refused_models threshold and the source_networks threshold at gateways
 * (a usage report entry's refused_models and refused_sources).
 */
static const char migration_12[] =
    "ALTER TABLE usage_seconds ADD COLUMN refused_models INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE usage_seconds ADD COLUMN refused_sources INTEGER NOT NULL DEFAULT 0;";

/*
 * Version 13: policy documents up to 49152 bytes (TETHER_POLICY_DOCUMENT_MAX
 * since the measured_boot section: its allow lists at their bounds make a
 * document of some 40 KiB). SQLite cannot change a CHECK in place, so the
 * table is built again with the new bound and its rows copied; nothing
 * refers to it.
 */
static const char migration_13[] =
    "CREATE TABLE policies_next ("
    " name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " document TEXT NOT NULL CHECK (length(document) BETWEEN 1 AND 49152),"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (name, version)"
    ") WITHOUT ROWID;"
    "INSERT INTO policies_next (name, version, document, created_at)"
    " SELECT name, version, document, created_at FROM policies;"
    "DROP TABLE policies;"
    "ALTER TABLE policies_next RENAME TO policies;";

/*
 * Version 14: measured boot (firmware/, DESIGN.md "Measured boot").
 * - device_eventlogs: per device, the last accepted event log of each kind
 *   (the platform's TCG PC Client log, tether's CEL) and its SHA-256, so a
 *   device sends an unchanged log's hash only. A cache of what a verified
 *   quote's PCRs explained: every exchange replays it again.
 */
static const char migration_14[] =
    "CREATE TABLE device_eventlogs ("
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " log TEXT NOT NULL CHECK (log IN ('platform', 'tether')),"
    " sha256 BLOB NOT NULL CHECK (length(sha256) = 32),"
    " bytes BLOB NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (device_id, log)"
    ");";

/*
 * Version 15: retention (README, "Retention"). The purge in fleetd's
 * service loop deletes, in bounded batches, issued tokens past their
 * retention (oldest exp first, with their device_usage and usage_alerts
 * rows) and alerts past theirs (oldest first, never one a webhook still
 * waits for); these indexes make each batch a range read. token_usage is
 * purged by its last_seen index (version 6).
 */
static const char migration_15[] =
    "CREATE INDEX issued_tokens_exp ON issued_tokens (exp);"
    "CREATE INDEX alerts_created ON alerts (created_at);"
    "CREATE INDEX webhook_outbox_alert ON webhook_outbox (alert_id);";

/*
 * Version 16: a webhook delivery is claimed before it is sent, so that
 * fleetd replicas on one store send each alert once (README, "Webhooks").
 * - webhook_outbox.claimed_until: Unix milliseconds until which the row is
 *   one sender's (an attempt in flight, or a failed attempt's backoff); 0
 *   for a row never claimed.
 */
static const char migration_16[] =
    "ALTER TABLE webhook_outbox ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;";

/*
 * Version 17: usage reconciliation compares the requests a relying party
 * reported before an exchange's nonce (store_usage.h), which
 * token_usage.received_at, the time of the token's latest report, cannot
 * tell once a report came after the nonce: a token in use during the
 * exchange went uncompared.
 * - token_usage_received: per token and relying party, the requests
 *   reported in each second; deleted with their token_usage row. Rows from
 *   before count at their token's latest report, as they did.
 */
static const char migration_17[] =
    "CREATE TABLE token_usage_received ("
    " relying_party INTEGER NOT NULL,"
    " jti TEXT NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " requests INTEGER NOT NULL CHECK (requests BETWEEN 0 AND 9007199254740991),"
    " PRIMARY KEY (relying_party, jti, received_at),"
    " FOREIGN KEY (relying_party, jti) REFERENCES token_usage (relying_party, jti)"
    "  ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "CREATE INDEX token_usage_received_jti ON token_usage_received (jti, received_at);"
    "INSERT INTO token_usage_received (relying_party, jti, received_at, requests)"
    " SELECT relying_party, jti, coalesce(received_at, 0), requests FROM token_usage;";

const char *const tether_store_migrations[] = {
    migration_1,
    migration_2,
    migration_3,
    migration_4,
    migration_5,
    migration_6,
    migration_7,
    migration_8,
    migration_9,
    migration_10,
    migration_11,
    migration_12,
    migration_13,
    migration_14,
    migration_15,
    migration_16,
    migration_17,
};

const size_t tether_store_migration_count =
    sizeof(tether_store_migrations) / sizeof(tether_store_migrations[0]);
