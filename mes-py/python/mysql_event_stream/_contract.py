"""Constants shared by every entry point (ranges, retry policy, poll and log windows)."""

from __future__ import annotations

from typing import NamedTuple

from .types import MesErrorCode

#: Codes that mean reconnecting cannot help.
NON_RETRYABLE_ERROR_CODES = frozenset(
    {
        MesErrorCode.NULL_ARG,
        MesErrorCode.INVALID_ARG,
        MesErrorCode.PARSE,
        MesErrorCode.CHECKSUM,
        MesErrorCode.DECODE,
        MesErrorCode.DECODE_COLUMN,
        MesErrorCode.DECODE_ROW,
        MesErrorCode.QUEUE_FULL,
        MesErrorCode.AUTH,
        MesErrorCode.VALIDATION,
        MesErrorCode.GTID_PURGED,
        MesErrorCode.GTID_TAGGED_UNSUPPORTED,
    }
)

RECONNECT_BASE_DELAY_MS = 1000
RECONNECT_MAX_DELAY_MS = 10000
RECONNECT_JITTER_MIN = 0.5
RECONNECT_JITTER_MAX = 1.0


def backoff_delay_ms(attempt: int, jitter: float) -> float:
    """Delay before reconnect attempt ``attempt`` (1-based); ``jitter`` is uniform in [0, 1)."""
    base = min(RECONNECT_BASE_DELAY_MS * attempt, RECONNECT_MAX_DELAY_MS)
    return base * (RECONNECT_JITTER_MIN + jitter * (RECONNECT_JITTER_MAX - RECONNECT_JITTER_MIN))


class OptionRange(NamedTuple):
    """Inclusive range of an integer option (``maximum=None``: unbounded)."""

    minimum: int
    maximum: int | None


_U32 = 2**32 - 1
_SAFE_INT = 2**53 - 1

OPTION_RANGES: dict[str, OptionRange] = {
    "port": OptionRange(1, 65535),
    "server_id": OptionRange(1, _U32),
    "connect_timeout_s": OptionRange(0, _U32),
    "read_timeout_s": OptionRange(0, _U32),
    "ssl_mode": OptionRange(0, 4),
    "max_queue_size": OptionRange(0, _SAFE_INT),
    "max_queue_bytes": OptionRange(0, _SAFE_INT),
    "max_event_size": OptionRange(0, _U32),
    "max_reconnect_attempts": OptionRange(0, None),
    # The first event of a binlog file starts after its 4-byte magic.
    "start_binlog_position": OptionRange(4, _U32),
}

REQUIRED_TOGETHER_OPTIONS: tuple[tuple[str, str], ...] = (
    ("start_binlog_file", "start_binlog_position"),
)
MUTUALLY_EXCLUSIVE_OPTIONS: tuple[tuple[str, str], ...] = (("start_gtid", "start_binlog_file"),)

POLL_BATCH_DEFAULT_MAX_EVENTS = 64
POLL_BATCH_MIN_MAX_EVENTS = 1
POLL_BATCH_MAX_MAX_EVENTS = 1024

LOG_LEVEL_MIN = 0
LOG_LEVEL_MAX = 3
LOG_LEVEL_DEFAULT = 1

METADATA_ERROR_DEFAULT = "silent"

#: Start modes (``MES_START_*``): snapshot current position, GTID set, file + offset.
START_AT_CURRENT = 0
START_AT_GTID = 1
START_AT_FILE = 2
