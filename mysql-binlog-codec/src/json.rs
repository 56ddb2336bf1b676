//! MySQL binary JSON: the storage and binlog format of `JSON` columns.
//!
//! A document is a type byte followed by the value. Containers (objects and
//! arrays) come in a *small* flavour (2-byte offsets and sizes) and a *large*
//! flavour (4-byte offsets and sizes):
//!
//! ```text
//! object := count size key-entry* value-entry* key* value*
//! array  := count size value-entry* value*
//! key-entry   := key-offset (2|4 bytes) key-length (2 bytes)
//! value-entry := type (1 byte) offset-or-inlined-value (2|4 bytes)
//! ```
//!
//! Offsets are relative to the first byte after the container's type byte.
//! Literals and 16-bit integers are always inlined in value entries, 32-bit
//! integers only in large containers. All integers are little-endian.
//! Strings are a variable-length length (7 bits per byte, low group first,
//! at most 5 bytes) followed by UTF-8 bytes. Opaque values carry a MySQL
//! field type byte, a variable-length length and raw data; DECIMAL and the
//! temporal types are stored this way.
//!
//! Rendering ([`JsonBinary::write_text`], [`JsonDom::write_text`]) follows
//! MySQL's `Json_wrapper::to_string()` (what `SELECT json_col` returns).
//!
//! Decoding is defensive: every malformed input yields a [`JsonError`], the
//! nesting depth is capped at [`MAX_DEPTH`], and the total number of bytes
//! that may be visited is bounded by the input length, so documents whose
//! value entries point at shared or overlapping data (which MySQL never
//! writes) are rejected instead of being expanded exponentially.

use std::cmp::Ordering;
use std::fmt::{Display, Write as _};

/// Maximum nesting depth of arrays and objects (MySQL's
/// `JSON_DOCUMENT_MAX_DEPTH`). The outermost container has depth 1.
pub const MAX_DEPTH: usize = 100;

const TYPE_SMALL_OBJECT: u8 = 0x00;
const TYPE_LARGE_OBJECT: u8 = 0x01;
const TYPE_SMALL_ARRAY: u8 = 0x02;
const TYPE_LARGE_ARRAY: u8 = 0x03;
const TYPE_LITERAL: u8 = 0x04;
const TYPE_INT16: u8 = 0x05;
const TYPE_UINT16: u8 = 0x06;
const TYPE_INT32: u8 = 0x07;
const TYPE_UINT32: u8 = 0x08;
const TYPE_INT64: u8 = 0x09;
const TYPE_UINT64: u8 = 0x0a;
const TYPE_DOUBLE: u8 = 0x0b;
const TYPE_STRING: u8 = 0x0c;
const TYPE_OPAQUE: u8 = 0x0f;

const LITERAL_NULL: u8 = 0x00;
const LITERAL_TRUE: u8 = 0x01;
const LITERAL_FALSE: u8 = 0x02;

/// MySQL `MYSQL_TYPE_TIMESTAMP`.
const FIELD_TIMESTAMP: u8 = 7;
/// MySQL `MYSQL_TYPE_DATE`.
const FIELD_DATE: u8 = 10;
/// MySQL `MYSQL_TYPE_TIME`.
const FIELD_TIME: u8 = 11;
/// MySQL `MYSQL_TYPE_DATETIME`.
const FIELD_DATETIME: u8 = 12;
/// MySQL `MYSQL_TYPE_NEWDECIMAL`.
const FIELD_NEWDECIMAL: u8 = 246;
/// MySQL `MYSQL_TYPE_VAR_STRING` (opaque values of this type print as strings).
const FIELD_VAR_STRING: u8 = 253;

/// Error decoding MySQL binary JSON (or a JSON diff, see `json_diff`).
///
/// Offsets are byte positions in the buffer handed to the decoding function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The input ends before a field that must be present.
    #[error("JSON data truncated: {needed} byte(s) needed at offset {offset}")]
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// How many bytes the field needs.
        needed: usize,
    },
    /// Unknown value type byte.
    #[error("invalid binary JSON type byte {type_byte:#04x} at offset {offset}")]
    BadType {
        /// The type byte found.
        type_byte: u8,
        /// Where it was found.
        offset: usize,
    },
    /// A literal other than null (0), true (1) or false (2).
    #[error("invalid binary JSON literal {value:#04x} at offset {offset}")]
    BadLiteral {
        /// The literal byte found.
        value: u8,
        /// Where it was found.
        offset: usize,
    },
    /// A malformed variable-length or packed length field.
    #[error("malformed length field at offset {offset}")]
    BadLength {
        /// Where the length field starts.
        offset: usize,
    },
    /// A container whose declared size exceeds the bytes available to it.
    #[error("JSON container at offset {offset} declares {size} bytes, only {available} available")]
    BadContainerSize {
        /// Where the container starts (after its type byte).
        offset: usize,
        /// The declared size.
        size: usize,
        /// The bytes available.
        available: usize,
    },
    /// A container whose header (counts and entries) does not fit in its size.
    #[error("JSON container at offset {offset} has a header larger than its size")]
    BadHeader {
        /// Where the container starts (after its type byte).
        offset: usize,
    },
    /// A value or key entry pointing outside its container.
    #[error("JSON entry at offset {offset} points outside its container")]
    BadEntryOffset {
        /// Where the entry is.
        offset: usize,
    },
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    #[error("JSON document exceeds the maximum nesting depth of {MAX_DEPTH}")]
    TooDeep,
    /// A string, key or path that is not valid UTF-8.
    #[error("invalid UTF-8 at offset {offset}")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
    },
    /// A DECIMAL opaque value that cannot be decoded.
    #[error("invalid DECIMAL value in JSON at offset {offset}")]
    BadDecimal {
        /// Where the opaque data starts.
        offset: usize,
    },
    /// A DATE/TIME/DATETIME/TIMESTAMP opaque value that is not 8 bytes long.
    #[error("invalid temporal value (field type {field_type}) in JSON at offset {offset}")]
    BadTemporal {
        /// The MySQL field type.
        field_type: u8,
        /// Where the opaque data starts.
        offset: usize,
    },
    /// Value entries referencing shared or overlapping data, detected because
    /// decoding would visit more bytes than the input holds.
    #[error("JSON values overlap (shared or cyclic data) near offset {offset}")]
    Overlap {
        /// Where the budget ran out.
        offset: usize,
    },
    /// A value that cannot be represented in the binary format.
    #[error("JSON value cannot be encoded: {reason}")]
    TooLarge {
        /// What is too large.
        reason: &'static str,
    },
    /// A JSON diff with an unknown operation byte.
    #[error("invalid JSON diff operation {op} at offset {offset}")]
    BadDiffOp {
        /// The operation byte found.
        op: u8,
        /// Where it was found.
        offset: usize,
    },
    /// A JSON path that does not parse.
    #[error("invalid JSON path {path:?} (error at byte {position})")]
    BadPath {
        /// The path text.
        path: String,
        /// The byte position of the error within the path.
        position: usize,
    },
    /// A JSON diff that cannot be applied to the document (MySQL would
    /// reject it with `ER_COULD_NOT_APPLY_JSON_DIFF`).
    #[error("JSON diff #{index} on path {path:?} cannot be applied: {reason}")]
    DiffRejected {
        /// Index of the diff in the list.
        index: usize,
        /// The diff's path.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}

/// A borrowed MySQL binary JSON document (the bytes of a JSON column value:
/// type byte + value). An empty slice is the JSON `null` literal, as MySQL
/// treats empty JSON column values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonBinary<'a> {
    bytes: &'a [u8],
}

impl<'a> JsonBinary<'a> {
    /// Wrap the bytes of a JSON column value. Nothing is validated here.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Append the JSON text exactly as MySQL's `SELECT` renders it.
    ///
    /// On error nothing is appended (`out` is restored to its old length).
    pub fn write_text(&self, out: &mut String) -> Result<(), JsonError> {
        let old_len = out.len();
        let result = self.write_to_sink(out);
        if result.is_err() {
            out.truncate(old_len);
        }
        result
    }

    /// The JSON text exactly as MySQL's `SELECT` renders it.
    pub fn to_text(&self) -> Result<String, JsonError> {
        let mut out = String::new();
        self.write_to_sink(&mut out)?;
        Ok(out)
    }

    /// Check the whole document without producing output.
    pub fn validate(&self) -> Result<(), JsonError> {
        self.write_to_sink(&mut NullSink)
    }

    /// Parse into an owned DOM (used to apply partial-update diffs).
    pub fn to_dom(&self) -> Result<JsonDom, JsonError> {
        let mut reader = Reader::new(self.bytes);
        let root = reader.root()?;
        reader.build_dom(root, 0)
    }

    fn write_to_sink<S: Sink>(&self, out: &mut S) -> Result<(), JsonError> {
        let mut reader = Reader::new(self.bytes);
        let root = reader.root()?;
        reader.write_node(root, out, 0)
    }
}

/// An owned JSON document with MySQL's value kinds.
///
/// Documents built by [`JsonBinary::to_dom`] keep object members in stored
/// order, which for MySQL-written data is the canonical order (shorter keys
/// first, equal lengths compared bytewise); see [`key_order`].
#[derive(Debug, Clone, PartialEq)]
pub enum JsonDom {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A double.
    Double(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<JsonDom>),
    /// An object; members should be in canonical key order ([`key_order`]).
    Object(Vec<(String, JsonDom)>),
    /// A DECIMAL scalar, as MySQL prints it (e.g. `-12.50`: optional `-`,
    /// integer digits, and `.` plus exactly `scale` digits when scale > 0).
    Decimal(String),
    /// A DATE scalar as MySQL's packed longlong
    /// (`TIME_to_longlong_date_packed`); see [`pack_datetime`].
    Date(i64),
    /// A TIME scalar as MySQL's packed longlong
    /// (`TIME_to_longlong_time_packed`); see [`pack_time`].
    Time(i64),
    /// A DATETIME scalar as MySQL's packed longlong
    /// (`TIME_to_longlong_datetime_packed`); see [`pack_datetime`].
    DateTime(i64),
    /// A TIMESTAMP scalar, same packing as [`JsonDom::DateTime`].
    Timestamp(i64),
    /// Any other opaque value: MySQL field type and raw data. Rendered as
    /// `"base64:typeNN:..."`, except field type 253 (VAR_STRING), which
    /// MySQL renders as a plain string.
    Opaque {
        /// MySQL field type (`enum_field_types`).
        field_type: u8,
        /// Raw data.
        data: Vec<u8>,
    },
}

impl JsonDom {
    /// Append the JSON text exactly as MySQL's `SELECT` renders it.
    ///
    /// Recursion follows the document's nesting; documents produced by this
    /// module never nest deeper than [`MAX_DEPTH`].
    pub fn write_text(&self, out: &mut String) {
        write_dom(self, out);
    }

