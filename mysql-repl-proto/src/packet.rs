//! MySQL packet framing (3-byte length + sequence id, payloads ≥ 16 MiB split into 0xFFFFFF
//! chunks) and the client-side encoders and decoders of the messages a replication client
//! needs. Encoders are free functions appending to a caller's buffer.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ProtoError;

/// Largest payload of one physical packet.
pub const MAX_CHUNK: usize = 0xFF_FFFF;

/// Capability flags (the subset this client uses or inspects).
pub mod caps {
    /// CLIENT_LONG_PASSWORD.
    pub const LONG_PASSWORD: u32 = 1;
    /// CLIENT_FOUND_ROWS.
    pub const FOUND_ROWS: u32 = 1 << 1;
    /// CLIENT_LONG_FLAG.
    pub const LONG_FLAG: u32 = 1 << 2;
    /// CLIENT_CONNECT_WITH_DB.
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    /// CLIENT_PROTOCOL_41.
    pub const PROTOCOL_41: u32 = 1 << 9;
    /// CLIENT_SSL.
    pub const SSL: u32 = 1 << 11;
    /// CLIENT_TRANSACTIONS.
    pub const TRANSACTIONS: u32 = 1 << 13;
    /// CLIENT_SECURE_CONNECTION (4.1 auth).
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    /// CLIENT_MULTI_RESULTS.
    pub const MULTI_RESULTS: u32 = 1 << 17;
    /// CLIENT_PLUGIN_AUTH.
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    /// CLIENT_CONNECT_ATTRS.
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    /// CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.
    pub const PLUGIN_AUTH_LENENC: u32 = 1 << 21;
    /// CLIENT_DEPRECATE_EOF.
    pub const DEPRECATE_EOF: u32 = 1 << 24;
}

/// Reassembles logical packets from a byte stream.
#[derive(Debug, Default)]
pub struct PacketReader {
    buf: BytesMut,
    partial: Option<BytesMut>,
    first_seq: u8,
    next_seq: Option<u8>,
}

impl PacketReader {
    /// Append received bytes.
    pub fn handle_input(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.partial.as_ref().map_or(0, |p| p.len())
    }

    /// Expect the next packet to carry `seq` (after this side sent a packet).
    pub fn expect_seq(&mut self, seq: u8) {
        self.next_seq = Some(seq);
    }

    /// Accept any sequence id for the next packet (a peer starting a new command).
    pub fn allow_any_seq(&mut self) {
        self.next_seq = None;
    }

    /// The next complete logical packet: `(sequence id of its first chunk, payload)`, or
    /// `Ok(None)` when more bytes are needed. Payloads over `max` are refused before they are
    /// buffered whole.
    pub fn next_packet(&mut self, max: usize) -> Result<Option<(u8, Bytes)>, ProtoError> {
        loop {
            if self.buf.len() < 4 {
                return Ok(None);
            }
            let len = usize::from(self.buf[0])
                | usize::from(self.buf[1]) << 8
                | usize::from(self.buf[2]) << 16;
            let seq = self.buf[3];
            let so_far = self.partial.as_ref().map_or(0, |p| p.len());
            if so_far + len > max {
                return Err(ProtoError::PacketTooLarge {
                    size: (so_far + len) as u64,
                    max: max as u64,
                });
            }
            if self.buf.len() < 4 + len {
                return Ok(None);
            }
            if let Some(expected) = self.next_seq {
                if seq != expected {
                    return Err(ProtoError::Protocol {
                        phase: "packet framing",
                        what: format!("sequence id {seq}, expected {expected}"),
                    });
                }
            }
            self.next_seq = Some(seq.wrapping_add(1));
            self.buf.advance(4);
            let chunk = self.buf.split_to(len);
            if len == MAX_CHUNK {
                // More chunks follow.
                match &mut self.partial {
                    Some(p) => p.extend_from_slice(&chunk),
                    None => {
                        self.first_seq = seq;
                        self.partial = Some(chunk);
                    }
                }
                continue;
            }
            return Ok(Some(match self.partial.take() {
                Some(mut p) => {
                    p.extend_from_slice(&chunk);
                    (self.first_seq, p.freeze())
                }
                None => (seq, chunk.freeze()),
            }));
        }
    }
}

/// Append `payload` as one logical packet starting at sequence id `seq`; returns the next
/// sequence id.
pub fn write_packet(out: &mut Vec<u8>, payload: &[u8], seq: u8) -> u8 {
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_CHUNK);
        out.extend_from_slice(&[
            (n & 0xff) as u8,
            (n >> 8 & 0xff) as u8,
            (n >> 16 & 0xff) as u8,
            seq,
        ]);
        out.extend_from_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_CHUNK {
            return seq;
        }
    }
}

