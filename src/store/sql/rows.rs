//! The rows both backends read, decoded once: each decoder takes any sqlx row whose database
//! decodes the store's five column types (SQLite's INTEGER 0/1 and PostgreSQL's BOOLEAN both
//! decode to `bool`, INTEGER and BIGINT to `i64`; lists are JSON arrays in TEXT on both).

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::store::{
    AccountToken, AccountTokenKind, ApiToken, App, AuthCode, Contact, Grant, IdpSession,
    LoginFailures, PasskeyCeremony, PasskeyRecord, PendingFactor, RefreshToken, SessionRecord,
    StoreError, TotpFactor, User,
};

/// Typed reads of one column by name; failures are `StoreError`s.
pub(crate) trait StoreRow {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn optional_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;

    /// The JSON array of strings in `column`.
    fn list(&self, column: &str) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&self.text(column)?)
            .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    }

    /// A count kept as an integer column, which a `u32` must hold.
    fn count(&self, column: &str) -> Result<u32, StoreError> {
        let n = self.int(column)?;
        u32::try_from(n).map_err(|e| StoreError::Corrupt(format!("{column} {n}: {e}")))
    }
}

impl<R> StoreRow for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn optional_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }
}

// The column lists are macros so that `concat!` builds every statement at compile time.

macro_rules! user_columns {
    () => {
        "id, tenant, email, name, picture, member_groups, roles, password_hash, active, created_at"
    };
}
macro_rules! app_columns {
    () => {
        "client_id, tenant, name, description, secret_hash, redirect_uris, \
         post_logout_redirect_uris, scopes, grant_types, public, first_party, active, owner, \
         created_at, audiences, pkce_optional, backchannel_logout_uri"
    };
}
macro_rules! session_columns {
    () => {
        "id_hash, user_id, tenant, created_at, expires_at, last_seen, auth_method, sid, amr"
    };
}
macro_rules! code_columns {
    () => {
        "code_hash, client_id, user_id, session_id_hash, redirect_uri, scope, nonce, \
         code_challenge, auth_time, expires_at, grant_id, amr"
    };
}
macro_rules! grant_columns {
    () => {
        "id, client_id, user_id, tenant, scope, created_at, revoked, sid"
    };
}
macro_rules! refresh_columns {
    () => {
        "token_hash, grant_id, client_id, user_id, scope, expires_at, auth_time"
    };
}
macro_rules! api_token_columns {
    () => {
        "id, user_id, tenant, name, token_hash, read_only, created_at, last_used_at, revoked_at"
    };
}
macro_rules! contact_columns {
    () => {
        "id, tenant, email, hash_hash, path_prefix, created_at, expires_at, revoked"
    };
}
macro_rules! idp_session_columns {
    () => {
        "session_hash, idp, sid, subject, id_token, expires_at"
    };
}
macro_rules! totp_columns {
    () => {
        "user_id, secret_sealed, confirmed, last_step, created_at"
    };
}
macro_rules! pending_factor_columns {
    () => {
        "token_hash, user_id, binding, amr, return_to, expires_at"
    };
}
macro_rules! passkey_columns {
    () => {
        "cred_id, user_id, name, passkey, created_at, last_used"
    };
}
macro_rules! passkey_ceremony_columns {
    () => {
        "id_hash, user_id, kind, state, expires_at"
    };
}
macro_rules! account_token_columns {
    () => {
        "token_hash, id, kind, tenant, email, user_id, member_groups, roles, created_by, \
         created_at, expires_at, used"
    };
}
macro_rules! login_failure_columns {
    () => {
        "subject, window_start, failures, banned_until"
    };
}
pub(crate) use {
    account_token_columns, api_token_columns, app_columns, code_columns, contact_columns,
    grant_columns, idp_session_columns, login_failure_columns, passkey_ceremony_columns,
    passkey_columns, pending_factor_columns, refresh_columns, session_columns, totp_columns,
    user_columns,
};

pub(crate) fn user(row: &impl StoreRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.text("id")?,
        tenant: row.text("tenant")?,
        email: row.text("email")?,
        name: row.text("name")?,
        picture: row.optional_text("picture")?,
        groups: row.list("member_groups")?,
        roles: row.list("roles")?,
        password_hash: row.optional_text("password_hash")?,
        active: row.flag("active")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn app(row: &impl StoreRow) -> Result<App, StoreError> {
    Ok(App {
        client_id: row.text("client_id")?,
        tenant: row.text("tenant")?,
        name: row.text("name")?,
        description: row.text("description")?,
        secret_hash: row.optional_text("secret_hash")?,
        redirect_uris: row.list("redirect_uris")?,
        post_logout_redirect_uris: row.list("post_logout_redirect_uris")?,
        scopes: row.list("scopes")?,
        grant_types: row.list("grant_types")?,
        public: row.flag("public")?,
        first_party: row.flag("first_party")?,
        active: row.flag("active")?,
        owner: row.optional_text("owner")?,
        created_at: row.int("created_at")?,
        audiences: row.list("audiences")?,
        pkce_optional: row.flag("pkce_optional")?,
        backchannel_logout_uri: row.optional_text("backchannel_logout_uri")?,
    })
}

pub(crate) fn session(row: &impl StoreRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id_hash: row.text("id_hash")?,
        user_id: row.text("user_id")?,
        tenant: row.text("tenant")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        last_seen: row.int("last_seen")?,
        auth_method: row.text("auth_method")?,
        sid: row.text("sid")?,
        amr: row.text("amr")?,
    })
}

