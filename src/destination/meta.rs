//! The `meta` destination: Meta's Conversions API (meta-capi.md, decisions 1, 6, 7, 9 and 10).
//!
//! One batch is one `POST {base_url}/{api_version}/{dataset_id}/events` carrying the events in
//! `data` and the access token in the JSON body (never in a URL). Each HTTP exchange goes
//! through [`retry_with_backoff`] with the pure [`classify`] deciding what a failure means:
//!
//! * transient (network, timeout, 408/429/5xx, `is_transient`, throttling codes): retried;
//! * event data (code 100, any subcode but 33): the bad events are isolated, by the index Meta
//!   names (`$['data'][i]`) or by bisection, recorded as rejected, and the rest re-sent;
//! * anything else: a [`DestinationError::Permanent`] saying what it means and what to do.
//!
//! Secrets: the token lives in a [`Secret`]; it is written only into request bodies (and the
//! `Authorization` header of `check`). Errors and logs never carry a URL with a query, a body,
//! or user data; Meta's own messages are scrubbed of the token before use.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::time::Instant;

use super::retry::{retry_with_backoff, Decision, GaveUp, Retried, RetryPolicy, Traced};
use super::{Accepted, Delivery, DestinationError, Rejected};
use crate::config::{Config, DestinationConfig};
use crate::event::Event;
use crate::secret::Secret;

/// `partner_agent`: Meta's format is `[partner_name]_[major]_[minor]` (meta-capi.md §1, S5/S19).
pub const PARTNER_AGENT: &str = concat!(
    "ocapi_",
    env!("CARGO_PKG_VERSION_MAJOR"),
    "_",
    env!("CARGO_PKG_VERSION_MINOR")
);

/// Graph codes Meta documents as temporary or throttling (meta-capi.md §5: 1, 2, 4, 17, 341,
/// 613, 21009). 32 and 80000–80014 are throttles on other Graph surfaces; §5 says to treat them
/// as throttling if CAPI ever sends them.
fn is_transient_code(code: i64) -> bool {
    matches!(
        code,
        1 | 2 | 4 | 17 | 32 | 341 | 613 | 21009 | 80000..=80014
    )
}

/// The `error` object of a Graph API error answer (meta-capi.md §4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct GraphError {
    /// Meta's message; localized, so never branched on.
    #[serde(default)]
    pub message: Option<String>,
    /// `OAuthException` and the like.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The error code that decides what to do.
    #[serde(default)]
    pub code: Option<i64>,
    /// Refines `code` (e.g. 33 under 100, 463 under 190).
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// A short title, e.g. "Event Timestamp Too Old".
    #[serde(default)]
    pub error_user_title: Option<String>,
    /// The message written for people.
    #[serde(default)]
    pub error_user_msg: Option<String>,
    /// Meta's trace id, for support tickets.
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    /// Meta's own verdict that a retry may succeed.
    #[serde(default)]
    pub is_transient: Option<bool>,
}

impl GraphError {
    /// The best human text: `error_user_msg`, else `message`.
    fn text(&self) -> Option<&str> {
        self.error_user_msg
            .as_deref()
            .or(self.message.as_deref())
            .filter(|t| !t.is_empty())
    }

    /// ", subcode N" when there is one.
    fn subcode_suffix(&self) -> String {
        self.error_subcode
            .map(|s| format!(", subcode {s}"))
            .unwrap_or_default()
    }
}

/// A Graph error answer: `{"error": {...}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    /// The error.
    error: GraphError,
}

/// What to do about one failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Transient: retry with backoff.
    Retry,
    /// Some events of the batch are invalid: isolate them and send the rest.
    RejectEvents,
    /// No retry helps; the user must act.
    Fail,
}

/// Decides what an HTTP answer that is not a success means, from its status and Graph error.
/// Codes win over statuses (meta-capi.md decision 7: decide on `code`/`error_subcode`, never on
/// message text); the status decides only when the code says nothing.
pub(crate) fn classify(status: u16, graph: Option<&GraphError>) -> Action {
    if let Some(graph) = graph {
        if graph.is_transient == Some(true) {
            return Action::Retry;
        }
        match (graph.code, graph.error_subcode) {
            (Some(code), _) if is_transient_code(code) => return Action::Retry,
            // Unknown dataset, or the token cannot reach it: configuration, not data.
            (Some(100), Some(33)) => return Action::Fail,
            // Invalid parameter: one or more events carry bad data.
            (Some(100), _) => return Action::RejectEvents,
            // Token, permissions, policy block, deprecated version.
            (Some(3 | 10 | 190 | 200..=299 | 368 | 2635), _) => return Action::Fail,
            _ => {}
        }
    }
    match status {
        408 | 429 | 500..=599 => Action::Retry,
        _ => Action::Fail,
    }
}

/// Finds the event index in a message such as `The parameter $['data'][3]['event_time'] is
/// required.` (meta-capi.md §4). Meta quotes with `'`; `"` is accepted too.
pub(crate) fn event_index(message: &str) -> Option<usize> {
    ["$['data'][", "$[\"data\"]["].iter().find_map(|pattern| {
        let start = message.find(pattern)? + pattern.len();
        let rest = &message[start..];
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 || !rest[digits..].starts_with(']') {
            return None;
        }
        rest[..digits].parse().ok()
    })
}

