//! TABLE_MAP_EVENT: the table id → schema, table and column layout mapping that rows events
//! refer to, with every optional-metadata field (MySQL 8.0+ / MariaDB 10.5+
//! `binlog_row_metadata`).

use std::borrow::Cow;

use crate::cursor::Cursor;
use crate::error::{DecodeErrorKind, PResult, malformed};
use crate::value::ColumnType;

/// Collation id of the `binary` pseudo-charset.
pub const BINARY_COLLATION: u16 = 63;

/// One column of a mapped table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef<'a> {
    /// Type code as written in the TABLE_MAP.
    pub type_code: u8,
    /// Effective type (STRING columns resolved to ENUM / SET / STRING from their metadata).
    pub column_type: ColumnType,
    /// Raw type metadata (meaning depends on the type).
    pub meta: u16,
    /// Whether the column may be NULL.
    pub nullable: bool,
    /// `Some(true)` when the SIGNEDNESS metadata says UNSIGNED (numeric columns only).
    pub unsigned: Option<bool>,
    /// Collation id for character, ENUM and SET columns, when metadata has it.
    pub collation: Option<u16>,
    /// Column name, when metadata has it.
    pub name: Option<Cow<'a, str>>,
    /// ENUM labels (ENUM columns with ENUM_STR_VALUE metadata).
    pub enum_values: Option<Vec<Cow<'a, [u8]>>>,
    /// SET labels (SET columns with SET_STR_VALUE metadata).
    pub set_values: Option<Vec<Cow<'a, [u8]>>>,
    /// Geometry subtype (GEOMETRY columns with GEOMETRY_TYPE metadata).
    pub geometry_type: Option<u32>,
    /// Visibility (COLUMN_VISIBILITY metadata): `Some(false)` for invisible columns.
    pub visible: Option<bool>,
    /// Dimensionality of a VECTOR column (MySQL 9.0+ metadata).
    pub vector_dimension: Option<u32>,
    /// Primary-key membership: `Some(prefix_len)` (0 = whole column).
    pub primary_key_prefix: Option<u32>,
}

impl<'a> ColumnDef<'a> {
    /// Whether values of this character/blob column are binary (collation 63). `None` when the
    /// metadata does not say.
    pub fn is_binary(&self) -> Option<bool> {
        self.collation.map(|c| c == BINARY_COLLATION)
    }

    /// Label of an ENUM index (1-based; 0 is the empty error value).
    pub fn enum_label(&self, index: u16) -> Option<&[u8]> {
        let idx = usize::from(index).checked_sub(1)?;
        self.enum_values.as_ref()?.get(idx).map(|c| c.as_ref())
    }

    /// Convert into an owned value.
    pub fn into_owned(self) -> ColumnDef<'static> {
        fn own(v: Option<Vec<Cow<'_, [u8]>>>) -> Option<Vec<Cow<'static, [u8]>>> {
            v.map(|v| v.into_iter().map(|c| Cow::Owned(c.into_owned())).collect())
        }
        ColumnDef {
            type_code: self.type_code,
            column_type: self.column_type,
            meta: self.meta,
            nullable: self.nullable,
            unsigned: self.unsigned,
            collation: self.collation,
            name: self.name.map(|n| Cow::Owned(n.into_owned())),
            enum_values: own(self.enum_values),
            set_values: own(self.set_values),
            geometry_type: self.geometry_type,
            visible: self.visible,
            vector_dimension: self.vector_dimension,
            primary_key_prefix: self.primary_key_prefix,
        }
    }
}

/// A decoded TABLE_MAP_EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap<'a> {
    /// Table id that rows events refer to.
    pub table_id: u64,
    /// Flags.
    pub flags: u16,
    /// Schema name.
    pub database: Cow<'a, str>,
    /// Table name.
    pub table: Cow<'a, str>,
    /// Columns, in table order.
    pub columns: Vec<ColumnDef<'a>>,
    /// The raw optional-metadata block (empty when the server wrote none).
    pub optional_metadata: Cow<'a, [u8]>,
}

