/* tetherctl: the admin token file and input files. lib's tether_file_read
 * is not used: it refuses symlinks (mounted secrets are symlinks) and pipes,
 * and the token file's mode must be checked on the descriptor that is read. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tetherctl.h"
#include "tether/bytes.h"

/* Reads from fd until end of file or until more than max bytes arrived;
 * *len is the count (max + 1 means "too large"). */
static tether_status_t read_bounded(int fd, char *buf, size_t max, size_t *len)
{
    size_t got = 0;

    while (got <= max) {
        ssize_t n = read(fd, buf + got, max + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return TETHER_ERR_IO;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *len = got;
    return TETHER_OK;
}

static int open_input(const char *path)
{
    int fd;

    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

tether_status_t ctl_token_file_read(const char *path, char token[TETHER_SECRET_TOKEN_SIZE],
                                    char *message, size_t message_size)
{
    char buf[CTL_TOKEN_FILE_MAX + 1];
    const char *boot = tether_secret_token_prefix(TETHER_SECRET_BOOTSTRAP);
    struct stat st;
    size_t len = 0;
    int fd = -1;
    tether_status_t rc;

    if (path == NULL || token == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(token, 0, TETHER_SECRET_TOKEN_SIZE);
    if ((fd = open_input(path)) < 0) {
        int e = errno;
        rc = tether_explain(e == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_IO, message,
                            message_size, "cannot open the admin token file %s: %s", path,
                            strerror(e));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        rc = tether_explain(TETHER_ERR_IO, message, message_size,
                            "the admin token file %s is not a regular file or a pipe", path);
        goto out;
    }
    /* A token others can read is a token others hold. Pipes are private to
     * the processes that share them. */
    if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        rc = tether_explain(TETHER_ERR_STATE, message, message_size,
                            "the admin token file %s is open to group or others (mode %04o); "
                            "make it private: chmod 600 %s",
                            path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if ((rc = read_bounded(fd, buf, CTL_TOKEN_FILE_MAX, &len)) != TETHER_OK) {
        rc = tether_explain(rc, message, message_size, "cannot read the admin token file %s: %s",
                            path, strerror(errno));
        goto out;
    }
    if (len > CTL_TOKEN_FILE_MAX) {
        rc = tether_explain(TETHER_ERR_TOO_LARGE, message, message_size,
                            "the admin token file %s is larger than %d bytes; it must hold one "
                            "tthr_adm_ token",
                            path, CTL_TOKEN_FILE_MAX);
        goto out;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    if (len == 0) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the admin token file %s is empty", path);
        goto out;
    }
    if (len >= strlen(boot) && memcmp(buf, boot, strlen(boot)) == 0) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the admin token file %s holds a device bootstrap token (tthr_boot_), "
                            "not an admin token (tthr_adm_)",
                            path);
        goto out;
    }
    if (len <= TETHER_SECRET_TOKEN_MAX_LEN)
        rc = tether_secret_token_check_format(buf, len, TETHER_SECRET_ADMIN);
    if (len > TETHER_SECRET_TOKEN_MAX_LEN || rc == TETHER_ERR_PARSE) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the admin token file %s does not hold one admin token (tthr_adm_ and "
                            "%d base62 characters, nothing else)",
                            path, TETHER_SECRET_BODY_LEN + TETHER_SECRET_CHECKSUM_LEN);
        goto out;
    }
    if (rc != TETHER_OK) {
        rc = tether_explain(
            TETHER_ERR_VERIFY, message, message_size,
            "the admin token in %s fails its checksum: it was mistyped or cut short", path);
        goto out;
    }
    memcpy(token, buf, len);
    token[len] = '\0';
out:
    if (rc != TETHER_OK)
        tether_wipe(token, TETHER_SECRET_TOKEN_SIZE);
    tether_wipe(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return rc;
}

tether_status_t ctl_input_read(const char *path, size_t max, char **data, size_t *len,
                               char *message, size_t message_size)
{
    bool is_stdin;
    char *buf = NULL;
    size_t got = 0;
    int fd;
    tether_status_t rc;

    if (path == NULL || data == NULL || len == NULL || max == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    *data = NULL;
    *len = 0;
    is_stdin = strcmp(path, "-") == 0;
    fd = is_stdin ? STDIN_FILENO : open_input(path);
    if (fd < 0) {
        int e = errno;
        return tether_explain(e == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_IO, message,
                              message_size, "cannot open %s: %s", path, strerror(e));
    }
    if ((buf = malloc(max + 2)) == NULL) {
        rc = tether_explain(TETHER_ERR_NO_MEMORY, message, message_size, "out of memory reading %s",
                            path);
        goto out;
    }
    if ((rc = read_bounded(fd, buf, max, &got)) != TETHER_OK) {
        rc = tether_explain(rc, message, message_size, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (got > max) {
        rc = tether_explain(TETHER_ERR_TOO_LARGE, message, message_size,
                            "%s is larger than %zu bytes", is_stdin ? "standard input" : path, max);
        goto out;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
out:
    if (buf != NULL)
        tether_wipe(buf, max + 2); /* the text may hold secrets (revoke-leaked) */
    free(buf);
    if (!is_stdin)
        close(fd);
    return rc;
}