/// `appsecret_proof`: lowercase hex HMAC-SHA256 of the token, keyed with the app secret.
pub(crate) fn appsecret_proof(token: &str, app_secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The delay a throttled answer asks for: `Retry-After` (seconds), or the largest
/// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage` / `X-App-Usage`.
/// HTTP-date `Retry-After` values are ignored (Graph sends seconds). Capped by the retry policy.
pub(crate) fn rate_limit_hint(headers: &HeaderMap) -> Option<Duration> {
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let usage = [
        "x-business-use-case-usage",
        "x-app-usage",
        "x-ad-account-usage",
    ]
    .iter()
    .filter_map(|name| headers.get(*name)?.to_str().ok())
    .filter_map(|text| serde_json::from_str::<serde_json::Value>(text).ok())
    .filter_map(|json| max_regain_minutes(&json))
    .max()
    .map(|minutes| Duration::from_secs(minutes.saturating_mul(60)));
    retry_after.max(usage).filter(|d| !d.is_zero())
}

/// The largest `estimated_time_to_regain_access` anywhere in a usage header's JSON.
fn max_regain_minutes(json: &serde_json::Value) -> Option<u64> {
    match json {
        serde_json::Value::Object(map) => map
            .iter()
            .filter_map(|(key, value)| {
                if key == "estimated_time_to_regain_access" {
                    value.as_u64()
                } else {
                    max_regain_minutes(value)
                }
            })
            .max(),
        serde_json::Value::Array(items) => items.iter().filter_map(max_regain_minutes).max(),
        _ => None,
    }
}

/// The text of a transport error and its causes, without the URL.
fn transport_text(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!(
            "no answer within {}s (destination.request_timeout)",
            timeout.as_secs()
        );
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// One failed HTTP exchange. Its `Display` carries no URL, body, token or user data.
#[derive(Debug)]
enum Failure {
    /// No HTTP answer: connection refused or reset, TLS, timeout.
    Transport {
        /// What went wrong, without the URL.
        message: String,
    },
    /// An HTTP answer that is not a success.
    Http {
        /// The HTTP status.
        status: u16,
        /// The Graph error, when the body was one.
        graph: Option<GraphError>,
        /// `fbtrace_id` from the body, else the `x-fb-trace-id` header.
        fbtrace_id: Option<String>,
        /// The server's delay hint.
        hint: Option<Duration>,
    },
    /// A success status whose body is not what the API returns.
    Unreadable {
        /// The HTTP status.
        status: u16,
        /// serde's message (positions only, no content).
        message: String,
        /// From the `x-fb-trace-id` header.
        fbtrace_id: Option<String>,
    },
}

impl Failure {
    /// What the classifier says about this failure.
    fn action(&self) -> Action {
        match self {
            Self::Transport { .. } => Action::Retry,
            Self::Http { status, graph, .. } => classify(*status, graph.as_ref()),
            Self::Unreadable { .. } => Action::Fail,
        }
    }

    /// The retry helper's view of [`Failure::action`].
    fn decision(&self) -> Decision {
        match (self.action(), self) {
            (Action::Retry, Self::Http { hint, .. }) => Decision::Retry { after: *hint },
            (Action::Retry, _) => Decision::Retry { after: None },
            _ => Decision::Stop,
        }
    }

    /// The Graph error, if any.
    fn graph(&self) -> Option<&GraphError> {
        match self {
            Self::Http { graph, .. } => graph.as_ref(),
            _ => None,
        }
    }

    /// The HTTP status, if there was an answer.
    fn status(&self) -> Option<u16> {
        match self {
            Self::Transport { .. } => None,
            Self::Http { status, .. } | Self::Unreadable { status, .. } => Some(*status),
        }
    }
}

impl Traced for Failure {
    fn trace_id(&self) -> Option<&str> {
        match self {
            Self::Transport { .. } => None,
            Self::Http { fbtrace_id, .. } | Self::Unreadable { fbtrace_id, .. } => {
                fbtrace_id.as_deref()
            }
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport { message } => write!(f, "{message}"),
            Self::Http {
                status,
                graph: None,
                ..
            } => write!(f, "HTTP {status}"),
            Self::Http {
                status,
                graph: Some(graph),
                ..
            } => {
                write!(f, "HTTP {status}, meta error code ")?;
                match graph.code {
                    Some(code) => write!(f, "{code}{}", graph.subcode_suffix())?,
                    None => f.write_str("-")?,
                }
                // Transient and permission messages are generic; code-100 text may quote event
                // data, so it is left to the `Rejected` record.
                match graph.message.as_deref() {
                    Some(message) if graph.code != Some(100) => write!(f, ": {message}"),
                    _ => Ok(()),
                }
            }
            Self::Unreadable {
                status, message, ..
            } => {
                write!(
                    f,
                    "HTTP {status} with a body that is not a graph api answer ({message})"
                )
            }
        }
    }
}

/// A 200 answer of the `/events` edge.
#[derive(Debug, Deserialize)]
struct EventsResponse {
    /// Events Meta counted.
    events_received: u64,
    /// Meta's trace id.
    #[serde(default)]
    fbtrace_id: Option<String>,
}

/// A 200 answer of `GET /{dataset_id}?fields=id,name,is_consolidated_container`.
#[derive(Debug, Deserialize)]
struct DatasetInfo {
    /// The dataset id.
    id: String,
    /// Its name in Events Manager.
    #[serde(default)]
    name: Option<String>,
    /// Whether the dataset can take offline events through CAPI (meta-capi.md §1).
    #[serde(default)]
    is_consolidated_container: Option<bool>,
}

/// The JSON body of an `/events` request.
#[derive(Serialize)]
struct EventsRequest<'a> {
    /// The events.
    data: &'a [&'a Event],
    /// The token: in the body, never in the URL (decision 1).
    access_token: &'a str,
    /// HMAC of the token with the app secret, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    appsecret_proof: Option<&'a str>,
    /// Only when configured (decision 9).
    #[serde(skip_serializing_if = "Option::is_none")]
    test_event_code: Option<&'a str>,
    /// `destination.upload_tag`, when configured (still accepted on the Conversions API for
    /// advertisers from the legacy Offline Conversions API; meta-capi.md §1).
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_tag: Option<&'a str>,
    /// `ocapi_<major>_<minor>`.
    partner_agent: &'a str,
}

/// What one sub-batch came to, after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Meta took every event of the sub-batch.
    Accepted {
        /// Meta's trace id.
        fbtrace_id: Option<String>,
        /// `events_received` (checked against the sub-batch size by the sender).
        events_received: u64,
    },
    /// Meta refused the sub-batch for its data.
    Rejected {
        /// The position in the sub-batch Meta named, if it named one.
        position: Option<usize>,
        /// Meta's message with its fbtrace_id.
        message: String,
    },
}

/// One sub-batch sent: its answer and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attempt {
    /// The answer.
    answer: Answer,
    /// HTTP requests made (1 + retries).
    requests: u32,
    /// Retries among them.
    retries: u32,
}

/// Delivers every good event of a batch of `len` and isolates each bad one, given `send`, which
/// sends the events at the given batch indices as one request.
///
/// When Meta names the bad event, it is rejected and the rest re-sent: k + 1 requests for k bad
/// events. Otherwise the sub-batch is halved until the bad events stand alone: at most
/// 1 + 2·k·⌈log₂ n⌉ requests. Errors other than data rejections abort the whole batch; events
/// already accepted will be re-sent by a later run and deduplicated by Meta on `event_id`.
async fn isolate_rejections<E, F>(
    len: usize,
    mut send: impl FnMut(Vec<usize>) -> F,
) -> Result<Delivery, E>
where
    F: std::future::Future<Output = Result<Attempt, E>>,
{
    let mut delivery = Delivery::default();
    if len == 0 {
        return Ok(delivery);
    }
    // Depth-first, lower halves first, so indices are visited roughly in order.
    let mut pending: Vec<Vec<usize>> = vec![(0..len).collect()];
    while let Some(indices) = pending.pop() {
        // Owned indices keep the future free of higher-ranked borrows, so it stays `Send`.
        let attempt = send(indices.clone()).await?;
        delivery.requests += attempt.requests;
        delivery.retries += attempt.retries;
        match attempt.answer {
            Answer::Accepted {
                fbtrace_id,
                events_received,
            } => {
                delivery.accepted.push(Accepted {
                    indices,
                    fbtrace_id,
                    events_received,
                });
            }
            Answer::Rejected {
                position: Some(position),
                message,
            } if position < indices.len() => {
                let mut rest = indices;
                let index = rest.remove(position);
                delivery.rejected.push(Rejected { index, message });
                if !rest.is_empty() {
                    pending.push(rest);
                }
            }
            Answer::Rejected { message, .. } => {
                if let [index] = indices[..] {
                    delivery.rejected.push(Rejected { index, message });
                } else {
                    let mut lower = indices;
                    let upper = lower.split_off(lower.len() / 2);
                    pending.push(upper);
                    pending.push(lower);
                }
            }
        }
    }
    delivery.rejected.sort_by_key(|rejected| rejected.index);
    Ok(delivery)
}

