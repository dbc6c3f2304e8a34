//! Encryption at rest: values sealed with AES-256-GCM under the master key from configuration.
//! A sealed value is `base64(nonce || ciphertext)`; the associated data names what the value is, so
//! a sealed value cannot be moved to another purpose.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The key that seals secrets stored by Floe.
pub struct MasterKey {
    cipher: Aes256Gcm,
    /// HMAC key for keys derived per purpose (never the sealing key itself).
    derivation: [u8; 32],
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// A sealed value could not be opened: wrong master key, or tampered data.
#[derive(Debug, thiserror::Error)]
#[error("a sealed value could not be opened ({0}); is the master key the one it was sealed with?")]
pub struct SealError(&'static str);

impl MasterKey {
    /// A master key from 32 bytes.
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new_from_slice(key).expect("32-byte key"),
            derivation: hmac_sha256(key, b"floe-derived-keys"),
        }
    }

    /// A key for `purpose` (such as signing page tokens), the same on every replica that shares
    /// this master key, and telling nothing of it.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.derivation, purpose.as_bytes())
    }

    /// A master key from base64 text (32 bytes once decoded).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "master key is not base64".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "master key must be 32 bytes".to_string())?;
        Ok(Self::from_bytes(&key))
    }

    /// Seals `plain` for `purpose`.
    pub fn seal(&self, plain: &[u8], purpose: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a small value cannot fail");
        STANDARD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// Opens a value sealed for `purpose`.
    pub fn open(&self, sealed: &str, purpose: &str) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| SealError("not base64"))?;
        if bytes.len() < 12 + 16 {
            return Err(SealError("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("split at 12");
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SealError("authentication failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_purpose() {
        let key = MasterKey::from_bytes(&[1; 32]);
        let sealed = key.seal(b"top secret", "signing-key:abc");
        assert!(!sealed.contains("top secret"));
        assert_eq!(key.open(&sealed, "signing-key:abc").unwrap(), b"top secret");
        assert!(key.open(&sealed, "signing-key:other").is_err());
        assert!(
            MasterKey::from_bytes(&[2; 32])
                .open(&sealed, "signing-key:abc")
                .is_err()
        );
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(
            key.open(&STANDARD.encode(tampered), "signing-key:abc")
                .is_err()
        );
        assert_ne!(
            key.seal(b"x", "p"),
            key.seal(b"x", "p"),
            "a fresh nonce every time"
        );
    }
}
