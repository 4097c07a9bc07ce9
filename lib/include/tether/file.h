/*
 * Files that survive a crash intact (written whole or not at all), bounded
 * reads, and removal of secret files. Plain POSIX, used by the device and
 * the fleet side alike.
 */
#ifndef TETHER_FILE_H
#define TETHER_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tether/error.h"

#define TETHER_FILE_MAX 65536 /* largest file tether reads whole */

/* Writes data to path atomically: a temporary file in the same folder,
 * fsync, rename over path, fsync of the folder. After a crash, path holds
 * either the old or the new content, never a mix. mode applies to the new
 * file (e.g. 0600). */
TETHER_MUST_CHECK tether_status_t tether_file_write_atomic(const char *path, const void *data,
                                                           size_t len, mode_t mode);

/* Like tether_file_write_atomic, but never replaces: if path exists (made
 * meanwhile by another process, say), it stays as it is and the call
 * succeeds; the caller reads whichever file is in place. For keys that
 * several processes may create at once. */
TETHER_MUST_CHECK tether_status_t tether_file_create_once(const char *path, const void *data,
                                                          size_t len, mode_t mode);

/* fsync()s a folder, so that the renames and links inside it are durable. */
TETHER_MUST_CHECK tether_status_t tether_dir_sync(const char *dir);

/* Reads a whole regular file of at most max bytes into a heap buffer (with a
 * NUL after the data, not counted in *len), freed by the caller.
 * TETHER_ERR_NOT_FOUND if it does not exist, TETHER_ERR_TOO_LARGE over max,
 * TETHER_ERR_IO otherwise. */
TETHER_MUST_CHECK tether_status_t tether_file_read(const char *path, size_t max, uint8_t **data,
                                                   size_t *len);

/* Like tether_file_read, for files whose size cannot be known beforehand
 * (securityfs and procfs report 0, a pipe none): reads to the end of the
 * file, any kind of file but a symbolic link, and stops with
 * TETHER_ERR_TOO_LARGE once more than max bytes come. Not for secret files: the buffer grows by realloc,
 * which leaves copies unwiped. */
TETHER_MUST_CHECK tether_status_t tether_file_read_to_end(const char *path, size_t max,
                                                          uint8_t **data, size_t *len);

/* Overwrites a file's content with zeros, syncs it and removes it: for files
 * that held a secret (bootstrap tokens). A missing file is not an error. */
TETHER_MUST_CHECK tether_status_t tether_file_wipe_remove(const char *path);

/* Creates a folder with mode 0700 if it does not exist; refuses an existing
 * one that is not a folder or that others may write. */
TETHER_MUST_CHECK tether_status_t tether_dir_ensure_private(const char *path);

#endif
