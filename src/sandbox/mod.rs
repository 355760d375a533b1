//! A local stand-in ("sandbox") for the Graph API's Conversions API endpoint,
//! `POST {base}/{api_version}/{dataset_id}/events`. It validates requests as Meta does
//! (meta-capi.md §2–§5), records every event of every accepted request, and injects faults
//! (5xx, throttling, dropped connections, latency, rejected orders) so that ocapi's retry,
//! bisection and ledger logic can be tested end to end.
//!
//! Routes:
//! - `POST /{api_version}/{dataset_id}/events`: the events edge; faults apply here only.
//! - `GET /{api_version}/{dataset_id}`: the dataset object, for `ocapi check`.
//! - `GET /{api_version}/dataset_quality?dataset_id=…&fields=offline`: see `quality.rs`.
//! - `GET /_sandbox/events`, `GET /_sandbox/stats`: JSON inspection for other processes.
//!
//! Order of checks on a POST (Meta's real order is ❌ undocumented): latency, then the fault dice
//! (drop, then 5xx, then throttle), then token, `appsecret_proof`, dataset id, body, events.
//! A request is all or nothing (✅ S2): the first bad event fails it and nothing is recorded.
//!
//! Answers (marks as in meta-capi.md: ✅ Meta docs, 🟡 SDK code, 🟠 third-party, ❌ assumed):
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
//! [`Faults::name_index`] is set; see `validate.rs`. Bodies are JSON (what ocapi sends) or form
//! fields with JSON-encoded values (what Meta's SDKs send, e.g. `bench/python_sdk_sync.py`).

mod command;
mod graph_error;
mod quality;
mod validate;
mod view;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use command::{run_cli, SandboxArgs};
use graph_error::GraphError;
use quality::Accepted;
use validate::Rules;

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
    pub async fn shutdown(mut self) {
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
        .route("/{api_version}/{dataset_id}", get(get_dataset))
        .route("/_sandbox/events", get(get_sandbox_events))
        .route("/_sandbox/stats", get(get_sandbox_stats))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_tokens_in_url,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// State behind the handlers.
struct Shared {
    /// The accepted token.
    access_token: String,
    /// The accepted dataset id, if restricted.
    dataset_id: Option<String>,
    /// The app secret `appsecret_proof` is checked against.
    app_secret: Option<String>,
    /// Current faults; read once per request, never held across an await.
    faults: RwLock<Faults>,
    /// Bodies of accepted requests, in arrival order.
    accepted: Mutex<Vec<AcceptedBody>>,
    /// See [`SandboxStats::requests`].
    requests: AtomicU64,
    /// See [`SandboxStats::accepted_requests`].
    accepted_requests: AtomicU64,
    /// See [`SandboxStats::rejected_requests`].
    rejected_requests: AtomicU64,
    /// See [`SandboxStats::faults_injected`].
    faults_injected: AtomicU64,
    /// See [`SandboxStats::events_accepted`].
    events_accepted: AtomicU64,
    /// POSTs being handled now.
    in_flight: AtomicU64,
    /// See [`SandboxStats::max_in_flight`].
    max_in_flight: AtomicU64,
    /// See [`SandboxStats::tokens_seen_in_url`].
    tokens_seen_in_url: AtomicU64,
}

impl Shared {
    /// Fresh state for `options`.
    fn new(options: SandboxOptions) -> Self {
        Self {
            access_token: options.access_token,
            dataset_id: options.dataset_id,
            app_secret: options.app_secret,
            faults: RwLock::new(options.faults),
            accepted: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            accepted_requests: AtomicU64::new(0),
            rejected_requests: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            events_accepted: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            tokens_seen_in_url: AtomicU64::new(0),
        }
    }

    /// A copy of the current faults.
    fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The accepted events, decoded from the stored bodies.
    fn events(&self) -> Vec<Value> {
        self.accepted_events()
            .into_iter()
            .map(|record| record.event)
            .collect()
    }

    /// The accepted events with their acceptance times, decoded from the stored bodies. The
    /// lock is held only to copy the list of bodies (reference-counted, not deep copies).
    fn accepted_events(&self) -> Vec<Accepted> {
        let bodies = self
            .accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        bodies.iter().flat_map(AcceptedBody::events).collect()
    }

    /// The counters now.
    fn stats(&self) -> SandboxStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        SandboxStats {
            requests: load(&self.requests),
            accepted_requests: load(&self.accepted_requests),
            rejected_requests: load(&self.rejected_requests),
            faults_injected: load(&self.faults_injected),
            events_accepted: load(&self.events_accepted),
            max_in_flight: load(&self.max_in_flight),
            tokens_seen_in_url: load(&self.tokens_seen_in_url),
        }
    }

    /// Checks the token and, when an app secret is configured, the `appsecret_proof`.
    fn authorize(&self, token: Option<&str>, proof: Option<&str>) -> Result<(), GraphError> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Err(GraphError::missing_token());
        };
        if token != self.access_token {
            return Err(GraphError::invalid_token());
        }
        // Without a configured secret the proof cannot be checked and is ignored; Meta would
        // check it against the app's real secret.
        let Some(secret) = &self.app_secret else {
            return Ok(());
        };
        // Meta answers both cases with code 100, GraphMethodException (not in meta-capi.md).
        let error = |message: &str| GraphError {
            kind: graph_error::ErrorType::GraphMethodException,
            ..GraphError::invalid(message, None)
        };
        let Some(proof) = proof else {
            return Err(error(
                "API calls from the server require an appsecret_proof argument",
            ));
        };
        let expected = hmac_sha256_hex(secret, token);
        if !expected.eq_ignore_ascii_case(proof) {
            return Err(error(
                "Invalid appsecret_proof provided in the API argument",
            ));
        }
        Ok(())
    }

    /// Checks the dataset id in the path against the configured one.
    fn check_dataset(&self, dataset_id: &str) -> Result<(), GraphError> {
        match &self.dataset_id {
            Some(expected) if expected != dataset_id => Err(GraphError::unknown_object(dataset_id)),
            _ => Ok(()),
        }
    }
}

