//! MySQL GTID sets: text form (`uuid:1-5:tag:1-3,uuid2:7`), the binary encoding of
//! PREVIOUS_GTIDS and COM_BINLOG_DUMP_GTID (classic and 8.3+ tagged), and MySQL's
//! serialization-framework variable-length integers.
//!
//! This is an independent implementation (it does not use the decoder under test).

use std::collections::BTreeMap;
use std::fmt;

/// A 16-byte server UUID.
pub type Uuid = [u8; 16];

/// Parse the canonical text form of a UUID (hyphens optional).
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Format a UUID in the canonical 8-4-4-4-12 text form.
pub fn format_uuid(u: &Uuid) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A set of GTIDs: per (source uuid, tag) a sorted list of disjoint half-open intervals
/// `[start, end)`. Tags are stored lowercase (MySQL compares them case-insensitively);
/// the empty tag means untagged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    sets: BTreeMap<(Uuid, String), Vec<(u64, u64)>>,
}

impl GtidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds no GTID.
    pub fn is_empty(&self) -> bool {
        self.sets.values().all(|v| v.is_empty())
    }

    /// Parse MySQL's text form, e.g. `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:mytag:1-3`.
    /// Whitespace and newlines are ignored; the empty string is the empty set.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = Self::new();
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for entry in cleaned.split(',').filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':');
            let uuid_text = parts.next().unwrap_or_default();
            let uuid = parse_uuid(uuid_text).ok_or_else(|| format!("bad uuid {uuid_text:?}"))?;
            let mut tag = String::new();
            for part in parts {
                if part.starts_with(|c: char| c.is_ascii_digit()) {
                    let (a, b) = match part.split_once('-') {
                        Some((a, b)) => (a, b),
                        None => (part, part),
                    };
                    let start: u64 = a.parse().map_err(|_| format!("bad interval {part:?}"))?;
                    let last: u64 = b.parse().map_err(|_| format!("bad interval {part:?}"))?;
                    if start == 0 || last < start || last == u64::MAX {
                        return Err(format!("bad interval {part:?}"));
                    }
                    set.add_interval(uuid, &tag, start, last + 1);
                } else {
                    if !valid_tag(part) {
                        return Err(format!("bad tag {part:?}"));
                    }
                    tag = part.to_ascii_lowercase();
                }
            }
        }
        Ok(set)
    }

    /// Add one GTID.
    pub fn add(&mut self, uuid: Uuid, tag: &str, gno: u64) {
        self.add_interval(uuid, tag, gno, gno.saturating_add(1));
    }

    /// Add the half-open interval `[start, end)`.
    pub fn add_interval(&mut self, uuid: Uuid, tag: &str, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let list = self
            .sets
            .entry((uuid, tag.to_ascii_lowercase()))
            .or_default();
        list.push((start, end));
        list.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(list.len());
        for &(s, e) in list.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *list = merged;
    }

    /// Add every GTID of `other`.
    pub fn union_with(&mut self, other: &GtidSet) {
        for ((uuid, tag), list) in &other.sets {
            for &(s, e) in list {
                self.add_interval(*uuid, tag, s, e);
            }
        }
    }

    /// Whether the set contains `uuid[:tag]:gno`.
    pub fn contains(&self, uuid: &Uuid, tag: &str, gno: u64) -> bool {
        self.sets
            .get(&(*uuid, tag.to_ascii_lowercase()))
            .is_some_and(|list| list.iter().any(|&(s, e)| s <= gno && gno < e))
    }

    /// Whether every GTID of `self` is in `other`.
    pub fn is_subset_of(&self, other: &GtidSet) -> bool {
        self.subtract(other).is_empty()
    }

    /// The GTIDs of `self` that are not in `other`.
    pub fn subtract(&self, other: &GtidSet) -> GtidSet {
        let mut out = GtidSet::new();
        for (key, list) in &self.sets {
            let empty = Vec::new();
            let minus = other.sets.get(key).unwrap_or(&empty);
            for &(s, e) in list {
                let mut cur = s;
                for &(ms, me) in minus {
                    if me <= cur || ms >= e {
                        continue;
                    }
                    if ms > cur {
                        out.add_interval(key.0, &key.1, cur, ms);
                    }
                    cur = cur.max(me);
                }
                if cur < e {
                    out.add_interval(key.0, &key.1, cur, e);
                }
            }
        }
        out
    }

    /// Entries as `(uuid, tag, intervals)` in MySQL's order (uuid, then tag; untagged first).
    pub fn entries(&self) -> impl Iterator<Item = (&Uuid, &str, &[(u64, u64)])> {
        self.sets
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|((u, t), l)| (u, t.as_str(), l.as_slice()))
    }

    /// Binary encoding: the tagged format (8.3+) when any entry has a tag, else the classic one.
    pub fn encode(&self) -> Vec<u8> {
        let tagged = self.entries().any(|(_, t, _)| !t.is_empty());
        self.encode_as(tagged)
    }

    /// Binary encoding in the chosen format. The classic format cannot carry tags: tagged
    /// entries are left out of it.
    pub fn encode_as(&self, tagged: bool) -> Vec<u8> {
        let entries: Vec<_> = self
            .entries()
            .filter(|(_, t, _)| tagged || t.is_empty())
            .collect();
        let n = entries.len() as u64;
        let mut out = Vec::new();
        if tagged {
            // Byte 0 and byte 7 carry the format (1); bytes 1..=6 the count.
            out.extend_from_slice(&(1 | (n << 8) | (1 << 56)).to_le_bytes());
        } else {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for (uuid, tag, list) in entries {
            out.extend_from_slice(uuid);
            if tagged {
                put_varlen(&mut out, tag.len() as u64);
                out.extend_from_slice(tag.as_bytes());
            }
            out.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for &(s, e) in list {
                out.extend_from_slice(&s.to_le_bytes());
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
        out
    }

    /// Decode the binary encoding (either format). Trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut c = bytes;
        let head = take_u64(&mut c).ok_or("gtid set: short header")?;
        let tagged = head & 0xFF == 1 && head >> 56 == 1;
        let n = if tagged {
            (head >> 8) & 0xFFFF_FFFF_FFFF
        } else {
            head
        };
        let mut set = GtidSet::new();
        for _ in 0..n {
            let uuid_bytes = take(&mut c, 16).ok_or("gtid set: short uuid")?;
            let mut uuid = [0u8; 16];
            uuid.copy_from_slice(uuid_bytes);
            let tag = if tagged {
                let len = get_varlen(&mut c).ok_or("gtid set: bad tag length")?;
                let len = usize::try_from(len).map_err(|_| "gtid set: bad tag length")?;
                let raw = take(&mut c, len).ok_or("gtid set: short tag")?;
                String::from_utf8(raw.to_vec()).map_err(|_| "gtid set: tag not UTF-8")?
            } else {
                String::new()
            };
            let count = take_u64(&mut c).ok_or("gtid set: short interval count")?;
            if count > (c.len() / 16) as u64 {
                return Err("gtid set: interval count exceeds the data".into());
            }
            // An entry with no intervals still names its uuid; keep it as an empty list.
            set.sets
                .entry((uuid, tag.to_ascii_lowercase()))
                .or_default();
            for _ in 0..count {
                let s = take_u64(&mut c).ok_or("gtid set: short interval")?;
                let e = take_u64(&mut c).ok_or("gtid set: short interval")?;
                if s == 0 || e <= s {
                    return Err(format!("gtid set: bad interval [{s}, {e})"));
                }
                set.add_interval(uuid, &tag, s, e);
            }
        }
        if !c.is_empty() {
            return Err(format!("gtid set: {} trailing bytes", c.len()));
        }
        Ok(set)
    }
}

impl fmt::Display for GtidSet {
    /// MySQL's text form: `uuid:1-5:7:tag:1-3,uuid2:1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prev: Option<&Uuid> = None;
        for (uuid, tag, list) in self.entries() {
            if prev != Some(uuid) {
                if prev.is_some() {
                    f.write_str(",")?;
                }
                f.write_str(&format_uuid(uuid))?;
            }
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for &(s, e) in list {
                if e - 1 == s {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{}-{}", s, e - 1)?;
                }
            }
            prev = Some(uuid);
        }
        Ok(())
    }
}

