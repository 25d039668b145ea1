//! PostgreSQL implementation of the store: one database shared by any number of nodes.
//!
//! Same semantics as the SQLite store, statement for statement (the shared test suite in
//! `store::tests` runs against both). Lists are JSON arrays of strings in TEXT columns,
//! booleans are BOOLEAN, times are unix seconds in BIGINT.
//!
//! Concurrency does not rely on a database-wide write lock as SQLite's does:
//! - single-use secrets (codes, refresh tokens) are consumed by one
//!   `UPDATE … WHERE used = FALSE RETURNING` statement: under READ COMMITTED a concurrent
//!   updater waits for the first and then re-checks `used`, so exactly one caller sees `Fresh`;
//! - one-time codes are checked in a transaction that locks the row (`SELECT … FOR UPDATE`),
//!   so every wrong attempt is counted and a right code is valid for exactly one caller;
//! - deletions that cascade run in one transaction each.
//!
//! PostgreSQL text cannot hold a NUL character, so no stored key contains one: lookups by
//! such a key find nothing without asking the database (SQLite answers the same), and
//! storing text with a NUL fails.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};
use subtle::ConstantTimeEq;

use super::notify::{CHANNEL, Revoked};
use super::{
    ApiToken, App, AuthCode, Consumed, Contact, FailurePolicy, Grant, IdpSession, LoginFailures,
    OtpCheck, OtpCode, RefreshToken, SessionRecord, Store, StoreError, User, normalize_email,
    to_json,
};

/// Connections kept by each node's pool.
const MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a free connection (or for a new one to connect).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const USER_COLUMNS: &str =
    "id, tenant, email, name, picture, member_groups, roles, password_hash, active, created_at";
const APP_COLUMNS: &str = "client_id, tenant, name, description, secret_hash, redirect_uris, \
     post_logout_redirect_uris, scopes, grant_types, public, first_party, active, owner, created_at, \
     audiences, pkce_optional";
const SESSION_COLUMNS: &str =
    "id_hash, user_id, tenant, created_at, expires_at, last_seen, auth_method";
const CODE_COLUMNS: &str = "code_hash, client_id, user_id, session_id_hash, redirect_uri, scope, \
     nonce, code_challenge, auth_time, expires_at, grant_id";
const GRANT_COLUMNS: &str = "id, client_id, user_id, tenant, scope, created_at, revoked";
const REFRESH_COLUMNS: &str =
    "token_hash, grant_id, client_id, user_id, scope, expires_at, auth_time";
const API_TOKEN_COLUMNS: &str =
    "id, user_id, tenant, name, token_hash, read_only, created_at, last_used_at, revoked_at";
const CONTACT_COLUMNS: &str =
    "id, tenant, email, hash_hash, path_prefix, created_at, expires_at, revoked";
const IDP_SESSION_COLUMNS: &str = "session_hash, idp, sid, subject, id_token, expires_at";

/// The store on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database?…`)
    /// and applies pending migrations.
    ///
    /// Several nodes may open the same database at once: sqlx's migrator holds a PostgreSQL
    /// advisory lock (keyed on the database name) while it checks and applies migrations,
    /// so they are applied exactly once, one node after the other.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
        })?;
        if options.get_application_name().is_none() {
            options = options.application_name("frontdoor");
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(PostgresStore { pool })
    }

    /// Closes every connection of the pool, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// Whether any of `keys` holds a NUL character, which PostgreSQL text cannot store: no row
/// can match such a key.
fn has_nul(keys: &[&str]) -> bool {
    keys.iter().any(|k| k.contains('\0'))
}

/// Tells every node what the current transaction revokes (`crate::revocation` listens);
/// PostgreSQL delivers it only when the transaction commits.
async fn notify(conn: &mut sqlx::PgConnection, revoked: &Revoked) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(revoked.payload())
        .execute(conn)
        .await?;
    Ok(())
}

/// Decodes the JSON array in `column`.
fn list(row: &PgRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        picture: row.try_get("picture")?,
        groups: list(row, "member_groups")?,
        roles: list(row, "roles")?,
        password_hash: row.try_get("password_hash")?,
        active: row.try_get("active")?,
        created_at: row.try_get("created_at")?,
    })
}

