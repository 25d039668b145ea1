//! Issue 12, the provider's and the operator's side: account enumeration through the one-time
//! code endpoints, data files readable by other local users, credentials in log lines, a
//! lockout anyone can cause, and the authorization endpoint's PKCE, request-object and
//! registration-size rules. Each test is the attack as it was reported, then its neighbours.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;
use crate::oauth::{
    CALLBACK, EMAIL, PASSWORD, assert_error_page, authorize_url, callback_params, pkce, start,
    third_party_app,
};

/// A route nothing listens behind: proxying to it fails, and the failure is logged.
fn dead_route() -> Config {
    Config::new().route(Route::new("/", 9).public())
}
const UNKNOWN: &str = "nobody-here@example.com";

/// A JSON call: (status, body).
async fn post_json(fd: &Frontdoor, path: &str, body: Value) -> (u16, Value) {
    let resp = plain_client()
        .post(fd.url(path))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The sign-in page's code form, as a browser posts it: (status, the page's error sentence).
async fn code_form(fd: &Frontdoor, email: &str, code: Option<&str>) -> (u16, String) {
    let client = browser();
    let csrf = login_csrf(&client, fd).await;
    let mut form = vec![
        ("email", email),
        ("csrf_token", csrf.as_str()),
        ("return_to", "/"),
    ];
    if let Some(c) = code {
        form.push(("code", c));
    }
    let resp = client
        .post(fd.url("/_frontdoor/login/code"))
        .form(&form)
        .send()
        .await
        .expect("post code");
    let status = resp.status().as_u16();
    let html = resp.text().await.expect("html");
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("#error").expect("selector");
    let error = doc
        .select(&sel)
        .next()
        .map(|e| e.text().collect::<String>())
        .unwrap_or_default();
    (status, error)
}

/// Mails in the outbox addressed to `to`.
fn mails_to(fd: &Frontdoor, to: &str) -> usize {
    std::fs::read_dir(fd.data_dir().join("outbox"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains(to)
        })
        .count()
}

// ---------------------------------------------------------------------------------------------
// 1. Account enumeration.

/// The answers of `path` for the known address and for the unknown one, with the same body.
async fn for_both(
    fd: &Frontdoor,
    path: &str,
    body: impl Fn(&str) -> Value,
) -> ((u16, Value), (u16, Value)) {
    (
        post_json(fd, path, body(EMAIL)).await,
        post_json(fd, path, body(UNKNOWN)).await,
    )
}

