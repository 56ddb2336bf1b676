//! Event type codes (MySQL 0–42, MariaDB 160–171) and their names.

/// A binlog event type. [`EventType::Other`] carries codes this crate has no name for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `UNKNOWN_EVENT` (0).
    Unknown,
    /// `START_EVENT_V3` (1).
    StartV3,
    /// `QUERY_EVENT` (2).
    Query,
    /// `STOP_EVENT` (3).
    Stop,
    /// `ROTATE_EVENT` (4).
    Rotate,
    /// `INTVAR_EVENT` (5).
    Intvar,
    /// `LOAD_EVENT` (6).
    Load,
    /// `SLAVE_EVENT` (7).
    Slave,
    /// `CREATE_FILE_EVENT` (8).
    CreateFile,
    /// `APPEND_BLOCK_EVENT` (9).
    AppendBlock,
    /// `EXEC_LOAD_EVENT` (10).
    ExecLoad,
    /// `DELETE_FILE_EVENT` (11).
    DeleteFile,
    /// `NEW_LOAD_EVENT` (12).
    NewLoad,
    /// `RAND_EVENT` (13).
    Rand,
    /// `USER_VAR_EVENT` (14).
    UserVar,
    /// `FORMAT_DESCRIPTION_EVENT` (15).
    FormatDescription,
    /// `XID_EVENT` (16).
    Xid,
    /// `BEGIN_LOAD_QUERY_EVENT` (17).
    BeginLoadQuery,
    /// `EXECUTE_LOAD_QUERY_EVENT` (18).
    ExecuteLoadQuery,
    /// `TABLE_MAP_EVENT` (19).
    TableMap,
    /// `PRE_GA_WRITE_ROWS_EVENT` (20).
    PreGaWriteRows,
    /// `PRE_GA_UPDATE_ROWS_EVENT` (21).
    PreGaUpdateRows,
    /// `PRE_GA_DELETE_ROWS_EVENT` (22).
    PreGaDeleteRows,
    /// `WRITE_ROWS_EVENT_V1` (23).
    WriteRowsV1,
    /// `UPDATE_ROWS_EVENT_V1` (24).
    UpdateRowsV1,
    /// `DELETE_ROWS_EVENT_V1` (25).
    DeleteRowsV1,
    /// `INCIDENT_EVENT` (26).
    Incident,
    /// `HEARTBEAT_LOG_EVENT` (27).
    Heartbeat,
    /// `IGNORABLE_LOG_EVENT` (28).
    Ignorable,
    /// `ROWS_QUERY_LOG_EVENT` (29).
    RowsQuery,
    /// `WRITE_ROWS_EVENT` (30).
    WriteRowsV2,
    /// `UPDATE_ROWS_EVENT` (31).
    UpdateRowsV2,
    /// `DELETE_ROWS_EVENT` (32).
    DeleteRowsV2,
    /// `GTID_LOG_EVENT` (33).
    Gtid,
    /// `ANONYMOUS_GTID_LOG_EVENT` (34).
    AnonymousGtid,
    /// `PREVIOUS_GTIDS_LOG_EVENT` (35).
    PreviousGtids,
    /// `TRANSACTION_CONTEXT_EVENT` (36).
    TransactionContext,
    /// `VIEW_CHANGE_EVENT` (37).
    ViewChange,
    /// `XA_PREPARE_LOG_EVENT` (38).
    XaPrepare,
    /// `PARTIAL_UPDATE_ROWS_EVENT` (39).
    PartialUpdateRows,
    /// `TRANSACTION_PAYLOAD_EVENT` (40).
    TransactionPayload,
    /// `HEARTBEAT_LOG_EVENT_V2` (41).
    HeartbeatV2,
    /// `GTID_TAGGED_LOG_EVENT` (42).
    GtidTagged,
    /// `ANNOTATE_ROWS_EVENT` (160).
    MariaAnnotateRows,
    /// `BINLOG_CHECKPOINT_EVENT` (161).
    MariaBinlogCheckpoint,
    /// `GTID_EVENT` (162).
    MariaGtid,
    /// `GTID_LIST_EVENT` (163).
    MariaGtidList,
    /// `START_ENCRYPTION_EVENT` (164).
    MariaStartEncryption,
    /// `QUERY_COMPRESSED_EVENT` (165).
    MariaQueryCompressed,
    /// `WRITE_ROWS_COMPRESSED_EVENT_V1` (166).
    MariaWriteRowsCompressedV1,
    /// `UPDATE_ROWS_COMPRESSED_EVENT_V1` (167).
    MariaUpdateRowsCompressedV1,
    /// `DELETE_ROWS_COMPRESSED_EVENT_V1` (168).
    MariaDeleteRowsCompressedV1,
    /// `WRITE_ROWS_COMPRESSED_EVENT` (169).
    MariaWriteRowsCompressed,
    /// `UPDATE_ROWS_COMPRESSED_EVENT` (170).
    MariaUpdateRowsCompressed,
    /// `DELETE_ROWS_COMPRESSED_EVENT` (171).
    MariaDeleteRowsCompressed,
    /// Any other code (vendor events such as Aurora's 100, or future types).
    Other(u8),
}

