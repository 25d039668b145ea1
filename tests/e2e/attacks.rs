//! The attack suite: hostile input against the running binary, each attack refused with
//! nothing reaching the upstream that should not.
//!
//! Elsewhere in this binary, and part of the suite: identity-header spoofing in every
//! spelling (`gateway::spoofed_identity_headers_never_reach_the_upstream`), forged
//! `X-Forwarded-*` (`gateway::forwarded_headers_from_untrusted_clients_are_replaced`), path
//! tricks against route prefixes (`gateway::ambiguous_paths_are_refused_not_guessed`), JWT
//! alg confusion, `alg: none`, tampered, foreign-key and cross-tenant tokens
//! (`credentials::forged_tampered_foreign_and_id_tokens_are_refused`), and CSRF on the
//! settings forms (`pages::`). This file adds request smuggling, oversized input, open
//! redirects through every redirect parameter, and CSRF on the sign-in, code, consent and
//! sign-out forms.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

const PW: &str = TEAM_PW;

async fn setup() -> (Upstream, Frontdoor) {
    setup_with(Config::standard, &[ANN]).await
}

/// Sends raw bytes, reads until the server closes or 3 s pass; the whole answer as text.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status codes of every response in a raw answer (pipelined responses included).
fn statuses(answer: &str) -> Vec<u16> {
    answer
        .split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|r| r.get(..3)?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_smuggling_attempts_are_refused_and_never_reach_the_upstream() {
    let (upstream, fd) = setup().await;
    // Each hides a second request (to the group-restricted /admin, or to /public) in the body
    // of the first, hoping that frontdoor and the upstream disagree on where one ends.
    let attacks: Vec<(&str, String)> = vec![
        (
            "CL.TE",
            "POST /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        ),
        (
            "TE.CL",
            "POST /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1e\r\nGET /admin HTTP/1.1\r\nX: y\r\n\r\n0\r\n\r\n".into(),
        ),
        (
            "two Content-Lengths",
            "POST /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\nGET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        ),
        (
            "obfuscated Transfer-Encoding",
            "POST /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        ),
        (
            "Transfer-Encoding with a space before the colon",
            "POST /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        ),
    ];
    for (name, attack) in attacks {
        let answer = raw(fd.port, attack.as_bytes()).await;
        let codes = statuses(&answer);
        // Refused outright, or (both framings at once) read as chunked, answered once and
        // the connection closed, as RFC 9112 §6.1 asks: the hidden request is never read.
        let refused = codes == [400];
        let closed_after_one = codes.len() == 1
            && (name == "CL.TE" || name == "TE.CL")
            && answer.to_ascii_lowercase().contains("connection: close");
        assert!(
            refused || closed_after_one,
            "{name}: refused or closed after one answer, got {codes:?}\n{answer}"
        );
    }
    assert!(
        upstream
            .received()
            .iter()
            .all(|r| !r.uri.starts_with("/admin")),
        "no smuggled request reached the upstream: {:?}",
        upstream
            .received()
            .iter()
            .map(|r| r.uri.clone())
            .collect::<Vec<_>>()
    );
    // A pipelined second request is never served on the first one's authority: it is
    // authenticated on its own (401) or not read at all.
    let answer = raw(
        fd.port,
        b"GET /public/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    let codes = statuses(&answer);
    assert!(codes == [200, 401] || codes == [200], "{codes:?}\n{answer}");
    assert!(
        upstream
            .received()
            .iter()
            .all(|r| !r.uri.starts_with("/admin"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_and_bodies_are_refused_without_harm() {
    let (upstream, fd) = setup().await;
    // One enormous header, and very many headers: refused before any routing.
    let big = format!(
        "GET /public/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(128 * 1024)
    );
    let codes = statuses(&raw(fd.port, big.as_bytes()).await);
    assert!(
        codes.is_empty() || codes.iter().all(|c| (400..500).contains(c)),
        "a 128 KiB header is refused: {codes:?}"
    );
    let many: String = (0..2000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let codes = statuses(
        &raw(
            fd.port,
            format!("GET /public/a HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await,
    );
    assert!(
        codes.is_empty() || codes.iter().all(|c| (400..500).contains(c)),
        "2000 headers are refused: {codes:?}"
    );
    // A huge cookie (frontdoor decrypts cookies) is just not a session.
    let r = plain_client()
        .get(fd.url("/wiki"))
        .header("Cookie", format!("frontdoor_session={}", "A".repeat(6000)))
        .send()
        .await
        .expect("cookie");
    assert_eq!(r.status(), 401);
    // Bodies for frontdoor's own endpoints are bounded: 413 in the envelope.
    let body = vec![b'a'; 4 * 1024 * 1024];
    for path in ["/oauth/token", "/api/v1/login-check", "/_frontdoor/login"] {
        let r = plain_client()
            .post(fd.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .expect("big body");
        assert_eq!(r.status(), 413, "{path}");
        let v: serde_json::Value = r.json().await.expect("envelope");
        assert_eq!(v["error"]["code"], "payload_too_large");
    }
    // A huge Api-Token and Bearer token are just invalid.
    let r = plain_client()
        .get(fd.url("/wiki"))
        .header("Api-Token", "x".repeat(7000))
        .send()
        .await
        .expect("api token");
    assert_eq!(r.status(), 401);
    let r = plain_client()
        .get(fd.url("/wiki"))
        .bearer_auth(format!("{}.{}.{}", "e".repeat(3000), "e".repeat(3000), "e"))
        .send()
        .await
        .expect("bearer");
    assert_eq!(r.status(), 401);
    assert_eq!(
        upstream
            .received()
            .iter()
            .filter(|r| r.uri == "/wiki")
            .count(),
        0
    );
    // And frontdoor still serves.
    let r = plain_client()
        .get(fd.url("/public/ok"))
        .send()
        .await
        .expect("still up");
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_redirect_parameter_sends_anyone_to_an_unregistered_place() {
    let (_upstream, fd) = setup().await;
    let (client_id, _) = fd.create_app(&[
        "--name",
        "Wiki",
        "--redirect-uri",
        "https://wiki.example/cb",
        "--post-logout-redirect-uri",
        "https://wiki.example/bye",
    ]);
    // redirect_uri (and its alias redirect_url): anything but the exact registered URI is
    // an error page, never a redirect.
    for evil in [
        "https://evil.example/cb",
        "https://wiki.example/cb/",
        "https://wiki.example/cb?x=1",
        "https://wiki.example/cb#x",
        "https://wiki.example/cb/../evil",
        "https://wiki.example.evil.example/cb",
        "https://wiki.example@evil.example/cb",
        "https://WIKI.example/cb",
        "http://wiki.example/cb",
        "https://wiki.example:444/cb",
        "//evil.example/cb",
        "javascript:alert(1)",
    ] {
        for param in ["redirect_uri", "redirect_url"] {
            let url = fd.url(&format!(
                "/oauth/authorize?client_id={client_id}&response_type=code&scope=openid&state=s&{param}={}",
                urlencode(evil)
            ));
            let r = navigate(&plain_client(), &url).await;
            assert!(
                r.headers().get("location").is_none(),
                "{param}={evil} must not redirect (got {} to {:?})",
                r.status(),
                r.headers().get("location")
            );
            assert_eq!(r.status(), 400, "{param}={evil}");
        }
    }
    // post_logout_redirect_uri: only a registered one, for that client.
    for evil in ["https://evil.example/", "https://wiki.example/bye/x"] {
        let url = fd.url(&format!(
            "/oauth/logout?client_id={client_id}&post_logout_redirect_uri={}",
            urlencode(evil)
        ));
        let r = navigate(&plain_client(), &url).await;
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            !loc.contains("evil.example") && !loc.contains("/bye/x"),
            "{evil}: {loc}"
        );
    }
    // return_to of the settings and sign-in pages: local paths only.
    for evil in ["https://evil.example/", "//evil.example", "/\\evil.example"] {
        let r = navigate(
            &plain_client(),
            &fd.url(&format!("/_frontdoor/login?return_to={}", urlencode(evil))),
        )
        .await;
        let html = r.text().await.expect("html");
        assert_eq!(
            form_field(&html, "return_to").as_deref(),
            Some("/"),
            "{evil}"
        );
    }
    let r = navigate(
        &plain_client(),
        &fd.url("//evil.example/_frontdoor/settings"),
    )
    .await;
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(!loc.contains("evil.example"), "{loc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_their_csrf_token_change_nothing() {
    let (upstream, fd) = setup().await;
    // Sign-in: a cross-site login form (login CSRF) signs nobody in.
    let client = browser();
    let r = client
        .post(fd.url("/_frontdoor/login"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", PW),
            ("return_to", "/"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap_or("").starts_with("frontdoor_session"))
    );
    // "Email me a code": nothing is sent.
    let r = client
        .post(fd.url("/_frontdoor/login/code"))
        .form(&[("email", "ann@example.com"), ("return_to", "/")])
        .send()
        .await
        .expect("code");
    assert_eq!(r.status(), 403);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        std::fs::read_dir(fd.data_dir().join("outbox")).map_or(true, |d| d.count() == 0),
        "no code was mailed"
    );

    // Signed in: the consent form and the sign-out form need the token too.
    let landed = browser_login(&client, &fd.url("/wiki"), "ann@example.com", PW).await;
    assert_eq!(landed.status(), 200);
    let (client_id, _) = fd.create_app(&[
        "--name",
        "Calendar",
        "--redirect-uri",
        "https://cal.example/cb",
    ]);
    let r = client
        .post(fd.url("/oauth/authorize"))
        .form(&[
            ("client_id", client_id.as_str()),
            ("redirect_uri", "https://cal.example/cb"),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("state", "s"),
            // A valid PKCE challenge: what refuses the approval must be the CSRF check.
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCQaoeKTs9iGJ8ADHGJC2tmw",
            ),
            ("code_challenge_method", "S256"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .expect("consent");
    assert!(
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|l| !l.contains("code=")),
        "a forged approval issues no code"
    );
    assert_eq!(r.status(), 403);
    let r = client
        .post(fd.url("/_frontdoor/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 403);
    let before = upstream.count();
    let still = navigate(&client, &fd.url("/wiki")).await;
    assert_eq!(still.status(), 200, "a forged sign-out signs nobody out");
    assert_eq!(upstream.count(), before + 1);
}
