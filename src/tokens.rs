//! What frontdoor's tokens are: the claims of its access tokens, their types, the client id
//! of its own sign-in client, and reading a bearer token off a request. Below the provider
//! (which mints and verifies them) and the gateway (which takes them): it imports neither.

use serde::{Deserialize, Serialize};

/// The client id of frontdoor's own gateway (its codes are exchanged internally).
pub const OWN_CLIENT_ID: &str = "frontdoor";

/// `typ` of access tokens (RFC 9068); ID tokens use `JWT`, so neither passes for the other.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// `typ` of ID tokens.
pub const ID_TOKEN_TYP: &str = "JWT";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// User id, or the client id for client_credentials.
    pub sub: String,
    /// Audience: where the token works. frontdoor's issuer for its own first-party tokens
    /// (login API, own client); for an app, its client id or a resource an admin granted it.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// Client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Grant family, for revocation.
    pub gid: String,
    /// Tenant.
    pub tnt: String,
    /// When the user authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// Grant id prefix of client_credentials tokens: `app:<client_id>`.
pub const APP_GRANT_PREFIX: &str = "app:";

/// A new JWT ID: a random UUID from the thread's CSPRNG. A `jti` need only be unique, and the
/// operating system's generator would cost a system call on every token.
pub fn new_jti() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Whether an access token was issued to an app for itself (client_credentials).
pub fn is_app_token(claims: &AccessClaims) -> bool {
    claims.gid.starts_with(APP_GRANT_PREFIX)
}

/// The bearer token of an `Authorization: Bearer` header.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Whether a bearer token names frontdoor as its issuer and its audience (read without checking
/// the signature: it only decides that the header is not passed on). Such a token is a key to
/// the user's account at frontdoor's own API, so it never reaches an upstream; a token issued
/// for a route's `audience` is that upstream's to verify and is passed on.
pub fn is_for_frontdoor(token: &str, issuer: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: Option<String>,
        aud: Option<serde_json::Value>,
    }
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    let Ok(json) =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
    else {
        return false;
    };
    let Ok(c) = serde_json::from_slice::<Claims>(&json) else {
        return false;
    };
    let aud_is_issuer = match c.aud {
        Some(serde_json::Value::String(a)) => a == issuer,
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    c.iss.as_deref() == Some(issuer) && aud_is_issuer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jti_is_a_random_uuid() {
        let (a, b) = (new_jti(), new_jti());
        let parsed = uuid::Uuid::parse_str(&a).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(a, b);
    }
}
