//! The YAML configuration: schema, `${VAR}` expansion and validation with key paths.

mod accounts;
mod addr;
mod assertion;
mod duration;
mod log;
mod prefix;
mod second_factor;
mod secret_file;
mod tls;
mod webauthn;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use url::Url;

pub use accounts::AccountsConfig;
pub use addr::{ListenAddr, Origin};
pub use assertion::{Assertion, AssertionConfig, MAX_ASSERTION_LIFETIME};
pub use duration::Dur;
pub use log::{LogConfig, LogFormat, LogLevel};
pub use prefix::{OWN_HOST_PATHS, OWN_PREFIX, ReservedPrefix};
pub use second_factor::SecondFactor;
pub use tls::{HstsConfig, TlsConfig, UpstreamTls};
pub use webauthn::{WebauthnConfig, suffix_of};

/// A configuration that could not be loaded; each problem names its key path.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// One or more keys are wrong.
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// One problem in the configuration, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `routes[0].upstream`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Proxy and provider listener.
    pub listen: ListenAddr,
    /// Admin listener: /metrics, /healthz, /readyz.
    pub admin_listen: ListenAddr,
    /// Where the provider's endpoints are reached; the issuer. Parsed at load (a value that is
    /// not a URL is refused with its key), never again.
    pub public_url: Url,
    /// SQLite file, generated keys, mail outbox.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `postgres://…` instead of the embedded SQLite file.
    #[serde(default)]
    pub store: Option<String>,
    /// A file holding `store` (a DSN with a password), read at start and on reload.
    #[serde(default)]
    pub store_file: Option<PathBuf>,
    /// Organisation name shown on pages.
    #[serde(default = "default_org")]
    pub organization: String,
    /// Session cookie and lifetimes.
    #[serde(default)]
    pub session: SessionConfig,
    /// Token lifetimes.
    #[serde(default)]
    pub tokens: TokenConfig,
    /// Signing keys.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Tenants and the hosts they serve.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// The second-factor policy of the default tenant and of tenants without their own.
    #[serde(default)]
    pub second_factor: SecondFactor,
    /// Upstream OpenID Connect identity providers.
    #[serde(default)]
    pub identity_providers: Vec<IdentityProviderConfig>,
    /// Addresses whose `X-Forwarded-*` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<ProxyNet>,
    /// Origins (`scheme://host[:port]`) of app hosts that a proxy in front of frontdoor serves on
    /// another scheme or port than `public_url`'s (forward-auth behind nginx, Caddy, Traefik):
    /// frontdoor's sign-in round trip may also end at `<origin><reserved_prefix>callback`.
    #[serde(default)]
    pub sign_in_origins: Vec<Origin>,
    /// The one path prefix frontdoor keeps on hosts that only route to an app (not the host of
    /// `public_url` nor a tenant's): its sign-in callback, logout, forward-auth and assets.
    /// Everything else on those hosts goes to the app.
    #[serde(default)]
    pub reserved_prefix: ReservedPrefix,
    /// Proxied routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Worker threads of the proxy listener.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Whether the proxy's threads share one work-stealing runtime (`true`, the default) or
    /// each run a runtime of its own that keeps the connections it accepted.
    #[serde(default = "default_work_stealing")]
    pub work_stealing: bool,
    /// Outgoing mail (one-time codes, notifications).
    #[serde(default)]
    pub mail: MailConfig,
    /// Emailed one-time login codes.
    #[serde(default)]
    pub otp: OtpConfig,
    /// An account's life: the lifetimes of password-reset and invitation links.
    #[serde(default)]
    pub accounts: AccountsConfig,
    /// Passkeys: the relying party id.
    #[serde(default)]
    pub webauthn: WebauthnConfig,
    /// Brute-force regulation: failed sign-ins per account and per client address, and
    /// per-address request rates of the token and sign-in endpoints.
    #[serde(default)]
    pub regulation: RegulationConfig,
    /// Draining on `SIGTERM`.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// How slowly a client may send a request (slow-header and slow-body attacks).
    #[serde(default)]
    pub client_timeouts: ClientTimeouts,
    /// HTTPS on `listen`, the redirect listener and HSTS.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Largest identity header (`X-Auth-Request-Groups` and the others) sent to an upstream,
    /// in bytes; a request whose identity would need a larger one is refused instead (many
    /// servers refuse large headers, and a cut list of groups would be a different identity).
    #[serde(default = "default_max_identity_header_bytes")]
    pub max_identity_header_bytes: usize,
    /// Log format, level and the access log.
    #[serde(default)]
    pub log: LogConfig,
}

/// Brute-force regulation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegulationConfig {
    /// How long a failed sign-in counts (a window from the first failure in it).
    pub window: Dur,
    /// Failed sign-ins (password or one-time code) on one account from one client address
    /// within the window that ban that address from that account (never the account itself,
    /// so that nobody can lock its owner out); 0 turns this off.
    pub max_failures_per_account: u32,
    /// Failed sign-ins from one client address within the window that ban the address;
    /// 0 turns this off.
    pub max_failures_per_ip: u32,
    /// How long a ban lasts.
    pub ban: Dur,
    /// One-time code mails per account within the window (more asks get the same answer and
    /// no mail); 0 turns this off.
    pub max_code_mails_per_account: u32,
    /// One-time code mails asked from one client address within the window; 0 turns this off.
    pub max_code_mails_per_ip: u32,
    /// Requests per client address to the token endpoints (`/oauth/token`,
    /// `/api/v1/token/refresh`), on each node.
    pub token_rate: RateConfig,
    /// Requests per client address to the sign-in endpoints (login form, login API, one-time
    /// codes), on each node.
    pub login_rate: RateConfig,
}