fn app_from_row(row: &PgRow) -> Result<App, StoreError> {
    Ok(App {
        client_id: row.try_get("client_id")?,
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        secret_hash: row.try_get("secret_hash")?,
        redirect_uris: list(row, "redirect_uris")?,
        post_logout_redirect_uris: list(row, "post_logout_redirect_uris")?,
        scopes: list(row, "scopes")?,
        grant_types: list(row, "grant_types")?,
        public: row.try_get("public")?,
        first_party: row.try_get("first_party")?,
        active: row.try_get("active")?,
        owner: row.try_get("owner")?,
        created_at: row.try_get("created_at")?,
        audiences: list(row, "audiences")?,
        pkce_optional: row.try_get("pkce_optional")?,
    })
}

fn session_from_row(row: &PgRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id_hash: row.try_get("id_hash")?,
        user_id: row.try_get("user_id")?,
        tenant: row.try_get("tenant")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_seen: row.try_get("last_seen")?,
        auth_method: row.try_get("auth_method")?,
    })
}

fn code_from_row(row: &PgRow) -> Result<AuthCode, StoreError> {
    Ok(AuthCode {
        code_hash: row.try_get("code_hash")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        session_id_hash: row.try_get("session_id_hash")?,
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        code_challenge: row.try_get("code_challenge")?,
        auth_time: row.try_get("auth_time")?,
        expires_at: row.try_get("expires_at")?,
        grant_id: row.try_get("grant_id")?,
    })
}

fn grant_from_row(row: &PgRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        tenant: row.try_get("tenant")?,
        scope: row.try_get("scope")?,
        created_at: row.try_get("created_at")?,
        revoked: row.try_get("revoked")?,
    })
}

fn refresh_from_row(row: &PgRow) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        token_hash: row.try_get("token_hash")?,
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: row.try_get("scope")?,
        expires_at: row.try_get("expires_at")?,
        auth_time: row.try_get("auth_time")?,
    })
}

fn api_token_from_row(row: &PgRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        read_only: row.try_get("read_only")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn contact_from_row(row: &PgRow) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        email: row.try_get("email")?,
        hash_hash: row.try_get("hash_hash")?,
        path_prefix: row.try_get("path_prefix")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked: row.try_get("revoked")?,
    })
}

