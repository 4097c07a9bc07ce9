/*
 * The schema on PostgreSQL: store_schema.c's migrations, one for one and
 * with the same numbers, in PostgreSQL's types. What each table means is
 * said once, in store_schema.c; here only what differs:
 * - INTEGER is BIGINT (SQLite's integers are 64-bit), BLOB is BYTEA,
 *   length() of a blob is octet_length();
 * - INTEGER PRIMARY KEY AUTOINCREMENT is BIGINT GENERATED ALWAYS AS
 *   IDENTITY: ids only grow, from a sequence every replica shares (the
 *   revocation feed's seq among them);
 * - the 0/1 columns stay integers with their CHECK, so the operations'
 *   SQL reads the same on both stores;
 * - json_valid() is a cast to jsonb; WITHOUT ROWID has no counterpart;
 *   the webhook outbox trigger is a PL/pgSQL function;
 * - where SQLite's operations order ties by rowid (devices, issued_tokens,
 *   enrolment_sessions, issuer_keys), a row_order identity column gives
 *   the same insertion order.
 *
 * A later migration N is added to both files: migration_N in
 * store_schema.c and pg_migration_N here, each appended to its array
 * (tether_store_open_postgresql refuses to run when the counts differ).
 */
#include <stdlib.h>

#include "store_pg_internal.h"
#include "store_schema.h"
#include "tether/log.h"

