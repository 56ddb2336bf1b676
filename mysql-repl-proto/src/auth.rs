//! Authentication-plugin computations for the MySQL/MariaDB connection phase.
//!
//! Everything here is a pure function of the password, the server's challenge ("scramble" or
//! "nonce") and, for the RSA path, the server's public key: no I/O, no state. The connection
//! state machine decides *which* function to call based on the plugin name the server asks for
//! (see the `*_PASSWORD` / [`CLIENT_ED25519`] constants) and on the follow-up bytes the server
//! sends (see [`CACHING_SHA2_FAST_AUTH_SUCCESS`] and friends).
//!
//! A few server-side helpers ([`caching_sha2_verify`], [`native_password_verify`],
//! [`ed25519_verify`], [`rsa_decrypt_password`]) exist so that a scripted test server can check
//! what the client sent without a real MySQL/MariaDB.
//!
//! # Scramble lengths
//!
//! The MySQL handshake scramble is 20 bytes, but it often reaches the client with a trailing
//! NUL (the initial handshake's second scramble part and the AuthSwitchRequest's plugin data are
//! NUL-terminated). The SHA-based functions therefore use only the first
//! [`SCRAMBLE_LEN`] bytes of the scramble they are given, as the server does; [`ed25519_signature`]
//! likewise signs only the first [`ED25519_NONCE_LEN`] bytes.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::ProtoError;

/// Plugin name of MySQL's classic SHA-1 challenge/response authentication.
pub const MYSQL_NATIVE_PASSWORD: &str = "mysql_native_password";
/// Plugin name of MySQL 8's default SHA-256 authentication with a server-side cache.
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
/// Plugin name of MariaDB's Ed25519 signature-based authentication (server side: `ed25519`).
pub const CLIENT_ED25519: &str = "client_ed25519";
/// Plugin name of clear-text password authentication (only safe over TLS or a local socket).
pub const MYSQL_CLEAR_PASSWORD: &str = "mysql_clear_password";
/// Plugin name of MySQL's older (non-caching) SHA-256 authentication.
pub const SHA256_PASSWORD: &str = "sha256_password";

/// Length of the MySQL authentication scramble (the "auth-plugin-data") that the SHA-based
/// plugins mix into their answers.
pub const SCRAMBLE_LEN: usize = 20;
/// Length of the nonce that MariaDB's `ed25519` server plugin sends to `client_ed25519`.
pub const ED25519_NONCE_LEN: usize = 32;
/// Length of a `client_ed25519` answer (an Ed25519 signature).
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// First byte of an AuthMoreData packet (`0x01`), which carries the plugin-specific follow-ups
/// below (fast-auth result, public key).
pub const AUTH_MORE_DATA: u8 = 0x01;
/// `caching_sha2_password`: byte after [`AUTH_MORE_DATA`] meaning the fast-auth token matched the
/// server's cache; an OK packet follows.
pub const CACHING_SHA2_FAST_AUTH_SUCCESS: u8 = 0x03;
/// `caching_sha2_password`: byte after [`AUTH_MORE_DATA`] meaning the server needs the password
/// itself ("full authentication"): send it in clear (plus NUL) over TLS, or RSA-encrypted
/// ([`rsa_encrypt_password`]) otherwise.
pub const CACHING_SHA2_PERFORM_FULL_AUTH: u8 = 0x04;
/// `caching_sha2_password`: the one-byte packet a client sends to ask for the server's RSA public
/// key (the server answers with [`AUTH_MORE_DATA`] followed by the PEM).
pub const CACHING_SHA2_REQUEST_PUBLIC_KEY: u8 = 0x02;
/// `sha256_password`: the one-byte packet a client sends to ask for the server's RSA public key.
pub const SHA256_REQUEST_PUBLIC_KEY: u8 = 0x01;

/// Smallest RSA modulus, in bits, that [`rsa_encrypt_password`] accepts. MySQL generates 2048-bit
/// keys; 1024 is accepted for old or hand-made server keys, anything smaller is refused as too
/// weak to protect a password.
pub const MIN_RSA_KEY_BITS: usize = 1024;

