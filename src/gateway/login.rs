//! Browser login: the sign-in page, and the gateway's own authorization-code round trip
//! (protected URL → `/oauth/authorize` as client `frontdoor` → `/_frontdoor/callback`).

use cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};

use crate::endpoint::{Reply, Request};
use crate::provider::access::{CodeRefused, redeem_code};
use crate::provider::scopes::OWN_CLIENT_SCOPE;
use crate::regulation::{Banned, Refused};
use crate::secrets::{self, ct_eq, pkce_s256, random_token};
use crate::state::State;
use crate::tokens::OWN_CLIENT_ID;
use crate::web::{csrf, pages, return_to};

/// Cookie carrying the pending gateway login (state, PKCE verifier, return URL), encrypted.
pub const LOGIN_COOKIE: &str = "frontdoor_login";

#[derive(Serialize, Deserialize)]
struct Pending {
    /// When the login started; a pending login is good for 10 minutes.
    #[serde(default)]
    started: i64,
    state: String,
    verifier: String,
    return_to: String,
}

/// `GET /_frontdoor/login`.
pub fn login_page(state: &State, req: &Request) -> Reply {
    let pairs = req.query_pairs();
    let target = pairs
        .iter()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.as_str());
    render_login(state, req, 200, None, &return_to::sanitize(target), "")
}

fn render_login(
    state: &State,
    req: &Request,
    status: u16,
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

/// What the sign-in pages say when the store cannot answer.
const UNAVAILABLE: &str = "Sign-in is unavailable right now; try again in a moment.";

/// The login page answering 503 because the store cannot answer.
fn unavailable(state: &State, req: &Request, target: &str, email: &str) -> Reply {
    render_login(state, req, 503, Some(UNAVAILABLE), target, email)
}

/// The login page answering 429 while a sign-in ban lasts ("locked").
fn locked(state: &State, req: &Request, b: Banned, target: &str, email: &str) -> Reply {
    render_login(state, req, 429, Some(&b.message()), target, email).retry_after(b.retry_after)
}

/// The login page answering 429 past the per-address rate of sign-in requests.
fn slow_down(state: &State, req: &Request, wait: u64, target: &str, email: &str) -> Reply {
    crate::metrics::rate_limited("login");
    let message = format!(
        "Too many sign-in requests from your network. Try again in {wait} second{}.",
        if wait == 1 { "" } else { "s" }
    );
    render_login(state, req, 429, Some(&message), target, email).retry_after(wait)
}

/// `POST /_frontdoor/login`: email and password.
pub async fn login_submit(state: &State, req: &Request) -> Reply {
    let form: std::collections::HashMap<String, String> = req.form_pairs().into_iter().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let target = return_to::sanitize(form.get("return_to").map(String::as_str));
    if let Some(wait) = state.regulation.login_rate.check(req.client_ip) {
        return slow_down(state, req, wait, &target, field("email"));
    }
    if !csrf::verify(
        req,
        &state.keys,
        form.get(csrf::CSRF_FIELD).map(String::as_str),
    ) {
        return render_login(
            state,
            req,
            403,
            Some("The form expired. Please sign in again."),
            &target,
            field("email"),
        );
    }
    // An address that is not canonical matches no account (and is never folded into one).
    let email = crate::email::typed(field("email")).unwrap_or_default();
    let password = field("password").to_string();
    let tenant = state.config.tenant_for_host(&req.host);
    let attempt = match state
        .regulation
        .admit(&*state.store, tenant, &email, req.client_ip)
        .await
    {
        Ok(a) => a,
        Err(Refused::Banned(b)) => return locked(state, req, b, &target, &email),
        Err(Refused::Store(e)) => {
            tracing::error!(error = %e, "store error at login");
            return unavailable(state, req, &target, &email);
        }
    };
    let user = match state.store.find_user_by_email(tenant, &email).await {
        Ok(u) => u.filter(|u| u.active),
        Err(e) => {
            tracing::error!(error = %e, "store error at login");
            return unavailable(state, req, &target, &email);
        }
    };
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| secrets::dummy_password_hash().to_string());
    // Argon2 runs on the blocking pool, never on the proxy's workers.
    let ok = secrets::check_password(password, hash).await;
    let user = match user {
        Some(u) if ok => u,
        _ => {
            crate::metrics::login("password", "failure");
            tracing::info!(tenant, "failed password login");
            if let Some(b) = state.regulation.failed(&*state.store, &attempt).await {
                return locked(state, req, b, &target, &email);
            }
            return render_login(
                state,
                req,
                401,
                Some("Wrong email or password."),
                &target,
                &email,
            );
        }
    };
    state.regulation.succeeded(&*state.store, &attempt).await;
    match state.sessions.create(&user, "password").await {
        Ok(raw) => {
            crate::metrics::login("password", "success");
            tracing::info!(user = %user.id, "password login");
            let mut r = Reply::redirect(&target);
            r.status = 303;
            r.cookie(&state.sessions.cookie(&raw))
        }
        Err(e) => {
            tracing::error!(error = %e, "store error creating session");
            unavailable(state, req, &target, &email)
        }
    }
}

