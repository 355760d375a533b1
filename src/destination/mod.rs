//! Where events go. Delivery is at-least-once: a batch may reach the destination again after a
//! crash, always with the same `event_id`, `event_time`, `event_name` and `order_id`, which Meta
//! deduplicates on; the ledger makes sure an order is recorded `sent` once.

pub mod file;
pub mod meta;
pub mod retry;

use crate::config::{Config, DestinationKind};
use crate::event::Event;

pub use file::FileDestination;
pub use meta::MetaDestination;

/// Errors from a destination, classified so that the run can decide what to do.
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
    /// The destination refused the whole request for a reason no retry fixes (token, permission,
    /// unknown dataset); the message says what to do.
    #[error("{message}")]
    Permanent {
        /// Meta's code, message and fbtrace_id, written for the user.
        message: String,
    },
    /// Transient failures went on past `max_retries`.
    #[error("request failed after {attempts} attempts: {last_error}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure, without the token.
        last_error: String,
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
    },
    /// The destination could not be set up (secret missing, client not built).
    #[error("cannot set up the destination")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DestinationError {
    /// Whether the same batch may well succeed later without anyone changing anything: the
    /// destination kept failing transiently (outage, throttling), so a later run can retry.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RetriesExhausted { .. })
    }

    /// Whether a person must act (token, permission, dataset, configuration) before sending
    /// can succeed; the message says what to do.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. } | Self::Setup(_))
    }
}

/// Events of one batch that the destination accepted in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Indices into the batch handed to `send`.
    pub indices: Vec<usize>,
    /// Meta's trace id for the request that carried them.
    pub fbtrace_id: Option<String>,
    /// `events_received` of that request.
    pub events_received: u64,
}

/// One event the destination rejected for its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Index into the batch handed to `send`.
    pub index: usize,
    /// The destination's message (Meta's `error_user_msg` or `message`), with its fbtrace_id.
    pub message: String,
}

/// What became of one batch: every index is either accepted or rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Accepted events, grouped by the request that carried them.
    pub accepted: Vec<Accepted>,
    /// Events rejected for their data.
    pub rejected: Vec<Rejected>,
    /// Retries made for transient failures.
    pub retries: u32,
    /// HTTP requests made, retries included (bisection adds some).
    pub requests: u32,
}

impl Delivery {
    /// A delivery where every event of a batch of `len` was accepted at once.
    pub fn all_accepted(len: usize, fbtrace_id: Option<String>) -> Self {
        Self {
            accepted: vec![Accepted {
                indices: (0..len).collect(),
                fbtrace_id,
                events_received: len as u64,
            }],
            rejected: Vec::new(),
            retries: 0,
            requests: 1,
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
}

impl Destination {
    /// Builds the configured destination; secrets are read here, once.
    pub fn from_config(config: &Config) -> Result<Self, DestinationError> {
        match config.destination.kind {
            DestinationKind::File => Ok(Self::File(FileDestination::from_config(config)?)),
            DestinationKind::Meta => Ok(Self::Meta(MetaDestination::from_config(config)?)),
        }
    }

    /// Delivers one batch (at most `destination.batch_size` events).
    pub async fn send(&self, events: &[Event]) -> Result<Delivery, DestinationError> {
        match self {
            Self::File(file) => file.send(events).await,
            Self::Meta(meta) => meta.send(events).await,
        }
    }

    /// Verifies that the destination can take events, without sending any; says what it found.
    pub async fn check(&self) -> Result<String, DestinationError> {
        match self {
            Self::File(file) => file.check(),
            Self::Meta(meta) => meta.check().await,
        }
    }
}
