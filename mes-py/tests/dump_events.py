"""Decode binlog files with whichever ``mysql_event_stream`` is importable; print JSON.

Used by the differential tests: run once under the original 1.8.0 wheel (its own venv, since
both packages have the same import name) and once under ours, then compared.

    python dump_events.py [--modes default,crc_off,preverified] [--chunk N] FILE...

For each file the modes are tried in order until one decodes the whole file without an error
(the original needs ``set_checksum_enabled(False)`` for pre-5.6 files and
``set_trailer_pre_verified(True)`` for files whose FORMAT_DESCRIPTION CRC covers a cleared
IN_USE flag); the output records every attempt's result and the events of the first one that
succeeded (or of the last attempt).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from typing import Any


def read_binlog(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    if data[:4] in (b"\xfebin", b"\xfdbin"):
        data = data[4:]
    return data


def encode_value(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"f": repr(v)}
    if isinstance(v, str):
        # Lone surrogates (surrogateescape) survive json's \\u escapes.
        return {"s": v}
    if isinstance(v, (bytes, bytearray)):
        return {"b": bytes(v).hex()}
    return {"repr": repr(v)}


def encode_row(row: dict[str, Any] | None) -> Any:
    if row is None:
        return None
    return [[k, encode_value(v)] for k, v in row.items()]


def encode_event(ev: Any) -> dict[str, Any]:
    return {
        "type": ev.type.name,
        "database": ev.database,
        "table": ev.table,
        "before": encode_row(ev.before),
        "after": encode_row(ev.after),
        "timestamp": ev.timestamp,
        "position": [ev.position.file, ev.position.offset],
        "names_resolved": ev.names_resolved,
        "source_sql": ev.source_sql,
    }


def run(data: bytes, mode: str, chunk: int) -> dict[str, Any]:
    from mysql_event_stream import CdcEngine

    engine = CdcEngine()
    if mode == "crc_off":
        engine.set_checksum_enabled(False)
    elif mode == "preverified":
        engine.set_trailer_pre_verified(True)
    events: list[dict[str, Any]] = []
    error = None
    try:
        start = 0
        while start < len(data):
            piece = data[start : start + chunk] if chunk else data[start:]
            off = 0
            while off < len(piece):
                off += engine.feed(piece[off:])
                while (ev := engine.next_event()) is not None:
                    events.append(encode_event(ev))
            start += len(piece)
        while (ev := engine.next_event()) is not None:
            events.append(encode_event(ev))
    except Exception as exc:  # noqa: BLE001 - recorded for the comparison
        error = {"class": type(exc).__name__, "code": int(getattr(exc, "code", -1))}
    pos = engine.get_position()
    engine.close()
    return {
        "mode": mode,
        "error": error,
        "events": events,
        "final_position": [pos.file, pos.offset],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="default,crc_off,preverified")
    ap.add_argument("--chunk", type=int, default=0)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    for path in args.files:
        data = read_binlog(path)
        attempts = []
        chosen = None
        for mode in args.modes.split(","):
            r = run(data, mode, args.chunk)
            attempts.append({"mode": mode, "error": r["error"], "events": len(r["events"])})
            chosen = r
            if r["error"] is None:
                break
        assert chosen is not None
        chosen["attempts"] = attempts
        out[path] = chosen
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
