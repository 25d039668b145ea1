//! CSRF protection for every form: a signed double-submit token.
//!
//! The browser holds a random `frontdoor_csrf` cookie (HttpOnly, SameSite=Strict); each form
//! carries HMAC(server key, cookie). A cross-site page can neither read the cookie nor
//! compute the token.

use cookie::{Cookie, SameSite};

use crate::endpoint::Request;
use crate::keys::Keys;
use crate::secrets::random_token;

/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "frontdoor_csrf";
/// Name of the form field.
pub const CSRF_FIELD: &str = "csrf_token";

/// A token for a form, and the cookie to set when the browser has none yet.
pub struct FormToken {
    /// Goes in the hidden `csrf_token` field.
    pub token: String,
    /// Set this cookie on the reply when present.
    pub set_cookie: Option<Cookie<'static>>,
}

impl FormToken {
    /// Sets the CSRF cookie on the reply that carries the form, when the browser has none yet.
    pub fn attach(&self, reply: crate::endpoint::Reply) -> crate::endpoint::Reply {
        match &self.set_cookie {
            Some(c) => reply.cookie(c),
            None => reply,
        }
    }
}

/// The token for forms rendered in reply to `req`.
pub fn issue(req: &Request, keys: &Keys, secure: bool) -> FormToken {
    match req.cookie(CSRF_COOKIE).filter(|v| v.len() >= 32) {
        Some(existing) => FormToken {
            token: keys.mac("csrf", &existing),
            set_cookie: None,
        },
        None => {
            let value = random_token();
            let mut c = Cookie::new(CSRF_COOKIE, value.clone());
            c.set_path("/");
            c.set_http_only(true);
            c.set_same_site(SameSite::Strict);
            c.set_secure(secure);
            FormToken {
                token: keys.mac("csrf", &value),
                set_cookie: Some(c),
            }
        }
    }
}

/// Whether a submitted form carries the right token for the browser's cookie.
pub fn verify(req: &Request, keys: &Keys, submitted: Option<&str>) -> bool {
    match (req.cookie(CSRF_COOKIE), submitted) {
        // A form shown before a cookie key rotation still posts.
        (Some(cookie), Some(token)) if cookie.len() >= 32 => {
            keys.mac_matches("csrf", &cookie, token)
        }
        _ => false,
    }
}
