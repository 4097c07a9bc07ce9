#!/usr/bin/env python3
"""Many callers of the agent's local API at once, over its Unix socket.
    local_probe.py SOCKET burst N   N callers connect and ask GET /v1/token,
                                    all before any answer is read; prints
                                    {"ok", "busy", "other", "seconds"}: ok got
                                    200, busy a 503 "busy" refusal, other
                                    anything else (a failed connect, no answer
                                    within 10 s, ...).
    local_probe.py SOCKET slow N    N callers connect and send nothing; then one
                                    normal caller asks GET /v1/token; prints
                                    "normal_status=X normal_ms=T slow_answered=A
                                    slow_failed=F" (the slow ones must still get
                                    an answer, after their deadline).
"""
import json
import socket
import sys
import time

REQUEST = b"GET /v1/token HTTP/1.1\r\nHost: localhost\r\n\r\n"


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def read_answer(s):
    """The status code and body of the answer, read until the agent closes."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def burst(path, n):
    socks, other = [], 0
    start = time.monotonic()
    for _ in range(n):
        try:
            s = connect(path)
        except OSError as e:
            print(f"connect failed: {e}", file=sys.stderr)
            other += 1
            continue
        try:
            s.sendall(REQUEST)
        except OSError:
            pass  # refused at once: the 503 may already wait to be read
        socks.append(s)
    ok = busy = 0
    for s in socks:
        try:
            status, body = read_answer(s)
            if status == 200 and b'"access_token"' in body:
                ok += 1
            elif status == 503 and b'"busy"' in body:
                busy += 1
            else:
                print(f"unexpected answer: {status} {body[:80]!r}", file=sys.stderr)
                other += 1
        except (OSError, ValueError, IndexError) as e:
            print(f"no answer: {e}", file=sys.stderr)
            other += 1
        finally:
            s.close()
    print(json.dumps({"ok": ok, "busy": busy, "other": other,
                      "seconds": round(time.monotonic() - start, 2)}))


def slow(path, n):
    slow_socks, failed = [], 0
    for _ in range(n):
        try:
            slow_socks.append(connect(path))
        except OSError as e:
            print(f"slow connect failed: {e}", file=sys.stderr)
            failed += 1
    time.sleep(0.2)  # let the agent take them all in before the normal caller
    start = time.monotonic()
    try:
        s = connect(path)
        s.sendall(REQUEST)
        status, _ = read_answer(s)
        s.close()
    except (OSError, ValueError, IndexError) as e:
        print(f"normal caller: {e}", file=sys.stderr)
        status = 0
    normal_ms = (time.monotonic() - start) * 1000
    answered = 0
    for s in slow_socks:
        try:
            read_answer(s)
            answered += 1
        except (OSError, ValueError, IndexError):
            failed += 1
        s.close()
    print(json.dumps({"normal_status": status, "normal_ms": round(normal_ms, 1),
                      "slow_answered": answered, "slow_failed": failed}))


def main():
    path, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"burst": burst, "slow": slow}[mode](path, n)


if __name__ == "__main__":
    main()
