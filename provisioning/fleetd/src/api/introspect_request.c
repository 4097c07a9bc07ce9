#include "introspect_request.h"

#include <stdio.h>
#include <string.h>

#include "tether/bytes.h"

/* What a parameter's name or value decodes into. */
typedef struct sink {
    char *out;       /* NULL: decode only to validate */
    size_t size;     /* bytes available in out, NUL included */
    size_t len;      /* bytes decoded so far */
    bool overflowed; /* more than size - 1 bytes */
} sink_t;

static void put(sink_t *sink, char c)
{
    if (sink->out != NULL && sink->len + 1 < sink->size)
        sink->out[sink->len] = c;
    else
        sink->overflowed = true;
    sink->len++;
}

/* Decodes text[0..len) into sink ('+' is a space, %XX a byte). */
static bool decode(const char *text, size_t len, sink_t *sink)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (c == '%') {
            int hi, lo;

            if (len - i < 3 || (hi = tether_hex_digit((unsigned char)text[i + 1])) < 0 ||
                (lo = tether_hex_digit((unsigned char)text[i + 2])) < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0')
            return false;
        put(sink, c);
    }
    if (sink->out != NULL && sink->size > 0)
        sink->out[sink->len < sink->size ? sink->len : sink->size - 1] = '\0';
    return true;
}

/* The decoded name, when it is one tether knows: "token" or "token_type_hint". */
typedef enum param {
    PARAM_OTHER = 0,
    PARAM_TOKEN,
    PARAM_HINT,
} param_t;

static bool decode_name(const char *text, size_t len, param_t *param)
{
    char name[32];
    sink_t sink = {name, sizeof(name), 0, false};

    *param = PARAM_OTHER;
    if (!decode(text, len, &sink))
        return false;
    if (!sink.overflowed && strcmp(name, "token") == 0)
        *param = PARAM_TOKEN;
    else if (!sink.overflowed && strcmp(name, "token_type_hint") == 0)
        *param = PARAM_HINT;
    return true;
}

tether_status_t tether_introspect_request_parse(const char *body, size_t len,
                                                tether_introspect_request_t *req, char *message,
                                                size_t message_size)
{
    size_t pos = 0, pairs = 0;
    bool seen_token = false, seen_hint = false;
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
        if (param == PARAM_TOKEN && value_len > 0) {
            sink_t sink = {req->token, sizeof(req->token), 0, false};

            if (seen_token) {
                rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                    "token is given more than once");
                break;
            }
            seen_token = true;
            if (!decode(value, value_len, &sink)) {
                rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                    "token is not form-urlencoded");
                break;
            }
            req->too_long = sink.overflowed;
            req->token_len = sink.overflowed ? 0 : sink.len;
            if (sink.overflowed)
                tether_wipe(req->token, sizeof(req->token));
        } else {
            /* Checked even when ignored: one malformed byte anywhere and
             * the whole body is refused. */
            sink_t sink = {NULL, 0, 0, false};

            if (param == PARAM_HINT && value_len > 0) {
                if (seen_hint) {
                    rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                        "token_type_hint is given more than once");
                    break;
                }
                seen_hint = true;
            }
            if (!decode(value, value_len, &sink))
                rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                                    "a form parameter is not form-urlencoded");
        }
    }
    if (rc == TETHER_OK && !seen_token)
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "send the token to introspect as the form parameter "
                            "token (application/x-www-form-urlencoded)");
    if (rc != TETHER_OK)
        tether_introspect_request_clear(req);
    return rc;
}

void tether_introspect_request_clear(tether_introspect_request_t *req)
{
    if (req != NULL)
        tether_wipe(req, sizeof(*req));
}
