//! The `meta` destination: Meta's Conversions API (docs/meta-capi.md, decisions 1, 6, 7, 9 and 10).
//!
//! One batch is one `POST {base_url}/{api_version}/{dataset_id}/events` carrying the events in
//! `data` and the access token in the JSON body (never in a URL). Each HTTP exchange goes
//! through [`retry_until_stopped`] with the pure [`classify`] deciding what a failure means:
//!
//! * transient (timeout, reset, 408/429/5xx, `is_transient`, throttling codes, a refusal from a
//!   public address): retried;
//! * event data (code 100, any subcode but 33): the bad events are isolated
//!   ([`isolate`](super::isolate)), by the event Meta blames or by bisection, recorded as
//!   rejected with Meta's code and subcode, and the rest re-sent;
//! * anything else: a typed [`MetaError`] or [`TransportError`] saying what it means and what
//!   to do, at once (no backoff cascade for a stand-in that is not running).
//!
//! Stages, one file each: [`graph`] (wire types, signing, throttle headers), [`classify`]
//! (pure decisions), [`error`] (the typed errors and their advice), [`transport`] (reading a
//! client error), [`quality`] (the Dataset Quality API call), [`side`] (Meta's side: the token's
//! and the version's life, Meta's counts and diagnostics, with [`token`] and [`versions`]).
//!
//! Secrets: the token lives in a [`Secret`]; it is written only into request bodies (and the
//! `Authorization` header of GET requests). Errors and logs never carry a URL query, a body, or
//! user data; Meta's own messages are scrubbed of the token before use.
//!
//! Hostile answers: no redirect is followed (a `3xx` is a failure naming its target, since a
//! followed `307`/`308` would re-send the token and the events to the target host), and no
//! answer body is read past [`MAX_ANSWER_BYTES`]. A stop request (see
//! [`MetaDestination::stopping_on`]) cuts every wait between requests short.

mod classify;
mod error;
mod graph;
pub mod life;
mod quality;
pub mod side;
pub mod token;
mod transport;
pub mod versions;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::isolate::{isolate_rejections, Answer, Attempt, Refusal};
use super::rate_limit::RateLimiter;
use super::retry::{retry_until_stopped, GaveUp, Retried, RetryPolicy, Traced};
use super::{Delivery, DestinationError};
use crate::config::{Config, DestinationConfig};
use crate::event::Event;
use crate::secret::Secret;
use classify::Action;
use error::AdviceContext;
use graph::{DatasetInfo, ErrorBody, EventsResponse};

pub use error::{Failure, MetaError, TransportError, TransportKind};
pub use graph::PARTNER_AGENT;

/// The most of an answer's body ocapi reads: 4 MiB. A Graph answer it reads is a few hundred
/// bytes (`events_received`, `messages` and `fbtrace_id`; a dataset's fields; an error object)
/// up to some KiB (the Dataset Quality API's scores), so the cap is far above any real answer
/// and far below what a hostile or broken server can send: the body is read in chunks and the
/// request fails, naming this cap, as soon as it passes it (or at once, when `Content-Length`
/// says so).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

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
    ///
    /// # Errors
    /// [`DestinationError::Secret`] when a secret cannot be read, [`DestinationError::Invalid`]
    /// for an empty token or a rate that is not positive, [`DestinationError::Client`] when the
    /// TLS backend does not start.
    pub(crate) fn from_config(config: &Config) -> Result<Self, DestinationError> {
        let token = config.access_token().map_err(DestinationError::Secret)?;
        let app_secret = config.app_secret().map_err(DestinationError::Secret)?;
        let inner = Inner::new(&config.destination, token, app_secret.as_ref())?;
        Ok(Self {
            inner: Box::new(inner),
        })
    }

    /// Delivers one batch: every event ends up accepted or rejected (with Meta's message, code
    /// and subcode), or the whole call fails with a typed error whose `attempts()` counts every
    /// request made. The run loop sends several batches at once.
    pub(crate) async fn send(&self, events: &[Event]) -> Result<Delivery, DestinationError> {
        let inner = &*self.inner;
        // Each event's digest, taken from the first body that carries it.
        let digests = std::sync::Mutex::new(vec![None; events.len()]);
        let digests_ref = &digests;
        let mut delivery = isolate_rejections(events.len(), |indices: Vec<usize>| async move {
            inner.post_events(events, &indices, digests_ref).await
        })
        .await
        .map_err(|aborted| aborted.error.after(aborted.requests))?;
        delivery.digests = digests
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner());
        Ok(delivery)
    }

    /// The same destination, whose waits (retry delays, throttle hints, rate-limit slots) end
    /// at once when `stop` is cancelled; the call waiting then fails with
    /// [`DestinationError::Stopped`]. A request under way is not interrupted (it ends within
    /// `destination.request_timeout`).
    pub(crate) fn stopping_on(mut self, stop: CancellationToken) -> Self {
        self.inner.stop = stop;
        self
    }

    /// Verifies the token and the dataset without sending events; says what it found.
    pub(crate) async fn check(&self) -> Result<String, DestinationError> {
        self.inner.check().await
    }
}