impl EventType {
    /// Map a raw type code.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Unknown,
            1 => Self::StartV3,
            2 => Self::Query,
            3 => Self::Stop,
            4 => Self::Rotate,
            5 => Self::Intvar,
            6 => Self::Load,
            7 => Self::Slave,
            8 => Self::CreateFile,
            9 => Self::AppendBlock,
            10 => Self::ExecLoad,
            11 => Self::DeleteFile,
            12 => Self::NewLoad,
            13 => Self::Rand,
            14 => Self::UserVar,
            15 => Self::FormatDescription,
            16 => Self::Xid,
            17 => Self::BeginLoadQuery,
            18 => Self::ExecuteLoadQuery,
            19 => Self::TableMap,
            20 => Self::PreGaWriteRows,
            21 => Self::PreGaUpdateRows,
            22 => Self::PreGaDeleteRows,
            23 => Self::WriteRowsV1,
            24 => Self::UpdateRowsV1,
            25 => Self::DeleteRowsV1,
            26 => Self::Incident,
            27 => Self::Heartbeat,
            28 => Self::Ignorable,
            29 => Self::RowsQuery,
            30 => Self::WriteRowsV2,
            31 => Self::UpdateRowsV2,
            32 => Self::DeleteRowsV2,
            33 => Self::Gtid,
            34 => Self::AnonymousGtid,
            35 => Self::PreviousGtids,
            36 => Self::TransactionContext,
            37 => Self::ViewChange,
            38 => Self::XaPrepare,
            39 => Self::PartialUpdateRows,
            40 => Self::TransactionPayload,
            41 => Self::HeartbeatV2,
            42 => Self::GtidTagged,
            160 => Self::MariaAnnotateRows,
            161 => Self::MariaBinlogCheckpoint,
            162 => Self::MariaGtid,
            163 => Self::MariaGtidList,
            164 => Self::MariaStartEncryption,
            165 => Self::MariaQueryCompressed,
            166 => Self::MariaWriteRowsCompressedV1,
            167 => Self::MariaUpdateRowsCompressedV1,
            168 => Self::MariaDeleteRowsCompressedV1,
            169 => Self::MariaWriteRowsCompressed,
            170 => Self::MariaUpdateRowsCompressed,
            171 => Self::MariaDeleteRowsCompressed,
            other => Self::Other(other),
        }
    }

    /// The raw type code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::StartV3 => 1,
            Self::Query => 2,
            Self::Stop => 3,
            Self::Rotate => 4,
            Self::Intvar => 5,
            Self::Load => 6,
            Self::Slave => 7,
            Self::CreateFile => 8,
            Self::AppendBlock => 9,
            Self::ExecLoad => 10,
            Self::DeleteFile => 11,
            Self::NewLoad => 12,
            Self::Rand => 13,
            Self::UserVar => 14,
            Self::FormatDescription => 15,
            Self::Xid => 16,
            Self::BeginLoadQuery => 17,
            Self::ExecuteLoadQuery => 18,
            Self::TableMap => 19,
            Self::PreGaWriteRows => 20,
            Self::PreGaUpdateRows => 21,
            Self::PreGaDeleteRows => 22,
            Self::WriteRowsV1 => 23,
            Self::UpdateRowsV1 => 24,
            Self::DeleteRowsV1 => 25,
            Self::Incident => 26,
            Self::Heartbeat => 27,
            Self::Ignorable => 28,
            Self::RowsQuery => 29,
            Self::WriteRowsV2 => 30,
            Self::UpdateRowsV2 => 31,
            Self::DeleteRowsV2 => 32,
            Self::Gtid => 33,
            Self::AnonymousGtid => 34,
            Self::PreviousGtids => 35,
            Self::TransactionContext => 36,
            Self::ViewChange => 37,
            Self::XaPrepare => 38,
            Self::PartialUpdateRows => 39,
            Self::TransactionPayload => 40,
            Self::HeartbeatV2 => 41,
            Self::GtidTagged => 42,
            Self::MariaAnnotateRows => 160,
            Self::MariaBinlogCheckpoint => 161,
            Self::MariaGtid => 162,
            Self::MariaGtidList => 163,
            Self::MariaStartEncryption => 164,
            Self::MariaQueryCompressed => 165,
            Self::MariaWriteRowsCompressedV1 => 166,
            Self::MariaUpdateRowsCompressedV1 => 167,
            Self::MariaDeleteRowsCompressedV1 => 168,
            Self::MariaWriteRowsCompressed => 169,
            Self::MariaUpdateRowsCompressed => 170,
            Self::MariaDeleteRowsCompressed => 171,
            Self::Other(c) => c,
        }
    }

    /// The server's own name for the type (`"UNKNOWN"` for [`EventType::Other`]).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN_EVENT",
            Self::StartV3 => "START_EVENT_V3",
            Self::Query => "QUERY_EVENT",
            Self::Stop => "STOP_EVENT",
            Self::Rotate => "ROTATE_EVENT",
            Self::Intvar => "INTVAR_EVENT",
            Self::Load => "LOAD_EVENT",
            Self::Slave => "SLAVE_EVENT",
            Self::CreateFile => "CREATE_FILE_EVENT",
            Self::AppendBlock => "APPEND_BLOCK_EVENT",
            Self::ExecLoad => "EXEC_LOAD_EVENT",
            Self::DeleteFile => "DELETE_FILE_EVENT",
            Self::NewLoad => "NEW_LOAD_EVENT",
            Self::Rand => "RAND_EVENT",
            Self::UserVar => "USER_VAR_EVENT",
            Self::FormatDescription => "FORMAT_DESCRIPTION_EVENT",
            Self::Xid => "XID_EVENT",
            Self::BeginLoadQuery => "BEGIN_LOAD_QUERY_EVENT",
            Self::ExecuteLoadQuery => "EXECUTE_LOAD_QUERY_EVENT",
            Self::TableMap => "TABLE_MAP_EVENT",
            Self::PreGaWriteRows => "PRE_GA_WRITE_ROWS_EVENT",
            Self::PreGaUpdateRows => "PRE_GA_UPDATE_ROWS_EVENT",
            Self::PreGaDeleteRows => "PRE_GA_DELETE_ROWS_EVENT",
            Self::WriteRowsV1 => "WRITE_ROWS_EVENT_V1",
            Self::UpdateRowsV1 => "UPDATE_ROWS_EVENT_V1",
            Self::DeleteRowsV1 => "DELETE_ROWS_EVENT_V1",
            Self::Incident => "INCIDENT_EVENT",
            Self::Heartbeat => "HEARTBEAT_LOG_EVENT",
            Self::Ignorable => "IGNORABLE_LOG_EVENT",
            Self::RowsQuery => "ROWS_QUERY_LOG_EVENT",
            Self::WriteRowsV2 => "WRITE_ROWS_EVENT",
            Self::UpdateRowsV2 => "UPDATE_ROWS_EVENT",
            Self::DeleteRowsV2 => "DELETE_ROWS_EVENT",
            Self::Gtid => "GTID_LOG_EVENT",
            Self::AnonymousGtid => "ANONYMOUS_GTID_LOG_EVENT",
            Self::PreviousGtids => "PREVIOUS_GTIDS_LOG_EVENT",
            Self::TransactionContext => "TRANSACTION_CONTEXT_EVENT",
            Self::ViewChange => "VIEW_CHANGE_EVENT",
            Self::XaPrepare => "XA_PREPARE_LOG_EVENT",
            Self::PartialUpdateRows => "PARTIAL_UPDATE_ROWS_EVENT",
            Self::TransactionPayload => "TRANSACTION_PAYLOAD_EVENT",
            Self::HeartbeatV2 => "HEARTBEAT_LOG_EVENT_V2",
            Self::GtidTagged => "GTID_TAGGED_LOG_EVENT",
            Self::MariaAnnotateRows => "ANNOTATE_ROWS_EVENT",
            Self::MariaBinlogCheckpoint => "BINLOG_CHECKPOINT_EVENT",
            Self::MariaGtid => "GTID_EVENT",
            Self::MariaGtidList => "GTID_LIST_EVENT",
            Self::MariaStartEncryption => "START_ENCRYPTION_EVENT",
            Self::MariaQueryCompressed => "QUERY_COMPRESSED_EVENT",
            Self::MariaWriteRowsCompressedV1 => "WRITE_ROWS_COMPRESSED_EVENT_V1",
            Self::MariaUpdateRowsCompressedV1 => "UPDATE_ROWS_COMPRESSED_EVENT_V1",
            Self::MariaDeleteRowsCompressedV1 => "DELETE_ROWS_COMPRESSED_EVENT_V1",
            Self::MariaWriteRowsCompressed => "WRITE_ROWS_COMPRESSED_EVENT",
            Self::MariaUpdateRowsCompressed => "UPDATE_ROWS_COMPRESSED_EVENT",
            Self::MariaDeleteRowsCompressed => "DELETE_ROWS_COMPRESSED_EVENT",
            Self::Other(_) => "UNKNOWN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn codes_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(EventType::from_code(code).code(), code);
        }
        assert_eq!(EventType::from_code(30).name(), "WRITE_ROWS_EVENT");
        assert_eq!(EventType::from_code(100), EventType::Other(100));
    }
}
