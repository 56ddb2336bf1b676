//! Server-side packet framing: the stream (plain TCP or rustls over TCP), 4-byte packet
//! headers with sequence ids, the 0xFFFFFF split rule, and the generic OK / ERR / EOF packets.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// Largest payload one physical packet carries; a longer payload continues in the next one.
pub(crate) const MAX_CHUNK: usize = 0xFF_FFFF;

/// Refuse client payloads larger than this (the server's `max_allowed_packet` stand-in).
const MAX_CLIENT_PAYLOAD: usize = 64 << 20;

/// `SERVER_STATUS_AUTOCOMMIT`.
pub(crate) const STATUS_AUTOCOMMIT: u16 = 0x0002;

/// Message of the `io::Error` raised when an injected fault cuts the connection.
pub(crate) const FAULT_DISCONNECT: &str = "mes-testkit: injected disconnect";

/// The byte stream of one connection.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Packet reader/writer with sequence-id tracking and an optional write budget (the
/// "disconnect after N bytes" fault).
pub(crate) struct PacketIo {
    stream: Option<Stream>,
    /// Raw socket handle, kept for shutdown and peeking while the stream may be TLS.
    tcp: TcpStream,
    seq: u8,
    /// Bytes that may still be written before the injected disconnect; `None` = unlimited.
    budget: Option<u64>,
    /// Bytes written since the last [`PacketIo::reset_written`].
    written: u64,
}

impl PacketIo {
    pub(crate) fn new(tcp: TcpStream) -> io::Result<Self> {
        let raw = tcp.try_clone()?;
        Ok(Self {
            stream: Some(Stream::Plain(tcp)),
            tcp: raw,
            seq: 0,
            budget: None,
            written: 0,
        })
    }

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stream closed"))
    }

    /// The underlying socket (for peeking and shutdown).
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    /// Wrap the socket in TLS and run the server side of the handshake.
    pub(crate) fn upgrade_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err(io::Error::other("TLS requested twice"));
        };
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }

    /// Start a new command: the next packet read must carry sequence id 0.
    pub(crate) fn reset_seq(&mut self) {
        self.seq = 0;
    }

    pub(crate) fn set_budget(&mut self, budget: Option<u64>) {
        self.budget = budget;
    }

    pub(crate) fn reset_written(&mut self) {
        self.written = 0;
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Read one logical packet (joining 0xFFFFFF-sized chunks).
    pub(crate) fn read_packet(&mut self) -> io::Result<Vec<u8>> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            self.stream()?.read_exact(&mut header)?;
            let len =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            if header[3] != self.seq {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "packets out of order: got sequence id {}, expected {}",
                        header[3], self.seq
                    ),
                ));
            }
            self.seq = self.seq.wrapping_add(1);
            if payload.len() + len > MAX_CLIENT_PAYLOAD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "client packet larger than the test server accepts",
                ));
            }
            let start = payload.len();
            payload.resize(start + len, 0);
            self.stream()?.read_exact(&mut payload[start..])?;
            if len < MAX_CHUNK {
                return Ok(payload);
            }
        }
    }

    /// Write one logical packet, split per the 0xFFFFFF rule (a payload that is an exact
    /// multiple of 0xFFFFFF ends with an empty packet).
    pub(crate) fn write_packet(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_CHUNK);
            let (chunk, tail) = rest.split_at(n);
            let mut buf = Vec::with_capacity(4 + n);
            buf.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            buf.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            buf.extend_from_slice(chunk);
            self.write_raw(&buf)?;
            rest = tail;
            if n < MAX_CHUNK {
                break;
            }
        }
        self.stream()?.flush()
    }

    /// Write bytes, honouring the budget: when it runs out mid-write, the part that fits is
    /// sent, the socket is shut down and an error is returned.
    fn write_raw(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(budget) = self.budget {
            if (buf.len() as u64) > budget {
                let part = &buf[..budget as usize];
                let stream = self.stream()?;
                stream.write_all(part)?;
                stream.flush()?;
                self.written += part.len() as u64;
                self.budget = Some(0);
                self.shutdown();
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    FAULT_DISCONNECT,
                ));
            }
            self.budget = Some(budget - buf.len() as u64);
        }
        self.stream()?.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }

    /// Close the socket in both directions (no TLS close_notify: an abrupt disconnect).
    pub(crate) fn shutdown(&mut self) {
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
        self.stream = None;
    }

    /// Send an OK packet (header 0x00).
    pub(crate) fn write_ok(&mut self, status: u16) -> io::Result<()> {
        self.write_packet(&ok_payload(0x00, status))
    }

    /// Send an ERR packet.
    pub(crate) fn write_err(&mut self, code: u16, state: &str, msg: &str) -> io::Result<()> {
        self.write_packet(&err_payload(code, state, msg))
    }

    /// End of a result set / dump: a classic EOF packet, or an OK packet with header 0xFE
    /// when the client negotiated `CLIENT_DEPRECATE_EOF`.
    pub(crate) fn write_eof(&mut self, deprecate_eof: bool, status: u16) -> io::Result<()> {
        if deprecate_eof {
            self.write_packet(&ok_payload(0xFE, status))
        } else {
            self.write_packet(&eof_payload(status))
        }
    }
}

/// OK packet payload: header, affected rows 0, last insert id 0, status, warnings 0.
pub(crate) fn ok_payload(header: u8, status: u16) -> Vec<u8> {
    let mut out = vec![header, 0, 0];
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// ERR packet payload (protocol 4.1 form with SQL state).
pub(crate) fn err_payload(code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut out = vec![0xFF];
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    let mut st = state.as_bytes().to_vec();
    st.resize(5, b'0');
    out.extend_from_slice(&st);
    out.extend_from_slice(msg.as_bytes());
    out
}

/// Classic EOF packet payload: 0xFE, warnings, status.
pub(crate) fn eof_payload(status: u16) -> Vec<u8> {
    let mut out = vec![0xFE];
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&status.to_le_bytes());
    out
}

/// Append a length-encoded integer.
pub(crate) fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xFC);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 1 << 24 {
        out.push(0xFD);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xFE);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Append a length-encoded string.
pub(crate) fn put_lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    put_lenenc_int(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A bounds-checked reader over a client packet; every accessor returns `None` when the
/// packet is too short, so malformed input never panics.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }

    /// The rest of the packet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    /// A NUL-terminated string (the NUL is consumed); a missing NUL takes the rest.
    pub(crate) fn nul_str(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                self.pos += i + 1;
                &rest[..i]
            }
            None => self.rest(),
        }
    }

    pub(crate) fn lenenc_int(&mut self) -> Option<u64> {
        match self.u8()? {
            v @ 0..=250 => Some(u64::from(v)),
            0xFC => self.u16().map(u64::from),
            0xFD => {
                let b = self.bytes(3)?;
                Some(u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16)
            }
            0xFE => self.u64(),
            _ => None,
        }
    }

    pub(crate) fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc_int()?).ok()?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_roundtrip() {
        for v in [
            0u64,
            250,
            251,
            65535,
            65536,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, v);
            assert_eq!(Reader::new(&out).lenenc_int(), Some(v));
        }
        assert_eq!(Reader::new(&[0xFF]).lenenc_int(), None);
        assert_eq!(Reader::new(&[0xFC, 1]).lenenc_int(), None);
    }

    #[test]
    fn err_packet_layout() {
        let p = err_payload(1045, "28000", "Access denied");
        assert_eq!(
            &p[..9],
            &[0xFF, 0x15, 0x04, b'#', b'2', b'8', b'0', b'0', b'0']
        );
    }
}
