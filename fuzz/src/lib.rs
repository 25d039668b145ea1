//! Shared pieces of the fuzz targets: the fixed keys the seed corpus was made with, and
//! header sections decoded from fuzz input.

use std::path::PathBuf;
use std::sync::OnceLock;

use frontdoor::keys::{Keys, SigningAlgorithm};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Issuer (and audience) of the seed JWTs.
pub const ISSUER: &str = "https://fuzz.frontdoor.invalid";
/// The session cookie's name (the default one).
pub const SESSION_COOKIE: &str = "frontdoor_session";
/// Raw session ids sealed into the seed cookies: nothing else can decrypt with our key.
pub const SEED_SESSION_IDS: [&str; 3] = [
    "fuzz-seed-session-1",
    "fuzz-seed-session-2-ZYX_-",
    "fuzz-seed-session-3 with spaces; and=signs",
];
/// `jti` prefix of the seed JWTs: a token that verifies must be one of them.
pub const SEED_JTI_PREFIX: &str = "fuzz-seed-jti-";

/// The committed fuzzing keys (`fuzz/keys`), loaded through frontdoor's own key loader.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        // The loader tightens the directory's mode; work on a copy, not the checkout.
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys");
        let dir = std::env::temp_dir().join(format!("frontdoor-fuzz-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for f in ["signing-key.pem", "cookie.key"] {
            std::fs::copy(src.join(f), dir.join(f)).expect("copy fuzz key");
        }
        let keys = Keys::load(&dir, false, SigningAlgorithm::RS256).expect("fuzz keys load");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(keys.can_sign(), "fuzz signing key missing");
        keys
    })
}

/// A header section from fuzz input: one `name: value` per line; lines that are not a valid
/// field are skipped (the HTTP parser in front would have refused them).
pub fn headers(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Some((name, value)) = field(line) {
            map.append(name, value);
        }
    }
    map
}

/// Each valid `name: value` line of fuzz input, in order.
pub fn fields(data: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
    data.split(|&b| b == b'\n').filter_map(field).collect()
}

fn field(line: &[u8]) -> Option<(HeaderName, HeaderValue)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = HeaderName::from_bytes(&line[..colon]).ok()?;
    let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
    Some((name, value))
}

/// Splits fuzz input at the first `sep` byte: (before, after).
pub fn split_once(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
