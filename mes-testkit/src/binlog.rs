//! The binlog files the primary serves: framing by `event_size`, the GTID of each
//! transaction, the checksum algorithm, and builders for the events the server makes up
//! (artificial ROTATE, heartbeats v1/v2, the oversized ROWS_QUERY file).

use crate::gtid::{GtidSet, get_varlen};
use std::io;
use std::path::Path;

/// Common header length (binlog v4).
pub(crate) const HEADER_LEN: usize = 19;
/// `LOG_EVENT_BINLOG_IN_USE_F`.
const FLAG_IN_USE: u16 = 0x0001;
/// `LOG_EVENT_ARTIFICIAL_F`.
pub(crate) const FLAG_ARTIFICIAL: u16 = 0x0020;
/// `LOG_EVENT_IGNORABLE_F`.
const FLAG_IGNORABLE: u16 = 0x0080;

pub(crate) const ROTATE_EVENT: u8 = 4;
pub(crate) const FORMAT_DESCRIPTION_EVENT: u8 = 15;
pub(crate) const HEARTBEAT_LOG_EVENT: u8 = 27;
const ROWS_QUERY_LOG_EVENT: u8 = 29;
pub(crate) const GTID_LOG_EVENT: u8 = 33;
const PREVIOUS_GTIDS_LOG_EVENT: u8 = 35;
pub(crate) const HEARTBEAT_LOG_EVENT_V2: u8 = 41;
pub(crate) const GTID_TAGGED_LOG_EVENT: u8 = 42;

/// One framed event of a file.
#[derive(Debug, Clone)]
pub(crate) struct EventIndex {
    pub offset: usize,
    pub len: usize,
    pub type_code: u8,
    /// For GTID / GTID_TAGGED events: (uuid, tag, gno).
    pub gtid: Option<([u8; 16], String, u64)>,
}

/// A binlog file held in memory.
#[derive(Debug, Clone)]
pub(crate) struct BinlogFile {
    /// The name served to clients (`SHOW BINARY LOGS`, ROTATE events).
    pub name: String,
    pub bytes: Vec<u8>,
    /// Events in file order; `events[0]` is the FORMAT_DESCRIPTION_EVENT.
    pub events: Vec<EventIndex>,
    /// Whether events carry a CRC32 (`binlog_checksum=CRC32` in the FDE).
    pub crc32: bool,
    /// The PREVIOUS_GTIDS set of the file (empty when the file has none).
    pub previous_gtids: GtidSet,
    /// GTIDs of the transactions in the file.
    pub gtids: GtidSet,
    /// Name of the next file per the file's trailing ROTATE event, if it ends with one.
    pub rotate_to: Option<String>,
}

