#include "files.h"

#include <errno.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"
#include "tether/random.h"

#define KEY_FILE_MAX 64

tether_status_t tether_fleet_path(char *out, size_t out_size, const char *dir, const char *name)
{
    int n;

    if (out == NULL || dir == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(out, out_size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= out_size ? TETHER_ERR_TOO_LARGE : TETHER_OK;
}

tether_status_t tether_fleet_file_write(const char *dir, const char *name, const void *data,
                                        size_t len, mode_t mode)
{
    char path[4096];
    tether_status_t rc = tether_fleet_path(path, sizeof(path), dir, name);

    if (rc == TETHER_OK)
        rc = tether_file_write_atomic(path, data, len, mode);
    if (rc != TETHER_OK)
        tether_error("files", "cannot write %s: %s", path, tether_strerror(rc));
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        (void)rmdir(path);
    else
        (void)unlink(path);
    return 0; /* best effort: go on with the other entries */
}

void tether_fleet_dir_remove(const char *dir)
{
    if (dir != NULL)
        (void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new random key at path, unless a file is there already (then nothing
 * changes and TETHER_OK: the caller reads whichever file is in place, so a
 * key that another fleetd made first wins). */
static tether_status_t create_key_file(const char *path, size_t size)
{
    uint8_t key[KEY_FILE_MAX];
    tether_status_t rc;

    if ((rc = tether_random_bytes(key, size)) == TETHER_OK &&
        (rc = tether_file_create_once(path, key, size, 0600)) != TETHER_OK)
        tether_error("files", "cannot create %s: %s", path, tether_strerror(rc));
    tether_wipe(key, sizeof(key));
    return rc;
}

tether_status_t tether_fleet_key_file_load(const char *dir, const char *name, uint8_t *out,
                                           size_t size, bool create)
{
    char path[4096];
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    if (out == NULL || size == 0 || size > KEY_FILE_MAX)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_fleet_path(path, sizeof(path), dir, name)) != TETHER_OK)
        return rc;
    rc = tether_file_read(path, size, &data, &len);
    if (rc == TETHER_ERR_NOT_FOUND && create) {
        if ((rc = create_key_file(path, size)) != TETHER_OK)
            return rc;
        tether_info("files", "created the key %s", path);
        rc = tether_file_read(path, size, &data, &len);
    }
    if (rc == TETHER_OK && len != size)
        rc = TETHER_ERR_PARSE;
    if (rc == TETHER_OK)
        memcpy(out, data, size);
    else
        tether_wipe(out, size);
    if (rc != TETHER_OK && rc != TETHER_ERR_NOT_FOUND)
        tether_error("files", "%s must hold exactly %zu bytes (%s)", path, size,
                     tether_strerror(rc));
    if (data != NULL) {
        tether_wipe(data, len);
        free(data);
    }
    return rc;
}

/* path must be what want says (a directory or a regular file, not a
 * symbolic link), owned by the user running this, and closed to group and
 * others as far as forbidden says (files.h). */
tether_status_t tether_fleet_check_owned(const char *component, const char *path, mode_t want,
                                         mode_t forbidden, const tether_fleet_owned_hints_t *hints)
{
    struct stat st;
    struct passwd *owner;

    if (lstat(path, &st) != 0) {
        int error = errno; /* before logging can change it */

        tether_error(component, "%s: %s%s", path, strerror(error),
                     error == ENOENT ? hints->missing : "");
        return error == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_IO;
    }
    if ((st.st_mode & S_IFMT) != want) {
        tether_error(component, "%s is not a %s (a symbolic link is refused)", path,
                     want == S_IFDIR ? "directory" : "regular file");
        return TETHER_ERR_STATE;
    }
    if (st.st_uid != geteuid()) {
        owner = getpwuid(st.st_uid);
        tether_error(component, "%s belongs to %s (uid %lu), not to the user running this (uid "
                     "%lu): %s", path, owner != NULL ? owner->pw_name : "another user",
                     (unsigned long)st.st_uid, (unsigned long)geteuid(), hints->owner);
        return TETHER_ERR_STATE;
    }
    if ((st.st_mode & forbidden) != 0) {
        tether_error(component, "%s has mode %04o, open to group or others: %s", path,
                     (unsigned)(st.st_mode & 07777), hints->mode);
        return TETHER_ERR_STATE;
    }
    return TETHER_OK;
}
