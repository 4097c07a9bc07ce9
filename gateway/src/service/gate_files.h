/*
 * Files the gateway's configuration names: resolved against the gateway
 * directory, and the secret ones (the relying-party token, the upstream API
 * key) checked before they are read.
 */
#ifndef TETHER_GATE_FILES_H
#define TETHER_GATE_FILES_H

#include <stddef.h>

#include "tether/error.h"

#define TETHER_GATE_SECRET_MAX 4096 /* bytes of a secret file */

/* out = path when absolute, else dir "/" path. */
TETHER_MUST_CHECK tether_status_t tether_gate_file_resolve(const char *dir, const char *path,
                                                           char *out, size_t out_size);

/* Creates path (mode 0600) with data and syncs it; TETHER_ERR_CONFLICT when
 * it exists already (never replaced), TETHER_ERR_IO otherwise. */
TETHER_MUST_CHECK tether_status_t tether_gate_file_create_new(const char *path, const void *data,
                                                              size_t len);

/* Reads a secret file: a regular file (not followed through a symbolic
 * link), owned by the effective user, of mode 0600 or 0400 (nobody else may
 * read it), holding one line of 1 to out_size - 1 visible characters (a
 * final newline is dropped). TETHER_ERR_IO, TETHER_ERR_VERIFY (owner or
 * mode) or TETHER_ERR_PARSE with a sentence in why (why_size bytes) that
 * names the file, never its content. out is wiped on error. */
TETHER_MUST_CHECK tether_status_t tether_gate_secret_file_read(const char *path, char *out,
                                                               size_t out_size, char *why,
                                                               size_t why_size);

#endif
