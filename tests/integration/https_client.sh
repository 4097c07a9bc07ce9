#!/usr/bin/env bash
# The HTTPS client (net/) against openssl s_server on loopback: real TLS,
# a throwaway PKI, and the failures a user meets (wrong CA, wrong name,
# nothing listening, a server that never answers).
#   https_client.sh PATH/TO/https_get
# Needs only bash and the openssl command; every server it starts is stopped
# on exit, and each check is bounded by a few seconds.
set -u
get=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/tether-https.XXXXXX")
server_pids=()
cleanup() {
    local pid
    for pid in ${server_pids[@]+"${server_pids[@]}"}; do
        kill -CONT "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
passed=0
failed=0

check() {
    local name=$1
    shift
    if "$@" >"$work/last.log" 2>&1; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name"
        sed 's/^/    /' "$work/last.log"
        failed=$((failed + 1))
    fi
}

# ---- A throwaway PKI: the fleet CA, another CA, two server certificates.
pki() {
    local dir=$work/pki
    mkdir -p "$dir" || return 1
    ca() { # NAME
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=tether test $1" -keyout "$dir/$1.key" -out "$dir/$1.pem" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
    }
    server_cert() { # NAME CA SAN [KEY-OPTIONS...]
        local name=$1 issuer=$2 san=$3
        shift 3
        [ $# -gt 0 ] || set -- -newkey ec -pkeyopt ec_paramgen_curve:P-256
        openssl req "$@" -nodes -subj "/CN=$name" -keyout "$dir/$name.key" -out "$dir/$name.csr" &&
            printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
                "$san" >"$dir/$name.ext" &&
            openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$issuer.pem" -CAkey "$dir/$issuer.key" \
                -CAcreateserial -days 2 -extfile "$dir/$name.ext" -out "$dir/$name.pem"
    }
    # mbedTLS 2.28 checks DNS names only: the address is also a DNS SAN.
    ca fleet-ca && ca other-ca &&
        server_cert fleet fleet-ca DNS:127.0.0.1,IP:127.0.0.1 &&
        server_cert elsewhere fleet-ca DNS:other.example &&
        server_cert fleet-rsa fleet-ca DNS:127.0.0.1,IP:127.0.0.1 -newkey rsa:2048
}
if ! pki >"$work/pki.log" 2>&1; then
    echo "not ok - cannot create the test PKI with openssl"
    sed 's/^/    /' "$work/pki.log"
    exit 1
fi
pki=$work/pki

# What s_server -WWW serves (files below its working directory).
mkdir -p "$work/www/prefix"
echo "hello from the fleet" >"$work/www/hello.txt"
echo "under a prefix" >"$work/www/prefix/hello.txt"
head -c 300000 /dev/zero | tr '\0' 'z' >"$work/www/big.txt"

# What s_server -HTTP serves: files that hold whole HTTP responses.
mkdir -p "$work/www/raw"
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"token":"t0k"}\n' \
    >"$work/www/raw/length.http"
printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' \
    >"$work/www/raw/chunked.http"
printf 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 26\r\n\r\n{"error":"invalid_token"}\n' \
    >"$work/www/raw/denied.http"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc' \
    >"$work/www/raw/two-lengths.http"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort' >"$work/www/raw/short.http"
printf 'HTTP/1.1 200 OK\nContent-Length: 2\n\nhi' >"$work/www/raw/bare-lf.http"

# s_server stops at the end of its input: give it one that never ends.
mkfifo "$work/stdin" && exec 4<>"$work/stdin" || exit 1

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME CERT [S_SERVER-OPTIONS...]: starts openssl s_server on a
# free port (random ports, retried); sets PORT and PID once it listens. With
# -WWW it serves files as HTTP/1.0 responses, with -HTTP files that hold
# whole responses, and with neither it prints what it receives to its log
# and answers nothing (its input, $work/stdin, never ends).
start_server() {
    local name=$1 cert=$2 port pid
    shift 2
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + RANDOM % 40000))
        listening "$port" && continue
        (cd "$work/www" && exec openssl s_server -accept "127.0.0.1:$port" -cert "$pki/$cert.pem" \
            -key "$pki/$cert.key" "$@") >"$work/$name.log" 2>&1 <"$work/stdin" &
        pid=$!
        # s_server prints ACCEPT once it listens, and exits when the bind fails.
        for _ in $(seq 1 50); do
            if grep -q '^ACCEPT' "$work/$name.log" 2>/dev/null; then
                server_pids+=("$pid")
                PORT=$port
                PID=$pid
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    echo "cannot start openssl s_server" >&2
    return 1
}

