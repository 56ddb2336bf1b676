//! TLS for the client connection, run entirely in memory.
//!
//! [`TlsLayer`] wraps a rustls client session. The caller moves bytes between it and the
//! network: ciphertext read from the socket goes into [`TlsLayer::handle_ciphertext`], ciphertext
//! to send comes out of [`TlsLayer::take_ciphertext`], and the protocol's plaintext goes through
//! [`TlsLayer::write_plaintext`] / [`TlsLayer::read_plaintext`]. No sockets are touched here.
//!
//! How the server's certificate is checked depends on [`SslMode`]:
//!
//! * `Preferred` / `Required`: the channel is encrypted but the certificate is not checked (any
//!   chain is accepted). The handshake signatures are still verified, so the peer must hold the
//!   private key of the certificate it presents.
//! * `VerifyCa`: the chain must lead to a CA from `ca_file` (or the system trust store when no
//!   file is given); the host name is not checked.
//! * `VerifyIdentity`: as `VerifyCa`, and the certificate must name the host (DNS name or IP
//!   address).
//!
//! Only the verifying modes give a "verified channel" ([`TlsLayer::is_verified`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};

use crate::config::{SslMode, TlsOptions};
use crate::error::ProtoError;

/// Size of the scratch buffer used to drain decrypted bytes from rustls.
const PLAINTEXT_CHUNK: usize = 16 * 1024;

/// A TLS client session fed from memory.
///
/// Build it with [`TlsLayer::new`] once the server has agreed to TLS (after the SSLRequest
/// packet), then pump bytes until [`TlsLayer::is_handshaking`] turns false.
pub struct TlsLayer {
    conn: ClientConnection,
    mode: SslMode,
    host: String,
    ca_file: Option<PathBuf>,
    /// Decrypted bytes not yet handed out by `read_plaintext`.
    plaintext: Vec<u8>,
    /// A `close_notify` alert was received.
    peer_closed: bool,
    /// A TLS error occurred; the session is unusable.
    failed: bool,
}

impl fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsLayer")
            .field("mode", &self.mode)
            .field("host", &self.host)
            .field("handshaking", &self.conn.is_handshaking())
            .field("buffered_plaintext", &self.plaintext.len())
            .field("peer_closed", &self.peer_closed)
            .field("failed", &self.failed)
            .finish()
    }
}