impl Default for RegulationConfig {
    fn default() -> Self {
        Self {
            window: Dur(Duration::from_secs(600)),
            max_failures_per_account: 20,
            max_failures_per_ip: 100,
            ban: Dur(Duration::from_secs(900)),
            max_code_mails_per_account: 5,
            max_code_mails_per_ip: 20,
            token_rate: RateConfig {
                per_second: 500,
                burst: None,
            },
            login_rate: RateConfig {
                per_second: 50,
                burst: None,
            },
        }
    }
}

/// A request rate per client address: a token bucket refilled at `per_second`, holding `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Sustained requests per second; 0 turns the limit off.
    pub per_second: u32,
    /// Requests allowed at once (default: twice `per_second`).
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateConfig {
    /// The bucket size.
    pub fn burst(&self) -> u32 {
        self.burst
            .unwrap_or_else(|| self.per_second.saturating_mul(2))
    }
}

/// Bounds on how slowly a client may send a request, like Apache's `mod_reqtimeout`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTimeouts {
    /// The whole request header, counted from the end of the previous request on a kept-alive
    /// connection (so also the longest idle time of one, as Apache's `KeepAliveTimeout`).
    /// Read at start: a change needs a restart.
    pub header: Dur,
    /// A request body: the longest pause between two reads, and the time a body gets before
    /// `body_min_rate` applies.
    pub body: Dur,
    /// After `body`, every `body_min_rate` bytes received buy one more second; 0 turns the
    /// rate off (the pause bound stays).
    pub body_min_rate: u32,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            header: Dur(Duration::from_secs(10)),
            body: Dur(Duration::from_secs(20)),
            body_min_rate: 500,
        }
    }
}

impl ClientTimeouts {
    /// Whether a body that started at `start` and has brought `received` bytes so far is
    /// behind its allowance.
    pub fn body_too_slow(&self, start: std::time::Instant, received: u64) -> bool {
        if self.body_min_rate == 0 {
            return false;
        }
        let earned = Duration::from_secs_f64(received as f64 / f64::from(self.body_min_rate));
        start.elapsed() > self.body.0 + earned
    }
}

/// How `SIGTERM` ends the process.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Longest wait for in-flight requests after `SIGTERM` before the process exits anyway.
    pub grace_period: Dur,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace_period: Dur(Duration::from_secs(30)),
        }
    }
}

/// Outgoing mail: the outbox directory by default, SMTP when `smtp` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Sender, e.g. `frontdoor <noreply@example.com>`.
    pub from: String,
    /// SMTP server; without it mail goes to `data_dir/outbox/`, one .eml per message.
    pub smtp: Option<SmtpConfig>,
    /// Template (minijinja) of the message sent to an app's owner when it is created;
    /// the built-in one is `config/templates/app_created.txt`.
    pub app_created_template: Option<PathBuf>,
    /// A directory of files that override the built-in mail templates by name
    /// (`one_time_code.txt`, `password_reset.txt`, `invitation.txt`), each checked at load.
    pub templates_dir: Option<PathBuf>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "frontdoor <noreply@localhost>".into(),
            smtp: None,
            app_created_template: None,
            templates_dir: None,
        }
    }
}

/// An SMTP relay.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name.
    pub host: String,
    /// Port (587 for STARTTLS, 465 for TLS).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default), `tls` (implicit) or `none` (local relays only).
    #[serde(default)]
    pub tls: SmtpTls,
    /// User name for AUTH.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for AUTH (use `${VAR}` or `password_file`).
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding `password`, read at start and on reload.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM file of a CA to trust for the server's certificate (an internal CA), besides the
    /// usual public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    587
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Upgrade with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// Plain text (a relay on localhost).
    None,
}

/// One-time login codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtpConfig {
    /// How long a code is valid.
    pub ttl: Dur,
    /// Wrong tries before a code is dead.
    pub max_attempts: u32,
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            ttl: Dur(Duration::from_secs(600)),
            max_attempts: 5,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_org() -> String {
    "frontdoor".into()
}
fn default_max_identity_header_bytes() -> usize {
    8192
}

/// A header name frontdoor adds to proxied requests (an identity header, the assertion): a
/// valid name, and not one that decides how the request is framed or its connection handled,
/// which frontdoor writes straight into the request's wire form, past the code that reads those
/// (`RequestHeader::push_header`).
fn header_to_send(text: &str) -> Result<http::HeaderName, String> {
    match http::HeaderName::from_bytes(text.as_bytes()) {
        Err(_) => Err(format!("`{text}` is not a valid header name")),
        Ok(n) if pingora::http::is_framing_header(&n) => Err(format!(
            "`{text}` is a framing or hop-by-hop header, not one frontdoor may add"
        )),
        Ok(n) => Ok(n),
    }
}

fn default_work_stealing() -> bool {
    true
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Session settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Absolute lifetime of a session.
    pub ttl: Dur,
    /// A session unused this long ends.
    pub idle_timeout: Dur,
    /// Name of the session cookie.
    pub cookie_name: String,
    /// `auto` (Secure when public_url is https or `tls` is set), `true` or `false`.
    pub secure: SecureMode,
    /// How long a node may serve a session from its cache before re-reading the store.
    pub cache_ttl: Dur,
    /// Most sessions held in each node's cache.
    pub cache_capacity: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl: Dur(Duration::from_secs(12 * 3600)),
            idle_timeout: Dur(Duration::from_secs(2 * 3600)),
            cookie_name: "frontdoor_session".into(),
            secure: SecureMode::Auto,
            cache_ttl: Dur(Duration::from_secs(5)),
            cache_capacity: 1_000_000,
        }
    }
}

