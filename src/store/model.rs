//! Rows of the store. Times are unix seconds.

/// A person who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (UUID), the `sub` of tokens.
    pub id: String,
    /// Tenant the user belongs to.
    pub tenant: String,
    /// Login, lowercased.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Picture URL.
    pub picture: Option<String>,
    /// Group memberships.
    pub groups: Vec<String>,
    /// Roles, e.g. ROLE_USER.
    pub roles: Vec<String>,
    /// Argon2id PHC string; `None` for users without a password.
    pub password_hash: Option<String>,
    /// Disabled users cannot log in and their sessions are refused.
    pub active: bool,
    /// Creation time.
    pub created_at: i64,
}

/// A registered OAuth application (client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Public client id.
    pub client_id: String,
    /// Tenant the app belongs to.
    pub tenant: String,
    /// Shown on the consent page.
    pub name: String,
    /// What the app does.
    pub description: String,
    /// Hash of the client secret; `None` for public clients.
    pub secret_hash: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the app may ask for.
    pub scopes: Vec<String>,
    /// Grant types the app may use (authorization_code, refresh_token, client_credentials).
    pub grant_types: Vec<String>,
    /// Public client: no secret, PKCE required.
    pub public: bool,
    /// First-party apps skip the consent page.
    pub first_party: bool,
    /// Inactive apps can neither start flows nor use tokens.
    pub active: bool,
    /// Owning user id, when created by a user.
    pub owner: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Resources (`aud`) its client_credentials tokens may be issued for; the first is the default.
    pub audiences: Vec<String>,
    /// A confidential client that may leave PKCE out: RFC 9700 asks it of every client, this
    /// is the opt-out for one that cannot send it. Public clients never may.
    pub pkce_optional: bool,
    /// Where frontdoor POSTs a logout token (OpenID Connect Back-Channel Logout 1.0) when a
    /// session in which the app got tokens ends; `None`: the app is not told.
    pub backchannel_logout_uri: Option<String>,
}

/// A browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hash of the session id held in the cookie.
    pub id_hash: String,
    /// The logged-in user.
    pub user_id: String,
    /// Tenant the session was created in.
    pub tenant: String,
    /// Creation time; also the authentication time.
    pub created_at: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// Last activity, for the idle timeout.
    pub last_seen: i64,
    /// How the user authenticated (password, otp, idp:<id>).
    pub auth_method: String,
    /// The session's public identifier, the `sid` of ID and logout tokens: random, unrelated
    /// to the cookie's secret id and its hash, so apps that see it learn nothing to sign in with.
    pub sid: String,
    /// How the user authenticated: RFC 8176 `amr` values, space-separated (`pwd`, `otp`,
    /// `mfa`); empty for sessions from before second factors, which count as one factor.
    pub amr: String,
}

/// A session that was just ended: what back-channel logout tells the apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// Hash of its id (the cache key).
    pub id_hash: String,
    /// Its user.
    pub user_id: String,
    /// Its public identifier.
    pub sid: String,
}

/// An authorization code waiting for its exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    /// Hash of the code.
    pub code_hash: String,
    /// Client it was issued to.
    pub client_id: String,
    /// User who authorized.
    pub user_id: String,
    /// Session hash that authorized, if any.
    pub session_id_hash: Option<String>,
    /// Exact redirect URI of the authorize request.
    pub redirect_uri: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// OIDC nonce, echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Grant that the exchange creates; revoked when the code is replayed.
    pub grant_id: String,
    /// How the user authenticated (RFC 8176 `amr` values, space-separated), for the ID token.
    pub amr: String,
}

/// One authorization's family of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Grant id, carried in access tokens as `gid`.
    pub id: String,
    /// Client.
    pub client_id: String,
    /// User (for user grants).
    pub user_id: String,
    /// Tenant.
    pub tenant: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Creation time.
    pub created_at: i64,
    /// Revoked grants invalidate every token of the family.
    pub revoked: bool,
    /// The `sid` of the browser session it was made in (`None` without one: the login API),
    /// carried in its ID tokens; a logout of that session notifies the grant's app.
    pub sid: Option<String>,
}

/// A refresh token (rotated on every use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Hash of the token.
    pub token_hash: String,
    /// Grant family.
    pub grant_id: String,
    /// Client.
    pub client_id: String,
    /// User.
    pub user_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Expiry.
    pub expires_at: i64,
    /// When the user authenticated (carried to new ID tokens).
    pub auth_time: i64,
}

