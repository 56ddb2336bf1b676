//! The scripted SQL surface: `SET`, `SELECT @@var / @uservar / VERSION() / literals`,
//! `SHOW BINARY LOG STATUS` (and `SHOW MASTER STATUS`), `SHOW BINARY LOGS`,
//! `SHOW VARIABLES [LIKE | WHERE]`, `SHOW WARNINGS`, `USE`, transaction statements, plus
//! the per-test scripted answers. Anything else is ERR 1064.

use crate::binlog::BinlogFile;
use crate::config::ScriptedResponse;
use std::collections::{BTreeMap, HashMap};

/// A column of a text result set.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    /// Integer column (LONGLONG, binary charset) rather than VARCHAR.
    pub int: bool,
}

impl Column {
    fn text(name: &str) -> Self {
        Self {
            name: name.into(),
            int: false,
        }
    }

    fn int(name: &str) -> Self {
        Self {
            name: name.into(),
            int: true,
        }
    }
}

/// The answer to a query.
#[derive(Debug, Clone)]
pub(crate) enum Response {
    Ok,
    Err {
        code: u16,
        state: String,
        message: String,
    },
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Option<String>>>,
    },
}

/// Per-connection SQL state.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// User variables (`@name`), lowercase names.
    pub user_vars: HashMap<String, Option<String>>,
    /// Session-scope system variables set by the client, lowercase names.
    pub session_vars: HashMap<String, String>,
    pub autocommit: bool,
    pub database: Option<String>,
}

impl SessionState {
    pub(crate) fn new() -> Self {
        Self {
            autocommit: true,
            ..Self::default()
        }
    }

    /// A user variable's value (`None` when unset or NULL).
    pub(crate) fn user_var(&self, name: &str) -> Option<&str> {
        self.user_vars.get(name).and_then(|v| v.as_deref())
    }
}

/// Everything a query may read.
pub(crate) struct QueryCtx<'a> {
    pub globals: &'a BTreeMap<String, String>,
    pub binlogs: &'a [BinlogFile],
    pub scripted: &'a [(String, ScriptedResponse)],
    pub user: &'a str,
    pub connection_id: u32,
}

/// Lowercase, whitespace runs collapsed, leading comments and a trailing `;` removed.
pub(crate) fn normalize(sql: &str) -> String {
    let mut s = sql.trim();
    while let Some(rest) = s.strip_prefix("/*") {
        match rest.find("*/") {
            Some(i) => s = rest[i + 2..].trim_start(),
            None => break,
        }
    }
    let s = s.trim().trim_end_matches(';').trim();
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for ch in s.chars() {
        if ch.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(ch.to_lowercase());
        }
    }
    out
}

/// The query text with leading comments and a trailing `;` removed, case kept.
fn strip(sql: &str) -> &str {
    let mut s = sql.trim();
    while let Some(rest) = s.strip_prefix("/*") {
        match rest.find("*/") {
            Some(i) => s = rest[i + 2..].trim_start(),
            None => break,
        }
    }
    s.trim().trim_end_matches(';').trim()
}

fn syntax_error(sql: &str) -> Response {
    let near: String = sql.chars().take(80).collect();
    Response::Err {
        code: 1064,
        state: "42000".into(),
        message: format!(
            "You have an error in your SQL syntax; check the manual that corresponds to your \
             MySQL server version for the right syntax to use near '{near}' at line 1 \
             (mes-testkit does not script this query)"
        ),
    }
}

