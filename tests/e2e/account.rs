//! An account's life against the real binary: "forgot password" through real mail (SMTP and
//! the outbox) — the link works once, expires, ends every old session, and the answer is the
//! same for an unknown address — and the password change on the settings pages, which asks
//! the current password and signs out the user's other browsers. Every new form refuses a
//! missing CSRF token.

use std::time::Duration;

use crate::harness::*;
use crate::mail::{make_certs, start_smtp};

const NEW_PW: &str = "a brand new password";
const FORGOT: &str = "/_frontdoor/password/forgot";
const RESET: &str = "/_frontdoor/password/reset";
const SETTINGS_PASSWORD: &str = "/_frontdoor/settings/security/password";
const INVITE: &str = "/_frontdoor/invitation";
const USERS: &str = "/_frontdoor/settings/users";

/// The reset link in a raw message (quoted-printable or base64 bodies decoded).
fn reset_link(raw: &str) -> Option<String> {
    link_in(raw, RESET)
}

/// The link to `path` in a raw message (quoted-printable or base64 bodies decoded).
fn link_in(raw: &str, path: &str) -> Option<String> {
    use base64::Engine;
    let mut texts = vec![
        raw.replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "="),
    ];
    if let Some((_, body)) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
    {
        let compact: String = body.split_whitespace().collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) {
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    texts.iter().find_map(|text| {
        let start = text.find("http://")?;
        let link: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        link.contains(path).then_some(link)
    })
}

/// The reset link of the newest message in the outbox to `to`, waiting briefly for it.
async fn outbox_link(fd: &Frontdoor, to: &str) -> String {
    outbox_link_to(fd, to, RESET).await
}

/// Messages in the outbox.
fn outbox_count(fd: &Frontdoor) -> usize {
    std::fs::read_dir(fd.data_dir().join("outbox"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Opens the "forgot password" page in `client` and asks for a link for `email`.
async fn ask_reset(client: &reqwest::Client, fd: &Frontdoor, email: &str) -> reqwest::Response {
    let page = client
        .get(fd.url(FORGOT))
        .send()
        .await
        .expect("forgot page");
    assert_eq!(page.status(), 200);
    let csrf = form_field(&page.text().await.expect("html"), "csrf_token").expect("csrf");
    client
        .post(fd.url(FORGOT))
        .form(&[("email", email), ("csrf_token", &csrf)])
        .send()
        .await
        .expect("ask for a link")
}

/// Opens a mailed link in `client` and posts its form (the page's CSRF token and the link's
/// secret, which the form carries) with `fields`; the POST's answer.
async fn fill_link_form(
    client: &reqwest::Client,
    link: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = client.get(link).send().await.expect("link page");
    assert_eq!(page.status(), 200, "the link opens its form");
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let token = form_field(&html, "token").expect("token field");
    let mut form = vec![("csrf_token", csrf.as_str()), ("token", token.as_str())];
    form.extend_from_slice(fields);
    client
        .post(link.split('?').next().expect("url"))
        .form(&form)
        .send()
        .await
        .expect("post the form")
}

/// Opens a reset link in `client` and posts the new password twice; the POST's answer.
async fn use_link(client: &reqwest::Client, link: &str, password: &str) -> reqwest::Response {
    let fields = [("new_password", password), ("repeat_password", password)];
    fill_link_form(client, link, &fields).await
}

/// The `token` of a reset link.
fn secret_of(link: &str) -> String {
    let url = url::Url::parse(link).expect("link");
    url.query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .expect("token in the link")
}

/// Whether `client` still reaches the upstream behind `/` (a live session).
async fn reaches_upstream(client: &reqwest::Client, fd: &Frontdoor) -> bool {
    let resp = navigate(client, &fd.url("/")).await;
    match resp.status().as_u16() {
        200 => true,
        302 => false,
        other => panic!("unexpected {other} on /"),
    }
}

#[tokio::test]
async fn a_reset_link_through_smtp_works_once_and_ends_every_old_session() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    let smtp = start_smtp(certs.path());
    let (_upstream, fd) = setup_with(
        |port| {
            Config::standard(port)
                .set("mail.from", "frontdoor <noreply@example.com>")
                .set("mail.smtp", smtp.settings("s3cret-pass", certs.path()))
                .set("mail.smtp.tls", "starttls")
        },
        &[ANN],
    )
    .await;
    let (old_browser, _) = signed_in(&fd, "/", ANN.0, TEAM_PW).await;

    let stranger = browser();
    let asked = ask_reset(&stranger, &fd, ANN.0).await;
    assert_eq!(asked.status(), 200);
    assert!(asked.text().await.expect("html").contains("is on its way"));
    let record = smtp.first_message(&fd).await;
    assert_eq!(record["rcpt_tos"], serde_json::json!([ANN.0]));
    let content = record["content"].as_str().expect("content");
    assert!(content.contains("Subject: Reset your"), "{content}");
    let link = reset_link(content).unwrap_or_else(|| panic!("no link in {content}"));
    assert!(
        link.starts_with(&fd.url(RESET)),
        "the link points at frontdoor's own host: {link}"
    );

    let page = stranger.get(&link).send().await.expect("reset page");
    assert_eq!(
        page.headers()
            .get("referrer-policy")
            .map(|v| v.to_str().expect("text")),
        Some("no-referrer"),
        "the secret in the URL is not sent on as a Referer"
    );
    let set = use_link(&stranger, &link, NEW_PW).await;
    assert_eq!(set.status(), 200);
    assert!(
        set_cookie(&set, "frontdoor_session").is_none(),
        "a reset signs nobody in"
    );
    assert!(set.text().await.expect("html").contains("Password changed"));

    assert!(
        !reaches_upstream(&old_browser, &fd).await,
        "the session from before the reset is gone"
    );
    // A second use, through the form and straight to the POST, is refused.
    let again = stranger.get(&link).send().await.expect("reset page again");
    assert_eq!(again.status(), 400);
    assert!(again.text().await.expect("html").contains("cannot be used"));
    let page = stranger.get(fd.url(FORGOT)).send().await.expect("page");
    let csrf = form_field(&page.text().await.expect("html"), "csrf_token").expect("csrf");
    let replay = stranger
        .post(fd.url(RESET))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("token", &secret_of(&link)),
            ("new_password", "an attacker's password"),
            ("repeat_password", "an attacker's password"),
        ])
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), 400);
    assert_eq!(
        form_login(&fd, ANN.0, "an attacker's password")
            .await
            .status(),
        401
    );
    assert_eq!(
        form_login(&fd, ANN.0, TEAM_PW).await.status(),
        401,
        "the old password is gone"
    );
    assert_eq!(form_login(&fd, ANN.0, NEW_PW).await.status(), 303);
}

