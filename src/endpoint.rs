//! The request and reply of frontdoor's own endpoints, independent of the proxy layer,
//! and the two JSON renderings of [`Error`]: the shared envelope and RFC 6749's OAuth errors.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;

use crate::error::Error;

/// A request to one of frontdoor's own endpoints, body already read.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Percent-decoded canonical path.
    pub path: String,
    /// Raw query string, without `?`.
    pub query: String,
    /// Headers as received.
    pub headers: HeaderMap,
    /// Body (bounded).
    pub body: Bytes,
    /// Host without port, lowercased.
    pub host: String,
    /// Host with port, as the client addressed it.
    pub authority: String,
    /// The client's address (from `X-Forwarded-For` when the peer is a trusted proxy).
    pub client_ip: Option<IpAddr>,
    /// The address of the connection's peer.
    pub peer_ip: Option<IpAddr>,
}

impl Request {
    /// Decoded query parameters.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// Decoded `application/x-www-form-urlencoded` body parameters.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// A header as text, when present and visible ASCII.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of a cookie by name.
    pub fn cookie(&self, name: &str) -> Option<String> {
        cookie_value(&self.headers, name)
    }

    /// Whether the body is a form (or absent).
    pub fn is_form(&self) -> bool {
        self.header(CONTENT_TYPE).is_none_or(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
    }
}

/// Finds a cookie in every `Cookie` header, its value decoded (`Reply::cookie` percent-encodes
/// a value that is not plain cookie octets).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    raw_cookie(headers, name)
        .and_then(decode_cookie_value)
        .map(|v| v.into_owned())
}

/// A cookie's value as sent, found by its name as sent (names are never decoded: one cookie
/// is read the same way wherever frontdoor reads it).
pub fn raw_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    crate::cookie_header::find(headers.get_all(http::header::COOKIE), name)
}

/// A cookie value as frontdoor set it: quotes removed, percent-decoded; borrowed when there is
/// nothing to decode.
pub fn decode_cookie_value(sent: &str) -> Option<std::borrow::Cow<'_, str>> {
    let unquoted = sent.trim_matches('"');
    if !unquoted.contains('%') {
        // The common case (`Reply::cookie` sends plain values as they are): nothing to decode,
        // and already text.
        return Some(std::borrow::Cow::Borrowed(unquoted));
    }
    percent_encoding::percent_decode_str(unquoted)
        .decode_utf8()
        .ok()
}

/// A complete reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Bytes,
}

/// Content-Security-Policy of every page frontdoor renders: no scripts but our own, no framing;
/// scripts talk only to frontdoor (the passkey registration fetches its options).
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data: https:; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'";

