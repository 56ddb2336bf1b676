//! Column types and decoded column values (borrowing from the event bytes where possible).
//!
//! The `Display` impls of the temporal types print exactly what `SELECT` prints over the text
//! protocol (`time_zone = '+00:00'` for TIMESTAMP).

use std::borrow::Cow;
use std::fmt;

use crate::cursor::{be_uint, le_uint};
use crate::decimal::{Decimal, DecimalBuf, DecimalCheck};
use crate::error::{DecodeErrorKind, PResult};
use crate::json::{JsonBinary, JsonDom};
use crate::table_map::ColumnDef;

/// The effective type of a column (STRING columns are resolved to ENUM/SET/STRING).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnType {
    /// `DECIMAL` (pre-5.0 format, 0).
    Decimal,
    /// `TINYINT` (1).
    Tiny,
    /// `SMALLINT` (2).
    Short,
    /// `INT` (3).
    Long,
    /// `FLOAT` (4).
    Float,
    /// `DOUBLE` (5).
    Double,
    /// `NULL` (6).
    Null,
    /// `TIMESTAMP`, pre-5.6 (7).
    Timestamp,
    /// `BIGINT` (8).
    LongLong,
    /// `MEDIUMINT` (9).
    Int24,
    /// `DATE` (10).
    Date,
    /// `TIME`, pre-5.6 (11).
    Time,
    /// `DATETIME`, pre-5.6 (12).
    DateTime,
    /// `YEAR` (13).
    Year,
    /// `NEWDATE` (14).
    NewDate,
    /// `VARCHAR` (15).
    VarChar,
    /// `BIT` (16).
    Bit,
    /// `TIMESTAMP(fsp)` (17).
    Timestamp2,
    /// `DATETIME(fsp)` (18).
    DateTime2,
    /// `TIME(fsp)` (19).
    Time2,
    /// MariaDB `VARCHAR ... COMPRESSED` (141).
    VarCharCompressed,
    /// MariaDB `BLOB/TEXT ... COMPRESSED` (140).
    BlobCompressed,
    /// `VECTOR` (242, MySQL 9.0+).
    Vector,
    /// `JSON` (245).
    Json,
    /// `DECIMAL` (246).
    NewDecimal,
    /// `ENUM` (247, or STRING with ENUM real type).
    Enum,
    /// `SET` (248, or STRING with SET real type).
    Set,
    /// `BLOB`/`TEXT` of any size (252).
    Blob,
    /// `VAR_STRING` (253).
    VarString,
    /// `CHAR`/`BINARY` (254).
    String,
    /// `GEOMETRY` (255).
    Geometry,
    /// Any other code (refused when a value must be decoded).
    Other(u8),
}

impl ColumnType {
    /// Resolve a TABLE_MAP type code and its metadata.
    pub fn resolve(type_code: u8, meta: u16) -> Self {
        match type_code {
            0 => Self::Decimal,
            1 => Self::Tiny,
            2 => Self::Short,
            3 => Self::Long,
            4 => Self::Float,
            5 => Self::Double,
            6 => Self::Null,
            7 => Self::Timestamp,
            8 => Self::LongLong,
            9 => Self::Int24,
            10 => Self::Date,
            11 => Self::Time,
            12 => Self::DateTime,
            13 => Self::Year,
            14 => Self::NewDate,
            15 => Self::VarChar,
            16 => Self::Bit,
            17 => Self::Timestamp2,
            18 => Self::DateTime2,
            19 => Self::Time2,
            140 => Self::BlobCompressed,
            141 => Self::VarCharCompressed,
            242 => Self::Vector,
            245 => Self::Json,
            246 => Self::NewDecimal,
            247 => Self::Enum,
            248 => Self::Set,
            252 => Self::Blob,
            253 | 254 => {
                let real = (meta >> 8) as u8;
                // When bits 4–5 of the first metadata byte are not both set they carry bits 8–9
                // of the length of a long CHAR, and the real type is STRING.
                if real & 0x30 != 0x30 {
                    Self::String
                } else {
                    match real {
                        247 => Self::Enum,
                        248 => Self::Set,
                        253 => Self::VarString,
                        _ => Self::String,
                    }
                }
            }
            255 => Self::Geometry,
            other => Self::Other(other),
        }
    }
}

/// A `DATE` value (zero parts allowed: `0000-00-00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    /// Year (0–9999).
    pub year: u16,
    /// Month (0–12).
    pub month: u8,
    /// Day (0–31).
    pub day: u8,
}

/// A short ASCII text kept on the stack: the text form of a temporal or DECIMAL value without
/// a heap allocation (`Date::to_text`, `DateTime::to_text`, `Decimal::to_text`, …). Bindings
/// that copy the text into their own string objects use it to skip `to_string()`'s allocation
/// and the formatting machinery.
#[derive(Clone, Copy)]
pub struct AsciiText {
    buf: [u8; Self::CAPACITY],
    len: u8,
}

