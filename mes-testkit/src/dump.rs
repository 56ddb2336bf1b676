//! COM_BINLOG_DUMP / COM_BINLOG_DUMP_GTID: decoding the command and streaming the files the
//! way MySQL's `Binlog_sender` does (artificial ROTATE before each file, the FDE, events,
//! GTID-based skipping with heartbeats, EOF or heartbeats at the end), with injected faults.

use crate::binlog::{self, GTID_LOG_EVENT, GTID_TAGGED_LOG_EVENT, ROTATE_EVENT};
use crate::config::{Fault, HeartbeatVersion};
use crate::gtid::GtidSet;
use crate::log::{Command, DumpRequest};
use crate::server::{After, Session};
use crate::wire::{FAULT_DISCONNECT, Reader};
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `BINLOG_DUMP_NON_BLOCK`: send EOF at the end of the last binlog instead of waiting.
const BINLOG_DUMP_NON_BLOCK: u16 = 1;
/// `USE_HEARTBEAT_EVENT_V2` (MySQL 8.0.26+ replicas).
const USE_HEARTBEAT_EVENT_V2: u16 = 2;

const ER_SOURCE_FATAL_ERROR_READING_BINLOG: u16 = 1236;
const ER_MALFORMED_PACKET: u16 = 1835;

/// Checksum capability the replica declared with `SET @source_binlog_checksum = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlaveChecksum {
    Undeclared,
    None,
    Crc32,
}

fn parse_dump(pkt: &[u8]) -> Option<DumpRequest> {
    let mut r = Reader::new(pkt);
    match r.u8()? {
        0x12 => {
            let position = u64::from(r.u32()?);
            let flags = r.u16()?;
            let server_id = r.u32()?;
            let name = r.rest();
            let name = name.strip_suffix(&[0]).unwrap_or(name);
            Some(DumpRequest {
                gtid_protocol: false,
                flags,
                server_id,
                file: String::from_utf8_lossy(name).into_owned(),
                position,
                gtid_set: None,
                gtid_set_bytes: Vec::new(),
            })
        }
        0x1e => {
            let flags = r.u16()?;
            let server_id = r.u32()?;
            let name_len = usize::try_from(r.u32()?).ok()?;
            let name = r.bytes(name_len)?;
            let position = r.u64()?;
            let data = if r.remaining() >= 4 {
                let n = usize::try_from(r.u32()?).ok()?;
                r.bytes(n)?.to_vec()
            } else {
                Vec::new()
            };
            Some(DumpRequest {
                gtid_protocol: true,
                flags,
                server_id,
                file: String::from_utf8_lossy(name).into_owned(),
                position,
                gtid_set: None,
                gtid_set_bytes: data,
            })
        }
        _ => None,
    }
}

/// Per-dump sending state.
struct DumpState {
    /// Event packets sent in this dump (the fault counter).
    sent: usize,
    fault: Option<Fault>,
    heartbeat_v2: bool,
    period: Option<Duration>,
    /// Checksum algorithm of the events being sent (the current file's, or the replica's
    /// declared one before the first FDE).
    crc32: bool,
}

/// Outcome of sending one event.
enum Sent {
    Ok,
    /// The fault ended the stream (connection closed or stalled until the client left).
    Ended,
}

impl Session {
    fn fatal(&mut self, msg: &str) -> io::Result<After> {
        self.note(format!("dump refused: {msg}"));
        self.io
            .write_err(ER_SOURCE_FATAL_ERROR_READING_BINLOG, "HY000", msg)?;
        Ok(After::Continue)
    }

    fn slave_checksum(&self) -> SlaveChecksum {
        let v = self
            .sql
            .user_var("source_binlog_checksum")
            .or_else(|| self.sql.user_var("master_binlog_checksum"));
        match v.map(str::to_ascii_uppercase).as_deref() {
            Some("NONE") => SlaveChecksum::None,
            Some("CRC32") => SlaveChecksum::Crc32,
            _ => SlaveChecksum::Undeclared,
        }
    }

