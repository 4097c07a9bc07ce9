/*
 * What tether-gate reads from, and changes in, an OpenAI-compatible request
 * body before it forwards it: the model, the bounds that price its worst
 * case, and whether the answer streams. Pure (no I/O); the body is
 * untrusted, parsed strictly (lib's tether_json_parse_object: one object,
 * valid UTF-8, no duplicate names) and fuzzed (tests/fuzz/fuzz_gate_request.c).
 *
 * The prompt bound is the body's length in bytes. Byte-level BPE tokenizers
 * (GPT, Llama 3, Mistral, Qwen) emit at most one token per byte of text, and
 * the JSON around each message ("role", quotes, braces: over 20 bytes) is
 * longer than the few tokens a chat template adds per message, so the body
 * outweighs the prompt. Content whose tokens are not bounded by its bytes
 * (image, audio and file parts) is refused.
 */
#ifndef TETHER_GATE_OPENAI_REQUEST_H
#define TETHER_GATE_OPENAI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_GATE_MAX_COMPLETION_TOKENS (1u << 24) /* max_tokens over this: refused */
#define TETHER_GATE_MAX_CHOICES 128                  /* n, best_of, prompts in a batch */

typedef enum tether_gate_endpoint {
    TETHER_GATE_CHAT_COMPLETIONS = 0, /* POST /v1/chat/completions */
    TETHER_GATE_COMPLETIONS,          /* POST /v1/completions */
    TETHER_GATE_EMBEDDINGS,           /* POST /v1/embeddings */
} tether_gate_endpoint_t;

typedef struct tether_gate_request {
    char model[128];
    bool stream;
    uint64_t prompt_bound;     /* tokens, at most */
    uint64_t completion_bound; /* max_tokens x choices x prompts; 0 for embeddings */
    /* The body to forward: malloc'd, body_len bytes plus a NUL; the
     * client's body with max_tokens and stream_options.include_usage set
     * when they had to be. Wiped and freed by tether_gate_request_free. */
    char *body;
    size_t body_len;
} tether_gate_request_t;

/* The endpoint a path names; false for any other path. */
bool tether_gate_endpoint_from_path(const char *path, tether_gate_endpoint_t *endpoint);

void tether_gate_request_init(tether_gate_request_t *request);
void tether_gate_request_free(tether_gate_request_t *request);

/*
 * Reads body[0..len) for endpoint and prepares the body to forward:
 * default_max_tokens (> 0) is injected as max_tokens when the client set
 * neither max_tokens nor max_completion_tokens, and a stream asks for the
 * final usage chunk (stream_options.include_usage true). Returns TETHER_OK,
 * TETHER_ERR_PARSE with a sentence for the client in why (a 400), or
 * TETHER_ERR_NO_MEMORY. request is cleared on entry.
 */
TETHER_MUST_CHECK tether_status_t tether_gate_request_inspect(tether_gate_endpoint_t endpoint,
                                                              const uint8_t *body, size_t len,
                                                              uint64_t default_max_tokens,
                                                              tether_gate_request_t *request,
                                                              char *why, size_t why_size);

#endif
