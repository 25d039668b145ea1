//! Settings → Users: a tenant's administrators list and search its users, edit their name,
//! groups and roles, deactivate and activate them, and invite people (send again, withdraw).
//! The rules are `accounts::users`' and `accounts::invite`'s.

use askama::Template;
use http::StatusCode;

use super::{Chrome, Page, USERS, when};
use crate::accounts::invite::{self, Inviter, NewInvite};
use crate::accounts::users::{self, Edit, split_list};
use crate::endpoint::Reply;
use crate::error::Error;
use crate::web::pages;

/// A row of the users table.
struct UserRow {
    id: String,
    email: String,
    name: String,
    groups: String,
    roles: String,
    active: bool,
}

/// A row of the pending invitations.
struct InvitationRow {
    id: String,
    email: String,
    groups: String,
    roles: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "settings_users.html")]
struct UsersPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    query: &'a str,
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "settings_user.html")]
struct UserPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    id: &'a str,
    email: &'a str,
    name: &'a str,
    groups: &'a str,
    roles: &'a str,
    error: Option<String>,
}

/// What a finished action says on the list (fixed words, picked by a query key).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "saved" => "Changes saved.",
        "activated" => "User activated: they may sign in again.",
        "deactivated" => "User deactivated: their sessions ended and their tokens are refused.",
        "invited" => "Invitation sent.",
        "factors-reset" => {
            "Second factors removed: the user signs in with their password and enrols again; their sessions ended."
        }
        "resent" => "Invitation sent again; the earlier link no longer works.",
        "revoked" => "Invitation withdrawn.",
        _ => return None,
    })
}

/// `GET …/users?q=`.
pub async fn list(page: &Page<'_>) -> Result<Reply, Error> {
    render_list(page, StatusCode::OK, None).await
}

async fn render_list(
    page: &Page<'_>,
    status: StatusCode,
    error: Option<String>,
) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    let q: std::collections::HashMap<String, String> = page.req.query_pairs().into_iter().collect();
    let query = q.get("q").map(String::as_str).unwrap_or("");
    let rows = users::list(page.state, tenant, query)
        .await?
        .into_iter()
        .map(|u| UserRow {
            groups: u.groups.join(", "),
            roles: u.roles.join(", "),
            id: u.id,
            email: u.email,
            name: u.name,
            active: u.active,
        })
        .collect();
    let invitations = invite::pending(page.state, tenant)
        .await?
        .into_iter()
        .map(|t| InvitationRow {
            groups: t.groups.join(", "),
            roles: t.roles.join(", "),
            expires: when(t.expires_at),
            id: t.id,
            email: t.email,
        })
        .collect();
    let form = page.csrf();
    let reply = pages::render(
        status,
        &UsersPage {
            chrome: page.chrome("users"),
            csrf_token: &form.token,
            query,
            users: rows,
            invitations,
            notice: notice(q.get("done").map(String::as_str)),
            error,
        },
    );
    Ok(form.attach(reply))
}

/// `GET …/users/{id}`: the edit form.
pub async fn show(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    let user = users::get(page.state, tenant, id).await?;
    Ok(user_form(
        page,
        StatusCode::OK,
        None,
        &user.id,
        &user.email,
        (&user.name, &user.groups.join(", "), &user.roles.join(", ")),
    ))
}

fn user_form(
    page: &Page<'_>,
    status: StatusCode,
    error: Option<String>,
    id: &str,
    email: &str,
    (name, groups, roles): (&str, &str, &str),
) -> Reply {
    let form = page.csrf();
    let reply = pages::render(
        status,
        &UserPage {
            chrome: page.chrome("users"),
            csrf_token: &form.token,
            id,
            email,
            name,
            groups,
            roles,
            error,
        },
    );
    form.attach(reply)
}

/// `POST …/users/{id}`: name, groups, roles.
pub async fn update(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    let form = page.form();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let edit = Edit {
        name: Some(field("name").to_string()),
        groups: Some(split_list(field("groups"))),
        roles: Some(split_list(field("roles"))),
        active: None,
    };
    match users::edit(page.state, tenant, Some(page.caller.user_id()), id, edit).await {
        Ok(_) => Ok(Reply::see_other(&format!("{USERS}?done=saved"))),
        Err(e @ Error::InvalidField(_)) => {
            let user = users::get(page.state, tenant, id).await?;
            let typed = (field("name"), field("groups"), field("roles"));
            Ok(user_form(
                page,
                e.status(),
                Some(e.to_string()),
                id,
                &user.email,
                typed,
            ))
        }
        Err(e) => Err(e),
    }
}

/// `POST …/users/{id}/activate|deactivate`.
pub async fn set_active(page: &Page<'_>, id: &str, active: bool) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    let edit = Edit {
        active: Some(active),
        ..Edit::default()
    };
    match users::edit(page.state, tenant, Some(page.caller.user_id()), id, edit).await {
        Ok(_) => {
            let done = if active { "activated" } else { "deactivated" };
            Ok(Reply::see_other(&format!("{USERS}?done={done}")))
        }
        Err(e @ Error::Conflict(_)) => render_list(page, e.status(), Some(e.to_string())).await,
        Err(e) => Err(e),
    }
}

/// `POST …/users/<id>/reset-factors`.
pub async fn reset_factors(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    users::reset_factors(page.state, tenant, id).await?;
    Ok(Reply::see_other(&format!("{USERS}?done=factors-reset")))
}

fn inviter<'a>(page: &'a Page<'_>) -> Inviter<'a> {
    Inviter {
        id: Some(page.caller.user_id()),
        name: &page.caller.identity.name,
        host: Some(&page.req.host),
    }
}

/// `POST …/users/invite`: email, groups, roles.
pub async fn invite(page: &Page<'_>) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    let form = page.form();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let new = NewInvite {
        email: field("email").to_string(),
        groups: split_list(field("groups")),
        roles: split_list(field("roles")),
    };
    match invite::create(page.state, tenant, inviter(page), new).await {
        Ok(_) => Ok(Reply::see_other(&format!("{USERS}?done=invited"))),
        Err(e @ (Error::InvalidField(_) | Error::Conflict(_) | Error::Unavailable(_))) => {
            render_list(page, e.status(), Some(e.to_string())).await
        }
        Err(e) => Err(e),
    }
}

/// `POST …/users/invitations/{id}/resend`.
pub async fn resend(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    invite::resend(page.state, tenant, id, inviter(page)).await?;
    Ok(Reply::see_other(&format!("{USERS}?done=resent")))
}

/// `POST …/users/invitations/{id}/revoke`.
pub async fn revoke(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let tenant = users::administered(&page.caller)?;
    invite::revoke(page.state, tenant, id).await?;
    Ok(Reply::see_other(&format!("{USERS}?done=revoked")))
}
