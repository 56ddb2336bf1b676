"""Live streaming against the private MariaDB test server (scripts/mariadb-test-server.sh):
CdcStream (async, over the Rust blocking driver), BinlogClient feeding a CdcEngine, and
CdcEngine.enable_metadata.

Uses the ``MES_TEST_*`` environment (read from ``mariadb-test-server.sh env`` when unset).
Without a reachable server the tests are skipped loudly (failed with ``MES_REQUIRE_SERVER=1``).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO
from mysql_event_stream import (
    BinlogClient,
    CdcEngine,
    CdcStream,
    EventType,
    MesConnectionError,
    ServerFlavor,
)

DB = "mes_py_live"
SCRIPT = REPO / "scripts" / "mariadb-test-server.sh"


def _server_env() -> dict[str, str] | None:
    env = {k: v for k, v in os.environ.items() if k.startswith("MES_TEST_")}
    if "MES_TEST_PORT" not in env and SCRIPT.is_file():
        r = subprocess.run(
            ["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=False
        )
        for line in r.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export ") :].partition("=")
                env[key] = shlex.split(value)[0] if value else ""
    if "MES_TEST_PORT" not in env:
        return None
    try:
        with socket.create_connection(
            (env.get("MES_TEST_HOST", "127.0.0.1"), int(env["MES_TEST_PORT"])), timeout=2
        ):
            pass
    except OSError:
        return None
    return env


@pytest.fixture(scope="module")
def server() -> dict[str, str]:
    env = _server_env()
    if env is None:
        msg = (
            "!!! MariaDB test server not reachable (start it with scripts/mariadb-test-server.sh "
            "start): live tests SKIPPED"
        )
        print(msg, file=sys.stderr)
        if os.environ.get("MES_REQUIRE_SERVER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return env


def sql(env: dict[str, str], statements: str) -> str:
    r = subprocess.run(
        ["mariadb", f"--defaults-file={env['MES_TEST_CLIENT_CNF']}", "-N", "-B", "-e", statements],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def conn(env: dict[str, str], **kw: object) -> dict[str, object]:
    opts: dict[str, object] = {
        "host": env.get("MES_TEST_HOST", "127.0.0.1"),
        "port": int(env["MES_TEST_PORT"]),
        "user": env["MES_TEST_USER"],
        "password": env["MES_TEST_PASSWORD"],
        "server_id": 4242,
        "connect_timeout_s": 5,
        "read_timeout_s": 10,
    }
    opts.update(kw)
    return opts


@pytest.fixture(scope="module")
def workload(server) -> dict[str, object]:
    """A fresh database; the GTID position before the DML, and the DML's expected rows."""
    sql(
        server,
        f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; "
        f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, name VARCHAR(20), n BIGINT);",
    )
    start = sql(server, "SELECT @@gtid_binlog_pos").strip()
    sql(
        server,
        f"INSERT INTO {DB}.t VALUES (1, 'one', 10), (2, 'two', 20);"
        f"UPDATE {DB}.t SET name = 'uno', n = n + 1 WHERE id = 1;"
        f"DELETE FROM {DB}.t WHERE id = 2;",
    )
    return {"start": start}


async def collect(stream: CdcStream, n: int, timeout: float = 20.0) -> list:
    out = []

    async def run() -> None:
        async for ev in stream:
            out.append((ev, stream.current_gtid))
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


def seq(gtid: str, domain: str = "0") -> int:
    for part in gtid.split(","):
        d, _s, n = part.split("-")
        if d == domain:
            return int(n)
    raise AssertionError(f"no domain {domain} in {gtid!r}")


def check_events(events: list) -> None:
    kinds = [e.type for e in events]
    assert kinds == [EventType.INSERT, EventType.INSERT, EventType.UPDATE, EventType.DELETE]
    assert all(e.database == DB and e.table == "t" for e in events)
    assert events[0].after == {"id": 1, "name": "one", "n": 10}
    assert events[1].after == {"id": 2, "name": "two", "n": 20}
    assert events[2].before == {"id": 1, "name": "one", "n": 10}
    assert events[2].after == {"id": 1, "name": "uno", "n": 11}
    assert events[3].before == {"id": 2, "name": "two", "n": 20}
    assert events[3].after is None
    g = [e.gtid for e in events]
    assert g[0] == g[1] and g[0] != g[2] != g[3]
    assert seq(g[0]) < seq(g[2]) < seq(g[3])
    assert all(e.names_resolved for e in events)


