#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of the PostgreSQL store, from
# Debian's packages (postgresql): initdb in a temporary folder, listening on
# 127.0.0.1 and a free port only (no Unix socket outside that folder),
# password authentication with a random password kept in a passfile (0600)
# that PGPASSFILE names, so no URL carries it. PostgreSQL refuses to run as
# root: the server runs as the postgres user the package creates.
#
# As a command, for ctest:
#   postgres.sh run COMMAND...   starts a server, creates a database, runs
#                                COMMAND with TETHER_TEST_PG_URL set to its
#                                URL (and PGPASSFILE), stops the server and
#                                deletes it; COMMAND's exit status
# Sourced, for the shell tests (after fleet.sh):
#   pg_start                     starts a server for this script (PG_DIR,
#                                PG_PORT), stopped and deleted at exit
#                                (pg_stop; chain it into your own trap)
#   pg_database NAME             creates database NAME, prints its URL
#   pg_stop                      stops the server and deletes its folder
#   pg_sql URL SQL               psql on a database: the first column of
#                                the first row

pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    echo "FAIL: PostgreSQL's server is not installed (scripts/bootstrap.sh installs postgresql)" >&2
    return 1
}

PG_USER=tether
PG_DIR=
PG_PORT=

pg_start() {
    local bin password
    bin=$(pg_bin) || return 1
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tether-pg.XXXXXX")
    chmod 0755 "$PG_DIR"
    PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mkdir -m 0700 "$PG_DIR/data" "$PG_DIR/socket"
    printf '%s\n' "$password" >"$PG_DIR/pwfile"
    # The server's files belong to postgres when the tests run as root.
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_DIR/data" "$PG_DIR/socket" "$PG_DIR/pwfile"
        PG_AS=(runuser -u postgres --)
    else
        PG_AS=()
    fi
    "${PG_AS[@]}" "$bin/initdb" -D "$PG_DIR/data" -U "$PG_USER" --pwfile="$PG_DIR/pwfile" \
        --auth=scram-sha-256 -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 || {
        echo "FAIL: initdb failed:" >&2
        tail -n 20 "$PG_DIR/initdb.log" >&2
        return 1
    }
    rm -f "$PG_DIR/pwfile"
    "${PG_AS[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/data/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR/socket -c fsync=on" \
        start >/dev/null || {
        echo "FAIL: the PostgreSQL server did not start:" >&2
        tail -n 20 "$PG_DIR/data/server.log" >&2
        return 1
    }
    # *:*:*:user:password, read by libpq (fleetd, psql) from PGPASSFILE.
    printf '127.0.0.1:%s:*:%s:%s\n' "$PG_PORT" "$PG_USER" "$password" >"$PG_DIR/pgpass"
    chmod 0600 "$PG_DIR/pgpass"
    export PGPASSFILE=$PG_DIR/pgpass
}

pg_url() {
    echo "postgresql://$PG_USER@127.0.0.1:$PG_PORT/$1"
}

pg_database() {
    "$(pg_bin)/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$1" || return 1
    pg_url "$1"
}

pg_sql() {
    psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$1" -c "$2" | head -n 1
}

pg_stop() {
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ]; then
        "${PG_AS[@]}" "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [ -n "$PG_DIR" ] && rm -rf "$PG_DIR"
    PG_DIR=
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    if [ "${1:-}" != run ] || [ $# -lt 2 ]; then
        echo "usage: $0 run COMMAND..." >&2
        exit 2
    fi
    shift
    trap pg_stop EXIT
    pg_start
    TETHER_TEST_PG_URL=$(pg_database tether_test)
    export TETHER_TEST_PG_URL
    status=0
    "$@" || status=$?
    exit "$status"
fi
