//! Everything a request handler needs: a small core (configuration, store, keys, mail) and
//! the parts each module owns (sessions, credentials, grants, the gateway's routes, federation,
//! regulation). Built at start, and again from a reloaded configuration (keeping the store,
//! keys and caches). Each request takes the state in effect when it starts and keeps it to its
//! end.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::auth::cache::CredentialCache;
use crate::config::Config;
use crate::federation::Federation;
use crate::gateway::Edge;
use crate::grants::Grants;
use crate::keys::Keys;
use crate::mail::{MailError, Mailer};
use crate::provider::own_client::OwnRedirects;
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
    /// Issuer (public_url without trailing slash).
    pub issuer: String,
    /// Outgoing mail.
    pub mailer: Arc<Mailer>,
    /// Browser sessions (`session`).
    pub sessions: Sessions,
    /// Verified credentials: API tokens, bearer tokens, contact hashes (`auth`).
    pub credentials: CredentialCache,
    /// Access tokens, grants and apps (`grants`).
    pub grants: Grants,
    /// The redirect URIs of frontdoor's own sign-in client, fixed by the configuration
    /// (`provider::own_client`).
    pub own_redirects: OwnRedirects,
    /// Routes and trusted proxies (`gateway`).
    pub gateway: Edge,
    /// Upstream identity providers (`federation`).
    pub federation: Arc<Federation>,
    /// Failed sign-in counting, bans and per-address request rates (`regulation`).
    pub regulation: Arc<Regulation>,
    /// The passkeys' relying party (`factors::passkey`); `None` when `public_url` names no
    /// domain (passkeys are then off, said once at start).
    pub passkeys: Option<Arc<webauthn_rs::Webauthn>>,
}

impl State {
    /// Builds the state.
    pub fn new(config: Arc<Config>, store: DynStore, keys: Arc<Keys>, mailer: Mailer) -> State {
        State {
            sessions: Sessions::new(&config, store.clone(), keys.clone()),
            credentials: CredentialCache::new(&config),
            grants: Grants::new(&config, store.clone(), keys.clone()),
            own_redirects: OwnRedirects::from_config(&config),
            gateway: Edge::new(&config),
            federation: Arc::new(Federation::new(&config)),
            regulation: Arc::new(Regulation::new(&config.regulation)),
            passkeys: passkeys_of(&config),
            mailer: Arc::new(mailer),
            issuer: config.issuer(),
            keys,
            store,
            config,
        }
    }

    /// The state of a reloaded configuration. Kept: the store, the keys, the session,
    /// credential and grant caches, replay protection, and providers whose settings did not
    /// change. Rebuilt: routes, trusted proxies, providers, tenants, lifetimes, and the mailer
    /// when `mail` changed (which needs a runtime context, as at start).
    pub fn reconfigured(&self, config: Arc<Config>) -> Result<State, MailError> {
        let mailer = if config.mail == self.config.mail {
            self.mailer.clone()
        } else {
            Arc::new(Mailer::new(&config)?)
        };
        Ok(State {
            store: self.store.clone(),
            keys: self.keys.clone(),
            issuer: config.issuer(),
            mailer,
            sessions: self.sessions.reconfigured(&config),
            credentials: self.credentials.clone(),
            grants: self.grants.reconfigured(&config),
            own_redirects: OwnRedirects::from_config(&config),
            gateway: Edge::new(&config),
            federation: Arc::new(self.federation.reconfigured(&config)),
            // Rate buckets survive a reload that leaves their settings alone.
            regulation: if config.regulation == self.config.regulation {
                self.regulation.clone()
            } else {
                Arc::new(Regulation::new(&config.regulation))
            },
            passkeys: passkeys_of(&config),
            config,
        })
    }

    /// Forgets everything this node caches about credentials, grants and apps (after the
    /// revocation listener lost its connection: announcements may have been missed).
    pub fn forget_all_credentials(&self) {
        self.sessions.forget_all();
        self.credentials.forget_all();
        self.grants.forget_all();
    }

    /// Organisation name for pages.
    pub fn org(&self) -> &str {
        &self.config.organization
    }

    /// The stylesheet's path for the message and logout pages, which app hosts show too.
    pub fn style_href(&self) -> &str {
        self.config.reserved_prefix.style_href()
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

/// The passkeys' relying party of a configuration, or `None` (logged) when it has none.
fn passkeys_of(config: &Config) -> Option<Arc<webauthn_rs::Webauthn>> {
    crate::factors::passkey::relying_party(config)
        .inspect_err(|e| tracing::info!(reason = %e, "passkeys are off"))
        .ok()
}
