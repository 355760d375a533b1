//! A local stand-in ("sandbox") for the Graph API's Conversions API endpoint,
//! `POST {base}/{api_version}/{dataset_id}/events`. It validates requests as Meta does
//! (docs/meta-capi.md §2–§5), records every event of every accepted request, and injects faults
//! (5xx, throttling, dropped connections, latency, rejected orders) so that ocapi's retry,
//! bisection and ledger logic can be tested end to end.
//!
//! Routes:
//! - `POST /{api_version}/{dataset_id}/events`: the events edge; faults apply here only.
//! - `GET /{api_version}/{dataset_id}`: the dataset object, for `ocapi check`.
//! - `GET /{api_version}/dataset_quality?dataset_id=…&fields=offline`: see `quality.rs`.
//! - `GET /{api_version}/debug_token`, `GET /{api_version}/{dataset_id}/stats`,
//!   `GET /{api_version}/{dataset_id}/ads_signal_diagnostic_issues`: Meta's side (the token's
//!   life, Meta's counts, its diagnostics), see `meta_side.rs`; every answer carries
//!   `facebook-api-version` (and `x-ad-api-version-warning` when configured).
//! - `GET /_sandbox/events`, `GET /_sandbox/stats`: JSON inspection for other processes.
//!
//! Order of checks on a POST (Meta's real order is ❌ undocumented): latency, then the fault dice
//! (drop, then 5xx, then throttle), then token, `appsecret_proof`, dataset id, body, events.
//! A request is all or nothing (✅ S2): the first bad event fails it and nothing is recorded.
//!
//! Answers (marks as in docs/meta-capi.md: ✅ Meta docs, 🟡 SDK code, 🟠 third-party, ❌ assumed):
//!
//! | case | HTTP | code / subcode | mark |
//! |---|---|---|---|
//! | accepted | 200 | `{"events_received", "messages": [], "fbtrace_id"}` | ✅ |
//! | wrong token | 400 | 190 | ✅ code, ❌ status |
//! | no token | 400 | 190 / 463 (Meta sends 104 on other edges) | ❌ |
//! | `appsecret_proof` missing or wrong (secret configured) | 400 | 100, `GraphMethodException` | ❌ |
//! | dataset id not the configured one | 400 | 100 / 33 | 🟠 |
//! | body not a JSON object, `data` missing, empty or > 1000 | 400 | 100 | ✅ limit, ❌ text |
//! | required event field missing (path always named) | 400 | 100 / 2804019 | 🟠 |
//! | `event_time` older than 62 days (`physical_store`) or 7 days | 400 | 100 / 2804003 | 🟠 |
//! | `event_time` > 5 minutes ahead, not an integer; bad `action_source` | 400 | 100 / 2804001 | ❌ |
//! | hashed `user_data` key not lowercase 64-hex (e.g. a plain email) | 400 | 100 / 2804001 | ❌ |
//! | too little customer information (decision 5) | 400 | 100 / 2804050 | 🟠 |
//! | Purchase without numeric `value` or 3-letter `currency` | 400 | 100 / 2804009 | 🟠 |
//! | order id starts with `reject_order_prefix` | 400 | 100 / 2804001 | injected |
//! | `error_rate` | 500 or 503 | 2, `is_transient: true` | injected |
//! | `rate_limit_rate` | 400 | 17 / 2446079, `is_transient: true` | injected, ✅ shape |
//! | `drop_rate` | none | connection cut before a complete response | injected |
//!
//! Value-rule errors (every event error except a missing field) name `$['data'][i]` only when
//! [`Faults::name_index`] is set; see `validate/`. Bodies are JSON (what ocapi sends) or form
//! fields with JSON-encoded values (what Meta's SDKs send, e.g. `bench/python_sdk_sync.py`).
//!
//! Here: the options, faults and counters, the [`Sandbox`] handle and the router. The state
//! behind the handlers is in `state.rs`, who may call in `auth.rs`, the events edge in
//! `edge.rs`, the GET routes in `reads.rs`; validation in `validate/` over the borrowed views of
//! a body in `view/`, Meta's error answers in `graph_error.rs`, `ocapi sandbox` in `command.rs`.

mod auth;
mod command;
mod edge;
mod graph_error;
mod meta_side;
mod quality;
mod reads;
mod state;
mod validate;
mod view;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use auth::count_tokens_in_url;
pub use command::{run_cli, SandboxArgs};
use edge::post_events;
pub use meta_side::{MetaSide, TokenKind, READ_SCOPE};
use reads::{get_dataset, get_dataset_quality, get_sandbox_events, get_sandbox_stats};
use state::Shared;

/// Largest request body read. Meta's limit is ❌ undocumented; this is far above 1000 events so
/// that an oversized batch gets Meta's code-100 answer instead of a 413.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How long [`Sandbox::shutdown`] waits for open connections before aborting the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the sandbox accepts and how it misbehaves.
#[derive(Clone)]
pub struct SandboxOptions {
    /// The only access token accepted.
    pub access_token: String,
    /// The only dataset id accepted; `None` accepts any.
    pub dataset_id: Option<String>,
    /// When set, every request must carry `appsecret_proof` = hex HMAC-SHA256(token, app_secret).
    pub app_secret: Option<String>,
    /// Faults to inject from the start; change them later with [`Sandbox::set_faults`].
    pub faults: Faults,
    /// The token's life and scopes, and the answers of the read edges about Meta's side.
    pub meta_side: MetaSide,
}

