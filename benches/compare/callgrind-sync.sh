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
# Threads are counted apart: the calling thread runs the Python loop, so its count is the one
# the benchmark's time follows; ours also decodes on a helper thread (the other threads' column),
# which runs beside the loop on a second core. valgrind runs one thread at a time, though: the
# rows checks `feed` shares with the helper (it checks rows events ahead of the engine, and the
# engine checks whatever the helper has not reached) mostly fall back on the calling thread
# under valgrind, so for ours the calling-thread count is an upper bound; the timed run.sh
# (and perf) show the split of a real run.
#
# Usage: bash benches/compare/callgrind-sync.sh [SMALL [LARGE]]      (defaults 2000 and 20000)
# Ours' calling-thread count is then split two ways (same subtraction): by the code that runs
# the instructions (CPython, our native module, libc) and by the call they happen in
# (`next_event` — converting an event into Python objects, CPython's work included —, `feed`,
# and everything else: the loop's own bytecode, freeing the previous event, reading the file).
# MES_CALLGRIND_TOP=N also prints where ours spends the calling thread's: the N functions with
# the most instructions of their own per row event (same subtraction, function by function).
# The callgrind files stay in build/bench-callgrind/ (one per thread: NAME-01, NAME-02, ...).
# Needs the venvs run.sh makes (build/bench-venv with ours, build/bench-venv-orig with the
# original; or $MES_CALLGRIND_PY_OURS / $MES_CALLGRIND_PY_ORIG) and valgrind. The binlogs are made
# once with benches/gen-bench-binlog.sh (its own throwaway MariaDB) in build/bench-callgrind/.
# About 5 minutes on a 2-core VM, most of it the original under valgrind.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../callgrind-common.sh
source "$REPO/benches/callgrind-common.sh"
callgrind_sizes "$@"
PY_OURS="${MES_CALLGRIND_PY_OURS:-$REPO/build/bench-venv/bin/python}"
PY_ORIG="${MES_CALLGRIND_PY_ORIG:-$REPO/build/bench-venv-orig/bin/python}"
for p in "$PY_OURS" "$PY_ORIG"; do
    [ -x "$p" ] || { echo "$p missing: run benches/compare/run.sh once (it makes both venvs)" >&2; exit 1; }
done
callgrind_setup
DIR="$CALLGRIND_DIR"

# Instructions executed by one `compare.py sync` run (which also checks every row change),
# counted per thread (--separate-threads): printed as "CALLER OTHERS", the thread that runs the
# Python loop (whose time is the benchmark's) and every other thread together (our decode-ahead
# helper; nothing for the original).
count() {
    local py="$1" n="$2" file="$3" out f caller=0 others=0 c
    rm -f "$file" "$file"-[0-9]*
    # valgrind exits with the program's status: a run that missed a row change fails here.
    if ! out="$(PYTHONHASHSEED=0 valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file="$file" \
        "$py" "$HERE/compare.py" sync --binlog "$(binlog "$n")" --expect "$n:$n:$n" \
        --label callgrind 2>&1 >/dev/null)"; then
        echo "the callgrind run of $py on $n rows failed:" >&2
        echo "$out" | tail -20 >&2
        return 1
    fi
    for f in "$file"-[0-9]*; do
        c="$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$f" | head -1)"
        [ -n "$c" ] || { echo "no instruction count in $f" >&2; return 1; }
        if [ "${f##*-}" = 01 ]; then caller=$c; else others=$((others + c)); fi
    done
    [ "$caller" -gt 0 ] || { echo "no calling-thread count for $file" >&2; return 1; }
    echo "$caller $others"
}

EVENTS=$((3 * (LARGE - SMALL)))
TOP="${MES_CALLGRIND_TOP:-0}"
[[ "$TOP" =~ ^[0-9]+$ ]] || { echo "MES_CALLGRIND_TOP must be a number" >&2; exit 2; }
declare -A CALLER OTHERS
for who in ours orig; do
    py="$PY_OURS"
    [ "$who" = orig ] && py="$PY_ORIG"
    printf '[callgrind] %s: %s and %s rows per phase\n' "$who" "$SMALL" "$LARGE" >&2
    read -r small_c small_o <<<"$(count "$py" "$SMALL" "$DIR/$who-$SMALL.callgrind")"
    read -r large_c large_o <<<"$(count "$py" "$LARGE" "$DIR/$who-$LARGE.callgrind")"
    CALLER[$who]=$(( (large_c - small_c) / EVENTS ))
    OTHERS[$who]=$(( (large_o - small_o) / EVENTS ))
