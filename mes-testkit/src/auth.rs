//! Password verification for `caching_sha2_password` and `mysql_native_password`, and the
//! client-side computations (exposed so tests can act as a client).

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Length of the scramble (nonce) in the greeting.
pub const SCRAMBLE_LEN: usize = 20;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A fresh scramble: printable-range bytes without NUL and `$`, like MySQL's.
pub(crate) fn new_scramble() -> [u8; SCRAMBLE_LEN] {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut out = [0u8; SCRAMBLE_LEN];
    for b in &mut out {
        loop {
            let c: u8 = rng.gen_range(1..=127);
            if c != b'$' {
                *b = c;
                break;
            }
        }
    }
    out
}

/// Client side of `caching_sha2_password`:
/// `XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) || scramble))` (empty for an empty password).
pub fn caching_sha2_token(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha256(&[password.as_bytes()]);
    let stage2 = sha256(&[&stage1]);
    let h = sha256(&[&stage2, scramble]);
    stage1.iter().zip(h.iter()).map(|(a, b)| a ^ b).collect()
}

/// Server side of the `caching_sha2_password` fast path: unmask the token with
/// `SHA256(stored || scramble)` where `stored = SHA256(SHA256(pw))` and check that hashing
/// the result gives `stored`.
pub(crate) fn verify_caching_sha2_token(password: &str, scramble: &[u8], token: &[u8]) -> bool {
    if token.len() != 32 {
        return false;
    }
    let stored = sha256(&[&sha256(&[password.as_bytes()])]);
    let h = sha256(&[&stored, scramble]);
    let candidate: Vec<u8> = token.iter().zip(h.iter()).map(|(a, b)| a ^ b).collect();
    sha256(&[&candidate]) == stored
}

/// Client side of `mysql_native_password`:
/// `XOR(SHA1(pw), SHA1(scramble || SHA1(SHA1(pw))))` (empty for an empty password).
pub fn native_password_token(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha1(&[password.as_bytes()]);
    let stage2 = sha1(&[&stage1]);
    let h = sha1(&[scramble, &stage2]);
    stage1.iter().zip(h.iter()).map(|(a, b)| a ^ b).collect()
}

/// Server side of `mysql_native_password`.
pub(crate) fn verify_native_token(password: &str, scramble: &[u8], token: &[u8]) -> bool {
    native_password_token(password, scramble) == token
}

/// `(password + NUL) XOR scramble` (scramble repeated): the plaintext that
/// `caching_sha2_password` encrypts with the server's RSA key (RSA-OAEP, SHA-1).
pub fn xor_password(password: &str, scramble: &[u8]) -> Vec<u8> {
    let mut buf = password.as_bytes().to_vec();
    buf.push(0);
    if !scramble.is_empty() {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= scramble[i % scramble.len()];
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify() {
        let s = new_scramble();
        assert!(s.iter().all(|&b| b != 0 && b != b'$' && b < 128));
        let t = caching_sha2_token("secret", &s);
        assert!(verify_caching_sha2_token("secret", &s, &t));
        assert!(!verify_caching_sha2_token("Secret", &s, &t));
        assert!(!verify_caching_sha2_token("secret", &s, &t[..31]));
        let t = native_password_token("secret", &s);
        assert!(verify_native_token("secret", &s, &t));
        assert!(!verify_native_token("secret", &s, &[]));
        assert_eq!(xor_password("ab", &[1, 2]), vec![b'a' ^ 1, b'b' ^ 2, 1]);
    }
}
