//! `/api/v1/apps` and `/api/v1/tokens`: the JSON API behind Settings → Developers.
//!
//! The permission rules are `manage::owned`'s. With a session cookie, changes need
//! `X-Requested-With` (a header no cross-site form can send); the pages use CSRF tokens.

use http::StatusCode;
use serde::Deserialize;

use crate::auth::credentials::resolve_for_api;
use crate::auth::{Access, CredentialKind};
use crate::endpoint::{ApiError, Reply, Request};
use crate::error::Error;
use crate::manage::AppSpec;
use crate::manage::owned::{self, Caller};
use crate::state::State;
use crate::store::{ApiToken, App};

/// The user behind a request, or why not.
pub async fn caller(state: &State, req: &Request) -> Result<Caller, ApiError> {
    let identity = match resolve_for_api(state, &req.headers, &req.host).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Err(
                Error::unauthenticated("unauthenticated", "authentication required").into(),
            );
        }
        Err((_, e)) => return Err(e.into()),
    };
    if identity.user.starts_with("app:") || identity.kind == CredentialKind::ContactHash {
        return Err(Error::Forbidden("this API is for users".into()).into());
    }
    let unsafe_method = !matches!(
        req.method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if unsafe_method && identity.access == Access::ReadOnly {
        return Err(Error::Forbidden("this credential is read-only".into()).into());
    }
    if unsafe_method
        && identity.kind == CredentialKind::Session
        && req.header("x-requested-with").is_none()
    {
        return Err(Error::Forbidden(
            "send X-Requested-With with cookie-authenticated changes".into(),
        )
        .into());
    }
    Ok(Caller { identity })
}

pub(crate) fn json<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, Error> {
    serde_json::from_slice(&req.body).map_err(|e| Error::Invalid(format!("invalid JSON body: {e}")))
}

/// An app as the API shows it (never its secret or its hash).
pub fn app_json(app: &App) -> serde_json::Value {
    serde_json::json!({
        "client_id": app.client_id, "tenant": app.tenant, "name": app.name, "description": app.description,
        "redirect_uris": app.redirect_uris, "post_logout_redirect_uris": app.post_logout_redirect_uris,
        "scopes": app.scopes, "grant_types": app.grant_types, "public": app.public,
        "first_party": app.first_party, "active": app.active, "owner": app.owner,
        "audiences": app.audiences, "pkce_optional": app.pkce_optional, "created_at": app.created_at,
        "backchannel_logout_uri": app.backchannel_logout_uri,
    })
}

fn token_json(t: &ApiToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id, "name": t.name, "access": if t.read_only { "read-only" } else { "read-write" },
        "created_at": t.created_at, "last_used_at": t.last_used_at, "revoked": t.revoked_at.is_some(),
    })
}

