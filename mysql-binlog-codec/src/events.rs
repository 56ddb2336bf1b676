//! Typed bodies of every event type except TABLE_MAP and the rows events (see
//! [`crate::table_map`] and [`crate::rows`]).
//!
//! Each parser receives the event body (the bytes after the common header, without the trailing
//! checksum) and the post-header length the current FORMAT_DESCRIPTION announces for the type.

use std::borrow::Cow;

use crate::cursor::{Cursor, le_uint};
use crate::error::{DecodeErrorKind, PResult, malformed};
use crate::gtid::{GnoInterval, GtidSet, MariaGtid, TsidIntervals, Uuid};

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// ROTATE_EVENT: the next binlog file and the position of its first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotate<'a> {
    /// Position in the next file (4 for a real rotate).
    pub position: u64,
    /// Next file name.
    pub next_file: Cow<'a, str>,
}

pub(crate) fn parse_rotate(body: &[u8], post_header_len: usize) -> PResult<Rotate<'_>> {
    let mut c = Cursor::new(body);
    let position = if post_header_len >= 8 {
        c.u64("rotate position")?
    } else {
        4
    };
    Ok(Rotate {
        position,
        next_file: lossy(c.rest()),
    })
}

/// One QUERY_EVENT status variable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusVar<'a> {
    /// `Q_FLAGS2_CODE`.
    Flags2(u32),
    /// `Q_SQL_MODE_CODE`.
    SqlMode(u64),
    /// `Q_CATALOG_NZ_CODE` / `Q_CATALOG_CODE`.
    Catalog(&'a [u8]),
    /// `Q_AUTO_INCREMENT`: increment, offset.
    AutoIncrement(u16, u16),
    /// `Q_CHARSET_CODE`: character_set_client, collation_connection, collation_server.
    Charset(u16, u16, u16),
    /// `Q_TIME_ZONE_CODE`.
    TimeZone(&'a [u8]),
    /// `Q_LC_TIME_NAMES_CODE`.
    LcTimeNames(u16),
    /// `Q_CHARSET_DATABASE_CODE`.
    CharsetDatabase(u16),
    /// `Q_TABLE_MAP_FOR_UPDATE_CODE`.
    TableMapForUpdate(u64),
    /// `Q_MASTER_DATA_WRITTEN_CODE`.
    MasterDataWritten(u32),
    /// `Q_INVOKER`: user, host.
    Invoker(&'a [u8], &'a [u8]),
    /// `Q_UPDATED_DB_NAMES` (empty when the server logged "more than the maximum").
    UpdatedDbNames(Vec<&'a [u8]>),
    /// `Q_MICROSECONDS`.
    Microseconds(u32),
    /// `Q_COMMIT_TS` (unused by servers; kept raw).
    CommitTs(&'a [u8]),
    /// `Q_EXPLICIT_DEFAULTS_FOR_TIMESTAMP`.
    ExplicitDefaultsForTimestamp(bool),
    /// `Q_DDL_LOGGED_WITH_XID`: the XID of an atomic DDL.
    DdlLoggedWithXid(u64),
    /// `Q_DEFAULT_COLLATION_FOR_UTF8MB4`.
    DefaultCollationForUtf8mb4(u16),
    /// `Q_SQL_REQUIRE_PRIMARY_KEY`.
    SqlRequirePrimaryKey(u8),
    /// `Q_DEFAULT_TABLE_ENCRYPTION`.
    DefaultTableEncryption(u8),
    /// MariaDB `Q_HRNOW`: microseconds part of the statement time.
    MariaHrNow(u32),
    /// MariaDB `Q_XID`.
    MariaXid(u64),
    /// MariaDB `Q_GTID_FLAGS3`.
    MariaGtidFlags3(u8),
    /// MariaDB `Q_CHARACTER_SET_COLLATIONS` (raw).
    MariaCharacterSetCollations(&'a [u8]),
    /// A code this decoder does not know; as the server does, parsing stops here.
    Unknown(u8, &'a [u8]),
}

/// QUERY_EVENT (and the statement part of EXECUTE_LOAD_QUERY / MariaDB QUERY_COMPRESSED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// Thread id of the session.
    pub thread_id: u32,
    /// Seconds the statement took.
    pub exec_time: u32,
    /// Error code the statement produced on the source.
    pub error_code: u16,
    /// Raw status-variable block; see [`Query::status_vars`].
    pub status_vars: &'a [u8],
    /// Default database.
    pub schema: Cow<'a, [u8]>,
    /// The statement text (decompressed for MariaDB QUERY_COMPRESSED).
    pub query: Cow<'a, [u8]>,
}

impl<'a> Query<'a> {
    /// Default database as text.
    pub fn schema_str(&self) -> Cow<'_, str> {
        lossy(&self.schema)
    }

    /// Statement as text (lossy for non-UTF-8 bytes).
    pub fn query_str(&self) -> Cow<'_, str> {
        lossy(&self.query)
    }

    /// Decode the status variables. Stops (like the server) at the first unknown code, which
    /// is returned as [`StatusVar::Unknown`].
    pub fn status_vars(&self) -> PResult<Vec<StatusVar<'a>>> {
        parse_status_vars(self.status_vars)
    }

    /// Convert into an owned value.
    pub fn into_owned(self) -> Query<'static> {
        Query {
            thread_id: self.thread_id,
            exec_time: self.exec_time,
            error_code: self.error_code,
            status_vars: &[],
            schema: Cow::Owned(self.schema.into_owned()),
            query: Cow::Owned(self.query.into_owned()),
        }
    }
}