/// The first `n` bytes of `s`, or all of it if shorter.
fn prefix(s: &[u8], n: usize) -> &[u8] {
    s.get(..n).unwrap_or(s)
}

/// `a[i] ^ b[i]` over the common length.
fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Equality without an early exit, for comparing secrets.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `mysql_native_password` answer: `SHA1(pw) XOR SHA1(scramble[..20] ++ SHA1(SHA1(pw)))`.
///
/// An empty password yields an empty answer (that is how the protocol says "no password").
/// Only the first [`SCRAMBLE_LEN`] bytes of `scramble` are used.
pub fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mix = Sha1::new()
        .chain_update(prefix(scramble, SCRAMBLE_LEN))
        .chain_update(stage2)
        .finalize();
    xor(&stage1, &mix)
}

/// `SHA1(SHA1(password))`: what a server stores for a `mysql_native_password` account (MySQL shows
/// it as `*` followed by its upper-case hex).
pub fn sha1_sha1(password: &[u8]) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password)).into()
}

/// Server side of `mysql_native_password`: whether `token` is the answer to `scramble` for the
/// account whose stored hash is `sha1_sha1_password` (see [`sha1_sha1`]).
///
/// An empty token never verifies here; a server accepts it only for accounts without a password.
pub fn native_password_verify(
    token: &[u8],
    scramble: &[u8],
    sha1_sha1_password: &[u8; 20],
) -> bool {
    if token.len() != 20 {
        return false;
    }
    let mix = Sha1::new()
        .chain_update(prefix(scramble, SCRAMBLE_LEN))
        .chain_update(sha1_sha1_password)
        .finalize();
    let stage1 = xor(token, &mix);
    ct_eq(&Sha1::digest(&stage1), sha1_sha1_password)
}

/// `caching_sha2_password` fast-auth token:
/// `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ++ scramble[..20])`.
///
/// An empty password yields an empty answer. Only the first [`SCRAMBLE_LEN`] bytes of
/// `scramble` are used.
pub fn caching_sha2_token(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mix = Sha256::new()
        .chain_update(stage2)
        .chain_update(prefix(scramble, SCRAMBLE_LEN))
        .finalize();
    xor(&stage1, &mix)
}

/// `SHA256(SHA256(password))`: what a `caching_sha2_password` server keeps in its in-memory cache
/// to verify fast-auth tokens.
pub fn sha256_sha256(password: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(password)).into()
}

/// Server side of the `caching_sha2_password` fast path: whether `token` is the answer to
/// `scramble` for the password whose double SHA-256 is `sha256_sha256_password`
/// (see [`sha256_sha256`]).
///
/// The server recovers `SHA256(pw) = token XOR SHA256(stored ++ scramble[..20])` and checks that
/// hashing it once more gives `stored`. An empty token never verifies here.
pub fn caching_sha2_verify(
    token: &[u8],
    scramble: &[u8],
    sha256_sha256_password: &[u8; 32],
) -> bool {
    if token.len() != 32 {
        return false;
    }
    let mix = Sha256::new()
        .chain_update(sha256_sha256_password)
        .chain_update(prefix(scramble, SCRAMBLE_LEN))
        .finalize();
    let stage1 = xor(token, &mix);
    ct_eq(&Sha256::digest(&stage1), sha256_sha256_password)
}

/// The clear-text answer: `password ++ NUL`. Used by `mysql_clear_password`, and by
/// `caching_sha2_password` / `sha256_password` full authentication over TLS (or a Unix socket).
/// Never send it over an unencrypted TCP connection.
pub fn clear_password(password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(password.len() + 1);
    out.extend_from_slice(password);
    out.push(0);
    out
}

/// `(password ++ NUL) XOR scramble[..20]`, the scramble repeated as often as needed. This is the
/// plaintext that full authentication encrypts with RSA, and also its own inverse.
fn xor_cycled(data: &[u8], scramble: &[u8]) -> Vec<u8> {
    data.iter()
        .zip(scramble.iter().cycle())
        .map(|(d, s)| d ^ s)
        .collect()
}

