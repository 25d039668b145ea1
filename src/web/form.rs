//! What the sign-in forms share (the login, emailed-code, second-factor and step-up pages):
//! the submitted form, its admission (the per-address rate and the CSRF token), and an error
//! shown in the form again, in sentences.

use std::collections::HashMap;

use http::StatusCode;

use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::regulation::Banned;
use crate::state::State;
use crate::web::{csrf, pages, return_to};

/// The submitted form, one value per field.
pub struct Form(HashMap<String, String>);

impl Form {
    /// The request's form body.
    pub fn read(req: &Request) -> Form {
        Form(req.form_pairs().into_iter().collect())
    }

    pub fn field(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// A field, if it was sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Where to go after signing in (a path of ours).
    pub fn target(&self) -> String {
        return_to::sanitize(self.0.get("return_to").map(String::as_str))
    }
}

/// The per-address rate of sign-in requests and the form's CSRF token.
pub fn admitted(state: &State, req: &Request, form: &Form, expired: &str) -> Result<(), Error> {
    if let Some(wait) = state.regulation.login_rate.check(req.client_ip) {
        crate::metrics::rate_limited("login");
        return Err(Error::TooMany {
            code: "too_many_requests",
            message: format!(
                "Too many sign-in requests from your network. Try again in {wait} second{}.",
                if wait == 1 { "" } else { "s" }
            ),
            retry_after: wait,
        });
    }
    if !csrf::verify(
        req,
        &state.keys,
        form.0.get(csrf::CSRF_FIELD).map(String::as_str),
    ) {
        return Err(Error::Forbidden(expired.to_string()));
    }
    Ok(())
}

/// 303 to where the sign-in was going, with the new session.
pub fn signed_in(state: &State, target: &str, raw: &str) -> Reply {
    Reply::see_other(target).cookie(&state.sessions.cookie(raw))
}

/// A form shown again with an error: the error's status, its words on the sign-in pages, and
/// `Retry-After` while a limit or ban lasts.
pub fn shown(e: &Error, form: impl FnOnce(StatusCode, Option<&str>) -> Reply) -> Reply {
    let words = match e {
        Error::TooMany {
            code: "too_many_attempts",
            retry_after,
            ..
        } => Banned {
            retry_after: *retry_after,
        }
        .message(),
        other => sentence(&pages::error_words(other)),
    };
    let reply = form(e.status(), Some(&words));
    match e.retry_after() {
        Some(seconds) => reply.retry_after(seconds),
        None => reply,
    }
}

/// "the code is 6 digits" → "The code is 6 digits."; a sentence stays as it is.
fn sentence(message: &str) -> String {
    if message.ends_with('.') {
        return message.to_string();
    }
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(sentence("the code is 6 digits"), "The code is 6 digits.");
        assert_eq!(
            sentence("Wrong email or password."),
            "Wrong email or password."
        );
        assert_eq!(sentence(""), "");
    }
}
