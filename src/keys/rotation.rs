//! Keys over time: which files in `keys.dir` hold keys, from when each one signs (or seals
//! cookies), and `frontdoor keys rotate|retire|list`.
//!
//! A key's file name carries the moment it takes over: `signing-key.pem` and `cookie.key`
//! (the first keys, from the start), `signing-key-<unix>.pem` and `cookie-key-<unix>.key`
//! (rotated in, from `<unix>` on). Every key in the folder is used to verify and to open;
//! the newest whose moment has come signs and seals. Nodes that share the folder agree
//! without talking to each other: they re-read it on reload and every
//! [`REFRESH_INTERVAL`], and a rotated key waits `keys.rotation_delay` before it signs, so
//! every node (and every relying party's JWKS cache) knows it first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{KeyError, Keys, SigningAlgorithm};

/// The first signing key's file.
pub const SIGNING_KEY_FILE: &str = "signing-key.pem";
/// The first cookie key's file.
pub const COOKIE_KEY_FILE: &str = "cookie.key";
/// How often a running node re-reads `keys.dir` (besides on reload).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyKind {
    /// Signs tokens; published in the JWKS.
    Signing,
    /// Seals cookies and keys the server's MACs (CSRF tokens, one-time code hashes).
    Cookie,
}

impl KeyKind {
    /// The word for it in the CLI.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Signing => "signing",
            KeyKind::Cookie => "cookie",
        }
    }

    fn file_name(self, not_before: i64) -> String {
        match (self, not_before) {
            (KeyKind::Signing, 0) => SIGNING_KEY_FILE.into(),
            (KeyKind::Signing, t) => format!("signing-key-{t}.pem"),
            (KeyKind::Cookie, 0) => COOKIE_KEY_FILE.into(),
            (KeyKind::Cookie, t) => format!("cookie-key-{t}.key"),
        }
    }

    /// The kind and moment a file name stands for; `None` for any other file.
    fn of_file_name(name: &str) -> Option<(KeyKind, i64)> {
        match name {
            SIGNING_KEY_FILE => return Some((KeyKind::Signing, 0)),
            COOKIE_KEY_FILE => return Some((KeyKind::Cookie, 0)),
            _ => {}
        }
        let moment = |digits: &str| {
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse::<i64>().ok())
                .flatten()
                .filter(|t| *t > 0)
        };
        if let Some(t) = name
            .strip_prefix("signing-key-")
            .and_then(|r| r.strip_suffix(".pem"))
        {
            return moment(t).map(|t| (KeyKind::Signing, t));
        }
        name.strip_prefix("cookie-key-")
            .and_then(|r| r.strip_suffix(".key"))
            .and_then(moment)
            .map(|t| (KeyKind::Cookie, t))
    }
}

/// One key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// What it holds.
    pub kind: KeyKind,
    /// From when it signs or seals (unix seconds; 0 for the first keys).
    pub not_before: i64,
    /// Where it is.
    pub path: PathBuf,
}

/// The key files in `dir`, by kind and then oldest first. Other files are ignored (a
/// half-written `*.tmp` included).
pub fn scan(dir: &Path) -> Result<Vec<KeyFile>, KeyError> {
    let io = |source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if let Some((kind, not_before)) = name.to_str().and_then(KeyKind::of_file_name) {
            files.push(KeyFile {
                kind,
                not_before,
                path: entry.path(),
            });
        }
    }
    files.sort_by_key(|f| (f.kind, f.not_before));
    Ok(files)
}

/// Writes a new key of `kind` that takes over at `not_before` (the signing key of
/// `algorithm`); its id (a signing key's `kid`, a cookie key's fingerprint).
pub fn rotate(
    dir: &Path,
    kind: KeyKind,
    algorithm: SigningAlgorithm,
    not_before: i64,
) -> Result<String, KeyError> {
    super::create_private_dir(dir)?;
    let path = dir.join(kind.file_name(not_before.max(1)));
    if path.exists() {
        return Err(KeyError::Invalid {
            path,
            message: "a key taking over at this moment exists already".into(),
        });
    }
    match kind {
        KeyKind::Signing => Ok(super::generate_signing_key(&path, algorithm)?.kid),
        KeyKind::Cookie => Ok(super::generate_cookie_key(&path)?.id),
    }
}

/// Re-reads `keys.dir` every [`REFRESH_INTERVAL`] while the keys are in use.
pub async fn keep_refreshed(keys: std::sync::Weak<Keys>) {
    let mut tick = tokio::time::interval(REFRESH_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(keys) = keys.upgrade() else { return };
        if let Err(e) = keys.refresh() {
            tracing::warn!(error = %e, "cannot re-read keys.dir; the keys in use are kept");
        }
    }
}

