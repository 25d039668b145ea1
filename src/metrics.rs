//! Prometheus metrics, `frontdoor_` prefix, served on the admin listener, with the process
//! collector's `process_*`.
//!
//! One label vocabulary: `code` is an HTTP status, `outcome` the result of whatever the
//! family counts, `route` a route's label. Every family has children from the first scrape
//! (zero-valued, for the label values known at start: the routes and providers of the
//! configuration, the fixed kinds and outcomes), so that dashboards and alerts see a 0
//! rather than no series.

use std::cell::RefCell;
use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rustc_hash::FxHashMap;

/// frontdoor's registry.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
}

/// A gauge without labels, registered.
pub fn gauge(name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
    let _ = REGISTRY.register(Box::new(g.clone()));
    g
}

/// Buckets of the histograms of durations, in seconds.
const SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A histogram without labels.
fn plain_histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
    let _ = REGISTRY.register(Box::new(h.clone()));
    h
}

/// A histogram of durations in seconds, by `labels`.
fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(SECONDS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
    let _ = REGISTRY.register(Box::new(h.clone()));
    h
}

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_http_requests_total",
        "Requests answered, by route, method and HTTP status code.",
        &["route", "method", "code"],
    )
});
static REQUEST_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram(
        "frontdoor_http_request_duration_seconds",
        "Time from request to response, in seconds.",
        &["route"],
    )
});
static UPSTREAM_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram(
        "frontdoor_upstream_duration_seconds",
        "Time spent on the upstream, in seconds.",
        &["route"],
    )
});
static UPSTREAM_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_upstream_failures_total",
        "Proxied requests the upstream did not answer, by route and the code sent instead (502 unreachable or failed, 504 timed out).",
        &["route", "code"],
    )
});
static AUTH_DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_auth_decisions_total",
        "Authentication decisions on proxied routes, by credential kind and outcome.",
        &["kind", "outcome"],
    )
});
static LOGINS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_logins_total",
        "Login attempts, by method and outcome.",
        &["method", "outcome"],
    )
});
static TOKENS_ISSUED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_tokens_issued_total",
        "Tokens issued by the provider, by grant.",
        &["grant"],
    )
});
static REGULATION_BANS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_regulation_bans_total",
        "Sign-in bans started by too many failed sign-ins, by scope (account or ip).",
        &["scope"],
    )
});
static RATE_LIMITED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_rate_limited_total",
        "Requests refused by a per-address rate limit, by endpoint group (token or login).",
        &["endpoint"],
    )
});
static SESSION_CACHE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_session_cache_requests_total",
        "Session cache lookups, by outcome (hit or miss).",
        &["outcome"],
    )
});
static ACTIVE_SESSIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "frontdoor_active_sessions",
        "Sessions not yet expired, in the store.",
    )
});
static CONFIG_RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_config_reloads_total",
        "Configuration reloads (SIGHUP or `frontdoor reload`), by outcome (applied or refused).",
        &["outcome"],
    )
});
static FEDERATION_LIMITED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_federation_claims_limited_total",
        "Claims or answers of upstream identity providers over a configured bound, by provider, claim (sub, name, picture, groups, roles, userinfo, token) and outcome (cut or refused).",
        &["idp", "claim", "outcome"],
    )
});
static BACKCHANNEL_LOGOUT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_backchannel_logout_total",
        "Logout tokens sent to apps' backchannel_logout_uri when a session ended, by outcome (delivered, or failed after the retries).",
        &["outcome"],
    )
});
static ROTATION_BATCH: LazyLock<Histogram> = LazyLock::new(|| {
    plain_histogram(
        "frontdoor_refresh_rotations_per_commit",
        "Refresh-token rotations that shared one durable commit (refresh grants waiting together).",
        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
    )
});
static ROTATION_COMMIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    plain_histogram(
        "frontdoor_refresh_rotation_commit_duration_seconds",
        "Time of one shared commit of refresh-token rotations, from its first statement to durable, in seconds.",
        &SECONDS,
    )
});
static STORE_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "frontdoor_store_up",
        "1 when the store answered its last check (every 15 s, and each /readyz), 0 when it failed.",
    )
});
static REVOCATION_LISTENER_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "frontdoor_revocation_listener_up",
        "1 while the PostgreSQL revocation listener is connected, 0 while it is down; 1 on SQLite, which needs none.",
    )
});
static CONFIG_RELOAD_OK: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "frontdoor_config_last_reload_successful",
        "1 when the last configuration reload was applied (or none was tried), 0 when it was refused.",
    )
});
static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new("frontdoor_build_info", "Build information; always 1."),
        &["version"],
    )
    .unwrap_or_else(|e| unreachable!("static metric: {e}"));
    let _ = REGISTRY.register(Box::new(g.clone()));
    g
});

