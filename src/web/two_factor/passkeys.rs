//! Passkeys in the browser: registering one from Settings → Security (the options as JSON for
//! `static/passkeys.js`, then the browser's answer as a form), removing one, and the passkey
//! offered on the second-factor form of a sign-in. The ceremonies are `factors::passkey`'s.

use http::StatusCode;

use super::security::SecurityRequest;
use crate::api::login::regulated_second_factor;
use crate::clock::now;
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::factors::{self, passkey};
use crate::secrets::random_token;
use crate::state::State;
use crate::store::User;
use crate::web::form::Form;

fn off() -> Error {
    Error::Conflict("Passkeys are not available on this server.".into())
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
        let body = serde_json::json!({ "ceremony": id, "options": options });
        Ok(Reply::new(StatusCode::OK, "application/json", body.to_string()).no_store())
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
