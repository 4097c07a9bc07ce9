/* The cursor of the canonical-form readers (canonical_reader.h). */
#include "tether/canonical_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

tether_status_t tether_canonical_fail(tether_canonical_reader_t *r, const char *fmt, ...)
{
    char what[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (r->why_size > 0)
        snprintf(r->why, r->why_size, "%s, byte %zu: %s", r->what, r->pos, what);
    return TETHER_ERR_PARSE;
}

bool tether_canonical_take(tether_canonical_reader_t *r, const char *text)
{
    size_t n = strlen(text);

    if (r->len - r->pos < n || memcmp(r->data + r->pos, text, n) != 0)
        return false;
    r->pos += n;
    return true;
}

tether_status_t tether_canonical_expect(tether_canonical_reader_t *r, const char *text)
{
    return tether_canonical_take(r, text) ? TETHER_OK
                                          : tether_canonical_fail(r, "expected %s", text);
}
