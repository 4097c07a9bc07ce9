/*
 * The credentials of "Authorization: Basic ..." at fleetd's introspection
 * endpoint (relying parties authenticating as OAuth clients) on arbitrary
 * bytes. Accepted credentials are a non-empty id and secret within their
 * bounds, without NUL, of their stated lengths; a refusal comes with a
 * message and leaves nothing behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tether_client_credentials_t empty;
    tether_client_credentials_t creds;
    char message[TETHER_CLIENT_MESSAGE_SIZE] = "";
    char *value = malloc(size + 1);
    tether_status_t rc;

    if (value == NULL)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0'; /* a header value is a C string: a NUL ends it */
    rc = tether_client_auth_parse_basic(value, &creds, message, sizeof(message));
    if (rc == TETHER_OK) {
        size_t id_len = strlen(creds.id);

        if (id_len == 0 || id_len > TETHER_CLIENT_ID_MAX || creds.secret_len == 0 ||
            creds.secret_len > TETHER_CLIENT_SECRET_MAX ||
            strlen(creds.secret) != creds.secret_len || strlen(value) % 4 != 0)
            abort();
    } else if (rc != TETHER_ERR_PARSE || message[0] == '\0' ||
               memcmp(&creds, &empty, sizeof(creds)) != 0) {
        abort();
    }
    tether_client_credentials_clear(&creds);
    free(value);
    return 0;
}
