/*
 * Locked memory for secrets on the device (DESIGN.md, "Keys on the
 * device"): buffers that are never swapped out, never written into a core
 * dump, and wiped when released. The process itself is protected with lib's
 * tether_process_protect (tether/process.h).
 */
#ifndef TETHER_SECURE_MEMORY_H
#define TETHER_SECURE_MEMORY_H

#include <stddef.h>

#include "tether/error.h"

typedef struct tether_secure_buffer {
    unsigned char *data; /* size bytes, zeroed at allocation */
    size_t size;
    size_t mapped;       /* whole pages mapped */
    int locked;          /* mlock succeeded */
} tether_secure_buffer_t;

/* Maps size bytes on their own pages, mlock()s them (TETHER_ERR_NO_MEMORY
 * when the memlock limit refuses, unless allow_unlocked is set, in which
 * case locked stays 0) and excludes them from core dumps. */
TETHER_MUST_CHECK tether_status_t tether_secure_buffer_alloc(tether_secure_buffer_t *buf,
                                                             size_t size, int allow_unlocked);

/* Wipes, unlocks and unmaps; accepts a zeroed struct. */
void tether_secure_buffer_free(tether_secure_buffer_t *buf);

#endif
