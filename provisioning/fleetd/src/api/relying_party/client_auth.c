#include "client_auth.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "form_urlencoded.h"
#include "tether/base64url.h"
#include "tether/bytes.h"

/* The raw "id:secret" at most, percent-encoded in full. */
#define RAW_MAX (3 * (TETHER_CLIENT_ID_MAX + TETHER_CLIENT_SECRET_MAX) + 1)

/* Standard base64 with padding (RFC 4648 section 4) into out, through
 * lib's strict base64url decoder: the alphabet's two symbols are mapped
 * and the padding must be exactly what the length asks. */
static bool base64_decode(const char *text, size_t len, uint8_t *out, size_t out_size,
                          size_t *out_len)
{
    char mapped[TETHER_CLIENT_BASIC_MAX];
    size_t pad = 0;
    bool ok = len > 0 && len % 4 == 0 && len <= sizeof(mapped);

    *out_len = 0;
    while (ok && pad < 2 && text[len - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; ok && i < len - pad; i++) {
        char c = text[i];

        ok = c != '-' && c != '_' && c != '=';
        mapped[i] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    /* Padding fills the last group to four: 2 characters and "==", 3 and "=". */
    ok = ok && pad == (4 - (len - pad) % 4) % 4;
    ok = ok && tether_base64url_decode(mapped, len - pad, out, out_size, out_len) == TETHER_OK;
    tether_wipe(mapped, sizeof(mapped));
    return ok;
}

/* One form-urlencoded part into out (size bytes with the NUL): not empty,
 * not longer. */
static bool decode_part(const char *text, size_t len, char *out, size_t size, size_t *out_len)
{
    tether_form_sink_t sink = {out, size, 0, false};
    bool ok = len > 0 && tether_form_decode(text, len, &sink) && !sink.overflowed && sink.len > 0;

    *out_len = ok ? sink.len : 0;
    return ok;
}

tether_status_t tether_client_auth_parse_basic(const char *value,
                                               tether_client_credentials_t *creds, char *message,
                                               size_t message_size)
{
    uint8_t raw[RAW_MAX + 1];
    size_t raw_len = 0, id_len = 0, colon;
    const uint8_t *found;
    tether_status_t rc = TETHER_OK;

    if (creds == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    tether_client_credentials_clear(creds);
    if (value == NULL || !base64_decode(value, strlen(value), raw, RAW_MAX, &raw_len)) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the Basic credentials are not padded base64 of at most %d bytes",
                            RAW_MAX);
        goto out;
    }
    /* RFC 7617 section 2: the user id holds no ':'; the password may. */
    if ((found = memchr(raw, ':', raw_len)) == NULL) {
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the Basic credentials are not client_id:client_secret");
        goto out;
    }
    colon = (size_t)(found - raw);
    if (!decode_part((const char *)raw, colon, creds->id, sizeof(creds->id), &id_len) ||
        !decode_part((const char *)raw + colon + 1, raw_len - colon - 1, creds->secret,
                     sizeof(creds->secret), &creds->secret_len))
        rc = tether_explain(TETHER_ERR_PARSE, message, message_size,
                            "the client id or secret is empty, too long or not form-urlencoded");
out:
    tether_wipe(raw, sizeof(raw));
    if (rc != TETHER_OK)
        tether_client_credentials_clear(creds);
    return rc;
}

void tether_client_credentials_clear(tether_client_credentials_t *creds)
{
    if (creds != NULL)
        tether_wipe(creds, sizeof(*creds));
}
