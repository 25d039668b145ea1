//! SQLite implementation of the store (the embedded default): its connections and what its
//! dialect decides; the statements and methods are shared with PostgreSQL (`store::sql`).
//!
//! One database file in WAL mode with `synchronous = FULL`, so that a write the store
//! has confirmed survives a crash of the process or of the machine. Lists are JSON
//! arrays of strings, booleans are 0/1 integers, times are unix seconds.
//!
//! Transactions that write start with `BEGIN IMMEDIATE`: they take the write lock up
//! front (waiting at most the busy timeout) instead of failing with `SQLITE_BUSY` when
//! a deferred read transaction has to be upgraded under contention.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tokio::runtime::{Handle, RuntimeFlavor};

use super::StoreError;
use super::notify::Revoked;
use super::rotation_batch::{Batch, CommitRotations, RotationBatcher};
use super::sql::queries::Spellings;
use super::sql::{Dialect, store_impl};

mod rotations;

/// Connections kept by the read pool.
const MAX_CONNECTIONS: u32 = 8;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the rotations' writer keeps the write connection while batches keep queueing:
/// other writes of the process wait at most this and one commit for it.
const HOLD: Duration = Duration::from_millis(5);

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
    rotations: Arc<RotationBatcher<SqliteStore>>,
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
        // No ping before each acquisition (sqlx's default): a SQLite connection lives in this
        // process and cannot be lost the way a network one can, and the ping is a round trip
        // to the connection's thread (two context switches) before every statement or
        // transaction.
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            writer,
            rotations: Arc::new(RotationBatcher::new()),
        })
    }

    /// Closes every connection of the pool, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

impl Dialect for SqliteStore {
    type Db = Sqlite;
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    /// Every write goes through the one writer connection, and a transaction holds the
    /// database's write lock until its commit is durable.
    const CONCURRENT_WRITES: usize = 1;

    fn reader(&self) -> &SqlitePool {
        &self.pool
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with(Self::BEGIN_WRITE).await
    }

    fn spelled(statement: &Spellings) -> &'static str {
        statement.sqlite
    }

    /// SQLite stores and finds any text, NUL included.
    fn unmatchable(_keys: &[&str]) -> bool {
        false
    }

    /// One process serves the database: its caches are forgotten by the caller.
    async fn announce(
        _tx: &mut SqliteConnection,
        _kind: fn(String) -> Revoked,
        _key: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn announcing<'q>(
        query: Query<'q, Sqlite, SqliteArguments<'q>>,
        _kind: fn(String) -> Revoked,
        _key: &str,
    ) -> Query<'q, Sqlite, SqliteArguments<'q>> {
        query
    }
}

impl CommitRotations for SqliteStore {
    type Db = Sqlite;
    const COMMITS_IN_FLIGHT: usize = <Self as Dialect>::CONCURRENT_WRITES;