def test_cdc_stream_streams_and_resumes(server, workload):
    async def main() -> None:
        stream = CdcStream(**conn(server, start_gtid=workload["start"]), include_databases=[DB])
        assert stream.current_gtid == ""
        got = await collect(stream, 4)
        await stream.aclose()
        events = [e for e, _ in got]
        check_events(events)
        # After the whole first transaction was handed out the checkpoint covers it; never
        # beyond a transaction whose events are still to come.
        gtids = [g for _, g in got]
        assert seq(gtids[1]) >= seq(events[0].gtid)
        assert seq(gtids[2]) >= seq(events[2].gtid)
        assert seq(gtids[2]) < seq(events[3].gtid)
        assert seq(stream.current_gtid) >= seq(events[3].gtid)
        # Resume from the checkpoint after the UPDATE: only the DELETE comes again.
        resume = gtids[2]
        sql(server, f"INSERT INTO {DB}.t VALUES (3, 'three', 30)")
        again = CdcStream(**conn(server, start_gtid=resume, server_id=4243), include_databases=[DB])
        got2 = await collect(again, 2)
        for _ in range(100):  # the checkpoint message follows the transaction's events
            if seq(again.current_gtid or "0-0-0") >= seq(got2[1][0].gtid):
                break
            await asyncio.sleep(0.01)
        await again.close()
        e2 = [e for e, _ in got2]
        assert [e.type for e in e2] == [EventType.DELETE, EventType.INSERT]
        assert e2[0].gtid == events[3].gtid and e2[1].after == {"id": 3, "name": "three", "n": 30}
        assert seq(again.current_gtid) >= seq(e2[1].gtid)

    asyncio.run(main())


def test_cdc_stream_wrong_password(server):
    async def main() -> None:
        stream = CdcStream(**conn(server, password="definitely-wrong"))
        with pytest.raises(MesConnectionError) as info:
            async for _ in stream:
                pass
        assert info.value.code == 401

    asyncio.run(main())


class Ticker:
    """A task that counts its turns on the event loop (each `interval` seconds at most)."""

    def __init__(self, interval: float) -> None:
        self.ticks = 0
        self._interval = interval
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.ticks += 1
            await asyncio.sleep(self._interval)

    async def stop(self) -> int:
        self._stop.set()
        await self._task
        return self.ticks


def test_cdc_stream_does_not_block_the_loop(server, workload):
    async def main() -> None:
        ticker = Ticker(0.01)
        # Start at the current end: nothing arrives, the wait must not hold the loop.
        stream = CdcStream(**conn(server, server_id=4244), include_databases=[DB])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 1.0)
        await stream.close()
        ticks = await ticker.stop()
        assert ticks > 20

    asyncio.run(main())


def poll_events(client: BinlogClient, engine: CdcEngine, n: int, timeout: float = 20.0) -> list:
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        assert time.monotonic() < deadline, f"only {len(out)} events"
        for r in client.poll_batch(64):
            if r.is_heartbeat:
                continue
            engine.set_checksum_enabled(r.checksum_enabled)
            engine.feed(r.data)
            while (ev := engine.next_event()) is not None:
                out.append(ev)
    return out


def test_binlog_client_feeds_an_engine(server, workload):
    with (
        BinlogClient(**conn(server, start_gtid=workload["start"], server_id=4245)) as client,
        CdcEngine() as engine,
    ):
        engine.set_include_databases([DB])
        client.connect()
        assert client.is_connected and client.flavor == ServerFlavor.MARIADB
        client.start()
        assert client.is_streaming and client.checksum_enabled
        assert client.current_gtid == workload["start"]
        events = poll_events(client, engine, 4)
        check_events(events[:4])
        # The DELETE's transaction ends with the XID right after its rows event.
        for _ in range(50):
            if seq(client.current_gtid) >= seq(events[3].gtid):
                break
            client.poll_batch(64)
        assert seq(client.current_gtid) >= seq(events[3].gtid)
        # Every event's CRC32 trailer is checked on arrival (the artificial ROTATE and the
        # FORMAT_DESCRIPTION included); none of the server's is wrong.
        assert client.crc_errors == 0
        client.stop()
        assert not client.is_streaming
    assert not client.is_connected


def test_binlog_client_wrong_password(server):
    with BinlogClient(**conn(server, password="nope", server_id=4246)) as client:
        with pytest.raises(MesConnectionError) as info:
            client.connect()
        assert info.value.code == 401
        assert client.last_error


def test_enable_metadata(server):
    with CdcEngine() as engine:
        engine.enable_metadata(**{k: v for k, v in conn(server).items()})
    with CdcEngine() as engine, pytest.raises(MesConnectionError) as info:
        engine.enable_metadata(**conn(server, password="nope"))
    assert info.value.code == 401


