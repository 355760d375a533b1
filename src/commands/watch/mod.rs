//! `ocapi watch`: a sync every interval until SIGTERM or Ctrl-C. A signal lets the run in
//! flight finish its page and commit, then the loop ends (exit 0). A failed run is logged and
//! retried on a later tick, with a delay that doubles per consecutive failure (capped), so a
//! database or network outage never ends the process; only configuration errors do, since
//! retrying cannot fix them. A source table that an earlier tick found and that is missing now
//! is being replaced (a dbt swap): a failure retried with the same backoff, not a configuration
//! error; only a table never found since the watch started stops it.

pub mod health;
pub mod listen;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;

use super::observe::{MetricsFailure, RunObserver};
use crate::alerts::Alerter;
use crate::cli::{Cli, WatchArgs};
use crate::config::Config;
use crate::error::{Error, ExitStatus};
use crate::metrics::{MetricsFile, Telemetry};
use crate::run::{self, RunOptions};
use crate::stats::{RunStats, RunStatus};
use health::Health;

/// After failures the delay doubles from the interval up to this cap (or the interval, if
/// longer): long enough to stop hammering a database that is down, short enough to resume
/// within minutes once it is back.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// How long a stop request (SIGTERM, Ctrl-C) waits for the run in progress before abandoning
/// it, so that `watch` stops within this time even while a database or the endpoint does not
/// answer (docs/operations.md promises well under a minute).
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(30);

/// How to watch.
#[derive(Clone)]
pub struct WatchOptions {
    /// Time between the start of a wait and the next run.
    pub interval: Duration,
    /// The options of each run (mode `run`).
    pub run: RunOptions,
    /// Where to write each run's metrics, if anywhere.
    pub metrics: Option<MetricsFile>,
    /// Metrics kept for `/metrics` (a metrics file's own are used when this is `None`).
    pub telemetry: Option<Arc<Telemetry>>,
    /// Signs of life for `/healthz` and `/readyz`.
    pub health: Option<Arc<Health>>,
    /// Where failed, degraded and recovered runs are alerted about.
    pub alerts: Option<Alerter>,
}

/// What a watch did before it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WatchSummary {
    /// Runs that completed (degraded included).
    pub completed: u64,
    /// Of those, runs that were degraded.
    pub degraded: u64,
    /// Runs that failed (and were retried later).
    pub failed: u64,
    /// Runs skipped because another run held the lock (not failures).
    pub skipped: u64,
}

/// The delay before the next run after `failures` consecutive failures: the interval doubled per
/// failure after the first, up to 15 minutes (or the interval, when longer); at once the longest
/// when the last failure `needs_a_person` (retrying sooner cannot help a revoked token).
pub(crate) fn next_delay(interval: Duration, failures: u32, needs_a_person: bool) -> Duration {
    let cap = MAX_BACKOFF.max(interval);
    if needs_a_person {
        return cap;
    }
    if failures == 0 {
        return interval;
    }
    let factor = 2u32.saturating_pow(failures - 1);
    interval.saturating_mul(factor).min(cap)
}

/// `ocapi watch`: runs every `--interval`, serving `--listen` if asked, until SIGTERM or Ctrl-C
/// (exit 0) or a configuration error (exit 2: no retry can fix it).
pub(crate) async fn command(
    cli: &Cli,
    config: &Config,
    args: &WatchArgs,
) -> Result<ExitStatus, Error> {
    let telemetry = Arc::new(Telemetry::new(&config.connector.name));
    let health = Arc::new(Health::new(args.interval));
    let options = WatchOptions {
        interval: args.interval,
        run: RunOptions {
            max_invalid_ratio: args.max_invalid_ratio,
            initial_sync: args.initial_sync,
            ..RunOptions::default()
        },
        metrics: cli
            .metrics_file
            .clone()
            .map(|path| MetricsFile::with_telemetry(path, Arc::clone(&telemetry))),
        telemetry: Some(Arc::clone(&telemetry)),
        health: Some(Arc::clone(&health)),
        alerts: Alerter::from_config(&config.alerts)?,
    };
    if let Some(addr) = args.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        if let Ok(address) = listener.local_addr() {
            tracing::info!(address = %address, "serving /metrics, /healthz and /readyz");
        }
        let service = Arc::new(listen::Service {
            readiness: health::Readiness::new(config.clone()),
            telemetry,
            health,
            limits: listen::Limits {
                max_connections: usize::from(args.listen_max_connections),
                timeout: args.listen_timeout,
            },
        });
        tokio::spawn(async move {
            if let Err(error) = listen::serve(listener, service, super::shutdown_signal()).await {
                tracing::error!(error = %error, "the --listen server stopped");
            }
        });
    }
    watch(config, options, super::shutdown_signal()).await?;
    Ok(ExitStatus::Success)
}

