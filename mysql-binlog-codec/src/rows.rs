//! WRITE / UPDATE / DELETE rows events (pre-GA v0, v1, v2, MariaDB compressed) and
//! PARTIAL_UPDATE_ROWS. Rows are decoded lazily, one at a time, against their TABLE_MAP.

use std::borrow::Cow;
use std::ops::Range;

use crate::cursor::Cursor;
use crate::error::{DecodeErrorKind, PResult};
use crate::json::JsonBinary;
use crate::json_diff::{apply_json_diffs, parse_json_diffs};
use crate::table_map::{ColumnDef, TableMap};
use crate::value::{ColumnType, JsonValue, ScanStep, Value, decode_value_into, value_len};

/// What a rows event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowsKind {
    /// INSERT: after images only.
    Write,
    /// UPDATE: before and after images.
    Update,
    /// DELETE: before images only.
    Delete,
    /// UPDATE with partial JSON after images (`PARTIAL_UPDATE_ROWS_EVENT`).
    PartialUpdate,
}

/// Rows-event flag: end of statement.
pub const ROWS_FLAG_STMT_END: u16 = 0x0001;

/// A rows event; see [`RowsEvent::rows`] to decode its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsEvent<'a> {
    /// Insert / update / delete.
    pub kind: RowsKind,
    /// 0 (pre-GA 5.1), 1 or 2 (v2 has extra data).
    pub version: u8,
    /// Table id (refers to a TABLE_MAP).
    pub table_id: u64,
    /// Flags (`ROWS_FLAG_STMT_END` = 1, ...).
    pub flags: u16,
    /// v2 extra data (partition info / NDB info), raw.
    pub extra_data: &'a [u8],
    /// Number of columns in the table.
    pub column_count: usize,
    /// Columns present in the before image (or the only image).
    pub columns_before: Cow<'a, [u8]>,
    /// Columns present in the after image (UPDATE).
    pub columns_after: Cow<'a, [u8]>,
    /// The row images (decompressed for MariaDB compressed events).
    pub rows_data: Cow<'a, [u8]>,
}

/// One changed row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange<'a> {
    /// Before image (UPDATE, DELETE).
    pub before: Option<Row<'a>>,
    /// After image (INSERT, UPDATE).
    pub after: Option<Row<'a>>,
}

/// Where one row change's images lie in [`RowsEvent::rows_data`] (byte ranges), as found by
/// [`Rows::next_spans`]; decode one later with [`RowsEvent::image_at`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowSpans {
    /// The before image (UPDATE, DELETE).
    pub before: Option<Range<usize>>,
    /// The after image (INSERT, UPDATE).
    pub after: Option<Range<usize>>,
}

/// One row image: one slot per table column; `None` when the column is not in the image
/// (`binlog_row_image=MINIMAL/NOBLOB`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// Values by column index.
    pub values: Vec<Option<Value<'a>>>,
}

fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// How many of the first `n` bits of `bits` are set (bits past the end count as clear).
fn count_bits(bits: &[u8], n: usize) -> usize {
    let full = (n / 8).min(bits.len());
    let whole: usize = bits[..full].iter().map(|b| b.count_ones() as usize).sum();
    let rest = n % 8;
    let tail = match bits.get(n / 8) {
        Some(b) if rest > 0 => (b & ((1u8 << rest) - 1)).count_ones() as usize,
        _ => 0,
    };
    whole + tail
}

