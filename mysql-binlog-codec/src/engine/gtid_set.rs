//! Executed-GTID bookkeeping for checkpoints: a MySQL GTID set (`uuid[:tag]:intervals`, merged
//! intervals, tags sorted) or a MariaDB GTID position (`domain-server-seq` per domain).

use std::collections::BTreeMap;
use std::fmt;

use crate::gtid::{GnoInterval, GtidSet, MariaGtid, Uuid};

/// One source of a GTID set: uuid, tag (empty = untagged), half-open intervals.
pub type GtidSetEntry = (Uuid, String, Vec<(u64, u64)>);

/// A MySQL GTID set that can grow one GTID at a time; kept as sorted, merged, half-open
/// intervals per (uuid, tag).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MysqlGtidSet {
    sets: BTreeMap<(Uuid, String), Vec<(u64, u64)>>,
}

impl MysqlGtidSet {
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Add one transaction.
    pub fn add(&mut self, uuid: Uuid, tag: &str, gno: u64) {
        self.add_interval(uuid, tag, gno, gno.saturating_add(1));
    }

    /// Add `[start, end)`.
    pub fn add_interval(&mut self, uuid: Uuid, tag: &str, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let ivs = self.sets.entry((uuid, tag.to_owned())).or_default();
        // Insert keeping order, then merge neighbours that touch or overlap.
        let pos = ivs.partition_point(|&(s, _)| s < start);
        ivs.insert(pos, (start, end));
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
        for &(s, e) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ivs = merged;
    }

    /// Whether the set contains the transaction.
    pub fn contains(&self, uuid: Uuid, tag: &str, gno: u64) -> bool {
        self.sets
            .get(&(uuid, tag.to_owned()))
            .is_some_and(|ivs| ivs.iter().any(|&(s, e)| s <= gno && gno < e))
    }

    /// Add every GTID of a PREVIOUS_GTIDS set.
    pub fn add_set(&mut self, set: &GtidSet) {
        for entry in &set.sids {
            for &GnoInterval { start, end } in &entry.intervals {
                self.add_interval(entry.uuid, &entry.tag, start, end);
            }
        }
    }

    /// Entries in canonical order: (uuid, tag, half-open intervals).
    pub fn entries(&self) -> Vec<GtidSetEntry> {
        self.sets
            .iter()
            .map(|((u, t), ivs)| (*u, t.clone(), ivs.clone()))
            .collect()
    }

    /// Whether every GTID of `other` is in this set.
    pub fn contains_set(&self, other: &MysqlGtidSet) -> bool {
        other.sets.iter().all(|(key, ivs)| {
            let mine = self.sets.get(key).map(Vec::as_slice).unwrap_or_default();
            ivs.iter()
                .all(|&(s, e)| mine.iter().any(|&(ms, me)| ms <= s && e <= me))
        })
    }

    /// Parse MySQL's text form (`uuid:1-5:7,uuid2:tag:1-3`; whitespace and newlines allowed).
    pub fn parse(text: &str) -> Option<Self> {
        let mut set = Self::default();
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if cleaned.is_empty() {
            return Some(set);
        }
        for part in cleaned.split(',') {
            let mut fields = part.split(':');
            let uuid = Uuid::parse(fields.next()?)?;
            let mut tag = String::new();
            let mut any = false;
            for f in fields {
                if f.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    let (s, e) = match f.split_once('-') {
                        Some((a, b)) => (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?),
                        None => {
                            let v = f.parse::<u64>().ok()?;
                            (v, v)
                        }
                    };
                    if s == 0 || e < s {
                        return None;
                    }
                    set.add_interval(uuid, &tag, s, e.checked_add(1)?);
                    any = true;
                } else {
                    let valid = !f.is_empty()
                        && f.len() <= 32
                        && f.chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return None;
                    }
                    tag = f.to_ascii_lowercase();
                }
            }
            if !any {
                return None;
            }
        }
        Some(set)
    }
}

impl fmt::Display for MysqlGtidSet {
    /// MySQL's canonical text: sources in uuid order, untagged intervals first, then each tag.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prev: Option<Uuid> = None;
        for ((uuid, tag), ivs) in &self.sets {
            if prev != Some(*uuid) {
                if prev.is_some() {
                    f.write_str(",")?;
                }
                write!(f, "{uuid}")?;
                prev = Some(*uuid);
            }
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for &(s, e) in ivs {
                if e - s == 1 {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{}", e - 1)?;
                }
            }
        }
        Ok(())
    }
}

/// A MariaDB GTID position: the last GTID per replication domain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MariaGtidPos {
    domains: BTreeMap<u32, MariaGtid>,
}

impl MariaGtidPos {
    /// Whether no domain is known.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Record a GTID as executed (replaces the domain's previous one).
    pub fn add(&mut self, gtid: MariaGtid) {
        self.domains.insert(gtid.domain_id, gtid);
    }

    /// Parse `d-s-n[,d-s-n…]`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut pos = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let g = MariaGtid {
                domain_id: it.next()?.parse().ok()?,
                server_id: it.next()?.parse().ok()?,
                seq_no: it.next()?.parse().ok()?,
            };
            if it.next().is_some() {
                return None;
            }
            pos.add(g);
        }
        Some(pos)
    }
}

impl fmt::Display for MariaGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_sets_merge_and_print() {
        let u = Uuid::parse("55778904-0299-11f1-b1b8-4ef0c4956feb").unwrap();
        let mut s = MysqlGtidSet::default();
        for g in [3, 1, 2, 7, 5, 6] {
            s.add(u, "", g);
        }
        s.add(u, "mytag", 1);
        assert_eq!(
            s.to_string(),
            "55778904-0299-11f1-b1b8-4ef0c4956feb:1-3:5-7:mytag:1"
        );
        assert!(s.contains(u, "", 6) && !s.contains(u, "", 4));
        let p = MysqlGtidSet::parse(&s.to_string()).unwrap();
        assert_eq!(p, s);
        assert!(MysqlGtidSet::parse("nonsense").is_none());
        assert!(MysqlGtidSet::parse("55778904-0299-11f1-b1b8-4ef0c4956feb:0").is_none());
        assert_eq!(MysqlGtidSet::parse("").unwrap(), MysqlGtidSet::default());
        let sub = MysqlGtidSet::parse("55778904-0299-11f1-b1b8-4ef0c4956feb:2-3:6").unwrap();
        assert!(s.contains_set(&sub) && !sub.contains_set(&s));
        assert!(s.contains_set(&MysqlGtidSet::default()));
    }

    #[test]
    fn maria_positions() {
        let mut p = MariaGtidPos::default();
        p.add(MariaGtid {
            domain_id: 1,
            server_id: 2,
            seq_no: 9,
        });
        p.add(MariaGtid {
            domain_id: 0,
            server_id: 1,
            seq_no: 5,
        });
        p.add(MariaGtid {
            domain_id: 0,
            server_id: 1,
            seq_no: 6,
        });
        assert_eq!(p.to_string(), "0-1-6,1-2-9");
        assert_eq!(MariaGtidPos::parse("0-1-6, 1-2-9").unwrap(), p);
        assert!(MariaGtidPos::parse("0-1").is_none());
    }
}
