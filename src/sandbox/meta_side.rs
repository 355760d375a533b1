//! The read edges that tell what Meta did with the events and how long the setup keeps
//! working (docs/meta-side.md): the token's debug info, the dataset's hourly event counts, its
//! diagnostics, and the version headers on every answer. Each shape follows Meta's
//! documentation; the source is named at each handler. What Meta leaves undocumented is marked
//! ❌ and chosen here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::auth::{authorize_get, identify_get, query_map};
use super::graph_error::{GraphError, CODE_TOKEN};
use super::state::{now_secs, Shared};

/// The version the stand-in says it answered with when a path names none (Meta answers with
/// the app's default version, ✅ https://developers.facebook.com/docs/apps/versions).
const DEFAULT_ANSWER_VERSION: &str = "v26.0";
/// Graph code for a permission the token lacks (✅
/// https://developers.facebook.com/docs/graph-api/guides/error-handling, codes 200–299).
const CODE_PERMISSION: u32 = 200;
/// Subcode of code 190 for an expired session (✅ the error-handling guide above).
const SUBCODE_EXPIRED: u32 = 463;
/// Subcode of code 190 for a session invalidated (password change, revoked access).
const SUBCODE_INVALIDATED: u32 = 460;

/// The scope the read edges (`stats`, `ads_signal_diagnostic_issues`, `dataset_quality`) need
/// in the stand-in. ❌ Meta's pages name no scope per edge; see docs/meta-side.md.
pub const READ_SCOPE: &str = "ads_read";

/// The token's kind as `debug_token` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TokenKind {
    /// A Business Manager system user's token (the kind a connector should use).
    #[default]
    SystemUser,
    /// A person's token (expires in about 60 days, data access in 90).
    User,
}

/// What `debug_token` says about the stand-in's token, and the other Meta-side answers.
#[derive(Debug, Clone)]
pub struct MetaSide {
    /// The token's kind.
    pub token_kind: TokenKind,
    /// Time left until the token expires; `None` never expires (`expires_at` 0).
    pub token_expires_in: Option<Duration>,
    /// The token expired this long ago: `debug_token` says `is_valid: false` with that date,
    /// and every other edge answers code 190 / 463.
    pub token_expired_ago: Option<Duration>,
    /// The token was invalidated (code 190 / 460 on every other edge).
    pub token_invalid: bool,
    /// The token's scopes (permissions).
    pub token_scopes: Vec<String>,
    /// Share (0.0 to 1.0) of each hour's accepted events that `/stats` leaves out, to stand in
    /// for Meta counting fewer than it acknowledged.
    pub stats_undercount: f64,
    /// Issue types `ads_signal_diagnostic_issues` lists.
    pub diagnostic_issues: Vec<String>,
    /// Text of an `x-ad-api-version-warning` header on every answer.
    pub api_version_warning: Option<String>,
    /// The version named in `facebook-api-version` (default: the one in the path).
    pub answer_api_version: Option<String>,
    /// `dataset_quality` answers `{}` (no access tier, no recent offline events, or the beta
    /// not enabled for the dataset).
    pub empty_quality: bool,
}

impl Default for MetaSide {
    fn default() -> Self {
        Self {
            token_kind: TokenKind::SystemUser,
            token_expires_in: None,
            token_expired_ago: None,
            token_invalid: false,
            token_scopes: vec![
                "ads_management".to_owned(),
                READ_SCOPE.to_owned(),
                "business_management".to_owned(),
            ],
            stats_undercount: 0.0,
            diagnostic_issues: Vec::new(),
            api_version_warning: None,
            answer_api_version: None,
            empty_quality: false,
        }
    }
}

/// The token's fixed dates, computed once when the stand-in starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokenDates {
    /// Unix seconds it expires (or expired) at; 0 for never.
    pub(super) expires_at: i64,
    /// Unix seconds its data access expires at; 0 for none.
    pub(super) data_access_expires_at: i64,
    /// Unix seconds it was issued at.
    pub(super) issued_at: i64,
}

