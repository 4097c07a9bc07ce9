/* Measured boot in the exchange, the agent's side (exchange_eventlogs.h). */
#include "exchange_eventlogs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure_cmd.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/crypto.h"
#include "tether/file.h"

/* "" or a SHA-256 in lowercase hex (the fleet writes one spelling). */
static bool held_hash(const cJSON *item, char out[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1])
{
    const char *text;
    size_t len;

    if (!cJSON_IsString(item))
        return false;
    text = item->valuestring;
    len = strlen(text);
    if (len != 0 && (len != TETHER_EVENTLOG_WIRE_SHA256_HEX ||
                     strspn(text, "0123456789abcdef") != TETHER_EVENTLOG_WIRE_SHA256_HEX))
        return false;
    memcpy(out, text, len + 1);
    return true;
}

tether_status_t tether_agent_measured_boot_read(const cJSON *challenge,
                                                tether_agent_measured_boot_t *mb)
{
    const cJSON *member;

    memset(mb, 0, sizeof(*mb));
    member = cJSON_GetObjectItemCaseSensitive(challenge, TETHER_EVENTLOG_WIRE_CHALLENGE);
    if (member == NULL)
        return TETHER_OK;
    if (!cJSON_IsObject(member) || cJSON_GetArraySize(member) != 2 ||
        !held_hash(cJSON_GetObjectItemCaseSensitive(member, TETHER_EVENTLOG_WIRE_PLATFORM_SHA256),
                   mb->platform_held) ||
        !held_hash(cJSON_GetObjectItemCaseSensitive(member, TETHER_EVENTLOG_WIRE_TETHER_SHA256),
                   mb->tether_held)) {
        memset(mb, 0, sizeof(*mb));
        return TETHER_ERR_PARSE;
    }
    mb->asked = true;
    return TETHER_OK;
}

/* One log as the form carries it. */
typedef struct eventlog {
    const char *what; /* for messages */
    const char *hash_name;
    const char *log_name;
    const char *held;
    uint8_t *bytes;
    size_t len;
    char hash[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1];
    bool send; /* its bytes go too */
} eventlog_t;

/* Reads path (at most max bytes; absent: empty) and hashes it. */
static tether_status_t eventlog_load(eventlog_t *log, const char *path, size_t max, char *why,
                                     size_t why_size)
{
    uint8_t digest[TETHER_SHA256_SIZE];
    tether_status_t rc;

    /* securityfs reports a size of 0: read to the end, bounded. */
    rc = tether_file_read_to_end(path, max, &log->bytes, &log->len);
    if (rc == TETHER_ERR_NOT_FOUND) {
        log->bytes = NULL;
        log->len = 0;
        rc = TETHER_OK;
    }
    if (rc == TETHER_ERR_TOO_LARGE)
        return tether_explain(rc, why, why_size,
                              "the %s log %s is larger than the %zu bytes an exchange carries",
                              log->what, path, max);
    if (rc != TETHER_OK)
        return tether_explain(rc, why, why_size, "cannot read the %s log %s: %s", log->what,
                              path, tether_strerror(rc));
    if ((rc = tether_sha256(log->bytes, log->len, digest)) != TETHER_OK ||
        (rc = tether_hex_encode(digest, sizeof(digest), log->hash, sizeof(log->hash))) !=
            TETHER_OK)
        return tether_explain(rc, why, why_size, "cannot hash the %s log", log->what);
    /* An empty log needs no bytes: its hash says it all. */
    log->send = log->len > 0 && strcmp(log->hash, log->held) != 0;
    return TETHER_OK;
}

/* The room a log's parameters take, NUL not included. */
static size_t eventlog_room(const eventlog_t *log)
{
    size_t room = 2 + strlen(log->hash_name) + TETHER_EVENTLOG_WIRE_SHA256_HEX;

    if (log->send)
        room += 2 + strlen(log->log_name) + TETHER_BASE64URL_ENCODED_LEN(log->len);
    return room;
}

/* Appends a log's parameters at out + *at (room checked by the caller). */
static tether_status_t eventlog_append(const eventlog_t *log, char *out, size_t size, size_t *at)
{
    size_t written = 0;
    tether_status_t rc;

    *at += (size_t)snprintf(out + *at, size - *at, "&%s=%s", log->hash_name, log->hash);
    if (!log->send)
        return TETHER_OK;
    *at += (size_t)snprintf(out + *at, size - *at, "&%s=", log->log_name);
    if ((rc = tether_base64url_encode(log->bytes, log->len, out + *at, size - *at, &written)) !=
        TETHER_OK)
        return rc;
    *at += written;
    return TETHER_OK;
}

tether_status_t tether_agent_eventlog_params(const tether_agent_measured_boot_t *mb,
                                             const tether_agent_eventlog_paths_t *paths,
                                             char **params, size_t *sent_bytes, char *why,
                                             size_t why_size)
{
    eventlog_t logs[2] = {
        {.what = "platform",
         .hash_name = TETHER_EVENTLOG_WIRE_PLATFORM_SHA256,
         .log_name = TETHER_EVENTLOG_WIRE_PLATFORM_LOG,
         .held = mb->platform_held},
        {.what = "tether",
         .hash_name = TETHER_EVENTLOG_WIRE_TETHER_SHA256,
         .log_name = TETHER_EVENTLOG_WIRE_TETHER_LOG,
         .held = mb->tether_held},
    };
    const char *platform_path = paths != NULL && paths->platform != NULL
                                    ? paths->platform
                                    : TETHER_AGENT_DEFAULT_PLATFORM_EVENTLOG;
    const char *tether_path =
        paths != NULL && paths->tether != NULL ? paths->tether : TETHER_MEASURE_DEFAULT_LOG;
    size_t size, at = 0;
    char *out = NULL;
    tether_status_t rc;

    *params = NULL;
    *sent_bytes = 0;
    if ((rc = eventlog_load(&logs[0], platform_path, TETHER_EVENTLOG_WIRE_PLATFORM_MAX, why,
                            why_size)) != TETHER_OK ||
        (rc = eventlog_load(&logs[1], tether_path, TETHER_EVENTLOG_WIRE_TETHER_MAX, why,
                            why_size)) != TETHER_OK)
        goto out;
    size = eventlog_room(&logs[0]) + eventlog_room(&logs[1]) + 1;
    if ((out = malloc(size)) == NULL) {
        rc = tether_explain(TETHER_ERR_NO_MEMORY, why, why_size, "out of memory");
        goto out;
    }
    out[0] = '\0';
    for (size_t i = 0; i < 2; i++) {
        if ((rc = eventlog_append(&logs[i], out, size, &at)) != TETHER_OK) {
            rc = tether_explain(rc, why, why_size, "cannot encode the %s log", logs[i].what);
            goto out;
        }
        if (logs[i].send)
            *sent_bytes += logs[i].len;
    }
    *params = out;
    out = NULL;
out:
    if (rc != TETHER_OK)
        *sent_bytes = 0;
    free(out);
    free(logs[0].bytes);
    free(logs[1].bytes);
    return rc;
}