impl<'a> RowsEvent<'a> {
    /// Decode the rows against their table map. `max_alloc` caps any decompression (MariaDB
    /// compressed columns). Iteration stops after the first error.
    pub fn rows<'t>(&'t self, table: &'t TableMap<'t>) -> Rows<'t> {
        Rows {
            event: self,
            table,
            cursor: Cursor::new(&self.rows_data),
            failed: false,
            max_alloc: 1 << 30,
        }
    }

    /// Check every row change (see [`Rows::next_spans`]) and put where each one's images lie
    /// in `spans` (cleared first); stops at the first error.
    pub(crate) fn check_rows(
        &self,
        table: &TableMap<'_>,
        max_alloc: usize,
        spans: &mut Vec<RowSpans>,
    ) -> PResult<()> {
        spans.clear();
        let mut it = self.rows(table).with_max_alloc(max_alloc);
        // The first row change is checked the general way; the rest with plans of the two
        // images (worth making only for an event with more rows).
        let Some(first) = it.next_spans() else {
            return Ok(());
        };
        spans.push(first?);
        if it.cursor.is_empty() {
            return Ok(());
        }
        let plans = [false, true].map(|after| ImagePlan::new(self, table, after));
        while let Some(s) = it.step(|rows| rows.scan_row(&plans)) {
            spans.push(s?);
        }
        Ok(())
    }

    /// Decode the one image that lies at `span` of [`Self::rows_data`] (a range from
    /// [`Rows::next_spans`] over this same event): the before image when `after` is false,
    /// else the after image. `max_alloc` caps decompressed column values as in
    /// [`Rows::with_max_alloc`]. For [`RowsKind::PartialUpdate`] the after image's partial
    /// JSON columns are [`JsonValue::UnappliedDiff`]; use [`Self::rows`] to get them applied.
    pub fn image_at<'t>(
        &'t self,
        table: &'t TableMap<'t>,
        span: Range<usize>,
        after: bool,
        max_alloc: usize,
    ) -> PResult<Row<'t>> {
        let data = self
            .rows_data
            .get(span)
            .ok_or(DecodeErrorKind::ShortBody { what: "row image" })?;
        let mut rows = Rows {
            event: self,
            table,
            cursor: Cursor::new(data),
            failed: false,
            max_alloc,
        };
        rows.check()?;
        rows.image_of(after)
    }

    /// Which images each row change has: (before, after).
    pub(crate) fn images(&self) -> (bool, bool) {
        match self.kind {
            RowsKind::Write => (false, true),
            RowsKind::Delete => (true, false),
            RowsKind::Update | RowsKind::PartialUpdate => (true, true),
        }
    }

    /// The columns-present bitmap the before (`after` false) or after image is read with, and
    /// whether its JSON columns may be partial. Only an UPDATE's after image has a bitmap of its
    /// own; an INSERT's image (an after image) is described by the first one, `columns_before`.
    fn layout(&self, after: bool) -> (&[u8], bool) {
        match self.kind {
            RowsKind::Update if after => (&self.columns_after, false),
            RowsKind::PartialUpdate if after => (&self.columns_after, true),
            _ => (&self.columns_before, false),
        }
    }

    /// Whether the statement ends with this event.
    pub fn is_stmt_end(&self) -> bool {
        self.flags & ROWS_FLAG_STMT_END != 0
    }

    /// Convert into an owned value.
    pub fn into_owned(self) -> RowsEvent<'static> {
        RowsEvent {
            kind: self.kind,
            version: self.version,
            table_id: self.table_id,
            flags: self.flags,
            extra_data: &[],
            column_count: self.column_count,
            columns_before: Cow::Owned(self.columns_before.into_owned()),
            columns_after: Cow::Owned(self.columns_after.into_owned()),
            rows_data: Cow::Owned(self.rows_data.into_owned()),
        }
    }
}

/// Iterator over the rows of a [`RowsEvent`].
#[derive(Debug)]
pub struct Rows<'t> {
    event: &'t RowsEvent<'t>,
    table: &'t TableMap<'t>,
    cursor: Cursor<'t>,
    failed: bool,
    max_alloc: usize,
}

impl<'t> Rows<'t> {
    /// Set the cap for decompressed column values (default 1 GiB).
    pub fn with_max_alloc(mut self, max: usize) -> Self {
        self.max_alloc = max;
        self
    }