static const char pg_migration_1[] =
    "CREATE TABLE devices ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " ek_sha256 TEXT NOT NULL UNIQUE CHECK (length(ek_sha256) = 64),"
    " ek_public BYTEA,"
    " ek_cert BYTEA,"
    " ak_public BYTEA,"
    " ak_name BYTEA,"
    " device_key_public BYTEA,"
    " device_key_certify_attest BYTEA,"
    " device_key_certify_signature BYTEA,"
    " counter_nv_index BIGINT,"
    " counter_nv_public BYTEA,"
    " status TEXT NOT NULL CHECK (status IN"
    "  ('allowed', 'pending', 'active', 'revoked', 'quarantined')),"
    " status_reason TEXT NOT NULL DEFAULT '',"
    " allow_reenroll BIGINT NOT NULL DEFAULT 0 CHECK (allow_reenroll IN (0, 1)),"
    " highest_counter BIGINT,"
    " last_clock BIGINT,"
    " last_reset_count BIGINT,"
    " last_restart_count BIGINT,"
    " last_clock_safe BIGINT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " row_order BIGINT GENERATED ALWAYS AS IDENTITY"
    ");"
    "CREATE TABLE admin_tokens ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " hash BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32),"
    " roles TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " revoked_at BIGINT"
    ");"
    "CREATE TABLE bootstrap_tokens ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " hash BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32),"
    " expires_at BIGINT NOT NULL,"
    " uses_left BIGINT NOT NULL CHECK (uses_left >= 0),"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE alerts ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " device_id TEXT REFERENCES devices (id),"
    " kind TEXT NOT NULL,"
    " details TEXT NOT NULL CHECK (details::jsonb IS NOT NULL),"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX alerts_device ON alerts (device_id);"
    "CREATE TABLE revocations ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " jti TEXT,"
    " reason TEXT NOT NULL,"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE issued_tokens ("
    " jti TEXT PRIMARY KEY NOT NULL,"
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " counter BIGINT,"
    " issued_at BIGINT NOT NULL,"
    " exp BIGINT NOT NULL,"
    " revoked BIGINT NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),"
    " row_order BIGINT GENERATED ALWAYS AS IDENTITY"
    ");"
    "CREATE INDEX issued_tokens_device_exp ON issued_tokens (device_id, exp);";

static const char pg_migration_2[] =
    "CREATE TABLE enrolment_sessions ("
    " id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),"
    " ek_sha256 TEXT NOT NULL CHECK (length(ek_sha256) = 64),"
    " ek_public BYTEA NOT NULL,"
    " ek_cert BYTEA NOT NULL,"
    " ak_public BYTEA NOT NULL,"
    " ak_name BYTEA NOT NULL,"
    " device_key_public BYTEA NOT NULL,"
    " device_key_certify_attest BYTEA NOT NULL,"
    " device_key_certify_signature BYTEA NOT NULL,"
    " counter_nv_index BIGINT NOT NULL,"
    " counter_nv_public BYTEA NOT NULL,"
    " name TEXT,"
    " bootstrap_hash BYTEA CHECK (bootstrap_hash IS NULL OR octet_length(bootstrap_hash) = 32),"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " row_order BIGINT GENERATED ALWAYS AS IDENTITY"
    ");"
    "CREATE INDEX enrolment_sessions_ek ON enrolment_sessions (ek_sha256);"
    "CREATE INDEX enrolment_sessions_expires ON enrolment_sessions (expires_at);";

static const char pg_migration_3[] =
    "ALTER TABLE devices ADD COLUMN pcr_digest BYTEA;"
    "ALTER TABLE devices ADD COLUMN last_fingerprint BYTEA"
    " CHECK (last_fingerprint IS NULL OR octet_length(last_fingerprint) = 32);"
    "ALTER TABLE devices ADD COLUMN last_address TEXT;"
    "ALTER TABLE devices ADD COLUMN last_seen_at BIGINT;"
    "ALTER TABLE issued_tokens ADD COLUMN kid TEXT;"
    "ALTER TABLE issued_tokens ADD COLUMN scope TEXT;"
    "ALTER TABLE issued_tokens ADD COLUMN audience TEXT;"
    "CREATE INDEX issued_tokens_device_counter ON issued_tokens (device_id, counter);"
    "CREATE INDEX issued_tokens_kid_exp ON issued_tokens (kid, exp);"
    "CREATE TABLE issuer_keys ("
    " kid TEXT PRIMARY KEY NOT NULL CHECK (length(kid) = 43),"
    " file TEXT NOT NULL UNIQUE,"
    " created_at BIGINT NOT NULL,"
    " retired_at BIGINT,"
    " not_after BIGINT,"
    " row_order BIGINT GENERATED ALWAYS AS IDENTITY,"
    " CHECK ((retired_at IS NULL) = (not_after IS NULL))"
    ");"
    "CREATE UNIQUE INDEX issuer_keys_one_active ON issuer_keys ((retired_at IS NULL))"
    " WHERE retired_at IS NULL;";

static const char pg_migration_4[] =
    "ALTER TABLE devices ADD COLUMN enrollment_id TEXT"
    " CHECK (enrollment_id IS NULL OR length(enrollment_id) = 36);"
    "CREATE UNIQUE INDEX devices_enrollment_id ON devices (enrollment_id);"
    "ALTER TABLE enrolment_sessions ADD COLUMN source TEXT NOT NULL DEFAULT '';"
    "DROP INDEX enrolment_sessions_ek;"
    "CREATE INDEX enrolment_sessions_ek_source ON enrolment_sessions"
    " (ek_sha256, source, created_at);";

static const char pg_migration_5[] =
    "ALTER TABLE devices ADD COLUMN last_nonce_expires_at BIGINT;"
    "UPDATE devices SET last_nonce_expires_at = last_seen_at + 61"
    " WHERE last_fingerprint IS NOT NULL AND last_seen_at IS NOT NULL;"
    "CREATE TABLE used_nonces ("
    " hash BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(hash) = 32),"
    " expires_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX used_nonces_expires ON used_nonces (expires_at);";

static const char pg_migration_6[] =
    "CREATE TABLE token_usage ("
    " relying_party BIGINT NOT NULL,"
    " jti TEXT NOT NULL CHECK (length(jti) = 32),"
    " device_id TEXT NOT NULL,"
    " reported_device_id TEXT NOT NULL,"
    " flagged BIGINT NOT NULL CHECK (flagged IN (0, 1)),"
    " gateway TEXT NOT NULL,"
    " requests BIGINT NOT NULL CHECK (requests BETWEEN 0 AND 9007199254740991),"
    " refused BIGINT NOT NULL CHECK (refused BETWEEN 0 AND 9007199254740991),"
    " prompt_tokens BIGINT NOT NULL CHECK (prompt_tokens BETWEEN 0 AND 9007199254740991),"
    " completion_tokens BIGINT NOT NULL"
    "  CHECK (completion_tokens BETWEEN 0 AND 9007199254740991),"
    " cost_micros BIGINT NOT NULL CHECK (cost_micros BETWEEN 0 AND 9007199254740991),"
    " first_seen BIGINT NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " PRIMARY KEY (relying_party, jti)"
    ");"
    "CREATE INDEX token_usage_device ON token_usage (device_id, last_seen);"
    "CREATE INDEX token_usage_last_seen ON token_usage (last_seen);"
    "CREATE TABLE usage_reports ("
    " relying_party BIGINT NOT NULL,"
    " report_id TEXT NOT NULL,"
    " body_sha256 BYTEA NOT NULL CHECK (octet_length(body_sha256) = 32),"
    " entries BIGINT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " PRIMARY KEY (relying_party, report_id)"
    ");"
    "CREATE INDEX usage_reports_received ON usage_reports (received_at);";

static const char pg_migration_7[] =
    "CREATE TABLE device_usage ("
    " jti TEXT PRIMARY KEY NOT NULL REFERENCES issued_tokens (jti),"
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " proofs BIGINT NOT NULL CHECK (proofs BETWEEN 0 AND 9007199254740991),"
    " requests BIGINT NOT NULL CHECK (requests BETWEEN 0 AND 9007199254740991),"
    " bearer BIGINT NOT NULL CHECK (bearer BETWEEN 0 AND 9007199254740991),"
    " nonce_issued_at BIGINT NOT NULL,"
    " final BIGINT NOT NULL CHECK (final IN (0, 1)),"
    " reported_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX device_usage_device ON device_usage (device_id);"
    "ALTER TABLE token_usage ADD COLUMN received_at BIGINT;"
    "CREATE INDEX token_usage_jti ON token_usage (jti);"
    "CREATE TABLE usage_alerts ("
    " jti TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (jti, kind)"
    ");";

static const char pg_migration_8[] =
    "CREATE TABLE webhooks ("
    " name TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 32),"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE webhook_outbox ("
    " webhook TEXT NOT NULL,"
    " alert_id BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " PRIMARY KEY (webhook, alert_id)"
    ");"
    "CREATE FUNCTION alerts_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  INSERT INTO webhook_outbox (webhook, alert_id, created_ms)"
    "   SELECT name, NEW.id, (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    "   FROM webhooks;"
    "  RETURN NULL;"
    " END $$;"
    "CREATE TRIGGER alerts_webhook_outbox AFTER INSERT ON alerts"
    " FOR EACH ROW EXECUTE FUNCTION alerts_webhook_outbox();";

static const char pg_migration_9[] =
    "CREATE TABLE policies ("
    " name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),"
    " version BIGINT NOT NULL CHECK (version >= 1),"
    " document TEXT NOT NULL CHECK (length(document) BETWEEN 1 AND 8192),"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (name, version)"
    ");"
    "ALTER TABLE devices ADD COLUMN policy TEXT NOT NULL DEFAULT 'default';";

static const char pg_migration_10[] =
    "ALTER TABLE issued_tokens ADD COLUMN policy TEXT;"
    "ALTER TABLE issued_tokens ADD COLUMN policy_version BIGINT;";

static const char pg_migration_11[] =
    "CREATE TABLE usage_seconds ("
    " device_id TEXT NOT NULL,"
    " second BIGINT NOT NULL,"
    " requests BIGINT NOT NULL DEFAULT 0,"
    " tokens BIGINT NOT NULL DEFAULT 0,"
    " cost_micros BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (device_id, second)"
    ");"
    "CREATE TABLE threshold_alerts ("
    " device_id TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " window_end BIGINT NOT NULL,"
    " PRIMARY KEY (device_id, kind)"
    ");";

static const char pg_migration_12[] =
    "ALTER TABLE usage_seconds ADD COLUMN refused_models BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE usage_seconds ADD COLUMN refused_sources BIGINT NOT NULL DEFAULT 0;";

/* PostgreSQL changes the CHECK in place (pg_migration_9's, named by
 * PostgreSQL's rule for a column's constraint). */
static const char pg_migration_13[] =
    "ALTER TABLE policies DROP CONSTRAINT policies_document_check;"
    "ALTER TABLE policies ADD CONSTRAINT policies_document_check"
    " CHECK (length(document) BETWEEN 1 AND 49152);";

static const char pg_migration_14[] =
    "CREATE TABLE device_eventlogs ("
    " device_id TEXT NOT NULL REFERENCES devices (id),"
    " log TEXT NOT NULL CHECK (log IN ('platform', 'tether')),"
    " sha256 BYTEA NOT NULL CHECK (octet_length(sha256) = 32),"
    " bytes BYTEA NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (device_id, log)"
    ");";

/* Version 15: the retention purge's indexes (store_schema.c). */
static const char pg_migration_15[] =
    "CREATE INDEX issued_tokens_exp ON issued_tokens (exp);"
    "CREATE INDEX alerts_created ON alerts (created_at);"
    "CREATE INDEX webhook_outbox_alert ON webhook_outbox (alert_id);";
static const char pg_migration_16[] =
    "ALTER TABLE webhook_outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;";
/* Version 17: the requests reported per second (store_schema.c). */
static const char pg_migration_17[] =
    "CREATE TABLE token_usage_received ("
    " relying_party BIGINT NOT NULL,"
    " jti TEXT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " requests BIGINT NOT NULL CHECK (requests BETWEEN 0 AND 9007199254740991),"
    " PRIMARY KEY (relying_party, jti, received_at),"
    " FOREIGN KEY (relying_party, jti) REFERENCES token_usage (relying_party, jti)"
    "  ON DELETE CASCADE"
    ");"
    "CREATE INDEX token_usage_received_jti ON token_usage_received (jti, received_at);"
    "INSERT INTO token_usage_received (relying_party, jti, received_at, requests)"
    " SELECT relying_party, jti, coalesce(received_at, 0), requests FROM token_usage;";

const char *const tether_pg_migrations[] = {
    pg_migration_1,
    pg_migration_2,
    pg_migration_3,
    pg_migration_4,
    pg_migration_5,
    pg_migration_6,
    pg_migration_7,
    pg_migration_8,
    pg_migration_9,
    pg_migration_10,
    pg_migration_11,
    pg_migration_12,
    pg_migration_13,
    pg_migration_14,
    pg_migration_15,
    pg_migration_16,
    pg_migration_17,
};

const size_t tether_pg_migration_count =
    sizeof(tether_pg_migrations) / sizeof(tether_pg_migrations[0]);

static tether_status_t version_row(void *arg, const tether_pg_row_t *row)
{
    *(int *)arg = (int)tether_pg_int64(row, 0);
    return TETHER_OK;
}

tether_status_t tether_pg_read_version(tether_pg_t *db, int *version)
{
    tether_status_t rc;

    *version = 0;
    rc = tether_pg_query_one(db, "read schema version", "SELECT version FROM schema_version",
                             PG_NO_ARGS, version_row, version);
    return rc == TETHER_ERR_NOT_FOUND ? TETHER_OK : rc;
}

/* What one migration step works on: it reads the version under the lock
 * and applies the next migration when one is pending. */
typedef struct migration_step {
    int version; /* after the step */
    bool applied;
} migration_step_t;

static tether_status_t migrate_one(tether_pg_t *db, void *arg)
{
    migration_step_t *step = arg;
    int latest = tether_store_latest_version();
    tether_status_t rc;

    step->applied = false;
    /* Replicas starting together take turns; the lock ends with the
     * transaction. */
    if ((rc = tether_pg_run(db, "lock the schema", "SELECT pg_advisory_xact_lock($1)",
                            PG_ARGS(PG_INT(TETHER_PG_MIGRATION_LOCK)), NULL)) != TETHER_OK ||
        (rc = tether_pg_run(db, "create the schema version table",
                            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
                            PG_NO_ARGS, NULL)) != TETHER_OK ||
        (rc = tether_pg_read_version(db, &step->version)) != TETHER_OK)
        return rc;
    if (step->version > latest) {
        tether_error("store", "database schema version %d is newer than this build knows (%d): "
                              "upgrade tether-fleetd",
                     step->version, latest);
        return TETHER_ERR_UNSUPPORTED;
    }
    if (step->version == latest)
        return TETHER_OK;
    if ((rc = tether_pg_run(db, "apply schema migration", tether_pg_migrations[step->version],
                            PG_NO_ARGS, NULL)) != TETHER_OK ||
        (rc = tether_pg_run(db, "clear schema version", "DELETE FROM schema_version", PG_NO_ARGS,
                            NULL)) != TETHER_OK ||
        (rc = tether_pg_run(db, "write schema version",
                            "INSERT INTO schema_version (version) VALUES ($1)",
                            PG_ARGS(PG_INT(step->version + 1)), NULL)) != TETHER_OK)
        return rc;
    step->version++;
    step->applied = true;
    return TETHER_OK;
}

tether_status_t tether_pg_migrate(pg_store_t *s)
{
    migration_step_t step = {0, false};
    tether_status_t rc;

    if (tether_pg_migration_count != tether_store_migration_count) {
        tether_error("store", "this build has %zu SQLite and %zu PostgreSQL schema migrations: "
                              "every migration must be written for both stores",
                     tether_store_migration_count, tether_pg_migration_count);
        return TETHER_ERR_UNSUPPORTED;
    }
    /* Each migration in its own transaction: a failure leaves the database
     * at the last version fully applied. */
    do {
        if ((rc = tether_pg_transaction_read_committed(s, "schema migration", migrate_one,
                                                       &step)) != TETHER_OK)
            return rc;
        if (step.applied)
            tether_info("store", "applied schema migration %d", step.version);
    } while (step.applied);
    return TETHER_OK;
}
