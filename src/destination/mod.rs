//! Where events go. Delivery is at-least-once: a batch may reach the destination again after a
//! crash, always with the same `event_id`, `event_time`, `event_name` and `order_id`, which Meta
//! deduplicates on; the ledger makes sure an order is recorded `sent` once.

mod file;
pub(crate) mod isolate;
pub mod meta;
mod print;
pub(crate) mod rate_limit;
pub(crate) mod retry;

use crate::config::{Config, ConfigError, DestinationKind};
use crate::event::Event;

pub use file::FileDestination;
pub use meta::{Failure, MetaDestination, MetaError, TransportError, TransportKind};
pub use print::PrintDestination;

/// Errors from a destination, typed so that the run decides what to do (retry later, stop,
/// exit code) from the variant and Meta's codes, never from text.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// Writing the NDJSON file failed.
    #[error("cannot write events to {path}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Meta refused the request for a reason no retry fixes (token, permission, unknown
    /// dataset, policy block, an answer that is not the Graph API's); the error's `Display`
    /// says what it means and what to do.
    #[error("{error}")]
    Meta {
        /// Meta's answer: status, code, subcode, fbtrace_id and message.
        error: MetaError,
        /// HTTP requests made by the call that failed, retries and earlier sub-batches included.
        attempts: u32,
    },
    /// The endpoint could not be reached for a reason no backoff fixes: nothing listening at a
    /// local or private address, a host name that does not resolve, a plain-HTTP server behind
    /// an `https://` URL. The message names the URL (never its query).
    #[error("{error}")]
    Unreachable {
        /// What happened, with the URL.
        error: TransportError,
        /// HTTP requests attempted by the call that failed.
        attempts: u32,
    },
    /// Transient failures went on past `max_retries`.
    #[error("request failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// HTTP requests made by the call that failed, retries and earlier sub-batches included.
        attempts: u32,
        /// The last failure.
        last: Failure,
    },
    /// A stop was requested (SIGTERM or Ctrl-C) while the batch waited: for a retry after a
    /// transient failure (a throttle's `Retry-After`, a backoff) or for a rate-limit slot. The
    /// wait ended at once; no event of the batch is recorded `sent`, and the next run sends them.
    #[error(
        "stopped on request while waiting to send a batch again, after {attempts} attempts \
         (last: {last}); its orders are not recorded sent and the next run sends them"
    )]
    Stopped {
        /// HTTP requests made by the call, retries and earlier sub-batches included.
        attempts: u32,
        /// The failure the batch was waiting to retry, or the stop itself (no request made).
        last: Failure,
    },
    /// Meta answered 200 but counted a different number of events than were sent.
    #[error("meta received {received} events of a batch of {sent} (fbtrace_id {fbtrace_id})")]
    CountMismatch {
        /// Events in the request.
        sent: usize,
        /// `events_received` in the answer.
        received: u64,
        /// Meta's trace id.
        fbtrace_id: String,
        /// HTTP requests made by the call that failed.
        attempts: u32,
    },
    /// A secret the destination needs (the access token, the app secret) cannot be read: only a
    /// configuration change fixes it.
    #[error("cannot set up the destination")]
    Secret(#[source] ConfigError),
    /// The destination's configuration cannot work (an empty token, a rate that is not a
    /// positive number, a file destination without a path); the message names the key.
    #[error("{0}")]
    Invalid(String),
    /// The HTTP client could not be built (the TLS backend failed to start).
    #[error("cannot build the http client")]
    Client(#[source] reqwest::Error),
    /// A failure around sending that is not the destination's own; not a configuration
    /// problem. (A lost lock is [`crate::lock::LockLost`], a dry run that cannot print
    /// [`DestinationError::Print`].)
    #[error("cannot set up the destination")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A dry run could not print its events on stdout (a closed pipe).
    #[error("cannot print the events on stdout")]
    Print(#[source] std::io::Error),
}

impl DestinationError {
    /// Whether a person must act before sending can succeed: Meta refused the token, a
    /// permission or the dataset, or a setting cannot work; the message says what to do.
    /// Nothing listening at the endpoint is not among them: a stand-in or proxy that restarts
    /// comes back by itself (the run still fails at once, naming the URL).
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Self::Meta { .. } | Self::Secret(_) | Self::Invalid(_))
    }

    /// Whether only a configuration change can fix it (exit code 2; `watch` stops): a secret
    /// that cannot be read, or a destination setting that cannot work. Meta refusing the token
    /// (code 190) or the dataset is not one: the config may be right and Meta's side wrong, and
    /// the README's exit-code table puts Meta failures under 1.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Secret(_) | Self::Invalid(_))
    }

    /// HTTP requests the failed call made, retries and bisection included, so that a run that
    /// fails still counts every attempt. 0 when no request left.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Meta { attempts, .. }
            | Self::Unreachable { attempts, .. }
            | Self::RetriesExhausted { attempts, .. }
            | Self::Stopped { attempts, .. }
            | Self::CountMismatch { attempts, .. } => *attempts,
            Self::File { .. }
            | Self::Secret(_)
            | Self::Invalid(_)
            | Self::Client(_)
            | Self::Setup(_)
            | Self::Print(_) => 0,
        }
    }

    /// Meta's error, when the failure was an answer from Meta (the last one, after retries).
    pub(crate) fn meta_error(&self) -> Option<&MetaError> {
        match self {
            Self::Meta { error, .. } => Some(error),
            Self::RetriesExhausted { last, .. } => last.meta(),
            _ => None,
        }
    }

    /// Meta's `code` (e.g. 190 for the token), when Meta answered.
    pub fn code(&self) -> Option<i64> {
        self.meta_error()?.code()
    }

    /// Meta's `error_subcode`, when Meta answered with one.
    pub fn error_subcode(&self) -> Option<i64> {
        self.meta_error()?.error_subcode()
    }

    /// Meta's trace id of the failed request, when Meta answered with one.
    pub fn fbtrace_id(&self) -> Option<&str> {
        match self {
            Self::CountMismatch { fbtrace_id, .. } => Some(fbtrace_id),
            _ => self.meta_error()?.fbtrace_id(),
        }
    }

    /// The same error, counting `earlier` more requests made by the same call before it.
    pub(crate) fn after(mut self, earlier: u32) -> Self {
        match &mut self {
            Self::Meta { attempts, .. }
            | Self::Unreachable { attempts, .. }
            | Self::RetriesExhausted { attempts, .. }
            | Self::Stopped { attempts, .. }
            | Self::CountMismatch { attempts, .. } => *attempts += earlier,
            _ => {}
        }
        self
    }
}