/// Whether cookies carry the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureMode {
    /// Secure when `public_url` is https or frontdoor serves TLS itself.
    Auto,
    /// Always Secure.
    Always,
    /// Never Secure.
    Never,
}

impl<'de> Deserialize<'de> for SecureMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(SecureMode::Always),
            Raw::Bool(false) => Ok(SecureMode::Never),
            Raw::Text(t) if t == "auto" => Ok(SecureMode::Auto),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "`{t}` is not auto, true or false"
            ))),
        }
    }
}

/// Token lifetimes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access tokens (JWT) lifetime.
    pub access_token_ttl: Dur,
    /// Refresh tokens lifetime.
    pub refresh_token_ttl: Dur,
    /// Authorization codes lifetime.
    pub code_ttl: Dur,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Dur(Duration::from_secs(3600)),
            refresh_token_ttl: Dur(Duration::from_secs(30 * 24 * 3600)),
            code_ttl: Dur(Duration::from_secs(60)),
        }
    }
}

/// Signing keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Generate a signing key into the keys directory when none exists.
    pub generate: bool,
    /// Algorithm of a generated signing key, `RS256` (default) or `ES256`; an existing key
    /// file must hold a key of this algorithm.
    pub algorithm: crate::keys::SigningAlgorithm,
    /// Where the signing and cookie keys live (default `data_dir/keys`). Nodes sharing one
    /// PostgreSQL store point this at the same files.
    pub dir: Option<PathBuf>,
    /// How long a key made by `frontdoor keys rotate` is published (and opens cookies) before
    /// it signs and seals: every node re-reads the folder and relying parties refresh their
    /// JWKS caches meanwhile.
    pub rotation_delay: Dur,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            generate: true,
            algorithm: crate::keys::SigningAlgorithm::RS256,
            dir: None,
            rotation_delay: Dur(Duration::from_secs(3600)),
        }
    }
}

impl Config {
    /// The directory of the signing and cookie keys.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }
}

/// A tenant and the hosts that belong to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Tenant id.
    pub id: String,
    /// Hosts (without port) served for this tenant.
    pub hosts: Vec<String>,
    /// This tenant's second-factor policy; the top-level `second_factor` without one.
    #[serde(default)]
    pub second_factor: Option<SecondFactor>,
}

/// An upstream OpenID Connect identity provider (Google, Microsoft Entra ID, Keycloak, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderConfig {
    /// Short id, used in URLs: the redirect URI is `<public_url>/_frontdoor/idp/<id>/callback`.
    pub id: String,
    /// Display name on the login page.
    pub name: String,
    /// Issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// Client id registered at the provider.
    pub client_id: String,
    /// Client secret registered at the provider (use `${VAR}` or `client_secret_file`).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding `client_secret`, read at start and on reload.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes to ask for.
    #[serde(default = "default_idp_scopes")]
    pub scopes: Vec<String>,
    /// Claim that holds groups (an array or a string), e.g. `groups`.
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Claim that holds roles, e.g. `roles`.
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// Prefix added to every group taken from the provider.
    #[serde(default)]
    pub group_prefix: String,
    /// Provider group → frontdoor group; when set, unmapped groups are dropped.
    #[serde(default)]
    pub group_map: BTreeMap<String, String>,
    /// Provider role → frontdoor role; when set, unmapped roles are dropped.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// Roles of users created on first login.
    #[serde(default = "default_roles")]
    pub default_roles: Vec<String>,
    /// Only emails of these domains may sign in (empty: any).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Create unknown users on first login (just-in-time provisioning).
    #[serde(default)]
    pub provision: bool,
    /// Tenant of users of this provider (default: the tenant of the public URL's host).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Where the provider sends people after logging out there (must be registered with it).
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
    /// Whether a verified email from this provider signs into the existing local account with
    /// that address (and links the provider's `sub` to it). `true` (the default) trusts the
    /// provider for every address of the tenant, local administrators included; set `false`
    /// for a provider that is not trusted for every address: it then signs in only the
    /// accounts it created or was linked to by an administrator.
    #[serde(default = "yes")]
    pub link_existing: bool,
    /// Most groups, and most roles, a sign-in may carry; more refuses the sign-in (a cut list
    /// could drop a group that a deny rule names).
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
    /// Longest name, group or role (characters): a longer name is cut, a longer group or role
    /// refuses the sign-in.
    #[serde(default = "default_max_claim_length")]
    pub max_claim_length: usize,
    /// Largest answer read from the provider (discovery, keys, token, userinfo), in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// How often at most the provider's keys are fetched again for a token signed with an
    /// unknown key (shared by every request; unauthenticated callers cannot make more).
    #[serde(default = "default_key_refetch_interval")]
    pub key_refetch_interval: Dur,
}

fn yes() -> bool {
    true
}
fn default_max_groups() -> usize {
    100
}
fn default_max_claim_length() -> usize {
    256
}
fn default_max_response_bytes() -> usize {
    128 * 1024
}
fn default_key_refetch_interval() -> Dur {
    Dur(Duration::from_secs(60))
}

fn default_idp_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_roles() -> Vec<String> {
    vec!["ROLE_USER".into()]
}

/// Who may pass a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Anyone; identity headers still stripped.
    Public,
    /// A valid credential is required.
    Authenticated,
}

