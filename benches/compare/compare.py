"""Contenders and report of the side-by-side comparison (``benches/compare/run.sh``).

Each contender runs in a process of its own (so its peak RSS is its own) and prints one JSON
line: ``contender``, ``rows``, ``inserts``, ``updates``, ``deletes``, ``seconds`` (the streaming
only: from just before connecting / opening the file to the last row change), ``rss_start_kib``
and ``peak_rss_kib`` (the kernel's VmHWM at the end). A contender that does not see exactly the
expected INSERT / UPDATE / DELETE counts, with each kind's ``id`` values exactly 1..count (sum
and sum of squares), exits with status 1 and prints no speed.

Subcommands::

    compare.py sync   --binlog FILE --expect I:U:D --label L      CdcEngine.feed/next_event over
                                                                  the binlog file, 1 MiB reads
    compare.py async  --host H --port P --file F --expect I:U:D --label L     CdcStream live
    compare.py pyrepl --host H --port P --file F --expect I:U:D --label L     python-mysql-
                                                                  replication BinLogStreamReader
    compare.py floor  --host H --port P --file F --binlog FILE --out-dir D    mariadb-binlog
                                                                  --read-from-remote-server --raw
    compare.py report --results R.jsonl --bytes B ... --out compare.md [--readme README.md]

``sync`` and ``async`` import ``mysql_event_stream`` from whichever interpreter runs them: ours
(build/bench-venv) or the original 1.8.0 wheel (build/bench-venv-orig). The password comes from
``$MES_BENCH_PASSWORD``. Standard library only (plus the package measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

KINDS = ("INSERT", "UPDATE", "DELETE")


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in KiB; 0 when unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Tally:
    """Row changes per kind, with the sum and sum of squares of each kind's ``id`` values."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.sums = [0, 0, 0]
        self.squares = [0, 0, 0]
        self.bad = 0

    def add(self, kind: int, row_id: Any) -> None:
        self.counts[kind] += 1
        if isinstance(row_id, int) and not isinstance(row_id, bool):
            self.sums[kind] += row_id
            self.squares[kind] += row_id * row_id
        else:
            self.bad += 1

    @property
    def total(self) -> int:
        return sum(self.counts)

    def problems(self, expect: tuple[int, int, int]) -> list[str]:
        out = []
        if tuple(self.counts) != expect:
            out.append(f"counts {self.counts} (INSERT, UPDATE, DELETE), expected {list(expect)}")
        for k, n in enumerate(self.counts):
            if (
                self.sums[k] != n * (n + 1) // 2
                or self.squares[k] != n * (n + 1) * (2 * n + 1) // 6
            ):
                out.append(f"{KINDS[k]} ids are not exactly 1..{n}")
        if self.bad:
            out.append(f"{self.bad} rows without an integer id")
        return out


def parse_expect(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(":")]
    if len(parts) != 3 or min(parts) < 0:
        raise SystemExit(f"--expect must be INSERTS:UPDATES:DELETES, got {text!r}")
    return parts[0], parts[1], parts[2]


def finish(
    label: str, tally: Tally, expect: tuple[int, int, int], seconds: float, rss0: int, **extra: Any
) -> int:
    peak = status_kib("VmHWM")
    problems = tally.problems(expect)
    if problems:
        print(f"compare.py ({label}): ROW MISMATCH: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "contender": label,
                "rows": tally.total,
                "inserts": tally.counts[0],
                "updates": tally.counts[1],
                "deletes": tally.counts[2],
                "seconds": round(seconds, 6),
                "rss_start_kib": rss0,
                "peak_rss_kib": peak,
                **extra,
            }
        )
    )
    return 0


class FastTally:
    """The same verification as ``Tally`` (count, sum and sum of squares of the ids per kind),
    at a few attribute reads and additions per event, so that the harness's own Python cost
    does not dominate the fast contender's time. ``EventType`` members are told apart by
    identity (an ``Enum``'s hash is a Python-level call); a non-integer id makes ``i * i`` or
    the sum raise, which fails the run."""

    def __init__(self, event_type: Any) -> None:
        self.kind = {id(m): KINDS.index(m.name) for m in event_type}
        self.counts = [0, 0, 0]
        self.sums = [0, 0, 0]
        self.squares = [0, 0, 0]

    def into(self, tally: Tally) -> Tally:
        tally.counts, tally.sums, tally.squares = self.counts, self.sums, self.squares
        return tally


