/* The store against a real database: a SQLite file in a temporary
 * directory, or with TETHER_TEST_PG_URL (tests/integration/postgres.sh run)
 * a PostgreSQL server, with the tests of the operations the PostgreSQL
 * store has so far. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fleet_fixture.h"
#include "fleet_policies.h"
#include "store.h"
#include "store_schema.h"

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char path[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL || fleet_fixture_open("store", f->dir, f->path, &f->store) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

static void make_row(tether_store_allow_t *row, const char *id, char ek_char, const char *name)
{
    memset(row, 0, sizeof(*row));
    snprintf(row->id, sizeof(row->id), "%s", id);
    memset(row->ek_sha256, ek_char, 64);
    snprintf(row->name, sizeof(row->name), "%s", name);
}

static void migrations_applied_once(void **state)
{
    fixture_t *f = *state;
    int version = -1;

    assert_int_equal(tether_store_schema_version(&f->store, &version), TETHER_OK);
    assert_int_equal(version, tether_store_latest_version());
    assert_true(version >= 1);
#define FOUNDATION_TABLES                                                                     \
    "('devices', 'admin_tokens', 'bootstrap_tokens', 'alerts', 'revocations', "               \
    "'issued_tokens', 'schema_version')"
    assert_int_equal(fleet_db_count(f->path,
                                    fleet_fixture_pg_url() != NULL
                                        ? "SELECT count(*) FROM information_schema.tables WHERE "
                                          "table_schema = 'public' AND table_name IN "
                                          FOUNDATION_TABLES
                                        : "SELECT count(*) FROM sqlite_master WHERE type = "
                                          "'table' AND name IN " FOUNDATION_TABLES),
                     7);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM schema_version"), 1);
    /* Reopening applies nothing and keeps the data. */
    tether_store_free(&f->store);
    tether_store_init(&f->store);
    assert_int_equal(tether_store_open(&f->store, f->path, FLEET_FIXTURE_CONNECTIONS), TETHER_OK);
    assert_int_equal(tether_store_schema_version(&f->store, &version), TETHER_OK);
    assert_int_equal(version, tether_store_latest_version());
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM schema_version"), 1);
}

