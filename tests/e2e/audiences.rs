//! A token works only where it was issued for: an app's token (granted by a user to a
//! registered app) is never a key to the user's account at frontdoor's management API or on a
//! route that names no audience; it passes only routes whose `audience` an administrator
//! granted the app, and there it reveals only what its scopes allow.

use serde_json::{Value, json};

use crate::harness::*;

const PW: &str = "a long enough password";
const CALLBACK: &str = "https://notes.example/cb";
const TRACKER: &str = "https://tracker.example";

async fn setup() -> (Upstream, Frontdoor) {
    setup_with(
        |up| {
            Config::single(up)
                .route(Route::new("/tracker", up).audience(TRACKER))
                .route(Route::new("/open", up).public())
        },
        &[
            ("ann@example.com", "Ann", "admins,wiki", "ROLE_USER", PW),
            ("root@example.com", "Root", "", "ROLE_ADMIN", PW),
        ],
    )
    .await
}

/// Ann signs in, approves the app, and the app exchanges the code (asking for `resource`
/// when given); the token answer.
async fn app_token(
    fd: &Frontdoor,
    client_id: &str,
    secret: &str,
    scope: &str,
    resource: Option<&str>,
) -> Value {
    let browser = browser();
    let landed = browser_login(&browser, &fd.url("/"), "ann@example.com", PW).await;
    assert_eq!(landed.status(), 200);
    let verifier = "v".repeat(43);
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let url = format!(
        "{}?client_id={client_id}&redirect_uri={}&response_type=code&scope={}&state=s&code_challenge={challenge}&code_challenge_method=S256",
        fd.url("/oauth/authorize"),
        urlencode(CALLBACK),
        urlencode(scope)
    );
    let mut back = navigate(&browser, &url).await;
    if back.status() == 200 {
        // The consent page (asked once per scope set).
        let html = back.text().await.expect("html");
        let mut fields = form_fields(&html, "consent-form");
        fields.push(("decision".into(), "approve".into()));
        back = browser
            .post(fd.url("/oauth/authorize"))
            .form(&fields)
            .send()
            .await
            .expect("consent");
    }
    let loc = location(&back);
    assert!(loc.starts_with(CALLBACK), "{loc}");
    let code = url::Url::parse(&loc)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let resp = plain_client()
        .post(fd.url("/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&form)
        .send()
        .await
        .expect("token");
    resp.json().await.expect("json")
}

fn payload(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("b64"),
    )
    .expect("json")
}

async fn with_bearer(method: reqwest::Method, url: &str, token: &str, body: Option<Value>) -> u16 {
    let mut req = plain_client()
        .request(method, url)
        .bearer_auth(token)
        .header("Accept", "application/json");
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request").status().as_u16()
}

async fn login_check(fd: &Frontdoor, email: &str) -> String {
    login_check_token(fd, email, PW).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_token_is_not_a_key_to_the_users_account() {
    let (upstream, fd) = setup().await;
    let (id, secret) = fd.create_app(&["--name", "Notes", "--redirect-uri", CALLBACK]);
    let secret = secret.expect("secret");
    let answer = app_token(&fd, &id, &secret, "openid", None).await;
    let token = answer["access_token"].as_str().expect("access_token");
    assert_ne!(
        payload(token)["aud"],
        json!(fd.issuer()),
        "an app's token is not for frontdoor"
    );
    // The management API takes no third-party grant.
    let minted = with_bearer(
        reqwest::Method::POST,
        &fd.url("/api/v1/tokens"),
        token,
        Some(json!({"name": "forever"})),
    )
    .await;
    assert_eq!(minted, 401, "no Api-Token minted with an app's token");
    let app = with_bearer(
        reqwest::Method::POST,
        &fd.url("/api/v1/apps"),
        token,
        Some(json!({"name": "Evil", "redirect_uris": ["https://evil.example/cb"]})),
    )
    .await;
    assert_eq!(app, 401, "no app registered with an app's token");
    let listed = with_bearer(reqwest::Method::GET, &fd.url("/api/v1/tokens"), token, None).await;
    assert_eq!(listed, 401);
    // Nor is it a key on a route that names no audience.
    let before = upstream.count();
    let proxied = with_bearer(reqwest::Method::GET, &fd.url("/wiki/Home"), token, None).await;
    assert_eq!(
        proxied, 401,
        "an app's token is refused where no audience is named"
    );
    assert_eq!(upstream.count(), before, "nothing reached the upstream");
    // Userinfo still answers the app within its scopes.
    let info: Value = plain_client()
        .get(fd.url("/oauth/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert!(info["sub"].is_string(), "{info}");
    assert!(info.get("email").is_none() && info.get("groups").is_none());

    // frontdoor's own first-party token still works at the API and on the route, and never
    // leaves for the upstream.
    let own = login_check(&fd, "ann@example.com").await;
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/api/v1/tokens"), &own, None).await,
        200
    );
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/wiki/Home"), &own, None).await,
        200
    );
    let got = upstream.last();
    assert_eq!(
        got.header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        got.header("authorization"),
        None,
        "frontdoor's own token is not passed upstream"
    );
    // Nor on a public route, where it was not the credential.
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/open/page"), &own, None).await,
        200
    );
    let got = upstream.last();
    assert_eq!(got.uri, "/open/page");
    assert_eq!(got.header("authorization"), None, "not on a public route");
    // An app's token is the app's business there: passed on.
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/open/page"), token, None).await,
        200
    );
    assert_eq!(
        upstream.last().header("authorization"),
        Some(format!("Bearer {token}"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_token_passes_only_the_route_of_its_granted_audience_and_shows_only_its_scopes() {
    let (upstream, fd) = setup().await;
    // The operator (an administrator's decision) grants the app the tracker's audience.
    let (id, secret) = fd.create_app(&[
        "--name",
        "Notes",
        "--redirect-uri",
        CALLBACK,
        "--audience",
        TRACKER,
    ]);
    let secret = secret.expect("secret");
    let answer = app_token(&fd, &id, &secret, "openid", Some(TRACKER)).await;
    let token = answer["access_token"].as_str().expect("access_token");
    assert_eq!(payload(token)["aud"], json!(TRACKER));
    assert_eq!(
        with_bearer(
            reqwest::Method::GET,
            &fd.url("/tracker/issues"),
            token,
            None
        )
        .await,
        200
    );
    let got = upstream.last();
    assert_eq!(got.uri, "/tracker/issues");
    // Scope `openid` only: no email, name, groups or roles reach the upstream.
    let user = got.header("x-auth-request-user").expect("user header");
    assert!(!user.contains('@'), "the login is not the email: {user}");
    for h in [
        "x-auth-request-email",
        "x-auth-request-name",
        "x-auth-request-groups",
        "x-auth-request-roles",
    ] {
        assert!(
            got.header(h).is_none_or(|v| v.is_empty()),
            "{h} without its scope: {:?}",
            got.header(h)
        );
    }
    // The token is the tracker's: it is passed on for the tracker to verify.
    assert_eq!(got.header("authorization"), Some(format!("Bearer {token}")));
    // Elsewhere and at the API it is nothing.
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/wiki"), token, None).await,
        401
    );
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/api/v1/apps"), token, None).await,
        401
    );
    // A resource the app was not granted is refused at the token endpoint.
    let refused = app_token(&fd, &id, &secret, "openid", Some("https://other.example")).await;
    assert_eq!(refused["error"], "invalid_target", "{refused}");
    // With the scopes, the same route sees the email and groups.
    let full = app_token(&fd, &id, &secret, "openid email groups", Some(TRACKER)).await;
    let full = full["access_token"].as_str().expect("access_token");
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/tracker/x"), full, None).await,
        200
    );
    let got = upstream.last();
    assert_eq!(
        got.header("x-auth-request-email").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        got.header("x-auth-request-groups").as_deref(),
        Some("admins,wiki")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_administrators_grant_audiences_and_machine_tokens_pass_only_granted_routes() {
    let (upstream, fd) = setup().await;
    let ann = login_check(&fd, "ann@example.com").await;
    let root = login_check(&fd, "root@example.com").await;
    let register = |token: String, audiences: Value| {
        let fd_url = fd.url("/api/v1/apps");
        async move {
            let resp = plain_client()
                .post(fd_url)
                .bearer_auth(token)
                .json(&json!({"name": "Robot", "grant_types": ["client_credentials"], "audiences": audiences}))
                .send()
                .await
                .expect("register");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // A signed-in user (not an administrator) cannot grant their app the tracker's audience.
    let (status, body) = register(ann.clone(), json!([TRACKER])).await;
    assert_eq!(status, 403, "{body}");
    // Without an audience the app registers, and its machine token passes no route.
    let (status, robot) = register(ann.clone(), json!([])).await;
    assert_eq!(status, 201, "{robot}");
    let cc = |id: String, secret: String| {
        let url = fd.url("/oauth/token");
        async move {
            let v: Value = plain_client()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("json");
            v["access_token"]
                .as_str()
                .expect("access_token")
                .to_string()
        }
    };
    let id = robot["client_id"].as_str().expect("id").to_string();
    let machine = cc(
        id.clone(),
        robot["client_secret"].as_str().expect("secret").into(),
    )
    .await;
    let before = upstream.count();
    for path in ["/wiki", "/tracker/issues"] {
        assert_eq!(
            with_bearer(reqwest::Method::GET, &fd.url(path), &machine, None).await,
            401,
            "{path}"
        );
    }
    assert_eq!(upstream.count(), before);
    // Nor can the owner grant the audience afterwards.
    let patched = plain_client()
        .patch(fd.url(&format!("/api/v1/apps/{id}")))
        .bearer_auth(&ann)
        .json(&json!({"audiences": [TRACKER]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 403);
    // An administrator can; then the machine token for that audience passes that route only.
    let (status, granted) = register(root, json!([TRACKER])).await;
    assert_eq!(status, 201, "{granted}");
    let machine = cc(
        granted["client_id"].as_str().expect("id").into(),
        granted["client_secret"].as_str().expect("secret").into(),
    )
    .await;
    assert_eq!(
        with_bearer(
            reqwest::Method::GET,
            &fd.url("/tracker/issues"),
            &machine,
            None
        )
        .await,
        200
    );
    assert_eq!(
        with_bearer(reqwest::Method::GET, &fd.url("/wiki"), &machine, None).await,
        401
    );
}
