//! Issue 12's gateway attacks: `;` path parameters across routes, rules and contact links;
//! Host tricks across tenants; method overrides and upgrades with read-only credentials; an
//! upstream setting frontdoor's cookies; forwarding headers from untrusted clients; slow
//! headers and trickled bodies. Each attack goes through the inline proxy and, where the same
//! decision is made there, through forward-auth (`/_frontdoor/auth`).

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

const PW: &str = "a long enough password";
const ANN: &str = "ann@example.com";
const BOB: &str = "bob@acme.example";

/// A frontdoor with tenant acme, Ann (default tenant, group wiki) and Bob (acme), its config
/// changed by `tune`: `/` authenticated, `/public` public, `/admin` for the admins group,
/// `/events` open to contact links, one recording upstream behind all.
async fn start(tune: impl FnOnce(Config) -> Config) -> (Upstream, Frontdoor) {
    let (up, fd) = setup_with(
        |up| {
            tune(
                Config::standard(up)
                    .route(Route::new("/events", up).contact_hash())
                    .tenant("acme", ["acme.localhost"]),
            )
        },
        &[(ANN, "Ann", "wiki", "ROLE_USER", PW)],
    )
    .await;
    fd.add_tenant_user("acme", BOB, "Bob", &[], PW);
    (up, fd)
}