/// Runs a sync every `options.interval` until `shutdown` resolves.
pub async fn watch(
    config: &Config,
    mut options: WatchOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<WatchSummary, Error> {
    let shutdown = shutdown.boxed().shared();
    let mut summary = WatchSummary::default();
    let mut failures: u32 = 0;
    // Whether a tick has found the source table: from then on, a table that is missing is
    // being replaced (a dbt swap renames it away for a moment), not misconfigured.
    let mut table_seen = false;
    tracing::info!(
        interval_secs = options.interval.as_secs(),
        connector = %config.connector.name,
        "watching"
    );
    let mut observer = RunObserver::new(
        options.metrics.take(),
        options.telemetry.clone(),
        options.alerts.take(),
        options.health.clone(),
        MetricsFailure::Logged,
    );
    let telemetry = observer.telemetry().cloned();
    let mut run_options = options.run.clone();
    run_options.progress = observe_progress(
        run_options.progress.take(),
        telemetry.clone(),
        options.health.clone(),
    );
    loop {
        if shutdown.peek().is_some() {
            break;
        }
        if let Some(health) = &options.health {
            health.beat();
        }
        if let Some(telemetry) = &telemetry {
            telemetry.run_started();
        }
        // Whether this run failed on something only a person can fix.
        let mut needs_a_person = false;
        // A stop request lets the run finish its page; one that is stuck (a database that
        // stopped answering within its stall bound, say) is abandoned STOP_GRACE later: its
        // connections close, its uncommitted pages are read and sent again by the next run.
        let pass = Box::pin(run::run(config, run_options.clone(), shutdown.clone()));
        let abandon = async {
            shutdown.clone().await;
            tokio::time::sleep(STOP_GRACE).await;
        };
        let result = tokio::select! {
            result = pass => result,
            () = abandon => {
                tracing::error!(
                    grace_secs = STOP_GRACE.as_secs(),
                    "the run did not stop within the grace period after the stop request; \
                     abandoning it (its unrecorded orders are sent again by the next run)"
                );
                break;
            }
        };
        let stats = match result {
            Ok(stats) if stats.status == RunStatus::Skipped => {
                summary.skipped += 1;
                stats
            }
            Ok(stats) => {
                failures = 0;
                table_seen = true;
                summary.completed += 1;
                if stats.status == RunStatus::Degraded {
                    summary.degraded += 1;
                    tracing::error!(
                        run_id = stats.run_id,
                        invalid = stats.invalid,
                        rejected = stats.rejected,
                        invalid_ratio = stats.invalid_ratio(),
                        max_invalid_ratio = options.run.max_invalid_ratio.unwrap_or(1.0),
                        "run degraded: too many invalid or rejected orders"
                    );
                }
                stats
            }
            Err(error) if error.is_config() && !(table_seen && table_missing(&error)) => {
                tracing::error!(error = %crate::error::chain(&error), "run failed on configuration; stopping");
                return Err(error);
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                summary.failed += 1;
                needs_a_person = error.needs_a_person();
                let delay = next_delay(options.interval, failures, needs_a_person);
                tracing::error!(error = %crate::error::chain(&error), failures, delay_secs = delay.as_secs(), "run failed; retrying");
                super::finished(config, &Err(error))
            }
        };
        // Never fails: a metrics file that cannot be written is logged (`Logged`).
        observer.finished(config, &stats).await?;
        let delay = next_delay(options.interval, failures, needs_a_person);
        if let Some(health) = &options.health {
            health.waiting(delay);
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.clone() => break,
        }
    }
    tracing::info!(
        completed = summary.completed,
        degraded = summary.degraded,
        failed = summary.failed,
        skipped = summary.skipped,
        "watch stopped"
    );
    Ok(summary)
}

/// Whether the run failed because the source table is not there (a transient failure once the
/// table has been seen: it is being swapped).
fn table_missing(error: &Error) -> bool {
    matches!(
        error,
        Error::Source(crate::source::SourceError::TableNotFound { .. })
    )
}

/// A progress callback that also counts each committed page in the metrics and as a sign of
/// life, then calls `inner`.
fn observe_progress(
    inner: Option<run::Progress>,
    telemetry: Option<Arc<Telemetry>>,
    health: Option<Arc<Health>>,
) -> Option<run::Progress> {
    if telemetry.is_none() && health.is_none() {
        return inner;
    }
    Some(Arc::new(move |stats: &RunStats| {
        if let Some(telemetry) = &telemetry {
            telemetry.progress(stats);
        }
        if let Some(health) = &health {
            health.beat();
        }
        if let Some(inner) = &inner {
            inner(stats);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_per_failure_up_to_the_cap() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_delay(minute, 0, false), minute);
        assert_eq!(next_delay(minute, 1, false), minute);
        assert_eq!(next_delay(minute, 2, false), 2 * minute);
        assert_eq!(next_delay(minute, 3, false), 4 * minute);
        assert_eq!(next_delay(minute, 30, false), MAX_BACKOFF);
        let hour = Duration::from_secs(3600);
        assert_eq!(next_delay(hour, 5, false), hour);
    }

    #[test]
    fn a_failure_only_a_person_can_fix_waits_the_longest_delay_at_once() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_delay(minute, 1, true), MAX_BACKOFF);
        let hour = Duration::from_secs(3600);
        assert_eq!(next_delay(hour, 1, true), hour);
    }
}
