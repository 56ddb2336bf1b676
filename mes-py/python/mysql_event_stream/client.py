"""BinlogClient: a replication connection that yields raw binlog events.

This build validates and holds the configuration exactly like the original package, but live
streaming is not wired to the Rust driver yet: ``connect()`` raises MesConnectionError saying
so. Everything that does not need a server (construction, validation, properties, lifecycle)
behaves as specified.
"""

from __future__ import annotations

from dataclasses import fields

from ._contract import (
    POLL_BATCH_DEFAULT_MAX_EVENTS,
    POLL_BATCH_MAX_MAX_EVENTS,
    POLL_BATCH_MIN_MAX_EVENTS,
)
from ._options import refuse_unknown_options, validate_option, validate_options
from .types import (
    ClientConfig,
    MesConnectionError,
    MesErrorCode,
    PollResult,
    ServerFlavor,
    exception_for_rc,
    mes_validation_error,
)

__all__ = ["BinlogClient"]

NOT_AVAILABLE = (
    "live streaming is not available yet in this build of mysql_event_stream (the Rust "
    "replication client is not wired to the Python package); decode binlog bytes with CdcEngine"
)


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
    """Replication client (see the module note: ``connect()`` is not available yet)."""

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
        self._closed = False
        self._connected = False
        self._last_error = ""

    @property
    def config(self) -> ClientConfig:
        """The validated configuration."""
        return self._config

    def _check_open(self) -> None:
        if self._closed:
            raise exception_for_rc(MesErrorCode.INVALID_ARG, "BinlogClient has been closed")

    def connect(self) -> None:
        """Connect and validate the server. Not available yet: raises MesConnectionError."""
        self._check_open()
        c = self._config
        self._last_error = f"Failed to connect to {c.host}:{c.port}: {NOT_AVAILABLE}"
        raise MesConnectionError(f"connection error: {self._last_error}", MesErrorCode.CONNECT)

    def start(self) -> None:
        """Start streaming (requires ``connect()``)."""
        self._check_open()
        raise exception_for_rc(MesErrorCode.DISCONNECTED, "disconnected: Not connected")

    def poll(self) -> PollResult:
        """Next event or heartbeat (requires ``start()``)."""
        self._check_open()
        raise exception_for_rc(MesErrorCode.DISCONNECTED, "disconnected: Not connected")

    def poll_batch(self, max_events: int = POLL_BATCH_DEFAULT_MAX_EVENTS) -> list[PollResult]:
        """Up to ``max_events`` results (requires ``start()``)."""
        self._check_open()
        validate_poll_batch_size(max_events)
        raise exception_for_rc(MesErrorCode.DISCONNECTED, "disconnected: Not connected")

    def stop(self) -> None:
        """Stop streaming (any thread; no-op when not streaming)."""

    def disconnect(self) -> None:
        """Close the connection (no-op when not connected)."""
        self._connected = False

    def close(self) -> None:
        """Stop, disconnect and release (idempotent)."""
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
        return not self._closed and self._connected

    @property
    def is_streaming(self) -> bool:
        """Whether streaming."""
        return False

    @property
    def current_gtid(self) -> str:
        """Committed and delivered checkpoint ("" = none yet)."""
        return ""

    @property
    def last_error(self) -> str:
        """Message of the last failure ("" = none)."""
        return "" if self._closed else self._last_error

    @property
    def flavor(self) -> ServerFlavor:
        """Server family (MYSQL until connected)."""
        return ServerFlavor.MYSQL

    @property
    def checksum_enabled(self) -> bool:
        """Framing of the live stream (False until streaming)."""
        return False

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the client queue."""
        return 0

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
        return 0
