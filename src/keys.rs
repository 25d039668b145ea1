//! Signing keys (RS256 or ES256, JWKS) and the cookie/CSRF key, kept under `data_dir/keys`.

pub mod rotation;

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use arc_swap::ArcSwap;
use cookie::{Cookie, CookieJar};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
    ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use rsa::pkcs8::der::SecretDocument;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use rotation::KeyFile;
pub use rotation::{COOKIE_KEY_FILE, KeyKind, SIGNING_KEY_FILE};

/// The message Oro shows when OAuth keys are missing; frontdoor answers OAuth requests with it.
pub const KEYS_MISSING_MESSAGE: &str = "OAuth authorization is not available as encryption keys configuration was not complete. Please contact your administrator.";

/// Seconds of clock skew allowed on `exp` and `nbf` (nodes' clocks differ slightly).
pub const LEEWAY: i64 = 5;

/// Problems loading or using keys.
#[derive(Debug, Error)]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A key file holds something that is not a key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Generating the key failed.
    #[error("key generation failed: {0}")]
    Generate(String),
    /// No signing key is configured.
    #[error("{KEYS_MISSING_MESSAGE}")]
    NoSigningKey,
    /// A JWT could not be signed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Why a JWT was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JwtError {
    /// Not a JWT, bad signature, wrong key, wrong algorithm, wrong `typ`.
    #[error("invalid token")]
    Invalid,
    /// Past `exp` (or before `nbf`).
    #[error("token expired")]
    Expired,
    /// Issuer or audience do not match.
    #[error("token not meant for this audience")]
    WrongAudience,
}

/// The algorithm of a newly generated signing key. A key file that already exists keeps its
/// own (and must match it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with a 2048-bit key: what every client accepts (OIDC's default).
    #[default]
    RS256,
    /// ECDSA on P-256: the same clients' libraries verify it, and signing costs a small
    /// fraction of RS256's (a grant spends most of its CPU signing under RS256).
    ES256,
}

impl SigningAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::RS256 => Algorithm::RS256,
            SigningAlgorithm::ES256 => Algorithm::ES256,
        }
    }

    /// The JWA name (`RS256`, `ES256`).
    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::ES256 => "ES256",
        }
    }
}

/// A private key, parsed once: `jsonwebtoken::encode` parses and validates the DER key (and
/// for RSA builds its Montgomery and blinding values) again on every signature, which costs
/// more instructions than the signature itself.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// One signing key and its public JWK.
pub struct SigningKey {
    /// RFC 7638 thumbprint, used as `kid`.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    private: Signer,
    decoding: DecodingKey,
    /// The public key as a JWK (for `/oauth/jwks`).
    pub jwk: Jwk,
    /// From when it signs (unix seconds; 0 for the first key).
    pub not_before: i64,
    path: PathBuf,
}

/// One cookie key and the MAC key derived from it.
pub struct CookieKey {
    /// A short fingerprint (not the key): how `keys list` and `keys retire` name it.
    pub id: String,
    /// From when it seals (unix seconds; 0 for the first key).
    pub not_before: i64,
    key: cookie::Key,
    /// The cipher of `key`'s encryption half, scheduled once: every request with a session
    /// cookie opens it ([`open_with`]).
    cipher: Aes256Gcm,
    hmac: [u8; 32],
    path: PathBuf,
}

impl CookieKey {
    fn new(key: cookie::Key, not_before: i64, path: PathBuf) -> CookieKey {
        let mut hmac = [0u8; 32];
        hmac.copy_from_slice(&Sha256::digest(
            [b"frontdoor-hmac:".as_slice(), key.master()].concat(),
        ));
        let fingerprint =
            Sha256::digest([b"frontdoor-cookie-key-id:".as_slice(), key.master()].concat());
        CookieKey {
            id: format!("cookie-{}", &URL_SAFE_NO_PAD.encode(fingerprint)[..12]),
            not_before,
            cipher: Aes256Gcm::new_from_slice(key.encryption())
                .unwrap_or_else(|_| unreachable!("a cookie key's encryption half is 32 bytes")),
            key,
            hmac,
            path,
        }
    }

