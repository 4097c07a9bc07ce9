/* tether-fleetd admin-token's minting (the offline recovery): the token,
 * its audit alert in the same transaction, and the refusals of a fleet
 * directory that is not safely the caller's. On SQLite (the file's modes and
 * owner checked too) and on PostgreSQL (the store fleetd.conf names), with
 * the store of a "running fleetd" open on the same database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "fleet.h"
#include "fleet_fixture.h"
#include "store.h"
#include "tether/secret_token.h"

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char db[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store; /* what fleetd holds open meanwhile */
} fixture_t;

/* A fleet on PostgreSQL: its fleetd.conf names the store, as init writes it. */
static int write_store_config(const fixture_t *f)
{
    char path[FLEET_FIXTURE_DIR_SIZE + 16];
    FILE *conf;
    int rc;

    snprintf(path, sizeof(path), "%s/fleetd.conf", f->dir);
    conf = fopen(path, "w");
    if (conf == NULL)
        return -1;
    rc = fprintf(conf, "store = %s\n", f->db) < 0 ? -1 : 0;
    if (fclose(conf) != 0)
        rc = -1;
    return rc;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL || fleet_fixture_open("recover", f->dir, f->db, &f->store) != 0)
        return -1;
    *state = f;
    return fleet_fixture_pg_url() != NULL ? write_store_config(f) : chmod(f->db, 0600);
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

static int count_alert(void *arg, const tether_store_alert_t *alert)
{
    cJSON *details = cJSON_Parse(alert->details_json);

    assert_string_equal(alert->kind, "admin_token_minted");
    assert_string_equal(alert->device_id, "");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(details, "token_id")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(details, "name")->valuestring, "ops");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(details, "roles")->valuestring,
                        "fleet,security");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(details, "uid")->valueint, (int)geteuid());
    cJSON_Delete(details);
    (*(int *)arg)++;
    return 0;
}

static void minted_and_audited(void **state)
{
    fixture_t *f = *state;
    char token[TETHER_SECRET_TOKEN_SIZE];
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    tether_store_admin_token_t row;
    int64_t id = 0;
    int alerts = 0;
    char *snapshot;

    assert_int_equal(tether_fleet_admin_token_mint(f->dir, TETHER_ROLE_FLEET | TETHER_ROLE_SECURITY,
                                                   "ops", token, &id),
                     TETHER_OK);
    assert_int_equal(id, 1);
    assert_int_equal(tether_secret_token_check_format(token, strlen(token), TETHER_SECRET_ADMIN),
                     TETHER_OK);
    /* The running fleetd's connection sees it at once. */
    assert_int_equal(tether_secret_token_hash(token, strlen(token), hash), TETHER_OK);
    assert_int_equal(tether_store_admin_token_find(&f->store, hash, &row), TETHER_OK);
    assert_int_equal(row.roles, TETHER_ROLE_FLEET | TETHER_ROLE_SECURITY);
    assert_string_equal(row.name, "ops");
    assert_int_equal(tether_store_alert_list(&f->store, 0, 10, count_alert, &alerts), TETHER_OK);
    assert_int_equal(alerts, 1);
    /* Only the hash is stored: the token is in no row, the alert's included. */
    snapshot = fleet_db_snapshot(f->db);
    assert_non_null(snapshot);
    assert_null(strstr(snapshot, token));
    assert_null(strstr(snapshot, token + 9)); /* nor its body without the prefix */
    free(snapshot);
}

/* Each refusal makes nothing: no token, no alert, no database. */
static void assert_refused(fixture_t *f, tether_status_t expected)
{
    char token[TETHER_SECRET_TOKEN_SIZE];
    int64_t id = 7;

    memset(token, 'x', sizeof(token));
    assert_int_equal(tether_fleet_admin_token_mint(f->dir, TETHER_ROLE_SECURITY, "ops", token, &id),
                     expected);
    assert_int_equal(id, 0);
    assert_int_equal(token[0], '\0');
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM admin_tokens"), 0);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM alerts"), 0);
}

static void unsafe_modes_refused(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(chmod(f->dir, 0750), 0);
    assert_refused(f, TETHER_ERR_STATE);
    assert_int_equal(chmod(f->dir, 0701), 0);
    assert_refused(f, TETHER_ERR_STATE);
    assert_int_equal(chmod(f->dir, 0700), 0);
    if (fleet_fixture_pg_url() == NULL) {
        assert_int_equal(chmod(f->db, 0620), 0);
        assert_refused(f, TETHER_ERR_STATE);
        assert_int_equal(chmod(f->db, 0602), 0);
        assert_refused(f, TETHER_ERR_STATE);
        /* Readable by group is no write: allowed (sqlite3's default 0644). */
        assert_int_equal(chmod(f->db, 0640), 0);
    }
    {
        char token[TETHER_SECRET_TOKEN_SIZE];
        int64_t id = 0;

        assert_int_equal(tether_fleet_admin_token_mint(f->dir, TETHER_ROLE_READ, "ok", token, &id),
                         TETHER_OK);
    }
}

static void links_and_missing_refused(void **state)
{
    fixture_t *f = *state;
    char link[FLEET_FIXTURE_PATH_SIZE + 8];
    char token[TETHER_SECRET_TOKEN_SIZE];
    char missing[FLEET_FIXTURE_PATH_SIZE];
    int64_t id = 0;

    /* A symbolic link to the fleet directory. */
    snprintf(link, sizeof(link), "%s.link", f->dir);
    assert_int_equal(symlink(f->dir, link), 0);
    assert_int_equal(tether_fleet_admin_token_mint(link, TETHER_ROLE_SECURITY, "ops", token, &id),
                     TETHER_ERR_STATE);
    assert_int_equal(unlink(link), 0);
    /* No database: none is created. */
    snprintf(missing, sizeof(missing), "%s/empty", f->dir);
    assert_int_equal(mkdir(missing, 0700), 0);
    assert_int_equal(tether_fleet_admin_token_mint(missing, TETHER_ROLE_SECURITY, "ops", token,
                                                   &id),
                     TETHER_ERR_NOT_FOUND);
    snprintf(missing, sizeof(missing), "%s/empty/fleet.db", f->dir);
    assert_int_equal(access(missing, F_OK), -1);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM admin_tokens"), 0);
}

/* Another user's fleet (the service user's, run by root): refused, so that
 * the files SQLite makes never end up owned by someone fleetd is not. */
static void other_owner_refused(void **state)
{
    fixture_t *f = *state;

    if (geteuid() != 0)
        skip(); /* only root can give a directory away; CI runs as root */
    assert_int_equal(chown(f->dir, 65534, 65534), 0);
    assert_refused(f, TETHER_ERR_STATE);
    assert_int_equal(chown(f->dir, 0, 0), 0);
    if (fleet_fixture_pg_url() == NULL) {
        assert_int_equal(chown(f->db, 65534, 65534), 0);
        assert_refused(f, TETHER_ERR_STATE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(minted_and_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(unsafe_modes_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(links_and_missing_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(other_owner_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
