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

/// The reset link in a raw message (quoted-printable or base64 bodies decoded).
fn reset_link(raw: &str) -> Option<String> {
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
        link.contains(RESET).then_some(link)
    })
}

/// The reset link of the newest message in the outbox to `to`, waiting briefly for it.
async fn outbox_link(fd: &Frontdoor, to: &str) -> String {
    let dir = fd.data_dir().join("outbox");
    for _ in 0..50 {
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            if text.contains(to)
                && let (Some(m), Some(link)) = (modified, reset_link(&text))
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
    panic!("no reset link to {to} in {}:\n{}", dir.display(), fd.log());
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

/// Opens a reset link in `client` and posts the new password twice; the POST's answer.
async fn use_link(client: &reqwest::Client, link: &str, password: &str) -> reqwest::Response {
    let page = client.get(link).send().await.expect("reset page");
    assert_eq!(page.status(), 200, "the link opens the form");
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let token = form_field(&html, "token").expect("token field");
    client
        .post(link.split('?').next().expect("url"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("token", &token),
            ("new_password", password),
            ("repeat_password", password),
        ])
        .send()
        .await
        .expect("set the password")
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
    let mut record = None;
    for _ in 0..100 {
        if let Some(entry) = std::fs::read_dir(&smtp.outdir)
            .expect("outdir")
            .flatten()
            .next()
        {
            record = Some(std::fs::read_to_string(entry.path()).expect("read"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record: serde_json::Value =
        serde_json::from_str(&record.unwrap_or_else(|| panic!("no mail arrived:\n{}", fd.log())))
            .expect("json");
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
