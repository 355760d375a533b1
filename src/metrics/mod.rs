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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::stats::{RunStats, RunStatus};

/// Errors writing the metrics file.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The temporary file could not be written or renamed over the target.
    #[error("cannot write the metrics file {path}")]
    Write {
        /// The target path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Every status a run can end with, so that `ocapi_last_run_status` has one series per status
/// with exactly one of them at 1 (the usual Prometheus "enum" pattern).
const STATUSES: [RunStatus; 3] = [RunStatus::Completed, RunStatus::Degraded, RunStatus::Failed];

/// Upper bounds of the upload lag histogram's buckets, in seconds: a minute, 5 and 15 minutes,
/// 1, 3, 6, 12 hours, 1, 2 and 7 days (Meta accepts store events up to 62 days old, and scores
/// freshness against hours, not seconds).
const LAG_BUCKETS: [f64; 10] = [
    60.0, 300.0, 900.0, 3_600.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 604_800.0,
];

/// A `status` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    /// `completed`, `degraded` or `failed`.
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
}

/// The stats fields shown as last-run gauges, with their help text.
const LAST_RUN_FIGURES: [(&str, &str); 11] = [
    ("rows_read", "Source rows read by the last run"),
    ("events", "Orders built into events by the last run"),
    ("sent", "Orders accepted by the destination in the last run"),
    (
        "skipped_duplicate",
        "Orders already sent, not sent again, in the last run",
    ),
    (
        "changed_after_send",
        "Sent orders whose value or event time changed since, seen by the last run",
    ),
    (
        "invalid",
        "Orders that could not become an event in the last run",
    ),
    (
        "rejected",
        "Events the destination rejected in the last run",
    ),
    ("retries", "Retried requests in the last run"),
    ("batches", "Requests sent by the last run"),
    (
        "held",
        "Orders dated ahead (a fast till clock) held by the last run until their time",
    ),
    (
        "ahead_of_clock",
        "Orders whose watermark was ahead of the source database's clock in the last run",
    ),
];

