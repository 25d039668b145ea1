//! Brute-force regulation against the real binary: failed passwords and codes counted per
//! account and per client address (bans shared through the store, also across two nodes on
//! PostgreSQL), 429 with `Retry-After` and the "locked" message on the sign-in pages, the ban
//! metric, and the per-address rate limits of the token and sign-in endpoints.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::Database;
use crate::harness::*;

const PW: &str = "a long enough password";
const WRONG: &str = "not the password at all";
/// Nothing is proxied in these tests; a route is there because the config wants one, and
/// nothing listens behind it.
fn dead_route() -> Config {
    Config::single(9)
}

/// `POST /api/v1/login-check`, from `forwarded_for` when given (as a proxy in front would say).
async fn login_check(
    fd: &Frontdoor,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut req = plain_client()
        .post(fd.url("/api/v1/login-check"))
        .json(&json!({"email": email, "password": password}));
    if let Some(xff) = forwarded_for {
        req = req.header("X-Forwarded-For", xff);
    }
    req.send().await.expect("login-check")
}

/// The `Retry-After` seconds of a response; panics when missing.
fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", resp.status()))
        .to_str()
        .expect("text")
        .parse()
        .expect("Retry-After in seconds")
}

/// Asserts a 429 `too_many_attempts` in the envelope with a `Retry-After` of at most `ban` s.
async fn assert_banned(resp: reqwest::Response, ban: u64) {
    assert_eq!(resp.status(), 429);
    let wait = retry_after(&resp);
    assert!((1..=ban).contains(&wait), "Retry-After {wait}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["status"], 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many failed sign-ins")),
        "{body}"
    );
}

/// The value of a metric series on the admin listener (0 when absent).
async fn metric(fd: &Frontdoor, series: &str) -> f64 {
    let text = fd.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Retries `attempt` until it answers `status`, for at most `bound`.
async fn until_status<F, Fut>(bound: Duration, mut attempt: F, status: u16) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let start = Instant::now();
    loop {
        let resp = attempt().await;
        if resp.status() == status {
            return resp;
        }
        assert!(
            start.elapsed() < bound,
            "still {} after {bound:?}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn twenty_wrong_passwords_lock_the_account_on_the_login_page_until_the_ban_ends() {
    let fd = Frontdoor::launch(dead_route().set(
        "regulation",
        json!({"window": "1m", "ban": "3s", "max_failures_per_account": 20, "max_failures_per_ip": 1000}),
    ))
    .await;
    fd.add_user("ann@example.com", "Ann", "wiki", "ROLE_USER", PW);
    fd.add_user("bob@example.com", "Bob", "wiki", "ROLE_USER", PW);
    let bans = "frontdoor_regulation_bans_total{scope=\"account\"}";
    assert_eq!(
        metric(&fd, bans).await,
        0.0,
        "the series shows from the start"
    );

    for i in 1..20 {
        let resp = form_login(&fd, "ann@example.com", WRONG).await;
        assert_eq!(resp.status(), 401, "attempt {i}");
        assert!(resp.headers().get("retry-after").is_none());
        let html = resp.text().await.expect("html");
        assert!(html.contains("Wrong email or password."), "{html}");
    }
    // The 20th wrong password starts the ban: the page says so.
    let resp = form_login(&fd, "ann@example.com", WRONG).await;
    assert_eq!(resp.status(), 429);
    let wait = retry_after(&resp);
    assert!((1..=3).contains(&wait), "Retry-After {wait}");
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("Too many failed sign-ins. Try again in 1 minute."),
        "{html}"
    );
    assert_eq!(metric(&fd, bans).await, 1.0);

    // While banned, the right password is refused too, with the same page.
    let resp = form_login(&fd, "ann@example.com", PW).await;
    assert_eq!(
        resp.status(),
        429,
        "the right password is refused while banned"
    );
    assert!(retry_after(&resp) >= 1);
    assert!(!sets_session(&resp), "no session while banned");
    let html = resp.text().await.expect("html");
    assert!(html.contains("Too many failed sign-ins."), "{html}");
    // Only that account: another one signs in from the same address.
    let resp = form_login(&fd, "bob@example.com", PW).await;
    assert_eq!(resp.status(), 303);

    // After the ban the right password is accepted, with a session.
    let resp = until_status(
        Duration::from_secs(6),
        || form_login(&fd, "ann@example.com", PW),
        303,
    )
    .await;
    assert!(sets_session(&resp), "a session cookie after the ban");
    // The success cleared the count: a wrong password is an ordinary 401 again.
    assert_eq!(
        form_login(&fd, "ann@example.com", WRONG).await.status(),
        401
    );
    assert_eq!(metric(&fd, bans).await, 1.0);
    assert!(
        fd.log().contains("sign-in ban"),
        "the ban is logged:\n{}",
        fd.log()
    );
    assert!(!fd.log().contains(WRONG), "no password in the log");
}

/// Whether a response sets a session cookie.
fn sets_session(resp: &reqwest::Response) -> bool {
    resp.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str()
            .is_ok_and(|c| c.starts_with("frontdoor_session="))
    })
}

