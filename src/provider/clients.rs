//! OAuth clients: registered apps and frontdoor's own gateway client; redirect URI matching.

use std::net::IpAddr;

use url::Url;

use crate::endpoint::Request;
use crate::state::State;
use crate::store::{App, StoreError};

/// The client id of frontdoor's own gateway (its codes are exchanged internally).
pub const OWN_CLIENT_ID: &str = "frontdoor";

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

/// Path of the gateway's sign-in callback on every host it signs people into.
pub const OWN_CALLBACK_PATH: &str = "/_frontdoor/callback";

/// The redirect URIs of frontdoor's own sign-in client: fixed when the configuration is
/// loaded, one per host that frontdoor signs people into (the host of `public_url`, every
/// tenant host, every route host named exactly), each with `public_url`'s scheme and port.
///
/// Never derived from a request: a code for the own client is only ever sent to a host the
/// operator named, so a `Host` header (or a `*` route) cannot make frontdoor mail a victim's
/// code to a host an attacker controls.
#[derive(Debug, Clone, Default)]
pub struct OwnRedirects {
    /// Each URI with its normalised host and its authority (`host[:port]`, default port left out).
    uris: Vec<Callback>,
}

#[derive(Debug, Clone)]
struct Callback {
    host: String,
    authority: String,
    uri: String,
}

impl OwnRedirects {
    /// The set for a configuration; `sign_in_origins` add app hosts that a proxy in front serves
    /// on another scheme or port.
    pub fn from_config(config: &crate::config::Config) -> OwnRedirects {
        let public = config.public_url();
        let hosts = public
            .host_str()
            .map(str::to_string)
            .into_iter()
            .chain(config.tenants.iter().flat_map(|t| t.hosts.iter().cloned()))
            .chain(
                config
                    .routes
                    .iter()
                    .filter(|r| r.host != "*")
                    .map(|r| r.host.clone()),
            );
        let mut bases: Vec<Url> = Vec::new();
        for host in hosts {
            let mut base = public.clone();
            if base.set_host(Some(&normal_host(&host))).is_ok() {
                bases.push(base);
            }
        }
        bases.extend(
            config
                .sign_in_origins
                .iter()
                .filter_map(|o| Url::parse(o).ok()),
        );
        let mut uris: Vec<Callback> = Vec::new();
        for mut uri in bases {
            uri.set_path(OWN_CALLBACK_PATH);
            uri.set_query(None);
            uri.set_fragment(None);
            let Some(host) = uri.host_str().map(normal_host) else {
                continue;
            };
            let authority = match uri.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            };
            let uri = String::from(uri);
            if host.is_empty() || uris.iter().any(|c| c.uri == uri) {
                continue;
            }
            uris.push(Callback {
                host,
                authority,
                uri,
            });
        }
        OwnRedirects { uris }
    }

    /// The callback URI for a request on `host` (no port), addressed as `authority`, when
    /// frontdoor signs people in there: the one on the same port when several are registered
    /// for the host. The request only picks among registered URIs; it never makes one.
    pub fn for_host(&self, host: &str, authority: &str) -> Option<&str> {
        let host = normal_host(host);
        let authority = authority.to_ascii_lowercase();
        let mut on_host = self.uris.iter().filter(|c| c.host == host);
        let first = on_host.clone().next();
        on_host
            .find(|c| c.authority == authority)
            .or(first)
            .map(|c| c.uri.as_str())
    }

    /// Whether `presented` is exactly one of the URIs (scheme, host, port and path).
    pub fn contains(&self, presented: &str) -> bool {
        self.uris.iter().any(|c| c.uri == presented)
    }

    /// Every URI, for logs and tests.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.uris.iter().map(|c| c.uri.as_str())
    }
}

/// A host as configured or received, compared case-insensitively and without a trailing dot.
fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
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

    fn config(yaml: &str) -> crate::config::Config {
        crate::config::Config::from_yaml(yaml).expect("valid config")
    }

    #[test]
    fn own_redirects_are_the_named_hosts_with_the_public_scheme_and_port() {
        let c = config(
            "listen: 127.0.0.1:8080\n\
             admin_listen: 127.0.0.1:9090\n\
             public_url: https://sso.example.com:8443/\n\
             tenants: [{ id: acme, hosts: [Acme.Example.com] }]\n\
             routes:\n\
             - { host: '*', path_prefix: /, upstream: 'http://127.0.0.1:1' }\n\
             - { host: wiki.example.com, path_prefix: /, upstream: 'http://127.0.0.1:1' }\n",
        );
        let own = OwnRedirects::from_config(&c);
        let all: Vec<&str> = own.all().collect();
        assert_eq!(
            all,
            [
                "https://sso.example.com:8443/_frontdoor/callback",
                "https://acme.example.com:8443/_frontdoor/callback",
                "https://wiki.example.com:8443/_frontdoor/callback",
            ]
        );
        assert_eq!(
            own.for_host("ACME.example.com.", "ACME.example.com.:8443"),
            Some("https://acme.example.com:8443/_frontdoor/callback")
        );
        // A `*` route serves evil.example but does not sign anyone in there.
        assert_eq!(own.for_host("evil.example", "evil.example"), None);
        assert!(!own.contains("https://evil.example:8443/_frontdoor/callback"));
        // Scheme, port and path compared exactly.
        assert!(!own.contains("http://sso.example.com:8443/_frontdoor/callback"));
        assert!(!own.contains("https://sso.example.com:1/_frontdoor/callback"));
        assert!(!own.contains("https://sso.example.com/_frontdoor/callback"));
        assert!(!own.contains("https://sso.example.com:8443/_frontdoor/callback?x=1"));
    }

    #[test]
    fn sign_in_origins_add_a_port_for_a_named_host_and_the_request_picks_among_them() {
        let c = config(
            "listen: 127.0.0.1:8080\n\
             admin_listen: 127.0.0.1:9090\n\
             public_url: http://127.0.0.1:8080\n\
             sign_in_origins: ['http://127.0.0.1:8443', 'https://wiki.example.com']\n",
        );
        let own = OwnRedirects::from_config(&c);
        assert_eq!(
            own.for_host("127.0.0.1", "127.0.0.1:8443"),
            Some("http://127.0.0.1:8443/_frontdoor/callback")
        );
        assert_eq!(
            own.for_host("127.0.0.1", "127.0.0.1:9999"),
            Some("http://127.0.0.1:8080/_frontdoor/callback")
        );
        assert_eq!(
            own.for_host("wiki.example.com", "wiki.example.com"),
            Some("https://wiki.example.com/_frontdoor/callback")
        );
        assert!(
            crate::config::Config::from_yaml(
                "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://x\nsign_in_origins: ['https://wiki.example.com/path']\n"
            )
            .is_err()
        );
    }
}