# ---------------------------------------------------------------------------------------------
def cmd_sync(args: argparse.Namespace) -> int:
    """CdcEngine over the binlog file's bytes (read in chunks inside the timed loop)."""
    import mysql_event_stream as mes

    expect = parse_expect(args.expect)
    fast = FastTally(mes.EventType)
    kind, counts, sums, squares = fast.kind, fast.counts, fast.sums, fast.squares
    rss0 = status_kib("VmRSS")
    engine = mes.CdcEngine()
    start = time.perf_counter()
    with open(args.binlog, "rb") as f:
        if f.read(4) != b"\xfebin":
            print(f"{args.binlog}: not a binlog file (no magic)", file=sys.stderr)
            return 1
        while chunk := f.read(args.chunk):
            view = chunk
            while view:
                used = engine.feed(view)
                drained = 0
                while (ev := engine.next_event()) is not None:
                    k = kind[id(ev.type)]
                    i = (ev.before if k == 2 else ev.after)["id"]
                    counts[k] += 1
                    sums[k] += i
                    squares[k] += i * i
                    drained += 1
                if used == 0 and drained == 0:
                    print("the engine consumed nothing and had no event", file=sys.stderr)
                    return 1
                view = view[used:]
    seconds = time.perf_counter() - start
    engine.close()
    return finish(args.label, fast.into(Tally()), expect, seconds, rss0)


# ---------------------------------------------------------------------------------------------
async def _consume_stream(args: argparse.Namespace, tally: Tally, expected_total: int) -> float:
    import mysql_event_stream as mes

    start = time.perf_counter()
    stream = mes.CdcStream(
        host=args.host,
        port=args.port,
        user=args.user,
        password=os.environ.get("MES_BENCH_PASSWORD", ""),
        server_id=args.server_id,
        start_binlog_file=args.file,
        start_binlog_position=args.pos,
        ssl_mode=0,
        max_reconnect_attempts=0,
    )
    # The lists are shared with `tally`, which the stall watcher reads.
    fast = FastTally(mes.EventType)
    fast.into(tally)
    kind, counts, sums, squares = fast.kind, fast.counts, fast.sums, fast.squares
    n = 0
    try:
        async for ev in stream:
            k = kind[id(ev.type)]
            i = (ev.before if k == 2 else ev.after)["id"]
            counts[k] += 1
            sums[k] += i
            squares[k] += i * i
            n += 1
            if n >= expected_total:
                break
        return time.perf_counter() - start
    finally:
        await stream.close()


async def _watch(task: asyncio.Task[float], tally: Tally, idle_s: float) -> None:
    last, since = -1, time.monotonic()
    while not task.done():
        await asyncio.sleep(0.5)
        if tally.total != last:
            last, since = tally.total, time.monotonic()
        elif time.monotonic() - since > idle_s:
            print(
                f"no row change for {idle_s:.0f} s after {tally.total}: giving up", file=sys.stderr
            )
            task.cancel()
            return


async def _run_async(args: argparse.Namespace, tally: Tally, expected_total: int) -> float:
    task = asyncio.ensure_future(_consume_stream(args, tally, expected_total))
    watcher = asyncio.ensure_future(_watch(task, tally, args.idle_timeout))
    try:
        return await task
    finally:
        watcher.cancel()


def cmd_async(args: argparse.Namespace) -> int:
    """CdcStream (async) against the server, from FILE:POS until the expected row count."""
    expect = parse_expect(args.expect)
    tally = Tally()
    rss0 = status_kib("VmRSS")
    try:
        seconds = asyncio.run(_run_async(args, tally, sum(expect)))
    except asyncio.CancelledError:
        print(
            f"compare.py ({args.label}): stalled after {tally.total} of {sum(expect)} row changes",
            file=sys.stderr,
        )
        return 1
    return finish(args.label, tally, expect, seconds, rss0)


