//! frontdoor's configuration for a test, built from typed parts and written as YAML by serde:
//! no test formats YAML by hand unless malformed or odd YAML is what it tests (those use
//! [`crate::harness::Frontdoor::start_yaml`]).
#![allow(dead_code)] // a builder: not every test uses every setter

use std::collections::BTreeMap;

use serde::Serialize;
use serde_yaml::{Mapping, Value};

use crate::harness::Upstream;

/// Where a route sends requests: a port on 127.0.0.1, a recording [`Upstream`], or a URL.
pub trait Target {
    fn url(&self) -> String;
}

impl Target for u16 {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{self}")
    }
}

impl Target for &Upstream {
    fn url(&self) -> String {
        self.port.url()
    }
}

impl Target for &str {
    fn url(&self) -> String {
        (*self).to_string()
    }
}

impl Target for String {
    fn url(&self) -> String {
        self.clone()
    }
}

/// The whole file. The listeners, the data dir and the thread count are filled in by the
/// harness unless a test sets them; `public_url` too (nodes of one cluster share one).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) admin_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) threads: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tenants: Vec<Tenant>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    identity_providers: Vec<Provider>,
    /// Every other setting, by its dotted path (see [`Config::set`]).
    #[serde(flatten)]
    settings: Mapping,
    routes: Vec<Route>,
}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    /// The three routes most tests use: `/` authenticated, `/public` public and `/admin` for
    /// group `admins`, all in front of `upstream`.
    pub fn standard(upstream: impl Target) -> Config {
        let u = upstream.url();
        Config::new()
            .route(Route::new("/", u.as_str()))
            .route(Route::new("/public", u.as_str()).public())
            .route(Route::new("/admin", u.as_str()).groups(["admins"]))
    }

    /// One authenticated route `/` in front of `upstream`.
    pub fn single(upstream: impl Target) -> Config {
        Config::new().route(Route::new("/", upstream))
    }

    pub fn route(mut self, route: Route) -> Config {
        self.routes.push(route);
        self
    }

    /// Tenant `id` served on `hosts`.
    pub fn tenant<const N: usize>(mut self, id: &str, hosts: [&str; N]) -> Config {
        self.tenants.push(Tenant {
            id: id.to_string(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        });
        self
    }

    pub fn federation(mut self, provider: Provider) -> Config {
        self.identity_providers.push(provider);
        self
    }

    /// The proxy, admin and data-dir settings the harness fills in, for a test that runs the
    /// binary itself.
    pub fn listeners(mut self, port: u16, admin_port: u16, data_dir: &std::path::Path) -> Config {
        self.listen = Some(format!("127.0.0.1:{port}"));
        self.admin_listen = Some(format!("127.0.0.1:{admin_port}"));
        self.data_dir = Some(data_dir.display().to_string());
        self.threads.get_or_insert(2);
        self
    }

    pub fn public_url(mut self, url: impl Into<String>) -> Config {
        self.public_url = Some(url.into());
        self
    }

    pub fn threads(mut self, threads: u32) -> Config {
        self.threads = Some(threads);
        self
    }

    /// A node of a cluster: the store at `store_url` and the key files in `keys_dir`, shared
    /// with the other nodes.
    pub fn shared(self, store_url: &str, keys_dir: &std::path::Path) -> Config {
        self.set("store", store_url)
            .set("keys.dir", keys_dir.display().to_string())
    }

    /// Any other setting by its dotted path, e.g. `set("session.ttl", "1h")` or
    /// `set("trusted_proxies", ["127.0.0.1"])`; maps on the way are created.
    pub fn set(mut self, path: &str, value: impl Serialize) -> Config {
        set_path(&mut self.settings, path, value);
        self
    }

    /// The file's text.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a test config serialises")
    }
}

fn set_path(map: &mut Mapping, path: &str, value: impl Serialize) {
    let value = serde_yaml::to_value(value).expect("a setting serialises");
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("a non-empty path");
    let mut here = map;
    for key in keys {
        let entry = here
            .entry(Value::from(key))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        here = entry
            .as_mapping_mut()
            .unwrap_or_else(|| panic!("{path}: {key} is already set to a value"));
    }
    here.insert(Value::from(last), value);
}

#[derive(Debug, Clone, Serialize)]
struct Tenant {
    id: String,
    hosts: Vec<String>,
}

/// One entry of `routes`; host `*` and policy authenticated unless set.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    host: String,
    path_prefix: String,
    upstream: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_contact_hash: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_timeout: Option<String>,
    /// Every other key of the route (`strip_authorization`, `host_header`, …).
    #[serde(flatten)]
    settings: Mapping,
}

impl Route {
    pub fn new(path_prefix: &str, upstream: impl Target) -> Route {
        Route {
            host: "*".into(),
            path_prefix: path_prefix.into(),
            upstream: upstream.url(),
            policy: None,
            groups: Vec::new(),
            roles: Vec::new(),
            allow_contact_hash: false,
            audience: None,
            headers: BTreeMap::new(),
            connect_timeout: None,
            read_timeout: None,
            settings: Mapping::new(),
        }
    }

    /// Any other key of the route, e.g. `set("strip_authorization", true)`.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Route {
        set_path(&mut self.settings, key, value);
        self
    }

    pub fn host(mut self, host: &str) -> Route {
        self.host = host.into();
        self
    }

    pub fn public(mut self) -> Route {
        self.policy = Some("public");
        self
    }

    pub fn groups<const N: usize>(mut self, groups: [&str; N]) -> Route {
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    pub fn roles<const N: usize>(mut self, roles: [&str; N]) -> Route {
        self.roles = roles.iter().map(|r| r.to_string()).collect();
        self
    }

    pub fn contact_hash(mut self) -> Route {
        self.allow_contact_hash = true;
        self
    }

    pub fn audience(mut self, audience: &str) -> Route {
        self.audience = Some(audience.into());
        self
    }

    /// Renames identity header `field` (`user`, `email`, …); an empty name sends none.
    pub fn header(mut self, field: &str, name: &str) -> Route {
        self.headers.insert(field.into(), name.into());
        self
    }

    pub fn connect_timeout(mut self, d: &str) -> Route {
        self.connect_timeout = Some(d.into());
        self
    }

    pub fn read_timeout(mut self, d: &str) -> Route {
        self.read_timeout = Some(d.into());
        self
    }
}