fn parse_status_vars(buf: &[u8]) -> PResult<Vec<StatusVar<'_>>> {
    let mut c = Cursor::new(buf);
    let mut out = Vec::new();
    while !c.is_empty() {
        let code = c.u8("status var code")?;
        let v = match code {
            0 => StatusVar::Flags2(c.u32("Q_FLAGS2")?),
            1 => StatusVar::SqlMode(c.u64("Q_SQL_MODE")?),
            2 => {
                let n = usize::from(c.u8("Q_CATALOG")?);
                let s = c.bytes(n, "Q_CATALOG")?;
                c.skip(1, "Q_CATALOG nul")?;
                StatusVar::Catalog(s)
            }
            3 => StatusVar::AutoIncrement(c.u16("Q_AUTO_INCREMENT")?, c.u16("Q_AUTO_INCREMENT")?),
            4 => StatusVar::Charset(
                c.u16("Q_CHARSET")?,
                c.u16("Q_CHARSET")?,
                c.u16("Q_CHARSET")?,
            ),
            5 => {
                let n = usize::from(c.u8("Q_TIME_ZONE")?);
                StatusVar::TimeZone(c.bytes(n, "Q_TIME_ZONE")?)
            }
            6 => {
                let n = usize::from(c.u8("Q_CATALOG_NZ")?);
                StatusVar::Catalog(c.bytes(n, "Q_CATALOG_NZ")?)
            }
            7 => StatusVar::LcTimeNames(c.u16("Q_LC_TIME_NAMES")?),
            8 => StatusVar::CharsetDatabase(c.u16("Q_CHARSET_DATABASE")?),
            9 => StatusVar::TableMapForUpdate(c.u64("Q_TABLE_MAP_FOR_UPDATE")?),
            10 => StatusVar::MasterDataWritten(c.u32("Q_MASTER_DATA_WRITTEN")?),
            11 => {
                let n = usize::from(c.u8("Q_INVOKER user")?);
                let user = c.bytes(n, "Q_INVOKER user")?;
                let n = usize::from(c.u8("Q_INVOKER host")?);
                StatusVar::Invoker(user, c.bytes(n, "Q_INVOKER host")?)
            }
            12 => {
                let count = c.u8("Q_UPDATED_DB_NAMES")?;
                let mut names = Vec::new();
                // 254 = OVER_MAX_DBS_IN_EVENT_MTS: no names follow.
                if count != 254 {
                    for _ in 0..count {
                        names.push(c.cstr("Q_UPDATED_DB_NAMES name")?);
                    }
                }
                StatusVar::UpdatedDbNames(names)
            }
            13 => StatusVar::Microseconds(c.uint_n(3, "Q_MICROSECONDS")? as u32),
            14 => StatusVar::CommitTs(c.bytes(8, "Q_COMMIT_TS")?),
            15 => StatusVar::CommitTs(c.bytes(8, "Q_COMMIT_TS2")?),
            16 => StatusVar::ExplicitDefaultsForTimestamp(
                c.u8("Q_EXPLICIT_DEFAULTS_FOR_TIMESTAMP")? != 0,
            ),
            17 => StatusVar::DdlLoggedWithXid(c.u64("Q_DDL_LOGGED_WITH_XID")?),
            18 => StatusVar::DefaultCollationForUtf8mb4(c.u16("Q_DEFAULT_COLLATION_FOR_UTF8MB4")?),
            19 => StatusVar::SqlRequirePrimaryKey(c.u8("Q_SQL_REQUIRE_PRIMARY_KEY")?),
            20 => StatusVar::DefaultTableEncryption(c.u8("Q_DEFAULT_TABLE_ENCRYPTION")?),
            128 => StatusVar::MariaHrNow(c.uint_n(3, "Q_HRNOW")? as u32),
            129 => StatusVar::MariaXid(c.u64("Q_XID")?),
            130 => StatusVar::MariaGtidFlags3(c.u8("Q_GTID_FLAGS3")?),
            131 => {
                // count, then count * (charset id u16, collation id u16).
                let count = usize::from(c.u8("Q_CHARACTER_SET_COLLATIONS")?);
                StatusVar::MariaCharacterSetCollations(
                    c.bytes(count * 4, "Q_CHARACTER_SET_COLLATIONS")?,
                )
            }
            other => {
                out.push(StatusVar::Unknown(other, c.rest()));
                break;
            }
        };
        out.push(v);
    }
    Ok(out)
}

