//! MySQL binary `DECIMAL` / `NUMERIC` values (`MYSQL_TYPE_NEWDECIMAL`).
//!
//! # Binary format
//!
//! A `DECIMAL(precision, scale)` value has `precision - scale` integer digits
//! and `scale` fractional digits. Each side is cut into groups of nine decimal
//! digits, counted outwards from the decimal point:
//!
//! * the integer side may start with a *partial* group holding
//!   `(precision - scale) % 9` digits, followed by full groups;
//! * the fractional side has full groups followed by a *partial* group holding
//!   `scale % 9` digits (the most significant fractional digits come first).
//!
//! A full group is stored as a 4-byte big-endian integer below `10^9`; a
//! partial group of `d` digits is stored big-endian in `[0, 1, 1, 2, 2, 3, 3,
//! 4, 4, 4][d]` bytes and must be below `10^d`. For a negative value every
//! byte is then inverted (XOR `0xFF`), and finally the top bit of the first
//! byte is flipped, so it is set for non-negative values and the encodings of
//! one `(precision, scale)` compare like the numbers under `memcmp`.
//!
//! Example (from `decimal2bin` in MySQL's `strings/decimal.cc`):
//! `DECIMAL(14,4)` `1234567890.1234` is `81 0D FB 38 D2 04 D2` and
//! `-1234567890.1234` is `7E F2 04 C7 2D FB 2D`.
//!
//! # Negative zero
//!
//! The sign lives only in the first byte, so the bytes can say "negative" while
//! every digit is zero. MySQL's `bin2decimal` copies the sign bit as is and only
//! clears it (through `decimal_make_zero`) when the decoded number has no
//! digits at all, which happens only when `scale == 0` and the integer part is
//! zero; `decimal2string` then prints a `'-'` whenever the sign is set, with no
//! check for zero (`my_decimal2string` and `Field_new_decimal::val_str` add none
//! either). So MySQL prints a negative zero as `"0"` when `scale == 0`, and as
//! `"-0.00"` (with `scale` zeros) when `scale > 0`. This module does the same.
//! MySQL can write such bytes: `decimal2bin` clears the sign of a zero only when
//! the value has no fractional digits either.
//! Going the other way, [`encode_decimal`] never writes a negative zero: like
//! `string2decimal` ("Avoid returning negative zero"), it encodes `"-0.00"` as
//! zero.

use std::fmt;

use crate::value::AsciiText;

/// Largest precision MySQL allows for `DECIMAL`.
pub const MAX_PRECISION: u8 = 65;

/// Largest scale MySQL allows in a `DECIMAL` column definition.
///
/// For information only: this module accepts any `scale <= precision`.
pub const MAX_SCALE: u8 = 30;

/// Decimal digits in one full 4-byte group.
const DIGITS_PER_GROUP: usize = 9;

/// Bytes used by one full group.
const BYTES_PER_GROUP: usize = 4;

/// Bytes needed for a group of `d` digits (`dig2bytes` in MySQL).
const DIG2BYTES: [usize; DIGITS_PER_GROUP + 1] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Powers of ten up to `10^9`.
const POW10: [u32; DIGITS_PER_GROUP + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Longest text form: sign, "0." and 65 fractional digits (`DECIMAL(65,65)`).
const MAX_TEXT_LEN: usize = MAX_PRECISION as usize + 3;
const _: () = assert!(MAX_TEXT_LEN <= AsciiText::CAPACITY);

/// Error decoding a MySQL binary DECIMAL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecimalError {
    /// The precision and scale do not describe a DECIMAL type: precision is 0
    /// or above 65, or scale is above precision.
    #[error("invalid DECIMAL precision/scale ({precision},{scale})")]
    InvalidPrecision {
        /// Total number of digits requested.
        precision: u8,
        /// Number of fractional digits requested.
        scale: u8,
    },
    /// The buffer is shorter than the binary size of the type.
    #[error("truncated DECIMAL: need {needed} bytes, {available} available")]
    Truncated {
        /// Binary size of the DECIMAL type.
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// A digit group is out of range: a full group is `>= 10^9`, or a partial
    /// group of `d` digits is `>= 10^d`.
    #[error("invalid digit group in binary DECIMAL")]
    InvalidDigits,
    /// The text given to [`encode_decimal`] is not a plain decimal number
    /// (`[+-]digits[.digits]`, at least one digit).
    #[error("malformed decimal text")]
    InvalidText,
    /// The text given to [`encode_decimal`] has more integer digits than
    /// `precision - scale`, or non-zero digits beyond `scale` fractional digits.
    #[error("decimal value does not fit DECIMAL({precision},{scale})")]
    OutOfRange {
        /// Total number of digits of the target type.
        precision: u8,
        /// Number of fractional digits of the target type.
        scale: u8,
    },
}

/// Bytes needed for a group of `digits` digits (`digits <= 9`).
fn dig2bytes(digits: usize) -> usize {
    DIG2BYTES.get(digits).copied().unwrap_or(BYTES_PER_GROUP)
}

/// `10^exp` for `exp <= 9`.
fn pow10(exp: usize) -> u32 {
    POW10.get(exp).copied().unwrap_or(u32::MAX)
}

/// How the digits of a `DECIMAL(precision, scale)` are cut into groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Digits in the leading partial integer group (0 when there is none).
    int_partial: usize,
    /// Number of full integer groups.
    int_full: usize,
    /// Number of full fractional groups.
    frac_full: usize,
    /// Digits in the trailing partial fractional group (0 when there is none).
    frac_partial: usize,
}

