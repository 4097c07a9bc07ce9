# shellcheck shell=bash
# The installed units started by systemd, sourced by packages.sh while the
# packages are installed (it uses that script's WORK, SOURCE, fail and pass).
#
# The test machines run no systemd, so one is booted for the test: systemd
# 252 as PID 1 of new PID, mount and cgroup namespaces (unshare), in a
# control group of its own below the caller's, with a private /run, its own
# cgroup2 mount, and the administrator's units (/etc/systemd/system), every
# *.wants directory and every generator hidden by empty mounts. It starts
# nothing but a volatile journal and what the test asks for; the services run
# from the installed packages, as their users, with their state in the real
# /var/lib, on loopback. The agent's TPM is a swtpm on a loopback port, named
# by a drop-in the way packaging/README.md tells an administrator to
# (Environment=TETHER_TCTI=...). Then the maintainer scripts meet a running
# systemd: an upgrade must restart the running services, a removal must stop
# its service.
#
# units_cleanup (called from packages.sh's cleanup) kills the namespaces' PID
# 1, which ends every process in them and their mounts, and unshare, removes
# the control group and stops the swtpm.

NS_PID=
NS_UNSHARE=
NS_CGROUP=
. "$SOURCE/scripts/swtpm.sh"

# in_ns COMMAND...: runs COMMAND in the booted system's namespaces, bounded.
in_ns() {
    timeout 60 nsenter --target "$NS_PID" --mount --pid -- "$@"
}

units_cleanup() {
    if [ -n "$NS_PID" ]; then
        kill -KILL "$NS_PID" 2>/dev/null || true
        NS_PID=
    fi
    if [ -n "$NS_UNSHARE" ]; then
        # Before systemd was found: unshare's death kills its child too.
        kill -KILL "$NS_UNSHARE" 2>/dev/null || true
        wait "$NS_UNSHARE" 2>/dev/null || true
        NS_UNSHARE=
    fi
    if [ -n "$NS_CGROUP" ] && [ -d "$NS_CGROUP" ]; then
        # The kernel frees a killed group's members a moment after the wait.
        for _ in $(seq 1 50); do
            find "$NS_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null && break
            sleep 0.1
        done
        [ ! -d "$NS_CGROUP" ] || echo "packages: could not remove the control group $NS_CGROUP" >&2
    fi
    NS_CGROUP=
    swtpm_stop
}

