//! Settings → Account → Password: change one's own password (the rules are
//! `accounts::password`'s).

use askama::Template;
use http::StatusCode;

use super::{Chrome, PASSWORD, Page};
use crate::accounts::password::{self, Change, MIN_CHARS};
use crate::endpoint::Reply;
use crate::error::Error;
use crate::web::pages;

#[derive(Template)]
#[template(path = "settings_password.html")]
struct PasswordPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    error: Option<String>,
    notice: Option<&'static str>,
    min_chars: usize,
}

fn render(page: &Page<'_>, status: StatusCode, error: Option<String>) -> Reply {
    let changed = page
        .req
        .query_pairs()
        .iter()
        .any(|(k, v)| k == "done" && v == "changed");
    let form = page.csrf();
    let reply = pages::render(
        status,
        &PasswordPage {
            chrome: page.chrome("password"),
            csrf_token: &form.token,
            error,
            notice: changed.then_some(
                "Password changed. Every other session of yours was signed out; this one stays.",
            ),
            min_chars: MIN_CHARS,
        },
    );
    form.attach(reply)
}

/// `GET …/account/password`.
pub fn form(page: &Page<'_>) -> Reply {
    render(page, StatusCode::OK, None)
}

/// `POST …/account/password`: current, new and repeated password.
pub async fn change(page: &Page<'_>) -> Result<Reply, Error> {
    let Some((raw, session)) = page.state.sessions.from_headers(&page.req.headers).await? else {
        return Ok(super::to_login(page.req));
    };
    let form = page.form();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let change = Change {
        current: field("current_password"),
        new: field("new_password"),
        repeated: field("repeat_password"),
    };
    match password::change(page.state, page.req, &raw, &session, change).await {
        Ok(rotated) => Ok(Reply::see_other(&format!("{PASSWORD}?done=changed"))
            .cookie(&page.state.sessions.cookie(&rotated))),
        Err(
            e @ (Error::InvalidField(_) | Error::Unauthenticated { .. } | Error::TooMany { .. }),
        ) => {
            let reply = render(page, e.status(), Some(e.to_string()));
            Ok(match e.retry_after() {
                Some(seconds) => reply.retry_after(seconds),
                None => reply,
            })
        }
        Err(e) => Err(e),
    }
}
