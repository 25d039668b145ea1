//! Passkeys in the browser: registering one from Settings → Security (the options as JSON for
//! `static/passkeys.js`, then the browser's answer as a form), removing one, the passkey
//! offered on the second-factor form of a sign-in, and the passwordless sign-in of the login
//! page. The ceremonies are `factors::passkey`'s.

use http::StatusCode;

use super::security::SecurityRequest;
use crate::api::login::regulated_second_factor;
use webauthn_rs::Webauthn;

use crate::clock::now;
use crate::config::SecondFactor;
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::factors::{self, passkey};
use crate::secrets::random_token;
use crate::state::State;
use crate::store::User;
use crate::web::form::{Form, admitted, shown, signed_in};
use crate::web::return_to;
use crate::web::sign_in::login_form;

fn off() -> Error {
    Error::Conflict("Passkeys are not available on this server.".into())
}

/// The relying party for a passwordless sign-in on this request's host: none where passkeys
/// are off or the host's tenant turned second factors off.
pub fn passwordless_on<'a>(state: &'a State, req: &Request) -> Option<&'a Webauthn> {
    let tenant = state.config.tenant_for_host(&req.host);
    if state.config.second_factor_of(tenant) == SecondFactor::Off {
        return None;
    }
    state.passkeys.as_deref()
}

/// The `navigator.credentials.get` options (JSON text) of a pending sign-in whose user has
/// passkeys, its ceremony stored under the sign-in's token; `None` otherwise.
pub(super) async fn second_factor_options(
    state: &State,
    user_id: &str,
    token: &str,
) -> Result<Option<String>, Error> {
    let Some(webauthn) = &state.passkeys else {
        return Ok(None);
    };
    let options =
        passkey::start_second_factor(webauthn, &*state.store, user_id, token, now()).await?;
    Ok(options.map(|o| o.to_string()))
}

/// Checks a passkey's assertion for the pending sign-in `token`, within the regulation like a
/// code.
pub(super) async fn check_second_factor(
    state: &State,
    req: &Request,
    user: &User,
    token: &str,
    answer: &str,
) -> Result<(), Error> {
    let check = async {
        let Some(webauthn) = &state.passkeys else {
            return Ok(false);
        };
        passkey::check_second_factor(webauthn, &*state.store, &user.id, token, answer, now()).await
    };
    regulated_second_factor(state, req, user, check).await
}

/// A ceremony's id and its options, as JSON.
fn ceremony_reply(id: &str, options: serde_json::Value) -> Reply {
    Reply::json(
        StatusCode::OK,
        &serde_json::json!({ "ceremony": id, "options": options }),
    )
}

/// `POST /_frontdoor/login/passkey/options`: a passwordless ceremony's id and options, as
/// JSON; the sign-in form's CSRF token and rate apply.
pub(super) async fn sign_in_options(state: &State, req: &Request) -> Reply {
    let form = Form::read(req);
    let result = async {
        admitted(
            state,
            req,
            &form,
            "The form expired. Reload the page and try again.",
        )?;
        let webauthn = passwordless_on(state, req).ok_or_else(off)?;
        let id = random_token();
        let options = passkey::start_passwordless(webauthn, &*state.store, &id, now()).await?;
        Ok::<_, Error>(ceremony_reply(&id, options))
    };
    crate::endpoint::json(result.await)
}

/// `POST /_frontdoor/login/passkey`: the answer of a passwordless ceremony signs its user in
/// with two factors (a key, and the user verification the authenticator did). Refused like a
/// wrong password when the credential is unknown, another tenant's or its user inactive;
/// a wrong assertion of a known user counts against that user in the regulation.
pub(super) async fn sign_in_submit(state: &State, req: &Request) -> Reply {
    let form = Form::read(req);
    let target = return_to::sanitize(Some(form.field("return_to")));
    let again = |e: &Error| {
        shown(e, |status, error| {
            login_form(state, req, status, error, &target, "")
        })
    };
    if let Err(e) = admitted(state, req, &form, "The form expired. Please sign in again.") {
        return again(&e);
    }
    let result = async {
        let webauthn = passwordless_on(state, req).ok_or_else(off)?;
        let store = &*state.store;
        let (id, answer) = (form.field("ceremony"), form.field("passkey"));
        let tenant = state.config.tenant_for_host(&req.host);
        let user = match passkey::claimed_user(webauthn, store, answer).await? {
            Some(user_id) => store.get_user(&user_id).await?,
            None => None,
        };
        let Some(user) = user.filter(|u| u.active && u.tenant == tenant) else {
            passkey::spend_passwordless(store, id, now()).await?;
            crate::metrics::login("passkey", "failure");
            tracing::info!(tenant = %tenant, "a passwordless passkey named no user here");
            return Err(Error::unauthenticated(
                "invalid_credentials",
                "wrong email or password",
            ));
        };
        let check = passkey::check_passwordless(webauthn, store, &user.id, id, answer, now());
        regulated_second_factor(state, req, &user, check).await?;
        let amr = factors::with_second_method("", passkey::SWK);
        let raw = state
            .sessions
            .create_with_amr(&user, "passkey", &amr)
            .await?;
        tracing::info!(user = %user.id, "signed in with a passkey");
        Ok(signed_in(state, &target, &raw))
    };
    result.await.unwrap_or_else(|e| again(&e))
}

impl SecurityRequest<'_> {
    /// `POST …/passkeys/options`: a registration's ceremony id and the options for
    /// `navigator.credentials.create`, as JSON.
    pub(super) async fn passkey_options(&self) -> Result<Reply, Error> {
        let webauthn = self.state.passkeys.as_ref().ok_or_else(off)?;
        let id = random_token();
        let identity = &self.session.identity;
        let options = passkey::start_registration(
            webauthn,
            &*self.state.store,
            (self.user_id(), &identity.email, &identity.name),
            &id,
            now(),
        )
        .await?;
        Ok(ceremony_reply(&id, options))
    }

    /// `POST …/passkeys`: the browser's answer registers the passkey; the first factor of an
    /// account comes with its recovery codes, shown once.
    pub(super) async fn passkey_add(&self) -> Result<Reply, Error> {
        let state = self.state;
        let webauthn = state.passkeys.as_ref().ok_or_else(off)?;
        let form = Form::read(self.req);
        let store = &*state.store;
        let first = !factors::enrolled(store, self.user_id()).await?;
        passkey::finish_registration(
            webauthn,
            store,
            self.user_id(),
            form.field("ceremony"),
            form.field("credential"),
            form.field("name"),
            now(),
        )
        .await?;
        let codes = if first {
            Some(factors::new_recovery_codes(store, &state.keys, self.user_id()).await?)
        } else {
            None
        };
        self.overview(codes, None).await
    }

    /// `POST …/passkeys/remove`: one of the user's own passkeys goes.
    pub(super) async fn passkey_remove(&self) -> Result<Reply, Error> {
        let id = Form::read(self.req).field("id").to_string();
        if !self.state.store.delete_passkey(self.user_id(), &id).await? {
            return Err(Error::NotFound("You have no such passkey.".into()));
        }
        tracing::info!(user = %self.user_id(), "passkey removed");
        self.overview(None, None).await
    }
}