#[tokio::test]
async fn verify_login_otp_answers_a_known_and_an_unknown_address_alike() {
    let fd = start(|c| c).await;

    // No code pending for either address.
    let (known, unknown) = for_both(
        &fd,
        "/api/v1/verify-login-otp",
        |email| json!({"email": email, "code": "123456"}),
    )
    .await;
    assert_eq!(known.0, 401, "{known:?}");
    assert_eq!(known, unknown, "no code pending: the same answer");

    // The attacker asks for a code for both (the answers are alike) and then guesses: the known
    // address now has a pending code, the unknown one has none, and the answers must not say so.
    let asked_known = post_json(&fd, "/api/v1/request-login-otp", json!({"email": EMAIL})).await;
    let asked_unknown =
        post_json(&fd, "/api/v1/request-login-otp", json!({"email": UNKNOWN})).await;
    assert_eq!(asked_known.0, 202);
    assert_eq!(
        asked_known, asked_unknown,
        "request-login-otp: the same answer"
    );
    let real = outbox_code(&fd, EMAIL).await;
    let wrong = if real == "000000" { "000001" } else { "000000" };
    let (known, unknown) = for_both(
        &fd,
        "/api/v1/verify-login-otp",
        |email| json!({"email": email, "code": wrong}),
    )
    .await;
    assert_eq!(known.0, 401, "{known:?}");
    assert_eq!(known, unknown, "a wrong guess: the same answer");

    // Password sign-in: a wrong password and an unknown address are alike too.
    let (known, unknown) = for_both(
        &fd,
        "/api/v1/login-check",
        |email| json!({"email": email, "password": "wrong password here"}),
    )
    .await;
    assert_eq!(known.0, 401);
    assert_eq!(known, unknown);

    // The right code still signs in.
    let (status, body) = post_json(
        &fd,
        "/api/v1/verify-login-otp",
        json!({"email": EMAIL, "code": real}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string(), "{body}");
}

#[tokio::test]
async fn the_sign_in_pages_code_form_answers_a_known_and_an_unknown_address_alike() {
    let fd = start(|c| c).await;
    let known = code_form(&fd, EMAIL, Some("123456")).await;
    let unknown = code_form(&fd, UNKNOWN, Some("123456")).await;
    assert_eq!(known.0, 401, "{known:?}");
    assert!(!known.1.is_empty(), "the page says why: {known:?}");
    assert_eq!(known, unknown, "no code pending: the same page");

    // "Email me a code" for both, then a wrong guess for both.
    assert_eq!(code_form(&fd, EMAIL, None).await.0, 200);
    assert_eq!(code_form(&fd, UNKNOWN, None).await.0, 200);
    let real = outbox_code(&fd, EMAIL).await;
    let wrong = if real == "000000" { "000001" } else { "000000" };
    let known = code_form(&fd, EMAIL, Some(wrong)).await;
    let unknown = code_form(&fd, UNKNOWN, Some(wrong)).await;
    assert_eq!(known.0, 401, "{known:?}");
    assert_eq!(known, unknown, "a wrong guess: the same page");

    // The password form beside it: a wrong password and an unknown address read alike.
    let page_error = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let html = resp.text().await.expect("html");
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse("#error").expect("selector");
        let error: String = doc
            .select(&sel)
            .next()
            .map(|e| e.text().collect())
            .unwrap_or_default();
        (status, error)
    };
    let known = page_error(form_login(&fd, EMAIL, "not it at all").await).await;
    let unknown = page_error(form_login(&fd, UNKNOWN, "not it at all").await).await;
    assert_eq!(known.0, 401, "{known:?}");
    assert_eq!(known, unknown, "the password form: the same page");
}

