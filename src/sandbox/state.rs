//! The sandbox's state, shared by every handler: what it accepts (token, dataset, app
//! secret), the current faults, the bodies of accepted requests and the counters that
//! [`super::SandboxStats`] reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use axum::body::Bytes;
use serde_json::Value;

use super::meta_side::{MetaSide, TokenDates};
use super::quality::Accepted;
use super::{validate, Faults, SandboxOptions, SandboxStats};

/// State behind the handlers.
pub(super) struct Shared {
    /// The accepted token.
    pub(super) access_token: String,
    /// The accepted dataset id, if restricted.
    pub(super) dataset_id: Option<String>,
    /// The app secret `appsecret_proof` is checked against.
    pub(super) app_secret: Option<String>,
    /// Current faults; read once per request, never held across an await.
    pub(super) faults: RwLock<Faults>,
    /// Bodies of accepted requests, in arrival order.
    pub(super) accepted: Mutex<Vec<AcceptedBody>>,
    /// See [`SandboxStats::requests`].
    pub(super) requests: AtomicU64,
    /// See [`SandboxStats::accepted_requests`].
    pub(super) accepted_requests: AtomicU64,
    /// See [`SandboxStats::rejected_requests`].
    pub(super) rejected_requests: AtomicU64,
    /// See [`SandboxStats::faults_injected`].
    pub(super) faults_injected: AtomicU64,
    /// See [`SandboxStats::events_accepted`].
    pub(super) events_accepted: AtomicU64,
    /// POSTs being handled now.
    pub(super) in_flight: AtomicU64,
    /// See [`SandboxStats::max_in_flight`].
    pub(super) max_in_flight: AtomicU64,
    /// See [`SandboxStats::tokens_seen_in_url`].
    pub(super) tokens_seen_in_url: AtomicU64,
    /// The token's debug info and the other read edges' answers.
    pub(super) meta_side: MetaSide,
    /// The token's dates, fixed at start.
    pub(super) token_dates: TokenDates,
}

impl Shared {
    /// Fresh state for `options`.
    pub(super) fn new(options: SandboxOptions) -> Self {
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
            token_dates: TokenDates::new(&options.meta_side, now_secs()),
            meta_side: options.meta_side,
        }
    }

    /// A copy of the current faults.
    pub(super) fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The accepted events, decoded from the stored bodies.
    pub(super) fn events(&self) -> Vec<Value> {
        self.accepted_events()
            .into_iter()
            .map(|record| record.event)
            .collect()
    }

    /// The accepted events with their acceptance times, decoded from the stored bodies. The
    /// lock is held only to copy the list of bodies (reference-counted, not deep copies).
    pub(super) fn accepted_events(&self) -> Vec<Accepted> {
        let bodies = self
            .accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        bodies.iter().flat_map(AcceptedBody::events).collect()
    }

    /// The counters now.
    pub(super) fn stats(&self) -> SandboxStats {
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
}

/// The body of one accepted request, kept as received. Why not the events: decoding every
/// event into a `Value` (and copying it) cost more CPU than all the rest of a request; the
/// inspection routes, which are rare, decode the bodies instead.
#[derive(Debug, Clone)]
pub(super) struct AcceptedBody {
    /// The request body; `Bytes` shares hyper's buffer, so keeping it copies nothing.
    pub(super) body: Bytes,
    /// Unix seconds at acceptance.
    pub(super) received_at: i64,
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
pub(super) struct InFlight<'a> {
    /// The counters' owner.
    shared: &'a Shared,
}

impl<'a> InFlight<'a> {
    /// Counts one more POST in flight.
    pub(super) fn enter(shared: &'a Shared) -> Self {
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

/// Unix seconds now.
pub(super) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}
