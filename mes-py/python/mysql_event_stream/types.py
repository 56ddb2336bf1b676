"""Public value types, enums and exceptions of ``mysql_event_stream``.

Shapes, names, defaults and codes are those of the original ``mysql-event-stream`` 1.8.0 wheel
(see PYTHON_API.md), so code written against it runs unchanged. Additions are keyword fields
with defaults at the end (``ChangeEvent.gtid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, TypeVar

__all__ = [
    "CONNECTION_ERROR_CODES",
    "BinlogPosition",
    "ChangeEvent",
    "ChecksumError",
    "ClientConfig",
    "ColumnType",
    "ColumnValue",
    "DecodeError",
    "EventType",
    "MesConnectionError",
    "MesError",
    "MesErrorCode",
    "ParseError",
    "PollResult",
    "ServerFlavor",
    "SslMode",
    "exception_for_rc",
    "mes_validation_error",
]


class EventType(Enum):
    """Kind of row change. A plain ``Enum``: ``EventType.INSERT == 0`` is False."""

    INSERT = 0
    UPDATE = 1
    DELETE = 2


class SslMode(IntEnum):
    """TLS mode of a connection."""

    DISABLED = 0
    PREFERRED = 1
    REQUIRED = 2
    VERIFY_CA = 3
    VERIFY_IDENTITY = 4


class ServerFlavor(IntEnum):
    """Server family detected at connect time."""

    MYSQL = 0
    MARIADB = 1


class MesErrorCode(IntEnum):
    """Error codes carried by every exception of this package as ``.code``."""

    OK = 0
    NULL_ARG = 1
    INVALID_ARG = 2
    INTERNAL = 99
    PARSE = 100
    CHECKSUM = 101
    DECODE = 200
    DECODE_COLUMN = 201
    DECODE_ROW = 202
    NO_EVENT = 300
    QUEUE_FULL = 301
    CONNECT = 400
    AUTH = 401
    VALIDATION = 402
    STREAM = 403
    DISCONNECTED = 404
    GTID_PURGED = 405
    GTID_TAGGED_UNSUPPORTED = 406


class ColumnType(Enum):
    """Deprecated helper kept for compatibility; events never use it (rows are plain dicts)."""

    NULL = "null"
    INT = "int"
    DOUBLE = "double"
    STRING = "string"
    BYTES = "bytes"


@dataclass(frozen=True, slots=True)
class ColumnValue:
    """Deprecated helper kept for compatibility; events never produce it."""

    type: ColumnType
    value: None | int | float | str | bytes
    name: str = ""

    @staticmethod
    def null() -> ColumnValue:
        """A NULL value."""
        return ColumnValue(type=ColumnType.NULL, value=None)

    @staticmethod
    def int_val(v: int) -> ColumnValue:
        """An integer value."""
        return ColumnValue(type=ColumnType.INT, value=v)

    @staticmethod
    def double_val(v: float) -> ColumnValue:
        """A floating-point value."""
        return ColumnValue(type=ColumnType.DOUBLE, value=v)

    @staticmethod
    def string_val(v: str) -> ColumnValue:
        """A text value."""
        return ColumnValue(type=ColumnType.STRING, value=v)

    @staticmethod
    def bytes_val(v: bytes) -> ColumnValue:
        """A binary value."""
        return ColumnValue(type=ColumnType.BYTES, value=v)


@dataclass(frozen=True, slots=True)
class BinlogPosition:
    """A binlog file name and the offset after an event."""

    file: str = ""
    offset: int = 0


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row change.

    ``before`` / ``after`` are dicts keyed by column name, or by ``"0"``, ``"1"``, ... when
    the names are unknown (then ``names_resolved`` is False). INSERT has ``before=None``,
    DELETE ``after=None``. ``timestamp`` is the event header time (Unix seconds);
    ``position`` is the file of the last ROTATE and the offset after the rows event.
    ``source_sql`` is the MariaDB ANNOTATE_ROWS statement, else "".

    Values (default representation, as in the original 1.8.0 package): integers, YEAR, ENUM
    (1-based index), SET (bitmask) and BIT are ``int`` (a value above 2**63-1 is its decimal
    ``str``); FLOAT/DOUBLE ``float``; DECIMAL, DATE, TIME, DATETIME ``str`` as MySQL prints
    them; TIMESTAMP ``str`` of epoch seconds with the column's fractional digits; character
    columns ``str`` (UTF-8, ``surrogateescape``; ``bytes`` when the binlog has no charset
    metadata); binary columns, GEOMETRY and VECTOR ``bytes``; JSON the ``str`` MySQL's
    ``SELECT`` prints (the original gave unreadable binary JSON). Columns missing from a
    MINIMAL/NOBLOB row image are absent from the dict. With ``CdcEngine(native_types=True)``
    values are Python types (datetime, Decimal, dict/list, labels, ...).

    ``gtid`` (an addition) is the transaction's GTID, ``uuid[:tag]:n`` or MariaDB ``d-s-n``.
    """

    type: EventType
    database: str
    table: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    timestamp: int
    position: BinlogPosition
    names_resolved: bool = True
    source_sql: str = ""
    gtid: str | None = None


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Connection settings of a ``BinlogClient`` (defaults as in the original package)."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = field(default="", repr=False)
    server_id: int = 1
    start_gtid: str | None = None
    start_binlog_file: str | None = None
    start_binlog_position: int | None = None
    connect_timeout_s: int = 10
    read_timeout_s: int = 30
    ssl_mode: int = 1
    ssl_ca: str = ""
    ssl_cert: str = ""
    ssl_key: str = ""
    max_queue_size: int = 0
    max_queue_bytes: int = 48 * 1024 * 1024
    max_event_size: int = 32 * 1024 * 1024
    allow_public_key_retrieval: bool = False


