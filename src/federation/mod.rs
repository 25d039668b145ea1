//! Signing in through upstream OpenID Connect providers (Google, Entra ID, Keycloak, …) with
//! the `openidconnect` crate. Apps behind frontdoor and third-party clients still see one
//! provider: frontdoor's own.

pub mod backchannel;
pub mod login;
pub mod mapping;

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use openidconnect::core::CoreProviderMetadata;
use openidconnect::{IssuerUrl, reqwest};

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

/// What discovery found.
pub struct Discovered {
    /// The provider's metadata, with its JWKS.
    pub metadata: CoreProviderMetadata,
    /// RP-initiated logout endpoint, when advertised.
    pub end_session_endpoint: Option<String>,
    /// The JWKS as jsonwebtoken keys, for back-channel logout tokens.
    pub jwks: jsonwebtoken::jwk::JwkSet,
}

/// One configured upstream provider.
pub struct IdentityProvider {
    /// Its configuration.
    pub config: IdentityProviderConfig,
    discovered: RwLock<Option<Arc<Discovered>>>,
    http: reqwest::Client,
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

    /// The HTTP client for this provider (no redirects followed: SSRF).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Fetches discovery and the JWKS (again, for key rotation).
    pub async fn discover(&self) -> Result<Arc<Discovered>, FederationError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| FederationError::Invalid(format!("issuer: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| FederationError::Unreachable(error_chain(&e)))?;
        // Fields the core metadata type does not carry.
        let doc: serde_json::Value = self
            .http
            .get(format!(
                "{}/.well-known/openid-configuration",
                self.config.issuer.trim_end_matches('/')
            ))
            .send()
            .await
            .map_err(|e| FederationError::Unreachable(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| FederationError::Unreachable(e.to_string()))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| FederationError::Invalid(e.to_string()))
            })?;
        let end_session_endpoint = doc["end_session_endpoint"].as_str().map(str::to_string);
        let jwks_json = serde_json::to_value(metadata.jwks())
            .map_err(|e| FederationError::Invalid(e.to_string()))?;
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks_json)
            .unwrap_or(jsonwebtoken::jwk::JwkSet { keys: Vec::new() });
        let d = Arc::new(Discovered {
            metadata,
            end_session_endpoint,
            jwks,
        });
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(d.clone());
        }
        Ok(d)
    }
}

/// All configured providers.
pub struct Federation {
    providers: Vec<Arc<IdentityProvider>>,
    http: reqwest::Client,
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
        }
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
