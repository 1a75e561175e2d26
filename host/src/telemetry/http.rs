//! The operator's endpoint: `/metrics` (Prometheus), `/health`, `/ready`,
//! `/status` (JSON) and `/`, a status page that needs nothing but itself.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use serde::Deserialize;

use super::Telemetry;

/// `http` in a pipeline file: the address to serve on, or `off`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpEndpoint(Option<String>);

impl HttpEndpoint {
    pub const DEFAULT: &'static str = "127.0.0.1:9464";

    pub fn address(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl Default for HttpEndpoint {
    fn default() -> Self {
        HttpEndpoint(Some(Self::DEFAULT.to_owned()))
    }
}

impl TryFrom<String> for HttpEndpoint {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("off") {
            return Ok(HttpEndpoint(None));
        }
        // host:port, the host a name or an address ([::1] for IPv6).
        let port = value.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(_))) if !host.is_empty() => Ok(HttpEndpoint(Some(value.to_owned()))),
            _ => Err(format!(
                "`{value}` is not HOST:PORT: give the address to serve metrics and status on (e.g. \"{}\"), or \"off\"",
                Self::DEFAULT
            )),
        }
    }
}

impl std::str::FromStr for HttpEndpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_owned())
    }
}

/// Binds `address` and serves on the current runtime; returns the address
/// bound (a port of 0 is chosen by the system).
pub async fn serve(address: &str, telemetry: Arc<Telemetry>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/", routing::get(page))
        .route("/metrics", routing::get(metrics))
        .route("/health", routing::get(|| async { "ok\n" }))
        .route("/ready", routing::get(ready))
        .route("/status", routing::get(status))
        .with_state(telemetry);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the HTTP endpoint stopped: {e}");
        }
    });
    Ok(bound)
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Connect(#[from] std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(#[from] axum::http::Error),
}

/// One GET over plain HTTP/1.1 to `address` (HOST:PORT): the status code
/// and the body. For `sluice status`, and for tests.
pub async fn get(address: &str, path: &str) -> Result<(u16, Vec<u8>), HttpError> {
    use http_body_util::{BodyExt, Empty};
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(header::HOST, address)
        .body(Empty::<hyper::body::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let code = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((code, body.to_vec()))
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> Response {
    match telemetry.metrics_text() {
        // A plugin names its counters: a name may quote its config.
        Some(text) => (
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            crate::redact::redact(&text).into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}

async fn ready(State(telemetry): State<Arc<Telemetry>>) -> Response {
    let reasons: serde_json::Map<String, serde_json::Value> = telemetry
        .pipelines()
        .iter()
        .filter_map(|p| Some((p.status().name.clone(), p.status().not_ready()?.into())))
        .collect();
    let code = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": reasons.is_empty(), "not_ready": reasons });
    json(code, &body)
}

async fn status(State(telemetry): State<Arc<Telemetry>>) -> Response {
    json(StatusCode::OK, &telemetry.report())
}

fn json(code: StatusCode, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_string_pretty(body).expect("status serializes");
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        crate::redact::redact(&text).into_owned(),
    )
        .into_response()
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("page.html")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_host_and_port_or_off() {
        let parse = |s: &str| HttpEndpoint::try_from(s.to_owned());
        assert_eq!(parse("off").unwrap().address(), None);
        assert_eq!(parse("OFF").unwrap().address(), None);
        assert_eq!(parse("0.0.0.0:9464").unwrap().address(), Some("0.0.0.0:9464"));
        assert_eq!(parse("[::1]:80").unwrap().address(), Some("[::1]:80"));
        assert_eq!(parse("localhost:0").unwrap().address(), Some("localhost:0"));
        for bad in ["9464", ":9464", "host:", "host:99999", "yes", ""] {
            assert!(parse(bad).unwrap_err().contains("is not HOST:PORT"), "{bad}");
        }
    }
}
