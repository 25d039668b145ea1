//! Credentials on proxied routes, end to end: Api-Token (read-write and read-only), Bearer JWTs
//! from the login API (password and emailed one-time code), X-Contact-Hash, and
//! client_credentials tokens. For each: what reaches the upstream when it is good, and the
//! status and JSON envelope when it is missing, malformed, expired, revoked, forged or from
//! another tenant. Tokens are verified and forged with `jwt-simple`, an implementation
//! independent of the `jsonwebtoken` crate frontdoor signs with.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{
    HS256Key, HeaderOptions, JWTClaims, MACLike, RS256KeyPair, RS256PublicKey, RSAPublicKeyLike,
    VerificationOptions,
};
use serde_json::{Map, Value, json};

use crate::harness::*;
use crate::scripted_idp::{raw_claims, rsa_jwk, sign};

const PASSWORD: &str = "correct horse battery";
/// Default tenant, two groups and two roles.
const ANN: &str = "ann@example.com";
/// Default tenant too: the victim of a tampered `sub`.
const CARL: &str = "carl@example.com";
/// Tenant acme.
const BOB: &str = "bob@acme.example";
/// A host of tenant acme (sent as `Host`; the connection still goes to 127.0.0.1).
const ACME: &str = "acme.localhost";
/// Where the first-party app of the ID-token test wants its users back; never contacted.
const CALLBACK: &str = "https://notes.example/oauth/callback";
/// A revocation must bite within this: every cache is bounded by `session.cache_ttl: 1s`.
const REVOCATION_BOUND: Duration = Duration::from_secs(3);
/// frontdoor checks `exp` with 5 s of leeway (jsonwebtoken's `leeway`, for clock skew).
const EXP_LEEWAY: Duration = Duration::from_secs(5);

/// One frontdoor in front of one recording upstream.
struct Env {
    up: Upstream,
    fd: Frontdoor,
}

/// A frontdoor with Ann and Carl (tenant default) and Bob (tenant acme), its config changed by
/// `tune`: tenant acme, every cache bounded by `session.cache_ttl: 1s`; `/` plain
/// authenticated, `/events` also for contact hashes, `/backend` and `/frontend` for tokens of
/// those audiences.
async fn start(tune: impl FnOnce(Config) -> Config) -> Env {
    let ann = (
        ANN,
        "Ann Example",
        "wiki,ops",
        "ROLE_USER,ROLE_EDITOR",
        PASSWORD,
    );
    let carl = (CARL, "Carl Example", "wiki", "ROLE_USER", PASSWORD);
    let (up, fd) = setup_with(
        |up| {
            tune(
                Config::single(up)
                    .route(Route::new("/events", up).contact_hash())
                    .route(Route::new("/backend", up).audience("backend"))
                    .route(Route::new("/frontend", up).audience("frontend"))
                    .tenant("acme", [ACME])
                    .set("session.cache_ttl", "1s"),
            )
        },
        &[ann, carl],
    )
    .await;
    add_acme_user(&fd, BOB);
    Env { up, fd }
}

fn add_acme_user(fd: &Frontdoor, email: &str) {
    let flags = ["--groups", "acme-team", "--roles", "ROLE_USER"];
    fd.add_tenant_user("acme", email, "Bob Acme", &flags, PASSWORD);
}

/// Runs a CLI command that must succeed; its stdout.
fn cli_ok(fd: &Frontdoor, args: &[&str]) -> String {
    String::from_utf8(fd.cli_ok(args, None).stdout).expect("utf-8 stdout")
}

/// `tokens create --json`: (id, token).
fn create_token(fd: &Frontdoor, args: &[&str]) -> (String, String) {
    let mut all = vec!["tokens", "create", "--json"];
    all.extend_from_slice(args);
    let v = fd.cli_json(&all);
    (
        v["id"].as_str().expect("id").to_string(),
        v["token"].as_str().expect("token").to_string(),
    )
}

/// `contacts link --json`: the whole answer ({"id","hash","path","expires_at"}).
fn link_contact(fd: &Frontdoor, args: &[&str]) -> Value {
    let mut all = vec!["contacts", "link", "--json"];
    all.extend_from_slice(args);
    fd.cli_json(&all)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Requests to proxied routes and what they must get.

/// The credential a request carries.
#[derive(Clone, Copy, Debug)]
enum Cred<'a> {
    Nothing,
    ApiToken(&'a str),
    Bearer(&'a str),
    Contact(&'a str),
    /// Any header, verbatim.
    Header(&'a str, &'a str),
}

/// A request to a proxied route.
#[derive(Clone, Debug)]
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    host: Option<&'a str>,
    cred: Cred<'a>,
    headers: Vec<(&'a str, &'a str)>,
}

fn req<'a>(method: &'a str, path: &'a str, cred: Cred<'a>) -> Req<'a> {
    Req {
        method,
        path,
        host: None,
        cred,
        headers: Vec::new(),
    }
}

fn get<'a>(path: &'a str, cred: Cred<'a>) -> Req<'a> {
    req("GET", path, cred)
}

impl<'a> Req<'a> {
    /// Sent with `Host: <host>:<port>`.
    fn on(mut self, host: &'a str) -> Self {
        self.host = Some(host);
        self
    }

    fn with(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// An answer, its body parsed when it is JSON.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

impl Answer {
    async fn read(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn str(&self, key: &str) -> String {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("`{key}` is a string in {} {}", self.status, self.text))
            .to_string()
    }
}

/// A refusal in the shared envelope `{"error":{"status","code","message"}}`; a 401 carries a
/// Bearer challenge.
#[track_caller]
fn assert_refusal(a: &Answer, status: u16, code: Option<&str>, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: a JSON answer, got {:?}",
        a.header("content-type")
    );
    let keys: Vec<&String> = a
        .body
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["error"], "{what}: only the envelope: {}", a.text);
    let e = &a.body["error"];
    assert_eq!(e["status"], status, "{what}: {}", a.text);
    let got_code = e["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: a code in {}", a.text));
    assert!(!got_code.is_empty(), "{what}: {}", a.text);
    if let Some(code) = code {
        assert_eq!(got_code, code, "{what}: {}", a.text);
    }
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: a message in {}",
        a.text
    );
    if status == 401 {
        assert!(
            a.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer ")),
            "{what}: a 401 carries a Bearer WWW-Authenticate, got {:?}",
            a.header("www-authenticate")
        );
    }
}

impl Env {
    async fn call(&self, r: &Req<'_>) -> Answer {
        let method = reqwest::Method::from_bytes(r.method.as_bytes()).expect("method");
        let mut b = plain_client()
            .request(method, self.fd.url(r.path))
            .header("Accept", "application/json");
        if let Some(h) = r.host {
            b = b.header("Host", format!("{h}:{}", self.fd.port));
        }
        b = match r.cred {
            Cred::Nothing => b,
            Cred::ApiToken(t) => b.header("Api-Token", t),
            Cred::Bearer(t) => b.header("Authorization", format!("Bearer {t}")),
            Cred::Contact(h) => b.header("X-Contact-Hash", h),
            Cred::Header(k, v) => b.header(k, v),
        };
        for (k, v) in &r.headers {
            b = b.header(*k, *v);
        }
        Answer::read(b.send().await.expect("request")).await
    }