#[tokio::test]
async fn login_check_bans_accounts_and_addresses_behind_a_trusted_proxy() {
    let fd = Frontdoor::launch(
        dead_route()
            .set("trusted_proxies", ["127.0.0.1"])
            .set("regulation", json!({"window": "1m", "ban": "3s", "max_failures_per_account": 4, "max_failures_per_ip": 5})),
    )
    .await;
    fd.add_user("ann@example.com", "Ann", "wiki", "ROLE_USER", PW);
    fd.add_user("bob@example.com", "Bob", "wiki", "ROLE_USER", PW);

    // Per account and address: wrong passwords for Ann from twenty addresses ban none of them,
    // and never Ann's account (anyone could otherwise lock her out from anywhere).
    for i in 1..=20 {
        let resp = login_check(
            &fd,
            "ann@example.com",
            WRONG,
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        assert_eq!(resp.status(), 401, "attempt {i}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    // Four from one address ban that address from Ann's account, right password or not ...
    for i in 1..4 {
        let resp = login_check(&fd, "ann@example.com", WRONG, Some("203.0.113.50")).await;
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    assert_banned(
        login_check(&fd, "ann@example.com", WRONG, Some("203.0.113.50")).await,
        3,
    )
    .await;
    assert_banned(
        login_check(&fd, "ann@example.com", PW, Some("203.0.113.50")).await,
        3,
    )
    .await;
    // ... while Ann, from her own address, signs in.
    let resp = login_check(&fd, "ann@example.com", PW, Some("198.51.100.1")).await;
    assert_eq!(resp.status(), 200);

    // Per address, across accounts: five failures from 192.0.2.10 on five unknown emails.
    for i in 1..5 {
        let resp = login_check(
            &fd,
            &format!("nobody{i}@example.com"),
            WRONG,
            Some("192.0.2.10"),
        )
        .await;
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    assert_banned(
        login_check(&fd, "nobody5@example.com", WRONG, Some("192.0.2.10")).await,
        3,
    )
    .await;
    // That address is refused even for an account with the right password ...
    assert_banned(
        login_check(&fd, "bob@example.com", PW, Some("192.0.2.10")).await,
        3,
    )
    .await;
    // ... another address behind the same proxy is counted apart and signs in.
    let resp = login_check(&fd, "bob@example.com", PW, Some("192.0.2.11")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert!(body["token"].is_string(), "{body}");
    // The proxy's own address (no X-Forwarded-For) is not the banned one either.
    assert_eq!(
        login_check(&fd, "bob@example.com", PW, None).await.status(),
        200
    );

    assert_eq!(
        metric(&fd, "frontdoor_regulation_bans_total{scope=\"account\"}").await,
        1.0
    );
    assert_eq!(
        metric(&fd, "frontdoor_regulation_bans_total{scope=\"ip\"}").await,
        1.0
    );

    // Both bans end by themselves.
    until_status(
        Duration::from_secs(6),
        || login_check(&fd, "ann@example.com", PW, Some("203.0.113.50")),
        200,
    )
    .await;
    until_status(
        Duration::from_secs(6),
        || login_check(&fd, "bob@example.com", PW, Some("192.0.2.10")),
        200,
    )
    .await;
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_does_not_spread_the_count() {
    // No trusted proxies: every request counts against the TCP peer, 127.0.0.1.
    let fd = Frontdoor::launch(dead_route().set(
        "regulation",
        json!({"window": "1m", "ban": "30s", "max_failures_per_account": 20, "max_failures_per_ip": 5}),
    ))
    .await;
    fd.add_user("bob@example.com", "Bob", "wiki", "ROLE_USER", PW);
    for i in 1..5 {
        let resp = login_check(
            &fd,
            &format!("nobody{i}@example.com"),
            WRONG,
            Some(&format!("198.51.100.{i}")),
        )
        .await;
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    assert_banned(
        login_check(&fd, "nobody5@example.com", WRONG, Some("198.51.100.5")).await,
        30,
    )
    .await;
    assert_banned(
        login_check(&fd, "bob@example.com", PW, Some("198.51.100.99")).await,
        30,
    )
    .await;
    // The sign-in page from that peer says so as well.
    let resp = form_login(&fd, "bob@example.com", PW).await;
    assert_eq!(resp.status(), 429);
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("Too many failed sign-ins. Try again in 1 minute."),
        "{html}"
    );
}

#[tokio::test]
async fn the_token_and_sign_in_endpoints_limit_each_address() {
    let fd = Frontdoor::launch(
        dead_route()
            .set(
                "regulation.token_rate",
                json!({"per_second": 1, "burst": 5}),
            )
            .set(
                "regulation.login_rate",
                json!({"per_second": 1, "burst": 3}),
            ),
    )
    .await;
    let grant = || {
        plain_client()
            .post(fd.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "nothing"),
            ])
            .send()
    };
    let mut statuses = Vec::new();
    let limited = loop {
        let resp = grant().await.expect("token request");
        if resp.status() == 429 {
            break resp;
        }
        statuses.push(resp.status().as_u16());
        assert!(statuses.len() < 50, "never limited: {statuses:?}");
    };
    assert!(
        statuses.len() >= 5 && statuses.iter().all(|s| *s == 401),
        "the burst passes (to an ordinary invalid_client): {statuses:?}"
    );
    assert!(retry_after(&limited) >= 1);
    let body: Value = limited.json().await.expect("json");
    assert_eq!(body["error"], "too_many_requests", "RFC 6749 shape: {body}");
    assert!(body["error_description"].is_string(), "{body}");

    // The sign-in API: the envelope.
    let mut statuses = Vec::new();
    let limited = loop {
        let resp = login_check(&fd, "nobody@example.com", WRONG, None).await;
        if resp.status() == 429 {
            break resp;
        }
        statuses.push(resp.status().as_u16());
        assert!(statuses.len() < 30, "never limited: {statuses:?}");
    };
    assert!(statuses.len() >= 3, "{statuses:?}");
    assert!(retry_after(&limited) >= 1);
    let body: Value = limited.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert!(metric(&fd, "frontdoor_rate_limited_total{endpoint=\"token\"}").await >= 1.0);
    assert!(metric(&fd, "frontdoor_rate_limited_total{endpoint=\"login\"}").await >= 1.0);
    // Other endpoints are not limited.
    for _ in 0..10 {
        let resp = plain_client()
            .get(fd.url("/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery");
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn failures_on_two_nodes_add_up_and_a_ban_holds_on_both() {
    let db = Database::create().await;
    let keys = tempfile::tempdir().expect("keys dir");
    let (a, b) = two_nodes(
        dead_route()
            .shared(&db.url, keys.path())
            .set("regulation", json!({"window": "1m", "ban": "30s", "max_failures_per_account": 3, "max_failures_per_ip": 1000})),
    )
    .await;
    a.add_user("ann@example.com", "Ann", "wiki", "ROLE_USER", PW);

    // Two wrong one-time codes on node A ...
    let code = emailed_code(&a, "ann@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        let resp = plain_client()
            .post(a.url("/api/v1/verify-login-otp"))
            .json(&json!({"email": "ann@example.com", "code": wrong}))
            .send()
            .await
            .expect("verify otp");
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_code");
    }
    // ... and a wrong password on node B make three: B starts the ban.
    assert_banned(login_check(&b, "ann@example.com", WRONG, None).await, 30).await;
    assert_eq!(
        metric(&b, "frontdoor_regulation_bans_total{scope=\"account\"}").await,
        1.0
    );

    // Node A honours it: the right password and the right code are refused.
    assert_banned(login_check(&a, "ann@example.com", PW, None).await, 30).await;
    let resp = plain_client()
        .post(a.url("/api/v1/verify-login-otp"))
        .json(&json!({"email": "ann@example.com", "code": code}))
        .send()
        .await
        .expect("verify otp");
    assert_banned(resp, 30).await;
    let resp = form_login(&a, "ann@example.com", PW).await;
    assert_eq!(resp.status(), 429);
    let html = resp.text().await.expect("html");
    assert!(html.contains("Too many failed sign-ins."), "{html}");
    // The code page answers the same way.
    let client = browser();
    let csrf = login_csrf(&client, &a).await;
    let resp = client
        .post(a.url("/_frontdoor/login/code"))
        .form(&[
            ("email", "ann@example.com"),
            ("code", code.as_str()),
            ("csrf_token", csrf.as_str()),
            ("return_to", "/"),
        ])
        .send()
        .await
        .expect("post code");
    assert_eq!(resp.status(), 429);
    assert!(retry_after(&resp) >= 1);
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("Too many failed sign-ins. Try again in 1 minute."),
        "{html}"
    );
}
