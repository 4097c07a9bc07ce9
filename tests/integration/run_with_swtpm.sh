#!/usr/bin/env bash
# Runs one test program against its own fresh swtpm:
#   run_with_swtpm.sh PROGRAM [ARGS...]
# The program finds the TPM in TETHER_TEST_TCTI and the swtpm local CA in
# TETHER_TEST_SWTPM_CA. The swtpm and its state are removed afterwards.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/swtpm.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-swtpm.XXXXXX")
cleanup() { swtpm_stop; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

swtpm_start "$work" || exit 1
export TETHER_TEST_TCTI=$SWTPM_TCTI TETHER_TEST_SWTPM_CA=$SWTPM_CA_DIR
"$@"
