#!/usr/bin/env bash
# tether-agent measure on a real swtpm with SHA-1, SHA-256 and SHA-384 banks:
# three files measured into PCR 13 and tether's CEL log; the PCR read with
# tpm2_pcrread equals the log's replay in every bank; a second run in the
# same boot changes nothing; after a reboot (swtpm restarted: PCRs reset)
# the log starts over; a run killed between writing a record and extending
# the PCR (gdb stops it at the extend, then kills it) is reported by
# 'eventlog --check' and resolved by the next run; a record cut short (a
# crash while writing) is dropped; a corrupted log and a PCR extended by
# someone else are refused, the log left as it was.
#   measure.sh AGENT   (it runs its own swtpm, to restart it)
set -euo pipefail

AGENT=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/swtpm.sh"
for tool in gdb tpm2_pcrread; do
    command -v "$tool" >/dev/null || { echo "measure: $tool is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-measure-test.XXXXXX")
cleanup() {
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
ok() {
    passed=$((passed + 1))
    echo "ok - $*"
}
fail() {
    echo "not ok - $*" >&2
    [ -f "$WORK/out" ] && sed 's/^/    /' "$WORK/out" >&2
    echo "measure: $passed passed, 1 failed"
    exit 1
}

# gdb with the run as its inferior; LeakSanitizer (the sanitizer build)
# cannot work under ptrace, so it is off for these runs only.
under_gdb() {
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" gdb "$@"
}

LOG=$WORK/measurements.cel
CONF=$WORK/measure.conf
mkdir -p "$WORK/etc" "$WORK/app"
cp "$AGENT" "$WORK/tether-agent"
printf 'allow_uid = 1000\n' >"$WORK/etc/agent.conf"
printf '#!/bin/sh\necho app\n' >"$WORK/app/run"
cat >"$CONF" <<CONF
# name, absolute path
agent $WORK/tether-agent
agent-config $WORK/etc/agent.conf
ai-app $WORK/app/run
CONF

SWTPM_PCR_BANKS=sha1,sha256,sha384 swtpm_start "$WORK/tpm" || fail "swtpm did not start"

measure() { "$AGENT" measure --tcti "$SWTPM_TCTI" --config "$CONF" --log "$LOG" >"$WORK/out" 2>&1; }
check() { "$AGENT" eventlog --check --tcti "$SWTPM_TCTI" --json "$LOG" >"$WORK/check.json" 2>"$WORK/out"; }
reboot() {
    swtpm_stop
    swtpm_launch "$WORK/tpm" || fail "swtpm did not restart"
}

# The log's replay (eventlog --json) equals PCR 13 in every bank, and its
# file digests are the files' own.
replay_equals_tpm() {
    "$AGENT" eventlog --json "$LOG" >"$WORK/log.json" 2>"$WORK/out" || return 1
    TPM2TOOLS_TCTI=$SWTPM_TCTI tpm2_pcrread sha1:13+sha256:13+sha384:13 >"$WORK/pcrs.txt" ||
        return 1
    python3 - "$WORK/log.json" "$WORK/pcrs.txt" "$CONF" <<'PY'
import hashlib, json, re, sys
log = json.load(open(sys.argv[1]))
tpm, bank = {}, None
for line in open(sys.argv[2]):
    m = re.match(r"\s*(sha\d+):\s*$", line)
    if m:
        bank = m.group(1)
    m = re.match(r"\s*13\s*:\s*0x([0-9A-Fa-f]+)", line)
    if m:
        tpm[bank] = m.group(1).lower()
replay = {b: v["pcrs"]["13"] for b, v in log["replay"].items() if isinstance(v, dict)}
assert set(replay) == {"sha1", "sha256", "sha384"}, replay
assert replay == tpm, (replay, tpm)
files = [l.split() for l in open(sys.argv[3]) if l.strip() and not l.startswith("#")]
assert [(r["name"], r["path"]) for r in log["records"]] == [tuple(f) for f in files]
for rec in log["records"]:
    data = open(rec["path"], "rb").read()
    for d in rec["file_digests"]:
        assert d["digest"] == hashlib.new(d["algorithm"], data).hexdigest(), rec
PY
}

standing() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["check"]["standing"])' "$WORK/check.json"; }

