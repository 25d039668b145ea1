//! `/api/v1/apps` and `/api/v1/tokens`: the JSON API behind Settings → Developers.
//!
//! Rules: everyone sees and changes their own applications and tokens; a `ROLE_ADMIN` of the
//! tenant sees and changes all of the tenant's; nothing of another tenant exists (404).
//! Only admins register first-party apps (they skip consent). With a session cookie, changes
//! need `X-Requested-With` (a header no cross-site form can send).

use std::sync::Arc;

use serde::Deserialize;

use crate::auth::credentials::resolve_for_api;
use crate::auth::{Access, CredentialKind, Identity};
use crate::endpoint::{ApiError, Reply, Request};
use crate::manage::{self, AppSpec};
use crate::state::State;
use crate::store::{ApiToken, App};

/// The role that administers a tenant.
pub const ADMIN_ROLE: &str = "ROLE_ADMIN";

/// A verified user calling the API.
pub struct Caller {
    /// Their identity.
    pub identity: Arc<Identity>,
}

impl Caller {
    /// Whether they administer their tenant.
    pub fn is_admin(&self) -> bool {
        self.identity.roles.iter().any(|r| r == ADMIN_ROLE)
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.identity.subject
    }

    /// Whether they may see and change an app (of their tenant).
    pub fn may_manage(&self, app: &App) -> bool {
        self.is_admin() || app.owner.as_deref() == Some(self.user_id())
    }
}

/// The user behind a request, or why not.
pub async fn caller(state: &State, req: &Request) -> Result<Caller, ApiError> {
    let identity = match resolve_for_api(state, &req.headers, &req.host).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Err(ApiError::unauthorized(
                "unauthenticated",
                "authentication required",
            ));
        }
        Err((_, e)) => return Err(e),
    };
    if identity.user.starts_with("app:") || identity.kind == CredentialKind::ContactHash {
        return Err(ApiError::forbidden("this API is for users"));
    }
    let unsafe_method = !matches!(
        req.method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if unsafe_method && identity.access == Access::ReadOnly {
        return Err(ApiError::forbidden("this credential is read-only"));
    }
    if unsafe_method
        && identity.kind == CredentialKind::Session
        && req.header("x-requested-with").is_none()
    {
        return Err(ApiError::forbidden(
            "send X-Requested-With with cookie-authenticated changes",
        ));
    }
    Ok(Caller { identity })
}

fn json<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn invalid(e: manage::Invalid) -> ApiError {
    ApiError::new(422, "invalid_field", e.to_string())
}

/// An app as the API shows it (never its secret or its hash).
pub fn app_json(app: &App) -> serde_json::Value {
    serde_json::json!({
        "client_id": app.client_id, "tenant": app.tenant, "name": app.name, "description": app.description,
        "redirect_uris": app.redirect_uris, "post_logout_redirect_uris": app.post_logout_redirect_uris,
        "scopes": app.scopes, "grant_types": app.grant_types, "public": app.public,
        "first_party": app.first_party, "active": app.active, "owner": app.owner,
        "audiences": app.audiences, "created_at": app.created_at,
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
            Err(ApiError::new(
                405,
                "method_not_allowed",
                format!("{m} is not allowed here"),
            ))
        }
        _ => return None,
    };
    Some(match result {
        Ok(r) => r,
        Err(e) => e.into_reply(),
    })
}

async fn visible_app(state: &State, caller: &Caller, id: &str) -> Result<App, ApiError> {
    let app = state
        .store
        .get_app(id)
        .await?
        .filter(|a| a.tenant == caller.identity.tenant)
        .ok_or_else(|| ApiError::not_found("no such application"))?;
    if !caller.may_manage(&app) {
        return Err(ApiError::forbidden(
            "this application belongs to someone else",
        ));
    }
    Ok(app)
}

/// The apps a caller may see, filtered by `name` (substring), `status` (active/inactive).
pub async fn visible_apps(
    state: &State,
    caller: &Caller,
    name: Option<&str>,
    status: Option<&str>,
) -> Result<Vec<App>, ApiError> {
    let mut apps = state.store.list_apps(Some(&caller.identity.tenant)).await?;
    apps.retain(|a| caller.may_manage(a));
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        let n = n.to_lowercase();
        apps.retain(|a| a.name.to_lowercase().contains(&n));
    }
    match status {
        Some("active") => apps.retain(|a| a.active),
        Some("inactive") => apps.retain(|a| !a.active),
        _ => {}
    }
    Ok(apps)
}

