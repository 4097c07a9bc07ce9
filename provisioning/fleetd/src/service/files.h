/*
 * Directory helpers for the fleet directory. Single files are written and
 * read with lib's tether/file.h (atomic writes, bounded reads).
 */
#ifndef TETHER_FLEET_FILES_H
#define TETHER_FLEET_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tether/error.h"

/* tether_file_write_atomic of dir/name (0600 for keys). */
TETHER_MUST_CHECK tether_status_t tether_fleet_file_write(const char *dir, const char *name,
                                                          const void *data, size_t len,
                                                          mode_t mode);

/* Removes a directory tree that this program created (does not follow
 * symbolic links). Best effort: used to clean up after a failed init. */
void tether_fleet_dir_remove(const char *dir);

/* Reads the secret key file dir/name, exactly size bytes (at most 64), into
 * out. When it does not exist and create is set, a new random key is made
 * first (mode 0600) without ever replacing one that another process made
 * meanwhile: it is written aside, fsynced and hard-linked into place, and
 * whichever file won is read. TETHER_ERR_NOT_FOUND when absent and not
 * created, TETHER_ERR_PARSE for a file of another size. out is wiped on
 * error. */
TETHER_MUST_CHECK tether_status_t tether_fleet_key_file_load(const char *dir, const char *name,
                                                             uint8_t *out, size_t size,
                                                             bool create);

/* What to do, for the messages of tether_fleet_check_owned. */
typedef struct tether_fleet_owned_hints {
    const char *missing; /* appended to "PATH: No such file or directory" ("" for none) */
    const char *owner;   /* another user owns it */
    const char *mode;    /* it is open to group or others, e.g. "chmod 600 it" */
} tether_fleet_owned_hints_t;

/* path must be of the type want (S_IFDIR or S_IFREG; a symbolic link is
 * refused), owned by the user running this and without any mode bit of
 * forbidden; otherwise a log line under component says what is wrong and
 * what to do (hints), and TETHER_ERR_STATE (TETHER_ERR_NOT_FOUND, _IO when
 * it cannot be read). Whoever else could write such a file could swap it
 * (the database under a minted token, a webhook's key); files made by
 * another user than fleetd's (root, say) would lock fleetd out. */
TETHER_MUST_CHECK tether_status_t tether_fleet_check_owned(const char *component,
                                                           const char *path, mode_t want,
                                                           mode_t forbidden,
                                                           const tether_fleet_owned_hints_t *hints);

/* Joins dir and name into out ("dir/name"). */
TETHER_MUST_CHECK tether_status_t tether_fleet_path(char *out, size_t out_size, const char *dir,
                                                    const char *name);

#endif
