//! The metrics file (`--metrics-file`, for node_exporter's textfile collector): written
//! atomically after each run, and read back when the next process starts, so that its counters
//! and the last success carry over from the file it replaces.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::stats::{RunStats, RunStatus};

use super::{StatusLabel, Telemetry, STATUSES};

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

impl Telemetry {
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
            ("ocapi_orders_anonymous_total", &c.anonymous),
            ("ocapi_orders_skipped_duplicate_total", &c.skipped_duplicate),
            ("ocapi_retries_total", &c.retries),
            ("ocapi_requests_total", &c.requests),
        ] {
            counter.inc_by(get(name, "").unwrap_or(0));
        }
        for status in STATUSES.into_iter().chain([RunStatus::Skipped]) {
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

/// Writes `text` to `path` atomically: a temporary file beside it, flushed, then renamed over
/// `path` (a rename replaces a symlink at `path`, never the file it points to).
///
/// The temporary file has a random name (`.NAME.<random>.tmp`) and is created exclusively
/// (`O_CREAT | O_EXCL`, which also refuses a symlink planted at that name, dangling or not): a
/// name another user can guess and plant a link at would make ocapi write through the link into
/// any file it may write. A name that exists is not reused: another random one is tried.
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
    let (tmp, mut file) = create_exclusive(dir, &format!(".{name}"), ".tmp").map_err(err)?;
    let written = (|| {
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// Creates a new file `{prefix}.{random}{suffix}` in `dir`, exclusively (`create_new`: never an
/// existing file, never through a symlink), trying other random names while one exists.
/// Permissions are the process's default (the umask), as for any file ocapi writes.
///
/// # Errors
/// The I/O error of the last attempt.
pub(crate) fn create_exclusive(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut attempt = 0;
    loop {
        let path = dir.join(format!("{prefix}.{:016x}{suffix}", rand::random::<u64>()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
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
    pub(crate) fn with_telemetry(path: PathBuf, telemetry: Arc<Telemetry>) -> Self {
        if let Ok(previous) = std::fs::read_to_string(&path) {
            telemetry.carry_over(&previous);
        }
        Self { path, telemetry }
    }

    /// The metrics it writes.
    pub(crate) fn telemetry(&self) -> &Arc<Telemetry> {
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
