//! An oracle for raw binlog event streams (`RawBinlogStream` of both drivers) against a server
//! whose binlog files this process can read: every event that claims a place in the binlog must
//! be the file's bytes at that place, the places must follow each other without repeats (only
//! events the server never sends to a replica may lie between them), what the server makes up
//! for a connection must not move the position, and the events decoded in order must give the
//! rows the table holds. Also the workload the raw stream tests write (with binlog rotations).
//! Test support: a violation panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mysql_binlog_codec::engine::{Engine, EngineConfig, EngineEvent, TableFilter};
use mysql_binlog_codec::{ChecksumAlg, DecoderConfig, EventHeader, EventType, HEADER_LEN};
use mysql_binlog_codec::{FLAG_BINLOG_IN_USE, MagicMode};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::live::{Model, sql};

/// One raw event as a driver hands it out (the fields of `RawEvent`, borrowed).
#[derive(Debug, Clone, Copy)]
pub struct RawRef<'a> {
    /// The header the driver parsed.
    pub header: EventHeader,
    /// The event bytes.
    pub data: &'a [u8],
    /// Whether the driver says `data` ends in a CRC32.
    pub checksum: bool,
    /// The binlog file the driver says the event is in.
    pub file: &'a str,
    /// Where the driver says the event starts.
    pub offset: u64,
    /// The resume point after the event: file …
    pub resume_file: &'a str,
    /// … and offset.
    pub resume_offset: u64,
}

/// Checks a raw event stream; see the module documentation.
pub struct RawCheck {
    dir: PathBuf,
    files: HashMap<String, File>,
    /// Where the next binlog event must start (`None`: anywhere, for the first one).
    expected: Option<(String, u64)>,
    /// The stream started from a GTID position and no GTID event came yet: the server is still
    /// skipping the transactions the start excludes, and a reconnection rescans.
    gtid_prelude: bool,
    engine: Engine,
    engine_has_fde: bool,
    /// The table as the decoded change events say it is.
    pub model: Model,
    /// Events checked.
    pub events: usize,
    /// Events compared byte for byte with the binlog files.
    pub from_file: usize,
    /// Events the server made up (artificial, `log_pos` 0, heartbeats).
    pub made_up: usize,
    /// Real ROTATE events (binlog rotations) seen.
    pub rotations: usize,
    /// Events skipped between two delivered ones (the server does not send them).
    pub not_sent: usize,
    /// Dumps the stream started (artificial ROTATE events seen).
    pub connections: usize,
}

impl RawCheck {
    /// A check of a stream from `start` (file and offset; `None` for a GTID start) of the
    /// server whose binlog files are in `dir`; change events of database `db` go to the model.
    pub fn new(dir: PathBuf, db: &str, start: Option<(String, u64)>) -> Self {
        let decoder = DecoderConfig::default()
            .with_magic(MagicMode::None)
            .with_initial_checksum(ChecksumAlg::Crc32);
        let config = EngineConfig::default()
            .with_decoder(decoder)
            .with_filter(TableFilter::default().with_include_databases(&[db]));
        Self {
            dir,
            files: HashMap::new(),
            gtid_prelude: start.is_none(),
            expected: start,
            engine: Engine::new(config),
            engine_has_fde: false,
            model: Model::default(),
            events: 0,
            from_file: 0,
            made_up: 0,
            rotations: 0,
            not_sent: 0,
            connections: 0,
        }
    }

    /// The binlog bytes at `offset..offset + len` of `file`.
    fn read(&mut self, file: &str, offset: u64, len: usize) -> Vec<u8> {
        let dir = self.dir.clone();
        let f = self.files.entry(file.to_owned()).or_insert_with(|| {
            File::open(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
        });
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset)
            .unwrap_or_else(|e| panic!("{file}: {len} bytes at {offset}: {e}"));
        buf
    }

