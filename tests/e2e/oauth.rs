//! The embedded OAuth 2.0 / OpenID Connect provider, end to end: a third-party relying party
//! (the `openidconnect` crate) signs users in with Authorization Code + PKCE, and every way of
//! getting it wrong gets the answer RFC 6749, RFC 7636, RFC 9207, RFC 7662 and RFC 7009 ask for.

use std::collections::HashMap;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::harness::*;

pub(crate) const PASSWORD: &str = "correct horse battery";
pub(crate) const EMAIL: &str = "ann@example.com";
const NAME: &str = "Ann Example";
/// Where the third-party app wants its users back; never contacted, only compared.
pub(crate) const CALLBACK: &str = "https://notes.example/oauth/callback";
/// A fresh frontdoor with Ann, who is in two groups and has two roles, its config changed by
/// `tune`. A route is required by nothing here; one that is never used keeps the config
/// realistic.
pub(crate) async fn start(tune: impl FnOnce(Config) -> Config) -> Frontdoor {
    let fd = Frontdoor::launch(tune(Config::new().route(Route::new("/app", 9)))).await;
    fd.add_user(EMAIL, NAME, "wiki,ops", "ROLE_USER,ROLE_EDITOR", PASSWORD);
    fd
}

/// A third-party (consent-asking) confidential app; returns (client_id, secret).
pub(crate) fn third_party_app(fd: &Frontdoor) -> (String, String) {
    let (id, secret) = fd.create_app(&["--name", "Acme Notes", "--redirect-uri", CALLBACK]);
    (id, secret.expect("a confidential app gets a secret"))
}

// ---------------------------------------------------------------------------------------------
// The relying party's side, with the `openidconnect` crate.

pub(crate) type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The claims frontdoor adds beside the standard ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrgClaims {
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}
impl AdditionalClaims for OrgClaims {}

/// The relying party's HTTP client: never follows redirects (as the crate advises).
pub(crate) fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Discovers frontdoor and builds a relying party for this app.
async fn relying_party(
    fd: &Frontdoor,
    http: &openidconnect::reqwest::Client,
    client_id: &str,
    secret: Option<&str>,
) -> Rp {
    let issuer = IssuerUrl::new(fd.issuer()).expect("issuer URL");
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .expect("OpenID Connect discovery (document and JWKS) succeeds");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_string()),
        secret.map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.to_string()).expect("redirect URL"))
}

/// The whole flow as a relying party sees it: authorize URL, the user signs in and approves,
/// code exchange, ID token validation (signature, issuer, audience, nonce, at_hash), userinfo,
/// refresh. `secret` is `None` for a public app.
async fn relying_party_flow(fd: &Frontdoor, client_id: &str, secret: Option<&str>) {
    let http = rp_http();
    let rp = relying_party(fd, &http, client_id, secret).await;
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The user's browser: sign in, then the consent page names the app, the user and scopes.
    let browser = browser();
    let first = navigate(&browser, auth_url.as_str()).await;
    let page = sign_in(&browser, fd, first).await;
    let html = consent_html(page).await;
    assert!(
        html.contains("Acme Notes"),
        "the consent page names the app"
    );
    assert!(html.contains(EMAIL), "the consent page names the user");
    assert!(html.contains("See your email address"), "lists the scopes");
    let back = submit_consent(&browser, fd, &html, "approve").await;
    let params = callback_params(&back, CALLBACK);
    assert_eq!(
        &params["state"],
        csrf_state.secret(),
        "the state comes back"
    );
    assert_eq!(params["iss"], fd.issuer(), "RFC 9207 iss on success");

    // The app's backend exchanges the code.
    let tokens = rp
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("token endpoint known")
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http)
        .await
        .expect("the code exchange succeeds");
    let granted: Vec<String> = tokens
        .scopes()
        .expect("the granted scope is returned")
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in ["openid", "profile", "email", "offline_access"] {
        assert!(granted.iter().any(|g| g == s), "{s} granted: {granted:?}");
    }

    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let verifier = rp.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token's signature, issuer, audience, expiry and nonce are valid");
    assert_eq!(claims.issuer().as_str(), fd.issuer());
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some(NAME)
    );
    let expected_hash = claims.access_token_hash().expect("at_hash in the ID token");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("key from the JWKS"),
    )
    .expect("hash");
    assert_eq!(
        &actual_hash, expected_hash,
        "at_hash binds the access token"
    );

    // Userinfo: what the scopes allow, nothing more.
    let info: UserInfoClaims<OrgClaims, CoreGenderClaim> = rp
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("userinfo answers for the access token");
    assert_eq!(info.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some(NAME)
    );
    assert!(
        info.additional_claims().groups.is_none(),
        "no groups without the groups scope"
    );
    assert!(
        info.additional_claims().roles.is_none(),
        "no roles without the roles scope"
    );

    // Refresh: a new access token and a new (rotated) refresh token.
    let refresh = tokens
        .refresh_token()
        .expect("offline_access yields a refresh token");
    let refreshed = rp
        .exchange_refresh_token(refresh)
        .expect("token endpoint known")
        .request_async(&http)
        .await
        .expect("the refresh succeeds");
    let rotated = refreshed
        .refresh_token()
        .expect("the refresh answer carries the next refresh token");
    assert_ne!(rotated.secret(), refresh.secret(), "refresh tokens rotate");
    let again: UserInfoClaims<OrgClaims, CoreGenderClaim> = rp
        .user_info(
            refreshed.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("the refreshed access token works at userinfo");
    assert_eq!(again.email().map(|e| e.as_str()), Some(EMAIL));
}

// ---------------------------------------------------------------------------------------------
// The user's browser and the app's raw HTTP calls.

