"""CdcEngine over real corpus binlogs: events, values, positions, feeding, queue limits, reset,
filters, errors (PYTHON_API.md §1.4, §2)."""

from __future__ import annotations

import datetime as dt
import json
import struct
import threading
from decimal import Decimal

import pytest
from conftest import feed_all, read_binlog, split_events
from mysql_event_stream import (
    BinlogPosition,
    CdcEngine,
    ChecksumError,
    DecodeError,
    EventType,
    LogLevel,
    MesConnectionError,
    MesError,
    ParseError,
    set_log_callback,
)

CRC32_FILE = "mysql-binlog-connector-java/mysql-bin.checksum-crc32"


def load(corpus, name, **kw):
    return read_binlog(corpus / name, **kw)


def decode(corpus, name, **engine_kw):
    with CdcEngine(**engine_kw) as e:
        return feed_all(e, load(corpus, name))


# --------------------------------------------------------------------------- events & positions


def test_crc32_file_events_and_positions(corpus):
    data = load(corpus, CRC32_FILE)
    e = CdcEngine()
    assert e.get_position() == BinlogPosition("", 0)
    assert e.feed(data) == len(data)
    assert e.has_events()
    events = []
    while (ev := e.next_event()) is not None:
        events.append(ev)
    assert not e.has_events() and e.next_event() is None
    assert len(events) == 63
    first = events[0]
    assert first.type is EventType.INSERT
    assert (first.database, first.table) == ("simu_file_dev", "folder")
    assert first.before is None
    assert first.after == {
        "0": 12300113, "1": b"test2", "2": b"/", "3": 116103, "4": "1525422719", "5": 906703,
        "6": 0, "7": 0, "8": 0, "9": "1525422719", "10": 0, "11": 12200009,
    }  # fmt: skip
    assert first.timestamp == 1525422719
    # Offset after the rows event; no ROTATE seen yet, so no file.
    assert first.position == BinlogPosition("", 486)
    assert first.names_resolved is False and first.source_sql == "" and first.gtid is None
    upd = events[3]
    assert upd.type is EventType.UPDATE and upd.before and upd.after
    assert upd.after["1"] == "陶瓷.jpg".encode()
    assert isinstance(upd.after["8"], float)
    deletes = [ev for ev in events if ev.type is EventType.DELETE]
    assert deletes and all(ev.after is None and ev.before for ev in deletes)
    # After the final ROTATE: its file and position.
    assert e.get_position() == BinlogPosition("mysql-bin.000002", 4)
    e.close()


def test_get_position_after_every_event(corpus):
    data = load(corpus, CRC32_FILE)
    e = CdcEngine()
    seen = []
    for ev in split_events(data)[:8]:
        e.feed(ev)
        seen.append((ev[4], e.has_events(), e.get_position().offset))
    # FDE, PREVIOUS_GTIDS, ANONYMOUS_GTID, QUERY, TABLE_MAP, WRITE_ROWS, XID, ANONYMOUS_GTID
    assert seen == [
        (15, False, 123), (35, False, 154), (34, False, 219), (2, False, 308),
        (19, False, 384), (30, True, 486), (16, True, 517), (34, True, 582),
    ]  # fmt: skip


def test_file_magic_is_accepted(corpus):
    with_magic = load(corpus, CRC32_FILE, keep_magic=True)
    assert with_magic[:4] == b"\xfebin"
    e = CdcEngine()
    events = feed_all(e, with_magic)
    assert len(events) == 63 and events[0].position.offset == 486
    # Magic split over feeds.
    e = CdcEngine()
    for i in range(8):
        assert e.feed(with_magic[i : i + 1]) == 1
    assert len(feed_all(e, with_magic[8:])) == 63