/// Sign-in methods besides `idp:ID` (one per configured provider, see [`init_config`]).
const LOGIN_METHODS: [&str; 5] = [
    "password",
    "api_password",
    "otp",
    "second_factor",
    "password_change",
];
/// What the provider issues, by grant.
const GRANTS: [&str; 5] = [
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "api_login",
    "api_refresh",
];
/// Credential kinds of the gateway's decisions (`none`: no credential).
const CREDENTIAL_KINDS: [&str; 5] = ["none", "session", "api_token", "bearer", "contact_hash"];
/// Outcomes of the gateway's decisions.
const DECISIONS: [&str; 10] = [
    "allowed",
    "challenge",
    "step_up",
    "bypass",
    "forbidden",
    "read_only",
    "denied",
    "no_rule",
    "invalid",
    "error",
];
/// Claims over a provider's bound, and what was done.
const CLAIMS: [&str; 7] = [
    "sub", "name", "picture", "groups", "roles", "userinfo", "token",
];

/// Registers every family with its fixed children, and the process collector, so that they
/// show from the first scrape.
pub fn init() {
    BUILD_INFO
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    #[cfg(target_os = "linux")]
    {
        let _ = REGISTRY.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
    }
    for kind in CREDENTIAL_KINDS {
        for outcome in DECISIONS {
            AUTH_DECISIONS.with_label_values(&[kind, outcome]);
        }
    }
    for method in LOGIN_METHODS {
        for outcome in ["success", "failure"] {
            LOGINS.with_label_values(&[method, outcome]);
        }
    }
    for grant in GRANTS {
        TOKENS_ISSUED.with_label_values(&[grant]);
    }
    for r in ["hit", "miss"] {
        SESSION_CACHE.with_label_values(&[r]);
    }
    for scope in ["account", "ip"] {
        REGULATION_BANS.with_label_values(&[scope]);
    }
    for endpoint in ["token", "login"] {
        RATE_LIMITED.with_label_values(&[endpoint]);
    }
    LazyLock::force(&ACTIVE_SESSIONS);
    for o in ["applied", "refused"] {
        CONFIG_RELOADS.with_label_values(&[o]);
    }
    CONFIG_RELOAD_OK.set(1);
    LazyLock::force(&ROTATION_BATCH);
    LazyLock::force(&ROTATION_COMMIT_SECONDS);
    STORE_UP.set(1);
    REVOCATION_LISTENER_UP.set(1);
    for o in ["delivered", "failed"] {
        BACKCHANNEL_LOGOUT.with_label_values(&[o]);
    }
    // Families whose labels come from the configuration show with the route of the own
    // endpoints until `init_config` adds the configured ones.
    init_route("frontdoor");
    init_route("none");
}

/// The children of the routes and providers a configuration names (at start and on reload).
pub fn init_config(routes: &[&str], idps: &[&str]) {
    for route in routes {
        init_route(route);
    }
    for idp in idps {
        for outcome in ["success", "failure"] {
            LOGINS.with_label_values(&[&format!("idp:{idp}"), outcome]);
        }
        for claim in CLAIMS {
            for outcome in ["cut", "refused"] {
                FEDERATION_LIMITED.with_label_values(&[idp, claim, outcome]);
            }
        }
    }
}

fn init_route(route: &str) {
    REQUESTS.with_label_values(&[route, "GET", "200"]);
    REQUEST_SECONDS.with_label_values(&[route]);
    if route != "frontdoor" && route != "none" {
        UPSTREAM_SECONDS.with_label_values(&[route]);
        for code in ["502", "504"] {
            UPSTREAM_FAILURES.with_label_values(&[route, code]);
        }
    }
}

/// Bounded label for a method.
pub fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

// Children of the labelled metrics on the request path, looked up once per thread. Every
// `with_label_values` hashes the labels, takes the vector's read lock and clones the child's
// `Arc`: on the proxy path that was five lookups per request, each a few atomic writes to cache
// lines that both worker threads share. A thread's own map costs neither; the children it holds
// are the registry's, so a scrape sees every increment at once. The maps grow with the label
// values seen (routes × methods × statuses), which the registry holds anyway. They hash with
// FxHash, not SipHash: their keys are configured route labels, fixed method names and status
// codes, none of which a client can choose to make them collide.
thread_local! {
    static REQUEST_CHILDREN: RefCell<FxHashMap<String, RouteChildren>> =
        RefCell::new(FxHashMap::default());
    static AUTH_CHILDREN: RefCell<FxHashMap<(&'static str, &'static str), IntCounter>> =
        RefCell::new(FxHashMap::default());
    static CACHE_CHILDREN: [IntCounter; 2] = [
        SESSION_CACHE.with_label_values(&["hit"]),
        SESSION_CACHE.with_label_values(&["miss"]),
    ];
}