static void wal_and_durability(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(
        fleet_db_count(f->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

static void newer_schema_refused(void **state)
{
    fixture_t *f = *state;
    tether_store_t other;

    fleet_db_exec(f->path, "UPDATE schema_version SET version = 9999");
    tether_store_init(&other);
    assert_int_equal(tether_store_open(&other, f->path, FLEET_FIXTURE_CONNECTIONS),
                     TETHER_ERR_UNSUPPORTED);
    tether_store_free(&other);
    fleet_db_exec(f->path, "UPDATE schema_version SET version = 1");
}

static void admin_tokens(void **state)
{
    fixture_t *f = *state;
    uint8_t hash[32], other[32];
    tether_store_admin_token_t token;
    unsigned last = 1;
    int64_t id = 0;

    memset(hash, 0x11, sizeof(hash));
    memset(other, 0x22, sizeof(other));
    assert_int_equal(tether_store_admin_token_create(&f->store, hash, TETHER_ROLE_READ |
                                                                          TETHER_ROLE_SECURITY,
                                                     "ops", 100, &id),
                     TETHER_OK);
    assert_true(id > 0);
    /* The same hash twice is a conflict, not a second token. */
    assert_int_equal(tether_store_admin_token_create(&f->store, hash, TETHER_ROLE_READ, "dup", 100,
                                                     NULL),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(tether_store_admin_token_find(&f->store, hash, &token), TETHER_OK);
    assert_int_equal(token.id, id);
    assert_int_equal(token.roles, TETHER_ROLE_READ | TETHER_ROLE_SECURITY);
    assert_string_equal(token.name, "ops");
    assert_int_equal(tether_store_admin_token_find(&f->store, other, &token), TETHER_ERR_NOT_FOUND);
    /* Another security token, so that this one is not the last. */
    assert_int_equal(tether_store_admin_token_create(&f->store, other, TETHER_ROLE_SECURITY,
                                                     "spare", 100, NULL),
                     TETHER_OK);
    assert_int_equal(tether_store_admin_token_revoke(&f->store, id, 200, &last), TETHER_OK);
    assert_int_equal(last, 0);
    assert_int_equal(tether_store_admin_token_find(&f->store, hash, &token), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_store_admin_token_revoke(&f->store, id, 300, &last),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(tether_store_admin_token_revoke(&f->store, id + 100, 300, &last),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(
        fleet_db_count(f->path, "SELECT revoked_at FROM admin_tokens ORDER BY id"), 200);
}

/* The fleet stays administrable: the last unrevoked holder of the security
 * role or of the fleet role cannot be revoked, whatever other roles other
 * tokens hold; a holder with a twin can. */
static void last_admin_token_kept(void **state)
{
    fixture_t *f = *state;
    uint8_t hash[32];
    int64_t all = 0, security = 0, reader = 0, fleet = 0;
    unsigned last = 0;

    memset(hash, 0x31, sizeof(hash));
    assert_int_equal(tether_store_admin_token_create(&f->store, hash, TETHER_ROLE_ALL, "first", 100,
                                                     &all),
                     TETHER_OK);
    hash[0]++;
    assert_int_equal(tether_store_admin_token_create(&f->store, hash,
                                                     TETHER_ROLE_READ | TETHER_ROLE_RELYING_PARTY,
                                                     "reader", 100, &reader),
                     TETHER_OK);
    /* The only token with security and fleet: refused, naming both. */
    assert_int_equal(tether_store_admin_token_revoke(&f->store, all, 200, &last), TETHER_ERR_STATE);
    assert_int_equal(last, TETHER_ROLE_SECURITY | TETHER_ROLE_FLEET);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM admin_tokens "
                                             "WHERE revoked_at IS NULL"),
                     2);
    /* A token with neither role goes at once. */
    assert_int_equal(tether_store_admin_token_revoke(&f->store, reader, 200, &last), TETHER_OK);
    assert_int_equal(last, 0);
    /* A second security holder: the fleet role is still the first's alone. */
    hash[0]++;
    assert_int_equal(tether_store_admin_token_create(&f->store, hash, TETHER_ROLE_SECURITY,
                                                     "security", 100, &security),
                     TETHER_OK);
    assert_int_equal(tether_store_admin_token_revoke(&f->store, all, 200, &last), TETHER_ERR_STATE);
    assert_int_equal(last, TETHER_ROLE_FLEET);
    hash[0]++;
    assert_int_equal(tether_store_admin_token_create(&f->store, hash, TETHER_ROLE_FLEET, "fleet",
                                                     100, &fleet),
                     TETHER_OK);
    assert_int_equal(tether_store_admin_token_revoke(&f->store, all, 300, &last), TETHER_OK);
    assert_int_equal(last, 0);
    /* Now each role has one holder left. */
    assert_int_equal(tether_store_admin_token_revoke(&f->store, security, 400, &last),
                     TETHER_ERR_STATE);
    assert_int_equal(last, TETHER_ROLE_SECURITY);
    assert_int_equal(tether_store_admin_token_revoke(&f->store, fleet, 400, &last),
                     TETHER_ERR_STATE);
    assert_int_equal(last, TETHER_ROLE_FLEET);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM admin_tokens "
                                             "WHERE revoked_at IS NULL"),
                     2);
}

static int count_token(void *arg, const tether_store_admin_token_t *token)
{
    (void)token;
    (*(int *)arg)++;
    return 0;
}

static void admin_token_list(void **state)
{
    fixture_t *f = *state;
    uint8_t hash[32];
    int count = 0;

    for (int i = 0; i < 3; i++) {
        memset(hash, 0x30 + i, sizeof(hash));
        assert_int_equal(tether_store_admin_token_create(&f->store, hash, TETHER_ROLE_ALL, "t", 1,
                                                         NULL),
                         TETHER_OK);
    }
    assert_int_equal(tether_store_admin_token_list(&f->store, count_token, &count), TETHER_OK);
    assert_int_equal(count, 3);
}

static void import_is_idempotent(void **state)
{
    fixture_t *f = *state;
    tether_store_allow_t rows[2];
    tether_store_device_t device;
    size_t created = 99;

    make_row(&rows[0], "dev_000000000000000000000001", 'a', "one");
    make_row(&rows[1], "dev_000000000000000000000002", 'b', "two");
    assert_int_equal(tether_store_device_import(&f->store, rows, 2, 10, &created, NULL), TETHER_OK);
    assert_int_equal(created, 2);
    /* Again, even with new ids: nothing changes. */
    make_row(&rows[0], "dev_000000000000000000000003", 'a', "one");
    assert_int_equal(tether_store_device_import(&f->store, rows, 2, 20, &created, NULL), TETHER_OK);
    assert_int_equal(created, 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices"), 2);
    assert_int_equal(tether_store_device_get(&f->store, "dev_000000000000000000000001", &device),
                     TETHER_OK);
    assert_string_equal(device.name, "one");
    assert_int_equal(device.status, TETHER_DEVICE_ALLOWED);
    assert_int_equal(device.created_at, 10);
    assert_false(device.enrolled);
    assert_false(device.has_counter);
    assert_int_equal(tether_store_device_find_ek(&f->store, rows[1].ek_sha256, &device), TETHER_OK);
    assert_string_equal(device.id, "dev_000000000000000000000002");
    assert_int_equal(tether_store_device_get(&f->store, "dev_00000000000000000000000f", &device),
                     TETHER_ERR_NOT_FOUND);
}

static void import_rolls_back_on_conflict(void **state)
{
    fixture_t *f = *state;
    tether_store_allow_t rows[3];
    size_t created = 99, conflict = 99;

    make_row(&rows[0], "dev_000000000000000000000001", 'a', "one");
    assert_int_equal(tether_store_device_import(&f->store, rows, 1, 10, NULL, NULL), TETHER_OK);
    make_row(&rows[0], "dev_000000000000000000000002", 'b', "two");
    make_row(&rows[1], "dev_000000000000000000000003", 'c', "three");
    make_row(&rows[2], "dev_000000000000000000000004", 'a', "renamed");
    assert_int_equal(tether_store_device_import(&f->store, rows, 3, 20, &created, &conflict),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(conflict, 2);
    assert_int_equal(created, 0);
    /* Rows 0 and 1 were inserted inside the transaction, then rolled back. */
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices"), 1);
}

static int count_device(void *arg, const tether_store_device_t *device)
{
    (void)device;
    (*(int *)arg)++;
    return 0;
}

static void device_list(void **state)
{
    fixture_t *f = *state;
    tether_store_allow_t rows[3];
    int count = 0;

    make_row(&rows[0], "dev_000000000000000000000001", 'a', "one");
    make_row(&rows[1], "dev_000000000000000000000002", 'b', "two");
    make_row(&rows[2], "dev_000000000000000000000003", 'c', "three");
    assert_int_equal(tether_store_device_import(&f->store, rows, 3, 10, NULL, NULL), TETHER_OK);
    assert_int_equal(tether_store_device_list(&f->store, count_device, &count), TETHER_OK);
    assert_int_equal(count, 3);
}

/* The gauge's counts: every status, zeros included, following changes. */
static void device_counts_by_status(void **state)
{
    fixture_t *f = *state;
    tether_store_allow_t rows[3];
    tether_store_device_t device;
    uint64_t counts[TETHER_STORE_DEVICE_STATUSES];

    memset(counts, 0xff, sizeof(counts));
    assert_int_equal(tether_store_device_counts(&f->store, counts), TETHER_OK);
    for (int i = 0; i < TETHER_STORE_DEVICE_STATUSES; i++)
        assert_int_equal(counts[i], 0);
    make_row(&rows[0], "dev_000000000000000000000001", 'a', "one");
    make_row(&rows[1], "dev_000000000000000000000002", 'b', "two");
    make_row(&rows[2], "dev_000000000000000000000003", 'c', "three");
    assert_int_equal(tether_store_device_import(&f->store, rows, 3, 10, NULL, NULL), TETHER_OK);
    assert_int_equal(tether_store_device_change_status(&f->store, rows[1].id,
                                                       TETHER_DEVICE_REVOKE, "test", 20, &device),
                     TETHER_OK);
    assert_int_equal(tether_store_device_counts(&f->store, counts), TETHER_OK);
    assert_int_equal(counts[TETHER_DEVICE_ALLOWED], 2);
    assert_int_equal(counts[TETHER_DEVICE_REVOKED], 1);
    assert_int_equal(counts[TETHER_DEVICE_ACTIVE], 0);
    assert_int_equal(counts[TETHER_DEVICE_PENDING], 0);
    assert_int_equal(counts[TETHER_DEVICE_QUARANTINED], 0);
}

static void add_device_with_tokens(fixture_t *f)
{
    tether_store_allow_t row;

    make_row(&row, "dev_000000000000000000000001", 'a', "one");
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, 10, NULL, NULL), TETHER_OK);
    assert_int_equal(tether_store_issued_token_add(&f->store, "live", row.id, 1000, 500), TETHER_OK);
    assert_int_equal(tether_store_issued_token_add(&f->store, "old", row.id, 400, 100), TETHER_OK);
    assert_int_equal(tether_store_issued_token_add(&f->store, "live", row.id, 1000, 500),
                     TETHER_ERR_CONFLICT);
}

static int count_revocation(void *arg, const tether_store_revocation_t *rev)
{
    assert_null(rev->jti);
    assert_string_equal(rev->device_id, "dev_000000000000000000000001");
    (*(int *)arg)++;
    return 0;
}

static void revoke_marks_tokens_and_feed(void **state)
{
    fixture_t *f = *state;
    const char *id = "dev_000000000000000000000001";
    tether_store_device_t device;
    bool revoked = false;
    int feed = 0;

    add_device_with_tokens(f);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REVOKE,
                                                       "stolen", 600, &device),
                     TETHER_OK);
    assert_int_equal(device.status, TETHER_DEVICE_REVOKED);
    assert_string_equal(device.status_reason, "stolen");
    assert_int_equal(device.updated_at, 600);
    assert_int_equal(tether_store_issued_token_revoked(&f->store, "live", &revoked), TETHER_OK);
    assert_true(revoked);
    /* An expired token is left alone: it is worthless already. */
    assert_int_equal(tether_store_issued_token_revoked(&f->store, "old", &revoked), TETHER_OK);
    assert_false(revoked);
    assert_int_equal(tether_store_revocation_list(&f->store, 0, 100, count_revocation, &feed),
                     TETHER_OK);
    assert_int_equal(feed, 1);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REVOKE, "again",
                                                       700, NULL),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_QUARANTINE,
                                                       "clone", 700, NULL),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM revocations"), 1);
}

static void quarantine_and_reinstate(void **state)
{
    fixture_t *f = *state;
    const char *id = "dev_000000000000000000000001";
    tether_store_device_t device;

    add_device_with_tokens(f);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REINSTATE, "no",
                                                       550, NULL),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_QUARANTINE,
                                                       "clone", 600, &device),
                     TETHER_OK);
    assert_int_equal(device.status, TETHER_DEVICE_QUARANTINED);
    assert_int_equal(
        fleet_db_count(f->path, "SELECT revoked FROM issued_tokens WHERE jti = 'live'"), 1);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REINSTATE,
                                                       "false alarm", 700, &device),
                     TETHER_OK);
    assert_int_equal(device.status, TETHER_DEVICE_ALLOWED);
    assert_true(device.allow_reenroll);
    /* Reinstating does not bring revoked tokens back. */
    assert_int_equal(
        fleet_db_count(f->path, "SELECT revoked FROM issued_tokens WHERE jti = 'live'"), 1);
    assert_int_equal(tether_store_device_change_status(&f->store, "dev_0000000000000000000000ff",
                                                       TETHER_DEVICE_REVOKE, "x", 800, NULL),
                     TETHER_ERR_NOT_FOUND);
}

