"""Option validation shared by CdcStream (constructor, configure), BinlogClient and
CdcEngine.enable_metadata: one set of rules, so no entry point accepts what another refuses.

Refusals keep the builtin class (TypeError / ValueError) and carry
``.code = MesErrorCode.INVALID_ARG``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

from ._contract import (
    MUTUALLY_EXCLUSIVE_OPTIONS,
    OPTION_RANGES,
    REQUIRED_TOGETHER_OPTIONS,
    START_AT_CURRENT,
    START_AT_FILE,
    START_AT_GTID,
)
from .types import mes_validation_error

_STRING_OPTIONS = frozenset({"host", "user", "password", "ssl_ca", "ssl_cert", "ssl_key"})
_OPTIONAL_STRING_OPTIONS = frozenset({"start_gtid", "start_binlog_file", "lib_path"})
_OPTIONAL_INT_OPTIONS = frozenset({"start_binlog_position"})
_NON_EMPTY_STRING_OPTIONS = frozenset({"start_binlog_file"})
_STRING_LIST_OPTIONS = frozenset({"include_databases", "include_tables", "exclude_tables"})
_BOOL_OPTIONS = frozenset({"allow_public_key_retrieval", "native_types"})
_CALLBACK_OPTIONS = frozenset({"on_metadata_error"})

DEFAULT_QUEUE_BYTES = 48 * 1024 * 1024
MAX_EVENT_SIZE_CAP = 1024 * 1024 * 1024
MIN_EVENT_SIZE = 19 + 4
#: Client queue charge beside one event: a packet-prefix byte and a 1 MiB checkpoint reserve.
QUEUED_EVENT_OVERHEAD = 1 + 1024 * 1024

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _check_string(key: str, value: object, what: str) -> None:
    if not isinstance(value, str):
        raise mes_validation_error(TypeError(f"{key} must be {what}"))
    if "\x00" in value:
        raise mes_validation_error(ValueError(f"{key} must not contain a NUL character"))


def validate_option(key: str, value: object) -> None:
    """Check one option's type and range; unknown keys are a TypeError."""
    if key in OPTION_RANGES:
        if value is None and key in _OPTIONAL_INT_OPTIONS:
            return
        low, high = OPTION_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise mes_validation_error(TypeError(f"{key} must be an integer"))
        if value < low or (high is not None and value > high):
            upper = "unbounded" if high is None else str(high)
            raise mes_validation_error(ValueError(f"{key} must be between {low} and {upper}"))
        return
    if key in _STRING_OPTIONS:
        _check_string(key, value, "a string")
        return
    if key in _OPTIONAL_STRING_OPTIONS:
        if value is not None:
            _check_string(key, value, "a string or None")
        if value == "" and key in _NON_EMPTY_STRING_OPTIONS:
            raise mes_validation_error(ValueError(f"{key} must name a binlog file"))
        return
    if key in _STRING_LIST_OPTIONS:
        if not isinstance(value, list):
            raise mes_validation_error(TypeError(f"{key} must be a list of strings"))
        for item in value:
            _check_string(key, item, "a list of strings")
        return
    if key in _BOOL_OPTIONS:
        if not isinstance(value, bool):
            raise mes_validation_error(TypeError(f"{key} must be a bool"))
        return
    if key in _CALLBACK_OPTIONS:
        if value is not None and not callable(value):
            raise mes_validation_error(TypeError(f"{key} must be callable or None"))
        return
    raise mes_validation_error(TypeError(f"Unknown config key: {key!r}"))


def refuse_unknown_options(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn Python's uncoded TypeError for an unexpected keyword into the coded one."""
    declared = frozenset(inspect.signature(func).parameters)

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for key in kwargs:
            if key not in declared:
                raise mes_validation_error(TypeError(f"Unknown config key: {key!r}"))
        return func(*args, **kwargs)

    return wrapper


def _supplied(options: Mapping[str, object], key: str) -> bool:
    return options.get(key) is not None


def validate_options(
    options: Mapping[str, object], base: Mapping[str, object] | None = None
) -> None:
    """Check each option, then the rules over the configuration ``base`` updated by ``options``."""
    for key, value in options.items():
        validate_option(key, value)
    effective = {**(base or {}), **options}
    for first, second in REQUIRED_TOGETHER_OPTIONS:
        unset = [k for k in (first, second) if not _supplied(effective, k)]
        if len(unset) == 1:
            raise mes_validation_error(
                ValueError(f"{first} and {second} are required together, and {unset[0]} is unset")
            )
    for first, second in MUTUALLY_EXCLUSIVE_OPTIONS:
        if _supplied(effective, first) and _supplied(effective, second):
            raise mes_validation_error(ValueError(f"{first} and {second} cannot be combined"))
    event_size = effective.get("max_event_size")
    queue_bytes = effective.get("max_queue_bytes")
    if isinstance(event_size, int) and isinstance(queue_bytes, int):
        if event_size == 0 or event_size > MAX_EVENT_SIZE_CAP:
            event_size = MAX_EVENT_SIZE_CAP
        event_size = max(event_size, MIN_EVENT_SIZE)
        queue_bytes = queue_bytes or DEFAULT_QUEUE_BYTES
        required = event_size + QUEUED_EVENT_OVERHEAD
        if queue_bytes < required:
            raise mes_validation_error(
                ValueError(
                    f"max_queue_bytes resolves to {queue_bytes}, below the {required} bytes one "
                    f"max_event_size event of {event_size} bytes needs; raise max_queue_bytes "
                    "or lower max_event_size"
                )
            )


def start_mode(options: Mapping[str, object]) -> int:
    """``START_AT_GTID`` when start_gtid is a str (even ""), ``START_AT_FILE`` with a file,
    else ``START_AT_CURRENT``."""
    if options.get("start_gtid") is not None:
        return START_AT_GTID
    if options.get("start_binlog_file") is not None:
        return START_AT_FILE
    return START_AT_CURRENT
