//! A small upstream app that shows the identity headers frontdoor sent it.
//!
//! `cargo run -p frontdoor-demo-upstream -- 127.0.0.1:8081`
//! HTML for browsers, JSON for `Accept: application/json`.

use axum::Router;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{Html, IntoResponse, Response};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn show(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let mut identity = serde_json::Map::new();
    let mut all = serde_json::Map::new();
    for (name, value) in &headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name.as_str().starts_with("x-auth-request-") || name.as_str() == "x-webauth-user" {
            identity.insert(name.to_string(), v.clone().into());
        }
        all.insert(name.to_string(), v.into());
    }
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let body = serde_json::json!({"method": method.as_str(), "uri": uri.to_string(), "identity": identity, "headers": all});
        return (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let rows: String = identity
        .iter()
        .map(|(k, v)| {
            format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(v.as_str().unwrap_or(""))
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>demo upstream</title>\
         <h1>Hello from the demo upstream</h1><p>{} {}</p>\
         <h2>Identity headers from frontdoor</h2><table>{}</table>\
         <form method=post action=/_frontdoor/logout><p><a href=/_frontdoor/logout>Sign out</a></p></form>",
        escape(method.as_str()),
        escape(&uri.to_string()),
        if rows.is_empty() { "<tr><td>none (public route)</td></tr>".to_string() } else { rows }
    ))
    .into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_string());
    let app = Router::new().fallback(show);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("demo upstream listening on http://{addr}");
    axum::serve(listener, app).await
}
