//! Settings → Developers, the login designs and the consent page, in a real headless
//! Chromium; and the permission and CSRF rules of the settings pages, attacked directly.

use std::time::{Duration, Instant};

use crate::chromium::Chromium;
use crate::harness::*;

const PW: &str = TEAM_PW;
const APPS: &str = "/_frontdoor/settings/developers/apps";
const TOKENS: &str = "/_frontdoor/settings/developers/tokens";

async fn setup() -> (Upstream, Frontdoor) {
    setup_with(
        |up| {
            Config::single(up)
                .set("organization", "Acme Corp")
                .tenant("acme", ["acme.localhost"])
        },
        &[ANN, BOB, ROOT],
    )
    .await
}

/// A client_credentials grant with these credentials: (status, body).
async fn client_credentials(fd: &Frontdoor, id: &str, secret: &str) -> (u16, serde_json::Value) {
    let r = plain_client()
        .post(fd.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// The outbox message that mentions `needle`, waiting for it (mail goes out in the background).
async fn mail_with(fd: &Frontdoor, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
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
        assert!(Instant::now() < deadline, "no mail mentioning {needle}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_an_app_is_created_its_secret_shown_once_and_deactivation_stops_its_grants() {
    let (upstream, fd) = setup().await;
    let b = Chromium::start().await;

    // Settings need a session: the browser is sent to the login page and comes back.
    b.goto(&fd.url("/_frontdoor/settings")).await;
    assert_eq!(b.path().await, "/_frontdoor/login");
    assert!(b.body_text().await.contains("Acme Corp"));
    assert!(b.has("#login-card").await, "the default login design");
    b.screenshot("login").await;
    b.fill("#email", "ann@example.com").await;
    b.fill("#password", "wrong password").await;
    b.click_and_wait("#submit").await;
    assert_eq!(b.text("#error").await, "Wrong email or password.");
    b.sign_in("ann@example.com", PW).await;
    assert_eq!(b.path().await, APPS);
    assert!(b.text("#no-apps").await.contains("No applications yet"));

    // Create a confidential app that may use client_credentials.
    b.click_and_wait("#create-app").await;
    b.fill("#name", "Build bot").await;
    b.fill(
        "#description",
        "Publishes nightly build results to the wiki",
    )
    .await;
    b.fill("#redirect_uris", "https://bot.example/callback")
        .await;
    b.click("#grant-client_credentials").await;
    b.screenshot("app-create").await;
    b.click_and_wait("#save").await;

    // The app's page shows the client id and the secret, once.
    assert!(b.path().await.starts_with(&format!("{APPS}/")));
    assert!(b.text("#notice").await.contains("Application created"));
    let client_id = b.text("#client-id").await;
    let secret = b.text("#client-secret").await;
    assert_eq!(b.text("#client-id-once").await, client_id);
    assert!(secret.len() >= 32, "a long random secret: {secret}");
    b.screenshot("app-secret-once").await;
    // The copy button copies it (or, without clipboard access, selects it for Ctrl+C).
    b.click("#copy-secret").await;
    // The clipboard API answers with a promise: the button records the outcome when it settles.
    let mut outcome = Vec::new();
    for _ in 0..50 {
        outcome = b
            .client
            .execute(
                "return [document.getElementById('copy-secret').getAttribute('data-copied'), String(window.getSelection())];",
                vec![],
            )
            .await
            .expect("script")
            .as_array()
            .cloned()
            .unwrap_or_default();
        if outcome
            .first()
            .and_then(|v| v.as_str())
            .is_some_and(|c| !c.is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let copied = outcome.first().and_then(|v| v.as_str()).unwrap_or("");
    let selected = outcome.get(1).and_then(|v| v.as_str()).unwrap_or("");
    assert!(
        copied == "yes" || (copied == "no" && selected == secret),
        "copy button: copied={copied:?} selected={selected:?}"
    );

    // Reloading finds the secret gone, for good.
    b.client.refresh().await.expect("reload");
    b.find("#client-id").await;
    assert!(
        !b.has("#client-secret").await,
        "the secret is shown only once"
    );
    assert!(!b.body_text().await.contains(&secret));
    assert!(b.text("#secret-state").await.contains("Hidden"));

    // The credentials work.
    let (status, body) = client_credentials(&fd, &client_id, &secret).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    // The grid lists it; deactivate it from its "more options" menu.
    b.click_and_wait("#nav-apps").await;
    let row = format!("#app-{client_id}");
    assert!(b.text(&row).await.contains("Build bot"));
    assert!(b.text(&row).await.contains("Active"));
    b.click(&format!("{row} summary")).await;
    b.screenshot("apps-menu").await;
    b.click_and_wait(&format!("{row} .menu-deactivate")).await;
    assert!(b.text("#notice").await.contains("deactivated"));
    assert_eq!(b.text("#app-status").await, "Inactive");

    let (status, body) = client_credentials(&fd, &client_id, &secret).await;
    assert_eq!(status, 401, "a deactivated app gets no token: {body}");
    assert_eq!(body["error"], "invalid_client");

    // Filters: by status and by name.
    b.goto(&fd.url(&format!("{APPS}?status=inactive"))).await;
    assert!(b.has(&row).await);
    b.goto(&fd.url(&format!("{APPS}?status=active"))).await;
    assert!(!b.has(&row).await);
    assert!(b.text("#no-apps").await.contains("No application matches"));
    b.goto(&fd.url(APPS)).await;
    b.fill("#filter-name", "nothing like it").await;
    b.click_and_wait("#apply-filters").await;
    assert!(!b.has(&row).await);
    b.fill("#filter-name", "build").await;
    b.click_and_wait("#apply-filters").await;
    assert!(b.has(&row).await);
    b.screenshot("apps").await;
    // On a phone the grid becomes one card per app, with nothing wider than the screen.
    b.client.set_window_size(390, 844).await.expect("resize");
    b.client.refresh().await.expect("reload");
    b.find(&row).await;
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .expect("script");
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 0),
        "page wider than a phone: {overflow}"
    );
    b.screenshot("apps-phone").await;
    b.client.set_window_size(1280, 900).await.expect("resize");

    // Activating again restores the grant; regenerating the secret retires the old one.
    b.goto(&fd.url(&format!("{APPS}/{client_id}"))).await;
    b.click("#more-options").await;
    b.click_and_wait("#menu-activate").await;
    assert_eq!(b.text("#app-status").await, "Active");
    b.click("#more-options").await;
    b.click_and_wait("#menu-regenerate").await;
    let new_secret = b.text("#client-secret").await;
    assert_ne!(new_secret, secret);
    assert_eq!(client_credentials(&fd, &client_id, &secret).await.0, 401);
    assert_eq!(
        client_credentials(&fd, &client_id, &new_secret).await.0,
        200
    );

    // The owner got a notification with the app's name and client id, and no secret.
    let mail = mail_with(&fd, &client_id).await;
    assert!(mail.contains("Build bot"));
    assert!(mail.contains("ann@example.com"));
    assert!(!mail.contains(&secret) && !mail.contains(&new_secret));

    // API Access: a read-only token, shown once; a POST with it is refused at the proxy.
    b.click_and_wait("#nav-tokens").await;
    b.fill("#token-name", "report script").await;
    b.click("#access-read-only").await;
    b.click_and_wait("#create-token").await;
    let token = b.text("#token-value").await;
    assert!(token.starts_with("fdt_"), "{token}");
    b.screenshot("tokens").await;
    b.client.refresh().await.expect("reload");
    b.find("#tokens").await;
    assert!(!b.has("#token-value").await, "the token is shown only once");
    let rows = b.text("#tokens").await;
    assert!(rows.contains("report script") && rows.contains("Read-only"));
    assert!(rows.contains("Never"), "not used yet: {rows}");

    let before = upstream.count();
    let post = plain_client()
        .post(fd.url("/wiki/page"))
        .header("Api-Token", &token)
        .body("edit")
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 403);
    assert_eq!(upstream.count(), before, "nothing reached the upstream");
    let get = plain_client()
        .get(fd.url("/wiki/page"))
        .header("Api-Token", &token)
        .send()
        .await
        .expect("get");
    assert_eq!(get.status(), 200);
    assert_eq!(
        upstream.last().header("x-auth-request-access").as_deref(),
        Some("read-only")
    );
    // The list shows when it was last used (recorded off the request path).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        b.client.refresh().await.expect("reload");
        let used = b.text("#tokens .last-used").await;
        if used.ends_with("UTC") {
            break;
        }
        assert!(Instant::now() < deadline, "last use not shown: {used}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Revoke it from the page: refused from then on.
    b.click_and_wait("#tokens .revoke").await;
    assert!(b.text("#notice").await.contains("revoked"));
    let get = plain_client()
        .get(fd.url("/wiki/page"))
        .header("Api-Token", &token)
        .send()
        .await
        .expect("get");
    assert_eq!(get.status(), 401);

    // Delete the app, after a confirmation page.
    b.goto(&fd.url(&format!("{APPS}/{client_id}"))).await;
    b.click("#more-options").await;
    b.click_and_wait("#menu-delete").await;
    assert!(b.text("h1").await.contains("Delete Build bot?"));
    b.click_and_wait("#confirm").await;
    assert!(b.text("#notice").await.contains("deleted"));
    assert!(!b.has(&row).await);
    assert_eq!(
        client_credentials(&fd, &client_id, &new_secret).await.0,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_the_form_parameter_picks_the_login_design_and_consent_asks_in_plain_words() {
    let (upstream, fd) = setup().await;
    let redirect = format!("http://127.0.0.1:{}/cb", upstream.port);
    let (client_id, _) = fd.create_app(&[
        "--name",
        "Team Calendar",
        "--description",
        "Shows your meetings next to the wiki",
        "--redirect-uri",
        &redirect,
        "--scopes",
        "openid email groups",
    ]);
    let authorize = |form: &str| {
        fd.url(&format!(
            "/oauth/authorize?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", &client_id)
                .append_pair("redirect_uri", &redirect)
                .append_pair("response_type", "code")
                .append_pair("scope", "openid email groups")
                .append_pair("state", "s-123")
                // PKCE is required of confidential apps too (RFC 9700).
                .append_pair(
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCQaoeKTs9iGJ8ADHGJC2tmw",
                )
                .append_pair("code_challenge_method", "S256")
                .append_pair("form", form)
                .finish()
        ))
    };
    let b = Chromium::start().await;

    // `form=split` (any case) picks the split design; the design survives a failed attempt.
    b.goto(&authorize("Split")).await;
    assert_eq!(b.path().await, "/_frontdoor/login");
    assert!(
        b.has("#login-split").await,
        "form=split shows the split design"
    );
    assert!(!b.has("#login-card").await);
    b.screenshot("login-split").await;
    b.fill("#email", "ann@example.com").await;
    b.fill("#password", "wrong").await;
    b.click_and_wait("#submit").await;
    assert!(
        b.has("#login-split").await,
        "still split after a wrong password"
    );
    assert_eq!(b.text("#error").await, "Wrong email or password.");
    b.sign_in("ann@example.com", PW).await;

    // The consent page: the app's name and description, each scope in plain words.
    assert_eq!(b.path().await, "/oauth/authorize");
    let page = b.body_text().await;
    assert!(
        page.contains("Team Calendar wants to access your account"),
        "{page}"
    );
    assert!(page.contains("Shows your meetings next to the wiki"));
    assert!(page.contains("See your email address"));
    assert!(page.contains("See the groups you belong to"));
    assert!(
        !page.contains("See your roles"),
        "only the scopes asked for"
    );
    b.screenshot("consent").await;
    b.click_and_wait("#approve").await;
    let back = b.url().await;
    assert_eq!(back.path(), "/cb");
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("s-123"));
    assert!(q.get("code").is_some_and(|c| !c.is_empty()));

    // An unknown design falls back to the default one.
    let other = Chromium::start().await;
    other.goto(&authorize("no-such-design")).await;
    assert!(other.has("#login-card").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_a_forged_cross_site_form_changes_nothing() {
    let (_upstream, fd) = setup().await;
    let b = Chromium::start().await;
    b.goto(&fd.url(&format!("{APPS}/new"))).await;
    b.sign_in("ann@example.com", PW).await;
    b.fill("#name", "Ann's app").await;
    b.fill("#redirect_uris", "https://a.example/cb").await;
    b.click_and_wait("#save").await;
    let client_id = b.text("#client-id").await;
    // An attacker's page on another port of the same host: same site, so the browser sends
    // its SameSite=Lax session cookie along. Only the CSRF token stands in the way.
    let attack = format!(
        "<!doctype html><form id=f method=post action='{}'><input name=csrf_token value=forged><button id=go>win a prize</button></form>",
        fd.url(&format!("{APPS}/{client_id}/delete"))
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let attack = attack.clone();
            async move { axum::response::Html(attack) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let evil = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    b.goto(&fd.url(APPS)).await;
    assert!(b.has(&format!("#app-{client_id}")).await);

    b.goto(&format!("http://127.0.0.1:{evil}/")).await;
    b.click_and_wait("#go").await;
    assert!(b.body_text().await.contains("The form expired"));
    b.goto(&fd.url(APPS)).await;
    assert!(
        b.has(&format!("#app-{client_id}")).await,
        "the app is still there"
    );
}

/// A signed-in page client: its cookies, and the CSRF token of the page it last loaded.
struct PageUser {
    client: reqwest::Client,
}

impl PageUser {
    async fn sign_in(fd: &Frontdoor, email: &str) -> PageUser {
        let client = browser();
        let landed = browser_login(&client, &fd.url(APPS), email, PW).await;
        assert_eq!(landed.status(), 200);
        PageUser { client }
    }

    async fn get(&self, fd: &Frontdoor, path: &str) -> (u16, String) {
        let r = navigate(&self.client, &fd.url(path)).await;
        let status = r.status().as_u16();
        (status, r.text().await.expect("html"))
    }

    /// A valid CSRF token of this user's browser (from their own grid page).
    async fn csrf(&self, fd: &Frontdoor) -> String {
        let (_, html) = self.get(fd, TOKENS).await;
        form_field(&html, "csrf_token").expect("csrf token")
    }

    async fn post(&self, fd: &Frontdoor, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .client
            .post(fd.url(path))
            .form(form)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_user_cannot_see_edit_or_delete_an_app_and_forms_need_their_csrf_token() {
    let (_upstream, fd) = setup().await;
    let ann = PageUser::sign_in(&fd, "ann@example.com").await;
    let csrf = ann.csrf(&fd).await;
    let created = ann
        .client
        .post(fd.url(APPS))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Ann wiki bot"),
            ("redirect_uris", "https://ann.example/cb"),
            ("scopes", "openid"),
            ("grant_types", "authorization_code"),
            ("client_type", "confidential"),
        ])
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 303);
    let app_path = location(&created)
        .split_once("/_frontdoor")
        .map(|(_, p)| format!("/_frontdoor{}", p.split('?').next().unwrap_or("")))
        .expect("app path");
    let client_id = app_path.rsplit('/').next().expect("id").to_string();
    assert_eq!(ann.get(&fd, &app_path).await.0, 200);

    // Bob: not in his grid, and every page and action on it is 403, changing nothing.
    let bob = PageUser::sign_in(&fd, "bob@example.com").await;
    let (_, grid) = bob.get(&fd, APPS).await;
    assert!(!grid.contains(&client_id) && !grid.contains("Ann wiki bot"));
    assert_eq!(bob.get(&fd, &app_path).await.0, 403);
    assert_eq!(bob.get(&fd, &format!("{app_path}/edit")).await.0, 403);
    assert_eq!(bob.get(&fd, &format!("{app_path}/delete")).await.0, 403);
    let bob_csrf = bob.csrf(&fd).await;
    let edit = [
        ("csrf_token", bob_csrf.as_str()),
        ("name", "Bob's now"),
        ("redirect_uris", "https://evil.example/cb"),
        ("grant_types", "authorization_code"),
    ];
    assert_eq!(bob.post(&fd, &app_path, &edit).await.0, 403);
    for action in ["delete", "deactivate", "secret"] {
        let (status, _) = bob
            .post(
                &fd,
                &format!("{app_path}/{action}"),
                &[("csrf_token", &bob_csrf)],
            )
            .await;
        assert_eq!(status, 403, "{action}");
    }
    let (_, page) = ann.get(&fd, &app_path).await;
    assert!(page.contains("Ann wiki bot"));
    assert!(page.contains("https://ann.example/cb") && !page.contains("evil.example"));
    assert!(page.contains("id=\"app-status\">Active"));

    // An admin of the tenant sees and may manage it; a user of another tenant finds nothing.
    let root = PageUser::sign_in(&fd, "root@example.com").await;
    assert!(root.get(&fd, APPS).await.1.contains(&client_id));
    assert_eq!(root.get(&fd, &app_path).await.0, 200);
    fd.add_tenant_user("acme", "eve@acme.example", "Eve", &[], PW);
    // acme.localhost resolves to frontdoor's loopback address.
    let eve = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(
            "acme.localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], fd.port)),
        )
        .build()
        .expect("client");
    let login = navigate(&eve, &format!("http://acme.localhost:{}{APPS}", fd.port)).await;
    assert_eq!(login.status(), 302);
    let eve = {
        // Sign in on the acme host (its own tenant).
        let c = eve;
        let page = follow(&c, login, None).await;
        let url = page.url().clone();
        let html = page.text().await.expect("html");
        let posted = c
            .post(url.join("/_frontdoor/login").expect("url"))
            .form(&[
                ("email", "eve@acme.example"),
                ("password", PW),
                (
                    "csrf_token",
                    &form_field(&html, "csrf_token").expect("csrf"),
                ),
                (
                    "return_to",
                    &form_field(&html, "return_to").expect("return_to"),
                ),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(posted.status(), 303);
        c
    };
    let r = navigate(
        &eve,
        &format!("http://acme.localhost:{}{app_path}", fd.port),
    )
    .await;
    assert_eq!(r.status(), 404, "another tenant's app does not exist");
    let grid = navigate(&eve, &format!("http://acme.localhost:{}{APPS}", fd.port))
        .await
        .text()
        .await
        .expect("html");
    assert!(!grid.contains(&client_id));

    // Ann's own forms: without the token, or with another browser's token, refused.
    for form in [
        vec![("name", "Renamed")],
        vec![("name", "Renamed"), ("csrf_token", "")],
        vec![("name", "Renamed"), ("csrf_token", bob_csrf.as_str())],
    ] {
        let (status, html) = ann.post(&fd, &app_path, &form).await;
        assert_eq!(status, 403);
        assert!(html.contains("The form expired"));
    }
    let (status, _) = ann.post(&fd, &format!("{app_path}/delete"), &[]).await;
    assert_eq!(status, 403);
    let (status, _) = ann
        .post(&fd, TOKENS, &[("name", "sneaky"), ("access", "read-write")])
        .await;
    assert_eq!(status, 403);
    let (_, page) = ann.get(&fd, &app_path).await;
    assert!(!page.contains("Renamed"));
    assert!(!ann.get(&fd, TOKENS).await.1.contains("sneaky"));

    // Pages send the security headers; a state change by GET does nothing.
    let r = navigate(&ann.client, &fd.url(APPS)).await;
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    let r = navigate(&ann.client, &fd.url(&format!("{app_path}/deactivate"))).await;
    assert_eq!(r.status(), 404);
    assert!(
        ann.get(&fd, &app_path)
            .await
            .1
            .contains("id=\"app-status\">Active")
    );
}

/// The login page's "locked" state in a real browser: wrong passwords up to the account's
/// limit, then even the right one is refused with the wait in words, until the ban ends.
#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_too_many_wrong_passwords_lock_the_sign_in_until_the_ban_ends() {
    let (upstream, fd) = setup_with(
        |up| {
            Config::single(up)
                .set("organization", "Acme Corp")
                .set("regulation.max_failures_per_account", 3)
                .set("regulation.ban", "5s")
        },
        &[ANN],
    )
    .await;
    let b = Chromium::start().await;
    b.goto(&fd.url("/wiki/Home")).await;
    for _ in 0..3 {
        b.sign_in("ann@example.com", "wrong password").await;
        assert_eq!(b.path().await, "/_frontdoor/login");
    }
    let started = Instant::now();
    b.sign_in("ann@example.com", PW).await;
    assert_eq!(b.path().await, "/_frontdoor/login", "refused while banned");
    assert_eq!(
        b.text("#error").await,
        "Too many failed sign-ins. Try again in 1 minute."
    );
    b.screenshot("login-locked").await;
    // After the ban the right password signs in and lands on the page asked for.
    let wait = Duration::from_secs(6).saturating_sub(started.elapsed());
    tokio::time::sleep(wait).await;
    b.sign_in("ann@example.com", PW).await;
    assert_eq!(
        b.path().await,
        "/wiki/Home",
        "signed in once the ban is over"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
}