# ---------------------------------------------------------------------------------------------
def cmd_pyrepl(args: argparse.Namespace) -> int:
    """python-mysql-replication: BinLogStreamReader from FILE:POS to the end (non-blocking)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

    expect = parse_expect(args.expect)
    tally = Tally()
    rss0 = status_kib("VmRSS")
    start = time.perf_counter()
    stream = BinLogStreamReader(
        connection_settings={
            "host": args.host,
            "port": args.port,
            "user": args.user,
            "passwd": os.environ.get("MES_BENCH_PASSWORD", ""),
        },
        server_id=args.server_id,
        log_file=args.file,
        log_pos=args.pos,
        resume_stream=True,
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
    )
    try:
        for ev in stream:
            if isinstance(ev, WriteRowsEvent):
                for row in ev.rows:
                    tally.add(0, row["values"].get("id"))
            elif isinstance(ev, UpdateRowsEvent):
                for row in ev.rows:
                    tally.add(1, row["after_values"].get("id"))
            elif isinstance(ev, DeleteRowsEvent):
                for row in ev.rows:
                    tally.add(2, row["values"].get("id"))
        seconds = time.perf_counter() - start
    finally:
        stream.close()
    return finish(args.label, tally, expect, seconds, rss0)


# ---------------------------------------------------------------------------------------------
def cmd_floor(args: argparse.Namespace) -> int:
    """The raw wire floor: mariadb-binlog copies the binlog file over the replication protocol."""
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / args.file
    target.unlink(missing_ok=True)
    cmd = [
        args.mariadb_binlog,
        "--no-defaults",
        "--read-from-remote-server",
        "--raw",
        f"--host={args.host}",
        f"--port={args.port}",
        f"--user={args.user}",
        "--skip-ssl",
        f"--result-file={out_dir}/",
        args.file,
    ]
    env = dict(os.environ, MYSQL_PWD=os.environ.get("MES_BENCH_PASSWORD", ""))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"mariadb-binlog failed with status {proc.returncode}", file=sys.stderr)
        return 1
    want = Path(args.binlog).read_bytes()
    got = target.read_bytes() if target.exists() else b""
    if got != want:
        print(
            f"mariadb-binlog's copy ({len(got)} bytes) is not byte-identical to the server's "
            f"{args.binlog} ({len(want)} bytes)",
            file=sys.stderr,
        )
        return 1
    target.unlink()
    print(
        json.dumps(
            {
                "contender": args.label,
                "rows": None,
                "bytes_copied": len(got),
                "seconds": round(seconds, 6),
                "peak_rss_kib": usage.ru_maxrss,
                # mariadb-binlog's own CPU (this wrapper's start-up and byte comparison are
                # not the floor's).
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            }
        )
    )
    return 0


# ---------------------------------------------------------------------------------------------
CONTENDERS = [
    # key, description, mode (what "vs original" compares with)
    ("floor", "raw wire floor: `mariadb-binlog --read-from-remote-server --raw`", "live"),
    ("rust-blocking", "Rust `mes-blocking` BinlogStream (binary with mimalloc)", "live"),
    ("rust-tokio", "Rust `mes-tokio` BinlogStream (binary with mimalloc)", "live"),
    ("ours-async", "Python, ours: `CdcStream` (async)", "live"),
    ("orig-async", "Python, original 1.8.0: `CdcStream` (async)", "live"),
    ("pyrepl", "python-mysql-replication `BinLogStreamReader`", "live"),
    ("ours-sync", "Python, ours: `CdcEngine.feed/next_event` over the file", "file"),
    ("orig-sync", "Python, original 1.8.0: `CdcEngine.feed/next_event` over the file", "file"),
]
ORIGINAL_OF_MODE = {"live": "orig-async", "file": "orig-sync"}


def machine_description(mariadb_version: str) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if m:
            ram = f"{int(m.group(1)) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    os_name = platform.system()
    try:
        m = re.search(
            r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.MULTILINE
        )
        if m:
            os_name = m.group(1)
    except OSError:
        pass
    cores = os.cpu_count() or 0
    return (
        f"{cpu}, {cores} cores, {ram}, {os_name} (Linux {platform.release()}), "
        f"MariaDB {mariadb_version}"
    )


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def cmd_report(args: argparse.Namespace) -> int:
    runs: dict[str, list[dict[str, Any]]] = {}
    big: list[dict[str, Any]] = []
    for line in Path(args.results).read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get("big"):
            big.append(r)
        else:
            runs.setdefault(r["contender"], []).append(r)
    missing = [k for k, _, _ in CONTENDERS if k not in runs]
    if missing:
        print(f"report: no result for {', '.join(missing)}", file=sys.stderr)
        return 1

    def median_seconds(key: str) -> float:
        return statistics.median(r["seconds"] for r in runs[key])

    def median_cpu(key: str) -> tuple[float, float] | None:
        """Median CPU seconds of the contender's process and of the server (older results
        files have none)."""
        if any("cpu_s" not in r for r in runs[key]):
            return None
        return (
            statistics.median(r["cpu_s"] for r in runs[key]),
            statistics.median(r["server_cpu_s"] for r in runs[key]),
        )

    def cpu_text(key: str) -> str:
        cpu = median_cpu(key)
        return "—" if cpu is None else f"{cpu[0]:.2f} + {cpu[1]:.2f}"

    nbytes = args.bytes
    rows_total = args.rows
    floor_s = median_seconds("floor")
    lines = [
        (
            f"Machine: {machine_description(args.mariadb_version)}; load average before the run "
            f"{args.load_before}, after {os.getloadavg()[0]:.2f}."
        ),
        "",
        f"Workload: the DESIGN.md §6 reference table, {args.n} inserts + {args.n} updates + "
        f"{args.n} deletes = {rows_total} row changes in {nbytes / 1e6:.1f} MB of binlog "
        f"(one binlog file, ROW / FULL image / FULL metadata / CRC32). Every contender verified "
        "it saw every row change exactly (counts per kind, ids 1..N). "
        + (
            f"Median of {args.repeat} runs, interleaved (± = half the range of the runs); peak "
            "RSS = the highest. "
            if args.repeat > 1
            else "One run. "
        )
        + "Time = the streaming only (connect to last row change); MB = 10^6 bytes of binlog. "
        + "CPU s = user + system seconds of the contender's whole process (start-up included; "
        + "the floor's: mariadb-binlog's) and of the server during it (medians).",
        "",
        "| contender | mode | rows/s | MB/s | peak RSS | CPU s: own + server | vs raw floor "
        "| vs original (same mode) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, desc, mode in CONTENDERS:
        s = median_seconds(key)
        rss = max(r["peak_rss_kib"] for r in runs[key]) / 1024
        rows_s = "—" if key == "floor" else fmt_rate(rows_total / s)
        vs_floor = f"{floor_s / s:.2f}×"
        orig = ORIGINAL_OF_MODE[mode]
        vs_orig = "—" if key == "floor" else f"{median_seconds(orig) / s:.2f}×"
        spread = ""
        if len(runs[key]) > 1:
            lo = min(r["seconds"] for r in runs[key])
            hi = max(r["seconds"] for r in runs[key])
            spread = f" (±{(hi - lo) / 2 / s * 100:.0f}%)"
        lines.append(
            f"| {desc} | {mode} | {rows_s} | {nbytes / 1e6 / s:.0f}{spread} | {rss:.0f} MiB | "
            f"{cpu_text(key)} | {vs_floor} | {vs_orig} |"
        )
    if big:
        lines += [
            "",
            (
                "Bounded memory: one transaction (a single INSERT of ~1 KiB rows) streamed live "
                "through `mes-blocking`; peak RSS of the whole process. Limits: *default* = the "
                "libraries' defaults (16 MiB transaction buffer, 48 MiB engine queue, 48 MiB driver "
                "queue); *reduced* = those of the end-to-end tests (16 MiB, 8 MiB, 4 MiB)."
            ),
            "",
            (
                "| transaction | binlog | limits | row changes | rows/s | peak RSS "
                "| RSS before connecting | target < 64 MiB |"
            ),
            "|---|---|---|---:|---:|---:|---:|---|",
        ]
        for r in big:
            peak = r["peak_rss_kib"] / 1024
            compressed = " (log_bin_compress=ON)" if r.get("compressed") else ""
            lines.append(
                f"| ~{r['rows_mib']} MiB of rows | {r['binlog_bytes'] / 2**20:.0f} MiB"
                f"{compressed} | {r.get('limits', 'default')} | {r['rows']} | "
                f"{fmt_rate(r['rows'] / r['seconds'])} | "
                f"{peak:.1f} MiB | {r['rss_start_kib'] / 1024:.1f} MiB | "
                f"{'met' if peak < 64 else 'NOT met'} |"
            )
    # Targets (DESIGN.md §6).
    rust = min(floor_s / median_seconds(k) for k in ("rust-blocking", "rust-tokio"))
    py_live = median_seconds("orig-async") / median_seconds("ours-async")
    py_file = median_seconds("orig-sync") / median_seconds("ours-sync")
    lines += [
        "",
        (
            "Targets (DESIGN.md §6): Rust live ≥ 0.90× the raw floor: "
            f"{'met' if rust >= 0.9 else 'NOT met'} ({rust:.2f}×, the slower driver); Python ≥ 10× "
            f"the original: async {'met' if py_live >= 10 else 'NOT met'} ({py_live:.1f}×), sync "
            f"{'met' if py_file >= 10 else 'NOT met'} ({py_file:.1f}×). The codec's ≥ 1 GB/s is "
            "measured by `cargo bench -p mes-benches --bench decode`."
        ),
    ]
    if args.repeat > 1:

        def per_run(num: str, den: str) -> str:
            # Run i of every contender ran within minutes of the others' run i (interleaved),
            # so these pairs share the VM's speed of the moment better than the medians do.
            return " / ".join(
                f"{a['seconds'] / b['seconds']:.2f}" for a, b in zip(runs[num], runs[den])
            )

        lines += [
            "",
            (
                "Per-run ratios (run i of one against run i of the other, in run order): "
                f"vs the floor: mes-blocking {per_run('floor', 'rust-blocking')}, mes-tokio "
                f"{per_run('floor', 'rust-tokio')}; vs the original: async "
                f"{per_run('orig-async', 'ours-async')}, sync {per_run('orig-sync', 'ours-sync')}."
            ),
        ]
    budget = [
        (k, cpu) for k in ("floor", "rust-blocking", "rust-tokio") if (cpu := median_cpu(k))
    ]
    if len(budget) == 3:
        cores = os.cpu_count() or 1
        parts = [
            f"{k} {own:.2f} + {srv:.2f} s, so at least {(own + srv) / cores:.2f} s on "
            f"{cores} cores (took {median_seconds(k):.2f} s)"
            for k, (own, srv) in budget
        ]
        lines += [
            "",
            (
                "CPU budget of the live contenders (own + server CPU seconds; with every core "
                f"busy a run cannot take less than their sum / cores): {'; '.join(parts)}."
            ),
        ]
    lines += [
        "",
        (
            f"Versions: {args.versions}. Generated by "
            f"`{' '.join(['bash benches/compare/run.sh', *args.command_line.split()])}`."
        ),
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    if args.readme:
        readme = Path(args.readme)
        body = readme.read_text()
        begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
        if body.count(begin) != 1 or body.count(end) != 1 or body.index(begin) > body.index(end):
            print(f"{readme}: needs exactly one {begin} … {end} section", file=sys.stderr)
            return 1
        head, rest = body.split(begin, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{begin}\n{text}{end}{tail}")
        print(f"updated {readme}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def live(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--user", default="root")
        sp.add_argument("--file", required=True, help="binlog file name on the server")
        sp.add_argument("--pos", type=int, default=4)
        sp.add_argument("--server-id", type=int, default=4712)

    s = sub.add_parser("sync")
    s.add_argument("--binlog", required=True)
    s.add_argument("--chunk", type=int, default=1 << 20)
    for name in ("async", "pyrepl"):
        sp = sub.add_parser(name)
        live(sp)
        sp.add_argument("--idle-timeout", type=float, default=60.0)
    for sp in (s, sub.choices["async"], sub.choices["pyrepl"]):
        sp.add_argument("--expect", required=True, help="INSERTS:UPDATES:DELETES")
        sp.add_argument("--label", required=True)
    f = sub.add_parser("floor")
    live(f)
    f.add_argument("--binlog", required=True, help="the server's binlog file, to compare")
    f.add_argument("--out-dir", required=True)
    f.add_argument("--mariadb-binlog", default="mariadb-binlog")
    f.add_argument("--label", default="floor")
    r = sub.add_parser("report")
    r.add_argument("--results", required=True)
    r.add_argument("--bytes", type=int, required=True, help="size of the workload's binlog")
    r.add_argument("--rows", type=int, required=True, help="row changes in it")
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--mariadb-version", default="?")
    r.add_argument("--versions", default="")
    r.add_argument("--load-before", default="?")
    r.add_argument("--command-line", default="")
    r.add_argument("--out", required=True)
    r.add_argument("--readme")
    args = p.parse_args()
    return {
        "sync": cmd_sync,
        "async": cmd_async,
        "pyrepl": cmd_pyrepl,
        "floor": cmd_floor,
        "report": cmd_report,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
