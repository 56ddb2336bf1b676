"""CdcEngine: binlog bytes in, row change events out (synchronous, no I/O)."""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import json as _json
from typing import Any

from . import _native
from . import logging as _logging
from ._options import refuse_unknown_options, validate_option, validate_options
from .types import (
    CONNECTION_ERROR_CODES,
    BinlogPosition,
    ChangeEvent,
    EventType,
    MesConnectionError,
    MesErrorCode,
    exception_for_rc,
    mes_validation_error,
)

__all__ = ["CdcEngine"]

_native._init(
    {
        "ChangeEvent": ChangeEvent,
        "BinlogPosition": BinlogPosition,
        "INSERT": EventType.INSERT,
        "UPDATE": EventType.UPDATE,
        "DELETE": EventType.DELETE,
        "exception_for_rc": exception_for_rc,
        "mes_validation_error": mes_validation_error,
        "log_dispatch": _logging._dispatch,
        "date": _dt.date,
        "datetime": _dt.datetime,
        "timedelta": _dt.timedelta,
        "utc": _dt.UTC,
        "Decimal": _decimal.Decimal,
        "json_loads": _json.loads,
    }
)


class CdcEngine(_native.NativeEngine):
    """Decode binlog bytes into :class:`ChangeEvent` objects.

    Synchronous and single-owner (not thread-safe); the GIL is released while decoding.
    ``feed`` checks every row of what it consumes (so every decode error raises from ``feed``);
    when one call queues more than 64 events, the rest are decoded into values by a helper
    thread of the engine while ``next_event()`` converts the earlier ones (started on first
    need, ended by ``close()`` or when the engine is dropped; no Python code runs on it). For
    a call of 128 KiB or more, the helper also checks part of the rows while ``feed`` works
    through the rest; ``feed`` still returns only when every row it consumed is checked.
    Feed the bytes of a binlog stream (a file without its 4-byte ``\\xfebin`` magic, or what
    ``BinlogClient.poll()`` returns), then pull events::

        with CdcEngine() as engine:
            engine.feed(chunk)
            while (event := engine.next_event()) is not None:
                print(event)

    The data path is native (inherited): ``feed(data)`` returns the number of bytes consumed
    (fewer than ``len(data)`` when the decoded-event queue is full: drain it with
    ``next_event()`` and feed ``data[consumed:]`` again; partial events are kept across calls;
    after a ParseError / ChecksumError / DecodeError only ``reset()`` is valid);
    ``next_event()`` pops a ChangeEvent or returns None; ``has_events()``; ``get_position()``
    (file of the last ROTATE, offset after the last event); ``reset()`` (clears the parser
    buffer, table maps, position and error state, keeps queued events, filters, limits and
    the pre-verified flag); ``get_max_queue_bytes()``, ``get_max_event_size()``,
    ``get_trailer_pre_verified()``; ``close()`` (idempotent; later calls raise MesError
    code 2).

    ``native_types=True`` (an addition) makes column values Python types: ``datetime`` /
    ``date`` / ``timedelta``, ``Decimal``, ``dict``/``list`` for JSON, ENUM labels, SET
    ``frozenset``, ``list[float]`` for VECTOR, aware UTC ``datetime`` for TIMESTAMP. Zero dates
    stay ``str``. ``lib_path`` is accepted for compatibility and ignored.
    """

    def __init__(self, lib_path: str | None = None, *, native_types: bool = False) -> None:
        validate_option("lib_path", lib_path)
        if not isinstance(native_types, bool):
            raise mes_validation_error(TypeError("native_types must be a bool"))

    def __enter__(self) -> CdcEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- limits ----------------------------------------------------------------------------

    def set_max_queue_size(self, max_size: int) -> None:
        """Stop consuming input while this many events are queued (0: default 10000).

        Checked after each binlog event, so one multi-row event can overshoot.
        """
        self._check_open()
        validate_option("max_queue_size", max_size)
        super().set_max_queue_size(max_size)

    def set_max_queue_bytes(self, max_queue_bytes: int) -> None:
        """Stop consuming input while the queued events hold this many bytes (0: 48 MiB)."""
        self._check_open()
        validate_option("max_queue_bytes", max_queue_bytes)
        super().set_max_queue_bytes(max_queue_bytes)

    def set_max_event_size(self, max_event_size: int) -> None:
        """Refuse (ParseError) events larger than this; default 64 MiB, 0 = the 1 GiB cap,
        clamped to [23, 1 GiB]."""
        self._check_open()
        if isinstance(max_event_size, bool) or not isinstance(max_event_size, int):
            raise mes_validation_error(TypeError("max_event_size must be an integer"))
        if not 0 <= max_event_size <= 2**32 - 1:
            raise mes_validation_error(ValueError("max_event_size must fit in uint32"))
        super().set_max_event_size(max_event_size)

    def set_checksum_enabled(self, enabled: bool) -> None:
        """Whether events end in a CRC32 trailer (default True).

        A FORMAT_DESCRIPTION_EVENT in the stream decides for the events that follow it, so
        this matters for the events before the first one (e.g. a dump's artificial ROTATE).
        Takes effect at once when nothing was fed since creation / reset(), otherwise at the
        next reset().
        """
        self._check_open()
        if not isinstance(enabled, bool):
            raise mes_validation_error(
                TypeError(f"enabled must be bool, got {type(enabled).__name__}")
            )
        super().set_checksum_enabled(enabled)

    def set_trailer_pre_verified(self, pre_verified: bool) -> None:
        """Skip the engine's CRC32 verification (framing unchanged). Only set it when every fed
        event was verified upstream. Takes effect at once when nothing was fed since creation /
        reset(), otherwise at the next reset()."""
        self._check_open()
        if not isinstance(pre_verified, bool):
            raise mes_validation_error(
                TypeError(f"pre_verified must be bool, got {type(pre_verified).__name__}")
            )
        super().set_trailer_pre_verified(pre_verified)

    # -- filters ---------------------------------------------------------------------------

    def _set_filter(self, option: str, names: list[str]) -> None:
        self._check_open()
        validate_option(option, names)
        self._set_filter_native(option, list(names))

    def set_include_databases(self, databases: list[str]) -> None:
        """Only emit rows of these databases (exact, case-sensitive); ``[]`` clears."""
        self._set_filter("include_databases", databases)

    def set_include_tables(self, tables: list[str]) -> None:
        """Only emit rows of these tables: ``"db.table"`` or bare ``"table"`` (any database);
        a trailing ``*`` is a case-sensitive prefix; ``[]`` clears."""
        self._set_filter("include_tables", tables)

    def set_exclude_tables(self, tables: list[str]) -> None:
        """Never emit rows of these tables (same syntax); exclusion wins."""
        self._set_filter("exclude_tables", tables)

    # -- column names from a side connection -------------------------------------------------

    @refuse_unknown_options
    def enable_metadata(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 3306,
        user: str = "root",
        password: str = "",
        server_id: int = 1,
        connect_timeout_s: int = 10,
        read_timeout_s: int = 30,
        ssl_mode: int = 1,
        ssl_ca: str = "",
        ssl_cert: str = "",
        ssl_key: str = "",
        allow_public_key_retrieval: bool = False,
    ) -> None:
        """Resolve column names of tables whose TABLE_MAP has none through a side connection.

        The connection is checked now (failure: MesConnectionError); lookups then happen on
        demand and reconnect after a failure. Without names, column keys are ``"0"``, ``"1"``...
        """
        self._check_open()
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "user": user,
            "password": password,
            "server_id": server_id,
            "connect_timeout_s": connect_timeout_s,
            "read_timeout_s": read_timeout_s,
            "ssl_mode": ssl_mode,
            "ssl_ca": ssl_ca,
            "ssl_cert": ssl_cert,
            "ssl_key": ssl_key,
            "allow_public_key_retrieval": allow_public_key_retrieval,
        }
        validate_options(options)
        try:
            self._enable_metadata(options)
        except _native.LiveError as e:
            code, message = e.args
            if code in CONNECTION_ERROR_CODES:
                raise MesConnectionError(message, code) from None
            raise exception_for_rc(code, message) from None

    def _check_open(self) -> None:
        if self._closed:
            raise exception_for_rc(MesErrorCode.INVALID_ARG, "Engine has been closed")