/// The value of a last-run figure by field name.
fn figure(stats: &RunStats, name: &str) -> u64 {
    match name {
        "rows_read" => stats.rows_read,
        "events" => stats.events,
        "sent" => stats.sent,
        "skipped_duplicate" => stats.skipped_duplicate,
        "changed_after_send" => stats.changed_after_send,
        "invalid" => stats.invalid,
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
    /// Metrics for `connector`, all counters at zero and no run yet.
    pub fn new(connector: &str) -> Self {
        let labels = [(Cow::Borrowed("connector"), Cow::Owned(connector.to_owned()))];
        let mut registry = Registry::with_labels(labels.into_iter());
        let counters = Counters::default();
        let lifetime: [(&str, &str, &Counter); 7] = [
            (
                "ocapi_rows_read",
                "Source rows read since the process started",
                &counters.rows_read,
            ),
            (
                "ocapi_events_sent",
                "Orders accepted by the destination since the process started",
                &counters.sent,
            ),
            (
                "ocapi_events_rejected",
                "Events the destination rejected since the process started",
                &counters.rejected,
            ),
            (
                "ocapi_orders_invalid",
                "Orders that could not become an event since the process started",
                &counters.invalid,
            ),
            (
                "ocapi_orders_skipped_duplicate",
                "Orders already sent, not sent again, since the process started",
                &counters.skipped_duplicate,
            ),
            (
                "ocapi_retries",
                "Retried requests since the process started",
                &counters.retries,
            ),
            (
                "ocapi_requests",
                "Requests sent to the destination since the process started",
                &counters.requests,
            ),
        ];
        for (name, help, counter) in lifetime {
            registry.register(name, help, counter.clone());
        }
        let runs = Family::<StatusLabel, Counter>::default();
        registry.register(
            "ocapi_runs",
            "Runs finished since the process started, by status",
            runs.clone(),
        );
        let lag = Histogram::new(LAG_BUCKETS);
        registry.register(
            "ocapi_upload_lag_seconds",
            "Seconds from an accepted event's event_time to its acceptance",
            lag.clone(),
        );
        let in_progress = Gauge::default();
        registry.register(
            "ocapi_run_in_progress",
            "1 while a run is going, else 0",
            in_progress.clone(),
        );
        let mut last = LastRun::default();
        for (name, help) in LAST_RUN_FIGURES {
            let gauge = Gauge::default();
            registry.register(format!("ocapi_last_run_{name}"), help, gauge.clone());
            last.figures.push((name, gauge));
        }
        registry.register(
            "ocapi_last_run_duration_seconds",
            "Wall time of the last run",
            last.duration.clone(),
        );
        registry.register(
            "ocapi_last_run_status",
            "1 for the status the last run ended with, 0 for the others",
            last.status.clone(),
        );
        registry.register(
            "ocapi_last_run_finished_timestamp_seconds",
            "Unix time the last run finished",
            last.finished.clone(),
        );
        registry.register(
            "ocapi_last_success_timestamp_seconds",
            "Unix time of the last run that completed (degraded included)",
            last.last_success.clone(),
        );
        registry.register(
            "ocapi_last_run_match_keys",
            "Sent events carrying each user_data key in the last run",
            last.match_keys.clone(),
        );
        registry.register(
            "ocapi_last_run_dropped",
            "Customer values dropped as unusable in the last run, by user_data key",
            last.dropped.clone(),
        );
        registry.register(
            "ocapi_last_run_invalid_reason",
            "Invalid orders in the last run, by reason",
            last.invalid_reasons.clone(),
        );
        registry.register(
            "ocapi_last_run_upload_lag_seconds",
            "Upload lag of the last run's accepted events: median, p95 and max",
            last.upload_lag.clone(),
        );
        Self {
            registry,
            connector: connector.to_owned(),
            counters,
            runs,
            lag,
            in_progress,
            last,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Marks the start of a run: `ocapi_run_in_progress` goes to 1.
    pub fn run_started(&self) {
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
    /// counters, the lag histogram and the last-run gauges.
    pub fn run_finished(&self, stats: &RunStats) {
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
        if matches!(stats.status, RunStatus::Completed | RunStatus::Degraded) {
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
    pub fn last_success(&self) -> Option<i64> {
        Some(self.last.last_success.get()).filter(|at| *at > 0)
    }

    /// Carries counters and the last success over from an earlier exposition of the same
    /// connector (the metrics file being replaced), so that they keep growing across processes.
    fn carry_over(&self, previous: &str) {
        let values: BTreeMap<&str, f64> = previous
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series, value.parse().ok()?))
            })
            .collect();
        let connector = format!("connector=\"{}\"", escape(&self.connector));
        let get = |name: &str, extra: &str| {
            values
                .get(format!("{name}{{{connector}{extra}}}").as_str())
                .map(|v| *v as u64)
        };
        let c = &self.counters;
        for (name, counter) in [
            ("ocapi_rows_read_total", &c.rows_read),
            ("ocapi_events_sent_total", &c.sent),
            ("ocapi_events_rejected_total", &c.rejected),
            ("ocapi_orders_invalid_total", &c.invalid),
            ("ocapi_orders_skipped_duplicate_total", &c.skipped_duplicate),
            ("ocapi_retries_total", &c.retries),
            ("ocapi_requests_total", &c.requests),
        ] {
            counter.inc_by(get(name, "").unwrap_or(0));
        }
        for status in STATUSES {
            let extra = format!(",status=\"{}\"", status.as_str());
            if let Some(n) = get("ocapi_runs_total", &extra) {
                self.runs
                    .get_or_create(&StatusLabel {
                        status: status.as_str().to_owned(),
                    })
                    .inc_by(n);
            }
        }
        if let Some(at) = get("ocapi_last_success_timestamp_seconds", "") {
            self.last
                .last_success
                .set(i64::try_from(at).unwrap_or_default());
        }
    }
}

/// Escapes a label value as the exposition format does: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `text` to `path` atomically: a temporary file beside it, flushed, then renamed.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), MetricsError> {
    let err = |source| MetricsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path.file_name().map_or_else(
        || "metrics.prom".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    // node_exporter ignores files not ending in `.prom`, so the temporary one never counts.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// `--metrics-file`: the connector's metrics, written after each run.
#[derive(Debug, Clone)]
pub struct MetricsFile {
    /// The target path.
    path: PathBuf,
    /// The metrics written there.
    telemetry: Arc<Telemetry>,
}

impl MetricsFile {
    /// A metrics file at `path` for `connector`. Counters and the last success are carried
    /// over from the file already there, so that a failed `ocapi run` from cron keeps
    /// reporting when the last good one was and counters never go back.
    pub fn new(path: PathBuf, connector: &str) -> Self {
        Self::with_telemetry(path, Arc::new(Telemetry::new(connector)))
    }

    /// A metrics file writing `telemetry` (shared with `/metrics`), seeded from the file there.
    pub fn with_telemetry(path: PathBuf, telemetry: Arc<Telemetry>) -> Self {
        if let Ok(previous) = std::fs::read_to_string(&path) {
            telemetry.carry_over(&previous);
        }
        Self { path, telemetry }
    }

    /// The metrics it writes.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Records a finished run's stats and writes the file.
    pub fn record(&mut self, stats: &RunStats) -> Result<(), MetricsError> {
        self.telemetry.run_finished(stats);
        self.write()
    }

    /// Writes the metrics as they are (the run already recorded in the shared telemetry).
    pub fn write(&self) -> Result<(), MetricsError> {
        write_atomic(&self.path, &self.telemetry.encode())
    }
}

#[cfg(test)]
mod tests;
