//! `watch --listen ADDR`: `/metrics` (Prometheus text), `/healthz` (liveness) and `/readyz`
//! (readiness) over HTTP, for Prometheus scrapes and Kubernetes probes.
//!
//! The server is bounded (issue 23): at most [`Limits::max_connections`] connections at once
//! (further ones wait in the kernel's accept queue, holding no descriptor of the process), each
//! closed when it sends no complete request head within [`Limits::timeout`] (a new connection
//! or an idle keep-alive one), and a failure to accept (out of descriptors, say) is waited out
//! and retried, never the end of the server.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::health::{Health, Readiness};
use crate::metrics::Telemetry;

/// Default [`Limits::max_connections`]: far more than Prometheus and a kubelet need, far
/// below the usual 1,024 descriptors a process may hold, which the runs' own connections
/// and files need too.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Default [`Limits::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after a failed accept (out of descriptors, say); it doubles up to
/// [`MAX_ACCEPT_BACKOFF`] while accepts keep failing.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// See [`ACCEPT_BACKOFF`].
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The server's bounds (`--listen-max-connections`, `--listen-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head, counted from its
    /// opening or from the end of its previous answer (so also how long it may stay idle).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What the endpoints read.
#[derive(Debug)]
pub struct Service {
    /// Readiness: the databases, checked at most once at a time and cached.
    pub readiness: Readiness,
    /// The metrics.
    pub telemetry: Arc<Telemetry>,
    /// The watch loop's signs of life.
    pub health: Arc<Health>,
    /// The server's bounds.
    pub limits: Limits,
}

/// Serves the endpoints on `listener` until `shutdown` resolves; connections then open finish
/// their answer. Plain HTTP/1.1 on hyper (already built for the HTTP client), so that the
/// library carries no web framework. Bounded by `service.limits` (see the module's doc).
///
/// # Errors
/// None today: a failed accept is logged, waited out and retried, and a client's own errors
/// only end its connection.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(
        service.limits.max_connections.max(1),
    ));
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        // A slot first, then the accept: a connection over the limit waits in the kernel's
        // queue and holds no descriptor of ours.
        let slot = tokio::select! {
            () = &mut shutdown => return Ok(()),
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return Ok(()),
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF;
                stream
            }
            Err(error) => {
                // Out of descriptors (EMFILE, ENFILE), out of memory, a connection reset
                // before it was accepted: wait and accept again.
                tracing::warn!(error = %error, retry_ms = backoff.as_millis() as u64, "--listen cannot accept a connection; retrying");
                drop(slot);
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let _slot = slot;
            let timeout = service.limits.timeout;
            let handler = hyper::service::service_fn(move |request| {
                let service = Arc::clone(&service);
                async move { Ok::<_, Infallible>(route(&service, &request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
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
        "/readyz" => answer(service.readiness.check(&service.health).await),
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