static void status_change_rolls_back(void **state)
{
    fixture_t *f = *state;
    const char *id = "dev_000000000000000000000001";
    tether_store_device_t device;

    add_device_with_tokens(f);
    /* The last step (the feed) fails: the status and tokens must not change. */
    fleet_db_exec(f->path, fleet_fixture_pg_url() != NULL
                               ? "ALTER TABLE revocations ADD CONSTRAINT fail_feed CHECK (false) "
                                 "NOT VALID"
                               : "CREATE TRIGGER fail_feed BEFORE INSERT ON revocations "
                                 "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    assert_int_not_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REVOKE,
                                                           "stolen", 600, NULL),
                         TETHER_OK);
    assert_int_equal(tether_store_device_get(&f->store, id, &device), TETHER_OK);
    assert_int_equal(device.status, TETHER_DEVICE_ALLOWED);
    assert_int_equal(
        fleet_db_count(f->path, "SELECT count(*) FROM issued_tokens WHERE revoked = 1"), 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM revocations"), 0);
    fleet_db_exec(f->path, fleet_fixture_pg_url() != NULL
                               ? "ALTER TABLE revocations DROP CONSTRAINT fail_feed"
                               : "DROP TRIGGER fail_feed");
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REVOKE,
                                                       "stolen", 600, NULL),
                     TETHER_OK);
}

static int collect_alert(void *arg, const tether_store_alert_t *alert)
{
    int *count = arg;

    assert_string_equal(alert->kind, "clone");
    assert_non_null(strstr(alert->details_json, "counter"));
    (*count)++;
    return 0;
}

static void bootstrap_and_alerts(void **state)
{
    fixture_t *f = *state;
    tether_store_allow_t row;
    uint8_t hash[32];
    int count = 0;

    memset(hash, 0x44, sizeof(hash));
    assert_int_equal(tether_store_bootstrap_token_create(&f->store, hash, 4000, 3, 1000), TETHER_OK);
    assert_int_equal(tether_store_bootstrap_token_create(&f->store, hash, 4000, 3, 1000),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 3);
    make_row(&row, "dev_000000000000000000000001", 'a', "one");
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, 10, NULL, NULL), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, row.id, "clone", "{\"counter\":[5,4]}", 20),
                     TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "clone", "{\"counter\":1}", 30),
                     TETHER_OK);
    assert_int_not_equal(tether_store_alert_add(&f->store, row.id, "clone", "{not json", 40),
                         TETHER_OK);
    assert_int_equal(tether_store_alert_list(&f->store, 0, 10, collect_alert, &count), TETHER_OK);
    assert_int_equal(count, 2);
    count = 0;
    assert_int_equal(tether_store_alert_list(&f->store, 1, 10, collect_alert, &count), TETHER_OK);
    assert_int_equal(count, 1);
}

static void names_and_roles(void **state)
{
    char text[64];
    unsigned roles = 0;
    tether_device_status_t status;

    (void)state;
    assert_int_equal(tether_roles_format(TETHER_ROLE_ALL, text, sizeof(text)), TETHER_OK);
    assert_string_equal(text, "read,fleet,security");
    assert_int_equal(tether_roles_parse("security,read", &roles), TETHER_OK);
    assert_int_equal(roles, TETHER_ROLE_SECURITY | TETHER_ROLE_READ);
    assert_int_equal(tether_roles_parse("", &roles), TETHER_ERR_PARSE);
    assert_int_equal(tether_roles_parse("read,", &roles), TETHER_ERR_PARSE);
    assert_int_equal(tether_roles_parse("admin", &roles), TETHER_ERR_PARSE);
    assert_int_equal(tether_roles_parse("read,,fleet", &roles), TETHER_ERR_PARSE);
    assert_int_equal(tether_device_status_parse("quarantined", &status), TETHER_OK);
    assert_int_equal(status, TETHER_DEVICE_QUARANTINED);
    assert_string_equal(tether_device_status_name(TETHER_DEVICE_ACTIVE), "active");
    assert_int_equal(tether_device_status_parse("Active", &status), TETHER_ERR_PARSE);
}

/* The one list of roles (fleet_vocabulary.h): role i is bit 1 << i, a name
 * for exactly one known bit, nothing for a set or an unknown bit. */
static void role_names(void **state)
{
    (void)state;
    for (unsigned i = 0; i < TETHER_ROLE_COUNT; i++) {
        const char *name = tether_role_name(1u << i);
        assert_non_null(name);
        assert_int_equal(tether_role_bit(name, strlen(name)), 1u << i);
    }
    assert_int_equal(TETHER_ROLE_KNOWN, (1u << TETHER_ROLE_COUNT) - 1);
    assert_string_equal(tether_role_name(TETHER_ROLE_RELYING_PARTY), "relying-party");
    assert_null(tether_role_name(0));
    assert_null(tether_role_name(TETHER_ROLE_READ | TETHER_ROLE_FLEET));
    assert_null(tether_role_name(1u << TETHER_ROLE_COUNT));
    assert_int_equal(tether_role_bit("read", 3), 0);
    assert_int_equal(tether_role_bit("reader", 6), 0);
    assert_int_equal(tether_role_bit(NULL, 0), 0);
}

static void unopened_store(void **state)
{
    tether_store_t store;
    int version = 0;

    (void)state;
    tether_store_init(&store);
    assert_int_equal(tether_store_schema_version(&store, &version), TETHER_ERR_STATE);
    tether_store_free(&store);
    tether_store_free(NULL);
}

/* ---- the webhook outbox (schema version 8) ---- */

static void take(void *arg, const tether_store_delivery_t *delivery)
{
    *(tether_store_delivery_t *)arg = *delivery;
    ((tether_store_delivery_t *)arg)->alert.kind = NULL; /* lives only in the callback */
    ((tether_store_delivery_t *)arg)->alert.details_json = NULL;
}

#define CLAIMED (-2) /* claim's answer when the oldest delivery is claimed */

/* Claims webhook's oldest delivery at now_ms for lease_ms: its alert id, 0
 * when none waits, CLAIMED, or -1 on another error. */
static int64_t claim(tether_store_t *store, const char *webhook, int64_t now_ms,
                     int64_t lease_ms)
{
    tether_store_delivery_t d;
    tether_status_t rc;

    memset(&d, 0, sizeof(d));
    rc = tether_store_webhook_claim(store, webhook, now_ms, lease_ms, take, &d);
    return rc == TETHER_OK              ? d.alert.id
           : rc == TETHER_ERR_NOT_FOUND ? 0
           : rc == TETHER_ERR_CONFLICT  ? CLAIMED
                                        : -1;
}

/* The oldest delivery, by a claim that ends as it is taken. */
static int64_t next_id(tether_store_t *store, const char *webhook)
{
    return claim(store, webhook, 1000, 0);
}

static uint64_t pending(tether_store_t *store, const char *webhook)
{
    tether_store_webhook_pending_t p;

    assert_int_equal(tether_store_webhook_pending(store, webhook, &p), TETHER_OK);
    return p.count;
}

static void every_alert_gets_a_row_per_webhook(void **state)
{
    fixture_t *f = *state;
    const char *names[] = {"security", "oncall"};
    uint64_t dropped = 1;

    /* Written before any webhook: nobody to deliver to. */
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "early", "{}", 100), TETHER_OK);
    assert_int_equal(tether_store_webhook_sync(&f->store, names, 2, 100, &dropped), TETHER_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(next_id(&f->store, "security"), 0);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "first", "{}", 101), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "second", "{\"a\":1}", 102),
                     TETHER_OK);
    /* An alert inserted by other SQL than alert_add (another process, a
     * store operation of its own) is covered by the trigger all the same. */
    fleet_db_exec(f->path, "INSERT INTO alerts (device_id, kind, details, created_at) "
                           "VALUES (NULL, 'raw', '{}', 103)");
    assert_int_equal(pending(&f->store, "security"), 3);
    assert_int_equal(pending(&f->store, "oncall"), 3);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM webhook_outbox "
                                             "WHERE created_ms > 1600000000000"),
                     6);
    /* In alert order, per webhook; delivered rows go, once. */
    assert_int_equal(next_id(&f->store, "security"), 2);
    assert_int_equal(tether_store_webhook_delivered(&f->store, "security", 2), TETHER_OK);
    assert_int_equal(tether_store_webhook_delivered(&f->store, "security", 2),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(next_id(&f->store, "security"), 3);
    assert_int_equal(next_id(&f->store, "oncall"), 2);
    assert_int_equal(pending(&f->store, "security"), 2);
    assert_int_equal(pending(&f->store, "oncall"), 3);
}