fn idp_session_from_row(row: &PgRow) -> Result<IdpSession, StoreError> {
    Ok(IdpSession {
        session_hash: row.try_get("session_hash")?,
        idp: row.try_get("idp")?,
        sid: row.try_get("sid")?,
        subject: row.try_get("subject")?,
        id_token: row.try_get("id_token")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl PostgresStore {
    /// Marks the single-use row `key` of `table` used and classifies the attempt.
    ///
    /// The `UPDATE … WHERE used = FALSE` is one atomic statement: a concurrent caller blocks
    /// on the row lock of the first, then re-evaluates `used = FALSE` against the committed
    /// row and gets nothing back, so exactly one caller sees the row from `RETURNING`.
    async fn consume<T>(
        &self,
        table: &str,
        key_column: &str,
        columns: &str,
        key: &str,
        decode: fn(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Consumed<T>, StoreError> {
        if has_nul(&[key]) {
            return Ok(Consumed::Missing);
        }
        let update = format!(
            "UPDATE {table} SET used = TRUE WHERE {key_column} = $1 AND used = FALSE \
             RETURNING {columns}"
        );
        if let Some(row) = sqlx::query(&update)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(Consumed::Fresh(decode(&row)?));
        }
        let select = format!("SELECT {columns} FROM {table} WHERE {key_column} = $1");
        match sqlx::query(&select)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(row) => Ok(Consumed::Replayed(decode(&row)?)),
            None => Ok(Consumed::Missing),
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&user.id)
        .bind(&user.tenant)
        .bind(normalize_email(&user.email))
        .bind(&user.name)
        .bind(&user.picture)
        .bind(to_json(&user.groups)?)
        .bind(to_json(&user.roles)?)
        .bind(&user.password_hash)
        .bind(user.active)
        .bind(user.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        if has_nul(&[id]) {
            return Ok(None);
        }
        sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn find_user_by_email(
        &self,
        tenant: &str,
        email: &str,
    ) -> Result<Option<User>, StoreError> {
        if has_nul(&[tenant, email]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant = $1 AND email = $2"
        ))
        .bind(tenant)
        .bind(normalize_email(email))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    /// Ordered bytewise (the columns are `COLLATE "C"`), like SQLite.
    async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, StoreError> {
        let rows = match tenant {
            Some(tenant) if has_nul(&[tenant]) => Vec::new(),
            Some(tenant) => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE tenant = $1 ORDER BY email, id"
                ))
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY email, tenant, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(user_from_row).collect()
    }

    async fn create_app(&self, app: &App) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO apps ({APP_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&app.client_id)
        .bind(&app.tenant)
        .bind(&app.name)
        .bind(&app.description)
        .bind(&app.secret_hash)
        .bind(to_json(&app.redirect_uris)?)
        .bind(to_json(&app.post_logout_redirect_uris)?)
        .bind(to_json(&app.scopes)?)
        .bind(to_json(&app.grant_types)?)
        .bind(app.public)
        .bind(app.first_party)
        .bind(app.active)
        .bind(&app.owner)
        .bind(app.created_at)
        .bind(to_json(&app.audiences)?)
        .bind(app.pkce_optional)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_app(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        if has_nul(&[client_id]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(app_from_row)
        .transpose()
    }

    /// Ties in creation time are listed in insertion order (`seq`, SQLite's rowid).
    async fn list_apps(&self, tenant: Option<&str>) -> Result<Vec<App>, StoreError> {
        let rows = match tenant {
            Some(tenant) if has_nul(&[tenant]) => Vec::new(),
            Some(tenant) => {
                sqlx::query(&format!(
                    "SELECT {APP_COLUMNS} FROM apps WHERE tenant = $1 ORDER BY created_at, seq"
                ))
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, seq"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(app_from_row).collect()
    }

    async fn set_app_active(&self, client_id: &str, active: bool) -> Result<bool, StoreError> {
        if has_nul(&[client_id]) {
            return Ok(false);
        }
        // `RETURNING pg_notify(…)`: the notification goes out with the change, once per row.
        let done = sqlx::query(
            "UPDATE apps SET active = $1 WHERE client_id = $2 RETURNING pg_notify($3, $4)",
        )
        .bind(active)
        .bind(client_id)
        .bind(CHANNEL)
        .bind(Revoked::App(client_id.to_string()).payload())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_app(&self, client_id: &str) -> Result<bool, StoreError> {
        if has_nul(&[client_id]) {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM apps WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for statement in [
            "DELETE FROM refresh_tokens WHERE client_id = $1",
            "DELETE FROM grants WHERE client_id = $1",
            "DELETE FROM codes WHERE client_id = $1",
            "DELETE FROM consents WHERE client_id = $1",
        ] {
            sqlx::query(statement)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        if deleted > 0 {
            notify(&mut tx, &Revoked::App(client_id.to_string())).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&session.id_hash)
        .bind(&session.user_id)
        .bind(&session.tenant)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.last_seen)
        .bind(&session.auth_method)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        if has_nul(&[id_hash]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn touch_session(&self, id_hash: &str, last_seen: i64) -> Result<(), StoreError> {
        if has_nul(&[id_hash]) {
            return Ok(());
        }
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2")
            .bind(last_seen)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        if has_nul(&[id_hash]) {
            return Ok(false);
        }
        let done =
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1 RETURNING pg_notify($2, $3)")
                .bind(id_hash)
                .bind(CHANNEL)
                .bind(Revoked::Session(id_hash.to_string()).payload())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Expired means `expires_at <= now`, matching `count_sessions`. Also removes expired
    /// one-time codes, contacts, provider sessions and login failures; only sessions are
    /// counted in the result.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for statement in [
            "DELETE FROM codes WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM otp_codes WHERE expires_at <= $1",
            "DELETE FROM contacts WHERE expires_at <= $1",
            "DELETE FROM idp_sessions WHERE expires_at <= $1",
            "DELETE FROM login_failures WHERE expires_at <= $1",
        ] {
            sqlx::query(statement).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(sessions)
    }

    async fn count_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > $1")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(count).map_err(|e| StoreError::Corrupt(format!("session count: {e}")))
    }

    async fn create_code(&self, code: &AuthCode) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO codes ({CODE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.session_id_hash)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(&code.nonce)
        .bind(&code.code_challenge)
        .bind(code.auth_time)
        .bind(code.expires_at)
        .bind(&code.grant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consume_code(&self, code_hash: &str) -> Result<Consumed<AuthCode>, StoreError> {
        self.consume("codes", "code_hash", CODE_COLUMNS, code_hash, code_from_row)
            .await
    }

    async fn create_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&grant.id)
        .bind(&grant.client_id)
        .bind(&grant.user_id)
        .bind(&grant.tenant)
        .bind(&grant.scope)
        .bind(grant.created_at)
        .bind(grant.revoked)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        if has_nul(&[id]) {
            return Ok(None);
        }
        sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(grant_from_row)
            .transpose()
    }

    /// Deletes the grant's refresh tokens: presenting one afterwards yields `Missing`.
    async fn revoke_grant(&self, id: &str) -> Result<bool, StoreError> {
        if has_nul(&[id]) {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("UPDATE grants SET revoked = TRUE WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if !found {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, &Revoked::Grant(id.to_string())).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&token.token_hash)
        .bind(&token.grant_id)
        .bind(&token.client_id)
        .bind(&token.user_id)
        .bind(&token.scope)
        .bind(token.expires_at)
        .bind(token.auth_time)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn use_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Consumed<RefreshToken>, StoreError> {
        self.consume(
            "refresh_tokens",
            "token_hash",
            REFRESH_COLUMNS,
            token_hash,
            refresh_from_row,
        )
        .await
    }

    async fn get_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        if has_nul(&[token_hash]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(refresh_from_row)
        .transpose()
    }

    async fn refresh_token_used(&self, token_hash: &str) -> Result<bool, StoreError> {
        if has_nul(&[token_hash]) {
            return Ok(false);
        }
        let used: Option<bool> =
            sqlx::query_scalar("SELECT used FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(used.unwrap_or(false))
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError> {
        if has_nul(&[user_id, client_id]) {
            return Ok(Vec::new());
        }
        let scopes = sqlx::query_scalar(
            "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 ORDER BY scope",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(scopes)
    }

    /// One statement: concurrent saves of overlapping scopes both succeed.
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        if scopes.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope) \
             SELECT $1, $2, scope FROM UNNEST($3::TEXT[]) AS s (scope) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scopes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update_app(&self, app: &App) -> Result<bool, StoreError> {
        if has_nul(&[app.client_id.as_str()]) {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE apps SET name = $1, description = $2, secret_hash = $3, redirect_uris = $4, \
             post_logout_redirect_uris = $5, scopes = $6, grant_types = $7, public = $8, \
             first_party = $9, active = $10, owner = $11, audiences = $12, pkce_optional = $13 \
             WHERE client_id = $14 RETURNING pg_notify($15, $16)",
        )
        .bind(&app.name)
        .bind(&app.description)
        .bind(&app.secret_hash)
        .bind(to_json(&app.redirect_uris)?)
        .bind(to_json(&app.post_logout_redirect_uris)?)
        .bind(to_json(&app.scopes)?)
        .bind(to_json(&app.grant_types)?)
        .bind(app.public)
        .bind(app.first_party)
        .bind(app.active)
        .bind(&app.owner)
        .bind(to_json(&app.audiences)?)
        .bind(app.pkce_optional)
        .bind(&app.client_id)
        .bind(CHANNEL)
        .bind(Revoked::App(app.client_id.clone()).payload())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_user_active(&self, id: &str, active: bool) -> Result<bool, StoreError> {
        if has_nul(&[id]) {
            return Ok(false);
        }
        let done =
            sqlx::query("UPDATE users SET active = $1 WHERE id = $2 RETURNING pg_notify($3, $4)")
                .bind(active)
                .bind(id)
                .bind(CHANNEL)
                .bind(Revoked::User(id.to_string()).payload())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Also deletes the user's pending authorization codes, so that none can be exchanged
    /// for a grant of a user that no longer exists.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        if has_nul(&[id]) {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM refresh_tokens \
             WHERE user_id = $1 OR grant_id IN (SELECT id FROM grants WHERE user_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for statement in [
            "DELETE FROM grants WHERE user_id = $1",
            "DELETE FROM codes WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM api_tokens WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        if deleted > 0 {
            notify(&mut tx, &Revoked::User(id.to_string())).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO api_tokens ({API_TOKEN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&token.id)
        .bind(&token.user_id)
        .bind(&token.tenant)
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.read_only)
        .bind(token.created_at)
        .bind(token.last_used_at)
        .bind(token.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        if has_nul(&[token_hash]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(api_token_from_row)
        .transpose()
    }

    async fn get_api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        if has_nul(&[id]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(api_token_from_row)
        .transpose()
    }

    /// Both filters apply when both are given.
    async fn list_api_tokens(
        &self,
        user_id: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Vec<ApiToken>, StoreError> {
        if has_nul(&[user_id.unwrap_or(""), tenant.unwrap_or("")]) {
            return Ok(Vec::new());
        }
        let mut query: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE TRUE"
        ));
        if let Some(user_id) = user_id {
            query.push(" AND user_id = ").push_bind(user_id);
        }
        if let Some(tenant) = tenant {
            query.push(" AND tenant = ").push_bind(tenant);
        }
        query.push(" ORDER BY created_at DESC, seq DESC");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(api_token_from_row).collect()
    }

    async fn revoke_api_token(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        if has_nul(&[id]) {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             RETURNING pg_notify($3, $4)",
        )
        .bind(at)
        .bind(id)
        .bind(CHANNEL)
        .bind(Revoked::ApiToken(id.to_string()).payload())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        if has_nul(&[id]) {
            return Ok(());
        }
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn put_otp(&self, code: &OtpCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO otp_codes (tenant, email, code_hash, created_at, expires_at, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant, email) DO UPDATE SET code_hash = EXCLUDED.code_hash, \
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
             attempts = EXCLUDED.attempts",
        )
        .bind(&code.tenant)
        .bind(normalize_email(&code.email))
        .bind(&code.code_hash)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(i64::from(code.attempts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One transaction holding the row lock (`SELECT … FOR UPDATE`): concurrent checks of
    /// the same code wait for each other and see each other's writes, so a right code is
    /// `Valid` for exactly one caller and every wrong attempt is counted.
    async fn check_otp(
        &self,
        tenant: &str,
        email: &str,
        code_hash: &str,
        now: i64,
        max_attempts: u32,
    ) -> Result<OtpCheck, StoreError> {
        if has_nul(&[tenant, email]) {
            return Ok(OtpCheck::Missing);
        }
        let email = normalize_email(email);
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT code_hash, expires_at, attempts FROM otp_codes \
             WHERE tenant = $1 AND email = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?
        else {
            tx.rollback().await?;
            return Ok(OtpCheck::Missing);
        };
        let stored: String = row.try_get("code_hash")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let attempts: i64 = row.try_get("attempts")?;
        let attempts = u32::try_from(attempts)
            .map_err(|e| StoreError::Corrupt(format!("otp attempts {attempts}: {e}")))?;

        let outcome = if expires_at <= now {
            OtpCheck::Expired
        } else if attempts >= max_attempts {
            OtpCheck::Exhausted
        } else if bool::from(stored.as_bytes().ct_eq(code_hash.as_bytes())) {
            OtpCheck::Valid
        } else {
            let attempts = attempts.saturating_add(1);
            if attempts >= max_attempts {
                OtpCheck::Exhausted
            } else {
                sqlx::query("UPDATE otp_codes SET attempts = $1 WHERE tenant = $2 AND email = $3")
                    .bind(i64::from(attempts))
                    .bind(tenant)
                    .bind(&email)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(OtpCheck::Wrong {
                    attempts_left: max_attempts - attempts,
                });
            }
        };
        sqlx::query("DELETE FROM otp_codes WHERE tenant = $1 AND email = $2")
            .bind(tenant)
            .bind(&email)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn create_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&contact.id)
        .bind(&contact.tenant)
        .bind(&contact.email)
        .bind(&contact.hash_hash)
        .bind(&contact.path_prefix)
        .bind(contact.created_at)
        .bind(contact.expires_at)
        .bind(contact.revoked)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_contact(&self, hash_hash: &str) -> Result<Option<Contact>, StoreError> {
        if has_nul(&[hash_hash]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE hash_hash = $1"
        ))
        .bind(hash_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(contact_from_row)
        .transpose()
    }

    async fn list_contacts(&self, tenant: Option<&str>) -> Result<Vec<Contact>, StoreError> {
        let rows = match tenant {
            Some(tenant) if has_nul(&[tenant]) => Vec::new(),
            Some(tenant) => {
                sqlx::query(&format!(
                    "SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant = $1 \
                     ORDER BY created_at DESC, seq DESC"
                ))
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY created_at DESC, seq DESC"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(contact_from_row).collect()
    }

    async fn revoke_contact(&self, id: &str) -> Result<bool, StoreError> {
        if has_nul(&[id]) {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE contacts SET revoked = TRUE WHERE id = $1 RETURNING pg_notify($2, $3)",
        )
        .bind(id)
        .bind(CHANNEL)
        .bind(Revoked::Contact(id.to_string()).payload())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        if has_nul(&[user.id.as_str()]) {
            return Ok(false);
        }
        // Only a deactivation is told to the other nodes: an active user's other changes (a
        // federated sign-in updates the user each time) reach them within `session.cache_ttl`.
        let sql = format!(
            "UPDATE users SET name = $1, picture = $2, member_groups = $3, roles = $4, \
             password_hash = $5, active = $6 WHERE id = $7{}",
            if user.active {
                ""
            } else {
                " RETURNING pg_notify($8, $9)"
            }
        );
        let mut query = sqlx::query(&sql)
            .bind(&user.name)
            .bind(&user.picture)
            .bind(to_json(&user.groups)?)
            .bind(to_json(&user.roles)?)
            .bind(&user.password_hash)
            .bind(user.active)
            .bind(&user.id);
        if !user.active {
            query = query
                .bind(CHANNEL)
                .bind(Revoked::User(user.id.clone()).payload());
        }
        let done = query.execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_identity_link(
        &self,
        idp: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        if has_nul(&[idp, subject]) {
            return Ok(None);
        }
        Ok(
            sqlx::query_scalar(
                "SELECT user_id FROM identity_links WHERE idp = $1 AND subject = $2",
            )
            .bind(idp)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    async fn link_identity(
        &self,
        idp: &str,
        subject: &str,
        user_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO identity_links (idp, subject, user_id, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (idp, subject) DO UPDATE SET user_id = EXCLUDED.user_id",
        )
        .bind(idp)
        .bind(subject)
        .bind(user_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces an earlier record of the same session.
    async fn create_idp_session(&self, session: &IdpSession) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO idp_sessions ({IDP_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (session_hash) DO UPDATE SET idp = EXCLUDED.idp, sid = EXCLUDED.sid, \
             subject = EXCLUDED.subject, id_token = EXCLUDED.id_token, \
             expires_at = EXCLUDED.expires_at"
        ))
        .bind(&session.session_hash)
        .bind(&session.idp)
        .bind(&session.sid)
        .bind(&session.subject)
        .bind(&session.id_token)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_idp_session(&self, session_hash: &str) -> Result<Option<IdpSession>, StoreError> {
        if has_nul(&[session_hash]) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {IDP_SESSION_COLUMNS} FROM idp_sessions WHERE session_hash = $1"
        ))
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(idp_session_from_row)
        .transpose()
    }

    /// One transaction: the provider sessions are deleted with `RETURNING`, then the
    /// frontdoor sessions they name.
    async fn end_idp_sessions(
        &self,
        idp: &str,
        sid: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let (column, value) = match (sid, subject) {
            (Some(sid), _) => ("sid", sid),
            (None, Some(subject)) => ("subject", subject),
            (None, None) => return Ok(Vec::new()),
        };
        if has_nul(&[idp, value]) {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let hashes: Vec<String> = sqlx::query_scalar(&format!(
            "DELETE FROM idp_sessions WHERE idp = $1 AND {column} = $2 RETURNING session_hash"
        ))
        .bind(idp)
        .bind(value)
        .fetch_all(&mut *tx)
        .await?;
        if !hashes.is_empty() {
            sqlx::query("DELETE FROM sessions WHERE id_hash = ANY($1)")
                .bind(&hashes)
                .execute(&mut *tx)
                .await?;
            for hash in &hashes {
                notify(&mut tx, &Revoked::Session(hash.clone())).await?;
            }
        }
        tx.commit().await?;
        Ok(hashes)
    }

    async fn login_failures(&self, subjects: &[String]) -> Result<Vec<LoginFailures>, StoreError> {
        let subjects: Vec<&str> = subjects
            .iter()
            .map(String::as_str)
            .filter(|s| !has_nul(&[s]))
            .collect();
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT subject, window_start, failures, banned_until FROM login_failures \
             WHERE subject = ANY($1)",
        )
        .bind(&subjects)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(login_failures_from_row).collect()
    }

    /// One transaction: the row is created if missing, then locked (`SELECT … FOR UPDATE`), so
    /// failures counted at once on several nodes are serialized, each is counted and exactly
    /// one of them starts the ban.
    async fn record_login_failure(
        &self,
        subject: &str,
        now: i64,
        policy: &FailurePolicy,
    ) -> Result<Option<i64>, StoreError> {
        if has_nul(&[subject]) {
            return Err(StoreError::Corrupt("a subject cannot hold NUL".into()));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO login_failures (subject, window_start, failures, banned_until, expires_at) \
             VALUES ($1, $2, 0, NULL, $3) ON CONFLICT (subject) DO NOTHING",
        )
        .bind(subject)
        .bind(now)
        .bind(now + policy.window)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT subject, window_start, failures, banned_until FROM login_failures \
             WHERE subject = $1 FOR UPDATE",
        )
        .bind(subject)
        .fetch_one(&mut *tx)
        .await?;
        let current = login_failures_from_row(&row)?;
        let (row, banned) = policy.after_failure(subject, Some(current), now);
        sqlx::query(
            "UPDATE login_failures SET window_start = $2, failures = $3, banned_until = $4, \
             expires_at = $5 WHERE subject = $1",
        )
        .bind(&row.subject)
        .bind(row.window_start)
        .bind(i64::from(row.failures))
        .bind(row.banned_until)
        .bind(row.expires_at(policy.window))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(banned)
    }

    async fn clear_login_failures(&self, subject: &str, now: i64) -> Result<(), StoreError> {
        if has_nul(&[subject]) {
            return Ok(());
        }
        sqlx::query(
            "DELETE FROM login_failures WHERE subject = $1 \
             AND (banned_until IS NULL OR banned_until <= $2)",
        )
        .bind(subject)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn login_failures_from_row(row: &PgRow) -> Result<LoginFailures, StoreError> {
    let failures: i64 = row.try_get("failures")?;
    Ok(LoginFailures {
        subject: row.try_get("subject")?,
        window_start: row.try_get("window_start")?,
        failures: u32::try_from(failures)
            .map_err(|e| StoreError::Corrupt(format!("login failures {failures}: {e}")))?,
        banned_until: row.try_get("banned_until")?,
    })
}

#[cfg(test)]
mod tests {
    //! What only PostgreSQL has: migrations raced by several nodes, and a schema kept in step
    //! with SQLite's. The store's behaviour is tested for every backend in `store::tests`.

    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use sqlx::{Connection, PgConnection, SqlitePool};
    use tempfile::TempDir;

    use super::super::tests::{PgTestDatabase, user};
    use super::super::{SqliteStore, Store};
    use super::PostgresStore;

    /// The migrations this build embeds.
    fn migration_count() -> i64 {
        let migrator = sqlx::migrate!("./migrations/postgres");
        i64::try_from(migrator.iter().count()).unwrap()
    }

    /// Several nodes starting at once on a fresh database: every open succeeds and each
    /// migration is applied once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_on_a_fresh_database_migrate_once() {
        let Some(db) = PgTestDatabase::create().await else {
            return;
        };
        let barrier = Arc::new(tokio::sync::Barrier::new(6));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let url = db.url.clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    PostgresStore::open(&url).await
                })
            })
            .collect();
        let mut stores = Vec::new();
        for task in tasks {
            stores.push(task.await.unwrap().unwrap());
        }
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        let (applied, succeeded): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE success) FROM _sqlx_migrations",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!((applied, succeeded), (migration_count(), migration_count()));
        // Every node works on the one schema.
        stores[0]
            .create_user(&user("u1", "default", "alice@example.com"))
            .await
            .unwrap();
        for store in &stores {
            assert!(store.get_user("u1").await.unwrap().is_some());
        }
        for store in &stores {
            store.close().await;
        }
    }

    /// sqlx's lock key for a database: CRC-32 (ISO-HDLC) of its name times 0x3d32ad9e
    /// (sqlx-postgres, `migrate.rs`, `generate_lock_id`).
    fn sqlx_migration_lock_id(database: &str) -> i64 {
        let mut crc = !0u32;
        for &byte in database.as_bytes() {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        0x3d32_ad9e_i64 * i64::from(!crc)
    }

    /// What makes concurrent starts safe: the migrator waits for the database's advisory
    /// lock before it looks at the schema.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_wait_for_the_advisory_lock() {
        let Some(db) = PgTestDatabase::create().await else {
            return;
        };
        let lock_id = sqlx_migration_lock_id(&db.name);
        let mut holder = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(lock_id)
            .execute(&mut holder)
            .await
            .unwrap();

        let url = db.url.clone();
        let opening = tokio::spawn(async move { PostgresStore::open(&url).await });
        // The migrator queues on the lock (in this database: other tests migrate too) ...
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            assert!(
                !opening.is_finished(),
                "open finished while the lock was held"
            );
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&mut holder)
            .await
            .unwrap();
            if waiting == 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the migrator never queued on the advisory lock"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // ... and stays there.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(
            !opening.is_finished(),
            "open finished while the lock was held"
        );
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_one(&mut holder)
        .await
        .unwrap();
        assert_eq!(tables, 0, "nothing is created before the lock is taken");

        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(lock_id)
            .execute(&mut holder)
            .await
            .unwrap();
        let store = tokio::time::timeout(std::time::Duration::from_secs(30), opening)
            .await
            .expect("open still blocked after the lock was released")
            .unwrap()
            .unwrap();
        store.ping().await.unwrap();
        store.close().await;
    }

    /// Columns (name, nullability, integer or text) and indexes (columns, uniqueness) by table.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Schema {
        columns: BTreeMap<String, BTreeSet<(String, bool, &'static str)>>,
        indexes: BTreeSet<(String, bool, String)>,
    }

    async fn sqlite_schema() -> Schema {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("frontdoor.db");
        SqliteStore::open(&path).await.unwrap().close().await;
        let pool = SqlitePool::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let mut schema = Schema::default();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for table in tables {
            let columns: Vec<(String, String, bool, i64)> =
                sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)")
                    .bind(&table)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let columns = columns
                .into_iter()
                .map(|(name, kind, not_null, pk)| {
                    let class = match kind.as_str() {
                        "TEXT" => "text",
                        "INTEGER" => "integer",
                        other => panic!("{table}.{name}: unexpected type {other}"),
                    };
                    (name, not_null || pk > 0, class)
                })
                .collect();
            schema.columns.insert(table.clone(), columns);
            let indexes: Vec<(String, bool)> =
                sqlx::query_as("SELECT name, \"unique\" FROM pragma_index_list(?)")
                    .bind(&table)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            for (index, unique) in indexes {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                        .bind(&index)
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                schema
                    .indexes
                    .insert((table.clone(), unique, columns.join(",")));
            }
        }
        pool.close().await;
        schema
    }

    async fn postgres_schema(url: &str) -> Schema {
        PostgresStore::open(url).await.unwrap().close().await;
        let mut conn = PgConnection::connect(url).await.unwrap();
        let mut schema = Schema::default();
        let columns: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT table_name::TEXT, column_name::TEXT, is_nullable::TEXT, data_type::TEXT \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' \
             AND column_name <> 'seq'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (table, name, nullable, kind) in columns {
            let class = match kind.as_str() {
                "text" => "text",
                "bigint" | "boolean" => "integer",
                other => panic!("{table}.{name}: unexpected type {other}"),
            };
            schema
                .columns
                .entry(table)
                .or_default()
                .insert((name, nullable == "NO", class));
        }
        let indexes: Vec<(String, bool, String)> = sqlx::query_as(
            "SELECT t.relname::TEXT, i.indisunique, \
                    string_agg(a.attname::TEXT, ',' ORDER BY k.ord) \
             FROM pg_index i \
             JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations' \
             GROUP BY t.relname, i.indexrelid, i.indisunique",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        schema.indexes = indexes.into_iter().collect();
        conn.close().await.unwrap();
        schema
    }

    /// The PostgreSQL schema has the tables, columns, keys and indexes of SQLite's after all
    /// its migrations: a migration added to one and not the other fails here.
    #[tokio::test]
    async fn schema_matches_sqlite() {
        let Some(db) = PgTestDatabase::create().await else {
            return;
        };
        let sqlite = sqlite_schema().await;
        let postgres = postgres_schema(&db.url).await;
        assert!(!sqlite.columns.is_empty() && !sqlite.indexes.is_empty());
        assert_eq!(postgres.columns, sqlite.columns);
        assert_eq!(postgres.indexes, sqlite.indexes);
    }
}