/// Answer one COM_QUERY.
pub(crate) fn handle_query(sql: &str, ctx: &QueryCtx<'_>, st: &mut SessionState) -> Response {
    let norm = normalize(sql);
    for (prefix, resp) in ctx.scripted {
        if norm.starts_with(prefix.as_str()) {
            return match resp {
                ScriptedResponse::Ok => Response::Ok,
                ScriptedResponse::Error {
                    code,
                    state,
                    message,
                } => Response::Err {
                    code: *code,
                    state: state.clone(),
                    message: message.clone(),
                },
                ScriptedResponse::Rows { columns, rows } => Response::Rows {
                    columns: columns.iter().map(|c| Column::text(c)).collect(),
                    rows: rows.clone(),
                },
            };
        }
    }
    let body = strip(sql);
    let first = norm.split(' ').next().unwrap_or_default();
    // The keyword's length in `body` (same ASCII letters as in `norm`).
    let after = |n: usize| body.get(n..).unwrap_or_default();
    match first {
        "set" => handle_set(after(3), ctx, st),
        "select" => handle_select(after(6), ctx, st).unwrap_or_else(|| syntax_error(sql)),
        "show" => handle_show(&norm, ctx, st).unwrap_or_else(|| syntax_error(sql)),
        "use" => {
            let db = after(3).trim().trim_matches('`').to_string();
            st.database = Some(db);
            Response::Ok
        }
        "begin" | "commit" | "rollback" | "start" if is_transaction_stmt(&norm) => Response::Ok,
        _ => syntax_error(sql),
    }
}

fn is_transaction_stmt(norm: &str) -> bool {
    norm == "begin"
        || norm == "commit"
        || norm == "rollback"
        || norm.starts_with("start transaction")
        || norm.starts_with("commit work")
        || norm.starts_with("rollback work")
}

/// Split at top-level `sep` (outside quotes, backquotes and parentheses).
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    let mut escaped = false;
    for (i, ch) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' && q != '`' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '\'' | '"' | '`' => quote = Some(ch),
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Remove one level of quotes (`'..'`, `".."`, `` `..` ``), handling doubled quotes and
/// backslash escapes.
fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    let q = s.chars().next()?;
    if !matches!(q, '\'' | '"' | '`') || s.len() < 2 || !s.ends_with(q) {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\\' && q != '`' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                // MySQL keeps the backslash of `\%` and `\_` (LIKE escapes).
                Some(c @ ('%' | '_')) => {
                    out.push('\\');
                    out.push(c);
                }
                Some(c) => out.push(c),
                None => {}
            }
        } else if ch == q && chars.peek() == Some(&q) {
            chars.next();
            out.push(q);
        } else {
            out.push(ch);
        }
    }
    Some(out)
}

fn is_int(v: &str) -> bool {
    let d = v.strip_prefix('-').unwrap_or(v);
    !d.is_empty() && d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit())
}

/// Strip `global.` / `session.` / `local.` / `persist.` from a system variable reference;
/// returns (is_global, lowercase name).
fn sysvar_name(s: &str) -> (bool, String) {
    let l = s.trim().trim_matches('`').to_ascii_lowercase();
    for (p, global) in [
        ("global.", true),
        ("persist.", true),
        ("persist_only.", true),
        ("session.", false),
        ("local.", false),
    ] {
        if let Some(rest) = l.strip_prefix(p) {
            return (global, rest.trim_matches('`').to_string());
        }
    }
    (false, l)
}

fn sysvar(ctx: &QueryCtx<'_>, st: &SessionState, global: bool, name: &str) -> Option<String> {
    if !global {
        if name == "autocommit" {
            return Some(if st.autocommit { "1" } else { "0" }.into());
        }
        if let Some(v) = st.session_vars.get(name) {
            return Some(v.clone());
        }
    }
    ctx.globals.get(name).cloned()
}

/// Evaluate a scalar expression: `@@var`, `@var`, a literal, or a few functions.
/// Returns (value, integer-typed); `None` when the expression is not understood.
fn eval(expr: &str, ctx: &QueryCtx<'_>, st: &SessionState) -> Option<(Option<String>, bool)> {
    let e = expr.trim();
    let l = e.to_ascii_lowercase();
    if let Some(rest) = e.strip_prefix("@@") {
        let (global, name) = sysvar_name(rest);
        let v = sysvar(ctx, st, global, &name);
        let int = v.as_deref().is_some_and(is_int);
        return Some((v, int));
    }
    if let Some(rest) = e.strip_prefix('@') {
        let name = unquote(rest).unwrap_or_else(|| rest.to_string());
        let v = st.user_var(&name.to_ascii_lowercase()).map(str::to_string);
        let int = v.as_deref().is_some_and(is_int);
        return Some((v, int));
    }
    if l == "null" {
        return Some((None, false));
    }
    if let Some(s) = unquote(e).filter(|_| !e.starts_with('`')) {
        return Some((Some(s), false));
    }
    if is_int(e) {
        return Some((Some(e.to_string()), true));
    }
    let func: String = l.chars().filter(|c| !c.is_whitespace()).collect();
    let v = match func.as_str() {
        "version()" => sysvar(ctx, st, true, "version"),
        "database()" | "schema()" => st.database.clone(),
        "user()" | "current_user()" | "session_user()" | "system_user()" => {
            Some(format!("{}@localhost", ctx.user))
        }
        "connection_id()" => return Some((Some(ctx.connection_id.to_string()), true)),
        "unix_timestamp()" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Some((Some(now.to_string()), true));
        }
        _ => return None,
    };
    Some((v, false))
}