/// One digit group, in storage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    /// The group's value after undoing the sign transformation.
    value: u32,
    /// Number of decimal digits the group holds.
    digits: usize,
    /// Whether the group belongs to the integer part.
    integer: bool,
}

impl Layout {
    /// The layout of a structurally valid `DECIMAL(precision, scale)`.
    fn new(precision: u8, scale: u8) -> Result<Self, DecimalError> {
        if precision == 0 || precision > MAX_PRECISION || scale > precision {
            return Err(DecimalError::InvalidPrecision { precision, scale });
        }
        Ok(Self::from_digits(
            usize::from(precision - scale),
            usize::from(scale),
        ))
    }

    /// The layout for `intg` integer and `frac` fractional digits.
    fn from_digits(intg: usize, frac: usize) -> Self {
        Self {
            int_partial: intg % DIGITS_PER_GROUP,
            int_full: intg / DIGITS_PER_GROUP,
            frac_full: frac / DIGITS_PER_GROUP,
            frac_partial: frac % DIGITS_PER_GROUP,
        }
    }

    /// Number of integer digits.
    fn int_digits(self) -> usize {
        self.int_full * DIGITS_PER_GROUP + self.int_partial
    }

    /// Size of the binary form in bytes.
    fn bin_size(self) -> usize {
        dig2bytes(self.int_partial)
            + BYTES_PER_GROUP * (self.int_full + self.frac_full)
            + dig2bytes(self.frac_partial)
    }

    /// `(digits, is_integer)` for every group, most significant first.
    fn groups(self) -> impl Iterator<Item = (usize, bool)> {
        let int = std::iter::once(self.int_partial)
            .filter(|&d| d > 0)
            .chain(std::iter::repeat_n(DIGITS_PER_GROUP, self.int_full))
            .map(|d| (d, true));
        let frac = std::iter::repeat_n(DIGITS_PER_GROUP, self.frac_full)
            .chain(std::iter::once(self.frac_partial).filter(|&d| d > 0))
            .map(|d| (d, false));
        int.chain(frac)
    }
}

/// Whether the sign bit of a binary DECIMAL says "negative".
fn sign_bit_negative(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|&b| b & 0x80 == 0)
}

/// Call `f` with each digit group of `bytes` (which must be `layout.bin_size()` long; any
/// missing byte reads as zero), most significant first, until it returns false; returns
/// whether every call returned true. One pass, nothing stored.
#[inline]
fn each_group(bytes: &[u8], layout: Layout, mut f: impl FnMut(Group) -> bool) -> bool {
    let mask: u8 = if sign_bit_negative(bytes) { 0xFF } else { 0x00 };
    let mut offset = 0usize;
    let mut group = |digits: usize, integer: bool| {
        let len = dig2bytes(digits);
        let mut value = 0u32;
        for i in offset..offset + len {
            let b = bytes.get(i).copied().unwrap_or(0) ^ mask;
            let b = if i == 0 { b ^ 0x80 } else { b };
            value = (value << 8) | u32::from(b);
        }
        offset += len;
        f(Group {
            value,
            digits,
            integer,
        })
    };
    (layout.int_partial == 0 || group(layout.int_partial, true))
        && (0..layout.int_full).all(|_| group(DIGITS_PER_GROUP, true))
        && (0..layout.frac_full).all(|_| group(DIGITS_PER_GROUP, false))
        && (layout.frac_partial == 0 || group(layout.frac_partial, false))
}

/// Bytes a DECIMAL(precision, scale) takes in binary form.
///
/// Scales above MySQL's limit of 30 are accepted as long as
/// `scale <= precision`.
///
/// # Errors
///
/// [`DecimalError::InvalidPrecision`] when `precision == 0`,
/// `precision > 65` or `scale > precision`.
pub fn decimal_bin_size(precision: u8, scale: u8) -> Result<usize, DecimalError> {
    Layout::new(precision, scale).map(Layout::bin_size)
}

/// Most digit groups a DECIMAL has (65 digits: at most 9 groups; room to spare).
const MAX_GROUPS: usize = 12;

/// [`Decimal::check`] for one `DECIMAL(precision, scale)`, worked out once: the byte length and
/// the bound of each digit group. For checking many values of one column (the rows check's
/// fast path) without redoing the layout for each value; it accepts exactly what
/// [`Decimal::check`] accepts (a property test compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalCheck {
    size: usize,
    /// `(bytes, digits)` of each group, most significant first; the first `len` are used.
    groups: [(u8, u8); MAX_GROUPS],
    len: usize,
}

impl DecimalCheck {
    /// The check of a structurally valid type; `None` for an invalid one (which
    /// [`Decimal::check`] refuses whatever the bytes).
    pub(crate) fn new(precision: u8, scale: u8) -> Option<Self> {
        let layout = Layout::new(precision, scale).ok()?;
        let mut check = Self {
            size: layout.bin_size(),
            groups: [(0, 0); MAX_GROUPS],
            len: 0,
        };
        for (digits, _) in layout.groups() {
            // Both fit a byte: at most 4 bytes and 9 digits a group.
            *check.groups.get_mut(check.len)? = (dig2bytes(digits) as u8, digits as u8);
            check.len += 1;
        }
        Some(check)
    }

