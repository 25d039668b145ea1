//! A scripted upstream OpenID provider for the federation tests: discovery, JWKS, an
//! authorization endpoint that answers at once, a token endpoint whose ID token is built as the
//! test's [`Script`] says (signed with the key it publishes unless told otherwise) and a
//! userinfo endpoint. It plays the provider where the real one (`idp.rs`) cannot be made to
//! misbehave, and counts the requests it receives, by path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{HeaderOptions, JWTClaims, RS256KeyPair, RS256PublicKey, RSAKeyPairLike};
use serde_json::{Map, Value, json};
use url::Url;

use crate::harness::{Frontdoor, location, navigate};

/// frontdoor's client at the providers of the federation tests.
pub(crate) const CLIENT_ID: &str = "fd";
pub(crate) const CLIENT_SECRET: &str = "s3cret";
/// The prefix of the access tokens the provider issues; userinfo takes no other bearer.
const ACCESS_TOKEN_PREFIX: &str = "scripted-at-";

/// What the provider does next; tests change it between sign-ins.
#[derive(Clone, Debug)]
pub struct Script {
    /// Merged over the protocol claims of the next ID token (`iss`, `aud`, `sub`, `iat`,
    /// `exp`, `nonce`); a `null` removes a claim.
    pub claims: Value,
    /// The userinfo answer (merged over `{"sub": <the scripted sub>}`).
    pub userinfo: Value,
    /// Bytes of filler added to the userinfo answer.
    pub userinfo_padding: usize,
    /// The `iss` authorization response parameter (RFC 9207): `None` leaves it out.
    pub iss_param: Option<String>,
    /// The `kid` the next ID token is signed under (the published key either way).
    pub kid: Option<String>,
    /// Sign the next ID token with a key the provider does not publish (same `kid`).
    pub foreign_key: bool,
}

pub struct ScriptedIdp {
    pub issuer: String,
    pub key: RS256KeyPair,
    script: Arc<Mutex<Script>>,
    /// Requests received, by path.
    hits: Arc<Mutex<HashMap<String, usize>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl ScriptedIdp {
    /// A provider publishing one key under `kid`, whose subject is `sub` unless the script's
    /// claims name another; `advertise_iss` announces RFC 9207's `iss` parameter in discovery.
    pub async fn start(kid: &str, sub: &str, advertise_iss: bool) -> ScriptedIdp {
        use axum::extract::{Form, Query, Request};
        use axum::middleware::{self, Next};
        use axum::response::{IntoResponse, Redirect};
        use axum::routing::{get, post};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let key = RS256KeyPair::generate(2048)
            .expect("RSA key")
            .with_key_id(kid);
        let foreign = RS256KeyPair::generate(2048)
            .expect("RSA key")
            .with_key_id(kid);
        let script = Arc::new(Mutex::new(Script {
            claims: json!({}),
            userinfo: json!({}),
            userinfo_padding: 0,
            iss_param: None,
            kid: None,
            foreign_key: false,
        }));
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let nonces: Arc<Mutex<HashMap<String, String>>> = Arc::default();

        let mut discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        });
        if advertise_iss {
            discovery["authorization_response_iss_parameter_supported"] = json!(true);
        }
        let c = key.public_key().to_components();
        let jwks = json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e),
        }]});

        let auth_nonces = nonces.clone();
        let auth_script = script.clone();
        let token_script = script.clone();
        let info_script = script.clone();
        let token_key = key.clone();
        let token_issuer = issuer.clone();
        let token_sub = sub.to_string();
        let info_sub = sub.to_string();
        let counted = hits.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", get(move || async move { axum::Json(jwks) }))
            .route(
                "/auth",
                get(move |Query(q): Query<HashMap<String, String>>| {
                    let nonces = auth_nonces.clone();
                    let iss = auth_script.lock().expect("lock").iss_param.clone();
                    async move {
                        let code = random_id();
                        nonces
                            .lock()
                            .expect("lock")
                            .insert(code.clone(), q["nonce"].clone());
                        let mut back = Url::parse(&q["redirect_uri"]).expect("redirect_uri");
                        back.query_pairs_mut()
                            .append_pair("code", &code)
                            .append_pair("state", &q["state"]);
                        if let Some(iss) = iss {
                            back.query_pairs_mut().append_pair("iss", &iss);
                        }
                        Redirect::to(back.as_str())
                    }
                }),
            )
            .route(
                "/token",
                post(move |Form(f): Form<HashMap<String, String>>| {
                    let nonce = nonces.lock().expect("lock").remove(&f["code"]);
                    let s = token_script.lock().expect("lock").clone();
                    let signer = if s.foreign_key {
                        foreign.clone()
                    } else {
                        token_key.clone()
                    };
                    let signer = match &s.kid {
                        Some(kid) => signer.with_key_id(kid),
                        None => signer,
                    };
                    let issuer = token_issuer.clone();
                    let sub = token_sub.clone();
                    async move {
                        let Some(nonce) = nonce else {
                            return (
                                axum::http::StatusCode::BAD_REQUEST,
                                axum::Json(json!({"error": "invalid_grant"})),
                            )
                                .into_response();
                        };
                        let mut claims = json!({
                            "iss": issuer, "aud": CLIENT_ID, "sub": sub,
                            "iat": now(), "exp": now() + 600, "nonce": nonce,
                        });
                        let object = claims.as_object_mut().expect("object");
                        for (k, v) in s.claims.as_object().expect("claims object") {
                            if v.is_null() {
                                object.remove(k);
                            } else {
                                object.insert(k.clone(), v.clone());
                            }
                        }
                        axum::Json(json!({
                            "access_token": format!("{ACCESS_TOKEN_PREFIX}{}", random_id()),
                            "token_type": "Bearer", "expires_in": 600,
                            "id_token": sign(&signer, "JWT", &claims),
                        }))
                        .into_response()
                    }
                }),
            )
            .route(
                "/userinfo",
                get(move |headers: axum::http::HeaderMap| {
                    let s = info_script.lock().expect("lock").clone();
                    let sub = info_sub.clone();
                    async move {
                        let bearer = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .unwrap_or("");
                        if !bearer.starts_with(ACCESS_TOKEN_PREFIX) {
                            return axum::http::StatusCode::UNAUTHORIZED.into_response();
                        }
                        let mut body =
                            json!({"sub": s.claims.get("sub").cloned().unwrap_or(json!(sub))});
                        for (k, v) in s.userinfo.as_object().expect("userinfo object") {
                            body[k] = v.clone();
                        }
                        if s.userinfo_padding > 0 {
                            body["filler"] = json!("x".repeat(s.userinfo_padding));
                        }
                        axum::Json(body).into_response()
                    }
                }),
            )
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                let counted = counted.clone();
                async move {
                    *counted
                        .lock()
                        .expect("lock")
                        .entry(req.uri().path().to_string())
                        .or_default() += 1;
                    next.run(req).await
                }
            }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ScriptedIdp {
            issuer,
            key,
            script,
            hits,
            _task: task,
        }
    }

    /// The next ID token's claims (over the protocol claims).
    pub fn claims(&self, claims: Value) {
        self.script.lock().expect("lock").claims = claims;
    }

    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.script.lock().expect("lock"));
    }

    /// Requests received at `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// The `kid` and the RSA public key of a JWK.
