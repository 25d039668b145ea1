//! Applications and API tokens as a signed-in user manages them: who may see and change
//! what. The JSON API (`/api/v1/apps|tokens`) and the settings pages are two faces of these
//! operations, so the permission rules live here once.
//!
//! Rules: everyone sees and changes their own applications and tokens; a `ROLE_ADMIN` of the
//! tenant sees and changes all of the tenant's; nothing of another tenant exists (404).
//! Only admins register first-party apps (they skip consent), and only admins grant an app
//! audiences: an audience is a route's (`routes[].audience`), so granting one lets the app's
//! tokens through that route. Only admins set a back-channel logout URI: frontdoor sends
//! requests there from inside the network.

use std::sync::Arc;

use crate::audit;
use crate::auth::Identity;
use crate::error::Error;
use crate::manage::{self, AppSpec};
use crate::state::State;
use crate::store::{ApiToken, App};

/// The role that administers a tenant.
pub const ADMIN_ROLE: &str = "ROLE_ADMIN";

/// A verified user managing apps and tokens.
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

/// A rule broken by a submitted field, as a 422.
pub fn invalid(e: manage::Invalid) -> Error {
    Error::InvalidField(e.to_string())
}

/// An app the caller may manage: 404 for another tenant's or a missing one, 403 for
/// someone else's.
pub async fn visible_app(state: &State, caller: &Caller, id: &str) -> Result<App, Error> {
    let app = state
        .store
        .get_app(id)
        .await?
        .filter(|a| a.tenant == caller.identity.tenant)
        .ok_or_else(|| Error::NotFound("no such application".into()))?;
    if !caller.may_manage(&app) {
        return Err(Error::Forbidden(
            "this application belongs to someone else".into(),
        ));
    }
    Ok(app)
}