/// `SET a = b, @x = y, NAMES utf8mb4, ...`: always OK; user variables and session variables
/// are remembered (the dump reads `@source_binlog_checksum`, `@source_heartbeat_period`).
fn handle_set(rest: &str, ctx: &QueryCtx<'_>, st: &mut SessionState) -> Response {
    for item in split_top(rest, ',') {
        let item = item.trim();
        let lower = item.to_ascii_lowercase();
        if lower.starts_with("names ")
            || lower.starts_with("character set")
            || lower.starts_with("charset")
            || lower.starts_with("transaction ")
            || lower.starts_with("session transaction")
            || lower.starts_with("global transaction")
        {
            continue;
        }
        let Some((lhs, rhs)) = item.split_once(":=").or_else(|| item.split_once('=')) else {
            continue;
        };
        let rhs = rhs.trim();
        let value = match eval(rhs, ctx, st) {
            Some((v, _)) => v,
            None => Some(rhs.trim_matches('`').to_string()),
        };
        let lhs = lhs.trim();
        if let Some(name) = lhs.strip_prefix("@@") {
            let (global, name) = sysvar_name(name);
            if !global {
                set_session_var(st, &name, value);
            }
        } else if let Some(name) = lhs.strip_prefix('@') {
            let name = unquote(name).unwrap_or_else(|| name.to_string());
            st.user_vars.insert(name.trim().to_ascii_lowercase(), value);
        } else {
            let l = lhs.to_ascii_lowercase();
            let mut words = l.split_whitespace();
            let (scope, name) = match (words.next(), words.next()) {
                (Some(s @ ("global" | "persist" | "persist_only")), Some(n)) => (Some(s), n),
                (Some(s @ ("session" | "local")), Some(n)) => (Some(s), n),
                (Some(n), None) => (None, n),
                _ => continue,
            };
            if !matches!(scope, Some("global" | "persist" | "persist_only")) {
                set_session_var(st, name.trim_matches('`'), value);
            }
        }
    }
    Response::Ok
}

fn set_session_var(st: &mut SessionState, name: &str, value: Option<String>) {
    let v = value.unwrap_or_default();
    if name == "autocommit" {
        st.autocommit = matches!(v.to_ascii_lowercase().as_str(), "1" | "on" | "true");
    }
    st.session_vars.insert(name.to_string(), v);
}

/// Strip a trailing `LIMIT n` (case-insensitive).
fn strip_limit(s: &str) -> &str {
    let t = s.trim_end();
    let l = t.to_ascii_lowercase();
    if let Some(i) = l.rfind("limit") {
        let tail = l[i + 5..].trim();
        let before_ok = i == 0 || l[..i].ends_with(char::is_whitespace);
        if before_ok && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            return t[..i].trim_end();
        }
    }
    t
}