pub(crate) fn parse_query(body: &[u8], post_header_len: usize) -> PResult<Query<'_>> {
    let mut c = Cursor::new(body);
    let thread_id = c.u32("query thread id")?;
    let exec_time = c.u32("query exec time")?;
    let db_len = usize::from(c.u8("query db length")?);
    let error_code = c.u16("query error code")?;
    let status_len = if post_header_len >= 13 {
        usize::from(c.u16("query status vars length")?)
    } else {
        0
    };
    // Extra post-header bytes (EXECUTE_LOAD_QUERY has 13 more) are skipped by the caller's
    // post-header length.
    let extra = post_header_len.saturating_sub(if post_header_len >= 13 { 13 } else { 11 });
    c.skip(extra, "query post-header")?;
    let status_vars = c.bytes(status_len, "query status vars")?;
    let schema = c.bytes(db_len, "query db")?;
    c.skip(1, "query db terminator")?;
    let query = c.rest();
    Ok(Query {
        thread_id,
        exec_time,
        error_code,
        status_vars,
        schema: Cow::Borrowed(schema),
        query: Cow::Borrowed(query),
    })
}

/// EXECUTE_LOAD_QUERY_EVENT: a QUERY plus the file it loads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteLoadQuery<'a> {
    /// The statement.
    pub query: Query<'a>,
    /// Id of the file built by BEGIN_LOAD_QUERY / APPEND_BLOCK.
    pub file_id: u32,
    /// Start of the file name within the statement.
    pub start_pos: u32,
    /// End of the file name within the statement.
    pub end_pos: u32,
    /// Duplicate handling (0 error, 1 ignore, 2 replace).
    pub dup_handling: u8,
}

pub(crate) fn parse_execute_load_query(
    body: &[u8],
    post_header_len: usize,
) -> PResult<ExecuteLoadQuery<'_>> {
    let mut c = Cursor::new(body);
    c.skip(13, "execute-load-query post-header")?;
    let file_id = c.u32("execute-load-query file id")?;
    let start_pos = c.u32("execute-load-query start")?;
    let end_pos = c.u32("execute-load-query end")?;
    let dup_handling = c.u8("execute-load-query dup handling")?;
    let query = parse_query(body, post_header_len.max(26))?;
    Ok(ExecuteLoadQuery {
        query,
        file_id,
        start_pos,
        end_pos,
        dup_handling,
    })
}

/// A file-block event of the LOAD DATA family (BEGIN_LOAD_QUERY, APPEND_BLOCK, CREATE_FILE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBlock<'a> {
    /// File id.
    pub file_id: u32,
    /// The data block.
    pub data: &'a [u8],
}

pub(crate) fn parse_file_block(body: &[u8], post_header_len: usize) -> PResult<FileBlock<'_>> {
    let mut c = Cursor::new(body);
    let file_id = c.u32("file id")?;
    c.skip(post_header_len.saturating_sub(4), "file block post-header")?;
    Ok(FileBlock {
        file_id,
        data: c.rest(),
    })
}

pub(crate) fn parse_file_id(body: &[u8]) -> PResult<u32> {
    Cursor::new(body).u32("file id")
}

/// LOAD_EVENT / NEW_LOAD_EVENT (MySQL ≤ 5.0 LOAD DATA): the fixed part; the variable part is
/// kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load<'a> {
    /// Thread id.
    pub thread_id: u32,
    /// Execution time.
    pub exec_time: u32,
    /// Lines to skip.
    pub skip_lines: u32,
    /// Number of fields.
    pub num_fields: u32,
    /// Everything after the post-header (field/line options, names, table, db, file name).
    pub rest: &'a [u8],
}