/// Spaces requests `1 / max_requests_per_second` apart across every concurrent request of the
/// destination: a token bucket holding one token. Each caller reserves the next free slot under
/// the lock and sleeps outside it, so the lock is never held across the wait. A one-token bucket
/// allows no burst: requests leave at least `1 / rate` apart, so the rate holds over any window,
/// not just on average. No crate needed for ~20 lines.
#[derive(Debug)]
struct RateLimiter {
    /// Time between two requests.
    interval: Duration,
    /// When the next request may leave.
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` requests per second.
    fn new(per_second: f64) -> Result<Self, DestinationError> {
        let interval = (per_second.is_finite() && per_second > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / per_second).ok())
            .flatten()
            .ok_or_else(|| {
                DestinationError::Setup(
                    "destination.max_requests_per_second must be a positive number".into(),
                )
            })?;
        Ok(Self {
            interval,
            next: tokio::sync::Mutex::new(None),
        })
    }

    /// Waits for this request's slot.
    async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |next| next.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Sends batches to `POST {base_url}/{api_version}/{dataset_id}/events`.
pub struct MetaDestination {
    /// Boxed, so that `Destination` stays small whichever variant it holds.
    inner: Box<Inner>,
}

impl fmt::Debug for MetaDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl MetaDestination {
    /// Reads the token and the optional app secret once and builds the HTTP client.
    pub fn from_config(config: &Config) -> Result<Self, DestinationError> {
        let token = config
            .access_token()
            .map_err(|e| DestinationError::Setup(Box::new(e)))?;
        let app_secret = config
            .app_secret()
            .map_err(|e| DestinationError::Setup(Box::new(e)))?;
        let inner = Inner::new(&config.destination, token, app_secret.as_ref())?;
        Ok(Self {
            inner: Box::new(inner),
        })
    }

    /// Delivers one batch: every event ends up accepted or rejected (with Meta's message), or
    /// the whole call fails with a classified error. The run loop sends several batches at once.
    pub async fn send(&self, events: &[Event]) -> Result<Delivery, DestinationError> {
        let inner = &*self.inner;
        isolate_rejections(events.len(), |indices: Vec<usize>| async move {
            inner.post_events(events, &indices).await
        })
        .await
    }

    /// Verifies the token and the dataset without sending events; says what it found.
    pub async fn check(&self) -> Result<String, DestinationError> {
        self.inner.check().await
    }
}

/// The destination's state: client, URLs, secrets, retry policy and rate limiter.
struct Inner {
    /// One client for every request: its pool is sized for `destination.concurrency`.
    client: reqwest::Client,
    /// `{base_url}/{api_version}/{dataset_id}`, no query.
    dataset_url: String,
    /// `{dataset_url}/events`, no query.
    events_url: String,
    /// `destination.dataset_id`.
    dataset_id: String,
    /// `destination.api_version`.
    api_version: String,
    /// The access token.
    token: Secret,
    /// `appsecret_proof`, when an app secret is configured.
    appsecret_proof: Option<Secret>,
    /// `destination.test_event_code`.
    test_event_code: Option<String>,
    /// `destination.upload_tag`.
    upload_tag: Option<String>,
    /// Where the token comes from, for messages that say what to update.
    token_source: String,
    /// Retries for transient failures.
    policy: RetryPolicy,
    /// `destination.request_timeout`, for messages.
    request_timeout: Duration,
    /// `destination.max_requests_per_second`.
    limiter: Option<RateLimiter>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaDestination")
            .field("events_url", &self.events_url)
            .field("token", &self.token)
            .field("appsecret_proof", &self.appsecret_proof.is_some())
            .field("test_event_code", &self.test_event_code)
            .field("policy", &self.policy)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Builds the destination from `[destination]` and the secrets already read.
    fn new(
        config: &DestinationConfig,
        token: Secret,
        app_secret: Option<&Secret>,
    ) -> Result<Self, DestinationError> {
        if token.expose().is_empty() {
            return Err(DestinationError::Setup(
                "the meta access token is empty".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.concurrency.max(1))
            .user_agent(concat!("ocapi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DestinationError::Setup(Box::new(e.without_url())))?;
        let limiter = config
            .max_requests_per_second
            .map(RateLimiter::new)
            .transpose()?;
        let token_source = match (&config.access_token_file, &config.access_token_env) {
            (Some(path), _) => format!("the token file {}", path.display()),
            (None, var) => {
                format!(
                    "the {} environment variable",
                    var.as_deref().unwrap_or("META_ACCESS_TOKEN")
                )
            }
        };
        if let Some(code) = &config.test_event_code {
            tracing::warn!(
                test_event_code = %code,
                "destination.test_event_code is set: events show under Test Events but Meta \
                 still keeps them as real data; remove it before sending production data"
            );
        }
        let dataset_url = format!(
            "{}/{}/{}",
            config.base_url.trim_end_matches('/'),
            config.api_version,
            config.dataset_id
        );
        Ok(Self {
            client,
            events_url: format!("{dataset_url}/events"),
            dataset_url,
            dataset_id: config.dataset_id.clone(),
            api_version: config.api_version.clone(),
            appsecret_proof: app_secret
                .map(|secret| Secret::new(appsecret_proof(token.expose(), secret.expose()))),
            token,
            test_event_code: config.test_event_code.clone(),
            upload_tag: config.upload_tag.clone(),
            token_source,
            policy: RetryPolicy::new(config.max_retries),
            request_timeout: config.request_timeout,
            limiter,
        })
    }

    /// `GET {dataset_url}?fields=id,name,is_consolidated_container`, with the token in the
    /// `Authorization` header.
    async fn check(&self) -> Result<String, DestinationError> {
        // The proof is an HMAC, not the token; a GET can only carry it in the query. URLs are
        // never logged nor put into errors.
        let mut url = format!(
            "{}?fields=id,name,is_consolidated_container",
            self.dataset_url
        );
        if let Some(proof) = &self.appsecret_proof {
            url.push_str("&appsecret_proof=");
            url.push_str(proof.expose());
        }
        let result = retry_with_backoff(&self.policy, Failure::decision, || {
            self.exchange::<DatasetInfo>(self.client.get(&url).bearer_auth(self.token.expose()))
        })
        .await;
        let info = match result {
            Ok(Retried { value, .. }) => value,
            Err(gave_up) => return Err(self.give_up(gave_up, "check")),
        };
        // A name with a line break must not break the one-line description.
        let name = info
            .name
            .map(|n| format!(" \"{}\"", n.replace(char::is_control, " ")))
            .unwrap_or_default();
        let consolidated = match info.is_consolidated_container {
            Some(true) => "a consolidated dataset: it takes physical-store events",
            Some(false) => {
                "NOT a consolidated dataset: Meta may refuse physical-store events; consolidate \
                 it in Events Manager"
            }
            None => "consolidation unknown (Meta did not say)",
        };
        let test = if self.test_event_code.is_some() {
            "; test_event_code is set (events are still kept as real data)"
        } else {
            ""
        };
        Ok(format!(
            "meta dataset {}{name} reachable with api {}: {consolidated}{test}",
            info.id, self.api_version
        ))
    }

    /// Sends the events at `indices` as one request, with retries.
    async fn post_events(
        &self,
        events: &[Event],
        indices: &[usize],
    ) -> Result<Attempt, DestinationError> {
        let body = self.events_body(events, indices);
        // The body is moved into the request once; every attempt sends a clone of that request,
        // which shares the bytes instead of copying ~1 MB per attempt.
        let request = self
            .client
            .post(&self.events_url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let result = retry_with_backoff(&self.policy, Failure::decision, || {
            let attempt = request
                .try_clone()
                .expect("a request with an in-memory body can be cloned");
            self.exchange::<EventsResponse>(attempt)
        })
        .await;
        match result {
            Ok(Retried { value, retries }) => {
                if value.events_received != indices.len() as u64 {
                    return Err(DestinationError::CountMismatch {
                        sent: indices.len(),
                        received: value.events_received,
                        fbtrace_id: value.fbtrace_id.unwrap_or_else(|| "-".to_owned()),
                    });
                }
                Ok(Attempt {
                    answer: Answer::Accepted {
                        fbtrace_id: value.fbtrace_id,
                        events_received: value.events_received,
                    },
                    requests: retries + 1,
                    retries,
                })
            }
            Err(GaveUp::Stopped { error, retries }) if error.action() == Action::RejectEvents => {
                let graph = error.graph().cloned().unwrap_or_default();
                let position = [graph.message.as_deref(), graph.error_user_msg.as_deref()]
                    .into_iter()
                    .flatten()
                    .find_map(event_index);
                tracing::warn!(
                    status = error.status(),
                    code = graph.code,
                    subcode = graph.error_subcode,
                    events = indices.len(),
                    named_index = position,
                    fbtrace_id = error.trace_id(),
                    "meta rejected event data; isolating the bad events"
                );
                Ok(Attempt {
                    answer: Answer::Rejected {
                        position,
                        message: self.rejection(&graph, &error),
                    },
                    requests: retries + 1,
                    retries,
                })
            }
            Err(gave_up) => Err(self.give_up(gave_up, "send")),
        }
    }

    /// The JSON body of `POST /events` carrying the events at `indices`. The buffer is sized
    /// for the batch up front: grown by doubling from empty, a 1 MB body was copied about a dozen
    /// times, and the freed buffers made the allocator consolidate its free lists.
    fn events_body(&self, events: &[Event], indices: &[usize]) -> Vec<u8> {
        /// A typical event with every customer key is ~1 KB of JSON.
        const EVENT_BYTES: usize = 1200;
        let data: Vec<&Event> = indices.iter().map(|&index| &events[index]).collect();
        let mut body = Vec::with_capacity(512 + data.len() * EVENT_BYTES);
        serde_json::to_writer(
            &mut body,
            &EventsRequest {
                data: &data,
                access_token: self.token.expose(),
                appsecret_proof: self.appsecret_proof.as_ref().map(Secret::expose),
                test_event_code: self.test_event_code.as_deref(),
                upload_tag: self.upload_tag.as_deref(),
                partner_agent: PARTNER_AGENT,
            },
        )
        .expect("an Event always serializes");
        body
    }

    /// One HTTP exchange, read into `T` on success.
    async fn exchange<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Failure> {
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let transport = |error| Failure::Transport {
            message: self.scrub(&transport_text(error, self.request_timeout)),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let header_trace = response
            .headers()
            .get("x-fb-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let hint = rate_limit_hint(response.headers());
        let bytes = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|error| Failure::Unreadable {
                status,
                message: error.to_string(),
                fbtrace_id: header_trace,
            });
        }
        let graph = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .map(|body| {
                // Scrubbed here, once, so that no log line or error built from it holds the token.
                let mut graph = body.error;
                for text in [
                    &mut graph.message,
                    &mut graph.error_user_msg,
                    &mut graph.error_user_title,
                ] {
                    if let Some(text) = text.as_mut() {
                        *text = self.scrub(text);
                    }
                }
                graph
            });
        let fbtrace_id = graph
            .as_ref()
            .and_then(|g| g.fbtrace_id.clone())
            .or(header_trace);
        Err(Failure::Http {
            status,
            graph,
            fbtrace_id,
            hint,
        })
    }

    /// Turns a failure the retry helper gave up on into the caller's error, logging it once.
    fn give_up(&self, gave_up: GaveUp<Failure>, what: &str) -> DestinationError {
        match gave_up {
            GaveUp::Exhausted { error, retries } => {
                tracing::warn!(
                    error = %error,
                    attempts = retries + 1,
                    fbtrace_id = error.trace_id(),
                    "meta {what} request failed after all retries"
                );
                DestinationError::RetriesExhausted {
                    attempts: retries + 1,
                    last_error: self.scrub(&error.to_string()),
                }
            }
            GaveUp::Stopped { error, .. } => {
                let graph = error.graph();
                tracing::error!(
                    status = error.status(),
                    code = graph.and_then(|g| g.code),
                    subcode = graph.and_then(|g| g.error_subcode),
                    fbtrace_id = error.trace_id(),
                    "meta refused the {what} request"
                );
                DestinationError::Permanent {
                    message: self.explain(&error),
                }
            }
        }
    }

    /// The message of a permanent failure: what it means, what to do, Meta's words, trace id.
    fn explain(&self, failure: &Failure) -> String {
        let dataset = &self.dataset_id;
        let meaning = match (failure, failure.graph()) {
            (
                Failure::Unreadable {
                    status, message, ..
                },
                _,
            ) => format!(
                "the answer to the request (HTTP {status}) is not a graph api answer ({message}): \
                 check that destination.base_url points at Meta's Graph API"
            ),
            (_, Some(graph)) => {
                let sub = graph.subcode_suffix();
                let meta = self
                    .dataset_url
                    .starts_with(crate::config::DEFAULT_BASE_URL);
                match graph.code {
                    Some(190) if !meta => format!(
                        "the destination rejected the access token (code 190{sub}), and \
                         destination.base_url is not Meta's graph api: the local stand-in \
                         (`ocapi sandbox`) accepts only the token it was started with (`--token` \
                         or OCAPI_SANDBOX_TOKEN, default `sandbox-token`); put that token in {}",
                        self.token_source
                    ),
                    Some(190) => format!(
                        "meta rejected the access token (code 190{sub}): the token is invalid, \
                         expired or revoked; create a new system-user token in Business Manager \
                         and update {}",
                        self.token_source
                    ),
                    Some(code @ (3 | 10 | 200..=299)) => format!(
                        "the access token may not send events to dataset {dataset} (code \
                         {code}{sub}): in Business Manager, assign the dataset to the token's \
                         system user with full control, give the token the ads_management \
                         permission, then update {}",
                        self.token_source
                    ),
                    Some(100) if graph.error_subcode == Some(33) => format!(
                        "dataset {dataset} does not exist or the access token cannot reach it \
                         (code 100, subcode 33): check destination.dataset_id and that the \
                         token's system user is assigned to that dataset"
                    ),
                    Some(368) => format!(
                        "meta has temporarily blocked this app or account for policy reasons \
                         (code 368{sub}): check Business Support Home for the restriction and \
                         re-run once it is lifted"
                    ),
                    Some(2635) => format!(
                        "api version {} is deprecated (code 2635{sub}): set \
                         destination.api_version to a current version such as v26.0",
                        self.api_version
                    ),
                    Some(code) => format!(
                        "meta refused the request (HTTP {}, code {code}{sub}): fix the request or \
                         the configuration as meta describes below, then re-run",
                        failure.status().unwrap_or_default()
                    ),
                    None => format!(
                        "meta refused the request (HTTP {}) without an error code: check \
                         destination.base_url and destination.api_version",
                        failure.status().unwrap_or_default()
                    ),
                }
            }
            (failure, None) => format!(
                "meta refused the request ({failure}) without a graph error: check \
                 destination.base_url and destination.api_version ({})",
                self.api_version
            ),
        };
        let says = failure
            .graph()
            .and_then(GraphError::text)
            .map(|text| format!("; meta says: \"{}\"", self.scrub(text)))
            .unwrap_or_default();
        let trace = failure.trace_id().unwrap_or("-");
        format!("{meaning}{says} (fbtrace_id {trace})")
    }

    /// The message recorded for rejected events: title, Meta's words, code and trace id.
    fn rejection(&self, graph: &GraphError, failure: &Failure) -> String {
        let title = graph
            .error_user_title
            .as_deref()
            .map(|t| format!("{t}: "))
            .unwrap_or_default();
        let text = graph.text().unwrap_or("invalid event data");
        format!(
            "{title}{} (code 100{}, fbtrace_id {})",
            self.scrub(text),
            graph.subcode_suffix(),
            failure.trace_id().unwrap_or("-")
        )
    }

    /// Removes the token from text that came from elsewhere (Meta's messages, error chains).
    fn scrub(&self, text: &str) -> String {
        text.replace(self.token.expose(), "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DestinationKind;
    use crate::event::{CustomData, UserData, UserValue, PHYSICAL_STORE, PURCHASE};
    use rust_decimal::Decimal;
    use serde_json::{json, Value};
    use std::collections::HashSet;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    const TOKEN: &str = "EAAtestSECRETtoken0123456789";

    // ---- classify -------------------------------------------------------------------------

    fn graph(code: Option<i64>, subcode: Option<i64>, transient: Option<bool>) -> GraphError {
        GraphError {
            message: Some("m".to_owned()),
            code,
            error_subcode: subcode,
            is_transient: transient,
            ..GraphError::default()
        }
    }

    #[test]
    fn classify_table() {
        use Action::{Fail, RejectEvents, Retry};
        // (status, code, subcode, is_transient) → action
        /// (status, code, subcode, is_transient, expected action).
        type Row = (u16, Option<i64>, Option<i64>, Option<bool>, Action);
        let table: &[Row] = &[
            // statuses without a graph error
            (500, None, None, None, Retry),
            (502, None, None, None, Retry),
            (503, None, None, None, Retry),
            (408, None, None, None, Retry),
            (429, None, None, None, Retry),
            (400, None, None, None, Fail),
            (401, None, None, None, Fail),
            (404, None, None, None, Fail),
            // Meta's transient codes, whatever the status
            (500, Some(1), None, Some(false), Retry),
            (500, Some(2), None, None, Retry),
            (400, Some(4), None, None, Retry),
            (400, Some(17), Some(2446079), None, Retry),
            (400, Some(341), None, None, Retry),
            (400, Some(613), Some(1487742), None, Retry),
            (400, Some(21009), None, None, Retry),
            (400, Some(32), None, None, Retry),
            (400, Some(80004), None, None, Retry),
            // is_transient wins over any code
            (400, Some(100), Some(2804003), Some(true), Retry),
            (400, Some(999), None, Some(true), Retry),
            // event data
            (400, Some(100), Some(2804003), Some(false), RejectEvents),
            (400, Some(100), Some(2804019), None, RejectEvents),
            (400, Some(100), None, None, RejectEvents),
            // configuration and permissions
            (400, Some(100), Some(33), None, Fail),
            (400, Some(190), Some(463), None, Fail),
            (401, Some(190), None, None, Fail),
            (400, Some(3), None, None, Fail),
            (403, Some(10), None, None, Fail),
            (403, Some(200), None, None, Fail),
            (403, Some(294), None, None, Fail),
            (400, Some(368), None, None, Fail),
            (400, Some(2635), None, None, Fail),
            // permanent codes stay permanent on a 5xx; unknown codes follow the status
            (500, Some(190), None, None, Fail),
            (400, Some(12345), None, None, Fail),
            (503, Some(12345), None, None, Retry),
            (500, None, None, Some(false), Retry),
        ];
        for &(status, code, subcode, transient, expected) in table {
            let error = graph(code, subcode, transient);
            assert_eq!(
                classify(status, Some(&error)),
                expected,
                "status {status}, code {code:?}, subcode {subcode:?}, transient {transient:?}"
            );
        }
        assert_eq!(classify(503, None), Retry);
        assert_eq!(classify(403, None), Fail);
    }

    #[test]
    fn transport_failures_retry_and_unreadable_answers_fail() {
        let transport = Failure::Transport {
            message: "connection reset".to_owned(),
        };
        assert_eq!(transport.decision(), Decision::Retry { after: None });
        let unreadable = Failure::Unreadable {
            status: 200,
            message: "eof".to_owned(),
            fbtrace_id: None,
        };
        assert_eq!(unreadable.decision(), Decision::Stop);
        let throttled = Failure::Http {
            status: 429,
            graph: None,
            fbtrace_id: None,
            hint: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            throttled.decision(),
            Decision::Retry {
                after: Some(Duration::from_secs(60))
            }
        );
    }

    // ---- parsers --------------------------------------------------------------------------

    #[test]
    fn event_index_is_read_from_meta_messages() {
        assert_eq!(
            event_index("The parameter $['data'][0]['event_time'] is required."),
            Some(0)
        );
        assert_eq!(
            event_index("Invalid parameter at $['data'][417]['user_data']"),
            Some(417)
        );
        assert_eq!(event_index("$[\"data\"][12]"), Some(12));
        assert_eq!(
            event_index("The timestamp for this event is too far in the past."),
            None
        );
        assert_eq!(event_index("$['data'][]"), None);
        assert_eq!(event_index("$['data'][x]"), None);
        assert_eq!(event_index("$['data'][3"), None);
        assert_eq!(event_index("data[3]"), None);
    }

    #[test]
    fn rate_limit_headers_give_capped_hints() {
        let mut headers = HeaderMap::new();
        assert_eq!(rate_limit_hint(&headers), None);
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(rate_limit_hint(&headers), Some(Duration::from_secs(7)));
        let usage = json!({"1234": [{"type": "ads_management", "call_count": 100,
            "estimated_time_to_regain_access": 3}]});
        headers.insert(
            "x-business-use-case-usage",
            usage.to_string().parse().unwrap(),
        );
        assert_eq!(rate_limit_hint(&headers), Some(Duration::from_secs(180)));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-app-usage",
            r#"{"call_count":100,"total_time":20}"#.parse().unwrap(),
        );
        assert_eq!(rate_limit_hint(&headers), None);
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(rate_limit_hint(&headers), None);
        headers.insert("x-app-usage", "not json".parse().unwrap());
        assert_eq!(rate_limit_hint(&headers), None);
        // The retry policy caps what a hint can impose.
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::new(3)
        };
        assert_eq!(
            policy.delay(Duration::from_millis(200), Some(Duration::from_secs(3600))),
            super::super::retry::MAX_HINTED_DELAY
        );
    }

    #[test]
    fn appsecret_proof_matches_rfc_4231_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            appsecret_proof("what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn partner_agent_names_major_and_minor_version() {
        let expected = format!(
            "ocapi_{}_{}",
            env!("CARGO_PKG_VERSION_MAJOR"),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(PARTNER_AGENT, expected);
    }

    // ---- isolate_rejections ---------------------------------------------------------------

    /// Runs `isolate_rejections` over a fake sender that refuses any sub-batch holding a bad
    /// index, naming its position when `named`.
    async fn isolate_with_fake(n: usize, bad: &[usize], named: bool) -> Delivery {
        let bad: HashSet<usize> = bad.iter().copied().collect();
        isolate_rejections(n, |indices: Vec<usize>| {
            let bad = &bad;
            async move {
                let answer = match indices.iter().position(|index| bad.contains(index)) {
                    Some(position) => Answer::Rejected {
                        position: named.then_some(position),
                        message: format!("bad event {}", indices[position]),
                    },
                    None => Answer::Accepted {
                        fbtrace_id: Some("T".to_owned()),
                        events_received: indices.len() as u64,
                    },
                };
                Ok::<_, Infallible>(Attempt {
                    answer,
                    requests: 1,
                    retries: 0,
                })
            }
        })
        .await
        .unwrap()
    }

    /// Every good index accepted exactly once, every bad one rejected exactly once.
    fn assert_partition(delivery: &Delivery, n: usize, bad: &[usize]) {
        let mut accepted: Vec<usize> = delivery
            .accepted
            .iter()
            .flat_map(|a| a.indices.iter().copied())
            .collect();
        accepted.sort_unstable();
        let expected: Vec<usize> = (0..n).filter(|i| !bad.contains(i)).collect();
        assert_eq!(accepted, expected);
        let rejected: Vec<usize> = delivery.rejected.iter().map(|r| r.index).collect();
        let mut bad = bad.to_vec();
        bad.sort_unstable();
        assert_eq!(rejected, bad);
        for rejected in &delivery.rejected {
            assert_eq!(rejected.message, format!("bad event {}", rejected.index));
        }
        for accepted in &delivery.accepted {
            assert_eq!(accepted.events_received, accepted.indices.len() as u64);
        }
    }

    /// 1 + 2·k·⌈log₂ n⌉: the bisection bound.
    fn bisection_bound(n: usize, k: usize) -> u32 {
        let depth = usize::BITS - (n - 1).leading_zeros();
        (1 + 2 * k * depth as usize) as u32
    }

    #[tokio::test]
    async fn no_bad_event_takes_one_request() {
        let delivery = isolate_with_fake(1000, &[], false).await;
        assert_partition(&delivery, 1000, &[]);
        assert_eq!(delivery.requests, 1);
        assert_eq!(delivery.accepted.len(), 1);
    }

    #[tokio::test]
    async fn one_named_bad_event_of_1000_takes_two_requests() {
        let delivery = isolate_with_fake(1000, &[417], true).await;
        assert_partition(&delivery, 1000, &[417]);
        assert_eq!(delivery.requests, 2);
    }

    #[tokio::test]
    async fn one_unnamed_bad_event_of_1000_is_found_by_bisection() {
        let delivery = isolate_with_fake(1000, &[417], false).await;
        assert_partition(&delivery, 1000, &[417]);
        assert!(
            delivery.requests <= bisection_bound(1000, 1),
            "{}",
            delivery.requests
        );
        assert_eq!(
            delivery.requests, 21,
            "two requests per level of a 10-level tree, plus one"
        );
    }

    #[tokio::test]
    async fn several_bad_events_are_all_found() {
        let bad = [0, 1, 333, 500, 998, 999];
        let named = isolate_with_fake(1000, &bad, true).await;
        assert_partition(&named, 1000, &bad);
        assert_eq!(named.requests, bad.len() as u32 + 1);
        let unnamed = isolate_with_fake(1000, &bad, false).await;
        assert_partition(&unnamed, 1000, &bad);
        assert!(
            unnamed.requests <= bisection_bound(1000, bad.len()),
            "{}",
            unnamed.requests
        );
    }

    #[tokio::test]
    async fn all_bad_events_are_rejected() {
        let bad: Vec<usize> = (0..64).collect();
        let unnamed = isolate_with_fake(64, &bad, false).await;
        assert_partition(&unnamed, 64, &bad);
        assert!(unnamed.accepted.is_empty());
        assert_eq!(
            unnamed.requests, 127,
            "every node of a full binary tree over 64 leaves"
        );
        let named = isolate_with_fake(64, &bad, true).await;
        assert_partition(&named, 64, &bad);
        assert_eq!(named.requests, 64);
    }

    #[tokio::test]
    async fn a_single_bad_event_is_rejected_once() {
        let delivery = isolate_with_fake(1, &[0], false).await;
        assert_partition(&delivery, 1, &[0]);
        assert_eq!(delivery.requests, 1);
    }

    #[tokio::test]
    async fn an_empty_batch_sends_nothing() {
        let delivery = isolate_with_fake(0, &[], false).await;
        assert_eq!(delivery, Delivery::default());
    }

    #[tokio::test]
    async fn an_out_of_range_named_index_falls_back_to_bisection() {
        let delivery = isolate_rejections(8, |indices: Vec<usize>| async move {
            let answer = if indices.contains(&5) {
                Answer::Rejected {
                    position: Some(99),
                    message: "bad event 5".to_owned(),
                }
            } else {
                Answer::Accepted {
                    fbtrace_id: None,
                    events_received: indices.len() as u64,
                }
            };
            Ok::<_, Infallible>(Attempt {
                answer,
                requests: 1,
                retries: 0,
            })
        })
        .await
        .unwrap();
        assert_partition(&delivery, 8, &[5]);
    }

    #[tokio::test]
    async fn a_sender_error_aborts_the_batch() {
        let result: Result<Delivery, &str> =
            isolate_rejections(10, |_: Vec<usize>| async { Err("token revoked") }).await;
        assert_eq!(result, Err("token revoked"));
    }

    // ---- rate limiter ---------------------------------------------------------------------

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_concurrent_requests() {
        let limiter = RateLimiter::new(2.0).unwrap();
        let start = Instant::now();
        futures_util::future::join_all((0..5).map(|_| limiter.acquire())).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2050),
            "{elapsed:?}"
        );
        assert!(RateLimiter::new(0.0).is_err());
        assert!(RateLimiter::new(f64::NAN).is_err());
        assert!(RateLimiter::new(1e-300).is_err());
    }

    // ---- secrets --------------------------------------------------------------------------

    fn settings(base_url: &str) -> DestinationConfig {
        DestinationConfig {
            kind: DestinationKind::Meta,
            dataset_id: "123".to_owned(),
            path: None,
            access_token_env: Some("OCAPI_TEST_TOKEN".to_owned()),
            access_token_file: None,
            app_secret_env: None,
            api_version: "v26.0".to_owned(),
            base_url: base_url.to_owned(),
            test_event_code: None,
            upload_tag: None,
            batch_size: 1000,
            concurrency: 4,
            max_retries: 3,
            request_timeout: Duration::from_secs(5),
            max_requests_per_second: None,
        }
    }

    /// A destination with millisecond retry delays, for tests against a real socket (a paused
    /// clock would fire the request timeout while the socket is idle).
    fn destination_with(config: &DestinationConfig, app_secret: Option<&str>) -> MetaDestination {
        let app_secret = app_secret.map(Secret::new);
        let mut inner = Inner::new(config, Secret::new(TOKEN), app_secret.as_ref()).unwrap();
        inner.policy.base_delay = Duration::from_millis(1);
        inner.policy.max_delay = Duration::from_millis(5);
        MetaDestination {
            inner: Box::new(inner),
        }
    }

    fn destination(base_url: &str) -> MetaDestination {
        destination_with(&settings(base_url), None)
    }

    #[test]
    fn debug_of_the_destination_never_shows_the_token_or_proof() {
        let destination = destination_with(&settings("http://127.0.0.1:9"), Some("appsecret"));
        let debug = format!("{destination:?}");
        let proof = appsecret_proof(TOKEN, "appsecret");
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(!debug.contains(&proof), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn errors_never_show_the_token_even_when_meta_echoes_it() {
        let destination = destination("http://127.0.0.1:9");
        let inner = &destination.inner;
        let failure = Failure::Http {
            status: 400,
            graph: Some(GraphError {
                message: Some(format!("Invalid OAuth access token - {TOKEN}")),
                code: Some(190),
                fbtrace_id: Some("TRACE".to_owned()),
                ..GraphError::default()
            }),
            fbtrace_id: Some("TRACE".to_owned()),
            hint: None,
        };
        let permanent = inner.give_up(
            GaveUp::Stopped {
                error: failure,
                retries: 0,
            },
            "send",
        );
        let exhausted = inner.give_up(
            GaveUp::Exhausted {
                error: Failure::Transport {
                    message: inner.scrub(&format!("reset {TOKEN}")),
                },
                retries: 3,
            },
            "send",
        );
        for error in [permanent, exhausted] {
            assert!(!error.to_string().contains(TOKEN), "{error}");
            assert!(!format!("{error:?}").contains(TOKEN), "{error:?}");
        }
    }

    #[test]
    fn from_config_reads_the_token_file_and_builds_the_urls() {
        let path = std::env::temp_dir().join(format!("ocapi-meta-token-{}", std::process::id()));
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let destination_table = format!(
            "kind = \"meta\"\ndataset_id = \"123\"\naccess_token_file = {:?}\n\
             max_requests_per_second = 5.0",
            path.display().to_string()
        );
        let text = crate::config::TEST_CONFIG.replace(
            "kind = \"file\"\ndataset_id = \"123\"\npath = \"out.ndjson\"",
            &destination_table,
        );
        let config = Config::parse(&text, std::path::Path::new("x.toml")).unwrap();
        let destination = MetaDestination::from_config(&config).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(destination.inner.token.expose(), TOKEN, "trimmed");
        assert_eq!(
            destination.inner.events_url,
            "https://graph.facebook.com/v26.0/123/events"
        );
        assert!(destination.inner.limiter.is_some());
        assert!(destination.inner.token_source.contains("token file"));
    }

    #[test]
    fn an_empty_token_is_a_setup_error() {
        let config = settings("http://127.0.0.1:9");
        let error = Inner::new(&config, Secret::new(""), None).unwrap_err();
        assert!(matches!(error, DestinationError::Setup(_)));
        assert!(error.is_permanent() && !error.is_retryable());
    }

    // ---- HTTP against a throwaway server --------------------------------------------------

    /// A canned answer.
    struct Canned {
        status: u16,
        body: Value,
        headers: Vec<(&'static str, String)>,
        /// How long to wait before answering.
        delay: Option<Duration>,
    }

    fn ok(events_received: usize) -> Canned {
        Canned {
            status: 200,
            body: json!({"events_received": events_received, "messages": [],
                "fbtrace_id": "OKTRACE"}),
            headers: Vec::new(),
            delay: None,
        }
    }

    fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Canned {
        Canned {
            status,
            body: json!({"error": {"message": message, "type": "OAuthException", "code": code,
                "error_subcode": subcode, "fbtrace_id": "ERRTRACE"}}),
            headers: Vec::new(),
            delay: None,
        }
    }

    /// What the server saw of one request.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        uri: String,
        authorization: Option<String>,
        body: Value,
    }

    type Responder = Arc<dyn Fn(usize, &Value) -> Canned + Send + Sync>;

    #[derive(Clone)]
    struct Server {
        responder: Responder,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    async fn handle(
        axum::extract::State(server): axum::extract::State<Server>,
        method: axum::http::Method,
        uri: axum::http::Uri,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let n = {
            let mut seen = server.seen.lock().unwrap();
            seen.push(Seen {
                method: method.to_string(),
                uri: uri.to_string(),
                authorization: headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned()),
                body: body.clone(),
            });
            seen.len() - 1
        };
        let canned = (server.responder)(n, &body);
        if let Some(delay) = canned.delay {
            tokio::time::sleep(delay).await;
        }
        let mut response = axum::response::Response::builder()
            .status(canned.status)
            .header("content-type", "application/json");
        for (name, value) in canned.headers {
            response = response.header(name, value);
        }
        response
            .body(axum::body::Body::from(canned.body.to_string()))
            .unwrap()
    }

    /// Serves `responder(request number, request body)` on 127.0.0.1:0.
    async fn serve(
        responder: impl Fn(usize, &Value) -> Canned + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = Server {
            responder: Arc::new(responder),
            seen: Arc::default(),
        };
        let seen = Arc::clone(&server.seen);
        let app = axum::Router::new().fallback(handle).with_state(server);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{address}"), seen)
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event {
                event_name: PURCHASE,
                event_time: 1_764_300_000,
                event_id: format!("order-{i}"),
                action_source: PHYSICAL_STORE,
                user_data: UserData::default().with(
                    crate::config::CustomerField::Em,
                    UserValue::Text("a".repeat(64)),
                ),
                custom_data: CustomData {
                    value: Decimal::new(12345, 2),
                    currency: "USD".to_owned(),
                    order_id: format!("order-{i}"),
                    contents: None,
                    num_items: None,
                    content_type: None,
                    delivery_category: None,
                },
                opt_out: None,
                data_processing_options: None,
                data_processing_options_country: None,
                data_processing_options_state: None,
            })
            .collect()
    }

    /// The event ids in a request body.
    fn ids(body: &Value) -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["event_id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn seen(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_200_delivers_the_batch_with_the_token_in_the_body_only() {
        // GIVEN a server that takes everything
        let (base_url, requests) = serve(|_, body| ok(ids(body).len())).await;
        let destination = destination(&base_url);
        // WHEN a batch of 3 is sent
        let delivery = destination.send(&events(3)).await.unwrap();
        // THEN it is accepted in one request
        assert_eq!(delivery, {
            let mut expected = Delivery::all_accepted(3, Some("OKTRACE".to_owned()));
            expected.requests = 1;
            expected
        });
        let requests = seen(&requests);
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.uri, "/v26.0/123/events");
        assert!(!request.uri.contains(TOKEN));
        assert_eq!(request.body["access_token"], TOKEN);
        assert_eq!(request.body["partner_agent"], PARTNER_AGENT);
        assert_eq!(ids(&request.body), ["order-0", "order-1", "order-2"]);
        assert!(request.body.get("test_event_code").is_none());
        assert!(request.body.get("appsecret_proof").is_none());
        assert_eq!(request.body["data"][0]["action_source"], "physical_store");
    }

    #[tokio::test]
    async fn test_event_code_and_appsecret_proof_are_sent_when_configured() {
        let (base_url, requests) = serve(|_, body| ok(ids(body).len())).await;
        let mut config = settings(&base_url);
        config.test_event_code = Some("TEST4242".to_owned());
        let destination = destination_with(&config, Some("appsecret"));
        destination.send(&events(1)).await.unwrap();
        let body = &seen(&requests)[0].body;
        assert_eq!(body["test_event_code"], "TEST4242");
        assert_eq!(body["appsecret_proof"], appsecret_proof(TOKEN, "appsecret"));
    }

    #[tokio::test]
    async fn a_5xx_then_200_is_retried_and_counted() {
        let (base_url, requests) = serve(|n, body| {
            if n == 0 {
                Canned {
                    status: 503,
                    body: json!({"error": {"message": "Service temporarily unavailable",
                        "code": 2, "is_transient": true, "fbtrace_id": "T503"}}),
                    headers: Vec::new(),
                    delay: None,
                }
            } else {
                ok(ids(body).len())
            }
        })
        .await;
        let delivery = destination(&base_url).send(&events(4)).await.unwrap();
        assert_eq!(delivery.retries, 1);
        assert_eq!(delivery.requests, 2);
        assert_eq!(delivery.accepted.len(), 1);
        assert_eq!(delivery.accepted[0].indices, [0, 1, 2, 3]);
        assert!(delivery.rejected.is_empty());
        assert_eq!(seen(&requests).len(), 2);
    }

    #[tokio::test]
    async fn persistent_5xx_exhausts_the_retries() {
        let (base_url, requests) = serve(|_, _| Canned {
            status: 502,
            body: json!("bad gateway"),
            headers: Vec::new(),
            delay: None,
        })
        .await;
        let error = destination(&base_url).send(&events(2)).await.unwrap_err();
        assert!(
            matches!(&error, DestinationError::RetriesExhausted { attempts: 4, last_error }
                if last_error == "HTTP 502"),
            "{error:?}"
        );
        assert!(error.is_retryable());
        assert_eq!(
            seen(&requests).len(),
            4,
            "one attempt and max_retries = 3 retries"
        );
    }

    #[tokio::test]
    async fn an_invalid_token_is_permanent_and_not_retried() {
        let (base_url, requests) = serve(|_, _| {
            graph_error(
                400,
                190,
                Some(463),
                &format!("Error validating access token: {TOKEN}"),
            )
        })
        .await;
        let error = destination(&base_url).send(&events(2)).await.unwrap_err();
        let message = error.to_string();
        assert!(error.is_permanent() && !error.is_retryable());
        assert!(message.contains("code 190, subcode 463"), "{message}");
        assert!(message.contains("OCAPI_TEST_TOKEN"), "{message}");
        assert!(
            message.contains("Error validating access token"),
            "{message}"
        );
        assert!(message.contains("ERRTRACE"), "{message}");
        assert!(!message.contains(TOKEN), "{message}");
        assert_eq!(seen(&requests).len(), 1);
    }

    #[tokio::test]
    async fn an_unknown_dataset_is_permanent() {
        let (base_url, _) = serve(|_, _| {
            graph_error(
                400,
                100,
                Some(33),
                "Unsupported post request. Object does not exist",
            )
        })
        .await;
        let error = destination(&base_url).send(&events(2)).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("dataset 123 does not exist"), "{message}");
        assert!(message.contains("destination.dataset_id"), "{message}");
    }

    #[tokio::test]
    async fn a_named_bad_event_is_rejected_and_the_rest_delivered() {
        // GIVEN a server that refuses any request carrying order-2, naming its position
        let (base_url, requests) = serve(|_, body| {
            let ids = ids(body);
            match ids.iter().position(|id| id == "order-2") {
                Some(position) => graph_error(
                    400,
                    100,
                    Some(2804003),
                    &format!("The parameter $['data'][{position}]['event_time'] is too old."),
                ),
                None => ok(ids.len()),
            }
        })
        .await;
        // WHEN a batch of 5 is sent
        let delivery = destination(&base_url).send(&events(5)).await.unwrap();
        // THEN order-2 is rejected with Meta's message and the rest go in a second request
        assert_eq!(delivery.requests, 2);
        assert_eq!(delivery.retries, 0);
        assert_eq!(delivery.rejected.len(), 1);
        assert_eq!(delivery.rejected[0].index, 2);
        assert!(delivery.rejected[0]
            .message
            .contains("['event_time'] is too old"));
        assert!(delivery.rejected[0].message.contains("subcode 2804003"));
        assert!(delivery.rejected[0].message.contains("ERRTRACE"));
        assert_eq!(delivery.accepted.len(), 1);
        assert_eq!(delivery.accepted[0].indices, [0, 1, 3, 4]);
        assert_eq!(
            ids(&seen(&requests)[1].body),
            ["order-0", "order-1", "order-3", "order-4"]
        );
    }

    #[tokio::test]
    async fn an_unnamed_bad_event_is_found_by_bisection_over_http() {
        let (base_url, requests) = serve(|_, body| {
            let ids = ids(body);
            if ids.iter().any(|id| id == "order-5") {
                graph_error(400, 100, Some(2804050), "Insufficient customer information")
            } else {
                ok(ids.len())
            }
        })
        .await;
        let delivery = destination(&base_url).send(&events(8)).await.unwrap();
        let rejected: Vec<usize> = delivery.rejected.iter().map(|r| r.index).collect();
        assert_eq!(rejected, [5]);
        let mut accepted: Vec<usize> = delivery
            .accepted
            .iter()
            .flat_map(|a| a.indices.clone())
            .collect();
        accepted.sort_unstable();
        assert_eq!(accepted, [0, 1, 2, 3, 4, 6, 7]);
        assert_eq!(delivery.requests, 7, "1 + 2 per level of a 3-level tree");
        assert_eq!(seen(&requests).len(), 7);
    }

    #[tokio::test]
    async fn a_count_mismatch_is_an_error() {
        let (base_url, _) = serve(|_, body| ok(ids(body).len() - 1)).await;
        let error = destination(&base_url).send(&events(3)).await.unwrap_err();
        assert!(
            matches!(error, DestinationError::CountMismatch { sent: 3, received: 2, ref fbtrace_id }
                if fbtrace_id == "OKTRACE"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_then_reported_without_url_or_token() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = destination(&format!("http://{address}"))
            .send(&events(1))
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(
            error,
            DestinationError::RetriesExhausted { attempts: 4, .. }
        ));
        assert!(!message.contains(TOKEN), "{message}");
        assert!(!message.contains("http://"), "{message}");
    }

    #[tokio::test]
    async fn check_uses_a_bearer_header_and_describes_the_dataset() {
        let (base_url, requests) = serve(|_, _| Canned {
            status: 200,
            body: json!({"id": "123", "name": "Store sales", "is_consolidated_container": true}),
            headers: Vec::new(),
            delay: None,
        })
        .await;
        let description = destination(&base_url).check().await.unwrap();
        assert!(description.contains("123 \"Store sales\""), "{description}");
        assert!(description.contains("consolidated"), "{description}");
        assert!(!description.contains('\n'));
        let request = &seen(&requests)[0];
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.uri,
            "/v26.0/123?fields=id,name,is_consolidated_container"
        );
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }

    #[tokio::test]
    async fn check_classifies_errors_like_send() {
        let (base_url, _) = serve(|_, _| graph_error(403, 200, None, "Permissions error")).await;
        let error = destination(&base_url).check().await.unwrap_err();
        assert!(error.is_permanent());
        assert!(
            error
                .to_string()
                .contains("may not send events to dataset 123"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_timeout_is_retried() {
        // GIVEN a server whose first answer comes after the request timeout
        let (base_url, requests) = serve(|n, body| {
            let canned = ok(ids(body).len());
            if n == 0 {
                Canned {
                    delay: Some(Duration::from_secs(2)),
                    ..canned
                }
            } else {
                canned
            }
        })
        .await;
        let mut config = settings(&base_url);
        config.request_timeout = Duration::from_millis(300);
        // WHEN a batch is sent
        let delivery = destination_with(&config, None)
            .send(&events(2))
            .await
            .unwrap();
        // THEN the timed-out request is retried once
        assert_eq!(delivery.retries, 1);
        assert_eq!(delivery.requests, 2);
        assert_eq!(seen(&requests).len(), 2);
    }

    #[tokio::test]
    async fn a_throttled_answer_is_retried_after_the_capped_retry_after() {
        let (base_url, _) = serve(|n, body| {
            if n == 0 {
                let mut canned = graph_error(400, 4, None, "Application request limit reached");
                canned.headers.push(("retry-after", "5".to_owned()));
                canned
            } else {
                ok(ids(body).len())
            }
        })
        .await;
        let mut destination = destination(&base_url);
        destination.inner.policy.max_hinted_delay = Duration::from_millis(300);
        let start = Instant::now();
        let delivery = destination.send(&events(1)).await.unwrap();
        assert_eq!(delivery.retries, 1);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(300),
            "hint honoured: {elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(5), "hint capped: {elapsed:?}");
    }
}
