//! Persistent state behind one trait: users, OAuth apps, sessions, codes, grants, tokens.
//!
//! Secrets never reach the store in clear: every `*_hash` field holds
//! `secrets::hash_secret` of the value the client holds.

mod model;
pub mod notify;
mod postgres;
mod rotation_batch;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;

pub use model::*;
pub use postgres::{PostgresStore, redact_url};
pub use sqlite::SqliteStore;

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique key already exists (e.g. a user's email in its tenant).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database could not be reached or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// The errors of the one commit SQLite runs through rusqlite (`store::sqlite::rotations`).
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(e.to_string())
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// Result of consuming a single-use secret (authorization code, refresh token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed<T> {
    /// First use: the record, now marked used.
    Fresh(T),
    /// Already used before: the record, so that what it issued can be revoked.
    Replayed(T),
    /// Unknown.
    Missing,
}

/// What rotating a refresh token found: the token, classified as `use_refresh_token` does,
/// and, when it was fresh, its user as the rotation's commit read it (`None`: no such user).
/// The refresh grant needs the user, and reading it in the commit that a batch of rotations
/// shares saves each refresh a read of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The presented token.
    pub token: Consumed<RefreshToken>,
    /// The fresh token's user.
    pub user: Option<User>,
}

/// Shared handle to the store.
pub type DynStore = Arc<dyn Store>;

