//! Settings → Developers: the pages where people manage their OAuth applications and API
//! tokens, behind a frontdoor session. Every change is a POST carrying a CSRF token, and
//! answers with a redirect (post/redirect/get), so a reload never repeats it. The rules of
//! who may do what are `manage::owned`'s, shared with the JSON API.

mod apps;
mod password;
mod tokens;
mod users;

use std::collections::HashMap;

use http::{Method, StatusCode};

use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::manage::owned::Caller;
use crate::state::State;
use crate::web::{csrf, pages};

/// Where the settings live.
pub const PREFIX: &str = "/_frontdoor/settings";
/// The OAuth applications grid.
pub const APPS: &str = "/_frontdoor/settings/developers/apps";
/// The API tokens page.
pub const TOKENS: &str = "/_frontdoor/settings/developers/tokens";
/// The password page.
pub const PASSWORD: &str = "/_frontdoor/settings/security/password";
/// The tenant's users (administrators only).
pub const USERS: &str = "/_frontdoor/settings/users";

/// Answers `/_frontdoor/settings…` and `/_frontdoor/admin`; `None` for other paths.
pub async fn handle(state: &State, req: &Request) -> Option<Reply> {
    let path = req.path.as_str();
    if path == "/_frontdoor/admin" || path == PREFIX || path == "/_frontdoor/settings/" {
        return Some(Reply::see_other(APPS));
    }
    // The account pages' paths (`security/…`, `users…`) and the developers' (`apps…`,
    // `tokens…`) differ from their first segment on, so one table holds them all.
    let rest = path
        .strip_prefix("/_frontdoor/settings/developers/")
        .or_else(|| {
            path.strip_prefix("/_frontdoor/settings/")
                .filter(|r| r.starts_with("security/") || *r == "users" || r.starts_with("users/"))
        })?;
    Some(
        answer(state, req, rest)
            .await
            .unwrap_or_else(|e| error_page(state, &e)),
    )
}

/// A settings page for the signed-in user (or the way to sign in first).
async fn answer(state: &State, req: &Request, rest: &str) -> Result<Reply, Error> {
    let Some(caller) = signed_in(state, req).await? else {
        return Ok(to_login(req));
    };
    let page = Page { state, req, caller };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    if post && let Err(reply) = page.check_csrf() {
        return Ok(reply);
    }
    match (parts.as_slice(), get, post) {
        (["apps"], true, _) => apps::list(&page).await,
        (["apps"], _, true) => apps::create(&page).await,
        (["apps", "new"], true, _) => apps::new_form(&page),
        (["apps", id], true, _) => apps::show(&page, id).await,
        (["apps", id], _, true) => apps::update(&page, id).await,
        (["apps", id, "edit"], true, _) => apps::edit_form(&page, id).await,
        (["apps", id, "delete"], true, _) => apps::confirm_delete(&page, id).await,
        (["apps", id, "delete"], _, true) => apps::delete(&page, id).await,
        (["apps", id, "activate"], _, true) => apps::set_active(&page, id, true).await,
        (["apps", id, "deactivate"], _, true) => apps::set_active(&page, id, false).await,
        (["apps", id, "secret"], _, true) => apps::regenerate(&page, id).await,
        (["tokens"], true, _) => tokens::list(&page).await,
        (["tokens"], _, true) => tokens::create(&page).await,
        (["tokens", id, "revoke"], _, true) => tokens::revoke(&page, id).await,
        (["security", "password"], true, _) => Ok(password::form(&page)),
        (["security", "password"], _, true) => password::change(&page).await,
        (["users"], true, _) => users::list(&page).await,
        (["users", "invite"], _, true) => users::invite(&page).await,
        (["users", "invitations", id, "resend"], _, true) => users::resend(&page, id).await,
        (["users", "invitations", id, "revoke"], _, true) => users::revoke(&page, id).await,
        (["users", id], true, _) => users::show(&page, id).await,
        (["users", id], _, true) => users::update(&page, id).await,
        (["users", id, "activate"], _, true) => users::set_active(&page, id, true).await,
        (["users", id, "deactivate"], _, true) => users::set_active(&page, id, false).await,
        (["users", id, "reset-factors"], _, true) => users::reset_factors(&page, id).await,
        _ => Err(Error::NotFound("There is no such page.".into())),
    }
}