/// Split `expr [AS] alias` into (expr, alias).
fn split_alias(item: &str) -> (&str, Option<String>) {
    let parts = split_top(item.trim(), ' ');
    let words: Vec<&str> = parts.into_iter().filter(|w| !w.is_empty()).collect();
    let alias = |w: &str| unquote(w).unwrap_or_else(|| w.to_string());
    match words.as_slice() {
        [expr, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => (expr, Some(alias(name))),
        [expr, name] if expr.starts_with('@') || expr.ends_with(')') => (expr, Some(alias(name))),
        _ => (item.trim(), None),
    }
}

/// `SELECT item, item ... [LIMIT n]` without FROM: one row.
fn handle_select(rest: &str, ctx: &QueryCtx<'_>, st: &SessionState) -> Option<Response> {
    let rest = strip_limit(rest);
    let lower = rest.to_ascii_lowercase();
    if lower.contains(" from ") || lower.trim().is_empty() {
        return None;
    }
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for item in split_top(rest, ',') {
        let (expr, alias) = split_alias(item);
        let (value, int) = eval(expr, ctx, st)?;
        let name = alias.unwrap_or_else(|| expr.trim().to_string());
        columns.push(Column { name, int });
        row.push(value);
    }
    Some(Response::Rows {
        columns,
        rows: vec![row],
    })
}

/// SQL `LIKE` with `%`, `_` and backslash escapes, case-insensitive.
pub(crate) fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                !t.is_empty() && t[0] == rest[0] && go(&rest[1..], &t[1..])
            }
            Some((c, rest)) => !t.is_empty() && t[0] == *c && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    go(&p, &t)
}

fn handle_show(norm: &str, ctx: &QueryCtx<'_>, st: &SessionState) -> Option<Response> {
    let rest = norm.strip_prefix("show ")?;
    match rest {
        "binary log status" | "master status" => Some(binlog_status(ctx)),
        "binary logs" | "master logs" => Some(Response::Rows {
            columns: vec![
                Column::text("Log_name"),
                Column::int("File_size"),
                Column::text("Encrypted"),
            ],
            rows: ctx
                .binlogs
                .iter()
                .map(|f| {
                    vec![
                        Some(f.name.clone()),
                        Some(f.size().to_string()),
                        Some("No".into()),
                    ]
                })
                .collect(),
        }),
        "warnings" | "errors" => Some(Response::Rows {
            columns: vec![
                Column::text("Level"),
                Column::int("Code"),
                Column::text("Message"),
            ],
            rows: Vec::new(),
        }),
        _ => show_variables(rest, ctx, st),
    }
}

fn binlog_status(ctx: &QueryCtx<'_>) -> Response {
    let columns = vec![
        Column::text("File"),
        Column::int("Position"),
        Column::text("Binlog_Do_DB"),
        Column::text("Binlog_Ignore_DB"),
        Column::text("Executed_Gtid_Set"),
    ];
    let rows = match ctx.binlogs.last() {
        Some(last) => vec![vec![
            Some(last.name.clone()),
            Some(last.size().to_string()),
            Some(String::new()),
            Some(String::new()),
            Some(
                ctx.globals
                    .get("gtid_executed")
                    .cloned()
                    .unwrap_or_default(),
            ),
        ]],
        None => Vec::new(),
    };
    Response::Rows { columns, rows }
}