fn invalid(name: &str, msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("binlog {name}: {msg}"))
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl BinlogFile {
    /// Load and index a file.
    pub(crate) fn load(path: &Path, name: &str) -> io::Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Self::parse(name, bytes)
    }

    /// Index the bytes of a MySQL 5.6.1+ binlog file (magic, FDE with checksum field).
    pub(crate) fn parse(name: &str, bytes: Vec<u8>) -> io::Result<Self> {
        if bytes.get(..4) != Some(&[0xFE, b'b', b'i', b'n'][..]) {
            return Err(invalid(name, "no binlog magic"));
        }
        let mut events = Vec::new();
        let mut pos = 4usize;
        while pos < bytes.len() {
            let header = bytes
                .get(pos..pos + HEADER_LEN)
                .ok_or_else(|| invalid(name, format!("truncated header at {pos}")))?;
            let len = u32_at(header, 9) as usize;
            if len < HEADER_LEN || pos + len > bytes.len() {
                return Err(invalid(name, format!("bad event size {len} at {pos}")));
            }
            events.push(EventIndex {
                offset: pos,
                len,
                type_code: header[4],
                gtid: None,
            });
            pos += len;
        }
        let fde = events
            .first()
            .filter(|e| e.type_code == FORMAT_DESCRIPTION_EVENT)
            .ok_or_else(|| invalid(name, "does not start with a FORMAT_DESCRIPTION_EVENT"))?;
        // FDE body: binlog version (2), server version (50), created (4), header length (1),
        // post-header lengths, checksum algorithm (1), CRC32 (4).
        if fde.len < HEADER_LEN + 57 + 5 {
            return Err(invalid(
                name,
                "FORMAT_DESCRIPTION_EVENT too short for a checksum field",
            ));
        }
        let crc32 = match bytes[fde.offset + fde.len - 5] {
            0 => false,
            1 => true,
            other => return Err(invalid(name, format!("checksum algorithm {other}"))),
        };
        let mut file = Self {
            name: name.to_string(),
            bytes,
            events,
            crc32,
            previous_gtids: GtidSet::new(),
            gtids: GtidSet::new(),
            rotate_to: None,
        };
        let crc_len = if crc32 { 4 } else { 0 };
        for i in 0..file.events.len() {
            let e = &file.events[i];
            let body_end = e.offset + e.len.saturating_sub(crc_len).max(HEADER_LEN);
            let body = &file.bytes[e.offset + HEADER_LEN..body_end];
            match e.type_code {
                PREVIOUS_GTIDS_LOG_EVENT => {
                    file.previous_gtids = GtidSet::decode(body)
                        .map_err(|m| invalid(name, format!("PREVIOUS_GTIDS: {m}")))?;
                }
                GTID_LOG_EVENT | GTID_TAGGED_LOG_EVENT => {
                    let gtid = if e.type_code == GTID_LOG_EVENT {
                        parse_gtid(body)
                    } else {
                        parse_gtid_tagged(body)
                    }
                    .ok_or_else(|| invalid(name, format!("bad GTID event at {}", e.offset)))?;
                    file.gtids.add(gtid.0, &gtid.1, gtid.2);
                    file.events[i].gtid = Some(gtid);
                }
                ROTATE_EVENT if i + 1 == file.events.len() => {
                    let next = body.get(8..).unwrap_or_default();
                    file.rotate_to = Some(String::from_utf8_lossy(next).into_owned());
                }
                _ => {}
            }
        }
        Ok(file)
    }

    pub(crate) fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub(crate) fn event_bytes(&self, e: &EventIndex) -> &[u8] {
        &self.bytes[e.offset..e.offset + e.len]
    }

    /// Index of the event starting at `offset`, if any.
    pub(crate) fn event_at(&self, offset: u64) -> Option<usize> {
        self.events.iter().position(|e| e.offset as u64 == offset)
    }

    /// The FDE as sent to a replica: `LOG_EVENT_BINLOG_IN_USE_F` cleared (its CRC is computed
    /// as if the flag were clear), and when `clear_log_pos` the `log_pos` and `created`
    /// fields zeroed with the CRC recomputed — what MySQL's `Binlog_sender` does.
    pub(crate) fn fde_for_dump(&self, clear_log_pos: bool) -> Vec<u8> {
        let mut ev = self.event_bytes(&self.events[0]).to_vec();
        let flags = u16::from_le_bytes([ev[17], ev[18]]) & !FLAG_IN_USE;
        ev[17..19].copy_from_slice(&flags.to_le_bytes());
        if clear_log_pos {
            ev[13..17].copy_from_slice(&0u32.to_le_bytes());
            // `created` is at body offset 2 + 50.
            ev[HEADER_LEN + 52..HEADER_LEN + 56].copy_from_slice(&0u32.to_le_bytes());
            if self.crc32 {
                fix_crc(&mut ev);
            }
        }
        ev
    }

    /// Build the synthetic file that follows `last`: its FDE, a PREVIOUS_GTIDS with every
    /// GTID so far, and one ROWS_QUERY_LOG_EVENT of exactly `event_size` bytes (header and
    /// checksum included) — an event larger than 16 MiB forces the 0xFFFFFF packet split.
    pub(crate) fn synthetic_large(
        last: &BinlogFile,
        all_gtids: &GtidSet,
        event_size: usize,
    ) -> io::Result<Self> {
        let name = last
            .rotate_to
            .clone()
            .unwrap_or_else(|| next_file_name(&last.name));
        let crc_len = if last.crc32 { 4 } else { 0 };
        let fde = last.fde_for_dump(false);
        let (timestamp, server_id) = (u32_at(&fde, 0), u32_at(&fde, 5));
        let mut bytes = vec![0xFE, b'b', b'i', b'n'];
        bytes.extend_from_slice(&fde);

        let mut prev_body = all_gtids.encode();
        let mut prev = Vec::new();
        let prev_len = HEADER_LEN + prev_body.len() + crc_len;
        let prev_end = bytes.len() + prev_len;
        put_header(
            &mut prev,
            timestamp,
            PREVIOUS_GTIDS_LOG_EVENT,
            server_id,
            prev_len,
            prev_end as u32,
            0,
        );
        prev.append(&mut prev_body);
        push_crc(&mut prev, last.crc32);
        bytes.extend_from_slice(&prev);

        let min = HEADER_LEN + 1 + crc_len + 64;
        if event_size < min {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("large event must be at least {min} bytes"),
            ));
        }
        let text_len = event_size - HEADER_LEN - 1 - crc_len;
        let end = bytes.len() + event_size;
        let end32 = u32::try_from(end)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "large event beyond 4 GiB"))?;
        let mut ev = Vec::with_capacity(event_size);
        put_header(
            &mut ev,
            timestamp,
            ROWS_QUERY_LOG_EVENT,
            server_id,
            event_size,
            end32,
            FLAG_IGNORABLE,
        );
        ev.push(255); // the length byte (MySQL truncates it at 255; the text runs to the end)
        let prefix = b"/* mes-testkit large event */ INSERT INTO t VALUES ('";
        ev.extend_from_slice(prefix);
        let fill = text_len - prefix.len() - 3;
        ev.extend(std::iter::repeat_n(b'x', fill));
        ev.extend_from_slice(b"')\n");
        push_crc(&mut ev, last.crc32);
        debug_assert_eq!(ev.len(), event_size);
        bytes.extend_from_slice(&ev);
        Self::parse(&name, bytes)
    }
}

