//! The one error of frontdoor's own endpoints: what went wrong, in the domain's words, with
//! its HTTP status. Handlers return it with `?`; each answer format renders it in one place:
//! the JSON envelope and RFC 6749's OAuth error (`endpoint`), the HTML page (`web::pages`),
//! the redirect back to a client (`provider::authorize`).

use http::StatusCode;

use crate::keys::KeyError;
use crate::store::StoreError;

/// Why a request to one of frontdoor's own endpoints was not answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// 400 `invalid_request`: the request is malformed or breaks the protocol.
    #[error("{0}")]
    Invalid(String),
    /// 401: no credential, or one that is not good; `code` is the envelope's (`unauthenticated`,
    /// `invalid_token`, `invalid_credentials`, `invalid_code`).
    #[error("{message}")]
    Unauthenticated {
        /// Machine-readable code.
        code: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// 403 `forbidden`: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409 `conflict`: it exists already.
    #[error("{0}")]
    Conflict(String),
    /// 422 `invalid_field`: a submitted field breaks a rule.
    #[error("{0}")]
    InvalidField(String),
    /// 429: too many requests or failed sign-ins; answered with `Retry-After`.
    #[error("{message}")]
    TooMany {
        /// Machine-readable code (`too_many_requests`, `too_many_attempts`).
        code: &'static str,
        /// Human-readable message.
        message: String,
        /// Seconds until the caller may try again.
        retry_after: u64,
    },
    /// 500 `internal_error`: our own fault; the message is what the client may read, the
    /// detail went to the log.
    #[error("{0}")]
    Internal(String),
    /// 502 `bad_gateway`: an upstream (identity provider) failed or sent nonsense.
    #[error("{0}")]
    Upstream(String),
    /// 503 `unavailable`: the store cannot be reached (logged where it was converted).
    /// An identity whose headers would exceed `max_identity_header_bytes`: not sent on.
    #[error("the identity is too large to pass on")]
    IdentityTooLarge,
    #[error("the store is unavailable, try again")]
    StoreUnavailable,
    /// 503 `unavailable` for another reason (no signing key).
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// 401 with an envelope code.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Error {
        Error::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    /// 500 with the message every client gets for our own faults.
    pub fn internal() -> Error {
        Error::Internal("internal error".into())
    }

    /// The HTTP status: the one mapping of errors to statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::InvalidField(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Internal(_) | Error::IdentityTooLarge => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::StoreUnavailable | Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The machine-readable code of the JSON envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_request",
            Error::Unauthenticated { code, .. } | Error::TooMany { code, .. } => code,
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::InvalidField(_) => "invalid_field",
            Error::Internal(_) => "internal_error",
            Error::IdentityTooLarge => "identity_too_large",
            Error::Upstream(_) => "bad_gateway",
            Error::StoreUnavailable | Error::Unavailable(_) => "unavailable",
        }
    }

    /// Seconds to send in `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::TooMany { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        match e {
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Unavailable(_) => Error::StoreUnavailable,
            StoreError::Corrupt(_) => Error::internal(),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::NoSigningKey => Error::Unavailable(e.to_string()),
            other => {
                tracing::error!(error = %other, "signing failed");
                Error::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_statuses() {
        let e = Error::from(StoreError::Unavailable("down".into()));
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        assert_eq!(e.to_string(), "the store is unavailable, try again");
        let e = Error::from(StoreError::Conflict("taken".into()));
        assert_eq!((e.status(), e.code()), (StatusCode::CONFLICT, "conflict"));
        let e = Error::from(StoreError::Corrupt("row".into()));
        assert_eq!(e, Error::Internal("internal error".into()));
    }
}