/// A new Api-Token of `email` (`--read-only` when asked).
fn token(fd: &Frontdoor, email: &str, read_only: bool) -> String {
    let mut args = vec!["tokens", "create", "--json", "--user", email];
    if read_only {
        args.push("--read-only");
    }
    if email == BOB {
        args.extend(["--tenant", "acme"]);
    }
    fd.cli_json(&args)["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// Sends raw bytes, reads until the server closes or 3 s pass; the whole answer as text.
async fn raw(port: u16, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A GET with a credential header (and a Host, when given); status and body.
async fn get(
    fd: &Frontdoor,
    path: &str,
    headers: &[(&str, &str)],
    host: Option<&str>,
) -> (u16, String) {
    let mut b = plain_client().get(fd.url(path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if let Some(h) = host {
        b = b.header("Host", h);
    }
    let r = b.send().await.expect("send");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// 1. `;` path parameters

#[tokio::test(flavor = "multi_thread")]
async fn path_parameters_never_cross_a_route_a_rule_or_a_contact_link() {
    let (up, fd) = start(|c| c).await;
    let ann = token(&fd, ANN, false);
    let with_ann = [("Api-Token", ann.as_str())];

    // Tomcat, Jetty and Spring read `..;` as `..`: through the public route into /admin.
    for attack in [
        "/public/..;/admin/secret",
        "/public/..;x/admin/secret",
        "/public/..;x=1;y/admin/secret",
        "/public/.;/x",
        "/public/%2e%2e;/admin/secret",
        "/public/..%3b/admin/secret",
        "/;x/admin/secret",
    ] {
        let before = up.count();
        let (status, body) = get(&fd, attack, &[], None).await;
        assert_eq!(status, 400, "{attack}: {body}");
        let v: Value = serde_json::from_str(&body).expect("JSON envelope");
        assert_eq!(v["error"]["status"], 400, "{attack}: {body}");
        assert_eq!(up.count(), before, "{attack} reached the upstream");
    }

    // `/admin;x/secret` is /admin/secret to the upstream: /admin's group rule applies.
    for attack in [
        "/admin;x/secret",
        "/admin;/secret",
        "/admin;jsessionid=1",
        "/admin;",
    ] {
        let before = up.count();
        let (status, body) = get(&fd, attack, &with_ann, None).await;
        assert_eq!(status, 403, "{attack}: {body}");
        assert_eq!(up.count(), before, "{attack} reached the upstream");
    }
    // The same parameters on a path the caller may open still pass, as sent.
    let (status, _) = get(&fd, "/wiki;v=2/page", &with_ann, None).await;
    assert_eq!(status, 200);
    assert_eq!(up.last().uri, "/wiki;v=2/page");
    let (status, _) = get(&fd, "/public;x/a", &[], None).await;
    assert_eq!(status, 200);

    // A contact link for /events/42 opens /events/42 (parameters or not), never /events/43.
    let c = fd.cli_json(&[
        "contacts",
        "link",
        "--json",
        "--email",
        "guest@example.org",
        "--path",
        "/events/42",
    ]);
    let hash = c["hash"].as_str().expect("hash");
    let with_hash = [("X-Contact-Hash", hash)];
    let (status, _) = get(&fd, "/events/42;x", &with_hash, None).await;
    assert_eq!(status, 200);
    let before = up.count();
    let (status, body) = get(&fd, "/events/42/..;/43/rsvp", &with_hash, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(up.count(), before, "..; reached the upstream");
    // Plain `..` after a parameter, sent as is (an HTTP client library would resolve it).
    for attack in ["/events/42;/../43/rsvp", "/public/x;/../../admin/secret"] {
        let before = up.count();
        let answer = raw(
            fd.port,
            &format!("GET {attack} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Contact-Hash: {hash}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status_of(&answer), 400, "{attack}: {answer}");
        assert_eq!(up.count(), before, "{attack} reached the upstream");
    }
    let (status, body) = get(&fd, "/events/43;x=/42", &with_hash, None).await;
    assert_ne!(
        status, 200,
        "a parameter cannot smuggle the linked path: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forward_auth_sees_path_parameters_and_hosts_like_the_proxy() {
    let (_up, fd) = start(|c| c.set("trusted_proxies", ["127.0.0.1"])).await;
    let ann = token(&fd, ANN, false);
    let ro = token(&fd, ANN, true);
    let auth = |headers: Vec<(&'static str, String)>| {
        let mut b = plain_client().get(fd.url("/_frontdoor/auth"));
        for (k, v) in headers {
            b = b.header(k, v);
        }
        async move { b.send().await.expect("auth").status().as_u16() }
    };
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", fd.port);
    assert_eq!(
        auth(vec![("X-Original-URL", url("/public/..;/admin/secret"))]).await,
        400
    );
    assert_eq!(
        auth(vec![
            ("X-Original-URL", url("/admin;x/secret")),
            ("Api-Token", ann.clone())
        ])
        .await,
        403
    );
    // Ann's default-tenant token is not good on acme's host, in any spelling of it.
    for host in ["acme.localhost", "acme.localhost.", "ACME.localhost."] {
        assert_ne!(
            auth(vec![
                ("X-Forwarded-Host", host.to_string()),
                ("X-Forwarded-Uri", "/wiki".to_string()),
                ("Api-Token", ann.clone())
            ])
            .await,
            200,
            "{host}"
        );
    }
    for bad in ["a b", "a/x", "a, b", "acme.localhost.."] {
        assert_eq!(
            auth(vec![
                ("X-Forwarded-Host", bad.to_string()),
                ("X-Forwarded-Uri", "/wiki".to_string()),
                ("Api-Token", ann.clone())
            ])
            .await,
            400,
            "{bad}"
        );
    }
    // Method overrides in any spelling, and upgrades, are writes for a read-only token.
    for name in [
        "X_HTTP_Method_Override",
        "X.HTTP.Method.Override",
        "X-Method-Override",
    ] {
        assert_eq!(
            auth(vec![
                ("X-Original-URL", url("/wiki")),
                ("Api-Token", ro.clone()),
                (name, "DELETE".to_string())
            ])
            .await,
            403,
            "{name}"
        );
    }
    assert_eq!(
        auth(vec![
            ("X-Original-URL", url("/wiki")),
            ("Api-Token", ro.clone()),
            ("Upgrade", "websocket".to_string())
        ])
        .await,
        403
    );
    assert_eq!(
        auth(vec![("X-Original-URL", url("/wiki")), ("Api-Token", ro)]).await,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Host

#[tokio::test(flavor = "multi_thread")]
async fn invalid_hosts_get_400_and_every_spelling_of_a_tenant_host_is_that_tenant() {
    let (up, fd) = start(|c| c).await;
    let p = fd.port;
    for (what, head) in [
        ("no Host", String::new()),
        ("a list", "Host: a, b\r\n".to_string()),
        ("a path", "Host: a/x\r\n".to_string()),
        ("a space", "Host: a b\r\n".to_string()),
        ("userinfo", "Host: evil@127.0.0.1\r\n".to_string()),
        (
            "two Hosts",
            format!("Host: 127.0.0.1:{p}\r\nHost: acme.localhost\r\n"),
        ),
        ("empty label", "Host: acme.localhost..\r\n".to_string()),
        ("a bad port", "Host: 127.0.0.1:x\r\n".to_string()),
        ("empty", "Host: \r\n".to_string()),
    ] {
        let before = up.count();
        let answer = raw(
            p,
            &format!("GET /public/x HTTP/1.1\r\n{head}Connection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status_of(&answer), 400, "{what}: {answer}");
        // Pingora refuses userinfo and a second Host itself, before frontdoor sees them.
        if !["userinfo", "two Hosts"].contains(&what) {
            assert!(
                answer.contains("\"error\""),
                "{what}: a JSON envelope: {answer}"
            );
        }
        assert_eq!(up.count(), before, "{what} reached the upstream");
    }
    // An absolute-form target names the host too: it must agree with Host.
    let before = up.count();
    let answer = raw(
        p,
        &format!("GET http://acme.localhost/public/x HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert_eq!(up.count(), before);
    let answer = raw(
        p,
        &format!("GET http://127.0.0.1:{p}/public/x HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");

    // Every spelling of acme's host is acme: the default tenant's token is refused there,
    // acme's own token works, and login-check issues acme tokens.
    let ann = token(&fd, ANN, false);
    let bob = token(&fd, BOB, false);
    for host in [
        "acme.localhost.".to_string(),
        format!("acme.localhost.:{p}"),
        format!("ACME.Localhost.:{p}"),
    ] {
        let before = up.count();
        let (status, body) = get(&fd, "/wiki", &[("Api-Token", &ann)], Some(&host)).await;
        assert_ne!(status, 200, "{host}: {body}");
        assert_eq!(
            up.count(),
            before,
            "{host}: Ann's token reached acme's upstream"
        );
        let (status, body) = get(&fd, "/wiki", &[("Api-Token", &bob)], Some(&host)).await;
        assert_eq!(status, 200, "{host}: {body}");
        assert_eq!(
            up.last().header("x-auth-request-tenant").as_deref(),
            Some("acme"),
            "{host}"
        );
        let r = plain_client()
            .post(fd.url("/api/v1/login-check"))
            .header("Host", &host)
            .json(&serde_json::json!({"email": BOB, "password": PW}))
            .send()
            .await
            .expect("login-check");
        assert_eq!(r.status().as_u16(), 200, "{host}");
        let r = plain_client()
            .post(fd.url("/api/v1/login-check"))
            .header("Host", &host)
            .json(&serde_json::json!({"email": ANN, "password": PW}))
            .send()
            .await
            .expect("login-check");
        assert_ne!(
            r.status().as_u16(),
            200,
            "{host}: a default-tenant login on acme"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Method overrides and upgrades with read-only credentials

#[tokio::test(flavor = "multi_thread")]
async fn read_only_credentials_cannot_override_the_method_or_upgrade() {
    let (up, fd) = start(|c| c).await;
    let ro = token(&fd, ANN, true);
    let rw = token(&fd, ANN, false);
    for name in [
        "X-HTTP-Method-Override",
        "X_HTTP_Method_Override",
        "X.HTTP.Method.Override",
        "X-Http_Method-Override",
        "x-http-method",
        "X-Method-Override",
        "X_Method_Override",
    ] {
        let before = up.count();
        let (status, body) = get(&fd, "/wiki", &[("Api-Token", &ro), (name, "DELETE")], None).await;
        assert_eq!(status, 403, "{name}: {body}");
        assert_eq!(up.count(), before, "{name} reached the upstream");
    }
    let before = up.count();
    let (status, body) = get(
        &fd,
        "/wiki",
        &[
            ("Api-Token", &ro),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    )
    .await;
    assert_eq!(status, 403, "an upgrade is a write: {body}");
    assert_eq!(up.count(), before);
    // Plain reads still work; a read-write token may override and upgrade.
    let (status, _) = get(&fd, "/wiki", &[("Api-Token", &ro)], None).await;
    assert_eq!(status, 200);
    let (status, _) = get(
        &fd,
        "/wiki",
        &[("Api-Token", &rw), ("X_HTTP_Method_Override", "DELETE")],
        None,
    )
    .await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------------------------------------
// 4. Set-Cookie for frontdoor's own cookies

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_cannot_set_frontdoors_cookies() {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(|| async {
        let mut h = axum::http::HeaderMap::new();
        for c in [
            "fd_sess=stolen; Path=/",
            "FD_SESS=stolen; Path=/",
            "frontdoor_csrf=x; Path=/",
            "frontdoor_login=x; Path=/",
            "frontdoor_flash=x; Path=/",
            "frontdoor_idp=x; Path=/",
            " fd_sess =x",
            "=fd_sess=stolen",
            "fd_sess",
            "app=1; Path=/",
        ] {
            h.append(
                axum::http::header::SET_COOKIE,
                axum::http::HeaderValue::from_static(c),
            );
        }
        (h, "ok").into_response()
    });
    let _task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let fd = Frontdoor::launch(
        Config::new()
            .route(Route::new("/", port).public())
            .set("session.cookie_name", "fd_sess"),
    )
    .await;
    let r = plain_client().get(fd.url("/x")).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    assert_eq!(
        cookies,
        ["app=1; Path=/"],
        "only the app's own cookie passes"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Forwarding headers from untrusted clients

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_and_rewrite_headers_from_untrusted_clients_never_reach_the_upstream() {
    let (up, fd) = start(|c| c).await;
    let spoofed = [
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Original-URI",
        "Forwarded",
        "X-Forwarded-Prefix",
        "X-Forwarded-Port",
        "X-Forwarded-Host",
        "X-Forwarded-Server",
        "X-Forwarded-Scheme",
        "X-Forwarded-Ssl",
        "X-Forwarded-Uri",
        "X-Original-Host",
        "X-Original-For",
        "X-Original-Proto",
        "X_Forwarded_Prefix",
        "X.Forwarded.Port",
        "X_Forwarded_For",
        "X.Forwarded.Proto",
        "X_Real_IP",
        "X-Client-IP",
        "True-Client-IP",
        "Front-End-Https",
    ];
    // frontdoor's own cookies, all of them, stay with frontdoor too.
    let mut b = plain_client().get(fd.url("/public/x")).header(
        "Cookie",
        "frontdoor_session=s; frontdoor_csrf=c; frontdoor_login=l; frontdoor_flash=f; frontdoor_idp=i; app=1",
    );
    for n in spoofed {
        b = b.header(n, "/admin;for=6.6.6.6");
    }
    let r = b.send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let got = up.last();
    let normal = |n: &str| n.to_ascii_lowercase().replace(['_', '.'], "-");
    for (name, value) in got.headers.iter() {
        let v = String::from_utf8_lossy(value.as_bytes());
        assert!(
            !v.contains("6.6.6.6") && !v.contains("/admin"),
            "{name}: {v} reached the upstream"
        );
        let n = normal(name.as_str());
        assert!(
            !spoofed.iter().any(|s| normal(s) == n)
                || ["x-forwarded-for", "x-forwarded-proto", "x-real-ip"].contains(&name.as_str()),
            "{name} reached the upstream"
        );
    }
    assert_eq!(got.header("cookie").as_deref(), Some("app=1"));
    assert_eq!(got.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(got.header("x-forwarded-proto").as_deref(), Some("http"));
}

// ---------------------------------------------------------------------------------------------
// 6. Slow headers and trickled bodies

/// Whether the server closes the connection within `bound`, reading what it sends.
async fn closed_within(s: &mut tokio::net::TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_and_trickled_bodies_are_cut() {
    let (_up, fd) = start(|c| {
        c.set("client_timeouts.header", "1s")
            .set("client_timeouts.body", "1s")
            .set("client_timeouts.body_min_rate", 100)
    })
    .await;
    // A header that stops half-way.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", fd.port))
        .await
        .expect("connect");
    s.write_all(b"GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
        .await
        .expect("write");
    let started = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(4)).await,
        "a stalled header keeps the connection open"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A header trickled a byte every 200 ms: each read is quick, the whole is not.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", fd.port))
        .await
        .expect("connect");
    let started = Instant::now();
    let head = b"GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for b in head.iter() {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            // Closed (or answered, which would be wrong this early).
            assert!(matches!(r, Ok(0) | Err(_)), "answered a trickled header");
            cut = true;
            break;
        }
    }
    assert!(cut, "a trickled header was read to the end");
    assert!(started.elapsed() < Duration::from_secs(4));

    // Bodies trickled at 5 bytes/s, to a proxied route and to frontdoor's own endpoint.
    for target in ["/public/upload", "/api/v1/login-check"] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", fd.port))
            .await
            .expect("connect");
        s.write_all(
            format!("POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
        let started = Instant::now();
        let mut cut = false;
        let mut answer = Vec::new();
        for _ in 0..200 {
            if s.write_all(b" ").await.is_err() {
                cut = true;
                break;
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    cut = true;
                    break;
                }
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        assert!(
            cut,
            "{target}: a body at 5 bytes/s was read for {:?}: {}",
            started.elapsed(),
            String::from_utf8_lossy(&answer)
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{target}");
    }
    // A body at full speed passes.
    let r = plain_client()
        .post(fd.url("/public/upload"))
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
}
