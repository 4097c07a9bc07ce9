#!/usr/bin/env python3
"""Slowloris against a tether HTTPS server on loopback, bounded in count and time.

From one source address (127.0.0.1) it opens COUNT idle TCP connections and
COUNT TLS connections that send a request line and then one header line a
second, never ending the head. Meanwhile another source (127.0.0.2) must get
GET /v1/health answered within a bound; the attacking source must hold no
more than PER_SOURCE connections; every attacking connection must be closed
by the server within HEAD_TIMEOUT (plus slack) although each trickling one
sent something every second; and then the attacking source is served again.

usage: slow_clients.py PORT CA_FILE COUNT PER_SOURCE HEAD_TIMEOUT
Prints "ok - ..." lines; exits 1 with "FAIL: ..." on the first failure.
"""
import select
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
ATTACKER = "127.0.0.1"
BYSTANDER = "127.0.0.2"
HEALTH_BOUND_S = 3.0  # the bystander's whole request, TLS handshake included
SLACK_S = 2.5  # past the head timeout: the server sweeps a few times a second


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def tls_context(ca_file):
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False  # the certificate names the address; pinned CA is enough
    return context


def health(port, context, source):
    """Seconds GET /v1/health took from source, or None when it failed."""
    start = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=HEALTH_BOUND_S,
                                      source_address=(source, 0)) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n\r\n")
                answer = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
    except (OSError, ssl.SSLError):
        return None
    if not answer.startswith(b"HTTP/1.1 200") or b'"status":"ok"' not in answer.replace(b" ", b""):
        return None
    return time.monotonic() - start


def closed_by_server(sock):
    """True once the server closed sock (end of stream, reset or a TLS alert)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def main():
    if len(sys.argv) != 6:
        fail(__doc__.split("\n\n")[2])
    port, ca_file = int(sys.argv[1]), sys.argv[2]
    count, per_source, head_timeout = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    context = tls_context(ca_file)

    idle, slow = [], []
    refused = 0
    for i in range(count):
        idle.append(socket.create_connection((HOST, port), timeout=2,
                                             source_address=(ATTACKER, 0)))
        raw = socket.create_connection((HOST, port), timeout=2, source_address=(ATTACKER, 0))
        try:
            tls = context.wrap_socket(raw)
            tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: fleet\r\n")
            slow.append(tls)
        except (OSError, ssl.SSLError):
            raw.close()  # the server refused it: over this source's share
            refused += 1
    opened = time.monotonic()
    print("ok - opened %d idle TCP and %d slow-header TLS connections (%d TLS refused)"
          % (len(idle), len(slow), refused))

    took = health(port, context, BYSTANDER)
    if took is None:
        fail("GET /v1/health from %s failed while %s held its connections" % (BYSTANDER, ATTACKER))
    print("ok - health from another source answered in %.2f s" % took)

    time.sleep(0.5)  # refused connections are closed at once
    alive = sum(1 for s in idle + slow if not closed_by_server(s))
    if alive == 0:
        fail("the server kept none of the attacking connections: the test proves nothing")
    if alive > per_source:
        fail("one source holds %d connections, more than its share of %d" % (alive, per_source))
    print("ok - one source holds %d connections (its share is %d)" % (alive, per_source))

    # Trickle a header line a second until the head deadline has passed.
    line = 0
    while time.monotonic() - opened < head_timeout + SLACK_S:
        time.sleep(1)
        line += 1
        for tls in slow:
            try:
                tls.sendall(b"X-Slow-%d: still sending\r\n" % line)
            except (OSError, ssl.SSLError):
                pass  # closed by the server: what the test waits for
        if all(closed_by_server(s) for s in idle + slow):
            break
    waited = time.monotonic() - opened
    alive = sum(1 for s in idle + slow if not closed_by_server(s))
    if alive > 0:
        fail("%d connections without a complete request head were still open after %.1f s "
             "(head timeout %.0f s)" % (alive, waited, head_timeout))
    print("ok - every connection without a complete head was closed within %.1f s "
          "(head timeout %.0f s, a header line sent every second)" % (waited, head_timeout))

    took = health(port, context, ATTACKER)
    if took is None:
        fail("GET /v1/health from %s failed after its stalled connections were closed"
             % ATTACKER)
    print("ok - the attacking source is served again (%.2f s)" % took)
    for s in idle + slow:
        s.close()


if __name__ == "__main__":
    main()