impl TokenDates {
    /// The dates of `side`'s token, seen from `now`.
    pub(super) fn new(side: &MetaSide, now: i64) -> Self {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
        let expires_at = match (side.token_expired_ago, side.token_expires_in) {
            (Some(ago), _) => now - secs(ago),
            (None, Some(left)) => now + secs(left),
            (None, None) => 0,
        };
        // User tokens lose data access 90 days after the person last used the app (✅
        // https://developers.facebook.com/docs/facebook-login/auth-vs-data); system users' do
        // not (0).
        let data_access_expires_at = match side.token_kind {
            TokenKind::User => now + 90 * 86_400,
            TokenKind::SystemUser => 0,
        };
        Self {
            expires_at,
            data_access_expires_at,
            issued_at: now - 86_400,
        }
    }
}

impl Shared {
    /// The refusal every edge but `debug_token` answers for an expired or invalidated token.
    pub(super) fn token_refusal(&self) -> Option<GraphError> {
        let side = &self.meta_side;
        if side.token_expired_ago.is_some() {
            let date = DateTime::<Utc>::from_timestamp(self.token_dates.expires_at, 0)
                .unwrap_or_default()
                .format("%A, %d-%b-%y %H:%M:%S UTC");
            return Some(GraphError {
                code: CODE_TOKEN,
                ..GraphError::invalid(
                    format!("Error validating access token: Session has expired on {date}."),
                    Some(SUBCODE_EXPIRED),
                )
            });
        }
        side.token_invalid.then(|| GraphError {
            code: CODE_TOKEN,
            ..GraphError::invalid(
                "Error validating access token: The session has been invalidated because the \
                 user changed their password or Facebook has changed the session for security \
                 reasons.",
                Some(SUBCODE_INVALIDATED),
            )
        })
    }

    /// Refuses a read edge whose scope the token lacks, naming the scope.
    pub(super) fn require_read_scope(&self) -> Result<(), GraphError> {
        if self.meta_side.token_scopes.iter().any(|s| s == READ_SCOPE) {
            return Ok(());
        }
        Err(GraphError {
            status: StatusCode::FORBIDDEN,
            code: CODE_PERMISSION,
            ..GraphError::invalid(
                format!(
                    "(#200) Missing Permission: this edge requires the {READ_SCOPE} permission"
                ),
                None,
            )
        })
    }
}

/// `GET /{api_version}/debug_token?input_token=…` (and `/debug_token`). Shape (✅
/// https://developers.facebook.com/docs/graph-api/reference/debug_token and
/// https://developers.facebook.com/docs/facebook-login/guides/access-tokens/debugging):
/// `{"data": {"app_id", "type", "application", "data_access_expires_at", "expires_at" (0 =
/// never), "is_valid", "issued_at", "scopes": [...], "user_id"}}`; an expired or invalidated
/// token is `is_valid: false` with `error: {code, message, subcode}`. The caller's own token
/// authorizes the call; the stand-in answers it even when that token is the expired one (Meta
/// does when the caller may debug it, e.g. with an app token).
pub(super) async fn get_debug_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = query_map(&uri);
    if let Err(error) = identify_get(&shared, &headers, &query) {
        return error.into_response();
    }
    let Some(input) = query.get("input_token") else {
        return GraphError::invalid("(#100) The parameter input_token is required", None)
            .into_response();
    };
    let side = &shared.meta_side;
    let dates = shared.token_dates;
    let known = *input == shared.access_token;
    let refusal = shared.token_refusal();
    let mut data = json!({
        "app_id": "100000000000001",
        "type": match side.token_kind {
            TokenKind::SystemUser => "SYSTEM_USER",
            TokenKind::User => "USER",
        },
        "application": "ocapi sandbox app",
        "data_access_expires_at": dates.data_access_expires_at,
        "expires_at": dates.expires_at,
        "is_valid": known && refusal.is_none(),
        "issued_at": dates.issued_at,
        "scopes": side.token_scopes,
        "user_id": "100000000000002",
    });
    let error = if known {
        refusal
    } else {
        Some(GraphError::invalid_token())
    };
    if let (Some(error), Some(object)) = (error, data.as_object_mut()) {
        object.insert(
            "error".to_owned(),
            json!({"code": error.code, "message": error.message, "subcode": error.error_subcode}),
        );
    }
    Json(json!({ "data": data })).into_response()
}

