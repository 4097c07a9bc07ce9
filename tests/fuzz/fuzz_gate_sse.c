/*
 * tether-gate's reader of an upstream's server-sent events, with the usage
 * counter on top. The input is fed twice, whole and split at a point taken
 * from its first byte: both must end in the same status with the same
 * events and usage, since a stream may arrive in pieces of any size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/gate/sse.h"
#include "tether/gate/usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct outcome {
    tether_status_t status;
    size_t events;
    tether_gate_usage_t usage;
} outcome_t;

static void run(const uint8_t *data, size_t size, size_t split, outcome_t *out)
{
    tether_sse_parser_t parser;

    memset(out, 0, sizeof(*out));
    tether_sse_parser_init(&parser);
    if (tether_sse_parser_setup(&parser, tether_gate_usage_on_event, &out->usage) != TETHER_OK)
        abort();
    out->status = tether_sse_parser_feed(&parser, data, split);
    out->status = tether_sse_parser_feed(&parser, data + split, size - split);
    out->events = parser.events;
    tether_sse_parser_free(&parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome_t whole, split;

    run(data, size, 0, &whole);
    run(data, size, size > 0 ? data[0] % (size + 1) : 0, &split);
    if (whole.status != split.status || whole.events != split.events ||
        memcmp(&whole.usage, &split.usage, sizeof(whole.usage)) != 0)
        abort();
    if (whole.usage.found && whole.usage.prompt_tokens > TETHER_GATE_MAX_USAGE_TOKENS)
        abort();
    return 0;
}