/// Checks the scramble used to obfuscate the password before RSA encryption.
fn rsa_scramble(scramble: &[u8]) -> Result<&[u8], ProtoError> {
    let s = prefix(scramble, SCRAMBLE_LEN);
    if s.is_empty() {
        return Err(ProtoError::Auth(
            "empty scramble for RSA password encryption".into(),
        ));
    }
    Ok(s)
}

/// Parses the server's RSA public key from PEM: `-----BEGIN PUBLIC KEY-----` (X.509
/// SubjectPublicKeyInfo, what MySQL sends) or `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1).
/// Surrounding text, whitespace and NUL bytes are ignored. Keys below [`MIN_RSA_KEY_BITS`] or
/// above 4096 bits are refused.
pub fn parse_rsa_public_key(public_key_pem: &str) -> Result<RsaPublicKey, ProtoError> {
    const SPKI: &str = "-----BEGIN PUBLIC KEY-----";
    const PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----";
    const END: &str = "-----END ";
    const DASHES: &str = "-----";

    let bad = |what: String| ProtoError::Auth(format!("server RSA public key: {what}"));
    let (start, pkcs1) = match (public_key_pem.find(SPKI), public_key_pem.find(PKCS1)) {
        (Some(a), Some(b)) if b < a => (b, true),
        (Some(a), _) => (a, false),
        (None, Some(b)) => (b, true),
        (None, None) => return Err(bad("no PEM public key block found".into())),
    };
    let rest = public_key_pem.get(start..).unwrap_or_default();
    // End of the block: the "-----" that closes the "-----END ...-----" line.
    let end = rest
        .find(END)
        .and_then(|e| {
            let after = e + END.len();
            rest.get(after..)
                .and_then(|tail| tail.find(DASHES))
                .map(|d| after + d + DASHES.len())
        })
        .ok_or_else(|| bad("unterminated PEM block".into()))?;
    let block = rest.get(..end).unwrap_or(rest);

    let key = if pkcs1 {
        RsaPublicKey::from_pkcs1_pem(block).map_err(|e| bad(format!("invalid PKCS#1 PEM: {e}")))?
    } else {
        RsaPublicKey::from_public_key_pem(block)
            .map_err(|e| bad(format!("invalid SPKI PEM: {e}")))?
    };
    let bits = key.n().bits();
    if bits < MIN_RSA_KEY_BITS {
        return Err(bad(format!(
            "{bits}-bit modulus is below the minimum of {MIN_RSA_KEY_BITS} bits"
        )));
    }
    Ok(key)
}

/// Full authentication without TLS for `caching_sha2_password` and `sha256_password`: encrypts
/// `(password ++ NUL) XOR scramble[..20]` (scramble repeated as needed) with the server's RSA
/// public key, using OAEP padding with SHA-1 and MGF1-SHA-1 and an empty label — OpenSSL's
/// `RSA_PKCS1_OAEP_PADDING`, which MySQL uses for `sha256_password` and, since server 8.0.5, for
/// `caching_sha2_password` (older 8.0 pre-releases used PKCS#1 v1.5 and are not supported).
///
/// `public_key_pem` may be SPKI (`BEGIN PUBLIC KEY`, what the server sends) or PKCS#1
/// (`BEGIN RSA PUBLIC KEY`); see [`parse_rsa_public_key`] for the accepted key sizes
/// (≥ [`MIN_RSA_KEY_BITS`]; MySQL uses 2048). OAEP-SHA-1 limits the password to
/// `key bytes - 43` bytes (213 for a 2048-bit key); a longer one is an error.
/// Randomness comes from the operating system; see [`rsa_encrypt_password_with_rng`].
pub fn rsa_encrypt_password(
    password: &[u8],
    scramble: &[u8],
    public_key_pem: &str,
) -> Result<Vec<u8>, ProtoError> {
    rsa_encrypt_password_with_rng(password, scramble, public_key_pem, &mut rand::rngs::OsRng)
}