/// The apps a caller may see, filtered by `name` (substring, any case) and `status`
/// (`active`/`inactive`).
pub async fn visible_apps(
    state: &State,
    caller: &Caller,
    name: Option<&str>,
    status: Option<&str>,
) -> Result<Vec<App>, Error> {
    let mut apps = state.store.list_apps(Some(&caller.identity.tenant)).await?;
    apps.retain(|a| caller.may_manage(a));
    if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
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

/// Registers an app for the caller and mails its owner; the secret (if any) is returned once.
pub async fn register(
    state: &State,
    caller: &Caller,
    spec: &AppSpec,
) -> Result<(App, Option<String>), Error> {
    if spec.first_party && !caller.is_admin() {
        return Err(Error::Forbidden(
            "only administrators register first-party applications".into(),
        ));
    }
    if !spec.audiences.is_empty() && !caller.is_admin() {
        return Err(Error::Forbidden(
            "only administrators grant applications audiences".into(),
        ));
    }
    let (app, secret) = manage::new_app(
        spec,
        &caller.identity.tenant,
        Some(caller.user_id().to_string()),
    )
    .map_err(invalid)?;
    if app.backchannel_logout_uri.is_some() && !caller.is_admin() {
        return Err(backchannel_is_admins());
    }
    state.store.create_app(&app).await?;
    audit::app("created", &app.client_id, caller.user_id());
    notify_owner(state, caller, &app);
    Ok((app, secret))
}

/// Re-registers an app with a new spec (and optionally a new active flag). A public client
/// that becomes confidential gets a secret, returned once.
pub async fn update(
    state: &State,
    caller: &Caller,
    id: &str,
    spec: impl FnOnce(&App) -> AppSpec,
    active: Option<bool>,
) -> Result<(App, Option<String>), Error> {
    let mut app = visible_app(state, caller, id).await?;
    let spec = spec(&app);
    if spec.first_party && !app.first_party && !caller.is_admin() {
        return Err(Error::Forbidden(
            "only administrators make applications first-party".into(),
        ));
    }
    if spec.audiences != app.audiences && !caller.is_admin() {
        return Err(Error::Forbidden(
            "only administrators grant applications audiences".into(),
        ));
    }
    let becomes_confidential = app.public && !spec.public;
    let backchannel_before = app.backchannel_logout_uri.clone();
    manage::apply(&spec, &mut app).map_err(invalid)?;
    if app.backchannel_logout_uri != backchannel_before && !caller.is_admin() {
        return Err(backchannel_is_admins());
    }
    let secret = if becomes_confidential {
        Some(manage::regenerate_secret(&mut app).map_err(invalid)?)
    } else {
        None
    };
    if let Some(active) = active {
        app.active = active;
    }
    state.store.update_app(&app).await?;
    // A deactivated app and its grants stop working on this node at once.
    state.grants.forget_app(&app.client_id);
    audit::app("updated", &app.client_id, caller.user_id());
    if secret.is_some() {
        audit::app("secret_regenerated", &app.client_id, caller.user_id());
    }
    Ok((app, secret))
}

/// frontdoor POSTs to an app's back-channel logout URI from inside the network, next to the
/// admin listener and the upstreams: where it may send requests is an administrator's choice,
/// like audiences, never an app owner's.
fn backchannel_is_admins() -> Error {
    Error::Forbidden("only administrators set an application's backchannel_logout_uri".into())
}

/// Activates or deactivates an app; a deactivated app's grants and tokens are refused.
pub async fn set_active(
    state: &State,
    caller: &Caller,
    id: &str,
    active: bool,
) -> Result<App, Error> {
    let mut app = visible_app(state, caller, id).await?;
    app.active = active;
    state.store.update_app(&app).await?;
    state.grants.forget_app(&app.client_id);
    audit::app(active_action(active), &app.client_id, caller.user_id());
    Ok(app)
}

/// Deletes an app and everything issued to it.
pub async fn delete(state: &State, caller: &Caller, id: &str) -> Result<App, Error> {
    let app = visible_app(state, caller, id).await?;
    state.store.delete_app(&app.client_id).await?;
    state.grants.forget_app(&app.client_id);
    audit::app("deleted", &app.client_id, caller.user_id());
    Ok(app)
}

/// Issues a new client secret (returned once); the old one stops working.
pub async fn regenerate_secret(
    state: &State,
    caller: &Caller,
    id: &str,
) -> Result<(App, String), Error> {
    let mut app = visible_app(state, caller, id).await?;
    let secret = manage::regenerate_secret(&mut app).map_err(invalid)?;
    state.store.update_app(&app).await?;
    // The old secret stops working on this node at once.
    state.grants.forget_app(&app.client_id);
    audit::app("secret_regenerated", &app.client_id, caller.user_id());
    Ok((app, secret))
}

/// The caller's own API tokens (admins too: a token is personal).
pub async fn tokens(state: &State, caller: &Caller) -> Result<Vec<ApiToken>, Error> {
    Ok(state
        .store
        .list_api_tokens(Some(caller.user_id()), Some(&caller.identity.tenant))
        .await?)
}

/// Creates an API token for the caller; its value is returned once.
pub async fn create_token(
    state: &State,
    caller: &Caller,
    name: &str,
    read_only: bool,
) -> Result<(ApiToken, String), Error> {
    let (record, token) =
        manage::new_api_token(caller.user_id(), &caller.identity.tenant, name, read_only)
            .map_err(invalid)?;
    state.store.create_api_token(&record).await?;
    audit::api_token("created", &record.id, &record.user_id, caller.user_id());
    Ok((record, token))
}

/// Revokes a token of the caller's (or, for an admin, of the tenant's).
pub async fn revoke_token(state: &State, caller: &Caller, id: &str) -> Result<(), Error> {
    let token = state
        .store
        .get_api_token(id)
        .await?
        .filter(|t| t.tenant == caller.identity.tenant)
        .ok_or_else(|| Error::NotFound("no such token".into()))?;
    if token.user_id != caller.user_id() && !caller.is_admin() {
        return Err(Error::Forbidden(
            "this token belongs to someone else".into(),
        ));
    }
    state
        .store
        .revoke_api_token(&token.id, crate::clock::now())
        .await?;
    // Refused on the next request on this node.
    state.credentials.forget_api_tokens();
    audit::api_token("revoked", &token.id, &token.user_id, caller.user_id());
    Ok(())
}

/// The audit action of an app's (de)activation.
pub fn active_action(active: bool) -> &'static str {
    if active { "activated" } else { "deactivated" }
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
