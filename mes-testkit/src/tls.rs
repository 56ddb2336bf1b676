//! Test PKI (a CA and a server certificate for `localhost` / `127.0.0.1`, generated with
//! rcgen into a private temp dir) and the RSA key pair of `caching_sha2_password`.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// A directory removed (with its contents) on drop.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(prefix: &str) -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The generated PKI and the rustls server configuration built from it.
pub(crate) struct TestPki {
    pub dir: TempDir,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

fn gen_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("test PKI: {e}"))
}

/// Generate a CA and a server certificate (ECDSA P-256) valid for `localhost` and
/// `127.0.0.1`; write `ca.pem`, `server-cert.pem`, `server-key.pem` into a temp dir.
pub(crate) fn generate_pki() -> io::Result<TestPki> {
    let dir = TempDir::new("mes-testkit-tls")?;

    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mes-testkit test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(gen_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &issuer).map_err(gen_err)?;

    let ca_pem = ca_cert.pem();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca_pem)?;
    std::fs::write(dir.path().join("server-cert.pem"), server_cert.pem())?;
    std::fs::write(
        dir.path().join("server-key.pem"),
        server_key.serialize_pem(),
    )?;

    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(gen_err)?
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key_der)
        .map_err(gen_err)?;
    Ok(TestPki {
        dir,
        ca_pem,
        ca_path,
        server_config: Arc::new(server_config),
    })
}

/// The RSA key pair of `caching_sha2_password` and its public key as PEM
/// (SubjectPublicKeyInfo, `-----BEGIN PUBLIC KEY-----`, what MySQL sends).
pub(crate) struct RsaKeys {
    pub private: RsaPrivateKey,
    pub public_pem: String,
}

impl RsaKeys {
    pub(crate) fn from_private(private: RsaPrivateKey) -> io::Result<Self> {
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(gen_err)?;
        Ok(Self {
            private,
            public_pem,
        })
    }

    pub(crate) fn from_pem(pem: &str) -> io::Result<Self> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(gen_err)?;
        Self::from_private(private)
    }

    /// The process-wide generated 2048-bit key (generation takes seconds in debug builds,
    /// so it is done once, on first use).
    pub(crate) fn shared_generated() -> io::Result<Arc<RsaKeys>> {
        static KEY: OnceLock<Result<Arc<RsaKeys>, String>> = OnceLock::new();
        KEY.get_or_init(|| {
            let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                .map_err(|e| format!("RSA key generation: {e}"))?;
            RsaKeys::from_private(private)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(io::Error::other)
    }

    /// RSA-OAEP (SHA-1, MGF1-SHA-1) decryption, as `caching_sha2_password` uses.
    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        self.private
            .decrypt(Oaep::new::<sha1::Sha1>(), ciphertext)
            .ok()
    }

    /// Size of the modulus in bytes (the length of a ciphertext).
    pub(crate) fn size(&self) -> usize {
        use rsa::traits::PublicKeyParts;
        self.private.size()
    }
}
