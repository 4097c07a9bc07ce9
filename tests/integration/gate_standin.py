#!/usr/bin/env python3
"""A stand-in AI gateway for the agent's tests: checks what tether-gate
checks of each request and answers in the OpenAI wire format.

    gate_standin.py PORT JKT DPOP_PROBE LOG

Every request must carry `Authorization: DPoP <token>` and a `DPoP` proof
that lib's verifier (the dpop_probe program) accepts for this request's
method and URL against JKT (the token's cnf.jkt) and the gateway's current
nonce; a proof without that nonce gets the RFC 9449 challenge (401,
WWW-Authenticate: DPoP error="use_dpop_nonce", DPoP-Nonce). Each request
is logged as one JSON line in LOG. Prints "ready" when listening.
"""
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, JKT, PROBE, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
NONCE = "gate-nonce-1"
log_lock = threading.Lock()


def record(entry):
    with log_lock, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Gate(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def check(self):
        """The gateway's checks: None when the request may go on."""
        auth = self.headers.get("Authorization", "")
        entry = {
            "method": self.command,
            "path": self.path,
            "scheme": auth.split(" ")[0],
            "token": auth[5:] if auth.startswith("DPoP ") else "",
            "app_secret_seen": "sk-app-secret" in str(self.headers),
            "authorization_headers": len(self.headers.get_all("Authorization") or []),
        }
        proof = self.headers.get("DPoP", "")
        url = "http://127.0.0.1:%d%s" % (PORT, self.path.split("?")[0])
        out = subprocess.run([PROBE, JKT, entry["token"], proof, self.command, url, NONCE],
                             capture_output=True, text=True)
        entry["verdict"] = out.stdout.split(" ")[0].strip() or "no_proof"
        record(entry)
        if entry["scheme"] != "DPoP" or not proof:
            self.answer(401, {"error": {"code": "dpop_missing"}},
                        [("WWW-Authenticate", 'DPoP error="invalid_token"')])
            return False
        if entry["verdict"] == "dpop_wrong_nonce":
            # As RFC 9449 section 8's example: the challenge in the headers
            # alone, no body for the client to read it from.
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'DPoP error="use_dpop_nonce"')
            self.send_header("DPoP-Nonce", NONCE)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        if entry["verdict"] != "ok":
            self.answer(401, {"error": {"code": entry["verdict"], "message": out.stdout}},
                        [("WWW-Authenticate", 'DPoP error="invalid_dpop_proof"')])
            return False
        return True

    def do_GET(self):
        if not self.check():
            return
        if self.path == "/v1/models":
            self.answer(200, {"object": "list",
                              "data": [{"id": "stand-in-model", "object": "model",
                                        "created": 0, "owned_by": "test"}]})
        else:
            self.answer(404, {"error": {"code": "not_found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if not self.check():
            return
        if self.path != "/v1/chat/completions":
            self.answer(404, {"error": {"code": "not_found"}})
            return
        words = ["The", " answer", " is", " 42."]
        if not body.get("stream"):
            self.answer(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "stand-in-model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(words)}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}})
            return
        # A stream: one event at a time, apart, so that a proxy that holds
        # the stream whole shows in the client's timings.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for i, word in enumerate(words):
            chunk = {"id": "chatcmpl-2", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": body.get("model", "stand-in-model"),
                     "choices": [{"index": 0, "delta": {"content": word},
                                  "finish_reason": None}]}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
            if i < len(words) - 1:
                time.sleep(0.4)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


server = ThreadingHTTPServer(("127.0.0.1", PORT), Gate)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
