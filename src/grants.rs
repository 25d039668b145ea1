//! Access tokens and the grants behind them, where they are used (userinfo, introspection,
//! proxied routes, the token endpoint): verification, whether a grant still stands, the caches
//! in front of the store and what forgets them. Below both the provider, which issues and
//! revokes, and the gateway, which accepts.

use std::sync::Arc;

use moka::sync::Cache;
use sha2::{Digest, Sha256};

use crate::clock::now;
use crate::config::Config;
use crate::keys::{JwtError, Keys, LEEWAY};
use crate::store::{App, DynStore, Grant, StoreError};
use crate::tokens::{ACCESS_TOKEN_TYP, APP_GRANT_PREFIX, AccessClaims, OWN_CLIENT_ID};

/// Why an access token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Malformed, forged, wrong type or audience.
    #[error("invalid token")]
    Invalid,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Issued for another audience (resource).
    #[error("token not meant for this audience")]
    WrongAudience,
    /// Its grant was revoked or its app deactivated.
    #[error("token revoked")]
    Revoked,
    /// The store could not be asked.
    #[error("store unavailable")]
    Unavailable,
}

/// Grants, apps and verified access tokens, with the caches in front of the store. Clones
/// share the caches (a reload keeps them).
#[derive(Clone)]
pub struct Grants {
    store: DynStore,
    keys: Arc<Keys>,
    issuer: String,
    /// Whether a grant (and its app) may still be used, by grant id; bounded staleness.
    status: Cache<String, bool>,
    /// Grants that were not revoked when read, by id, for the refresh grant; bounded
    /// staleness, forgotten with `status`. A revoked grant's refresh tokens are spent in the
    /// store as well, so a stale entry cannot revive one.
    live: Cache<String, Arc<Grant>>,
    /// Access tokens whose signature was verified, by SHA-256 of the token; bounded staleness
    /// is harmless: a token never changes.
    verified: Cache<[u8; 32], Arc<AccessClaims>>,
    /// Registered apps by client id, as the token endpoints authenticate them; bounded
    /// staleness, forgotten at once when changed through this node (`forget_app`).
    apps: Cache<String, Arc<App>>,
}

impl Grants {
    /// Empty caches over the store; tokens are checked against `config`'s issuer.
    pub fn new(config: &Config, store: DynStore, keys: Arc<Keys>) -> Grants {
        Grants {
            store,
            keys,
            issuer: config.issuer(),
            status: crate::cache::bounded(config, 100_000),
            live: crate::cache::bounded(config, 100_000),
            verified: crate::cache::bounded(config, 100_000),
            apps: crate::cache::bounded(config, 10_000),
        }
    }

    /// The same caches under a reloaded configuration (whose issuer may differ).
    pub fn reconfigured(&self, config: &Config) -> Grants {
        Grants {
            issuer: config.issuer(),
            ..self.clone()
        }
    }

    /// Verifies signature, type, issuer, expiry, the audience when given, and that the grant
    /// still stands.
    ///
    /// A token whose signature checked out is remembered (by its SHA-256) for
    /// `session.cache_ttl`: an RSA verification costs more than the rest of an introspection.
    /// Expiry, issuer, audience and the grant's standing are checked again on every call, so
    /// a remembered token is refused exactly when a freshly verified one would be.
    pub async fn verify(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<Arc<AccessClaims>, AccessError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = match self.verified.get(&key) {
            Some(c) => {
                if c.exp + LEEWAY < now() {
                    return Err(AccessError::Expired);
                }
                if c.iss != self.issuer || audience.is_some_and(|a| a != c.aud) {
                    return Err(AccessError::WrongAudience);
                }
                c
            }
            None => {
                let claims: AccessClaims = self
                    .keys
                    .verify(token, ACCESS_TOKEN_TYP, &self.issuer, audience)
                    .map_err(|e| match e {
                        JwtError::Expired => AccessError::Expired,
                        JwtError::WrongAudience => AccessError::WrongAudience,
                        _ => AccessError::Invalid,
                    })?;
                let claims = Arc::new(claims);
                self.verified.insert(key, claims.clone());
                claims
            }
        };
        match self.active(&claims.gid, &claims.client_id).await {
            Ok(true) => Ok(claims),
            Ok(false) => Err(AccessError::Revoked),
            Err(_) => Err(AccessError::Unavailable),
        }
    }

    /// Whether a grant is unrevoked and its app active; cached for the configured bound.
    pub async fn active(&self, gid: &str, client_id: &str) -> Result<bool, StoreError> {
        if let Some(ok) = self.status.get(gid) {
            return Ok(ok);
        }
        if let Some(app_id) = gid.strip_prefix(APP_GRANT_PREFIX) {
            // client_credentials tokens stand as long as their app is active.
            let ok = app_id == client_id
                && self
                    .store
                    .get_app(client_id)
                    .await?
                    .is_some_and(|a| a.active);
            self.status.insert(gid.to_string(), ok);
            return Ok(ok);
        }
        let ok = match self.store.get_grant(gid).await? {
            // frontdoor's own grants (gateway, login API) have no app to check.
            Some(g) if !g.revoked && g.client_id == client_id && client_id == OWN_CLIENT_ID => true,
            Some(g) if !g.revoked && g.client_id == client_id => {
                match self.store.get_app(client_id).await? {
                    Some(app) => app.active,
                    None => false,
                }
            }
            _ => false,
        };
        self.status.insert(gid.to_string(), ok);
        Ok(ok)
    }

    /// A grant that was not revoked when last read, from the cache or the store.
    pub async fn live(&self, gid: &str) -> Result<Option<Arc<Grant>>, StoreError> {
        if let Some(g) = self.live.get(gid) {
            return Ok(Some(g));
        }
        match self.store.get_grant(gid).await? {
            Some(g) if !g.revoked => {
                let g = Arc::new(g);
                self.live.insert(gid.to_string(), g.clone());
                Ok(Some(g))
            }
            _ => Ok(None),
        }
    }

    /// Revokes a grant in the store and forgets its cached status.
    pub async fn revoke(&self, gid: &str) -> Result<(), StoreError> {
        self.store.revoke_grant(gid).await?;
        self.forget_grant(gid);
        Ok(())
    }

    /// A registered app, from the cache or the store (then cached); `None` when unknown
    /// (not cached, so that a client registered on another node is found at once).
    pub async fn app(&self, client_id: &str) -> Result<Option<Arc<App>>, StoreError> {
        if let Some(app) = self.apps.get(client_id) {
            return Ok(Some(app));
        }
        let Some(app) = self.store.get_app(client_id).await? else {
            return Ok(None);
        };
        let app = Arc::new(app);
        self.apps.insert(client_id.to_string(), app.clone());
        Ok(Some(app))
    }

    /// Forgets what this node cached about an app it just changed (deactivated, deleted, new
    /// secret, new settings), so that the change applies here at once.
    pub fn forget_app(&self, client_id: &str) {
        self.apps.invalidate(client_id);
        self.status.invalidate_all();
    }

    /// Forgets what this node cached about a grant (revoked here, or announced revoked).
    pub fn forget_grant(&self, gid: &str) {
        self.status.invalidate(gid);
        self.live.invalidate(gid);
    }

    /// Forgets every grant and app (announcements may have been missed). Verified signatures
    /// are kept: their grant is checked on every use.
    pub fn forget_all(&self) {
        self.status.invalidate_all();
        self.live.invalidate_all();
        self.apps.invalidate_all();
    }
}
