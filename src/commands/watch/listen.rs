//! `watch --listen ADDR`: `/metrics` (Prometheus text), `/healthz` (liveness) and `/readyz`
//! (readiness) over HTTP, for Prometheus scrapes and Kubernetes probes.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::health::Health;
use crate::config::Config;
use crate::metrics::Telemetry;

/// What the endpoints read.
#[derive(Debug)]
pub struct Service {
    /// The connector's config (readiness probes its databases).
    pub config: Config,
    /// The metrics.
    pub telemetry: Arc<Telemetry>,
    /// The watch loop's signs of life.
    pub health: Arc<Health>,
}

/// Serves the endpoints on `listener` until `shutdown` resolves; connections then open finish
/// their answer. Plain HTTP/1.1 on hyper (already built for the HTTP client), so that the
/// library carries no web framework.
///
/// # Errors
/// An I/O error from accepting connections (a client's own errors only end its connection).
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted?.0,
        };
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request| {
                let service = Arc::clone(&service);
                async move { Ok::<_, Infallible>(route(&service, &request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler);
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "a --listen connection ended with an error");
            }
        });
    }
}

/// Answers one request: `GET` (or `HEAD`) of `/metrics`, `/healthz` or `/readyz`; 404 else.
async fn route(service: &Service, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".to_owned());
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = text(StatusCode::OK, service.telemetry.encode());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            );
            response
        }
        "/healthz" => answer(service.health.liveness(Instant::now())),
        "/readyz" => answer(service.health.readiness(&service.config).await),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz or /readyz\n".to_owned(),
        ),
    }
}

/// A plain-text answer.
fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A probe's answer: 200 `ok`, or 503 with the reason on one line.
fn answer(result: Result<(), String>) -> Response<Full<Bytes>> {
    match result {
        Ok(()) => text(StatusCode::OK, "ok\n".to_owned()),
        Err(reason) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", reason.replace('\n', " ")),
        ),
    }
}
