# Shared by benches/callgrind-engine.sh and benches/compare/callgrind-sync.sh (sourced, with
# REPO set to the checkout): the two workload sizes whose difference cancels start-up out,
# valgrind, and the reference binlogs both count (build/bench-callgrind/ref-N.binlog, made once
# by benches/gen-bench-binlog.sh with its own throwaway MariaDB).
#
#   callgrind_sizes [SMALL [LARGE]]   sets SMALL and LARGE (defaults 2000 and 20000), checked
#   callgrind_setup                   valgrind there (installed when root), both binlogs made
#   binlog N                          the path of the binlog with N rows per phase
#   CALLGRIND_DIR                     where the binlogs (and callgrind-sync.sh's counts) live

callgrind_sizes() {
    SMALL="${1:-2000}"
    LARGE="${2:-20000}"
    local v
    for v in SMALL LARGE; do
        [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || { echo "$v must be a number > 0" >&2; exit 2; }
    done
    [ "$LARGE" -gt "$SMALL" ] || { echo "LARGE ($LARGE) must be above SMALL ($SMALL)" >&2; exit 2; }
}

CALLGRIND_DIR="$REPO/build/bench-callgrind"
binlog() { echo "$CALLGRIND_DIR/ref-$1.binlog"; }

callgrind_setup() {
    if ! command -v valgrind >/dev/null; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y valgrind
        else
            echo "valgrind is missing (apt-get install valgrind)" >&2
            exit 1
        fi
    fi
    mkdir -p "$CALLGRIND_DIR"
    local n
    for n in "$SMALL" "$LARGE"; do
        if [ ! -s "$(binlog "$n")" ]; then
            MES_BENCH_OUT="$(binlog "$n")" bash "$REPO/benches/gen-bench-binlog.sh" "$n" ref >&2
        fi
    done
}
