//! JSON diffs of `PARTIAL_UPDATE_ROWS_EVENT` (MySQL 8.0+
//! `binlog_row_value_options=PARTIAL_JSON`).
//!
//! A partially updated JSON column in the after image is a 4-byte
//! little-endian length followed by a list of diffs (mysql-server
//! `sql/json_diff.cc`, `Json_diff_vector::write_binary`). Each diff is:
//!
//! ```text
//! operation  1 byte: 0 REPLACE, 1 INSERT, 2 REMOVE
//! path       packed length (net_field_length) + path text, e.g. `$.a[1]`
//! value      packed length + binary JSON (type byte + value); not for REMOVE
//! ```
//!
//! The path is written by `Json_path::to_string`: `$` followed by legs
//! `.name` (or `."quoted name"` when the name is not an ECMAScript
//! identifier), `[N]`, `[last]` or `[last-N]`. The parser here accepts the
//! full MySQL path grammar (whitespace, wildcards, ranges, `**`), but only
//! member and array-cell legs can be applied, as in MySQL.

use crate::json::{JsonBinary, JsonDom, JsonError, MAX_DEPTH, key_order};
use std::cmp::Ordering;

/// One diff operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonDiffOp {
    /// Replace an existing value (`enum_json_diff_operation::REPLACE`, 0).
    Replace,
    /// Insert an array element or a new object member (`INSERT`, 1).
    Insert,
    /// Remove an array element or an object member (`REMOVE`, 2).
    Remove,
}

impl JsonDiffOp {
    /// The operation for an encoded operation byte.
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(JsonDiffOp::Replace),
            1 => Some(JsonDiffOp::Insert),
            2 => Some(JsonDiffOp::Remove),
            _ => None,
        }
    }

    /// The encoded operation byte.
    pub fn as_u8(self) -> u8 {
        match self {
            JsonDiffOp::Replace => 0,
            JsonDiffOp::Insert => 1,
            JsonDiffOp::Remove => 2,
        }
    }
}

/// A borrowed JSON diff: operation, JSON path text (e.g. `$.a[1]`), and for
/// Replace/Insert the new value as binary JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonDiff<'a> {
    /// The operation.
    pub op: JsonDiffOp,
    /// The path text as written by MySQL.
    pub path: &'a str,
    /// The new value (`None` for [`JsonDiffOp::Remove`]).
    pub value: Option<JsonBinary<'a>>,
}

impl JsonDiff<'_> {
    /// Append this diff in the binlog encoding (the inverse of
    /// [`parse_json_diffs`] for one diff). A Replace/Insert without a value
    /// is written with an empty value, which MySQL reads as `null`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(self.op.as_u8());
        push_packed_len(out, self.path.len());
        out.extend_from_slice(self.path.as_bytes());
        if self.op != JsonDiffOp::Remove {
            let value = self.value.map_or(&[][..], |v| v.as_bytes());
            push_packed_len(out, value.len());
            out.extend_from_slice(value);
        }
    }
}

/// One leg of a parsed JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonPathLeg {
    /// `.name` or `."name"`: an object member.
    Member(String),
    /// `[N]`, `[last]` (index 0 from the end) or `[last-N]`.
    ArrayCell {
        /// The index.
        index: u32,
        /// Whether the index counts from the end (`last-N`).
        from_end: bool,
    },
    /// `[A to B]`, each bound like [`JsonPathLeg::ArrayCell`].
    ArrayRange {
        /// First index.
        first: u32,
        /// Whether `first` counts from the end.
        first_from_end: bool,
        /// Last index (inclusive).
        last: u32,
        /// Whether `last` counts from the end.
        last_from_end: bool,
    },
    /// `.*`
    MemberWildcard,
    /// `[*]`
    ArrayWildcard,
    /// `**`
    Ellipsis,
}