    /// The commits run on the writer connection's SQLite handle, locked out of sqlx's
    /// connection thread (`rotations`), on this task's thread: through sqlx, every statement's
    /// end and every row is a message from that thread and a wake-up here. Taking the
    /// connection and its handle costs a hand-off to sqlx's thread and back, 120-200 µs on a
    /// loaded machine (a fifth of a commit), so the batches that queue meanwhile follow on the
    /// same handle, for at most [`HOLD`] before the other writes waiting for the connection
    /// get their turn. The connection goes back to the pool as it was (each transaction
    /// committed, or rolled back when it failed); after an error it is closed, in case the
    /// rollback failed too.
    async fn commit_batches(
        writer: &SqlitePool,
        first: Batch,
        more: &mut (dyn FnMut() -> Option<Batch> + Send),
    ) {
        let started = Instant::now();
        let mut conn = match writer.acquire().await {
            Ok(conn) => conn,
            Err(e) => return first.answer(Err(e.into()), started),
        };
        let mut locked = match conn.lock_handle().await {
            Ok(locked) => locked,
            Err(e) => return first.answer(Err(e.into()), started),
        };
        let run = || {
            // SAFETY: the handle is the pool connection's open `sqlite3`, and sqlx's thread
            // leaves it alone until `locked` is dropped, which is after `db`. Dropping `db`
            // finalizes the statements it prepared and neither closes the handle nor
            // (rusqlite without its `hooks` features, as in Cargo.toml) clears hooks sqlx
            // registered.
            let mut db =
                match unsafe { rusqlite::Connection::from_handle(locked.as_raw_handle().as_ptr()) }
                {
                    Ok(db) => db,
                    Err(e) => {
                        first.answer(Err(e.into()), started);
                        return true;
                    }
                };
            let held = Instant::now();
            let (mut batch, mut started) = (first, started);
            loop {
                let committed = rotations::commit(&mut db, &batch.rotations);
                let failed = committed.is_err();
                batch.answer(committed, started);
                if failed {
                    return true;
                }
                if held.elapsed() >= HOLD {
                    return false;
                }
                match more() {
                    Some(next) => (batch, started) = (next, Instant::now()),
                    None => return false,
                }
            }
        };
        // The commits block their thread: for the sync, and up to the busy timeout behind
        // another process's write (a CLI command on the same file). On a multi-thread runtime
        // (the background one under `serve`) the thread first hands its other tasks over, so
        // mail, housekeeping and key refreshes go on meanwhile; a current-thread runtime
        // (tests, CLI commands) runs them in place.
        let failed = match Handle::current().runtime_flavor() {
            RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => run(),
        };
        drop(locked);
        if failed {
            conn.close_on_drop();
        }
    }
}

store_impl!(SqliteStore, Sqlite, {});

#[cfg(test)]
mod tests {
    //! What only SQLite has: the file, its pragmas, upgrades through its migrations. The
    //! store's behaviour is tested for every backend in `store::tests`.

    use tempfile::TempDir;

    use super::super::Store;
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

    /// Rotations that keep coming keep the write connection only `HOLD` at a time: the
    /// process's other writes still get their turn within a commit or two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_of_rotations_leaves_other_writes_their_turn() {
        use std::sync::atomic::{AtomicBool, Ordering};

        use super::super::tests::{grant, refresh, user};
        use super::super::{Consumed, Successor};

        let (_dir, store) = open_temp().await;
        let store = Arc::new(store);
        store
            .create_user(&user("u1", "default", "a@example.com"))
            .await
            .unwrap();
        store.create_grant(&grant("g1", "app")).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let chains: Vec<_> = (0..16)
            .map(|chain| {
                let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut hash = format!("chain{chain}-0");
                    store
                        .create_refresh_token(&refresh(&hash, "g1", "app", i64::MAX))
                        .await
                        .unwrap();
                    let mut rotations = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let next = format!("chain{chain}-{}", rotations + 1);
                        let successor = Successor {
                            token_hash: next.clone(),
                            client_id: "app".into(),
                            now: 0,
                            expires_at: i64::MAX,
                        };
                        let rotated = store
                            .rotate_refresh_token(&hash, Some(successor))
                            .await
                            .unwrap();
                        assert!(matches!(rotated.token, Consumed::Fresh(_)), "{rotated:?}");
                        (hash, rotations) = (next, rotations + 1);
                    }
                    (hash, rotations)
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for i in 0..40 {
            let started = Instant::now();
            store
                .create_api_token(&api_token(&format!("t{i}"), "u1", "default", 1))
                .await
                .unwrap();
            slowest = slowest.max(started.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        for chain in chains {
            let (last, rotations) = chain.await.unwrap();
            assert!(rotations > 0, "a chain never rotated");
            assert!(store.get_refresh_token(&last).await.unwrap().is_some());
        }
        // Each write waits at most a hold and a commit or two: 6-10 ms here. Held for as long
        // as rotations keep coming, the slowest waited 450-530 ms.
        assert!(
            slowest < Duration::from_millis(200),
            "a write waited {slowest:?}"
        );
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