done
printf '| contender | calling thread | other threads | total |\n|---|---:|---:|---:|\n'
for who in ours orig; do
    name='Python, ours: `CdcEngine.feed/next_event`'
    [ "$who" = orig ] && name='Python, original 1.8.0: `CdcEngine.feed/next_event`'
    printf '| %s | %s | %s | %s |\n' "$name" "${CALLER[$who]}" "${OTHERS[$who]}" \
        "$(( CALLER[$who] + OTHERS[$who] ))"
done
awk -v o="${CALLER[ours]}" -v g="${CALLER[orig]}" \
    -v ot="$(( CALLER[ours] + OTHERS[ours] ))" -v gt="$(( CALLER[orig] + OTHERS[orig] ))" \
    'BEGIN { printf "\nratio (original / ours), instructions per row event: %.2fx on the calling thread (the loop the benchmark times), %.2fx in total\n", g / o, gt / ot }'

# The calling thread's split, and the top functions when asked for.
"$PY_OURS" - "$DIR/ours-$SMALL.callgrind-01" "$DIR/ours-$LARGE.callgrind-01" "$EVENTS" "$TOP" <<'PY'
import re
import subprocess
import sys

def parts(name):
    """"dir/file.rs:function [dir/object.so]" -> ("dir/file.rs", "function", "dir/object.so");
    the object is "" when callgrind does not name it, the file "" when the line has no colon."""
    m = re.match(r"(.*?):(.*?)(?: \[(.*)\])?$", name)
    return (m.group(1), m.group(2), m.group(3) or "") if m else ("", name, "")


def short(name):
    # "dir/file.rs:function [dir/object.so]" -> "file.rs:function [object.so]"
    where, fn, obj = parts(name)
    if not where:
        return name
    obj = f" [{obj.rsplit('/', 1)[-1]}]" if obj else ""
    return f"{where.rsplit('/', 1)[-1]}:{fn}{obj}"


def annotated(path, *flags):
    """(count, "file:function [object]") for each function callgrind_annotate lists."""
    text = subprocess.run(
        ["callgrind_annotate", *flags, "--auto=no", "--threshold=100", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            yield int(m.group(1).replace(",", "")), m.group(2)


def own_counts(path):
    counts = {}
    for n, name in annotated(path):
        counts[short(name)] = counts.get(short(name), 0) + n
    return counts


def inclusive_counts(path):
    """Inclusive count of each function, the largest over the source files it is listed under
    (an inlined function appears once per file its code came from; the entry of the file that
    holds its body includes the others)."""
    counts = {}
    for n, name in annotated(path, "--inclusive=yes"):
        fn = parts(name)[1]
        counts[fn] = max(counts.get(fn, 0), n)
    return counts


def runs_in(name):
    """Which code runs a function's own instructions: by its object when callgrind names it,
    else by its source file (Rust sources and mimalloc are ours; C sources are CPython's)."""
    where, fn, obj = parts(name)
    if "_native" in obj or where.endswith(".rs") or re.match(r"_?mi_", fn):
        return "our native module"
    if "libpython" in obj or where.endswith((".c", ".h")):
        return "CPython"
    if "libc" in obj or "ld-linux" in obj or where.endswith(".S"):
        return "libc"
    return "other"


small, large = own_counts(sys.argv[1]), own_counts(sys.argv[2])
events, top = int(sys.argv[3]), int(sys.argv[4])
per = {k: (large.get(k, 0) - small.get(k, 0)) / events for k in set(large) | set(small)}
total = sum(per.values())
by_code = {}
for name, n in per.items():
    code = runs_in(name)
    by_code[code] = by_code.get(code, 0) + n
print("\nours, calling thread, instructions per row event by the code that runs them: " + ", ".join(
    f"{k} {v:.0f} ({100 * v / total:.0f}%)" for k, v in sorted(by_code.items(), key=lambda kv: -kv[1])
))
small_i, large_i = inclusive_counts(sys.argv[1]), inclusive_counts(sys.argv[2])
calls = {}
for label, fn in (("next_event", "_native::NativeEngine::__pymethod_next_event__"),
                  ("feed", "_native::NativeEngine::__pymethod_feed__")):
    calls[label] = (large_i.get(fn, 0) - small_i.get(fn, 0)) / events
rest = total - sum(calls.values())
print("... and by the call they happen in: " + ", ".join(f"{k} {v:.0f}" for k, v in calls.items())
      + f", the rest {rest:.0f} (the loop's own bytecode, which the original's loop runs too;"
      " freeing the previous event's objects; reading the file)")
if top > 0:
    print(f"\nours, calling thread, instructions of its own per row event, by function (top {top}):\n")
    rows = sorted((n, k) for k, n in per.items())
    print("| instructions per row event | function [object] |\n|---:|---|")
    for n, name in reversed(rows[-top:]):
        print(f"| {n:.0f} | {name[:160]} |")
PY
