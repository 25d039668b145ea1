//! The login API for mobile and single-page apps: `login-check` (email + password),
//! emailed one-time codes, and `token/refresh`. Each answers a JWT access token bound to the
//! tenant of the host it was called on, and a rotated refresh token.

use std::net::IpAddr;

use rand::Rng;
use serde::Deserialize;

use crate::clock::now;
use http::StatusCode;

use crate::audit;
use crate::endpoint::{Reply, Request, json};
use crate::error::Error;
use crate::mail_templates::MailTemplate;
use crate::provider::access::RedeemError;
use crate::provider::issue;
use crate::regulation::{Attempt, Refused};
use crate::secrets::{self, random_token};
use crate::state::State;
use crate::store::{Grant, OtpCheck, OtpCode, RefreshToken, User};
use crate::tokens::{AccessClaims, OWN_CLIENT_ID};

/// Scopes of API tokens: the user's whole identity.
const API_SCOPE: &str = "openid profile email groups roles";

fn json_body<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, Error> {
    if req.method != http::Method::POST {
        return Err(Error::MethodNotAllowed("use POST".into()));
    }
    serde_json::from_slice(&req.body).map_err(|e| Error::Invalid(format!("invalid JSON body: {e}")))
}

/// The canonical form of an `email` field (see [`crate::email`]); refused when there is none.
fn email_field(raw: &str) -> Result<String, Error> {
    crate::email::typed(raw).map_err(|e| Error::Invalid(format!("email: {e}")))
}

/// A token pair, or the error in the JSON envelope.
fn pair_reply(result: Result<serde_json::Value, Error>) -> Reply {
    json(result.map(|v| Reply::json(StatusCode::OK, &v)))
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
    /// A TOTP or recovery code, for users with a second factor.
    #[serde(default)]
    second_factor: Option<String>,
}

/// A right first factor (password or emailed code): the user, and whether a second factor is
/// still to come (the user enrolled one and the tenant's policy is not `off`). Until it comes,
/// the regulation's failures of the account are not forgotten.
pub struct FirstFactor {
    /// The user the first factor is right for.
    pub user: User,
    /// Whether the sign-in needs a second factor before anything is issued.
    pub second_pending: bool,
}

/// Whether a sign-in of this user asks for a second factor.
async fn second_factor_asked(state: &State, user: &User) -> Result<bool, Error> {
    if state.config.second_factor_of(&user.tenant) == crate::config::SecondFactor::Off {
        return Ok(false);
    }
    crate::factors::enrolled(&*state.store, &user.id).await
}

/// The wrong-credentials answer, the same whichever factor was wrong: someone who guessed a
/// password but has not the second factor learns nothing more from a wrong code than from a
/// wrong password.
fn wrong_credentials() -> Error {
    Error::unauthenticated("invalid_credentials", "wrong email or password")
}

/// Checks a user's second factor (a TOTP or recovery code) within the sign-in regulation: a
/// ban is 429, a wrong code counts as a failed sign-in of the account from this address and
/// is answered like a wrong password.
pub async fn check_second_factor(
    state: &State,
    req: &Request,
    user: &User,
    typed: &str,
) -> Result<(), Error> {
    let check = crate::factors::check(&*state.store, &state.keys, &user.id, typed, now());
    regulated_second_factor(state, req, user, check).await
}

/// Runs the check of a second factor (a code, a passkey's assertion) within the regulation:
/// refused untried while the account or address is banned, a failure counted (and an audit
/// event, which fail2ban reads), and answered as a wrong password.
pub async fn regulated_second_factor(
    state: &State,
    req: &Request,
    user: &User,
    check: impl Future<Output = Result<bool, Error>>,
) -> Result<(), Error> {
    const METHOD: &str = "second_factor";
    let attempt = admit(state, &user.tenant, &user.email, req, METHOD).await?;
    if check.await? {
        crate::metrics::login(METHOD, "success");
        audit::sign_in_succeeded(METHOD, req.client_ip, &user.tenant, &user.email, &user.id);
        state.regulation.succeeded(&*state.store, &attempt).await;
        return Ok(());
    }
    crate::metrics::login(METHOD, "failure");
    // fail2ban sees a wrong code as it sees a wrong password.
    audit::sign_in_failed(
        METHOD,
        req.client_ip,
        &user.tenant,
        &user.email,
        "invalid_second_factor",
    );
    if let Some(banned) = state.regulation.failed(&*state.store, &attempt).await {
        return Err(banned.error());
    }
    Err(wrong_credentials())
}

