//! Passkeys end to end: Chromium with a virtual WebAuthn authenticator (WebDriver's "Add
//! Virtual Authenticator") registers a passkey from Settings → Security and signs in with the
//! password and the passkey, every ceremony verified by webauthn-rs in frontdoor; then the
//! attacks: another user's credential, a replayed assertion and registration, CSRF.
//!
//! WebAuthn wants a domain, not an IP address, as relying party: frontdoor's `public_url` is
//! `http://localhost:<port>` here (a secure context for the browser without TLS).

use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

use crate::chromium::Chromium;
use crate::config::{Config, Route, Rule};
use crate::harness::*;

const SECURITY: &str = "/_frontdoor/settings/security";
const BOB: User<'static> = ("bob@example.com", "Bob", "wiki", "ROLE_USER", TEAM_PW);

/// WebDriver's "Add Virtual Authenticator" (W3C WebAuthn §11.3), which fantoccini does not
/// wrap: a CTAP2 platform authenticator with resident keys that verifies its user.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/authenticator"))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// frontdoor on `http://localhost:<port>` with the standard routes, ANN and BOB. 127.0.0.1
/// stays one of its own hosts (of the default tenant), for the harness's readiness probe.
async fn on_localhost() -> (Upstream, Frontdoor) {
    on_localhost_with(Config::standard).await
}

/// [`on_localhost`] with `config(upstream's port)` for routes.
async fn on_localhost_with(config: impl FnOnce(u16) -> Config) -> (Upstream, Frontdoor) {
    let upstream = Upstream::start().await;
    let (port, admin_port) = (free_port(), free_port());
    let config = config(upstream.port)
        .public_url(format!("http://localhost:{port}"))
        .tenant("default", ["127.0.0.1"]);
    let fd = Frontdoor::launch_on(port, admin_port, config).await;
    for &(email, name, groups, roles, password) in &[ANN, BOB] {
        fd.add_user(email, name, groups, roles, password);
    }
    (upstream, fd)
}

fn at(fd: &Frontdoor, path: &str) -> String {
    format!("http://localhost:{}{path}", fd.port)
}

async fn browser_with_authenticator() -> Chromium {
    let b = Chromium::start().await;
    let added = b
        .client
        .issue_cmd(AddVirtualAuthenticator)
        .await
        .expect("a virtual authenticator");
    assert!(added.as_str().is_some(), "its id: {added}");
    b
}

/// Registers a passkey named `name` for the signed-in user, from Settings → Security.
async fn register(b: &Chromium, fd: &Frontdoor, name: &str) {
    b.goto(&at(fd, SECURITY)).await;
    b.fill("#passkey-name", name).await;
    click_and_wait(b, "#add-passkey").await;
    // The overview answers the form in place (new recovery codes are shown once).
    assert!(b.path().await.starts_with(SECURITY));
    assert!(
        b.body_text().await.contains(name),
        "{name} is listed: {}",
        b.body_text().await
    );
}