static void a_removed_webhook_loses_its_rows(void **state)
{
    fixture_t *f = *state;
    const char *both[] = {"security", "oncall"};
    const char *one[] = {"security"};
    uint64_t dropped = 0;

    assert_int_equal(tether_store_webhook_sync(&f->store, both, 2, 100, &dropped), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "a", "{}", 101), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "b", "{}", 102), TETHER_OK);
    /* Syncing the same set again changes nothing. */
    assert_int_equal(tether_store_webhook_sync(&f->store, both, 2, 104, &dropped), TETHER_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(pending(&f->store, "oncall"), 2);
    assert_int_equal(tether_store_webhook_sync(&f->store, one, 1, 105, &dropped), TETHER_OK);
    assert_int_equal(dropped, 2);
    assert_int_equal(pending(&f->store, "oncall"), 0);
    assert_int_equal(pending(&f->store, "security"), 2);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "c", "{}", 106), TETHER_OK);
    assert_int_equal(pending(&f->store, "oncall"), 0);
    assert_int_equal(pending(&f->store, "security"), 3);
    /* None at all: alerts are only stored. */
    assert_int_equal(tether_store_webhook_sync(&f->store, NULL, 0, 107, &dropped), TETHER_OK);
    assert_int_equal(dropped, 3);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "d", "{}", 108), TETHER_OK);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM webhook_outbox"), 0);
}

/* A claimed delivery is its sender's until the claim ends (a replica's
 * attempt in flight), and so is every later one: a webhook's alerts go out
 * in order, one at a time. A sender that died is taken over when its lease
 * ends; a failed attempt holds the claim through its backoff. */
static void a_claim_holds_the_outbox_until_it_ends(void **state)
{
    fixture_t *f = *state;
    const char *names[] = {"security"};
    uint64_t dropped = 0;
    int64_t first, second;

    assert_int_equal(tether_store_webhook_sync(&f->store, names, 1, 100, &dropped), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "first", "{}", 101), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "second", "{}", 102), TETHER_OK);
    first = claim(&f->store, "security", 10000, 5000);
    assert_true(first > 0);
    assert_int_equal(claim(&f->store, "security", 10001, 5000), CLAIMED);
    assert_int_equal(claim(&f->store, "security", 14999, 5000), CLAIMED);
    assert_int_equal(pending(&f->store, "security"), 2);
    /* Its sender died: another takes it over at the lease's end. */
    assert_int_equal(claim(&f->store, "security", 15000, 5000), first);
    /* A failed attempt: nobody tries again before its backoff ends. */
    assert_int_equal(tether_store_webhook_retry_at(&f->store, "security", first, 20500),
                     TETHER_OK);
    assert_int_equal(claim(&f->store, "security", 20499, 5000), CLAIMED);
    assert_int_equal(claim(&f->store, "security", 20500, 5000), first);
    assert_int_equal(tether_store_webhook_delivered(&f->store, "security", first), TETHER_OK);
    second = claim(&f->store, "security", 20501, 5000);
    assert_true(second > first);
    assert_int_equal(tether_store_webhook_delivered(&f->store, "security", second), TETHER_OK);
    assert_int_equal(claim(&f->store, "security", 30000, 5000), 0);
    assert_int_equal(tether_store_webhook_retry_at(&f->store, "security", second, 40000),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_store_webhook_claim(&f->store, "security", 30000, -1, take, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        tether_store_webhook_claim(&f->store, "security", INT64_MAX, 1, take, NULL),
        TETHER_ERR_INVALID_ARGUMENT);
}

/* What one sender of claims_race got. */
typedef struct claimer {
    tether_store_t *store;
    int64_t now_ms;
    int64_t got;
} claimer_t;

static void *claim_race(void *arg)
{
    claimer_t *c = arg;

    c->got = claim(c->store, "security", c->now_ms, 5000);
    return NULL;
}

/* Senders of two replicas (two handles on one store, two threads each)
 * claim the same delivery at the same moment: exactly one gets it, the
 * others find it claimed; repeated, so that they overlap. */
static void concurrent_claims_one_sender(void **state)
{
    fixture_t *f = *state;
    const char *names[] = {"security"};
    uint64_t dropped = 0;
    tether_store_t replica;

    tether_store_init(&replica);
    assert_int_equal(tether_store_open(&replica, f->path, FLEET_FIXTURE_CONNECTIONS), TETHER_OK);
    assert_int_equal(tether_store_webhook_sync(&f->store, names, 1, 100, &dropped), TETHER_OK);
    for (int round = 0; round < 20; round++) {
        claimer_t claimers[4];
        pthread_t threads[4];
        int64_t winner = 0;
        int won = 0, refused = 0;

        assert_int_equal(tether_store_alert_add(&f->store, NULL, "race", "{}", 200 + round),
                         TETHER_OK);
        for (int i = 0; i < 4; i++) {
            claimers[i] = (claimer_t){i % 2 == 0 ? &f->store : &replica, 100000 * (round + 1), -1};
            assert_int_equal(pthread_create(&threads[i], NULL, claim_race, &claimers[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            assert_int_equal(pthread_join(threads[i], NULL), 0);
            if (claimers[i].got > 0) {
                winner = claimers[i].got;
                won++;
            }
            refused += claimers[i].got == CLAIMED;
        }
        assert_int_equal(won, 1);
        assert_int_equal(refused, 3);
        assert_int_equal(tether_store_webhook_delivered(&replica, "security", winner), TETHER_OK);
    }
    assert_int_equal(pending(&f->store, "security"), 0);
    tether_store_free(&replica);
}

static void sync_refuses_bad_names(void **state)
{
    fixture_t *f = *state;
    const char *empty[] = {""};
    const char *long_name[] = {"a23456789012345678901234567890123"};
    uint64_t dropped = 7;

    assert_int_equal(tether_store_webhook_sync(&f->store, empty, 1, 100, &dropped),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(dropped, 0);
    assert_int_equal(tether_store_webhook_sync(&f->store, long_name, 1, 100, &dropped),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM webhooks"), 0);
}

static void count_alert(void *arg)
{
    (*(int *)arg)++;
}

/* The alert hook sees every alert this connection inserts, through any
 * operation, and nothing else. */
static void alert_hook_sees_alerts_only(void **state)
{
    fixture_t *f = *state;
    uint8_t hash[TETHER_STORE_HASH_SIZE];
    int64_t id = 0;
    int count = 0;

    memset(hash, 7, sizeof(hash));
    tether_store_set_alert_hook(&f->store, count_alert, &count);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "a", "{}", 100), TETHER_OK);
    assert_int_equal(count, 1);
    /* admin_token_recover writes its audit alert in its own SQL. */
    assert_int_equal(tether_store_admin_token_recover(&f->store, hash, TETHER_ROLE_READ, "r", 0,
                                                      101, &id),
                     TETHER_OK);
    assert_int_equal(count, 2);
    assert_int_equal(tether_store_bootstrap_token_create(&f->store, hash, 4000, 1, 102),
                     TETHER_OK);
    assert_int_equal(count, 2);
    /* Another connection's alert is not seen (the senders poll for it). */
    fleet_db_exec(f->path, "INSERT INTO alerts (device_id, kind, details, created_at) "
                           "VALUES (NULL, 'raw', '{}', 103)");
    assert_int_equal(count, 2);
    tether_store_set_alert_hook(&f->store, NULL, NULL);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "b", "{}", 104), TETHER_OK);
    assert_int_equal(count, 2);
}

#define POLICY_V1                                                                             \
    "{\"version\":1,\"tokens\":{\"models\":[\"*\"],\"cost_ceiling\":0,"                       \
    "\"lifetime_seconds\":300},\"thresholds\":[],\"sources\":[]}"
#define POLICY_V2                                                                             \
    "{\"version\":1,\"tokens\":{\"models\":[\"gpt-4o*\"],\"cost_ceiling\":5,"                 \
    "\"lifetime_seconds\":120},\"thresholds\":[],\"sources\":[]}"

static int count_policy(void *arg, const tether_store_policy_t *policy)
{
    int *seen = arg;

    /* the list gives each name's current version only */
    assert_int_equal(policy->version, *seen == 0 ? 2 : 1);
    assert_string_equal(policy->name, *seen == 0 ? "default" : "edge");
    assert_string_equal(policy->document, *seen == 0 ? POLICY_V2 : POLICY_V1);
    (*seen)++;
    return 0;
}

static void policy_versions(void **state)
{
    fixture_t *f = *state;
    tether_store_allow_t row;
    tether_store_policy_t policy;
    size_t created = 0, conflict = 0;
    int64_t version = -1;
    int seen = 0;

    /* A device is on "default" from its first day; the policy itself
     * exists once fleetd wrote it. */
    make_row(&row, "dev_000000000000000000000001", 'a', "one");
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, 100, &created, &conflict),
                     TETHER_OK);
    assert_int_equal(tether_store_device_policy(&f->store, row.id, &policy), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_store_policy_write(&f->store, "default", POLICY_V1, false, 100,
                                               &version),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(version, 0);
    assert_int_equal(tether_store_policy_write(&f->store, "default", POLICY_V1, true, 100,
                                               &version),
                     TETHER_OK);
    assert_int_equal(version, 1);
    assert_int_equal(tether_store_policy_write(&f->store, "default", POLICY_V1, true, 101,
                                               &version),
                     TETHER_ERR_CONFLICT);
    assert_int_equal(version, 0);
    assert_int_equal(tether_store_device_policy(&f->store, row.id, &policy), TETHER_OK);
    assert_int_equal(policy.version, 1);
    /* An update is a new version; the device follows it, the old one stays. */
    assert_int_equal(tether_store_policy_write(&f->store, "default", POLICY_V2, false, 200,
                                               &version),
                     TETHER_OK);
    assert_int_equal(version, 2);
    assert_int_equal(tether_store_device_policy(&f->store, row.id, &policy), TETHER_OK);
    assert_int_equal(policy.version, 2);
    assert_int_equal(policy.created_at, 200);
    assert_string_equal(policy.document, POLICY_V2);
    assert_int_equal(tether_store_policy_get(&f->store, "default", 1, &policy), TETHER_OK);
    assert_string_equal(policy.document, POLICY_V1);
    assert_int_equal(policy.created_at, 100);
    assert_int_equal(tether_store_policy_get(&f->store, "default", 3, &policy),
                     TETHER_ERR_NOT_FOUND);
    assert_string_equal(policy.name, "");
    /* A device moves only to a policy that exists, and only if it exists. */
    assert_int_equal(tether_store_device_set_policy(&f->store, row.id, "edge", 300),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_store_policy_write(&f->store, "edge", POLICY_V1, true, 300, &version),
                     TETHER_OK);
    assert_int_equal(tether_store_device_set_policy(&f->store, "dev_000000000000000000000009",
                                                    "edge", 300),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_store_device_set_policy(&f->store, row.id, "edge", 300), TETHER_OK);
    assert_int_equal(tether_store_device_policy(&f->store, row.id, &policy), TETHER_OK);
    assert_string_equal(policy.name, "edge");
    assert_int_equal(policy.version, 1);
    /* Names outside the rule never reach the database. */
    assert_int_equal(tether_store_policy_write(&f->store, "Edge", POLICY_V1, true, 300, &version),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_store_device_set_policy(&f->store, row.id, "-x", 300),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_store_policy_list(&f->store, count_policy, &seen), TETHER_OK);
    assert_int_equal(seen, 2);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM policies"), 3);
}

