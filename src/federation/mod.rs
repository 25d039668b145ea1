//! Signing in through upstream OpenID Connect providers (Google, Entra ID, Keycloak, …) with
//! the `openidconnect` crate. Apps behind frontdoor and third-party clients still see one
//! provider: frontdoor's own.

pub mod backchannel;
pub mod login;
pub mod mapping;

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{HttpRequest, HttpResponse, IssuerUrl, reqwest};

use crate::config::{Config, IdentityProviderConfig};

/// Why talking to an upstream provider failed.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// Discovery or JWKS could not be fetched.
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    /// The provider answered something invalid.
    #[error("the identity provider answered something invalid: {0}")]
    Invalid(String),
}

/// Why one HTTP exchange with a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connection, timeout or protocol failure.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    /// The answer is larger than `max_response_bytes`; the rest was not read.
    #[error("the answer is larger than {0} bytes (more than max_response_bytes)")]
    TooLarge(usize),
    /// The answer could not be rebuilt as an HTTP response.
    #[error(transparent)]
    Http(#[from] http::Error),
}

/// What discovery found.
pub struct Discovered {
    /// The provider's metadata, with its JWKS.
    pub metadata: CoreProviderMetadata,
    /// RP-initiated logout endpoint, when advertised.
    pub end_session_endpoint: Option<String>,
    /// Whether the provider says it always sends `iss` on authorization responses (RFC 9207
    /// `authorization_response_iss_parameter_supported`): then a response without it is refused.
    pub iss_parameter_required: bool,
    /// The JWKS as jsonwebtoken keys, for back-channel logout tokens.
    pub jwks: jsonwebtoken::jwk::JwkSet,
}

impl Discovered {
    fn new(
        metadata: CoreProviderMetadata,
        end_session_endpoint: Option<String>,
        iss_parameter_required: bool,
    ) -> Result<Discovered, FederationError> {
        let jwks_json = serde_json::to_value(metadata.jwks())
            .map_err(|e| FederationError::Invalid(e.to_string()))?;
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks_json)
            .unwrap_or(jsonwebtoken::jwk::JwkSet { keys: Vec::new() });
        Ok(Discovered {
            metadata,
            end_session_endpoint,
            iss_parameter_required,
            jwks,
        })
    }
}

/// One configured upstream provider.
pub struct IdentityProvider {
    /// Its configuration.
    pub config: IdentityProviderConfig,
    discovered: RwLock<Option<Arc<Discovered>>>,
    http: reqwest::Client,
    /// When the keys were last fetched again for an unknown key. Held across the fetch, so
    /// that callers arriving meanwhile wait for it and use its result instead of fetching too.
    keys_refetched: tokio::sync::Mutex<Option<Instant>>,
}

impl IdentityProvider {
    /// Whether discovery succeeded (the login button works).
    pub fn available(&self) -> bool {
        self.current().is_some()
    }

    /// The latest discovery result.
    pub fn current(&self) -> Option<Arc<Discovered>> {
        self.discovered.read().ok().and_then(|d| d.clone())
    }

    /// The HTTP client for this provider, for the `openidconnect` crate: no redirects followed
    /// (SSRF), and no answer read beyond `max_response_bytes` (a provider cannot make
    /// frontdoor buffer megabytes for an unauthenticated request).
    pub fn http(
        &self,
    ) -> impl Fn(
        HttpRequest,
    )
        -> std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send>>
    + use<> {
        let http = self.http.clone();
        let limit = self.config.max_response_bytes;
        move |request| Box::pin(bounded_exchange(http.clone(), limit, request))
    }