pub(crate) fn code(row: &impl StoreRow) -> Result<AuthCode, StoreError> {
    Ok(AuthCode {
        code_hash: row.text("code_hash")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        session_id_hash: row.optional_text("session_id_hash")?,
        redirect_uri: row.text("redirect_uri")?,
        scope: row.text("scope")?,
        nonce: row.optional_text("nonce")?,
        code_challenge: row.optional_text("code_challenge")?,
        auth_time: row.int("auth_time")?,
        expires_at: row.int("expires_at")?,
        grant_id: row.text("grant_id")?,
        amr: row.text("amr")?,
    })
}

pub(crate) fn grant(row: &impl StoreRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: row.text("id")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        tenant: row.text("tenant")?,
        scope: row.text("scope")?,
        created_at: row.int("created_at")?,
        revoked: row.flag("revoked")?,
        sid: row.optional_text("sid")?,
    })
}

pub(crate) fn refresh_token(row: &impl StoreRow) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        token_hash: row.text("token_hash")?,
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        scope: row.text("scope")?,
        expires_at: row.int("expires_at")?,
        auth_time: row.int("auth_time")?,
    })
}

pub(crate) fn api_token(row: &impl StoreRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        tenant: row.text("tenant")?,
        name: row.text("name")?,
        token_hash: row.text("token_hash")?,
        read_only: row.flag("read_only")?,
        created_at: row.int("created_at")?,
        last_used_at: row.optional_int("last_used_at")?,
        revoked_at: row.optional_int("revoked_at")?,
    })
}

pub(crate) fn contact(row: &impl StoreRow) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: row.text("id")?,
        tenant: row.text("tenant")?,
        email: row.text("email")?,
        hash_hash: row.text("hash_hash")?,
        path_prefix: row.text("path_prefix")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        revoked: row.flag("revoked")?,
    })
}

pub(crate) fn idp_session(row: &impl StoreRow) -> Result<IdpSession, StoreError> {
    Ok(IdpSession {
        session_hash: row.text("session_hash")?,
        idp: row.text("idp")?,
        sid: row.optional_text("sid")?,
        subject: row.text("subject")?,
        id_token: row.text("id_token")?,
        expires_at: row.int("expires_at")?,
    })
}

pub(crate) fn login_failures(row: &impl StoreRow) -> Result<LoginFailures, StoreError> {
    Ok(LoginFailures {
        subject: row.text("subject")?,
        window_start: row.int("window_start")?,
        failures: row.count("failures")?,
        banned_until: row.optional_int("banned_until")?,
    })
}

pub(crate) fn totp(row: &impl StoreRow) -> Result<TotpFactor, StoreError> {
    Ok(TotpFactor {
        user_id: row.text("user_id")?,
        secret_sealed: row.text("secret_sealed")?,
        confirmed: row.flag("confirmed")?,
        last_step: row.int("last_step")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn pending_factor(row: &impl StoreRow) -> Result<PendingFactor, StoreError> {
    Ok(PendingFactor {
        token_hash: row.text("token_hash")?,
        user_id: row.text("user_id")?,
        binding: row.text("binding")?,
        amr: row.text("amr")?,
        return_to: row.text("return_to")?,
        expires_at: row.int("expires_at")?,
    })
}

pub(crate) fn passkey(row: &impl StoreRow) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRecord {
        cred_id: row.text("cred_id")?,
        user_id: row.text("user_id")?,
        name: row.text("name")?,
        passkey: row.text("passkey")?,
        created_at: row.int("created_at")?,
        last_used: row.optional_int("last_used")?,
    })
}

pub(crate) fn passkey_ceremony(row: &impl StoreRow) -> Result<PasskeyCeremony, StoreError> {
    Ok(PasskeyCeremony {
        id_hash: row.text("id_hash")?,
        user_id: row.text("user_id")?,
        kind: row.text("kind")?,
        state: row.text("state")?,
        expires_at: row.int("expires_at")?,
    })
}

pub(crate) fn account_token(row: &impl StoreRow) -> Result<AccountToken, StoreError> {
    let kind = row.text("kind")?;
    Ok(AccountToken {
        token_hash: row.text("token_hash")?,
        id: row.text("id")?,
        kind: AccountTokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("account token kind `{kind}`")))?,
        tenant: row.text("tenant")?,
        email: row.text("email")?,
        user_id: row.optional_text("user_id")?,
        groups: row.list("member_groups")?,
        roles: row.list("roles")?,
        created_by: row.optional_text("created_by")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        used: row.flag("used")?,
    })
}
