//! SQLite implementation of the store (the embedded default).
//!
//! One database file in WAL mode with `synchronous = FULL`, so that a write the store
//! has confirmed survives a crash of the process or of the machine. Lists are JSON
//! arrays of strings, booleans are 0/1 integers, times are unix seconds.
//!
//! Transactions that write start with `BEGIN IMMEDIATE`: they take the write lock up
//! front (waiting at most the busy timeout) instead of failing with `SQLITE_BUSY` when
//! a deferred read transaction has to be upgraded under contention.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use subtle::ConstantTimeEq;

use super::{
    ApiToken, App, AuthCode, Consumed, Contact, Grant, IdpSession, OtpCheck, OtpCode, RefreshToken,
    SessionRecord, Store, StoreError, User,
};

/// Connections kept by the pool.
const MAX_CONNECTIONS: u32 = 8;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const USER_COLUMNS: &str =
    "id, tenant, email, name, picture, member_groups, roles, password_hash, active, created_at";
const APP_COLUMNS: &str = "client_id, tenant, name, description, secret_hash, redirect_uris, \
     post_logout_redirect_uris, scopes, grant_types, public, first_party, active, owner, created_at, \
     audiences";
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

/// The store on a local SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Closes every connection of the pool, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Lowercases an email for storage and lookup.
fn normalize_email(email: &str) -> String {
    email.to_lowercase()
}

/// Encodes a list as a JSON array.
fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(format!("encoding list: {e}")))
}

