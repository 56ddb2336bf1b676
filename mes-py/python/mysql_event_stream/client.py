"""BinlogClient: a replication connection that yields raw binlog events.

The connection runs in Rust (the sans-IO protocol of ``mysql_repl_proto`` driven by a reader
thread; the GIL is released while waiting). ``poll()`` hands out the raw event bytes with their
framing, ready for ``engine.set_checksum_enabled(r.checksum_enabled); engine.feed(r.data)``.
"""

from __future__ import annotations

from dataclasses import fields

from . import _native
from . import engine as _engine  # noqa: F401 - registers the native types
from ._contract import (
    POLL_BATCH_DEFAULT_MAX_EVENTS,
    POLL_BATCH_MAX_MAX_EVENTS,
    POLL_BATCH_MIN_MAX_EVENTS,
)
from ._options import refuse_unknown_options, validate_option, validate_options
from .types import (
    CONNECTION_ERROR_CODES,
    ClientConfig,
    MesConnectionError,
    MesErrorCode,
    PollResult,
    ServerFlavor,
    exception_for_rc,
    mes_validation_error,
)

__all__ = ["BinlogClient"]

#: Keys of the native ``Options`` (connection settings).
NATIVE_OPTION_KEYS = (
    "host",
    "port",
    "user",
    "password",
    "server_id",
    "start_gtid",
    "start_binlog_file",
    "start_binlog_position",
    "connect_timeout_s",
    "read_timeout_s",
    "ssl_mode",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "max_event_size",
    "allow_public_key_retrieval",
)


def native_options(options: dict[str, object]) -> dict[str, object]:
    """The connection settings the native layer reads."""
    return {k: options[k] for k in NATIVE_OPTION_KEYS if k in options}


def live_exception(err: BaseException, *, connecting: bool) -> BaseException:
    """The public exception for a native ``LiveError(code, message)``: MesConnectionError for
    connection-range codes while connecting, else the typed MesError."""
    code, message = err.args
    if connecting and code in CONNECTION_ERROR_CODES:
        return MesConnectionError(message, code)
    return exception_for_rc(code, message)


def validate_poll_batch_size(max_events: int) -> None:
    """``max_events`` must be an int in 1..1024."""
    if isinstance(max_events, bool) or not isinstance(max_events, int):
        raise mes_validation_error(TypeError("max_events must be an integer"))
    if not POLL_BATCH_MIN_MAX_EVENTS <= max_events <= POLL_BATCH_MAX_MAX_EVENTS:
        raise mes_validation_error(
            ValueError(
                f"max_events must be between {POLL_BATCH_MIN_MAX_EVENTS} and "
                f"{POLL_BATCH_MAX_MAX_EVENTS}"
            )
        )


def config_options(config: ClientConfig) -> dict[str, object]:
    """Every option of a ClientConfig, by name."""
    return {f.name: getattr(config, f.name) for f in fields(config)}