    /// The JSON text exactly as MySQL's `SELECT` renders it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        write_dom(self, &mut out);
        out
    }

    /// Encode to MySQL binary JSON, like MySQL's `json_binary::serialize`
    /// (small containers unless an offset needs 4 bytes, canonical key
    /// order, duplicate keys resolved in favour of the last one).
    ///
    /// Documents that cannot be represented (see [`JsonDom::try_to_binary`])
    /// are encoded as the JSON `null` literal.
    pub fn to_binary(&self) -> Vec<u8> {
        self.try_to_binary()
            .unwrap_or_else(|_| vec![TYPE_LITERAL, LITERAL_NULL])
    }

    /// Encode to MySQL binary JSON, failing for documents that nest deeper
    /// than [`MAX_DEPTH`], keys longer than 65535 bytes, values larger than
    /// 4 GiB, or unparsable [`JsonDom::Decimal`] text.
    pub fn try_to_binary(&self) -> Result<Vec<u8>, JsonError> {
        let mut out = vec![0u8];
        let type_byte = match encode_value(self, &mut out, false, 0) {
            Ok(t) => t,
            Err(EncodeError::Fatal(e)) => return Err(e),
            Err(EncodeError::TooBig) => {
                return Err(JsonError::TooLarge {
                    reason: "document larger than 4 GiB",
                });
            }
        };
        if let Some(first) = out.first_mut() {
            *first = type_byte;
        }
        Ok(out)
    }

    /// Nesting depth of arrays and objects (a scalar has depth 0, `[]` 1).
    pub fn depth(&self) -> usize {
        match self {
            JsonDom::Array(items) => 1 + items.iter().map(JsonDom::depth).max().unwrap_or(0),
            JsonDom::Object(members) => {
                1 + members.iter().map(|(_, v)| v.depth()).max().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// MySQL's canonical object key order: shorter keys first, keys of equal
/// length compared bytewise.
pub fn key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Build MySQL's packed longlong for a DATE/DATETIME/TIMESTAMP
/// (`TIME_to_longlong_datetime_packed`; a DATE has a zero time part).
/// Fields are not range-checked; out-of-range values give garbage like in
/// MySQL.
pub fn pack_datetime(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    microsecond: u32,
) -> i64 {
    let ymd = ((i64::from(year) * 13 + i64::from(month)) << 5) | i64::from(day);
    let hms = (i64::from(hour) << 12) | (i64::from(minute) << 6) | i64::from(second);
    (((ymd << 17) | hms) << 24).wrapping_add(i64::from(microsecond))
}

/// Build MySQL's packed longlong for a TIME (`TIME_to_longlong_time_packed`).
pub fn pack_time(negative: bool, hour: u32, minute: u32, second: u32, microsecond: u32) -> i64 {
    let hms = (i64::from(hour) << 12) | (i64::from(minute) << 6) | i64::from(second);
    let packed = (hms << 24).wrapping_add(i64::from(microsecond));
    if negative {
        packed.wrapping_neg()
    } else {
        packed
    }
}

// ---------------------------------------------------------------------------
// Output sinks
// ---------------------------------------------------------------------------

trait Sink {
    fn push_str(&mut self, s: &str);
    fn push(&mut self, c: char);
    fn push_display<D: Display>(&mut self, d: D);
}

impl Sink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
    fn push_display<D: Display>(&mut self, d: D) {
        // Writing to a String cannot fail.
        let _ = write!(self, "{d}");
    }
}

struct NullSink;

impl Sink for NullSink {
    fn push_str(&mut self, _s: &str) {}
    fn push(&mut self, _c: char) {}
    fn push_display<D: Display>(&mut self, _d: D) {}
}

// ---------------------------------------------------------------------------
// Binary reader
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Container {
    object: bool,
    large: bool,
    /// Absolute position of the container (after its type byte).
    start: usize,
    /// Absolute end (exclusive) of the container.
    end: usize,
    count: usize,
}

impl Container {
    fn offset_size(&self) -> usize {
        if self.large { 4 } else { 2 }
    }
    fn key_entry_size(&self) -> usize {
        self.offset_size() + 2
    }
    fn value_entry_size(&self) -> usize {
        self.offset_size() + 1
    }
    /// Header size relative to `start`; validated against the size at parse time.
    fn header_size(&self) -> usize {
        let keys = if self.object {
            self.key_entry_size()
        } else {
            0
        };
        2 * self.offset_size() + self.count * (keys + self.value_entry_size())
    }
}

#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Container(Container),
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str {
        bytes: &'a [u8],
        offset: usize,
    },
    Opaque {
        field_type: u8,
        data: &'a [u8],
        offset: usize,
    },
}

struct Reader<'a> {
    buf: &'a [u8],
    /// Bytes that may still be visited (keys, headers, non-inlined scalars).
    budget: usize,
}

