//! Browser sessions: the encrypted cookie, the store record, and the moka cache in front of it.
//!
//! A warm request is decided from the cache alone: decrypt the cookie, one cache lookup,
//! two integer comparisons. Activity is written back to the store at most every quarter of
//! the idle timeout, in the background.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use cookie::{Cookie, SameSite};
use moka::sync::Cache;

use crate::auth::{Access, CredentialKind, Identity};
use crate::clock::now;
use crate::config::Config;
use crate::secrets::{hash_secret, random_token};
use crate::store::{DynStore, EndedSession, SessionRecord, StoreError, User};

/// How long a started sign-in round trip (the gateway's, or one through an upstream identity
/// provider) may take before its pending state is refused, in seconds.
pub const PENDING_LIFETIME: i64 = 600;

/// A session as held in the cache.
#[derive(Debug)]
pub struct ActiveSession {
    /// Hash of the session id (the store key).
    pub id_hash: Arc<str>,
    /// The session's public identifier (`sid` of ID and logout tokens).
    pub sid: Arc<str>,
    /// The user's identity, headers pre-rendered.
    pub identity: Arc<Identity>,
    /// Authentication time.
    pub created_at: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    last_seen: AtomicI64,
    persisted_seen: AtomicI64,
}

/// Session lookups and lifecycle.
pub struct Sessions {
    store: DynStore,
    cache: Cache<Arc<str>, Arc<ActiveSession>>,
    /// One identity per user, shared by all of that user's cached sessions.
    identities: Cache<String, Arc<Identity>>,
    keys: Arc<crate::keys::Keys>,
    cookie_name: String,
    secure: bool,
    ttl: i64,
    idle: i64,
}

/// Outcome of resolving a cookie.
pub enum Lookup {
    /// A live session.
    Active(Arc<ActiveSession>),
    /// No session: absent, unknown, expired or ended.
    None,
}

impl Sessions {
    /// Sessions for this configuration.
    pub fn new(config: &Config, store: DynStore, keys: Arc<crate::keys::Keys>) -> Sessions {
        let cache = crate::cache::bounded(config, config.session.cache_capacity);
        let identities = crate::cache::bounded(config, config.session.cache_capacity);
        Sessions {
            store,
            cache,
            identities,
            keys,
            cookie_name: config.session.cookie_name.clone(),
            secure: config.secure_cookies(),
            ttl: config.session.ttl.0.as_secs() as i64,
            idle: config.session.idle_timeout.0.as_secs() as i64,
        }
    }

    /// The same sessions and caches under a reloaded configuration: new lifetimes and the
    /// `Secure` flag apply to sessions created from now on and to idle checks. The cookie name
    /// and the cache sizes need a restart.
    pub fn reconfigured(&self, config: &Config) -> Sessions {
        Sessions {
            store: self.store.clone(),
            cache: self.cache.clone(),
            identities: self.identities.clone(),
            keys: self.keys.clone(),
            cookie_name: self.cookie_name.clone(),
            secure: config.secure_cookies(),
            ttl: config.session.ttl.0.as_secs() as i64,
            idle: config.session.idle_timeout.0.as_secs() as i64,
        }
    }

