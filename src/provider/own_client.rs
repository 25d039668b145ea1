//! frontdoor's own sign-in client (`client_id=frontdoor`): the redirect URIs it may use, fixed
//! by the configuration.

use url::Url;

/// The redirect URIs of frontdoor's own sign-in client: fixed when the configuration is
/// loaded, one per host that frontdoor signs people into (the host of `public_url`, every
/// tenant host, every route host named exactly), each with `public_url`'s scheme and port, at
/// `<reserved_prefix>callback`, which answers on app hosts and frontdoor's own hosts alike.
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
        bases.extend(config.sign_in_origins.iter().map(|o| o.0.clone()));
        let mut uris: Vec<Callback> = Vec::new();
        let path = callback_path(config);
        for mut uri in bases {
            uri.set_path(&path);
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

/// Path of the gateway's sign-in callback on every host it signs people into.
pub fn callback_path(config: &crate::config::Config) -> String {
    config.reserved_prefix.path("callback")
}

/// A host as configured or received, compared case-insensitively and without a trailing dot.
fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

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
