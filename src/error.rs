//! The crate's error: one variant per module's error enum, so callers can classify failures
//! (configuration or usage, exit 2; a failed run, exit 1) without matching on text.

use crate::config::ConfigError;
use crate::db::DbError;
use crate::destination::DestinationError;
use crate::metrics::MetricsError;
use crate::quality::QualityError;
use crate::source::SourceError;

/// Any error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The source table or its columns do not fit the config.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// PostgreSQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The destination failed.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// The ledger schema is missing or older than this build.
    #[error("the ledger schema {schema:?} is {found}; run `ocapi migrate` first")]
    SchemaNotReady {
        /// The schema.
        schema: String,
        /// What was found.
        found: String,
    },
    /// Another run of the same connector, or another run sending to the same dataset, holds
    /// the lock.
    #[error(
        "another run for {holder} holds its lock (waited {waited_secs}s); \
             try again when it finishes, or raise `connector.lock_wait`"
    )]
    Locked {
        /// What the lock is on: `connector "name"` or `dataset 1234`.
        holder: String,
        /// How long ocapi waited.
        waited_secs: u64,
    },
    /// The run's lock was lost while it ran.
    #[error(transparent)]
    LockLost(#[from] crate::lock::LockLost),
    /// The metrics file could not be written.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// Meta's Dataset Quality API failed.
    #[error(transparent)]
    Quality(#[from] QualityError),
    /// What was asked about does not exist (`explain` of an order that is nowhere): exit 1.
    #[error("{0}")]
    NotFound(String),
    /// A usage error from a command's arguments.
    #[error("{0}")]
    Usage(String),
    /// Writing output failed.
    #[error("cannot write output")]
    Io(#[from] std::io::Error),
    /// A worker task (a transform on a blocking thread, a send, the page committer) panicked
    /// or was cancelled: a bug, not a configuration problem (exit 1).
    #[error("a worker task failed")]
    TaskFailed(#[source] tokio::task::JoinError),
}

impl Error {
    /// Whether this is a configuration or usage problem (exit code 2), as opposed to a run
    /// that failed (exit code 1).
    pub fn is_config(&self) -> bool {
        match self {
            Self::Config(_) | Self::Usage(_) | Self::SchemaNotReady { .. } => true,
            Self::Db(DbError::Url { .. }) => true,
            Self::Source(error) => !matches!(error, SourceError::Db(_)),
            _ => false,
        }
    }
}

/// An error with its sources, as one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
