//! Everything a request handler needs, built once at start.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::auth::credentials::CredentialCache;
use crate::config::Config;
use crate::federation::Federation;
use crate::gateway::forwarded::TrustedProxies;
use crate::gateway::routes::RouteTable;
use crate::keys::Keys;
use crate::mail::Mailer;
use crate::regulation::Regulation;
use crate::session::Sessions;
use crate::store::DynStore;

/// Shared state of one frontdoor process.
pub struct State {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// The store.
    pub store: DynStore,
    /// Signing and cookie keys.
    pub keys: Arc<Keys>,
    /// Browser sessions.
    pub sessions: Sessions,
    /// Issuer (public_url without trailing slash).
    pub issuer: String,
    /// Proxied routes.
    pub routes: RouteTable,
    /// Whether a grant (and its app) may still be used, by grant id; bounded staleness.
    pub grant_status: Cache<String, bool>,
    /// Verified credentials (API tokens, bearer tokens, contact hashes).
    pub credentials: CredentialCache,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted: TrustedProxies,
    /// Outgoing mail.
    pub mailer: Arc<Mailer>,
    /// Upstream identity providers.
    pub federation: Arc<Federation>,
    /// Upstream sign-in states and logout token ids already used (replay protection).
    pub federation_used_states: Cache<String, ()>,
    /// Failed sign-in counting, bans and per-address request rates.
    pub regulation: Regulation,
}

impl State {
    /// Builds the state.
    pub fn new(config: Arc<Config>, store: DynStore, keys: Arc<Keys>, mailer: Mailer) -> State {
        let sessions = Sessions::new(&config, store.clone(), keys.cookie.clone());
        let grant_status = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(config.session.cache_ttl.0.max(Duration::from_secs(1)))
            .build();
        State {
            federation: Arc::new(Federation::new(&config)),
            federation_used_states: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(900))
                .build(),
            mailer: Arc::new(mailer),
            credentials: CredentialCache::new(&config),
            trusted: TrustedProxies::new(&config.trusted_proxies),
            regulation: Regulation::new(&config.regulation),
            issuer: config.issuer(),
            routes: RouteTable::new(&config),
            sessions,
            grant_status,
            keys,
            store,
            config,
        }
    }

    /// Organisation name for pages.
    pub fn org(&self) -> &str {
        &self.config.organization
    }

    /// Whether cookies carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.config.secure_cookies()
    }
}