/// The body of one accepted request, kept as received. Why not the events: decoding every
/// event into a `Value` (and copying it) cost more CPU than all the rest of a request; the
/// inspection routes, which are rare, decode the bodies instead.
#[derive(Debug, Clone)]
struct AcceptedBody {
    /// The request body; `Bytes` shares hyper's buffer, so keeping it copies nothing.
    body: Bytes,
    /// Unix seconds at acceptance.
    received_at: i64,
}

impl AcceptedBody {
    /// Its events as `check_events` read them, each with the acceptance time.
    fn events(&self) -> impl Iterator<Item = Accepted> + '_ {
        validate::decode_events(&self.body)
            .into_iter()
            .map(|event| Accepted {
                event,
                received_at: self.received_at,
            })
    }
}

/// Counts a POST as in flight while alive, and records the high-water mark.
struct InFlight<'a> {
    /// The counters' owner.
    shared: &'a Shared,
}

impl<'a> InFlight<'a> {
    /// Counts one more POST in flight.
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self { shared }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The three dice-driven faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Cut the connection.
    Drop,
    /// Answer 500/503, code 2.
    ServerError,
    /// Answer 400, code 17.
    RateLimit,
}

/// Rolls the dice for one request: drop first, then 5xx, then throttle, each independently.
fn roll(faults: &Faults) -> Option<Fault> {
    let hit = |rate: f64| rate > 0.0 && rand::random::<f64>() < rate;
    if hit(faults.drop_rate) {
        Some(Fault::Drop)
    } else if hit(faults.error_rate) {
        Some(Fault::ServerError)
    } else if hit(faults.rate_limit_rate) {
        Some(Fault::RateLimit)
    } else {
        None
    }
}

/// A response whose body fails at once, so hyper aborts the connection without a complete
/// response; the client sees a connection error.
fn dropped_response() -> Response {
    let stream = futures_util::stream::iter([Err::<Bytes, io::Error>(io::Error::other(
        "sandbox dropped the connection",
    ))]);
    Response::new(Body::from_stream(stream))
}

/// The query string as a map; an unparsable one is empty.
fn query_map(uri: &Uri) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|Query(map)| map)
        .unwrap_or_default()
}

/// The token of an `Authorization: Bearer …` or `Authorization: OAuth …` header.
fn header_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth");
    known.then(|| token.trim())
}

/// Hex HMAC-SHA256 of `message` keyed with `key`, as `appsecret_proof` is defined (🟡 S21).
fn hmac_sha256_hex(key: &str, message: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; an empty string never matches a proof.
        Err(_) => String::new(),
    }
}

/// Unix seconds now.
fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Counts requests that carry the token in the URL, on every route.
async fn count_tokens_in_url(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if query_map(request.uri()).contains_key("access_token") {
        shared.tokens_seen_in_url.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(path = %request.uri().path(), "access token seen in a url query string");
    }
    next.run(request).await
}