/// The refresh token stored in the same commit that spends its predecessor (rotation): it
/// keeps the predecessor's grant, user, full scope and `auth_time`, and is stored only when the
/// predecessor belongs to `client_id` and has not expired by `now` (the rule is written once,
/// in SQL: `successors_head!` in `store::sql::queries`).
///
/// Plain data rather than a callback, so that a store can gather the rotations of many
/// requests into one commit on its own writer task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    /// Hash of the new token.
    pub token_hash: String,
    /// Only a predecessor issued to this client gets a successor.
    pub client_id: String,
    /// Only a predecessor that has not expired by this time (Unix seconds) gets one.
    pub now: i64,
    /// Expiry of the successor.
    pub expires_at: i64,
}

/// An `Api-Token` for scripts: raw header, read-only or read-write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Public id (shown in lists, used to revoke).
    pub id: String,
    /// Owning user.
    pub user_id: String,
    /// Tenant of the owner.
    pub tenant: String,
    /// Label chosen by the owner.
    pub name: String,
    /// Hash of the token.
    pub token_hash: String,
    /// Read-only tokens may only GET, HEAD and OPTIONS.
    pub read_only: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last time the token authenticated a request.
    pub last_used_at: Option<i64>,
    /// When it was revoked; revoked tokens are refused.
    pub revoked_at: Option<i64>,
}

/// A pending emailed one-time login code (one per email and tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpCode {
    /// Tenant.
    pub tenant: String,
    /// Email (lowercased).
    pub email: String,
    /// Keyed hash of the 6-digit code.
    pub code_hash: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Wrong attempts so far.
    pub attempts: u32,
}

/// Result of checking a one-time code; the code is deleted once it succeeds or dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpCheck {
    /// Right code: consumed.
    Valid,
    /// Wrong code; this many attempts remain.
    Wrong {
        /// Attempts left before the code dies.
        attempts_left: u32,
    },
    /// Too many wrong attempts: the code is dead.
    Exhausted,
    /// Past its expiry.
    Expired,
    /// No code pending for this email.
    Missing,
}

/// A contact hash: access for a person without an account, under one path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Public id (`contact:<id>` upstream).
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// The contact's email.
    pub email: String,
    /// Hash of the contact hash the person holds.
    pub hash_hash: String,
    /// Valid under this path prefix only.
    pub path_prefix: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Revoked contacts are refused.
    pub revoked: bool,
}

/// A browser session that came from an upstream identity provider, for logout across the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpSession {
    /// Hash of frontdoor's session id.
    pub session_hash: String,
    /// The identity provider's id in the config.
    pub idp: String,
    /// The provider's session id (`sid`), when it sent one.
    pub sid: Option<String>,
    /// The provider's subject.
    pub subject: String,
    /// The provider's ID token, sent back as `id_token_hint` at logout.
    pub id_token: String,
    /// Expiry (the frontdoor session's).
    pub expires_at: i64,
}

/// Failed sign-in attempts counted against one subject (an account or a client address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    /// What is counted: `account:…` or `ip:…`.
    pub subject: String,
    /// Start of the current counting window.
    pub window_start: i64,
    /// Failures counted in that window (reset when a ban starts).
    pub failures: u32,
    /// While later than now, the subject is refused without checking its credentials.
    pub banned_until: Option<i64>,
}

impl LoginFailures {
    /// When the row stops mattering: the end of its window or of its ban.
    pub fn expires_at(&self, window: i64) -> i64 {
        (self.window_start + window).max(self.banned_until.unwrap_or(0))
    }

    /// Whether a ban is in force at `now`.
    pub fn banned_at(&self, now: i64) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }
}

/// How failures are counted for one kind of subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Seconds a failure counts (a fixed window from the first failure in it).
    pub window: i64,
    /// Failures in a window that start a ban.
    pub limit: u32,
    /// Seconds a ban lasts.
    pub ban: i64,
}

