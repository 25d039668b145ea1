//! OIDC Back-Channel Logout: `POST /_frontdoor/idp/<id>/backchannel-logout` with a
//! `logout_token` ends every frontdoor session that came from that provider session.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::IdentityProvider;
use crate::endpoint::{OAuthError, Reply, Request, oauth};
use crate::provider::backchannel::{BACKCHANNEL_EVENT, Notifier};
use crate::state::State;

/// How old a logout token may be.
const MAX_AGE: i64 = 300;

#[derive(Deserialize)]
struct LogoutClaims {
    iat: i64,
    jti: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    events: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    nonce: Option<serde_json::Value>,
}

fn bad(description: &str) -> Result<Reply, OAuthError> {
    Err(OAuthError::invalid_request(description))
}

/// `POST /_frontdoor/idp/<id>/backchannel-logout`: errors in RFC 6749's shape (OIDC
/// Back-Channel Logout §2.8).
pub async fn backchannel_logout(state: &State, req: &Request, id: &str) -> Reply {
    oauth(end_sessions(state, req, id).await)
}

async fn end_sessions(state: &State, req: &Request, id: &str) -> Result<Reply, OAuthError> {
    let Some(provider) = state.federation.get(id).cloned() else {
        return bad("unknown identity provider");
    };
    if req.method != http::Method::POST || !req.is_form() {
        return bad("POST a form with logout_token");
    }
    let Some(token) = req
        .form_pairs()
        .into_iter()
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v)
    else {
        return bad("logout_token is missing");
    };
    let claims = match verify(&provider, &token).await {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(idp = id, reason = why, "back-channel logout token refused");
            return bad(why);
        }
    };
    let now = crate::clock::now();
    if (now - claims.iat).abs() > MAX_AGE {
        return bad("the logout token is too old");
    }
    if !claims.events.contains_key(BACKCHANNEL_EVENT) {
        return bad("the logout token carries no back-channel logout event");
    }
    if claims.nonce.is_some() {
        return bad("a logout token must not carry a nonce");
    }
    if claims.sid.is_none() && claims.sub.is_none() {
        return bad("the logout token names neither sid nor sub");
    }
    let replay_key = format!("{id}\n{}", claims.jti);
    if !state.federation.first_use(replay_key) {
        return bad("the logout token was already used");
    }
    let ended = state
        .store
        .end_idp_sessions(id, claims.sid.as_deref(), claims.sub.as_deref())
        .await?;
    let hashes: Vec<String> = ended.iter().map(|e| e.id_hash.clone()).collect();
    state.sessions.forget(&hashes);
    tracing::info!(
        idp = id,
        sessions = hashes.len(),
        "back-channel logout ended sessions"
    );
    for e in &ended {
        crate::audit::logged_out(req.client_ip, &e.user_id, "backchannel");
    }
    // Down the chain: frontdoor's own apps that got tokens in those sessions.
    Notifier::of(state).sessions_ended(ended);
    Ok(Reply::new(http::StatusCode::OK, "text/plain; charset=utf-8", "").no_store())
}

/// Signature with the provider's keys (refetched for an unknown `kid`, at most once per
/// `key_refetch_interval`), `iss`, `aud`.
async fn verify(provider: &IdentityProvider, token: &str) -> Result<LogoutClaims, &'static str> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "the logout token is not a JWT")?;
    let allowed = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    if !allowed.contains(&header.alg) {
        return Err("the logout token's algorithm is not accepted");
    }
    let mut discovered = provider
        .current()
        .ok_or("the identity provider is unavailable")?;
    let find = |d: &super::Discovered| match &header.kid {
        Some(kid) => d.jwks.find(kid).cloned(),
        None if d.jwks.keys.len() == 1 => d.jwks.keys.first().cloned(),
        None => None,
    };
    let jwk = match find(&discovered) {
        Some(k) => k,
        None => {
            // Unauthenticated callers choose the `kid`: the refetch is bounded per interval,
            // shared by every caller, and never repeats discovery.
            discovered = provider
                .refetch_keys()
                .await
                .map_err(|_| "the identity provider is unavailable")?;
            find(&discovered).ok_or("the logout token is signed with an unknown key")?
        }
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "the provider's key is unusable")?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[provider.config.issuer.as_str()]);
    validation.set_audience(&[provider.config.client_id.as_str()]);
    // `exp` is optional in logout tokens: checked when present.
    validation.required_spec_claims = HashSet::from(["iss".to_string(), "aud".to_string()]);
    validation.leeway = 60;
    jsonwebtoken::decode::<LogoutClaims>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|_| "the logout token's signature, issuer or audience is wrong")
}
