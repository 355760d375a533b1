//! Liveness and readiness of a long-running `ocapi watch`, for `/healthz` and `/readyz`.
//!
//! Live: the loop is not stuck, i.e. no tick is overdue by more than twice the interval. The
//! loop sets when the next sign of life is due: the end of its wait before a run, and during a
//! run one interval after its start or its latest committed page.
//!
//! Ready: a run has completed (degraded included) since the process started, and the source
//! and ledger databases answer a `select 1` ([`Readiness`]: one check at a time, its answer
//! reused for two seconds, over one connection to each).

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
}

/// How long a readiness answer is reused: probes (a kubelet's every few seconds, or a flood
/// of them) cost the databases at most one check per this period.
pub(crate) const READY_CACHE: Duration = Duration::from_secs(2);

/// The readiness check behind `/readyz` (issue 23): at most one in flight, its answer reused
/// for [`READY_CACHE`], over two long-lived pools of one connection each (source, ledger),
/// so that any number of probes costs the databases at most two connections. A connection
/// that failed or did not answer in time is closed, not reused, and the next check
/// connects afresh.
#[derive(Debug)]
pub struct Readiness {
    /// The connector's config (its URLs and their bounds).
    config: Config,
    /// The probe's state; the lock is what keeps one check in flight.
    state: tokio::sync::Mutex<Probe>,
}

/// See [`Readiness`].
#[derive(Debug, Default)]
struct Probe {
    /// The source's and the ledger's pools, built at the first check.
    pools: Option<(db::Pool, db::Pool)>,
    /// The last answer and when it was found.
    last: Option<(Instant, Result<(), String>)>,
}

impl Readiness {
    /// Readiness of the connector `config` describes.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state: tokio::sync::Mutex::new(Probe::default()),
        }
    }

    /// `Ok` when ready to be counted on, else a one-line reason: a run has completed since
    /// start, and both databases answer a `select 1` (each within [`PROBE_TIMEOUT`]). Waits
    /// for a check in flight rather than start another, and reuses an answer younger than
    /// [`READY_CACHE`].
    pub(crate) async fn check(&self, health: &Health) -> Result<(), String> {
        if health.completed_runs() == 0 {
            return Err("no run has completed since the process started".to_owned());
        }
        let mut probe = self.state.lock().await;
        if let Some((at, answer)) = &probe.last {
            if at.elapsed() < READY_CACHE {
                return answer.clone();
            }
        }
        let answer = self.probe(&mut probe).await;
        probe.last = Some((Instant::now(), answer.clone()));
        answer
    }

    /// Checks both databases now.
    async fn probe(&self, probe: &mut Probe) -> Result<(), String> {
        if probe.pools.is_none() {
            let pool = |url: Result<crate::secret::Secret, crate::config::ConfigError>,
                        what: &'static str,
                        timeouts: db::Timeouts| {
                let url = url.map_err(|e| format!("{what} unreachable: {e}"))?;
                db::pool(&url, what, 1)
                    .map(|pool| pool.with_timeouts(timeouts))
                    .map_err(|e| format!("{what} unreachable: {}", crate::error::chain(&e)))
            };
            let source = pool(
                self.config.source_url(),
                "source",
                db::Timeouts::source(&self.config),
            )?;
            let ledger = pool(
                self.config.ledger_url(),
                "ledger",
                db::Timeouts::ledger(&self.config),
            )?;
            probe.pools = Some((source, ledger));
        }
        let Some((source, ledger)) = &probe.pools else {
            return Err("no pools".to_owned());
        };
        reachable(source, "source").await?;
        reachable(ledger, "ledger").await
    }
}

/// Takes the pool's connection (connecting if it has none) and runs `select 1`, all within
/// [`PROBE_TIMEOUT`]; a connection that failed or timed out is closed, not put back.
async fn reachable(pool: &db::Pool, what: &'static str) -> Result<(), String> {
    let probe = async {
        let client = db::connect(pool, what)
            .await
            .map_err(|e| crate::error::chain(&e))?;
        match client.simple_query("select 1").await {
            Ok(_) => Ok(()),
            Err(e) => {
                drop(deadpool_postgres::Object::take(client));
                Err(format!("cannot query the {what} database: {e}"))
            }
        }
    };
    // A probe cut short drops its connection mid-statement: its pool must not hand it out
    // again, so the pool is emptied (at most one connection).
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(result) => result.map_err(|reason| format!("{what} unreachable: {reason}")),
        Err(_) => {
            pool.retain(|_, _| false);
            Err(format!(
                "{what} unreachable: no answer within {}s",
                PROBE_TIMEOUT.as_secs()
            ))
        }
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