/* The "default" policy is the configuration's token keys, written once:
 * a restart with other keys does not overwrite what operators changed. */
static void default_policy_from_config(void **state)
{
    fixture_t *f = *state;
    tether_token_policy_t config = {.lifetime_seconds = 600};
    tether_policy_document_t doc;
    tether_store_policy_t policy;
    char why[256];

    snprintf(config.models, sizeof(config.models), "%s", "llama3,gpt-4o*,llama3");
    snprintf(config.cost_ceiling, sizeof(config.cost_ceiling), "%s", "12.50");
    assert_int_equal(tether_fleet_policy_from_token_policy(&config, &doc, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(doc.model_count, 2);
    assert_string_equal(doc.models[0], "gpt-4o*");
    assert_string_equal(doc.models[1], "llama3");
    assert_string_equal(doc.cost_ceiling, "12.5");
    snprintf(config.cost_ceiling, sizeof(config.cost_ceiling), "%s", "3.000");
    assert_int_equal(tether_fleet_policy_from_token_policy(&config, &doc, why, sizeof(why)),
                     TETHER_OK);
    assert_string_equal(doc.cost_ceiling, "3");
    assert_int_equal(tether_fleet_policy_default_ensure(&f->store, &config, 100), TETHER_OK);
    assert_int_equal(tether_store_policy_get(&f->store, "default", 0, &policy), TETHER_OK);
    assert_int_equal(policy.version, 1);
    assert_string_equal(policy.document,
                        "{\"version\":1,\"tokens\":{\"models\":[\"gpt-4o*\",\"llama3\"],"
                        "\"cost_ceiling\":3,\"lifetime_seconds\":600},\"thresholds\":[],"
                        "\"sources\":[]}");
    snprintf(config.models, sizeof(config.models), "%s", "*");
    assert_int_equal(tether_fleet_policy_default_ensure(&f->store, &config, 200), TETHER_OK);
    assert_int_equal(tether_store_policy_get(&f->store, "default", 0, &policy), TETHER_OK);
    assert_int_equal(policy.version, 1);
    assert_int_equal(policy.created_at, 100);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM policies"), 1);
}

/* One side of concurrent_exchanges_one_winner: its own store handle (a
 * replica) records its exchange. */
typedef struct racer {
    tether_store_t *store;
    tether_store_exchange_t ex;
    tether_store_exchange_result_t result;
    tether_status_t rc;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;

    r->rc = tether_store_exchange_record(r->store, &r->ex, 1000, &r->result);
    return NULL;
}

/* A device and its clone exchange at the same moment through two handles
 * on one store (two replicas): the same counter, other evidence. Exactly
 * one is accepted, the other is decided a clone from what the first wrote,
 * and the device ends quarantined; repeated, so the two overlap. */
static void concurrent_exchanges_one_winner(void **state)
{
    fixture_t *f = *state;
    tether_store_t replica;
    tether_store_allow_t row;
    tether_store_device_t device;
    char jti[2][TETHER_STORE_JTI_SIZE];

    tether_store_init(&replica);
    assert_int_equal(tether_store_open(&replica, f->path, FLEET_FIXTURE_CONNECTIONS), TETHER_OK);
    for (int round = 0; round < 5; round++) {
        racer_t racers[2];
        pthread_t threads[2];
        int accepted = 0, clones = 0;

        snprintf(row.id, sizeof(row.id), "dev_%024d", round + 1);
        memset(row.ek_sha256, 'a' + round, 64);
        row.ek_sha256[64] = '\0';
        snprintf(row.name, sizeof(row.name), "race-%d", round);
        assert_int_equal(tether_store_device_import(&f->store, &row, 1, 10, NULL, NULL), TETHER_OK);
        fleet_db_exec(f->path, "UPDATE devices SET status = 'active', highest_counter = 0");
        for (int i = 0; i < 2; i++) {
            snprintf(jti[i], sizeof(jti[i]), "%030d%02d", round, i);
            racers[i].store = i == 0 ? &f->store : &replica;
            fleet_fixture_exchange(&racers[i].ex, row.id, 7, "192.0.2.1", 1000, jti[i], 300);
            /* The clone's evidence differs, over a nonce of its own; its
             * counter does not. */
            memset(racers[i].ex.fingerprint, 0x10 + i, sizeof(racers[i].ex.fingerprint));
            memset(racers[i].ex.nonce_hash, 0x20 + 2 * round + i,
                   sizeof(racers[i].ex.nonce_hash));
        }
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(pthread_join(threads[i], NULL), 0);
            assert_int_equal(racers[i].rc, TETHER_OK);
            accepted += racers[i].result.decision == TETHER_STORE_EXCHANGE_ACCEPT;
            clones += racers[i].result.decision == TETHER_STORE_EXCHANGE_CLONE;
        }
        assert_int_equal(accepted, 1);
        assert_int_equal(clones, 1);
        assert_int_equal(tether_store_device_get(&f->store, row.id, &device), TETHER_OK);
        assert_int_equal(device.status, TETHER_DEVICE_QUARANTINED);
        assert_int_equal(device.highest_counter, 7);
    }
    tether_store_free(&replica);
}

/* One new device enrolling with the fleet's bootstrap token: its
 * enrolment recorded, then activated, through store (a replica). */
typedef struct enroller {
    tether_store_t *store;
    const uint8_t *bootstrap_hash;
    int n;
    tether_status_t added, activated;
    tether_enroll_decision_t decision;
} enroller_t;

#define ENROLLERS 16

static void *enrol_new_device(void *arg)
{
    static const uint8_t blob[] = {1, 2, 3, 4};
    const tether_store_blob_t b = {blob, sizeof(blob)};
    const tether_store_enrollment_bounds_t bounds = {4, 2, 60};
    enroller_t *r = arg;
    tether_store_enrollment_t e;
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];

    memset(&e, 0, sizeof(e));
    snprintf(e.id, sizeof(e.id), "enr_%032d", r->n);
    snprintf(e.ek_sha256, sizeof(e.ek_sha256), "%064d", r->n);
    e.ek_public = e.ek_cert = e.ak_public = e.ak_name = e.device_key_public = b;
    e.certify_attest = e.certify_signature = e.counter_public = b;
    e.counter_index = 0x01c10000;
    snprintf(e.source, sizeof(e.source), "127.0.0.1");
    e.has_bootstrap = true;
    memcpy(e.bootstrap_hash, r->bootstrap_hash, sizeof(e.bootstrap_hash));
    e.created_at = 1000;
    e.expires_at = 1300;
    snprintf(device_id, sizeof(device_id), "dev_%024d", r->n);
    r->added = tether_store_enrollment_add(r->store, &e, 1000, &bounds, NULL);
    r->activated = r->added != TETHER_OK ? r->added
                                         : tether_store_enrollment_activate(
                                               r->store, e.id, device_id, 1001, &r->decision,
                                               NULL);
    return NULL;
}