impl TableMap<'_> {
    /// Convert into an owned value (to keep it across input buffers).
    pub fn into_owned(self) -> TableMap<'static> {
        TableMap {
            table_id: self.table_id,
            flags: self.flags,
            database: Cow::Owned(self.database.into_owned()),
            table: Cow::Owned(self.table.into_owned()),
            columns: self
                .columns
                .into_iter()
                .map(ColumnDef::into_owned)
                .collect(),
            optional_metadata: Cow::Owned(self.optional_metadata.into_owned()),
        }
    }

    /// Whether the metadata named every column.
    pub fn has_column_names(&self) -> bool {
        !self.columns.is_empty() && self.columns.iter().all(|c| c.name.is_some())
    }
}

fn meta_len(type_code: u8) -> PResult<usize> {
    Ok(match type_code {
        // FLOAT, DOUBLE, BLOB, GEOMETRY, JSON, VECTOR, MariaDB BLOB_COMPRESSED (140);
        // TIMESTAMP2, DATETIME2, TIME2 (fsp).
        4 | 5 | 252 | 255 | 245 | 242 | 140 | 17 | 18 | 19 => 1,
        // VARCHAR, VAR_STRING, BIT, NEWDECIMAL, STRING, ENUM, SET, MariaDB VARCHAR_COMPRESSED (141).
        15 | 253 | 16 | 246 | 254 | 247 | 248 | 141 => 2,
        // Integer, legacy temporal, YEAR, NULL, old DECIMAL: no metadata.
        0 | 1 | 2 | 3 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 => 0,
        other => {
            return Err(DecodeErrorKind::UnsupportedColumnType {
                type_code: other,
                column: 0,
            });
        }
    })
}

/// Numeric columns (the SIGNEDNESS bitmap has one bit per such column).
fn is_numeric(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Tiny
            | ColumnType::Short
            | ColumnType::Int24
            | ColumnType::Long
            | ColumnType::LongLong
            | ColumnType::Float
            | ColumnType::Double
            | ColumnType::NewDecimal
            | ColumnType::Decimal
    )
}

/// Character columns (DEFAULT_CHARSET / COLUMN_CHARSET cover these). MySQL 9 counts VECTOR
/// among them (with the binary collation): `vector.binlog` in the corpus has a DEFAULT_CHARSET
/// of binary with one exception at index 1 = the TEXT column between two VECTOR columns.
fn is_character(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Vector
            | ColumnType::String
            | ColumnType::VarString
            | ColumnType::VarChar
            | ColumnType::Blob
            | ColumnType::VarCharCompressed
            | ColumnType::BlobCompressed
    )
}

fn is_enum_or_set(t: ColumnType) -> bool {
    matches!(t, ColumnType::Enum | ColumnType::Set)
}

