//! The gateway's own sign-in round trip as the OAuth client `frontdoor`: protected URL →
//! `/oauth/authorize` → `<reserved_prefix>callback` → the protected URL with a session. The
//! sign-in pages themselves are `web::sign_in`'s.

use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::provider::access::{CodeRefused, redeem_code};
use crate::provider::own_client::callback_path;
use crate::provider::scopes::OWN_CLIENT_SCOPE;
use crate::secrets::{ct_eq, pkce_s256, random_token};
use crate::state::State;
use crate::tokens::OWN_CLIENT_ID;
use crate::web::{pages, return_to};

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

/// The own client's registered callback for the request's host; `None` on a host that frontdoor
/// serves (through a `*` route) but does not sign people into.
fn callback_uri<'a>(state: &'a State, req: &Request) -> Option<&'a str> {
    state.own_redirects.for_host(&req.host, &req.authority)
}

/// What a browser sees on a host that no setting names: frontdoor cannot sign anyone in there.
fn unknown_host(state: &State) -> Reply {
    pages::ErrorPage {
        org: state.org(),
        style: state.style_href(),
        title: "Sign-in is not available on this address",
        link: None,
    }
    .render(&Error::Invalid(
        "This address is not one that frontdoor signs people into. Use the address your administrator gave you.".into(),
    ))
}

/// Sends a browser without a session through the embedded authorize flow; it comes back to
/// exactly `original` (path and query on this host).
pub fn start(state: &State, req: &Request, original: &str) -> Reply {
    round_trip(state, req, original, None)
}

/// Sends a browser whose session has one factor through the same round trip, asking for two
/// (`acr_values`): the provider's host steps its session up, and the code brings the stronger
/// session back here, to `original`.
pub fn step_up(state: &State, req: &Request, original: &str) -> Reply {
    round_trip(state, req, original, Some(crate::factors::ACR_2FA))
}

fn round_trip(state: &State, req: &Request, original: &str, acr: Option<&str>) -> Reply {
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
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(acr) = acr {
        query.append_pair("acr_values", acr);
    }
    let authorize = format!(
        "{}/oauth/authorize?{}",
        state.issuer,
        query
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
    let mut c = state.keys.seal(LOGIN_COOKIE, &json);
    c.set_path(callback_path(&state.config));
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.secure_cookies());
    c.set_max_age(cookie::time::Duration::minutes(10));
    Reply::redirect(&authorize).cookie(&c)
}

/// `GET /_frontdoor/callback`: finishes the gateway's login and returns to the original URL.
pub async fn callback(state: &State, req: &Request) -> Reply {
    let mut removal = Cookie::new(LOGIN_COOKIE, "");
    removal.set_path(callback_path(&state.config));
    removal.make_removal();
    let reply = finish(state, req).await.unwrap_or_else(|e| {
        pages::ErrorPage {
            org: state.org(),
            style: state.style_href(),
            title: "Sign-in did not complete",
            link: Some(("/", "Start again")),
        }
        .render(&e)
    });
    reply.cookie(&removal)
}

/// The pending login checked against the answer, the code redeemed, the session made.
async fn finish(state: &State, req: &Request) -> Result<Reply, Error> {
    let invalid = |m: &str| Error::Invalid(m.to_string());
    let params: std::collections::HashMap<String, String> = req.query_pairs().into_iter().collect();
    let pending = req
        .cookie(LOGIN_COOKIE)
        .and_then(|v| state.keys.open(LOGIN_COOKIE, &v))
        .and_then(|v| serde_json::from_str::<Pending>(&v).ok())
        .filter(|p| crate::clock::now() - p.started <= crate::session::PENDING_LIFETIME)
        .ok_or_else(|| invalid("The sign-in took too long or was started in another browser."))?;
    if !params
        .get("state")
        .is_some_and(|s| ct_eq(s, &pending.state))
    {
        return Err(invalid(
            "The sign-in response does not belong to this browser.",
        ));
    }
    if params.get("iss").is_some_and(|i| *i != state.issuer) {
        return Err(invalid("The sign-in response came from another issuer."));
    }
    if let Some(err) = params.get("error") {
        let msg = params.get("error_description").unwrap_or(err);
        return Err(invalid(msg));
    }
    let code = params
        .get("code")
        .ok_or_else(|| invalid("The sign-in response has no code."))?;
    // The token endpoint's own redemption: single use, a replay revokes the grant.
    let redeemed = redeem_code(
        state,
        code,
        OWN_CLIENT_ID,
        callback_uri(state, req),
        Some(&pending.verifier),
    )
    .await?;
    let (record, user) = match redeemed {
        Ok(r) => (r.code, r.user),
        Err(CodeRefused::Replayed) => return Err(invalid("This sign-in link was already used.")),
        Err(CodeRefused::UserGone) => {
            return Err(Error::Forbidden("This account is not active.".into()));
        }
        Err(_) => return Err(invalid("The sign-in response is not valid.")),
    };
    // Same host as the provider: the browser already holds the session that authorized.
    if let Ok(Some((_, s))) = state.sessions.from_headers(&req.headers).await
        && record.session_id_hash.as_deref() == Some(&*s.id_hash)
    {
        return Ok(Reply::redirect(&pending.return_to));
    }
    // The session on this host is as strong as the one that authorized on the provider's.
    let raw = state
        .sessions
        .create_with_amr(&user, "sso", &record.amr)
        .await?;
    Ok(Reply::redirect(&pending.return_to).cookie(&state.sessions.cookie(&raw)))
}