/// MySQL's tag syntax: `[a-z_][a-z0-9_]{0,31}`, case-insensitive.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn take<'a>(c: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if c.len() < n {
        return None;
    }
    let (head, tail) = c.split_at(n);
    *c = tail;
    Some(head)
}

fn take_u64(c: &mut &[u8]) -> Option<u64> {
    let b = take(c, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// Append MySQL's serialization-framework variable-length unsigned integer: the count of
/// trailing one bits in the first byte is the count of extra bytes, and the value is stored
/// little-endian above those marker bits (9 bytes: `0xFF` then the plain u64).
pub fn put_varlen(out: &mut Vec<u8>, v: u64) {
    let bits = 64 - v.leading_zeros() as usize;
    // n bytes carry 7 * n value bits (n = 1..=8).
    let extra = if bits <= 7 { 0 } else { (bits - 1) / 7 };
    if extra >= 8 {
        out.push(0xFF);
        out.extend_from_slice(&v.to_le_bytes());
        return;
    }
    let encoded = (v << (extra + 1)) | ((1u64 << extra) - 1);
    out.extend_from_slice(&encoded.to_le_bytes()[..=extra]);
}

/// Read a serialization-framework variable-length unsigned integer (see [`put_varlen`]).
pub fn get_varlen(c: &mut &[u8]) -> Option<u64> {
    let first = *c.first()?;
    let extra = first.trailing_ones() as usize;
    if extra == 8 {
        take(c, 1)?;
        return take_u64(c);
    }
    let bytes = take(c, extra + 1)?;
    let mut all = [0u8; 8];
    all[..=extra].copy_from_slice(bytes);
    Some(u64::from_le_bytes(all) >> (extra + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn text_roundtrip_and_order() {
        let s = GtidSet::parse(&format!("{U}:7:1-5:MyTag:1-3,{U}:6")).expect("parse");
        assert_eq!(s.to_string(), format!("{U}:1-7:mytag:1-3"));
        assert!(s.contains(&parse_uuid(U).expect("uuid"), "MYTAG", 2));
        assert!(!s.contains(&parse_uuid(U).expect("uuid"), "", 8));
        assert!(GtidSet::parse("").expect("empty").is_empty());
        assert!(GtidSet::parse("nonsense:1").is_err());
        assert!(GtidSet::parse(&format!("{U}:0")).is_err());
    }

    #[test]
    fn binary_roundtrip() {
        let s = GtidSet::parse(&format!("{U}:1-5:9:t1:3")).expect("parse");
        let enc = s.encode();
        assert_eq!(enc[0], 1);
        assert_eq!(enc[7], 1);
        assert_eq!(GtidSet::decode(&enc).expect("decode"), s);
        let classic = GtidSet::parse(&format!("{U}:1-5")).expect("parse");
        let enc = classic.encode();
        assert_eq!(&enc[..8], &1u64.to_le_bytes());
        assert_eq!(GtidSet::decode(&enc).expect("decode"), classic);
        assert!(GtidSet::decode(&enc[..enc.len() - 1]).is_err());
    }

    #[test]
    fn varlen_roundtrip() {
        for v in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            1 << 40,
            (1 << 56) - 1,
            1 << 56,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varlen(&mut out, v);
            let mut c = out.as_slice();
            assert_eq!(get_varlen(&mut c), Some(v), "value {v}");
            assert!(c.is_empty());
        }
    }

    #[test]
    fn subtract_and_subset() {
        let a = GtidSet::parse(&format!("{U}:1-10")).expect("parse");
        let b = GtidSet::parse(&format!("{U}:3-4:8")).expect("parse");
        assert_eq!(a.subtract(&b).to_string(), format!("{U}:1-2:5-7:9-10"));
        assert!(b.is_subset_of(&a));
        assert!(!a.is_subset_of(&b));
    }
}
