//! The plain-HTTP redirect listener (`tls.redirect_http_listen`): every request is answered
//! with a permanent redirect to the same host, path and query on https; nothing else is served.

use async_trait::async_trait;
use http::{Response, StatusCode, Uri};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::config::Config;

/// The redirect app.
pub struct RedirectApp {
    /// `:PORT` of the HTTPS listener as the public sees it, empty for 443.
    port: String,
    /// Host used when the request names none (or an invalid one): public_url's.
    fallback_host: String,
}

impl RedirectApp {
    /// The app for this config: the https port is public_url's when public_url is https,
    /// else `listen`'s.
    pub fn new(config: &Config) -> RedirectApp {
        let public = config.public_url();
        let port = if public.scheme() == "https" {
            public.port_or_known_default()
        } else {
            Some(config.listen.0.port())
        };
        RedirectApp {
            port: match port {
                Some(443) | None => String::new(),
                Some(p) => format!(":{p}"),
            },
            fallback_host: public.host_str().unwrap_or("localhost").to_string(),
        }
    }

    /// The https URL for a request's `Host` header and target.
    pub fn location(&self, host_header: Option<&str>, uri: &Uri) -> String {
        let host = host_header
            .and_then(valid_host)
            .unwrap_or_else(|| self.fallback_host.clone());
        let target = uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .filter(|t| t.starts_with('/'))
            .unwrap_or("/");
        format!("https://{host}{}{target}", self.port)
    }
}

/// The host part of a `Host` header, when it is a valid host name or address (so that
/// nothing but a host can end up before the path in `Location`).
fn valid_host(value: &str) -> Option<String> {
    let host = crate::gateway::host::parse(value).ok()?;
    Some(crate::gateway::host::Host { port: None, ..host }.authority())
}

#[async_trait]
impl ServeHttp for RedirectApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok());
        let location = self.location(host, &req.uri);
        Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(http::header::LOCATION, location)
            .header(http::header::CONTENT_LENGTH, 0)
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(Vec::new())
            .unwrap_or_else(|_| {
                let mut r = Response::new(Vec::new());
                *r.status_mut() = StatusCode::BAD_REQUEST;
                r
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(public_url: &str) -> RedirectApp {
        let yaml = format!(
            "listen: 127.0.0.1:8443\nadmin_listen: 127.0.0.1:9090\npublic_url: {public_url}\n"
        );
        RedirectApp::new(&Config::from_yaml(&yaml).expect("config"))
    }

    #[test]
    fn keeps_host_path_and_query() {
        let a = app("https://sso.example.com");
        let uri: Uri = "/wiki/Page?action=edit&x=%2F".parse().expect("uri");
        assert_eq!(
            a.location(Some("wiki.example.com:80"), &uri),
            "https://wiki.example.com/wiki/Page?action=edit&x=%2F"
        );
    }

    #[test]
    fn uses_public_port_and_falls_back_to_public_host() {
        let a = app("https://sso.example.com:8443/");
        let uri: Uri = "/".parse().expect("uri");
        assert_eq!(a.location(None, &uri), "https://sso.example.com:8443/");
        assert_eq!(
            a.location(Some("evil.com/@x"), &uri),
            "https://sso.example.com:8443/"
        );
        assert_eq!(
            a.location(Some("user@evil.com"), &uri),
            "https://sso.example.com:8443/"
        );
        assert_eq!(a.location(Some("[::1]:80"), &uri), "https://[::1]:8443/");
    }

    #[test]
    fn http_public_url_uses_the_listen_port() {
        let a = app("http://localhost:8080");
        let uri: Uri = "/x".parse().expect("uri");
        assert_eq!(
            a.location(Some("localhost"), &uri),
            "https://localhost:8443/x"
        );
    }
}
