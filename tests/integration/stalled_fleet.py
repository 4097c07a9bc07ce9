#!/usr/bin/env python3
"""A fleet that stalls: accepts TCP connections on 127.0.0.1:PORT, completes
the TLS handshake with the fleet's own certificate, then never answers and
never closes. Prints "ready" once listening and "stalled N" after each
handshake, flushed, for the test to follow.
    stalled_fleet.py CERT KEY PORT
"""
import socket
import ssl
import sys


def main():
    cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("ready", flush=True)
    held = []
    while True:
        conn, _ = srv.accept()
        conn.settimeout(10)
        try:
            held.append(ctx.wrap_socket(conn, server_side=True))
        except (OSError, ssl.SSLError) as e:
            print(f"handshake failed: {e}", flush=True)
            conn.close()
            continue
        print(f"stalled {len(held)}", flush=True)


if __name__ == "__main__":
    main()