#[tokio::test]
async fn an_expired_reset_link_is_refused_and_a_newer_use_drops_the_others() {
    let (_upstream, fd) = setup_with(
        |port| Config::standard(port).set("accounts.reset_link_ttl", "2s"),
        &[ANN],
    )
    .await;
    let client = browser();
    assert_eq!(ask_reset(&client, &fd, ANN.0).await.status(), 200);
    let expiring = outbox_link(&fd, ANN.0).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = client.get(&expiring).send().await.expect("late");
    assert_eq!(late.status(), 400, "expired");
    assert_eq!(form_login(&fd, ANN.0, TEAM_PW).await.status(), 303);

    // Two fresh links: using one makes the other useless.
    let fd = {
        drop(fd);
        setup_with(Config::standard, &[ANN]).await.1
    };
    assert_eq!(ask_reset(&client, &fd, ANN.0).await.status(), 200);
    let first = outbox_link(&fd, ANN.0).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ask_reset(&client, &fd, ANN.0).await.status(), 200);
    let mut second = outbox_link(&fd, ANN.0).await;
    for _ in 0..20 {
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        second = outbox_link(&fd, ANN.0).await;
    }
    assert_ne!(first, second);
    assert_eq!(use_link(&client, &second, NEW_PW).await.status(), 200);
    let other = client.get(&first).send().await.expect("other link");
    assert_eq!(other.status(), 400, "the other outstanding link is dropped");
}

#[tokio::test]
async fn asking_for_a_reset_says_the_same_for_an_unknown_address() {
    let (_upstream, fd) = setup_with(Config::standard, &[ANN]).await;
    let client = browser();
    let known = ask_reset(&client, &fd, ANN.0).await;
    let unknown = ask_reset(&client, &fd, "nobody@example.com").await;
    assert_eq!(known.status(), unknown.status());
    let known = known.text().await.expect("html").replace(ANN.0, "<email>");
    let unknown = unknown
        .text()
        .await
        .expect("html")
        .replace("nobody@example.com", "<email>");
    assert_eq!(known, unknown, "the pages differ only by the address typed");
    outbox_link(&fd, ANN.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outbox_count(&fd), 1, "only the account got mail");
}

/// The password page's form in `client`: its CSRF token.
async fn settings_csrf(client: &reqwest::Client, fd: &Frontdoor) -> String {
    let page = navigate(client, &fd.url(SETTINGS_PASSWORD)).await;
    assert_eq!(page.status(), 200);
    form_field(&page.text().await.expect("html"), "csrf_token").expect("csrf")
}

async fn change_password(
    client: &reqwest::Client,
    fd: &Frontdoor,
    current: &str,
    new: &str,
    repeated: &str,
) -> reqwest::Response {
    let csrf = settings_csrf(client, fd).await;
    client
        .post(fd.url(SETTINGS_PASSWORD))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", current),
            ("new_password", new),
            ("repeat_password", repeated),
        ])
        .send()
        .await
        .expect("change password")
}

