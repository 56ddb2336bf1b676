"""The public surface: names, enums, dataclasses, exceptions, option validation, and the
not-yet-live BinlogClient / CdcStream (PYTHON_API.md §1)."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from enum import Enum, IntEnum
from pathlib import Path

import mysql_event_stream as mes
import pytest
from mysql_event_stream import (
    BinlogClient,
    BinlogPosition,
    CdcEngine,
    CdcStream,
    ChangeEvent,
    ChecksumError,
    ClientConfig,
    DecodeError,
    EventType,
    LogLevel,
    MesConnectionError,
    MesError,
    MesErrorCode,
    ParseError,
    PollResult,
    ServerFlavor,
    SslMode,
    set_log_callback,
)
from mysql_event_stream.types import CONNECTION_ERROR_CODES, exception_for_rc

EXPECTED_ALL = {
    "BinlogClient",
    "BinlogPosition",
    "CdcEngine",
    "CdcStream",
    "ChangeEvent",
    "ChecksumError",
    "ClientConfig",
    "DecodeError",
    "EventType",
    "LogLevel",
    "MesConnectionError",
    "MesError",
    "MesErrorCode",
    "ParseError",
    "PollResult",
    "ServerFlavor",
    "SslMode",
    "set_log_callback",
}


def test_exports():
    assert len(mes.__all__) == 18
    assert set(mes.__all__) == EXPECTED_ALL
    for name in mes.__all__:
        assert hasattr(mes, name)
    # Deprecated, importable, not exported.
    from mysql_event_stream import ColumnType, ColumnValue

    assert "ColumnType" not in mes.__all__ and "ColumnValue" not in mes.__all__
    assert ColumnValue.int_val(3) == ColumnValue(ColumnType.INT, 3)
    assert ColumnValue.null().value is None
    assert ColumnType.BYTES.value == "bytes"


def test_submodules_and_typed_marker():
    for sub in ("client", "engine", "stream", "types", "logging", "_contract", "_options"):
        importlib.import_module(f"mysql_event_stream.{sub}")
    assert mes.client.BinlogClient is BinlogClient
    assert mes.stream.CdcStream is CdcStream
    assert mes.engine.CdcEngine is CdcEngine
    assert callable(mes.types.exception_for_rc)
    assert (Path(mes.__file__).parent / "py.typed").is_file()


def test_enums():
    assert issubclass(EventType, Enum) and not issubclass(EventType, IntEnum)
    assert [e.value for e in EventType] == [0, 1, 2]
    assert EventType.INSERT != 0
    assert issubclass(SslMode, IntEnum) and SslMode.VERIFY_IDENTITY == 4 and SslMode.PREFERRED == 1
    assert ServerFlavor.MYSQL == 0 and ServerFlavor.MARIADB == 1
    assert LogLevel.ERROR == 0 and LogLevel.DEBUG == 3
    expected = dict(
        OK=0, NULL_ARG=1, INVALID_ARG=2, INTERNAL=99, PARSE=100, CHECKSUM=101, DECODE=200,
        DECODE_COLUMN=201, DECODE_ROW=202, NO_EVENT=300, QUEUE_FULL=301, CONNECT=400, AUTH=401,
        VALIDATION=402, STREAM=403, DISCONNECTED=404, GTID_PURGED=405, GTID_TAGGED_UNSUPPORTED=406,
    )  # fmt: skip
    assert {m.name: m.value for m in MesErrorCode} == expected


def _is_frozen_slots(cls):
    params = cls.__dataclass_params__
    return params.frozen and hasattr(cls, "__slots__")


def test_dataclasses():
    for cls in (BinlogPosition, ChangeEvent, PollResult, ClientConfig):
        assert _is_frozen_slots(cls), cls
    assert BinlogPosition() == BinlogPosition("", 0)
    names = [f.name for f in dataclasses.fields(ChangeEvent)]
    assert names == [
        "type", "database", "table", "before", "after", "timestamp", "position",
        "names_resolved", "source_sql", "gtid",
    ]  # fmt: skip
    ev = ChangeEvent(EventType.INSERT, "d", "t", None, {"a": 1}, 5, BinlogPosition("f", 9))
    assert ev.names_resolved is True and ev.source_sql == "" and ev.gtid is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.table = "x"  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(PollResult)] == [
        "data", "is_heartbeat", "checksum_enabled",
    ]  # fmt: skip
    c = ClientConfig(password="hunter2")
    assert "hunter2" not in repr(c)
    assert (c.host, c.port, c.user, c.server_id) == ("127.0.0.1", 3306, "root", 1)
    assert (c.start_gtid, c.start_binlog_file, c.start_binlog_position) == (None, None, None)
    assert (c.connect_timeout_s, c.read_timeout_s, c.ssl_mode) == (10, 30, 1)
    assert (c.ssl_ca, c.ssl_cert, c.ssl_key, c.max_queue_size) == ("", "", "", 0)
    assert c.max_queue_bytes == 48 * 1024 * 1024 and c.max_event_size == 32 * 1024 * 1024
    assert c.allow_public_key_retrieval is False


def test_exceptions():
    for cls in (ParseError, DecodeError, ChecksumError):
        assert issubclass(cls, MesError)
    assert issubclass(MesError, RuntimeError)
    assert issubclass(MesConnectionError, ConnectionError) and issubclass(
        MesConnectionError, OSError
    )
    assert not issubclass(MesConnectionError, MesError)
    assert MesError("x").code == MesErrorCode.INTERNAL
    e = MesConnectionError("boom", 400)
    assert str(e) == "boom" and e.code == 400
    assert type(exception_for_rc(101, "m")) is ChecksumError
    for rc in (200, 201, 202):
        assert type(exception_for_rc(rc, "m")) is DecodeError
    assert type(exception_for_rc(100, "m")) is ParseError
    for rc in (2, 99, 300, 404):
        err = exception_for_rc(rc, "m")
        assert type(err) is MesError and err.code == rc
    assert list(CONNECTION_ERROR_CODES) == list(range(400, 500))
    from mysql_event_stream._contract import NON_RETRYABLE_ERROR_CODES, backoff_delay_ms

    assert set(NON_RETRYABLE_ERROR_CODES) == {
        1,
        2,
        100,
        101,
        200,
        201,
        202,
        301,
        401,
        402,
        405,
        406,
    }
    assert backoff_delay_ms(1, 0.0) == 500 and backoff_delay_ms(20, 0.999999) < 10000.01


def _coded(exc_info, cls):
    assert type(exc_info.value) is cls
    assert exc_info.value.code == MesErrorCode.INVALID_ARG


@pytest.mark.parametrize(
    ("kwargs", "cls"),
    [
        ({"port": 0}, ValueError),
        ({"port": 65536}, ValueError),
        ({"port": True}, TypeError),
        ({"port": "3306"}, TypeError),
        ({"server_id": 0}, ValueError),
        ({"server_id": 2**32}, ValueError),
        ({"connect_timeout_s": -1}, ValueError),
        ({"ssl_mode": 5}, ValueError),
        ({"max_queue_size": 2**53}, ValueError),
        ({"max_event_size": 2**32}, ValueError),
        ({"host": "a\x00b"}, ValueError),
        ({"host": b"h"}, TypeError),
        ({"start_binlog_file": ""}, ValueError),
        ({"start_binlog_file": "f.000001"}, ValueError),
        ({"start_binlog_position": 4}, ValueError),
        ({"start_binlog_file": "f", "start_binlog_position": 3}, ValueError),
        ({"start_gtid": "", "start_binlog_file": "f", "start_binlog_position": 4}, ValueError),
        ({"max_queue_bytes": 1024}, ValueError),
        ({"allow_public_key_retrieval": 1}, TypeError),
        ({"bogus": 1}, TypeError),
    ],
)
def test_option_validation_everywhere(kwargs, cls):
    with pytest.raises(cls) as info:
        BinlogClient(**kwargs)
    _coded(info, cls)
    with pytest.raises(cls) as info:
        CdcStream(**kwargs)
    _coded(info, cls)


def test_option_validation_specifics():
    with pytest.raises(TypeError, match="Unknown config key: 'x'"):
        BinlogClient(x=1)
    with pytest.raises(TypeError) as info:
        CdcStream(include_tables=("a",))
    _coded(info, TypeError)
    CdcStream(include_tables=["db.t*"], exclude_tables=[], include_databases=None)
    # max_queue_bytes must admit one max_event_size event plus 1 MiB + 1.
    BinlogClient(max_event_size=1024, max_queue_bytes=1024 + 1 + 1024 * 1024)
    with pytest.raises(ValueError):
        BinlogClient(max_event_size=1024, max_queue_bytes=1024 + 1024 * 1024)
    # 0 resolves to the 1 GiB cap.
    with pytest.raises(ValueError):
        BinlogClient(max_event_size=0)
    # Valid start modes.
    BinlogClient(start_gtid="")
    BinlogClient(start_binlog_file="binlog.000001", start_binlog_position=4)
    # config= is validated too.
    with pytest.raises(ValueError):
        BinlogClient(config=ClientConfig(port=0))
    from mysql_event_stream._options import start_mode

    assert start_mode({}) == 0 and start_mode({"start_gtid": ""}) == 1
    assert start_mode({"start_binlog_file": "f", "start_binlog_position": 4}) == 2


def test_binlog_client_offline():
    with BinlogClient(host="127.0.0.1", port=1) as client:
        assert not client.is_connected and not client.is_streaming
        assert client.current_gtid == "" and client.flavor == ServerFlavor.MYSQL
        assert client.max_queue_bytes == 48 * 1024 * 1024
        with pytest.raises(MesConnectionError) as info:
            client.connect()
        assert info.value.code == MesErrorCode.CONNECT
        assert str(info.value).startswith("connection error: Failed to connect to 127.0.0.1:1")
        with pytest.raises(MesError) as info:
            client.start()
        assert info.value.code == 404 and str(info.value) == "disconnected: Not connected"
        with pytest.raises(ValueError):
            client.poll_batch(0)
    client.close()
    with pytest.raises(MesError) as info:
        client.connect()
    assert info.value.code == 2 and "closed" in str(info.value)
    assert client.max_queue_bytes == 0


def test_cdc_stream_offline():
    async def main():
        stream = CdcStream(port=1, max_reconnect_attempts=0)
        stream.configure(include_databases=["a"], port=2)
        with pytest.raises(ValueError):
            stream.configure(port=0)
        with pytest.raises(TypeError):
            stream.configure(nope=1)
        with pytest.raises(MesConnectionError) as info:
            async for _ in stream:
                pass
        assert info.value.code == 400
        assert str(info.value).startswith("connection error: Failed to connect to 127.0.0.1:2")
        assert stream.current_gtid == ""
        with pytest.raises(RuntimeError) as info2:
            async for _ in stream:
                pass
        assert info2.value.code == 2
        async with CdcStream() as s2:
            pass
        # Closed before iterating: iteration just ends.
        assert [e async for e in s2] == []

    asyncio.run(main())


def test_set_log_callback_validation():
    with pytest.raises(TypeError) as info:
        set_log_callback(42)  # type: ignore[arg-type]
    assert info.value.code == 2
    with pytest.raises(ValueError):
        set_log_callback(lambda *_: None, 7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        set_log_callback(lambda *_: None, True)  # type: ignore[arg-type]
    set_log_callback(lambda *_: None, LogLevel.DEBUG, lib_path=None)
    set_log_callback(None)
