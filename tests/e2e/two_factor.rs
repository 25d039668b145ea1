//! Second factors end to end: an authenticator app enrolled from the settings page (the test
//! reads the secret off the page and computes codes with its own RFC 6238, not frontdoor's
//! crate), sign-in with password and code, replayed and wrong codes, recovery codes, the
//! half-signed-in state between the factors, step-up on a `two_factor` route, `amr`/`acr` in
//! ID tokens as a relying-party library reads them, and the configuration.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreProviderMetadata,
};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, RedirectUrl, TokenResponse,
};
use serde_json::Value;

use crate::harness::*;
use crate::oauth::{CALLBACK, Rp, callback_params, rp_http};

const PW: &str = TEAM_PW;
const ACR_2FA: &str = "urn:frontdoor:acr:2fa";

// ---------------------------------------------------------------------------------------------
// The test's own TOTP (RFC 6238 over RFC 4226, HMAC-SHA-1, 6 digits, 30 s).

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.trim().trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 secret") as u32;
        value = (value << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

fn hotp(secret: &[u8], counter: u64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn the_tests_totp_matches_rfc_6238() {
    // RFC 6238 Appendix B, SHA-1 (the last six of its eight digits).
    let secret = b"12345678901234567890";
    assert_eq!(hotp(secret, 59 / 30), "287082");
    assert_eq!(hotp(secret, 1_111_111_109 / 30), "081804");
    assert_eq!(hotp(secret, 2_000_000_000 / 30), "279037");
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQ"), b"1234567890");
}

/// An authenticator app: hands out codes of steps never used before (frontdoor accepts each
/// step once, within one step of its clock).
struct App {
    secret: Vec<u8>,
    last: u64,
}

impl App {
    async fn next(&mut self) -> String {
        loop {
            let current = unix_now() / 30;
            let step = (self.last + 1).max(current - 1);
            if step <= current + 1 {
                self.last = step;
                return hotp(&self.secret, step);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// The code of the step before the last one handed out: never accepted any more.
    fn stale(&self) -> String {
        hotp(&self.secret, self.last - 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Pages.

fn text_of(html: &str, selector: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).expect("selector");
    doc.select(&sel)
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

async fn get_html(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = navigate(client, url).await;
    let status = r.status().as_u16();
    (status, r.text().await.expect("html"))
}

async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(url).form(form).send().await.expect("post")
}

/// Enrols an authenticator app in `client`'s session: the secret read off the page (in text;
/// the QR code is there too), a wrong code refused first, then the right one; the app and the
/// ten recovery codes shown once.
async fn enrol(fd: &Frontdoor, client: &reqwest::Client) -> (App, Vec<String>) {
    let (status, html) = get_html(client, &fd.url("/_frontdoor/settings/security/totp")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<svg"), "a QR code drawn as SVG");
    let secret = text_of(&html, "#totp-secret")
        .pop()
        .expect("the secret in text");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let mut app = App {
        secret: base32_decode(&secret),
        last: 0,
    };
    assert_eq!(app.secret.len(), 20, "160 bits");
    let url = fd.url("/_frontdoor/settings/security/totp");
    let wrong = hotp(&app.secret, unix_now() / 30 + 5);
    let refused = post_form(client, &url, &[("csrf_token", &csrf), ("code", &wrong)]).await;
    assert_eq!(
        refused.status(),
        422,
        "a wrong first code does not turn the app on"
    );
    let (_, page) = get_html(client, &fd.url("/_frontdoor/settings/security")).await;
    assert!(page.contains("id=\"totp-off\""), "still off: {page}");
    // The page again continues the same enrolment (a new GET would start another).
    let code = app.next().await;
    let forged = post_form(client, &url, &[("csrf_token", "forged"), ("code", &code)]).await;
    assert_eq!(forged.status(), 403, "CSRF on the enrolment form");
    let done = post_form(client, &url, &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(done.status(), 200);
    let html = done.text().await.expect("html");
    let codes = text_of(&html, ".recovery-code");
    assert_eq!(codes.len(), 10, "ten recovery codes shown once: {html}");
    assert!(html.contains("id=\"totp-on\""));
    (app, codes)
}

/// The sign-in form posted in a new browser, starting at `path`: the answer to the POST.
async fn password_step(fd: &Frontdoor, client: &reqwest::Client, path: &str) -> reqwest::Response {
    let first = navigate(client, &fd.url(path)).await;
    let login = follow(client, first, None).await;
    assert_eq!(login.url().path(), "/_frontdoor/login");
    submit_login(client, login, ANN.0, PW).await
}

/// The second-factor form's hidden fields (after a right password).
async fn second_factor_form(resp: reqwest::Response) -> (String, String) {
    assert_eq!(
        resp.status(),
        200,
        "a right password asks for the second factor"
    );
    assert!(
        set_cookie(&resp, "frontdoor_session").is_none(),
        "no session before the second factor"
    );
    let html = resp.text().await.expect("html");
    let pending = form_field(&html, "pending").expect("the half-signed-in token");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    (pending, csrf)
}

async fn submit_second(
    fd: &Frontdoor,
    client: &reqwest::Client,
    pending: &str,
    csrf: &str,
    code: &str,
) -> reqwest::Response {
    post_form(
        client,
        &fd.url("/_frontdoor/login/second-factor"),
        &[("pending", pending), ("csrf_token", csrf), ("code", code)],
    )
    .await
}

/// The error a sign-in page shows, with its status.
async fn shown_error(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let html = resp.text().await.expect("html");
    (status, text_of(&html, "#error").pop().unwrap_or_default())
}

/// Ann signed in (one factor) in a new browser, with the settings page open to her.
async fn ann_session(fd: &Frontdoor) -> reqwest::Client {
    let (client, _) = signed_in(fd, "/wiki", ANN.0, PW).await;
    client
}

// ---------------------------------------------------------------------------------------------
// 1. Enrolment and sign-in.

#[tokio::test]
async fn totp_enrolment_then_sign_in_with_password_and_code_replays_refused_recovery_codes_once() {
    let (upstream, fd) = setup_with(Config::standard, &[ANN]).await;
    let settings = ann_session(&fd).await;
    let (status, html) = get_html(&settings, &fd.url("/_frontdoor/settings/security")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"enrol\""),
        "offers the enrolment: {html}"
    );
    let (mut app, recovery) = enrol(&fd, &settings).await;

    // Password, then a code from the app: signed in with two factors.
    let first_browser = browser();
    let (pending, csrf) =
        second_factor_form(password_step(&fd, &first_browser, "/wiki/2fa").await).await;
    let code = app.next().await;
    let done = submit_second(&fd, &first_browser, &pending, &csrf, &code).await;
    assert_eq!(done.status(), 303, "{:?}", shown_error(done).await);
    let landed = follow(&first_browser, done, None).await;
    assert_eq!(landed.status(), 200);
    assert_eq!(
        landed.url().path(),
        "/wiki/2fa",
        "back where the sign-in started"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-amr").as_deref(),
        Some("pwd,otp,mfa"),
        "the upstream is told how the user signed in"
    );

    // The same code again (its step was used): refused like a wrong password.
    let replay = browser();
    let (pending, csrf) = second_factor_form(password_step(&fd, &replay, "/wiki").await).await;
    let again = submit_second(&fd, &replay, &pending, &csrf, &code).await;
    assert!(set_cookie(&again, "frontdoor_session").is_none());
    assert_eq!(
        shown_error(again).await,
        (401, "Wrong email or password.".into())
    );
    // And a code of an older step.
    let (pending, csrf) = second_factor_form(password_step(&fd, &replay, "/wiki").await).await;
    let stale = submit_second(&fd, &replay, &pending, &csrf, &app.stale()).await;
    assert_eq!(stale.status(), 401);

    // A recovery code works once, typed in any case and without its dash.
    let typed = recovery[3].replace('-', "").to_uppercase();
    let rescue = browser();
    let (pending, csrf) = second_factor_form(password_step(&fd, &rescue, "/wiki").await).await;
    let ok = submit_second(&fd, &rescue, &pending, &csrf, &typed).await;
    assert_eq!(ok.status(), 303, "a recovery code signs in");
    let twice = browser();
    let (pending, csrf) = second_factor_form(password_step(&fd, &twice, "/wiki").await).await;
    let refused = submit_second(&fd, &twice, &pending, &csrf, &recovery[3]).await;
    assert_eq!(refused.status(), 401, "a recovery code is good once");

    // New recovery codes replace the old ones (CSRF checked).
    let (_, html) = get_html(&settings, &fd.url("/_frontdoor/settings/security")).await;
    assert!(html.contains("9 recovery codes left"), "{html}");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let url = fd.url("/_frontdoor/settings/security/recovery-codes");
    let forged = post_form(&settings, &url, &[("csrf_token", "x")]).await;
    assert_eq!(forged.status(), 403, "CSRF on the regeneration form");
    let fresh = post_form(&settings, &url, &[("csrf_token", &csrf)]).await;
    let new_codes = text_of(&fresh.text().await.expect("html"), ".recovery-code");
    assert_eq!(new_codes.len(), 10);
    let old = browser();
    let (pending, csrf) = second_factor_form(password_step(&fd, &old, "/wiki").await).await;
    let stale = submit_second(&fd, &old, &pending, &csrf, &recovery[5]).await;
    assert_eq!(stale.status(), 401, "old recovery codes stop working");

    // The login API asks for the second factor in the same request.
    let api = |body: Value| {
        let url = fd.url("/api/v1/login-check");
        async move {
            let r = plain_client()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("login-check");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    let (status, body) = api(serde_json::json!({"email": ANN.0, "password": PW})).await;
    assert_eq!(status, 401, "no token on the password alone: {body}");
    assert_eq!(body["error"]["code"], "invalid_credentials");
    let code = app.next().await;
    let (status, body) =
        api(serde_json::json!({"email": ANN.0, "password": PW, "second_factor": code})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string());
    // So does the emailed-code API.
    let verify = |body: Value| {
        let url = fd.url("/api/v1/verify-login-otp");
        async move {
            let r = plain_client()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("verify-login-otp");
            r.status().as_u16()
        }
    };
    let mailed = emailed_code(&fd, ANN.0).await;
    let status = verify(serde_json::json!({"email": ANN.0, "code": mailed})).await;
    assert_eq!(status, 401, "an emailed code alone is one factor");
    // A second code: the outbox's newest message, once it is not the first one.
    let first_mail = mailed;
    let mut mailed = emailed_code(&fd, ANN.0).await;
    for _ in 0..50 {
        if mailed != first_mail {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        mailed = outbox_code(&fd, ANN.0).await;
    }
    let code = app.next().await;
    let status =
        verify(serde_json::json!({"email": ANN.0, "code": mailed, "second_factor": code})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_an_app_is_enrolled_from_its_qr_page_and_asked_for_at_the_next_sign_in() {
    use crate::chromium::Chromium;
    let (_upstream, fd) = setup_with(Config::standard, &[ANN]).await;
    let b = Chromium::start().await;
    b.goto(&fd.url("/_frontdoor/settings/security")).await;
    b.sign_in(ANN.0, PW).await;
    assert_eq!(b.path().await, "/_frontdoor/settings/security");
    b.click_and_wait("#enrol").await;
    // The QR code is drawn: an SVG of real size on the page.
    let qr = b.find("#qr svg").await;
    let size = qr.rectangle().await.expect("svg box");
    assert!(
        size.2 >= 200.0 && size.3 >= 200.0,
        "a visible QR code: {size:?}"
    );
    b.screenshot("totp-enrol").await;
    let secret = b.text("#totp-secret").await;
    let mut app = App {
        secret: base32_decode(&secret),
        last: 0,
    };
    b.fill("#code", &app.next().await).await;
    b.click_and_wait("#confirm").await;
    assert_eq!(
        b.client
            .find_all(fantoccini::Locator::Css(".recovery-code"))
            .await
            .expect("codes")
            .len(),
        10
    );
    b.screenshot("totp-recovery-codes").await;
    b.client.set_window_size(390, 844).await.expect("resize");
    b.screenshot("totp-recovery-codes-phone").await;
    b.client.set_window_size(1280, 900).await.expect("resize");

    // Another browser: the password, then the second-factor page, then the wiki.
    let other = Chromium::start().await;
    other.goto(&fd.url("/wiki/start")).await;
    other.sign_in(ANN.0, PW).await;
    assert_eq!(other.path().await, "/_frontdoor/login");
    assert!(other.has("#second-factor-form").await, "asks for the code");
    other.screenshot("second-factor").await;
    other
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    other.screenshot("second-factor-phone").await;
    other.fill("#code", &app.next().await).await;
    other.click_and_wait("#verify").await;
    assert_eq!(other.path().await, "/wiki/start");
}

// ---------------------------------------------------------------------------------------------
// 2. Attacks on the second step.

#[tokio::test]
async fn wrong_codes_read_like_a_wrong_password_and_count_for_the_regulation() {
    let (_upstream, fd) = setup_with(
        |u| Config::standard(u).set("regulation.max_failures_per_account", 3),
        &[ANN],
    )
    .await;
    let settings = ann_session(&fd).await;
    let (mut app, _) = enrol(&fd, &settings).await;

    // Someone who guessed the password but has not the phone learns nothing more from a
    // wrong code than from a wrong password: the same page, status and words.
    let wrong_password = {
        let client = browser();
        let first = navigate(&client, &fd.url("/wiki")).await;
        let login = follow(&client, first, None).await;
        shown_error(submit_login(&client, login, ANN.0, "not the password").await).await
    };
    assert_eq!(wrong_password, (401, "Wrong email or password.".into()));
    let guesser = browser();
    let (pending, csrf) = second_factor_form(password_step(&fd, &guesser, "/wiki").await).await;
    let wrong_code = hotp(&app.secret, unix_now() / 30 + 7);
    let answer = submit_second(&fd, &guesser, &pending, &csrf, &wrong_code).await;
    assert_eq!(shown_error(answer).await, wrong_password);

    // Two failures so far (the wrong password, the wrong code), and a right password in
    // between did not forget them: the third failure bans this account from this address.
    let (pending, csrf) = second_factor_form(password_step(&fd, &guesser, "/wiki").await).await;
    let banned = submit_second(&fd, &guesser, &pending, &csrf, "zzzzz-zzzzz").await;
    assert_eq!(banned.status(), 429, "a wrong recovery code counts too");
    assert!(banned.headers().get("retry-after").is_some());
    // Now even the right password and a right code are refused until the ban ends.
    let client = browser();
    let first = navigate(&client, &fd.url("/wiki")).await;
    let login = follow(&client, first, None).await;
    let refused = submit_login(&client, login, ANN.0, PW).await;
    assert_eq!(refused.status(), 429);
    let _ = app.next().await;
    let metrics = fd.metrics().await;
    assert!(
        metrics.contains("method=\"second_factor\",outcome=\"failure\""),
        "wrong second factors are counted: {metrics}"
    );
}

#[tokio::test]
async fn the_half_signed_in_state_is_single_use_bound_to_its_browser_and_needs_a_password_first() {
    let (_upstream, fd) = setup_with(Config::standard, &[ANN]).await;
    let settings = ann_session(&fd).await;
    let (mut app, _) = enrol(&fd, &settings).await;
    let url = fd.url("/_frontdoor/login/second-factor");

    // The second-factor page without a right password first: nothing to continue.
    let stranger = browser();
    let csrf = login_csrf(&stranger, &fd).await;
    let code = app.next().await;
    for pending in ["", "made-up-token"] {
        let r = post_form(
            &stranger,
            &url,
            &[("pending", pending), ("csrf_token", &csrf), ("code", &code)],
        )
        .await;
        assert!(set_cookie(&r, "frontdoor_session").is_none());
        let (status, error) = shown_error(r).await;
        assert_eq!(status, 400);
        assert!(error.contains("expired or was already used"), "{error}");
    }

    // CSRF on the second-factor form.
    let victim = browser();
    let (pending, _) = second_factor_form(password_step(&fd, &victim, "/wiki").await).await;
    let forged = submit_second(&fd, &victim, &pending, "forged", &code).await;
    assert_eq!(forged.status(), 403);

    // The token (a hidden field) used from another browser, even with a right code: refused,
    // and spent: the victim's browser cannot use it either.
    let (pending, csrf) = second_factor_form(password_step(&fd, &victim, "/wiki").await).await;
    let thief = browser();
    let thief_csrf = login_csrf(&thief, &fd).await;
    let stolen = submit_second(&fd, &thief, &pending, &thief_csrf, &code).await;
    assert!(set_cookie(&stolen, "frontdoor_session").is_none());
    assert_eq!(stolen.status(), 400, "bound to the browser it started in");
    let after = submit_second(&fd, &victim, &pending, &csrf, &code).await;
    assert_eq!(after.status(), 400, "spent by the first submission");

    // A right sign-in, then its token again: single use.
    let (pending, csrf) = second_factor_form(password_step(&fd, &victim, "/wiki").await).await;
    let ok = submit_second(&fd, &victim, &pending, &csrf, &code).await;
    assert_eq!(ok.status(), 303);
    let reused = submit_second(&fd, &victim, &pending, &csrf, &app.next().await).await;
    assert_eq!(reused.status(), 400, "a used token never signs in again");
}

// ---------------------------------------------------------------------------------------------
// 3. Step-up on a `two_factor` route.

#[tokio::test]
async fn a_one_factor_session_steps_up_on_a_two_factor_route_and_returns_to_its_url() {
    let config = |u: u16| {
        Config::new().route(
            Route::new("/", u)
                .rule(Rule::new("two_factor").paths(&["/secret/**"]))
                .rule(Rule::new("authenticated")),
        )
    };
    let (upstream, fd) = setup_with(config, &[ANN]).await;
    // Browser A signs in before Ann has a factor (one factor); browser B enrols.
    let (a, a_cookie) = signed_in(&fd, "/wiki", ANN.0, PW).await;
    let b = ann_session(&fd).await;
    let (mut app, _) = enrol(&fd, &b).await;

    // Not for a script with the one-factor session, nor for an Api-Token: 403, JSON.
    let before = upstream.count();
    let xhr = a
        .get(fd.url("/secret/report"))
        .header("X-Requested-With", "XMLHttpRequest")
        // A client cannot say how it signed in.
        .header("X-Auth-Request-Amr", "pwd,otp,mfa")
        .send()
        .await
        .expect("xhr");
    assert_eq!(xhr.status(), 403);
    let body: Value = xhr.json().await.expect("the JSON envelope");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let token = fd.api_token(&["--user", ANN.0]);
    let api = plain_client()
        .get(fd.url("/secret/report"))
        .header("Api-Token", &token)
        .send()
        .await
        .expect("api");
    assert_eq!(api.status(), 403);
    assert_eq!(upstream.count(), before, "nothing reached the upstream");

    // The browser: the round trip asks for two factors, the step-up page asks for the code.
    let original = "/secret/report?year=2026&q=a%20b";
    let first = navigate(&a, &fd.url(original)).await;
    assert_eq!(first.status(), 302);
    assert!(location(&first).contains("acr_values=urn%3Afrontdoor%3Aacr%3A2fa"));
    let page = follow(&a, first, None).await;
    assert_eq!(page.url().path(), "/_frontdoor/step-up");
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let return_to = form_field(&html, "return_to").expect("return_to");
    assert!(return_to.starts_with("/oauth/authorize?"), "{return_to}");
    let step_up = fd.url("/_frontdoor/step-up");
    let code = app.next().await;
    let forged = post_form(
        &a,
        &step_up,
        &[
            ("csrf_token", "x"),
            ("return_to", &return_to),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(forged.status(), 403, "CSRF on the step-up form");
    let wrong = post_form(
        &a,
        &step_up,
        &[
            ("csrf_token", &csrf),
            ("return_to", &return_to),
            ("code", "000000"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let done = post_form(
        &a,
        &step_up,
        &[
            ("csrf_token", &csrf),
            ("return_to", &return_to),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(done.status(), 303);
    let landed = follow(&a, done, None).await;
    assert_eq!(landed.status(), 200);
    assert_eq!(
        landed.url().as_str(),
        fd.url(original),
        "back on the URL it asked for"
    );
    assert_eq!(
        upstream.last().header("x-auth-request-amr").as_deref(),
        Some("pwd,otp,mfa")
    );
    let spoofed = a
        .get(fd.url("/wiki"))
        .header("X-Auth-Request-Amr", "hwk")
        .header("x_auth_request_amr", "hwk")
        .send()
        .await
        .expect("spoof");
    assert_eq!(spoofed.status(), 200);
    assert_eq!(
        upstream.last().header("x-auth-request-amr").as_deref(),
        Some("pwd,otp,mfa"),
        "the client's copies are stripped"
    );
    assert!(upstream.last().header("x_auth_request_amr").is_none());

    // The step-up rotated the session: the cookie from before it no longer works.
    let old = plain_client()
        .get(fd.url("/wiki"))
        .header("Cookie", format!("frontdoor_session={a_cookie}"))
        .header("X-Requested-With", "XMLHttpRequest")
        .send()
        .await
        .expect("old cookie");
    assert_eq!(old.status(), 401, "the one-factor session id is gone");

    // No open redirect out of the step-up page.
    let evil = navigate(
        &a,
        &fd.url("/_frontdoor/step-up?return_to=%2F%2Fevil.example"),
    )
    .await;
    assert_eq!(evil.status(), 303);
    assert_eq!(location(&evil), fd.url("/"));
}

#[tokio::test(flavor = "multi_thread")]
async fn on_an_app_host_the_step_up_goes_through_the_own_host_and_back() {
    let config = |u: u16| {
        Config::new()
            .route(
                Route::new("/", u)
                    .host("wiki.localhost")
                    .rule(Rule::new("two_factor").paths(&["/secret/**"]))
                    .rule(Rule::new("authenticated")),
            )
            .route(Route::new("/", u))
    };
    let (upstream, fd) = setup_with(config, &[ANN]).await;
    let wiki = format!("http://wiki.localhost:{}", fd.port);
    // One browser signed in on the app host (and the own host) with one factor...
    let a = crate::hosts::browser_for("wiki.localhost", &fd);
    let landed = browser_login(&a, &format!("{wiki}/page"), ANN.0, PW).await;
    assert_eq!(landed.status(), 200);
    // ...while Ann enrols elsewhere.
    let b = ann_session(&fd).await;
    let (mut app, _) = enrol(&fd, &b).await;

    let original = format!("{wiki}/secret/doc?v=2");
    let first = navigate(&a, &original).await;
    assert_eq!(first.status(), 302);
    let to = location(&first);
    assert!(
        to.starts_with(&fd.url("/oauth/authorize?acr_values=")),
        "to the own host, asking for two factors: {to}"
    );
    let page = follow(&a, first, None).await;
    assert_eq!(page.url().path(), "/_frontdoor/step-up");
    assert_eq!(page.url().host_str(), Some("127.0.0.1"), "on the own host");
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let return_to = form_field(&html, "return_to").expect("return_to");
    let code = app.next().await;
    let done = post_form(
        &a,
        &fd.url("/_frontdoor/step-up"),
        &[
            ("csrf_token", &csrf),
            ("return_to", &return_to),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(done.status(), 303);
    let back = follow(&a, done, None).await;
    assert_eq!(back.status(), 200);
    assert_eq!(back.url().as_str(), original, "back on the app host's URL");
    assert_eq!(
        upstream.last().header("x-auth-request-amr").as_deref(),
        Some("pwd,otp,mfa"),
        "the app host's new session carries the two factors"
    );
}

#[tokio::test]
async fn second_factor_required_sends_a_user_without_one_to_enrol_first() {
    let (upstream, fd) = setup_with(
        |u| Config::standard(u).set("second_factor", "required"),
        &[ANN],
    )
    .await;
    let client = browser();
    let posted = password_step(&fd, &client, "/wiki/page").await;
    assert_eq!(posted.status(), 303);
    let next = location(&posted);
    assert!(
        next.starts_with(&fd.url("/_frontdoor/settings/security/totp?return_to=")),
        "{next}"
    );
    // The one-factor session reaches no route meanwhile: the step-up leads to enrolment.
    let before = upstream.count();
    let blocked = follow(
        &client,
        navigate(&client, &fd.url("/wiki/page")).await,
        None,
    )
    .await;
    assert_eq!(blocked.url().path(), "/_frontdoor/settings/security/totp");
    assert_eq!(upstream.count(), before);
    let (_app, _codes) = enrol(&fd, &client).await;
    let now = navigate(&client, &fd.url("/wiki/page")).await;
    let landed = follow(&client, now, None).await;
    assert_eq!(
        landed.status(),
        200,
        "enrolled: the session has two factors"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. ID tokens and the authorization request.

/// One authorization in `browser` (signed in already), as the relying party sends it; the
/// ID token's `amr` and `acr` as the `openidconnect` crate verifies and reads them.
async fn id_token_amr(
    rp: &Rp,
    browser: &reqwest::Client,
    acr: Option<&str>,
) -> (Vec<String>, Option<String>) {
    let http = rp_http();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    if let Some(acr) = acr {
        request = request.add_auth_context_value(AuthenticationContextClass::new(acr.into()));
    }
    let (url, _state, nonce) = request.url();
    let back = navigate(browser, url.as_str()).await;
    let params = callback_params(&back, CALLBACK);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("a valid ID token");
    let amr = claims
        .auth_method_refs()
        .map(|v| v.iter().map(|m| m.as_str().to_string()).collect())
        .unwrap_or_default();
    (
        amr,
        claims.auth_context_ref().map(|a| a.as_str().to_string()),
    )
}

#[tokio::test]
async fn id_tokens_carry_amr_and_acr_and_prompt_login_or_max_age_0_ask_to_sign_in_again() {
    let (_upstream, fd) = setup_with(Config::standard, &[ANN]).await;
    let (client_id, secret) = fd.create_app(&[
        "--name",
        "Wiki",
        "--redirect-uri",
        CALLBACK,
        "--first-party",
    ]);
    let http = rp_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(fd.issuer()).expect("issuer"), &http)
            .await
            .expect("discovery");
    let discovery: Value = reqwest::get(fd.url("/.well-known/openid-configuration"))
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["acr_values_supported"],
        serde_json::json!(["urn:frontdoor:acr:1fa", ACR_2FA])
    );
    let rp: Rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).expect("redirect"));

    let (browser, _) = signed_in(&fd, "/wiki", ANN.0, PW).await;
    let (amr, acr) = id_token_amr(&rp, &browser, None).await;
    assert_eq!(amr, ["pwd"]);
    assert_eq!(acr.as_deref(), Some("urn:frontdoor:acr:1fa"));

    // prompt=login and max_age=0 send a signed-in browser to sign in again.
    for prompt_login in [true, false] {
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let request = rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        let request = if prompt_login {
            request.add_prompt(CoreAuthPrompt::Login)
        } else {
            request.set_max_age(Duration::ZERO)
        };
        let (url, _, _) = request.url();
        let asked = navigate(&browser, url.as_str()).await;
        assert_eq!(asked.status(), 302);
        let login = location(&asked);
        assert!(login.starts_with(&fd.url("/_frontdoor/login?")), "{login}");
        // Signing in again finishes the authorization (the request loses the prompt / max_age).
        let page = navigate(&browser, &login).await;
        let posted = submit_login(&browser, page, ANN.0, PW).await;
        let back = follow(&browser, posted, Some(CALLBACK)).await;
        assert!(callback_params(&back, CALLBACK).contains_key("code"));
    }

    // Enrolment steps the session up: two factors, as the relying party reads them.
    let (_app, _) = enrol(&fd, &browser).await;
    let (amr, acr) = id_token_amr(&rp, &browser, Some(ACR_2FA)).await;
    assert_eq!(amr, ["pwd", "otp", "mfa"]);
    assert_eq!(acr.as_deref(), Some(ACR_2FA));
}

// ---------------------------------------------------------------------------------------------
// 5. Configuration.

#[tokio::test]
async fn check_config_accepts_two_factor_and_second_factor_and_names_bad_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base =
        "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8080\n";
    let route = "routes:\n  - host: wiki\n    upstream: http://127.0.0.1:1\n";
    let check = |yaml: String| {
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, &yaml).expect("write");
        let out = cli_with_config(&path, &["check-config"], None);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = check(format!(
        "{base}second_factor: optional\ntenants:\n  - {{ id: acme, hosts: [acme.example], second_factor: required }}\n  - {{ id: lab, hosts: [lab.example], second_factor: 'off' }}\n{route}    rules: [ {{ paths: ['/admin/**'], policy: two_factor }}, {{ policy: authenticated }} ]\n"
    ));
    assert!(ok, "{err}");
    for (yaml, expected) in [
        (
            format!("{base}second_factor: sometimes\n{route}"),
            "second_factor: unknown variant `sometimes`, expected one of `off`, `optional`, `required`",
        ),
        (
            format!(
                "{base}tenants:\n  - {{ id: acme, hosts: [a.example], second_factor: yes }}\n{route}"
            ),
            "tenants[0].second_factor: unknown variant `yes`",
        ),
        (
            format!(
                "{base}tenants:\n  - {{ id: acme, hosts: [a.example], second_factors: required }}\n{route}"
            ),
            "tenants[0].second_factors: unknown field `second_factors`",
        ),
        (
            format!("{base}{route}    rules: [ {{ policy: two_factors }} ]\n"),
            "routes[0].rules[0].policy: `two_factors` is not a policy: deny, bypass, authenticated, read_write or two_factor",
        ),
    ] {
        let (ok, err) = check(yaml.clone());
        assert!(!ok, "accepted:\n{yaml}");
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// An administrator's reset of a user's factors.

async fn reset_by_api(fd: &Frontdoor, token: &str, id: &str) -> (u16, Value) {
    let resp = plain_client()
        .post(fd.url(&format!("/api/v1/users/{id}/reset-factors")))
        .header("Api-Token", token)
        .send()
        .await
        .expect("reset");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_administrator_resets_a_users_factors_by_page_api_and_cli_and_nobody_else_can() {
    let (_upstream, fd) = setup_with(Config::standard, &[ANN, BOB, ROOT]).await;
    let ann = fd.user_id(ANN.0);
    let settings = ann_session(&fd).await;
    enrol(&fd, &settings).await;
    let users_page = format!("/_frontdoor/settings/users/{ann}/reset-factors");

    // Not an administrator: refused on the page and by the API, and nothing changes.
    let bob = signed_in(&fd, "/wiki", BOB.0, PW).await.0;
    let (_, html) = get_html(&bob, &fd.url("/_frontdoor/settings/security/password")).await;
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let refused = post_form(&bob, &fd.url(&users_page), &[("csrf_token", &csrf)]).await;
    assert_eq!(refused.status(), 403);
    let bob_token = fd.api_token(&["--user", BOB.0, "--name", "bob"]);
    let (status, body) = reset_by_api(&fd, &bob_token, &ann).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["status"], 403, "the shared envelope: {body}");
    second_factor_form(password_step(&fd, &browser(), "/wiki").await).await;

    // The administrator's page: CSRF checked, then the factors are gone and Ann's sessions end.
    let root = signed_in(&fd, "/wiki", ROOT.0, PW).await.0;
    let (status, html) =
        get_html(&root, &fd.url(&format!("/_frontdoor/settings/users/{ann}"))).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"reset-factors\""), "{html}");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    let forged = post_form(&root, &fd.url(&users_page), &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403, "CSRF");
    let done = post_form(&root, &fd.url(&users_page), &[("csrf_token", &csrf)]).await;
    assert_eq!(done.status(), 303);
    assert!(
        location(&done).ends_with("?done=factors-reset"),
        "{}",
        location(&done)
    );
    let gone = navigate(&settings, &fd.url("/wiki")).await;
    assert_eq!(gone.status(), 302, "Ann's session ended with the reset");
    let signed = password_step(&fd, &browser(), "/wiki").await;
    assert_eq!(
        signed.status(),
        303,
        "the password alone signs in again: no second-factor page"
    );
    assert!(set_cookie(&signed, "frontdoor_session").is_some());

    // The API: Ann enrols again, an administrator's token resets it, then finds nothing left.
    let settings = ann_session(&fd).await;
    enrol(&fd, &settings).await;
    let root_token = fd.api_token(&["--user", ROOT.0, "--name", "root"]);
    let (status, body) = reset_by_api(&fd, &root_token, &ann).await;
    assert_eq!(
        (status, &body["factors_removed"]),
        (200, &Value::Bool(true)),
        "{body}"
    );
    assert_eq!(body["email"], ANN.0);
    let (status, body) = reset_by_api(&fd, &root_token, &ann).await;
    assert_eq!(
        (status, &body["factors_removed"]),
        (200, &Value::Bool(false)),
        "{body}"
    );
    let (status, body) = reset_by_api(&fd, &root_token, "no-such-user").await;
    assert_eq!(status, 404, "{body}");

    // The CLI says what it found.
    let out = fd.cli_ok(&["users", "reset-factors", "--email", ANN.0], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("had no second factor"), "{text}");
}