    /// Bytes of a value.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether `bytes` (a value's [`Self::size`] bytes) has every digit group in range.
    pub(crate) fn accepts(&self, bytes: &[u8]) -> bool {
        // As `each_group` reads them: the sign bit clear means negative (every byte
        // inverted), and the first byte's sign bit flipped.
        let mask: u32 = if sign_bit_negative(bytes) { 0xFF } else { 0 };
        let mut at = 0usize;
        self.groups[..self.len].iter().all(|&(n, digits)| {
            let n = usize::from(n);
            let mut value = 0u32;
            for i in at..at + n {
                let b = u32::from(bytes.get(i).copied().unwrap_or(0)) ^ mask;
                value = (value << 8) | if i == 0 { b ^ 0x80 } else { b };
            }
            at += n;
            value < pow10(usize::from(digits))
        })
    }
}

/// A borrowed binary DECIMAL value (exactly `decimal_bin_size` bytes).
///
/// Only [`Decimal::parse`] creates values, and it checks every digit group,
/// so formatting cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal<'a> {
    /// The binary form, exactly `decimal_bin_size(precision, scale)` bytes.
    bytes: &'a [u8],
    /// Total number of digits.
    precision: u8,
    /// Number of fractional digits.
    scale: u8,
}

impl<'a> Decimal<'a> {
    /// Validate the length and wrap. Takes the first [`decimal_bin_size`]
    /// bytes of `buf`; returns the value and bytes used.
    ///
    /// # Errors
    ///
    /// [`DecimalError::InvalidPrecision`] for an invalid type,
    /// [`DecimalError::Truncated`] when `buf` is too short, and
    /// [`DecimalError::InvalidDigits`] when a digit group is out of range.
    ///
    /// MySQL's own `bin2decimal` accepts a leading integer group of `d` digits
    /// up to `10^(d+1) - 1`; this check is stricter (`< 10^d`), which matches
    /// everything MySQL writes (`decimal2bin` reduces that group modulo `10^d`).
    pub fn parse(buf: &'a [u8], precision: u8, scale: u8) -> Result<(Self, usize), DecimalError> {
        let size = Self::check(buf, precision, scale)?;
        Ok((
            Self {
                bytes: &buf[..size],
                precision,
                scale,
            },
            size,
        ))
    }

    /// [`Self::parse`]'s check alone: the size of the valid DECIMAL at the start of `buf`.
    /// (The decoder's hot path: a returned `Decimal` was read back over the narrower stores
    /// that had just written it.)
    pub(crate) fn check(buf: &[u8], precision: u8, scale: u8) -> Result<usize, DecimalError> {
        let layout = Layout::new(precision, scale)?;
        let size = layout.bin_size();
        let bytes = buf.get(..size).ok_or(DecimalError::Truncated {
            needed: size,
            available: buf.len(),
        })?;
        if !each_group(bytes, layout, |g| g.value < pow10(g.digits)) {
            return Err(DecimalError::InvalidDigits);
        }
        Ok(size)
    }

    /// Total number of digits of the type.
    #[must_use]
    pub fn precision(&self) -> u8 {
        self.precision
    }

    /// Number of fractional digits of the type.
    #[must_use]
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// The binary form (exactly `decimal_bin_size(precision, scale)` bytes).
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the text form starts with `'-'`.
    ///
    /// This is the stored sign bit, except that a negative zero with
    /// `scale == 0` counts as non-negative, as MySQL prints it `"0"`. A negative
    /// zero with `scale > 0` is negative (MySQL prints `"-0.00"`); see the
    /// module documentation.
    #[must_use]
    pub fn is_negative(&self) -> bool {
        sign_bit_negative(self.bytes) && !(self.scale == 0 && self.is_zero())
    }

    /// Whether every digit is zero (whatever the sign bit says).
    #[must_use]
    pub fn is_zero(&self) -> bool {
        each_group(self.bytes, self.layout(), |g| g.value == 0)
    }

    /// The layout of this value's type.
    fn layout(&self) -> Layout {
        Layout::from_digits(
            usize::from(self.precision.saturating_sub(self.scale)),
            usize::from(self.scale),
        )
    }

    /// The text form without the sign.
    fn render_unsigned(&self, text: &mut AsciiText) {
        // `parse` checked that every group's value has at most `digits` digits, so printing a
        // group zero-padded to its width gives exactly its digits.
        // Integer groups come first: leading zero groups are skipped, the first non-zero one
        // is printed without padding; "0" when there is none. Then '.' and the fractional
        // groups, each padded to its width (there is at least one when scale > 0).
        let mut started = false;
        let mut in_fraction = false;
        each_group(self.bytes, self.layout(), |group| {
            if group.integer {
                if started {
                    text.push_padded(group.value, group.digits);
                } else if group.value != 0 {
                    text.push_padded(group.value, 1);
                    started = true;
                }
            } else {
                if !in_fraction {
                    if !started {
                        text.push(b'0');
                        started = true;
                    }
                    text.push(b'.');
                    in_fraction = true;
                }
                text.push_padded(group.value, group.digits);
            }
            true
        });
        if !started {
            text.push(b'0');
        }
    }

