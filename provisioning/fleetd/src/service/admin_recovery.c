/* tether-fleetd admin-token: an admin token minted on the fleet's host,
 * straight into its store, for when no token can administer the fleet. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "fleet.h"
#include "tether/bytes.h"
#include "tether/log.h"

/* path must be what want says (a directory or a regular file, not a
 * symbolic link), owned by the user running this, and closed to group and
 * others as far as forbidden says. Whoever else could write there could
 * swap the database under the token this mints; and the store's files,
 * made by another user than fleetd's (root, say), would lock fleetd out. */
static tether_status_t check_owned(const char *path, mode_t want, mode_t forbidden,
                                   const char *fix)
{
    struct stat st;
    struct passwd *owner;

    if (lstat(path, &st) != 0) {
        int error = errno; /* before logging can change it */

        tether_error("admin-token", "%s: %s%s", path, strerror(error),
                     error == ENOENT ? " (no fleet here? make one with 'tether-fleetd init')"
                                     : "");
        return error == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_IO;
    }
    if ((st.st_mode & S_IFMT) != want) {
        tether_error("admin-token", "%s is not a %s (a symbolic link is refused)", path,
                     want == S_IFDIR ? "directory" : "regular file");
        return TETHER_ERR_STATE;
    }
    if (st.st_uid != geteuid()) {
        owner = getpwuid(st.st_uid);
        tether_error("admin-token",
                     "%s belongs to %s (uid %lu), not to the user running this (uid %lu): run "
                     "it as its owner, e.g. 'runuser -u %s -- tether-fleetd admin-token ...'",
                     path, owner != NULL ? owner->pw_name : "another user",
                     (unsigned long)st.st_uid, (unsigned long)geteuid(),
                     owner != NULL ? owner->pw_name : "OWNER");
        return TETHER_ERR_STATE;
    }
    if ((st.st_mode & forbidden) != 0) {
        tether_error("admin-token", "%s has mode %04o, open to group or others: %s", path,
                     (unsigned)(st.st_mode & 07777), fix);
        return TETHER_ERR_STATE;
    }
    return TETHER_OK;
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
    if ((rc = check_owned(dir, S_IFDIR, 0077, "chmod 700 it")) != TETHER_OK ||
        (rc = check_owned(path, S_IFREG, 0022, "chmod 600 it")) != TETHER_OK ||
        (rc = tether_store_open_sqlite(&store, path)) != TETHER_OK ||
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