# --- configs refused before the TPM is touched ----------------------------
"$AGENT" measure --help >"$WORK/out" 2>&1 || fail "measure --help failed"
refused_config() {
    printf '%b' "$1" >"$WORK/bad.conf"
    if "$AGENT" measure --tcti "$SWTPM_TCTI" --config "$WORK/bad.conf" --log "$LOG" \
        >"$WORK/out" 2>&1; then
        fail "measure accepted the config: $2"
    fi
    grep -q "$3" "$WORK/out" || fail "measure did not say why it refused $2"
    [ ! -s "$LOG" ] || fail "measure wrote to the log with $2"
}
refused_config 'agent relative/path\n' "a relative path" "expected 'NAME /absolute/path'"
refused_config 'agent /a\nagent /b\n' "a name used twice" "the name 'agent' is used twice"
refused_config 'agent config /a\n' "a line of three words" "expected 'NAME /absolute/path'"
refused_config '# nothing\n' "no file" "names no file to measure"
refused_config "$(for i in $(seq 1 17); do printf 'f%d /f%d\\n' "$i" "$i"; done)" \
    "seventeen files" "names more than 16 files"
refused_config 'gone /nonexistent/file\n' "a missing file" "cannot read /nonexistent/file"
ok "configs with a relative path, a name twice, three words, no file, 17 files, a missing file are refused"

# --- three files, every bank ---------------------------------------------
measure || fail "measure failed"
[ "$(grep -c '^measured ' "$WORK/out")" = 3 ] || fail "measure did not measure three files"
replay_equals_tpm || fail "the log's replay is not PCR 13 in every bank"
check || fail "eventlog --check found the log out of step after a run"
[ "$(standing)" = in_step ] || fail "standing $(standing), not in_step"
ok "three files measured; the replay equals PCR 13 in sha1, sha256 and sha384"

cp "$LOG" "$WORK/first.cel"
measure || fail "a second run in the same boot failed"
grep -q "already measured in this boot" "$WORK/out" || fail "a second run did not say it had nothing to do"
cmp -s "$LOG" "$WORK/first.cel" || fail "a second run changed the log"
replay_equals_tpm || fail "a second run extended PCR 13"
ok "a second run in the same boot measures nothing"

# --- a reboot ------------------------------------------------------------
reboot
if check; then fail "eventlog --check passed an earlier boot's log"; fi
[ "$(standing)" = earlier_boot ] || fail "standing $(standing), not earlier_boot"
measure || fail "measure after a reboot failed"
grep -q "starting the log over" "$WORK/out" || fail "measure did not say it starts the log over"
[ "$(grep -c '^measured ' "$WORK/out")" = 3 ] || fail "measure after a reboot did not measure three files"
replay_equals_tpm || fail "after a reboot, the replay is not PCR 13"
ok "after a reboot the log starts over and matches PCR 13 again"

# --- killed between the log write and the extend --------------------------
reboot
printf 'changed\n' >>"$WORK/app/run"
under_gdb -q -batch -ex 'set breakpoint pending on' -ex 'break tether_tpm_pcr_extend' \
    -ex 'run' -ex 'continue' -ex 'continue' -ex 'kill' \
    --args "$AGENT" measure --tcti "$SWTPM_TCTI" --config "$CONF" --log "$LOG" \
    >"$WORK/gdb.out" 2>&1 || true
# The third stop is the third file's extend: its record is written, the
# extend not sent.
[ "$(grep -c 'Breakpoint 1, tether_tpm_pcr_extend' "$WORK/gdb.out")" = 3 ] || {
    cp "$WORK/gdb.out" "$WORK/out"
    fail "the run under gdb did not stop at the third extend"
}
if check; then fail "eventlog --check passed a log whose last record is pending"; fi
[ "$(standing)" = last_pending ] || fail "standing $(standing), not last_pending"
grep -q 'record 2 (ai-app' "$WORK/check.json" || fail "--check did not name the pending record"
measure || fail "measure after the crash failed"
grep -q "record 2 (ai-app, $WORK/app/run) was written but never extended" "$WORK/out" ||
    fail "measure did not report the pending record"
