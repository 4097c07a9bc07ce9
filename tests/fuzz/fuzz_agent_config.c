/*
 * The agent's config file (allow_uid / allow_gid lines: who may ask for
 * the device's token on the local socket). Whatever parses stays within the
 * list's bound, and written back one id per line parses to the same list.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The ids as the file would list them. */
static size_t write_back(const tether_local_acl_t *acl, char *out, size_t out_size)
{
    size_t n = 0;

    for (size_t i = 0; i < acl->uid_count; i++)
        n += (size_t)snprintf(out + n, out_size - n, "allow_uid = %u\n", (unsigned)acl->uids[i]);
    for (size_t i = 0; i < acl->gid_count; i++)
        n += (size_t)snprintf(out + n, out_size - n, "allow_gid = %u\n", (unsigned)acl->gids[i]);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[2 * TETHER_LOCAL_MAX_IDS * 32];
    tether_local_acl_t acl, again;
    size_t bad_line = 0, len;

    if (size > 65536)
        return 0;
    memset(&acl, 0, sizeof(acl));
    if (tether_agent_config_parse((const char *)data, size, &acl, &bad_line) != TETHER_OK) {
        if (bad_line == 0)
            abort();
        return 0;
    }
    if (bad_line != 0 || acl.uid_count > TETHER_LOCAL_MAX_IDS ||
        acl.gid_count > TETHER_LOCAL_MAX_IDS)
        abort();
    len = write_back(&acl, text, sizeof(text));
    memset(&again, 0, sizeof(again));
    if (tether_agent_config_parse(text, len, &again, &bad_line) != TETHER_OK ||
        memcmp(&acl, &again, sizeof(acl)) != 0)
        abort();
    return 0;
}
