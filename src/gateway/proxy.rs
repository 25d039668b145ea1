//! The Pingora `ProxyHttp` implementation: frontdoor's endpoints answered in
//! `request_filter`, everything else routed, authenticated and proxied.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method};
use pingora::http::ResponseHeader;
use pingora::modules::http::HttpModules;
use pingora::modules::http::compression::ResponseCompressionBuilder;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use super::access_log::Access;
use super::assertion;
use super::decide::{Decision, Facts, Verdict, decide, no_route};
use super::forwarded;
use super::headers;
use super::login;
use super::path::canonical;
use super::request_id;
use super::routes::Route;
use crate::auth::{CredentialKind, Identity};
use crate::endpoint::{ApiError, Reply, Request};
use crate::router;
use crate::shutdown::InFlight;
use crate::state::{Live, State};
use crate::web::csrf::CSRF_COOKIE;
use crate::web::flash::FLASH_COOKIE;

/// Largest body accepted by frontdoor's own endpoints.
const MAX_OWN_BODY: usize = 1 << 20;
/// How much of a too-large body is read and thrown away before answering 413: a client that
/// is still writing when the connection closes sees a reset instead of the answer.
const MAX_DISCARD: usize = 16 << 20;

/// The gateway.
pub struct Gateway {
    live: Arc<Live>,
    own_cookies: Vec<&'static str>,
}

impl Gateway {
    /// A gateway over the state in effect (the session cookie's name never changes on reload).
    pub fn new(live: Arc<Live>) -> Gateway {
        let session_cookie: &'static str = Box::leak(
            live.current()
                .sessions
                .cookie_name()
                .to_string()
                .into_boxed_str(),
        );
        Gateway {
            live,
            // Every cookie frontdoor sets: never sent upstream, never set by an upstream.
            own_cookies: vec![
                session_cookie,
                CSRF_COOKIE,
                login::LOGIN_COOKIE,
                FLASH_COOKIE,
                crate::federation::login::PENDING_COOKIE,
            ],
        }
    }
}