@pytest.mark.parametrize("native", [False, True])
def test_update_after_images_share_the_before_images_objects(corpus, native):
    """An UPDATE's after dict (built from a copy of the before dict when both images have every
    column) has the before dict's keys in the same order, shares the objects of unchanged
    columns with it, and is a dict of its own: changing one does not change the other. (Its
    values are checked against the original package's in test_differential.py.)"""
    updates = unchanged = 0
    for entry in json.loads((corpus / "census.json").read_text()):
        try:
            events = decode(corpus, entry["file"], native_types=native)
        except MesError:
            continue
        for ev in events:
            if ev.type is not EventType.UPDATE or ev.before is None or ev.after is None:
                continue
            updates += 1
            assert ev.after is not ev.before
            if set(ev.before) == set(ev.after):
                assert list(ev.before) == list(ev.after), entry["file"]
                unchanged += sum(ev.after[k] is v for k, v in ev.before.items())
            copy = dict(ev.before)
            ev.after["__probe__"] = 1
            assert ev.before == copy, entry["file"]
            del ev.after["__probe__"]
    assert updates > 100 and unchanged > 100, (updates, unchanged)


@pytest.mark.parametrize("chunk", [1, 7, 19, 1000])
def test_split_invariance(corpus, chunk):
    data = load(corpus, CRC32_FILE)
    whole = decode(corpus, CRC32_FILE)
    e = CdcEngine()
    got = []
    for i in range(0, len(data), chunk):
        piece = data[i : i + chunk]
        assert e.feed(piece) == len(piece)
        while (ev := e.next_event()) is not None:
            got.append(ev)
    assert got == whole
    assert e.get_position() == BinlogPosition("mysql-bin.000002", 4)


@pytest.mark.parametrize("native", [False, True])
def test_decode_ahead_gives_the_events_of_decoding_in_feed(corpus, native):
    """Every corpus file fed whole, every image decoded by the decode-ahead thread (which also
    renders DECIMAL/temporal texts; by default it takes over after 64 events of a feed call),
    with or without the thread also checking rows for feed (by default for feed calls of at
    least 128 KiB), gives the events of an engine that decodes everything in feed: same
    values, same order, same error."""
    helper_used = 0
    for entry in json.loads((corpus / "census.json").read_text()):
        data = load(corpus, entry["file"])
        runs = []
        for ahead, scan_min in ((True, None), (True, 1), (False, None)):
            e = CdcEngine(native_types=native)
            e._set_decode_ahead(ahead, inline_events=0, scan_min=scan_min)
            events, error, off = [], None, 0
            try:
                while off < len(data):
                    off += e.feed(data[off:])
                    while (ev := e.next_event()) is not None:
                        events.append(ev)
            except MesError as exc:
                error = (type(exc).__name__, exc.code, str(exc))
            while (ev := e.next_event()) is not None:
                events.append(ev)
            e.close()
            # repr: a NaN double is not equal to itself.
            runs.append((repr(events), error, len(events)))
        assert runs[0] == runs[2], entry["file"]
        assert runs[1] == runs[2], entry["file"]
        helper_used += runs[0][2] > 0
    assert helper_used >= 50, f"only {helper_used} files have change events"


def test_empty_and_bad_input_types(corpus):
    e = CdcEngine()
    assert e.feed(b"") == 0
    assert e.feed(bytearray()) == 0
    data = load(corpus, CRC32_FILE)
    assert len(feed_all(e, bytearray(data))) == 63
    for bad in (memoryview(b"abc"), "abc", 5, None):
        with pytest.raises(TypeError) as info:
            e.feed(bad)  # type: ignore[arg-type]
        assert info.value.code == 2


# --------------------------------------------------------------------------- values (§2)


def test_values_temporal_decimal_strings(corpus):
    events = decode(corpus, "mysql-binlog-connector-rust/mysql-bin.000057")
    row = events[1].after
    assert events[1].type is EventType.UPDATE
    assert row["2"] == "2022-11-20"  # DATE
    assert row["5"] == "1668951630"  # TIMESTAMP: epoch seconds as str
    assert row["8"] == b"b3"  # binary column
    assert row["9"] == '{"c": 1}'  # JSON: text as MySQL prints it (deliberate difference)
    assert row["1"] == "product_item_value_2"
    assert events[0].gtid == "76f3e7be-6720-11ed-9cad-0242ac110002:12"


