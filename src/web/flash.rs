//! A secret shown once after a POST: carried to the next page in an encrypted, short-lived
//! cookie that the page removes as it shows it, so a reload (or the back button — pages are
//! `no-store`) finds it gone. A cookie rather than server memory, so that the page may be
//! served by another node than the one that created the secret.

use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

use crate::endpoint::{Reply, Request};
use crate::keys::Keys;

/// Name of the cookie.
pub const FLASH_COOKIE: &str = "frontdoor_flash";
/// The pages that may show a flash.
const FLASH_PATH: &str = "/_frontdoor/settings/";
/// How long a flash waits for its page, in seconds.
const FLASH_LIFETIME: i64 = 120;

/// A one-time secret and what it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    /// `app_secret` or `api_token`.
    pub kind: String,
    /// The app's client id or the token's id.
    pub id: String,
    /// The secret itself.
    pub value: String,
    /// When it was made (unix seconds).
    pub at: i64,
}

impl Flash {
    /// A flash made now.
    pub fn new(kind: &str, id: &str, value: &str) -> Flash {
        Flash {
            kind: kind.to_string(),
            id: id.to_string(),
            value: value.to_string(),
            at: crate::clock::now(),
        }
    }

    /// Adds the cookie carrying this flash to a reply.
    pub fn attach(&self, reply: Reply, keys: &Keys, secure: bool) -> Reply {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut c = keys.seal(FLASH_COOKIE, &json);
        c.set_path(FLASH_PATH);
        c.set_http_only(true);
        c.set_same_site(SameSite::Strict);
        c.set_secure(secure);
        c.set_max_age(cookie::time::Duration::seconds(FLASH_LIFETIME));
        reply.cookie(&c)
    }
}

/// The flash of `kind` for `id` the browser carries, if any and still fresh.
pub fn take(req: &Request, keys: &Keys, kind: &str, id: &str) -> Option<Flash> {
    let value = req.cookie(FLASH_COOKIE)?;
    let opened = keys.open(FLASH_COOKIE, &value)?;
    let flash: Flash = serde_json::from_str(&opened).ok()?;
    let fresh = crate::clock::now() - flash.at <= FLASH_LIFETIME;
    (fresh && flash.kind == kind && flash.id == id).then_some(flash)
}

/// Removes the flash cookie (set on every page that could show one).
pub fn clear(reply: Reply, req: &Request) -> Reply {
    if req.cookie(FLASH_COOKIE).is_none() {
        return reply;
    }
    let mut removal = Cookie::new(FLASH_COOKIE, "");
    removal.set_path(FLASH_PATH);
    removal.make_removal();
    reply.cookie(&removal)
}