/// One proxied route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Host to match (without port), `*` for any.
    pub host: String,
    /// Longest prefix wins.
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    /// `http://host:port` of the upstream, parsed at load.
    pub upstream: Upstream,
    /// public or authenticated.
    #[serde(default = "default_policy")]
    pub policy: Policy,
    /// Caller must be in one of these groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Caller must have one of these roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// X-Contact-Hash accepted here.
    #[serde(default)]
    pub allow_contact_hash: bool,
    /// Bearer tokens must carry this `aud`; without it, tokens issued for frontdoor itself (the issuer).
    #[serde(default)]
    pub audience: Option<String>,
    /// Ordered access rules, the first match deciding (`gateway::rules`); without them the
    /// route's `policy`, `groups` and `roles` decide.
    #[serde(default)]
    pub rules: Vec<crate::gateway::rules::Rule>,
    /// Renamed identity headers, e.g. `{ user: X-WEBAUTH-USER }`; an empty name sends none.
    #[serde(default)]
    pub headers: BTreeMap<HeaderField, String>,
    /// Upstream connect timeout.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Upstream read timeout.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: Dur,
    /// A signed identity assertion (JWT) for the upstream, in its own header.
    #[serde(default)]
    pub assertion: Assertion,
    /// Send the client's `Host` upstream (the default); `false` sends the upstream's own
    /// `host[:port]`, for apps that only answer to their own name.
    #[serde(default = "yes")]
    pub preserve_host: bool,
    /// The `Host` sent upstream in place of the client's (wins over `preserve_host`).
    #[serde(default)]
    pub host_header: Option<String>,
    /// TLS towards an `https` upstream: the CA file to trust and the SNI name.
    #[serde(default)]
    pub upstream_tls: Option<UpstreamTls>,
    /// Remove `path_prefix` from the path sent upstream (`/wiki/a` → `/a`).
    #[serde(default)]
    pub strip_prefix: bool,
    /// Drop the client's `Authorization` header before the request goes upstream (apps that
    /// would otherwise read a bearer token or Basic credentials meant for frontdoor).
    #[serde(default)]
    pub strip_authorization: bool,
}

fn default_prefix() -> String {
    "/".into()
}
fn default_policy() -> Policy {
    Policy::Authenticated
}
fn default_connect_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_read_timeout() -> Dur {
    Dur(Duration::from_secs(60))
}

/// The identity headers frontdoor injects, by their short name in `routes[].headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderField {
    /// X-Auth-Request-User
    User,
    /// X-Auth-Request-Email
    Email,
    /// X-Auth-Request-Name
    Name,
    /// X-Auth-Request-Groups
    Groups,
    /// X-Auth-Request-Roles
    Roles,
    /// X-Auth-Request-Tenant
    Tenant,
    /// X-Auth-Request-Access
    Access,
    /// X-Auth-Request-Amr: how the session was authenticated (`pwd`, `otp`, `mfa`), sessions only.
    Amr,
}

impl HeaderField {
    /// Every field, in injection order.
    pub const ALL: [HeaderField; 8] = [
        HeaderField::User,
        HeaderField::Email,
        HeaderField::Name,
        HeaderField::Groups,
        HeaderField::Roles,
        HeaderField::Tenant,
        HeaderField::Access,
        HeaderField::Amr,
    ];

    /// The default header name.
    pub fn default_name(self) -> &'static str {
        match self {
            HeaderField::User => "X-Auth-Request-User",
            HeaderField::Email => "X-Auth-Request-Email",
            HeaderField::Name => "X-Auth-Request-Name",
            HeaderField::Groups => "X-Auth-Request-Groups",
            HeaderField::Roles => "X-Auth-Request-Roles",
            HeaderField::Tenant => "X-Auth-Request-Tenant",
            HeaderField::Access => "X-Auth-Request-Access",
            HeaderField::Amr => "X-Auth-Request-Amr",
        }
    }
}