# fails_with TEXT COMMAND...: COMMAND fails and says TEXT on stderr.
fails_with() {
    local text=$1
    shift
    if "$@" >"$work/out" 2>"$work/err"; then
        echo "unexpected success"
        return 1
    fi
    cat "$work/err"
    grep -qF -- "$text" "$work/err"
}

start_server fleet fleet -WWW || exit 1
fleet_port=$PORT
start_server elsewhere elsewhere -WWW || exit 1
elsewhere_port=$PORT
start_server raw fleet -HTTP || exit 1
raw_port=$PORT

get_hello() {
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$fleet_port" /hello.txt >"$work/out" &&
        cat "$work/out" && [ "$(cat "$work/out")" = "hello from the fleet" ]
}
check "GET with the pinned CA (TLS 1.2, read-to-close body)" get_hello

# The client offers ECDHE over P-256 only (the fleet's keys are P-256, and a
# P-521 key exchange cost fleetd most of an exchange's CPU): a server that
# takes P-521 alone finds no group in common.
start_server p521 fleet -WWW -groups P-521 || exit 1
check "the key exchange is over P-256 only: a server with only P-521 is refused" \
    fails_with "TLS handshake" "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$PORT" /hello.txt

get_prefix() {
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$fleet_port/prefix/" /hello.txt \
        >"$work/out" && [ "$(cat "$work/out")" = "under a prefix" ]
}
check "the URL's path prefix goes before the request path" get_prefix

get_big() {
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$fleet_port" /big.txt >"$work/out" &&
        cmp "$work/out" "$work/www/big.txt"
}
check "a 300 KB body arrives whole" get_big

check "a body over the limit is refused" \
    fails_with "too large" "$get" -t 5000 -m 1000 "$pki/fleet-ca.pem" \
    "https://127.0.0.1:$fleet_port" /big.txt

raw_get() { # PATH EXPECTED-STATUS EXPECTED-BODY
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$raw_port" "$1" >"$work/out" \
        2>"$work/err" && cat "$work/err" "$work/out" &&
        grep -qx "status $2" "$work/err" && [ "$(cat "$work/out")" = "$3" ]
}
check "a Content-Length body (complete before the close)" \
    raw_get /raw/length.http 200 '{"token":"t0k"}'
check "a chunked body with an extension and a trailer" \
    raw_get /raw/chunked.http 200 'hello world'
check "an error status is a response, not a failure" \
    raw_get /raw/denied.http 401 '{"error":"invalid_token"}'
check "two Content-Length fields: refused as malformed" \
    fails_with "malformed HTTP response from 127.0.0.1:$raw_port: the response has more than one Content-Length" \
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$raw_port" /raw/two-lengths.http
check "a body cut short by the close: refused" \
    fails_with "closed before the end of the body" \
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$raw_port" /raw/short.http
check "bare LF line ends: refused" \
    fails_with "bare LF" \
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$raw_port" /raw/bare-lf.http

