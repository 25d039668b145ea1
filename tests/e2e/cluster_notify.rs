//! Revocation across two nodes through PostgreSQL LISTEN/NOTIFY. The nodes cache credentials
//! for a minute (`session.cache_ttl: 60s`), so a refusal on the other node within a second can
//! only come from the notification, not from a cache entry expiring.

use std::time::Duration;

use sqlx::Connection;

use crate::cluster::{Cluster, api_token_through_the_api, within};
use crate::harness::*;

const PW: &str = "a long enough password";
/// How fast a revocation must reach the other node.
const AT_ONCE: Duration = Duration::from_secs(1);

impl Cluster {
    /// Signs `email` in on node A; returns the session cookie's value.
    async fn login_on_a(&self, email: &str) -> String {
        signed_in(&self.a, "/start", email, PW).await.1
    }
}

/// Status of a proxied GET on `node` with the session cookie.
async fn with_cookie(node: &Frontdoor, cookie: &str) -> u16 {
    plain_client()
        .get(node.url("/page"))
        .header("Cookie", format!("frontdoor_session={cookie}"))
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

/// Status of a proxied GET on `node` with a header credential.
async fn with_header(node: &Frontdoor, name: &str, value: &str) -> u16 {
    plain_client()
        .get(node.url("/api"))
        .header(name, value)
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

/// Asserts the CLI command succeeded.
#[track_caller]
fn cli_ok(node: &Frontdoor, args: &[&str]) {
    let out = node.cli(args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn logouts_revocations_deactivations_and_removals_reach_the_other_node_at_once() {
    let c = Cluster::start("60s").await;
    let (a, b) = (&c.a, &c.b);
    for (email, name) in [
        ("ann@example.com", "Ann"),
        ("bob@example.com", "Bob"),
        ("carl@example.com", "Carl"),
    ] {
        a.add_user(email, name, "wiki", "ROLE_USER", PW);
    }

    // Logout on B: refused on A, which has the session warm in its cache.
    let ann = c.login_on_a("ann@example.com").await;
    assert_eq!(with_cookie(a, &ann).await, 200);
    assert_eq!(with_cookie(b, &ann).await, 200);
    assert_eq!(logout_with_cookie(b, &ann).await.status(), 200);
    let took = within(AT_ONCE, || async { with_cookie(a, &ann).await == 401 }).await;
    eprintln!("logout on B refused on A after {took:?}");

    // An API token revoked through A's API: refused on B, which has it cached.
    let (jwt, token, id) = api_token_through_the_api(a, "ann@example.com", PW).await;
    assert_eq!(with_header(b, "Api-Token", &token).await, 200);
    let revoked = plain_client()
        .delete(a.url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(&jwt)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    within(AT_ONCE, || async {
        with_header(b, "Api-Token", &token).await == 401
    })
    .await;

    // An app deactivated with the CLI against A's config: its client_credentials token,
    // cached on B, is refused there.
    let (client_id, secret) = a.create_app(&[
        "--name",
        "Reporter",
        "--grant",
        "client_credentials",
        "--audience",
        "reports",
    ]);
    let secret = secret.expect("a confidential app has a secret");
    let issued: serde_json::Value = plain_client()
        .post(a.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let app_jwt = issued["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let on_reports = || async {
        plain_client()
            .get(b.url("/reports/weekly"))
            .bearer_auth(&app_jwt)
            .send()
            .await
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(on_reports().await, 200);
    cli_ok(a, &["apps", "deactivate", &client_id]);
    within(AT_ONCE, || async { on_reports().await == 401 }).await;

    // A user deactivated, another removed: their sessions, warm on B, are refused there.
    let bob = c.login_on_a("bob@example.com").await;
    let carl = c.login_on_a("carl@example.com").await;
    assert_eq!(with_cookie(b, &bob).await, 200);
    assert_eq!(with_cookie(b, &carl).await, 200);
    cli_ok(a, &["users", "deactivate", "--email", "bob@example.com"]);
    within(AT_ONCE, || async { with_cookie(b, &bob).await == 401 }).await;
    // And on A, which hears the same announcement on its own connection: not necessarily
    // before B, so it gets the same bound rather than none.
    within(AT_ONCE, || async { with_cookie(a, &bob).await == 401 }).await;
    assert_eq!(with_cookie(b, &carl).await, 200, "only bob's sessions go");
    cli_ok(a, &["users", "remove", "--email", "carl@example.com"]);
    within(AT_ONCE, || async { with_cookie(b, &carl).await == 401 }).await;
}

#[tokio::test]
async fn the_listener_reconnects_after_losing_its_connection() {
    let c = Cluster::start("60s").await;
    let (a, b) = (&c.a, &c.b);
    a.add_user("ann@example.com", "Ann", "wiki", "ROLE_USER", PW);
    let mut admin = sqlx::PgConnection::connect(&c.db.url)
        .await
        .expect("connect");
    let listeners = "SELECT pid FROM pg_stat_activity \
                     WHERE datname = current_database() AND query ILIKE 'LISTEN%'";
    let before: Vec<i32> = sqlx::query_scalar(listeners)
        .fetch_all(&mut admin)
        .await
        .expect("listeners");
    assert_eq!(before.len(), 2, "one listener per node: {before:?}");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .execute(&mut admin)
    .await
    .expect("terminate the listeners");
    // Both nodes listen again, on new connections.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now: Vec<i32> = sqlx::query_scalar(listeners)
            .fetch_all(&mut admin)
            .await
            .expect("listeners");
        if now.len() == 2 && now.iter().all(|p| !before.contains(p)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the nodes did not listen again: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let ann = c.login_on_a("ann@example.com").await;
    assert_eq!(with_cookie(b, &ann).await, 200);
    assert_eq!(logout_with_cookie(a, &ann).await.status(), 200);
    within(AT_ONCE, || async { with_cookie(b, &ann).await == 401 }).await;
}
