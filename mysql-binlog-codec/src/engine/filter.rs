//! Database / table include-exclude filters (the original package's rules): databases match
//! exactly; table entries are `db.table` or a bare `table` (matching the table name in any
//! database); a trailing `*` makes an entry a case-sensitive prefix; exclude wins.

/// One pattern: exact or prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    prefix: bool,
}

impl Pattern {
    fn new(s: &str) -> Self {
        match s.strip_suffix('*') {
            Some(p) => Self {
                text: p.to_owned(),
                prefix: true,
            },
            None => Self {
                text: s.to_owned(),
                prefix: false,
            },
        }
    }

    fn matches(&self, s: &str) -> bool {
        if self.prefix {
            s.starts_with(&self.text)
        } else {
            s == self.text
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TablePattern {
    db: Option<Pattern>,
    table: Pattern,
}

impl TablePattern {
    fn new(s: &str) -> Self {
        match s.split_once('.') {
            Some((db, t)) => Self {
                db: Some(Pattern::new(db)),
                table: Pattern::new(t),
            },
            None => Self {
                db: None,
                table: Pattern::new(s),
            },
        }
    }

    fn matches(&self, db: &str, table: &str) -> bool {
        self.db.as_ref().is_none_or(|p| p.matches(db)) && self.table.matches(table)
    }
}

/// Which tables' row events are emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFilter {
    include_databases: Vec<Pattern>,
    include_tables: Vec<TablePattern>,
    exclude_tables: Vec<TablePattern>,
    exclude_databases: Vec<Pattern>,
}

impl TableFilter {
    /// Only these databases (exact or `prefix*`); empty = all.
    pub fn with_include_databases<S: AsRef<str>>(mut self, dbs: &[S]) -> Self {
        self.include_databases = dbs.iter().map(|s| Pattern::new(s.as_ref())).collect();
        self
    }

    /// Never these databases (exact or `prefix*`).
    pub fn with_exclude_databases<S: AsRef<str>>(mut self, dbs: &[S]) -> Self {
        self.exclude_databases = dbs.iter().map(|s| Pattern::new(s.as_ref())).collect();
        self
    }

    /// Only these tables (`db.table`, `table`, with optional trailing `*`); empty = all.
    pub fn with_include_tables<S: AsRef<str>>(mut self, tables: &[S]) -> Self {
        self.include_tables = tables
            .iter()
            .map(|s| TablePattern::new(s.as_ref()))
            .collect();
        self
    }

    /// Never these tables (same syntax); exclusion wins over inclusion.
    pub fn with_exclude_tables<S: AsRef<str>>(mut self, tables: &[S]) -> Self {
        self.exclude_tables = tables
            .iter()
            .map(|s| TablePattern::new(s.as_ref()))
            .collect();
        self
    }

    /// Whether a statement whose default database is `db` passes (only the database rules
    /// apply: a statement names no single table).
    pub fn allows_database(&self, db: &str) -> bool {
        !self.exclude_databases.iter().any(|p| p.matches(db))
            && (self.include_databases.is_empty()
                || self.include_databases.iter().any(|p| p.matches(db)))
    }

    /// Whether rows of `db.table` pass.
    pub fn allows(&self, db: &str, table: &str) -> bool {
        if self.exclude_databases.iter().any(|p| p.matches(db)) {
            return false;
        }
        if self.exclude_tables.iter().any(|p| p.matches(db, table)) {
            return false;
        }
        if !self.include_databases.is_empty()
            && !self.include_databases.iter().any(|p| p.matches(db))
        {
            return false;
        }
        self.include_tables.is_empty() || self.include_tables.iter().any(|p| p.matches(db, table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let f = TableFilter::default();
        assert!(f.allows("a", "b"));
        let f = TableFilter::default().with_include_databases(&["shop"]);
        assert!(f.allows("shop", "x") && !f.allows("shop2", "x"));
        let f = TableFilter::default()
            .with_include_tables(&["shop.order*", "users"])
            .with_exclude_tables(&["shop.orders_archive"]);
        assert!(f.allows("shop", "orders"));
        assert!(f.allows("other", "users"));
        assert!(!f.allows("shop", "orders_archive"));
        assert!(!f.allows("shop", "items"));
        let f = TableFilter::default().with_exclude_databases(&["tmp*"]);
        assert!(!f.allows("tmp_1", "t") && f.allows("prod", "t"));
        // Case-sensitive.
        let f = TableFilter::default().with_include_tables(&["Users"]);
        assert!(!f.allows("a", "users"));
    }
}
