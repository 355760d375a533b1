//! `--metrics-file`: a run's stats in the Prometheus text exposition format, for
//! node_exporter's textfile collector. The format is a few lines of text, so it is written by
//! hand rather than through a metrics crate. The file is replaced atomically (a temporary file
//! in the same directory, then a rename) so the collector never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Every status a run can end with, so that `ocapi_run_status` has one series per status
/// with exactly one of them at 1 (the usual Prometheus "enum" pattern).
const STATUSES: [RunStatus; 3] = [RunStatus::Completed, RunStatus::Degraded, RunStatus::Failed];

/// Escapes a label value: backslash, double quote and newline (the exposition format's rule).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders a run's stats. `last_success` is the unix time of the latest successful run that
/// this process knows of (the run itself when it completed), so the gauge survives failures.
pub fn render(stats: &RunStats, finished_at: i64, last_success: Option<i64>) -> String {
    let c = format!("connector=\"{}\"", label(&stats.connector));
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let one = |v: u64| vec![(c.clone(), v.to_string())];
    let counters: [(&str, &str, u64); 9] = [
        (
            "ocapi_run_rows_read_total",
            "Source rows read by the last run.",
            stats.rows_read,
        ),
        (
            "ocapi_run_events_total",
            "Orders built into events by the last run.",
            stats.events,
        ),
        (
            "ocapi_run_sent_total",
            "Orders accepted by the destination in the last run.",
            stats.sent,
        ),
        (
            "ocapi_run_skipped_duplicate_total",
            "Orders already sent, not sent again, in the last run.",
            stats.skipped_duplicate,
        ),
        (
            "ocapi_run_changed_after_send_total",
            "Sent orders whose value or event time changed since, seen by the last run.",
            stats.changed_after_send,
        ),
        (
            "ocapi_run_invalid_total",
            "Orders that could not become an event in the last run.",
            stats.invalid,
        ),
        (
            "ocapi_run_rejected_total",
            "Events the destination rejected in the last run.",
            stats.rejected,
        ),
        (
            "ocapi_run_retries_total",
            "Retried requests in the last run.",
            stats.retries,
        ),
        (
            "ocapi_run_batches_total",
            "Requests sent by the last run.",
            stats.batches,
        ),
    ];
    for (name, help, value) in counters {
        metric(name, "gauge", help, one(value));
    }
    metric(
        "ocapi_run_duration_seconds",
        "gauge",
        "Wall time of the last run.",
        vec![(
            c.clone(),
            format!("{:.3}", stats.duration_ms as f64 / 1000.0),
        )],
    );
    metric(
        "ocapi_run_status",
        "gauge",
        "1 for the status the last run ended with, 0 for the others.",
        STATUSES
            .iter()
            .map(|s| {
                (
                    format!("{c},status=\"{}\"", s.as_str()),
                    u8::from(*s == stats.status).to_string(),
                )
            })
            .collect(),
    );
    metric(
        "ocapi_run_finished_timestamp_seconds",
        "gauge",
        "Unix time the last run finished.",
        vec![(c.clone(), finished_at.to_string())],
    );
    if let Some(at) = last_success {
        metric(
            "ocapi_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last run that completed (degraded included).",
            vec![(c.clone(), at.to_string())],
        );
    }
    let keyed = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter()
            .map(|(key, n)| (format!("{c},key=\"{}\"", label(key)), n.to_string()))
            .collect::<Vec<_>>()
    };
    metric(
        "ocapi_run_match_keys_total",
        "gauge",
        "Sent events carrying each user_data key in the last run.",
        keyed(&stats.match_keys),
    );
    metric(
        "ocapi_run_dropped_total",
        "gauge",
        "Customer values dropped as unusable in the last run, by user_data key.",
        keyed(&stats.dropped),
    );
    metric(
        "ocapi_run_invalid_reason_total",
        "gauge",
        "Invalid orders in the last run, by reason.",
        stats
            .invalid_reasons
            .iter()
            .map(|(reason, n)| (format!("{c},reason=\"{}\"", label(reason)), n.to_string()))
            .collect(),
    );
    out
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

/// Tracks the last success across runs of one process (`watch`), and writes the file.
#[derive(Debug, Clone)]
pub struct MetricsFile {
    /// The target path.
    path: PathBuf,
    /// Unix time of the last completed run seen by this process.
    last_success: Option<i64>,
}

impl MetricsFile {
    /// A metrics file at `path`; the last success is carried over from the file already
    /// there, so that a failed `ocapi run` from cron keeps reporting when the last good one was.
    pub fn new(path: PathBuf) -> Self {
        let last_success = std::fs::read_to_string(&path).ok().and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("ocapi_last_success_timestamp_seconds{"))
                .and_then(|line| line.rsplit(' ').next())
                .and_then(|value| value.parse().ok())
        });
        Self { path, last_success }
    }

    /// Writes a finished run's stats.
    pub fn record(&mut self, stats: &RunStats) -> Result<(), MetricsError> {
        let now = chrono::Utc::now().timestamp();
        if matches!(stats.status, RunStatus::Completed | RunStatus::Degraded) {
            self.last_success = Some(now);
        }
        write_atomic(&self.path, &render(stats, now, self.last_success))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_one_status_set_and_labels_by_key() {
        let mut stats = RunStats::new("shop \"a\"");
        stats.status = RunStatus::Degraded;
        stats.sent = 7;
        stats.duration_ms = 1500;
        RunStats::bump(&mut stats.match_keys, "em", 7);
        RunStats::bump(&mut stats.dropped, "ph", 2);
        let text = render(&stats, 100, Some(100));
        assert!(text.contains("ocapi_run_sent_total{connector=\"shop \\\"a\\\"\"} 7\n"));
        assert!(text.contains("status=\"degraded\"} 1\n"));
        assert!(text.contains("status=\"completed\"} 0\n"));
        assert!(text.contains("ocapi_run_duration_seconds{connector=\"shop \\\"a\\\"\"} 1.500\n"));
        assert!(text.contains(",key=\"em\"} 7\n"));
        assert!(
            text.contains("ocapi_run_dropped_total{connector=\"shop \\\"a\\\"\",key=\"ph\"} 2\n")
        );
        assert!(text
            .contains("ocapi_last_success_timestamp_seconds{connector=\"shop \\\"a\\\"\"} 100\n"));
    }
}