#[tokio::test]
async fn a_password_change_asks_the_current_one_and_signs_out_the_other_browsers() {
    let (upstream, fd) = setup_with(Config::standard, &[ANN]).await;
    let (here, jar) = browser_with_jar();
    let landed = browser_login(&here, &fd.url("/"), ANN.0, TEAM_PW).await;
    assert_eq!(landed.status(), 200);
    let before = session_of(&jar, &fd).expect("session");
    let (elsewhere, _) = signed_in(&fd, "/", ANN.0, TEAM_PW).await;

    let wrong = change_password(&here, &fd, "not my password", NEW_PW, NEW_PW).await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("current password is not right")
    );
    let mismatch = change_password(&here, &fd, TEAM_PW, NEW_PW, "another new one").await;
    assert_eq!(mismatch.status(), 422);
    let short = change_password(&here, &fd, TEAM_PW, "short", "short").await;
    assert_eq!(short.status(), 422);
    assert!(
        reaches_upstream(&elsewhere, &fd).await,
        "nothing changed yet"
    );

    let changed = change_password(&here, &fd, TEAM_PW, NEW_PW, NEW_PW).await;
    assert_eq!(changed.status(), 303);
    assert_eq!(
        location(&changed),
        fd.url(&format!("{SETTINGS_PASSWORD}?done=changed"))
    );
    let after = session_of(&jar, &fd).expect("session");
    assert_ne!(before, after, "this session got a new id");
    assert!(
        reaches_upstream(&here, &fd).await,
        "this browser stays signed in"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-email").as_deref(),
        Some(ANN.0)
    );
    assert!(
        !reaches_upstream(&elsewhere, &fd).await,
        "the other browser is signed out"
    );
    let old_id = plain_client()
        .get(fd.url("/"))
        .header("Accept", "text/html")
        .header("Cookie", format!("frontdoor_session={before}"))
        .send()
        .await
        .expect("old cookie");
    assert_eq!(
        old_id.status(),
        302,
        "the id from before the change is worth nothing"
    );
    assert_eq!(form_login(&fd, ANN.0, TEAM_PW).await.status(), 401);
    assert_eq!(form_login(&fd, ANN.0, NEW_PW).await.status(), 303);
}

#[tokio::test]
async fn every_new_form_refuses_a_missing_or_foreign_csrf_token() {
    let (_upstream, fd) = setup_with(Config::standard, &[ANN]).await;
    let client = browser();
    // Forgot: no token, then a token of another browser.
    let other = browser();
    let foreign = form_field(
        &other
            .get(fd.url(FORGOT))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html"),
        "csrf_token",
    )
    .expect("csrf");
    client.get(fd.url(FORGOT)).send().await.expect("page");
    for token in ["", foreign.as_str()] {
        let resp = client
            .post(fd.url(FORGOT))
            .form(&[("email", ANN.0), ("csrf_token", token)])
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 403);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outbox_count(&fd), 0, "no mail without the form's token");

    // Reset: the link stays good after a forged post.
    assert_eq!(ask_reset(&client, &fd, ANN.0).await.status(), 200);
    let link = outbox_link(&fd, ANN.0).await;
    let forged = browser()
        .post(fd.url(RESET))
        .form(&[
            ("token", secret_of(&link).as_str()),
            ("new_password", "an attacker's password"),
            ("repeat_password", "an attacker's password"),
        ])
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 403);
    assert_eq!(
        form_login(&fd, ANN.0, "an attacker's password")
            .await
            .status(),
        401
    );

    // Settings: a signed-in browser tricked into posting.
    let (victim, _) = signed_in(&fd, "/", ANN.0, TEAM_PW).await;
    let forged = victim
        .post(fd.url(SETTINGS_PASSWORD))
        .form(&[
            ("current_password", TEAM_PW),
            ("new_password", "an attacker's password"),
            ("repeat_password", "an attacker's password"),
        ])
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 403);
    assert_eq!(
        use_link(&client, &link, NEW_PW).await.status(),
        200,
        "the link still works"
    );
    assert_eq!(form_login(&fd, ANN.0, NEW_PW).await.status(), 303);
}

const ACME_HOST: &str = "acme.localhost";
const BOSS: &str = "boss@acme.example";

/// `standard` routes and tenant `acme` on `acme.localhost`; ROOT (an administrator) and ANN in
/// the default tenant, BOSS (an administrator) and BOB in `acme`.
async fn two_tenants() -> (Upstream, Frontdoor) {
    let (upstream, fd) = setup_with(
        |port| Config::standard(port).tenant("acme", [ACME_HOST]),
        &[ROOT, ANN],
    )
    .await;
    fd.add_tenant_user(
        "acme",
        BOSS,
        "Boss",
        &["--roles", "ROLE_USER,ROLE_ADMIN"],
        TEAM_PW,
    );
    fd.add_tenant_user("acme", BOB.0, "Bob", &[], TEAM_PW);
    (upstream, fd)
}