pub(crate) fn parse_load(body: &[u8], post_header_len: usize) -> PResult<Load<'_>> {
    let mut c = Cursor::new(body);
    let thread_id = c.u32("load thread id")?;
    let exec_time = c.u32("load exec time")?;
    let skip_lines = c.u32("load skip lines")?;
    c.skip(2, "load name lengths")?;
    let num_fields = c.u32("load field count")?;
    c.skip(post_header_len.saturating_sub(18), "load post-header")?;
    Ok(Load {
        thread_id,
        exec_time,
        skip_lines,
        num_fields,
        rest: c.rest(),
    })
}

/// USER_VAR_EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserVar<'a> {
    /// Variable name.
    pub name: &'a [u8],
    /// `None` for SQL NULL.
    pub value: Option<UserVarValue<'a>>,
}

/// The non-NULL value of a USER_VAR_EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserVarValue<'a> {
    /// Item result type (0 string, 1 real, 2 int, 3 row, 4 decimal).
    pub value_type: u8,
    /// Charset number.
    pub charset: u32,
    /// Raw value bytes.
    pub value: &'a [u8],
    /// Flags (bit 0 = unsigned), when present.
    pub flags: Option<u8>,
}

pub(crate) fn parse_user_var(body: &[u8]) -> PResult<UserVar<'_>> {
    let mut c = Cursor::new(body);
    let name_len = c.u32("user var name length")? as usize;
    let name = c.bytes(name_len, "user var name")?;
    let is_null = c.u8("user var null flag")? != 0;
    if is_null {
        return Ok(UserVar { name, value: None });
    }
    let value_type = c.u8("user var type")?;
    let charset = c.u32("user var charset")?;
    let len = c.u32("user var value length")? as usize;
    let value = c.bytes(len, "user var value")?;
    let flags = if c.is_empty() {
        None
    } else {
        Some(c.u8("user var flags")?)
    };
    Ok(UserVar {
        name,
        value: Some(UserVarValue {
            value_type,
            charset,
            value,
            flags,
        }),
    })
}

/// INCIDENT_EVENT: the source lost events; a consumer must not silently go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident<'a> {
    /// Incident number (1 = LOST_EVENTS).
    pub kind: u16,
    /// Message.
    pub message: Cow<'a, str>,
}

pub(crate) fn parse_incident(body: &[u8]) -> PResult<Incident<'_>> {
    let mut c = Cursor::new(body);
    let kind = c.u16("incident number")?;
    let message = if c.is_empty() {
        Cow::Borrowed("")
    } else {
        let n = usize::from(c.u8("incident message length")?);
        lossy(c.bytes(n, "incident message")?)
    };
    Ok(Incident { kind, message })
}

/// HEARTBEAT_LOG_EVENT (v1 and v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat<'a> {
    /// Current binlog file on the source.
    pub log_file: Cow<'a, str>,
    /// Position (v2 carries it in the body; v1 only in the header's `log_pos`).
    pub log_position: Option<u64>,
}

pub(crate) fn parse_heartbeat_v2(body: &[u8]) -> PResult<Heartbeat<'_>> {
    let mut c = Cursor::new(body);
    let mut log_file = Cow::Borrowed("");
    let mut log_position = None;
    while !c.is_empty() {
        let field = c.packed("heartbeat field type")?;
        if field == 0 {
            break;
        }
        let len = c.packed_len("heartbeat field length")?;
        let value = c.bytes(len, "heartbeat field value")?;
        match field {
            1 => log_file = lossy(value),
            2 => log_position = Some(Cursor::new(value).packed("heartbeat position")?),
            _ => {}
        }
    }
    Ok(Heartbeat {
        log_file,
        log_position,
    })
}

