//! The sandbox's GET routes: the dataset object (`ocapi check`), Dataset Quality (computed in
//! `quality.rs`) and the inspection routes other processes read the accepted events and the
//! counters from.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::{authorize_get, query_map};
use super::graph_error::GraphError;
use super::quality;
use super::state::{now_secs, Shared};
use super::SandboxStats;

/// `GET /{api_version}/{dataset_id}`: the dataset object, for `ocapi check`.
pub(super) async fn get_dataset(
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
pub(super) async fn get_dataset_quality(
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
        shared.require_read_scope()?;
        Ok(dataset_id)
    });
    match result {
        // What Meta answers without an access tier, without offline events in the last 28
        // days, or without the beta enabled for the dataset (✅ S19).
        Ok(_) if shared.meta_side.empty_quality => Json(json!({})).into_response(),
        Ok(dataset_id) => {
            let accepted = shared.accepted_events();
            Json(quality::offline(&accepted, dataset_id, now_secs())).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// `GET /_sandbox/events`: every accepted event, for other processes.
pub(super) async fn get_sandbox_events(State(shared): State<Arc<Shared>>) -> Json<Vec<Value>> {
    Json(shared.events())
}

/// `GET /_sandbox/stats`: the counters, for other processes.
pub(super) async fn get_sandbox_stats(State(shared): State<Arc<Shared>>) -> Json<SandboxStats> {
    Json(shared.stats())
}