pub(crate) fn authorize_url(fd: &Frontdoor, params: &[(&str, &str)]) -> String {
    let mut u = Url::parse(&fd.url("/oauth/authorize")).expect("url");
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// The authorization URL of a code flow with S256 PKCE, back to [`CALLBACK`].
pub(crate) fn code_url(
    fd: &Frontdoor,
    client_id: &str,
    scope: &str,
    state: &str,
    challenge: &str,
) -> String {
    authorize_url(
        fd,
        &[
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    )
}

/// A fresh S256 PKCE pair: (challenge, verifier).
pub(crate) fn pkce() -> (String, String) {
    let (c, v) = PkceCodeChallenge::new_random_sha256();
    (c.as_str().to_string(), v.secret().to_string())
}

/// `resp` must be the authorization endpoint sending the browser to sign in; fills the login
/// form and returns the authorization endpoint's answer once signed in.
pub(crate) async fn sign_in(
    browser: &reqwest::Client,
    fd: &Frontdoor,
    resp: reqwest::Response,
) -> reqwest::Response {
    assert_eq!(resp.status(), 302, "the authorize endpoint asks to sign in");
    let login_url = location(&resp);
    assert!(
        login_url.starts_with(&fd.url("/_frontdoor/login?")),
        "to the login page: {login_url}"
    );
    let page = navigate(browser, &login_url).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("login html");
    let csrf = form_field(&html, "csrf_token").expect("csrf_token on the login form");
    let return_to = form_field(&html, "return_to").expect("return_to on the login form");
    assert!(
        return_to.starts_with("/oauth/authorize?"),
        "back to the authorization after login: {return_to}"
    );
    let posted = browser
        .post(fd.url("/_frontdoor/login"))
        .form(&[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("post login");
    assert!(
        posted.status().is_redirection(),
        "login succeeds, got {}",
        posted.status()
    );
    navigate(browser, &location(&posted)).await
}

/// The HTML of a consent page (asserts it is one).
async fn consent_html(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200, "expected the consent page");
    let html = resp.text().await.expect("consent html");
    assert!(is_consent_page(&html), "expected the consent page:\n{html}");
    html
}

fn is_consent_page(html: &str) -> bool {
    form_fields(html, "consent-form")
        .iter()
        .any(|(k, _)| k == "csrf_token")
}

/// Clicks one of the consent page's buttons.
async fn submit_consent(
    browser: &reqwest::Client,
    fd: &Frontdoor,
    html: &str,
    decision: &str,
) -> reqwest::Response {
    let mut fields = form_fields(html, "consent-form");
    fields.push(("decision".into(), decision.into()));
    browser
        .post(fd.url("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .expect("post consent")
}

/// The query of a redirect back to the app; asserts it goes exactly to `redirect_uri`.
pub(crate) fn callback_params(
    resp: &reqwest::Response,
    redirect_uri: &str,
) -> HashMap<String, String> {
    assert_eq!(resp.status(), 302, "a redirect back to the app");
    let loc = location(resp);
    let url = Url::parse(&loc).expect("absolute Location");
    let mut base = url.clone();
    base.set_query(None);
    assert_eq!(base.as_str(), redirect_uri, "back to the registered URI");
    let mut out = HashMap::new();
    for (k, v) in url.query_pairs() {
        assert!(
            out.insert(k.to_string(), v.to_string()).is_none(),
            "`{k}` appears once in {loc}"
        );
    }
    out
}

/// Runs an authorization as Ann in `browser` (signing in and approving when asked) and
/// returns (code, PKCE verifier).
async fn get_code(
    browser: &reqwest::Client,
    fd: &Frontdoor,
    client_id: &str,
    scope: &str,
) -> (String, String) {
    let (challenge, verifier) = pkce();
    let url = code_url(fd, client_id, scope, "st-42", &challenge);
    let mut resp = navigate(browser, &url).await;
    if resp.status() == 302 && location(&resp).starts_with(&fd.url("/_frontdoor/login")) {
        resp = sign_in(browser, fd, resp).await;
    }
    if resp.status() == 200 {
        let html = consent_html(resp).await;
        resp = submit_consent(browser, fd, &html, "approve").await;
    }
    let p = callback_params(&resp, CALLBACK);
    assert_eq!(p["state"], "st-42");
    (p["code"].clone(), verifier)
}

/// How the app authenticates at the token, introspection and revocation endpoints.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Public(&'a str),
}

/// A JSON answer of an OAuth endpoint.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    cache_control: Option<String>,
    www_authenticate: Option<String>,
    body: Value,
}

impl Answer {
    async fn read(resp: reqwest::Response) -> Answer {
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .map(|v| v.to_str().expect("header text").to_string())
        };
        let (content_type, cache_control, www_authenticate) = (
            header("content-type"),
            header("cache-control"),
            header("www-authenticate"),
        );
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a JSON body ({e}), got {status}: {text}"));
        Answer {
            status,
            content_type,
            cache_control,
            www_authenticate,
            body,
        }
    }

    fn str(&self, key: &str) -> &str {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("`{key}` is a string in {}", self.body))
    }

    /// RFC 6749 §5.2: this status, `{"error": error, "error_description": "…"}`, never cached.
    #[track_caller]
    fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["error"], error, "{:?}", self.body);
        let description = self.body["error_description"]
            .as_str()
            .unwrap_or_else(|| panic!("an error_description string: {}", self.body));
        assert!(!description.is_empty());
        let keys: Vec<&String> = self.body.as_object().expect("an object").keys().collect();
        assert!(
            keys.iter()
                .all(|k| ["error", "error_description", "error_uri"].contains(&k.as_str())),
            "only RFC 6749 members: {keys:?}"
        );
        assert_json_no_store(self);
    }
}