/// Append a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Append a length-encoded string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_lenenc_int(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked reader over a packet payload.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    phase: &'static str,
}

impl<'a> Reader<'a> {
    /// Read `buf` in connection phase `phase` (for error messages).
    pub fn new(buf: &'a [u8], phase: &'static str) -> Self {
        Self { buf, phase }
    }

    fn short(&self, what: &str) -> ProtoError {
        ProtoError::Protocol {
            phase: self.phase,
            what: format!("packet too short reading {what}"),
        }
    }

    /// Remaining bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtoError> {
        if self.buf.len() < n {
            return Err(self.short(what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8, ProtoError> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Little-endian u16.
    pub fn u16(&mut self, what: &str) -> Result<u16, ProtoError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Little-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32, ProtoError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// NUL-terminated string (without the NUL); the whole rest when there is no NUL.
    pub fn cstr(&mut self) -> &'a [u8] {
        match self.buf.iter().position(|&b| b == 0) {
            Some(n) => {
                let s = &self.buf[..n];
                self.buf = &self.buf[n + 1..];
                s
            }
            None => self.rest(),
        }
    }

    /// Length-encoded integer; `None` for the NULL marker 0xfb.
    pub fn lenenc_int(&mut self, what: &str) -> Result<Option<u64>, ProtoError> {
        let first = self.u8(what)?;
        Ok(Some(match first {
            0..=250 => u64::from(first),
            0xfb => return Ok(None),
            0xfc => u64::from(self.u16(what)?),
            0xfd => {
                let b = self.bytes(3, what)?;
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16
            }
            0xfe => {
                let b = self.bytes(8, what)?;
                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            0xff => {
                return Err(ProtoError::Protocol {
                    phase: self.phase,
                    what: format!("invalid length prefix 0xff in {what}"),
                });
            }
        }))
    }

    /// Length-encoded string; `None` for NULL.
    pub fn lenenc_bytes(&mut self, what: &str) -> Result<Option<&'a [u8]>, ProtoError> {
        match self.lenenc_int(what)? {
            None => Ok(None),
            Some(n) => {
                let n = usize::try_from(n).map_err(|_| self.short(what))?;
                self.bytes(n, what).map(Some)
            }
        }
    }
}

/// The server's initial handshake (protocol 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Server version string.
    pub server_version: String,
    /// Connection id.
    pub connection_id: u32,
    /// Authentication scramble (salt), 20 bytes for current servers.
    pub scramble: Vec<u8>,
    /// Capability flags (lower 32 bits).
    pub capabilities: u32,
    /// MariaDB extended capabilities (when the server is MariaDB).
    pub mariadb_capabilities: u32,
    /// Default collation.
    pub collation: u8,
    /// Status flags.
    pub status: u16,
    /// Default authentication plugin.
    pub auth_plugin: String,
}

impl Handshake {
    /// Whether the server is MariaDB.
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }
}

/// Parse the initial handshake packet. An ERR packet here (e.g. "Host is blocked") is mapped
/// to a server error.
pub fn parse_handshake(payload: &[u8]) -> Result<Handshake, ProtoError> {
    if payload.first() == Some(&0xff) {
        return Err(parse_err(payload, "handshake"));
    }
    let mut r = Reader::new(payload, "handshake");
    let protocol = r.u8("protocol version")?;
    if protocol != 10 {
        return Err(ProtoError::Protocol {
            phase: "handshake",
            what: format!("protocol version {protocol} (only 10 is supported)"),
        });
    }
    let server_version = String::from_utf8_lossy(r.cstr()).into_owned();
    let connection_id = r.u32("connection id")?;
    let mut scramble = r.bytes(8, "scramble part 1")?.to_vec();
    r.u8("filler")?;
    let caps_low = u32::from(r.u16("capabilities")?);
    let mut hs = Handshake {
        server_version,
        connection_id,
        scramble: Vec::new(),
        capabilities: caps_low,
        mariadb_capabilities: 0,
        collation: 0,
        status: 0,
        auth_plugin: String::new(),
    };
    if r.is_empty() {
        hs.scramble = scramble;
        return Ok(hs);
    }
    hs.collation = r.u8("collation")?;
    hs.status = r.u16("status")?;
    hs.capabilities |= u32::from(r.u16("capabilities (upper)")?) << 16;
    let auth_len = r.u8("auth data length")?;
    let reserved = r.bytes(10, "reserved")?;
    // MariaDB puts its extended capabilities in the last 4 reserved bytes.
    if hs.capabilities & caps::LONG_PASSWORD == 0 {
        hs.mariadb_capabilities =
            u32::from_le_bytes([reserved[6], reserved[7], reserved[8], reserved[9]]);
    }
    if hs.capabilities & caps::SECURE_CONNECTION != 0 {
        let n = (usize::from(auth_len).saturating_sub(8)).max(13);
        let part2 = r.bytes(n.min(r.buf.len()), "scramble part 2")?;
        // The last byte of part 2 is a NUL terminator.
        let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
        scramble.extend_from_slice(part2);
    }
    hs.scramble = scramble;
    if hs.capabilities & caps::PLUGIN_AUTH != 0 {
        hs.auth_plugin = String::from_utf8_lossy(r.cstr()).into_owned();
    }
    Ok(hs)
}

