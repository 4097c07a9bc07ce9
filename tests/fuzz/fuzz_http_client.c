/*
 * The client's request path (tether_http_client_exchange) reading a
 * response from a transport that hands it over in pieces. The first byte
 * picks how the stream ends (proven, cut, failed) and the piece size; the
 * rest is the response. A response read in pieces is the one read whole
 * whenever both are accepted (pieces may stop before bytes that follow a
 * complete response, which the whole read refuses), within the limits, and a
 * failure leaves no response behind.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/http_client.h"
#include "tether/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct feed {
    const uint8_t *data;
    size_t size, offset, piece;
    int end;
} feed_t;

static int feed_send(void *context, const uint8_t *buf, size_t len)
{
    (void)context;
    (void)buf;
    return len > INT32_MAX ? INT32_MAX : (int)len;
}

static int feed_recv(void *context, uint8_t *buf, size_t len)
{
    feed_t *f = context;
    size_t n = f->size - f->offset;

    if (n == 0)
        return f->end;
    if (n > f->piece)
        n = f->piece;
    if (n > len)
        n = len;
    memcpy(buf, f->data + f->offset, n);
    f->offset += n;
    return (int)n;
}

static tether_status_t run(feed_t *f, tether_https_response_t *resp)
{
    static const tether_http_client_request_t req = {
        .method = "GET", .authority = "localhost", .prefix = "", .path = "/v1/token"};
    static const tether_http_limits_t limits = {.max_header_bytes = 2048, .max_body_bytes = 4096};
    tether_transport_t t = {.send = feed_send, .recv = feed_recv, .context = f};
    tether_http_client_failure_t failure;

    return tether_http_client_exchange(&t, &req, &limits, resp, &failure);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int ends[] = {0, TETHER_TRANSPORT_CUT, -5};
    tether_https_response_t split, whole;
    feed_t f1, f2;
    tether_status_t rc1, rc2;

    if (size < 1)
        return 0;
    f1 = (feed_t){.data = data + 1, .size = size - 1, .piece = (data[0] >> 2) + 1u,
                  .end = ends[(data[0] & 3) % 3]};
    f2 = f1;
    f2.piece = SIZE_MAX;
    tether_https_response_init(&split);
    tether_https_response_init(&whole);
    rc1 = run(&f1, &split);
    rc2 = run(&f2, &whole);
    if (rc1 == TETHER_OK &&
        (split.status < 100 || split.status > 599 || split.body == NULL || split.body_len > 4096))
        abort();
    if (rc1 == TETHER_OK && rc2 == TETHER_OK &&
        (split.status != whole.status || split.body_len != whole.body_len ||
         memcmp(split.body, whole.body, split.body_len) != 0 ||
         split.header_count != whole.header_count))
        abort();
    if ((rc1 != TETHER_OK && (split.body != NULL || split.status != 0)) ||
        (rc2 != TETHER_OK && (whole.body != NULL || whole.status != 0)))
        abort();
    tether_https_response_free(&split);
    tether_https_response_free(&whole);
    return 0;
}