async fn list_apps(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let q: std::collections::HashMap<String, String> = req.query_pairs().into_iter().collect();
    let apps = visible_apps(
        state,
        &caller,
        q.get("name").map(String::as_str),
        q.get("status").map(String::as_str),
    )
    .await?;
    Ok(Reply::json(
        200,
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
    active: Option<bool>,
}

/// Registers an app for the caller, mails its owner, and answers the secret once.
pub async fn register(
    state: &State,
    caller: &Caller,
    spec: &AppSpec,
) -> Result<(App, Option<String>), ApiError> {
    if spec.first_party && !caller.is_admin() {
        return Err(ApiError::forbidden(
            "only administrators register first-party applications",
        ));
    }
    let (app, secret) = manage::new_app(
        spec,
        &caller.identity.tenant,
        Some(caller.user_id().to_string()),
    )
    .map_err(invalid)?;
    state.store.create_app(&app).await?;
    notify_owner(state, caller, &app);
    Ok((app, secret))
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
    };
    let (app, secret) = register(state, &caller, &spec).await?;
    let mut body = app_json(&app);
    body["client_secret"] = secret.into();
    Ok(Reply::json(201, &body))
}

/// Mails the owner that an app was created (name and client id, never the secret).
fn notify_owner(state: &State, caller: &Caller, app: &App) {
    let template = match &state.config.mail.app_created_template {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read mail.app_created_template");
                return;
            }
        },
        None => crate::mail::APP_CREATED_TEMPLATE.to_string(),
    };
    let values = serde_json::json!({
        "owner_name": caller.identity.name, "owner_email": caller.identity.email, "name": app.name,
        "client_id": app.client_id, "tenant": app.tenant, "org": state.org(),
        "kind": if app.public { "public (PKCE, no secret)" } else { "confidential" },
        "grants": app.grant_types.join(", "), "description": app.description,
    });
    let body = match crate::mail::render(&template, &values) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "app-created message not sent");
            return;
        }
    };
    let mailer = state.mailer.clone();
    let to = caller.identity.email.clone();
    let subject = format!("OAuth application created: {}", app.name);
    tokio::spawn(async move {
        if let Err(e) = mailer.send(&to, &subject, body).await {
            tracing::error!(error = %e, "could not send the app-created message");
        }
    });
}

async fn get_app(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    Ok(Reply::json(
        200,
        &app_json(&visible_app(state, &caller, id).await?),
    ))
}

async fn update_app(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let mut app = visible_app(state, &caller, id).await?;
    let b: AppBody = json(req)?;
    if b.first_party == Some(true) && !app.first_party && !caller.is_admin() {
        return Err(ApiError::forbidden(
            "only administrators make applications first-party",
        ));
    }
    let spec = AppSpec {
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
    };
    let becomes_confidential = app.public && !spec.public;
    manage::apply(&spec, &mut app).map_err(invalid)?;
    // A client that becomes confidential needs a secret, shown once.
    let secret = if becomes_confidential {
        Some(manage::regenerate_secret(&mut app).map_err(invalid)?)
    } else {
        None
    };
    if let Some(active) = b.active {
        app.active = active;
    }
    state.store.update_app(&app).await?;
    state.grant_status.invalidate_all();
    let mut body = app_json(&app);
    if let Some(s) = secret {
        body["client_secret"] = s.into();
    }
    Ok(Reply::json(200, &body))
}

async fn delete_app(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let app = visible_app(state, &caller, id).await?;
    state.store.delete_app(&app.client_id).await?;
    state.grant_status.invalidate_all();
    Ok(Reply::new(204, "application/json", ""))
}

async fn regenerate(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let mut app = visible_app(state, &caller, id).await?;
    let secret = manage::regenerate_secret(&mut app).map_err(invalid)?;
    state.store.update_app(&app).await?;
    Ok(Reply::json(
        200,
        &serde_json::json!({"client_id": app.client_id, "client_secret": secret}),
    ))
}

async fn list_tokens(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let tokens = state
        .store
        .list_api_tokens(Some(caller.user_id()), Some(&caller.identity.tenant))
        .await?;
    Ok(Reply::json(
        200,
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
    let (record, token) = manage::new_api_token(
        caller.user_id(),
        &caller.identity.tenant,
        &b.name,
        b.read_only,
    )
    .map_err(invalid)?;
    state.store.create_api_token(&record).await?;
    let mut body = token_json(&record);
    body["token"] = token.into();
    Ok(Reply::json(201, &body))
}

async fn revoke_token(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let caller = caller(state, req).await?;
    let token = state
        .store
        .get_api_token(id)
        .await?
        .filter(|t| t.tenant == caller.identity.tenant)
        .ok_or_else(|| ApiError::not_found("no such token"))?;
    if token.user_id != caller.user_id() && !caller.is_admin() {
        return Err(ApiError::forbidden("this token belongs to someone else"));
    }
    state
        .store
        .revoke_api_token(&token.id, crate::clock::now())
        .await?;
    // Refused on the next request on this node.
    state.credentials.forget_api_tokens();
    Ok(Reply::new(204, "application/json", ""))
}
