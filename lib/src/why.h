/*
 * Internal to lib (not installed): the printf-style message that goes with a
 * refusal, for functions that explain themselves in a (why, why_size)
 * buffer.
 */
#ifndef TETHER_WHY_H
#define TETHER_WHY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "tether/error.h"

/* Writes the message into why (truncated to why_size, always terminated;
 * nothing when why is NULL or why_size is 0) and returns status. */
static inline tether_status_t reason(tether_status_t status, char *why, size_t why_size,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static inline tether_status_t reason(tether_status_t status, char *why, size_t why_size,
                                     const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && why_size > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

#endif