def test_cdc_stream_survives_cancelled_waits(server, workload):
    """A cancelled ``__anext__`` (e.g. asyncio.wait_for timing out) loses no events."""

    async def main() -> None:
        stream = CdcStream(
            **conn(server, start_gtid=workload["start"], server_id=4247),
            include_databases=[DB],
            native_types=True,
        )
        events: list = []
        deadline = time.monotonic() + 20
        while len(events) < 4:
            assert time.monotonic() < deadline
            try:
                events.append(await asyncio.wait_for(stream.__anext__(), 0.001))
            except TimeoutError:
                pass
        await stream.close()
        check_events(events)

    asyncio.run(main())


def test_cdc_stream_filters_and_metadata_callback(server, workload):
    async def main() -> None:
        errors: list = []
        stream = CdcStream(
            **conn(server, start_gtid=workload["start"], server_id=4248),
            include_databases=[DB],
            exclude_tables=[f"{DB}.t"],
            on_metadata_error=errors.append,
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 1.5)
        await stream.close()
        assert errors == []
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()

    asyncio.run(main())


def test_binlog_client_poll_and_stop_from_another_thread(server, workload):
    import threading

    with BinlogClient(**conn(server, start_gtid=workload["start"], server_id=4249)) as client:
        client.connect()
        client.start()
        first = client.poll()
        assert first.data is not None or first.is_heartbeat
        # Drain, then a poll with nothing queued is unblocked by stop() from another thread.
        while client.queued_bytes:
            client.poll_batch(1024)
        threading.Timer(0.3, client.stop).start()
        with pytest.raises(Exception) as info:
            while True:
                client.poll()
        assert getattr(info.value, "code", None) == 404


def test_cdc_stream_tails_new_writes(server, workload):
    """Started at the current end, the stream delivers what is written afterwards."""

    async def main() -> None:
        async with CdcStream(
            **conn(server, server_id=4250), include_tables=[f"{DB}.t"], native_types=True
        ) as stream:
            task = asyncio.create_task(stream.__anext__())
            for _ in range(100):  # wait until connected
                if stream._native is not None and stream._start_task is None:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            sql(server, f"INSERT INTO {DB}.t VALUES (100, 'live', -1)")
            ev = await asyncio.wait_for(task, 20)
            assert ev.type == EventType.INSERT and ev.after == {"id": 100, "name": "live", "n": -1}
            for _ in range(100):
                if stream.current_gtid and seq(stream.current_gtid) >= seq(ev.gtid):
                    break
                await asyncio.sleep(0.01)
            assert seq(stream.current_gtid) >= seq(ev.gtid)
        sql(server, f"DELETE FROM {DB}.t WHERE id = 100")

    asyncio.run(main())


def test_cdc_stream_backlog_checkpoints_and_yields(server, workload):
    """A backlog spanning many native batches: every row arrives once, in order; the checkpoint
    after each event covers exactly the transactions finished by then; other tasks keep
    running while the backlog is streamed (the loop yields between batches)."""
    sizes = [700, 1, 450, 300]
    start = sql(server, "SELECT @@gtid_binlog_pos").strip()
    statements = [
        f"USE {DB}",
        f"DROP TABLE IF EXISTS {DB}.bulk",
        f"CREATE TABLE {DB}.bulk (id INT PRIMARY KEY, k INT)",
    ]
    first = 1
    for n in sizes:
        statements.append(
            f"INSERT INTO {DB}.bulk SELECT seq, seq * 3 FROM seq_{first}_to_{first + n - 1}"
        )
        first += n
    sql(server, "; ".join(statements))
    total = sum(sizes)

    async def main() -> None:
        ticker = Ticker(0)
        stream = CdcStream(
            **conn(server, start_gtid=start, server_id=4251), include_tables=[f"{DB}.bulk"]
        )
        got = await collect(stream, total)
        await stream.close()
        ticks = await ticker.stop()
        ids = [e.after["id"] for e, _ in got]
        assert ids == list(range(1, total + 1))
        assert all(e.type == EventType.INSERT and e.after["k"] == 3 * e.after["id"] for e, _ in got)
        gtids = [seq(e.gtid) for e, _ in got]
        assert len(set(gtids)) == len(sizes) and gtids == sorted(gtids)
        for i, (ev, cp) in enumerate(got):
            covered = seq(cp) if cp else 0
            last_of_trx = i + 1 == total or gtids[i + 1] != gtids[i]
            if last_of_trx:
                if i + 1 < total:
                    assert seq(ev.gtid) <= covered < gtids[i + 1], (i, cp)
            else:
                assert covered < gtids[i], (i, cp)
        assert ticks >= total // 1024, ticks

    asyncio.run(main())
