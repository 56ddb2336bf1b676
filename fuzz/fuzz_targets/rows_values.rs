//! Fuzz row-image and column-value decoding directly, without framing: the input describes a
//! table (column types and metadata) and the rest is the row data of one rows event.
//!
//! Input layout:
//! - byte 0: bits 0-2 = column count - 1 (1..=8); bits 3-4 = kind (write, update, delete,
//!   partial update); bit 5 = columns-present bitmaps come from the input (else all present);
//! - per column 4 bytes: type selector, metadata low, metadata high, column flags
//!   (bit 0 unsigned, bit 1 binary collation, bit 2 ENUM/SET labels, bit 3 nullable);
//! - optional bitmaps (1 byte before, 1 byte after);
//! - the rest: rows data.

#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use mysql_binlog_codec::text::write_row;
use mysql_binlog_codec::{ColumnDef, ColumnType, RowsEvent, RowsKind, TableMap};

/// Every type code a TABLE_MAP can carry, plus one unknown code.
const TYPES: [u8; 34] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 140, 141, 242, 245, 246,
    247, 248, 249, 250, 251, 252, 253, 254, 255,
];

fn labels() -> Option<Vec<Cow<'static, [u8]>>> {
    Some(vec![
        Cow::Borrowed(b"a"),
        Cow::Borrowed(b"bc"),
        Cow::Borrowed(b""),
    ])
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let ncols = usize::from(head & 7) + 1;
    let kind = match (head >> 3) & 3 {
        0 => RowsKind::Write,
        1 => RowsKind::Update,
        2 => RowsKind::Delete,
        _ => RowsKind::PartialUpdate,
    };
    if rest.len() < ncols * 4 {
        return;
    }
    let mut columns = Vec::with_capacity(ncols);
    for spec in rest[..ncols * 4].chunks_exact(4) {
        let type_code = TYPES[usize::from(spec[0]) % TYPES.len()];
        let meta = u16::from_le_bytes([spec[1], spec[2]]);
        let flags = spec[3];
        let column_type = ColumnType::resolve(type_code, meta);
        let with_labels = flags & 4 != 0;
        columns.push(ColumnDef {
            type_code,
            column_type,
            meta,
            nullable: flags & 8 != 0,
            unsigned: Some(flags & 1 != 0),
            collation: Some(if flags & 2 != 0 { 63 } else { 45 }),
            name: None,
            enum_values: if with_labels && column_type == ColumnType::Enum {
                labels()
            } else {
                None
            },
            set_values: if with_labels && column_type == ColumnType::Set {
                labels()
            } else {
                None
            },
            geometry_type: None,
            visible: None,
            vector_dimension: None,
            primary_key_prefix: None,
        });
    }
    rest = &rest[ncols * 4..];
    let (before, after) = if head & 0x20 != 0 {
        if rest.len() < 2 {
            return;
        }
        let b = (rest[0], rest[1]);
        rest = &rest[2..];
        b
    } else {
        (0xff, 0xff)
    };
    let before = [before];
    let after = [after];
    let table = TableMap {
        table_id: 1,
        flags: 0,
        database: Cow::Borrowed("db"),
        table: Cow::Borrowed("t"),
        columns,
        optional_metadata: Cow::Borrowed(&[]),
    };
    let event = RowsEvent {
        kind,
        version: 2,
        table_id: 1,
        flags: 1,
        extra_data: &[],
        column_count: ncols,
        columns_before: Cow::Borrowed(&before),
        columns_after: Cow::Borrowed(&after),
        rows_data: Cow::Borrowed(rest),
    };
    let mut out = String::new();
    let limit = rest.len() + 1;
    let mut n = 0usize;
    for change in event.rows(&table).with_max_alloc(16 << 20) {
        n += 1;
        assert!(
            n <= limit,
            "rows iterator yields more rows ({n}) than rows_data has bytes ({}): it does not advance",
            rest.len()
        );
        let Ok(change) = change else { break };
        out.clear();
        for image in [&change.before, &change.after].into_iter().flatten() {
            assert_eq!(image.values.len(), ncols);
            write_row(&mut out, &image.values, &table.columns);
            for v in image.values.iter().flatten() {
                let _ = v.clone().into_owned();
            }
        }
    }

    // The engine's path: check each row without building values (`next_spans`), decode its
    // images later (`image_at`). It must accept exactly the rows the iterator decodes, and
    // give the same values — partial JSON updates aside: only the iterator applies (and so
    // checks) their diffs; the engine decodes those events with the iterator.
    let eager: Vec<_> = event.rows(&table).with_max_alloc(16 << 20).collect();
    let mut scan = event.rows(&table).with_max_alloc(16 << 20);
    let mut i = 0usize;
    while let Some(spans) = scan.next_spans() {
        let want = eager
            .get(i)
            .expect("next_spans yields more rows than the iterator");
        i += 1;
        match (spans, want) {
            (Ok(spans), Ok(change)) => {
                if kind == RowsKind::PartialUpdate {
                    continue;
                }
                let before = spans.before.map(|s| {
                    event
                        .image_at(&table, s, false, 16 << 20)
                        .expect("a checked image decodes")
                });
                let after = spans.after.map(|s| {
                    event
                        .image_at(&table, s, true, 16 << 20)
                        .expect("a checked image decodes")
                });
                // Compared as Debug text: a NaN double is not equal to itself.
                assert_eq!(format!("{before:?}"), format!("{:?}", change.before));
                assert_eq!(format!("{after:?}"), format!("{:?}", change.after));
            }
            (Err(_), Err(_)) => {}
            // The scan does not apply partial JSON diffs, so it cannot refuse a bad one.
            (Ok(_), Err(_)) if kind == RowsKind::PartialUpdate => break,
            (got, want) => panic!(
                "row {i}: next_spans says {:?}, the iterator {:?}",
                got.is_ok(),
                want.is_ok()
            ),
        }
    }
    assert!(
        i == eager.len()
            || (kind == RowsKind::PartialUpdate
                && i.checked_sub(1)
                    .and_then(|j| eager.get(j))
                    .is_some_and(Result::is_err)),
        "next_spans stopped early"
    );
});
