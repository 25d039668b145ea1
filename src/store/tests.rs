//! The store's behaviour, one suite for every implementation.
//!
//! Each test below is an async function over a [`TestDb`] (a fresh, empty store and the
//! database behind it); `store_tests!` instantiates every one of them once per backend:
//! `store::tests::sqlite::NAME` on a temporary SQLite file, and `store::tests::postgres::NAME`
//! on a database created for the test on the PostgreSQL server named by
//! `FRONTDOOR_TEST_POSTGRES_URL` and dropped afterwards. Without that variable the PostgreSQL
//! variants fail (they do not pass silently) unless `FRONTDOOR_SKIP_POSTGRES=1` is set.
//! `scripts/postgres.sh` starts a local server and prints the URL to use.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use tempfile::TempDir;

use super::{
    AccountToken, AccountTokenKind, ApiToken, App, AuthCode, Consumed, Contact, DynStore,
    EndedSession, FailurePolicy, Grant, IdpSession, LoginFailures, OtpCheck, OtpCode,
    PasskeyCeremony, PasskeyRecord, PendingFactor, PostgresStore, RefreshToken, Rotated,
    SessionRecord, SqliteStore, Store, StoreError, Successor, User,
};

/// Names the server the PostgreSQL variants create their databases on.
const POSTGRES_URL_VAR: &str = "FRONTDOOR_TEST_POSTGRES_URL";
/// Set to 1 to skip the PostgreSQL variants explicitly.
const SKIP_POSTGRES_VAR: &str = "FRONTDOOR_SKIP_POSTGRES";

/// Instantiates each shared test for every backend.
macro_rules! store_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )+
        }
    };
}

store_tests!(
    user_roundtrip_and_lookup,
    duplicate_email_conflicts_case_insensitively,
    list_users_by_tenant_ordered_by_email,
    listing_order_is_bytewise,
    app_roundtrip_list_and_activation,
    session_lifecycle_and_count,
    code_consumed_once_then_replayed,
    concurrent_consume_yields_exactly_one_fresh,
    concurrent_refresh_use_on_threads_yields_exactly_one_fresh,
    grant_roundtrip,
    refresh_token_reuse_is_detected,
    rotation_spends_and_stores_the_successor_once,
    a_rotation_commit_that_fails_spends_nothing_and_the_next_one_commits,
    rotations_sharing_commits_are_answered_as_alone,
    batches_committing_at_once_spend_each_token_once,
    revoke_grant_kills_its_refresh_tokens,
    a_rotation_racing_a_revocation_leaves_no_live_token,
    delete_app_cascades,
    consent_is_a_union,
    concurrent_consents_are_all_kept,
    purge_expired_removes_expired_rows_only,
    data_survives_reopen,
    update_app_roundtrip,
    set_user_active_toggles,
    update_user_roundtrip,
    delete_user_cascades,
    api_token_lifecycle,
    otp_right_code_is_valid_once,
    otp_wrong_codes_count_down_then_exhaust,
    otp_expired_is_deleted,
    put_otp_replaces_pending_code,
    concurrent_otp_checks_yield_exactly_one_valid,
    concurrent_wrong_otp_checks_are_all_counted,
    contact_lifecycle,
    purge_expired_removes_expired_otp_codes_and_contacts,
    identity_links_are_replaced,
    idp_sessions_end_by_sid_or_subject,
    logout_targets_are_the_apps_granted_in_a_session,
    keys_with_nul_find_nothing,
    corrupt_list_is_reported,
    login_failures_count_up_to_a_ban,
    login_failures_window_restarts_the_count,
    clearing_login_failures_keeps_a_ban_in_force,
    concurrent_login_failures_are_all_counted_and_ban_once,
    purge_expired_removes_stale_login_failures,
    totp_steps_are_accepted_once_and_confirm,
    recovery_codes_are_single_use_and_replaced,
    an_administrators_reset_removes_every_factor_of_one_user,
    pending_factors_are_taken_once,
    passkeys_are_the_owners_and_ceremonies_taken_once,
    account_token_spent_once_then_replayed,
    concurrent_account_token_spends_yield_exactly_one_fresh,
    dropping_account_tokens_leaves_used_and_other_kinds,
    account_tokens_expire_and_go_with_their_user,
    user_sessions_end_all_but_the_kept_one,
    rekeyed_session_keeps_its_sid_and_provider_session,
    invitations_are_listed_by_tenant_and_deleted_by_id,
);

/// A fresh store for one test, and the database behind it.
pub(super) struct TestDb {
    /// The store under test.
    pub store: DynStore,
    backend: Backend,
}

enum Backend {
    Sqlite { _dir: TempDir, path: PathBuf },
    Postgres(PgTestDatabase),
}

/// A store opened once more on a test's database, as by a restarted process.
pub(super) enum Reopened {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Deref for Reopened {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        match self {
            Reopened::Sqlite(s) => s,
            Reopened::Postgres(s) => s,
        }
    }
}

impl Reopened {
    /// Closes the store's connections cleanly.
    pub async fn close(&self) {
        match self {
            Reopened::Sqlite(s) => s.close().await,
            Reopened::Postgres(s) => s.close().await,
        }
    }
}

impl TestDb {
    /// A store on a new SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("frontdoor.db");
        let store = SqliteStore::open(&path).await.unwrap();
        TestDb {
            store: Arc::new(store),
            backend: Backend::Sqlite { _dir: dir, path },
        }
    }

    /// A store on a new PostgreSQL database; `None` when skipped explicitly.
    pub async fn postgres() -> Option<TestDb> {
        let database = PgTestDatabase::create().await?;
        let store = PostgresStore::open(&database.url).await.unwrap();
        Some(TestDb {
            store: Arc::new(store),
            backend: Backend::Postgres(database),
        })
    }

    /// Opens the test's database again, independently of `store`.
    pub async fn open(&self) -> Reopened {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                Reopened::Sqlite(SqliteStore::open(path).await.unwrap())
            }
            Backend::Postgres(db) => {
                Reopened::Postgres(PostgresStore::open(&db.url).await.unwrap())
            }
        }
    }

    /// Runs a statement on a connection of its own, behind the store's back.
    pub async fn execute(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                    .await
                    .unwrap();
                conn.execute(sql).await.unwrap();
            }
            Backend::Postgres(db) => {
                let mut conn = PgConnection::connect(&db.url).await.unwrap();
                conn.execute(sql).await.unwrap();
            }
        }
    }

    /// The integer a query returns, read behind the store's back.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres(db) => {
                let mut conn = PgConnection::connect(&db.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }
}

/// An empty PostgreSQL database on the test server, dropped (with any connections still
/// open to it) when this value is.
pub(super) struct PgTestDatabase {
    /// Connects to this database.
    pub url: String,
    /// The database's name.
    pub name: String,
    /// The server's URL as given, used to create and drop the database.
    server_url: String,
}

impl PgTestDatabase {
    /// Creates `fd_test_<random>`. `None` when `FRONTDOOR_SKIP_POSTGRES=1`; panics with
    /// instructions when no server is configured.
    pub async fn create() -> Option<PgTestDatabase> {
        if std::env::var(SKIP_POSTGRES_VAR).is_ok_and(|v| v == "1") {
            eprintln!("skipped: {SKIP_POSTGRES_VAR}=1");
            return None;
        }
        let server_url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => panic!(
                "{POSTGRES_URL_VAR} is not set: the PostgreSQL store tests need a server on \
                 which they may CREATE DATABASE. Start a local one with \
                 `export {POSTGRES_URL_VAR}=\"$(scripts/postgres.sh)\"` (installs and starts \
                 PostgreSQL on 127.0.0.1:5432), or set it to your own, e.g. \
                 {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres. \
                 To skip these tests instead, set {SKIP_POSTGRES_VAR}=1."
            ),
        };
        let name = format!("fd_test_{:016x}", rand::random::<u64>());
        let mut url = url::Url::parse(&server_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        let mut conn = PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to {POSTGRES_URL_VAR}={}: {e} (is the server running? \
                 scripts/postgres.sh starts one)",
                    super::postgres::redact_url(&server_url)
                )
            });
        // An ICU collation that sorts unlike bytes ("a" < "B"), as production databases
        // often do, so that the store's own ordering is what the tests see; plain
        // CREATE DATABASE on servers without ICU support.
        let icu = format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' \
             LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        );
        if conn.execute(icu.as_str()).await.is_err() {
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        }
        conn.close().await.ok();
        Some(PgTestDatabase {
            url: url.to_string(),
            name,
            server_url,
        })
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async code (and maybe while panicking): use a thread with a
        // runtime of its own, and only report failures.
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&server_url)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop the test database {}", self.name),
        }
    }
}