    fn mac(&self, purpose: &str, data: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// The keys in `keys.dir` at one reading, each kind oldest first.
struct Ring {
    signing: Vec<SigningKey>,
    cookies: Vec<CookieKey>,
}

impl Ring {
    /// Reads the key files; the newest signing key must be of `algorithm` (the one new keys
    /// get), so a configuration that disagrees with the folder is named, not ignored.
    fn read(files: &[KeyFile], algorithm: SigningAlgorithm) -> Result<Ring, KeyError> {
        let mut signing = Vec::new();
        let mut cookies = Vec::new();
        for f in files {
            match f.kind {
                KeyKind::Signing => {
                    let mut key = load_signing_key(&f.path)?;
                    key.not_before = f.not_before;
                    signing.push(key);
                }
                KeyKind::Cookie => cookies.push(load_cookie_key(&f.path, f.not_before)?),
            }
        }
        if let Some(newest) = signing.last()
            && newest.algorithm != algorithm
        {
            return Err(KeyError::Invalid {
                path: newest.path.clone(),
                message: format!(
                    "holds an {} key but keys.algorithm is {}: remove the file to generate a new key, or set keys.algorithm: {}",
                    newest.algorithm.name(),
                    algorithm.name(),
                    newest.algorithm.name()
                ),
            });
        }
        Ok(Ring { signing, cookies })
    }

    /// The key that signs at `now`: the newest whose moment has come.
    fn signer(&self, now: i64) -> Option<&SigningKey> {
        self.signing.iter().rev().find(|k| k.not_before <= now)
    }

    /// The key that seals at `now` (the oldest when none has come yet: the first key was
    /// retired by hand).
    fn cookie(&self, now: i64) -> &CookieKey {
        self.cookies
            .iter()
            .rev()
            .find(|k| k.not_before <= now)
            .or(self.cookies.first())
            .unwrap_or_else(|| unreachable!("a ring always holds a cookie key"))
    }

    /// What tells two readings apart.
    fn ids(&self) -> Vec<(&str, i64)> {
        let signing = self.signing.iter().map(|k| (k.kid.as_str(), k.not_before));
        let cookies = self.cookies.iter().map(|k| (k.id.as_str(), k.not_before));
        signing.chain(cookies).collect()
    }
}

/// All keys of one frontdoor instance: every signing and cookie key in `keys.dir`, re-read
/// by [`Keys::refresh`] (see [`rotation`]).
pub struct Keys {
    dir: PathBuf,
    algorithm: SigningAlgorithm,
    ring: ArcSwap<Ring>,
    /// The key that seals second-factor secrets at rest (`factor.key`): never rotated with the
    /// cookie key, since retiring that would make every enrolled factor unreadable.
    factor: [u8; 32],
}

impl Keys {
    /// Loads keys from `dir` (normally `data_dir/keys`), generating missing ones when
    /// `generate` is set; a new signing key uses `algorithm`, the newest existing one must be
    /// of it. The cookie key is always generated when missing: sessions do not depend on
    /// OAuth keys.
    pub fn load(dir: &Path, generate: bool, algorithm: SigningAlgorithm) -> Result<Keys, KeyError> {
        let dir = dir.to_path_buf();
        create_private_dir(&dir)?;
        let mut files = rotation::scan(&dir)?;
        for f in &files {
            crate::private_fs::tighten_file(&f.path).map_err(|source| KeyError::Io {
                path: f.path.clone(),
                source,
            })?;
        }
        if !files.iter().any(|f| f.kind == KeyKind::Signing) {
            let path = dir.join(SIGNING_KEY_FILE);
            if generate {
                let key = generate_signing_key(&path, algorithm)?;
                let path = path.display();
                // One static message per algorithm: the line reads whole, and stays an event
                // with fields rather than a formatted string.
                match algorithm {
                    SigningAlgorithm::RS256 => {
                        tracing::info!(%path, kid = %key.kid, "generated a new RS256 signing key")
                    }
                    SigningAlgorithm::ES256 => {
                        tracing::info!(%path, kid = %key.kid, "generated a new ES256 signing key")
                    }
                }
            } else {
                tracing::warn!(path = %path.display(), hint = KEYS_MISSING_MESSAGE, "no signing key and key generation is off");
            }
        }
        if !files.iter().any(|f| f.kind == KeyKind::Cookie) {
            let path = dir.join(rotation::COOKIE_KEY_FILE);
            generate_cookie_key(&path)?;
            tracing::info!(path = %path.display(), "generated a new cookie key");
        }
        files = rotation::scan(&dir)?;
        let ring = Ring::read(&files, algorithm)?;
        let factor = load_or_generate_factor_key(&dir.join(FACTOR_KEY_FILE))?;
        Ok(Keys {
            dir,
            algorithm,
            ring: ArcSwap::from_pointee(ring),
            factor,
        })
    }

    /// Reads `keys.dir` again (on reload and every [`rotation::REFRESH_INTERVAL`]): keys
    /// rotated in are published and opened at once, retired ones dropped. Whether anything
    /// changed. A folder that cannot be read as a whole keeps the keys in use.
    pub fn refresh(&self) -> Result<bool, KeyError> {
        let files = rotation::scan(&self.dir)?;
        let ring = Ring::read(&files, self.algorithm)?;
        if ring.cookies.is_empty() {
            return Err(KeyError::Invalid {
                path: self.dir.clone(),
                message: "no cookie key left: the keys in use are kept".into(),
            });
        }
        let changed = ring.ids() != self.ring.load().ids();
        if changed {
            tracing::info!(
                dir = %self.dir.display(),
                signing = ring.signing.len(),
                cookie = ring.cookies.len(),
                "keys.dir changed: the new set of keys is in use"
            );
            self.ring.store(std::sync::Arc::new(ring));
        }
        Ok(changed)
    }

    /// Whether OAuth can issue tokens.
    pub fn can_sign(&self) -> bool {
        self.ring.load().signer(crate::clock::now()).is_some()
    }

    /// The algorithm tokens are signed with now (RS256 when there is no key).
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.ring
            .load()
            .signer(crate::clock::now())
            .map_or(SigningAlgorithm::RS256, |k| k.algorithm)
    }

    /// The JWKS document: every key, the next one before it signs and previous ones until
    /// they are retired.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .ring
                .load()
                .signing
                .iter()
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// Signs claims as a JWT with the given `typ` header, with the current key.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let ring = self.ring.load();
        let key = ring
            .signer(crate::clock::now())
            .ok_or(KeyError::NoSigningKey)?;
        let mut header = Header::new(key.algorithm.jwt());
        header.typ = Some(typ.to_string());
        header.kid = Some(key.kid.clone());
        let json = |v: serde_json::Result<Vec<u8>>| v.map_err(|e| KeyError::Sign(e.to_string()));
        let header = json(serde_json::to_vec(&header))?;
        let claims = json(serde_json::to_vec(claims))?;
        // JWS compact serialization (RFC 7515 §7.1): the signature covers `header.claims`.
        let mut jwt = String::with_capacity((header.len() + claims.len() + 256) * 4 / 3 + 6);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jwt);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jwt);
        let failed = |e: aws_lc_rs::error::Unspecified| KeyError::Sign(e.to_string());
        let rng = SystemRandom::new();
        match &key.private {
            Signer::Rsa(private) => {
                let mut signature = vec![0; private.public_modulus_len()];
                private
                    .sign(&RSA_PKCS1_SHA256, &rng, jwt.as_bytes(), &mut signature)
                    .map_err(failed)?;
                jwt.push('.');
                URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
            }
            Signer::Ec(private) => {
                // The FIXED variant gives r || s, 64 bytes, as JWS wants (RFC 7518 §3.4).
                let signature = private.sign(&rng, jwt.as_bytes()).map_err(failed)?;
                jwt.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);
            }
        }
        Ok(jwt)
    }

    /// Verifies a JWT of one of our keys (its `kid`, in its algorithm) and `typ`, issuer and
    /// audience.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: Option<&str>,
    ) -> Result<T, JwtError> {
        self.verify_inner(token, typ, issuer, audience, true)
    }

    /// Like `verify`, but accepts an expired token (OIDC `id_token_hint` may be expired).
    pub fn verify_ignoring_expiry<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
    ) -> Result<T, JwtError> {
        self.verify_inner(token, typ, issuer, None, false)
    }

    fn verify_inner<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: Option<&str>,
        check_exp: bool,
    ) -> Result<T, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Invalid)?;
        let ring = self.ring.load();
        let key = ring
            .signing
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
            .ok_or(JwtError::Invalid)?;
        // Only that key's algorithm: refuses `none`, HS256-with-the-public-key and foreign keys.
        if header.alg != key.algorithm.jwt()
            || !header
                .typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(JwtError::Invalid);
        }
        let mut validation = Validation::new(key.algorithm.jwt());
        validation.leeway = LEEWAY as u64;
        validation.validate_nbf = check_exp;
        validation.validate_exp = check_exp;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature
                | jsonwebtoken::errors::ErrorKind::ImmatureSignature => JwtError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidAudience
                | jsonwebtoken::errors::ErrorKind::InvalidIssuer => JwtError::WrongAudience,
                _ => JwtError::Invalid,
            })
    }

    /// The key that seals second-factor secrets at rest.
    pub fn factor_key(&self) -> &[u8; 32] {
        &self.factor
    }

    /// HMAC-SHA256 with the second-factor key, base64url: for what is stored for long and must
    /// outlive cookie key rotations (recovery codes).
    pub fn factor_mac(&self, purpose: &str, data: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.factor)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// HMAC-SHA256 with the current server key, base64url.
    pub fn mac(&self, purpose: &str, data: &str) -> String {
        self.ring
            .load()
            .cookie(crate::clock::now())
            .mac(purpose, data)
    }

    /// Whether `token` is the MAC of `data` under any of the server keys (a CSRF token made
    /// before a rotation stays good), compared in constant time.
    pub fn mac_matches(&self, purpose: &str, data: &str, token: &str) -> bool {
        let ring = self.ring.load();
        let mut found = false;
        for key in ring.cookies.iter().rev() {
            found |= crate::secrets::ct_eq(&key.mac(purpose, data), token);
        }
        found
    }

    /// A bare cookie `name` carrying `value` encrypted and authenticated with the current
    /// cookie key (AES-256-GCM, the name bound as associated data).
    pub fn seal(&self, name: &str, value: &str) -> Cookie<'static> {
        seal_with(
            &self.ring.load().cookie(crate::clock::now()).key,
            name,
            value,
        )
    }

    /// The value inside a cookie `name` that one of the cookie keys sealed: the current one
    /// first, so a warm request decrypts once.
    pub fn open(&self, name: &str, sealed: &str) -> Option<String> {
        let ring = self.ring.load();
        let current = ring.cookie(crate::clock::now());
        let decoded = || STANDARD.decode(sealed).ok();
        open_with(&current.cipher, name, decoded()?).or_else(|| {
            ring.cookies
                .iter()
                .rev()
                .filter(|k| k.id != current.id)
                .find_map(|k| open_with(&k.cipher, name, decoded()?))
        })
    }
}

