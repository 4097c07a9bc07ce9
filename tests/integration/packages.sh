#!/usr/bin/env bash
# Integration test of the Debian packages: builds them with cpack from the
# build tree, checks their metadata and contents, installs them on this
# machine with dpkg, runs the installed programs, checks that every verb in
# each program's --help has its man page, runs systemd-analyze verify and
# systemd-analyze security --offline=true on the installed units (the exposure
# must stay at or below the score recorded in packaging/README.md), boots a
# systemd in namespaces of its own to start, use and stop both units
# and to meet the maintainer scripts (packages_units.sh), and purges the
# packages again.
#
# It needs root, and refuses to touch a machine where a tether package is
# installed or where any file the packages ship already exists: it would
# otherwise purge or overwrite an installation of the administrator's. That
# refusal is a failure, not a skip: the suite passes only where this test
# ran. Users, groups and directories it creates are removed at exit; one that
# existed before is left alone. A run killed half-way leaves the packages
# installed: `dpkg -P tether-agent tether-fleetd tether-gate` lets it run again.
# usage: packages.sh BUILD-DIR SOURCE-DIR
set -euo pipefail

BUILD=${1:?usage: packages.sh BUILD-DIR SOURCE-DIR}
SOURCE=${2:?usage: packages.sh BUILD-DIR SOURCE-DIR}
PACKAGES=(tether-agent tether-fleetd tether-gate)
USERS=(tether-agent tether-fleetd tether-gate)
GROUPS_MADE=(tether-agent tether-fleetd tether-gate tss)
STATE_DIRS=(/var/lib/tether /var/lib/tether-fleetd /var/lib/tether-gate)
UNITS=(tether-agent.service tether-fleetd.service tether-gate.service)

refuse() {
    echo "packages: cannot run here: $*" >&2
    exit 1
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

passed=0
pass() {
    echo "ok - $*"
    passed=$((passed + 1))
}

[ "$(id -u)" -eq 0 ] || refuse "installing packages needs root"
for tool in cpack dpkg dpkg-deb systemd-analyze systemd-sysusers systemd-tmpfiles man runuser flock \
    unshare nsenter setpriv findmnt curl swtpm swtpm_setup; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/bootstrap.sh installs it)"
done

# One run at a time on this machine: two would install and purge the same
# packages under each other.
mkdir -p /run/lock
exec 9>/run/lock/tether-packages-test.lock
flock -w 600 9 || fail "another packages test held the lock for 10 minutes"

for p in "${PACKAGES[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv '^unknown ok not-installed$'; then
        refuse "package $p is on this machine; this test installs and purges it"
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-packages-test.XXXXXX")
INSTALLED=0
made_users=()
made_groups=()
made_dirs=()
for u in "${USERS[@]}"; do getent passwd "$u" >/dev/null || made_users+=("$u"); done
for g in "${GROUPS_MADE[@]}"; do getent group "$g" >/dev/null || made_groups+=("$g"); done
for d in "${STATE_DIRS[@]}"; do [ -e "$d" ] || made_dirs+=("$d"); done

. "$SOURCE/tests/integration/packages_units.sh"