fn inlined_type(type_byte: u8, large: bool) -> bool {
    match type_byte {
        TYPE_LITERAL | TYPE_INT16 | TYPE_UINT16 => true,
        TYPE_INT32 | TYPE_UINT32 => large,
        _ => false,
    }
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            budget: buf.len(),
        }
    }

    /// `n` bytes at `pos`, which must end at or before `end`.
    fn slice(&self, pos: usize, n: usize, end: usize) -> Result<&'a [u8], JsonError> {
        let truncated = JsonError::Truncated {
            offset: pos,
            needed: n,
        };
        match pos.checked_add(n) {
            Some(stop) if stop <= end => self.buf.get(pos..stop).ok_or(truncated),
            _ => Err(truncated),
        }
    }

    fn array<const N: usize>(&self, pos: usize, end: usize) -> Result<[u8; N], JsonError> {
        let s = self.slice(pos, N, end)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8_at(&self, pos: usize, end: usize) -> Result<u8, JsonError> {
        Ok(self.array::<1>(pos, end)?[0])
    }

    fn u16_at(&self, pos: usize, end: usize) -> Result<u16, JsonError> {
        Ok(u16::from_le_bytes(self.array(pos, end)?))
    }

    fn u32_at(&self, pos: usize, end: usize) -> Result<u32, JsonError> {
        Ok(u32::from_le_bytes(self.array(pos, end)?))
    }

    fn offset_or_size(&self, pos: usize, large: bool, end: usize) -> Result<usize, JsonError> {
        let v = if large {
            self.u32_at(pos, end)?
        } else {
            u32::from(self.u16_at(pos, end)?)
        };
        usize::try_from(v).map_err(|_| JsonError::BadLength { offset: pos })
    }

    /// MySQL's `read_variable_length`: 7 bits per byte, low group first,
    /// at most 5 bytes, value at most `u32::MAX`. Returns (value, bytes used).
    fn var_len(&self, pos: usize, end: usize) -> Result<(usize, usize), JsonError> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let byte = self.u8_at(pos + i, end)?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if value > u64::from(u32::MAX) {
                    return Err(JsonError::BadLength { offset: pos });
                }
                let v = usize::try_from(value).map_err(|_| JsonError::BadLength { offset: pos })?;
                return Ok((v, i + 1));
            }
        }
        Err(JsonError::BadLength { offset: pos })
    }

    fn consume(&mut self, n: usize, offset: usize) -> Result<(), JsonError> {
        match self.budget.checked_sub(n) {
            Some(rest) => {
                self.budget = rest;
                Ok(())
            }
            None => Err(JsonError::Overlap { offset }),
        }
    }

    fn root(&mut self) -> Result<Node<'a>, JsonError> {
        match self.buf.first() {
            None => Ok(Node::Null),
            Some(&type_byte) => self.value(type_byte, 1, self.buf.len(), 0),
        }
    }

    /// Parse the value of type `type_byte` stored at `pos` (bounded by `end`).
    /// `type_offset` is where the type byte is, for error reporting.
    fn value(
        &mut self,
        type_byte: u8,
        pos: usize,
        end: usize,
        type_offset: usize,
    ) -> Result<Node<'a>, JsonError> {
        match type_byte {
            TYPE_SMALL_OBJECT | TYPE_LARGE_OBJECT | TYPE_SMALL_ARRAY | TYPE_LARGE_ARRAY => {
                self.container(type_byte, pos, end)
            }
            _ => {
                let (node, used) = self.scalar(type_byte, pos, end, type_offset)?;
                self.consume(used, pos)?;
                Ok(node)
            }
        }
    }

    fn container(&mut self, type_byte: u8, pos: usize, end: usize) -> Result<Node<'a>, JsonError> {
        let object = matches!(type_byte, TYPE_SMALL_OBJECT | TYPE_LARGE_OBJECT);
        let large = matches!(type_byte, TYPE_LARGE_OBJECT | TYPE_LARGE_ARRAY);
        let os = if large { 4 } else { 2 };
        let count = self.offset_or_size(pos, large, end)?;
        let size = self.offset_or_size(pos + os, large, end)?;
        // Both reads succeeded, so pos + 2 * os <= end.
        let available = end - pos;
        if size > available {
            return Err(JsonError::BadContainerSize {
                offset: pos,
                size,
                available,
            });
        }
        let entry = if object { 2 * os + 3 } else { os + 1 };
        let header = count
            .checked_mul(entry)
            .and_then(|h| h.checked_add(2 * os))
            .ok_or(JsonError::BadHeader { offset: pos })?;
        if header > size {
            return Err(JsonError::BadHeader { offset: pos });
        }
        self.consume(header, pos)?;
        Ok(Node::Container(Container {
            object,
            large,
            start: pos,
            end: pos + size,
            count,
        }))
    }

    /// Parse a scalar; returns the node and the number of bytes it occupies.
    fn scalar(
        &self,
        type_byte: u8,
        pos: usize,
        end: usize,
        type_offset: usize,
    ) -> Result<(Node<'a>, usize), JsonError> {
        Ok(match type_byte {
            TYPE_LITERAL => {
                let v = self.u8_at(pos, end)?;
                let node = match v {
                    LITERAL_NULL => Node::Null,
                    LITERAL_TRUE => Node::Bool(true),
                    LITERAL_FALSE => Node::Bool(false),
                    _ => {
                        return Err(JsonError::BadLiteral {
                            value: v,
                            offset: pos,
                        });
                    }
                };
                (node, 1)
            }
            TYPE_INT16 => (
                Node::Int(i64::from(i16::from_le_bytes(self.array(pos, end)?))),
                2,
            ),
            TYPE_UINT16 => (
                Node::UInt(u64::from(u16::from_le_bytes(self.array(pos, end)?))),
                2,
            ),
            TYPE_INT32 => (
                Node::Int(i64::from(i32::from_le_bytes(self.array(pos, end)?))),
                4,
            ),
            TYPE_UINT32 => (
                Node::UInt(u64::from(u32::from_le_bytes(self.array(pos, end)?))),
                4,
            ),
            TYPE_INT64 => (Node::Int(i64::from_le_bytes(self.array(pos, end)?)), 8),
            TYPE_UINT64 => (Node::UInt(u64::from_le_bytes(self.array(pos, end)?)), 8),
            TYPE_DOUBLE => (Node::Double(f64::from_le_bytes(self.array(pos, end)?)), 8),
            TYPE_STRING => {
                let (len, n) = self.var_len(pos, end)?;
                let bytes = self.slice(pos + n, len, end)?;
                (
                    Node::Str {
                        bytes,
                        offset: pos + n,
                    },
                    n + len,
                )
            }
            TYPE_OPAQUE => {
                let field_type = self.u8_at(pos, end)?;
                let (len, n) = self.var_len(pos + 1, end)?;
                let data = self.slice(pos + 1 + n, len, end)?;
                (
                    Node::Opaque {
                        field_type,
                        data,
                        offset: pos + 1 + n,
                    },
                    1 + n + len,
                )
            }
            _ => {
                return Err(JsonError::BadType {
                    type_byte,
                    offset: type_offset,
                });
            }
        })
    }

    /// The `i`-th value of a container (`i < c.count`).
    fn element(&mut self, c: &Container, i: usize) -> Result<Node<'a>, JsonError> {
        let ves = c.value_entry_size();
        let keys = if c.object {
            c.count * c.key_entry_size()
        } else {
            0
        };
        // Bounded by the header size, which was checked against the input.
        let rel_entry = 2 * c.offset_size() + keys + i * ves;
        let entry = c.start + rel_entry;
        let type_byte = self.u8_at(entry, c.end)?;
        if inlined_type(type_byte, c.large) {
            // Inlined values live in the header, already accounted for.
            let (node, _) = self.scalar(type_byte, entry + 1, entry + ves, entry)?;
            return Ok(node);
        }
        let value_offset = self.offset_or_size(entry + 1, c.large, c.end)?;
        if value_offset < rel_entry + ves || value_offset > c.end - c.start {
            return Err(JsonError::BadEntryOffset { offset: entry });
        }
        self.value(type_byte, c.start + value_offset, c.end, entry)
    }

    /// The `i`-th key of an object (`i < c.count`); returns bytes and offset.
    fn key(&mut self, c: &Container, i: usize) -> Result<(&'a [u8], usize), JsonError> {
        let os = c.offset_size();
        let entry = c.start + 2 * os + i * c.key_entry_size();
        let key_offset = self.offset_or_size(entry, c.large, c.end)?;
        let key_len = usize::from(self.u16_at(entry + os, c.end)?);
        let size = c.end - c.start;
        if key_offset < c.header_size() || key_offset.saturating_add(key_len) > size {
            return Err(JsonError::BadEntryOffset { offset: entry });
        }
        let pos = c.start + key_offset;
        self.consume(key_len, pos)?;
        Ok((self.slice(pos, key_len, c.end)?, pos))
    }

    fn write_node<S: Sink>(
        &mut self,
        node: Node<'a>,
        out: &mut S,
        depth: usize,
    ) -> Result<(), JsonError> {
        match node {
            Node::Container(c) => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
                out.push(if c.object { '{' } else { '[' });
                for i in 0..c.count {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if c.object {
                        let (key, offset) = self.key(&c, i)?;
                        let key = std::str::from_utf8(key)
                            .map_err(|_| JsonError::InvalidUtf8 { offset })?;
                        write_string(out, key);
                        out.push_str(": ");
                    }
                    let child = self.element(&c, i)?;
                    self.write_node(child, out, depth)?;
                }
                out.push(if c.object { '}' } else { ']' });
            }
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Node::Int(v) => out.push_display(v),
            Node::UInt(v) => out.push_display(v),
            Node::Double(v) => write_double(out, v),
            Node::Str { bytes, offset } => {
                let s =
                    std::str::from_utf8(bytes).map_err(|_| JsonError::InvalidUtf8 { offset })?;
                write_string(out, s);
            }
            Node::Opaque {
                field_type,
                data,
                offset,
            } => match field_type {
                FIELD_NEWDECIMAL => {
                    let text = decode_decimal(data).ok_or(JsonError::BadDecimal { offset })?;
                    out.push_str(&text);
                }
                FIELD_DATE | FIELD_TIME | FIELD_DATETIME | FIELD_TIMESTAMP => {
                    let packed = packed_temporal(data)
                        .ok_or(JsonError::BadTemporal { field_type, offset })?;
                    write_temporal(out, field_type, packed);
                }
                _ => write_plain_opaque(out, field_type, data),
            },
        }
        Ok(())
    }

    fn build_dom(&mut self, node: Node<'a>, depth: usize) -> Result<JsonDom, JsonError> {
        Ok(match node {
            Node::Container(c) => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
                if c.object {
                    let mut members = Vec::new();
                    for i in 0..c.count {
                        let (key, offset) = self.key(&c, i)?;
                        let key = std::str::from_utf8(key)
                            .map_err(|_| JsonError::InvalidUtf8 { offset })?;
                        let child = self.element(&c, i)?;
                        members.push((key.to_owned(), self.build_dom(child, depth)?));
                    }
                    JsonDom::Object(members)
                } else {
                    let mut items = Vec::new();
                    for i in 0..c.count {
                        let child = self.element(&c, i)?;
                        items.push(self.build_dom(child, depth)?);
                    }
                    JsonDom::Array(items)
                }
            }
            Node::Null => JsonDom::Null,
            Node::Bool(b) => JsonDom::Bool(b),
            Node::Int(v) => JsonDom::Int(v),
            Node::UInt(v) => JsonDom::UInt(v),
            Node::Double(v) => JsonDom::Double(v),
            Node::Str { bytes, offset } => JsonDom::String(
                std::str::from_utf8(bytes)
                    .map_err(|_| JsonError::InvalidUtf8 { offset })?
                    .to_owned(),
            ),
            Node::Opaque {
                field_type,
                data,
                offset,
            } => match field_type {
                FIELD_NEWDECIMAL => {
                    JsonDom::Decimal(decode_decimal(data).ok_or(JsonError::BadDecimal { offset })?)
                }
                FIELD_DATE | FIELD_TIME | FIELD_DATETIME | FIELD_TIMESTAMP => {
                    let packed = packed_temporal(data)
                        .ok_or(JsonError::BadTemporal { field_type, offset })?;
                    match field_type {
                        FIELD_DATE => JsonDom::Date(packed),
                        FIELD_TIME => JsonDom::Time(packed),
                        FIELD_DATETIME => JsonDom::DateTime(packed),
                        _ => JsonDom::Timestamp(packed),
                    }
                }
                _ => JsonDom::Opaque {
                    field_type,
                    data: data.to_vec(),
                },
            },
        })
    }
}

// ---------------------------------------------------------------------------
// Text rendering helpers (shared by the binary and DOM paths)
// ---------------------------------------------------------------------------

fn write_dom<S: Sink>(dom: &JsonDom, out: &mut S) {
    match dom {
        JsonDom::Null => out.push_str("null"),
        JsonDom::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsonDom::Int(v) => out.push_display(v),
        JsonDom::UInt(v) => out.push_display(v),
        JsonDom::Double(v) => write_double(out, *v),
        JsonDom::String(s) => write_string(out, s),
        JsonDom::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_dom(item, out);
            }
            out.push(']');
        }
        JsonDom::Object(members) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_dom(value, out);
            }
            out.push('}');
        }
        JsonDom::Decimal(text) => out.push_str(text),
        JsonDom::Date(p) => write_temporal(out, FIELD_DATE, *p),
        JsonDom::Time(p) => write_temporal(out, FIELD_TIME, *p),
        JsonDom::DateTime(p) => write_temporal(out, FIELD_DATETIME, *p),
        JsonDom::Timestamp(p) => write_temporal(out, FIELD_TIMESTAMP, *p),
        JsonDom::Opaque { field_type, data } => {
            let ft = *field_type;
            match ft {
                FIELD_NEWDECIMAL => match decode_decimal(data) {
                    Some(text) => out.push_str(&text),
                    None => write_plain_opaque(out, ft, data),
                },
                FIELD_DATE | FIELD_TIME | FIELD_DATETIME | FIELD_TIMESTAMP => {
                    match packed_temporal(data) {
                        Some(p) => write_temporal(out, ft, p),
                        None => write_plain_opaque(out, ft, data),
                    }
                }
                _ => write_plain_opaque(out, ft, data),
            }
        }
    }
}

/// A double-quoted JSON string escaped like MySQL's `double_quote()`:
/// `"` and `\` are backslash-escaped, `\b \t \n \f \r` use their short
/// forms, other bytes below 0x20 become `\u00xx` (lowercase hex), and
/// everything else (including `/`, DEL and non-ASCII UTF-8) is copied.
fn write_string<S: Sink>(out: &mut S, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b > 0x1f && b != b'"' && b != b'\\' {
            continue;
        }
        // `i` is an ASCII byte, hence a char boundary.
        out.push_str(s.get(start..i).unwrap_or(""));
        start = i + 1;
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
    out.push_str(s.get(start..).unwrap_or(""));
    out.push('"');
}