/// Length of the nonce that starts a sealed cookie value.
const COOKIE_NONCE_LEN: usize = 12;
/// Length of the tag that ends it.
const COOKIE_TAG_LEN: usize = 16;

/// The value inside a cookie `name` that the `cookie` crate's private jar sealed with the key
/// of `cipher`: `data` is the value's base64 decoded, nonce then ciphertext and tag, the name
/// bound as associated data (`cookie::PrivateJar::decrypt` reads the same, but builds a jar, a
/// cookie and the cipher for each call; `cookie_values_sealed_by_the_private_jar_open`).
///
/// Decrypted in place: the value comes out in `data`'s own buffer (one allocation per cookie,
/// the base64 decoding's).
fn open_with(cipher: &Aes256Gcm, name: &str, mut data: Vec<u8>) -> Option<String> {
    if data.len() < COOKIE_NONCE_LEN + COOKIE_TAG_LEN {
        return None;
    }
    let (nonce, rest) = data.split_at_mut(COOKIE_NONCE_LEN);
    let (msg, tag) = rest.split_at_mut(rest.len() - COOKIE_TAG_LEN);
    let nonce: [u8; COOKIE_NONCE_LEN] = (&*nonce).try_into().ok()?;
    let tag: [u8; COOKIE_TAG_LEN] = (&*tag).try_into().ok()?;
    cipher
        .decrypt_in_place_detached(&Nonce::from(nonce), name.as_bytes(), msg, &tag.into())
        .ok()?;
    let len = msg.len();
    data.copy_within(COOKIE_NONCE_LEN..COOKIE_NONCE_LEN + len, 0);
    data.truncate(len);
    String::from_utf8(data).ok()
}

