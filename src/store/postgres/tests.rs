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
    let (applied, succeeded): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE success) FROM _sqlx_migrations")
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
