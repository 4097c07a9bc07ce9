#!/usr/bin/env bash
# The main job: tether on a software TPM, from a fresh machine.
# Installs what is missing, builds, manufactures a swtpm with EK certificates
# from a private local CA, and runs tether-agent's TPM self-check against it:
# TPM identity, EK selection checked against its certificate, and quote round
# trips verified in software. Everything runs on 127.0.0.1 and is removed at
# the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/swtpm.sh"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Installing the Debian packages tether needs (if any are missing)"
"$top/scripts/bootstrap.sh"

say "Building tether"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc 2>/dev/null || echo 2)" --target tether-agent >/dev/null
echo "built $top/build/bin/tether-agent"

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-demo.XXXXXX")
cleanup() { swtpm_stop; rm -rf "$work"; }
trap cleanup EXIT

say "Manufacturing a software TPM (swtpm) with EK certificates from a local CA"
swtpm_start "$work"
echo "swtpm listens on 127.0.0.1:$SWTPM_PORT (TCTI $SWTPM_TCTI); state in a temporary folder"

say "tether-agent selftest: who is this TPM, which EK, does a quote verify?"
"$top/build/bin/tether-agent" selftest --tcti "$SWTPM_TCTI" --quotes 10

say "Done: the TPM layer works against this TPM. Cleaning up."
