//! TRANSACTION_PAYLOAD_EVENT (MySQL 8.0.20+ `binlog_transaction_compression`): a whole
//! transaction's events compressed with zstd (or stored). The inner events are decompressed as
//! a stream into a window that only grows to the largest inner event, and yielded one at a time.

use crate::cursor::Cursor;
use crate::decoder::{Event, parse_body};
use crate::error::{DecodeError, DecodeErrorKind, PResult, malformed};
use crate::fde::FormatDescription;
use crate::header::{EventHeader, HEADER_LEN};

/// Compression algorithm of a transaction payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadCompression {
    /// zstd (0).
    Zstd,
    /// Stored uncompressed (255).
    None,
}

/// A TRANSACTION_PAYLOAD_EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionPayload<'a> {
    /// Algorithm.
    pub compression: PayloadCompression,
    /// Size of the compressed payload as announced.
    pub compressed_size: u64,
    /// Size of the inner events once decompressed, as announced.
    pub uncompressed_size: u64,
    /// The compressed bytes.
    pub payload: &'a [u8],
}

pub(crate) fn parse_transaction_payload(
    body: &[u8],
    max_uncompressed: usize,
) -> PResult<TransactionPayload<'_>> {
    let mut c = Cursor::new(body);
    let mut compression = None;
    let mut compressed_size = None;
    let mut uncompressed_size = None;
    loop {
        let field = c.packed("payload header field")?;
        if field == 0 {
            break;
        }
        let len = c.packed_len("payload header field length")?;
        let value = Cursor::new(c.bytes(len, "payload header field value")?)
            .packed("payload header value")?;
        match field {
            1 => compressed_size = Some(value),
            2 => compression = Some(value),
            3 => uncompressed_size = Some(value),
            _ => {}
        }
    }
    let payload = c.rest();
    let compression = match compression {
        Some(0) => PayloadCompression::Zstd,
        Some(255) => PayloadCompression::None,
        Some(other) => {
            return Err(malformed(format!(
                "transaction payload compression type {other}"
            )));
        }
        None => return Err(malformed("transaction payload without compression type")),
    };
    let compressed_size = compressed_size.unwrap_or(payload.len() as u64);
    if compressed_size != payload.len() as u64 {
        return Err(malformed(format!(
            "transaction payload announces {compressed_size} bytes, carries {}",
            payload.len()
        )));
    }
    let uncompressed_size = uncompressed_size
        .ok_or_else(|| malformed("transaction payload without uncompressed size"))?;
    if uncompressed_size > max_uncompressed as u64 {
        return Err(DecodeErrorKind::DecompressedTooLarge {
            size: uncompressed_size,
            max: max_uncompressed as u64,
        });
    }
    Ok(TransactionPayload {
        compression,
        compressed_size,
        uncompressed_size,
        payload,
    })
}

impl<'a> TransactionPayload<'a> {
    /// Iterate the inner events. `fde` is the description in force (inner events use its
    /// post-header lengths; they carry no checksum); `offset` is the payload event's offset,
    /// reported as the offset of every inner event.
    pub fn events(&self, fde: &'a FormatDescription<'a>, offset: u64) -> PayloadEvents<'a> {
        PayloadEvents {
            fde,
            offset,
            input: self.payload,
            in_pos: 0,
            zstd: None,
            stored: self.compression == PayloadCompression::None,
            window: Vec::new(),
            start: 0,
            filled: 0,
            finished: false,
            produced: 0,
            expected: self.uncompressed_size,
            max_event: 1 << 30,
            failed: false,
        }
    }
}

/// Streaming iterator over the events inside a transaction payload.
///
/// A lending iterator: each [`PayloadEvents::next_event`] result borrows the iterator's
/// window and must be dropped before the next call. Memory stays at the largest inner event
/// (at least 64 KiB), whatever the transaction's size.
pub struct PayloadEvents<'a> {
    fde: &'a FormatDescription<'a>,
    offset: u64,
    input: &'a [u8],
    in_pos: usize,
    zstd: Option<zstd::stream::raw::Decoder<'static>>,
    stored: bool,
    window: Vec<u8>,
    start: usize,
    filled: usize,
    finished: bool,
    produced: u64,
    expected: u64,
    max_event: usize,
    failed: bool,
}

impl std::fmt::Debug for PayloadEvents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadEvents")
            .field("offset", &self.offset)
            .field("in_pos", &self.in_pos)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

const WINDOW_MIN: usize = 64 * 1024;

/// A framing failure inside the payload, with the inner event type when known.
type FrameError = (DecodeErrorKind, Option<u8>);

