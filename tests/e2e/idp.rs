//! A real upstream OpenID Connect provider for the federation tests: the `oidc-provider` npm
//! package run by tests/support/oidc-provider/provider.js (Node), with one confidential client,
//! users with passwords, its own login and consent pages, RP-initiated and back-channel logout.
//!
//! What the provider expects of a relying party: authorization code flow with PKCE (S256,
//! required), `client_secret_basic` or `client_secret_post` at the token endpoint, scopes
//! `openid email profile groups` (claims `email`, `email_verified`, `name`, `groups`, `roles`,
//! all in the ID token as well as at userinfo), ID tokens signed RS256, `iss` on the
//! authorization response.
//!
//! Logout: RP-initiated through the provider's end_session endpoint (`idp_end_session`, or
//! `Idp::end_session` for a sign-out at the provider itself), or without a browser through the
//! provider's test endpoint `/test/logout?sub=` (`Idp::logout_user`); each POSTs a
//! `logout_token` (with `sid`) to the client's `backchannel_logout_uri` before it answers.
//! The provider's cookies are `idp_session`, `idp_interaction` and `idp_interaction_resume`
//! (a browser sends them to every port of 127.0.0.1). Needs Node.js 20.12 or later and
//! `npm ci` in tests/support/oidc-provider (scripts/test.sh does both).
#![allow(dead_code)] // shared helpers; not every test uses every one

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{free_port, location, navigate};

const PROVIDER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc-provider");

/// A running provider on 127.0.0.1 (killed on drop).
pub struct Idp {
    pub port: u16,
    /// `http://127.0.0.1:<port>`, exactly as in its discovery document and ID tokens.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Idp {
    /// Starts the provider with one client and these users: a JSON array of
    /// `{sub, email, email_verified, name, groups: [..], roles: [..], password}`; they sign in
    /// with their email (or sub) and password.
    pub async fn start(
        client_id: &str,
        client_secret: &str,
        redirect_uris: &[String],
        backchannel_logout_uri: Option<String>,
        post_logout_redirect_uris: &[String],
        users: serde_json::Value,
    ) -> Idp {
        Idp::start_on(
            free_port(),
            client_id,
            client_secret,
            redirect_uris,
            backchannel_logout_uri,
            post_logout_redirect_uris,
            users,
        )
        .await
    }

    /// Like [`Idp::start`], on a port chosen beforehand (with `free_port`): for a relying
    /// party configured with the provider's issuer before the provider runs.
    pub async fn start_on(
        port: u16,
        client_id: &str,
        client_secret: &str,
        redirect_uris: &[String],
        backchannel_logout_uri: Option<String>,
        post_logout_redirect_uris: &[String],
        users: serde_json::Value,
    ) -> Idp {
        let provider_js = Path::new(PROVIDER_DIR).join("provider.js");
        assert!(
            Path::new(PROVIDER_DIR)
                .join("node_modules/oidc-provider")
                .is_dir(),
            "the test OpenID provider's packages are missing: run \
             `(cd tests/support/oidc-provider && npm ci)` (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let users_file = dir.path().join("users.json");
        std::fs::write(
            &users_file,
            serde_json::to_vec_pretty(&users).expect("users JSON"),
        )
        .expect("write users");
        let log = std::fs::File::create(dir.path().join("idp.log")).expect("idp log");

        let mut cmd = Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()));
        cmd.arg(&provider_js)
            .arg("--port")
            .arg(port.to_string())
            .arg("--client-id")
            .arg(client_id)
            .arg("--client-secret")
            .arg(client_secret)
            .arg("--users")
            .arg(&users_file);
        for uri in redirect_uris {
            cmd.arg("--redirect-uri").arg(uri);
        }
        for uri in post_logout_redirect_uris {
            cmd.arg("--post-logout-redirect-uri").arg(uri);
        }
        if let Some(uri) = &backchannel_logout_uri {
            cmd.arg("--backchannel-logout-uri").arg(uri);
        }
        let mut child = cmd
            .current_dir(PROVIDER_DIR)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn node (is Node.js installed?)");