/// The JSON API's second factor: in the same request as the first, or refused like a wrong
/// password.
async fn api_second_factor(
    state: &State,
    req: &Request,
    first: &FirstFactor,
    typed: Option<&str>,
) -> Result<(), Error> {
    if !first.second_pending {
        return Ok(());
    }
    check_second_factor(state, req, &first.user, typed.unwrap_or("")).await
}

/// `POST /api/v1/login-check`: `{"email","password"}` → `{"token","refresh_token"}`.
pub async fn login_check(state: &State, req: &Request) -> Reply {
    pair_reply(login_check_inner(state, req).await)
}

async fn login_check_inner(state: &State, req: &Request) -> Result<serde_json::Value, Error> {
    let c: Credentials = json_body(req)?;
    let tenant = state.config.tenant_for_host(&req.host);
    let email = email_field(&c.email)?;
    let first = check_password(state, req, tenant, &email, c.password, "api_password").await?;
    api_second_factor(state, req, &first, c.second_factor.as_deref()).await?;
    issue_pair(state, &first.user, now()).await
}

/// Checks a password within the sign-in regulation and answers the user it is right for; the
/// error says why not (429 `too_many_attempts` while a ban lasts). `method` labels the metric.
pub async fn check_password(
    state: &State,
    req: &Request,
    tenant: &str,
    email: &str,
    password: String,
    method: &str,
) -> Result<FirstFactor, Error> {
    let attempt = admit(state, tenant, email, req, method).await?;
    let found = state.store.find_user_by_email(tenant, email).await?;
    // For the audit log only: the answer to the client is the same in every case.
    let reason = match &found {
        None => "unknown_account",
        Some(u) if !u.active => "inactive_account",
        Some(_) => "wrong_password",
    };
    let user = found.filter(|u| u.active);
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| secrets::dummy_password_hash().to_string());
    // Argon2 runs on the blocking pool, never on the proxy's workers.
    let ok = secrets::check_password(password, hash).await;
    match user {
        Some(u) if ok => {
            crate::metrics::login(method, "success");
            let first = first_factor_right(state, &attempt, u).await?;
            // A sign-in that still waits for its second factor is not one yet.
            if !first.second_pending {
                audit::sign_in_succeeded(method, req.client_ip, tenant, email, &first.user.id);
            }
            Ok(first)
        }
        _ => {
            crate::metrics::login(method, "failure");
            audit::sign_in_failed(method, req.client_ip, tenant, email, reason);
            if let Some(banned) = state.regulation.failed(&*state.store, &attempt).await {
                return Err(banned.error());
            }
            Err(wrong_credentials())
        }
    }
}

/// After a right first factor: the failures are forgotten now only when no second factor is
/// to come (else an attacker with the password could reset the count between wrong codes).
async fn first_factor_right(
    state: &State,
    attempt: &Attempt,
    user: User,
) -> Result<FirstFactor, Error> {
    let second_pending = second_factor_asked(state, &user).await?;
    if !second_pending {
        state.regulation.succeeded(&*state.store, attempt).await;
    }
    Ok(FirstFactor {
        user,
        second_pending,
    })
}

/// The regulation's admission of a sign-in attempt: a ban is 429 `too_many_attempts` (and a
/// failed sign-in in the audit log: attempts during a ban are what fail2ban should see too).
async fn admit(
    state: &State,
    tenant: &str,
    email: &str,
    req: &Request,
    method: &str,
) -> Result<Attempt, Error> {
    state
        .regulation
        .admit(&*state.store, tenant, email, req.client_ip)
        .await
        .map_err(|refused| match refused {
            Refused::Banned(b) => {
                audit::sign_in_failed(method, req.client_ip, tenant, email, "banned");
                b.error()
            }
            Refused::Store(e) => Error::from(e),
        })
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

/// `POST /api/v1/token/refresh`: `{"refresh_token"}` → a new pair; the old one stops working.
pub async fn refresh(state: &State, req: &Request) -> Reply {
    pair_reply(refresh_inner(state, req).await)
}

async fn refresh_inner(state: &State, req: &Request) -> Result<serde_json::Value, Error> {
    let b: RefreshBody = json_body(req)?;
    let invalid = |m: &str| Error::unauthenticated("invalid_token", m);
    let redeemed =
        crate::provider::access::redeem_refresh_token(state, &b.refresh_token, OWN_CLIENT_ID, None)
            .await?
            .map_err(|e| {
                invalid(match e {
                    RedeemError::Reused => {
                        "the refresh token was already used; the session is revoked"
                    }
                    RedeemError::Expired => "the refresh token expired",
                    RedeemError::Revoked => "the session was revoked",
                    RedeemError::UserGone => "the user no longer exists",
                    RedeemError::Unknown | RedeemError::OtherClient => "unknown refresh token",
                })
            })?;
    if redeemed.grant.tenant != state.config.tenant_for_host(&req.host) {
        return Err(invalid("the refresh token belongs to another tenant"));
    }
    let body = pair_for_grant(
        state,
        &redeemed.user,
        &redeemed.grant.id,
        redeemed.token.auth_time,
    )
    .await?;
    crate::metrics::token_issued("api_refresh");
    Ok(body)
}

#[derive(Deserialize)]
struct OtpRequest {
    email: String,
}

/// `POST /api/v1/request-login-otp`: `{"email"}` → 202, and a code by mail when the user
/// exists. The answer and its timing are the same either way.
pub async fn request_otp(state: &State, req: &Request) -> Reply {
    let email = match json_body::<OtpRequest>(req).and_then(|b| email_field(&b.email)) {
        Ok(email) => email,
        Err(e) => return json(Err(e)),
    };
    let tenant = state.config.tenant_for_host(&req.host).to_string();
    send_otp(state, tenant, email, req.client_ip).await;
    Reply::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"status": "sent", "message": "if the address is known, a code is on its way"}),
    )
}

