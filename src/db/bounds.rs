//! The bounds on every wait for a database (issue 23): connecting, and a stall (nothing
//! received while an answer is awaited), with the TCP keepalives that notice a vanished peer.

use std::future::Future;
use std::time::Duration;

use super::{DbError, Pool};
use crate::config::{Config, DEFAULT_CONNECT_TIMEOUT, DEFAULT_STALL_TIMEOUT};

/// The bounds on waiting for a database (issue 23): connecting (TCP, TLS, authentication and
/// the session's settings, all of it) and a stall (nothing received for that long while an
/// answer is awaited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting; the URL's own `connect_timeout` wins over it.
    pub connect: Duration,
    /// A stall.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT_TIMEOUT,
            stall: DEFAULT_STALL_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// `source.connect_timeout` and `source.stall_timeout`.
    pub fn source(config: &Config) -> Self {
        Self {
            connect: config.source.connect_timeout,
            stall: config.source.stall_timeout,
        }
    }

    /// `ledger.connect_timeout` and `ledger.stall_timeout`.
    pub fn ledger(config: &Config) -> Self {
        Self {
            connect: config.ledger.connect_timeout,
            stall: config.ledger.stall_timeout,
        }
    }
}

/// TCP keepalives on every connection (unless the URL sets its own `keepalives_idle`): idle
/// 30 s, then a probe every 10 s, 3 unanswered probes: a peer gone without a word (a cut
/// network, a host that died) ends the connection within about a minute instead of the
/// kernel's two hours.
pub(super) const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// See [`KEEPALIVE_IDLE`].
pub(super) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// See [`KEEPALIVE_IDLE`].
pub(super) const KEEPALIVE_RETRIES: u32 = 3;
/// tokio-postgres's default `keepalives_idle`, which means the URL did not set one.
pub(super) const DRIVER_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 3600);

impl Pool {
    /// The pool with the config's bounds (`Timeouts::source`, `Timeouts::ledger`); the URL's
    /// `connect_timeout` still wins over `timeouts.connect`.
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Timeouts {
            connect: self.url_connect_timeout.unwrap_or(timeouts.connect),
            stall: timeouts.stall,
        };
        self
    }

    /// The bounds in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Awaits `work` (statements on one of this pool's connections) for at most the stall
    /// bound, and fails with [`DbError::Stalled`] naming `doing` past it. `work` is dropped
    /// then: its connection is in an unknown state, so the caller must not reuse it (a run's
    /// pools die with the run).
    pub async fn within<T, E: From<DbError>>(
        &self,
        doing: &str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match tokio::time::timeout(self.timeouts.stall, work).await {
            Ok(result) => result,
            Err(_) => Err(DbError::Stalled {
                what: self.what,
                doing: doing.to_owned(),
                secs: self.timeouts.stall.as_secs(),
            }
            .into()),
        }
    }
}
