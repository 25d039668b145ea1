//! Second factors in the browser: the second step of a sign-in (its form, and the session
//! after it; `web::sign_in` answers the form), stepping a one-factor session up
//! (`/_frontdoor/step-up`), and Settings → Security (`security`: `/_frontdoor/settings/security…`).
//! The checks themselves are `factors`' and `api::login`'s (within the regulation).
//!
//! Between a right first factor and the second, the browser is half signed in: a store record
//! (`PendingFactor`) found by the hash of a random token the form carries, bound to the
//! browser's CSRF cookie, good for one submission within five minutes. It is never a session.

use http::{Method, StatusCode};

use crate::api::login::{FirstFactor, check_second_factor};
use crate::clock::now;
use crate::config::SecondFactor;
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::factors;
use crate::secrets::{ct_eq, hash_secret, random_token};
use crate::session::ActiveSession;
use crate::state::State;
use crate::store::{PendingFactor, User};
use crate::web::form::{Form, admitted, shown, signed_in};
use crate::web::{csrf, pages, return_to};

mod passkeys;
mod security;

pub use passkeys::passwordless_on;

use security::Settings;

/// The second step of a sign-in.
pub const SECOND_FACTOR: &str = "/_frontdoor/login/second-factor";
/// Stepping a session up to two factors.
pub const STEP_UP: &str = "/_frontdoor/step-up";
/// Settings → Security.
pub const SECURITY: &str = "/_frontdoor/settings/security";
/// The authenticator-app enrolment.
pub const ENROL: &str = "/_frontdoor/settings/security/totp";
/// New recovery codes.
pub const RECOVERY: &str = "/_frontdoor/settings/security/recovery-codes";
/// Registering a passkey: the browser's answer (`…/options` gives the challenge).
pub const PASSKEYS: &str = "/_frontdoor/settings/security/passkeys";
/// The options of a passkey registration, as JSON.
pub const PASSKEY_OPTIONS: &str = "/_frontdoor/settings/security/passkeys/options";
/// Removing a passkey.
pub const PASSKEY_REMOVE: &str = "/_frontdoor/settings/security/passkeys/remove";
/// A passwordless sign-in with a passkey: its answer (`…/options` gives the challenge).
pub const PASSKEY_SIGN_IN: &str = "/_frontdoor/login/passkey";
/// The options of a passwordless sign-in, as JSON.
pub const PASSKEY_SIGN_IN_OPTIONS: &str = "/_frontdoor/login/passkey/options";

/// How long a half-signed-in browser has for its second factor, in seconds.
const PENDING_SECONDS: i64 = 300;

/// The one answer to a pending sign-in that cannot be used: unknown, used, expired, or from
/// another browser.
const PENDING_GONE: &str = "The sign-in expired or was already used. Please sign in again.";

/// The step-up page for a return URL (sanitised again when read).
pub fn step_up_href(target: &str) -> String {
    with_return(STEP_UP, target)
}

fn with_return(page: &str, target: &str) -> String {
    format!(
        "{page}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", target)
            .finish()
    )
}

/// Answers the pages of this module; `None` for other paths.
pub async fn handle(state: &State, req: &Request) -> Option<Reply> {
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    let reply = match req.path.trim_end_matches('/') {
        STEP_UP if get => step_up_page(state, req).await,
        STEP_UP if post => step_up_submit(state, req).await,
        SECURITY if get => security::answer(state, req, Settings::Show).await,
        ENROL if get => security::answer(state, req, Settings::Enrol).await,
        ENROL if post => security::answer(state, req, Settings::Confirm).await,
        RECOVERY if post => security::answer(state, req, Settings::Regenerate).await,
        PASSKEY_OPTIONS if post => security::answer(state, req, Settings::PasskeyOptions).await,
        PASSKEYS if post => security::answer(state, req, Settings::PasskeyAdd).await,
        PASSKEY_REMOVE if post => security::answer(state, req, Settings::PasskeyRemove).await,
        PASSKEY_SIGN_IN_OPTIONS if post => passkeys::sign_in_options(state, req).await,
        PASSKEY_SIGN_IN if post => passkeys::sign_in_submit(state, req).await,
        _ => return None,
    };
    Some(reply)
}

