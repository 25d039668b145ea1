//! TLS on the listener: `listen` served over HTTPS with certificates reloaded from disk,
//! the HTTP→HTTPS redirect listener, and HSTS.

mod certificates;
pub mod hsts;
mod metrics;
pub mod redirect;
mod upstream;

use std::sync::{Arc, OnceLock};

use pingora::apps::http_app::HttpServer;
use pingora::listeners::ListenerConfig;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::Server;
use pingora::services::listening::Service;

pub use certificates::{Certificates, Reloaded, TlsError, load_certified_key};
pub use upstream::{UpstreamCa, load_ca};

use crate::config::Config;

/// The certificates of the running HTTPS listener, for [`reload_certificates`].
static ACTIVE: OnceLock<Arc<Certificates>> = OnceLock::new();

/// The buffers of a plain-HTTP client connection: no read buffer. Pingora's default (64 KiB,
/// zeroed when the connection is accepted) stays allocated for as long as the connection is
/// open, and was two thirds of what an idle keep-alive connection cost (about 100 KiB each in
/// bench/connections.sh). Pingora reads request headers (4 KiB at first) and bodies into
/// buffers of its own, so without it a header up to 4 KiB is still one read, and a larger one
/// takes a read per further 4 KiB. TLS keeps the default: rustls reads records in small pieces,
/// which the buffer gathers.
const PLAIN_BUFFERS: L4BufferSettings = L4BufferSettings {
    read: Some(0),
    write: None,
};

/// Serves `listen` on `service` over TLS (when `tls` is configured; plain TCP otherwise),
/// starts watching the certificate files on `runtime`, and adds the redirect listener.
pub fn add_listeners<A: Send + Sync + 'static>(
    server: &mut Server,
    service: &mut Service<A>,
    config: &Config,
    runtime: &tokio::runtime::Handle,
) -> Result<(), TlsError> {
    let Some(tls) = &config.tls else {
        metrics::init();
        service
            .add_listener(ListenerConfig::tcp(config.listen.to_string()).l4_buffer(PLAIN_BUFFERS));
        return Ok(());
    };
    metrics::init();
    let certs = Arc::new(Certificates::load(&tls.cert, &tls.key)?);
    // Every handshake asks the resolver, so a swapped certificate serves the next handshake.
    // With a resolver set, Pingora ignores the (empty) certificate paths.
    let mut settings = TlsSettings::intermediate("", "").map_err(|e| TlsError::Invalid {
        key: "tls",
        path: tls.cert.clone(),
        message: e.to_string(),
    })?;
    settings.set_cert_resolver(certs.clone());
    // HTTP/2 for browsers (ALPN `h2`, then `http/1.1`). Requests reach the same filters either
    // way: `gateway::host` reads HTTP/2's `:authority` (and refuses a `Host` that disagrees),
    // cookies are read and stripped across HTTP/2's several `cookie` fields, and Pingora
    // gives the HTTP/1.1 upstream a `Host`. WebSockets stay on HTTP/1.1: no extended CONNECT
    // is advertised, so browsers open an HTTP/1.1 connection for them.
    settings.set_alpn(ALPN::H2H1);
    service.add_tls_with_settings(&config.listen.to_string(), None, settings);
    let _ = ACTIVE.set(certs.clone());
    runtime.spawn(certs.watch(tls.reload_interval.0));

    if let Some(addr) = &tls.redirect_http_listen {
        let mut redirect = Service::new(
            "frontdoor http redirect".to_string(),
            HttpServer::new_app(redirect::RedirectApp::new(config)),
        );
        redirect.add_tcp(&addr.to_string());
        server.add_service(redirect);
    }
    Ok(())
}

/// Re-reads the certificate files now and serves them if they changed (for a config reload);
/// `Ok(Unchanged)` without TLS. A pair that cannot be served is refused and the current
/// certificate stays.
pub fn reload_certificates() -> Result<Reloaded, TlsError> {
    let Some(certs) = ACTIVE.get() else {
        return Ok(Reloaded::Unchanged);
    };
    let outcome = certs.reload_now();
    certs.report(&outcome);
    outcome
}
