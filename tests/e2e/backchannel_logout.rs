//! OpenID Connect Back-Channel Logout 1.0 with frontdoor as the provider: apps registered with
//! a `backchannel_logout_uri` receive a signed `logout_token` when a session in which they got
//! tokens ends. The receivers are real HTTP servers started here; the tokens are verified with
//! jwt-simple (frontdoor signs with jsonwebtoken's types and aws-lc), against `/oauth/jwks`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use jwt_simple::prelude::{JWTClaims, RS256PublicKey, RSAPublicKeyLike, VerificationOptions};
use serde_json::{Map, Value, json};

use crate::harness::*;
use crate::oauth::{CALLBACK, EMAIL, PASSWORD, callback_params, code_url, pkce, sign_in, start};
use crate::scripted_idp::rsa_jwk;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Attempts per app, as `provider::backchannel` makes them.
const ATTEMPTS: usize = 3;

/// One POST received: its content type and `logout_token` field.
type Post = (Option<String>, Option<String>);

/// An app's back-channel logout endpoint: records each POST (its content type and
/// `logout_token`) and answers `status`.
pub(crate) struct Receiver {
    port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start(status: u16) -> Receiver {
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let log = posts.clone();
        let app = Router::new().route(
            "/backchannel-logout",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let log = log.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let token = url::form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned());
                    log.lock().expect("lock").push((content_type, token));
                    StatusCode::from_u16(status).expect("status")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            port,
            posts,
            _task: task,
        }
    }

    pub(crate) fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/backchannel-logout", self.port)
    }

    pub(crate) fn count(&self) -> usize {
        self.posts.lock().expect("lock").len()
    }

    /// The logout tokens received, each form-encoded.
    pub(crate) fn tokens(&self) -> Vec<String> {
        self.posts
            .lock()
            .expect("lock")
            .iter()
            .map(|(content_type, token)| {
                assert_eq!(
                    content_type.as_deref(),
                    Some("application/x-www-form-urlencoded"),
                    "a form POST"
                );
                token.clone().expect("a logout_token field")
            })
            .collect()
    }
}

/// A first-party app (no consent page) registered with `backchannel` as its logout URI.
pub(crate) fn app_with(fd: &Frontdoor, name: &str, backchannel: &str) -> (String, String) {
    let (id, secret) = fd.create_app(&[
        "--name",
        name,
        "--redirect-uri",
        CALLBACK,
        "--first-party",
        "--backchannel-logout-uri",
        backchannel,
    ]);
    (id, secret.expect("a confidential app"))
}

