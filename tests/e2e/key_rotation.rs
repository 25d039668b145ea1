//! Key rotation without logging anyone out: `frontdoor keys rotate|list|retire` against a
//! running server. A rotated key is published at once and takes over after its delay; tokens
//! and cookies made with the previous keys keep working until those keys are retired.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

const EMAIL: &str = "kim@example.com";
const PASSWORD: &str = "correct horse battery";

fn kid(jwt: &str) -> String {
    let (header, _, _) = crate::credentials::jwt_parts(jwt);
    header["kid"].as_str().expect("kid").to_string()
}

/// The kids `/oauth/jwks` publishes.
async fn published(fd: &Frontdoor) -> Vec<String> {
    fd.jwks().await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

async fn status_with_bearer(fd: &Frontdoor, token: &str) -> u16 {
    plain_client()
        .get(fd.url("/x"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// The `keys list --json` rows of `kind`, as (id, state).
fn listed(fd: &Frontdoor, kind: &str) -> Vec<(String, String)> {
    let out = fd.cli_ok(&["keys", "list", "--json"], None);
    let rows: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    rows.as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                r["state"].as_str().expect("state").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_keys_log_nobody_out_and_retired_keys_end_what_they_signed() {
    let upstream = Upstream::start().await;
    // Verified tokens are cached for `cache_ttl`: short, so a retired key's end shows quickly.
    let fd = Frontdoor::launch(Config::single(&upstream).set("session.cache_ttl", "1s")).await;
    fd.add_user(EMAIL, "Kim", "wiki", "ROLE_USER", PASSWORD);
    let (browser, _) = signed_in(&fd, "/x", EMAIL, PASSWORD).await;
    let old_token = login_check_token(&fd, EMAIL, PASSWORD).await;
    let first = kid(&old_token);
    assert_eq!(published(&fd).await, vec![first.clone()]);
    let [(first_cookie_key, state)] = &listed(&fd, "cookie")[..] else {
        panic!("one cookie key")
    };
    assert_eq!(state, "current");

    // Rotate both keys, taking over in 3 s; the running server publishes the new signing key
    // at the reload, and keeps signing with the first until then.
    let out = fd.cli_ok(&["keys", "rotate", "--delay", "3s"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("signing key") && text.contains("cookie key"),
        "{text}"
    );
    fd.cli_ok(&["reload"], None);
    let keys = published(&fd).await;
    assert_eq!(
        keys.len(),
        2,
        "the next key is published before it signs: {keys:?}"
    );
    let next = keys
        .iter()
        .find(|k| **k != first)
        .expect("the next kid")
        .clone();
    assert_eq!(kid(&login_check_token(&fd, EMAIL, PASSWORD).await), first);
    assert!(listed(&fd, "signing").contains(&(next.clone(), "next".into())));

    // Once its moment has come, the next key signs; nothing made before stops working.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let new_token = login_check_token(&fd, EMAIL, PASSWORD).await;
    assert_eq!(kid(&new_token), next);
    assert_eq!(
        status_with_bearer(&fd, &old_token).await,
        200,
        "the old token still works"
    );
    assert_eq!(status_with_bearer(&fd, &new_token).await, 200);
    let still = navigate(&browser, &fd.url("/x")).await;
    assert_eq!(
        still.status(),
        200,
        "the session from before the rotation is kept"
    );
    let (fresh_browser, _) = signed_in(&fd, "/x", EMAIL, PASSWORD).await;
    assert!(listed(&fd, "signing").contains(&(first.clone(), "previous".into())));

    // The current key cannot be retired.
    let refused = fd.cli(&["keys", "retire", &next], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("current signing key"));

    // Retiring the previous keys ends what they signed and sealed, and only that.
    fd.cli_ok(&["keys", "retire", &first], None);
    fd.cli_ok(&["keys", "retire", first_cookie_key], None);
    fd.cli_ok(&["reload"], None);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(published(&fd).await, vec![next.clone()]);
    assert_eq!(status_with_bearer(&fd, &old_token).await, 401);
    assert_eq!(status_with_bearer(&fd, &new_token).await, 200);
    let gone = navigate(&browser, &fd.url("/x")).await;
    assert_eq!(
        gone.status(),
        302,
        "a cookie of the retired key no longer opens"
    );
    let kept = navigate(&fresh_browser, &fd.url("/x")).await;
    assert_eq!(kept.status(), 200, "a cookie of the current key does");
}

#[tokio::test]
async fn keys_commands_refuse_what_they_cannot_do() {
    let fd = Frontdoor::launch(Config::single(1)).await;
    let out = fd.cli(&["keys", "retire", "no-such-kid"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key `no-such-kid`"));
    let out = fd.cli(&["keys", "rotate", "--delay", "soon"], None);
    assert!(!out.status.success(), "a delay that is not a duration");
    let out = fd.cli(&["keys", "rotate", "--signing", "--cookie"], None);
    assert!(!out.status.success(), "one kind or both, not each named");
}

/// Verifies an ID token as a relying party does with the `openidconnect` crate, against `jwks`.
fn rp_verifies(
    jwks: &Value,
    app: &(String, String),
    issuer: &str,
    token: &str,
) -> Result<(), String> {
    use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
    use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce};
    let keys: CoreJsonWebKeySet =
        serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(app.0.clone()),
        ClientSecret::new(app.1.clone()),
        IssuerUrl::new(issuer.to_string()).map_err(|e| e.to_string())?,
        keys,
    );
    let token: CoreIdToken = token
        .parse()
        .map_err(|e: serde_json::Error| e.to_string())?;
    token
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn on_two_nodes_sharing_keys_dir_a_relying_party_verifies_id_tokens_across_a_rotation() {
    use crate::backchannel_logout::id_token_for;
    use crate::oauth::{CALLBACK, EMAIL, PASSWORD};
    let db = crate::cluster::Database::create().await;
    let upstream = Upstream::start().await;
    let keys = tempfile::tempdir().expect("keys dir");
    let (a, b) = two_nodes(Config::single(&upstream).shared(&db.url, keys.path())).await;
    a.add_user(EMAIL, "Ann", "wiki", "ROLE_USER", PASSWORD);
    let (id, secret) = a.create_app(&[
        "--name",
        "Wiki",
        "--redirect-uri",
        CALLBACK,
        "--first-party",
    ]);
    let app = (id, secret.expect("a confidential app"));
    let issuer = a.issuer();
    let (browser, _) = browser_with_jar();
    let before = id_token_for(&browser, &a, &app).await;
    let first = kid(&before);

    // Rotated through node A's command line; node B publishes the next key at its reload.
    a.cli_ok(&["keys", "rotate", "--signing", "--delay", "2s"], None);
    b.cli_ok(&["reload"], None);
    let on_b = published(&b).await;
    assert_eq!(on_b.len(), 2, "node B publishes both keys: {on_b:?}");
    let next = on_b
        .iter()
        .find(|k| **k != first)
        .expect("the next kid")
        .clone();
    rp_verifies(&b.jwks().await, &app, &issuer, &before)
        .expect("an ID token from before the rotation still verifies");

    // Once its moment comes, node B signs with the next key; the relying party verifies it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = id_token_for(&browser, &b, &app).await;
    assert_eq!(kid(&after), next, "a new ID token carries the new kid");
    rp_verifies(&b.jwks().await, &app, &issuer, &after).expect("the new ID token verifies");
    rp_verifies(&b.jwks().await, &app, &issuer, &before).expect("and the old one still does");

    // Retired: the JWKS lists the next key alone, and the old ID token no longer verifies.
    b.cli_ok(&["keys", "retire", &first], None);
    b.cli_ok(&["reload"], None);
    assert_eq!(published(&b).await, vec![next.clone()]);
    assert!(rp_verifies(&b.jwks().await, &app, &issuer, &before).is_err());
    rp_verifies(&b.jwks().await, &app, &issuer, &after).expect("the new one still verifies");
}