    /// Check one event and decode it into the model.
    pub fn event(&mut self, ev: RawRef<'_>) {
        self.events += 1;
        let what = format!(
            "event #{} ({:?} at {}:{}, log_pos {})",
            self.events,
            ev.header.event_type(),
            ev.file,
            ev.offset,
            ev.header.log_pos
        );
        assert_eq!(
            EventHeader::parse(ev.data),
            Some(ev.header),
            "{what}: header"
        );
        assert_eq!(ev.header.event_size as usize, ev.data.len(), "{what}: size");
        if ev.checksum {
            let n = ev.data.len() - 4;
            let stored = u32::from_le_bytes(ev.data[n..].try_into().unwrap());
            let mut covered = ev.data[..n].to_vec();
            if ev.header.event_type() == EventType::FormatDescription {
                covered[17] &= !(FLAG_BINLOG_IN_USE as u8);
            }
            assert_eq!(crc32fast::hash(&covered), stored, "{what}: CRC32");
        }
        let kind = ev.header.event_type();
        let made_up = ev.header.log_pos == 0
            || ev.header.is_artificial()
            || matches!(kind, EventType::Heartbeat | EventType::HeartbeatV2);
        if made_up {
            self.made_up += 1;
            let resume = (ev.resume_file.to_owned(), ev.resume_offset);
            if kind == EventType::Rotate {
                // The artificial ROTATE a dump starts with names where it continues: where the
                // stream left off, unless it (re)starts from a GTID position.
                assert_eq!(
                    (ev.file, ev.offset),
                    (ev.resume_file, ev.resume_offset),
                    "{what}"
                );
                self.connections += 1;
                eprintln!(
                    "raw check: connection #{} continues at {}:{} (expected {:?}{})",
                    self.connections,
                    ev.resume_file,
                    ev.resume_offset,
                    self.expected,
                    if self.gtid_prelude {
                        ", before the first GTID event"
                    } else {
                        ""
                    }
                );
                match &self.expected {
                    Some(e) if !self.gtid_prelude => assert_eq!(
                        e, &resume,
                        "{what}: a dump resumes where the stream left off"
                    ),
                    _ => self.expected = Some(resume),
                }
            } else if let Some((file, offset)) = &self.expected {
                assert_eq!(
                    (ev.file, ev.offset),
                    (file.as_str(), *offset),
                    "{what}: a made-up event sits at the current position"
                );
                assert_eq!(
                    (file, *offset),
                    (&resume.0, resume.1),
                    "{what}: a made-up event does not move the position"
                );
            }
            // A decoder needs the FORMAT_DESCRIPTION a dump that starts inside a file repeats,
            // once; the other made-up events are not part of the binlog.
            if kind == EventType::FormatDescription && !self.engine_has_fde {
                self.engine_has_fde = true;
                self.decode(ev.data);
            }
            return;
        }
        // A binlog event: the file's bytes at its place.
        let mut from_file = self.read(ev.file, ev.offset, ev.data.len());
        if kind == EventType::FormatDescription {
            // The active file's FDE carries the in-use flag; the server clears it when sending.
            from_file[17] &= !(FLAG_BINLOG_IN_USE as u8);
        }
        assert!(
            from_file == ev.data,
            "{what}: bytes differ from the binlog file"
        );
        self.from_file += 1;
        assert_eq!(
            u64::from(ev.header.log_pos),
            ev.offset + ev.data.len() as u64,
            "{what}: offset + size = log_pos"
        );
        match self.expected.clone() {
            Some((file, offset))
                if self.gtid_prelude && (file != ev.file || ev.offset < offset) =>
            {
                // Before the first transaction of a GTID start, a reconnection rescans.
            }
            Some((file, offset)) => {
                assert_eq!(ev.file, file, "{what}: not in the expected file");
                assert!(
                    ev.offset >= offset,
                    "{what}: repeats the binlog before {file}:{offset}"
                );
                if !self.gtid_prelude {
                    // Between the previous event and this one, only events a replica is not
                    // sent (MariaDB ANNOTATE_ROWS without the dump flag asking for them).
                    let mut at = offset;
                    while at < ev.offset {
                        let head = self.read(ev.file, at, HEADER_LEN);
                        let h = EventHeader::parse(&head).unwrap();
                        assert_eq!(
                            h.event_type(),
                            EventType::MariaAnnotateRows,
                            "{what}: the {:?} at {}:{at} was not delivered",
                            h.event_type(),
                            ev.file
                        );
                        self.not_sent += 1;
                        at += u64::from(h.event_size);
                    }
                    assert_eq!(at, ev.offset, "{what}: not at an event boundary");
                }
            }
            None => {}
        }
        if matches!(
            kind,
            EventType::Gtid | EventType::GtidTagged | EventType::MariaGtid
        ) {
            self.gtid_prelude = false;
        }
        let end = ev.offset + ev.data.len() as u64;
        if kind == EventType::Rotate {
            self.rotations += 1;
            assert_ne!(
                ev.resume_file, ev.file,
                "{what}: a rotation changes the file"
            );
            assert_eq!(ev.resume_offset, 4, "{what}: a new file starts at 4");
        } else {
            assert_eq!(
                (ev.resume_file, ev.resume_offset),
                (ev.file, end),
                "{what}: resume after the event"
            );
        }
        self.expected = Some((ev.resume_file.to_owned(), ev.resume_offset));
        if kind == EventType::FormatDescription {
            self.engine_has_fde = true;
        }
        self.decode(ev.data);
    }