def test_values_negative_time_and_unsigned(corpus):
    (ev,) = decode(corpus, "rust_mysql_common/time_issue.000001")
    assert ev.after == {"0": "-507:48:27"}
    (ev,) = decode(corpus, "rust_mysql_common/minimal_row_metadata.000001")
    # MINIMAL metadata: signedness known (unsigned INT 3230202323), names not.
    assert ev.after["4"] == 3230202323 and ev.after["2"] == "a"
    assert ev.names_resolved is False


def test_values_enum_set_bit(corpus):
    events = decode(corpus, "rust_mysql_common/mysql-enum-string-set.000001")
    assert [ev.type for ev in events] == [EventType.INSERT, EventType.UPDATE, EventType.DELETE]
    assert events[0].after["f3"] == 1 and events[0].after["f4"] == 5  # ENUM index, SET mask
    assert events[2].before["f3"] == 2 and events[2].before["f4"] == 10
    assert events[0].names_resolved is True
    (ev,) = decode(corpus, "rust_mysql_common/mysql_type_bit.000001")
    assert ev.after == {"a": 4, "b": "foo", "c": 32}
    assert ev.gtid == "fbda2ad0-7c46-11ec-ae30-4ef7efc81a2a:3"


def test_values_vector_and_names(corpus):
    events = decode(corpus, "rust_mysql_common/vector.binlog")
    assert events[0].after == {"id": 1, "vector_column": struct.pack("<3f", 1.1, 2.2, 3.3)}
    assert events[1].after["vector_column"] == b"\x00\x00\x80?\x00\x00\x80\xbf\x00\x00\x00\x00"
    assert events[2].after["foo"] is None
    assert events[0].names_resolved is True
    native = decode(corpus, "rust_mysql_common/vector.binlog", native_types=True)
    assert native[1].after["vector_column"] == [1.0, -1.0, 0.0]


def test_values_json_text(corpus):
    events = decode(corpus, "rust_mysql_common/json-opaque.binlog")
    assert [ev.after["a"] for ev in events] == [
        '{"a": "base64:type15:VQ=="}',
        '{"b": "2012-03-18"}',
        '{"c": "2012-03-18 11:30:45.000000"}',
        '{"c": "87:31:46.654321"}',
        '{"d": 123.456}',
        '{"e": 9.00}',
        '{"e": [0, 1, true, false]}',
        '{"e": null}',
    ]
    native = decode(corpus, "rust_mysql_common/json-opaque.binlog", native_types=True)
    assert native[6].after["a"] == {"e": [0, 1, True, False]}
    assert native[7].after["a"] == {"e": None}


def test_partial_json_updates(corpus):
    events = decode(corpus, "rust_mysql_common/json.binlog.000001")
    ups = [ev for ev in events if ev.type is EventType.UPDATE]
    # FULL before images: the after image is the before image with the diff applied.
    full = [ev for ev in ups if "1" in ev.before]
    assert full
    for ev in full:
        before, after = json.loads(ev.before["1"]), json.loads(ev.after["1"])
        assert after["age"] == before["age"] + 1 and after["name"] == before["name"]
    # MINIMAL before image: the diff cannot be applied and is surfaced, never invented.
    minimal = [ev for ev in ups if "1" not in ev.before]
    assert minimal
    for ev in minimal:
        assert set(ev.before) == {"0"}
        diff = json.loads(ev.after["1"])["$partial_json_diff"]
        assert diff[0]["op"] == "REPLACE" and diff[0]["path"] == "$.age"
        assert diff[0]["value"] == ev.after["3"]


def test_compressed_transaction_payload(corpus):
    (ev,) = decode(corpus, "rust_mysql_common/transaction_compression.000001")
    assert (ev.type, ev.database, ev.table, ev.after) == (EventType.INSERT, "test", "tb1", {"0": 1})
    (ev,) = decode(corpus, "mysql-binlog-connector-java/mysql-bin.compressed")
    assert ev.type is EventType.UPDATE and ev.after["2"] == 1968