/// What `keys list` shows of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Signing or cookie.
    pub kind: KeyKind,
    /// `kid` of a signing key; a cookie key's fingerprint.
    pub id: String,
    /// A signing key's algorithm.
    pub algorithm: Option<SigningAlgorithm>,
    /// From when it signs or seals.
    pub not_before: i64,
    /// Its part now.
    pub state: KeyState,
}

/// A key's part at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs (or seals) now.
    Current,
    /// Published and verifying (opening) already; signs from its `not_before` on.
    Next,
    /// Replaced: still verifies (opens) what it signed until it is retired.
    Previous,
}

impl KeyState {
    /// The word for it in the CLI.
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Current => "current",
            KeyState::Next => "next",
            KeyState::Previous => "previous",
        }
    }
}

/// Why a key cannot be retired.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    /// No key has this id.
    #[error("no key `{0}` in keys.dir (see `frontdoor keys list`)")]
    Unknown(String),
    /// It is the one signing or sealing now.
    #[error(
        "`{0}` is the current {1} key: rotate first, and retire it once the next one has taken over"
    )]
    Current(String, &'static str),
    /// The file could not be removed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl Keys {
    /// Every key, oldest first within its kind, with its part at `now`.
    pub fn list(&self, now: i64) -> Vec<KeyInfo> {
        let ring = self.ring.load();
        let current_signer = ring.signer(now).map(|k| k.kid.as_str());
        let current_cookie = ring.cookie(now).id.as_str();
        let state = |current: bool, not_before: i64| {
            if current {
                KeyState::Current
            } else if not_before > now {
                KeyState::Next
            } else {
                KeyState::Previous
            }
        };
        let signing = ring.signing.iter().map(|k| KeyInfo {
            kind: KeyKind::Signing,
            id: k.kid.clone(),
            algorithm: Some(k.algorithm),
            not_before: k.not_before,
            state: state(Some(k.kid.as_str()) == current_signer, k.not_before),
        });
        let cookies = ring.cookies.iter().map(|k| KeyInfo {
            kind: KeyKind::Cookie,
            id: k.id.clone(),
            algorithm: None,
            not_before: k.not_before,
            state: state(k.id == current_cookie, k.not_before),
        });
        signing.chain(cookies).collect()
    }

    /// Removes the file of key `id` (a `kid` or a cookie key's fingerprint), unless it is the
    /// one signing or sealing at `now`; its kind. Tokens it signed stop verifying and cookies
    /// it sealed stop opening on each node as it next re-reads the folder.
    pub fn retire(&self, id: &str, now: i64) -> Result<KeyKind, RetireError> {
        let ring = self.ring.load();
        let (kind, path, current) = if let Some(k) = ring.signing.iter().find(|k| k.kid == id) {
            let current = ring.signer(now).is_some_and(|c| c.kid == k.kid);
            (KeyKind::Signing, k.path.clone(), current)
        } else if let Some(k) = ring.cookies.iter().find(|k| k.id == id) {
            (KeyKind::Cookie, k.path.clone(), ring.cookie(now).id == k.id)
        } else {
            return Err(RetireError::Unknown(id.to_string()));
        };
        if current {
            return Err(RetireError::Current(id.to_string(), kind.name()));
        }
        std::fs::remove_file(&path).map_err(|source| KeyError::Io { path, source })?;
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Claims {
        iss: String,
        sub: String,
        exp: i64,
    }

    fn kid_of(jwt: &str) -> String {
        jsonwebtoken::decode_header(jwt)
            .expect("header")
            .kid
            .expect("kid")
    }

    #[test]
    fn a_rotated_signing_key_is_published_first_signs_later_and_old_tokens_verify_until_retired() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = Keys::load(dir.path(), true, SigningAlgorithm::ES256).expect("keys");
        let now = crate::clock::now();
        let claims = Claims {
            iss: "https://fd".into(),
            sub: "u1".into(),
            exp: now + 600,
        };
        let old = keys.sign("at+jwt", &claims).expect("sign");
        let first = kid_of(&old);

        // Next: published at once, but the first key still signs.
        let next = rotate(
            dir.path(),
            KeyKind::Signing,
            SigningAlgorithm::ES256,
            now + 3600,
        )
        .expect("rotate");
        assert!(keys.refresh().expect("refresh"), "the folder changed");
        assert!(!keys.refresh().expect("refresh"), "and then did not");
        let published: Vec<_> = keys
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(published, [first.clone(), next.clone()]);
        assert_eq!(kid_of(&keys.sign("at+jwt", &claims).expect("sign")), first);
        let states: Vec<_> = keys
            .list(now)
            .into_iter()
            .map(|k| (k.id, k.state))
            .collect();
        assert!(states.contains(&(first.clone(), KeyState::Current)));
        assert!(states.contains(&(next.clone(), KeyState::Next)));

        // Its moment comes: it signs; tokens of the first key still verify.
        let later = now + 3600;
        assert_eq!(
            keys.ring.load().signer(later).map(|k| k.kid.clone()),
            Some(next.clone())
        );
        let taking_over = rotate(
            dir.path(),
            KeyKind::Signing,
            SigningAlgorithm::ES256,
            now - 1,
        )
        .expect("rotate");
        keys.refresh().expect("refresh");
        let new = keys.sign("at+jwt", &claims).expect("sign");
        assert_eq!(kid_of(&new), taking_over);
        let back: Claims = keys
            .verify(&old, "at+jwt", "https://fd", None)
            .expect("old verifies");
        assert_eq!(back, claims);

        // The current key cannot be retired; the first one can, and its tokens then fail.
        assert!(matches!(
            keys.retire(&taking_over, now),
            Err(RetireError::Current(..))
        ));
        assert!(matches!(
            keys.retire("nope", now),
            Err(RetireError::Unknown(_))
        ));
        assert_eq!(keys.retire(&first, now).expect("retire"), KeyKind::Signing);
        keys.refresh().expect("refresh");
        assert_eq!(
            keys.verify::<Claims>(&old, "at+jwt", "https://fd", None),
            Err(super::super::JwtError::Invalid)
        );
        assert!(
            keys.verify::<Claims>(&new, "at+jwt", "https://fd", None)
                .is_ok()
        );
        // A restart reads the same: the first key's file is gone, nothing is generated again.
        let again = Keys::load(dir.path(), true, SigningAlgorithm::ES256).expect("keys");
        assert_eq!(again.jwks().keys.len(), 2);
        assert_eq!(
            kid_of(&again.sign("at+jwt", &claims).expect("sign")),
            taking_over
        );
    }

    #[test]
    fn a_rotated_cookie_key_seals_new_cookies_and_still_opens_old_ones_and_old_csrf_tokens() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = Keys::load(dir.path(), false, SigningAlgorithm::RS256).expect("keys");
        let now = crate::clock::now();
        let old = keys.seal("frontdoor_session", "raw-id");
        let old_csrf = keys.mac("csrf", "cookie-value");
        let first = keys
            .list(now)
            .into_iter()
            .find(|k| k.kind == KeyKind::Cookie)
            .expect("key")
            .id;

        let next = rotate(
            dir.path(),
            KeyKind::Cookie,
            SigningAlgorithm::RS256,
            now - 1,
        )
        .expect("rotate");
        keys.refresh().expect("refresh");
        let new = keys.seal("frontdoor_session", "raw-id");
        assert_ne!(old.value(), new.value());
        for c in [&old, &new] {
            assert_eq!(
                keys.open("frontdoor_session", c.value()).as_deref(),
                Some("raw-id")
            );
            // The name is bound: the same value under another name does not open.
            assert_eq!(keys.open("frontdoor_csrf", c.value()), None);
        }
        assert_ne!(
            keys.mac("csrf", "cookie-value"),
            old_csrf,
            "new tokens use the new key"
        );
        assert!(keys.mac_matches("csrf", "cookie-value", &old_csrf));
        assert!(!keys.mac_matches("csrf", "other", &old_csrf));

        assert!(matches!(
            keys.retire(&next, now),
            Err(RetireError::Current(..))
        ));
        keys.retire(&first, now).expect("retire");
        keys.refresh().expect("refresh");
        assert_eq!(keys.open("frontdoor_session", old.value()), None);
        assert!(!keys.mac_matches("csrf", "cookie-value", &old_csrf));
        assert_eq!(
            keys.open("frontdoor_session", new.value()).as_deref(),
            Some("raw-id")
        );
    }

    #[test]
    fn file_names_carry_the_kind_and_the_moment() {
        for (name, want) in [
            ("signing-key.pem", Some((KeyKind::Signing, 0))),
            ("cookie.key", Some((KeyKind::Cookie, 0))),
            (
                "signing-key-1700000000.pem",
                Some((KeyKind::Signing, 1_700_000_000)),
            ),
            (
                "cookie-key-1700000000.key",
                Some((KeyKind::Cookie, 1_700_000_000)),
            ),
            ("signing-key-0.pem", None),
            ("signing-key-.pem", None),
            ("signing-key-+5.pem", None),
            ("signing-key-12a.pem", None),
            ("signing-key-99999999999999999999.pem", None),
            ("signing-key-1700000000.pem.tmp", None),
            ("cookie-key-1700000000.pem", None),
            ("README", None),
        ] {
            assert_eq!(KeyKind::of_file_name(name), want, "{name}");
            if let Some((kind, t)) = want {
                assert_eq!(kind.file_name(t), name);
            }
        }
    }
}
