//! Generated secrets, their hashes at rest, password hashing and PKCE.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The at-rest form of a generated secret: SHA-256, base64url.
///
/// A slow hash adds nothing to 256 random bits and would cap the token endpoint.
pub fn hash_secret(secret: &str) -> String {
    hash_secret_in(secret, &mut [0; SECRET_HASH_LEN]).to_owned()
}

/// Length of [`hash_secret`]'s text: 32 bytes in base64url without padding.
pub const SECRET_HASH_LEN: usize = 43;

/// [`hash_secret`] written into `buf` instead of a new `String`, for lookups on every request
/// (a warm session's). The one place the hash is made.
pub fn hash_secret_in<'a>(secret: &str, buf: &'a mut [u8; SECRET_HASH_LEN]) -> &'a str {
    // Neither can fail (43 characters fit, base64url is ASCII); an empty hash would find
    // nothing, which is the safe side.
    let written = URL_SAFE_NO_PAD
        .encode_slice(Sha256::digest(secret.as_bytes()), buf)
        .unwrap_or(0);
    std::str::from_utf8(&buf[..written]).unwrap_or_default()
}

/// A new secret whose key at rest sorts by issue time (refresh tokens), and that key.
///
/// The token is the issue time in microseconds as 16 hex digits, a `.`, and 256 random bits;
/// the key is the same time prefix, a `.`, and [`hash_secret`] of the whole token. A plain hash
/// lands each new row at a random place of the key's index, so a commit of n rotations wrote n
/// scattered index pages (a 4 KiB WAL frame each on SQLite, a full page image after each
/// checkpoint on PostgreSQL); keys that grow with time are appended to the index's last
/// pages, which the rotations of one commit share. The prefix says when the token was issued,
/// which its holder knows anyway; the secret is still the random part, checked by the hash.
pub fn time_ordered_token() -> (String, String) {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let token = format!("{micros:016x}.{}", random_token());
    let key = time_ordered_key(&token);
    (token, key)
}

/// The key at rest of a presented [`time_ordered_token`]. A token without a well-formed time
/// prefix (one issued before such tokens existed, or anything else) is keyed by its hash
/// alone, as every token was before.
pub fn time_ordered_key(presented: &str) -> String {
    match presented.split_once('.') {
        Some((prefix, _))
            if prefix.len() == 16
                && prefix
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            format!("{prefix}.{}", hash_secret(presented))
        }
        _ => hash_secret(presented),
    }
}

/// Compares a presented secret with a stored hash in constant time.
pub fn verify_secret(presented: &str, stored_hash: &str) -> bool {
    let computed = hash_secret(presented);
    computed.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Constant-time equality of two strings.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Argon2id PHC string of a password. Slow on purpose: call it off the request path.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against its Argon2id PHC string. Slow on purpose.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks a password on the blocking pool, at most one check per core at a time.
///
/// Each Argon2id check holds 19 MiB for its duration: without a bound, a flood of sign-in
/// attempts would spawn up to tokio's 512 blocking threads and hundreds of those buffers at
/// once (memory exhaustion), and starve everything else of CPU. Queued checks wait their turn.
pub async fn check_password(password: String, phc: String) -> bool {
    static LIMIT: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    });
    let Ok(_permit) = LIMIT.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false)
}

/// A PHC string for a password nobody knows, so that unknown users cost as much as known ones.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_valid_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge is base64url of 32 bytes: 43 characters.
pub fn is_valid_pkce_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_in_a_buffer_is_the_hash() {
        let mut buf = [0u8; SECRET_HASH_LEN];
        for secret in ["", "a", &random_token(), "fdt_ünïcode", &"x".repeat(5000)] {
            let at_rest = URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()));
            assert_eq!(hash_secret_in(secret, &mut buf), at_rest);
            assert_eq!(hash_secret(secret), at_rest);
        }
        // SHA-256 of "" and of "abc" (FIPS 180-2), base64url without padding.
        assert_eq!(
            hash_secret(""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(
            hash_secret("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn tokens_are_random_and_hash_verifies() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        let h = hash_secret(&a);
        assert!(verify_secret(&a, &h));
        assert!(!verify_secret(&b, &h));
        assert_ne!(h, a, "hash must not be the secret");
    }

    #[test]
    fn time_ordered_keys_sort_by_issue_time_and_hash_the_whole_token() {
        let (first, first_key) = time_ordered_token();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (second, second_key) = time_ordered_token();
        assert!(first_key < second_key, "{first_key} then {second_key}");
        assert!(first < second, "the tokens sort as their keys do");
        assert_eq!(time_ordered_key(&first), first_key);
        let (prefix, random) = first.split_once('.').expect("a time prefix");
        assert_eq!(prefix.len(), 16);
        assert_eq!(random.len(), 43);
        assert_eq!(first_key, format!("{prefix}.{}", hash_secret(&first)));
        // The prefix is bound by the hash: the same secret under another time is another key.
        let moved = format!(
            "{:016x}.{random}",
            u64::from_str_radix(prefix, 16).expect("hex") + 1
        );
        assert_ne!(time_ordered_key(&moved), first_key);
        assert!(!time_ordered_key(&moved).starts_with(prefix));
        // Tokens issued before time prefixes, and malformed prefixes, are keyed by their hash.
        let old = random_token();
        assert_eq!(time_ordered_key(&old), hash_secret(&old));
        for odd in [
            "0123456789ABCDEF.x",
            "0123456789abcde.x",
            ".x",
            "zzzzzzzzzzzzzzzz.x",
            "",
        ] {
            assert_eq!(time_ordered_key(odd), hash_secret(odd), "{odd}");
        }
    }

    #[test]
    fn passwords_hash_with_argon2id() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn pkce_matches_rfc7636_example() {
        // RFC 7636 Appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(pkce_s256(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(is_valid_pkce_verifier(v));
        assert!(!is_valid_pkce_verifier("short"));
        assert!(!is_valid_pkce_verifier(&"a b".repeat(20)));
        assert!(is_valid_pkce_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_valid_pkce_challenge("plain-text"));
    }
}
