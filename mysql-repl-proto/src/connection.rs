//! The client-side state machine: greeting → (TLS) → authentication → setup queries and
//! preflight → COM_REGISTER_SLAVE → binlog dump → the event stream.
//!
//! Drive it like quinn-proto / str0m: after creating it and after every `handle_*` call, drain
//! [`Connection::poll_output`] until it returns [`Output::Wait`]; write every
//! [`Output::Transmit`] to the socket in order; when the socket has bytes, call
//! [`Connection::handle_input`]; when the `Wait` deadline passes, call
//! [`Connection::handle_timeout`]; when the socket reaches end of file, call
//! [`Connection::handle_eof`]. [`Output::Closed`] is final.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::auth;
use crate::config::{ConnectConfig, SslMode, StartPosition};
use crate::error::ProtoError;
use crate::packet::{self, Handshake, PacketReader, QueryResponse, ResultSet, caps};
use crate::tls::TlsLayer;

/// Which server family is on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// MySQL (or Percona / Aurora MySQL).
    Mysql,
    /// MariaDB.
    MariaDb,
}

/// What the connection learned during setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Server version string.
    pub server_version: String,
    /// MySQL or MariaDB.
    pub flavor: Flavor,
    /// Connection id (thread id) on the server.
    pub connection_id: u32,
    /// Whether events carry a CRC32 (`binlog_checksum=CRC32`).
    pub checksum: bool,
    /// Whether the connection is TLS-encrypted.
    pub tls: bool,
    /// Whether the server certificate was verified.
    pub tls_verified: bool,
    /// The authentication plugin that succeeded.
    pub auth_plugin: String,
    /// Server variables read during setup (lower-case names).
    pub variables: BTreeMap<String, String>,
    /// Where the dump starts (file and position, when dumping by position or at current).
    pub start_file: Option<(String, u64)>,
}

/// Protocol events handed to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnEvent {
    /// Authentication and setup are done; the dump command was sent.
    Ready(Box<ServerInfo>),
    /// One binlog event (the packet's leading OK byte removed). `checksum` tells whether it
    /// ends in a CRC32 (feed the engine with the matching decoder setting).
    Binlog {
        /// The event bytes.
        event: Bytes,
        /// Whether a CRC32 trailer is present.
        checksum: bool,
    },
    /// The server ended the dump with EOF (non-blocking dump reached the end).
    EndOfStream,
    /// A query connection's result ([`Connection::query`]); server errors are not fatal.
    QueryResult(Result<crate::packet::ResultSet, ProtoError>),
}

/// What the state machine wants done next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Write these bytes to the socket.
    Transmit(Bytes),
    /// An event.
    Event(ConnEvent),
    /// Nothing to do until input arrives or the deadline (if any) passes.
    Wait(Option<Instant>),
    /// The connection is finished; `Ok` after [`Connection::close`].
    Closed(Result<(), ProtoError>),
}

#[derive(Debug)]
enum AuthState {
    /// Sent the response for `plugin`; awaiting OK / switch / more data.
    Sent,
    /// Asked the server for its RSA public key.
    AwaitingPublicKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetupStep {
    Variables,
    Checksum,
    Heartbeat,
    MariaCapability,
    MariaConnectState,
    MariaStrict,
    Status,
    StatusFallback,
}

enum Phase {
    Greeting,
    Tls,
    Auth {
        plugin: String,
        scramble: Vec<u8>,
        state: AuthState,
    },
    Setup {
        steps: VecDeque<SetupStep>,
        current: Option<(SetupStep, QueryResponse)>,
    },
    Register,
    Streaming,
    /// Query connection: authenticated, waiting for [`Connection::query`].
    QueryIdle,
    /// Query connection: a query is running.
    QueryRunning(QueryResponse),
    Closed,
}

/// The sans-IO replication client connection.
pub struct Connection {
    config: ConnectConfig,
    phase: Phase,
    reader: PacketReader,
    tls: Option<TlsLayer>,
    out: VecDeque<Output>,
    seq: u8,
    capabilities: u32,
    handshake: Option<Handshake>,
    info: Option<ServerInfo>,
    deadline: Option<Instant>,
    max_packet: usize,
    closed: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn phase_name(p: &Phase) -> &'static str {
    match p {
        Phase::Greeting => "handshake",
        Phase::Tls => "TLS handshake",
        Phase::Auth { .. } => "authentication",
        Phase::Setup { .. } => "setup",
        Phase::Register => "register replica",
        Phase::Streaming => "binlog stream",
        Phase::QueryIdle | Phase::QueryRunning(_) => "query",
        Phase::Closed => "closed",
    }
}

impl Connection {
    /// A new connection; the driver opens the TCP socket and feeds what it reads.
    pub fn new(config: ConnectConfig, now: Instant) -> Result<Self, ProtoError> {
        if config.server_id == 0 {
            return Err(ProtoError::InvalidConfig(
                "server_id must be non-zero".into(),
            ));
        }
        if config.tls.cert_file.is_some() != config.tls.key_file.is_some() {
            return Err(ProtoError::InvalidConfig(
                "ssl_cert and ssl_key must be given together".into(),
            ));
        }
        let max_packet =
            usize::try_from(config.max_event_size.saturating_add(64)).unwrap_or(usize::MAX);
        Ok(Self {
            deadline: Some(now + config.connect_timeout),
            config,
            phase: Phase::Greeting,
            reader: PacketReader::default(),
            tls: None,
            out: VecDeque::new(),
            seq: 0,
            capabilities: 0,
            handshake: None,
            info: None,
            max_packet,
            closed: false,
        })
    }

