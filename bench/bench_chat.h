/*
 * The chat completion the gateway benchmarks send (bench_gate_proxy.c,
 * bench_gate_load.c), not streamed and streamed: one model the stand-in
 * and the gateway's price table know, a short answer.
 */
#ifndef TETHER_BENCH_CHAT_H
#define TETHER_BENCH_CHAT_H

static const char chat_body[] =
    "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Who holds the key?\"}]}";
static const char stream_body[] =
    "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Who holds the key?\"}]}";

#endif