/// `binlog.000007` → `binlog.000008` (width kept); other names get `.000001` appended.
pub(crate) fn next_file_name(name: &str) -> String {
    if let Some((stem, num)) = name.rsplit_once('.') {
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = num.parse::<u64>() {
                return format!("{stem}.{:0width$}", n + 1, width = num.len());
            }
        }
    }
    format!("{name}.000001")
}

/// GTID_LOG_EVENT body: flags (1), uuid (16), gno (8), ...
fn parse_gtid(body: &[u8]) -> Option<([u8; 16], String, u64)> {
    let uuid: [u8; 16] = body.get(1..17)?.try_into().ok()?;
    let gno = u64::from_le_bytes(body.get(17..25)?.try_into().ok()?);
    Some((uuid, String::new(), gno))
}

/// GTID_TAGGED_LOG_EVENT body: a serialization-framework message (format version, size,
/// last non-ignorable field id, then `id value` pairs: 0 flags, 1 uuid as 16 varlen bytes,
/// 2 gno as zig-zag varlen, 3 tag as varlen-length string, ...).
fn parse_gtid_tagged(body: &[u8]) -> Option<([u8; 16], String, u64)> {
    let mut c = body;
    let _version = get_varlen(&mut c)?;
    let _size = get_varlen(&mut c)?;
    let _last = get_varlen(&mut c)?;
    let mut uuid = None;
    let mut gno = None;
    let mut tag = String::new();
    while !c.is_empty() && (uuid.is_none() || gno.is_none() || tag.is_empty()) {
        match get_varlen(&mut c)? {
            0 => {
                get_varlen(&mut c)?;
            }
            1 => {
                let mut u = [0u8; 16];
                for b in &mut u {
                    *b = u8::try_from(get_varlen(&mut c)?).ok()?;
                }
                uuid = Some(u);
            }
            2 => {
                let v = get_varlen(&mut c)?;
                gno = Some(((v >> 1) as i64 ^ -((v & 1) as i64)) as u64);
            }
            3 => {
                let n = usize::try_from(get_varlen(&mut c)?).ok()?;
                let raw = c.get(..n)?;
                c = &c[n..];
                tag = String::from_utf8_lossy(raw).to_ascii_lowercase();
            }
            _ => break,
        }
    }
    Some((uuid?, tag, gno?))
}