/// The destination's state: client, URLs, secrets, retry policy and rate limiter.
struct Inner {
    /// One client for every request: its pool is sized for `destination.concurrency`.
    client: reqwest::Client,
    /// `{base_url}/{api_version}`, no query.
    version_url: String,
    /// `{version_url}/{dataset_id}`, no query.
    dataset_url: String,
    /// `{dataset_url}/events`, no query.
    events_url: String,
    /// The access token.
    token: Secret,
    /// `appsecret_proof`, when an app secret is configured.
    appsecret_proof: Option<Secret>,
    /// `destination.test_event_code`.
    test_event_code: Option<String>,
    /// `destination.upload_tag`.
    upload_tag: Option<String>,
    /// `destination.ad_account_id`, digits only (the `act_` prefix taken off).
    ad_account_id: Option<String>,
    /// What the advice of a final error needs (dataset, version, where the token comes from).
    advice: AdviceContext,
    /// Retries for transient failures.
    policy: RetryPolicy,
    /// `destination.request_timeout`, for messages.
    request_timeout: Duration,
    /// `destination.max_requests_per_second`.
    limiter: Option<RateLimiter>,
    /// Cancelled when the run is asked to stop: every wait ends then.
    stop: CancellationToken,
    /// The version headers of Meta's answers.
    versions: side::VersionWatch,
    /// Request-body buffers kept between batches.
    bodies: graph::Bodies,
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
            return Err(DestinationError::Invalid(
                "the meta access token is empty".to_owned(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.concurrency.max(1))
            .user_agent(concat!("ocapi/", env!("CARGO_PKG_VERSION")))
            // A followed 307/308 would re-send the token and the events to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DestinationError::Client(e.without_url()))?;
        let limiter = config
            .max_requests_per_second
            .map(|rate| {
                RateLimiter::new(rate).ok_or_else(|| {
                    DestinationError::Invalid(
                        "destination.max_requests_per_second must be a positive number".to_owned(),
                    )
                })
            })
            .transpose()?;
        let token_source = match (&config.access_token_file, &config.access_token_env) {
            (Some(path), _) => format!("the token file {}", path.display()),
            (None, var) => format!(
                "the {} environment variable",
                var.as_deref().unwrap_or("META_ACCESS_TOKEN")
            ),
        };
        if let Some(code) = &config.test_event_code {
            tracing::warn!(
                test_event_code = %code,
                "destination.test_event_code is set: events show under Test Events but Meta \
                 still keeps them as real data; remove it before sending production data"
            );
        }
        let base_url = config.base_url.as_str();
        let version_url = format!("{base_url}/{}", config.api_version);
        let dataset_url = format!("{version_url}/{}", config.dataset_id);
        Ok(Self {
            client,
            events_url: format!("{dataset_url}/events"),
            dataset_url,
            version_url,
            appsecret_proof: app_secret
                .map(|secret| Secret::new(graph::appsecret_proof(token.expose(), secret.expose()))),
            token,
            test_event_code: config.test_event_code.clone(),
            upload_tag: config.upload_tag.clone(),
            ad_account_id: config
                .ad_account_id
                .as_deref()
                .map(|a| a.strip_prefix("act_").unwrap_or(a).to_owned()),
            advice: AdviceContext {
                dataset_id: config.dataset_id.clone(),
                api_version: config.api_version.clone(),
                token_source,
                stand_in: !base_url.starts_with(crate::config::DEFAULT_BASE_URL),
            },
            policy: RetryPolicy::new(config.max_retries),
            request_timeout: config.request_timeout,
            limiter,
            stop: CancellationToken::new(),
            versions: side::VersionWatch::default(),
            bodies: graph::Bodies::default(),
        })
    }

    /// `GET {url}` with the token in the `Authorization` header and `query` plus the
    /// `appsecret_proof` (an HMAC, not the token; a GET can only carry it in the query) in the
    /// query, with retries. `what` names the request in logs.
    async fn get<T: DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<T, DestinationError> {
        self.get_with(&self.policy, url, query, what).await
    }

    /// [`Inner::get`] with another retry policy (one attempt for reads whose failure is only a
    /// warning, so that a flaky network does not hold a run up before it sends).
    async fn get_with<T: DeserializeOwned>(
        &self,
        policy: &RetryPolicy,
        url: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<T, DestinationError> {
        let mut request = self
            .client
            .get(url)
            .query(query)
            .bearer_auth(self.token.expose());
        if let Some(proof) = &self.appsecret_proof {
            request = request.query(&[("appsecret_proof", proof.expose())]);
        }
        let result = retry_until_stopped(policy, &self.stop, classify::decision, || {
            let attempt = request
                .try_clone()
                .expect("a request without a body can be cloned");
            self.exchange::<T>(attempt)
        })
        .await;
        result
            .map(|retried| retried.value)
            .map_err(|gave_up| self.give_up(gave_up, what))
    }

    /// `GET {dataset_url}?fields=id,name,is_consolidated_container`: a one-line description.
    async fn check(&self) -> Result<String, DestinationError> {
        let fields = [("fields", "id,name,is_consolidated_container")];
        let info: DatasetInfo = self.get(&self.dataset_url, &fields, "check").await?;
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
            info.id, self.advice.api_version
        ))
    }