    /// Server facts known so far (after [`ConnEvent::Ready`]).
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.info.as_ref()
    }

    /// Run a query on a query connection (`ConnectConfig::query_only`) once it is ready; the
    /// answer comes as [`ConnEvent::QueryResult`]. One query at a time.
    pub fn query(&mut self, now: Instant, sql: &str) -> Result<(), ProtoError> {
        if !matches!(self.phase, Phase::QueryIdle) {
            return Err(ProtoError::InvalidConfig(
                "query() needs an idle query connection (query_only, after Ready, one query at a time)".into(),
            ));
        }
        let mut p = Vec::new();
        packet::com_query(&mut p, sql);
        self.phase = Phase::QueryRunning(QueryResponse::default());
        self.deadline = Some(now + self.config.read_timeout);
        self.command(&p)
    }

    /// Bytes read from the socket.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.closed {
            return;
        }
        if let Err(e) = self.input(now, data) {
            self.fail(e);
        }
    }

    /// Call when the `Wait` deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            let what = match self.phase {
                Phase::Streaming => format!(
                    "no data from the server for {:?} (read_timeout); heartbeats were requested every {:?}",
                    self.config.read_timeout, self.config.heartbeat_period
                ),
                _ => format!(
                    "connecting took longer than {:?} (connect_timeout) in {}",
                    self.config.connect_timeout,
                    phase_name(&self.phase)
                ),
            };
            self.fail(ProtoError::Timeout(what));
        }
    }

    /// The socket reached end of file.
    pub fn handle_eof(&mut self) {
        if !self.closed {
            let phase = phase_name(&self.phase);
            self.fail(ProtoError::Eof(phase));
        }
    }

    /// Close cleanly (COM_QUIT when possible).
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        let mut p = Vec::new();
        packet::write_packet(&mut p, &[0x01], 0);
        let _ = self.send_raw(&p);
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let mut c = Vec::new();
            tls.take_ciphertext(&mut c);
            if !c.is_empty() {
                self.out.push_back(Output::Transmit(Bytes::from(c)));
            }
        }
        self.closed = true;
        self.phase = Phase::Closed;
        self.out.push_back(Output::Closed(Ok(())));
    }

    /// The next output; drain until `Wait`.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        if self.closed {
            return Output::Wait(None);
        }
        Output::Wait(self.deadline)
    }

    fn fail(&mut self, e: ProtoError) {
        self.closed = true;
        self.phase = Phase::Closed;
        self.out.push_back(Output::Closed(Err(e)));
    }

    /// Send raw packet bytes (through TLS when active).
    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ProtoError> {
        match self.tls.as_mut() {
            Some(tls) => {
                tls.write_plaintext(bytes)?;
                let mut c = Vec::new();
                tls.take_ciphertext(&mut c);
                if !c.is_empty() {
                    self.out.push_back(Output::Transmit(Bytes::from(c)));
                }
            }
            None => self
                .out
                .push_back(Output::Transmit(Bytes::copy_from_slice(bytes))),
        }
        Ok(())
    }

    /// Send a payload continuing the current sequence.
    fn send(&mut self, payload: &[u8]) -> Result<(), ProtoError> {
        let mut p = Vec::with_capacity(payload.len() + 4);
        self.seq = packet::write_packet(&mut p, payload, self.seq);
        self.reader.expect_seq(self.seq);
        self.send_raw(&p)
    }

    /// Start a new command (sequence 0).
    fn command(&mut self, payload: &[u8]) -> Result<(), ProtoError> {
        self.seq = 0;
        self.send(payload)
    }

    fn input(&mut self, now: Instant, data: &[u8]) -> Result<(), ProtoError> {
        if let Some(tls) = self.tls.as_mut() {
            tls.handle_ciphertext(data)?;
            let mut c = Vec::new();
            tls.take_ciphertext(&mut c);
            if !c.is_empty() {
                self.out.push_back(Output::Transmit(Bytes::from(c)));
            }
            let mut plain = Vec::new();
            tls.read_plaintext(&mut plain)?;
            let handshaking = tls.is_handshaking();
            if matches!(self.phase, Phase::Tls) && !handshaking {
                self.after_tls()?;
            }
            self.reader.handle_input(&plain);
        } else {
            self.reader.handle_input(data);
        }
        if matches!(self.phase, Phase::Streaming) {
            self.deadline = Some(now + self.config.read_timeout);
        }
        while let Some((seq, payload)) = self.reader.next_packet(self.max_packet)? {
            self.seq = seq.wrapping_add(1);
            self.packet(now, payload)?;
            if self.closed {
                break;
            }
        }
        Ok(())
    }

    fn packet(&mut self, now: Instant, payload: Bytes) -> Result<(), ProtoError> {
        match &mut self.phase {
            Phase::Greeting => self.greeting(&payload),
            Phase::Tls => Err(ProtoError::Protocol {
                phase: "TLS handshake",
                what: "plaintext packet during TLS".into(),
            }),
            Phase::Auth { .. } => self.auth_packet(now, &payload),
            Phase::Setup { .. } => self.setup_packet(&payload),
            Phase::Register => {
                if payload.first() == Some(&0xff) {
                    return Err(privilege_hint(packet::parse_err(
                        &payload,
                        "register replica",
                    )));
                }
                self.dump()?;
                self.deadline = Some(now + self.config.read_timeout);
                Ok(())
            }
            Phase::Streaming => self.stream_packet(payload),
            Phase::QueryRunning(_) => self.query_packet(&payload),
            Phase::QueryIdle => Err(ProtoError::Protocol {
                phase: "query",
                what: "unexpected packet while idle".into(),
            }),
            Phase::Closed => Ok(()),
        }
    }

    fn greeting(&mut self, payload: &[u8]) -> Result<(), ProtoError> {
        let hs = packet::parse_handshake(payload)?;
        let server = hs.capabilities;
        let mut want = caps::LONG_PASSWORD
            | caps::LONG_FLAG
            | caps::PROTOCOL_41
            | caps::TRANSACTIONS
            | caps::SECURE_CONNECTION
            | caps::MULTI_RESULTS
            | caps::PLUGIN_AUTH
            | caps::PLUGIN_AUTH_LENENC
            | caps::CONNECT_ATTRS
            | caps::DEPRECATE_EOF;
        if !self.config.database.is_empty() {
            want |= caps::CONNECT_WITH_DB;
        }
        if server & caps::PROTOCOL_41 == 0 || server & caps::SECURE_CONNECTION == 0 {
            return Err(ProtoError::Protocol {
                phase: "handshake",
                what: "server lacks protocol 4.1 authentication".into(),
            });
        }
        self.capabilities = want & (server | caps::LONG_PASSWORD);
        let mode = self.config.tls.mode;
        let server_tls = server & caps::SSL != 0;
        let use_tls = match mode {
            SslMode::Disabled => false,
            SslMode::Preferred => server_tls,
            _ if !server_tls => {
                return Err(ProtoError::Tls(format!(
                    "the server does not offer TLS but ssl_mode is {mode:?}; configure ssl_cert/ssl_key on the server or lower ssl_mode"
                )));
            }
            _ => true,
        };
        self.handshake = Some(hs);
        if use_tls {
            self.capabilities |= caps::SSL;
            let mut req = Vec::new();
            packet::ssl_request(&mut req, self.capabilities);
            self.send(&req)?;
            let mut tls = TlsLayer::new(&self.config.tls, &self.config.host)?;
            let mut c = Vec::new();
            tls.take_ciphertext(&mut c);
            self.out.push_back(Output::Transmit(Bytes::from(c)));
            self.tls = Some(tls);
            self.phase = Phase::Tls;
            Ok(())
        } else {
            self.send_handshake_response()
        }
    }

    fn after_tls(&mut self) -> Result<(), ProtoError> {
        self.send_handshake_response()
    }

    fn verified_channel(&self) -> bool {
        self.tls.as_ref().is_some_and(TlsLayer::is_verified)
    }

    fn send_handshake_response(&mut self) -> Result<(), ProtoError> {
        let Some(hs) = self.handshake.clone() else {
            return Err(ProtoError::Protocol {
                phase: "handshake",
                what: "no greeting".into(),
            });
        };
        let plugin = if hs.auth_plugin.is_empty() {
            auth::MYSQL_NATIVE_PASSWORD.to_owned()
        } else {
            hs.auth_plugin.clone()
        };
        let response = self.auth_response(&plugin, &hs.scramble)?;
        let mut p = Vec::new();
        packet::handshake_response(
            &mut p,
            self.capabilities,
            &self.config.user,
            &response,
            &self.config.database,
            &plugin,
        );
        self.send(&p)?;
        self.phase = Phase::Auth {
            plugin,
            scramble: hs.scramble,
            state: AuthState::Sent,
        };
        Ok(())
    }

    /// The first response for `plugin`.
    fn auth_response(&self, plugin: &str, scramble: &[u8]) -> Result<Vec<u8>, ProtoError> {
        let pw = self.config.password.as_bytes();
        Ok(match plugin {
            auth::MYSQL_NATIVE_PASSWORD => auth::native_password(pw, scramble),
            auth::CACHING_SHA2_PASSWORD => auth::caching_sha2_token(pw, scramble),
            auth::CLIENT_ED25519 => auth::ed25519_signature(pw, scramble),
            auth::SHA256_PASSWORD => {
                if pw.is_empty() {
                    vec![0]
                } else if self.verified_channel() {
                    cleartext(pw)
                } else if let Some(pem) = &self.config.server_public_key {
                    auth::rsa_encrypt_password(pw, scramble, pem)?
                } else if self.config.allow_public_key_retrieval {
                    vec![1]
                } else {
                    return Err(no_secure_path(plugin));
                }
            }
            auth::MYSQL_CLEAR_PASSWORD => {
                if !self.verified_channel() {
                    return Err(ProtoError::Auth(
                        "the server asks for mysql_clear_password, which sends the password in clear: refused without a verified TLS channel (ssl_mode=VERIFY_CA or VERIFY_IDENTITY)".into(),
                    ));
                }
                cleartext(pw)
            }
            other => {
                return Err(ProtoError::Auth(format!(
                    "authentication plugin `{other}` is not supported (supported: caching_sha2_password, mysql_native_password, sha256_password, client_ed25519, mysql_clear_password over verified TLS)"
                )));
            }
        })
    }

    fn auth_packet(&mut self, _now: Instant, payload: &[u8]) -> Result<(), ProtoError> {
        let Phase::Auth {
            plugin,
            scramble,
            state,
        } = &mut self.phase
        else {
            return Ok(());
        };
        let plugin = plugin.clone();
        let scramble = scramble.clone();
        match payload.first() {
            Some(0x00) => self.authenticated(&plugin),
            Some(0xff) => Err(auth_error(
                packet::parse_err(payload, "authentication"),
                &self.config.user,
            )),
            Some(0xfe) => {
                // Auth switch: plugin name, then new scramble.
                let mut r = packet::Reader::new(&payload[1..], "authentication");
                let new_plugin = String::from_utf8_lossy(r.cstr()).into_owned();
                let data = r.rest();
                let new_scramble = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                let response = self.auth_response(&new_plugin, &new_scramble)?;
                self.send(&response)?;
                self.phase = Phase::Auth {
                    plugin: new_plugin,
                    scramble: new_scramble,
                    state: AuthState::Sent,
                };
                Ok(())
            }
            Some(0x01) => {
                let data = &payload[1..];
                match state {
                    AuthState::AwaitingPublicKey => {
                        let pem = String::from_utf8_lossy(data).into_owned();
                        let enc = auth::rsa_encrypt_password(
                            self.config.password.as_bytes(),
                            &scramble,
                            &pem,
                        )?;
                        self.send(&enc)?;
                        self.phase = Phase::Auth {
                            plugin,
                            scramble,
                            state: AuthState::Sent,
                        };
                        Ok(())
                    }
                    AuthState::Sent if plugin == auth::CACHING_SHA2_PASSWORD && data == [3] => {
                        Ok(())
                    } // fast auth ok; OK follows
                    AuthState::Sent if plugin == auth::CACHING_SHA2_PASSWORD && data == [4] => {
                        self.full_auth(plugin, scramble)
                    }
                    AuthState::Sent if plugin == auth::SHA256_PASSWORD => {
                        // The public key we asked for with the 0x01 byte.
                        let pem = String::from_utf8_lossy(data).into_owned();
                        let enc = auth::rsa_encrypt_password(
                            self.config.password.as_bytes(),
                            &scramble,
                            &pem,
                        )?;
                        self.send(&enc)
                    }
                    AuthState::Sent => Err(ProtoError::Protocol {
                        phase: "authentication",
                        what: format!("unexpected auth data for {plugin}"),
                    }),
                }
            }
            _ => Err(ProtoError::Protocol {
                phase: "authentication",
                what: "unexpected packet".into(),
            }),
        }
    }

    fn full_auth(&mut self, plugin: String, scramble: Vec<u8>) -> Result<(), ProtoError> {
        let pw = self.config.password.as_bytes().to_vec();
        if self.verified_channel() {
            self.send(&cleartext(&pw))?;
        } else if let Some(pem) = self.config.server_public_key.clone() {
            let enc = auth::rsa_encrypt_password(&pw, &scramble, &pem)?;
            self.send(&enc)?;
        } else if self.config.allow_public_key_retrieval {
            self.send(&[2])?;
            self.phase = Phase::Auth {
                plugin,
                scramble,
                state: AuthState::AwaitingPublicKey,
            };
        } else {
            return Err(no_secure_path(&plugin));
        }
        Ok(())
    }

    fn authenticated(&mut self, plugin: &str) -> Result<(), ProtoError> {
        let Some(hs) = &self.handshake else {
            return Ok(());
        };
        let flavor = if hs.is_mariadb() {
            Flavor::MariaDb
        } else {
            Flavor::Mysql
        };
        // MariaDB prefixes its version with "5.5.5-" for old clients.
        let version = hs
            .server_version
            .strip_prefix("5.5.5-")
            .unwrap_or(&hs.server_version)
            .to_owned();
        self.info = Some(ServerInfo {
            server_version: version,
            flavor,
            connection_id: hs.connection_id,
            checksum: false,
            tls: self.tls.is_some(),
            tls_verified: self.verified_channel(),
            auth_plugin: plugin.to_owned(),
            variables: BTreeMap::new(),
            start_file: None,
        });
        if self.config.query_only {
            self.phase = Phase::QueryIdle;
            self.deadline = None;
            let info = self.info.clone().ok_or_else(|| ProtoError::Protocol {
                phase: "setup",
                what: "no server info".into(),
            })?;
            self.out
                .push_back(Output::Event(ConnEvent::Ready(Box::new(info))));
            return Ok(());
        }
        let mut steps = VecDeque::from([
            SetupStep::Variables,
            SetupStep::Checksum,
            SetupStep::Heartbeat,
        ]);
        if flavor == Flavor::MariaDb {
            steps.push_back(SetupStep::MariaCapability);
            if let StartPosition::MariaGtid(_) = self.config.start {
                steps.push_back(SetupStep::MariaConnectState);
                steps.push_back(SetupStep::MariaStrict);
            }
        }
        if matches!(self.config.start, StartPosition::Current) {
            steps.push_back(SetupStep::Status);
        }
        self.phase = Phase::Setup {
            steps,
            current: None,
        };
        self.next_setup()
    }

    fn setup_sql(&self, step: SetupStep) -> String {
        let maria = self
            .info
            .as_ref()
            .is_some_and(|i| i.flavor == Flavor::MariaDb);
        match step {
            SetupStep::Variables => {
                let mut names = vec![
                    "version",
                    "log_bin",
                    "binlog_format",
                    "binlog_row_image",
                    "binlog_row_metadata",
                    "binlog_checksum",
                    "server_id",
                ];
                if maria {
                    names.extend([
                        "gtid_binlog_pos",
                        "gtid_current_pos",
                        "gtid_strict_mode",
                        "log_bin_compress",
                    ]);
                } else {
                    names.extend([
                        "gtid_mode",
                        "gtid_purged",
                        "gtid_executed",
                        "server_uuid",
                        "binlog_transaction_compression",
                    ]);
                }
                let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
                format!(
                    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({})",
                    list.join(",")
                )
            }
            SetupStep::Checksum => {
                if maria {
                    "SET @master_binlog_checksum = @@global.binlog_checksum".into()
                } else {
                    "SET @master_binlog_checksum = @@global.binlog_checksum, @source_binlog_checksum = @@global.binlog_checksum".into()
                }
            }
            SetupStep::Heartbeat => {
                let ns = self
                    .config
                    .heartbeat_period
                    .as_nanos()
                    .min(u128::from(u64::MAX));
                if maria {
                    format!("SET @master_heartbeat_period = {ns}")
                } else {
                    format!("SET @master_heartbeat_period = {ns}, @source_heartbeat_period = {ns}")
                }
            }
            SetupStep::MariaCapability => "SET @mariadb_slave_capability = 4".into(),
            SetupStep::MariaConnectState => {
                let pos = match &self.config.start {
                    StartPosition::MariaGtid(p) => p.clone(),
                    _ => String::new(),
                };
                format!(
                    "SET @slave_connect_state = '{}'",
                    pos.replace(['\'', '\\'], "")
                )
            }
            SetupStep::MariaStrict => {
                "SET @slave_gtid_strict_mode = 1, @slave_gtid_ignore_duplicates = 0".into()
            }
            SetupStep::Status => {
                if maria {
                    "SHOW MASTER STATUS".into()
                } else {
                    "SHOW BINARY LOG STATUS".into()
                }
            }
            SetupStep::StatusFallback => "SHOW MASTER STATUS".into(),
        }
    }

    fn next_setup(&mut self) -> Result<(), ProtoError> {
        let Phase::Setup { steps, current } = &mut self.phase else {
            return Ok(());
        };
        let Some(step) = steps.pop_front() else {
            return self.register();
        };
        *current = Some((step, QueryResponse::default()));
        let sql = self.setup_sql(step);
        let mut p = Vec::new();
        packet::com_query(&mut p, &sql);
        self.command(&p)
    }

    fn setup_packet(&mut self, payload: &[u8]) -> Result<(), ProtoError> {
        let deprecate = self.capabilities & caps::DEPRECATE_EOF != 0;
        let Phase::Setup {
            current: Some((step, resp)),
            steps,
        } = &mut self.phase
        else {
            return Ok(());
        };
        let step = *step;
        let result = match resp.handle_packet(payload, deprecate) {
            Ok(r) => r,
            Err(ProtoError::Server {
                code: 1064 | 1193, ..
            }) if step == SetupStep::Status => {
                // MySQL < 8.2 has no SHOW BINARY LOG STATUS.
                steps.push_front(SetupStep::StatusFallback);
                return self.next_setup();
            }
            Err(e) => return Err(privilege_hint(e)),
        };
        let Some(rs) = result else { return Ok(()) };
        match step {
            SetupStep::Variables => self.variables(&rs)?,
            SetupStep::Status | SetupStep::StatusFallback => {
                let file = rs.rows.first().and_then(|r| r.first().cloned().flatten());
                let pos = rs
                    .rows
                    .first()
                    .and_then(|r| r.get(1).cloned().flatten())
                    .and_then(|p| p.parse::<u64>().ok());
                match (file, pos) {
                    (Some(f), Some(p)) => {
                        if let Some(i) = self.info.as_mut() {
                            i.start_file = Some((f, p));
                        }
                    }
                    _ => {
                        return Err(ProtoError::Config(
                            "SHOW BINARY LOG STATUS returned no binlog position: binary logging is disabled (start the server with log_bin)".into(),
                        ));
                    }
                }
            }
            _ => {}
        }
        self.next_setup()
    }

    fn variables(&mut self, rs: &ResultSet) -> Result<(), ProtoError> {
        let mut vars = BTreeMap::new();
        for row in &rs.rows {
            if let (Some(Some(k)), Some(v)) = (row.first(), row.get(1)) {
                vars.insert(k.to_ascii_lowercase(), v.clone().unwrap_or_default());
            }
        }
        let checksum = vars
            .get("binlog_checksum")
            .is_some_and(|v| v.eq_ignore_ascii_case("CRC32"));
        if let Some(i) = self.info.as_mut() {
            i.checksum = checksum;
            i.variables = vars.clone();
        }
        if self.config.preflight {
            preflight(
                &vars,
                &self.config.start,
                self.info.as_ref().map(|i| i.flavor),
            )?;
        }
        Ok(())
    }

    fn register(&mut self) -> Result<(), ProtoError> {
        let mut p = Vec::new();
        packet::com_register_slave(&mut p, self.config.server_id);
        self.phase = Phase::Register;
        self.command(&p)
    }

    fn dump(&mut self) -> Result<(), ProtoError> {
        let mut p = Vec::new();
        let sid = self.config.server_id;
        let flags = if self.config.stop_at_end {
            packet::BINLOG_DUMP_NON_BLOCK
        } else {
            0
        };
        match &self.config.start {
            StartPosition::FilePosition { file, position } => {
                let pos = u32::try_from(*position).map_err(|_| {
                    ProtoError::InvalidConfig(format!(
                        "binlog position {position} does not fit COM_BINLOG_DUMP (use a GTID start)"
                    ))
                })?;
                packet::com_binlog_dump(&mut p, pos, flags, sid, file);
                if let Some(i) = self.info.as_mut() {
                    i.start_file = Some((file.clone(), *position));
                }
            }
            StartPosition::Current => {
                let (file, pos) = self
                    .info
                    .as_ref()
                    .and_then(|i| i.start_file.clone())
                    .unwrap_or_default();
                packet::com_binlog_dump(&mut p, u32::try_from(pos).unwrap_or(4), flags, sid, &file);
            }
            StartPosition::MysqlGtidSet(text) => {
                let set =
                    mysql_binlog_codec::engine::MysqlGtidSet::parse(text).ok_or_else(|| {
                        ProtoError::InvalidConfig(format!(
                            "start GTID set `{text}` is not a MySQL GTID set"
                        ))
                    })?;
                let mut enc = Vec::new();
                packet::encode_gtid_set(&mut enc, &set);
                packet::com_binlog_dump_gtid(&mut p, flags, sid, "", 4, &enc);
            }
            StartPosition::MariaGtid(_) => packet::com_binlog_dump(&mut p, 4, flags, sid, ""),
        }
        self.command(&p)?;
        self.phase = Phase::Streaming;
        let info = self.info.clone().ok_or_else(|| ProtoError::Protocol {
            phase: "setup",
            what: "no server info".into(),
        })?;
        self.out
            .push_back(Output::Event(ConnEvent::Ready(Box::new(info))));
        Ok(())
    }

    fn query_packet(&mut self, payload: &[u8]) -> Result<(), ProtoError> {
        let deprecate = self.capabilities & caps::DEPRECATE_EOF != 0;
        let Phase::QueryRunning(resp) = &mut self.phase else {
            return Ok(());
        };
        let done = match resp.handle_packet(payload, deprecate) {
            Ok(None) => return Ok(()),
            Ok(Some(rs)) => Ok(rs),
            Err(e @ ProtoError::Server { .. }) => Err(e),
            Err(e) => return Err(e),
        };
        self.phase = Phase::QueryIdle;
        self.deadline = None;
        self.out
            .push_back(Output::Event(ConnEvent::QueryResult(done)));
        Ok(())
    }

    fn stream_packet(&mut self, payload: Bytes) -> Result<(), ProtoError> {
        match payload.first() {
            Some(0x00) => {
                let checksum = self.info.as_ref().is_some_and(|i| i.checksum);
                self.out.push_back(Output::Event(ConnEvent::Binlog {
                    event: payload.slice(1..),
                    checksum,
                }));
                Ok(())
            }
            Some(0xfe) if payload.len() < 9 => {
                self.out.push_back(Output::Event(ConnEvent::EndOfStream));
                self.closed = true;
                self.phase = Phase::Closed;
                self.out.push_back(Output::Closed(Ok(())));
                Ok(())
            }
            Some(0xff) => Err(stream_error(packet::parse_err(&payload, "binlog stream"))),
            _ => Err(ProtoError::Protocol {
                phase: "binlog stream",
                what: "packet is neither an event, EOF nor ERR".into(),
            }),
        }
    }
}

