//! Liveness and readiness of a long-running `ocapi watch`, for `/healthz` and `/readyz`.
//!
//! Live: the loop is not stuck, i.e. no tick is overdue by more than twice the interval. The
//! loop sets when the next sign of life is due: the end of its wait before a run, and during a
//! run one interval after its start or its latest committed page.
//!
//! Ready: a run has completed (degraded included) since the process started, and the source
//! and ledger databases accept a connection and a `select 1` now.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::db;

/// How long a readiness probe waits for each database.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The watch loop's signs of life.
#[derive(Debug)]
pub struct Health {
    /// The watch interval.
    interval: Duration,
    /// Mutable state, never held across an await.
    state: Mutex<State>,
}

/// See [`Health`].
#[derive(Debug, Clone, Copy)]
struct State {
    /// When the loop is next due to show a sign of life.
    due: Instant,
    /// Runs completed (degraded included) since start.
    completed: u64,
}

impl Health {
    /// A loop that runs every `interval`, starting now.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                due: Instant::now() + interval,
                completed: 0,
            }),
        }
    }

    /// Locks the state.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A run started, or committed a page: the next sign is due within an interval.
    pub(crate) fn beat(&self) {
        self.state().due = Instant::now() + self.interval;
    }

    /// The loop waits `delay` before its next run.
    pub fn waiting(&self, delay: Duration) {
        self.state().due = Instant::now() + delay;
    }

    /// A run completed (degraded included).
    pub fn completed(&self) {
        self.state().completed += 1;
    }

    /// Runs completed since start.
    pub(crate) fn completed_runs(&self) -> u64 {
        self.state().completed
    }

    /// `Ok` while live at `now`, else why not.
    pub(crate) fn liveness(&self, now: Instant) -> Result<(), String> {
        let due = self.state().due;
        let overdue = now.saturating_duration_since(due);
        if overdue > 2 * self.interval {
            return Err(format!(
                "the watch loop is stuck: a tick is overdue by {}s (interval {}s)",
                overdue.as_secs(),
                self.interval.as_secs()
            ));
        }
        Ok(())
    }

    /// `Ok` when ready to be counted on, else a one-line reason.
    pub(crate) async fn readiness(&self, config: &Config) -> Result<(), String> {
        if self.completed_runs() == 0 {
            return Err("no run has completed since the process started".to_owned());
        }
        let source = config.source_url().map_err(|e| e.to_string())?;
        reachable(&source, "source").await?;
        let ledger = config.ledger_url().map_err(|e| e.to_string())?;
        reachable(&ledger, "ledger").await
    }
}

/// Connects afresh (not through a pool that may hold an old connection) and runs `select 1`.
async fn reachable(url: &crate::secret::Secret, what: &'static str) -> Result<(), String> {
    let probe = async {
        let pool = db::pool(url, what, 1).map_err(|e| crate::error::chain(&e))?;
        let client = db::connect(&pool, what)
            .await
            .map_err(|e| crate::error::chain(&e))?;
        client
            .simple_query("select 1")
            .await
            .map_err(|e| format!("cannot query the {what} database: {e}"))?;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(result) => result.map_err(|reason| format!("{what} unreachable: {reason}")),
        Err(_) => Err(format!(
            "{what} unreachable: no answer within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_until_a_tick_is_overdue_by_more_than_twice_the_interval() {
        let minute = Duration::from_secs(60);
        let health = Health::new(minute);
        let due = Instant::now() + minute;
        health.waiting(minute);
        assert!(health.liveness(Instant::now()).is_ok());
        assert!(health.liveness(due + 2 * minute).is_ok());
        let stuck = health.liveness(due + 2 * minute + Duration::from_secs(5));
        assert!(stuck.unwrap_err().starts_with("the watch loop is stuck"));
        // A longer wait (back-off after failures) moves the deadline with it.
        health.waiting(10 * minute);
        assert!(health.liveness(due + 5 * minute).is_ok());
    }
}