/// A bare cookie `name` carrying `value` encrypted and authenticated with `key`.
fn seal_with(key: &cookie::Key, name: &str, value: &str) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new(name.to_string(), value.to_string()));
    jar.get(name)
        .cloned()
        .unwrap_or_else(|| Cookie::new(name.to_string(), ""))
}

/// Reads a cookie key file: the base64 of the key's 64 bytes.
fn load_cookie_key(path: &Path, not_before: i64) -> Result<CookieKey, KeyError> {
    let text = read(path)?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| KeyError::Invalid {
            path: path.to_path_buf(),
            message: format!("not base64: {e}"),
        })?;
    let key = cookie::Key::try_from(bytes.as_slice()).map_err(|e| KeyError::Invalid {
        path: path.to_path_buf(),
        message: format!("not a cookie key: {e}"),
    })?;
    Ok(CookieKey::new(key, not_before, path.to_path_buf()))
}

/// The second-factor key's file in `keys.dir`.
pub const FACTOR_KEY_FILE: &str = "factor.key";

/// Reads `factor.key` (base64 of 32 bytes), making it when missing.
fn load_or_generate_factor_key(path: &Path) -> Result<[u8; 32], KeyError> {
    if !path.exists() {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        write_private(path, STANDARD.encode(key).as_bytes())?;
        tracing::info!(path = %path.display(), "generated a new second-factor key");
        return Ok(key);
    }
    crate::private_fs::tighten_file(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = STANDARD
        .decode(read(path)?.trim())
        .map_err(|e| KeyError::Invalid {
            path: path.to_path_buf(),
            message: format!("not base64: {e}"),
        })?;
    bytes.try_into().map_err(|_| KeyError::Invalid {
        path: path.to_path_buf(),
        message: "not a 32-byte key".into(),
    })
}

fn generate_cookie_key(path: &Path) -> Result<CookieKey, KeyError> {
    let key = cookie::Key::generate();
    write_private(path, STANDARD.encode(key.master()).as_bytes())?;
    Ok(CookieKey::new(key, 0, path.to_path_buf()))
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    crate::private_fs::ensure_dir(dir).map_err(io)
}

/// Writes a file readable only by its owner (mode 0600), atomically.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn generate_signing_key(path: &Path, algorithm: SigningAlgorithm) -> Result<SigningKey, KeyError> {
    let generate = |e: String| KeyError::Generate(e);
    let pem = match algorithm {
        SigningAlgorithm::RS256 => RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| generate(e.to_string()))?
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| generate(e.to_string()))?,
        SigningAlgorithm::ES256 => {
            let der = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|e| generate(e.to_string()))?;
            SecretDocument::try_from(der.as_ref())
                .and_then(|doc| doc.to_pem("PRIVATE KEY", LineEnding::LF))
                .map_err(|e| generate(e.to_string()))?
        }
    };
    write_private(path, pem.as_bytes())?;
    load_signing_key(path)
}

