"""mysql_event_stream: MySQL / MariaDB change-data-capture (Rust core).

A drop-in replacement for the ``mysql-event-stream`` 1.8.0 package: same names, signatures,
exceptions, codes and value representation, plus the deliberate differences documented in
PYTHON_API.md (JSON columns as text, compressed / partial-JSON events decoded, ``gtid`` on
events, opt-in ``native_types``).
"""

from .client import BinlogClient
from .engine import CdcEngine
from .logging import LogLevel, set_log_callback
from .stream import CdcStream
from .types import (
    BinlogPosition,
    ChangeEvent,
    ChecksumError,
    ClientConfig,
    DecodeError,
    EventType,
    MesConnectionError,
    MesError,
    MesErrorCode,
    ParseError,
    PollResult,
    ServerFlavor,
    SslMode,
)
from .types import ColumnType as ColumnType
from .types import ColumnValue as ColumnValue

__all__ = [
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
]