/// After a right first factor (`method`: `password` or `otp`): the second-factor form when
/// one is asked for, else the session — and, where the tenant requires a factor the user has
/// not enrolled, the enrolment next.
pub async fn after_first_factor(
    state: &State,
    req: &Request,
    first: FirstFactor,
    method: &str,
    target: &str,
) -> Result<Reply, Error> {
    let user = first.user;
    if first.second_pending {
        let token = random_token();
        state
            .store
            .put_pending_factor(&PendingFactor {
                token_hash: hash_secret(&token),
                user_id: user.id.clone(),
                binding: browser_binding(state, req),
                amr: first_amr(method).to_string(),
                return_to: target.to_string(),
                expires_at: now() + PENDING_SECONDS,
            })
            .await?;
        tracing::info!(user = %user.id, "first factor right; second factor asked");
        let passkey = passkeys::second_factor_options(state, &user.id, &token).await?;
        return Ok(
            second_factor_form(state, req, StatusCode::OK, None, Some(&token), target)
                .passkey(passkey.as_deref(), None),
        );
    }
    let raw = state.sessions.create(&user, method).await?;
    tracing::info!(user = %user.id, method, "signed in");
    if state.config.second_factor_of(&user.tenant) == SecondFactor::Required {
        return Ok(
            Reply::see_other(&with_return(ENROL, target)).cookie(&state.sessions.cookie(&raw))
        );
    }
    Ok(signed_in(state, target, &raw))
}

fn first_amr(method: &str) -> &'static str {
    if method == "password" {
        factors::PWD
    } else {
        factors::OTP
    }
}

/// What ties a pending sign-in to the browser it started in: a keyed hash of its CSRF cookie
/// (HttpOnly, never in a page), so the form's token alone is worth nothing elsewhere.
fn browser_binding(state: &State, req: &Request) -> String {
    let cookie = req.cookie(csrf::CSRF_COOKIE).unwrap_or_default();
    state.keys.mac("pending-factor", &cookie)
}

/// The session of a right second factor after `pending`'s first (checked within the
/// regulation: a wrong code is answered as a wrong password); its raw id.
pub async fn second_factor_session(
    state: &State,
    req: &Request,
    pending: &PendingFactor,
    user: &User,
    form: &Form,
) -> Result<String, Error> {
    let amr = proved_second(state, req, user, form, form.field("pending"), &pending.amr).await?;
    let method = if pending.amr == factors::PWD {
        "password"
    } else {
        "otp"
    };
    let raw = state.sessions.create_with_amr(user, method, &amr).await?;
    tracing::info!(user = %user.id, "signed in with two factors");
    Ok(raw)
}

/// Checks the second factor a form carries (a passkey's assertion for ceremony `ceremony`, or
/// a code) within the regulation; the `amr` of `first` with it.
async fn proved_second(
    state: &State,
    req: &Request,
    user: &User,
    form: &Form,
    ceremony: &str,
    first: &str,
) -> Result<String, Error> {
    match form.field("passkey") {
        "" => {
            check_second_factor(state, req, user, form.field("code")).await?;
            Ok(factors::with_second(first))
        }
        answer => {
            passkeys::check_second_factor(state, req, user, ceremony, answer).await?;
            Ok(factors::with_second_method(first, factors::passkey::SWK))
        }
    }
}

/// The pending sign-in of a form's token, taken from the store, with its user; refused alike
/// when unknown, used, expired, from another browser or of a user no longer active.
pub async fn take_pending(
    state: &State,
    req: &Request,
    token: &str,
) -> Result<(PendingFactor, User), Error> {
    let gone = || Error::Invalid(PENDING_GONE.into());
    if token.is_empty() {
        return Err(gone());
    }
    let pending = state
        .store
        .take_pending_factor(&hash_secret(token))
        .await?
        .ok_or_else(gone)?;
    if pending.expires_at < now() {
        return Err(gone());
    }
    if !ct_eq(&pending.binding, &browser_binding(state, req)) {
        tracing::warn!(user = %pending.user_id, "a pending sign-in came from another browser");
        return Err(gone());
    }
    let user = state
        .store
        .get_user(&pending.user_id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(gone)?;
    Ok((pending, user))
}

/// The second-factor form, without passkey (`SecondFactorForm::passkey` adds it).
fn second_factor_form<'a>(
    state: &'a State,
    req: &'a Request,
    status: StatusCode,
    error: Option<&'a str>,
    pending: Option<&'a str>,
    target: &'a str,
) -> SecondFactorForm<'a> {
    SecondFactorForm(state, req, status, error, pending, target)
}

/// A second-factor form to render: the arguments of `second_factor_form`, in its order.
struct SecondFactorForm<'a>(
    &'a State,
    &'a Request,
    StatusCode,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
);

impl From<SecondFactorForm<'_>> for Reply {
    fn from(f: SecondFactorForm<'_>) -> Reply {
        f.passkey(None, None)
    }
}

