#include "files.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include "tether/file.h"
#include "tether/log.h"

tether_status_t tether_fleet_path(char *out, size_t out_size, const char *dir, const char *name)
{
    int n;

    if (out == NULL || dir == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(out, out_size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= out_size ? TETHER_ERR_TOO_LARGE : TETHER_OK;
}

tether_status_t tether_fleet_dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    tether_status_t rc = TETHER_OK;

    if (fd < 0)
        return TETHER_ERR_IO;
    if (fsync(fd) != 0)
        rc = TETHER_ERR_IO;
    close(fd);
    return rc;
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