        // stdout carries `ready` once it listens; keep draining it afterwards.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "ready" {
                    let _ = tx.send(());
                }
            }
        });

        let mut idp = Idp {
            port,
            issuer: format!("http://127.0.0.1:{port}"),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            dir,
            child: Some(child),
        };
        // Node loads oidc-provider in about a second; CI once saw no `ready` within 30 s while
        // four test threads shared two cores, so the wait is long and its failure says whether
        // the process was starved (little CPU time) or stuck (a lot).
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        loop {
            if rx.try_recv().is_ok() {
                return idp;
            }
            if let Some(status) = idp.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("the OpenID provider exited with {status}:\n{}", idp.log());
            }
            assert!(
                Instant::now() < deadline,
                "the OpenID provider did not print `ready` within {:?} ({}):\n{}",
                started.elapsed(),
                idp.child
                    .as_ref()
                    .map_or_else(String::new, |c| cpu_time(c.id())),
                idp.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.url("/.well-known/openid-configuration")
    }

    /// The provider's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("idp.log")).unwrap_or_default()
    }

    /// Ends, at the provider and without a browser, every session of the user `sub`: for each
    /// client of each session it first POSTs the back-channel `logout_token` to the client's
    /// `backchannel_logout_uri` and waits for the answer. Returns the provider's report,
    /// `{"sessions": n, "delivered": [{"client_id", "sid"}], "failed": [{"client_id", "sid",
    /// "error"}]}`.
    pub async fn logout_user(&self, sub: &str) -> serde_json::Value {
        let resp = reqwest::Client::new()
            .get(self.url("/test/logout"))
            .query(&[("sub", sub)])
            .send()
            .await
            .expect("GET /test/logout");
        assert!(
            resp.status().is_success(),
            "/test/logout: {}",
            resp.status()
        );
        resp.json().await.expect("/test/logout JSON")
    }

    /// The user's live provider sessions: `[{"uid", "clients": {client_id: {"sid"}}}]`.
    pub async fn sessions(&self, sub: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(self.url("/test/sessions"))
            .query(&[("sub", sub)])
            .send()
            .await
            .expect("GET /test/sessions")
            .json()
            .await
            .expect("/test/sessions JSON")
    }

    /// The user signs out at the provider itself in this browser (provider-initiated, no
    /// client named): its end_session page, confirmed. Back-channel logouts have been
    /// delivered when this returns. Returns the provider's final redirect (to its own
    /// "signed out" page), not followed.
    pub async fn end_session(&self, client: &reqwest::Client) -> reqwest::Response {
        let page = navigate(client, &self.url("/session/end")).await;
        idp_end_session(client, page).await
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `action` (absolute, against `base`) and every named `input` of the first form that
/// `selector` matches.
fn html_form(
    html: &str,
    selector: &str,
    base: &reqwest::Url,
) -> Option<(String, Vec<(String, String)>)> {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse(selector).expect("selector");
    let input_sel = scraper::Selector::parse("input[name]").expect("selector");
    let form = doc.select(&form_sel).next()?;
    let action = base
        .join(form.value().attr("action").unwrap_or(""))
        .expect("form action")
        .to_string();
    let fields = form
        .select(&input_sel)
        .filter_map(|e| {
            Some((
                e.value().attr("name")?.to_string(),
                e.value().attr("value").unwrap_or("").to_string(),
            ))
        })
        .collect();
    Some((action, fields))
}

fn origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .expect("url")
        .origin()
        .ascii_serialization()
}

