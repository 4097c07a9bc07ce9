#include "tether/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tether/bytes.h"

/* tether_file_read_to_end's buffer grows by this much at a time. */
#define READ_TO_END_STEP 65536u

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

tether_status_t tether_dir_sync(const char *dir)
{
    int fd, rc;

    if (dir == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return TETHER_ERR_IO;
    rc = fsync(fd);
    close(fd);
    return rc == 0 ? TETHER_OK : TETHER_ERR_IO;
}

static int fsync_parent(const char *path)
{
    char copy[PATH_MAX];

    if (strlen(path) >= sizeof(copy))
        return -1;
    strcpy(copy, path);
    return tether_dir_sync(dirname(copy)) == TETHER_OK ? 0 : -1;
}

/* Writes a temporary file beside path, syncs it, then puts it in place:
 * rename() replaces whatever is at path; link() never does (a file already
 * there stays, and counts as success). */
static tether_status_t write_beside(const char *path, const void *data, size_t len, mode_t mode,
                                    int replace)
{
    char tmp[PATH_MAX];
    int fd = -1;
    tether_status_t rc = TETHER_ERR_IO;

    if (path == NULL || (data == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
        return TETHER_ERR_TOO_LARGE;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return TETHER_ERR_IO;
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (replace) {
        if (rename(tmp, path) != 0)
            goto out;
        tmp[0] = '\0';
    } else if (link(tmp, path) != 0 && errno != EEXIST) {
        goto out;
    }
    rc = fsync_parent(path) == 0 ? TETHER_OK : TETHER_ERR_IO;
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0] != '\0')
        unlink(tmp);
    return rc;
}

tether_status_t tether_file_write_atomic(const char *path, const void *data, size_t len,
                                         mode_t mode)
{
    return write_beside(path, data, len, mode, 1);
}

tether_status_t tether_file_create_once(const char *path, const void *data, size_t len,
                                        mode_t mode)
{
    return write_beside(path, data, len, mode, 0);
}

/* read() into buf[0..len), again when a signal interrupts it: the bytes
 * read (0 at the end of the file), or -1 with errno set. */
static ssize_t read_retrying(int fd, void *buf, size_t len)
{
    ssize_t n;

    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

tether_status_t tether_file_read(const char *path, size_t max, uint8_t **data, size_t *len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd;
    tether_status_t rc = TETHER_ERR_IO;

    if (path == NULL || data == NULL || len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_IO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    if ((uintmax_t)st.st_size > max) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    /* Read up to the size seen; a file that grows meanwhile is cut there. */
    while (got < (size_t)st.st_size) {
        ssize_t n = read_retrying(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
    rc = TETHER_OK;
out:
    if (buf != NULL) {
        tether_wipe(buf, (size_t)st.st_size + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

tether_status_t tether_file_read_to_end(const char *path, size_t max, uint8_t **data,
                                        size_t *len)
{
    uint8_t *buf = NULL;
    size_t got = 0, capacity = 0;
    int fd = -1;
    tether_status_t rc = TETHER_ERR_IO;

    if (data != NULL)
        *data = NULL;
    if (len != NULL)
        *len = 0;
    if (path == NULL || data == NULL || len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        rc = errno == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_IO;
        goto out;
    }
    /* Grows by READ_TO_END_STEP; reading one byte past max tells a file
     * over the bound from one exactly at it. */
    for (;;) {
        ssize_t n;

        if (got == capacity) {
            uint8_t *grown;

            if (capacity > max) {
                rc = TETHER_ERR_TOO_LARGE;
                goto out;
            }
            capacity += READ_TO_END_STEP;
            if ((grown = realloc(buf, capacity + 1)) == NULL) {
                rc = TETHER_ERR_NO_MEMORY;
                goto out;
            }
            buf = grown;
        }
        if ((n = read_retrying(fd, buf + got, capacity - got)) < 0)
            goto out;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > max) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
    rc = TETHER_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

tether_status_t tether_file_wipe_remove(const char *path)
{
    static const uint8_t zeros[4096];
    struct stat st;
    off_t left;
    int fd;

    if (path == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? TETHER_OK : TETHER_ERR_IO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return TETHER_ERR_IO;
    }
    for (left = st.st_size; left > 0;) {
        size_t chunk = left > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left;
        if (write_all(fd, zeros, chunk) != 0) {
            close(fd);
            return TETHER_ERR_IO;
        }
        left -= (off_t)chunk;
    }
    if (fsync(fd) != 0) {
        close(fd);
        return TETHER_ERR_IO;
    }
    close(fd);
    if (unlink(path) != 0)
        return TETHER_ERR_IO;
    return fsync_parent(path) == 0 ? TETHER_OK : TETHER_ERR_IO;
}

tether_status_t tether_dir_ensure_private(const char *path)
{
    struct stat st;

    if (path == NULL || path[0] == '\0')
        return TETHER_ERR_INVALID_ARGUMENT;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return TETHER_ERR_IO;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return TETHER_ERR_IO;
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return TETHER_ERR_STATE;
    return TETHER_OK;
}
