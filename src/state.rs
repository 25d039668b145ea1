//! Everything a request handler needs: built at start, and again from a reloaded
//! configuration (keeping the store, keys and caches). Each request takes the state in effect
//! when it starts and keeps it to its end.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use moka::sync::Cache;

use crate::auth::cache::CredentialCache;
use crate::config::Config;
use crate::federation::Federation;
use crate::gateway::forwarded::TrustedProxies;
use crate::gateway::routes::RouteTable;
use crate::keys::Keys;
use crate::mail::{MailError, Mailer};
use crate::provider::own_client::OwnRedirects;
use crate::regulation::Regulation;
use crate::session::Sessions;
use crate::store::{App, DynStore, Grant, StoreError};
use crate::tokens::AccessClaims;

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
    /// `public_url`'s scheme, the `X-Forwarded-Proto` sent upstream for a client that did not
    /// come over frontdoor's TLS (parsed once: it is on every proxied request).
    pub public_scheme: &'static str,
    /// Proxied routes.
    pub routes: RouteTable,
    /// The redirect URIs of frontdoor's own sign-in client, fixed by the configuration.
    pub own_redirects: OwnRedirects,
    /// Whether a grant (and its app) may still be used, by grant id; bounded staleness.
    pub grant_status: Cache<String, bool>,
    /// Grants that were not revoked when read, by id, for the refresh grant; bounded staleness,
    /// forgotten with `grant_status` (`State::forget_grant`). A revoked grant's refresh tokens
    /// are spent in the store as well, so a stale entry cannot revive one.
    pub grants: Cache<String, Arc<Grant>>,
    /// Access tokens whose signature was verified, by SHA-256 of the token (see
    /// `provider::access::verify`); bounded staleness is harmless: a token never changes.
    pub verified_access: Cache<[u8; 32], Arc<AccessClaims>>,
    /// Registered apps by client id, as the token endpoints authenticate them; bounded
    /// staleness, forgotten at once when changed through this node (`State::forget_app`).
    pub apps: Cache<String, Arc<App>>,
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
    pub regulation: Arc<Regulation>,
}

impl State {
    /// Builds the state.
    pub fn new(config: Arc<Config>, store: DynStore, keys: Arc<Keys>, mailer: Mailer) -> State {
        let sessions = Sessions::new(&config, store.clone(), keys.cookie.clone());
        let grant_status = crate::cache::bounded(&config, 100_000);
        let grants = crate::cache::bounded(&config, 100_000);
        let apps = crate::cache::bounded(&config, 10_000);
        let verified_access = crate::cache::bounded(&config, 100_000);
        State {
            federation: Arc::new(Federation::new(&config)),
            federation_used_states: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(900))
                .build(),
            mailer: Arc::new(mailer),
            credentials: CredentialCache::new(&config),
            trusted: TrustedProxies::new(&config.trusted_proxies),
            regulation: Arc::new(Regulation::new(&config.regulation)),
            issuer: config.issuer(),
            public_scheme: public_scheme(&config),
            routes: RouteTable::new(&config),
            own_redirects: OwnRedirects::from_config(&config),
            sessions,
            grant_status,
            grants,
            verified_access,
            apps,
            keys,
            store,
            config,
        }
    }

    /// The state of a reloaded configuration. Kept: the store, the keys, the session and
    /// credential caches, replay protection, and providers whose settings did not change.
    /// Rebuilt: routes, trusted proxies, providers, tenants, lifetimes, and the mailer when
    /// `mail` changed (which needs a runtime context, as at start).
    pub fn reconfigured(&self, config: Arc<Config>) -> Result<State, MailError> {
        let mailer = if config.mail == self.config.mail {
            self.mailer.clone()
        } else {
            Arc::new(Mailer::new(&config)?)
        };
        Ok(State {
            store: self.store.clone(),
            keys: self.keys.clone(),
            sessions: self.sessions.reconfigured(&config),
            issuer: config.issuer(),
            public_scheme: public_scheme(&config),
            routes: RouteTable::new(&config),
            own_redirects: OwnRedirects::from_config(&config),
            grant_status: self.grant_status.clone(),
            grants: self.grants.clone(),
            apps: self.apps.clone(),
            verified_access: self.verified_access.clone(),
            credentials: self.credentials.clone(),
            trusted: TrustedProxies::new(&config.trusted_proxies),
            mailer,
            federation: Arc::new(self.federation.reconfigured(&config)),
            federation_used_states: self.federation_used_states.clone(),
            // Rate buckets survive a reload that leaves their settings alone.
            regulation: if config.regulation == self.config.regulation {
                self.regulation.clone()
            } else {
                Arc::new(Regulation::new(&config.regulation))
            },
            config,
        })
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
        self.grant_status.invalidate_all();
    }

    /// Forgets what this node cached about a grant (revoked here, or announced revoked).
    pub fn forget_grant(&self, gid: &str) {
        self.grant_status.invalidate(gid);
        self.grants.invalidate(gid);
    }

    /// Forgets everything this node caches about credentials, grants and apps (after the
    /// revocation listener lost its connection: announcements may have been missed). Verified
    /// access-token signatures are kept: their grant is checked on every use.
    pub fn forget_all_credentials(&self) {
        self.sessions.forget_all();
        self.credentials.forget_all();
        self.grant_status.invalidate_all();
        self.grants.invalidate_all();
        self.apps.invalidate_all();
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

/// The state in effect, replaced whole by a reload.
pub struct Live(ArcSwap<State>);

impl Live {
    /// Starts with this state.
    pub fn new(state: Arc<State>) -> Live {
        Live(ArcSwap::new(state))
    }

    /// The state in effect now (one atomic load and reference count).
    pub fn current(&self) -> Arc<State> {
        self.0.load_full()
    }

    /// Puts a new state in effect; requests already running keep the one they took.
    pub fn replace(&self, state: Arc<State>) {
        self.0.store(state);
    }
}

/// `public_url`'s scheme as a static string.
fn public_scheme(config: &Config) -> &'static str {
    if config.public_url().scheme() == "https" {
        "https"
    } else {
        "http"
    }
}