/// An API call with an `Api-Token`, on `host` (frontdoor's own when `None`).
async fn api(
    fd: &Frontdoor,
    token: &str,
    host: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = plain_client()
        .request(method, fd.url(path))
        .header("Api-Token", token);
    if let Some(h) = host {
        req = req.header("Host", format!("{h}:{}", fd.port));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("api");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Asserts the shared error envelope with `status` and `code`.
fn assert_envelope((status, body): &(u16, serde_json::Value), want: u16, code: &str) {
    assert_eq!(*status, want, "{body}");
    assert_eq!(body["error"]["status"], want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

/// The newest link to `path` in a message of the outbox to `to`, waiting briefly for it.
async fn outbox_link_to(fd: &Frontdoor, to: &str, path: &str) -> String {
    let dir = fd.data_dir().join("outbox");
    for _ in 0..50 {
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            if text.contains(to)
                && let (Some(m), Some(link)) = (modified, link_in(&text, path))
                && newest.as_ref().is_none_or(|(t, _)| m >= *t)
            {
                newest = Some((m, link));
            }
        }
        if let Some((_, link)) = newest {
            return link;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no link to {path} for {to} in {}:\n{}",
        dir.display(),
        fd.log()
    );
}

/// Opens an invitation link in `client` and creates the account; the POST's answer.
async fn accept(client: &reqwest::Client, link: &str, name: &str) -> reqwest::Response {
    let fields = [
        ("name", name),
        ("new_password", NEW_PW),
        ("repeat_password", NEW_PW),
    ];
    fill_link_form(client, link, &fields).await
}

/// A browser that reaches `host` at frontdoor's listener.
fn browser_on(host: &str, fd: &Frontdoor) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], fd.port)))
        .build()
        .expect("client")
}

#[tokio::test]
async fn an_invitation_creates_the_account_once_with_its_groups_and_roles_in_its_tenant() {
    let (upstream, fd) = two_tenants().await;
    let root = fd.api_token(&["--user", ROOT.0]);
    let made = api(
        &fd,
        &root,
        None,
        reqwest::Method::POST,
        "/api/v1/users/invitations",
        Some(
            serde_json::json!({"email": "New@Example.com", "groups": ["wiki", "eng"],
            "roles": ["ROLE_USER", "ROLE_EDITOR"]}),
        ),
    )
    .await;
    assert_eq!(made.0, 201, "{}", made.1);
    assert_eq!(made.1["email"], "new@example.com");
    assert!(made.1.get("token").is_none() && made.1.get("link").is_none());
    let listed = api(
        &fd,
        &root,
        None,
        reqwest::Method::GET,
        "/api/v1/users/invitations",
        None,
    )
    .await;
    assert_eq!(listed.1.as_array().map(Vec::len), Some(1), "{}", listed.1);

    let link = outbox_link_to(&fd, "new@example.com", INVITE).await;
    assert!(link.starts_with(&fd.url(INVITE)), "{link}");
    let stranger = browser();
    let created = accept(&stranger, &link, "Nina New").await;
    assert_eq!(created.status(), 200);
    assert!(
        set_cookie(&created, "frontdoor_session").is_none(),
        "signs nobody in"
    );
    assert!(
        created
            .text()
            .await
            .expect("html")
            .contains("Account created")
    );
    let again = stranger.get(&link).send().await.expect("second use");
    assert_eq!(again.status(), 400, "an invitation works once");
    let listed = api(
        &fd,
        &root,
        None,
        reqwest::Method::GET,
        "/api/v1/users/invitations",
        None,
    )
    .await;
    assert_eq!(listed.1, serde_json::json!([]), "no longer pending");

    signed_in(&fd, "/", "new@example.com", NEW_PW).await;
    let seen = upstream.last();
    assert_eq!(
        seen.header("x-auth-request-name").as_deref(),
        Some("Nina New")
    );
    assert_eq!(
        seen.header("x-auth-request-groups").as_deref(),
        Some("wiki,eng")
    );
    assert_eq!(
        seen.header("x-auth-request-roles").as_deref(),
        Some("ROLE_USER,ROLE_EDITOR")
    );
    assert_eq!(
        seen.header("x-auth-request-tenant").as_deref(),
        Some("default")
    );

    // An invitation into acme, by acme's administrator: not usable on the default tenant's host.
    let boss = fd.api_token(&["--user", BOSS, "--tenant", "acme"]);
    let made = api(
        &fd,
        &boss,
        Some(ACME_HOST),
        reqwest::Method::POST,
        "/api/v1/users/invitations",
        Some(serde_json::json!({"email": "carl@example.com", "groups": ["acme-eng"]})),
    )
    .await;
    assert_eq!(made.0, 201, "{}", made.1);
    assert_eq!(made.1["tenant"], "acme");
    let link = outbox_link_to(&fd, "carl@example.com", INVITE).await;
    let acme_url = format!("http://{ACME_HOST}:{}{INVITE}", fd.port);
    assert!(
        link.starts_with(&acme_url),
        "the link is on acme's host: {link}"
    );
    let query = link.split_once('?').expect("query").1;
    let elsewhere = stranger
        .get(format!("{}?{query}", fd.url(INVITE)))
        .send()
        .await
        .expect("on the default host");
    assert_eq!(
        elsewhere.status(),
        400,
        "another tenant's invitation is refused here"
    );
    let acme = browser_on(ACME_HOST, &fd);
    assert_eq!(accept(&acme, &link, "Carl").await.status(), 200);
    let carl = fd.cli_json(&["users", "list", "--tenant", "acme", "--json"]);
    assert!(
        carl.as_array()
            .expect("list")
            .iter()
            .any(|u| u["email"] == "carl@example.com"
                && u["groups"] == serde_json::json!(["acme-eng"])
                && u["roles"] == serde_json::json!(["ROLE_USER"])),
        "{carl}"
    );
    assert!(
        !fd.cli_json(&["users", "list", "--tenant", "default", "--json"])
            .to_string()
            .contains("carl@"),
        "created in acme only"
    );
}

