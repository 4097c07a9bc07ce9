#include "tether/secure_memory.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tether/bytes.h"

tether_status_t tether_secure_buffer_alloc(tether_secure_buffer_t *buf, size_t size,
                                           int allow_unlocked)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t mapped;
    void *p;

    if (buf == NULL || size == 0 || page <= 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(buf, 0, sizeof(*buf));
    if (size > SIZE_MAX - (size_t)page)
        return TETHER_ERR_TOO_LARGE;
    mapped = (size + (size_t)page - 1) / (size_t)page * (size_t)page;
    p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return TETHER_ERR_NO_MEMORY;
    (void)madvise(p, mapped, MADV_DONTDUMP);
    if (mlock(p, mapped) == 0) {
        buf->locked = 1;
    } else if (!allow_unlocked) {
        munmap(p, mapped);
        return TETHER_ERR_NO_MEMORY;
    }
    buf->data = p;
    buf->size = size;
    buf->mapped = mapped;
    return TETHER_OK;
}

void tether_secure_buffer_free(tether_secure_buffer_t *buf)
{
    if (buf == NULL)
        return;
    if (buf->data != NULL) {
        tether_wipe(buf->data, buf->mapped);
        if (buf->locked)
            munlock(buf->data, buf->mapped);
        munmap(buf->data, buf->mapped);
    }
    memset(buf, 0, sizeof(*buf));
}
