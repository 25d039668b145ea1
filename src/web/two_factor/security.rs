//! Settings → Security: the signed-in user's authenticator app (enrolment, with its QR code
//! drawn as SVG) and recovery codes (shown once, replaced on request). Every POST carries a
//! CSRF token.

use askama::Template;
use http::{Method, StatusCode};

use super::{ENROL, SECURITY, active_user, session_of, to_login};
use crate::clock::now;
use crate::config::SecondFactor;
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::factors;
use crate::manage::owned::Caller;
use crate::session::ActiveSession;
use crate::state::State;
use crate::web::form::Form;
use crate::web::settings::Chrome;
use crate::web::{csrf, pages, return_to};

/// Settings → Security: the second factors of the signed-in user.
#[derive(Template)]
#[template(path = "settings_security.html")]
pub struct SecurityPage<'a> {
    /// The settings layout.
    pub chrome: Chrome<'a>,
    /// Second factors are off for the tenant.
    pub off: bool,
    /// The tenant requires one.
    pub required: bool,
    /// The user has a second factor (an authenticator app or a passkey).
    pub enrolled: bool,
    /// The user has a confirmed authenticator app.
    pub totp: bool,
    /// Passkeys can be registered here (`public_url` names a domain).
    pub passkeys_on: bool,
    /// The user's passkeys.
    pub passkeys: Vec<PasskeyRow>,
    /// Unused recovery codes.
    pub codes_left: u32,
    /// New recovery codes, shown this once.
    pub recovery_codes: Option<Vec<String>>,
    /// Where to go on after enrolling (the sign-in that sent here).
    pub continue_to: Option<&'a str>,
    /// CSRF token for the forms.
    pub csrf_token: &'a str,
}

/// A passkey in the list.
pub struct PasskeyRow {
    /// Its credential id (what the remove form names).
    pub id: String,
    /// The user's label.
    pub name: String,
    /// When it was registered (UTC date).
    pub created: String,
    /// When it last signed in (UTC date), or "never".
    pub last_used: String,
}

/// Settings → Security → authenticator app: the enrolment.
#[derive(Template)]
#[template(path = "settings_totp.html")]
pub struct TotpPage<'a> {
    /// The settings layout.
    pub chrome: Chrome<'a>,
    /// Error to show, if any.
    pub error: Option<&'a str>,
    /// The QR code, an inline `<svg>` drawn by frontdoor.
    pub qr_svg: &'a str,
    /// The secret in base32, to type.
    pub secret: &'a str,
    /// CSRF token for the form.
    pub csrf_token: &'a str,
    /// Where to go on afterwards.
    pub return_to: &'a str,
}

/// What a Settings → Security request asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Settings {
    Show,
    Enrol,
    Confirm,
    Regenerate,
    PasskeyOptions,
    PasskeyAdd,
    PasskeyRemove,
}

/// Settings → Security, behind a session; every POST carries a CSRF token.
pub(super) async fn answer(state: &State, req: &Request, what: Settings) -> Reply {
    let result = async {
        let Some((raw, session)) = session_of(state, req).await? else {
            let back = if req.method == Method::GET && return_to::is_safe(&req.path) {
                match req.query.as_str() {
                    "" => req.path.clone(),
                    q => format!("{}?{q}", req.path),
                }
            } else {
                SECURITY.to_string()
            };
            return Ok(to_login(&back));
        };
        let page = SecurityRequest {
            state,
            req,
            raw,
            session,
        };
        if what != Settings::Show && what != Settings::Enrol && !page.csrf_ok() {
            return Err(Error::Forbidden(
                "The form expired or did not come from this site. Nothing was changed. Reload the page and try again."
                    .into(),
            ));
        }
        if page.policy() == SecondFactor::Off && what != Settings::Show {
            return Err(Error::Forbidden(
                "Second factors are turned off here.".into(),
            ));
        }
        match what {
            Settings::Show => page.overview(None, None).await,
            Settings::Enrol => page.enrol().await,
            Settings::Confirm => page.confirm().await,
            Settings::Regenerate => page.regenerate().await,
            Settings::PasskeyOptions => page.passkey_options().await,
            Settings::PasskeyAdd => page.passkey_add().await,
            Settings::PasskeyRemove => page.passkey_remove().await,
        }
    };
    result.await.unwrap_or_else(|e| {
        pages::ErrorPage {
            org: state.org(),
            style: state.style_href(),
            title: "Two-step verification",
            link: Some((SECURITY, "Back to security settings")),
        }
        .render(&e)
    })
}

/// One Settings → Security request by a signed-in user.
pub(super) struct SecurityRequest<'a> {
    pub(super) state: &'a State,
    pub(super) req: &'a Request,
    raw: String,
    pub(super) session: std::sync::Arc<ActiveSession>,
}

