//! Two frontdoor nodes on one PostgreSQL store (Debian's server, started by
//! scripts/postgres.sh; its URL in FRONTDOOR_TEST_POSTGRES_URL), sharing their key files.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::harness::*;

const PW: &str = "a long enough password";

/// A fresh database on the test server, dropped when the guard goes.
pub(crate) struct Database {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl Database {
    pub(crate) async fn create() -> Database {
        let admin_url = std::env::var("FRONTDOOR_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!("set FRONTDOOR_TEST_POSTGRES_URL, e.g. export FRONTDOOR_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\" (scripts/test.sh does)")
        });
        let name = format!("fd_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b)
            .to_string();
        Database {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop from a thread with its own runtime: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Retries `check` until it holds or `bound` passes; returns how long it took.
pub(crate) async fn within<F, Fut>(bound: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in through `node`'s login API and creates an Api-Token named `cron` with the JWT it
/// answered: (the JWT, the token, the token's id).
pub(crate) async fn api_token_through_the_api(
    node: &Frontdoor,
    email: &str,
    password: &str,
) -> (String, String, String) {
    let jwt = login_check_token(node, email, password).await;
    let created: serde_json::Value = plain_client()
        .post(node.url("/api/v1/tokens"))
        .bearer_auth(&jwt)
        .json(&serde_json::json!({"name": "cron"}))
        .send()
        .await
        .expect("create token")
        .json()
        .await
        .expect("json");
    let token = created["token"].as_str().expect("token").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    (jwt, token, id)
}

/// Two nodes on one fresh database, sharing key files and a public URL (node A's, as behind a
/// load balancer), each caching credentials for `cache_ttl`.
pub(crate) struct Cluster {
    pub(crate) a: Frontdoor,
    pub(crate) b: Frontdoor,
    pub(crate) upstream: Upstream,
    _keys: tempfile::TempDir,
    pub(crate) db: Database,
}

impl Cluster {
    pub(crate) async fn start(cache_ttl: &str) -> Cluster {
        let db = Database::create().await;
        let upstream = Upstream::start().await;
        let keys = tempfile::tempdir().expect("keys dir");
        // `/reports` takes the tokens of apps granted the `reports` audience.
        let (a, b) = two_nodes(
            Config::single(&upstream)
                .route(Route::new("/reports", &upstream).audience("reports"))
                .shared(&db.url, keys.path())
                .set("session.cache_ttl", cache_ttl),
        )
        .await;
        Cluster {
            a,
            b,
            upstream,
            _keys: keys,
            db,
        }
    }
}

#[tokio::test]
async fn two_nodes_share_sessions_logouts_and_revocations() {
    // Node A generates the shared keys; node B starts on the same files and store.
    let Cluster { a, b, upstream, .. } = &Cluster::start("1s").await;
    a.add_user("ann@example.com", "Ann", "wiki", "ROLE_USER", PW);

    // Log in on node A; the same cookie works on node B.
    let (_client, cookie) = signed_in(a, "/start", "ann@example.com", PW).await;
    let on = |node: &Frontdoor| {
        plain_client()
            .get(node.url("/x"))
            .header("Cookie", format!("frontdoor_session={cookie}"))
    };
    let resp = on(b).send().await.expect("get on B");
    assert_eq!(resp.status(), 200, "a session made on A works on B");
    assert_eq!(
        upstream.last().header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        on(a).send().await.expect("get on A").status(),
        200,
        "A has it warm in its cache"
    );

    // Log out on node B; node A refuses the cookie within the configured bound (cache_ttl 1 s).
    let out = logout_with_cookie(b, &cookie).await;
    assert_eq!(out.status(), 200);
    assert_eq!(
        on(b).send().await.expect("get").status(),
        401,
        "refused at once on B"
    );
    let took = within(Duration::from_secs(3), || async {
        on(a)
            .send()
            .await
            .map(|r| r.status() == 401)
            .unwrap_or(false)
    })
    .await;
    assert!(
        took <= Duration::from_secs(3),
        "refused on A after {took:?}"
    );

    // An API token created through node A's API, used on B, revoked via A: refused on B.
    let (jwt, token, id) = api_token_through_the_api(a, "ann@example.com", PW).await;
    let with_token = |node: &Frontdoor| {
        plain_client()
            .get(node.url("/cron"))
            .header("Api-Token", token.clone())
    };
    assert_eq!(with_token(b).send().await.expect("get").status(), 200);
    // The JWT from A works on B as well (shared signing key).
    let jwt_on_b = plain_client()
        .get(b.url("/y"))
        .bearer_auth(&jwt)
        .send()
        .await
        .expect("get");
    assert_eq!(jwt_on_b.status(), 200);
    let revoked = plain_client()
        .delete(a.url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(&jwt)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    within(Duration::from_secs(3), || async {
        with_token(b)
            .send()
            .await
            .map(|r| r.status() == 401)
            .unwrap_or(false)
    })
    .await;
}