/* New devices enrolling at once on two replicas (two handles on one store)
 * with one bootstrap token, as a fleet's first boot does: every enrolment
 * is recorded and activated. On PostgreSQL they used to conflict with each
 * other (the token's row, and predicate locks on the small enrolment
 * tables' index pages) until some ran out of attempts: HTTP 500. */
static void concurrent_enrolments_all_complete(void **state)
{
    fixture_t *f = *state;
    uint8_t hash[TETHER_STORE_HASH_SIZE];
    tether_store_t replica;
    enroller_t enrollers[ENROLLERS];
    pthread_t threads[ENROLLERS];

    memset(hash, 0x5a, sizeof(hash));
    tether_store_init(&replica);
    assert_int_equal(tether_store_open(&replica, f->path, FLEET_FIXTURE_CONNECTIONS), TETHER_OK);
    assert_int_equal(tether_store_bootstrap_token_create(&f->store, hash, 4000, ENROLLERS, 999),
                     TETHER_OK);
    for (int i = 0; i < ENROLLERS; i++) {
        enrollers[i] = (enroller_t){i % 2 == 0 ? &f->store : &replica, hash, i + 1,
                                    TETHER_ERR_STATE, TETHER_ERR_STATE,
                                    TETHER_ENROLL_NOT_ALLOWED};
        assert_int_equal(pthread_create(&threads[i], NULL, enrol_new_device, &enrollers[i]), 0);
    }
    for (int i = 0; i < ENROLLERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(enrollers[i].added, TETHER_OK);
        assert_int_equal(enrollers[i].activated, TETHER_OK);
        assert_int_equal(enrollers[i].decision, TETHER_ENROLL_GRANT_BOOTSTRAP);
    }
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices "
                                             "WHERE status = 'active'"),
                     ENROLLERS);
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM enrolment_sessions"), 0);
    tether_store_free(&replica);
}

/* A gateway's report of requests on a token of DEVICE_MANY, received at now. */
#define DEVICE_MANY "dev_000000000000000000000009"
#define JTI_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define JTI_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define JTI_C "cccccccccccccccccccccccccccccccc"
#define JTI_D "dddddddddddddddddddddddddddddddd"
static void report_requests(fixture_t *f, const char *jti, int64_t requests, int64_t now)
{
    tether_store_usage_result_t result;
    char id[32];

    snprintf(id, sizeof(id), "report-%.8s", jti);
    fleet_fixture_usage_report(&f->store, "gate", id, jti, DEVICE_MANY, requests, now,
                               TETHER_STORE_USAGE_ALERT, &result);
}

/* An exchange's usage document with many tokens (one statement for all on
 * PostgreSQL): the counts of the tokens issued to the device are kept (a
 * token listed twice keeps its highest), a token the fleet did not issue
 * is ignored whatever its characters (quotes, a backslash, a comma and
 * braces: an array literal's syntax), and the mismatches are alerted, the
 * first named in the document's order. */
static void usage_counts_of_many_tokens(void **state)
{
    static const char *const issued[] = {JTI_A, JTI_B, JTI_C};
    fixture_t *f = *state;
    tether_store_device_usage_t usage[] = {
        {.jti = JTI_A, .proofs = 5},
        {.jti = "\"odd\\\",{x}\"", .proofs = 999},
        {.jti = JTI_C, .proofs = 1},
        {.jti = JTI_B, .proofs = 2},
        {.jti = JTI_A, .proofs = 7},
    };
    tether_store_exchange_result_t result;
    tether_store_exchange_t ex;
    tether_store_allow_t row;

    make_row(&row, DEVICE_MANY, 'm', "many");
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, 10, NULL, NULL), TETHER_OK);
    fleet_db_exec(f->path, "UPDATE devices SET status = 'active'");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(tether_store_issued_token_add(&f->store, issued[i], row.id, 2000, 500),
                         TETHER_OK);
    report_requests(f, JTI_B, 50, 900);
    report_requests(f, JTI_C, 60, 900);
    fleet_fixture_exchange(&ex, row.id, 1, "192.0.2.1", 1000, JTI_D, 300);
    ex.usage = usage;
    ex.usage_count = sizeof(usage) / sizeof(usage[0]);
    ex.usage_action = TETHER_STORE_USAGE_ALERT;
    assert_int_equal(tether_store_exchange_record(&f->store, &ex, 1000, &result), TETHER_OK);
    assert_int_equal(result.decision, TETHER_STORE_EXCHANGE_ACCEPT);
    assert_int_equal(result.usage_mismatches, 2);
    assert_string_equal(result.mismatch.jti, JTI_C);
    assert_int_equal(result.mismatch.gateway_accepted, 60);
    assert_int_equal(result.mismatch.device_made, 1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM device_usage"), 3);
    assert_int_equal(fleet_db_count(f->path,
                                    "SELECT proofs FROM device_usage WHERE jti = '" JTI_A "'"),
                     7);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts WHERE kind = "
                                             "'" TETHER_FLEET_ALERT_USAGE_MISMATCH "'"),
                     2);
}

/* A URL that carries a password, wherever in it, is told apart: the file
 * that names it must be closed (fleetd run, init). */
static void url_passwords(void **state)
{
    (void)state;
    assert_true(tether_store_is_postgresql("postgresql://h/db"));
    assert_true(tether_store_is_postgresql("postgres://h/db"));
    assert_false(tether_store_is_postgresql("/var/lib/tether/fleet.db"));
    assert_false(tether_store_url_has_password("postgresql://fleet@db.example:5432/tether"));
    assert_true(tether_store_url_has_password("postgresql://fleet:s3cret@db.example/tether"));
    assert_true(tether_store_url_has_password("postgresql://fleet@db.example/t?password=s3cret"));
    /* Not a URL libpq reads: treated as secret. */
    assert_true(tether_store_url_has_password("postgresql://fleet@db.example/t?nonsense=1"));
}

