//! The pages of a forgotten password, for people who are not signed in: asking for a link
//! (`/_frontdoor/password/forgot`) and choosing a new password with it
//! (`/_frontdoor/password/reset?token=…`). The rules are `accounts::reset`'s; both forms carry
//! a CSRF token and count against the per-address sign-in rate.

use std::collections::HashMap;

use askama::Template;
use http::{HeaderValue, StatusCode};

use crate::accounts::password::MIN_CHARS;
use crate::accounts::reset;
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::state::State;
use crate::web::{csrf, pages};

/// Where "forgot password" lives.
pub const FORGOT_PATH: &str = "/_frontdoor/password/forgot";

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotPage<'a> {
    org: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
    email: &'a str,
    sent: bool,
    minutes: u64,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage<'a> {
    org: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
    email: &'a str,
    token: &'a str,
    min_chars: usize,
}

/// `GET /_frontdoor/password/forgot`.
pub fn forgot_page(state: &State, req: &Request) -> Reply {
    forgot(state, req, StatusCode::OK, None, "", false)
}

/// `POST /_frontdoor/password/forgot`: the same answer whether or not the address has an
/// account.
pub async fn forgot_submit(state: &State, req: &Request) -> Reply {
    let form = fields(req);
    let typed = form.get("email").map(String::as_str).unwrap_or("");
    let email = crate::email::typed(typed).unwrap_or_default();
    let asked = async {
        admitted(state, req, &form)?;
        if !email.contains('@') {
            return Err(Error::InvalidField(
                "Enter the address you sign in with.".into(),
            ));
        }
        let tenant = state.config.tenant_for_host(&req.host);
        reset::request(state, tenant, &email, &req.host, req.client_ip).await
    };
    match asked.await {
        Ok(()) => forgot(state, req, StatusCode::OK, None, &email, true),
        Err(e) => with_retry(
            &e,
            forgot(state, req, e.status(), Some(words(&e)), typed, false),
        ),
    }
}

/// `GET /_frontdoor/password/reset?token=…`: the form, when the link can be used.
pub async fn reset_page(state: &State, req: &Request) -> Reply {
    let pairs: HashMap<String, String> = req.query_pairs().into_iter().collect();
    let secret = pairs.get("token").map(String::as_str).unwrap_or("");
    let tenant = state.config.tenant_for_host(&req.host);
    match reset::find(state, tenant, secret).await {
        Ok(token) => reset_form(state, req, StatusCode::OK, None, &token.email, secret),
        Err(e) => unusable(state, &e),
    }
}

/// `POST /_frontdoor/password/reset`: the new password, twice, and the link's secret.
pub async fn reset_submit(state: &State, req: &Request) -> Reply {
    let form = fields(req);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let secret = field("token");
    let tenant = state.config.tenant_for_host(&req.host);
    let done = async {
        admitted(state, req, &form)?;
        reset::redeem(
            state,
            tenant,
            secret,
            field("new_password"),
            field("repeat_password"),
        )
        .await
    };
    match done.await {
        Ok(_) => link_done(
            state,
            "Password changed",
            "Your new password is set, and every session of yours was signed out. Sign in with the new password.",
        ),
        Err(e @ (Error::InvalidField(_) | Error::Forbidden(_) | Error::TooMany { .. })) => {
            // The link is still good (nothing was spent): the form again, with the error.
            let email = reset::find(state, tenant, secret)
                .await
                .map(|t| t.email)
                .unwrap_or_default();
            let reply = reset_form(state, req, e.status(), Some(words(&e)), &email, secret);
            with_retry(&e, reply)
        }
        Err(e) => unusable(state, &e),
    }
}

/// The submitted form, one value per field.
pub(crate) fn fields(req: &Request) -> HashMap<String, String> {
    req.form_pairs().into_iter().collect()
}

/// The per-address rate of sign-in requests and the form's CSRF token.
pub(crate) fn admitted(
    state: &State,
    req: &Request,
    form: &HashMap<String, String>,
) -> Result<(), Error> {
    if let Some(wait) = state.regulation.login_rate.check(req.client_ip) {
        crate::metrics::rate_limited("login");
        return Err(Error::TooMany {
            code: "too_many_requests",
            message: format!("Too many requests from your network. Try again in {wait} s."),
            retry_after: wait,
        });
    }
    let submitted = form.get(csrf::CSRF_FIELD).map(String::as_str);
    if !csrf::verify(req, &state.keys, submitted) {
        return Err(Error::Forbidden(
            "The form expired or did not come from this site. Reload the page and try again."
                .into(),
        ));
    }
    Ok(())
}

fn words(e: &Error) -> String {
    pages::error_words(e)
}

pub(crate) fn with_retry(e: &Error, reply: Reply) -> Reply {
    match e.retry_after() {
        Some(seconds) => reply.retry_after(seconds),
        None => reply,
    }
}

/// The link's secret is in the page's URL: no other site learns it from a `Referer`.
/// The page after a mailed link did its work: what happened, and the way to sign in.
pub(crate) fn link_done(state: &State, title: &str, message: &str) -> Reply {
    no_referrer(pages::render(
        StatusCode::OK,
        &pages::MessagePage {
            org: state.org(),
            style: state.style_href(),
            title,
            message,
            link: Some(("/_frontdoor/login", "Sign in")),
        },
    ))
}

pub(crate) fn no_referrer(reply: Reply) -> Reply {
    reply.header(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    )
}

fn forgot(
    state: &State,
    req: &Request,
    status: StatusCode,
    error: Option<String>,
    email: &str,
    sent: bool,
) -> Reply {
    let form = csrf::issue(req, &state.keys, state.secure_cookies());
    let reply = pages::render(
        status,
        &ForgotPage {
            org: state.org(),
            csrf_token: &form.token,
            error,
            email,
            sent,
            minutes: state
                .config
                .accounts
                .reset_link_ttl
                .0
                .as_secs()
                .div_ceil(60),
        },
    );
    form.attach(reply)
}

fn reset_form(
    state: &State,
    req: &Request,
    status: StatusCode,
    error: Option<String>,
    email: &str,
    secret: &str,
) -> Reply {
    let form = csrf::issue(req, &state.keys, state.secure_cookies());
    let reply = pages::render(
        status,
        &ResetPage {
            org: state.org(),
            csrf_token: &form.token,
            error,
            email,
            token: secret,
            min_chars: MIN_CHARS,
        },
    );
    no_referrer(form.attach(reply))
}

/// A link that cannot be used (or a failure past the form): a page that says so, and where
/// to ask for a new one.
fn unusable(state: &State, e: &Error) -> Reply {
    no_referrer(
        pages::ErrorPage {
            org: state.org(),
            style: state.style_href(),
            title: "This link cannot be used",
            link: Some((FORGOT_PATH, "Ask for a new link")),
        }
        .render(e),
    )
}
