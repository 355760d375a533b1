//! The one observer of a finished run, used by `run`, `backfill` and `watch`: the metrics
//! (`--metrics-file`, `/metrics`), the chat alerts (failed, degraded and recovered runs, and
//! Meta's side once per key) and the signs of life `/healthz` reads.

use std::path::PathBuf;
use std::sync::Arc;

use super::watch::health::Health;
use crate::alerts::Alerter;
use crate::config::Config;
use crate::error::Error;
use crate::metrics::{MetricsFile, Telemetry};
use crate::stats::{RunStats, RunStatus};

/// What a metrics file that cannot be written does to the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsFailure {
    /// It fails the command (`run`, `backfill`: cron sees it), before any alert.
    Fails,
    /// It is logged and the loop goes on (`watch`).
    Logged,
}

/// Observes finished runs.
pub(crate) struct RunObserver {
    /// Metrics kept in memory (`watch --listen`), when there are; a metrics file's own
    /// otherwise.
    telemetry: Option<Arc<Telemetry>>,
    /// `--metrics-file`.
    metrics: Option<MetricsFile>,
    /// `--metrics-file` of a one-shot command, opened when its run has finished, so that the
    /// counters another process wrote there meanwhile carry over.
    metrics_path: Option<PathBuf>,
    /// What a failed write of it does.
    on_metrics_failure: MetricsFailure,
    /// `[alerts]`.
    alerts: Option<Alerter>,
    /// `watch`'s signs of life.
    health: Option<Arc<Health>>,
}

impl RunObserver {
    /// An observer writing `metrics` (and `telemetry`, when kept apart from the file), alerting
    /// through `alerts` and telling `health` of completed runs.
    pub(crate) fn new(
        metrics: Option<MetricsFile>,
        telemetry: Option<Arc<Telemetry>>,
        alerts: Option<Alerter>,
        health: Option<Arc<Health>>,
        on_metrics_failure: MetricsFailure,
    ) -> Self {
        let telemetry = telemetry.or_else(|| metrics.as_ref().map(|m| Arc::clone(m.telemetry())));
        Self {
            telemetry,
            metrics,
            metrics_path: None,
            on_metrics_failure,
            alerts,
            health,
        }
    }

    /// The observer of a one-shot command (`run`, `backfill`): the metrics file at
    /// `metrics_path`, whose failed write fails the command, and `alerts`.
    pub(crate) fn once(metrics_path: Option<PathBuf>, alerts: Option<Alerter>) -> Self {
        Self {
            metrics_path,
            ..Self::new(None, None, alerts, None, MetricsFailure::Fails)
        }
    }

    /// The metrics kept in memory, when there are any (the progress of a run in flight).
    pub(crate) fn telemetry(&self) -> Option<&Arc<Telemetry>> {
        self.telemetry.as_ref()
    }

    /// Recalls how the connector's previous run ended, so that the first run of this process
    /// alerts as if it had seen it (best effort).
    pub(crate) async fn recall(&mut self, config: &Config) {
        if let Some(alerts) = self.alerts.as_mut() {
            alerts.recall_previous_run(config).await;
        }
    }

    /// Observes a finished run (`stats`, a failed run's as [`super::finished`] gives them): its
    /// metrics, then its alerts, then the health's last completed run.
    ///
    /// # Errors
    /// [`Error::Metrics`] when the metrics file cannot be written and that fails the command
    /// ([`MetricsFailure::Fails`]); no alert is sent then.
    pub(crate) async fn finished(
        &mut self,
        config: &Config,
        stats: &RunStats,
    ) -> Result<(), Error> {
        if let Some(path) = self.metrics_path.take() {
            self.metrics = Some(MetricsFile::new(path, &config.connector.name));
        }
        if let Some(telemetry) = &self.telemetry {
            telemetry.run_finished(stats);
        }
        if let Some(metrics) = self.metrics.as_mut() {
            // A metrics file with metrics of its own records the run itself.
            let shared = self
                .telemetry
                .as_ref()
                .is_some_and(|t| Arc::ptr_eq(t, metrics.telemetry()));
            let written = if shared {
                metrics.write()
            } else {
                metrics.record(stats)
            };
            match (written, self.on_metrics_failure) {
                (Ok(()), _) => {}
                (Err(error), MetricsFailure::Fails) => return Err(error.into()),
                (Err(error), MetricsFailure::Logged) => {
                    tracing::warn!(error = %crate::error::chain(&error), "cannot write the metrics file");
                }
            }
        }
        if let Some(alerts) = self.alerts.as_mut() {
            alerts.observe(stats).await;
            alerts.notify_once(config, &stats.meta_alerts).await;
        }
        if let Some(health) = &self.health {
            if matches!(
                stats.status,
                RunStatus::Completed | RunStatus::Degraded | RunStatus::Stopped
            ) {
                health.completed();
            }
        }
        Ok(())
    }
}
