#!/usr/bin/env python3
"""The agent's added latency per request through its AI endpoint.

    ai_latency.py upstream PORT          serves a minimal OpenAI-shaped
                                         /v1/chat/completions on loopback
                                         (no checks: the figure is the agent's)
    ai_latency.py measure DIRECT AGENT N N requests to each base URL,
                                         alternating, one connection each
                                         (as the agent serves them); prints
                                         p50/p99 of both and the difference
"""
import http.client
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

ANSWER = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "42"}}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                               "total_tokens": 2}}).encode()
QUESTION = json.dumps({"model": "m", "messages": [{"role": "user", "content": "?"}]})


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


def once(base):
    url = urlparse(base)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("POST", url.path + "/chat/completions", QUESTION,
                 {"Content-Type": "application/json", "Authorization": "Bearer sk-app"})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit("bench: %s answered %d" % (base, response.status))
    return (time.perf_counter() - start) * 1000


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


if sys.argv[1] == "upstream":
    print("ready", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Upstream).serve_forever()
else:
    direct_url, agent_url, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    once(direct_url), once(agent_url)  # warm both paths (the agent loads its key)
    direct, agent = [], []
    for _ in range(count):
        direct.append(once(direct_url))
        agent.append(once(agent_url))
    print("agent's AI endpoint, non-streamed request on loopback (n=%d each, same run)" % count)
    for name, values in (("  direct to the upstream", direct), ("  through the agent", agent)):
        print("%-34s p50 %7.2f ms  p99 %7.2f ms" % (name, percentile(values, 50),
                                                  percentile(values, 99)))
    print("%-34s p50 %7.2f ms  p99 %7.2f ms" % (
        "  added by the agent", percentile(agent, 50) - percentile(direct, 50),
        percentile(agent, 99) - percentile(direct, 99)))