/// `"00"`, `"01"`, … `"99"`: two decimal digits at a time.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl AsciiText {
    /// Bytes it can hold: enough for `-` + 65 digits + `.` (`DECIMAL(65,30)`) and any temporal value.
    pub const CAPACITY: usize = 72;

    /// An empty text.
    pub fn new() -> Self {
        Self {
            buf: [0; Self::CAPACITY],
            len: 0,
        }
    }

    /// Append one ASCII byte (dropped if full; every producer in this crate stays below
    /// [`AsciiText::CAPACITY`]).
    #[inline]
    pub(crate) fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Append `n` in decimal, zero-padded to at least `width` digits (dropped if it does not
    /// fit).
    #[inline]
    pub(crate) fn push_padded(&mut self, n: u32, width: usize) {
        let digits = match n {
            0..=9 => 1,
            10..=99 => 2,
            100..=999 => 3,
            1_000..=9_999 => 4,
            10_000..=99_999 => 5,
            100_000..=999_999 => 6,
            1_000_000..=9_999_999 => 7,
            10_000_000..=99_999_999 => 8,
            100_000_000..=999_999_999 => 9,
            _ => 10,
        };
        let total = width.max(digits);
        let at = usize::from(self.len);
        let Some(out) = self.buf.get_mut(at..at + total) else {
            return;
        };
        // Right to left, two digits at a time from a table, then the zero padding.
        let mut end = total;
        let mut v = n as usize;
        while v >= 100 {
            let pair = 2 * (v % 100);
            v /= 100;
            end -= 2;
            out[end..end + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            end -= 2;
            out[end..end + 2].copy_from_slice(&DIGIT_PAIRS[2 * v..2 * v + 2]);
        } else {
            end -= 1;
            out[end] = b'0' + v as u8;
        }
        if end > 0 {
            out[..end].fill(b'0');
        }
        // `total` fits: the slice above was inside the buffer.
        self.len += total as u8;
    }

    /// Append `.` and the first `fsp` (at most 6) digits of `micros`; nothing when `fsp` is 0.
    #[inline]
    fn push_frac(&mut self, micros: u32, fsp: u8) {
        if fsp == 0 {
            return;
        }
        let fsp = fsp.min(6);
        self.push(b'.');
        self.push_padded(micros / 10u32.pow(6 - u32::from(fsp)), usize::from(fsp));
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever pushed.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }

    /// The text's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl Default for AsciiText {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for AsciiText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for AsciiText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for AsciiText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Date {
    fn push_to(&self, t: &mut AsciiText) {
        t.push_padded(u32::from(self.year), 4);
        t.push(b'-');
        t.push_padded(u32::from(self.month), 2);
        t.push(b'-');
        t.push_padded(u32::from(self.day), 2);
    }

    /// The `SELECT` text (`YYYY-MM-DD`) without allocating; same as `to_string()`.
    pub fn to_text(&self) -> AsciiText {
        let mut t = AsciiText::new();
        self.push_to(&mut t);
        t
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A `TIME` value (may be negative and exceed 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    /// Whether the value is negative.
    pub negative: bool,
    /// Hours (0–838).
    pub hours: u32,
    /// Minutes.
    pub minutes: u8,
    /// Seconds.
    pub seconds: u8,
    /// Microseconds.
    pub micros: u32,
    /// Fractional-second precision of the column (digits printed).
    pub fsp: u8,
}

impl Time {
    /// The `SELECT` text (`[-]HH:MM:SS[.f]`) without allocating; same as `to_string()`.
    pub fn to_text(&self) -> AsciiText {
        let mut t = AsciiText::new();
        if self.negative {
            t.push(b'-');
        }
        t.push_padded(self.hours, 2);
        t.push(b':');
        t.push_padded(u32::from(self.minutes), 2);
        t.push(b':');
        t.push_padded(u32::from(self.seconds), 2);
        t.push_frac(self.micros, self.fsp);
        t
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A `DATETIME` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// Date part.
    pub date: Date,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Microseconds.
    pub micros: u32,
    /// Fractional-second precision of the column.
    pub fsp: u8,
}

impl DateTime {
    /// The `SELECT` text (`YYYY-MM-DD HH:MM:SS[.f]`) without allocating; same as `to_string()`.
    pub fn to_text(&self) -> AsciiText {
        let d = &self.date;
        if d.year <= 9999
            && d.month <= 99
            && d.day <= 99
            && self.hour <= 99
            && self.minute <= 99
            && self.second <= 99
            && self.micros <= 999_999
        {
            // Every field has its fixed width: write the 26 bytes of the longest form in
            // place (two digits at a time) and keep `19 + '.' + fsp` of them.
            let mut t = AsciiText::new();
            let b = &mut t.buf;
            let pair = |b: &mut [u8], at: usize, v: u32| {
                let v = 2 * (v as usize % 100);
                b[at..at + 2].copy_from_slice(&DIGIT_PAIRS[v..v + 2]);
            };
            let year = u32::from(d.year);
            pair(b, 0, year / 100);
            pair(b, 2, year);
            b[4] = b'-';
            pair(b, 5, u32::from(d.month));
            b[7] = b'-';
            pair(b, 8, u32::from(d.day));
            b[10] = b' ';
            pair(b, 11, u32::from(self.hour));
            b[13] = b':';
            pair(b, 14, u32::from(self.minute));
            b[16] = b':';
            pair(b, 17, u32::from(self.second));
            let fsp = self.fsp.min(6);
            if fsp > 0 {
                b[19] = b'.';
                pair(b, 20, self.micros / 10_000);
                pair(b, 22, self.micros / 100);
                pair(b, 24, self.micros);
                t.len = 20 + fsp;
            } else {
                t.len = 19;
            }
            return t;
        }
        let mut t = AsciiText::new();
        self.date.push_to(&mut t);
        t.push(b' ');
        t.push_padded(u32::from(self.hour), 2);
        t.push(b':');
        t.push_padded(u32::from(self.minute), 2);
        t.push(b':');
        t.push_padded(u32::from(self.second), 2);
        t.push_frac(self.micros, self.fsp);
        t
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A `TIMESTAMP` value: seconds since the epoch (UTC). `0` is the zero timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub seconds: u32,
    /// Microseconds.
    pub micros: u32,
    /// Fractional-second precision of the column.
    pub fsp: u8,
}

impl Timestamp {
    /// The UTC calendar time (`0000-00-00 00:00:00` for the zero timestamp).
    pub fn to_utc(&self) -> DateTime {
        if self.seconds == 0 && self.micros == 0 {
            return DateTime {
                date: Date {
                    year: 0,
                    month: 0,
                    day: 0,
                },
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
                fsp: self.fsp,
            };
        }
        let days = i64::from(self.seconds / 86_400);
        let secs = self.seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            date: Date {
                year: year as u16,
                month,
                day,
            },
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            micros: self.micros,
            fsp: self.fsp,
        }
    }
}

impl Timestamp {
    /// Seconds since the epoch with the column's fractional digits (`1700000000.123`), the
    /// form `UNIX_TIMESTAMP(col)` prints, without allocating.
    pub fn to_epoch_text(&self) -> AsciiText {
        let mut t = AsciiText::new();
        t.push_padded(self.seconds, 1);
        t.push_frac(self.micros, self.fsp);
        t
    }
}

impl fmt::Display for Timestamp {
    /// `SELECT` output with `time_zone = '+00:00'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_utc().fmt(f)
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A JSON column value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JsonValue<'a> {
    /// MySQL binary JSON as stored (see [`JsonBinary::new`] over these bytes).
    Binary(Cow<'a, [u8]>),
    /// A document built by applying a partial update (PARTIAL_UPDATE_ROWS) to the before image.
    Dom(Box<JsonDom>),
    /// A partial-update diff that could not be applied because the before image lacks the
    /// column (e.g. `binlog_row_image=MINIMAL`); raw diff bytes.
    UnappliedDiff(Cow<'a, [u8]>),
}

impl JsonValue<'_> {
    /// Convert into an owned value.
    pub fn into_owned(self) -> JsonValue<'static> {
        match self {
            Self::Binary(b) => JsonValue::Binary(Cow::Owned(b.into_owned())),
            Self::Dom(d) => JsonValue::Dom(d),
            Self::UnappliedDiff(b) => JsonValue::UnappliedDiff(Cow::Owned(b.into_owned())),
        }
    }

    /// The JSON text as MySQL's `SELECT` renders it.
    pub fn to_text(&self) -> PResult<String> {
        match self {
            Self::Binary(b) => Ok(JsonBinary::new(b).to_text()?),
            Self::Dom(d) => Ok(d.to_text()),
            Self::UnappliedDiff(_) => Err(DecodeErrorKind::Malformed {
                what: "partial JSON diff whose before image lacks the column".into(),
            }),
        }
    }
}

/// A decoded column value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// Signed integer (TINYINT … BIGINT).
    Int(i64),
    /// Unsigned integer (TINYINT … BIGINT UNSIGNED).
    UInt(u64),
    /// `FLOAT`.
    Float(f32),
    /// `DOUBLE`.
    Double(f64),
    /// `DECIMAL` (exact; `Display` prints it as `SELECT` does, with `scale` digits).
    Decimal(DecimalBuf),
    /// `YEAR` (0 for the zero year).
    Year(u16),
    /// `DATE`.
    Date(Date),
    /// `TIME`.
    Time(Time),
    /// `DATETIME`.
    DateTime(DateTime),
    /// `TIMESTAMP`.
    Timestamp(Timestamp),
    /// Character data (CHAR, VARCHAR, TEXT) with the column's collation when known.
    String {
        /// Bytes in the column's character set.
        bytes: Cow<'a, [u8]>,
        /// Collation id, when the metadata has it.
        collation: Option<u16>,
    },
    /// Binary data (BINARY, VARBINARY, BLOB).
    Bytes(Cow<'a, [u8]>),
    /// `ENUM` index (1-based; 0 = the empty error value). Labels: [`ColumnDef::enum_label`].
    Enum(u16),
    /// `SET` bitmask. Labels: [`ColumnDef::set_values`].
    Set(u64),
    /// `BIT(n)`.
    Bit(u64),
    /// `JSON`.
    Json(JsonValue<'a>),
    /// `GEOMETRY`: 4-byte little-endian SRID followed by WKB.
    Geometry(Cow<'a, [u8]>),
    /// `VECTOR`: little-endian float32 values.
    Vector(Cow<'a, [u8]>),
}

impl Value<'_> {
    /// Convert into an owned value (same variant, data copied where it was borrowed).
    #[inline]
    pub fn into_owned(self) -> Value<'static> {
        fn own(b: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
            Cow::Owned(b.into_owned())
        }
        match self {
            Value::Null => Value::Null,
            Value::Int(v) => Value::Int(v),
            Value::UInt(v) => Value::UInt(v),
            Value::Float(v) => Value::Float(v),
            Value::Double(v) => Value::Double(v),
            Value::Decimal(d) => Value::Decimal(d),
            Value::Year(v) => Value::Year(v),
            Value::Date(v) => Value::Date(v),
            Value::Time(v) => Value::Time(v),
            Value::DateTime(v) => Value::DateTime(v),
            Value::Timestamp(v) => Value::Timestamp(v),
            Value::String { bytes, collation } => Value::String {
                bytes: own(bytes),
                collation,
            },
            Value::Bytes(b) => Value::Bytes(own(b)),
            Value::Enum(v) => Value::Enum(v),
            Value::Set(v) => Value::Set(v),
            Value::Bit(v) => Value::Bit(v),
            Value::Json(j) => Value::Json(j.into_owned()),
            Value::Geometry(b) => Value::Geometry(own(b)),
            Value::Vector(b) => Value::Vector(own(b)),
        }
    }

    /// The same value borrowing this one's bytes (a JSON document built from a partial
    /// update is cloned).
    pub fn borrowed(&self) -> Value<'_> {
        fn b(c: &[u8]) -> Cow<'_, [u8]> {
            Cow::Borrowed(c)
        }
        match self {
            Value::Null => Value::Null,
            Value::Int(v) => Value::Int(*v),
            Value::UInt(v) => Value::UInt(*v),
            Value::Float(v) => Value::Float(*v),
            Value::Double(v) => Value::Double(*v),
            Value::Decimal(d) => Value::Decimal(*d),
            Value::Year(v) => Value::Year(*v),
            Value::Date(v) => Value::Date(*v),
            Value::Time(v) => Value::Time(*v),
            Value::DateTime(v) => Value::DateTime(*v),
            Value::Timestamp(v) => Value::Timestamp(*v),
            Value::String { bytes, collation } => Value::String {
                bytes: b(bytes),
                collation: *collation,
            },
            Value::Bytes(v) => Value::Bytes(b(v)),
            Value::Enum(v) => Value::Enum(*v),
            Value::Set(v) => Value::Set(*v),
            Value::Bit(v) => Value::Bit(*v),
            Value::Json(JsonValue::Binary(v)) => Value::Json(JsonValue::Binary(b(v))),
            Value::Json(JsonValue::Dom(d)) => Value::Json(JsonValue::Dom(d.clone())),
            Value::Json(JsonValue::UnappliedDiff(v)) => Value::Json(JsonValue::UnappliedDiff(b(v))),
            Value::Geometry(v) => Value::Geometry(b(v)),
            Value::Vector(v) => Value::Vector(b(v)),
        }
    }

    /// The float32 elements of a VECTOR value.
    pub fn vector_elements(&self) -> Option<Vec<f32>> {
        match self {
            Value::Vector(b) if b.len() % 4 == 0 => Some(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            _ => None,
        }
    }
}

fn bad(column: usize, type_code: u8, what: impl Into<String>) -> DecodeErrorKind {
    DecodeErrorKind::BadColumnValue {
        column,
        type_code,
        what: what.into(),
    }
}

fn take(buf: &[u8], n: usize, column: usize, type_code: u8) -> PResult<&[u8]> {
    buf.get(..n).ok_or_else(|| {
        bad(
            column,
            type_code,
            format!("needs {n} bytes, {} left", buf.len()),
        )
    })
}

fn frac_micros(bytes: &[u8], fsp: u8) -> u32 {
    let v = be_uint(bytes) as u32;
    match fsp {
        1 | 2 => v * 10_000,
        3 | 4 => v * 100,
        _ => v,
    }
}

fn fsp_bytes(fsp: u8) -> usize {
    usize::from(fsp.min(6)).div_ceil(2)
}

/// The length of the non-NULL column value at the start of `buf`, checked as
/// [`decode_value`] checks it, without building the value: what a pass that only finds where
/// row images lie needs. Types whose decoding checks more than lengths and a few header bits
/// (legacy TIME/DATETIME, ENUM/SET/BIT, MariaDB compressed columns, unsupported types) are
/// decoded; DECIMAL gets the digit-group check `decode_value` gives it ([`Decimal::check`]),
/// without the copy into a value. Equal to `decode_value(..).map(|(_, n)| n)`, which a
/// property test checks.
pub(crate) fn value_len(
    col: &ColumnDef<'_>,
    index: usize,
    buf: &[u8],
    max_alloc: usize,
) -> PResult<usize> {
    let tc = col.type_code;
    let fixed = |n: usize| take(buf, n, index, tc).map(|_| n);
    let prefixed = |len_bytes: usize| -> PResult<usize> {
        let len = le_uint(take(buf, len_bytes, index, tc)?) as usize;
        take(&buf[len_bytes..], len, index, tc)?;
        Ok(len_bytes + len)
    };
    match col.column_type {
        // The same check as `decode_value`'s, without the copy into a `DecimalBuf`.
        ColumnType::NewDecimal => check_decimal(col, index, buf).map(|(n, _, _)| n),
        ColumnType::Tiny | ColumnType::Year => fixed(1),
        ColumnType::Short => fixed(2),
        ColumnType::Int24 | ColumnType::Date | ColumnType::NewDate => fixed(3),
        ColumnType::Long | ColumnType::Float | ColumnType::Timestamp => fixed(4),
        ColumnType::LongLong | ColumnType::Double => fixed(8),
        ColumnType::Timestamp2 => fixed(4 + fsp_bytes(col.meta as u8)),
        ColumnType::Time2 => fixed(3 + fsp_bytes(col.meta as u8)),
        ColumnType::DateTime2 => {
            let n = 5 + fsp_bytes(col.meta as u8);
            let b = take(buf, n, index, tc)?;
            if be_uint(&b[..5]) < 0x80_0000_0000 {
                return Err(bad(index, tc, "negative DATETIME2"));
            }
            Ok(n)
        }
        ColumnType::VarChar | ColumnType::VarString => prefixed(if col.meta < 256 { 1 } else { 2 }),
        ColumnType::String => {
            let b0 = col.meta >> 8;
            let max_len = (((b0 & 0x30) ^ 0x30) << 4) | (col.meta & 0xff);
            prefixed(if max_len > 255 { 2 } else { 1 })
        }
        ColumnType::Blob | ColumnType::Geometry | ColumnType::Json | ColumnType::Vector => {
            let len_bytes = usize::from(col.meta);
            if !(1..=4).contains(&len_bytes) {
                return Err(bad(index, tc, format!("length-prefix size {len_bytes}")));
            }
            prefixed(len_bytes)
        }
        _ => decode_value(col, index, buf, max_alloc).map(|(_, n)| n),
    }
}

/// How [`value_len`] measures a column's non-NULL values, worked out once per column: the
/// same rules without the dispatch on the column type for every value. The rows check's fast
/// path (`rows::ImagePlan`) measures rows with these; [`ScanStep::len`] gives what `value_len`
/// gives, which a property test checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanStep {
    /// Always this many bytes, nothing else checked.
    Fixed(usize),
    /// A little-endian length of this many bytes (1 to 4), then that many bytes.
    Prefixed(usize),
    /// A DECIMAL: its size, every digit group checked.
    Decimal(DecimalCheck),
    /// A DATETIME2 of this many bytes, which must not be negative (sign bit set).
    DateTime2(usize),
    /// Any other column (its index): measured by [`value_len`].
    Other(usize),
}

impl ScanStep {
    /// The step for `col`, column `index` (the arms of [`value_len`], in the same order).
    pub(crate) fn of(col: &ColumnDef<'_>, index: usize) -> Self {
        let prefixed_by_max = |max_len: u16| Self::Prefixed(if max_len > 255 { 2 } else { 1 });
        match col.column_type {
            ColumnType::NewDecimal => {
                DecimalCheck::new((col.meta & 0xff) as u8, (col.meta >> 8) as u8)
                    .map_or(Self::Other(index), Self::Decimal)
            }
            ColumnType::Tiny | ColumnType::Year => Self::Fixed(1),
            ColumnType::Short => Self::Fixed(2),
            ColumnType::Int24 | ColumnType::Date | ColumnType::NewDate => Self::Fixed(3),
            ColumnType::Long | ColumnType::Float | ColumnType::Timestamp => Self::Fixed(4),
            ColumnType::LongLong | ColumnType::Double => Self::Fixed(8),
            ColumnType::Timestamp2 => Self::Fixed(4 + fsp_bytes(col.meta as u8)),
            ColumnType::Time2 => Self::Fixed(3 + fsp_bytes(col.meta as u8)),
            ColumnType::DateTime2 => Self::DateTime2(5 + fsp_bytes(col.meta as u8)),
            ColumnType::VarChar | ColumnType::VarString => prefixed_by_max(col.meta),
            ColumnType::String => {
                let b0 = col.meta >> 8;
                prefixed_by_max((((b0 & 0x30) ^ 0x30) << 4) | (col.meta & 0xff))
            }
            ColumnType::Blob | ColumnType::Geometry | ColumnType::Json | ColumnType::Vector
                if (1..=4).contains(&col.meta) =>
            {
                Self::Prefixed(usize::from(col.meta))
            }
            _ => Self::Other(index),
        }
    }

    /// The length of the non-NULL value at the start of `buf` of the column this step was made
    /// for (`cols`: the table's columns): [`value_len`]'s answer, `None` where it is an error.
    #[inline(always)]
    pub(crate) fn len(
        &self,
        cols: &[ColumnDef<'_>],
        buf: &[u8],
        max_alloc: usize,
    ) -> Option<usize> {
        match *self {
            Self::Fixed(n) => (buf.len() >= n).then_some(n),
            Self::Prefixed(k) => {
                let end = (le_uint(buf.get(..k)?) as usize).checked_add(k)?;
                (buf.len() >= end).then_some(end)
            }
            Self::Decimal(c) => c.accepts(buf.get(..c.size())?).then_some(c.size()),
            // Not negative: the first of its five integer bytes has the sign bit set.
            Self::DateTime2(n) => (buf.get(..n)?.first()? & 0x80 != 0).then_some(n),
            Self::Other(i) => value_len(cols.get(i)?, i, buf, max_alloc).ok(),
        }
    }
}

/// The DECIMAL column value at the start of `buf` checked ([`Decimal::check`]): its length,
/// precision and scale. Shared by [`value_len`] and [`decode_value_into`].
#[inline(always)]
fn check_decimal(col: &ColumnDef<'_>, index: usize, buf: &[u8]) -> PResult<(usize, u8, u8)> {
    let precision = (col.meta & 0xff) as u8;
    let scale = (col.meta >> 8) as u8;
    let n = Decimal::check(buf, precision, scale)
        .map_err(|e| bad(index, col.type_code, e.to_string()))?;
    Ok((n, precision, scale))
}

/// Decode one non-NULL column value from the start of `buf`; returns the value and its length.
pub(crate) fn decode_value<'a>(
    col: &ColumnDef<'_>,
    index: usize,
    buf: &'a [u8],
    max_alloc: usize,
) -> PResult<(Value<'a>, usize)> {
    let mut slot = None;
    let n = decode_value_into(col, index, buf, max_alloc, &mut slot)?;
    slot.map(|v| (v, n))
        .ok_or_else(|| bad(index, col.type_code, "no value decoded"))
}

/// [`decode_value`] into `slot` (left as it was on error); returns the value's length.
#[inline(always)]
pub(crate) fn decode_value_into<'a>(
    col: &ColumnDef<'_>,
    index: usize,
    buf: &'a [u8],
    max_alloc: usize,
    slot: &mut Option<Value<'a>>,
) -> PResult<usize> {
    let tc = col.type_code;
    let unsigned = col.unsigned == Some(true);
    let t = |n: usize| take(buf, n, index, tc);
    let int = |n: usize| -> PResult<(Value<'a>, usize)> {
        let raw = le_uint(t(n)?);
        let v = if unsigned {
            Value::UInt(raw)
        } else {
            let shift = 64 - 8 * n as u32;
            Value::Int(((raw << shift) as i64) >> shift)
        };
        Ok((v, n))
    };
    // Each arm stores its value straight into `slot`: a value built in a temporary and
    // copied into place afterwards was read back with a 16-byte load over the narrower stores
    // that had just written it (a store-forwarding stall on every column).
    macro_rules! out {
        ($e:expr) => {{
            let (v, n) = $e;
            *slot = Some(v);
            n
        }};
    }
    Ok(match col.column_type {
        ColumnType::Tiny => out!(int(1)?),
        ColumnType::Short => out!(int(2)?),
        ColumnType::Int24 => out!(int(3)?),
        ColumnType::Long => out!(int(4)?),
        ColumnType::LongLong => out!(int(8)?),
        ColumnType::Float => out!({
            let b = t(4)?;
            (
                Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                4,
            )
        }),
        ColumnType::Double => out!({
            let b = t(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            (Value::Double(f64::from_le_bytes(a)), 8)
        }),
        ColumnType::NewDecimal => {
            let (n, precision, scale) = check_decimal(col, index, buf)?;
            // Filled in place: a DecimalBuf built on the stack by a variable-length copy and
            // then copied into the slot was read back over that copy's narrower stores.
            if let Value::Decimal(b) = slot.insert(Value::Decimal(DecimalBuf::EMPTY)) {
                b.fill_from(&buf[..n], precision, scale);
            }
            n
        }
        ColumnType::Year => out!({
            let y = t(1)?[0];
            (Value::Year(if y == 0 { 0 } else { 1900 + u16::from(y) }), 1)
        }),
        ColumnType::Date | ColumnType::NewDate => out!({
            let v = le_uint(t(3)?) as u32;
            (
                Value::Date(Date {
                    year: (v >> 9) as u16,
                    month: ((v >> 5) & 15) as u8,
                    day: (v & 31) as u8,
                }),
                3,
            )
        }),
        ColumnType::Time => out!({
            // Legacy TIME: signed 3-byte integer ±HHMMSS.
            let raw = le_uint(t(3)?) as u32;
            let v = ((raw << 8) as i32) >> 8;
            let a = v.unsigned_abs();
            // MariaDB 5.3 "hires" TIME(n) columns share type code 11 with no metadata; their
            // bytes are not ±HHMMSS. Refuse what cannot be a legacy TIME instead of inventing one.
            if a / 100 % 100 > 59 || a % 100 > 59 || a / 10_000 > 838 {
                return Err(bad(index, tc, format!("not a legacy TIME value ({v})")));
            }
            (
                Value::Time(Time {
                    negative: v < 0,
                    hours: a / 10_000,
                    minutes: (a / 100 % 100) as u8,
                    seconds: (a % 100) as u8,
                    micros: 0,
                    fsp: 0,
                }),
                3,
            )
        }),
        ColumnType::DateTime => out!({
            // Legacy DATETIME: YYYYMMDDhhmmss as an 8-byte integer.
            let v = le_uint(t(8)?);
            let (d, tm) = (v / 1_000_000, v % 1_000_000);
            // As for TIME: MariaDB "hires" DATETIME(n) shares the code; refuse impossible fields.
            if d / 10_000 > 9999
                || d / 100 % 100 > 12
                || d % 100 > 31
                || tm / 10_000 > 23
                || tm / 100 % 100 > 59
                || tm % 100 > 59
            {
                return Err(bad(index, tc, format!("not a legacy DATETIME value ({v})")));
            }
            (
                Value::DateTime(DateTime {
                    date: Date {
                        year: (d / 10_000) as u16,
                        month: (d / 100 % 100) as u8,
                        day: (d % 100) as u8,
                    },
                    hour: (tm / 10_000) as u8,
                    minute: (tm / 100 % 100) as u8,
                    second: (tm % 100) as u8,
                    micros: 0,
                    fsp: 0,
                }),
                8,
            )
        }),
        ColumnType::Timestamp => out!({
            let v = le_uint(t(4)?) as u32;
            (
                Value::Timestamp(Timestamp {
                    seconds: v,
                    micros: 0,
                    fsp: 0,
                }),
                4,
            )
        }),
        ColumnType::Timestamp2 => out!({
            let fsp = col.meta as u8;
            let n = 4 + fsp_bytes(fsp);
            let b = t(n)?;
            let seconds = be_uint(&b[..4]) as u32;
            (
                Value::Timestamp(Timestamp {
                    seconds,
                    micros: frac_micros(&b[4..], fsp),
                    fsp,
                }),
                n,
            )
        }),
        ColumnType::DateTime2 => out!({
            let fsp = col.meta as u8;
            let n = 5 + fsp_bytes(fsp);
            let b = t(n)?;
            let packed = be_uint(&b[..5]) as i64 - 0x80_0000_0000;
            if packed < 0 {
                return Err(bad(index, tc, "negative DATETIME2"));
            }
            let packed = packed as u64;
            let ymd = packed >> 17;
            let ym = ymd >> 5;
            let hms = packed & 0x1ffff;
            (
                Value::DateTime(DateTime {
                    date: Date {
                        year: (ym / 13) as u16,
                        month: (ym % 13) as u8,
                        day: (ymd & 31) as u8,
                    },
                    hour: (hms >> 12) as u8,
                    minute: ((hms >> 6) & 63) as u8,
                    second: (hms & 63) as u8,
                    micros: frac_micros(&b[5..], fsp),
                    fsp,
                }),
                n,
            )
        }),
        ColumnType::Time2 => out!({
            let fsp = col.meta as u8;
            let n = 3 + fsp_bytes(fsp);
            let b = t(n)?;
            // MySQL my_time_packed_from_binary: a packed value (hms << 24) + micros.
            const INT_OFS: i64 = 0x80_0000;
            let packed: i64 = match fsp {
                0 => (be_uint(&b[..3]) as i64 - INT_OFS) << 24,
                1 | 2 => {
                    let mut ip = be_uint(&b[..3]) as i64 - INT_OFS;
                    let mut frac = i64::from(b[3]);
                    if ip < 0 && frac != 0 {
                        ip += 1;
                        frac -= 0x100;
                    }
                    (ip << 24) + frac * 10_000
                }
                3 | 4 => {
                    let mut ip = be_uint(&b[..3]) as i64 - INT_OFS;
                    let mut frac = be_uint(&b[3..5]) as i64;
                    if ip < 0 && frac != 0 {
                        ip += 1;
                        frac -= 0x10000;
                    }
                    (ip << 24) + frac * 100
                }
                _ => be_uint(&b[..6]) as i64 - 0x8000_0000_0000,
            };
            let negative = packed < 0;
            let a = packed.unsigned_abs();
            let hms = a >> 24;
            (
                Value::Time(Time {
                    negative,
                    hours: ((hms >> 12) & 0x3ff) as u32,
                    minutes: ((hms >> 6) & 63) as u8,
                    seconds: (hms & 63) as u8,
                    micros: (a & 0xff_ffff) as u32,
                    fsp,
                }),
                n,
            )
        }),
        ColumnType::VarChar | ColumnType::VarString => out!({
            let len_bytes = if col.meta < 256 { 1 } else { 2 };
            let len = le_uint(t(len_bytes)?) as usize;
            let data = take(&buf[len_bytes..], len, index, tc)?;
            (string_value(col, data), len_bytes + len)
        }),
        ColumnType::String => out!({
            let b0 = col.meta >> 8;
            let max_len = (((b0 & 0x30) ^ 0x30) << 4) | (col.meta & 0xff);
            let len_bytes = if max_len > 255 { 2 } else { 1 };
            let len = le_uint(t(len_bytes)?) as usize;
            let data = take(&buf[len_bytes..], len, index, tc)?;
            (string_value(col, data), len_bytes + len)
        }),
        ColumnType::Enum => out!({
            let n = usize::from(col.meta & 0xff);
            if !(1..=2).contains(&n) {
                return Err(bad(index, tc, format!("ENUM pack length {n}")));
            }
            (Value::Enum(le_uint(t(n)?) as u16), n)
        }),
        ColumnType::Set => out!({
            let n = usize::from(col.meta & 0xff);
            if !(1..=8).contains(&n) {
                return Err(bad(index, tc, format!("SET pack length {n}")));
            }
            (Value::Set(le_uint(t(n)?)), n)
        }),
        ColumnType::Bit => out!({
            let bits = usize::from(col.meta & 0xff);
            let bytes = usize::from(col.meta >> 8);
            let n = bytes + usize::from(bits > 0);
            if n > 8 {
                return Err(bad(index, tc, format!("BIT of {n} bytes")));
            }
            (Value::Bit(be_uint(t(n)?)), n)
        }),
        ColumnType::Blob | ColumnType::Geometry | ColumnType::Json | ColumnType::Vector => out!({
            let len_bytes = usize::from(col.meta);
            if !(1..=4).contains(&len_bytes) {
                return Err(bad(index, tc, format!("length-prefix size {len_bytes}")));
            }
            let len = le_uint(t(len_bytes)?) as usize;
            let data = take(&buf[len_bytes..], len, index, tc)?;
            let v = match col.column_type {
                ColumnType::Geometry => Value::Geometry(Cow::Borrowed(data)),
                ColumnType::Json => Value::Json(JsonValue::Binary(Cow::Borrowed(data))),
                ColumnType::Vector => Value::Vector(Cow::Borrowed(data)),
                _ => string_value(col, data),
            };
            (v, len_bytes + len)
        }),
        ColumnType::VarCharCompressed | ColumnType::BlobCompressed => out!({
            let len_bytes = if col.column_type == ColumnType::BlobCompressed {
                usize::from(col.meta)
            } else if col.meta < 256 {
                1
            } else {
                2
            };
            if !(1..=4).contains(&len_bytes) {
                return Err(bad(index, tc, format!("length-prefix size {len_bytes}")));
            }
            let len = le_uint(t(len_bytes)?) as usize;
            let data = take(&buf[len_bytes..], len, index, tc)?;
            let plain = maria_column_uncompress(data, max_alloc)
                .map_err(|e| bad(index, tc, e.to_string()))?;
            let v = match plain {
                Cow::Borrowed(b) => string_value(col, b),
                Cow::Owned(o) => match string_value(col, &[]) {
                    Value::Bytes(_) => Value::Bytes(Cow::Owned(o)),
                    _ => Value::String {
                        bytes: Cow::Owned(o),
                        collation: col.collation,
                    },
                },
            };
            (v, len_bytes + len)
        }),
        ColumnType::Null => out!((Value::Null, 0)),
        ColumnType::Decimal | ColumnType::Other(_) => {
            return Err(DecodeErrorKind::UnsupportedColumnType {
                type_code: tc,
                column: index,
            });
        }
    })
}

fn string_value<'a>(col: &ColumnDef<'_>, data: &'a [u8]) -> Value<'a> {
    if col.is_binary() == Some(true) {
        Value::Bytes(Cow::Borrowed(data))
    } else {
        Value::String {
            bytes: Cow::Borrowed(data),
            collation: col.collation,
        }
    }
}

/// MariaDB column compression (`field_comp.cc`): an empty value is empty; otherwise a header
/// byte. Bit 7 clear: the value follows as is. Bit 7 set: bits 0–2 give the byte count of the
/// original length (big-endian) that follows, bit 3 set means a raw deflate stream (clear: a
/// zlib-wrapped one). Verified on MariaDB 10.11 fixtures (`0x8a 03 84 …` = 900 bytes, raw).
fn maria_column_uncompress(data: &[u8], max: usize) -> PResult<Cow<'_, [u8]>> {
    use std::io::Read;
    let Some((&head, rest)) = data.split_first() else {
        return Ok(Cow::Borrowed(data));
    };
    if head & 0x80 == 0 {
        return Ok(Cow::Borrowed(rest));
    }
    if head & 0x70 != 0 {
        return Err(DecodeErrorKind::Malformed {
            what: format!("compressed column header {head:#04x}"),
        });
    }
    let lenlen = usize::from(head & 0x07);
    let len_raw = rest.get(..lenlen).ok_or(DecodeErrorKind::ShortBody {
        what: "compressed column length",
    })?;
    let len = be_uint(len_raw) as usize;
    if len > max {
        return Err(DecodeErrorKind::DecompressedTooLarge {
            size: len as u64,
            max: max as u64,
        });
    }
    let stream = &rest[lenlen..];
    let mut out = Vec::with_capacity(len);
    let res = if head & 0x08 != 0 {
        flate2::read::DeflateDecoder::new(stream)
            .take(len as u64 + 1)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(stream)
            .take(len as u64 + 1)
            .read_to_end(&mut out)
    };
    res.map_err(|e| DecodeErrorKind::Decompress {
        what: e.to_string(),
    })?;
    if out.len() != len {
        return Err(DecodeErrorKind::Decompress {
            what: format!("expected {len} bytes, got {}", out.len()),
        });
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn push_padded_matches_format_for_every_width() {
        let values = [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1_000,
            9_999,
            10_000,
            123_456,
            999_999,
            1_000_000,
            99_999_999,
            999_999_999,
            1_000_000_000,
            u32::MAX,
        ];
        for width in 0..=14 {
            for &n in &values {
                let mut t = AsciiText::new();
                t.push(b'x');
                t.push_padded(n, width);
                assert_eq!(t.as_str(), format!("x{n:0width$}"), "n={n} width={width}");
            }
        }
        // Dropped, not truncated, when it does not fit.
        let mut t = AsciiText::new();
        for _ in 0..AsciiText::CAPACITY - 3 {
            t.push(b'1');
        }
        t.push_padded(12_345, 0);
        assert_eq!(t.as_bytes().len(), AsciiText::CAPACITY - 3);
        t.push_padded(123, 0);
        assert_eq!(t.as_bytes().len(), AsciiText::CAPACITY);
    }

    /// The straightforward `format!` rendering the stack formatter must reproduce exactly.
    fn frac_ref(micros: u32, fsp: u8) -> String {
        if fsp == 0 {
            return String::new();
        }
        let fsp = fsp.min(6);
        let scaled = micros / 10u32.pow(6 - u32::from(fsp));
        format!(".{:0w$}", scaled, w = usize::from(fsp))
    }

    /// Every resolved column type, with metadata values that exercise its length rules.
    pub(crate) fn any_column() -> impl proptest::strategy::Strategy<Value = ColumnDef<'static>> {
        use proptest::prelude::*;
        let codes = prop_oneof![0u8..=20, Just(140u8), Just(141u8), 242u8..=255];
        let metas = prop_oneof![
            0u16..=8,
            250u16..=260,
            any::<u16>(),
            // STRING: real type ENUM / SET / CHAR in the high byte.
            (
                prop_oneof![Just(0xf7u16), Just(0xf8), Just(0xfe), Just(0xce)],
                0u16..=255
            )
                .prop_map(|(hi, lo)| (hi << 8) | lo),
        ];
        (
            codes,
            metas,
            any::<Option<bool>>(),
            proptest::option::of(0u16..=300),
        )
            .prop_map(|(code, meta, unsigned, collation)| ColumnDef {
                unsigned,
                collation,
                ..col(code, meta)
            })
    }

    proptest::proptest! {
        #[test]
        fn scan_step_agrees_with_value_len(
            col in any_column(),
            buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let want = value_len(&col, 0, &buf, 1 << 16).ok();
            let got = ScanStep::of(&col, 0).len(std::slice::from_ref(&col), &buf, 1 << 16);
            proptest::prop_assert_eq!(got, want, "{:?}", col);
        }

        #[test]
        fn value_len_agrees_with_decode_value(
            col in any_column(),
            buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let want = decode_value(&col, 3, &buf, 1 << 16).map(|(_, n)| n);
            let got = value_len(&col, 3, &buf, 1 << 16);
            proptest::prop_assert_eq!(got, want, "{:?}", col);
        }

        #[test]
        fn stack_text_equals_format(
            year in 0u16..=u16::MAX, month in 0u8..=255, day in 0u8..=255,
            hour in 0u8..=255, minute in 0u8..=255, second in 0u8..=255,
            hours in 0u32..=u32::MAX, micros in 0u32..2_000_000, fsp in 0u8..=9,
            negative: bool, epoch in 0u32..=u32::MAX,
        ) {
            let date = Date { year, month, day };
            let date_ref = format!("{year:04}-{month:02}-{day:02}");
            proptest::prop_assert_eq!(date.to_text().to_string(), date_ref.clone());
            proptest::prop_assert_eq!(date.to_string(), date_ref.clone());
            let dt = DateTime { date, hour, minute, second, micros, fsp };
            let dt_ref =
                format!("{date_ref} {hour:02}:{minute:02}:{second:02}{}", frac_ref(micros, fsp));
            proptest::prop_assert_eq!(dt.to_text().to_string(), dt_ref.clone());
            proptest::prop_assert_eq!(dt.to_string(), dt_ref);
            let t = Time { negative, hours, minutes: minute, seconds: second, micros, fsp };
            let t_ref = format!(
                "{}{hours:02}:{minute:02}:{second:02}{}",
                if negative { "-" } else { "" },
                frac_ref(micros, fsp)
            );
            proptest::prop_assert_eq!(t.to_text().to_string(), t_ref.clone());
            proptest::prop_assert_eq!(t.to_string(), t_ref);
            let ts = Timestamp { seconds: epoch, micros, fsp };
            proptest::prop_assert_eq!(
                ts.to_epoch_text().to_string(),
                format!("{epoch}{}", frac_ref(micros, fsp))
            );
        }

        /// The fixed-width fast path of `DateTime::to_text` (every field within its width),
        /// which the wide ranges above reach only now and then.
        #[test]
        fn datetime_fast_path_equals_format(
            year in 0u16..=9999, month in 0u8..=99, day in 0u8..=99,
            hour in 0u8..=99, minute in 0u8..=99, second in 0u8..=99,
            micros in 0u32..=999_999, fsp in 0u8..=9,
        ) {
            let dt = DateTime { date: Date { year, month, day }, hour, minute, second, micros, fsp };
            let want = format!(
                "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}{}",
                frac_ref(micros, fsp)
            );
            proptest::prop_assert_eq!(dt.to_text().to_string(), want);
        }
    }

    #[test]
    fn timestamps_render_utc() {
        let t = Timestamp {
            seconds: 1_331_984_045,
            micros: 120_000,
            fsp: 3,
        };
        assert_eq!(t.to_string(), "2012-03-17 11:34:05.120");
        assert_eq!(
            Timestamp {
                seconds: 0,
                micros: 0,
                fsp: 0
            }
            .to_string(),
            "0000-00-00 00:00:00"
        );
        assert_eq!(
            Timestamp {
                seconds: 2_147_483_647,
                micros: 0,
                fsp: 0
            }
            .to_string(),
            "2038-01-19 03:14:07"
        );
        assert_eq!(
            Timestamp {
                seconds: 951_782_400,
                micros: 0,
                fsp: 0
            }
            .to_string(),
            "2000-02-29 00:00:00"
        );
    }

    #[test]
    fn time_render() {
        let t = Time {
            negative: true,
            hours: 507,
            minutes: 48,
            seconds: 27,
            micros: 0,
            fsp: 0,
        };
        assert_eq!(t.to_string(), "-507:48:27");
        let t = Time {
            negative: false,
            hours: 1,
            minutes: 2,
            seconds: 3,
            micros: 500_000,
            fsp: 1,
        };
        assert_eq!(t.to_string(), "01:02:03.5");
    }

    pub(crate) fn col(type_code: u8, meta: u16) -> ColumnDef<'static> {
        ColumnDef {
            type_code,
            column_type: ColumnType::resolve(type_code, meta),
            meta,
            nullable: true,
            unsigned: None,
            collation: None,
            name: None,
            enum_values: None,
            set_values: None,
            geometry_type: None,
            visible: None,
            vector_dimension: None,
            primary_key_prefix: None,
        }
    }

    /// Test-only encoders written from MySQL's documented packed layouts (my_time.cc).
    fn frac_bytes(micros: u32, fsp: u8) -> Vec<u8> {
        match fsp {
            1 | 2 => vec![(micros / 10_000) as u8],
            3 | 4 => ((micros / 100) as u16).to_be_bytes().to_vec(),
            5 | 6 => micros.to_be_bytes()[1..].to_vec(),
            _ => vec![],
        }
    }

    fn truncate(micros: u32, fsp: u8) -> u32 {
        let unit = 10u32.pow(6 - u32::from(fsp.min(6)));
        micros / unit * unit
    }

    fn enc_datetime2(dt: &DateTime) -> Vec<u8> {
        let ym = u64::from(dt.date.year) * 13 + u64::from(dt.date.month);
        let int = (ym << 22)
            | (u64::from(dt.date.day) << 17)
            | (u64::from(dt.hour) << 12)
            | (u64::from(dt.minute) << 6)
            | u64::from(dt.second);
        let mut b = (int + 0x80_0000_0000).to_be_bytes()[3..].to_vec();
        b.extend(frac_bytes(dt.micros, dt.fsp));
        b
    }

    fn enc_time2(t: &Time) -> Vec<u8> {
        let hms = (i64::from(t.hours) << 12) | (i64::from(t.minutes) << 6) | i64::from(t.seconds);
        let mut packed = (hms << 24) + i64::from(t.micros);
        if t.negative {
            packed = -packed;
        }
        let int_part = packed >> 24; // arithmetic shift, as MY_PACKED_TIME_GET_INT_PART
        let frac_part = packed % (1 << 24); // C remainder, as MY_PACKED_TIME_GET_FRAC_PART
        let int3 = |v: i64| ((v + 0x80_0000) as u32).to_be_bytes()[1..].to_vec();
        match t.fsp {
            0 => int3(int_part),
            1 | 2 => {
                let mut b = int3(int_part);
                b.push((frac_part / 10_000) as i8 as u8);
                b
            }
            3 | 4 => {
                let mut b = int3(int_part);
                b.extend(((frac_part / 100) as i16).to_be_bytes());
                b
            }
            _ => ((packed + 0x8000_0000_0000) as u64).to_be_bytes()[2..].to_vec(),
        }
    }

    proptest::proptest! {
        #[test]
        fn datetime2_round_trips(year in 0u16..=9999, month in 0u8..=12, day in 0u8..=31, hour in 0u8..=23,
                                 minute in 0u8..=59, second in 0u8..=59, micros in 0u32..1_000_000, fsp in 0u8..=6) {
            let dt = DateTime { date: Date { year, month, day }, hour, minute, second, micros: truncate(micros, fsp), fsp };
            let bytes = enc_datetime2(&dt);
            let (v, n) = decode_value(&col(18, u16::from(fsp)), 0, &bytes, 0).unwrap();
            proptest::prop_assert_eq!(n, bytes.len());
            proptest::prop_assert_eq!(v, Value::DateTime(dt));
        }

        #[test]
        fn time2_round_trips(negative: bool, hours in 0u32..=838, minutes in 0u8..=59, seconds in 0u8..=59,
                             micros in 0u32..1_000_000, fsp in 0u8..=6) {
            let micros = truncate(micros, fsp);
            let negative = negative && (hours, minutes, seconds, micros) != (0, 0, 0, 0);
            let t = Time { negative, hours, minutes, seconds, micros, fsp };
            let bytes = enc_time2(&t);
            let (v, n) = decode_value(&col(19, u16::from(fsp)), 0, &bytes, 0).unwrap();
            proptest::prop_assert_eq!(n, bytes.len());
            proptest::prop_assert_eq!(v, Value::Time(t));
        }

        #[test]
        fn timestamp2_round_trips(seconds: u32, micros in 0u32..1_000_000, fsp in 0u8..=6) {
            let micros = truncate(micros, fsp);
            let mut bytes = seconds.to_be_bytes().to_vec();
            bytes.extend(frac_bytes(micros, fsp));
            let (v, n) = decode_value(&col(17, u16::from(fsp)), 0, &bytes, 0).unwrap();
            proptest::prop_assert_eq!(n, bytes.len());
            proptest::prop_assert_eq!(v, Value::Timestamp(Timestamp { seconds, micros, fsp }));
        }

        #[test]
        fn legacy_date_round_trips(year in 0u16..=9999, month in 0u8..=12, day in 0u8..=31) {
            let v = (u32::from(year) << 9) | (u32::from(month) << 5) | u32::from(day);
            let bytes = &v.to_le_bytes()[..3];
            let (got, _) = decode_value(&col(10, 0), 0, bytes, 0).unwrap();
            proptest::prop_assert_eq!(got, Value::Date(Date { year, month, day }));
        }

        #[test]
        fn values_never_panic(type_code in proptest::sample::select(vec![1u8, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 140, 141, 242, 245, 246, 247, 248, 252, 253, 254, 255]),
                              meta: u16, bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = decode_value(&col(type_code, meta), 0, &bytes, 1 << 16);
        }
    }

    #[test]
    fn negative_time_with_fraction_edge_cases() {
        // -00:00:01.5 with fsp 1 and -838:59:59 with fsp 0, as MySQL stores them.
        for t in [
            Time {
                negative: true,
                hours: 0,
                minutes: 0,
                seconds: 1,
                micros: 500_000,
                fsp: 1,
            },
            Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 0,
                fsp: 0,
            },
            Time {
                negative: true,
                hours: 0,
                minutes: 0,
                seconds: 0,
                micros: 1,
                fsp: 6,
            },
            Time {
                negative: true,
                hours: 1,
                minutes: 0,
                seconds: 0,
                micros: 10_000,
                fsp: 3,
            },
        ] {
            let bytes = enc_time2(&t);
            let (v, _) = decode_value(&col(19, u16::from(t.fsp)), 0, &bytes, 0).unwrap();
            assert_eq!(v, Value::Time(t));
        }
        assert_eq!(
            Time {
                negative: true,
                hours: 0,
                minutes: 0,
                seconds: 1,
                micros: 500_000,
                fsp: 1
            }
            .to_string(),
            "-00:00:01.5"
        );
    }
}
