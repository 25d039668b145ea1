//! Signing in with an upstream identity provider (federation), end to end: the real OpenID
//! provider of tests/support/oidc-provider (`oidc-provider` on Node, see `idp.rs`) registered
//! as "Corp SSO", frontdoor as its relying party, and behind frontdoor a recording upstream and
//! a third-party OAuth app. Where the real provider cannot be made to misbehave (an ID token
//! for another audience, an expired one, one with a foreign issuer or nonce), a small scripted
//! provider in this file (`MockIdp`) plays the provider, signing with a key frontdoor trusts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{RS256KeyPair, RS256PublicKey, RSAPublicKeyLike, VerificationOptions};
use openidconnect::PkceCodeChallenge;
use serde_json::{Map, Value, json};
use url::Url;

use crate::harness::*;
use crate::idp::{Idp, idp_end_session, idp_sign_in};

pub(crate) use crate::scripted_idp::{CLIENT_ID, CLIENT_SECRET, now, random_id, sign};
use crate::scripted_idp::{ScriptedIdp, rsa_jwk, scripted_sign_in};
const ALICE_PASSWORD: &str = "down the rabbit hole";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Where the third-party app wants its users back; never contacted, only compared.
const APP_CALLBACK: &str = "https://notes.example/oauth/callback";

/// Alice at the provider: groups and roles that frontdoor maps (groups get the `corp-`
/// prefix).
fn alice() -> Value {
    json!({"sub": "u-alice", "email": "alice@example.com", "email_verified": true,
           "name": "Alice Liddell", "groups": ["admins", "staff"], "roles": ["editor"],
           "password": ALICE_PASSWORD})
}

// ---------------------------------------------------------------------------------------------
// Fixture: ports first (the provider registers frontdoor's redirect URI), then the provider,
// then frontdoor.

/// frontdoor's ports, reserved before anything starts and held (bound) until frontdoor is
/// about to start, so that nothing started meanwhile (the provider, other tests) takes them.
struct Ports {
    port: u16,
    admin: u16,
    held: Vec<std::net::TcpListener>,
}

impl Ports {
    fn new() -> Ports {
        let held: Vec<std::net::TcpListener> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind(("127.0.0.1", crate::harness::free_port()))
                    .expect("reserve a port")
            })
            .collect();
        let port = |i: usize| held[i].local_addr().expect("addr").port();
        Ports {
            port: port(0),
            admin: port(1),
            held,
        }
    }

    fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `<public_url>/_frontdoor/idp/corp/callback`, registered at the provider.
    fn callback(&self) -> String {
        format!("{}/_frontdoor/idp/corp/callback", self.public_url())
    }

    /// `<public_url>/_frontdoor/idp/corp/backchannel-logout`, registered at the provider.
    fn backchannel(&self) -> String {
        format!(
            "{}/_frontdoor/idp/corp/backchannel-logout",
            self.public_url()
        )
    }

    /// Where the provider sends people after signing out there (registered at the provider
    /// and configured in frontdoor).
    fn after_logout(&self) -> String {
        format!("{}/_frontdoor/login", self.public_url())
    }
}

/// Starts frontdoor on `ports` with Corp SSO at `issuer` and one authenticated route `/` in
/// front of `upstream`.
async fn start_frontdoor(
    ports: &mut Ports,
    issuer: &str,
    upstream: &Upstream,
    provision: bool,
) -> Frontdoor {
    let corp = Provider::corp("corp", issuer)
        .set("group_prefix", "corp-")
        .provision(provision)
        .set("allowed_domains", ["example.com"])
        .set("post_logout_redirect_uri", ports.after_logout());
    ports.held.clear();
    Frontdoor::launch_on(
        ports.port,
        ports.admin,
        Config::single(upstream).federation(corp),
    )
    .await
}

struct Fed {
    ports: Ports,
    idp: Idp,
    upstream: Upstream,
    fd: Frontdoor,
}

/// The provider with these users, and frontdoor with Corp SSO discovered.
async fn setup(users: Value, provision: bool) -> Fed {
    setup_with_backchannel(users, provision, |ports| ports.backchannel()).await
}