    /// Decode the event's before (`after` false) or after image at the cursor.
    #[inline(always)]
    fn image_of(&mut self, after: bool) -> PResult<Row<'t>> {
        let (present, partial_json) = self.event.layout(after);
        let mut values = Vec::with_capacity(self.event.column_count);
        self.image_with::<false>(present, partial_json, &mut values)?;
        Ok(Row { values })
    }

    /// Decode one image, appending each column's slot to `values` in column order. With
    /// `SCAN`, only check it: non-NULL values are measured ([`value_len`]) and `values` stays
    /// as it is.
    fn image_with<const SCAN: bool>(
        &mut self,
        present: &[u8],
        partial_json: bool,
        values: &mut Vec<Option<Value<'t>>>,
    ) -> PResult<()> {
        // With SCAN, nothing is kept.
        macro_rules! sink {
            ($v:expr) => {
                if !SCAN {
                    values.push($v);
                }
            };
        }
        let cols = &self.table.columns;
        let n = self.event.column_count;
        let present_count = count_bits(present, n);
        let mut partial_bits: &[u8] = &[];
        if partial_json {
            let value_options = self.cursor.packed("partial update value options")?;
            if value_options & 1 != 0 {
                let json_cols = (0..n)
                    .filter(|&i| bit(present, i) && cols[i].column_type == ColumnType::Json)
                    .count();
                partial_bits = self
                    .cursor
                    .bytes(json_cols.div_ceil(8), "partial JSON bitmap")?;
            }
        }
        let nulls = self
            .cursor
            .bytes(present_count.div_ceil(8), "row null bitmap")?;
        let mut k = 0usize; // index among present columns
        let mut j = 0usize; // index among present JSON columns
        for (i, col) in cols.iter().enumerate().take(n) {
            if !bit(present, i) {
                sink!(None);
                continue;
            }
            let is_null = bit(nulls, k);
            k += 1;
            let is_json = col.column_type == ColumnType::Json;
            let partial = is_json && bit(partial_bits, j);
            if is_json {
                j += 1;
            }
            if is_null {
                sink!(Some(Value::Null));
                continue;
            }
            if partial {
                let len_bytes = usize::from(col.meta);
                let len = self.cursor.uint_n(len_bytes, "partial JSON length")? as usize;
                let diff = self.cursor.bytes(len, "partial JSON diff")?;
                sink!(Some(Value::Json(JsonValue::UnappliedDiff(Cow::Borrowed(
                    diff,
                )))));
                continue;
            }
            let rest = self.cursor.peek_rest();
            if SCAN {
                let used = value_len(col, i, rest, self.max_alloc)?;
                self.cursor.skip(used, "column value")?;
                continue;
            }
            // Decoded straight into its place in the row (see `decode_value_into`).
            let at = values.len();
            values.push(None);
            let used = decode_value_into(col, i, rest, self.max_alloc, &mut values[at])?;
            self.cursor.skip(used, "column value")?;
        }
        Ok(())
    }

    /// Refuse what no image of this event can be decoded from.
    fn check(&self) -> PResult<()> {
        let ev = self.event;
        if ev.version == 0 {
            return Err(DecodeErrorKind::UnsupportedFormat {
                what: "pre-GA rows image format of MySQL 5.1.0-5.1.15 preview builds".into(),
            });
        }
        if self.table.columns.len() < ev.column_count {
            return Err(DecodeErrorKind::TableMapMismatch {
                table_id: ev.table_id,
                what: format!(
                    "event has {} columns, TABLE_MAP has {}",
                    ev.column_count,
                    self.table.columns.len()
                ),
            });
        }
        Ok(())
    }

    /// Check one row change's images and say where they lie, without keeping any value. An
    /// image with a plan (`plans[0]` before, `plans[1]` after) is measured by it when it can
    /// be; otherwise, and whenever the plan gives up, the general way.
    fn scan_row(&mut self, plans: &[Option<ImagePlan>; 2]) -> PResult<RowSpans> {
        self.check()?;
        let ev = self.event;
        let total = ev.rows_data.len();
        let span = |rows: &mut Self, after: bool| -> PResult<Range<usize>> {
            let (present, partial) = ev.layout(after);
            let start = total - rows.cursor.remaining();
            let planned = plans[usize::from(after)].as_ref().and_then(|plan| {
                plan.measure(rows.cursor.peek_rest(), &rows.table.columns, rows.max_alloc)
            });
            match planned {
                Some(len) => rows.cursor.skip(len, "row image")?,
                None => rows.image_with::<true>(present, partial, &mut Vec::new())?,
            }
            Ok(start..total - rows.cursor.remaining())
        };
        let (has_before, has_after) = ev.images();
        let before = has_before.then(|| span(self, false)).transpose()?;
        let after = has_after.then(|| span(self, true)).transpose()?;
        Ok(RowSpans { before, after })
    }

    /// Like [`Iterator::next`], but only checks the next row change (each value is checked
    /// exactly as decoding it would check it, without building it) and returns where its
    /// images lie, for [`RowsEvent::image_at`] to decode later: an `Ok` here means that
    /// decoding those images succeeds. Iteration stops after the first error. For
    /// [`RowsKind::PartialUpdate`] the partial JSON diffs are neither applied nor checked (the
    /// iterator does both): decode such events with the iterator.
    pub fn next_spans(&mut self) -> Option<PResult<RowSpans>> {
        self.step(|rows| rows.scan_row(&[None, None]))
    }

    /// One step of iteration: refuse an image that consumes nothing; stop after an error.
    fn step<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> Option<PResult<T>> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let before = self.cursor.remaining();
        let mut r = f(self);
        // An image with no columns present consumes nothing: refuse it instead of looping.
        if r.is_ok() && self.cursor.remaining() == before {
            r = Err(DecodeErrorKind::Malformed {
                what: "row image with no columns consumes no bytes".into(),
            });
        }
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }

    fn next_row(&mut self) -> PResult<RowChange<'t>> {
        self.check()?;
        let (has_before, has_after) = self.event.images();
        let before = has_before.then(|| self.image_of(false)).transpose()?;
        let mut after = has_after.then(|| self.image_of(true)).transpose()?;
        if let (RowsKind::PartialUpdate, Some(before), Some(after)) =
            (self.event.kind, &before, &mut after)
        {
            apply_partial_json(before, after)?;
        }
        Ok(RowChange { before, after })
    }
}

