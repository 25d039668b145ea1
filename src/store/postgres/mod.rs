//! PostgreSQL implementation of the store: one database shared by any number of nodes. Here
//! are its connections and what its dialect decides; the statements and methods are shared
//! with SQLite (`store::sql`, whose test suite in `store::tests` runs against both). Lists are
//! JSON arrays of strings in TEXT columns, booleans are BOOLEAN, times are unix seconds in
//! BIGINT.
//!
//! Concurrency does not rely on a database-wide write lock as SQLite's does:
//! - single-use secrets (codes, refresh tokens) are consumed by one
//!   `UPDATE … WHERE used = FALSE RETURNING` statement: under READ COMMITTED a concurrent
//!   updater waits for the first and then re-checks `used`, so exactly one caller sees `Fresh`;
//! - one-time codes and login failures are read in a transaction that locks the row
//!   (`SELECT … FOR UPDATE`), so every attempt is counted;
//! - deletions that cascade run in one transaction each.
//!
//! Every revocation is announced to the other nodes (`notify`) in the change's own
//! transaction or statement, so it is delivered only if the change commits.
//!
//! PostgreSQL text cannot hold a NUL character, so no stored key contains one: lookups by
//! such a key find nothing without asking the database (SQLite answers the same), and
//! storing text with a NUL fails.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};

use super::StoreError;
use super::notify::{CHANNEL, Revoked};
use super::rotation_batch::{self, Batch, CommitRotations, Rotation, RotationBatcher, Spent};
use super::sql::queries::{PG_COMMIT_ROTATIONS, Spellings};
use super::sql::rows::{self, StoreRow};
use super::sql::{Dialect, store_impl};

#[cfg(test)]
mod tests;

/// Connections kept by each node's pool.
const MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a free connection (or for a new one to connect).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The store on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Refresh-token rotations of this node share transactions.
    rotations: Arc<RotationBatcher<PostgresStore>>,
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
        Ok(PostgresStore {
            pool,
            rotations: Arc::new(RotationBatcher::new()),
        })
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

impl Dialect for PostgresStore {
    type Db = Postgres;
    const BEGIN_WRITE: &'static str = "BEGIN";
    /// A commit waits for its WAL flush, and the server flushes the commits waiting together:
    /// a second transaction in flight keeps it busy while the rest of the pool serves reads.
    /// Two, not four: with a batch of rotations in one statement, four in flight made batches
    /// of about 6 rotations under RS256 load and cost the server 65-90 µs of CPU per refresh,
    /// two make batches of 13-16 for 43-53 µs, with ES256 throughput unchanged
    /// (`docs/benchmarks.md`, December 6, night).
    const CONCURRENT_WRITES: usize = 2;

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin_with(Self::BEGIN_WRITE).await
    }

    fn spelled(statement: &Spellings) -> &'static str {
        statement.postgres
    }

    /// PostgreSQL text cannot hold a NUL character: no row matches a key with one.
    fn unmatchable(keys: &[&str]) -> bool {
        keys.iter().any(|k| k.contains('\0'))
    }

    /// Tells every node what the current transaction revokes (`crate::revocation` listens);
    /// PostgreSQL delivers it only when the transaction commits.
    async fn announce(
        tx: &mut PgConnection,
        kind: fn(String) -> Revoked,
        key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(kind(key.to_owned()).payload())
            .execute(tx)
            .await?;
        Ok(())
    }

    fn announcing<'q>(
        query: Query<'q, Postgres, PgArguments>,
        kind: fn(String) -> Revoked,
        key: &str,
    ) -> Query<'q, Postgres, PgArguments> {
        query.bind(CHANNEL).bind(kind(key.to_owned()).payload())
    }
}

impl CommitRotations for PostgresStore {
    type Db = Postgres;
    const COMMITS_IN_FLIGHT: usize = <Self as Dialect>::CONCURRENT_WRITES;

    /// Each batch in a commit of its own, several in flight: the others wait for no writer
    /// this one holds.
    async fn commit_batches(
        writer: &PgPool,
        first: Batch,
        _more: &mut (dyn FnMut() -> Option<Batch> + Send),
    ) {
        let started = Instant::now();
        let committed = Self::commit_rotations(writer, &first.rotations).await;
        first.answer(committed, started);
    }
}

impl PostgresStore {
    /// One statement, and so one round trip and one transaction of its own: the spend, the
    /// successors of what it spent, and each spent token with its user; one text for every
    /// batch size, prepared once per connection. Its `UPDATE` locks the
    /// batch's rows in key order, as a batch of another node (or another of this node's in
    /// flight) does.
    async fn commit_rotations(
        writer: &PgPool,
        batch: &[Rotation],
    ) -> Result<Vec<Option<Spent>>, StoreError> {
        let successors = rotation_batch::successors(batch);
        let hashes: Vec<&str> = batch.iter().map(|r| r.token_hash.as_str()).collect();
        // The successors' columns, one array each (the `VALUES` rows SQLite binds one by one).
        let n = successors.len();
        let (mut parents, mut next_hashes, mut clients, mut nows, mut expiries) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (parent, next) in &successors {
            parents.push(*parent);
            next_hashes.push(next.token_hash.as_str());
            clients.push(next.client_id.as_str());
            nows.push(next.now);
            expiries.push(next.expires_at);
        }
        let rows = sqlx::query(PG_COMMIT_ROTATIONS)
            .bind(hashes)
            .bind(parents)
            .bind(next_hashes)
            .bind(clients)
            .bind(nows)
            .bind(expiries)
            .fetch_all(writer)
            .await?;
        let mut spent = Vec::with_capacity(rows.len());
        let mut users = HashMap::new();
        for row in &rows {
            let token = rows::refresh_token(row)?;
            // The user's columns are NULL when no user has the token's user id.
            if row.optional_text("id")?.is_some() && !users.contains_key(&token.user_id) {
                let user = rows::user(row)?;
                users.insert(user.id.clone(), user);
            }
            spent.push(token);
        }
        Ok(rotation_batch::outcomes(batch, spent, &users))
    }
}

store_impl!(PostgresStore, Postgres, {});
