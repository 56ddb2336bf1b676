"""CdcStream: async iteration over a live server's row changes.

Backed by the Rust blocking driver (``mes_blocking::BinlogStream``: a reader thread that
decodes, filters, and reconnects from the last finished transaction). Events already queued
are converted in short batches on the event loop's thread; a wait for more runs in
``asyncio.to_thread`` (the GIL is released while waiting), so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from . import _native
from ._contract import NON_RETRYABLE_ERROR_CODES, backoff_delay_ms
from ._options import refuse_unknown_options, validate_options
from .client import live_exception, native_options
from .types import ChangeEvent, mes_validation_error

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


# Events per native batch: converted on the event loop's thread when they are already queued,
# so a batch must be short (~0.1 ms) to never hold up the loop long.
_BATCH = 128
# Batches taken without suspending: the loop yields once they went on for this long (seconds).
_YIELD_S = 0.001
# How long one wait in a worker thread may last (ms) before it returns empty and is retried.
_WAIT_MS = 500


class CdcStream:
    """Async iterator of :class:`ChangeEvent` from a live server."""

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
        self._native: Any = None
        #: The native fetch in flight (shielded: a cancelled __anext__ loses no events).
        self._fetch: asyncio.Future[Any] | None = None
        self._start_task: asyncio.Future[bool] | None = None
        self._buffer: deque[ChangeEvent] = deque()
        # (events handed out when it applies, checkpoint): from each batch's marks.
        self._marks: deque[tuple[int, str]] = deque()
        self._handed_out = 0  # events delivered so far
        self._next_mark = 0  # the first mark's event count (0: no mark pending)
        # Batches are being taken without suspending; the loop yields at _yield_at.
        self._yield_due = False
        self._yield_at = 0.0
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
        if not self._buffer and self._fetch is None and self._native is not None:
            self._current_gtid = self._native.current_gtid or self._current_gtid
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

    def _make_native(self, schema_lookup: bool) -> Any:
        o = self._options
        return _native.NativeStream(
            native_options(o),
            include_databases=list(o["include_databases"] or []),
            include_tables=list(o["include_tables"] or []),
            exclude_tables=list(o["exclude_tables"] or []),
            max_queue_size=o["max_queue_size"],
            max_queue_bytes=o["max_queue_bytes"],
            max_reconnect_attempts=o["max_reconnect_attempts"],
            schema_lookup=schema_lookup,
            native_types=o["native_types"],
        )

    async def _metadata_available(self) -> bool:
        """Check the metadata side connection; a failure goes to ``on_metadata_error``."""
        try:
            await asyncio.to_thread(_native.check_metadata, native_options(self._options))
            return True
        except _native.LiveError as e:
            exc = live_exception(e, connecting=True)
        callback = self._options["on_metadata_error"]
        if callback is not None:
            callback(exc)
        return False

    async def _start(self) -> bool:
        """Connect (with retries); False when the stream was closed meanwhile."""
        attempts = 0
        budget = self._options["max_reconnect_attempts"]
        schema_lookup: bool | None = None
        while True:
            if schema_lookup is None:
                # Like the original: enable_metadata() before connect(); failure is not fatal.
                schema_lookup = await self._metadata_available()
            native = self._make_native(schema_lookup)
            self._native = native
            try:
                await asyncio.to_thread(native.start)
                return not self._closed
            except _native.LiveError as e:
                exc = live_exception(e, connecting=True)
            code = getattr(exc, "code", None)
            if budget == 0 or code in NON_RETRYABLE_ERROR_CODES or attempts >= budget:
                await self.close()
                raise exc
            attempts += 1
            await asyncio.sleep(backoff_delay_ms(attempts, random.random()) / 1000)
            if self._closed:
                return False

    async def __anext__(self) -> ChangeEvent:
        # Fast path: hand out a buffered event (no native call, no suspension).
        if self._buffer:
            n = self._handed_out + 1
            self._handed_out = n
            if n == self._next_mark:
                self._take_mark()
            return self._buffer.popleft()
        return await self._refill()

    def _take_mark(self) -> None:
        # The checkpoint covers a transaction once its last event was handed out.
        marks = self._marks
        self._current_gtid = marks.popleft()[1]
        self._next_mark = marks[0][0] if marks else 0

    def _take_batch(self, events: list[ChangeEvent], marks: list[tuple[int, str]]) -> ChangeEvent:
        """Buffer a non-empty batch and hand out its first event."""
        # A batch is taken only once the buffer is empty: its events follow the ones handed
        # out so far.
        base = self._handed_out
        if marks:
            self._marks.extend((base + i + 1, cp) for i, cp in marks)
            self._next_mark = self._marks[0][0]
        self._buffer.extend(events)
        n = base + 1
        self._handed_out = n
        if n == self._next_mark:
            self._take_mark()
        return self._buffer.popleft()

    async def _refill(self) -> ChangeEvent:
        """The buffer is empty: start the stream if needed, then take the next batch."""
        if not self._started and not self._closed:
            self._started = True
            self._start_task = asyncio.ensure_future(self._start())
        if self._start_task is not None:
            # Shielded: a cancelled __anext__ leaves the start running for the next call.
            try:
                started = await asyncio.shield(self._start_task)
            except asyncio.CancelledError:
                raise
            except BaseException:
                self._start_task = None
                raise
            self._start_task = None
            if not started:
                raise StopAsyncIteration
        while True:
            if self._closed or self._native is None:
                raise StopAsyncIteration
            native = self._native
            if self._fetch is None:
                if self._yield_due and time.monotonic() >= self._yield_at:
                    # Batches were taken without suspending for a while: let other tasks
                    # run, as a busy stream would otherwise never yield.
                    self._yield_due = False
                    await asyncio.sleep(0)
                    continue
                # Events already queued are converted right here, without a thread
                # hand-off (the objects stay in this core's cache); only a wait goes to a
                # worker thread (the GIL is released while waiting).
                try:
                    batch = native.next_batch(0, _BATCH)
                except _native.LiveError as e:
                    await self.close()
                    raise live_exception(e, connecting=False) from None
                if batch is not None and batch[0]:
                    if not self._yield_due:
                        self._yield_due = True
                        self._yield_at = time.monotonic() + _YIELD_S
                    return self._take_batch(*batch)
                if batch is not None:
                    self._fetch = asyncio.ensure_future(
                        asyncio.to_thread(native.next_batch, _WAIT_MS, _BATCH)
                    )
            else:
                batch = None
            if self._fetch is not None:
                self._yield_due = False
                try:
                    batch = await asyncio.shield(self._fetch)
                except _native.LiveError as e:
                    self._fetch = None
                    await self.close()
                    raise live_exception(e, connecting=False) from None
                self._fetch = None
            if batch is None:
                await self.close()
                raise StopAsyncIteration
            events, marks = batch
            if events:
                return self._take_batch(events, marks)

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        await self.close()

    async def close(self) -> None:
        """Stop streaming and release everything (idempotent)."""
        _ = self.current_gtid  # take a checkpoint that arrived after the last batch
        self._closed = True
        self._buffer.clear()
        self._marks.clear()
        self._next_mark = 0
        native, self._native = self._native, None
        fetch, self._fetch = self._fetch, None
        if native is not None:
            native.stop()
            if fetch is not None:
                # Its events are dropped with the stream; only let the thread finish.
                await asyncio.wait([fetch])
                if not fetch.cancelled():
                    fetch.exception()
            await asyncio.to_thread(native.close)