# What goes on the wire, as a plain s_server (no -WWW) prints it; it never
# answers, so the client also meets a read timeout.
on_the_wire() {
    start_server wire fleet || return 1
    fails_with "127.0.0.1:$PORT did not answer within 1 s" \
        "$get" -t 1000 -H "Authorization: Bearer wire-token" -H "Accept: application/json" \
        "$pki/fleet-ca.pem" "https://127.0.0.1:$PORT/tether/v0" "/v1/revocations?after=7" ||
        return 1
    tr -d '\r' <"$work/wire.log" | sed -n '/^GET /,/^$/p' >"$work/wire.txt"
    cat "$work/wire.txt"
    printf '%s\n' "GET /tether/v0/v1/revocations?after=7 HTTP/1.1" "Host: 127.0.0.1:$PORT" \
        "User-Agent: tether" "Connection: close" "Authorization: Bearer wire-token" \
        "Accept: application/json" "" >"$work/wire.expected"
    diff "$work/wire.expected" "$work/wire.txt"
}
check "the request on the wire: origin-form, Host, Connection: close, extra headers" on_the_wire

no_secret_in_logs() {
    "$get" -v -t 5000 -H "Authorization: Bearer tether-test-secret-token" \
        "$pki/fleet-ca.pem" "https://127.0.0.1:$fleet_port" /hello.txt >"$work/out" 2>"$work/err" &&
        cat "$work/err" && grep -q 'GET https://' "$work/err" &&
        ! grep -q 'tether-test-secret' "$work/err"
}
check "the Authorization header is never logged" no_secret_in_logs

check "another CA: refused, naming the CA file" \
    fails_with "the fleet's certificate is not signed by the CA in $pki/other-ca.pem" \
    "$get" -t 5000 "$pki/other-ca.pem" "https://127.0.0.1:$fleet_port" /hello.txt

check "a certificate for another name: refused, naming the host" \
    fails_with "not issued for the name 127.0.0.1" \
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$elsewhere_port" /hello.txt

check "the DNS name must match too (localhost is not 127.0.0.1)" \
    fails_with "not issued for the name localhost" \
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://localhost:$fleet_port" /hello.txt

check "a CA file that does not exist" \
    fails_with "cannot read the CA file $work/none.pem" \
    "$get" -t 5000 "$work/none.pem" "https://127.0.0.1:$fleet_port" /hello.txt

refused() {
    local port
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        listening "$port" || break
    done
    fails_with "connection to 127.0.0.1:$port refused" \
        "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$port" /hello.txt
}
check "nothing listening: connection refused" refused

# A server that accepts (the kernel completes the TCP handshake) but is
# stopped, so the TLS handshake never completes.
handshake_timeout() {
    local start elapsed
    start_server stopped fleet -WWW || return 1
    kill -STOP "$PID"
    start=$(date +%s%N)
    fails_with "did not complete the TLS handshake within 1 s" \
        "$get" -t 1000 "$pki/fleet-ca.pem" "https://127.0.0.1:$PORT" /hello.txt || return 1
    elapsed=$((($(date +%s%N) - start) / 1000000))
    echo "gave up after $elapsed ms"
    [ "$elapsed" -lt 4000 ]
}
check "a server that never answers: timeout within bounds" handshake_timeout

tls13_only() {
    start_server tls13 fleet -WWW -tls1_3 || return 1
    fails_with "TLS handshake with 127.0.0.1:$PORT failed" \
        "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$PORT" /hello.txt
}
check "a server without TLS 1.2: a handshake failure" tls13_only

rsa_server() {
    start_server rsa fleet-rsa -WWW || return 1
    "$get" -t 5000 "$pki/fleet-ca.pem" "https://127.0.0.1:$PORT" /hello.txt >"$work/out" &&
        [ "$(cat "$work/out")" = "hello from the fleet" ]
}
check "a server with an RSA key (ECDHE-RSA)" rsa_server

check "plain http:// is refused before connecting" \
    fails_with "must use https://" "$get" "$pki/fleet-ca.pem" "http://127.0.0.1:$fleet_port" /

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