/// Render a double the way MySQL's JSON code does.
///
/// Evidence (mysql-server `sql-common/json_dom.cc`, `wrapper_to_string`,
/// case `J_DOUBLE`): the text is `my_gcvt(d, MY_GCVT_ARG_DOUBLE,
/// MY_GCVT_MAX_FIELD_WIDTH, ...)`, and `".0"` is appended when the result
/// contains neither `.` nor `e` ("to preserve the information that this is
/// a floating-point number"). `MY_GCVT_MAX_FIELD_WIDTH` is
/// `DBL_DIG + 4 + max(5, MAX_DECPT_FOR_F_FORMAT)` = 34, and
/// `MAX_DECPT_FOR_F_FORMAT` is `DBL_DIG` = 15 (`include/mysql/strings/dtoa.h`).
///
/// `my_gcvt` (`strings/dtoa.cc`) calls `dtoa(x, mode 4, width)`; with a
/// width of 33/34 digits that yields the shortest round-trip digit string
/// `d1..dn` and the decimal point position `decpt` (value = 0.d1..dn ×
/// 10^decpt). With that width every such string fits in 'f' format when
/// `decpt >= -14`, so `my_gcvt`'s choice reduces to: use 'f' format iff
/// `-14 <= decpt <= 15`, or `decpt > 15 && n > decpt` (only possible for
/// `decpt == 16, n == 17`); otherwise 'e' format.
///
/// * 'f': `0.000ddd` when `decpt <= 0`, `dd.ddd` when `0 < decpt < n`,
///   `ddd000` (digits padded with zeros) when `decpt >= n`;
/// * 'e': `d[.ddd]e[-]X` with the exponent `decpt - 1` printed without `+`
///   and without leading zeros.
///
/// Examples: 1.5 → `1.5`, 3.0 → `3.0`, 100.0 → `100.0`, 1e15 → `1e15`,
/// 1e14 → `100000000000000.0`, 1e300 → `1e300`, 1e-5 → `0.00001`,
/// 1e-15 → `0.000000000000001`, 1e-16 → `1e-16`, 1.5e-20 → `1.5e-20`,
/// 0.0 → `0.0`, -0.0 → `-0.0`. Non-finite values (not storable by MySQL)
/// print as `0.0`, like `my_gcvt`'s overflow result `0` plus `.0`.
/// The shortest digits come from Rust's `{:e}` formatting, which (like
/// `dtoa` mode 0/4) produces the shortest string that round-trips, choosing
/// the one closest to the exact value.
fn write_double<S: Sink>(out: &mut S, v: f64) {
    if !v.is_finite() {
        out.push_str("0.0");
        return;
    }
    let sci = format!("{v:e}");
    let (negative, unsigned) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci.as_str()),
    };
    let (mantissa, exponent) = unsigned.split_once('e').unwrap_or((unsigned, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let n = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let decpt = exponent + 1;

    let mut text = String::with_capacity(32);
    if negative {
        text.push('-');
    }
    if (-14..=15).contains(&decpt) || (decpt > 15 && n > decpt) {
        if decpt <= 0 {
            text.push_str("0.");
            for _ in 0..(-decpt) {
                text.push('0');
            }
            text.push_str(&digits);
        } else if decpt < n {
            let split = usize::try_from(decpt).unwrap_or(0);
            text.push_str(digits.get(..split).unwrap_or(""));
            text.push('.');
            text.push_str(digits.get(split..).unwrap_or(""));
        } else {
            text.push_str(&digits);
            for _ in 0..(decpt - n) {
                text.push('0');
            }
        }
    } else {
        let mut chars = digits.chars();
        if let Some(first) = chars.next() {
            text.push(first);
        }
        let rest = chars.as_str();
        if !rest.is_empty() {
            text.push('.');
            text.push_str(rest);
        }
        text.push('e');
        let exp = decpt - 1;
        if exp < 0 {
            text.push('-');
        }
        let _ = write!(text, "{}", exp.unsigned_abs());
    }
    if !text.contains(['.', 'e']) {
        text.push_str(".0");
    }
    out.push_str(&text);
}

/// Opaque values that are not DECIMAL or temporal: VAR_STRING (253) prints
/// as a string (invalid UTF-8 replaced), anything else as
/// `"base64:typeNN:<base64>"` (MySQL's `base64_encode`, which inserts a
/// newline every 76 output characters; the newline is then escaped).
fn write_plain_opaque<S: Sink>(out: &mut S, field_type: u8, data: &[u8]) {
    if field_type == FIELD_VAR_STRING {
        write_string(out, &String::from_utf8_lossy(data));
        return;
    }
    let mut text = format!("base64:type{field_type}:");
    base64_encode_mysql(data, &mut text);
    write_string(out, &text);
}

/// Base64 like MySQL's `base64_encode()` (mysys/base64.cc): standard
/// alphabet with `=` padding and a `\n` before every group that starts
/// after 76 output characters on the current line.
fn base64_encode_mysql(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(ALPHABET[(v & 0x3f) as usize]);
    let mut line = 0;
    for chunk in data.chunks(3) {
        if line == 76 {
            line = 0;
            out.push('\n');
        }
        let b0 = u32::from(chunk.first().copied().unwrap_or(0));
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let v = (b0 << 16) | (b1 << 8) | b2;
        out.push(sym(v >> 18));
        out.push(sym(v >> 12));
        out.push(if chunk.len() > 1 { sym(v >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(v) } else { '=' });
        line += 4;
    }
}

fn packed_temporal(data: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = data.try_into().ok()?;
    Some(i64::from_le_bytes(bytes))
}

/// MySQL's `format_two_digits`: values outside 0..=99 print as `00`.
fn push_two_digits(text: &mut String, v: u64) {
    let v = if v >= 100 { 0 } else { v };
    let _ = write!(text, "{v:02}");
}

/// Quoted temporal text as `my_TIME_to_str(t, to, 6)` prints it after
/// `TIME_from_longlong_*_packed` (mysys/my_time.cc):
/// DATE `YYYY-MM-DD`, DATETIME/TIMESTAMP `YYYY-MM-DD hh:mm:ss.ffffff`,
/// TIME `[-]hh:mm:ss.ffffff` (hours zero-padded to at least two digits).
fn write_temporal<S: Sink>(out: &mut S, field_type: u8, packed: i64) {
    let negative = packed < 0;
    let tmp = packed.unsigned_abs();
    let frac = tmp % (1 << 24);
    let int_part = tmp >> 24;
    // write_digits(useconds, 6): six digits (values >= 10^6 only occur in
    // corrupt data; their low six digits are printed).
    let micros = frac % 1_000_000;
    let mut text = String::with_capacity(28);
    text.push('"');
    if field_type == FIELD_TIME {
        let hms = int_part;
        let hour = (hms >> 12) % (1 << 10);
        if negative {
            text.push('-');
        }
        let _ = write!(text, "{hour:02}:");
        push_two_digits(&mut text, (hms >> 6) % (1 << 6));
        text.push(':');
        push_two_digits(&mut text, hms % (1 << 6));
        let _ = write!(text, ".{micros:06}");
    } else {
        let ymd = int_part >> 17;
        let ym = ymd >> 5;
        let hms = int_part % (1 << 17);
        let year = ym / 13;
        push_two_digits(&mut text, year / 100);
        push_two_digits(&mut text, year % 100);
        text.push('-');
        push_two_digits(&mut text, ym % 13);
        text.push('-');
        push_two_digits(&mut text, ymd % (1 << 5));
        if field_type != FIELD_DATE {
            text.push(' ');
            push_two_digits(&mut text, hms >> 12);
            text.push(':');
            push_two_digits(&mut text, (hms >> 6) % (1 << 6));
            text.push(':');
            push_two_digits(&mut text, hms % (1 << 6));
            let _ = write!(text, ".{micros:06}");
        }
    }
    text.push('"');
    out.push_str(&text);
}

// ---------------------------------------------------------------------------
// DECIMAL (MySQL binary decimal, as produced by decimal2bin)
// ---------------------------------------------------------------------------

const DIG_PER_DEC: usize = 9;
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const DECIMAL_MAX_PRECISION: usize = 65;
const DECIMAL_MAX_SCALE: usize = 30;

fn dig2bytes(digits: usize) -> usize {
    DIG2BYTES.get(digits).copied().unwrap_or(4)
}

fn decimal_bin_size(precision: usize, scale: usize) -> usize {
    let intg = precision - scale;
    (intg / DIG_PER_DEC) * 4
        + dig2bytes(intg % DIG_PER_DEC)
        + (scale / DIG_PER_DEC) * 4
        + dig2bytes(scale % DIG_PER_DEC)
}

/// Decode the opaque DECIMAL payload (precision byte, scale byte, binary
/// decimal) to MySQL's `decimal2string` text. `None` if malformed.
fn decode_decimal(data: &[u8]) -> Option<String> {
    let (&precision, rest) = data.split_first()?;
    let (&scale, bin) = rest.split_first()?;
    let (precision, scale) = (usize::from(precision), usize::from(scale));
    if precision == 0
        || precision > DECIMAL_MAX_PRECISION
        || scale > DECIMAL_MAX_SCALE
        || scale > precision
    {
        return None;
    }
    if bin.len() != decimal_bin_size(precision, scale) {
        return None;
    }
    let mut bytes = bin.to_vec();
    let first = bytes.first_mut()?;
    let negative = *first & 0x80 == 0;
    *first ^= 0x80;
    if negative {
        for b in &mut bytes {
            *b = !*b;
        }
    }
    let mut pos = 0usize;
    let mut group = |digits: usize| -> Option<String> {
        let n = dig2bytes(digits);
        let chunk = bytes.get(pos..pos + n)?;
        pos += n;
        let v = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if v >= 10u64.pow(u32::try_from(digits).ok()?) {
            return None;
        }
        Some(format!("{v:0digits$}"))
    };
    let intg = precision - scale;
    let mut int_digits = String::new();
    if intg % DIG_PER_DEC > 0 {
        int_digits.push_str(&group(intg % DIG_PER_DEC)?);
    }
    for _ in 0..intg / DIG_PER_DEC {
        int_digits.push_str(&group(DIG_PER_DEC)?);
    }
    let mut frac_digits = String::new();
    for _ in 0..scale / DIG_PER_DEC {
        frac_digits.push_str(&group(DIG_PER_DEC)?);
    }
    if scale % DIG_PER_DEC > 0 {
        frac_digits.push_str(&group(scale % DIG_PER_DEC)?);
    }
    let int_digits = int_digits.trim_start_matches('0');
    let mut text = String::with_capacity(precision + 3);
    if negative {
        text.push('-');
    }
    text.push_str(if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    });
    if scale > 0 {
        text.push('.');
        text.push_str(&frac_digits);
    }
    Some(text)
}

/// Encode decimal text (`[-]digits[.digits]`) as the opaque DECIMAL payload.
/// Precision is the number of significant integer digits plus the scale
/// (at least 1), like `my_decimal::precision()`.
fn encode_decimal(text: &str) -> Option<Vec<u8>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if unsigned.contains('.') && frac_part.is_empty() {
        return None;
    }
    if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int_part = int_part.trim_start_matches('0');
    let scale = frac_part.len();
    let mut intg = int_part.len();
    if intg + scale == 0 {
        intg = 1;
    }
    let precision = intg + scale;
    if precision > DECIMAL_MAX_PRECISION || scale > DECIMAL_MAX_SCALE {
        return None;
    }
    // Left-pad the integer digits to `intg` digits.
    let mut int_digits = "0".repeat(intg - int_part.len());
    int_digits.push_str(int_part);

    let mut bin = Vec::with_capacity(decimal_bin_size(precision, scale) + 2);
    bin.push(u8::try_from(precision).ok()?);
    bin.push(u8::try_from(scale).ok()?);
    let push_group = |bin: &mut Vec<u8>, digits: &str| -> Option<()> {
        let v: u64 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let n = dig2bytes(digits.len());
        let be = v.to_be_bytes();
        bin.extend_from_slice(be.get(8 - n..)?);
        Some(())
    };
    let lead = intg % DIG_PER_DEC;
    if lead > 0 {
        push_group(&mut bin, int_digits.get(..lead)?)?;
    }
    let mut at = lead;
    while at < intg {
        push_group(&mut bin, int_digits.get(at..at + DIG_PER_DEC)?)?;
        at += DIG_PER_DEC;
    }
    let mut at = 0;
    while at + DIG_PER_DEC <= scale {
        push_group(&mut bin, frac_part.get(at..at + DIG_PER_DEC)?)?;
        at += DIG_PER_DEC;
    }
    if at < scale {
        push_group(&mut bin, frac_part.get(at..)?)?;
    }
    let payload = bin.get_mut(2..)?;
    if negative {
        for b in payload.iter_mut() {
            *b = !*b;
        }
    }
    if let Some(first) = payload.first_mut() {
        *first ^= 0x80;
    }
    Some(bin)
}