/// Clicks a button whose script navigates; a failure says what the page's script showed.
async fn click_and_wait(b: &Chromium, css: &str) {
    let before = b.find("html").await;
    b.click(css).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while before.tag_name().await.is_ok() {
        if std::time::Instant::now() > deadline {
            let shown = b.text("#passkey-error").await;
            panic!("{css} did not navigate; the page says: {shown}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.find("body").await;
}

async fn sign_out(b: &Chromium, fd: &Frontdoor) {
    b.goto(&at(fd, "/_frontdoor/logout")).await;
    b.click_and_wait("button[type=submit]").await;
}

/// The first passkey id on Settings → Security (its remove form's field).
async fn first_passkey_id(b: &Chromium) -> String {
    b.find("form input[name=id]")
        .await
        .attr("value")
        .await
        .expect("attr")
        .expect("a passkey id")
}

/// Keeps what the page's form posts (`fields`) in the tab's sessionStorage, to replay later.
async fn keep_on_submit(b: &Chromium, form: &str, fields: &[&str]) {
    let script = "var f = document.getElementById(arguments[0]); var names = arguments[1]; \
                  var submit = f.submit; f.submit = function () { \
                  names.forEach(function (n) { sessionStorage.setItem(n, f.elements[n].value); }); \
                  submit.call(f); };";
    b.client
        .execute(script, vec![json!(form), json!(fields)])
        .await
        .expect("hook the form");
}

async fn kept(b: &Chromium, name: &str) -> String {
    let v: Value = b
        .client
        .execute(
            "return sessionStorage.getItem(arguments[0]);",
            vec![json!(name)],
        )
        .await
        .expect("sessionStorage");
    v.as_str().expect("kept value").to_string()
}

/// Sets fields of a form on the page (`form` a CSS selector) and submits it as the page would.
async fn post_with(b: &Chromium, form: &str, fields: Value) {
    let script = "var f = document.querySelector(arguments[0]); var v = arguments[1]; \
                  Object.keys(v).forEach(function (k) { f.elements[k].value = v[k]; }); \
                  HTMLFormElement.prototype.submit.call(f);";
    let before = b.find("html").await;
    b.client
        .execute(script, vec![json!(form), fields])
        .await
        .expect("post the form");
    while before.tag_name().await.is_ok() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.find("body").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_a_passkey_is_registered_then_signs_in_after_the_password_and_is_removed() {
    let (upstream, fd) = on_localhost().await;
    let b = browser_with_authenticator().await;

    // Settings → Security, signed in with the password only.
    b.goto(&at(&fd, SECURITY)).await;
    b.sign_in(ANN.0, ANN.4).await;
    assert_eq!(b.path().await, SECURITY);
    assert!(b.has("#no-passkeys").await);
    register(&b, &fd, "Work laptop").await;
    assert!(
        b.has("#recovery-codes").await,
        "the account's first factor comes with its recovery codes"
    );
    b.goto(&at(&fd, SECURITY)).await;
    b.screenshot("settings-passkeys").await;
    b.fits_a_phone("settings-passkeys").await;

    // Sign out, and in again: the password, then the passkey.
    sign_out(&b, &fd).await;
    b.goto(&at(&fd, "/wiki/passkey")).await;
    b.sign_in(ANN.0, ANN.4).await;
    assert!(
        b.has("#use-passkey").await,
        "the passkey is offered beside the code"
    );
    b.screenshot("second-factor-passkey").await;
    click_and_wait(&b, "#use-passkey").await;
    assert_eq!(
        b.path().await,
        "/wiki/passkey",
        "back where the sign-in started"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-amr").as_deref(),
        Some("pwd,swk,mfa"),
        "the upstream is told: a password and a passkey"
    );

    // Passwordless: the login page's button, the authenticator's discoverable passkey alone.
    sign_out(&b, &fd).await;
    b.goto(&at(&fd, "/wiki/alone")).await;
    assert_eq!(b.path().await, "/_frontdoor/login");
    b.screenshot("login-passkey").await;
    b.fits_a_phone("login-passkey").await;
    click_and_wait(&b, "#passkey-signin").await;
    assert_eq!(
        b.path().await,
        "/wiki/alone",
        "signed in with the passkey alone"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-amr").as_deref(),
        Some("swk,mfa"),
        "a key and the authenticator's user verification: two factors"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-email").as_deref(),
        Some(ANN.0)
    );

    // The list says when it was used; removing it leaves none.
    b.goto(&at(&fd, SECURITY)).await;
    assert_ne!(b.text(".last-used").await, "never", "its last use is shown");
    b.click_and_wait(".remove-passkey").await;
    assert!(b.has("#no-passkeys").await, "{}", b.body_text().await);
    sign_out(&b, &fd).await;
    b.goto(&at(&fd, "/wiki")).await;
    b.sign_in(ANN.0, ANN.4).await;
    assert!(
        !b.has("#use-passkey").await,
        "a removed passkey is not offered"
    );
    // Nor does it sign in without a password any more: the authenticator still holds it.
    sign_out(&b, &fd).await;
    b.goto(&at(&fd, "/wiki")).await;
    click_and_wait(&b, "#passkey-signin").await;
    assert!(
        b.has("#password").await,
        "refused: back to the sign-in form"
    );
    assert!(b.text("#error").await.contains("Wrong email or password"));
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_a_one_factor_session_steps_up_with_a_passkey() {
    let (upstream, fd) = on_localhost_with(|u| {
        Config::new().route(
            Route::new("/", u)
                .rule(Rule::new("two_factor").paths(&["/secret/**"]))
                .rule(Rule::new("authenticated")),
        )
    })
    .await;
    let b = browser_with_authenticator().await;
    // Signed in with the password before the passkey existed: one factor.
    b.goto(&at(&fd, SECURITY)).await;
    b.sign_in(ANN.0, ANN.4).await;
    register(&b, &fd, "Phone").await;
    b.goto(&at(&fd, "/secret/plans")).await;
    assert_eq!(b.path().await, "/_frontdoor/step-up");
    click_and_wait(&b, "#use-passkey").await;
    assert_eq!(
        b.path().await,
        "/secret/plans",
        "stepped up, back at the URL it asked for"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-amr").as_deref(),
        Some("pwd,swk,mfa")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_another_users_credential_and_replayed_ceremonies_are_refused() {
    let (upstream, fd) = on_localhost().await;
    let b = browser_with_authenticator().await;

    // Both users register a passkey on the one authenticator.
    b.goto(&at(&fd, SECURITY)).await;
    b.sign_in(ANN.0, ANN.4).await;
    register(&b, &fd, "Ann's key").await;
    let anns = first_passkey_id(&b).await;
    sign_out(&b, &fd).await;
    b.goto(&at(&fd, SECURITY)).await;
    b.sign_in(BOB.0, BOB.4).await;
    b.fill("#passkey-name", "Bob's key").await;
    keep_on_submit(&b, "passkey-form", &["ceremony", "credential"]).await;
    click_and_wait(&b, "#add-passkey").await;
    assert!(b.body_text().await.contains("Bob's key"));
    let bobs = first_passkey_id(&b).await;
    assert_ne!(anns, bobs);

    // A registration answered twice: its challenge was spent by the first answer.
    let (ceremony, credential) = (kept(&b, "ceremony").await, kept(&b, "credential").await);
    b.goto(&at(&fd, SECURITY)).await;
    post_with(
        &b,
        "#passkey-form",
        json!({ "ceremony": ceremony, "credential": credential, "name": "again" }),
    )
    .await;
    assert!(
        b.body_text().await.contains("expired or was already used"),
        "{}",
        b.body_text().await
    );
    b.goto(&at(&fd, SECURITY)).await;
    assert!(!b.body_text().await.contains("again"), "nothing registered");

    // Bob removing Ann's passkey: not his, nothing removed.
    b.goto(&at(&fd, SECURITY)).await;
    post_with(&b, "form.remove-form", json!({ "id": anns })).await;
    assert!(
        b.body_text().await.contains("no such passkey"),
        "{}",
        b.body_text().await
    );
    sign_out(&b, &fd).await;

    // Bob's sign-in answered with Ann's credential (the options edited to allow it): the
    // authenticator signs, webauthn-rs refuses a credential that is not Bob's.
    let failures_before = failures(&fd).await;
    b.goto(&at(&fd, "/wiki")).await;
    b.sign_in(BOB.0, BOB.4).await;
    b.client
        .execute(
            "var b = document.getElementById('use-passkey'); \
             var o = JSON.parse(b.getAttribute('data-options')); \
             o.publicKey.allowCredentials = [{ type: 'public-key', id: arguments[0] }]; \
             b.setAttribute('data-options', JSON.stringify(o));",
            vec![json!(anns)],
        )
        .await
        .expect("edit the options");
    click_and_wait(&b, "#use-passkey").await;
    assert!(b.has("#password").await, "back to the sign-in form");
    assert!(
        b.text("#error").await.contains("Wrong email or password"),
        "answered as a wrong password"
    );
    assert_eq!(
        failures(&fd).await,
        failures_before + 1,
        "counted by the regulation"
    );
    assert!(
        fd.log().contains("a passkey assertion was refused"),
        "webauthn-rs checked the assertion and refused it"
    );

    // Bob's own passkey signs him in; its assertion replayed in a new sign-in is refused.
    b.goto(&at(&fd, "/wiki")).await;
    b.sign_in(BOB.0, BOB.4).await;
    keep_on_submit(&b, "second-factor-form", &["passkey"]).await;
    click_and_wait(&b, "#use-passkey").await;
    assert_eq!(b.path().await, "/wiki");
    assert_eq!(
        upstream.last().header("x-auth-request-email").as_deref(),
        Some(BOB.0)
    );
    let assertion = kept(&b, "passkey").await;
    sign_out(&b, &fd).await;
    b.goto(&at(&fd, "/wiki")).await;
    b.sign_in(BOB.0, BOB.4).await;
    post_with(&b, "#second-factor-form", json!({ "passkey": assertion })).await;
    assert!(b.has("#password").await, "the replay is refused");
    assert!(b.text("#error").await.contains("Wrong email or password"));
}

/// Failed second factors so far, from the metrics.
async fn failures(fd: &Frontdoor) -> u64 {
    fd.metrics()
        .await
        .lines()
        .find(|l| {
            l.starts_with("frontdoor_logins_total")
                && l.contains("method=\"second_factor\"")
                && l.contains("outcome=\"failure\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_passkey_endpoints_refuse_a_missing_or_foreign_csrf_token() {
    let (_upstream, fd) = on_localhost().await;
    let (client, _jar) = browser_with_jar();
    let landed = browser_login(&client, &at(&fd, "/wiki"), ANN.0, ANN.4).await;
    assert_eq!(landed.status(), 200);
    let page = client.get(at(&fd, SECURITY)).send().await.expect("page");
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf token");

    // The right token opens a registration (the options of a real ceremony)...
    let options = client
        .post(at(&fd, "/_frontdoor/settings/security/passkeys/options"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("options");
    assert_eq!(options.status(), 200);
    let body: Value = options.json().await.expect("json");
    assert_eq!(body["options"]["publicKey"]["rp"]["id"], "localhost");
    assert!(body["ceremony"].as_str().is_some_and(|c| c.len() >= 20));

    // ...no token or another's is refused on every passkey endpoint, nothing done.
    for path in ["/options", "", "/remove"] {
        let url = at(
            &fd,
            &format!("/_frontdoor/settings/security/passkeys{path}"),
        );
        for token in ["", "forged-token"] {
            let resp = client
                .post(&url)
                .form(&[
                    ("csrf_token", token),
                    ("ceremony", body["ceremony"].as_str().unwrap_or("")),
                    ("credential", "{}"),
                    ("id", "x"),
                ])
                .send()
                .await
                .expect("post");
            assert_eq!(resp.status(), 403, "{path} with token {token:?}");
        }
    }
    // The passwordless sign-in, without a session: the same.
    for path in [
        "/_frontdoor/login/passkey/options",
        "/_frontdoor/login/passkey",
    ] {
        for token in ["", "forged-token"] {
            let resp = client
                .post(at(&fd, path))
                .form(&[("csrf_token", token), ("ceremony", "x"), ("passkey", "{}")])
                .send()
                .await
                .expect("post");
            assert_eq!(resp.status(), 403, "{path} with token {token:?}");
        }
    }
    // A cross-site JSON post has no form token either.
    let resp = client
        .post(at(&fd, "/_frontdoor/settings/security/passkeys/options"))
        .header("content-type", "application/json")
        .body(format!("{{\"csrf_token\":\"{csrf}\"}}"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn passwordless_is_neither_offered_nor_answered_where_second_factors_are_off() {
    let (_upstream, fd) =
        on_localhost_with(|u| Config::standard(u).set("second_factor", "off")).await;
    let client = browser();
    let page = client
        .get(at(&fd, "/_frontdoor/login"))
        .send()
        .await
        .expect("login page");
    let html = page.text().await.expect("html");
    assert!(!html.contains("passkey-signin"), "no passkey button");
    let csrf = form_field(&html, "csrf_token").expect("csrf token");
    let resp = client
        .post(at(&fd, "/_frontdoor/login/passkey/options"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("options");
    assert_eq!(resp.status(), 409, "no ceremony starts");
}
