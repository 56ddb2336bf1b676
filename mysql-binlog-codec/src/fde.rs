//! FORMAT_DESCRIPTION_EVENT: server version, per-type post-header lengths and the checksum
//! algorithm that governs every following event.

use std::borrow::Cow;

use crate::cursor::Cursor;
use crate::error::{DecodeErrorKind, PResult, malformed};
use crate::header::HEADER_LEN;

/// Checksum algorithm announced by a FORMAT_DESCRIPTION_EVENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChecksumAlg {
    /// `binlog_checksum=NONE` (the FDE itself still ends in a CRC32).
    Off,
    /// `binlog_checksum=CRC32`: every event ends in a 4-byte CRC32.
    Crc32,
    /// Pre-5.6.1 server: there is no checksum-algorithm field at all.
    Undefined,
}

/// A decoded FORMAT_DESCRIPTION_EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDescription<'a> {
    /// Binlog format version (4 for every server since 5.0).
    pub binlog_version: u16,
    /// Server version string (NUL padding removed).
    pub server_version: Cow<'a, str>,
    /// Creation timestamp (0 except in the first binlog after startup).
    pub create_timestamp: u32,
    /// Common header length (19 for v4).
    pub header_length: u8,
    /// Post-header length of each event type, indexed by `type_code - 1`.
    pub post_header_lengths: Cow<'a, [u8]>,
    /// Checksum algorithm for the events that follow.
    pub checksum: ChecksumAlg,
}

impl FormatDescription<'_> {
    /// Convert into an owned value.
    pub fn into_owned(self) -> FormatDescription<'static> {
        FormatDescription {
            binlog_version: self.binlog_version,
            server_version: Cow::Owned(self.server_version.into_owned()),
            create_timestamp: self.create_timestamp,
            header_length: self.header_length,
            post_header_lengths: Cow::Owned(self.post_header_lengths.into_owned()),
            checksum: self.checksum,
        }
    }

    /// Post-header length announced for a type code, if the FDE lists it.
    pub fn post_header_len(&self, type_code: u8) -> Option<usize> {
        let idx = usize::from(type_code).checked_sub(1)?;
        self.post_header_lengths.get(idx).map(|&n| usize::from(n))
    }

    /// Whether the server is MariaDB (by its version string).
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }

    /// Parsed `(major, minor, patch)` of the server version; zeros where absent.
    pub fn version_triple(&self) -> (u32, u32, u32) {
        version_triple(self.server_version.as_bytes())
    }

    /// A stand-in description for a stream that has not sent one yet (MySQL 5.6+ layout, CRC32
    /// off). Used only to frame the FDE itself.
    pub fn default_v4() -> FormatDescription<'static> {
        FormatDescription {
            binlog_version: 4,
            server_version: Cow::Borrowed(""),
            create_timestamp: 0,
            header_length: HEADER_LEN as u8,
            post_header_lengths: Cow::Borrowed(&[]),
            checksum: ChecksumAlg::Undefined,
        }
    }
}

fn version_triple(v: &[u8]) -> (u32, u32, u32) {
    let mut parts = [0u32; 3];
    let mut idx = 0;
    let mut seen_digit = false;
    for &b in v {
        if b.is_ascii_digit() {
            parts[idx] = parts[idx]
                .saturating_mul(10)
                .saturating_add(u32::from(b - b'0'));
            seen_digit = true;
        } else if b == b'.' && seen_digit && idx < 2 {
            idx += 1;
            seen_digit = false;
        } else {
            break;
        }
    }
    (parts[0], parts[1], parts[2])
}

/// Whether an FDE written by this server version carries the checksum-algorithm byte.
/// MySQL added it in 5.6.1; MariaDB in 5.3.0.
fn has_checksum_field(server_version: &[u8]) -> bool {
    let (a, b, c) = version_triple(server_version);
    let product = (u64::from(a) * 256 + u64::from(b)) * 256 + u64::from(c);
    let is_maria = server_version.windows(7).any(|w| w == b"MariaDB");
    let split = if is_maria { (5, 3, 0) } else { (5, 6, 1) };
    product >= (split.0 * 256 + split.1) * 256 + split.2
}

/// Parse the body (everything after the common header, including any trailing checksum) of a
/// FORMAT_DESCRIPTION_EVENT. Returns the description and whether the FDE's own last 4 bytes are
/// a CRC32 (true whenever the checksum-algorithm field exists).
pub(crate) fn parse_fde(body: &[u8]) -> PResult<(FormatDescription<'_>, bool)> {
    let mut c = Cursor::new(body);
    let binlog_version = c.u16("FDE binlog version")?;
    if binlog_version != 4 {
        return Err(DecodeErrorKind::UnsupportedFormat {
            what: format!("binlog version {binlog_version} (only v4 is supported)"),
        });
    }
    let raw_version = c.bytes(50, "FDE server version")?;
    let nul = raw_version
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(raw_version.len());
    let version_bytes = &raw_version[..nul];
    let server_version = String::from_utf8_lossy(version_bytes);
    let create_timestamp = c.u32("FDE create timestamp")?;
    let header_length = c.u8("FDE header length")?;
    if usize::from(header_length) != HEADER_LEN {
        return Err(DecodeErrorKind::UnsupportedFormat {
            what: format!("common header length {header_length} (expected 19)"),
        });
    }
    let rest = c.rest();
    let (post_header_lengths, checksum, has_crc) = if has_checksum_field(version_bytes) {
        let n = rest
            .len()
            .checked_sub(5)
            .ok_or(DecodeErrorKind::ShortBody {
                what: "FDE checksum algorithm",
            })?;
        let alg = match rest[n] {
            0 => ChecksumAlg::Off,
            1 => ChecksumAlg::Crc32,
            other => return Err(malformed(format!("FDE checksum algorithm {other}"))),
        };
        (&rest[..n], alg, true)
    } else {
        (rest, ChecksumAlg::Undefined, false)
    };
    Ok((
        FormatDescription {
            binlog_version,
            server_version,
            create_timestamp,
            header_length,
            post_header_lengths: Cow::Borrowed(post_header_lengths),
            checksum,
        },
        has_crc,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_triple(b"8.0.31"), (8, 0, 31));
        assert_eq!(version_triple(b"5.1.37-ndb-6.2.19-debug-log"), (5, 1, 37));
        assert_eq!(
            version_triple(b"10.5.15-MariaDB-1:10.5.15+maria~focal-log"),
            (10, 5, 15)
        );
        assert!(has_checksum_field(b"5.6.1"));
        assert!(!has_checksum_field(b"5.6.0"));
        assert!(!has_checksum_field(b"5.5.27-log"));
        assert!(has_checksum_field(b"5.5.27-MariaDB"));
        assert!(has_checksum_field(b"10.0.15-MariaDB-log"));
    }
}
