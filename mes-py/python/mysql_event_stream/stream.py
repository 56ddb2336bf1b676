"""CdcStream: async iteration over a live server's row changes.

This build validates and holds the options exactly like the original package (constructor and
``configure()``), and keeps its lifecycle rules (one iteration per stream, ``close()`` ends
it), but live streaming is not wired to the Rust driver yet: the first ``__anext__`` raises
MesConnectionError saying so (it is not retried, since no retry could succeed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._options import refuse_unknown_options, validate_options
from .client import NOT_AVAILABLE
from .types import ChangeEvent, MesConnectionError, MesErrorCode, mes_validation_error

__all__ = ["CdcStream"]

_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 3306,
    "user": "root",
    "password": "",
    "server_id": 1,
    "start_gtid": None,
    "start_binlog_file": None,
    "start_binlog_position": None,
    "connect_timeout_s": 10,
    "read_timeout_s": 30,
    "ssl_mode": 1,
    "ssl_ca": "",
    "ssl_cert": "",
    "ssl_key": "",
    "max_queue_size": 0,
    "max_queue_bytes": 48 * 1024 * 1024,
    "max_event_size": 32 * 1024 * 1024,
    "include_databases": None,
    "include_tables": None,
    "exclude_tables": None,
    "allow_public_key_retrieval": False,
    "lib_path": None,
    "max_reconnect_attempts": 10,
    "on_metadata_error": None,
    "native_types": False,
}

_LIST_OPTIONS = ("include_databases", "include_tables", "exclude_tables")


def _checked(options: dict[str, Any], base: dict[str, Any] | None = None) -> None:
    # None resets a filter list; every other option is validated as given.
    present = {
        k: v
        for k, v in options.items()
        if not (k in _LIST_OPTIONS and v is None) and k not in ("native_types",)
    }
    if "native_types" in options and not isinstance(options["native_types"], bool):
        raise mes_validation_error(TypeError("native_types must be a bool"))
    if options.get("server_id", 1) == 0:
        raise mes_validation_error(ValueError("server_id must be non-zero"))
    validate_options(present, base)


class CdcStream:
    """Async iterator of :class:`ChangeEvent` from a live server (not available yet)."""

    @refuse_unknown_options
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 3306,
        user: str = "root",
        password: str = "",
        server_id: int = 1,
        start_gtid: str | None = None,
        start_binlog_file: str | None = None,
        start_binlog_position: int | None = None,
        connect_timeout_s: int = 10,
        read_timeout_s: int = 30,
        ssl_mode: int = 1,
        ssl_ca: str = "",
        ssl_cert: str = "",
        ssl_key: str = "",
        max_queue_size: int = 0,
        max_queue_bytes: int = 48 * 1024 * 1024,
        max_event_size: int = 32 * 1024 * 1024,
        include_databases: list[str] | None = None,
        include_tables: list[str] | None = None,
        exclude_tables: list[str] | None = None,
        allow_public_key_retrieval: bool = False,
        lib_path: str | None = None,
        max_reconnect_attempts: int = 10,
        on_metadata_error: Callable[[Exception], None] | None = None,
        native_types: bool = False,
    ) -> None:
        options = dict(locals())
        options.pop("self")
        self._closed = False
        self._iterating = False
        self._started = False
        self._current_gtid = ""
        _checked(options)
        self._options = options

    def configure(self, **overrides: object) -> None:
        """Change options before the first iteration (``None`` resets a filter list)."""
        if self._started or self._iterating:
            raise mes_validation_error(
                RuntimeError("configure() is only allowed before the stream is iterated")
            )
        for key in overrides:
            if key not in _DEFAULTS:
                raise mes_validation_error(TypeError(f"Unknown config key: {key!r}"))
        base = {
            k: v
            for k, v in self._options.items()
            if not (k in _LIST_OPTIONS and v is None) and k != "native_types"
        }
        _checked(dict(overrides), base)
        self._options.update(overrides)

    @property
    def current_gtid(self) -> str:
        """Checkpoint after the last delivered transaction ("" = none yet; survives close)."""
        return self._current_gtid

    async def __aenter__(self) -> CdcStream:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def __aiter__(self) -> CdcStream:
        if self._iterating or self._started:
            raise mes_validation_error(
                RuntimeError("a CdcStream can be iterated only once; create a new one")
            )
        self._iterating = True
        return self

    async def __anext__(self) -> ChangeEvent:
        if self._closed:
            raise StopAsyncIteration
        self._started = True
        host, port = self._options["host"], self._options["port"]
        await self.close()
        raise MesConnectionError(
            f"connection error: Failed to connect to {host}:{port}: {NOT_AVAILABLE}",
            MesErrorCode.CONNECT,
        )

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        await self.close()

    async def close(self) -> None:
        """Stop streaming and release everything (idempotent)."""
        self._closed = True