def test_mariadb_annotate_rows_and_gtid(corpus):
    events = decode(corpus, "rust_mysql_common/mariadb-bin.000001")
    assert len(events) == 2
    ev = events[0]
    assert ev.source_sql.startswith("insert into outbox (topic, event_type, event) values")
    assert ev.gtid == "0-1-1" and events[1].gtid == "0-1-2"
    assert ev.after["id"] == 62 and ev.after["topic"] == "foo" and ev.after["event_type"] == 2
    assert ev.after["created"] == "1650493084"
    # MySQL's ROWS_QUERY text is not source_sql (the original's rule).
    (ev,) = decode(corpus, "mysql-cdc-rs/5.7__29_row_query__log.bin")
    assert ev.source_sql == ""


def test_tagged_gtid(corpus):
    (ev,) = decode(corpus, "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001")
    assert ev.gtid == "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"
    assert ev.after == {"0": 3, "1": 100, "2": "250.00"}


def test_native_types(corpus):
    events = decode(corpus, "mysql-binlog-connector-rust/mysql-bin.000057", native_types=True)
    row = events[1].after
    assert row["2"] == dt.date(2022, 11, 20)
    assert row["5"] == dt.datetime(2022, 11, 20, 13, 40, 30, tzinfo=dt.UTC)
    assert row["9"] == {"c": 1}
    (ev,) = decode(corpus, "rust_mysql_common/time_issue.000001", native_types=True)
    assert ev.after["0"] == -dt.timedelta(hours=507, minutes=48, seconds=27)
    (ev,) = decode(
        corpus, "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001", native_types=True
    )
    assert ev.after["2"] == Decimal("250.00")
    events = decode(corpus, "rust_mysql_common/mysql-enum-string-set.000001", native_types=True)
    assert events[2].before["f3"] == "variant2"
    assert events[2].before["f4"] == frozenset({"two", "four"})
    with pytest.raises(TypeError):
        CdcEngine(native_types=1)  # type: ignore[arg-type]


def test_sakila_legacy_types(corpus):
    events = decode(corpus, "mysql-binlog-connector-java/mysql-bin.sakila.gz")
    assert len(events) == 47273
    # No charset metadata in 5.5 binlogs: character columns are bytes.
    tables = {(ev.database, ev.table) for ev in events}
    assert ("sakila", "actor") in tables
    actor = next(ev for ev in events if ev.table == "actor")
    assert actor.after["0"] == 1 and actor.after["1"] == b"PENELOPE"
    # legacy TIMESTAMP (2006-02-15 03:34:33 UTC, sakila last_update) → epoch str
    assert actor.after["3"] == "1139974473"


# --------------------------------------------------------------------------- queue limits


def test_queue_size_limit_and_refeed(corpus):
    data = load(corpus, CRC32_FILE)
    e = CdcEngine()
    e.set_max_queue_size(1)
    consumed = e.feed(data)
    # Stops right after the first rows event (offset 486 in the file = 482 in the stream).
    assert consumed == 482 < len(data)
    assert e.get_position().offset == 486
    assert e.feed(data[consumed:]) == 0  # still full
    events = feed_all(e, data[consumed:])
    assert len(events) == 63  # the queued one first, then the rest
    e2 = CdcEngine()
    e2.set_max_queue_size(0)  # default 10000
    assert e2.feed(data) == len(data)


def test_queue_bytes_limit(corpus):
    data = load(corpus, "mysql-binlog-connector-java/mysql-bin.sakila.gz")
    e = CdcEngine()
    assert e.get_max_queue_bytes() == 48 * 1024 * 1024
    e.set_max_queue_bytes(4096)
    assert e.get_max_queue_bytes() == 4096
    consumed = e.feed(data)
    assert 0 < consumed < len(data)
    first = []
    while (ev := e.next_event()) is not None:
        first.append(ev)
    assert first and len(first) + len(feed_all(e, data[consumed:])) == 47273
    e = CdcEngine()
    e.set_max_queue_bytes(4096)
    assert len(feed_all(e, data)) == 47273
    e.set_max_queue_bytes(0)
    assert e.get_max_queue_bytes() == 48 * 1024 * 1024


