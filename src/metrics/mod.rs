//! Prometheus metrics, encoded by `prometheus-client` in the Prometheus text format (0.0.4):
//! served on `watch --listen`'s `/metrics` and written by `--metrics-file` for node_exporter's
//! textfile collector.
//!
//! Two kinds of series, typed as Prometheus' naming rules want:
//! - counters (`ocapi_events_sent_total`, ...) grow over the life of the process, page by page
//!   while a run goes, so `rate()` works. A metrics file carries them over from the file it
//!   replaces, so that one `ocapi run` per cron tick counts on too;
//! - gauges for the last finished run (`ocapi_last_run_sent`, ...), whose names never end in
//!   `_total`.
//!
//! Every series carries the connector's name as the `connector` label. The file is replaced
//! atomically (a temporary file in the same directory, then a rename) so the collector never
//! reads half a file.
//!
//! Here: [`Telemetry`], its label and handle types, and how a run updates it. The series' names,
//! help and registration are in `series.rs`; the metrics file (writing, carrying over) in
//! `file.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::stats::{RunStats, RunStatus};

mod file;
mod series;

pub(crate) use file::create_exclusive;
pub use file::{write_atomic, MetricsError, MetricsFile};

/// Every status a run can end with, so that `ocapi_last_run_status` has one series per status
/// with exactly one of them at 1 (the usual Prometheus "enum" pattern).
const STATUSES: [RunStatus; 4] = [
    RunStatus::Completed,
    RunStatus::Degraded,
    RunStatus::Failed,
    RunStatus::Stopped,
];

/// A `status` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    /// `completed`, `degraded`, `failed` or `stopped`.
    status: String,
}

/// A `key` label (a user_data key).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    /// The key.
    key: String,
}

/// A `reason` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    /// Why an order was invalid.
    reason: String,
}

/// A `stat` label of the last run's upload lag gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatLabel {
    /// `median`, `p95` or `max`.
    stat: String,
}

/// A float gauge.
type FloatGauge = Gauge<f64, AtomicU64>;

/// The process-lifetime counters that follow a run's stats, by field.
#[derive(Debug, Default, Clone)]
struct Counters {
    /// `ocapi_rows_read_total`.
    rows_read: Counter,
    /// `ocapi_events_sent_total`.
    sent: Counter,
    /// `ocapi_events_rejected_total`.
    rejected: Counter,
    /// `ocapi_orders_invalid_total`.
    invalid: Counter,
    /// `ocapi_orders_anonymous_total`.
    anonymous: Counter,
    /// `ocapi_orders_skipped_duplicate_total`.
    skipped_duplicate: Counter,
    /// `ocapi_retries_total`.
    retries: Counter,
    /// `ocapi_requests_total`.
    requests: Counter,
}

/// The figures of a run already added to the counters, so that each page adds only what is new.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// Rows read.
    rows_read: u64,
    /// Orders sent.
    sent: u64,
    /// Events rejected.
    rejected: u64,
    /// Invalid orders.
    invalid: u64,
    /// Walk-in sales.
    anonymous: u64,
    /// Duplicates skipped.
    skipped_duplicate: u64,
    /// Retries.
    retries: u64,
    /// Requests.
    requests: u64,
}

impl Seen {
    /// A run's figures.
    fn of(stats: &RunStats) -> Self {
        Self {
            rows_read: stats.rows_read,
            sent: stats.sent,
            rejected: stats.rejected,
            invalid: stats.invalid,
            anonymous: stats.anonymous,
            skipped_duplicate: stats.skipped_duplicate,
            retries: stats.retries,
            requests: stats.batches,
        }
    }
}

/// The last run's gauges.
#[derive(Debug, Default, Clone)]
struct LastRun {
    /// By stats field name (`rows_read`, `sent`, ...).
    figures: Vec<(&'static str, Gauge)>,
    /// Wall time in seconds.
    duration: FloatGauge,
    /// One series per status.
    status: Family<StatusLabel, Gauge>,
    /// Unix time it finished.
    finished: Gauge,
    /// Unix time of the last completed run.
    last_success: Gauge,
    /// Sent events per user_data key.
    match_keys: Family<KeyLabel, Gauge>,
    /// Dropped values per user_data key.
    dropped: Family<KeyLabel, Gauge>,
    /// Invalid orders per reason.
    invalid_reasons: Family<ReasonLabel, Gauge>,
    /// Upload lag median, p95 and max.
    upload_lag: Family<StatLabel, FloatGauge>,
    /// Seconds until the configured API version stops working (NaN until known).
    api_version_sunset: FloatGauge,
    /// Seconds until the token expires: one series when it expires, none when it never does
    /// or was not read.
    token_expires_in: Family<Vec<(String, String)>, Gauge>,
}

/// The value of a last-run figure by field name.
fn figure(stats: &RunStats, name: &str) -> u64 {
    match name {
        "rows_read" => stats.rows_read,
        "events" => stats.events,
        "sent" => stats.sent,
        "skipped_duplicate" => stats.skipped_duplicate,
        "changed_after_send" => stats.changed_after_send,
        "invalid" => stats.invalid,
        "anonymous" => stats.anonymous,
        "rejected" => stats.rejected,
        "retries" => stats.retries,
        "held" => stats.held,
        "ahead_of_clock" => stats.ahead_of_clock,
        _ => stats.batches,
    }
}

/// Saturating `u64` to `i64`, for gauges.
fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A connector's metrics: a registry and the handles that update it. Shared between the watch
/// loop (which updates it) and the `/metrics` handler or metrics file (which encode it).
#[derive(Debug)]
pub struct Telemetry {
    /// The registry; encoding only reads it.
    registry: Registry,
    /// The connector's name (the `connector` label).
    connector: String,
    /// Lifetime counters.
    counters: Counters,
    /// Finished runs by status.
    runs: Family<StatusLabel, Counter>,
    /// Lag of every accepted event.
    lag: Histogram,
    /// 1 while a run goes.
    in_progress: Gauge,
    /// Last-run gauges.
    last: LastRun,
    /// What the current run has added to the counters so far.
    seen: Mutex<Seen>,
}

impl Telemetry {
    /// Marks the start of a run: `ocapi_run_in_progress` goes to 1.
    pub(crate) fn run_started(&self) {
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Seen::default();
        self.in_progress.set(1);
    }