impl SecurityRequest<'_> {
    pub(super) fn user_id(&self) -> &str {
        &self.session.identity.subject
    }

    fn policy(&self) -> SecondFactor {
        self.state
            .config
            .second_factor_of(&self.session.identity.tenant)
    }

    fn csrf_ok(&self) -> bool {
        let form = Form::read(self.req);
        self.req.is_form()
            && csrf::verify(
                self.req,
                &self.state.keys,
                Some(form.field(csrf::CSRF_FIELD)),
            )
    }

    fn chrome(&self) -> Chrome<'_> {
        Chrome {
            org: self.state.org(),
            user_email: &self.session.identity.email,
            is_admin: Caller {
                identity: self.session.identity.clone(),
            }
            .is_admin(),
            tenant: &self.session.identity.tenant,
            section: "security",
        }
    }

    /// The overview, with new recovery codes to show once.
    pub(super) async fn overview(
        &self,
        codes: Option<Vec<String>>,
        continue_to: Option<&str>,
    ) -> Result<Reply, Error> {
        let store = &*self.state.store;
        let form = csrf::issue(self.req, &self.state.keys, self.state.secure_cookies());
        let policy = self.policy();
        let reply = pages::render(
            StatusCode::OK,
            &SecurityPage {
                chrome: self.chrome(),
                off: policy == SecondFactor::Off,
                required: policy == SecondFactor::Required,
                enrolled: factors::enrolled(store, self.user_id()).await?,
                totp: factors::totp_enrolled(store, self.user_id()).await?,
                passkeys_on: self.state.passkeys.is_some(),
                passkeys: store
                    .list_passkeys(self.user_id())
                    .await?
                    .into_iter()
                    .map(|p| PasskeyRow {
                        id: p.cred_id,
                        name: p.name,
                        created: crate::web::settings::when(p.created_at),
                        last_used: p
                            .last_used
                            .map_or_else(|| "never".to_string(), crate::web::settings::when),
                    })
                    .collect(),
                codes_left: store.count_recovery_codes(self.user_id()).await?,
                recovery_codes: codes,
                continue_to,
                csrf_token: &form.token,
            },
        );
        Ok(form.attach(reply).no_store())
    }

    /// A new secret (replacing an unfinished enrolment) and its QR code.
    async fn enrol(&self) -> Result<Reply, Error> {
        let store = &*self.state.store;
        if factors::totp_enrolled(store, self.user_id()).await? {
            return Ok(Reply::see_other(SECURITY));
        }
        let secret = factors::totp::new_secret();
        let sealed = factors::seal::seal(&self.state.keys, self.user_id(), &secret);
        store.put_totp(self.user_id(), &sealed, now()).await?;
        let target = self.target();
        Ok(self.enrol_page(StatusCode::OK, None, &secret, &target))
    }

    fn target(&self) -> String {
        let from_query = self
            .req
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "return_to")
            .map(|(_, v)| v);
        let from_form = || {
            let form = Form::read(self.req);
            let t = form.field("return_to");
            (!t.is_empty()).then(|| t.to_string())
        };
        match from_query.or_else(from_form) {
            Some(t) => return_to::sanitize(Some(&t)),
            None => String::new(),
        }
    }

    fn enrol_page(
        &self,
        status: StatusCode,
        error: Option<&str>,
        secret: &[u8],
        target: &str,
    ) -> Reply {
        let issuer = self.state.org();
        let uri = factors::totp::otpauth_uri(issuer, &self.session.identity.email, secret);
        let qr = factors::totp::qr_svg(&uri).unwrap_or_default();
        let form = csrf::issue(self.req, &self.state.keys, self.state.secure_cookies());
        let reply = pages::render(
            status,
            &TotpPage {
                chrome: self.chrome(),
                error,
                qr_svg: &qr,
                secret: &factors::totp::base32(secret),
                csrf_token: &form.token,
                return_to: target,
            },
        );
        form.attach(reply).no_store()
    }

    /// The enrolment's first code: right, it turns the factor on, makes the first recovery
    /// codes and steps this session up (it just proved the factor); wrong, the same page again.
    async fn confirm(&self) -> Result<Reply, Error> {
        let state = self.state;
        let store = &*state.store;
        let user_id = self.user_id();
        let code = Form::read(self.req).field("code").trim().to_string();
        let target = self.target();
        if !factors::check_totp(store, &state.keys, user_id, &code, now(), false).await? {
            let Some(factor) = store.get_totp(user_id).await?.filter(|f| !f.confirmed) else {
                return Ok(Reply::see_other(ENROL));
            };
            let secret = factors::seal::open(&state.keys, user_id, &factor.secret_sealed)
                .map_err(|_| Error::internal())?;
            return Ok(self.enrol_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("That code is not right. Check that your phone's clock is right and enter the current code."),
                &secret,
                &target,
            ));
        }
        // The first factor of the account: its recovery codes come with it.
        let codes = factors::new_recovery_codes(store, &state.keys, user_id).await?;
        let user = active_user(state, &self.session).await?;
        let amr = factors::with_second(&self.session.identity.amr);
        let fresh = state
            .sessions
            .rotate(&self.raw, &user, "step_up", &amr)
            .await?;
        tracing::info!(user = %user_id, "authenticator app enrolled");
        let continue_to = (!target.is_empty()).then_some(target.as_str());
        Ok(self
            .overview(Some(codes), continue_to)
            .await?
            .cookie(&state.sessions.cookie(&fresh)))
    }

    /// New recovery codes replace the old ones.
    async fn regenerate(&self) -> Result<Reply, Error> {
        let state = self.state;
        if !factors::enrolled(&*state.store, self.user_id()).await? {
            return Err(Error::Conflict(
                "Set up an authenticator app first: recovery codes come with it.".into(),
            ));
        }
        let codes = factors::new_recovery_codes(&*state.store, &state.keys, self.user_id()).await?;
        tracing::info!(user = %self.user_id(), "recovery codes regenerated");
        self.overview(Some(codes), None).await
    }
}