/// `SHOW [GLOBAL|SESSION] VARIABLES [LIKE 'pat' | WHERE Variable_name = 'x' | ... IN (...)]`.
fn show_variables(rest: &str, ctx: &QueryCtx<'_>, st: &SessionState) -> Option<Response> {
    let (global, rest) = if let Some(r) = rest.strip_prefix("global ") {
        (true, r)
    } else if let Some(r) = rest
        .strip_prefix("session ")
        .or_else(|| rest.strip_prefix("local "))
    {
        (false, r)
    } else {
        (false, rest)
    };
    let filter = rest.strip_prefix("variables")?.trim();
    let matches: Box<dyn Fn(&str) -> bool> = if filter.is_empty() {
        Box::new(|_| true)
    } else if let Some(pat) = filter.strip_prefix("like ") {
        let pat = unquote(pat)?;
        Box::new(move |name| like(&pat, name))
    } else if let Some(cond) = filter.strip_prefix("where ") {
        let cond = cond.trim();
        let cond = cond.strip_prefix("variable_name")?.trim();
        if let Some(v) = cond.strip_prefix('=') {
            let name = unquote(v)?.to_ascii_lowercase();
            Box::new(move |n| n == name)
        } else if let Some(v) = cond.strip_prefix("like ") {
            let pat = unquote(v)?;
            Box::new(move |n| like(&pat, n))
        } else if let Some(list) = cond.strip_prefix("in") {
            let list = list.trim().strip_prefix('(')?.strip_suffix(')')?;
            let names: Vec<String> = split_top(list, ',')
                .into_iter()
                .filter_map(unquote)
                .map(|s| s.to_ascii_lowercase())
                .collect();
            Box::new(move |n| names.iter().any(|x| x == n))
        } else {
            return None;
        }
    } else {
        return None;
    };
    let mut rows = Vec::new();
    for name in ctx.globals.keys() {
        if matches(name) {
            let v = sysvar(ctx, st, global, name);
            rows.push(vec![Some(name.clone()), v]);
        }
    }
    Some(Response::Rows {
        columns: vec![Column::text("Variable_name"), Column::text("Value")],
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(globals: &'a BTreeMap<String, String>) -> QueryCtx<'a> {
        QueryCtx {
            globals,
            binlogs: &[],
            scripted: &[],
            user: "u",
            connection_id: 7,
        }
    }

    fn rows(r: Response) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        match r {
            Response::Rows { columns, rows } => {
                (columns.into_iter().map(|c| c.name).collect(), rows)
            }
            other => panic!("not rows: {other:?}"),
        }
    }

    #[test]
    fn selects_and_sets() {
        let mut g = BTreeMap::new();
        g.insert(
            "version_comment".to_string(),
            "MySQL Community Server - GPL".to_string(),
        );
        g.insert("binlog_checksum".to_string(), "CRC32".to_string());
        let c = ctx(&g);
        let mut st = SessionState::new();
        let (cols, r) = rows(handle_query(
            "select @@version_comment limit 1",
            &c,
            &mut st,
        ));
        assert_eq!(cols, vec!["@@version_comment"]);
        assert_eq!(r[0][0].as_deref(), Some("MySQL Community Server - GPL"));

        assert!(matches!(
            handle_query(
                "SET @master_binlog_checksum = @@global.binlog_checksum, NAMES utf8mb4",
                &c,
                &mut st
            ),
            Response::Ok
        ));
        assert_eq!(st.user_var("master_binlog_checksum"), Some("CRC32"));
        let (cols, r) = rows(handle_query(
            "SELECT @@GLOBAL.binlog_checksum AS c, @master_binlog_checksum, @@nope, 1, 'x' AS y;",
            &c,
            &mut st,
        ));
        assert_eq!(
            cols,
            vec!["c", "@master_binlog_checksum", "@@nope", "1", "y"]
        );
        assert_eq!(
            r[0],
            vec![
                Some("CRC32".into()),
                Some("CRC32".into()),
                None,
                Some("1".into()),
                Some("x".into())
            ]
        );
        handle_query("SET autocommit=0", &c, &mut st);
        assert!(!st.autocommit);
        let (_, r) = rows(handle_query("select @@session.autocommit", &c, &mut st));
        assert_eq!(r[0][0].as_deref(), Some("0"));
        assert!(matches!(
            handle_query("SELECT * FROM t", &c, &mut st),
            Response::Err { code: 1064, .. }
        ));
        assert!(matches!(
            handle_query("DROP TABLE t", &c, &mut st),
            Response::Err { code: 1064, .. }
        ));
    }

    #[test]
    fn show_variables_like() {
        let mut g = BTreeMap::new();
        g.insert("binlog_format".to_string(), "ROW".to_string());
        g.insert("binlog_row_image".to_string(), "FULL".to_string());
        g.insert("gtid_mode".to_string(), "ON".to_string());
        let c = ctx(&g);
        let mut st = SessionState::new();
        let (_, r) = rows(handle_query(
            "SHOW GLOBAL VARIABLES LIKE 'binlog\\_%'",
            &c,
            &mut st,
        ));
        assert_eq!(r.len(), 2);
        let (_, r) = rows(handle_query(
            "show variables where Variable_name = 'gtid_mode'",
            &c,
            &mut st,
        ));
        assert_eq!(r, vec![vec![Some("gtid_mode".into()), Some("ON".into())]]);
    }

    #[test]
    fn like_patterns() {
        assert!(like("lower\\_case%", "lower_case_table_names"));
        assert!(!like("lower\\_case%", "lowerXcase"));
        assert!(like("%", ""));
        assert!(like("a_c", "ABC"));
    }
}
