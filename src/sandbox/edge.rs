//! The events edge, `POST /{api_version}/{dataset_id}/events`: latency and the fault dice
//! first (a dropped connection, a 5xx, a throttle), then authorization and validation, and
//! for an accepted request, its body and counters recorded. Faults apply on this route only.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::auth::{header_token, query_map};
use super::graph_error::{self, GraphError};
use super::state::{now_secs, AcceptedBody, InFlight, Shared};
use super::validate::{self, Rules};
use super::Faults;

/// `POST /{api_version}/{dataset_id}/events`.
pub(super) async fn post_events(
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
pub(super) fn accept(
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

/// The three dice-driven faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Cut the connection.
    Drop,
    /// Answer 500/503, code 2.
    ServerError,
    /// Answer 400, code 17.
    RateLimit,
}

/// Rolls the dice for one request: drop first, then 5xx, then throttle, each independently.
pub(super) fn roll(faults: &Faults) -> Option<Fault> {
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
pub(super) fn dropped_response() -> Response {
    let stream = futures_util::stream::iter([Err::<Bytes, io::Error>(io::Error::other(
        "sandbox dropped the connection",
    ))]);
    Response::new(Body::from_stream(stream))
}
