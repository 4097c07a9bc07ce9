#!/usr/bin/env python3
"""A stand-in for an OpenAI-compatible upstream, for tether-gate's tests.

    openai_upstream.py PORT_FILE RECORD_FILE [--chunk-pause SECONDS]

Listens on loopback (HTTP/1.1, keep-alive) on a free port, written to
PORT_FILE once it is listening. Serves:
  POST /v1/chat/completions  JSON, or SSE when "stream" is true: one chunk
                             per word with a pause between chunks, a final
                             usage chunk when stream_options.include_usage,
                             then [DONE]
  POST /v1/completions       JSON
  POST /v1/embeddings        JSON
  GET  /v1/models            the list below
Every request's method, path, header fields and body are appended to
RECORD_FILE as one JSON line, so tests can assert what arrived (the
client's credentials must not).
The usage it reports is fixed: PROMPT_TOKENS and one completion token per
word of ANSWER.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ["Tether", "keeps", "the", "key", "on", "the", "device."]
PROMPT_TOKENS = 11
MODELS = ["gpt-4o-mini", "gpt-4o", "llama3", "text-embedding-3-small"]

record_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-upstream-standin"
    # Head and body go out in separate writes: without TCP_NODELAY the body
    # waits for the client's delayed ACK (40 ms), which would swamp the
    # figures of bench/gate_proxy.sh.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: the record file says it all
        pass

    def record(self, body):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        with record_lock, open(self.server.record_file, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def usage(self):
        return {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": len(ANSWER),
            "total_tokens": PROMPT_TOKENS + len(ANSWER),
        }

    def do_GET(self):
        self.record(None)
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "standin"} for m in MODELS]})
        else:
            self.send_json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self.record(raw.decode("utf-8", "replace"))
            self.send_json(400, {"error": {"message": "bad JSON", "type": "invalid_request_error"}})
            return
        self.record(body)
        model = body.get("model", "")
        if self.path == "/v1/chat/completions":
            if body.get("stream"):
                self.stream_chat(model, body)
                return
            self.send_json(200, {
                "id": "chatcmpl-standin", "object": "chat.completion", "created": 0,
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": " ".join(ANSWER)}}],
                "usage": self.usage()})
        elif self.path == "/v1/completions":
            self.send_json(200, {
                "id": "cmpl-standin", "object": "text_completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "text": " ".join(ANSWER)}],
                "usage": self.usage()})
        elif self.path == "/v1/embeddings":
            self.send_json(200, {
                "object": "list", "model": model,
                "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 0.125]}],
                "usage": {"prompt_tokens": 5, "total_tokens": 5}})
        else:
            self.send_json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def stream_chat(self, model, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
                "model": model}
        self.chunk(": stand-in stream\r\n\r\n")
        for i, word in enumerate(ANSWER):
            delta = {"content": word if i == 0 else " " + word}
            if i == 0:
                delta["role"] = "assistant"
            event = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}])
            if include_usage:
                event["usage"] = None
            self.chunk("data: %s\n\n" % json.dumps(event))
            time.sleep(self.server.chunk_pause)
        last = dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
        self.chunk("data: %s\n\n" % json.dumps(last))
        if include_usage:
            self.chunk("data: %s\n\n" % json.dumps(dict(base, choices=[], usage=self.usage())))
        self.chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    port_file, record_file = sys.argv[1], sys.argv[2]
    pause = 0.2
    if len(sys.argv) > 4 and sys.argv[3] == "--chunk-pause":
        pause = float(sys.argv[4])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.record_file = record_file
    server.chunk_pause = pause
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