/// One image of a rows event's rows, measured without the general per-column work: the
/// rows check's fast path ([`RowsEvent::check_rows`]), for an event with many rows. Made once
/// per event and image from the columns present: each column's [`ScanStep`], fixed-size
/// neighbours merged into one skip. It only measures images without a NULL (every present
/// column's null bit clear, so each has a value) and gives up (`None`) on anything else, a
/// value the general check would refuse included: the caller then checks that image the
/// general way, which accepts the same images with the same lengths and gives the errors.
#[derive(Debug)]
struct ImagePlan {
    /// Bytes of the null bitmap (one bit per present column).
    null_bytes: usize,
    /// The bits of the bitmap's last byte that are columns' (servers set the others).
    last_null_mask: u8,
    /// One per present column, but one [`ScanStep::Fixed`] for neighbouring fixed-size ones.
    steps: Vec<ScanStep>,
}

impl ImagePlan {
    /// The plan of the before (`after` false) or after image; `None` for an image that may
    /// hold partial JSON or has no column.
    fn new(event: &RowsEvent<'_>, table: &TableMap<'_>, after: bool) -> Option<Self> {
        let (present, partial_json) = event.layout(after);
        let (has_before, has_after) = event.images();
        if partial_json || !(if after { has_after } else { has_before }) {
            return None;
        }
        let mut steps = Vec::with_capacity(event.column_count.min(table.columns.len()));
        let mut present_count = 0usize;
        let cols = table.columns.iter().enumerate().take(event.column_count);
        for (i, col) in cols.filter(|&(i, _)| bit(present, i)) {
            present_count += 1;
            match (ScanStep::of(col, i), steps.last_mut()) {
                (ScanStep::Fixed(n), Some(ScanStep::Fixed(m))) => *m += n,
                (step, _) => steps.push(step),
            }
        }
        (present_count > 0).then(|| Self {
            null_bytes: present_count.div_ceil(8),
            last_null_mask: match present_count % 8 {
                0 => 0xff,
                r => (1u8 << r) - 1,
            },
            steps,
        })
    }

    /// The length of the image at the start of `buf`, when it has no NULL and every value is
    /// one the general check accepts; `None` otherwise.
    #[inline]
    fn measure(&self, buf: &[u8], cols: &[ColumnDef<'_>], max_alloc: usize) -> Option<usize> {
        let (last, whole) = buf.get(..self.null_bytes)?.split_last()?;
        if last & self.last_null_mask != 0 || whole.iter().any(|&b| b != 0) {
            return None;
        }
        let mut at = self.null_bytes;
        for step in &self.steps {
            at += step.len(cols, buf.get(at..)?, max_alloc)?;
        }
        Some(at)
    }
}

/// Apply a PARTIAL_UPDATE_ROWS after image's JSON diffs to the before image's documents; a diff
/// whose column the before image lacks stays unapplied.
fn apply_partial_json(before: &Row<'_>, after: &mut Row<'_>) -> PResult<()> {
    for (i, slot) in after.values.iter_mut().enumerate() {
        let Some(Value::Json(JsonValue::UnappliedDiff(diff))) = slot else {
            continue;
        };
        let diff = diff.clone();
        let base = match before.values.get(i) {
            Some(Some(Value::Json(JsonValue::Binary(b)))) => Some(JsonBinary::new(b).to_dom()?),
            Some(Some(Value::Json(JsonValue::Dom(d)))) => Some((**d).clone()),
            Some(Some(Value::Null)) => None,
            _ => None,
        };
        if let Some(mut dom) = base {
            let diffs = parse_json_diffs(&diff)?;
            apply_json_diffs(&mut dom, &diffs)?;
            *slot = Some(Value::Json(JsonValue::Dom(Box::new(dom))));
        }
    }
    Ok(())
}

impl<'t> Iterator for Rows<'t> {
    type Item = PResult<RowChange<'t>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(Self::next_row)
    }
}

