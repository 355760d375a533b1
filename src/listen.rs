//! `watch --listen ADDR`: `/metrics` (Prometheus text), `/healthz` (liveness) and `/readyz`
//! (readiness) over HTTP, for Prometheus scrapes and Kubernetes probes.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::health::Health;
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

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The routes.
fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(service)
}

/// `GET /metrics`.
async fn metrics(State(service): State<Arc<Service>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        service.telemetry.encode(),
    )
}

/// `GET /healthz`: 200 `ok`, or 503 with the reason.
async fn healthz(State(service): State<Arc<Service>>) -> (StatusCode, String) {
    answer(service.health.liveness(Instant::now()))
}

/// `GET /readyz`: 200 `ready`, or 503 with the reason.
async fn readyz(State(service): State<Arc<Service>>) -> (StatusCode, String) {
    answer(service.health.readiness(&service.config).await)
}

/// A probe's answer: one line.
fn answer(result: Result<(), String>) -> (StatusCode, String) {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", reason.replace('\n', " ")),
        ),
    }
}
