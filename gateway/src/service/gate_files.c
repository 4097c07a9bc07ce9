/* Files the gateway's configuration names (gate_files.h). */
#include "gate_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tether/bytes.h"

tether_status_t tether_gate_file_resolve(const char *dir, const char *path, char *out,
                                         size_t out_size)
{
    int n;

    if (dir == NULL || path == NULL || out == NULL || path[0] == '\0')
        return TETHER_ERR_INVALID_ARGUMENT;
    n = path[0] == '/' ? snprintf(out, out_size, "%s", path)
                       : snprintf(out, out_size, "%s/%s", dir, path);
    return n < 0 || (size_t)n >= out_size ? TETHER_ERR_TOO_LARGE : TETHER_OK;
}

tether_status_t tether_gate_file_create_new(const char *path, const void *data, size_t len)
{
    const char *p = data;
    tether_status_t rc = TETHER_OK;
    int fd;

    if (path == NULL || (data == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
        return errno == EEXIST ? TETHER_ERR_CONFLICT : TETHER_ERR_IO;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = TETHER_ERR_IO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0)
        rc = TETHER_ERR_IO;
    if (close(fd) != 0)
        rc = TETHER_ERR_IO;
    if (rc != TETHER_OK)
        (void)unlink(path);
    return rc;
}

tether_status_t tether_gate_secret_file_read(const char *path, char *out, size_t out_size,
                                             char *why, size_t why_size)
{
    struct stat st;
    ssize_t got;
    size_t len = 0;
    tether_status_t rc;
    int fd;

    if (path == NULL || out == NULL || out_size < 2)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(out, 0, out_size);
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return tether_explain(TETHER_ERR_IO, why, why_size, "%s: cannot open: %s", path,
                              strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tether_explain(TETHER_ERR_IO, why, why_size, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_uid != geteuid() || ((st.st_mode & 07777) != 0600 && (st.st_mode & 07777) != 0400)) {
        rc = tether_explain(TETHER_ERR_VERIFY, why, why_size,
                            "%s: must be owned by this user (uid %u) with mode 0600 or 0400, "
                            "is uid %u mode %04o: chown and chmod 600 it",
                            path, (unsigned)geteuid(), (unsigned)st.st_uid,
                            (unsigned)(st.st_mode & 07777));
        goto out;
    }
    while (len < out_size) {
        got = read(fd, out + len, out_size - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = tether_explain(TETHER_ERR_IO, why, why_size, "%s: cannot read: %s", path,
                                strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (len > 0 && out[len - 1] == '\n')
        out[--len] = '\0';
    if (len == 0 || len >= out_size) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "%s: must hold one line of 1 to %zu characters", path, out_size - 1);
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7f) {
            rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                                "%s: must hold one line of visible characters", path);
            goto out;
        }
    }
    rc = TETHER_OK;
out:
    close(fd);
    if (rc != TETHER_OK)
        tether_wipe(out, out_size);
    return rc;
}
