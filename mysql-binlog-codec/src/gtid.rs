//! GTID value types: MySQL `uuid[:tag]:gno` and intervals, MariaDB `domain-server-seq`.

use std::fmt;

/// A 16-byte MySQL server UUID (source id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Uuid {
    /// Parse the canonical 36-character text form (hyphens optional).
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        let mut n = 0usize;
        let mut hi: Option<u8> = None;
        for ch in s.bytes() {
            if ch == b'-' {
                continue;
            }
            let v = (ch as char).to_digit(16)? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    *out.get_mut(n)? = (h << 4) | v;
                    n += 1;
                }
            }
        }
        (n == 16 && hi.is_none()).then_some(Self(out))
    }
}

/// A half-open interval `[start, end)` of transaction numbers, as stored in PREVIOUS_GTIDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GnoInterval {
    /// First GNO in the interval.
    pub start: u64,
    /// One past the last GNO.
    pub end: u64,
}

/// The GTIDs of one source (uuid + optional tag) in a GTID set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TsidIntervals {
    /// Source UUID.
    pub uuid: Uuid,
    /// Tag (MySQL 8.3+), empty for untagged.
    pub tag: String,
    /// Intervals, as stored.
    pub intervals: Vec<GnoInterval>,
}

/// A MySQL GTID set as carried by PREVIOUS_GTIDS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct GtidSet {
    /// Entries in stored order.
    pub sids: Vec<TsidIntervals>,
}

impl fmt::Display for GtidSet {
    /// MySQL's text form: `uuid:1-13:mytag:1-2,uuid2:5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prev_uuid: Option<Uuid> = None;
        for entry in &self.sids {
            if prev_uuid == Some(entry.uuid) {
                // Same uuid, further tag: MySQL prints `uuid:ranges:tag:ranges`.
            } else {
                if prev_uuid.is_some() {
                    f.write_str(",")?;
                }
                write!(f, "{}", entry.uuid)?;
            }
            if !entry.tag.is_empty() {
                write!(f, ":{}", entry.tag)?;
            }
            for iv in &entry.intervals {
                let last = iv.end.saturating_sub(1);
                if last <= iv.start {
                    write!(f, ":{}", iv.start)?;
                } else {
                    write!(f, ":{}-{}", iv.start, last)?;
                }
            }
            prev_uuid = Some(entry.uuid);
        }
        Ok(())
    }
}

/// A MariaDB GTID `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MariaGtid {
    /// Replication domain id.
    pub domain_id: u32,
    /// Originating server id.
    pub server_id: u32,
    /// Sequence number.
    pub seq_no: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain_id, self.server_id, self.seq_no)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text() {
        let u = Uuid::parse("55778904-0299-11f1-b1b8-4ef0c4956feb").unwrap();
        assert_eq!(u.to_string(), "55778904-0299-11f1-b1b8-4ef0c4956feb");
        assert!(Uuid::parse("55778904").is_none());
        assert!(Uuid::parse("zz778904-0299-11f1-b1b8-4ef0c4956feb").is_none());
    }

    #[test]
    fn set_text() {
        let u = Uuid::parse("55778904-0299-11f1-b1b8-4ef0c4956feb").unwrap();
        let s = GtidSet {
            sids: vec![
                TsidIntervals {
                    uuid: u,
                    tag: String::new(),
                    intervals: vec![GnoInterval { start: 1, end: 14 }],
                },
                TsidIntervals {
                    uuid: u,
                    tag: "mytag".into(),
                    intervals: vec![
                        GnoInterval { start: 1, end: 3 },
                        GnoInterval { start: 5, end: 6 },
                    ],
                },
            ],
        };
        assert_eq!(
            s.to_string(),
            "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2:5"
        );
    }
}