/// Map an ERR packet (first byte 0xff) to [`ProtoError::Server`].
pub fn parse_err(payload: &[u8], phase: &'static str) -> ProtoError {
    let mut r = Reader::new(payload, phase);
    let parsed = (|| -> Result<ProtoError, ProtoError> {
        r.u8("err marker")?;
        let code = r.u16("error code")?;
        let mut sql_state = String::new();
        if r.buf.first() == Some(&b'#') {
            r.u8("state marker")?;
            sql_state = String::from_utf8_lossy(r.bytes(5, "sql state")?).into_owned();
        }
        let message = String::from_utf8_lossy(r.rest()).into_owned();
        Ok(ProtoError::Server {
            code,
            sql_state,
            message,
            phase,
        })
    })();
    parsed.unwrap_or_else(|e| e)
}

/// Whether a payload is an OK packet.
pub fn is_ok(payload: &[u8]) -> bool {
    payload.first() == Some(&0x00)
}

/// Whether a payload is an EOF packet (0xfe with fewer than 9 bytes).
pub fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xfe) && payload.len() < 9
}

/// The connection attributes this client sends.
fn write_attrs(out: &mut Vec<u8>) {
    let mut attrs = Vec::new();
    for (k, v) in [
        ("_client_name", "mysql-event-stream"),
        ("_client_version", env!("CARGO_PKG_VERSION")),
        ("program_name", "mes"),
    ] {
        put_lenenc_bytes(&mut attrs, k.as_bytes());
        put_lenenc_bytes(&mut attrs, v.as_bytes());
    }
    put_lenenc_bytes(out, &attrs);
}

/// utf8mb4_general_ci: understood by every MySQL ≥ 5.5 and MariaDB.
pub const CLIENT_COLLATION: u8 = 45;
/// Max packet size announced to the server.
pub const CLIENT_MAX_PACKET: u32 = 1 << 30;

/// Append the SSLRequest payload.
pub fn ssl_request(out: &mut Vec<u8>, capabilities: u32) {
    out.extend_from_slice(&capabilities.to_le_bytes());
    out.extend_from_slice(&CLIENT_MAX_PACKET.to_le_bytes());
    out.push(CLIENT_COLLATION);
    out.extend_from_slice(&[0u8; 23]);
}

/// Append a HandshakeResponse41 payload.
pub fn handshake_response(
    out: &mut Vec<u8>,
    capabilities: u32,
    user: &str,
    auth_response: &[u8],
    database: &str,
    auth_plugin: &str,
) {
    ssl_request(out, capabilities);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    if capabilities & caps::PLUGIN_AUTH_LENENC != 0 {
        put_lenenc_bytes(out, auth_response);
    } else {
        out.push(auth_response.len().min(255) as u8);
        out.extend_from_slice(&auth_response[..auth_response.len().min(255)]);
    }
    if capabilities & caps::CONNECT_WITH_DB != 0 {
        out.extend_from_slice(database.as_bytes());
        out.push(0);
    }
    if capabilities & caps::PLUGIN_AUTH != 0 {
        out.extend_from_slice(auth_plugin.as_bytes());
        out.push(0);
    }
    if capabilities & caps::CONNECT_ATTRS != 0 {
        write_attrs(out);
    }
}

/// COM_QUERY.
pub fn com_query(out: &mut Vec<u8>, sql: &str) {
    out.push(0x03);
    out.extend_from_slice(sql.as_bytes());
}