/// `POST /_frontdoor/login/code`: "email me a code" (with `email`) sends a one-time code and
/// asks for it; with `code` as well, checks it and signs in.
pub async fn code_submit(state: &State, req: &Request) -> Reply {
    let form: std::collections::HashMap<String, String> = req.form_pairs().into_iter().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let target = return_to::sanitize(form.get("return_to").map(String::as_str));
    let email = crate::email::typed(field("email")).unwrap_or_default();
    if let Some(wait) = state.regulation.login_rate.check(req.client_ip) {
        return slow_down(state, req, wait, &target, &email);
    }
    if !csrf::verify(
        req,
        &state.keys,
        form.get(csrf::CSRF_FIELD).map(String::as_str),
    ) {
        return render_login(
            state,
            req,
            403,
            Some("The form expired. Please try again."),
            &target,
            &email,
        );
    }
    if !email.contains('@') {
        return render_login(
            state,
            req,
            400,
            Some("Enter your email address to get a code."),
            &target,
            "",
        );
    }
    let tenant = state.config.tenant_for_host(&req.host);
    let Some(code) = form.get("code") else {
        crate::api::login::send_otp(state, tenant.to_string(), email.clone(), req.client_ip).await;
        return render_code(state, req, 200, None, &target, &email);
    };
    match crate::api::login::check_code(state, req, tenant, &email, code.trim()).await {
        Ok(user) => match state.sessions.create(&user, "otp").await {
            Ok(raw) => {
                tracing::info!(user = %user.id, "one-time code login");
                let mut r = Reply::redirect(&target);
                r.status = 303;
                r.cookie(&state.sessions.cookie(&raw))
            }
            Err(e) => {
                tracing::error!(error = %e, "store error creating session");
                render_code(state, req, 503, Some(UNAVAILABLE), &target, &email)
            }
        },
        Err(e) => {
            let message = match (e.status, e.retry_after) {
                (503, _) => UNAVAILABLE.to_string(),
                (429, Some(retry_after)) => Banned { retry_after }.message(),
                _ => sentence(&e.message),
            };
            let reply = render_code(state, req, e.status, Some(&message), &target, &email);
            match e.retry_after {
                Some(seconds) => reply.retry_after(seconds),
                None => reply,
            }
        }
    }
}

/// "the code is 6 digits" → "The code is 6 digits."
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

fn render_code(
    state: &State,
    req: &Request,
    status: u16,
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

/// The own client's registered callback for the request's host; `None` on a host that frontdoor
/// serves (through a `*` route) but does not sign people into.
fn callback_uri<'a>(state: &'a State, req: &Request) -> Option<&'a str> {
    state.own_redirects.for_host(&req.host, &req.authority)
}

/// What a browser sees on a host that no setting names: frontdoor cannot sign anyone in there.
fn unknown_host(state: &State) -> Reply {
    pages::error_page(
        state.org(),
        400,
        "Sign-in is not available on this address",
        "This address is not one that frontdoor signs people into. Use the address your administrator gave you.",
    )
}