// ---------------------------------------------------------------------------------------------
// 2. File permissions.

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` (recursively) is 0600 and every folder 0700.
#[cfg(unix)]
fn assert_private_tree(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{} is a data folder", dir.display());
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            assert_private_tree(&path);
        } else if kind.is_file() {
            assert_eq!(mode(&path), 0o600, "{} is a data file", path.display());
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn data_files_are_0600_and_data_folders_0700_even_when_they_were_looser() {
    use std::os::unix::fs::PermissionsExt;
    let mut fd = start(|c| c).await;
    // A one-time code in the outbox, written by the server.
    let (status, _) = post_json(&fd, "/api/v1/request-login-otp", json!({"email": EMAIL})).await;
    assert_eq!(status, 202);
    outbox_code(&fd, EMAIL).await;
    let data = fd.data_dir();
    for name in ["frontdoor.db", "frontdoor.db-wal", "keys", "outbox"] {
        assert!(data.join(name).exists(), "{name} was written");
    }
    assert_private_tree(&data);

    // An older version (or an operator's copy) left everything readable by all: the next start
    // tightens it.
    fd.kill();
    let loosen = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    for dir in [data.clone(), data.join("outbox"), data.join("keys")] {
        loosen(&dir, 0o755);
    }
    for dir in [data.clone(), data.join("keys")] {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            if entry.file_type().expect("type").is_file() {
                loosen(&entry.path(), 0o644);
            }
        }
    }
    fd.restart().await;
    let (status, _) = post_json(&fd, "/api/v1/request-login-otp", json!({"email": EMAIL})).await;
    assert_eq!(status, 202);
    outbox_code(&fd, EMAIL).await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("outbox")), 0o700);
    assert_eq!(mode(&data.join("keys")), 0o700);
    for name in ["frontdoor.db", "frontdoor.db-wal", "frontdoor.db-shm"] {
        if data.join(name).exists() {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
    }
    assert_private_tree(&data);
    assert!(
        fd.log().contains("tightened"),
        "the tightening is logged:\n{}",
        fd.log()
    );

    // The CLI writes through the same store and keeps to the same modes.
    fd.kill();
    let out = fd.cli(
        &["tokens", "create", "--user", EMAIL, "--name", "cron"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_private_tree(&data);
}

// ---------------------------------------------------------------------------------------------
// 3. Credentials in logs.

#[tokio::test]
async fn credentials_in_query_strings_never_reach_the_log() {
    let fd = Frontdoor::launch(dead_route()).await;
    let secrets = [
        "access_token=SECRET-AT-0001",
        "code=SECRET-CODE-0002",
        "client_secret=SECRET-CS-0003",
        "refresh_token=SECRET-RT-0004",
        "password=SECRET-PW-0005",
        "id_token_hint=SECRET-IDT-0006",
        "token=SECRET-TOK-0007",
        "state=SECRET-ST-0008",
        "apikey=SECRET-KEY-0009",
    ];
    let query = secrets.join("&");
    // The upstream is down: the proxy logs the failed request.
    let resp = plain_client()
        .get(fd.url(&format!("/wiki/page?{query}")))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 502);
    // A POST with a credential-bearing form body, to the same dead upstream.
    let resp = plain_client()
        .post(fd.url(&format!("/submit?{query}")))
        .header("Authorization", "Bearer SECRET-BEARER-0010")
        .form(&[("password", "SECRET-PW-0011")])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 502);
    // An own endpoint, with credentials in the query.
    let resp = plain_client()
        .get(fd.url(&format!("/oauth/userinfo?{query}")))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = fd.log();
    assert!(
        log.contains("/wiki/page"),
        "the failure is logged, with its path:\n{log}"
    );
    assert!(
        !log.contains("SECRET-"),
        "a credential reached the log:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Lockout.

/// Behind a trusted proxy, accounts banned after 5 failures, addresses after 50.
fn proxied(c: Config) -> Config {
    c.set("trusted_proxies", ["127.0.0.1"]).set(
        "regulation",
        json!({"window": "1m", "ban": "30s", "max_failures_per_account": 5, "max_failures_per_ip": 50}),
    )
}

#[tokio::test]
async fn wrong_passwords_from_elsewhere_do_not_lock_the_owner_out_at_their_usual_address() {
    let fd = start(proxied).await;
    // The attacker, from one address, until banned.
    for i in 0..5 {
        assert_eq!(
            login_from(&fd, EMAIL, "guess guess guess", "203.0.113.66").await,
            if i < 4 { 401 } else { 429 },
            "attempt {i}"
        );
    }
    assert_eq!(
        login_from(&fd, EMAIL, PASSWORD, "203.0.113.66").await,
        429,
        "the attacker's address stays banned for this account, right password or not"
    );
    // The attacker spreads over addresses: each is banned in turn, none locks the account.
    for host in 1..=3 {
        for _ in 0..5 {
            login_from(
                &fd,
                EMAIL,
                "guess guess guess",
                &format!("198.51.100.{host}"),
            )
            .await;
        }
        assert_eq!(
            login_from(&fd, EMAIL, "guess", &format!("198.51.100.{host}")).await,
            429
        );
    }
    // Ann, from her usual address, signs in: by password and by an emailed code.
    assert_eq!(login_from(&fd, EMAIL, PASSWORD, "192.0.2.7").await, 200);
    let form_page = form_login(&fd, EMAIL, PASSWORD).await;
    assert_eq!(
        form_page.status(),
        303,
        "the sign-in page from the proxy's own address"
    );

    // The per-address bound still holds across accounts.
    let fd = Frontdoor::launch(
        dead_route()
            .set("trusted_proxies", ["127.0.0.1"])
            .set("regulation", json!({"window": "1m", "ban": "30s", "max_failures_per_account": 5, "max_failures_per_ip": 4})),
    )
    .await;
    for i in 0..3 {
        assert_eq!(
            login_from(&fd, &format!("n{i}@example.com"), "x", "203.0.113.9").await,
            401
        );
    }
    assert_eq!(
        login_from(&fd, "n9@example.com", "x", "203.0.113.9").await,
        429
    );
}

#[tokio::test]
async fn code_mails_are_throttled_per_account_and_per_address_without_telling() {
    let fd = start(|c| {
        c.set("trusted_proxies", ["127.0.0.1"]).set(
            "regulation",
            json!({"window": "1m", "max_code_mails_per_account": 3, "max_code_mails_per_ip": 5}),
        )
    })
    .await;
    fd.add_user("bob@example.com", "Bob", "wiki", "ROLE_USER", PASSWORD);
    let ask = |email: &'static str, from: String| {
        let fd = &fd;
        async move {
            plain_client()
                .post(fd.url("/api/v1/request-login-otp"))
                .header("X-Forwarded-For", from)
                .json(&json!({"email": email}))
                .send()
                .await
                .expect("request")
        }
    };
    // Ten asks for Ann from ten addresses: every answer is the same 202, three mails go out.
    let mut bodies = Vec::new();
    for i in 0..10 {
        let resp = ask(EMAIL, format!("198.51.100.{i}")).await;
        assert_eq!(resp.status(), 202);
        bodies.push(resp.text().await.expect("body"));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        mails_to(&fd, EMAIL),
        3,
        "three mails per account and window"
    );

    // One address asking for many accounts: five asks a window are mailed, then none, for any
    // account; another address still gets its mail.
    for i in 0..5 {
        let email: &'static str = Box::leak(format!("x{i}@example.com").into_boxed_str());
        assert_eq!(ask(email, "203.0.113.5".into()).await.status(), 202);
    }
    assert_eq!(
        ask("bob@example.com", "203.0.113.5".into()).await.status(),
        202
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        mails_to(&fd, "bob@example.com"),
        0,
        "the address is throttled"
    );
    assert_eq!(
        ask("bob@example.com", "203.0.113.6".into()).await.status(),
        202
    );
    outbox_code(&fd, "bob@example.com").await;
    assert_eq!(mails_to(&fd, "bob@example.com"), 1);
}

// ---------------------------------------------------------------------------------------------
// 5. The authorization endpoint: PKCE, request objects, registration sizes.

fn without_pkce<'a>(client_id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st-9"),
    ];
    v.extend_from_slice(extra);
    v
}

#[tokio::test]
async fn a_confidential_app_must_send_pkce_unless_registered_without_it() {
    let fd = start(|c| c).await;
    let (id, _) = third_party_app(&fd);
    let resp = navigate(
        &plain_client(),
        &authorize_url(&fd, &without_pkce(&id, &[])),
    )
    .await;
    let p = callback_params(&resp, CALLBACK);
    assert_eq!(p["error"], "invalid_request", "{p:?}");
    assert!(p["error_description"].contains("PKCE"), "{p:?}");
    assert_eq!(p["state"], "st-9");
    assert!(!p.contains_key("code"));

    // With PKCE the flow goes on to sign-in.
    let (challenge, _) = pkce();
    let resp = navigate(
        &plain_client(),
        &authorize_url(
            &fd,
            &without_pkce(
                &id,
                &[
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            ),
        ),
    )
    .await;
    assert!(location(&resp).starts_with(&fd.url("/_frontdoor/login")));

    // An app registered with the opt-out (CLI) goes on to sign-in without PKCE.
    let (legacy, secret) = fd.create_app(&[
        "--name",
        "Legacy",
        "--redirect-uri",
        CALLBACK,
        "--pkce-optional",
    ]);
    assert!(secret.is_some());
    let resp = navigate(
        &plain_client(),
        &authorize_url(&fd, &without_pkce(&legacy, &[])),
    )
    .await;
    assert!(
        location(&resp).starts_with(&fd.url("/_frontdoor/login")),
        "{}",
        location(&resp)
    );
    let out = fd.cli(&["apps", "list", "--json"], None);
    let apps: Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = |cid: &str| {
        apps.as_array()
            .expect("array")
            .iter()
            .find(|a| a["client_id"] == cid)
            .cloned()
            .expect("listed")
    };
    assert_eq!(row(&legacy)["pkce_optional"], true);
    assert_eq!(row(&id)["pkce_optional"], false);

    // The same opt-out through the management API; a public client cannot opt out.
    let token = api_token(&fd).await;
    let (status, body) = manage(
        &fd,
        &token,
        json!({"name": "Api legacy", "redirect_uris": [CALLBACK], "pkce_optional": true}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pkce_optional"], true);
    let resp = navigate(
        &plain_client(),
        &authorize_url(
            &fd,
            &without_pkce(body["client_id"].as_str().expect("id"), &[]),
        ),
    )
    .await;
    assert!(location(&resp).starts_with(&fd.url("/_frontdoor/login")));
    let (status, body) = manage(
        &fd,
        &token,
        json!({"name": "Spa", "redirect_uris": [CALLBACK], "public": true, "pkce_optional": true}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("pkce_optional:"), "{body}");
}

#[tokio::test]
async fn request_objects_are_refused_with_request_not_supported() {
    let fd = start(|c| c).await;
    let (id, _) = third_party_app(&fd);
    let (challenge, _) = pkce();
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(String, String)> = without_pkce(&id, extra)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.push(("code_challenge".into(), challenge.clone()));
        v.push(("code_challenge_method".into(), "S256".into()));
        v
    };
    let url = |pairs: Vec<(String, String)>| {
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        authorize_url(&fd, &refs)
    };
    // An unsigned request object that asks for more than the query does.
    let object = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCBncm91cHMgcm9sZXMiLCJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZS9jYiJ9.";
    for (param, value, error) in [
        ("request", object, "request_not_supported"),
        (
            "request_uri",
            "https://evil.example/req.jwt",
            "request_uri_not_supported",
        ),
    ] {
        let resp = navigate(&plain_client(), &url(base(&[(param, value)]))).await;
        let p = callback_params(&resp, CALLBACK);
        assert_eq!(p["error"], error, "{param}: {p:?}");
        assert_eq!(p["state"], "st-9");
        assert!(!p.contains_key("code"));
    }
    // With a redirect URI that is not registered: a page, never a redirect.
    let mut pairs = base(&[("request", object)]);
    for (k, v) in pairs.iter_mut() {
        if k == "redirect_uri" {
            *v = "https://evil.example/cb".into();
        }
    }
    assert_error_page(
        navigate(&plain_client(), &url(pairs)).await,
        400,
        "redirect_uri",
    )
    .await;

    // Discovery says so.
    let d: Value = fd.discovery().await;
    assert_eq!(d["request_parameter_supported"], false, "{d}");
    assert_eq!(d["request_uri_parameter_supported"], false, "{d}");
}

/// A first-party token for the management API (Ann's login-check token).
async fn api_token(fd: &Frontdoor) -> String {
    let (status, body) = post_json(
        fd,
        "/api/v1/login-check",
        json!({"email": EMAIL, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_string()
}

/// `POST /api/v1/apps`.
async fn manage(fd: &Frontdoor, token: &str, body: Value) -> (u16, Value) {
    let resp = plain_client()
        .post(fd.url("/api/v1/apps"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn app_registrations_are_limited_in_size() {
    let fd = start(|c| c).await;
    let token = api_token(&fd).await;
    let many: Vec<String> = (0..20_000)
        .map(|i| format!("https://app.example/cb/{i}"))
        .collect();
    let long = format!("https://app.example/{}", "a".repeat(3000));
    let cases = [
        (
            json!({"name": "Many", "redirect_uris": many}),
            "redirect_uris",
        ),
        (
            json!({"name": "Long", "redirect_uris": [long]}),
            "redirect_uris",
        ),
        (
            json!({"name": "Logout", "redirect_uris": [CALLBACK], "post_logout_redirect_uris": many}),
            "post_logout_redirect_uris",
        ),
        (
            json!({"name": "n".repeat(201), "redirect_uris": [CALLBACK]}),
            "name",
        ),
        (
            json!({"name": "Desc", "redirect_uris": [CALLBACK], "description": "d".repeat(5000)}),
            "description",
        ),
        (
            json!({"name": "Scopes", "redirect_uris": [CALLBACK], "scopes": "openid ".repeat(500)}),
            "scopes",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = manage(&fd, &token, body).await;
        assert_eq!(status, 422, "{field}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(&format!("{field}:")), "{answer}");
    }
    // Twenty redirect URIs are fine.
    let twenty: Vec<String> = (0..20)
        .map(|i| format!("https://app.example/cb/{i}"))
        .collect();
    let (status, answer) = manage(
        &fd,
        &token,
        json!({"name": "Twenty", "redirect_uris": twenty}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    // An update is held to the same limits.
    let id = answer["client_id"].as_str().expect("client id");
    let resp = plain_client()
        .patch(fd.url(&format!("/api/v1/apps/{id}")))
        .bearer_auth(&token)
        .json(&json!({"redirect_uris": many}))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.expect("json");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("redirect_uris:"), "{body}");

    // The CLI applies the same rules.
    let mut args = vec!["apps", "create", "--name", "Many"];
    let uris: Vec<String> = (0..21)
        .map(|i| format!("https://app.example/{i}"))
        .collect();
    for u in &uris {
        args.extend_from_slice(&["--redirect-uri", u]);
    }
    let out = fd.cli(&args, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--redirect-uri: at most 20"), "{err}");
    let long = format!("https://app.example/{}", "a".repeat(3000));
    let out = fd.cli(
        &["apps", "create", "--name", "Long", "--redirect-uri", &long],
        None,
    );
    assert!(!out.status.success());
}

#[tokio::test]
async fn the_settings_page_applies_the_same_limits_and_the_pkce_opt_out() {
    const APPS: &str = "/_frontdoor/settings/developers/apps";
    let fd = start(|c| c).await;
    let client = browser();
    let csrf = login_csrf(&client, &fd).await;
    let signed_in = client
        .post(fd.url("/_frontdoor/login"))
        .form(&[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("return_to", "/"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(signed_in.status(), 303);
    let submit = |uris: String| {
        let client = &client;
        let fd = &fd;
        async move {
            let form = client
                .get(fd.url(&format!("{APPS}/new")))
                .send()
                .await
                .expect("form");
            assert_eq!(form.status(), 200);
            let csrf = form_field(&form.text().await.expect("html"), "csrf_token").expect("csrf");
            client
                .post(fd.url(APPS))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("name", "Legacy CRM"),
                    ("redirect_uris", uris.as_str()),
                    ("scopes", "openid"),
                    ("grant_types", "authorization_code"),
                    ("client_type", "confidential"),
                    ("pkce_optional", "1"),
                ])
                .send()
                .await
                .expect("create")
        }
    };
    let many: Vec<String> = (0..21)
        .map(|i| format!("https://crm.example/{i}"))
        .collect();
    let refused = submit(many.join("\n")).await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.expect("html");
    assert!(html.contains("redirect_uris: at most 20 entries"), "{html}");

    let created = submit(CALLBACK.to_string()).await;
    assert_eq!(created.status(), 303, "{:?}", created.text().await);
    let shown = navigate(&client, &location(&created)).await;
    assert!(
        shown.text().await.expect("html").contains("PKCE optional"),
        "the app page says so"
    );
    let client_id = location(&created)
        .split('/')
        .next_back()
        .and_then(|s| s.split('?').next())
        .expect("client id")
        .to_string();
    let resp = navigate(
        &plain_client(),
        &authorize_url(&fd, &without_pkce(&client_id, &[])),
    )
    .await;
    assert!(
        location(&resp).starts_with(&fd.url("/_frontdoor/login")),
        "opted out: no PKCE needed"
    );
}