/// COM_REGISTER_SLAVE (announces this replica; hostname/user/password left empty).
pub fn com_register_slave(out: &mut Vec<u8>, server_id: u32) {
    out.push(0x15);
    out.extend_from_slice(&server_id.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0]); // hostname, user, password: empty
    out.extend_from_slice(&0u16.to_le_bytes()); // port
    out.extend_from_slice(&0u32.to_le_bytes()); // replication rank
    out.extend_from_slice(&0u32.to_le_bytes()); // master id
}

/// COM_BINLOG_DUMP flag: end with EOF at the end of the binlog instead of waiting.
pub const BINLOG_DUMP_NON_BLOCK: u16 = 1;
/// COM_BINLOG_DUMP_GTID flag: the data block (GTID set) follows.
pub const BINLOG_THROUGH_GTID: u16 = 4;

/// COM_BINLOG_DUMP (file + position; positions ≥ 4 GiB cannot be expressed).
pub fn com_binlog_dump(out: &mut Vec<u8>, position: u32, flags: u16, server_id: u32, file: &str) {
    out.push(0x12);
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&server_id.to_le_bytes());
    out.extend_from_slice(file.as_bytes());
}

/// COM_BINLOG_DUMP_GTID with an encoded GTID set (see [`encode_gtid_set`]).
pub fn com_binlog_dump_gtid(
    out: &mut Vec<u8>,
    flags: u16,
    server_id: u32,
    file: &str,
    position: u64,
    gtid_set: &[u8],
) {
    out.push(0x1e);
    out.extend_from_slice(&(flags | BINLOG_THROUGH_GTID).to_le_bytes());
    out.extend_from_slice(&server_id.to_le_bytes());
    out.extend_from_slice(&(file.len() as u32).to_le_bytes());
    out.extend_from_slice(file.as_bytes());
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&(gtid_set.len() as u32).to_le_bytes());
    out.extend_from_slice(gtid_set);
}

fn put_varlen(out: &mut Vec<u8>, v: u64) {
    // MySQL serialization varlen: the count of trailing one bits of the first byte is the
    // count of extra bytes; the value is stored shifted above them.
    let bits = 64 - v.leading_zeros() as usize;
    let extra = if bits <= 7 { 0 } else { (bits - 7).div_ceil(7) }.min(8);
    if extra >= 8 {
        out.push(0xff);
        out.extend_from_slice(&v.to_le_bytes());
        return;
    }
    let encoded = (v << (extra + 1)) | ((1u64 << extra) - 1);
    out.extend_from_slice(&encoded.to_le_bytes()[..=extra]);
}

/// Encode a MySQL GTID set as COM_BINLOG_DUMP_GTID expects: the classic layout (8-byte sid
/// count, then per sid its uuid, interval count and `[start, end)` pairs), or the tagged layout
/// of 8.3+ (format byte 1 in bytes 0 and 7 of the count, a varlen tag per entry) when any entry
/// has a tag.
pub fn encode_gtid_set(out: &mut Vec<u8>, set: &mysql_binlog_codec::engine::MysqlGtidSet) {
    let entries = set.entries();
    let tagged = entries.iter().any(|(_, tag, _)| !tag.is_empty());
    let n = entries.len() as u64;
    if tagged {
        out.extend_from_slice(&(1u64 | (n << 8) | (1u64 << 56)).to_le_bytes());
    } else {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for (uuid, tag, intervals) in entries {
        out.extend_from_slice(&uuid.0);
        if tagged {
            put_varlen(out, tag.len() as u64);
            out.extend_from_slice(tag.as_bytes());
        }
        out.extend_from_slice(&(intervals.len() as u64).to_le_bytes());
        for (s, e) in intervals {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&e.to_le_bytes());
        }
    }
}

/// A text-protocol result set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows; `None` = SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// Value of `column` in the first row.
    pub fn first(&self, column: &str) -> Option<&str> {
        let i = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))?;
        self.rows.first()?.get(i)?.as_deref()
    }
}

/// Incremental reader of a COM_QUERY response (OK, ERR, or a text result set).
#[derive(Debug, Default)]
pub struct QueryResponse {
    columns_expected: Option<usize>,
    columns_done: bool,
    eof_after_columns_seen: bool,
    set: ResultSet,
}