def test_limit_setters_validate(corpus):
    e = CdcEngine()
    for bad, cls in ((-1, ValueError), (2**53, ValueError), (True, TypeError), (1.0, TypeError)):
        with pytest.raises(cls) as info:
            e.set_max_queue_size(bad)  # type: ignore[arg-type]
        assert info.value.code == 2
        with pytest.raises(cls):
            e.set_max_queue_bytes(bad)  # type: ignore[arg-type]
    assert e.get_max_event_size() == 64 * 1024 * 1024
    e.set_max_event_size(5)
    assert e.get_max_event_size() == 23
    e.set_max_event_size(0)
    assert e.get_max_event_size() == 1024 * 1024 * 1024
    with pytest.raises(ValueError):
        e.set_max_event_size(2**32)
    for setter in (e.set_checksum_enabled, e.set_trailer_pre_verified):
        with pytest.raises(TypeError) as info:
            setter(1)  # type: ignore[arg-type]
        assert info.value.code == 2
    assert e.get_trailer_pre_verified() is False
    e.set_trailer_pre_verified(True)
    assert e.get_trailer_pre_verified() is True


def test_oversize_event_is_parse_error(corpus):
    data = load(corpus, CRC32_FILE)
    e = CdcEngine()
    e.set_max_event_size(100)
    with pytest.raises(ParseError) as info:
        e.feed(data)
    assert info.value.code == 100
    assert str(info.value).startswith(
        "mes_feed (call reset() before feeding again) failed: binlog parse error (code 100)"
    )
    assert "max_event_size" in str(info.value)


# --------------------------------------------------------------------------- errors & reset


def corrupt_crc(data: bytes) -> tuple[bytes, int]:
    events = split_events(data)
    i = next(i for i, ev in enumerate(events) if ev[4] == 30)  # first WRITE_ROWS
    bad = bytearray(events[i])
    bad[-1] ^= 0xFF
    events[i] = bytes(bad)
    return b"".join(events), i


def test_checksum_error_then_reset(corpus):
    data, _ = corrupt_crc(load(corpus, CRC32_FILE))
    e = CdcEngine()
    with pytest.raises(ChecksumError) as info:
        e.feed(data)
    assert info.value.code == 101
    assert "checksum mismatch (code 101)" in str(info.value)
    # Feeding again without reset re-raises.
    with pytest.raises(ChecksumError):
        e.feed(data)
    e.reset()
    assert e.get_position() == BinlogPosition("", 0)
    good = load(corpus, CRC32_FILE)
    assert len(feed_all(e, good)) == 63


def test_trailer_pre_verified_skips_crc(corpus):
    data, _ = corrupt_crc(load(corpus, CRC32_FILE))
    e = CdcEngine()
    e.set_trailer_pre_verified(True)
    assert len(feed_all(e, data)) == 63


def test_checksum_disabled_before_fde(corpus):
    # A FORMAT_DESCRIPTION_EVENT decides the framing of what follows it, whatever the flag.
    e = CdcEngine()
    e.set_checksum_enabled(False)
    assert len(feed_all(e, load(corpus, CRC32_FILE))) == 63
    # Pre-5.6 files have no checksums at all: decoded with the default flag.
    assert len(decode(corpus, "canal/mysql-bin.000001")) == 95


def test_reset_keeps_queued_events_and_settings(corpus):
    data = load(corpus, CRC32_FILE)
    e = CdcEngine()
    e.set_include_databases(["simu_file_dev"])
    e.set_max_queue_size(5)
    consumed = e.feed(data)
    assert consumed < len(data)
    queued = []
    e.reset()
    assert e.get_position() == BinlogPosition("", 0)
    while (ev := e.next_event()) is not None:
        queued.append(ev)
    assert len(queued) >= 5
    # Still filtered and limited after reset.
    consumed = e.feed(data)
    assert consumed < len(data)


