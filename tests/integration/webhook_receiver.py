#!/usr/bin/env python3
"""A webhook receiver for the tests: verifies fleetd's signature the way the
README tells receivers to, drops duplicate deliveries by their id, and
records every request as one JSON line.

    webhook_receiver.py --secret FILE --log FILE --port-file FILE [--port N]
                        [--fail N] [--hold N] [--tolerance SECONDS]
                        [--tls-cert PEM --tls-key PEM]

With --tls-cert and --tls-key it serves HTTPS. --fail N answers 500 to the first N correctly signed requests. --hold N answers
nothing to the first N correctly signed requests (a receiver stuck
mid-delivery): their lines have "held" true and status null, and each
waits until the receiver stops or HOLD_SECONDS pass, then closes. Each
log line is {"delivery_id", "alert_id", "kind", "details", "received_at",
"verified", "duplicate", "status", "held"}. Stops on SIGTERM.
"""
import argparse
import hashlib
import hmac
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD_SECONDS = 120


def verify(secret, header, body, now, tolerance):
    """True when header is "t=TIMESTAMP,v1=HEX" with HEX the HMAC-SHA256 of
    TIMESTAMP "." body, and TIMESTAMP within tolerance of now (a replayed
    request is older)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, mac = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, mac)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail", type=int, default=0)
    parser.add_argument("--hold", type=int, default=0)
    parser.add_argument("--tolerance", type=int, default=300)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    with open(args.secret, "rb") as f:
        secret = f.read()
    if secret.endswith(b"\n"):
        secret = secret[:-1]
    lock = threading.Lock()
    seen = set()
    state = {"fail": args.fail, "hold": args.hold}
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received_at = time.time()
            ok = verify(secret, self.headers.get("Tether-Signature", ""), body,
                        int(received_at), args.tolerance)
            delivery_id = self.headers.get("Tether-Delivery", "")
            record = {"delivery_id": delivery_id, "received_at": received_at,
                      "verified": ok, "duplicate": False, "held": False}
            with lock:
                if not ok:
                    status = 401
                elif state["hold"] > 0:
                    state["hold"] -= 1
                    status = None
                    record["held"] = True
                elif state["fail"] > 0:
                    state["fail"] -= 1
                    status = 500
                else:
                    status = 200
                    payload = json.loads(body)
                    if payload["delivery_id"] != delivery_id:
                        status = 400
                    record["alert_id"] = payload["alert"]["id"]
                    record["kind"] = payload["alert"]["kind"]
                    record["details"] = payload["alert"].get("details")
                    record["duplicate"] = delivery_id in seen
                    seen.add(delivery_id)
                record["status"] = status
                with open(args.log, "a") as log:
                    log.write(json.dumps(record) + "\n")
            if record["held"]:
                stopping.wait(HOLD_SECONDS)
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *unused):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    def stop(*unused):
        stopping.set()
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