/// Creates and mails a code in the background (no timing difference for unknown emails), unless
/// the account or the asking address had its share of code mails for now (counted alike for
/// unknown emails, so the throttle says nothing about accounts either).
pub async fn send_otp(state: &State, tenant: String, email: String, client_ip: Option<IpAddr>) {
    match state
        .regulation
        .code_mail_allowed(&*state.store, &tenant, &email, client_ip)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(tenant, "one-time code mail throttled");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "store error throttling one-time code mails");
            return;
        }
    }
    let store = state.store.clone();
    let keys = state.keys.clone();
    let ttl = state.config.otp.ttl.0;
    let org = state.config.organization.clone();
    let mailer = state.mailer.clone();
    tokio::spawn(async move {
        let user = match store.find_user_by_email(&tenant, &email).await {
            Ok(u) => u.filter(|u| u.active),
            Err(e) => {
                tracing::error!(error = %e, "store error sending a one-time code");
                return;
            }
        };
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let now = now();
        // Without an account, a decoy is pending: a random hash that no code matches. Guesses
        // then take the same path in the store (an attempt counted and committed) as for a real
        // account, so that neither the answer nor its timing says which one has an account.
        let code_hash = match &user {
            Some(u) => otp_hash(&keys, &tenant, &u.email, &code),
            None => random_token(),
        };
        let record = OtpCode {
            tenant: tenant.clone(),
            email: user
                .as_ref()
                .map_or_else(|| email.clone(), |u| u.email.clone()),
            code_hash,
            created_at: now,
            expires_at: now + ttl.as_secs() as i64,
            attempts: 0,
        };
        if let Err(e) = store.put_otp(&record).await {
            tracing::error!(error = %e, "store error saving a one-time code");
            return;
        }
        let Some(user) = user else {
            return;
        };
        let values = serde_json::json!({
            "org": org, "name": user.name, "code": code, "minutes": ttl.as_secs().div_ceil(60),
        });
        if let Err(e) = mailer
            .send_template(&user.email, MailTemplate::OneTimeCode, &values)
            .await
        {
            tracing::error!(error = %e, "could not send a one-time code");
        }
    });
}

/// The stored form of a code: keyed with the server key, so a leaked table reveals nothing.
pub fn otp_hash(keys: &crate::keys::Keys, tenant: &str, email: &str, code: &str) -> String {
    keys.mac("otp", &format!("{tenant}\n{email}\n{code}"))
}

#[derive(Deserialize)]
struct OtpVerify {
    email: String,
    code: String,
    /// A TOTP or recovery code, for users with a second factor.
    #[serde(default)]
    second_factor: Option<String>,
}

/// `POST /api/v1/verify-login-otp`: `{"email","code"}` → the same pair as login-check.
pub async fn verify_otp(state: &State, req: &Request) -> Reply {
    pair_reply(verify_otp_inner(state, req).await)
}

async fn verify_otp_inner(state: &State, req: &Request) -> Result<serde_json::Value, Error> {
    let b: OtpVerify = json_body(req)?;
    let tenant = state.config.tenant_for_host(&req.host);
    let email = email_field(&b.email)?;
    let first = check_code(state, req, tenant, &email, b.code.trim()).await?;
    api_second_factor(state, req, &first, b.second_factor.as_deref()).await?;
    issue_pair(state, &first.user, now()).await
}