#[track_caller]
fn assert_json_no_store(a: &Answer) {
    assert!(
        a.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json")),
        "JSON content type: {:?}",
        a.content_type
    );
    assert!(
        a.cache_control
            .as_deref()
            .is_some_and(|c| c.contains("no-store")),
        "Cache-Control: no-store, got {:?}",
        a.cache_control
    );
}

/// POSTs a form to an OAuth endpoint with the app's authentication.
async fn post_form(fd: &Frontdoor, path: &str, auth: Auth<'_>, form: &[(&str, &str)]) -> Answer {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut req = plain_client().post(fd.url(path));
    match auth {
        Auth::Basic(id, secret) => req = req.basic_auth(id, Some(secret)),
        Auth::Post(id, secret) => {
            fields.push(("client_id", id));
            fields.push(("client_secret", secret));
        }
        Auth::Public(id) => fields.push(("client_id", id)),
    }
    Answer::read(req.form(&fields).send().await.expect("post")).await
}

async fn exchange(fd: &Frontdoor, auth: Auth<'_>, code: &str, verifier: &str) -> Answer {
    post_form(
        fd,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(fd: &Frontdoor, auth: Auth<'_>, refresh_token: &str) -> Answer {
    post_form(
        fd,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn userinfo(fd: &Frontdoor, access_token: &str) -> Answer {
    Answer::read(
        plain_client()
            .get(fd.url("/oauth/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo"),
    )
    .await
}

/// A successful token answer: its tokens, and it is never cached (RFC 6749 §5.1).
#[track_caller]
fn tokens_of(a: &Answer) -> (String, Option<String>) {
    assert_eq!(a.status, 200, "token answer: {}", a.body);
    assert_json_no_store(a);
    assert_eq!(a.body["token_type"], "Bearer");
    (
        a.str("access_token").to_string(),
        a.body["refresh_token"].as_str().map(str::to_string),
    )
}

/// The claims of a JWT, unverified (the relying-party tests verify signatures).
fn jwt_payload(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// An error page of the authorization endpoint: no redirect anywhere.
pub(crate) async fn assert_error_page(resp: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(resp.status(), status);
    assert!(
        resp.headers().get("location").is_none(),
        "an error page, never a redirect: {:?}",
        resp.headers().get("location")
    );
    let html = resp.text().await.expect("page");
    assert!(html.contains(needle), "the page says `{needle}`:\n{html}");
}

// ---------------------------------------------------------------------------------------------
// 1. The flow with a real relying-party library.

#[tokio::test]
async fn confidential_app_signs_in_with_code_and_pkce_using_openidconnect() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    relying_party_flow(&fd, &client_id, Some(&secret)).await;
}

#[tokio::test]
async fn with_an_es256_key_a_relying_party_verifies_id_tokens_from_the_jwks() {
    let fd = start(|c| c.set("keys.algorithm", "ES256")).await;
    let jwks = fd.jwks().await;
    assert_eq!(jwks["keys"][0]["kty"], "EC", "{jwks}");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    let discovery: Value = fd.discovery().await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    // The openidconnect crate checks the ID token's ES256 signature against the JWKS, and
    // at_hash with SHA-256; the access token works at userinfo and the refresh rotates.
    let (client_id, secret) = third_party_app(&fd);
    relying_party_flow(&fd, &client_id, Some(&secret)).await;
}

#[tokio::test]
async fn public_app_signs_in_with_pkce_and_no_secret_using_openidconnect() {
    let fd = start(|c| c).await;
    let (client_id, secret) = fd.create_app(&[
        "--name",
        "Acme Notes",
        "--redirect-uri",
        CALLBACK,
        "--public",
    ]);
    assert!(secret.is_none(), "a public client has no secret");
    relying_party_flow(&fd, &client_id, None).await;
}

#[tokio::test]
async fn userinfo_and_id_token_claims_follow_the_granted_scopes() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);
    let browser = browser();

    let (code, verifier) = get_code(&browser, &fd, &client_id, "openid groups roles").await;
    let answer = exchange(&fd, auth, &code, &verifier).await;
    let (access, refresh_token) = tokens_of(&answer);
    assert!(
        refresh_token.is_none(),
        "no refresh token without offline_access"
    );
    let id = jwt_payload(answer.str("id_token"));
    assert_eq!(id["groups"], serde_json::json!(["wiki", "ops"]));
    assert_eq!(id["roles"], serde_json::json!(["ROLE_USER", "ROLE_EDITOR"]));
    for absent in ["name", "email"] {
        assert!(
            id.get(absent).is_none(),
            "no `{absent}` in the ID token: {id}"
        );
    }
    let info = userinfo(&fd, &access).await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert!(info.body["sub"].is_string());
    assert_eq!(info.body["groups"], serde_json::json!(["wiki", "ops"]));
    assert_eq!(
        info.body["roles"],
        serde_json::json!(["ROLE_USER", "ROLE_EDITOR"])
    );
    for absent in ["name", "picture", "email", "email_verified"] {
        assert!(
            info.body.get(absent).is_none(),
            "no `{absent}` without its scope: {}",
            info.body
        );
    }

    let (code, verifier) = get_code(&browser, &fd, &client_id, "openid profile").await;
    let answer = exchange(&fd, auth, &code, &verifier).await;
    let (access, _) = tokens_of(&answer);
    let id = jwt_payload(answer.str("id_token"));
    assert_eq!(id["name"], NAME);
    for absent in ["email", "groups", "roles", "picture"] {
        assert!(
            id.get(absent).is_none(),
            "no `{absent}` in the ID token: {id}"
        );
    }
    let info = userinfo(&fd, &access).await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.body["name"], NAME);
    for absent in ["email", "groups", "roles"] {
        assert!(
            info.body.get(absent).is_none(),
            "no `{absent}` without its scope: {}",
            info.body
        );
    }
    // OIDC Core §5.3.2: a claim without a value is omitted, not null (Ann has no picture).
    assert!(
        info.body.get("picture").is_none(),
        "no null picture: {}",
        info.body
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Each mistake gets the right answer.

#[tokio::test]
async fn redirect_uri_mismatch_is_an_error_page_without_any_redirect() {
    let fd = start(|c| c).await;
    let (client_id, _) = third_party_app(&fd);
    let browser = browser();
    let (challenge, _) = pkce();
    for wrong in [
        "https://evil.example/oauth/callback",
        "https://notes.example/oauth/callback/",
        "https://notes.example/oauth/callback?next=https://evil.example",
        "http://notes.example/oauth/callback",
        "https://notes.example.evil.example/oauth/callback",
    ] {
        let url = authorize_url(
            &fd,
            &[
                ("client_id", &client_id),
                ("redirect_uri", wrong),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "s1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        assert_error_page(navigate(&browser, &url).await, 400, "does not match").await;
    }
    // Missing, or the two spellings disagreeing: likewise a page.
    let url = authorize_url(
        &fd,
        &[
            ("client_id", &client_id),
            ("response_type", "code"),
            ("scope", "openid"),
        ],
    );
    assert_error_page(navigate(&browser, &url).await, 400, "redirect_uri").await;
    let url = authorize_url(
        &fd,
        &[
            ("client_id", &client_id),
            ("redirect_uri", CALLBACK),
            ("redirect_url", "https://evil.example/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
        ],
    );
    assert_error_page(navigate(&browser, &url).await, 400, "disagree").await;
    // An unknown client: a page too.
    let url = authorize_url(
        &fd,
        &[
            ("client_id", "no-such-app"),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
        ],
    );
    assert_error_page(navigate(&browser, &url).await, 400, "unknown").await;
}

#[tokio::test]
async fn public_client_without_pkce_or_with_plain_is_sent_back_with_invalid_request() {
    let fd = start(|c| c).await;
    let (public_id, _) = fd.create_app(&[
        "--name",
        "Acme Notes",
        "--redirect-uri",
        CALLBACK,
        "--public",
    ]);
    let (confidential_id, _) = third_party_app(&fd);
    let browser = browser();

    let url = authorize_url(
        &fd,
        &[
            ("client_id", &public_id),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "no-pkce-state"),
        ],
    );
    let p = callback_params(&navigate(&browser, &url).await, CALLBACK);
    assert_eq!(p["error"], "invalid_request");
    assert!(p["error_description"].contains("PKCE"), "{p:?}");
    assert_eq!(p["state"], "no-pkce-state");
    assert_eq!(p["iss"], fd.issuer(), "RFC 9207 iss on errors too");
    assert!(!p.contains_key("code"));

    // `plain` is refused for every client, public or confidential.
    for client_id in [&public_id, &confidential_id] {
        let url = authorize_url(
            &fd,
            &[
                ("client_id", client_id),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "plain-state"),
                (
                    "code_challenge",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                ),
                ("code_challenge_method", "plain"),
            ],
        );
        let p = callback_params(&navigate(&browser, &url).await, CALLBACK);
        assert_eq!(p["error"], "invalid_request");
        assert!(p["error_description"].contains("S256"), "{p:?}");
        assert_eq!(p["state"], "plain-state");
        assert_eq!(p["iss"], fd.issuer());
        assert!(!p.contains_key("code"));
    }
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_what_it_issued() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);
    let (code, verifier) =
        get_code(&browser(), &fd, &client_id, "openid email offline_access").await;

    let (access, refresh_token) = tokens_of(&exchange(&fd, auth, &code, &verifier).await);
    let refresh_token = refresh_token.expect("offline_access yields a refresh token");
    assert_eq!(userinfo(&fd, &access).await.status, 200);

    let replay = exchange(&fd, auth, &code, &verifier).await;
    replay.assert_oauth_error(400, "invalid_grant");

    let info = userinfo(&fd, &access).await;
    info.assert_oauth_error(401, "invalid_token");
    assert!(
        info.www_authenticate
            .as_deref()
            .is_some_and(|w| w.starts_with("Bearer")),
        "RFC 6750 challenge: {:?}",
        info.www_authenticate
    );
    refresh(&fd, auth, &refresh_token)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_and_does_not_burn_the_code() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let (code, verifier) = get_code(&browser(), &fd, &client_id, "openid").await;

    let basic = exchange(
        &fd,
        Auth::Basic(&client_id, "not-the-secret"),
        &code,
        &verifier,
    )
    .await;
    basic.assert_oauth_error(401, "invalid_client");
    assert!(
        basic.www_authenticate.is_some(),
        "RFC 6749 §5.2: a failed Authorization header gets WWW-Authenticate"
    );
    exchange(
        &fd,
        Auth::Post(&client_id, "not-the-secret"),
        &code,
        &verifier,
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // A confidential client cannot pass itself off as public either.
    exchange(&fd, Auth::Public(&client_id), &code, &verifier)
        .await
        .assert_oauth_error(401, "invalid_client");

    // The right secret, by client_secret_post this time, still gets the tokens.
    tokens_of(&exchange(&fd, Auth::Post(&client_id, &secret), &code, &verifier).await);
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let fd = start(|c| c.set("tokens.code_ttl", "1s")).await;
    let (client_id, secret) = third_party_app(&fd);
    let (code, verifier) = get_code(&browser(), &fd, &client_id, "openid").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    exchange(&fd, Auth::Basic(&client_id, &secret), &code, &verifier)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_whole_family() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);
    let (code, verifier) = get_code(&browser(), &fd, &client_id, "openid offline_access").await;
    let (_, first) = tokens_of(&exchange(&fd, auth, &code, &verifier).await);
    let first = first.expect("a refresh token");

    let (access, second) = tokens_of(&refresh(&fd, auth, &first).await);
    let second = second.expect("a rotated refresh token");
    assert_ne!(first, second);
    assert_eq!(userinfo(&fd, &access).await.status, 200);

    refresh(&fd, auth, &first)
        .await
        .assert_oauth_error(400, "invalid_grant");
    refresh(&fd, auth, &second)
        .await
        .assert_oauth_error(400, "invalid_grant");
    userinfo(&fd, &access)
        .await
        .assert_oauth_error(401, "invalid_token");
}

/// A refresh grant signs for the user as its rotation's commit reads them (`rotation_batch`),
/// not as a cache remembers them: once the user is deactivated, or removed, through the CLI (a
/// process the server hears nothing from on SQLite), their refresh tokens get no tokens.
#[tokio::test]
async fn refresh_tokens_of_a_deactivated_or_removed_user_get_nothing() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);
    let sign_in = || async {
        let (code, verifier) = get_code(&browser(), &fd, &client_id, "openid offline_access").await;
        let (_, refresh_token) = tokens_of(&exchange(&fd, auth, &code, &verifier).await);
        refresh_token.expect("a refresh token")
    };
    let first = sign_in().await;
    let (_, second) = tokens_of(&refresh(&fd, auth, &first).await);
    let second = second.expect("a rotated refresh token while Ann is active");

    fd.cli_ok(&["users", "deactivate", "--email", EMAIL], None);
    let refused = refresh(&fd, auth, &second).await;
    refused.assert_oauth_error(400, "invalid_grant");
    assert_eq!(
        refused.body["error_description"],
        "the user no longer exists"
    );
    assert!(refused.body["access_token"].is_null(), "{}", refused.body);

    fd.cli_ok(&["users", "activate", "--email", EMAIL], None);
    let third = sign_in().await;
    fd.cli_ok(&["users", "remove", "--email", EMAIL], None);
    refresh(&fd, auth, &third)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn concurrent_refreshes_each_rotate_their_own_chain_and_a_race_on_one_token_wins_at_most_once()
 {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    refresh_races(&[&fd], &client_id, &secret).await;
}

/// Rotations share commits (`store::rotation_batch`): eight chains refreshed at once for five
/// rounds (chain i on node i mod n) must each get their own successor, and a token spent by
/// six requests at once (on every node in turn) must still be single-use.
pub(crate) async fn refresh_races(nodes: &[&Frontdoor], client_id: &str, secret: &str) {
    let auth = Auth::Basic(client_id, secret);
    let node = |i: usize| nodes[i % nodes.len()];
    let b = browser();
    let mut chains = Vec::new();
    for i in 0..8 {
        // Codes from the first node (the public URL's, on a cluster), exchanged on each.
        let (code, verifier) = get_code(&b, nodes[0], client_id, "openid offline_access").await;
        let (_, r) = tokens_of(&exchange(node(i), auth, &code, &verifier).await);
        chains.push(r.expect("a refresh token"));
    }
    let mut seen: std::collections::HashSet<String> = chains.iter().cloned().collect();
    for round in 0..5 {
        let answers = futures_util::future::join_all(
            chains
                .iter()
                .enumerate()
                .map(|(i, t)| refresh(node(i + round), auth, t)),
        )
        .await;
        let mut next = Vec::new();
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(a.status, 200, "round {round}, chain {i}: {}", a.body);
            let (access, r) = tokens_of(a);
            assert_eq!(
                userinfo(node(i), &access).await.status,
                200,
                "round {round}, chain {i}"
            );
            let r = r.expect("a rotated refresh token");
            assert!(
                seen.insert(r.clone()),
                "round {round}, chain {i}: a refresh token came back twice"
            );
            next.push(r);
        }
        chains = next;
    }
    // Six requests spend chain 0's token at once: at most one is answered with tokens (none
    // when a replay revokes the family before the winner's grant check), the others are
    // invalid_grant, and the replay revokes that family only.
    let raced = chains[0].clone();
    let answers =
        futures_util::future::join_all((0..6).map(|i| refresh(node(i), auth, &raced))).await;
    let winners: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert!(
        winners.len() <= 1,
        "{} requests spent one token",
        winners.len()
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        a.assert_oauth_error(400, "invalid_grant");
    }
    if let Some(w) = winners.first() {
        let (_, next) = tokens_of(w);
        refresh(node(0), auth, &next.expect("the winner's successor"))
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
    for (i, t) in chains.iter().enumerate().skip(1) {
        assert_eq!(
            refresh(node(i), auth, t).await.status,
            200,
            "chain {i} is untouched"
        );
    }
}

#[tokio::test]
async fn narrowed_refresh_narrows_the_access_token_but_not_the_refresh_token() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);
    let full_scope = "openid email groups offline_access";
    let (code, verifier) = get_code(&browser(), &fd, &client_id, full_scope).await;
    let (_, first) = tokens_of(&exchange(&fd, auth, &code, &verifier).await);
    let first = first.expect("a refresh token");

    let narrowed = post_form(
        &fd,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            ("scope", "openid email"),
        ],
    )
    .await;
    let (access, second) = tokens_of(&narrowed);
    assert_eq!(narrowed.str("scope"), "openid email");
    let info = userinfo(&fd, &access).await;
    assert_eq!(info.body["email"], EMAIL);
    assert!(info.body.get("groups").is_none(), "{}", info.body);
    // RFC 6749 §6: the new refresh token has the scope of the one it replaces.
    let second = second.expect("the narrowed refresh still rotates the refresh token");
    let full = refresh(&fd, auth, &second).await;
    let (access, third) = tokens_of(&full);
    assert_eq!(full.str("scope"), full_scope);
    assert_eq!(
        userinfo(&fd, &access).await.body["groups"],
        serde_json::json!(["wiki", "ops"])
    );

    // More than was granted is refused.
    post_form(
        &fd,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &third.expect("rotated")),
            ("scope", "openid roles"),
        ],
    )
    .await
    .assert_oauth_error(400, "invalid_scope");
}

