//! Refuses requests whose framing could be read two ways (a Transfer-Encoding other than
//! plain `chunked`, invalid or conflicting Content-Lengths) and header sections larger than
//! any real browser sends. A request with both Content-Length and Transfer-Encoding never gets
//! here in that shape: Pingora drops the Content-Length, reads the body as chunked and closes
//! the connection afterwards (RFC 9112 §6.1, §6.3), so nothing can hide behind it.

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

use crate::endpoint::ApiError;

/// Largest header section accepted (names and values), like a generous nginx.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one request.
pub const MAX_HEADER_COUNT: usize = 200;

/// Checks a request's framing and header size.
pub fn check(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.len() > MAX_HEADER_COUNT {
        return Err(too_large("too many header fields"));
    }
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(too_large("the request headers are too large"));
    }
    let mut te = headers.get_all(TRANSFER_ENCODING).iter().peekable();
    if te.peek().is_some() {
        let values: Vec<&[u8]> = te.map(|v| v.as_bytes()).collect();
        if values.len() != 1 || !values[0].trim_ascii().eq_ignore_ascii_case(b"chunked") {
            return Err(ApiError::bad_request(
                "Transfer-Encoding other than chunked",
            ));
        }
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        let valid =
            |v: &http::HeaderValue| !v.is_empty() && v.as_bytes().iter().all(u8::is_ascii_digit);
        if !valid(first) || lengths.any(|v| v != first) {
            return Err(ApiError::bad_request(
                "invalid or conflicting Content-Length",
            ));
        }
    }
    Ok(())
}

fn too_large(message: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request_header_fields_too_large",
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn ordinary_requests_pass() {
        assert!(check(&headers(&[("content-length", "12"), ("host", "a")])).is_ok());
        assert!(check(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        assert!(check(&headers(&[("transfer-encoding", " Chunked ")])).is_ok());
        assert!(
            check(&headers(&[
                ("content-length", "5"),
                ("content-length", "5")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        for bad in [
            headers(&[("transfer-encoding", "xchunked")]),
            headers(&[("transfer-encoding", "gzip, chunked")]),
            headers(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ]),
            headers(&[("content-length", "0"), ("content-length", "44")]),
            headers(&[("content-length", "+4")]),
            headers(&[("content-length", "")]),
        ] {
            assert_eq!(
                check(&bad).map_err(|e| e.status.as_u16()),
                Err(400),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn oversized_header_sections_are_refused() {
        let big = "a".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            check(&headers(&[("x-big", big.as_str())])).map_err(|e| e.status.as_u16()),
            Err(431)
        );
        let mut many = HeaderMap::new();
        for i in 0..=MAX_HEADER_COUNT {
            many.append(
                http::HeaderName::try_from(format!("x-h{i}")).expect("name"),
                "v".parse().expect("value"),
            );
        }
        assert_eq!(check(&many).map_err(|e| e.status.as_u16()), Err(431));
    }
}
