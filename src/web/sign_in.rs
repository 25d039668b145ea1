//! The sign-in pages: the form (`GET|POST /_frontdoor/login`, email and password) and the
//! emailed one-time code (`POST /_frontdoor/login/code`). A right first factor goes on to
//! `two_factor` (the second factor, or the session and `return_to`); a refusal is the form
//! again, with the error's status and words.

use http::StatusCode;

use crate::api::login::FirstFactor;
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::state::State;
use crate::web::form::{Form, admitted, shown, signed_in};
use crate::web::{csrf, pages, return_to, two_factor};

/// `GET /_frontdoor/login`.
pub fn login_page(state: &State, req: &Request) -> Reply {
    let pairs = req.query_pairs();
    let target = pairs
        .iter()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.as_str());
    login_form(
        state,
        req,
        StatusCode::OK,
        None,
        &return_to::sanitize(target),
        "",
    )
}

/// `POST /_frontdoor/login`: email and password.
pub async fn login_submit(state: &State, req: &Request) -> Reply {
    let form = Form::read(req);
    let target = form.target();
    if let Err(e) = admitted(state, req, &form, "The form expired. Please sign in again.") {
        return shown(&e, |status, error| {
            login_form(state, req, status, error, &target, form.field("email"))
        });
    }
    // An address that is not canonical matches no account (and is never folded into one).
    let email = crate::email::typed(form.field("email")).unwrap_or_default();
    let signed = async {
        let first = password_sign_in(state, req, &email, form.field("password")).await?;
        two_factor::after_first_factor(state, req, first, "password", &target).await
    };
    signed.await.unwrap_or_else(|e| {
        shown(&e, |status, error| {
            login_form(state, req, status, error, &target, &email)
        })
    })
}

/// `POST /_frontdoor/login/code`: "email me a code" (with `email`) sends a one-time code and
/// asks for it; with `code` as well, checks it and signs in.
pub async fn code_submit(state: &State, req: &Request) -> Reply {
    let form = Form::read(req);
    let target = form.target();
    let email = crate::email::typed(form.field("email")).unwrap_or_default();
    if let Err(e) = admitted(state, req, &form, "The form expired. Please try again.") {
        return shown(&e, |status, error| {
            login_form(state, req, status, error, &target, &email)
        });
    }
    if !email.contains('@') {
        let e = Error::Invalid("Enter your email address to get a code.".into());
        return shown(&e, |status, error| {
            login_form(state, req, status, error, &target, "")
        });
    }
    let tenant = state.config.tenant_for_host(&req.host);
    let Some(code) = form.get("code") else {
        crate::api::login::send_otp(state, tenant.to_string(), email.clone(), req.client_ip).await;
        return code_form(state, req, StatusCode::OK, None, &target, &email);
    };
    let signed = async {
        let first = crate::api::login::check_code(state, req, tenant, &email, code.trim()).await?;
        two_factor::after_first_factor(state, req, first, "otp", &target).await
    };
    signed.await.unwrap_or_else(|e| {
        shown(&e, |status, error| {
            code_form(state, req, status, error, &target, &email)
        })
    })
}

/// `POST /_frontdoor/login/second-factor`: the half-signed-in record is taken (one try per
/// right first factor, whatever comes of it), then the code is checked; anything wrong is the
/// sign-in form again, a wrong code in the words of a wrong password.
pub async fn second_factor_submit(state: &State, req: &Request) -> Reply {
    let form = Form::read(req);
    let fallback = form.target();
    let again = |e: &Error, target: &str, email: &str| {
        shown(e, |status, error| {
            login_form(state, req, status, error, target, email)
        })
    };
    if let Err(e) = admitted(state, req, &form, "The form expired. Please sign in again.") {
        return again(&e, &fallback, "");
    }
    let (pending, user) = match two_factor::take_pending(state, req, form.field("pending")).await {
        Ok(found) => found,
        Err(e) => return again(&e, &fallback, ""),
    };
    let target = return_to::sanitize(Some(&pending.return_to));
    match two_factor::second_factor_session(state, req, &pending, &user, &form).await {
        Ok(raw) => signed_in(state, &target, &raw),
        Err(e) => again(&e, &target, &user.email),
    }
}

/// Checks a password (within the sign-in regulation).
async fn password_sign_in(
    state: &State,
    req: &Request,
    email: &str,
    password: &str,
) -> Result<FirstFactor, Error> {
    let tenant = state.config.tenant_for_host(&req.host);
    crate::api::login::check_password(state, req, tenant, email, password.to_string(), "password")
        .await
}

/// The sign-in page, with an error to show.
pub(crate) fn login_form(
    state: &State,
    req: &Request,
    status: StatusCode,
    error: Option<&str>,
    target: &str,
    email: &str,
) -> Reply {
    let form = csrf::issue(req, &state.keys, state.secure_cookies());
    let reply = pages::render(
        status,
        &pages::LoginPage {
            design: design_of(req, target),
            org: state.org(),
            error,
            csrf_token: &form.token,
            return_to: target,
            email,
            passkeys: two_factor::passwordless_on(state, req).is_some(),
            providers: state
                .federation
                .all()
                .iter()
                .map(|p| pages::IdpButton {
                    id: p.config.id.clone(),
                    name: p.config.name.clone(),
                    href: crate::federation::login::start_href(state, &p.config.id, target),
                    available: p.available(),
                })
                .collect(),
        },
    );
    form.attach(reply)
}

/// The login design: the `form` parameter of this request (query or form body), or else of
/// the authorization request the login was started from (Vorg's `form` parameter).
fn design_of(req: &Request, target: &str) -> &'static str {
    let from_request = req
        .query_pairs()
        .into_iter()
        .chain(req.form_pairs())
        .find(|(k, _)| k == "form")
        .map(|(_, v)| v);
    let from_target = || {
        target.strip_prefix("/oauth/authorize?").and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "form")
                .map(|(_, v)| v.into_owned())
        })
    };
    pages::login_design(from_request.or_else(from_target).as_deref())
}

fn code_form(
    state: &State,
    req: &Request,
    status: StatusCode,
    error: Option<&str>,
    target: &str,
    email: &str,
) -> Reply {
    let form = csrf::issue(req, &state.keys, state.secure_cookies());
    let reply = pages::render(
        status,
        &pages::LoginCodePage {
            org: state.org(),
            error,
            csrf_token: &form.token,
            return_to: target,
            email,
            minutes: state.config.otp.ttl.0.as_secs().div_ceil(60),
        },
    );
    form.attach(reply)
}