fn cleartext(pw: &[u8]) -> Vec<u8> {
    let mut v = pw.to_vec();
    v.push(0);
    v
}

fn no_secure_path(plugin: &str) -> ProtoError {
    ProtoError::Auth(format!(
        "{plugin} needs the password itself (full authentication) and the connection is not a verified TLS channel: \
         use ssl_mode=VERIFY_CA/VERIFY_IDENTITY, give the server's public key, or set allow_public_key_retrieval=true \
         (the password is then RSA-encrypted); it is never sent in clear over an unverified channel"
    ))
}

fn auth_error(e: ProtoError, user: &str) -> ProtoError {
    match e {
        ProtoError::Server {
            code: 1045,
            message,
            ..
        } => ProtoError::Auth(format!(
            "access denied for user `{user}` (wrong password or host not allowed): {message}"
        )),
        ProtoError::Server { code, message, .. } => {
            ProtoError::Auth(format!("server error {code}: {message}"))
        }
        other => other,
    }
}

fn privilege_hint(e: ProtoError) -> ProtoError {
    match e {
        ProtoError::Server {
            code: 1227 | 1045 | 1044 | 1142,
            message,
            sql_state,
            phase,
        } => ProtoError::Server {
            code: 1227,
            sql_state,
            message: format!(
                "{message} — the replication user needs REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: also BINLOG MONITOR): \
                 GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '<user>'@'<host>'"
            ),
            phase,
        },
        other => other,
    }
}