/* A fleet at schema version 11 (policy documents of at most 8192 bytes)
 * migrates with its policies intact, and then holds a document of
 * TETHER_POLICY_DOCUMENT_MAX bytes (a measured_boot section's size). */
static void policies_migrated_to_larger_documents(void **state)
{
    fixture_t *f = *state;
    static char large[TETHER_POLICY_DOCUMENT_MAX + 2];
    char path[FLEET_FIXTURE_PATH_SIZE + 16];
    tether_store_policy_t policy;
    tether_store_t store;
    int64_t version = 0;
    sqlite3 *db = NULL;
    int schema = 0;

    snprintf(path, sizeof(path), "%s/v11.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (size_t i = 0; i < 11; i++)
        assert_int_equal(sqlite3_exec(db, tether_store_migrations[i], NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (11);"
                                  "INSERT INTO policies VALUES ('edge', 1, '" POLICY_V1 "', 5);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    tether_store_init(&store);
    assert_int_equal(tether_store_open_sqlite(&store, path), TETHER_OK);
    assert_int_equal(tether_store_schema_version(&store, &schema), TETHER_OK);
    assert_int_equal(schema, tether_store_latest_version());
    assert_int_equal(tether_store_policy_get(&store, "edge", 1, &policy), TETHER_OK);
    assert_string_equal(policy.document, POLICY_V1);
    assert_int_equal(policy.created_at, 5);
    memset(large, 'x', TETHER_POLICY_DOCUMENT_MAX);
    assert_int_equal(tether_store_policy_write(&store, "edge", large, false, 6, &version),
                     TETHER_OK);
    assert_int_equal(version, 2);
    assert_int_equal(tether_store_policy_get(&store, "edge", 2, &policy), TETHER_OK);
    assert_int_equal(strlen(policy.document), TETHER_POLICY_DOCUMENT_MAX);
    large[TETHER_POLICY_DOCUMENT_MAX] = 'x';
    assert_int_equal(tether_store_policy_write(&store, "edge", large, false, 7, &version),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_store_free(&store);
}

/* Measured boot's event logs (schema version 14): one per device and kind,
 * replaced by the next accepted one, read with or without its bytes. */
static void eventlogs_by_device(void **state)
{
    static const uint8_t first[] = {1, 2, 3}, second[] = {4, 5, 6, 7};
    static const uint8_t hash_a[32] = {0xaa}, hash_b[32] = {0xbb}, hash_c[32] = {0xcc};
    fixture_t *f = *state;
    tether_store_allow_t row;
    tether_store_eventlog_t log;
    const char *id = "dev_000000000000000000000001";

    make_row(&row, id, 'a', "one");
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, 10, NULL, NULL), TETHER_OK);
    assert_int_equal(tether_store_eventlog_get(&f->store, id, TETHER_STORE_EVENTLOG_TETHER, true,
                                               &log),
                     TETHER_ERR_NOT_FOUND);
    assert_null(log.bytes);
    assert_int_equal(tether_store_eventlog_put(&f->store, id, TETHER_STORE_EVENTLOG_TETHER, hash_a,
                                               first, sizeof(first), 20),
                     TETHER_OK);
    assert_int_equal(tether_store_eventlog_put(&f->store, id, TETHER_STORE_EVENTLOG_PLATFORM,
                                               hash_c, NULL, 0, 20),
                     TETHER_OK);
    assert_int_equal(tether_store_eventlog_put(&f->store, id, TETHER_STORE_EVENTLOG_TETHER, hash_b,
                                               second, sizeof(second), 30),
                     TETHER_OK);
    /* The hash alone (the challenge's), then the bytes (the exchange's). */
    assert_int_equal(tether_store_eventlog_get(&f->store, id, TETHER_STORE_EVENTLOG_TETHER, false,
                                               &log),
                     TETHER_OK);
    assert_memory_equal(log.sha256, hash_b, 32);
    assert_null(log.bytes);
    assert_int_equal(tether_store_eventlog_get(&f->store, id, TETHER_STORE_EVENTLOG_TETHER, true,
                                               &log),
                     TETHER_OK);
    assert_int_equal(log.len, sizeof(second));
    assert_memory_equal(log.bytes, second, sizeof(second));
    tether_store_eventlog_free(&log);
    assert_null(log.bytes);
    /* An empty log is kept as zero bytes. */
    assert_int_equal(tether_store_eventlog_get(&f->store, id, TETHER_STORE_EVENTLOG_PLATFORM,
                                               true, &log),
                     TETHER_OK);
    assert_memory_equal(log.sha256, hash_c, 32);
    assert_int_equal(log.len, 0);
    assert_null(log.bytes);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM device_eventlogs"), 2);
    /* Another kind, or a device that does not exist, is refused. */
    assert_int_equal(tether_store_eventlog_put(&f->store, id, (tether_store_eventlog_kind_t)2,
                                               hash_a, first, sizeof(first), 40),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_store_eventlog_put(&f->store, "dev_000000000000000000000009",
                                               TETHER_STORE_EVENTLOG_TETHER, hash_a, first,
                                               sizeof(first), 40),
                     TETHER_ERR_CONFLICT);
}

/* The tests of the operations both stores have. */
/* ---- retention (schema version 15) ---- */

#define RETENTION_DEVICE "dev_000000000000000000000007"
#define OLD1 "0000000000000000000000000000000a" /* exp 700 */
#define OLD2 "0000000000000000000000000000000b" /* exp 800 */
#define OLD3 "0000000000000000000000000000000c" /* exp 900 */
#define LIVE "0000000000000000000000000000000d" /* exp 1300 */

/* A token of RETENTION_DEVICE with the device's counts, a usage alert and
 * a relying party's usage last seen at seen. */
static void add_token_rows(fixture_t *f, const char *jti, int64_t exp, int64_t seen)
{
    char sql[512];

    assert_int_equal(tether_store_issued_token_add(&f->store, jti, RETENTION_DEVICE, exp, exp - 300),
                     TETHER_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO device_usage (jti, device_id, proofs, requests, bearer,"
             " nonce_issued_at, final, reported_at) VALUES ('%s', '%s', 1, 1, 0, %lld, 0, %lld)",
             jti, RETENTION_DEVICE, (long long)exp - 100, (long long)exp - 100);
    fleet_db_exec(f->path, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO usage_alerts (jti, kind, created_at) VALUES ('%s', 'usage_mismatch', %lld)",
             jti, (long long)exp - 50);
    fleet_db_exec(f->path, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO token_usage (relying_party, jti, device_id, reported_device_id, flagged,"
             " gateway, requests, refused, prompt_tokens, completion_tokens, cost_micros,"
             " first_seen, last_seen, received_at) VALUES (1, '%s', '%s', '%s', 0, 'gate', 1, 0,"
             " 0, 0, 0, %lld, %lld, %lld)",
             jti, RETENTION_DEVICE, RETENTION_DEVICE, (long long)seen, (long long)seen,
             (long long)seen);
    fleet_db_exec(f->path, sql);
}

static long long rows_of(fixture_t *f, const char *table, const char *jti)
{
    char sql[160];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE jti = '%s'", table, jti);
    return fleet_db_count(f->path, sql);
}

/* Batches go oldest first and stop at the cutoffs: a token past its
 * retention goes with its counts and usage alerts, a relying party's usage
 * past its own cutoff goes, an alert past its retention goes unless a
 * webhook still waits for it; what is inside stays and still answers
 * (introspection's state, revocation). */
static void purge_past_retention(void **state)
{
    fixture_t *f = *state;
    const char *hooks[] = {"security"};
    const tether_store_purge_t purge = {
        .tokens_before = 1000, .usage_before = 500, .alerts_before = 2000, .batch = 2};
    uint64_t purged[TETHER_STORE_PURGE_TABLES];
    tether_store_token_state_t token;
    tether_store_allow_t row;
    uint64_t dropped = 0;
    int64_t waiting;

    make_row(&row, RETENTION_DEVICE, '7', "seven");
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, 10, NULL, NULL), TETHER_OK);
    add_token_rows(f, OLD1, 700, 400);
    add_token_rows(f, OLD2, 800, 600);
    add_token_rows(f, OLD3, 900, 450);
    add_token_rows(f, LIVE, 1300, 1100);
    /* A second relying party saw OLD1 later: its row waits for its own cutoff. */
    fleet_db_exec(f->path, "INSERT INTO token_usage (relying_party, jti, device_id,"
                           " reported_device_id, flagged, gateway, requests, refused,"
                           " prompt_tokens, completion_tokens, cost_micros, first_seen,"
                           " last_seen, received_at) VALUES (2, '" OLD1 "', '" RETENTION_DEVICE
                           "', '" RETENTION_DEVICE "', 0, 'other', 1, 0, 0, 0, 0, 650, 650, 650)");
    assert_int_equal(tether_store_webhook_sync(&f->store, hooks, 1, 100, &dropped), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "delivered", "{}", 1500), TETHER_OK);
    assert_int_equal(tether_store_webhook_delivered(&f->store, "security",
                                                    next_id(&f->store, "security")),
                     TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "waiting", "{}", 1600), TETHER_OK);
    waiting = next_id(&f->store, "security");
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "recent", "{}", 2500), TETHER_OK);

    /* The first batch: the two oldest tokens and all of their rows. */
    assert_int_equal(tether_store_purge(&f->store, &purge, purged), TETHER_OK);
    assert_int_equal(purged[TETHER_STORE_PURGE_ISSUED_TOKENS], 2);
    assert_int_equal(purged[TETHER_STORE_PURGE_DEVICE_USAGE], 2);
    assert_int_equal(purged[TETHER_STORE_PURGE_USAGE_ALERTS], 2);
    assert_int_equal(purged[TETHER_STORE_PURGE_TOKEN_USAGE], 2); /* last seen 400 and 450 */
    assert_int_equal(purged[TETHER_STORE_PURGE_ALERTS], 1);
    assert_int_equal(rows_of(f, "issued_tokens", OLD2), 0);
    assert_int_equal(rows_of(f, "issued_tokens", OLD3), 1);
    /* OLD2's usage was last seen after the usage cutoff: it waits for that. */
    assert_int_equal(rows_of(f, "token_usage", OLD2), 1);
    assert_int_equal(fleet_db_count(f->path, "SELECT relying_party FROM token_usage"
                                             " WHERE jti = '" OLD1 "'"),
                     2);
    /* The second: the last token past the cutoff; nothing else is. */
    assert_int_equal(tether_store_purge(&f->store, &purge, purged), TETHER_OK);
    assert_int_equal(purged[TETHER_STORE_PURGE_ISSUED_TOKENS], 1);
    assert_int_equal(purged[TETHER_STORE_PURGE_DEVICE_USAGE], 1);
    assert_int_equal(purged[TETHER_STORE_PURGE_USAGE_ALERTS], 1);
    assert_int_equal(purged[TETHER_STORE_PURGE_TOKEN_USAGE], 0);
    assert_int_equal(purged[TETHER_STORE_PURGE_ALERTS], 0);
    assert_int_equal(tether_store_purge(&f->store, &purge, purged), TETHER_OK);
    for (int t = 0; t < TETHER_STORE_PURGE_TABLES; t++)
        assert_int_equal(purged[t], 0);

    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM issued_tokens"), 1);
    assert_int_equal(rows_of(f, "device_usage", LIVE), 1);
    assert_int_equal(rows_of(f, "usage_alerts", LIVE), 1);
    assert_int_equal(rows_of(f, "token_usage", LIVE), 1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts WHERE kind = 'waiting'"),
                     1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts WHERE kind = 'recent'"),
                     1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts"), 2);
    assert_int_equal(next_id(&f->store, "security"), waiting);
    assert_int_equal(tether_store_token_state(&f->store, OLD1, &token), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_store_token_state(&f->store, LIVE, &token), TETHER_OK);
    assert_false(token.revoked);
    /* Revocation marks the token that stayed. */
    assert_int_equal(tether_store_device_change_status(&f->store, RETENTION_DEVICE,
                                                       TETHER_DEVICE_REVOKE, "stolen", 1100, NULL),
                     TETHER_OK);
    assert_int_equal(tether_store_token_state(&f->store, LIVE, &token), TETHER_OK);
    assert_true(token.revoked);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM revocations"), 1);
}