/// `POST /{api_version}/{dataset_id}/events`.
async fn post_events(
    State(shared): State<Arc<Shared>>,
    Path((_api_version, dataset_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight::enter(&shared);
    let faults = shared.faults();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if let Some(fault) = roll(&faults) {
        shared.faults_injected.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(fault = ?fault, "sandbox injected a fault");
        return match fault {
            Fault::Drop => dropped_response(),
            Fault::ServerError => {
                let status = if rand::random::<bool>() {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                GraphError::service(status).into_response()
            }
            Fault::RateLimit => GraphError::user_limit().into_response(),
        };
    }
    match accept(&shared, &faults, &dataset_id, &headers, &uri, body) {
        Ok(count) => {
            tracing::debug!(events = count, "sandbox accepted a request");
            let answer = json!({
                "events_received": count,
                "messages": [],
                "fbtrace_id": graph_error::fbtrace_id(),
            });
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(error) => {
            shared.rejected_requests.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(
                code = error.code,
                subcode = error.error_subcode.unwrap_or_default(),
                "sandbox rejected a request"
            );
            error.into_response()
        }
    }
}

/// Validates one POST and records its events; returns how many were accepted.
fn accept(
    shared: &Shared,
    faults: &Faults,
    dataset_id: &str,
    headers: &HeaderMap,
    uri: &Uri,
    body: Bytes,
) -> Result<usize, GraphError> {
    let query = query_map(uri);
    let parsed = validate::parse_body(&body);
    let parsed_ref = parsed.as_ref().ok();
    let token = header_token(headers)
        .or_else(|| parsed_ref.and_then(|fields| fields.access_token.as_ref()?.as_str()))
        .or_else(|| query.get("access_token").map(String::as_str));
    let proof = parsed_ref
        .and_then(|fields| fields.appsecret_proof.as_ref()?.as_str())
        .or_else(|| query.get("appsecret_proof").map(String::as_str));
    shared.authorize(token, proof)?;
    shared.check_dataset(dataset_id)?;
    let fields = parsed?;
    let now = now_secs();
    let rules = Rules {
        now,
        name_index: faults.name_index,
        reject_order_prefix: faults.reject_order_prefix.as_deref(),
    };
    let count = validate::check_events(&fields, &rules)?;
    drop(fields);
    shared
        .accepted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(AcceptedBody {
            body,
            received_at: now,
        });
    shared.accepted_requests.fetch_add(1, Ordering::SeqCst);
    shared
        .events_accepted
        .fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::SeqCst);
    Ok(count)
}

/// Checks the token of a GET (header, or the query string as Meta also allows).
fn authorize_get(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), GraphError> {
    let token = header_token(headers).or_else(|| query.get("access_token").map(String::as_str));
    let proof = query.get("appsecret_proof").map(String::as_str);
    shared.authorize(token, proof)
}

/// `GET /{api_version}/{dataset_id}`: the dataset object, for `ocapi check`.
async fn get_dataset(
    State(shared): State<Arc<Shared>>,
    Path((_api_version, dataset_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let result = authorize_get(&shared, &headers, &query_map(&uri))
        .and_then(|()| shared.check_dataset(&dataset_id));
    match result {
        Ok(()) => Json(json!({
            "id": dataset_id,
            "name": "ocapi sandbox dataset",
            "is_consolidated_container": true,
        }))
        .into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /{api_version}/dataset_quality?dataset_id=…&fields=offline`.
async fn get_dataset_quality(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = query_map(&uri);
    let result = authorize_get(&shared, &headers, &query).and_then(|()| {
        let dataset_id = query.get("dataset_id").ok_or_else(|| {
            GraphError::invalid("(#100) The parameter dataset_id is required", None)
        })?;
        shared.check_dataset(dataset_id)?;
        Ok(dataset_id)
    });
    match result {
        Ok(dataset_id) => {
            let accepted = shared.accepted_events();
            Json(quality::offline(&accepted, dataset_id, now_secs())).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// `GET /_sandbox/events`: every accepted event, for other processes.
async fn get_sandbox_events(State(shared): State<Arc<Shared>>) -> Json<Vec<Value>> {
    Json(shared.events())
}

/// `GET /_sandbox/stats`: the counters, for other processes.
async fn get_sandbox_stats(State(shared): State<Arc<Shared>>) -> Json<SandboxStats> {
    Json(shared.stats())
}

#[cfg(test)]
mod tests;