    /// Sends the events at `indices` as one request, with retries.
    async fn post_events(
        &self,
        events: &[Event],
        indices: &[usize],
        digests: &std::sync::Mutex<Vec<Option<u128>>>,
    ) -> Result<Attempt, DestinationError> {
        let body = {
            let mut digests = digests.lock().unwrap_or_else(|poison| poison.into_inner());
            bytes::Bytes::from(self.events_body(events, indices, &mut digests))
        };
        // The body is moved into the request once; every attempt sends a clone of that request,
        // which shares the bytes instead of copying ~1 MB per attempt.
        let request = self
            .client
            .post(&self.events_url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone());
        // Each answer is classified once: the action decided for the last failure says, when
        // the retry loop stops, whether Meta refused the events' data (isolate) or the request.
        let rejects_data = AtomicBool::new(false);
        let decide = |failure: &Failure| {
            let action = classify::action(failure);
            rejects_data.store(action == Action::RejectEvents, Ordering::Relaxed);
            classify::decision_for(action, failure)
        };
        let result = retry_until_stopped(&self.policy, &self.stop, decide, || {
            let attempt = request
                .try_clone()
                .expect("a request with an in-memory body can be cloned");
            self.exchange::<EventsResponse>(attempt)
        })
        .await;
        drop(request);
        self.bodies.give_back(body);
        match result {
            Ok(Retried { value, retries }) => {
                let requests = retries + 1;
                if value.events_received != indices.len() as u64 {
                    return Err(DestinationError::CountMismatch {
                        sent: indices.len(),
                        received: value.events_received,
                        fbtrace_id: value.fbtrace_id.unwrap_or_else(|| "-".to_owned()),
                        attempts: requests,
                    });
                }
                Ok(Attempt {
                    answer: Answer::Accepted {
                        fbtrace_id: value.fbtrace_id,
                        events_received: value.events_received,
                    },
                    requests,
                    retries,
                })
            }
            Err(GaveUp::Stopped {
                error: Failure::Meta(error),
                retries,
            }) if rejects_data.load(Ordering::Relaxed) => {
                let position = classify::blamed_position(&error);
                tracing::warn!(
                    status = error.status(),
                    code = error.code(),
                    subcode = error.error_subcode(),
                    events = indices.len(),
                    named_index = position,
                    fbtrace_id = error.fbtrace_id(),
                    "meta rejected event data; isolating the bad events"
                );
                Ok(Attempt {
                    answer: Answer::Rejected {
                        position,
                        refusal: Refusal {
                            message: error.rejection(),
                            code: error.code(),
                            error_subcode: error.error_subcode(),
                        },
                    },
                    requests: retries + 1,
                    retries,
                })
            }
            Err(gave_up) => Err(self.give_up(gave_up, "send")),
        }
    }