/// GTID_LOG_EVENT, ANONYMOUS_GTID_LOG_EVENT and GTID_TAGGED_LOG_EVENT (MySQL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gtid {
    /// Flags (bit 0: may have been committed before).
    pub flags: u8,
    /// Source UUID (all zeros for anonymous).
    pub uuid: Uuid,
    /// Tag (GTID_TAGGED only), empty when untagged.
    pub tag: String,
    /// Transaction number (0 for anonymous).
    pub gno: u64,
    /// Logical clock: last committed (5.7+).
    pub last_committed: Option<i64>,
    /// Logical clock: sequence number (5.7+).
    pub sequence_number: Option<i64>,
    /// Immediate commit timestamp in microseconds (8.0.1+).
    pub immediate_commit_timestamp: Option<u64>,
    /// Original commit timestamp in microseconds (8.0.1+).
    pub original_commit_timestamp: Option<u64>,
    /// Transaction length in bytes (8.0.2+).
    pub transaction_length: Option<u64>,
    /// Immediate server version (8.0.14+).
    pub immediate_server_version: Option<u32>,
    /// Original server version (8.0.14+).
    pub original_server_version: Option<u32>,
    /// Commit group ticket (8.0.33+), when present.
    pub commit_group_ticket: Option<u64>,
}

impl Gtid {
    /// Whether this is an anonymous GTID (no uuid and gno).
    pub fn is_anonymous(&self) -> bool {
        self.gno == 0 && self.uuid == Uuid::default()
    }
}

impl std::fmt::Display for Gtid {
    /// `uuid:gno` or `uuid:tag:gno`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tag.is_empty() {
            write!(f, "{}:{}", self.uuid, self.gno)
        } else {
            write!(f, "{}:{}:{}", self.uuid, self.tag, self.gno)
        }
    }
}

pub(crate) fn parse_gtid(body: &[u8]) -> PResult<Gtid> {
    let mut c = Cursor::new(body);
    let mut g = Gtid {
        flags: c.u8("gtid flags")?,
        uuid: Uuid(c.array("gtid uuid")?),
        gno: c.u64("gtid gno")?,
        ..Gtid::default()
    };
    if c.remaining() >= 17 {
        let lt_type = c.u8("gtid logical timestamp type")?;
        if lt_type == 2 {
            g.last_committed = Some(c.u64("gtid last committed")? as i64);
            g.sequence_number = Some(c.u64("gtid sequence number")? as i64);
        } else {
            return Err(malformed(format!("gtid logical timestamp type {lt_type}")));
        }
    }
    if c.remaining() >= 7 {
        let raw = c.uint_n(7, "gtid immediate commit timestamp")?;
        let immediate = raw & !(1u64 << 55);
        g.immediate_commit_timestamp = Some(immediate);
        g.original_commit_timestamp = Some(if raw & (1u64 << 55) != 0 {
            c.uint_n(7, "gtid original commit timestamp")?
        } else {
            immediate
        });
        if !c.is_empty() {
            g.transaction_length = Some(c.packed("gtid transaction length")?);
        }
        if c.remaining() >= 4 {
            let raw = c.u32("gtid immediate server version")?;
            let immediate = raw & 0x7fff_ffff;
            g.immediate_server_version = Some(immediate);
            g.original_server_version = Some(if raw & 0x8000_0000 != 0 {
                c.u32("gtid original server version")?
            } else {
                immediate
            });
        }
        if c.remaining() >= 8 {
            g.commit_group_ticket = Some(c.u64("gtid commit group ticket")?);
        }
    }
    Ok(g)
}

/// MySQL's "variable-length integer" of the serialization framework (8.3+): the count of
/// trailing one bits in the first byte is the count of extra bytes.
fn varlen_u64(c: &mut Cursor<'_>, what: &'static str) -> PResult<u64> {
    let first = c.u8(what)?;
    let extra = first.trailing_ones() as usize;
    if extra == 0 {
        return Ok(u64::from(first >> 1));
    }
    if extra == 8 {
        return c.u64(what);
    }
    let rest = c.bytes(extra, what)?;
    let mut all = [0u8; 8];
    all[0] = first;
    all[1..=extra].copy_from_slice(rest);
    Ok(le_uint(&all[..=extra]) >> (extra + 1))
}

