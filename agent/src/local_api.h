/*
 * The agent's local API: HTTP/1.1 over a Unix socket, for the applications
 * on the device that need the access token (DESIGN.md, "Agent").
 *
 *   GET /v1/token   200 {"access_token","token_type":"Bearer","expires_in"}
 *                   503 {"error":"no_token","error_description":...} while
 *                   the agent holds no valid token (it fails closed)
 *   GET /v1/status  200 {"device_id","state","expires_in","fleet",...}
 *
 * Callers are admitted by SO_PEERCRED: their uid or gid must be in the
 * configured lists (the agent's own uid always is). The socket file is
 * created with mode 0660. One request per connection; requests are bounded.
 */
#ifndef TETHER_AGENT_LOCAL_API_H
#define TETHER_AGENT_LOCAL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tether/error.h"

#define TETHER_LOCAL_MAX_REQUEST 4096
#define TETHER_LOCAL_MAX_IDS 32

typedef enum tether_local_route {
    TETHER_LOCAL_TOKEN,
    TETHER_LOCAL_STATUS,
    TETHER_LOCAL_NOT_FOUND,
    TETHER_LOCAL_BAD_METHOD,
} tether_local_route_t;

/* Parses the request head in buf[0..len). TETHER_OK with *route set when a
 * whole head ("...\r\n\r\n") is there, TETHER_ERR_STATE when more bytes are
 * needed, TETHER_ERR_PARSE for a malformed request, TETHER_ERR_TOO_LARGE
 * past TETHER_LOCAL_MAX_REQUEST. Pure. */
TETHER_MUST_CHECK tether_status_t tether_local_request_parse(const char *buf, size_t len,
                                                             tether_local_route_t *route);

typedef struct tether_local_acl {
    uid_t uids[TETHER_LOCAL_MAX_IDS];
    size_t uid_count;
    gid_t gids[TETHER_LOCAL_MAX_IDS];
    size_t gid_count;
} tether_local_acl_t;

/* The uid and gid of the process at the other end of the connected Unix
 * socket fd (SO_PEERCRED, taken when it connected). *uid and *gid are set to
 * -1 on entry, so a failure never leaves them holding another caller's ids;
 * on failure TETHER_ERR_IO with the reason in why. */
TETHER_MUST_CHECK tether_status_t tether_local_peer_credentials(int fd, uid_t *uid, gid_t *gid,
                                                                char *why, size_t why_size);

/* Whether a peer with these credentials may ask (the agent's own uid may). */
bool tether_local_acl_allows(const tether_local_acl_t *acl, uid_t uid, gid_t gid);

/* Creates the listening socket at path (a stale socket file is replaced; any
 * other file there is refused), mode 0660. Returns the fd or -1 with a
 * reason in why. */
int tether_local_listen(const char *path, char *why, size_t why_size);

/* Writes a whole HTTP/1.1 response with a JSON body and closes nothing. */
int tether_local_respond(int fd, int status, const char *json);

#endif