    /// One HTTP exchange, read into `T` on success.
    async fn exchange<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Failure> {
        if let Some(limiter) = &self.limiter {
            if !limiter.acquire(&self.stop).await {
                let url = request
                    .try_clone()
                    .and_then(|r| r.build().ok())
                    .map(|r| transport::safe_url(r.url()))
                    .unwrap_or_default();
                return Err(self.failure(TransportKind::Stopped, url, String::new()));
            }
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Err(self.transport(error).await),
        };
        let status = response.status().as_u16();
        let url = transport::safe_url(response.url());
        if (300..400).contains(&status) {
            let target = transport::redirect_target(&response);
            tracing::warn!(status, url = %url, target = %target, "the endpoint answered a redirect; ocapi follows none");
            return Err(self.failure(TransportKind::Redirect { status }, url, target));
        }
        let header_trace = response
            .headers()
            .get("x-fb-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let hint = graph::rate_limit_hint(response.headers());
        self.versions
            .observe(response.headers(), &self.advice.api_version);
        let bytes = match transport::read_capped(&mut response, MAX_ANSWER_BYTES).await {
            Ok(bytes) => bytes,
            Err(transport::Capped::Read(error)) => return Err(self.transport(error).await),
            Err(transport::Capped::TooLarge(detail)) => {
                return Err(self.failure(TransportKind::TooLarge, url, detail))
            }
        };
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|error| {
                Failure::Meta(MetaError::unreadable(
                    status,
                    error.to_string(),
                    header_trace,
                ))
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
        Err(Failure::Meta(MetaError::http(
            status,
            graph,
            header_trace,
            hint,
        )))
    }

    /// A failure without a usable answer, of `kind`, on `url` (already without its query).
    fn failure(&self, kind: TransportKind, url: String, detail: String) -> Failure {
        Failure::Transport(TransportError::new(
            kind,
            url,
            self.scrub(&detail),
            self.request_timeout,
        ))
    }

    /// A client error as a typed failure, scrubbed of the token.
    async fn transport(&self, error: reqwest::Error) -> Failure {
        Failure::Transport(
            transport::transport_error(error, self.request_timeout, |text| self.scrub(text)).await,
        )
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
                    last: error,
                }
            }
            GaveUp::Cancelled { error, retries } => {
                tracing::info!(error = %error, "meta {what} request abandoned: stop requested");
                DestinationError::Stopped {
                    attempts: retries + 1,
                    last: error,
                }
            }
            GaveUp::Stopped {
                error: Failure::Transport(error),
                retries,
            } if error.kind() == TransportKind::Stopped => DestinationError::Stopped {
                attempts: retries,
                last: Failure::Transport(error),
            },
            GaveUp::Stopped {
                error: Failure::Transport(error),
                retries,
            } => {
                // Returned, and said once by the caller (`check`'s FAIL line, the run's error).
                tracing::debug!(error = %error, "meta {what} request cannot reach the endpoint");
                DestinationError::Unreachable {
                    error,
                    attempts: retries + 1,
                }
            }
            GaveUp::Stopped {
                error: Failure::Meta(error),
                retries,
            } => {
                // A refused read of Meta's side (docs/meta-side.md) is only a warning for the
                // caller, so it is not an error in the log either.
                if matches!(
                    what,
                    "debug_token" | "stats" | "diagnostics" | "dataset quality"
                ) {
                    tracing::warn!(
                        status = error.status(),
                        code = error.code(),
                        subcode = error.error_subcode(),
                        fbtrace_id = error.fbtrace_id(),
                        "meta refused the {what} request"
                    );
                } else {
                    tracing::error!(
                        status = error.status(),
                        code = error.code(),
                        subcode = error.error_subcode(),
                        fbtrace_id = error.fbtrace_id(),
                        "meta refused the {what} request"
                    );
                }
                let advice = self.advice.advice(&error);
                DestinationError::Meta {
                    error: error.advised(advice),
                    attempts: retries + 1,
                }
            }
        }
    }

    /// Removes the token from text that came from elsewhere (Meta's messages, error chains).
    fn scrub(&self, text: &str) -> String {
        text.replace(self.token.expose(), "[redacted]")
    }
}

#[cfg(test)]
mod tests;