impl Reply {
    /// A reply with a body and content type.
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body: body.into(),
        }
    }

    /// JSON reply, never cached.
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Reply::new(status, "application/json", body).no_store()
    }

    /// HTML page with the security headers every page carries.
    pub fn html(status: StatusCode, body: String) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", body)
            .no_store()
            .header(
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static(PAGE_CSP),
            )
            .header(
                HeaderName::from_static("x-frame-options"),
                HeaderValue::from_static("DENY"),
            )
            .header(
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            )
            .header(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            )
    }

    /// 302 to a location (already validated by the caller).
    pub fn redirect(location: &str) -> Reply {
        Reply::redirect_with(StatusCode::FOUND, location)
    }

    /// 303 to a location (already validated by the caller): the answer to a form's POST.
    pub fn see_other(location: &str) -> Reply {
        Reply::redirect_with(StatusCode::SEE_OTHER, location)
    }

    fn redirect_with(status: StatusCode, location: &str) -> Reply {
        let mut r = Reply::new(status, "text/plain; charset=utf-8", Bytes::new()).no_store();
        match HeaderValue::from_str(location) {
            Ok(v) => r.headers.push((LOCATION, v)),
            Err(_) => return json(Err(Error::Invalid("invalid redirect target".into()))),
        }
        r
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// Adds `Retry-After` in seconds.
    pub fn retry_after(self, seconds: u64) -> Reply {
        self.header(http::header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// Adds `Cache-Control: no-store`.
    pub fn no_store(self) -> Reply {
        self.header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
            .header(http::header::PRAGMA, HeaderValue::from_static("no-cache"))
    }

    /// Adds a `Set-Cookie`. A value made only of cookie octets (RFC 6265 §4.1.1) other than
    /// `%`, such as a sealed cookie's base64, is sent as it is, so that every request carrying
    /// it is read without decoding (`decode_cookie_value`); any other value is percent-encoded.
    pub fn cookie(mut self, cookie: &cookie::Cookie<'_>) -> Reply {
        let plain = cookie.value().bytes().all(|b| {
            matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E) && b != b'%'
        });
        let text = if plain {
            cookie.to_string()
        } else {
            cookie.encoded().to_string()
        };
        if let Ok(v) = HeaderValue::from_str(&text) {
            self.headers.push((SET_COOKIE, v));
        }
        self
    }
}

/// Renders a JSON handler's outcome: the reply, or the error in the shared envelope.
pub fn json(result: Result<Reply, impl Into<ApiError>>) -> Reply {
    result.unwrap_or_else(|e| e.into().into_reply())
}

/// Renders an OAuth endpoint's outcome: the reply, or the error in RFC 6749's shape.
pub fn oauth(result: Result<Reply, impl Into<OAuthError>>) -> Reply {
    result.unwrap_or_else(|e| e.into().into_reply())
}

/// An error in the shared JSON envelope
/// `{"error":{"status":401,"code":"invalid_token","message":"token expired"}}`: an [`Error`]
/// as the JSON APIs and the gateway answer it, or one of the gateway's own statuses (413,
/// 431, 502, …) that no handler returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds to send in `Retry-After` (429s).
    pub retry_after: Option<u64>,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError {
            status: e.status(),
            code: e.code(),
            retry_after: e.retry_after(),
            message: e.to_string(),
        }
    }
}

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 429 with `Retry-After`, e.g. `too_many_attempts` while a sign-in ban lasts.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u64) -> ApiError {
        Error::TooMany {
            code,
            message: message.into(),
            retry_after,
        }
        .into()
    }
    /// 400 invalid_request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Error::Invalid(message.into()).into()
    }
    /// 401 with a code such as `invalid_token` or `unauthenticated`.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        Error::unauthenticated(code, message).into()
    }
    /// 403 forbidden.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Error::Forbidden(message.into()).into()
    }
    /// 404 not_found.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Error::NotFound(message.into()).into()
    }
    /// 503 when the store cannot be reached.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        Error::Unavailable(message.into()).into()
    }
    /// 500 for our own faults; the detail goes to the log, not the client.
    pub fn internal() -> ApiError {
        Error::internal().into()
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"status": self.status.as_u16(), "code": self.code, "message": self.message}})
    }

    /// The reply; 401s carry `WWW-Authenticate`, 429s `Retry-After`.
    pub fn into_reply(self) -> Reply {
        let mut reply = Reply::json(self.status, &self.body());
        if let Some(seconds) = self.retry_after {
            reply = reply.retry_after(seconds);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer realm=\"frontdoor\", error=\"{}\"",
                if self.code == "unauthenticated" {
                    "invalid_request"
                } else {
                    "invalid_token"
                }
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                reply.headers.push((http::header::WWW_AUTHENTICATE, v));
            }
        }
        reply
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Error::from(e).into()
    }
}