impl SecondFactorForm<'_> {
    /// The page, offering the passkey of these `navigator.credentials.get` options if any
    /// (`ceremony`: their id, on the step-up page).
    fn passkey(self, options: Option<&str>, ceremony: Option<&str>) -> Reply {
        let SecondFactorForm(state, req, status, error, pending, target) = self;
        let form = csrf::issue(req, &state.keys, state.secure_cookies());
        let (heading, action) = match pending {
            Some(_) => ("Two-step verification", SECOND_FACTOR),
            None => ("Confirm it is you", STEP_UP),
        };
        let reply = pages::render(
            status,
            &pages::SecondFactorPage {
                org: state.org(),
                heading,
                action,
                error,
                csrf_token: &form.token,
                return_to: target,
                pending,
                passkey_options: options,
                passkey_ceremony: ceremony,
            },
        );
        form.attach(reply)
    }
}

/// The session of this host's tenant, with its raw id.
async fn session_of(
    state: &State,
    req: &Request,
) -> Result<Option<(String, std::sync::Arc<ActiveSession>)>, Error> {
    Ok(state
        .sessions
        .from_headers(&req.headers)
        .await?
        .filter(|(_, s)| s.identity.tenant == state.config.tenant_for_host(&req.host)))
}

/// To the sign-in page, coming back to `back` afterwards.
fn to_login(back: &str) -> Reply {
    Reply::redirect(&with_return("/_frontdoor/login", back))
}

/// `GET /_frontdoor/step-up?return_to=…`: the form for a one-factor session; a two-factor one
/// goes straight back, a user without a factor to the enrolment.
async fn step_up_page(state: &State, req: &Request) -> Reply {
    let pairs = req.query_pairs();
    let target = return_to::sanitize(
        pairs
            .iter()
            .find(|(k, _)| k == "return_to")
            .map(|(_, v)| v.as_str()),
    );
    let result = async {
        let Some((_, session)) = session_of(state, req).await? else {
            return Ok(to_login(&step_up_href(&target)));
        };
        if session.identity.two_factor() {
            return Ok(Reply::see_other(&target));
        }
        if state.config.second_factor_of(&session.identity.tenant) == SecondFactor::Off {
            return Err(Error::Forbidden(
                "This needs a second factor, and second factors are turned off here.".into(),
            ));
        }
        if !factors::enrolled(&*state.store, &session.identity.subject).await? {
            return Ok(Reply::see_other(&with_return(ENROL, &target)));
        }
        let ceremony = random_token();
        let passkey =
            passkeys::second_factor_options(state, &session.identity.subject, &ceremony).await?;
        Ok(
            second_factor_form(state, req, StatusCode::OK, None, None, &target)
                .passkey(passkey.as_deref(), Some(&ceremony)),
        )
    };
    result.await.unwrap_or_else(|e| step_up_error(state, &e))
}

/// `POST /_frontdoor/step-up`: a right code rotates the session into a two-factor one (a new
/// id, the same `sid`) and goes back to `return_to`.
async fn step_up_submit(state: &State, req: &Request) -> Reply {
    let form = Form::read(req);
    let target = form.target();
    let again = |e: &Error| {
        shown(e, |status, error| {
            second_factor_form(state, req, status, error, None, &target).into()
        })
    };
    if let Err(e) = admitted(state, req, &form, "The form expired. Please try again.") {
        return again(&e);
    }
    let result = async {
        let Some((raw, session)) = session_of(state, req).await? else {
            return Ok(to_login(&step_up_href(&target)));
        };
        let user = active_user(state, &session).await?;
        let ceremony = form.field("ceremony");
        let amr = proved_second(state, req, &user, &form, ceremony, &session.identity.amr).await?;
        let fresh = state.sessions.rotate(&raw, &user, "step_up", &amr).await?;
        tracing::info!(user = %user.id, "session stepped up to two factors");
        Ok(signed_in(state, &target, &fresh))
    };
    match result.await {
        Ok(reply) => reply,
        // Signed in already: saying the code was wrong tells nothing new.
        Err(Error::Unauthenticated { .. }) => again(&Error::unauthenticated(
            "invalid_code",
            "That code is not right. Try the current one from your app.",
        )),
        Err(e) => again(&e),
    }
}

fn step_up_error(state: &State, e: &Error) -> Reply {
    pages::ErrorPage {
        org: state.org(),
        style: state.style_href(),
        title: "Two-step verification",
        link: Some(("/", "Back")),
    }
    .render(e)
}

async fn active_user(state: &State, session: &ActiveSession) -> Result<User, Error> {
    state
        .store
        .get_user(&session.identity.subject)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| Error::unauthenticated("unauthenticated", "this account is not active"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_up_links_carry_the_return_url_encoded() {
        assert_eq!(
            step_up_href("/wiki?a=1&b=2"),
            "/_frontdoor/step-up?return_to=%2Fwiki%3Fa%3D1%26b%3D2"
        );
        assert_eq!(first_amr("password"), "pwd");
        assert_eq!(first_amr("otp"), "otp");
    }
}
