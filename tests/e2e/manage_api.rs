//! The JSON API behind Settings → Developers: `/api/v1/apps` and `/api/v1/tokens`, with its
//! permission rules, the owner's notification and CSRF protection for cookie callers.

use serde_json::{Value, json};

use crate::harness::*;

const PW: &str = TEAM_PW;

/// Ann, Bob and Root, and Eve of tenant acme.
async fn setup() -> (Upstream, Frontdoor) {
    let (upstream, fd) = setup_with(
        |up| Config::single(up).tenant("acme", ["acme.localhost"]),
        &[ANN, BOB, ROOT],
    )
    .await;
    fd.add_tenant_user("acme", "eve@acme.example", "Eve", &[], PW);
    (upstream, fd)
}

async fn jwt(fd: &Frontdoor, email: &str, host: Option<&str>) -> String {
    let mut req = plain_client()
        .post(fd.url("/api/v1/login-check"))
        .json(&json!({"email": email, "password": PW}));
    if let Some(h) = host {
        req = req.header("Host", format!("{h}:{}", fd.port));
    }
    let resp = req.send().await.expect("login-check");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    v["token"].as_str().expect("token").to_string()
}

async fn call(
    fd: &Frontdoor,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = plain_client()
        .request(method, fd.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_app_is_created_shown_without_secret_and_its_owner_is_notified() {
    let (_upstream, fd) = setup().await;
    let ann = jwt(&fd, "ann@example.com", None).await;
    let (status, created) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/apps",
        &ann,
        Some(json!({"name": "Nightly report", "description": "exports", "grant_types": ["client_credentials"], "scopes": "groups"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let secret = created["client_secret"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    // Listed and fetched without the secret.
    let (status, list) = call(&fd, reqwest::Method::GET, "/api/v1/apps", &ann, None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(!list.to_string().contains(&secret));
    assert!(list[0].get("client_secret").is_none());
    // The owner's notification: name and client id, never the secret.
    let mail = wait_for_mail(&fd, "Nightly report").await;
    assert!(mail.contains(&client_id), "{mail}");
    assert!(mail.contains("ann@example.com"));
    assert!(!mail.contains(&secret), "the secret must not be mailed");
    // The credentials work, until the app is deactivated.
    let grant = || async {
        plain_client()
            .post(fd.url("/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token")
            .status()
            .as_u16()
    };
    assert_eq!(grant().await, 200);
    let (status, _) = call(
        &fd,
        reqwest::Method::PATCH,
        &format!("/api/v1/apps/{client_id}"),
        &ann,
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(grant().await, 401);
}

async fn wait_for_mail(fd: &Frontdoor, needle: &str) -> String {
    for _ in 0..50 {
        for entry in std::fs::read_dir(fd.data_dir().join("outbox"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no mail mentioning {needle}");
}

#[tokio::test]
async fn others_cannot_see_or_change_an_app_admins_can_and_other_tenants_get_404() {
    let (_upstream, fd) = setup().await;
    let ann = jwt(&fd, "ann@example.com", None).await;
    let bob = jwt(&fd, "bob@example.com", None).await;
    let root = jwt(&fd, "root@example.com", None).await;
    let eve = jwt(&fd, "eve@acme.example", Some("acme.localhost")).await;
    let (_, created) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/apps",
        &ann,
        Some(json!({"name": "Ann's wiki", "redirect_uris": ["https://wiki.example/cb"]})),
    )
    .await;
    let id = created["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let path = format!("/api/v1/apps/{id}");
    // Bob: not in his list, and 403 on every operation.
    let (_, list) = call(&fd, reqwest::Method::GET, "/api/v1/apps", &bob, None).await;
    assert_eq!(list, json!([]));
    assert_eq!(
        call(&fd, reqwest::Method::GET, &path, &bob, None).await.0,
        403
    );
    assert_eq!(
        call(
            &fd,
            reqwest::Method::PATCH,
            &path,
            &bob,
            Some(json!({"name": "mine"}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &fd,
            reqwest::Method::POST,
            &format!("{path}/secret"),
            &bob,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(&fd, reqwest::Method::DELETE, &path, &bob, None)
            .await
            .0,
        403
    );
    // Another tenant's user (on that tenant's host): it does not exist.
    let resp = plain_client()
        .get(fd.url(&path))
        .header("Host", format!("acme.localhost:{}", fd.port))
        .bearer_auth(&eve)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
    // Bob cannot register a first-party app (it would skip consent for everyone).
    let (status, _) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/apps",
        &bob,
        Some(json!({"name": "x", "redirect_uris": ["https://x/cb"], "first_party": true})),
    )
    .await;
    assert_eq!(status, 403);
    // The admin sees all of the tenant's apps and may change them.
    let (_, list) = call(&fd, reqwest::Method::GET, "/api/v1/apps", &root, None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (status, updated) = call(
        &fd,
        reqwest::Method::PATCH,
        &path,
        &root,
        Some(json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["name"], "Renamed");
    // Nothing was changed by Bob.
    let (_, mine) = call(&fd, reqwest::Method::GET, &path, &ann, None).await;
    assert_eq!(mine["name"], "Renamed");
    assert_eq!(
        call(&fd, reqwest::Method::DELETE, &path, &ann, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&fd, reqwest::Method::GET, &path, &ann, None).await.0,
        404
    );
}

#[tokio::test]
async fn regenerating_the_secret_invalidates_the_old_one() {
    let (_upstream, fd) = setup().await;
    let ann = jwt(&fd, "ann@example.com", None).await;
    let (_, created) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/apps",
        &ann,
        Some(json!({"name": "cc", "grant_types": ["client_credentials"]})),
    )
    .await;
    let id = created["client_id"].as_str().expect("id").to_string();
    let old = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let (status, fresh) = call(
        &fd,
        reqwest::Method::POST,
        &format!("/api/v1/apps/{id}/secret"),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new = fresh["client_secret"]
        .as_str()
        .expect("new secret")
        .to_string();
    assert_ne!(old, new);
    let grant = |secret: String| {
        let fd = &fd;
        let id = id.clone();
        async move {
            plain_client()
                .post(fd.url("/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ])
                .send()
                .await
                .expect("token")
                .status()
                .as_u16()
        }
    };
    assert_eq!(grant(old).await, 401);
    assert_eq!(grant(new).await, 200);
}

#[tokio::test]
async fn a_cookie_session_needs_the_csrf_header_to_change_anything() {
    let (_upstream, fd) = setup().await;
    let (client, _jar) = browser_with_jar();
    browser_login(&client, &fd.url("/x"), "ann@example.com", PW).await;
    // A cross-site form could send this (cookie, JSON-looking body); it is refused.
    let forged = client
        .post(fd.url("/api/v1/apps"))
        .header("Content-Type", "text/plain")
        .body(r#"{"name": "forged", "grant_types": ["client_credentials"]}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    let listed = get_json(&client, &fd.url("/api/v1/apps")).await;
    assert_eq!(listed, json!([]), "nothing was created");
    let ok = client
        .post(fd.url("/api/v1/apps"))
        .header("X-Requested-With", "XMLHttpRequest")
        .json(&json!({"name": "real", "grant_types": ["client_credentials"]}))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn api_tokens_are_created_listed_and_revoked_through_the_api() {
    let (upstream, fd) = setup().await;
    let ann = jwt(&fd, "ann@example.com", None).await;
    let (status, created) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/tokens",
        &ann,
        Some(json!({"name": "analytics", "read_only": true})),
    )
    .await;
    assert_eq!(status, 201);
    let token = created["token"]
        .as_str()
        .expect("token shown once")
        .to_string();
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["access"], "read-only");
    // Read-only: GET passes, POST is refused before the upstream.
    let get = plain_client()
        .get(fd.url("/report"))
        .header("Api-Token", &token)
        .send()
        .await
        .expect("get");
    assert_eq!(get.status(), 200);
    let before = upstream.count();
    let post = plain_client()
        .post(fd.url("/report"))
        .header("Api-Token", &token)
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 403);
    assert_eq!(upstream.count(), before);
    // A read-only token cannot manage anything either.
    let (status, _) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/tokens",
        &ann,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 201);
    let with_ro = plain_client()
        .post(fd.url("/api/v1/tokens"))
        .header("Api-Token", &token)
        .json(&json!({"name": "y"}))
        .send()
        .await
        .expect("post");
    assert_eq!(with_ro.status(), 403);
    // Listed without values; Bob cannot revoke it; Ann can, and it is refused at once.
    let (_, list) = call(&fd, reqwest::Method::GET, "/api/v1/tokens", &ann, None).await;
    assert!(!list.to_string().contains(&token));
    let bob = jwt(&fd, "bob@example.com", None).await;
    assert_eq!(
        call(
            &fd,
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            &bob,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &fd,
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            &ann,
            None
        )
        .await
        .0,
        204
    );
    let after = plain_client()
        .get(fd.url("/report"))
        .header("Api-Token", &token)
        .send()
        .await
        .expect("get");
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn bad_input_gets_422_naming_the_field_and_no_credential_gets_401() {
    let (_upstream, fd) = setup().await;
    let ann = jwt(&fd, "ann@example.com", None).await;
    let (status, body) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/apps",
        &ann,
        Some(json!({"name": "x", "redirect_uris": ["not a url"]})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("redirect_uris:"),
        "{body}"
    );
    let (status, _) = call(
        &fd,
        reqwest::Method::POST,
        "/api/v1/apps",
        &ann,
        Some(json!({"name": "x", "colour": "blue"})),
    )
    .await;
    assert_eq!(status, 400);
    let resp = plain_client()
        .get(fd.url("/api/v1/apps"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401);
}
