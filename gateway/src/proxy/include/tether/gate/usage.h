/*
 * The usage an OpenAI-compatible upstream reports: "usage.prompt_tokens"
 * and "usage.completion_tokens" in a JSON answer, and for a stream the same
 * object in its final chunk (asked for with stream_options.include_usage).
 * Pure; the upstream's bytes are read strictly (lib's
 * tether_json_parse_object) and never logged.
 */
#ifndef TETHER_GATE_USAGE_H
#define TETHER_GATE_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"
#include "tether/gate/sse.h"

#define TETHER_GATE_MAX_USAGE_TOKENS (1ull << 40) /* a count over this is refused */

typedef struct tether_gate_usage {
    bool found;       /* a usage object was read */
    bool done;        /* a stream's "[DONE]" was read */
    uint64_t prompt_tokens;
    uint64_t completion_tokens; /* 0 when absent (embeddings) */
} tether_gate_usage_t;

/*
 * Reads the usage member of the JSON object text[0..len) into *usage
 * (found true) when it is present and not null; *usage is left as it was
 * otherwise, so that a stream's chunks accumulate into one. TETHER_ERR_PARSE when the text
 * is not one strict JSON object or usage is malformed (counts must be
 * integers from 0 to TETHER_GATE_MAX_USAGE_TOKENS).
 */
TETHER_MUST_CHECK tether_status_t tether_gate_usage_read(const char *text, size_t len,
                                                         tether_gate_usage_t *usage);

/* A tether_sse_event_fn over a tether_gate_usage_t (arg): each chunk's
 * usage, the last one present winning; "[DONE]" ends the stream, and any
 * event after it is a protocol error. */
TETHER_MUST_CHECK tether_status_t tether_gate_usage_on_event(void *arg, const char *data,
                                                             size_t data_len);

#endif