fn varlen_i64(c: &mut Cursor<'_>, what: &'static str) -> PResult<i64> {
    let v = varlen_u64(c, what)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

fn varlen_str<'a>(c: &mut Cursor<'a>, what: &'static str) -> PResult<&'a [u8]> {
    let n = varlen_u64(c, what)?;
    let n = usize::try_from(n).map_err(|_| malformed(what))?;
    c.bytes(n, what)
}

/// GTID_TAGGED_LOG_EVENT (42): a serialization-framework message of numbered fields.
pub(crate) fn parse_gtid_tagged(body: &[u8]) -> PResult<Gtid> {
    let mut c = Cursor::new(body);
    let _format_version = varlen_u64(&mut c, "tagged gtid format version")?;
    let size = varlen_u64(&mut c, "tagged gtid message size")?;
    if size != body.len() as u64 {
        return Err(malformed(format!(
            "tagged gtid message size {size} but body has {}",
            body.len()
        )));
    }
    let _last_non_ignorable = varlen_u64(&mut c, "tagged gtid last field id")?;
    let mut g = Gtid::default();
    let mut original_ts = None;
    let mut original_version = None;
    while !c.is_empty() {
        let id = varlen_u64(&mut c, "tagged gtid field id")?;
        match id {
            0 => g.flags = varlen_u64(&mut c, "tagged gtid flags")? as u8,
            1 => {
                for b in &mut g.uuid.0 {
                    *b = varlen_u64(&mut c, "tagged gtid uuid")? as u8;
                }
            }
            2 => g.gno = varlen_i64(&mut c, "tagged gtid gno")? as u64,
            3 => g.tag = lossy(varlen_str(&mut c, "tagged gtid tag")?).into_owned(),
            4 => g.last_committed = Some(varlen_i64(&mut c, "tagged gtid last committed")?),
            5 => g.sequence_number = Some(varlen_i64(&mut c, "tagged gtid sequence number")?),
            6 => g.immediate_commit_timestamp = Some(varlen_u64(&mut c, "tagged gtid commit ts")?),
            7 => original_ts = Some(varlen_u64(&mut c, "tagged gtid original commit ts")?),
            8 => g.transaction_length = Some(varlen_u64(&mut c, "tagged gtid transaction length")?),
            9 => {
                g.immediate_server_version =
                    Some(varlen_u64(&mut c, "tagged gtid server version")? as u32)
            }
            10 => {
                original_version =
                    Some(varlen_u64(&mut c, "tagged gtid original server version")? as u32)
            }
            11 => {
                g.commit_group_ticket = Some(varlen_u64(&mut c, "tagged gtid commit group ticket")?)
            }
            // A newer server's field: its encoding is unknown, so nothing after it can be read.
            _ => break,
        }
    }
    g.original_commit_timestamp = original_ts.or(g.immediate_commit_timestamp);
    g.original_server_version = original_version.or(g.immediate_server_version);
    Ok(g)
}

pub(crate) fn parse_previous_gtids(body: &[u8]) -> PResult<GtidSet> {
    let mut c = Cursor::new(body);
    let head = c.u64("previous gtids count")?;
    // Tagged format (8.3+): byte 0 and byte 7 hold the format (1), bytes 1..=6 the count.
    let tagged = (head & 0xff) == 1 && (head >> 56) == 1;
    let n_sids = if tagged {
        (head >> 8) & 0xffff_ffff_ffff
    } else {
        head
    };
    let mut sids = Vec::new();
    for _ in 0..n_sids {
        let uuid = Uuid(c.array("previous gtids uuid")?);
        let tag = if tagged {
            lossy(varlen_str(&mut c, "previous gtids tag")?).into_owned()
        } else {
            String::new()
        };
        let n = c.u64("previous gtids interval count")?;
        // 16 bytes per interval; refuse counts the body cannot hold before allocating.
        if n > (c.remaining() / 16) as u64 {
            return Err(DecodeErrorKind::ShortBody {
                what: "previous gtids intervals",
            });
        }
        let mut intervals = Vec::with_capacity(n as usize);
        for _ in 0..n {
            intervals.push(GnoInterval {
                start: c.u64("interval start")?,
                end: c.u64("interval end")?,
            });
        }
        sids.push(TsidIntervals {
            uuid,
            tag,
            intervals,
        });
    }
    Ok(GtidSet { sids })
}

/// XA_PREPARE_LOG_EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XaPrepare<'a> {
    /// `XA COMMIT ... ONE PHASE`.
    pub one_phase: bool,
    /// XID format id.
    pub format_id: i32,
    /// Global transaction id.
    pub gtrid: &'a [u8],
    /// Branch qualifier.
    pub bqual: &'a [u8],
}

pub(crate) fn parse_xa_prepare(body: &[u8]) -> PResult<XaPrepare<'_>> {
    let mut c = Cursor::new(body);
    let one_phase = c.u8("xa one phase")? != 0;
    let format_id = c.u32("xa format id")? as i32;
    let gl = c.u32("xa gtrid length")? as usize;
    let bl = c.u32("xa bqual length")? as usize;
    if gl > 64 || bl > 64 {
        return Err(malformed(format!("xa gtrid/bqual length {gl}/{bl}")));
    }
    let gtrid = c.bytes(gl, "xa gtrid")?;
    let bqual = c.bytes(bl, "xa bqual")?;
    Ok(XaPrepare {
        one_phase,
        format_id,
        gtrid,
        bqual,
    })
}