/// [`rsa_encrypt_password`] with a caller-supplied cryptographically secure random generator
/// (for the OAEP seed).
pub fn rsa_encrypt_password_with_rng<R>(
    password: &[u8],
    scramble: &[u8],
    public_key_pem: &str,
    rng: &mut R,
) -> Result<Vec<u8>, ProtoError>
where
    R: rand::RngCore + rand::CryptoRng,
{
    let scramble = rsa_scramble(scramble)?;
    let key = parse_rsa_public_key(public_key_pem)?;
    let plain = xor_cycled(&clear_password(password), scramble);
    key.encrypt(rng, Oaep::new::<Sha1>(), &plain)
        .map_err(|e| ProtoError::Auth(format!("RSA encryption of the password failed: {e}")))
}

/// Server side of RSA full authentication (for a scripted test server): decrypts `ciphertext`
/// (OAEP, SHA-1) with `private_key`, undoes the scramble XOR and returns the password without its
/// trailing NUL. Fails if decryption fails or the plaintext does not end with NUL.
pub fn rsa_decrypt_password(
    ciphertext: &[u8],
    scramble: &[u8],
    private_key: &RsaPrivateKey,
) -> Result<Vec<u8>, ProtoError> {
    let scramble = rsa_scramble(scramble)?;
    let plain = private_key
        .decrypt(Oaep::new::<Sha1>(), ciphertext)
        .map_err(|e| ProtoError::Auth(format!("RSA decryption of the password failed: {e}")))?;
    let mut password = xor_cycled(&plain, scramble);
    match password.pop() {
        Some(0) => Ok(password),
        _ => Err(ProtoError::Auth(
            "decrypted password is not NUL-terminated".into(),
        )),
    }
}

/// MariaDB's Ed25519 key expansion: `SHA512(password)` used directly as the expanded secret key
/// (first half clamped into the scalar, second half the nonce prefix). Standard Ed25519 would
/// hash a 32-byte seed instead; MariaDB hashes the password of any length.
fn ed25519_expanded(password: &[u8]) -> ed25519_dalek::hazmat::ExpandedSecretKey {
    let az: [u8; 64] = Sha512::digest(password).into();
    ed25519_dalek::hazmat::ExpandedSecretKey::from_bytes(&az)
}

/// The Ed25519 public key for a password, as MariaDB's `ed25519` plugin stores it for the account
/// (`mysql.global_priv`'s `authentication_string` is its base64 without padding, which
/// `PASSWORD()` under that plugin, or the old `ed25519_password()` UDF, prints).
///
/// It is `clamp(SHA512(password)[..32]) · B`.
pub fn ed25519_public_key(password: &[u8]) -> [u8; 32] {
    ed25519_dalek::VerifyingKey::from(&ed25519_expanded(password)).to_bytes()
}

/// `client_ed25519` answer: the 64-byte Ed25519 signature (`R ++ S`) of the server's nonce,
/// made with the key MariaDB derives from the password (see [`ed25519_public_key`]):
/// `az = SHA512(password)`, scalar `s = clamp(az[..32])`, `r = SHA512(az[32..] ++ nonce) mod ℓ`,
/// `R = r·B`, `S = r + SHA512(R ++ A ++ nonce)·s mod ℓ` — i.e. RFC 8032 signing with
/// `SHA512(password)` in place of `SHA512(seed)`.
///
/// Only the first [`ED25519_NONCE_LEN`] bytes of `scramble` are signed (MariaDB's nonce is exactly
/// that long; anything after it is a terminator); the caller should check the nonce length. Unlike
/// the SHA-based plugins, an empty password is still signed — MariaDB's client does so, and an
/// `ed25519` account with an empty password expects the signature.
pub fn ed25519_signature(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    let esk = ed25519_expanded(password);
    let public = ed25519_dalek::VerifyingKey::from(&esk);
    let nonce = prefix(scramble, ED25519_NONCE_LEN);
    ed25519_dalek::hazmat::raw_sign::<Sha512>(&esk, nonce, &public)
        .to_bytes()
        .to_vec()
}