cleanup() {
    local x
    units_cleanup
    if [ "$INSTALLED" = 1 ]; then
        dpkg -P "${PACKAGES[@]}" >"$WORK/purge.log" 2>&1 || cat "$WORK/purge.log" >&2
    fi
    # What the packages made and, as Debian does, left behind on purge.
    for x in "${made_users[@]}"; do getent passwd "$x" >/dev/null && userdel "$x"; done
    for x in "${made_groups[@]}"; do getent group "$x" >/dev/null && groupdel "$x"; done
    for x in "${made_dirs[@]}"; do rm -rf "$x"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ------------------------------------------------------------------------
cpack --config "$BUILD/CPackConfig.cmake" -B "$WORK/out" >"$WORK/cpack.log" 2>&1 ||
    { cat "$WORK/cpack.log" >&2; fail "cpack failed"; }
declare -A DEB
for p in "${PACKAGES[@]}"; do
    debs=("$WORK/out/${p}_"*.deb)
    [ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single $p package"
    DEB[$p]=${debs[0]}
done
pass "cpack built ${PACKAGES[*]}"

# --- metadata -----------------------------------------------------------------------
field() { dpkg-deb --field "${DEB[$1]}" "$2"; }
for p in "${PACKAGES[@]}"; do
    [ "$(field "$p" Package)" = "$p" ] || fail "$p: Package is '$(field "$p" Package)'"
    [ "$(field "$p" Architecture)" = "$(dpkg --print-architecture)" ] || fail "$p: Architecture"
done
# Each binary's libraries, by their Debian 12 names; the agent's TCTI is
# loaded with dlopen, and its unit reloads with /bin/kill (procps), so these
# are named by hand.
expect_depends() { # PACKAGE DEPENDENCY...
    local p=$1 dep depends
    shift
    depends=$(field "$p" Depends)
    for dep in "$@"; do
        grep -qE "(^|, )$dep( |,|$)" <<<"$depends" || fail "$p does not depend on $dep: $depends"
    done
}
expect_depends tether-agent systemd tpm-udev procps libtss2-esys-3.0.2-0 libtss2-tctildr0 \
    libtss2-tcti-device0 libtss2-mu0 libmbedtls14 libmbedcrypto7 libmbedx509-1 libcjson1
expect_depends tether-fleetd systemd libmicrohttpd12 libsqlite3-0 libssl3 libtss2-mu0 libmbedtls14 \
    libmbedcrypto7 libmbedx509-1 libcjson1
expect_depends tether-gate systemd libmicrohttpd12 libcurl4 libssl3 libmbedtls14 libmbedcrypto7 \
    libmbedx509-1 libcjson1
for p in tether-fleetd tether-gate; do
    if grep -qE 'libtss2-(esys|tctildr|tcti)' <<<"$(field "$p" Depends)"; then
        fail "$p depends on the TPM stack: the fleet side never touches a TPM"
    fi
done
pass "package names and dependencies"

dpkg-deb --ctrl-tarfile "${DEB[tether-agent]}" | tar -xO ./conffiles >"$WORK/conffiles"
[ "$(cat "$WORK/conffiles")" = /etc/tether/agent.conf ] || fail "tether-agent conffiles: $(cat "$WORK/conffiles")"
for p in "${PACKAGES[@]}"; do
    dpkg-deb --ctrl-tarfile "${DEB[$p]}" | tar -tvf - >"$WORK/$p.control"
    for script in postinst prerm postrm; do
        grep -qE "^-rwxr-xr-x root/root .* \./$script$" "$WORK/$p.control" ||
            fail "$p: $script missing or not 0755 root:root"
    done
done
pass "conffiles and maintainer scripts"

# --- contents: each file with its mode, nothing else -------------------------------------
# expect_contents PACKAGE "MODE PATH"...: the package's files (not folders),
# exactly.
expect_contents() {
    local p=$1
    shift
    printf '%s\n' "$@" | sort >"$WORK/$p.want"
    dpkg-deb --contents "${DEB[$p]}" | awk '$1 !~ /^d/ { print $1, substr($6, 2) }' |
        sort >"$WORK/$p.have"
    diff -u "$WORK/$p.want" "$WORK/$p.have" >&2 || fail "$p: unexpected contents"
    awk '{ print $2 }' "$WORK/$p.have" >"$WORK/$p.files"
    if dpkg-deb --contents "${DEB[$p]}" | grep -v '^[-d]rw[-x]r-[-x]r-[-x] root/root '; then
        fail "$p: a file not owned by root or writable by others"
    fi
}
man_pages() { # SECTION PAGE...: "-rw-r--r-- /usr/share/man/manS/PAGE.S.gz" lines
    local s=$1
    shift
    printf -- "-rw-r--r-- /usr/share/man/man$s/%s.$s.gz\n" "$@"
}
mapfile -t agent_pages < <(man_pages 8 tether-agent tether-agent-{enroll,run,token,dpop,selftest,eventlog,measure})
mapfile -t fleetd_pages < <(man_pages 8 tether-fleetd tether-fleetd-{init,run,check,admin-token})
mapfile -t ctl_pages < <(man_pages 1 tetherctl \
    tetherctl-device-{list,show,allow,import,revoke,quarantine,reinstate} \
    tetherctl-bootstrap-create tetherctl-token-{create,list,revoke} tetherctl-key-{list,rotate} \
    tetherctl-alerts tetherctl-revocations tetherctl-revoke-leaked tetherctl-usage \
    tetherctl-policy-{create,update,show,list} tetherctl-device-set-policy)
mapfile -t gate_pages < <(man_pages 8 tether-gate tether-gate-{init,run,check})
expect_contents tether-agent \
    "-rwxr-xr-x /usr/bin/tether-agent" \
    "-rw-r--r-- /usr/lib/systemd/system/tether-agent.service" \
    "-rw-r--r-- /usr/lib/sysusers.d/tether-agent.conf" \
    "-rw-r--r-- /usr/lib/tmpfiles.d/tether-agent.conf" \
    "-rw-r--r-- /etc/tether/agent.conf" \
    "${agent_pages[@]}"
expect_contents tether-fleetd \
    "-rwxr-xr-x /usr/bin/tether-fleetd" \
    "-rwxr-xr-x /usr/bin/tetherctl" \
    "-rw-r--r-- /usr/lib/systemd/system/tether-fleetd.service" \
    "-rw-r--r-- /usr/lib/sysusers.d/tether-fleetd.conf" \
    "-rw-r--r-- /usr/lib/tmpfiles.d/tether-fleetd.conf" \
    "${fleetd_pages[@]}" "${ctl_pages[@]}"
expect_contents tether-gate \
    "-rwxr-xr-x /usr/bin/tether-gate" \
    "-rw-r--r-- /usr/lib/systemd/system/tether-gate.service" \
    "-rw-r--r-- /usr/lib/sysusers.d/tether-gate.conf" \
    "-rw-r--r-- /usr/lib/tmpfiles.d/tether-gate.conf" \
    "${gate_pages[@]}"
pass "package contents and modes"

# Nothing of an installation made by other means is overwritten.
for p in "${PACKAGES[@]}"; do
    while read -r f; do
        [ ! -e "$f" ] || refuse "$f exists on this machine; this test would overwrite it"
    done <"$WORK/$p.files"
done

# --- install --------------------------------------------------------------------
INSTALLED=1
dpkg -i "${DEB[@]}" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log" >&2; fail "dpkg -i failed"; }
pass "dpkg -i installed the packages"

for u in "${USERS[@]}"; do
    getent passwd "$u" | grep -q ':/usr/sbin/nologin$' || fail "$u is not a system user without a shell"
done
[[ " $(id -nG tether-agent) " == *" tss "* ]] || fail "tether-agent is not in the tss group"
for u in tether-fleetd tether-gate; do
    [[ " $(id -nG "$u") " != *" tss "* ]] || fail "$u is in the tss group"
done
[ "$(stat -c '%a %U %G' /var/lib/tether)" = "700 tether-agent tether-agent" ] ||
    fail "/var/lib/tether is $(stat -c '%a %U %G' /var/lib/tether)"
[ "$(stat -c '%a %U %G' /var/lib/tether-fleetd)" = "700 tether-fleetd tether-fleetd" ] ||
    fail "/var/lib/tether-fleetd is $(stat -c '%a %U %G' /var/lib/tether-fleetd)"
[ "$(stat -c '%a %U %G' /var/lib/tether-gate)" = "700 tether-gate tether-gate" ] ||
    fail "/var/lib/tether-gate is $(stat -c '%a %U %G' /var/lib/tether-gate)"
pass "postinst made the users and the state directories"

# The packages enable nothing: that is the administrator's decision.
for unit in "${UNITS[@]}"; do
    if find /etc/systemd/system -name "$unit" 2>/dev/null | grep -q .; then
        fail "$unit was enabled by the package"
    fi
done
pass "no unit enabled"

# --- the installed programs ---------------------------------------------------------
/usr/bin/tether-agent --help >"$WORK/agent.help" || fail "tether-agent --help"
/usr/bin/tether-fleetd --help >"$WORK/fleetd.help" || fail "tether-fleetd --help"
/usr/bin/tetherctl --help >"$WORK/ctl.help" || fail "tetherctl --help"
/usr/bin/tether-gate --help >"$WORK/gate.help" || fail "tether-gate --help"
# As packaging/README.md says to: the fleet made as the service's user, in
# a directory of its own (a stand-in for /var/lib/tether-fleetd).
install -d -m 0700 -o tether-fleetd -g tether-fleetd "$WORK/state"
chmod 0755 "$WORK"
runuser -u tether-fleetd -- /usr/bin/tether-fleetd init --dir "$WORK/state/fleet" --listen 127.0.0.1:8443 \
    >"$WORK/admin.token" 2>"$WORK/init.log" || { cat "$WORK/init.log" >&2; fail "tether-fleetd init"; }
grep -qE '^tthr_adm_' "$WORK/admin.token" || fail "tether-fleetd init printed no admin token"
[ -s "$WORK/state/fleet/ca.pem" ] && [ -s "$WORK/state/fleet/fleet.db" ] || fail "tether-fleetd init made no fleet"
[ "$(stat -c %U "$WORK/state/fleet/fleet.db")" = tether-fleetd ] || fail "the fleet is not the service user's"
pass "installed programs run; tether-fleetd init as tether-fleetd"

# Every verb each --help lists has its page (the pages are generated from
# --help, so a verb without a page is the only way for them to drift).
# verbs FILE: the leading lowercase words of each line of the help's command
# list, e.g. "device list", "alerts".
# The description starts after two spaces; a line indented deeper goes on
# with the description above it.
verbs() {
    awk 'tolower($0) ~ /^commands:$/ { on = 1; next }
         on && /^$/ { on = 0 }
         on && /^  [a-z]/ { s = $0; sub(/^ +/, "", s); sub(/  .*/, "", s); n = split(s, w, " "); v = ""
              for (i = 1; i <= n && w[i] ~ /^[a-z][a-z-]*$/; i++) v = v (v == "" ? "" : "-") w[i]
              print v }' "$1"
}
check_pages() { # HELP-FILE PROGRAM SECTION
    local verb n=0
    while read -r verb; do
        man -w "$2-$verb" >/dev/null 2>&1 || fail "no man page for '$2 ${verb//-/ }'"
        [ "$(man -w "$2-$verb")" = "/usr/share/man/man$3/$2-$verb.$3.gz" ] || fail "$2-$verb is not in section $3"
        n=$((n + 1))
    done < <(verbs "$1")
    [ "$n" -gt 0 ] || fail "no verbs found in $2 --help"
    man -w "$2" >/dev/null || fail "no man page for $2"
}
check_pages "$WORK/agent.help" tether-agent 8
check_pages "$WORK/fleetd.help" tether-fleetd 8
check_pages "$WORK/ctl.help" tetherctl 1
check_pages "$WORK/gate.help" tether-gate 8
pass "a man page for every program and every verb"

# --- the installed units --------------------------------------------------------------
# verify resolves ExecStart and the Documentation= man pages.
for unit in "${UNITS[@]}"; do
    systemd-analyze verify --man=yes "/usr/lib/systemd/system/$unit" >"$WORK/verify.log" 2>&1 ||
        { cat "$WORK/verify.log" >&2; fail "systemd-analyze verify $unit"; }
    [ ! -s "$WORK/verify.log" ] || { cat "$WORK/verify.log" >&2; fail "systemd-analyze verify $unit warned"; }
done
pass "systemd-analyze verify"

# recorded UNIT: the exposure score in packaging/README.md's table row
# "| `UNIT` | SCORE |".
recorded() {
    sed -n "s/^| \`$1\` | \([0-9][0-9]*\.[0-9]\) |.*/\1/p" "$SOURCE/packaging/README.md"
}
for unit in "${UNITS[@]}"; do
    want=$(recorded "$unit")
    [ -n "$want" ] || fail "packaging/README.md records no exposure score for $unit"
    systemd-analyze security --offline=true --no-pager "/usr/lib/systemd/system/$unit" \
        >"$WORK/security.log" 2>&1 || { cat "$WORK/security.log" >&2; fail "systemd-analyze security $unit"; }
    have=$(sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p" "$WORK/security.log")
    [ -n "$have" ] || { cat "$WORK/security.log" >&2; fail "no exposure score for $unit"; }
    awk -v h="$have" -v w="$want" 'BEGIN { exit !(h <= w) }' ||
        { cat "$WORK/security.log" >&2; fail "$unit: exposure $have, above the recorded $want"; }
    echo "   $unit: exposure $have (recorded $want)"
done
pass "systemd-analyze security: exposure at or below the recorded scores"

# --- the units started by systemd ----------------------------------------------------
units_check "${DEB[@]}"

# --- purge -------------------------------------------------------------------------
dpkg -P "${PACKAGES[@]}" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; fail "dpkg -P failed"; }
INSTALLED=0
for p in "${PACKAGES[@]}"; do
    while read -r f; do
        [ ! -e "$f" ] || fail "$f is left after purging $p"
    done <"$WORK/$p.files"
done
pass "dpkg -P removed every file"

echo "all package checks passed ($passed)"