#[tokio::test]
async fn an_administrator_of_one_tenant_cannot_see_or_change_another_tenants_users() {
    let (_upstream, fd) = two_tenants().await;
    let ann = fd.user_id(ANN.0);
    let boss = fd.api_token(&["--user", BOSS, "--tenant", "acme"]);
    let acme = Some(ACME_HOST);
    let listed = api(
        &fd,
        &boss,
        acme,
        reqwest::Method::GET,
        "/api/v1/users",
        None,
    )
    .await;
    assert_eq!(listed.0, 200);
    let emails: Vec<&str> = listed
        .1
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails, [BOB.0, BOSS], "acme's users only");
    let path = format!("/api/v1/users/{ann}");
    assert_envelope(
        &api(&fd, &boss, acme, reqwest::Method::GET, &path, None).await,
        404,
        "not_found",
    );
    let patch = Some(serde_json::json!({"active": false, "roles": ["ROLE_ADMIN"]}));
    assert_envelope(
        &api(&fd, &boss, acme, reqwest::Method::PATCH, &path, patch).await,
        404,
        "not_found",
    );
    // Root's invitation in the default tenant cannot be withdrawn from acme.
    let root = fd.api_token(&["--user", ROOT.0]);
    let made = api(
        &fd,
        &root,
        None,
        reqwest::Method::POST,
        "/api/v1/users/invitations",
        Some(serde_json::json!({"email": "dora@example.com"})),
    )
    .await;
    let invitation = made.1["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/users/invitations/{invitation}");
    assert_envelope(
        &api(&fd, &boss, acme, reqwest::Method::DELETE, &path, None).await,
        404,
        "not_found",
    );
    assert_eq!(
        api(&fd, &root, None, reqwest::Method::DELETE, &path, None)
            .await
            .0,
        204
    );
    // Nobody but an administrator.
    let plain = fd.api_token(&["--user", ANN.0]);
    assert_envelope(
        &api(
            &fd,
            &plain,
            None,
            reqwest::Method::GET,
            "/api/v1/users",
            None,
        )
        .await,
        403,
        "forbidden",
    );

    // The pages: acme's administrator, signed in on acme's host.
    let client = browser_on(ACME_HOST, &fd);
    let acme_url = |p: &str| format!("http://{ACME_HOST}:{}{p}", fd.port);
    let login = navigate(&client, &acme_url("/_frontdoor/login")).await;
    let posted = submit_login(&client, login, BOSS, TEAM_PW).await;
    assert_eq!(posted.status(), 303, "signed in on acme's host");
    let page = navigate(&client, &acme_url(USERS)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains(BOB.0) && !html.contains(ANN.0),
        "acme's users only"
    );
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let other = navigate(&client, &acme_url(&format!("{USERS}/{ann}"))).await;
    assert_eq!(other.status(), 404);
    let deactivate = client
        .post(acme_url(&format!("{USERS}/{ann}/deactivate")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(deactivate.status(), 404);
    assert_eq!(
        form_login(&fd, ANN.0, TEAM_PW).await.status(),
        303,
        "Ann is untouched"
    );
    // A user who administers nothing sees no user page.
    let (plain_browser, _) = signed_in(&fd, "/", ANN.0, TEAM_PW).await;
    assert_eq!(navigate(&plain_browser, &fd.url(USERS)).await.status(), 403);
}

#[tokio::test]
async fn the_users_api_validates_its_input_and_its_edits_reach_upstreams() {
    let (upstream, fd) = two_tenants().await;
    let root = fd.api_token(&["--user", ROOT.0]);
    let ann = fd.user_id(ANN.0);
    let path = format!("/api/v1/users/{ann}");
    let call = |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let (fd, root) = (&fd, &root);
        async move { api(fd, root, None, method, &path, body).await }
    };
    use reqwest::Method as M;
    use serde_json::json;
    for (body, status, code) in [
        (json!({"colour": "red"}), 400, "invalid_request"),
        (json!({"groups": "wiki"}), 400, "invalid_request"),
        (json!({"groups": ["a,b"]}), 422, "invalid_field"),
        (json!({"roles": ["x\ny"]}), 422, "invalid_field"),
        (json!({"name": "  "}), 422, "invalid_field"),
    ] {
        assert_envelope(
            &call(M::PATCH, path.clone(), Some(body)).await,
            status,
            code,
        );
    }
    let invitations = "/api/v1/users/invitations".to_string();
    for (body, status, code) in [
        (json!({"email": "not an address"}), 422, "invalid_field"),
        (json!({}), 400, "invalid_request"),
        (json!({"email": ANN.0}), 409, "conflict"),
        (
            json!({"email": "x@example.com", "groups": ["a,b"]}),
            422,
            "invalid_field",
        ),
    ] {
        assert_envelope(
            &call(M::POST, invitations.clone(), Some(body)).await,
            status,
            code,
        );
    }
    assert_envelope(
        &call(M::PUT, path.clone(), None).await,
        405,
        "method_not_allowed",
    );
    assert_envelope(
        &call(M::GET, "/api/v1/users/nope".into(), None).await,
        404,
        "not_found",
    );
    let root_id = fd.user_id(ROOT.0);
    assert_envelope(
        &call(
            M::PATCH,
            format!("/api/v1/users/{root_id}"),
            Some(json!({"active": false})),
        )
        .await,
        409,
        "conflict",
    );

    let (ann_browser, _) = signed_in(&fd, "/", ANN.0, TEAM_PW).await;
    let edited = call(
        M::PATCH,
        path.clone(),
        Some(json!({"name": "Ann Edited", "groups": ["wiki", "ops"], "roles": ["ROLE_USER"]})),
    )
    .await;
    assert_eq!(edited.0, 200, "{}", edited.1);
    assert_eq!(edited.1["groups"], json!(["wiki", "ops"]));
    assert!(edited.1.get("password_hash").is_none());
    assert!(reaches_upstream(&ann_browser, &fd).await);
    let seen = upstream.last();
    assert_eq!(
        seen.header("x-auth-request-groups").as_deref(),
        Some("wiki,ops")
    );
    assert_eq!(
        seen.header("x-auth-request-name").as_deref(),
        Some("Ann Edited")
    );
    let found = call(M::GET, "/api/v1/users?q=EDITED".into(), None).await;
    assert_eq!(found.1.as_array().map(Vec::len), Some(1), "{}", found.1);

    let off = call(M::PATCH, path.clone(), Some(json!({"active": false}))).await;
    assert_eq!(off.0, 200);
    assert!(
        !reaches_upstream(&ann_browser, &fd).await,
        "deactivation ends the session"
    );
    assert_eq!(form_login(&fd, ANN.0, TEAM_PW).await.status(), 401);
    assert_eq!(
        call(M::PATCH, path, Some(json!({"active": true}))).await.0,
        200
    );
    assert_eq!(form_login(&fd, ANN.0, TEAM_PW).await.status(), 303);
}