/// Server side of `client_ed25519`: whether `signature` is a valid (strictly verified) Ed25519
/// signature of `scramble[..32]` under `public_key` (see [`ed25519_public_key`]).
pub fn ed25519_verify(signature: &[u8], scramble: &[u8], public_key: &[u8; 32]) -> bool {
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify_strict(prefix(scramble, ED25519_NONCE_LEN), &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::{EncodeRsaPublicKey, LineEnding};
    use rsa::pkcs8::EncodePublicKey;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Standard base64 without padding (the form MariaDB prints for ed25519 keys).
    fn b64_nopad(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }

    const SCRAMBLE_A: [u8; 20] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ];
    const SCRAMBLE_B_HEX: &str = "3a7f0012ff8e41c9b2d355607a1b0cfe99e4d2a1";
    /// UTF-8 non-ASCII plus an embedded NUL byte.
    const PW_NON_ASCII: &str = "pässwörd\u{0}with nul";
    /// Longer than the 20-byte scramble, so the RSA XOR cycles.
    const PW_LONG: &[u8] = b"a much longer password than twenty bytes!";

    // Expected values below were computed once with Python 3's hashlib, independently of this
    // code:
    //   xor = lambda a, b: bytes(x ^ y for x, y in zip(a, b))
    //   native(pw, s) = xor(sha1(pw), sha1(s[:20] + sha1(sha1(pw))))
    //   csha2(pw, s)  = xor(sha256(pw), sha256(sha256(sha256(pw)) + s[:20]))
    // with SCRAMBLE_A = bytes(range(1, 21)) and SCRAMBLE_B = bytes.fromhex(SCRAMBLE_B_HEX).
    #[test]
    fn native_password_known_answers() {
        let b = hex(SCRAMBLE_B_HEX);
        assert_eq!(
            native_password(b"secret", &SCRAMBLE_A),
            hex("b32bb3a583e1340c0a1108d58b1be49781ad8c2f")
        );
        assert_eq!(
            native_password(PW_NON_ASCII.as_bytes(), &b),
            hex("258c3df70a9febbfc38d90f1da78f6c964018349")
        );
        assert_eq!(
            native_password(PW_LONG, &b),
            hex("35a78da2fabbd4cf2b102883888bea542a576fa2")
        );
        // A 21-byte scramble with its trailing NUL gives the same answer.
        let mut with_nul = SCRAMBLE_A.to_vec();
        with_nul.push(0);
        assert_eq!(
            native_password(b"secret", &with_nul),
            native_password(b"secret", &SCRAMBLE_A)
        );
        assert!(native_password(b"", &SCRAMBLE_A).is_empty());
    }

    #[test]
    fn native_password_stored_hash_and_verify() {
        // MariaDB 10.11: SELECT PASSWORD('secret') = '*14E65567ABDB5135D0CFD9A70B3032C179A49EE7'.
        assert_eq!(
            sha1_sha1(b"secret").to_vec(),
            hex("14e65567abdb5135d0cfd9a70b3032c179a49ee7")
        );
        let b = hex(SCRAMBLE_B_HEX);
        for pw in [&b"secret"[..], PW_NON_ASCII.as_bytes(), PW_LONG] {
            let token = native_password(pw, &b);
            assert!(native_password_verify(&token, &b, &sha1_sha1(pw)));
            assert!(!native_password_verify(&token, &SCRAMBLE_A, &sha1_sha1(pw)));
            assert!(!native_password_verify(&token, &b, &sha1_sha1(b"other")));
            assert!(!native_password_verify(&token[..19], &b, &sha1_sha1(pw)));
        }
        assert!(!native_password_verify(&[], &b, &sha1_sha1(b"")));
    }

    #[test]
    fn caching_sha2_known_answers() {
        let b = hex(SCRAMBLE_B_HEX);
        assert_eq!(
            caching_sha2_token(b"secret", &SCRAMBLE_A),
            hex("746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9")
        );
        assert_eq!(
            caching_sha2_token(PW_NON_ASCII.as_bytes(), &b),
            hex("b2b5afc307bf8f78eea22576a6a8ce08ba325effc532f0ff2536af7750f91dd9")
        );
        assert_eq!(
            caching_sha2_token(PW_LONG, &b),
            hex("08e59630d9885a6459ae3208bbac226acff058341bd51a73ea3224b63032eedb")
        );
        assert!(caching_sha2_token(b"", &SCRAMBLE_A).is_empty());
        // python3: sha256(sha256(b"secret")).hexdigest()
        assert_eq!(
            sha256_sha256(b"secret").to_vec(),
            hex("3881219d087dd9c634373fd33dfa33a2cb6bfc6c520b64b8bb60ef2ceb534ae7")
        );
    }

    #[test]
    fn caching_sha2_verify_roundtrip() {
        let b = hex(SCRAMBLE_B_HEX);
        for pw in [&b"secret"[..], PW_NON_ASCII.as_bytes(), PW_LONG, b"\0"] {
            let stored = sha256_sha256(pw);
            let token = caching_sha2_token(pw, &b);
            assert!(caching_sha2_verify(&token, &b, &stored));
            assert!(!caching_sha2_verify(&token, &SCRAMBLE_A, &stored));
            assert!(!caching_sha2_verify(&token, &b, &sha256_sha256(b"wrong")));
            let mut flipped = token.clone();
            flipped[31] ^= 1;
            assert!(!caching_sha2_verify(&flipped, &b, &stored));
            assert!(!caching_sha2_verify(&token[..31], &b, &stored));
        }
        assert!(!caching_sha2_verify(&[], &b, &sha256_sha256(b"")));
    }

    #[test]
    fn clear_password_appends_nul() {
        assert_eq!(clear_password(b"pw"), b"pw\0");
        assert_eq!(clear_password(b""), b"\0");
    }

    #[test]
    fn ed25519_public_key_matches_mariadb() {
        // Expected strings came from MariaDB 10.11.19's ed25519_password() UDF (auth_ed25519.so)
        // on the local test server: SELECT ed25519_password('secret'), ed25519_password('foo'),
        // ed25519_password(X'00C3A9FF61'),
        // ed25519_password('correct horse battery staple, longer than 20').
        assert_eq!(
            b64_nopad(&ed25519_public_key(b"secret")),
            "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY"
        );
        assert_eq!(
            b64_nopad(&ed25519_public_key(b"foo")),
            "vubFBzIrapbfHct1/J72dnUryz5VS7lA6XHH8sIx4TI"
        );
        assert_eq!(
            b64_nopad(&ed25519_public_key(&[0x00, 0xC3, 0xA9, 0xFF, 0x61])),
            "0qCBqfplUV5FsUNryRbrj+RN2QMm21gfnBb65Uc4XCk"
        );
        assert_eq!(
            b64_nopad(&ed25519_public_key(
                b"correct horse battery staple, longer than 20"
            )),
            "KX3NwFYqKvMhDqyJHszRvFg+fDPX0a6i6UCCgMtvQQ0"
        );
    }

    #[test]
    fn ed25519_signature_verifies() {
        let nonce: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        for pw in [&b"secret"[..], PW_NON_ASCII.as_bytes(), PW_LONG, b""] {
            let sig = ed25519_signature(pw, &nonce);
            assert_eq!(sig.len(), ED25519_SIGNATURE_LEN);
            let public = ed25519_public_key(pw);
            let key = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
            let parsed = ed25519_dalek::Signature::from_slice(&sig).unwrap();
            key.verify_strict(&nonce, &parsed).unwrap();
            assert!(ed25519_verify(&sig, &nonce, &public));
            // Deterministic, and tied to the nonce and the password.
            assert_eq!(sig, ed25519_signature(pw, &nonce));
            let mut other = nonce.clone();
            other[0] ^= 1;
            assert!(key.verify_strict(&other, &parsed).is_err());
            assert!(!ed25519_verify(&sig, &other, &public));
            assert!(!ed25519_verify(&sig, &nonce, &ed25519_public_key(b"wrong")));
            assert!(!ed25519_verify(&sig[..63], &nonce, &public));
        }
        // A trailing terminator after the 32-byte nonce is not signed.
        let mut with_nul = nonce.clone();
        with_nul.push(0);
        assert_eq!(
            ed25519_signature(b"secret", &with_nul),
            ed25519_signature(b"secret", &nonce)
        );
    }

    fn rsa_roundtrip(private: &RsaPrivateKey, pem: &str, password: &[u8], scramble: &[u8]) {
        let ct = rsa_encrypt_password(password, scramble, pem).unwrap();
        assert_eq!(ct.len(), private.size());
        let plain = private.decrypt(Oaep::new::<Sha1>(), &ct).unwrap();
        let unxored: Vec<u8> = plain
            .iter()
            .zip(scramble[..SCRAMBLE_LEN].iter().cycle())
            .map(|(p, s)| p ^ s)
            .collect();
        let mut expected = password.to_vec();
        expected.push(0);
        assert_eq!(unxored, expected);
        assert_eq!(
            rsa_decrypt_password(&ct, scramble, private).unwrap(),
            password
        );
    }

    #[test]
    fn rsa_full_auth_roundtrip() {
        let mut rng = rand::thread_rng();
        let private = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let public = RsaPublicKey::from(&private);
        let spki = public.to_public_key_pem(LineEnding::LF).unwrap();
        let pkcs1 = public.to_pkcs1_pem(LineEnding::CRLF).unwrap();
        assert!(spki.contains("BEGIN PUBLIC KEY"));
        assert!(pkcs1.contains("BEGIN RSA PUBLIC KEY"));
        // As it may arrive from the server: NUL-terminated, with surrounding whitespace.
        let spki_nul = format!("\n{spki}\0");

        let b = hex(SCRAMBLE_B_HEX);
        let mut scramble_nul = b.clone();
        scramble_nul.push(0);
        let max_pw = vec![0xA5u8; 2048 / 8 - 2 * 20 - 2 - 1];
        for pem in [spki.as_str(), pkcs1.as_str(), spki_nul.as_str()] {
            for pw in [
                &b"secret"[..],
                PW_NON_ASCII.as_bytes(),
                PW_LONG,
                b"",
                b"\0\0",
                &max_pw,
            ] {
                rsa_roundtrip(&private, pem, pw, &b);
                rsa_roundtrip(&private, pem, pw, &scramble_nul);
            }
        }
        // OAEP is randomised.
        assert_ne!(
            rsa_encrypt_password(b"secret", &b, &spki).unwrap(),
            rsa_encrypt_password(b"secret", &b, &spki).unwrap()
        );
        // One byte too long for OAEP-SHA-1 with a 2048-bit key.
        let too_long = vec![1u8; max_pw.len() + 1];
        assert!(matches!(
            rsa_encrypt_password(&too_long, &b, &spki),
            Err(ProtoError::Auth(_))
        ));
        // Wrong scramble does not give back the password.
        let ct = rsa_encrypt_password(b"secret", &b, &spki).unwrap();
        assert_ne!(
            rsa_decrypt_password(&ct, &SCRAMBLE_A, &private).ok(),
            Some(b"secret".to_vec())
        );
    }

    #[test]
    fn rsa_rejects_bad_keys_and_input() {
        let b = hex(SCRAMBLE_B_HEX);
        for pem in [
            "",
            "not a key",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "-----BEGIN RSA PUBLIC KEY-----\n!!!!\n-----END RSA PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
        ] {
            assert!(
                matches!(
                    rsa_encrypt_password(b"pw", &b, pem),
                    Err(ProtoError::Auth(_))
                ),
                "{pem:?}"
            );
        }
        let mut rng = rand::thread_rng();
        let small = RsaPublicKey::from(&RsaPrivateKey::new(&mut rng, 512).unwrap());
        let pem = small.to_public_key_pem(LineEnding::LF).unwrap();
        let err = rsa_encrypt_password(b"pw", &b, &pem).unwrap_err();
        assert!(err.to_string().contains("512-bit"), "{err}");

        let ok = RsaPublicKey::from(&RsaPrivateKey::new(&mut rng, 1024).unwrap());
        let pem = ok.to_public_key_pem(LineEnding::LF).unwrap();
        assert_eq!(rsa_encrypt_password(b"pw", &b, &pem).unwrap().len(), 128);
        assert!(matches!(
            rsa_encrypt_password(b"pw", &[], &pem),
            Err(ProtoError::Auth(_))
        ));
    }
}