/// Parse the diff list of one column (the bytes after the column's 4-byte
/// length prefix). Paths are syntax-checked and values fully validated,
/// as MySQL's `Json_diff_vector::read_binary` does; error offsets inside a
/// value are relative to that value.
pub fn parse_json_diffs(buf: &[u8]) -> Result<Vec<JsonDiff<'_>>, JsonError> {
    let mut diffs = Vec::new();
    let mut pos = 0;
    while let Some(&op_byte) = buf.get(pos) {
        let op = JsonDiffOp::from_u8(op_byte).ok_or(JsonError::BadDiffOp {
            op: op_byte,
            offset: pos,
        })?;
        pos += 1;
        let path_bytes = read_packed_field(buf, &mut pos)?;
        let path_offset = pos - path_bytes.len();
        let path = std::str::from_utf8(path_bytes).map_err(|_| JsonError::InvalidUtf8 {
            offset: path_offset,
        })?;
        parse_json_path(path)?;
        let value = if op == JsonDiffOp::Remove {
            None
        } else {
            let value = JsonBinary::new(read_packed_field(buf, &mut pos)?);
            value.validate()?;
            Some(value)
        };
        diffs.push(JsonDiff { op, path, value });
    }
    Ok(diffs)
}

/// Apply diffs in order to a document (the before image), as MySQL applies
/// them on the replica (`apply_json_diffs` in `sql/json_diff.cc`):
///
/// * the path must have at least one leg (the root cannot be targeted);
/// * REPLACE: the path must exist; its value is replaced;
/// * INSERT: the parent must exist; into an object the member must not
///   exist yet (it is added in canonical key order), into an array the
///   value is inserted at the index (appended when past the end, prepended
///   for `last-N` before the start);
/// * REMOVE: the parent must exist and the member / in-bounds element is
///   removed.
///
/// Paths are followed exactly (no auto-wrapping); wildcard, range and
/// ellipsis legs never match. A diff MySQL would refuse yields
/// [`JsonError::DiffRejected`]; a result nested deeper than [`MAX_DEPTH`]
/// yields [`JsonError::TooDeep`]. Diffs before the failing one stay applied.
pub fn apply_json_diffs(doc: &mut JsonDom, diffs: &[JsonDiff<'_>]) -> Result<(), JsonError> {
    for (index, diff) in diffs.iter().enumerate() {
        apply_one(doc, index, diff)?;
    }
    Ok(())
}

fn apply_one(doc: &mut JsonDom, index: usize, diff: &JsonDiff<'_>) -> Result<(), JsonError> {
    let reject = |reason: &'static str| JsonError::DiffRejected {
        index,
        path: diff.path.to_owned(),
        reason,
    };
    let legs = parse_json_path(diff.path)?;
    let Some((last, parent_legs)) = legs.split_last() else {
        return Err(reject("the root document cannot be the target of a diff"));
    };
    let value = match (diff.op, diff.value) {
        (JsonDiffOp::Remove, _) => None,
        (_, Some(v)) => {
            let value = v.to_dom()?;
            if legs.len().saturating_add(value.depth()) > MAX_DEPTH {
                return Err(JsonError::TooDeep);
            }
            Some(value)
        }
        (_, None) => return Err(reject("missing value")),
    };
    let parent = seek_exact(doc, parent_legs).ok_or_else(|| reject("path not found"))?;
    match (diff.op, value) {
        (JsonDiffOp::Replace, Some(value)) => {
            let target = seek_exact(parent, std::slice::from_ref(last))
                .ok_or_else(|| reject("path not found"))?;
            *target = value;
        }
        (JsonDiffOp::Insert, Some(value)) => match (parent, last) {
            (JsonDom::Object(members), JsonPathLeg::Member(name)) => {
                if members.iter().any(|(k, _)| k == name) {
                    return Err(reject("member already exists"));
                }
                let at = members
                    .iter()
                    .position(|(k, _)| key_order(k, name) == Ordering::Greater)
                    .unwrap_or(members.len());
                members.insert(at, (name.clone(), value));
            }
            (JsonDom::Array(items), JsonPathLeg::ArrayCell { index, from_end }) => {
                let (at, _) = array_index(*index, *from_end, items.len());
                items.insert(at, value);
            }
            _ => return Err(reject("parent is not an object or array matching the path")),
        },
        (JsonDiffOp::Remove, _) => match (parent, last) {
            (JsonDom::Object(members), JsonPathLeg::Member(name)) => {
                let at = members
                    .iter()
                    .position(|(k, _)| k == name)
                    .ok_or_else(|| reject("path not found"))?;
                members.remove(at);
            }
            (JsonDom::Array(items), JsonPathLeg::ArrayCell { index, from_end }) => {
                let (at, within) = array_index(*index, *from_end, items.len());
                if !within {
                    return Err(reject("path not found"));
                }
                items.remove(at);
            }
            _ => return Err(reject("path not found")),
        },
        _ => return Err(reject("missing value")),
    }
    Ok(())
}