/// Checks an emailed code and answers the user it is right for; the error says why not (429
/// `too_many_attempts` while the account or the client's address is banned).
pub async fn check_code(
    state: &State,
    req: &Request,
    tenant: &str,
    email: &str,
    code: &str,
) -> Result<FirstFactor, Error> {
    let attempt = admit(state, tenant, email, req, "otp").await?;
    if let Err(message) = verify_code(state, tenant, email, code).await? {
        crate::metrics::login("otp", "failure");
        audit::sign_in_failed("otp", req.client_ip, tenant, email, "invalid_code");
        if let Some(banned) = state.regulation.failed(&*state.store, &attempt).await {
            return Err(banned.error());
        }
        return Err(Error::unauthenticated("invalid_code", message));
    }
    let user = state
        .store
        .find_user_by_email(tenant, email)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| {
            crate::metrics::login("otp", "failure");
            audit::sign_in_failed("otp", req.client_ip, tenant, email, "inactive_account");
            Error::unauthenticated("invalid_code", "this account is not active")
        })?;
    crate::metrics::login("otp", "success");
    let first = first_factor_right(state, &attempt, user).await?;
    if !first.second_pending {
        audit::sign_in_succeeded("otp", req.client_ip, tenant, email, &first.user.id);
    }
    Ok(first)
}

/// The one answer to every code that does not sign in, whatever the store found: a pending code
/// (wrong, used up or expired) must not read differently from no code at all, or the answer
/// tells which addresses have an account (ask for a code, then guess once).
const CODE_REFUSED: &str = "the code is wrong or expired; ask for a new code";

/// The code against the pending one: `Ok(Err(why))` when it is not right.
async fn verify_code(
    state: &State,
    tenant: &str,
    email: &str,
    code: &str,
) -> Result<Result<(), String>, Error> {
    // The format is the caller's own input: saying it is wrong reveals nothing about accounts.
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Err("the code is 6 digits".into()));
    }
    let hash = otp_hash(&state.keys, tenant, email, code);
    Ok(
        match state
            .store
            .check_otp(tenant, email, &hash, now(), state.config.otp.max_attempts)
            .await?
        {
            OtpCheck::Valid => Ok(()),
            OtpCheck::Wrong { .. }
            | OtpCheck::Exhausted
            | OtpCheck::Expired
            | OtpCheck::Missing => Err(CODE_REFUSED.into()),
        },
    )
}

/// A new API grant for the user and its first token pair.
async fn issue_pair(
    state: &State,
    user: &User,
    auth_time: i64,
) -> Result<serde_json::Value, Error> {
    if !state.keys.can_sign() {
        return Err(Error::Unavailable(crate::keys::KEYS_MISSING_MESSAGE.into()));
    }
    let grant = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: OWN_CLIENT_ID.to_string(),
        user_id: user.id.clone(),
        tenant: user.tenant.clone(),
        scope: API_SCOPE.to_string(),
        created_at: now(),
        revoked: false,
        // The login API's tokens belong to no browser session.
        sid: None,
    };
    state.store.create_grant(&grant).await?;
    let body = pair_for_grant(state, user, &grant.id, auth_time).await?;
    crate::metrics::token_issued("api_login");
    Ok(body)
}

async fn pair_for_grant(
    state: &State,
    user: &User,
    grant_id: &str,
    auth_time: i64,
) -> Result<serde_json::Value, Error> {
    let now = now();
    let ttl = state.config.tokens.access_token_ttl.0.as_secs() as i64;
    let token = issue::access_token(
        state,
        &AccessClaims {
            iss: state.issuer.clone(),
            sub: user.id.clone(),
            aud: state.issuer.clone(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: crate::tokens::new_jti(),
            client_id: OWN_CLIENT_ID.to_string(),
            scope: API_SCOPE.to_string(),
            gid: grant_id.to_string(),
            tnt: user.tenant.clone(),
            auth_time: Some(auth_time),
        },
    )?;
    let (refresh, token_hash) = secrets::time_ordered_token();
    state
        .store
        .create_refresh_token(&RefreshToken {
            token_hash,
            grant_id: grant_id.to_string(),
            client_id: OWN_CLIENT_ID.to_string(),
            user_id: user.id.clone(),
            scope: API_SCOPE.to_string(),
            expires_at: now + state.config.tokens.refresh_token_ttl.0.as_secs() as i64,
            auth_time,
        })
        .await?;
    Ok(serde_json::json!({
        "token": token,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": ttl,
    }))
}
