//! The host model: frontdoor's own endpoints answer on its own hosts (the host of `public_url`
//! and the tenants'); on a host that only routes to an app, frontdoor keeps nothing but the
//! reserved prefix (`reserved_prefix`, default `/_frontdoor/`) and the app gets every other
//! path, `/api/v1/…`, `/oauth/…` and `/.well-known/…` included.

use std::net::SocketAddr;

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::harness::*;

const ANN: &str = "ann@example.com";
const BOB: &str = "bob@acme.example";
const PW: &str = "a long enough password";

/// An app on `wiki.localhost`, a `*` route (which also covers frontdoor's own hosts) and tenant
/// `acme` on `acme.localhost`, with `reserved_prefix` when given.
async fn setup(prefix: Option<&str>) -> (Upstream, Frontdoor) {
    let (upstream, fd) = setup_with(
        |up| {
            let c = Config::new()
                .route(Route::new("/", up).host("wiki.localhost"))
                .route(Route::new("/", up))
                .tenant("acme", ["acme.localhost"]);
            match prefix {
                Some(p) => c.set("reserved_prefix", p),
                None => c,
            }
        },
        &[(ANN, "Ann", "staff", "ROLE_USER", PW)],
    )
    .await;
    fd.add_tenant_user("acme", BOB, "Bob", &[], PW);
    (upstream, fd)
}

/// A browser that reaches `host` (any port) at frontdoor's listener.
pub(crate) fn browser_for(host: &str, fd: &Frontdoor) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .resolve(host, SocketAddr::from(([127, 0, 0, 1], fd.port)))
        .build()
        .expect("client")
}