/// Everything frontdoor keeps. One implementation per database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Adds a user; `Conflict` when the email exists in the tenant.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// A user by id.
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// A user by email (case-insensitive) within a tenant.
    async fn find_user_by_email(
        &self,
        tenant: &str,
        email: &str,
    ) -> Result<Option<User>, StoreError>;
    /// Users of a tenant, or of all tenants with `None`, ordered by email.
    async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, StoreError>;

    /// Adds an OAuth application.
    async fn create_app(&self, app: &App) -> Result<(), StoreError>;
    /// An application by client id.
    async fn get_app(&self, client_id: &str) -> Result<Option<App>, StoreError>;
    /// Applications of a tenant, or all with `None`, ordered by creation time.
    async fn list_apps(&self, tenant: Option<&str>) -> Result<Vec<App>, StoreError>;
    /// Activates or deactivates; false when unknown.
    async fn set_app_active(&self, client_id: &str, active: bool) -> Result<bool, StoreError>;
    /// Deletes an app and everything issued to it; false when unknown.
    async fn delete_app(&self, client_id: &str) -> Result<bool, StoreError>;

    /// Stores a new session.
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// A session by the hash of its id.
    async fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Records activity (unix seconds).
    async fn touch_session(&self, id_hash: &str, last_seen: i64) -> Result<(), StoreError>;
    /// Ends a session; false when unknown.
    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError>;
    /// Removes sessions, codes, refresh tokens and login failures that expired before `now`;
    /// returns sessions removed.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
    /// Number of sessions not yet expired at `now`.
    async fn count_sessions(&self, now: i64) -> Result<u64, StoreError>;

    /// Stores an authorization code.
    async fn create_code(&self, code: &AuthCode) -> Result<(), StoreError>;
    /// Marks a code used, atomically: `Fresh` only for the first caller.
    async fn consume_code(&self, code_hash: &str) -> Result<Consumed<AuthCode>, StoreError>;

    /// Stores a grant (the family of tokens one authorization issued).
    async fn create_grant(&self, grant: &Grant) -> Result<(), StoreError>;
    /// A grant by id.
    async fn get_grant(&self, id: &str) -> Result<Option<Grant>, StoreError>;
    /// Revokes a grant and every refresh token of it; false when unknown.
    async fn revoke_grant(&self, id: &str) -> Result<bool, StoreError>;
    /// The active apps with a `backchannel_logout_uri` that got a grant in the session whose
    /// public identifier is `sid`: the apps its logout tells.
    async fn logout_targets(&self, sid: &str) -> Result<Vec<App>, StoreError>;

    /// Stores a refresh token.
    async fn create_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;
    /// Marks a refresh token used, atomically: `Fresh` only for the first caller.
    async fn use_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Consumed<RefreshToken>, StoreError>;
    /// Uses a refresh token like `use_refresh_token` and, when it was fresh and `successor`
    /// accepts it, stores its successor in the same durable commit, which concurrent
    /// rotations share (`rotation_batch`); a fresh token comes with its user.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: Option<Successor>,
    ) -> Result<Rotated, StoreError>;
    /// A refresh token without using it (introspection, revocation).
    async fn get_refresh_token(&self, token_hash: &str)
    -> Result<Option<RefreshToken>, StoreError>;
    /// Whether a refresh token was already exchanged for its successor (false when unknown).
    async fn refresh_token_used(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// Scopes the user already approved for the client.
    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError>;
    /// Adds approved scopes (union with what was approved before).
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError>;

    /// Replaces an app's editable fields (all but client_id, tenant, created_at); false when unknown.
    async fn update_app(&self, app: &App) -> Result<bool, StoreError>;
    /// Activates or deactivates a user; false when unknown.
    async fn set_user_active(&self, id: &str, active: bool) -> Result<bool, StoreError>;
    /// Deletes a user with their sessions, API tokens, grants, refresh tokens and consents; false when unknown.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;

    /// Stores a new API token.
    async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError>;
    /// An API token by the hash of its value (revoked ones included).
    async fn find_api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError>;
    /// An API token by id.
    async fn get_api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError>;
    /// API tokens of a user, or of a tenant, or all; newest first.
    async fn list_api_tokens(
        &self,
        user_id: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes a token at `at`; false when unknown or already revoked.
    async fn revoke_api_token(&self, id: &str, at: i64) -> Result<bool, StoreError>;
    /// Records use of a token.
    async fn touch_api_token(&self, id: &str, at: i64) -> Result<(), StoreError>;

    /// Stores a one-time code, replacing any pending one for the same tenant and email.
    async fn put_otp(&self, code: &OtpCode) -> Result<(), StoreError>;
    /// Checks a code atomically: counts wrong attempts, deletes it when used, expired or dead.
    async fn check_otp(
        &self,
        tenant: &str,
        email: &str,
        code_hash: &str,
        now: i64,
        max_attempts: u32,
    ) -> Result<OtpCheck, StoreError>;

    /// Stores a contact.
    async fn create_contact(&self, contact: &Contact) -> Result<(), StoreError>;
    /// A contact by the hash of its contact hash.
    async fn find_contact(&self, hash_hash: &str) -> Result<Option<Contact>, StoreError>;
    /// Contacts of a tenant, or all; newest first.
    async fn list_contacts(&self, tenant: Option<&str>) -> Result<Vec<Contact>, StoreError>;
    /// Revokes a contact; false when unknown.
    async fn revoke_contact(&self, id: &str) -> Result<bool, StoreError>;

    /// Replaces a user's editable fields (name, picture, groups, roles, password hash, active); false when unknown.
    async fn update_user(&self, user: &User) -> Result<bool, StoreError>;
    /// The user linked to an identity provider's subject.
    async fn find_identity_link(
        &self,
        idp: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Links an identity provider's subject to a user (replacing an earlier link of that subject).
    async fn link_identity(
        &self,
        idp: &str,
        subject: &str,
        user_id: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Records which provider session a frontdoor session came from.
    async fn create_idp_session(&self, session: &IdpSession) -> Result<(), StoreError>;
    /// The provider session of a frontdoor session.
    async fn get_idp_session(&self, session_hash: &str) -> Result<Option<IdpSession>, StoreError>;
    /// Ends every frontdoor session of a provider's `sid` (or, without one, of its subject);
    /// returns the sessions ended.
    async fn end_idp_sessions(
        &self,
        idp: &str,
        sid: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<EndedSession>, StoreError>;

    /// The failure counts and bans of these subjects (those with none are left out).
    async fn login_failures(&self, subjects: &[String]) -> Result<Vec<LoginFailures>, StoreError>;
    /// Counts one failed sign-in against `subject` at `now`, atomically across nodes; answers
    /// the end of the ban this failure started, if it reached the policy's limit.
    async fn record_login_failure(
        &self,
        subject: &str,
        now: i64,
        policy: &FailurePolicy,
    ) -> Result<Option<i64>, StoreError>;
    /// Forgets the failures of `subject` (after a successful sign-in); a ban in force at `now`
    /// stays.
    async fn clear_login_failures(&self, subject: &str, now: i64) -> Result<(), StoreError>;

    /// Starts (or restarts) a TOTP enrolment with a sealed secret; a confirmed factor stays.
    async fn put_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// A user's TOTP factor, confirmed or not.
    async fn get_totp(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError>;
    /// Accepts time step `step` for the user, atomically: `true` only when it comes after the
    /// last one accepted (a code is good once). The first accepted step confirms the factor.
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// Replaces every recovery code of the user with these (keyed hashes), in one commit.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
    ) -> Result<(), StoreError>;
    /// Spends a recovery code: `true` for its first use only.
    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> Result<bool, StoreError>;
    /// How many of the user's recovery codes are left.
    async fn count_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError>;
    /// Removes every second factor of a user (an administrator's reset); whether there was one.
    async fn delete_factors(&self, user_id: &str) -> Result<bool, StoreError>;
    /// Stores a half-signed-in browser's record.
    async fn put_pending_factor(&self, pending: &PendingFactor) -> Result<(), StoreError>;
    /// Takes (deletes and answers) a pending sign-in, expired or not: a token is good once.
    async fn take_pending_factor(
        &self,
        token_hash: &str,
    ) -> Result<Option<PendingFactor>, StoreError>;
    /// Stores a newly registered passkey; a credential id already known is a conflict.
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<(), StoreError>;
    /// The passkey of a credential id, whoever's it is (a passwordless sign-in names it).
    async fn get_passkey(&self, cred_id: &str) -> Result<Option<PasskeyRecord>, StoreError>;
    /// A user's passkeys, oldest first.
    async fn list_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError>;
    /// After a sign-in with one of the user's passkeys: its updated state (counter) and when.
    async fn use_passkey(
        &self,
        user_id: &str,
        cred_id: &str,
        passkey: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Removes one of the user's passkeys; `false` when the user has none of that id.
    async fn delete_passkey(&self, user_id: &str, cred_id: &str) -> Result<bool, StoreError>;
    /// Stores a ceremony begun.
    async fn put_passkey_ceremony(&self, ceremony: &PasskeyCeremony) -> Result<(), StoreError>;
    /// Takes (deletes and answers) a ceremony, expired or not: a challenge is good once.
    async fn take_passkey_ceremony(
        &self,
        id_hash: &str,
    ) -> Result<Option<PasskeyCeremony>, StoreError>;
    /// Ends every session of a user except `keep` (the hash of the one to keep, if any);
    /// returns the sessions ended.
    async fn end_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<Vec<EndedSession>, StoreError>;
    /// Gives a session a new id hash, keeping its user, times and `sid`; false when unknown.
    async fn rekey_session(&self, old_hash: &str, new_hash: &str) -> Result<bool, StoreError>;

    /// Stores a new password-reset or invitation link.
    async fn create_account_token(&self, token: &AccountToken) -> Result<(), StoreError>;
    /// A link by the hash of its secret (used ones included).
    async fn get_account_token(&self, token_hash: &str)
    -> Result<Option<AccountToken>, StoreError>;
    /// Marks a link used, atomically: `Fresh` only for the first caller.
    async fn spend_account_token(
        &self,
        token_hash: &str,
    ) -> Result<Consumed<AccountToken>, StoreError>;
    /// A link by its public id.
    async fn get_account_token_by_id(&self, id: &str) -> Result<Option<AccountToken>, StoreError>;
    /// The links of one kind in a tenant (used and expired ones included), newest first.
    async fn list_account_tokens(
        &self,
        tenant: &str,
        kind: AccountTokenKind,
    ) -> Result<Vec<AccountToken>, StoreError>;
    /// Deletes a link by its public id; false when unknown.
    async fn delete_account_token(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes a user's unused links of one kind; returns how many.
    async fn drop_account_tokens(
        &self,
        user_id: &str,
        kind: AccountTokenKind,
    ) -> Result<u64, StoreError>;
}

/// Lowercases an email (ASCII letters only) for storage and lookup, in both stores.
fn normalize_email(email: &str) -> String {
    // ASCII only, as `crate::email` canonicalises: Unicode case folding would let a caller's
    // `fran\u{212a}` (KELVIN SIGN) find `frank`.
    email.to_ascii_lowercase()
}

/// Encodes a list as the JSON array both stores keep lists in.
fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(format!("encoding list: {e}")))
}