    /// Fetches discovery and the JWKS (at start-up, and hourly for key rotation).
    pub async fn discover(&self) -> Result<Arc<Discovered>, FederationError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| FederationError::Invalid(format!("issuer: {e}")))?;
        let http = self.http();
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| FederationError::Unreachable(error_chain(&e)))?;
        // Fields the core metadata type does not carry.
        let request = http::Request::get(format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        ))
        .body(Vec::new())
        .map_err(|e| FederationError::Invalid(e.to_string()))?;
        let answer = http(request)
            .await
            .map_err(|e| FederationError::Unreachable(e.to_string()))?;
        let doc: serde_json::Value = serde_json::from_slice(answer.body())
            .map_err(|e| FederationError::Invalid(e.to_string()))?;
        let end_session_endpoint = doc["end_session_endpoint"].as_str().map(str::to_string);
        let iss_parameter_required =
            doc["authorization_response_iss_parameter_supported"].as_bool() == Some(true);
        let d = Arc::new(Discovered::new(
            metadata,
            end_session_endpoint,
            iss_parameter_required,
        )?);
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(d.clone());
        }
        Ok(d)
    }

    /// The provider's keys fetched again (its JWKS only, never discovery), for a token signed
    /// with a key not known yet: at most once per `key_refetch_interval` for all callers
    /// together; within the interval the keys at hand are answered.
    pub async fn refetch_keys(&self) -> Result<Arc<Discovered>, FederationError> {
        let mut last = self.keys_refetched.lock().await;
        let current = self
            .current()
            .ok_or_else(|| FederationError::Unreachable("not discovered yet".into()))?;
        if last.is_some_and(|t| t.elapsed() < self.config.key_refetch_interval.0) {
            return Ok(current);
        }
        *last = Some(Instant::now());
        let http = self.http();
        let jwks = CoreJsonWebKeySet::fetch_async(current.metadata.jwks_uri(), &http)
            .await
            .map_err(|e| FederationError::Unreachable(error_chain(&e)))?;
        tracing::info!(idp = %self.config.id, keys = jwks.keys().len(), "identity provider keys fetched again");
        let d = Arc::new(Discovered::new(
            current.metadata.clone().set_jwks(jwks),
            current.end_session_endpoint.clone(),
            current.iss_parameter_required,
        )?);
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(d.clone());
        }
        Ok(d)
    }
}

/// One request to a provider, its answer read up to `limit` bytes.
async fn bounded_exchange(
    http: reqwest::Client,
    limit: usize,
    request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let mut answer = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    if answer.content_length().is_some_and(|n| n > limit as u64) {
        return Err(HttpError::TooLarge(limit));
    }
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(HttpError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let mut response = http::Response::builder().status(status).body(body)?;
    *response.headers_mut() = headers;
    Ok(response)
}

/// All configured providers.
pub struct Federation {
    providers: Vec<Arc<IdentityProvider>>,
    http: reqwest::Client,
    /// Sign-in states and logout-token ids already used (replay protection); kept by a reload.
    used: moka::sync::Cache<String, ()>,
}

impl Federation {
    /// Providers of a configuration (not yet discovered).
    pub fn new(config: &Config) -> Federation {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Federation {
            providers: config
                .identity_providers
                .iter()
                .map(|c| provider(c, &http))
                .collect(),
            http,
            // Longer than a pending sign-in and a logout token's lifetime.
            used: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(900))
                .build(),
        }
    }

    /// The providers of a reloaded configuration: one whose settings did not change is kept
    /// as it is, with its discovered metadata and keys; new or changed ones start undiscovered.
    pub fn reconfigured(&self, config: &Config) -> Federation {
        Federation {
            providers: config
                .identity_providers
                .iter()
                .map(|c| {
                    self.providers
                        .iter()
                        .find(|p| p.config == *c)
                        .cloned()
                        .unwrap_or_else(|| provider(c, &self.http))
                })
                .collect(),
            http: self.http.clone(),
            used: self.used.clone(),
        }
    }

    /// Marks a sign-in state or logout-token id used; `false` when it was already (one atomic
    /// step, so two racing replays cannot both pass).
    pub fn first_use(&self, key: String) -> bool {
        // `or_insert_with` coalesces concurrent callers (one evaluates, the others wait and
        // see its entry); `or_insert` would be a get-then-insert that two could both win.
        self.used.entry(key).or_insert_with(|| ()).is_fresh()
    }

    /// Every provider, in config order.
    pub fn all(&self) -> &[Arc<IdentityProvider>] {
        &self.providers
    }

    /// A provider by id.
    pub fn get(&self, id: &str) -> Option<&Arc<IdentityProvider>> {
        self.providers.iter().find(|p| p.config.id == id)
    }

    /// Discovers every provider, retrying those that are down, and refreshes keys hourly.
    /// Runs as long as the federation is in use (a reload replaces it and starts another);
    /// a provider that is down never stops frontdoor.
    pub async fn keep_discovered(federation: Weak<Federation>) {
        let mut since_refresh = Duration::ZERO;
        loop {
            let Some(this) = federation.upgrade() else {
                return;
            };
            let refresh_all = since_refresh >= Duration::from_secs(3600);
            for p in &this.providers {
                if p.available() && !refresh_all {
                    continue;
                }
                match p.discover().await {
                    Ok(_) => tracing::info!(idp = %p.config.id, "identity provider discovered"),
                    Err(e) => {
                        tracing::warn!(idp = %p.config.id, error = %e, "identity provider unavailable; retrying")
                    }
                }
            }
            if refresh_all {
                since_refresh = Duration::ZERO;
            }
            let pause = if this.providers.iter().all(|p| p.available()) {
                60
            } else {
                2
            };
            drop(this);
            tokio::time::sleep(Duration::from_secs(pause)).await;
            since_refresh += Duration::from_secs(pause);
        }
    }
}