    /// The request reaches the upstream (once); what the upstream saw.
    async fn pass(&self, r: Req<'_>) -> Received {
        let before = self.up.count();
        let a = self.call(&r).await;
        assert_eq!(a.status, 200, "{r:?} should reach the upstream: {}", a.text);
        assert_eq!(self.up.count(), before + 1, "{r:?}: one upstream request");
        let got = self.up.last();
        assert_eq!(got.method, r.method, "{r:?}");
        got
    }

    /// The request is refused with this status (and code) and never reaches the upstream.
    async fn refused(&self, r: Req<'_>, status: u16, code: Option<&str>) -> Answer {
        let before = self.up.count();
        let a = self.call(&r).await;
        assert_refusal(&a, status, code, &format!("{r:?}"));
        assert_eq!(self.up.count(), before, "{r:?} must not reach the upstream");
        a
    }

    /// The request, repeated, is refused within `bound` (caches may serve it until then).
    async fn refused_within(
        &self,
        r: Req<'_>,
        bound: Duration,
        status: u16,
        code: Option<&str>,
    ) -> Answer {
        let start = Instant::now();
        loop {
            let before = self.up.count();
            let a = self.call(&r).await;
            if a.status != 200 {
                assert_refusal(&a, status, code, &format!("{r:?}"));
                assert_eq!(self.up.count(), before, "{r:?} must not reach the upstream");
                return a;
            }
            assert!(
                start.elapsed() < bound,
                "{r:?} is still accepted {:?} later (bound {bound:?})",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The identity headers the upstream received.
#[track_caller]
fn assert_identity(got: &Received, user: &str, email: Option<&str>, tenant: &str, access: &str) {
    assert_eq!(
        got.header("x-auth-request-user").as_deref(),
        Some(user),
        "{got:?}"
    );
    assert_eq!(got.header("x-auth-request-email").as_deref(), email);
    assert_eq!(got.header("x-auth-request-tenant").as_deref(), Some(tenant));
    assert_eq!(got.header("x-auth-request-access").as_deref(), Some(access));
}

/// Ann, with her name, groups and roles.
#[track_caller]
fn assert_ann(got: &Received, access: &str) {
    assert_identity(got, ANN, Some(ANN), "default", access);
    assert_eq!(
        got.header("x-auth-request-name").as_deref(),
        Some("Ann Example")
    );
    assert_eq!(
        got.header("x-auth-request-groups").as_deref(),
        Some("wiki,ops")
    );
    assert_eq!(
        got.header("x-auth-request-roles").as_deref(),
        Some("ROLE_USER,ROLE_EDITOR")
    );
}

// ---------------------------------------------------------------------------------------------
// The login API, mail, OAuth.

async fn post_json(fd: &Frontdoor, path: &str, host: Option<&str>, body: Value) -> Answer {
    let mut b = plain_client().post(fd.url(path)).json(&body);
    if let Some(h) = host {
        b = b.header("Host", format!("{h}:{}", fd.port));
    }
    Answer::read(b.send().await.expect("post")).await
}

async fn login_check(fd: &Frontdoor, host: Option<&str>, email: &str, password: &str) -> Answer {
    post_json(
        fd,
        "/api/v1/login-check",
        host,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn refresh(fd: &Frontdoor, host: Option<&str>, refresh_token: &str) -> Answer {
    post_json(
        fd,
        "/api/v1/token/refresh",
        host,
        json!({"refresh_token": refresh_token}),
    )
    .await
}

/// A token pair answer: (token, refresh_token).
#[track_caller]
fn pair(a: &Answer) -> (String, String) {
    assert_eq!(a.status, 200, "a token pair: {}", a.text);
    assert_eq!(a.body["token_type"], "Bearer", "{}", a.text);
    (a.str("token"), a.str("refresh_token"))
}

/// Ann's pair from login-check on the default tenant.
async fn ann_pair(fd: &Frontdoor) -> (String, String) {
    pair(&login_check(fd, None, ANN, PASSWORD).await)
}

/// The .eml files in the outbox.
fn mails(fd: &Frontdoor) -> HashSet<PathBuf> {
    match std::fs::read_dir(fd.data_dir().join("outbox")) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect(),
        Err(_) => HashSet::new(),
    }
}

/// Waits (mail is sent in the background) for a message not in `seen`; the newest one's text.
async fn next_mail(fd: &Frontdoor, seen: &HashSet<PathBuf>) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut new: Vec<PathBuf> = mails(fd).difference(seen).cloned().collect();
        if !new.is_empty() {
            new.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
            let newest = new.last().expect("one");
            // The file may still be being written: read until it has a body.
            let text = std::fs::read_to_string(newest).unwrap_or_default();
            if code_in(&text).is_some() {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no new mail in the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The 6-digit code alone on a line of a message.
fn code_in(mail: &str) -> Option<String> {
    let codes: HashSet<&str> = mail
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert!(codes.len() <= 1, "one code per message: {mail}");
    codes.into_iter().next().map(str::to_string)
}

async fn request_otp(fd: &Frontdoor, host: Option<&str>, email: &str) -> Answer {
    post_json(
        fd,
        "/api/v1/request-login-otp",
        host,
        json!({"email": email}),
    )
    .await
}

async fn verify_otp(fd: &Frontdoor, host: Option<&str>, email: &str, code: &str) -> Answer {
    post_json(
        fd,
        "/api/v1/verify-login-otp",
        host,
        json!({"email": email, "code": code}),
    )
    .await
}

/// Asks for a code for `email` and reads it from the mail it gets.
async fn mailed_code(fd: &Frontdoor, host: Option<&str>, email: &str) -> String {
    let seen = mails(fd);
    let a = request_otp(fd, host, email).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let mail = next_mail(fd, &seen).await;
    assert!(
        mail.lines()
            .any(|l| l.starts_with("To:") && l.contains(email)),
        "the code goes to {email}:\n{mail}"
    );
    code_in(&mail).expect("a code")
}

/// How an app authenticates at the token endpoint.
#[derive(Clone, Copy)]
enum Client<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
}

async fn token_request(
    fd: &Frontdoor,
    path: &str,
    client: Client<'_>,
    form: &[(&str, &str)],
) -> Answer {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut b = plain_client().post(fd.url(path));
    match client {
        Client::Basic(id, secret) => b = b.basic_auth(id, Some(secret)),
        Client::Post(id, secret) => {
            fields.push(("client_id", id));
            fields.push(("client_secret", secret));
        }
    }
    Answer::read(b.form(&fields).send().await.expect("token request")).await
}

/// A client_credentials access token (asserts success).
async fn cc_token(fd: &Frontdoor, client: Client<'_>, extra: &[(&str, &str)]) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let a = token_request(fd, "/oauth/token", client, &form).await;
    assert_eq!(a.status, 200, "client_credentials: {}", a.text);
    a.str("access_token")
}

/// RFC 6749 §5.2 error.
#[track_caller]
fn assert_oauth_error(a: &Answer, status: u16, error: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.body["error"], error, "{}", a.text);
    assert!(a.body["error_description"].is_string(), "{}", a.text);
    assert!(a.body.get("access_token").is_none(), "{}", a.text);
}

/// An app with the client_credentials grant: (client_id, secret).
fn service_app(fd: &Frontdoor, extra: &[&str]) -> (String, String) {
    let mut args = vec!["--name", "Reporter", "--grant", "client_credentials"];
    args.extend_from_slice(extra);
    let (id, secret) = fd.create_app(&args);
    (id, secret.expect("a confidential app has a secret"))
}

// ---------------------------------------------------------------------------------------------
// JWT pieces, with jwt-simple.

/// Header, payload and signature of a JWT (unverified).
pub(crate) fn jwt_parts(jwt: &str) -> (Value, Value, String) {
    let mut it = jwt.split('.');
    let mut json_part = || {
        let bytes = URL_SAFE_NO_PAD
            .decode(it.next().expect("a JWT part"))
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    };
    let header = json_part();
    let payload = json_part();
    (header, payload, it.next().expect("a signature").to_string())
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn typ(t: &str) -> HeaderOptions {
    HeaderOptions {
        content_type: None,
        signature_type: Some(t.to_string()),
    }
}

/// The published signing key: (kid, public key, the JWKS document exactly as served).
pub(crate) async fn published_key(fd: &Frontdoor) -> (String, RS256PublicKey, String) {
    let text = plain_client()
        .get(fd.url("/oauth/jwks"))
        .send()
        .await
        .expect("jwks")
        .text()
        .await
        .expect("jwks body");
    let jwks: Value = serde_json::from_str(&text).expect("JWKS JSON");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "one signing key: {jwks}");
    let k = &keys[0];
    assert_eq!(k["kty"], "RSA");
    let (kid, pk) = rsa_jwk(k);
    (kid, pk, text)
}

/// The instance's own private signing key, read from its data dir.
fn own_signing_key(fd: &Frontdoor, kid: &str) -> RS256KeyPair {
    let pem = std::fs::read_to_string(fd.data_dir().join("keys").join("signing-key.pem"))
        .expect("signing key file");
    RS256KeyPair::from_pem(&pem)
        .expect("a PKCS#8 RSA key")
        .with_key_id(kid)
}

/// Verifies an access token against the published key, as a resource server would.
fn verify_access_token(
    pk: &RS256PublicKey,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<JWTClaims<Map<String, Value>>, jwt_simple::Error> {
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([issuer.to_string()])),
        allowed_audiences: Some(HashSet::from([audience.to_string()])),
        required_signature_type: Some("at+jwt".into()),
        required_key_id: pk.key_id().clone(),
        ..Default::default()
    };
    pk.verify_token::<Map<String, Value>>(token, Some(options))
}

/// A real OIDC ID token, from an authorization code flow of a first-party app as Ann.
async fn real_id_token(fd: &Frontdoor) -> String {
    let (client_id, secret) = fd.create_app(&[
        "--name",
        "Intranet",
        "--redirect-uri",
        CALLBACK,
        "--first-party",
    ]);
    let secret = secret.expect("secret");
    // PKCE is required of confidential apps too (RFC 9700).
    let (challenge, verifier) = crate::oauth::pkce();
    let mut url = url::Url::parse(&fd.url("/oauth/authorize")).expect("url");
    url.query_pairs_mut().extend_pairs([
        ("client_id", client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", "st-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let b = browser();
    let first = navigate(&b, url.as_str()).await;
    let page = follow(&b, first, None).await;
    assert_eq!(page.url().path(), "/_frontdoor/login");
    let posted = submit_login(&b, page, ANN, PASSWORD).await;
    let back = follow(&b, posted, Some(CALLBACK)).await;
    let to = url::Url::parse(&location(&back)).expect("callback URL");
    assert!(to.as_str().starts_with(CALLBACK), "{to}");
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let a = token_request(
        fd,
        "/oauth/token",
        Client::Basic(&client_id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.str("id_token")
}

// =============================================================================================
// No credential.

#[tokio::test]
async fn no_credential_or_an_unusable_header_is_401_with_a_challenge() {
    let env = start(|c| c).await;
    for path in ["/wiki", "/events/42", "/backend/x"] {
        env.refused(get(path, Cred::Nothing), 401, Some("unauthenticated"))
            .await;
        env.refused(
            req("POST", path, Cred::Nothing),
            401,
            Some("unauthenticated"),
        )
        .await;
    }
    // Headers that carry no credential of ours are no credential.
    for (k, v) in [
        ("Authorization", "Basic YW5uOnB3"),
        ("Authorization", "Bearer "),
        ("Api-Token", ""),
        ("X-Contact-Hash", " "),
    ] {
        env.refused(
            get("/wiki", Cred::Header(k, v)),
            401,
            Some("unauthenticated"),
        )
        .await;
    }
    assert_eq!(env.up.count(), 0);
}

// =============================================================================================
// Api-Token.

#[tokio::test]
async fn api_tokens_reach_the_upstream_as_their_owner_with_their_access() {
    let env = start(|c| c).await;
    let (_, rw) = create_token(&env.fd, &["--user", ANN, "--name", "deploy"]);
    let (_, ro) = create_token(&env.fd, &["--user", ANN, "--read-only", "--name", "cron"]);
    assert!(rw != ro);

    let got = env
        .pass(req("POST", "/tracker/issues", Cred::ApiToken(&rw)))
        .await;
    assert_ann(&got, "read-write");
    assert!(
        got.header("api-token").is_none(),
        "the Api-Token never goes upstream"
    );

    let got = env
        .pass(get("/tracker/issues?page=2", Cred::ApiToken(&ro)))
        .await;
    assert_ann(&got, "read-only");
    assert_eq!(got.uri, "/tracker/issues?page=2");
    assert!(got.header("api-token").is_none());

    // A token of tenant acme on acme's host.
    let (_, bob) = create_token(&env.fd, &["--user", BOB, "--tenant", "acme"]);
    let got = env
        .pass(get("/tracker", Cred::ApiToken(&bob)).on(ACME))
        .await;
    assert_identity(&got, BOB, Some(BOB), "acme", "read-write");
    assert_eq!(
        got.header("x-auth-request-groups").as_deref(),
        Some("acme-team")
    );
}

#[tokio::test]
async fn read_only_api_token_passes_safe_methods_and_nothing_else() {
    let env = start(|c| c).await;
    let (_, ro) = create_token(&env.fd, &["--user", ANN, "--read-only"]);
    for method in ["GET", "HEAD", "OPTIONS"] {
        let got = env
            .pass(req(method, "/tracker/1", Cred::ApiToken(&ro)))
            .await;
        assert_ann(&got, "read-only");
    }
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        env.refused(
            req(method, "/tracker/1", Cred::ApiToken(&ro)),
            403,
            Some("forbidden"),
        )
        .await;
    }
    // A safe method that asks to be treated as another is refused, whatever it asks for.
    for (header, value) in [
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method-Override", "GET"),
        ("X-HTTP-Method", "PUT"),
        ("X-Method-Override", "PATCH"),
    ] {
        env.refused(
            get("/tracker/1", Cred::ApiToken(&ro)).with(header, value),
            403,
            Some("forbidden"),
        )
        .await;
    }
    let methods: Vec<String> = env.up.received().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        ["GET", "HEAD", "OPTIONS"],
        "the upstream saw only the safe methods"
    );
    assert!(
        env.up
            .received()
            .iter()
            .all(|r| r.header("x-http-method-override").is_none())
    );

    // The same writes with a read-write token of the same user pass.
    let (_, rw) = create_token(&env.fd, &["--user", ANN]);
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let got = env
            .pass(req(method, "/tracker/1", Cred::ApiToken(&rw)))
            .await;
        assert_ann(&got, "read-write");
    }
}

#[tokio::test]
async fn api_token_malformed_revoked_and_of_another_tenant_are_refused() {
    let env = start(|c| c).await;
    // Malformed, or well-formed but unknown.
    for bad in [
        "garbage",
        "fdt_",
        "fdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        env.refused(
            get("/wiki", Cred::ApiToken(bad)),
            401,
            Some("invalid_token"),
        )
        .await;
    }
    // Another tenant's resource: 404, both ways.
    let (_, ann) = create_token(&env.fd, &["--user", ANN]);
    let (_, bob) = create_token(&env.fd, &["--user", BOB, "--tenant", "acme"]);
    env.refused(get("/wiki", Cred::ApiToken(&bob)), 404, Some("not_found"))
        .await;
    env.refused(
        get("/wiki", Cred::ApiToken(&ann)).on(ACME),
        404,
        Some("not_found"),
    )
    .await;
    env.pass(get("/wiki", Cred::ApiToken(&bob)).on(ACME)).await;

    // Revoked while cached (it was just used): refused within the cache bound.
    let (id, token) = create_token(&env.fd, &["--user", ANN, "--read-only"]);
    env.pass(get("/wiki", Cred::ApiToken(&token))).await;
    cli_ok(&env.fd, &["tokens", "revoke", &id]);
    env.refused_within(
        get("/wiki", Cred::ApiToken(&token)),
        REVOCATION_BOUND,
        401,
        Some("invalid_token"),
    )
    .await;
    // And stays refused, on every method.
    env.refused(req("DELETE", "/wiki", Cred::ApiToken(&token)), 401, None)
        .await;
    // Revoking twice is an error; the other tokens still work.
    assert!(
        !env.fd
            .cli(&["tokens", "revoke", &id], None)
            .status
            .success()
    );
    env.pass(get("/wiki", Cred::ApiToken(&ann))).await;
}

#[tokio::test]
async fn tokens_list_shows_metadata_and_last_use_but_never_the_token() {
    let env = start(|c| c).await;
    let before = now_secs();
    let (id, token) = create_token(
        &env.fd,
        &["--user", ANN, "--read-only", "--name", "nightly export"],
    );
    let (_, other) = create_token(&env.fd, &["--user", ANN, "--name", "deploy"]);

    let row = |list: &Value| -> Value {
        list.as_array()
            .expect("an array")
            .iter()
            .find(|r| r["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("token {id} listed in {list}"))
    };
    let list = env.fd.cli_json(&["tokens", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let r = row(&list);
    assert_eq!(r["name"], "nightly export");
    assert_eq!(r["user"], ANN);
    assert_eq!(r["tenant"], "default");
    assert_eq!(r["access"], "read-only");
    assert_eq!(r["revoked"], false);
    let created = r["created_at"].as_i64().expect("created_at");
    assert!(created >= before && created <= now_secs(), "{r}");
    assert!(r["last_used_at"].is_null(), "never used yet: {r}");

    // Used once: the list shows when (recorded in the background).
    env.pass(get("/wiki", Cred::ApiToken(&token))).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let used = loop {
        let r = row(&env.fd.cli_json(&["tokens", "list", "--json"]));
        if let Some(t) = r["last_used_at"].as_i64() {
            break t;
        }
        assert!(Instant::now() < deadline, "last use never recorded: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(used >= created && used <= now_secs());

    cli_ok(&env.fd, &["tokens", "revoke", &id]);
    let r = row(&env.fd.cli_json(&["tokens", "list", "--json"]));
    assert_eq!(r["revoked"], true);

    // Neither the JSON nor the text listing ever shows a token value.
    let json_text = cli_ok(&env.fd, &["tokens", "list", "--json"]);
    let plain = cli_ok(&env.fd, &["tokens", "list"]);
    for t in [&token, &other] {
        assert!(!json_text.contains(t.as_str()), "{json_text}");
        assert!(!plain.contains(t.as_str()), "{plain}");
        assert!(!json_text.contains(t.trim_start_matches("fdt_")));
    }
    assert!(
        plain.contains("nightly export") && plain.contains("read-only"),
        "{plain}"
    );
}

// =============================================================================================
// Bearer JWTs from the login API.

#[tokio::test]
async fn login_check_bearer_reaches_the_upstream_and_is_bound_to_its_tenant() {
    let env = start(|c| c).await;
    let a = login_check(&env.fd, None, ANN, PASSWORD).await;
    let (token, _) = pair(&a);
    assert_eq!(a.body["expires_in"], 3600);
    let got = env
        .pass(req("PUT", "/wiki/page", Cred::Bearer(&token)))
        .await;
    assert_ann(&got, "read-write");

    // Wrong password, unknown user, the right password on another tenant's host.
    for (host, email, password) in [
        (None, ANN, "wrong password"),
        (None, "nobody@example.com", PASSWORD),
        (Some(ACME), ANN, PASSWORD),
        (None, BOB, PASSWORD),
    ] {
        let a = login_check(&env.fd, host, email, password).await;
        assert_refusal(
            &a,
            401,
            Some("invalid_credentials"),
            &format!("login-check {email} on {host:?}"),
        );
        assert!(a.body.get("token").is_none());
    }

    // Bound to its tenant: Ann's token on acme's host, Bob's on the default host.
    env.refused(
        get("/wiki", Cred::Bearer(&token)).on(ACME),
        401,
        Some("invalid_token"),
    )
    .await;
    let (bob, _) = pair(&login_check(&env.fd, Some(ACME), BOB, PASSWORD).await);
    let got = env.pass(get("/wiki", Cred::Bearer(&bob)).on(ACME)).await;
    assert_identity(&got, BOB, Some(BOB), "acme", "read-write");
    env.refused(get("/wiki", Cred::Bearer(&bob)), 401, Some("invalid_token"))
        .await;

    // Malformed.
    for bad in ["not-a-jwt", "a.b.c", "e30.e30.", &token[..token.len() - 4]] {
        env.refused(get("/wiki", Cred::Bearer(bad)), 401, Some("invalid_token"))
            .await;
    }
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_refresh_token_revokes_the_family() {
    let env = start(|c| c).await;
    let (token1, refresh1) = ann_pair(&env.fd).await;
    env.pass(get("/wiki", Cred::Bearer(&token1))).await;

    let (token2, refresh2) = pair(&refresh(&env.fd, None, &refresh1).await);
    assert_ne!(token1, token2);
    assert_ne!(refresh1, refresh2);
    assert_ann(
        &env.pass(get("/wiki", Cred::Bearer(&token2))).await,
        "read-write",
    );

    // Another tenant's host may not refresh it (and that does not burn it).
    let other = refresh(&env.fd, Some(ACME), &refresh2).await;
    assert_refusal(
        &other,
        401,
        Some("invalid_token"),
        "refresh on another tenant",
    );
    // The old refresh token is dead, and reusing it revokes the whole family.
    let reused = refresh(&env.fd, None, &refresh1).await;
    assert_refusal(&reused, 401, Some("invalid_token"), "reused refresh token");
    let after = refresh(&env.fd, None, &refresh2).await;
    assert_refusal(
        &after,
        401,
        Some("invalid_token"),
        "refresh token of a revoked family",
    );
    // ... and so are the family's access tokens, within the cache bound.
    for t in [&token2, &token1] {
        env.refused_within(
            get("/wiki", Cred::Bearer(t)),
            REVOCATION_BOUND,
            401,
            Some("invalid_token"),
        )
        .await;
    }
    // Unknown refresh tokens.
    let a = refresh(&env.fd, None, "no-such-refresh-token").await;
    assert_refusal(&a, 401, Some("invalid_token"), "unknown refresh token");
    // A fresh login is a new family and works.
    let (token3, _) = ann_pair(&env.fd).await;
    env.pass(get("/wiki", Cred::Bearer(&token3))).await;
}

#[tokio::test]
async fn forged_tampered_foreign_and_id_tokens_are_refused() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    let (token, _) = ann_pair(fd).await;
    let (header, payload, signature) = jwt_parts(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    let (kid, public, jwks_text) = published_key(fd).await;
    assert_eq!(header["kid"], kid.as_str());
    // The header exactly as frontdoor encoded it, so a tampered payload changes nothing else.
    let h = token.split('.').next().expect("header").to_string();
    let p = b64_json(&payload);
    env.pass(get("/wiki", Cred::Bearer(&token))).await;

    // Control: the same claims signed with frontdoor's own key by jwt-simple pass, so each
    // refusal below is about the one thing changed.
    let own = own_signing_key(fd, &kid);
    let resigned = sign(&own, "at+jwt", &payload);
    assert_ne!(resigned, token);
    assert_ann(
        &env.pass(get("/wiki", Cred::Bearer(&resigned))).await,
        "read-write",
    );

    let mut forged: Vec<(String, String)> = Vec::new();
    // alg: none, with and without a signature part, any spelling.
    for alg in ["none", "None", "NONE"] {
        let mut hn = header.clone();
        hn["alg"] = alg.into();
        forged.push((format!("alg {alg}"), format!("{}.{p}.", b64_json(&hn))));
        forged.push((
            format!("alg {alg}, no dot"),
            format!("{}.{p}", b64_json(&hn)),
        ));
        forged.push((
            format!("alg {alg}, old signature"),
            format!("{}.{p}.{signature}", b64_json(&hn)),
        ));
    }
    // HS256 keyed with the public key: the JWKS document, the JWK, the PEM.
    let jwk =
        serde_json::to_string(&serde_json::from_str::<Value>(&jwks_text).expect("jwks")["keys"][0])
            .expect("jwk");
    let pem = public.to_pem().expect("PEM");
    for (what, secret) in [
        ("JWKS text", jwks_text.clone()),
        ("JWK text", jwk),
        ("PEM", pem.clone()),
        ("PEM trimmed", pem.trim().to_string()),
    ] {
        let key = HS256Key::from_bytes(secret.as_bytes()).with_key_id(&kid);
        let t = key
            .authenticate_with_options(raw_claims(&payload), &typ("at+jwt"))
            .expect("HS256");
        forged.push((format!("HS256 keyed with the {what}"), t));
    }
    // Tampered payloads, signature kept: another user, a later expiry.
    let carl = fd.user_id(CARL);
    let mut as_carl = payload.clone();
    as_carl["sub"] = carl.into();
    forged.push((
        "sub changed".into(),
        format!("{h}.{}.{signature}", b64_json(&as_carl)),
    ));
    let mut later = payload.clone();
    later["exp"] = (payload["exp"].as_i64().expect("exp") + 86_400).into();
    forged.push((
        "exp changed".into(),
        format!("{h}.{}.{signature}", b64_json(&later)),
    ));
    let mut other_tenant = payload.clone();
    other_tenant["tnt"] = "acme".into();
    forged.push((
        "tnt changed".into(),
        format!("{h}.{}.{signature}", b64_json(&other_tenant)),
    ));
    // Properly signed by frontdoor's key, but expired (well past any leeway).
    let mut expired = payload.clone();
    let now = now_secs();
    expired["iat"] = (now - 7200).into();
    expired["nbf"] = (now - 7200).into();
    expired["exp"] = (now - 600).into();
    forged.push(("expired".into(), sign(&own, "at+jwt", &expired)));
    // Properly signed by frontdoor's key, but typed as an ID token (typ JWT).
    forged.push(("typ JWT".into(), sign(&own, "JWT", &payload)));
    // Another frontdoor's token, and another key presenting this instance's kid.
    let other_env = start(|c| c).await;
    let (foreign, _) = ann_pair(&other_env.fd).await;
    forged.push(("another instance's token".into(), foreign.clone()));
    let (other_kid, _, _) = published_key(&other_env.fd).await;
    assert_ne!(other_kid, kid);
    let other_key = own_signing_key(&other_env.fd, &kid);
    forged.push((
        "another key with our kid".into(),
        sign(&other_key, "at+jwt", &payload),
    ));
    // A real ID token of this instance.
    forged.push(("a real ID token".into(), real_id_token(fd).await));

    for (what, t) in &forged {
        let a = env
            .refused(get("/wiki", Cred::Bearer(t)), 401, Some("invalid_token"))
            .await;
        if what == "expired" {
            assert_eq!(a.body["error"]["message"], "token expired", "{}", a.text);
        }
    }
    // The foreign token works where it was issued; the original still works here.
    let other_got = other_env.pass(get("/wiki", Cred::Bearer(&foreign))).await;
    assert_eq!(
        other_got.header("x-auth-request-user").as_deref(),
        Some(ANN)
    );
    env.pass(get("/wiki", Cred::Bearer(&token))).await;
}

// =============================================================================================
// Emailed one-time codes.

#[tokio::test]
async fn otp_code_signs_in_once_and_its_bearer_reaches_the_upstream() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    let code = mailed_code(fd, None, ANN).await;
    let a = verify_otp(fd, None, ANN, &code).await;
    let (token, refresh_token) = pair(&a);
    let got = env
        .pass(req("POST", "/wiki/edit", Cred::Bearer(&token)))
        .await;
    assert_ann(&got, "read-write");

    // Used once: the same code fails the second time.
    let again = verify_otp(fd, None, ANN, &code).await;
    assert_refusal(&again, 401, Some("invalid_code"), "a used code");
    assert!(again.body.get("token").is_none());

    // Malformed codes.
    for bad in ["12345", "1234567", "12a456", ""] {
        let a = verify_otp(fd, None, ANN, bad).await;
        assert_refusal(&a, 401, Some("invalid_code"), &format!("code {bad:?}"));
    }

    // Bound to its tenant.
    env.refused(
        get("/wiki", Cred::Bearer(&token)).on(ACME),
        401,
        Some("invalid_token"),
    )
    .await;
    // A code is for the tenant it was asked on: Bob signs in on acme's host ...
    let bob_code = mailed_code(fd, Some(ACME), BOB).await;
    let wrong_host = verify_otp(fd, None, BOB, &bob_code).await;
    assert_refusal(
        &wrong_host,
        401,
        Some("invalid_code"),
        "a code of another tenant",
    );
    let (bob, _) = pair(&verify_otp(fd, Some(ACME), BOB, &bob_code).await);
    let got = env.pass(get("/wiki", Cred::Bearer(&bob)).on(ACME)).await;
    assert_identity(&got, BOB, Some(BOB), "acme", "read-write");
    env.refused(get("/wiki", Cred::Bearer(&bob)), 401, Some("invalid_token"))
        .await;

    // Revoked: reusing the OTP pair's refresh token kills its access token too.
    let (_, refresh2) = pair(&refresh(fd, None, &refresh_token).await);
    assert_eq!(refresh(fd, None, &refresh_token).await.status, 401);
    assert_eq!(refresh(fd, None, &refresh2).await.status, 401);
    env.refused_within(
        get("/wiki", Cred::Bearer(&token)),
        REVOCATION_BOUND,
        401,
        Some("invalid_token"),
    )
    .await;
}

#[tokio::test]
async fn five_wrong_otp_codes_kill_the_code() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    let code = mailed_code(fd, None, ANN).await;
    let n: u32 = code.parse().expect("digits");
    let wrong = format!("{:06}", (n + 1) % 1_000_000);
    for attempt in 1..=5 {
        let a = verify_otp(fd, None, ANN, &wrong).await;
        assert_refusal(
            &a,
            401,
            Some("invalid_code"),
            &format!("wrong code, attempt {attempt}"),
        );
    }
    let a = verify_otp(fd, None, ANN, &code).await;
    assert_refusal(
        &a,
        401,
        Some("invalid_code"),
        "the right code after five wrong ones",
    );
    assert!(a.body.get("token").is_none());

    // A new code works again.
    let fresh = mailed_code(fd, None, ANN).await;
    let (token, _) = pair(&verify_otp(fd, None, ANN, &fresh).await);
    env.pass(get("/wiki", Cred::Bearer(&token))).await;
}

#[tokio::test]
async fn otp_request_for_an_unknown_email_looks_the_same_and_sends_nothing() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    let seen = mails(fd);
    let unknown = request_otp(fd, None, "nobody@example.com").await;
    // Ann is not a user of tenant acme.
    let other_tenant = request_otp(fd, Some(ACME), ANN).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mails(fd), seen, "no mail for an unknown address");

    let known = request_otp(fd, None, ANN).await;
    for a in [&unknown, &other_tenant] {
        assert_eq!(a.status, 202);
        assert_eq!(a.status, known.status);
        assert_eq!(a.text, known.text, "the same body");
        assert_eq!(a.header("content-type"), known.header("content-type"));
    }
    let mail = next_mail(fd, &seen).await;
    assert!(mail.contains(ANN), "{mail}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mails(fd).difference(&seen).count(),
        1,
        "exactly one mail, Ann's"
    );

    // No code is pending for the unknown address.
    let a = verify_otp(fd, None, "nobody@example.com", "123456").await;
    assert_refusal(
        &a,
        401,
        Some("invalid_code"),
        "a code for an unknown address",
    );
}

#[tokio::test]
async fn expired_otp_code_is_refused() {
    let env = start(|c| c.set("otp.ttl", "1s")).await;
    let fd = &env.fd;
    let code = mailed_code(fd, None, ANN).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let a = verify_otp(fd, None, ANN, &code).await;
    assert_refusal(&a, 401, Some("invalid_code"), "an expired code");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{}",
        a.text
    );
}

// =============================================================================================
// Contact hashes.

#[tokio::test]
async fn contact_hash_opens_only_its_path_on_routes_that_allow_it() {
    let env = start(|c| c).await;
    let before = now_secs();
    let c = link_contact(
        &env.fd,
        &["--email", "Guest@Example.org", "--path", "/events/42"],
    );
    let (id, hash) = (
        c["id"].as_str().expect("id"),
        c["hash"].as_str().expect("hash"),
    );
    assert_eq!(c["path"], "/events/42");
    let expires = c["expires_at"].as_i64().expect("expires_at");
    let thirty_days = 30 * 24 * 3600;
    assert!(
        (before + thirty_days..=now_secs() + thirty_days).contains(&expires),
        "{c}"
    );

    let user = format!("contact:{id}");
    for path in ["/events/42", "/events/42/photos?page=2", "/events/42/"] {
        let got = env.pass(get(path, Cred::Contact(hash))).await;
        assert_identity(
            &got,
            &user,
            Some("guest@example.org"),
            "default",
            "read-write",
        );
        for absent in [
            "x-auth-request-groups",
            "x-auth-request-roles",
            "x-auth-request-name",
        ] {
            assert!(
                got.header(absent).is_none(),
                "{absent} for a contact: {got:?}"
            );
        }
    }
    env.pass(req("POST", "/events/42/rsvp", Cred::Contact(hash)))
        .await;

    // Another page of the same route: 403.
    for path in ["/events/43", "/events/420", "/events", "/events/4"] {
        env.refused(get(path, Cred::Contact(hash)), 403, Some("forbidden"))
            .await;
    }
    // A route that does not take contact hashes: 401.
    for path in ["/wiki", "/backend/events/42"] {
        env.refused(get(path, Cred::Contact(hash)), 401, Some("invalid_token"))
            .await;
    }
    // Malformed or unknown.
    for bad in ["nope", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        env.refused(
            get("/events/42", Cred::Contact(bad)),
            401,
            Some("invalid_token"),
        )
        .await;
    }
}

#[tokio::test]
async fn contact_hash_revoked_or_of_another_tenant_is_refused() {
    let env = start(|c| c).await;
    let c = link_contact(
        &env.fd,
        &["--email", "guest@example.org", "--path", "/events/42"],
    );
    let (id, hash) = (
        c["id"].as_str().expect("id"),
        c["hash"].as_str().expect("hash"),
    );
    let acme = link_contact(
        &env.fd,
        &[
            "--email",
            "guest@example.org",
            "--path",
            "/events/42",
            "--tenant",
            "acme",
        ],
    );
    let acme_hash = acme["hash"].as_str().expect("hash");

    // Another tenant's contact: 404, both ways; each works on its own tenant's hosts.
    env.refused(
        get("/events/42", Cred::Contact(acme_hash)),
        404,
        Some("not_found"),
    )
    .await;
    env.refused(
        get("/events/42", Cred::Contact(hash)).on(ACME),
        404,
        Some("not_found"),
    )
    .await;
    let got = env
        .pass(get("/events/42", Cred::Contact(acme_hash)).on(ACME))
        .await;
    assert_identity(
        &got,
        &format!("contact:{}", acme["id"].as_str().expect("id")),
        Some("guest@example.org"),
        "acme",
        "read-write",
    );

    // Revoked while cached: refused within the bound.
    env.pass(get("/events/42", Cred::Contact(hash))).await;
    cli_ok(&env.fd, &["contacts", "revoke", id]);
    env.refused_within(
        get("/events/42", Cred::Contact(hash)),
        REVOCATION_BOUND,
        401,
        Some("invalid_token"),
    )
    .await;
    let listed = env.fd.cli_json(&["contacts", "list", "--json"]);
    let row = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .expect("listed");
    assert_eq!(row["revoked"], true);
    assert!(
        !listed.to_string().contains(hash),
        "the hash is never listed"
    );
}

// =============================================================================================
// client_credentials.

#[tokio::test]
async fn client_credentials_tokens_verify_independently_and_reach_the_upstream_as_the_app() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    // An app's machine token passes only routes of an audience an administrator granted it.
    let (id, secret) = service_app(fd, &["--scopes", "profile email", "--audience", "backend"]);
    let (kid, public, _) = published_key(fd).await;
    // (endpoint, client authentication, scope parameter, the scope granted)
    type Case<'a> = (&'a str, Client<'a>, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (
            "/oauth/token",
            Client::Basic(&id, &secret),
            &[("scope", "profile email")],
            "profile email",
        ),
        (
            "/oauth/token",
            Client::Post(&id, &secret),
            &[("scopes", "email")],
            "email",
        ),
        (
            "/oauth2-token",
            Client::Basic(&id, &secret),
            &[("scopes", "profile")],
            "profile",
        ),
        (
            "/oauth2-token",
            Client::Post(&id, &secret),
            &[("scope", "email profile")],
            "email profile",
        ),
        (
            "/oauth/token",
            Client::Post(&id, &secret),
            &[],
            "profile email",
        ),
    ];
    for (path, client, extra, scope) in cases {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let a = token_request(fd, path, client, &form).await;
        let what = format!("{path} {extra:?}");
        assert_eq!(a.status, 200, "{what}: {}", a.text);
        assert!(
            a.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}"
        );
        assert!(
            a.header("cache-control")
                .is_some_and(|c| c.contains("no-store")),
            "{what}"
        );
        assert_eq!(a.body["token_type"], "Bearer", "{what}");
        assert_eq!(a.body["expires_in"], 3600, "{what}");
        assert!(
            a.body.get("refresh_token").is_none(),
            "{what}: no refresh token"
        );
        assert!(a.body.get("id_token").is_none(), "{what}: no ID token");
        assert_eq!(a.body["scope"], scope, "{what}");
        let token = a.str("access_token");

        let (header, _, _) = jwt_parts(&token);
        assert_eq!(header["alg"], "RS256", "{what}");
        assert_eq!(header["kid"], kid.as_str(), "{what}");
        let claims = verify_access_token(&public, &token, &fd.issuer(), "backend")
            .unwrap_or_else(|e| panic!("{what}: jwt-simple verifies against /oauth/jwks: {e}"));
        let iat = claims.issued_at.expect("iat").as_secs();
        let exp = claims.expires_at.expect("exp").as_secs();
        assert_eq!(exp - iat, 3600, "{what}: valid for an hour");
        let now = now_secs() as u64;
        assert!(iat <= now + 1 && iat + 60 >= now, "{what}: iat is now");
        assert_eq!(claims.subject.as_deref(), Some(id.as_str()), "{what}");
        assert_eq!(claims.custom["client_id"], id.as_str(), "{what}");
        assert_eq!(claims.custom["scope"], scope, "{what}");
        // The verification is real: one changed signature byte, or another audience, fails.
        let mut bad = token.clone();
        let last = bad.pop().expect("char");
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verify_access_token(&public, &bad, &fd.issuer(), "backend").is_err());
        assert!(verify_access_token(&public, &token, &fd.issuer(), &fd.issuer()).is_err());

        let got = env
            .pass(req("POST", "/backend/reports/run", Cred::Bearer(&token)))
            .await;
        assert_identity(&got, &format!("app:{id}"), None, "default", "read-write");
        assert!(got.header("x-auth-request-groups").is_none());
        assert!(got.header("x-auth-request-roles").is_none());
    }
}

#[tokio::test]
async fn client_credentials_errors_follow_rfc6749() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    let grant = [("grant_type", "client_credentials")];
    // An app without the grant.
    let (web, web_secret) = fd.create_app(&["--name", "Web", "--redirect-uri", CALLBACK]);
    let web_secret = web_secret.expect("secret");
    for path in ["/oauth/token", "/oauth2-token"] {
        let a = token_request(fd, path, Client::Basic(&web, &web_secret), &grant).await;
        assert_oauth_error(&a, 400, "unauthorized_client");
    }
    // Scopes beyond the app's, by either name; user-only scopes.
    let (id, secret) = service_app(fd, &["--scopes", "profile email", "--audience", "backend"]);
    for (name, scope) in [
        ("scope", "profile roles"),
        ("scopes", "groups"),
        ("scope", "openid"),
        ("scope", "offline_access"),
    ] {
        let a = token_request(
            fd,
            "/oauth/token",
            Client::Post(&id, &secret),
            &[("grant_type", "client_credentials"), (name, scope)],
        )
        .await;
        assert_oauth_error(&a, 400, "invalid_scope");
    }
    // An audience the app is not registered for.
    let a = token_request(
        fd,
        "/oauth/token",
        Client::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "frontend"),
        ],
    )
    .await;
    assert_oauth_error(&a, 400, "invalid_target");
    // Wrong or missing client authentication.
    let a = token_request(fd, "/oauth/token", Client::Basic(&id, "wrong"), &grant).await;
    assert_oauth_error(&a, 401, "invalid_client");
    let a = token_request(fd, "/oauth2-token", Client::Post(&id, "wrong"), &grant).await;
    assert_oauth_error(&a, 401, "invalid_client");
    let a = Answer::read(
        plain_client()
            .post(fd.url("/oauth/token"))
            .form(&grant)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_oauth_error(&a, 401, "invalid_client");
}