/// Reads a PKCS#8 PEM file holding an RSA or a P-256 private key.
fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let pem = read(path)?;
    let (label, der) = SecretDocument::from_pem(&pem)
        .map_err(|e| invalid(format!("not a PEM private key: {e}")))?;
    if label != "PRIVATE KEY" {
        return Err(invalid(format!(
            "holds a `{label}`; a PKCS#8 `PRIVATE KEY` (RSA or P-256) is expected"
        )));
    }
    if let Ok(private) = RsaPrivateKey::from_pkcs8_der(der.as_bytes()) {
        return rsa_signing_key(&private, path);
    }
    match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_bytes()) {
        Ok(private) => ec_signing_key(private, path),
        Err(_) => Err(invalid(
            "not a PKCS#8 RSA or P-256 (ES256) private key".into(),
        )),
    }
}

/// The public JWK of a signing key, with its RFC 7638 SHA-256 thumbprint as `kid`.
fn public_jwk(
    algorithm: AlgorithmParameters,
    alg: KeyAlgorithm,
) -> Result<(String, Jwk), jsonwebtoken::errors::Error> {
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(alg),
            ..Default::default()
        },
        algorithm,
    };
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    Ok((kid, jwk))
}

fn rsa_signing_key(private: &RsaPrivateKey, path: &Path) -> Result<SigningKey, KeyError> {
    let public = RsaPublicKey::from(private);
    let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
    let invalid = |message: String| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let der = private
        .to_pkcs8_der()
        .map_err(|e| invalid(format!("not encodable as PKCS#8: {e}")))?;
    let private = RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| invalid(e.to_string()))?;
    let (kid, jwk) = public_jwk(
        AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n,
            e,
        }),
        KeyAlgorithm::RS256,
    )
    .map_err(|e| invalid(e.to_string()))?;
    Ok(SigningKey {
        kid,
        algorithm: SigningAlgorithm::RS256,
        private: Signer::Rsa(private),
        decoding,
        jwk,
        not_before: 0,
        path: path.to_path_buf(),
    })
}