fn provider(config: &IdentityProviderConfig, http: &reqwest::Client) -> Arc<IdentityProvider> {
    Arc::new(IdentityProvider {
        config: config.clone(),
        discovered: RwLock::new(None),
        http: http.clone(),
        keys_refetched: tokio::sync::Mutex::new(None),
    })
}

/// An error and its sources, for logs and pages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(providers: &str) -> Config {
        Config::from_yaml(&format!(
            "listen: 127.0.0.1:1\nadmin_listen: 127.0.0.1:2\npublic_url: http://localhost\nidentity_providers:\n{providers}"
        ))
        .expect("config")
    }

    /// A sign-in state or logout-token id passes once, also when many present it at the same
    /// time, and a reload keeps what was used.
    #[test]
    fn a_used_state_passes_once_even_under_a_race() {
        let a = "  - { id: a, name: A, issuer: 'http://127.0.0.1:1', client_id: x }\n";
        let federation = Federation::new(&config(a));
        let passed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    if federation.first_use("state-1".into()) {
                        passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(passed.into_inner(), 1);
        let reloaded = federation.reconfigured(&config(a));
        assert!(!reloaded.first_use("state-1".into()));
        assert!(reloaded.first_use("state-2".into()));
    }

    #[test]
    fn a_reload_keeps_unchanged_providers_and_replaces_changed_ones() {
        let a = "  - { id: a, name: A, issuer: 'http://127.0.0.1:1', client_id: x }\n";
        let b = "  - { id: b, name: B, issuer: 'http://127.0.0.1:2', client_id: x }\n";
        let b2 = "  - { id: b, name: B, issuer: 'http://127.0.0.1:3', client_id: x }\n";
        let old = Federation::new(&config(&format!("{a}{b}")));
        let new = old.reconfigured(&config(&format!(
            "{a}{b2}  - {{ id: c, name: C, issuer: 'http://127.0.0.1:4', client_id: x }}\n"
        )));
        assert_eq!(new.all().len(), 3);
        let same = |id: &str| {
            Arc::ptr_eq(
                old.get(id).expect("old provider"),
                new.get(id).expect("new provider"),
            )
        };
        assert!(same("a"), "an unchanged provider keeps its discovery");
        assert!(!same("b"), "a changed provider starts afresh");
        assert_eq!(new.get("b").expect("b").config.issuer, "http://127.0.0.1:3");
    }
}
