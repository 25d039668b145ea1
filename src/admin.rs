//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/reload` (the last reload's status).

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::reload::Reloader;
use crate::state::Live;

/// The admin HTTP app.
pub struct AdminApp {
    live: Arc<Live>,
    reloader: Arc<Reloader>,
}

impl AdminApp {
    /// An admin app over the state in effect.
    pub fn new(live: Arc<Live>, reloader: Arc<Reloader>) -> AdminApp {
        AdminApp { live, reloader }
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/metrics" => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                crate::metrics::render(),
            ),
            "/healthz" => reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/reload" => reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&self.reloader.status()).unwrap_or_default(),
            ),
            "/readyz" => match self.live.current().store.ping().await {
                Ok(()) => {
                    crate::metrics::set_store_up(true);
                    reply(StatusCode::OK, "text/plain", b"ready\n".to_vec())
                }
                Err(e) => {
                    crate::metrics::set_store_up(false);
                    tracing::warn!(error = %e, "not ready: store unreachable");
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        b"store unavailable\n".to_vec(),
                    )
                }
            },
            _ => reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