impl Config {
    /// Reads, expands and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Where a running server of the file at `path` keeps its pid file and admin listener,
    /// read leniently (other keys may be invalid): what `frontdoor reload` needs to reach it.
    pub fn locate(path: &Path) -> Result<Location, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // A variable missing elsewhere in the file is the server's to report.
        let expanded = expand_env(&text).unwrap_or(text);
        serde_yaml::from_str::<Location>(&expanded).map_err(|e| {
            ConfigError::Invalid(vec![Problem {
                key: String::new(),
                message: e.to_string(),
            }])
        })
    }

    /// Parses and validates configuration text.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let expanded = expand_env(text).map_err(ConfigError::Invalid)?;
        let mut config: Config =
            serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(&expanded))
                .map_err(|e| {
                    let key = e.path().to_string();
                    ConfigError::Invalid(vec![Problem {
                        key: if key == "." { String::new() } else { key },
                        message: strip_yaml_path(&e.into_inner().to_string()),
                    }])
                })?;
        let mut problems = config.read_secret_files();
        problems.extend(config.validate());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Fills every secret given in its `_file` form from its file.
    fn read_secret_files(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        problems.extend(secret_file::resolve(
            &mut self.store,
            self.store_file.as_deref(),
            "store",
        ));
        if let Some(smtp) = &mut self.mail.smtp {
            problems.extend(secret_file::resolve(
                &mut smtp.password,
                smtp.password_file.as_deref(),
                "mail.smtp.password",
            ));
        }
        for (i, idp) in self.identity_providers.iter_mut().enumerate() {
            problems.extend(secret_file::resolve(
                &mut idp.client_secret,
                idp.client_secret_file.as_deref(),
                &format!("identity_providers[{i}].client_secret"),
            ));
        }
        problems
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut bad = |key: String, message: String| p.push(Problem { key, message });
        let u = &self.public_url;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            bad("public_url".into(), format!("`{u}` is not an http(s) URL"));
        } else if u.query().is_some() || u.fragment().is_some() {
            bad(
                "public_url".into(),
                "must not have a query or fragment".into(),
            );
        }
        if let Some(store) = &self.store
            && !store.starts_with("postgres://")
            && !store.starts_with("postgresql://")
            && !store.starts_with("sqlite:")
        {
            bad(
                "store".into(),
                "must be a postgres:// or sqlite: URL".into(),
            );
        }
        if self.session.cookie_name.is_empty()
            || !self
                .session
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            bad(
                "session.cookie_name".into(),
                "must be letters, digits, `_` or `-`".into(),
            );
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            bad(
                "mail.from".into(),
                format!(
                    "`{}` is not a mailbox such as `frontdoor <noreply@example.com>`",
                    self.mail.from
                ),
            );
        }
        if let Some(dir) = &self.mail.templates_dir {
            if dir.is_dir() {
                for e in crate::mail_templates::check_dir(dir) {
                    bad("mail.templates_dir".into(), e.to_string());
                }
            } else {
                bad(
                    "mail.templates_dir".into(),
                    format!("{} is not a directory", dir.display()),
                );
            }
        }
        for (key, message) in self.accounts.problems() {
            bad(key, message);
        }
        for (key, message) in self
            .webauthn
            .problems(self.public_url.host_str().unwrap_or(""))
        {
            bad(key, message);
        }
        if self.otp.max_attempts == 0 {
            bad("otp.max_attempts".into(), "must be at least 1".into());
        }
        if self.threads == 0 {
            bad("threads".into(), "must be at least 1".into());
        }
        let reg = &self.regulation;
        for (key, d) in [
            ("regulation.window", reg.window),
            ("regulation.ban", reg.ban),
        ] {
            if d.0 < Duration::from_secs(1) {
                bad(key.into(), "must be at least 1s".into());
            }
        }
        for (key, rate) in [
            ("regulation.token_rate.burst", reg.token_rate),
            ("regulation.login_rate.burst", reg.login_rate),
        ] {
            if rate.per_second > 0 && rate.burst() == 0 {
                bad(key.into(), "must be at least 1".into());
            }
        }
        for (key, d) in [
            ("client_timeouts.header", self.client_timeouts.header.0),
            ("client_timeouts.body", self.client_timeouts.body.0),
        ] {
            if d.is_zero() || d > Duration::from_secs(3600) {
                bad(key.into(), "must be between 1s and 1h".into());
            }
        }
        if self.shutdown.grace_period.0 > Duration::from_secs(3600) {
            bad("shutdown.grace_period".into(), "must be at most 1h".into());
        }
        for (i, t) in self.tenants.iter().enumerate() {
            if t.id.is_empty() {
                bad(format!("tenants[{i}].id"), "must not be empty".into());
            }
            if t.hosts.is_empty() {
                bad(
                    format!("tenants[{i}].hosts"),
                    "must list at least one host".into(),
                );
            }
            for (j, h) in t.hosts.iter().enumerate() {
                if !matches!(crate::gateway::host::parse(h), Ok(p) if p.port.is_none()) {
                    bad(
                        format!("tenants[{i}].hosts[{j}]"),
                        format!("`{h}` is not a host name (without port)"),
                    );
                }
            }
        }
        for (i, idp) in self.identity_providers.iter().enumerate() {
            if idp.id.is_empty()
                || !idp
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                bad(
                    format!("identity_providers[{i}].id"),
                    "must be lowercase letters, digits, `-` or `_`".into(),
                );
            }
            if self.identity_providers[..i].iter().any(|o| o.id == idp.id) {
                bad(
                    format!("identity_providers[{i}].id"),
                    format!("`{}` is used twice", idp.id),
                );
            }
            if !matches!(Url::parse(&idp.issuer), Ok(u) if matches!(u.scheme(), "http" | "https")) {
                bad(
                    format!("identity_providers[{i}].issuer"),
                    format!("`{}` is not an http(s) URL", idp.issuer),
                );
            }
            if idp.key_refetch_interval.0 < Duration::from_secs(1) {
                bad(
                    format!("identity_providers[{i}].key_refetch_interval"),
                    "must be at least 1s (it bounds what unauthenticated requests can fetch)"
                        .into(),
                );
            }
            for (key, value) in [
                ("max_groups", idp.max_groups),
                ("max_claim_length", idp.max_claim_length),
                ("max_response_bytes", idp.max_response_bytes),
            ] {
                if value == 0 {
                    bad(
                        format!("identity_providers[{i}].{key}"),
                        "must be at least 1".into(),
                    );
                }
            }
            if !idp.scopes.iter().any(|s| s == "openid") {
                bad(
                    format!("identity_providers[{i}].scopes"),
                    "must include openid".into(),
                );
            }
        }
        let mut upstream_tls = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            if r.host.is_empty() {
                bad(format!("routes[{i}].host"), "must not be empty".into());
            } else if r.host != "*"
                && !matches!(crate::gateway::host::parse(&r.host), Ok(p) if p.port.is_none())
            {
                bad(
                    format!("routes[{i}].host"),
                    format!("`{}` is not `*` or a host name (without port)", r.host),
                );
            }
            if !r.path_prefix.starts_with('/') {
                bad(
                    format!("routes[{i}].path_prefix"),
                    "must start with `/`".into(),
                );
            } else if crate::gateway::path::canonical(&r.path_prefix).as_deref()
                != Ok(r.path_prefix.as_str())
            {
                // Requests are matched on their canonical path (decoded, `;` parameters
                // removed): a prefix in any other form would never match, or match unexpectedly.
                bad(
                    format!("routes[{i}].path_prefix"),
                    "must be a plain decoded path (no `;`, `%`-escapes, `\\` or dot segments)"
                        .into(),
                );
            }
            if !r.rules.is_empty() {
                if r.policy == Policy::Public {
                    bad(
                        format!("routes[{i}].policy"),
                        "with `rules`, write a `bypass` rule instead of `policy: public`".into(),
                    );
                }
                for (key, set) in [("groups", &r.groups), ("roles", &r.roles)] {
                    if !set.is_empty() {
                        bad(
                            format!("routes[{i}].{key}"),
                            format!("with `rules`, name {key} in the rules"),
                        );
                    }
                }
                for (key, message) in crate::gateway::rules::problems(&r.rules) {
                    bad(format!("routes[{i}].{key}"), message);
                }
            }
            if let Some(t) = &r.upstream_tls {
                t.validate(&format!("routes[{i}]"), r.upstream.tls, &mut upstream_tls);
            }
            if let Some(h) = &r.host_header
                && (crate::gateway::host::parse(h).is_err()
                    || http::HeaderValue::from_str(h).is_err())
            {
                bad(
                    format!("routes[{i}].host_header"),
                    format!("`{h}` is not a host[:port]"),
                );
            }
            for (field, name) in &r.headers {
                // An empty name turns the header off for this route.
                if name.is_empty() {
                    continue;
                }
                if let Err(problem) = header_to_send(name) {
                    bad(
                        format!(
                            "routes[{i}].headers.{}",
                            format!("{field:?}").to_lowercase()
                        ),
                        problem,
                    );
                }
            }
        }
        p.extend(upstream_tls);
        if let Some(tls) = &self.tls {
            tls.validate(&mut p);
        }
        p
    }

    /// The public URL (parsed and validated at load).
    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// The issuer string: public_url without a trailing slash.
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_string()
    }

    /// Whether cookies carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        match self.session.secure {
            SecureMode::Always => true,
            SecureMode::Never => false,
            SecureMode::Auto => self.public_url.scheme() == "https" || self.tls.is_some(),
        }
    }

    /// Whether a normalised host (without port) is one of frontdoor's own: the host of
    /// `public_url` or a tenant's. Only there does frontdoor answer beyond `reserved_prefix`.
    pub fn is_own_host(&self, host: &str) -> bool {
        // Asked on every request: compared in place, nothing formatted. A request's host
        // names an IPv6 address without brackets (both sides in `Ipv6Addr`'s canonical form).
        let public = self.public_url.host_str().unwrap_or("");
        let public = public
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .unwrap_or(public);
        crate::gateway::host::same(public, host)
            || self
                .tenants
                .iter()
                .any(|t| t.hosts.iter().any(|h| crate::gateway::host::same(h, host)))
    }

    /// For `check-config`: each route that also serves one of frontdoor's own hosts, and the
    /// paths frontdoor keeps for itself there (the route gets every other path).
    pub fn kept_paths(&self) -> Vec<String> {
        let mut own: Vec<&str> = OWN_HOST_PATHS.to_vec();
        if self.reserved_prefix.as_str() != OWN_PREFIX {
            own.push(self.reserved_prefix.as_str());
        }
        self.routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let on = if r.host == "*" {
                    "frontdoor's own hosts".to_string()
                } else if self.is_own_host(&r.host) {
                    format!("`{}`, one of frontdoor's own hosts,", r.host)
                } else {
                    return None;
                };
                let kept: Vec<&str> = own
                    .iter()
                    .copied()
                    .filter(|p| covers(&r.path_prefix, p) || r.path_prefix.starts_with(p))
                    .collect();
                (!kept.is_empty()).then(|| {
                    format!(
                        "routes[{i}] (path_prefix `{}`): on {on} frontdoor keeps {}",
                        r.path_prefix,
                        kept.join(", ")
                    )
                })
            })
            .collect()
    }

    /// The tenant a host (without port) belongs to: every spelling of a tenant's host (any
    /// case, with or without the trailing dot) is that tenant; a host no tenant claims is the
    /// default tenant's.
    pub fn tenant_for_host(&self, host: &str) -> &str {
        self.tenants
            .iter()
            .find(|t| t.hosts.iter().any(|h| crate::gateway::host::same(h, host)))
            .map_or("default", |t| t.id.as_str())
    }

    /// The second-factor policy of a tenant (by id).
    pub fn second_factor_of(&self, tenant: &str) -> SecondFactor {
        self.tenants
            .iter()
            .find(|t| t.id == tenant)
            .and_then(|t| t.second_factor)
            .unwrap_or(self.second_factor)
    }
}

