//! Floe's token signing keys: Ed25519, identified by a hash of the public key.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

/// The key pair that signs and verifies Floe's tokens.
pub struct SigningKey {
    /// Key id, carried in each token's header (a hash of the public key).
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key, base64url (the JWK `x`).
    pub public_x: String,
}

/// PKCS#8 v1 DER prefix of an Ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl SigningKey {
    /// Builds the key pair from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let public_x = URL_SAFE_NO_PAD.encode(public);
        let kid = hex::encode(&Sha256::digest(public)[..8]);
        Self {
            kid,
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_der(&public),
            public_x,
        }
    }

    /// A new random key and its seed.
    pub fn generate() -> (Self, [u8; 32]) {
        let seed: [u8; 32] = rand::random();
        (Self::from_seed(seed), seed)
    }
}

/// Creates a new file readable and writable only by its owner.
pub fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
