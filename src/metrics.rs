//! Prometheus metrics, `frontdoor_` prefix, served on the admin listener.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// frontdoor's registry.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let buckets = vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ];
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| unreachable!("static metric {name}: {e}"));
    let _ = REGISTRY.register(Box::new(h.clone()));
    h
}

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_http_requests_total",
        "Requests answered, by route, method and status.",
        &["route", "method", "status"],
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
        "Session cache lookups, by result (hit or miss).",
        &["result"],
    )
});
static ACTIVE_SESSIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "frontdoor_active_sessions",
        "Sessions not yet expired, in the store.",
    )
    .unwrap_or_else(|e| unreachable!("static metric: {e}"));
    let _ = REGISTRY.register(Box::new(g.clone()));
    g
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
        "Claims or answers of upstream identity providers over a configured bound, by provider, claim (name, picture, groups, roles, userinfo, token) and action (cut or refused).",
        &["idp", "claim", "action"],
    )
});
static BACKCHANNEL_LOGOUT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "frontdoor_backchannel_logout_total",
        "Logout tokens sent to apps' backchannel_logout_uri when a session ended, by outcome (delivered, or failed after the retries).",
        &["outcome"],
    )
});
static CONFIG_RELOAD_OK: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "frontdoor_config_last_reload_successful",
        "1 when the last configuration reload was applied (or none was tried), 0 when it was refused.",
    )
    .unwrap_or_else(|e| unreachable!("static metric: {e}"));
    let _ = REGISTRY.register(Box::new(g.clone()));
    g
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

/// Registers every metric so that they show from the first scrape.
pub fn init() {
    BUILD_INFO
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    LazyLock::force(&REQUESTS);
    LazyLock::force(&REQUEST_SECONDS);
    LazyLock::force(&UPSTREAM_SECONDS);
    LazyLock::force(&AUTH_DECISIONS);
    LazyLock::force(&LOGINS);
    LazyLock::force(&TOKENS_ISSUED);
    LazyLock::force(&FEDERATION_LIMITED);
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
    for o in ["delivered", "failed"] {
        BACKCHANNEL_LOGOUT.with_label_values(&[o]);
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
// values seen (routes × methods × statuses), which the registry holds anyway.
thread_local! {
    static REQUEST_CHILDREN: RefCell<HashMap<String, RouteChildren>> = RefCell::new(HashMap::new());
    static AUTH_CHILDREN: RefCell<HashMap<(&'static str, &'static str), IntCounter>> =
        RefCell::new(HashMap::new());
    static CACHE_CHILDREN: [IntCounter; 2] = [
        SESSION_CACHE.with_label_values(&["hit"]),
        SESSION_CACHE.with_label_values(&["miss"]),
    ];
}

/// One route's children: request counters by (method, status) and the two histograms.
struct RouteChildren {
    requests: HashMap<(&'static str, u16), IntCounter>,
    seconds: Histogram,
    upstream_seconds: Histogram,
}

fn with_route<T>(route: &str, f: impl FnOnce(&mut RouteChildren) -> T) -> T {
    REQUEST_CHILDREN.with(|cell| {
        let mut map = cell.borrow_mut();
        if !map.contains_key(route) {
            map.insert(
                route.to_string(),
                RouteChildren {
                    requests: HashMap::new(),
                    seconds: REQUEST_SECONDS.with_label_values(&[route]),
                    upstream_seconds: UPSTREAM_SECONDS.with_label_values(&[route]),
                },
            );
        }
        match map.get_mut(route) {
            Some(children) => f(children),
            None => unreachable!("inserted above"),
        }
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
pub fn federation_limited(idp: &str, claim: &'static str, action: &'static str) {
    FEDERATION_LIMITED
        .with_label_values(&[idp, claim, action])
        .inc();
}

/// A token issued.
pub fn token_issued(grant: &'static str) {
    TOKENS_ISSUED.with_label_values(&[grant]).inc();
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