// Fixtures.

pub(super) fn user(id: &str, tenant: &str, email: &str) -> User {
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

pub(super) fn app(client_id: &str, tenant: &str, created_at: i64) -> App {
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
        pkce_optional: false,
        backchannel_logout_uri: Some("https://app.example.com/backchannel".into()),
    }
}

pub(super) fn session(id_hash: &str, expires_at: i64) -> SessionRecord {
    SessionRecord {
        id_hash: id_hash.into(),
        user_id: "u1".into(),
        tenant: "default".into(),
        created_at: 100,
        expires_at,
        last_seen: 100,
        auth_method: "password".into(),
        sid: format!("sid-{id_hash}"),
        amr: "pwd otp mfa".into(),
    }
}

pub(super) fn code(code_hash: &str, client_id: &str, expires_at: i64) -> AuthCode {
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
        amr: "pwd otp mfa".into(),
    }
}

pub(super) fn grant(id: &str, client_id: &str) -> Grant {
    Grant {
        id: id.into(),
        client_id: client_id.into(),
        user_id: "u1".into(),
        tenant: "default".into(),
        scope: "openid email offline_access".into(),
        created_at: 100,
        revoked: false,
        sid: Some("sid-s1".into()),
    }
}

pub(super) fn refresh(
    token_hash: &str,
    grant_id: &str,
    client_id: &str,
    expires_at: i64,
) -> RefreshToken {
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

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(super) fn api_token(id: &str, user_id: &str, tenant: &str, created_at: i64) -> ApiToken {
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

pub(super) fn otp(email: &str, code_hash: &str, expires_at: i64) -> OtpCode {
    OtpCode {
        tenant: "default".into(),
        email: email.into(),
        code_hash: code_hash.into(),
        created_at: 100,
        expires_at,
        attempts: 0,
    }
}

pub(super) fn contact(id: &str, tenant: &str, created_at: i64, expires_at: i64) -> Contact {
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

pub(super) fn ids<T>(items: Vec<T>, id: fn(T) -> String) -> Vec<String> {
    items.into_iter().map(id).collect()
}

// The suite.

async fn user_roundtrip_and_lookup(db: &TestDb) {
    let store = &db.store;
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

async fn duplicate_email_conflicts_case_insensitively(db: &TestDb) {
    let store = &db.store;
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

async fn list_users_by_tenant_ordered_by_email(db: &TestDb) {
    let store = &db.store;
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

async fn app_roundtrip_list_and_activation(db: &TestDb) {
    let store = &db.store;
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

async fn session_lifecycle_and_count(db: &TestDb) {
    let store = &db.store;
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

async fn code_consumed_once_then_replayed(db: &TestDb) {
    let store = &db.store;
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

async fn concurrent_consume_yields_exactly_one_fresh(db: &TestDb) {
    let store = Arc::clone(&db.store);
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

async fn concurrent_refresh_use_on_threads_yields_exactly_one_fresh(db: &TestDb) {
    let store = Arc::clone(&db.store);
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

async fn grant_roundtrip(db: &TestDb) {
    let store = &db.store;
    let g = grant("g1", "app");
    store.create_grant(&g).await.unwrap();
    assert_eq!(store.get_grant("g1").await.unwrap().unwrap(), g);
    assert!(store.get_grant("nope").await.unwrap().is_none());
    let err = store.create_grant(&g).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn refresh_token_reuse_is_detected(db: &TestDb) {
    let store = &db.store;
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

/// A batch whose commit fails (here its successor's key is taken) is undone whole, and
/// leaves the writer fit for the next: on SQLite the commit runs on the writer's handle
/// outside sqlx, which does not see it as a transaction, so one stopped midway must not leave
/// its `BEGIN` open on the connection the next writes use.
async fn a_rotation_commit_that_fails_spends_nothing_and_the_next_one_commits(db: &TestDb) {
    let store = Arc::clone(&db.store);
    store
        .create_user(&user("u1", "default", "u1@example.com"))
        .await
        .unwrap();
    store.create_grant(&grant("g1", "app")).await.unwrap();
    for hash in ["r1", "taken"] {
        store
            .create_refresh_token(&refresh(hash, "g1", "app", 1_000))
            .await
            .unwrap();
    }
    let next = |hash: &str| Successor {
        token_hash: hash.into(),
        client_id: "app".into(),
        now: 0,
        expires_at: 2_000,
    };
    let failed = store.rotate_refresh_token("r1", Some(next("taken"))).await;
    assert!(
        matches!(
            failed,
            Err(StoreError::Unavailable(_) | StoreError::Conflict(_))
        ),
        "{failed:?}"
    );
    assert!(!store.refresh_token_used("r1").await.unwrap());
    let rotated = store
        .rotate_refresh_token("r1", Some(next("r2")))
        .await
        .unwrap();
    assert!(matches!(rotated.token, Consumed::Fresh(_)), "{rotated:?}");
    assert!(store.refresh_token_used("r1").await.unwrap());
    assert!(store.get_refresh_token("r2").await.unwrap().is_some());
    // Writes outside the rotations go through the same connection.
    store
        .create_user(&user("u2", "default", "u2@example.com"))
        .await
        .unwrap();
    assert!(store.get_user("u2").await.unwrap().is_some());
}

async fn rotation_spends_and_stores_the_successor_once(db: &TestDb) {
    let store = Arc::clone(&db.store);
    let u1 = user("u1", "default", "u1@example.com");
    store.create_user(&u1).await.unwrap();
    store.create_grant(&grant("g1", "app")).await.unwrap();
    let r1 = refresh("r1", "g1", "app", 1_000);
    store.create_refresh_token(&r1).await.unwrap();
    // Eight concurrent rotations of r1, each with its own successor: one wins.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let next = Successor {
                    token_hash: format!("r2-{i}"),
                    client_id: "app".into(),
                    now: 0,
                    expires_at: 2_000,
                };
                (i, store.rotate_refresh_token("r1", Some(next)).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        // The fresh token comes with its user, read in the rotation's commit.
        match task.await.unwrap() {
            (
                i,
                Ok(Rotated {
                    token: Consumed::Fresh(old),
                    user,
                }),
            ) => {
                assert_eq!(old, r1);
                assert_eq!(user.as_ref(), Some(&u1));
                winners.push(i);
            }
            (
                _,
                Ok(Rotated {
                    token: Consumed::Replayed(old),
                    user: None,
                }),
            ) => assert_eq!(old, r1),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    for i in 0..8 {
        let stored = store.get_refresh_token(&format!("r2-{i}")).await.unwrap();
        assert_eq!(stored.is_some(), winners == [i], "successor r2-{i}");
    }
    // A successor the callback declines is not stored; unknown tokens are Missing.
    let r3 = refresh("r3", "g1", "app", 1_000);
    store.create_refresh_token(&r3).await.unwrap();
    assert_eq!(
        store.rotate_refresh_token("r3", None).await.unwrap().token,
        Consumed::Fresh(r3)
    );
    assert!(store.refresh_token_used("r3").await.unwrap());
    assert_eq!(
        store
            .rotate_refresh_token("nope", None)
            .await
            .unwrap()
            .token,
        Consumed::Missing
    );
    // A token whose user is gone is spent all the same, and comes without one.
    let orphan = RefreshToken {
        user_id: "u-gone".into(),
        ..refresh("orphan", "g1", "app", 1_000)
    };
    store.create_refresh_token(&orphan).await.unwrap();
    assert_eq!(
        store.rotate_refresh_token("orphan", None).await.unwrap(),
        Rotated {
            token: Consumed::Fresh(orphan),
            user: None
        }
    );
    // A token of another client, or an expired one, is spent without a successor.
    for (hash, client, now) in [("r4", "other", 0), ("r5", "app", 1_000)] {
        store
            .create_refresh_token(&refresh(hash, "g1", "app", 1_000))
            .await
            .unwrap();
        let next = Successor {
            token_hash: format!("{hash}-next"),
            client_id: client.into(),
            now,
            expires_at: 2_000,
        };
        assert!(matches!(
            store
                .rotate_refresh_token(hash, Some(next))
                .await
                .unwrap()
                .token,
            Consumed::Fresh(_)
        ));
        let stored = store.get_refresh_token(&format!("{hash}-next")).await;
        assert_eq!(stored.unwrap(), None, "{hash}");
    }
    // Many rotations at once (SQLite gathers them into shared commits): each is answered
    // with its own token and its own successor is stored.
    for i in 0..64 {
        store
            .create_refresh_token(&refresh(&format!("m{i}"), "g1", "app", 1_000))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let next = Successor {
                    token_hash: format!("m{i}-next"),
                    client_id: "app".into(),
                    now: 0,
                    expires_at: 2_000,
                };
                store
                    .rotate_refresh_token(&format!("m{i}"), Some(next))
                    .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap().unwrap().token {
            Consumed::Fresh(old) => assert_eq!(old.token_hash, format!("m{i}")),
            other => panic!("m{i}: {other:?}"),
        }
        let next = store.get_refresh_token(&format!("m{i}-next")).await;
        assert_eq!(next.unwrap().map(|t| t.expires_at), Some(2_000));
    }
}

/// Rotations started together share commits (`rotation_batch`): six of one token, and one
/// each of two fresh tokens, a used one, an unknown one, one of another client and an expired
/// one, all at once. Each is answered as it would be alone: one of the six wins, the others
/// are replays; only fresh tokens of the rotating client that have not expired get their
/// successor.
/// More rotations than one batch holds, every token presented twice, all at once: on
/// PostgreSQL several batches commit at the same time (`CommitRotations::COMMITS_IN_FLIGHT`),
/// and the two presentations of a token may fall in two of them.
async fn batches_committing_at_once_spend_each_token_once(db: &TestDb) {
    const TOKENS: usize = 300;
    let store = Arc::clone(&db.store);
    store.create_grant(&grant("g1", "app")).await.unwrap();
    for t in 0..TOKENS {
        store
            .create_refresh_token(&refresh(&format!("t{t:03}"), "g1", "app", 1_000))
            .await
            .unwrap();
    }
    // The second presentations in the opposite order, so that batches meet rows both ways.
    let order = (0..TOKENS)
        .map(|t| (t, 0))
        .chain((0..TOKENS).rev().map(|t| (t, 1)));
    let tasks: Vec<_> = order
        .map(|(t, copy)| {
            let store = Arc::clone(&store);
            let next = Successor {
                token_hash: format!("t{t:03}-{copy}"),
                client_id: "app".into(),
                now: 0,
                expires_at: 2_000,
            };
            tokio::spawn(async move {
                let rotated = store
                    .rotate_refresh_token(&format!("t{t:03}"), Some(next))
                    .await;
                (t, copy, rotated)
            })
        })
        .collect();
    let mut fresh = vec![Vec::new(); TOKENS];
    for task in tasks {
        let (t, copy, rotated) = task.await.unwrap();
        match rotated.unwrap().token {
            Consumed::Fresh(old) => {
                assert_eq!(old.token_hash, format!("t{t:03}"));
                fresh[t].push(copy);
            }
            Consumed::Replayed(old) => assert_eq!(old.token_hash, format!("t{t:03}")),
            Consumed::Missing => panic!("t{t:03} vanished"),
        }
    }
    for (t, winners) in fresh.iter().enumerate() {
        assert_eq!(winners.len(), 1, "t{t:03} spent by {winners:?}");
        for copy in 0..2 {
            let stored = store
                .get_refresh_token(&format!("t{t:03}-{copy}"))
                .await
                .unwrap();
            assert_eq!(stored.is_some(), winners == &[copy], "t{t:03}-{copy}");
        }
    }
}

async fn rotations_sharing_commits_are_answered_as_alone(db: &TestDb) {
    let store = Arc::clone(&db.store);
    store.create_grant(&grant("g1", "app")).await.unwrap();
    for hash in ["same", "a", "b", "used", "theirs", "old"] {
        store
            .create_refresh_token(&refresh(hash, "g1", "app", 1_000))
            .await
            .unwrap();
    }
    assert!(matches!(
        store.use_refresh_token("used").await.unwrap(),
        Consumed::Fresh(_)
    ));
    // (presented, its successor's hash, the rotating client, now)
    let mut plan: Vec<(String, String, &str, i64)> = (0..6)
        .map(|i| ("same".into(), format!("same-{i}"), "app", 0))
        .collect();
    for (hash, client, now) in [
        ("a", "app", 0),
        ("b", "app", 0),
        ("used", "app", 0),
        ("nope", "app", 0),
        ("theirs", "other", 0),
        ("old", "app", 1_000),
    ] {
        plan.push((hash.into(), format!("{hash}-next"), client, now));
    }
    let tasks: Vec<_> = plan
        .iter()
        .map(|(hash, next, client, now)| {
            let store = Arc::clone(&store);
            let (hash, next) = (
                hash.clone(),
                Successor {
                    token_hash: next.clone(),
                    client_id: (*client).into(),
                    now: *now,
                    expires_at: 2_000,
                },
            );
            tokio::spawn(async move { store.rotate_refresh_token(&hash, Some(next)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap().token);
    }
    let same_winners: Vec<usize> = (0..6)
        .filter(|&i| matches!(outcomes[i], Consumed::Fresh(_)))
        .collect();
    assert_eq!(same_winners.len(), 1, "{outcomes:?}");
    for (i, outcome) in outcomes.iter().enumerate().take(6) {
        assert!(
            matches!(outcome, Consumed::Fresh(t) | Consumed::Replayed(t) if t.token_hash == "same"),
            "{outcome:?}"
        );
        let stored = store.get_refresh_token(&format!("same-{i}")).await.unwrap();
        assert_eq!(stored.is_some(), same_winners == [i], "same-{i}");
    }
    let rest: Vec<(&str, &Consumed<RefreshToken>)> = plan[6..]
        .iter()
        .map(|(hash, ..)| hash.as_str())
        .zip(&outcomes[6..])
        .collect();
    for (hash, outcome) in rest {
        let expected_successor = matches!(hash, "a" | "b");
        match (hash, outcome) {
            ("nope", Consumed::Missing) | ("used", Consumed::Replayed(_)) => {}
            ("a" | "b" | "theirs" | "old", Consumed::Fresh(t)) => assert_eq!(t.token_hash, hash),
            other => panic!("{other:?}"),
        }
        let next = store
            .get_refresh_token(&format!("{hash}-next"))
            .await
            .unwrap();
        assert_eq!(next.is_some(), expected_successor, "{hash}-next");
        if let Some(next) = next {
            assert_eq!(
                next,
                RefreshToken {
                    token_hash: format!("{hash}-next"),
                    expires_at: 2_000,
                    ..refresh(hash, "g1", "app", 1_000)
                }
            );
            assert!(matches!(
                store
                    .rotate_refresh_token(&next.token_hash, None)
                    .await
                    .unwrap()
                    .token,
                Consumed::Fresh(_)
            ));
        }
        if hash != "nope" {
            assert!(store.refresh_token_used(hash).await.unwrap(), "{hash}");
        }
    }
    // A key no row can hold (PostgreSQL text has no NUL) is unknown, and spoils no batch.
    assert_eq!(
        store
            .rotate_refresh_token("nul\0key", None)
            .await
            .unwrap()
            .token,
        Consumed::Missing
    );
}

async fn revoke_grant_kills_its_refresh_tokens(db: &TestDb) {
    let store = &db.store;
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
    // Dead, not merely spent: the used one is no longer reported as used (which would revoke
    // the grant again as a replay), and neither rotates, alone or in a batch.
    assert!(!store.refresh_token_used("r1").await.unwrap());
    let rotated = store
        .rotate_refresh_token(
            "r2",
            Some(Successor {
                token_hash: "r2-next".into(),
                client_id: "app".into(),
                now: 0,
                expires_at: 2_000,
            }),
        )
        .await
        .unwrap();
    assert_eq!(rotated.token, Consumed::Missing);
    assert!(store.get_refresh_token("r2-next").await.unwrap().is_none());
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

/// Whichever of the two commits first, the family is dead afterwards: a successor stored by a
/// rotation that won the race belongs to the revoked grant too.
async fn a_rotation_racing_a_revocation_leaves_no_live_token(db: &TestDb) {
    let store = Arc::clone(&db.store);
    for round in 0..20 {
        let grant_id = format!("race-{round}");
        let token = format!("race-{round}-token");
        let next = format!("race-{round}-next");
        store.create_grant(&grant(&grant_id, "app")).await.unwrap();
        store
            .create_refresh_token(&refresh(&token, &grant_id, "app", 1_000))
            .await
            .unwrap();
        let rotation = {
            let store = Arc::clone(&store);
            let successor = Successor {
                token_hash: next.clone(),
                client_id: "app".into(),
                now: 0,
                expires_at: 2_000,
            };
            tokio::spawn(async move { store.rotate_refresh_token(&token, Some(successor)).await })
        };
        let revocation = {
            let store = Arc::clone(&store);
            let grant_id = grant_id.clone();
            tokio::spawn(async move { store.revoke_grant(&grant_id).await })
        };
        rotation.await.unwrap().unwrap();
        assert!(revocation.await.unwrap().unwrap());
        assert!(
            store.get_refresh_token(&next).await.unwrap().is_none(),
            "round {round}"
        );
        assert_eq!(
            store.rotate_refresh_token(&next, None).await.unwrap().token,
            Consumed::Missing,
            "round {round}"
        );
    }
}

async fn delete_app_cascades(db: &TestDb) {
    let store = &db.store;
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

async fn consent_is_a_union(db: &TestDb) {
    let store = &db.store;
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

async fn purge_expired_removes_expired_rows_only(db: &TestDb) {
    let store = &db.store;
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

async fn data_survives_reopen(db: &TestDb) {
    {
        let store = db.open().await;
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
        let store = db.open().await;
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
    let store = db.open().await;
    assert_eq!(store.list_users(None).await.unwrap().len(), 1);
}

async fn update_app_roundtrip(db: &TestDb) {
    let store = &db.store;
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
        pkce_optional: true,
        backchannel_logout_uri: None,
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

async fn set_user_active_toggles(db: &TestDb) {
    let store = &db.store;
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

async fn delete_user_cascades(db: &TestDb) {
    let store = &db.store;
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

async fn api_token_lifecycle(db: &TestDb) {
    let store = &db.store;
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

async fn otp_right_code_is_valid_once(db: &TestDb) {
    let store = &db.store;
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

async fn otp_wrong_codes_count_down_then_exhaust(db: &TestDb) {
    let store = &db.store;
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

async fn otp_expired_is_deleted(db: &TestDb) {
    let store = &db.store;
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

async fn put_otp_replaces_pending_code(db: &TestDb) {
    let store = &db.store;
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
    assert_eq!(db.count("SELECT COUNT(*) FROM otp_codes").await, 0);
}

async fn concurrent_otp_checks_yield_exactly_one_valid(db: &TestDb) {
    let store = Arc::clone(&db.store);
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

async fn concurrent_wrong_otp_checks_are_all_counted(db: &TestDb) {
    let store = Arc::clone(&db.store);
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

async fn contact_lifecycle(db: &TestDb) {
    let store = &db.store;
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

async fn purge_expired_removes_expired_otp_codes_and_contacts(db: &TestDb) {
    let store = &db.store;
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

async fn corrupt_list_is_reported(db: &TestDb) {
    let store = &db.store;
    store
        .create_user(&user("u1", "default", "alice@example.com"))
        .await
        .unwrap();
    db.execute("UPDATE users SET roles = 'not json' WHERE id = 'u1'")
        .await;
    let err = store.get_user("u1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

async fn listing_order_is_bytewise(db: &TestDb) {
    let store = &db.store;
    // Bytewise: "B" < "a" and "a-b" < "a_b"; a locale's collation says the opposite of both.
    store
        .create_user(&user("u1", "a", "same@example.com"))
        .await
        .unwrap();
    store
        .create_user(&user("u2", "B", "same@example.com"))
        .await
        .unwrap();
    store
        .create_user(&user("u3", "a", "a_b@example.com"))
        .await
        .unwrap();
    store
        .create_user(&user("u4", "a", "a-b@example.com"))
        .await
        .unwrap();
    let id = |u: User| u.id;
    assert_eq!(
        ids(store.list_users(None).await.unwrap(), id),
        strings(&["u4", "u3", "u2", "u1"])
    );
    assert_eq!(
        ids(store.list_users(Some("a")).await.unwrap(), id),
        strings(&["u4", "u3", "u1"])
    );
    store
        .save_consent("u1", "app", &strings(&["alpha", "Zeta", "_x", "-x"]))
        .await
        .unwrap();
    assert_eq!(
        store.get_consent("u1", "app").await.unwrap(),
        strings(&["-x", "Zeta", "_x", "alpha"])
    );
    // Ties in creation time: insertion order, whatever the ids.
    store.create_app(&app("zz", "t", 5)).await.unwrap();
    store.create_app(&app("aa", "t", 5)).await.unwrap();
    store.create_app(&app("mm", "t", 1)).await.unwrap();
    assert_eq!(
        ids(store.list_apps(Some("t")).await.unwrap(), |a| a.client_id),
        strings(&["mm", "zz", "aa"])
    );
}

async fn concurrent_consents_are_all_kept(db: &TestDb) {
    let store = Arc::clone(&db.store);
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let scopes = strings(&["openid", "email", &format!("s{n}")]);
                store.save_consent("u1", "app", &scopes).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let got = store.get_consent("u1", "app").await.unwrap();
    assert_eq!(
        got,
        strings(&[
            "email", "openid", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"
        ])
    );
}

async fn update_user_roundtrip(db: &TestDb) {
    let store = &db.store;
    let original = user("u1", "t1", "alice@example.com");
    store.create_user(&original).await.unwrap();
    store
        .create_user(&user("u2", "t1", "bob@example.com"))
        .await
        .unwrap();

    let changed = User {
        id: "u1".into(),
        // Not editable: ignored by the update.
        tenant: "elsewhere".into(),
        email: "mallory@example.com".into(),
        created_at: 999,
        name: "Alice Liddell".into(),
        picture: None,
        groups: strings(&["wonderland"]),
        roles: vec![],
        password_hash: None,
        active: false,
    };
    assert!(store.update_user(&changed).await.unwrap());
    assert_eq!(
        store.get_user("u1").await.unwrap().unwrap(),
        User {
            tenant: "t1".into(),
            email: "alice@example.com".into(),
            created_at: original.created_at,
            ..changed.clone()
        }
    );
    assert!(
        store
            .find_user_by_email("t1", "mallory@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // Back again, including a picture and a password hash set.
    assert!(store.update_user(&original).await.unwrap());
    assert_eq!(store.get_user("u1").await.unwrap().unwrap(), original);
    // Other users untouched; unknown users report false and are not created.
    assert_eq!(
        store.get_user("u2").await.unwrap().unwrap(),
        user("u2", "t1", "bob@example.com")
    );
    let unknown = User {
        id: "nope".into(),
        ..changed
    };
    assert!(!store.update_user(&unknown).await.unwrap());
    assert!(store.get_user("nope").await.unwrap().is_none());
}

async fn identity_links_are_replaced(db: &TestDb) {
    let store = &db.store;
    assert_eq!(
        store.find_identity_link("google", "sub-1").await.unwrap(),
        None
    );
    store
        .link_identity("google", "sub-1", "u1", 100)
        .await
        .unwrap();
    assert_eq!(
        store.find_identity_link("google", "sub-1").await.unwrap(),
        Some("u1".to_string())
    );
    // Scoped by provider and subject.
    assert_eq!(
        store.find_identity_link("entra", "sub-1").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_identity_link("google", "sub-2").await.unwrap(),
        None
    );
    // Linking the subject again replaces the link.
    store
        .link_identity("google", "sub-1", "u2", 200)
        .await
        .unwrap();
    assert_eq!(
        store.find_identity_link("google", "sub-1").await.unwrap(),
        Some("u2".to_string())
    );
    store
        .link_identity("entra", "sub-1", "u3", 300)
        .await
        .unwrap();
    assert_eq!(
        store.find_identity_link("entra", "sub-1").await.unwrap(),
        Some("u3".to_string())
    );
    assert_eq!(
        store.find_identity_link("google", "sub-1").await.unwrap(),
        Some("u2".to_string())
    );
}

fn idp_session(hash: &str, idp: &str, sid: Option<&str>, subject: &str) -> IdpSession {
    IdpSession {
        session_hash: hash.into(),
        idp: idp.into(),
        sid: sid.map(Into::into),
        subject: subject.into(),
        id_token: format!("id-token-{hash}"),
        expires_at: 1_000,
    }
}

async fn logout_targets_are_the_apps_granted_in_a_session(db: &TestDb) {
    let store = &db.store;
    let no_uri = App {
        backchannel_logout_uri: None,
        ..app("plain", "default", 2)
    };
    let inactive = App {
        active: false,
        ..app("off", "default", 3)
    };
    for a in [
        app("told", "default", 1),
        no_uri,
        inactive,
        app("elsewhere", "default", 4),
    ] {
        store.create_app(&a).await.unwrap();
    }
    // Two grants of one app in the session (one revoked), one each of the others; the fourth
    // app was granted in another session, and a grant without a session names none.
    for (id, client, sid) in [
        ("g1", "told", Some("sid-s1")),
        ("g2", "told", Some("sid-s1")),
        ("g3", "plain", Some("sid-s1")),
        ("g4", "off", Some("sid-s1")),
        ("g5", "elsewhere", Some("sid-s2")),
        ("g6", "elsewhere", None),
    ] {
        store
            .create_grant(&Grant {
                sid: sid.map(str::to_string),
                ..grant(id, client)
            })
            .await
            .unwrap();
    }
    store.revoke_grant("g2").await.unwrap();
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().sid.as_deref(),
        Some("sid-s1")
    );
    let ids = |apps: Vec<App>| -> Vec<String> { apps.into_iter().map(|a| a.client_id).collect() };
    assert_eq!(
        ids(store.logout_targets("sid-s1").await.unwrap()),
        strings(&["told"])
    );
    assert_eq!(
        ids(store.logout_targets("sid-s2").await.unwrap()),
        strings(&["elsewhere"])
    );
    for nothing in ["", "sid-none", "sid\0"] {
        assert!(
            store.logout_targets(nothing).await.unwrap().is_empty(),
            "{nothing:?}"
        );
    }
}

async fn idp_sessions_end_by_sid_or_subject(db: &TestDb) {
    let store = &db.store;
    let records = [
        idp_session("s1", "google", Some("A"), "X"),
        idp_session("s2", "google", Some("A"), "X"),
        idp_session("s3", "google", Some("B"), "X"),
        idp_session("s4", "google", None, "Y"),
        idp_session("s5", "entra", Some("A"), "X"),
    ];
    for record in &records {
        store
            .create_session(&session(&record.session_hash, 1_000))
            .await
            .unwrap();
        store.create_idp_session(record).await.unwrap();
    }
    assert_eq!(
        store.get_idp_session("s4").await.unwrap().unwrap(),
        records[3]
    );
    assert!(store.get_idp_session("nope").await.unwrap().is_none());
    // Recording the same session again replaces the record.
    let renewed = IdpSession {
        id_token: "renewed".into(),
        expires_at: 2_000,
        ..records[0].clone()
    };
    store.create_idp_session(&renewed).await.unwrap();
    assert_eq!(store.get_idp_session("s1").await.unwrap().unwrap(), renewed);

    // By sid (the subject is then ignored): only that provider's sessions of that sid.
    let mut ended = store
        .end_idp_sessions("google", Some("A"), Some("Y"))
        .await
        .unwrap();
    ended.sort_by(|a, b| a.id_hash.cmp(&b.id_hash));
    // Each with what back-channel logout tells the apps.
    assert_eq!(
        ended,
        ["s1", "s2"]
            .map(|h| EndedSession {
                id_hash: h.into(),
                user_id: "u1".into(),
                sid: format!("sid-{h}"),
            })
            .to_vec()
    );
    for gone in ["s1", "s2"] {
        assert!(store.get_session(gone).await.unwrap().is_none(), "{gone}");
        assert!(
            store.get_idp_session(gone).await.unwrap().is_none(),
            "{gone}"
        );
    }
    for kept in ["s3", "s4", "s5"] {
        assert!(store.get_session(kept).await.unwrap().is_some(), "{kept}");
        assert!(
            store.get_idp_session(kept).await.unwrap().is_some(),
            "{kept}"
        );
    }
    assert!(
        store
            .end_idp_sessions("google", Some("A"), None)
            .await
            .unwrap()
            .is_empty()
    );
    // Neither sid nor subject: nothing.
    assert!(
        store
            .end_idp_sessions("google", None, None)
            .await
            .unwrap()
            .is_empty()
    );
    // By subject.
    let hashes = |ended: Vec<EndedSession>| -> Vec<String> {
        ended.into_iter().map(|e| e.id_hash).collect()
    };
    assert_eq!(
        hashes(
            store
                .end_idp_sessions("google", None, Some("X"))
                .await
                .unwrap()
        ),
        strings(&["s3"])
    );
    assert!(store.get_session("s3").await.unwrap().is_none());
    assert_eq!(
        hashes(
            store
                .end_idp_sessions("google", None, Some("Y"))
                .await
                .unwrap()
        ),
        strings(&["s4"])
    );
    assert!(store.get_session("s4").await.unwrap().is_none());
    // The other provider's session is still there.
    assert!(store.get_session("s5").await.unwrap().is_some());
    assert!(store.get_idp_session("s5").await.unwrap().is_some());

    // Expired provider sessions are purged with the rest.
    store
        .create_idp_session(&IdpSession {
            expires_at: 100,
            ..idp_session("s6", "google", Some("C"), "Z")
        })
        .await
        .unwrap();
    store.purge_expired(200).await.unwrap();
    assert!(store.get_idp_session("s6").await.unwrap().is_none());
    assert!(store.get_idp_session("s5").await.unwrap().is_some());
}

/// PostgreSQL text cannot hold NUL: a key with one must find nothing, as in SQLite, rather
/// than fail.
async fn keys_with_nul_find_nothing(db: &TestDb) {
    let store = &db.store;
    store
        .create_user(&user("u1", "default", "alice@example.com"))
        .await
        .unwrap();
    store.create_app(&app("a1", "default", 1)).await.unwrap();
    store.create_session(&session("s1", 1_000)).await.unwrap();
    store.create_code(&code("c1", "a1", 1_000)).await.unwrap();
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
        .create_api_token(&api_token("t1", "u1", "default", 1))
        .await
        .unwrap();
    store
        .put_otp(&otp("alice@example.com", "x", 1_000))
        .await
        .unwrap();
    store
        .create_contact(&contact("k1", "default", 1, 1_000))
        .await
        .unwrap();
    store.link_identity("idp", "sub", "u1", 1).await.unwrap();
    store
        .create_idp_session(&idp_session("s1", "idp", Some("sid"), "sub"))
        .await
        .unwrap();

    let z = "\0";
    assert!(store.get_user("u1\0").await.unwrap().is_none());
    assert!(
        store
            .find_user_by_email("default", "alice@example.com\0")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_user_by_email("default\0", "alice@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.list_users(Some(z)).await.unwrap().is_empty());
    assert!(store.get_app("a1\0").await.unwrap().is_none());
    assert!(store.list_apps(Some(z)).await.unwrap().is_empty());
    assert!(!store.set_app_active("a1\0", false).await.unwrap());
    assert!(!store.delete_app("a1\0").await.unwrap());
    let app_nul = App {
        client_id: "a1\0".into(),
        ..app("a1", "default", 1)
    };
    assert!(!store.update_app(&app_nul).await.unwrap());
    assert!(store.get_session("s1\0").await.unwrap().is_none());
    store.touch_session("s1\0", 5).await.unwrap();
    assert!(!store.delete_session("s1\0").await.unwrap());
    assert_eq!(store.consume_code("c1\0").await.unwrap(), Consumed::Missing);
    assert!(store.get_grant("g1\0").await.unwrap().is_none());
    assert!(!store.revoke_grant("g1\0").await.unwrap());
    assert_eq!(
        store.use_refresh_token("r1\0").await.unwrap(),
        Consumed::Missing
    );
    assert!(store.get_refresh_token("r1\0").await.unwrap().is_none());
    assert!(!store.refresh_token_used("r1\0").await.unwrap());
    assert!(store.get_consent("u1\0", "a1").await.unwrap().is_empty());
    assert!(!store.set_user_active("u1\0", false).await.unwrap());
    let user_nul = User {
        id: "u1\0".into(),
        ..user("u1", "default", "alice@example.com")
    };
    assert!(!store.update_user(&user_nul).await.unwrap());
    assert!(!store.delete_user("u1\0").await.unwrap());
    assert!(store.find_api_token("hash-t1\0").await.unwrap().is_none());
    assert!(store.get_api_token("t1\0").await.unwrap().is_none());
    assert!(
        store
            .list_api_tokens(Some(z), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_api_tokens(None, Some(z))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.revoke_api_token("t1\0", 5).await.unwrap());
    store.touch_api_token("t1\0", 5).await.unwrap();
    assert_eq!(
        store
            .check_otp("default", "alice@example.com\0", "x", 0, 5)
            .await
            .unwrap(),
        OtpCheck::Missing
    );
    assert!(store.find_contact("hh-k1\0").await.unwrap().is_none());
    assert!(store.list_contacts(Some(z)).await.unwrap().is_empty());
    assert!(!store.revoke_contact("k1\0").await.unwrap());
    assert_eq!(
        store.find_identity_link("idp", "sub\0").await.unwrap(),
        None
    );
    assert!(store.get_idp_session("s1\0").await.unwrap().is_none());
    assert!(
        store
            .end_idp_sessions("idp", Some("sid\0"), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .end_idp_sessions("idp", None, Some("sub\0"))
            .await
            .unwrap()
            .is_empty()
    );

    // Nothing real was touched.
    assert!(store.get_user("u1").await.unwrap().unwrap().active);
    assert!(store.get_app("a1").await.unwrap().unwrap().active);
    assert_eq!(
        store.get_session("s1").await.unwrap().unwrap().last_seen,
        100
    );
    assert!(matches!(
        store.consume_code("c1").await.unwrap(),
        Consumed::Fresh(_)
    ));
    assert!(matches!(
        store.use_refresh_token("r1").await.unwrap(),
        Consumed::Fresh(_)
    ));
    assert!(!store.get_grant("g1").await.unwrap().unwrap().revoked);
    let t1 = store.get_api_token("t1").await.unwrap().unwrap();
    assert_eq!((t1.last_used_at, t1.revoked_at), (None, None));
    assert!(!store.find_contact("hh-k1").await.unwrap().unwrap().revoked);
    assert!(store.get_idp_session("s1").await.unwrap().is_some());
    assert_eq!(
        store
            .check_otp("default", "alice@example.com", "x", 0, 5)
            .await
            .unwrap(),
        OtpCheck::Valid
    );
}

const FAILURES: FailurePolicy = FailurePolicy {
    window: 600,
    limit: 3,
    ban: 60,
};

/// The stored row of one subject, if any.
async fn failures_of(store: &dyn Store, subject: &str) -> Option<LoginFailures> {
    let mut rows = store.login_failures(&[subject.to_string()]).await.unwrap();
    assert!(rows.len() <= 1);
    rows.pop()
}

async fn login_failures_count_up_to_a_ban(db: &TestDb) {
    let store = &db.store;
    assert!(
        store
            .login_failures(&["account:a".into(), "ip:1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .record_login_failure("account:a", 100, &FAILURES)
            .await
            .unwrap(),
        None
    );
    store
        .record_login_failure("ip:1", 100, &FAILURES)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_login_failure("account:a", 101, &FAILURES)
            .await
            .unwrap(),
        None
    );
    let a = failures_of(&**store, "account:a").await.unwrap();
    assert_eq!((a.failures, a.window_start, a.banned_until), (2, 100, None));
    assert!(!a.banned_at(101));

    // The third failure in the window starts the ban and a fresh count.
    assert_eq!(
        store
            .record_login_failure("account:a", 102, &FAILURES)
            .await
            .unwrap(),
        Some(162)
    );
    let a = failures_of(&**store, "account:a").await.unwrap();
    assert_eq!((a.failures, a.banned_until), (0, Some(162)));
    assert!(a.banned_at(161) && !a.banned_at(162));

    // Failures during the ban are counted but do not start another one.
    for t in 103..110 {
        assert_eq!(
            store
                .record_login_failure("account:a", t, &FAILURES)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        failures_of(&**store, "account:a")
            .await
            .unwrap()
            .banned_until,
        Some(162)
    );

    // Both subjects in one read; the other one is untouched.
    let mut both = store
        .login_failures(&["ip:1".into(), "account:a".into(), "account:b".into()])
        .await
        .unwrap();
    both.sort_by(|x, y| x.subject.cmp(&y.subject));
    assert_eq!(
        both.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>(),
        ["account:a", "ip:1"]
    );
    assert_eq!((both[1].failures, both[1].banned_until), (1, None));
}

async fn login_failures_window_restarts_the_count(db: &TestDb) {
    let store = &db.store;
    for t in [100, 200] {
        store
            .record_login_failure("account:a", t, &FAILURES)
            .await
            .unwrap();
    }
    // 700 is past the window that started at 100: this failure starts a new window.
    assert_eq!(
        store
            .record_login_failure("account:a", 700, &FAILURES)
            .await
            .unwrap(),
        None
    );
    let a = failures_of(&**store, "account:a").await.unwrap();
    assert_eq!((a.failures, a.window_start), (1, 700));
    store
        .record_login_failure("account:a", 701, &FAILURES)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_login_failure("account:a", 702, &FAILURES)
            .await
            .unwrap(),
        Some(762)
    );
}

async fn clearing_login_failures_keeps_a_ban_in_force(db: &TestDb) {
    let store = &db.store;
    store
        .record_login_failure("account:a", 100, &FAILURES)
        .await
        .unwrap();
    store.clear_login_failures("account:a", 101).await.unwrap();
    assert_eq!(failures_of(&**store, "account:a").await, None);

    for t in 100..103 {
        store
            .record_login_failure("account:b", t, &FAILURES)
            .await
            .unwrap();
    }
    store.clear_login_failures("account:b", 150).await.unwrap();
    assert_eq!(
        failures_of(&**store, "account:b")
            .await
            .unwrap()
            .banned_until,
        Some(162),
        "a ban in force is not lifted"
    );
    store.clear_login_failures("account:b", 162).await.unwrap();
    assert_eq!(failures_of(&**store, "account:b").await, None);
    // Clearing what is not there is fine.
    store.clear_login_failures("account:c", 1).await.unwrap();
}

async fn concurrent_login_failures_are_all_counted_and_ban_once(db: &TestDb) {
    let store = Arc::clone(&db.store);
    let policy = FailurePolicy {
        window: 600,
        limit: 10,
        ban: 60,
    };
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.record_login_failure("ip:9", 500, &policy).await
            })
        })
        .collect();
    let mut bans = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            bans += 1;
        }
    }
    assert_eq!(bans, 1, "exactly one failure starts the ban");
    let row = failures_of(&*store, "ip:9").await.unwrap();
    // Ten led to the ban (which restarts the count); the other six were counted after it.
    assert_eq!((row.failures, row.banned_until), (6, Some(560)));
}

async fn purge_expired_removes_stale_login_failures(db: &TestDb) {
    let store = &db.store;
    // Window ends at 700.
    store
        .record_login_failure("ip:window", 100, &FAILURES)
        .await
        .unwrap();
    // Banned until 1_060, window ends at 1_600.
    for _ in 0..3 {
        store
            .record_login_failure("ip:banned", 1_000, &FAILURES)
            .await
            .unwrap();
    }
    let short = FailurePolicy {
        window: 10,
        limit: 1,
        ban: 2_000,
    };
    // Window ends at 1_010, banned until 3_000: the ban keeps it.
    store
        .record_login_failure("ip:long-ban", 1_000, &short)
        .await
        .unwrap();
    store.purge_expired(700).await.unwrap();
    assert_eq!(failures_of(&**store, "ip:window").await, None);
    assert!(failures_of(&**store, "ip:banned").await.is_some());
    store.purge_expired(1_600).await.unwrap();
    assert_eq!(failures_of(&**store, "ip:banned").await, None);
    assert!(failures_of(&**store, "ip:long-ban").await.is_some());
    store.purge_expired(3_000).await.unwrap();
    assert_eq!(failures_of(&**store, "ip:long-ban").await, None);
}

async fn totp_steps_are_accepted_once_and_confirm(db: &TestDb) {
    let store = &db.store;
    store.put_totp("u1", "sealed-1", 100).await.unwrap();
    let t = store.get_totp("u1").await.unwrap().unwrap();
    assert_eq!(
        (t.confirmed, t.last_step, t.secret_sealed.as_str()),
        (false, 0, "sealed-1")
    );
    // A restarted enrolment replaces an unconfirmed secret.
    store.put_totp("u1", "sealed-2", 200).await.unwrap();
    assert!(store.accept_totp_step("u1", 50).await.unwrap());
    let t = store.get_totp("u1").await.unwrap().unwrap();
    assert_eq!(
        (t.confirmed, t.last_step, t.secret_sealed.as_str()),
        (true, 50, "sealed-2")
    );
    // The same step, or an earlier one, is refused; a later one passes.
    assert!(!store.accept_totp_step("u1", 50).await.unwrap());
    assert!(!store.accept_totp_step("u1", 49).await.unwrap());
    assert!(store.accept_totp_step("u1", 51).await.unwrap());
    // A confirmed factor is not replaced by a new enrolment.
    store.put_totp("u1", "sealed-3", 300).await.unwrap();
    let t = store.get_totp("u1").await.unwrap().unwrap();
    assert_eq!((t.confirmed, t.secret_sealed.as_str()), (true, "sealed-2"));
    assert!(store.get_totp("nobody").await.unwrap().is_none());
    assert!(!store.accept_totp_step("nobody", 1).await.unwrap());
    assert!(!store.accept_totp_step("u\0", 1).await.unwrap());
}

async fn recovery_codes_are_single_use_and_replaced(db: &TestDb) {
    let store = &db.store;
    store
        .replace_recovery_codes("u1", &strings(&["h1", "h2", "h3"]))
        .await
        .unwrap();
    assert_eq!(store.count_recovery_codes("u1").await.unwrap(), 3);
    assert!(store.use_recovery_code("u1", "h2").await.unwrap());
    assert!(!store.use_recovery_code("u1", "h2").await.unwrap());
    assert!(!store.use_recovery_code("u2", "h1").await.unwrap());
    assert_eq!(store.count_recovery_codes("u1").await.unwrap(), 2);
    store
        .replace_recovery_codes("u1", &strings(&["h4"]))
        .await
        .unwrap();
    assert!(!store.use_recovery_code("u1", "h1").await.unwrap());
    assert!(store.use_recovery_code("u1", "h4").await.unwrap());
    assert_eq!(store.count_recovery_codes("u1").await.unwrap(), 0);
}

async fn an_administrators_reset_removes_every_factor_of_one_user(db: &TestDb) {
    let store = &db.store;
    for user in ["u1", "u2"] {
        store.put_totp(user, "sealed", 100).await.unwrap();
        store
            .replace_recovery_codes(user, &strings(&[&format!("{user}-h1")]))
            .await
            .unwrap();
    }
    let passkey = |user: &str| PasskeyRecord {
        cred_id: format!("cred-{user}"),
        user_id: user.into(),
        name: "key".into(),
        passkey: "{}".into(),
        created_at: 10,
        last_used: None,
    };
    for user in ["u1", "u2"] {
        store.insert_passkey(&passkey(user)).await.unwrap();
    }
    assert!(store.delete_factors("u1").await.unwrap());
    assert!(store.get_totp("u1").await.unwrap().is_none());
    assert!(store.list_passkeys("u1").await.unwrap().is_empty());
    assert_eq!(store.list_passkeys("u2").await.unwrap().len(), 1);
    assert_eq!(store.count_recovery_codes("u1").await.unwrap(), 0);
    assert!(
        store.get_totp("u2").await.unwrap().is_some(),
        "another user's stay"
    );
    assert_eq!(store.count_recovery_codes("u2").await.unwrap(), 1);
    assert!(!store.delete_factors("u1").await.unwrap(), "nothing left");
    assert!(!store.delete_factors("u\0").await.unwrap());
}

async fn pending_factors_are_taken_once(db: &TestDb) {
    let store = &db.store;
    let p = PendingFactor {
        token_hash: "p1".into(),
        user_id: "u1".into(),
        binding: "b".into(),
        amr: "pwd".into(),
        return_to: "/wiki".into(),
        expires_at: 1_000,
    };
    store.put_pending_factor(&p).await.unwrap();
    assert_eq!(store.take_pending_factor("p1").await.unwrap(), Some(p));
    assert_eq!(store.take_pending_factor("p1").await.unwrap(), None);
    assert_eq!(store.take_pending_factor("p\0").await.unwrap(), None);
}

async fn passkeys_are_the_owners_and_ceremonies_taken_once(db: &TestDb) {
    let store = &db.store;
    let key = |cred: &str, user: &str, at: i64| PasskeyRecord {
        cred_id: cred.into(),
        user_id: user.into(),
        name: format!("key {cred}"),
        passkey: "{}".into(),
        created_at: at,
        last_used: None,
    };
    store.insert_passkey(&key("c2", "u1", 20)).await.unwrap();
    store.insert_passkey(&key("c1", "u1", 10)).await.unwrap();
    store.insert_passkey(&key("c3", "u2", 10)).await.unwrap();
    // A credential id names one credential, whoever registers it again.
    assert!(store.insert_passkey(&key("c3", "u1", 30)).await.is_err());
    let mine = store.list_passkeys("u1").await.unwrap();
    assert_eq!(mine, vec![key("c1", "u1", 10), key("c2", "u1", 20)]);
    assert_eq!(
        store.get_passkey("c3").await.unwrap(),
        Some(key("c3", "u2", 10))
    );
    assert_eq!(store.get_passkey("c4").await.unwrap(), None);
    // Another user's credential is neither used nor removed through this user.
    assert!(
        !store
            .use_passkey("u1", "c3", "{\"n\":1}", 50)
            .await
            .unwrap()
    );
    assert!(!store.delete_passkey("u1", "c3").await.unwrap());
    assert!(
        store
            .use_passkey("u1", "c1", "{\"n\":1}", 50)
            .await
            .unwrap()
    );
    let used = &store.list_passkeys("u1").await.unwrap()[0];
    assert_eq!(
        (used.passkey.as_str(), used.last_used),
        ("{\"n\":1}", Some(50))
    );
    assert!(store.delete_passkey("u1", "c1").await.unwrap());
    assert!(!store.delete_passkey("u1", "c1").await.unwrap());
    assert_eq!(store.list_passkeys("u2").await.unwrap().len(), 1);
    assert!(store.list_passkeys("u\0").await.unwrap().is_empty());

    let c = PasskeyCeremony {
        id_hash: "h1".into(),
        user_id: "u1".into(),
        kind: "register".into(),
        state: "{}".into(),
        expires_at: 1_000,
    };
    store.put_passkey_ceremony(&c).await.unwrap();
    assert_eq!(store.take_passkey_ceremony("h1").await.unwrap(), Some(c));
    assert_eq!(store.take_passkey_ceremony("h1").await.unwrap(), None);
    assert_eq!(store.take_passkey_ceremony("h\0").await.unwrap(), None);
}

fn account_token(hash: &str, kind: AccountTokenKind, user: Option<&str>) -> AccountToken {
    AccountToken {
        token_hash: hash.into(),
        id: format!("id-{hash}"),
        kind,
        tenant: "default".into(),
        email: "Ann@Example.com".into(),
        user_id: user.map(str::to_string),
        groups: vec!["eng".into()],
        roles: vec!["ROLE_USER".into()],
        created_by: Some("admin".into()),
        created_at: 100,
        expires_at: 1_000,
        used: false,
    }
}

async fn account_token_spent_once_then_replayed(db: &TestDb) {
    let store = &db.store;
    let t = account_token("h1", AccountTokenKind::Invite, None);
    store.create_account_token(&t).await.unwrap();
    let stored = store.get_account_token("h1").await.unwrap().unwrap();
    assert_eq!(
        stored.email, "ann@example.com",
        "emails are kept lowercased"
    );
    assert_eq!(
        stored,
        AccountToken {
            email: "ann@example.com".into(),
            ..t.clone()
        }
    );
    let err = store.create_account_token(&t).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let used = AccountToken {
        email: "ann@example.com".into(),
        used: true,
        ..t
    };
    assert_eq!(
        store.spend_account_token("h1").await.unwrap(),
        Consumed::Fresh(used.clone())
    );
    assert_eq!(
        store.spend_account_token("h1").await.unwrap(),
        Consumed::Replayed(used)
    );
    assert_eq!(
        store.spend_account_token("nope").await.unwrap(),
        Consumed::Missing
    );
    assert!(store.get_account_token("nope").await.unwrap().is_none());
}

async fn concurrent_account_token_spends_yield_exactly_one_fresh(db: &TestDb) {
    let store = db.store.clone();
    store
        .create_account_token(&account_token("race", AccountTokenKind::Reset, Some("u1")))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.spend_account_token("race").await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Consumed::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

async fn dropping_account_tokens_leaves_used_and_other_kinds(db: &TestDb) {
    let store = &db.store;
    for t in [
        account_token("r1", AccountTokenKind::Reset, Some("u1")),
        account_token("r2", AccountTokenKind::Reset, Some("u1")),
        account_token("r3", AccountTokenKind::Reset, Some("u2")),
        account_token("i1", AccountTokenKind::Invite, Some("u1")),
    ] {
        store.create_account_token(&t).await.unwrap();
    }
    assert!(matches!(
        store.spend_account_token("r1").await.unwrap(),
        Consumed::Fresh(_)
    ));
    assert_eq!(
        store
            .drop_account_tokens("u1", AccountTokenKind::Reset)
            .await
            .unwrap(),
        1
    );
    assert!(store.get_account_token("r2").await.unwrap().is_none());
    assert!(
        store.get_account_token("r1").await.unwrap().is_some(),
        "the used one stays, so that a second use is seen as a replay"
    );
    assert!(store.get_account_token("r3").await.unwrap().is_some());
    assert!(store.get_account_token("i1").await.unwrap().is_some());
}

async fn account_tokens_expire_and_go_with_their_user(db: &TestDb) {
    let store = &db.store;
    store
        .create_user(&user("u1", "default", "ann@example.com"))
        .await
        .unwrap();
    store
        .create_account_token(&account_token("r1", AccountTokenKind::Reset, Some("u1")))
        .await
        .unwrap();
    store
        .create_account_token(&AccountToken {
            expires_at: 5_000,
            ..account_token("i1", AccountTokenKind::Invite, None)
        })
        .await
        .unwrap();
    store.purge_expired(999).await.unwrap();
    assert!(store.get_account_token("r1").await.unwrap().is_some());
    store.purge_expired(1_000).await.unwrap();
    assert!(store.get_account_token("r1").await.unwrap().is_none());
    assert!(store.get_account_token("i1").await.unwrap().is_some());

    store
        .create_account_token(&AccountToken {
            expires_at: 5_000,
            ..account_token("r2", AccountTokenKind::Reset, Some("u1"))
        })
        .await
        .unwrap();
    assert!(store.delete_user("u1").await.unwrap());
    assert!(store.get_account_token("r2").await.unwrap().is_none());
    assert!(store.get_account_token("i1").await.unwrap().is_some());
}

async fn user_sessions_end_all_but_the_kept_one(db: &TestDb) {
    let store = &db.store;
    for hash in ["a", "b", "c"] {
        store.create_session(&session(hash, 1_000)).await.unwrap();
    }
    store
        .create_session(&SessionRecord {
            user_id: "u2".into(),
            ..session("other", 1_000)
        })
        .await
        .unwrap();
    let mut ended = store.end_user_sessions("u1", Some("b")).await.unwrap();
    ended.sort_by(|x, y| x.id_hash.cmp(&y.id_hash));
    assert_eq!(
        ended,
        ["a", "c"]
            .map(|h| EndedSession {
                id_hash: h.into(),
                user_id: "u1".into(),
                sid: format!("sid-{h}"),
            })
            .to_vec()
    );
    assert!(store.get_session("a").await.unwrap().is_none());
    assert!(store.get_session("b").await.unwrap().is_some());
    assert!(store.get_session("other").await.unwrap().is_some());
    let ended = store.end_user_sessions("u1", None).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert!(store.get_session("b").await.unwrap().is_none());
    assert!(
        store
            .end_user_sessions("u1", None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .end_user_sessions("u\0", None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn rekeyed_session_keeps_its_sid_and_provider_session(db: &TestDb) {
    let store = &db.store;
    let s = session("old", 1_000);
    store.create_session(&s).await.unwrap();
    store
        .create_idp_session(&idp_session("old", "corp", Some("x"), "sub"))
        .await
        .unwrap();
    assert!(store.rekey_session("old", "new").await.unwrap());
    assert!(store.get_session("old").await.unwrap().is_none());
    assert_eq!(
        store.get_session("new").await.unwrap().unwrap(),
        SessionRecord {
            id_hash: "new".into(),
            ..s
        }
    );
    assert!(store.get_idp_session("old").await.unwrap().is_none());
    assert_eq!(
        store.get_idp_session("new").await.unwrap().unwrap().subject,
        "sub"
    );
    assert!(!store.rekey_session("old", "newer").await.unwrap());
}

async fn invitations_are_listed_by_tenant_and_deleted_by_id(db: &TestDb) {
    let store = &db.store;
    let mut newer = account_token("i2", AccountTokenKind::Invite, None);
    newer.created_at = 200;
    for t in [
        account_token("i1", AccountTokenKind::Invite, None),
        newer,
        account_token("r1", AccountTokenKind::Reset, Some("u1")),
        AccountToken {
            tenant: "other".into(),
            ..account_token("i3", AccountTokenKind::Invite, None)
        },
    ] {
        store.create_account_token(&t).await.unwrap();
    }
    let listed = store
        .list_account_tokens("default", AccountTokenKind::Invite)
        .await
        .unwrap();
    let hashes: Vec<&str> = listed.iter().map(|t| t.token_hash.as_str()).collect();
    assert_eq!(
        hashes,
        ["i2", "i1"],
        "this tenant's invitations, newest first"
    );
    assert_eq!(
        store
            .get_account_token_by_id("id-i1")
            .await
            .unwrap()
            .unwrap()
            .token_hash,
        "i1"
    );
    assert!(store.delete_account_token("id-i1").await.unwrap());
    assert!(!store.delete_account_token("id-i1").await.unwrap());
    assert!(
        store
            .get_account_token_by_id("id-i1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_account_token("i1").await.unwrap().is_none());
}

/// The writer task of refresh-token rotations runs on the runtime the store was opened on
/// (under `serve` the background runtime), not on the runtime of the request that starts
/// it, where each statement of a commit would wait behind every request ready to run. Shown
/// by holding the requests' runtime's only thread once a rotation is queued: the rotation is
/// committed all the same.
#[test]
fn rotations_commit_on_the_stores_runtime_while_the_requests_runtime_is_held() {
    use futures_util::FutureExt;
    let home = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new().unwrap();
    let store = home
        .block_on(SqliteStore::open(&dir.path().join("frontdoor.db")))
        .unwrap();
    home.block_on(async {
        store.create_grant(&grant("g1", "app")).await.unwrap();
        let r1 = refresh("r1", "g1", "app", i64::MAX);
        store.create_refresh_token(&r1).await.unwrap();
    });
    let requests = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spent = requests.block_on(async {
        // Queues the rotation; the caller stops waiting for its answer, as a client that went
        // away would.
        assert!(
            store
                .rotate_refresh_token("r1", None)
                .now_or_never()
                .is_none()
        );
        // From here this runtime's only thread is held until the check below is over.
        std::thread::scope(|s| {
            s.spawn(|| {
                home.block_on(async {
                    for _ in 0..1_000 {
                        if store.refresh_token_used("r1").await.unwrap() {
                            return true;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    false
                })
            })
            .join()
            .unwrap()
        })
    });
    assert!(spent, "the rotation waited for the requests' runtime");
}