/// One request to a settings page, by a signed-in user.
pub struct Page<'a> {
    state: &'a State,
    req: &'a Request,
    caller: Caller,
}

impl Page<'_> {
    /// The submitted form, first value of each field.
    fn form(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        for (k, v) in self.req.form_pairs() {
            map.entry(k).or_insert(v);
        }
        map
    }

    /// Every value of a repeated form field (checkboxes).
    fn form_all(&self, name: &str) -> Vec<String> {
        self.req
            .form_pairs()
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect()
    }

    fn check_csrf(&self) -> Result<(), Reply> {
        let form = self.form();
        if self.req.is_form()
            && csrf::verify(
                self.req,
                &self.state.keys,
                form.get(csrf::CSRF_FIELD).map(String::as_str),
            )
        {
            return Ok(());
        }
        tracing::warn!(path = %self.req.path, "settings form without a valid CSRF token");
        Err(pages::render(
            StatusCode::FORBIDDEN,
            &pages::MessagePage {
                org: self.state.org(),
                style: self.state.style_href(),
                title: "The form expired",
                message: "The form expired or did not come from this site. Nothing was changed. Go back, reload the page and try again.",
                link: Some((APPS, "Back to settings")),
            },
        ))
    }

    /// A CSRF token for the forms of the page being rendered.
    fn csrf(&self) -> csrf::FormToken {
        csrf::issue(self.req, &self.state.keys, self.state.secure_cookies())
    }

    /// Header of every settings page.
    fn chrome(&self, section: &'static str) -> Chrome<'_> {
        Chrome {
            org: self.state.org(),
            user_email: &self.caller.identity.email,
            is_admin: self.caller.is_admin(),
            tenant: &self.caller.identity.tenant,
            section,
        }
    }
}

/// What the layout of every settings page shows.
pub struct Chrome<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// Who is signed in.
    pub user_email: &'a str,
    /// Whether they administer the tenant (they see all of its apps).
    pub is_admin: bool,
    /// Their tenant.
    pub tenant: &'a str,
    /// `apps`, `tokens`, `password` or `users`: the highlighted tab.
    pub section: &'static str,
}

/// The signed-in user of this host's tenant, if any.
async fn signed_in(state: &State, req: &Request) -> Result<Option<Caller>, Error> {
    let session = state.sessions.from_headers(&req.headers).await?;
    Ok(session
        .filter(|(_, s)| s.identity.tenant == state.config.tenant_for_host(&req.host))
        .map(|(_, s)| Caller {
            identity: s.identity.clone(),
        }))
}

/// To the login page, coming back here afterwards (GET only: a POST cannot be resumed).
fn to_login(req: &Request) -> Reply {
    let back = if req.method == Method::GET && crate::web::return_to::is_safe(&req.path) {
        if req.query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{}", req.path, req.query)
        }
    } else {
        APPS.to_string()
    };
    let login = format!(
        "/_frontdoor/login?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &back)
            .finish()
    );
    Reply::redirect(&login)
}

/// An error as a settings page with the error's status: its own words for what is not the
/// caller's or not there, the error's message otherwise.
fn error_page(state: &State, e: &Error) -> Reply {
    let (title, message) = match e {
        Error::Forbidden(_) => (
            "Not yours",
            "You cannot see or change this: it belongs to someone else.".to_string(),
        ),
        Error::NotFound(_) => (
            "Not found",
            "There is nothing here. It may have been deleted.".to_string(),
        ),
        Error::StoreUnavailable | Error::Unavailable(_) => ("Unavailable", e.to_string()),
        _ => ("Something went wrong", e.to_string()),
    };
    pages::ErrorPage {
        org: state.org(),
        style: state.style_href(),
        title,
        link: Some((APPS, "Back to your applications")),
    }
    .with_message(e.status(), &message)
}

/// Plain words for a Unix time, UTC.
pub fn when(ts: i64) -> String {
    use cookie::time::OffsetDateTime;
    match OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "—".to_string(),
    }
}
