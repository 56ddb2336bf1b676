#!/usr/bin/env bash
# The Python sync comparison (ours against the original 1.8.0 wheel, `compare.py sync`) counted in
# instructions instead of seconds, for hosts whose wall times swing too much to compare two builds
# (the 2-core VMs here: ±10–40% between runs). valgrind's callgrind counts the instructions each
# process executes; with PYTHONHASHSEED=0 the count repeats to about ±0.3%, whatever else the
# machine is doing. It does not model the CPU (cache misses, stalls), so it complements the timed
# table of run.sh and never replaces it.
#
# Each contender decodes two reference binlogs (DESIGN.md §6 table, SMALL and LARGE rows per
# phase), and the start-up is cancelled out:
#     instructions per row event = (Ir(LARGE) - Ir(SMALL)) / (3 * (LARGE - SMALL))
#
# Usage: bash benches/compare/callgrind-sync.sh [SMALL [LARGE]]      (defaults 2000 and 20000)
# MES_CALLGRIND_TOP=N also prints where ours spends them: the N functions with the most
# instructions of their own per row event (same subtraction, function by function; callgrind
# files kept in build/bench-callgrind/).
# Needs the venvs run.sh makes (build/bench-venv with ours, build/bench-venv-orig with the
# original; or $MES_CALLGRIND_PY_OURS / $MES_CALLGRIND_PY_ORIG) and valgrind. The binlogs are made
# once with benches/gen-bench-binlog.sh (its own throwaway MariaDB) in build/bench-callgrind/.
# About 5 minutes on a 2-core VM, most of it the original under valgrind.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SMALL="${1:-2000}"
LARGE="${2:-20000}"
for v in SMALL LARGE; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || { echo "$v must be a number > 0" >&2; exit 2; }
done
[ "$LARGE" -gt "$SMALL" ] || { echo "LARGE ($LARGE) must be above SMALL ($SMALL)" >&2; exit 2; }
PY_OURS="${MES_CALLGRIND_PY_OURS:-$REPO/build/bench-venv/bin/python}"
PY_ORIG="${MES_CALLGRIND_PY_ORIG:-$REPO/build/bench-venv-orig/bin/python}"
for p in "$PY_OURS" "$PY_ORIG"; do
    [ -x "$p" ] || { echo "$p missing: run benches/compare/run.sh once (it makes both venvs)" >&2; exit 1; }
done
if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y valgrind
    else
        echo "valgrind is missing (apt-get install valgrind)" >&2
        exit 1
    fi
fi

DIR="$REPO/build/bench-callgrind"
mkdir -p "$DIR"
binlog() { echo "$DIR/ref-$1.binlog"; }
for n in "$SMALL" "$LARGE"; do
    if [ ! -s "$(binlog "$n")" ]; then
        MES_BENCH_OUT="$(binlog "$n")" bash "$REPO/benches/gen-bench-binlog.sh" "$n" ref
    fi
done

# Instructions executed by one `compare.py sync` run (which also checks every row change).
count() {
    local py="$1" n="$2" file="$3" out
    # valgrind exits with the program's status: a run that missed a row change fails here.
    if ! out="$(PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$file" \
        "$py" "$HERE/compare.py" sync --binlog "$(binlog "$n")" --expect "$n:$n:$n" \
        --label callgrind 2>&1 >/dev/null)" ||
        ! sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out" | tail -1 | grep .; then
        echo "the callgrind run of $py on $n rows failed:" >&2
        echo "$out" | tail -20 >&2
        return 1
    fi
}

EVENTS=$((3 * (LARGE - SMALL)))
TOP="${MES_CALLGRIND_TOP:-0}"
[[ "$TOP" =~ ^[0-9]+$ ]] || { echo "MES_CALLGRIND_TOP must be a number" >&2; exit 2; }
# Where a run's callgrind file goes: kept for ours' breakdown, else nowhere.
kept() {
    if [ "$1" = ours ] && [ "$TOP" -gt 0 ]; then echo "$DIR/ours-$2.callgrind"; else echo /dev/null; fi
}
declare -A PER
for who in ours orig; do
    py="$PY_OURS"
    [ "$who" = orig ] && py="$PY_ORIG"
    printf '[callgrind] %s: %s and %s rows per phase\n' "$who" "$SMALL" "$LARGE" >&2
    small="$(count "$py" "$SMALL" "$(kept "$who" "$SMALL")")"
    large="$(count "$py" "$LARGE" "$(kept "$who" "$LARGE")")"
    PER[$who]=$(( (large - small) / EVENTS ))
done
printf '| contender | instructions per row event |\n|---|---:|\n'
printf '| Python, ours: `CdcEngine.feed/next_event` | %s |\n' "${PER[ours]}"
printf '| Python, original 1.8.0: `CdcEngine.feed/next_event` | %s |\n' "${PER[orig]}"
awk -v o="${PER[ours]}" -v g="${PER[orig]}" \
    'BEGIN { printf "\nratio (original / ours, in instructions): %.2fx\n", g / o }'

if [ "$TOP" -gt 0 ]; then
    printf '\nours, instructions of its own per row event, by function (top %s):\n\n' "$TOP"
    "$PY_OURS" - "$DIR/ours-$SMALL.callgrind" "$DIR/ours-$LARGE.callgrind" "$EVENTS" "$TOP" <<'PY'
import re
import subprocess
import sys

def short(name):
    # "dir/file.rs:function [dir/object.so]" -> "file.rs:function [object.so]"
    m = re.match(r"(.*?):(.*?)(?: \[(.*)\])?$", name)
    if not m:
        return name
    where = m.group(1).rsplit("/", 1)[-1]
    obj = f" [{m.group(3).rsplit('/', 1)[-1]}]" if m.group(3) else ""
    return f"{where}:{m.group(2)}{obj}"


def own_counts(path):
    text = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = short(m.group(2))
            counts[name] = counts.get(name, 0) + int(m.group(1).replace(",", ""))
    return counts

small, large = own_counts(sys.argv[1]), own_counts(sys.argv[2])
events, top = int(sys.argv[3]), int(sys.argv[4])
rows = sorted(((large.get(k, 0) - small.get(k, 0)) / events, k) for k in large)
print("| instructions per row event | function [object] |\n|---:|---|")
for per, name in reversed(rows[-top:]):
    print(f"| {per:.0f} | {name[:160]} |")
PY
fi
