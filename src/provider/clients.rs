//! OAuth clients: registered apps and frontdoor's own gateway client; redirect URI matching.

use std::net::IpAddr;

use url::Url;

use crate::endpoint::Request;
use crate::state::State;
use crate::store::{App, StoreError};
use crate::tokens::OWN_CLIENT_ID;

/// A client that may start an authorization.
#[derive(Debug, Clone)]
pub enum Client {
    /// frontdoor's gateway, logging a browser into a proxied route.
    Own,
    /// A registered application.
    App(Box<App>),
}

impl Client {
    /// The client id.
    pub fn id(&self) -> &str {
        match self {
            Client::Own => OWN_CLIENT_ID,
            Client::App(a) => &a.client_id,
        }
    }

    /// Display name.
    pub fn name<'a>(&'a self, state: &'a State) -> &'a str {
        match self {
            Client::Own => state.org(),
            Client::App(a) => &a.name,
        }
    }

    /// Whether an authorization request must carry a PKCE challenge: for every client (RFC
    /// 9700 §2.1.1), frontdoor's own included, unless a confidential app was registered with
    /// the opt-out.
    pub fn requires_pkce(&self) -> bool {
        match self {
            Client::Own => true,
            Client::App(a) => a.public || !a.pkce_optional,
        }
    }

    /// First-party clients skip consent.
    pub fn skips_consent(&self) -> bool {
        match self {
            Client::Own => true,
            Client::App(a) => a.first_party,
        }
    }

    /// Whether the client may ask for this scope.
    pub fn allows_scope(&self, scope: &str) -> bool {
        match self {
            Client::Own => super::scopes::contains(super::scopes::OWN_CLIENT_SCOPE, scope),
            Client::App(a) => scope == "openid" || a.scopes.iter().any(|s| s == scope),
        }
    }
}

/// Finds an active client usable on this host's tenant; `None` when unknown, inactive or of
/// another tenant (indistinguishable on purpose).
pub async fn find_for_authorize(
    state: &State,
    req: &Request,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    if client_id == OWN_CLIENT_ID {
        return Ok(Some(Client::Own));
    }
    let Some(app) = state.store.get_app(client_id).await? else {
        return Ok(None);
    };
    let tenant = state.config.tenant_for_host(&req.host);
    if !app.active
        || app.tenant != tenant
        || !app.grant_types.iter().any(|g| g == "authorization_code")
    {
        return Ok(None);
    }
    Ok(Some(Client::App(Box::new(app))))
}

/// Whether `presented` is an allowed redirect URI of the client.
pub fn redirect_allowed(state: &State, client: &Client, presented: &str) -> bool {
    match client {
        Client::Own => own_redirect_allowed(state, presented),
        Client::App(app) => registered_match(&app.redirect_uris, presented),
    }
}

/// Exact match against the registered URIs; for loopback IP literals over http only the port
/// may differ (RFC 8252 §7.3).
pub fn registered_match(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(p) = Url::parse(presented) else {
        return false;
    };
    if p.scheme() != "http" || !is_loopback_literal(&p) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|r| {
            r.scheme() == "http"
                && is_loopback_literal(&r)
                && r.host() == p.host()
                && r.path() == p.path()
                && r.query() == p.query()
                && r.fragment().is_none()
                && p.fragment().is_none()
                && r.username() == p.username()
                && r.password() == p.password()
        })
}

fn is_loopback_literal(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        _ => false,
    }
}

fn own_redirect_allowed(state: &State, presented: &str) -> bool {
    state.own_redirects.contains(presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_and_loopback_port_only() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/cb".to_string(),
        ];
        assert!(registered_match(&reg, "https://app.example/cb"));
        assert!(!registered_match(&reg, "https://app.example/cb/"));
        assert!(!registered_match(&reg, "https://app.example/cb?x=1"));
        assert!(!registered_match(&reg, "http://app.example/cb"));
        assert!(!registered_match(&reg, "https://app.example:444/cb"));
        assert!(!registered_match(&reg, "https://app.example.evil/cb"));
        assert!(registered_match(&reg, "http://127.0.0.1:53124/cb"));
        assert!(!registered_match(&reg, "http://127.0.0.1:53124/other"));
        assert!(!registered_match(&reg, "http://localhost:53124/cb"));
    }
}