#[tokio::test]
async fn deactivated_app_can_neither_start_nor_finish_nor_use_its_tokens() {
    let fd = start(|c| c.set("session.cache_ttl", "1s")).await;
    let (client_id, secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);
    let browser = browser();
    let (code, verifier) = get_code(&browser, &fd, &client_id, "openid offline_access").await;
    let (access, refresh_token) = tokens_of(&exchange(&fd, auth, &code, &verifier).await);
    let refresh_token = refresh_token.expect("a refresh token");
    assert_eq!(userinfo(&fd, &access).await.status, 200);
    // A code issued before the deactivation, not yet exchanged.
    let (pending_code, pending_verifier) = get_code(&browser, &fd, &client_id, "openid").await;

    let out = fd.cli(&["apps", "deactivate", &client_id], None);
    assert!(
        out.status.success(),
        "apps deactivate: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (challenge, _) = pkce();
    let url = code_url(&fd, &client_id, "openid", "s", &challenge);
    assert_error_page(navigate(&browser, &url).await, 400, "not active").await;

    // The CLI is another process: past the cache bound (session.cache_ttl: 1s) the token
    // endpoint refuses the client, and its access tokens are refused.
    tokio::time::sleep(Duration::from_secs(2)).await;
    exchange(&fd, auth, &pending_code, &pending_verifier)
        .await
        .assert_oauth_error(401, "invalid_client");
    refresh(&fd, auth, &refresh_token)
        .await
        .assert_oauth_error(401, "invalid_client");
    userinfo(&fd, &access)
        .await
        .assert_oauth_error(401, "invalid_token");

    // Activated again, it can start new flows.
    let out = fd.cli(&["apps", "activate", &client_id], None);
    assert!(out.status.success());
    get_code(&browser, &fd, &client_id, "openid").await;
}

// ---------------------------------------------------------------------------------------------
// 3. Consent.

#[tokio::test]
async fn consent_is_asked_once_per_scope_set() {
    let fd = start(|c| c).await;
    let (client_id, _) = third_party_app(&fd);
    let browser = browser();
    let (challenge, _) = pkce();
    let url = |scope: &str| code_url(&fd, &client_id, scope, "consent-state", &challenge);

    // First time: sign in, then the consent page.
    let first = navigate(&browser, &url("openid profile")).await;
    let html = consent_html(sign_in(&browser, &fd, first).await).await;
    assert!(html.contains("See your name and profile picture"));
    assert!(!html.contains("See your email address"));
    let p = callback_params(
        &submit_consent(&browser, &fd, &html, "approve").await,
        CALLBACK,
    );
    assert!(p.contains_key("code"));
    assert_eq!(p["state"], "consent-state");
    assert_eq!(p["iss"], fd.issuer());

    // The same scopes again: straight back with a code.
    let p = callback_params(&navigate(&browser, &url("openid profile")).await, CALLBACK);
    assert!(p.contains_key("code"), "no second consent: {p:?}");

    // One more scope: asked again, for what is new.
    let html = consent_html(navigate(&browser, &url("openid profile email")).await).await;
    assert!(html.contains("See your email address"));
    let p = callback_params(
        &submit_consent(&browser, &fd, &html, "approve").await,
        CALLBACK,
    );
    assert!(p.contains_key("code"));

    // Everything asked for is now approved, in any combination.
    let p = callback_params(&navigate(&browser, &url("openid email")).await, CALLBACK);
    assert!(p.contains_key("code"), "{p:?}");
}

#[tokio::test]
async fn declining_consent_sends_access_denied_with_state_and_iss() {
    let fd = start(|c| c).await;
    let (client_id, _) = third_party_app(&fd);
    let browser = browser();
    let (challenge, _) = pkce();
    let url = code_url(&fd, &client_id, "openid email", "decline-state", &challenge);
    let first = navigate(&browser, &url).await;
    let html = consent_html(sign_in(&browser, &fd, first).await).await;
    let p = callback_params(
        &submit_consent(&browser, &fd, &html, "deny").await,
        CALLBACK,
    );
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "decline-state");
    assert_eq!(p["iss"], fd.issuer());
    assert!(!p.contains_key("code"));

    // Nothing was remembered: the next attempt asks again.
    consent_html(navigate(&browser, &url).await).await;
}