/// Events of one batch that the destination accepted in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Indices into the batch handed to `send`.
    pub indices: Vec<usize>,
    /// Meta's trace id for the request that carried them.
    pub fbtrace_id: Option<String>,
    /// `events_received` of that request.
    pub events_received: u64,
}

/// One event the destination rejected for its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// Index into the batch handed to `send`.
    pub index: usize,
    /// The destination's message (Meta's `error_user_msg` or `message`), with its fbtrace_id.
    pub message: String,
    /// The destination's error code (Meta: 100, invalid parameter).
    pub code: Option<i64>,
    /// The destination's error subcode (Meta: 2804xxx, which rule the event broke).
    pub error_subcode: Option<i64>,
}

/// What became of one batch: every index is either accepted or rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Accepted events, grouped by the request that carried them.
    pub accepted: Vec<Accepted>,
    /// Events rejected for their data.
    pub rejected: Vec<Rejected>,
    /// Retries made for transient failures.
    pub retries: u32,
    /// HTTP requests made, retries included (bisection adds some).
    pub requests: u32,
    /// SHA-256 of each event's JSON as the request body carried it (by index into the batch),
    /// where the destination wrote it and the event is canonical ([`Event::digest`] of it
    /// without writing the event a second time); empty or `None` where it did not.
    pub digests: Vec<Option<u128>>,
}

impl Delivery {
    /// A delivery where every event of a batch of `len` was accepted at once.
    pub(crate) fn all_accepted(len: usize, fbtrace_id: Option<String>) -> Self {
        Self {
            accepted: vec![Accepted {
                indices: (0..len).collect(),
                fbtrace_id,
                events_received: len as u64,
            }],
            rejected: Vec::new(),
            retries: 0,
            requests: 1,
            digests: Vec::new(),
        }
    }
}

/// A destination ready to take batches.
#[derive(Debug)]
pub enum Destination {
    /// An NDJSON file.
    File(FileDestination),
    /// Meta's Conversions API (or a stand-in at `base_url`).
    Meta(MetaDestination),
    /// stdout: a dry run's events, printed instead of sent.
    Print(PrintDestination),
}

impl Destination {
    /// Builds the configured destination; secrets are read here, once.
    pub fn from_config(config: &Config) -> Result<Self, DestinationError> {
        match config.destination.kind {
            DestinationKind::File => Ok(Self::File(FileDestination::from_config(config)?)),
            DestinationKind::Meta => Ok(Self::Meta(MetaDestination::from_config(config)?)),
        }
    }

    /// The same destination, its waits (retry delays, rate-limit slots) cut short once `stop`
    /// is cancelled; see [`DestinationError::Stopped`]. A file destination never waits.
    pub(crate) fn stopping_on(self, stop: tokio_util::sync::CancellationToken) -> Self {
        match self {
            Self::Meta(meta) => Self::Meta(meta.stopping_on(stop)),
            other => other,
        }
    }

    /// Delivers one batch (at most `destination.batch_size` events).
    pub(crate) async fn send(&self, events: &[Event]) -> Result<Delivery, DestinationError> {
        match self {
            Self::File(file) => file.send(events).await,
            Self::Meta(meta) => meta.send(events).await,
            Self::Print(print) => print.send(events),
        }
    }

    /// Delivers one batch at once, on the caller's task, when the destination answers without
    /// waiting (stdout: batches then print in page order); `None` for the others, which are
    /// sent on tasks of their own.
    pub(crate) fn send_now(&self, events: &[Event]) -> Option<Result<Delivery, DestinationError>> {
        match self {
            Self::Print(print) => Some(print.send(events)),
            Self::File(_) | Self::Meta(_) => None,
        }
    }

    /// Verifies that the destination can take events, without sending any; says what it found.
    pub async fn check(&self) -> Result<String, DestinationError> {
        match self {
            Self::File(file) => file.check(),
            Self::Meta(meta) => meta.check().await,
            Self::Print(_) => Ok("events are printed on stdout (a dry run)".to_owned()),
        }
    }
}