/// Parse a rows event body. For MariaDB compressed rows events (`compressed`), the row images
/// (everything after the column bitmaps) are a MariaDB compressed block.
pub(crate) fn parse_rows(
    body: &[u8],
    post_header_len: usize,
    kind: RowsKind,
    version: u8,
    compressed: bool,
    max_alloc: usize,
) -> PResult<RowsEvent<'_>> {
    let mut c = Cursor::new(body);
    let table_id = if post_header_len == 6 {
        c.uint_n(4, "table id")?
    } else {
        c.uint_n(6, "table id")?
    };
    let flags = c.u16("rows flags")?;
    let mut extra_data: &[u8] = &[];
    if version == 2 {
        let extra_len = usize::from(c.u16("rows extra data length")?);
        extra_data = c.bytes(extra_len.saturating_sub(2), "rows extra data")?;
    }
    let fixed = if version == 2 {
        10
    } else if post_header_len == 6 {
        6
    } else {
        8
    };
    c.skip(post_header_len.saturating_sub(fixed), "rows post-header")?;
    let (column_count, before, after, rows) = rows_tail(c, kind)?;
    let rows_data = if compressed {
        Cow::Owned(crate::events::maria_uncompress(rows, max_alloc)?)
    } else {
        Cow::Borrowed(rows)
    };
    Ok(RowsEvent {
        kind,
        version,
        table_id,
        flags,
        extra_data,
        column_count,
        columns_before: Cow::Borrowed(before),
        columns_after: Cow::Borrowed(after),
        rows_data,
    })
}

type RowsTail<'b> = (usize, &'b [u8], &'b [u8], &'b [u8]);