/// An RFC 6749 §5.2 error: `{"error":"invalid_grant","error_description":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    /// HTTP status (400, or 401 for invalid_client).
    pub status: StatusCode,
    /// RFC 6749 error code.
    pub error: &'static str,
    /// Human-readable description.
    pub description: String,
    /// Seconds to send in `Retry-After` (429s).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    /// An error with status 400.
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError::with_status(StatusCode::BAD_REQUEST, error, description)
    }
    fn with_status(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }
    /// invalid_request.
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", description)
    }
    /// invalid_grant.
    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_grant", description)
    }
    /// invalid_client, 401.
    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::with_status(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
    /// invalid_token (RFC 6750), 401.
    pub fn invalid_token(description: impl Into<String>) -> OAuthError {
        OAuthError::with_status(StatusCode::UNAUTHORIZED, "invalid_token", description)
    }

    /// The reply; 401s carry `WWW-Authenticate`, 429s `Retry-After`.
    pub fn into_reply(self) -> Reply {
        let mut reply = Reply::json(
            self.status,
            &serde_json::json!({"error": self.error, "error_description": self.description}),
        );
        if let Some(seconds) = self.retry_after {
            reply = reply.retry_after(seconds);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.error == "invalid_client" {
                "Basic realm=\"frontdoor\"".to_string()
            } else {
                format!("Bearer realm=\"frontdoor\", error=\"{}\"", self.error)
            };
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                reply.headers.push((http::header::WWW_AUTHENTICATE, v));
            }
        }
        reply
    }
}

/// A domain error as an OAuth endpoint answers it: the store away is
/// `temporarily_unavailable`, our own faults `server_error` (RFC 6749 §4.1.2.1), 429s the
/// extension code `too_many_requests` (§8.5).
impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        let status = e.status();
        let retry_after = e.retry_after();
        let (error, description) = match e {
            Error::Invalid(m) | Error::InvalidField(m) => ("invalid_request", m),
            Error::Unauthenticated { message, .. } => ("invalid_token", message),
            Error::Forbidden(m) => ("access_denied", m),
            Error::NotFound(m) | Error::MethodNotAllowed(m) => ("invalid_request", m),
            Error::TooMany { message, .. } => ("too_many_requests", message),
            Error::StoreUnavailable | Error::Unavailable(_) => {
                ("temporarily_unavailable", e.to_string())
            }
            Error::Conflict(_)
            | Error::Internal(_)
            | Error::Upstream(_)
            | Error::IdentityTooLarge => {
                return OAuthError::with_status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                );
            }
        };
        OAuthError {
            retry_after,
            ..OAuthError::with_status(status, error, description)
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        Error::from(e).into()
    }
}

impl From<crate::keys::KeyError> for OAuthError {
    fn from(e: crate::keys::KeyError) -> Self {
        Error::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::decode_cookie_value;
    use std::borrow::Cow;

    #[test]
    fn cookie_values_are_unquoted_and_percent_decoded() {
        assert!(matches!(
            decode_cookie_value("\"abc\""),
            Some(Cow::Borrowed("abc"))
        ));
        assert!(matches!(
            decode_cookie_value("a+b/c="),
            Some(Cow::Borrowed("a+b/c="))
        ));
        assert_eq!(decode_cookie_value("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(decode_cookie_value("\"%3Dx\"").as_deref(), Some("=x"));
        assert_eq!(decode_cookie_value("%FF"), None, "not UTF-8 once decoded");
    }

    /// A sealed cookie's base64 goes out as it is; a value with anything a `Cookie` header
    /// could misread (space, `;`, `,`, `"`, `\\`, `%`) is percent-encoded, and both read back
    /// the same.
    #[test]
    fn set_cookie_values_are_plain_when_they_can_be_and_read_back_the_same() {
        for (value, sent) in [
            ("r0Fb+X8v/mdK=", "n=r0Fb+X8v/mdK="),
            ("a b;c", "n=a%20b%3Bc"),
            ("50%", "n=50%25"),
            ("x,\"y\"", "n=x%2C%22y%22"),
        ] {
            let reply = super::Reply::new(http::StatusCode::OK, "text/plain", "")
                .cookie(&cookie::Cookie::new("n", value));
            let header = reply
                .headers
                .iter()
                .find(|(n, _)| n == http::header::SET_COOKIE)
                .and_then(|(_, v)| v.to_str().ok())
                .expect("Set-Cookie");
            assert_eq!(header, sent, "{value}");
            let back = header.strip_prefix("n=").expect("name");
            assert_eq!(decode_cookie_value(back).as_deref(), Some(value), "{value}");
        }
    }
}