// ---------------------------------------------------------------------------
// Encoder (JsonDom -> binary), following json_binary::serialize
// ---------------------------------------------------------------------------

enum EncodeError {
    /// An offset or size does not fit the small format: retry large.
    TooBig,
    Fatal(JsonError),
}

impl From<JsonError> for EncodeError {
    fn from(e: JsonError) -> Self {
        EncodeError::Fatal(e)
    }
}

fn put(out: &mut [u8], pos: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(pos..pos + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn check_fits(v: usize, large: bool) -> Result<(), EncodeError> {
    if v > usize::from(u16::MAX) {
        if !large {
            return Err(EncodeError::TooBig);
        }
        if u32::try_from(v).is_err() {
            return Err(EncodeError::Fatal(JsonError::TooLarge {
                reason: "container larger than 4 GiB",
            }));
        }
    }
    Ok(())
}

fn offset_bytes(v: usize, large: bool) -> Vec<u8> {
    if large {
        (v as u32).to_le_bytes().to_vec()
    } else {
        (v as u16).to_le_bytes().to_vec()
    }
}

fn push_var_len(out: &mut Vec<u8>, len: usize) -> Result<(), EncodeError> {
    if u32::try_from(len).is_err() {
        return Err(EncodeError::Fatal(JsonError::TooLarge {
            reason: "string or opaque value larger than 4 GiB",
        }));
    }
    let mut len = len;
    loop {
        let mut b = (len & 0x7f) as u8;
        len >>= 7;
        if len != 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            return Ok(());
        }
    }
}

fn push_opaque(out: &mut Vec<u8>, field_type: u8, data: &[u8]) -> Result<u8, EncodeError> {
    out.push(field_type);
    push_var_len(out, data.len())?;
    out.extend_from_slice(data);
    Ok(TYPE_OPAQUE)
}

/// If `value` can be inlined in a value entry, its type and entry bytes.
fn inline_value(value: &JsonDom, large: bool) -> Option<(u8, i64)> {
    match value {
        JsonDom::Null => Some((TYPE_LITERAL, i64::from(LITERAL_NULL))),
        JsonDom::Bool(true) => Some((TYPE_LITERAL, i64::from(LITERAL_TRUE))),
        JsonDom::Bool(false) => Some((TYPE_LITERAL, i64::from(LITERAL_FALSE))),
        JsonDom::Int(v) if i16::try_from(*v).is_ok() => Some((TYPE_INT16, *v)),
        JsonDom::Int(v) if large && i32::try_from(*v).is_ok() => Some((TYPE_INT32, *v)),
        JsonDom::UInt(v) if u16::try_from(*v).is_ok() => Some((TYPE_UINT16, *v as i64)),
        JsonDom::UInt(v) if large && u32::try_from(*v).is_ok() => Some((TYPE_UINT32, *v as i64)),
        _ => None,
    }
}

/// Append `value` (without its type byte) and return its type byte.
fn encode_value(
    value: &JsonDom,
    out: &mut Vec<u8>,
    small_parent: bool,
    depth: usize,
) -> Result<u8, EncodeError> {
    match value {
        JsonDom::Array(_) | JsonDom::Object(_) => {
            let object = matches!(value, JsonDom::Object(_));
            let start = out.len();
            match encode_container(value, out, false, depth) {
                Ok(()) => Ok(if object {
                    TYPE_SMALL_OBJECT
                } else {
                    TYPE_SMALL_ARRAY
                }),
                Err(EncodeError::TooBig) if !small_parent => {
                    out.truncate(start);
                    encode_container(value, out, true, depth)?;
                    Ok(if object {
                        TYPE_LARGE_OBJECT
                    } else {
                        TYPE_LARGE_ARRAY
                    })
                }
                Err(e) => Err(e),
            }
        }
        JsonDom::Null => {
            out.push(LITERAL_NULL);
            Ok(TYPE_LITERAL)
        }
        JsonDom::Bool(b) => {
            out.push(if *b { LITERAL_TRUE } else { LITERAL_FALSE });
            Ok(TYPE_LITERAL)
        }
        JsonDom::Int(v) => {
            if let Ok(v) = i16::try_from(*v) {
                out.extend_from_slice(&v.to_le_bytes());
                Ok(TYPE_INT16)
            } else if let Ok(v) = i32::try_from(*v) {
                out.extend_from_slice(&v.to_le_bytes());
                Ok(TYPE_INT32)
            } else {
                out.extend_from_slice(&v.to_le_bytes());
                Ok(TYPE_INT64)
            }
        }
        JsonDom::UInt(v) => {
            if let Ok(v) = u16::try_from(*v) {
                out.extend_from_slice(&v.to_le_bytes());
                Ok(TYPE_UINT16)
            } else if let Ok(v) = u32::try_from(*v) {
                out.extend_from_slice(&v.to_le_bytes());
                Ok(TYPE_UINT32)
            } else {
                out.extend_from_slice(&v.to_le_bytes());
                Ok(TYPE_UINT64)
            }
        }
        JsonDom::Double(v) => {
            out.extend_from_slice(&v.to_le_bytes());
            Ok(TYPE_DOUBLE)
        }
        JsonDom::String(s) => {
            push_var_len(out, s.len())?;
            out.extend_from_slice(s.as_bytes());
            Ok(TYPE_STRING)
        }
        JsonDom::Decimal(text) => {
            let data = encode_decimal(text).ok_or(EncodeError::Fatal(JsonError::TooLarge {
                reason: "invalid or too precise DECIMAL text",
            }))?;
            push_opaque(out, FIELD_NEWDECIMAL, &data)
        }
        JsonDom::Date(p) => push_opaque(out, FIELD_DATE, &p.to_le_bytes()),
        JsonDom::Time(p) => push_opaque(out, FIELD_TIME, &p.to_le_bytes()),
        JsonDom::DateTime(p) => push_opaque(out, FIELD_DATETIME, &p.to_le_bytes()),
        JsonDom::Timestamp(p) => push_opaque(out, FIELD_TIMESTAMP, &p.to_le_bytes()),
        JsonDom::Opaque { field_type, data } => push_opaque(out, *field_type, data),
    }
}

fn encode_container(
    value: &JsonDom,
    out: &mut Vec<u8>,
    large: bool,
    depth: usize,
) -> Result<(), EncodeError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(EncodeError::Fatal(JsonError::TooDeep));
    }
    // Members in canonical order, duplicates resolved in favour of the last.
    let (keys, values): (Vec<Option<&str>>, Vec<&JsonDom>) = match value {
        JsonDom::Array(items) => (vec![None; items.len()], items.iter().collect()),
        JsonDom::Object(members) => {
            let mut order: Vec<usize> = (0..members.len()).collect();
            order.sort_by(|&a, &b| match (members.get(a), members.get(b)) {
                (Some((ka, _)), Some((kb, _))) => key_order(ka, kb),
                _ => Ordering::Equal,
            });
            let mut picked: Vec<&(String, JsonDom)> = Vec::with_capacity(members.len());
            for idx in order {
                let Some(member) = members.get(idx) else {
                    continue;
                };
                match picked.last_mut() {
                    Some(last) if last.0 == member.0 => *last = member,
                    _ => picked.push(member),
                }
            }
            picked.iter().map(|(k, v)| (Some(k.as_str()), v)).unzip()
        }
        _ => return Ok(()),
    };
    let object = matches!(value, JsonDom::Object(_));
    let start = out.len();
    let count = values.len();
    check_fits(count, large)?;
    let os = if large { 4 } else { 2 };
    let kes = if object { os + 2 } else { 0 };
    let ves = os + 1;
    out.extend_from_slice(&offset_bytes(count, large));
    let size_pos = out.len();
    out.extend_from_slice(&offset_bytes(0, large));

    if object {
        let mut key_offset = 2 * os + count * (kes + ves);
        for key in keys.iter().flatten() {
            let len = u16::try_from(key.len()).map_err(|_| {
                EncodeError::Fatal(JsonError::TooLarge {
                    reason: "object key longer than 65535 bytes",
                })
            })?;
            check_fits(key_offset, large)?;
            out.extend_from_slice(&offset_bytes(key_offset, large));
            out.extend_from_slice(&len.to_le_bytes());
            key_offset += key.len();
        }
    }
    let entries_pos = out.len();
    out.resize(entries_pos + count * ves, 0);
    for key in keys.iter().flatten() {
        out.extend_from_slice(key.as_bytes());
    }
    for (i, item) in values.iter().enumerate() {
        let entry = entries_pos + i * ves;
        if let Some((type_byte, v)) = inline_value(item, large) {
            put(out, entry, &[type_byte]);
            let bytes = if large {
                (v as u32).to_le_bytes().to_vec()
            } else {
                (v as u16).to_le_bytes().to_vec()
            };
            put(out, entry + 1, &bytes);
        } else {
            let offset = out.len() - start;
            check_fits(offset, large)?;
            put(out, entry + 1, &offset_bytes(offset, large));
            let type_byte = encode_value(item, out, !large, depth)?;
            put(out, entry, &[type_byte]);
        }
    }
    let bytes = out.len() - start;
    check_fits(bytes, large)?;
    put(out, size_pos, &offset_bytes(bytes, large));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(bytes: &[u8]) -> String {
        match JsonBinary::new(bytes).to_text() {
            Ok(t) => t,
            Err(e) => panic!("decode failed: {e}"),
        }
    }

    fn dtext(v: f64) -> String {
        JsonDom::Double(v).to_text()
    }

    fn opaque(ft: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![TYPE_OPAQUE, ft];
        let mut len = Vec::new();
        let _ = push_var_len(&mut len, data.len());
        v.extend_from_slice(&len);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn empty_is_null() {
        assert_eq!(text(&[]), "null");
        assert_eq!(JsonBinary::new(&[]).to_dom(), Ok(JsonDom::Null));
    }

    #[test]
    fn scalars() {
        assert_eq!(text(&[4, 0]), "null");
        assert_eq!(text(&[4, 1]), "true");
        assert_eq!(text(&[4, 2]), "false");
        assert_eq!(text(&[5, 0xff, 0xff]), "-1");
        assert_eq!(text(&[6, 0xff, 0xff]), "65535");
        assert_eq!(text(&[7, 0, 0, 0, 0x80]), "-2147483648");
        assert_eq!(text(&[8, 0xff, 0xff, 0xff, 0xff]), "4294967295");
        let mut v = vec![9];
        v.extend_from_slice(&i64::MIN.to_le_bytes());
        assert_eq!(text(&v), "-9223372036854775808");
        let mut v = vec![10];
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(text(&v), "18446744073709551615");
        let mut v = vec![11];
        v.extend_from_slice(&1.5f64.to_le_bytes());
        assert_eq!(text(&v), "1.5");
        assert_eq!(text(&[12, 3, b'a', b'b', b'c']), "\"abc\"");
        assert_eq!(text(&[12, 0]), "\"\"");
    }

    #[test]
    fn bad_scalars() {
        assert_eq!(
            JsonBinary::new(&[4, 3]).to_text(),
            Err(JsonError::BadLiteral {
                value: 3,
                offset: 1
            })
        );
        assert_eq!(
            JsonBinary::new(&[0x0d, 0]).to_text(),
            Err(JsonError::BadType {
                type_byte: 0x0d,
                offset: 0
            })
        );
        assert!(matches!(
            JsonBinary::new(&[9, 1, 2]).to_text(),
            Err(JsonError::Truncated { .. })
        ));
        assert!(matches!(
            JsonBinary::new(&[12, 5, b'a']).to_text(),
            Err(JsonError::Truncated { .. })
        ));
        assert_eq!(
            JsonBinary::new(&[12, 0x80, 0x80, 0x80, 0x80, 0x80, 0]).to_text(),
            Err(JsonError::BadLength { offset: 1 })
        );
        // 5-byte length above u32::MAX.
        assert_eq!(
            JsonBinary::new(&[12, 0xff, 0xff, 0xff, 0xff, 0x7f]).to_text(),
            Err(JsonError::BadLength { offset: 1 })
        );
        assert_eq!(
            JsonBinary::new(&[12, 2, 0xc3, 0x28]).to_text(),
            Err(JsonError::InvalidUtf8 { offset: 2 })
        );
    }

    #[test]
    fn long_string_var_len() {
        let s = "x".repeat(300);
        let mut v = vec![12, 0xac, 0x02];
        v.extend_from_slice(s.as_bytes());
        assert_eq!(text(&v), format!("\"{s}\""));
        assert_eq!(JsonDom::String(s).to_binary(), v);
    }

    #[test]
    fn escaping() {
        let s = "q\"b\\s/\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é€😀";
        let mut v = vec![12, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        assert_eq!(
            text(&v),
            "\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}é€😀\""
        );
    }

    #[test]
    fn small_array_hand_built() {
        // [0, 1, true, false] as MySQL writes it: all elements inlined.
        let v = [
            2, 4, 0, 16, 0, // count 4, size 16
            5, 0, 0, // int16 0
            5, 1, 0, // int16 1
            4, 1, 0, // true
            4, 2, 0, // false
        ];
        assert_eq!(text(&v), "[0, 1, true, false]");
        let dom = JsonDom::Array(vec![
            JsonDom::Int(0),
            JsonDom::Int(1),
            JsonDom::Bool(true),
            JsonDom::Bool(false),
        ]);
        assert_eq!(dom.to_binary(), v);
        assert_eq!(JsonBinary::new(&v).to_dom(), Ok(dom));
    }

    #[test]
    fn small_object_hand_built() {
        // {"a": 1, "bb": "x", "c": [2]} is stored as keys a, c, bb.
        let v = [
            0, 3, 0, 38, 0, // count 3, size 38
            25, 0, 1, 0, // key "a" at 25
            26, 0, 1, 0, // key "c" at 26
            27, 0, 2, 0, // key "bb" at 27
            5, 1, 0, // a: int16 1 (inlined)
            2, 29, 0, // c: small array at 29
            12, 36, 0, // bb: string at 36
            b'a', b'c', b'b', b'b', // keys
            1, 0, 7, 0, 5, 2, 0, // [2]
            1, b'x', // "x"
        ];
        assert_eq!(v.len() - 1, 38);
        assert_eq!(text(&v), "{\"a\": 1, \"c\": [2], \"bb\": \"x\"}");
        let dom = JsonDom::Object(vec![
            ("a".into(), JsonDom::Int(1)),
            ("c".into(), JsonDom::Array(vec![JsonDom::Int(2)])),
            ("bb".into(), JsonDom::String("x".into())),
        ]);
        assert_eq!(JsonBinary::new(&v).to_dom(), Ok(dom.clone()));
        assert_eq!(dom.to_binary(), v);
        // Unsorted input is sorted by the encoder.
        let unsorted = JsonDom::Object(vec![
            ("bb".into(), JsonDom::String("x".into())),
            ("c".into(), JsonDom::Array(vec![JsonDom::Int(2)])),
            ("a".into(), JsonDom::Int(1)),
        ]);
        assert_eq!(unsorted.to_binary(), v);
    }

    #[test]
    fn empty_containers() {
        assert_eq!(text(&[0, 0, 0, 4, 0]), "{}");
        assert_eq!(text(&[2, 0, 0, 4, 0]), "[]");
        assert_eq!(text(&[1, 0, 0, 0, 0, 8, 0, 0, 0]), "{}");
        assert_eq!(text(&[3, 0, 0, 0, 0, 8, 0, 0, 0]), "[]");
        assert_eq!(JsonDom::Array(vec![]).to_binary(), [2, 0, 0, 4, 0]);
        assert_eq!(JsonDom::Object(vec![]).to_binary(), [0, 0, 0, 4, 0]);
    }

    #[test]
    fn large_containers_hand_built() {
        // Large array: [1, 100000 (inlined int32), "s", -70000 (inlined int32)]
        let v = [
            3, 4, 0, 0, 0, 30, 0, 0, 0, // count 4, size 30
            5, 1, 0, 0, 0, // int16 1
            8, 0xa0, 0x86, 0x01, 0x00, // uint32 100000 inlined
            12, 28, 0, 0, 0, // string at 28
            7, 0x90, 0xee, 0xfe, 0xff, // int32 -70000 inlined
            1, b's',
        ];
        assert_eq!(v.len() - 1, 30);
        assert_eq!(text(&v), "[1, 100000, \"s\", -70000]");
        // Large object: {"k": null}
        let v = [
            1, 1, 0, 0, 0, 20, 0, 0, 0, // count 1, size 20
            19, 0, 0, 0, 1, 0, // key at 19, len 1
            4, 0, 0, 0, 0, // null inlined
            b'k',
        ];
        assert_eq!(v.len() - 1, 20);
        assert_eq!(text(&v), "{\"k\": null}");
        // int32 in a small container is not inlined.
        let v = [2, 1, 0, 11, 0, 7, 7, 0, 0xa0, 0x86, 0x01, 0x00];
        assert_eq!(text(&v), "[100000]");
        assert_eq!(JsonDom::Array(vec![JsonDom::Int(100000)]).to_binary(), v);
    }

    #[test]
    fn encoder_switches_to_large() {
        let big = "y".repeat(70_000);
        let dom = JsonDom::Array(vec![
            JsonDom::Int(100_000),
            JsonDom::String(big.clone()),
            JsonDom::Object(vec![("k".into(), JsonDom::UInt(7))]),
        ]);
        let bin = dom.to_binary();
        assert_eq!(bin.first(), Some(&TYPE_LARGE_ARRAY));
        // The int32 is inlined in the large format: type 7 at entry 0.
        assert_eq!(bin.get(9), Some(&TYPE_INT32));
        assert_eq!(JsonBinary::new(&bin).to_dom(), Ok(dom.clone()));
        assert_eq!(JsonBinary::new(&bin).to_text(), Ok(dom.to_text()));
        // A small object nested in a large array stays small.
        let nested = JsonDom::Array(vec![
            JsonDom::String(big),
            JsonDom::Object(vec![("z".into(), JsonDom::Int(1))]),
        ]);
        let bin = nested.to_binary();
        assert_eq!(JsonBinary::new(&bin).to_dom(), Ok(nested));
        // Large object keys.
        let obj = JsonDom::Object(vec![
            ("a".repeat(40_000), JsonDom::Null),
            ("b".repeat(40_000), JsonDom::String("v".into())),
        ]);
        let bin = obj.to_binary();
        assert_eq!(bin.first(), Some(&TYPE_LARGE_OBJECT));
        assert_eq!(JsonBinary::new(&bin).to_dom(), Ok(obj));
        // A key entry holds only a 2-byte length.
        assert!(matches!(
            JsonDom::Object(vec![("k".repeat(65_536), JsonDom::Null)]).try_to_binary(),
            Err(JsonError::TooLarge { .. })
        ));
    }

    #[test]
    fn nesting_and_depth() {
        let mut dom = JsonDom::Int(1);
        for _ in 0..MAX_DEPTH {
            dom = JsonDom::Array(vec![dom]);
        }
        let bin = dom.to_binary();
        let t = text(&bin);
        assert!(t.starts_with("[[[[") && t.contains("[1]"));
        assert_eq!(JsonBinary::new(&bin).to_dom(), Ok(dom.clone()));
        let deeper = JsonDom::Array(vec![dom]);
        assert_eq!(deeper.try_to_binary(), Err(JsonError::TooDeep));
        // Hand-built nested small arrays: each level is
        // [count 1][size][entry: type 2, offset 7], innermost is [].
        let nested = |levels: usize| {
            let mut bytes = vec![2u8];
            for level in 0..levels {
                let size = 7 * (levels - level) + 4;
                bytes.extend_from_slice(&[1, 0]);
                bytes.extend_from_slice(&(size as u16).to_le_bytes());
                bytes.extend_from_slice(&[2, 7, 0]);
            }
            bytes.extend_from_slice(&[0, 0, 4, 0]);
            bytes
        };
        let ok = nested(MAX_DEPTH - 1);
        assert!(JsonBinary::new(&ok).to_text().is_ok());
        assert!(JsonBinary::new(&ok).to_dom().is_ok());
        let too_deep = nested(MAX_DEPTH);
        assert_eq!(
            JsonBinary::new(&too_deep).to_text(),
            Err(JsonError::TooDeep)
        );
        assert_eq!(JsonBinary::new(&too_deep).to_dom(), Err(JsonError::TooDeep));
        let way_too_deep = nested(5000);
        assert_eq!(
            JsonBinary::new(&way_too_deep).to_text(),
            Err(JsonError::TooDeep)
        );
    }

    #[test]
    fn shared_values_are_rejected() {
        // Two entries pointing at the same string.
        let v = [2, 2, 0, 12, 0, 12, 10, 0, 12, 10, 0, 1, b'a'];
        assert!(matches!(
            JsonBinary::new(&v).to_text(),
            Err(JsonError::Overlap { .. })
        ));
        // Exponential fan-out attempt: 20 levels of 2 entries to the same child.
        let mut bytes = vec![2u8];
        let levels = 20;
        for level in 0..levels {
            let size = 10 * (levels - level) + 4;
            bytes.extend_from_slice(&[2, 0]);
            bytes.extend_from_slice(&(size as u16).to_le_bytes());
            bytes.extend_from_slice(&[2, 10, 0, 2, 10, 0]);
        }
        bytes.extend_from_slice(&[0, 0, 4, 0]);
        assert!(matches!(
            JsonBinary::new(&bytes).to_text(),
            Err(JsonError::Overlap { .. })
        ));
        assert!(matches!(
            JsonBinary::new(&bytes).to_dom(),
            Err(JsonError::Overlap { .. })
        ));
    }

    #[test]
    fn bad_containers() {
        // size larger than input
        assert!(matches!(
            JsonBinary::new(&[2, 0, 0, 10, 0]).to_text(),
            Err(JsonError::BadContainerSize { .. })
        ));
        // header larger than size
        assert!(matches!(
            JsonBinary::new(&[2, 5, 0, 4, 0, 0, 0]).to_text(),
            Err(JsonError::BadHeader { .. })
        ));
        // value offset inside the header
        assert!(matches!(
            JsonBinary::new(&[2, 1, 0, 9, 0, 12, 2, 0, 1, b'a']).to_text(),
            Err(JsonError::BadEntryOffset { .. })
        ));
        // value offset past the end
        assert!(matches!(
            JsonBinary::new(&[2, 1, 0, 7, 0, 12, 9, 0]).to_text(),
            Err(JsonError::BadEntryOffset { .. })
        ));
        // key out of range
        assert!(matches!(
            JsonBinary::new(&[0, 1, 0, 11, 0, 11, 0, 5, 0, 4, 0, 0]).to_text(),
            Err(JsonError::BadEntryOffset { .. })
        ));
        // huge count with a large container
        assert!(matches!(
            JsonBinary::new(&[3, 0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0]).to_text(),
            Err(JsonError::BadHeader { .. })
        ));
        // truncated header
        assert!(matches!(
            JsonBinary::new(&[0, 1]).to_text(),
            Err(JsonError::Truncated { .. })
        ));
    }

    #[test]
    fn write_text_restores_on_error() {
        let mut out = String::from("prefix");
        let bad = [2, 2, 0, 10, 0, 4, 1, 0, 4, 9, 0];
        assert!(JsonBinary::new(&bad).write_text(&mut out).is_err());
        assert_eq!(out, "prefix");
        JsonBinary::new(&[4, 1]).write_text(&mut out).ok();
        assert_eq!(out, "prefixtrue");
    }

    #[test]
    fn doubles_like_mysql() {
        assert_eq!(dtext(1.5), "1.5");
        assert_eq!(dtext(3.0), "3.0");
        assert_eq!(dtext(-3.0), "-3.0");
        assert_eq!(dtext(0.0), "0.0");
        assert_eq!(dtext(-0.0), "-0.0");
        assert_eq!(dtext(100.0), "100.0");
        assert_eq!(dtext(0.1), "0.1");
        assert_eq!(dtext(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(dtext(2.0 / 3.0), "0.6666666666666666");
        assert_eq!(dtext(1e300), "1e300");
        assert_eq!(dtext(-1e300), "-1e300");
        assert_eq!(dtext(1e-5), "0.00001");
        assert_eq!(dtext(1.25e-5), "0.0000125");
        assert_eq!(dtext(1e-15), "0.000000000000001");
        assert_eq!(dtext(1e-16), "1e-16");
        assert_eq!(dtext(1.5e-20), "1.5e-20");
        assert_eq!(dtext(1e14), "100000000000000.0");
        assert_eq!(dtext(1e15), "1e15");
        assert_eq!(dtext(123456789012345.0), "123456789012345.0");
        assert_eq!(dtext(1234567890123456.0), "1.234567890123456e15");
        assert_eq!(dtext(1234567890123456.8), "1234567890123456.8");
        assert_eq!(dtext(12345678901234567890.0), "1.2345678901234567e19");
        assert_eq!(dtext(f64::MAX), "1.7976931348623157e308");
        assert_eq!(dtext(f64::MIN_POSITIVE), "2.2250738585072014e-308");
        assert_eq!(dtext(5e-324), "5e-324");
        assert_eq!(dtext(2.71), "2.71");
        assert_eq!(dtext(-2.5e-3), "-0.0025");
        assert_eq!(dtext(f64::NAN), "0.0");
        assert_eq!(dtext(f64::INFINITY), "0.0");
    }

    #[test]
    fn opaque_values() {
        // Known values from a MySQL 9.0.1 binlog.
        assert_eq!(text(&opaque(15, b"U")), "\"base64:type15:VQ==\"");
        assert_eq!(text(&opaque(252, b"")), "\"base64:type252:\"");
        assert_eq!(text(&opaque(252, b"ab")), "\"base64:type252:YWI=\"");
        assert_eq!(text(&opaque(252, b"abc")), "\"base64:type252:YWJj\"");
        // 60 bytes -> 80 base64 chars with a newline after 76.
        let data = [0u8; 60];
        let t = text(&opaque(252, &data));
        let expected = format!("\"base64:type252:{}\\n{}\"", "A".repeat(76), "A".repeat(4));
        assert_eq!(t, expected);
        // 57 bytes -> exactly 76 chars, no newline.
        let t = text(&opaque(252, &[0u8; 57]));
        assert_eq!(t, format!("\"base64:type252:{}\"", "A".repeat(76)));
        // VAR_STRING opaque prints as a string.
        assert_eq!(text(&opaque(253, b"hi\"")), "\"hi\\\"\"");
        let dom = JsonBinary::new(&opaque(15, b"U")).to_dom();
        assert_eq!(
            dom,
            Ok(JsonDom::Opaque {
                field_type: 15,
                data: b"U".to_vec()
            })
        );
    }

    #[test]
    fn temporal_values() {
        let date = pack_datetime(2012, 3, 18, 0, 0, 0, 0);
        assert_eq!(
            text(&opaque(FIELD_DATE, &date.to_le_bytes())),
            "\"2012-03-18\""
        );
        let dt = pack_datetime(2012, 3, 18, 11, 30, 45, 0);
        assert_eq!(
            text(&opaque(FIELD_DATETIME, &dt.to_le_bytes())),
            "\"2012-03-18 11:30:45.000000\""
        );
        assert_eq!(
            text(&opaque(FIELD_TIMESTAMP, &dt.to_le_bytes())),
            "\"2012-03-18 11:30:45.000000\""
        );
        let dt = pack_datetime(1, 1, 2, 3, 4, 5, 123);
        assert_eq!(
            text(&opaque(FIELD_DATETIME, &dt.to_le_bytes())),
            "\"0001-01-02 03:04:05.000123\""
        );
        let t = pack_time(false, 87, 31, 46, 654321);
        assert_eq!(
            text(&opaque(FIELD_TIME, &t.to_le_bytes())),
            "\"87:31:46.654321\""
        );
        let t = pack_time(true, 838, 59, 59, 0);
        assert_eq!(
            text(&opaque(FIELD_TIME, &t.to_le_bytes())),
            "\"-838:59:59.000000\""
        );
        let t = pack_time(true, 1, 2, 3, 5);
        assert_eq!(
            text(&opaque(FIELD_TIME, &t.to_le_bytes())),
            "\"-01:02:03.000005\""
        );
        assert_eq!(
            text(&opaque(FIELD_TIME, &0i64.to_le_bytes())),
            "\"00:00:00.000000\""
        );
        assert_eq!(
            text(&opaque(FIELD_DATE, &0i64.to_le_bytes())),
            "\"0000-00-00\""
        );
        // Corrupt values never panic.
        let _ = text(&opaque(FIELD_DATETIME, &i64::MIN.to_le_bytes()));
        let _ = text(&opaque(FIELD_TIME, &i64::MIN.to_le_bytes()));
        let _ = text(&opaque(FIELD_DATE, &i64::MAX.to_le_bytes()));
        assert_eq!(
            JsonBinary::new(&opaque(FIELD_DATE, &[1, 2, 3])).to_text(),
            Err(JsonError::BadTemporal {
                field_type: FIELD_DATE,
                offset: 3
            })
        );
        let dom = JsonBinary::new(&opaque(FIELD_TIME, &t.to_le_bytes())).to_dom();
        assert_eq!(dom, Ok(JsonDom::Time(t)));
        assert_eq!(
            JsonDom::Time(t).to_binary(),
            opaque(FIELD_TIME, &t.to_le_bytes())
        );
    }

    fn decimal_opaque(precision: u8, scale: u8, bin: &[u8]) -> Vec<u8> {
        let mut data = vec![precision, scale];
        data.extend_from_slice(bin);
        opaque(FIELD_NEWDECIMAL, &data)
    }

    #[test]
    fn decimal_values() {
        // DECIMAL(6,3) 123.456: intg 3 -> 2 bytes (123), frac 3 -> 2 bytes (456)
        let v = decimal_opaque(6, 3, &[0x80, 0x7b, 0x01, 0xc8]);
        assert_eq!(text(&v), "123.456");
        // DECIMAL(3,2) 9.00
        let v = decimal_opaque(3, 2, &[0x89, 0x00]);
        assert_eq!(text(&v), "9.00");
        // -9.00 : bytes inverted
        let v = decimal_opaque(3, 2, &[!0x89, !0x00]);
        assert_eq!(text(&v), "-9.00");
        // DECIMAL(2,2) 0.50
        let v = decimal_opaque(2, 2, &[0x80 | 50]);
        assert_eq!(text(&v), "0.50");
        // DECIMAL(20,0) 12345678901234567890: 2 digits lead (1 byte) + 2 groups
        let mut bin = vec![0x80 | 12];
        bin.extend_from_slice(&345_678_901u32.to_be_bytes());
        bin.extend_from_slice(&234_567_890u32.to_be_bytes());
        assert_eq!(text(&decimal_opaque(20, 0, &bin)), "12345678901234567890");
        // DECIMAL(10,0) 0
        let bin = [0x80, 0, 0, 0, 0];
        assert_eq!(text(&decimal_opaque(10, 0, &bin)), "0");
        // Errors: wrong length, bad precision, digit group overflow.
        assert!(matches!(
            JsonBinary::new(&decimal_opaque(6, 3, &[0x80, 0x7b, 0x01])).to_text(),
            Err(JsonError::BadDecimal { .. })
        ));
        assert!(matches!(
            JsonBinary::new(&decimal_opaque(66, 0, &[0x80])).to_text(),
            Err(JsonError::BadDecimal { .. })
        ));
        assert!(matches!(
            JsonBinary::new(&decimal_opaque(2, 3, &[0x80])).to_text(),
            Err(JsonError::BadDecimal { .. })
        ));
        assert!(matches!(
            JsonBinary::new(&decimal_opaque(3, 2, &[0x80 | 10, 0])).to_text(),
            Err(JsonError::BadDecimal { .. })
        ));
        assert!(matches!(
            JsonBinary::new(&opaque(FIELD_NEWDECIMAL, &[])).to_text(),
            Err(JsonError::BadDecimal { .. })
        ));
        // Encoder round trips.
        for s in [
            "123.456",
            "9.00",
            "-9.00",
            "0.50",
            "-0.001",
            "0",
            "12345678901234567890",
            "1.000000000123",
        ] {
            let data = encode_decimal(s);
            assert!(data.is_some(), "{s}");
            assert_eq!(
                decode_decimal(&data.unwrap_or_default()).as_deref(),
                Some(s)
            );
        }
        assert_eq!(
            encode_decimal("123.456"),
            Some(vec![6, 3, 0x80, 0x7b, 0x01, 0xc8])
        );
        assert_eq!(encode_decimal("9.00"), Some(vec![3, 2, 0x89, 0x00]));
        for bad in ["", "-", "1.", ".5", "1e5", "abc", "1.2.3", "+1"] {
            assert_eq!(encode_decimal(bad), None, "{bad}");
        }
        let dom = JsonDom::Array(vec![
            JsonDom::Decimal("123.456".into()),
            JsonDom::Decimal("9.00".into()),
        ]);
        assert_eq!(dom.to_text(), "[123.456, 9.00]");
        assert_eq!(JsonBinary::new(&dom.to_binary()).to_dom(), Ok(dom));
    }

    #[test]
    fn dom_opaque_rendering_matches_binary() {
        let cases = [
            JsonDom::Opaque {
                field_type: FIELD_NEWDECIMAL,
                data: vec![3, 2, 0x89, 0],
            },
            JsonDom::Opaque {
                field_type: FIELD_NEWDECIMAL,
                data: vec![3, 2],
            },
            JsonDom::Opaque {
                field_type: FIELD_DATE,
                data: pack_datetime(2020, 1, 2, 0, 0, 0, 0).to_le_bytes().to_vec(),
            },
            JsonDom::Opaque {
                field_type: FIELD_TIME,
                data: vec![1],
            },
            JsonDom::Opaque {
                field_type: FIELD_VAR_STRING,
                data: b"x\xff".to_vec(),
            },
        ];
        assert_eq!(cases[0].to_text(), "9.00");
        assert_eq!(cases[1].to_text(), "\"base64:type246:AwI=\"");
        assert_eq!(cases[2].to_text(), "\"2020-01-02\"");
        assert_eq!(cases[3].to_text(), "\"base64:type11:AQ==\"");
        assert_eq!(cases[4].to_text(), "\"x\u{fffd}\"");
        assert_eq!(
            JsonBinary::new(&cases[4].to_binary()).to_text(),
            Ok(cases[4].to_text())
        );
    }

    #[test]
    fn mixed_document_text() {
        let dom = JsonDom::Object(vec![
            ("a".into(), JsonDom::Int(1)),
            (
                "b".into(),
                JsonDom::Array(vec![JsonDom::Int(1), JsonDom::Int(2)]),
            ),
            (
                "nested".into(),
                JsonDom::Object(vec![("x".into(), JsonDom::Null)]),
            ),
        ]);
        assert_eq!(
            dom.to_text(),
            "{\"a\": 1, \"b\": [1, 2], \"nested\": {\"x\": null}}"
        );
        assert_eq!(
            JsonBinary::new(&dom.to_binary()).to_text(),
            Ok(dom.to_text())
        );
    }

    #[test]
    fn validate_works() {
        assert_eq!(JsonBinary::new(&[4, 1]).validate(), Ok(()));
        assert!(JsonBinary::new(&[4, 7]).validate().is_err());
    }

    // ---- property tests ----

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{0,3}",
            "\\PC{0,6}",
            proptest::collection::vec(any::<char>(), 0..4).prop_map(|v| v.into_iter().collect()),
        ]
    }

    fn arb_scalar() -> impl Strategy<Value = JsonDom> {
        prop_oneof![
            Just(JsonDom::Null),
            any::<bool>().prop_map(JsonDom::Bool),
            any::<i64>().prop_map(JsonDom::Int),
            (-40_000i64..40_000).prop_map(JsonDom::Int),
            any::<u64>().prop_map(JsonDom::UInt),
            (0u64..70_000).prop_map(JsonDom::UInt),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(JsonDom::Double),
            (-1e6f64..1e6).prop_map(JsonDom::Double),
            any::<String>().prop_map(JsonDom::String),
            (
                any::<bool>(),
                "[1-9][0-9]{0,20}|0",
                proptest::option::of("[0-9]{1,25}")
            )
                .prop_map(|(neg, i, f)| {
                    let mut s = String::new();
                    if neg {
                        s.push('-');
                    }
                    s.push_str(&i);
                    if let Some(f) = f {
                        s.push('.');
                        s.push_str(&f);
                    }
                    JsonDom::Decimal(s)
                }),
            (
                0u32..10000,
                0u32..13,
                0u32..32,
                0u32..24,
                0u32..60,
                0u32..60,
                0u32..1_000_000
            )
                .prop_map(|(y, mo, d, h, mi, s, us)| JsonDom::DateTime(pack_datetime(
                    y, mo, d, h, mi, s, us
                ))),
            (
                0u32..10000,
                0u32..13,
                0u32..32,
                0u32..24,
                0u32..60,
                0u32..60,
                0u32..1_000_000
            )
                .prop_map(|(y, mo, d, h, mi, s, us)| JsonDom::Timestamp(
                    pack_datetime(y, mo, d, h, mi, s, us)
                )),
            (0u32..10000, 0u32..13, 0u32..32)
                .prop_map(|(y, mo, d)| JsonDom::Date(pack_datetime(y, mo, d, 0, 0, 0, 0))),
            (
                any::<bool>(),
                0u32..1024,
                0u32..60,
                0u32..60,
                0u32..1_000_000
            )
                .prop_map(|(n, h, m, s, us)| JsonDom::Time(pack_time(n, h, m, s, us))),
            (
                any::<u8>().prop_filter("plain opaque", |t| {
                    !matches!(
                        *t,
                        FIELD_NEWDECIMAL
                            | FIELD_DATE
                            | FIELD_TIME
                            | FIELD_DATETIME
                            | FIELD_TIMESTAMP
                            | FIELD_VAR_STRING
                    )
                }),
                proptest::collection::vec(any::<u8>(), 0..100)
            )
                .prop_map(|(field_type, data)| JsonDom::Opaque { field_type, data }),
            "\\PC{0,10}".prop_map(|s| JsonDom::Opaque {
                field_type: FIELD_VAR_STRING,
                data: s.into_bytes()
            }),
        ]
    }

    fn canonical_object(members: Vec<(String, JsonDom)>) -> JsonDom {
        let mut members = members;
        members.sort_by(|a, b| key_order(&a.0, &b.0));
        members.dedup_by(|a, b| a.0 == b.0);
        JsonDom::Object(members)
    }

    fn arb_dom() -> impl Strategy<Value = JsonDom> {
        arb_scalar().prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(JsonDom::Array),
                proptest::collection::vec((arb_key(), inner), 0..8).prop_map(canonical_object),
            ]
        })
    }

    /// Doubles compare bitwise so that -0.0 and NaN-free data round trip.
    fn same(a: &JsonDom, b: &JsonDom) -> bool {
        match (a, b) {
            (JsonDom::Double(x), JsonDom::Double(y)) => x.to_bits() == y.to_bits(),
            (JsonDom::Array(x), JsonDom::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (JsonDom::Object(x), JsonDom::Object(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.0 == b.0 && same(&a.1, &b.1))
            }
            _ => a == b,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn dom_round_trip(dom in arb_dom()) {
            let bin = dom.try_to_binary();
            prop_assert!(bin.is_ok(), "{bin:?}");
            let bin = bin.unwrap_or_default();
            let decoded = JsonBinary::new(&bin).to_dom();
            prop_assert!(decoded.is_ok(), "{decoded:?}");
            let decoded = decoded.unwrap_or(JsonDom::Null);
            prop_assert!(same(&dom, &decoded), "{dom:?} != {decoded:?}");
            let text = JsonBinary::new(&bin).to_text();
            let dom_text = dom.to_text();
            prop_assert_eq!(text.as_deref(), Ok(dom_text.as_str()));
            prop_assert_eq!(decoded.to_binary(), bin);
        }

        #[test]
        fn text_is_valid_json(dom in arb_dom()) {
            let text = dom.to_text();
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
            prop_assert!(parsed.is_ok(), "{text}");
        }

        #[test]
        fn doubles_round_trip_through_text(v in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let t = dtext(v);
            let back: Result<f64, _> = t.parse();
            prop_assert_eq!(back.map(f64::to_bits), Ok(v.to_bits()), "{}", t);
            prop_assert!(t.contains('.') || t.contains('e'));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let b = JsonBinary::new(&bytes);
            let t = b.to_text();
            let d = b.to_dom();
            prop_assert_eq!(t.is_ok(), d.is_ok());
            if let (Ok(t), Ok(d)) = (t, d) {
                prop_assert_eq!(t, d.to_text());
            }
        }

        #[test]
        fn mutated_documents_never_panic(dom in arb_dom(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
            let mut bin = dom.to_binary();
            for (pos, val) in edits {
                if !bin.is_empty() {
                    let len = bin.len();
                    if let Some(b) = bin.get_mut(pos % len) { *b = val; }
                }
            }
            let b = JsonBinary::new(&bin);
            let t = b.to_text();
            let d = b.to_dom();
            prop_assert_eq!(t.is_ok(), d.is_ok());
            let cut = if bin.is_empty() { 0 } else { cut % bin.len() };
            let truncated = JsonBinary::new(bin.get(..cut).unwrap_or(&[]));
            let _ = truncated.to_text();
            let _ = truncated.to_dom();
        }
    }
}
