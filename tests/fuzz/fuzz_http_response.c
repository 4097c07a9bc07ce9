/*
 * The HTTP response parser over whatever a server (or an attacker in its
 * place) may send. Besides memory safety it checks that framing does not
 * depend on when the connection closes: bytes that are complete while the
 * connection is open give the same response after the close, every proper
 * prefix of an accepted response is "incomplete" (never complete, never an
 * error), and an error found with the connection open is the same error
 * after the close.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/http_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_response(const tether_https_response_t *resp, const tether_http_limits_t *limits)
{
    const char *p = resp->headers;

    if (resp->status < 200 || resp->status > 599 || resp->body == NULL ||
        resp->body_len > limits->max_body_bytes || resp->body[resp->body_len] != '\0' ||
        resp->problem != NULL)
        abort();
    /* Every stored field is found again by its name. */
    for (size_t i = 0; i < resp->header_count; i++) {
        const char *value = p + strlen(p) + 1;
        if (tether_https_response_header(resp, p) == NULL)
            abort();
        p = value + strlen(value) + 1;
    }
    if (resp->header_count > 0 && (size_t)(p - resp->headers) != resp->headers_size)
        abort();
}

static void run(const uint8_t *data, size_t size, const tether_http_limits_t *limits)
{
    tether_https_response_t closed, open, prefix;
    tether_status_t rc_closed, rc_open, rc_prefix;
    bool complete = false;

    tether_https_response_init(&closed);
    tether_https_response_init(&open);
    tether_https_response_init(&prefix);
    rc_closed = tether_http_response_parse(data, size, true, limits, &closed, NULL);
    rc_open = tether_http_response_parse(data, size, false, limits, &open, &complete);

    if (rc_closed == TETHER_OK)
        check_response(&closed, limits);
    else if (closed.problem == NULL || closed.body != NULL || closed.status != 0)
        abort();

    if (rc_open == TETHER_OK && complete) {
        check_response(&open, limits);
        if (rc_closed != TETHER_OK || closed.status != open.status ||
            closed.body_len != open.body_len ||
            memcmp(closed.body, open.body, open.body_len) != 0 ||
            closed.header_count != open.header_count)
            abort();
    } else if (rc_open == TETHER_OK) {
        if (open.body != NULL || open.status != 0)
            abort();
    } else if (rc_closed != rc_open) {
        abort();
    }

    if (rc_closed == TETHER_OK && size > 0) {
        size_t cuts[2] = {size / 2, size - 1};
        for (size_t i = 0; i < 2; i++) {
            rc_prefix =
                tether_http_response_parse(data, cuts[i], false, limits, &prefix, &complete);
            if (rc_prefix != TETHER_OK || complete)
                abort();
        }
    }
    tether_https_response_free(&closed);
    tether_https_response_free(&open);
    tether_https_response_free(&prefix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tether_http_limits_t defaults = {
        .max_header_bytes = TETHER_HTTP_DEFAULT_MAX_HEADER_BYTES,
        .max_body_bytes = TETHER_HTTP_DEFAULT_MAX_BODY_BYTES,
    };
    /* Small limits, so that the fuzzer reaches every bound. */
    static const tether_http_limits_t small = {.max_header_bytes = 200, .max_body_bytes = 64};

    run(data, size, &defaults);
    run(data, size, &small);
    return 0;
}
