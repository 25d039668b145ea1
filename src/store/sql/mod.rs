//! The store written once for both databases: the statements (`queries`), the column lists
//! and row decoders (`rows`), and the `Store` methods (`store_impl!`), over a small
//! `Dialect` each backend implements for what truly differs: where reads and writes go, how
//! a writing transaction begins, how other nodes hear of a revocation, and the few clauses
//! the two spell differently.
//!
//! The methods are one macro rather than one generic impl over `sqlx::Database`: expanded
//! for each backend they call sqlx with concrete types, so they need none of the
//! higher-ranked `Executor`/`Encode` bounds a generic impl would carry, and cost nothing at
//! run time (statements are `&'static str` built by `concat!`).

pub(crate) mod queries;
pub(crate) mod rows;

use std::future::Future;

use sqlx::query::Query;
use sqlx::{Database, Pool, Transaction};

use self::queries::Spellings;
use crate::store::StoreError;
use crate::store::notify::Revoked;

/// The arguments of one statement of database `DB`.
pub(crate) type Arguments<'q, DB> = <DB as Database>::Arguments<'q>;

/// What a backend decides for the shared `Store` methods.
pub(crate) trait Dialect {
    /// The sqlx database.
    type Db: Database;
    /// The statement that begins a transaction that writes.
    const BEGIN_WRITE: &'static str;
    /// How many transactions that write may usefully run at once.
    const CONCURRENT_WRITES: usize;

    /// Where reads go.
    fn reader(&self) -> &Pool<Self::Db>;
    /// Where writes outside a transaction go.
    fn writer(&self) -> &Pool<Self::Db>;
    /// Begins a transaction that writes.
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
    /// This backend's text of a statement the backends spell differently.
    fn spelled(statement: &Spellings) -> &'static str;
    /// Whether no stored row can match one of `keys`: the lookup then needs no round trip.
    fn unmatchable(keys: &[&str]) -> bool;
    /// Tells every node, once the transaction commits, that `kind(key)` is revoked.
    fn announce(
        tx: &mut <Self::Db as Database>::Connection,
        kind: fn(String) -> Revoked,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Binds what a statement spelled by `queries::announced!` announces `kind(key)` with.
    fn announcing<'q>(
        query: Query<'q, Self::Db, Arguments<'q, Self::Db>>,
        kind: fn(String) -> Revoked,
        key: &str,
    ) -> Query<'q, Self::Db, Arguments<'q, Self::Db>>;
}