#[tokio::test]
async fn vorg_id_aliases_redirect_url_and_scopes_are_understood() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let browser = browser();
    let (challenge, verifier) = pkce();
    let url = authorize_url(
        &fd,
        &[
            ("client_id", &client_id),
            ("redirect_url", CALLBACK),
            ("response_type", "code"),
            ("scopes", "openid email"),
            ("state", "alias-state"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let first = navigate(&browser, &url).await;
    let html = consent_html(sign_in(&browser, &fd, first).await).await;
    assert!(html.contains("See your email address"), "`scopes` was read");
    let p = callback_params(
        &submit_consent(&browser, &fd, &html, "approve").await,
        CALLBACK,
    );
    assert_eq!(p["state"], "alias-state");
    let answer = exchange(&fd, Auth::Basic(&client_id, &secret), &p["code"], &verifier).await;
    tokens_of(&answer);
    assert_eq!(answer.str("scope"), "openid email");
}

#[tokio::test]
async fn first_party_app_skips_consent() {
    let fd = start(|c| c).await;
    let (client_id, secret) = fd.create_app(&[
        "--name",
        "Intranet",
        "--redirect-uri",
        CALLBACK,
        "--first-party",
    ]);
    let secret = secret.expect("secret");
    let browser = browser();
    let (challenge, verifier) = pkce();
    let url = code_url(
        &fd,
        &client_id,
        "openid profile email groups roles",
        "fp-state",
        &challenge,
    );
    let first = navigate(&browser, &url).await;
    let after_login = sign_in(&browser, &fd, first).await;
    let p = callback_params(&after_login, CALLBACK);
    assert_eq!(p["state"], "fp-state");
    assert_eq!(p["iss"], fd.issuer());
    tokens_of(&exchange(&fd, Auth::Basic(&client_id, &secret), &p["code"], &verifier).await);
}

// ---------------------------------------------------------------------------------------------
// 4. Discovery, keys, introspection, revocation.

#[tokio::test]
async fn discovery_documents_and_jwks_have_the_expected_shape() {
    let fd = start(|c| c).await;
    let client = plain_client();
    let get = |path: &str| {
        let c = client.clone();
        let url = fd.url(path);
        async move {
            let r = c.get(url).send().await.expect("get");
            assert_eq!(r.status(), 200);
            let ct = r.headers()["content-type"]
                .to_str()
                .expect("ct")
                .to_string();
            assert!(ct.starts_with("application/json"), "{ct}");
            r.json::<Value>().await.expect("json")
        }
    };
    let oidc = get("/.well-known/openid-configuration").await;
    let oauth = get("/.well-known/oauth-authorization-server").await;
    let i = fd.issuer();
    for doc in [&oidc, &oauth] {
        assert_eq!(doc["issuer"], i);
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{i}/oauth/authorize")
        );
        assert_eq!(doc["token_endpoint"], format!("{i}/oauth/token"));
        assert_eq!(doc["userinfo_endpoint"], format!("{i}/oauth/userinfo"));
        assert_eq!(doc["jwks_uri"], format!("{i}/oauth/jwks"));
        assert_eq!(doc["end_session_endpoint"], format!("{i}/oauth/logout"));
        assert_eq!(doc["revocation_endpoint"], format!("{i}/oauth/revoke"));
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{i}/oauth/introspect")
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        for grant in ["authorization_code", "refresh_token"] {
            assert!(
                doc["grant_types_supported"]
                    .as_array()
                    .expect("grant types")
                    .iter()
                    .any(|g| g == grant),
                "{grant}"
            );
        }
        for scope in [
            "openid",
            "profile",
            "email",
            "groups",
            "roles",
            "offline_access",
        ] {
            assert!(
                doc["scopes_supported"]
                    .as_array()
                    .expect("scopes")
                    .iter()
                    .any(|s| s == scope),
                "{scope}"
            );
        }
        for method in ["client_secret_basic", "client_secret_post"] {
            assert!(
                doc["token_endpoint_auth_methods_supported"]
                    .as_array()
                    .expect("auth methods")
                    .iter()
                    .any(|m| m == method),
                "{method}"
            );
        }
    }

    let jwks = get("/oauth/jwks").await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert!(!keys.is_empty(), "at least one signing key");
    for k in keys {
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["alg"], "RS256");
        assert_eq!(k["use"], "sig");
        for member in ["kid", "n", "e"] {
            assert!(
                k[member].as_str().is_some_and(|v| !v.is_empty()),
                "{member}"
            );
        }
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                k.get(private).is_none(),
                "no private `{private}` in the JWKS"
            );
        }
    }
}

