//! The signed identity assertion (`routes[].assertion`): what an upstream that verifies,
//! instead of trusting the network, receives — checked here with an independent JWT library
//! (jwt-simple; frontdoor signs with jsonwebtoken) against the published JWKS.

use std::collections::HashSet;

use jwt_simple::prelude::{
    Duration as JwtDuration, JWTClaims, RS256PublicKey, RSAPublicKeyLike, UnixTimeStamp,
    VerificationOptions,
};
use serde_json::{Map, Value, json};

use crate::config::{Config, Route};
use crate::credentials::published_key;
use crate::harness::*;

const TYP: &str = "frontdoor-assertion+jwt";

fn verify(
    pk: &RS256PublicKey,
    token: &str,
    issuer: &str,
    audience: &str,
    at: Option<u64>,
) -> Result<JWTClaims<Map<String, Value>>, jwt_simple::Error> {
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([issuer.to_string()])),
        allowed_audiences: Some(HashSet::from([audience.to_string()])),
        required_signature_type: Some(TYP.into()),
        required_key_id: pk.key_id().clone(),
        time_tolerance: Some(JwtDuration::from_secs(0)),
        artificial_time: at.map(UnixTimeStamp::from_secs),
        ..Default::default()
    };
    pk.verify_token::<Map<String, Value>>(token, Some(options))
}

fn lifetime(claims: &JWTClaims<Map<String, Value>>) -> u64 {
    let exp = claims.expires_at.expect("exp").as_secs();
    let iat = claims.issued_at.expect("iat").as_secs();
    exp - iat
}

async fn setup() -> (Upstream, Frontdoor) {
    setup_with(
        |port| {
            let u = format!("http://127.0.0.1:{port}");
            Config::new()
                .route(Route::new("/", u.as_str()).set("assertion", true))
                .route(Route::new("/custom", u.as_str()).set(
                    "assertion",
                    json!({"header": "X-Who", "audience": "wiki-api", "lifetime": "1m"}),
                ))
                .route(Route::new("/plain", u.as_str()))
        },
        &[ANN],
    )
    .await
}

/// A signed-in browser's request reaches the upstream with an assertion that an independent
/// library verifies against `/oauth/jwks`: issuer, audience (the request's host on a `*`
/// route), `typ`, the identity's claims, five minutes of life. A client's own copy never
/// passes, and a warm request gets the same assertion (nothing signed again).
#[tokio::test]
async fn the_assertion_verifies_against_the_jwks_and_a_warm_request_reuses_it() {
    let (upstream, fd) = setup().await;
    let (_, pk, _) = published_key(&fd).await;
    let (browser, _) = signed_in(&fd, "/", ANN.0, ANN.4).await;
    let send = |path: &str, spoof: (&'static str, &'static str)| {
        let request = browser.get(fd.url(path)).header(spoof.0, spoof.1);
        async move {
            let resp = request.send().await.expect("request");
            assert_eq!(resp.status(), 200, "reached the upstream");
        }
    };

    send("/wiki", ("X-Frontdoor-Assertion", "forged")).await;
    let token = upstream
        .last()
        .header("x-frontdoor-assertion")
        .expect("an assertion upstream");
    assert_ne!(token, "forged");
    let claims = verify(&pk, &token, &fd.issuer(), "127.0.0.1", None).expect("verifies");
    assert_eq!(lifetime(&claims), 300);
    assert_eq!(claims.custom["email"], ANN.0);
    assert_eq!(claims.custom["groups"], json!(["wiki"]));
    assert_eq!(claims.custom["roles"], json!(["ROLE_USER"]));
    assert_eq!(claims.custom["tenant"], "default");
    assert!(claims.subject.as_deref().is_some_and(|s| !s.is_empty()));

    // The independent library refuses it for another audience, and once expired.
    assert!(verify(&pk, &token, &fd.issuer(), "wiki-api", None).is_err());
    let exp = claims.expires_at.expect("exp").as_secs();
    assert!(verify(&pk, &token, &fd.issuer(), "127.0.0.1", Some(exp + 1)).is_err());
    assert!(verify(&pk, &token, "http://evil.example", "127.0.0.1", None).is_err());

    send("/wiki/Other", ("x_frontdoor_assertion", "forged")).await;
    let again = upstream.last();
    assert_eq!(
        again.header("x-frontdoor-assertion").as_deref(),
        Some(token.as_str()),
        "reused while fresh"
    );
    assert!(again.names_containing("frontdoor_assertion").is_empty());

    // A route's own header, audience and lifetime; the client's copy of that header is gone.
    send("/custom/x", ("X-Who", "forged")).await;
    let custom = upstream.last();
    assert_eq!(custom.header("x-frontdoor-assertion"), None);
    let who = custom.header("x-who").expect("the route's header");
    assert_ne!(who, "forged");
    let claims = verify(&pk, &who, &fd.issuer(), "wiki-api", None).expect("verifies");
    assert_eq!(lifetime(&claims), 60);

    // A route without an assertion sends none, and strips the client's.
    send("/plain/x", ("X-Frontdoor-Assertion", "forged")).await;
    assert_eq!(upstream.last().header("x-frontdoor-assertion"), None);
}

/// An API token's requests carry the assertion too; forward-auth hands it to the proxy in
/// front with the identity headers.
#[tokio::test]
async fn api_tokens_and_forward_auth_get_the_assertion() {
    let (upstream, fd) = setup_with(
        |port| {
            Config::new()
                .route(
                    Route::new("/", format!("http://127.0.0.1:{port}").as_str())
                        .host("wiki.localhost")
                        .set("assertion", true),
                )
                .set("trusted_proxies", ["127.0.0.1"])
        },
        &[ANN],
    )
    .await;
    let (_, pk, _) = published_key(&fd).await;
    let token = fd.api_token(&["--user", ANN.0]);
    let resp = plain_client()
        .get(fd.url("/x"))
        .header("Host", "wiki.localhost")
        .header("Api-Token", &token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let assertion = upstream
        .last()
        .header("x-frontdoor-assertion")
        .expect("assertion");
    let claims = verify(&pk, &assertion, &fd.issuer(), "wiki.localhost", None).expect("verifies");
    assert_eq!(claims.custom["email"], ANN.0);

    let resp = plain_client()
        .get(fd.url("/_frontdoor/auth"))
        .header("X-Original-URL", "http://wiki.localhost/page")
        .header("Api-Token", &token)
        .send()
        .await
        .expect("forward-auth");
    assert_eq!(resp.status(), 200);
    let assertion = resp
        .headers()
        .get("x-frontdoor-assertion")
        .and_then(|v| v.to_str().ok())
        .expect("assertion for the proxy in front")
        .to_string();
    verify(&pk, &assertion, &fd.issuer(), "wiki.localhost", None).expect("verifies");
}