/// `GET path` with `Host: host:port` and the headers given.
async fn get_on(fd: &Frontdoor, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = plain_client()
        .get(fd.url(path))
        .header("Host", format!("{host}:{}", fd.port));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// `POST /api/v1/login-check` on `host`.
async fn login_check(fd: &Frontdoor, host: &str, email: &str) -> (u16, Value) {
    let resp = plain_client()
        .post(fd.url("/api/v1/login-check"))
        .header("Host", format!("{host}:{}", fd.port))
        .json(&json!({"email": email, "password": PW}))
        .send()
        .await
        .expect("login-check");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_host_gives_the_app_its_api_oauth_and_well_known_paths_with_identity() {
    let (upstream, fd) = setup(None).await;
    let token = fd.api_token(&["--user", ANN]);
    for path in [
        "/api/v1/issues",
        "/oauth/authorize?client_id=gitlab-app",
        "/.well-known/x",
        "/.well-known/acme-challenge/x",
        "/oauth2-token",
    ] {
        let (status, body) = get_on(&fd, "wiki.localhost", path, &[("Api-Token", &token)]).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body, format!("upstream saw GET {path}"), "{path}");
        let got = upstream.last();
        assert_eq!(got.uri, path);
        assert_eq!(
            got.header("x-auth-request-email").as_deref(),
            Some(ANN),
            "{path}"
        );
        assert!(
            got.header("api-token").is_none(),
            "the credential stays with frontdoor"
        );
    }
    // Without a credential the app's paths are the route's to protect: no frontdoor endpoint.
    let (status, _) = get_on(&fd, "wiki.localhost", "/api/v1/issues", &[]).await;
    assert_eq!(status, 401);
    // The reserved prefix is still frontdoor's there, and only what an app host needs of it.
    let (status, css) = get_on(&fd, "wiki.localhost", "/_frontdoor/static/style.css", &[]).await;
    assert_eq!(status, 200);
    assert!(!css.starts_with("upstream saw"), "frontdoor's stylesheet");
    let (status, body) = get_on(&fd, "wiki.localhost", "/_frontdoor/login", &[]).await;
    assert_eq!(
        status, 404,
        "the sign-in pages live on frontdoor's own host: {body}"
    );
    assert!(body.contains("own host"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn own_endpoints_still_answer_on_the_public_host_and_tenant_hosts() {
    let (upstream, fd) = setup(None).await;
    let (status, answer) = login_check(&fd, "127.0.0.1", ANN).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["token"].is_string(), "{answer}");
    // Every spelling of a tenant's host is that tenant's own host.
    for host in ["acme.localhost", "ACME.localhost", "acme.localhost."] {
        let (status, answer) = login_check(&fd, host, BOB).await;
        assert_eq!(status, 200, "{host}: {answer}");
        assert!(answer["token"].is_string(), "{host}: {answer}");
        let (status, body) = get_on(&fd, host, "/.well-known/openid-configuration", &[]).await;
        assert_eq!(status, 200, "{host}");
        assert!(body.contains("authorization_endpoint"), "{host}: {body}");
    }
    let (status, body) = get_on(&fd, "127.0.0.1", "/_frontdoor/login", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        upstream.count(),
        0,
        "nothing of frontdoor's own went upstream"
    );
}

/// Attack: a `Host` naming an app host must not reach frontdoor's token endpoint (nor any
/// other own endpoint outside the prefix), in any spelling of that host.
#[tokio::test(flavor = "multi_thread")]
async fn an_app_host_never_reaches_the_token_endpoint() {
    let (upstream, fd) = setup(None).await;
    for host in ["wiki.localhost", "WIKI.LOCALHOST", "wiki.localhost."] {
        let before = upstream.count();
        let resp = plain_client()
            .post(fd.url("/oauth/token"))
            .header("Host", format!("{host}:{}", fd.port))
            .form(&[
                ("grant_type", "password"),
                ("username", ANN),
                ("password", PW),
            ])
            .send()
            .await
            .expect("token");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("body");
        // The route is authenticated: no credential, no request through, and no token either.
        assert_eq!(status, 401, "{host}: {body}");
        assert!(
            !body.contains("access_token") && !body.contains("grant"),
            "{host}: {body}"
        );
        assert_eq!(upstream.count(), before);
    }
    let token = fd.api_token(&["--user", ANN]);
    let resp = plain_client()
        .post(fd.url("/oauth/token"))
        .header("Host", format!("wiki.localhost.:{}", fd.port))
        .header("Api-Token", &token)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(
        resp.text().await.expect("body"),
        "upstream saw POST /oauth/token",
        "the app's own /oauth/token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_default_prefix_carries_the_sign_in_round_trip_on_an_app_host() {
    let (upstream, fd) = setup(Some("/_sso/")).await;
    let wiki = format!("http://wiki.localhost:{}", fd.port);
    let client = browser_for("wiki.localhost", &fd);
    let first = navigate(&client, &format!("{wiki}/page?x=1")).await;
    assert_eq!(first.status(), 302);
    assert!(
        location(&first).contains(&urlencode(&format!("{wiki}/_sso/callback"))),
        "the own client's redirect URI follows the prefix: {}",
        location(&first)
    );
    let landed = browser_login(&client, &format!("{wiki}/page?x=1"), ANN, PW).await;
    assert_eq!(landed.status(), 200, "signed in through /_sso/callback");
    assert_eq!(
        landed.text().await.expect("body"),
        "upstream saw GET /page?x=1"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-email").as_deref(),
        Some(ANN)
    );

    // On the app host, `/_frontdoor/…` is now the app's; `/_sso/…` is frontdoor's.
    let (status, body) = get_on(&fd, "wiki.localhost", "/_frontdoor/callback", &[]).await;
    assert_eq!(status, 401, "the route's, not frontdoor's: {body}");
    let (status, css) = get_on(&fd, "wiki.localhost", "/_sso/static/style.css", &[]).await;
    assert_eq!(status, 200);
    assert!(css.contains('{'), "frontdoor's stylesheet: {css}");
    let logout = navigate(&client, &format!("{wiki}/_sso/logout")).await;
    let page = logout.text().await.expect("page");
    assert!(page.contains("action=\"/_sso/logout\""), "{page}");
    // The page is styled from under the prefix: `/_frontdoor/static/…` is the app's here.
    assert!(
        page.contains("href=\"/_sso/static/style.css\""),
        "the stylesheet under the prefix: {page}"
    );
    // On frontdoor's own hosts both the old paths and the prefix answer.
    for path in ["/_frontdoor/login", "/_sso/login"] {
        let (status, _) = get_on(&fd, "127.0.0.1", path, &[]).await;
        assert_eq!(status, 200, "{path}");
    }

    // check-config says which paths frontdoor keeps where a route serves its own hosts.
    let out = fd.cli_ok(&["check-config"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("routes[1] (path_prefix `/`): on frontdoor's own hosts frontdoor keeps /oauth/, /.well-known/, /api/v1/, /_frontdoor/, /oauth2-token, /_sso/"),
        "{text}"
    );
    assert!(
        !text.contains("routes[0]"),
        "wiki.localhost is an app host: {text}"
    );
}