#[tokio::test]
async fn introspection_and_revocation_cover_the_apps_own_tokens_only() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let (other_id, other_secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);
    let other = Auth::Post(&other_id, &other_secret);
    let browser = browser();

    let (code, verifier) = get_code(&browser, &fd, &client_id, "openid email offline_access").await;
    let (access, first) = tokens_of(&exchange(&fd, auth, &code, &verifier).await);
    let first = first.expect("refresh token");

    let a = introspect_as(&fd, auth, &access).await;
    assert_eq!(a["active"], true, "{a}");
    assert_eq!(a["client_id"], client_id.as_str());
    assert_eq!(a["scope"], "openid email offline_access");
    assert_eq!(a["iss"], fd.issuer());
    assert!(a["sub"].is_string() && a["exp"].is_i64(), "{a}");
    let a = introspect_as(&fd, auth, &first).await;
    assert_eq!(a["active"], true, "{a}");
    assert_eq!(a["client_id"], client_id.as_str());

    // Another app learns nothing about them; nonsense is simply inactive.
    assert_eq!(
        introspect_as(&fd, other, &access).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        introspect_as(&fd, other, &first).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        introspect_as(&fd, auth, "not-a-token").await,
        serde_json::json!({"active": false})
    );
    // Introspection needs client authentication.
    post_form(
        &fd,
        "/oauth/introspect",
        Auth::Basic(&client_id, "wrong"),
        &[("token", &access)],
    )
    .await
    .assert_oauth_error(401, "invalid_client");

    // After rotation the old refresh token is spent: inactive; the new one active.
    let (access2, second) = tokens_of(&refresh(&fd, auth, &first).await);
    let second = second.expect("rotated");
    assert_eq!(
        introspect_as(&fd, auth, &first).await["active"],
        false,
        "a used refresh token is no longer active"
    );
    assert_eq!(introspect_as(&fd, auth, &second).await["active"], true);

    // Another app's revocation is acknowledged (RFC 7009 §2.2) and changes nothing.
    let r = post_form(&fd, "/oauth/revoke", other, &[("token", &second)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect_as(&fd, auth, &second).await["active"], true);
    assert_eq!(userinfo(&fd, &access2).await.status, 200);
    // Unknown tokens too.
    let r = post_form(&fd, "/oauth/revoke", auth, &[("token", "unknown-token")]).await;
    assert_eq!(r.status, 200);
    // Revocation needs client authentication.
    post_form(
        &fd,
        "/oauth/revoke",
        Auth::Post(&client_id, "wrong"),
        &[("token", &second)],
    )
    .await
    .assert_oauth_error(401, "invalid_client");

    // The app revokes its refresh token: the whole grant goes.
    let r = post_form(&fd, "/oauth/revoke", auth, &[("token", &second)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(introspect_as(&fd, auth, &second).await["active"], false);
    assert_eq!(introspect_as(&fd, auth, &access2).await["active"], false);
    userinfo(&fd, &access2)
        .await
        .assert_oauth_error(401, "invalid_token");
    refresh(&fd, auth, &second)
        .await
        .assert_oauth_error(400, "invalid_grant");

    // Revoking an access token ends its grant as well.
    let (code, verifier) = get_code(&browser, &fd, &client_id, "openid email").await;
    let (access3, _) = tokens_of(&exchange(&fd, auth, &code, &verifier).await);
    assert_eq!(introspect_as(&fd, auth, &access3).await["active"], true);
    let r = post_form(&fd, "/oauth/revoke", auth, &[("token", &access3)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect_as(&fd, auth, &access3).await["active"], false);
    userinfo(&fd, &access3)
        .await
        .assert_oauth_error(401, "invalid_token");
}

async fn introspect_as(fd: &Frontdoor, auth: Auth<'_>, token: &str) -> Value {
    let a = post_form(fd, "/oauth/introspect", auth, &[("token", token)]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_json_no_store(&a);
    a.body
}

// ---------------------------------------------------------------------------------------------
// 5. Error shape.

#[tokio::test]
async fn oauth_errors_are_rfc6749_json_and_never_cached() {
    let fd = start(|c| c).await;
    let (client_id, secret) = third_party_app(&fd);
    let auth = Auth::Basic(&client_id, &secret);

    post_form(&fd, "/oauth/token", auth, &[])
        .await
        .assert_oauth_error(400, "invalid_request");
    post_form(&fd, "/oauth/token", auth, &[("grant_type", "password")])
        .await
        .assert_oauth_error(400, "unsupported_grant_type");
    post_form(
        &fd,
        "/oauth/token",
        auth,
        &[("grant_type", "authorization_code")],
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    post_form(
        &fd,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", "made-up"),
            ("redirect_uri", CALLBACK),
        ],
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    post_form(
        &fd,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "made-up"),
        ],
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    // The alias endpoint answers the same way.
    post_form(
        &fd,
        "/oauth2-token",
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "made-up"),
        ],
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    // No client authentication at all.
    Answer::read(
        plain_client()
            .post(fd.url("/oauth/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .expect("post"),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // Two methods at once.
    Answer::read(
        plain_client()
            .post(fd.url("/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_secret", &secret),
            ])
            .send()
            .await
            .expect("post"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // A repeated parameter (RFC 6749 §3.2).
    Answer::read(
        plain_client()
            .post(fd.url("/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&refresh_token=a&refresh_token=b")
            .send()
            .await
            .expect("post"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    // Not a form.
    Answer::read(
        plain_client()
            .post(fd.url("/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .json(&serde_json::json!({"grant_type": "refresh_token"}))
            .send()
            .await
            .expect("post"),
    )
    .await
    .assert_oauth_error(400, "invalid_request");

    // Userinfo without a token, or with garbage: 401 invalid_token with a Bearer challenge.
    let none = Answer::read(
        plain_client()
            .get(fd.url("/oauth/userinfo"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    none.assert_oauth_error(401, "invalid_token");
    assert!(
        none.www_authenticate
            .as_deref()
            .is_some_and(|w| w.starts_with("Bearer")),
        "{:?}",
        none.www_authenticate
    );
    userinfo(&fd, "not.a.jwt")
        .await
        .assert_oauth_error(401, "invalid_token");
    // An ID token is not an access token.
    let (code, verifier) = get_code(&browser(), &fd, &client_id, "openid").await;
    let answer = exchange(&fd, auth, &code, &verifier).await;
    tokens_of(&answer);
    userinfo(&fd, answer.str("id_token"))
        .await
        .assert_oauth_error(401, "invalid_token");
}

/// Codes live in the shared store: on two nodes over one PostgreSQL, an authorization code
/// issued by node A is redeemed on node B, the refresh token B gave rotates on A (and is then
/// spent on both), and a one-time code emailed through A signs in on B.
#[tokio::test(flavor = "multi_thread")]
async fn codes_made_on_one_node_are_redeemed_on_the_other() {
    let cluster = crate::cluster::Cluster::start("1s").await;
    let (a, b) = (&cluster.a, &cluster.b);
    a.add_user(EMAIL, NAME, "wiki", "ROLE_USER", PASSWORD);
    let (client_id, secret) = third_party_app(a);
    let auth = Auth::Basic(&client_id, &secret);

    let (code, verifier) = get_code(&browser(), a, &client_id, "openid offline_access").await;
    let (access, first) = tokens_of(&exchange(b, auth, &code, &verifier).await);
    let first = first.expect("a refresh token");
    assert_eq!(userinfo(a, &access).await.status, 200, "B's token on A");
    let (_, second) = tokens_of(&refresh(a, auth, &first).await);
    assert!(second.is_some_and(|s| s != first), "rotated on A");
    refresh(b, auth, &first)
        .await
        .assert_oauth_error(400, "invalid_grant");

    let otp = emailed_code(a, EMAIL).await;
    let verified = plain_client()
        .post(b.url("/api/v1/verify-login-otp"))
        .json(&serde_json::json!({ "email": EMAIL, "code": otp }))
        .send()
        .await
        .expect("verify the code on B");
    assert_eq!(verified.status(), 200, "A's emailed code signs in on B");
    let pair: Value = verified.json().await.expect("token pair");
    assert!(pair["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        pair["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
}
