#!/usr/bin/env bash
# THE test command (README, second command; .ci/run execs it):
#   1. starts the private MariaDB test server (scripts/mariadb-test-server.sh), stopped again on exit;
#   2. cargo test --workspace --all-targets with MES_REQUIRE_SERVER=1 and the MES_TEST_* environment;
#   3. the Python package (mes-py): venv in build/venv, maturin develop, pytest mes-py/tests;
#   4. short cargo-fuzz runs of every fuzz target (MES_FUZZ_SECONDS each, default 10);
#   and, first of all, `cargo fmt --check` on the workspace.
# Every section runs; the script exits non-zero if any of them failed.
#
# Environment: MES_BUILD_DIR (default <repo>/build), MES_TEST_PORT (default 33061),
# MES_CORPUS_DIR (default <repo>/../shared/corpus), MES_FUZZ_SECONDS (default 10).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export MES_BUILD_DIR="${MES_BUILD_DIR:-$REPO/build}"
mkdir -p "$MES_BUILD_DIR"
SERVER="$REPO/scripts/mariadb-test-server.sh"

section() { printf '\n========== %s ==========\n' "$*"; }

FAILED=()
run_section() {
    local name="$1"; shift
    section "$name"
    local rc=0
    set +e
    ( set -euo pipefail; "$@" )
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "!!! section '$name' FAILED (exit $rc)"
        FAILED+=("$name (exit $rc)")
    fi
}

# ---------------------------------------------------------------------------------------------------
# Formatting first: seconds, and a failure names the files (`cargo fmt` fixes them).
fmt_check() {
    if ! cargo fmt --version >/dev/null 2>&1; then
        rustup component add rustfmt
    fi
    cargo fmt --all -- --check
}
run_section "Style: cargo fmt --check" fmt_check

# ---------------------------------------------------------------------------------------------------
section "MariaDB test server"
cleanup() { bash "$SERVER" stop || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bash "$SERVER" start
eval "$(bash "$SERVER" env)"
export MES_REQUIRE_SERVER=1
export MES_CORPUS_DIR="${MES_CORPUS_DIR:-$REPO/../shared/corpus}"
if [ -d "$MES_CORPUS_DIR" ]; then
    MES_CORPUS_DIR="$(cd "$MES_CORPUS_DIR" && pwd)"
    echo "corpus: $MES_CORPUS_DIR"
else
    echo "WARNING: corpus not found at $MES_CORPUS_DIR (corpus tests will print a skip)"
fi
bash "$SERVER" status
# Python clients that prove the scripted MySQL primary's handshake (mes-testkit tests), and the
# venv the Python package section uses.
if [ ! -x "$MES_BUILD_DIR/venv/bin/python" ]; then
    python3 -m venv "$MES_BUILD_DIR/venv"
fi
"$MES_BUILD_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check PyMySQL cryptography mysql-connector-python
export MES_PYTHON="$MES_BUILD_DIR/venv/bin/python"
echo "server env: MES_TEST_HOST=$MES_TEST_HOST MES_TEST_PORT=$MES_TEST_PORT MES_TEST_SOCKET=$MES_TEST_SOCKET"

# ---------------------------------------------------------------------------------------------------
rust_tests() {
    local locked=()
    [ -f Cargo.lock ] && locked=(--locked)
    cargo test --workspace --all-targets --no-fail-fast "${locked[@]}"
    cargo test --workspace --doc "${locked[@]}"
}
run_section "Rust: cargo test --workspace --all-targets" rust_tests

# ---------------------------------------------------------------------------------------------------
python_tests() {
    if [ ! -f mes-py/pyproject.toml ]; then
        echo "Python package not built yet (no mes-py/pyproject.toml): skipping the Python tests"
        return 0
    fi
    local venv="$MES_BUILD_DIR/venv"
    if [ ! -x "$venv/bin/python" ]; then
        if ! python3 -m venv "$venv"; then
            rm -rf "$venv"
            if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
                apt-get update && apt-get install -y python3-venv
                python3 -m venv "$venv"
            else
                echo "python3 -m venv failed (install python3-venv)"; return 1
            fi
        fi
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check maturin pytest
    (
        cd mes-py
        export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
        unset CONDA_PREFIX
        maturin develop
    )
    local have_tests=""
    if [ -d mes-py/tests ] && [ -n "$(find mes-py/tests \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit)" ]; then
        have_tests=1
    fi
    if [ -z "$have_tests" ]; then
        echo "mes-py built; no Python tests yet (mes-py/tests has no test_*.py): skipping pytest"
        return 0
    fi
    local rc=0
    "$venv/bin/python" -m pytest mes-py/tests || rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no tests although mes-py/tests has test files"
    fi
    return "$rc"
}
# The original mysql-event-stream 1.8.0 wheel, in a venv of its own (same import name), for the
# differential tests; a missing original then fails instead of skipping.
if [ ! -x "$MES_BUILD_DIR/venv-orig/bin/python" ]; then python3 -m venv "$MES_BUILD_DIR/venv-orig"; fi
"$MES_BUILD_DIR/venv-orig/bin/python" -m pip install --quiet --disable-pip-version-check mysql-event-stream==1.8.0
export MES_REQUIRE_ORIG=1
run_section "Python: maturin develop + pytest mes-py/tests" python_tests

# ---------------------------------------------------------------------------------------------------
fuzz_runs() {
    if [ ! -f fuzz/Cargo.toml ]; then
        echo "no fuzz/Cargo.toml yet: skipping the fuzz runs"
        return 0
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
    # Seed from the real-binlog corpus when it is there (seeds are never committed).
    if [ -d "${MES_CORPUS_DIR:-$REPO/../shared/corpus}" ]; then
        bash fuzz/seed.sh
    fi
    local targets
    targets="$(RUSTC_BOOTSTRAP=1 cargo fuzz list)"
    if [ -z "$targets" ]; then
        echo "cargo fuzz list: no targets"
        return 0
    fi
    local t
    for t in $targets; do
        echo "--- fuzz target $t (${MES_FUZZ_SECONDS:-10} s)"
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="${MES_FUZZ_SECONDS:-10}"
    done
}
run_section "Fuzz: cargo fuzz run (${MES_FUZZ_SECONDS:-10} s per target)" fuzz_runs

# ---------------------------------------------------------------------------------------------------
demo_short() {
    # The README's main job, bounded: its own throwaway server, a few seconds of live changes.
    MES_DEMO_SECONDS=3 MES_DEMO_PROFILE=debug bash scripts/demo.sh > "$MES_BUILD_DIR/demo.out"
    grep -q '"type":"INSERT"' "$MES_BUILD_DIR/demo.out"
    grep -q 'ready for change data capture' "$MES_BUILD_DIR/demo.out"
    echo "demo: $(grep -c '"type":' "$MES_BUILD_DIR/demo.out") change-event lines"
}
run_section "Demo (short): scripts/demo.sh" demo_short

# ---------------------------------------------------------------------------------------------------
section "Summary"
if [ "${#FAILED[@]}" -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED[@]}"
    exit 1
fi
echo "all test sections passed"
