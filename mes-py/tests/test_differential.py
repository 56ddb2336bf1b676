"""Differential tests against the original ``mysql-event-stream==1.8.0`` wheel.

Both packages have the import name ``mysql_event_stream``, so the original runs in its own venv
(``$MES_ORIG_PYTHON``, default ``$MES_BUILD_DIR/venv-orig/bin/python``, i.e.
``build/venv-orig``), in a subprocess that prints JSON (``dump_events.py``). Skipped loudly when
that venv is missing (failed with ``MES_REQUIRE_ORIG=1``). Create it with::

    python3 -m venv build/venv-orig
    build/venv-orig/bin/pip install mysql-event-stream==1.8.0

Every corpus file is decoded by both. Where the original decodes a file (in the first of its
modes default / set_checksum_enabled(False) / set_trailer_pre_verified(True) that works), our
default engine must give the same events — type, database, table, every value and its Python
type, timestamp, position, names_resolved, source_sql — and the same final position, except
for the documented differences below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dump_events
import pytest
from conftest import HERE, REPO, read_binlog

ORIG_PYTHON = Path(
    os.environ.get(
        "MES_ORIG_PYTHON",
        Path(os.environ.get("MES_BUILD_DIR", REPO / "build")) / "venv-orig" / "bin" / "python",
    )
)

#: Files the original refuses in every mode and we decode (deliberate differences).
ORIG_REFUSES_WE_DECODE = {
    # Unknown event type 100 with LOG_EVENT_IGNORABLE_F must be skipped (it raises ParseError).
    "mysql-binlog-connector-java/mysql-bin.aurora-padding": 0,
    # TRANSACTION_PAYLOAD (zstd-compressed transactions).
    "mysql-binlog-connector-java/mysql-bin.compressed": 1,
    "mysql-binlog-connector-rust/mysql-bin.000057": 3,
    "rust_mysql_common/transaction_compression.000001": 1,
    # PARTIAL_UPDATE_ROWS (partial JSON), MINIMAL before images.
    "rust_mysql_common/json.binlog.000001": 18,
    # binlog_row_image=MINIMAL / NOBLOB row images (absent columns are absent from the dict).
    "rust_mysql_common/minimal_row_metadata.000001": 1,
    "rust_mysql_common/rpl_unfiltered_hidden_gcol.000001": 1,
    "rust_mysql_common/update-full-row.binlog": 7,
    "rust_mysql_common/update-partial-row.binlog": 7,
    "rust_mysql_common/write-full-row.binlog": 7,
    "rust_mysql_common/write-partial-row.binlog": 7,
    # MySQL 5.1.x pre-GA rows events (5.1.0-5.1.15 event numbering; rows v1 layout).
    "rust_mysql_common/ver_5_1-wl2325_s.001": 0,
}

#: Files both refuse, with the class and a word of our message.
BOTH_REFUSE = {
    # INCIDENT: the source may have lost events; never silently continued.
    "rust_mysql_common/bug40482-bin.000001": ("ParseError", "INCIDENT"),
    # Pre-GA rows image format of MySQL 5.1.0-5.1.15 preview builds.
    "rust_mysql_common/ver_5_1-wl2325_r.001": ("ParseError", "pre-GA"),
}

#: Files the original decodes (with CRC checks off) that we refuse: a corrupt event.
WE_REFUSE = {
    # A QUERY event of size 171 whose status-variable block overruns its body (a known-broken
    # event of this relay log); with checksums off the original skips past it silently.
    "rust_mysql_common/corrupt-relay-bin.000624": ("ParseError", "offset 91204"),
}

#: JSON columns (MySQL binary JSON): the original returns the binary bytes, we return text.
JSON_COLUMNS = {
    "rust_mysql_common/json-opaque.binlog": {"a"},
}


def orig_available() -> bool:
    if not ORIG_PYTHON.is_file():
        return False
    r = subprocess.run(
        [
            str(ORIG_PYTHON),
            "-c",
            "import importlib.metadata as m; print(m.version('mysql-event-stream'))",
        ],
        capture_output=True,
        text=True,
    )
    return r.returncode == 0 and r.stdout.strip() == "1.8.0"


@pytest.fixture(scope="module")
def orig_python() -> Path:
    if not orig_available():
        msg = (
            f"!!! original mysql-event-stream 1.8.0 not found at {ORIG_PYTHON}: differential tests "
            "SKIPPED (python3 -m venv build/venv-orig && build/venv-orig/bin/pip install "
            "mysql-event-stream==1.8.0, or set MES_ORIG_PYTHON)"
        )
        print(msg, file=sys.stderr)
        if os.environ.get("MES_REQUIRE_ORIG") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return ORIG_PYTHON


def census_files(corpus: Path) -> list[str]:
    return [e["file"] for e in json.loads((corpus / "census.json").read_text())]


@pytest.fixture(scope="module")
def both(corpus, orig_python):
    files = census_files(corpus)
    r = subprocess.run(
        [str(orig_python), str(HERE / "dump_events.py"), *files],
        cwd=corpus,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    orig = json.loads(r.stdout)
    ours = {}
    for f in files:
        res = dump_events.run(dump_events.read_binlog(str(corpus / f)), "default", 0)
        ours[f] = res
    return orig, ours


def strip_json(events: list[dict], columns: set[str]) -> list[dict]:
    out = []
    for ev in events:
        ev = dict(ev)
        for side in ("before", "after"):
            if ev[side] is not None:
                ev[side] = [[k, None if k in columns else v] for k, v in ev[side]]
        out.append(ev)
    return out


def test_every_corpus_file_against_original(both, corpus):
    orig, ours = both
    compared = 0
    compared_events = 0
    for f, o in orig.items():
        u = ours[f]
        if f in ORIG_REFUSES_WE_DECODE:
            assert o["error"] is not None, f"{f}: the original decodes it now: {o['attempts']}"
            assert u["error"] is None, f"{f}: {u['error']}"
            assert len(u["events"]) == ORIG_REFUSES_WE_DECODE[f], f
            continue
        if f in BOTH_REFUSE:
            assert o["error"] is not None and u["error"] is not None, f
            assert u["error"]["class"] == BOTH_REFUSE[f][0], f
            continue
        if f in WE_REFUSE:
            assert o["error"] is None and u["error"]["class"] == WE_REFUSE[f][0], f
            continue
        assert o["error"] is None, f"{f}: unexpected failure of the original: {o['attempts']}"
        assert u["error"] is None, f"{f}: {u['error']}"
        cols = JSON_COLUMNS.get(f, set())
        assert strip_json(u["events"], cols) == strip_json(o["events"], cols), f
        assert u["final_position"] == o["final_position"], f
        for ev_o, ev_u in zip(o["events"], u["events"]):
            for side in ("before", "after"):
                for (k, vo), (_, vu) in zip(ev_o[side] or [], ev_u[side] or []):
                    if k in cols and vo is not None:
                        # Original: raw binary JSON bytes; ours: MySQL's JSON text.
                        assert "b" in vo and "s" in vu, (f, k)
                        json.loads(vu["s"])
        compared += 1
        compared_events += len(o["events"])
    assert compared >= 75 and compared_events >= 47_000


def test_refusal_messages(corpus):
    from mysql_event_stream import CdcEngine

    for f, (cls, word) in {**BOTH_REFUSE, **WE_REFUSE}.items():
        e = CdcEngine()
        with pytest.raises(Exception) as info:
            e.feed(read_binlog(corpus / f))
        assert type(info.value).__name__ == cls and word in str(info.value), (f, info.value)


QUEUE_TRACE = r"""
import json, sys
from mysql_event_stream import CdcEngine
data = open(sys.argv[1], 'rb').read()[4:]
out = []
for limit in (1, 2, 7):
    e = CdcEngine(); e.set_max_queue_size(limit)
    off = 0; trace = []
    while off < len(data):
        n = e.feed(data[off:]); off += n
        pos = e.get_position()
        k = 0
        while e.next_event() is not None: k += 1
        trace.append([n, k, pos.file, pos.offset])
    out.append(trace)
e = CdcEngine()
for i in range(len(data)):
    e.feed(data[i:i+1])
p = e.get_position(); out.append([p.file, p.offset])
print(json.dumps(out))
"""


def test_queue_limit_consumption_matches_original(corpus, orig_python, tmp_path):
    script = tmp_path / "trace.py"
    script.write_text(QUEUE_TRACE)
    path = corpus / "mysql-binlog-connector-java/mysql-bin.checksum-crc32"
    o = subprocess.run([str(orig_python), str(script), str(path)], capture_output=True, text=True)
    u = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True)
    assert o.returncode == 0, o.stderr
    assert u.returncode == 0, u.stderr
    assert json.loads(u.stdout) == json.loads(o.stdout)