pub(crate) fn rsa_jwk(k: &Value) -> (String, RS256PublicKey) {
    let part = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(k[name].as_str().expect("n and e"))
            .expect("base64url")
    };
    let kid = k["kid"].as_str().expect("kid").to_string();
    let pk = RS256PublicKey::from_components(&part("n"), &part("e"))
        .expect("an RSA public key")
        .with_key_id(&kid);
    (kid, pk)
}

/// Claims exactly as `payload` holds them (no claim added by the library).
pub(crate) fn raw_claims(payload: &Value) -> JWTClaims<Map<String, Value>> {
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: payload.as_object().expect("an object").clone(),
    }
}

/// RS256 with `key`, header `typ` as given.
pub(crate) fn sign(key: &RS256KeyPair, typ: &str, payload: &Value) -> String {
    key.sign_with_options(
        raw_claims(payload),
        &HeaderOptions {
            content_type: None,
            signature_type: Some(typ.to_string()),
        },
    )
    .expect("sign RS256")
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

pub(crate) fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A sign-in in `browser` through provider `id` (to `/home`): the start link, the provider's
/// immediate answer, the callback. When `idp` is given, the start link must lead to its
/// authorization endpoint. Returns the callback's answer.
pub async fn scripted_sign_in(
    browser: &reqwest::Client,
    fd: &Frontdoor,
    id: &str,
    idp: Option<&ScriptedIdp>,
) -> reqwest::Response {
    let start = navigate(
        browser,
        &fd.url(&format!("/_frontdoor/idp/{id}/start?return_to=/home")),
    )
    .await;
    assert_eq!(start.status(), 302, "the start link redirects");
    if let Some(idp) = idp {
        assert!(location(&start).starts_with(&format!("{}/auth?", idp.issuer)));
    }
    let back = navigate(browser, &location(&start)).await;
    assert!(
        back.status().is_redirection(),
        "the provider answers at once"
    );
    if idp.is_some() {
        assert!(location(&back).starts_with(&fd.url(&format!("/_frontdoor/idp/{id}/callback?"))));
    }
    navigate(browser, &location(&back)).await
}