/// Per-request context.
pub struct Ctx {
    /// The state in effect when the request started, used to its end (a reload does not
    /// change the route or the settings of a request already running).
    state: Arc<State>,
    /// Counts the request as in flight, for draining on shutdown.
    _in_flight: InFlight,
    start: Instant,
    route: Option<Arc<Route>>,
    identity: Option<Arc<Identity>>,
    own: bool,
    peer_ip: Option<IpAddr>,
    client_ip: Option<IpAddr>,
    /// The request's normalised host, once decided (the audience of a `*` route's assertion).
    host: String,
    /// The canonical path, once decided (for the access log).
    path: String,
    /// `X-Request-Id`: a trusted proxy's, or made here; sent upstream and back to the client.
    request_id: HeaderValue,
    upstream_start: Option<Instant>,
    /// Time from connecting upstream to its response header, in seconds.
    upstream_seconds: Option<f64>,
    /// The target sent upstream when the route strips its prefix.
    upstream_target: Option<http::Uri>,
    /// When the first byte of a proxied request body arrived, and how many have since.
    body: Option<(Instant, u64)>,
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            state: self.live.current(),
            _in_flight: InFlight::start(),
            start: Instant::now(),
            route: None,
            identity: None,
            own: false,
            peer_ip: None,
            client_ip: None,
            host: String::new(),
            path: String::new(),
            request_id: HeaderValue::from_static(""),
            upstream_start: None,
            upstream_seconds: None,
            upstream_target: None,
            body: None,
        }
    }

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        // Pingora's default: the compression module, disabled.
        modules.add_module(ResponseCompressionBuilder::enable(0));
        if let Some(hsts) = crate::tls::hsts::HstsBuilder::for_config(&self.live.current().config) {
            modules.add_module(Box::new(hsts));
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let state = ctx.state.clone();
        let state = &*state;
        // Pingora's read timeout bounds each read of the body; the rate is checked as chunks
        // arrive. An upgraded connection is a tunnel whose silences belong to the application.
        if !session.is_upgrade_req() {
            session.set_read_timeout(Some(state.config.client_timeouts.body.0));
        }
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.peer_ip = peer;
        ctx.request_id = request_id::of_request(
            &session.req_header().headers,
            peer.is_some_and(|p| state.gateway.trusted.contains(p)),
        );
        if let Err(e) = super::framing::check(&session.req_header().headers) {
            // The connection is not reused after a request framed two ways.
            session.set_keepalive(None);
            return respond(session, ctx, e.into_reply()).await;
        }
        ctx.client_ip = peer.map(|p| {
            let xff = session
                .req_header()
                .headers
                .get(headers::X_FORWARDED_FOR.name())
                .and_then(|v| v.to_str().ok());
            state.gateway.trusted.client_ip(p, xff)
        });
        // The authority (`name[:port]`) is built only for the few answers that need it (own
        // endpoints, sign-in): a proxied request does not.
        let (host, port) = match super::host::of_request(session.req_header()) {
            Ok(h) => (h.name, h.port),
            Err(e) => {
                // Nothing after this request can be trusted to be for the same host either.
                session.set_keepalive(None);
                let reply = ApiError::bad_request(e.to_string()).into_reply();
                return respond(session, ctx, reply).await;
            }
        };
        let path = match canonical(session.req_header().uri.path()) {
            Ok(p) => p,
            Err(e) => {
                let reply = ApiError::bad_request(e.to_string()).into_reply();
                return respond(session, ctx, reply).await;
            }
        };

        // The host model: which requests are frontdoor's depends on the normalised host.
        if let Some(own) = router::own_path(&state.config, &host, &path) {
            ctx.own = true;
            ctx.path = path;
            let body = match read_body(session, &state.config.client_timeouts).await? {
                Some(b) => b,
                None => {
                    let e = ApiError::new(
                        http::StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the request body is too large",
                    );
                    return respond(session, ctx, e.into_reply()).await;
                }
            };
            let req = session.req_header();
            let request = Request {
                method: req.method.clone(),
                path: own,
                query: req.uri.query().unwrap_or("").to_string(),
                headers: req.headers.clone(),
                body,
                host: host.clone(),
                authority: super::host::authority(&host, port),
                client_ip: ctx.client_ip,
                peer_ip: ctx.peer_ip,
            };
            ctx.host = host;
            let reply = router::handle(state, &request).await;
            return respond(session, ctx, reply).await;
        }

        let decision = {
            let req = session.req_header();
            let facts = Facts {
                method: &req.method,
                headers: &req.headers,
                host: &host,
                path: &path,
                client: ctx.client_ip,
            };
            decide(state, &facts).await
        };
        let verdict = match decision {
            Decision::NoRoute => {
                ctx.host = host;
                ctx.path = path;
                return respond(session, ctx, ApiError::from(no_route()).into_reply()).await;
            }
            Decision::Route(route, verdict) => {
                ctx.route = Some(route);
                verdict
            }
        };
        match verdict {
            Verdict::Allow(identity) => {
                ctx.identity = identity;
                ctx.host = host;
                ctx.path = path;
                if let Some(route) = ctx.route.clone().filter(|r| r.strip_prefix) {
                    let raw = session.req_header().uri.path_and_query();
                    let target = raw
                        .and_then(|pq| route.stripped_target(pq.as_str()))
                        .and_then(|t| t.parse::<http::Uri>().ok());
                    match target {
                        Some(t) => ctx.upstream_target = Some(t),
                        None => {
                            let e = ApiError::bad_request(
                                "the path spells the route's prefix with escapes or parameters"
                                    .to_string(),
                            );
                            return respond(session, ctx, e.into_reply()).await;
                        }
                    }
                }
                Ok(false)
            }
            Verdict::SignIn | Verdict::StepUp => {
                let step_up = matches!(verdict, Verdict::StepUp);
                let req = session.req_header();
                let original = req
                    .uri
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .to_string();
                let request = Request {
                    method: req.method.clone(),
                    path: path.clone(),
                    query: String::new(),
                    headers: http::HeaderMap::new(),
                    body: Bytes::new(),
                    host: host.clone(),
                    authority: super::host::authority(&host, port),
                    client_ip: ctx.client_ip,
                    peer_ip: ctx.peer_ip,
                };
                let reply = if step_up {
                    login::step_up(state, &request, &original)
                } else {
                    login::start(state, &request, &original)
                };
                (ctx.host, ctx.path) = (host, path);
                respond(session, ctx, reply).await
            }
            Verdict::Refuse(e) => {
                (ctx.host, ctx.path) = (host, path);
                respond(session, ctx, ApiError::from(e).into_reply()).await
            }
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if session.is_upgrade_req() {
            return Ok(());
        }
        // A request without a body (every GET) ends here: a body that never started cannot be
        // behind, and the clock is not read.
        if end_of_stream && ctx.body.is_none() && body.as_ref().is_none_or(Bytes::is_empty) {
            return Ok(());
        }
        let (start, received) = ctx.body.get_or_insert_with(|| (Instant::now(), 0));
        *received += body.as_ref().map_or(0, |b| b.len() as u64);
        if ctx
            .state
            .config
            .client_timeouts
            .body_too_slow(*start, *received)
        {
            return Err(too_slow());
        }
        Ok(())
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let route = ctx
            .route
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route chosen"))?;
        let u = &route.upstream;
        let mut peer = match route.addr {
            Some(addr) => HttpPeer::new(addr, u.tls, route.sni.clone()),
            None => HttpPeer::new((u.host.as_str(), u.port), u.tls, route.sni.clone()),
        };
        // Pingora pools connections by address and SNI, not by the CA that verified them:
        // the group key keeps a connection verified with one route's CA from serving another's.
        if let Some((ca, key)) = &route.ca {
            peer.options.ca = Some(ca.clone());
            peer.group_key = *key;
        }
        peer.options.connection_timeout = Some(route.connect_timeout);
        peer.options.total_connection_timeout = Some(route.connect_timeout);
        peer.options.read_timeout = Some(route.read_timeout);
        ctx.upstream_start = Some(Instant::now());
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let route = ctx.route.as_deref();
        headers::strip(upstream_request, route, &self.own_cookies);
        if carries_own_token(ctx, upstream_request) || route.is_some_and(|r| r.strip_authorization)
        {
            upstream_request.remove_header(&http::header::AUTHORIZATION);
        }
        if let Some(target) = ctx.upstream_target.take() {
            upstream_request.set_uri(target);
        }
        if let Some(host) = route.and_then(|r| r.upstream_host.clone()) {
            upstream_request.insert_header(http::header::HOST, host)?;
        }
        // X-Forwarded-* from the client are believed only when the peer is a trusted proxy.
        let trusted = ctx
            .peer_ip
            .is_some_and(|p| ctx.state.gateway.trusted.contains(p));
        headers::strip_forwarding(upstream_request, trusted);
        // What frontdoor sets itself is pushed into the wire form (vendor patch 0007), not
        // inserted into the header maps, and a push appends: `strip_forwarding` has removed
        // every X-Request-Id and every forwarding header of a peer that is not a trusted proxy,
        // so only a trusted proxy's own forwarding headers are left to remove below.
        upstream_request.push_header(&request_id::HEADER, &ctx.request_id)?;
        if let Some(peer) = ctx.peer_ip {
            // `prefix, ip` (a trusted proxy's X-Forwarded-For goes on) or the address alone.
            let ip_value = |prefix: Option<&HeaderValue>, ip| {
                let mut text = Vec::with_capacity(prefix.map_or(0, |p| p.len() + 2) + 15);
                if let Some(p) = prefix {
                    text.extend_from_slice(p.as_bytes());
                    text.extend_from_slice(b", ");
                }
                forwarded::write_ip(&mut text, ip);
                HeaderValue::from_maybe_shared(Bytes::from(text))
                    .or_err(ErrorType::InternalError, "an address is a header value")
            };
            let real_ip = ctx.client_ip.map(|c| ip_value(None, c)).transpose()?;
            let xff = if trusted {
                let prev = upstream_request
                    .remove_header(headers::X_FORWARDED_FOR.name())
                    .filter(|v| v.to_str().is_ok());
                ip_value(prev.as_ref(), peer)?
            } else {
                ip_value(None, peer)?
            };
            upstream_request.push_header(&headers::X_FORWARDED_FOR, &xff)?;
            if let Some(real_ip) = real_ip {
                if trusted {
                    upstream_request.remove_header(headers::X_REAL_IP.name());
                }
                upstream_request.push_header(&headers::X_REAL_IP, &real_ip)?;
            }
            if !trusted {
                let over_tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
                let proto = if over_tls {
                    "https"
                } else {
                    ctx.state.gateway.public_scheme
                };
                upstream_request.push_header(
                    &headers::X_FORWARDED_PROTO,
                    &HeaderValue::from_static(proto),
                )?;
            }
        }
        if let (Some(route), Some(identity)) = (route, ctx.identity.as_deref()) {
            headers::inject(upstream_request, route, identity);
            if let Some(a) = &route.assertion {
                match assertion::value(&ctx.state, route, a, identity, &ctx.host) {
                    // `strip` removed any client header of this name (see `headers::inject`).
                    Ok(v) => upstream_request.push_header(&a.header, &v)?,
                    Err(e) => {
                        // The upstream asked to verify who calls: nothing is sent unsigned.
                        tracing::error!(error = %e, "cannot sign the identity assertion");
                        return Err(Error::explain(
                            ErrorType::HTTPStatus(503),
                            "cannot sign the identity assertion",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        headers::strip_set_cookies(upstream_response, &self.own_cookies);
        // Pushed into the wire form (vendor patch 0009) after the upstream's own is removed.
        upstream_response.remove_header(request_id::HEADER.name());
        upstream_response.push_header(&request_id::HEADER, &ctx.request_id)?;
        if let (Some(start), Some(route)) = (ctx.upstream_start.take(), ctx.route.as_ref()) {
            let seconds = start.elapsed().as_secs_f64();
            ctx.upstream_seconds = Some(seconds);
            crate::metrics::upstream(&route.label, seconds);
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let (status, code, message) = match e.etype() {
            ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout
                if e.esource() == &ErrorSource::Upstream
                    || matches!(e.etype(), ErrorType::ConnectTimedout) =>
            {
                (
                    504,
                    "upstream_timeout",
                    "the upstream did not answer in time",
                )
            }
            ErrorType::ReadTimedout => (408, "request_timeout", "the request was sent too slowly"),
            ErrorType::HTTPStatus(s) => (*s, "error", "request failed"),
            _ => match e.esource() {
                ErrorSource::Upstream => {
                    (502, "bad_gateway", "the upstream is unreachable or failed")
                }
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => {
                        (0, "", "")
                    }
                    _ => (400, "invalid_request", "malformed request"),
                },
                _ => (502, "bad_gateway", "the upstream is unreachable or failed"),
            },
        };
        if status > 0 && session.response_written().is_some() {
            // The upstream failed mid-response: the status line and part of the body have gone
            // out. Closing the connection shows the client a cut-short body; an envelope written
            // now would be appended to the body as if the upstream had sent it.
            tracing::warn!(error = %e, "the upstream failed mid-response; closing the connection");
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if status > 0 {
            tracing::warn!(error = %e, status, request_id = ?ctx.request_id, "proxying failed");
            if let (Some(route), 502 | 504) = (ctx.route.as_ref(), status) {
                crate::metrics::upstream_failure(&route.label, status);
            }
            // The connection is not reused after a failed proxy attempt: say so.
            session.set_keepalive(None);
            let status_code =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            let reply = ApiError::new(status_code, code, message).into_reply();
            let _ = write_reply(session, &ctx.request_id, reply).await;
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    /// The request as Pingora's error lines quote it: the query's values left out, since any
    /// of them may be a credential (`?access_token=…`, `code=`, `client_secret=`).
    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        let req = session.req_header();
        format!(
            "{} {}, Host: {}",
            req.method,
            crate::redact::target(req.uri.path_and_query().map_or("", |p| p.as_str())),
            req.headers
                .get(http::header::HOST)
                .map_or(Default::default(), |h| String::from_utf8_lossy(
                    h.as_bytes()
                ))
        )
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let label = match (&ctx.route, ctx.own) {
            (_, true) => "frontdoor",
            (Some(r), false) => r.label.as_str(),
            (None, false) => "none",
        };
        let seconds = ctx.start.elapsed().as_secs_f64();
        let method = &session.req_header().method;
        crate::metrics::request(label, crate::metrics::method_label(method), status, seconds);
        super::access_log::line(Access {
            request_id: &ctx.request_id,
            client: ctx.client_ip,
            method,
            host: &ctx.host,
            path: &ctx.path,
            route: label,
            status,
            bytes: session.body_bytes_sent(),
            seconds,
            upstream: (ctx.route.as_deref())
                .filter(|_| ctx.upstream_start.is_some() || ctx.upstream_seconds.is_some())
                .map(|r| &r.upstream),
            upstream_seconds: ctx.upstream_seconds,
            identity: ctx.identity.as_deref(),
        });
    }
}

/// Reads the whole body up to the limit; `None` when it is larger.
/// The body of a request to frontdoor's own endpoints, or `None` when it is over the limit
/// (the connection is then not reused).
async fn read_body(
    session: &mut Session,
    timeouts: &crate::config::ClientTimeouts,
) -> Result<Option<Bytes>> {
    let mut buf = BytesMut::new();
    let start = Instant::now();
    while let Some(chunk) = session.read_request_body().await? {
        if timeouts.body_too_slow(start, (buf.len() + chunk.len()) as u64) {
            return Err(too_slow());
        }
        if buf.len() + chunk.len() > MAX_OWN_BODY {
            session.set_keepalive(None);
            let mut seen = buf.len() + chunk.len();
            while seen <= MAX_DISCARD {
                match session.read_request_body().await {
                    Ok(Some(more)) => seen += more.len(),
                    Ok(None) | Err(_) => break,
                }
            }
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

/// Whether the request's bearer token is one frontdoor issued for itself, a key to the user's
/// account at its API that never goes upstream. When the token was the credential, the route
/// already decided: a route for frontdoor's own audience takes only such tokens, a route with
/// another `audience` only tokens for it. Only a bearer that was not the credential (a public
/// route, or an Api-Token beside it) is read here.
fn carries_own_token(ctx: &Ctx, req: &RequestHeader) -> bool {
    let issuer = &ctx.state.issuer;
    match (ctx.identity.as_deref(), ctx.route.as_deref()) {
        (Some(id), Some(route)) if id.kind == CredentialKind::Bearer => {
            route.audience.as_deref().is_none_or(|a| a == issuer)
        }
        _ => crate::tokens::bearer(&req.headers)
            .is_some_and(|t| crate::tokens::is_for_frontdoor(t, issuer)),
    }
}

/// A body sent below the minimum rate (`client_timeouts`): answered 408 by `fail_to_proxy`.
fn too_slow() -> Box<Error> {
    Error::explain(
        ErrorType::ReadTimedout,
        "the request body is sent too slowly",
    )
    .into_down()
}

/// Writes frontdoor's own answer (with the request id) and ends the request's filtering.
async fn respond(session: &mut Session, ctx: &Ctx, reply: Reply) -> Result<bool> {
    write_reply(session, &ctx.request_id, reply).await?;
    Ok(true)
}

async fn write_reply(session: &mut Session, request_id: &HeaderValue, reply: Reply) -> Result<()> {
    // Without a map of the names' original case: an answer frontdoor makes has none to keep,
    // and the map cost a copy of every non-standard name; the names go out spelled as the
    // map would have held them (title case for the standard ones, else lowercase).
    let mut header = ResponseHeader::build_no_case(reply.status, Some(reply.headers.len() + 2))?;
    for (k, v) in reply.headers {
        header.append_header(k, v)?;
    }
    header.insert_header(&request_id::HEADER, request_id.clone())?;
    header.insert_header(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(reply.body.len()),
    )?;
    let head = session.req_header().method == Method::HEAD;
    let body_empty = reply.body.is_empty() || head;
    // A write that fails here failed towards the client (Pingora leaves the source unset):
    // marked so, `fail_to_proxy` neither answers again nor blames the upstream.
    session
        .write_response_header(Box::new(header), body_empty)
        .await
        .map_err(|e| e.into_down())?;
    if !body_empty {
        session
            .write_response_body(Some(reply.body), true)
            .await
            .map_err(|e| e.into_down())?;
    }
    Ok(())
}