#[tokio::test]
async fn the_users_pages_invite_resend_withdraw_and_edit_with_csrf() {
    let (upstream, fd) = two_tenants().await;
    let (admin, _) = signed_in(&fd, "/", ROOT.0, TEAM_PW).await;
    let csrf = {
        let page = navigate(&admin, &fd.url(USERS)).await;
        assert_eq!(
            page.status(),
            200,
            "{}",
            page.text().await.unwrap_or_default()
        );
        form_field(&page.text().await.expect("html"), "csrf_token").expect("csrf")
    };
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let admin = &admin;
        let url = fd.url(&path);
        async move { admin.post(url).form(&fields).send().await.expect("post") }
    };
    let invite = |token: &str| {
        vec![
            ("csrf_token", token.to_string()),
            ("email", "eve@example.com".to_string()),
            ("groups", "wiki, eng".to_string()),
            ("roles", "ROLE_USER".to_string()),
        ]
    };
    let forged = post(format!("{USERS}/invite"), invite("")).await;
    assert_eq!(forged.status(), 403, "no CSRF token, no invitation");
    let sent = post(format!("{USERS}/invite"), invite(&csrf)).await;
    assert_eq!(sent.status(), 303);
    let first = outbox_link_to(&fd, "eve@example.com", INVITE).await;
    let page = navigate(&admin, &fd.url(USERS))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("eve@example.com"),
        "pending invitation listed"
    );
    let id = {
        let doc = scraper::Html::parse_document(&page);
        let sel = scraper::Selector::parse("#invitations tbody tr").expect("selector");
        doc.select(&sel)
            .next()
            .and_then(|r| r.value().attr("id"))
            .and_then(|i| i.strip_prefix("invitation-"))
            .expect("row id")
            .to_string()
    };
    let forged = post(format!("{USERS}/invitations/{id}/resend"), vec![]).await;
    assert_eq!(forged.status(), 403);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resent = post(
        format!("{USERS}/invitations/{id}/resend"),
        vec![("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(resent.status(), 303);
    let mut second = outbox_link_to(&fd, "eve@example.com", INVITE).await;
    for _ in 0..20 {
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        second = outbox_link_to(&fd, "eve@example.com", INVITE).await;
    }
    assert_ne!(first, second, "a new link");
    assert_eq!(
        browser().get(&first).send().await.expect("old").status(),
        400,
        "the old link is dead"
    );
    let forged = post(format!("{USERS}/invitations/{id}/revoke"), vec![]).await;
    assert_eq!(forged.status(), 403);
    let withdrawn = post(
        format!("{USERS}/invitations/{id}/revoke"),
        vec![("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(withdrawn.status(), 303);
    assert_eq!(
        browser()
            .get(&second)
            .send()
            .await
            .expect("revoked")
            .status(),
        400
    );

    // Edit Ann through the form: her next request carries the new groups.
    let ann = fd.user_id(ANN.0);
    let (ann_browser, _) = signed_in(&fd, "/", ANN.0, TEAM_PW).await;
    let edit = |token: &str| {
        vec![
            ("csrf_token", token.to_string()),
            ("name", "Ann B".to_string()),
            ("groups", "wiki, design".to_string()),
            ("roles", "ROLE_USER".to_string()),
        ]
    };
    assert_eq!(post(format!("{USERS}/{ann}"), edit("")).await.status(), 403);
    assert_eq!(
        post(format!("{USERS}/{ann}"), edit(&csrf)).await.status(),
        303
    );
    assert!(reaches_upstream(&ann_browser, &fd).await);
    assert_eq!(
        upstream.last().header("x-auth-request-groups").as_deref(),
        Some("wiki,design")
    );
    assert_eq!(
        post(format!("{USERS}/{ann}/deactivate"), vec![])
            .await
            .status(),
        403
    );
    let off = post(
        format!("{USERS}/{ann}/deactivate"),
        vec![("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(off.status(), 303);
    assert!(
        !reaches_upstream(&ann_browser, &fd).await,
        "deactivated: signed out"
    );
}

#[tokio::test]
async fn the_cli_invites_hands_out_reset_links_sets_passwords_and_edits() {
    // The CLI changes the store; a node on SQLite hears of it when its cache entries expire.
    let (upstream, fd) = setup_with(
        |port| {
            Config::standard(port)
                .tenant("acme", [ACME_HOST])
                .set("session.cache_ttl", "1s")
        },
        &[ROOT, ANN],
    )
    .await;
    fd.cli_ok(
        &[
            "users",
            "invite",
            "--email",
            "fay@example.com",
            "--groups",
            "wiki",
            "--tenant",
            "acme",
        ],
        None,
    );
    let link = outbox_link_to(&fd, "fay@example.com", INVITE).await;
    assert!(link.contains(ACME_HOST), "{link}");

    let out = fd.cli_ok(&["users", "reset-link", "--email", ANN.0], None);
    let link = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(link.starts_with(&fd.url(RESET)), "{link}");
    assert_eq!(use_link(&browser(), &link, NEW_PW).await.status(), 200);
    assert_eq!(form_login(&fd, ANN.0, NEW_PW).await.status(), 303);

    let (ann_browser, _) = signed_in(&fd, "/", ANN.0, NEW_PW).await;
    let out = fd.cli_ok(
        &["users", "set-password", "--email", ANN.0],
        Some("set by the operator\n"),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("sessions ended"), "{said}");
    // The CLI changes the store; this node (SQLite, no notifications) hears of it when its
    // cache entry expires (`session.cache_ttl`, 1 s here).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !reaches_upstream(&ann_browser, &fd).await,
        "sessions end with a new password"
    );
    assert_eq!(
        form_login(&fd, ANN.0, "set by the operator").await.status(),
        303
    );
    let short = fd.cli(
        &["users", "set-password", "--email", ANN.0],
        Some("short\n"),
    );
    assert!(!short.status.success());

    fd.cli_ok(
        &[
            "users", "edit", "--email", ANN.0, "--groups", "wiki,qa", "--name", "Ann Q",
        ],
        None,
    );
    signed_in(&fd, "/", ANN.0, "set by the operator").await;
    assert_eq!(
        upstream.last().header("x-auth-request-groups").as_deref(),
        Some("wiki,qa")
    );
    let bad = fd.cli(
        &["users", "edit", "--email", ANN.0, "--roles", "a b\tc"],
        None,
    );
    assert!(!bad.status.success(), "the same rules as the API");
}

#[tokio::test]
async fn a_password_change_tells_the_apps_of_the_sessions_it_ends_by_back_channel() {
    use crate::backchannel_logout::{Receiver, app_with, id_token_for};
    use crate::oauth::{EMAIL, PASSWORD};
    let fd = crate::oauth::start(|c| c).await;
    let rx = Receiver::start(200).await;
    let wiki = app_with(&fd, "Wiki", &rx.uri());
    // Another browser signs in to the app: its session is the one the change ends.
    let (elsewhere, _) = browser_with_jar();
    id_token_for(&elsewhere, &fd, &wiki).await;

    let here = browser();
    let csrf = login_csrf(&here, &fd).await;
    let signed = here
        .post(fd.url("/_frontdoor/login"))
        .form(&[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("return_to", SETTINGS_PASSWORD),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed.status(), 303);
    let changed = change_password(&here, &fd, PASSWORD, NEW_PW, NEW_PW).await;
    assert_eq!(changed.status(), 303);
    let started = std::time::Instant::now();
    while rx.count() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no logout token:\n{}",
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rx.tokens().len(),
        1,
        "the app of the ended session was told"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_forgot_password_reset_invitation_and_the_users_page() {
    let (_upstream, fd) = setup_with(
        |port| Config::standard(port).set("organization", "Acme Corp"),
        &[ROOT, ANN],
    )
    .await;
    let b = crate::chromium::Chromium::start().await;

    // Forgot password, from the sign-in page's link.
    b.goto(&fd.url("/_frontdoor/login")).await;
    b.click_and_wait("#forgot-password").await;
    assert_eq!(b.path().await, FORGOT);
    b.screenshot("password-forgot").await;
    b.fill("#email", ANN.0).await;
    b.click_and_wait("#send-link").await;
    assert!(b.text("#message").await.contains("is on its way"));
    let link = outbox_link(&fd, ANN.0).await;
    b.goto(&link).await;
    b.screenshot("password-reset").await;
    b.fits_a_phone("password-reset").await;
    b.fill("#new-password", NEW_PW).await;
    b.fill("#repeat-password", NEW_PW).await;
    b.click_and_wait("#set-password").await;
    assert!(b.body_text().await.contains("Password changed"));

    // Settings → Security → Password, signed in with the new password.
    b.goto(&fd.url(SETTINGS_PASSWORD)).await;
    b.sign_in(ANN.0, NEW_PW).await;
    assert_eq!(b.path().await, SETTINGS_PASSWORD);
    b.fill("#current-password", NEW_PW).await;
    b.fill("#new-password", "yet another password").await;
    b.fill("#repeat-password", "yet another password").await;
    b.click_and_wait("#change-password").await;
    assert!(b.text("#notice").await.contains("Password changed"));
    b.screenshot("settings-password").await;
    assert!(
        !b.has("#nav-users").await,
        "no Users page for a user who administers nothing"
    );
    b.goto(&fd.url("/_frontdoor/logout")).await;
    b.click_and_wait("button[type=submit]").await;

    // Settings → Administration → Users, as an administrator: invite someone.
    b.goto(&fd.url(USERS)).await;
    b.sign_in(ROOT.0, TEAM_PW).await;
    assert_eq!(b.path().await, USERS);
    b.fill("#invite-email", "gus@example.com").await;
    b.fill("#invite-groups", "wiki, eng").await;
    b.click_and_wait("#send-invite").await;
    assert!(b.text("#notice").await.contains("Invitation sent"));
    assert!(b.text("#invitations").await.contains("gus@example.com"));
    b.fill("#q", "ann").await;
    b.click_and_wait("#search").await;
    assert!(b.text("#users").await.contains(ANN.0));
    assert!(
        !b.text("#users").await.contains(ROOT.0),
        "the search narrows the list"
    );
    b.goto(&fd.url(USERS)).await;
    b.screenshot("users").await;
    b.fits_a_phone("users").await;

    // The invitation, opened in the same browser after signing out.
    b.goto(&fd.url("/_frontdoor/logout")).await;
    b.click_and_wait("button[type=submit]").await;
    let invitation = outbox_link_to(&fd, "gus@example.com", INVITE).await;
    b.goto(&invitation).await;
    b.screenshot("invitation").await;
    b.fill("#name", "Gus").await;
    b.fill("#new-password", NEW_PW).await;
    b.fill("#repeat-password", NEW_PW).await;
    b.click_and_wait("#create-account").await;
    assert!(b.body_text().await.contains("Account created"));
}

#[tokio::test]
async fn mail_templates_from_a_directory_are_used_and_checked_at_load() {
    let templates = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        templates.path().join("password_reset.txt"),
        "Subject: Custom reset for {{ org }}\n\nHi {{ name }}, your link: {{ link }}\n",
    )
    .expect("write");
    let (_upstream, fd) = setup_with(
        |port| {
            Config::standard(port).set("mail.templates_dir", templates.path().display().to_string())
        },
        &[ANN],
    )
    .await;
    assert_eq!(ask_reset(&browser(), &fd, ANN.0).await.status(), 200);
    let link = outbox_link(&fd, ANN.0).await;
    let mail = std::fs::read_dir(fd.data_dir().join("outbox"))
        .expect("outbox")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .find(|m| m.contains("Custom reset"))
        .expect("the directory's template was used");
    assert!(mail.contains("Hi Ann"), "{mail}");
    assert_eq!(use_link(&browser(), &link, NEW_PW).await.status(), 200);

    std::fs::write(
        templates.path().join("invitation.txt"),
        "Subject: {% if %}\n\nbroken",
    )
    .expect("write");
    let checked = fd.cli(&["check-config"], None);
    assert!(!checked.status.success(), "a broken template is refused");
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(
        said.contains("mail.templates_dir") && said.contains("invitation.txt"),
        "{said}"
    );
}
