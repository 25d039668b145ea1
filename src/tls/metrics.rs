//! TLS metrics, registered in frontdoor's registry.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, Opts};
use rustls_pki_types::CertificateDer;

static RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "frontdoor_tls_certificate_reloads_total",
            "Certificate files found changed on disk, by outcome (loaded or refused).",
        ),
        &["outcome"],
    )
    .unwrap_or_else(|e| unreachable!("static metric: {e}"));
    let _ = crate::metrics::REGISTRY.register(Box::new(c.clone()));
    c
});

static EXPIRY: LazyLock<IntGauge> = LazyLock::new(|| {
    crate::metrics::gauge(
        "frontdoor_tls_certificate_expiry_timestamp_seconds",
        "When the served certificate (the first of its chain) expires, in unix seconds; 0 without TLS.",
    )
});

/// Shows the TLS families from the first scrape, with or without TLS.
pub fn init() {
    for r in ["loaded", "refused"] {
        RELOADS.with_label_values(&[r]);
    }
    LazyLock::force(&EXPIRY);
}

/// A changed certificate pair was loaded or refused.
pub fn certificate_reload(outcome: &'static str) {
    RELOADS.with_label_values(&[outcome]).inc();
}

/// The chain now served: its leaf's expiry.
pub fn certificate_served(chain: &[CertificateDer<'_>]) {
    match chain.first().and_then(|der| not_after(der)) {
        Some(at) => EXPIRY.set(at),
        None => tracing::warn!("cannot read the served certificate's expiry"),
    }
}

/// The `notAfter` of a DER certificate, in unix seconds.
fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}