/// Column count, the before/after column bitmaps and the row images.
fn rows_tail(mut c: Cursor<'_>, kind: RowsKind) -> PResult<RowsTail<'_>> {
    // A count, not a byte length: bounded by what its bitmap can hold.
    let column_count = c.packed("rows column count")?;
    let column_count = usize::try_from(column_count)
        .ok()
        .filter(|&n| n.div_ceil(8) <= c.remaining())
        .ok_or(DecodeErrorKind::ShortBody {
            what: "columns-present bitmap",
        })?;
    let bitmap_len = column_count.div_ceil(8);
    let before = c.bytes(bitmap_len, "columns-present bitmap")?;
    let after = if matches!(kind, RowsKind::Update | RowsKind::PartialUpdate) {
        c.bytes(bitmap_len, "columns-after bitmap")?
    } else {
        before
    };
    Ok((column_count, before, after, c.rest()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonDom;
    use crate::table_map::parse_table_map;

    fn table_map_int_json() -> TableMap<'static> {
        let mut b = vec![1, 0, 0, 0, 0, 0, 0, 0]; // table id 1, flags
        b.extend_from_slice(&[1, b'd', 0, 1, b't', 0]);
        b.extend_from_slice(&[2, 3, 245]); // 2 columns: LONG, JSON
        b.extend_from_slice(&[1, 4]); // metadata: JSON pack length 4
        b.push(0b10); // JSON nullable
        parse_table_map(&b, 8, false).unwrap().into_owned()
    }

    fn json_col(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }

    /// Table `d`.`t` (id 1) with these columns and no optional metadata.
    fn table_of(columns: Vec<ColumnDef<'static>>) -> TableMap<'static> {
        TableMap {
            table_id: 1,
            flags: 0,
            database: Cow::Borrowed("d"),
            table: Cow::Borrowed("t"),
            columns,
            optional_metadata: Cow::Borrowed(&[]),
        }
    }

    /// A deterministic byte source for the generated rows (xorshift).
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }

        fn bytes(&mut self, n: usize, out: &mut Vec<u8>) {
            out.extend((0..n).map(|_| self.next() as u8));
        }
    }

    /// One image of `cols` whose `present` columns mostly hold plausible values (a length
    /// prefix that fits, a DECIMAL that is often valid, …), now and then NULL or noise.
    fn plausible_image(cols: &[ColumnDef<'_>], present: &[u8], noise: &mut Noise) -> Vec<u8> {
        let present: Vec<usize> = (0..cols.len()).filter(|&i| bit(present, i)).collect();
        let mut nulls = vec![0u8; present.len().div_ceil(8)];
        if let Some(last) = nulls.last_mut() {
            // The bits past the columns' own, set as MySQL and MariaDB set them (or not).
            if present.len() % 8 != 0 && noise.below(2) == 0 {
                *last = !((1u8 << (present.len() % 8)) - 1);
            }
        }
        if noise.below(4) == 0 {
            for (k, _) in present.iter().enumerate() {
                if noise.below(3) == 0 {
                    nulls[k / 8] |= 1 << (k % 8);
                }
            }
        }
        let mut out = nulls.clone();
        for (k, &i) in present.iter().enumerate() {
            if nulls[k / 8] & (1 << (k % 8)) != 0 {
                continue;
            }
            match ScanStep::of(&cols[i], i) {
                ScanStep::Fixed(n) | ScanStep::DateTime2(n) => noise.bytes(n, &mut out),
                ScanStep::Prefixed(k) => {
                    let len = noise.below(12) as usize;
                    out.extend_from_slice(&(len as u64).to_le_bytes()[..k]);
                    noise.bytes(len, &mut out);
                }
                ScanStep::Decimal(c) => {
                    // A zero of either sign, or noise.
                    let start = out.len();
                    match noise.below(3) {
                        0 => out.extend(std::iter::repeat_n(0, c.size())),
                        1 => out.extend(std::iter::repeat_n(0xff, c.size())),
                        _ => noise.bytes(c.size(), &mut out),
                    }
                    if noise.below(3) != 0 {
                        out[start] ^= 0x80;
                    }
                }
                ScanStep::Other(_) => {
                    let n = noise.below(10) as usize;
                    noise.bytes(n, &mut out);
                }
            }
        }
        out
    }

    /// Servers set the null bitmap's bits past the present columns (MySQL's `pack_row` starts
    /// each byte at 0xFF and clears a bit per non-NULL column): such a row has no NULL, and
    /// the plan must measure it (a first version refused every real row for those bits).
    #[test]
    fn plan_measures_a_row_whose_null_bitmap_padding_is_set() {
        use crate::value::tests::col;
        // INT, VARCHAR(10), DECIMAL(12,2), DATETIME(6), DOUBLE.
        let columns = vec![
            col(3, 0),
            col(15, 10),
            col(246, 2 << 8 | 12),
            col(18, 6),
            col(5, 8),
        ];
        let table = table_of(columns);
        let mut row = vec![0b1110_0000u8]; // five columns, none NULL; the other bits set
        row.extend_from_slice(&7i32.to_le_bytes());
        row.extend_from_slice(&[3, b'a', b'b', b'c']);
        row.extend_from_slice(&[0x80, 0, 0, 0, 0, 0]); // DECIMAL(12,2) zero: 6 bytes
        row.extend_from_slice(&[0x99, 0xb2, 0x42, 0, 0, 0, 0, 0]); // DATETIME(6): 8 bytes
        row.extend_from_slice(&1.5f64.to_le_bytes());
        let rows_data = [row.clone(), row.clone()].concat();
        let event = RowsEvent {
            kind: RowsKind::Write,
            version: 2,
            table_id: 1,
            flags: 0,
            extra_data: &[],
            column_count: 5,
            columns_before: Cow::Owned(vec![0b1_1111]),
            columns_after: Cow::Owned(vec![0b1_1111]),
            rows_data: Cow::Owned(rows_data),
        };
        let plan = ImagePlan::new(&event, &table, true).expect("a plan for the after image");
        assert_eq!(plan.measure(&row, &table.columns, 1 << 20), Some(row.len()));
        // One NULL (bit 1): the general check's business.
        let mut with_null = row.clone();
        with_null[0] |= 0b10;
        assert_eq!(plan.measure(&with_null, &table.columns, 1 << 20), None);
        let mut spans = Vec::new();
        event
            .check_rows(&table, 1 << 20, &mut spans)
            .expect("rows check");
        let n = row.len();
        assert_eq!(
            spans,
            vec![
                RowSpans {
                    before: None,
                    after: Some(0..n)
                },
                RowSpans {
                    before: None,
                    after: Some(n..2 * n)
                },
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// The planned check (`check_rows`) finds the same spans and fails where, and how, the
        /// general one (`next_spans`) does, on rows of every column type, with NULLs, values a
        /// check refuses, cut short and with stray bytes.
        #[test]
        fn planned_rows_check_agrees_with_the_general_one(
            cols in proptest::collection::vec(crate::value::tests::any_column(), 1..7),
            kind in proptest::prop_oneof![
                proptest::prelude::Just(RowsKind::Write),
                proptest::prelude::Just(RowsKind::Update),
                proptest::prelude::Just(RowsKind::Delete),
            ],
            present in proptest::prelude::any::<[u8; 2]>(),
            all_present in proptest::prelude::any::<bool>(),
            rows in 1usize..6,
            seed in 1u64..,
            damage in 0u8..4,
        ) {
            let mut noise = Noise(seed);
            let n = cols.len();
            let present: Vec<Vec<u8>> = present
                .iter()
                .map(|&p| vec![if all_present { 0xff } else { p }])
                .collect();
            let (has_before, has_after) = match kind {
                RowsKind::Write => (false, true),
                RowsKind::Delete => (true, false),
                _ => (true, true),
            };
            let mut data = Vec::new();
            for _ in 0..rows {
                if has_before {
                    data.extend(plausible_image(&cols, &present[0], &mut noise));
                }
                if has_after {
                    let bits = if kind == RowsKind::Write { &present[0] } else { &present[1] };
                    data.extend(plausible_image(&cols, bits, &mut noise));
                }
            }
            match damage {
                1 if !data.is_empty() => {
                    let at = noise.below(data.len() as u64) as usize;
                    data[at] ^= 1 << noise.below(8);
                }
                2 => data.truncate(noise.below(data.len() as u64 + 1) as usize),
                3 => {
                    let extra = 1 + noise.below(3) as usize;
                    noise.bytes(extra, &mut data);
                }
                _ => {}
            }
            let table = table_of(cols);
            let event = RowsEvent {
                kind,
                version: 2,
                table_id: 1,
                flags: 0,
                extra_data: &[],
                column_count: n,
                columns_before: Cow::Owned(present[0].clone()),
                columns_after: Cow::Owned(present[1].clone()),
                rows_data: Cow::Owned(data),
            };
            let mut general = Vec::new();
            let mut it = event.rows(&table).with_max_alloc(1 << 16);
            let general_end = loop {
                match it.next_spans() {
                    Some(Ok(s)) => general.push(s),
                    Some(Err(e)) => break Err(e),
                    None => break Ok(()),
                }
            };
            let mut planned = Vec::new();
            let planned_end = event.check_rows(&table, 1 << 16, &mut planned);
            match (&general_end, &planned_end) {
                (Ok(()), Ok(())) => proptest::prop_assert_eq!(&planned, &general),
                // The spans before the error are not kept by `check_rows`'s callers.
                (Err(g), Err(p)) => proptest::prop_assert_eq!(format!("{g:?}"), format!("{p:?}")),
                _ => proptest::prop_assert!(false, "general {:?}, planned {:?}", general_end, planned_end),
            }
        }
    }

    #[test]
    fn count_bits_counts_the_first_n_bits() {
        let bits = [0b1011_0101u8, 0xFF, 0b0000_0001];
        for n in 0..=30 {
            let want = (0..n).filter(|&i| bit(&bits, i)).count();
            assert_eq!(count_bits(&bits, n), want, "n={n}");
        }
        assert_eq!(count_bits(&[], 9), 0);
    }

    #[test]
    fn partial_json_update_is_applied_to_the_before_image() {
        let table = table_map_int_json();
        let before_doc = JsonDom::Object(vec![
            ("a".into(), JsonDom::Int(1)),
            ("bb".into(), JsonDom::Bool(true)),
        ]);
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0]; // table id, flags, extra len 2
        body.extend_from_slice(&[2, 0b11, 0b11]); // 2 columns, both images full
        // Before image.
        body.push(0);
        body.extend_from_slice(&7i32.to_le_bytes());
        json_col(&mut body, &before_doc.to_binary());
        // After image: value options = PARTIAL_JSON, partial bitmap, nulls, id, diff.
        body.extend_from_slice(&[1, 0b1, 0]);
        body.extend_from_slice(&7i32.to_le_bytes());
        let mut diff = vec![0u8, 3];
        diff.extend_from_slice(b"$.a");
        let v = JsonDom::Int(2).to_binary();
        diff.push(v.len() as u8);
        diff.extend_from_slice(&v);
        json_col(&mut body, &diff);
        let ev = parse_rows(&body, 10, RowsKind::PartialUpdate, 2, false, 1 << 20).unwrap();
        let rows: Vec<RowChange<'_>> = ev.rows(&table).collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 1);
        let after = rows[0].after.as_ref().unwrap();
        let Some(Value::Json(j)) = &after.values[1] else {
            panic!("{after:?}")
        };
        assert_eq!(j.to_text().unwrap(), r#"{"a": 2, "bb": true}"#);
        assert_eq!(after.values[0], Some(Value::Int(7)));
    }

    #[test]
    fn spans_tile_the_rows_and_decode_like_the_iterator() {
        let table = table_map_int_json();
        let doc = JsonDom::Object(vec![("k".into(), JsonDom::Int(5))]).to_binary();
        // UPDATE of two rows; the second after image has a NULL JSON and is MINIMAL-free.
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0];
        body.extend_from_slice(&[2, 0b11, 0b01]); // before: both columns; after: id only
        for id in [1i32, 2] {
            body.push(0);
            body.extend_from_slice(&id.to_le_bytes());
            json_col(&mut body, &doc);
            body.push(0);
            body.extend_from_slice(&(id * 10).to_le_bytes());
        }
        let ev = parse_rows(&body, 10, RowsKind::Update, 2, false, 1 << 20).unwrap();
        let eager: Vec<RowChange<'_>> = ev.rows(&table).collect::<Result<_, _>>().unwrap();
        let mut it = ev.rows(&table);
        let mut spans = Vec::new();
        while let Some(s) = it.next_spans() {
            spans.push(s.unwrap());
        }
        assert_eq!(spans.len(), 2);
        let mut end = 0;
        for (s, e) in spans.iter().zip(&eager) {
            let (b, a) = (s.before.clone().unwrap(), s.after.clone().unwrap());
            assert_eq!((b.start, b.end), (end, a.start), "images are contiguous");
            end = a.end;
            let before = ev.image_at(&table, b, false, 1 << 20).unwrap();
            let after = ev.image_at(&table, a, true, 1 << 20).unwrap();
            assert_eq!(Some(before), e.before);
            assert_eq!(Some(after.clone()), e.after);
            assert_eq!(after.values[1], None, "column absent from the after image");
        }
        assert_eq!(end, ev.rows_data.len());
        // A span that is not an image is an error, not a panic.
        assert!(ev.image_at(&table, 1..3, false, 1 << 20).is_err());
        assert!(
            ev.image_at(&table, 0..body.len() + 1, false, 1 << 20)
                .is_err()
        );
        // A broken row stops next_spans with an error, as it stops the iterator.
        let cut = parse_rows(
            &body[..body.len() - 2],
            10,
            RowsKind::Update,
            2,
            false,
            1 << 20,
        )
        .unwrap();
        let mut it = cut.rows(&table);
        assert!(it.next_spans().unwrap().is_ok());
        assert!(it.next_spans().unwrap().is_err());
        assert!(it.next_spans().is_none());
    }

    /// Regression (fuzz, rows_values): an INSERT whose `columns_after` differs from its
    /// `columns_before` (only possible in a hand-built event; parsed ones repeat the bitmap).
    /// `image_at` read the after image with `columns_after`, while the iterator and the scan use
    /// the one bitmap `columns_before`, so a checked image failed to decode.
    #[test]
    fn image_at_reads_an_insert_with_the_bitmap_the_iterator_uses() {
        let table = table_map_int_json();
        // Two rows, column 0 only, each NULL: one null-bitmap byte per row.
        let rows_data = [0b1u8, 0b1];
        let event = RowsEvent {
            kind: RowsKind::Write,
            version: 2,
            table_id: 1,
            flags: 1,
            extra_data: &[],
            column_count: 2,
            columns_before: Cow::Owned(vec![0b01]),
            columns_after: Cow::Owned(vec![0b11]),
            rows_data: Cow::Borrowed(&rows_data),
        };
        let eager: Vec<RowChange<'_>> = event.rows(&table).collect::<Result<_, _>>().unwrap();
        let mut it = event.rows(&table);
        let mut n = 0;
        while let Some(spans) = it.next_spans() {
            let span = spans.unwrap().after.unwrap();
            let row = event.image_at(&table, span, true, 1 << 20).unwrap();
            assert_eq!(Some(row), eager[n].after);
            n += 1;
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn empty_row_images_do_not_loop() {
        // Regression (fuzz): zero columns present, so each "row" consumed no bytes.
        let table = table_map_int_json();
        let body = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0];
        let ev = parse_rows(&body, 10, RowsKind::Write, 2, false, 1 << 20).unwrap();
        let r: Vec<_> = ev.rows(&table).take(10).collect();
        assert_eq!(r.len(), 1);
        assert!(r[0].is_err());
    }

    #[test]
    fn truncated_rows_are_errors_not_panics() {
        let table = table_map_int_json();
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0b11, 0];
        body.extend_from_slice(&7i32.to_le_bytes());
        body.extend_from_slice(&[200, 0, 0, 0, 1]); // JSON claims 200 bytes, has 1
        let ev = parse_rows(&body, 10, RowsKind::Write, 2, false, 1 << 20).unwrap();
        let r: Vec<_> = ev.rows(&table).collect();
        assert_eq!(r.len(), 1);
        assert!(r[0].is_err());
        for cut in 0..body.len() {
            if let Ok(ev) = parse_rows(&body[..cut], 10, RowsKind::Write, 2, false, 1 << 20) {
                for row in ev.rows(&table) {
                    let _ = row;
                }
            }
        }
    }
}