/// MySQL's `Json_array_index`: (position, within bounds).
fn array_index(index: u32, from_end: bool, len: usize) -> (usize, bool) {
    let index = usize::try_from(index).unwrap_or(usize::MAX);
    let within = index < len;
    let position = if from_end {
        if within { len - index - 1 } else { 0 }
    } else {
        index.min(len)
    };
    (position, within)
}

/// MySQL's `seek_exact_path`: follow member legs through objects and cell
/// legs through arrays; anything else does not match.
fn seek_exact<'d>(doc: &'d mut JsonDom, legs: &[JsonPathLeg]) -> Option<&'d mut JsonDom> {
    let mut current = doc;
    for leg in legs {
        current = match (current, leg) {
            (JsonDom::Array(items), JsonPathLeg::ArrayCell { index, from_end }) => {
                let (at, within) = array_index(*index, *from_end, items.len());
                if !within {
                    return None;
                }
                items.get_mut(at)?
            }
            (JsonDom::Object(members), JsonPathLeg::Member(name)) => members
                .iter_mut()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)?,
            _ => return None,
        };
    }
    Some(current)
}

// ---------------------------------------------------------------------------
// Packed lengths (net_field_length)
// ---------------------------------------------------------------------------

/// Read a `net_field_length` length and that many bytes; advance `pos`.
/// 251 (the NULL marker) is rejected, like MySQL does for diffs.
fn read_packed_field<'b>(buf: &'b [u8], pos: &mut usize) -> Result<&'b [u8], JsonError> {
    let start = *pos;
    let truncated = |needed| JsonError::Truncated {
        offset: start,
        needed,
    };
    let first = *buf.get(start).ok_or(truncated(1))?;
    let (len, used): (u64, usize) = match first {
        0..=250 => (u64::from(first), 1),
        251 => return Err(JsonError::BadLength { offset: start }),
        252 | 253 => {
            let n = if first == 252 { 2 } else { 3 };
            let bytes = buf.get(start + 1..start + 1 + n).ok_or(truncated(1 + n))?;
            let v = bytes
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            (v, 1 + n)
        }
        _ => {
            let bytes = buf.get(start + 1..start + 9).ok_or(truncated(9))?;
            let v = bytes
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            (v, 9)
        }
    };
    let data_start = start + used;
    let len = usize::try_from(len).map_err(|_| JsonError::BadLength { offset: start })?;
    let data = data_start
        .checked_add(len)
        .and_then(|end| buf.get(data_start..end))
        .ok_or(JsonError::Truncated {
            offset: data_start,
            needed: len,
        })?;
    *pos = data_start + len;
    Ok(data)
}

