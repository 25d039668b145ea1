//! Token request bodies (`/oauth/token`, form + HTTP Basic client authentication) and PKCE.
//! Input: the `Authorization` header value, a newline, the `Content-Type` value, a newline,
//! the body. Basic credentials encoded per RFC 6749 §2.3.1 always decode back to themselves.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frontdoor::endpoint::Request;
use frontdoor::provider::access::check_pkce;
use frontdoor::provider::token::{basic_credentials, parse_basic, read_form};
use frontdoor::secrets::pkce_s256;
use frontdoor_fuzz::split_once;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fn request(authorization: &[u8], content_type: &[u8], body: &[u8]) -> Request {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(authorization) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    if let Ok(v) = HeaderValue::from_bytes(content_type) {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    Request {
        method: Method::POST,
        path: "/oauth/token".into(),
        query: String::new(),
        headers,
        body: bytes::Bytes::copy_from_slice(body),
        host: "fuzz.frontdoor.invalid".into(),
        authority: "fuzz.frontdoor.invalid".into(),
        client_ip: None,
        peer_ip: None,
    }
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let (authorization, rest) = split_once(data, b'\n');
    let (content_type, body) = split_once(rest, b'\n');
    let req = request(authorization, content_type, body);
    let _ = basic_credentials(&req);
    if let Ok(form) = read_form(&req) {
        let get = |k: &str| form.get(k).map(String::as_str);
        if check_pkce(get("code_challenge"), get("code_verifier")).is_ok()
            && let (Some(c), Some(v)) = (get("code_challenge"), get("code_verifier"))
        {
            assert_eq!(
                pkce_s256(v),
                c,
                "PKCE accepted a verifier that does not match"
            );
        }
        let _ = frontdoor::provider::scopes::parse(get("scope").unwrap_or(""));
    }
    // Round trip: any client id and secret (a `:` in either is percent-encoded), form-encoded
    // and base64'd, decode back exactly.
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let (id, secret) = text.split_once('\u{0}').unwrap_or((text, ""));
    let encoded = STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)));
    assert_eq!(
        parse_basic(&encoded).ok(),
        Some((id.to_string(), secret.to_string())),
        "Basic credentials did not round-trip"
    );
    let header = format!("Basic {encoded}");
    let req = request(header.as_bytes(), b"", b"");
    assert_eq!(
        basic_credentials(&req).ok().flatten(),
        Some((id.to_string(), secret.to_string()))
    );
});