fn ec_signing_key(private: EcdsaKeyPair, path: &Path) -> Result<SigningKey, KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    // An uncompressed SEC1 point: 0x04 || X || Y, 32 bytes each on P-256.
    let point = private.public_key().as_ref();
    let (x, y) = match point {
        [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(invalid("unexpected P-256 public key encoding".into())),
    };
    let x = URL_SAFE_NO_PAD.encode(x);
    let y = URL_SAFE_NO_PAD.encode(y);
    let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| invalid(e.to_string()))?;
    let (kid, jwk) = public_jwk(
        AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x,
            y,
        }),
        KeyAlgorithm::ES256,
    )
    .map_err(|e| invalid(e.to_string()))?;
    Ok(SigningKey {
        kid,
        algorithm: SigningAlgorithm::ES256,
        private: Signer::Ec(private),
        decoding,
        jwk,
        not_before: 0,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Claims {
        iss: String,
        sub: String,
        aud: String,
        exp: u64,
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    #[test]
    fn cookie_values_sealed_by_the_private_jar_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys =
            Keys::load(&dir.path().join("keys"), true, SigningAlgorithm::ES256).expect("generate");
        let sealed = keys.seal("frontdoor_session", "raw-session-id");
        assert_eq!(
            keys.open("frontdoor_session", sealed.value()).as_deref(),
            Some("raw-session-id")
        );
        // Sealed by the cookie crate itself, outside frontdoor's helper.
        let ring = keys.ring.load();
        let key = &ring.cookie(crate::clock::now()).key;
        let mut jar = CookieJar::new();
        jar.private_mut(key)
            .add(Cookie::new("other", "ünïcode value"));
        let by_jar = jar.get("other").expect("sealed").value().to_string();
        assert_eq!(
            keys.open("other", &by_jar).as_deref(),
            Some("ünïcode value")
        );
        // Bound to its name, its key and every byte.
        assert_eq!(keys.open("other_cookie", &by_jar), None);
        let mut data = STANDARD.decode(&by_jar).expect("base64");
        let last = data.len() - 1;
        data[last] ^= 1;
        assert_eq!(keys.open("other", &STANDARD.encode(&data)), None);
        for short in [
            "",
            "AAAA",
            &STANDARD.encode([0u8; COOKIE_NONCE_LEN]),
            "not base64!",
        ] {
            assert_eq!(keys.open("other", short), None, "{short:?}");
        }
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let other = Keys::load(
            &elsewhere.path().join("keys"),
            true,
            SigningAlgorithm::ES256,
        )
        .expect("generate");
        assert_eq!(other.open("other", &by_jar), None);
    }

    #[test]
    fn generated_keys_persist_with_mode_0600_and_sign() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys =
            Keys::load(&dir.path().join("keys"), true, SigningAlgorithm::RS256).expect("generate");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in ["signing-key.pem", "cookie.key"] {
                let mode = std::fs::metadata(dir.path().join("keys").join(f))
                    .expect("exists")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
        let claims = Claims {
            iss: "https://fd".into(),
            sub: "u1".into(),
            aud: "c1".into(),
            exp: now() + 60,
        };
        let jwt = keys.sign("at+jwt", &claims).expect("sign");
        let back: Claims = keys
            .verify(&jwt, "at+jwt", "https://fd", Some("c1"))
            .expect("verify");
        assert_eq!(back, claims);
        // Reloaded from disk: same kid, verifies the old token.
        let again =
            Keys::load(&dir.path().join("keys"), false, SigningAlgorithm::RS256).expect("load");
        let back: Claims = again
            .verify(&jwt, "at+jwt", "https://fd", Some("c1"))
            .expect("verify");
        assert_eq!(back.sub, "u1");
        // Wrong typ, audience, issuer.
        assert_eq!(
            keys.verify::<Claims>(&jwt, "JWT", "https://fd", Some("c1")),
            Err(JwtError::Invalid)
        );
        assert_eq!(
            keys.verify::<Claims>(&jwt, "at+jwt", "https://fd", Some("c2")),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            keys.verify::<Claims>(&jwt, "at+jwt", "https://x", Some("c1")),
            Err(JwtError::WrongAudience)
        );
    }

    #[test]
    fn forged_tokens_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys =
            Keys::load(&dir.path().join("keys"), true, SigningAlgorithm::RS256).expect("generate");
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = Keys::load(
            &other_dir.path().join("keys"),
            true,
            SigningAlgorithm::RS256,
        )
        .expect("generate");
        let claims = Claims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            exp: now() + 60,
        };
        let foreign = other.sign("at+jwt", &claims).expect("sign");
        assert_eq!(
            keys.verify::<Claims>(&foreign, "at+jwt", "i", Some("a")),
            Err(JwtError::Invalid)
        );
        // alg: none
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
        let none = format!(
            "{}.{body}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#)
        );
        assert_eq!(
            keys.verify::<Claims>(&none, "at+jwt", "i", Some("a")),
            Err(JwtError::Invalid)
        );
        // HS256 signed with the public key's JWK text.
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = keys.jwks().keys[0].common.key_id.clone();
        let secret = serde_json::to_vec(&keys.jwks()).expect("json");
        let hs = jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .expect("sign");
        assert_eq!(
            keys.verify::<Claims>(&hs, "at+jwt", "i", Some("a")),
            Err(JwtError::Invalid)
        );
        // Expired.
        let old = keys
            .sign(
                "at+jwt",
                &Claims {
                    exp: now() - 120,
                    ..claims
                },
            )
            .expect("sign");
        assert_eq!(
            keys.verify::<Claims>(&old, "at+jwt", "i", Some("a")),
            Err(JwtError::Expired)
        );
    }

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let (kid, jwk) = public_jwk(
            AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: n.into(),
                e: "AQAB".into(),
            }),
            KeyAlgorithm::RS256,
        )
        .expect("thumbprint");
        assert_eq!(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        let json = serde_json::to_value(&jwk).expect("JSON");
        assert_eq!(json["kid"], kid.as_str());
        assert_eq!(json["use"], "sig");
        assert_eq!(json["alg"], "RS256");
        assert_eq!(json["n"], n);
    }

    #[test]
    fn es256_keys_sign_verify_persist_and_publish_a_p256_jwk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        let keys = Keys::load(&path, true, SigningAlgorithm::ES256).expect("generate");
        assert_eq!(keys.algorithm(), SigningAlgorithm::ES256);
        let claims = Claims {
            iss: "https://fd".into(),
            sub: "u1".into(),
            aud: "c1".into(),
            exp: now() + 60,
        };
        let jwt = keys.sign("at+jwt", &claims).expect("sign");
        let header = jsonwebtoken::decode_header(&jwt).expect("header");
        assert_eq!(header.alg, Algorithm::ES256);
        // Checked by another implementation, from the published JWK alone.
        let published = serde_json::to_value(keys.jwks()).expect("JSON");
        assert_eq!(published["keys"][0]["kty"], "EC");
        assert_eq!(published["keys"][0]["crv"], "P-256");
        assert_eq!(published["keys"][0]["use"], "sig");
        assert_eq!(published["keys"][0]["alg"], "ES256");
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(published).expect("a JWK set");
        let jwk = &jwks.keys[0];
        assert_eq!(jwk.common.key_id.as_deref(), header.kid.as_deref());
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["c1"]);
        let from_jwk = jsonwebtoken::decode::<Claims>(
            &jwt,
            &DecodingKey::from_jwk(jwk).expect("EC JWK"),
            &validation,
        )
        .expect("verifies with the JWK");
        assert_eq!(from_jwk.claims, claims);
        // The same key after a restart; an RS256 token of another instance is refused.
        let again = Keys::load(&path, false, SigningAlgorithm::ES256).expect("load");
        let back: Claims = again
            .verify(&jwt, "at+jwt", "https://fd", Some("c1"))
            .expect("verify");
        assert_eq!(back, claims);
        let rsa_dir = tempfile::tempdir().expect("tempdir");
        let rsa = Keys::load(&rsa_dir.path().join("keys"), true, SigningAlgorithm::RS256)
            .expect("generate");
        let rs256 = rsa.sign("at+jwt", &claims).expect("sign");
        assert_eq!(
            again.verify::<Claims>(&rs256, "at+jwt", "https://fd", Some("c1")),
            Err(JwtError::Invalid)
        );
        // A configured algorithm that disagrees with the key file is named, not ignored.
        let mismatch = Keys::load(&path, true, SigningAlgorithm::RS256)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            mismatch.contains("ES256") && mismatch.contains("keys.algorithm"),
            "{mismatch}"
        );
    }

    #[test]
    fn a_key_file_that_is_not_a_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        std::fs::create_dir_all(&path).expect("dir");
        std::fs::write(path.join("signing-key.pem"), "hello").expect("write");
        let err = Keys::load(&path, true, SigningAlgorithm::RS256)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("signing-key.pem") && err.contains("PEM"),
            "{err}"
        );
    }

    #[test]
    fn without_generation_oauth_is_off_but_cookies_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys =
            Keys::load(&dir.path().join("keys"), false, SigningAlgorithm::RS256).expect("load");
        assert!(!keys.can_sign());
        assert!(matches!(
            keys.sign("JWT", &serde_json::json!({})),
            Err(KeyError::NoSigningKey)
        ));
        assert_eq!(KeyError::NoSigningKey.to_string(), KEYS_MISSING_MESSAGE);
        assert_eq!(keys.mac("csrf", "x"), keys.mac("csrf", "x"));
        assert_ne!(keys.mac("csrf", "x"), keys.mac("other", "x"));
    }
}