    /// Adds what a running run did since it was last told (after each committed page).
    pub fn progress(&self, stats: &RunStats) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Seen::of(stats);
        let c = &self.counters;
        let add = |counter: &Counter, now: u64, before: u64| {
            counter.inc_by(now.saturating_sub(before));
        };
        add(&c.rows_read, now.rows_read, seen.rows_read);
        add(&c.sent, now.sent, seen.sent);
        add(&c.rejected, now.rejected, seen.rejected);
        add(&c.invalid, now.invalid, seen.invalid);
        add(&c.anonymous, now.anonymous, seen.anonymous);
        add(
            &c.skipped_duplicate,
            now.skipped_duplicate,
            seen.skipped_duplicate,
        );
        add(&c.retries, now.retries, seen.retries);
        add(&c.requests, now.requests, seen.requests);
        *seen = now;
    }

    /// Records a finished run (a failed one as `failed`, with whatever it had counted):
    /// counters, the lag histogram and the last-run gauges. A skipped run (another held the
    /// lock) counts in `ocapi_runs_total{status="skipped"}` only: the `ocapi_last_run_*`
    /// gauges keep describing the last run that ran, so `ocapi_last_run_status` never reads
    /// `failed` (nor anything else) because a cron job overlapped a healthy run.
    pub(crate) fn run_finished(&self, stats: &RunStats) {
        self.progress(stats);
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Seen::default();
        self.in_progress.set(0);
        self.runs
            .get_or_create(&StatusLabel {
                status: stats.status.as_str().to_owned(),
            })
            .inc();
        if stats.status == RunStatus::Skipped {
            return;
        }
        for lag in stats.upload_lag.samples() {
            self.lag.observe(f64::from(*lag));
        }
        let now = chrono::Utc::now().timestamp();
        let last = &self.last;
        for (name, gauge) in &last.figures {
            gauge.set(gauge_value(figure(stats, name)));
        }
        last.duration.set(stats.duration_ms as f64 / 1000.0);
        for status in STATUSES {
            last.status
                .get_or_create(&StatusLabel {
                    status: status.as_str().to_owned(),
                })
                .set(i64::from(status == stats.status));
        }
        last.finished.set(now);
        if matches!(
            stats.status,
            RunStatus::Completed | RunStatus::Degraded | RunStatus::Stopped
        ) {
            last.last_success.set(now);
        }
        let keyed = |family: &Family<KeyLabel, Gauge>, map: &BTreeMap<String, u64>| {
            family.clear();
            for (key, n) in map {
                family
                    .get_or_create(&KeyLabel { key: key.clone() })
                    .set(gauge_value(*n));
            }
        };
        keyed(&last.match_keys, &stats.match_keys);
        keyed(&last.dropped, &stats.dropped);
        last.invalid_reasons.clear();
        for (reason, n) in &stats.invalid_reasons {
            last.invalid_reasons
                .get_or_create(&ReasonLabel {
                    reason: reason.clone(),
                })
                .set(gauge_value(*n));
        }
        if let Some(life) = &stats.meta_life {
            last.api_version_sunset.set(
                life.api_version_sunset_seconds
                    .map_or(f64::NAN, |left| left as f64),
            );
            last.token_expires_in.clear();
            if let Some(left) = life.token_expires_in_seconds {
                last.token_expires_in.get_or_create(&Vec::new()).set(left);
            }
        }
        last.upload_lag.clear();
        if let Some(lag) = stats.upload_lag.summary() {
            for (stat, value) in [
                ("median", lag.median_seconds),
                ("p95", lag.p95_seconds),
                ("max", lag.max_seconds),
            ] {
                last.upload_lag
                    .get_or_create(&StatLabel {
                        stat: stat.to_owned(),
                    })
                    .set(value);
            }
        }
    }

    /// The exposition, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Whether a run has finished since these metrics were made (or carried over).
    #[cfg(test)]
    pub(crate) fn last_success(&self) -> Option<i64> {
        Some(self.last.last_success.get()).filter(|at| *at > 0)
    }
}

#[cfg(test)]
mod tests;