#[tokio::test]
async fn route_audience_decides_which_tokens_pass() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    let (backend_app, s1) = service_app(fd, &["--scopes", "profile", "--audience", "backend"]);
    let token = cc_token(fd, Client::Basic(&backend_app, &s1), &[]).await;
    assert_eq!(jwt_parts(&token).1["aud"], "backend");
    let got = env.pass(get("/backend/jobs", Cred::Bearer(&token))).await;
    assert_identity(
        &got,
        &format!("app:{backend_app}"),
        None,
        "default",
        "read-write",
    );
    env.refused(
        get("/frontend/jobs", Cred::Bearer(&token)),
        401,
        Some("invalid_token"),
    )
    .await;
    env.refused(
        get("/wiki", Cred::Bearer(&token)),
        401,
        Some("invalid_token"),
    )
    .await;

    // An app with two audiences picks one with `resource` (or `audience`).
    let (both, s2) = service_app(
        fd,
        &[
            "--scopes",
            "profile",
            "--audience",
            "backend",
            "--audience",
            "frontend",
        ],
    );
    let front = cc_token(fd, Client::Post(&both, &s2), &[("resource", "frontend")]).await;
    env.pass(get("/frontend/x", Cred::Bearer(&front))).await;
    env.refused(
        get("/backend/x", Cred::Bearer(&front)),
        401,
        Some("invalid_token"),
    )
    .await;
    let back = cc_token(fd, Client::Post(&both, &s2), &[("audience", "backend")]).await;
    env.pass(get("/backend/x", Cred::Bearer(&back))).await;
    env.refused(
        get("/frontend/x", Cred::Bearer(&back)),
        401,
        Some("invalid_token"),
    )
    .await;

    // A user's login-check token is for frontdoor itself (aud = issuer).
    let (user_token, _) = ann_pair(fd).await;
    assert_eq!(jwt_parts(&user_token).1["aud"], fd.issuer().as_str());
    env.refused(
        get("/backend/jobs", Cred::Bearer(&user_token)),
        401,
        Some("invalid_token"),
    )
    .await;
    env.refused(
        get("/frontend/jobs", Cred::Bearer(&user_token)),
        401,
        Some("invalid_token"),
    )
    .await;
    assert_ann(
        &env.pass(get("/wiki", Cred::Bearer(&user_token))).await,
        "read-write",
    );
}