    /// The user's identity as it is now (after a login), replacing the shared cached one.
    fn fresh_identity(&self, user: &User, amr: &str) -> Arc<Identity> {
        let identity = Arc::new(session_identity(user, amr));
        self.identities
            .insert(identity_key(&user.id, amr), identity.clone());
        identity
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Creates a session for a user who just authenticated with one factor (a password or an
    /// emailed code: `auth_method` says which); returns the raw id for the cookie.
    pub async fn create(&self, user: &User, auth_method: &str) -> Result<String, StoreError> {
        let amr = match auth_method {
            "password" => crate::factors::PWD,
            "otp" => crate::factors::OTP,
            _ => "",
        };
        self.create_with_amr(user, auth_method, amr).await
    }

    /// Creates a session whose authentication `amr` (RFC 8176, space-separated) says how.
    pub async fn create_with_amr(
        &self,
        user: &User,
        auth_method: &str,
        amr: &str,
    ) -> Result<String, StoreError> {
        // Public (apps see it in ID tokens), so drawn apart from the secret id.
        let sid = uuid::Uuid::new_v4().simple().to_string();
        self.insert(user, auth_method, amr, sid).await
    }

    /// Replaces the session `old_raw` with a new one authenticated with `amr` (a step-up): a
    /// new secret id, so a cookie seen before the upgrade does not carry it, and the same
    /// public `sid`, so apps keep knowing the session. The old id stops working at once.
    pub async fn rotate(
        &self,
        old_raw: &str,
        user: &User,
        auth_method: &str,
        amr: &str,
    ) -> Result<String, StoreError> {
        let old_hash = hash_secret(old_raw);
        let sid = match self.store.get_session(&old_hash).await? {
            Some(old) => old.sid,
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let raw = self.insert(user, auth_method, amr, sid).await?;
        self.cache.invalidate(old_hash.as_str());
        self.store.delete_session(&old_hash).await?;
        Ok(raw)
    }

    async fn insert(
        &self,
        user: &User,
        auth_method: &str,
        amr: &str,
        sid: String,
    ) -> Result<String, StoreError> {
        let raw = random_token();
        let now = now();
        let record = SessionRecord {
            id_hash: hash_secret(&raw),
            user_id: user.id.clone(),
            tenant: user.tenant.clone(),
            created_at: now,
            expires_at: now + self.ttl,
            last_seen: now,
            auth_method: auth_method.to_string(),
            sid,
            amr: amr.to_string(),
        };
        self.store.create_session(&record).await?;
        let s = active(&record, self.fresh_identity(user, amr));
        self.cache.insert(s.id_hash.clone(), Arc::new(s));
        Ok(raw)
    }

    /// The raw session id inside a request's cookie, if it decrypts.
    pub fn id_from_cookie_value(&self, value: &str) -> Option<String> {
        self.keys.open(&self.cookie_name, value)
    }

    /// The `Set-Cookie` for a session id (encrypted and authenticated).
    pub fn cookie(&self, raw_id: &str) -> Cookie<'static> {
        let mut c = self.keys.seal(&self.cookie_name, raw_id);
        c.set_path("/");
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_secure(self.secure);
        c
    }

    /// A `Set-Cookie` that removes the session cookie.
    pub fn removal_cookie(&self) -> Cookie<'static> {
        let mut c = Cookie::new(self.cookie_name.clone(), "");
        c.set_path("/");
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_secure(self.secure);
        c.make_removal();
        c
    }

    /// Resolves a raw session id: from the cache when warm, else from the store.
    pub async fn lookup(&self, raw_id: &str) -> Result<Lookup, StoreError> {
        let now = now();
        // Keyed by the hash, so that a session can be ended knowing only its hash.
        let mut buf = [0u8; crate::secrets::SECRET_HASH_LEN];
        let hash = crate::secrets::hash_secret_in(raw_id, &mut buf);
        if let Some(s) = self.cache.get(hash) {
            crate::metrics::session_cache(true);
            return Ok(self.check_live(s, now));
        }
        crate::metrics::session_cache(false);
        let Some(record) = self.store.get_session(hash).await? else {
            return Ok(Lookup::None);
        };
        let Some(user) = self.store.get_user(&record.user_id).await? else {
            return Ok(Lookup::None);
        };
        if !user.active {
            return Ok(Lookup::None);
        }
        let identity = self
            .identities
            .get_with(identity_key(&user.id, &record.amr), || {
                Arc::new(session_identity(&user, &record.amr))
            });
        let s = Arc::new(active(&record, identity));
        self.cache.insert(s.id_hash.clone(), s.clone());
        Ok(self.check_live(s, now))
    }

    fn check_live(&self, s: Arc<ActiveSession>, now: i64) -> Lookup {
        let last = s.last_seen.load(Ordering::Relaxed);
        if now >= s.expires_at || now - last > self.idle {
            self.cache.invalidate(&*s.id_hash);
            return Lookup::None;
        }
        if now > last {
            s.last_seen.store(now, Ordering::Relaxed);
            let persisted = s.persisted_seen.load(Ordering::Relaxed);
            if now - persisted > (self.idle / 4).max(1)
                && s.persisted_seen
                    .compare_exchange(persisted, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let store = self.store.clone();
                let hash = s.id_hash.to_string();
                tokio::spawn(async move {
                    if let Err(e) = store.touch_session(&hash, now).await {
                        tracing::warn!(error = %e, "could not record session activity");
                    }
                });
            }
        }
        Lookup::Active(s)
    }

    /// The live session of a request's cookie, with its raw id.
    pub async fn from_headers(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<(String, Arc<ActiveSession>)>, StoreError> {
        let Some(value) = crate::endpoint::cookie_value(headers, &self.cookie_name) else {
            return Ok(None);
        };
        let Some(raw) = self.id_from_cookie_value(&value) else {
            return Ok(None);
        };
        Ok(match self.lookup(&raw).await? {
            Lookup::Active(s) => Some((raw, s)),
            Lookup::None => None,
        })
    }

    /// Ends a session in the store and the cache; what was ended, when this call ended it
    /// (not when it was unknown, or ended meanwhile by someone else, who tells the apps).
    pub async fn end(&self, raw_id: &str) -> Result<Option<EndedSession>, StoreError> {
        let hash = hash_secret(raw_id);
        self.cache.invalidate(hash.as_str());
        let record = self.store.get_session(&hash).await?;
        if !self.store.delete_session(&hash).await? {
            return Ok(None);
        }
        Ok(record.map(|r| EndedSession {
            id_hash: hash,
            user_id: r.user_id,
            sid: r.sid,
        }))
    }

    /// Gives the session of `raw_id` a new id (after a password change: a session id seen
    /// before the change is worth nothing after it), keeping its user, times and `sid`. The new
    /// raw id for the cookie, or `None` when the session is gone.
    pub async fn rekey(&self, raw_id: &str) -> Result<Option<String>, StoreError> {
        let old = hash_secret(raw_id);
        let raw = random_token();
        if !self.store.rekey_session(&old, &hash_secret(&raw)).await? {
            return Ok(None);
        }
        self.cache.invalidate(old.as_str());
        Ok(Some(raw))
    }

    /// Ends every session of a user but the one of `keep` (a raw id), in the store and this
    /// node's cache (the store tells the other nodes); what was ended, for the apps to be told.
    pub async fn end_user(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let keep = keep.map(hash_secret);
        let ended = self
            .store
            .end_user_sessions(user_id, keep.as_deref())
            .await?;
        for s in &ended {
            self.cache.invalidate(s.id_hash.as_str());
        }
        Ok(ended)
    }

    /// Forgets sessions already ended in the store, by hash.
    pub fn forget(&self, hashes: &[String]) {
        for h in hashes {
            self.cache.invalidate(h.as_str());
        }
    }

    /// Forgets every cached session and the identity of a user (deactivated or deleted).
    pub fn forget_user(&self, user_id: &str) {
        // One identity per way of signing in: a scan, as for the sessions below.
        for (key, identity) in self.identities.iter() {
            if identity.subject == user_id {
                self.identities.invalidate(&*key);
            }
        }
        // A full scan: rare, and cheaper than keeping a per-user index on every login.
        for (hash, s) in self.cache.iter() {
            if s.identity.subject == user_id {
                self.cache.invalidate(&**hash);
            }
        }
    }

    /// Forgets every cached session (after revocations may have been missed).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
        self.identities.invalidate_all();
    }

    /// Number of sessions in this node's cache.
    pub fn cached(&self) -> u64 {
        self.cache.entry_count()
    }
}

/// The identities cache's key: the user and how the session was authenticated (the `amr`
/// header and the `two_factor` rules read it).
fn identity_key(user_id: &str, amr: &str) -> String {
    format!("{user_id}\n{amr}")
}

fn session_identity(user: &User, amr: &str) -> Identity {
    Identity::for_user(user, CredentialKind::Session, Access::ReadWrite).with_amr(amr)
}

fn active(record: &SessionRecord, identity: Arc<Identity>) -> ActiveSession {
    ActiveSession {
        // The cache key and this field share one allocation.
        id_hash: Arc::from(record.id_hash.as_str()),
        sid: Arc::from(record.sid.as_str()),
        identity,
        created_at: record.created_at,
        expires_at: record.expires_at,
        last_seen: AtomicI64::new(record.last_seen),
        persisted_seen: AtomicI64::new(record.last_seen),
    }
}