def test_rows_without_table_map_is_decode_error(corpus):
    data = load(corpus, CRC32_FILE)
    stream = b"".join(ev for ev in split_events(data) if ev[4] != 19)
    e = CdcEngine()
    with pytest.raises(DecodeError) as info:
        e.feed(stream)
    assert info.value.code == 202 and "row decode error (code 202)" in str(info.value)


def test_garbage_and_incident(corpus):
    e = CdcEngine()
    with pytest.raises(ParseError) as info:
        e.feed(b"\x00" * 64)  # event_size 0
    assert info.value.code == 100
    e = CdcEngine()
    with pytest.raises(ParseError) as info:
        e.feed(load(corpus, "rust_mysql_common/bug40482-bin.000001"))
    assert "INCIDENT" in str(info.value)


def test_truncated_file_is_buffered_not_an_error(corpus):
    e = CdcEngine()
    data = load(corpus, "rust_mysql_common/binlog_truncated_event.000001")
    assert e.feed(data) == len(data)
    assert e.next_event() is None


def test_closed_engine(corpus):
    e = CdcEngine()
    e.close()
    e.close()
    for call in (
        lambda: e.feed(b"x"),
        e.next_event,
        e.has_events,
        e.get_position,
        e.reset,
        lambda: e.set_max_queue_size(1),
        lambda: e.set_include_tables([]),
        e.enable_metadata,
    ):
        with pytest.raises(MesError) as info:
            call()
        assert info.value.code == 2 and str(info.value) == "Engine has been closed"


def test_context_manager():
    with CdcEngine() as e:
        assert isinstance(e, CdcEngine)
    with pytest.raises(MesError):
        e.has_events()


# --------------------------------------------------------------------------- filters


def tables_of(events):
    return {(ev.database, ev.table) for ev in events}


def test_filters(corpus):
    data = load(corpus, CRC32_FILE)
    all_tables = tables_of(decode(corpus, CRC32_FILE))
    assert ("simu_file_dev", "file") in all_tables and ("simu_file_dev", "folder") in all_tables

    def run(**filters):
        e = CdcEngine()
        for name, value in filters.items():
            getattr(e, f"set_{name}")(value)
        return tables_of(feed_all(e, data))

    def where(pred):
        return {t for t in all_tables if pred(*t)}

    assert run(include_databases=["nope"]) == set()
    assert run(include_databases=["simu_file_dev"]) == where(lambda d, t: d == "simu_file_dev")
    assert run(include_databases=["simu_file*"]) == set()  # databases match exactly
    assert run(include_databases=["auth", "menkor_dev"]) == where(
        lambda d, t: d in ("auth", "menkor_dev")
    )
    assert run(include_tables=["folder"]) == {("simu_file_dev", "folder")}
    # A bare table name matches in every database.
    assert run(include_tables=["role"]) == {("auth", "role"), ("simu_affair_dev", "role")}
    assert run(include_tables=["simu_file_dev.fi*"]) == where(
        lambda d, t: d == "simu_file_dev" and t.startswith("fi")
    )
    assert run(include_tables=["Folder"]) == set()  # case-sensitive
    assert run(include_tables=["other.folder"]) == set()
    assert run(exclude_tables=["simu_file_dev.file"]) == all_tables - {("simu_file_dev", "file")}
    # Exclusion wins.
    assert run(include_tables=["f*"], exclude_tables=["folder"]) == where(
        lambda d, t: t.startswith("f") and t != "folder"
    )
    assert run(include_databases=["auth"], include_tables=["role*"]) == {
        ("auth", "role"),
        ("auth", "role_permission"),
    }
    e = CdcEngine()
    e.set_include_tables(["nothing"])
    e.set_include_tables([])  # clears
    assert tables_of(feed_all(e, data)) == all_tables
    for bad in (("a",), "a", [1], ["a\x00"]):
        with pytest.raises((TypeError, ValueError)) as info:
            e.set_include_databases(bad)  # type: ignore[arg-type]
        assert info.value.code == 2


