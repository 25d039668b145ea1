//! SQLite implementation of the store (the embedded default).
//!
//! One database file in WAL mode with `synchronous = FULL`, so that a write the store
//! has confirmed survives a crash of the process or of the machine. Lists are JSON
//! arrays of strings, booleans are 0/1 integers, times are unix seconds.
//!
//! Transactions that write start with `BEGIN IMMEDIATE`: they take the write lock up
//! front (waiting at most the busy timeout) instead of failing with `SQLITE_BUSY` when
//! a deferred read transaction has to be upgraded under contention.

mod rotation_batch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use subtle::ConstantTimeEq;

use self::rotation_batch::RotationBatcher;
use super::{
    ApiToken, App, AuthCode, Consumed, Contact, FailurePolicy, Grant, IdpSession, LoginFailures,
    OtpCheck, OtpCode, RefreshToken, SessionRecord, Store, StoreError, Successor, User,
    normalize_email, to_json,
};

/// Connections kept by the read pool.
const MAX_CONNECTIONS: u32 = 8;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
pub(super) const REFRESH_COLUMNS: &str =
    "token_hash, grant_id, client_id, user_id, scope, expires_at, auth_time";
const API_TOKEN_COLUMNS: &str =
    "id, user_id, tenant, name, token_hash, read_only, created_at, last_used_at, revoked_at";
const CONTACT_COLUMNS: &str =
    "id, tenant, email, hash_hash, path_prefix, created_at, expires_at, revoked";

/// The store on a local SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Connections for reads (WAL readers never wait for the writer).
    pool: SqlitePool,
    /// The one connection every write of this process goes through. SQLite admits one writer
    /// at a time; writers on several connections collide, and the loser sleeps in SQLite's busy
    /// handler (1, 2, 5, 10… ms) instead of waiting its turn: under concurrent refresh grants
    /// that cost about six sleeps per rotation. Waiting for this pool's connection is a FIFO
    /// queue without sleeps.
    writer: SqlitePool,
    /// Refresh-token rotations share commits on the writer.
    rotations: Arc<RotationBatcher>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        // New files are private through the umask; files an older version left readable by
        // others are tightened before the store is read.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            crate::private_fs::tighten_file(Path::new(&name)).map_err(|e| {
                StoreError::Unavailable(format!("cannot restrict {}: {e}", path.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            writer,
            rotations: Arc::default(),
        })
    }

    /// Closes every connection of the pool, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
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
        pkce_optional: row.try_get("pkce_optional")?,
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

pub(super) fn refresh_from_row(row: &SqliteRow) -> Result<RefreshToken, StoreError> {
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
            .fetch_optional(&self.writer)
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
        .execute(&self.writer)
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
            "INSERT INTO apps ({APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        .execute(&self.writer)
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
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_app(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        .execute(&self.writer)
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
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Expired means `expires_at <= now`, matching `count_sessions`. Also removes expired
    /// one-time codes, contacts and login failures; only sessions are counted in the result.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
            "DELETE FROM login_failures WHERE expires_at <= ?",
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
        .execute(&self.writer)
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
        .execute(&self.writer)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        .execute(&self.writer)
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

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: Option<Successor>,
    ) -> Result<Consumed<RefreshToken>, StoreError> {
        match self
            .rotations
            .rotate(&self.writer, token_hash, successor)
            .await?
        {
            Some(old) => Ok(Consumed::Fresh(old)),
            // Replayed or unknown: what `use_refresh_token` answers.
            None => self.use_refresh_token(token_hash).await,
        }
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
             first_party = ?, active = ?, owner = ?, audiences = ?, pkce_optional = ? \
             WHERE client_id = ?",
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
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_user_active(&self, id: &str, active: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET active = ? WHERE id = ?")
            .bind(active)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Also deletes the user's pending authorization codes, so that none can be exchanged
    /// for a grant of a user that no longer exists.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        .execute(&self.writer)
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
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.writer)
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
        .execute(&self.writer)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        .execute(&self.writer)
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
            .execute(&self.writer)
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
        .execute(&self.writer)
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
        .execute(&self.writer)
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
        .execute(&self.writer)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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

    async fn login_failures(&self, subjects: &[String]) -> Result<Vec<LoginFailures>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT subject, window_start, failures, banned_until FROM login_failures \
             WHERE subject IN (",
        );
        let mut list = query.separated(", ");
        for s in subjects {
            list.push_bind(s);
        }
        query.push(")");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(login_failures_from_row).collect()
    }

    /// One `BEGIN IMMEDIATE` transaction: concurrent failures are serialized, so each is
    /// counted and exactly one of them starts the ban.
    async fn record_login_failure(
        &self,
        subject: &str,
        now: i64,
        policy: &FailurePolicy,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let current = sqlx::query(
            "SELECT subject, window_start, failures, banned_until FROM login_failures \
             WHERE subject = ?",
        )
        .bind(subject)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(login_failures_from_row)
        .transpose()?;
        let (row, banned) = policy.after_failure(subject, current, now);
        sqlx::query(
            "INSERT OR REPLACE INTO login_failures \
             (subject, window_start, failures, banned_until, expires_at) VALUES (?, ?, ?, ?, ?)",
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
        sqlx::query(
            "DELETE FROM login_failures WHERE subject = ? \
             AND (banned_until IS NULL OR banned_until <= ?)",
        )
        .bind(subject)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

fn login_failures_from_row(row: &SqliteRow) -> Result<LoginFailures, StoreError> {
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
    //! What only SQLite has: the file, its pragmas, upgrades through its migrations. The
    //! store's behaviour is tested for every backend in `store::tests`.

    use tempfile::TempDir;

    use super::super::tests::{api_token, contact, otp};
    use super::*;

    async fn open_temp() -> (TempDir, SqliteStore) {
        let dir = TempDir::new().unwrap();
        let store = SqliteStore::open(&dir.path().join("frontdoor.db"))
            .await
            .unwrap();
        (dir, store)
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
}
