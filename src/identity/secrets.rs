//! Client secrets and how they are stored.
//!
//! A secret Floe generates has 256 random bits: no one can guess it, so it is stored as a keyed
//! hash (HMAC-SHA-256 under a key derived from the master key), which costs microseconds to check
//! and is useless to whoever reads the store without the master key. A secret a person chose (the
//! root secret from configuration) is stored as an argon2id hash, slow on purpose. Hashes made
//! before keyed hashes existed are argon2id too and keep working until the secret is rotated.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{MasterKey, hmac_sha256};

/// How a keyed hash begins.
const KEYED_PREFIX: &str = "$floe-hmac-sha256$";

/// A new random secret (32 bytes, base64url).
pub fn generate_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The argon2id PHC string of a secret a person chose.
pub fn hash_secret(secret: &str) -> String {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .expect("argon2 hashing with defaults")
        .to_string()
}

/// What checking a secret against a stored hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// A keyed hash: microseconds.
    Keyed,
    /// argon2id (or anything else, which never matches): tens of milliseconds and 19 MiB.
    Slow,
}

/// Hashes and checks client secrets with the server's secret-hashing key.
pub struct ClientSecrets {
    key: [u8; 32],
    decoy: String,
}

impl ClientSecrets {
    /// Secrets hashed under a key derived from `master`: every replica with the same master key
    /// checks every replica's hashes.
    pub fn new(master: &MasterKey) -> Self {
        let key = master.derive("floe-client-secrets");
        let decoy = keyed(&key, &generate_secret());
        Self { key, decoy }
    }

    /// A new generated secret and its keyed hash.
    pub fn generate(&self) -> (String, String) {
        let secret = generate_secret();
        let hash = keyed(&self.key, &secret);
        (secret, hash)
    }

    /// A hash that never matches, checked for an unknown or disabled client id so that answer
    /// costs what a wrong secret for a generated client costs.
    pub fn decoy(&self) -> &str {
        &self.decoy
    }

    /// What checking against `hash` costs.
    pub fn kind(hash: &str) -> HashKind {
        if hash.starts_with(KEYED_PREFIX) {
            HashKind::Keyed
        } else {
            HashKind::Slow
        }
    }

    /// True when `secret` matches the stored hash (compared in constant time).
    pub fn verify(&self, secret: &str, hash: &str) -> bool {
        match Self::kind(hash) {
            HashKind::Keyed => {
                let expected = keyed(&self.key, secret);
                constant_time_eq(expected.as_bytes(), hash.as_bytes())
            }
            HashKind::Slow => verify_argon2(secret, hash),
        }
    }
}

/// True when `secret` matches an argon2id hash (slow: run it on the blocking pool).
pub fn verify_argon2(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

fn keyed(key: &[u8; 32], secret: &str) -> String {
    format!(
        "{KEYED_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(hmac_sha256(key, secret.as_bytes()))
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> ClientSecrets {
        ClientSecrets::new(&MasterKey::from_bytes(&[7; 32]))
    }

    #[test]
    fn generated_secrets_get_keyed_hashes_that_verify_only_their_secret() {
        let s = secrets();
        let (secret, hash) = s.generate();
        assert_eq!(ClientSecrets::kind(&hash), HashKind::Keyed);
        assert!(!hash.contains(&secret));
        assert!(s.verify(&secret, &hash));
        assert!(!s.verify(&format!("{secret}x"), &hash));
        assert!(!s.verify(&secret, s.decoy()));
        let other_key = ClientSecrets::new(&MasterKey::from_bytes(&[8; 32]));
        assert!(
            !other_key.verify(&secret, &hash),
            "without the master key a stored hash checks nothing"
        );
    }

    #[test]
    fn chosen_secrets_keep_argon2() {
        let s = secrets();
        let h = hash_secret("s3cret-value");
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(ClientSecrets::kind(&h), HashKind::Slow);
        assert!(s.verify("s3cret-value", &h));
        assert!(!s.verify("s3cret-valuf", &h));
        assert!(!s.verify("x", "not a hash"));
        assert!(!s.verify("x", KEYED_PREFIX));
    }
}