/// Routes `/api/v1/apps…` and `/api/v1/tokens…`; `None` for other paths.
pub async fn handle(state: &State, req: &Request) -> Option<Reply> {
    let rest = req.path.strip_prefix("/api/v1/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let m = &req.method;
    let result = match (parts.as_slice(), m.as_str()) {
        (["apps"], "GET") => list_apps(state, req).await,
        (["apps"], "POST") => create_app(state, req).await,
        (["apps", id], "GET") => get_app(state, req, id).await,
        (["apps", id], "PATCH") => update_app(state, req, id).await,
        (["apps", id], "DELETE") => delete_app(state, req, id).await,
        (["apps", id, "secret"], "POST") => regenerate(state, req, id).await,
        (["tokens"], "GET") => list_tokens(state, req).await,
        (["tokens"], "POST") => create_token(state, req).await,
        (["tokens", id], "DELETE") => revoke_token(state, req, id).await,
        (["apps"] | ["apps", _] | ["apps", _, "secret"] | ["tokens"] | ["tokens", _], _) => {
            Err(Error::MethodNotAllowed(format!("{m} is not allowed here")).into())
        }
        _ => return None,
    };
    Some(crate::endpoint::json(result))
}

async fn list_apps(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let q: std::collections::HashMap<String, String> = req.query_pairs().into_iter().collect();
    let apps = owned::visible_apps(
        state,
        &caller,
        q.get("name").map(String::as_str),
        q.get("status").map(String::as_str),
    )
    .await?;
    Ok(Reply::json(
        StatusCode::OK,
        &apps.iter().map(app_json).collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AppBody {
    name: Option<String>,
    description: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    scopes: Option<String>,
    grant_types: Option<Vec<String>>,
    public: Option<bool>,
    first_party: Option<bool>,
    audiences: Option<Vec<String>>,
    pkce_optional: Option<bool>,
    /// Absent: unchanged; `null` or `""`: removed.
    #[serde(default, deserialize_with = "present")]
    backchannel_logout_uri: Option<Option<String>>,
    active: Option<bool>,
}

/// A field that was sent, `null` included (serde folds `null` and absent into `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn create_app(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let b: AppBody = json(req)?;
    let spec = AppSpec {
        name: b.name.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
        redirect_uris: b.redirect_uris.unwrap_or_default(),
        post_logout_redirect_uris: b.post_logout_redirect_uris.unwrap_or_default(),
        scopes: b.scopes.unwrap_or_else(|| "openid profile email".into()),
        grant_types: b.grant_types.unwrap_or_default(),
        public: b.public.unwrap_or(false),
        first_party: b.first_party.unwrap_or(false),
        audiences: b.audiences.unwrap_or_default(),
        pkce_optional: b.pkce_optional.unwrap_or(false),
        backchannel_logout_uri: b.backchannel_logout_uri.flatten(),
    };
    let (app, secret) = owned::register(state, &caller, &spec).await?;
    let mut body = app_json(&app);
    body["client_secret"] = secret.into();
    Ok(Reply::json(StatusCode::CREATED, &body))
}

async fn get_app(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &app_json(&owned::visible_app(state, &caller, id).await?),
    ))
}

async fn update_app(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let b: AppBody = json(req)?;
    let active = b.active;
    let (app, secret) = owned::update(
        state,
        &caller,
        id,
        |app| AppSpec {
            name: b.name.unwrap_or_else(|| app.name.clone()),
            description: b.description.unwrap_or_else(|| app.description.clone()),
            redirect_uris: b.redirect_uris.unwrap_or_else(|| app.redirect_uris.clone()),
            post_logout_redirect_uris: b
                .post_logout_redirect_uris
                .unwrap_or_else(|| app.post_logout_redirect_uris.clone()),
            scopes: b.scopes.unwrap_or_else(|| app.scopes.join(" ")),
            grant_types: b.grant_types.unwrap_or_else(|| app.grant_types.clone()),
            public: b.public.unwrap_or(app.public),
            first_party: b.first_party.unwrap_or(app.first_party),
            audiences: b.audiences.unwrap_or_else(|| app.audiences.clone()),
            pkce_optional: b.pkce_optional.unwrap_or(app.pkce_optional),
            backchannel_logout_uri: b
                .backchannel_logout_uri
                .unwrap_or_else(|| app.backchannel_logout_uri.clone()),
        },
        active,
    )
    .await?;
    let mut body = app_json(&app);
    if let Some(s) = secret {
        body["client_secret"] = s.into();
    }
    Ok(Reply::json(StatusCode::OK, &body))
}

async fn delete_app(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    owned::delete(state, &caller, id).await?;
    Ok(Reply::new(StatusCode::NO_CONTENT, "application/json", ""))
}

async fn regenerate(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let (app, secret) = owned::regenerate_secret(state, &caller, id).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({"client_id": app.client_id, "client_secret": secret}),
    ))
}

async fn list_tokens(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let tokens = owned::tokens(state, &caller).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &tokens.iter().map(token_json).collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
    #[serde(default)]
    read_only: bool,
}

async fn create_token(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let b: TokenBody = json(req)?;
    let (record, token) = owned::create_token(state, &caller, &b.name, b.read_only).await?;
    let mut body = token_json(&record);
    body["token"] = token.into();
    Ok(Reply::json(StatusCode::CREATED, &body))
}

async fn revoke_token(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    owned::revoke_token(state, &caller, id).await?;
    Ok(Reply::new(StatusCode::NO_CONTENT, "application/json", ""))
}