fn push_packed_len(out: &mut Vec<u8>, len: usize) {
    let len = len as u64;
    if len < 251 {
        out.push(len as u8);
    } else if len < 1 << 16 {
        out.push(252);
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else if len < 1 << 24 {
        out.push(253);
        out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
    } else {
        out.push(254);
        out.extend_from_slice(&len.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------
// JSON path parsing (sql-common/json_path.cc grammar)
// ---------------------------------------------------------------------------

/// Parse a MySQL JSON path (`$`, `.name`, `."name"`, `.*`, `[N]`, `[last]`,
/// `[last-N]`, `[A to B]`, `[*]`, `**`, with optional whitespace between
/// tokens) into its legs.
///
/// Unquoted member names may contain JSON escapes and must be ECMAScript
/// identifiers; for ASCII characters this is checked exactly like MySQL
/// (letters, digits, `$`, `_`; no leading digit), non-ASCII characters are
/// accepted.
pub fn parse_json_path(path: &str) -> Result<Vec<JsonPathLeg>, JsonError> {
    let mut p = PathParser {
        text: path,
        bytes: path.as_bytes(),
        pos: 0,
    };
    p.parse().map_err(|position| JsonError::BadPath {
        path: path.to_owned(),
        position,
    })
}

struct PathParser<'p> {
    text: &'p str,
    bytes: &'p [u8],
    pos: usize,
}

/// MySQL's `my_isspace` for utf8mb4: space, \t, \n, \v, \f, \r.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl PathParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), usize> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.pos)
        }
    }

    fn parse(&mut self) -> Result<Vec<JsonPathLeg>, usize> {
        let mut legs = Vec::new();
        self.skip_space();
        self.eat(b'$')?;
        self.skip_space();
        while let Some(b) = self.peek() {
            match b {
                b'[' => legs.push(self.array_leg()?),
                b'.' => legs.push(self.member_leg()?),
                b'*' => {
                    self.pos += 1;
                    self.eat(b'*')?;
                    // May not be the last leg, and `***` is forbidden.
                    match self.peek() {
                        None | Some(b'*') => return Err(self.pos),
                        Some(_) => legs.push(JsonPathLeg::Ellipsis),
                    }
                }
                _ => return Err(self.pos),
            }
            self.skip_space();
        }
        if legs.last() == Some(&JsonPathLeg::Ellipsis) {
            return Err(self.pos);
        }
        Ok(legs)
    }

    fn array_index(&mut self) -> Result<(u32, bool), usize> {
        let mut from_end = false;
        if self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(b"last"))
        {
            self.pos += 4;
            from_end = true;
            self.skip_space();
            if self.peek() == Some(b'-') {
                self.pos += 1;
                self.skip_space();
            } else {
                return Ok((0, true));
            }
        }
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            value = value * 10 + u64::from(d - b'0');
            if value > u64::from(u32::MAX) {
                return Err(start);
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(start);
        }
        let value = u32::try_from(value).map_err(|_| start)?;
        Ok((value, from_end))
    }

    fn array_leg(&mut self) -> Result<JsonPathLeg, usize> {
        self.eat(b'[')?;
        self.skip_space();
        let leg = if self.peek() == Some(b'*') {
            self.pos += 1;
            JsonPathLeg::ArrayWildcard
        } else {
            let (first, first_from_end) = self.array_index()?;
            self.skip_space();
            let pos = self.pos;
            let preceded_by_space =
                pos > 0 && self.bytes.get(pos - 1).copied().is_some_and(is_space);
            let is_to = self.bytes.get(pos..pos + 2) == Some(b"to")
                && self.bytes.get(pos + 2).copied().is_some_and(is_space);
            if preceded_by_space && is_to && self.bytes.len() - pos > 3 {
                self.pos += 3;
                self.skip_space();
                let (last, last_from_end) = self.array_index()?;
                // Reject ranges that can never match anything.
                if first_from_end == last_from_end
                    && ((first_from_end && first < last) || (!first_from_end && last < first))
                {
                    return Err(self.pos);
                }
                JsonPathLeg::ArrayRange {
                    first,
                    first_from_end,
                    last,
                    last_from_end,
                }
            } else {
                JsonPathLeg::ArrayCell {
                    index: first,
                    from_end: first_from_end,
                }
            }
        };
        self.skip_space();
        self.eat(b']')?;
        Ok(leg)
    }

    fn member_leg(&mut self) -> Result<JsonPathLeg, usize> {
        self.eat(b'.')?;
        self.skip_space();
        match self.peek() {
            None => return Err(self.pos),
            Some(b'*') => {
                self.pos += 1;
                return Ok(JsonPathLeg::MemberWildcard);
            }
            Some(_) => {}
        }
        let start = self.pos;
        if self.peek() == Some(b'"') {
            // Quoted: up to the next unescaped double quote.
            let mut i = start + 1;
            let mut end = None;
            while let Some(&b) = self.bytes.get(i) {
                match b {
                    b'\\' => i += 2,
                    b'"' => {
                        end = Some(i);
                        break;
                    }
                    _ => i += 1,
                }
            }
            let end = end.ok_or(self.bytes.len())?;
            let inner = self.text.get(start + 1..end).ok_or(start)?;
            let name = unescape_json(inner).ok_or(start)?;
            self.pos = end + 1;
            Ok(JsonPathLeg::Member(name))
        } else {
            let mut end = start;
            while let Some(&b) = self.bytes.get(end) {
                if is_space(b) || matches!(b, b'[' | b'.' | b'*') {
                    break;
                }
                end += 1;
            }
            let raw = self.text.get(start..end).ok_or(start)?;
            let name = unescape_json(raw).ok_or(start)?;
            if !is_identifier(&name) {
                return Err(start);
            }
            self.pos = end;
            Ok(JsonPathLeg::Member(name))
        }
    }
}

