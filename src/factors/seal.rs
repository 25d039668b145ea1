//! TOTP secrets at rest: AES-256-GCM under a key derived from the second-factor key in
//! `keys.dir` (`factor.key`, which `keys rotate` leaves alone: retiring it would make every
//! enrolled factor unreadable), with the user's id as associated data, so a sealed secret
//! copied to another user's row does not open. Whoever reads the store without the key learns
//! no secret.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::keys::Keys;

/// Length of the random nonce that starts a sealed value.
const NONCE_LEN: usize = 12;

/// A sealed value that does not open: another key, another user, or a damaged row.
#[derive(Debug, Error)]
#[error("the sealed second-factor secret does not open with this server's key")]
pub struct Unsealable;

/// The sealing key: its own derivation of the second-factor key, so that the stored bytes are
/// used for this purpose only.
fn cipher(keys: &Keys) -> Aes256Gcm {
    let key = Sha256::digest([b"frontdoor-factor-seal:".as_slice(), keys.factor_key()].concat());
    Aes256Gcm::new(&key)
}

fn aad(user_id: &str) -> Vec<u8> {
    [b"totp\0".as_slice(), user_id.as_bytes()].concat()
}

/// Seals `secret` for `user_id`: base64url of nonce and ciphertext.
pub fn seal(keys: &Keys, user_id: &str, secret: &[u8]) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let aad = aad(user_id);
    // Encryption fails only for inputs beyond GCM's length limit, far above a TOTP secret.
    let sealed = cipher(keys)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: secret,
                aad: &aad,
            },
        )
        .unwrap_or_default();
    URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
}

/// Opens what [`seal`] sealed for `user_id`.
pub fn open(keys: &Keys, user_id: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Unsealable)?;
    if bytes.len() <= NONCE_LEN {
        return Err(Unsealable);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Unsealable)?;
    let aad = aad(user_id);
    cipher(keys)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| Unsealable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, Keys) {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys =
            Keys::load(dir.path(), false, crate::keys::SigningAlgorithm::ES256).expect("keys");
        (dir, keys)
    }

    #[test]
    fn a_sealed_secret_opens_for_its_user_only() {
        let (_d, k) = keys();
        let sealed = seal(&k, "u1", b"twenty bytes secret!");
        assert!(!sealed.contains("twenty"));
        assert_eq!(
            open(&k, "u1", &sealed).expect("opens"),
            b"twenty bytes secret!"
        );
        assert!(open(&k, "u2", &sealed).is_err(), "bound to the user");
        assert_ne!(
            seal(&k, "u1", b"x"),
            seal(&k, "u1", b"x"),
            "a fresh nonce each time"
        );
        let (_d2, other) = keys();
        assert!(open(&other, "u1", &sealed).is_err(), "another server key");
        for bad in ["", "AAAA", "not base64 !"] {
            assert!(open(&k, "u1", bad).is_err(), "{bad}");
        }
    }
}