/// Signs in at the provider like a browser: from `authorize_response` (the relying party's
/// redirect to the provider's `/auth`, or the provider's answer at `/auth`), follows redirects
/// on the provider, fills its login form (`form#login-form`: `login`, `password`) and its
/// consent form (`form#consent-form`) as they come (either is skipped when the provider has a session or a grant already), and returns the
/// provider's redirect back to the relying party (its callback with `code`, `state`, `iss`, or
/// with `error`), not followed. Panics, showing the page, on anything else (a wrong password
/// included: the provider answers 401 with the login form again).
pub async fn idp_sign_in(
    client: &reqwest::Client,
    authorize_response: reqwest::Response,
    login: &str,
    password: &str,
) -> reqwest::Response {
    assert!(
        authorize_response.status().is_redirection(),
        "expected a redirect to the provider, got {} from {}",
        authorize_response.status(),
        authorize_response.url()
    );
    // Usually the relying party's redirect to the provider; it may also be the provider's own
    // answer at its /auth (already redirecting back when its session and grant stand).
    let own = authorize_response.url();
    let provider = if own.path() == "/auth" || own.path().starts_with("/auth/") {
        own.origin().ascii_serialization()
    } else {
        origin(&location(&authorize_response))
    };
    let mut resp = authorize_response;
    for _ in 0..20 {
        if resp.status().is_redirection() {
            let next = location(&resp);
            if origin(&next) != provider {
                return resp;
            }
            resp = navigate(client, &next).await;
            continue;
        }
        let status = resp.status();
        let url = resp.url().clone();
        let html = resp.text().await.expect("provider page");
        assert_eq!(
            status, 200,
            "the provider answered {status} at {url}:\n{html}"
        );
        if let Some((action, mut fields)) = html_form(&html, "form#login-form", &url) {
            fields.retain(|(k, _)| k != "login" && k != "password");
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), password.into()));
            resp = client
                .post(&action)
                .form(&fields)
                .send()
                .await
                .expect("post login");
            if resp.status() == 401 {
                panic!("the provider refused the password of {login}");
            }
        } else if let Some((action, fields)) = html_form(&html, "form#consent-form", &url) {
            resp = client
                .post(&action)
                .form(&fields)
                .send()
                .await
                .expect("post consent");
        } else {
            panic!("neither a login nor a consent form at {url}:\n{html}");
        }
    }
    panic!("too many steps at the provider");
}

/// Signs out at the provider like a browser: from `end_session` (a redirect to the provider's
/// end_session endpoint, as a relying party sends for RP-initiated logout with `id_token_hint`,
/// `post_logout_redirect_uri`, `state`; or that endpoint's page itself), confirms the
/// provider's logout form (`form#logout-form`, hidden `xsrf` and `logout=yes`). The provider
/// POSTs the back-channel `logout_token` to every client of the session and waits for those
/// answers before it answers this; returns its redirect (303 to the `post_logout_redirect_uri`
/// with `state`, or to its own "signed out" page), not followed.
pub async fn idp_end_session(
    client: &reqwest::Client,
    end_session: reqwest::Response,
) -> reqwest::Response {
    let mut resp = end_session;
    for _ in 0..5 {
        if !resp.status().is_redirection() {
            break;
        }
        resp = navigate(client, &location(&resp)).await;
    }
    let status = resp.status();
    let url = resp.url().clone();
    let html = resp.text().await.expect("end_session page");
    assert_eq!(
        status, 200,
        "the provider's end_session answered {status} at {url}:\n{html}"
    );
    // With a session the provider shows form#logout-form; without one it answers a
    // self-submitting form with the same fields.
    let (action, fields) = html_form(&html, "form#logout-form", &url)
        .or_else(|| html_form(&html, "form", &url))
        .unwrap_or_else(|| panic!("no logout form at {url}:\n{html}"));
    let posted = client
        .post(&action)
        .form(&fields)
        .send()
        .await
        .expect("post logout");
    assert!(
        posted.status().is_redirection(),
        "the provider's logout confirmation answered {}",
        posted.status()
    );
    posted
}

// ---------------------------------------------------------------------------------------------
// The provider and these helpers on their own, with the `openidconnect` crate as the relying
// party (frontdoor is not involved).