[ "$(grep -c '^measured ' "$WORK/out")" = 1 ] || fail "measure did not measure the pending file again"
replay_equals_tpm || fail "after resolving, the replay is not PCR 13"
ok "a run killed between the log write and the extend is reported and resolved"

# --- the TPM gone between the log write and the extend --------------------
# gdb holds the run at its third extend while swtpm is killed: the extend
# fails, and measure says the record is logged but not extended. (swtpm is
# disowned so that bash does not report its death as an error.)
reboot
disown "$SWTPM_PID"
under_gdb -q -batch -ex 'set breakpoint pending on' -ex 'break tether_tpm_pcr_extend' \
    -ex 'run' -ex 'continue' -ex 'continue' -ex "shell kill -9 $SWTPM_PID" -ex 'continue' \
    --args "$AGENT" measure --tcti "$SWTPM_TCTI" --config "$CONF" --log "$LOG" \
    >"$WORK/gdb.out" 2>&1 || true
for _ in $(seq 1 100); do
    kill -0 "$SWTPM_PID" 2>/dev/null || break
    sleep 0.05
done
SWTPM_PID=
cp "$WORK/gdb.out" "$WORK/out"
grep -q "record 2 (ai-app) is in $LOG but PCR 13 was not extended" "$WORK/out" ||
    fail "measure did not report an extend that failed after the log write"
grep -q "exited with code 01" "$WORK/out" || fail "measure did not exit 1 after a failed extend"
swtpm_launch "$WORK/tpm" || fail "swtpm did not restart"
measure || fail "measure after the TPM came back failed"
grep -q "starting the log over" "$WORK/out" || fail "measure did not start over on the reset PCR"
replay_equals_tpm || fail "after the TPM came back, the replay is not PCR 13"
ok "an extend that fails after the log write is reported; the next boot's run starts over"

# --- killed while writing a record: its bytes cut short -------------------
head -c 30 "$WORK/first.cel" >>"$LOG"
measure || fail "measure with a record cut short failed"
grep -q "record 3 is cut short" "$WORK/out" || fail "measure did not report the cut record"
grep -q "already measured in this boot" "$WORK/out" || fail "measure did not find the log in step"
replay_equals_tpm || fail "after dropping a cut record, the replay is not PCR 13"
ok "a record cut short is dropped and said"

# --- refusals: a corrupted log, a PCR extended by someone else -------------
cp "$LOG" "$WORK/good.cel"
python3 - "$LOG" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x01
open(p, "wb").write(bytes(b))
PY
cp "$LOG" "$WORK/bad.cel"
if measure; then fail "measure accepted a corrupted log"; fi
grep -q "is not a valid tether log" "$WORK/out" || fail "measure did not say the log is corrupt"
cmp -s "$LOG" "$WORK/bad.cel" || fail "measure changed a corrupted log"
if "$AGENT" eventlog "$LOG" >"$WORK/out" 2>&1; then fail "eventlog printed a corrupted log"; fi
grep -q "is not a valid tether log" "$WORK/out" || fail "eventlog did not say the log is corrupt"
ok "a corrupted log is refused and left as it was"

cp "$WORK/good.cel" "$LOG"
TPM2TOOLS_TCTI=$SWTPM_TCTI tpm2_pcrextend \
    13:sha1=0000000000000000000000000000000000000000,sha256=0000000000000000000000000000000000000000000000000000000000000000,sha384=000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000 ||
    fail "tpm2_pcrextend failed"
if check; then fail "eventlog --check passed a PCR extended by someone else"; fi
[ "$(standing)" = out_of_step ] || fail "standing $(standing), not out_of_step"
if measure; then fail "measure accepted a PCR extended by someone else"; fi
grep -q "matches no point of the log" "$WORK/out" || fail "measure did not say the PCR is out of step"
cmp -s "$LOG" "$WORK/good.cel" || fail "measure changed the log of an out-of-step PCR"
ok "a PCR extended by someone else is refused, the log left as it was"

echo "measure: $passed passed, 0 failed"