/// Like [`setup`], with the back-channel logout URI the provider delivers to.
async fn setup_with_backchannel(
    users: Value,
    provision: bool,
    backchannel: impl FnOnce(&Ports) -> String,
) -> Fed {
    let mut ports = Ports::new();
    let idp = Idp::start(
        CLIENT_ID,
        CLIENT_SECRET,
        &[ports.callback()],
        Some(backchannel(&ports)),
        &[ports.after_logout()],
        users,
    )
    .await;
    let upstream = Upstream::start().await;
    let fd = start_frontdoor(&mut ports, &idp.issuer, &upstream, provision).await;
    wait_until_available(&fd, Duration::from_secs(10)).await;
    Fed {
        ports,
        idp,
        upstream,
        fd,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The login page's `#idp-corp` element: (tag, href, text).
fn idp_button(html: &str) -> Option<(String, Option<String>, String)> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("#idp-corp").expect("selector");
    let e = doc.select(&sel).next()?;
    Some((
        e.value().name().to_string(),
        e.value().attr("href").map(str::to_string),
        e.text().collect::<String>(),
    ))
}

async fn login_page_html(fd: &Frontdoor) -> String {
    let resp = navigate(&plain_client(), &fd.url("/_frontdoor/login")).await;
    assert_eq!(resp.status(), 200, "the login page");
    resp.text().await.expect("login page")
}

/// Waits until the login page shows `#idp-corp` as a link; returns how long it took.
async fn wait_until_available(fd: &Frontdoor, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let html = login_page_html(fd).await;
        if let Some((tag, _, _)) = idp_button(&html)
            && tag == "a"
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "Corp SSO did not become available within {within:?}:\n{html}\n{}",
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    Url::parse(url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

/// From `url` on frontdoor (a protected page, or an authorization request) to the login
/// page; checks the Corp SSO link and follows it; returns frontdoor's redirect to the
/// provider (not followed).
async fn to_provider(browser: &reqwest::Client, fd: &Frontdoor, url: &str) -> reqwest::Response {
    let first = navigate(browser, url).await;
    assert_eq!(first.status(), 302, "{url} asks to sign in");
    let page = follow(browser, first, None).await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.url().path(),
        "/_frontdoor/login",
        "ends on the login page"
    );
    let html = page.text().await.expect("login page");
    let (tag, href, text) = idp_button(&html).expect("the login page has #idp-corp");
    assert_eq!(tag, "a", "Corp SSO is a link: {text}");
    assert!(text.contains("Corp SSO"), "{text}");
    let href = href.expect("the link has an href");
    assert!(
        href.starts_with(&fd.url("/_frontdoor/idp/corp/start?")),
        "{href}"
    );
    let start = navigate(browser, &href).await;
    assert_eq!(
        start.status(),
        302,
        "the start link redirects to the provider"
    );
    start
}

/// The whole sign-in as far as the provider's answer: to the login page, the Corp SSO link,
/// the provider's login (and consent) pages. Returns the provider's redirect back to
/// frontdoor's callback (not followed).
async fn to_callback(
    browser: &reqwest::Client,
    fed: &Fed,
    url: &str,
    login: &str,
    password: &str,
) -> reqwest::Response {
    let start = to_provider(browser, &fed.fd, url).await;
    assert!(
        location(&start).starts_with(&fed.idp.url("/auth?")),
        "to the provider's authorization endpoint: {}",
        location(&start)
    );
    let back = idp_sign_in(browser, start, login, password).await;
    assert!(
        location(&back).starts_with(&format!("{}?", fed.ports.callback())),
        "the provider sends the browser back to frontdoor's callback: {}",
        location(&back)
    );
    back
}

/// A complete sign-in through Corp SSO from the protected `url`; returns the final answer
/// (after every redirect: the upstream's, for a protected page).
async fn sign_in_with_corp(
    browser: &reqwest::Client,
    fed: &Fed,
    url: &str,
    login: &str,
    password: &str,
) -> reqwest::Response {
    let back = to_callback(browser, fed, url, login, password).await;
    let done = navigate(browser, &location(&back)).await;
    assert_eq!(
        done.status(),
        303,
        "the callback signs in and redirects: {}",
        done.text().await.unwrap_or_default()
    );
    follow(browser, done, None).await
}

/// A proxied request carrying exactly this session cookie: an API call (no `Accept: text/html`)
/// or a browser navigation.
async fn with_session(fd: &Frontdoor, cookie: &str, as_browser: bool) -> reqwest::Response {
    let mut req = plain_client()
        .get(fd.url("/private/page"))
        .header("Cookie", format!("frontdoor_session={cookie}"));
    if as_browser {
        req = req.header("Accept", "text/html");
    }
    req.send().await.expect("proxied request")
}

/// The session cookie works: the upstream answers.
async fn assert_session_alive(fd: &Frontdoor, cookie: &str) {
    let resp = with_session(fd, cookie, false).await;
    assert_eq!(resp.status(), 200, "the session still works");
}

/// The session cookie no longer works: 401 for an API call, 302 to sign in for a browser.
async fn assert_session_ended(fd: &Frontdoor, cookie: &str) {
    let api = with_session(fd, cookie, false).await;
    assert_eq!(api.status(), 401, "an API call with the old session cookie");
    let nav = with_session(fd, cookie, true).await;
    assert_eq!(
        nav.status(),
        302,
        "a navigation with the old session cookie"
    );
    let to = location(&nav);
    assert!(
        to.starts_with(&fd.url("/oauth/authorize?"))
            || to.starts_with(&fd.url("/_frontdoor/login")),
        "to sign in: {to}"
    );
}

/// A refusal: this status, an HTML page saying `needle`, no redirect, no session cookie.
/// Returns the page.
pub(crate) async fn assert_refused(resp: reqwest::Response, status: u16, needle: &str) -> String {
    let got = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("text").to_string())
        .unwrap_or_default();
    let location = resp.headers().get("location").cloned();
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("text").to_string())
        .collect();
    let html = resp.text().await.expect("page");
    assert_eq!(got, status, "refused with {status}:\n{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(location.is_none(), "a page, not a redirect: {location:?}");
    assert!(
        !cookies.iter().any(|c| c.starts_with("frontdoor_session=")),
        "no session cookie: {cookies:?}"
    );
    assert!(html.contains(needle), "the page says `{needle}`:\n{html}");
    html
}

/// A browser that holds no frontdoor session and does not reach the upstream.
async fn assert_no_session(
    browser: &reqwest::Client,
    jar: &reqwest::cookie::Jar,
    fed: &Fed,
    upstream_count: usize,
) {
    assert_eq!(session_of(jar, &fed.fd), None, "no session cookie");
    let api = browser
        .get(fed.fd.url("/private/page"))
        .send()
        .await
        .expect("request");
    assert_eq!(api.status(), 401, "not signed in");
    assert_eq!(
        fed.upstream.count(),
        upstream_count,
        "nothing reached the upstream"
    );
}

/// One sample of `frontdoor_logins_total` with these labels (0 when absent).
async fn logins(fd: &Frontdoor, method: &str, outcome: &str) -> f64 {
    let text = fd.metrics().await;
    let method = format!("method=\"{method}\"");
    let outcome = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|l| l.starts_with("frontdoor_logins_total{"))
        .filter(|l| l.contains(&method) && l.contains(&outcome))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .next()
        .unwrap_or(0.0)
}

/// The provider's published signing key.
async fn provider_key(jwks_url: &str) -> (String, RS256PublicKey) {
    let jwks: Value = plain_client()
        .get(jwks_url)
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks JSON");
    rsa_jwk(&jwks["keys"][0])
}