/// VIEW_CHANGE_EVENT (group replication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChange<'a> {
    /// View identifier.
    pub view_id: Cow<'a, str>,
    /// Sequence number of the view.
    pub seq_number: u64,
    /// Certification info and the rest of the body, raw.
    pub rest: &'a [u8],
}

pub(crate) fn parse_view_change(body: &[u8]) -> PResult<ViewChange<'_>> {
    let mut c = Cursor::new(body);
    let raw_id = c.bytes(40, "view id")?;
    let nul = raw_id.iter().position(|&b| b == 0).unwrap_or(raw_id.len());
    let seq_number = c.u64("view seq number")?;
    Ok(ViewChange {
        view_id: lossy(&raw_id[..nul]),
        seq_number,
        rest: c.rest(),
    })
}

/// TRANSACTION_CONTEXT_EVENT (group replication certification data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionContext<'a> {
    /// Server UUID text.
    pub server_uuid: Cow<'a, str>,
    /// Thread id.
    pub thread_id: u32,
    /// Whether the GTID was specified.
    pub gtid_specified: bool,
    /// Snapshot version, write set and read set, raw.
    pub rest: &'a [u8],
}

pub(crate) fn parse_transaction_context(body: &[u8]) -> PResult<TransactionContext<'_>> {
    let mut c = Cursor::new(body);
    let uuid_len = usize::from(c.u8("context uuid length")?);
    let thread_id = c.u32("context thread id")?;
    let gtid_specified = c.u8("context gtid specified")? != 0;
    c.skip(12, "context set lengths")?;
    let server_uuid = lossy(c.bytes(uuid_len, "context server uuid")?);
    Ok(TransactionContext {
        server_uuid,
        thread_id,
        gtid_specified,
        rest: c.rest(),
    })
}

/// MariaDB GTID_EVENT (162).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariaGtidEvent<'a> {
    /// The GTID (server id from the event header).
    pub gtid: MariaGtid,
    /// `flags2` (`FL_STANDALONE` = 1, `FL_GROUP_COMMIT_ID` = 2, `FL_TRANSACTIONAL` = 4,
    /// `FL_ALLOW_PARALLEL` = 8, `FL_WAITED` = 16, `FL_DDL` = 32, `FL_PREPARED_XA` = 64,
    /// `FL_COMPLETED_XA` = 128).
    pub flags: u8,
    /// Group commit id, when `FL_GROUP_COMMIT_ID`.
    pub commit_id: Option<u64>,
    /// XID (format id, gtrid+bqual bytes, gtrid length) of an XA transaction.
    pub xa_xid: Option<(u32, &'a [u8], u8)>,
    /// Extra flags (10.5+), when present.
    pub flags_extra: Option<u8>,
}

impl MariaGtidEvent<'_> {
    /// `FL_STANDALONE`: a self-contained event group (DDL) with no BEGIN … COMMIT.
    pub fn is_standalone(&self) -> bool {
        self.flags & 1 != 0
    }
}

pub(crate) fn parse_maria_gtid(body: &[u8], server_id: u32) -> PResult<MariaGtidEvent<'_>> {
    let mut c = Cursor::new(body);
    let seq_no = c.u64("mariadb gtid seq no")?;
    let domain_id = c.u32("mariadb gtid domain")?;
    let flags = c.u8("mariadb gtid flags")?;
    let mut commit_id = None;
    let mut xa_xid = None;
    if flags & 2 != 0 {
        commit_id = Some(c.u64("mariadb gtid commit id")?);
    } else if flags & (64 | 128) != 0 {
        let format_id = c.u32("mariadb xa format")?;
        let gl = c.u8("mariadb xa gtrid length")?;
        let bl = c.u8("mariadb xa bqual length")?;
        let data = c.bytes(usize::from(gl) + usize::from(bl), "mariadb xa data")?;
        xa_xid = Some((format_id, data, gl));
    } else {
        // Reserved padding to the 19-byte post-header.
        let pad = c.remaining().min(6);
        c.skip(pad, "mariadb gtid padding")?;
    }
    let flags_extra = if c.is_empty() {
        None
    } else {
        Some(c.u8("mariadb gtid extra flags")?)
    };
    Ok(MariaGtidEvent {
        gtid: MariaGtid {
            domain_id,
            server_id,
            seq_no,
        },
        flags,
        commit_id,
        xa_xid,
        flags_extra,
    })
}