class BinlogClient:
    """Replication client: ``connect()``, ``start()``, then ``poll()`` / ``poll_batch()``."""

    @refuse_unknown_options
    def __init__(
        self,
        *,
        config: ClientConfig | None = None,
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
        allow_public_key_retrieval: bool = False,
        lib_path: str | None = None,
    ) -> None:
        """Validate the configuration (``config`` wins over the keywords); does not connect."""
        self._closed = True
        if config is not None and not isinstance(config, ClientConfig):
            raise mes_validation_error(TypeError("config must be a ClientConfig or None"))
        resolved = config or ClientConfig(
            host=host,
            port=port,
            user=user,
            password=password,
            server_id=server_id,
            start_gtid=start_gtid,
            start_binlog_file=start_binlog_file,
            start_binlog_position=start_binlog_position,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            ssl_mode=ssl_mode,
            ssl_ca=ssl_ca,
            ssl_cert=ssl_cert,
            ssl_key=ssl_key,
            max_queue_size=max_queue_size,
            max_queue_bytes=max_queue_bytes,
            max_event_size=max_event_size,
            allow_public_key_retrieval=allow_public_key_retrieval,
        )
        validate_option("lib_path", lib_path)
        if resolved.server_id == 0:
            raise mes_validation_error(ValueError("server_id must be non-zero"))
        validate_options(config_options(resolved))
        self._config = resolved
        self._native = _native.NativeClient(
            native_options(config_options(resolved)), resolved.max_queue_bytes
        )
        self._closed = False
        self._last_error = ""

    @property
    def config(self) -> ClientConfig:
        """The validated configuration."""
        return self._config

    def _check_open(self) -> None:
        if self._closed:
            raise exception_for_rc(MesErrorCode.INVALID_ARG, "BinlogClient has been closed")

    def connect(self) -> None:
        """Connect (TCP, TLS, authentication, server checks) and request the dump."""
        self._check_open()
        try:
            self._native.connect()
        except _native.LiveError as e:
            exc = live_exception(e, connecting=True)
            self._last_error = str(e.args[1])
            raise exc from None

    def start(self) -> None:
        """Start streaming (requires ``connect()``)."""
        self._check_open()
        try:
            self._native.start()
        except _native.LiveError as e:
            self._last_error = str(e.args[1])
            raise live_exception(e, connecting=False) from None

    def _poll(self, max_events: int) -> list[PollResult]:
        try:
            items = self._native.poll_batch(max_events)
        except _native.LiveError as e:
            self._last_error = str(e.args[1])
            raise live_exception(e, connecting=False) from None
        return [PollResult(d, h, c) for d, h, c in items]

    def poll(self) -> PollResult:
        """Next event or heartbeat (blocks; requires ``start()``)."""
        self._check_open()
        return self._poll(1)[0]

    def poll_batch(self, max_events: int = POLL_BATCH_DEFAULT_MAX_EVENTS) -> list[PollResult]:
        """Up to ``max_events`` results: blocks for one, then takes what is already queued."""
        self._check_open()
        validate_poll_batch_size(max_events)
        return self._poll(max_events)

    def stop(self) -> None:
        """Stop streaming (any thread; no-op when not streaming)."""
        if not self._closed:
            self._native.stop()

    def disconnect(self) -> None:
        """Close the connection (no-op when not connected)."""
        if not self._closed:
            self._native.disconnect()

    def close(self) -> None:
        """Stop, disconnect and release (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self.stop()
        self.disconnect()
        self._closed = True

    def __enter__(self) -> BinlogClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    @property
    def is_connected(self) -> bool:
        """Whether connected."""
        return not self._closed and self._native.is_connected

    @property
    def is_streaming(self) -> bool:
        """Whether streaming."""
        return not self._closed and self._native.is_streaming

    @property
    def current_gtid(self) -> str:
        """Committed and delivered checkpoint ("" = none yet)."""
        return "" if self._closed else self._native.current_gtid

    @property
    def last_error(self) -> str:
        """Message of the last failure ("" = none)."""
        return "" if self._closed else self._last_error

    @property
    def flavor(self) -> ServerFlavor:
        """Server family (MYSQL until connected)."""
        if self._closed:
            return ServerFlavor.MYSQL
        return ServerFlavor(self._native.flavor)

    @property
    def checksum_enabled(self) -> bool:
        """Framing of the live stream (False until streaming)."""
        return not self._closed and self._native.checksum_enabled

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the client queue."""
        return 0 if self._closed else self._native.queued_bytes

    @property
    def max_queue_bytes(self) -> int:
        """Resolved client queue budget (0 when closed)."""
        if self._closed:
            return 0
        return self._config.max_queue_bytes or 48 * 1024 * 1024

    @property
    def max_event_size(self) -> int:
        """Resolved event-size limit (0 when closed)."""
        if self._closed:
            return 0
        size = self._config.max_event_size
        return 1024 * 1024 * 1024 if size == 0 else max(size, 23)

    @property
    def crc_errors(self) -> int:
        """CRC32 failures seen on the live stream."""
        return 0 if self._closed else self._native.crc_errors