/// Whether a route's `path_prefix` covers the path `own` (matched on segment boundaries, as
/// routes match requests).
fn covers(prefix: &str, own: &str) -> bool {
    own.starts_with(prefix)
        && (prefix.ends_with('/')
            || own.len() == prefix.len()
            || own.as_bytes()[prefix.len()] == b'/')
}

/// The keys that locate a running server; every other key is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Location {
    /// The admin listener.
    pub admin_listen: ListenAddr,
    /// The data directory (holds `frontdoor.pid`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

impl Location {
    /// The pid file a running server writes.
    pub fn pid_file(&self) -> PathBuf {
        self.data_dir.join(PID_FILE)
    }
}

/// Name of the pid file in `data_dir`.
pub const PID_FILE: &str = "frontdoor.pid";

/// An upstream address: host, port and whether it uses TLS; read from the configuration as
/// `http://host:port` or `https://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Upstream {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// https upstream.
    pub tls: bool,
}

impl TryFrom<String> for Upstream {
    type Error = String;

    fn try_from(s: String) -> Result<Upstream, String> {
        parse_upstream(&s)
    }
}

/// Parses `http://host:port` or `https://host[:port]`.
pub fn parse_upstream(s: &str) -> Result<Upstream, String> {
    let url = Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(format!("scheme `{other}` is not http or https")),
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("`{s}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("`{s}` has no port"))?;
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!("`{s}` must not have a path"));
    }
    Ok(Upstream { host, port, tls })
}