/// One entry of `identity_providers`.
#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    id: String,
    name: String,
    issuer: String,
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups_claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles_claim: Option<String>,
    /// Every other key (`provision`, `group_prefix`, `link_existing`, …).
    #[serde(flatten)]
    settings: Mapping,
}

impl Provider {
    pub fn new(id: &str, name: &str, issuer: &str, client_id: &str) -> Provider {
        Provider {
            id: id.into(),
            name: name.into(),
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            scopes: Vec::new(),
            groups_claim: None,
            roles_claim: None,
            settings: Mapping::new(),
        }
    }

    /// "Corp SSO" as the federation tests register it: client `fd` with secret `s3cret`,
    /// scopes with `groups`, groups and roles read from the claims of those names.
    pub fn corp(id: &str, issuer: &str) -> Provider {
        Provider::new(id, "Corp SSO", issuer, crate::scripted_idp::CLIENT_ID)
            .secret(crate::scripted_idp::CLIENT_SECRET)
            .scopes(["openid", "email", "profile", "groups"])
            .claims("groups", "roles")
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn secret(mut self, secret: &str) -> Provider {
        self.client_secret = Some(secret.into());
        self
    }

    pub fn scopes<const N: usize>(mut self, scopes: [&str; N]) -> Provider {
        self.scopes = scopes.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The claims that hold groups and roles.
    pub fn claims(mut self, groups: &str, roles: &str) -> Provider {
        self.groups_claim = Some(groups.into());
        self.roles_claim = Some(roles.into());
        self
    }

    pub fn provision(self, provision: bool) -> Provider {
        self.set("provision", provision)
    }

    /// Any other key of the entry (dotted paths as in [`Config::set`]).
    pub fn set(mut self, path: &str, value: impl Serialize) -> Provider {
        set_path(&mut self.settings, path, value);
        self
    }
}

/// Every typed part of the builder, read back by frontdoor's own loader: the YAML says what
/// the test meant, or a test would run against a config it never asked for.
#[test]
fn the_builder_writes_what_frontdoor_reads() {
    use std::time::Duration;

    use frontdoor::config::{Config as Loaded, HeaderField, Policy};

    let dir = tempfile::tempdir().expect("tempdir");
    let text = Config::standard(8080)
        .route(
            Route::new("/grafana", "http://127.0.0.1:3000")
                .host("wiki.localhost")
                .roles(["ROLE_EDITOR"])
                .contact_hash()
                .audience("reports")
                .header("user", "X-WEBAUTH-USER")
                .header("tenant", "")
                .connect_timeout("2s")
                .read_timeout("3s"),
        )
        .tenant("acme", ["acme.localhost"])
        .federation(
            Provider::corp("corp", "https://idp.example")
                .provision(true)
                .set("allowed_domains", ["example.com"]),
        )
        .listeners(8443, 9090, dir.path())
        .public_url("https://127.0.0.1:8443")
        .shared("sqlite://shared.db", dir.path())
        .set("session.cache_ttl", "1s")
        .set("trusted_proxies", ["127.0.0.1"])
        .to_yaml();
    let c = Loaded::from_yaml(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));

    assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(c.public_url.as_str(), "https://127.0.0.1:8443/");
    assert_eq!(c.threads, 2);
    assert_eq!(c.routes.len(), 4, "{text}");
    let [root, public, admin, grafana] = &c.routes[..] else {
        panic!("four routes");
    };
    assert_eq!((root.host.as_str(), root.path_prefix.as_str()), ("*", "/"));
    assert_eq!(
        root.policy,
        Policy::Authenticated,
        "authenticated by default"
    );
    assert_eq!(root.upstream.port, 8080);
    assert_eq!(public.policy, Policy::Public);
    assert_eq!(admin.groups, ["admins"]);
    assert_eq!(grafana.host, "wiki.localhost");
    assert_eq!(grafana.roles, ["ROLE_EDITOR"]);
    assert!(grafana.allow_contact_hash);
    assert_eq!(grafana.audience.as_deref(), Some("reports"));
    assert_eq!(grafana.headers[&HeaderField::User], "X-WEBAUTH-USER");
    assert_eq!(grafana.headers[&HeaderField::Tenant], "");
    assert_eq!(grafana.connect_timeout.0, Duration::from_secs(2));
    assert_eq!(grafana.read_timeout.0, Duration::from_secs(3));
    assert_eq!(c.tenants[0].id, "acme");
    assert_eq!(c.tenants[0].hosts, ["acme.localhost"]);
    let corp = &c.identity_providers[0];
    assert_eq!(corp.client_secret.as_deref(), Some("s3cret"));
    assert_eq!(corp.groups_claim.as_deref(), Some("groups"));
    assert!(corp.provision);
    assert_eq!(corp.allowed_domains, ["example.com"]);
    assert_eq!(c.store.as_deref(), Some("sqlite://shared.db"));
    assert_eq!(c.keys.dir.as_deref(), Some(dir.path()));
    assert_eq!(c.session.cache_ttl.0, Duration::from_secs(1));
    assert_eq!(c.trusted_proxies.len(), 1);
}