/// `impl Store for $store` (whose database is `$db`) from the one text of every method, plus
/// the backend's own methods `{ … }` (overrides of the trait's default methods).
macro_rules! store_impl {
    ($store:ty, $db:ty, { $($own:tt)* }) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::query::Query;
            use sqlx::{QueryBuilder, Row};
            use subtle::ConstantTimeEq;

            use $crate::store::notify::Revoked;
            use $crate::store::sql::queries::*;
            use $crate::store::rotation_batch::Spent;
            use $crate::store::sql::{Arguments, Dialect, rows};
            use $crate::store::{
                AccountToken, AccountTokenKind, ApiToken, App, AuthCode, Consumed, Contact, EndedSession, FailurePolicy, Grant,
                IdpSession,
                LoginFailures, OtpCheck, OtpCode, PasskeyCeremony, PasskeyRecord, PendingFactor, RefreshToken, Rotated, SessionRecord,
                Store, StoreError, Successor, TotpFactor, User, normalize_email, to_json,
            };

            type DbRow = <$db as sqlx::Database>::Row;

            impl $store {
                /// Spends the single-use row `key` and classifies the attempt. `spend` is one
                /// `UPDATE … WHERE used = FALSE RETURNING` statement: a concurrent caller
                /// waits for the first (SQLite's one writer, PostgreSQL's row lock) and then
                /// finds `used` set, so exactly one caller sees the row come back.
                async fn consume<T>(
                    &self,
                    spend: &'static str,
                    get: &'static str,
                    key: &str,
                    decode: fn(&DbRow) -> Result<T, StoreError>,
                ) -> Result<Consumed<T>, StoreError> {
                    if Self::unmatchable(&[key]) {
                        return Ok(Consumed::Missing);
                    }
                    if let Some(row) = sqlx::query(spend)
                        .bind(key)
                        .fetch_optional(self.writer())
                        .await?
                    {
                        return Ok(Consumed::Fresh(decode(&row)?));
                    }
                    match sqlx::query(get)
                        .bind(key)
                        .fetch_optional(self.reader())
                        .await?
                    {
                        Some(row) => Ok(Consumed::Replayed(decode(&row)?)),
                        None => Ok(Consumed::Missing),
                    }
                }

                /// The row `sql` finds by `key`, decoded.
                async fn find<T>(
                    &self,
                    sql: &'static str,
                    key: &str,
                    decode: fn(&DbRow) -> Result<T, StoreError>,
                ) -> Result<Option<T>, StoreError> {
                    if Self::unmatchable(&[key]) {
                        return Ok(None);
                    }
                    let row = sqlx::query(sql)
                        .bind(key)
                        .fetch_optional(self.reader())
                        .await?;
                    row.as_ref().map(decode).transpose()
                }

                /// The rows of `tenant` (`of_tenant`, its one parameter) or of all (`all`).
                async fn list<T>(
                    &self,
                    tenant: Option<&str>,
                    of_tenant: &'static str,
                    all: &'static str,
                    decode: fn(&DbRow) -> Result<T, StoreError>,
                ) -> Result<Vec<T>, StoreError> {
                    let rows = match tenant {
                        Some(tenant) if Self::unmatchable(&[tenant]) => return Ok(Vec::new()),
                        Some(tenant) => {
                            sqlx::query(of_tenant)
                                .bind(tenant)
                                .fetch_all(self.reader())
                                .await?
                        }
                        None => sqlx::query(all).fetch_all(self.reader()).await?,
                    };
                    rows.iter().map(decode).collect()
                }

                /// Runs a statement spelled by `queries::announced!` that announces
                /// `kind(key)` (unless no row can match `key`); whether it changed a row.
                async fn changed<'q>(
                    &self,
                    query: Query<'q, $db, Arguments<'q, $db>>,
                    kind: fn(String) -> Revoked,
                    key: &str,
                ) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[key]) {
                        return Ok(false);
                    }
                    let done = Self::announcing(query, kind, key)
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                /// In one transaction: `first`, and only when it changed a row, `then` and the
                /// announcement of `kind(key)`; whether `first` changed a row.
                async fn changed_then<'q>(
                    &self,
                    first: Query<'q, $db, Arguments<'q, $db>>,
                    then: Query<'q, $db, Arguments<'q, $db>>,
                    kind: fn(String) -> Revoked,
                    key: &str,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    if first.execute(&mut *tx).await?.rows_affected() == 0 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    then.execute(&mut *tx).await?;
                    Self::announce(&mut tx, kind, key).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                /// Deletes the sessions `hashes` in `tx`, announcing each; the ones that
                /// existed, with what back-channel logout tells the apps.
                async fn end_sessions(
                    tx: &mut <$db as sqlx::Database>::Connection,
                    hashes: Vec<String>,
                ) -> Result<Vec<EndedSession>, StoreError> {
                    let mut ended = Vec::with_capacity(hashes.len());
                    for hash in hashes {
                        let row = sqlx::query(DELETE_SESSION_QUIETLY)
                            .bind(&hash)
                            .fetch_optional(&mut *tx)
                            .await?;
                        Self::announce(&mut *tx, Revoked::Session, &hash).await?;
                        if let Some(row) = row {
                            ended.push(EndedSession {
                                user_id: rows::StoreRow::text(&row, "user_id")?,
                                sid: rows::StoreRow::text(&row, "sid")?,
                                id_hash: hash,
                            });
                        }
                    }
                    Ok(ended)
                }

                /// Deletes the row `key` (`first`) and what hangs on it (`rest`, in order) in
                /// one transaction, announcing `kind(key)` when the row existed.
                async fn delete_cascading(
                    &self,
                    first: &'static str,
                    rest: &[&'static str],
                    kind: fn(String) -> Revoked,
                    key: &str,
                ) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[key]) {
                        return Ok(false);
                    }
                    let mut tx = self.begin_write().await?;
                    let deleted = sqlx::query(first)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    for statement in rest {
                        sqlx::query(statement).bind(key).execute(&mut *tx).await?;
                    }
                    if deleted > 0 {
                        Self::announce(&mut tx, kind, key).await?;
                    }
                    tx.commit().await?;
                    Ok(deleted > 0)
                }
            }

            #[async_trait]
            impl Store for $store {
                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query(PING).execute(self.reader()).await?;
                    Ok(())
                }

                async fn create_user(&self, user: &User) -> Result<(), StoreError> {
                    sqlx::query(INSERT_USER)
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
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
                    self.find(GET_USER, id, rows::user).await
                }

                async fn find_user_by_email(
                    &self,
                    tenant: &str,
                    email: &str,
                ) -> Result<Option<User>, StoreError> {
                    if Self::unmatchable(&[tenant, email]) {
                        return Ok(None);
                    }
                    let row = sqlx::query(FIND_USER_BY_EMAIL)
                        .bind(tenant)
                        .bind(normalize_email(email))
                        .fetch_optional(self.reader())
                        .await?;
                    row.as_ref().map(rows::user).transpose()
                }

                /// Ordered bytewise (PostgreSQL's columns are `COLLATE "C"`, like SQLite's
                /// BINARY).
                async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, StoreError> {
                    self.list(tenant, LIST_TENANT_USERS, LIST_USERS, rows::user)
                        .await
                }

                async fn create_app(&self, app: &App) -> Result<(), StoreError> {
                    sqlx::query(INSERT_APP)
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
                        .bind(&app.backchannel_logout_uri)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_app(&self, client_id: &str) -> Result<Option<App>, StoreError> {
                    self.find(GET_APP, client_id, rows::app).await
                }

                /// Ties in creation time are listed in insertion order.
                async fn list_apps(&self, tenant: Option<&str>) -> Result<Vec<App>, StoreError> {
                    self.list(
                        tenant,
                        Self::spelled(&LIST_TENANT_APPS),
                        Self::spelled(&LIST_APPS),
                        rows::app,
                    )
                    .await
                }

                async fn set_app_active(
                    &self,
                    client_id: &str,
                    active: bool,
                ) -> Result<bool, StoreError> {
                    let query = sqlx::query(Self::spelled(&SET_APP_ACTIVE))
                        .bind(active)
                        .bind(client_id);
                    self.changed(query, Revoked::App, client_id).await
                }

                async fn delete_app(&self, client_id: &str) -> Result<bool, StoreError> {
                    self.delete_cascading(DELETE_APP, &DELETE_APP_REST, Revoked::App, client_id)
                        .await
                }

                async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
                    sqlx::query(INSERT_SESSION)
                        .bind(&session.id_hash)
                        .bind(&session.user_id)
                        .bind(&session.tenant)
                        .bind(session.created_at)
                        .bind(session.expires_at)
                        .bind(session.last_seen)
                        .bind(&session.auth_method)
                        .bind(&session.sid)
                        .bind(&session.amr)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_session(
                    &self,
                    id_hash: &str,
                ) -> Result<Option<SessionRecord>, StoreError> {
                    self.find(GET_SESSION, id_hash, rows::session).await
                }

                async fn touch_session(
                    &self,
                    id_hash: &str,
                    last_seen: i64,
                ) -> Result<(), StoreError> {
                    if Self::unmatchable(&[id_hash]) {
                        return Ok(());
                    }
                    sqlx::query(TOUCH_SESSION)
                        .bind(last_seen)
                        .bind(id_hash)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
                    let query = sqlx::query(Self::spelled(&DELETE_SESSION)).bind(id_hash);
                    self.changed(query, Revoked::Session, id_hash).await
                }

                /// Expired means `expires_at <= now`, matching `count_sessions`. Also removes
                /// expired codes, refresh tokens, one-time codes, contacts, provider sessions
                /// and login failures; only sessions are counted in the result.
                async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let sessions = sqlx::query(PURGE_SESSIONS)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    for statement in PURGE_REST {
                        sqlx::query(statement).bind(now).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(sessions)
                }

                async fn count_sessions(&self, now: i64) -> Result<u64, StoreError> {
                    let count: i64 = sqlx::query_scalar(COUNT_SESSIONS)
                        .bind(now)
                        .fetch_one(self.reader())
                        .await?;
                    u64::try_from(count)
                        .map_err(|e| StoreError::Corrupt(format!("session count: {e}")))
                }

                async fn create_code(&self, code: &AuthCode) -> Result<(), StoreError> {
                    sqlx::query(INSERT_CODE)
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
                        .bind(&code.amr)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn consume_code(
                    &self,
                    code_hash: &str,
                ) -> Result<Consumed<AuthCode>, StoreError> {
                    self.consume(SPEND_CODE, GET_CODE, code_hash, rows::code)
                        .await
                }

                async fn create_grant(&self, grant: &Grant) -> Result<(), StoreError> {
                    sqlx::query(INSERT_GRANT)
                        .bind(&grant.id)
                        .bind(&grant.client_id)
                        .bind(&grant.user_id)
                        .bind(&grant.tenant)
                        .bind(&grant.scope)
                        .bind(grant.created_at)
                        .bind(grant.revoked)
                        .bind(&grant.sid)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
                    self.find(GET_GRANT, id, rows::grant).await
                }

                async fn logout_targets(&self, sid: &str) -> Result<Vec<App>, StoreError> {
                    if sid.is_empty() || Self::unmatchable(&[sid]) {
                        return Ok(Vec::new());
                    }
                    let rows = sqlx::query(LOGOUT_TARGETS)
                        .bind(sid)
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(rows::app).collect()
                }

                /// The grant's refresh tokens are dead from then on (`queries::REVOKE_GRANT`):
                /// presenting one yields `Missing`.
                async fn revoke_grant(&self, id: &str) -> Result<bool, StoreError> {
                    let query = sqlx::query(Self::spelled(&REVOKE_GRANT)).bind(id);
                    self.changed(query, Revoked::Grant, id).await
                }

                async fn create_refresh_token(
                    &self,
                    token: &RefreshToken,
                ) -> Result<(), StoreError> {
                    sqlx::query(INSERT_REFRESH_TOKEN)
                        .bind(&token.token_hash)
                        .bind(&token.grant_id)
                        .bind(&token.client_id)
                        .bind(&token.user_id)
                        .bind(&token.scope)
                        .bind(token.expires_at)
                        .bind(token.auth_time)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn use_refresh_token(
                    &self,
                    token_hash: &str,
                ) -> Result<Consumed<RefreshToken>, StoreError> {
                    self.consume(
                        SPEND_REFRESH_TOKEN,
                        GET_REFRESH_TOKEN,
                        token_hash,
                        rows::refresh_token,
                    )
                    .await
                }

                async fn rotate_refresh_token(
                    &self,
                    token_hash: &str,
                    successor: Option<Successor>,
                ) -> Result<Rotated, StoreError> {
                    if Self::unmatchable(&[token_hash]) {
                        return Ok(Rotated { token: Consumed::Missing, user: None });
                    }
                    match self
                        .rotations
                        .rotate(self.writer(), token_hash, successor)
                        .await?
                    {
                        Some(Spent { token, user }) => Ok(Rotated {
                            token: Consumed::Fresh(token),
                            user,
                        }),
                        // Replayed or unknown: what `use_refresh_token` answers.
                        None => Ok(Rotated {
                            token: self.use_refresh_token(token_hash).await?,
                            user: None,
                        }),
                    }
                }

                async fn get_refresh_token(
                    &self,
                    token_hash: &str,
                ) -> Result<Option<RefreshToken>, StoreError> {
                    self.find(GET_REFRESH_TOKEN, token_hash, rows::refresh_token)
                        .await
                }

                async fn refresh_token_used(&self, token_hash: &str) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[token_hash]) {
                        return Ok(false);
                    }
                    let used: Option<bool> = sqlx::query_scalar(REFRESH_TOKEN_USED)
                        .bind(token_hash)
                        .fetch_optional(self.reader())
                        .await?;
                    Ok(used.unwrap_or(false))
                }

                async fn get_consent(
                    &self,
                    user_id: &str,
                    client_id: &str,
                ) -> Result<Vec<String>, StoreError> {
                    if Self::unmatchable(&[user_id, client_id]) {
                        return Ok(Vec::new());
                    }
                    let scopes = sqlx::query_scalar(GET_CONSENT)
                        .bind(user_id)
                        .bind(client_id)
                        .fetch_all(self.reader())
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
                    sqlx::query(Self::spelled(&SAVE_CONSENT))
                        .bind(user_id)
                        .bind(client_id)
                        .bind(to_json(scopes)?)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn update_app(&self, app: &App) -> Result<bool, StoreError> {
                    let query = sqlx::query(Self::spelled(&UPDATE_APP))
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
                        .bind(&app.backchannel_logout_uri)
                        .bind(&app.client_id);
                    self.changed(query, Revoked::App, &app.client_id).await
                }

                async fn set_user_active(
                    &self,
                    id: &str,
                    active: bool,
                ) -> Result<bool, StoreError> {
                    let query = sqlx::query(Self::spelled(&SET_USER_ACTIVE))
                        .bind(active)
                        .bind(id);
                    self.changed(query, Revoked::User, id).await
                }

                /// Also deletes the user's pending authorization codes, so that none can be
                /// exchanged for a grant of a user that no longer exists.
                async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
                    self.delete_cascading(DELETE_USER, &DELETE_USER_REST, Revoked::User, id)
                        .await
                }

                async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
                    sqlx::query(INSERT_API_TOKEN)
                        .bind(&token.id)
                        .bind(&token.user_id)
                        .bind(&token.tenant)
                        .bind(&token.name)
                        .bind(&token.token_hash)
                        .bind(token.read_only)
                        .bind(token.created_at)
                        .bind(token.last_used_at)
                        .bind(token.revoked_at)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn find_api_token(
                    &self,
                    token_hash: &str,
                ) -> Result<Option<ApiToken>, StoreError> {
                    self.find(FIND_API_TOKEN, token_hash, rows::api_token).await
                }

                async fn get_api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
                    self.find(GET_API_TOKEN, id, rows::api_token).await
                }

                /// Both filters apply when both are given.
                async fn list_api_tokens(
                    &self,
                    user_id: Option<&str>,
                    tenant: Option<&str>,
                ) -> Result<Vec<ApiToken>, StoreError> {
                    if Self::unmatchable(&[user_id.unwrap_or(""), tenant.unwrap_or("")]) {
                        return Ok(Vec::new());
                    }
                    let mut query = QueryBuilder::<$db>::new(LIST_API_TOKENS_HEAD);
                    if let Some(user_id) = user_id {
                        query.push(" AND user_id = ").push_bind(user_id);
                    }
                    if let Some(tenant) = tenant {
                        query.push(" AND tenant = ").push_bind(tenant);
                    }
                    query.push(Self::spelled(&LIST_API_TOKENS_ORDER));
                    let rows = query.build().fetch_all(self.reader()).await?;
                    rows.iter().map(rows::api_token).collect()
                }

                async fn revoke_api_token(&self, id: &str, at: i64) -> Result<bool, StoreError> {
                    let query = sqlx::query(Self::spelled(&REVOKE_API_TOKEN))
                        .bind(at)
                        .bind(id);
                    self.changed(query, Revoked::ApiToken, id).await
                }

                async fn touch_api_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
                    if Self::unmatchable(&[id]) {
                        return Ok(());
                    }
                    sqlx::query(TOUCH_API_TOKEN)
                        .bind(at)
                        .bind(id)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn put_otp(&self, code: &OtpCode) -> Result<(), StoreError> {
                    sqlx::query(PUT_OTP)
                        .bind(&code.tenant)
                        .bind(normalize_email(&code.email))
                        .bind(&code.code_hash)
                        .bind(code.created_at)
                        .bind(code.expires_at)
                        .bind(i64::from(code.attempts))
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                /// One writing transaction that holds the row (SQLite's write lock,
                /// PostgreSQL's `FOR UPDATE`): concurrent checks of the same code wait for each
                /// other and see each other's writes, so a right code is `Valid` for exactly
                /// one caller and every wrong attempt is counted.
                async fn check_otp(
                    &self,
                    tenant: &str,
                    email: &str,
                    code_hash: &str,
                    now: i64,
                    max_attempts: u32,
                ) -> Result<OtpCheck, StoreError> {
                    if Self::unmatchable(&[tenant, email]) {
                        return Ok(OtpCheck::Missing);
                    }
                    let email = normalize_email(email);
                    let mut tx = self.begin_write().await?;
                    let Some(row) = sqlx::query(Self::spelled(&GET_OTP))
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
                    let attempts = rows::StoreRow::count(&row, "attempts")?;

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
                            sqlx::query(COUNT_OTP_ATTEMPT)
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
                    sqlx::query(DELETE_OTP)
                        .bind(tenant)
                        .bind(&email)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(outcome)
                }

                async fn create_contact(&self, contact: &Contact) -> Result<(), StoreError> {
                    sqlx::query(INSERT_CONTACT)
                        .bind(&contact.id)
                        .bind(&contact.tenant)
                        .bind(&contact.email)
                        .bind(&contact.hash_hash)
                        .bind(&contact.path_prefix)
                        .bind(contact.created_at)
                        .bind(contact.expires_at)
                        .bind(contact.revoked)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn find_contact(
                    &self,
                    hash_hash: &str,
                ) -> Result<Option<Contact>, StoreError> {
                    self.find(FIND_CONTACT, hash_hash, rows::contact).await
                }

                async fn list_contacts(
                    &self,
                    tenant: Option<&str>,
                ) -> Result<Vec<Contact>, StoreError> {
                    self.list(
                        tenant,
                        Self::spelled(&LIST_TENANT_CONTACTS),
                        Self::spelled(&LIST_CONTACTS),
                        rows::contact,
                    )
                    .await
                }

                async fn revoke_contact(&self, id: &str) -> Result<bool, StoreError> {
                    let query = sqlx::query(Self::spelled(&REVOKE_CONTACT)).bind(id);
                    self.changed(query, Revoked::Contact, id).await
                }

                /// Only a deactivation is told to the other nodes: an active user's other
                /// changes (a federated sign-in updates the user each time) reach them within
                /// `session.cache_ttl`.
                async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[user.id.as_str()]) {
                        return Ok(false);
                    }
                    let sql = if user.active {
                        UPDATE_USER.sqlite
                    } else {
                        Self::spelled(&UPDATE_USER)
                    };
                    let query = sqlx::query(sql)
                        .bind(&user.name)
                        .bind(&user.picture)
                        .bind(to_json(&user.groups)?)
                        .bind(to_json(&user.roles)?)
                        .bind(&user.password_hash)
                        .bind(user.active)
                        .bind(&user.id);
                    if user.active {
                        let done = query.execute(self.writer()).await?;
                        return Ok(done.rows_affected() > 0);
                    }
                    self.changed(query, Revoked::User, &user.id).await
                }

                async fn find_identity_link(
                    &self,
                    idp: &str,
                    subject: &str,
                ) -> Result<Option<String>, StoreError> {
                    if Self::unmatchable(&[idp, subject]) {
                        return Ok(None);
                    }
                    Ok(sqlx::query_scalar(FIND_IDENTITY_LINK)
                        .bind(idp)
                        .bind(subject)
                        .fetch_optional(self.reader())
                        .await?)
                }

                async fn link_identity(
                    &self,
                    idp: &str,
                    subject: &str,
                    user_id: &str,
                    at: i64,
                ) -> Result<(), StoreError> {
                    sqlx::query(LINK_IDENTITY)
                        .bind(idp)
                        .bind(subject)
                        .bind(user_id)
                        .bind(at)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                /// Replaces an earlier record of the same session.
                async fn create_idp_session(&self, session: &IdpSession) -> Result<(), StoreError> {
                    sqlx::query(PUT_IDP_SESSION)
                        .bind(&session.session_hash)
                        .bind(&session.idp)
                        .bind(&session.sid)
                        .bind(&session.subject)
                        .bind(&session.id_token)
                        .bind(session.expires_at)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_idp_session(
                    &self,
                    session_hash: &str,
                ) -> Result<Option<IdpSession>, StoreError> {
                    self.find(GET_IDP_SESSION, session_hash, rows::idp_session)
                        .await
                }

                /// One transaction: the provider sessions are deleted with `RETURNING`, then
                /// the frontdoor sessions they name (those already gone are left out).
                async fn end_idp_sessions(
                    &self,
                    idp: &str,
                    sid: Option<&str>,
                    subject: Option<&str>,
                ) -> Result<Vec<EndedSession>, StoreError> {
                    let (statement, value) = match (sid, subject) {
                        (Some(sid), _) => (END_IDP_SESSIONS_BY_SID, sid),
                        (None, Some(subject)) => (END_IDP_SESSIONS_BY_SUBJECT, subject),
                        (None, None) => return Ok(Vec::new()),
                    };
                    if Self::unmatchable(&[idp, value]) {
                        return Ok(Vec::new());
                    }
                    let mut tx = self.begin_write().await?;
                    let hashes: Vec<String> = sqlx::query_scalar(statement)
                        .bind(idp)
                        .bind(value)
                        .fetch_all(&mut *tx)
                        .await?;
                    let ended = Self::end_sessions(&mut tx, hashes).await?;
                    tx.commit().await?;
                    Ok(ended)
                }


                async fn login_failures(
                    &self,
                    subjects: &[String],
                ) -> Result<Vec<LoginFailures>, StoreError> {
                    let mut query = QueryBuilder::<$db>::new(LOGIN_FAILURES_HEAD);
                    let mut keys = query.separated(", ");
                    let mut any = false;
                    for subject in subjects
                        .iter()
                        .filter(|s| !Self::unmatchable(&[s.as_str()]))
                    {
                        keys.push_bind(subject);
                        any = true;
                    }
                    if !any {
                        return Ok(Vec::new());
                    }
                    query.push(")");
                    let rows = query.build().fetch_all(self.reader()).await?;
                    rows.iter().map(rows::login_failures).collect()
                }

                /// One writing transaction: the row is created if missing, then read and held
                /// (SQLite's write lock, PostgreSQL's `FOR UPDATE`), so failures counted at once
                /// (on several nodes) are serialized, each is counted and exactly one of them
                /// starts the ban.
                async fn record_login_failure(
                    &self,
                    subject: &str,
                    now: i64,
                    policy: &FailurePolicy,
                ) -> Result<Option<i64>, StoreError> {
                    if Self::unmatchable(&[subject]) {
                        return Err(StoreError::Corrupt("a subject cannot hold NUL".into()));
                    }
                    let mut tx = self.begin_write().await?;
                    sqlx::query(START_LOGIN_FAILURES)
                        .bind(subject)
                        .bind(now)
                        .bind(now + policy.window)
                        .execute(&mut *tx)
                        .await?;
                    let row = sqlx::query(Self::spelled(&GET_LOGIN_FAILURES))
                        .bind(subject)
                        .fetch_one(&mut *tx)
                        .await?;
                    let current = rows::login_failures(&row)?;
                    let (row, banned) = policy.after_failure(subject, Some(current), now);
                    sqlx::query(SET_LOGIN_FAILURES)
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

                async fn clear_login_failures(
                    &self,
                    subject: &str,
                    now: i64,
                ) -> Result<(), StoreError> {
                    if Self::unmatchable(&[subject]) {
                        return Ok(());
                    }
                    sqlx::query(CLEAR_LOGIN_FAILURES)
                        .bind(subject)
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn put_totp(
                    &self,
                    user_id: &str,
                    secret_sealed: &str,
                    now: i64,
                ) -> Result<(), StoreError> {
                    sqlx::query(PUT_TOTP)
                        .bind(user_id)
                        .bind(secret_sealed)
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_totp(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
                    self.find(GET_TOTP, user_id, rows::totp).await
                }

                async fn accept_totp_step(
                    &self,
                    user_id: &str,
                    step: i64,
                ) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[user_id]) {
                        return Ok(false);
                    }
                    let done = sqlx::query(ACCEPT_TOTP_STEP)
                        .bind(user_id)
                        .bind(step)
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn replace_recovery_codes(
                    &self,
                    user_id: &str,
                    code_hashes: &[String],
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(DELETE_RECOVERY_CODES)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    for hash in code_hashes {
                        sqlx::query(INSERT_RECOVERY_CODE)
                            .bind(user_id)
                            .bind(hash)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn use_recovery_code(
                    &self,
                    user_id: &str,
                    code_hash: &str,
                ) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[user_id, code_hash]) {
                        return Ok(false);
                    }
                    let done = sqlx::query(USE_RECOVERY_CODE)
                        .bind(user_id)
                        .bind(code_hash)
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn count_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError> {
                    if Self::unmatchable(&[user_id]) {
                        return Ok(0);
                    }
                    let count: i64 = sqlx::query_scalar(COUNT_RECOVERY_CODES)
                        .bind(user_id)
                        .fetch_one(self.reader())
                        .await?;
                    u32::try_from(count)
                        .map_err(|e| StoreError::Corrupt(format!("recovery code count: {e}")))
                }

                async fn delete_factors(&self, user_id: &str) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[user_id]) {
                        return Ok(false);
                    }
                    let mut tx = self.begin_write().await?;
                    let mut removed = 0;
                    for statement in DELETE_FACTORS {
                        removed += sqlx::query(statement)
                            .bind(user_id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                    tx.commit().await?;
                    Ok(removed > 0)
                }

                async fn put_pending_factor(
                    &self,
                    pending: &PendingFactor,
                ) -> Result<(), StoreError> {
                    sqlx::query(INSERT_PENDING_FACTOR)
                        .bind(&pending.token_hash)
                        .bind(&pending.user_id)
                        .bind(&pending.binding)
                        .bind(&pending.amr)
                        .bind(&pending.return_to)
                        .bind(pending.expires_at)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn take_pending_factor(
                    &self,
                    token_hash: &str,
                ) -> Result<Option<PendingFactor>, StoreError> {
                    if Self::unmatchable(&[token_hash]) {
                        return Ok(None);
                    }
                    let row = sqlx::query(TAKE_PENDING_FACTOR)
                        .bind(token_hash)
                        .fetch_optional(self.writer())
                        .await?;
                    row.as_ref().map(rows::pending_factor).transpose()
                }

                async fn insert_passkey(&self, p: &PasskeyRecord) -> Result<(), StoreError> {
                    sqlx::query(INSERT_PASSKEY)
                        .bind(&p.cred_id)
                        .bind(&p.user_id)
                        .bind(&p.name)
                        .bind(&p.passkey)
                        .bind(p.created_at)
                        .bind(p.last_used)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_passkey(
                    &self,
                    cred_id: &str,
                ) -> Result<Option<PasskeyRecord>, StoreError> {
                    self.find(GET_PASSKEY, cred_id, rows::passkey).await
                }

                async fn list_passkeys(
                    &self,
                    user_id: &str,
                ) -> Result<Vec<PasskeyRecord>, StoreError> {
                    if Self::unmatchable(&[user_id]) {
                        return Ok(Vec::new());
                    }
                    let found = sqlx::query(LIST_PASSKEYS)
                        .bind(user_id)
                        .fetch_all(self.reader())
                        .await?;
                    found.iter().map(rows::passkey).collect()
                }

                async fn use_passkey(
                    &self,
                    user_id: &str,
                    cred_id: &str,
                    passkey: &str,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[user_id, cred_id]) {
                        return Ok(false);
                    }
                    let done = sqlx::query(USE_PASSKEY)
                        .bind(user_id)
                        .bind(cred_id)
                        .bind(passkey)
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn delete_passkey(
                    &self,
                    user_id: &str,
                    cred_id: &str,
                ) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[user_id, cred_id]) {
                        return Ok(false);
                    }
                    let done = sqlx::query(DELETE_PASSKEY)
                        .bind(user_id)
                        .bind(cred_id)
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn put_passkey_ceremony(
                    &self,
                    c: &PasskeyCeremony,
                ) -> Result<(), StoreError> {
                    sqlx::query(INSERT_PASSKEY_CEREMONY)
                        .bind(&c.id_hash)
                        .bind(&c.user_id)
                        .bind(&c.kind)
                        .bind(&c.state)
                        .bind(c.expires_at)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn take_passkey_ceremony(
                    &self,
                    id_hash: &str,
                ) -> Result<Option<PasskeyCeremony>, StoreError> {
                    if Self::unmatchable(&[id_hash]) {
                        return Ok(None);
                    }
                    let row = sqlx::query(TAKE_PASSKEY_CEREMONY)
                        .bind(id_hash)
                        .fetch_optional(self.writer())
                        .await?;
                    row.as_ref().map(rows::passkey_ceremony).transpose()
                }

                /// One transaction: each ended session is announced, so that every node
                /// forgets it.
                async fn end_user_sessions(
                    &self,
                    user_id: &str,
                    keep: Option<&str>,
                ) -> Result<Vec<EndedSession>, StoreError> {
                    if Self::unmatchable(&[user_id]) {
                        return Ok(Vec::new());
                    }
                    let mut tx = self.begin_write().await?;
                    let rows = sqlx::query(DELETE_USER_SESSIONS)
                        .bind(user_id)
                        .bind(keep.unwrap_or(""))
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut ended = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let session = EndedSession {
                            id_hash: rows::StoreRow::text(row, "id_hash")?,
                            user_id: rows::StoreRow::text(row, "user_id")?,
                            sid: rows::StoreRow::text(row, "sid")?,
                        };
                        Self::announce(&mut tx, Revoked::Session, &session.id_hash).await?;
                        ended.push(session);
                    }
                    tx.commit().await?;
                    Ok(ended)
                }

                /// The old hash is announced as ended: other nodes forget it, and find the
                /// session again under its new hash.
                async fn rekey_session(
                    &self,
                    old_hash: &str,
                    new_hash: &str,
                ) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[old_hash, new_hash]) {
                        return Ok(false);
                    }
                    self.changed_then(
                        sqlx::query(REKEY_SESSION).bind(old_hash).bind(new_hash),
                        sqlx::query(REKEY_IDP_SESSION).bind(old_hash).bind(new_hash),
                        Revoked::Session,
                        old_hash,
                    )
                    .await
                }

                async fn create_account_token(
                    &self,
                    token: &AccountToken,
                ) -> Result<(), StoreError> {
                    sqlx::query(INSERT_ACCOUNT_TOKEN)
                        .bind(&token.token_hash)
                        .bind(&token.id)
                        .bind(token.kind.as_str())
                        .bind(&token.tenant)
                        .bind(normalize_email(&token.email))
                        .bind(&token.user_id)
                        .bind(to_json(&token.groups)?)
                        .bind(to_json(&token.roles)?)
                        .bind(&token.created_by)
                        .bind(token.created_at)
                        .bind(token.expires_at)
                        .bind(token.used)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn get_account_token(
                    &self,
                    token_hash: &str,
                ) -> Result<Option<AccountToken>, StoreError> {
                    self.find(GET_ACCOUNT_TOKEN, token_hash, rows::account_token)
                        .await
                }

                async fn spend_account_token(
                    &self,
                    token_hash: &str,
                ) -> Result<Consumed<AccountToken>, StoreError> {
                    self.consume(
                        SPEND_ACCOUNT_TOKEN,
                        GET_ACCOUNT_TOKEN,
                        token_hash,
                        rows::account_token,
                    )
                    .await
                }

                async fn get_account_token_by_id(
                    &self,
                    id: &str,
                ) -> Result<Option<AccountToken>, StoreError> {
                    self.find(GET_ACCOUNT_TOKEN_BY_ID, id, rows::account_token)
                        .await
                }

                async fn list_account_tokens(
                    &self,
                    tenant: &str,
                    kind: AccountTokenKind,
                ) -> Result<Vec<AccountToken>, StoreError> {
                    if Self::unmatchable(&[tenant]) {
                        return Ok(Vec::new());
                    }
                    let rows = sqlx::query(LIST_ACCOUNT_TOKENS)
                        .bind(tenant)
                        .bind(kind.as_str())
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(rows::account_token).collect()
                }

                async fn delete_account_token(&self, id: &str) -> Result<bool, StoreError> {
                    if Self::unmatchable(&[id]) {
                        return Ok(false);
                    }
                    let done = sqlx::query(DELETE_ACCOUNT_TOKEN)
                        .bind(id)
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn drop_account_tokens(
                    &self,
                    user_id: &str,
                    kind: AccountTokenKind,
                ) -> Result<u64, StoreError> {
                    if Self::unmatchable(&[user_id]) {
                        return Ok(0);
                    }
                    let done = sqlx::query(DROP_ACCOUNT_TOKENS)
                        .bind(user_id)
                        .bind(kind.as_str())
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected())
                }

                $($own)*
            }
        };
    };
}
pub(crate) use store_impl;