impl PayloadEvents<'_> {
    /// Refuse inner events larger than this (default 1 GiB).
    pub fn with_max_event_size(mut self, max: usize) -> Self {
        self.max_event = max;
        self
    }

    /// Bytes of the window currently allocated (for memory accounting and tests).
    pub fn window_capacity(&self) -> usize {
        self.window.capacity()
    }

    fn err(&self, kind: DecodeErrorKind, type_code: Option<u8>) -> DecodeError {
        DecodeError::new(kind, type_code.or(Some(40)), self.offset)
    }

    /// Fill the window with more decompressed bytes. Returns false when the input is exhausted.
    fn fill(&mut self) -> PResult<bool> {
        if self.finished {
            return Ok(false);
        }
        if self.start > 0 {
            self.window.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if self.filled == self.window.len() {
            let grow = (self.window.len() * 2).max(WINDOW_MIN);
            self.window.resize(grow, 0);
        }
        let before = self.filled;
        if self.stored {
            let n = (self.input.len() - self.in_pos).min(self.window.len() - self.filled);
            self.window[self.filled..self.filled + n]
                .copy_from_slice(&self.input[self.in_pos..self.in_pos + n]);
            self.in_pos += n;
            self.filled += n;
        } else {
            use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
            if self.zstd.is_none() {
                self.zstd = Some(zstd::stream::raw::Decoder::new().map_err(|e| {
                    DecodeErrorKind::Decompress {
                        what: e.to_string(),
                    }
                })?);
            }
            let Some(dec) = self.zstd.as_mut() else {
                return Err(malformed("zstd decoder unavailable"));
            };
            let mut inb = InBuffer::around(&self.input[self.in_pos..]);
            let in_before = self.in_pos;
            let mut outb = OutBuffer::around_pos(&mut self.window[..], self.filled);
            dec.run(&mut inb, &mut outb)
                .map_err(|e| DecodeErrorKind::Decompress {
                    what: e.to_string(),
                })?;
            self.filled = outb.pos();
            self.in_pos += inb.pos();
            if self.filled == before && self.in_pos == in_before && self.in_pos < self.input.len() {
                return Err(DecodeErrorKind::Decompress {
                    what: "zstd made no progress".into(),
                });
            }
        }
        self.produced += (self.filled - before) as u64;
        if self.produced > self.expected {
            return Err(DecodeErrorKind::Decompress {
                what: format!(
                    "payload inflates past its announced {} bytes",
                    self.expected
                ),
            });
        }
        if self.filled == before && self.in_pos >= self.input.len() {
            self.finished = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// The next inner event, or `Ok(None)` at the end of the payload.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>, DecodeError> {
        if self.failed {
            return Ok(None);
        }
        match self.frame_next() {
            Ok(Some((start, size, header))) => {
                let frame = &self.window[start..start + size];
                let fde = self.fde;
                match parse_body(header, &frame[HEADER_LEN..], fde, self.max_event) {
                    Ok(data) => Ok(Some(Event {
                        header,
                        offset: self.offset,
                        data,
                        raw: frame,
                    })),
                    Err(kind) => {
                        self.failed = true;
                        Err(DecodeError::new(kind, Some(header.type_code), self.offset))
                    }
                }
            }
            Ok(None) => Ok(None),
            Err((kind, t)) => {
                self.failed = true;
                Err(self.err(kind, t))
            }
        }
    }

    fn frame_next(&mut self) -> Result<Option<(usize, usize, EventHeader)>, FrameError> {
        loop {
            let avail = &self.window[self.start..self.filled];
            let header = EventHeader::parse(avail);
            if let Some(h) = header {
                let size = h.event_size as usize;
                if size < HEADER_LEN {
                    return Err((
                        DecodeErrorKind::InvalidEventSize { size: size as u64 },
                        Some(h.type_code),
                    ));
                }
                if size > self.max_event {
                    return Err((
                        DecodeErrorKind::EventTooLarge {
                            size: size as u64,
                            max: self.max_event as u64,
                        },
                        Some(h.type_code),
                    ));
                }
                if avail.len() >= size {
                    let start = self.start;
                    self.start += size;
                    return Ok(Some((start, size, h)));
                }
                // Make room for the whole event before decompressing more.
                if self.window.len() - self.start < size {
                    self.window.copy_within(self.start..self.filled, 0);
                    self.filled -= self.start;
                    self.start = 0;
                    if self.window.len() < size {
                        self.window.resize(size, 0);
                    }
                }
            }
            let avail_len = self.filled - self.start;
            if !self.fill().map_err(|k| (k, header.map(|h| h.type_code)))? {
                if avail_len == 0 {
                    if self.produced != self.expected {
                        return Err((
                            DecodeErrorKind::Decompress {
                                what: format!(
                                    "payload inflated to {} bytes, {} announced",
                                    self.produced, self.expected
                                ),
                            },
                            None,
                        ));
                    }
                    return Ok(None);
                }
                let needed = header.map_or(HEADER_LEN as u64, |h| u64::from(h.event_size));
                return Err((
                    DecodeErrorKind::Truncated {
                        needed,
                        available: avail_len as u64,
                    },
                    header.map(|h| h.type_code),
                ));
            }
        }
    }
}