/// `GET /{api_version}/{dataset_id}/stats?aggregation=event[&start_time&end_time]`. Shape (✅
/// https://developers.facebook.com/docs/marketing-api/reference/ads-pixel/stats/, fields of
/// `AdsPixelStatsResult` in Meta's business SDKs): `{"data": [{"start_time", "aggregation",
/// "data": [{"value": event name, "count"}]}]}`, one entry per hour. ❌ Meta does not say
/// whether an hour is that of the event time or of receipt; the stand-in counts by event time
/// (what it accepted, less `stats_undercount`). Times are unix seconds or RFC 3339.
///
/// `aggregation=event_source` (✅ in the edge's aggregation list, with the `event` parameter
/// filtering one event name, same page) has the same shape with an event source as each
/// `value`; ❌ Meta does not list the values: the stand-in counts everything it accepted on its
/// events edge as `server` (a Conversions API upload). Other aggregations answer no bucket.
pub(super) async fn get_stats(
    State(shared): State<Arc<Shared>>,
    Path((_api_version, dataset_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = query_map(&uri);
    let result = authorize_get(&shared, &headers, &query)
        .and_then(|()| shared.check_dataset(&dataset_id))
        .and_then(|()| shared.require_read_scope());
    if let Err(error) = result {
        return error.into_response();
    }
    let aggregation = query.get("aggregation").map_or("event", String::as_str);
    if aggregation != "event" && aggregation != "event_source" {
        return Json(json!({ "data": [] })).into_response();
    }
    let only_event = query.get("event").cloned();
    let bound = |key: &str| query.get(key).and_then(|text| parse_time(text));
    let (from, to) = (bound("start_time"), bound("end_time"));
    let mut hours: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    for accepted in shared.accepted_events() {
        let Some(time) = accepted.event.get("event_time").and_then(Value::as_i64) else {
            continue;
        };
        if from.is_some_and(|f| time < f) || to.is_some_and(|t| time >= t) {
            continue;
        }
        let name = accepted.event.get("event_name").and_then(Value::as_str);
        if only_event.as_deref().is_some_and(|only| Some(only) != name) {
            continue;
        }
        let value = if aggregation == "event_source" {
            "server"
        } else {
            name.unwrap_or_default()
        };
        *hours
            .entry(time.div_euclid(3600) * 3600)
            .or_default()
            .entry(value.to_owned())
            .or_default() += 1;
    }
    let share = shared.meta_side.stats_undercount.clamp(0.0, 1.0);
    let data: Vec<Value> = hours
        .into_iter()
        .rev()
        .map(|(hour, names)| {
            let counts: Vec<Value> = names
                .into_iter()
                .map(|(value, count)| {
                    let left_out = (count as f64 * share).round() as u64;
                    json!({"value": value, "count": count - left_out.min(count)})
                })
                .collect();
            let start = DateTime::<Utc>::from_timestamp(hour, 0).unwrap_or_default();
            json!({
                "start_time": start.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
                "aggregation": aggregation,
                "data": counts,
            })
        })
        .collect();
    Json(json!({ "data": data })).into_response()
}

/// Unix seconds or an RFC 3339 / `+0000` time.
fn parse_time(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
            .ok()
            .map(|t| t.timestamp())
    })
}