impl TlsLayer {
    /// Build for `host` (DNS name or IP address literal) under `opts` (mode must not be
    /// `Disabled`).
    ///
    /// Reads the CA file (or the system trust store for `VerifyCa` / `VerifyIdentity` without a
    /// CA file) and the client certificate and key, if configured. Missing or unreadable files,
    /// a certificate without a key (or the reverse) and a host name that cannot be checked under
    /// `VerifyIdentity` are [`ProtoError::InvalidConfig`].
    pub fn new(opts: &TlsOptions, host: &str) -> Result<Self, ProtoError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| ProtoError::Tls(format!("cannot set up TLS protocol versions: {e}")))?;

        let bare_host = strip_brackets(host);
        let parsed_name = ServerName::try_from(bare_host.to_owned()).ok();

        let builder = match opts.mode {
            SslMode::Disabled => {
                return Err(ProtoError::InvalidConfig(
                    "ssl_mode is DISABLED: no TLS session can be created".into(),
                ));
            }
            SslMode::Preferred | SslMode::Required => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ModeVerifier {
                    roots: None,
                    algorithms: provider.signature_verification_algorithms,
                })),
            SslMode::VerifyCa => {
                let roots = load_roots(opts.ca_file.as_deref())?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ModeVerifier {
                        roots: Some(Arc::new(roots)),
                        algorithms: provider.signature_verification_algorithms,
                    }))
            }
            SslMode::VerifyIdentity => {
                if parsed_name.is_none() {
                    return Err(ProtoError::InvalidConfig(format!(
                        "host {host:?} is neither a valid DNS name nor an IP address, so \
                         ssl_mode VERIFY_IDENTITY cannot check it against the certificate"
                    )));
                }
                let roots = load_roots(opts.ca_file.as_deref())?;
                builder.with_root_certificates(roots)
            }
        };

        let mut config = match (&opts.cert_file, &opts.key_file) {
            (Some(cert), Some(key)) => {
                let chain = load_certs(cert, "ssl_cert")?;
                let key_der = load_key(key)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    ProtoError::InvalidConfig(format!(
                        "client certificate {} / key {} unusable: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(ProtoError::InvalidConfig(
                    "ssl_cert is set but ssl_key is not: both are needed for a client certificate"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ProtoError::InvalidConfig(
                    "ssl_key is set but ssl_cert is not: both are needed for a client certificate"
                        .into(),
                ));
            }
        };

        // A name that is not a valid DNS name (only possible outside VERIFY_IDENTITY) is not
        // needed for verification: use an address, for which no SNI is sent.
        let server_name = parsed_name.unwrap_or(ServerName::IpAddress(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED).into(),
        ));
        if !matches!(server_name, ServerName::DnsName(_)) {
            config.enable_sni = false;
        }

        let mut conn = ClientConnection::new(Arc::new(config), server_name)
            .map_err(|e| ProtoError::Tls(format!("cannot start TLS session: {e}")))?;
        // Application data written before the handshake ends is buffered; never refuse it.
        conn.set_buffer_limit(None);

        Ok(Self {
            conn,
            mode: opts.mode,
            host: host.to_owned(),
            ca_file: opts.ca_file.clone(),
            plaintext: Vec::new(),
            peer_closed: false,
            failed: false,
        })
    }

    /// Bytes received from the network.
    ///
    /// Any amount may be given, down to single bytes; records are reassembled internally.
    /// Decrypted application data is kept until [`TlsLayer::read_plaintext`]. After an error the
    /// session is dead; bytes from [`TlsLayer::take_ciphertext`] may still carry an alert for the
    /// server.
    pub fn handle_ciphertext(&mut self, data: &[u8]) -> Result<(), ProtoError> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = match self.conn.read_tls(&mut rest) {
                Ok(n) => n,
                Err(e) => {
                    self.failed = true;
                    return Err(ProtoError::Tls(format!("cannot buffer TLS records: {e}")));
                }
            };
            self.process()?;
            if n == 0 {
                // rustls takes nothing after a close_notify: the rest is ignored.
                break;
            }
        }
        Ok(())
    }

    /// Append decrypted application bytes to `out`.
    pub fn read_plaintext(&mut self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        self.drain_plaintext()?;
        out.append(&mut self.plaintext);
        Ok(())
    }

    /// Queue application bytes for encryption.
    ///
    /// Bytes written during the handshake are sent once it completes.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<(), ProtoError> {
        if self.failed {
            return Err(ProtoError::Tls(
                "cannot send: the TLS session has failed".into(),
            ));
        }
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| ProtoError::Tls(format!("cannot encrypt data: {e}")))
    }

    /// Append bytes to send to the network.
    pub fn take_ciphertext(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(n) if n > 0 => {}
                // Writing into a Vec cannot fail; stop rather than spin if it ever does.
                _ => break,
            }
        }
    }

    /// Handshake still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Handshake done and the peer's certificate was verified (`VerifyCa` / `VerifyIdentity`):
    /// a "verified channel", where sending a password in clear is acceptable.
    pub fn is_verified(&self) -> bool {
        self.mode.verifies() && !self.failed && !self.conn.is_handshaking()
    }

    /// Send close_notify (queued; collect it with [`TlsLayer::take_ciphertext`]).
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// Whether the peer closed the TLS session cleanly (sent close_notify).
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Run rustls on buffered records, then move decrypted bytes out of its bounded buffer.
    fn process(&mut self) -> Result<(), ProtoError> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                if state.peer_has_closed() {
                    self.peer_closed = true;
                }
            }
            Err(e) => {
                self.failed = true;
                return Err(ProtoError::Tls(self.describe(&e)));
            }
        }
        self.drain_plaintext()
    }

    fn drain_plaintext(&mut self) -> Result<(), ProtoError> {
        let mut chunk = [0u8; PLAINTEXT_CHUNK];
        loop {
            match self.conn.reader().read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => self
                    .plaintext
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ProtoError::Tls(format!("cannot read decrypted data: {e}")));
                }
            }
        }
    }

    /// A message for a rustls error that says what to check.
    fn describe(&self, err: &rustls::Error) -> String {
        let host = &self.host;
        match err {
            rustls::Error::InvalidCertificate(cert_err) => self.describe_cert(cert_err),
            rustls::Error::AlertReceived(alert) => describe_alert(*alert),
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => {
                format!("invalid TLS data from {host} (is this port speaking TLS?): {err}")
            }
            rustls::Error::PeerIncompatible(_) => {
                format!("server {host} is incompatible with this client's TLS (1.2/1.3): {err}")
            }
            _ => format!("TLS session with {host} failed: {err}"),
        }
    }

    fn describe_cert(&self, err: &CertificateError) -> String {
        let host = &self.host;
        match err {
            CertificateError::UnknownIssuer => match &self.ca_file {
                Some(path) => format!(
                    "unknown issuer: the server certificate is not signed by a CA from {} \
                     (check ssl_ca)",
                    path.display()
                ),
                None => "unknown issuer: the server certificate is not signed by a CA in the \
                         system trust store (set ssl_ca to the server's CA file)"
                    .into(),
            },
            CertificateError::NotValidForName => format!(
                "certificate not valid for name {host} (connect with a name the certificate \
                 holds, or use ssl_mode VERIFY_CA)"
            ),
            CertificateError::NotValidForNameContext { presented, .. } => {
                let names = if presented.is_empty() {
                    "no names".to_owned()
                } else {
                    presented
                        .iter()
                        .map(|n| presented_name(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "certificate not valid for name {host}: it is only valid for {names} \
                     (connect with one of those names, or use ssl_mode VERIFY_CA)"
                )
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                format!("server certificate outside its validity period: {err}")
            }
            CertificateError::BadSignature => "bad signature: the server does not hold the key \
                 of the certificate it sent, or the certificate's own signature is invalid"
                .into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                format!("server certificate is not valid for TLS server authentication: {err}")
            }
            _ => format!("invalid server certificate: {err}"),
        }
    }
}

