//! TLS metrics, registered in frontdoor's registry.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, Opts};

static RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "frontdoor_tls_certificate_reloads_total",
            "Certificate files found changed on disk, by result (loaded or refused).",
        ),
        &["result"],
    )
    .unwrap_or_else(|e| unreachable!("static metric: {e}"));
    let _ = crate::metrics::REGISTRY.register(Box::new(c.clone()));
    c
});

/// Shows the counters from the first scrape.
pub fn init() {
    for r in ["loaded", "refused"] {
        RELOADS.with_label_values(&[r]);
    }
}

/// A changed certificate pair was loaded or refused.
pub fn certificate_reload(result: &'static str) {
    RELOADS.with_label_values(&[result]).inc();
}