/// A trusted proxy's address or range, read as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ProxyNet(pub ipnet::IpNet);

impl TryFrom<String> for ProxyNet {
    type Error = String;

    fn try_from(s: String) -> Result<ProxyNet, String> {
        crate::gateway::rules::parse_net(&s).map(ProxyNet)
    }
}

/// serde_yaml prefixes its own (less precise) path; the key path is reported separately.
fn strip_yaml_path(message: &str) -> String {
    match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && !prefix.contains('`') => rest.to_string(),
        _ => message.to_string(),
    }
}

/// Replaces `${VAR}` with the environment's value; a missing variable is an error.
/// Comment lines are left alone.
fn expand_env(text: &str) -> Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            expand_line(line, &mut out, &mut problems);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn expand_line(text: &str, out: &mut String, problems: &mut Vec<Problem>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => problems.push(Problem {
                        key: format!("${{{name}}}"),
                        message: "environment variable is not set".into(),
                    }),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8080\n";

    fn problems(yaml: &str) -> String {
        match Config::from_yaml(yaml) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = Config::from_yaml(MINIMAL).expect("valid");
        assert_eq!(c.session.cookie_name, "frontdoor_session");
        assert_eq!(c.session.ttl.0, Duration::from_secs(12 * 3600));
        assert_eq!(c.tenant_for_host("anything"), "default");
        assert!(!c.secure_cookies());
    }

    #[test]
    fn mail_templates_and_reset_links_are_checked_at_load() {
        let c = Config::from_yaml(MINIMAL).expect("valid");
        assert_eq!(c.accounts.reset_link_ttl.0, Duration::from_secs(1800));
        assert_eq!(c.accounts.invite_ttl.0, Duration::from_secs(7 * 86400));
        let msg = problems(&format!("{MINIMAL}accounts: {{ invite_ttl: 31d }}\n"));
        assert!(
            msg.contains("accounts.invite_ttl: must be between"),
            "{msg}"
        );
        let msg = problems(&format!("{MINIMAL}accounts: {{ reset_link_ttl: 0s }}\n"));
        assert!(
            msg.contains("accounts.reset_link_ttl: must be between"),
            "{msg}"
        );
        let msg = problems(&format!("{MINIMAL}accounts: {{ reset_ttl: 1m }}\n"));
        assert!(msg.contains("reset_ttl"), "unknown keys are refused: {msg}");

        let dir = tempfile::tempdir().expect("tempdir");
        let with_dir = format!(
            "{MINIMAL}mail: {{ templates_dir: '{}' }}\n",
            dir.path().display()
        );
        Config::from_yaml(&with_dir).expect("an empty directory keeps the built-ins");
        std::fs::write(dir.path().join("password_reset.txt"), "Subject: {% if %}\n")
            .expect("write");
        let msg = problems(&with_dir);
        assert!(
            msg.contains("mail.templates_dir") && msg.contains("password_reset.txt"),
            "{msg}"
        );
        let missing = format!("{MINIMAL}mail: {{ templates_dir: /nonexistent/mail }}\n");
        assert!(problems(&missing).contains("is not a directory"));
    }

    #[test]
    fn identity_provider_bounds_have_defaults_and_are_checked() {
        let idp = "identity_providers:\n  - { id: corp, name: C, issuer: 'https://idp.example', client_id: x";
        let c = Config::from_yaml(&format!("{MINIMAL}{idp} }}\n")).expect("valid");
        let p = &c.identity_providers[0];
        assert!(p.link_existing, "linking stays the default");
        assert_eq!(
            (p.max_groups, p.max_claim_length, p.max_response_bytes),
            (100, 256, 128 * 1024)
        );
        assert_eq!(p.key_refetch_interval.0, Duration::from_secs(60));
        assert_eq!(c.max_identity_header_bytes, 8192);
        let msg = problems(&format!(
            "{MINIMAL}{idp}, max_groups: 0, key_refetch_interval: 0s }}\n"
        ));
        assert!(msg.contains("identity_providers[0].max_groups"), "{msg}");
        assert!(
            msg.contains("identity_providers[0].key_refetch_interval"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let msg = problems(&format!(
            "{MINIMAL}routes:\n  - host: localhost\n    upstream: http://127.0.0.1:1\n    upstrem: x\n"
        ));
        assert!(
            msg.starts_with("routes[0].upstrem: unknown field `upstrem`"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_top_level_key_is_refused() {
        let msg = problems(&format!("{MINIMAL}listn: 1\n"));
        assert!(msg.contains("unknown field `listn`"), "{msg}");
    }

    #[test]
    fn bad_address_is_named() {
        let msg = problems(
            "listen: nowhere\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost\n",
        );
        assert!(msg.contains("listen: `nowhere` is not an address"), "{msg}");
    }

    #[test]
    fn bad_duration_is_named() {
        let msg = problems(&format!("{MINIMAL}session:\n  ttl: 12 parsecs\n"));
        assert!(
            msg.starts_with("session.ttl: `12 parsecs` is not a duration"),
            "{msg}"
        );
    }

    #[test]
    fn route_without_upstream_is_named() {
        let msg = problems(&format!("{MINIMAL}routes:\n  - host: localhost\n"));
        assert!(msg.contains("routes[0]"), "{msg}");
        assert!(msg.contains("missing field `upstream`"), "{msg}");
    }

    #[test]
    fn bad_upstream_scheme_is_named() {
        let msg = problems(&format!(
            "{MINIMAL}routes:\n  - host: localhost\n    upstream: ftp://x\n"
        ));
        assert!(msg.contains("routes[0].upstream"), "{msg}");
    }

    /// An identity header under a framing or hop-by-hop name would decide how the upstream
    /// reads the request (or be dropped on the way); it is refused, with the key.
    #[test]
    fn identity_header_under_a_framing_name_is_named() {
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "Keep-Alive",
        ] {
            let msg = problems(&format!(
                "{MINIMAL}routes:\n  - host: localhost\n    upstream: http://127.0.0.1:1\n    headers: {{ user: {name} }}\n"
            ));
            assert!(
                msg.contains(&format!(
                    "routes[0].headers.user: `{name}` is a framing or hop-by-hop header"
                )),
                "{msg}"
            );
        }
    }

    #[test]
    fn env_vars_expand_and_missing_ones_are_named() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("FRONTDOOR_TEST_ORG", "Acme") };
        let c = Config::from_yaml(&format!("{MINIMAL}organization: ${{FRONTDOOR_TEST_ORG}}\n"))
            .expect("valid");
        assert_eq!(c.organization, "Acme");
        let msg = problems(&format!(
            "{MINIMAL}organization: ${{FRONTDOOR_NOT_SET_XYZ}}\n"
        ));
        assert!(msg.contains("FRONTDOOR_NOT_SET_XYZ"), "{msg}");
        // Comment lines are not expanded.
        Config::from_yaml(&format!("{MINIMAL}# secret: ${{FRONTDOOR_NOT_SET_XYZ}}\n"))
            .expect("valid");
    }

    #[test]
    fn regulation_defaults_and_problems_are_named() {
        let c = Config::from_yaml(MINIMAL).expect("valid");
        assert_eq!(c.regulation.max_failures_per_account, 20);
        assert_eq!(c.regulation.ban.0, Duration::from_secs(900));
        assert_eq!(c.regulation.login_rate.burst(), 100);
        let c = Config::from_yaml(&format!(
            "{MINIMAL}regulation:\n  ban: 3s\n  token_rate: {{ per_second: 0 }}\n"
        ))
        .expect("valid");
        assert_eq!(c.regulation.window.0, Duration::from_secs(600));
        assert_eq!(c.regulation.token_rate.per_second, 0);
        let msg = problems(&format!("{MINIMAL}regulation:\n  bann: 3s\n"));
        assert!(
            msg.starts_with("regulation.bann: unknown field `bann`"),
            "{msg}"
        );
        let msg = problems(&format!(
            "{MINIMAL}regulation:\n  login_rate: {{ per_second: 5, burst: 0 }}\n"
        ));
        assert!(msg.contains("regulation.login_rate.burst"), "{msg}");
    }

    #[test]
    fn shutdown_grace_period_defaults_and_is_bounded() {
        let c = Config::from_yaml(MINIMAL).expect("valid");
        assert_eq!(c.shutdown.grace_period.0, Duration::from_secs(30));
        let msg = problems(&format!("{MINIMAL}shutdown:\n  grace_period: 2h\n"));
        assert!(
            msg.starts_with("shutdown.grace_period: must be at most 1h"),
            "{msg}"
        );
    }

    #[test]
    fn tenants_map_hosts() {
        let c = Config::from_yaml(&format!(
            "{MINIMAL}tenants:\n  - {{ id: acme, hosts: [acme.localhost] }}\n"
        ))
        .expect("valid");
        assert_eq!(c.tenant_for_host("ACME.localhost"), "acme");
        assert_eq!(c.tenant_for_host("acme.localhost."), "acme");
        assert_eq!(c.tenant_for_host("other"), "default");
    }

    #[test]
    fn second_factor_is_per_tenant_with_the_top_level_as_default() {
        let c = Config::from_yaml(&format!(
            "{MINIMAL}second_factor: required\ntenants:\n  - {{ id: acme, hosts: [acme.example.com], second_factor: 'off' }}\n  - {{ id: lab, hosts: [lab.example.com] }}\n"
        ))
        .expect("valid");
        assert_eq!(c.second_factor_of("default"), SecondFactor::Required);
        assert_eq!(c.second_factor_of("acme"), SecondFactor::Off);
        assert_eq!(c.second_factor_of("lab"), SecondFactor::Required);
        let c = Config::from_yaml(MINIMAL).expect("valid");
        assert_eq!(c.second_factor_of("default"), SecondFactor::Optional);
        let e = Config::from_yaml(&format!("{MINIMAL}second_factor: sometimes\n"))
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("second_factor: unknown variant `sometimes`"),
            "{e}"
        );
    }

    #[test]
    fn hosts_prefixes_and_client_timeouts_are_checked() {
        let msg = problems(&format!(
            "{MINIMAL}tenants:\n  - {{ id: acme, hosts: ['a b', 'acme:80'] }}\nroutes:\n  - {{ host: 'x/y', upstream: 'http://127.0.0.1:1' }}\n  - {{ host: '*', path_prefix: '/admin;x', upstream: 'http://127.0.0.1:1' }}\n  - {{ host: '*', path_prefix: '/a%2Fb', upstream: 'http://127.0.0.1:1' }}\nclient_timeouts: {{ header: 0s }}\n"
        ));
        for key in [
            "tenants[0].hosts[0]",
            "tenants[0].hosts[1]",
            "routes[0].host",
            "routes[1].path_prefix",
            "routes[2].path_prefix",
            "client_timeouts.header",
        ] {
            assert!(msg.contains(key), "{key}: {msg}");
        }
        let c = Config::from_yaml(&format!(
            "{MINIMAL}routes:\n  - {{ host: Wiki.Localhost., upstream: 'http://127.0.0.1:1' }}\n"
        ))
        .expect("valid");
        assert_eq!(c.client_timeouts, ClientTimeouts::default());
    }
}
