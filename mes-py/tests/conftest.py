"""Shared helpers: the real-binlog corpus and feeding helpers.

The corpus is found at ``$MES_CORPUS_DIR`` (default ``<repo>/../shared/corpus``). When it is
absent, corpus tests are skipped with a loud message (or fail when ``MES_REQUIRE_CORPUS=1``).
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))


def corpus_dir() -> Path | None:
    d = Path(os.environ.get("MES_CORPUS_DIR", REPO.parent / "shared" / "corpus"))
    return d if (d / "census.json").is_file() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    d = corpus_dir()
    if d is None:
        msg = (
            "!!! binlog corpus not found (set MES_CORPUS_DIR): corpus tests SKIPPED "
            f"(looked in {os.environ.get('MES_CORPUS_DIR', REPO.parent / 'shared' / 'corpus')})"
        )
        print(msg, file=sys.stderr)
        if os.environ.get("MES_REQUIRE_CORPUS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


def read_binlog(path: Path, keep_magic: bool = False) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if not keep_magic and data[:4] == b"\xfebin":
        data = data[4:]
    return data


def split_events(data: bytes) -> list[bytes]:
    """Whole events of a magic-less stream (by the header's event_size)."""
    out = []
    pos = 0
    while pos + 19 <= len(data):
        size = struct.unpack_from("<I", data, pos + 9)[0]
        out.append(data[pos : pos + size])
        pos += size
    return out


def feed_all(engine, data: bytes) -> list:
    """Feed everything (re-feeding after a full queue) and collect the events."""
    events = []
    off = 0
    while off < len(data):
        off += engine.feed(data[off:])
        while (ev := engine.next_event()) is not None:
            events.append(ev)
    while (ev := engine.next_event()) is not None:
        events.append(ev)
    return events