    fn decode(&mut self, data: &[u8]) {
        let mut rest = data;
        loop {
            let used = self.engine.handle_input(rest).unwrap();
            rest = &rest[used..];
            while let Some(ev) = self.engine.poll_event() {
                if let EngineEvent::Change(c) = ev {
                    self.model.apply(&c);
                }
            }
            if rest.is_empty() {
                return;
            }
        }
    }

    /// A line for the test log.
    pub fn summary(&self) -> String {
        format!(
            "{} raw events over {} connections: {} compared with the binlog files, {} made up by \
             the server, {} rotations, {} not sent by the server; {} row changes decoded",
            self.events,
            self.connections,
            self.from_file,
            self.made_up,
            self.rotations,
            self.not_sent,
            self.model.changes
        )
    }
}

/// A fresh database `mes_raw_<tag>_<pid>_<n>` with `t (id BIGINT PRIMARY KEY, n INT,
/// v VARCHAR(200))`.
pub fn fresh_db(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let db = format!("mes_raw_{tag}_{}_{n}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT, v VARCHAR(200)) CHARACTER SET utf8mb4"
    ));
    db
}

/// Transactions of 1–5 inserted rows (text with non-ASCII characters), some with updates and
/// deletes of earlier rows, a `FLUSH BINARY LOGS` after every `rotate_every`-th one, until at
/// least `txns` transactions were written and `done()` holds (30 s at most); then the sentinel
/// row 0. Returns the number of transactions.
pub fn rotating_workload(
    db: &str,
    seed: u64,
    txns: usize,
    rotate_every: usize,
    done: impl Fn() -> bool,
) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live: Vec<i64> = Vec::new();
    let mut next_id = 1i64;
    let mut n = 0usize;
    let started = Instant::now();
    while (n < txns || !done()) && started.elapsed() < Duration::from_secs(30) {
        let k = rng.gen_range(1..=5);
        let mut s = String::from("BEGIN;");
        for id in next_id..next_id + k {
            let len = rng.gen_range(0..60);
            let mut text: String = (0..len)
                .map(|_| ['a', 'é', '名', '😀', ' ', 'z'][rng.gen_range(0..6)])
                .collect();
            // `live::sql` trims its output, which would cut a trailing space off the last
            // row `select_rows` prints.
            text.push('.');
            s.push_str(&format!(
                "INSERT INTO {db}.t VALUES ({id}, {}, '{text}');",
                rng.gen_range(-1000..1000)
            ));
            live.push(id);
        }
        next_id += k;
        if rng.gen_bool(0.4) {
            let id = live[rng.gen_range(0..live.len())];
            s.push_str(&format!(
                "UPDATE {db}.t SET n = n + 1, v = CONCAT(v, 'ü') WHERE id = {id};"
            ));
        }
        if live.len() > 5 && rng.gen_bool(0.2) {
            let id = live.swap_remove(rng.gen_range(0..live.len()));
            s.push_str(&format!("DELETE FROM {db}.t WHERE id = {id};"));
        }
        s.push_str("COMMIT;");
        sql(&s);
        n += 1;
        if n % rotate_every == 0 {
            sql("FLUSH BINARY LOGS");
        }
    }
    sql(&format!("INSERT INTO {db}.t VALUES (0, 0, 'sentinel')"));
    n
}