    fn heartbeat_period(&self) -> Option<Duration> {
        let v = self
            .sql
            .user_var("source_heartbeat_period")
            .or_else(|| self.sql.user_var("master_heartbeat_period"));
        match v.and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(ns) if ns >= 1.0 => Some(Duration::from_nanos(ns as u64)),
            Some(_) => None,
            None => self.shared.heartbeat_period,
        }
    }

    /// Handle COM_BINLOG_DUMP (0x12) or COM_BINLOG_DUMP_GTID (0x1e).
    pub(crate) fn binlog_dump(&mut self, pkt: &[u8]) -> io::Result<After> {
        let Some(mut req) = parse_dump(pkt) else {
            self.note("malformed binlog dump command");
            self.io.write_err(
                ER_MALFORMED_PACKET,
                "HY000",
                "Malformed communication packet.",
            )?;
            return Ok(After::Continue);
        };
        if req.gtid_protocol {
            match GtidSet::decode(&req.gtid_set_bytes) {
                Ok(set) => req.gtid_set = Some(set),
                Err(e) => {
                    let r = req.clone();
                    self.log(|l| l.commands.push(Command::BinlogDump(r)));
                    self.note(format!("bad GTID set in COM_BINLOG_DUMP_GTID: {e}"));
                    self.io.write_err(
                        ER_MALFORMED_PACKET,
                        "HY000",
                        "Malformed communication packet.",
                    )?;
                    return Ok(After::Continue);
                }
            }
        }
        let r = req.clone();
        self.log(|l| l.commands.push(Command::BinlogDump(r)));

        let fault = self.shared.next_fault();
        if let Some(Fault::DumpError { code, message }) = &fault {
            self.note(format!("fault: ERR {code} on dump"));
            self.io.write_err(*code, "HY000", message)?;
            return Ok(After::Continue);
        }
        self.io.reset_written();
        if let Some(Fault::DisconnectAfterBytes(n)) = fault {
            self.io.set_budget(Some(n));
        }
        let slave_alg = self.slave_checksum();
        let heartbeat_v2 = match self.shared.heartbeat_version {
            HeartbeatVersion::V1 => false,
            HeartbeatVersion::V2 => true,
            HeartbeatVersion::FromClientFlag => req.flags & USE_HEARTBEAT_EVENT_V2 != 0,
        };
        let mut st = DumpState {
            sent: 0,
            fault,
            heartbeat_v2,
            period: self.heartbeat_period(),
            crc32: slave_alg == SlaveChecksum::Crc32,
        };
        let result = self.stream(&req, slave_alg, &mut st);
        self.io.set_budget(None);
        match result {
            Ok(after) => Ok(after),
            Err(e) if e.to_string() == FAULT_DISCONNECT => {
                self.note(format!(
                    "fault: disconnected after {} bytes of the dump",
                    self.io.written()
                ));
                Ok(After::Close)
            }
            Err(e) => Err(e),
        }
    }

    fn stream(
        &mut self,
        req: &DumpRequest,
        slave_alg: SlaveChecksum,
        st: &mut DumpState,
    ) -> io::Result<After> {
        let shared = self.shared.clone();
        let files = &shared.binlogs;
        if files.is_empty() {
            return self.fatal("Binary log is not open");
        }
        let exclude = req.gtid_set.as_ref();
        let mut start_idx = 0;
        if !req.file.is_empty() {
            match files.iter().position(|f| f.name == req.file) {
                Some(i) => start_idx = i,
                None => {
                    return self
                        .fatal("Could not find first log file name in binary log index file");
                }
            }
        } else if let Some(set) = exclude {
            // The newest file whose PREVIOUS_GTIDS the replica already has.
            start_idx = files
                .iter()
                .rposition(|f| f.previous_gtids.is_subset_of(set))
                .unwrap_or(0);
        }
        if let Some(set) = exclude {
            let purged = shared
                .globals
                .get("gtid_purged")
                .and_then(|p| GtidSet::parse(p).ok())
                .unwrap_or_default();
            let missing = purged.subtract(set);
            if !missing.is_empty() {
                return self.fatal(&format!(
                    "Cannot replicate because the source purged required binary logs. \
                     Replicate the missing transactions from elsewhere, or provision a new \
                     replica from backup. Consider increasing the source's binary log \
                     expiration period. The GTID set sent by the replica is '{set}', and the \
                     missing transactions are '{missing}'"
                ));
            }
        }
        let first_file = files[start_idx].name.clone();
        let mut start_pos = if req.gtid_protocol && req.file.is_empty() {
            4
        } else {
            req.position
        };
        if start_pos < 4 {
            return self.fatal("Client requested source to start replication from position < 4");
        }
        if start_pos > files[start_idx].size() {
            return self
                .fatal("Client requested source to start replication from position > file size");
        }
        let first_pos = start_pos;
        // GTID protocol: clear the FDE's log_pos/created when the file's first transaction
        // is skipped; position protocol: when starting past the file's beginning.
        let gtid_clear = exclude.is_some_and(|set| {
            files[start_idx]
                .events
                .iter()
                .find_map(|e| e.gtid.as_ref())
                .is_some_and(|(u, t, g)| set.contains(u, t, *g))
        });

        for file in &files[start_idx..] {
            let rotate = binlog::fake_rotate(shared.server_id, &file.name, start_pos, st.crc32);
            if let Sent::Ended = self.send_event(&rotate, st, &file.name, start_pos)? {
                return Ok(After::Close);
            }
            if slave_alg == SlaveChecksum::Undeclared && file.crc32 {
                return self.fatal(&format!(
                    "Replica can not handle replication events with the checksum that source \
                     is configured to log; the first event '{first_file}' at {first_pos}, the \
                     last event read from '{}' at 4, the last byte read from '{}' at 4.",
                    file.name, file.name
                ));
            }
            st.crc32 = file.crc32;
            let clear = if req.gtid_protocol {
                gtid_clear
            } else {
                start_pos > 4
            };
            let fde = file.fde_for_dump(clear);
            if let Sent::Ended = self.send_event(&fde, st, &file.name, start_pos)? {
                return Ok(After::Close);
            }
            let first_event = if start_pos == 4 {
                1
            } else {
                match file.event_at(start_pos) {
                    Some(i) => i,
                    None => {
                        return self.fatal(&format!(
                            "bogus data in log event; the first event '{first_file}' at \
                             {first_pos}, the last event read from '{}' at 4, the last byte \
                             read from '{}' at {start_pos}.",
                            file.name, file.name
                        ));
                    }
                }
            };
            let mut in_exclude = false;
            let mut exclude_end: u64 = 0;
            for e in &file.events[first_event.max(1)..] {
                let end = (e.offset + e.len) as u64;
                if let Some(set) = exclude {
                    in_exclude = match e.type_code {
                        GTID_LOG_EVENT | GTID_TAGGED_LOG_EVENT => e
                            .gtid
                            .as_ref()
                            .is_some_and(|(u, t, g)| set.contains(u, t, *g)),
                        ROTATE_EVENT => false,
                        _ => in_exclude,
                    };
                }
                if in_exclude {
                    exclude_end = end;
                    continue;
                }
                if exclude_end != 0 {
                    if let Sent::Ended = self.send_heartbeat(st, &file.name, exclude_end)? {
                        return Ok(After::Close);
                    }
                    exclude_end = 0;
                }
                if let Sent::Ended = self.send_event(file.event_bytes(e), st, &file.name, end)? {
                    return Ok(After::Close);
                }
            }
            if in_exclude {
                if let Sent::Ended = self.send_heartbeat(st, &file.name, file.size())? {
                    return Ok(After::Close);
                }
            }
            start_pos = 4;
        }
        if req.flags & BINLOG_DUMP_NON_BLOCK != 0 || req.server_id == 0 {
            let status = self.status();
            self.io
                .write_eof(self.caps & crate::server::CLIENT_DEPRECATE_EOF != 0, status)?;
            return Ok(After::Continue);
        }
        let last = files.last().map(|f| (f.name.clone(), f.size()));
        let (name, size) = last.unwrap_or_default();
        self.idle(st, &name, size, true)?;
        Ok(After::Close)
    }

    fn send_heartbeat(&mut self, st: &mut DumpState, file: &str, pos: u64) -> io::Result<Sent> {
        let ev = if st.heartbeat_v2 {
            binlog::heartbeat_v2(self.shared.server_id, file, pos, st.crc32)
        } else {
            binlog::heartbeat_v1(self.shared.server_id, file, pos, st.crc32)
        };
        let r = self.send_event(&ev, st, file, pos)?;
        self.log(|l| l.heartbeats_sent += 1);
        Ok(r)
    }

    /// Send one event as a `0x00`-prefixed packet, applying the event-numbered faults.
    fn send_event(
        &mut self,
        ev: &[u8],
        st: &mut DumpState,
        file: &str,
        pos: u64,
    ) -> io::Result<Sent> {
        match st.fault.clone() {
            Some(Fault::DisconnectBeforeEvent(n)) if n == st.sent => {
                self.note(format!("fault: closed before dump event {n}"));
                self.io.shutdown();
                return Ok(Sent::Ended);
            }
            Some(Fault::DisconnectMidEvent(n)) if n == st.sent => {
                let half = 4 + (ev.len() as u64).div_ceil(2);
                self.note(format!("fault: cutting dump event {n} after {half} bytes"));
                self.io.set_budget(Some(half));
            }
            Some(Fault::StallBeforeEvent { event, heartbeats }) if event == st.sent => {
                self.note(format!("fault: stalled before dump event {event}"));
                st.fault = None;
                self.idle(st, file, pos, heartbeats)?;
                return Ok(Sent::Ended);
            }
            _ => {}
        }
        let mut payload = Vec::with_capacity(ev.len() + 1);
        payload.push(0x00);
        payload.extend_from_slice(ev);
        self.io.write_packet(&payload)?;
        st.sent += 1;
        self.log(|l| l.events_sent += 1);
        Ok(Sent::Ok)
    }

    /// Wait with the connection open, sending heartbeats every period when `heartbeats`,
    /// until the client goes away or the primary stops.
    fn idle(
        &mut self,
        st: &mut DumpState,
        file: &str,
        pos: u64,
        heartbeats: bool,
    ) -> io::Result<()> {
        let period = if heartbeats { st.period } else { None };
        let tcp = self.io.tcp().try_clone()?;
        tcp.set_read_timeout(Some(Duration::from_millis(20)))?;
        let mut last = Instant::now();
        let mut probe = [0u8; 1];
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            match tcp.peek(&mut probe) {
                Ok(0) => {
                    self.note("client closed the connection during the dump");
                    return Ok(());
                }
                Ok(_) => {
                    self.note("client sent data during the dump; closing");
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
            if let Some(p) = period {
                if last.elapsed() >= p {
                    last = Instant::now();
                    if let Sent::Ended = self.send_heartbeat(st, file, pos)? {
                        return Ok(());
                    }
                }
            }
        }
    }
}