/// One route's children: request counters by (method, status) and the two histograms.
struct RouteChildren {
    requests: FxHashMap<(&'static str, u16), IntCounter>,
    seconds: Histogram,
    upstream_seconds: Histogram,
}

fn with_route<T>(route: &str, f: impl FnOnce(&mut RouteChildren) -> T) -> T {
    REQUEST_CHILDREN.with(|cell| {
        let mut map = cell.borrow_mut();
        if let Some(children) = map.get_mut(route) {
            return f(children);
        }
        let children = map.entry(route.to_string()).or_insert(RouteChildren {
            requests: FxHashMap::default(),
            seconds: REQUEST_SECONDS.with_label_values(&[route]),
            upstream_seconds: UPSTREAM_SECONDS.with_label_values(&[route]),
        });
        f(children)
    })
}

/// A request answered.
pub fn request(route: &str, method: &'static str, status: u16, seconds: f64) {
    with_route(route, |c| {
        c.requests
            .entry((method, status))
            .or_insert_with(|| {
                let mut buf = itoa::Buffer::new();
                REQUESTS.with_label_values(&[route, method, buf.format(status)])
            })
            .inc();
        c.seconds.observe(seconds);
    });
}

/// Time spent on an upstream.
pub fn upstream(route: &str, seconds: f64) {
    with_route(route, |c| c.upstream_seconds.observe(seconds));
}

/// A proxied request that the upstream did not answer (502 or 504 sent instead).
pub fn upstream_failure(route: &str, code: u16) {
    let mut buf = itoa::Buffer::new();
    UPSTREAM_FAILURES
        .with_label_values(&[route, buf.format(code)])
        .inc();
}

/// Whether the store answered its periodic check.
pub fn set_store_up(up: bool) {
    STORE_UP.set(i64::from(up));
}

/// Whether the revocation listener is connected.
pub fn set_revocation_listener_up(up: bool) {
    REVOCATION_LISTENER_UP.set(i64::from(up));
}

/// An authentication decision on a proxied route.
pub fn auth_decision(kind: &'static str, outcome: &'static str) {
    AUTH_CHILDREN.with(|cell| {
        cell.borrow_mut()
            .entry((kind, outcome))
            .or_insert_with(|| AUTH_DECISIONS.with_label_values(&[kind, outcome]))
            .inc();
    });
}

/// A login attempt.
pub fn login(method: &str, outcome: &'static str) {
    LOGINS.with_label_values(&[method, outcome]).inc();
}

/// A provider's claim or answer over its bound: cut, or the sign-in refused.
pub fn federation_limited(idp: &str, claim: &'static str, outcome: &'static str) {
    FEDERATION_LIMITED
        .with_label_values(&[idp, claim, outcome])
        .inc();
}

/// A token issued.
pub fn token_issued(grant: &'static str) {
    TOKENS_ISSUED.with_label_values(&[grant]).inc();
}

/// A shared commit of `rotations` refresh-token rotations, which took `seconds`.
pub fn refresh_rotation_commit(rotations: usize, seconds: f64) {
    ROTATION_BATCH.observe(rotations as f64);
    ROTATION_COMMIT_SECONDS.observe(seconds);
}

/// A sign-in ban started.
pub fn regulation_ban(scope: &'static str) {
    REGULATION_BANS.with_label_values(&[scope]).inc();
}

/// A request refused by a per-address rate limit.
pub fn rate_limited(endpoint: &'static str) {
    RATE_LIMITED.with_label_values(&[endpoint]).inc();
}

/// A session cache lookup.
pub fn session_cache(hit: bool) {
    CACHE_CHILDREN.with(|children| children[usize::from(!hit)].inc());
}

/// Sets the number of live sessions.
pub fn set_active_sessions(n: u64) {
    ACTIVE_SESSIONS.set(n as i64);
}

/// A logout token delivered to an app, or given up on.
pub fn backchannel_logout(delivered: bool) {
    BACKCHANNEL_LOGOUT
        .with_label_values(&[if delivered { "delivered" } else { "failed" }])
        .inc();
}

/// A configuration reload, applied or refused.
pub fn config_reload(applied: bool) {
    CONFIG_RELOADS
        .with_label_values(&[if applied { "applied" } else { "refused" }])
        .inc();
    CONFIG_RELOAD_OK.set(i64::from(applied));
}

/// The text exposition of every metric.
pub fn render() -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf);
    buf
}