#[tokio::test]
async fn client_credentials_token_of_a_deactivated_app_or_another_tenant_is_refused() {
    let env = start(|c| c).await;
    let fd = &env.fd;
    // Another tenant's app: its token is bound to acme.
    let (acme_app, s) = service_app(
        fd,
        &[
            "--scopes",
            "profile",
            "--tenant",
            "acme",
            "--audience",
            "backend",
        ],
    );
    let acme_token = cc_token(fd, Client::Basic(&acme_app, &s), &[]).await;
    env.refused(
        get("/backend/jobs", Cred::Bearer(&acme_token)),
        401,
        Some("invalid_token"),
    )
    .await;
    let got = env
        .pass(get("/backend/jobs", Cred::Bearer(&acme_token)).on(ACME))
        .await;
    assert_identity(&got, &format!("app:{acme_app}"), None, "acme", "read-write");

    // Deactivated while its token is cached: refused within the bound; so are new grants.
    let (id, secret) = service_app(fd, &["--scopes", "profile", "--audience", "backend"]);
    let token = cc_token(fd, Client::Basic(&id, &secret), &[]).await;
    env.pass(get("/backend/jobs", Cred::Bearer(&token))).await;
    cli_ok(fd, &["apps", "deactivate", &id]);
    env.refused_within(
        get("/backend/jobs", Cred::Bearer(&token)),
        REVOCATION_BOUND,
        401,
        Some("invalid_token"),
    )
    .await;
    let a = token_request(
        fd,
        "/oauth/token",
        Client::Basic(&id, &secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(&a, 401, "invalid_client");
}

// =============================================================================================
// Expiry.

#[tokio::test]
async fn short_lived_credentials_expire() {
    let env = start(|c| c.set("tokens.access_token_ttl", "2s")).await;
    let fd = &env.fd;
    // The slow steps (CLI, mail) first, so every credential is fresh when first used.
    let (app, secret) = service_app(fd, &["--scopes", "profile", "--audience", "backend"]);
    let code = mailed_code(fd, None, CARL).await;
    let a = login_check(fd, None, ANN, PASSWORD).await;
    assert_eq!(a.body["expires_in"], 2, "{}", a.text);
    let (password_jwt, _) = pair(&a);
    let (otp_jwt, _) = pair(&verify_otp(fd, None, CARL, &code).await);
    let cc = token_request(
        fd,
        "/oauth/token",
        Client::Basic(&app, &secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(cc.body["expires_in"], 2, "{}", cc.text);
    let app_jwt = cc.str("access_token");
    let c = link_contact(
        fd,
        &[
            "--email",
            "guest@example.org",
            "--path",
            "/events/1",
            "--ttl",
            "2s",
        ],
    );
    let hash = c["hash"].as_str().expect("hash");
    let contact_expires = c["expires_at"].as_i64().expect("expires_at");

    // Good now (the app's token on the route of its audience).
    for (path, t) in [
        ("/wiki", &password_jwt),
        ("/wiki", &otp_jwt),
        ("/backend/jobs", &app_jwt),
    ] {
        env.pass(get(path, Cred::Bearer(t))).await;
    }
    env.pass(get("/events/1", Cred::Contact(hash))).await;

    // Refused once expired: a contact hash at its expiry, a JWT at `exp` plus the leeway.
    let slack = Duration::from_secs(3);
    let contact_left = Duration::from_secs((contact_expires - now_secs()).max(0) as u64);
    env.refused_within(
        get("/events/1", Cred::Contact(hash)),
        contact_left + slack,
        401,
        Some("invalid_token"),
    )
    .await;
    for (what, path, t) in [
        ("login-check", "/wiki", &password_jwt),
        ("otp", "/wiki", &otp_jwt),
        ("client_credentials", "/backend/jobs", &app_jwt),
    ] {
        let exp = jwt_parts(t).1["exp"].as_i64().expect("exp");
        let left = Duration::from_secs((exp - now_secs()).max(0) as u64);
        let a = env
            .refused_within(
                get(path, Cred::Bearer(t)),
                left + EXP_LEEWAY + slack,
                401,
                Some("invalid_token"),
            )
            .await;
        assert_eq!(
            a.body["error"]["message"], "token expired",
            "{what}: {}",
            a.text
        );
        assert!(now_secs() >= exp, "{what} refused only once expired");
    }
}
