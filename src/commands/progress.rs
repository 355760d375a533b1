//! `ocapi run`'s progress: on a terminal, a bar (a spinner, since a run does not know how many
//! rows are new) with rows read, orders sent and the rate; elsewhere, log lines (the first
//! page, then one every ten seconds), so that a long first sync under cron or systemd shows it
//! is moving.

use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::run::Progress;
use crate::stats::RunStats;

/// Minimum time between two progress log lines when stderr is not a terminal.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// The bar on screen, if any: log lines are written around it (see [`Stderr`]).
static ACTIVE: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// The bar on screen.
fn active() -> std::sync::MutexGuard<'static, Option<indicatif::ProgressBar>> {
    ACTIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Puts `bar` on screen for [`Stderr`] to write log lines around it (`None` when it is gone).
pub(crate) fn set_active(bar: Option<&indicatif::ProgressBar>) {
    *active() = bar.cloned();
}

/// A `tracing` writer to stderr that hides the progress bar while it writes a log line and
/// draws it again after, so that a line logged during a run is not overwritten or cleared with
/// the bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = active().clone();
        match bar {
            Some(bar) => bar
                .suspend(|| std::io::stderr().write_all(buf))
                .map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The progress display of one run.
pub(crate) struct RunDisplay {
    /// The bar, when stderr is a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// When the run started.
    started: Instant,
    /// When the last log line was written (`None` before the first).
    last_log: Arc<Mutex<Option<Instant>>>,
}

impl RunDisplay {
    /// A bar when stderr is a terminal, else log lines.
    pub fn new() -> Self {
        Self::with_terminal(std::io::stderr().is_terminal())
    }

    /// A bar when `terminal`, else log lines.
    pub(crate) fn with_terminal(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} {pos} rows read  {msg}  {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            set_active(Some(&bar));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_log: Arc::new(Mutex::new(None)),
        }
    }

    /// The callback the run calls after each committed page.
    pub(crate) fn callback(&self) -> Progress {
        let bar = self.bar.clone();
        let started = self.started;
        let last_log = Arc::clone(&self.last_log);
        Arc::new(move |stats: &RunStats| {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let rate = (stats.rows_read as f64 / secs).round() as u64;
            if let Some(bar) = &bar {
                bar.set_position(stats.rows_read);
                bar.set_message(format!(
                    "{rate} rows/s  {} sent, {} invalid, {} rejected",
                    stats.sent, stats.invalid, stats.rejected
                ));
                return;
            }
            let mut last = last_log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < LOG_EVERY) {
                return;
            }
            *last = Some(Instant::now());
            tracing::info!(
                rows_read = stats.rows_read,
                sent = stats.sent,
                invalid = stats.invalid,
                rejected = stats.rejected,
                rows_per_sec = rate,
                "run progress"
            );
        })
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            set_active(None);
            bar.finish_and_clear();
        }
    }
}

impl Default for RunDisplay {
    fn default() -> Self {
        Self::new()
    }
}
