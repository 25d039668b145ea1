//! Discovery documents (OIDC Discovery, RFC 8414) and the JWKS.

use serde_json::json;

use crate::endpoint::Reply;
use crate::state::State;

fn metadata(state: &State) -> serde_json::Value {
    let i = &state.issuer;
    json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oauth/authorize"),
        "token_endpoint": format!("{i}/oauth/token"),
        "userinfo_endpoint": format!("{i}/oauth/userinfo"),
        "jwks_uri": format!("{i}/oauth/jwks"),
        "end_session_endpoint": format!("{i}/oauth/logout"),
        "revocation_endpoint": format!("{i}/oauth/revoke"),
        "introspection_endpoint": format!("{i}/oauth/introspect"),
        "service_documentation": format!("{i}/oauth/docs"),
        "scopes_supported": super::scopes::SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [state.keys.algorithm().name()],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "name", "picture", "email", "email_verified", "groups", "roles", "amr", "acr"],
        "acr_values_supported": [crate::factors::ACR_1FA, crate::factors::ACR_2FA],
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        // Its default is true (OIDC Discovery §3): said explicitly, as the endpoint refuses it.
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        // OpenID Connect Back-Channel Logout 1.0 (`provider::backchannel`): logout tokens
        // always carry `sid`, the ID tokens' own.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}

/// `GET /.well-known/openid-configuration`.
pub fn openid_configuration(state: &State) -> Reply {
    cacheable(Reply::json(http::StatusCode::OK, &metadata(state)))
}

/// `GET /.well-known/oauth-authorization-server`.
pub fn oauth_metadata(state: &State) -> Reply {
    cacheable(Reply::json(http::StatusCode::OK, &metadata(state)))
}

/// `GET /oauth/jwks`.
pub fn jwks(state: &State) -> Reply {
    cacheable(Reply::json(http::StatusCode::OK, &state.keys.jwks()))
}

fn cacheable(mut r: Reply) -> Reply {
    // Public documents: allow short caching instead of Reply::json's no-store.
    r.headers
        .retain(|(k, _)| k != http::header::CACHE_CONTROL && k != http::header::PRAGMA);
    r.header(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    )
}