    /// The text exactly as MySQL SELECT prints it (see [`Decimal::write_text`]), on the stack.
    pub fn to_text(&self) -> AsciiText {
        let mut text = AsciiText::new();
        if self.is_negative() {
            text.push(b'-');
        }
        self.render_unsigned(&mut text);
        text
    }

    /// Append the text exactly as MySQL SELECT prints it: optional '-', integer
    /// part without leading zeros ("0" if empty), and if scale > 0 a '.' and
    /// exactly `scale` digits (e.g. DECIMAL(10,2) 5 → "5.00", -0.5 → "-0.50").
    ///
    /// # Errors
    ///
    /// None today: [`Decimal::parse`] already checked every digit group, so
    /// this always returns `Ok`; the `Result` leaves room for future checks.
    pub fn write_text(&self, out: &mut String) -> Result<(), DecimalError> {
        out.push_str(&self.to_text());
        Ok(())
    }
}

/// Writes the same text as [`Decimal::write_text`]. Width, fill, alignment,
/// `+` and `0` flags work as for integers; precision is ignored.
impl fmt::Display for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = AsciiText::new();
        self.render_unsigned(&mut text);
        f.pad_integral(!self.is_negative(), "", text.as_str())
    }
}

/// An owned DECIMAL value, stored inline (the largest type, DECIMAL(65,30), takes 30 bytes), so
/// it is `Copy` and needs no allocation. Made from a validated [`Decimal`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecimalBuf {
    bytes: [u8; 32],
    len: u8,
    precision: u8,
    scale: u8,
}

impl DecimalBuf {
    /// Zero bytes, precision and scale (filled by [`Self::fill_from`]).
    pub(crate) const EMPTY: Self = Self {
        bytes: [0; 32],
        len: 0,
        precision: 0,
        scale: 0,
    };

    /// Become the DECIMAL(`precision`, `scale`) whose binary form is `bytes`, checked already
    /// ([`Decimal::check`] guarantees len == decimal_bin_size(p, s) <= 30).
    pub(crate) fn fill_from(&mut self, bytes: &[u8], precision: u8, scale: u8) {
        let len = bytes.len().min(32);
        self.bytes[..len].copy_from_slice(&bytes[..len]);
        self.bytes[len..].fill(0);
        self.len = len as u8;
        self.precision = precision;
        self.scale = scale;
    }

    /// Borrow as a [`Decimal`].
    pub fn as_decimal(&self) -> Decimal<'_> {
        Decimal {
            bytes: &self.bytes[..usize::from(self.len)],
            precision: self.precision,
            scale: self.scale,
        }
    }
}

impl From<Decimal<'_>> for DecimalBuf {
    fn from(d: Decimal<'_>) -> Self {
        let mut b = Self::EMPTY;
        b.fill_from(d.bytes, d.precision, d.scale);
        b
    }
}

impl fmt::Display for DecimalBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_decimal(), f)
    }
}

impl fmt::Debug for DecimalBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DecimalBuf({}, DECIMAL({},{}))",
            self.as_decimal(),
            self.precision,
            self.scale
        )
    }
}

/// Drop leading `'0'` bytes.
fn trim_leading_zeros(mut digits: &[u8]) -> &[u8] {
    while let Some((b'0', rest)) = digits.split_first() {
        digits = rest;
    }
    digits
}

