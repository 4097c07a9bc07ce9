#!/usr/bin/env python3
"""What firmware would have done with a platform event log, and a log that
lies about it (tests/integration/measured_boot.sh).

  eventlog_extend.py args LOG.json      tpm2_pcrextend arguments: every
                                        event's SHA-256 digest into its PCR,
                                        in log order (EV_NO_ACTION extends
                                        nothing)
  eventlog_extend.py corrupt LOG.json LOG.bin OUT.bin NUMBER
                                        LOG.bin with one bit of event
                                        NUMBER's SHA-256 digest flipped

LOG.json is `tether-agent eventlog --json LOG.bin`.
"""
import json
import sys


def events(path):
    return json.load(open(path))["events"]


def sha256_of(event):
    for digest in event["digests"]:
        if digest["algorithm"] == "sha256":
            return digest["digest"]
    raise SystemExit("event %d has no SHA-256 digest" % event["number"])


def main():
    if sys.argv[1] == "args" and len(sys.argv) == 3:
        for e in events(sys.argv[2]):
            if e["type"] != "EV_NO_ACTION":
                print("%d:sha256=%s" % (e["pcr"], sha256_of(e)))
    elif sys.argv[1] == "corrupt" and len(sys.argv) == 6:
        number = int(sys.argv[5])
        digest = bytes.fromhex(sha256_of(events(sys.argv[2])[number]))
        data = bytearray(open(sys.argv[3], "rb").read())
        if data.count(digest) != 1:
            raise SystemExit("event %d's digest is not unique in the log" % number)
        data[data.find(digest)] ^= 0x01
        open(sys.argv[4], "wb").write(bytes(data))
    else:
        raise SystemExit(__doc__)


main()
