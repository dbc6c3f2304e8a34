//! Client secrets: generated at random, stored only as argon2id hashes.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A new random secret (32 bytes, base64url).
pub fn generate_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The argon2id PHC string of a secret.
pub fn hash_secret(secret: &str) -> String {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .expect("argon2 hashing with defaults")
        .to_string()
}

/// True when `secret` matches the stored hash.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_only_their_secret() {
        let h = super::hash_secret("s3cret-value");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify_secret("s3cret-value", &h));
        assert!(!super::verify_secret("s3cret-valuf", &h));
        assert!(!super::verify_secret("x", "not a hash"));
    }
}