fn stream_error(e: ProtoError) -> ProtoError {
    match e {
        ProtoError::Server {
            code: 1236,
            message,
            ..
        } => ProtoError::PositionUnavailable(format!(
            "the server cannot send binlog from the requested position (error 1236): {message}; \
             start from a retained position or GTID set (see SHOW BINARY LOGS / gtid_purged)"
        )),
        ProtoError::Server {
            code: 1227 | 1045, ..
        } => privilege_hint(e),
        other => other,
    }
}

fn preflight(
    vars: &BTreeMap<String, String>,
    start: &StartPosition,
    flavor: Option<Flavor>,
) -> Result<(), ProtoError> {
    let get = |k: &str| vars.get(k).map(|v| v.to_ascii_uppercase());
    match get("log_bin").as_deref() {
        Some("ON" | "1") => {}
        other => {
            return Err(ProtoError::Config(format!(
                "log_bin is {} — binary logging is disabled: start the server with --log-bin (my.cnf: log_bin=ON)",
                other.unwrap_or("not reported")
            )));
        }
    }
    match get("binlog_format").as_deref() {
        Some("ROW") => {}
        other => {
            return Err(ProtoError::Config(format!(
                "binlog_format is {} — row events are needed: SET GLOBAL binlog_format='ROW' (and binlog_format=ROW in my.cnf)",
                other.unwrap_or("not reported")
            )));
        }
    }
    if let Some(img) = get("binlog_row_image") {
        if img != "FULL" {
            return Err(ProtoError::Config(format!(
                "binlog_row_image is {img} — before/after images would be partial: SET GLOBAL binlog_row_image='FULL'"
            )));
        }
    }
    if let StartPosition::MysqlGtidSet(text) = start {
        if flavor == Some(Flavor::Mysql) {
            if get("gtid_mode").as_deref() != Some("ON") {
                return Err(ProtoError::Config(format!(
                    "gtid_mode is {} — a GTID start needs gtid_mode=ON (SET GLOBAL enforce_gtid_consistency=ON, then gtid_mode=OFF_PERMISSIVE → ON_PERMISSIVE → ON)",
                    get("gtid_mode").unwrap_or_default()
                )));
            }
            let purged = vars
                .get("gtid_purged")
                .map(String::as_str)
                .unwrap_or_default();
            if let (Some(want), Some(purged_set)) = (
                mysql_binlog_codec::engine::MysqlGtidSet::parse(text),
                mysql_binlog_codec::engine::MysqlGtidSet::parse(purged),
            ) {
                if !want.contains_set(&purged_set) {
                    return Err(ProtoError::PositionUnavailable(format!(
                        "the server purged GTIDs that the start set `{text}` has not seen (gtid_purged = {purged}); \
                         those transactions are gone: re-snapshot, or start from a set that includes gtid_purged"
                    )));
                }
            }
        }
    }
    Ok(())
}