/// `GET /{api_version}/{dataset_id}/ads_signal_diagnostic_issues?ad_account_id=…`. ✅
/// https://developers.facebook.com/documentation/ads-commerce/marketing-api/reference/ads-pixel/ads_signal_diagnostic_issues
/// (read December 2026): the edge is the dataset's (ads pixel's), `ad_account_id` (int64) is
/// required, a bad parameter is error code 100, and the answer is `{"data": [AdsSignalDiagnosticIssue
/// nodes], "paging": {}}`. ❌ The page lists no node fields: the stand-in answers
/// `{"issue_type", "title", "description", "detected_at"}` and ocapi reads nodes leniently.
pub(super) async fn get_diagnostic_issues(
    State(shared): State<Arc<Shared>>,
    Path((_api_version, dataset_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = query_map(&uri);
    let result = authorize_get(&shared, &headers, &query)
        .and_then(|()| shared.check_dataset(&dataset_id))
        .and_then(|()| shared.require_read_scope());
    if let Err(error) = result {
        return error.into_response();
    }
    let account = query.get("ad_account_id").map(String::as_str);
    if !account.is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())) {
        return GraphError::invalid(
            "(#100) The parameter ad_account_id is required and must be an ad account id",
            None,
        )
        .into_response();
    }
    let detected = DateTime::<Utc>::from_timestamp(now_secs(), 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string();
    let data: Vec<Value> = shared
        .meta_side
        .diagnostic_issues
        .iter()
        .map(|kind| {
            json!({
                "issue_type": kind,
                "title": kind.replace('_', " ").to_lowercase(),
                "description": format!("The stand-in reports {kind} for this dataset."),
                "detected_at": detected,
            })
        })
        .collect();
    Json(json!({ "data": data, "paging": {} })).into_response()
}

/// Adds `facebook-api-version` to every answer (the version in the path, or the configured
/// answer) and `x-ad-api-version-warning` when configured (✅
/// https://developers.facebook.com/docs/graph-api/guides/versioning: "facebook-api-version"
/// names the version that answered; Marketing API answers carry a warning header as a version
/// nears its end).
pub(super) async fn version_headers(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let asked = request
        .uri()
        .path()
        .split('/')
        .nth(1)
        .filter(|segment| segment.starts_with('v') && segment.contains('.'))
        .map(str::to_owned);
    let mut response = next.run(request).await;
    let side = &shared.meta_side;
    let answered = side
        .answer_api_version
        .clone()
        .or(asked)
        .unwrap_or_else(|| DEFAULT_ANSWER_VERSION.to_owned());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&answered) {
        headers.insert("facebook-api-version", value);
    }
    if let Some(warning) = side
        .api_version_warning
        .as_deref()
        .and_then(|w| HeaderValue::from_str(w).ok())
    {
        headers.insert("x-ad-api-version-warning", warning);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_dates_follow_the_options() {
        let now = 1_800_000_000;
        let side = MetaSide {
            token_expires_in: Some(Duration::from_secs(5 * 86_400)),
            ..MetaSide::default()
        };
        let dates = TokenDates::new(&side, now);
        assert_eq!(dates.expires_at, now + 5 * 86_400);
        assert_eq!(dates.data_access_expires_at, 0);
        assert_eq!(TokenDates::new(&MetaSide::default(), now).expires_at, 0);
        let expired = MetaSide {
            token_expired_ago: Some(Duration::from_secs(86_400)),
            token_kind: TokenKind::User,
            ..MetaSide::default()
        };
        let dates = TokenDates::new(&expired, now);
        assert_eq!(dates.expires_at, now - 86_400);
        assert_eq!(dates.data_access_expires_at, now + 90 * 86_400);
        assert_eq!(parse_time("1800000000"), Some(now));
        let plus = parse_time("2027-01-15T08:00:00+0000");
        assert!(plus.is_some());
        assert_eq!(plus, parse_time("2027-01-15T08:00:00Z"));
    }
}