/// Parse a TABLE_MAP body. `mariadb` selects MariaDB's reading of the charset metadata, which
/// also counts GEOMETRY columns (MariaDB gives them a charset in the binlog; MySQL does not).
pub(crate) fn parse_table_map(
    body: &[u8],
    post_header_len: usize,
    mariadb: bool,
) -> PResult<TableMap<'_>> {
    let mut c = Cursor::new(body);
    let table_id = if post_header_len == 6 {
        c.uint_n(4, "table id")?
    } else {
        c.uint_n(6, "table id")?
    };
    let flags = c.u16("table map flags")?;
    c.skip(post_header_len.saturating_sub(8), "table map post-header")?;
    let db_len = usize::from(c.u8("schema length")?);
    let database = String::from_utf8_lossy(c.bytes(db_len, "schema")?);
    c.skip(1, "schema terminator")?;
    let t_len = usize::from(c.u8("table length")?);
    let table = String::from_utf8_lossy(c.bytes(t_len, "table")?);
    c.skip(1, "table terminator")?;
    let n = c.packed_len("column count")?;
    let types = c.bytes(n, "column types")?;
    // MySQL 5.1.0–5.1.15 wrote no metadata and no null bitmap.
    let pre_ga = c.is_empty();
    let (meta_block, null_bits): (&[u8], &[u8]) = if pre_ga {
        (&[], &[])
    } else {
        let meta_block_len = c.packed_len("metadata length")?;
        let meta_block = c.bytes(meta_block_len, "column metadata")?;
        (meta_block, c.bytes(n.div_ceil(8), "null bitmap")?)
    };
    let optional = c.rest();

    let mut mc = Cursor::new(meta_block);
    let mut columns = Vec::with_capacity(n);
    for (i, &type_code) in types.iter().enumerate() {
        let len = meta_len(type_code).map_err(|e| match e {
            DecodeErrorKind::UnsupportedColumnType { type_code, .. } => {
                DecodeErrorKind::UnsupportedColumnType {
                    type_code,
                    column: i,
                }
            }
            other => other,
        })?;
        let raw = if pre_ga {
            &[][..]
        } else {
            mc.bytes(len, "column metadata entry")?
        };
        // STRING/ENUM/SET/VAR_STRING store (real_type, length) big-endian style; others LE.
        let meta = match (type_code, raw) {
            (254 | 247 | 248 | 253, &[hi, lo]) => u16::from(hi) << 8 | u16::from(lo),
            (_, &[lo, hi]) => u16::from_le_bytes([lo, hi]),
            (_, &[b]) => u16::from(b),
            _ => 0,
        };
        let column_type = ColumnType::resolve(type_code, meta);
        columns.push(ColumnDef {
            type_code,
            column_type,
            meta,
            nullable: null_bits.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) != 0),
            unsigned: None,
            collation: None,
            name: None,
            enum_values: None,
            set_values: None,
            geometry_type: None,
            visible: None,
            vector_dimension: None,
            primary_key_prefix: None,
        });
    }
    if !mc.is_empty() {
        return Err(malformed(format!(
            "{} unused bytes of column metadata",
            mc.remaining()
        )));
    }
    apply_optional_metadata(&mut columns, optional, mariadb)?;
    Ok(TableMap {
        table_id,
        flags,
        database,
        table,
        columns,
        optional_metadata: Cow::Borrowed(optional),
    })
}

/// Indices of the columns that satisfy `pred`.
fn indices(columns: &[ColumnDef<'_>], pred: impl Fn(ColumnType) -> bool) -> Vec<usize> {
    columns
        .iter()
        .enumerate()
        .filter(|(_, c)| pred(c.column_type))
        .map(|(i, _)| i)
        .collect()
}

/// `DEFAULT_CHARSET`-style block: default collation, then (index, collation) exceptions.
fn default_charset(v: &[u8], targets: &[usize]) -> PResult<Vec<u16>> {
    let mut c = Cursor::new(v);
    let default = c.packed("default charset")? as u16;
    let mut out = vec![default; targets.len()];
    while !c.is_empty() {
        let idx = c.packed("charset column index")? as usize;
        let coll = c.packed("charset collation")? as u16;
        *out.get_mut(idx)
            .ok_or_else(|| malformed("charset column index out of range"))? = coll;
    }
    Ok(out)
}

fn column_charset(v: &[u8], count: usize) -> PResult<Vec<u16>> {
    let mut c = Cursor::new(v);
    let mut out = Vec::with_capacity(count);
    while !c.is_empty() {
        out.push(c.packed("column charset")? as u16);
    }
    Ok(out)
}

fn str_values(v: &[u8]) -> PResult<Vec<Vec<Cow<'_, [u8]>>>> {
    let mut c = Cursor::new(v);
    let mut out = Vec::new();
    while !c.is_empty() {
        let n = c.packed_len("label count")?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let len = c.packed_len("label length")?;
            labels.push(Cow::Borrowed(c.bytes(len, "label")?));
        }
        out.push(labels);
    }
    Ok(out)
}

fn assign<T>(
    columns_idx: &[usize],
    values: Vec<T>,
    what: &str,
    mut set: impl FnMut(usize, T),
) -> PResult<()> {
    if values.len() != columns_idx.len() {
        return Err(malformed(format!(
            "{what} metadata has {} entries for {} columns",
            values.len(),
            columns_idx.len()
        )));
    }
    for (&i, v) in columns_idx.iter().zip(values) {
        set(i, v);
    }
    Ok(())
}

