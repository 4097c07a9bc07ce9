#include "introspect_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form_urlencoded.h"
#include "tether/bytes.h"

/* The decoded name, when it is one tether knows. */
typedef enum param {
    PARAM_OTHER = 0,
    PARAM_TOKEN,
    PARAM_HINT,
    PARAM_CLIENT_ID,     /* RFC 6749 section 2.3.1, in the body */
    PARAM_CLIENT_SECRET,
} param_t;

static const char *const param_names[] = {NULL, "token", "token_type_hint", "client_id",
                                          "client_secret"};

static bool decode_name(const char *text, size_t len, param_t *param)
{
    char name[32];
    tether_form_sink_t sink = {name, sizeof(name), 0, false};

    *param = PARAM_OTHER;
    if (!tether_form_decode(text, len, &sink))
        return false;
    for (size_t i = PARAM_TOKEN; !sink.overflowed && i <= PARAM_CLIENT_SECRET; i++) {
        if (strcmp(name, param_names[i]) == 0)
            *param = (param_t)i;
    }
    return true;
}

/* Where the value of a known parameter goes; a sink that only validates
 * for the others (and for the hint, which is ignored). */
static tether_form_sink_t value_sink(tether_introspect_request_t *req, param_t param)
{
    switch (param) {
    case PARAM_TOKEN:
        return (tether_form_sink_t){req->token, sizeof(req->token), 0, false};
    case PARAM_CLIENT_ID:
        return (tether_form_sink_t){req->client.id, sizeof(req->client.id), 0, false};
    case PARAM_CLIENT_SECRET:
        return (tether_form_sink_t){req->client.secret, sizeof(req->client.secret), 0, false};
    case PARAM_OTHER:
    case PARAM_HINT:
        break;
    }
    return (tether_form_sink_t){NULL, 0, 0, false};
}

tether_status_t tether_introspect_request_parse(const char *body, size_t len,
                                                tether_introspect_request_t *req, char *message,
                                                size_t message_size)
{
    size_t pos = 0, pairs = 0;
    bool seen[PARAM_CLIENT_SECRET + 1] = {false};
    tether_status_t rc = TETHER_OK;

    if (req == NULL || (body == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    tether_introspect_request_clear(req);
    while (rc == TETHER_OK && pos < len) {
        const char *pair = body + pos;
        const char *amp = memchr(pair, '&', len - pos);
        size_t pair_len = amp != NULL ? (size_t)(amp - pair) : len - pos;
        const char *eq = memchr(pair, '=', pair_len);
        size_t name_len = eq != NULL ? (size_t)(eq - pair) : pair_len;
        const char *value = eq != NULL ? eq + 1 : pair + pair_len;
        size_t value_len = pair_len - name_len - (eq != NULL ? 1 : 0);
        tether_form_sink_t sink;
        param_t param;

        pos += pair_len + (amp != NULL ? 1 : 0);
        if (pair_len == 0)
            continue;
        if (++pairs > TETHER_INTROSPECT_MAX_PARAMS) {
            rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                "more than %d form parameters", TETHER_INTROSPECT_MAX_PARAMS);
            break;
        }
        if (!decode_name(pair, name_len, &param)) {
            rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                "a form parameter name is not form-urlencoded");
            break;
        }
        /* Checked even when ignored: one malformed byte anywhere and the
         * whole body is refused. A parameter without a value is absent. */
        sink = value_sink(req, value_len > 0 ? param : PARAM_OTHER);
        if (param != PARAM_OTHER && value_len > 0) {
            if (seen[param]) {
                rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                    "%s is given more than once", param_names[param]);
                break;
            }
            seen[param] = true;
        }
        if (!tether_form_decode(value, value_len, &sink)) {
            rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                "%s is not form-urlencoded",
                                param != PARAM_OTHER ? param_names[param] : "a form parameter");
            break;
        }
        if (sink.out == req->token) {
            req->too_long = sink.overflowed;
            req->token_len = sink.overflowed ? 0 : sink.len;
            if (sink.overflowed)
                tether_wipe(req->token, sizeof(req->token));
        } else if (sink.out == req->client.secret) {
            req->client.secret_len = sink.len;
        }
        if (sink.out != NULL && sink.out != req->token && sink.overflowed)
            rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                "%s is longer than any this fleet issues", param_names[param]);
    }
    if (rc == TETHER_OK && !seen[PARAM_TOKEN])
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "send the token to introspect as the form parameter "
                            "token (application/x-www-form-urlencoded)");
    if (rc == TETHER_OK) {
        req->has_client_id = seen[PARAM_CLIENT_ID];
        req->has_client_secret = seen[PARAM_CLIENT_SECRET];
    }
    if (rc != TETHER_OK)
        tether_introspect_request_clear(req);
    return rc;
}

tether_status_t tether_introspect_request_client(const char *body, size_t len,
                                                 tether_client_credentials_t *creds)
{
    tether_introspect_request_t *req = malloc(sizeof(*req));
    tether_status_t rc = TETHER_ERR_NO_MEMORY;

    tether_client_credentials_clear(creds);
    if (req == NULL || creds == NULL)
        goto out;
    rc = tether_introspect_request_parse(body, len, req, NULL, 0);
    if (rc == TETHER_OK && !req->has_client_secret)
        rc = TETHER_ERR_NOT_FOUND;
    if (rc == TETHER_OK)
        *creds = req->client;
out:
    tether_introspect_request_clear(req);
    free(req);
    return rc;
}

void tether_introspect_request_clear(tether_introspect_request_t *req)
{
    if (req != NULL)
        tether_wipe(req, sizeof(*req));
}
