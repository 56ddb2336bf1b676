//! A private, bounds-checked little-endian reader over a framed event body.
//!
//! Every read either returns the bytes or a [`DecodeErrorKind::ShortBody`] naming the field;
//! nothing here can panic on input data.

use crate::error::{DecodeErrorKind, PResult};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn short(what: &'static str) -> DecodeErrorKind {
    DecodeErrorKind::ShortBody { what }
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }

    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> PResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| short(what))?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| short(what))?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> PResult<()> {
        self.bytes(n, what).map(|_| ())
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> PResult<[u8; N]> {
        let s = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> PResult<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> PResult<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Little-endian unsigned integer of `n` (0..=8) bytes.
    pub(crate) fn uint_n(&mut self, n: usize, what: &'static str) -> PResult<u64> {
        let s = self.bytes(n, what)?;
        Ok(le_uint(s))
    }

    /// MySQL "packed integer" (length-encoded integer: `< 251` one byte, `252` + 2, `253` + 3,
    /// `254` + 8). `251` (NULL marker) is refused here.
    pub(crate) fn packed(&mut self, what: &'static str) -> PResult<u64> {
        let first = self.u8(what)?;
        match first {
            0..=250 => Ok(u64::from(first)),
            252 => self.uint_n(2, what),
            253 => self.uint_n(3, what),
            254 => self.uint_n(8, what),
            _ => Err(crate::error::malformed(format!(
                "{what}: invalid packed-integer prefix {first}"
            ))),
        }
    }

    /// A packed integer used as a length that must fit in the rest of the body.
    pub(crate) fn packed_len(&mut self, what: &'static str) -> PResult<usize> {
        let n = self.packed(what)?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| short(what))
    }

    /// Bytes up to (not including) the next NUL, consuming the NUL too.
    pub(crate) fn cstr(&mut self, what: &'static str) -> PResult<&'a [u8]> {
        let rest = self.peek_rest();
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| short(what))?;
        let s = &rest[..n];
        self.pos += n + 1;
        Ok(s)
    }
}

/// Little-endian unsigned integer from up to 8 bytes.
pub(crate) fn le_uint(s: &[u8]) -> u64 {
    s.iter()
        .take(8)
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Big-endian unsigned integer from up to 8 bytes.
pub(crate) fn be_uint(s: &[u8]) -> u64 {
    s.iter()
        .take(8)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_integers() {
        let mut c = Cursor::new(&[
            0xfa, 0xfc, 0x01, 0x02, 0xfd, 1, 2, 3, 0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80,
        ]);
        assert_eq!(c.packed("a").unwrap(), 250);
        assert_eq!(c.packed("b").unwrap(), 0x0201);
        assert_eq!(c.packed("c").unwrap(), 0x030201);
        assert_eq!(c.packed("d").unwrap(), 0x8000_0000_0000_0001);
        assert!(c.is_empty());
        assert!(Cursor::new(&[0xfb]).packed("x").is_err());
        assert!(Cursor::new(&[0xfe, 1]).packed("x").is_err());
    }

    #[test]
    fn cstr_and_bounds() {
        let mut c = Cursor::new(b"ab\0cd");
        assert_eq!(c.cstr("s").unwrap(), b"ab");
        assert!(c.bytes(3, "x").is_err());
        assert_eq!(c.bytes(2, "x").unwrap(), b"cd");
        assert!(c.cstr("s").is_err());
        assert_eq!(be_uint(&[1, 2]), 0x0102);
        assert_eq!(le_uint(&[1, 2]), 0x0201);
    }
}