fn apply_optional_metadata<'a>(
    columns: &mut [ColumnDef<'a>],
    optional: &'a [u8],
    mariadb: bool,
) -> PResult<()> {
    let mut c = Cursor::new(optional);
    while !c.is_empty() {
        let field = c.u8("optional metadata type")?;
        let len = c.packed_len("optional metadata length")?;
        let v = c.bytes(len, "optional metadata value")?;
        match field {
            1 => {
                // SIGNEDNESS: one bit per numeric column, most significant bit first.
                let idx = indices(columns, is_numeric);
                for (k, &i) in idx.iter().enumerate() {
                    let byte = v
                        .get(k / 8)
                        .ok_or_else(|| malformed("short SIGNEDNESS bitmap"))?;
                    columns[i].unsigned = Some(byte & (0x80 >> (k % 8)) != 0);
                }
            }
            2 | 3 => {
                let idx = indices(columns, |t| {
                    is_character(t) || mariadb && t == ColumnType::Geometry
                });
                let vals = if field == 2 {
                    default_charset(v, &idx)?
                } else {
                    column_charset(v, idx.len())?
                };
                assign(&idx, vals, "charset", |i, coll| {
                    columns[i].collation = Some(coll)
                })?;
            }
            4 => {
                let mut nc = Cursor::new(v);
                let mut names = Vec::with_capacity(columns.len());
                while !nc.is_empty() {
                    let l = nc.packed_len("column name length")?;
                    names.push(String::from_utf8_lossy(nc.bytes(l, "column name")?));
                }
                let idx: Vec<usize> = (0..columns.len()).collect();
                assign(&idx, names, "COLUMN_NAME", |i, n| columns[i].name = Some(n))?;
            }
            5 => {
                let idx = indices(columns, |t| t == ColumnType::Set);
                assign(&idx, str_values(v)?, "SET_STR_VALUE", |i, l| {
                    columns[i].set_values = Some(l)
                })?;
            }
            6 => {
                let idx = indices(columns, |t| t == ColumnType::Enum);
                assign(&idx, str_values(v)?, "ENUM_STR_VALUE", |i, l| {
                    columns[i].enum_values = Some(l)
                })?;
            }
            7 => {
                let idx = indices(columns, |t| t == ColumnType::Geometry);
                let mut gc = Cursor::new(v);
                let mut vals = Vec::new();
                while !gc.is_empty() {
                    vals.push(gc.packed("geometry type")? as u32);
                }
                assign(&idx, vals, "GEOMETRY_TYPE", |i, g| {
                    columns[i].geometry_type = Some(g)
                })?;
            }
            8 | 9 => {
                let mut pc = Cursor::new(v);
                while !pc.is_empty() {
                    let col = pc.packed("primary key column")? as usize;
                    let prefix = if field == 9 {
                        pc.packed("primary key prefix")? as u32
                    } else {
                        0
                    };
                    columns
                        .get_mut(col)
                        .ok_or_else(|| malformed("primary key column out of range"))?
                        .primary_key_prefix = Some(prefix);
                }
            }
            10 | 11 => {
                let idx = indices(columns, is_enum_or_set);
                let vals = if field == 10 {
                    default_charset(v, &idx)?
                } else {
                    column_charset(v, idx.len())?
                };
                assign(&idx, vals, "enum/set charset", |i, coll| {
                    columns[i].collation = Some(coll)
                })?;
            }
            12 => {
                for (i, col) in columns.iter_mut().enumerate() {
                    let byte = v
                        .get(i / 8)
                        .ok_or_else(|| malformed("short COLUMN_VISIBILITY bitmap"))?;
                    col.visible = Some(byte & (0x80 >> (i % 8)) != 0);
                }
            }
            13 => {
                let idx = indices(columns, |t| t == ColumnType::Vector);
                let mut vc = Cursor::new(v);
                let mut vals = Vec::new();
                while !vc.is_empty() {
                    vals.push(vc.packed("vector dimensionality")? as u32);
                }
                assign(&idx, vals, "VECTOR_DIMENSIONALITY", |i, d| {
                    columns[i].vector_dimension = Some(d)
                })?;
            }
            // Unknown optional metadata types are skippable by construction (type-length-value).
            _ => {}
        }
    }
    Ok(())
}