/// Encode a decimal string ("-123.45") into MySQL binary form for (precision,
/// scale), appending to out.
///
/// The text is `[+-]digits[.digits]` with at least one digit (`"5."` and
/// `".5"` are fine); no spaces or exponent. Leading zeros are ignored, and so
/// are fractional digits beyond `scale` if they are all zero; the value is
/// never rounded. A negative zero is encoded as zero, as MySQL's
/// `string2decimal` does.
///
/// `out` is left untouched on error.
///
/// # Errors
///
/// [`DecimalError::InvalidPrecision`] for an invalid type,
/// [`DecimalError::InvalidText`] for malformed text, and
/// [`DecimalError::OutOfRange`] when the value does not fit.
pub fn encode_decimal(
    text: &str,
    precision: u8,
    scale: u8,
    out: &mut Vec<u8>,
) -> Result<(), DecimalError> {
    let layout = Layout::new(precision, scale)?;
    let scale_digits = usize::from(scale);

    let (negative, body) = match text.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text.as_bytes()),
    };
    let mut parts = body.splitn(2, |&b| b == b'.');
    let int_text = parts.next().unwrap_or_default();
    let frac_text = parts.next().unwrap_or_default();
    if int_text.len() + frac_text.len() == 0
        || !int_text.iter().chain(frac_text).all(u8::is_ascii_digit)
    {
        return Err(DecimalError::InvalidText);
    }

    let int_sig = trim_leading_zeros(int_text);
    let int_digits = layout.int_digits();
    if int_sig.len() > int_digits || frac_text.iter().skip(scale_digits).any(|&b| b != b'0') {
        return Err(DecimalError::OutOfRange { precision, scale });
    }
    let is_zero = int_sig.is_empty() && frac_text.iter().all(|&b| b == b'0');
    let mask: u8 = if negative && !is_zero { 0xFF } else { 0x00 };

    // All `precision` digits, most significant first.
    let mut digits = std::iter::repeat_n(0u8, int_digits.saturating_sub(int_sig.len()))
        .chain(int_sig.iter().map(|&b| b - b'0'))
        .chain(frac_text.iter().take(scale_digits).map(|&b| b - b'0'))
        .chain(std::iter::repeat_n(
            0u8,
            scale_digits.saturating_sub(frac_text.len()),
        ));

    out.reserve(layout.bin_size());
    let start = out.len();
    for (group_digits, _) in layout.groups() {
        let value = digits
            .by_ref()
            .take(group_digits)
            .fold(0u32, |acc, d| acc * 10 + u32::from(d));
        let len = dig2bytes(group_digits);
        out.extend(
            value
                .to_be_bytes()
                .iter()
                .skip(BYTES_PER_GROUP.saturating_sub(len))
                .map(|&b| b ^ mask),
        );
    }
    if let Some(first) = out.get_mut(start) {
        *first ^= 0x80;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parse space-separated hex bytes.
    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
            .collect()
    }

    /// Decode `bytes` and return the text form.
    fn text(bytes: &[u8], precision: u8, scale: u8) -> Result<String, DecimalError> {
        let (d, _) = Decimal::parse(bytes, precision, scale)?;
        let mut s = String::new();
        d.write_text(&mut s)?;
        assert_eq!(s, d.to_string());
        Ok(s)
    }

    /// Encode `t` and return the bytes.
    fn enc(t: &str, precision: u8, scale: u8) -> Result<Vec<u8>, DecimalError> {
        let mut out = Vec::new();
        encode_decimal(t, precision, scale, &mut out)?;
        assert_eq!(Ok(out.len()), decimal_bin_size(precision, scale));
        Ok(out)
    }

    /// Check a text/bytes pair in both directions.
    fn both(t: &str, canonical: &str, precision: u8, scale: u8, bytes: &str) {
        let bytes = hex(bytes);
        assert_eq!(enc(t, precision, scale), Ok(bytes.clone()), "encode {t}");
        assert_eq!(
            text(&bytes, precision, scale).as_deref(),
            Ok(canonical),
            "decode {t}"
        );
    }

    /// Bytes for `d` digits, derived independently: the smallest `n` with
    /// `10^d <= 2^(8n - 1)` (MySQL reads groups as signed integers).
    fn oracle_bytes(d: usize) -> usize {
        if d == 0 {
            return 0;
        }
        let max = 10u64.pow(d as u32);
        (1..=4).find(|&n| max <= 1u64 << (8 * n - 1)).expect("fits")
    }

    #[test]
    fn a_refilled_decimal_buf_equals_a_fresh_one() {
        // A slot reused for a shorter value must not keep the longer one's bytes.
        let long = enc("-12345678901234567890.123456789", 65, 30).expect("encode");
        let short = enc("7.5", 4, 1).expect("encode");
        let (l, _) = Decimal::parse(&long, 65, 30).expect("parse");
        let (s, _) = Decimal::parse(&short, 4, 1).expect("parse");
        let mut b = DecimalBuf::from(l);
        b.fill_from(s.as_bytes(), 4, 1);
        assert_eq!(b, DecimalBuf::from(s));
        assert_eq!(b.as_decimal().to_string(), "7.5");
    }

    #[test]
    fn bin_size_known_values() {
        // MySQL manual: DECIMAL(18,9) → 4 + 4, DECIMAL(20,6) → 4 + 3 + 3.
        assert_eq!(decimal_bin_size(18, 9), Ok(8));
        assert_eq!(decimal_bin_size(20, 6), Ok(10));
        assert_eq!(decimal_bin_size(14, 4), Ok(7));
        assert_eq!(decimal_bin_size(1, 0), Ok(1));
        assert_eq!(decimal_bin_size(9, 0), Ok(4));
        assert_eq!(decimal_bin_size(10, 0), Ok(5));
        assert_eq!(decimal_bin_size(10, 2), Ok(5));
        assert_eq!(decimal_bin_size(2, 2), Ok(1));
        assert_eq!(decimal_bin_size(27, 27), Ok(12));
        assert_eq!(decimal_bin_size(30, 30), Ok(14));
        assert_eq!(decimal_bin_size(65, 0), Ok(29));
        assert_eq!(decimal_bin_size(65, 30), Ok(30));
        assert_eq!(decimal_bin_size(65, 65), Ok(29));
    }

    #[test]
    fn bin_size_invalid() {
        for (p, s) in [(0, 0), (66, 0), (66, 30), (255, 255), (5, 6), (0, 1)] {
            assert_eq!(
                decimal_bin_size(p, s),
                Err(DecimalError::InvalidPrecision {
                    precision: p,
                    scale: s
                })
            );
            assert!(Decimal::parse(&[0x80; 64], p, s).is_err());
            assert!(encode_decimal("0", p, s, &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn bin_size_all_types_match_oracle() {
        for p in 1..=65u8 {
            for s in 0..=p {
                let intg = usize::from(p - s);
                let frac = usize::from(s);
                let expect =
                    intg / 9 * 4 + oracle_bytes(intg % 9) + frac / 9 * 4 + oracle_bytes(frac % 9);
                assert_eq!(decimal_bin_size(p, s), Ok(expect), "({p},{s})");
            }
        }
    }

    #[test]
    fn mysql_doc_example() {
        both(
            "1234567890.1234",
            "1234567890.1234",
            14,
            4,
            "81 0D FB 38 D2 04 D2",
        );
        both(
            "-1234567890.1234",
            "-1234567890.1234",
            14,
            4,
            "7E F2 04 C7 2D FB 2D",
        );
    }

    #[test]
    fn small_values() {
        both("5", "5.00", 10, 2, "80 00 00 05 00");
        both("-0.5", "-0.50", 10, 2, "7F FF FF FF CD");
        both("0", "0.00", 10, 2, "80 00 00 00 00");
        both("0", "0", 1, 0, "80");
        both("9", "9", 1, 0, "89");
        both("-9", "-9", 1, 0, "76");
        both("-1", "-1", 1, 0, "7E");
        both("0.99", "0.99", 3, 2, "80 63");
        both("-0.01", "-0.01", 2, 2, "7E");
        both("123456789", "123456789", 9, 0, "87 5B CD 15");
        both("1000000000", "1000000000", 10, 0, "81 00 00 00 00");
        both("0.000000001", "0.000000001", 9, 9, "80 00 00 01");
        both("0.0000000001", "0.0000000001", 10, 10, "80 00 00 00 01");
        both("-12.3", "-12.3", 3, 1, "73 FC");
    }

    #[test]
    fn extremes_65_30() {
        let max = format!("{}.{}", "9".repeat(35), "9".repeat(30));
        let bytes = "85 F5 E0 FF 3B 9A C9 FF 3B 9A C9 FF 3B 9A C9 FF \
                     3B 9A C9 FF 3B 9A C9 FF 3B 9A C9 FF 03 E7";
        both(&max, &max, 65, 30, bytes);
        // Negating inverts every byte, including the already flipped top bit.
        let neg_bytes: String = hex(bytes)
            .iter()
            .map(|b| format!("{:02X} ", b ^ 0xFF))
            .collect();
        both(&format!("-{max}"), &format!("-{max}"), 65, 30, &neg_bytes);
        let tiny = format!("0.{}1", "0".repeat(29));
        both(
            &tiny,
            &tiny,
            65,
            30,
            &format!("80 {}00 01", "00 ".repeat(27)),
        );
    }

    #[test]
    fn extremes_65_0_and_65_65() {
        let max = "9".repeat(65);
        assert_eq!(
            text(&enc(&max, 65, 0).expect("fits"), 65, 0),
            Ok(max.clone())
        );
        let frac = format!("0.{max}");
        assert_eq!(
            text(&enc(&frac, 65, 65).expect("fits"), 65, 65),
            Ok(frac.clone())
        );
        let neg = format!("-{frac}");
        assert_eq!(
            text(&enc(&neg, 65, 65).expect("fits"), 65, 65),
            Ok(neg.clone())
        );
        assert_eq!(neg.len(), MAX_TEXT_LEN);
    }

    #[test]
    fn all_types_max_min_zero() {
        for p in 1..=65u8 {
            for s in 0..=p {
                let intg = usize::from(p - s);
                let frac = usize::from(s);
                let int = if intg == 0 {
                    "0".to_string()
                } else {
                    "9".repeat(intg)
                };
                let max = if s == 0 {
                    int
                } else {
                    format!("{int}.{}", "9".repeat(frac))
                };
                let unit = if s == 0 {
                    "1".to_string()
                } else {
                    format!("0.{}1", "0".repeat(frac - 1))
                };
                let zero = if s == 0 {
                    "0".to_string()
                } else {
                    format!("0.{}", "0".repeat(frac))
                };
                let mut ordered = Vec::new();
                for t in [format!("-{max}"), format!("-{unit}"), zero, unit, max] {
                    let bytes = enc(&t, p, s).expect("fits");
                    assert_eq!(text(&bytes, p, s).as_deref(), Ok(t.as_str()), "({p},{s})");
                    ordered.push(bytes);
                }
                // The encoding sorts like the numbers under memcmp.
                assert!(ordered.windows(2).all(|w| w[0] < w[1]), "({p},{s})");
                // One more integer digit never fits.
                let too_big = format!("1{}", "0".repeat(intg));
                assert_eq!(
                    enc(&too_big, p, s),
                    Err(DecimalError::OutOfRange {
                        precision: p,
                        scale: s
                    })
                );
            }
        }
    }

    #[test]
    fn negative_zero() {
        // scale > 0: MySQL keeps the sign and prints "-0.00".
        let buf = hex("7F FF FF FF FF");
        let (d, _) = Decimal::parse(&buf, 10, 2).expect("valid");
        assert_eq!(d.to_string(), "-0.00");
        assert!(d.is_negative() && d.is_zero());
        assert_eq!(text(&hex("7F"), 2, 2).as_deref(), Ok("-0.00"));
        // scale == 0: bin2decimal makes it a plain zero.
        let buf = hex("7F FF FF");
        let (d, _) = Decimal::parse(&buf, 5, 0).expect("valid");
        assert_eq!(d.to_string(), "0");
        assert!(!d.is_negative() && d.is_zero());
        // Encoding never produces a negative zero.
        assert_eq!(enc("-0.00", 10, 2), Ok(hex("80 00 00 00 00")));
        assert_eq!(enc("-0", 5, 0), Ok(hex("80 00 00")));
        assert_eq!(enc("-0.000", 3, 2), Ok(hex("80 00")));
    }

    #[test]
    fn invalid_digits() {
        // Full group of 10^9.
        assert_eq!(
            text(&hex("BB 9A CA 00"), 9, 0),
            Err(DecimalError::InvalidDigits)
        );
        // Same, negative.
        assert_eq!(
            text(&hex("44 65 35 FF"), 9, 0),
            Err(DecimalError::InvalidDigits)
        );
        // Partial groups of one digit holding 10.
        assert_eq!(text(&hex("8A"), 1, 0), Err(DecimalError::InvalidDigits));
        assert_eq!(text(&hex("75"), 1, 0), Err(DecimalError::InvalidDigits));
        // Two-digit fraction group holding 100.
        assert_eq!(text(&hex("80 64"), 3, 2), Err(DecimalError::InvalidDigits));
        // Top bit set in a later group of a positive value.
        assert_eq!(text(&hex("80 FF"), 3, 2), Err(DecimalError::InvalidDigits));
        // Fraction group of 10^9 in DECIMAL(18,9).
        assert_eq!(
            text(&hex("80 00 00 00 3B 9A CA 00"), 18, 9),
            Err(DecimalError::InvalidDigits)
        );
        assert_eq!(
            text(&hex("80 00 00 00 3B 9A C9 FF"), 18, 9).as_deref(),
            Ok("0.999999999")
        );
    }

    #[test]
    fn parse_length() {
        assert_eq!(
            Decimal::parse(&[0x80], 10, 2),
            Err(DecimalError::Truncated {
                needed: 5,
                available: 1
            })
        );
        assert_eq!(
            Decimal::parse(&[], 1, 0),
            Err(DecimalError::Truncated {
                needed: 1,
                available: 0
            })
        );
        let buf = hex("81 0D FB 38 D2 04 D2 AA BB");
        let (d, used) = Decimal::parse(&buf, 14, 4).expect("valid");
        assert_eq!(used, 7);
        assert_eq!(d.as_bytes(), &buf[..7]);
        assert_eq!((d.precision(), d.scale()), (14, 4));
        assert!(!d.is_negative() && !d.is_zero());
    }

    #[test]
    fn encode_text_forms() {
        assert_eq!(
            text(&enc("000123.4", 5, 1).expect("fits"), 5, 1).as_deref(),
            Ok("123.4")
        );
        assert_eq!(
            text(&enc("0000", 10, 2).expect("fits"), 10, 2).as_deref(),
            Ok("0.00")
        );
        assert_eq!(
            text(&enc("+5", 1, 0).expect("fits"), 1, 0).as_deref(),
            Ok("5")
        );
        assert_eq!(
            text(&enc(".5", 2, 1).expect("fits"), 2, 1).as_deref(),
            Ok("0.5")
        );
        assert_eq!(
            text(&enc("5.", 1, 0).expect("fits"), 1, 0).as_deref(),
            Ok("5")
        );
        assert_eq!(
            text(&enc("0.120", 3, 2).expect("fits"), 3, 2).as_deref(),
            Ok("0.12")
        );
        assert_eq!(
            text(&enc("00.5", 1, 1).expect("fits"), 1, 1).as_deref(),
            Ok("0.5")
        );
        for bad in [
            "", "-", "+", ".", "-.", "1.2.3", "1e5", " 1", "1 ", "--1", "+-1", "1,5", "٣",
        ] {
            assert_eq!(enc(bad, 10, 2), Err(DecimalError::InvalidText), "{bad:?}");
        }
        let oor = Err(DecimalError::OutOfRange {
            precision: 3,
            scale: 2,
        });
        assert_eq!(enc("0.125", 3, 2), oor);
        assert_eq!(enc("10", 3, 2), oor);
        assert_eq!(enc("-10.00", 3, 2), oor);
        // Nothing is appended on error.
        let mut out = vec![1, 2];
        assert!(encode_decimal("10", 3, 2, &mut out).is_err());
        assert_eq!(out, [1, 2]);
        // Appends after existing content, flipping only its own first byte.
        assert!(encode_decimal("1", 1, 0, &mut out).is_ok());
        assert_eq!(out, [1, 2, 0x81]);
    }

    #[test]
    fn display_flags() {
        let buf = hex("7F FF FF FF CD");
        let (d, _) = Decimal::parse(&buf, 10, 2).expect("valid");
        assert_eq!(format!("{d:>8}"), "   -0.50");
        assert_eq!(format!("{d:08}"), "-0000.50");
        let buf = hex("80 00 00 05 00");
        let (d, _) = Decimal::parse(&buf, 10, 2).expect("valid");
        assert_eq!(format!("{d:+}"), "+5.00");
        assert_eq!(format!("{d:<6}|"), "5.00  |");
    }

    /// Canonical MySQL text for sign, integer digits and fraction digits.
    fn canonical(negative: bool, int: &str, frac: &str, scale: usize) -> String {
        let int = int.trim_start_matches('0');
        let frac: String = frac
            .chars()
            .chain(std::iter::repeat('0'))
            .take(scale)
            .collect();
        let zero = int.is_empty() && frac.bytes().all(|b| b == b'0');
        let mut s = String::new();
        if negative && !zero {
            s.push('-');
        }
        s.push_str(if int.is_empty() { "0" } else { int });
        if scale > 0 {
            s.push('.');
            s.push_str(&frac);
        }
        s
    }

    /// Digit strings of up to `max` digits.
    fn digit_string(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, 0..=max)
            .prop_map(|v| v.into_iter().map(|d| char::from(b'0' + d)).collect())
    }

    /// A valid type and a matching decimal text with its canonical form.
    fn valid_case() -> impl Strategy<Value = (u8, u8, String, String)> {
        (1u8..=65)
            .prop_flat_map(|p| (Just(p), 0..=p))
            .prop_flat_map(|(p, s)| {
                (
                    Just(p),
                    Just(s),
                    digit_string(usize::from(p - s)),
                    digit_string(usize::from(s)),
                    0usize..3,
                    0usize..3,
                    0u8..3,
                    any::<bool>(),
                )
            })
            .prop_map(|(p, s, int, frac, lead, trail, sign, dot)| {
                let negative = sign == 1;
                let mut t = String::from(match sign {
                    1 => "-",
                    2 => "+",
                    _ => "",
                });
                t.push_str(&"0".repeat(lead));
                t.push_str(&int);
                let frac_text = format!("{frac}{}", "0".repeat(trail));
                if !frac_text.is_empty() || (dot && !(lead == 0 && int.is_empty())) {
                    t.push('.');
                    t.push_str(&frac_text);
                }
                if lead == 0 && int.is_empty() && frac_text.is_empty() {
                    t.push('0');
                }
                (p, s, t, canonical(negative, &int, &frac, usize::from(s)))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn decimal_check_accepts_what_decimal_check_accepts(
            p in 0u8..=70,
            s in 0u8..=70,
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            biased in any::<bool>(),
        ) {
            // Biased inputs keep most groups in range, so that both answers occur.
            let bytes: Vec<u8> = if biased {
                bytes.iter().enumerate().map(|(i, b)| if i % 4 == 0 { b & 0x83 } else { *b }).collect()
            } else {
                bytes
            };
            match DecimalCheck::new(p, s) {
                None => prop_assert!(Decimal::check(&bytes, p, s).is_err()),
                Some(c) => {
                    let want = Decimal::check(&bytes, p, s);
                    match bytes.get(..c.size()) {
                        Some(b) => prop_assert_eq!(c.accepts(b), want.is_ok(), "{:?}", want),
                        None => prop_assert!(want.is_err()),
                    }
                    if let Ok(n) = want {
                        prop_assert_eq!(n, c.size());
                    }
                }
            }
        }

        #[test]
        fn roundtrip_valid_text((p, s, t, canon) in valid_case()) {
            let bytes = enc(&t, p, s).map_err(|e| TestCaseError::fail(format!("{t}: {e}")))?;
            let (d, used) = Decimal::parse(&bytes, p, s)
                .map_err(|e| TestCaseError::fail(format!("{t}: {e}")))?;
            prop_assert_eq!(used, bytes.len());
            let mut out = String::new();
            prop_assert!(d.write_text(&mut out).is_ok());
            prop_assert_eq!(&out, &canon);
            prop_assert_eq!(d.to_string(), canon.clone());
            prop_assert_eq!(d.is_negative(), canon.starts_with('-'));
            // The canonical text encodes to the same bytes.
            prop_assert_eq!(enc(&canon, p, s), Ok(bytes));
        }

        #[test]
        fn random_bytes_never_panic(
            p in 0u8..=70,
            s in 0u8..=70,
            buf in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            match Decimal::parse(&buf, p, s) {
                Ok((d, used)) => {
                    prop_assert_eq!(Ok(used), decimal_bin_size(p, s));
                    let t = d.to_string();
                    // Shape: [-]int[.frac] with exactly `s` fractional digits.
                    let body = t.strip_prefix('-').unwrap_or(&t);
                    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
                    prop_assert_eq!(frac.len(), usize::from(s));
                    prop_assert_eq!(body.contains('.'), s > 0);
                    prop_assert!(!int.is_empty() && (int == "0" || !int.starts_with('0')));
                    prop_assert!(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()));
                    // Re-encoding gives the same bytes except for a negative zero.
                    if !(d.is_zero() && sign_bit_negative(d.as_bytes())) {
                        prop_assert_eq!(enc(&t, p, s), Ok(d.as_bytes().to_vec()));
                    }
                }
                Err(DecimalError::InvalidPrecision { .. }) => {
                    prop_assert!(p == 0 || p > 65 || s > p);
                }
                Err(DecimalError::Truncated { needed, available }) => {
                    prop_assert_eq!(available, buf.len());
                    prop_assert!(needed > available);
                }
                Err(DecimalError::InvalidDigits) => {}
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn short_buffers_rejected(
            (p, s) in (1u8..=65).prop_flat_map(|p| (Just(p), 0..=p)),
            cut in any::<proptest::sample::Index>(),
            fill in any::<u8>(),
        ) {
            let size = decimal_bin_size(p, s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let len = cut.index(size);
            let buf = vec![fill; len];
            prop_assert_eq!(
                Decimal::parse(&buf, p, s),
                Err(DecimalError::Truncated { needed: size, available: len })
            );
        }
    }
}
