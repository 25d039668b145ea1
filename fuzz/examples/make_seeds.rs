//! Writes the seeds that need the fuzzing keys (session cookies, JWTs) into `fuzz/corpus`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`. The other seeds are
//! plain files written by hand.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use frontdoor::tokens::{ACCESS_TOKEN_TYP, AccessClaims, ID_TOKEN_TYP};

use frontdoor_fuzz::{ISSUER, SEED_JTI_PREFIX, SEED_SESSION_IDS, SESSION_COOKIE, keys};

/// 2100-01-01: the seed tokens stay valid.
const FAR_FUTURE: i64 = 4_102_444_800;

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    std::fs::write(dir.join(name), contents).expect("write seed");
}

fn claims(n: u32, exp: i64) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "user-1".into(),
        aud: ISSUER.into(),
        exp,
        iat: 1_700_000_000,
        nbf: 1_700_000_000,
        jti: format!("{SEED_JTI_PREFIX}{n}"),
        client_id: "wiki".into(),
        scope: "openid email profile".into(),
        gid: "4f1c2d9e-0000-4000-8000-000000000001".into(),
        tnt: "default".into(),
        auth_time: Some(1_700_000_000),
    }
}

fn main() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let keys = keys();

    let cookies = corpus.join("session_cookie");
    for (i, raw) in SEED_SESSION_IDS.iter().enumerate() {
        let c = keys.seal(SESSION_COOKIE, raw);
        write(&cookies, &format!("sealed-{i}"), c.value());
        write(
            &cookies,
            &format!("header-{i}"),
            &format!("theme=dark; {}; other=\"x\"", c.encoded()),
        );
    }

    let jwts = corpus.join("jwt_verify");
    let access = keys
        .sign(ACCESS_TOKEN_TYP, &claims(1, FAR_FUTURE))
        .expect("sign");
    write(&jwts, "access-token", &access);
    write(&jwts, "bearer-header", &format!("Bearer {access}"));
    let id = keys
        .sign(ID_TOKEN_TYP, &claims(2, 1_700_000_600))
        .expect("sign");
    write(&jwts, "expired-id-token", &id);
    let expired = keys
        .sign(ACCESS_TOKEN_TYP, &claims(3, 1_700_000_600))
        .expect("sign");
    write(&jwts, "expired-access-token", &expired);
    // alg confusion: `none`, and the payload under a header naming HS256.
    let payload = access.split('.').nth(1).unwrap_or_default();
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    write(&jwts, "alg-none", &format!("{none}.{payload}."));
    let hs = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"at+jwt"}"#);
    write(&jwts, "alg-hs256", &format!("{hs}.{payload}.AAAA"));

    let creds = corpus.join("credential_headers");
    write(
        &creds,
        "bearer",
        &format!("authorization: Bearer {access}\n"),
    );
    write(
        &creds,
        "api-token-wins",
        &format!(
            "x-contact-hash: c0ffee\napi-token: fd_pat_0123456789abcdef\nauthorization: Bearer {access}\n"
        ),
    );
    write(&creds, "contact-hash", "x-contact-hash:  3q2-7w_x9 \n");
    let c = keys.seal(SESSION_COOKIE, SEED_SESSION_IDS[0]);
    write(
        &creds,
        "session",
        &format!("cookie: a=1\ncookie: {}; b=2\n", c.encoded()),
    );
    write(
        &creds,
        "empty-values",
        "api-token:   \nauthorization: Bearer   \nx-contact-hash:\n",
    );
    println!("seeds written under {}", corpus.display());
}