# The inner half of units_boot, run as PID 1 of the new namespaces before it
# becomes systemd: $1 is the file that stands in for /dev/console.
# shellcheck disable=SC2016
NS_INIT='set -e
umount -R /sys/fs/cgroup
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$1" /dev/console
for d in /etc/systemd/system /etc/systemd/system-generators /usr/local/lib/systemd/system-generators \
    /lib/systemd/system-generators /usr/lib/systemd/system-generators \
    /lib/systemd/system/*.wants /usr/lib/systemd/system/*.wants; do
    if [ -d "$d" ]; then mount -t tmpfs -o ro,mode=0755 tmpfs "$d"; fi
done
mkdir -p /run/systemd/system /run/systemd/journald.conf.d
printf "[Journal]\nStorage=volatile\n" >/run/systemd/journald.conf.d/tether-test.conf
printf "[Unit]\nDescription=tether packages test\nWants=systemd-journald.service\n" \
    >/run/systemd/system/tether-test.target
exec env container=tether-test /lib/systemd/systemd --system --unit=tether-test.target'

# units_boot: boots the test's systemd and waits until it is running.
units_boot() {
    local cg_root cg_path state
    cg_root=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
    cg_path=$(sed -n 's/^0:://p' /proc/self/cgroup)
    [ -n "$cg_root" ] && [ -n "$cg_path" ] || fail "no cgroup2 hierarchy to run systemd in"
    NS_CGROUP=${cg_root}${cg_path%/}/tether-packages-test.$$
    mkdir "$NS_CGROUP" || fail "cannot make the control group $NS_CGROUP"
    : >"$WORK/console.log"
    (
        echo "$BASHPID" >"$NS_CGROUP/cgroup.procs"
        # Should this script die without its cleanup, unshare dies with
        # it, and the namespaces' PID 1 with unshare.
        exec setpriv --pdeathsig KILL unshare --kill-child=KILL --cgroup --pid --mount --fork --mount-proc \
            sh -c "$NS_INIT" sh "$WORK/console.log"
    ) </dev/null >"$WORK/unshare.log" 2>&1 &
    NS_UNSHARE=$!
    for _ in $(seq 1 100); do
        NS_PID=$(pgrep -P "$NS_UNSHARE" || true)
        [ -n "$NS_PID" ] && [ "$(cat "/proc/$NS_PID/comm" 2>/dev/null)" = systemd ] && break
        NS_PID=
        sleep 0.1
    done
    [ -n "$NS_PID" ] || { cat "$WORK/unshare.log" >&2; fail "systemd did not start in the namespaces"; }
    # systemctl needs the manager's socket, made a moment after the exec.
    for _ in $(seq 1 100); do
        in_ns test -S /run/systemd/private && break
        sleep 0.1
    done
    state=$(in_ns systemctl is-system-running --wait || true)
    [ "$state" = running ] || {
        cat "$WORK/console.log" >&2
        in_ns systemctl --failed --no-pager >&2 || true
        fail "the test's systemd is '$state', not running"
    }
}

# unit_show UNIT PROPERTY: one property's value.
unit_show() {
    in_ns systemctl show --value -p "$2" "$1"
}

# unit_failed UNIT MESSAGE: fails with the unit's status and journal.
unit_failed() {
    in_ns systemctl status --no-pager --lines=0 "$1" >&2 || true
    in_ns journalctl --no-pager -o cat -u "$1" >&2 || true
    fail "$1: $2"
}

# expect_confined UNIT USER: the unit's main process runs as USER with no
# capability, no new privileges and a seccomp filter, as the unit says.
expect_confined() {
    local pid status
    pid=$(unit_show "$1" MainPID)
    [ -n "$pid" ] && [ "$pid" != 0 ] || unit_failed "$1" "no main process"
    status=$(in_ns cat "/proc/$pid/status") || unit_failed "$1" "cannot read its process's status"
    grep -qE "^Uid:[[:space:]]+$(id -u "$2")[[:space:]]" <<<"$status" || fail "$1 does not run as $2"
    grep -qE '^NoNewPrivs:[[:space:]]+1$' <<<"$status" || fail "$1 may gain privileges"
    grep -qE '^Seccomp:[[:space:]]+2$' <<<"$status" || fail "$1 has no system call filter"
    grep -qE '^CapEff:[[:space:]]+0+$' <<<"$status" || fail "$1 holds a capability"
    grep -qE '^CapBnd:[[:space:]]+0+$' <<<"$status" || fail "$1 has a capability bounding set"
}

# stop_unit UNIT: stops UNIT and checks it ended cleanly.
stop_unit() {
    in_ns systemctl stop "$1" || unit_failed "$1" "systemctl stop failed"
    [ "$(unit_show "$1" ActiveState)" = inactive ] || unit_failed "$1" "still active after stop"
    [ "$(unit_show "$1" Result)" = success ] || unit_failed "$1" "did not stop cleanly"
}

# wait_health UNIT URL CA: waits until URL/v1/health answers while UNIT is
# active.
wait_health() {
    for _ in $(seq 1 100); do
        curl -sSf --max-time 5 --cacert "$3" -o /dev/null "$2/v1/health" 2>/dev/null && return 0
        [ "$(unit_show "$1" ActiveState)" = active ] || unit_failed "$1" "not active"
        sleep 0.1
    done
    unit_failed "$1" "/v1/health does not answer on $2"
}

# wait_token UNIT: waits until the agent serves a token on its socket to its
# own user while UNIT is active.
wait_token() {
    local token
    for _ in $(seq 1 100); do
        if token=$(in_ns runuser -u tether-agent -- /usr/bin/tether-agent token \
            --socket /run/tether/agent.sock 2>/dev/null); then
            [[ "$token" =~ ^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] ||
                fail "the agent's socket served no token: $token"
            return 0
        fi
        [ "$(unit_show "$1" ActiveState)" = active ] || unit_failed "$1" "not active"
        sleep 0.1
    done
    unit_failed "$1" "no token on /run/tether/agent.sock"
}

# units_check DEB...: tether-fleetd and tether-agent started, used and
# stopped by systemd, from the installed units; then the packages DEB...
# installed again over the running services, and tether-agent's removed.
units_check() {
    local port url ca ek fleetd_pid agent_pid
    swtpm_start "$WORK/tpm" >/dev/null || fail "swtpm"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    url=https://127.0.0.1:$port
    # As packaging/README.md says, into the service's own state directory,
    # trusting the swtpm's manufacturer CA.
    install -m 0600 /dev/null "$WORK/units-admin.token"
    runuser -u tether-fleetd -- /usr/bin/tether-fleetd init --dir /var/lib/tether-fleetd/fleet \
        --listen "127.0.0.1:$port" \
        --ek-ca "$SWTPM_CA_DIR/swtpm-localca-rootca-cert.pem" --ek-ca "$SWTPM_CA_DIR/issuercert.pem" \
        >"$WORK/units-admin.token" 2>"$WORK/units-init.log" ||
        { cat "$WORK/units-init.log" >&2; fail "tether-fleetd init into /var/lib/tether-fleetd/fleet"; }
    ca=$WORK/fleet-ca.pem
    install -m 0644 /var/lib/tether-fleetd/fleet/ca.pem "$ca"

    units_boot
    pass "systemd booted in its own PID, mount and cgroup namespaces"

    # --- tether-fleetd ---
    in_ns systemctl start tether-fleetd.service || unit_failed tether-fleetd.service "systemctl start failed"
    wait_health tether-fleetd.service "$url" "$ca"
    expect_confined tether-fleetd.service tether-fleetd
    pass "tether-fleetd.service started: active, /v1/health answers, confined"

    # --- tether-agent, enrolled as its user with the fleet the unit runs ---
    ek=$(/usr/bin/tether-agent selftest --tcti "$SWTPM_TCTI" | sed -n 's/^EK SHA-256: *//p')
    [ -n "$ek" ] || fail "tether-agent selftest printed no EK"
    TETHER_FLEET_URL=$url TETHER_CA=$ca TETHER_ADMIN_TOKEN_FILE=$WORK/units-admin.token \
        /usr/bin/tetherctl device allow --ek-sha256 "$ek" --name units-test >/dev/null ||
        fail "tetherctl device allow"
    runuser -u tether-agent -- /usr/bin/tether-agent enroll --tcti "$SWTPM_TCTI" \
        --state-dir /var/lib/tether --fleet "$url" --ca "$ca" >"$WORK/units-enroll.log" 2>&1 ||
        { cat "$WORK/units-enroll.log" >&2; fail "tether-agent enroll as tether-agent"; }
    in_ns mkdir -p /run/systemd/system/tether-agent.service.d
    printf '[Service]\nEnvironment=TETHER_TCTI=%s\n' "$SWTPM_TCTI" |
        in_ns tee /run/systemd/system/tether-agent.service.d/tcti.conf >/dev/null
    in_ns systemctl daemon-reload || fail "systemctl daemon-reload"
    in_ns systemctl start tether-agent.service || unit_failed tether-agent.service "systemctl start failed"
    wait_token tether-agent.service
    expect_confined tether-agent.service tether-agent
    in_ns systemctl reload tether-agent.service || unit_failed tether-agent.service "systemctl reload failed"
    in_ns runuser -u tether-agent -- /usr/bin/tether-agent token --socket /run/tether/agent.sock >/dev/null ||
        unit_failed tether-agent.service "no token after reload"
    pass "tether-agent.service started: a token on its socket, confined, reloads"

    # --- the maintainer scripts, now that systemd runs ---
    # An upgrade (here the same packages again) restarts a running service.
    fleetd_pid=$(unit_show tether-fleetd.service MainPID)
    agent_pid=$(unit_show tether-agent.service MainPID)
    in_ns dpkg -i "$@" >"$WORK/units-upgrade.log" 2>&1 ||
        { cat "$WORK/units-upgrade.log" >&2; fail "dpkg -i over the running services"; }
    [ "$(unit_show tether-fleetd.service MainPID)" != "$fleetd_pid" ] ||
        unit_failed tether-fleetd.service "not restarted by the upgrade"
    [ "$(unit_show tether-agent.service MainPID)" != "$agent_pid" ] ||
        unit_failed tether-agent.service "not restarted by the upgrade"
    wait_health tether-fleetd.service "$url" "$ca"
    wait_token tether-agent.service
    pass "an upgrade restarted both running services, which serve again"

    stop_unit tether-fleetd.service
    pass "tether-fleetd.service stopped cleanly"
    # Removing a package stops its service (the prerm).
    in_ns dpkg -r tether-agent >"$WORK/units-remove.log" 2>&1 ||
        { cat "$WORK/units-remove.log" >&2; fail "dpkg -r tether-agent"; }
    [ "$(unit_show tether-agent.service ActiveState)" = inactive ] ||
        unit_failed tether-agent.service "still active after dpkg -r"
    if in_ns pgrep -u tether-agent >/dev/null; then
        fail "a tether-agent process is left after dpkg -r"
    fi
    pass "dpkg -r tether-agent stopped its service"
    units_cleanup
}