/// Sends a browser without a session through the embedded authorize flow; it comes back to
/// exactly `original` (path and query on this host).
pub fn start(state: &State, req: &Request, original: &str) -> Reply {
    let Some(callback) = callback_uri(state, req) else {
        tracing::info!(host = %req.host, "sign-in refused on a host that no setting names");
        return unknown_host(state);
    };
    let pending = Pending {
        started: crate::clock::now(),
        state: random_token(),
        verifier: random_token(),
        return_to: return_to::sanitize(Some(original)),
    };
    let authorize = format!(
        "{}/oauth/authorize?{}",
        state.issuer,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", OWN_CLIENT_ID)
            .append_pair("redirect_uri", callback)
            .append_pair("response_type", "code")
            .append_pair("scope", OWN_CLIENT_SCOPE)
            .append_pair("state", &pending.state)
            .append_pair("code_challenge", &pkce_s256(&pending.verifier))
            .append_pair("code_challenge_method", "S256")
            .finish()
    );
    let json = serde_json::to_string(&pending).unwrap_or_default();
    let mut jar = CookieJar::new();
    jar.private_mut(&state.keys.cookie)
        .add(Cookie::new(LOGIN_COOKIE, json));
    let mut c = jar
        .get(LOGIN_COOKIE)
        .cloned()
        .unwrap_or_else(|| Cookie::new(LOGIN_COOKIE, ""));
    c.set_path("/_frontdoor/callback");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.secure_cookies());
    c.set_max_age(cookie::time::Duration::minutes(10));
    Reply::redirect(&authorize).cookie(&c)
}

/// `GET /_frontdoor/callback`: finishes the gateway's login and returns to the original URL.
pub async fn callback(state: &State, req: &Request) -> Reply {
    let org = state.org();
    let fail = |status: u16, msg: &str| {
        let mut removal = Cookie::new(LOGIN_COOKIE, "");
        removal.set_path("/_frontdoor/callback");
        removal.make_removal();
        pages::render(
            status,
            &pages::MessagePage {
                org,
                title: "Sign-in did not complete",
                message: msg,
                link: Some(("/", "Start again")),
            },
        )
        .cookie(&removal)
    };
    let params: std::collections::HashMap<String, String> = req.query_pairs().into_iter().collect();
    let pending = req
        .cookie(LOGIN_COOKIE)
        .and_then(|v| {
            CookieJar::new()
                .private(&state.keys.cookie)
                .decrypt(Cookie::new(LOGIN_COOKIE, v))
        })
        .and_then(|c| serde_json::from_str::<Pending>(c.value()).ok())
        .filter(|p| crate::clock::now() - p.started <= crate::session::PENDING_LIFETIME);
    let Some(pending) = pending else {
        return fail(
            400,
            "The sign-in took too long or was started in another browser.",
        );
    };
    if !params
        .get("state")
        .is_some_and(|s| ct_eq(s, &pending.state))
    {
        return fail(400, "The sign-in response does not belong to this browser.");
    }
    if params.get("iss").is_some_and(|i| *i != state.issuer) {
        return fail(400, "The sign-in response came from another issuer.");
    }
    if let Some(err) = params.get("error") {
        let msg = params
            .get("error_description")
            .cloned()
            .unwrap_or_else(|| err.clone());
        return fail(400, &msg);
    }
    let Some(code) = params.get("code") else {
        return fail(400, "The sign-in response has no code.");
    };
    // The token endpoint's own redemption: single use, a replay revokes the grant.
    let redeemed = redeem_code(
        state,
        code,
        OWN_CLIENT_ID,
        callback_uri(state, req),
        Some(&pending.verifier),
    )
    .await;
    let (record, user) = match redeemed {
        Ok(Ok(r)) => (r.code, r.user),
        Ok(Err(CodeRefused::Replayed)) => return fail(400, "This sign-in link was already used."),
        Ok(Err(CodeRefused::UserGone)) => return fail(403, "This account is not active."),
        Ok(Err(_)) => return fail(400, "The sign-in response is not valid."),
        Err(e) => {
            tracing::error!(error = %e, "store error at callback");
            return fail(503, UNAVAILABLE);
        }
    };
    let mut removal = Cookie::new(LOGIN_COOKIE, "");
    removal.set_path("/_frontdoor/callback");
    removal.make_removal();
    // Same host as the provider: the browser already holds the session that authorized.
    if let Ok(Some((_, s))) = state.sessions.from_headers(&req.headers).await
        && record.session_id_hash.as_deref() == Some(&*s.id_hash)
    {
        return Reply::redirect(&pending.return_to).cookie(&removal);
    }
    match state.sessions.create(&user, "sso").await {
        Ok(raw) => Reply::redirect(&pending.return_to)
            .cookie(&removal)
            .cookie(&state.sessions.cookie(&raw)),
        Err(e) => {
            tracing::error!(error = %e, "store error creating session");
            fail(503, UNAVAILABLE)
        }
    }
}
