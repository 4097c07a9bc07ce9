#!/usr/bin/env python3
"""A recording TCP relay, to see what a client sends a server on loopback.

    tcp_tap.py PORT_FILE TARGET_PORT RECORD_FILE

Listens on 127.0.0.1 on a free port (written to PORT_FILE once listening),
relays every connection to 127.0.0.1:TARGET_PORT both ways, byte for byte
and as the bytes come (a stream stays a stream), and appends every byte a
client sent to RECORD_FILE. tests/integration/gate_chain.sh puts it
between tether-agent and tether-gate to show what reached the gateway.
"""
import os
import socket
import sys
import threading

record_lock = threading.Lock()


def pump(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                with record_lock:
                    record.write(data)
                    record.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def relay(client, target_port, record):
    with client, socket.create_connection(("127.0.0.1", target_port)) as server:
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=pump, args=(server, client, None), daemon=True)
        back.start()
        pump(client, server, record)
        back.join()


def main():
    port_file, target_port, record_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    listener = socket.create_server(("127.0.0.1", 0))
    record = open(record_file, "ab")
    with open(port_file + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=relay, args=(client, target_port, record), daemon=True).start()


if __name__ == "__main__":
    main()