/// Runs the code flow for `app` in `browser` (signing in as Ann when needed) and returns the
/// ID token the app receives.
pub(crate) async fn id_token_for(
    browser: &reqwest::Client,
    fd: &Frontdoor,
    app: &(String, String),
) -> String {
    let (challenge, verifier) = pkce();
    let mut resp = navigate(
        browser,
        &code_url(fd, &app.0, "openid email", "st", &challenge),
    )
    .await;
    if resp.status() == 302 && location(&resp).starts_with(&fd.url("/_frontdoor/login")) {
        resp = sign_in(browser, fd, resp).await;
    }
    let code = callback_params(&resp, CALLBACK)["code"].clone();
    let answer: Value = plain_client()
        .post(fd.url("/oauth/token"))
        .basic_auth(&app.0, Some(&app.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    answer["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("an ID token: {answer}"))
        .to_string()
}

/// frontdoor's published signing key, read as a relying party would.
async fn published_key(fd: &Frontdoor) -> RS256PublicKey {
    rsa_jwk(&fd.jwks().await["keys"][0]).1
}

/// Verifies a JWT of `typ` for `audience` as the app would, with jwt-simple.
fn verify(
    key: &RS256PublicKey,
    fd: &Frontdoor,
    jwt: &str,
    typ: &str,
    audience: &str,
) -> JWTClaims<Map<String, Value>> {
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([fd.issuer()])),
        allowed_audiences: Some(HashSet::from([audience.to_string()])),
        required_signature_type: Some(typ.to_string()),
        required_key_id: key.key_id().clone(),
        ..Default::default()
    };
    key.verify_token::<Map<String, Value>>(jwt, Some(options))
        .unwrap_or_else(|e| panic!("a valid {typ} for {audience}: {e}"))
}

/// Checks a logout token as Back-Channel Logout 1.0 §2.6 asks a receiver to, and that it
/// names the session of `id_token`.
fn assert_logout_token_of(
    key: &RS256PublicKey,
    fd: &Frontdoor,
    token: &str,
    client_id: &str,
    id_token: &JWTClaims<Map<String, Value>>,
) {
    let claims = verify(key, fd, token, "logout+jwt", client_id);
    assert_eq!(claims.custom["events"], json!({ EVENT: {} }));
    assert!(claims.nonce.is_none(), "no nonce in a logout token");
    assert!(!claims.custom.contains_key("nonce"));
    let sid = id_token.custom["sid"]
        .as_str()
        .expect("the ID token has a sid");
    assert_eq!(claims.custom["sid"], sid, "the ID token's session");
    assert_eq!(claims.subject, id_token.subject);
    assert!(
        claims.jwt_id.as_deref().is_some_and(|j| !j.is_empty()),
        "a jti"
    );
    let (iat, exp) = (
        claims.issued_at.expect("iat").as_secs(),
        claims.expires_at.expect("exp").as_secs(),
    );
    assert!(exp > iat && exp - iat <= 300, "short-lived: {iat}..{exp}");
}

/// A call of the management API with a bearer token: the status and the JSON answer.
async fn api(fd: &Frontdoor, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = plain_client()
        .request(method.parse().expect("method"), fd.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("api");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The value of `frontdoor_backchannel_logout_total{outcome}`.
fn outcome(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!("frontdoor_backchannel_logout_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} in the metrics"))
        .trim()
        .parse()
        .expect("a count")
}

/// Waits until the metrics count `delivered` and `failed` deliveries.
async fn wait_for_outcomes(fd: &Frontdoor, delivered: u64, failed: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = fd.metrics().await;
        let seen = (outcome(&m, "delivered"), outcome(&m, "failed"));
        if seen == (delivered, failed) {
            return;
        }
        assert!(
            Instant::now() < deadline && seen.0 <= delivered && seen.1 <= failed,
            "expected {delivered} delivered and {failed} failed, saw {seen:?}\n{}",
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs the browser out with frontdoor's own logout page (GET, then the confirming POST).
async fn sign_out(browser: &reqwest::Client, fd: &Frontdoor) -> reqwest::Response {
    let page = browser
        .get(fd.url("/_frontdoor/logout"))
        .send()
        .await
        .expect("logout page");
    let csrf = form_field(&page.text().await.expect("html"), "csrf_token").expect("csrf");
    browser
        .post(fd.url("/_frontdoor/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("logout")
}

#[tokio::test]
async fn signing_out_sends_a_verifiable_logout_token_to_each_app_of_the_session_only() {
    let fd = start(|c| c).await;
    let (wiki_rx, idle_rx, broken_rx) = (
        Receiver::start(200).await,
        Receiver::start(200).await,
        Receiver::start(500).await,
    );
    let wiki = app_with(&fd, "Wiki", &wiki_rx.uri());
    // Registered, but Ann never signs in to it.
    let _idle = app_with(&fd, "Idle", &idle_rx.uri());
    let broken = app_with(&fd, "Broken", &broken_rx.uri());
    // Nothing listens there.
    let gone = app_with(
        &fd,
        "Gone",
        &format!("http://127.0.0.1:{}/backchannel-logout", free_port()),
    );
    // Before any logout, both outcomes are shown at zero.
    wait_for_outcomes(&fd, 0, 0).await;

    let discovery: Value = fd.discovery().await;
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);

    // Ann signs in to three of the apps in one browser session; "Idle" gets nothing from her.
    let (browser, jar) = browser_with_jar();
    let key = published_key(&fd).await;
    let wiki_id = verify(
        &key,
        &fd,
        &id_token_for(&browser, &fd, &wiki).await,
        "JWT",
        &wiki.0,
    );
    let broken_id = id_token_for(&browser, &fd, &broken).await;
    let gone_id = id_token_for(&browser, &fd, &gone).await;
    let sid = wiki_id.custom["sid"].as_str().expect("sid").to_string();
    let cookie = session_of(&jar, &fd).expect("a session");
    assert!(
        !sid.is_empty() && !cookie.contains(&sid),
        "sid is not the cookie"
    );
    for (jwt, app) in [(&broken_id, &broken), (&gone_id, &gone)] {
        let claims = verify(&key, &fd, jwt, "JWT", &app.0);
        assert_eq!(claims.custom["sid"], json!(sid), "one session, one sid");
    }

    // A second session of Ann's, in another browser, with the wiki: its logout is not hers.
    let (other_browser, _) = browser_with_jar();
    let other_id = id_token_for(&other_browser, &fd, &wiki).await;
    let other_sid = verify(&key, &fd, &other_id, "JWT", &wiki.0).custom["sid"].clone();
    assert_ne!(other_sid, json!(sid), "one sid per session");
    assert_eq!(wiki_rx.count() + idle_rx.count() + broken_rx.count(), 0);

    // Signing out answers at once, whatever the apps do.
    let started = Instant::now();
    let out = sign_out(&browser, &fd).await;
    assert_eq!(out.status(), 200);
    assert!(
        out.text()
            .await
            .expect("html")
            .contains("You are signed out")
    );
    assert!(
        broken_rx.count() < ATTEMPTS,
        "the logout did not wait for the failing app's retries ({:?})",
        started.elapsed()
    );

    // The wiki is told once; the failing app is tried three times; both failures are counted.
    wait_for_outcomes(&fd, 1, 2).await;
    let tokens = wiki_rx.tokens();
    assert_eq!(tokens.len(), 1, "one logout token for the wiki");
    assert_logout_token_of(&key, &fd, &tokens[0], &wiki.0, &wiki_id);
    assert_eq!(broken_rx.count(), ATTEMPTS, "retried, then given up");
    let broken_claims = verify(&key, &fd, &broken_rx.tokens()[0], "logout+jwt", &broken.0);
    assert_eq!(broken_claims.custom["sid"], json!(sid));
    assert_eq!(
        idle_rx.count(),
        0,
        "an app without tokens in the session is not told"
    );

    // The other session is still alive, and so are the wiki's tokens from it: nothing else is
    // revoked.
    let still = navigate(
        &other_browser,
        &code_url(&fd, &wiki.0, "openid", "s", &pkce().0),
    )
    .await;
    assert!(
        location(&still).starts_with(CALLBACK),
        "the other session still signs in without a password: {}",
        location(&still)
    );
}

#[tokio::test]
async fn rp_initiated_logout_tells_the_apps_too() {
    let fd = start(|c| c).await;
    let rx = Receiver::start(204).await;
    let wiki = app_with(&fd, "Wiki", &rx.uri());
    let (browser, _) = browser_with_jar();
    let id_token = id_token_for(&browser, &fd, &wiki).await;
    let mut url = url::Url::parse(&fd.url("/oauth/logout")).expect("url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("client_id", &wiki.0);
    let out = navigate(&browser, url.as_str()).await;
    assert_eq!(out.status(), 200, "signed out at once with a matching hint");
    // A 204 is a success too.
    wait_for_outcomes(&fd, 1, 0).await;
    let key = published_key(&fd).await;
    let id = verify(&key, &fd, &id_token, "JWT", &wiki.0);
    assert_logout_token_of(&key, &fd, &rx.tokens()[0], &wiki.0, &id);
}

// Multi-threaded: the receiver answers while the test waits for the CLI.
#[tokio::test(flavor = "multi_thread")]
async fn deactivating_or_removing_a_user_from_the_cli_ends_their_sessions_and_tells_the_apps() {
    // On SQLite a running server notices a session ended by the CLI within `cache_ttl`.
    let fd = start(|c| c.set("session.cache_ttl", "1s")).await;
    let rx = Receiver::start(200).await;
    let wiki = app_with(&fd, "Wiki", &rx.uri());
    let key = published_key(&fd).await;
    // Ann has two sessions, each with a token for the wiki.
    let (first, _) = browser_with_jar();
    let (second, _) = browser_with_jar();
    let mut sids = HashSet::new();
    for browser in [&first, &second] {
        let id = verify(
            &key,
            &fd,
            &id_token_for(browser, &fd, &wiki).await,
            "JWT",
            &wiki.0,
        );
        sids.insert(id.custom["sid"].as_str().expect("sid").to_string());
    }
    assert_eq!(sids.len(), 2);

    // The CLI runs outside the server: it delivers before it exits, and says so.
    let out = fd.cli_ok(&["users", "deactivate", "--email", EMAIL], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("back-channel logout: 2 of 2 apps told"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let told: HashSet<String> = rx
        .tokens()
        .iter()
        .map(|t| {
            let claims = verify(&key, &fd, t, "logout+jwt", &wiki.0);
            assert!(claims.custom["events"][EVENT].is_object(), "the event");
            claims.custom["sid"].as_str().expect("sid").to_string()
        })
        .collect();
    assert_eq!(
        told, sids,
        "one logout token per session, each with its sid"
    );

    // The sessions are gone, not only refused: activating Ann again does not bring them back.
    fd.cli_ok(&["users", "activate", "--email", EMAIL], None);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for browser in [&first, &second] {
        let again = navigate(browser, &code_url(&fd, &wiki.0, "openid", "s", &pkce().0)).await;
        assert!(
            location(&again).starts_with(&fd.url("/_frontdoor/login")),
            "signed out: {}",
            location(&again)
        );
    }

    // Other commands that end sessions (through `accounts`, in the background) deliver before
    // the process exits too.
    let (before_reset, _) = browser_with_jar();
    let id = verify(
        &key,
        &fd,
        &id_token_for(&before_reset, &fd, &wiki).await,
        "JWT",
        &wiki.0,
    );
    fd.cli_ok(&["users", "reset-factors", "--email", EMAIL], None);
    let last = rx
        .tokens()
        .pop()
        .expect("a token for the reset's ended session");
    assert_eq!(
        verify(&key, &fd, &last, "logout+jwt", &wiki.0).custom["sid"],
        id.custom["sid"]
    );

    // Removing her tells the apps of her new session, though it deletes the grants naming them.
    let (third, _) = browser_with_jar();
    let id = verify(
        &key,
        &fd,
        &id_token_for(&third, &fd, &wiki).await,
        "JWT",
        &wiki.0,
    );
    let out = fd.cli_ok(&["users", "remove", "--email", EMAIL], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("back-channel logout: 1 of 1 apps told"),
        "{text}"
    );
    let last = rx.tokens().pop().expect("a third token");
    assert_eq!(
        verify(&key, &fd, &last, "logout+jwt", &wiki.0).custom["sid"],
        id.custom["sid"]
    );
}

#[tokio::test]
async fn a_malformed_backchannel_logout_uri_is_refused_by_the_cli_the_api_and_the_page() {
    let fd = start(|c| c).await;
    fd.add_user(ROOT.0, ROOT.1, ROOT.2, ROOT.3, ROOT.4);
    let bad = [
        "/relative/path",
        "https://app.example/logout#fragment",
        "ftp://app.example/logout",
        "javascript:alert(1)",
    ];
    for uri in bad {
        let out = fd.cli(
            &[
                "apps",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                CALLBACK,
                "--backchannel-logout-uri",
                uri,
            ],
            None,
        );
        assert!(!out.status.success(), "{uri} refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--backchannel-logout-uri") && err.contains(uri),
            "names the flag and the value: {err}"
        );
    }

    // The API, as an administrator (login-check token).
    let root = login_check_token(&fd, ROOT.0, ROOT.4).await;
    let app = |uri: &str| json!({"name": "Wiki", "redirect_uris": [CALLBACK], "backchannel_logout_uri": uri});
    for uri in bad {
        let (status, body) = api(&fd, "POST", "/api/v1/apps", &root, app(uri)).await;
        assert_eq!(status, 422, "{uri}: {body}");
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(
            message.contains("backchannel_logout_uri") && message.contains(uri),
            "{message}"
        );
    }
    let good = "https://wiki.example/backchannel-logout";
    let (status, created) = api(&fd, "POST", "/api/v1/apps", &root, app(good)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["backchannel_logout_uri"], good);
    let id = created["client_id"]
        .as_str()
        .expect("client id")
        .to_string();
    let path = format!("/api/v1/apps/{id}");
    let (status, body) = api(
        &fd,
        "PATCH",
        &path,
        &root,
        json!({"backchannel_logout_uri": "http://x/#y"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api(&fd, "PATCH", &path, &root, json!({"name": "Wiki 2"})).await;
    assert_eq!(
        (status, &body["backchannel_logout_uri"]),
        (200, &json!(good)),
        "kept when not sent"
    );
    let (status, body) = api(
        &fd,
        "PATCH",
        &path,
        &root,
        json!({"backchannel_logout_uri": null}),
    )
    .await;
    assert_eq!(
        (status, &body["backchannel_logout_uri"]),
        (200, &Value::Null),
        "null removes it"
    );

    // Where frontdoor sends requests is an administrator's choice, not an app owner's.
    let ann = login_check_token(&fd, EMAIL, PASSWORD).await;
    let (status, body) = api(&fd, "POST", "/api/v1/apps", &ann, app(good)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("administrators"),
        "{body}"
    );

    // The settings page, as the administrator.
    const APPS: &str = "/_frontdoor/settings/developers/apps";
    let client = browser();
    let csrf = login_csrf(&client, &fd).await;
    let signed_in = client
        .post(fd.url("/_frontdoor/login"))
        .form(&[
            ("email", ROOT.0),
            ("password", ROOT.4),
            ("csrf_token", csrf.as_str()),
            ("return_to", "/"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(signed_in.status(), 303);
    let form = client
        .get(fd.url(&format!("{APPS}/new")))
        .send()
        .await
        .expect("form");
    let html = form.text().await.expect("html");
    assert!(
        html.contains("id=\"backchannel_logout_uri\""),
        "the field is on the admin's form"
    );
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let submit = |uri: &'static str| {
        let (client, fd, csrf) = (&client, &fd, csrf.clone());
        async move {
            client
                .post(fd.url(APPS))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("name", "Wiki"),
                    ("redirect_uris", CALLBACK),
                    ("scopes", "openid"),
                    ("grant_types", "authorization_code"),
                    ("client_type", "confidential"),
                    ("backchannel_logout_uri", uri),
                ])
                .send()
                .await
                .expect("create")
        }
    };
    let refused = submit("https://app.example/logout#fragment").await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.expect("html");
    assert!(
        html.contains(
            "backchannel_logout_uri: `https://app.example/logout#fragment` must not have a fragment"
        ),
        "{html}"
    );
    let created = submit("https://wiki.example/backchannel-logout").await;
    assert_eq!(created.status(), 303);
    let shown = navigate(&client, &location(&created)).await;
    assert!(
        shown
            .text()
            .await
            .expect("html")
            .contains("https://wiki.example/backchannel-logout"),
        "the app's page shows it"
    );
}

#[tokio::test]
async fn on_postgresql_a_session_signed_in_on_one_node_and_ended_on_the_other_tells_the_app() {
    let cluster = crate::cluster::Cluster::start("1s").await;
    let (a, b) = (&cluster.a, &cluster.b);
    a.add_user(EMAIL, "Ann", "wiki", "ROLE_USER", PASSWORD);
    let rx = Receiver::start(200).await;
    let wiki = app_with(a, "Wiki", &rx.uri());
    let (browser, jar) = browser_with_jar();
    let id_token = id_token_for(&browser, a, &wiki).await;
    let cookie = session_of(&jar, a).expect("a session");
    let out = logout_with_cookie(b, &cookie).await;
    assert_eq!(out.status(), 200);
    // Node B finds the session's sid and the wiki's grant in the shared store.
    wait_for_outcomes(b, 1, 0).await;
    let key = published_key(a).await;
    let id = verify(&key, a, &id_token, "JWT", &wiki.0);
    // Issued by the cluster's one issuer, node A's public URL.
    assert_logout_token_of(&key, a, &rx.tokens()[0], &wiki.0, &id);
}