@dataclass(frozen=True, slots=True)
class PollResult:
    """One item read by ``BinlogClient.poll()``: raw event bytes, or a heartbeat (data None).

    ``checksum_enabled`` tells whether ``data`` ends in a CRC32 trailer; pass it to
    ``CdcEngine.set_checksum_enabled`` before feeding ``data``.
    """

    data: bytes | None
    is_heartbeat: bool
    checksum_enabled: bool


class MesError(RuntimeError):
    """A failure with a ``MesErrorCode`` in ``.code`` (every failure but a connection one)."""

    code: int

    def __init__(self, message: str, code: int = MesErrorCode.INTERNAL) -> None:
        super().__init__(message)
        self.code = code


class MesConnectionError(ConnectionError):
    """Connecting to the server failed (an ``OSError``, not a ``MesError``); has ``.code``."""

    code: int

    def __init__(self, message: str, code: int = MesErrorCode.INTERNAL) -> None:
        # One argument only, so OSError does not read (errno, strerror) from it.
        super().__init__(message)
        self.code = code


class ParseError(MesError):
    """The binlog bytes could not be parsed (code 100)."""


class DecodeError(MesError):
    """A row or column of a well-formed event could not be decoded (codes 200-202)."""


class ChecksumError(MesError):
    """An event's CRC32 does not match (code 101)."""


#: Codes in this range raised by ``connect()`` / ``enable_metadata()`` are MesConnectionError.
CONNECTION_ERROR_CODES = range(MesErrorCode.CONNECT, MesErrorCode.CONNECT + 100)

_Refusal = TypeVar("_Refusal", TypeError, ValueError, OSError, RuntimeError)


def mes_validation_error(error: _Refusal) -> _Refusal:
    """Give a refused-argument exception ``.code = MesErrorCode.INVALID_ARG``; class unchanged."""
    error.code = MesErrorCode.INVALID_ARG  # type: ignore[attr-defined]
    return error


def exception_for_rc(rc: int, message: str) -> MesError:
    """The exception for error code ``rc``: ChecksumError, DecodeError, ParseError or MesError."""
    if rc == MesErrorCode.CHECKSUM:
        return ChecksumError(message, rc)
    if rc in (MesErrorCode.DECODE, MesErrorCode.DECODE_COLUMN, MesErrorCode.DECODE_ROW):
        return DecodeError(message, rc)
    if rc == MesErrorCode.PARSE:
        return ParseError(message, rc)
    return MesError(message, rc)
