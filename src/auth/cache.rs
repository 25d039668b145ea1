//! The caches of verified credentials (API tokens, bearer tokens, contact hashes) and what
//! forgets them; `credentials` fills them, `State` holds them.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use moka::sync::Cache;

use super::Identity;
use crate::config::Config;

pub(super) struct TokenEntry {
    pub(super) identity: Arc<Identity>,
    pub(super) token_id: String,
    pub(super) touched: AtomicI64,
}

pub(super) struct BearerEntry {
    pub(super) identity: Arc<Identity>,
    pub(super) aud: String,
    /// Issued by frontdoor to itself (login API, own sign-in client), not to an app.
    pub(super) first_party: bool,
    pub(super) exp: i64,
    pub(super) gid: String,
    pub(super) client_id: String,
}

pub(super) struct ContactEntry {
    pub(super) identity: Arc<Identity>,
    pub(super) path_prefix: String,
    pub(super) expires_at: i64,
}

/// Caches of verified credentials; clones share the entries (a reload keeps them).
#[derive(Clone)]
pub struct CredentialCache {
    pub(super) api_tokens: Cache<String, Arc<TokenEntry>>,
    pub(super) bearer: Cache<String, Arc<BearerEntry>>,
    pub(super) contacts: Cache<String, Arc<ContactEntry>>,
}

impl CredentialCache {
    /// Caches bounded by `session.cache_ttl`.
    pub fn new(config: &Config) -> CredentialCache {
        CredentialCache {
            api_tokens: crate::cache::bounded(config, 100_000),
            bearer: crate::cache::bounded(config, 100_000),
            contacts: crate::cache::bounded(config, 100_000),
        }
    }

    /// Forgets every cached API token (after a revocation on this node).
    pub fn forget_api_tokens(&self) {
        self.api_tokens.invalidate_all();
    }

    /// Forgets the cached API token with this id (revoked on another node).
    pub fn forget_api_token(&self, id: &str) {
        forget_where(&self.api_tokens, |e| e.token_id == id);
    }

    /// Forgets every cached credential of a user (deactivated or deleted).
    pub fn forget_user(&self, user_id: &str) {
        forget_where(&self.api_tokens, |e| e.identity.subject == user_id);
        forget_where(&self.bearer, |e| e.identity.subject == user_id);
    }

    /// Forgets the cached access tokens issued to an app (deactivated, changed or deleted).
    pub fn forget_app(&self, client_id: &str) {
        forget_where(&self.bearer, |e| e.client_id == client_id);
    }

    /// Forgets a cached contact hash, by contact id (revoked).
    pub fn forget_contact(&self, id: &str) {
        forget_where(&self.contacts, |e| e.identity.subject == id);
    }

    /// Forgets everything (after notifications may have been missed).
    pub fn forget_all(&self) {
        self.api_tokens.invalidate_all();
        self.bearer.invalidate_all();
        self.contacts.invalidate_all();
    }
}

/// Invalidates the entries matching `doomed`. A full scan: revocations are rare, and the
/// caches are keyed by what the client presents, which a revocation does not know.
fn forget_where<V>(cache: &Cache<String, Arc<V>>, doomed: impl Fn(&V) -> bool)
where
    V: Send + Sync + 'static,
{
    for (key, value) in cache.iter() {
        if doomed(&value) {
            cache.invalidate(key.as_str());
        }
    }
}