/// Decodes the JSON array in `column`.
fn list(row: &SqliteRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
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

fn app_from_row(row: &SqliteRow) -> Result<App, StoreError> {
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
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord, StoreError> {
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

fn code_from_row(row: &SqliteRow) -> Result<AuthCode, StoreError> {
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

fn grant_from_row(row: &SqliteRow) -> Result<Grant, StoreError> {
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

fn refresh_from_row(row: &SqliteRow) -> Result<RefreshToken, StoreError> {
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

fn api_token_from_row(row: &SqliteRow) -> Result<ApiToken, StoreError> {
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

fn contact_from_row(row: &SqliteRow) -> Result<Contact, StoreError> {
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

impl SqliteStore {
    /// Marks the single-use row `key` of `table` used and classifies the attempt.
    ///
    /// The `UPDATE ... WHERE used = 0` is one atomic statement: under any concurrency
    /// exactly one caller sees the row come back from `RETURNING`.
    async fn consume<T>(
        &self,
        table: &str,
        key_column: &str,
        columns: &str,
        key: &str,
        decode: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Consumed<T>, StoreError> {
        let update = format!(
            "UPDATE {table} SET used = 1 WHERE {key_column} = ? AND used = 0 RETURNING {columns}"
        );
        if let Some(row) = sqlx::query(&update)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(Consumed::Fresh(decode(&row)?));
        }
        let select = format!("SELECT {columns} FROM {table} WHERE {key_column} = ?");
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
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
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
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant = ? AND email = ?"
        ))
        .bind(tenant)
        .bind(normalize_email(email))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, StoreError> {
        let rows = match tenant {
            Some(tenant) => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE tenant = ? ORDER BY email, id"
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
            "INSERT INTO apps ({APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_app(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE client_id = ?"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(app_from_row)
        .transpose()
    }

    async fn list_apps(&self, tenant: Option<&str>) -> Result<Vec<App>, StoreError> {
        let rows = match tenant {
            Some(tenant) => {
                sqlx::query(&format!(
                    "SELECT {APP_COLUMNS} FROM apps WHERE tenant = ? ORDER BY created_at, rowid"
                ))
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, rowid"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(app_from_row).collect()
    }

    async fn set_app_active(&self, client_id: &str, active: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE apps SET active = ? WHERE client_id = ?")
            .bind(active)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_app(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let deleted = sqlx::query("DELETE FROM apps WHERE client_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for statement in [
            "DELETE FROM refresh_tokens WHERE client_id = ?",
            "DELETE FROM grants WHERE client_id = ?",
            "DELETE FROM codes WHERE client_id = ?",
            "DELETE FROM consents WHERE client_id = ?",
        ] {
            sqlx::query(statement)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
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
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = ?"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn touch_session(&self, id_hash: &str, last_seen: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen = ? WHERE id_hash = ?")
            .bind(last_seen)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Expired means `expires_at <= now`, matching `count_sessions`. Also removes expired
    /// one-time codes and contacts; only sessions are counted in the result.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for statement in [
            "DELETE FROM codes WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?",
            "DELETE FROM otp_codes WHERE expires_at <= ?",
            "DELETE FROM contacts WHERE expires_at <= ?",
            "DELETE FROM idp_sessions WHERE expires_at <= ?",
        ] {
            sqlx::query(statement).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(sessions)
    }

    async fn count_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > ?")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(count).map_err(|e| StoreError::Corrupt(format!("session count: {e}")))
    }

    async fn create_code(&self, code: &AuthCode) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO codes ({CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            "INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
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
        sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(grant_from_row)
            .transpose()
    }

    /// Deletes the grant's refresh tokens: presenting one afterwards yields `Missing`.
    async fn revoke_grant(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let found = sqlx::query("UPDATE grants SET revoked = 1 WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if !found {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
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
        sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(refresh_from_row)
        .transpose()
    }

    async fn refresh_token_used(&self, token_hash: &str) -> Result<bool, StoreError> {
        let used: Option<bool> =
            sqlx::query_scalar("SELECT used FROM refresh_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(used.unwrap_or(false))
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError> {
        let scopes = sqlx::query_scalar(
            "SELECT scope FROM consents WHERE user_id = ? AND client_id = ? ORDER BY scope",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(scopes)
    }

    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        if scopes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for scope in scopes {
            sqlx::query(
                "INSERT INTO consents (user_id, client_id, scope) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(scope)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_app(&self, app: &App) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE apps SET name = ?, description = ?, secret_hash = ?, redirect_uris = ?, \
             post_logout_redirect_uris = ?, scopes = ?, grant_types = ?, public = ?, \
             first_party = ?, active = ?, owner = ?, audiences = ? WHERE client_id = ?",
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
        .bind(&app.client_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_user_active(&self, id: &str, active: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET active = ? WHERE id = ?")
            .bind(active)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Also deletes the user's pending authorization codes, so that none can be exchanged
    /// for a grant of a user that no longer exists.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM refresh_tokens \
             WHERE user_id = ?1 OR grant_id IN (SELECT id FROM grants WHERE user_id = ?1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for statement in [
            "DELETE FROM grants WHERE user_id = ?",
            "DELETE FROM codes WHERE user_id = ?",
            "DELETE FROM sessions WHERE user_id = ?",
            "DELETE FROM api_tokens WHERE user_id = ?",
            "DELETE FROM consents WHERE user_id = ?",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO api_tokens ({API_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(api_token_from_row)
        .transpose()
    }

    async fn get_api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE id = ?"
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
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE 1 = 1"
        ));
        if let Some(user_id) = user_id {
            query.push(" AND user_id = ").push_bind(user_id);
        }
        if let Some(tenant) = tenant {
            query.push(" AND tenant = ").push_bind(tenant);
        }
        query.push(" ORDER BY created_at DESC, rowid DESC");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(api_token_from_row).collect()
    }

    async fn revoke_api_token(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn put_otp(&self, code: &OtpCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO otp_codes \
             (tenant, email, code_hash, created_at, expires_at, attempts) \
             VALUES (?, ?, ?, ?, ?, ?)",
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

    /// One `BEGIN IMMEDIATE` transaction: concurrent checks of the same code are
    /// serialized, so a right code is `Valid` for exactly one caller and every wrong
    /// attempt is counted.
    async fn check_otp(
        &self,
        tenant: &str,
        email: &str,
        code_hash: &str,
        now: i64,
        max_attempts: u32,
    ) -> Result<OtpCheck, StoreError> {
        let email = normalize_email(email);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) = sqlx::query(
            "SELECT code_hash, expires_at, attempts FROM otp_codes WHERE tenant = ? AND email = ?",
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
                sqlx::query("UPDATE otp_codes SET attempts = ? WHERE tenant = ? AND email = ?")
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
        sqlx::query("DELETE FROM otp_codes WHERE tenant = ? AND email = ?")
            .bind(tenant)
            .bind(&email)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn create_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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
        sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE hash_hash = ?"
        ))
        .bind(hash_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(contact_from_row)
        .transpose()
    }

    async fn list_contacts(&self, tenant: Option<&str>) -> Result<Vec<Contact>, StoreError> {
        let rows =
            match tenant {
                Some(tenant) => {
                    sqlx::query(&format!(
                        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant = ? \
                     ORDER BY created_at DESC, rowid DESC"
                    ))
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?
                }
                None => sqlx::query(&format!(
                    "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY created_at DESC, rowid DESC"
                ))
                .fetch_all(&self.pool)
                .await?,
            };
        rows.iter().map(contact_from_row).collect()
    }

    async fn revoke_contact(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE contacts SET revoked = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET name = ?, picture = ?, member_groups = ?, roles = ?, \
             password_hash = ?, active = ? WHERE id = ?",
        )
        .bind(&user.name)
        .bind(&user.picture)
        .bind(to_json(&user.groups)?)
        .bind(to_json(&user.roles)?)
        .bind(&user.password_hash)
        .bind(user.active)
        .bind(&user.id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_identity_link(
        &self,
        idp: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM identity_links WHERE idp = ? AND subject = ?")
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
            "INSERT INTO identity_links (idp, subject, user_id, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (idp, subject) DO UPDATE SET user_id = excluded.user_id",
        )
        .bind(idp)
        .bind(subject)
        .bind(user_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_idp_session(&self, session: &IdpSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO idp_sessions (session_hash, idp, sid, subject, id_token, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
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
        let row = sqlx::query(
            "SELECT session_hash, idp, sid, subject, id_token, expires_at FROM idp_sessions WHERE session_hash = ?",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(IdpSession {
                session_hash: r.try_get("session_hash")?,
                idp: r.try_get("idp")?,
                sid: r.try_get("sid")?,
                subject: r.try_get("subject")?,
                id_token: r.try_get("id_token")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn end_idp_sessions(
        &self,
        idp: &str,
        sid: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let hashes: Vec<String> = match (sid, subject) {
            (Some(sid), _) => {
                sqlx::query_scalar(
                    "SELECT session_hash FROM idp_sessions WHERE idp = ? AND sid = ?",
                )
                .bind(idp)
                .bind(sid)
                .fetch_all(&mut *tx)
                .await?
            }
            (None, Some(sub)) => {
                sqlx::query_scalar(
                    "SELECT session_hash FROM idp_sessions WHERE idp = ? AND subject = ?",
                )
                .bind(idp)
                .bind(sub)
                .fetch_all(&mut *tx)
                .await?
            }
            (None, None) => Vec::new(),
        };
        for h in &hashes {
            sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
                .bind(h)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM idp_sessions WHERE session_hash = ?")
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(hashes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tempfile::TempDir;

    use super::*;

    async fn open_temp() -> (TempDir, SqliteStore) {
        let dir = TempDir::new().unwrap();
        let store = SqliteStore::open(&dir.path().join("frontdoor.db"))
            .await
            .unwrap();
        (dir, store)
    }

    fn user(id: &str, tenant: &str, email: &str) -> User {
        User {
            id: id.into(),
            tenant: tenant.into(),
            email: email.into(),
            name: format!("User {id}"),
            picture: Some("https://example.com/p.png".into()),
            groups: vec!["eng".into(), "ops".into()],
            roles: vec!["ROLE_USER".into()],
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            active: true,
            created_at: 1_700_000_000,
        }
    }

    fn app(client_id: &str, tenant: &str, created_at: i64) -> App {
        App {
            client_id: client_id.into(),
            tenant: tenant.into(),
            name: format!("App {client_id}"),
            description: "does things".into(),
            secret_hash: Some("c2VjcmV0".into()),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
            scopes: vec!["openid".into(), "email".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            public: false,
            first_party: true,
            active: true,
            owner: None,
            created_at,
            audiences: vec!["https://api.example.com".into()],
        }
    }

    fn session(id_hash: &str, expires_at: i64) -> SessionRecord {
        SessionRecord {
            id_hash: id_hash.into(),
            user_id: "u1".into(),
            tenant: "default".into(),
            created_at: 100,
            expires_at,
            last_seen: 100,
            auth_method: "password".into(),
        }
    }

    fn code(code_hash: &str, client_id: &str, expires_at: i64) -> AuthCode {
        AuthCode {
            code_hash: code_hash.into(),
            client_id: client_id.into(),
            user_id: "u1".into(),
            session_id_hash: Some("s1".into()),
            redirect_uri: "https://app.example.com/cb".into(),
            scope: "openid email".into(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            auth_time: 100,
            expires_at,
            grant_id: "g1".into(),
        }
    }

    fn grant(id: &str, client_id: &str) -> Grant {
        Grant {
            id: id.into(),
            client_id: client_id.into(),
            user_id: "u1".into(),
            tenant: "default".into(),
            scope: "openid email offline_access".into(),
            created_at: 100,
            revoked: false,
        }
    }

    fn refresh(token_hash: &str, grant_id: &str, client_id: &str, expires_at: i64) -> RefreshToken {
        RefreshToken {
            token_hash: token_hash.into(),
            grant_id: grant_id.into(),
            client_id: client_id.into(),
            user_id: "u1".into(),
            scope: "openid offline_access".into(),
            expires_at,
            auth_time: 100,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn api_token(id: &str, user_id: &str, tenant: &str, created_at: i64) -> ApiToken {
        ApiToken {
            id: id.into(),
            user_id: user_id.into(),
            tenant: tenant.into(),
            name: format!("token {id}"),
            token_hash: format!("hash-{id}"),
            read_only: false,
            created_at,
            last_used_at: None,
            revoked_at: None,
        }
    }

    fn otp(email: &str, code_hash: &str, expires_at: i64) -> OtpCode {
        OtpCode {
            tenant: "default".into(),
            email: email.into(),
            code_hash: code_hash.into(),
            created_at: 100,
            expires_at,
            attempts: 0,
        }
    }

    fn contact(id: &str, tenant: &str, created_at: i64, expires_at: i64) -> Contact {
        Contact {
            id: id.into(),
            tenant: tenant.into(),
            email: format!("{id}@partner.example"),
            hash_hash: format!("hh-{id}"),
            path_prefix: "/shared/".into(),
            created_at,
            expires_at,
            revoked: false,
        }
    }

    fn ids<T>(items: Vec<T>, id: fn(T) -> String) -> Vec<String> {
        items.into_iter().map(id).collect()
    }

    #[tokio::test]
    async fn ping_and_open_creates_file() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("new.db");
        assert!(!path.exists());
        let store = SqliteStore::open(&path).await.unwrap();
        store.ping().await.unwrap();
        assert!(path.exists());
    }

    #[tokio::test]
    async fn pragmas_are_applied() {
        let (_dir, store) = open_temp().await;
        let mut conn = store.pool.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous must be FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(timeout, 5000);
    }

    #[tokio::test]
    async fn user_roundtrip_and_lookup() {
        let (_dir, store) = open_temp().await;
        let mut alice = user("u1", "default", "Alice@Example.COM");
        alice.picture = None;
        alice.password_hash = None;
        alice.active = false;
        store.create_user(&alice).await.unwrap();

        let got = store.get_user("u1").await.unwrap().unwrap();
        assert_eq!(got.email, "alice@example.com");
        assert_eq!(
            got,
            User {
                email: "alice@example.com".into(),
                ..alice.clone()
            }
        );
        assert!(store.get_user("nope").await.unwrap().is_none());

        let found = store
            .find_user_by_email("default", "ALICE@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, "u1");
        assert!(
            store
                .find_user_by_email("other", "alice@example.com")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .find_user_by_email("default", "bob@example.com")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn duplicate_email_conflicts_case_insensitively() {
        let (_dir, store) = open_temp().await;
        store
            .create_user(&user("u1", "default", "alice@example.com"))
            .await
            .unwrap();
        let err = store
            .create_user(&user("u2", "default", "ALICE@Example.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        // Same email in another tenant is fine.
        store
            .create_user(&user("u3", "other", "Alice@example.com"))
            .await
            .unwrap();
        // Same id is a conflict too.
        let err = store
            .create_user(&user("u1", "default", "carol@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }

    #[tokio::test]
    async fn list_users_by_tenant_ordered_by_email() {
        let (_dir, store) = open_temp().await;
        store
            .create_user(&user("u1", "t1", "carol@example.com"))
            .await
            .unwrap();
        store
            .create_user(&user("u2", "t1", "Alice@example.com"))
            .await
            .unwrap();
        store
            .create_user(&user("u3", "t2", "bob@example.com"))
            .await
            .unwrap();

        let t1: Vec<String> = store
            .list_users(Some("t1"))
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(t1, strings(&["u2", "u1"]));
        let all: Vec<String> = store
            .list_users(None)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.email)
            .collect();
        assert_eq!(
            all,
            strings(&["alice@example.com", "bob@example.com", "carol@example.com"])
        );
        assert!(store.list_users(Some("none")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn app_roundtrip_list_and_activation() {
        let (_dir, store) = open_temp().await;
        let mut public = app("spa", "t1", 300);
        public.secret_hash = None;
        public.public = true;
        public.first_party = false;
        public.owner = Some("u1".into());
        public.post_logout_redirect_uris = vec![];
        store.create_app(&public).await.unwrap();
        store.create_app(&app("api", "t1", 100)).await.unwrap();
        store.create_app(&app("other", "t2", 200)).await.unwrap();

        assert_eq!(store.get_app("spa").await.unwrap().unwrap(), public);
        assert!(store.get_app("nope").await.unwrap().is_none());
        let err = store.create_app(&app("spa", "t1", 1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        let t1: Vec<String> = store
            .list_apps(Some("t1"))
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.client_id)
            .collect();
        assert_eq!(t1, strings(&["api", "spa"]));
        let all: Vec<String> = store
            .list_apps(None)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.client_id)
            .collect();
        assert_eq!(all, strings(&["api", "other", "spa"]));

        assert!(store.set_app_active("api", false).await.unwrap());
        assert!(!store.get_app("api").await.unwrap().unwrap().active);
        assert!(store.set_app_active("api", true).await.unwrap());
        assert!(store.get_app("api").await.unwrap().unwrap().active);
        assert!(!store.set_app_active("nope", false).await.unwrap());
    }

    #[tokio::test]
    async fn session_lifecycle_and_count() {
        let (_dir, store) = open_temp().await;
        let s = session("s1", 1_000);
        store.create_session(&s).await.unwrap();
        store.create_session(&session("s2", 500)).await.unwrap();
        assert_eq!(store.get_session("s1").await.unwrap().unwrap(), s);
        assert!(store.get_session("nope").await.unwrap().is_none());
        let err = store.create_session(&s).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        store.touch_session("s1", 250).await.unwrap();
        assert_eq!(
            store.get_session("s1").await.unwrap().unwrap().last_seen,
            250
        );
        store.touch_session("nope", 250).await.unwrap();

        assert_eq!(store.count_sessions(100).await.unwrap(), 2);
        assert_eq!(store.count_sessions(500).await.unwrap(), 1);
        assert_eq!(store.count_sessions(1_000).await.unwrap(), 0);

        assert!(store.delete_session("s1").await.unwrap());
        assert!(!store.delete_session("s1").await.unwrap());
        assert!(store.get_session("s1").await.unwrap().is_none());
        assert_eq!(store.count_sessions(100).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn code_consumed_once_then_replayed() {
        let (_dir, store) = open_temp().await;
        let c = code("c1", "app", 1_000);
        store.create_code(&c).await.unwrap();
        let err = store.create_code(&c).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        assert_eq!(
            store.consume_code("c1").await.unwrap(),
            Consumed::Fresh(c.clone())
        );
        assert_eq!(
            store.consume_code("c1").await.unwrap(),
            Consumed::Replayed(c.clone())
        );
        assert_eq!(
            store.consume_code("c1").await.unwrap(),
            Consumed::Replayed(c)
        );
        assert_eq!(store.consume_code("nope").await.unwrap(), Consumed::Missing);
    }

    #[tokio::test]
    async fn concurrent_consume_yields_exactly_one_fresh() {
        let (_dir, store) = open_temp().await;
        let store = Arc::new(store);
        for round in 0..5 {
            let hash = format!("c{round}");
            store.create_code(&code(&hash, "app", 1_000)).await.unwrap();
            let barrier = Arc::new(tokio::sync::Barrier::new(8));
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let store = Arc::clone(&store);
                    let barrier = Arc::clone(&barrier);
                    let hash = hash.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.consume_code(&hash).await
                    })
                })
                .collect();
            let mut fresh = 0;
            let mut replayed = 0;
            for task in tasks {
                match task.await.unwrap().unwrap() {
                    Consumed::Fresh(c) => {
                        assert_eq!(c.code_hash, hash);
                        fresh += 1;
                    }
                    Consumed::Replayed(c) => {
                        assert_eq!(c.code_hash, hash);
                        replayed += 1;
                    }
                    Consumed::Missing => panic!("code vanished"),
                }
            }
            assert_eq!((fresh, replayed), (1, 7), "round {round}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_refresh_use_on_threads_yields_exactly_one_fresh() {
        let (_dir, store) = open_temp().await;
        let store = Arc::new(store);
        store.create_grant(&grant("g1", "app")).await.unwrap();
        store
            .create_refresh_token(&refresh("r1", "g1", "app", 1_000))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.use_refresh_token("r1").await })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Consumed::Fresh(_) => fresh += 1,
                Consumed::Replayed(_) => {}
                Consumed::Missing => panic!("token vanished"),
            }
        }
        assert_eq!(fresh, 1);
    }

    #[tokio::test]
    async fn grant_roundtrip() {
        let (_dir, store) = open_temp().await;
        let g = grant("g1", "app");
        store.create_grant(&g).await.unwrap();
        assert_eq!(store.get_grant("g1").await.unwrap().unwrap(), g);
        assert!(store.get_grant("nope").await.unwrap().is_none());
        let err = store.create_grant(&g).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }

    #[tokio::test]
    async fn refresh_token_reuse_is_detected() {
        let (_dir, store) = open_temp().await;
        store.create_grant(&grant("g1", "app")).await.unwrap();
        let r1 = refresh("r1", "g1", "app", 1_000);
        store.create_refresh_token(&r1).await.unwrap();
        assert_eq!(store.get_refresh_token("r1").await.unwrap().unwrap(), r1);
        assert!(store.get_refresh_token("nope").await.unwrap().is_none());

        assert_eq!(
            store.use_refresh_token("r1").await.unwrap(),
            Consumed::Fresh(r1.clone())
        );
        // Rotation: the successor is fresh, the predecessor is a replay.
        let r2 = refresh("r2", "g1", "app", 1_000);
        store.create_refresh_token(&r2).await.unwrap();
        assert_eq!(
            store.use_refresh_token("r1").await.unwrap(),
            Consumed::Replayed(r1.clone())
        );
        // A used token can still be looked up.
        assert_eq!(store.get_refresh_token("r1").await.unwrap().unwrap(), r1);
        assert!(store.refresh_token_used("r1").await.unwrap());
        assert!(!store.refresh_token_used("r2").await.unwrap());
        assert!(!store.refresh_token_used("nope").await.unwrap());
        assert_eq!(
            store.use_refresh_token("r2").await.unwrap(),
            Consumed::Fresh(r2)
        );
        assert_eq!(
            store.use_refresh_token("nope").await.unwrap(),
            Consumed::Missing
        );
    }

    #[tokio::test]
    async fn revoke_grant_kills_its_refresh_tokens() {
        let (_dir, store) = open_temp().await;
        store.create_grant(&grant("g1", "app")).await.unwrap();
        store.create_grant(&grant("g2", "app")).await.unwrap();
        store
            .create_refresh_token(&refresh("r1", "g1", "app", 1_000))
            .await
            .unwrap();
        store
            .create_refresh_token(&refresh("r2", "g1", "app", 1_000))
            .await
            .unwrap();
        store
            .create_refresh_token(&refresh("r3", "g2", "app", 1_000))
            .await
            .unwrap();
        store.use_refresh_token("r1").await.unwrap();

        assert!(store.revoke_grant("g1").await.unwrap());
        assert!(store.get_grant("g1").await.unwrap().unwrap().revoked);
        assert!(store.get_refresh_token("r1").await.unwrap().is_none());
        assert!(store.get_refresh_token("r2").await.unwrap().is_none());
        assert!(!matches!(
            store.use_refresh_token("r2").await.unwrap(),
            Consumed::Fresh(_)
        ));
        // Other grants are untouched.
        assert!(!store.get_grant("g2").await.unwrap().unwrap().revoked);
        assert!(matches!(
            store.use_refresh_token("r3").await.unwrap(),
            Consumed::Fresh(_)
        ));
        // Revoking again is fine; unknown grants report false.
        assert!(store.revoke_grant("g1").await.unwrap());
        assert!(!store.revoke_grant("nope").await.unwrap());
    }

    #[tokio::test]
    async fn delete_app_cascades() {
        let (_dir, store) = open_temp().await;
        store.create_app(&app("a1", "t", 1)).await.unwrap();
        store.create_app(&app("a2", "t", 2)).await.unwrap();
        for client in ["a1", "a2"] {
            store
                .create_code(&code(&format!("code-{client}"), client, 1_000))
                .await
                .unwrap();
            store
                .create_grant(&grant(&format!("grant-{client}"), client))
                .await
                .unwrap();
            store
                .create_refresh_token(&refresh(
                    &format!("rt-{client}"),
                    &format!("grant-{client}"),
                    client,
                    1_000,
                ))
                .await
                .unwrap();
            store
                .save_consent("u1", client, &strings(&["openid"]))
                .await
                .unwrap();
        }

        assert!(store.delete_app("a1").await.unwrap());
        assert!(store.get_app("a1").await.unwrap().is_none());
        assert_eq!(
            store.consume_code("code-a1").await.unwrap(),
            Consumed::Missing
        );
        assert!(store.get_grant("grant-a1").await.unwrap().is_none());
        assert!(store.get_refresh_token("rt-a1").await.unwrap().is_none());
        assert!(store.get_consent("u1", "a1").await.unwrap().is_empty());

        // The other app keeps everything.
        assert!(store.get_app("a2").await.unwrap().is_some());
        assert!(store.get_grant("grant-a2").await.unwrap().is_some());
        assert!(store.get_refresh_token("rt-a2").await.unwrap().is_some());
        assert_eq!(
            store.get_consent("u1", "a2").await.unwrap(),
            strings(&["openid"])
        );
        assert!(matches!(
            store.consume_code("code-a2").await.unwrap(),
            Consumed::Fresh(_)
        ));

        assert!(!store.delete_app("a1").await.unwrap());
    }

    #[tokio::test]
    async fn consent_is_a_union() {
        let (_dir, store) = open_temp().await;
        assert!(store.get_consent("u1", "app").await.unwrap().is_empty());
        store
            .save_consent("u1", "app", &strings(&["openid", "email"]))
            .await
            .unwrap();
        store
            .save_consent("u1", "app", &strings(&["email", "profile", "profile"]))
            .await
            .unwrap();
        store.save_consent("u1", "app", &[]).await.unwrap();
        let mut got = store.get_consent("u1", "app").await.unwrap();
        got.sort();
        assert_eq!(got, strings(&["email", "openid", "profile"]));
        // Scoped per user and per client.
        assert!(store.get_consent("u2", "app").await.unwrap().is_empty());
        assert!(store.get_consent("u1", "other").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn purge_expired_removes_expired_rows_only() {
        let (_dir, store) = open_temp().await;
        store.create_session(&session("old", 100)).await.unwrap();
        store.create_session(&session("edge", 200)).await.unwrap();
        store.create_session(&session("live", 300)).await.unwrap();
        store.create_code(&code("c-old", "app", 150)).await.unwrap();
        store
            .create_code(&code("c-live", "app", 300))
            .await
            .unwrap();
        store.create_grant(&grant("g1", "app")).await.unwrap();
        store
            .create_refresh_token(&refresh("r-old", "g1", "app", 150))
            .await
            .unwrap();
        store
            .create_refresh_token(&refresh("r-live", "g1", "app", 300))
            .await
            .unwrap();
        // A used but unexpired code stays, so that a replay is still detected.
        store.consume_code("c-live").await.unwrap();

        assert_eq!(store.purge_expired(200).await.unwrap(), 2);
        assert!(store.get_session("old").await.unwrap().is_none());
        assert!(store.get_session("edge").await.unwrap().is_none());
        assert!(store.get_session("live").await.unwrap().is_some());
        assert_eq!(
            store.consume_code("c-old").await.unwrap(),
            Consumed::Missing
        );
        assert!(matches!(
            store.consume_code("c-live").await.unwrap(),
            Consumed::Replayed(_)
        ));
        assert!(store.get_refresh_token("r-old").await.unwrap().is_none());
        assert!(store.get_refresh_token("r-live").await.unwrap().is_some());
        // Grants are not purged.
        assert!(store.get_grant("g1").await.unwrap().is_some());
        assert_eq!(store.purge_expired(200).await.unwrap(), 0);
        assert_eq!(store.count_sessions(200).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("frontdoor.db");
        {
            let store = SqliteStore::open(&path).await.unwrap();
            store
                .create_user(&user("u1", "default", "alice@example.com"))
                .await
                .unwrap();
            store.create_app(&app("a1", "default", 1)).await.unwrap();
            store.create_session(&session("s1", 1_000)).await.unwrap();
            store.create_code(&code("c1", "a1", 1_000)).await.unwrap();
            store.consume_code("c1").await.unwrap();
            store.create_grant(&grant("g1", "a1")).await.unwrap();
            store
                .create_refresh_token(&refresh("r1", "g1", "a1", 1_000))
                .await
                .unwrap();
            store
                .save_consent("u1", "a1", &strings(&["openid"]))
                .await
                .unwrap();
            store
                .create_api_token(&api_token("t1", "u1", "default", 100))
                .await
                .unwrap();
            store.touch_api_token("t1", 150).await.unwrap();
            store
                .put_otp(&otp("alice@example.com", "otp-1", 1_000))
                .await
                .unwrap();
            assert_eq!(
                store
                    .check_otp("default", "alice@example.com", "wrong", 200, 5)
                    .await
                    .unwrap(),
                OtpCheck::Wrong { attempts_left: 4 }
            );
            store
                .create_contact(&contact("c1", "default", 100, 1_000))
                .await
                .unwrap();
            // Dropped without close(), as on an abrupt shutdown.
            drop(store);
        }
        {
            let store = SqliteStore::open(&path).await.unwrap();
            assert!(store.get_user("u1").await.unwrap().is_some());
            assert!(store.get_app("a1").await.unwrap().is_some());
            assert!(store.get_session("s1").await.unwrap().is_some());
            assert!(matches!(
                store.consume_code("c1").await.unwrap(),
                Consumed::Replayed(_)
            ));
            assert!(store.get_grant("g1").await.unwrap().is_some());
            assert!(store.get_refresh_token("r1").await.unwrap().is_some());
            assert_eq!(
                store.get_consent("u1", "a1").await.unwrap(),
                strings(&["openid"])
            );
            assert_eq!(
                store.get_api_token("t1").await.unwrap().unwrap(),
                ApiToken {
                    last_used_at: Some(150),
                    ..api_token("t1", "u1", "default", 100)
                }
            );
            // The wrong attempt was counted before the restart.
            assert_eq!(
                store
                    .check_otp("default", "alice@example.com", "wrong", 200, 5)
                    .await
                    .unwrap(),
                OtpCheck::Wrong { attempts_left: 3 }
            );
            assert_eq!(
                store.find_contact("hh-c1").await.unwrap().unwrap(),
                contact("c1", "default", 100, 1_000)
            );
            store.close().await;
        }
        // A third open after a clean close; migrations are a no-op.
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.list_users(None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn update_app_roundtrip() {
        let (_dir, store) = open_temp().await;
        let original = app("a1", "t1", 100);
        store.create_app(&original).await.unwrap();
        store.create_app(&app("a2", "t1", 200)).await.unwrap();

        let changed = App {
            client_id: "a1".into(),
            // Not editable: ignored by the update.
            tenant: "elsewhere".into(),
            created_at: 999,
            name: "Renamed".into(),
            description: "does other things".into(),
            secret_hash: None,
            redirect_uris: strings(&["https://new.example.com/cb", "http://localhost/cb"]),
            post_logout_redirect_uris: vec![],
            scopes: strings(&["openid"]),
            grant_types: strings(&["authorization_code"]),
            public: true,
            first_party: false,
            active: false,
            owner: Some("u1".into()),
            audiences: strings(&["backend", "frontend"]),
        };
        assert!(store.update_app(&changed).await.unwrap());
        assert_eq!(
            store.get_app("a1").await.unwrap().unwrap(),
            App {
                tenant: "t1".into(),
                created_at: 100,
                ..changed.clone()
            }
        );
        // Back again, including a secret and an owner removed.
        assert!(store.update_app(&original).await.unwrap());
        assert_eq!(store.get_app("a1").await.unwrap().unwrap(), original);
        // Other apps untouched; unknown apps report false and are not created.
        assert_eq!(
            store.get_app("a2").await.unwrap().unwrap(),
            app("a2", "t1", 200)
        );
        let unknown = App {
            client_id: "nope".into(),
            ..changed
        };
        assert!(!store.update_app(&unknown).await.unwrap());
        assert!(store.get_app("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn set_user_active_toggles() {
        let (_dir, store) = open_temp().await;
        store
            .create_user(&user("u1", "default", "alice@example.com"))
            .await
            .unwrap();
        store
            .create_user(&user("u2", "default", "bob@example.com"))
            .await
            .unwrap();
        assert!(store.set_user_active("u1", false).await.unwrap());
        assert!(!store.get_user("u1").await.unwrap().unwrap().active);
        assert!(store.get_user("u2").await.unwrap().unwrap().active);
        // Setting the same value again still finds the user.
        assert!(store.set_user_active("u1", false).await.unwrap());
        assert!(store.set_user_active("u1", true).await.unwrap());
        assert!(store.get_user("u1").await.unwrap().unwrap().active);
        assert!(!store.set_user_active("nope", false).await.unwrap());
    }

    #[tokio::test]
    async fn delete_user_cascades() {
        let (_dir, store) = open_temp().await;
        store.create_app(&app("app", "default", 1)).await.unwrap();
        for id in ["u1", "u2"] {
            store
                .create_user(&user(id, "default", &format!("{id}@example.com")))
                .await
                .unwrap();
            store
                .create_session(&SessionRecord {
                    user_id: id.into(),
                    ..session(&format!("s-{id}"), 1_000)
                })
                .await
                .unwrap();
            store
                .create_api_token(&api_token(&format!("t-{id}"), id, "default", 100))
                .await
                .unwrap();
            store
                .create_grant(&Grant {
                    user_id: id.into(),
                    ..grant(&format!("g-{id}"), "app")
                })
                .await
                .unwrap();
            for n in 1..=2 {
                store
                    .create_refresh_token(&RefreshToken {
                        user_id: id.into(),
                        ..refresh(&format!("r{n}-{id}"), &format!("g-{id}"), "app", 1_000)
                    })
                    .await
                    .unwrap();
            }
            store
                .create_code(&AuthCode {
                    user_id: id.into(),
                    ..code(&format!("c-{id}"), "app", 1_000)
                })
                .await
                .unwrap();
            store
                .save_consent(id, "app", &strings(&["openid"]))
                .await
                .unwrap();
        }
        // A refresh token of u1's grant recorded under another user id still goes with the grant.
        store
            .create_refresh_token(&RefreshToken {
                user_id: "someone".into(),
                ..refresh("r-odd", "g-u1", "app", 1_000)
            })
            .await
            .unwrap();

        assert!(store.delete_user("u1").await.unwrap());
        assert!(store.get_user("u1").await.unwrap().is_none());
        assert!(store.get_session("s-u1").await.unwrap().is_none());
        assert!(store.get_api_token("t-u1").await.unwrap().is_none());
        assert!(store.find_api_token("hash-t-u1").await.unwrap().is_none());
        assert!(store.get_grant("g-u1").await.unwrap().is_none());
        for token in ["r1-u1", "r2-u1", "r-odd"] {
            assert!(
                store.get_refresh_token(token).await.unwrap().is_none(),
                "{token}"
            );
        }
        assert!(store.get_consent("u1", "app").await.unwrap().is_empty());
        assert_eq!(store.consume_code("c-u1").await.unwrap(), Consumed::Missing);

        // The other user keeps everything.
        assert!(store.get_user("u2").await.unwrap().is_some());
        assert!(store.get_session("s-u2").await.unwrap().is_some());
        assert!(store.get_api_token("t-u2").await.unwrap().is_some());
        assert!(store.get_grant("g-u2").await.unwrap().is_some());
        assert!(store.get_refresh_token("r1-u2").await.unwrap().is_some());
        assert!(store.get_refresh_token("r2-u2").await.unwrap().is_some());
        assert_eq!(
            store.get_consent("u2", "app").await.unwrap(),
            strings(&["openid"])
        );
        assert!(matches!(
            store.consume_code("c-u2").await.unwrap(),
            Consumed::Fresh(_)
        ));
        assert!(store.get_app("app").await.unwrap().is_some());

        assert!(!store.delete_user("u1").await.unwrap());
        assert!(!store.delete_user("nope").await.unwrap());
    }

    #[tokio::test]
    async fn api_token_lifecycle() {
        let (_dir, store) = open_temp().await;
        let mut t1 = api_token("t1", "u1", "t1", 100);
        t1.read_only = true;
        store.create_api_token(&t1).await.unwrap();
        store
            .create_api_token(&api_token("t2", "u1", "t1", 200))
            .await
            .unwrap();
        store
            .create_api_token(&api_token("t3", "u2", "t2", 200))
            .await
            .unwrap();
        // Same creation time as t2, created later: listed before it.
        store
            .create_api_token(&api_token("t4", "u2", "t1", 200))
            .await
            .unwrap();

        assert_eq!(store.find_api_token("hash-t1").await.unwrap().unwrap(), t1);
        assert_eq!(store.get_api_token("t1").await.unwrap().unwrap(), t1);
        assert!(store.find_api_token("nope").await.unwrap().is_none());
        assert!(store.get_api_token("nope").await.unwrap().is_none());
        // Ids and hashes are unique.
        let err = store
            .create_api_token(&ApiToken {
                token_hash: "other".into(),
                ..t1.clone()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let err = store
            .create_api_token(&ApiToken {
                id: "t5".into(),
                ..t1.clone()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        let id = |t: ApiToken| t.id;
        assert_eq!(
            ids(store.list_api_tokens(None, None).await.unwrap(), id),
            strings(&["t4", "t3", "t2", "t1"])
        );
        assert_eq!(
            ids(store.list_api_tokens(Some("u1"), None).await.unwrap(), id),
            strings(&["t2", "t1"])
        );
        assert_eq!(
            ids(store.list_api_tokens(None, Some("t1")).await.unwrap(), id),
            strings(&["t4", "t2", "t1"])
        );
        assert_eq!(
            ids(
                store.list_api_tokens(Some("u2"), Some("t1")).await.unwrap(),
                id
            ),
            strings(&["t4"])
        );
        assert!(
            store
                .list_api_tokens(Some("u1"), Some("t2"))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .list_api_tokens(Some("nope"), None)
                .await
                .unwrap()
                .is_empty()
        );

        store.touch_api_token("t1", 500).await.unwrap();
        store.touch_api_token("nope", 500).await.unwrap();
        assert_eq!(
            store
                .get_api_token("t1")
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(500)
        );
        assert_eq!(
            store
                .get_api_token("t2")
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            None
        );

        assert!(store.revoke_api_token("t1", 600).await.unwrap());
        assert!(!store.revoke_api_token("t1", 700).await.unwrap());
        assert!(!store.revoke_api_token("nope", 700).await.unwrap());
        // Revoked tokens are still found, with the first revocation time.
        assert_eq!(
            store.find_api_token("hash-t1").await.unwrap().unwrap(),
            ApiToken {
                last_used_at: Some(500),
                revoked_at: Some(600),
                ..t1
            }
        );
        assert_eq!(
            store.get_api_token("t2").await.unwrap().unwrap().revoked_at,
            None
        );
        assert_eq!(store.list_api_tokens(None, None).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn otp_right_code_is_valid_once() {
        let (_dir, store) = open_temp().await;
        store
            .put_otp(&otp("Alice@Example.com", "right", 1_000))
            .await
            .unwrap();
        // Other tenants and emails have no code.
        assert_eq!(
            store
                .check_otp("other", "alice@example.com", "right", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Missing
        );
        assert_eq!(
            store
                .check_otp("default", "bob@example.com", "right", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Missing
        );
        // Emails are case-insensitive.
        assert_eq!(
            store
                .check_otp("default", "ALICE@example.COM", "right", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Valid
        );
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "right", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Missing
        );
    }

    #[tokio::test]
    async fn otp_wrong_codes_count_down_then_exhaust() {
        let (_dir, store) = open_temp().await;
        store
            .put_otp(&otp("alice@example.com", "right", 1_000))
            .await
            .unwrap();
        for left in [4, 3, 2, 1] {
            assert_eq!(
                store
                    .check_otp("default", "alice@example.com", "wrong", 500, 5)
                    .await
                    .unwrap(),
                OtpCheck::Wrong {
                    attempts_left: left
                }
            );
        }
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "wrong", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Exhausted
        );
        // The code is dead: even the right one is gone.
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "right", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Missing
        );

        // A right code after a few wrong ones is still valid.
        store
            .put_otp(&otp("alice@example.com", "right", 1_000))
            .await
            .unwrap();
        for left in [4, 3] {
            assert_eq!(
                store
                    .check_otp("default", "alice@example.com", "wrong", 500, 5)
                    .await
                    .unwrap(),
                OtpCheck::Wrong {
                    attempts_left: left
                }
            );
        }
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "right", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Valid
        );

        // Attempts already at the limit (e.g. a lowered limit): exhausted, even for the right code.
        store
            .put_otp(&OtpCode {
                attempts: 3,
                ..otp("alice@example.com", "right", 1_000)
            })
            .await
            .unwrap();
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "right", 500, 3)
                .await
                .unwrap(),
            OtpCheck::Exhausted
        );
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "right", 500, 3)
                .await
                .unwrap(),
            OtpCheck::Missing
        );
    }

    #[tokio::test]
    async fn otp_expired_is_deleted() {
        let (_dir, store) = open_temp().await;
        store
            .put_otp(&otp("alice@example.com", "right", 1_000))
            .await
            .unwrap();
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "right", 1_000, 5)
                .await
                .unwrap(),
            OtpCheck::Expired
        );
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "right", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Missing
        );
        // A wrong code past expiry is expired too, not counted.
        store
            .put_otp(&otp("alice@example.com", "right", 1_000))
            .await
            .unwrap();
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "wrong", 2_000, 5)
                .await
                .unwrap(),
            OtpCheck::Expired
        );
    }

    #[tokio::test]
    async fn put_otp_replaces_pending_code() {
        let (_dir, store) = open_temp().await;
        store
            .put_otp(&otp("alice@example.com", "first", 1_000))
            .await
            .unwrap();
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "wrong", 500, 5)
                .await
                .unwrap(),
            OtpCheck::Wrong { attempts_left: 4 }
        );
        store
            .put_otp(&otp("ALICE@example.com", "second", 2_000))
            .await
            .unwrap();
        // The first code no longer works and the attempts start over.
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "first", 1_500, 5)
                .await
                .unwrap(),
            OtpCheck::Wrong { attempts_left: 4 }
        );
        // The new expiry applies.
        assert_eq!(
            store
                .check_otp("default", "alice@example.com", "second", 1_500, 5)
                .await
                .unwrap(),
            OtpCheck::Valid
        );
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM otp_codes")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_otp_checks_yield_exactly_one_valid() {
        let (_dir, store) = open_temp().await;
        let store = Arc::new(store);
        for round in 0..5 {
            let email = format!("user{round}@example.com");
            store.put_otp(&otp(&email, "right", 1_000)).await.unwrap();
            let barrier = Arc::new(tokio::sync::Barrier::new(8));
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let store = Arc::clone(&store);
                    let barrier = Arc::clone(&barrier);
                    let email = email.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.check_otp("default", &email, "right", 500, 5).await
                    })
                })
                .collect();
            let mut valid = 0;
            let mut missing = 0;
            for task in tasks {
                match task.await.unwrap().unwrap() {
                    OtpCheck::Valid => valid += 1,
                    OtpCheck::Missing => missing += 1,
                    other => panic!("round {round}: {other:?}"),
                }
            }
            assert_eq!((valid, missing), (1, 7), "round {round}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_wrong_otp_checks_are_all_counted() {
        let (_dir, store) = open_temp().await;
        let store = Arc::new(store);
        store
            .put_otp(&otp("alice@example.com", "right", 1_000))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .check_otp("default", "alice@example.com", "wrong", 500, 5)
                        .await
                })
            })
            .collect();
        let mut left = Vec::new();
        let mut exhausted = 0;
        let mut missing = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                OtpCheck::Wrong { attempts_left } => left.push(attempts_left),
                OtpCheck::Exhausted => exhausted += 1,
                OtpCheck::Missing => missing += 1,
                other => panic!("{other:?}"),
            }
        }
        left.sort_unstable();
        assert_eq!(left, vec![1, 2, 3, 4]);
        assert_eq!((exhausted, missing), (1, 3));
    }

    #[tokio::test]
    async fn contact_lifecycle() {
        let (_dir, store) = open_temp().await;
        let c1 = contact("c1", "t1", 100, 1_000);
        store.create_contact(&c1).await.unwrap();
        store
            .create_contact(&contact("c2", "t1", 200, 1_000))
            .await
            .unwrap();
        store
            .create_contact(&contact("c3", "t2", 200, 1_000))
            .await
            .unwrap();

        assert_eq!(store.find_contact("hh-c1").await.unwrap().unwrap(), c1);
        assert!(store.find_contact("nope").await.unwrap().is_none());
        let err = store
            .create_contact(&Contact {
                id: "c4".into(),
                ..c1.clone()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let err = store
            .create_contact(&Contact {
                hash_hash: "hh-other".into(),
                ..c1.clone()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        let id = |c: Contact| c.id;
        assert_eq!(
            ids(store.list_contacts(None).await.unwrap(), id),
            strings(&["c3", "c2", "c1"])
        );
        assert_eq!(
            ids(store.list_contacts(Some("t1")).await.unwrap(), id),
            strings(&["c2", "c1"])
        );
        assert!(store.list_contacts(Some("nope")).await.unwrap().is_empty());

        assert!(store.revoke_contact("c1").await.unwrap());
        assert_eq!(
            store.find_contact("hh-c1").await.unwrap().unwrap(),
            Contact {
                revoked: true,
                ..c1
            }
        );
        assert!(!store.find_contact("hh-c2").await.unwrap().unwrap().revoked);
        // Revoking again still finds it; unknown contacts report false.
        assert!(store.revoke_contact("c1").await.unwrap());
        assert!(!store.revoke_contact("nope").await.unwrap());
    }

    #[tokio::test]
    async fn purge_expired_removes_expired_otp_codes_and_contacts() {
        let (_dir, store) = open_temp().await;
        store.create_session(&session("s-old", 100)).await.unwrap();
        store
            .put_otp(&otp("old@example.com", "x", 100))
            .await
            .unwrap();
        store
            .put_otp(&otp("edge@example.com", "x", 200))
            .await
            .unwrap();
        store
            .put_otp(&otp("live@example.com", "x", 300))
            .await
            .unwrap();
        store
            .create_contact(&contact("c-old", "t", 1, 200))
            .await
            .unwrap();
        store
            .create_contact(&contact("c-live", "t", 1, 300))
            .await
            .unwrap();

        // Only sessions are counted.
        assert_eq!(store.purge_expired(200).await.unwrap(), 1);
        for email in ["old@example.com", "edge@example.com"] {
            assert_eq!(
                store.check_otp("default", email, "x", 0, 5).await.unwrap(),
                OtpCheck::Missing,
                "{email}"
            );
        }
        assert_eq!(
            store
                .check_otp("default", "live@example.com", "x", 0, 5)
                .await
                .unwrap(),
            OtpCheck::Valid
        );
        assert!(store.find_contact("hh-c-old").await.unwrap().is_none());
        assert!(store.find_contact("hh-c-live").await.unwrap().is_some());
        assert_eq!(store.purge_expired(200).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn upgrade_from_schema_1_keeps_data() {
        // A database created by a release that only had the first migration.
        let migrations = TempDir::new().unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite/0001_initial.sql"),
            migrations.path().join("0001_initial.sql"),
        )
        .unwrap();
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("frontdoor.db");
        {
            let pool = SqlitePool::connect_with(
                SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
            sqlx::migrate::Migrator::new(migrations.path())
                .await
                .unwrap()
                .run(&pool)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO users (id, tenant, email, name, created_at) \
                 VALUES ('u1', 'default', 'alice@example.com', 'Alice', 1)",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            store.get_user("u1").await.unwrap().unwrap().email,
            "alice@example.com"
        );
        store
            .create_api_token(&api_token("t1", "u1", "default", 1))
            .await
            .unwrap();
        assert!(store.find_api_token("hash-t1").await.unwrap().is_some());
        store
            .put_otp(&otp("alice@example.com", "x", 1_000))
            .await
            .unwrap();
        store
            .create_contact(&contact("c1", "default", 1, 1_000))
            .await
            .unwrap();
        assert_eq!(store.list_contacts(None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn corrupt_list_is_reported() {
        let (_dir, store) = open_temp().await;
        store
            .create_user(&user("u1", "default", "alice@example.com"))
            .await
            .unwrap();
        sqlx::query("UPDATE users SET roles = 'not json' WHERE id = 'u1'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.get_user("u1").await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