impl QueryResponse {
    /// Feed one response packet; returns the finished result (empty for OK) when complete.
    pub fn handle_packet(
        &mut self,
        payload: &[u8],
        deprecate_eof: bool,
    ) -> Result<Option<ResultSet>, ProtoError> {
        const PHASE: &str = "query";
        match self.columns_expected {
            None => {
                if payload.first() == Some(&0xff) {
                    return Err(parse_err(payload, PHASE));
                }
                if is_ok(payload) {
                    return Ok(Some(ResultSet::default()));
                }
                let n = Reader::new(payload, PHASE)
                    .lenenc_int("column count")?
                    .ok_or_else(|| ProtoError::Protocol {
                        phase: PHASE,
                        what: "NULL column count".into(),
                    })?;
                self.columns_expected = Some(usize::try_from(n).unwrap_or(usize::MAX).min(4096));
                Ok(None)
            }
            Some(n) if !self.columns_done => {
                let mut r = Reader::new(payload, PHASE);
                for what in ["catalog", "schema", "table", "org_table"] {
                    r.lenenc_bytes(what)?;
                }
                let name = r.lenenc_bytes("column name")?.unwrap_or_default();
                self.set
                    .columns
                    .push(String::from_utf8_lossy(name).into_owned());
                if self.set.columns.len() == n {
                    self.columns_done = true;
                    self.eof_after_columns_seen = deprecate_eof;
                }
                Ok(None)
            }
            Some(_) => {
                if !self.eof_after_columns_seen {
                    if !is_eof(payload) {
                        return Err(ProtoError::Protocol {
                            phase: PHASE,
                            what: "missing EOF after column definitions".into(),
                        });
                    }
                    self.eof_after_columns_seen = true;
                    return Ok(None);
                }
                if payload.first() == Some(&0xff) {
                    return Err(parse_err(payload, PHASE));
                }
                if payload.first() == Some(&0xfe) && payload.len() < 0xff_ffff {
                    // EOF, or OK with the 0xfe header under CLIENT_DEPRECATE_EOF.
                    return Ok(Some(std::mem::take(&mut self.set)));
                }
                let mut r = Reader::new(payload, PHASE);
                let mut row = Vec::with_capacity(self.set.columns.len());
                for _ in 0..self.set.columns.len() {
                    row.push(
                        r.lenenc_bytes("row value")?
                            .map(|v| String::from_utf8_lossy(v).into_owned()),
                    );
                }
                self.set.rows.push(row);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_splits_large_payloads() {
        for size in [
            0usize,
            1,
            100,
            MAX_CHUNK - 1,
            MAX_CHUNK,
            MAX_CHUNK + 1,
            2 * MAX_CHUNK + 5,
        ] {
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut wire = Vec::new();
            let next = write_packet(&mut wire, &payload, 3);
            let chunks = size / MAX_CHUNK + 1;
            assert_eq!(next, 3 + chunks as u8);
            let mut r = PacketReader::default();
            // Feed in awkward pieces.
            for piece in wire.chunks(65_521) {
                r.handle_input(piece);
            }
            let (seq, got) = r.next_packet(usize::MAX).unwrap().unwrap();
            assert_eq!(seq, 3);
            assert_eq!(got.len(), payload.len());
            assert!(got[..] == payload[..]);
            assert!(r.next_packet(usize::MAX).unwrap().is_none());
        }
    }

    /// Payloads of `sizes` framed one after another from sequence id 0: the wire and what
    /// must come out, `(sequence id, payload)` each.
    fn packets(sizes: &[usize]) -> (Vec<u8>, Vec<(u8, Vec<u8>)>) {
        let (mut wire, mut want, mut seq) = (Vec::new(), Vec::new(), 0u8);
        for (k, &n) in sizes.iter().enumerate() {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7 + k) as u8).collect();
            want.push((seq, payload.clone()));
            seq = write_packet(&mut wire, &payload, seq);
        }
        (wire, want)
    }

    fn read_in_pieces(wire: &[u8], piece: usize) -> Vec<(u8, Vec<u8>)> {
        let mut r = PacketReader::default();
        r.expect_seq(0);
        let mut got = Vec::new();
        for chunk in wire.chunks(piece) {
            r.handle_input(chunk);
            while let Some((seq, payload)) = r.next_packet(usize::MAX).unwrap() {
                got.push((seq, payload.to_vec()));
            }
        }
        assert_eq!(r.buffered(), 0);
        got
    }

    #[test]
    fn packets_come_out_the_same_however_the_input_is_cut() {
        let (wire, want) = packets(&[0, 1, 5, 300, 70_000, 8_000, 2, 65_536, 17, 4, 0, 9]);
        for piece in [1, 3, 4, 5, 7, 1000, 8_192, 65_536, 100_000, wire.len()] {
            assert!(read_in_pieces(&wire, piece) == want, "pieces of {piece}");
        }
        let (wire, want) = packets(&[10, MAX_CHUNK + 3, 20, MAX_CHUNK, 30]);
        for piece in [65_536, 1 << 20, wire.len()] {
            assert!(read_in_pieces(&wire, piece) == want, "pieces of {piece}");
        }
    }

    #[test]
    fn whole_packets_in_one_input_are_still_checked() {
        let mut wire = Vec::new();
        write_packet(&mut wire, &[7u8; 2000], 0);
        let mut r = PacketReader::default();
        r.handle_input(&wire);
        assert!(matches!(
            r.next_packet(1000),
            Err(ProtoError::PacketTooLarge { size: 2000, .. })
        ));
        let mut r = PacketReader::default();
        r.expect_seq(1);
        r.handle_input(&wire);
        assert!(matches!(
            r.next_packet(usize::MAX),
            Err(ProtoError::Protocol { .. })
        ));
        // A sequence id expected after both packets arrived applies to the second.
        let mut two = Vec::new();
        write_packet(&mut two, b"a", 4);
        write_packet(&mut two, b"b", 0);
        let mut r = PacketReader::default();
        r.handle_input(&two);
        assert_eq!(r.next_packet(10).unwrap().unwrap().0, 4);
        r.expect_seq(0);
        assert_eq!(
            r.next_packet(10).unwrap().unwrap(),
            (0, Bytes::from_static(b"b"))
        );
    }

    #[test]
    fn oversized_packets_are_refused_before_buffering() {
        let mut r = PacketReader::default();
        r.handle_input(&[0xff, 0xff, 0xff, 0]);
        assert!(matches!(
            r.next_packet(1000),
            Err(ProtoError::PacketTooLarge { .. })
        ));
    }

    #[test]
    fn sequence_ids_are_checked() {
        let mut r = PacketReader::default();
        r.expect_seq(1);
        r.handle_input(&[1, 0, 0, 2, 0]);
        assert!(matches!(
            r.next_packet(100),
            Err(ProtoError::Protocol { .. })
        ));
    }

    #[test]
    fn varlen_matches_the_decoder() {
        for (v, enc) in [
            (5u64, vec![0x0a]),
            (0x89, vec![0x25, 0x02]),
            (90600, vec![0x43, 0x0f, 0x0b]),
        ] {
            let mut out = Vec::new();
            put_varlen(&mut out, v);
            assert_eq!(out, enc, "{v}");
        }
    }

    #[test]
    fn result_set_with_and_without_eof() {
        let col = |name: &str| {
            let mut c = Vec::new();
            for s in ["def", "", "", ""] {
                put_lenenc_bytes(&mut c, s.as_bytes());
            }
            put_lenenc_bytes(&mut c, name.as_bytes());
            put_lenenc_bytes(&mut c, b"");
            c.extend_from_slice(&[0x0c, 0x21, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
            c
        };
        let mut row = Vec::new();
        put_lenenc_bytes(&mut row, b"ON");
        row.push(0xfb);
        for deprecate in [false, true] {
            let mut q = QueryResponse::default();
            assert!(q.handle_packet(&[2], deprecate).unwrap().is_none());
            assert!(q.handle_packet(&col("a"), deprecate).unwrap().is_none());
            assert!(q.handle_packet(&col("b"), deprecate).unwrap().is_none());
            if !deprecate {
                assert!(
                    q.handle_packet(&[0xfe, 0, 0, 2, 0], deprecate)
                        .unwrap()
                        .is_none()
                );
            }
            assert!(q.handle_packet(&row, deprecate).unwrap().is_none());
            let rs = q
                .handle_packet(&[0xfe, 0, 0, 2, 0], deprecate)
                .unwrap()
                .unwrap();
            assert_eq!(rs.columns, ["a", "b"]);
            assert_eq!(rs.rows, [vec![Some("ON".to_owned()), None]]);
            assert_eq!(rs.first("A"), Some("ON"));
        }
        let err = [
            0xff, 0x28, 0x04, b'#', b'4', b'2', b'0', b'0', b'0', b'b', b'a', b'd',
        ];
        match QueryResponse::default().handle_packet(&err, true) {
            Err(ProtoError::Server {
                code: 1064,
                sql_state,
                message,
                ..
            }) => {
                assert_eq!(sql_state, "42000");
                assert_eq!(message, "bad");
            }
            other => panic!("{other:?}"),
        }
    }
}