impl FailurePolicy {
    /// The row after one more failure at `now`, and the end of the ban it starts, if it does.
    /// Both stores apply this inside one transaction, so that nodes counting at once never
    /// lose a failure and only one of them starts the ban.
    pub fn after_failure(
        &self,
        subject: &str,
        current: Option<LoginFailures>,
        now: i64,
    ) -> (LoginFailures, Option<i64>) {
        let mut row = match current {
            Some(r) if r.window_start + self.window > now => r,
            other => LoginFailures {
                subject: subject.to_string(),
                window_start: now,
                failures: 0,
                banned_until: other.and_then(|r| r.banned_until),
            },
        };
        row.failures = row.failures.saturating_add(1);
        if row.failures >= self.limit && !row.banned_at(now) {
            // A ban starts a fresh count: after it, the subject has the full limit again.
            let until = now + self.ban;
            row.window_start = now;
            row.failures = 0;
            row.banned_until = Some(until);
            return (row, Some(until));
        }
        (row, None)
    }
}

/// A user's authenticator app (TOTP, RFC 6238).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The user.
    pub user_id: String,
    /// The secret, sealed with the server's factor key (`factors::seal`).
    pub secret_sealed: String,
    /// Whether a first valid code was given: only then is it a factor.
    pub confirmed: bool,
    /// The last time step accepted; a code of this step or an earlier one is refused.
    pub last_step: i64,
    /// When the enrolment started.
    pub created_at: i64,
}

/// A half-signed-in browser: the first factor was right, the second is still to come. Never a
/// session: it is good for one submission of the second-factor form, from the browser whose
/// CSRF cookie it is bound to, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFactor {
    /// Hash of the random token the form carries.
    pub token_hash: String,
    /// The user whose first factor was right.
    pub user_id: String,
    /// Keyed hash of the browser's CSRF cookie.
    pub binding: String,
    /// The `amr` of the first factor (`pwd`, `otp`).
    pub amr: String,
    /// Where the sign-in was going (already sanitised).
    pub return_to: String,
    /// Expiry.
    pub expires_at: i64,
}

/// What an account token's link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountTokenKind {
    /// Sets a new password for an existing user.
    Reset,
    /// Creates an account in the invitation's tenant.
    Invite,
}

impl AccountTokenKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountTokenKind::Reset => "reset",
            AccountTokenKind::Invite => "invite",
        }
    }

    /// The kind of a stored name.
    pub fn parse(stored: &str) -> Option<AccountTokenKind> {
        match stored {
            "reset" => Some(AccountTokenKind::Reset),
            "invite" => Some(AccountTokenKind::Invite),
            _ => None,
        }
    }
}

/// A single-use link mailed to a person: a password reset or an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    /// Hash of the link's secret (the store key).
    pub token_hash: String,
    /// Public id, for those who manage invitations (never the secret).
    pub id: String,
    /// What the link does.
    pub kind: AccountTokenKind,
    /// The tenant it is valid in (only on that tenant's hosts).
    pub tenant: String,
    /// Where it was mailed, lowercased.
    pub email: String,
    /// The user a reset is for; `None` for an invitation.
    pub user_id: Option<String>,
    /// Groups an invitation gives.
    pub groups: Vec<String>,
    /// Roles an invitation gives.
    pub roles: Vec<String>,
    /// Who made it (a user id), when a person did.
    pub created_by: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Already redeemed.
    pub used: bool,
}

impl AccountToken {
    /// Whether it is a link of `kind` for `tenant` that has not expired at `now` (used or
    /// not: a spent link comes back from the store marked used).
    pub fn fits(&self, kind: AccountTokenKind, tenant: &str, now: i64) -> bool {
        self.kind == kind && self.tenant == tenant && now < self.expires_at
    }
}

/// A user's registered passkey (WebAuthn credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The credential id, base64url: unique across users.
    pub cred_id: String,
    /// Its owner.
    pub user_id: String,
    /// The user's label for it.
    pub name: String,
    /// webauthn-rs's serialized `Passkey`: public key, algorithm, signature counter.
    pub passkey: String,
    /// When it was registered.
    pub created_at: i64,
    /// When it last signed someone in.
    pub last_used: Option<i64>,
}

/// A WebAuthn ceremony begun (options sent to a browser) and not yet answered: good for one
/// answer, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyCeremony {
    /// Hash of the random id the browser answers with.
    pub id_hash: String,
    /// The user it is for.
    pub user_id: String,
    /// What it is for (`register`, `second_factor`).
    pub kind: String,
    /// webauthn-rs's serialized ceremony state, with its challenge.
    pub state: String,
    /// Expiry.
    pub expires_at: i64,
}
