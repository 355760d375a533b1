//! The crate's error, one variant per module's error enum, and [`ExitStatus`], the one mapping
//! from an outcome to the README's exit codes (0 completed, 1 failed, 2 configuration or usage,
//! 3 degraded) that every command and `watch` decide from: from the type, never from text.

use crate::config::ConfigError;
use crate::db::DbError;
use crate::destination::DestinationError;
use crate::metrics::MetricsError;
use crate::source::SourceError;

/// Any error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config file could not be loaded: read, parsed or validated.
    #[error("reading config {path}")]
    ConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        #[source]
        source: ConfigError,
    },
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
    /// The run could not take its lock: another run holds it, or a pooler makes it
    /// meaningless.
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// The run's lock was lost while it ran.
    #[error(transparent)]
    LockLost(#[from] crate::lock::LockLost),
    /// The metrics file could not be written.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// What was asked about does not exist (`explain` of an order that is nowhere): exit 1.
    #[error("{0}")]
    NotFound(String),
    /// A usage error from a command's arguments.
    #[error("{0}")]
    Usage(String),
    /// Writing output failed.
    #[error("cannot write output")]
    Io(#[from] std::io::Error),
    /// A file a command writes (the HTML report) could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `watch --listen` or `sandbox --listen` could not listen on its address (in use, not
    /// local, no permission): a usage problem, exit 2.
    #[error("cannot listen on {addr} (--listen)")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
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
            Self::Config(_) | Self::ConfigFile { .. } | Self::Usage(_) => true,
            // An address in use or not local: the flag must change (README's exit table).
            Self::Listen { .. } => true,
            Self::SchemaNotReady { .. } => true,
            Self::Db(DbError::Url { .. } | DbError::NotOurs { .. }) => true,
            // A cancelled read (a `statement_timeout`, a standby's recovery conflict) is a run
            // that failed: the next one may pass, and `watch` goes on.
            Self::Source(error) => !matches!(
                error,
                SourceError::Db(_)
                    | SourceError::Cancelled { .. }
                    | SourceError::StreamCancelled { .. }
            ),
            Self::Destination(error) => error.is_config(),
            Self::Lock(error) => error.is_config(),
            Self::Db(_)
            | Self::LockLost(_)
            | Self::Metrics(_)
            | Self::NotFound(_)
            | Self::Io(_)
            | Self::Write { .. }
            | Self::TaskFailed(_) => false,
        }
    }

    /// Whether a person must act before a run can succeed, though no config key is wrong: Meta
    /// refused the token, a permission or the dataset. `watch` then waits its longest delay at
    /// once instead of doubling up to it. (Nothing listening at the endpoint is not among them:
    /// a local stand-in or proxy that restarts comes back by itself.)
    pub fn needs_a_person(&self) -> bool {
        matches!(self, Self::Destination(error) if error.is_permanent() && !error.is_config())
    }

    /// The process exit status for this error: [`ExitStatus::Config`] (2) for configuration
    /// and usage problems, which no retry fixes, else [`ExitStatus::Failed`] (1).
    pub fn exit_status(&self) -> ExitStatus {
        if self.is_config() {
            ExitStatus::Config
        } else {
            ExitStatus::Failed
        }
    }
}

/// How a command ended, as the README's exit-code table gives it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command (or run) completed, or was skipped (another run holds the lock);
    /// `watch` stopped by a signal.
    #[default]
    Success,
    /// 1: the run failed (database, network, Meta, a lock held longer than
    /// `connector.stuck_run_after`); the next run resumes.
    Failed,
    /// 2: a configuration or usage problem; the message names what to fix.
    Config,
    /// 3: the run completed but was degraded (`--max-invalid-ratio` passed, or orders ahead of
    /// the source's clock).
    Degraded,
}

impl ExitStatus {
    /// The exit code: 0, 1, 2 or 3.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failed => 1,
            Self::Config => 2,
            Self::Degraded => 3,
        }
    }

    /// The status of a run that returned its stats: 3 when degraded, else 0.
    pub(crate) fn of_run(stats: &crate::stats::RunStats) -> Self {
        if stats.status == crate::stats::RunStatus::Degraded {
            Self::Degraded
        } else {
            Self::Success
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        Self::from(status.code())
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
