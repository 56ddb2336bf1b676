"""Process-wide log callback for the engine's structured diagnostics.

Records look like ``event=<name> key=value ...``, e.g. ``event=binlog_rotate file=bin.000002
position=4`` (INFO) or ``event=table_map_missing_signedness db=db table=t`` (WARN).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from enum import IntEnum

from . import _native
from ._contract import LOG_LEVEL_MAX, LOG_LEVEL_MIN
from .types import mes_validation_error

__all__ = ["LogLevel", "set_log_callback"]


class LogLevel(IntEnum):
    """Severity of a log record (lower is more severe)."""

    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


# Held while a handler runs, so once set_log_callback() returns no old handler is in flight
# (re-entrant: a handler may itself reconfigure logging).
_lock = threading.RLock()
_handler: Callable[[LogLevel, str], None] | None = None


def _dispatch(level: int, message: str) -> None:
    """Called by the native layer with each record at or below the configured level."""
    with _lock:
        handler = _handler
        if handler is None:
            return
        try:
            handler(LogLevel(level), message)
        except Exception:  # noqa: BLE001 - a log handler must never break decoding
            pass


def _detach() -> None:
    global _handler
    with _lock:
        _handler = None
        _native._set_log_level(-1)


atexit.register(_detach)


def set_log_callback(
    callback: Callable[[LogLevel, str], None] | None,
    level: LogLevel = LogLevel.WARN,
    *,
    lib_path: str | None = None,
) -> None:
    """Install (``callback``) or remove (``None``) the process-wide log handler.

    Records whose level is <= ``level`` are delivered (``WARN`` delivers ERROR and WARN).
    Handler exceptions are swallowed. ``lib_path`` is accepted for compatibility and ignored.
    """
    global _handler
    if callback is not None and not callable(callback):
        raise mes_validation_error(TypeError("callback must be callable or None"))
    if isinstance(level, bool) or not isinstance(level, int):
        raise mes_validation_error(TypeError("level must be an integer"))
    if level < LOG_LEVEL_MIN or level > LOG_LEVEL_MAX:
        raise mes_validation_error(
            ValueError(
                f"level must be an integer between {LOG_LEVEL_MIN} and {LOG_LEVEL_MAX}, got {level}"
            )
        )
    if lib_path is not None and not isinstance(lib_path, str):
        raise mes_validation_error(TypeError("lib_path must be a string or None"))
    with _lock:
        _handler = callback
        _native._set_log_level(int(level) if callback is not None else -1)