fn put_header(
    out: &mut Vec<u8>,
    timestamp: u32,
    type_code: u8,
    server_id: u32,
    len: usize,
    log_pos: u32,
    flags: u16,
) {
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.push(type_code);
    out.extend_from_slice(&server_id.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&log_pos.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
}

fn push_crc(ev: &mut Vec<u8>, crc32: bool) {
    if crc32 {
        let crc = crc32fast::hash(ev);
        ev.extend_from_slice(&crc.to_le_bytes());
    }
}

/// Recompute the trailing CRC32 of a complete event.
fn fix_crc(ev: &mut [u8]) {
    let n = ev.len() - 4;
    let crc = crc32fast::hash(&ev[..n]);
    ev[n..].copy_from_slice(&crc.to_le_bytes());
}

/// The artificial ROTATE sent before each file: timestamp 0, the server's id, log_pos 0,
/// `LOG_EVENT_ARTIFICIAL_F`, body = position (8) + file name.
pub(crate) fn fake_rotate(server_id: u32, file: &str, position: u64, crc32: bool) -> Vec<u8> {
    let len = HEADER_LEN + 8 + file.len() + if crc32 { 4 } else { 0 };
    let mut ev = Vec::with_capacity(len);
    put_header(&mut ev, 0, ROTATE_EVENT, server_id, len, 0, FLAG_ARTIFICIAL);
    ev.extend_from_slice(&position.to_le_bytes());
    ev.extend_from_slice(file.as_bytes());
    push_crc(&mut ev, crc32);
    ev
}

/// HEARTBEAT_LOG_EVENT (v1): body = current file name; the position is the header's log_pos.
pub(crate) fn heartbeat_v1(server_id: u32, file: &str, position: u64, crc32: bool) -> Vec<u8> {
    let len = HEADER_LEN + file.len() + if crc32 { 4 } else { 0 };
    let log_pos = position.min(u64::from(u32::MAX)) as u32;
    let mut ev = Vec::with_capacity(len);
    put_header(&mut ev, 0, HEARTBEAT_LOG_EVENT, server_id, len, log_pos, 0);
    ev.extend_from_slice(file.as_bytes());
    push_crc(&mut ev, crc32);
    ev
}

/// HEARTBEAT_LOG_EVENT_V2: body = fields `type, length, value` (length-encoded integers):
/// 1 = file name, 2 = position (itself length-encoded), then the end mark 0.
pub(crate) fn heartbeat_v2(server_id: u32, file: &str, position: u64, crc32: bool) -> Vec<u8> {
    let mut body = Vec::new();
    crate::wire::put_lenenc_int(&mut body, 1);
    crate::wire::put_lenenc_str(&mut body, file.as_bytes());
    let mut pos = Vec::new();
    crate::wire::put_lenenc_int(&mut pos, position);
    crate::wire::put_lenenc_int(&mut body, 2);
    crate::wire::put_lenenc_str(&mut body, &pos);
    crate::wire::put_lenenc_int(&mut body, 0);
    let len = HEADER_LEN + body.len() + if crc32 { 4 } else { 0 };
    let log_pos = position.min(u64::from(u32::MAX)) as u32;
    let mut ev = Vec::with_capacity(len);
    put_header(
        &mut ev,
        0,
        HEARTBEAT_LOG_EVENT_V2,
        server_id,
        len,
        log_pos,
        0,
    );
    ev.extend_from_slice(&body);
    push_crc(&mut ev, crc32);
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_names() {
        assert_eq!(next_file_name("binlog.000009"), "binlog.000010");
        assert_eq!(next_file_name("mysql-bin.999999"), "mysql-bin.1000000");
        assert_eq!(next_file_name("x.binlog"), "x.binlog.000001");
    }

    #[test]
    fn built_events_have_valid_crc() {
        for ev in [
            fake_rotate(1, "binlog.000001", 4, true),
            heartbeat_v1(1, "binlog.000001", 1234, true),
            heartbeat_v2(1, "binlog.000001", 1234, true),
        ] {
            let n = ev.len() - 4;
            assert_eq!(u32_at(&ev, 9) as usize, ev.len());
            assert_eq!(crc32fast::hash(&ev[..n]).to_le_bytes(), ev[n..]);
        }
    }
}
