#!/usr/bin/env python3
"""Compares tether's replay of real firmware event logs with tpm2-tools'.

  eventlog_tpm2_tools.py TETHER_AGENT LOG...

For each LOG, runs `tpm2_eventlog LOG` (tpm2-tools) and
`TETHER_AGENT eventlog LOG --json`, and requires the same PCR values per
bank: every PCR tpm2_eventlog prints in its `pcrs:` section, and no other
one, for each bank tether replays completely. Then checks the verb's text
output, its refusal of a cut log and its exit codes. The `pcrs:` section is read
line by line: tpm2_eventlog's output for a SHA-1-format log is not one YAML
document (its events repeat keys), so no YAML parser reads it whole.

Exits 1 with "FAIL: ..." on the first difference.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

BANK = re.compile(r"^  (\w+):\s*$")
VALUE = re.compile(r"^    (\d+)\s*:\s*0x([0-9a-fA-F]+)\s*$")


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def tpm2_pcrs(path):
    """{bank: {pcr: hex}} from tpm2_eventlog's pcrs: section."""
    out = subprocess.run(["tpm2_eventlog", path], check=True, capture_output=True,
                         text=True).stdout
    lines = out.splitlines()
    if "pcrs:" not in lines:
        fail(f"{path}: tpm2_eventlog printed no pcrs: section")
    banks, bank = {}, None
    for line in lines[lines.index("pcrs:") + 1:]:
        if BANK.match(line):
            bank = BANK.match(line).group(1)
            banks[bank] = {}
        elif VALUE.match(line) and bank is not None:
            pcr, value = VALUE.match(line).groups()
            banks[bank][int(pcr)] = value.lower()
        elif line.strip():
            fail(f"{path}: unexpected line in tpm2_eventlog's pcrs: {line!r}")
    return banks


def tether_pcrs(agent, path):
    """{bank: {pcr: hex}} of the banks tether replays completely."""
    out = subprocess.run([agent, "eventlog", path, "--json"], check=True,
                         capture_output=True, text=True).stdout
    replay = json.loads(out)["replay"]
    complete = {}
    for bank, value in replay.items():
        if isinstance(value, dict) and value["complete"]:
            complete[bank] = {int(pcr): hex_value for pcr, hex_value in value["pcrs"].items()}
    return complete


def check_verb(agent, path, pcrs):
    """The text output shows the replayed values; a log cut inside an event
    is refused with exit status 1 and the refusal's name; bad usage is 2."""
    text = subprocess.run([agent, "eventlog", path], check=True, capture_output=True,
                          text=True).stdout
    if "PCRs replayed" not in text or any(v not in text for b in pcrs.values()
                                          for v in b.values()):
        fail(f"{path}: the text output lacks the replayed PCR values")
    with open(path, "rb") as f:
        data = f.read()
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as cut:
        cut.write(data[:len(data) - 3])
    try:
        run = subprocess.run([agent, "eventlog", cut.name], capture_output=True, text=True)
    finally:
        os.unlink(cut.name)
    if run.returncode != 1 or "truncated" not in run.stderr or run.stdout:
        fail(f"a cut log: exit {run.returncode}, stderr {run.stderr!r}")
    if subprocess.run([agent, "eventlog"], capture_output=True).returncode != 2:
        fail("tether-agent eventlog without FILE does not exit 2")
    if subprocess.run([agent, "eventlog", "--help"], capture_output=True).returncode != 0:
        fail("tether-agent eventlog --help does not exit 0")


def main():
    if len(sys.argv) < 3:
        fail("usage: eventlog_tpm2_tools.py TETHER_AGENT LOG...")
    agent, compared = sys.argv[1], 0
    for path in sys.argv[2:]:
        theirs = tpm2_pcrs(path)
        ours = tether_pcrs(agent, path)
        for bank, values in theirs.items():
            if bank not in ours:
                fail(f"{path}: tpm2_eventlog replays {bank}, tether does not (or not completely)")
            if values != ours[bank]:
                fail(f"{path}: {bank} differs: tpm2_eventlog {values}, tether {ours[bank]}")
            compared += len(values)
        for bank, values in ours.items():
            if values and bank not in theirs:
                fail(f"{path}: tether replays {bank}, tpm2_eventlog prints no such bank")
        print(f"{path}: {', '.join(f'{b} {len(v)} PCRs' for b, v in sorted(ours.items()))} "
              "equal to tpm2_eventlog's")
    check_verb(agent, sys.argv[-1], ours)
    print(f"OK: {len(sys.argv) - 2} logs, {compared} PCR values equal")


if __name__ == "__main__":
    main()