fn describe_alert(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::CertificateRequired => {
            "the server requires a client certificate (set ssl_cert and ssl_key)".into()
        }
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateRevoked
        | AlertDescription::CertificateExpired
        | AlertDescription::UnknownCA
        | AlertDescription::AccessDenied => format!(
            "the server rejected the client certificate (alert {alert:?}; check ssl_cert / \
             ssl_key and the server's ssl_ca)"
        ),
        AlertDescription::HandshakeFailure => "the server aborted the handshake (no common \
             cipher suite, or a client certificate was required or rejected)"
            .into(),
        AlertDescription::ProtocolVersion => {
            "no TLS version in common (this client speaks TLS 1.2 and 1.3)".into()
        }
        other => format!("the server sent TLS alert {other:?}"),
    }
}

/// rustls lists a certificate's names as `DnsName("x")` / `IpAddress(x)`; show just `x`.
fn presented_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(name)
}

/// `[::1]` → `::1`; anything else unchanged.
fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, ProtoError> {
    std::fs::read(path).map_err(|e| {
        ProtoError::InvalidConfig(format!("cannot read {what} {}: {e}", path.display()))
    })
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ProtoError> {
    let pem = read_file(path, what)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ProtoError::InvalidConfig(format!("{what} {} is not valid PEM: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(ProtoError::InvalidConfig(format!(
            "{what} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ProtoError> {
    let pem = read_file(path, "ssl_key")?;
    match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(ProtoError::InvalidConfig(format!(
            "ssl_key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ))),
        Err(e) => Err(ProtoError::InvalidConfig(format!(
            "ssl_key {} is not valid PEM: {e}",
            path.display()
        ))),
    }
}

/// Trust anchors from `ca_file`, or from the system store when there is none.
fn load_roots(ca_file: Option<&Path>) -> Result<RootCertStore, ProtoError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = load_certs(path, "ssl_ca")?;
            let (_added, ignored) = roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err(ProtoError::InvalidConfig(format!(
                    "ssl_ca {}: none of its {ignored} certificates is a usable CA certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(ProtoError::InvalidConfig(format!(
                    "no system CA certificates found{}{why}; set ssl_ca",
                    if why.is_empty() { "" } else { ": " }
                )));
            }
        }
    }
    Ok(roots)
}

/// Server certificate check for the modes that do not check the name.
///
/// With `roots` the chain must lead to one of them (`VerifyCa`); without, any chain is accepted
/// (`Preferred` / `Required`). Handshake signatures are always verified with the provider's
/// algorithms, so the server must own the key of the certificate it sends.
#[derive(Debug)]
struct ModeVerifier {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ModeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ServerConfig, ServerConnection, SupportedProtocolVersion};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Test certificates, written as PEM files to a private temporary directory.
    struct Pki {
        dir: PathBuf,
        ca: PathBuf,
        other_ca: PathBuf,
        client_cert: PathBuf,
        client_key: PathBuf,
        server_key_file: PathBuf,
        ca_der: CertificateDer<'static>,
        server_chain: Vec<CertificateDer<'static>>,
        server_key: Vec<u8>,
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    fn leaf_params(names: &[&str], cn: &str, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        params
    }

    impl Pki {
        fn new(test: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "mes-tls-test-{}-{}-{test}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");

            let ca = CertifiedIssuer::self_signed(
                ca_params("mes test CA"),
                KeyPair::generate().expect("CA key"),
            )
            .expect("CA cert");
            let other_ca = CertifiedIssuer::self_signed(
                ca_params("unrelated CA"),
                KeyPair::generate().expect("other CA key"),
            )
            .expect("other CA cert");

            let server_key = KeyPair::generate().expect("server key");
            let server_cert = leaf_params(
                &["localhost", "127.0.0.1"],
                "localhost",
                ExtendedKeyUsagePurpose::ServerAuth,
            )
            .signed_by(&server_key, &ca)
            .expect("server cert");

            let client_key = KeyPair::generate().expect("client key");
            let client_cert = leaf_params(
                &["mes-client"],
                "mes-client",
                ExtendedKeyUsagePurpose::ClientAuth,
            )
            .signed_by(&client_key, &ca)
            .expect("client cert");

            let write = |name: &str, text: String| {
                let path = dir.join(name);
                std::fs::write(&path, text).expect("write PEM");
                path
            };
            Self {
                ca: write("ca.pem", ca.pem()),
                other_ca: write("other-ca.pem", other_ca.pem()),
                client_cert: write("client-cert.pem", client_cert.pem()),
                client_key: write("client-key.pem", client_key.serialize_pem()),
                server_key_file: write("server-key.pem", server_key.serialize_pem()),
                ca_der: ca.der().clone(),
                server_chain: vec![server_cert.der().clone()],
                server_key: server_key.serialize_der(),
                dir,
            }
        }

        fn server_config(&self, client_auth: bool, tls12_only: bool) -> Arc<ServerConfig> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let versions: &[&'static SupportedProtocolVersion] = if tls12_only {
                &[&rustls::version::TLS12]
            } else {
                rustls::DEFAULT_VERSIONS
            };
            let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(versions)
                .expect("server versions");
            let builder = if client_auth {
                let mut roots = RootCertStore::empty();
                roots.add(self.ca_der.clone()).expect("client CA");
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_no_client_auth()
            };
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
            Arc::new(
                builder
                    .with_single_cert(self.server_chain.clone(), key)
                    .expect("server config"),
            )
        }

        fn opts(&self, mode: SslMode, ca: Option<&Path>) -> TlsOptions {
            TlsOptions {
                mode,
                ca_file: ca.map(Path::to_path_buf),
                cert_file: None,
                key_file: None,
            }
        }
    }

    /// The in-memory server side of a test connection.
    struct TestServer {
        conn: ServerConnection,
        received: Vec<u8>,
        error: Option<rustls::Error>,
    }

    impl TestServer {
        fn new(config: Arc<ServerConfig>) -> Self {
            let mut conn = ServerConnection::new(config).expect("server conn");
            conn.set_buffer_limit(None);
            Self {
                conn,
                received: Vec::new(),
                error: None,
            }
        }

        fn feed(&mut self, mut data: &[u8]) {
            while !data.is_empty() && self.error.is_none() {
                let n = match self.conn.read_tls(&mut data) {
                    Ok(n) => n,
                    Err(e) => {
                        self.error = Some(rustls::Error::General(e.to_string()));
                        return;
                    }
                };
                if let Err(e) = self.conn.process_new_packets() {
                    self.error = Some(e);
                    return;
                }
                let _ = self.conn.reader().read_to_end(&mut self.received);
                if n == 0 {
                    return;
                }
            }
        }

        fn take(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            while self.conn.wants_write() {
                if self.conn.write_tls(&mut out).expect("server write_tls") == 0 {
                    break;
                }
            }
            out
        }
    }

    #[derive(Debug)]
    enum Failure {
        Client(ProtoError),
        Server(rustls::Error),
    }

    /// Move bytes both ways until neither side has anything to send. Server bytes reach the
    /// client in pieces of `chunk` bytes.
    fn pump(client: &mut TlsLayer, server: &mut TestServer, chunk: usize) -> Result<(), Failure> {
        for _ in 0..10_000 {
            let mut to_server = Vec::new();
            client.take_ciphertext(&mut to_server);
            server.feed(&to_server);
            let to_client = server.take();
            for piece in to_client.chunks(chunk) {
                client.handle_ciphertext(piece).map_err(Failure::Client)?;
            }
            if to_server.is_empty() && to_client.is_empty() {
                return match server.error.take() {
                    Some(e) => Err(Failure::Server(e)),
                    None => Ok(()),
                };
            }
        }
        panic!("pump did not settle");
    }

    fn connect(
        opts: &TlsOptions,
        host: &str,
        config: Arc<ServerConfig>,
        chunk: usize,
    ) -> Result<(TlsLayer, TestServer), Failure> {
        let mut client = TlsLayer::new(opts, host).map_err(Failure::Client)?;
        let mut server = TestServer::new(config);
        assert!(client.is_handshaking());
        assert!(!client.is_verified());
        pump(&mut client, &mut server, chunk)?;
        assert!(!client.is_handshaking());
        assert!(!server.conn.is_handshaking());
        Ok((client, server))
    }

    /// Application data both ways, including more than one record's and rustls' buffer's worth.
    fn exchange(client: &mut TlsLayer, server: &mut TestServer, chunk: usize) {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        client
            .write_plaintext(b"hello from the client")
            .expect("client write");
        client.write_plaintext(&big).expect("client write big");
        server
            .conn
            .writer()
            .write_all(b"hello from the server")
            .expect("server write");
        server
            .conn
            .writer()
            .write_all(&big)
            .expect("server write big");
        pump(client, server, chunk).expect("exchange");

        let mut expected = b"hello from the client".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(server.received, expected);

        let mut got = Vec::new();
        client.read_plaintext(&mut got).expect("client read");
        let mut expected = b"hello from the server".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(got, expected);
        got.clear();
        client.read_plaintext(&mut got).expect("client read again");
        assert!(got.is_empty());
    }

    fn client_error(result: Result<(TlsLayer, TestServer), Failure>) -> ProtoError {
        match result {
            Err(Failure::Client(e)) => e,
            Err(Failure::Server(e)) => panic!("expected a client error, the server failed: {e}"),
            Ok(_) => panic!("expected a client error, the connection succeeded"),
        }
    }

    fn tls_message(err: ProtoError) -> String {
        match err {
            ProtoError::Tls(msg) => msg,
            other => panic!("expected ProtoError::Tls, got {other:?}"),
        }
    }

    #[test]
    fn required_and_preferred_accept_any_certificate_without_verifying() {
        let pki = Pki::new("required");
        for mode in [SslMode::Required, SslMode::Preferred] {
            // The CA file is not consulted and the name is not checked.
            for ca in [None, Some(pki.other_ca.as_path())] {
                let opts = pki.opts(mode, ca);
                let (mut client, mut server) = connect(
                    &opts,
                    "wronghost",
                    pki.server_config(false, false),
                    usize::MAX,
                )
                .expect("handshake");
                assert!(!client.is_verified());
                exchange(&mut client, &mut server, usize::MAX);
            }
        }
    }

    #[test]
    fn required_over_tls12() {
        let pki = Pki::new("required12");
        let opts = pki.opts(SslMode::Required, None);
        let (mut client, mut server) = connect(
            &opts,
            "localhost",
            pki.server_config(false, true),
            usize::MAX,
        )
        .expect("handshake");
        assert_eq!(
            client.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        assert!(!client.is_verified());
        exchange(&mut client, &mut server, usize::MAX);
    }

    #[test]
    fn verify_ca_with_the_right_ca_ignores_the_name() {
        let pki = Pki::new("verifyca");
        let opts = pki.opts(SslMode::VerifyCa, Some(&pki.ca));
        for tls12 in [false, true] {
            let (mut client, mut server) = connect(
                &opts,
                "wronghost",
                pki.server_config(false, tls12),
                usize::MAX,
            )
            .expect("handshake");
            assert!(client.is_verified());
            exchange(&mut client, &mut server, 7);
        }
    }

    #[test]
    fn verify_ca_with_the_wrong_ca_fails() {
        let pki = Pki::new("wrongca");
        for mode in [SslMode::VerifyCa, SslMode::VerifyIdentity] {
            let opts = pki.opts(mode, Some(&pki.other_ca));
            let result = connect(
                &opts,
                "localhost",
                pki.server_config(false, false),
                usize::MAX,
            );
            let msg = tls_message(client_error(result));
            assert!(msg.contains("unknown issuer"), "{msg}");
            assert!(msg.contains("ssl_ca"), "{msg}");
            assert!(msg.contains("other-ca.pem"), "{msg}");
        }
    }

    #[test]
    fn verify_identity_by_dns_name() {
        let pki = Pki::new("identity");
        let opts = pki.opts(SslMode::VerifyIdentity, Some(&pki.ca));
        let (mut client, mut server) = connect(
            &opts,
            "localhost",
            pki.server_config(false, false),
            usize::MAX,
        )
        .expect("handshake");
        assert!(client.is_verified());
        assert_eq!(server.conn.server_name(), Some("localhost"));
        exchange(&mut client, &mut server, usize::MAX);
    }

    #[test]
    fn verify_identity_by_ip_address() {
        let pki = Pki::new("identityip");
        let opts = pki.opts(SslMode::VerifyIdentity, Some(&pki.ca));
        for tls12 in [false, true] {
            let (mut client, mut server) = connect(
                &opts,
                "127.0.0.1",
                pki.server_config(false, tls12),
                usize::MAX,
            )
            .expect("handshake");
            assert!(client.is_verified());
            // No SNI for an address.
            assert_eq!(server.conn.server_name(), None);
            exchange(&mut client, &mut server, usize::MAX);
        }
    }

    #[test]
    fn verify_identity_rejects_another_name() {
        let pki = Pki::new("othername");
        let opts = pki.opts(SslMode::VerifyIdentity, Some(&pki.ca));
        for host in ["otherhost", "127.0.0.2", "[::1]"] {
            let result = connect(&opts, host, pki.server_config(false, false), usize::MAX);
            let msg = tls_message(client_error(result));
            assert!(
                msg.contains(&format!("certificate not valid for name {host}")),
                "{msg}"
            );
            assert!(msg.contains("only valid for localhost, 127.0.0.1"), "{msg}");
        }
    }

    #[test]
    fn verify_identity_rejects_an_uncheckable_host() {
        let pki = Pki::new("badhost");
        let opts = pki.opts(SslMode::VerifyIdentity, Some(&pki.ca));
        let err = TlsLayer::new(&opts, "bad host!").expect_err("must fail");
        assert!(matches!(err, ProtoError::InvalidConfig(_)), "{err:?}");
        // Without the name check any host string is fine.
        let opts = pki.opts(SslMode::VerifyCa, Some(&pki.ca));
        let (client, _server) = connect(
            &opts,
            "bad host!",
            pki.server_config(false, false),
            usize::MAX,
        )
        .expect("handshake");
        assert!(client.is_verified());
    }

    #[test]
    fn one_byte_chunks() {
        let pki = Pki::new("onebyte");
        let opts = pki.opts(SslMode::VerifyIdentity, Some(&pki.ca));
        let (mut client, mut server) =
            connect(&opts, "localhost", pki.server_config(false, false), 1).expect("handshake");
        assert!(client.is_verified());
        exchange(&mut client, &mut server, 1);
    }

    #[test]
    fn client_certificate_accepted_when_given() {
        let pki = Pki::new("clientcert");
        let mut opts = pki.opts(SslMode::VerifyIdentity, Some(&pki.ca));
        opts.cert_file = Some(pki.client_cert.clone());
        opts.key_file = Some(pki.client_key.clone());
        for tls12 in [false, true] {
            let (mut client, mut server) = connect(
                &opts,
                "localhost",
                pki.server_config(true, tls12),
                usize::MAX,
            )
            .expect("handshake");
            let presented = server
                .conn
                .peer_certificates()
                .expect("client certificate")
                .len();
            assert_eq!(presented, 1);
            exchange(&mut client, &mut server, usize::MAX);
        }
    }

    #[test]
    fn client_certificate_missing_is_refused() {
        let pki = Pki::new("noclientcert");
        let opts = pki.opts(SslMode::Required, None);
        for tls12 in [false, true] {
            let mut client = TlsLayer::new(&opts, "localhost").expect("client");
            let mut server = TestServer::new(pki.server_config(true, tls12));
            // With TLS 1.3 the client finishes its side of the handshake before the server
            // judges the certificate, so the refusal may only show once data flows.
            let mut outcome = pump(&mut client, &mut server, usize::MAX);
            if outcome.is_ok() {
                client.write_plaintext(b"data").expect("write");
                outcome = pump(&mut client, &mut server, usize::MAX);
            }
            match outcome {
                Err(Failure::Client(err)) => {
                    let msg = tls_message(err);
                    assert!(msg.contains("client certificate"), "{msg}");
                }
                other => panic!("expected the client to see the refusal, got {other:?}"),
            }
            assert!(!client.is_verified());
            assert!(client.write_plaintext(b"more").is_err());
        }
    }

    #[test]
    fn client_certificate_and_key_must_come_together() {
        let pki = Pki::new("halfpair");
        let mut opts = pki.opts(SslMode::Required, None);
        opts.cert_file = Some(pki.client_cert.clone());
        let err = TlsLayer::new(&opts, "localhost").expect_err("cert without key");
        assert!(matches!(err, ProtoError::InvalidConfig(_)), "{err:?}");

        opts.cert_file = None;
        opts.key_file = Some(pki.client_key.clone());
        let err = TlsLayer::new(&opts, "localhost").expect_err("key without cert");
        assert!(matches!(err, ProtoError::InvalidConfig(_)), "{err:?}");

        // A key that does not belong to the certificate.
        opts.cert_file = Some(pki.client_cert.clone());
        opts.key_file = Some(pki.server_key_file.clone());
        let err = TlsLayer::new(&opts, "localhost").expect_err("mismatched key");
        assert!(matches!(err, ProtoError::InvalidConfig(_)), "{err:?}");
    }

    #[test]
    fn bad_files_and_modes_are_config_errors() {
        let pki = Pki::new("badfiles");
        let missing = pki.dir.join("missing.pem");
        let not_pem = pki.dir.join("not-pem.txt");
        std::fs::write(&not_pem, "just text\n").expect("write");

        for ca in [&missing, &not_pem, &pki.client_key] {
            let err = TlsLayer::new(&pki.opts(SslMode::VerifyCa, Some(ca)), "localhost")
                .expect_err("bad CA file");
            assert!(matches!(err, ProtoError::InvalidConfig(_)), "{err:?}");
        }

        let mut opts = pki.opts(SslMode::Required, None);
        opts.cert_file = Some(pki.client_cert.clone());
        opts.key_file = Some(not_pem.clone());
        let err = TlsLayer::new(&opts, "localhost").expect_err("no key");
        assert!(matches!(err, ProtoError::InvalidConfig(_)), "{err:?}");

        let err =
            TlsLayer::new(&pki.opts(SslMode::Disabled, None), "localhost").expect_err("disabled");
        assert!(matches!(err, ProtoError::InvalidConfig(_)), "{err:?}");
    }

    #[test]
    fn close_notify_both_ways() {
        let pki = Pki::new("close");
        let opts = pki.opts(SslMode::VerifyCa, Some(&pki.ca));
        let (mut client, mut server) = connect(
            &opts,
            "localhost",
            pki.server_config(false, false),
            usize::MAX,
        )
        .expect("handshake");

        client.send_close_notify();
        pump(&mut client, &mut server, usize::MAX).expect("client close");
        let state = server.conn.process_new_packets().expect("server state");
        assert!(state.peer_has_closed());

        assert!(!client.peer_closed());
        server
            .conn
            .writer()
            .write_all(b"last words")
            .expect("server write");
        server.conn.send_close_notify();
        pump(&mut client, &mut server, usize::MAX).expect("server close");
        assert!(client.peer_closed());
        let mut got = Vec::new();
        client.read_plaintext(&mut got).expect("read");
        assert_eq!(got, b"last words");
        // Anything after close_notify is ignored.
        client
            .handle_ciphertext(b"\x17\x03\x03\x00\x01x")
            .expect("after close");
    }

    #[test]
    fn garbage_from_the_server_is_a_tls_error() {
        let pki = Pki::new("garbage");
        let mut client =
            TlsLayer::new(&pki.opts(SslMode::Required, None), "localhost").expect("client");
        let mut hello = Vec::new();
        client.take_ciphertext(&mut hello);
        assert!(!hello.is_empty());
        let err = client
            .handle_ciphertext(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .expect_err("not TLS");
        let msg = tls_message(err);
        assert!(msg.contains("speaking TLS"), "{msg}");
        assert!(!client.is_verified());
        assert!(client.handle_ciphertext(b"\x16\x03\x03").is_err());
    }

    /// Serves the right certificate with a key that does not belong to it.
    #[derive(Debug)]
    struct WrongKey(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for WrongKey {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }

    #[test]
    fn unverified_modes_still_check_handshake_signatures() {
        let pki = Pki::new("wrongkey");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let other_key = KeyPair::generate().expect("key");
        let signer = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                other_key.serialize_der(),
            )))
            .expect("signing key");
        let certified = rustls::sign::CertifiedKey::new(pki.server_chain.clone(), signer);
        for tls12 in [false, true] {
            let versions: &[&'static SupportedProtocolVersion] = if tls12 {
                &[&rustls::version::TLS12]
            } else {
                &[&rustls::version::TLS13]
            };
            let config = ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(versions)
                .expect("versions")
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(WrongKey(Arc::new(certified.clone()))));
            let result = connect(
                &pki.opts(SslMode::Required, None),
                "localhost",
                Arc::new(config),
                usize::MAX,
            );
            let msg = tls_message(client_error(result));
            assert!(msg.contains("signature"), "{msg}");
        }
    }

    #[test]
    fn brackets_are_stripped_from_ipv6_literals() {
        assert_eq!(strip_brackets("[::1]"), "::1");
        assert_eq!(strip_brackets("::1"), "::1");
        assert_eq!(strip_brackets("localhost"), "localhost");
        assert_eq!(strip_brackets("[oops"), "[oops");
        assert_eq!(presented_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("something else"), "something else");
    }
}
