//! `/api/v1/users`: a tenant's user administration as JSON, for its administrators (the
//! rules are `accounts::users`' and `accounts::invite`'s; the credentials and the
//! `X-Requested-With` rule for cookie-authenticated changes are `api::manage`'s).
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/users?q=` | the tenant's users, by email; `q` searches email and name |
//! | `GET /api/v1/users/{id}` | one user |
//! | `PATCH /api/v1/users/{id}` | `{"name","groups","roles","active"}`, each optional |
//! | `GET /api/v1/users/invitations` | pending invitations |
//! | `POST /api/v1/users/invitations` | `{"email","groups","roles"}` → 201 |
//! | `POST /api/v1/users/invitations/{id}/resend` | a new link, mailed |
//! | `DELETE /api/v1/users/invitations/{id}` | withdraws it → 204 |

use http::StatusCode;
use serde::Deserialize;

use crate::accounts::invite::{self, Inviter, NewInvite};
use crate::accounts::users::{self, Edit};
use crate::api::manage::{caller, json};
use crate::endpoint::{ApiError, Reply, Request};
use crate::error::Error;
use crate::manage::owned::Caller;
use crate::state::State;
use crate::store::{AccountToken, User};

/// A user as the API shows it (never the password hash).
pub fn user_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "id": u.id, "tenant": u.tenant, "email": u.email, "name": u.name, "picture": u.picture,
        "groups": u.groups, "roles": u.roles, "active": u.active,
        "has_password": u.password_hash.is_some(), "created_at": u.created_at,
    })
}

/// An invitation as the API shows it (never its link).
pub fn invitation_json(t: &AccountToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id, "tenant": t.tenant, "email": t.email, "groups": t.groups, "roles": t.roles,
        "invited_by": t.created_by, "created_at": t.created_at, "expires_at": t.expires_at,
    })
}

/// Routes `/api/v1/users…`; `None` for other paths.
pub async fn handle(state: &State, req: &Request) -> Option<Reply> {
    let rest = req.path.strip_prefix("/api/v1/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let m = req.method.as_str();
    let result = match (parts.as_slice(), m) {
        (["users"], "GET") => list(state, req).await,
        (["users", "invitations"], "GET") => invitations(state, req).await,
        (["users", "invitations"], "POST") => create_invitation(state, req).await,
        (["users", "invitations", id, "resend"], "POST") => resend(state, req, id).await,
        (["users", "invitations", id], "DELETE") => revoke(state, req, id).await,
        (["users", id], "GET") => get(state, req, id).await,
        (["users", id], "PATCH") => update(state, req, id).await,
        (["users", id, "reset-factors"], "POST") => reset_factors(state, req, id).await,
        (
            ["users"]
            | ["users", _]
            | ["users", "invitations", _]
            | ["users", "invitations", _, "resend"]
            | ["users", _, "reset-factors"],
            _,
        ) => Err(Error::MethodNotAllowed(format!("{m} is not allowed here")).into()),
        _ => return None,
    };
    Some(crate::endpoint::json(result))
}

/// The caller and the tenant they administer.
async fn admin(state: &State, req: &Request) -> Result<(Caller, String), ApiError> {
    let caller = caller(state, req).await?;
    let tenant = users::administered(&caller)?.to_string();
    Ok((caller, tenant))
}

async fn list(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let (_, tenant) = admin(state, req).await?;
    let q = req
        .query_pairs()
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let found = users::list(state, &tenant, &q).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &found.iter().map(user_json).collect::<Vec<_>>(),
    ))
}

async fn get(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let (_, tenant) = admin(state, req).await?;
    let user = users::get(state, &tenant, id).await?;
    Ok(Reply::json(StatusCode::OK, &user_json(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: Option<String>,
    groups: Option<Vec<String>>,
    roles: Option<Vec<String>>,
    active: Option<bool>,
}

async fn update(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let (caller, tenant) = admin(state, req).await?;
    let b: UserBody = json(req)?;
    let edit = Edit {
        name: b.name,
        groups: b.groups,
        roles: b.roles,
        active: b.active,
    };
    let user = users::edit(state, &tenant, Some(caller.user_id()), id, edit).await?;
    Ok(Reply::json(StatusCode::OK, &user_json(&user)))
}

async fn reset_factors(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let (_, tenant) = admin(state, req).await?;
    let had = users::reset_factors(state, &tenant, id).await?;
    let user = users::get(state, &tenant, id).await?;
    let mut body = user_json(&user);
    body["factors_removed"] = had.into();
    Ok(Reply::json(StatusCode::OK, &body))
}

async fn invitations(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let (_, tenant) = admin(state, req).await?;
    let pending = invite::pending(state, &tenant).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &pending.iter().map(invitation_json).collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvitationBody {
    email: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

fn inviter<'a>(caller: &'a Caller, req: &'a Request) -> Inviter<'a> {
    Inviter {
        id: Some(caller.user_id()),
        name: &caller.identity.name,
        host: Some(&req.host),
    }
}

async fn create_invitation(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let (caller, tenant) = admin(state, req).await?;
    let b: InvitationBody = json(req)?;
    let new = NewInvite {
        email: b.email,
        groups: b.groups,
        roles: b.roles,
    };
    let made = invite::create(state, &tenant, inviter(&caller, req), new).await?;
    Ok(Reply::json(StatusCode::CREATED, &invitation_json(&made)))
}

async fn resend(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let (caller, tenant) = admin(state, req).await?;
    let made = invite::resend(state, &tenant, id, inviter(&caller, req)).await?;
    Ok(Reply::json(StatusCode::OK, &invitation_json(&made)))
}

async fn revoke(state: &State, req: &Request, id: &str) -> Result<Reply, ApiError> {
    let (_, tenant) = admin(state, req).await?;
    invite::revoke(state, &tenant, id).await?;
    Ok(Reply::new(StatusCode::NO_CONTENT, "application/json", ""))
}
