#!/usr/bin/env bash
# Sets up and runs every test of tether:
#   1. installs the Debian packages (scripts/bootstrap.sh),
#   2. builds and runs the unit and integration tests (real swtpm, real
#      processes on loopback),
#   3. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs
#      the same tests but the end-to-end suites on PostgreSQL (ctest label
#      pg_end_to_end; the unit programs' PostgreSQL runs stay),
#   4. runs the unit tests under valgrind,
#   5. builds in Release with gcc (-O3, the optimiser's warnings) and runs
#      the unit tests,
#   6. builds with clang and runs the unit tests,
#   7. builds the libFuzzer targets with clang and runs each one for a bounded
#      time on its seed corpus: TETHER_FUZZ_SECONDS per target (default 20).
# Build trees go to build/, build-asan/, build-release/, build-clang/ and
# build-fuzz/ at the top of the repository. TETHER_TEST_STAGES limits the
# stages (e.g. "default asan").
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
stages=${TETHER_TEST_STAGES:-"default asan valgrind release clang fuzz"}
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)

"$top/scripts/bootstrap.sh"

build() { # DIR BUILD-TYPE CMAKE-ARGS...
    local dir=$1 type=$2
    shift 2
    cmake -S "$top" -B "$top/$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
    cmake --build "$top/$dir" -j "$jobs"
}

unit_tests() { # DIR
    ctest --test-dir "$top/$1" --output-on-failure -j "$jobs" -L unit
}

for stage in $stages; do
    echo "==> test stage: $stage"
    case $stage in
    default)
        build build RelWithDebInfo
        ctest --test-dir "$top/build" --output-on-failure -j "$jobs" -LE fuzz
        ;;
    asan)
        build build-asan RelWithDebInfo -DTETHER_SANITIZE=ON
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            ctest --test-dir "$top/build-asan" --output-on-failure -j "$jobs" -LE '^(fuzz|pg_end_to_end)$'
        ;;
    valgrind)
        build build RelWithDebInfo
        for name in $(ctest --test-dir "$top/build" -N -L unit | sed -n 's/.* unit\.\([A-Za-z0-9_]*\)$/\1/p'); do
            # Unit programs are test_*; crypto_backend_link is a script that
            # reads the link lines of the programs (the other stages run it).
            case $name in test_*) ;; *) continue ;; esac
            echo "valgrind: $name"
            valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
                "$top/build/tests/$name" >/dev/null
        done
        ;;
    release)
        build build-release Release -DCMAKE_C_COMPILER=gcc
        unit_tests build-release
        ;;
    clang)
        build build-clang RelWithDebInfo -DCMAKE_C_COMPILER=clang
        unit_tests build-clang
        ;;
    fuzz)
        build build-fuzz RelWithDebInfo -DCMAKE_C_COMPILER=clang -DTETHER_FUZZ=ON \
            -DTETHER_FUZZ_SECONDS="${TETHER_FUZZ_SECONDS:-20}"
        ctest --test-dir "$top/build-fuzz" --output-on-failure -L fuzz
        ;;
    *)
        echo "test.sh: unknown stage '$stage'" >&2
        exit 2
        ;;
    esac
done
echo "==> all test stages passed ($stages) in $(($(date +%s) - start)) s"
