//! The gateway, end to end: browser login, identity headers, spoofing, sessions, logout,
//! policies, upstream failures and metrics.

use crate::harness::*;

const PASSWORD: &str = "correct horse battery";

/// The user most tests sign in as.
const ANN: User<'static> = (
    "ann@example.com",
    "Ann Example",
    "wiki,ops",
    "ROLE_USER,ROLE_EDITOR",
    PASSWORD,
);

async fn setup() -> (Upstream, Frontdoor) {
    setup_with(Config::standard, &[ANN]).await
}

#[tokio::test]
async fn browser_login_reaches_the_upstream_with_identity_headers() {
    let (upstream, fd) = setup().await;
    let client = browser();
    let target = fd.url("/wiki/Main_Page?action=view&x=%2Fy");
    let done = browser_login(&client, &target, "ann@example.com", PASSWORD).await;
    assert_eq!(done.status(), 200);
    assert_eq!(
        done.url().as_str(),
        target,
        "lands back on exactly the URL it asked for"
    );
    let got = upstream.last();
    assert_eq!(got.uri, "/wiki/Main_Page?action=view&x=%2Fy");
    assert_eq!(
        got.header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        got.header("x-auth-request-email").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        got.header("x-auth-request-name").as_deref(),
        Some("Ann Example")
    );
    assert_eq!(
        got.header("x-auth-request-groups").as_deref(),
        Some("wiki,ops")
    );
    assert_eq!(
        got.header("x-auth-request-roles").as_deref(),
        Some("ROLE_USER,ROLE_EDITOR")
    );
    assert_eq!(
        got.header("x-auth-request-tenant").as_deref(),
        Some("default")
    );
    assert_eq!(
        got.header("x-auth-request-access").as_deref(),
        Some("read-write")
    );

    // A second request reuses the session: straight to the upstream, no redirect.
    let before = upstream.count();
    let again = navigate(&client, &fd.url("/wiki/Other")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(upstream.count(), before + 1);
    assert_eq!(
        upstream.last().header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
}

#[tokio::test]
async fn a_route_renames_identity_headers_and_sends_none_for_an_empty_name() {
    let grafana = |up: u16| {
        Config::new().route(
            Route::new("/grafana", up)
                .header("user", "X-WEBAUTH-USER")
                .header("tenant", "")
                .header("access", ""),
        )
    };
    let (upstream, fd) = setup_with(
        grafana,
        &[("ann@example.com", "Ann Example", "wiki", "", PASSWORD)],
    )
    .await;
    let client = browser();
    let done = browser_login(&client, &fd.url("/grafana/"), "ann@example.com", PASSWORD).await;
    assert_eq!(done.status(), 200);
    // The client tries the renamed header, the turned-off ones and a variant spelling.
    let r = client
        .get(fd.url("/grafana/api/user"))
        .header("X-WEBAUTH-USER", "mallory")
        .header("X_WEBAUTH_USER", "mallory")
        .header("X-Auth-Request-Tenant", "other")
        .header("X-Auth-Request-Access", "read-write")
        .header("X-Auth-Request-User", "mallory")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let got = upstream.last();
    assert_eq!(
        got.header("x-webauth-user").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        got.header("x-auth-request-email").as_deref(),
        Some("ann@example.com"),
        "fields not listed keep their name"
    );
    let mut names = got.names_containing("auth");
    names.sort();
    assert_eq!(
        names,
        [
            "x-auth-request-amr",
            "x-auth-request-email",
            "x-auth-request-groups",
            "x-auth-request-name",
            "x-webauth-user"
        ],
        "no user under its old name, no tenant or access, none of the client's copies; how the session signed in"
    );
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_and_sets_no_session() {
    let (upstream, fd) = setup().await;
    let client = browser();
    let first = navigate(&client, &fd.url("/wiki")).await;
    let page = follow(&client, first, None).await;
    let url = page.url().clone();
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let resp = client
        .post(url.join("/_frontdoor/login").expect("url"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", "wrong"),
            ("csrf_token", &csrf),
            ("return_to", "/wiki"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);
    let body = resp.text().await.expect("body");
    assert!(body.contains("Wrong email or password"), "{body}");
    // Without a CSRF token the form is refused even with the right password.
    let resp = client
        .post(url.join("/_frontdoor/login").expect("url"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", PASSWORD),
            ("return_to", "/wiki"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403);
    let api = client.get(fd.url("/wiki")).send().await.expect("get");
    assert_eq!(api.status(), 401);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn api_call_without_credentials_gets_401_envelope_with_challenge() {
    let (upstream, fd) = setup().await;
    let resp = plain_client()
        .post(fd.url("/api/things"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("Bearer"))
    );
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["status"], 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let (upstream, fd) = setup().await;
    let client = browser();
    browser_login(&client, &fd.url("/start"), "ann@example.com", PASSWORD).await;
    let spoofs = [
        ("X-Auth-Request-User", "evil"),
        ("x-auth-request-groups", "admins"),
        ("X_Auth_Request_User", "evil2"),
        ("X.Auth.Request.User", "evil3"),
        ("Remote-User", "evil4"),
        ("X-Forwarded-User", "evil5"),
        ("X-Auth-Request-Roles", "ROLE_ADMIN"),
    ];
    for path in ["/protected", "/public/page"] {
        let mut req = client
            .get(fd.url(path))
            .header("Connection", "close, X-Auth-Request-User");
        for (k, v) in spoofs {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        let got = upstream.last();
        for name in got.headers.keys() {
            let n = name.as_str();
            assert!(
                !n.contains("auth_request")
                    && !n.contains("auth.request")
                    && n != "remote-user"
                    && n != "x-forwarded-user",
                "{path}: spoofed header {n} reached the upstream"
            );
        }
        let values: Vec<String> = got
            .headers
            .values()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        assert!(
            !values.iter().any(|v| v.starts_with("evil")),
            "{path}: {values:?}"
        );
        if path == "/protected" {
            // The injected header survives the client's Connection header.
            assert_eq!(
                got.header("x-auth-request-user").as_deref(),
                Some("ann@example.com")
            );
            assert_eq!(
                got.header("x-auth-request-groups").as_deref(),
                Some("wiki,ops")
            );
        } else {
            assert!(
                got.header("x-auth-request-user").is_none(),
                "public routes carry no identity"
            );
        }
        // frontdoor's own cookies are not forwarded.
        let cookies = got.header("cookie").unwrap_or_default();
        assert!(!cookies.contains("frontdoor_session"), "{cookies}");
        assert!(!cookies.contains("frontdoor_csrf"), "{cookies}");
    }
}

#[tokio::test]
async fn upstream_cookies_pass_but_the_session_cookie_does_not() {
    let (upstream, fd) = setup().await;
    let client = browser();
    browser_login(&client, &fd.url("/x"), "ann@example.com", PASSWORD).await;
    let cookie_jar_value = {
        // Resend the session cookie explicitly along with an app cookie.
        let resp = navigate(&client, &fd.url("/x")).await;
        assert_eq!(resp.status(), 200);
        upstream.last().header("cookie")
    };
    assert!(cookie_jar_value.is_none_or(|c| !c.contains("frontdoor_session")));
}

#[tokio::test]
async fn a_restart_keeps_users_and_sessions() {
    let (upstream, mut fd) = setup().await;
    let client = browser();
    browser_login(&client, &fd.url("/before"), "ann@example.com", PASSWORD).await;
    fd.restart().await;
    let resp = navigate(&client, &fd.url("/after")).await;
    assert_eq!(resp.status(), 200, "still logged in after a restart");
    assert_eq!(
        upstream.last().header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_the_same_cookie_is_refused() {
    let (_upstream, fd) = setup().await;
    let (client, session_cookie) = signed_in(&fd, "/x", "ann@example.com", PASSWORD).await;
    let page = navigate(&client, &fd.url("/_frontdoor/logout")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf on the logout form");
    // A logout POST without the CSRF token is refused and changes nothing.
    let forged = client
        .post(fd.url("/_frontdoor/logout"))
        .form(&[("x", "y")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    assert_eq!(
        client.get(fd.url("/x")).send().await.expect("get").status(),
        200
    );
    let out = client
        .post(fd.url("/_frontdoor/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 200);
    // The browser lost the cookie, and the old cookie replayed by hand is refused.
    let after = client.get(fd.url("/x")).send().await.expect("get");
    assert_eq!(after.status(), 401);
    let replay = plain_client()
        .get(fd.url("/x"))
        .header("Cookie", format!("frontdoor_session={session_cookie}"))
        .send()
        .await
        .expect("replay");
    assert_eq!(
        replay.status(),
        401,
        "the ended session's cookie is refused"
    );
}

/// Reads the session cookie value by asking the login flow on a clean client to reveal
/// nothing: instead, log in on a fresh client capturing Set-Cookie.
async fn session_cookie_of(client: &reqwest::Client, fd: &Frontdoor) -> String {
    // Log in again on a manual client to capture the cookie value from Set-Cookie.
    let _ = client;
    let manual = plain_client();
    let login = manual
        .get(fd.url("/_frontdoor/login?return_to=/x"))
        .send()
        .await
        .expect("login page");
    let csrf_cookie = set_cookie_pair(&login, "frontdoor_csrf").expect("csrf cookie");
    let html = login.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let resp = manual
        .post(fd.url("/_frontdoor/login"))
        .header("Cookie", csrf_cookie)
        .form(&[
            ("email", "ann@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("return_to", "/x"),
        ])
        .send()
        .await
        .expect("post");
    let set = set_cookie(&resp, "frontdoor_session").expect("session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    set.split(';')
        .next()
        .unwrap_or("")
        .trim_start_matches("frontdoor_session=")
        .to_string()
}

#[tokio::test]
async fn a_logged_out_cookie_from_a_second_login_is_refused_after_its_logout() {
    let (_upstream, fd) = setup().await;
    let client = browser();
    let cookie = session_cookie_of(&client, &fd).await;
    let with_cookie = || {
        plain_client()
            .get(fd.url("/x"))
            .header("Cookie", format!("frontdoor_session={cookie}"))
    };
    assert_eq!(with_cookie().send().await.expect("get").status(), 200);
    // Log out with that cookie (CSRF cookie + token from the logout page).
    let out = logout_with_cookie(&fd, &cookie).await;
    assert_eq!(out.status(), 200);
    assert_eq!(with_cookie().send().await.expect("get").status(), 401);
}

#[tokio::test]
async fn groups_on_a_route_give_403_to_callers_outside_them() {
    let (upstream, fd) = setup().await;
    let client = browser();
    browser_login(&client, &fd.url("/x"), "ann@example.com", PASSWORD).await;
    let before = upstream.count();
    let resp = client
        .get(fd.url("/admin/settings"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        upstream.count(),
        before,
        "a refused request never reaches the upstream"
    );
}

#[tokio::test]
async fn open_redirect_return_urls_are_refused() {
    let (_upstream, fd) = setup().await;
    for evil in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\tevil",
    ] {
        let client = browser();
        let page = client
            .get(fd.url(&format!("/_frontdoor/login?return_to={}", urlencode(evil))))
            .send()
            .await
            .expect("login page");
        let html = page.text().await.expect("html");
        assert_eq!(
            form_field(&html, "return_to").as_deref(),
            Some("/"),
            "{evil:?} is replaced by /"
        );
        let csrf = form_field(&html, "csrf_token").expect("csrf");
        // Posting the evil target directly is also neutralised.
        let resp = client
            .post(fd.url("/_frontdoor/login"))
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("return_to", evil),
            ])
            .send()
            .await
            .expect("post");
        assert!(resp.status().is_redirection());
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert_eq!(loc, "/", "{evil:?} must not be followed");
    }
}

#[tokio::test]
async fn ambiguous_paths_are_refused_not_guessed() {
    let (upstream, fd) = setup().await;
    for path in [
        "/public/..%2fadmin",
        "/public/%2e%2e/admin",
        "/public/../admin",
        "/public%2fx",
        "//admin",
        "/public/a%5cb",
        "/public/a\\b",
        "/public/%00",
    ] {
        let status = raw_status(
            fd.port,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn a_dead_upstream_gives_502_in_the_envelope_and_frontdoor_keeps_serving() {
    let upstream = Upstream::start().await;
    let dead = free_port();
    let fd = Frontdoor::launch(
        Config::new()
            .route(Route::new("/dead", dead).public())
            .route(Route::new("/", &upstream).public()),
    )
    .await;
    let client = plain_client();
    let resp = client.get(fd.url("/dead/x")).send().await.expect("get");
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await.expect("json envelope");
    assert_eq!(body["error"]["status"], 502);
    let ok = client.get(fd.url("/alive")).send().await.expect("get");
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn metrics_move_with_traffic() {
    let (_upstream, fd) = setup().await;
    let client = browser();
    browser_login(&client, &fd.url("/m"), "ann@example.com", PASSWORD).await;
    navigate(&client, &fd.url("/m2")).await;
    let text = fd.metrics().await;
    for needle in [
        "frontdoor_http_requests_total{",
        "frontdoor_http_request_duration_seconds_bucket",
        "frontdoor_upstream_duration_seconds_bucket",
        "frontdoor_auth_decisions_total{kind=\"session\",outcome=\"allowed\"}",
        "frontdoor_logins_total{method=\"password\",outcome=\"success\"} 1",
        "frontdoor_session_cache_requests_total{outcome=\"hit\"}",
        "frontdoor_build_info{",
        "frontdoor_active_sessions",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let health = plain_client()
        .get(fd.admin_url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = plain_client()
        .get(fd.admin_url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn first_start_generates_private_keys_and_logs_it() {
    let (_upstream, fd) = setup().await;
    use std::os::unix::fs::PermissionsExt;
    let key = fd.data_dir().join("keys/signing-key.pem");
    let mode = std::fs::metadata(&key)
        .expect("key exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(fd.data_dir().join("frontdoor.db").exists());
    assert!(
        fd.log().contains("generated a new RS256 signing key"),
        "{}",
        fd.log()
    );
}

#[tokio::test]
async fn check_config_names_the_key_of_each_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base =
        "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8080\n";
    let cases = [
        (format!("{base}colour: blue\n"), "unknown field `colour`"),
        (
            base.replace("127.0.0.1:8080", "not-an-address"),
            "listen: `not-an-address` is not an address",
        ),
        (
            format!("{base}session:\n  ttl: forever\n"),
            "session.ttl: `forever` is not a duration",
        ),
        (
            format!("{base}routes:\n  - host: wiki\n    policy: public\n"),
            "routes[0]: missing field `upstream`",
        ),
        (
            format!("{base}routes:\n  - host: wiki\n    upstream: gopher://x\n"),
            "routes[0].upstream",
        ),
    ];
    for (yaml, expected) in cases {
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, &yaml).expect("write");
        let out = cli_with_config(&path, &["check-config"], None);
        assert!(!out.status.success(), "accepted:\n{yaml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
    let path = dir.path().join("ok.yaml");
    std::fs::write(&path, base).expect("write");
    assert!(
        cli_with_config(&path, &["check-config"], None)
            .status
            .success()
    );
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_clients_are_replaced() {
    let (upstream, fd) = setup().await;
    let resp = plain_client()
        .get(fd.url("/public/x"))
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .header("X-Real-IP", "6.6.6.6")
        .header("X-Request-Id", "evil-0")
        .header("X_Request_Id", "evil-1")
        .header("x.request.id", "evil-2")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    let got = upstream.last();
    assert_eq!(got.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(got.header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(got.header("x-forwarded-proto").as_deref(), Some("http"));
    assert!(got.header("x-forwarded-host").is_none());
    // CGI and PHP read `X_Request_Id` as `X-Request-Id`: frontdoor's id is the only one.
    assert_eq!(request_ids(&got), [request_id_of(&resp)]);
}

/// Every value the upstream got under a name that reads as `X-Request-Id` (`_` or `.` for `-`).
fn request_ids(got: &Received) -> Vec<String> {
    got.headers
        .iter()
        .filter(|(n, _)| n.as_str().replace(['_', '.'], "-") == "x-request-id")
        .map(|(_, v)| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

fn request_id_of(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string()
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_headers_go_on_once_each() {
    // The test client on 127.0.0.1 is the trusted proxy. frontdoor sets X-Forwarded-For,
    // X-Real-IP and X-Request-Id itself, appended to the wire form after the proxy's own were
    // removed: the upstream must see each exactly once, and never the proxy's value beside ours.
    let (upstream, fd) = setup_with(
        |port| {
            Config::standard(format!("http://127.0.0.1:{port}"))
                .set("trusted_proxies", ["127.0.0.1/32"])
        },
        &[ANN],
    )
    .await;
    let resp = plain_client()
        .get(fd.url("/public/x"))
        .header("X-Forwarded-For", "10.9.9.9")
        .header("x-real-ip", "10.1.1.1")
        .header("X-Forwarded-Proto", "https")
        .header("X-Request-Id", "edge-7")
        .header("X_Request_Id", "evil-1")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "edge-7");
    let got = upstream.last();
    let all = |name: &str| -> Vec<String> {
        got.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    assert_eq!(all("x-forwarded-for"), ["10.9.9.9, 127.0.0.1"]);
    assert_eq!(all("x-real-ip"), ["10.9.9.9"]);
    assert_eq!(all("x-forwarded-proto"), ["https"]);
    assert_eq!(all("x-request-id"), ["edge-7"]);
    assert_eq!(request_ids(&got), ["edge-7"]);
}

#[tokio::test]
async fn the_login_page_can_email_a_code_and_sign_in_with_it() {
    let (upstream, fd) = setup().await;
    let client = browser();
    let first = navigate(&client, &fd.url("/docs/page?x=1")).await;
    let page = follow(&client, first, None).await;
    let url = page.url().clone();
    let html = page.text().await.expect("html");
    assert!(html.contains("Email me a code"), "{html}");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let return_to = form_field(&html, "return_to").expect("return_to");
    let asked = client
        .post(url.join("/_frontdoor/login/code").expect("url"))
        .form(&[
            ("email", "ann@example.com"),
            ("csrf_token", &csrf),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(asked.status(), 200);
    let code_page = asked.text().await.expect("html");
    let csrf = form_field(&code_page, "csrf_token").expect("csrf on the code page");
    let code = outbox_code(&fd, "ann@example.com").await;
    // A wrong code first: the page says so, in words that an address without an account (and
    // so without a code) gets too.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let resp = client
        .post(url.join("/_frontdoor/login/code").expect("url"))
        .form(&[
            ("email", "ann@example.com"),
            ("code", wrong),
            ("csrf_token", &csrf),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);
    assert!(
        resp.text()
            .await
            .expect("html")
            .contains("The code is wrong or expired; ask for a new code.")
    );
    let resp = client
        .post(url.join("/_frontdoor/login/code").expect("url"))
        .form(&[
            ("email", "ann@example.com"),
            ("code", &code),
            ("csrf_token", &csrf),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 303);
    let done = follow(&client, resp, None).await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.url().as_str(), fd.url("/docs/page?x=1"));
    assert_eq!(
        upstream.last().header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
}

/// frontdoor's own answers spell their header names as HTTP/1.1 peers have always seen them:
/// the standard ones in title case, the others in lowercase, whatever builds the header.
#[tokio::test]
async fn own_answers_spell_header_names_as_before() {
    let (_upstream, fd) = setup().await;
    let head = raw_head(
        fd.port,
        "GET /_frontdoor/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let names: Vec<&str> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n))
        .collect();
    for spelled in [
        "Content-Type",
        "Content-Length",
        "x-request-id",
        "content-security-policy",
    ] {
        assert!(names.contains(&spelled), "{spelled} in {names:?}");
    }
}

/// `work_stealing: false` gives each proxy thread a runtime of its own that keeps the
/// connections it accepted: sign-in, and a session used on many connections at once, work as
/// with the shared runtime, every request reaching the upstream with its identity.
#[tokio::test]
async fn without_work_stealing_every_connection_is_served() {
    let (upstream, fd) = setup_with(
        |port| Config::standard(port).set("work_stealing", false),
        &[ANN],
    )
    .await;
    let client = browser();
    let done = browser_login(&client, &fd.url("/first"), "ann@example.com", PASSWORD).await;
    assert_eq!(done.status(), 200);
    let cookie = format!(
        "frontdoor_session={}",
        session_cookie_of(&client, &fd).await
    );
    let before = upstream.count();

    let mut connections = tokio::task::JoinSet::new();
    for c in 0..16 {
        // A client of its own is a connection of its own.
        let (client, cookie, base) = (plain_client(), cookie.clone(), fd.url(""));
        connections.spawn(async move {
            for r in 0..8 {
                let resp = client
                    .get(format!("{base}/c{c}/r{r}"))
                    .header("Cookie", &cookie)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(resp.status(), 200, "connection {c}, request {r}");
            }
        });
    }
    while let Some(done) = connections.join_next().await {
        done.expect("a connection's requests");
    }
    let seen: Vec<_> = upstream.received().into_iter().skip(before).collect();
    assert_eq!(seen.len(), 16 * 8);
    for got in &seen {
        assert_eq!(
            got.header("x-auth-request-user").as_deref(),
            Some("ann@example.com"),
            "{}",
            got.uri
        );
    }
}