impl fmt::Debug for SandboxOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SandboxOptions")
            .field("access_token", &"<redacted>")
            .field("dataset_id", &self.dataset_id)
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("faults", &self.faults)
            .field("meta_side", &self.meta_side)
            .finish()
    }
}

/// Faults injected into `POST …/events`. Each rate is the share of requests, rolled per request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share answered HTTP 500 or 503 with Graph code 2, `is_transient: true`.
    pub error_rate: f64,
    /// Share answered HTTP 400 with code 17 / subcode 2446079, `is_transient: true`.
    pub rate_limit_rate: f64,
    /// Share whose connection is cut without a complete response.
    pub drop_rate: f64,
    /// Added before answering every `POST …/events`.
    pub latency: Duration,
    /// Events whose `custom_data.order_id` starts with this are invalid (code 100 / 2804001).
    pub reject_order_prefix: Option<String>,
    /// Name the first bad event as `$['data'][i]` in value-rule errors (including the reject
    /// rule). Missing-required-field errors always name it, as Meta's do.
    pub name_index: bool,
}

/// Counters since the sandbox started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStats {
    /// `POST …/events` requests received.
    pub requests: u64,
    /// Requests answered 200.
    pub accepted_requests: u64,
    /// Requests answered with a validation error (4xx, not injected).
    pub rejected_requests: u64,
    /// Requests answered with an injected fault (5xx, throttle, drop).
    pub faults_injected: u64,
    /// Events in accepted requests.
    pub events_accepted: u64,
    /// The most `POST …/events` being handled at once.
    pub max_in_flight: u64,
    /// Requests on any route with `access_token` in the query string; ocapi must keep this 0.
    pub tokens_seen_in_url: u64,
}

/// A running sandbox; stop it with [`Sandbox::shutdown`] (dropping it also stops the server).
pub struct Sandbox {
    /// The bound address.
    addr: SocketAddr,
    /// State shared with the handlers.
    shared: Arc<Shared>,
    /// Signals graceful shutdown; taken by `shutdown` or `drop`.
    shutdown_tx: Option<oneshot::Sender<()>>,
    /// The server task.
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Sandbox {
    /// Binds `listen` (use `127.0.0.1:0` in tests) and serves in a background task.
    pub async fn start(listen: SocketAddr, options: SandboxOptions) -> io::Result<Sandbox> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(options));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender also means "stop".
            shutdown_rx.await.ok();
        };
        let task = tokio::spawn(serve_shared(listener, Arc::clone(&shared), shutdown));
        Ok(Sandbox {
            addr,
            shared,
            shutdown_tx: Some(shutdown_tx),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, the `base_url` to configure ocapi with.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the faults; requests already past the dice keep the old ones.
    pub fn set_faults(&self, faults: Faults) {
        *self
            .shared
            .faults
            .write()
            .unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Every event of every accepted request, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.shared.events()
    }

    /// The accepted request bodies, parsed as JSON (`Null` for a form body): what tests read
    /// request-level fields such as `upload_tag` from.
    pub fn bodies(&self) -> Vec<Value> {
        self.shared
            .accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|accepted| serde_json::from_slice(&accepted.body).unwrap_or(Value::Null))
            .collect()
    }

    /// The counters so far.
    pub fn stats(&self) -> SandboxStats {
        self.shared.stats()
    }

    /// Stops accepting connections and waits (a bounded time) for open ones to finish.
    pub(crate) async fn shutdown(mut self) {
        if let Some(shutdown_tx) = self.shutdown_tx.take() {
            shutdown_tx.send(()).ok();
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(error = %error, "sandbox server failed"),
                Ok(Err(error)) => tracing::warn!(error = %error, "sandbox server task failed"),
                Err(_) => {
                    tracing::warn!("sandbox connections still open after grace period, aborting");
                    task.abort();
                }
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(shutdown_tx) = self.shutdown_tx.take() {
            shutdown_tx.send(()).ok();
        }
    }
}

/// Serves the sandbox on `listener` until `shutdown` completes (the CLI passes Ctrl-C).
pub async fn serve(
    listener: TcpListener,
    options: SandboxOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_shared(listener, Arc::new(Shared::new(options)), shutdown).await
}

/// Serves the routes over `shared` until `shutdown` completes.
async fn serve_shared(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The sandbox's routes.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{api_version}/{dataset_id}/events", post(post_events))
        .route("/{api_version}/dataset_quality", get(get_dataset_quality))
        .route("/debug_token", get(meta_side::get_debug_token))
        .route(
            "/{api_version}/debug_token",
            get(meta_side::get_debug_token),
        )
        .route(
            "/{api_version}/{dataset_id}/stats",
            get(meta_side::get_stats),
        )
        .route(
            "/{api_version}/{dataset_id}/ads_signal_diagnostic_issues",
            get(meta_side::get_diagnostic_issues),
        )
        .route("/{api_version}/{dataset_id}", get(get_dataset))
        .route("/_sandbox/events", get(get_sandbox_events))
        .route("/_sandbox/stats", get(get_sandbox_stats))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_tokens_in_url,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            meta_side::version_headers,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

#[cfg(test)]
mod tests;