mod self_test {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use base64::Engine as _;
    use jwt_simple::prelude::*;
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
    };
    use openidconnect::{
        AdditionalClaims, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
        IdTokenClaims, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    };
    use serde_json::json;

    use super::*;
    use crate::harness::browser;

    /// The relying party's callback: never contacted, only compared.
    const CALLBACK: &str = "http://127.0.0.1:9/federation/callback";
    const AFTER_LOGOUT: &str = "http://127.0.0.1:9/signed-out";

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct GroupClaims {
        groups: Vec<String>,
        roles: Vec<String>,
    }
    impl AdditionalClaims for GroupClaims {}
    type Claims = IdTokenClaims<GroupClaims, CoreGenderClaim>;

    /// A back-channel logout receiver: keeps each `logout_token` POSTed to it.
    async fn logout_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
        let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = tokens.clone();
        let app = axum::Router::new().route(
            "/backchannel-logout",
            axum::routing::post(
                move |axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>| {
                    let keep = keep.clone();
                    async move {
                        keep.lock()
                            .expect("lock")
                            .push(form.get("logout_token").cloned().unwrap_or_default());
                        ""
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (
            format!("http://127.0.0.1:{port}/backchannel-logout"),
            tokens,
        )
    }

    fn query(resp: &reqwest::Response) -> HashMap<String, String> {
        let url = reqwest::Url::parse(&location(resp)).expect("url");
        url.query_pairs().into_owned().collect()
    }

    /// Verifies a logout token's signature against the provider's JWKS; returns its claims.
    async fn verify_logout_token(idp: &Idp, token: &str) -> serde_json::Value {
        let jwks: serde_json::Value = reqwest::get(idp.url("/jwks"))
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks JSON");
        let key = &jwks["keys"][0];
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v.as_str().expect("jwk member"))
                .expect("base64url")
        };
        let public =
            RS256PublicKey::from_components(&b64(&key["n"]), &b64(&key["e"])).expect("RSA key");
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from_strings(&[&idp.issuer])),
            allowed_audiences: Some(HashSet::from_strings(&[&idp.client_id])),
            ..Default::default()
        };
        let claims = public
            .verify_token::<serde_json::Value>(token, Some(options))
            .expect("the logout token verifies");
        let mut all = claims.custom;
        all["sub"] = json!(claims.subject);
        all
    }

    #[tokio::test]
    async fn the_test_provider_signs_in_with_pkce_and_sends_backchannel_logouts() {
        let (receiver, logout_tokens) = logout_receiver().await;
        let idp = Idp::start(
            "frontdoor",
            "upstream-secret",
            &[CALLBACK.to_string()],
            Some(receiver),
            &[AFTER_LOGOUT.to_string()],
            json!([
                {"sub": "u-alice", "email": "alice@example.com", "email_verified": true,
                 "name": "Alice Liddell", "groups": ["admins", "staff"], "roles": ["editor"],
                 "password": "down the rabbit hole"}
            ]),
        )
        .await;

        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(idp.issuer.clone()).expect("issuer"),
            &http,
        )
        .await
        .expect("discovery");
        let rp = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(idp.client_id.clone()),
            Some(ClientSecret::new(idp.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).expect("redirect"));

        let browser = browser();
        let mut id_tokens = Vec::new();
        // First with client_secret_basic and both forms; then with client_secret_post, the
        // provider's session and grant standing, so no form at all.
        for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            let (url, state, nonce) = rp
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .add_scope(Scope::new("email".into()))
                .add_scope(Scope::new("profile".into()))
                .add_scope(Scope::new("groups".into()))
                .set_pkce_challenge(challenge)
                .url();
            let first = navigate(&browser, url.as_str()).await;
            let back =
                idp_sign_in(&browser, first, "alice@example.com", "down the rabbit hole").await;
            assert!(location(&back).starts_with(CALLBACK), "{}", location(&back));
            let params = query(&back);
            assert_eq!(&params["state"], state.secret());
            assert_eq!(params["iss"], idp.issuer);
            let tokens = rp
                .clone()
                .set_auth_type(auth_type)
                .exchange_code(AuthorizationCode::new(params["code"].clone()))
                .expect("token endpoint")
                .set_pkce_verifier(verifier)
                .request_async(&http)
                .await
                .expect("code exchange");
            let id_token = tokens.id_token().expect("ID token");
            let id_token: openidconnect::IdToken<
                GroupClaims,
                CoreGenderClaim,
                openidconnect::core::CoreJweContentEncryptionAlgorithm,
                openidconnect::core::CoreJwsSigningAlgorithm,
            > = serde_json::from_value(serde_json::to_value(id_token).expect("ser"))
                .expect("ID token with groups");
            let claims: &Claims = id_token
                .claims(&rp.id_token_verifier(), &nonce)
                .expect("RS256 signature, issuer, audience, nonce");
            assert_eq!(claims.subject().as_str(), "u-alice");
            assert_eq!(
                claims.email().map(|e| e.as_str()),
                Some("alice@example.com")
            );
            assert_eq!(claims.email_verified(), Some(true));
            assert_eq!(
                claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
                Some("Alice Liddell")
            );
            assert_eq!(claims.additional_claims().groups, ["admins", "staff"]);
            assert_eq!(claims.additional_claims().roles, ["editor"]);
            id_tokens.push(id_token.to_string());
        }

        // A wrong password gets the login form again with a 401.
        {
            let other = crate::harness::browser();
            let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
            let (url, _, _) = rp
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .set_pkce_challenge(challenge)
                .url();
            let to_login = navigate(&other, url.as_str()).await;
            let page = navigate(&other, &location(&to_login)).await;
            let page_url = page.url().clone();
            let html = page.text().await.expect("login page");
            let (action, _) = html_form(&html, "form#login-form", &page_url).expect("login form");
            let refused = other
                .post(&action)
                .form(&[("login", "alice@example.com"), ("password", "wrong")])
                .send()
                .await
                .expect("post");
            assert_eq!(refused.status(), 401);
            // And PKCE is required.
            let no_pkce = url
                .as_str()
                .split('&')
                .filter(|p| !p.starts_with("code_challenge"))
                .collect::<Vec<_>>()
                .join("&");
            let refused = navigate(&other, &no_pkce).await;
            assert!(location(&refused).contains("error=invalid_request"));
        }

        // The user's provider session, with the client's sid.
        let sessions = idp.sessions("u-alice").await;
        let sid = sessions[0]["clients"]["frontdoor"]["sid"]
            .as_str()
            .expect("a sid for the client")
            .to_string();

        // RP-initiated logout: the provider's end_session page, confirmed; the back-channel
        // logout arrives before the provider answers.
        let end_session = format!(
            "{}/session/end?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
            idp.issuer,
            id_tokens[1],
            url::form_urlencoded::byte_serialize(AFTER_LOGOUT.as_bytes()).collect::<String>()
        );
        let page = navigate(&browser, &end_session).await;
        let done = idp_end_session(&browser, page).await;
        assert_eq!(location(&done), format!("{AFTER_LOGOUT}?state=bye"));
        let token = logout_tokens
            .lock()
            .expect("lock")
            .pop()
            .expect("a logout token");
        let claims = verify_logout_token(&idp, &token).await;
        assert_eq!(claims["sub"], "u-alice");
        assert_eq!(claims["sid"], sid.as_str());
        assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
        assert_eq!(idp.sessions("u-alice").await, json!([]));

        // Signed out: the login form again; sign in, then the test endpoint ends the session.
        let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _, _) = rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("groups".into()))
            .set_pkce_challenge(challenge)
            .url();
        let to_login = navigate(&browser, url.as_str()).await;
        let page = navigate(&browser, &location(&to_login)).await;
        assert!(
            page.text()
                .await
                .expect("page")
                .contains("id=\"login-form\"")
        );
        let first = navigate(&browser, url.as_str()).await;
        let back = idp_sign_in(&browser, first, "u-alice", "down the rabbit hole").await;
        assert!(query(&back).contains_key("code"));
        let report = idp.logout_user("u-alice").await;
        assert_eq!(report["sessions"], 1, "{report}");
        assert_eq!(report["delivered"][0]["client_id"], "frontdoor", "{report}");
        let token = logout_tokens
            .lock()
            .expect("lock")
            .pop()
            .expect("a logout token");
        let claims = verify_logout_token(&idp, &token).await;
        assert_eq!(claims["sid"], report["delivered"][0]["sid"]);

        // Provider-initiated logout with no session left still goes through.
        let done = idp.end_session(&browser).await;
        assert!(location(&done).starts_with(&idp.url("/session/end/success")));
    }
}

/// The process's state and CPU time so far, from `/proc/<pid>/stat` (Linux).
fn cpu_time(pid: u32) -> String {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return format!("pid {pid}: no /proc entry");
    };
    // The fields after the parenthesised command name: state is the first, utime and stime
    // the 12th and 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    format!(
        "pid {pid}, state {}, CPU user {} ms, system {} ms",
        fields.first().unwrap_or(&"?"),
        ticks(11) * 10,
        ticks(12) * 10
    )
}
