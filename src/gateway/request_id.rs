//! The request id: `X-Request-Id` as a trusted proxy sent it (when it is short and plain), or
//! a new one; returned to the client, passed upstream and written in the access log, so one
//! request can be followed through every log on its way.

use http::HeaderValue;
use pingora::http::CasedHeaderName;
use rand::Rng;

/// The header that carries it, in both directions (named with its case form once: added to
/// every request and response, it is neither parsed nor copied there).
pub static HEADER: CasedHeaderName = CasedHeaderName::from_static("x-request-id");

/// Longest id accepted from a proxy, in bytes.
pub const MAX_LEN: usize = 128;

/// The id of a request: the `X-Request-Id` a trusted proxy set when it is acceptable
/// ([`acceptable`]), else a new one. A client's own id is never believed: it would let it
/// write what it likes into the logs, or pin another request's id on its own.
pub fn of_request(headers: &http::HeaderMap, from_trusted_proxy: bool) -> HeaderValue {
    if from_trusted_proxy
        && let Some(v) = headers.get(HEADER.name())
        && acceptable(v.as_bytes())
    {
        return v.clone();
    }
    generate()
}

/// 1 to [`MAX_LEN`] bytes of letters, digits and `-_.:@/+=` (UUIDs, hex, base64, the ids of
/// nginx, Envoy, AWS and Heroku), nothing that could end a log field or a header.
pub fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@/+=".contains(b))
}

/// 128 random bits as 32 lowercase hex digits, formatted without an intermediate String.
pub fn generate() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits: u128 = rand::thread_rng().r#gen();
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((bits >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| unreachable!("hex digits are a valid header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_from_trusted_proxies_are_kept() {
        let mut h = http::HeaderMap::new();
        h.insert(HEADER.name(), HeaderValue::from_static("abc-123"));
        assert_eq!(of_request(&h, true), "abc-123");
        assert_ne!(of_request(&h, false), "abc-123");
        for bad in ["", "a b", "a\"b", "a=b\x7f", &"x".repeat(MAX_LEN + 1)] {
            assert!(!acceptable(bad.as_bytes()), "{bad:?}");
        }
        assert!(acceptable(
            "f47ac10b-58cc-4372-a567-0e02b2c3d479".as_bytes()
        ));
        assert!(acceptable(&[b'x'; MAX_LEN]));
        h.insert(HEADER.name(), HeaderValue::from_static("a;b"));
        assert_ne!(of_request(&h, true), "a;b");
    }

    #[test]
    fn generated_ids_are_32_hex_digits_and_differ() {
        let a = generate();
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, generate());
    }
}
