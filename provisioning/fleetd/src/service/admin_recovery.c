/* tether-fleetd admin-token: an admin token minted on the fleet's host,
 * straight into its store, for when no token can administer the fleet. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "fleet.h"
#include "tether/bytes.h"
#include "tether/log.h"

/* Whoever else could write the directory or the database could swap the
 * database under the token this mints; and the store's files, made by
 * another user than fleetd's (root, say), would lock fleetd out. */
#define NO_FLEET " (no fleet here? make one with 'tether-fleetd init')"
#define AS_OWNER "run it as its owner, e.g. 'runuser -u OWNER -- tether-fleetd admin-token ...'"
static const tether_fleet_owned_hints_t dir_hints = {NO_FLEET, AS_OWNER, "chmod 700 it"};
static const tether_fleet_owned_hints_t db_hints = {NO_FLEET, AS_OWNER, "chmod 600 it"};

/* The store of the fleet in dir: DIR/fleet.db when it is there (checked
 * as above), else the PostgreSQL store its fleetd.conf names, else the
 * missing database is what the log says. */
static tether_status_t open_fleet_store(const char *dir, const char *path, tether_store_t *store)
{
    tether_fleet_config_t config;
    struct stat st;
    tether_status_t rc;

    if (lstat(path, &st) != 0 && errno == ENOENT) {
        tether_fleet_config_init(&config);
        rc = tether_fleet_config_load("admin-token", dir, &config);
        if (rc == TETHER_OK && config.store[0] != '\0')
            return tether_store_open_postgresql(store, config.store, 1);
    }
    if ((rc = tether_fleet_check_owned("admin-token", path, S_IFREG, 0022, &db_hints)) !=
        TETHER_OK)
        return rc;
    return tether_store_open_sqlite(store, path);
}

tether_status_t tether_fleet_admin_token_mint(const char *dir, unsigned roles, const char *name,
                                              char token[TETHER_SECRET_TOKEN_SIZE], int64_t *id)
{
    char path[4096];
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    char role_text[64] = "";
    tether_store_t store;
    tether_status_t rc;

    tether_store_init(&store);
    memset(hash, 0, sizeof(hash));
    if (token != NULL)
        tether_wipe(token, TETHER_SECRET_TOKEN_SIZE);
    if (id != NULL)
        *id = 0;
    if (dir == NULL || name == NULL || token == NULL || id == NULL) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((rc = tether_roles_format(roles, role_text, sizeof(role_text))) != TETHER_OK ||
        (rc = tether_fleet_path(path, sizeof(path), dir, TETHER_FLEET_DB_FILE)) != TETHER_OK)
        goto out;
    /* The directory holds the fleet's keys: init makes it 0700. */
    if ((rc = tether_fleet_check_owned("admin-token", dir, S_IFDIR, 0077, &dir_hints)) !=
            TETHER_OK ||
        (rc = open_fleet_store(dir, path, &store)) != TETHER_OK ||
        (rc = tether_secret_token_generate(TETHER_SECRET_ADMIN, token,
                                           TETHER_SECRET_TOKEN_SIZE)) != TETHER_OK ||
        (rc = tether_secret_token_hash(token, strlen(token), hash)) != TETHER_OK)
        goto out;
    rc = tether_store_admin_token_recover(&store, hash, roles, name, (int64_t)geteuid(),
                                          (int64_t)time(NULL), id);
    if (rc == TETHER_OK)
        tether_warn("admin-token",
                    "admin token %lld (%s) with roles %s minted on the fleet host by uid %lu; "
                    "recorded as alert %s",
                    (long long)*id, name, role_text, (unsigned long)geteuid(),
                    TETHER_STORE_ALERT_ADMIN_TOKEN_MINTED);
out:
    if (rc != TETHER_OK && token != NULL)
        tether_wipe(token, TETHER_SECRET_TOKEN_SIZE);
    tether_store_free(&store);
    tether_wipe(hash, sizeof(hash));
    return rc;
}