/// POSTs a `logout_token` to frontdoor's back-channel logout endpoint for Corp SSO.
pub(crate) async fn post_logout_token(fd: &Frontdoor, token: &str) -> (u16, Value) {
    let resp = plain_client()
        .post(fd.url("/_frontdoor/idp/corp/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .expect("post logout_token");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A logout token's claims (OIDC Back-Channel Logout 1.0 §2.4).
pub(crate) fn logout_claims(iss: &str, sub: Option<&str>, sid: Option<&str>) -> Value {
    let mut c = json!({
        "iss": iss, "aud": CLIENT_ID, "iat": now(), "exp": now() + 120, "jti": random_id(),
        "events": { BACKCHANNEL_EVENT: {} },
    });
    if let Some(s) = sub {
        c["sub"] = json!(s);
    }
    if let Some(s) = sid {
        c["sid"] = json!(s);
    }
    c
}

// ---------------------------------------------------------------------------------------------
// The scripted provider (`scripted_idp.rs`) as "Corp SSO": its ID token carries a full set of
// claims unless a `Defect` says otherwise.

/// How the scripted provider builds the next ID token: what is wrong with it, or which claims
/// it leaves to userinfo.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Defect {
    None,
    /// `aud` is another client.
    WrongAudience,
    /// `exp` an hour ago.
    Expired,
    /// `iss` is another provider.
    WrongIssuer,
    /// `nonce` is not the one frontdoor sent.
    WrongNonce,
    /// Signed with a key the provider does not publish (same `kid`).
    ForeignKey,
    /// Only `sub` (and the protocol claims): email, name, groups and roles are at userinfo.
    ClaimsAtUserinfoOnly,
}

const MOCK_KID: &str = "mock-key-1";
const MOCK_SUB: &str = "u-mock";

/// Scripts the next ID token of `mock`: Mock User's claims, spoilt by `defect`.
fn set_defect(mock: &ScriptedIdp, defect: Defect) {
    mock.script(|s| {
        s.claims = json!({
            "email": "mock@example.com", "email_verified": true,
            "name": "Mock User", "groups": ["eng"], "roles": ["viewer"],
        });
        s.foreign_key = defect == Defect::ForeignKey;
        let c = &mut s.claims;
        match defect {
            Defect::None | Defect::ForeignKey => {}
            Defect::ClaimsAtUserinfoOnly => {
                for k in ["email", "email_verified", "name", "groups", "roles"] {
                    c[k] = Value::Null;
                }
            }
            Defect::WrongAudience => c["aud"] = json!("another-client"),
            Defect::Expired => {
                c["iat"] = json!(now() - 7200);
                c["exp"] = json!(now() - 3600);
            }
            Defect::WrongIssuer => c["iss"] = json!("http://127.0.0.1:9"),
            Defect::WrongNonce => c["nonce"] = json!("not-the-nonce"),
        }
    });
}

/// frontdoor with Corp SSO played by the scripted provider.
async fn setup_mock() -> (ScriptedIdp, Upstream, Frontdoor) {
    let mock = ScriptedIdp::start(MOCK_KID, MOCK_SUB, false).await;
    set_defect(&mock, Defect::None);
    mock.script(|s| {
        s.userinfo = json!({
            "email": "mock@example.com", "email_verified": true,
            "name": "Mock From Userinfo", "groups": ["eng", "ops"], "roles": ["viewer"],
        })
    });
    let upstream = Upstream::start().await;
    let fd = start_frontdoor(&mut Ports::new(), &mock.issuer, &upstream, true).await;
    wait_until_available(&fd, Duration::from_secs(10)).await;
    (mock, upstream, fd)
}

/// Signs in through the scripted provider: start link, its immediate answer, the callback.
/// Returns the callback's answer.
async fn mock_sign_in(
    browser: &reqwest::Client,
    fd: &Frontdoor,
    mock: &ScriptedIdp,
) -> reqwest::Response {
    scripted_sign_in(browser, fd, "corp", Some(mock)).await
}

/// Whether `url` is on the provider (same port of 127.0.0.1).
fn on_provider(url: &str, idp: &Idp) -> bool {
    Url::parse(url).expect("url").port() == Some(idp.port)
}

/// `users list --json`.
pub(crate) fn users_list(fd: &Frontdoor) -> Value {
    let out = fd.cli(&["users", "list", "--json"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("users JSON")
}

pub(crate) fn add_user_without_password(fd: &Frontdoor, email: &str, name: &str) {
    let out = fd.cli(&["users", "add", "--email", email, "--name", name], None);
    assert!(
        out.status.success(),
        "users add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. The whole chain with the real provider.

#[tokio::test]
async fn protected_page_through_corp_sso_reaches_the_upstream_with_mapped_identity() {
    let fed = setup(json!([alice()]), true).await;
    let fd = &fed.fd;
    assert_eq!(logins(fd, "idp:corp", "success").await, 0.0);
    let (browser, jar) = browser_with_jar();

    // Protected URL → frontdoor's login page → the Corp SSO link → the provider.
    let start = to_provider(&browser, fd, &fd.url("/wiki/page?x=1")).await;
    let to = location(&start);
    assert!(to.starts_with(&fed.idp.url("/auth?")), "{to}");
    let auth = query_of(&to);
    assert_eq!(auth["client_id"], CLIENT_ID);
    assert_eq!(auth["response_type"], "code");
    assert_eq!(auth["redirect_uri"], fed.ports.callback());
    assert_eq!(auth["code_challenge_method"], "S256");
    for k in ["code_challenge", "state", "nonce"] {
        assert!(
            auth.get(k).is_some_and(|v| v.len() >= 22),
            "a random `{k}`: {auth:?}"
        );
    }
    let scopes: Vec<&str> = auth["scope"].split(' ').collect();
    for s in ["openid", "email", "profile", "groups"] {
        assert!(scopes.contains(&s), "scope {s} asked for: {scopes:?}");
    }
    let pending = set_cookie(&start, "frontdoor_idp").expect("the pending sign-in cookie");
    assert!(pending.contains("HttpOnly"), "{pending}");
    assert!(pending.contains("Path=/_frontdoor/idp/corp/"), "{pending}");
    assert!(
        !pending.contains(&auth["state"]) && !pending.contains(&auth["nonce"]),
        "the pending cookie is encrypted: {pending}"
    );

    // The provider's login and consent pages, then back to frontdoor's callback.
    let back = idp_sign_in(&browser, start, "alice@example.com", ALICE_PASSWORD).await;
    let callback = location(&back);
    let answer = query_of(&callback);
    assert_eq!(answer["state"], auth["state"]);
    assert!(answer.contains_key("code"));
    let done = navigate(&browser, &callback).await;
    assert_eq!(done.status(), 303, "the callback signs in");
    let removal = set_cookie(&done, "frontdoor_idp").expect("the pending cookie is removed");
    assert!(
        removal.contains("Max-Age=0") || removal.contains("1970"),
        "{removal}"
    );
    let landed = follow(&browser, done, None).await;
    assert_eq!(landed.status(), 200);
    assert_eq!(
        landed.url().as_str(),
        fd.url("/wiki/page?x=1"),
        "back where it began"
    );

    // The upstream sees the person, with groups and roles mapped from the provider's claims.
    let seen = fed.upstream.last();
    assert_eq!(seen.uri, "/wiki/page?x=1");
    assert_eq!(
        seen.header("x-auth-request-user").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        seen.header("x-auth-request-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        seen.header("x-auth-request-name").as_deref(),
        Some("Alice Liddell")
    );
    assert_eq!(
        seen.header("x-auth-request-groups").as_deref(),
        Some("corp-admins,corp-staff")
    );
    assert_eq!(
        seen.header("x-auth-request-roles").as_deref(),
        Some("editor")
    );
    assert!(session_of(&jar, fd).is_some());

    // The user was provisioned with the mapped groups and roles.
    let users = users_list(fd);
    let alice = users
        .as_array()
        .expect("array")
        .iter()
        .find(|u| u["email"] == "alice@example.com")
        .unwrap_or_else(|| panic!("alice provisioned: {users}"));
    assert_eq!(alice["groups"], json!(["corp-admins", "corp-staff"]));
    assert_eq!(alice["roles"], json!(["editor"]));

    // Signed in: the next page needs no sign-in; the login is counted once.
    let next = navigate(&browser, &fd.url("/wiki/other")).await;
    assert_eq!(next.status(), 200);
    assert_eq!(logins(fd, "idp:corp", "success").await, 1.0);
    assert_eq!(logins(fd, "idp:corp", "failure").await, 0.0);

    // A second sign-in (a new browser; the provider asks again) links by subject: still one
    // user, and the counter moves.
    let (other, _) = browser_with_jar();
    let landed = sign_in_with_corp(
        &other,
        &fed,
        &fd.url("/again"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(landed.status(), 200);
    assert_eq!(users_list(fd).as_array().expect("array").len(), 1);
    assert_eq!(logins(fd, "idp:corp", "success").await, 2.0);
}

#[tokio::test]
async fn third_party_app_signs_in_through_corp_sso_and_userinfo_carries_mapped_groups() {
    let fed = setup(json!([alice()]), true).await;
    let fd = &fed.fd;
    let (app_id, app_secret) =
        fd.create_app(&["--name", "Acme Notes", "--redirect-uri", APP_CALLBACK]);
    let app_secret = app_secret.expect("a confidential app");

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut authorize = Url::parse(&fd.url("/oauth/authorize")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &app_id)
        .append_pair("redirect_uri", APP_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email groups roles")
        .append_pair("state", "app-state")
        .append_pair("nonce", "app-nonce")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");

    // The app's authorization request → frontdoor's login page → Corp SSO → back to the
    // authorization request, which now asks for consent.
    let (browser, _jar) = browser_with_jar();
    let back = to_callback(
        &browser,
        &fed,
        authorize.as_str(),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    let done = navigate(&browser, &location(&back)).await;
    assert_eq!(done.status(), 303);
    assert!(
        location(&done).starts_with(&fd.url("/oauth/authorize?")),
        "back to the app's authorization request: {}",
        location(&done)
    );
    let consent = follow(&browser, done, None).await;
    assert_eq!(consent.status(), 200, "the consent page");
    let html = consent.text().await.expect("consent page");
    assert!(html.contains("Acme Notes"), "names the app:\n{html}");
    assert!(
        html.contains("alice@example.com"),
        "names the user:\n{html}"
    );
    let mut fields = form_fields(&html, "consent-form");
    assert!(fields.iter().any(|(k, _)| k == "csrf_token"), "{html}");
    fields.push(("decision".into(), "approve".into()));
    let approved = browser
        .post(fd.url("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .expect("approve");
    assert_eq!(approved.status(), 302);
    let to_app = location(&approved);
    assert!(to_app.starts_with(&format!("{APP_CALLBACK}?")), "{to_app}");
    let p = query_of(&to_app);
    assert_eq!(p["state"], "app-state");
    assert_eq!(p["iss"], fd.issuer());

    // The app exchanges the code and reads userinfo: the mapped groups and roles.
    let tokens: Value = plain_client()
        .post(fd.url("/oauth/token"))
        .basic_auth(&app_id, Some(&app_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", p["code"].as_str()),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", verifier.secret().as_str()),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("an access token: {tokens}"));
    let info: Value = plain_client()
        .get(fd.url("/oauth/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("userinfo JSON");
    assert_eq!(info["email"], "alice@example.com", "{info}");
    assert_eq!(info["name"], "Alice Liddell", "{info}");
    assert_eq!(
        info["groups"],
        json!(["corp-admins", "corp-staff"]),
        "{info}"
    );
    assert_eq!(info["roles"], json!(["editor"]), "{info}");
    assert_ne!(
        info["sub"], "u-alice",
        "the app sees frontdoor's subject, not the provider's: {info}"
    );
    assert_eq!(logins(fd, "idp:corp", "success").await, 1.0);
}

// ---------------------------------------------------------------------------------------------
// 2. Refusals: each a page in words (4xx), and no session.

#[tokio::test]
async fn tampered_state_is_refused_and_signs_nobody_in() {
    let fed = setup(json!([alice()]), true).await;
    let (browser, jar) = browser_with_jar();
    let back = to_callback(
        &browser,
        &fed,
        &fed.fd.url("/x"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    let mut tampered = Url::parse(&location(&back)).expect("url");
    let pairs: Vec<(String, String)> = tampered.query_pairs().into_owned().collect();
    tampered
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs.iter().map(|(k, v)| {
            if k == "state" {
                (k.clone(), format!("{v}x"))
            } else {
                (k.clone(), v.clone())
            }
        }));
    let page = navigate(&browser, tampered.as_str()).await;
    assert_refused(page, 400, "state mismatch").await;
    assert_no_session(&browser, &jar, &fed, 0).await;

    // No state at all: the same.
    let back = to_callback(
        &browser,
        &fed,
        &fed.fd.url("/x"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    let mut stateless = Url::parse(&location(&back)).expect("url");
    let pairs: Vec<(String, String)> = stateless
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "state")
        .collect();
    stateless.query_pairs_mut().clear().extend_pairs(pairs);
    let page = navigate(&browser, stateless.as_str()).await;
    assert_refused(page, 400, "state mismatch").await;
    assert_no_session(&browser, &jar, &fed, 0).await;
    assert_eq!(logins(&fed.fd, "idp:corp", "failure").await, 2.0);
    assert_eq!(logins(&fed.fd, "idp:corp", "success").await, 0.0);
}

#[tokio::test]
async fn replayed_callback_is_refused_and_signs_nobody_in() {
    let fed = setup(json!([alice()]), true).await;
    let fd = &fed.fd;
    let (browser, jar) = browser_with_jar();
    let back = to_callback(
        &browser,
        &fed,
        &fd.url("/x"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    let callback = location(&back);
    let pending = jar_cookie(&jar, &callback, "frontdoor_idp").expect("the pending cookie");

    // The callback opened in another browser (no sign-in pending there): refused.
    let (stranger, stranger_jar) = browser_with_jar();
    let page = navigate(&stranger, &callback).await;
    assert_refused(page, 400, "started in another browser").await;
    assert_eq!(session_of(&stranger_jar, fd), None);

    // The genuine one signs in.
    let done = navigate(&browser, &callback).await;
    assert_eq!(done.status(), 303);
    let session = session_of(&jar, fd).expect("signed in");

    // The same callback URL again in the same browser: refused, the session unchanged.
    let page = navigate(&browser, &callback).await;
    assert_refused(page, 400, "Start again").await;
    assert_eq!(session_of(&jar, fd).as_deref(), Some(session.as_str()));

    // Someone who captured the URL and the pending cookie: refused before the code is tried.
    let replay = plain_client()
        .get(&callback)
        .header("Accept", "text/html")
        .header("Cookie", format!("frontdoor_idp={pending}"))
        .send()
        .await
        .expect("replay");
    assert_refused(replay, 400, "already used").await;

    assert_eq!(logins(fd, "idp:corp", "success").await, 1.0);
    assert_eq!(logins(fd, "idp:corp", "failure").await, 3.0);
}

/// The real provider cannot be made to issue a bad ID token to a registered client (it signs
/// `aud` = the client that redeemed the code, with its own issuer and a fresh expiry), so the
/// scripted provider issues them, signed with the key it publishes unless said otherwise.
#[tokio::test]
async fn id_tokens_for_another_audience_expired_or_otherwise_invalid_are_refused() {
    let (mock, upstream, fd) = setup_mock().await;

    // Control: the scripted provider's good token signs in.
    let (browser, jar) = browser_with_jar();
    let ok = mock_sign_in(&browser, &fd, &mock).await;
    assert_eq!(
        ok.status(),
        303,
        "a good token is accepted: {}",
        ok.text().await.unwrap_or_default()
    );
    assert_eq!(location(&ok), fd.url("/home"));
    assert!(session_of(&jar, &fd).is_some());

    for (defect, why) in [
        (Defect::WrongAudience, "audience"),
        (Defect::Expired, "expired"),
        (Defect::WrongIssuer, "issuer"),
        (Defect::WrongNonce, "nonce"),
        (Defect::ForeignKey, "signature"),
    ] {
        set_defect(&mock, defect);
        let (browser, jar) = browser_with_jar();
        let page = mock_sign_in(&browser, &fd, &mock).await;
        let html = assert_refused(page, 400, "The ID token from Corp SSO is not valid").await;
        assert!(
            html.to_lowercase().contains(why),
            "{defect:?}: the page says why ({why}):\n{html}"
        );
        assert_eq!(session_of(&jar, &fd), None, "{defect:?}");
        let api = browser
            .get(fd.url("/private"))
            .send()
            .await
            .expect("request");
        assert_eq!(api.status(), 401, "{defect:?}");
    }
    assert_eq!(upstream.count(), 0);
    assert_eq!(logins(&fd, "idp:corp", "success").await, 1.0);
    assert_eq!(logins(&fd, "idp:corp", "failure").await, 5.0);
}

#[tokio::test]
async fn email_domain_not_allowed_is_refused_and_nobody_is_provisioned() {
    let fed = setup(
        json!([{"sub": "u-mallory", "email": "mallory@evil.com", "email_verified": true,
                "name": "Mallory", "groups": ["admins"], "roles": ["editor"],
                "password": "pw-mallory"}]),
        true,
    )
    .await;
    let (browser, jar) = browser_with_jar();
    let back = to_callback(
        &browser,
        &fed,
        &fed.fd.url("/x"),
        "mallory@evil.com",
        "pw-mallory",
    )
    .await;
    let page = navigate(&browser, &location(&back)).await;
    assert_refused(page, 403, "Accounts of evil.com may not sign in here").await;
    assert_no_session(&browser, &jar, &fed, 0).await;
    assert_eq!(users_list(&fed.fd), json!([]), "nobody provisioned");
}

#[tokio::test]
async fn without_provisioning_an_unknown_user_is_refused_until_added_with_a_verified_email() {
    let fed = setup(
        json!([
            {"sub": "u-bob", "email": "bob@example.com", "email_verified": true,
             "name": "Bob Builder", "groups": ["staff"], "roles": ["viewer"], "password": "pw-bob"},
            {"sub": "u-carol", "email": "carol@example.com", "email_verified": false,
             "name": "Carol", "groups": ["staff"], "roles": ["viewer"], "password": "pw-carol"}
        ]),
        false,
    )
    .await;
    let fd = &fed.fd;
    let (browser, jar) = browser_with_jar();
    let back = to_callback(&browser, &fed, &fd.url("/bob"), "bob@example.com", "pw-bob").await;
    let page = navigate(&browser, &location(&back)).await;
    assert_refused(
        page,
        403,
        "There is no account here for you yet (bob@example.com)",
    )
    .await;
    assert_no_session(&browser, &jar, &fed, 0).await;
    assert_eq!(users_list(fd), json!([]), "nobody provisioned");

    // An administrator adds Bob with the same email; the provider vouches for the address.
    add_user_without_password(fd, "bob@example.com", "Bob");
    let landed =
        sign_in_with_corp(&browser, &fed, &fd.url("/bob"), "bob@example.com", "pw-bob").await;
    assert_eq!(landed.status(), 200);
    let seen = fed.upstream.last();
    assert_eq!(
        seen.header("x-auth-request-user").as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(
        seen.header("x-auth-request-groups").as_deref(),
        Some("corp-staff")
    );
    assert_eq!(
        seen.header("x-auth-request-name").as_deref(),
        Some("Bob Builder")
    );
    assert_eq!(users_list(fd).as_array().expect("array").len(), 1);

    // Carol's account exists too, but the provider does not vouch for her address: no link.
    add_user_without_password(fd, "carol@example.com", "Carol");
    let (browser, jar) = browser_with_jar();
    let back = to_callback(
        &browser,
        &fed,
        &fd.url("/carol"),
        "carol@example.com",
        "pw-carol",
    )
    .await;
    let page = navigate(&browser, &location(&back)).await;
    assert_refused(page, 403, "There is no account here for you yet").await;
    assert_no_session(&browser, &jar, &fed, 1).await;
    assert_eq!(logins(fd, "idp:corp", "success").await, 1.0);
    assert_eq!(logins(fd, "idp:corp", "failure").await, 2.0);
}

/// Provisioning is on, and the provider names the address of an existing account without
/// vouching for it: neither a link to that account nor a second account with the same address,
/// but a refusal in words (a retry cannot help, so not "unavailable").
#[tokio::test]
async fn unverified_email_of_an_existing_account_is_refused_not_linked_nor_duplicated() {
    let fed = setup(
        json!([{"sub": "u-dave", "email": "dave@example.com", "email_verified": false,
                "name": "Not Dave", "groups": ["admins"], "roles": ["admin"],
                "password": "pw-dave"}]),
        true,
    )
    .await;
    let fd = &fed.fd;
    fd.add_user(
        "dave@example.com",
        "Dave",
        "staff",
        "ROLE_USER",
        "dave's own password",
    );
    let (browser, jar) = browser_with_jar();
    let back = to_callback(&browser, &fed, &fd.url("/x"), "dave@example.com", "pw-dave").await;
    let page = navigate(&browser, &location(&back)).await;
    assert_refused(page, 403, "has not verified that this address is yours").await;
    assert_no_session(&browser, &jar, &fed, 0).await;
    let users = users_list(fd);
    assert_eq!(users.as_array().expect("array").len(), 1, "{users}");
    assert_eq!(
        users[0]["name"], "Dave",
        "the account is untouched: {users}"
    );
    assert_eq!(users[0]["groups"], json!(["staff"]), "{users}");
    assert_eq!(users[0]["roles"], json!(["ROLE_USER"]), "{users}");
}

/// Claims the ID token lacks (email, groups, roles) are read from the provider's userinfo.
#[tokio::test]
async fn claims_missing_from_the_id_token_are_taken_from_userinfo() {
    let (mock, upstream, fd) = setup_mock().await;
    set_defect(&mock, Defect::ClaimsAtUserinfoOnly);
    let browser = browser();
    let done = mock_sign_in(&browser, &fd, &mock).await;
    assert_eq!(
        done.status(),
        303,
        "{}",
        done.text().await.unwrap_or_default()
    );
    let landed = follow(&browser, done, None).await;
    assert_eq!(landed.status(), 200);
    let seen = upstream.last();
    assert_eq!(
        seen.header("x-auth-request-email").as_deref(),
        Some("mock@example.com")
    );
    assert_eq!(
        seen.header("x-auth-request-name").as_deref(),
        Some("Mock From Userinfo")
    );
    assert_eq!(
        seen.header("x-auth-request-groups").as_deref(),
        Some("corp-eng,corp-ops")
    );
    assert_eq!(
        seen.header("x-auth-request-roles").as_deref(),
        Some("viewer")
    );
}

#[tokio::test]
async fn cancelling_at_the_provider_is_a_page_in_words() {
    let fed = setup(json!([alice()]), true).await;
    let (browser, jar) = browser_with_jar();
    let start = to_provider(&browser, &fed.fd, &fed.fd.url("/x")).await;
    let mut resp = navigate(&browser, &location(&start)).await;
    while resp.status().is_redirection() && on_provider(&location(&resp), &fed.idp) {
        resp = navigate(&browser, &location(&resp)).await;
    }
    assert_eq!(resp.status(), 200, "the provider's login page");
    let url = resp.url().clone();
    let html = resp.text().await.expect("provider page");
    let abort = {
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse("a#abort").expect("selector");
        let href = doc
            .select(&sel)
            .next()
            .and_then(|e| e.value().attr("href"))
            .unwrap_or_else(|| panic!("a Cancel link:\n{html}"))
            .to_string();
        url.join(&href).expect("abort URL").to_string()
    };
    let mut resp = navigate(&browser, &abort).await;
    while resp.status().is_redirection() && on_provider(&location(&resp), &fed.idp) {
        resp = navigate(&browser, &location(&resp)).await;
    }
    let callback = location(&resp);
    assert!(
        callback.starts_with(&format!("{}?", fed.ports.callback())),
        "{callback}"
    );
    assert_eq!(query_of(&callback)["error"], "access_denied");
    let page = navigate(&browser, &callback).await;
    let html = assert_refused(
        page,
        400,
        "you declined, or the provider refused the sign-in",
    )
    .await;
    assert!(html.contains("Corp SSO"), "{html}");
    assert_no_session(&browser, &jar, &fed, 0).await;
    assert_eq!(logins(&fed.fd, "idp:corp", "failure").await, 1.0);
}

#[tokio::test]
async fn provider_down_at_start_up_shows_unavailable_until_it_comes_up() {
    let mut ports = Ports::new();
    // The provider's port is bound but not listening (connections are refused, as when the
    // provider is down) until the provider starts on it.
    let idp_hold = tokio::net::TcpSocket::new_v4().expect("socket");
    idp_hold
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("reserve a port");
    let idp_port = idp_hold.local_addr().expect("addr").port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let upstream = Upstream::start().await;
    // frontdoor starts (the harness waits for /healthz and discovery of its own provider).
    let fd = start_frontdoor(&mut ports, &issuer, &upstream, true).await;

    let html = login_page_html(&fd).await;
    let (tag, href, text) = idp_button(&html).expect("#idp-corp on the login page");
    assert_eq!(
        tag, "span",
        "not a link while the provider is down:\n{html}"
    );
    assert_eq!(href, None);
    assert!(text.contains("Corp SSO is unavailable"), "{text}");
    assert!(
        html.contains("id=\"login-form\""),
        "the password form still works"
    );

    let (browser, jar) = browser_with_jar();
    let start = navigate(&browser, &fd.url("/_frontdoor/idp/corp/start?return_to=/x")).await;
    let page = assert_refused(start, 503, "Corp SSO cannot be reached right now").await;
    assert!(!page.contains("Internal"), "{page}");
    assert_eq!(session_of(&jar, &fd), None);

    // The provider comes up on the configured port; the button becomes a link within one retry.
    drop(idp_hold);
    let idp = Idp::start_on(
        idp_port,
        CLIENT_ID,
        CLIENT_SECRET,
        &[ports.callback()],
        Some(ports.backchannel()),
        &[ports.after_logout()],
        json!([alice()]),
    )
    .await;
    let took = wait_until_available(&fd, Duration::from_secs(10)).await;
    assert!(took <= Duration::from_secs(5), "available after {took:?}");

    let fed = Fed {
        ports,
        idp,
        upstream,
        fd,
    };
    let landed = sign_in_with_corp(
        &browser,
        &fed,
        &fed.fd.url("/x"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(landed.status(), 200);
    assert_eq!(
        fed.upstream.last().header("x-auth-request-user").as_deref(),
        Some("alice@example.com")
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Logout from the provider's side (back-channel) and across the chain.

#[tokio::test]
async fn backchannel_logout_from_the_provider_ends_the_frontdoor_session() {
    let fed = setup(json!([alice()]), true).await;
    let fd = &fed.fd;
    let (browser, jar) = browser_with_jar();
    let landed = sign_in_with_corp(
        &browser,
        &fed,
        &fd.url("/a"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(landed.status(), 200);
    let first = session_of(&jar, fd).expect("signed in");
    assert_session_alive(fd, &first).await;

    // The provider ends Alice's session server-side (an administrator, a password change):
    // it delivers the logout token to frontdoor, which ends the session at once.
    let sessions = fed.idp.sessions("u-alice").await;
    let sid = sessions[0]["clients"][CLIENT_ID]["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("a sid for frontdoor: {sessions}"))
        .to_string();
    let report = fed.idp.logout_user("u-alice").await;
    assert_eq!(
        report["delivered"],
        json!([{"client_id": CLIENT_ID, "sid": sid}]),
        "frontdoor accepted the logout token: {report}\n{}",
        fd.log()
    );
    assert_eq!(report["failed"], json!([]), "{report}");
    assert_session_ended(fd, &first).await;

    // Signed in again; then Alice signs out at the provider itself, in her browser.
    let landed = sign_in_with_corp(
        &browser,
        &fed,
        &fd.url("/b"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(landed.status(), 200);
    let second = session_of(&jar, fd).expect("signed in again");
    assert_ne!(first, second);
    assert_session_alive(fd, &second).await;
    let done = fed.idp.end_session(&browser).await;
    assert!(
        location(&done).starts_with(&fed.idp.url("/session/end/success")),
        "{}",
        location(&done)
    );
    assert_session_ended(fd, &second).await;
    // In the browser: the next page asks to sign in again.
    let next = navigate(&browser, &fd.url("/c")).await;
    assert_eq!(next.status(), 302);
}

#[tokio::test]
async fn a_logout_from_the_provider_is_passed_down_to_frontdoors_own_apps() {
    use crate::backchannel_logout::{Receiver, app_with, id_token_for};
    let fed = setup(json!([alice()]), true).await;
    let fd = &fed.fd;
    let rx = Receiver::start(200).await;
    let wiki = app_with(fd, "Wiki", &rx.uri());
    let (browser, _) = browser_with_jar();
    let landed = sign_in_with_corp(
        &browser,
        &fed,
        &fd.url("/a"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(landed.status(), 200);
    // Alice, signed in through Corp, signs in to frontdoor's wiki app.
    let id_token = id_token_for(&browser, fd, &wiki).await;
    let report = fed.idp.logout_user("u-alice").await;
    assert_eq!(report["failed"], json!([]), "{report}");
    // frontdoor ends the session and tells the wiki, with the sid of its ID token.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.count() == 0 {
        assert!(Instant::now() < deadline, "no logout token\n{}", fd.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sid = |jwt: &str| -> Value {
        let payload = jwt.split('.').nth(1).expect("payload");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        claims["sid"].clone()
    };
    assert!(sid(&id_token).is_string());
    assert_eq!(sid(&rx.tokens()[0]), sid(&id_token));
}

/// A relay between the provider and frontdoor's back-channel endpoint that keeps each logout
/// token it forwards, with frontdoor's answer.
async fn recording_relay() -> (u16, Arc<Mutex<String>>, Arc<Mutex<Vec<(String, u16)>>>) {
    let target: Arc<Mutex<String>> = Arc::default();
    let seen: Arc<Mutex<Vec<(String, u16)>>> = Arc::default();
    let (t, s) = (target.clone(), seen.clone());
    let app = axum::Router::new().route(
        "/backchannel-logout",
        axum::routing::post(
            move |axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>| {
                let (t, s) = (t.clone(), s.clone());
                async move {
                    let token = form.get("logout_token").cloned().unwrap_or_default();
                    let url = t.lock().expect("lock").clone();
                    let status = plain_client()
                        .post(url)
                        .form(&[("logout_token", &token)])
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(599);
                    s.lock().expect("lock").push((token, status));
                    axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, target, seen)
}

#[tokio::test]
async fn forged_and_replayed_logout_tokens_are_refused_and_end_nothing() {
    let (relay, target, relayed) = recording_relay().await;
    let fed = setup_with_backchannel(json!([alice()]), true, |_| {
        format!("http://127.0.0.1:{relay}/backchannel-logout")
    })
    .await;
    *target.lock().expect("lock") = fed.ports.backchannel();
    let fd = &fed.fd;
    let (browser, jar) = browser_with_jar();
    sign_in_with_corp(
        &browser,
        &fed,
        &fd.url("/a"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    let session = session_of(&jar, fd).expect("signed in");
    let sessions = fed.idp.sessions("u-alice").await;
    let sid = sessions[0]["clients"][CLIENT_ID]["sid"]
        .as_str()
        .expect("sid")
        .to_string();
    let (kid, _) = provider_key(&fed.idp.url("/jwks")).await;

    // Forgeries, each naming Alice's real provider session with otherwise valid claims.
    let claims = || logout_claims(&fed.idp.issuer, Some("u-alice"), Some(&sid));
    let foreign = RS256KeyPair::generate(2048).expect("RSA key");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"logout+jwt"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    for (what, token) in [
        (
            "another key under the provider's kid",
            sign(&foreign.clone().with_key_id(&kid), "logout+jwt", &claims()),
        ),
        (
            "another key under an unknown kid",
            sign(
                &foreign.clone().with_key_id("not-the-provider"),
                "logout+jwt",
                &claims(),
            ),
        ),
        ("alg none", unsigned),
    ] {
        let (status, body) = post_logout_token(fd, &token).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        assert_session_alive(fd, &session).await;
    }

    // The provider's real logout token (through the relay) ends the session...
    let report = fed.idp.logout_user("u-alice").await;
    assert_eq!(report["failed"], json!([]), "{report}");
    let (token, status) = relayed.lock().expect("lock").pop().expect("a logout token");
    assert_eq!(status, 200, "frontdoor accepted the real token");
    assert_session_ended(fd, &session).await;

    // ...once: the same token again is refused, now and after Alice signs in again.
    let (status, body) = post_logout_token(fd, &token).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already used")),
        "{body}"
    );
    sign_in_with_corp(
        &browser,
        &fed,
        &fd.url("/b"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    let again = session_of(&jar, fd).expect("signed in again");
    let (status, body) = post_logout_token(fd, &token).await;
    assert_eq!(status, 400, "{body}");
    assert_session_alive(fd, &again).await;
}

/// With the real provider a replayed token names a provider session that no longer exists, so
/// "ends nothing" proves little; the scripted provider's logout token names only the subject,
/// so a replay accepted by mistake would end the user's new session.
#[tokio::test]
async fn replayed_subject_logout_token_ends_nothing_though_it_still_matches() {
    let (mock, _upstream, fd) = setup_mock().await;
    let (browser, jar) = browser_with_jar();
    assert_eq!(mock_sign_in(&browser, &fd, &mock).await.status(), 303);
    let first = session_of(&jar, &fd).expect("signed in");
    assert_session_alive(&fd, &first).await;

    let token = sign(
        &mock.key,
        "logout+jwt",
        &logout_claims(&mock.issuer, Some(MOCK_SUB), None),
    );
    let (status, body) = post_logout_token(&fd, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_session_ended(&fd, &first).await;

    let (browser, jar) = browser_with_jar();
    assert_eq!(mock_sign_in(&browser, &fd, &mock).await.status(), 303);
    let second = session_of(&jar, &fd).expect("signed in again");
    let (status, body) = post_logout_token(&fd, &token).await;
    assert_eq!(status, 400, "the replay is refused: {body}");
    assert_session_alive(&fd, &second).await;

    // A forgery with a fresh jti, signed with another key under the provider's kid.
    let foreign = RS256KeyPair::generate(2048)
        .expect("RSA key")
        .with_key_id(MOCK_KID);
    let forged = sign(
        &foreign,
        "logout+jwt",
        &logout_claims(&mock.issuer, Some(MOCK_SUB), None),
    );
    let (status, body) = post_logout_token(&fd, &forged).await;
    assert_eq!(status, 400, "{body}");
    assert_session_alive(&fd, &second).await;

    // A fresh genuine token still works (the session was alive because of the refusals).
    let fresh = sign(
        &mock.key,
        "logout+jwt",
        &logout_claims(&mock.issuer, Some(MOCK_SUB), None),
    );
    let (status, body) = post_logout_token(&fd, &fresh).await;
    assert_eq!(status, 200, "{body}");
    assert_session_ended(&fd, &second).await;
}

#[tokio::test]
async fn logout_of_a_federated_session_goes_on_to_the_providers_end_session_with_id_token_hint() {
    let fed = setup(json!([alice()]), true).await;
    let fd = &fed.fd;
    let (browser, jar) = browser_with_jar();
    sign_in_with_corp(
        &browser,
        &fed,
        &fd.url("/a"),
        "alice@example.com",
        ALICE_PASSWORD,
    )
    .await;
    let session = session_of(&jar, fd).expect("signed in");

    let page = navigate(&browser, &fd.url("/_frontdoor/logout")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("logout page");
    let csrf = form_field(&html, "csrf_token").expect("a csrf_token on the logout form");
    let out = browser
        .post(fd.url("/_frontdoor/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("post logout");
    assert!(out.status().is_redirection(), "{}", out.status());
    let to = location(&out);
    let discovery: Value = plain_client()
        .get(fed.idp.discovery_url())
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON");
    let end_session = discovery["end_session_endpoint"]
        .as_str()
        .expect("end_session_endpoint");
    assert!(to.starts_with(&format!("{end_session}?")), "{to}");
    let q = query_of(&to);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["post_logout_redirect_uri"], fed.ports.after_logout());
    // The hint is the provider's own ID token for Alice at this client.
    let (_, key) = provider_key(&fed.idp.url("/jwks")).await;
    let hint = key
        .verify_token::<Map<String, Value>>(
            &q["id_token_hint"],
            Some(VerificationOptions {
                allowed_issuers: Some([fed.idp.issuer.clone()].into()),
                allowed_audiences: Some([CLIENT_ID.to_string()].into()),
                ..Default::default()
            }),
        )
        .expect("the id_token_hint is the provider's ID token");
    assert_eq!(hint.subject.as_deref(), Some("u-alice"));
    // frontdoor's own session is over already.
    assert_session_ended(fd, &session).await;

    // At the provider: confirm; it ends its session, tells frontdoor over the back channel, and
    // sends the browser to the registered address.
    let done = idp_end_session(&browser, out).await;
    assert!(
        location(&done).starts_with(&fed.ports.after_logout()),
        "{}",
        location(&done)
    );
    assert_eq!(fed.idp.sessions("u-alice").await, json!([]));
    let log = fed.idp.log();
    assert!(
        log.contains(&format!("backchannel.success {CLIENT_ID} u-alice")),
        "frontdoor answered the back-channel logout of an ended session with 200:\n{log}"
    );
}