static void purge_refuses_an_empty_batch(void **state)
{
    fixture_t *f = *state;
    const tether_store_purge_t purge = {.tokens_before = 1000, .batch = 0};
    uint64_t purged[TETHER_STORE_PURGE_TABLES] = {1, 1, 1, 1, 1};

    assert_int_equal(tether_store_purge(&f->store, &purge, purged), TETHER_ERR_INVALID_ARGUMENT);
    for (int t = 0; t < TETHER_STORE_PURGE_TABLES; t++)
        assert_int_equal(purged[t], 0);
    assert_null(tether_store_purge_table_name(TETHER_STORE_PURGE_TABLES));
    assert_string_equal(tether_store_purge_table_name(TETHER_STORE_PURGE_ISSUED_TOKENS),
                        "issued_tokens");
}

static const struct CMUnitTest both_stores[] = {
    cmocka_unit_test_setup_teardown(migrations_applied_once, setup, teardown),
    cmocka_unit_test_setup_teardown(newer_schema_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(admin_tokens, setup, teardown),
    cmocka_unit_test_setup_teardown(last_admin_token_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(admin_token_list, setup, teardown),
    cmocka_unit_test_setup_teardown(import_is_idempotent, setup, teardown),
    cmocka_unit_test_setup_teardown(import_rolls_back_on_conflict, setup, teardown),
    cmocka_unit_test_setup_teardown(device_list, setup, teardown),
    cmocka_unit_test_setup_teardown(device_counts_by_status, setup, teardown),
    cmocka_unit_test_setup_teardown(revoke_marks_tokens_and_feed, setup, teardown),
    cmocka_unit_test_setup_teardown(quarantine_and_reinstate, setup, teardown),
    cmocka_unit_test_setup_teardown(status_change_rolls_back, setup, teardown),
    cmocka_unit_test_setup_teardown(bootstrap_and_alerts, setup, teardown),
    cmocka_unit_test_setup_teardown(every_alert_gets_a_row_per_webhook, setup, teardown),
    cmocka_unit_test_setup_teardown(a_removed_webhook_loses_its_rows, setup, teardown),
    cmocka_unit_test_setup_teardown(a_claim_holds_the_outbox_until_it_ends, setup, teardown),
    cmocka_unit_test_setup_teardown(concurrent_claims_one_sender, setup, teardown),
    cmocka_unit_test_setup_teardown(sync_refuses_bad_names, setup, teardown),
    cmocka_unit_test_setup_teardown(alert_hook_sees_alerts_only, setup, teardown),
    cmocka_unit_test_setup_teardown(policy_versions, setup, teardown),
    cmocka_unit_test_setup_teardown(default_policy_from_config, setup, teardown),
    cmocka_unit_test_setup_teardown(eventlogs_by_device, setup, teardown),
    cmocka_unit_test_setup_teardown(purge_past_retention, setup, teardown),
    cmocka_unit_test_setup_teardown(purge_refuses_an_empty_batch, setup, teardown),
    cmocka_unit_test(names_and_roles),
    cmocka_unit_test(role_names),
    cmocka_unit_test(unopened_store),
    cmocka_unit_test(url_passwords),
    cmocka_unit_test_setup_teardown(concurrent_exchanges_one_winner, setup, teardown),
    cmocka_unit_test_setup_teardown(concurrent_enrolments_all_complete, setup, teardown),
    cmocka_unit_test_setup_teardown(usage_counts_of_many_tokens, setup, teardown),
};

/* The tests of SQLite itself. */
static const struct CMUnitTest sqlite_only[] = {
    cmocka_unit_test_setup_teardown(wal_and_durability, setup, teardown),
    cmocka_unit_test_setup_teardown(policies_migrated_to_larger_documents, setup, teardown),
};

int main(void)
{
    int failed = cmocka_run_group_tests_name("both stores", both_stores, NULL, NULL);

    if (fleet_fixture_pg_url() == NULL)
        failed += cmocka_run_group_tests_name("SQLite", sqlite_only, NULL, NULL);
    return failed;
}