/// ECMAScript identifier check; exact for ASCII, permissive for other
/// characters (see [`parse_json_path`]).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let ok_first = |c: char| !c.is_ascii() || c.is_ascii_alphabetic() || c == '$' || c == '_';
    ok_first(first) && chars.all(|c| ok_first(c) || c.is_ascii_digit())
}

/// Unescape the inside of a JSON string literal (no surrounding quotes).
/// Raw `"` and control characters are not allowed, like in JSON.
fn unescape_json(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\u{0}'..='\u{1f}' => return None,
            '\\' => {
                let c = match chars.next()? {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let hi = hex4(&mut chars)?;
                        if (0xd800..0xdc00).contains(&hi) {
                            if chars.next()? != '\\' || chars.next()? != 'u' {
                                return None;
                            }
                            let lo = hex4(&mut chars)?;
                            if !(0xdc00..0xe000).contains(&lo) {
                                return None;
                            }
                            char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))?
                        } else {
                            char::from_u32(hi)?
                        }
                    }
                    _ => return None,
                };
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(s: &str) -> JsonPathLeg {
        JsonPathLeg::Member(s.to_owned())
    }

    fn cell(index: u32) -> JsonPathLeg {
        JsonPathLeg::ArrayCell {
            index,
            from_end: false,
        }
    }

    fn diff_bytes(op: u8, path: &str, value: Option<&[u8]>) -> Vec<u8> {
        let mut out = vec![op];
        push_packed_len(&mut out, path.len());
        out.extend_from_slice(path.as_bytes());
        if let Some(v) = value {
            push_packed_len(&mut out, v.len());
            out.extend_from_slice(v);
        }
        out
    }

    fn obj(members: &[(&str, JsonDom)]) -> JsonDom {
        JsonDom::Object(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn apply(
        doc: &JsonDom,
        diffs: &[(JsonDiffOp, &str, Option<JsonDom>)],
    ) -> Result<JsonDom, JsonError> {
        let values: Vec<Option<Vec<u8>>> = diffs
            .iter()
            .map(|(_, _, v)| v.as_ref().map(JsonDom::to_binary))
            .collect();
        let mut buf = Vec::new();
        for ((op, path, _), value) in diffs.iter().zip(&values) {
            JsonDiff {
                op: *op,
                path,
                value: value.as_deref().map(JsonBinary::new),
            }
            .write_to(&mut buf);
        }
        let parsed = parse_json_diffs(&buf)?;
        let mut doc = doc.clone();
        apply_json_diffs(&mut doc, &parsed)?;
        Ok(doc)
    }

    #[test]
    fn paths() {
        assert_eq!(parse_json_path("$"), Ok(vec![]));
        assert_eq!(parse_json_path(" $ "), Ok(vec![]));
        assert_eq!(parse_json_path("$.a[1]"), Ok(vec![member("a"), cell(1)]));
        assert_eq!(
            parse_json_path("$.\"a b\".c_1$[last][last-2][ last - 3 ]"),
            Ok(vec![
                member("a b"),
                member("c_1$"),
                JsonPathLeg::ArrayCell {
                    index: 0,
                    from_end: true
                },
                JsonPathLeg::ArrayCell {
                    index: 2,
                    from_end: true
                },
                JsonPathLeg::ArrayCell {
                    index: 3,
                    from_end: true
                },
            ])
        );
        assert_eq!(
            parse_json_path("$.\"q\\\"\\\\\\u00e9\\ud83d\\ude00\""),
            Ok(vec![member("q\"\\é😀")])
        );
        assert_eq!(parse_json_path("$.é"), Ok(vec![member("é")]));
        assert_eq!(parse_json_path("$.\"\""), Ok(vec![member("")]));
        assert_eq!(
            parse_json_path("$.*[*]**.a[1 to 3][last-1 to last]"),
            Ok(vec![
                JsonPathLeg::MemberWildcard,
                JsonPathLeg::ArrayWildcard,
                JsonPathLeg::Ellipsis,
                member("a"),
                JsonPathLeg::ArrayRange {
                    first: 1,
                    first_from_end: false,
                    last: 3,
                    last_from_end: false
                },
                JsonPathLeg::ArrayRange {
                    first: 1,
                    first_from_end: true,
                    last: 0,
                    last_from_end: true
                },
            ])
        );
        assert_eq!(parse_json_path("$[4294967295]"), Ok(vec![cell(u32::MAX)]));
        for bad in [
            "",
            "a",
            "$.",
            "$.1a",
            "$.a-b",
            "$[",
            "$[]",
            "$[a]",
            "$[-1]",
            "$[4294967296]",
            "$**",
            "$***.a",
            "$.\"unterminated",
            "$.\"bad\\x\"",
            "$[3 to 1]",
            "$[last to last-1]",
            "$[1]x",
            "$.\"\\ud800\"",
        ] {
            assert!(
                matches!(parse_json_path(bad), Err(JsonError::BadPath { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_wire_format() {
        let value = JsonDom::Int(7).to_binary();
        let mut buf = diff_bytes(0, "$.a", Some(&value));
        buf.extend(diff_bytes(1, "$.b[0]", Some(&[4, 1])));
        buf.extend(diff_bytes(2, "$.c", None));
        let diffs = parse_json_diffs(&buf);
        assert_eq!(
            diffs,
            Ok(vec![
                JsonDiff {
                    op: JsonDiffOp::Replace,
                    path: "$.a",
                    value: Some(JsonBinary::new(&value))
                },
                JsonDiff {
                    op: JsonDiffOp::Insert,
                    path: "$.b[0]",
                    value: Some(JsonBinary::new(&[4, 1]))
                },
                JsonDiff {
                    op: JsonDiffOp::Remove,
                    path: "$.c",
                    value: None
                },
            ])
        );
        assert_eq!(parse_json_diffs(&[]), Ok(vec![]));
        // Empty value means null.
        let buf = diff_bytes(0, "$.a", Some(&[]));
        let diffs = parse_json_diffs(&buf).unwrap_or_default();
        assert_eq!(
            diffs.first().and_then(|d| d.value).map(|v| v.to_dom()),
            Some(Ok(JsonDom::Null))
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            parse_json_diffs(&[3, 1, b'$']),
            Err(JsonError::BadDiffOp { op: 3, offset: 0 })
        );
        assert!(matches!(
            parse_json_diffs(&[0]),
            Err(JsonError::Truncated { .. })
        ));
        assert!(matches!(
            parse_json_diffs(&[2, 5, b'$']),
            Err(JsonError::Truncated { .. })
        ));
        assert!(matches!(
            parse_json_diffs(&[2, 251]),
            Err(JsonError::BadLength { .. })
        ));
        assert!(matches!(
            parse_json_diffs(&[2, 252, 1]),
            Err(JsonError::Truncated { .. })
        ));
        assert!(
            parse_json_diffs(&[2, 254, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
        assert!(matches!(
            parse_json_diffs(&[2, 1, b'x']),
            Err(JsonError::BadPath { .. })
        ));
        assert!(matches!(
            parse_json_diffs(&[2, 2, b'$', 0xff]),
            Err(JsonError::InvalidUtf8 { offset: 2 })
        ));
        // REPLACE without its value.
        assert!(matches!(
            parse_json_diffs(&diff_bytes(0, "$.a", None)),
            Err(JsonError::Truncated { .. })
        ));
        // Invalid value.
        assert!(matches!(
            parse_json_diffs(&diff_bytes(0, "$.a", Some(&[4, 9]))),
            Err(JsonError::BadLiteral { .. })
        ));
    }

    #[test]
    fn packed_lengths() {
        for len in [
            0usize, 250, 251, 300, 65_535, 65_536, 16_777_215, 16_777_216,
        ] {
            let mut buf = Vec::new();
            push_packed_len(&mut buf, len);
            let header = buf.len();
            buf.resize(header + len, b'x');
            let mut pos = 0;
            let field = read_packed_field(&buf, &mut pos);
            assert_eq!(field.map(<[u8]>::len), Ok(len));
            assert_eq!(pos, buf.len());
        }
    }

    #[test]
    fn replace_insert_remove_object() {
        let doc = obj(&[
            ("a", JsonDom::Int(1)),
            ("b", JsonDom::Array(vec![JsonDom::Int(1), JsonDom::Int(2)])),
        ]);
        let r = apply(
            &doc,
            &[(
                JsonDiffOp::Replace,
                "$.a",
                Some(JsonDom::String("x".into())),
            )],
        );
        assert_eq!(
            r.map(|d| d.to_text()),
            Ok("{\"a\": \"x\", \"b\": [1, 2]}".to_owned())
        );
        // Insert keeps canonical order: "c" (len 1) before "aa" (len 2).
        let r = apply(
            &doc,
            &[
                (JsonDiffOp::Insert, "$.aa", Some(JsonDom::Null)),
                (JsonDiffOp::Insert, "$.\"\"", Some(JsonDom::Bool(true))),
                (JsonDiffOp::Insert, "$.c", Some(JsonDom::Int(3))),
            ],
        );
        assert_eq!(
            r.map(|d| d.to_text()),
            Ok("{\"\": true, \"a\": 1, \"b\": [1, 2], \"c\": 3, \"aa\": null}".to_owned())
        );
        let r = apply(&doc, &[(JsonDiffOp::Remove, "$.a", None)]);
        assert_eq!(r.map(|d| d.to_text()), Ok("{\"b\": [1, 2]}".to_owned()));
        // Rejections.
        for (op, path, value) in [
            (JsonDiffOp::Replace, "$.zz", Some(JsonDom::Null)),
            (JsonDiffOp::Replace, "$", Some(JsonDom::Null)),
            (JsonDiffOp::Insert, "$.a", Some(JsonDom::Null)),
            (JsonDiffOp::Insert, "$.x.y", Some(JsonDom::Null)),
            (JsonDiffOp::Insert, "$[0]", Some(JsonDom::Null)),
            (JsonDiffOp::Insert, "$.a.b", Some(JsonDom::Null)),
            (JsonDiffOp::Remove, "$.zz", None),
            (JsonDiffOp::Remove, "$", None),
            (JsonDiffOp::Remove, "$[0]", None),
            (JsonDiffOp::Remove, "$.*", None),
            (JsonDiffOp::Replace, "$.*", Some(JsonDom::Null)),
            (JsonDiffOp::Replace, "$**.a", Some(JsonDom::Null)),
            (JsonDiffOp::Replace, "$.b[*]", Some(JsonDom::Null)),
            (JsonDiffOp::Replace, "$.b[0 to 1]", Some(JsonDom::Null)),
            (JsonDiffOp::Replace, "$.a[0]", Some(JsonDom::Null)), // no auto-wrap
        ] {
            let r = apply(&doc, &[(op, path, value)]);
            assert!(
                matches!(r, Err(JsonError::DiffRejected { index: 0, .. })),
                "{op:?} {path}: {r:?}"
            );
        }
    }

    #[test]
    fn array_operations() {
        let doc = JsonDom::Array(vec![JsonDom::Int(0), JsonDom::Int(1), JsonDom::Int(2)]);
        let t =
            |diffs: &[(JsonDiffOp, &str, Option<JsonDom>)]| apply(&doc, diffs).map(|d| d.to_text());
        assert_eq!(
            t(&[(JsonDiffOp::Replace, "$[1]", Some(JsonDom::Int(9)))]),
            Ok("[0, 9, 2]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Replace, "$[last]", Some(JsonDom::Int(9)))]),
            Ok("[0, 1, 9]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Replace, "$[last-2]", Some(JsonDom::Int(9)))]),
            Ok("[9, 1, 2]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Insert, "$[0]", Some(JsonDom::Int(9)))]),
            Ok("[9, 0, 1, 2]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Insert, "$[3]", Some(JsonDom::Int(9)))]),
            Ok("[0, 1, 2, 9]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Insert, "$[100]", Some(JsonDom::Int(9)))]),
            Ok("[0, 1, 2, 9]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Insert, "$[last]", Some(JsonDom::Int(9)))]),
            Ok("[0, 1, 9, 2]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Insert, "$[last-9]", Some(JsonDom::Int(9)))]),
            Ok("[9, 0, 1, 2]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Remove, "$[0]", None)]),
            Ok("[1, 2]".into())
        );
        assert_eq!(
            t(&[(JsonDiffOp::Remove, "$[last]", None)]),
            Ok("[0, 1]".into())
        );
        assert!(matches!(
            t(&[(JsonDiffOp::Remove, "$[3]", None)]),
            Err(JsonError::DiffRejected { .. })
        ));
        assert!(matches!(
            t(&[(JsonDiffOp::Remove, "$[last-3]", None)]),
            Err(JsonError::DiffRejected { .. })
        ));
        assert!(matches!(
            t(&[(JsonDiffOp::Replace, "$[3]", Some(JsonDom::Null))]),
            Err(JsonError::DiffRejected { .. })
        ));
        assert!(matches!(
            t(&[(JsonDiffOp::Insert, "$.a", Some(JsonDom::Null))]),
            Err(JsonError::DiffRejected { .. })
        ));
        // Sequences: later diffs see earlier results; the failing index is reported.
        let r = t(&[
            (JsonDiffOp::Remove, "$[0]", None),
            (JsonDiffOp::Remove, "$[0]", None),
            (JsonDiffOp::Remove, "$[0]", None),
            (JsonDiffOp::Remove, "$[0]", None),
        ]);
        assert!(
            matches!(r, Err(JsonError::DiffRejected { index: 3, .. })),
            "{r:?}"
        );
    }

    #[test]
    fn nested_paths() {
        let doc = obj(&[(
            "a b",
            JsonDom::Array(vec![obj(&[("x", JsonDom::Array(vec![]))])]),
        )]);
        let r = apply(
            &doc,
            &[
                (
                    JsonDiffOp::Insert,
                    "$.\"a b\"[0].x[0]",
                    Some(JsonDom::Decimal("1.50".into())),
                ),
                (
                    JsonDiffOp::Insert,
                    "$.\"a b\"[0].y",
                    Some(JsonDom::Date(crate::json::pack_datetime(
                        2012, 3, 18, 0, 0, 0, 0,
                    ))),
                ),
            ],
        );
        assert_eq!(
            r.map(|d| d.to_text()),
            Ok("{\"a b\": [{\"x\": [1.50], \"y\": \"2012-03-18\"}]}".to_owned())
        );
    }

    #[test]
    fn depth_limit() {
        let mut deep = JsonDom::Null;
        for _ in 0..MAX_DEPTH - 1 {
            deep = JsonDom::Array(vec![deep]);
        }
        let doc = JsonDom::Array(vec![JsonDom::Null]);
        // Depth 1 (outer array) + 99 = 100: fine.
        assert!(apply(&doc, &[(JsonDiffOp::Replace, "$[0]", Some(deep.clone()))]).is_ok());
        let deeper = JsonDom::Array(vec![deep]);
        assert_eq!(
            apply(&doc, &[(JsonDiffOp::Replace, "$[0]", Some(deeper))]),
            Err(JsonError::TooDeep)
        );
    }

    #[test]
    fn missing_value_is_rejected() {
        let mut doc = JsonDom::Array(vec![JsonDom::Null]);
        let diffs = [JsonDiff {
            op: JsonDiffOp::Replace,
            path: "$[0]",
            value: None,
        }];
        assert!(matches!(
            apply_json_diffs(&mut doc, &diffs),
            Err(JsonError::DiffRejected { .. })
        ));
    }

    proptest! {
        #[test]
        fn random_diff_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(diffs) = parse_json_diffs(&bytes) {
                let mut doc = JsonDom::Object(vec![("a".into(), JsonDom::Array(vec![JsonDom::Int(1)]))]);
                let _ = apply_json_diffs(&mut doc, &diffs);
            }
        }

        #[test]
        fn random_paths_never_panic(path in "\\PC{0,16}|[$.\\[\\]a-z0-9 *\"\\\\-]{0,16}") {
            let _ = parse_json_path(&path);
        }

        #[test]
        fn array_insert_remove_inverse(len in 0usize..6, idx in 0u32..8, from_end in any::<bool>()) {
            let doc = JsonDom::Array((0..len).map(|i| JsonDom::Int(i as i64)).collect());
            let path = if from_end { format!("$[last-{idx}]") } else { format!("$[{idx}]") };
            let inserted = apply(&doc, &[(JsonDiffOp::Insert, &path, Some(JsonDom::Null))]);
            prop_assert!(inserted.is_ok());
            let inserted = inserted.unwrap_or(JsonDom::Null);
            let JsonDom::Array(items) = &inserted else { return Err(TestCaseError::fail("not array")) };
            prop_assert_eq!(items.len(), len + 1);
            let pos = items.iter().position(|v| *v == JsonDom::Null).unwrap_or(usize::MAX);
            let removed = apply(&inserted, &[(JsonDiffOp::Remove, &format!("$[{pos}]"), None)]);
            prop_assert_eq!(removed, Ok(doc));
        }
    }
}