def test_filter_change_between_feeds(corpus):
    events = split_events(load(corpus, CRC32_FILE))
    e = CdcEngine()
    e.set_include_tables(["nothing"])
    half = len(events) // 2
    got = feed_all(e, b"".join(events[:half]))
    assert got == []
    e.set_include_tables([])
    got = feed_all(e, b"".join(events[half:]))
    assert got


# --------------------------------------------------------------------------- metadata, logging, threads


def test_enable_metadata_validates_then_checks_the_connection():
    e = CdcEngine()
    with pytest.raises(TypeError) as info:
        e.enable_metadata(bogus=1)
    assert info.value.code == 2 and "Unknown config key: 'bogus'" in str(info.value)
    with pytest.raises(ValueError):
        e.enable_metadata(port=0)
    with pytest.raises(MesConnectionError) as info2:
        e.enable_metadata(port=1)
    assert info2.value.code == 400


def test_log_callback(corpus):
    records = []
    set_log_callback(lambda level, msg: records.append((level, msg)), LogLevel.INFO)
    try:
        decode(corpus, CRC32_FILE)  # 5.7 without SIGNEDNESS metadata, ends with a ROTATE
    finally:
        set_log_callback(None)
    assert (LogLevel.INFO, "event=binlog_rotate file=mysql-bin.000002 position=4") in records
    assert any(
        lvl == LogLevel.WARN
        and msg == "event=table_map_missing_signedness db=simu_file_dev table=folder"
        for lvl, msg in records
    )
    records.clear()

    def boom(level, msg):
        raise RuntimeError("handler failure is swallowed")

    set_log_callback(boom, LogLevel.DEBUG)
    try:
        assert len(decode(corpus, CRC32_FILE)) == 63
    finally:
        set_log_callback(None)


def test_engines_in_threads(corpus):
    data = load(corpus, "mysql-binlog-connector-java/mysql-bin.sakila.gz")
    counts = []

    def work():
        with CdcEngine() as e:
            counts.append(len(feed_all(e, data)))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [47273] * 3


def test_gil_released_while_decoding(corpus):
    """Another Python thread runs while one big feed() decodes."""
    data = load(corpus, "mysql-binlog-connector-java/mysql-bin.sakila.gz")
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)

    e = CdcEngine()
    e.set_max_queue_size(2**53 - 1)
    e.set_max_queue_bytes(2**53 - 1)
    t = threading.Thread(target=ticker)
    t.start()
    try:
        before = len(ticks)
        e.feed(data)
        during = len(ticks) - before
    finally:
        stop.set()
        t.join()
    assert during > 0


# --------------------------------------------------------------------------- object construction


def test_events_built_natively_equal_constructed_ones(corpus):
    """ChangeEvent / BinlogPosition are built by direct slot stores at the layout measured when
    the module loads (convert::SlotsClass); the result must be indistinguishable from what the
    dataclass constructor makes, field by field, for equality, hashing of positions and repr."""
    import dataclasses

    from mysql_event_stream import ChangeEvent, _native

    assert _native._direct_slots() == (True, True), "fast construction path not in use"
    events = decode(corpus, CRC32_FILE)
    assert events
    for ev in events:
        fields = {f.name: getattr(ev, f.name) for f in dataclasses.fields(ChangeEvent)}
        rebuilt = ChangeEvent(**fields)
        assert rebuilt == ev
        assert repr(rebuilt) == repr(ev)
        pos = BinlogPosition(ev.position.file, ev.position.offset)
        assert pos == ev.position and hash(pos) == hash(ev.position)
        with pytest.raises(dataclasses.FrozenInstanceError):
            ev.table = "x"  # type: ignore[misc]