pub(crate) fn parse_maria_gtid_list(body: &[u8]) -> PResult<Vec<MariaGtid>> {
    let mut c = Cursor::new(body);
    let count = c.u32("gtid list count")? & 0x0fff_ffff;
    if count as usize > c.remaining() / 16 {
        return Err(DecodeErrorKind::ShortBody {
            what: "gtid list entries",
        });
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let domain_id = c.u32("gtid list domain")?;
        let server_id = c.u32("gtid list server")?;
        let seq_no = c.u64("gtid list seq")?;
        out.push(MariaGtid {
            domain_id,
            server_id,
            seq_no,
        });
    }
    Ok(out)
}

pub(crate) fn parse_maria_checkpoint(body: &[u8]) -> PResult<Cow<'_, str>> {
    let mut c = Cursor::new(body);
    let n = c.u32("binlog checkpoint name length")? as usize;
    Ok(lossy(c.bytes(n, "binlog checkpoint name")?))
}

/// MariaDB START_ENCRYPTION_EVENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartEncryption {
    /// Encryption scheme (1).
    pub scheme: u8,
    /// Key version.
    pub key_version: u32,
    /// Nonce.
    pub nonce: [u8; 12],
}

pub(crate) fn parse_start_encryption(body: &[u8]) -> PResult<StartEncryption> {
    let mut c = Cursor::new(body);
    Ok(StartEncryption {
        scheme: c.u8("encryption scheme")?,
        key_version: c.u32("encryption key version")?,
        nonce: c.array("encryption nonce")?,
    })
}

/// Decompress a MariaDB compressed block (QUERY_COMPRESSED statement, compressed rows body, or
/// a compressed column value): header byte `0x80 | len_bytes` (algorithm 0 = zlib in bits 4–6),
/// the uncompressed length big-endian in `len_bytes` bytes, then a zlib stream.
pub(crate) fn maria_uncompress(buf: &[u8], max: usize) -> PResult<Vec<u8>> {
    use std::io::Read;
    let mut c = Cursor::new(buf);
    let head = c.u8("compressed header")?;
    if head & 0x80 == 0 || head & 0x70 != 0 {
        return Err(malformed(format!("compressed header byte {head:#04x}")));
    }
    let lenlen = usize::from(head & 0x07);
    if lenlen == 0 || lenlen > 4 {
        return Err(malformed(format!("compressed length-of-length {lenlen}")));
    }
    let len = crate::cursor::be_uint(c.bytes(lenlen, "compressed length")?) as usize;
    if len > max {
        return Err(DecodeErrorKind::DecompressedTooLarge {
            size: len as u64,
            max: max as u64,
        });
    }
    let mut out = Vec::with_capacity(len);
    let mut z = flate2::read::ZlibDecoder::new(c.rest()).take(len as u64 + 1);
    z.read_to_end(&mut out)
        .map_err(|e| DecodeErrorKind::Decompress {
            what: e.to_string(),
        })?;
    if out.len() != len {
        return Err(DecodeErrorKind::Decompress {
            what: format!("expected {len} bytes, got {}", out.len()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlen_integers() {
        let mut c = Cursor::new(&[0x0c, 0x25, 0x02, 0x43, 0x0f, 0x0b, 0x0a]);
        assert_eq!(varlen_i64(&mut c, "x").unwrap(), 3);
        assert_eq!(varlen_u64(&mut c, "x").unwrap(), 0x89);
        assert_eq!(varlen_u64(&mut c, "x").unwrap(), 90600);
        assert_eq!(varlen_u64(&mut c, "x").unwrap(), 5);
        let mut c = Cursor::new(&[0xff, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(varlen_u64(&mut c, "x").unwrap(), 0x0807060504030201);
        assert!(varlen_u64(&mut Cursor::new(&[0x01]), "x").is_err());
    }

    #[test]
    fn maria_compressed_round_trip() {
        use std::io::Write;
        let data = b"hello hello hello hello hello".repeat(10);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let comp = z.finish().unwrap();
        let mut buf = vec![0x82, (data.len() >> 8) as u8, data.len() as u8];
        buf.extend_from_slice(&comp);
        assert_eq!(maria_uncompress(&buf, 1 << 20).unwrap(), data);
        assert!(matches!(
            maria_uncompress(&buf, 10),
            Err(DecodeErrorKind::DecompressedTooLarge { .. })
        ));
        buf[2] ^= 1;
        assert!(maria_uncompress(&buf, 1 << 20).is_err());
    }
}
